"""realnode (issue 26): summary_fields on large samples (np.partition for the order statistics, the mean's exact sum
in integer arithmetic) gives the floats the plain way gives (a full sort, math.fsum), bit for bit, for every input
a report may hold, and refuses what it refused."""

import math
import struct

import numpy as np
import pytest

from bench.measure import stats


def plain(samples):
    """summary_fields as it was: every value sorted, percentile()'s formula, math.fsum over n."""
    x = sorted(map(float, samples))
    if not (math.isfinite(x[0]) and math.isfinite(x[-1])) or x[0] <= 0:
        raise ValueError("samples must be finite positive durations")
    q = {p: stats.percentile(x, p) for p in (25, 50, 75, 5, 95)}
    return {"n": len(x), "median_s": q[50], "q1_s": q[25], "q3_s": q[75], "iqr_s": q[75] - q[25], "p5_s": q[5],
            "p95_s": q[95], "min_s": x[0], "max_s": x[-1], "mean_s": math.fsum(x) / len(x)}  # fmt: skip


def bits(d):
    return {k: struct.pack("<d", v) if isinstance(v, float) else v for k, v in d.items()}


def cases():
    rng = np.random.default_rng(26)
    for n in (stats.PARTITION_FROM - 1, stats.PARTITION_FROM, 10_000, 100_001):
        t = rng.uniform(1e-5, 2e-2)
        ns = np.round(rng.normal(t * 1e9, t * 5e6, n))
        yield "cuda events", (ns / 1e6).astype(np.float32).astype(np.float64) / 1000  # ties, a few exponents
        yield (
            "random mantissas",
            (rng.integers(0, 1 << 52, n, dtype=np.uint64) | np.uint64(0x3F50000000000000)).view(np.float64),
        )
        yield "wide", np.exp(rng.uniform(-600, 600, n))  # hundreds of binades apart: the fallback
        yield "log-uniform", np.exp(rng.uniform(-14, 3, n))
    # sums that sit exactly on a rounding tie, and just off it: half-even, as fsum rounds
    yield "ties", np.array([1.0] * 5000 + [2.0**-53] * 2 + [2.0**-105])
    yield "tie even", np.array([1.0 + 2.0**-52] + [1.0] * 4999 + [2.0**-53])
    yield "one value", np.full(5000, 7.3e-4)
    yield "tiny", np.full(5000, 1e-300)
    yield "subnormal", np.array([5e-324] + [1e-3] * 4999)  # the fallback
    yield "huge", np.full(5000, 1e300)  # near overflow: the fallback
    yield "2**1023", np.array([2.0**1023] * 4096)  # the sum overflows: fsum's own OverflowError


@pytest.mark.parametrize("name,values", list(cases()), ids=[c[0] for c in cases()])
def test_large_summaries_are_the_plain_way_bit_for_bit(name, values):
    for samples in (values, values[::-1].copy(), values.tolist()):
        try:
            want = plain(samples)
        except OverflowError:
            with pytest.raises(OverflowError):
                stats.summary_fields(samples)
            continue
        assert bits(stats.summary_fields(samples)) == bits(want), name


def test_exact_sum_is_fsum():
    rng = np.random.default_rng(7)
    for _ in range(300):
        a = np.exp(rng.uniform(-8, rng.uniform(-8, 6), int(rng.integers(1, 50_000))))
        assert struct.pack("<d", stats._exact_sum(a)) == struct.pack("<d", math.fsum(a.tolist()))
    assert stats._exact_sum(np.array([1.0, 2.0**-40])) is None  # too far apart for int64: fsum's way
    assert stats._exact_sum(np.array([1.0, 2.0**-21])) is not None  # near enough
    for n in (stats._SUM_BLOCK - 1, stats._SUM_BLOCK, stats._SUM_BLOCK + 1, 3 * stats._SUM_BLOCK + 5):  # blocks
        a = np.exp(rng.uniform(-9, -3, n))
        assert struct.pack("<d", stats._exact_sum(a)) == struct.pack("<d", math.fsum(a.tolist()))
    assert stats._exact_sum(np.array([1.0, 5e-324])) is None  # subnormal


@pytest.mark.parametrize("bad", [np.nan, -np.nan, np.inf, -1.0, 0.0, -0.0, -np.inf, 5e-324 * -1])
def test_large_summaries_refuse_what_is_not_a_duration(bad):
    for where in (0, 2500, 9999):
        a = np.full(10_000, 1e-3)
        a[where] = bad
        if np.isnan(bad):  # a NaN with its sign bit set, as well as without
            a.view(np.int64)[where] |= np.int64(-1 << 63) if np.signbit(bad) else 0
        with pytest.raises(ValueError, match="finite positive"):
            stats.summary_fields(a)
