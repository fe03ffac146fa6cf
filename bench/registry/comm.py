"""comm: collective bandwidth over ranks with nccl-tests' definitions (bench.workloads.comm). It runs across ranks
(bench run launched by torchrun or srun), not as per-device steps."""

from __future__ import annotations

from typing import Any

from bench import figures
from bench.model.metrics import Metric, device_labels
from bench.model.reports import Measurement
from bench.model.tables import Grid
from bench.registry import Plot, Workload, key, register

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


def busbw_grid(measurements: list[Measurement], full: bool = False) -> Grid:
    """Collectives: one row per op (its best bus bandwidth and the size it was reached at, the largest size's, and
    whether every result checked), or with `full` one row per op x size (bench comm's own table; the report's CSV has
    every measurement either way)."""
    if full:
        return _busbw_full(measurements)
    grid = Grid("collectives (nccl-tests definitions; time = median per-op time, max over ranks; GB = 1e9 B): best "
                "bus bandwidth per op; every size in report.csv", ["op", "ranks", "sizes", "best busbw GB/s",
                "at bytes", "busbw GB/s at the largest size", "check"],
                numeric={"ranks", "best busbw GB/s", "at bytes", "busbw GB/s at the largest size"})  # fmt: skip
    by_op: dict[str, list[Measurement]] = {}
    for m in measurements:
        by_op.setdefault(str(m.spec.get("op", m.spec.get("step", "-"))), []).append(m)
    for op, ms in by_op.items():
        ok = [m for m in ms if m.status == "ok" and m.summary]
        sizes = sorted({m.spec.get("bytes") for m in ms if isinstance(m.spec.get("bytes"), int)})
        best = max(ok, key=lambda m: m.summary["busbw_gbps"], default=None)
        largest = max(ok, key=lambda m: m.spec.get("bytes", 0), default=None)
        wrong = [m for m in ms if m.status != "ok"]
        grid.add([op, ms[0].spec.get("world_size", "-"),
                  f"{len(sizes)} ({sizes[0]}..{sizes[-1]} B)" if sizes else "-",
                  f"{best.summary['busbw_gbps']:.3f}" if best else "-", best.spec.get("bytes", "-") if best else "-",
                  f"{largest.summary['busbw_gbps']:.3f}" if largest else "-",
                  "ok" if not wrong else f"WRONG at {len(wrong)} size(s): {wrong[0].reason}"],
                 None if not wrong else "bad")  # fmt: skip
    return grid


def _busbw_full(measurements: list[Measurement]) -> Grid:
    grid = Grid("collectives (nccl-tests definitions; time = median per-op time of the batches, max over ranks; "
                "GB = 1e9 B)", ["op", "ranks", "bytes", "time us", "algbw GB/s", "busbw GB/s", "check"],
                numeric={"ranks", "bytes", "time us", "algbw GB/s", "busbw GB/s"})  # fmt: skip
    peak: dict[str, float] = {}
    for m in measurements:
        s = m.summary or {}
        op = m.spec.get("op", m.spec.get("step", "-"))
        if m.status == "ok":
            peak[op] = max(peak.get(op, 0.0), s["busbw_gbps"])
        grid.add([op, m.spec.get("world_size", "-"), m.spec.get("bytes", "-"), f"{s.get('median_s', 0) * 1e6:.1f}",
                  f"{s.get('algbw_gbps', 0):.3f}", f"{s.get('busbw_gbps', 0):.3f}",
                  "ok" if m.status == "ok" else f"WRONG: {m.reason}"], None if m.status == "ok" else "bad")  # fmt: skip
    for op, bw in peak.items():
        grid.add([op, "", "peak", "", "", f"{bw:.3f}", ""], "bold")
    return grid


WORKLOAD = register(Workload(
    name=NAME,
    across_ranks=True,
    job="bench.planning.comm:job_phases",
    unit=figures.Unit.BYTE,
    summary=summary,
    work=work,
    metrics=metrics,
    grids=lambda measurements, every_matmul=False: [busbw_grid(measurements)],
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
    plots=(Plot("vs_size", "Bus bandwidth (GB/s) vs message size, per collective", x="bytes", y="busbw_gbps",
                panel="op", xlabel="message size (bytes)", ylabel="busbw (GB/s)",
                heading="Collective bus bandwidth ({world_size} ranks, GB = 1e9 B)"),),
    what=("op",),
))  # fmt: skip
