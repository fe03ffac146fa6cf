"""Issue 25's leftovers (left8): a running search counts down to its own deadline (its budget, then its MSMF
window: progress.bound_s), not by the pace of the searches before it."""

from __future__ import annotations

import dataclasses
import json

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


# --- the step history is bounded by what each step's config allows ---------------------------------------------------


def _history(tmp_path, config, entries):
    key = progress.StepHistory(tmp_path, config).key
    (tmp_path / progress.StepHistory.FILE).write_text(json.dumps({key: entries}))


def test_a_history_entry_longer_than_its_config_allows_is_ignored_with_a_warning(tmp_path, capsys):
    """Issue 25's leftovers: an entry of 1e6 s for a search (anything under 1e7 was taken) planned the run at ~12 days.
    A search's config allows HISTORY_FACTOR x its budgets' estimate (30 + 2 + 0.5 = 32.5 s here: 325 s); over that the
    entry is ignored, said on stderr, and the step estimated from the budgets. Entries within it are kept."""
    config = {"matmul": {"budget_s": 30.0, "window_s": 2.0}}
    plan = steps("cpu float32 search", "cpu float64 search", "membw cpu")
    _history(tmp_path, config, {"cpu float32 search": 1e6, "cpu float64 search": 40.0, "membw cpu": 9.2})
    shown = progress.Progress(quiet=False, config=config, history=tmp_path)
    shown.plan(plan)
    shown.stop.set()  # its ticker thread
    assert progress.limit_s(plan[0], config) == pytest.approx(325.0)
    assert shown.eta.estimates[id(plan[0])] == 32.5  # the budgets'
    assert shown.eta.estimates[id(plan[1])] == 40.0  # the history's
    assert shown.eta.planned < 100.0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert "'cpu float32 search' ignored: 1e+06 s is more than the 325 s its config allows" in err


def test_a_training_entry_is_bounded_by_its_work_at_a_floor_rate_and_any_other_step_by_a_day(tmp_path):
    """A training step has no budget: its entry may be at most its work (warm-up + timed steps x the analytic FLOPs)
    at HISTORY_FLOOR_FLOPS plus its setup allowance (gpt tiny: 49 GFLOP, ~51 s); a step bench cannot read (a comm
    job phase), HISTORY_MAX_S."""
    train = runner.Step("train gpt tiny on cpu", list, "train", {"id": "cpu", "kind": "cpu"})
    comm = runner.Step("comm all_reduce", list, "comm")
    assert 45.0 < progress.limit_s(train, None) < 60.0
    assert progress.limit_s(comm, None) == progress.HISTORY_MAX_S
    history = progress.StepHistory(tmp_path, None)
    history.seconds = {train.label: 120.0, comm.label: 3600.0}
    assert history.known([train, comm]) == {comm.label: 3600.0}
    assert len(history.problems) == 1 and "'train gpt tiny on cpu' ignored" in history.problems[0]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[not json", "unreadable (JSONDecodeError)"),
        ("[1, 2]", "not a JSON object"),
        ("[" * 200_000, "unreadable (RecursionError)"),
        (None, "this suite's entry is not an object"),
        ("entry", "ignored: 'x' is not a number of seconds"),
    ],
)
def test_a_bad_history_file_is_a_warning_and_the_budgets_never_a_traceback(tmp_path, capsys, text, said):
    config = {"matmul": {"budget_s": 3.0, "window_s": 1.0}}
    plan = steps("cpu float32 search")
    if text is None:
        (tmp_path / progress.StepHistory.FILE).write_text(json.dumps({progress.StepHistory(tmp_path, config).key: 5}))
    elif text == "entry":
        _history(tmp_path, config, {"cpu float32 search": "x"})
    else:
        (tmp_path / progress.StepHistory.FILE).write_text(text)
    shown = progress.Progress(quiet=False, config=config, history=tmp_path)
    shown.plan(plan)
    shown.stop.set()  # its ticker thread
    assert shown.eta.estimates[id(plan[0])] == 4.5
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and said in err, err


def test_no_history_file_is_no_warning(tmp_path, capsys):
    shown = progress.Progress(quiet=False, config=None, history=tmp_path)
    shown.plan(steps("cpu float32 search"))
    shown.stop.set()
    assert "warning" not in capsys.readouterr().err


def test_another_suites_nested_entry_is_dropped_and_saving_never_raises(tmp_path, monkeypatch):
    """attack17 (21:08 UTC): another suite's entry nested 900 deep was read and written back, and json.dumps of it a
    few frames deeper than the read raised RecursionError (save caught only OSError). Other suites' entries are kept
    only as flat objects of numbers, and save swallows what json.dumps raises: the history is a convenience."""
    config = {"suite": "x"}
    key = progress.StepHistory(tmp_path, config).key
    nested = '{"a":' * 900 + "1" + "}" * 900
    (tmp_path / progress.StepHistory.FILE).write_text(
        '{"other": ' + nested + ', "flat": {"s": 2.0}, ' + json.dumps(key) + ': {"step": 1.0}}'
    )
    history = progress.StepHistory(tmp_path, config)
    assert history.seconds == {"step": 1.0} and "other" not in history.all
    history.save({"step": 1.5})
    saved = json.loads((tmp_path / progress.StepHistory.FILE).read_text())
    assert saved == {"flat": {"s": 2.0}, key: {"step": 1.5}}

    def deep(*a, **k):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(progress.json, "dumps", deep)
    history.save({"step": 1.6})  # no traceback: the file is left as it was
    assert json.loads((tmp_path / progress.StepHistory.FILE).read_text())[key] == {"step": 1.5}
