"""Auditor challenges: honest answers prove FLOPs / elapsed; every way of cheating in the issue is caught; inputs are
bit-identical wherever they are generated; malformed files are usage errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import challenge as chl
from bench.cli import main
from bench.model import keys
from bench.report.store import dumps, write_atomic
from tests.cli.ranks import BIN

AUDITOR, NODE_KEY, OTHER = (Ed25519PrivateKey.generate() for _ in range(3))
T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def kid(key):
    return keys.key_id(keys.raw_public(key.public_key()))


AUDITOR_ID = kid(AUDITOR)


def verify(path, drop, receipts=None, trusted=None, **kw):
    """chl.verify as the auditor runs it: with the auditor's key id."""
    return chl.verify(path, drop, receipts, trusted, auditor=kw.pop("auditor", AUDITOR_ID), **kw)


def _issue(tmp_path, dtype="float32", n=64, products=2, nodes=None, inner=None, fold=None):
    data = chl.issue(AUDITOR, dtype=dtype, n=n, products=products, window=dt.timedelta(minutes=5), nodes=nodes, now=T0,
                     inner=inner, fold=fold)  # fmt: skip
    path = tmp_path / "challenge.json"
    write_atomic(path, dumps(data))
    return path, chl.load_challenge(path)


def _answer(drop, ch, node="node-a", uuid="host-a", key=NODE_KEY, tamper=None, product=None, nonce=None):
    """What `bench challenge answer` does, with hooks to cheat: tamper(c) after the commitment, product(a, b)."""
    device = {"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": uuid}
    products = []
    for i in range(ch.products):
        if product is None:
            products.append(chl.compute(ch, node, device, i))
        else:
            a = chl.operand(ch.nonce, node, uuid, i, "A", ch.n, ch.dtype, ch.operands, inner=ch.inner)
            b = chl.operand(ch.nonce, node, uuid, i, "B", ch.n, ch.dtype, ch.operands, inner=ch.inner)
            c = product(a, b)
            products.append(chl.Product(device, i, c, chl.merkle_root(chl.row_bytes(c)), 0.0))
    answered = ch if nonce is None else chl.Challenge(nonce, ch.dtype, ch.n, ch.products, ch.issued, ch.deadline, ch.nodes,
                                                      {**ch.data, "nonce": nonce})  # fmt: skip
    inv = {
        "host": {"hostname": node, "fingerprint": uuid, "physical_cores": 2},
        "nvml": {"gpus": []},
    }  # as collect() has it
    base = chl.commit_name(node, answered.nonce)
    write_atomic(drop / f"{base}{chl.COMMIT_SUFFIX}", dumps(chl.commitment(answered, node, inv, products, key)))
    if tamper:
        for p in products:
            tamper(p.c)
    write_atomic(drop / f"{base}{chl.REVEAL_SUFFIX}", dumps(chl.reveal(drop, base, answered, products)))
    return base


def _receipts(tmp_path, ch, drop, arrivals: dict[str, float]):
    """A signed receipt log: file name -> seconds after issue."""
    rs = [{"file": f"{base}{chl.COMMIT_SUFFIX}", "arrived_utc": chl.utc(ch.issued + dt.timedelta(seconds=s)),
           "sha256": hashlib.sha256((drop / f"{base}{chl.COMMIT_SUFFIX}").read_bytes()).hexdigest(),
           "challenge_digest": ch.digest, "issued_utc": chl.utc(ch.issued), "accepted": True, "why": None}
          for base, s in arrivals.items()]  # fmt: skip
    path = tmp_path / "receipts.json"
    write_atomic(path, dumps(chl.receipts_doc(ch, rs, AUDITOR)))
    return path


def _drop(tmp_path):
    d = tmp_path / "drop"
    d.mkdir()
    return d


def _errors(verdict):
    return [f.message for f in verdict.findings if f.severity == "error"]


def test_an_honest_answer_proves_flops_over_elapsed(tmp_path):
    path, ch = _issue(tmp_path, n=96, products=3)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 2.5}))
    assert _errors(verdict) == []
    (node,) = verdict.nodes
    flops = 3 * 2 * 96**3
    assert node["verified"] == 3 and node["verified_flops"] == flops
    assert node["gflops_lower_bound"] == pytest.approx(flops / 2.5 / 1e9, rel=1e-12)
    assert verdict.fleet["gflops_lower_bound"] == pytest.approx(flops / 2.5 / 1e9, rel=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
def test_correct_products_pass_in_every_dtype(tmp_path, dtype):
    path, ch = _issue(tmp_path, dtype=dtype, n=128, products=1)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    assert _errors(verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))) == []


def test_one_corrupted_element_fails(tmp_path):
    path, ch = _issue(tmp_path, n=128)
    drop = _drop(tmp_path)

    def corrupt(a, b):
        c = a @ b
        c[17, 42] += 0.01
        return c

    base = _answer(drop, ch, product=corrupt)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert any("Freivalds check failed" in e for e in _errors(verdict))
    assert verdict.nodes[0]["verified_flops"] == 0


@pytest.mark.parametrize(("dtype", "cheap"), [
    ("bfloat16", lambda a, b: (a.to(torch.float8_e4m3fn).to(torch.float32) @ b.to(torch.float8_e4m3fn).to(torch.float32)).to(torch.bfloat16)),
    ("float32", lambda a, b: (a.to(torch.bfloat16) @ b.to(torch.bfloat16)).to(torch.float32)),
    ("float64", lambda a, b: (a.to(torch.float32) @ b.to(torch.float32)).to(torch.float64)),
])  # fmt: skip
def test_a_product_in_a_lower_precision_fails(tmp_path, dtype, cheap):
    path, ch = _issue(tmp_path, dtype=dtype, n=256, products=1)
    drop = _drop(tmp_path)
    base = _answer(drop, ch, product=cheap)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert any("check failed" in e for e in _errors(verdict)), verdict.findings


def test_a_commitment_for_another_nonce_fails(tmp_path):
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    base = _answer(drop, ch, nonce="00" * 32)  # prepared in advance for a guessed nonce
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert any("nonce differs" in e for e in _errors(verdict))
    assert verdict.fleet["verified_flops"] == 0


def test_a_commitment_after_the_deadline_is_not_counted(tmp_path):
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 301.0}))  # deadline: 300 s
    assert any("after the deadline" in e for e in _errors(verdict))
    assert verdict.fleet["verified_flops"] == 0


def test_a_revealed_product_that_differs_from_its_root_fails(tmp_path):
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)

    def fix_later(c):  # computed after committing: the reveal is not what was committed
        c[0, 0] += 1.0

    base = _answer(drop, ch, tamper=fix_later)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert any("does not match its committed Merkle root" in e for e in _errors(verdict))


def test_a_commitment_edited_after_arrival_fails(tmp_path):
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    receipts = _receipts(tmp_path, ch, drop, {base: 1.0})
    _answer(drop, ch)  # rewritten (same name) after its arrival was recorded
    verdict = verify(path, drop, receipts)
    assert any("no receipt for these bytes" in e for e in _errors(verdict))


def test_one_device_answering_for_two_nodes_counts_once(tmp_path):
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    a = _answer(drop, ch, node="node-a", uuid="same-host")
    b = _answer(drop, ch, node="node-b", uuid="same-host")
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {a: 1.0, b: 2.0}))
    assert _errors(verdict) == []
    counted = {n["node"]: n["verified_flops"] for n in verdict.nodes}
    assert counted == {"node-a": 2 * 2 * 64**3, "node-b": 0}
    assert verdict.fleet["devices"] == 1
    assert any("duplicate device" in f.message for f in verdict.findings)


def test_signatures_and_trust(tmp_path):
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    base = _answer(drop, ch, key=OTHER)
    receipts = _receipts(tmp_path, ch, drop, {base: 1.0})
    trusted = {kid(NODE_KEY)}
    verdict = verify(path, drop, receipts, trusted=trusted)
    assert any("not in the trust list" in e for e in _errors(verdict))
    data = json.loads((drop / f"{base}{chl.COMMIT_SUFFIX}").read_text())
    data["products"][0]["root"] = "0" * 64  # edited without re-signing
    (drop / f"{base}{chl.COMMIT_SUFFIX}").write_text(json.dumps(data))
    assert any("signature" in e for e in _errors(verify(path, drop, None)))


def test_without_receipts_nothing_is_proven(tmp_path):
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    _answer(drop, ch)
    verdict = verify(path, drop, None)
    assert verdict.fleet["gflops_lower_bound"] is None
    assert any(f.where == "receipts" for f in verdict.findings)


def test_inputs_are_bit_identical_across_processes_and_device_copies():
    nonce = "ab" * 32
    mine = {d: hashlib.sha256(chl.row_bytes(chl.operand(nonce, "n1", "GPU-1", 3, "A", 64, d)).tobytes()).hexdigest()
            for d in chl.DTYPES}  # fmt: skip
    code = ("import hashlib, json; from bench import challenge as c; print(json.dumps({d: hashlib.sha256(c.row_bytes("
            f"c.operand({nonce!r}, 'n1', 'GPU-1', 3, 'A', 64, d)).tobytes()).hexdigest() for d in c.DTYPES}}))")  # fmt: skip
    other = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert other == mine
    targets = ["cpu"] + (["cuda:0"] if torch.cuda.is_available() else [])
    for dtype in chl.DTYPES:
        a = chl.operand(nonce, "n1", "GPU-1", 3, "A", 64, dtype)
        for target in targets:
            copy = a.to(target).to("cpu")
            assert chl.row_bytes(copy).tobytes() == chl.row_bytes(a).tobytes()
    b = chl.operand(nonce, "n1", "GPU-1", 3, "B", 64, "float32")
    assert not torch.equal(chl.operand(nonce, "n1", "GPU-1", 3, "A", 64, "float32"), b)  # A and B differ
    assert not torch.equal(
        chl.operand(nonce, "n2", "GPU-1", 3, "A", 64, "float32"),
        chl.operand(nonce, "n1", "GPU-1", 3, "A", 64, "float32"),
    )


def test_merkle_root_binds_every_row_and_its_position():
    rows = chl.row_bytes(torch.arange(12, dtype=torch.float32).reshape(3, 4))
    root = chl.merkle_root(rows)
    swapped = rows[[1, 0, 2]]
    assert chl.merkle_root(swapped) != root
    changed = rows.copy()
    changed[2, 0] ^= 1
    assert chl.merkle_root(changed) != root and len(root) == 64


@pytest.mark.parametrize(("text", "needle"), [
    ("{not json", "not valid JSON"),
    ('{"kind": "bench.node-report"}', "not a bench.challenge file"),
    ('{"kind": "bench.challenge", "schema_version": 1, "nonce": "x", "dtype": "float8", "n": 4, "products": 1}', "dtype 'float8'"),
    ('{"kind": "bench.challenge", "schema_version": 1, "nonce": "x", "dtype": "float32", "n": "big", "products": 1}', "'n' has the wrong type"),
])  # fmt: skip
def test_malformed_challenges_exit_2(tmp_path, text, needle):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    drop = _drop(tmp_path)
    for args in (["challenge", "answer", str(bad), "--drop", str(drop)], ["challenge", "verify", str(bad), str(drop)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, result.output
        assert needle in result.output


def test_a_malformed_commitment_is_one_failed_entry(tmp_path):
    """One bad file from a node is one error finding (exit 1), never the end of the verification (it was exit 2)."""
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    (drop / f"x{chl.COMMIT_SUFFIX}").write_text(
        '{"kind": "bench.challenge-commitment", "schema_version": 1, "node": 5}'
    )
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0, "x": 1.0}))  # received, so it is parsed
    assert [f.code for f in verdict.findings if f.severity == "error"] == ["malformed"]
    assert verdict.fleet["verified_flops"] == 2 * 2 * 64**3
    result = CliRunner().invoke(main, ["challenge", "verify", str(path), str(drop)])
    assert result.exit_code == 1 and "field 'node' has the wrong type" in result.output


def test_end_to_end_with_background_collector(tmp_path):
    """A node and a collector waiting, ready, for the challenge; issue; verify: the printed bound comes from the
    receipts."""
    bench = str(BIN / "bench")
    ch_path, drop, receipts = tmp_path / "ch.json", tmp_path / "drop", tmp_path / "receipts.json"
    drop.mkdir()
    auditor = tmp_path / "auditor.pem"
    keys.create(auditor)
    # the node's key made now: were this the session's first test to sign, 'created signing key' would come first
    keys.load_or_create(Path(os.environ["BENCH_KEY"]))
    node = subprocess.Popen([bench, "challenge", "answer", str(ch_path), "--drop", str(drop), "--device", "cpu", "--wait",
                             "120", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    collector = subprocess.Popen([bench, "challenge", "collect", str(drop), "--challenge", str(ch_path), "-o",
                                  str(receipts), "--expect", "1", "--wait", "120", "--auditor-key", str(auditor)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(1.0)
    issued = subprocess.run([bench, "challenge", "issue", "-o", str(ch_path), "--size", "256", "--products", "2", "--window",
                             "5m", "--json", "--auditor-key", str(auditor)], check=True, capture_output=True, text=True)  # fmt: skip
    assert json.loads(issued.stdout) == json.loads(ch_path.read_text())
    out, err = node.communicate(timeout=300)
    assert node.returncode == 0, err
    assert err.startswith("ready: 1 device(s) warmed")  # said before the wait, so a launcher knows when to issue
    assert json.loads(out)["products"] == 2
    out, _err = collector.communicate(timeout=60)
    assert collector.returncode == 0 and "1 commitments recorded" in out
    result = subprocess.run([bench, "challenge", "verify", str(ch_path), str(drop), "--receipts", str(receipts), "--json",
                             "--auditor-key", f"{auditor}.pub"],
                            check=False, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    verdict = json.loads(result.stdout)
    (answer,) = verdict["nodes"]
    assert json.loads(issued.stdout)["inner"] == 512  # `challenge issue`'s default for float32: 2n, folded
    assert json.loads(issued.stdout)["fold"] == 64
    assert answer["verified"] == 2 and answer["verified_flops"] == 2 * 2 * 256**2 * 512
    arrival = dt.datetime.fromisoformat(answer["arrived_utc"])
    issued_at = dt.datetime.fromisoformat(verdict["issued_utc"])
    assert answer["gflops_lower_bound"] == pytest.approx(
        answer["verified_flops"] / (arrival - issued_at).total_seconds() / 1e9
    )


def test_answer_without_a_challenge_file_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["challenge", "answer", str(tmp_path / "none.json"), "--drop", str(tmp_path)])
    assert result.exit_code == 2 and "no such challenge file" in result.output


def test_a_node_answers_every_device_at_once_and_refuses_what_would_not_count(tmp_path):
    """chl.answer (what `bench challenge answer` runs once the challenge is in): every device's products, committed and
    revealed, and verifiable; chl.refusal: the reasons a node must not answer at all."""
    path, ch = _issue(tmp_path, nodes=["node-a"])
    drop = tmp_path / "drop"
    drop.mkdir()
    devices = [{"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "host-a"}]
    inv = {"host": {"hostname": "node-a", "fingerprint": "host-a", "physical_cores": 2}, "nvml": {"gpus": []}}
    done = chl.answer(ch, "node-a", inv, devices, drop, NODE_KEY)
    assert done["products"] == ch.products and done["flops"] == ch.products * 2 * ch.n**3
    base = chl.commit_name("node-a", ch.nonce)
    assert (
        done["commitment"] == str(drop / f"{base}{chl.COMMIT_SUFFIX}")
        and (drop / f"{base}{chl.REVEAL_SUFFIX}").exists()
    )
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}), {kid(NODE_KEY)})
    assert [n["verified"] for n in verdict.nodes] == [ch.products]
    assert chl.refusal(ch, "node-a", {AUDITOR_ID}, now=T0) is None
    assert "not in the trust list" in chl.refusal(ch, "node-a", {kid(OTHER)}, now=T0)
    assert "deadline" in chl.refusal(ch, "node-a", {AUDITOR_ID}, now=T0 + dt.timedelta(hours=1))
    assert "not among the challenged nodes" in chl.refusal(ch, "node-b", {AUDITOR_ID}, now=T0)


@pytest.mark.parametrize("version", [(2, 8), (2, 13)])
def test_a_float32_answer_pins_ieee_and_refuses_when_tf32_is_forced(tmp_path, fake_cuda, monkeypatch, version):
    """TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 (NGC containers set it): before torch 2.9 it wins over bench's IEEE pin, so
    the node refuses, naming the variable, and commits nothing (an answer in TF32 would be judged a cheat); from 2.9 it
    is only torch's initial value, so the pinned answer is IEEE float32, bit for bit what the CPU computes."""
    from tests.fakes import tf32 as fake_tf32

    fake_cuda()
    monkeypatch.delenv("NVIDIA_TF32_OVERRIDE", raising=False)
    monkeypatch.setenv("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "1")
    fake_tf32.install(monkeypatch, version)
    _, ch = _issue(tmp_path, dtype="float32", n=64, products=1)
    gpu = {"id": "cuda:0", "kind": "cuda", "name": "NVIDIA H200", "uuid": "GPU-0"}
    inv = {"host": {"hostname": "node-a", "fingerprint": "host-a"}, "nvml": {"gpus": []}}
    drop = tmp_path / "drop"
    drop.mkdir()
    if version < (2, 9):
        with pytest.raises(chl.ChallengeError, match="TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1"):
            chl.answer(ch, "node-a", inv, [gpu], drop, NODE_KEY)
        assert not list(drop.iterdir())
        return
    with chl.fp32_pinned(ch, [gpu]):
        got = chl.compute(ch, "node-a", gpu, 0).c
    a, b = (chl.operand(ch.nonce, "node-a", "GPU-0", 0, s, ch.n, ch.dtype, ch.operands, inner=ch.inner) for s in "AB")
    assert torch.equal(got, a @ b)  # IEEE float32, as the CPU computes it
    assert chl.answer(ch, "node-a", inv, [gpu], drop, NODE_KEY)["products"] == 1
