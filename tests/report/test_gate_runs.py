"""The regression gate judged on between-run variation (issue 25, "gates that don't cry wolf"): each run gives one
figure per metric; the median of the candidate's runs is judged against the median of the baseline runs, only for
metrics whose robust between-run spread leaves their noise floor within the threshold (bench.report.drift); fewer
than three baseline runs are judged by the threshold alone, and say so."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from bench.cli.run import baseline_files
from bench.model.reports import NodeReport
from bench.report import compare as cmp
from bench.report import drift, gates
from tests.report import synthetic as syn

#: seconds per 512^3 float32 product at 1 figure unit; a run's figure is proportional to 1 / its median seconds
BASE_S = 0.010
#: ten unchanged runs' medians as a machine spreads them between runs (about +-1.5%: robust CV 1.5%), each run's
#: samples +-1% around its own median: the picture issue 25 measured, where a rank test over pooled samples calls
#: anything significant
RUN_FACTORS = (1.000, 1.018, 0.986, 1.012, 0.992, 1.005, 0.981, 1.015, 0.996, 1.009)


def _symmetric(median_s: float, within: float, n: int = 201, seed: int = 0) -> list[float]:
    """n samples spread +-within around median_s whose median is exactly median_s (mirrored noise)."""
    half = syn.samples(1.0, n=n // 2, spread=within, seed=seed)
    return [median_s] + [median_s * d for d in half] + [median_s * (2 - d) for d in half]


def _run(factor: float, run_id: str, within: float = 0.01, seed: int = 0, **kw) -> NodeReport:
    """A run whose float32 and float64 medians are `factor` times the baseline seconds (figure 1/factor)."""
    return syn.report([syn.matmul("float32", _symmetric(BASE_S * factor, within, seed=seed)),
                       syn.matmul("float64", _symmetric(2 * BASE_S * factor, within, seed=seed + 1))],
                      run_id=run_id, **kw)  # fmt: skip


def _baselines(factors=RUN_FACTORS, within: float = 0.01) -> list[NodeReport]:
    return [_run(f, f"base-{i}", within, seed=10 * i) for i, f in enumerate(factors)]


def _f32(report: NodeReport) -> tuple[float, ...]:
    return tuple(report.measurements[0].samples_s)


def _candidate(factors, run_id: str = "cand", within: float = 0.01, seed: int = 100) -> list[NodeReport]:
    """A candidate of len(factors) runs (what `bench run --repeat M --baseline ...` judges)."""
    return [_run(f, f"{run_id}-{i}", within, seed=seed + 10 * i) for i, f in enumerate(factors)]


def test_an_unchanged_candidate_inside_the_runs_spread_passes_where_a_rank_test_cries_wolf():
    base = _baselines()
    candidate = _candidate((1.02, 0.99, 1.01))  # 2% slower than the first run: inside what the runs themselves spread
    (g,) = gates.regressions(base, candidate, 0.05)
    assert g.passed and "10 baseline runs" in g.message and "no regression in 2 gated metrics" in g.message
    assert "the median of 3 runs" in g.message and "p=" not in g.message and "not gated" not in g.message
    # what the old gate did: pooled samples of one run against another's, p far below any alpha
    assert cmp.significance(_f32(base[0]), _f32(candidate[0])) < 1e-6


def test_ten_percent_slower_fails_on_the_regressed_workloads_junit_case():
    base = _baselines()
    slower = [syn.report([syn.matmul("float32", _symmetric(BASE_S * f / 0.9, 0.01, seed=5 + i)),
                          syn.matmul("float64", _symmetric(2 * BASE_S * f, 0.01, seed=6 + i))], run_id=f"slow-{i}")
              for i, f in enumerate((1.0, 1.01, 0.99))]  # fmt: skip
    checks = gates.regressions(base, slower, 0.05)
    assert [(g.passed, g.case) for g in checks] == [(False, "matmul cpu float32")]
    (g,) = checks
    # the figures are each run's fastest iteration (drift.gated_figure): the mirrored noise scales with the median
    assert "(-9.8%) as the median of 3 runs" in g.message and "median of 10 runs" in g.message
    assert "robust CV 1.5%" in g.message and "noise floor 3.6%" in g.message
    cases = {c.get("name"): c for c in ET.fromstring(gates.junit(slower[0], checks)).iter("testcase")}
    assert cases["matmul cpu float32"].find("failure") is not None
    assert cases["matmul cpu float64"].find("failure") is None and "baseline" not in cases


def test_one_hiccup_run_in_a_candidate_is_outvoted_by_its_median():
    """pyperf's worker processes: one candidate run at -49% (issue 25's quiet rerun) raises no gate when the others
    are unchanged; two of three slow runs do."""
    base = _baselines()
    (g,) = gates.regressions(base, _candidate((1.0, 1 / 0.51, 1.01)), 0.05)
    assert g.passed, g.message
    checks = gates.regressions(base, _candidate((1.0, 1 / 0.51, 1 / 0.51)), 0.05)
    assert len(checks) == 2 and not any(g.passed for g in checks)


def test_one_hiccup_run_in_the_baseline_neither_widens_the_threshold_nor_hides_a_slowdown():
    """The robust spread ignores one baseline run at -49%: both metrics stay gated at 5%, unchanged code passes and a
    10% slow-down fails (a stdev or a worst-run rule would read a 15-50% spread and gate nothing)."""
    base = _baselines((*RUN_FACTORS[:9], 1 / 0.51))
    figs = [1 / min(r.measurements[0].samples_s) for r in base]  # what the gate reads
    assert drift.robust_cv(figs) < 0.02 and drift.spread(figs).cv > 0.15 and drift.quiet_threshold(figs) > 0.45
    (g,) = gates.regressions(base, _candidate((1.01, 0.99, 1.0)), 0.05)
    assert g.passed and "2 gated metrics" in g.message, g.message
    slow = gates.regressions(base, _candidate((1 / 0.9, 1.01 / 0.9, 0.99 / 0.9)), 0.05)
    assert len(slow) == 2 and all(not g.passed and g.case for g in slow)


def test_ten_percent_slower_is_caught_from_every_unchanged_candidate_position():
    """Whichever three of ten unchanged runs spread +-1% are the candidate (judged against the other seven), it
    passes; the same runs 10% slower fail."""
    tight = tuple(1 + (f - 1) / 2 for f in RUN_FACTORS)
    for i in range(len(tight) - 2):
        mine = tight[i : i + 3]
        base = _baselines(tight[:i] + tight[i + 3 :])
        assert all(g.passed for g in gates.regressions(base, _candidate(mine, seed=3), 0.05))
        slow = gates.regressions(base, _candidate([f / 0.9 for f in mine], seed=3), 0.05)
        assert len(slow) == 2 and not any(g.passed for g in slow)


def test_a_metric_too_noisy_for_the_threshold_is_named_and_not_gated():
    """float64's runs spread +-8% (robust CV about 9%): its noise floor is above 5%, so it is named and not gated, and
    even a 10% drop of it raises nothing; float32 (robust CV 1.5%) is gated and caught."""

    def run(f32: float, f64: float, run_id: str) -> NodeReport:
        return syn.report([syn.matmul("float32", _symmetric(BASE_S * f32, 0.01, seed=1)),
                           syn.matmul("float64", _symmetric(2 * BASE_S * f64, 0.01, seed=2))], run_id=run_id)  # fmt: skip

    wide = (1.0, 1.08, 0.93, 1.06, 0.95, 1.09, 0.92, 1.0, 1.07, 0.94)
    base = [run(a, b, f"base-{i}") for i, (a, b) in enumerate(zip(RUN_FACTORS, wide, strict=True))]
    (g,) = gates.regressions(base, [run(1.0, 1 / 0.9, f"c{i}") for i in range(3)], 0.05)
    assert g.passed and "1 gated metrics" in g.message and "1 not gated" in g.message
    assert "precision=float64" in g.message.split("not gated")[1] and "floor 2" in g.message
    (g,) = gates.regressions(base, [run(1 / 0.9, 1.0, f"c{i}") for i in range(3)], 0.05)
    assert not g.passed and g.case == "matmul cpu float32"


def test_a_gate_with_nothing_steady_enough_fails_rather_than_pass_blind():
    base = _baselines((1.0, 1.08, 0.93, 1.06, 0.95, 1.09, 0.92, 1.0, 1.07, 0.94))
    (g,) = gates.regressions(base, _candidate((1.0,)), 0.05)
    assert not g.passed and "none of 2 metrics is steady enough to gate 5.0%" in g.message
    assert "bench run --repeat N" in g.message
    (g,) = gates.regressions(base, _candidate((1.0,)), 0.40)  # a threshold above the floors gates them
    assert g.passed and "2 gated metrics" in g.message


def test_runs_made_on_a_loaded_machine_are_counted_in_the_gates_message():
    base = _baselines()
    busy = [{"name": "cpu-load", "status": "warn", "detail": "load average 3.7"}]
    for b in base[:4]:
        b.config = {**b.config, "preflight": busy}
    candidate = _candidate((1.0, 1.01, 0.99))
    candidate[0].config = {**candidate[0].config, "preflight": busy}
    (g,) = gates.regressions(base, candidate, 0.05)
    assert "pre-flight warned of a loaded machine before 4 of 10 baseline runs and 1 of 3 candidate runs" in g.message
    (g,) = gates.regressions(_baselines(), _candidate((1.0, 1.01, 0.99)), 0.05)
    assert "loaded machine" not in g.message


def test_too_few_baseline_runs_use_the_threshold_alone_and_say_so():
    (base,) = _baselines((1.0,))
    (g,) = gates.regressions(base, _run(1.03, "cand", seed=4), 0.05)
    assert g.passed and "too few to measure the between-run spread" in g.message and "5.0% alone" in g.message
    checks = gates.regressions([base], _run(1 / 0.9, "slow", seed=4), 0.05)
    assert len(checks) == 2 and not any(g.passed for g in checks)
    assert "between-run spread unknown: threshold alone" in checks[0].message and "p=" not in checks[0].message
    two = _baselines((1.0, 1.3))  # two runs 30% apart: still the threshold alone, against their median
    (g,) = gates.regressions(two, _run(1.0, "cand"), 0.05)
    assert g.passed and "2 baseline run(s)" in g.message


def test_noise_within_runs_steady_between_them_does_not_fire_nor_hide_a_slowdown():
    """Samples +-40% around each run's median (a noisy metric), medians within 0.5% between runs: unchanged passes,
    10% slower still fails (it is the runs' figures that are compared, not the samples)."""
    base = _baselines((1.000, 1.004, 0.997, 1.002), within=0.40)
    (g,) = gates.regressions(base, _run(1.003, "cand", within=0.40, seed=42), 0.05)
    assert g.passed
    slow = gates.regressions(base, _run(1 / 0.9, "slow", within=0.40, seed=42), 0.05)
    assert len(slow) == 2 and not any(g.passed for g in slow)


def test_any_baseline_run_from_other_hardware_or_another_config_fails_the_gate():
    base = _baselines((1.0, 1.01))
    base.append(_run(1.0, "other-host", host={**syn.HOST, "cpu_model": "Other"}))
    (g,) = gates.regressions(base, _run(1.0, "cand"), 0.05)
    assert not g.passed and "baseline run other-host is not comparable: hardware differs: cpu_model" in g.message
    (g,) = gates.regressions(base, _candidate((1.0, 1.0)), 0.05)
    assert not g.passed and "baseline run other-host is not comparable with run cand-0" in g.message
    odd = _baselines((1.0, 1.01))
    odd[1].measurements[1].spec = {**odd[1].measurements[1].spec, "batch": 4}  # float64 measured batched
    (g,) = gates.regressions(odd, _run(1.0, "cand"), 0.05)
    assert (
        not g.passed and "baseline run base-1 measured another config" in g.message and "batch 4 vs None" in g.message
    )


def test_one_run_named_twice_counts_once():
    """A folder and a file in it name one run twice: a copy must not shrink the spread to nothing."""
    base = _baselines((1.0, 1.01))
    (g,) = gates.regressions([*base, base[0]], _run(1.03, "cand", seed=4), 0.05)
    assert g.passed and "2 baseline run(s) (base-0, base-1)" in g.message


def test_baseline_runs_with_no_metric_in_common_fail_rather_than_pass_blind():
    base = [syn.report([syn.matmul("bfloat16", _symmetric(BASE_S, 0.01))], run_id="bf16-only")]
    (g,) = gates.regressions(base, _run(1.0, "cand"), 0.05)
    assert not g.passed and "no metric in common with baseline run(s) bf16-only" in g.message
    with pytest.raises(ValueError, match="no candidate"):
        gates.regressions(base, [], 0.05)


def test_judge_gates_the_candidates_median_where_the_noise_floor_allows():
    runs = [1.0, 0.99, 1.01, 1.0, 0.98, 1.02, 1.0]  # median 1.0, MAD 0.01: robust CV 1.4826%
    v = drift.judge(runs, [0.9, 0.5, 0.91], 0.05)
    assert v.candidate == 0.9 and v.centre == 1.0 and v.cv == pytest.approx(0.014826, rel=1e-4)
    assert v.floor == pytest.approx(3 * 0.014826 * math.sqrt(math.pi / 2) * math.sqrt(1 / 7 + 1 / 3), rel=1e-4)
    assert v.gated and v.below_threshold and v.regressed and v.ratio == pytest.approx(0.9)
    assert not drift.judge(runs, [0.95, 0.96, 1.0], 0.05).regressed  # median 0.96: 4% below, within 5%
    assert not drift.judge(runs, 0.951, 0.05).regressed
    noisy = drift.judge([1.0, 0.8, 1.2, 0.9, 1.1], 0.5, 0.05)  # robust CV 14.8%: floor far above 5%
    assert noisy.below_threshold and not noisy.gated and not noisy.regressed
    single = drift.judge([1.0], 0.94, 0.05)
    assert single.regressed and not single.spread_known and single.gated
    assert not drift.judge([1.0], 0.96, 0.05).regressed
    with pytest.raises(ValueError):
        drift.judge([], 1.0, 0.05)
    with pytest.raises(ValueError):
        drift.judge([1.0], [], 0.05)


def test_robust_spread_noise_floor_and_recommended_threshold():
    assert drift.robust_cv([1.0, 1.0, 1.0, 0.51]) == 0.0  # one hiccup among steady runs reads no spread
    assert drift.robust_cv([1.0, 1.1, 0.9]) == pytest.approx(1.4826 * 0.1, rel=1e-4)
    with pytest.raises(ValueError):
        drift.robust_cv([1.0])
    assert drift.noise_floor(0.01, 10, 3) == pytest.approx(3 * 0.01 * 1.2533141 * math.sqrt(0.1 + 1 / 3))
    assert drift.noise_floor(0.01, 10, 3) < drift.noise_floor(0.01, 10, 1)  # more candidate runs, finer gate
    with pytest.raises(ValueError):
        drift.noise_floor(0.01, 0, 3)
    steady = drift.spread([1.0, 0.99, 1.01, 1.0, 0.98, 1.02, 1.0, 0.99, 1.01, 1.0])  # robust CV 1.48%: floor 3.7%
    noisy = drift.spread([1.0, 0.9, 1.1, 1.0, 0.8, 1.2, 1.0, 0.9, 1.1, 1.0])  # robust CV 14.8%: floor 37%
    assert steady.steady() and not noisy.steady() and steady.floor() == pytest.approx(0.0366, abs=1e-4)
    assert drift.recommended_threshold([steady, noisy]) == 0.04  # the steady one's floor, rounded up
    middling = drift.spread([1.0, 0.98, 1.02, 1.0, 0.97, 1.03, 1.0, 0.98, 1.02, 1.0])  # floor 7.3%: too near
    assert not middling.steady() and drift.recommended_threshold([steady, middling]) == 0.04  # to catch 10% every time
    # more candidate runs shrink the floor down to what the baseline's own median allows: 3 x 2.97% x 1.2533 x
    # sqrt(1/10 + 1/M) <= 5% from M = 10 on; a spread of 14.8% never gets there
    assert steady.runs_needed() == 2 and middling.runs_needed() == 10 and noisy.runs_needed() is None
    assert drift.recommended_threshold([noisy]) == 0.37  # none steady: the smallest floor, rounded up
    assert drift.recommended_threshold([steady], candidate_runs=1) == 0.06  # one candidate run: 5.8% floor
    with pytest.raises(ValueError):
        drift.recommended_threshold([])


def test_quiet_threshold_is_the_worst_leave_one_out_drop():
    assert drift.quiet_threshold([1.0, 1.0, 0.9]) == pytest.approx(0.1)
    assert drift.quiet_threshold([1.0, 1.0]) == 0.0
    with pytest.raises(ValueError):
        drift.quiet_threshold([1.0])


def test_a_results_folder_gives_its_runs_reports_and_nothing_else(tmp_path):
    for run in ("r2", "r1"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "report.json").write_text("{}")
    (tmp_path / "step-seconds.json").write_text("{}")  # a RESULTS_DIR's own file, not a report
    assert baseline_files([str(tmp_path)]) == [tmp_path / "r1" / "report.json", tmp_path / "r2" / "report.json"]
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "b.json").write_text("{}")
    (flat / "a.json").write_text("{}")
    assert baseline_files([str(flat), str(tmp_path / "r1" / "report.json")]) == [
        flat / "a.json", flat / "b.json", tmp_path / "r1" / "report.json"]  # fmt: skip
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no \\*.json"):
        baseline_files([str(tmp_path / "empty")])
    with pytest.raises(ValueError, match="no such file"):
        baseline_files([str(tmp_path / "missing.json")])


def test_the_gated_figure_is_read_at_the_runs_fastest_iteration_except_a_sustained_one():
    """value x median / fastest iteration: a run whose median a busy neighbour slowed, with its fast iterations where
    they were, keeps its figure; one whose every iteration is slower does not. MSMF (a window's sustained rate) is
    gated as it is: a clock that throttles halfway slows only its later iterations, and that is what it measures."""
    steady = [1.0] * 50 + [1.1] * 50
    assert drift.gated_figure(100.0, steady) == pytest.approx(100.0 * 1.05 / 1.0)
    assert drift.gated_figure(100.0, steady, quantile=0.5) == pytest.approx(100.0)
    assert drift.gated_figure(7.0, [1.0, 2.0, 3.0]) == 7.0  # too few iterations to read a quantile from
    assert drift.gated_figure(7.0, []) == 7.0
    assert drift.metric_figure("matmul_msmf_tflops", 100.0, steady) == 100.0
    assert drift.metric_figure("matmul_mamf_tflops", 100.0, steady) == pytest.approx(105.0)


def test_a_neighbour_that_slows_half_a_runs_iterations_raises_no_gate_a_slower_product_does():
    """Three baseline runs, each with a different share of its iterations slowed 30% by something else running (what
    moves a median between runs on a shared VM), against a candidate slowed the same way, and one whose every
    iteration is 12% slower."""

    def run(slowed: float, factor: float, run_id: str) -> NodeReport:
        n = 200
        fast = [BASE_S * factor * (1 + 0.001 * (i % 7)) for i in range(n)]
        times = [t * 1.3 if i < slowed * n else t for i, t in enumerate(fast)]
        return syn.report([syn.matmul("float32", times)], run_id=run_id)

    base = [run(0.1, 1.0, "b0"), run(0.3, 1.0, "b1"), run(0.45, 1.0, "b2")]
    (g,) = gates.regressions(base, run(0.6, 1.0, "busy"), 0.05)  # median 30% slower: the machine, not the code
    assert g.passed, g.message
    (g,) = gates.regressions(base, run(0.1, 1.12, "slow"), 0.05)
    assert not g.passed and g.case == "matmul cpu float32"
