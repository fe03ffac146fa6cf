"""Claims ("100 PFLOPS bf16") parsed strictly and held against a capacity's three tiers."""

from __future__ import annotations

import math
import re
from typing import Any

from bench.report import verify as v

UNITS = {"tflops": 1.0, "pflops": 1e3, "eflops": 1e6}
ALIASES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "fp64": "float64", "fp8": "float8_e4m3",
           "tf32": "tf32", "int8": "int8"}  # fmt: skip


#: Precisions a claim may name: the aliases' targets and their full names.
KNOWN_PRECISIONS = frozenset(ALIASES.values()) | {"float64", "float32", "bfloat16", "float16"}


def parse_claim(text: str) -> tuple[float, str]:
    """'100 PFLOPS bf16' -> (100000.0 TFLOPS, 'bfloat16'): a finite amount above zero, in a precision bench knows;
    ValueError naming the valid units and precisions."""
    shown = repr(text if len(text) <= 60 else text[:57] + "...")
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s+([A-Za-z0-9_]+)\s*", text)
    if not match or match.group(2).lower() not in UNITS:
        raise ValueError(f"{shown} is not a claim; expected e.g. '100 PFLOPS bf16' (units: TFLOPS, PFLOPS, EFLOPS)")
    precision = ALIASES.get(match.group(3).lower(), match.group(3).lower())
    if precision not in KNOWN_PRECISIONS:
        raise ValueError(f"{shown}: unknown precision {match.group(3)!r}; one of {', '.join(sorted(ALIASES))} or "
                         f"{', '.join(sorted(set(KNOWN_PRECISIONS) - set(ALIASES)))}")  # fmt: skip
    value = float(match.group(1)) * UNITS[match.group(2).lower()]
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{shown}: a claim needs a finite amount above zero (a claim of nothing is always met)")
    return value, precision


def check_claim(capacity: dict[str, Any] | None, text: str, *, proven: dict[str, float] | None = None,
                claimable: bool = True, why_not: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A claim against the three tiers of a capacity (docs/proofs.md): reported (MAMF sums of verified
    node reports), bounded (those that also passed every physical, uniqueness and freshness check) and proven (lower
    bounds from verified challenges, per precision in TFLOPS, from `proven`). Supported only when the proven tier
    meets it, and only for a capacity recomputed under the auditor's own trust list (`claimable`)."""
    claimed, precision = parse_claim(text)
    total = next((t for t in (capacity or {}).get("totals", []) if t["precision"] == precision), None) or {}
    reported = float(total.get("reported_tflops", total.get("mamf_tflops", 0.0)) or 0.0)
    bounded = float(total.get("bounded_tflops") or 0.0)
    proven_tflops = float((proven or {}).get(precision, 0.0))
    peak = total.get("peak_tflops") or 0.0
    supported = claimable and proven_tflops >= claimed
    met = [t for t, x in ((v.PROVEN, proven_tflops), (v.BOUNDED, bounded), (v.REPORTED, reported)) if x >= claimed]
    if not claimable:
        verdict = f"claim unproven: {why_not or 'this capacity was not recomputed under the auditor policy'}"
    elif supported:
        verdict = "supported (proven)"
    else:
        verdict = "claim unproven" + (f" (met only by the {met[0]} tier, which proves nothing)" if met else "")
    return {
        "claim": text.strip(), "precision": precision, "claimed_tflops": claimed,
        "reported_tflops": reported, "bounded_tflops": bounded, "proven_tflops": proven_tflops,
        "measured_tflops": reported, "peak_tflops": peak, "supported": supported,
        "tier": v.PROVEN if supported else None, "verdict": verdict,
        "margin": proven_tflops / claimed - 1 if claimed else math.inf,
        "measured_share": min(reported / claimed, 1.0) if claimed else 1.0,
        "peak_only_share": max(min(peak, claimed) - reported, 0.0) / claimed if claimed else 0.0,
    }  # fmt: skip
