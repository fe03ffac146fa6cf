"""Freivalds' check of a matrix product, in O(n^2) instead of the O(n^3) of recomputing it.

For a random sign vector r (entries +-1), a correct C = A.B satisfies C.r = A.(B.r) up to rounding. Both sides are
computed in float64 from the operands as stored, so only the product's own rounding separates them. Row i differs by
e_i = sum_j E_ij r_j, where E is the product's elementwise error. Because the signs are independent of E, e_i has
standard deviation ||E_i||_2, which we bound by the sum of three terms:

    u_out  * OUTPUT_ROUNDINGS * ||C_i||_2                 rounding the result (and split-K partial sums) to the output
    u_term * sqrt(sum_k A_ik^2 * ||B_k||_2^2)            independent relative errors of each term a*b (tf32 operand
                                                          rounding, the multiply); exact in float64 via (A*A).(|B_k|^2)
    u_acc  * sqrt(K) * ||A_i||_2 * ||B||_F                rounding the running sums, whose errors add up like a random
                                                          walk (the probabilistic bound of Higham and Mary, 2019)

The check passes when every |e_i| <= Z_SCORE * bound_i. By Hoeffding's inequality a correct product
fails a row with probability below 2*exp(-Z_SCORE**2/2), about 1e-14 at Z_SCORE = 8. A corrupted element shifts its
row's e_i by the full size of the corruption, whatever r is, so errors above the tolerance are always caught.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from bench.precision import Precision

Z_SCORE = 8.0
#: Allows for a split-K reduction that rounds partial sums to the output format once more.
OUTPUT_ROUNDINGS = 2.0
#: Rows processed at once in float64, bounding the check's extra memory.
CHUNK_ROWS = 1024


@dataclass(frozen=True)
class FreivaldsResult:
    passed: bool
    #: largest |C.r - A.(B.r)|_i / tolerance_i over rows (passing needs <= 1)
    worst_ratio: float
    worst_row: int
    max_abs_error: float
    reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"check": "freivalds", **asdict(self)}


def _matvec64(x: torch.Tensor, v: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """x.v (or (x*x).v) in float64, converting x a chunk of rows at a time."""
    out = []
    for i in range(0, x.shape[0], CHUNK_ROWS):
        chunk = x[i : i + CHUNK_ROWS].to(torch.float64)
        out.append((chunk * chunk if squared else chunk) @ v)
    return torch.cat(out)


def _row_norms64(x: torch.Tensor) -> torch.Tensor:
    return torch.cat(
        [
            torch.linalg.vector_norm(x[i : i + CHUNK_ROWS].to(torch.float64), dim=1)
            for i in range(0, x.shape[0], CHUNK_ROWS)
        ]
    )


def check(
    a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, precision: Precision, generator: torch.Generator | None = None
) -> FreivaldsResult:
    """Check that c is a * b computed in `precision`. Tensors may live on any device; the work stays there."""
    m, k = a.shape
    k2, n = b.shape
    if k != k2 or tuple(c.shape) != (m, n):
        raise ValueError(f"shapes do not form a product: {tuple(a.shape)} x {tuple(b.shape)} -> {tuple(c.shape)}")
    # A generator draws only on its own device (torch refuses a CUDA generator for a CPU tensor and the reverse): make
    # the signs where the generator lives, then move them to the product.
    where = generator.device if generator is not None else c.device
    r = torch.randint(0, 2, (n,), generator=generator, device=where, dtype=torch.int8).to(
        device=c.device, dtype=torch.float64
    )
    r = r * 2 - 1
    cr = _matvec64(c, r)
    if not torch.isfinite(cr).all():
        return FreivaldsResult(
            False, math.inf, int((~torch.isfinite(cr)).nonzero()[0]), math.inf, "product has non-finite values"
        )
    abr = _matvec64(a, _matvec64(b, r))
    err = (cr - abr).abs()
    b_rows_sq = _row_norms64(b) ** 2
    bound = (
        precision.unit_roundoff * OUTPUT_ROUNDINGS * _row_norms64(c)
        + precision.term_roundoff * torch.sqrt(_matvec64(a, b_rows_sq, squared=True))
        + precision.accumulate_roundoff * math.sqrt(k) * _row_norms64(a) * float(torch.sqrt(b_rows_sq.sum()))
    )
    tolerance = Z_SCORE * bound
    # A zero row of C with zero tolerance passes only with zero error; guard the division.
    ratio = torch.where(tolerance > 0, err / tolerance, torch.where(err > 0, torch.inf, 0.0))
    worst = int(torch.argmax(ratio))
    worst_ratio = float(ratio[worst])
    passed = worst_ratio <= 1.0
    reason = (
        None
        if passed
        else f"row {worst}: |C.r - A.(B.r)| = {float(err[worst]):.4g} exceeds tolerance {float(tolerance[worst]):.4g}"
    )
    return FreivaldsResult(passed, worst_ratio, worst, float(err.max()), reason)
