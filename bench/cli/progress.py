"""What a long run says on stderr when nobody watches a terminal (Slurm, CI, kubectl logs): the plan before it starts
(devices x steps, whether GPUs run at once, an estimated duration), then one line per step with the time elapsed and an
estimate of what remains; and the one warning the command line adds to a measurement: a median far from the best."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from bench import runner
from bench.report.model import Measurement
from bench.workloads import matmul_search as ms

#: A measurement whose median iteration is this many times slower than its best: the device was shared or throttled
#: for much of the run (a loaded CPU gave median 2.8 GFLOPS against a best of 188.9), so the median is not its speed.
FAR_FROM_BEST = 1.5


def far_from_best(m: Measurement) -> dict[str, str] | None:
    """The warning for a measured entry whose median is FAR_FROM_BEST x its best iteration, else None."""
    s = m.summary or {}
    median, best = s.get("median_s"), s.get("min_s")
    if m.status != "ok" or not median or not best or median < FAR_FROM_BEST * best:
        return None
    if any(w.get("code") == "median-far-from-best" for w in m.warnings):
        return None
    return {"code": "median-far-from-best",
            "message": f"median iteration {median / best:.1f}x slower than the best ({median:.3g} s vs {best:.3g} s)",
            "hint": "something else used the device for much of the run (bench doctor lists busy processes, "
                    "throttling and other GPU processes); rerun on an idle node"}  # fmt: skip


def flag_far_from_best(m: Measurement, save: Any) -> None:
    """Add the far-from-best warning to `m` (already saved) and save the report again, signed with it."""
    w = far_from_best(m)
    if w is not None:
        m.warnings.append(w)
        save()


def _kind(step: runner.Step) -> str:
    kind = (step.device or {}).get("kind")
    return kind or ("cuda" if step.label.startswith("cuda") else "cpu")


def estimate_s(step: runner.Step, config: dict[str, Any] | None = None) -> float:
    """A rough duration of one step from the budgets that bound it (what the plan line and the ETA use)."""
    kind, label = _kind(step), step.label
    mc = (config or {}).get("matmul", {})
    if label.endswith(" search"):
        return (mc.get("budget_s") or ms.BUDGET_S[kind]) + (ms.WINDOW_S[kind] if mc.get("window_s") is None
                                                            else mc["window_s"]) + (
            ms.SETTLE_S[kind] if mc.get("settle_s") is None else mc["settle_s"])  # fmt: skip
    if step.workload == "membw" or label.startswith("membw"):
        budget = (config or {}).get("membw", {}).get("budget_s") or 1.0
        return 6 * (budget + min(budget, 1.0))
    if step.workload == "train" or label.startswith("train"):
        return 30.0 if kind == "cpu" else 120.0
    return (mc.get("budget_s") or 1.0) + (mc.get("max_warmup_s") or 1.0)


def total_s(steps: Sequence[runner.Step], estimates: Sequence[float], concurrent: bool) -> float:
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


def plan_line(steps: Sequence[runner.Step], estimates: Sequence[float], concurrent: bool) -> str:
    devices = list(dict.fromkeys(str((s.device or {}).get("id") or s.label.split()[0]) for s in steps if s.device or s.lane))
    gpus = [d for d in devices if d.startswith("cuda")]
    how = ""
    if len(gpus) > 1:
        how = "; the GPUs at the same time, each in its own thread" if concurrent else \
            "; the GPUs ONE AFTER ANOTHER (--sequential / suite.concurrent_devices = false)"
    return (f"plan: {len(steps)} steps on {len(devices) or 1} device(s) ({', '.join(devices) or 'cpu'}){how}; "
            f"estimated {clock(total_s(steps, estimates, concurrent))} (from the budgets; h:mm:ss)")  # fmt: skip


def interactive(stream: TextIO | None = None) -> bool:
    """A terminal someone watches (a live bar), or a log (lines). BENCH_PROGRESS=lines forces lines."""
    if os.environ.get("BENCH_PROGRESS") == "lines":
        return False
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


class StepLines:
    """One line per step on a log: '[3/12 25%] 0:01:23 elapsed, ~0:04:10 left: cuda:0 bfloat16 search'. The estimate
    of what remains scales the budgets' estimate by how long the finished steps really took."""

    def __init__(self, steps: Sequence[runner.Step], estimates: Sequence[float], concurrent: bool,
                 out: TextIO | None = None) -> None:  # fmt: skip
        self.estimates = {id(s): e for s, e in zip(steps, estimates, strict=True)}
        self.total = len(steps)
        self.planned = total_s(steps, estimates, concurrent)
        self.started = time.monotonic()
        self.done = 0
        self.done_estimate = 0.0
        self.out = out or sys.stderr

    def step(self, step: runner.Step) -> None:
        elapsed = time.monotonic() - self.started
        pace = elapsed / self.done_estimate if self.done_estimate > 0 else 1.0
        left = max(0.0, self.planned - self.done_estimate) * pace
        self.done += 1
        self.done_estimate += self.estimates.get(id(step), 0.0)
        pct = 100 * (self.done - 1) // max(1, self.total)
        print(f"[{self.done}/{self.total} {pct}%] {clock(elapsed)} elapsed, ~{clock(left)} left: {step.label}",
              file=self.out, flush=True)  # fmt: skip

    def finished(self, measured: int) -> None:
        print(f"[done] {clock(time.monotonic() - self.started)}: {measured} measurements", file=self.out, flush=True)
