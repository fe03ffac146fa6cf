"""A metric measured in several rounds spread over a run (configs/gate-cpu.toml's `rounds`, issue 25): the run's
figure is its fastest iteration over the rounds, so a host stall of a second or two that slows one round does not
move it, while a slow-down of the code, which slows every round, still shows in full. Fake figures and start times, no
sleeps: each round's samples are all equal, so its gated figure is exactly the figure chosen."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.hardware.devices import DeviceFacts
from bench.measure.sampling import Policy
from bench.model.reports import NodeReport
from bench.planning import matmul as plan
from bench.report import drift, gates, paired
from tests.report import synthetic as syn
from tests.report.synthetic import gate_folders

CPU = DeviceFacts("cpu", "cpu", "test cpu", "fp-a", 0, None, ("avx2", "fma"))
T0 = dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC)
BASE_S = 0.010


def _round(cpus: str, figure: float) -> object:
    m = syn.matmul("float32", [BASE_S / figure] * 20)
    m.details["cpus"] = cpus
    return m


def _run(rounds: list[float], slot: int, run_id: str, all_core: float = 1.0) -> NodeReport:
    """One run: the all-core figure once per round at `all_core`, the per-core one at each figure of `rounds`."""
    r = syn.report([m for f in rounds for m in (_round("all", all_core), _round("0", f))], run_id=run_id)
    r.start_utc = (T0 + dt.timedelta(seconds=10 * slot)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    r.end_utc = (T0 + dt.timedelta(seconds=10 * slot + 8)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return r


def _per_core(figures: dict) -> float:
    (f,) = [v for k, v in figures.items() if dict(k[1])["cpus"] == "0"]
    return f


def test_a_run_s_figure_is_its_fastest_iteration_over_its_rounds():
    run = _run([0.85, 1.0, 0.9], 0, "r")
    # the middle round: neither the first nor the last one measured (a last-wins read gives 0.9, a first-wins 0.85)
    once = _per_core(gates.run_figures(_run([1.0], 0, "one")))
    assert _per_core(gates.run_figures(run)) == pytest.approx(once)
    assert _per_core(gates.timed_run(run, paired.BASELINE).figures) == pytest.approx(once)
    assert _per_core(gates.run_figures(_run([0.9, 0.9, 0.9], 0, "slow"))) == pytest.approx(0.9 * once)


def test_a_sustained_metric_over_rounds_is_its_median_and_no_round_is_an_error():
    assert drift.rounds_figure("matmul_msmf_tflops", [(1.0, []), (3.0, []), (2.0, [])]) == 2.0
    assert drift.rounds_figure("matmul_tflops", [(1.0, [0.01] * 10), (1.0, [0.02] * 6 + [0.01] * 4)]) == pytest.approx(
        2.0)  # fmt: skip
    with pytest.raises(ValueError, match="no round"):
        drift.rounds_figure("matmul_tflops", [])


#: run-to-run noise +-1% (uniform) on every round, and in every run one round of three stalled 10-25% (a host stall
#: of a second or two: tests/perf/pinned_stalls.py), seeded
def session(
    pairs: int, per_core: float = 1.0, rounds: int = 3, seed: int = 0
) -> tuple[list[NodeReport], list[NodeReport]]:
    rng = random.Random(seed)
    base, cand = [], []
    for slot in range(2 * pairs):
        stalled = rng.randrange(rounds)
        figures = [(1 + rng.uniform(-0.01, 0.01)) * (1 - rng.uniform(0.10, 0.25) if i == stalled else 1)
                   for i in range(rounds)]  # fmt: skip
        if paired.side_at(slot) == paired.BASELINE:
            base.append(_run(figures, slot, f"b{slot:02d}"))
        else:
            cand.append(_run([f * per_core for f in figures], slot, f"c{slot:02d}"))
    return base, cand


LIMITS = paired.Thresholds(0.05, ((((("cpus", "all"),), 0.25)),))


def _verdict(j: gates.PairedJudgement) -> paired.PairedVerdict:
    (v,) = [pm.verdict for pm in j.metrics if pm.metric.labels["cpus"] == "0"]
    return v


def test_a_stall_in_one_round_of_every_run_passes_unchanged_code_and_a_10_percent_slowdown_is_still_caught():
    for seed in range(5):
        unchanged = gates.paired_judgement(*session(5, seed=seed), LIMITS)
        assert unchanged.outcome == paired.PASS, unchanged.checks
        assert _verdict(unchanged).floor < 0.05
        slower = gates.paired_judgement(*session(5, per_core=0.9, seed=seed), LIMITS)
        assert slower.outcome == paired.REGRESSION and _verdict(slower).regressed
        assert _verdict(slower).ratio == pytest.approx(0.9, abs=0.025)
    # the same stalls in a run of one round (the whole window stalled in one run of three): inconclusive or worse
    noisy = [gates.paired_judgement(*session(5, rounds=1, seed=seed), LIMITS).outcome for seed in range(5)]
    assert noisy.count(paired.PASS) < 5


def test_a_pinned_suite_of_three_rounds_plans_every_step_once_per_round_in_turn():
    steps = plan.fixed_plan([CPU], {}, ("float32", "float64"), [(64, 64, 64)], Policy(), plan.PeakOverrides(), 0,
                            rounds=3)  # fmt: skip
    one = ["cpu float32 64x64x64 cpus=all", "cpu float32 64x64x64 cpus=0", "cpu float64 64x64x64 cpus=all",
           "cpu float64 64x64x64 cpus=0"]  # fmt: skip
    assert [s.label for s in steps] == [f"{label} round {r}/3" for r in (1, 2, 3) for label in one]
    assert [s.label for s in plan.fixed_plan([CPU], {}, ("float32",), [(64, 64, 64)], Policy(),
                                            plan.PeakOverrides(), 0, rounds=1)] == one[:2]  # fmt: skip


def test_the_gate_config_spreads_its_figures_over_rounds():
    from bench import suite

    config = suite.load(Path(syn.__file__).parents[2] / "configs" / "gate-cpu.toml")
    assert config["matmul"]["rounds"] >= 3 and config["matmul"]["pin_cpu"] == -1


def test_bench_gate_judges_runs_of_several_rounds_and_times_each_metric_over_all_of_them(tmp_path):
    a, b = gate_folders(tmp_path, *session(5))
    junit = tmp_path / "gate.xml"
    out = CliRunner().invoke(main, ["gate", a, b, "--junit", str(junit)])
    assert out.exit_code == 0, out.output
    assert 'name="' in junit.read_text()
    slow_a, slow_b = gate_folders(tmp_path / "slow", *session(5, per_core=0.9))
    out = CliRunner().invoke(main, ["gate", slow_a, slow_b])
    assert out.exit_code == 1 and "REGRESSION" in out.output, out.output
