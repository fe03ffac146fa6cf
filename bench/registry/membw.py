"""membw: STREAM memory bandwidth (copy, scale, add, triad; host<->device copies on GPUs), bench.workloads.membw."""

from __future__ import annotations

from typing import Any

from bench import figures
from bench.model.reports import Measurement
from bench.registry import Workload, key, register
from bench.report import render
from bench.report.metrics import Metric, device_labels

NAME = "membw"


def summary(m: Measurement) -> dict[str, Any]:
    return figures.membw_summary(m.samples_s, m.work_per_iteration, (m.peak or {}).get("tbps"))


def work(spec: dict[str, Any]) -> int:
    """Bytes per iteration of a stored spec: verify holds work_per_iteration to it (bench.figures.membw_work)."""
    return figures.membw_work(spec)


def metrics(m: Measurement) -> list[Metric]:
    labels = {**device_labels(m), "kernel": str(m.spec.get("kernel"))}
    value = (m.summary or {}).get("gbps_median", 0.0)
    return [Metric("membw_gbps", labels, value, "GB/s", NAME, m.status, samples_s=tuple(m.samples_s))]


WORKLOAD = register(Workload(
    name=NAME,
    unit=figures.Unit.BYTE,
    summary=summary,
    work=work,
    metrics=metrics,
    grids=lambda measurements, every_matmul=False: [render.membw_grid(measurements)],
    series={"membw_gbps": ("bench_membw_bytes_per_second", 1e9,
                           "STREAM memory bandwidth in bytes per second (median iteration)")},
    config={
        "array_mib": key("float", None, "MiB per STREAM array (default: 256 on CPU, 1024 on GPU).", minimum=0.001,
                         nullable=True),
        "budget_s": key("float", 1.0, "Timed seconds per kernel.", minimum=0.001),
    },
    steps="bench.planning.membw:suite_steps",
))  # fmt: skip
