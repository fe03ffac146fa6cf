"""Honest time left (issue 25): estimates paced per class of step, from the last run of the suite here when there
is one, counting down inside a step, never rising by more than the time elapsed; a heartbeat inside a long step and a
last line with the total time."""

from __future__ import annotations

import io
import json
import re

import pytest

from bench import runner
from bench.cli import progress


def steps(*labels: str) -> list[runner.Step]:
    return [runner.Step(label, list, "train" if label.startswith("train") else "step", {"id": "cpu", "kind": "cpu"})
            for label in labels]  # fmt: skip


def test_a_class_of_budget_steps_goes_at_the_pace_of_the_budget_steps_until_its_own_finish():
    now = [0.0]
    plan = steps("cpu float32 search", "cpu float64 search", "membw cpu", "membw cpu 2")
    # bounds={}: no search deadline here (with one, a running search counts down to it: test_progress_left8.py)
    eta = progress.Eta(plan, [10.0, 10.0, 4.0, 4.0], False, now=lambda: now[0], bounds={})
    eta.begin(plan[0])
    now[0] = 5.0  # the first search took half its estimate: the budgets are long here, membw's too (no membw yet)
    assert eta.begin(plan[1]) == 5.0 + 2.0 + 2.0
    now[0] = 10.0
    eta.begin(plan[2])
    now[0] = 14.0  # membw took its estimate: its class's pace weighs its 4 s against 8 s at the budget steps' pace
    budget_pace = (5.0 + 5.0 + 4.0) / (10.0 + 10.0 + 4.0)
    assert eta.begin(plan[3]) == 4.0 * (4.0 + 8.0 * budget_pace) / (4.0 + 8.0)


def test_one_step_slower_than_last_time_moves_the_history_pace_a_third_of_the_way():
    now = [0.0]
    plan = steps("cpu float32 search", "cpu float64 search", "cpu bfloat16 search", "cpu int8 search")
    eta = progress.Eta(plan, [10.0] * 4, False, now=lambda: now[0], known=plan)
    eta.begin(plan[0])
    now[0] = 16.0  # 62% longer than last time (a search's run-to-run spread): not the pace of every later step
    assert eta.begin(plan[1]) == 3 * 10.0 * (16.0 + 20.0) / (10.0 + 20.0)  # 36 s, where the bare pace said 48


def test_a_machine_slower_than_last_time_takes_over_as_its_steps_finish():
    now = [0.0]
    plan = steps(*(f"cpu {p} search" for p in ("float32", "float64", "bfloat16", "float16", "int8")))
    eta = progress.Eta(plan, [10.0] * 5, False, now=lambda: now[0], known=plan)
    paces = []
    for i, step in enumerate(plan):
        now[0] = 20.0 * i  # every step twice as long as last time
        eta.begin(step)
        paces.append(eta.pace(plan[-1]))
    assert paces == [1.0, 40 / 30, 60 / 40, 80 / 50, 100 / 60]


def test_a_step_running_past_its_expected_time_still_needs_a_share_of_what_it_ran():
    now = [0.0]
    plan = steps("cpu int8 search")
    eta = progress.Eta(plan, [40.0], False, now=lambda: now[0])
    eta.begin(plan[0])
    now[0] = 30.0
    assert eta.left() == 10.0
    now[0] = 60.0  # 20 s over: not 0 s left, but a quarter of the minute it ran
    assert eta.left() == 15.0


def test_a_step_near_its_expected_end_needs_what_its_expectation_leaves():
    """Searches end at their budget now: at 30.4 s of a step expected to take 32.6 s, the line says the 2.2 s its
    expectation leaves, not a quarter of the 30 s it ran (the quiet node suite said 14 s left with 9 s to go); at its
    expected end, a sliver of it, not 0."""
    now = [0.0]
    plan = steps("cpu int8 search")
    eta = progress.Eta(plan, [32.6], False, now=lambda: now[0])
    eta.begin(plan[0])
    now[0] = 30.4
    assert eta.left() == pytest.approx(2.2)
    now[0] = 32.6
    assert eta.left() == pytest.approx(progress.Eta.END_SHARE * 32.6)


def test_what_is_left_never_rises_by_more_than_the_time_elapsed():
    now = [0.0]
    plan = steps("cpu float32 search", "cpu float64 search", "cpu bfloat16 search")
    eta = progress.Eta(plan, [1.0, 1.0, 1.0], False, now=lambda: now[0], bounds={})  # paced, no deadline
    assert eta.begin(plan[0]) == 3.0
    now[0] = 10.0  # the first search took 10 s: at its pace the rest take 20 s, but only 10 s went by
    assert eta.begin(plan[1]) == 3.0 + 10.0
    now[0] = 11.0
    assert eta.left() <= 13.0 + 1.0


def test_a_step_that_says_how_far_it_is_is_timed_by_its_own_pace():
    now = [0.0]
    plan = steps("train gpt tiny on cpu")
    eta = progress.Eta(plan, [30.0], False, now=lambda: now[0])
    eta.begin(plan[0])
    now[0] = 2.0
    eta.progress("train gpt tiny on cpu", 0.5)  # half its steps in 2 s: 2 s left, not 28
    assert eta.left() == 2.0
    assert eta.share_done(plan[0], 0.0) == 0.5


def test_the_last_run_of_the_suite_here_gives_the_estimates(tmp_path):
    config = {"matmul": {"budget_s": 3.0}}
    plan = steps("cpu float32 search", "train gpt tiny on cpu")
    first = progress.Progress(quiet=True, config=config, history=tmp_path)
    first.plan(plan)
    first.eta.durations = {"cpu float32 search": 7.0, "train gpt tiny on cpu": 3.0}
    first.finished()
    saved = json.loads((tmp_path / progress.StepHistory.FILE).read_text())
    assert list(saved.values()) == [{"cpu float32 search": 7.0, "train gpt tiny on cpu": 3.0}]
    second = progress.Progress(quiet=True, config=config, history=tmp_path)
    second.plan(plan)
    assert second.eta.planned == 10.0
    other = progress.Progress(quiet=True, config={"matmul": {"budget_s": 4.0}}, history=tmp_path)
    other.plan(plan)  # another config: the budgets again
    assert other.eta.planned != 10.0
    (tmp_path / progress.StepHistory.FILE).write_text("[not an object")
    progress.Progress(quiet=True, config=config, history=tmp_path).plan(plan)  # unreadable: no history, no error


def test_a_log_gets_a_heartbeat_inside_a_long_step_and_the_total_at_the_end(monkeypatch):
    now = [0.0]
    plan = steps("cpu float32 search")
    out = io.StringIO()
    lines = progress.StepLines(plan, [120.0], False, out, progress.Eta(plan, [120.0], False, now=lambda: now[0]))
    lines.step(plan[0])
    now[0] = 61.0
    lines.heartbeat()
    lines.finished(4)
    text = out.getvalue().splitlines()
    assert text[1] == "[1/1 ...] 0:01:01 elapsed, ~0:00:59 left: cpu float32 search running for 0:01:01"
    assert text[2] == "[done] 0:01:01 in total: 4 measurements"


def test_steps_timed_last_run_go_at_the_pace_of_every_such_step():
    now = [0.0]
    plan = steps("cpu float32 search", "train gpt tiny on cpu")
    eta = progress.Eta(plan, [10.0, 30.0], False, now=lambda: now[0], known=plan)
    eta.begin(plan[0])
    now[0] = 20.0  # twice as slow as last time: so is training (no training step finished), shrunk toward 1
    assert eta.begin(plan[1]) == 30.0 * (20.0 + 40.0) / (10.0 + 40.0)


def test_a_two_rank_run_prints_the_plan_and_a_line_per_step_from_rank_0_only(tmp_path, monkeypatch):
    """Issue 25: under torchrun or srun the log had no plan and no step lines, only torch's FutureWarnings for
    all_gather_into_tensor and reduce_scatter_tensor (two per rank)."""
    from tests.cli.ranks import free_port, launch_rank

    config = tmp_path / "suite.toml"
    config.write_text(
        '[suite]\nworkloads = ["matmul", "comm"]\n[matmul]\nsearch = "none"\nprecisions = ["float32"]\nsizes = [128]\n'
        'budget_s = 0.1\n[comm]\nops = ["all_gather", "reduce_scatter"]\nmax_bytes = 4096\nfactor = 8\n'
        "iterations = 3\nwarmup_iterations = 1\ntimeout_s = 60\n"
    )
    monkeypatch.setenv("BENCH_PROGRESS", "lines")
    port = free_port()
    args = ["run", "--config", str(config), "--results-dir", str(tmp_path / "results"), "--skip-doctor"]
    procs = [launch_rank(r, port, args) for r in (0, 1)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    lead, other = outs[0][1], outs[1][1]
    assert "plan: 2 steps on 1 device(s) (cpu)" in lead, lead
    assert re.search(r"\[done\] \d:\d\d:\d\d in total: [1-9]\d* measurements", lead), lead
    assert "[1/2 0%]" in lead and "[2/2 50%]" in lead and "comm x2 ranks" in lead and "[done]" in lead
    assert "plan:" not in other and "[1/" not in other
    assert "Warning" not in lead + other, lead + other


def matmul_measured(tflops: float, precision: str = "float32", status: str = "ok"):
    from bench.model.reports import Measurement

    return Measurement("matmul", {"precision": precision, "m": 512, "n": 512, "k": 512}, {"id": "cpu", "kind": "cpu"},
                       status, summary={"tflops_median": tflops})  # fmt: skip


def test_a_first_run_times_training_by_its_flops_at_the_matmul_rate_it_measured():
    """No history: a training step is estimated from its planned work (warm-up + timed steps x its analytic FLOPs)
    at a share of the best matmul rate this run measured at its precision on its device, not a fixed 30 s."""
    from bench import figures
    from bench.model.specs import preset

    config = {"train": {"models": ["gpt"], "presets": ["tiny"]}}
    plan = steps("cpu float32 search", "train gpt tiny on cpu")
    bar = progress.Progress(quiet=True, config=config)
    bar.plan(plan)
    assert bar.eta.estimates[id(plan[1])] == progress.TRAIN_GUESS_S["cpu"]  # nothing measured yet: the guess
    bar.measured(matmul_measured(0.9, precision="bfloat16"))  # another precision says nothing about float32 training
    bar.measured(matmul_measured(0.9, status="invalid"))  # nor does a wrong result
    assert bar.eta.estimates[id(plan[1])] == progress.TRAIN_GUESS_S["cpu"]
    bar.measured(matmul_measured(0.1))
    bar.measured(matmul_measured(0.2))
    bar.measured(matmul_measured(0.15))  # the best rate so far counts
    spec = preset("gpt", "tiny")
    flops = figures.train_step_flops("gpt", spec.layers, spec.width, spec.seq_len, spec.batch, spec.vocab)
    want = progress.TRAIN_SETUP_S["cpu"] + (spec.warmup + spec.steps) * flops / (
        progress.TRAIN_SHARE_OF_MATMUL * 0.2e12
    )
    assert bar.eta.estimates[id(plan[1])] == want
    assert 1.0 < want < 10.0  # the figure is a training step's, not the budget guess


def test_only_the_first_training_step_carries_the_once_per_process_setup():
    """mlp tiny, trained after gpt tiny in one process, took 0.1 s in all against the 1.0 s setup once added to every
    training step: the setup (autograd, optimizer, first-use kernels) is paid once, by the first."""
    from bench import figures
    from bench.model.specs import preset

    config = {"train": {"models": ["gpt", "mlp"], "presets": ["tiny"]}}
    plan = steps("cpu float32 search", "train gpt tiny on cpu", "train mlp tiny on cpu")
    bar = progress.Progress(quiet=True, config=config)
    bar.plan(plan)
    bar.measured(matmul_measured(0.2))

    def work_s(model: str) -> float:
        spec = preset(model, "tiny")
        flops = figures.train_step_flops(model, spec.layers, spec.width, spec.seq_len, spec.batch, spec.vocab)
        return (spec.warmup + spec.steps) * flops / (progress.TRAIN_SHARE_OF_MATMUL * 0.2e12)

    assert bar.eta.estimates[id(plan[1])] == pytest.approx(progress.TRAIN_SETUP_S["cpu"] + work_s("gpt"))
    assert bar.eta.estimates[id(plan[2])] == pytest.approx(work_s("mlp"))
    assert bar.eta.estimates[id(plan[2])] < 0.2  # mlp tiny's own work, not a second setup


def test_a_measured_rate_changes_no_estimate_history_gave_and_no_step_that_began(tmp_path):
    config = {"train": {"models": ["gpt", "mlp"], "presets": ["tiny"]}}
    plan = steps("cpu float32 search", "train gpt tiny on cpu", "train mlp tiny on cpu")
    (tmp_path / progress.StepHistory.FILE).write_text(
        json.dumps({progress.StepHistory(tmp_path, config).key: {"train gpt tiny on cpu": 4.0}})
    )
    bar = progress.Progress(quiet=True, config=config, history=tmp_path)
    bar.plan(plan)
    bar.eta.begin(plan[2])  # out of order on purpose: mlp has begun
    bar.measured(matmul_measured(0.2))
    assert bar.eta.estimates[id(plan[1])] == 4.0  # what it took here last time stays
    assert bar.eta.estimates[id(plan[2])] == progress.TRAIN_GUESS_S["cpu"]  # running: its own progress times it


def test_a_finished_training_step_times_the_later_ones_at_its_own_rate_not_a_share_of_matmul():
    """Issue 25: the training steps were estimated at a fixed 0.25 x the matmul MAMF while gpt tiny ran at about half
    that. A finished training step's rate at its own shapes (its warm-up and timed steps' FLOPs over their seconds)
    times every later training step on its device at its precision, without the once-per-process setup; a matmul
    measured afterwards changes nothing."""
    from bench import figures
    from bench.model.reports import Measurement
    from bench.model.specs import preset

    config = {"train": {"models": ["gpt", "mlp"], "presets": ["tiny"]}}
    plan = steps("cpu float32 search", "train gpt tiny on cpu", "train mlp tiny on cpu")
    bar = progress.Progress(quiet=True, config=config)
    bar.plan(plan)
    bar.measured(matmul_measured(0.2))
    gpt = preset("gpt", "tiny")
    flops = figures.train_step_flops("gpt", gpt.layers, gpt.width, gpt.seq_len, gpt.batch, gpt.vocab)
    step_s = flops / 0.02e12  # gpt tiny at 20 GFLOPS: a tenth of the matmul rate, not the quarter once assumed
    warmup, samples = [1.5 * step_s] * gpt.warmup, [step_s] * gpt.steps
    bar.eta.begin(plan[1])
    bar.measured(Measurement("train", gpt.to_dict(), {"id": "cpu", "kind": "cpu"}, "ok", work_per_iteration=flops,
                             warmup_s=warmup, samples_s=samples))  # fmt: skip
    rate = flops * (gpt.warmup + gpt.steps) / (sum(warmup) + sum(samples))
    mlp = preset("mlp", "tiny")
    mlp_flops = figures.train_step_flops("mlp", mlp.layers, mlp.width, mlp.seq_len, mlp.batch, mlp.vocab)
    want = (mlp.warmup + mlp.steps) * mlp_flops / rate
    assert bar.eta.estimates[id(plan[2])] == pytest.approx(want)
    assert want > 2 * (mlp.warmup + mlp.steps) * mlp_flops / (progress.TRAIN_SHARE_OF_MATMUL * 0.2e12)
    bar.measured(matmul_measured(0.3))  # a better matmul now: training's own rate stands
    assert bar.eta.estimates[id(plan[2])] == pytest.approx(want)


def test_time_left_is_shown_to_the_nearest_second_and_elapsed_as_a_stopwatch():
    """1.9 s left shown as 0:00:01 (truncated) read as half the time that remained on a 2 s training step."""
    now = [0.0]
    plan = steps("cpu float32 search", "train gpt tiny on cpu")
    out = io.StringIO()
    lines = progress.StepLines(
        plan, [10.0, 1.9], False, out, progress.Eta(plan, [10.0, 1.9], False, now=lambda: now[0])
    )
    lines.step(plan[0])
    now[0] = 10.0  # the search took its estimate: 1.9 s left
    lines.step(plan[1])
    assert out.getvalue().splitlines()[1] == "[2/2 50%] 0:00:10 elapsed, ~0:00:02 left: train gpt tiny on cpu"
    assert progress.clock(0.5, nearest=True) == "0:00:00" and progress.clock(59.6, nearest=True) == "0:01:00"


def test_a_long_training_step_goes_by_its_pace_since_its_first_step_not_since_it_began():
    """A heartbeat inside a long training run: a minute of building and compiling before its first step, then 30 s
    per tenth of its steps. At 90 s, 12% done, 264 s remain; the pace since the step began said 660."""
    now = [0.0]
    plan = steps("train gpt small on cpu")
    eta = progress.Eta(plan, [400.0], False, now=lambda: now[0])
    eta.begin(plan[0])
    now[0] = 60.0
    eta.progress(plan[0].label, 0.02)
    now[0] = 90.0
    eta.progress(plan[0].label, 0.12)
    assert eta.left() == pytest.approx(30.0 * 0.88 / 0.10)
