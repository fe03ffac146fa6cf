"""The regression gate judged on between-run variation (issue 25, "gates that don't cry wolf"): each baseline run gives
one figure per metric, and a candidate fails only below their mean by more than the threshold *and* outside their
spread (bench.report.drift); one baseline run is judged by the threshold alone, and says so."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from bench.cli.run import baseline_files
from bench.model.reports import NodeReport
from bench.report import compare as cmp
from bench.report import drift, gates
from tests.report import synthetic as syn

#: seconds per 512^3 float32 product at 1 figure unit; a run's figure is proportional to 1 / its median seconds
BASE_S = 0.010
#: five unchanged runs' medians as a machine spreads them between runs (about +-2%), each run's samples +-1% around
#: its own median: the picture issue 25 measured, where a rank test over pooled samples calls anything significant
RUN_FACTORS = (1.000, 1.018, 0.986, 1.012, 0.992)


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


def test_an_unchanged_candidate_inside_the_runs_spread_passes_where_a_rank_test_cries_wolf():
    base = _baselines()
    candidate = _run(1.02, "cand", seed=99)  # 2% slower than the first run: inside what the runs themselves spread
    (g,) = gates.regressions(base, candidate, 0.05)
    assert g.passed and "5 baseline runs" in g.message and "no regression in 2 metrics" in g.message
    assert "p=" not in g.message
    # what the old gate did: pooled samples of one run against another's, p far below any alpha
    assert cmp.significance(_f32(base[0]), _f32(candidate)) < 1e-6


def test_a_steady_metric_a_little_slower_but_within_the_threshold_passes():
    base = _baselines((1.000, 1.002, 0.999))  # runs within 0.3% of each other
    (g,) = gates.regressions(base, _run(1.03, "cand", seed=7), 0.05)  # 3% slower: outside the spread, inside 5%
    assert g.passed


def test_ten_percent_slower_fails_on_the_regressed_workloads_junit_case():
    base = _baselines()
    slower = syn.report([syn.matmul("float32", _symmetric(BASE_S / 0.9, 0.01, seed=5)),
                         syn.matmul("float64", _symmetric(2 * BASE_S, 0.01, seed=6))], run_id="slow")  # fmt: skip
    checks = gates.regressions(base, slower, 0.05)
    assert [(g.passed, g.case) for g in checks] == [(False, "matmul cpu float32")]
    (g,) = checks
    # the figures are each run's fastest iteration (drift.gated_figure): the mirrored noise scales with the median
    assert "(-9.9%)" in g.message and "mean of 5 runs" in g.message and "range 3.2%" in g.message
    cases = {c.get("name"): c for c in ET.fromstring(gates.junit(slower, checks)).iter("testcase")}
    assert cases["matmul cpu float32"].find("failure") is not None
    assert cases["matmul cpu float64"].find("failure") is None and "baseline" not in cases


def test_ten_percent_slower_is_caught_from_every_unchanged_candidate_position():
    """Whichever of the unchanged runs is the candidate (judged against the other four), it passes; the same run 10%
    slower fails."""
    for i in range(len(RUN_FACTORS)):
        others = [f for j, f in enumerate(RUN_FACTORS) if j != i]
        base = _baselines(others)
        assert all(g.passed for g in gates.regressions(base, _run(RUN_FACTORS[i], "cand", seed=3), 0.05))
        slow = gates.regressions(base, _run(RUN_FACTORS[i] / 0.9, "slow", seed=3), 0.05)
        assert len(slow) == 2 and not any(g.passed for g in slow)


def test_one_baseline_run_uses_the_threshold_alone_and_says_so():
    (base,) = _baselines((1.0,))
    (g,) = gates.regressions(base, _run(1.03, "cand", seed=4), 0.05)
    assert g.passed and "cannot know the between-run spread" in g.message and "threshold 5.0% alone" in g.message
    checks = gates.regressions([base], _run(1 / 0.9, "slow", seed=4), 0.05)
    assert len(checks) == 2 and not any(g.passed for g in checks)
    assert "one baseline run: threshold alone, between-run spread unknown" in checks[0].message
    assert "p=" not in checks[0].message


def test_noise_within_runs_steady_between_them_does_not_fire_nor_hide_a_slowdown():
    """Samples +-40% around each run's median (a noisy metric), medians within 0.5% between runs: unchanged passes,
    10% slower still fails (it is the runs' figures that are compared, not the samples)."""
    base = _baselines((1.000, 1.004, 0.997, 1.002), within=0.40)
    (g,) = gates.regressions(base, _run(1.003, "cand", within=0.40, seed=42), 0.05)
    assert g.passed
    slow = gates.regressions(base, _run(1 / 0.9, "slow", within=0.40, seed=42), 0.05)
    assert len(slow) == 2 and not any(g.passed for g in slow)


def test_runs_that_spread_wider_than_the_threshold_cannot_gate_and_say_so():
    base = _baselines((1.000, 1.087, 0.943))  # figures 1.0, 0.92, 1.06: a 14% range
    (g,) = gates.regressions(base, _run(1.075, "cand", seed=8), 0.05)  # 7% below their mean, inside their range
    assert g.passed and "spread wider than the threshold" in g.message and "14." in g.message


def test_any_baseline_run_from_other_hardware_or_another_config_fails_the_gate():
    base = _baselines((1.0, 1.01))
    base.append(_run(1.0, "other-host", host={**syn.HOST, "cpu_model": "Other"}))
    (g,) = gates.regressions(base, _run(1.0, "cand"), 0.05)
    assert not g.passed and "baseline run other-host is not comparable: hardware differs: cpu_model" in g.message
    odd = _baselines((1.0, 1.01))
    odd[1].measurements[1].spec = {**odd[1].measurements[1].spec, "batch": 4}  # float64 measured batched
    (g,) = gates.regressions(odd, _run(1.0, "cand"), 0.05)
    assert (
        not g.passed and "baseline run base-1 measured another config" in g.message and "batch 4 vs None" in g.message
    )


def test_one_run_named_twice_counts_once():
    """A folder and a file in it name one run twice: a copy must not shrink the spread to nothing."""
    (base,) = _baselines((1.0,))
    (g,) = gates.regressions([base, base], _run(1.03, "cand", seed=4), 0.05)
    assert g.passed and "one baseline run (base-0)" in g.message


def test_baseline_runs_with_no_metric_in_common_fail_rather_than_pass_blind():
    base = [syn.report([syn.matmul("bfloat16", _symmetric(BASE_S, 0.01))], run_id="bf16-only")]
    (g,) = gates.regressions(base, _run(1.0, "cand"), 0.05)
    assert not g.passed and "no metric in common with baseline run(s) bf16-only" in g.message


def test_judge_states_its_two_rules():
    v = drift.judge([1.0, 0.98, 1.02], 0.9, 0.05)
    assert v.regressed and v.below_threshold and v.outside_spread and v.spread == pytest.approx(0.04)
    assert not drift.judge([1.0, 0.98, 1.02], 0.95, 0.05).regressed  # 5% below the mean: not beyond it
    assert not drift.judge([1.0, 0.80, 1.20], 0.70, 0.05).regressed  # inside worst - range = 0.40
    single = drift.judge([1.0], 0.94, 0.05)
    assert single.regressed and not single.spread_known
    assert not drift.judge([1.0], 0.96, 0.05).regressed
    with pytest.raises(ValueError):
        drift.judge([], 1.0, 0.05)


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
