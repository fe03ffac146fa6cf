"""Tables for people (rich). Rendering reads reports and inventories; it never measures."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from bench import figures, registry
from bench.model.reports import Measurement
from bench.model.tables import Grid
from bench.model.tables import device_kind as _kind
from bench.model.tables import mnk as _shape

RICH_STYLE = {"bad": "bold red", "dim": "dim", "bold": "bold", None: None}


def to_rich(grid: Grid) -> Table:
    table = Table(title=grid.title)
    for col in grid.columns:
        table.add_column(col, justify="right" if col in grid.numeric else "left", no_wrap=col not in ("notes", "why"),
                         overflow="fold")  # fmt: skip
    for row, style in zip(grid.rows, grid.styles, strict=True):
        table.add_row(*row, style=RICH_STYLE[style])
    return table


def to_markdown(grid: Grid) -> str:
    if not grid.rows:
        return f"**{grid.title}**: _none_\n"
    esc = lambda v: v.replace("|", "\\|")
    lines = [f"**{grid.title}**\n", "| " + " | ".join(grid.columns) + " |",
             "|" + "".join("---:|" if c in grid.numeric else "---|" for c in grid.columns)]  # fmt: skip
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in grid.rows]
    return "\n".join(lines) + "\n"


def what(m: Measurement) -> str:
    """What one measurement measured, after its device and precision, by its workload's descriptor (`what`: spec
    keys, "shape" for M x N x K): 'gpt tiny', 'triad', '4096x4096x4096'; a spec with none of them (a failed step's)
    by its step label, else '-'."""
    workload = registry.get(m.workload)
    keys = workload.what if workload else ()
    parts = [_shape(m.spec) if k == "shape" else str(m.spec[k]) for k in keys
             if k in m.spec or (k == "shape" and {"m", "n", "k"} <= m.spec.keys())]  # fmt: skip
    return " ".join(parts) or str(m.spec.get("step") or "-")


def _where(m: Measurement) -> str:
    return f"{m.workload} {m.device.get('id', '?')} {m.spec.get('precision', '')} {what(m)}".replace("  ", " ")


def warning_lines(measurements: list[Measurement], limit: int = 3) -> list[str]:
    """Skipped/invalid/error reasons one per line, then warnings grouped by kind: one line per warning code with how
    many measurements had it, a few of them, one message and the hint (every message stays in the report)."""
    lines = [f"{_where(m)}: {m.status}: {m.reason}" for m in measurements if m.reason]
    groups: dict[str, list[tuple[Measurement, dict[str, str]]]] = {}
    for m in measurements:
        for w in m.warnings:
            if w.get("code") != "emulated":
                groups.setdefault(str(w.get("code")), []).append((m, w))
    for code, hits in groups.items():
        where = ", ".join(dict.fromkeys(_where(m) for m, _ in hits[:limit]))
        more = f" and {len(hits) - limit} more" if len(hits) > limit else ""
        example = hits[0][1]
        lines.append(
            f"warning {code} ({len(hits)}x): {where}{more}: {example.get('message')} (hint: {example.get('hint')})"
        )
    return lines


def stacked(grids: list[Grid]) -> Table:
    """A verb's grids as one rich table: the grid itself when there is one, else each in a row of a bare grid."""
    if len(grids) == 1:
        return to_rich(grids[0])
    table = Table.grid()
    for g in grids:
        table.add_row(to_rich(g))
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


def achieved(measurements: list[Measurement]) -> list[dict[str, Any]]:
    """Per device x precision, the figure "achieved vs peak" shows and the search table lists: the device's MAMF
    (bench.figures.mamf, the aggregator's rule). Valid measurements only; emulated ones are kept but marked."""
    chosen = figures.mamf(measurements, lambda m: (str(m.device.get("id", "?")), str(m.spec.get("precision", "-"))),
                          emulated=True)  # fmt: skip
    return [{"device": key[0], "precision": key[1], "kind": _kind(m), "model": m.device.get("name"),
             "tflops": m.summary["tflops_median"], "source": source, "peak_tflops": (m.peak or {}).get("tflops"),
             "efficiency": m.summary.get("efficiency"), "shape": _shape(m.spec), "emulated": m.emulated}
            for key, (m, source) in chosen.items()]  # fmt: skip


def gates_grid(checks: list[Any]) -> Grid:
    """Gate results (bench.report.gates.Gate): correctness, completeness, floors, regressions."""
    grid = Grid("gates", ["result", "gate", "detail"])
    for g in checks:
        grid.add(["PASS" if g.passed else "FAIL", g.name, g.message], None if g.passed else "bad")
    return grid


def workload_grids(measurements: list[Measurement], every_matmul: bool = False) -> list[Grid]:
    """The tables of a node report's measurements, workload by workload (bench.registry's order), each drawn by its
    workload's `grids`. The terminal, HTML and Markdown renderings all draw these."""
    grids: list[Grid] = []
    for workload in registry.workloads():
        chosen = [m for m in measurements if m.workload == workload.name]
        if chosen:
            grids += workload.grids(chosen, every_matmul)
    return grids


def workload_tables(measurements: list[Measurement], every_matmul: bool = False) -> list[Table]:
    return [to_rich(g) for g in workload_grids(measurements, every_matmul)]


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
