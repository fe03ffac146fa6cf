"""The numpy paths of stats.summarize and figures.msmf (taken from stats.NUMPY_FROM samples on, where a node report's
volume is) give the pure-Python results bit for bit: a stored figure is compared with its recomputation."""

import random

import numpy as np
import pytest

from bench import figures
from bench.measure import stats
from bench.model.reports import Samples


def python_msmf(samples_s, flops, buckets=figures.MSMF_BUCKETS):
    """figures.msmf's loop as written before the numpy path (the reference)."""
    total, per, elapsed = sum(samples_s), {}, 0.0
    for s in samples_s:
        elapsed += s
        i = min(int(elapsed / total * buckets - 1e-9), buckets - 1)
        seconds, count, _ = per.get(i, [0.0, 0, 0.0])
        per[i] = [seconds + s, count + 1, elapsed]
    series = [{"t_s": end, "tflops": n * flops / sec / 1e12} for sec, n, end in (per[i] for i in sorted(per))]
    return {"tflops": len(samples_s) * flops / total / 1e12, "window_s": total, "iterations": len(samples_s),
            "min_bucket_tflops": min(p["tflops"] for p in series), "series": series}  # fmt: skip


@pytest.mark.parametrize("seed", range(40))
def test_numpy_paths_match_python_bit_for_bit(seed, monkeypatch):
    rng = random.Random(seed)
    n = rng.choice([stats.NUMPY_FROM, 65, 1000, 9_999])
    xs = [rng.lognormvariate(-9, rng.choice([0.01, 0.5, 3])) for _ in range(n)]
    if seed % 3 == 0:  # a coarse timer: few distinct values
        xs = [rng.choice(xs[:5]) for _ in range(n)]
    expected_msmf = python_msmf(xs, 123_456_789)
    with monkeypatch.context() as m:
        m.setattr(stats, "NUMPY_FROM", 10**9)
        expected_summary = stats.summarize(xs)
    for form in (xs, Samples(xs), np.asarray(xs)):
        got = figures.msmf(form, 123_456_789)
        assert got == expected_msmf
        assert all(type(v) is float for p in got["series"] for v in p.values())
        summary = stats.summarize(form)
        assert summary == expected_summary
        assert all(type(v) in (int, float) for v in summary.to_dict().values())


def test_the_numpy_summary_refuses_what_the_python_one_refuses():
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="finite positive"):
            stats.summarize([1e-3] * 100 + [bad])
