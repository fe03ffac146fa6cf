"""A stand-alone HTML page for a node or capacity report: tables and matplotlib figures embedded as data URIs, so the
file can be mailed, attached to a CI run or opened offline."""

from __future__ import annotations

import base64
import html
from typing import Any

from bench.model.reports import NodeReport
from bench.report import export, gates, headline, plots, render

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { max-width: 100%; display: block; overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #b00020; font-weight: 600; }
.dim { color: #888; }
.bold { font-weight: 600; }
figure { margin: 1em 0 2em; }
figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; }
"""

#: Marks the page once every embedded figure has decoded (data-figures="loaded/total"), and names any that did not:
#: a reader sees a broken figure, and a headless browser can check the page.
CHECK_SCRIPT = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-figures', ok.length + '/' + imgs.length);
  imgs.forEach(function (i) {
    if (i.complete && i.naturalWidth > 0) { return; }
    i.setAttribute('data-failed', 'yes');
    var note = document.createElement('p');
    note.className = 'bad';
    note.textContent = 'figure failed to load: ' + i.alt;
    i.parentNode.insertBefore(note, i.nextSibling);
  });
});
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p><em>none</em></p>"
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)

    def cell(v: Any) -> str:
        if isinstance(v, float):  # 4 significant digits, and large figures whole with thousands separators
            return f'<td class="num">{v:,.0f}</td>' if abs(v) >= 1e4 else f'<td class="num">{v:.4g}</td>'
        if isinstance(v, int) and not isinstance(v, bool):
            return f'<td class="num">{v}</td>'
        return f"<td>{_e(v)}</td>"

    body = "".join("<tr>" + "".join(cell(r.get(c)) for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def grid(g: render.Grid) -> str:
    """A render.Grid as an HTML table: the same cells the terminal and the Markdown file show."""
    if not g.rows:
        return f"<h3>{_e(g.title)}</h3><p><em>none</em></p>"
    head = "".join(f"<th>{_e(c)}</th>" for c in g.columns)
    body = ""
    for row, style in zip(g.rows, g.styles, strict=True):
        cells = "".join(f'<td class="num">{_e(v)}</td>' if c in g.numeric else f"<td>{_e(v)}</td>"
                        for c, v in zip(g.columns, row, strict=True))  # fmt: skip
        body += f'<tr class="{style}">{cells}</tr>' if style else f"<tr>{cells}</tr>"
    return f"<h3>{_e(g.title)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(title: str, png: bytes | None) -> str:
    if png is None:
        return ""
    data = base64.b64encode(png).decode()
    return f'<figure><img alt="{_e(title)}" src="data:image/png;base64,{data}"><figcaption>{_e(title)}</figcaption></figure>'


def page(title: str, body: list[str]) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(body)}<script>{CHECK_SCRIPT}</script></body></html>\n")  # fmt: skip


def node_page(report: NodeReport, checks: list[gates.Gate] | None = None) -> str:
    """The run's tables (render.workload_grids: the terminal's and the Markdown's too), its gate results (default:
    correctness and completeness, which need no config), warnings grouped by kind, and the plots."""
    host = report.inventory.get("host", {})
    gpus = report.inventory.get("nvml", {}).get("gpus", [])
    state = "partial (interrupted or crashed)" if report.partial else "complete"
    body = [f"<h1>bench run {_e(report.run_id)}</h1>",
            *[f'<p class="bad">{_e(line)}</p>' for line in headline.lines(report)],
            *[grid(g) for g in headline.grids(report)],
            table([{"host": host.get("hostname"), "CPU": host.get("cpu_model"), "cores": host.get("physical_cores"),
                    "GPUs": ", ".join(str(g.get("name")) for g in gpus) or "none", "torch": host.get("torch_version"),
                    "bench": report.tool.get("version"), "start": report.start_utc, "end": report.end_utc,
                    "state": state, "signed by": (report.signature or {}).get("key_id", "unsigned")}])]  # fmt: skip
    preflight = [c for c in (report.config.get("preflight") or []) if c.get("status") != "pass"]
    if preflight:
        body += ["<h2>Pre-flight (the machine before the run)</h2>",
                 table([{"check": c.get("name"), "status": c.get("status"), "detail": c.get("detail"),
                         "fix": c.get("fix")} for c in preflight])]  # fmt: skip
    checks = gates.correctness(report) if checks is None else checks
    body += [
        "<h2>Gates</h2>",
        grid(render.gates_grid(checks)) if checks else "<p>every measurement passed its check</p>",
    ]
    body.append("<h2>Figures</h2>")
    body += [grid(g) for g in render.workload_grids(report.measurements)]
    bad = [{"workload": m.workload, "device": m.device.get("id"), "what": m.spec.get("precision") or m.spec.get("step"),
            "status": m.status, "reason": m.reason} for m in report.measurements if m.status != "ok"]  # fmt: skip
    if bad:
        body += ["<h2>Not counted</h2>", table(bad)]
    warnings = export.warning_summary(report)
    if warnings:
        body += ["<h2>Warnings</h2>", table(warnings)]
    body.append("<h2>Plots</h2>")
    body += [figure(title, png) for title, png in plots.node_figures(report)]
    return page(f"bench {report.run_id}", body)


#: The fleet page's columns: (field, heading a reader understands), precision first. Fields a report lacks show "-".
#: The fleet page's columns: (field, heading a reader understands, scale), precision first; one unit per table (fleet
#: totals in PFLOPS, per-device figures in TFLOPS). Fields a report lacks show "-".
TOTALS_COLUMNS = (
    ("precision", "precision", None), ("devices", "devices", None), ("nodes", "nodes", None),
    ("reported_tflops", "reported MAMF PFLOPS", 1e-3), ("bounded_tflops", "bounded PFLOPS", 1e-3),
    ("bounded_devices", "bounded devices", None), ("proven_tflops", "proven PFLOPS", 1e-3),
    ("msmf_tflops", "MSMF PFLOPS", 1e-3), ("peak_tflops", "peak PFLOPS", 1e-3),
    ("devices_without_peak", "devices without a peak", None),
)  # fmt: skip
GROUPS_COLUMNS = (
    ("precision", "precision", None), ("model", "accelerator", None), ("devices", "devices", None),
    ("nodes", "nodes", None), ("mamf_sum_tflops", "MAMF sum TFLOPS", 1.0), ("msmf_sum_tflops", "MSMF sum TFLOPS", 1.0),
    ("peak_sum_tflops", "peak sum TFLOPS", 1.0), ("efficiency", "MAMF / peak", None),
    ("mamf_p5_tflops", "MAMF p5 TFLOPS per device", 1.0), ("mamf_median_tflops", "MAMF median TFLOPS per device", 1.0),
    ("mamf_p95_tflops", "MAMF p95 TFLOPS per device", 1.0),
)  # fmt: skip


def _human(rows: list[dict[str, Any]], columns: tuple[tuple[str, str, float | None], ...]) -> list[dict[str, Any]]:
    """Rows renamed to the headings of `columns`, in their order and scaled to the heading's unit (fields not listed
    are left out: the JSON has them)."""

    def value(r: dict[str, Any], key: str, scale: float | None) -> Any:
        v = r.get(key)
        if v is None:
            return "-"
        return v * scale if scale is not None and isinstance(v, (int, float)) and not isinstance(v, bool) else v

    return [{heading: value(r, key, scale) for key, heading, scale in columns} for r in rows]


def capacity_page(cap: dict[str, Any]) -> str:
    signer = (cap.get("signature") or {}).get("key_id", "unsigned")
    counted = sum(i.get("status") == "counted" for i in cap.get("inputs", []))
    body = [f"<h1>bench capacity report {_e(cap.get('created_utc'))}</h1>",
            f"<p>{counted} node reports counted of {len(cap.get('inputs', []))}; signed by {_e(signer)}.</p>",
            "<h2>Totals per precision</h2>", table(_human(cap.get("totals", []), TOTALS_COLUMNS)),
            "<h2>Groups: accelerator model x precision</h2>", table(_human(cap.get("groups", []), GROUPS_COLUMNS)),
            "<h2>Defective</h2>", table([{k: v for k, v in d.items() if k != "reasons"} | {"reasons": "; ".join(d.get("reasons", []))}
                                         for d in cap.get("defective", [])]),
            "<h2>Per-node distribution</h2>", figure("MAMF per device by node", plots.capacity_distribution(cap))]  # fmt: skip
    rejected = [i for i in cap.get("inputs", []) if i.get("status") != "counted"]
    if rejected:
        body += ["<h2>Rejected inputs</h2>", table([{"name": i.get("name"), "reasons": "; ".join(i.get("reasons", []))}
                                                    for i in rejected])]  # fmt: skip
    if cap.get("duplicates"):
        body += ["<h2>Duplicates (counted once)</h2>",
                 table([{**d, **{k: ", ".join(d.get(k, [])) for k in ("dropped", "dropped_devices", "shared")}}
                        for d in cap["duplicates"]])]  # fmt: skip
    return page("bench capacity report", body)
