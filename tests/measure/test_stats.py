import pytest

from bench.measure import stats


def test_summary_of_odd_sample_matches_hand_computation():
    s = stats.summarize([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (s.n, s.median_s, s.q1_s, s.q3_s, s.iqr_s) == (5, 3.0, 2.0, 4.0, 2.0)
    # type-7 percentiles: position p*(n-1) between order statistics
    assert s.p5_s == pytest.approx(1.2)
    assert s.p95_s == pytest.approx(4.8)
    assert (s.min_s, s.max_s, s.mean_s) == (1.0, 5.0, 3.0)


def test_summary_of_even_sample_interpolates():
    s = stats.summarize([4.0, 1.0, 3.0, 2.0])
    assert s.median_s == 2.5
    assert s.q1_s == pytest.approx(1.75)
    assert s.q3_s == pytest.approx(3.25)
    assert s.iqr_s == pytest.approx(1.5)


def test_single_sample():
    s = stats.summarize([0.25])
    assert s.median_s == s.min_s == s.max_s == s.p5_s == 0.25 and s.iqr_s == 0.0


@pytest.mark.parametrize("bad", [[], [1.0, 0.0], [1.0, -2.0], [float("nan")], [float("inf")]])
def test_rejects_empty_and_non_positive_samples(bad):
    with pytest.raises(ValueError):
        stats.summarize(bad)


def test_rate():
    assert stats.rate(2e12, 0.5) == 4e12
    with pytest.raises(ValueError):
        stats.rate(1.0, 0.0)


def test_noisy_warning_above_threshold_only():
    quiet = stats.summarize([1.0, 1.0, 1.0, 1.0, 1.0])
    assert stats.warnings_for(quiet, 1e-6) == []
    # IQR 0.5 / median 3.0 ~ 17% > 10%
    noisy = stats.summarize([2.5, 2.75, 3.0, 3.25, 3.5])
    codes = [w.code for w in stats.warnings_for(noisy, 1e-6)]
    assert codes == ["noisy"]
    assert all(w.hint for w in stats.warnings_for(noisy, 1e-6))


def test_too_short_warning():
    s = stats.summarize([1e-4] * 5)
    assert [w.code for w in stats.warnings_for(s, 1e-6)] == ["too-short"]
    assert stats.warnings_for(s, 1e-8) == []


def test_percentiles_match_numpy_exactly():
    import numpy as np

    rng = np.random.default_rng(7)
    for n in (1, 2, 3, 5, 20, 101, 1000):
        x = list(rng.lognormal(-5, 0.3, n))
        s = stats.summarize(x)
        q1, med, q3, p5, p95 = np.percentile(x, [25, 50, 75, 5, 95])
        assert (s.q1_s, s.median_s, s.q3_s, s.p5_s, s.p95_s) == (q1, med, q3, p5, p95)
        assert s.mean_s == pytest.approx(float(np.mean(x)), rel=1e-12)


def test_summary_fields_are_the_percentile_formula_bit_for_bit():
    """summary_fields (per-count positions, no Summary built) gives percentile()'s floats for every count and order."""
    import math
    import random

    r = random.Random("summary fields")
    for n in [*range(1, 70), 101, 257, 1000]:
        x = [r.lognormvariate(-7, r.choice([0.01, 0.3, 2.0])) for _ in range(n)]
        if r.random() < 0.3:
            x = [r.choice(x[:3]) for _ in range(n)]  # ties
        got = stats.summary_fields(x)
        ordered = sorted(x)
        q1, med, q3, p5, p95 = (stats.percentile(ordered, q) for q in (25, 50, 75, 5, 95))
        want = {"n": n, "median_s": med, "q1_s": q1, "q3_s": q3, "iqr_s": q3 - q1, "p5_s": p5, "p95_s": p95,
                "min_s": ordered[0], "max_s": ordered[-1], "mean_s": math.fsum(ordered) / n}  # fmt: skip
        assert list(got.items()) == list(want.items()), n
        assert stats.summarize(x).to_dict() == want
