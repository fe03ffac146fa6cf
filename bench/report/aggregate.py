"""Fleet capacity from node reports: verify each, count every device once, group, find defective nodes, sign.

Pure data work over parsed reports (pandas); no measuring, no I/O beyond what the caller passes in. The capacity
report lists the digest and key id of every input so `verify_capacity` can recompute it from the same node reports.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import gc
import hashlib
import math
import multiprocessing
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.report import intake, sign
from bench.report import verify as v
from bench.report.model import NodeReport

CAPACITY_KIND = "bench.capacity-report"
#: 2: device rows carry a tier and identities; totals carry reported / bounded / proven figures.
CAPACITY_SCHEMA_VERSION = 2
DEFAULT_TOLERANCE = 0.10
#: The longest --max-age a rules file may hold (about 31 years): beyond it a duration is not a policy.
MAX_AGE_LIMIT_S = 1e9


class RulesError(ValueError):
    """Bad rules file; one line naming the key."""


@dataclass(frozen=True)
class Baseline:
    model: str  # substring of the device name, case-insensitive
    precision: str
    min_tflops: float


@dataclass(frozen=True)
class Rules:
    """Declarative thresholds (TOML): data only, never evaluated."""

    tolerance: float = DEFAULT_TOLERANCE
    baselines: tuple[Baseline, ...] = field(default_factory=tuple)
    max_age_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tolerance": self.tolerance,
            "max_age_s": self.max_age_s,
            "baselines": [vars(b) for b in self.baselines],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "rules") -> Rules:
        unknown = set(d) - {"tolerance", "baseline", "baselines", "max_age_s"}
        if unknown:
            raise RulesError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; valid: tolerance, baseline")
        tol = d.get("tolerance", DEFAULT_TOLERANCE)
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1:
            raise RulesError(f"{where}: tolerance must be a number in [0, 1), got {tol!r}")
        baselines = []
        listed = d.get("baseline", d.get("baselines", []))
        if not isinstance(listed, list):
            raise RulesError(f"{where}: baseline must be a list of [[baseline]] tables")
        for i, b in enumerate(listed):
            if not isinstance(b, dict) or set(b) != {"model", "precision", "min_tflops"}:
                raise RulesError(f"{where}: baseline[{i}] needs exactly model, precision and min_tflops")
            if not all(isinstance(b[k], str) for k in ("model", "precision")):
                raise RulesError(f"{where}: baseline[{i}].model and .precision must be strings")
            if not isinstance(b["min_tflops"], (int, float)) or isinstance(b["min_tflops"], bool) or not 0 <= b["min_tflops"] < 1e12:
                raise RulesError(f"{where}: baseline[{i}].min_tflops must be a non-negative number")
            baselines.append(Baseline(str(b["model"]), str(b["precision"]), float(b["min_tflops"])))
        max_age = d.get("max_age_s")
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, (int, float))
                                    or not 0 < max_age <= MAX_AGE_LIMIT_S):  # fmt: skip
            raise RulesError(f"{where}: max_age_s must be a number of seconds in (0, {MAX_AGE_LIMIT_S:g}], got {max_age!r}")
        return cls(float(tol), tuple(baselines), None if max_age is None else float(max_age))


def load_rules(text: str, where: str) -> Rules:
    try:
        return Rules.from_dict(tomllib.loads(text), where)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{where}: not valid TOML: {exc}") from None


# --- per-device figures -----------------------------------------------------------------------------------------------


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
    if len(set(samples_s)) < SAMPLES_IDENTITY_MIN_DISTINCT:
        return None
    return hashlib.sha256(np.asarray(samples_s, dtype="<f8").tobytes()).hexdigest()


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


def device_rows(report: NodeReport, digest: str) -> list[dict[str, Any]]:
    """One row per device x precision with its MAMF (search MAMF, else the best fixed-shape median) and MSMF.
    Only valid, native measurements count: invalid, skipped, failed and emulated ones are not capacity. A row's tier
    is the lowest of its measurements' (verify.figure_tier, as if the key were trusted and the report fresh: the
    auditor's policy is applied afterwards, see apply_policy)."""
    host = report.inventory.get("host", {})

    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for m in report.measurements:
        if m.workload != "matmul" or m.status != "ok" or m.emulated or not m.summary:
            continue
        role = m.details.get("search", {}).get("role")
        key = (m.device.get("uuid") or "?", m.spec.get("precision", "?"))
        gpu, mig = v.inventory_gpu(report.inventory, key[0]) if m.device.get("kind") == "cuda" else (None, None)
        serial, board, pci = _gpu_identity(gpu, mig, host)
        row = rows.setdefault(key, {
            "device": key[0], "precision": key[1], "kind": m.device.get("kind"), "model": m.device.get("name"),
            "node": host.get("hostname"), "host": host.get("fingerprint"), "mamf_tflops": math.nan,
            "mamf_source": None, "msmf_tflops": math.nan, "peak_tflops": math.nan,
            "memory_bytes": (mig or gpu or {}).get("memory_bytes"),
            "measured_utc": report.end_utc or report.start_utc, "report": digest, "tier": v.BOUNDED, "why": None,
            "serial": serial, "board": board, "pci": pci, "samples": None,
        })  # fmt: skip
        tier, why = v.figure_tier(m, report.inventory, trusted_key=True, fresh=True)
        if tier == v.REPORTED and row["tier"] != v.REPORTED:
            row["tier"], row["why"] = tier, why
        elif row["why"] is None:
            row["why"] = why
        median = m.summary["tflops_median"]
        if role == "final" and m.details["search"].get("mamf"):
            row["mamf_tflops"], row["mamf_source"], row["samples"] = median, "search", _samples_key(m.samples_s)
        elif role is None and row["mamf_source"] != "search" and not median <= row["mamf_tflops"]:
            row["mamf_tflops"], row["mamf_source"], row["samples"] = median, "fixed shape", _samples_key(m.samples_s)
        elif role == "msmf":
            row["msmf_tflops"] = (m.details.get("msmf") or {}).get("tflops", math.nan)
        if math.isnan(row["peak_tflops"]):
            peak, _ = v.reference_peak(m, report.inventory)
            if peak is not None:
                row["peak_tflops"] = peak.tflops
    return [r for r in rows.values() if not math.isnan(r["mamf_tflops"])]


# --- aggregation ------------------------------------------------------------------------------------------------------


#: From this many inputs on, node reports are verified in parallel processes.
PARALLEL_FROM = 256

Examined = list[tuple[dict[str, Any], list[tuple[Any, ...]]]]


def _load(data: Any) -> Any:
    """A report given as a path is read where it is examined (in a worker), so the parent never holds the fleet. Read
    through bench.report.intake: regular files only, size-capped, strict JSON."""
    if not isinstance(data, Path):
        return data
    try:
        return intake.read_json(data).data
    except intake.InputError as exc:
        return exc


def _examine(item: tuple[str, Any], *, now: dt.datetime) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """Verify one input, leaving the auditor's policy (trust list, age) to apply_policy: its entry for the capacity
    report's input list, and its device rows if it counts. One bad input is one rejected entry, never the end of the
    run: an unexpected failure while checking it is recorded as its reason."""
    # names are signed into the capacity report: a path that is not UTF-8 is written backslash-escaped
    entry: dict[str, Any] = {"name": intake.safe_name(str(item[0])), "digest": None, "key_id": None, "node": None,
                             "latest_utc": None}  # fmt: skip
    try:
        return _examine_one(item, entry, now)
    except Exception as exc:  # noqa: BLE001 - a hostile file must cost one entry, not the run
        why = intake.safe_name(f"unchecked: {type(exc).__name__} while checking it: {exc}")
        return {**entry, "status": "rejected", "reasons": [why]}, []


def _examine_one(item: tuple[str, Any], entry: dict[str, Any], now: dt.datetime) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    data = _load(item[1])
    if isinstance(data, Exception):
        return {**entry, "status": "rejected", "reasons": [intake.safe_name(f"unreadable: {data}")]}, []
    if not isinstance(data, dict):
        return {**entry, "status": "rejected", "reasons": ["schema: not a JSON object"]}, []
    findings, entry["digest"], report = v.examine(data, now=now, policy=False)
    entry["key_id"] = sign.signer(data)
    bad = v.errors(findings)
    if bad or report is None:
        return {**entry, "status": "rejected", "reasons": [f"{f.code}: {f.message}" for f in bad]}, []
    entry["node"] = report.inventory.get("host", {}).get("hostname")
    entry["latest_utc"] = report.end_utc or report.start_utc
    # rows travel back from the worker as tuples (in COLUMNS order): a third of the pickling of dicts
    return {**entry, "status": "counted", "reasons": []}, [tuple(r[c] for c in COLUMNS) for r in device_rows(report, entry["digest"])]


def apply_policy(examined: Examined, *, trusted: set[str] | None, max_age_s: float | None, now: dt.datetime) -> Examined:
    """The auditor's policy over examined inputs (cheap: no re-verification): inputs signed by keys outside the trust
    list, too old or from the future are rejected; without a trust list or a maximum age no figure is more than
    'reported'."""
    max_age = dt.timedelta(seconds=max_age_s) if max_age_s else None
    out: Examined = []
    tier_col, why_col = COLUMNS.index("tier"), COLUMNS.index("why")
    for entry, rows in examined:
        entry = {**entry, "reasons": list(entry["reasons"])}
        if entry["status"] != "counted":
            out.append((entry, []))
            continue
        bad = v.errors(v.policy_findings(entry["key_id"], v.parse_utc(entry["latest_utc"]), trusted=trusted,
                                         max_age=max_age, now=now))  # fmt: skip
        if bad:
            out.append(({**entry, "status": "rejected", "reasons": [f"{f.code}: {f.message}" for f in bad]}, []))
            continue
        why = ("no trust list (--trusted-keys): who signed is unchecked" if trusted is None
               else "freshness unchecked (no --max-age)" if max_age is None else None)  # fmt: skip
        if why:
            rows = [tuple(v.REPORTED if i == tier_col else why if i == why_col else x for i, x in enumerate(r)) for r in rows]
        out.append((entry, rows))
    return out


_SHARED: list[Any] = []


def _call_shared(fn: Any, index: int) -> Any:
    return fn(_SHARED[index])


def _map_parallel(fn: Any, items: list[Any]) -> list[Any]:
    """fn over items on every core. Verification is CPU-bound pure Python (canonical JSON). Where processes fork, the
    workers inherit `items` and receive only indices, instead of every report being pickled across."""
    workers = os.cpu_count() or 1
    if workers < 2:
        return [fn(item) for item in items]
    chunk = max(1, len(items) // (workers * 8))
    if "fork" in multiprocessing.get_all_start_methods():
        _SHARED[:] = items
        # Forked workers share the parent's objects copy-on-write; the collector would touch (copy) and traverse every
        # inherited report on each full collection. Frozen objects are left alone: about 30% less CPU on a large fleet.
        gc.freeze()
        try:
            ctx = multiprocessing.get_context("fork")
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                return list(pool.map(functools.partial(_call_shared, fn), range(len(items)), chunksize=chunk))
        finally:
            gc.unfreeze()
            _SHARED.clear()
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        return list(pool.map(fn, items, chunksize=chunk))


@dataclass(frozen=True)
class _SignatureCheck:
    """A task for the verification pool: check this document's signature (see verify_capacity)."""

    data: dict[str, Any]


def _task(item: Any, **kw: Any) -> Any:
    return sign.check(item.data) if isinstance(item, _SignatureCheck) else _examine(item, **kw)


def examine_all(inputs: list[tuple[str, Any]], *, now: dt.datetime, check_signature_of: dict[str, Any] | None = None
                ) -> tuple[Examined, tuple[bool, str] | None]:  # fmt: skip
    """Every input verified (in parallel from PARALLEL_FROM inputs on), before any trust or age policy (apply_policy):
    (input-list entry, device rows) each. An input's data is its parsed JSON or a Path to read it from. With
    check_signature_of, that document's signature is checked by the same pool, alongside (a capacity report's
    canonical bytes take seconds on a large fleet)."""
    task = functools.partial(_task, now=now)
    items: list[Any] = ([_SignatureCheck(check_signature_of)] if check_signature_of is not None else []) + list(inputs)
    done = _map_parallel(task, items) if len(inputs) >= PARALLEL_FROM else [task(item) for item in items]
    if check_signature_of is not None:
        return done[1:], done[0]
    return done, None


def aggregate(
    inputs: list[tuple[str, Any]],
    *,
    rules: Rules | None = None,
    trusted: set[str] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The (unsigned) capacity report for `inputs` = [(name, parsed node report JSON or its Path), ...]."""
    rules = rules or Rules()
    now = now or dt.datetime.now(dt.UTC)
    examined, _ = examine_all(inputs, now=now)
    examined = apply_policy(examined, trusted=trusted, max_age_s=rules.max_age_s, now=now)
    return build(examined, rules=rules, trusted=trusted, now=now)


#: What identifies a physical device, and whether the identity is per precision (one device measured at several
#: precisions is several rows) or global (a vector of timings belongs to one measurement). NVML's board id is shared
#: by the GPUs of one multi-GPU board, so it is compared across hosts only (a board lives in one host).
IDENTITIES = (("device", "UUID", True), ("serial", "NVML serial", True), ("board", "board id", True),
              ("pci", "host and PCI bus id", True), ("samples", "timed samples", False))  # fmt: skip


def _unique(df: pd.DataFrame) -> tuple[list[Any], list[dict[str, Any]]]:
    """Rows (index labels, in df's order) that count, and the duplicate groups: rows sharing any identity (IDENTITIES)
    are one device, counted once from the first row (df is sorted newest first)."""
    order = list(df.index)
    position = {i: p for p, i in enumerate(order)}
    parent = {i: i for i in order}

    def find(i: Any) -> Any:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    edges: list[tuple[Any, str]] = []
    for column, label, per_precision in IDENTITIES:
        first: dict[Any, tuple[Any, Any]] = {}
        for i, value, precision, host in zip(order, df[column], df["precision"], df["host"], strict=True):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            key = (value, precision) if per_precision else value
            if key not in first:
                first[key] = (i, host)
                continue
            j, other_host = first[key]
            if column == "board" and host == other_host:
                continue
            a, b = find(i), find(j)
            if a != b:
                parent[max(a, b, key=position.__getitem__)] = min(a, b, key=position.__getitem__)
            edges.append((i, label))
    groups: dict[Any, list[Any]] = {}
    for i in order:
        groups.setdefault(find(i), []).append(i)
    labels: dict[Any, set[str]] = {}
    for i, label in edges:
        labels.setdefault(find(i), set()).add(label)
    keep, duplicates = [], []
    for root, members in groups.items():
        keep.append(members[0])
        if len(members) > 1:
            duplicates.append({"device": df.at[members[0], "device"], "precision": df.at[members[0], "precision"],
                               "kept": df.at[members[0], "report"],
                               "dropped": sorted({df.at[m, "report"] for m in members[1:]}),
                               "dropped_devices": sorted({df.at[m, "device"] for m in members[1:]}),
                               "shared": sorted(labels.get(root, set())), "kept_index": members[0]})  # fmt: skip
    duplicates.sort(key=lambda d: (d["device"], d["precision"]))
    return keep, duplicates


def build(examined: Examined, *, rules: Rules, trusted: set[str] | None, now: dt.datetime) -> dict[str, Any]:
    """The capacity report from examined inputs: dedupe, groups, totals, defective devices."""
    listed = [entry for entry, _ in examined]
    rows = [row for _, device_list in examined for row in device_list]

    df = pd.DataFrame(rows, columns=COLUMNS)
    df = df.sort_values(["measured_utc", "report"], ascending=[False, True], kind="stable")
    keep, duplicates = _unique(df)
    counted = df.loc[keep].copy()
    # a device whose identity another device shares (a clone) is counted once, and no more than 'reported'
    tier_col, why_col = COLUMNS.index("tier"), COLUMNS.index("why")
    clone_why = "shares an identity with another device (a clone?)"
    for idx in {d["kept_index"] for d in duplicates if set(d["dropped_devices"]) - {d["device"]}}:
        counted.at[idx, "tier"], counted.at[idx, "why"] = v.REPORTED, clone_why
        rows[idx] = tuple(v.REPORTED if c == tier_col else clone_why if c == why_col else x for c, x in enumerate(rows[idx]))
    for d in duplicates:
        del d["kept_index"]
    counted = counted.sort_values(["precision", "model", "node", "device"], kind="stable")
    for d in duplicates:  # the reports whose devices were counted elsewhere say so
        for item in listed:
            if item["digest"] in d["dropped"]:
                item["reasons"].append(f"duplicate: {d['device']} {d['precision']} counted from {d['kept'][:12]} "
                                       f"(same {', '.join(d['shared'])})")  # fmt: skip

    groups, defective = [], []
    for (model, precision), g in counted.groupby(["model", "precision"], sort=True):
        mamf = g["mamf_tflops"]
        with_peak = g.dropna(subset=["peak_tflops"])
        median = float(mamf.median())
        groups.append({
            "model": model, "precision": precision, "kind": g["kind"].iloc[0],
            "devices": len(g), "nodes": int(g["host"].nunique()),
            "mamf_sum_tflops": float(mamf.sum()),
            "msmf_sum_tflops": float(g["msmf_tflops"].sum(min_count=1)) if g["msmf_tflops"].notna().any() else None,
            "msmf_devices": int(g["msmf_tflops"].notna().sum()),
            "peak_sum_tflops": float(with_peak["peak_tflops"].sum()) if len(with_peak) else None,
            "efficiency": float(with_peak["mamf_tflops"].sum() / with_peak["peak_tflops"].sum()) if len(with_peak) else None,
            "mamf_p5_tflops": float(mamf.quantile(0.05)), "mamf_median_tflops": median,
            "mamf_p95_tflops": float(mamf.quantile(0.95)),
        })  # fmt: skip
        floor = median * (1 - rules.tolerance)
        reasons: dict[Any, list[str]] = {}
        if len(g) > 1:
            for idx, value in g.loc[g["mamf_tflops"] < floor, "mamf_tflops"].items():
                reasons.setdefault(idx, []).append(
                    f"MAMF {value:.4g} TFLOPS is {1 - value / median:.1%} below the group median {median:.4g} "
                    f"(tolerance {rules.tolerance:.0%})"
                )
        for b in rules.baselines:
            if b.precision == precision and b.model.lower() in str(model).lower():
                for idx, value in g.loc[g["mamf_tflops"] < b.min_tflops, "mamf_tflops"].items():
                    reasons.setdefault(idx, []).append(f"MAMF {value:.4g} TFLOPS is below the baseline {b.min_tflops:g} for {b.model}")
        for idx in sorted(reasons, key=lambda i: (g.at[i, "node"], g.at[i, "device"])):
            value = float(g.at[idx, "mamf_tflops"])
            defective.append({"node": g.at[idx, "node"], "device": g.at[idx, "device"], "model": model,
                              "precision": precision, "metric": "mamf_tflops", "value": value, "group_median": median,
                              "gap": 1 - value / median, "reasons": reasons[idx]})  # fmt: skip

    totals = []
    for precision, g in counted.groupby("precision", sort=True):
        peak = g["peak_tflops"].dropna()
        bounded = g[g["tier"] == v.BOUNDED]
        totals.append({
            "reported_tflops": float(g["mamf_tflops"].sum()), "bounded_tflops": float(bounded["mamf_tflops"].sum()),
            "bounded_devices": len(bounded), "proven_tflops": None,
            "precision": precision, "devices": len(g), "nodes": int(g["host"].nunique()),
            "mamf_tflops": float(g["mamf_tflops"].sum()), "mamf_pflops": float(g["mamf_tflops"].sum()) / 1e3,
            "mamf_eflops": float(g["mamf_tflops"].sum()) / 1e6,
            "msmf_tflops": float(g["msmf_tflops"].sum(min_count=1)) if g["msmf_tflops"].notna().any() else None,
            "peak_tflops": float(peak.sum()) if len(peak) else None,
            "devices_without_peak": int(g["peak_tflops"].isna().sum()),
        })  # fmt: skip
    gpus = counted[counted["kind"] == "cuda"].drop_duplicates("device")
    # the rows as built (pandas would turn ints with gaps into floats and costs seconds on a large fleet); NaN -> null
    devices = [{k: (None if isinstance(x, float) and math.isnan(x) else x) for k, x in zip(COLUMNS, rows[i], strict=True)}
               for i in counted.index]  # fmt: skip
    return {
        "kind": CAPACITY_KIND,
        "schema_version": CAPACITY_SCHEMA_VERSION,
        "created_utc": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "rules": rules.to_dict(),
        "trusted_key_ids": sorted(trusted) if trusted is not None else None,
        "inputs": listed,
        "devices": devices,
        "groups": groups,
        "totals": totals,
        "accelerator_memory_bytes": int(gpus["memory_bytes"].fillna(0).sum()),
        "duplicates": duplicates,
        "defective": defective,
    }


# --- claims -----------------------------------------------------------------------------------------------------------

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
    """A claim against the three tiers of a capacity (README, "What bench proves"): reported (MAMF sums of verified
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


# --- verifying a capacity report -------------------------------------------------------------------------------------

RECOMPUTED = ("devices", "groups", "totals", "accelerator_memory_bytes", "duplicates", "defective")


def _same(a: Any, b: Any) -> bool:
    if a == b:  # the usual case, compared in C; the walk below only tolerates last-bit float differences
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9)
    return a == b


def verify_capacity(
    capacity: Any, node_reports: dict[str, Any] | list[tuple[str, Any]] | None = None, trusted: set[str] | None = None,
    *, max_age: dt.timedelta | None = None, now: dt.datetime | None = None,
) -> list[v.Finding]:  # fmt: skip
    """Findings of audit_capacity."""
    return audit_capacity(capacity, node_reports, trusted, max_age=max_age, now=now)[0]


def audit_capacity(
    capacity: Any, node_reports: dict[str, Any] | list[tuple[str, Any]] | None = None, trusted: set[str] | None = None,
    *, max_age: dt.timedelta | None = None, now: dt.datetime | None = None,
) -> tuple[list[v.Finding], dict[str, Any] | None]:  # fmt: skip
    """Check a capacity report: its signature; given node reports ({digest: data}, or [(name, data or Path)] of which
    those it lists are found by digest), that it recomputes from them under its own trust list, age and time (nothing
    was changed after aggregation); and that every input it counted also passes the auditor's own trust list and
    --max-age now. Returns the findings and the auditor's view: the capacity rebuilt under the auditor's policy (what a
    claim is checked against), or None without node reports."""
    now = now or dt.datetime.now(dt.UTC)
    if not isinstance(capacity, dict) or capacity.get("kind") != CAPACITY_KIND:
        return [v.Finding(v.ERROR, "schema", "not a bench capacity report")], None
    version = capacity.get("schema_version")
    if isinstance(version, bool) or version != CAPACITY_SCHEMA_VERSION:
        return [v.Finding(v.ERROR, "schema", f"unsupported capacity schema_version {version!r}; this bench reads "
                          f"{CAPACITY_SCHEMA_VERSION} (re-aggregate the node reports)")], None  # fmt: skip
    out = []
    kid = sign.signer(capacity)
    if kid and trusted is not None and kid not in trusted:
        # recomputed from the node reports, its content does not rest on who aggregated it; otherwise it does
        severity = v.ERROR if node_reports is None else v.WARNING
        out.append(v.Finding(severity, "untrusted-key", f"aggregated and signed by key {kid}, not in the trust list"))
    if node_reports is None:
        valid, why = sign.check(capacity)
        if not valid:
            out.insert(0, v.Finding(v.ERROR, "signature", why))
        out.append(v.Finding(v.WARNING, "not-recomputed", "no --reports given: the figures were not recomputed, so "
                             "they support no claim"))  # fmt: skip
        return out, None
    given = list(node_reports.items()) if isinstance(node_reports, dict) else list(node_reports)
    try:
        rules = Rules.from_dict(capacity.get("rules") if isinstance(capacity.get("rules"), dict) else {})
        created = v.parse_utc(capacity["created_utc"])
        own_trusted = capacity.get("trusted_key_ids")
        if own_trusted is not None and not (isinstance(own_trusted, list) and all(isinstance(k, str) for k in own_trusted)):
            raise TypeError("trusted_key_ids should be a list of key ids or null")
        inputs = capacity.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise TypeError("inputs should be a list of objects")
        if not all(isinstance(i.get("digest"), (str, type(None))) and isinstance(i.get("status"), str) for i in inputs):
            raise TypeError("each input needs a digest (a string or null) and a status")
    except (RulesError, KeyError, ValueError, TypeError) as exc:
        valid, why = sign.check(capacity)
        return [*([v.Finding(v.ERROR, "signature", why)] if not valid else []), *out,
                v.Finding(v.ERROR, "schema", f"cannot recompute: {exc}")], None  # fmt: skip
    own_trusted_ids = set(own_trusted) if own_trusted is not None else None
    # every given report is examined once (in parallel), and those the capacity report lists are selected by digest
    all_examined, signature = examine_all(given, now=created, check_signature_of=capacity)
    if signature is not None and not signature[0]:
        out.insert(0, v.Finding(v.ERROR, "signature", signature[1]))
    by_digest = {}
    for entry, device_list in all_examined:
        if entry["digest"] is not None:
            by_digest.setdefault(entry["digest"], (entry, device_list))
    examined: Examined = []
    for item in inputs:
        found = by_digest.get(item.get("digest"))
        if found is None:
            if item.get("status") == "counted":
                out.append(v.Finding(v.ERROR, "missing-input", f"counted node report {item.get('digest')} "
                                     f"({item.get('name')}) is not among the reports given"))  # fmt: skip
            continue
        name = intake.safe_name(str(item.get("name")))
        examined.append(({**found[0], "name": name, "reasons": list(found[0]["reasons"])}, found[1]))
    # 1. integrity: the capacity report as its aggregator built it (its trust list, its max age, its time)
    recomputed = build(apply_policy(examined, trusted=own_trusted_ids, max_age_s=rules.max_age_s, now=created),
                       rules=rules, trusted=own_trusted_ids, now=created)  # fmt: skip
    wrong = [k for k in RECOMPUTED if not _same(capacity.get(k), recomputed.get(k))]
    if wrong:
        out.append(v.Finding(v.ERROR, "capacity-mismatch", f"{', '.join(wrong)} differ from the recomputation from the node reports"))
    counted = {i.get("digest") for i in inputs if i.get("status") == "counted"}
    recounted = {i["digest"] for i in recomputed["inputs"] if i["status"] == "counted"}
    if counted != recounted and not wrong:
        out.append(v.Finding(v.ERROR, "capacity-mismatch", "the set of counted node reports differs on recomputation"))
    # 2. the auditor's policy, now: every counted input must pass it; the view under it is what claims are held to
    audited = apply_policy(examined, trusted=trusted, max_age_s=max_age.total_seconds() if max_age else None, now=now)
    for entry, _ in audited:
        if entry["digest"] in counted and entry["status"] != "counted":
            for reason in entry["reasons"]:
                code = reason.split(":", 1)[0]
                out.append(v.Finding(v.ERROR, code, f"counted input {entry['name']}: {reason}"))
    if trusted is None:
        out.append(v.Finding(v.WARNING, "no-trust-list", "no --trusted-keys: who signed the node reports is unchecked, "
                             "so this capacity supports no claim"))  # fmt: skip
    view = build(audited, rules=rules, trusted=trusted, now=now)
    return out, view
