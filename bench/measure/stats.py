"""Summary statistics of raw per-iteration times. Pure functions, no I/O.

Percentiles use linear interpolation between order statistics (numpy's default "linear" method, Hyndman & Fan
type 7), computed here exactly as numpy does, so a verifier can recompute every figure with numpy alone. They are
written out in plain Python because verifying a fleet recomputes them for every measurement of every report, where
numpy's per-call overhead dominates. The mean is the correctly rounded sum (math.fsum) over n.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

#: IQR/median above this makes the measurement noisy (torch.utils.benchmark uses the same threshold).
NOISY_IQR_RATIO = 0.10
#: A median iteration shorter than this many timer resolutions is too short to time reliably.
MIN_RESOLUTIONS_PER_ITERATION = 1000
#: Resolution in seconds of each timer a report names (bench.measure.timer's classes; the same values, kept here so
#: that a verifier judges a report's timings without importing torch). A timer not listed is given the coarsest.
TIMER_RESOLUTION_S = {"perf_counter": 1e-6, "cuda_event": 0.5e-6}


def timer_resolution(name: str | None) -> float:
    """The resolution of the timer a measurement names; the coarsest known one for a name not in TIMER_RESOLUTION_S."""
    return TIMER_RESOLUTION_S.get(name or "", max(TIMER_RESOLUTION_S.values()))


@dataclass(frozen=True)
class Summary:
    """Statistics of per-iteration seconds."""

    n: int
    median_s: float
    q1_s: float
    q3_s: float
    iqr_s: float
    p5_s: float
    p95_s: float
    min_s: float
    max_s: float
    mean_s: float

    def to_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)  # flat: cheaper than dataclasses.asdict, which recurses


@dataclass(frozen=True)
class MeasurementWarning:
    """A measurement warning: a stable code, what happened, and what to do about it."""

    code: str
    message: str
    hint: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


#: From this many samples on, they are sorted by numpy (the same order, so the same figures, bit for bit): a node's
#: report holds millions of samples, and sorting them as Python floats was most of verifying it.
NUMPY_FROM = 64


def summarize(samples: Sequence[float]) -> Summary:
    """Median, quartiles, 5th/95th percentiles, extremes and mean of `samples` (seconds)."""
    return Summary(**summary_fields(samples))


#: The quantiles a Summary holds, in the order summary_fields computes them.
_QUANTILES = (25, 50, 75, 5, 95)


@functools.lru_cache(maxsize=256)
def _positions(n: int) -> tuple[tuple[int, int, float], ...]:
    """For each of _QUANTILES, percentile()'s (lo, hi, t) in an ascending sequence of n values: the same arithmetic,
    done once per sample count (a fleet's reports repeat a few counts) instead of once per measurement."""
    out = []
    for q in _QUANTILES:
        position = q / 100 * (n - 1)
        lo = math.floor(position)
        out.append((lo, min(lo + 1, n - 1), position - lo))
    return tuple(out)


def summary_fields(samples: Sequence[float]) -> dict[str, float | int]:
    """summarize(samples).to_dict(), without building the Summary (derive() wants the dict: verifying a fleet
    recomputes one per measurement of every report). Each percentile is percentile()'s formula on the same (lo, hi, t),
    so the same floats."""
    if len(samples) == 0:
        raise ValueError("cannot summarize an empty sample")
    if len(samples) >= NUMPY_FROM:
        return _summary_numpy(samples)
    x = sorted(map(float, samples))
    if not (math.isfinite(x[0]) and math.isfinite(x[-1])) or x[0] <= 0:
        raise ValueError("samples must be finite positive durations")
    q1, med, q3, p5, p95 = [
        x[hi] - (x[hi] - x[lo]) * (1 - t) if t >= 0.5 else x[lo] + (x[hi] - x[lo]) * t
        for lo, hi, t in _positions(len(x))
    ]
    return {"n": len(x), "median_s": med, "q1_s": q1, "q3_s": q3, "iqr_s": q3 - q1, "p5_s": p5, "p95_s": p95,
            "min_s": x[0], "max_s": x[-1], "mean_s": math.fsum(x) / len(x)}  # fmt: skip


#: From this many samples on, summary_fields takes the order statistics it needs by np.partition and the mean's exact
#: sum by integer arithmetic in numpy (_exact_sum): a real node's report holds ~30 million samples (tests/perf/
#: real_node_cost.py), and sorting them whole, then summing each as a Python float (math.fsum) was half of verifying it.
#: Below it the sort is the cheaper (one summary of 500 samples 19.0 us sorted, 20.9 partitioned; of 1,000, 38.9 and 24.3).
PARTITION_FROM = 512
_MANTISSA = (1 << 52) - 1


def _summary_numpy(samples: Sequence[float]) -> dict[str, float | int]:
    """summary_fields for NUMPY_FROM samples or more: the same floats, bit for bit (the same order statistics, the same
    interpolation, the same correctly rounded mean)."""
    import numpy as np  # here: importing bench.measure stays light for the command line's start-up

    a = np.asarray(samples, dtype=np.float64)
    n = len(a)
    positions = _positions(n)
    if n < PARTITION_FROM:
        x: Sequence[float] = np.sort(a).tolist()
        total = None
    else:
        picks = sorted({0, n - 1, *(i for lo, hi, _ in positions for i in (lo, hi))})
        # as int64, which orders positive floats as floats (about a third faster at 10**5): a value that is not a finite
        # positive duration lands at one end (a NaN or an infinity last, a negative, -0.0 or a NaN with its sign bit
        # first), so x[0] or x[-1] fails the check below as the sorted floats would
        part = np.partition(a.view(np.int64), picks).view(np.float64)
        x = _Picked({i: float(part[i]) for i in picks}, n)
        total = _exact_sum(a) if math.isfinite(x[-1]) and x[0] > 0 else None
    if not (math.isfinite(x[0]) and math.isfinite(x[-1])) or x[0] <= 0:
        raise ValueError("samples must be finite positive durations")
    q1, med, q3, p5, p95 = [
        x[hi] - (x[hi] - x[lo]) * (1 - t) if t >= 0.5 else x[lo] + (x[hi] - x[lo]) * t for lo, hi, t in positions
    ]
    if total is None:
        total = math.fsum(x) if isinstance(x, list) else math.fsum(a.tolist())
    return {"n": n, "median_s": med, "q1_s": q1, "q3_s": q3, "iqr_s": q3 - q1, "p5_s": p5, "p95_s": p95,
            "min_s": x[0], "max_s": x[-1], "mean_s": total / n}  # fmt: skip


class _Picked:
    """The order statistics _summary_numpy took, indexed as the sorted sequence would be (x[i], x[-1])."""

    def __init__(self, values: dict[int, float], n: int) -> None:
        self.values, self.n = values, n

    def __getitem__(self, i: int) -> float:
        return self.values[i % self.n]


#: Values _exact_sum takes at a time: a block's temporaries stay in the core's cache (at 10**5 samples at once it ran
#: at 15 ns a sample, in blocks at 2.8; load ~3).
_SUM_BLOCK = 1 << 14


def _exact_sum(a: object) -> float | None:
    """math.fsum of positive finite float64 values, bit for bit (the exact sum, correctly rounded), at numpy's speed;
    None where this cannot promise that in int64 arithmetic (a subnormal value, one above 2**925, values more than
    2**21 apart; timings of one kernel span a binade or two): the caller then takes math.fsum. Each value is
    m * 2**(e - 1075) (m its 53-bit significand, e its biased exponent): with d = e minus the least exponent, the exact
    sum is the sum of m * 2**d times 2**(least - 1075), taken block by block as the sums of m's high 27 and low 26 bits
    shifted by d (int64, exact: each under 2**63), added up as Python integers and rounded once (int to float rounds
    half to even, as fsum does; the scaling by a power of two is exact, the sum being normal)."""
    import numpy as np

    bits = np.asarray(a, dtype=np.float64).view(np.int64)
    low, high = int(bits.min()), int(bits.max())  # positive floats order as their bits: the extremes' exponents
    low_e, high_e = low >> 52, high >> 52
    if low < 0 or low_e < 1 or high_e > 2000 or high_e - low_e + min(len(bits), _SUM_BLOCK).bit_length() > 36:
        return None
    top = bottom = 0
    for start in range(0, len(bits), _SUM_BLOCK):
        block = bits[start : start + _SUM_BLOCK]
        shift = (block >> 52) - low_e
        significand = (block & _MANTISSA) | (1 << 52)
        top += int(((significand >> 26) << shift).sum())
        bottom += int(((significand & ((1 << 26) - 1)) << shift).sum())
    return math.ldexp(float((top << 26) + bottom), low_e - 1075)


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile of an ascending sequence, by numpy's 'linear' method and its exact interpolation formula."""
    position = q / 100 * (len(ordered) - 1)
    lo = math.floor(position)
    hi = min(lo + 1, len(ordered) - 1)
    t = position - lo
    a, b = ordered[lo], ordered[hi]
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def rate(work_per_iteration: float, seconds: float) -> float:
    """Work per second (FLOP/s, B/s) for one iteration of `seconds`."""
    if seconds <= 0 or not math.isfinite(seconds):
        raise ValueError(f"duration must be finite and positive, got {seconds!r}")
    return work_per_iteration / seconds


def warnings_for(summary: Summary, timer_resolution_s: float) -> list[MeasurementWarning]:
    """The warnings a summary deserves, each with a hint."""
    out: list[MeasurementWarning] = []
    ratio = summary.iqr_s / summary.median_s
    if ratio > NOISY_IQR_RATIO:
        out.append(
            MeasurementWarning(
                "noisy",
                f"IQR is {ratio:.1%} of the median (threshold {NOISY_IQR_RATIO:.0%})",
                "stop other work on the machine, pin clocks, or raise the time budget",
            )
        )
    if summary.median_s < MIN_RESOLUTIONS_PER_ITERATION * timer_resolution_s:
        out.append(
            MeasurementWarning(
                "too-short",
                f"median iteration {summary.median_s:.3g} s is under {MIN_RESOLUTIONS_PER_ITERATION}x "
                f"the timer resolution ({timer_resolution_s:.3g} s)",
                "use a larger problem size",
            )
        )
    return out
