"""CI gates and JUnit: floors, correctness, completeness, regression against a baseline, and valid JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from bench.report import gates
from tests.report import synthetic as syn

FLOPS_512 = 2 * 512**3


def _seconds_for(tflops: float) -> float:
    return FLOPS_512 / (tflops * 1e12)


def test_floors_pass_and_fail_per_device_and_precision():
    r = syn.report(
        [syn.matmul("float32", syn.samples(_seconds_for(0.2))), syn.matmul("float64", syn.samples(_seconds_for(0.05)))]
    )
    ok = gates.floors(r, {"float32": 0.1, "float64": 0.01})
    assert [g.passed for g in ok] == [True, True]
    bad = gates.floors(r, {"float32": 0.5})
    assert not bad[0].passed and "TFLOPS < floor 0.5" in bad[0].message


def test_a_floor_for_an_unmeasured_precision_fails():
    r = syn.report([syn.matmul("float32", syn.samples(0.01))])
    (g,) = gates.floors(r, {"bfloat16": 0.1})
    assert not g.passed and "no valid bfloat16 matmul was measured" in g.message


def test_invalid_and_emulated_figures_never_satisfy_a_floor():
    r = syn.report([syn.matmul("float32", syn.samples(_seconds_for(9.0)), status="invalid"),
                    syn.matmul("bfloat16", syn.samples(_seconds_for(9.0)), emulated=True)])  # fmt: skip
    assert not any(g.passed for g in gates.floors(r, {"float32": 0.1, "bfloat16": 0.1}))


def test_the_mamf_is_what_a_floor_checks_when_a_search_ran():
    r = syn.report([syn.matmul("float32", syn.samples(_seconds_for(0.3)), role="candidate"),
                    syn.matmul("float32", syn.samples(_seconds_for(0.1)), role="final", mamf=True)])  # fmt: skip
    (g,) = gates.floors(r, {"float32": 0.2})
    assert not g.passed  # a fast candidate is not the MAMF


def test_wrong_results_and_partial_runs_fail_correctness():
    r = syn.report([syn.matmul("float32", syn.samples(0.01), status="invalid")], end=None)
    names = [g.name for g in gates.correctness(r)]
    assert names == ["correctness", "complete"]
    assert gates.correctness(syn.report([syn.matmul("float32", syn.samples(0.01))])) == []


def test_regression_gate_against_one_run_uses_the_threshold_alone():
    base = syn.report([syn.matmul("float32", syn.samples(0.010, seed=1))])
    slower = syn.report([syn.matmul("float32", syn.samples(0.012, seed=2))], run_id="run-b")
    same = syn.report([syn.matmul("float32", syn.samples(0.010, seed=3))], run_id="run-c")
    (g,) = gates.regressions(base, slower, 0.05, 0.01)
    assert not g.passed and "matmul_tflops" in g.message and "(-16.7%)" in g.message and "p=" not in g.message
    (g,) = gates.regressions(base, same, 0.05, 0.01)
    assert g.passed
    (g,) = gates.regressions(base, slower, 0.25, 0.01)  # a 17% slow-down is inside a 25% tolerance
    assert g.passed


def test_a_baseline_from_other_hardware_fails_the_gate():
    base = syn.report([syn.matmul("float32", syn.samples(0.010))], host={**syn.HOST, "cpu_model": "Other"})
    (g,) = gates.regressions(base, syn.report([syn.matmul("float32", syn.samples(0.010))]), 0.05, 0.01)
    assert not g.passed and "not comparable" in g.message
    with pytest.raises(ValueError, match="no baseline"):
        gates.regressions([], base, 0.05)


@pytest.mark.parametrize(("text", "value"), [("5%", 0.05), ("0.05", 0.05), ("12.5%", 0.125), ("0", 0.0)])
def test_fractions(text, value):
    assert gates.parse_fraction(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["five", "150%", "-1%"])
def test_bad_fractions(text):
    with pytest.raises(ValueError):
        gates.parse_fraction(text)


@pytest.mark.parametrize("text", ["float32", "float32=", "=1", "float32=-1", "float32=x"])
def test_bad_floors(text):
    with pytest.raises(ValueError, match="PRECISION=TFLOPS"):
        gates.parse_floor(text)


def test_junit_has_a_case_per_workload_and_precision_with_figures_and_failures():
    r = syn.report([syn.matmul("float32", syn.samples(_seconds_for(0.2))),
                    syn.matmul("float64", syn.samples(_seconds_for(0.05)), status="invalid"),
                    syn.matmul("bfloat16", syn.samples(_seconds_for(0.001)), emulated=True)])  # fmt: skip
    checks = gates.correctness(r) + gates.floors(r, {"float32": 0.5})
    root = ET.fromstring(gates.junit(r, checks, "smoke"))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert {"matmul cpu float32", "matmul cpu float64", "matmul cpu bfloat16", "correctness"} <= set(cases)
    assert int(suite.get("tests")) == len(cases)
    assert int(suite.get("failures")) == sum(c.find("failure") is not None for c in cases.values())
    f32 = cases["matmul cpu float32"]
    assert "floor 0.5" in f32.find("failure").get("message")  # the floor gate lands on its own case
    prop = f32.find("properties/property")
    assert prop.get("name").startswith("matmul_tflops") and prop.get("value").endswith("TFLOPS")
    assert cases["matmul cpu float64"].find("failure") is not None
    assert cases["matmul cpu bfloat16"].find("skipped") is not None
    for c in cases.values():
        assert c.get("classname").startswith("bench.") and c.get("time") is not None


def test_a_regression_fails_the_workloads_own_junit_case():
    """A baseline regression lands on the case of the figure that regressed (a CI server shows which workload got
    slower), not on one 'baseline' case of its own."""
    base = syn.report([syn.matmul("float32", syn.samples(0.010, seed=1)), syn.matmul("float64", syn.samples(0.02))])
    slower = syn.report([syn.matmul("float32", syn.samples(0.012, seed=2)), syn.matmul("float64", syn.samples(0.02))],
                        run_id="run-b")  # fmt: skip
    checks = gates.regressions(base, slower, 0.05, 0.01)
    assert [g.case for g in checks] == ["matmul cpu float32"]
    cases = {c.get("name"): c for c in ET.fromstring(gates.junit(slower, checks)).iter("testcase")}
    assert "baseline" not in cases and cases["matmul cpu float64"].find("failure") is None
    assert "-16.7%" in cases["matmul cpu float32"].find("failure").get("message")


def test_junit_cases_carry_the_time_their_measurements_took():
    """JUnit's time: each case's measurements from start to end (CI servers sort and chart by it; all read 0)."""
    a = syn.matmul("float32", syn.samples(0.01))
    a.start_utc, a.end_utc = "2026-12-01T10:00:00.000000Z", "2026-12-01T10:00:02.500000Z"
    b = syn.matmul("float64", syn.samples(0.01, n=40))
    b.start_utc = b.end_utc = None  # no timestamps: the samples' own seconds
    root = ET.fromstring(gates.junit(syn.report([a, b]), []))
    times = {c.get("name"): float(c.get("time")) for c in root.iter("testcase")}
    assert times["matmul cpu float32"] == 2.5
    assert times["matmul cpu float64"] == pytest.approx(sum(b.samples_s) + sum(b.warmup_s), abs=1e-3)
    assert float(root.find("testsuite").get("time")) == pytest.approx(sum(times.values()), abs=1e-3)
