"""bench.audit: what `bench verify` does, as a library call with no terminal output (the verb only prints it)."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import audit as au
from bench.model import keys, sign
from bench.report.store import dumps
from tests.report import synthetic as syn


def _signed_report(tmp_path, name="good.json"):
    key = Ed25519PrivateKey.generate()
    data = syn.report([syn.matmul("float32", syn.samples(0.002))]).to_dict()
    data["signature"] = sign.sign(data, key)
    path = tmp_path / name
    path.write_text(dumps(data))
    return path, keys.key_id(keys.raw_public(key.public_key()))


def test_an_audit_of_files_gives_findings_tiers_and_no_output(tmp_path, capsys):
    good, key_id = _signed_report(tmp_path)
    hostile = tmp_path / "hostile.json"
    hostile.write_text("[" * 100000)
    result = au.audit([good, hostile], trusted={key_id})
    assert capsys.readouterr() == ("", "")
    assert result.failed == [str(hostile)] and result.results[str(hostile)][0].code == "unreadable"
    assert {t["tier"] for t in result.tiers[str(good)]} <= {"reported", "bounded", "proven"} and result.tiers[str(good)]
    assert json.loads(dumps(result.to_dict()))["reports"][str(good)] == [f.to_dict() for f in result.results[str(good)]]


def test_a_claim_over_node_reports_is_unsupported_without_a_proof(tmp_path):
    good, key_id = _signed_report(tmp_path)
    result = au.audit([good], trusted={key_id}, claims=("1 TFLOPS fp32",))
    (claim,) = result.claims
    assert claim["report"] == "node reports" and not claim["supported"]
    assert result.unsupported == [claim] and not result.failed
