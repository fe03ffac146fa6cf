"""Sixteenth adversarial round (issue 26 and issue 25's leftovers): attacks on this session's fast paths, driven
through the real entry points where a report is involved, and checks that each fast path's tests hold it to the plain
path (a fast path loosened must fail a test here or in its owner's tests).

Held, and tested here because loosening them failed no test before: the exact sum of a summary's mean
(bench.measure.stats._exact_sum, realnode's cacbb7b) refuses sums that int64 cannot hold and subnormal values; with its
bound loosened by one or two binades, or its subnormal check dropped, realnode's tests still passed while the mean
differed from math.fsum's (the plain way's) on the inputs below.

Each test says what it attacks."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from bench.measure import stats


def _plain_summary(samples) -> dict:
    """summary_fields the plain way: every value sorted as a Python float, percentile()'s formula, math.fsum over n."""
    x = sorted(map(float, samples))
    q = {p: stats.percentile(x, p) for p in (25, 50, 75, 5, 95)}
    return {"n": len(x), "median_s": q[50], "q1_s": q[25], "q3_s": q[75], "iqr_s": q[75] - q[25], "p5_s": q[5],
            "p95_s": q[95], "min_s": x[0], "max_s": x[-1], "mean_s": math.fsum(x) / len(x)}  # fmt: skip


def _bits(d: dict) -> dict:
    return {k: struct.pack("<d", v) if isinstance(v, float) else v for k, v in d.items()}


# --- realnode (cacbb7b): the mean's exact sum in int64 -----------------------------------------------------------------

#: The largest significand (1.999...) at exponent 0: its high 27 bits are all ones, the most one value adds to a sum.
_TOP = float(np.nextafter(2.0, 0.0))


@pytest.mark.parametrize("bits", range(11, 18))
@pytest.mark.parametrize("over", [0, 1, 2])
def test_a_mean_whose_int64_sum_would_wrap_is_the_plain_mean(bits, over):
    """2**bits - 1 samples: all but one at the largest significand, 2**(36 - bits + over) above the last. At over = 0
    the exact sum fits int64 (its largest case); from over = 1 it would wrap past 2**63 if the bound let it through,
    and the mean would be garbage. Each must be math.fsum's mean, bit for bit."""
    n = (1 << bits) - 1
    spread = 36 - bits + over
    samples = np.concatenate([np.full(n - 1, _TOP * 2.0**spread * 1e-3), [1e-3]])
    assert _bits(stats.summary_fields(samples)) == _bits(_plain_summary(samples))
    got = stats._exact_sum(samples)
    assert got is None or struct.pack("<d", got) == struct.pack("<d", math.fsum(samples.tolist()))


@pytest.mark.parametrize("value", [5e-324, 1e-310, 2.2250738585072009e-308])
def test_subnormal_samples_get_the_plain_mean(value):
    """A hostile report's samples may be subnormal (finite, positive: decode accepts them). A subnormal has no
    implicit leading bit: summed as if it had one, 5e-324 counts as 2**-1022."""
    for samples in (np.full(2048, value), np.concatenate([np.full(2047, value), [value * 3]])):
        assert _bits(stats.summary_fields(samples)) == _bits(_plain_summary(samples))
