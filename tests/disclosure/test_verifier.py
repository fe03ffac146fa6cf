"""What `bench verify disclosure.json` holds a disclosure to beyond its own re-derivation: the verifier's own keys,
the capacity reports recomputed from node reports found in the folder, and the auditor's signed audit request."""

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from bench import challenge as chl
from bench.cli import main
from bench.disclosure import document as dd
from bench.disclosure import sampling
from bench.disclosure.leaves import DisclosureError, Store
from bench.model import sign
from bench.report import proofs
from bench.report.store import dumps
from tests.disclosure import world

K = world.KEYS


def _pub(path, key):
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    return str(path)


def _errors(findings):
    return [f for f in findings if f.severity == "error"]


def test_an_honest_disclosure_passes_under_the_verifiers_own_keys_and_without_from_is_not_recomputed(tmp_path):
    files = world.write_site(tmp_path / "in", "North", "Alpha", "A1", [1, 2])
    out = world.site_disclosure(tmp_path, files, Store())
    (tmp_path / "node.ids").write_text(K.kid("node") + "\n")
    auditor = _pub(tmp_path / "auditor.pub", K.auditor)
    keys = ["--auditor-key", auditor, "--trusted-keys", str(tmp_path / "node.ids")]
    result = CliRunner().invoke(main, ["verify", str(out), "--from", str(tmp_path / "in"), *keys])
    assert result.exit_code == 0, result.output
    # another node trust list: the disclosure's node keys are not the verifier's
    (tmp_path / "other.ids").write_text(world.Keys().kid("node") + "\n")
    result = CliRunner().invoke(main, ["verify", str(out), "--from", str(tmp_path / "in"), "--trusted-keys",
                                       str(tmp_path / "other.ids")])  # fmt: skip
    assert result.exit_code == 1 and "untrusted-key" in result.output
    # a forger's capacity report counts node reports of its own key, under a policy naming the real node key
    forger = world.Keys()
    forged = world.write_site(tmp_path / "in2", "North", "Alpha", "A1", [1, 2], keys=forger)
    policy = forger.policy(node_ids=frozenset({K.kid("node")}))
    out2 = world.site_disclosure(tmp_path, forged, Store(), keys=forger, policy=policy)
    for nodes in (True, False):  # with its node reports in the folder (recomputed) and without (as it lists them)
        if not nodes:
            for f in forged["nodes"].glob("*.json"):
                f.unlink()
        result = CliRunner().invoke(main, ["verify", str(out2), "--from", str(tmp_path / "in2"), "--trusted-keys",
                                           str(tmp_path / "node.ids")])  # fmt: skip
        assert result.exit_code == 1 and "untrusted-key" in result.output, (nodes, result.output)
    # no --from: nothing re-derived, and the verdict says so instead of "pass"
    result = CliRunner().invoke(main, ["verify", str(out), *keys])
    assert result.exit_code == 1 and "not-recomputed" in result.output


def test_a_capacity_report_edited_within_the_peak_fails_when_its_node_reports_are_in_the_folder(tmp_path):
    files = world.write_site(tmp_path / "in", "North", "Alpha", "A1", [1])
    cap = json.loads(files["capacity"].read_text())
    cap["devices"][0]["mamf_tflops"] = 0.95 * cap["devices"][0]["peak_tflops"]  # possible, but not what was measured
    cap.pop("signature")
    cap["signature"] = sign.sign(cap, K.aggregator)
    files["capacity"].write_text(dumps(cap))
    doc = world.read(world.site_disclosure(tmp_path, files, Store()))
    assert any(f.code == "capacity-mismatch" for f in _errors(dd.verify(doc, Store(tmp_path / "in"))))
    # without the node reports the rows are the aggregator's word, and verify says so
    (tmp_path / "bare").mkdir()
    for name in ("capacity.json", "disclosure.json"):
        (tmp_path / "bare" / name).write_bytes((files["capacity"].parent / name).read_bytes())
    findings = dd.examine(doc, tmp_path / "bare", "d")
    assert not _errors(findings) and any(f.code == "capacity-not-recomputed" for f in findings)


def _rows(files):
    cap = world.read(files["capacity"])
    return [(d["device"], float(d["mamf_tflops"])) for d in cap["devices"] if d["precision"] == "bfloat16"]


def _proof(path, devices, hours_ago):
    ch = chl.issue(K.auditor, dtype="bfloat16", n=64, products=1, window=dt.timedelta(minutes=5), nodes=None,
                   now=world.NOW - dt.timedelta(hours=hours_ago))  # fmt: skip
    path.write_text(dumps(proofs.document(ch, [world.proven(d, t) for d, t in devices], K.auditor)))
    return path


def _audit(rows, *, key=None, digest=None, hours_ago=2.0):
    req = sampling.request(key or K.auditor, nonce="auditor-nonce-verifier-01",
                           population_digest=digest or sampling.population(rows)["digest"], precision="bfloat16",
                           size=10, now=world.NOW - dt.timedelta(hours=hours_ago))  # fmt: skip
    return {"nonce": req["nonce"], "size": 10, "confidence": 0.95, "precision": "bfloat16", "request": req}


def test_an_audit_counts_only_proofs_after_the_auditors_request_over_the_same_population(tmp_path):
    files = world.write_site(tmp_path / "in", "North", "Alpha", "A1", [1, 2])
    rows = _rows(files)
    after = _proof(tmp_path / "in" / "after.json", rows, hours_ago=1)
    doc = world.read(world.site_disclosure(tmp_path, files, Store(), proofs=[after], audit=_audit(rows)))
    assert doc["audit"]["units_genuine"] == 10 and doc["audit"]["request_key_id"] == K.kid("auditor")
    assert not _errors(dd.verify(doc, Store(tmp_path / "in")))
    # the same proof issued BEFORE the request: the sample was not known when it was answered
    before = _proof(tmp_path / "in" / "before.json", rows, hours_ago=3)
    doc = world.read(world.site_disclosure(tmp_path, files, Store(), proofs=[before], audit=_audit(rows)))
    assert doc["audit"]["units_genuine"] == 0
    # a request over another population (the discloser re-cut it after seeing the nonce) or by another key
    with pytest.raises(DisclosureError, match="population"):
        world.site_disclosure(tmp_path, files, Store(), proofs=[after], audit=_audit(rows[1:], digest=None))
    with pytest.raises(DisclosureError, match="not the auditor's key"):
        world.site_disclosure(tmp_path, files, Store(), proofs=[after], audit=_audit(rows, key=K.discloser))
