"""A disclosure as Markdown and as one stand-alone HTML page for a non-specialist: headline capacity per precision
with its tier, the roll-up as a tree with bars, inventory by model, readiness bars, the claims ledger, and what the
operator declared, kept apart from what was measured. Rendering only reads the document: it never computes a figure.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

#: The category a roll-up shows first (kpis.HEADLINE: the precision industrial AI trains in).
HEADLINE = "bf16/fp16"
TIER_NOTE = {
    "reported": "signed by node keys: integrity only (the operator holds those keys)",
    "bounded": "also physically possible on a known device, unique across the tree and fresh",
    "proven": "a lower bound from a challenge timed by the auditor",
    "proven (sampled)": "the auditor's sampled challenge: a one-sided lower confidence bound",
    "declared": "the operator's word: not measured",
}


#: Where a reader finds what each figure means and how it is derived: docs/disclosure.md in bench's source tree (the
#: project publishes no web address of its own, so the page names the file and links it relative to the source).
DOCS = "docs/disclosure.md#what-each-figure-means"
#: FLOPS units a reader knows, largest first, each as a multiple of a PFLOPS.
FLOPS_UNITS = (("EFLOPS", 1e3), ("PFLOPS", 1.0), ("TFLOPS", 1e-3), ("GFLOPS", 1e-6))


def plain(x: float, significant: int = 4) -> str:
    """A number as people read it: `significant` digits (whole numbers kept whole), thousands separators, never an
    exponent ("4.907e-05" is how a machine writes 0.00004907; a page says 49.07 GFLOPS instead, see flops())."""
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    decimals = min(9, max(0, significant - 1 - math.floor(math.log10(abs(x)))))
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def flops(pflops: float | None) -> str:
    """A capacity in PFLOPS as the unit that keeps it between 1 and 1,000 (EFLOPS, PFLOPS, TFLOPS, GFLOPS), four
    significant digits: 563,820 PFLOPS reads 563.8 EFLOPS, 4.907e-05 PFLOPS reads 49.07 GFLOPS. Zero is "0 PFLOPS"."""
    if pflops is None:
        return "–"
    if pflops == 0:
        return "0 PFLOPS"
    for unit, scale in FLOPS_UNITS:
        if abs(pflops) >= scale:
            return f"{plain(pflops / scale)} {unit}"
    return f"{plain(pflops / FLOPS_UNITS[-1][1])} {FLOPS_UNITS[-1][0]}"


def _n(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return plain(x, digits) if abs(x) < 1000 else f"{x:,.0f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def verify_command(doc: dict[str, Any]) -> str:
    """The exact `bench verify` command that re-derives this document and holds it to the reader's own key lists:
    one option per key list its policy names (the files' names are the reader's; key_lists() says what they hold)."""
    policy = doc["policy"]
    parts = ["bench verify disclosure.json --from DIR"]
    if policy.get("node_key_ids") is not None:
        parts.append("--trusted-keys nodes.keys")
    if policy.get("aggregator_key_ids") is not None:
        parts.append("--aggregator-keys aggregators.keys")
    if policy.get("operator_key_ids") is not None:
        parts.append("--operator-keys operators.keys")
    if policy.get("auditor_key_id") is not None:
        parts.append("--auditor-key auditor.pub")
    return " ".join(parts)


def key_lists(doc: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(file in verify_command, the key ids this document's policy names for it): a reader should hold those keys
    from the parties themselves, never from this page."""
    policy = doc["policy"]
    out = [("nodes.keys", policy.get("node_key_ids")), ("aggregators.keys", policy.get("aggregator_key_ids")),
           ("operators.keys", policy.get("operator_key_ids")),
           ("auditor.pub", [policy["auditor_key_id"]] if policy.get("auditor_key_id") else None)]  # fmt: skip
    return [(f, ids) for f, ids in out if ids is not None]


def _ids(ids: list[str]) -> str:
    return ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")


def why_bounded(c: dict[str, Any]) -> str:
    """Why part (or all) of a capacity row is not bounded, from the reasons the document carries; '' when all is."""
    return "; ".join(f"{r['devices']:,} device{'s' if r['devices'] != 1 else ''}: {r['why']}"
                     for r in c.get("why_not_bounded") or [])  # fmt: skip


def dates(date_range: list[str] | None) -> str:
    """A measurement date range by day ("2026-11-28", or "2026-11-01 – 2026-11-28"); the JSON keeps the seconds."""
    if not date_range:
        return "–"
    days = sorted({d[:10] for d in date_range})
    return " – ".join([days[0], days[-1]] if len(days) > 1 else days)


def tree_figure(node: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(category, figures) a roll-up node is shown by: bf16/fp16 where it has such devices, else its largest
    reported category (a CPU site has no bf16/fp16 figure to show, and "0 PFLOPS bf16/fp16" would hide what it has)."""
    head = node["pflops"].get(HEADLINE) or {}
    if head.get("reported_pflops"):
        return HEADLINE, head
    best = max(node["pflops"].items(), key=lambda kv: kv[1].get("reported_pflops") or 0.0, default=(HEADLINE, {}))
    return best if best[1].get("reported_pflops") else (HEADLINE, head)


def cpus_apart(inventory: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(accelerators, CPUs) of the inventory: a CPU is not an accelerator and holds no accelerator memory."""
    return [r for r in inventory if r.get("kind") != "cpu"], [r for r in inventory if r.get("kind") == "cpu"]


def _pct(x: Any) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _title(doc: dict[str, Any]) -> str:
    return f"Compute disclosure: {doc['level']} {doc['name']}"


# --- Markdown ---------------------------------------------------------------------------------------------------------


def _md_text(text: str) -> str:
    """Free text (a claim's source or date) as one inert line of Markdown: line breaks become spaces, and every
    character Markdown or HTML would act on is backslash-escaped (so it cannot forge a verdict or hide the real one)."""
    flat = " ".join(str(text).split())
    return re.sub(r"([\\`*_\[\]<>|~&])", r"\\\1", flat)


def _md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(x: Any) -> str:
        return _n(x).replace("|", "\\|").replace("\n", " ")

    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(map(cell, r)) + " |" for r in rows),
        "",
    ]


def _md_tree(node: dict[str, Any], depth: int = 0) -> list[str]:
    category, head = tree_figure(node)
    out = [(f"{'  ' * depth}- **{node['name']}**: {node['devices']:,} devices, {category} {flops(head.get('reported_pflops'))} "
           f"reported, {flops(head.get('bounded_pflops'))} bounded")]  # fmt: skip
    for child in node["children"]:
        out += _md_tree(child, depth + 1)
    return out


def markdown(doc: dict[str, Any]) -> str:
    lines = [f"# {_title(doc)}", "", (f"As of {doc['as_of_utc']} ({' / '.join(doc['path'])}). Signed by key "
             f"`{doc['signature']['key_id']}`. Check it yourself (DIR: the folder of the documents it cites):"), "",
             f"    {verify_command(doc)}", "",
             *[f"- `{f}`: {_ids(ids)}" for f, ids in key_lists(doc)], "",
             f"What each figure means and how it is derived: {DOCS} in bench's source.", "",
             "Tiers: " + "; ".join(f"**{t}**: {n}" for t, n in TIER_NOTE.items()) + ".", "",
             "## Capacity per precision (dense, measured; never vendor peak, never sparse)", ""]  # fmt: skip
    lines += _md_table(["precision", "devices", "reported", "bounded", "proven", "sustained (MSMF)", "measured",
                        "why not bounded / proven"],
                       [[c["category"], c["devices"], flops(c["reported_pflops"]), flops(c["bounded_pflops"]),
                         flops(c["proven_pflops"]), flops(c["sustained_pflops"]) if c["sustained_pflops"] is not None
                         else "not measured", dates(c["date_range"]),
                         "; ".join(x for x in (why_bounded(c), c.get("why_not_proven") and f"proven: {c['why_not_proven']}") if x) or "–"]
                        for c in doc["capacity"] if c["devices"]])  # fmt: skip
    if doc["audit"]:
        a = doc["audit"]
        lines += ["## Audit by sampling", "", (f"{a['units_drawn']} units of {a['unit_gflops']} GFLOPS drawn from "
                  f"{a['population_units']:,} ({a['population_devices']} devices, {a['precision']}) with nonce "
                  f"`{a['nonce']}` of the auditor's request (key {a.get('request_key_id')}, issued "
                  f"{a.get('request_issued_utc')}); {a['units_genuine']} genuine. At {a['confidence']:.0%} confidence at least "
                  f"{_pct(a['genuine_share_lower_bound'])} of the reported capacity is genuine: "
                  f"**{flops(a['supported_pflops'])} proven (sampled)**. Method: {a['method']}."), ""]  # fmt: skip
    lines += ["## Roll-up (each device counted once across the tree)", "", *_md_tree(doc["tree"]), ""]
    if doc["duplicates"]:
        lines += ["Devices listed in more than one place (counted once):", ""]
        lines += _md_table(["device", "precision", "counted in", "also listed in"],
                           [[d["device"], d["precision"], d["kept_in"], ", ".join(d["dropped_from"])] for d in doc["duplicates"]])  # fmt: skip
    accelerators, cpus = cpus_apart(doc["inventory"])
    for title, rows in (("Accelerators by model", accelerators), ("CPUs by model", cpus)):
        if not rows:
            continue
        lines += [f"## {title}", ""]
        lines += _md_table(["model", "devices", "healthy", "defective", "stale", "bounded", "nodes"],
                           [[r["model"], r["devices"], r["healthy"], r["defective"], r["stale"], r["bounded_devices"],
                             r["nodes"]] for r in rows])  # fmt: skip
        if rows is accelerators:
            lines += [(f"Accelerator memory: {plain(int(doc['accelerator_memory_bytes']) / 2**40)} TiB "
                       f"({doc['accelerator_memory_bytes']} bytes)."), ""]  # fmt: skip
    lines += ["## Readiness", ""]
    lines += _md_table(["figure", "value", "tier", "how"],
                       [[r["label"], _pct(r["value"]) if r["unit"] == "share" else _n(r["value"]), r["tier"], r["derivation"]]
                        for r in doc["readiness"]])  # fmt: skip
    lines += ["## Claims ledger", ""]
    for c in doc["claims"]:
        lines += [(f'**"{_md_text(c["text"])}"** ({_md_text(c["source"]) or "no source"}, '
                   f'{_md_text(c["date"]) or "undated"}): {c["verdict"]}'), ""]  # fmt: skip
        lines += _md_table(["as precision", "claimed", "reported", "bounded", "proven", "gap to proven", "planned (declared)",
                            "inflations that would explain it"],
                           [[x["category"], flops(c["claimed_pflops"]), flops(x["reported_pflops"]), flops(x["bounded_pflops"]),
                             flops(x["proven_pflops"]), flops(x["gap_to_proven_pflops"]), flops(x["declared_planned_pflops"]),
                             "; ".join(i["inflation"] for i in x["inflations"] if i["explains"]) or "none"]
                            for x in c["comparisons"]])  # fmt: skip
    if not doc["claims"]:
        lines += ["No claims entered.", ""]
    d = doc["declared"]
    lines += ["## Declared by the operators (not measured, never added to a measured total)", ""]
    lines += _md_table(["site", "operator", "open access", "how to request", "networks", "planned"],
                       [["/".join(s["path"]), s["operator"], _pct((s["open_access"] or {}).get("share")),
                         (s["open_access"] or {}).get("how_to_request"),
                         ", ".join(n["name"] + (f" ({n['role']})" if n["role"] else "") for n in s["networks"]) or "none",
                         "; ".join(f"{flops(p['pflops'])} {p['precision'] or '(precision not stated)'} by {p['date']}"
                                   for p in s["planned"]) or "none"] for s in d["sites"]])  # fmt: skip
    return "\n".join(lines) + "\n"


# --- HTML -------------------------------------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
.scroll{overflow-x:auto;max-width:100%}td.why{text-align:left;font-size:.85em;color:#555;min-width:14em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}.tier{border-radius:.6em;padding:0 .5em;font-size:.85em;color:#fff;white-space:nowrap}
.num{white-space:nowrap}.card small{display:block;color:#555;max-width:22em}
pre{background:#f4f4f4;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
@media (max-width:600px){body{margin:1em auto}.card{min-width:0;flex:1 1 100%}.bar{min-width:6em}}
.reported{background:#999}.bounded{background:#2a7ab0}.proven{background:#2a9d4b}.declared{background:#b07a2a}
.bar{background:#e8eef5;height:1em;position:relative;min-width:12em}.bar span{display:block;height:100%;background:#2a7ab0}
.tree ul{list-style:none;padding-left:1.4em;border-left:1px dashed #bbb}.tree li{margin:.2em 0}
.headline{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ccc;border-radius:.5em;padding:.6em 1em;min-width:12em}
.card b{font-size:1.4em}.declared-box{border:2px dashed #b07a2a;padding:.5em 1em;border-radius:.5em}
"""
#: The page checks itself once loaded (as the run report does): every section present, every bar a finite width.
CHECK_SCRIPT = """
(function(){var need=['check','headline','rollup','inventory','readiness','claims','declared'];var ok=need.every(function(id){
return document.getElementById(id)!==null;});var bars=document.querySelectorAll('.bar span');for(var i=0;i<bars.length;i++){
var w=parseFloat(bars[i].style.width);if(!(w>=0&&w<=100)){ok=false;}}document.body.setAttribute('data-sections',
ok?'ok':'missing');})();
"""


def _e(x: Any) -> str:
    return html.escape(_n(x))


def _f(pflops: float | None) -> str:
    return f"<span class='num'>{html.escape(flops(pflops))}</span>"


def _tier(t: str | None) -> str:
    if not t:
        return "<span class='tier reported'>not measured</span>"
    cls = "proven" if t.startswith("proven") else t
    return f"<span class='tier {html.escape(cls)}' title='{html.escape(TIER_NOTE.get(t, ''))}'>{html.escape(t)}</span>"


def _bar(value: float | None, top: float) -> str:
    width = 0.0 if not value or not top else max(0.0, min(100.0, 100 * value / top))
    return f"<div class='bar'><span style='width:{width:.2f}%'></span></div>"


def _table(header: list[str], rows: list[list[str]], *, text: tuple[int, ...] = ()) -> str:
    """An HTML table (cells already escaped); columns in `text` are prose, left-aligned and set smaller."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='why'>{c}</td>" if i in text else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)  # fmt: skip
    return f"<div class='scroll'><table><tr>{head}</tr>{body}</table></div>"


def _tree(node: dict[str, Any], top: float) -> str:
    category, figures = tree_figure(node)
    head = figures.get("reported_pflops") or 0.0
    kids = "".join(_tree(c, top) for c in node["children"])
    # the bars share one scale, the top's headline: a node shown in another category draws none
    bar = _bar(head, top) if category == HEADLINE else _bar(0.0, top)
    return (f"<li><b>{html.escape(node['name'])}</b> — {_e(node['devices'])} devices, {_f(head)} "
            f"{html.escape(category)} reported {bar}" + (f"<ul>{kids}</ul>" if kids else "") + "</li>")  # fmt: skip


def page(doc: dict[str, Any]) -> str:
    caps = [c for c in doc["capacity"] if c["devices"]]
    cards = "".join(
        f"<div class='card'>{html.escape(c['category'])}<br><b>{_f(c['reported_pflops'])}</b> {_tier('reported')}"
        f"<br>{_f(c['bounded_pflops'])} {_tier('bounded')}"
        + (f"<small>not bounded: {html.escape(why_bounded(c))}</small>" if why_bounded(c) else "")
        + f"<br>{_f(c['proven_pflops'])} {_tier('proven')}"
        + (f"<small>{html.escape(c['why_not_proven'])}</small>" if c.get("why_not_proven") else "") + "</div>"
        for c in caps
    )  # fmt: skip
    kid = html.escape(str(doc["signature"]["key_id"]))
    keys = "".join(f"<li><code>{html.escape(f)}</code>: {html.escape(_ids(ids))}</li>" for f, ids in key_lists(doc))
    body = [f"<h1>{html.escape(_title(doc))}</h1>",
            f"<p>As of {html.escape(doc['as_of_utc'])} — {html.escape(' / '.join(doc['path']))}. Dense capacity "
            "measured on the devices themselves (never a vendor peak, never sparsity). Each figure carries its tier: "
            + " ".join(f"{_tier(t)} {html.escape(n)}." for t, n in TIER_NOTE.items())
            + f" What each figure means and how it is derived: <a href='{DOCS}'>docs/disclosure.md</a> in bench's source.</p>",
            (f"<section id='check'><h2>Check this page yourself</h2><p>Signed by key <code>{kid}</code>. With the "
             "documents it cites in a folder DIR, this command re-derives every figure from the level below and holds "
             f"each signature to your own key lists:</p><pre>{html.escape(verify_command(doc))}</pre><p>The lists "
             "this document names (take the keys from the parties themselves, not from this page):</p>"
             f"<ul>{keys}</ul></section>"),
            f"<section id='headline'><h2>Capacity per precision</h2><div class='headline'>{cards}</div>",
            _table(["precision", "devices", "reported", "bounded", "proven", "sustained (MSMF)", "measured",
                    "why not bounded / proven"],
                   [[html.escape(c["category"]), _e(c["devices"]), _f(c["reported_pflops"]), _f(c["bounded_pflops"]),
                     _f(c["proven_pflops"]),
                     _f(c["sustained_pflops"]) if c["sustained_pflops"] is not None else _tier(None),
                     f"<span class='num'>{html.escape(dates(c['date_range']))}</span>",
                     html.escape("; ".join(x for x in (why_bounded(c), c.get("why_not_proven")
                                                       and f"proven: {c['why_not_proven']}") if x) or "–")]
                    for c in caps], text=(7,)) + "</section>"]  # fmt: skip
    if doc["audit"]:
        a = doc["audit"]
        body.append(f"<section id='audit'><h2>Audit by sampling {_tier('proven (sampled)')}</h2><p>At "
                    f"{a['confidence']:.0%} confidence at least {_pct(a['genuine_share_lower_bound'])} of the reported "
                    f"{html.escape(a['precision'])} capacity is genuine: <b>{_f(a['supported_pflops'])}</b> "
                    f"({a['units_genuine']} of {a['units_drawn']} sampled units genuine). {html.escape(a['method'])}."
                    "</p></section>")  # fmt: skip
    top = (doc["tree"]["pflops"].get(HEADLINE) or {}).get("reported_pflops") or 0.0
    dup = ""
    if doc["duplicates"]:
        dup = "<p>Listed in more than one place, counted once:</p>" + _table(
            ["device", "precision", "counted in", "also listed in"],
            [[html.escape(d["device"]), html.escape(d["precision"]), html.escape(d["kept_in"]),
              html.escape(", ".join(d["dropped_from"]))] for d in doc["duplicates"]])  # fmt: skip
    body.append(f"<section id='rollup' class='tree'><h2>Roll-up</h2><ul>{_tree(doc['tree'], top)}</ul>{dup}</section>")
    accelerators, cpus = cpus_apart(doc["inventory"])
    inventory = []
    for title, rows in (("Accelerators by model", accelerators), ("CPUs by model", cpus)):
        if rows:
            inventory.append(f"<h2>{title}</h2>" + _table(
                ["model", "devices", "healthy", "defective", "stale", "bounded", "nodes"],
                [[html.escape(r["model"]), _e(r["devices"]), _e(r["healthy"]), _e(r["defective"]), _e(r["stale"]),
                  _e(r["bounded_devices"]), _e(r["nodes"])] for r in rows]))  # fmt: skip
        if rows and rows is accelerators:
            inventory.append(f"<p>Accelerator memory: {plain(int(doc['accelerator_memory_bytes']) / 2**40)} TiB</p>")
    body.append("<section id='inventory'>" + ("".join(inventory) or "<h2>Devices</h2><p>None counted.</p>")
                + "</section>")  # fmt: skip
    body.append("<section id='readiness'><h2>Readiness</h2>" + _table(
        ["figure", "value", "", "tier", "how"],
        [[html.escape(r["label"]), _pct(r["value"]) if r["unit"] == "share" else _e(r["value"]),
          _bar(r["value"], 1.0) if r["unit"] == "share" else "", _tier(r["tier"]), html.escape(r["derivation"])]
         for r in doc["readiness"]], text=(4,)) + "</section>")  # fmt: skip
    claims = []
    for c in doc["claims"]:
        claims.append(f"<h3>“{html.escape(c['text'])}” <small>{html.escape(c['source'] or 'no source')}, "
                      f"{html.escape(c['date'] or 'undated')}</small></h3><p>{html.escape(c['verdict'])}</p>" + _table(
            ["as precision", "claimed", "reported", "bounded", "proven", "gap to proven", "planned (declared)",
             "inflations that would explain it"],
            [[html.escape(x["category"]), _f(c["claimed_pflops"]), _f(x["reported_pflops"]), _f(x["bounded_pflops"]),
              _f(x["proven_pflops"]), _f(x["gap_to_proven_pflops"]), _f(x["declared_planned_pflops"]),
              html.escape("; ".join(i["inflation"] for i in x["inflations"] if i["explains"]) or "none")]
             for x in c["comparisons"]], text=(7,)))  # fmt: skip
    body.append("<section id='claims'><h2>Claims ledger</h2>" + ("".join(claims) or "<p>No claims entered.</p>")
                + "</section>")  # fmt: skip
    d = doc["declared"]
    body.append(f"<section id='declared' class='declared-box'><h2>Declared by the operators {_tier('declared')}</h2>"
                f"<p>{html.escape(d['note'])}.</p>" + _table(
        ["site", "operator", "open access", "how to request", "networks", "planned"],
        [[html.escape("/".join(s["path"])), html.escape(s["operator"]), _pct((s["open_access"] or {}).get("share")),
          html.escape((s["open_access"] or {}).get("how_to_request") or "–"),
          html.escape(", ".join(n["name"] for n in s["networks"]) or "none"),
          html.escape("; ".join(f"{flops(p['pflops'])} {p['precision'] or '(precision not stated)'} by {p['date']}"
                                for p in s["planned"]) or "none")] for s in d["sites"]]) + "</section>")  # fmt: skip
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(_title(doc))}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}<script>{CHECK_SCRIPT}</script></body></html>\n")  # fmt: skip
