"""matmul: dense GEMM TFLOPS, the shape search for MAMF and the sustained window for MSMF (bench.workloads.matmul,
bench.workloads.matmul_search)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench import figures
from bench import precision as prec
from bench.model.reports import Measurement
from bench.registry import Workload, key, register
from bench.report import render
from bench.report.metrics import Metric, device_labels, shape

NAME = "matmul"


def summary(m: Measurement) -> dict[str, Any]:
    return figures.matmul_summary(m.samples_s, m.work_per_iteration, (m.peak or {}).get("tflops"))


def work(spec: Mapping[str, Any]) -> int:
    return figures.matmul_flops(spec.get("m", 0), spec.get("n", 0), spec.get("k", 0))


def metrics(m: Measurement) -> list[Metric]:
    labels = {**device_labels(m), "precision": str(m.spec.get("precision"))}
    search = m.details.get("search")
    value = (m.summary or {}).get("tflops_median", 0.0)
    common = {"workload": NAME, "status": m.status, "emulated": m.emulated, "samples_s": tuple(m.samples_s)}
    if search is None:
        return [Metric("matmul_tflops", {**labels, "shape": shape(m.spec)}, value, "TFLOPS", **common)]
    if search.get("role") == "final" and search.get("mamf"):
        return [Metric("matmul_mamf_tflops", labels, value, "TFLOPS", **common)]
    if search.get("role") == "msmf" and "msmf" in m.details:
        return [Metric("matmul_msmf_tflops", labels, m.details["msmf"]["tflops"], "TFLOPS", **common)]
    return []


WORKLOAD = register(Workload(
    name=NAME,
    unit=figures.Unit.FLOP,
    summary=summary,
    work=work,
    metrics=metrics,
    grids=render.matmul_grids,
    series={
        "matmul_tflops": ("bench_matmul_flops_per_second", 1e12,
                          "Dense matmul floating-point operations per second (median iteration) at a fixed shape"),
        "matmul_mamf_tflops": ("bench_matmul_mamf_flops_per_second", 1e12,
                               "Maximum achievable matmul FLOP/s: the best searched shape's median iteration"),
        "matmul_msmf_tflops": ("bench_matmul_msmf_flops_per_second", 1e12,
                               "Maximum sustained matmul FLOP/s: the best shape held back to back for the window"),
    },
    config={
        "search": key("str", "auto", "auto (shape search for MAMF/MSMF) or none (fixed sizes).", choices=("auto", "none")),
        "precisions": key("str-list", [], "Precisions; empty: every precision the device kind has.",
                          choices=tuple(prec.PRECISIONS)),
        "sizes": key("int-list", [], "search = none: square sizes N (default: the device kind's).", minimum=1),
        "budget_s": key("float", None, "Seconds per search (search) or per measurement (fixed sizes).", minimum=0.001,
                        nullable=True),
        "window_s": key("float", None, "Seconds the best shape is held for MSMF (0: no MSMF).", minimum=0.0,
                        nullable=True),
        "settle_s": key("float", None, "Seconds a large product runs before each search so clocks settle (default: 20 "
                        "on GPU, 0 on CPU).", minimum=0.0, nullable=True),
        "max_warmup_s": key("float", 1.0, "Most seconds of warm-up per measurement.", minimum=0.0),
        "min_iterations": key("int", 5, "Fewest timed iterations per measurement.", minimum=1),
    },
    steps="bench.planning.matmul:suite_steps",
))  # fmt: skip
