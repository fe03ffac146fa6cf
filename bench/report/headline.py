"""What a reader sees first about a node report: whether the machine was loaded, and per device x precision the
figures that matter (MAMF by bench.figures.mamf's steady rule, MSMF, memory bandwidth, MFU) with a verdict. The
terminal, the Markdown file and the HTML page all draw these, above every other table. Pure: reads the report."""

from __future__ import annotations

from typing import Any

from bench import figures
from bench.model.reports import Measurement, NodeReport
from bench.model.tables import KIND_NAMES, Grid
from bench.model.tables import flop_unit as _unit
from bench.model.tables import mnk as _shape
from bench.model.tables import num as _num
from bench.model.tables import pct as _pct

#: Pre-flight statuses that mean the machine was not idle or not healthy when the run began ("unavailable" is not).
LOADED_STATUSES = ("warn", "fail")


def load_note(report: NodeReport) -> str | None:
    """One line saying the run measured a loaded (or unhealthy) machine, naming the pre-flight checks that warned; None
    when pre-flight passed or did not run."""
    bad = [c for c in (report.config.get("preflight") or []) if c.get("status") in LOADED_STATUSES]
    if not bad:
        return None
    what = "; ".join(f"{c.get('name')}: {c.get('detail')}" for c in bad)
    return f"MEASURED A LOADED MACHINE: pre-flight warned before the run ({what}); figures may read low and noisy"


def _key(m: Measurement) -> tuple[str, str]:
    return str(m.device.get("id", "?")), str(m.spec.get("precision", "-"))


def _codes(m: Measurement) -> str:
    return "; ".join(figures.unsteady_reasons(m))


def rows(report: NodeReport) -> list[dict[str, Any]]:
    """Per device x precision with a MAMF (native measurements only): kind, MAMF TFLOPS and its shape and source,
    whether it is steady, the MSMF TFLOPS, the device's best STREAM triad GB/s, the best training MFU at that precision,
    and a verdict ('steady', or why not)."""
    ms = report.measurements
    chosen = figures.mamf(ms, _key)
    msmf = {_key(m): (m.details.get("msmf") or {}).get("tflops") for m in ms
            if (m.details.get("search") or {}).get("role") == "msmf" and m.status == "ok"}  # fmt: skip
    triad: dict[str, float] = {}
    for m in ms:
        if m.workload == "membw" and m.status == "ok" and m.summary and m.spec.get("kernel") == "triad":
            d = str(m.device.get("id", "?"))
            triad[d] = max(triad.get(d, 0.0), m.summary["gbps_median"])
    mfu: dict[tuple[str, str], float] = {}
    for m in ms:
        if m.workload == "train" and m.status == "ok" and m.summary and m.summary.get("mfu") is not None:
            mfu[_key(m)] = max(mfu.get(_key(m), 0.0), m.summary["mfu"])
    out = []
    for key, (m, source) in chosen.items():
        steady = not source.endswith(figures.UNSTEADY)
        out.append({"device": key[0], "precision": key[1], "kind": "cuda" if m.device.get("kind") == "cuda" else "cpu",
                    "mamf_tflops": m.summary["tflops_median"], "shape": _shape(m.spec),
                    "source": source.removesuffix(figures.UNSTEADY), "steady": steady, "msmf_tflops": msmf.get(key),
                    "triad_gbps": triad.get(key[0]), "mfu": mfu.get(key),
                    "verdict": "steady" if steady else f"NOT STEADY: no steady measurement ({_codes(m)})"})  # fmt: skip
    return out


def grids(report: NodeReport) -> list[Grid]:
    """The headline table(s), one per device class so each has one FLOPS unit (GFLOPS on a CPU, TFLOPS on a GPU)."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in rows(report):
        by_kind.setdefault(r["kind"], []).append(r)
    out = []
    for kind, rs in by_kind.items():
        unit, scale = _unit(kind)
        g = Grid(f"headline ({KIND_NAMES[kind]}, {unit}; memory in GB/s): MAMF, MSMF, memory bandwidth, MFU",
                 ["device", "precision", f"MAMF {unit}", "MAMF shape", f"MSMF {unit}", "triad GB/s", "MFU", "verdict"],
                 numeric={f"MAMF {unit}", f"MSMF {unit}", "triad GB/s", "MFU"})  # fmt: skip
        for r in sorted(rs, key=lambda r: (r["device"], -r["mamf_tflops"])):
            g.add([r["device"], r["precision"], _num(r["mamf_tflops"], scale), r["shape"], _num(r["msmf_tflops"], scale),
                   _num(r["triad_gbps"]), _pct(r["mfu"]), r["verdict"]], None if r["steady"] else "bad")  # fmt: skip
        out.append(g)
    return out


def lines(report: NodeReport) -> list[str]:
    """The first lines of every rendering: the load note (if any), then one line per device x precision whose MAMF
    is not steady."""
    note = load_note(report)
    return ([note] if note else []) + [
        f"{r['device']} {r['precision']}: MAMF NOT STEADY: {r['verdict'].removeprefix('NOT STEADY: ')}"
        for r in rows(report) if not r["steady"]
    ]  # fmt: skip
