"""Every threshold a proof's verdict rests on, tested just past its margin through the verifier's own checks: the
exact-row pass mark (1) and its allowances (float32: 1.6 times a sequential sum's expected error, judged over a row;
every other dtype: 3.5 u sqrt(K) t per element, no output slack), and Freivalds' tolerance (Z = 8 times the bound in
bench.workloads.freivalds). The allowances below are written out from their
stated formulas, not read from the modules: loosening a constant there by 1.5x (or the pass mark) fails a test here."""

import math

import numpy as np
import pytest
import torch

from bench import challenge as chl
from bench import precision as prec
from bench.challenge import exact_rows
from bench.workloads import freivalds

N = 256


def _operands(dtype: str = "float32", inner: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    return (chl.operand("ab" * 32, "node", "dev", 0, "A", N, dtype, 2, inner=inner),
            chl.operand("ab" * 32, "node", "dev", 0, "B", N, dtype, 2, inner=inner))  # fmt: skip


def _sequential_allowance(a: torch.Tensor, b: torch.Tensor, fold: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The exact product and the float32 allowance of version 2 challenges, per element: 1.6 * sqrt(1 / (8 ln 2)) *
    2**-24 * sqrt(max(p, (L + 1) t^2 - p)), p = sum_k (L - k mod L) a_k^2 b_k^2 and t^2 = sum_k a_k^2 b_k^2 (what
    sequential sums of L terms in either index order err by on these operands); L the inner dimension K, not C's
    width, or a folded challenge's run length (`fold`: K / L such sums added exactly)."""
    a64, b64 = a.double().numpy(), b.double().numpy()
    k = a.shape[1]
    run = fold or k
    t2 = (a64 * a64) @ (b64 * b64)
    p = (a64 * a64 * (run - np.arange(k) % run)) @ (b64 * b64)
    return a64 @ b64, 1.6 * math.sqrt(1 / (8 * math.log(2))) * 2.0**-24 * np.sqrt(np.maximum(p, (run + 1) * t2 - p))


@pytest.mark.parametrize("inner", [N, 4 * N])
@pytest.mark.parametrize(("factor", "passes"), [(0.85, True), (1.15, False)])
def test_exact_rows_at_its_margin(factor, passes, inner):
    """C = exact + factor * (allowance + ulp/2) with random signs: every element's error beyond rounding is factor x
    its allowance, so the row score (RMS error over RMS allowance) is factor, to the float32 rounding of C. At K = 4n
    an allowance sized by n would be half as wide, and the passing case would score 1.7."""
    a, b = _operands(inner=inner)
    exact, allowance = _sequential_allowance(a, b)
    ulp = np.ldexp(1.0, np.frexp(np.abs(exact))[1] - 24)
    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=exact.shape)
    c = torch.from_numpy(exact + signs * (factor * allowance + ulp / 2)).to(torch.float32)
    check = exact_rows.check(a, b, c, "float32", np.random.default_rng(1))
    assert check.passed is passes, check
    assert abs(check.score - factor) < 0.05 * factor


@pytest.mark.parametrize(("factor", "passes"), [(0.85, True), (1.15, False)])
def test_the_folded_allowance_at_its_margin(factor, passes):
    """A folded challenge (bench.challenge.fold, runs of 64) at K = 16 x 64: its allowance is that of 16 runs of 64
    terms, about a quarter of the unfolded one, so a check that sized it by K (or dropped the runs from p) would pass
    the failing case here."""
    a, b = _operands(inner=16 * 64)
    exact, allowance = _sequential_allowance(a, b, fold=64)
    ulp = np.ldexp(1.0, np.frexp(np.abs(exact))[1] - 24)
    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=exact.shape)
    c = torch.from_numpy(exact + signs * (factor * allowance + ulp / 2)).to(torch.float32)
    check = exact_rows.check(a, b, c, "float32", np.random.default_rng(1), fold=64)
    assert check.passed is passes, check
    assert abs(check.score - factor) < 0.05 * factor


@pytest.mark.parametrize(("factor", "passes"), [(0.85, True), (1.15, False)])
def test_the_per_element_allowance_at_its_margin(factor, passes):
    """Every other dtype (and version 1 challenges) is held element by element to tau = 3.5 u sqrt(K) t (version 2,
    no output slack): float64 here, every row checked, so the test's exact product is the check's own, bit for bit."""
    a, b = _operands("float64", inner=2 * N)
    a64, b64 = a.numpy(), b.numpy()
    exact = a64 @ b64
    tau = 3.5 * 2.0**-53 * math.sqrt(2 * N) * np.sqrt((a64 * a64) @ (b64 * b64))
    ulp = np.ldexp(1.0, np.frexp(np.abs(exact))[1] - 53)
    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=exact.shape)
    c = torch.from_numpy(exact + signs * (factor * tau + ulp / 2))
    check = exact_rows.check(a, b, c, "float64", np.random.default_rng(1), rows=N)
    assert check.passed is passes, check
    assert abs(check.score - factor) < 0.05 * factor


def test_a_half_precision_product_is_rounded_once():
    """Version 2 allows no output slack: bfloat16 partial sums rounded to bfloat16 (a split-K 'reduced precision
    reduction', two halves) fail, and the same product rounded once passes."""
    a, b = _operands("bfloat16")
    half = N // 2
    first = (a[:, :half].float() @ b[:half].float()).to(torch.bfloat16).float()
    second = (a[:, half:].float() @ b[half:].float()).to(torch.bfloat16).float()
    reduced = (first + second).to(torch.bfloat16)
    once = (a.float() @ b.float()).to(torch.bfloat16)
    assert not exact_rows.check(a, b, reduced, "bfloat16", np.random.default_rng(1)).passed
    assert exact_rows.check(a, b, once, "bfloat16", np.random.default_rng(1)).passed


def _freivalds_tolerance(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    # K = a.shape[1]: the sums' length
    """8 * (2 u ||C_i|| + u sqrt(sum_k A_ik^2 ||B_k||^2) + u sqrt(K) ||A_i|| ||B||_F), u = 2**-24 (float32)."""
    u = 2.0**-24
    a64, b64, c64 = a.double(), b.double(), c.double()
    b_rows = (b64 * b64).sum(dim=1)
    bound = (2 * u * c64.norm(dim=1) + u * torch.sqrt((a64 * a64) @ b_rows)
             + u * math.sqrt(a.shape[1]) * a64.norm(dim=1) * math.sqrt(float(b_rows.sum())))  # fmt: skip
    return 8 * bound


@pytest.mark.parametrize("inner", [N, 4 * N])
@pytest.mark.parametrize(("factor", "passes"), [(0.8, True), (1.2, False)])
def test_freivalds_at_its_margin(factor, passes, inner):
    """One element of row 7 moved by factor x the row's tolerance: |e_7| is that shift whatever the signs r are."""
    a, b = _operands(inner=inner)
    c = (a.double() @ b.double()).float()
    tol = _freivalds_tolerance(a, b, c)
    bad = c.double().clone()
    bad[7, 3] += factor * float(tol[7])
    result = freivalds.check(a, b, bad.float(), prec.get("float32"), generator=torch.Generator().manual_seed(0))
    assert result.passed is passes, result
    if not passes:
        assert result.worst_row == 7
