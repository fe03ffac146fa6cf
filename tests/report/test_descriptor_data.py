"""What the built-in descriptors hand the report layer as plain data (bench.registry: what, case_labels, variant,
plots), read where a report names a measurement: warning lines, JUnit cases, Prometheus' identity labels, the page's
figures. Each check here fails if its descriptor field is dropped."""

import dataclasses

from bench import registry
from bench.report import export, gates, plots, render
from bench.report.metrics import of as metrics_of
from tests.report import synthetic as syn

NOISY = {"code": "noisy", "message": "m", "hint": "h"}


def test_a_warning_line_names_each_measurement_by_its_descriptors_spec_keys():
    ms = [dataclasses.replace(m, warnings=[NOISY]) for m in syn.every_workload()]
    (line,) = render.warning_lines(ms, limit=10)
    assert "train cpu bfloat16 gpt small" in line  # train: model and preset
    assert "membw cpu triad" in line and "comm cpu all_reduce" in line  # membw: kernel; comm: op
    fixed = syn.every_workload()[0]
    assert f"matmul cpu bfloat16 {fixed.spec['m']}x{fixed.spec['n']}x{fixed.spec['k']}" in line  # matmul: shape


def test_a_failed_step_is_named_by_its_step_label():
    failed = dataclasses.replace(syn.every_workload()[3], spec={"step": "train gpt small on cpu"}, status="error",
                                 reason="RuntimeError: out of memory")  # fmt: skip
    assert render.warning_lines([failed]) == ["train cpu train gpt small on cpu: error: RuntimeError: out of memory"]
    # a failed matmul too (docs/reference.md says so: before the descriptors named it, it read "-")
    step = dataclasses.replace(syn.every_workload()[0], spec={"step": "matmul float32 on cpu"}, status="error",
                               reason="RuntimeError: out of memory")  # fmt: skip
    assert render.warning_lines([step]) == ["matmul cpu matmul float32 on cpu: error: RuntimeError: out of memory"]


def test_a_junit_case_is_named_by_the_descriptors_case_labels():
    names = {gates.case_name(metric) for m in syn.every_workload() for metric in metrics_of(m)}
    assert names == {"matmul cpu bfloat16", "train cpu gpt small bfloat16", "membw cpu triad", "comm cpu all_reduce"}


def test_prometheus_validity_labels_carry_the_descriptors_variant():
    ms = syn.every_workload()
    ms[0].details["backend"] = "torch"
    prom = export.prometheus(syn.report(ms))
    (line,) = [x for x in prom.splitlines() if x.startswith("bench_measurement_valid{") and 'role=""' in x
               and 'workload="matmul"' in x]  # fmt: skip
    assert 'variant="torch"' in line


def test_the_page_figures_come_from_the_descriptors_in_registry_order():
    assert [(p.kind, p.role) for p in plots.node_plots()] == [
        ("throughput_vs_size", ""), ("achieved_vs_peak", ""), ("roofline", "compute"), ("sustained_window", ""),
        ("telemetry", ""), ("vs_size", ""),
    ]  # fmt: skip
    assert plots.listing("roofline") == {"matmul", "membw"} and plots.listing("roofline", "memory") == {"membw"}
    assert {w.name for w in registry.workloads() if w.plots} == {"matmul", "membw", "comm"}
