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
import hashlib
import math
from typing import Any

from scipy.stats import hypergeom

METHOD = ("monetary-unit sample without replacement from SHAKE-256(nonce, population digest); exact one-sided "
          "hypergeometric lower confidence bound on genuine units")  # fmt: skip
#: Most units in a population: scipy's hypergeometric tail costs ~1 ms at 10^8 and ~1.5 s at 5 x 10^11.
MAX_UNITS = 10**8
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
    ordered = sorted(devices)
    unit = unit_gflops(sum(t * 1e3 for _, t in ordered))
    units = [math.floor(t * 1e3 / unit) for _, t in ordered]
    h = hashlib.sha256(f"bench.disclosure.population.v1\0{unit}\n".encode())
    for (device, _), u in zip(ordered, units, strict=True):
        h.update(f"{device}\0{u}\n".encode())
    return {"devices": [d for d, _ in ordered], "units": units, "unit_gflops": unit, "total_units": sum(units),
            "digest": h.hexdigest()}  # fmt: skip


def draw(nonce: str, pop: dict[str, Any], size: int) -> list[int]:
    """`size` distinct unit indices in [0, N), in draw order: 8-byte words of SHAKE-256(tag, nonce, population digest),
    reduced by rejection (no modulo bias), repeats skipped."""
    n = pop["total_units"]
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= n:
        raise SamplingError(f"sample size must be between 1 and the {n} units of the population, got {size!r}")
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 256 or not nonce.isascii():
        raise SamplingError("the auditor's nonce should be an ASCII string of 16 to 256 characters")
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


def audit(nonce: str, devices: list[tuple[str, float]], proven: dict[str, float], size: int,
          confidence: float = DEFAULT_CONFIDENCE) -> dict[str, Any]:  # fmt: skip
    """The audit: population, sample, genuine units by the proofs, the lower bound on the genuine share of the
    reported capacity and the capacity (PFLOPS) it supports. `proven`: device id -> its proven TFLOPS."""
    pop = population(devices)
    reported = dict(devices)
    units = draw(nonce, pop, size)
    located = locate(pop, units)
    genuine = 0
    per_device: dict[str, dict[str, Any]] = {}
    for device, offset in located:
        bound = min(max(proven.get(device, 0.0), 0.0), reported[device])
        good_units = math.floor(bound * 1e3 / pop["unit_gflops"])
        ok = offset < good_units
        genuine += ok
        d = per_device.setdefault(device, {"device": device, "units_drawn": 0, "units_genuine": 0,
                                           "reported_tflops": reported[device], "proven_tflops": bound})  # fmt: skip
        d["units_drawn"] += 1
        d["units_genuine"] += ok
    g_low = lower_bound(pop["total_units"], size, genuine, confidence)
    share = g_low / pop["total_units"]
    return {
        "method": METHOD, "nonce": nonce, "confidence": confidence, "population_digest": pop["digest"],
        "unit_gflops": pop["unit_gflops"], "population_units": pop["total_units"], "population_devices": len(devices),
        "units_drawn": size, "units_genuine": genuine, "sample": sorted(per_device.values(), key=lambda d: d["device"]),
        "genuine_share_lower_bound": share,
        "supported_pflops": g_low * pop["unit_gflops"] / 1e6,
    }  # fmt: skip
