"""Fleet capacity from node reports: count every device once, group, find defective devices, total by tier; and
verify a capacity report by recomputing it from the node reports it lists.

Pure data work over examined inputs (pandas); node reports given as paths are read by the verification workers
(bench.report.pool). The capacity report lists the digest and key id of every input so `audit_capacity` can recompute
it from the same node reports.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd

from bench.model import intake, sign
from bench.model.reports import (
    CAPACITY_KIND,
    CAPACITY_SCHEMA_VERSION,
    CapacityReport,
    ReportError,
    exact_count,
    read_count,
)
from bench.report import verify as v
from bench.report.devices import COLUMNS
from bench.report.pool import Examined, apply_policy, examine_all
from bench.report.rules import Rules, RulesError


def aggregate(
    inputs: list[tuple[str, Any]],
    *,
    rules: Rules | None = None,
    trusted: set[str] | None = None,
    now: dt.datetime | None = None,
    jobs: int | None = None,
) -> dict[str, Any]:
    """The (unsigned) capacity report for `inputs` = [(name, parsed node report JSON or its Path), ...], verified on
    `jobs` processes (default: every core; see examine_all)."""
    rules = rules or Rules()
    now = now or dt.datetime.now(dt.UTC)
    examined, _ = examine_all(inputs, now=now, jobs=jobs, mamf_rule=rules.mamf_rule)
    examined = apply_policy(examined, trusted=trusted, max_age_s=rules.max_age_s, now=now)
    return build(examined, rules=rules, trusted=trusted, now=now)


#: What identifies a physical device, and whether the identity is per precision (one device measured at several
#: precisions is several rows) or global (a vector of timings belongs to one measurement). NVML's board id is shared
#: by the GPUs of one multi-GPU board, so it is compared across hosts only (a board lives in one host).
IDENTITIES = (("device", "UUID", True), ("serial", "NVML serial", True), ("board", "board id", True),
              ("pci", "host and PCI bus id", True), ("samples", "timed samples", False))  # fmt: skip


def _count(x: Any) -> int:
    """A device's byte count from a DataFrame cell: a column with gaps holds floats (exact: each value came from a
    signed document, so it is below 2^53) and NaN for a gap, which counts 0."""
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x <= 0:
        return 0
    return int(x)


def memory_total(values: pd.Series) -> int:
    """The sum of a column of device byte counts, each read as _count reads it, as a Python integer (exact however
    large). An integer or float column is summed from its positive values at once (a country holds a million rows);
    anything else cell by cell."""
    kind = values.dtype.kind if isinstance(values.dtype, np.dtype) else "O"
    if kind in "iu":
        a = values.to_numpy()
        return sum(a[a > 0].tolist())
    if kind == "f":
        a = values.to_numpy()
        return sum(int(x) for x in a[np.isfinite(a) & (a > 0)].tolist())
    return sum(_count(x) for x in values.tolist())


def unique_rows(df: pd.DataFrame) -> tuple[list[Any], list[dict[str, Any]]]:
    """Rows (index labels, in df's order) that count, and the duplicate groups: rows sharing any identity (IDENTITIES)
    are one device, counted once from the first row (df is sorted newest first). See unique_positions."""
    keep, duplicates = unique_positions(df)
    return df.index[keep].tolist(), duplicates


def _maybe_shared(df: pd.DataFrame, values: list[Any], present: np.ndarray, column: str, per_precision: bool,
                  precision_codes: list[np.ndarray]) -> np.ndarray:  # fmt: skip
    """Rows whose identity (the value, with its precision where per_precision) another row may share: every present
    row that df.duplicated(keep=False) marks, and perhaps a few more. Found by Python's hash of each present value
    (equal values hash alike), with the precision's code, duplicated among integers: pandas hashing a million strings
    per identity took half a second of a country's merge, in one process. A row marked here that shares nothing
    costs the caller's loop one dictionary entry and changes no group. Values that cannot be hashed take pandas'
    own duplicated, which refuses or decides them as before."""
    at = np.flatnonzero(present)
    try:
        hashes = np.fromiter(map(hash, values if len(at) == len(values) else [values[i] for i in at.tolist()]),
                             dtype=np.int64, count=len(at))  # fmt: skip
    except TypeError:
        return df.duplicated([column, "precision"] if per_precision else [column], keep=False).to_numpy() & present
    if per_precision:
        if not precision_codes:
            precision_codes.append(pd.factorize(df["precision"])[0].astype(np.int64))
        hashes = hashes * np.int64(1_000_003) + precision_codes[0][at]  # wraps around: equal pairs stay equal
    shared = np.zeros(len(values), dtype=bool)
    shared[at[pd.Index(hashes).duplicated(keep=False)]] = True
    return shared


def unique_positions(df: pd.DataFrame) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """unique_rows with the rows that count as positions (df.take(positions): no lookup of a million labels).

    Rows are grouped by position (a union-find whose root is a group's first row); only rows whose identity another
    row shares can join a group, and pandas finds them (hashing in C), so the Python loops walk those alone: a
    country's million rows usually hold a handful."""
    parent: dict[int, int] = {}  # non-root positions only: a row absent is its own group

    def find(p: int) -> int:
        while parent.get(p, p) != p:
            up = parent[p]
            parent[p] = parent.get(up, up)
            p = parent[p]
        return p

    edges: list[tuple[int, str]] = []
    precisions, hosts = df["precision"].tolist(), df["host"].tolist()  # lists iterate several times faster than Series
    precision_codes: list[np.ndarray] = []  # factorized once, by the first identity that needs them
    for column, label, per_precision in IDENTITIES:
        first: dict[Any, tuple[int, Any]] = {}
        # pandas holds missing values equal to each other: they identify nothing, so they are left out here (a fleet
        # without NVML serials would otherwise walk every row below only to skip it)
        present = df[column].notna().to_numpy()
        if not present.any():  # a fleet without NVML serials or board ids: nothing to hash
            continue
        values = df[column].tolist()
        shared = _maybe_shared(df, values, present, column, per_precision, precision_codes)
        for n in np.flatnonzero(shared).tolist():
            value, precision, host = values[n], precisions[n], hosts[n]
            key = (value, precision) if per_precision else value
            if key not in first:
                first[key] = (n, host)
                continue
            m, other_host = first[key]
            if column == "board" and host == other_host:
                continue
            a, b = find(n), find(m)
            if a != b:
                parent[max(a, b)] = min(a, b)
            edges.append((n, label))
    if not parent:
        return np.arange(len(df)), []
    order = list(df.index)
    groups: dict[int, list[int]] = {}
    for p in sorted({*parent, *(find(p) for p in list(parent))}):
        groups.setdefault(find(p), []).append(p)
    labels: dict[int, set[str]] = {}
    for p, label in edges:
        labels.setdefault(find(p), set()).add(label)
    counts = np.ones(len(df), dtype=bool)
    counts[list(parent)] = False
    keep = np.flatnonzero(counts)
    duplicates = []
    for root, members in groups.items():
        kept, rest = order[members[0]], [order[m] for m in members[1:]]
        duplicates.append({"device": df.at[kept, "device"], "precision": df.at[kept, "precision"],
                           "kept": df.at[kept, "report"], "dropped": sorted({df.at[m, "report"] for m in rest}),
                           "dropped_devices": sorted({df.at[m, "device"] for m in rest}),
                           "shared": sorted(labels.get(root, set())), "kept_index": kept})  # fmt: skip
    duplicates.sort(key=lambda d: (d["device"], d["precision"]))
    return keep, duplicates


#: Types whose `x != x` is the plain comparison (True for no value but a float NaN).
_PLAIN_SCALARS = frozenset({float, int, str, bool, type(None)})


def device_dicts(rows: list[tuple[Any, ...]], order: list[int]) -> list[dict[str, Any]]:
    """The capacity report's device list: rows[i] for i in order as {column: value} in COLUMNS order, a float NaN as
    None, what `[{k: None if isinstance(x, float) and math.isnan(x) else x for k, x in zip(COLUMNS, rows[i],
    strict=True)} for i in order]` gives (tests/report/test_device_dicts.py). That walked every value of a site's 4,000
    rows in Python, half of building its capacity report; here each row is zipped in C and only the columns holding a
    float are searched for NaN (a column at a time)."""
    width = len(COLUMNS)
    if set(map(len, rows)) - {width}:  # a row of another width: the comprehension refuses it (strict zip)
        return [{k: (None if isinstance(x, float) and math.isnan(x) else x) for k, x in zip(COLUMNS, rows[i], strict=True)}
                for i in order]  # fmt: skip
    nans: dict[int, list[str]] = {}
    for column, values in zip(COLUMNS, zip(*rows), strict=True) if rows else ():
        types = set(map(type, values))
        if not any(issubclass(t, float) for t in types):
            continue
        if types <= _PLAIN_SCALARS:
            found = [i for i, x in enumerate(values) if x != x]  # noqa: PLR0124 - NaN alone is unequal to itself
        else:
            found = [i for i, x in enumerate(values) if isinstance(x, float) and math.isnan(x)]
        for i in found:
            nans.setdefault(i, []).append(column)
    out = []
    for i in order:
        row = dict(zip(COLUMNS, rows[i]))
        for column in nans.get(i, ()):
            row[column] = None
        out.append(row)
    return out


def build(examined: Examined, *, rules: Rules, trusted: set[str] | None, now: dt.datetime) -> dict[str, Any]:
    """The capacity report from examined inputs: dedupe, groups, totals, defective devices."""
    listed = [entry for entry, _ in examined]
    rows = [row for _, device_list in examined for row in device_list]

    df = pd.DataFrame(rows, columns=COLUMNS)
    df = df.sort_values(["measured_utc", "report"], ascending=[False, True], kind="stable")
    keep, duplicates = unique_positions(df)
    counted = df.take(keep)
    # a device whose identity another device shares (a clone) is counted once, and no more than 'reported'
    tier_col, why_col = COLUMNS.index("tier"), COLUMNS.index("why")
    clone_why = "shares an identity with another device (a clone?)"
    for idx in {d["kept_index"] for d in duplicates if set(d["dropped_devices"]) - {d["device"]}}:
        counted.at[idx, "tier"], counted.at[idx, "why"] = v.REPORTED, clone_why
        rows[idx] = tuple(
            v.REPORTED if c == tier_col else clone_why if c == why_col else x for c, x in enumerate(rows[idx])
        )
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
                    reasons.setdefault(idx, []).append(
                        f"MAMF {value:.4g} TFLOPS is below the baseline {b.min_tflops:g} for {b.model}"
                    )
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
    devices = device_dicts(rows, counted.index.tolist())
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
        # summed as Python integers (pandas would turn a column with gaps into floats) and written as a decimal string
        "accelerator_memory_bytes": exact_count(memory_total(gpus["memory_bytes"])),
        "duplicates": duplicates,
        "defective": defective,
    }


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
    try:
        version = CapacityReport.from_dict(capacity).schema_version
    except ReportError as exc:
        return [v.Finding(v.ERROR, "schema", str(exc))], None
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
        rules = Rules.from_dict(capacity.get("rules") if isinstance(capacity.get("rules"), dict) else {}, old=True)
        created = v.parse_utc(capacity["created_utc"])
        own_trusted = capacity.get("trusted_key_ids")
        if own_trusted is not None and not (
            isinstance(own_trusted, list) and all(isinstance(k, str) for k in own_trusted)
        ):
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
    all_examined, signature = examine_all(given, now=created, check_signature_of=capacity, mamf_rule=rules.mamf_rule)
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
    if version == 2:  # version 2 wrote the memory total as a JSON integer
        recomputed["accelerator_memory_bytes"] = read_count(recomputed["accelerator_memory_bytes"])
    wrong = [k for k in RECOMPUTED if not _same(capacity.get(k), recomputed.get(k))]
    if wrong:
        out.append(
            v.Finding(
                v.ERROR, "capacity-mismatch", f"{', '.join(wrong)} differ from the recomputation from the node reports"
            )
        )
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
