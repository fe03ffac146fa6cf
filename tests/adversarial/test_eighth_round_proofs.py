"""Attack round on issue 23's proofs after the inner dimension (commit f6aab74: A is n x K, B is K x n), attacker
'attack8': a dishonest operator holding its node keys, choosing its files, timing and arithmetic, driven through real
rounds (issue, answer, receipts, verify) as the seventh round's file does. Tests that say 'held' are attacks the
protocol refused; strict xfails are attacks that succeed, each naming its gap."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import numpy as np
import pytest
import torch

from bench import challenge as chl
from bench.challenge import exact_rows, generator
from bench.model import sign
from bench.report.store import dumps, write_atomic
from tests.adversarial import block_schemes
from tests.perf import precision_table as table
from tests.test_challenge import AUDITOR, NODE_KEY, _answer, _drop, _errors, _issue, _receipts, verify


def _round(tmp_path, dtype, n, inner, product=None, **kw):
    """One node's honest or cheating answer to a fresh challenge of (dtype, n, inner), verified with fixed secrets."""
    path, ch = _issue(tmp_path, dtype=dtype, n=n, products=1, inner=inner, fold=kw.get("fold"))
    drop = _drop(tmp_path)
    base = _answer(drop, ch, product=product)
    return verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}), rng=np.random.default_rng(kw.get("seed", 0)),
                  generator=torch.Generator().manual_seed(kw.get("seed", 0)))  # fmt: skip


def _scheme(fn, dtype):
    """A cheaper scheme from the precision table or block_schemes, as a product(a, b) hook for _answer."""

    def run(a, b):
        table._CACHE.clear()
        return torch.from_numpy(np.asarray(fn(a, b, dtype))).to(getattr(torch, dtype))

    return run


# --- the inner dimension: chosen by the auditor alone ----------------------------------------------------------------


def test_a_node_cannot_declare_a_shorter_inner_dimension(tmp_path):
    """Held: the node multiplies the square corner (K = n, a quarter of the work at K = 4n), and writes K = n into
    every committed product, its reveal manifest (shape, inner) and the commitment itself. The verifier reads K only
    from its own copy of the challenge: the product is regenerated at K = 4n, Freivalds refuses it, nothing counts."""
    n = 64
    path, ch = _issue(tmp_path, dtype="float32", n=n, products=1, inner=4 * n)
    drop = _drop(tmp_path)
    base = _answer(drop, ch, product=lambda a, b: a[:, :n] @ b[:n])
    commit = drop / f"{base}{chl.COMMIT_SUFFIX}"
    data = json.loads(commit.read_bytes())
    data.pop("signature")
    data["inner"] = n
    for p in data["products"]:
        p["inner"] = n
    data["signature"] = sign.sign(data, NODE_KEY)
    write_atomic(commit, dumps(data))
    reveal = drop / f"{base}{chl.REVEAL_SUFFIX}"
    manifest = json.loads(reveal.read_bytes())
    for f in manifest["files"]:
        f["inner"], f["shape"] = n, [n, n]
    write_atomic(reveal, dumps(manifest))
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert verdict.fleet["verified_flops"] == 0
    assert any("Freivalds check failed" in e for e in _errors(verdict)), _errors(verdict)


def test_a_copy_of_the_challenge_without_its_inner_dimension_is_another_challenge(tmp_path):
    """Held (downgrade to the square form): the node strips "inner" from the challenge it was sent (it cannot re-sign
    it with the auditor's key) and answers that square copy honestly. Its commitment names the copy's digest, not the
    auditor's: refused before any product is read, and nothing counts."""
    path, ch = _issue(tmp_path, dtype="bfloat16", n=32, products=1, inner=16 * 32)
    square = {k: v for k, v in ch.data.items() if k != "inner"}
    copy = chl.Challenge(ch.nonce, ch.dtype, ch.n, ch.products, ch.issued, ch.deadline, ch.nodes, square)
    assert copy.inner == ch.n and copy.nonce == ch.nonce
    drop = _drop(tmp_path)
    base = _answer(drop, copy)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert verdict.fleet["verified_flops"] == 0
    assert any("challenge_digest differs" in e for e in _errors(verdict)), _errors(verdict)


def test_a_reveal_cannot_declare_a_larger_product_or_inflate_past_it(tmp_path, monkeypatch):
    """Held (memory): the manifest declares a product of 65536 x 65536 and its file inflates to 64 MiB of zeros. The
    verifier sizes what it decompresses by its own n (n x n x itemsize), never by the manifest, and stops there."""
    from bench.model import intake

    path, ch = _issue(tmp_path, dtype="float32", n=32, products=1, inner=64)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    reveal = drop / f"{base}{chl.REVEAL_SUFFIX}"
    manifest = json.loads(reveal.read_bytes())
    entry = manifest["files"][0]
    entry["shape"] = [65536, 65536]
    write_atomic(reveal, dumps(manifest))
    with gzip.open(drop / entry["file"], "wb") as fh:
        for _ in range(64):
            fh.write(bytes(2**20))
    asked = []
    real = intake.read_gzip
    monkeypatch.setattr(
        intake, "read_gzip", lambda p, expected, **kw: asked.append(expected) or real(p, expected, **kw)
    )
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert verdict.fleet["verified_flops"] == 0 and asked == [32 * 32 * 4]
    assert any("decompresses to more" in e for e in _errors(verdict)), _errors(verdict)


def test_the_verifier_generates_two_n_k_elements_per_product(tmp_path, monkeypatch):
    """Held (the verifier's work stays O(n K)): every element the verifier generates for a product, over all of its
    checks, is one of A's n K or B's K n, each generated once; nothing a node writes changes the shapes generated."""
    n, inner = 48, 5 * 48
    shapes = []
    real = generator.matrix

    def spy(seed, shape, dtype, rows=None, device="cpu", version=2, **kw):  # kw: the auditor's reference=True
        out = real(seed, shape, dtype, rows, device, version, **kw)
        shapes.append(tuple(out.shape))
        return out

    monkeypatch.setattr(generator, "matrix", spy)
    path, ch = _issue(tmp_path, dtype="float32", n=n, products=2, inner=inner)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    shapes.clear()  # the node's own generation above
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert _errors(verdict) == [] and verdict.fleet["verified_flops"] == 2 * 2 * n * n * inner
    assert sorted(shapes) == sorted([(n, inner), (inner, n)] * 2), shapes


# --- cheaper arithmetic at the new K -------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "name", "scheme"), [
    ("bfloat16", "int8 row x1", table.CHEAPER["int8 row x1"]),
    ("bfloat16", "int8 block32 x2", block_schemes.SCHEMES["int8 block32 x2"]),
    ("bfloat16", "mxfp8 e4m3 x2 (3 products)", block_schemes.SCHEMES["mxfp8 e4m3 x2 (3 products)"]),
    ("float16", "int8 row x2", table.CHEAPER["int8 row x2"]),
    ("float16", "fp8", table.CHEAPER["fp8"]),
    ("float32", "tf32x2", block_schemes.SCHEMES["tf32x2"]),
    ("float32", "bf16x2", block_schemes.SCHEMES["bf16x2"]),
])  # fmt: skip
def test_cheaper_arithmetic_at_the_default_inner_dimension_is_refused(tmp_path, dtype, name, scheme):
    """Held at n = 128 and `challenge issue`'s K (16n for half precisions, 2n for float32): each scheme's error
    (about u_cheap t per element) is past the allowance 3.5 u_acc sqrt(K) t. Measured scores at this n: bf16 int8 row
    x1 ~400, int8 block32 x2 ~3.5, mxfp8 x2 ~25; float32 tf32x2 ~45, bf16x2 ~390 (explore script in the report).
    float16 fp8 and float32's two-part splits are already past Freivalds' tolerance."""
    n = 128
    verdict = _round(tmp_path, dtype, n, chl.default_inner(dtype, n), _scheme(scheme, dtype))
    assert verdict.fleet["verified_flops"] == 0, name
    assert any("exact-row check failed" in e or "Freivalds check failed" in e for e in _errors(verdict))


@pytest.mark.xfail(strict=True, reason="gap: the exact-row allowance grows as sqrt(K) and a cheaper scheme's error "
                   "does not: at the default K for n = 8192 (16n = 131072 before the half-precision cap, 16384 now: "
                   "protocol.INNER_CAP) bfloat16 answered by int8 split in two 7-bit slices is not refused with a 3x "
                   "margin (at K = 32768 it scored about 1: row scales 1.1-1.3, 32-block scales 0.76-1.02 over three "
                   "seeds, so a verdict depended on the verifier's secret rows). On H100/A100 int8 runs at 2x bf16, so 3 GEMMs cost 1.5x an "
                   "honest product; where int8 is 4x a bf16 product with float32 accumulation (GeForce Ada: 660 vs 165 "
                   "TOPS) it is 1.3x cheaper and proves bf16 work it did not do")  # fmt: skip
@pytest.mark.parametrize("name", ["int8 row x2", "int8 block32 x2"])
def test_int8_in_two_slices_is_refused_for_bfloat16_at_n_8192s_inner_dimension(name):
    """Scored through exact_rows' own rule with fixed seeds (a verification round's secret rows made it flaky)."""
    scheme = table.CHEAPER.get(name) or block_schemes.SCHEMES[name]
    inner = chl.default_inner("bfloat16", 8192)
    worst = min(table.scores("bfloat16", 64, seed=seed, inner=inner, schemes={name: scheme})[name] for seed in range(3))
    assert worst > 3, worst


def _strassen(levels):
    """Strassen's algorithm, `levels` deep, in float32 (7 block products instead of 8 per level: 2 levels do 49/64 of
    the multiplications), then the classical product below."""

    def rec(a, b, depth):
        m, k = a.shape
        n = b.shape[1]
        if depth == 0 or m % 2 or k % 2 or n % 2:
            return a @ b
        h, q, w = m // 2, k // 2, n // 2
        a11, a12, a21, a22 = a[:h, :q], a[:h, q:], a[h:, :q], a[h:, q:]
        b11, b12, b21, b22 = b[:q, :w], b[:q, w:], b[q:, :w], b[q:, w:]
        m1 = rec(a11 + a22, b11 + b22, depth - 1)
        m2 = rec(a21 + a22, b11, depth - 1)
        m3 = rec(a11, b12 - b22, depth - 1)
        m4 = rec(a22, b21 - b11, depth - 1)
        m5 = rec(a11 + a12, b22, depth - 1)
        m6 = rec(a21 - a11, b11 + b12, depth - 1)
        m7 = rec(a12 - a22, b21 + b22, depth - 1)
        return torch.cat([torch.cat([m1 + m4 - m5 + m7, m3 + m5], 1), torch.cat([m2 + m4, m1 - m2 + m3 + m6], 1)], 0)

    return lambda a, b: rec(a.float(), b.float(), levels)


def test_strassen_is_refused_for_float32_at_n_256(tmp_path):
    """Succeeded on main at f6aab74 (row score ~0.2 under the per-element allowance 3.5 u sqrt(K) t); held since the
    float32 sequential rule (28b62b9): two levels of Strassen (49/64 of the multiplications, counted as 2 n^2 K)
    score 1.37 at n = 256, K = 512 unfolded; `challenge issue`'s default now folds K = 2n in runs of 64."""
    inner = chl.default_inner("float32", 256)
    verdict = _round(tmp_path, "float32", 256, inner, _strassen(2), fold=chl.default_fold("float32", inner))
    assert verdict.challenge.fold == 64
    assert verdict.fleet["verified_flops"] == 0
    assert any("exact-row check failed" in e for e in _errors(verdict)), _errors(verdict)


@pytest.mark.parametrize("name", ["strassen x2", "int8 row x3", "int8 block32 x3"])
def test_cheaper_float32_is_refused_at_n_2048s_inner_dimension(tmp_path, name):
    """Succeeded at `challenge issue`'s former K = 2n (n = 2048: Strassen x2 0.76, int8 row x3 0.83, verified): a
    sequential float32 sum over 4096 terms errs as much as they do. The default float32 K is now
    protocol.ACCURACY_INNER (64), where they score 2.0-2.6, 4.5-5.9 and 3.8-4.0 and honest orders at most 0.61
    (docs/proofs.md); today's default, n = 2048's K = 4096 folded in runs of 64 (bench.challenge.fold), holds them to
    the same: a full round at n = 256 (the row rule's width) with that K refuses each. An auditor who asks a
    longer K with --no-fold is back where they pass (the stated limit in docs/proofs.md)."""
    product = {"strassen x2": _strassen(2), "int8 row x3": _scheme(table.CHEAPER["int8 row x3"], "float32"),
               "int8 block32 x3": _scheme(block_schemes.SCHEMES["int8 block32 x3"], "float32")}[name]  # fmt: skip
    inner = chl.default_inner("float32", 2048)
    verdict = _round(tmp_path, "float32", 256, inner, product, fold=chl.default_fold("float32", inner))
    assert (verdict.challenge.inner, verdict.challenge.fold) == (4096, 64)
    assert verdict.fleet["verified_flops"] == 0
    assert any("exact-row check failed" in e for e in _errors(verdict)), _errors(verdict)


def test_strassen_with_half_precision_sums_is_refused_for_bfloat16(tmp_path):
    """Held: for a bfloat16 challenge Strassen's operand sums (a11 + a22, ...) must be rounded to bfloat16 to run on
    bf16 tensor cores, and that rounding (2^-9 of each sum) is far past the allowance; summed in float32 they need a
    float32 product, which costs more than the honest bf16 one."""

    def half_sums(a, b):
        m, k = a.shape
        n = b.shape[1]
        h, q, w = m // 2, k // 2, n // 2
        r = lambda x: x.to(torch.bfloat16).float()
        a, b = a.float(), b.float()
        a11, a12, a21, a22 = a[:h, :q], a[:h, q:], a[h:, :q], a[h:, q:]
        b11, b12, b21, b22 = b[:q, :w], b[:q, w:], b[q:, :w], b[q:, w:]
        m1, m2, m3 = r(a11 + a22) @ r(b11 + b22), r(a21 + a22) @ b11, a11 @ r(b12 - b22)
        m4, m5 = a22 @ r(b21 - b11), r(a11 + a12) @ b22
        m6, m7 = r(a21 - a11) @ r(b11 + b12), r(a12 - a22) @ r(b21 + b22)
        top = torch.cat([m1 + m4 - m5 + m7, m3 + m5], 1)
        return torch.cat([top, torch.cat([m2 + m4, m1 - m2 + m3 + m6], 1)], 0).to(torch.bfloat16)

    verdict = _round(tmp_path, "bfloat16", 64, chl.default_inner("bfloat16", 64), half_sums)
    assert verdict.fleet["verified_flops"] == 0
    assert any("exact-row check failed" in e for e in _errors(verdict)), _errors(verdict)


# --- honest hardware at the new K ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("per_step", [8, 16])
def test_an_honest_tensor_core_product_verifies_at_n_8192s_inner_dimension(tmp_path, dtype, per_step):
    """Failed at the default K = 16n (an honest answer refused): tensor cores add each MMA step's products to the
    float32 accumulator rounded toward zero (Fasi et al. 2021; Khattak and Mikaitis 2025 for H100), a biased error
    that grows faster than the sqrt(K) allowance; an honest float16 product with 16 products per step scored 1.2-1.4
    at n = 8192 (K = 131072), and with 8 per step (A100-style) float16 failed from K = 32768, bfloat16 from 65536. The
    default K for half precisions is now capped below those (protocol.INNER_CAP: 8192 float16, 16384 bfloat16, where
    8 a step scores at most 0.39 over four seeds; at 16384 and 32768 bfloat16 reached 1.06 on one);
    a truncation term in exact_rows, sized on real-GPU scores, is still what a longer K would need."""
    verdict = _round(tmp_path, dtype, 64, chl.default_inner(dtype, 8192),
                     _scheme(block_schemes.tensor_core(per_step), dtype))  # fmt: skip
    assert _errors(verdict) == [], _errors(verdict)


def test_an_honest_tensor_core_product_verifies_at_a_moderate_inner_dimension(tmp_path):
    """Held: at K = 4096 (the default for n = 256) the same honest tensor-core product verifies."""
    verdict = _round(tmp_path, "float16", 64, chl.default_inner("float16", 256),
                     _scheme(block_schemes.tensor_core(16), "float16"))  # fmt: skip
    assert _errors(verdict) == [] and verdict.fleet["verified_flops"] == 2 * 64 * 64 * 4096


# --- what a proof says ---------------------------------------------------------------------------------------------


def test_a_proof_and_a_verdict_name_their_inner_dimension():
    """Fixed: a proof (and `challenge verify --json`) named n but not K, so a reader could not tell a proof of 2 n^3
    FLOPs a product from one of 2 n^2 K (its bounds were right; its shape was not stated). Both now carry "inner" (n
    for a square challenge)."""
    from bench.report import proofs

    data = chl.issue(AUDITOR, dtype="bfloat16", n=64, products=1, window=dt.timedelta(minutes=5), nodes=None,
                     inner=1024)  # fmt: skip
    assert proofs.document(data, [], AUDITOR)["inner"] == 1024
    assert chl.Verdict(chl.Challenge.from_dict(data, "challenge")).to_dict()["inner"] == 1024
    square = {k: v for k, v in data.items() if k != "inner"}
    assert proofs.document(square, [], AUDITOR)["inner"] == 64


# --- thresholds: the half-precision allowance at its margin ---------------------------------------------------------


def _half_at_margin(dtype: str, n: int, inner: int, factor: float):
    """A product whose sampled rows each score `factor` under the half-precision rule, as the rule is stated (written
    out here, not read from exact_rows): d = max(0, |C - c| - ulp/2), tau = 3.5 * 2**-24 * sqrt(K) * t, row score
    RMS(d / tau). Every element is rounded to nearest (d = 0) except one or two per row, rounded to the far neighbour,
    chosen so that their (d / tau)^2 sum to n factor^2. Returns (A, B, C, the worst relative miss of that sum)."""
    a = chl.operand("ef" * 32, "node", "dev", 0, "A", n, dtype, 2, inner=inner)
    b = chl.operand("ef" * 32, "node", "dev", 0, "B", n, dtype, 2, inner=inner)
    a64, b64 = a.double().numpy(), b.double().numpy()
    exact = a64 @ b64
    tau = 3.5 * 2.0**-24 * np.sqrt(inner) * np.sqrt((a64 * a64) @ (b64 * b64))
    near = torch.from_numpy(exact).to(getattr(torch, dtype))
    up = torch.nextafter(near, torch.full_like(near, np.inf)).double().numpy()
    down = torch.nextafter(near, torch.full_like(near, -np.inf)).double().numpy()
    far = np.where(exact > near.double().numpy(), up, down)
    bits = {"bfloat16": 8, "float16": 11}[dtype]
    ulp = np.ldexp(1.0, np.frexp(np.maximum(np.abs(far), np.abs(exact)))[1] - bits)
    ratio = np.maximum(np.abs(far - exact) - ulp / 2, 0) / tau
    c = near.double().numpy()
    target, worst = n * factor**2, 0.0
    for i in range(n):
        cand = np.flatnonzero((ratio[i] > 0) & (ratio[i] ** 2 < target))
        sq = ratio[i, cand] ** 2
        sums = sq[:, None] + np.where(np.eye(len(cand), dtype=bool), 0.0, sq[None, :])  # one element, or two
        p, q = np.unravel_index(np.argmin(np.abs(sums - target)), sums.shape)
        worst = max(worst, abs(float(sums[p, q]) - target) / target)
        c[i, cand[[p, q]]] = far[i, cand[[p, q]]]
    return a, b, torch.from_numpy(c).to(getattr(torch, dtype)), worst


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize(("factor", "passes"), [(0.85, True), (1.15, False)])
def test_the_half_precision_allowance_at_its_margin(dtype, factor, passes):
    """Found: nothing held the half-precision allowance to its margin through the verifier's check (the threshold
    tests build float32 products; the bfloat16 one fails by far), so loosening it 2x (ACCUMULATOR_U of bfloat16 and
    float16 2**-23 instead of 2**-24) failed no test in tests/challenge. Rows scoring 0.85 pass and 1.15 fail."""
    a, b, c, miss = _half_at_margin(dtype, 256, 4096, factor)
    assert miss < 0.02
    check = exact_rows.check(a, b, c, dtype, np.random.default_rng(1))
    assert check.passed is passes, check
    assert abs(check.score - factor) < 0.03 * factor


def test_the_rows_checked_catch_a_product_cheap_in_one_row_of_eight():
    """Found: the number of rows recomputed (exact_rows.ROWS = 16) had no test: checking 4 failed nothing in
    tests/challenge. A product computed in bfloat16 in every eighth row (float32 elsewhere) escapes a 16-row check with
    probability C(56, 16) / C(64, 16) ~ 0.09 at n = 64, a 4-row one with ~0.58: over 40 verifier seeds the 16-row
    check catches it at least 32 times (it does 38; with 4 rows, 17)."""
    a = chl.operand("12" * 32, "node", "dev", 0, "A", 64, "float32", 2, inner=128)
    b = chl.operand("12" * 32, "node", "dev", 0, "B", 64, "float32", 2, inner=128)
    c = a @ b
    c[::8] = (a[::8].bfloat16().float() @ b.bfloat16().float()).bfloat16().float()
    caught = sum(not exact_rows.check(a, b, c, "float32", np.random.default_rng(seed)).passed for seed in range(40))
    assert caught >= 32, caught


@pytest.mark.parametrize(("factor", "passes"), [(0.8, True), (1.2, False)])
def test_freivalds_bfloat16_at_its_margin(factor, passes):
    """Found: Freivalds' tolerance was held to its margin for float32 only, where the output term is small, so
    loosening the output roundings 2 -> 3 or bfloat16's unit roundoff 1.5x failed no test in tests/challenge. For
    bfloat16 at the default K = 16n the output term 8 * 2 * 2**-8 ||C_i|| is nearly all of it (written out here, with
    the accumulation term 8 * 2**-24 sqrt(K) ||A_i|| ||B||_F): one element of row 7 moved by factor x the row's
    tolerance passes at 0.8 and fails at 1.2."""
    from bench import precision as prec
    from bench.workloads import freivalds

    n, inner = 256, chl.default_inner("bfloat16", 256)
    a = chl.operand("34" * 32, "node", "dev", 0, "A", n, "bfloat16", 2, inner=inner)
    b = chl.operand("34" * 32, "node", "dev", 0, "B", n, "bfloat16", 2, inner=inner)
    c = (a.double() @ b.double()).bfloat16()
    a64, c64 = a.double(), c.double()
    b_frob = float(b.double().norm())
    tol = 8 * (2 * 2.0**-8 * c64.norm(dim=1) + 2.0**-24 * np.sqrt(inner) * a64.norm(dim=1) * b_frob)
    bad = c64.clone()
    bad[7, 3] += factor * float(tol[7])
    result = freivalds.check(a, b, bad.bfloat16(), prec.get("bfloat16"), generator=torch.Generator().manual_seed(0))
    assert result.passed is passes, result
    assert result.worst_row == 7 and abs(result.worst_ratio - factor) < 0.05 * factor, result


def test_two_freivalds_vectors_catch_errors_that_cancel_under_one(tmp_path):
    """Found: the number of Freivalds vectors per product (protocol.FREIVALDS_VECTORS = 2) had no test: one failed
    nothing. Row 5 gains +1 in two elements, which one sign vector cancels with probability 1/2 (two: 1/4); the exact
    rows see row 5 one time in 16 at n = 256. Over 40 verifier seeds two vectors refuse the product at least 27 times
    (30 here; with one vector, 23)."""
    path, ch = _issue(tmp_path, dtype="float32", n=256, products=1, inner=256)
    drop = _drop(tmp_path)

    def cancelling(a, b):
        c = a @ b
        c[5, 10] += 1.0
        c[5, 20] += 1.0
        return c

    base = _answer(drop, ch, product=cancelling)
    receipts = _receipts(tmp_path, ch, drop, {base: 1.0})
    caught = sum(verify(path, drop, receipts, rng=np.random.default_rng(seed),
                        generator=torch.Generator().manual_seed(seed)).fleet["verified_flops"] == 0
                 for seed in range(40))  # fmt: skip
    assert caught >= 27, caught
