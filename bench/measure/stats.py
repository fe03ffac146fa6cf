"""Summary statistics of raw per-iteration times. Pure functions, no I/O.

Percentiles use linear interpolation between order statistics (numpy's default, "type 7"), so a verifier can
recompute every figure from the raw samples with numpy alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: IQR/median above this makes the measurement noisy (torch.utils.benchmark uses the same threshold).
NOISY_IQR_RATIO = 0.10
#: A median iteration shorter than this many timer resolutions is too short to time reliably.
MIN_RESOLUTIONS_PER_ITERATION = 1000


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
        return asdict(self)


@dataclass(frozen=True)
class MeasurementWarning:
    """A measurement warning: a stable code, what happened, and what to do about it."""

    code: str
    message: str
    hint: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def summarize(samples: Sequence[float]) -> Summary:
    """Median, quartiles, 5th/95th percentiles, extremes and mean of `samples` (seconds)."""
    if len(samples) == 0:
        raise ValueError("cannot summarize an empty sample")
    x = np.asarray(samples, dtype=np.float64)
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError("samples must be finite positive durations")
    q1, med, q3, p5, p95 = np.percentile(x, [25, 50, 75, 5, 95])
    return Summary(
        n=int(x.size),
        median_s=float(med),
        q1_s=float(q1),
        q3_s=float(q3),
        iqr_s=float(q3 - q1),
        p5_s=float(p5),
        p95_s=float(p95),
        min_s=float(x.min()),
        max_s=float(x.max()),
        mean_s=float(x.mean()),
    )


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
