"""Reports in the formats ops tools read: Prometheus textfile (prometheus-client), CSV (pandas) and Markdown."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from bench import figures, registry
from bench.model.metrics import Metric
from bench.model.reports import Measurement, NodeReport
from bench.report.metrics import metrics
from bench.report.metrics import of as metrics_of
from bench.report.store import write_atomic
from bench.report.verify import parse_utc


def prom_series() -> dict[str, tuple[str, float, str]]:
    """Prometheus series per headline metric (bench.report.metrics name): (series name, scale to base units, help),
    as each workload declares them (bench.registry). Prometheus wants base units, so figures are exported in FLOP/s
    and bytes/s (not TFLOPS or GB/s) and utilisation as a 0..1 `_ratio`; Grafana scales them for display (unit
    "FLOP/s" or "bytes/sec(SI)")."""
    return {name: series for w in registry.workloads() for name, series in w.series.items()}


#: The labels that identify a device, named as NVIDIA's dcgm-exporter names them on its DCGM_FI_* series, so a query
#: can join bench's figures to DCGM's: `... * on(UUID) group_left DCGM_FI_DEV_SM_CLOCK`. `device` is dcgm-exporter's
#: `nvidia<N>` (N = NVML index) for a GPU and `cpu` for the CPU; `gpu`, `UUID` and `pci_bus_id` are empty on a CPU.
#: `GPU_I_ID` is a MIG instance's GPU instance id (empty for a whole GPU), as dcgm-exporter labels MIG series.
DEVICE_LABELS = ("Hostname", "gpu", "UUID", "pci_bus_id", "device", "modelName", "GPU_I_ID")

#: Mode of the files written for other readers (node_exporter runs as its own user): rw-r--r--, whatever the umask.
PUBLIC_MODE = 0o644


def device_labels(report: NodeReport) -> Callable[[dict[str, Any]], dict[str, str]]:
    """measurement.device -> the dcgm-exporter labels, looked up in the report's NVML inventory by UUID (a MIG
    instance carries its parent GPU's index and PCI bus id, as dcgm-exporter labels a MIG instance's series)."""
    host = str(report.inventory.get("host", {}).get("hostname") or "")
    by_uuid: dict[str, dict[str, Any]] = {}
    for gpu in report.inventory.get("nvml", {}).get("gpus", []) or []:
        if gpu.get("uuid"):
            by_uuid[str(gpu["uuid"])] = gpu
        for mig in gpu.get("mig_devices") or []:
            if mig.get("uuid"):
                gi = mig.get("gpu_instance_id")
                by_uuid[str(mig["uuid"])] = {**gpu, "uuid": mig["uuid"], "gpu_instance_id": "" if gi is None else gi}

    def labels(device: dict[str, Any]) -> dict[str, str]:
        if device.get("kind") != "cuda":
            return {"Hostname": host, "gpu": "", "UUID": "", "pci_bus_id": "", "device": str(device.get("id", "cpu")),
                    "modelName": str(device.get("name") or ""), "GPU_I_ID": ""}  # fmt: skip
        gpu = by_uuid.get(str(device.get("uuid")), {})
        index = gpu.get("index")
        if index is None:  # NVML did not see it: torch's ordinal is the best guess at the index
            index = str(device.get("id", "")).partition(":")[2]
        return {"Hostname": host, "gpu": str(index), "UUID": str(device.get("uuid") or ""),
                "pci_bus_id": str(gpu.get("pci_bus_id") or ""), "device": f"nvidia{index}",
                "modelName": str(gpu.get("name") or device.get("name") or ""),
                "GPU_I_ID": str(gpu.get("gpu_instance_id", ""))}  # fmt: skip

    return labels


def _identity(m: Measurement) -> dict[str, str]:
    """What distinguishes one measurement from another of the same run on the same device, as labels: workload, what
    (precision, op, kernel or step), shape (M x N x K, message bytes, or model and preset), role (search candidate,
    final, msmf; train single/rank/total) and variant (backend, fp8 accumulation, rank)."""
    spec, d = m.spec, m.details
    what = spec.get("precision") or spec.get("op") or spec.get("kernel") or spec.get("step") or ""
    if {"m", "n", "k"} <= spec.keys():
        shape = f"{spec['m']}x{spec['n']}x{spec['k']}"
    elif "bytes" in spec:
        shape = str(spec["bytes"])
    elif "preset" in spec:
        shape = f"{spec.get('model')} {spec.get('preset')}"
    else:
        shape = ""
    role = (d.get("search") or {}).get("role") or d.get("role") or ""
    workload = registry.get(m.workload)
    variant = [str(d.get(k) or "") for k in (workload.variant if workload else ())]
    if spec.get("fast_accum") is not None:
        variant.append(f"fast_accum={str(spec['fast_accum']).lower()}")
    if "rank" in d:
        variant.append(f"rank={d['rank']}")
    return {
        "workload": m.workload,
        "what": str(what),
        "shape": shape,
        "role": str(role),
        "variant": " ".join(filter(None, variant)),
    }


#: The headline metric whose measurement bench.figures.mamf chooses, not the search's own mark.
MAMF_METRIC = "matmul_mamf_tflops"


def _mamf_key(m: Measurement) -> tuple[str, str]:
    return str(m.device.get("uuid") or m.device.get("id")), str(m.spec.get("precision"))


def prometheus(report: NodeReport) -> str:
    """node_exporter textfile-collector text. Per valid figure a bench_* gauge in base units with dcgm-exporter's
    device labels (Hostname, gpu, UUID, pci_bus_id, device, modelName, GPU_I_ID) plus what it measured (precision, shape, ...);
    bench_device_info per device; bench_measurement_valid per measurement identity (0 if any measurement with that
    identity failed its check); bench_run_complete and bench_run_timestamp_seconds. No label changes from run to run,
    so each series continues across runs (the run id is in the report, not in a label)."""
    registry = CollectorRegistry()
    host = str(report.inventory.get("host", {}).get("hostname") or "")
    labels_of = device_labels(report)
    by_name: dict[str, list[tuple[Metric, dict[str, str]]]] = {}
    for measurement in report.measurements:
        for m in metrics_of(measurement):
            if m.name != MAMF_METRIC:  # the headline MAMF follows the one rule (figures.mamf), below
                by_name.setdefault(m.name, []).append((m, labels_of(measurement.device)))
    chosen = figures.mamf(report.measurements, _mamf_key, emulated=True)
    for measurement, _ in chosen.values():
        by_name.setdefault(MAMF_METRIC, []).append((
            Metric(MAMF_METRIC, {"precision": str(measurement.spec.get("precision"))},
                   measurement.summary["tflops_median"], "TFLOPS", "matmul", emulated=measurement.emulated),
            labels_of(measurement.device)))  # fmt: skip
    known = prom_series()
    for name, group in sorted(by_name.items()):
        series, scale, doc = known.get(name, (f"bench_{name}", 1.0, name))
        own = sorted({k for m, _ in group for k in m.labels} - {"device", "model"})
        gauge = Gauge(series, doc, [*DEVICE_LABELS, *own, "emulated"], registry=registry)
        for m, where in group:
            if m.status == "ok" and math.isfinite(m.value):
                labels = {**where, **{k: m.labels.get(k, "") for k in own}, "emulated": str(m.emulated).lower()}
                gauge.labels(**labels).set(m.value * scale)
    efficiency = Gauge("bench_matmul_mamf_efficiency_ratio", "MAMF over the device's physical peak at that precision (0..1)",
                       [*DEVICE_LABELS, "precision", "emulated"], registry=registry)  # fmt: skip
    steady = Gauge("bench_matmul_mamf_steady", "1 when the MAMF figure comes from a steady measurement, 0 when no "
                   "measurement of that device and precision was steady (noisy or too short: see bench.figures.steady)",
                   [*DEVICE_LABELS, "precision", "emulated"], registry=registry)  # fmt: skip
    for m, source in chosen.values():
        where = {**labels_of(m.device), "precision": str(m.spec.get("precision")), "emulated": str(m.emulated).lower()}
        steady.labels(**where).set(0 if source.endswith(figures.UNSTEADY) else 1)
        eff = (m.summary or {}).get("efficiency")
        if eff:
            efficiency.labels(**where).set(float(eff))
    info = Gauge("bench_device_info", "1 for every device the run measured, with its identity as labels",
                 [*DEVICE_LABELS, "serial", "driver_version", "torch_device"], registry=registry)  # fmt: skip
    nvml = report.inventory.get("nvml", {}) or {}
    serials = {str(g.get("uuid")): g.get("serial") for g in nvml.get("gpus", []) or []}
    seen: set[str] = set()
    for m in report.measurements:
        ident = str(m.device.get("uuid") or m.device.get("id"))
        if ident in seen or not m.device:
            continue
        seen.add(ident)
        cuda = m.device.get("kind") == "cuda"
        info.labels(**labels_of(m.device), serial=str(serials.get(str(m.device.get("uuid"))) or "") if cuda else "",
                    driver_version=str(nvml.get("driver_version") or "") if cuda else "",
                    torch_device=str(m.device.get("id", ""))).set(1)  # fmt: skip
    valid = Gauge("bench_measurement_valid", "1 when every measurement with these labels passed its correctness check, "
                  "0 when one failed or errored", [*DEVICE_LABELS, "workload", "what", "shape", "role", "variant"],
                  registry=registry)  # fmt: skip
    verdicts: dict[tuple[tuple[str, str], ...], int] = {}
    for m in report.measurements:
        if m.status in ("ok", "invalid", "error"):
            key = tuple({**labels_of(m.device), **_identity(m)}.items())
            verdicts[key] = min(verdicts.get(key, 1), 1 if m.status == "ok" else 0)
    for key, ok in verdicts.items():
        valid.labels(**dict(key)).set(ok)
    complete = Gauge("bench_run_complete", "1 when the run finished, 0 when partial", ["Hostname"], registry=registry)
    complete.labels(host).set(0 if report.partial else 1)
    busy = Gauge("bench_run_preflight_warnings", "Pre-flight checks (bench doctor) that warned or failed before the run: "
                 "a busy or unhealthy machine", ["Hostname"], registry=registry)  # fmt: skip
    # "unavailable" (no NVML, no GPU clock to read) is nothing wrong with the machine: a CPU node would always read >= 1
    busy.labels(host).set(
        len([c for c in (report.config.get("preflight") or []) if c.get("status") in ("warn", "fail")])
    )
    stamp = Gauge(
        "bench_run_timestamp_seconds", "When the run ended (started, if partial)", ["Hostname"], registry=registry
    )
    stamp.labels(host).set(parse_utc(report.end_utc or report.start_utc).timestamp())
    return generate_latest(registry).decode()


def write_public(path: Path, text: str, mode: int = PUBLIC_MODE) -> None:
    """Write atomically with `mode` (0644: readable by node_exporter and other users, whatever the umask);
    bench.report.store.write_atomic alone keeps mkstemp's 0600, right for signed reports."""
    write_atomic(path, text, mode)


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


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns no row fills are dropped, and a float column whose every value is whole (a size, a count, which pandas
    turned into floats because some rows lack it) is written as integers: 256, not 256.0."""
    frame = frame.dropna(axis=1, how="all")
    for col in frame.columns:
        values = frame[col]
        if (
            values.dtype.kind == "f"
            and bool(((values.dropna() % 1) == 0).all())
            and values.dropna().abs().max() < 2**53
        ):
            frame = frame.assign(**{col: values.astype("Int64")})
    return frame


def to_csv(frame: pd.DataFrame) -> str:
    buf = io.StringIO()
    tidy(frame).to_csv(buf, index=False)
    return buf.getvalue()


def markdown(report: NodeReport, checks: list[Any] | None = None) -> str:
    """The run's tables (the same cells as the terminal and the HTML page), gate results, what was not counted and
    warnings grouped by kind, as Markdown (for PR comments and wikis)."""
    from bench.report import gates, headline, render

    host = report.inventory.get("host", {})
    state = "partial" if report.partial else "complete"
    signer = (report.signature or {}).get("key_id", "unsigned")
    out = [f"# bench run {report.run_id}\n", *[f"**{line}**\n" for line in headline.lines(report)],
           f"- host: {host.get('hostname')} ({host.get('cpu_model')}, {host.get('physical_cores')} cores)",
           f"- GPUs: {', '.join(g.get('name', '?') for g in report.inventory.get('nvml', {}).get('gpus', [])) or 'none'}",
           f"- {report.start_utc} → {report.end_utc or '?'} ({state}); bench {report.tool.get('version')}; signed by {signer}\n"]  # fmt: skip
    out += [render.to_markdown(g) for g in headline.grids(report)]
    preflight = [c for c in (report.config.get("preflight") or []) if c.get("status") != "pass"]
    if preflight:
        out.append("## Pre-flight (the machine before the run)\n")
        out += [
            f"- {c.get('status', '?').upper()} {c.get('name')}: {c.get('detail')} — {c.get('fix')}" for c in preflight
        ]
        out.append("")
    checks = gates.correctness(report) if checks is None else checks
    out.append("## Gates\n")
    out.append(render.to_markdown(render.gates_grid(checks)) if checks else "every measurement passed its check\n")
    out.append("## Figures\n")
    out += [render.to_markdown(g) for g in render.workload_grids(report.measurements)]
    bad = [m for m in report.measurements if m.status in ("invalid", "error", "skipped")]
    if bad:
        out.append("## Not counted\n")
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
