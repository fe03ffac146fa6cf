"""A node report's headline figures as flat metrics: what gates, JUnit, compare, Prometheus, CSV and history share.
Each workload defines its own (bench.registry); the Metric type is plain data (bench.model.metrics); this module
holds the loop over them.

Pure functions of the report. Each metric keeps the raw per-iteration seconds it was derived from, so a comparison
can test significance on the samples rather than on two medians.
"""

from __future__ import annotations

from bench import registry
from bench.model.metrics import Metric
from bench.model.reports import Measurement, NodeReport


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
