"""Audit by sampling: the draw is fixed by the auditor's nonce and re-derivable; the lower bound covers the truth."""

import random

import pytest

from bench.disclosure import sampling as s

NONCE = "auditor-nonce-0001"


def _fleet(n=200, seed=1):
    r = random.Random(seed)
    return [(f"GPU-{i:05d}", r.choice([50.0, 400.0, 700.0, 990.0]) * r.uniform(0.9, 1.1)) for i in range(n)]


def test_the_draw_is_re_derivable_and_another_nonce_draws_another_sample():
    pop = s.population(_fleet())
    first = s.draw(NONCE, pop, 40)
    assert first == s.draw(NONCE, pop, 40) and len(set(first)) == 40
    assert s.draw(NONCE + "x", pop, 40) != first
    assert s.sample_devices(NONCE, pop, 40) != s.sample_devices("auditor-nonce-0002", pop, 40)


def test_the_draw_depends_on_the_population_fixed_before_the_nonce():
    fleet = _fleet()
    changed = [*fleet[:-1], (fleet[-1][0], fleet[-1][1] + 1)]
    assert s.population(fleet)["digest"] != s.population(changed)["digest"]
    assert s.draw(NONCE, s.population(fleet), 40) != s.draw(NONCE, s.population(changed), 40)


def test_attack_a_device_listed_twice_is_refused_before_sampling():
    fleet = _fleet(10)
    with pytest.raises(s.SamplingError, match="twice"):
        s.population([*fleet, fleet[0]])


def test_an_honest_fleet_gets_a_bound_near_one_and_a_fake_one_near_zero():
    fleet = _fleet()
    honest = s.audit(NONCE, fleet, dict(fleet), 60)
    assert honest["units_genuine"] == 60 and 0.94 < honest["genuine_share_lower_bound"] < 1.0
    assert honest["supported_pflops"] < sum(t for _, t in fleet) / 1e3
    fake = s.audit(NONCE, fleet, {}, 60)
    assert fake["units_genuine"] == 0 and fake["genuine_share_lower_bound"] == 0 and fake["supported_pflops"] == 0


def test_capacity_weighting_a_device_proven_at_half_has_half_its_units_genuine():
    fleet = [("GPU-big", 1000.0)]
    a = s.audit(NONCE, fleet, {"GPU-big": 500.0}, 200)
    assert 70 < a["units_genuine"] < 130  # about half of the 200 units drawn from its range


def test_the_lower_bound_is_exact_at_the_edges():
    assert s.lower_bound(1000, 10, 0) == 0
    assert s.lower_bound(1000, 1000, 1000) == 1000  # everything drawn: the bound is the truth
    assert s.lower_bound(1000, 1000, 700) == 700


@pytest.mark.parametrize("fake_share, hide_in", [(0.1, "small"), (0.3, "large"), (0.5, "random")])
def test_the_bound_covers_the_truth_at_least_95_percent_of_the_time(fake_share, hide_in):
    """Fleets with a known share of fake devices (proven 0): over 300 nonces the bound is below the true genuine
    share of reported capacity in at least 95% of them. Deterministic: seeded fleet, fixed nonces."""
    r = random.Random(f"{fake_share}-{hide_in}")  # a str seed is hashed by SHA-512: the same in every process
    fleet = _fleet(300, seed=7)
    order = sorted(fleet, key=lambda d: d[1]) if hide_in == "small" else sorted(fleet, key=lambda d: -d[1])
    if hide_in == "random":
        order = list(fleet)
        r.shuffle(order)
    total = sum(t for _, t in fleet)
    fakes, faked = set(), 0.0
    for device, t in order:
        if faked + t > fake_share * total:
            continue
        fakes.add(device)
        faked += t
    proven = {d: t for d, t in fleet if d not in fakes}
    pop = s.population(fleet)
    truth_units = sum(u for d, u in zip(pop["devices"], pop["units"], strict=True) if d not in fakes)
    truth = truth_units / pop["total_units"]
    trials = 300
    covered = sum(s.audit(f"coverage-nonce-{i:06d}", fleet, proven, 50)["genuine_share_lower_bound"] <= truth
                  for i in range(trials))  # fmt: skip
    assert covered / trials >= 0.95
    # and the bound is informative, not trivially zero
    assert s.audit("coverage-nonce-x00001", fleet, proven, 50)["genuine_share_lower_bound"] > truth - 0.35
