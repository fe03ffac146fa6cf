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
#: The float32 rule of version 2 challenges (sequential_rule). KAPPA: the variance of one round-to-nearest rounding of
#: a running sum s, in units of (u s)^2: the error is uniform within half an ulp, ulp = 2u 2^e for s = m 2^e, and m is
#: log-uniform over [1, 2) (Benford, as for sums that random-walk), so E[(ulp/2)^2 / 3] / s^2 = (4/12) E[1/m^2] u^2 =
#: u^2 / (8 ln 2). SEQUENTIAL_SLACK: the pass mark over that expectation; a sequential FMA sum scores 0.56 (worst
#: row of 16 at n = 256: 0.66), a 1.5x margin that n samples per row make decisive (a row's mean square has a relative
#: noise of about sqrt(2/n), 9% at n = 256), and bf16x3 fails by 2x at K = 4096 (tests/perf/precision_table.py).
KAPPA = 1 / (8 * math.log(2))
SEQUENTIAL_SLACK = 1.6
#: Rows recomputed per product. A prover that computes a fraction f of its rows cheaply escapes with (1 - f)^ROWS.
ROWS = 16
#: Columns of B converted to float64 at once (bounds the check's memory: n x COLUMN_CHUNK x 8 bytes).
COLUMN_CHUNK = 1024


@dataclass(frozen=True)
class RowCheck:
    passed: bool
    #: the largest row score (RMS of d/tau over the row, or sequential_scores' for float32); passing needs <= 1
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


def reference(
    a_rows: np.ndarray, b: torch.Tensor, fold: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(c, t, p) for the sampled rows: the exact product (float64), t_ij = sqrt(sum_k a_ik^2 b_kj^2), and
    p_ij = sum_k (L - k mod L) a_ik^2 b_kj^2 (k from 0, L = `fold` or K): the expected sum of the squared running sums
    of sequential sums in index order, one per run of L terms (a folded challenge: each run summed on its own, the runs
    added exactly), E[sum_k s_k^2] over the operands' random signs (the reverse order's is (L + 1) t^2 - p). a_rows:
    float64, s x K; b: all of B (any dtype, K x n), converted COLUMN_CHUNK columns at a time."""
    exact = np.empty((a_rows.shape[0], b.shape[1]))
    term = np.empty_like(exact)
    prefix = np.empty_like(exact)
    a_sq = a_rows * a_rows
    run = fold or a_rows.shape[1]
    a_sq_weighted = a_sq * (run - np.arange(a_rows.shape[1]) % run)
    for j in range(0, b.shape[1], COLUMN_CHUNK):
        chunk = b[:, j : j + COLUMN_CHUNK].to(torch.float64).numpy()
        cols = slice(j, j + chunk.shape[1])
        exact[:, cols] = a_rows @ chunk
        chunk_sq = chunk * chunk
        term[:, cols] = np.sqrt(a_sq @ chunk_sq)
        prefix[:, cols] = a_sq_weighted @ chunk_sq
    return exact, term, prefix


#: The fewest elements a row needs for the float32 row rule. A row's mean square is a sharp statistic only over many
#: elements of comparable expected error; the operands' exponent spread lets a few elements dominate it, so at n = 64
#: an honest torch product scored above 1 in 3 of 400 challenges (0.75%; n = 32: 2 of 200; n = 256: at most 0.68 in
#: 60), refusing honest answers. Narrower rows keep the per-element allowance (10x honest margin).
MIN_ROW_WIDTH = 256


def sequential_rule(dtype: str, operands: int, width: int = MIN_ROW_WIDTH) -> bool:
    """Whether the check holds a product to sequential_scores (float32 products of version 2 operands, rows of at
    least MIN_ROW_WIDTH elements) rather than to the per-element allowance tau (row_scores: every other dtype and
    version). For float32 the accumulation is the whole error, and its honest size is known from the operands (module
    docstring); a half-precision output's rounding dwarfs accumulation, and float64's reference is itself rounded at
    the honest error's size."""
    return operands >= 2 and dtype == "float32" and width >= MIN_ROW_WIDTH


def sequential_scores(exact: np.ndarray, term: np.ndarray, prefix: np.ndarray, c_rows: np.ndarray, dtype: str, *,
                      inner: int) -> np.ndarray:  # fmt: skip
    """Per row, sqrt(mean_j d_ij^2 / mean_j a_ij^2): the row's RMS error beyond rounding to the output over the RMS
    of a_ij = SEQUENTIAL_SLACK sqrt(KAPPA) u_acc sqrt(max(p_ij, (K + 1) t_ij^2 - p_ij)), what a sequential sum in
    either index order (the worst order a BLAS uses) errs by on these operands. Judged over the row's n elements, not
    element by element, so the statistic is sharp where each element's error is a random draw."""
    beyond = np.maximum(np.abs(c_rows - exact) - _ulp(np.maximum(np.abs(c_rows), np.abs(exact)), dtype) / 2, 0.0)
    worst_order = np.maximum(prefix, (inner + 1) * term * term - prefix)
    allowed = SEQUENTIAL_SLACK**2 * KAPPA * ACCUMULATOR_U[dtype] ** 2 * worst_order
    mean_allowed = np.maximum(np.mean(allowed, axis=1), np.finfo(np.float64).tiny)
    return np.sqrt(np.mean(beyond * beyond, axis=1) / mean_allowed)


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


def scores(a_rows: np.ndarray, b: torch.Tensor, c_rows: np.ndarray, dtype: str, operands: int = 2,
           fold: int | None = None) -> np.ndarray:  # fmt: skip
    """Per row, the score under the challenge's rule (sequential_rule; see the module docstring). a_rows: the sampled
    rows of A (float64, s x K); b: all of B (any dtype, K x n); c_rows: the same rows of C (float64, s x n). With
    `fold` (a folded challenge, bench.challenge.fold), C is the exact sum of K / fold products of inner dimension
    fold, and each is held to what a product of that inner dimension errs by: every sum the rule models is `fold`
    terms long, not K."""
    exact, term, prefix = reference(a_rows, b, fold)
    run = fold or a_rows.shape[1]
    if sequential_rule(dtype, operands, c_rows.shape[1]):
        return sequential_scores(exact, term, prefix, c_rows, dtype, inner=run)
    return row_scores(exact, term, c_rows, dtype, slacks(operands), inner=run)


def slacks(operands: int) -> tuple[float, float]:
    """(accumulation slack, output slack) for a challenge whose operands are of this version: version 1 keeps
    (ACC_SLACK, OUTPUT_SLACK); version 2 holds honest products to (ACC_SLACK_V2, 0) (module docstring)."""
    return (ACC_SLACK, OUTPUT_SLACK) if operands == 1 else (ACC_SLACK_V2, 0.0)


def check(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, dtype: str, rng: np.random.Generator,
          rows: int = ROWS, operands: int = 2, fold: int | None = None) -> RowCheck:  # fmt: skip
    """Recompute `rows` random rows of c = a.b exactly and hold their errors to `dtype` (see the module docstring;
    `fold`: scores())."""
    if dtype not in FORMATS:
        raise ValueError(f"no exact-row check for {dtype!r}; valid: {', '.join(FORMATS)}")
    m = a.shape[0]
    picked = np.sort(rng.choice(m, size=min(rows, m), replace=False))
    index = torch.from_numpy(picked)
    c_rows = c.index_select(0, index).to(torch.float64).numpy()
    if not np.isfinite(c_rows).all():
        return RowCheck(False, math.inf, int(picked[0]), tuple(int(i) for i in picked), "product has non-finite values")
    per_row = scores(a.index_select(0, index).to(torch.float64).numpy(), b, c_rows, dtype, operands, fold)
    worst = int(np.argmax(per_row))
    score = float(per_row[worst])
    passed = score <= 1.0
    reason = None if passed else (f"row {int(picked[worst])}: its error is {score:.3g}x what {dtype} arithmetic allows "
                                  "(computed in a cheaper precision?)")  # fmt: skip
    return RowCheck(passed, score, int(picked[worst]), tuple(int(i) for i in picked), reason)
