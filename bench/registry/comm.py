"""comm: collective bandwidth over ranks with nccl-tests' definitions (bench.workloads.comm). It runs across ranks
(bench run launched by torchrun or srun), not as per-device steps."""

from __future__ import annotations

from typing import Any

from bench import figures
from bench.model.reports import Measurement
from bench.registry import Workload, key, register
from bench.report import render
from bench.report.metrics import Metric, device_labels

NAME = "comm"


def summary(m: Measurement) -> dict[str, Any]:
    """ValueError for an op nccl-tests does not define (verify reports it)."""
    return figures.comm_summary(m.samples_s, m.spec.get("bytes", 0), m.spec.get("op", ""), m.spec.get("world_size", 1))


def work(spec: dict[str, Any]) -> int:
    """Bytes per iteration: the message size (nccl-tests' S), which the summary divides by; verify holds
    work_per_iteration to it so the record cannot contradict itself."""
    return figures.positive_int(spec, "bytes")


def metrics(m: Measurement) -> list[Metric]:
    labels = {**device_labels(m), "op": str(m.spec.get("op")), "bytes": str(m.spec.get("bytes")),
              "world_size": str(m.spec.get("world_size"))}  # fmt: skip
    value = (m.summary or {}).get("busbw_gbps", 0.0)
    return [Metric("comm_busbw_gbps", labels, value, "GB/s", NAME, m.status, samples_s=tuple(m.samples_s))]


WORKLOAD = register(Workload(
    name=NAME,
    unit=figures.Unit.BYTE,
    summary=summary,
    work=work,
    metrics=metrics,
    grids=lambda measurements, every_matmul=False: [render.busbw_grid(measurements)],
    series={"comm_busbw_gbps": ("bench_comm_busbw_bytes_per_second", 1e9,
                                "Collective bus bandwidth in bytes per second (nccl-tests definition)")},
    config={
        "ops": key("str-list", list(figures.COMM_OPS), "Collectives.", choices=tuple(figures.COMM_OPS)),
        "min_bytes": key("int", 8, "Smallest message.", minimum=1),
        "max_bytes": key("int", None, "Largest message (default: 64 MiB on CPU, 1 GiB on GPU).", minimum=1,
                         nullable=True),
        "factor": key("int", 2, "Message size step factor.", minimum=2),
        "iterations": key("int", 20, "Operations per timed batch (nccl-tests' -n); a sample is their mean.", minimum=1),
        "batches": key("int", 5, "Timed batches (samples) per size.", minimum=1),
        "warmup_iterations": key("int", 5, "Untimed operations per size first (nccl-tests' -w).", minimum=0),
        "timeout_s": key("float", 300.0, "Seconds to wait for other ranks.", minimum=1.0),
    },
))  # fmt: skip
