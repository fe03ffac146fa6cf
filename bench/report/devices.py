"""Per-device figures of one node report: a row per device x precision (its MAMF, MSMF, peak, tier and identities).

The one place a device's MAMF is chosen for fleet work (aggregation, metrics)."""

from __future__ import annotations

import hashlib
import math
import sys
from array import array
from typing import Any

import numpy as np

from bench import figures
from bench.model.reports import Measurement, NodeReport
from bench.report import verify as v

#: The fields of a device row, in order. tier/why: see verify.figure_tier (before policy and uniqueness); serial,
#: board, pci and samples are the identities a clone would share (see IDENTITIES).
COLUMNS = ("device", "precision", "kind", "model", "node", "host", "mamf_tflops", "mamf_source", "msmf_tflops",
           "peak_tflops", "memory_bytes", "measured_utc", "report", "tier", "why", "serial", "board", "pci",
           "samples")  # fmt: skip


#: A vector of timed samples identifies a measurement only with this many distinct values: a timer's quantization can
#: make a very steady device's samples all equal, and two such devices would then look like clones.
SAMPLES_IDENTITY_MIN_DISTINCT = 5


def _samples_key(samples_s: list[float]) -> str | None:
    """SHA-256 of the timed samples alone: two devices never produce the same varied vector, so a shared one is a
    clone. None for a vector too uniform to identify anything (SAMPLES_IDENTITY_MIN_DISTINCT)."""
    # the first values decide the usual case (a real node's finals hold 100,000 samples: a set of all of them, one
    # float object each, was most of its device rows); only a vector with few distinct values among them is counted
    # whole, the same count
    if len(set(samples_s[:_DISTINCT_FROM])) < SAMPLES_IDENTITY_MIN_DISTINCT and len(set(samples_s)) < (
        SAMPLES_IDENTITY_MIN_DISTINCT
    ):
        return None
    if _LITTLE:  # array('d') holds the same binary64 bytes numpy writes, without numpy's calls (a report has 8 rows)
        if type(samples_s) is not list and isinstance(samples_s, array) and samples_s.typecode == "d":
            return hashlib.sha256(samples_s).hexdigest()  # a Samples' own buffer, not a copy
        return hashlib.sha256(array("d", samples_s).tobytes()).hexdigest()
    return hashlib.sha256(np.asarray(samples_s, dtype="<f8").tobytes()).hexdigest()


_LITTLE = sys.byteorder == "little"
#: How many of a vector's first samples _samples_key counts distinct values in before counting them all.
_DISTINCT_FROM = 64


def _gpu_identity(gpu: dict[str, Any] | None, mig: dict[str, Any] | None,
                  host: dict[str, Any]) -> tuple[str | None, str | None, str | None]:  # fmt: skip
    """(NVML serial, board id, host + PCI bus id) of an inventory GPU; None for what it does not record (older reports,
    or 'N/A'/0 values NVML returns where a board has none). The MIG instances of one GPU share its ids, so theirs carry
    the instance's slot too: two slices are two devices, a slice cloned into two reports is one."""
    if not gpu:
        return None, None, None
    if mig is not None:
        slot = f"/mig{mig.get('index')}"
        return tuple(None if x is None else x + slot for x in _gpu_identity(gpu, None, host))  # type: ignore[return-value]
    serial = gpu.get("serial")
    serial = serial if isinstance(serial, str) and serial.strip() not in ("", "N/A", "0", "[N/A]") else None
    board = gpu.get("board_id")
    board = str(board) if board not in (None, "", 0, "0", "N/A") and not isinstance(board, bool) else None
    pci = gpu.get("pci_bus_id")
    pci = f"{host.get('fingerprint')}/{pci}" if isinstance(pci, str) and pci else None
    return serial, board, pci


def device_rows(report: NodeReport, digest: str, mamf_rule: str = figures.MAMF_RULE_STEADY) -> list[dict[str, Any]]:
    """One row per device x precision with its MAMF (bench.figures.mamf under `mamf_rule`: the search's, else the best
    fixed-shape median, a steady one under the default rule; mamf_source says which, and ', none steady' when none
    was) and MSMF.
    Only valid, native measurements count: invalid, skipped, failed and emulated ones are not capacity. A row's tier
    is the lowest of its measurements' (verify.figure_tier, as if the key were trusted and the report fresh: the
    auditor's policy is applied afterwards, see apply_policy)."""
    host = report.inventory.get("host", {})
    with v.indexed(report.inventory):
        return _rows(report, digest, mamf_rule, host)


def _rows(report: NodeReport, digest: str, mamf_rule: str, host: dict[str, Any]) -> list[dict[str, Any]]:
    def key(m: Measurement) -> tuple[str, str]:
        return m.device.get("uuid") or "?", m.spec.get("precision", "?")

    mamf = figures.mamf(report.measurements, key, rule=mamf_rule)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for m in report.measurements:
        if m.workload != "matmul" or m.status != "ok" or m.emulated or not m.summary:
            continue
        role = m.details.get("search", {}).get("role")
        k = key(m)
        row = rows.get(k)
        if row is None:  # a device's first measurement (a real node's search holds hundreds of each device)
            gpu, mig = v.inventory_gpu(report.inventory, k[0]) if m.device.get("kind") == "cuda" else (None, None)
            serial, board, pci = _gpu_identity(gpu, mig, host)
            row = rows[k] = {
                "device": k[0], "precision": k[1], "kind": m.device.get("kind"), "model": m.device.get("name"),
                "node": host.get("hostname"), "host": host.get("fingerprint"), "mamf_tflops": math.nan,
                "mamf_source": None, "msmf_tflops": math.nan, "peak_tflops": math.nan,
                "memory_bytes": (mig or gpu or {}).get("memory_bytes"),
                "measured_utc": report.end_utc or report.start_utc, "report": digest, "tier": v.BOUNDED, "why": None,
                "serial": serial, "board": board, "pci": pci, "samples": None,
            }  # fmt: skip
        tier, why = v.figure_tier(m, report.inventory, trusted_key=True, fresh=True)
        if tier == v.REPORTED and row["tier"] != v.REPORTED:
            row["tier"], row["why"] = tier, why
        elif row["why"] is None:
            row["why"] = why
        if k in mamf and mamf[k][0] is m:
            row["mamf_tflops"], row["mamf_source"] = m.summary["tflops_median"], mamf[k][1]
            row["samples"] = _samples_key(m.samples_s)
        elif role == "msmf":
            row["msmf_tflops"] = (m.details.get("msmf") or {}).get("tflops", math.nan)
        if math.isnan(row["peak_tflops"]):
            peak, _ = v.reference_peak(m, report.inventory)
            if peak is not None:
                row["peak_tflops"] = peak.tflops
    return [r for r in rows.values() if not math.isnan(r["mamf_tflops"])]
