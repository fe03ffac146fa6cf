"""A headline figure as plain data (Metric), and the labels every workload's metrics share. A workload's descriptor
(bench.registry) builds its metrics from a measurement; gates, compare, JUnit, CSV, history and Prometheus
(bench.report) read them. Pure: neither side imports the other to agree on what a metric is.

Each metric keeps the raw per-iteration seconds it was derived from, so a comparison can test significance on the
samples rather than on two medians.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.model.reports import Measurement


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
