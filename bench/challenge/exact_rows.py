"""Which arithmetic made a product: a few rows of C recomputed exactly, their errors held to the claimed precision.

Freivalds' check (bench.workloads.freivalds) proves C = A.B up to a tolerance that must cover every honest summation
order, so it grows with n and lets a cheaper product through: at n = 4096 a float32 challenge answered with tf32 or
fp16 operands scores about half its tolerance. This check is tight where Freivalds is loose. For a few rows i (chosen
by the verifier's secret generator, so the prover cannot know which) it computes, in float64 and O(n K) per row (A is
n x K, B is K x n; K = n for a square challenge):

    c_ij = sum_k A_ik B_kj                        (exact for float32 and narrower operands: every product fits in 53
                                                   bits, and the float64 sum's own error is ~2^-53 sqrt(K) t_ij)
    t_ij = sqrt(sum_k A_ik^2 B_kj^2)              (the scale of an error made term by term)
    d_ij = max(0, |C_ij - c_ij| - ulp(C_ij)/2)    (the error beyond rounding the exact result to the output format)

An honest product's d_ij comes only from accumulation. Every order a BLAS or cuBLAS uses (sequential FMA in one thread
of a SIMT sgemm, blocked microkernels, split-K, pairwise) rounds each running sum to the accumulator; the operands'
signs are random, so each running sum is of size ~t_ij and its roundings add like a random walk (Higham and Mary,
2019): the error is about u_acc * sqrt(K / 6) * t_ij for the sequential order, the worst, and less for the others.
The allowance is
    tau_ij = acc_slack * u_acc * sqrt(K) * t_ij + output_slack * u_out * t_ij,
K the length of every sum above (the inner dimension, not C's width), u_acc the accumulator's unit roundoff
(float32 for every narrow format), u_out the output's. Version 2 challenges
(bench.challenge.generator operands) use acc_slack = ACC_SLACK_V2 = 3.5, where the sequential order scores 0.09 (10x
margin), and output_slack = 0: the node turns off cuBLAS's reduced-precision split-K reductions, so a half-precision
product is rounded to its format once. Version 1 challenges keep ACC_SLACK = 5 and OUTPUT_SLACK = 3 (a split-K in
bf16), whose room let int8 answer bfloat16 (issue 23). A cheaper product errs by about u_cheap * t_ij in every
element and fails by orders of magnitude (tf32, fp16, bf16, fp8, one or two int8 slices); tests/perf/precision_table.py
measures every scheme at n = 256 ... 16384 (docs/proofs.md, "Precision: a cheaper product fails"). Not separable on
accuracy alone: bf16x3 and int8x3 for float32 err about 2^-21 t_ij, which a sequential float32 sum exceeds from
K = 1024 on (docs/proofs.md).
The score of a row is the root mean square of d_ij / tau_ij over its n elements (n samples, so it barely fluctuates);
the check fails when any sampled row scores above 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

#: Significand bits (implicit bit included) and smallest normal exponent (as numpy.frexp gives it) of each output.
FORMATS = {"float64": (53, -1021), "float32": (24, -125), "bfloat16": (8, -125), "float16": (11, -13)}
#: Unit roundoff of the accumulator bench accepts for each challenge dtype: float32 for every narrower format.
ACCUMULATOR_U = {"float64": 2.0**-53, "float32": 2.0**-24, "bfloat16": 2.0**-24, "float16": 2.0**-24}
#: Slack on the accumulation term: a sequential float32 sum (the worst honest order) scores about 0.1 with 5.
ACC_SLACK = 5.0
#: Slack on partial sums rounded to the output format (split-K): a two-way split in bf16 scores below 0.1 with 3.
OUTPUT_SLACK = 3.0
#: Version 2 challenges (bench.challenge.generator operands): the accumulation slack at which the worst honest order
#: (a sequential float32 FMA sum over all n terms, what one thread of a SIMT sgemm does) scores 0.1, a 10x margin
#: (tests/perf/precision_table.py); and no output slack: the node turns cuBLAS's reduced-precision split-K reductions
#: off (node.full_precision_reductions), so a half-precision product is rounded to its format once, at the end.
ACC_SLACK_V2 = 3.5
#: Rows recomputed per product. A prover that computes a fraction f of its rows cheaply escapes with (1 - f)^ROWS.
ROWS = 16
#: Columns of B converted to float64 at once (bounds the check's memory: n x COLUMN_CHUNK x 8 bytes).
COLUMN_CHUNK = 1024


@dataclass(frozen=True)
class RowCheck:
    passed: bool
    #: the largest row score (RMS of d/tau over the row); passing needs <= 1
    score: float
    worst_row: int
    rows: tuple[int, ...]
    reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"check": "exact-rows", **asdict(self)}


def _ulp(x: np.ndarray, dtype: str) -> np.ndarray:
    bits, emin = FORMATS[dtype]
    _, e = np.frexp(x)
    return np.ldexp(1.0, np.maximum(e, emin) - bits)


def reference(a_rows: np.ndarray, b: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(c, t) for the sampled rows: the exact product (float64) and t_ij = sqrt(sum_k a_ik^2 b_kj^2). a_rows: float64,
    s x n; b: all of B (any dtype), converted COLUMN_CHUNK columns at a time."""
    exact = np.empty((a_rows.shape[0], b.shape[1]))
    term = np.empty_like(exact)
    a_sq = a_rows * a_rows
    for j in range(0, b.shape[1], COLUMN_CHUNK):
        chunk = b[:, j : j + COLUMN_CHUNK].to(torch.float64).numpy()
        exact[:, j : j + chunk.shape[1]] = a_rows @ chunk
        term[:, j : j + chunk.shape[1]] = np.sqrt(a_sq @ (chunk * chunk))
    return exact, term


def row_scores(exact: np.ndarray, term: np.ndarray, c_rows: np.ndarray, dtype: str,
               slack: tuple[float, float] = (ACC_SLACK, OUTPUT_SLACK), *, inner: int) -> np.ndarray:  # fmt: skip
    """Per row, the RMS of d/tau (module docstring), from reference()'s exact product and term scale; `inner` is the
    product's inner dimension K (the length of each dot product: the allowance grows with it, not with C's width)."""
    bits, _ = FORMATS[dtype]
    u_out = 2.0**-bits
    beyond = np.maximum(np.abs(c_rows - exact) - _ulp(np.maximum(np.abs(c_rows), np.abs(exact)), dtype) / 2, 0.0)
    acc_slack, output_slack = slack
    tau = acc_slack * ACCUMULATOR_U[dtype] * math.sqrt(inner) * term + output_slack * u_out * term
    tau = np.maximum(tau, np.finfo(np.float64).tiny)
    return np.sqrt(np.mean((beyond / tau) ** 2, axis=1))


def scores(a_rows: np.ndarray, b: torch.Tensor, c_rows: np.ndarray, dtype: str,
           slack: tuple[float, float] = (ACC_SLACK, OUTPUT_SLACK)) -> np.ndarray:  # fmt: skip
    """Per row, the RMS of d/tau (see the module docstring). a_rows: the sampled rows of A (float64, s x K); b: all of
    B (any dtype, K x n); c_rows: the same rows of C (float64, s x n)."""
    return row_scores(*reference(a_rows, b), c_rows, dtype, slack, inner=a_rows.shape[1])


def slacks(operands: int) -> tuple[float, float]:
    """(accumulation slack, output slack) for a challenge whose operands are of this version: version 1 keeps
    (ACC_SLACK, OUTPUT_SLACK); version 2 holds honest products to (ACC_SLACK_V2, 0) (module docstring)."""
    return (ACC_SLACK, OUTPUT_SLACK) if operands == 1 else (ACC_SLACK_V2, 0.0)


def check(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, dtype: str, rng: np.random.Generator,
          rows: int = ROWS, operands: int = 2) -> RowCheck:  # fmt: skip
    """Recompute `rows` random rows of c = a.b exactly and hold their errors to `dtype` (see the module docstring)."""
    if dtype not in FORMATS:
        raise ValueError(f"no exact-row check for {dtype!r}; valid: {', '.join(FORMATS)}")
    m = a.shape[0]
    picked = np.sort(rng.choice(m, size=min(rows, m), replace=False))
    index = torch.from_numpy(picked)
    c_rows = c.index_select(0, index).to(torch.float64).numpy()
    if not np.isfinite(c_rows).all():
        return RowCheck(False, math.inf, int(picked[0]), tuple(int(i) for i in picked), "product has non-finite values")
    per_row = scores(a.index_select(0, index).to(torch.float64).numpy(), b, c_rows, dtype, slacks(operands))
    worst = int(np.argmax(per_row))
    score = float(per_row[worst])
    passed = score <= 1.0
    reason = None if passed else (f"row {int(picked[worst])}: its error is {score:.3g}x what {dtype} arithmetic allows "
                                  "(computed in a cheaper precision?)")  # fmt: skip
    return RowCheck(passed, score, int(picked[worst]), tuple(int(i) for i in picked), reason)
