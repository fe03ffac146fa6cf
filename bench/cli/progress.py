"""What a verb says on stderr while it measures, one helper for every verb: the plan before a long run starts (devices x
steps, whether GPUs run at once, an estimated duration), then progress. A terminal gets a live bar with the time
elapsed and an estimate of what remains; a log (Slurm, CI, kubectl logs: no terminal) gets one line per step with the
same two figures. Both take the remaining time from one Eta: the budgets' estimate of each step, scaled by how long
the finished steps really took."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
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
        budget = mc.get("budget_s") or choices.SEARCH_BUDGET_S[kind]
        verdict = _search_support(step)
        if verdict == "unsupported":
            return 0.1  # recorded as skipped, with why: nothing is measured
        if verdict == "emulated":
            # bench.workloads.matmul_search: a precision the device emulates is measured once, small, as the sweep's
            # first coarse measurement (warm-up and timed, each at most the coarse share split among the CPU sizes),
            # and not searched: on the 2-core VM (no AVX512-FP16) float16's search took 1.0-1.3 s against the 32.5 s
            # a full search is planned at, and every estimate before it read ~30 s high (2026-12-07, 17:18-18:10 UTC)
            return settle + budget * COARSE_SHARE / SEARCH_SIZES
        # bench.workloads.matmul_search: the sweep, re-measuring and the final full-length shapes end at the budget
        # (the finals are reserved inside it, and get what the sweep leaves; past it only when the one final that
        # must run does not fit), then the MSMF window after up to 0.5 s of warm-up, and the settling before.
        return budget + window + 0.5 + settle
    if step.workload == "membw" or label.startswith("membw"):
        # bench.workloads.membw: STREAM's four kernels, and on a GPU the two host<->device copies, each a budget of
        # timed iterations after a warm-up that stops once settled (at most min(budget, 1 s)): a quarter of that
        # here. Measured on the 2-core VM, budget 0.3 s: 1.4-1.7 s in all (the old 6 x 2 x budget said 3.6 s).
        budget = (config or {}).get("membw", {}).get("budget_s") or 1.0
        kernels = 6 if kind == "cuda" else 4
        return kernels * (budget + 0.25 * min(budget, 1.0))
    if step.workload == "train" or label.startswith("train"):
        return TRAIN_GUESS_S[kind]
    return (mc.get("budget_s") or FIXED_S) + (mc.get("max_warmup_s") or FIXED_S)


def bound_s(step: Step, config: dict[str, Any] | None = None) -> float | None:
    """Seconds after its begin by which `step` ends by its own budget, when it has one: a search the device runs
    natively (or whose support is not known) ends its sweep, re-measuring and finals at its budget, then holds its
    MSMF window (bench.workloads.matmul_search), so settle + budget + window + 0.5 s of the window's warm-up; past it
    only by what no plan knows (the overhead around the phases, one stalled iteration). None for any other step (an
    emulated precision's one small measurement, training, membw: bounded by their work). While a search runs, the
    time left counts down to no later than this (Eta.step_left), whatever its estimate (the history's, a slower
    run's) or its class's pace."""
    if step_class(step) != "search" or _search_support(step) not in ("native", None):
        return None
    return estimate_s(step, config)


#: A step timed by a budget (a search, membw, a fixed matmul) is never planned from a history entry longer than this
#: many times the budgets' estimate of it (estimate_s: a search's 30 s budget + window + warm-up = 32.5 s on a CPU,
#: 325 s at most). The slowest run recorded here: a search 1.4 x its estimate, membw 1.8 x, under load 5.
HISTORY_FACTOR = 10.0
#: A training step, bounded by its work and not by a budget, is never planned from an entry longer than its work
#: (warm-up + timed steps x the analytic FLOPs a step) at this rate plus its setup allowance: 1 GFLOP/s, 50-100x
#: below what the 2-core VM trains at (gpt tiny: 49 GFLOP in 0.5-0.6 s of steps), so 58 min for gpt small on a CPU.
HISTORY_FLOOR_FLOPS = 1e9
#: Any other step (a job phase such as comm, a label bench cannot read): at most a day.
HISTORY_MAX_S = 86_400.0


def limit_s(step: Step, config: dict[str, Any] | None = None) -> float:
    """The longest duration a step's history entry may say (StepHistory): what the step's own config allows."""
    from bench import figures

    cls = step_class(step)
    if cls in ("search", "membw") or step.workload == "matmul":
        return HISTORY_FACTOR * estimate_s(step, config)
    spec = train_spec(step, config) if _is_train(step) else None
    if spec is not None:
        flops = figures.train_step_flops(spec.model, spec.layers, spec.width, spec.seq_len, spec.batch, spec.vocab)
        return TRAIN_SETUP_S[_kind(step)] + (spec.warmup + spec.steps) * flops / HISTORY_FLOOR_FLOPS
    return HISTORY_MAX_S


def _flat(entry: object) -> bool:
    """A step history entry as StepHistory writes it: an object whose values are all numbers."""
    return isinstance(entry, dict) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in entry.values()
    )


def _shown(value: object) -> str:
    """A value from a file as a warning shows it: its repr, at most 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


#: bench.workloads.matmul_search's COARSE_SHARE of a search's budget and the number of its CPU_SIZES (not imported:
#: progress is imported by every verb, the search module pulls in torch; tests/cli/test_progress_eta4.py holds them equal)
COARSE_SHARE, SEARCH_SIZES = 0.5, 10


def _search_support(step: Step) -> str | None:
    """'native', 'emulated' or 'unsupported' for the precision a search step ('DEVICE PRECISION[ fast-accum] search')
    measures on its device (bench.hardware.devices.support), None when the step does not say (no device facts)."""
    words = step.label.split()
    if len(words) < 3 or not step.device or "kind" not in step.device:
        return None
    name = words[-3] if words[-2] == "fast-accum" and len(words) >= 4 else words[-2]
    try:
        from bench import precision as prec
        from bench.hardware import devices

        facts = {f.name: step.device[f.name] for f in dataclasses.fields(devices.DeviceFacts) if f.name in step.device}
        facts["isa_flags"] = tuple(facts.get("isa_flags") or ())
        return devices.support(devices.DeviceFacts(**facts), name, prec.get(name).cuda_only)[0]
    except (KeyError, TypeError, ValueError):
        return None


#: Seconds of a training step when nothing measured says better: no history here and no matmul measured yet in this
#: run at the training precision (a suite without matmul). Only the plan line's first estimate uses it.
TRAIN_GUESS_S = {"cpu": 30.0, "cuda": 120.0}
#: A training step's FLOP rate as a share of the same device's matmul rate at its precision (the best measured in this
#: run). tests/perf/train_vs_mamf.py on the 2-core CPU VM (float32): gpt tiny 0.26, mlp tiny 0.10, gpt small 0.35,
#: mlp small 0.53 -- a step is its matmuls plus what they cannot hide. 0.25 is within about x2 of each; the step's own
#: pace replaces it once a tenth of its training steps are done, and the pace of a finished step of the same model
#: replaces it for that model's later presets.
TRAIN_SHARE_OF_MATMUL = 0.25
#: Seconds the first training step of a run spends outside its timed steps, once per process: autograd, the optimizer
#: and their kernels used for the first time. Measured on the 2-core VM: the first training run in a process spent
#: 2.4 s outside its steps (load 4.9), the same model again 0.06 s (mlp tiny) and 0.21-0.25 s (gpt tiny), model and
#: batches built included; idle, gpt tiny (first) took 1.7 s with 0.7 s of steps and mlp tiny (second) 0.1 s in all
#: against the 1.0 s this once added to every training step. Later training steps get none: their warm-up steps are
#: counted in their work. In the eight quiet suite runs traced on 2026-12-07 (01:41-04:37 UTC, tests/perf/
#: eta_honesty.py --keep), gpt tiny, first, took 1.71-2.32 s, of which its warm-up and timed steps 0.47-0.61 s: 1.20-1.71 s
#: outside them, median 1.39; at 1.0 the step's estimate read 1.60-1.73 s against 1.71-2.32 s taken, and a 1 s time
#: left was shown with 2.4 s to go (quiet, 13:02 UTC). The CUDA figure is an allowance for building the model and
#: warming CUDA up, not measured here (no GPU); nor is the 0.25 share on a GPU: its first step's progress corrects it.
TRAIN_SETUP_S = {"cpu": 1.4, "cuda": 10.0}


def train_spec(step: Step, config: dict[str, Any] | None) -> Any | None:
    """The TrainSpec a suite's training step runs (label 'train MODEL PRESET on DEVICE', [train] of the config), or
    None when the label does not name one."""
    from bench.model.specs import preset

    words = step.label.split()
    if len(words) < 3 or words[0] != "train":
        return None
    tc = (config or {}).get("train", {})
    precision = tc.get("precision") or ("bfloat16" if _kind(step) == "cuda" else "float32")
    try:
        return preset(words[1], words[2], steps=tc.get("steps"), warmup=tc.get("warmup_steps"), precision=precision)
    except (ValueError, TypeError):
        return None


def train_estimate_s(
    step: Step, config: dict[str, Any] | None, matmul_tflops: float, first: bool = True, share: float | None = None
) -> float | None:
    """A training step's seconds from its planned work and a measured rate: (warm-up + timed steps) x the analytic
    FLOPs per step at `share` x `matmul_tflops`, plus TRAIN_SETUP_S when it is the `first` training step of the run
    (a once-per-process cost). The rate is a training step's own where one finished in this run (share 1: see
    Progress._learn_train_rate), else TRAIN_SHARE_OF_MATMUL of the device's best matmul at the training precision.
    None without a spec or a rate."""
    from bench import figures

    spec = train_spec(step, config)
    if spec is None or matmul_tflops <= 0:
        return None
    flops = figures.train_step_flops(spec.model, spec.layers, spec.width, spec.seq_len, spec.batch, spec.vocab)
    setup = TRAIN_SETUP_S[_kind(step)] if first else 0.0
    share = TRAIN_SHARE_OF_MATMUL if share is None else share
    return setup + (spec.warmup + spec.steps) * flops / (share * matmul_tflops * 1e12)


def _is_train(step: Step) -> bool:
    return step.workload == "train" or step.label.startswith("train ")


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


def clock(seconds: float, nearest: bool = False) -> str:
    """h:mm:ss of `seconds`: whole seconds elapsed (a stopwatch), or with `nearest` the nearest whole second (a time
    left: 1.9 s shown as 0:00:01 is half a second more wrong than 0:00:02, and on a short step that is the error)."""
    seconds = max(0, round(seconds) if nearest else int(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def plan_line(steps: Sequence[Step], estimates: Sequence[float], concurrent: bool) -> str:
    devices = list(
        dict.fromkeys(str((s.device or {}).get("id") or s.label.split()[0]) for s in steps if s.device or s.lane)
    )
    gpus = [d for d in devices if d.startswith("cuda")]
    how = ""
    if len(gpus) > 1:
        how = (
            "; the GPUs at the same time, each in its own process"
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


#: Seconds between heartbeat lines in a log while one step runs (the issue: at least once a minute).
HEARTBEAT_S = 30.0
#: Seconds between refreshes of the live bar's position inside a step.
BAR_REFRESH_S = 1.0


def step_class(step: Step) -> str:
    """What kind of work a step is, for pacing: steps of one class run at one pace (a search, a fixed shape, membw,
    train, comm), so a quick membw step says nothing about how long a training run takes."""
    label = step.label
    if label.endswith(" search"):
        return "search"
    if step.workload == "membw" or label.startswith("membw"):
        return "membw"
    if step.workload == "train" or label.startswith("train"):
        return "train " + label.split()[1] if len(label.split()) > 1 else "train"
    return step.workload if step.workload != "step" else "fixed"


class Eta:
    """Time elapsed and left over a plan of steps. Each step's expected duration is its estimate (the budgets', or
    what the same step took in the last run of this suite here: see StepHistory) times the pace of its group: what
    the group's finished steps took over their estimates, shrunk toward a prior pace (pace()), so that one step's
    run-to-run spread does not set every later step's estimate. The running step counts down from its expected
    duration (and, past it, still needs a share of what it ran), or, when it reports how far it is (a training
    run's steps), from the time its done share took. Lanes
    run at once when concurrent (the longest lane counts). What is left never rises by more than the time elapsed
    since it was last read: an estimate that jumps up is one nobody can plan by."""

    def __init__(self, steps: Sequence[Step], estimates: Sequence[float], concurrent: bool,
                 now: Callable[[], float] = time.monotonic, known: Sequence[Step] = (),
                 bounds: Mapping[str, float] | None = None) -> None:  # fmt: skip
        self.steps = list(steps)
        #: steps whose estimate is what they took in the last run here (StepHistory)
        self.known = {id(s) for s in known}
        self.estimates = {id(s): e for s, e in zip(steps, estimates, strict=True)}
        self.concurrent = concurrent
        self.planned = total_s(steps, estimates, concurrent)
        self.now = now
        self.started = now()
        self.running: dict[str | None, tuple[Step, float]] = {}
        self.done: set[int] = set()
        #: the finished steps, in the order they finished: (step, seconds it took, its estimate then)
        self.finished: list[tuple[Step, float, float]] = []
        self.durations: dict[str, float] = {}  # label -> seconds, of finished steps
        self.fraction: dict[int, float] = {}
        #: (when, fraction) of each running step's first report past 0: where its own pace is measured from
        self.first_progress: dict[int, tuple[float, float]] = {}
        self.last: tuple[float, float] | None = None  # (when, left) last reported
        self.lock = threading.Lock()
        #: seconds after its begin by which a step ends by its own budget (a search: its deadline, then its MSMF
        #: window: bound_s), by label; without `bounds`, a search estimated from the budgets is estimated at its bound
        #: (estimate_s), so its estimate is taken for it. A step timed by the history ends by the later of its bound
        #: and what it took last time: its phases' overhead is past the bound (int8's search on the 2-core VM: 33.6 s
        #: for a 32.5 s bound, quiet), and its bound alone said 8 s left with 9.7 s to go in a replay of that run
        self.bounds: dict[int, float] = {}
        if bounds is not None:
            self.bound(bounds)
        else:
            for s, e in zip(steps, estimates, strict=True):
                if id(s) not in self.known and step_class(s) == "search" and _search_support(s) in ("native", None):
                    self.bounds[id(s)] = e

    def bound(self, bounds: Mapping[str, float]) -> None:
        """Each step's bound (bound_s) by label, in place of those taken from the estimates (Progress.plan calls this
        after making the Eta, so that a wrapper of Eta.__init__, tests/perf/eta_honesty.py's record(), still fits)."""
        with self.lock:
            self.bounds = {}
            for s in self.steps:
                b = bounds.get(s.label)
                if b is not None:
                    e = self.estimates.get(id(s), 0.0)
                    self.bounds[id(s)] = max(b, e) if id(s) in self.known else b

    def elapsed(self) -> float:
        return self.now() - self.started

    def _lane(self, step: Step) -> str | None:
        return step.lane if self.concurrent else None

    def _finish(self, lane: str | None, now: float) -> None:
        held = self.running.pop(lane, None)
        if held is None:
            return
        step, began = held
        self.done.add(id(step))
        seconds = now - began
        self.durations[step.label] = seconds
        self.finished.append((step, seconds, self.estimates.get(id(step), 0.0)))

    def begin(self, step: Step) -> float:
        """A step starts (the previous one of its lane finished): return the seconds left from now."""
        now = self.now()
        with self.lock:
            self._finish(self._lane(step), now)
            self.running[self._lane(step)] = (step, now)
        return self.left()

    def end(self) -> None:
        """Every step finished: the running ones are done now."""
        now = self.now()
        with self.lock:
            for lane in list(self.running):
                self._finish(lane, now)

    def reestimate(self, step: Step, seconds: float) -> None:
        """A better estimate of a step that has not started (a rate measured since the plan was made). A step whose
        estimate is what it took here last time keeps it: that is measured already."""
        with self.lock:
            if id(step) in self.known or id(step) in self.done or any(s is step for s, _ in self.running.values()):
                return
            self.estimates[id(step)] = seconds

    def progress(self, step_label: str, fraction: float) -> None:
        """The running step `step_label` says how far it is (0..1)."""
        with self.lock:
            for step, _ in self.running.values():
                if step.label == step_label:
                    self.fraction[id(step)] = min(max(fraction, 0.0), 1.0)
                    if fraction > 0:
                        self.first_progress.setdefault(id(step), (self.now(), self.fraction[id(step)]))

    def expected(self, step: Step) -> float:
        """The seconds `step` should take in all: its estimate at the pace so far (pace())."""
        return self.estimates.get(id(step), 0.0) * self.pace(step)

    def group(self, step: Step) -> tuple[bool, str]:
        """The steps whose pace says something about `step`'s: every step timed by the history (the machine is busier
        or quieter than then, whatever the step), or, for a step estimated from the budgets, its own class (the
        budgets misjudge each class differently)."""
        if id(step) in self.known:
            return (True, "")
        return (False, step_class(step))

    #: How many typical steps of its group a prior pace weighs against the finished ones: pace = (seconds taken +
    #: W x prior) / (seconds estimated + W), W = PRIOR_STEPS x the mean estimate of the group's planned steps. One
    #: step's run-to-run spread is large (a search that picks bigger shapes took 62% longer than the run before, on
    #: an idle machine), and without a prior its pace alone set every later step's estimate; with it, one step of the
    #: mean's length moves the pace a third of the way (1/(1 + 2)), and a machine really slower or faster takes over
    #: as its steps finish. Chosen on recorded runs of the smoke and node suites (tests/perf/eta_honesty.py
    #: --replay): see docs/ops.md.
    PRIOR_STEPS = 2.0

    def prior(self, group: tuple[bool, str]) -> float:
        """The pace a group is expected to go at before its own steps say otherwise: 1 for the history's steps (this
        machine, this config: the same as last time until shown otherwise); for a class timed by the budgets, the
        pace of every budget-timed step finished so far (a loaded machine is slow at everything; the budgets
        themselves err the same way for every class of a run), else 1."""
        if group[0]:
            return 1.0
        actual = sum(t for s, t, _ in self.finished if not self.group(s)[0])
        estimated = sum(e for s, _, e in self.finished if not self.group(s)[0])
        return actual / estimated if actual > 0 and estimated > 0 else 1.0

    def pace(self, step: Step) -> float:
        """How much longer than its estimate `step` should take: the finished steps of its group() over their
        estimates, shrunk toward the group's prior() by PRIOR_STEPS of the group's typical steps."""
        group = self.group(step)
        planned = [self.estimates.get(id(s), 0.0) for s in self.steps if self.group(s) == group]
        weight = self.PRIOR_STEPS * sum(planned) / max(len(planned), 1)
        actual = estimated = 0.0
        for s, took, estimate in self.finished:
            if self.group(s) == group:
                actual, estimated = actual + took, estimated + estimate
        if estimated + weight <= 0:
            return 1.0
        return (actual + weight * self.prior(group)) / (estimated + weight)

    #: A running step that has gone on longer than expected still needs this share of the time it has run: the
    #: steps that overrun are the slow ones (a search at bigger shapes, a busier machine), and saying 0 s left while
    #: one runs on is the most wrong a heartbeat can be (an int8 search expected at 49 s ran 70: at 60 s the line
    #: said 7 s left with 24 s to go). Only past the expected time: before it, a step bounded by its budget (a
    #: search, which now ends there) is as far from its end as the expectation says.
    OVERRUN_SHARE = 0.25
    #: A running step within its expected time still needs at least this share of it (the same step ends a little
    #: past its estimate about as often as a little before).
    END_SHARE = 0.05

    def step_left(self, step: Step, began: float, now: float) -> float:
        """Seconds the running step still needs."""
        inside = now - began
        f = self.fraction.get(id(step), 0.0)
        if 0.1 <= f < 1.0 and inside > 1.0:  # its own pace, once it has done a tenth
            # measured from its first report past 0, so that what came before its first step (building the model,
            # compiling it: a minute, for a few minutes of steps) is not taken for the pace of every step left
            since, at = self.first_progress.get(id(step), (began, 0.0))
            if f > at and now - since > 1.0:
                return (now - since) * (1 - f) / (f - at)
            return inside * (1 - f) / f
        expected = self.expected(step)
        bound = self.bounds.get(id(step))
        if bound is not None:
            # a step with a deadline of its own (a search ends at its budget, then its window) is expected by its
            # class's pace but never past that deadline: a search whose class ran slow before ends at its budget all
            # the same. Not the deadline alone: it includes the window's warm-up allowance (0.5 s), which a search
            # rarely spends, and the smoke suite's 3 s searches took 4.0 s of their 4.5 s bound (pace 0.89), where
            # the bound said 8 s left with 7 s to go (a replay of the quiet runs of 2026-12-07 19:44 UTC,
            # tests/perf/eta_honesty.py)
            expected = min(expected, bound)
        if inside <= expected:
            # before its expected end, what the expectation leaves (at least a sliver): a search now ends at its
            # budget, so the quarter-of-what-it-ran floor, taking over at 80% of the expected time, said 7.6 s left
            # in a 32.6 s search at 30.4 s that ended 2.2 s later (quiet node suite, 2026-12-07)
            return max(expected - inside, self.END_SHARE * expected)
        return max(self.END_SHARE * expected, self.OVERRUN_SHARE * inside)

    def share_done(self, step: Step, began: float) -> float:
        """How far the running step is, 0..1 (what the live bar shows inside a step)."""
        f = self.fraction.get(id(step))
        if f is not None:
            return f
        expected = self.expected(step)
        return min(0.95, (self.now() - began) / expected) if expected > 0 else 0.0

    def left(self) -> float:
        """Seconds left now."""
        now = self.now()
        with self.lock:
            running = {id(s): (s, t) for s, t in self.running.values()}
            lanes: dict[str | None, float] = {}
            rest = 0.0
            for step in self.steps:
                if id(step) in self.done:
                    continue
                seconds = self.step_left(*running[id(step)], now) if id(step) in running else self.expected(step)
                lane = self._lane(step)
                if lane is None:
                    rest += seconds
                else:
                    lanes[lane] = lanes.get(lane, 0.0) + seconds
            left = max(lanes.values(), default=0.0) + rest
            if self.last is not None:
                left = min(left, self.last[1] + (now - self.last[0]))
            self.last = (now, left)
            return left


class StepHistory:
    """What each step of a suite took the last time it ran here, kept next to the results (RESULTS_DIR/
    step-seconds.json) under a digest of the suite config, so a run's estimates come from this machine rather than
    from the budgets alone (a training preset's duration is not in any budget). One JSON object; a file that cannot be
    read is no history, with a warning (`problems`), never a traceback.

    The file is input like any other: an entry is a step's duration only when it is a finite number of seconds, at
    least 0 and at most what the step's own config allows (limit_s: HISTORY_FACTOR x the budgets' estimate for a
    step a budget bounds, a training step's work at HISTORY_FLOOR_FLOPS, HISTORY_MAX_S for any other). Anything else
    is one ignored entry with a warning, and that step is estimated from the budgets: an entry of 1e6 s (a corrupt or
    hostile file) planned ~12 days before, where the step's config allows a search 10 x 32.5 s."""

    FILE = "step-seconds.json"

    def __init__(self, directory: Path, config: dict[str, Any] | None) -> None:
        self.path = directory / self.FILE
        self.config = config
        text = json.dumps(config or {}, sort_keys=True, default=str)
        self.key = hashlib.sha256(text.encode()).hexdigest()[:16]
        #: what was ignored, one line each, for the operator (Progress.plan says them as warnings)
        self.problems: list[str] = []
        self.all: dict[str, Any] = {}
        data: Any = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                # other suites' entries are kept only as flat objects of numbers, so that what save() writes back is
                # never nested: another suite's entry nested 900 deep was read here and raised RecursionError in
                # json.dumps a few frames deeper (attack17); one that is not is dropped when this run saves
                self.all = {k: v for k, v in data.items() if k != self.key and _flat(v)}
            else:
                self.problems.append(f"{self.path}: not a JSON object; no step history used")
        except FileNotFoundError:
            pass
        except (OSError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested past the parser's stack
            self.problems.append(f"{self.path}: unreadable ({type(exc).__name__}); no step history used")
        seen = data.get(self.key) if isinstance(data, dict) else None
        if seen is not None and not isinstance(seen, dict):
            self.problems.append(f"{self.path}: this suite's entry is not an object; no step history used")
        self.seconds: dict[str, float] = {}
        for k, v in seen.items() if isinstance(seen, dict) else ():
            # 1e7 s (116 days): past any limit_s, and an int too large for a float is refused here, not raised
            if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e7:
                self.seconds[k] = float(v)
            else:
                self.problems.append(f"{self.path}: {_shown(k)} ignored: {_shown(v)} is not a number of seconds")

    def known(self, steps: Sequence[Step]) -> dict[str, float]:
        """The recorded seconds of those of `steps` whose entry is within limit_s of their config; each entry over it
        is ignored with a problem said (the step is then estimated from the budgets)."""
        out = {}
        for step in steps:
            seconds = self.seconds.get(step.label)
            if seconds is None:
                continue
            limit = limit_s(step, self.config)
            if seconds <= limit:
                out[step.label] = seconds
            else:
                self.problems.append(f"{self.path}: {_shown(step.label)} ignored: {seconds:.6g} s is more than the "
                                     f"{limit:.6g} s its config allows")  # fmt: skip
        return out

    def save(self, durations: dict[str, float]) -> None:
        """Record this run's step durations (a partial run's too: they are as true)."""
        self.all[self.key] = {**self.seconds, **durations}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.all, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
        except (OSError, ValueError, RecursionError):
            pass  # estimates are a convenience: a read-only results directory must not fail the run


class StepLines:
    """One line per step on a log: '[3/12 25%] 0:01:23 elapsed, ~0:04:10 left: cuda:0 bfloat16 search', a heartbeat
    line while a step runs long, and a last line with the total time."""

    def __init__(self, steps: Sequence[Step], estimates: Sequence[float], concurrent: bool,
                 out: TextIO | None = None, eta: Eta | None = None) -> None:  # fmt: skip
        self.eta = eta or Eta(steps, estimates, concurrent)
        self.total = len(steps)
        self.done = 0
        self.out = out or sys.stderr
        self.label = ""
        self.step_began = self.eta.now()
        #: when the last line was printed (time.monotonic): the heartbeat comes HEARTBEAT_S after it
        self.printed = time.monotonic()

    def step(self, step: Step) -> None:
        elapsed = self.eta.elapsed()
        left = self.eta.begin(step)
        self.done += 1
        self.label, self.step_began = step.label, self.eta.now()
        pct = 100 * (self.done - 1) // max(1, self.total)
        self.printed = time.monotonic()
        print(f"[{self.done}/{self.total} {pct}%] {clock(elapsed)} elapsed, ~{clock(left, True)} left: {step.label}",
              file=self.out, flush=True)  # fmt: skip

    def heartbeat(self) -> None:
        """A line saying the run is alive inside a long step: how long the step has run, elapsed, left."""
        inside = self.eta.now() - self.step_began
        self.printed = time.monotonic()
        print(f"[{self.done}/{self.total} ...] {clock(self.eta.elapsed())} elapsed, ~{clock(self.eta.left(), True)} left: "
              f"{self.label} running for {clock(inside)}", file=self.out, flush=True)  # fmt: skip

    def finished(self, measured: int) -> None:
        print(f"[done] {clock(self.eta.elapsed())} in total: {measured} measurements", file=self.out, flush=True)


class Progress:
    """Progress of one verb's steps on stderr: a live bar on a terminal (steps done, moving inside a step, elapsed,
    ~left), one line per step in a log with a heartbeat every HEARTBEAT_S inside a long step, and a last line with the
    total time in both; nothing with quiet. Hand step/measured to bench.runner.execute (or the suite), steps_of(label)
    to a training run for its inner bar, and sweep(label, total) to a loop without steps. With `history` (a results
    directory) the estimates come from what each step took the last time this suite ran there (StepHistory)."""

    def __init__(self, quiet: bool = False, *, concurrent: bool = True, config: dict[str, Any] | None = None,
                 count: Callable[[], int] | None = None, show_plan: bool = False,
                 history: Path | None = None) -> None:  # fmt: skip
        from rich.progress import BarColumn, ProgressColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bars
        from rich.text import Text

        owner = self

        class Left(ProgressColumn):
            """~h:mm:ss left for the plan's bar, read from the Eta at every refresh (so it counts down between steps)."""

            def render(self, task: Any) -> Text:
                return Text(owner.left_text() if task.id == owner.task else "", style="cyan")

        class Done(ProgressColumn):
            """Whole steps done of the plan (the bar itself also moves inside a step)."""

            def render(self, task: Any) -> Text:
                return Text(f"{int(task.completed)}/{int(task.total or 0)}")

        self.quiet, self.concurrent, self.config, self.show_plan = quiet, concurrent, config, show_plan
        self.count = count or (lambda: self.measured_count)
        self.measured_count = 0
        #: (device id, precision) -> the best matmul TFLOPS measured so far in this run
        self.rates: dict[tuple[str, str], float] = {}
        #: (device id, precision[, model]) -> the TFLOPS a training step finished in this run ran at
        self.train_rates: dict[tuple[str, ...], float] = {}
        self.history = StepHistory(history, config) if history is not None else None
        #: a terminal gets live bars; a log (Slurm, CI) gets one line per step instead
        self.lines_mode = not quiet and not interactive()
        self.bars = Bars(TextColumn("{task.description}"), BarColumn(), Done(), TimeElapsedColumn(), Left(),
                         console=stderr(), disable=quiet or self.lines_mode, transient=True)  # fmt: skip
        self.eta: Eta | None = None
        self.lines: StepLines | None = None
        self.task: Any = None
        self.detail: Any = None
        self.label = ""
        self.done = -1
        self.current: tuple[Step, float] | None = None
        self.stop = threading.Event()
        self.ticker: threading.Thread | None = None
        self.ended = False

    def plan(self, steps: Sequence[Step]) -> None:
        """The steps about to run: the plan line (when asked for) and the bar or lines over them."""
        known = self.history.known(steps) if self.history else {}
        for problem in self.history.problems if self.history else ():
            self.say(f"warning: {problem} (estimated from the budgets instead)")
        estimates = [known.get(s.label, estimate_s(s, self.config)) for s in steps]
        if self.show_plan:
            line = plan_line(steps, estimates, self.concurrent)
            if known and all(s.label in known for s in steps):
                line = line.replace("(from the budgets;", "(from the last run of this suite here;")
            self.say(line)
        self.eta = Eta(steps, estimates, self.concurrent, known=[s for s in steps if s.label in known])
        self.eta.bound({s.label: b for s in steps if (b := bound_s(s, self.config)) is not None})
        if self.lines_mode:
            self.lines = StepLines(steps, estimates, self.concurrent, eta=self.eta)
        self.task = self.bars.add_task("starting", total=len(steps))
        if not self.quiet and self.ticker is None:
            self.ticker = threading.Thread(target=self._tick, name="bench-progress", daemon=True)
            self.ticker.start()

    def _tick(self) -> None:
        """Between steps: move the bar inside the running step, and print a heartbeat line to a log."""
        while not self.stop.wait(BAR_REFRESH_S):
            if self.lines is not None:
                if self.current is not None and time.monotonic() - self.lines.printed >= HEARTBEAT_S:
                    self.lines.heartbeat()
            else:
                self._show()

    def say(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)

    def left_text(self) -> str:
        """What the bar shows of the time left: '~0:04:10 left' (empty before the plan is known)."""
        return f"~{clock(self.eta.left(), True)} left" if self.eta else ""

    def _show(self) -> None:
        if self.task is None:
            return
        inside = 0.0
        if self.eta is not None and self.current is not None:
            inside = self.eta.share_done(*self.current)
        self.bars.update(self.task, description=f"{self.label} ({self.count()} measured)",
                         completed=max(self.done, 0) + inside)  # fmt: skip

    def step(self, step: Step) -> None:
        self.label, self.done = step.label, self.done + 1
        if self.lines:
            self.lines.step(step)
        elif self.eta:
            self.eta.begin(step)
        self.current = (step, self.eta.now() if self.eta else time.monotonic())
        self._show()

    def measured(self, m: object = None) -> None:
        self.measured_count += 1
        self._learn_rate(m)
        self._show()

    def _learn_rate(self, m: object) -> None:
        """A valid matmul or training run measured: the rate from which the training steps still to come are
        estimated (train_estimate_s) when no history here knows them. A finished training step's own rate (FLOPs of
        its warm-up and timed steps over their seconds), at the training's own shapes, replaces the matmul-based
        guess for every later training step on its device at its precision: the same model's rate where one ran,
        else the last training step's. A matmul rate (the best so far) is used only before any training ran."""
        if getattr(m, "status", None) != "ok" or self.eta is None:
            return
        device = str((getattr(m, "device", None) or {}).get("id"))
        spec = getattr(m, "spec", None) or {}
        precision = str(spec.get("precision"))
        if getattr(m, "workload", None) == "train":
            self._learn_train_rate(m, device, precision, str(spec.get("model")))
            return
        summary = getattr(m, "summary", None) or {}
        if getattr(m, "workload", None) != "matmul":
            return
        tflops = summary.get("tflops_median")
        if not isinstance(tflops, (int, float)) or tflops <= self.rates.get((device, precision), 0.0):
            return
        self.rates[device, precision] = float(tflops)
        self._reestimate_training(device, precision)

    def _learn_train_rate(self, m: object, device: str, precision: str, model: str) -> None:
        seconds = sum(getattr(m, "warmup_s", None) or []) + sum(getattr(m, "samples_s", None) or [])
        steps = len(getattr(m, "warmup_s", None) or []) + len(getattr(m, "samples_s", None) or [])
        work = getattr(m, "work_per_iteration", None)
        if seconds <= 0 or not steps or not isinstance(work, (int, float)) or work <= 0:
            return
        tflops = work * steps / seconds / 1e12
        self.train_rates[device, precision] = tflops
        self.train_rates[device, precision, model] = tflops
        self._reestimate_training(device, precision)

    def _reestimate_training(self, device: str, precision: str) -> None:
        """Every training step not begun on `device` at `precision`, at the best rate known for it."""
        assert self.eta is not None
        first = next((s for s in self.eta.steps if _is_train(s)), None)  # training steps run one after another
        for step in self.eta.steps:
            spec = train_spec(step, self.config) if _is_train(step) else None
            if spec is None or spec.precision != precision or str((step.device or {}).get("id", "cpu")) != device:
                continue
            own = self.train_rates.get((device, precision, spec.model)) or self.train_rates.get((device, precision))
            if own:
                seconds = train_estimate_s(step, self.config, own, first=False, share=1.0)
            else:
                seconds = train_estimate_s(step, self.config, self.rates[device, precision], first=step is first)
            if seconds is not None:
                self.eta.reestimate(step, seconds)

    def steps_of(self, label: str) -> Callable[[int, int], None]:
        """progress(done, total) for one training run: a second bar while it runs, gone when it ends; the plan's
        estimate of what is left follows its pace."""

        def update(done: int, total: int) -> None:
            if self.eta is not None and total > 0:
                self.eta.progress(label, done / total)
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

    def _end(self) -> None:
        self.stop.set()
        if self.eta is not None and not self.ended:
            self.ended = True
            self.eta.end()
            if self.history is not None:
                self.history.save(self.eta.durations)

    def finished(self) -> None:
        """The plan ran: the last line, with the total time (on a terminal too, once the bar is gone)."""
        self._end()
        if self.lines:
            self.lines.finished(self.count())
        elif self.eta is not None:
            self.say(f"done in {clock(self.eta.elapsed())}: {self.count()} measurements")

    def __enter__(self) -> Self:
        self.bars.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self._end()
        self.bars.__exit__(kind, exc, tb)
