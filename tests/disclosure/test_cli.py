"""`bench disclose` end to end through the CLI: signed declaration, site, roll-up, verify --from, sample, the audit,
the HTML page in headless Chromium; and every hostile input ends with exit 2 and one line."""

import datetime as dt
import json
import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization

from bench import challenge as chl
from bench.cli import main
from bench.report import proofs
from bench.report.store import dumps
from tests.disclosure import world

K = world.KEYS
AS_OF = ["--as-of", "2026-11-28T12:00:00Z"]


def _pem(path, key):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    path.chmod(0o600)
    return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    files = {s: world.write_site(tmp / "in", "North", "Alpha", s, nodes) for s, nodes in (("A1", [1, 2]), ("A2", [3]))}
    keyfiles = {
        n: _pem(tmp / f"{n}.pem", getattr(K, n)) for n in ("operator", "aggregator", "node", "auditor", "discloser")
    }
    for name in ("aggregator", "operator", "node"):
        (tmp / f"{name}.ids").write_text(K.kid(name) + "\n")
    policy = ["--aggregator-keys", str(tmp / "aggregator.ids"), "--operator-keys", str(tmp / "operator.ids"),
              "--trusted-keys", str(tmp / "node.ids"), "--auditor-key", keyfiles["auditor"],
              "--key", keyfiles["discloser"], *AS_OF]  # fmt: skip
    return tmp, files, keyfiles, policy


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _site(setup, name, *extra, out=None):
    tmp, files, _, policy = setup
    out = out or tmp / "out" / name
    return _run("disclose", "site", "--declaration", files[name]["declaration"], "--capacity",
                f"a={files[name]['capacity']}", *policy, *extra, "-o", out), out  # fmt: skip


def test_sign_declaration_site_rollup_and_verify_from_the_folder(setup):
    tmp, files, keyfiles, policy = setup
    decl_copy = tmp / "copy.toml"
    shutil.copy(files["A1"]["declaration"], decl_copy)
    result = _run("disclose", "sign-declaration", decl_copy, "--key", keyfiles["operator"])
    assert result.exit_code == 0 and (tmp / "copy.toml.sig.json").exists()
    for name in ("A1", "A2"):
        result, out = _site(setup, name)
        assert result.exit_code == 0, result.output
        assert {p.name for p in out.iterdir()} == {"disclosure.json", "disclosure.md", "disclosure.html"}
    claims = tmp / "claims.toml"
    claims.write_text('[[claim]]\ntext = "788 EFLOPS"\nsource = "a ministry"\ndate = "2024-04"\n'
                      '[[claim]]\ntext = "10 PFLOPS bf16 by 2027"\nsource = "city plan"\ndate = "2025-01"\n')  # fmt: skip
    result = _run("disclose", "rollup", "--level", "city", "--name", "Alpha", "--from", tmp,
                  tmp / "out/A1/disclosure.json", tmp / "out/A2/disclosure.json", "--claims", claims, *policy,
                  "-o", tmp / "out/Alpha")  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp / "out/Alpha/disclosure.json").read_text())
    assert [c["text"] for c in doc["claims"]] == ["788 EFLOPS", "10 PFLOPS bf16 by 2027"]
    assert doc["claims"][0]["ambiguous"] and doc["claims"][1]["comparisons"][0]["declared_planned_pflops"] == 100.0
    md = (tmp / "out/Alpha/disclosure.md").read_text()
    assert "## Claims ledger" in md and "788 EFLOPS" in md and "Declared by the operators" in md
    result = _run("verify", tmp / "out/Alpha/disclosure.json", "--from", tmp)
    assert result.exit_code == 0, result.output
    # without --from it is checked but not re-derived, and says so
    result = _run("verify", tmp / "out/Alpha/disclosure.json", "--json")
    assert "not-recomputed" in result.output


def test_an_edited_disclosure_fails_verify_with_exit_1(setup):
    tmp = setup[0]
    result, out = _site(setup, "A1", out=tmp / "out/edited")
    doc = json.loads((out / "disclosure.json").read_text())
    doc["capacity"][3]["reported_pflops"] *= 3
    (out / "disclosure.json").write_text(dumps(world.resign_doc(doc)))
    result = _run("verify", out / "disclosure.json", "--from", tmp)
    assert result.exit_code == 1 and "disclosure-mismatch" in result.output


def test_sample_then_audit_a_site_proven_by_its_challenge(setup):
    tmp, _, keyfiles, _ = setup
    result, out = _site(setup, "A1", out=tmp / "out/pre-audit")
    nonce = "auditor-nonce-cli-0001"
    request = tmp / "request.json"
    result = _run("disclose", "sample", out / "disclosure.json", "--from", tmp, "--nonce", nonce, "--size", "20",
                  "--request", request, "--key", keyfiles["auditor"], "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    drawn = json.loads(result.output)
    sample = drawn["devices"]
    assert sample and sample == json.loads(_run("disclose", "sample", out / "disclosure.json", "--from", tmp, "--nonce",
                                                nonce, "--size", "20", "--json").output)["devices"]  # fmt: skip
    req = json.loads(request.read_text())  # the auditor's signed request: its nonce, bound to this population
    assert (req["nonce"], req["population_digest"], req["size"]) == (nonce, drawn["population_digest"], 20)
    # (the request above is stamped with today's clock; the test's world lives on 2026-11-28: the same request,
    # issued before the challenge by the world's clock)
    from bench.disclosure import sampling

    request.write_text(dumps(sampling.request(K.auditor, nonce=nonce, population_digest=drawn["population_digest"],
                                              precision="bfloat16", size=20, now=world.NOW - dt.timedelta(hours=1))))  # fmt: skip
    # the auditor challenges the sampled devices; each answers 650 of its ~700 TFLOPS
    ch = chl.issue(K.auditor, dtype="bfloat16", n=64, products=1, window=dt.timedelta(minutes=5), nodes=None,
                   now=world.NOW)  # fmt: skip
    proof = tmp / "audit.proof.json"
    proof.write_text(dumps(proofs.document(ch, [world.proven(d, 650.0) for d in sample], K.auditor)))
    result, out = _site(setup, "A1", "--proof", proof, "--audit-request", request, out=tmp / "out/audited")
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "disclosure.json").read_text())
    head = next(c for c in doc["capacity"] if c["category"] == "bf16/fp16")
    assert head["proven_pflops"] == pytest.approx(len(sample) * 0.65)
    audit = doc["audit"]
    assert sorted(d["device"] for d in audit["sample"]) == sample and audit["tier"] == "proven (sampled)"
    assert 0 < audit["genuine_share_lower_bound"] < 650 / 700 and audit["supported_pflops"] < head["reported_pflops"]
    assert _run("verify", out / "disclosure.json", "--from", tmp).exit_code == 0
    # a request the discloser signed itself (its own choice of nonce) is refused
    forged = tmp / "forged-request.json"
    forged.write_text(dumps(sampling.request(K.discloser, nonce=nonce, population_digest=drawn["population_digest"],
                                             precision="bfloat16", size=20, now=world.NOW - dt.timedelta(hours=1))))  # fmt: skip
    result, _ = _site(setup, "A1", "--proof", proof, "--audit-request", forged, out=tmp / "out/forged-audit")
    assert result.exit_code == 2 and "not the auditor's key" in result.output


def test_a_proof_signed_by_a_node_key_is_refused_with_exit_2(setup):
    tmp = setup[0]
    ch = chl.issue(K.node, dtype="bfloat16", n=64, products=1, window=dt.timedelta(minutes=5), nodes=None,
                   now=world.NOW)  # fmt: skip
    proof = tmp / "node.proof.json"
    proof.write_text(dumps(proofs.document(ch, [{"device": "GPU-x", "tflops_lower_bound": 1e6}], K.node)))
    result, _ = _site(setup, "A1", "--proof", proof, out=tmp / "out/bad-proof")
    assert result.exit_code == 2 and "not the auditor's key" in result.output


@pytest.mark.parametrize("what", ["not json", "wrong kind", "node-signed declaration", "unknown cluster", "bad claim"])
def test_hostile_inputs_end_with_exit_2_and_one_line(setup, what):
    tmp, files, keyfiles, policy = setup
    capacity, declaration, extra = files["A1"]["capacity"], files["A1"]["declaration"], []
    cluster = "a"
    if what == "not json":
        capacity = tmp / "junk.json"
        capacity.write_text("{not json")
    elif what == "wrong kind":
        capacity = tmp / "kind.json"
        capacity.write_text('{"kind": "bench.node-report"}')
    elif what == "node-signed declaration":
        declaration = tmp / "nodesigned.toml"
        shutil.copy(files["A1"]["declaration"], declaration)
        assert _run("disclose", "sign-declaration", declaration, "--key", keyfiles["node"]).exit_code == 0
    elif what == "unknown cluster":
        cluster = "zz"
    else:
        bad = tmp / "bad-claims.toml"
        bad.write_text("[[claim]]\ntext = \"__import__('os')\"\n")
        extra = ["--claims", bad]
    result = _run("disclose", "site", "--declaration", declaration, "--capacity", f"{cluster}={capacity}", *policy,
                  *extra, "-o", tmp / "out/hostile")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.output.count("\n") <= 2


def test_the_page_loads_in_headless_chromium_with_every_section(setup, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing on CI: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    result, out = _site(setup, "A2", out=setup[0] / "out/page")
    assert result.exit_code == 0
    page = out / "disclosure.html"
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path}",
                           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom",
                           page.as_uri()], check=False, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'data-sections="ok"' in proc.stdout
    for section in ("headline", "rollup", "inventory", "readiness", "claims", "declared"):
        assert f'id="{section}"' in proc.stdout
    console_errors = [
        line for line in proc.stderr.splitlines() if "CONSOLE" in line and ("Error" in line or "Uncaught" in line)
    ]
    assert console_errors == []


def test_the_schema_is_published_and_a_malformed_child_is_refused_with_exit_2(setup, tmp_path):
    tmp, _, _, policy = setup
    result = _run("disclose", "schema")
    assert result.exit_code == 0 and json.loads(result.output)["$schema"].endswith("2020-12/schema")
    junk = tmp_path / "child.json"
    junk.write_text('{"kind": "bench.disclosure", "schema_version": 1, "level": "site"}')
    result = _run("disclose", "rollup", "--level", "city", "--name", "Alpha", "--from", tmp, junk, *policy,
                  "-o", tmp_path / "out")  # fmt: skip
    assert result.exit_code == 2 and "schema" in result.output and "Traceback" not in result.output
