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
        where = f"{m.device.get('id', '?')} {m.spec.get('precision', '-')} {_shape(m.spec)}"
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
        style = {"ok": None, "invalid": "bold red", "skipped": "dim"}[m.status]
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
