import copy
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.model import intake, keys, sign
from bench.report import verify as v
from tests.report.fleet import NOW, node_report, resign

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()


def kid(key):
    return keys.key_id(keys.raw_public(key.public_key()))


def codes(findings, severity=v.ERROR):
    return {f.code for f in findings if f.severity == severity}


def check(data, **kw):
    return v.verify_node_report(data, now=NOW, **kw)


def test_signed_report_verifies_clean():
    data = node_report(1, [700.0, 710.0], KEY)
    findings = check(data, trusted={kid(KEY)})
    assert findings == []
    assert codes(check(data), v.WARNING) == {"unknown-key"}  # no trust list: integrity only


@pytest.mark.parametrize(
    "path",
    [("run_id",), ("inventory", "host", "hostname"), ("measurements", 0, "samples_s", 3), ("measurements", 1, "status"),
     ("end_utc",), ("measurements", 0, "summary", "tflops_median")],
)  # fmt: skip
def test_any_change_breaks_the_signature(path):
    data = node_report(1, [700.0, 710.0], KEY)
    target = data
    for p in path[:-1]:
        target = target[p]
    old = target[path[-1]]
    target[path[-1]] = old * 1.0000001 if isinstance(old, float) else (old + "x" if isinstance(old, str) else old)
    if target[path[-1]] == old:
        target[path[-1]] = "changed"
    assert "signature" in codes(check(data))


def test_one_flipped_byte_in_the_file_fails(tmp_path):
    text = json.dumps(node_report(1, [700.0], KEY), indent=2)
    i = text.index('"hostname"') + len('"hostname": "n')
    flipped = text[:i] + chr(ord(text[i]) ^ 1) + text[i + 1 :]
    assert "signature" in codes(check(json.loads(flipped)))


def test_resigned_by_another_key_fails_against_the_trust_list():
    data = resign(node_report(1, [700.0], KEY), OTHER)
    assert "untrusted-key" in codes(check(data, trusted={kid(KEY)}))
    assert not codes(check(data, trusted={kid(OTHER)}))


def test_unsigned_report_fails():
    data = node_report(1, [700.0], KEY)
    del data["signature"]
    assert "signature" in codes(check(data))


def test_edited_figure_resigned_by_the_node_fails_on_rederivation():
    data = node_report(1, [700.0], KEY)
    data["measurements"][0]["summary"]["tflops_median"] *= 1.2
    findings = check(resign(data, KEY), trusted={kid(KEY)})
    assert codes(findings) == {"figure-mismatch"}
    assert "tflops_median" in next(f.message for f in findings if f.code == "figure-mismatch")


def test_edited_samples_resigned_by_the_node_fail_on_rederivation():
    data = node_report(1, [700.0], KEY)
    data["measurements"][0]["samples_s"] = [s * 0.8 for s in data["measurements"][0]["samples_s"]]
    assert {"samples-digest", "figure-mismatch"} <= codes(check(resign(data, KEY)))


def test_consistent_forgery_above_physical_peak_is_implausible():
    """A node that rewrites samples, digest and summary consistently is still bounded by physics."""
    data = node_report(1, [1500.0], KEY)  # H100 SXM dense bf16 peak is 989.4
    findings = check(data)
    assert codes(findings) == {"implausible"}
    assert "989.4" in next(f.message for f in findings if f.code == "implausible")


def test_peak_comes_from_bench_not_from_the_report():
    data = node_report(1, [1500.0], KEY)
    m = data["measurements"][0]
    m["peak"]["tflops"] = 5000.0
    from bench.figures import matmul_summary

    m["summary"] = matmul_summary(m["samples_s"], int(m["work_per_iteration"]), 5000.0)
    assert "implausible" in codes(check(resign(data, KEY)))


def test_stale_and_future_reports():
    data = node_report(1, [700.0], KEY, end="2026-11-20T10:00:00.000000Z")
    assert "stale" in codes(check(data, max_age=dt.timedelta(days=7)))
    assert "stale" not in codes(check(data, max_age=dt.timedelta(days=30)))
    future = node_report(1, [700.0], KEY, end="2026-11-29T10:00:00.000000Z")
    assert "future" in codes(check(future))


def test_measured_device_must_be_in_the_inventory():
    data = node_report(1, [700.0, 700.0], KEY)
    data["inventory"]["nvml"]["gpus"].pop()
    assert codes(check(resign(data, KEY))) == {"unknown-device"}


def test_validity_must_agree_with_status():
    data = node_report(1, [700.0], KEY)
    data["measurements"][0]["validity"]["passed"] = False
    assert codes(check(resign(data, KEY))) == {"validity"}


def test_flops_must_be_2mnk():
    data = node_report(1, [700.0], KEY)
    data["measurements"][0]["spec"]["k"] = 4096
    assert "flops-mismatch" in codes(check(resign(data, KEY)))


def test_schema_errors_are_findings_not_crashes():
    assert codes(check({"kind": "bench.node-report", "schema_version": 7})) == {"schema", "signature"}
    assert codes(check([])) == {"schema"}


def test_partial_report_is_a_warning():
    data = node_report(1, [700.0], KEY)
    data["interrupted"] = True
    assert "partial" in codes(check(resign(data, KEY)), v.WARNING)


def test_duration_parsing():
    assert v.parse_duration("7d") == dt.timedelta(days=7)
    assert v.parse_duration("90s") == dt.timedelta(seconds=90)
    assert v.parse_duration("1.5h") == dt.timedelta(minutes=90)
    with pytest.raises(ValueError, match="s, m, h, d or w"):
        v.parse_duration("soon")


def test_sign_check_rejects_a_key_id_that_is_not_the_keys():
    data = node_report(1, [700.0], KEY)
    data["signature"]["key_id"] = kid(OTHER)
    ok, why = sign.check(data)
    assert not ok and "key_id" in why


def test_real_report_from_this_machine_verifies(tmp_path):
    from click.testing import CliRunner

    from bench.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["matmul", "--device", "cpu", "--dtype", "float32", "--size", "64", "--budget", "0.01",
                               "--warmup-s", "0.01", "--results-dir", str(tmp_path), "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output
    (path,) = tmp_path.glob("*/report.json")
    data = intake.read_json(path).data
    assert data["signature"]["alg"] == "ed25519" and "samples_sha256" in data["measurements"][0]
    assert v.errors(v.verify_node_report(data)) == []
    tampered = copy.deepcopy(data)
    tampered["measurements"][0]["summary"]["median_s"] /= 2
    assert v.errors(v.verify_node_report(tampered))


def test_above_an_estimated_cpu_peak_is_a_warning_not_a_forgery():
    """A VM that reports only its current clock gets a peak that turbo exceeds: flagged, never rejected."""
    from bench import figures
    from bench.hardware import peaks
    from bench.workloads import matmul as mm
    from tests.report import synthetic as syn

    host = {**syn.HOST, "isa_flags": {"avx2": True, "fma": True}, "max_clock_mhz": None, "current_clock_mhz": 10.0}
    peak = peaks.cpu_peak(host, "float32")  # 2 cores x 10 MHz x 32: far below what any CPU measures
    m = syn.matmul("float32", syn.samples(0.002))
    m.peak = peak.to_dict()
    m.summary = figures.matmul_summary(m.samples_s, m.work_per_iteration, peak.tflops)
    m.warnings = [w.to_dict() for w in mm.plausibility(m.summary, peak)]
    assert [w["code"] for w in m.warnings] == ["above-estimated-peak"]
    r = syn.report([m], host=host)
    data = r.to_dict()
    data["signature"] = sign.sign(data, KEY)
    findings = v.verify_node_report(data, now=NOW)
    assert codes(findings) == set()
    assert "above-estimated-peak" in codes(findings, v.WARNING)
