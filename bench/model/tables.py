"""Tables as plain data: a Grid of text cells, and the one number format and unit choice every table uses.

A workload's descriptor (bench.registry) builds its tables as Grids from its measurements; the report layer
(bench.report.render, html, export) draws them on the terminal (rich), in HTML and in Markdown, so the three show the
same figures and neither side imports the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.model.reports import Measurement

#: One unit per table, chosen by device class: a CPU's matmul figures in GFLOPS, a GPU's in TFLOPS (a table never mixes
#: them: measurements of both classes make two tables).
FLOP_UNITS = {"cpu": ("GFLOPS", 1e3), "cuda": ("TFLOPS", 1.0)}
KIND_NAMES = {"cpu": "CPU", "cuda": "GPU"}


def flop_unit(kind: str) -> tuple[str, float]:
    return FLOP_UNITS.get(kind, FLOP_UNITS["cuda"])


def device_kind(m: Measurement) -> str:
    return "cuda" if m.device.get("kind") == "cuda" else "cpu"


def by_device_kind(measurements: Iterable[Measurement]) -> dict[str, list[Measurement]]:
    out: dict[str, list[Measurement]] = {}
    for m in measurements:
        out.setdefault(device_kind(m), []).append(m)
    return out


def mnk(spec: dict[str, Any]) -> str:
    return f"{spec['m']}x{spec['n']}x{spec['k']}" if {"m", "n", "k"} <= spec.keys() else "-"


def num(x: float | None, scale: float = 1.0) -> str:
    """The one number format of every table (terminal, HTML, Markdown): 4 significant digits."""
    return "-" if x is None else f"{x * scale:.4g}"


def pct(x: float | None) -> str:
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
