"""The claims ledger: public claims ("788 EFLOPS", "100 EFLOPS by 2025", "30 PFLOPS bf16") entered as text with their
source and date, parsed strictly (a regular expression, never eval), and held against the disclosure's tiers.

A claim that names no precision is *ambiguous* and is shown against every precision. The gap to each tier is stated,
and the usual inflations are named where one of them would close the gap: sparse figures (2x the dense ones), a
cheaper precision (fp8 or int8 instead of bf16; fp4 at 2x fp8), vendor peak instead of measured, planned instead of
installed capacity.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from typing import Any

from bench.disclosure.kpis import CATEGORIES

UNITS = {"tflops": 1e-3, "pflops": 1.0, "eflops": 1e3, "zflops": 1e6}  # to PFLOPS
#: Names a claim may give a precision, to the disclosure's categories.
PRECISION_NAMES = {"fp64": "fp64", "float64": "fp64", "fp32": "fp32", "float32": "fp32", "tf32": "tf32",
                   "bf16": "bf16/fp16", "bfloat16": "bf16/fp16", "fp16": "bf16/fp16", "float16": "bf16/fp16",
                   "fp8": "fp8", "float8": "fp8", "float8_e4m3": "fp8", "int8": "int8", "fp4": "fp4"}  # fmt: skip
_CLAIM = re.compile(
    r"\s*(?P<amount>[0-9]{1,15}(?:\.[0-9]{1,15})?)\s*(?P<unit>[TtPpEeZz][Ff][Ll][Oo][Pp][Ss])"
    r"(?:\s+(?P<precision>[A-Za-z0-9_]{2,12}))?"
    r"(?:\s+by\s+(?P<by>[0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2})?)?))?\s*"
)
MAX_CLAIMS = 200


class ClaimError(ValueError):
    """A claim that cannot be read; one line naming it."""


def parse(text: str) -> dict[str, Any]:
    """'100 EFLOPS by 2025' -> {pflops: 100000.0, category: None (ambiguous), by: '2025-12-31'}."""
    if not isinstance(text, str) or len(text) > 200:
        raise ClaimError("a claim is a short text such as '788 EFLOPS' or '100 PFLOPS bf16 by 2025'")
    m = _CLAIM.fullmatch(text)
    if not m:
        raise ClaimError(f"{text!r} is not a claim; expected an amount, a unit (TFLOPS, PFLOPS, EFLOPS, ZFLOPS), "
                         "optionally a precision (fp64, fp32, tf32, bf16, fp16, fp8, int8, fp4) and 'by YYYY[-MM[-DD]]'")  # fmt: skip
    pflops = float(m["amount"]) * UNITS[m["unit"].lower()]
    if not (math.isfinite(pflops) and pflops > 0):
        raise ClaimError(f"{text!r}: a claim needs an amount above zero")
    category = None
    if m["precision"]:
        category = PRECISION_NAMES.get(m["precision"].lower())
        if category is None:
            raise ClaimError(
                f"{text!r}: unknown precision {m['precision']!r}; one of {', '.join(sorted(PRECISION_NAMES))}"
            )
    by = None
    if m["by"]:
        parts = m["by"].split("-")
        year, month = int(parts[0]), int(parts[1]) if len(parts) > 1 else 12
        try:
            if not 1 <= month <= 12:
                raise ValueError(month)
            if len(parts) == 3:
                by = dt.date(year, month, int(parts[2]))
            else:  # the last day of the year or month named
                by = dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)
        except ValueError:
            raise ClaimError(f"{text!r}: {m['by']} is not a date") from None
    return {"pflops": pflops, "category": category, "by": by.isoformat() if by else None}


def read_entries(text: str, where: str) -> list[dict[str, str]]:
    """[[claim]] tables of a TOML file: text (required), source and date (strings)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ClaimError(f"{where}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level: a few KB of brackets exhaust the stack
        raise ClaimError(f"{where}: not valid TOML: nested too deeply") from None
    if set(raw) - {"claim"} or not isinstance(raw.get("claim", []), list):
        raise ClaimError(f"{where}: expected only [[claim]] tables (text, source, date)")
    out = []
    for i, c in enumerate(raw.get("claim", [])[: MAX_CLAIMS + 1]):
        if i == MAX_CLAIMS:
            raise ClaimError(f"{where}: more than {MAX_CLAIMS} claims")
        if not isinstance(c, dict) or set(c) - {"text", "source", "date"} or not isinstance(c.get("text"), str):
            raise ClaimError(f"{where}: claim[{i}] needs text, and may have source and date (strings) only")
        if not all(isinstance(c.get(k, ""), str) and len(c.get(k, "")) <= 500 and c.get(k, "").isprintable()
                   for k in ("source", "date")):  # fmt: skip
            raise ClaimError(f"{where}: claim[{i}].source and .date should be one printable line of at most 500 "
                             "characters")  # fmt: skip
        parse(c["text"])
        out.append({"text": c["text"].strip(), "source": c.get("source", ""), "date": c.get("date", "")})
    return out


def _planned_by(declared: list[dict[str, Any]], by: str | None, category: str) -> float:
    """Declared planned PFLOPS due by `by` (all plans when None) in `category` (plans without a precision count in
    every category: the operator did not say)."""
    total = 0.0
    for site in declared:
        for p in site.get("planned", []):
            cat = PRECISION_NAMES.get(p["precision"] or "", None)
            if (by is None or p["date"] <= by) and (cat is None or cat == category):
                total += p["pflops"]
    return total


def _inflations(claimed: float, category: str, capacity: dict[str, dict[str, Any]], peak_pflops: dict[str, float],
                planned: float) -> list[dict[str, Any]]:  # fmt: skip
    """The usual inflations, each with the figure it would produce from what was measured (reported tier), and whether
    it reaches the claim where the honest figure does not."""
    measured = capacity.get(category, {}).get("reported_pflops", 0.0)
    fp8 = capacity.get("fp8", {}).get("reported_pflops", 0.0)
    int8 = capacity.get("int8", {}).get("reported_pflops", 0.0)
    peak = peak_pflops.get(category, 0.0)
    candidates = [
        ("sparse figures count 2x the dense ones", 2 * measured),
        ("vendor peak instead of measured", peak),
        ("vendor peak, sparse", 2 * peak),
        ("planned capacity counted as installed", measured + planned),
    ]
    if category in ("bf16/fp16", "tf32", "fp32"):
        candidates += [("fp8 figures instead of " + category, fp8), ("int8 figures instead of " + category, int8),
                       ("fp8 figures, sparse", 2 * fp8),
                       ("fp4 figures (2x fp8) instead of " + category, 2 * fp8)]  # fmt: skip
    return [{"inflation": name, "pflops": value, "explains": bool(measured < claimed <= value * (1 + 1e-9))}
            for name, value in candidates if value > 0]  # fmt: skip


#: Precisions whose figures are cheaper arithmetic than bf16/fp16: an ambiguous claim reached only there is the
#: inflation the ledger names, never a plain 'supported'.
CHEAPER = ("fp8", "int8", "fp4")


def ledger(entries: list[dict[str, str]], capacity_rows: list[dict[str, Any]], peak_pflops: dict[str, float],
           declared: list[dict[str, Any]],
           capacity_at: Any = None) -> list[dict[str, Any]]:  # fmt: skip
    """Each claim against each precision it could mean: the three tiers, the gaps, the inflations that would explain
    them, and declared planned capacity by its date. Supported only when the proven tier meets it. A claim with a 'by'
    date is held to `capacity_at(date)` (capacity rows from proofs issued and devices measured by then) when given:
    a promise due in 2025 is not kept by a proof from 2026."""
    now_capacity = {r["category"]: r for r in capacity_rows}
    out = []
    for e in entries:
        c = parse(e["text"])
        capacity = now_capacity
        if c["by"] and capacity_at is not None:
            capacity = {r["category"]: r for r in capacity_at(c["by"])}
        categories = [c["category"]] if c["category"] else [cat for cat, _ in CATEGORIES]
        comparisons = []
        for category in categories:
            row = capacity.get(category, {})
            tiers = {t: float(row.get(f"{t}_pflops", 0.0) or 0.0) for t in ("reported", "bounded", "proven")}
            planned = _planned_by(declared, c["by"], category)
            comparisons.append({
                "category": category,
                **{f"{t}_pflops": x for t, x in tiers.items()},
                **{f"gap_to_{t}_pflops": max(c["pflops"] - x, 0.0) for t, x in tiers.items()},
                "supported": tiers["proven"] >= c["pflops"],
                "declared_planned_pflops": planned,
                "inflations": _inflations(c["pflops"], category, capacity, peak_pflops, planned)
                if category in capacity else [],
            })  # fmt: skip
        supported = [x["category"] for x in comparisons if x["supported"]]
        if c["category"] is None and supported:  # ambiguous: stays so, and a figure reached only at cheaper arithmetic
            honest = [x for x in supported if x not in CHEAPER]  # is named as that inflation
            verdict = ("ambiguous: no precision named; supported (proven) at " + ", ".join(supported) if honest
                       else "ambiguous: no precision named; reached only at " + ", ".join(supported)
                       + " (cheaper arithmetic than bf16/fp16), unproven at bf16/fp16 and above")  # fmt: skip
        elif supported:
            verdict = "supported (proven) at " + ", ".join(supported)
        else:
            verdict = "unproven" + ("; ambiguous: no precision named" if c["category"] is None else "")
        if c["by"] and capacity is not now_capacity and not supported:
            late = [cat for cat in categories if now_capacity.get(cat, {}).get("proven_pflops", 0.0) >= c["pflops"]]
            verdict += (f" by {c['by']}" + (f"; proven later at {', '.join(late)} (the target was met late, or "
                                              "proven only after its date)" if late else ""))  # fmt: skip
        out.append({"text": e["text"], "source": e["source"], "date": e["date"], "claimed_pflops": c["pflops"],
                    "precision": c["category"], "ambiguous": c["category"] is None, "by": c["by"],
                    "comparisons": comparisons, "verdict": verdict})  # fmt: skip
    return out
