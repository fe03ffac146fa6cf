"""Tables for people (rich). Rendering reads reports and inventories; it never measures."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.table import Table

from bench.report.model import Measurement


def _unit(values: Iterable[float]) -> tuple[str, float]:
    """One unit for a whole column: TFLOPS when any figure reaches 1 TFLOPS, else GFLOPS."""
    return ("TFLOPS", 1.0) if max(values, default=0.0) >= 1.0 else ("GFLOPS", 1e3)


def _shape(spec: dict[str, Any]) -> str:
    return f"{spec['m']}x{spec['n']}x{spec['k']}" if {"m", "n", "k"} <= spec.keys() else "-"


def _notes(m: Measurement) -> str:
    """Warning codes only; the full messages follow the table (see warning_lines)."""
    return ", ".join(w.get("code", "?") for w in m.warnings if w.get("code") != "emulated")


def warning_lines(measurements: list[Measurement]) -> list[str]:
    """One line per skipped/invalid reason and per warning, with its hint: what the table's notes stand for."""
    lines = []
    for m in measurements:
        what = f"{m.spec.get('model')} {m.spec.get('preset')}" if m.workload == "train" else _shape(m.spec)
        where = f"{m.device.get('id', '?')} {m.spec.get('precision', '-')} {what}"
        if "search" in m.details:
            where += f" ({m.details['search']['role']}, {m.details.get('backend', 'torch')})"
        if m.reason:
            lines.append(f"{where}: {m.status}: {m.reason}")
        lines += [f"{where}: {w.get('code')}: {w.get('message')} (hint: {w.get('hint')})" for w in m.warnings]
    return lines


def measurements_table(measurements: list[Measurement], title: str = "matmul") -> Table:
    unit, scale = _unit(m.summary["tflops_median"] for m in measurements if m.summary)
    table = Table(title=title)
    for col in ("device", "precision", "M x N x K", "status", f"median {unit}", f"best {unit}", "IQR %", "iters"):
        justify = "right" if col.startswith(("median", "best", "IQR", "iters")) else "left"
        table.add_column(col, justify=justify, no_wrap=True)
    table.add_column("notes", overflow="fold")
    for m in measurements:
        s = m.summary
        status = m.status + (" (emulated)" if m.emulated else "")
        style = {"ok": None, "invalid": "bold red", "skipped": "dim", "error": "bold red"}[m.status]
        table.add_row(
            m.device.get("id", "?"),
            m.spec.get("precision", "-"),
            _shape(m.spec),
            status,
            f"{s['tflops_median'] * scale:.4g}" if s else "-",
            f"{s['tflops_best'] * scale:.4g}" if s else "-",
            f"{100 * s['iqr_s'] / s['median_s']:.1f}" if s else "-",
            str(s["n"]) if s else "-",
            _notes(m),
            style=style,
        )
    return table


def _value(section: dict[str, Any], key: str) -> str:
    value = section.get(key)
    if value is None:
        reason = section.get("unavailable", {}).get(key)
        return f"unavailable ({reason})" if reason else "-"
    if isinstance(value, dict):
        return " ".join(k for k, v in value.items() if v) or "none"
    if key.endswith("_bytes") and isinstance(value, int):
        return f"{value / 2**30:.1f} GiB"
    return str(value)


def host_table(host: dict[str, Any]) -> Table:
    table = Table(title="host", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key in host:
        if key != "unavailable":
            table.add_row(key, _value(host, key))
    return table


GPU_COLUMNS = (
    "index", "name", "uuid", "serial", "pci_bus_id", "memory_bytes", "max_sm_clock_mhz", "max_memory_clock_mhz",
    "power_limit_w", "ecc_enabled", "compute_capability", "nvlink_links_up",
)  # fmt: skip


def gpu_table(nvml: dict[str, Any]) -> Table:
    table = Table(title=f"NVIDIA GPUs (driver {nvml.get('driver_version')}, CUDA {nvml.get('cuda_driver_version')})")
    for col in GPU_COLUMNS:
        table.add_column(col, overflow="fold")
    for gpu in nvml["gpus"]:
        table.add_row(*(_value(gpu, col) for col in GPU_COLUMNS))
    return table


def search_results(measurements: list[Measurement]) -> list[dict[str, Any]]:
    """Per device x precision of a search: the MAMF and MSMF measurements and how many shapes were tried."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for m in measurements:
        role = m.details.get("search", {}).get("role")
        if role is None and m.status != "skipped":
            continue
        key = (m.device.get("id", "?"), m.spec.get("precision", "-"))
        g = groups.setdefault(key, {"device": key[0], "precision": key[1], "tried": 0, "mamf": None, "msmf": None, "skipped": None})
        if role == "candidate":
            g["tried"] += 1
        elif role == "final" and m.details["search"].get("mamf"):
            g["mamf"] = m
            g["tried"] = max(g["tried"], m.details["search"].get("shapes_tried", 0))
        elif role == "msmf":
            g["msmf"] = m
        elif m.status == "skipped":
            g["skipped"] = m
    return list(groups.values())


def search_table(measurements: list[Measurement]) -> Table:
    rows = search_results(measurements)
    unit, scale = _unit(r["mamf"].summary["tflops_median"] for r in rows if r["mamf"] and r["mamf"].summary)
    table = Table(title="matmul search: MAMF (best shape, median) and MSMF (held for the window)")
    for col in ("device", "precision", "best shape", "backend", f"MAMF {unit}", "of peak", f"MSMF {unit}",
                f"MSMF low {unit}", "shapes", "notes"):  # fmt: skip
        table.add_column(col, justify="right" if unit in col or col in ("of peak", "shapes") else "left", no_wrap=col != "notes")
    for r in rows:
        mamf, msmf = r["mamf"], r["msmf"]
        if mamf is None or mamf.summary is None:
            why = r["skipped"].reason if r["skipped"] else "no valid shape"
            table.add_row(r["device"], r["precision"], "-", "-", "-", "-", "-", "-", str(r["tried"]), why, style="dim")
            continue
        s = mamf.summary
        eff = f"{s['efficiency']:.1%}" if "efficiency" in s else "no peak"
        sustained = (msmf.details.get("msmf") or {}) if msmf else {}
        table.add_row(
            r["device"], r["precision"], _shape(mamf.spec), mamf.details.get("backend", "torch"),
            f"{s['tflops_median'] * scale:.4g}", eff,
            f"{sustained['tflops'] * scale:.4g}" if sustained else "-",
            f"{sustained['min_bucket_tflops'] * scale:.4g}" if sustained else "-",
            str(r["tried"]),
            ", ".join(["emulated: not capacity, not searched"] * mamf.emulated
                      + [w["code"] for w in mamf.warnings if w.get("code") != "emulated"]),
            style="bold red" if mamf.status == "invalid" else None,
        )  # fmt: skip
    return table


def train_table(measurements: list[Measurement]) -> Table:
    rows = [m for m in measurements if m.workload == "train"]
    table = Table(title="train: step time from raw per-step seconds; TFLOPS from the analytic FLOP count")
    for col in ("model", "preset", "precision", "device", "ranks", "status", "step ms", "IQR %", "tokens|samples/s",
                "TFLOPS", "MFU", "scaling", "loss", "notes"):  # fmt: skip
        table.add_column(col, justify="right" if col in ("step ms", "IQR %", "tokens|samples/s", "TFLOPS", "MFU", "ranks",
                                                         "scaling") else "left", no_wrap=col != "notes")  # fmt: skip
    for m in rows:
        s, d = m.summary, m.details
        role = d.get("role") or (f"rank {d['rank']}" if "rank" in d else "")
        loss = f"{d['initial_loss']:.3g} -> {d['final_loss']:.3g}" if "initial_loss" in d else "-"
        table.add_row(
            m.spec.get("model", "-"), m.spec.get("preset", "-"), m.spec.get("precision", "-"), m.device.get("id", "?"),
            str(m.spec.get("world_size", 1)), m.status,
            f"{s['median_s'] * 1e3:.4g}" if s else "-", f"{100 * s['iqr_s'] / s['median_s']:.1f}" if s else "-",
            f"{s['items_per_s']:.4g}" if s else "-", f"{s['tflops_median']:.4g}" if s else "-",
            f"{s['mfu']:.1%}" if s and "mfu" in s else "-",
            f"{d['scaling_efficiency']:.1%}" if d.get("scaling_efficiency") else "-",
            loss, ", ".join(filter(None, [role, m.reason] + [w.get("code") for w in m.warnings])),
            style={"ok": None, "invalid": "bold red", "skipped": "dim", "error": "bold red"}[m.status],
        )  # fmt: skip
    return table


def busbw_table(measurements: list[Measurement]) -> Table:
    table = Table(title="collectives (nccl-tests definitions; time = max over ranks)")
    for col in ("op", "ranks", "bytes", "median us", "algbw GB/s", "busbw GB/s", "check"):
        table.add_column(col, justify="left" if col in ("op", "check") else "right")
    peak: dict[str, float] = {}
    for m in measurements:
        s = m.summary or {}
        op = m.spec.get("op", m.spec.get("step", "-"))
        if m.status == "ok":
            peak[op] = max(peak.get(op, 0.0), s["busbw_gbps"])
        table.add_row(op, str(m.spec.get("world_size", "-")), str(m.spec.get("bytes", "-")), f"{s.get('median_s', 0) * 1e6:.1f}",
                      f"{s.get('algbw_gbps', 0):.3f}", f"{s.get('busbw_gbps', 0):.3f}",
                      "ok" if m.status == "ok" else f"WRONG: {m.reason}",
                      style=None if m.status == "ok" else "bold red")  # fmt: skip
    for op, bw in peak.items():
        table.add_row(op, "", "peak", "", "", f"{bw:.3f}", "", style="bold")
    return table


def membw_table(measurements: list) -> Table:
    table = Table(title="memory bandwidth (STREAM byte counts, GB = 1e9 B)")
    for col in ("device", "kernel", "array MiB", "median GB/s", "best GB/s", "of peak", "check"):
        table.add_column(col, justify="left" if col in ("device", "kernel", "check") else "right")
    for m in measurements:
        s = m.summary or {}
        elements = m.spec.get("elements")
        table.add_row(m.device.get("id", "?"), m.spec.get("kernel", m.spec.get("step", "-")),
                      f"{elements * 8 / 2**20:.0f}" if elements else "-",
                      f"{s.get('gbps_median', 0):.2f}", f"{s.get('gbps_best', 0):.2f}",
                      f"{s['efficiency']:.1%}" if "efficiency" in s else "no peak",
                      m.status if m.status == "ok" else f"{m.status}: {m.reason}",
                      style=None if m.status == "ok" else "bold red")  # fmt: skip
    return table


def _f(x: float | None, scale: float = 1.0, fmt: str = ".4g") -> str:
    return "-" if x is None else format(x * scale, fmt)


def capacity_tables(cap: dict[str, Any]) -> list[Table]:
    groups = Table(title="capacity by model x precision (MAMF: measured; peak: vendor or theoretical)")
    for col in ("model", "precision", "devices", "nodes", "MAMF TFLOPS", "MSMF TFLOPS", "peak TFLOPS", "efficiency",
                "p5", "median", "p95"):  # fmt: skip
        groups.add_column(col, justify="left" if col in ("model", "precision") else "right")
    for g in cap["groups"]:
        groups.add_row(str(g["model"]), g["precision"], str(g["devices"]), str(g["nodes"]), _f(g["mamf_sum_tflops"]),
                       _f(g["msmf_sum_tflops"]), _f(g["peak_sum_tflops"]), _f(g["efficiency"], 100, ".1f") + "%" * (g["efficiency"] is not None),
                       _f(g["mamf_p5_tflops"]), _f(g["mamf_median_tflops"]), _f(g["mamf_p95_tflops"]))  # fmt: skip
    totals = Table(title="totals per precision, by tier: reported (MAMF sum of verified reports), bounded (also "
                   "physically possible, unique, fresh), proven (needs a challenge: bench verify --proof)")  # fmt: skip
    for col in ("precision", "devices", "nodes", "reported PFLOPS", "bounded PFLOPS", "proven PFLOPS", "MSMF PFLOPS",
                "peak PFLOPS"):  # fmt: skip
        totals.add_column(col, justify="left" if col == "precision" else "right")
    for t in cap["totals"]:
        totals.add_row(t["precision"], str(t["devices"]), str(t["nodes"]), _f(t["mamf_pflops"]),
                       _f(t.get("bounded_tflops"), 1e-3), _f(t.get("proven_tflops"), 1e-3), _f(t["msmf_tflops"], 1e-3),
                       _f(t["peak_tflops"], 1e-3))  # fmt: skip
    inputs = Table(title="node reports")
    for col in ("report", "node", "key id", "status", "why"):
        inputs.add_column(col, overflow="fold")
    for i in cap["inputs"]:
        inputs.add_row(i["name"], str(i["node"] or "-"), str(i["key_id"] or "-"), i["status"], "; ".join(i["reasons"]),
                       style="bold red" if i["status"] == "rejected" else None)  # fmt: skip
    tables = [groups, totals, inputs]
    if cap["defective"]:
        bad = Table(title="defective devices")
        for col in ("node", "device", "precision", "MAMF TFLOPS", "group median", "gap", "why"):
            bad.add_column(col, overflow="fold")
        for d in cap["defective"]:
            bad.add_row(str(d["node"]), d["device"], d["precision"], _f(d["value"]), _f(d["group_median"]),
                        f"{d['gap']:.1%}", "; ".join(d["reasons"]), style="bold red")  # fmt: skip
        tables.append(bad)
    if cap["duplicates"]:
        dup = Table(title="devices found in more than one report (counted once, from the newest)")
        for col in ("device", "precision", "counted from", "also in", "shared"):
            dup.add_column(col, overflow="fold")
        for d in cap["duplicates"]:
            dup.add_row(d["device"], d["precision"], d["kept"][:16], ", ".join(x[:16] for x in d["dropped"]),
                        ", ".join(d.get("shared", [])))  # fmt: skip
        tables.append(dup)
    return tables


def workload_tables(measurements: list[Measurement], every_matmul: bool = False) -> list[Table]:
    """The tables of a node report's measurements, workload by workload: matmul (the search summary where a search
    ran; every matmul measurement too with every_matmul), training, memory bandwidth, collectives."""
    tables = []
    matmuls = [m for m in measurements if m.workload == "matmul"]
    searched = any("search" in m.details for m in matmuls)
    if matmuls and (every_matmul or not searched):
        tables.append(measurements_table(matmuls))
    if searched:
        tables.append(search_table(matmuls))
    if any(m.workload == "train" for m in measurements):
        tables.append(train_table(measurements))
    for workload, table in (("membw", membw_table), ("comm", busbw_table)):
        chosen = [m for m in measurements if m.workload == workload]
        if chosen:
            tables.append(table(chosen))
    return tables

