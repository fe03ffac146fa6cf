"""Ninth attack round on issue 23's folded float32 proofs (bench.challenge.fold): a challenge whose float32 product is
the exact sum of K / 64 float32 products of inner dimension 64, each run held to a length-64 product's error.

An independent attacker (a dishonest operator: its node keys, its files, its arithmetic) through the real entry points:
`challenge issue` and the challenge documents, the verifier's own exact-row check (exact_rows.check, what
`challenge verify` runs on every product) and a whole round through chl.verify. What held stays a test; what got
through is fixed here or is a strict xfail naming the gap."""

import datetime as dt
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bench import challenge as chl
from bench.challenge import exact_rows
from bench.challenge.protocol import ACCURACY_INNER, FOLD
from bench.cli import main
from bench.model import keys
from bench.report import proofs
from bench.report.store import dumps, write_atomic
from tests.adversarial import block_schemes
from tests.perf import precision_table as table
from tests.test_challenge import AUDITOR, AUDITOR_ID, _answer, _drop, _errors, _issue, _receipts, verify

F64 = torch.float64
SIX = ((0, 0), (0, 1), (1, 0), (0, 2), (1, 1), (2, 0))  # slice products with i + j < 3: int8 x3's usual six


def balanced_int8(pairs=SIX, block: int = FOLD):
    """int8 x3 that nobody listed: one scale per row of A and column of B *per run* (block = FOLD: each run of a
    folded product is its own GEMM, so its scales cost nothing), and balanced digits: after the first slice
    (round(x / s * 127)) the remainder lies in [-1/2, 1/2], so each further slice takes round(rest * 254), 8 bits in
    [-127, 127], not 7. Slice products are exact (int8 x int8 into int32 over <= 64 terms), rescaled and added in
    float64, as a GPU epilogue can."""

    def scale(x):  # rows x K -> per (row, block of K) max |x|, broadcast back
        m, k = x.shape
        s = x.to(F64).abs().reshape(m, k // block, block).amax(dim=2, keepdim=True).clamp_min(1e-300)
        return s.expand(m, k // block, block).reshape(m, k)

    def cut(x, s):
        rest, out = x.to(F64) / s * 127.0, []
        for _ in range(3):
            q = torch.round(rest).clamp(-127, 127)
            out.append(q * s / 127.0)
            rest, s = (rest - q) * 254.0, s / 254.0
        return out

    def run(a, b, dtype):
        qa, qb = cut(a, scale(a)), cut(b, scale(b.T).T)
        acc = torch.zeros(a.shape[0], b.shape[1], dtype=F64)
        for i, j in pairs:
            acc += qa[i] @ qb[j]
        return table.out(acc, dtype)

    return run


def _operands(n, inner, seed=0):
    nonce = f"{seed:064x}"
    return tuple(chl.operand(nonce, "node", "GPU-x", 0, w, n, "float32", 3, inner=inner) for w in "AB")


def _check(a, b, c, seed=0):
    """The verifier's own check of c against a folded challenge (runs of FOLD)."""
    return exact_rows.check(a, b, c, "float32", np.random.default_rng(seed), operands=3, fold=FOLD)


def _mixed(a, b, cheap, every):
    """Every `every`-th run by `cheap`, the others an honest float32 run, the runs added exactly."""
    runs = [torch.from_numpy(np.asarray(cheap(a[:, j : j + FOLD], b[j : j + FOLD], "float32"))).to(F64)
            if (j // FOLD) % every == 0 else (a[:, j : j + FOLD] @ b[j : j + FOLD]).to(F64)
            for j in range(0, a.shape[1], FOLD)]  # fmt: skip
    return sum(runs).float()


def _round(tmp_path, n, inner, product, seed=0):
    path, ch = _issue(tmp_path, n=n, products=1, inner=inner, fold=FOLD)
    drop = _drop(tmp_path)
    base = _answer(drop, ch, product=product)
    return verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}), rng=np.random.default_rng(seed),
                  generator=torch.Generator().manual_seed(seed))  # fmt: skip


# --- the fold field and K: downgrade --------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "inner", "fold", "operands"),
                         [("float32", 512, 0, 3), ("float32", 512, 1, 3), ("float32", 512, -64, 3),
                          ("float32", 512, 63, 3), ("float32", 512, 65, 3), ("float32", 512, 128, 3),
                          ("float32", 512, 2**40, 3), ("float32", 512, "64", 3), ("float32", 512, True, 3),
                          ("float32", 512, 64.0, 3), ("float32", 512, [64], 3), ("float32", 64, 64, 3),
                          ("float32", 65 * 64 + 1, 64, 3), ("float32", 512, 512, 3), ("bfloat16", 512, 64, 3),
                          ("float64", 512, 64, 3), ("float32", None, 64, 1)])  # fmt: skip
def test_a_fold_the_check_was_not_measured_for_is_refused(dtype, inner, fold, operands):
    """Held, except 64.0 and n = 128: a fold spelled as a float (64.0 == 64 in Python) was accepted, and the node's
    torch.split(64.0) then failed while the verifier's modulo worked; fixed: fold must be an int. A fold at n below
    exact_rows.MIN_ROW_WIDTH: below (test_a_narrow_folded_challenge_is_not_issued)."""
    data = {"kind": chl.CHALLENGE_KIND, "schema_version": 1, "nonce": "0" * 64, "dtype": dtype, "operands": operands,
            "n": 256, **({} if inner is None else {"inner": inner}), "fold": fold, "products": 1,
            "issued_utc": "2026-12-07T00:00:00.000000Z", "deadline_utc": "2026-12-07T00:10:00.000000Z", "nodes": None}  # fmt: skip
    with pytest.raises(chl.ChallengeError, match="fold must be"):
        chl.Challenge.from_dict(data, "challenge")


def test_challenge_issue_never_unfolds_float32_silently(tmp_path):
    """Fixed: `challenge issue --dtype float32 --inner 4000` (not a multiple of 64) silently wrote an *unfolded*
    challenge at K = 4000, judged as one sequential float32 sum, where int8 x3 passes (tests/challenge/test_fold.py:
    0.4-0.9 at K = 4096 unfolded): the auditor asked a float32 proof and got a float32-accurate one. Now refused
    (exit 2) unless --no-fold says so, and --no-fold at K > 64 says in its output what it proves."""
    key = tmp_path / "auditor.key"
    keys.create(key)
    base = ["challenge", "issue", "--dtype", "float32", "--size", "256", "--products", "1", "--auditor-key", str(key)]
    refused = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "a.json"), "--inner", "4000"])
    assert refused.exit_code == 2, refused.output
    assert "multiple of 64" in refused.output and not (tmp_path / "a.json").exists()
    folded = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "b.json"), "--inner", "4096"])
    assert folded.exit_code == 0 and json.loads((tmp_path / "b.json").read_text())["fold"] == FOLD, folded.output
    short = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "c.json"), "--inner", "48"])
    assert short.exit_code == 0 and "fold" not in json.loads((tmp_path / "c.json").read_text()), short.output
    weak = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "d.json"), "--inner", "4000", "--no-fold"])
    assert weak.exit_code == 0 and "float32-accurate" in weak.output, weak.output


def test_a_proof_says_whether_its_float32_challenge_was_folded():
    """Fixed: a proof named dtype, n and K but not the fold nor the operand version, so a reader citing a float32
    bound (capacity's proven tier, `bench verify --proof`) could not tell a folded K = 8192 proof (int8 x3 refused by
    3.7x) from an unfolded one (int8 x3 passes). Both now travel in the signed proof."""
    for fold in (FOLD, None):
        data = chl.issue(AUDITOR, dtype="float32", n=256, products=1, window=dt.timedelta(minutes=5), nodes=None,
                         inner=8192, fold=fold)  # fmt: skip
        proof = proofs.document(data, [], AUDITOR)
        assert (proof["fold"], proof["operands"]) == (fold, 3)


# --- cheaper arithmetic through the fold -----------------------------------------------------------------------------


def test_int8_x3_with_per_run_scales_and_balanced_digits_fails_on_its_own():
    """Held, narrowly: the scheme above (6 int8 products a run) scores about 1.8 at n = 256, K = 4096 (block-32
    scales with 7-bit slices, the scheme the builder measured, scores 3.9). A check loosened 1.5x would pass it."""
    a, b = _operands(256, 4096)
    got = _check(a, b, torch.from_numpy(balanced_int8()(a, b, "float32")).float())
    assert not got.passed and got.score < 3, got


@pytest.mark.xfail(strict=True, reason="gap (issue 23): int8 x3 with per-run row/column scales and balanced 8-bit "
                   "digits (6 int8 GEMMs a run, ~23 bits) fails the folded check by about 1.8x, not 3x: the pass "
                   "mark (1) sits 1.5-1.8x above honest folds (0.55-0.66), so no accuracy rule can hold a scheme "
                   "within 1.8x of float32's error to a 3x margin")  # fmt: skip
def test_every_scheme_less_accurate_than_float32_fails_by_3x():
    a, b = _operands(256, 4096)
    assert _check(a, b, torch.from_numpy(balanced_int8()(a, b, "float32")).float()).score >= 3


@pytest.mark.xfail(strict=True, reason="gap (issue 23): one run in six computed with 6-product balanced int8 x3 "
                   "(per-run scales), the rest in float32, passes the verifier (0.87-0.90 on 3 seeds; one in five "
                   "0.90-0.96): 17% of the runs at int8 rates, against the 1 in 32 the builder measured with block-32 "
                   "int8 x3")  # fmt: skip
def test_one_run_in_six_in_balanced_int8_is_refused(tmp_path):
    verdict = _round(tmp_path, 256, 4096, lambda a, b: _mixed(a, b, balanced_int8(), 6))
    assert verdict.fleet["verified_flops"] == 0


def test_one_run_in_three_in_balanced_int8_is_refused(tmp_path):
    """Held, just past the margin: one run in three by the scheme above scores about 1.1 and fails through the
    auditor (a check loosened 1.5x passes it)."""
    verdict = _round(tmp_path, 256, 4096, lambda a, b: _mixed(a, b, balanced_int8(), 3))
    assert verdict.fleet["verified_flops"] == 0
    assert any("exact-row check failed" in e for e in _errors(verdict)), _errors(verdict)


def test_eight_int8_products_a_run_pass_as_float32_accurate():
    """Policy, not a bug (docs/proofs.md: what is as accurate as float32 counts): with the two products i + j = 3
    added (8 int8 GEMMs a run, against int8 x4's 10), the scheme scores about 0.8, within the range of honest
    orders (a sequential sum scores up to 0.66 per row at K = 64)."""
    a, b = _operands(256, 4096)
    got = _check(a, b, torch.from_numpy(balanced_int8((*SIX, (1, 2), (2, 1)))(a, b, "float32")).float())
    assert got.passed and got.score > 0.6, got


def _float32_proof(tmp_path, name, **kw):
    """A proof the auditor signed for one device of a float32 challenge of (n = 256, kw)."""
    ch = chl.issue(AUDITOR, dtype="float32", n=256, products=1, window=dt.timedelta(minutes=5), nodes=None, **kw)
    path = tmp_path / f"{name}.proof.json"
    write_atomic(path, dumps(proofs.document(ch, [{"device": "GPU-a", "tflops_lower_bound": 50.0}], AUDITOR)))
    return path


def test_a_float32_proof_of_an_unfolded_long_k_proves_nothing(tmp_path):
    """Fixed: an auditor's `challenge issue --no-fold --inner 8192` (or the square form, or the former default
    K = 2n) asks a float32 challenge that int8 x3 and bf16x3 pass, and its proof counted in the float32 proven tier
    as if folded: an operator answering with int8 got `supported (proven)`. Such a proof is now refused where it is
    read (a finding, no bound); a folded one and a K = 64 one still count."""
    weak = _float32_proof(tmp_path, "weak", inner=8192)
    folded = _float32_proof(tmp_path, "folded", inner=8192, fold=FOLD)
    short = _float32_proof(tmp_path, "short", inner=64)
    got = proofs.read([weak, folded, short], {AUDITOR_ID})
    assert [f.message for f in got.findings if "float32-accurate" in f.message] and len(got.findings) == 1
    assert len(got.tflops["float32"]) == 2  # the folded and the K = 64 proofs, not the weak one
    assert proofs.FLOAT32_RUN == FOLD == ACCURACY_INNER["float32"]


def test_a_narrow_folded_challenge_is_not_issued(tmp_path):
    """Fixed: below exact_rows.MIN_ROW_WIDTH (n = 256) a row is held to the per-element allowance, which a fold sized
    for 64 terms while t spans all K: at n = 128 `challenge issue` asked K = 256 folded, and int8 x3 with block
    scales scored 0.86 and passed the verifier's own check (5.05 at the unfolded K = 64). A fold now needs n >= 256:
    challenge issue asks K = 64 unfolded there, and a folded narrow challenge is refused."""
    nonce = "0" * 64
    a, b = (chl.operand(nonce, "node", "GPU-x", 0, w, 128, "float32", 3, inner=256) for w in "AB")
    cheap = torch.from_numpy(block_schemes.SCHEMES["int8 block32 x3"](a, b, "float32")).float()
    assert _check(a, b, cheap).passed  # what the narrow fold let through
    assert chl.default_inner("float32", 128) == 64 and chl.default_fold("float32", 256, 128) is None
    a, b = (chl.operand(nonce, "node", "GPU-x", 0, w, 128, "float32", 3, inner=64) for w in "AB")
    cheap = torch.from_numpy(block_schemes.SCHEMES["int8 block32 x3"](a, b, "float32")).float()
    got = exact_rows.check(a, b, cheap, "float32", np.random.default_rng(0), operands=3)
    assert got.score > 3, got
    with pytest.raises(chl.ChallengeError, match="n at least 256"):
        _issue(tmp_path, n=128, products=1, inner=256, fold=FOLD)
