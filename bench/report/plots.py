"""The figures of the HTML report, drawn with matplotlib's Agg backend (no display needed). Each function takes a
report and returns PNG bytes, or None when the report has nothing to draw for it.

Which figures a page has, and which measurements each shows, comes from the workloads' descriptors (bench.registry:
`plots`, plain data): a figure kind here draws the measurements of the workloads that list it, and names none."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from bench import figures, registry
from bench import precision as prec
from bench.model.reports import Measurement, NodeReport
from bench.model.tables import FLOP_UNITS
from bench.report import render

#: Figure kinds (registry.Plot.kind): see KINDS.
THROUGHPUT_VS_SIZE, ACHIEVED_VS_PEAK, ROOFLINE = "throughput_vs_size", "achieved_vs_peak", "roofline"
SUSTAINED, TELEMETRY, VS_SIZE = "sustained_window", "telemetry", "vs_size"

#: STREAM kernels' FLOPs and bytes per element (bench.figures; copy does no arithmetic, so it has no roofline point).
STREAM_FLOPS = figures.STREAM_FLOPS_PER_ELEMENT
STREAM_BYTES = figures.STREAM_BYTES_PER_ELEMENT
stream_intensity = figures.stream_intensity


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def listing(kind: str, role: str | None = None) -> set[str]:
    """The workloads whose descriptor lists a figure of this kind (and this role, when given)."""
    return {
        w.name for w in registry.workloads() for p in w.plots if p.kind == kind and (role is None or p.role == role)
    }


def _of(report: NodeReport, kind: str, role: str | None = None) -> list[Measurement]:
    names = listing(kind, role)
    return [m for m in report.measurements if m.workload in names]


def _ok(report: NodeReport, kind: str, role: str | None = None) -> list[Measurement]:
    return [m for m in _of(report, kind, role) if m.status == "ok" and m.summary]


def _size(spec: dict[str, Any]) -> float:
    return (spec["m"] * spec["n"] * spec["k"]) ** (1 / 3)


def _devices(ms: list[Measurement]) -> str:
    """Which devices a figure shows, for its title: 'cpu (AMD EPYC 9654)', 'cuda:0-7 (NVIDIA H100 80GB HBM3)'."""
    names: dict[str, list[str]] = {}
    for m in ms:
        ident = str(m.device.get("id", "?"))
        names.setdefault(str(m.device.get("name") or "?"), [])
        if ident not in names[str(m.device.get("name") or "?")]:
            names[str(m.device.get("name") or "?")].append(ident)
    return "; ".join(f"{', '.join(ids)} ({name})" for name, ids in names.items())


def flop_unit(ms: list[Measurement]) -> tuple[str, float]:
    """The unit of a figure: the tables' (GFLOPS when only CPUs are on it, else TFLOPS)."""
    return FLOP_UNITS["cuda" if any(m.device.get("kind") == "cuda" for m in ms) else "cpu"]


def render_mamf(ms: list[Measurement]) -> dict[Any, tuple[Measurement, str]]:
    """Each device x precision's MAMF measurement by bench.figures.mamf, emulated ones included (they are drawn)."""
    return figures.mamf(ms, lambda m: (m.device.get("id"), m.spec.get("precision")), emulated=True)


def matmul_vs_size(report: NodeReport) -> bytes | None:
    """Median throughput against matrix size (cube root of M*N*K) per device and precision; the MAMF marked."""
    ms = _ok(report, THROUGHPUT_VS_SIZE)
    if not ms:
        return None
    unit, scale = flop_unit(ms)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    series: dict[str, list[tuple[float, float, bool]]] = {}
    chosen = {id(m) for m, _ in render_mamf(ms).values()}  # the headline's MAMF (a steady one where the pick is not)
    for m in ms:
        tag = f"{m.device.get('id')} {m.spec['precision']}" + (" (emulated)" if m.emulated else "")
        series.setdefault(tag, []).append((_size(m.spec), m.summary["tflops_median"] * scale,
                                           id(m) in chosen))  # fmt: skip
    for tag, points in sorted(series.items()):
        points.sort()
        line = ax.plot([p[0] for p in points], [p[1] for p in points], "o", label=tag, alpha=0.7)[0]
        best = [p for p in points if p[2]]
        if best:
            ax.plot([p[0] for p in best], [p[1] for p in best], "*", markersize=14, color=line.get_color())
    ax.set_xscale("log", base=2)
    ax.set_xlabel("matrix size (cube root of M·N·K, elements)")
    ax.set_ylabel(f"{unit} (median iteration)")
    ax.set_title(f"Matmul throughput vs size (★ = MAMF) — {_devices(ms)}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def achieved_vs_peak_data(report: NodeReport) -> list[dict[str, Any]]:
    """What "achieved vs peak" draws: per device x precision the MAMF (the search's best shape, median iteration;
    else the best fixed-shape median) from render.achieved, the same figure as the search table's."""
    return sorted(render.achieved(_of(report, ACHIEVED_VS_PEAK)), key=lambda r: (r["device"], r["precision"]))


def achieved_vs_peak(report: NodeReport) -> bytes | None:
    """Per device and precision: the MAMF next to the peak it is compared with, and the ratio."""
    rows = achieved_vs_peak_data(report)
    if not rows:
        return None
    unit, scale = FLOP_UNITS["cuda" if any(r["kind"] == "cuda" for r in rows) else "cpu"]
    tags = [f"{r['device']}\n{r['precision']}" + ("\n(emulated)" if r["emulated"] else "") for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(tags)), 4.5))
    xs = range(len(tags))
    ax.bar(
        [x - 0.2 for x in xs], [(r["peak_tflops"] or 0) * scale for r in rows], width=0.4, label="peak", color="#bbbbbb"
    )
    ax.bar([x + 0.2 for x in xs], [r["tflops"] * scale for r in rows], width=0.4, label="MAMF (best shape, median)",
           color="#1f77b4")  # fmt: skip
    for x, r in zip(xs, rows, strict=True):
        if r["peak_tflops"]:
            ax.annotate(f"{r['tflops'] / r['peak_tflops']:.0%}", (x + 0.2, r["tflops"] * scale), ha="center",
                        va="bottom", fontsize=8)  # fmt: skip
    ax.set_xticks(list(xs), tags, fontsize=8)
    ax.set_ylabel(unit)
    models = "; ".join(dict.fromkeys(f"{r['device']} ({r['model']})" for r in rows))
    ax.set_title(f"Achieved (MAMF) vs peak per precision — {models}", fontsize=9)
    ax.legend(fontsize=8)
    return _png(fig)


def vs_size(report: NodeReport, plot: registry.Plot) -> bytes | None:
    """Any workload's figure against a size (the kind "vs_size"): summary key `plot.y` against spec key `plot.x` on a
    log2 axis, one panel per value of spec key `plot.panel` (side by side, two per row), so each curve reads on its
    own scale; the measurements of the workloads that list this plot, valid ones only. A collective's bus bandwidth
    against its message size, one panel per op, is this."""
    names = {w.name for w in registry.workloads() if plot in w.plots}
    ms = [m for m in report.measurements if m.workload in names and m.status == "ok" and m.summary]
    if not ms:
        return None
    panels: dict[str, list[tuple[float, float]]] = {}
    for m in ms:
        panels.setdefault(str(m.spec.get(plot.panel, "")), []).append((m.spec[plot.x], m.summary[plot.y]))
    rows = math.ceil(len(panels) / 2)
    fig, axes = plt.subplots(rows, 2 if len(panels) > 1 else 1, figsize=(11, 3.2 * rows), squeeze=False)
    for ax, (name, points) in zip(axes.flat, sorted(panels.items()), strict=False):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", markersize=3)
        ax.set_xscale("log", base=2)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(plot.xlabel or plot.x, fontsize=8)
        ax.set_ylabel(plot.ylabel or plot.y, fontsize=8)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    heading = (plot.heading or plot.title).format_map(_Missing(ms[0].spec))
    fig.suptitle(f"{heading} — {_devices(ms)}", fontsize=9)
    return _png(fig)


class _Missing(dict):
    """A spec for str.format_map: a key it lacks reads as '?' (a heading names keys an old report may not have)."""

    def __missing__(self, key: str) -> str:
        return "?"


def roofline_points(report: NodeReport) -> list[tuple[float, float, str]]:
    """(FLOP/byte, TFLOPS, tag) of every valid native matmul and every STREAM kernel with arithmetic."""
    points = []
    for m in [m for m in _ok(report, ROOFLINE, "compute") if not m.emulated]:
        s, p = m.spec, prec.get(m.spec["precision"])
        intensity = figures.matmul_flops(s["m"], s["n"], s["k"]) / (
            p.itemsize * (s["m"] * s["k"] + s["k"] * s["n"] + s["m"] * s["n"])
        )
        points.append((intensity, m.summary["tflops_median"], s["precision"]))
    for m in _ok(report, ROOFLINE, "memory"):
        kernel = m.spec.get("kernel")
        if kernel in STREAM_FLOPS:
            intensity = stream_intensity(kernel)
            points.append((intensity, m.summary["gbps_median"] * intensity / 1e3, f"STREAM {kernel}"))
    return points


def roofline(report: NodeReport) -> bytes | None:
    """Measured points against the compute ceilings (peak TFLOPS per precision) and the memory ceiling (best
    measured STREAM bandwidth, else the vendor figure): arithmetic intensity in FLOP/byte on x."""
    mat = [m for m in _ok(report, ROOFLINE, "compute") if not m.emulated]
    mem = _ok(report, ROOFLINE, "memory")
    if not mat:
        return None
    bandwidth_gbps = max(
        (m.summary.get("gbps_best", 0.0) for m in mem if m.spec.get("kernel") in STREAM_BYTES), default=0.0
    )
    points = roofline_points(report)
    ceilings = {}
    for m in mat:
        if (m.peak or {}).get("tflops"):
            ceilings[m.spec["precision"]] = m.peak["tflops"]
    unit, k = flop_unit(mat)  # the page's unit: GFLOPS on a CPU page
    fig, ax = plt.subplots(figsize=(8, 5))
    lo = min(p[0] for p in points) / 2
    hi = max(p[0] for p in points) * 2
    xs = [lo * (hi / lo) ** (i / 100) for i in range(101)]
    if bandwidth_gbps:
        for name, peak in sorted(ceilings.items()):
            ax.plot(
                xs,
                [min(peak, x * bandwidth_gbps / 1e3) * k for x in xs],
                "--",
                linewidth=1,
                label=f"roof {name} ({peak * k:.3g} {unit})",
            )
        ax.plot(xs, [x * bandwidth_gbps / 1e3 * k for x in xs], ":", color="gray",
                label=f"memory {bandwidth_gbps:.3g} GB/s (measured)")  # fmt: skip
    else:
        for name, peak in sorted(ceilings.items()):
            ax.axhline(peak * k, linestyle="--", linewidth=1, label=f"peak {name} ({peak * k:.3g} {unit})")
    for tag in sorted({p[2] for p in points}):
        chosen = [p for p in points if p[2] == tag]
        ax.plot([p[0] for p in chosen], [p[1] * k for p in chosen], "o", label=tag, alpha=0.7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel(unit)
    ax.set_title(f"Roofline: measured points under the compute and memory ceilings — {_devices(mat + mem)}", fontsize=9)
    ax.grid(True, which="both", alpha=0.2)
    ax.legend(fontsize=7)
    return _png(fig)


#: Telemetry fields as a reader names them, with their unit.
TELEMETRY_NAMES = {"cpu_mhz": "CPU clock (MHz)", "sm_clock_mhz": "SM clock (MHz)", "memory_clock_mhz": "memory clock (MHz)",
                   "power_w": "power (W)", "temperature_c": "temperature (°C)", "package_w": "CPU package power (W)"}  # fmt: skip
STYLES, MARKERS = ("-", "--", ":", "-."), ("o", "s", "^", "D", "v")


def telemetry(report: NodeReport) -> bytes | None:
    """Clocks, power and temperature over time during sustained (MSMF) windows."""
    windows = [m for m in _of(report, TELEMETRY) if m.details.get("telemetry_samples")]
    fields = sorted({k for m in windows for s in m.details["telemetry_samples"] for k, v in s.items()
                     if k != "t_s" and isinstance(v, (int, float)) and not isinstance(v, bool)
                     and k not in ("energy_j", "throttle_reasons")})  # fmt: skip
    if not fields:
        return None
    fig, axes = plt.subplots(len(fields), 1, figsize=(9, 2.6 * len(fields)), sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], fields, strict=True):
        for i, m in enumerate(windows):
            pts = [(s["t_s"], s[name]) for s in m.details["telemetry_samples"] if isinstance(s.get(name), (int, float))]
            if pts:  # windows often read the same clock: a style and marker each keeps overlapping lines apart
                ax.plot([p[0] for p in pts], [p[1] for p in pts], linestyle=STYLES[i % len(STYLES)],
                        marker=MARKERS[i % len(MARKERS)], markersize=4, linewidth=1.5, alpha=0.8,
                        label=f"{m.device.get('id')} {m.spec.get('precision')}")  # fmt: skip
        ax.set_ylabel(TELEMETRY_NAMES.get(name, name), fontsize=8)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[0, 0].set_title(f"Telemetry during sustained windows — {_devices(windows)}", fontsize=9)
    axes[-1, 0].set_xlabel("seconds into the window")
    return _png(fig)


def msmf_series(report: NodeReport) -> bytes | None:
    """Throughput per tenth of each sustained window: a falling line is a clock or thermal slow-down."""
    windows = [m for m in _of(report, SUSTAINED) if (m.details.get("msmf") or {}).get("series")]
    if not windows:
        return None
    unit, scale = flop_unit(windows)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for m in windows:
        series = m.details["msmf"]["series"]
        ax.plot(
            [p["t_s"] for p in series],
            [p["tflops"] * scale for p in series],
            "o-",
            label=f"{m.device.get('id')} {m.spec.get('precision')}",
        )
    ax.set_xlabel("seconds into the window")
    ax.set_ylabel(f"{unit} (per tenth of the window)")
    ax.set_title(f"Sustained throughput over the MSMF window — {_devices(windows)}", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def capacity_distribution(cap: dict[str, Any]) -> bytes | None:
    """Per accelerator model x precision: every counted device's MAMF by node, the group median, defective in red."""
    devices = cap.get("devices") or []
    if not devices:
        return None
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for d in devices:
        groups.setdefault((str(d.get("model")), str(d.get("precision"))), []).append(d)
    bad = {(d.get("node"), d.get("device"), d.get("precision")) for d in cap.get("defective", [])}
    fig, axes = plt.subplots(len(groups), 1, figsize=(11, 3.6 * len(groups)), squeeze=False)
    for ax, ((model, precision), rows) in zip(axes[:, 0], sorted(groups.items()), strict=True):
        nodes = sorted({str(r.get("node")) for r in rows})
        index = {n: i for i, n in enumerate(nodes)}
        for r in rows:
            red = (r.get("node"), r.get("device"), r.get("precision")) in bad
            ax.plot(index[str(r.get("node"))], r["mamf_tflops"], "o", color="red" if red else "#1f77b4",
                    markersize=7 if red else 4, alpha=0.8)  # fmt: skip
        median = sorted(r["mamf_tflops"] for r in rows)[len(rows) // 2]
        ax.axhline(median, color="gray", linestyle="--", linewidth=1, label="median")
        ax.set_title(f"{model} {precision}: MAMF per device (red = defective)", fontsize=9)
        ax.set_ylabel("TFLOPS")
        step = max(1, math.ceil(len(nodes) / 20))  # at most 20 node names, readable at 1400 px
        ax.set_xticks(range(0, len(nodes), step), nodes[::step], rotation=40, ha="right", fontsize=8)
        ax.set_xlabel("node" + (f" (one name every {step} nodes)" if step > 1 else ""))
        ax.legend(fontsize=7)
    return _png(fig)


#: The figure kinds a descriptor may list (registry.Plot.kind) and what each draws from the measurements of the
#: workloads listing it. The first five read a GEMM's spec (m, n, k, precision) and a search's details (MAMF, MSMF
#: windows); "vs_size" reads only the keys its Plot names.
KINDS: dict[str, Callable[[NodeReport, registry.Plot], bytes | None]] = {
    THROUGHPUT_VS_SIZE: lambda report, plot: matmul_vs_size(report),
    ACHIEVED_VS_PEAK: lambda report, plot: achieved_vs_peak(report),
    ROOFLINE: lambda report, plot: roofline(report),
    SUSTAINED: lambda report, plot: msmf_series(report),
    TELEMETRY: lambda report, plot: telemetry(report),
    VS_SIZE: vs_size,
}


def node_plots() -> list[registry.Plot]:
    """Every figure a node page can have: each registered workload's plots in registry order, one per kind and
    title (the first workload to list it places it)."""
    out: dict[tuple[str, str], registry.Plot] = {}
    for w in registry.workloads():
        for p in w.plots:
            if p.kind not in KINDS:
                raise ValueError(
                    f"workload {w.name!r} lists a plot of unknown kind {p.kind!r}; known: {', '.join(KINDS)}"
                )
            out.setdefault((p.kind, p.title), p)
    return list(out.values())


def node_figures(report: NodeReport) -> list[tuple[str, bytes | None]]:
    """(caption, PNG or None) of every figure of a node page, in page order. A caption's {unit} is the FLOP unit of
    the measurements the figure shows (a roofline's compute side), GFLOPS when only CPUs are on it."""
    out = []
    for plot in node_plots():
        names = {w.name for w in registry.workloads() for p in w.plots
                 if (p.kind, p.title) == (plot.kind, plot.title) and p.role != "memory"}  # fmt: skip
        unit, _ = flop_unit([m for m in report.measurements if m.workload in names])
        out.append((plot.title.format(unit=unit), KINDS[plot.kind](report, plot)))
    return out
