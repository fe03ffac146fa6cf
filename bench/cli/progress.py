"""What a verb says on stderr while it measures, one helper for every verb: the plan before a long run starts (devices x
steps, whether GPUs run at once, an estimated duration), then progress. A terminal gets a live bar with the time
elapsed and an estimate of what remains; a log (Slurm, CI, kubectl logs: no terminal) gets one line per step with the
same two figures. Both take the remaining time from one Eta: the budgets' estimate of each step, scaled by how long
the finished steps really took."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TextIO

import click

from bench.cli import choices
from bench.cli.output import stderr

if TYPE_CHECKING:
    from bench.runner import Step

#: default seconds of a fixed-shape matmul measurement (bench.measure.sampling.Policy: budget 1 s + warm-up up to 1 s)
FIXED_S = 1.0


def _kind(step: Step) -> str:
    kind = (step.device or {}).get("kind")
    return kind or ("cuda" if step.label.startswith("cuda") else "cpu")


def estimate_s(step: Step, config: dict[str, Any] | None = None) -> float:
    """A rough duration of one step from the budgets that bound it (what the plan line and the ETA use)."""
    kind, label = _kind(step), step.label
    mc = (config or {}).get("matmul", {})
    if label.endswith(" search"):
        window = choices.SEARCH_WINDOW_S[kind] if mc.get("window_s") is None else mc["window_s"]
        settle = choices.SEARCH_SETTLE_S[kind] if mc.get("settle_s") is None else mc["settle_s"]
        return (mc.get("budget_s") or choices.SEARCH_BUDGET_S[kind]) + window + settle
    if step.workload == "membw" or label.startswith("membw"):
        budget = (config or {}).get("membw", {}).get("budget_s") or 1.0
        return 6 * (budget + min(budget, 1.0))
    if step.workload == "train" or label.startswith("train"):
        return 30.0 if kind == "cpu" else 120.0
    return (mc.get("budget_s") or FIXED_S) + (mc.get("max_warmup_s") or FIXED_S)


def total_s(steps: Sequence[Step], estimates: Sequence[float], concurrent: bool) -> float:
    """Lanes (one per GPU) run at once when concurrent: the longest lane counts, plus every step outside a lane."""
    lanes: dict[str, float] = {}
    rest = 0.0
    for step, est in zip(steps, estimates, strict=True):
        if concurrent and step.lane is not None:
            lanes[step.lane] = lanes.get(step.lane, 0.0) + est
        else:
            rest += est
    return max(lanes.values(), default=0.0) + rest


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def plan_line(steps: Sequence[Step], estimates: Sequence[float], concurrent: bool) -> str:
    devices = list(
        dict.fromkeys(str((s.device or {}).get("id") or s.label.split()[0]) for s in steps if s.device or s.lane)
    )
    gpus = [d for d in devices if d.startswith("cuda")]
    how = ""
    if len(gpus) > 1:
        how = (
            "; the GPUs at the same time, each in its own thread"
            if concurrent
            else "; the GPUs ONE AFTER ANOTHER (--sequential / suite.concurrent_devices = false)"
        )
    return (f"plan: {len(steps)} steps on {len(devices) or 1} device(s) ({', '.join(devices) or 'cpu'}){how}; "
            f"estimated {clock(total_s(steps, estimates, concurrent))} (from the budgets; h:mm:ss)")  # fmt: skip


def interactive(stream: TextIO | None = None) -> bool:
    """A terminal someone watches (a live bar), or a log (lines). BENCH_PROGRESS=lines forces lines."""
    if os.environ.get("BENCH_PROGRESS") == "lines":
        return False
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class Eta:
    """Time elapsed and left over a plan of steps: what remains of the budgets' estimate, scaled by the pace of the
    steps finished so far (their real duration over their estimate)."""

    def __init__(self, steps: Sequence[Step], estimates: Sequence[float], concurrent: bool,
                 now: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.estimates = {id(s): e for s, e in zip(steps, estimates, strict=True)}
        self.planned = total_s(steps, estimates, concurrent)
        self.now = now
        self.started = now()
        self.done_estimate = 0.0
        self.left_at_step = self.planned
        self.step_started = self.started

    def elapsed(self) -> float:
        return self.now() - self.started

    def begin(self, step: Step) -> float:
        """A step starts (the previous one finished): update the pace, and return the seconds left from now."""
        now = self.now()
        elapsed = now - self.started
        pace = elapsed / self.done_estimate if self.done_estimate > 0 else 1.0
        self.left_at_step = max(0.0, self.planned - self.done_estimate) * pace
        self.step_started = now
        self.done_estimate += self.estimates.get(id(step), 0.0)
        return self.left_at_step

    def left(self) -> float:
        """Seconds left now: the estimate made when the current step began, counted down since."""
        return max(0.0, self.left_at_step - (self.now() - self.step_started))


class StepLines:
    """One line per step on a log: '[3/12 25%] 0:01:23 elapsed, ~0:04:10 left: cuda:0 bfloat16 search'."""

    def __init__(self, steps: Sequence[Step], estimates: Sequence[float], concurrent: bool,
                 out: TextIO | None = None, eta: Eta | None = None) -> None:  # fmt: skip
        self.eta = eta or Eta(steps, estimates, concurrent)
        self.total = len(steps)
        self.done = 0
        self.out = out or sys.stderr

    def step(self, step: Step) -> None:
        elapsed = self.eta.elapsed()
        left = self.eta.begin(step)
        self.done += 1
        pct = 100 * (self.done - 1) // max(1, self.total)
        print(f"[{self.done}/{self.total} {pct}%] {clock(elapsed)} elapsed, ~{clock(left)} left: {step.label}",
              file=self.out, flush=True)  # fmt: skip

    def finished(self, measured: int) -> None:
        print(f"[done] {clock(self.eta.elapsed())}: {measured} measurements", file=self.out, flush=True)


class Progress:
    """Progress of one verb's steps on stderr: a live bar on a terminal (steps done, elapsed, ~left), one line per step
    in a log, nothing with quiet. Hand step/measured to bench.runner.execute (or the suite), steps_of(label) to a
    training run for its inner bar, and sweep(label, total) to a loop without steps."""

    def __init__(self, quiet: bool = False, *, concurrent: bool = True, config: dict[str, Any] | None = None,
                 count: Callable[[], int] | None = None, show_plan: bool = False) -> None:  # fmt: skip
        from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bars
        from rich.text import Text

        owner = self

        class Left(ProgressColumn):
            """~h:mm:ss left for the plan's bar, read from the Eta at every refresh (so it counts down between steps)."""

            def render(self, task: Any) -> Text:
                return Text(owner.left_text() if task.id == owner.task else "", style="cyan")

        self.quiet, self.concurrent, self.config, self.show_plan = quiet, concurrent, config, show_plan
        self.count = count or (lambda: self.measured_count)
        self.measured_count = 0
        #: a terminal gets live bars; a log (Slurm, CI) gets one line per step instead
        self.lines_mode = not quiet and not interactive()
        self.bars = Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), Left(),
                         console=stderr(), disable=quiet or self.lines_mode, transient=True)  # fmt: skip
        self.eta: Eta | None = None
        self.lines: StepLines | None = None
        self.task: Any = None
        self.detail: Any = None
        self.label = ""
        self.done = -1

    def plan(self, steps: Sequence[Step]) -> None:
        """The steps about to run: the plan line (when asked for) and the bar or lines over them."""
        estimates = [estimate_s(s, self.config) for s in steps]
        if self.show_plan:
            self.say(plan_line(steps, estimates, self.concurrent))
        self.eta = Eta(steps, estimates, self.concurrent)
        if self.lines_mode:
            self.lines = StepLines(steps, estimates, self.concurrent, eta=self.eta)
        self.task = self.bars.add_task("starting", total=len(steps))

    def say(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)

    def left_text(self) -> str:
        """What the bar shows of the time left: '~0:04:10 left' (empty before the plan is known)."""
        return f"~{clock(self.eta.left())} left" if self.eta else ""

    def _show(self) -> None:
        if self.task is None:
            return
        self.bars.update(self.task, description=f"{self.label} ({self.count()} measured)", completed=self.done)

    def step(self, step: Step) -> None:
        self.label, self.done = step.label, self.done + 1
        if self.lines:
            self.lines.step(step)
        elif self.eta:
            self.eta.begin(step)
        self._show()

    def measured(self, m: object = None) -> None:
        self.measured_count += 1
        self._show()

    def steps_of(self, label: str) -> Callable[[int, int], None]:
        """progress(done, total) for one training run: a second bar while it runs, gone when it ends."""

        def update(done: int, total: int) -> None:
            if self.detail is None:
                self.detail = self.bars.add_task(f"  {label}: steps", total=total)
            self.bars.update(self.detail, completed=done, total=total)
            if done >= total:
                self.bars.remove_task(self.detail)
                self.detail = None

        return update

    def sweep(self, label: str, total: int) -> Callable[[], None]:
        """advance() for a loop of `total` items outside the plan (a collective sweep): a bar of its own."""
        task = self.bars.add_task(label, total=total)
        return lambda: self.bars.advance(task)

    def finished(self) -> None:
        if self.lines:
            self.lines.finished(self.count())

    def __enter__(self) -> Self:
        self.bars.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.bars.__exit__(kind, exc, tb)
