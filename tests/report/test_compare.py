"""bench compare's logic: a change counts only above the threshold *and* significant on the raw samples."""

from __future__ import annotations

import pytest

from bench.report import compare as cmp
from tests.report import synthetic as syn


def _pair(a_samples, b_samples, **host):
    a = syn.report([syn.matmul("float32", a_samples)])
    b = syn.report([syn.matmul("float32", b_samples)], host={**syn.HOST, **host}, run_id="run-b")
    return a, b


def _only_change(a, b, **kw):
    result = cmp.compare(a, b, **kw)
    assert result["comparable"], result["reasons"]
    (change,) = result["changes"]
    return change


def test_a_large_significant_slowdown_is_flagged_worse():
    a, b = _pair(syn.samples(0.010, seed=1), syn.samples(0.012, seed=2))  # 20% more seconds: ~17% fewer TFLOPS
    c = _only_change(a, b, threshold=0.05, alpha=0.01)
    assert c["significant"] and c["flagged"] and c["direction"] == "worse"
    assert c["ratio"] == pytest.approx(1 / 1.2, rel=0.02)
    assert c["p_value"] < 1e-6


def test_a_large_significant_speedup_is_flagged_better():
    a, b = _pair(syn.samples(0.012, seed=1), syn.samples(0.010, seed=2))
    assert _only_change(a, b)["direction"] == "better"


def test_a_significant_change_below_the_threshold_is_not_flagged():
    a, b = _pair(syn.samples(0.0100, spread=0.001, seed=1), syn.samples(0.0102, spread=0.001, seed=2))  # 2%, very clean
    c = _only_change(a, b, threshold=0.05)
    assert c["significant"] and not c["flagged"] and c["direction"] == "same"


def test_a_large_difference_of_medians_that_noise_explains_is_not_flagged():
    # heavy overlap: the medians differ by > 5% but the sample sets are not distinguishable
    a_s = [0.010, 0.020, 0.011, 0.019, 0.012, 0.018, 0.013, 0.017]
    b_s = [0.0105, 0.0205, 0.0115, 0.0195, 0.0125, 0.0185, 0.0135, 0.0175, 0.022]
    a, b = _pair(a_s, b_s)
    c = _only_change(a, b, threshold=0.05, alpha=0.01)
    assert abs(c["ratio"] - 1) > 0.05
    assert not c["significant"] and not c["flagged"]


def test_too_few_samples_are_never_significant():
    a, b = _pair([0.010, 0.010], [0.020, 0.020])
    c = _only_change(a, b)
    assert c["p_value"] is None and not c["flagged"]


@pytest.mark.parametrize(("field", "value", "what"), [
    ("cpu_model", "Other CPU", "hardware differs: cpu_model"),
    ("physical_cores", 64, "hardware differs: physical_cores"),
    ("torch_version", "2.9.0+cpu", "software differs: torch"),
    ("torch_blas", "openblas", "software differs: blas"),
])  # fmt: skip
def test_different_hardware_or_software_is_not_comparable(field, value, what):
    a, b = _pair(syn.samples(0.010), syn.samples(0.020), **{field: value})
    result = cmp.compare(a, b)
    assert not result["comparable"] and result["changes"] == []
    assert any(r.startswith(what) for r in result["reasons"])


def test_metrics_present_on_one_side_only_are_listed():
    a = syn.report([syn.matmul("float32", syn.samples(0.01)), syn.matmul("float64", syn.samples(0.02))])
    b = syn.report([syn.matmul("float32", syn.samples(0.01))], run_id="run-b")
    result = cmp.compare(a, b)
    assert len(result["changes"]) == 1 and len(result["only_in_a"]) == 1 and "float64" in result["only_in_a"][0]


def test_a_figure_measured_at_another_config_is_not_called_worse():
    """A 256 MiB STREAM against a 32 MiB one measures another thing (caches): compare says the configs differ and
    gives no verdict; a baseline gate on it fails saying why, rather than passing or crying regression."""
    from bench.report import gates

    def stream(mib, median_s, seed, run_id):
        m = syn.simple("membw", {"kernel": "triad", "elements": mib << 17, "dtype": "float64"},
                       {"gbps_median": 1.0 / median_s})  # fmt: skip
        m.samples_s = syn.samples(median_s, seed=seed)
        return syn.report([m], run_id=run_id)

    big, small = stream(256, 0.010, 1, "run-a"), stream(32, 0.005, 2, "run-b")
    result = cmp.compare(big, small)
    assert result["comparable"] and result["changes"] == []
    (why,) = result["config_differs"]
    assert "membw_gbps" in why and "elements 33554432 vs 4194304" in why
    (g,) = gates.regressions(big, small, 0.05, 0.01)
    assert not g.passed and "measured another config" in g.message
    same = cmp.compare(big, stream(256, 0.012, 3, "run-c"))
    assert same["config_differs"] == [] and [c["direction"] for c in same["changes"]] == ["worse"]
