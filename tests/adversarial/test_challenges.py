"""Issue 12, attacks 2 to 5: challenge answers and auditor documents forged by an operator who holds the node keys
(not the auditor's key or clock), each rejected with its finding code while the honest answer still counts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import numpy as np
import torch
from click.testing import CliRunner

from bench import challenge as chl
from bench import precision as prec
from bench.challenge import exact_rows
from bench.cli import main
from bench.model import intake, keys, sign
from bench.report.store import dumps, write_atomic
from bench.workloads import freivalds
from tests.perf import precision_table as cheap
from tests.test_challenge import AUDITOR, AUDITOR_ID, NODE_KEY, _answer, _drop, _issue, _receipts, kid, verify


def error_codes(verdict):
    return {f.code for f in verdict.findings if f.severity == "error"}


def test_honest_answer_counts(tmp_path):
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}), trusted={kid(NODE_KEY)})
    assert error_codes(verdict) == set() and verdict.fleet["verified_flops"] == 2 * 2 * 64**3
    (device,) = verdict.devices
    assert device["tflops_lower_bound"] == 2 * 2 * 64**3 / 1.0 / 1e12


def test_attack_2_one_product_listed_1000_times(tmp_path):
    """A commitment listing the same computed product 1000 times inflated the bound 300x."""
    path, ch = _issue(tmp_path, products=2)
    drop = _drop(tmp_path)
    device = {"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "host-a"}
    product = chl.compute(ch, "node-a", device, 0)
    inv = {"host": {"hostname": "node-a", "fingerprint": "host-a", "physical_cores": 2}, "nvml": {"gpus": []}}
    base = chl.commit_name("node-a", ch.nonce)
    write_atomic(
        drop / f"{base}{chl.COMMIT_SUFFIX}", dumps(chl.commitment(ch, "node-a", inv, [product] * 1000, NODE_KEY))
    )
    write_atomic(drop / f"{base}{chl.REVEAL_SUFFIX}", dumps(chl.reveal(drop, base, ch, [product])))
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert "duplicate-product" in error_codes(verdict) and verdict.fleet["verified_flops"] == 0
    # fewer products than asked: the device counts for none of them
    write_atomic(drop / f"{base}{chl.COMMIT_SUFFIX}", dumps(chl.commitment(ch, "node-a", inv, [product], NODE_KEY)))
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert "incomplete-device" in error_codes(verdict) and verdict.fleet["verified_flops"] == 0


def test_attack_3_auditor_documents_forged_with_a_node_key(tmp_path):
    """A node key re-signed the challenge (a later issue time: 1 ms elapsed) and the receipts; an issue time after
    arrival gave an infinite bound and crashed --json."""
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    receipts = _receipts(tmp_path, ch, drop, {base: 1.0})
    # the challenge re-signed by a node key, issued just before the arrival
    forged = {k: v for k, v in ch.data.items() if k != "signature"}
    forged["issued_utc"] = chl.utc(ch.issued + dt.timedelta(seconds=0.999))
    forged["signature"] = sign.sign(forged, NODE_KEY)
    forged_path = tmp_path / "forged-challenge.json"
    write_atomic(forged_path, dumps(forged))
    verdict = verify(forged_path, drop, receipts)
    assert "challenge-key" in error_codes(verdict) and verdict.fleet["verified_flops"] == 0
    # the receipts re-signed by a node key
    data = json.loads(receipts.read_text())
    data = {k: v for k, v in data.items() if k != "signature"}
    data["signature"] = sign.sign(data, NODE_KEY)
    write_atomic(tmp_path / "node-receipts.json", dumps(data))
    verdict = verify(path, drop, tmp_path / "node-receipts.json")
    assert "receipts-key" in error_codes(verdict) and verdict.fleet["gflops_lower_bound"] is None
    # arrival at or before the issue time: rejected, and the JSON holds no Infinity
    early = _receipts(tmp_path, ch, drop, {base: -1.0})
    verdict = verify(path, drop, early)
    assert "arrival-before-issue" in error_codes(verdict) and verdict.fleet["verified_flops"] == 0
    json.loads(dumps(verdict.to_dict()))  # allow_nan=False: would raise on Infinity
    # a node key cannot stand for the auditor: refused when it is in the node trust list
    node_pem = tmp_path / "node.pem"
    keys.create(node_pem)
    trust = tmp_path / "nodes.keys"
    trust.write_text(keys.public_key_id(node_pem) + "\n")
    res = CliRunner().invoke(main, ["challenge", "issue", "-o", str(tmp_path / "c.json"), "--auditor-key", str(node_pem),
                                    "--trusted-keys", str(trust)])  # fmt: skip
    assert res.exit_code == 2 and "no node holds" in res.stderr
    res = CliRunner().invoke(main, ["challenge", "verify", str(path), str(drop), "--auditor-key", f"{node_pem}.pub",
                                    "--trusted-keys", str(trust)])  # fmt: skip
    assert res.exit_code == 2 and "node trust list" in res.output


def test_attack_4_two_reads_of_one_file(tmp_path, monkeypatch):
    """Storage the operator serves (NFS, FUSE) answered the collector with junk and the verifier with the real
    commitment. Each reader now reads a file once and hashes what it parsed: the collector records the junk's hash, so
    the real bytes the verifier later sees have no receipt."""
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    commit = drop / f"{base}{chl.COMMIT_SUFFIX}"
    real = commit.read_bytes()
    reads: dict[str, int] = {}
    original = intake.read_bytes
    serve_junk = [True]  # to the collector; the verifier, later, gets the real bytes

    def two_faced(p, **kw):
        reads[p.name] = reads.get(p.name, 0) + 1
        raw = original(p, **kw)
        return b'{"kind": "junk"}' if p == commit and serve_junk[0] else raw

    monkeypatch.setattr(intake, "read_bytes", two_faced)
    (receipt,) = chl.scan(drop, {}, ch.issued + dt.timedelta(seconds=1), ch, auditor=AUDITOR_ID)
    assert receipt["accepted"] is False and receipt["sha256"] != hashlib.sha256(real).hexdigest()
    assert reads[commit.name] == 2  # stamped after a first read, checked from a second: the hash is of the bytes parsed
    receipts = tmp_path / "receipts.json"
    write_atomic(receipts, dumps(chl.receipts_doc(ch, [receipt], AUDITOR)))
    reads.clear()
    serve_junk[0] = False
    verdict = verify(path, drop, receipts)
    assert "no-receipt" in error_codes(verdict) and verdict.fleet["verified_flops"] == 0
    assert reads[commit.name] == 1  # hashed and parsed from one read
    # the honest collector's read: one receipt for the bytes verify parses
    monkeypatch.setattr(intake, "read_bytes", original)
    (receipt,) = chl.scan(drop, {}, ch.issued + dt.timedelta(seconds=1), ch, auditor=AUDITOR_ID)
    write_atomic(receipts, dumps(chl.receipts_doc(ch, [receipt], AUDITOR)))
    assert error_codes(verify(path, drop, receipts)) == set()


def test_attack_5_cheaper_arithmetic_passes_a_float32_challenge(tmp_path):
    """tf32 or fp16 operands for a float32 challenge pass Freivalds' tolerance; the exact-row check rejects them."""
    path, ch = _issue(tmp_path, n=4096, products=1, inner=4096)  # where the issue measured tf32 at 0.55 of Freivalds'
    a = chl.operand(ch.nonce, "node-a", "host-a", 0, "A", ch.n, ch.dtype, ch.operands, inner=ch.inner)
    b = chl.operand(ch.nonce, "node-a", "host-a", 0, "B", ch.n, ch.dtype, ch.operands, inner=ch.inner)
    tf32 = cheap.tf32(a) @ cheap.tf32(b)
    assert freivalds.check(
        a, b, tf32, prec.get("float32"), generator=torch.Generator().manual_seed(0)
    ).passed  # the gap
    del tf32
    for name, product in (
        ("tf32", lambda x, y: cheap.tf32(x) @ cheap.tf32(y)),
    ):  # fp16: tests/challenge/test_exact_rows.py
        drop = tmp_path / name
        drop.mkdir()
        base = _answer(drop, ch, product=product)
        verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
        assert error_codes(verdict) == {"precision"}, verdict.findings
        assert verdict.fleet["verified_flops"] == 0
    # the honest answer to the same challenge passes (blocked: a fraction of a sequential sum's error; see
    # test_exact_rows and docs/proofs.md)
    assert exact_rows.check(a, b, a @ b, "float32", np.random.default_rng(0)).score < 0.5


def test_a_bound_above_the_devices_peak_is_not_counted(tmp_path):
    """Work answered faster than the device could (forwarded to other hardware, or a clock set back) is flagged."""
    path, ch = _issue(tmp_path, n=64, products=1)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)  # a 1-core CPU answering 2*64^3 FLOPs in a microsecond: 0.5 PFLOPS
    data = json.loads((drop / f"{base}{chl.COMMIT_SUFFIX}").read_text())
    data["inventory"]["host"]["physical_cores"] = 1
    data = {k: v for k, v in data.items() if k != "signature"}
    data["signature"] = sign.sign(data, NODE_KEY)
    write_atomic(drop / f"{base}{chl.COMMIT_SUFFIX}", dumps(data))
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1e-6}))
    assert "above-peak" in error_codes(verdict) and verdict.fleet["verified_flops"] == 0


def test_proof_bounds_sum_to_the_fleet_bound(tmp_path):
    """Per device, the proof divides by the fleet's elapsed time: two nodes forwarding to one machine cannot each be
    credited with their own early arrival."""
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    a = _answer(drop, ch, node="node-a", uuid="host-a")
    b = _answer(drop, ch, node="node-b", uuid="host-b")
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {a: 1.0, b: 2.0}))
    assert error_codes(verdict) == set()
    total = sum(d["tflops_lower_bound"] for d in verdict.devices)
    assert abs(total * 1e3 - verdict.fleet["gflops_lower_bound"]) < 1e-12
    assert {n["node"]: n["gflops_lower_bound"] for n in verdict.nodes}["node-a"] * 1e-3 > verdict.devices[0][
        "tflops_lower_bound"
    ]
