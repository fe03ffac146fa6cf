"""The issue's attack, as a dishonest operator makes it: real challenge rounds (issue, answer, receipts, verify) with
only the product replaced by a cheaper scheme. On version 1 operands (uniform in [-1, 1), the allowance of a
sequential sum with output slack) int8 answered bfloat16 and bf16x3 answered float32, and the proofs verified; on
version 2 operands (what `issue` writes now) every one of them fails."""

import datetime as dt

import pytest
import torch

from bench import challenge as chl
from bench.model import sign
from bench.report.store import dumps, write_atomic
from tests.perf import precision_table as table
from tests.test_challenge import AUDITOR, _answer, _drop, _errors, _receipts, verify


def _scheme(name):
    return lambda a, b: torch.from_numpy(table.CHEAPER[name](a, b, DTYPE[name])).to(getattr(torch, DTYPE[name]))


DTYPE = {"int8 tensor x1": "bfloat16", "int8 row x1": "bfloat16", "int8 row x2": "bfloat16", "bf16x3": "float32"}


def _round(tmp_path, name, operands, n=256, inner=None, fold=None):
    dtype = DTYPE[name]
    data = chl.issue(AUDITOR, dtype=dtype, n=n, products=1, window=dt.timedelta(minutes=5), nodes=None,
                     now=dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC), inner=inner, fold=fold)  # fmt: skip
    if operands == 1:  # a challenge as issued before the generator's version existed
        data = {k: v for k, v in data.items() if k not in ("signature", "operands", "inner")}
        data["signature"] = sign.sign(data, AUDITOR)
    path = tmp_path / "challenge.json"
    write_atomic(path, dumps(data))
    ch = chl.load_challenge(path)
    assert (ch.operands == 1) == (operands == 1)  # 2: what `issue` writes now (version 2 or 3 operands)
    drop = _drop(tmp_path)
    base = _answer(drop, ch, product=lambda a, b: _scheme(name)(a, b))
    return verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))


@pytest.mark.parametrize("name", ["int8 tensor x1", "int8 row x1", "bf16x3"])
def test_version_1_operands_let_cheaper_arithmetic_through(tmp_path, name):
    verdict = _round(tmp_path, name, operands=1)
    assert _errors(verdict) == [] and verdict.fleet["verified_flops"] > 0


@pytest.mark.parametrize("name", ["int8 tensor x1", "int8 row x1", "int8 row x2", "bf16x3"])
def test_version_2_operands_refuse_it(tmp_path, name):
    """In the square form (K = n); bf16x3 at `challenge issue`'s default K for float32: below."""
    verdict = _round(tmp_path, name, operands=2)
    assert verdict.fleet["verified_flops"] == 0
    assert any("exact-row check failed" in e for e in _errors(verdict)), _errors(verdict)


def test_bf16x3_is_refused_at_the_default_inner_dimension(tmp_path):
    """Passed (0.92) under the per-element float32 allowance at K = 2n; the row rule (exact_rows.sequential_scores)
    refuses it (6.3 at K = 2n unfolded, about 18 at K = 64 and at today's default, K = 2n folded in runs of 64)."""
    inner = chl.default_inner("float32", 256)
    verdict = _round(tmp_path, "bf16x3", operands=2, inner=inner, fold=chl.default_fold("float32", inner))
    assert (verdict.challenge.inner, verdict.challenge.fold) == (512, 64)
    assert verdict.fleet["verified_flops"] == 0
    assert any("exact-row check failed" in e for e in _errors(verdict)), _errors(verdict)


def test_an_honest_version_2_round_proves_its_flops(tmp_path):
    path_dtype = "bfloat16"
    data = chl.issue(AUDITOR, dtype=path_dtype, n=256, products=2, window=dt.timedelta(minutes=5), nodes=None,
                     now=dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC))  # fmt: skip
    path = tmp_path / "challenge.json"
    write_atomic(path, dumps(data))
    ch = chl.load_challenge(path)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert _errors(verdict) == [] and verdict.fleet["verified_flops"] == 2 * 2 * 256**3


def test_a_version_2_answer_turns_reduced_precision_reductions_off(tmp_path, monkeypatch):
    """cuBLAS may reduce half-precision split-K partials in the output format unless told not to; version 2 allows no
    output slack, so the node answers with those reductions off, and restores them after."""
    from bench.challenge import node

    seen = []
    real = node.multiply

    def spy(device, a, b, *rest):
        m = torch.backends.cuda.matmul
        seen.append((m.allow_fp16_reduced_precision_reduction, m.allow_bf16_reduced_precision_reduction))
        return real(device, a, b, *rest)

    monkeypatch.setattr(node, "multiply", spy)
    data = chl.issue(AUDITOR, dtype="bfloat16", n=64, products=2, window=dt.timedelta(minutes=5), nodes=None)
    ch = chl.Challenge.from_dict(data, "challenge")
    device = {"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "host-a"}
    node.compute_all(ch, "node-a", device)
    node.compute(ch, "node-a", device, 0)
    assert seen == [(False, False)] * 3
    m = torch.backends.cuda.matmul
    assert m.allow_fp16_reduced_precision_reduction and m.allow_bf16_reduced_precision_reduction
