"""A node report's headline figures as flat metrics: what gates, JUnit, compare, Prometheus, CSV and history share.

Pure functions of the report. Each metric keeps the raw per-iteration seconds it was derived from, so a comparison
can test significance on the samples rather than on two medians.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.report.model import Measurement, NodeReport


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


def _device_labels(m: Measurement) -> dict[str, str]:
    return {"device": str(m.device.get("id", "?")), "model": str(m.device.get("name", "?"))}


def _shape(spec: dict[str, Any]) -> str:
    return f"{spec.get('m')}x{spec.get('n')}x{spec.get('k')}"


def _matmul(m: Measurement) -> list[Metric]:
    labels = {**_device_labels(m), "precision": str(m.spec.get("precision"))}
    search = m.details.get("search")
    value = (m.summary or {}).get("tflops_median", 0.0)
    common = {"workload": "matmul", "status": m.status, "emulated": m.emulated, "samples_s": tuple(m.samples_s)}
    if search is None:
        return [Metric("matmul_tflops", {**labels, "shape": _shape(m.spec)}, value, "TFLOPS", **common)]
    if search.get("role") == "final" and search.get("mamf"):
        return [Metric("matmul_mamf_tflops", labels, value, "TFLOPS", **common)]
    if search.get("role") == "msmf" and "msmf" in m.details:
        return [Metric("matmul_msmf_tflops", labels, m.details["msmf"]["tflops"], "TFLOPS", **common)]
    return []


def _train(m: Measurement) -> list[Metric]:
    role = m.details.get("role") or ("rank" if "rank" in m.details else "single")
    labels = {**_device_labels(m), "model_kind": str(m.spec.get("model")), "preset": str(m.spec.get("preset")),
              "precision": str(m.spec.get("precision")), "role": role}  # fmt: skip
    if "rank" in m.details:
        labels["rank"] = str(m.details["rank"])
    s = m.summary or {}
    common = {"workload": "train", "status": m.status, "samples_s": tuple(m.samples_s)}
    out = [Metric("train_tflops", labels, s.get("tflops_median", 0.0), "TFLOPS", **common),
           Metric("train_items_per_s", labels, s.get("items_per_s", 0.0), "items/s", **common)]  # fmt: skip
    if s.get("mfu") is not None:
        out.append(Metric("train_mfu", labels, s["mfu"], "ratio", **common))
    return out


def _comm(m: Measurement) -> list[Metric]:
    labels = {**_device_labels(m), "op": str(m.spec.get("op")), "bytes": str(m.spec.get("bytes")),
              "world_size": str(m.spec.get("world_size"))}  # fmt: skip
    value = (m.summary or {}).get("busbw_gbps", 0.0)
    return [Metric("comm_busbw_gbps", labels, value, "GB/s", "comm", m.status, samples_s=tuple(m.samples_s))]


def _membw(m: Measurement) -> list[Metric]:
    labels = {**_device_labels(m), "kernel": str(m.spec.get("kernel"))}
    value = (m.summary or {}).get("gbps_median", 0.0)
    return [Metric("membw_gbps", labels, value, "GB/s", "membw", m.status, samples_s=tuple(m.samples_s))]


EXTRACTORS = {"matmul": _matmul, "train": _train, "comm": _comm, "membw": _membw}


def measured(m: Measurement) -> bool:
    return m.status in ("ok", "invalid") and bool(m.samples_s) and m.summary is not None


def metrics(report: NodeReport) -> list[Metric]:
    """Headline metrics of every measured entry (skipped and failed entries have none; see failures())."""
    out = []
    for m in report.measurements:
        extract = EXTRACTORS.get(m.workload)
        if extract and measured(m):
            out += extract(m)
    return out


def best_by_precision(report: NodeReport) -> dict[str, dict[str, float]]:
    """{precision: {device id: MAMF}} by the aggregator's rule (bench.report.devices.device_rows: the search MAMF,
    else the best fixed-shape median; valid, native measurements only). What --fail-below checks."""
    from bench.report.devices import device_rows  # the one definition of a device's MAMF

    ids = {m.device.get("uuid"): str(m.device.get("id")) for m in report.measurements}
    best: dict[str, dict[str, float]] = {}
    for row in device_rows(report, ""):
        best.setdefault(row["precision"], {})[ids.get(row["device"], str(row["device"]))] = row["mamf_tflops"]
    return best
