"""Issue 25's leftovers (left8): a running search counts down to its own deadline (its budget, then its MSMF
window: progress.bound_s), not by the pace of the searches before it."""

from __future__ import annotations

import dataclasses

import pytest

from bench import runner
from bench.cli import progress
from bench.hardware.devices import DeviceFacts


def steps(*labels: str) -> list[runner.Step]:
    return [runner.Step(label, list, "step", {"id": "cpu", "kind": "cpu"}) for label in labels]


def test_a_running_search_counts_down_to_its_deadline_not_by_the_pace_of_the_searches_before_it():
    """The first search ran 48.75 s against its 32.5 s bound (a loaded machine's stalls): the searches' pace is then
    1.5 (every budget-timed step so far ran 1.5x), and the old rule said 32.5 x 1.5 - 10 = 38.75 s left 10 s into the
    second search, which ends at its budget and window all the same: 22.5 s. Steps not begun keep the pace."""
    now = [0.0]
    plan = steps("cpu float32 search", "cpu float64 search", "cpu int8 search")
    eta = progress.Eta(plan, [32.5] * 3, False, now=lambda: now[0])
    eta.begin(plan[0])
    now[0] = 48.75
    eta.begin(plan[1])
    pace = eta.pace(plan[2])
    assert pace == pytest.approx(1.5)
    now[0] += 10.0
    assert eta.left() == pytest.approx(22.5 + 32.5 * pace)
    began = 48.75
    assert eta.step_left(plan[1], began, began + 32.5) == pytest.approx(progress.Eta.END_SHARE * 32.5)  # a sliver
    # past its deadline, a quarter of what it ran, as any overrunning step
    assert eta.step_left(plan[1], began, began + 40.0) == pytest.approx(progress.Eta.OVERRUN_SHARE * 40.0)


def test_a_search_timed_by_the_history_ends_by_the_later_of_its_deadline_and_what_it_took_last_time():
    """With a history a search's estimate is what it took last time (30 s here) and its pace the history's: the first
    search ran 60 s (a machine slower than last time), so the pace says the second takes 30 x 4/3 = 40 s. It ends
    by its budget and window all the same (bound_s from the config: 30 + 2 + 0.5 on a CPU), which the Progress hands
    to its Eta: 20 s left 12.5 s in, not 27.5. A bound below what it took last time gives way to that (a search's
    phases cost past its budget: int8's 33.6 s for 32.5 s, quiet), so the history is never cut short."""
    now = [0.0]
    plan = steps("cpu float32 search", "cpu float64 search")
    config = {"matmul": {"budget_s": 30.0, "window_s": 2.0}}
    assert progress.bound_s(plan[0], config) == 32.5
    bounds = {s.label: 32.5 for s in plan}
    eta = progress.Eta(plan, [30.0, 30.0], False, now=lambda: now[0], known=plan, bounds=bounds)
    eta.begin(plan[0])
    now[0] = 60.0
    eta.begin(plan[1])
    assert eta.expected(plan[1]) == pytest.approx(40.0)
    now[0] += 12.5
    assert eta.left() == pytest.approx(20.0)
    slower = progress.Eta(plan, [33.6, 33.6], False, now=lambda: now[0], known=plan, bounds=bounds)
    assert slower.bounds[id(plan[1])] == 33.6


def test_only_searches_the_device_runs_have_a_deadline():
    """An emulated precision's search is one small measurement and training is bounded by its work: no deadline,
    the pace's rule."""
    cpu = dataclasses.asdict(DeviceFacts("cpu", "cpu", "test cpu", "fp", 0, None, ("avx2", "fma")))
    emulated = runner.Step("cpu float16 search", list, "step", cpu)
    native = runner.Step("cpu float32 search", list, "step", cpu)
    train = runner.Step("train gpt tiny on cpu", list, "train", cpu)
    assert progress.bound_s(emulated, None) is None
    assert progress.bound_s(train, None) is None
    assert progress.bound_s(native, {"matmul": {"budget_s": 3.0, "window_s": 1.0}}) == 4.5


def test_the_progress_hands_each_search_its_bound_from_the_config():
    config = {"matmul": {"budget_s": 3.0, "window_s": 1.0}}
    plan = steps("cpu float32 search", "membw cpu")
    shown = progress.Progress(quiet=True, config=config)
    shown.plan(plan)
    assert shown.eta is not None and shown.eta.bounds == {id(plan[0]): 4.5}
