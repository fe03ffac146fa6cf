"""The headline holds (issue 25): a device's MAMF is never taken from a noisy or too-short measurement when a steady
one exists, the rule is judged from the samples (not the node's flags) and never raises the figure, old capacity
reports verify under the rule they were built with, and every output says when no figure was steady or the machine
was loaded."""

from __future__ import annotations

import dataclasses
import datetime as dt

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import figures
from bench.report import aggregate as agg
from bench.report import export, headline, html
from tests.report import synthetic as syn

KEY = lambda m: (m.device.get("id"), m.spec.get("precision"))
NOW = dt.datetime(2026, 11, 28, 10, 10, tzinfo=dt.UTC)


def noisy(median_s: float, seed: int = 1) -> list[float]:
    return syn.samples(median_s, spread=0.6, seed=seed)  # IQR ~ 60% of the median


def search(pick: list[float], *others: tuple[int, list[float]], role: str = "candidate") -> list:
    """A search whose MAMF-marked final is a 512^3 product timed `pick`, with other measurements (n, samples)."""
    out = [syn.matmul_measurement(n, "float32", s, syn.DEVICE, role=role, timer="perf_counter") for n, s in others]
    return [*out, syn.matmul_measurement(512, "float32", pick, syn.DEVICE, role="final", mamf=True,
                                         timer="perf_counter")]  # fmt: skip


def test_a_steady_measurement_replaces_a_noisy_pick_but_never_raises_it():
    # the pick (512^3 at 2 ms, noisy) against a steady 1024^3 slower per FLOP, and a steady one faster than the pick
    slow = syn.samples(0.02, seed=2)  # 1024^3 in 20 ms: 107 GFLOPS, below the pick's 134
    fast = syn.samples(0.01, seed=3)  # 1024^3 in 10 ms: 215 GFLOPS, above the pick: may not stand in
    ms = search(noisy(0.002), (1024, slow), (1024, fast))
    ((m, source),) = figures.mamf(ms, KEY).values()
    assert m.samples_s == slow and source == figures.MAMF_SEARCH
    assert m.summary["tflops_median"] <= ms[-1].summary["tflops_median"]
    ((old, _),) = figures.mamf(ms, KEY, rule=figures.MAMF_RULE_BEST).values()
    assert old is ms[-1]


def test_steadiness_is_judged_from_the_samples_not_the_flags():
    pick = noisy(0.002)
    ms = search(pick, (1024, syn.samples(0.02, seed=2)))
    ms[-1].warnings = []  # the node says nothing about noise: the samples still do
    ms[0].warnings = [{"code": "noisy", "message": "", "hint": ""}]  # a false flag on a steady one changes nothing
    ((m, _),) = figures.mamf(ms, KEY).values()
    assert m is ms[0]


def test_too_short_iterations_are_not_steady_and_the_timer_names_the_resolution():
    short = syn.samples(0.0005)  # 0.5 ms under perf_counter (1 us: 1000 resolutions = 1 ms)
    m = syn.matmul_measurement(256, "float32", short, syn.DEVICE, timer="perf_counter")
    assert [r.split(":")[0] for r in figures.unsteady_reasons(m)] == ["too-short"]
    assert figures.steady(dataclasses.replace(m, timer="cuda_event"))  # 0.5 us resolution: 1000x = 0.5 ms


def test_when_none_is_steady_the_pick_stands_and_every_output_says_so():
    ms = search(noisy(0.002), (256, noisy(0.0003, seed=4)))
    ((m, source),) = figures.mamf(ms, KEY).values()
    assert m is ms[-1] and source == figures.MAMF_SEARCH + figures.UNSTEADY
    report = syn.report(ms)
    assert any("MAMF NOT STEADY" in line for line in headline.lines(report))
    assert "MAMF NOT STEADY" in export.markdown(report).split("## Gates")[0]
    page = html.node_page(report)
    assert page.index("NOT STEADY") < page.index("<h2>Gates</h2>")
    prom = export.prometheus(report)
    assert (
        "bench_matmul_mamf_steady{" in prom
        and prom.split("bench_matmul_mamf_steady{")[1].split("}")[1].split()[0] == "0.0"
    )


def test_prometheus_carries_the_steady_figure():
    slow = syn.samples(0.02, seed=2)
    report = syn.report(search(noisy(0.002), (1024, slow)))
    prom = export.prometheus(report)
    line = next(x for x in prom.splitlines() if x.startswith("bench_matmul_mamf_flops_per_second{"))
    assert (
        float(line.split()[-1])
        == syn.matmul_measurement(1024, "float32", slow, syn.DEVICE).summary["tflops_median"] * 1e12
    )
    assert next(x for x in prom.splitlines() if x.startswith("bench_matmul_mamf_steady{")).endswith(" 1.0")


def test_a_loaded_run_says_so_first():
    report = syn.report(search(syn.samples(0.01)))
    report.config["preflight"] = [{"name": "cpu-load", "status": "warn", "detail": "load average 3.1", "fix": ""},
                                  {"name": "gpu", "status": "unavailable", "detail": "no GPU", "fix": ""}]  # fmt: skip
    first = export.markdown(report).splitlines()[2]
    assert "LOADED MACHINE" in first and "cpu-load" in first and "gpu" not in first
    report.config["preflight"] = [{"name": "gpu", "status": "unavailable", "detail": "no GPU", "fix": ""}]
    assert headline.lines(report) == []


def _gpu_node(key: Ed25519PrivateKey) -> dict:
    """A signed one-GPU report whose search pick (bf16, 500 TFLOPS) is noisy, with a steady candidate at 400."""
    data = syn.node_report(0, [500.0], key)
    pick = syn.gpu_measurement(0, 0, 500.0)
    noisy_samples = [s * (1 + 0.5 * (i % 2)) for i, s in enumerate(pick.samples_s)]
    pick = dataclasses.replace(pick, samples_s=noisy_samples,
                               summary=figures.matmul_summary(noisy_samples, pick.work_per_iteration,
                                                              pick.peak["tflops"]))  # fmt: skip
    steady = syn.gpu_measurement(0, 0, 300.0, role="candidate")
    steady.details["search"]["mamf"] = False
    data["measurements"] = [steady.to_dict(), pick.to_dict()]
    return syn.resign(data, key)


def test_capacity_reports_verify_under_the_rule_they_were_built_with():
    key = Ed25519PrivateKey.generate()
    inputs = [("a.json", _gpu_node(key))]
    new = agg.aggregate(inputs, rules=agg.Rules(), now=NOW)
    old = agg.aggregate(inputs, rules=agg.Rules(mamf_rule=figures.MAMF_RULE_BEST), now=NOW)
    assert new["rules"]["mamf_rule"] == "steady"
    (row_new,), (row_old,) = new["devices"], old["devices"]
    assert (round(row_new["mamf_tflops"]), round(row_old["mamf_tflops"])) == (300, 400)
    del old["rules"]["mamf_rule"]  # a capacity report from before the rule existed
    for cap in (new, old):
        findings = agg.verify_capacity(cap, inputs, now=NOW)
        assert not [f for f in findings if f.code == "capacity-mismatch"], findings
    old["rules"]["mamf_rule"] = "steady"  # and a report claiming the wrong rule does not recompute
    assert [f for f in agg.verify_capacity(old, inputs, now=NOW) if f.code == "capacity-mismatch"]


def test_the_resolution_table_matches_the_timers():
    from bench.measure import stats, timer

    assert stats.TIMER_RESOLUTION_S == {t.name: t.resolution_s for t in (timer.PerfCounterTimer, timer.CudaEventTimer)}


def test_the_search_table_shows_the_figure_that_stands_and_why():
    from bench.registry import matmul

    (g,) = matmul.search_grids(search(noisy(0.002), (1024, syn.samples(0.02, seed=2))))
    (row,) = g.records()
    assert row["best shape"] == "1024x1024x1024" and "pick 512x512x512 was not steady" in row["notes"]
    (g,) = matmul.search_grids(search(noisy(0.002)))
    assert "NOT STEADY: noisy" in g.records()[0]["notes"] and g.styles == ["bad"]
