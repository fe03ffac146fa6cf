"""Tables for people (rich). Rendering reads reports and inventories; it never measures."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from bench import figures, registry
from bench.model.reports import Measurement

#: One unit per table, chosen by device class: a CPU's matmul figures in GFLOPS, a GPU's in TFLOPS (a table never mixes
#: them: measurements of both classes make two tables).
FLOP_UNITS = {"cpu": ("GFLOPS", 1e3), "cuda": ("TFLOPS", 1.0)}
KIND_NAMES = {"cpu": "CPU", "cuda": "GPU"}


def _unit(kind: str) -> tuple[str, float]:
    return FLOP_UNITS.get(kind, FLOP_UNITS["cuda"])


def _kind(m: Measurement) -> str:
    return "cuda" if m.device.get("kind") == "cuda" else "cpu"


def _by_kind(measurements: Iterable[Measurement]) -> dict[str, list[Measurement]]:
    out: dict[str, list[Measurement]] = {}
    for m in measurements:
        out.setdefault(_kind(m), []).append(m)
    return out


def _shape(spec: dict[str, Any]) -> str:
    return f"{spec['m']}x{spec['n']}x{spec['k']}" if {"m", "n", "k"} <= spec.keys() else "-"


def _num(x: float | None, scale: float = 1.0) -> str:
    """The one number format of every table (terminal, HTML, Markdown): 4 significant digits."""
    return "-" if x is None else f"{x * scale:.4g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


@dataclass
class Grid:
    """A table as text cells: what the terminal (rich), the HTML page and the Markdown file all draw, so the three show
    the same figures. `numeric` columns are right-aligned; `styles` is one of None, 'bad', 'dim', 'bold' per row."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    styles: list[str | None] = field(default_factory=list)
    numeric: set[str] = field(default_factory=set)

    def add(self, cells: list[Any], style: str | None = None) -> None:
        self.rows.append([str(c) for c in cells])
        self.styles.append(style)

    def records(self) -> list[dict[str, str]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


STATUS_STYLE = {"ok": None, "invalid": "bad", "skipped": "dim", "error": "bad"}
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


def _notes(m: Measurement) -> str:
    """Warning codes only; the full messages follow the table (see warning_lines)."""
    return ", ".join(w.get("code", "?") for w in m.warnings if w.get("code") != "emulated")


def _where(m: Measurement) -> str:
    what = f"{m.spec.get('model')} {m.spec.get('preset')}" if m.workload == "train" else _shape(m.spec)
    if m.workload in ("membw", "comm"):
        what = str(m.spec.get("kernel") or m.spec.get("op") or m.spec.get("step") or "-")
    return f"{m.workload} {m.device.get('id', '?')} {m.spec.get('precision', '')} {what}".replace("  ", " ")


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


def fixed_grids(measurements: list[Measurement]) -> list[Grid]:
    """Fixed-shape matmul measurements, one table per device class."""
    out = []
    for kind, ms in _by_kind(measurements).items():
        unit, scale = _unit(kind)
        grid = Grid(f"matmul ({KIND_NAMES[kind]}, {unit})", ["device", "precision", "M x N x K", "status",
                    f"median {unit}", f"best {unit}", "IQR %", "iters", "notes"],
                    numeric={f"median {unit}", f"best {unit}", "IQR %", "iters"})  # fmt: skip
        for m in ms:
            s = m.summary
            grid.add([m.device.get("id", "?"), m.spec.get("precision", "-"), _shape(m.spec),
                      m.status + (" (emulated)" if m.emulated else ""),
                      _num(s["tflops_median"], scale) if s else "-", _num(s["tflops_best"], scale) if s else "-",
                      f"{100 * s['iqr_s'] / s['median_s']:.1f}" if s else "-", str(s["n"]) if s else "-", _notes(m)],
                     STATUS_STYLE[m.status])  # fmt: skip
        out.append(grid)
    return out


def measurements_table(measurements: list[Measurement], title: str = "matmul") -> Table:
    grids = fixed_grids(measurements)
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


def search_results(measurements: list[Measurement]) -> list[dict[str, Any]]:
    """Per device x precision of a search: the MAMF and MSMF measurements and how many shapes were tried."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for m in measurements:
        role = m.details.get("search", {}).get("role")
        if role is None and m.status != "skipped":
            continue
        key = (m.device.get("id", "?"), m.spec.get("precision", "-"))
        g = groups.setdefault(key, {"device": key[0], "precision": key[1], "kind": _kind(m), "tried": 0, "mamf": None,
                                    "msmf": None, "skipped": None, "candidates": []})  # fmt: skip
        if role == "candidate":
            g["tried"] += 1
            g["candidates"].append(m)
        elif role == "final" and m.details["search"].get("mamf"):
            g["mamf"] = m
            g["tried"] = max(g["tried"], m.details["search"].get("shapes_tried", 0))
        elif role == "final":
            g["candidates"].append(m)
        elif role == "msmf":
            g["msmf"] = m
        elif m.status == "skipped":
            g["skipped"] = m
    return list(groups.values())


def achieved(measurements: list[Measurement]) -> list[dict[str, Any]]:
    """Per device x precision, the figure "achieved vs peak" shows and the search table lists: the device's MAMF
    (bench.figures.mamf, the aggregator's rule). Valid measurements only; emulated ones are kept but marked."""
    chosen = figures.mamf(measurements, lambda m: (str(m.device.get("id", "?")), str(m.spec.get("precision", "-"))),
                          emulated=True)  # fmt: skip
    return [{"device": key[0], "precision": key[1], "kind": _kind(m), "model": m.device.get("name"),
             "tflops": m.summary["tflops_median"], "source": source, "peak_tflops": (m.peak or {}).get("tflops"),
             "efficiency": m.summary.get("efficiency"), "shape": _shape(m.spec), "emulated": m.emulated}
            for key, (m, source) in chosen.items()]  # fmt: skip


def search_grids(measurements: list[Measurement]) -> list[Grid]:
    """MAMF and MSMF per device x precision, one table per device class."""
    out = []
    by_kind: dict[str, list[dict[str, Any]]] = {}
    chosen = figures.mamf(measurements, lambda m: (m.device.get("id", "?"), m.spec.get("precision", "-")),
                          emulated=True)  # fmt: skip
    for r in search_results(measurements):
        by_kind.setdefault(r["kind"], []).append(r)
    for kind, rows in by_kind.items():
        unit, scale = _unit(kind)
        grid = Grid(f"matmul search ({KIND_NAMES[kind]}, {unit}): MAMF (best shape, median) and MSMF (held for the window)",
                    ["device", "precision", "best shape", "backend", f"MAMF {unit}", "of peak", f"MSMF {unit}",
                     f"MSMF low {unit}", "shapes", "notes"],
                    numeric={f"MAMF {unit}", "of peak", f"MSMF {unit}", f"MSMF low {unit}", "shapes"})  # fmt: skip
        for r in rows:
            pick, msmf = r["mamf"], r["msmf"]
            mamf, source = chosen.get((r["device"], r["precision"]), (pick, ""))
            if mamf is None or mamf.summary is None:
                why = r["skipped"].reason if r["skipped"] else "no valid shape"
                grid.add([r["device"], r["precision"], "-", "-", "-", "-", "-", "-", r["tried"], why], "dim")
                continue
            s = mamf.summary
            sustained = (msmf.details.get("msmf") or {}) if msmf else {}
            notes = ["emulated: not capacity, not searched"] if mamf.emulated else []
            if source.endswith(figures.UNSTEADY):
                notes.append("NOT STEADY: " + "; ".join(figures.unsteady_reasons(mamf)))
            elif pick is not None and mamf is not pick:
                role = (mamf.details.get("search") or {}).get("role", "fixed-shape")
                notes.append(f"the search's pick {_shape(pick.spec)} was not steady: a steady {role} stands")
            notes += [w["code"] for w in mamf.warnings if w.get("code") != "emulated"]
            grid.add([r["device"], r["precision"], _shape(mamf.spec), mamf.details.get("backend", "torch"),
                      _num(s["tflops_median"], scale), _pct(s["efficiency"]) if "efficiency" in s else "no peak",
                      _num(sustained.get("tflops"), scale) if sustained else "-",
                      _num(sustained.get("min_bucket_tflops"), scale) if sustained else "-", r["tried"],
                      ", ".join(notes)],
                     "bad" if mamf.status == "invalid" or source.endswith(figures.UNSTEADY) else None)  # fmt: skip
        out.append(grid)
    return out


def best_shapes_grids(measurements: list[Measurement], top: int = 5) -> list[Grid]:
    """The best shapes each search found (valid candidates and finals by median), per device class: what to pick
    for a production GEMM, and how close the runners-up came."""
    out = []
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in search_results(measurements):
        by_kind.setdefault(r["kind"], []).append(r)
    for kind, rows in by_kind.items():
        unit, scale = _unit(kind)
        grid = Grid(f"best shapes per search ({KIND_NAMES[kind]}, {unit}, top {top} by median)",
                    ["device", "precision", "rank", "M x N x K", "backend", f"median {unit}", f"best {unit}", "IQR %",
                     "role"], numeric={"rank", f"median {unit}", f"best {unit}", "IQR %"})  # fmt: skip
        for r in rows:
            tried = [
                m for m in [*r["candidates"], *([r["mamf"]] if r["mamf"] else [])] if m.status == "ok" and m.summary
            ]
            best: dict[tuple[str, str], Measurement] = {}
            for m in tried:  # a shape measured twice (sweep, then re-measured) shows once, at its later figure
                best[(_shape(m.spec), m.details.get("backend", "torch"))] = m
            ranked = sorted(best.values(), key=lambda m: -m.summary["tflops_median"])[:top]
            for i, m in enumerate(ranked, 1):
                s = m.summary
                mamf = bool(m.details.get("search", {}).get("mamf"))
                grid.add([r["device"], r["precision"], i, _shape(m.spec), m.details.get("backend", "torch"),
                          _num(s["tflops_median"], scale), _num(s["tflops_best"], scale),
                          f"{100 * s['iqr_s'] / s['median_s']:.1f}", "MAMF" if mamf else m.details["search"]["role"]],
                         "bold" if mamf else None)  # fmt: skip
        if grid.rows:
            out.append(grid)
    return out


def search_table(measurements: list[Measurement]) -> Table:
    grids = search_grids(measurements)
    if len(grids) == 1:
        return to_rich(grids[0])
    table = Table.grid()
    for g in grids:
        table.add_row(to_rich(g))
    return table


def train_grid(measurements: list[Measurement]) -> Grid:
    rows = [m for m in measurements if m.workload == "train"]
    # one unit for the table: GFLOPS when every run was on a CPU (its figures would read 0.00x TFLOPS), else TFLOPS
    unit, scale = _unit("cpu" if rows and all(_kind(m) == "cpu" for m in rows) else "cuda")
    grid = Grid(f"train: step time from raw per-step seconds; {unit} from the analytic FLOP count",
                ["model", "preset", "precision", "device", "ranks", "status", "step ms", "IQR %", "tokens|samples/s",
                 unit, "MFU", "scaling", "loss", "notes"],
                numeric={"step ms", "IQR %", "tokens|samples/s", unit, "MFU", "ranks", "scaling"})  # fmt: skip
    for m in rows:
        s, d = m.summary, m.details
        role = d.get("role") or (f"rank {d['rank']}" if "rank" in d else "")
        loss = f"{d['initial_loss']:.3g} -> {d['final_loss']:.3g}" if "initial_loss" in d else "-"
        grid.add([m.spec.get("model", "-"), m.spec.get("preset", "-"), m.spec.get("precision", "-"), m.device.get("id", "?"),
                  m.spec.get("world_size", 1), m.status,
                  _num(s["median_s"], 1e3) if s else "-", f"{100 * s['iqr_s'] / s['median_s']:.1f}" if s else "-",
                  _num(s["items_per_s"]) if s else "-", _num(s["tflops_median"], scale) if s else "-",
                  _pct(s["mfu"]) if s and "mfu" in s else "-",
                  _pct(d["scaling_efficiency"]) if d.get("scaling_efficiency") else "-",
                  loss, ", ".join(filter(None, [role, m.reason] + [w.get("code") for w in m.warnings]))],
                 STATUS_STYLE[m.status])  # fmt: skip
    return grid


def train_table(measurements: list[Measurement]) -> Table:
    return to_rich(train_grid(measurements))


def busbw_grid(measurements: list[Measurement], full: bool = False) -> Grid:
    """Collectives: one row per op (its best bus bandwidth and the size it was reached at, the largest size's, and
    whether every result checked), or with `full` one row per op x size (bench comm's own table; the report's CSV has
    every measurement either way)."""
    if full:
        return _busbw_full(measurements)
    grid = Grid("collectives (nccl-tests definitions; time = median per-op time, max over ranks; GB = 1e9 B): best "
                "bus bandwidth per op; every size in report.csv", ["op", "ranks", "sizes", "best busbw GB/s",
                "at bytes", "busbw GB/s at the largest size", "check"],
                numeric={"ranks", "best busbw GB/s", "at bytes", "busbw GB/s at the largest size"})  # fmt: skip
    by_op: dict[str, list[Measurement]] = {}
    for m in measurements:
        by_op.setdefault(str(m.spec.get("op", m.spec.get("step", "-"))), []).append(m)
    for op, ms in by_op.items():
        ok = [m for m in ms if m.status == "ok" and m.summary]
        sizes = sorted({m.spec.get("bytes") for m in ms if isinstance(m.spec.get("bytes"), int)})
        best = max(ok, key=lambda m: m.summary["busbw_gbps"], default=None)
        largest = max(ok, key=lambda m: m.spec.get("bytes", 0), default=None)
        wrong = [m for m in ms if m.status != "ok"]
        grid.add([op, ms[0].spec.get("world_size", "-"),
                  f"{len(sizes)} ({sizes[0]}..{sizes[-1]} B)" if sizes else "-",
                  f"{best.summary['busbw_gbps']:.3f}" if best else "-", best.spec.get("bytes", "-") if best else "-",
                  f"{largest.summary['busbw_gbps']:.3f}" if largest else "-",
                  "ok" if not wrong else f"WRONG at {len(wrong)} size(s): {wrong[0].reason}"],
                 None if not wrong else "bad")  # fmt: skip
    return grid


def _busbw_full(measurements: list[Measurement]) -> Grid:
    grid = Grid("collectives (nccl-tests definitions; time = median per-op time of the batches, max over ranks; "
                "GB = 1e9 B)", ["op", "ranks", "bytes", "time us", "algbw GB/s", "busbw GB/s", "check"],
                numeric={"ranks", "bytes", "time us", "algbw GB/s", "busbw GB/s"})  # fmt: skip
    peak: dict[str, float] = {}
    for m in measurements:
        s = m.summary or {}
        op = m.spec.get("op", m.spec.get("step", "-"))
        if m.status == "ok":
            peak[op] = max(peak.get(op, 0.0), s["busbw_gbps"])
        grid.add([op, m.spec.get("world_size", "-"), m.spec.get("bytes", "-"), f"{s.get('median_s', 0) * 1e6:.1f}",
                  f"{s.get('algbw_gbps', 0):.3f}", f"{s.get('busbw_gbps', 0):.3f}",
                  "ok" if m.status == "ok" else f"WRONG: {m.reason}"], None if m.status == "ok" else "bad")  # fmt: skip
    for op, bw in peak.items():
        grid.add([op, "", "peak", "", "", f"{bw:.3f}", ""], "bold")
    return grid


def busbw_table(measurements: list[Measurement]) -> Table:
    return to_rich(busbw_grid(measurements, full=True))


def membw_grid(measurements: list[Measurement]) -> Grid:
    grid = Grid("memory bandwidth (STREAM byte counts, GB = 1e9 B)",
                ["device", "kernel", "array MiB", "median GB/s", "best GB/s", "of peak", "check"],
                numeric={"array MiB", "median GB/s", "best GB/s", "of peak"})  # fmt: skip
    for m in measurements:
        s = m.summary or {}
        elements = m.spec.get("elements")
        grid.add([m.device.get("id", "?"), m.spec.get("kernel", m.spec.get("step", "-")),
                  f"{elements * 8 / 2**20:.0f}" if elements else "-", f"{s.get('gbps_median', 0):.2f}",
                  f"{s.get('gbps_best', 0):.2f}", _pct(s["efficiency"]) if "efficiency" in s else "no peak",
                  m.status if m.status == "ok" else f"{m.status}: {m.reason}"],
                 None if m.status == "ok" else "bad")  # fmt: skip
    return grid


def membw_table(measurements: list) -> Table:
    return to_rich(membw_grid(measurements))


def gates_grid(checks: list[Any]) -> Grid:
    """Gate results (bench.report.gates.Gate): correctness, completeness, floors, regressions."""
    grid = Grid("gates", ["result", "gate", "detail"])
    for g in checks:
        grid.add(["PASS" if g.passed else "FAIL", g.name, g.message], None if g.passed else "bad")
    return grid


def matmul_grids(matmuls: list[Measurement], every_matmul: bool = False) -> list[Grid]:
    """The search summary and best shapes where a search ran; every fixed-shape measurement, and every search
    measurement too with every_matmul."""
    grids: list[Grid] = []
    searched = [m for m in matmuls if "search" in m.details or m.status == "skipped"]
    fixed = [m for m in matmuls if "search" not in m.details]
    if any("search" in m.details for m in matmuls):
        grids += search_grids(matmuls) + best_shapes_grids(matmuls)
        if every_matmul:
            grids += fixed_grids(searched)
        if any(m.status != "skipped" for m in fixed):
            grids += fixed_grids([m for m in fixed if m.status != "skipped"])
    elif matmuls:
        grids += fixed_grids(matmuls)
    return grids


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
