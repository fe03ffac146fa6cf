"""The workload registry: every built-in workload declared once, and a new one picked up by the suite config, the
metrics, verify, the tables and the Prometheus export without editing any of them."""

import dataclasses

import pytest

from bench import figures, registry, suite
from bench.model.metrics import Metric
from bench.model.tables import Grid
from bench.report import export, render
from bench.report import verify as v
from bench.report.metrics import metrics
from tests.report import synthetic as syn


def test_builtins_are_registered_in_suite_order():
    assert registry.names()[: len(registry.BUILTIN)] == registry.BUILTIN
    assert suite.workload_names() == registry.names()
    for w in registry.workloads():
        assert suite.schema()[w.name] == dict(w.config)


def test_every_steps_function_resolves():
    for w in registry.workloads():
        if w.steps is not None:
            assert callable(w.step_builder()), w.name


def test_every_metric_a_workload_yields_has_a_prometheus_series():
    report = syn.report(syn.every_workload())
    names = {m.name for m in metrics(report)}
    assert names and names <= set(export.prom_series())
    series = [s for w in registry.workloads() for s, _, _ in w.series.values()]
    assert len(series) == len(set(series))


def test_a_workload_registered_twice_is_refused():
    w = registry.get("membw")
    with pytest.raises(ValueError, match="twice"):
        registry.register(dataclasses.replace(w))


@pytest.fixture
def toy():
    """A workload that exists only here: counts bytes hashed, one metric, one table."""

    def summary(m):
        return figures.derive(m.samples_s, m.work_per_iteration, unit=figures.Unit.BYTE)

    def grids(ms, every_matmul=False):
        grid = Grid("hashing", ["device", "GB/s"])
        for m in ms:
            grid.add([m.device.get("id"), f"{m.summary['gbps_median']:.2f}"])
        return [grid]

    w = registry.register(registry.Workload(
        name="hashing", unit=figures.Unit.BYTE, summary=summary,
        metrics=lambda m: [Metric("hashing_gbps", {"device": "cpu"}, m.summary["gbps_median"], "GB/s", "hashing")],
        grids=grids, config={"budget_s": registry.key("float", 1.0, "Seconds.", minimum=0.0)},
        series={"hashing_gbps": ("bench_hashing_bytes_per_second", 1e9, "Bytes hashed per second")},
    ))  # fmt: skip
    yield w
    del registry._REGISTRY["hashing"]


def test_a_new_workload_is_one_registration(toy):
    samples = syn.samples(0.01)
    m = syn.matmul("float32", samples)
    m.workload, m.spec, m.work_unit, m.work_per_iteration, m.peak = "hashing", {"bytes": 10**8}, "byte", 10**8, None
    m.summary = figures.derive(samples, 10**8, unit=figures.Unit.BYTE)
    report = syn.report([m])
    assert "hashing" in registry.names()
    assert [x.name for x in metrics(report)] == ["hashing_gbps"]
    assert "bench_hashing_bytes_per_second" in export.prometheus(report)
    assert [g.title for g in render.workload_grids(report.measurements)] == ["hashing"]
    codes = {f.code for f in v.verify_node_report(report.to_dict())}
    assert "figure-mismatch" not in codes and "unknown-workload" not in codes


def test_an_unknown_workload_is_an_error_in_verify():
    m = syn.matmul("float32", syn.samples(0.01))
    m.workload = "quantum"
    codes = {f.code for f in v.verify_node_report(syn.report([m]).to_dict())}
    assert "unknown-workload" in codes


def test_suite_order_does_not_depend_on_which_descriptor_was_imported_first():
    """Importing the training workload first (as bench.plans does) registers it first; the order stays BUILTIN's."""
    import subprocess
    import sys

    code = "import bench.registry.train, bench.registry.comm\nfrom bench import suite\nprint(','.join(suite.workload_names()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ",".join(registry.BUILTIN)


def test_a_descriptor_module_dropped_into_the_package_is_found(tmp_path, monkeypatch):
    """Adding a workload is one module: bench.registry finds it with no edit anywhere else, and the suite config
    (built from the registry) would offer it."""
    import sys

    (tmp_path / "toyhash.py").write_text(
        "from bench import figures\n"
        "from bench.registry import Workload, key, register\n"
        "WORKLOAD = register(Workload(name='toyhash', unit=figures.Unit.BYTE,\n"
        "    summary=lambda m: figures.derive(m.samples_s, m.work_per_iteration, unit=figures.Unit.BYTE),\n"
        "    metrics=lambda m: [], grids=lambda ms, every=False: [],\n"
        "    config={'budget_s': key('float', 1.0, 'Seconds.', minimum=0.0)}))\n"
    )
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_LOADED", False)
    try:
        assert registry.names() == (*registry.BUILTIN, "toyhash")
        assert registry.get("toyhash").config["budget_s"].default == 1.0
    finally:
        registry._REGISTRY.pop("toyhash", None)
        sys.modules.pop("bench.registry.toyhash", None)
