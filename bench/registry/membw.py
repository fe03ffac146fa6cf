"""membw: STREAM memory bandwidth (copy, scale, add, triad; host<->device copies on GPUs), bench.workloads.membw."""

from __future__ import annotations

from typing import Any

from bench import figures
from bench.model.metrics import Metric, device_labels
from bench.model.reports import Measurement
from bench.model.tables import Grid, pct
from bench.registry import Plot, Workload, key, register

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


def membw_grid(measurements: list[Measurement]) -> Grid:
    grid = Grid("memory bandwidth (STREAM byte counts, GB = 1e9 B)",
                ["device", "kernel", "array MiB", "median GB/s", "best GB/s", "of peak", "check"],
                numeric={"array MiB", "median GB/s", "best GB/s", "of peak"})  # fmt: skip
    for m in measurements:
        s = m.summary or {}
        elements = m.spec.get("elements")
        grid.add([m.device.get("id", "?"), m.spec.get("kernel", m.spec.get("step", "-")),
                  f"{elements * 8 / 2**20:.0f}" if elements else "-", f"{s.get('gbps_median', 0):.2f}",
                  f"{s.get('gbps_best', 0):.2f}", pct(s["efficiency"]) if "efficiency" in s else "no peak",
                  m.status if m.status == "ok" else f"{m.status}: {m.reason}"],
                 None if m.status == "ok" else "bad")  # fmt: skip
    return grid


WORKLOAD = register(Workload(
    name=NAME,
    unit=figures.Unit.BYTE,
    summary=summary,
    work=work,
    metrics=metrics,
    grids=lambda measurements, every_matmul=False: [membw_grid(measurements)],
    series={"membw_gbps": ("bench_membw_bytes_per_second", 1e9,
                           "STREAM memory bandwidth in bytes per second (median iteration)")},
    config={
        "array_mib": key("float", None, "MiB per STREAM array (default: 256 on CPU, 1024 on GPU).", minimum=0.001,
                         nullable=True),
        "budget_s": key("float", 1.0, "Timed seconds per kernel.", minimum=0.001),
    },
    steps="bench.planning.membw:suite_steps",
    # its STREAM kernels' bandwidth is the roofline's memory ceiling, and their FLOP/byte its memory points
    plots=(Plot("roofline", "Roofline ({unit} against FLOP/byte)", role="memory"),),
    what=("kernel",),
))  # fmt: skip
