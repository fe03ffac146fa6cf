"""Challenges with an inner dimension: each product is A (n x K) times B (K x n), 2 n^2 K FLOPs against the n^2 outputs
the node copies and hashes in the window. `issue` sets K from the dtype; a challenge without the field is the square
form and still verifies; the node multiplies the long operands, the verifier regenerates them and counts 2 n^2 K; an
answer that ignores K (the square product) is refused."""

import datetime as dt

import pytest
from click.testing import CliRunner

from bench import challenge as chl
from bench.challenge import protocol
from bench.cli import main
from bench.model import sign
from bench.report.store import dumps, write_atomic
from tests.test_challenge import AUDITOR, T0, _answer, _drop, _errors, _issue, _receipts, verify


@pytest.mark.parametrize(("dtype", "factor"), [("float64", 2), ("bfloat16", 16), ("float16", 16)])
def test_the_default_inner_dimension_comes_from_the_dtype(dtype, factor):
    inner = chl.default_inner(dtype, 64)
    assert inner == factor * 64 == protocol.INNER_FACTOR[dtype] * 64
    data = chl.issue(AUDITOR, dtype=dtype, n=64, products=1, window=dt.timedelta(minutes=5), nodes=None, inner=inner)
    ch = chl.Challenge.from_dict(data, "challenge")
    assert data["inner"] == ch.inner == inner and ch.flops_per_product == 2 * 64 * 64 * inner
    assert chl.default_inner(dtype, protocol.MAX_N) <= protocol.MAX_INNER


def test_half_precisions_default_k_is_capped_below_where_honest_tensor_cores_fail():
    """protocol.INNER_CAP: honest tensor cores truncate, an error growing about linearly in K (see
    tests/adversarial/test_eighth_round_proofs.py); the default never asks less than n (the square form)."""
    assert chl.default_inner("float16", 8192) == 8192 and chl.default_inner("bfloat16", 8192) == 16384
    assert chl.default_inner("bfloat16", 256) == 4096 and chl.default_inner("float16", 256) == 4096
    assert chl.default_inner("bfloat16", 2048) == 16384


def test_float32s_default_k_is_folded_or_short_where_cheaper_schemes_still_fail():
    """K = 2n folded in runs of protocol.FOLD (bench.challenge.fold; the margins: tests/challenge/test_fold.py); not
    folded (--no-fold, or 2n no multiple of 64 above it), protocol.ACCURACY_INNER, at most n."""
    assert chl.default_inner("float32", 8192) == 16384 and chl.default_fold("float32", 16384) == protocol.FOLD
    assert chl.default_inner("float32", 256) == 512 and chl.default_fold("float32", 512, 256) == protocol.FOLD
    assert chl.default_inner("float32", 128) == 64 and chl.default_fold("float32", 256, 128) is None  # row width
    assert (
        chl.default_inner("float32", 8192, fold=False)
        == chl.default_inner("float32", 100)
        == 64
        == protocol.ACCURACY_INNER["float32"]
    )
    assert chl.default_inner("float32", 32) == 32 and chl.default_fold("float32", 32) is None


@pytest.mark.parametrize(("inner", "operands", "needle"), [
    (True, 2, "inner must be an integer"),
    (1, 2, "inner must be an integer"),
    (protocol.MAX_INNER + 1, 2, "inner must be an integer"),
    ("128", 2, "inner must be an integer"),
    (128, 1, "needs operands 2"),
])  # fmt: skip
def test_a_bad_inner_dimension_is_refused(inner, operands, needle):
    data = chl.issue(AUDITOR, dtype="float32", n=64, products=1, window=dt.timedelta(minutes=5), nodes=None, inner=128)
    data = {**data, "inner": inner, "operands": operands}
    with pytest.raises(chl.ChallengeError, match=needle):
        chl.Challenge.from_dict(data, "challenge")


def test_the_cli_issues_the_inner_dimension_asked(tmp_path):
    key_path = tmp_path / "auditor.pem"
    assert CliRunner().invoke(main, ["keys", "init", "--key", str(key_path)]).exit_code == 0
    for extra, inner, run in (([], 512, 64), (["--no-fold"], 64, None), (["--inner", "100", "--no-fold"], 100, None),
                              (["--inner", "1024"], 1024, 64), (["--dtype", "bfloat16"], 16 * 256, None)):  # fmt: skip
        out = tmp_path / f"ch{inner}.json"
        result = CliRunner().invoke(main, ["challenge", "issue", "-o", str(out), "--size", "256", "--auditor-key",
                                           str(key_path), *extra])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert chl.load_challenge(out).inner == inner and f"256x{inner}x256" in result.output
        assert chl.load_challenge(out).fold == run and ("folded in runs of 64" in result.output) == bool(run)


def test_a_square_challenge_without_the_field_still_verifies(tmp_path):
    """Challenges issued before the field existed: K = n, 2 n^3 FLOPs a product."""
    data = chl.issue(AUDITOR, dtype="float32", n=64, products=2, window=dt.timedelta(minutes=5), nodes=None, now=T0,
                     inner=128)  # fmt: skip
    data = {k: v for k, v in data.items() if k not in ("signature", "inner")}
    data["signature"] = sign.sign(data, AUDITOR)
    path = tmp_path / "challenge.json"
    write_atomic(path, dumps(data))
    ch = chl.load_challenge(path)
    assert ch.inner == 64 and ch.flops_per_product == 2 * 64**3
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert _errors(verdict) == [] and verdict.fleet["verified_flops"] == 2 * 2 * 64**3


def test_a_long_inner_dimension_is_multiplied_and_counted(tmp_path):
    path, ch = _issue(tmp_path, dtype="bfloat16", n=48, products=2, inner=48 * 16 + 5)
    drop = _drop(tmp_path)
    product = chl.compute(ch, "node-a", {"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "host-a"}, 0)
    assert tuple(product.c.shape) == (48, 48)
    base = _answer(drop, ch)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert _errors(verdict) == [] and verdict.fleet["verified_flops"] == 2 * 2 * 48 * 48 * (48 * 16 + 5)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_an_answer_that_ignores_the_inner_dimension_is_refused(tmp_path, dtype):
    """The square product (the first n columns of A, the first n rows of B): 1/c of the work, refused (float32's
    default K is at most n, so an auditor's --inner 2n)."""
    inner = 2 * 64 if dtype == "float32" else chl.default_inner(dtype, 64)
    path, ch = _issue(tmp_path, dtype=dtype, n=64, products=1, inner=inner)
    drop = _drop(tmp_path)
    base = _answer(drop, ch, product=lambda a, b: a[:, : ch.n] @ b[: ch.n])
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert verdict.fleet["verified_flops"] == 0
    assert any("Freivalds check failed" in e for e in _errors(verdict)), _errors(verdict)
