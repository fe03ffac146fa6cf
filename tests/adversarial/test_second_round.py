"""The second attack on issue 12 (an operator who holds the node keys, not the auditor's key or clock): each finding
forged with bench's own functions, rejected with its finding code, and the honest path next to it still passing.
Named after the attacker's scripts (a1_nul_seed_collision.py, ...)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from bench import challenge as chl
from bench.cli import main
from bench.model import intake, keys, sign, strict_json
from bench.model import reports as model
from bench.report import aggregate as agg
from bench.report import proofs
from bench.report.store import dumps, write_atomic
from tests.report import fleet
from tests.test_challenge import AUDITOR, AUDITOR_ID, NODE_KEY, _answer, _drop, _issue, _receipts, kid, verify

H100 = fleet.H100


def error_codes(verdict):
    return {f.code for f in verdict.findings if f.severity == "error"}


def _answer_as(drop, ch, node, uuid, *, kind="cuda", name=H100, inventory=None, products=None, base=None):
    """An answer by a device the operator describes: kind, model and inventory as given (computed on this CPU)."""
    device = {"id": "cpu", "kind": kind, "name": name, "uuid": uuid}
    products = products or chl.compute_all(ch, node, device)
    inventory = inventory or {"host": {"hostname": "n", "fingerprint": "fp-n"},
                              "nvml": {"gpus": [{"index": 0, "name": name, "uuid": uuid}]}}  # fmt: skip
    base = base or chl.commit_name(node, ch.nonce)
    write_atomic(drop / f"{base}{chl.COMMIT_SUFFIX}", dumps(chl.commitment(ch, node, inventory, products, NODE_KEY)))
    write_atomic(drop / f"{base}{chl.REVEAL_SUFFIX}", dumps(chl.reveal(drop, base, ch, products)))
    return base


def _sign_forged(data, key=NODE_KEY):
    data = {k: val for k, val in data.items() if k != "signature"}
    data["signature"] = sign.sign(data, key)
    return data


# --- A1: NUL-joined seed fields -----------------------------------------------------------------------------------


def test_a1_nul_seed_collision(tmp_path):
    """node 'nodeA' + device 'GPU-0\\0GPU-1' and node 'nodeA\\0GPU-0' + device 'GPU-1' seeded the same operands: one
    product set answered for K devices. The seed's fields are now length-prefixed, and names holding control
    characters are refused wherever they appear."""
    parts = [f"GPU-{i:032x}" for i in range(3)]
    pairs = [("\0".join(["nodeA", *parts[:j]]), "\0".join(parts[j:])) for j in range(3)]
    assert len({chl.seed("n", node, dev, 0, "A") for node, dev in pairs}) == 3
    assert chl.seed("n", "ab", "c", 0, "A") != chl.seed("n", "a", "bc", 0, "A")
    path, ch = _issue(tmp_path, dtype="bfloat16", n=64, products=2)
    drop = _drop(tmp_path)
    # the forgery: one computation, committed under every (node, device) pair (names written around commitment())
    computed = chl.compute_all(ch, pairs[0][0], {"id": "cpu", "kind": "cuda", "name": H100, "uuid": pairs[0][1]})
    bases = {}
    for j, (node, dev) in enumerate(pairs):
        d = {"id": "cuda:0", "kind": "cuda", "name": H100, "uuid": dev}
        mine = [chl.Product(d, p.index, p.c, p.root, p.seconds) for p in computed]
        with pytest.raises(chl.ChallengeError, match="control characters"):
            chl.commitment(ch, node, {"host": {}, "nvml": {"gpus": []}}, mine, NODE_KEY)
        base = f"forged{j}"
        inv = {
            "host": {"hostname": node, "fingerprint": f"fp{j}"},
            "nvml": {"gpus": [{"index": 0, "name": H100, "uuid": dev}]},
        }
        data = chl.commitment(ch, "placeholder", inv, [chl.Product({**d, "uuid": "placeholder"}, p.index, p.c, p.root, 0.0)
                                                       for p in computed], NODE_KEY)  # fmt: skip
        data["node"] = node
        for p in data["products"]:
            p["device"] = dev
        write_atomic(drop / f"{base}{chl.COMMIT_SUFFIX}", dumps(_sign_forged(data)))
        write_atomic(drop / f"{base}{chl.REVEAL_SUFFIX}", dumps(chl.reveal(drop, base, ch, mine)))
        bases[base] = 1.0
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, bases), trusted={kid(NODE_KEY)})
    assert "bad-name" in error_codes(verdict) and verdict.fleet["verified_flops"] == 0
    # the honest answer still counts
    honest = tmp_path / "honest"
    honest.mkdir()
    base = _answer_as(honest, ch, "nodeA", parts[0])
    verdict = verify(path, honest, _receipts(tmp_path, ch, honest, {base: 1.0}), trusted={kid(NODE_KEY)})
    assert error_codes(verdict) == set() and verdict.fleet["verified_flops"] == 2 * 2 * 64**3


# --- B1: the collector stamped a scan's files with the time the scan began ----------------------------------------


def test_b1_collector_stamp_before_read(tmp_path, monkeypatch):
    """Slow junk files sorted first delayed the read of the real commitment, which was stamped with the scan's start
    (100-150x inflation). Each file is now stamped by a clock reading taken after its bytes are read."""
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    for i in range(3):
        (drop / f"0junk{i}{chl.COMMIT_SUFFIX}").write_bytes(b"[" + b"[]," * 1000 + b"0]")
    base = _answer(drop, ch)
    clock = [ch.issued + dt.timedelta(seconds=1)]
    original = intake.read_bytes

    def slow(p, **kw):
        raw = original(p, **kw)
        if p.name.startswith("0junk"):
            clock[0] += dt.timedelta(seconds=10)  # a slow read (junk to parse, NFS, FUSE)
        return raw

    monkeypatch.setattr(intake, "read_bytes", slow)
    receipts = chl.scan(drop, {}, lambda: clock[0], ch, trusted={kid(NODE_KEY)}, auditor=AUDITOR_ID)
    (real,) = [r for r in receipts if r["accepted"]]
    assert chl.parse_utc(real["arrived_utc"], "r") == ch.issued + dt.timedelta(seconds=31)  # after the junk, not before
    monkeypatch.setattr(intake, "read_bytes", original)
    log = tmp_path / "receipts.json"
    write_atomic(log, dumps(chl.receipts_doc(ch, [real], AUDITOR)))
    verdict = verify(path, drop, log, trusted={kid(NODE_KEY)})
    assert error_codes(verdict) == {"no-receipt"}  # the junk, refused by its hash; the honest answer counts, over 31 s
    assert verdict.fleet["elapsed_s"] == 31.0 and verdict.fleet["verified_flops"] == 2 * 2 * 64**3
    # a commitment beyond the size cap is not read
    monkeypatch.setattr(chl.auditor, "MAX_COMMIT_BYTES", 100)
    (receipt,) = [r for r in chl.scan(drop, {}, lambda: clock[0], ch, auditor=AUDITOR_ID) if r["file"].startswith(base)]
    assert not receipt["accepted"] and "limit" in receipt["why"]


# --- C1: proofs of different challenges were added ----------------------------------------------------------------


def _owned(uuid, tflops, host="node00000"):
    """A proof's device entry as the auditor writes it: committed by NODE_KEY for `host` (the node reports' host)."""
    return {"device": uuid, "key_id": kid(NODE_KEY), "host": host, "tflops_lower_bound": tflops}


def _proof(tmp_path, name, uuid, tflops, *, now=None, dtype="bfloat16", host="node00000"):
    ch = chl.issue(AUDITOR, dtype=dtype, n=64, products=1, window=dt.timedelta(minutes=5), nodes=None, now=now)
    path = tmp_path / f"{name}.proof.json"
    write_atomic(path, dumps(proofs.document(ch, [_owned(uuid, tflops, host)], AUDITOR)))
    return path


def _verify_cli(tmp_path, reports, proof_paths, claim, *extra):
    trust = tmp_path / "nodes.keys"
    trust.write_text(kid(NODE_KEY) + "\n")
    auditor_pem = tmp_path / "auditor.pem"
    if not auditor_pem.exists():
        auditor_pem.write_bytes(AUDITOR.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))  # fmt: skip
        os.chmod(auditor_pem, 0o600)
    args = ["verify", *map(str, reports), "--trusted-keys", str(trust), "--auditor-key", str(auditor_pem),
            *[a for p in proof_paths for a in ("--proof", str(p))], *(["--claim", claim] if claim else []), *extra]  # fmt: skip
    return CliRunner().invoke(main, args)


def _h100_reports(tmp_path, uuids, tflops=700.0):
    end = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out = []
    for j, uuid in enumerate(uuids):
        data = fleet.node_report(j, [tflops], NODE_KEY, end=end)
        data["inventory"]["nvml"]["gpus"][0]["uuid"] = uuid
        data["measurements"][0]["device"]["uuid"] = uuid
        path = tmp_path / f"r{j}.json"
        write_atomic(path, dumps(fleet.resign(data, NODE_KEY)))
        out.append(path)
    return out


def test_c1_sum_proofs_across_challenges(tmp_path):
    """One machine answered challenge 1 as GPU-1111 and challenge 2 as GPU-2222; the proofs' bounds were added. A
    fleet total is now the largest total of any one challenge."""
    uuids = ["GPU-" + "1" * 32, "GPU-" + "2" * 32]
    reports = _h100_reports(tmp_path, uuids)
    p1, p2 = _proof(tmp_path, "c1", uuids[0], 100.0), _proof(tmp_path, "c2", uuids[1], 100.0, host="node00001")
    proven = proofs.read([p1, p2], {AUDITOR_ID})
    assert proven.totals() == {"bfloat16": 100.0}
    res = _verify_cli(tmp_path, reports, [p1, p2], "0.15 PFLOPS bf16", "--max-age", "1d", "--json")
    (claim,) = json.loads(res.stdout)["claims"]
    assert res.exit_code == 1 and not claim["supported"] and claim["proven_tflops"] == 100.0
    # honest: one challenge answered by both devices sums them
    ch = chl.issue(AUDITOR, dtype="bfloat16", n=64, products=1, window=dt.timedelta(minutes=5), nodes=None)
    both = tmp_path / "both.proof.json"
    write_atomic(
        both, dumps(proofs.document(ch, [_owned(u, 100.0, f"node{j:05d}") for j, u in enumerate(uuids)], AUDITOR))
    )
    res = _verify_cli(tmp_path, reports, [both, p1], "0.15 PFLOPS bf16", "--max-age", "1d", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["claims"][0]["verdict"] == "supported (proven)"


# --- D1: the peak guard trusted the commitment's description of the device ---------------------------------------


def test_d1_peak_guard_bypass(tmp_path):
    """A GPU named as a model bench has no row for, or as 'cpu' (fingerprint = its UUID) without a core count, had
    no ceiling and passed at twice the H100's peak; `bench verify` credited the proof to the H100 of the node reports.
    Now a device without a ceiling is not counted, and verify caps each proven bound at bench's own peak for the
    model the node reports name."""
    path, ch = _issue(tmp_path, dtype="bfloat16", n=1024, products=1)
    uuid = "GPU-" + "d" * 32
    fast = 1e-6  # 2 * 1024^3 FLOPs in a microsecond (the receipts' resolution): 2147 TFLOPS, twice the H100's bf16 peak
    cases = {
        "unknown model": ("cuda", "ACME X1", None, "no-ceiling"),
        "cpu, no cores": ("cpu", "cpu", {"hostname": "n", "fingerprint": uuid}, "no-ceiling"),
        "honest H100, too fast": ("cuda", H100, None, "above-peak"),
    }
    for tag, (kind, name, host, code) in cases.items():
        drop = tmp_path / tag.replace(" ", "_").replace(",", "")
        drop.mkdir()
        inv = None if host is None else {"host": host, "nvml": {"gpus": []}}
        base = _answer_as(drop, ch, "node1", uuid, kind=kind, name=name, inventory=inv)
        receipts = _receipts(tmp_path, ch, drop, {base: fast})
        verdict = verify(path, drop, receipts, trusted={kid(NODE_KEY)})
        assert code in error_codes(verdict) and verdict.devices == [], (tag, verdict.findings)
    # the honest H100 at an honest pace counts
    drop = tmp_path / "honest"
    drop.mkdir()
    base = _answer_as(drop, ch, "node1", uuid)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}), trusted={kid(NODE_KEY)})
    assert error_codes(verdict) == set() and len(verdict.devices) == 1
    # bench verify: a proof of 1500 TFLOPS for the H100 of a node report counts at its 989 TFLOPS peak
    reports = _h100_reports(tmp_path, [uuid])
    forged = _proof(tmp_path, "d1", uuid, 1500.0)
    res = _verify_cli(tmp_path, reports, [forged], "1.5 PFLOPS bf16", "--max-age", "1d", "--json")
    payload = json.loads(res.stdout)
    (claim,) = payload["claims"]
    codes = {f["code"] for fs in payload["reports"].values() for f in fs}
    assert (
        res.exit_code == 1 and not claim["supported"] and claim["proven_tflops"] < 1000 and "proof-above-peak" in codes
    )
    honest = _proof(tmp_path, "d1-honest", uuid, 600.0)
    res = _verify_cli(tmp_path, reports, [honest], "0.5 PFLOPS bf16", "--max-age", "1d")
    assert res.exit_code == 0 and "supported (proven)" in res.output, res.output


# --- H1: an honest MIG slice was rejected -------------------------------------------------------------------------


def test_h1_mig_honest_rejected(tmp_path):
    """A MIG slice answering was always 'unknown-device' (the commitment listed whole GPUs only), and would have been
    held to the whole GPU's peak. The commitment now lists MIG instances with their SM counts; a slice counts, with
    its SM share of its GPU's peak as its ceiling."""
    path, ch = _issue(tmp_path, n=64, products=1)
    drop = _drop(tmp_path)
    gpu_name = "NVIDIA A100-SXM4-40GB"
    mig_uuid = "MIG-" + "1" * 32
    inventory = {"host": {"hostname": "n1", "fingerprint": "fp1"},
                 "nvml": {"gpus": [{"index": 0, "name": gpu_name, "uuid": "GPU-" + "0" * 32,
                                    "mig_devices": [{"index": 0, "uuid": mig_uuid, "sm_count": 14,
                                                     "memory_bytes": 5 << 30}]}]}}  # fmt: skip
    base = _answer_as(drop, ch, "n1", mig_uuid, name=f"{gpu_name} MIG 1g.5gb", inventory=inventory)
    commit = json.loads((drop / f"{base}{chl.COMMIT_SUFFIX}").read_text())
    assert commit["inventory"]["gpus"][0]["mig_devices"][0]["sm_count"] == 14
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}), trusted={kid(NODE_KEY)})
    assert error_codes(verdict) == set() and [d["device"] for d in verdict.devices] == [mig_uuid]
    whole = chl.device_ceiling("cuda", gpu_name, "float32", {})
    share = chl.device_ceiling("cuda", gpu_name, "float32", {}, sm_count=14, mig=True)
    assert share == pytest.approx(whole * 14 / 108)
    # a slice without an SM count has no ceiling, and is not counted
    assert chl.device_ceiling("cuda", gpu_name, "float32", {}, sm_count=None, mig=True) is None
    # a slice answering faster than its share (but slower than the whole GPU) is above its peak
    (tmp_path / "big").mkdir()
    path, ch = _issue(tmp_path / "big", n=512, products=1)
    drop2 = tmp_path / "fast"
    drop2.mkdir()
    base = _answer_as(drop2, ch, "n1", mig_uuid, name=f"{gpu_name} MIG 1g.5gb", inventory=inventory)
    seconds = 2 * 512**3 / (share * 3 * 1e12)  # three times its share: still below the whole GPU's peak
    assert share * 3 < whole and seconds > 1e-5
    verdict = verify(path, drop2, _receipts(tmp_path, ch, drop2, {base: seconds}), trusted={kid(NODE_KEY)})
    assert "above-peak" in error_codes(verdict)


# --- M1: a claim with no maximum age ------------------------------------------------------------------------------


def test_m1_old_proof_no_max_age(tmp_path):
    """Without --max-age a 2020 proof and a 2021 report gave 'supported (proven)'. A claim with --proof now needs
    --max-age (a usage error naming it); with it, the old proof is refused."""
    uuid = "GPU-" + "a" * 32
    old = _proof(tmp_path, "old", uuid, 500.0, now=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    rep = fleet.node_report(1, [700.0], NODE_KEY, end="2021-01-01T00:00:00.000000Z")
    rep["inventory"]["nvml"]["gpus"][0]["uuid"] = uuid
    rep["measurements"][0]["device"]["uuid"] = uuid
    path = tmp_path / "r.json"
    write_atomic(path, dumps(fleet.resign(rep, NODE_KEY)))
    res = _verify_cli(tmp_path, [path], [old], "0.4 PFLOPS bf16")
    assert res.exit_code == 2 and "--max-age" in res.output
    res = _verify_cli(tmp_path, [path], [old], "0.4 PFLOPS bf16", "--max-age", "30d", "--json")
    assert res.exit_code == 1 and not json.loads(res.stdout)["claims"][0]["supported"]
    # honest: a fresh report and proof, with --max-age
    reports = _h100_reports(tmp_path, [uuid])
    res = _verify_cli(tmp_path, reports, [_proof(tmp_path, "new", uuid, 500.0)], "0.4 PFLOPS bf16", "--max-age", "1d")
    assert res.exit_code == 0 and "supported (proven)" in res.output, res.output


# --- L1: a claim of zero, of infinity, in no known precision ------------------------------------------------------


@pytest.mark.parametrize("text", ["0 TFLOPS bf16", "0.0 EFLOPS bf16", "9" * 400 + " TFLOPS bf16", "0 EFLOPS nonsense",
                                  "1 PFLOPS nonsense"])  # fmt: skip
def test_l1_zero_claim(tmp_path, text):
    """'0 TFLOPS bf16 --json' crashed (margin inf), 400 nines were inf, '0 EFLOPS nonsense' was 'supported'."""
    with pytest.raises(ValueError):
        agg.parse_claim(text)
    reports = _h100_reports(tmp_path, ["GPU-" + "0" * 32])
    res = _verify_cli(tmp_path, reports, [], text, "--max-age", "1d", "--json")
    assert res.exit_code == 2 and "--claim" in res.output, res.output
    assert agg.parse_claim("2.5 eflops fp8") == (2.5e6, "float8_e4m3")  # the honest form still reads


# --- R1: one product file checked once per reveal entry ------------------------------------------------------------


def test_r1_verify_amplification(tmp_path, monkeypatch):
    """A commitment listing D devices whose reveal entries all name one file made the verifier redo the whole check
    per entry (~19 h for 64 MiB). Now: at most MAX_DEVICES per commitment, one root claimed for two devices and one
    file named by two entries are refused before any work, and a device stops at its first failure."""
    path, ch = _issue(tmp_path, dtype="bfloat16", n=64, products=1)
    d0 = {"id": "cpu", "kind": "cuda", "name": H100, "uuid": "GPU-0"}
    p0 = chl.compute(ch, "n", d0, 0)
    checks = []
    original = chl.auditor._check_product
    monkeypatch.setattr(chl.auditor, "_check_product", lambda *a, **kw: checks.append(a[4]) or original(*a, **kw))

    def forge(drop, d, same_root=True):
        devs = [{"id": "cuda:0", "kind": "cuda", "name": H100, "uuid": f"GPU-{i}"} for i in range(d)]
        prods = [chl.Product(x, 0, p0.c, p0.root if same_root else hashlib.sha256(x["uuid"].encode()).hexdigest(), 0.0)
                 for x in devs]  # fmt: skip
        inv = {"host": {"hostname": "n", "fingerprint": "fp"},
               "nvml": {"gpus": [{"index": i, "name": H100, "uuid": x["uuid"]} for i, x in enumerate(devs)]}}  # fmt: skip
        write_atomic(drop / f"n{chl.COMMIT_SUFFIX}", dumps(chl.commitment(ch, "n", inv, prods, NODE_KEY)))
        manifest = chl.reveal(drop, "n", ch, [chl.Product(d0, 0, p0.c, p0.root, 0.0)])
        manifest["files"] = [{**manifest["files"][0], "device": x["uuid"]} for x in devs]  # every entry: one file
        write_atomic(drop / f"n{chl.REVEAL_SUFFIX}", dumps(manifest))
        return verify(path, drop, _receipts(tmp_path, ch, drop, {"n": 1.0}), trusted={kid(NODE_KEY)})

    drop = tmp_path / "same-root"
    drop.mkdir()
    verdict = forge(drop, 40)
    assert "duplicate-root" in error_codes(verdict) and checks == [] and verdict.fleet["verified_flops"] == 0
    drop = tmp_path / "shared-file"
    drop.mkdir()
    verdict = forge(drop, 40, same_root=False)
    assert "shared-reveal-file" in error_codes(verdict) and checks == [] and verdict.fleet["verified_flops"] == 0
    drop = tmp_path / "many"
    drop.mkdir()
    verdict = forge(drop, chl.MAX_DEVICES + 1, same_root=False)
    assert "too-many-devices" in error_codes(verdict) and checks == []
    # a device whose first product fails is not checked further
    path3, ch3 = _issue(tmp_path, n=64, products=3)
    drop = tmp_path / "bad-first"
    drop.mkdir()
    base = _answer(drop, ch3, tamper=lambda c: c.add_(1.0))
    verdict = verify(path3, drop, _receipts(tmp_path, ch3, drop, {base: 1.0}))
    assert error_codes(verdict) == {"root-mismatch"} and checks == ["host-a"]
    # honest: every device checked, counted
    checks.clear()
    drop = tmp_path / "honest"
    drop.mkdir()
    base = _answer(drop, ch3)
    verdict = verify(path3, drop, _receipts(tmp_path, ch3, drop, {base: 1.0}))
    assert error_codes(verdict) == set() and len(checks) == 3 and verdict.fleet["verified_flops"] == 3 * 2 * 64**3


# --- S1: bytes capped, objects not --------------------------------------------------------------------------------


def test_s1_json_amplification(tmp_path):
    """16 MiB of '[],' took verify 18 s and 1.2 GB. The count of arrays and objects is capped before parsing (a
    smaller cap for commitments)."""
    raw = b"[" + b"[]," * (strict_json.DEFAULT_MAX_CONTAINERS + 1) + b"0]"
    with pytest.raises(intake.InputError, match="arrays and objects"):
        intake.parse_json(raw, "big.json")
    f = tmp_path / "report.json"
    f.write_bytes(raw)
    res = CliRunner().invoke(main, ["verify", str(f)])
    assert res.exit_code == 1 and "arrays and objects" in res.output
    # a commitment: the smaller cap, one malformed entry
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    (drop / f"junk{chl.COMMIT_SUFFIX}").write_bytes(b"[" + b"{}," * (chl.MAX_COMMIT_CONTAINERS + 1) + b"0]")
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0, "junk": 1.0}))  # received: so it is parsed
    assert any(f.code == "malformed" and "arrays and objects" in f.message for f in verdict.findings)
    assert verdict.fleet["verified_flops"] == 2 * 2 * 64**3  # the honest answer still counts
    assert intake.parse_json(f.read_bytes()[:0] + b'{"a": [1, 2, {"b": []}]}', "ok") == {"a": [1, 2, {"b": []}]}


# --- V1: every rewrite of junk archived and logged -----------------------------------------------------------------


def test_v1_collector_archive_growth(tmp_path):
    """Every rewrite of a junk *.commit.json was archived and got a receipt. Only accepted commitments are archived
    and logged now, at most ARCHIVE_VERSIONS_PER_NAME versions (and bytes) under one name."""
    _, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    archive = tmp_path / "archive"
    seen: dict = {}
    for r in range(5):
        for i in range(4):
            (drop / f"j{i}{chl.COMMIT_SUFFIX}").write_bytes(os.urandom(1000 + r))
        new = chl.scan(drop, seen, lambda: ch.issued + dt.timedelta(seconds=1), ch, archive=archive, auditor=AUDITOR_ID)
        assert len(new) == 4 and not any(x["accepted"] for x in new)
    assert not archive.exists() or not list(archive.iterdir())
    # a valid commitment rewritten again and again: archived a bounded number of times
    accepted = 0
    commit = drop / f"{_answer(drop, ch)}{chl.COMMIT_SUFFIX}"
    for r in range(chl.ARCHIVE_VERSIONS_PER_NAME + 3):
        if r:
            data = json.loads(commit.read_text())
            data["committed_utc"] = chl.utc(ch.issued + dt.timedelta(seconds=r))
            write_atomic(commit, dumps(_sign_forged(data)))
        new = chl.scan(drop, seen, lambda: ch.issued + dt.timedelta(seconds=1), ch, archive=archive, auditor=AUDITOR_ID)
        accepted += sum(x["accepted"] for x in new)
    assert accepted == chl.ARCHIVE_VERSIONS_PER_NAME == len(list(archive.iterdir()))
    # the collector's signed log holds the accepted commitments only
    issued = tmp_path / "c.json"
    auditor_pem = tmp_path / "auditor.pem"
    keys.create(auditor_pem)
    res = CliRunner().invoke(main, ["challenge", "issue", "-o", str(issued), "--size", "64", "--products", "1", "--window",
                                    "5m", "--auditor-key", str(auditor_pem)])  # fmt: skip
    assert res.exit_code == 0, res.output
    ch2 = chl.load_challenge(issued)
    drop2 = tmp_path / "drop2"
    drop2.mkdir()
    (drop2 / f"0junk{chl.COMMIT_SUFFIX}").write_bytes(b"junk")
    _answer(drop2, ch2)
    log = tmp_path / "receipts.json"
    res = CliRunner().invoke(main, ["challenge", "collect", str(drop2), "--challenge", str(issued), "-o", str(log),
                                    "--expect", "1", "--auditor-key", str(auditor_pem)])  # fmt: skip
    assert res.exit_code == 0 and "1 commitments recorded" in res.output, res.output
    logged = json.loads(log.read_text())["receipts"]
    assert [r["accepted"] for r in logged] == [True] and len(
        list((tmp_path / "receipts.json.commitments").iterdir())
    ) == 1


# --- X1..X4: crashes ----------------------------------------------------------------------------------------------


def test_x1_verify_crash_unhashable_uuid(tmp_path, monkeypatch):
    """A signed commitment whose inventory holds a list as a GPU's UUID raised TypeError, and no node got a verdict.
    Only string UUIDs are read, and a commitment that fails to check is one 'unchecked' entry."""
    path, ch = _issue(tmp_path, n=64, products=1)
    drop = _drop(tmp_path)
    honest = _answer(drop, ch, node="honest", uuid="fp-honest")
    prods = [chl.compute(ch, "evil", {"id": "cpu", "kind": "cuda", "name": H100, "uuid": "GPU-x"}, 0)]
    commit = chl.commitment(ch, "evil", {"host": {}, "nvml": {"gpus": []}}, prods, NODE_KEY)
    commit["inventory"]["gpus"] = [{"index": 0, "name": H100, "uuid": ["GPU-x"]}]
    write_atomic(drop / f"evil{chl.COMMIT_SUFFIX}", dumps(_sign_forged(commit)))
    write_atomic(drop / f"evil{chl.REVEAL_SUFFIX}", dumps(chl.reveal(drop, "evil", ch, prods)))
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {honest: 1.0, "evil": 1.0}))
    assert "unknown-device" in error_codes(verdict) and [d["node"] for d in verdict.devices] == ["honest"]
    # any unexpected failure checking one commitment is that commitment's finding only
    original = chl.auditor._check_product

    def boom(ch_, directory, entry, node, *a, **kw):
        if node == "evil":
            raise TypeError("unhashable type: 'list'")
        return original(ch_, directory, entry, node, *a, **kw)

    monkeypatch.setattr(chl.auditor, "_check_product", boom)
    commit["inventory"]["gpus"] = [{"index": 0, "name": H100, "uuid": "GPU-x"}]
    write_atomic(drop / f"evil{chl.COMMIT_SUFFIX}", dumps(_sign_forged(commit)))
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {honest: 1.0, "evil": 1.0}))
    assert "unchecked" in error_codes(verdict) and [d["node"] for d in verdict.devices] == ["honest"]


@pytest.mark.parametrize("created", ["9999-12-31T23:59:59.999999Z", "0001-01-01T00:00+14:00"])
def test_x2_capacity_far_future_crash(tmp_path, created):
    """A capacity report created at 9999-12-31T23:59:59.999999Z raised OverflowError in `bench verify --reports`."""
    with pytest.raises(model.ReportError, match="out of range"):
        model.parse_timestamp(created, "created_utc")
    reports = tmp_path / "reports"
    reports.mkdir()
    (rep,) = _h100_reports(reports, ["GPU-" + "0" * 32])
    data = json.loads(rep.read_text())
    cap = agg.aggregate([("r0", data)], trusted={kid(NODE_KEY)})
    honest = tmp_path / "honest.json"
    write_atomic(honest, dumps(_sign_forged(cap)))
    cap["created_utc"] = created
    forged = tmp_path / "capacity.json"
    write_atomic(forged, dumps(_sign_forged(cap)))
    trust = tmp_path / "nodes.keys"
    trust.write_text(kid(NODE_KEY) + "\n")
    common = ["--reports", str(reports), "--trusted-keys", str(trust), "--max-age", "1d", "--json"]
    res = CliRunner().invoke(main, ["verify", str(forged), str(honest), *common])
    assert res.exit_code == 1 and not isinstance(res.exception, (OverflowError, TypeError)), res.exception
    out = json.loads(res.stdout)["reports"]
    assert any(f["severity"] == "error" for f in out[str(forged)]) and not any(
        f["severity"] == "error" for f in out[str(honest)]
    )


def test_x3_non_utf8_filename(tmp_path):
    """A file named b'\\xff.commit.json' in the drop killed the collector (RFC 8785 refused the name in a receipt)."""
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    with open(os.path.join(os.fsencode(drop), b"\xff" + chl.COMMIT_SUFFIX.encode()), "wb") as fh:
        fh.write(b"{}")
    receipts = chl.scan(drop, {}, ch.issued + dt.timedelta(seconds=1), ch, auditor=AUDITOR_ID)
    assert {r["file"] for r in receipts} == {"\\xff.commit.json", f"{base}{chl.COMMIT_SUFFIX}"}
    dumps(chl.receipts_doc(ch, receipts, AUDITOR))  # signs: no lone surrogate left
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert error_codes(verdict) == {"no-receipt"} and verdict.fleet["verified_flops"] == 2 * 2 * 64**3
    json.loads(dumps(verdict.to_dict()))


def test_x4_aggregate_non_utf8_path(tmp_path):
    """A folder named b'\\xff' under the results killed `bench aggregate` (input names are signed)."""
    results = tmp_path / "results"
    (results / "good").mkdir(parents=True)
    reports = _h100_reports(results / "good", ["GPU-" + "0" * 32])
    os.rename(reports[0], results / "good" / "report.json")
    odd = os.path.join(os.fsencode(results), b"\xff")
    os.mkdir(odd)
    other = _h100_reports(tmp_path, ["GPU-" + "1" * 32])[0]
    os.rename(other, os.path.join(odd, b"report.json"))
    trust = tmp_path / "nodes.keys"
    trust.write_text(kid(NODE_KEY) + "\n")
    key = tmp_path / "agg.pem"
    keys.create(key)
    res = CliRunner().invoke(main, ["aggregate", str(results), "-o", str(tmp_path / "cap.json"), "--key", str(key),
                                    "--trusted-keys", str(trust), "--max-age", "1d"])  # fmt: skip
    assert res.exit_code == 0, res.output
    cap = json.loads((tmp_path / "cap.json").read_text())
    assert sorted(i["status"] for i in cap["inputs"]) == ["counted", "counted"]
    assert any("\\xff" in i["name"] for i in cap["inputs"])
    assert sign.check(cap)[0]


# --- E1: clones nudged by a few ulps (bounded tier only) -----------------------------------------------------------


def test_e1_clone_ulp_perturb_is_a_documented_limit():
    """Clones whose samples are nudged by a few ulps are not caught by the samples digest: no cheap check is robust
    (any noise defeats one), and the bounded tier they reach never supports a claim. docs/proofs.md says so."""
    readme = (Path(__file__).resolve().parents[2] / "docs" / "proofs.md").read_text(encoding="utf-8")
    assert "nudged" in readme and "clone" in readme.lower()
