"""Comparing two node reports metric by metric: a change counts only when it is larger than the threshold and
statistically significant on the raw samples (Mann-Whitney U, scipy), and runs on different hardware or software are
declared not comparable instead of being compared."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from bench.model.metrics import Metric
from bench.model.reports import NodeReport
from bench.report.metrics import of as metrics_of

#: Fewest samples per side for the rank test; below it a difference is never called significant.
MIN_SAMPLES = 3


def _hardware(report: NodeReport) -> dict[str, Any]:
    host = report.inventory.get("host", {})
    gpus = report.inventory.get("nvml", {}).get("gpus", [])
    return {"cpu_model": host.get("cpu_model"), "architecture": host.get("architecture"),
            "physical_cores": host.get("physical_cores"), "gpus": sorted(str(g.get("name")) for g in gpus)}  # fmt: skip


def _software(report: NodeReport) -> dict[str, Any]:
    host = report.inventory.get("host", {})
    nvml = report.inventory.get("nvml", {})
    return {"torch": host.get("torch_version"), "cuda": host.get("torch_cuda"), "blas": host.get("torch_blas"),
            "driver": nvml.get("driver_version")}  # fmt: skip


def not_comparable(a: NodeReport, b: NodeReport) -> list[str]:
    """Why two reports' figures must not be compared (empty when they may): different hardware or software."""
    reasons = []
    for what, get in (("hardware", _hardware), ("software", _software)):
        x, y = get(a), get(b)
        for k in sorted(x):
            if x[k] != y.get(k):
                reasons.append(f"{what} differs: {k} {x[k]!r} vs {y.get(k)!r}")
    return reasons


@dataclass(frozen=True)
class Change:
    metric: str
    name: str
    labels: dict[str, str]
    unit: str
    a: float
    b: float
    ratio: float
    p_value: float | None
    significant: bool
    flagged: bool
    direction: str  # 'better', 'worse' or 'same'

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def significance(a: tuple[float, ...], b: tuple[float, ...]) -> float | None:
    """Two-sided Mann-Whitney U p-value of two sample sets, or None with too few samples to test."""
    if len(a) < MIN_SAMPLES or len(b) < MIN_SAMPLES:
        return None
    if len(set(a) | set(b)) == 1:
        return 1.0
    from scipy import stats as sps  # here, not at import: scipy.stats costs ~2 s of every `bench run` start-up

    return float(sps.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def change(a: Metric, b: Metric, threshold: float, alpha: float) -> Change:
    ratio = b.value / a.value if a.value else math.inf
    p = significance(a.samples_s, b.samples_s)
    significant = p is not None and p < alpha
    flagged = significant and abs(ratio - 1) > threshold
    direction = "same" if not flagged else ("better" if ratio > 1 else "worse")
    return Change(b.title, b.name, b.labels, b.unit, a.value, b.value, ratio, p, significant, flagged, direction)


def ok_metrics(report: NodeReport) -> tuple[dict[Any, Metric], dict[Any, dict[str, Any] | None]]:
    """The valid metrics of a report by key, and the spec each was measured at (None for a search's result, whose
    shape is what the search found rather than what was asked)."""
    found: dict[Any, Metric] = {}
    specs: dict[Any, dict[str, Any] | None] = {}
    for m in report.measurements:
        for metric in metrics_of(m):
            if metric.status == "ok":
                found[metric.key] = metric
                specs[metric.key] = None if m.details.get("search") else m.spec
    return found, specs


def config_difference(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    """Why two measurements of one metric measured different things (a 256 MiB STREAM against a 32 MiB one, another
    batch or step count), or "" when they measured the same: their figures are not compared."""
    if a is None or b is None:
        return ""
    changed = [f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return "config differs: " + ", ".join(changed) if changed else ""


def compare(a: NodeReport, b: NodeReport, threshold: float = 0.05, alpha: float = 0.01) -> dict[str, Any]:
    """Every metric both reports have: B relative to A. Not comparable reports list why and no changes; a metric
    measured at a different config on each side (bench.report.compare.config_difference) is listed in
    `config_differs` and not compared."""
    reasons = not_comparable(a, b)
    result: dict[str, Any] = {"a": a.run_id, "b": b.run_id, "threshold": threshold, "alpha": alpha,
                              "comparable": not reasons, "reasons": reasons, "changes": [], "only_in_a": [],
                              "only_in_b": [], "config_differs": []}  # fmt: skip
    if reasons:
        return result
    ma, specs_a = ok_metrics(a)
    mb, specs_b = ok_metrics(b)
    differs = {k: config_difference(specs_a[k], specs_b[k]) for k in ma if k in mb}
    result["config_differs"] = [f"{mb[k].title}: {why}" for k, why in differs.items() if why]
    result["changes"] = [change(ma[k], mb[k], threshold, alpha).to_dict() for k in ma if k in mb and not differs[k]]
    result["only_in_a"] = sorted(ma[k].title for k in ma if k not in mb)
    result["only_in_b"] = sorted(mb[k].title for k in mb if k not in ma)
    return result
