"""Twelfth round (issues 23, 25, 26): attacks on the morning's new code, driven through the real entry points.

(1) the node's register-blocked fold microkernel (bench/challenge/microfold_kernel.c, fold.py) against its exact
emulation on shapes the probe does not cover, and the auditor's independence from it; (2) the paired gate's
sequential sessions and its inputs (bench/report/paired.py, gates.py, bench/cli/gate.py); (3) the node-report and
disclosure fast paths against their strict paths. Attacks that held stay as tests; those that succeeded are fixed
alongside (each test names what it broke)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.report import gates, paired
from bench.report.store import dumps
from tests.report import synthetic as syn
from tests.report.test_drift_paired import BASE_S, NOISE, RUN_S, STEP_S, T0, _stamp

# --- (2) the paired gate ---------------------------------------------------------------------------------------------


def _run(slot: int, run_id: str, f32: float, f64: float | None, f64_status: str = "ok"):
    """A run at `slot` of a session (10 s apart) with float32 and (unless None) float64 matmul figures."""
    ms = [syn.matmul("float32", [BASE_S / f32] * 20)]
    if f64 is not None:
        ms.append(syn.matmul("float64", [2 * BASE_S / f64] * 20, status=f64_status))
    r = syn.report(ms, run_id=run_id)
    r.start_utc = _stamp(T0 + dt.timedelta(seconds=STEP_S * slot))
    r.end_utc = _stamp(T0 + dt.timedelta(seconds=STEP_S * slot + RUN_S))
    return r


def _session(pairs: int, cand_f64=1.0, cand_status: str = "ok", slowdown: float = 0.0):
    """(baseline runs, candidate runs) in the order A B B A ...; the candidate's float64 figure `cand_f64` (None:
    not measured) with status `cand_status`."""
    base, cand = [], []
    for slot in range(2 * pairs):
        speed = NOISE[slot]
        if paired.side_at(slot) == paired.BASELINE:
            base.append(_run(slot, f"b{slot:02d}", speed, speed))
        else:
            f64 = None if cand_f64 is None else cand_f64 * speed
            cand.append(_run(slot, f"c{slot:02d}", speed * (1 - slowdown), f64, cand_status))
    return base, cand


def test_unchanged_code_calm_session_passes():
    assert gates.paired_judgement(*_session(5), 0.05).outcome == paired.PASS


@pytest.mark.parametrize("how", ["fails its check", "not measured"])
def test_a_candidate_whose_workload_fails_or_vanishes_in_every_run_does_not_pass(how):
    """Attack: the candidate breaks one workload (its product check fails, or it no longer runs), in every run. The
    metric drops out of `common` (only valid metrics are paired) and the session passed on the others with a note:
    exit 0 for a candidate that broke a workload the baseline measured."""
    if how == "fails its check":
        base, cand = _session(5, cand_status="invalid")
    else:
        base, cand = _session(5, cand_f64=None)
    j = gates.paired_judgement(base, cand, 0.05)
    assert j.outcome != paired.PASS
    assert any("float64" in g.message for g in j.checks if not g.passed)


def _folders(tmp_path, base, cand):
    for side, runs in (("A", base), ("B", cand)):
        for r in runs:
            (tmp_path / side / r.run_id).mkdir(parents=True)
            (tmp_path / side / r.run_id / "report.json").write_text(dumps(r.to_dict()))
    return str(tmp_path / "A"), str(tmp_path / "B")


def test_bench_gate_exits_1_with_a_well_formed_junit_case_for_a_broken_candidate_workload(tmp_path):
    import xml.etree.ElementTree as ET

    a, b = _folders(tmp_path, *_session(5, cand_status="invalid"))
    junit = tmp_path / "gate.xml"
    got = CliRunner().invoke(main, ["gate", a, b, "--junit", str(junit), "--json"])
    assert got.exit_code == 1, got.output
    out = json.loads(got.stdout)
    assert out["outcome"] == gates.FAILED and "float64" in out["reason"]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert int(suite.get("failures")) >= 1 and suite.find("properties/property").get("value") == gates.FAILED


@pytest.mark.parametrize("bad", ["\x01", "\x1b[31m", "\ud800", "\uffff"])
def test_junit_stays_well_formed_xml_whatever_a_report_names(tmp_path, bad):
    """Attack: a control character in a report's precision made the gate's JUnit file ill-formed (ElementTree writes
    it as it is), and a lone surrogate in a device id a UnicodeEncodeError traceback; bench run's JUnit alike."""
    import xml.etree.ElementTree as ET

    base, cand = _session(5)
    for r in base + cand:
        for m in r.measurements:
            m.spec["precision"] += bad
            m.device["id"] += bad
    a, b = _folders(tmp_path, base, cand)
    junit = tmp_path / "gate.xml"
    got = CliRunner().invoke(main, ["gate", a, b, "--junit", str(junit), "--json"])
    assert got.exit_code == 0, got.output
    assert json.loads(got.stdout)["outcome"] == paired.PASS
    root = ET.parse(junit).getroot()
    names = [c.get("name") for c in root.iter("testcase")]
    assert len(names) == 2 and all(f"\\u{ord(bad[0]):04x}" in n for n in names)
    ET.fromstring(gates.junit(cand[0], gates.correctness(cand[0])).encode())
