"""Seventh round (issue 23, items 4-6): a proof borrowed by another operator, a node name squatted by another node's
key, a flood of signed junk commitments, and a stray file that no document cites. Each test failed on the code before
this change: the borrowed proof supported the claim, the squatter voided the honest answer, the junk
cost one full product check per junk device, and the stray file turned an honest disclosure into FAIL."""

from __future__ import annotations

import datetime as dt
import json
import os
import zlib

import torch
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from bench import challenge as chl
from bench.challenge import triage
from bench.cli import main
from bench.model import keys
from bench.report import proofs
from bench.report.store import dumps, write_atomic
from tests.report import fleet
from tests.test_challenge import AUDITOR, AUDITOR_ID, NODE_KEY, OTHER, _answer, _drop, _issue, _receipts, kid, verify

H100 = fleet.H100


def error_codes(verdict):
    return {f.code for f in verdict.findings if f.severity == "error"}


def _junk(drop, ch, node, key, devices, *, base=None, kind="cuda"):
    """A signed commitment under `node` whose every product is junk (a constant matrix, different per device so that
    no root is shared), with Merkle roots that match what is revealed: it passes every cheap check."""
    devs = [{"id": f"cuda:{i}", "kind": kind, "name": H100, "uuid": f"GPU-{node}-{i:04d}"} for i in range(devices)]
    dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}[ch.dtype]
    products = []
    for j, d in enumerate(devs):
        c = torch.full((ch.n, ch.n), float(j + 1), dtype=dtype)
        c[0] = float(zlib.crc32(node.encode()) % 251)  # junk of its own: no root shared with another commitment
        products += [chl.Product(d, i, c, chl.merkle_root(chl.row_bytes(c)), 0.0) for i in range(ch.products)]
    inv = {"host": {"hostname": node, "fingerprint": f"fp-{node}"},
           "nvml": {"gpus": [{"index": i, "name": H100, "uuid": d["uuid"]} for i, d in enumerate(devs)]}}  # fmt: skip
    base = base or chl.commit_name(node, ch.nonce)
    write_atomic(drop / f"{base}{chl.COMMIT_SUFFIX}", dumps(chl.commitment(ch, node, inv, products, key)))
    write_atomic(drop / f"{base}{chl.REVEAL_SUFFIX}", dumps(chl.reveal(drop, base, ch, products)))
    return base


# --- the trust list binds node names to keys ----------------------------------------------------------------------


def test_a_trust_list_binds_names_and_still_reads_the_old_format():
    a, b = kid(NODE_KEY), kid(OTHER)
    ids, names = keys.parse_trust(f"{a} node001 node002  # rack 1\n{b}\n")
    assert ids == {a, b} and names == {"node001": a, "node002": a}
    assert keys.parse_trusted(f"{a}\n{b}\n") == {a, b}
    try:
        keys.parse_trust(f"{a} node001\n{b} node001\n")
    except keys.KeyFileError as exc:
        assert "already bound" in str(exc)
    else:
        raise AssertionError("a name bound to two keys was accepted")


# --- a squatted node name -----------------------------------------------------------------------------------------


def test_a_squatter_under_anothers_name_cannot_void_its_answer(tmp_path):
    """OTHER's key commits junk first under node001, NODE_KEY's node; node001's honest answer then was 'second
    commitment' and counted nothing. Now a name bound to a key in the trust list is refused to any other key, and
    even without a binding another key's commitment never makes a node's own answer a second one."""
    path, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    squat = _junk(drop, ch, "node001", OTHER, 1, base="squat")
    honest = _answer(drop, ch, node="node001", uuid="host-a", key=NODE_KEY)
    receipts = _receipts(tmp_path, ch, drop, {squat: 0.5, honest: 1.0})
    trusted = {kid(NODE_KEY), kid(OTHER)}
    bound = verify(path, drop, receipts, trusted=trusted, names={"node001": kid(NODE_KEY)})
    assert "name-key" in error_codes(bound) and bound.fleet["verified_flops"] == 2 * 64**3
    assert [d["device"] for d in bound.devices] == ["host-a"]
    unbound = verify(path, drop, receipts, trusted=trusted)
    assert "second-commitment" not in error_codes(unbound) and unbound.fleet["verified_flops"] == 2 * 64**3


def test_the_collector_does_not_count_a_squatter(tmp_path):
    """A squatter's commitment would count toward `collect --expect` and end the collection early: a name bound to
    another key is not accepted (nor archived)."""
    _, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    _junk(drop, ch, "node001", OTHER, 1, base="squat")
    _answer(drop, ch, node="node001", uuid="host-a", key=NODE_KEY)
    receipts = chl.scan(drop, {}, ch.issued, ch, trusted={kid(NODE_KEY), kid(OTHER)}, auditor=AUDITOR_ID,
                        names={"node001": kid(NODE_KEY)})  # fmt: skip
    accepted = {r["file"]: r["accepted"] for r in receipts}
    assert accepted == {
        f"squat{chl.COMMIT_SUFFIX}": False,
        f"{chl.commit_name('node001', ch.nonce)}{chl.COMMIT_SUFFIX}": True,
    }


def test_the_cli_reads_names_from_the_trust_list(tmp_path):
    path, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    squat = _junk(drop, ch, "node001", OTHER, 1, base="squat")
    honest = _answer(drop, ch, node="node001", uuid="host-a", key=NODE_KEY)
    receipts = _receipts(tmp_path, ch, drop, {squat: 0.5, honest: 1.0})
    trust = tmp_path / "nodes.keys"
    trust.write_text(f"{kid(NODE_KEY)} node001\n{kid(OTHER)}\n")
    pub = tmp_path / "auditor.pub"
    pub.write_bytes(AUDITOR.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    res = CliRunner().invoke(main, ["challenge", "verify", str(path), str(drop), "--receipts", str(receipts),
                                    "--auditor-key", str(pub), "--trusted-keys", str(trust), "--json"])  # fmt: skip
    assert res.stdout, res.output
    out = json.loads(res.stdout)
    assert "name-key" in {f["code"] for f in out["findings"]} and out["fleet"]["verified_flops"] == 2 * 64**3


# --- junk is cheap to refuse --------------------------------------------------------------------------------------


def test_junk_commitments_cost_a_spot_check_each_and_a_key_budget_stops_them(tmp_path, monkeypatch):
    """Ten junk commitments of sixteen GPUs each under made-up names, signed by a trusted key, arriving before the
    honest answer: the verifier did a full product check per junk device (160). Now each commitment's first heavy
    check is one random product, a wrong one refuses the commitment, and after JUNK_PER_KEY such commitments the key's
    further ones are refused unread; the honest answer is judged all the same."""
    path, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    arrivals = {_junk(drop, ch, f"junk{j:02d}", OTHER, 16): 0.1 + j / 100 for j in range(10)}
    honest = _answer(drop, ch, node="node-a", uuid="host-a", key=NODE_KEY)
    arrivals[honest] = 1.0
    checks = []
    original = chl.auditor._check_product
    monkeypatch.setattr(chl.auditor, "_check_product", lambda *a, **kw: checks.append(a[3]) or original(*a, **kw))
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, arrivals), trusted={kid(NODE_KEY), kid(OTHER)})
    junk_checks = [n for n in checks if n.startswith("junk")]
    assert len(junk_checks) == triage.JUNK_PER_KEY, checks
    assert "key-budget" in error_codes(verdict)
    assert verdict.fleet["verified_flops"] == 2 * 64**3 and [d["device"] for d in verdict.devices] == ["host-a"]


def test_a_names_own_answer_is_judged_before_any_other_names_junk(tmp_path, monkeypatch):
    """The same key sends junk under made-up names first and then its real node's answer (the node bound to it in the
    trust list): the budget the junk spends never reaches the bound name's answer."""
    path, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    arrivals = {_junk(drop, ch, f"junk{j:02d}", NODE_KEY, 4): 0.1 + j / 100 for j in range(5)}
    arrivals[_answer(drop, ch, node="node-a", uuid="host-a", key=NODE_KEY)] = 1.0
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, arrivals), trusted={kid(NODE_KEY)},
                     names={"node-a": kid(NODE_KEY)})  # fmt: skip
    assert verdict.fleet["verified_flops"] == 2 * 64**3 and "key-budget" in error_codes(verdict)
    assert next(n["node"] for n in verdict.nodes) == "node-a"  # judged first


# --- a proof belongs to whom it was issued ------------------------------------------------------------------------


def _reports(tmp_path, uuid, key, hostname):
    end = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    data = fleet.node_report(1, [700.0], key, end=end)
    data["inventory"]["nvml"]["gpus"][0]["uuid"] = uuid
    data["inventory"]["host"]["hostname"] = hostname
    data["measurements"][0]["device"]["uuid"] = uuid
    path = tmp_path / f"{hostname}.json"
    write_atomic(path, dumps(fleet.resign(data, key)))
    return path


def _verify_with_proof(tmp_path, report, proof, claim):
    trust = tmp_path / "nodes.keys"
    trust.write_text(f"{kid(NODE_KEY)}\n{kid(OTHER)}\n")
    pem = tmp_path / "auditor.pem"
    pem.write_bytes(AUDITOR.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))  # fmt: skip
    os.chmod(pem, 0o600)
    return CliRunner().invoke(main, ["verify", str(report), "--trusted-keys", str(trust), "--auditor-key", str(pem),
                                     "--proof", str(proof), "--claim", claim, "--max-age", "7d", "--json"])  # fmt: skip


def test_a_proof_counts_only_for_the_key_and_host_that_committed_it(tmp_path):
    """Operator Y (its own key and host name) cited operator X's proof for X's GPU UUID, named in Y's own report, and
    its claim was 'supported (proven)'. A proven bound now counts only for a node report signed by the key that
    committed the answer, for the host that committed it, and a finding says why it does not."""
    uuid = "GPU-" + "7" * 32
    ch = chl.issue(AUDITOR, dtype="bfloat16", n=64, products=1, window=dt.timedelta(minutes=5), nodes=None)
    proof = tmp_path / "x.proof.json"
    entry = {"device": uuid, "node": "x-host", "key_id": kid(NODE_KEY), "host": "x-host", "tflops_lower_bound": 650.0}
    write_atomic(proof, dumps(proofs.document(ch, [entry], AUDITOR)))
    own = _verify_with_proof(tmp_path, _reports(tmp_path, uuid, NODE_KEY, "x-host"), proof, "0.6 PFLOPS bf16")
    assert own.exit_code == 0, own.output
    assert json.loads(own.stdout)["claims"][0]["supported"]
    borrowed = _verify_with_proof(tmp_path, _reports(tmp_path, uuid, OTHER, "y-host"), proof, "0.6 PFLOPS bf16")
    out = json.loads(borrowed.stdout)
    assert borrowed.exit_code == 1 and not out["claims"][0]["supported"] and out["claims"][0]["proven_tflops"] == 0
    messages = [f["message"] for fs in out["reports"].values() for f in fs if f["code"] == "proof-owner"]
    assert messages and kid(NODE_KEY) in messages[0] and kid(OTHER) in messages[0] and "y-host" in messages[0]
    # same key, another host: not the committed host either
    other_host = _verify_with_proof(tmp_path, _reports(tmp_path, uuid, NODE_KEY, "z-host"), proof, "0.6 PFLOPS bf16")
    assert not json.loads(other_host.stdout)["claims"][0]["supported"]


def test_a_disclosure_refuses_a_proof_committed_by_another_operator(tmp_path):
    """The same borrowing in a disclosure: a proof whose devices were committed by another operator's node key (for
    the right hosts) is refused when the site is disclosed, naming both keys; the site's own proof is proven."""
    import pytest

    from bench.disclosure.leaves import DisclosureError, Store
    from tests.adversarial.test_fourth_round import _devices, _head
    from tests.adversarial.test_fourth_round import _proof as disclosure_proof
    from tests.disclosure import world

    other = world.Keys()
    files = world.write_site(tmp_path / "in", "North", "Alpha", "A1", [1, 2])
    devices = {d: 600.0 for d in _devices(files)}
    borrowed = disclosure_proof(tmp_path / "in" / "borrowed.proof.json", devices, keys=other)
    with pytest.raises(DisclosureError, match=f"committed by key {other.kid('node')}.*{world.KEYS.kid('node')}"):
        world.site_disclosure(tmp_path, files, Store(), proofs=[borrowed])
    own = disclosure_proof(tmp_path / "in" / "own.proof.json", devices)
    doc = world.read(world.site_disclosure(tmp_path, files, Store(), proofs=[own]))
    assert _head(doc)["proven_pflops"] == pytest.approx(len(devices) * 0.6)


def test_a_proof_without_an_owner_counts_nothing(tmp_path):
    """A device entry that names no committing key or host (a proof written before owners were recorded) cannot be
    held to anyone: it counts for no report."""
    uuid = "GPU-" + "8" * 32
    ch = chl.issue(AUDITOR, dtype="bfloat16", n=64, products=1, window=dt.timedelta(minutes=5), nodes=None)
    proof = tmp_path / "old.proof.json"
    write_atomic(proof, dumps(proofs.document(ch, [{"device": uuid, "tflops_lower_bound": 650.0}], AUDITOR)))
    res = _verify_with_proof(tmp_path, _reports(tmp_path, uuid, NODE_KEY, "x-host"), proof, "0.6 PFLOPS bf16")
    assert not json.loads(res.stdout)["claims"][0]["supported"]


def test_the_auditor_records_who_committed_each_proven_device(tmp_path):
    path, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    base = _answer(drop, ch, node="node-a", uuid="host-a", key=NODE_KEY)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}), trusted={kid(NODE_KEY)})
    (device,) = verdict.devices
    assert (device["key_id"], device["host"]) == (kid(NODE_KEY), "node-a")


# --- files nobody cites are not evidence --------------------------------------------------------------------------

LONE_SURROGATE = b'{"kind": "bench.capacity", "schema_version": 1, "note": "\\ud800"}'
STRAYS = [
    LONE_SURROGATE,
    b'{"note": "\\ud800"}',
    b'["\\ud800"]',
    b'{"kind": "bench.disclosure", "x": "\\ud800"}',
    b'{"kind": "bench.challenge-proof", "x": "\\ud800"}',
    b'{"kind": "bench.node-report", "x": "\\ud800"}',
    b'{"\\ud800": 1}',
]


def test_a_stray_file_nobody_cites_does_not_fail_an_honest_disclosure(tmp_path):
    """A file in the --from folder that canonical JSON cannot encode (a lone surrogate), cited by no document, turned
    `bench verify` of a valid disclosure into FAIL. Only files a document cites by digest are read as evidence now;
    one nobody cites is at most a warning."""
    from tests.disclosure import world
    from tests.disclosure.test_cli import AS_OF, _pem

    k = world.KEYS
    files = world.write_site(tmp_path / "in", "North", "Alpha", "A1", [1, 2])
    for name in ("aggregator", "operator", "node"):
        (tmp_path / f"{name}.ids").write_text(k.kid(name) + "\n")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["disclose", "site", "--declaration", str(files["declaration"]), "--capacity",
                                    f"a={files['capacity']}", "--aggregator-keys", str(tmp_path / "aggregator.ids"),
                                    "--operator-keys", str(tmp_path / "operator.ids"), "--trusted-keys",
                                    str(tmp_path / "node.ids"), "--auditor-key", _pem(tmp_path / "a.pem", k.auditor),
                                    "--key", _pem(tmp_path / "d.pem", k.discloser), *AS_OF, "-o", str(out)])  # fmt: skip
    assert res.exit_code == 0, res.output
    honest = CliRunner().invoke(main, ["verify", str(out / "disclosure.json"), "--from", str(tmp_path)])
    assert honest.exit_code == 0, honest.output
    for i, stray in enumerate(STRAYS):
        (tmp_path / "in" / f"stray{i}.json").write_bytes(stray)
    (tmp_path / "in" / "North" / "not-json.json").write_bytes(b"\xff\xfe not even text")
    res = CliRunner().invoke(main, ["verify", str(out / "disclosure.json"), "--from", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    (findings,) = json.loads(res.stdout)["reports"].values()
    assert [f["severity"] for f in findings if f["code"] == "uncited-files"] == ["warning"]
    # a cited file that is missing still fails
    files["capacity"].unlink()
    res = CliRunner().invoke(main, ["verify", str(out / "disclosure.json"), "--from", str(tmp_path)])
    assert res.exit_code == 1


def test_a_stray_file_in_reports_does_not_fail_an_honest_capacity_report(tmp_path):
    """The same for `bench verify CAPACITY --reports DIR`: a file no input cites is not evidence."""
    from tests.disclosure import world

    k = world.KEYS
    files = world.write_site(tmp_path / "in", "North", "Alpha", "A1", [1, 2])
    trust = tmp_path / "node.ids"
    trust.write_text(k.kid("node") + "\n")
    args = ["verify", str(files["capacity"]), "--reports", str(files["nodes"]), "--trusted-keys", str(trust)]
    assert CliRunner().invoke(main, args).exit_code == 0
    for i, stray in enumerate(STRAYS):
        (files["nodes"] / f"stray{i}.json").write_bytes(stray)
    (files["nodes"] / "not-json.json").write_bytes(b"\xff\xfe not even text")
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
