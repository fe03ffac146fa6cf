"""Which arithmetic made a product: a few rows of C recomputed exactly, their errors held to the claimed precision.

Freivalds' check (bench.workloads.freivalds) proves C = A.B up to a tolerance that must cover every honest summation
order, so it grows with n and lets a cheaper product through: at n = 4096 a float32 challenge answered with tf32 or
fp16 operands scores about half its tolerance. This check is tight where Freivalds is loose. For a few rows i (chosen
by the verifier's secret generator, so the prover cannot know which) it computes, in float64 and O(n^2) per row:

    c_ij = sum_k A_ik B_kj                        (exact for float32 and narrower operands: every product fits in 53
                                                   bits, and the float64 sum's own error is ~2^-53 sqrt(n) t_ij)
    t_ij = sqrt(sum_k A_ik^2 B_kj^2)              (the scale of an error made term by term)
    d_ij = max(0, |C_ij - c_ij| - ulp(C_ij)/2)    (the error beyond rounding the exact result to the output format)

An honest product's d_ij comes only from accumulation, and perhaps from partial sums rounded to the output format (a
split-K reduction that keeps them in bf16, say: each partial is about t_ij in size). It is held to
    tau_ij = ACC_SLACK * u_acc * sqrt(n) * t_ij + OUTPUT_SLACK * u_out * t_ij,
where u_acc is the accumulator's unit roundoff (float32 for every narrow format) and u_out the output's: a plain
sequential float32 sum (the worst order) and a two-way split-K in bf16 both score below 0.1. A product whose operands
were first rounded to a cheaper format (tf32, fp16 or bf16 for a float32 challenge, fp8 for bf16, float32 for
float64) errs by about u_cheap * t_ij in every element, u_cheap being 2^13 (tf32) to 2^29 (float32 for float64)
times u_acc, and 2^4 times u_out for fp8 against bf16: it scores from about 3 (fp8) and 7 (tf32 at n = 16384) up. The score of a row is the root mean square of d_ij / tau_ij over its n elements (n samples, so
it barely fluctuates); the check fails when any sampled row scores above 1. tests/perf/precision_table.py measures
both sides for n = 256 ... 16384 (README, "What bench proves").
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


def scores(a_rows: np.ndarray, b: torch.Tensor, c_rows: np.ndarray, dtype: str) -> np.ndarray:
    """Per row, the RMS of d/tau (see the module docstring). a_rows: the sampled rows of A (float64, s x n); b: all of
    B (any dtype, n x n); c_rows: the same rows of C (float64, s x n)."""
    n = a_rows.shape[1]
    exact = np.empty_like(c_rows)
    term = np.empty_like(c_rows)
    a_sq = a_rows * a_rows
    for j in range(0, b.shape[1], COLUMN_CHUNK):
        chunk = b[:, j : j + COLUMN_CHUNK].to(torch.float64).numpy()
        exact[:, j : j + chunk.shape[1]] = a_rows @ chunk
        term[:, j : j + chunk.shape[1]] = np.sqrt(a_sq @ (chunk * chunk))
    bits, _ = FORMATS[dtype]
    u_out = 2.0**-bits
    beyond = np.maximum(np.abs(c_rows - exact) - _ulp(np.maximum(np.abs(c_rows), np.abs(exact)), dtype) / 2, 0.0)
    tau = ACC_SLACK * ACCUMULATOR_U[dtype] * math.sqrt(n) * term + OUTPUT_SLACK * u_out * term
    tau = np.maximum(tau, np.finfo(np.float64).tiny)
    return np.sqrt(np.mean((beyond / tau) ** 2, axis=1))


def check(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, dtype: str, rng: np.random.Generator,
          rows: int = ROWS) -> RowCheck:  # fmt: skip
    """Recompute `rows` random rows of c = a.b exactly and hold their errors to `dtype` (see the module docstring)."""
    if dtype not in FORMATS:
        raise ValueError(f"no exact-row check for {dtype!r}; valid: {', '.join(FORMATS)}")
    m = a.shape[0]
    picked = np.sort(rng.choice(m, size=min(rows, m), replace=False))
    index = torch.from_numpy(picked)
    c_rows = c.index_select(0, index).to(torch.float64).numpy()
    if not np.isfinite(c_rows).all():
        return RowCheck(False, math.inf, int(picked[0]), tuple(int(i) for i in picked), "product has non-finite values")
    per_row = scores(a.index_select(0, index).to(torch.float64).numpy(), b, c_rows, dtype)
    worst = int(np.argmax(per_row))
    score = float(per_row[worst])
    passed = score <= 1.0
    reason = None if passed else (f"row {int(picked[worst])}: its error is {score:.3g}x what {dtype} arithmetic allows "
                                  "(computed in a cheaper precision?)")  # fmt: skip
    return RowCheck(passed, score, int(picked[worst]), tuple(int(i) for i in picked), reason)
