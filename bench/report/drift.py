"""The regression rule of `bench run --baseline`: the median of a few candidate runs against the median of several
baseline runs, gated only where the runs are steady enough to tell a change of the threshold's size from noise.

Why not a rank test over samples: the thousands of samples of one run are not independent of that run (its clock,
its placement, its allocator), so any between-run shift is "significant" on them (issue 25: float64 MAMF -5.3%,
p = 0.0003, on an idle machine minutes after the baseline). pyperf (`compare_to`) compares the values of several
worker processes (20 by default), and asv (`_is_result_better`) calls a change only past a factor *and* outside the
runs' spread. Here each run (a fresh process) contributes one figure per metric, and:

- the baseline's centre is the median of its K runs, its spread their robust coefficient of variation
  (robust_cv: 1.4826 x the median absolute deviation over the median, scipy's median_abs_deviation(scale="normal")),
  which one hiccup run does not inflate (issue 25's quiet rerun: one float32 512^3 run at -49% made the old
  worst-leave-one-out threshold 51%);
- the candidate is the median of its M runs (`bench run --repeat M --baseline ...`; M = 1 for a plain run), so one
  hiccup among them is outvoted;
- the noise floor of that comparison is Z x cv x sqrt(pi/2) x sqrt(1/K + 1/M) (noise_floor): the median of n normal
  draws varies about sqrt(pi/2) times as much as their mean, sigma / sqrt(n); two medians' difference adds both
  variances; Z = 3 standard deviations (one-sided 0.13% per metric and candidate for normal noise);
- a metric is gated only when its noise floor is at most the threshold; above it the metric is named "not gated"
  (it cannot tell a change of that size from its own noise), and a gate with nothing gated fails rather than pass
  blind;
- a gated metric regresses when the candidate's median is below the baseline's median by more than the threshold.

The recommended threshold (recommended_threshold) is the largest noise floor among the metrics steady enough to
catch a TARGET (10%) slow-down with the same margin, i.e. floor <= TARGET / 2: then TARGET lies Z standard deviations
past the threshold, as the threshold lies Z past unchanged code. Metrics noisier than that are left out of it, not
gated at it, and named.

With fewer than MIN_SPREAD_RUNS baseline runs the spread is unknown: the threshold alone decides, and the gate says
so. Pure functions; every figure here is higher-is-better (TFLOPS, GB/s, items/s), as in bench.report.compare.

Which figure of a run: not its median iteration. On a shared or virtual machine a run's iterations are slowed by
whatever else runs at the time, by a different amount in each run, and the median moves with it (issue 25: between-run
CV 14-23% for medians of 1.5 s matmul runs on an idle 2-core VM). Nothing makes an iteration faster than the hardware
allows, so the fast end of a run's iterations is where runs agree: the gated figure is the metric at the run's
fastest iteration (gated_figure; FAST_QUANTILE), the same max-type reading as the MAMF headline, and the estimator
Chen and Revels recommend for benchmarks in noisy environments ("Robust benchmarking in noisy environments", 2016:
noise only adds time). A sustained figure (MSMF: a window's total work over its total time) is gated as it is: its
slow iterations (a clock that throttles) are what it measures. tests/perf/gate_false_alarms.py measures all of this.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: The quantile of a run's per-iteration seconds its gated figure is read at: 0, its fastest iteration (see the
#: module's docstring; tests/perf/gate_false_alarms.py prints the between-run spread at the median, the fastest tenth
#: and the fastest iteration, so an idle machine can say which holds best).
FAST_QUANTILE = 0.0
#: Metrics that are a window's sustained rate, gated at their value (see the module's docstring).
SUSTAINED = frozenset({"matmul_msmf_tflops"})
#: Fewest iterations to read a quantile from; fewer, and the figure is the metric's own value.
MIN_ITERATIONS = 5
#: Standard deviations between unchanged code and the threshold (and between the threshold and TARGET).
Z = 3.0
#: The slow-down a gate is recommended for: issue 25 asks that a 10% slow-down be caught every time.
TARGET = 0.10
#: Fewest baseline runs whose spread is measured (a median absolute deviation of two runs is half their gap).
MIN_SPREAD_RUNS = 3
#: Candidate runs `bench run --repeat` recommends (their median is judged): one hiccup among three is outvoted.
CANDIDATE_RUNS = 3
#: Most candidate runs runs_needed considers: pyperf's default number of worker processes.
MAX_CANDIDATE_RUNS = 20


def gated_figure(value: float, samples_s: Sequence[float], quantile: float = FAST_QUANTILE) -> float:
    """A metric's figure at the `quantile` of its run's iteration seconds, for a figure proportional to 1 / seconds
    whose `value` is read at the median iteration (matmul TFLOPS, STREAM GB/s, training items/s, bus bandwidth):
    value x median(samples) / quantile(samples). With fewer than MIN_ITERATIONS samples, or none positive, the
    value as it is (and a SUSTAINED metric's value: see metric_figure)."""
    import numpy as np  # here: `bench gate`'s options read this module's constants, and `bench --help` loads no numpy

    times = np.asarray([s for s in samples_s if s > 0], dtype=float)
    if len(times) < MIN_ITERATIONS:
        return float(value)
    return float(value) * float(np.median(times)) / float(np.quantile(times, quantile))


def metric_figure(name: str, value: float, samples_s: Sequence[float]) -> float:
    """The figure the gate judges of metric `name`: gated_figure, or the value of a SUSTAINED metric."""
    return float(value) if name in SUSTAINED else gated_figure(value, samples_s)


def rounds_figure(name: str, rounds: Sequence[tuple[float, Sequence[float]]]) -> float:
    """The figure of metric `name` in a run that measured it in several rounds (`rounds`: each round's value and
    iteration seconds; bench.planning.matmul's `rounds`, spread over the run): the fastest of the rounds' figures
    (metric_figure), i.e. the run's fastest iteration over all its rounds; a SUSTAINED metric's median value.
    ValueError with no round.

    Why the fastest over rounds spread in time rather than one window of the same length: on the 2-vCPU VM a pinned
    thread's speed sags 10-20% for one to two seconds at a time (its own CPU time sags with it: the vCPU runs slower,
    it is not descheduled; /proc/stat's steal stayed 0 in 92% of 0.25 s windows and did not track the slow ones), and
    windows 2.4 s apart are uncorrelated (tests/perf/pinned_stalls.py). One contiguous 1 s window falls
    inside a sag whole; of rounds a few seconds apart, one is clear of it. A slow-down of the code slows every round,
    so the fastest still shows it (a rate x 0.90 in each round is x 0.90 at the fastest)."""
    if not rounds:
        raise ValueError(f"no round of {name} to read")
    if name in SUSTAINED:
        return float(statistics.median(float(v) for v, _ in rounds))
    return max(metric_figure(name, v, samples) for v, samples in rounds)


def robust_cv(values: Sequence[float]) -> float:
    """1.4826 x median absolute deviation / median: the coefficient of variation of normal noise, which one outlying
    run moves little (a stdev over ten runs with one at -49% reads 17%). 0 for a median of 0. ValueError with fewer
    than two values."""
    if len(values) < 2:
        raise ValueError("a spread needs at least two runs")
    import numpy as np
    from scipy.stats import median_abs_deviation  # here: scipy.stats costs ~2 s of every `bench run` start-up

    centre = float(np.median(values))
    return float(median_abs_deviation(values, scale="normal")) / centre if centre else 0.0


def noise_floor(cv: float, baseline_runs: int, candidate_runs: int = 1) -> float:
    """The smallest relative drop of the median of `candidate_runs` figures below the median of `baseline_runs`
    figures that noise of relative spread `cv` (robust_cv) leaves Z standard deviations behind:
    Z x cv x sqrt(pi/2) x sqrt(1/K + 1/M). ValueError for a count below 1."""
    if baseline_runs < 1 or candidate_runs < 1:
        raise ValueError("run counts must be at least 1")
    return Z * cv * math.sqrt(math.pi / 2) * math.sqrt(1 / baseline_runs + 1 / candidate_runs)


@dataclass(frozen=True)
class Verdict:
    """One metric's judgement. `runs` are the baseline runs' figures and `centre` their median, `cv` their robust_cv
    (0 where unknown: fewer than MIN_SPREAD_RUNS runs); `candidates` the candidate runs' figures and `candidate`
    their median; `floor` the comparison's noise_floor; `ratio` is candidate / centre."""

    candidates: tuple[float, ...]
    runs: tuple[float, ...]
    threshold: float
    candidate: float
    centre: float
    cv: float
    floor: float
    ratio: float

    @property
    def spread_known(self) -> bool:
        return len(self.runs) >= MIN_SPREAD_RUNS

    @property
    def gated(self) -> bool:
        """The noise floor is within the threshold (or unknown: the threshold alone decides)."""
        return not self.spread_known or self.floor <= self.threshold

    @property
    def below_threshold(self) -> bool:
        return self.candidate < self.centre * (1 - self.threshold)

    @property
    def regressed(self) -> bool:
        return self.gated and self.below_threshold


def judge(runs: Sequence[float], candidates: float | Sequence[float], threshold: float) -> Verdict:
    """The median of the candidate figures (one per candidate run, or one figure) against the baseline runs' figures
    (one per run) at a tolerated slow-down `threshold` (0.05 = 5%). ValueError with no runs or no candidate."""
    values = tuple(float(v) for v in runs)
    mine = (float(candidates),) if isinstance(candidates, int | float) else tuple(float(c) for c in candidates)
    if not values:
        raise ValueError("no baseline runs to judge against")
    if not mine:
        raise ValueError("no candidate run to judge")
    centre = statistics.median(values)
    candidate = statistics.median(mine)
    cv = robust_cv(values) if len(values) >= MIN_SPREAD_RUNS else 0.0
    floor = noise_floor(cv, len(values), len(mine))
    ratio = candidate / centre if centre else float("inf")
    return Verdict(mine, values, threshold, candidate, centre, cv, floor, ratio)


def quiet_threshold(runs: Sequence[float]) -> float:
    """The smallest threshold at which none of the runs, judged alone against the mean of the others (leave one out),
    would fall below it: max over i of 1 - run_i / mean(others), floored at 0. What a single hiccup run does to a
    threshold read off the worst run (printed for comparison; the recommendation uses the robust spread).
    ValueError with fewer than two runs."""
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
    """One metric's figures over several unchanged runs: their median, coefficient of variation (stdev / mean), robust
    coefficient of variation (robust_cv), range over mean, and quiet_threshold. What a baseline of these runs can
    gate: floor(M), the noise floor against a candidate of M runs."""

    runs: tuple[float, ...]
    median: float
    cv: float
    robust_cv: float
    spread: float
    quiet: float

    def floor(self, candidate_runs: int = CANDIDATE_RUNS) -> float:
        return noise_floor(self.robust_cv, len(self.runs), candidate_runs)

    def steady(self, candidate_runs: int = CANDIDATE_RUNS) -> bool:
        """Steady enough to catch a TARGET slow-down with Z standard deviations to spare each side of the threshold."""
        return self.floor(candidate_runs) <= TARGET / 2

    def runs_needed(self) -> int | None:
        """The fewest candidate runs (up to MAX_CANDIDATE_RUNS) against these baseline runs that make the metric
        steady, or None: then more baseline runs or a quieter machine, not more candidate runs."""
        return next((m for m in range(1, MAX_CANDIDATE_RUNS + 1) if self.steady(m)), None)


def spread(runs: Sequence[float]) -> Spread:
    """The between-run spread of one metric's figures (one per run). ValueError with fewer than two runs."""
    values = tuple(float(v) for v in runs)
    quiet = quiet_threshold(values)  # raises with fewer than two
    mean = statistics.fmean(values)
    cv = statistics.stdev(values) / mean if mean else 0.0
    rng = (max(values) - min(values)) / mean if mean else 0.0
    return Spread(values, statistics.median(values), cv, robust_cv(values), rng, quiet)


def whole_percent_up(fraction: float) -> float:
    """`fraction` rounded up to a whole percent, at least 1% (0.0512 -> 0.06)."""
    return max(1, math.ceil(round(fraction * 100, 9))) / 100


def recommended_threshold(spreads: Sequence[Spread], candidate_runs: int = CANDIDATE_RUNS) -> float:
    """The --max-regression these baseline runs support for candidates of `candidate_runs` runs: the largest noise
    floor among the steady metrics (Spread.steady), rounded up to a whole percent; with none steady, the smallest
    floor of any, rounded up (it cannot catch TARGET: the caller says so). ValueError with no metric."""
    if not spreads:
        raise ValueError("no metric to derive a threshold from")
    steady = [s.floor(candidate_runs) for s in spreads if s.steady(candidate_runs)]
    return whole_percent_up(max(steady) if steady else min(s.floor(candidate_runs) for s in spreads))
