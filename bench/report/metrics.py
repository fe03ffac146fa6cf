"""A node report's headline figures as flat metrics: what gates, JUnit, compare, Prometheus, CSV and history share.
Each workload defines its own (bench.registry); this module holds the Metric type and the loop over them.

Pure functions of the report. Each metric keeps the raw per-iteration seconds it was derived from, so a comparison
can test significance on the samples rather than on two medians.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench import registry
from bench.model.reports import Measurement, NodeReport


@dataclass(frozen=True)
class Metric:
    """One figure. `name` says what (e.g. matmul_mamf_tflops); `labels` say where (device, precision, shape, ...);
    `samples_s` are the seconds per iteration behind it (the figure is proportional to 1 / seconds)."""

    name: str
    labels: dict[str, str]
    value: float
    unit: str
    workload: str
    status: str = "ok"
    emulated: bool = False
    samples_s: tuple[float, ...] = field(default=(), repr=False)

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Identity across runs on the same node: the name and every label."""
        return self.name, tuple(sorted(self.labels.items()))

    @property
    def title(self) -> str:
        return f"{self.name} " + " ".join(f"{k}={v}" for k, v in sorted(self.labels.items()))


def device_labels(m: Measurement) -> dict[str, str]:
    """The labels every metric of a measurement carries: its device id and model."""
    return {"device": str(m.device.get("id", "?")), "model": str(m.device.get("name", "?"))}


def shape(spec: dict[str, Any]) -> str:
    return f"{spec.get('m')}x{spec.get('n')}x{spec.get('k')}"


def measured(m: Measurement) -> bool:
    return m.status in ("ok", "invalid") and bool(m.samples_s) and m.summary is not None


def metrics(report: NodeReport) -> list[Metric]:
    """Headline metrics of every measured entry (skipped and failed entries have none; see failures())."""
    out = []
    for m in report.measurements:
        out += of(m)
    return out


def of(m: Measurement) -> list[Metric]:
    """The headline metrics of one measurement, as its workload (bench.registry) defines them; none when it was not
    measured or its workload is not one this bench knows."""
    workload = registry.get(m.workload)
    return workload.metrics(m) if workload and measured(m) else []


def best_by_precision(report: NodeReport) -> dict[str, dict[str, float]]:
    """{precision: {device id: MAMF}} by the aggregator's rule (bench.report.devices.device_rows: the search MAMF,
    else the best fixed-shape median; valid, native measurements only). What --fail-below checks."""
    from bench.report.devices import device_rows  # the one definition of a device's MAMF

    ids = {m.device.get("uuid"): str(m.device.get("id")) for m in report.measurements}
    best: dict[str, dict[str, float]] = {}
    for row in device_rows(report, ""):
        best.setdefault(row["precision"], {})[ids.get(row["device"], str(row["device"]))] = row["mamf_tflops"]
    return best
