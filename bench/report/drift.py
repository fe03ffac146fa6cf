"""The regression rule of `bench run --baseline`: one figure per run, judged against the spread between runs.

Why not a rank test over samples: the thousands of samples of one run are not independent of that run (its clock,
its placement, its allocator), so any between-run shift is "significant" on them (issue 25: float64 MAMF -5.3%,
p = 0.0003, on an idle machine minutes after the baseline). pyperf (`compare_to`) therefore compares the values of
several worker processes, and asv (`_is_result_better`) calls a change only when the ratio passes a factor *and* the
runs' spreads do not overlap. Here each baseline run contributes its figure (the metric's value: a median, or the
MAMF), and a candidate figure regresses when both hold:

1. it is below the mean of the baseline runs by more than the threshold: candidate < mean * (1 - threshold);
2. it is outside their spread: below the slowest baseline run by more than the baseline runs' range,
   candidate < worst - (best - worst). Unchanged code lands inside that band about as often as the next baseline run
   would; a metric whose runs spread wider than the threshold cannot gate a change of the threshold's size, and says so.

With one baseline run the spread is unknown: rule 1 alone (against that run), and the gate says so. Pure functions;
every figure here is higher-is-better (TFLOPS, GB/s, items/s), as in bench.report.compare.

Which figure of a run: not its median iteration. On a shared or virtual machine a run's iterations are slowed by
whatever else runs at the time, by a different amount in each run, and the median moves with it (issue 25: between-run
CV 14-23% for medians of 1.5 s matmul runs on an idle 2-core VM). Nothing makes an iteration faster than the hardware
allows, so the fast end of a run's iterations is where runs agree: the gated figure is the metric at the run's
fastest iteration (gated_figure; FAST_QUANTILE), the same max-type reading as the MAMF headline, and the estimator
Chen and Revels recommend for benchmarks in noisy environments ("Robust benchmarking in noisy environments", 2016:
noise only adds time). Measured here under load (gate_false_alarms.py, K = 10, load 3-4): between-run CV at the
median 48-83%, at the fastest tenth 44-59%, at the fastest iteration 10-48%. A sustained figure (MSMF: a window's
total work over its total time) is gated as it is: its slow iterations (a clock that throttles) are what it measures.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: The quantile of a run's per-iteration seconds its gated figure is read at: 0, its fastest iteration (see the
#: module's docstring; tests/perf/gate_false_alarms.py prints the between-run spread at the median, the fastest tenth
#: and the fastest iteration, so an idle machine can say which holds best).
FAST_QUANTILE = 0.0
#: Metrics that are a window's sustained rate, gated at their value (see the module's docstring).
SUSTAINED = frozenset({"matmul_msmf_tflops"})
#: Fewest iterations to read a quantile from; fewer, and the figure is the metric's own value.
MIN_ITERATIONS = 5


def gated_figure(value: float, samples_s: Sequence[float], quantile: float = FAST_QUANTILE) -> float:
    """A metric's figure at the `quantile` of its run's iteration seconds, for a figure proportional to 1 / seconds
    whose `value` is read at the median iteration (matmul TFLOPS, STREAM GB/s, training items/s, bus bandwidth):
    value x median(samples) / quantile(samples). With fewer than MIN_ITERATIONS samples, or none positive, the
    value as it is (and a SUSTAINED metric's value: see metric_figure)."""
    times = np.asarray([s for s in samples_s if s > 0], dtype=float)
    if len(times) < MIN_ITERATIONS:
        return float(value)
    return float(value) * float(np.median(times)) / float(np.quantile(times, quantile))


@dataclass(frozen=True)
class Verdict:
    """One metric's judgement. `runs` are the baseline runs' figures; `spread` is their range over their mean (0 with
    one run, where it is unknown); `ratio` is candidate / mean."""

    candidate: float
    runs: tuple[float, ...]
    mean: float
    worst: float
    spread: float
    ratio: float
    below_threshold: bool
    outside_spread: bool

    @property
    def spread_known(self) -> bool:
        return len(self.runs) >= 2

    @property
    def regressed(self) -> bool:
        return self.below_threshold and self.outside_spread


def judge(runs: list[float] | tuple[float, ...], candidate: float, threshold: float) -> Verdict:
    """The candidate figure against the baseline runs' figures (one per run) at a tolerated slow-down `threshold`
    (0.05 = 5%). ValueError with no runs."""
    if not runs:
        raise ValueError("no baseline runs to judge against")
    values = tuple(float(v) for v in runs)
    mean = statistics.fmean(values)
    worst, best = min(values), max(values)
    below = candidate < mean * (1 - threshold)
    if len(values) == 1:
        outside = True  # the spread is unknown: the threshold alone decides
        spread = 0.0
    else:
        outside = candidate < worst - (best - worst)
        spread = (best - worst) / mean if mean else 0.0
    ratio = candidate / mean if mean else float("inf")
    return Verdict(float(candidate), values, mean, worst, spread, ratio, below, outside)


def quiet_threshold(runs: list[float] | tuple[float, ...]) -> float:
    """The smallest threshold at which none of the runs, judged against the others (leave one out), would regress by
    rule 1: max over i of 1 - run_i / mean(others), floored at 0. What a sequence of unchanged runs says the gate
    must tolerate. ValueError with fewer than two runs."""
    values = [float(v) for v in runs]
    if len(values) < 2:
        raise ValueError("the between-run spread needs at least two runs")
    worst = 0.0
    for i, v in enumerate(values):
        others = values[:i] + values[i + 1 :]
        worst = max(worst, 1 - v / statistics.fmean(others))
    return worst


@dataclass(frozen=True)
class Spread:
    """One metric's figures over several unchanged runs: their mean, coefficient of variation (stdev / mean), range
    over mean, and quiet_threshold. What a baseline of several runs can and cannot gate."""

    runs: tuple[float, ...]
    mean: float
    cv: float
    spread: float
    quiet: float


def metric_figure(name: str, value: float, samples_s: Sequence[float]) -> float:
    """The figure the gate judges of metric `name`: gated_figure, or the value of a SUSTAINED metric."""
    return float(value) if name in SUSTAINED else gated_figure(value, samples_s)


def spread(runs: Sequence[float]) -> Spread:
    """The between-run spread of one metric's figures (one per run). ValueError with fewer than two runs."""
    values = tuple(float(v) for v in runs)
    quiet = quiet_threshold(values)  # raises with fewer than two
    mean = statistics.fmean(values)
    cv = statistics.stdev(values) / mean if mean else 0.0
    return Spread(values, mean, cv, (max(values) - min(values)) / mean if mean else 0.0, quiet)


def recommended_threshold(spreads: Sequence[Spread]) -> float:
    """The --max-regression a baseline of these runs supports: the worst quiet_threshold of any metric, rounded up to
    a whole percent, plus one percent for the run after these (the next unchanged run falls a little outside the
    ones seen about once in K + 1). At least 1%. ValueError with no metric."""
    if not spreads:
        raise ValueError("no metric to derive a threshold from")
    worst = max(s.quiet for s in spreads)
    return (math.ceil(round(worst * 100, 9)) + 1) / 100
