"""Audit by sampling: challenge a sample of devices drawn from the auditor's nonce, and bound the genuine share of the
reported capacity from the answers, so a fleet too large to challenge whole still gets a proven lower bound.

Method (monetary-unit sampling, as financial auditors sample ledgers): the reported capacity of the counted devices at
one precision is cut into units of `unit_gflops` (each device gets floor(MAMF / unit) units; the unit is the smallest
power of ten that keeps the population at or under MAX_UNITS). `size` units are drawn without replacement from a
SHAKE-256 stream keyed by the nonce and the digest of the population, so the sample is re-derivable by anyone and
cannot be predicted before the nonce exists, while the population is fixed before it (its digest is in the disclosure).
A unit is genuine when its offset within its device's range lies below that device's proven bound (the largest bound a
verified proof gives it, capped at its reported MAMF): a device proven at 60% of what it reported has 60% genuine
units. Weighting by capacity means a large device is sampled in proportion to what it adds to the total, and fakes
hidden in small devices can hide only small capacity; a device listed twice is counted once before sampling (the
device-once rule), so listing it many times buys nothing.

The number of genuine units X in the sample is hypergeometric(N units, G genuine, n drawn). The one-sided lower
confidence bound at level 1 - alpha is the smallest G for which P(X >= observed | G) > alpha (exact; scipy.stats).
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
import math
from typing import Any

from scipy.stats import hypergeom

METHOD = ("monetary-unit sample without replacement from SHAKE-256(nonce of the auditor's signed request, population "
          "digest); exact one-sided hypergeometric lower confidence bound on genuine units, by one proof, stated over "
          "the whole reported capacity (units no device can hold count as not genuine)")  # fmt: skip
#: Most units in a population: scipy's hypergeometric tail costs ~1 ms at 10^8 and ~1.5 s at 5 x 10^11.
MAX_UNITS = 10**8
#: Above any device bench knows by orders of magnitude: a row above it is refused, so sums stay finite.
MAX_DEVICE_TFLOPS = 1e7
DEFAULT_CONFIDENCE = 0.95


class SamplingError(ValueError):
    """A sample that cannot be drawn or bounded as asked; one line."""


def unit_gflops(total_gflops: float) -> int:
    unit = 1
    while total_gflops / unit > MAX_UNITS:
        unit *= 10
    return unit


def population(devices: list[tuple[str, float]]) -> dict[str, Any]:
    """[(device id, reported TFLOPS)] -> the unit population: devices sorted by id, their unit counts, its digest."""
    if len({d for d, _ in devices}) != len(devices):
        raise SamplingError("a device appears twice in the population (the device-once rule was not applied)")
    total = math.fsum(t for _, t in devices) * 1e3 if devices else 0.0
    if not all(isinstance(t, (int, float)) and math.isfinite(t) and 0 <= t <= MAX_DEVICE_TFLOPS for _, t in devices) \
            or not math.isfinite(total):  # fmt: skip
        raise SamplingError(f"every device's reported TFLOPS must be finite, between 0 and {MAX_DEVICE_TFLOPS:g}")
    ordered = sorted(devices)
    unit = unit_gflops(total)
    units = [math.floor(t * 1e3 / unit) for _, t in ordered]
    # one-to-one: canonical JSON of [unit, [[id, units], ...]] (a device id is any string a node report holds, so
    # separators alone would let two populations share a digest)
    body = json.dumps([unit, [[d, u] for (d, _), u in zip(ordered, units, strict=True)]], ensure_ascii=True,
                      separators=(",", ":"))  # fmt: skip
    h = hashlib.sha256(b"bench.disclosure.population.v2\0" + body.encode())
    return {"devices": [d for d, _ in ordered], "units": units, "unit_gflops": unit, "total_units": sum(units),
            "reported_gflops": total, "digest": h.hexdigest()}  # fmt: skip


def draw(nonce: str, pop: dict[str, Any], size: int) -> list[int]:
    """`size` distinct unit indices in [0, N), in draw order: 8-byte words of SHAKE-256(tag, nonce, population digest),
    reduced by rejection (no modulo bias), repeats skipped."""
    n = pop["total_units"]
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= n:
        raise SamplingError(f"sample size must be between 1 and the {n} units of the population, got {size!r}")
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 256 or not nonce.isascii() or not nonce.isprintable() \
            or "`" in nonce:  # fmt: skip
        raise SamplingError("the auditor's nonce should be printable ASCII (no backquote), 16 to 256 characters")
    shake = hashlib.shake_256(f"bench.disclosure.sample.v1\0{nonce}\0{pop['digest']}".encode())
    limit = (2**64 // n) * n
    chosen: list[int] = []
    seen: set[int] = set()
    length = 8 * (size * 2 + 16)
    offset = 0
    stream = shake.digest(length)
    while len(chosen) < size:
        if offset + 8 > len(stream):
            length *= 2
            stream = shake.digest(length)  # the same stream, longer: SHAKE's output is a prefix of a longer one
        word = int.from_bytes(stream[offset : offset + 8], "little")
        offset += 8
        if word >= limit:
            continue
        unit = word % n
        if unit not in seen:
            seen.add(unit)
            chosen.append(unit)
    return chosen


def locate(pop: dict[str, Any], units: list[int]) -> list[tuple[str, int]]:
    """Each unit index as (device id, offset of the unit within that device's units)."""
    starts, acc = [], 0
    for u in pop["units"]:
        starts.append(acc)
        acc += u
    out = []
    for unit in units:
        i = bisect.bisect_right(starts, unit) - 1
        while pop["units"][i] == 0:  # devices with no units own no index; bisect lands on the last of equal starts
            i -= 1
        out.append((pop["devices"][i], unit - starts[i]))
    return out


def sample_devices(nonce: str, pop: dict[str, Any], size: int) -> list[str]:
    """The distinct devices the drawn units fall in: the devices to challenge."""
    return sorted({d for d, _ in locate(pop, draw(nonce, pop, size))})


def lower_bound(total: int, drawn: int, genuine: int, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """The smallest number of genuine units G in a population of `total` for which seeing `genuine` or more genuine in
    `drawn` draws without replacement has probability above 1 - confidence: a one-sided lower confidence bound."""
    if not 0 < confidence < 1:
        raise SamplingError(f"confidence must be in (0, 1), got {confidence!r}")
    if not 0 <= genuine <= drawn <= total:
        raise SamplingError("need 0 <= genuine <= drawn <= total")
    alpha = 1 - confidence
    if genuine == 0:
        return 0
    lo, hi = genuine, total - (drawn - genuine)  # G >= genuine seen, and the fakes seen exist too
    while lo < hi:  # P(X >= genuine | G) rises with G: the first G where it exceeds alpha
        mid = (lo + hi) // 2
        if hypergeom.sf(genuine - 1, total, mid, drawn) > alpha:
            hi = mid
        else:
            lo = mid + 1
    return lo


def audit(nonce: str, devices: list[tuple[str, float]], proven: dict[str, float] | list[dict[str, float]], size: int,
          confidence: float = DEFAULT_CONFIDENCE) -> dict[str, Any]:  # fmt: skip
    """The audit: population, sample, genuine units by the proofs, the lower bound on the genuine share of the
    reported capacity and the capacity (PFLOPS) it supports. `proven`: device id -> its proven TFLOPS, from ONE proof
    (one challenge the sampled devices answered at once); given a list of such maps (one per proof), the one proof that
    makes most drawn units genuine is used, never bounds of different proofs together: one machine can answer many
    challenges, each as another device.

    The share is stated over the whole reported capacity: units the population cannot hold (each device's remainder
    below one unit, and devices smaller than a unit, which can never be drawn) count as not genuine."""
    pop = population(devices)
    reported = dict(devices)
    units = draw(nonce, pop, size)
    located = locate(pop, units)
    candidates = [proven] if isinstance(proven, dict) else list(proven) or [{}]

    def judged(bounds: dict[str, float]) -> list[tuple[str, bool, float]]:
        out = []
        for device, offset in located:
            bound = min(max(bounds.get(device, 0.0), 0.0), reported[device])
            out.append((device, offset < math.floor(bound * 1e3 / pop["unit_gflops"]), bound))
        return out

    results = [judged(c) for c in candidates]
    best = max(range(len(results)), key=lambda i: (sum(ok for _, ok, _ in results[i]), -i))
    genuine = 0
    per_device: dict[str, dict[str, Any]] = {}
    for device, ok, bound in results[best]:
        genuine += ok
        d = per_device.setdefault(device, {"device": device, "units_drawn": 0, "units_genuine": 0,
                                           "reported_tflops": reported[device], "proven_tflops": bound})  # fmt: skip
        d["units_drawn"] += 1
        d["units_genuine"] += ok
    g_low = lower_bound(pop["total_units"], size, genuine, confidence)
    supported_gflops = g_low * pop["unit_gflops"]
    share = supported_gflops / pop["reported_gflops"] if pop["reported_gflops"] else 0.0
    return {
        "method": METHOD, "nonce": nonce, "confidence": confidence, "population_digest": pop["digest"],
        "unit_gflops": pop["unit_gflops"], "population_units": pop["total_units"], "population_devices": len(devices),
        "units_drawn": size, "units_genuine": genuine, "sample": sorted(per_device.values(), key=lambda d: d["device"]),
        "genuine_share_lower_bound": min(share, 1.0), "proof_index": best,
        "supported_pflops": supported_gflops / 1e6,
    }  # fmt: skip


# --- the auditor's request: the nonce comes from the auditor, after the population is fixed --------------------------

REQUEST_KIND = "bench.audit-request"
REQUEST_FIELDS = ("nonce", "population_digest", "precision", "size", "confidence")


def request(key: Any, *, nonce: str, population_digest: str, precision: str, size: int,
            confidence: float = DEFAULT_CONFIDENCE, now: dt.datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """An audit request signed by the auditor's key: its nonce, bound to the digest of the population it samples
    (fixed by the published disclosure), the precision, size and confidence. The discloser cannot choose the nonce
    (or re-cut the population after seeing it): a disclosure's audit counts only with such a request."""
    from bench.model import sign

    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    data = {"kind": REQUEST_KIND, "schema_version": 1, "nonce": nonce, "population_digest": population_digest,
            "precision": precision, "size": size, "confidence": confidence,
            "issued_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    data["signature"] = sign.sign(data, key)
    return data


def check_request(data: Any, auditor_id: str | None) -> dict[str, Any]:
    """An audit request as read: of its kind, signed by the auditor's key (`auditor_id`); SamplingError otherwise."""
    from bench.model import sign

    if not isinstance(data, dict) or data.get("kind") != REQUEST_KIND or data.get("schema_version") != 1:
        raise SamplingError("the audit needs the auditor's signed audit request (bench disclose sample --request)")
    valid, why = sign.check(data)
    if not valid:
        raise SamplingError(f"audit request: {why}")
    if auditor_id is None or sign.signer(data) != auditor_id:
        raise SamplingError(f"audit request signed by key {sign.signer(data)}, not the auditor's key {auditor_id}: "
                            "the nonce must come from the auditor")  # fmt: skip
    types = {"nonce": str, "population_digest": str, "precision": str, "size": int, "confidence": float,
             "issued_utc": str}  # fmt: skip
    for k, t in types.items():
        x = data.get(k)
        if isinstance(x, bool) or not isinstance(x, t) and not (t is float and isinstance(x, int)):
            raise SamplingError(f"audit request: {k} should be a {t.__name__}")
    try:
        dt.datetime.strptime(data["issued_utc"], "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise SamplingError("audit request: issued_utc should be YYYY-MM-DDTHH:MM:SSZ") from None
    return data
