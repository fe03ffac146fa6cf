"""Adaptive repetition: warm up until timings settle, then repeat inside a time budget.

Budgets count the timed durations themselves (not wall clock around them), so the number of iterations a given
sequence of timings produces is deterministic and testable with a scripted timer (tests/fakes/timer.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.measure.stats import MeasurementWarning, summarize, warnings_for
from bench.measure.timer import Timer

#: Warm-up has settled when the last SETTLE_WINDOW timings are within SETTLE_TOLERANCE of each other (max/min - 1).
SETTLE_WINDOW = 3
SETTLE_TOLERANCE = 0.05
#: Inside a slot (Policy.fill_s), a batch of timed iterations is at most this share of what is left of it: a slow-down
#: of up to this factor that begins inside a batch still ends inside the slot (attack16: at half of what was left, a
#: 7x slow-down ran a 2 s slot 2.4 s over).
SLOT_BATCHES = 8


@dataclass(frozen=True)
class Policy:
    """How long to warm up and to measure one workload."""

    budget_s: float = 1.0
    min_iterations: int = 5
    max_iterations: int = 10_000
    max_warmup_s: float = 1.0
    max_warmup_iterations: int = 50
    #: Seconds of warm-up and timed iterations together that the measurement fills, when set: its timed budget is
    #: what the warm-up leaves of them, never less than budget_s. A measurement given a slot of time (the matmul
    #: search's finals, bench.workloads.matmul_search) then takes that slot whether its warm-up settles in three
    #: iterations or runs out its max_warmup_s, where a fixed budget_s ended it early by the warm-up not spent. The
    #: slot is not run past except by budget_s itself: the warm-up stops where one more iteration would leave less
    #: than budget_s of it, and once budget_s is timed, an iteration starts only where the iterations so far say it
    #: ends inside the slot, in batches of at most 1/SLOT_BATCHES of what is left (collect).
    fill_s: float | None = None
    #: The timed iterations stop near budget_s whatever the iteration time does (the MSMF window,
    #: bench.workloads.matmul_search.window_policy): batched as inside a slot (fill_s), at most 1/SLOT_BATCHES of what
    #: is left of budget_s at a time, planned from the slower of the mean and the last batch's iteration. Without it a
    #: batch may be as long as everything timed so far (the doubling rule), and a slow-down inside it runs that long
    #: times the slow-down: a 2 s window under load took 11.8 s (issue 25's leftovers).
    bounded: bool = False

    def __post_init__(self) -> None:
        if self.budget_s <= 0 or self.max_warmup_s < 0 or (self.fill_s is not None and self.fill_s <= 0):
            raise ValueError("time budgets must be positive")
        if not 1 <= self.min_iterations <= self.max_iterations:
            raise ValueError("need 1 <= min_iterations <= max_iterations")


@dataclass(frozen=True)
class Sampled:
    warmup_s: list[float]
    samples_s: list[float]
    settled: bool
    #: wall-clock seconds the warm-up took (its timings exclude launch and flush gaps), for telemetry windows
    warmup_wall_s: float = 0.0


def settled(timings: list[float]) -> bool:
    """True when the last SETTLE_WINDOW timings agree within SETTLE_TOLERANCE."""
    if len(timings) < SETTLE_WINDOW:
        return False
    window = timings[-SETTLE_WINDOW:]
    return max(window) / min(window) - 1.0 <= SETTLE_TOLERANCE


def timed_budget_s(policy: Policy, warmup: list[float]) -> float:
    """Seconds of timed iterations after `warmup`: budget_s, or what the warm-up left of fill_s when more."""
    if policy.fill_s is None:
        return policy.budget_s
    return max(policy.budget_s, policy.fill_s - sum(warmup))


def collect(timer: Timer, fn: Callable[[], object], policy: Policy) -> Sampled:
    """Warm up `fn` until its timings settle (or the warm-up budget runs out), then time it repeatedly."""
    warmup: list[float] = []
    started = time.monotonic()
    while True:
        warmup += timer.time(fn, 1)
        if settled(warmup):
            is_settled = True
            break
        if sum(warmup) >= policy.max_warmup_s or len(warmup) >= policy.max_warmup_iterations:
            is_settled = False
            break
        if policy.fill_s is not None and sum(warmup) + warmup[-1] + policy.budget_s > policy.fill_s:
            # one more would leave less than budget_s of the slot: the warm-up ends here, unsettled
            is_settled = False
            break

    warmup_wall_s = time.monotonic() - started
    budget = timed_budget_s(policy, warmup)
    samples = timer.time(fn, policy.min_iterations)
    last = samples
    while len(samples) < policy.max_iterations:
        spent = sum(samples)
        if spent >= budget:
            break
        per_iteration = spent / len(samples)
        if policy.fill_s is None and not policy.bounded:
            batch = int((budget - spent) / per_iteration) + 1
        else:
            # inside a slot (or a bounded budget, whose slot is budget_s itself): at the slower of the whole mean and the last batch's (iterations that slowed down), at
            # most 1/SLOT_BATCHES of what is left at a time, so that a slow-down up to that factor that starts inside
            # a batch still ends inside the slot and shows before the next (a final planned at 0.05 ms an iteration
            # that ran at 0.7 ms took 5.7 s of a 2 s slot: issue 25); and past budget_s only iterations that the
            # iterations so far say end inside it
            per_iteration = max(per_iteration, sum(last) / len(last))
            fits = int((budget - spent) / per_iteration)
            if spent >= policy.budget_s:
                if fits < 1:
                    break
                batch = fits
            else:
                batch = int((policy.budget_s - spent) / per_iteration) + 1
            batch = min(batch, max(1, fits // SLOT_BATCHES))
        # at most as many again as timed so far: a batch planned from a few fast first iterations ran 1000 of a
        # float64 256^3 product that a loaded machine had slowed 7x, 3.8 s timed on a 0.5 s budget (issue 25)
        batch = max(1, min(batch, 1000, len(samples), policy.max_iterations - len(samples)))
        last = timer.time(fn, batch)
        samples += last
    return Sampled(warmup_s=warmup, samples_s=samples, settled=is_settled, warmup_wall_s=warmup_wall_s)


def warnings(sampled: Sampled, policy: Policy, timer_resolution_s: float) -> list[MeasurementWarning]:
    """The statistics' warnings (noise, too-short iterations) plus one when warm-up never settled."""
    out = warnings_for(summarize(sampled.samples_s), timer_resolution_s)
    if not sampled.settled:
        out.append(
            MeasurementWarning(
                "unsettled",
                f"warm-up did not settle in {len(sampled.warmup_s)} iterations ({sum(sampled.warmup_s):.3g} s)",
                "raise the warm-up budget or check for clock ramp-up and thermal throttling",
            )
        )
    return out
