"""matmul: dense GEMM TFLOPS, the shape search for MAMF and the sustained window for MSMF (bench.workloads.matmul,
bench.workloads.matmul_search)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench import figures
from bench import precision as prec
from bench.model.metrics import Metric, device_labels, shape
from bench.model.reports import Measurement
from bench.model.tables import KIND_NAMES, STATUS_STYLE, Grid, by_device_kind, device_kind, flop_unit, mnk, num, pct
from bench.registry import Plot, Workload, key, register

NAME = "matmul"


def summary(m: Measurement) -> dict[str, Any]:
    return figures.matmul_summary(m.samples_s, m.work_per_iteration, (m.peak or {}).get("tflops"))


def work(spec: Mapping[str, Any]) -> int:
    return figures.matmul_flops(spec.get("m", 0), spec.get("n", 0), spec.get("k", 0))


def metrics(m: Measurement) -> list[Metric]:
    labels = {**device_labels(m), "precision": str(m.spec.get("precision"))}
    if "cpus" in m.details:  # a suite that pins a CPU: the per-core figure (cpus=N) and the all-core one (cpus=all)
        labels["cpus"] = str(m.details["cpus"])
    search = m.details.get("search")
    value = (m.summary or {}).get("tflops_median", 0.0)
    common = {"workload": NAME, "status": m.status, "emulated": m.emulated, "samples_s": tuple(m.samples_s)}
    if search is None:
        return [Metric("matmul_tflops", {**labels, "shape": shape(m.spec)}, value, "TFLOPS", **common)]
    if search.get("role") == "final" and search.get("mamf"):
        return [Metric("matmul_mamf_tflops", labels, value, "TFLOPS", **common)]
    if search.get("role") == "msmf" and "msmf" in m.details:
        return [Metric("matmul_msmf_tflops", labels, m.details["msmf"]["tflops"], "TFLOPS", **common)]
    return []


def _notes(m: Measurement) -> str:
    """Warning codes only; the full messages follow the table (see warning_lines)."""
    return ", ".join(w.get("code", "?") for w in m.warnings if w.get("code") != "emulated")


def fixed_grids(measurements: list[Measurement]) -> list[Grid]:
    """Fixed-shape matmul measurements, one table per device class."""
    out = []
    for kind, ms in by_device_kind(measurements).items():
        unit, scale = flop_unit(kind)
        grid = Grid(f"matmul ({KIND_NAMES[kind]}, {unit})", ["device", "precision", "M x N x K", "status",
                    f"median {unit}", f"best {unit}", "IQR %", "iters", "notes"],
                    numeric={f"median {unit}", f"best {unit}", "IQR %", "iters"})  # fmt: skip
        for m in ms:
            s = m.summary
            grid.add([m.device.get("id", "?"), m.spec.get("precision", "-"), mnk(m.spec),
                      m.status + (" (emulated)" if m.emulated else ""),
                      num(s["tflops_median"], scale) if s else "-", num(s["tflops_best"], scale) if s else "-",
                      f"{100 * s['iqr_s'] / s['median_s']:.1f}" if s else "-", str(s["n"]) if s else "-", _notes(m)],
                     STATUS_STYLE[m.status])  # fmt: skip
        out.append(grid)
    return out


def search_results(measurements: list[Measurement]) -> list[dict[str, Any]]:
    """Per device x precision of a search: the MAMF and MSMF measurements and how many shapes were tried."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for m in measurements:
        role = m.details.get("search", {}).get("role")
        if role is None and m.status != "skipped":
            continue
        key = (m.device.get("id", "?"), m.spec.get("precision", "-"))
        g = groups.setdefault(key, {"device": key[0], "precision": key[1], "kind": device_kind(m), "tried": 0, "mamf": None,
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


def search_grids(measurements: list[Measurement]) -> list[Grid]:
    """MAMF and MSMF per device x precision, one table per device class."""
    out = []
    by_kind: dict[str, list[dict[str, Any]]] = {}
    chosen = figures.mamf(measurements, lambda m: (m.device.get("id", "?"), m.spec.get("precision", "-")),
                          emulated=True)  # fmt: skip
    for r in search_results(measurements):
        by_kind.setdefault(r["kind"], []).append(r)
    for kind, rows in by_kind.items():
        unit, scale = flop_unit(kind)
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
                notes.append(f"the search's pick {mnk(pick.spec)} was not steady: a steady {role} stands")
            notes += [w["code"] for w in mamf.warnings if w.get("code") != "emulated"]
            grid.add([r["device"], r["precision"], mnk(mamf.spec), mamf.details.get("backend", "torch"),
                      num(s["tflops_median"], scale), pct(s["efficiency"]) if "efficiency" in s else "no peak",
                      num(sustained.get("tflops"), scale) if sustained else "-",
                      num(sustained.get("min_bucket_tflops"), scale) if sustained else "-", r["tried"],
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
        unit, scale = flop_unit(kind)
        grid = Grid(f"best shapes per search ({KIND_NAMES[kind]}, {unit}, top {top} by median)",
                    ["device", "precision", "rank", "M x N x K", "backend", f"median {unit}", f"best {unit}", "IQR %",
                     "role"], numeric={"rank", f"median {unit}", f"best {unit}", "IQR %"})  # fmt: skip
        for r in rows:
            tried = [
                m for m in [*r["candidates"], *([r["mamf"]] if r["mamf"] else [])] if m.status == "ok" and m.summary
            ]
            best: dict[tuple[str, str], Measurement] = {}
            for m in tried:  # a shape measured twice (sweep, then re-measured) shows once, at its later figure
                best[(mnk(m.spec), m.details.get("backend", "torch"))] = m
            ranked = sorted(best.values(), key=lambda m: -m.summary["tflops_median"])[:top]
            for i, m in enumerate(ranked, 1):
                s = m.summary
                mamf = bool(m.details.get("search", {}).get("mamf"))
                grid.add([r["device"], r["precision"], i, mnk(m.spec), m.details.get("backend", "torch"),
                          num(s["tflops_median"], scale), num(s["tflops_best"], scale),
                          f"{100 * s['iqr_s'] / s['median_s']:.1f}", "MAMF" if mamf else m.details["search"]["role"]],
                         "bold" if mamf else None)  # fmt: skip
        if grid.rows:
            out.append(grid)
    return out


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


WORKLOAD = register(Workload(
    name=NAME,
    unit=figures.Unit.FLOP,
    summary=summary,
    work=work,
    metrics=metrics,
    grids=matmul_grids,
    series={
        "matmul_tflops": ("bench_matmul_flops_per_second", 1e12,
                          "Dense matmul floating-point operations per second (median iteration) at a fixed shape"),
        "matmul_mamf_tflops": ("bench_matmul_mamf_flops_per_second", 1e12,
                               "Maximum achievable matmul FLOP/s: the best searched shape's median iteration"),
        "matmul_msmf_tflops": ("bench_matmul_msmf_flops_per_second", 1e12,
                               "Maximum sustained matmul FLOP/s: the best shape held back to back for the window"),
    },
    config={
        "search": key("str", "auto", "auto (shape search for MAMF/MSMF) or none (fixed sizes).", choices=("auto", "none")),
        "precisions": key("str-list", [], "Precisions; empty: every precision the device kind has.",
                          choices=tuple(prec.PRECISIONS)),
        "sizes": key("int-list", [], "search = none: square sizes N (default: the device kind's).", minimum=1),
        "budget_s": key("float", None, "Seconds per search (search) or per measurement (fixed sizes).", minimum=0.001,
                        nullable=True),
        "window_s": key("float", None, "Seconds the best shape is held for MSMF (0: no MSMF).", minimum=0.0,
                        nullable=True),
        "settle_s": key("float", None, "Seconds a large product runs before each search so clocks settle (default: 20 "
                        "on GPU, 0 on CPU).", minimum=0.0, nullable=True),
        "max_warmup_s": key("float", 1.0, "Most seconds of warm-up per measurement.", minimum=0.0),
        "min_iterations": key("int", 5, "Fewest timed iterations per measurement.", minimum=1),
        "pin_cpu": key("int", None, "search = none, CPU: also measure each size on one thread pinned to this CPU "
                       "(-1: the first CPU the process may run on; labelled cpus=N, the all-core figure cpus=all): "
                       "bench gate's steady per-core figure.", minimum=-1, nullable=True),
        "all_cores": key("bool", True, "With pin_cpu: measure on all cores too (false: the pinned figure alone)."),
        "rounds": key("int", 1, "search = none: measure every precision x size (x cpus) this many times in turn, "
                      "each at budget_s; bench gate reads a metric at its fastest iteration over the rounds, so a "
                      "host stall of a second or two lands in one round, not in the figure.", minimum=1),
    },
    steps="bench.planning.matmul:suite_steps",
    plots=(
        Plot("throughput_vs_size", "Matmul {unit} vs size"),
        Plot("achieved_vs_peak", "Achieved MAMF vs peak, {unit}"),
        Plot("roofline", "Roofline ({unit} against FLOP/byte)", role="compute"),
        Plot("sustained_window", "Sustained {unit} over the MSMF window"),
        Plot("telemetry", "Telemetry during the MSMF windows (clocks in MHz, power in W)"),
    ),
    what=("shape",),
    variant=("backend",),
))  # fmt: skip
