"""realnode (issue 26): figures.mamf gathers each device x precision's stand-ins once instead of going through every
measurement for each unsteady pick; the picks and sources are the old loop's, on random reports with unsteady picks,
emulated measurements, fixed shapes, MSMF windows and several devices."""

import random

from bench import figures
from tests.report.synthetic import DEVICE, matmul_measurement


def old_mamf(measurements, key, emulated=False, rule=figures.MAMF_RULE_STEADY):
    """figures.mamf before this change (its second loop over every measurement for each unsteady pick)."""
    measurements = list(measurements)
    out = {}
    for m in measurements:
        source = figures.mamf_source(m)
        if source is None or (m.emulated and not emulated):
            continue
        k = key(m)
        held = out.get(k)
        if (
            source == figures.MAMF_SEARCH
            or held is None
            or (held[1] == figures.MAMF_FIXED and m.summary["tflops_median"] > held[0].summary["tflops_median"])
        ):
            out[k] = (m, source)
    if rule == figures.MAMF_RULE_BEST or all(figures.steady(m) for m, _ in out.values()):
        return out
    for k, (pick, source) in list(out.items()):
        if figures.steady(pick):
            continue
        ceiling = pick.summary["tflops_median"]
        best = None
        for m in measurements:
            if (
                m is pick
                or not figures._standin(m)
                or (m.emulated and not emulated)
                or m.emulated != pick.emulated
                or m.summary["tflops_median"] > ceiling
                or not figures.steady(m)
                or key(m) != k
            ):
                continue
            if best is None or m.summary["tflops_median"] > best.summary["tflops_median"]:
                best = m
        if best is None:
            out[k] = (pick, source + figures.UNSTEADY)
        else:
            out[k] = (best, figures.MAMF_SEARCH if best.details.get("search") else figures.MAMF_FIXED)
    return out  # fmt: skip


def random_report(rng: random.Random) -> list:
    out = []
    for _ in range(rng.randint(1, 60)):
        device = {**DEVICE, "uuid": rng.choice(["a", "b", "c"])}
        median = rng.choice([2e-4, 4e-4, 6e-4, 1e-3, 3e-3])  # under 0.5 ms: too short for CUDA events
        spread = rng.choice([0.001, 0.3])  # 0.3: noisy
        samples = [median * (1 + spread * rng.uniform(-1, 1)) for _ in range(rng.randint(5, 30))]
        role = rng.choice([None, "candidate", "final", "final", "msmf"])
        m = matmul_measurement(rng.choice([256, 512, 1024]), rng.choice(["bfloat16", "float32"]), samples, device,
                               status=rng.choice(["ok", "ok", "ok", "invalid"]), emulated=rng.random() < 0.15,
                               role=role, mamf=role == "final" and rng.random() < 0.7, timer="cuda_event")  # fmt: skip
        out.append(m)
    return out


def test_mamf_is_the_old_loop_on_random_reports():
    rng = random.Random(26)
    unsteady = 0
    for _ in range(400):
        ms = random_report(rng)

        def key(m):
            return m.device["uuid"], m.spec["precision"]

        for emulated in (False, True):
            for rule in figures.MAMF_RULES:
                new, old = figures.mamf(ms, key, emulated, rule), old_mamf(ms, key, emulated, rule)
                assert {k: (id(m), s) for k, (m, s) in new.items()} == {k: (id(m), s) for k, (m, s) in old.items()}
                unsteady += any(not figures.steady(m) for m, _ in old.values())
    assert unsteady > 100  # the stand-in search ran, not only the steady early return
