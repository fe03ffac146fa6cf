"""The auditor's verbs end to end: keys, two real signed runs on this machine, verify, aggregate, claims."""

import json
import os

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.model import intake, keys

FAST = ["--budget", "0.01", "--warmup-s", "0.01", "--min-iterations", "3", "--quiet"]


@pytest.fixture
def cli():
    return CliRunner()


def test_keys_init_and_show(cli, tmp_path):
    path = tmp_path / "k.pem"
    init = cli.invoke(main, ["keys", "init", "--key", str(path)])
    assert init.exit_code == 0 and "key id:" in init.output
    assert "PRIVATE" not in init.output  # the private key is never printed
    shown = cli.invoke(main, ["keys", "show", "--key", str(path)])
    kid = keys.key_id(keys.raw_public(keys.load(path).public_key()))
    assert shown.exit_code == 0 and kid in shown.output
    as_json = json.loads(cli.invoke(main, ["keys", "show", "--key", str(path), "--json"]).output)
    assert as_json["key_id"] == kid and "PRIVATE" not in str(as_json)
    again = cli.invoke(main, ["keys", "init", "--key", str(path)])
    assert again.exit_code == 1 and "exists" in again.stderr


def test_a_run_refuses_a_world_readable_key(cli, tmp_path):
    path = tmp_path / "k.pem"
    keys.create(path)
    os.chmod(path, 0o644)
    res = cli.invoke(main, ["matmul", "--device", "cpu", "--size", "32", "--key", str(path),
                            "--results-dir", str(tmp_path / "r"), *FAST])  # fmt: skip
    assert res.exit_code == 1 and "chmod 600" in res.stderr
    assert not (tmp_path / "r").exists()


def test_first_run_creates_a_key_and_says_so(cli, tmp_path):
    path = tmp_path / "fresh.pem"
    res = cli.invoke(main, ["matmul", "--device", "cpu", "--dtype", "float32", "--size", "32", "--key", str(path),
                            "--results-dir", str(tmp_path / "r"), *FAST])  # fmt: skip
    assert res.exit_code == 0 and "created signing key" in res.stderr and path.exists()


def two_runs(cli, tmp_path):
    for _ in range(2):
        res = cli.invoke(main, ["matmul", "--device", "cpu", "--dtype", "float32", "--dtype", "float64", "--size", "64",
                                "--results-dir", str(tmp_path / "results"), *FAST])  # fmt: skip
        assert res.exit_code == 0, res.output
    return sorted((tmp_path / "results").glob("*/report.json"))


def test_two_runs_verify_clean_and_aggregate_counts_the_machine_once(cli, tmp_path):
    reports = two_runs(cli, tmp_path)
    trust = tmp_path / "trusted.txt"
    trust.write_text(cli.invoke(main, ["keys", "show"]).output.split("key id:")[1].strip() + "\n")
    res = cli.invoke(main, ["verify", *map(str, reports), "--trusted-keys", str(trust), "--max-age", "1h"])
    assert res.exit_code == 0, res.output
    assert res.output.count("all checks passed") == 2 and "FAIL" not in res.output

    cap_path = tmp_path / "capacity.json"
    res = cli.invoke(main, ["aggregate", str(tmp_path / "results"), "-o", str(cap_path), "--trusted-keys", str(trust)])
    assert res.exit_code == 0, res.output
    assert "counted once" in res.output  # the duplicates table says so
    cap = json.loads(cap_path.read_text())
    assert {t["precision"]: t["devices"] for t in cap["totals"]} == {"float32": 1, "float64": 1}
    assert len(cap["duplicates"]) == 2 and all(i["status"] == "counted" for i in cap["inputs"])

    # measured figures are only 'reported' (this VM's CPU peak is an estimate): without a challenge, no claim holds
    res = cli.invoke(main, ["verify", str(cap_path), "--reports", str(tmp_path / "results"), "--trusted-keys",
                            str(trust), "--max-age", "1h", "--claim", "0.00000001 TFLOPS fp32"])  # fmt: skip
    assert res.exit_code == 1 and "claim unproven" in res.stderr and "reported" in res.stderr, res.output
    assert "fleet totals by tier" in res.output
    res = cli.invoke(main, ["verify", str(cap_path), "--json", "--claim", "1 EFLOPS fp32"])
    payload = json.loads(res.stdout)
    assert payload["claims"][0]["supported"] is False and "no --reports" in payload["claims"][0]["verdict"]


def test_verify_fails_on_a_tampered_report_with_exit_1(cli, tmp_path):
    (report, *_) = two_runs(cli, tmp_path)
    data = intake.read_json(report).data
    data["measurements"][0]["summary"]["tflops_median"] *= 3
    report.write_text(json.dumps(data))
    res = cli.invoke(main, ["verify", str(report), "--json"])
    assert res.exit_code == 1
    found = json.loads(res.stdout)["reports"][str(report)]
    assert {f["code"] for f in found if f["severity"] == "error"} == {"signature", "figure-mismatch"}


@pytest.mark.parametrize(
    "args, message",
    [(["--max-age", "soon"], "s, m, h, d or w"), (["--claim", "lots"], "PFLOPS")],
)
def test_verify_usage_errors(cli, tmp_path, args, message):
    f = tmp_path / "x.json"
    f.write_text("{}")
    res = cli.invoke(main, ["verify", str(f), *args])
    assert res.exit_code == 2 and message in res.output


def test_verify_corrupt_file_is_a_finding(cli, tmp_path):
    f = tmp_path / "x.json"
    f.write_text('{"kind": ')
    res = cli.invoke(main, ["verify", str(f)])
    assert res.exit_code == 1 and "unreadable" in res.output


def test_aggregate_with_bad_rules_is_a_usage_error(cli, tmp_path):
    reports = two_runs(cli, tmp_path)
    rules = tmp_path / "rules.toml"
    rules.write_text("tolerence = 0.2\n")
    res = cli.invoke(main, ["aggregate", str(reports[0]), "--rules", str(rules), "-o", str(tmp_path / "c.json")])
    assert res.exit_code == 2 and "tolerence" in res.output


def test_a_claim_is_supported_by_the_proven_tier_of_a_verified_challenge(cli, tmp_path):
    """The whole audit on this CPU: two signed runs, a capacity report, a challenge answered by this node, collected
    and verified with the auditor's own key: the claim is supported, and the answer says by which tier."""
    reports = two_runs(cli, tmp_path)
    node_id = json.loads(cli.invoke(main, ["keys", "show", "--json"]).output)["key_id"]
    trust = tmp_path / "nodes.keys"
    trust.write_text(node_id + "\n")
    auditor = tmp_path / "auditor.pem"
    assert cli.invoke(main, ["keys", "init", "--key", str(auditor)]).exit_code == 0
    cap = tmp_path / "capacity.json"
    res = cli.invoke(main, ["aggregate", str(tmp_path / "results"), "-o", str(cap), "--trusted-keys", str(trust),
                            "--max-age", "1h", "--key", str(auditor)])  # fmt: skip
    assert res.exit_code == 0, res.output
    ch, drop, receipts, proof = (
        tmp_path / "ch.json",
        tmp_path / "drop",
        tmp_path / "receipts.json",
        tmp_path / "proof.json",
    )
    drop.mkdir()
    res = cli.invoke(main, ["challenge", "issue", "-o", str(ch), "--n", "256", "--products", "1", "--window", "5m",
                            "--auditor-key", str(auditor), "--trusted-keys", str(trust)])  # fmt: skip
    assert res.exit_code == 0, res.output
    res = cli.invoke(main, ["challenge", "answer", str(ch), "--drop", str(drop), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    res = cli.invoke(main, ["challenge", "collect", str(drop), "--challenge", str(ch), "-o", str(receipts), "--expect", "1",
                            "--auditor-key", str(auditor), "--trusted-keys", str(trust)])  # fmt: skip
    assert res.exit_code == 0 and "1 commitments recorded" in res.output, res.output
    assert list((tmp_path / "receipts.json.commitments").iterdir())  # the bytes the collector hashed, kept
    res = cli.invoke(main, ["challenge", "verify", str(ch), str(drop), "--receipts", str(receipts), "--auditor-key",
                            str(auditor), "--trusted-keys", str(trust), "--proof", str(proof)])  # fmt: skip
    assert res.exit_code == 0, res.output
    common = ["--reports", str(tmp_path / "results"), "--trusted-keys", str(trust), "--max-age", "1h", "--proof",
              str(proof), "--auditor-key", f"{auditor}.pub"]  # fmt: skip
    # float32's default K is 64 (docs/proofs.md): one 256 x 64 x 256 product over a window of seconds proves about a
    # MFLOPS, so the claim that the proven tier must support is 10 kFLOPS.
    res = cli.invoke(main, ["verify", str(cap), *common, "--claim", "0.00000001 TFLOPS fp32", "--json"])
    assert res.exit_code == 0, res.output
    (claim,) = json.loads(res.stdout)["claims"]
    assert claim["supported"] and claim["tier"] == "proven" and claim["proven_tflops"] > 1e-8
    res = cli.invoke(main, ["verify", str(cap), *common, "--claim", "1 PFLOPS fp32"])
    assert res.exit_code == 1 and "claim unproven" in res.stderr and "proven" in res.stderr
    # the same claim over the node reports themselves
    res = cli.invoke(main, ["verify", *map(str, reports), *common[2:], "--claim", "0.00000001 TFLOPS fp32"])
    assert res.exit_code == 0 and "supported (proven)" in res.output, res.output
    # a proof signed by a node key proves nothing
    forged = tmp_path / "forged-proof.json"
    node_key = keys.load(keys.default_key_path())
    data = json.loads(proof.read_text())
    data = {k: val for k, val in data.items() if k != "signature"}
    from bench.model import sign

    data["signature"] = sign.sign(data, node_key)
    forged.write_text(json.dumps(data))
    res = cli.invoke(main, ["verify", str(cap), *common[:-4], "--proof", str(forged), "--auditor-key", f"{auditor}.pub",
                            "--claim", "0.00000001 TFLOPS fp32"])  # fmt: skip
    assert res.exit_code == 1 and "not the auditor's key" in res.output


def test_report_refuses_a_capacity_report_of_another_schema_and_a_fifo(cli, tmp_path):
    old = tmp_path / "capacity.json"
    old.write_text(json.dumps({"kind": "bench.capacity-report", "schema_version": 1}))
    res = cli.invoke(main, ["report", str(old), "--format", "html", "-o", str(tmp_path / "c.html")])
    assert res.exit_code == 1 and "re-aggregate" in res.stderr
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    res = cli.invoke(main, ["report", str(fifo)])
    assert res.exit_code == 1 and "not a regular file" in res.stderr


def test_aggregate_jobs_is_a_positive_number_of_processes(cli, tmp_path):
    for jobs in ("0", "5000"):  # a fork pool starts every worker it is given: bounded
        res = cli.invoke(main, ["aggregate", str(tmp_path), "--jobs", jobs])
        assert res.exit_code == 2 and "--jobs" in res.output
    assert "--jobs" in cli.invoke(main, ["aggregate", "--help"]).output
