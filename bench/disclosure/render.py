"""A disclosure as Markdown and as one stand-alone HTML page for a non-specialist: headline capacity per precision
with its tier, the roll-up as a tree with bars, inventory by model, readiness bars, the claims ledger, and what the
operator declared, kept apart from what was measured. Rendering only reads the document: it never computes a figure.
"""

from __future__ import annotations

import html
import re
from typing import Any

TIER_NOTE = {
    "reported": "signed by node keys: integrity only (the operator holds those keys)",
    "bounded": "also physically possible on a known device, unique across the tree and fresh",
    "proven": "a lower bound from a challenge timed by the auditor",
    "proven (sampled)": "the auditor's sampled challenge: a one-sided lower confidence bound",
    "declared": "the operator's word: not measured",
}


def _n(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:,.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


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
    head = node["pflops"].get("bf16/fp16", {})
    out = [(f"{'  ' * depth}- **{node['name']}**: {node['devices']} devices, bf16/fp16 {_n(head.get('reported_pflops'))} "
           f"PFLOPS reported, {_n(head.get('bounded_pflops'))} bounded")]  # fmt: skip
    for child in node["children"]:
        out += _md_tree(child, depth + 1)
    return out


def markdown(doc: dict[str, Any]) -> str:
    lines = [f"# {_title(doc)}", "", (f"As of {doc['as_of_utc']} ({' / '.join(doc['path'])}). Signed by key "
             f"`{doc['signature']['key_id']}`; re-derive it with `bench verify disclosure.json --from DIR`."), "",
             "Tiers: " + "; ".join(f"**{t}**: {n}" for t, n in TIER_NOTE.items()) + ".", "",
             "## Capacity per precision (dense, measured; never vendor peak, never sparse)", ""]  # fmt: skip
    lines += _md_table(["precision", "devices", "reported PFLOPS", "bounded PFLOPS", "proven PFLOPS", "sustained PFLOPS",
                        "measured"],
                       [[c["category"], c["devices"], c["reported_pflops"], c["bounded_pflops"], c["proven_pflops"],
                         c["sustained_pflops"], " – ".join(c["date_range"] or [])] for c in doc["capacity"] if c["devices"]])  # fmt: skip
    if doc["audit"]:
        a = doc["audit"]
        lines += ["## Audit by sampling", "", (f"{a['units_drawn']} units of {a['unit_gflops']} GFLOPS drawn from "
                  f"{a['population_units']:,} ({a['population_devices']} devices, {a['precision']}) with nonce "
                  f"`{a['nonce']}` of the auditor's request (key {a.get('request_key_id')}, issued "
                  f"{a.get('request_issued_utc')}); {a['units_genuine']} genuine. At {a['confidence']:.0%} confidence at least "
                  f"{_pct(a['genuine_share_lower_bound'])} of the reported capacity is genuine: "
                  f"**{_n(a['supported_pflops'])} PFLOPS proven (sampled)**. Method: {a['method']}."), ""]  # fmt: skip
    lines += ["## Roll-up (each device counted once across the tree)", "", *_md_tree(doc["tree"]), ""]
    if doc["duplicates"]:
        lines += ["Devices listed in more than one place (counted once):", ""]
        lines += _md_table(["device", "precision", "counted in", "also listed in"],
                           [[d["device"], d["precision"], d["kept_in"], ", ".join(d["dropped_from"])] for d in doc["duplicates"]])  # fmt: skip
    lines += ["## Accelerators by model", ""]
    lines += _md_table(["model", "devices", "healthy", "defective", "stale", "bounded", "nodes"],
                       [[r["model"], r["devices"], r["healthy"], r["defective"], r["stale"], r["bounded_devices"], r["nodes"]]
                        for r in doc["inventory"]])  # fmt: skip
    lines += [(f"Accelerator memory: {int(doc['accelerator_memory_bytes']) / 2**40:,.1f} TiB "
              f"({doc['accelerator_memory_bytes']} bytes)."), "", "## Readiness", ""]  # fmt: skip
    lines += _md_table(["figure", "value", "tier", "how"],
                       [[r["label"], _pct(r["value"]) if r["unit"] == "share" else _n(r["value"]), r["tier"], r["derivation"]]
                        for r in doc["readiness"]])  # fmt: skip
    lines += ["## Claims ledger", ""]
    for c in doc["claims"]:
        lines += [(f'**"{_md_text(c["text"])}"** ({_md_text(c["source"]) or "no source"}, '
                   f'{_md_text(c["date"]) or "undated"}): {c["verdict"]}'), ""]  # fmt: skip
        lines += _md_table(["as precision", "claimed", "reported", "bounded", "proven", "gap to proven", "planned (declared)",
                            "inflations that would explain it"],
                           [[x["category"], c["claimed_pflops"], x["reported_pflops"], x["bounded_pflops"], x["proven_pflops"],
                             x["gap_to_proven_pflops"], x["declared_planned_pflops"],
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
                         "; ".join(f"{p['pflops']:g} PFLOPS {p['precision'] or '(precision not stated)'} by {p['date']}"
                                   for p in s["planned"]) or "none"] for s in d["sites"]])  # fmt: skip
    return "\n".join(lines) + "\n"


# --- HTML -------------------------------------------------------------------------------------------------------------

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}.tier{border-radius:.6em;padding:0 .5em;font-size:.85em;color:#fff}
.reported{background:#999}.bounded{background:#2a7ab0}.proven{background:#2a9d4b}.declared{background:#b07a2a}
.bar{background:#e8eef5;height:1em;position:relative;min-width:12em}.bar span{display:block;height:100%;background:#2a7ab0}
.tree ul{list-style:none;padding-left:1.4em;border-left:1px dashed #bbb}.tree li{margin:.2em 0}
.headline{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ccc;border-radius:.5em;padding:.6em 1em;min-width:12em}
.card b{font-size:1.4em}.declared-box{border:2px dashed #b07a2a;padding:.5em 1em;border-radius:.5em}
"""
#: The page checks itself once loaded (as the run report does): every section present, every bar a finite width.
CHECK_SCRIPT = """
(function(){var need=['headline','rollup','inventory','readiness','claims','declared'];var ok=need.every(function(id){
return document.getElementById(id)!==null;});var bars=document.querySelectorAll('.bar span');for(var i=0;i<bars.length;i++){
var w=parseFloat(bars[i].style.width);if(!(w>=0&&w<=100)){ok=false;}}document.body.setAttribute('data-sections',
ok?'ok':'missing');})();
"""


def _e(x: Any) -> str:
    return html.escape(_n(x))


def _tier(t: str | None) -> str:
    if not t:
        return "<span class='tier reported'>not measured</span>"
    cls = "proven" if t.startswith("proven") else t
    return f"<span class='tier {html.escape(cls)}' title='{html.escape(TIER_NOTE.get(t, ''))}'>{html.escape(t)}</span>"


def _bar(value: float | None, top: float) -> str:
    width = 0.0 if not value or not top else max(0.0, min(100.0, 100 * value / top))
    return f"<div class='bar'><span style='width:{width:.2f}%'></span></div>"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _tree(node: dict[str, Any], top: float) -> str:
    head = node["pflops"].get("bf16/fp16", {}).get("reported_pflops", 0.0)
    kids = "".join(_tree(c, top) for c in node["children"])
    return (f"<li><b>{html.escape(node['name'])}</b> — {_e(node['devices'])} devices, {_e(head)} PFLOPS bf16/fp16 "
            f"reported {_bar(head, top)}" + (f"<ul>{kids}</ul>" if kids else "") + "</li>")  # fmt: skip


def page(doc: dict[str, Any]) -> str:
    caps = [c for c in doc["capacity"] if c["devices"]]
    cards = "".join(
        f"<div class='card'>{html.escape(c['category'])}<br><b>{_e(c['reported_pflops'])}</b> PFLOPS {_tier('reported')}"
        f"<br>{_e(c['bounded_pflops'])} {_tier('bounded')}<br>{_e(c['proven_pflops'])} {_tier('proven')}</div>"
        for c in caps
    )  # fmt: skip
    body = [f"<h1>{html.escape(_title(doc))}</h1>",
            f"<p>As of {html.escape(doc['as_of_utc'])} — {html.escape(' / '.join(doc['path']))}. Dense capacity "
            "measured on the devices themselves (never a vendor peak, never sparsity). Each figure carries its tier: "
            + " ".join(f"{_tier(t)} {html.escape(n)}." for t, n in TIER_NOTE.items()) + "</p>",
            f"<section id='headline'><h2>Capacity per precision</h2><div class='headline'>{cards}</div>",
            _table(["precision", "devices", "reported", "bounded", "proven", "sustained (MSMF)", "measured"],
                   [[html.escape(c["category"]), _e(c["devices"]), _e(c["reported_pflops"]), _e(c["bounded_pflops"]),
                     _e(c["proven_pflops"]), _e(c["sustained_pflops"]), html.escape(" – ".join(c["date_range"] or []))]
                    for c in caps]) + "</section>"]  # fmt: skip
    if doc["audit"]:
        a = doc["audit"]
        body.append(f"<section id='audit'><h2>Audit by sampling {_tier('proven (sampled)')}</h2><p>At "
                    f"{a['confidence']:.0%} confidence at least {_pct(a['genuine_share_lower_bound'])} of the reported "
                    f"{html.escape(a['precision'])} capacity is genuine: <b>{_e(a['supported_pflops'])} PFLOPS</b> "
                    f"({a['units_genuine']} of {a['units_drawn']} sampled units genuine). {html.escape(a['method'])}."
                    "</p></section>")  # fmt: skip
    top = doc["tree"]["pflops"].get("bf16/fp16", {}).get("reported_pflops", 0.0)
    dup = ""
    if doc["duplicates"]:
        dup = "<p>Listed in more than one place, counted once:</p>" + _table(
            ["device", "precision", "counted in", "also listed in"],
            [[html.escape(d["device"]), html.escape(d["precision"]), html.escape(d["kept_in"]),
              html.escape(", ".join(d["dropped_from"]))] for d in doc["duplicates"]])  # fmt: skip
    body.append(f"<section id='rollup' class='tree'><h2>Roll-up</h2><ul>{_tree(doc['tree'], top)}</ul>{dup}</section>")
    body.append("<section id='inventory'><h2>Accelerators by model</h2>" + _table(
        ["model", "devices", "healthy", "defective", "stale", "bounded", "nodes"],
        [[html.escape(r["model"]), _e(r["devices"]), _e(r["healthy"]), _e(r["defective"]), _e(r["stale"]),
          _e(r["bounded_devices"]), _e(r["nodes"])] for r in doc["inventory"]])
        + f"<p>Accelerator memory: {int(doc['accelerator_memory_bytes']) / 2**40:,.1f} TiB</p></section>")  # fmt: skip
    body.append("<section id='readiness'><h2>Readiness</h2>" + _table(
        ["figure", "value", "", "tier", "how"],
        [[html.escape(r["label"]), _pct(r["value"]) if r["unit"] == "share" else _e(r["value"]),
          _bar(r["value"], 1.0) if r["unit"] == "share" else "", _tier(r["tier"]), html.escape(r["derivation"])]
         for r in doc["readiness"]]) + "</section>")  # fmt: skip
    claims = []
    for c in doc["claims"]:
        claims.append(f"<h3>“{html.escape(c['text'])}” <small>{html.escape(c['source'] or 'no source')}, "
                      f"{html.escape(c['date'] or 'undated')}</small></h3><p>{html.escape(c['verdict'])}</p>" + _table(
            ["as precision", "claimed", "reported", "bounded", "proven", "gap to proven", "planned (declared)",
             "inflations that would explain it"],
            [[html.escape(x["category"]), _e(c["claimed_pflops"]), _e(x["reported_pflops"]), _e(x["bounded_pflops"]),
              _e(x["proven_pflops"]), _e(x["gap_to_proven_pflops"]), _e(x["declared_planned_pflops"]),
              html.escape("; ".join(i["inflation"] for i in x["inflations"] if i["explains"]) or "none")]
             for x in c["comparisons"]]))  # fmt: skip
    body.append("<section id='claims'><h2>Claims ledger (PFLOPS)</h2>" + ("".join(claims) or "<p>No claims entered.</p>")
                + "</section>")  # fmt: skip
    d = doc["declared"]
    body.append(f"<section id='declared' class='declared-box'><h2>Declared by the operators {_tier('declared')}</h2>"
                f"<p>{html.escape(d['note'])}.</p>" + _table(
        ["site", "operator", "open access", "how to request", "networks", "planned"],
        [[html.escape("/".join(s["path"])), html.escape(s["operator"]), _pct((s["open_access"] or {}).get("share")),
          html.escape((s["open_access"] or {}).get("how_to_request") or "–"),
          html.escape(", ".join(n["name"] for n in s["networks"]) or "none"),
          html.escape("; ".join(f"{p['pflops']:g} PFLOPS {p['precision'] or '(precision not stated)'} by {p['date']}"
                                for p in s["planned"]) or "none")] for s in d["sites"]]) + "</section>")  # fmt: skip
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(_title(doc))}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}<script>{CHECK_SCRIPT}</script></body></html>\n")  # fmt: skip
