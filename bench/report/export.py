"""Reports in the formats ops tools read: Prometheus textfile (prometheus-client), CSV (pandas) and Markdown."""

from __future__ import annotations

import io
import math
from typing import Any

import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from bench.report.metrics import metrics
from bench.report.model import NodeReport
from bench.report.verify import parse_utc

PROM_HELP = {
    "matmul_tflops": "Dense matmul TFLOPS (median iteration) at a fixed shape",
    "matmul_mamf_tflops": "Maximum achievable matmul TFLOPS (best searched shape, median iteration)",
    "matmul_msmf_tflops": "Maximum sustained matmul TFLOPS (best shape held for the window)",
    "train_tflops": "Training TFLOPS at the median step (analytic FLOP count)",
    "train_items_per_s": "Training tokens (GPT) or samples (MLP) per second at the median step",
    "train_mfu": "Training model FLOPs utilisation against the device's peak",
    "comm_busbw_gbps": "Collective bus bandwidth in GB/s (nccl-tests definition)",
    "membw_gbps": "STREAM memory bandwidth in GB/s (median iteration)",
}


def prometheus(report: NodeReport) -> str:
    """node_exporter textfile-collector text: bench_<metric>{host, device, precision, ...} per valid figure, plus
    bench_measurement_valid (1/0), bench_run_complete and bench_run_timestamp_seconds."""
    registry = CollectorRegistry()
    host = str(report.inventory.get("host", {}).get("hostname", ""))
    figures = metrics(report)
    by_name: dict[str, list[Any]] = {}
    for m in figures:
        by_name.setdefault(m.name, []).append(m)
    for name, group in sorted(by_name.items()):
        labelnames = sorted({k for m in group for k in m.labels} | {"host", "emulated"})
        gauge = Gauge(f"bench_{name}", PROM_HELP.get(name, name), labelnames, registry=registry)
        for m in group:
            if m.status == "ok" and math.isfinite(m.value):
                labels = {k: m.labels.get(k, "") for k in labelnames}
                labels.update(host=host, emulated=str(m.emulated).lower())
                gauge.labels(**labels).set(m.value)
    valid = Gauge("bench_measurement_valid", "1 when the measurement passed its correctness check, 0 when not",
                  ["host", "workload", "device", "what"], registry=registry)  # fmt: skip
    for m in report.measurements:
        if m.status in ("ok", "invalid", "error"):
            what = m.spec.get("precision") or m.spec.get("op") or m.spec.get("kernel") or m.spec.get("step") or ""
            valid.labels(host, m.workload, str(m.device.get("id", "")), str(what)).set(1 if m.status == "ok" else 0)
    complete = Gauge("bench_run_complete", "1 when the run finished, 0 when partial", ["host", "run_id"], registry=registry)
    complete.labels(host, report.run_id).set(0 if report.interrupted or not report.end_utc else 1)
    stamp = Gauge("bench_run_timestamp_seconds", "When the run ended (started, if partial)", ["host", "run_id"],
                  registry=registry)  # fmt: skip
    stamp.labels(host, report.run_id).set(parse_utc(report.end_utc or report.start_utc).timestamp())
    return generate_latest(registry).decode()


def measurements_frame(report: NodeReport) -> pd.DataFrame:
    """One row per measurement: workload, device, status, every spec field (spec_*) and summary figure."""
    rows = []
    for i, m in enumerate(report.measurements):
        row: dict[str, Any] = {"index": i, "run_id": report.run_id, "host": report.inventory.get("host", {}).get("hostname"),
                               "workload": m.workload, "device": m.device.get("id"), "model": m.device.get("name"),
                               "status": m.status, "emulated": m.emulated, "reason": m.reason,
                               "role": (m.details.get("search") or {}).get("role") or m.details.get("role"),
                               "mamf": bool((m.details.get("search") or {}).get("mamf")), "samples": len(m.samples_s),
                               "start_utc": m.start_utc}  # fmt: skip
        row.update({f"spec_{k}": v for k, v in m.spec.items() if not isinstance(v, (dict, list))})
        row.update({k: v for k, v in (m.summary or {}).items() if not isinstance(v, (dict, list))})
        rows.append(row)
    return pd.DataFrame(rows)


def metrics_frame(report: NodeReport) -> pd.DataFrame:
    """One row per headline metric: name, value, unit, status and its labels as columns."""
    host = report.inventory.get("host", {}).get("hostname")
    rows = [{"run_id": report.run_id, "host": host, "metric": m.name, "value": m.value, "unit": m.unit,
             "status": m.status, "emulated": m.emulated, "samples": len(m.samples_s), **m.labels}
            for m in metrics(report)]  # fmt: skip
    return pd.DataFrame(rows)


def to_csv(frame: pd.DataFrame) -> str:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue()


def _md_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_none_\n"
    cols = list(frame.columns)

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v).replace("|", "\\|") if v is not None else ""

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def markdown(report: NodeReport) -> str:
    """The headline figures, failures and warnings as Markdown (for PR comments and wikis)."""
    host = report.inventory.get("host", {})
    state = "partial" if report.interrupted or not report.end_utc else "complete"
    signer = (report.signature or {}).get("key_id", "unsigned")
    out = [f"# bench run {report.run_id}\n",
           f"- host: {host.get('hostname')} ({host.get('cpu_model')}, {host.get('physical_cores')} cores)",
           f"- GPUs: {', '.join(g.get('name', '?') for g in report.inventory.get('nvml', {}).get('gpus', [])) or 'none'}",
           f"- {report.start_utc} → {report.end_utc or '?'} ({state}); bench {report.tool.get('version')}; signed by {signer}\n",
           "## Figures\n"]  # fmt: skip
    frame = metrics_frame(report)
    if not frame.empty:
        label_cols = [c for c in frame.columns if c not in ("run_id", "host", "value", "unit", "status", "emulated",
                                                             "samples", "metric", "model")]  # fmt: skip
        frame = frame[["metric", *label_cols, "value", "unit", "status", "emulated"]].fillna("")
    out.append(_md_table(frame))
    bad = [m for m in report.measurements if m.status in ("invalid", "error", "skipped")]
    if bad:
        out.append("\n## Not counted\n")
        out += [f"- {m.workload} {m.device.get('id')} {m.spec.get('precision') or m.spec.get('step') or ''}: "
                f"{m.status}: {m.reason}" for m in bad]  # fmt: skip
    warnings = warning_summary(report)
    if warnings:
        out.append("\n## Warnings\n")
        out += [f"- {w['workload']} {w['device']}: {w['code']} ({w['measurements']} measurements), e.g. {w['example']} "
                f"— {w['hint']}" for w in warnings]  # fmt: skip
    return "\n".join(out) + "\n"


def warning_summary(report: NodeReport) -> list[dict[str, Any]]:
    """Warnings grouped by workload, device and code: how many measurements had each, one example, and the hint."""
    grouped: dict[tuple[str, str, str], dict[str, Any]] = {}
    for m in report.measurements:
        for w in m.warnings:
            row = grouped.setdefault((m.workload, str(m.device.get("id")), str(w.get("code"))),
                                     {"workload": m.workload, "device": m.device.get("id"), "code": w.get("code"),
                                      "measurements": 0, "example": w.get("message"), "hint": w.get("hint")})  # fmt: skip
            row["measurements"] += 1
    return list(grouped.values())
