"""The measured KPIs of a disclosure, each with its tier, date range and derivation (docs/disclosure.md,
"Reference: every rule and every refusal"): capacity per precision from MAMF and MSMF (dense, measured; never a vendor
peak, never sparsity), accelerators by model, readiness, and the tree of the roll-up. Declared figures are never added
here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.report import verify as v
from bench.report.proofs import Proven

#: The precisions a disclosure reports, as the public debate names them, and the measured precisions each covers. A
#: device measured at two precisions of one category (bf16 and fp16) counts once there, at the larger.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fp64", ("float64",)),
    ("fp32", ("float32",)),
    ("tf32", ("tf32",)),
    ("bf16/fp16", ("bfloat16", "float16")),
    ("fp8", ("float8_e4m3", "float8_e5m2")),
    ("int8", ("int8",)),
)
CATEGORY_OF = {p: c for c, ps in CATEGORIES for p in ps}
#: The category a headline (and an unqualified claim's first comparison) uses.
HEADLINE = "bf16/fp16"

DERIVATION = {
    "reported": "sum over counted devices of the measured MAMF (median TFLOPS of the best matmul shape) in node reports "
                "signed by node keys, each device once across the tree; integrity only",
    "bounded": "the reported sum over devices whose every figure also passed bench's physical, uniqueness and "
               "freshness checks under a trusted aggregator (and is not stale at the disclosure date)",
    "proven": "the largest total of one verified challenge proof signed by the auditor's key, each device's bound "
              "capped at its peak by bench's table; bounds of different proofs are never added",
    "sustained": "sum of measured MSMF (sustained matmul TFLOPS over minutes) where measured",
}  # fmt: skip


def _pf(tflops: float) -> float:
    return float(tflops) / 1e3


def _utc(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _range(times: pd.Series) -> list[str] | None:
    """[earliest, latest] measurement time (UTC, to the second) of the rows' `measured` column."""
    if times.empty:
        return None
    return [_utc(times.min()), _utc(times.max())]


def _per_device(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per device within a category: its largest MAMF among the category's precisions (rows ordered by MAMF
    descending, then precision, ties as they stand, and each device's first row kept). The order is found from
    numbers (numpy's stable lexsort of -MAMF and the precisions' sorted codes) where there are no gaps: pandas sorted a
    country's precision strings to the same end."""
    if rows.empty:  # most categories of a fleet: nothing to order
        return rows
    mamf = rows["mamf_tflops"].to_numpy()
    precision, _ = pd.factorize(rows["precision"], sort=True)
    if mamf.dtype != np.float64 or np.isnan(mamf).any() or (precision < 0).any():
        ordered = rows.sort_values(["mamf_tflops", "precision"], ascending=[False, True], kind="stable")
    else:
        ordered = rows.take(np.lexsort((precision, -mamf)))
    return ordered.drop_duplicates("device")


def categories(counted: pd.DataFrame, *, devices: np.ndarray | None = None) -> dict[str, pd.DataFrame]:
    """Per category, one row per device (_per_device), computed once for every figure that needs it. With `devices`
    (pd.factorize's codes of counted["device"]), by _per_device_at."""
    codes, names = pd.factorize(counted["precision"])  # the precisions hashed once, not once per category
    out = {}
    for c, ps in CATEGORIES:
        wanted = [i for i, name in enumerate(names) if name in ps]
        if not wanted:
            out[c] = counted.iloc[:0]
            continue
        at = np.flatnonzero(np.isin(codes, wanted))
        fast = _per_device_at(counted, at, codes, names, devices) if devices is not None else None
        out[c] = fast if fast is not None else _per_device(counted.iloc[at])
    return out


def _per_device_at(counted: pd.DataFrame, at: np.ndarray, codes: np.ndarray, names: Any,
                   devices: np.ndarray) -> pd.DataFrame | None:  # fmt: skip
    """_per_device(counted.iloc[at]) from numbers alone and one take of the rows kept: the same lexsort of -MAMF and
    the precisions' sorted ranks (ranks among all of counted's precisions order the subset's as its own sorted codes
    do), then each device's first row by its number (`devices`: pd.factorize's codes of counted["device"], one per
    device id); None where _per_device would sort with pandas (a MAMF column that is not float64, a gap) or the
    numbers do not fit. A country's category held all its rows: copied once by the mask, again by the sort and again
    by dropping duplicates, and its device ids hashed."""
    mamf = counted["mamf_tflops"].to_numpy()
    if len(devices) != len(counted) or mamf.dtype != np.float64 or not len(at) or (devices[at] < 0).any():
        return None
    mamf = mamf[at]
    if np.isnan(mamf).any():
        return None
    rank = np.empty(len(names), dtype=np.int64)
    try:
        rank[np.argsort(np.asarray(names, dtype=object), kind="stable")] = np.arange(len(names))
    except TypeError:  # precisions that do not compare with each other: pandas decides
        return None
    ordered = at[np.lexsort((rank[codes[at]], -mamf))]
    first = ~pd.Series(devices[ordered]).duplicated().to_numpy()
    return counted.take(ordered[first])


def capacity(counted: pd.DataFrame, proven: Proven, per_cat: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """Per category: reported, bounded and proven PFLOPS (each its own tier), sustained PFLOPS, devices, dates."""
    out = []
    # each proven bound is capped at its device's peak: the peaks of the proven precisions' devices (none to look up
    # without a proof; a country holds a million rows)
    peaks: dict[str, dict[str, float | None]] = {p: {} for p in proven.tflops}
    if peaks:
        for p, d, pk in zip(counted["precision"].tolist(), counted["device"].tolist(), counted["peak_tflops"].tolist(),
                            strict=True):  # fmt: skip
            if p in peaks:
                peaks[p][d] = None if pk is None or (isinstance(pk, float) and math.isnan(pk)) else float(pk)
    proven_by_precision = proven.totals(peaks)
    for category, precisions in CATEGORIES:
        rows = per_cat[category]
        empty = rows.empty  # most categories of a fleet: their sums are 0 without pandas
        # the bounded rows' MAMF alone (the column filtered, not every column of the rows: the same values in order)
        bounded = rows["mamf_tflops"] if empty else rows["mamf_tflops"][rows["tier"] == v.BOUNDED]
        msmf = None if empty else pd.to_numeric(rows["msmf_tflops"], errors="coerce")
        proven_tf = max((proven_by_precision.get(p, 0.0) for p in precisions), default=0.0)
        proven_prec = [p for p in precisions if proven_by_precision.get(p, 0.0) == proven_tf and proven_tf > 0]
        out.append({
            "category": category, "precisions": list(precisions), "devices": len(rows),
            "reported_pflops": _pf(0.0 if empty else rows["mamf_tflops"].sum()),
            "bounded_pflops": _pf(0.0 if empty else bounded.sum()),
            "bounded_devices": len(bounded), "proven_pflops": _pf(proven_tf),
            "proven_precision": proven_prec[0] if proven_prec else None,
            "sustained_pflops": _pf(msmf.sum()) if msmf is not None and msmf.notna().any() else None,
            "sustained_devices": 0 if msmf is None else int(msmf.notna().sum()),
            "date_range": None if empty else _range(rows["measured"]),
        })  # fmt: skip
    return out


#: Why a counted device's figure is not bounded where its capacity row gives no reason of its own.
WHY_STALE = "stale: measured longer ago than the policy's stale-after at the disclosure date"
WHY_NO_AGGREGATOR = "no aggregator trust list (--aggregator-keys): every figure stays reported"
WHY_UNKNOWN = "not bounded by its capacity report (no reason given)"
WHY_NO_PROOF = "no challenge proof signed by the auditor covers these devices (bench challenge)"
WHY_NO_AUDITOR = "no auditor key in the policy: no proof can count"


def reasons(capacity: list[dict[str, Any]], per_cat: dict[str, pd.DataFrame], *, trusted_aggregator: bool,
            auditor: bool) -> None:  # fmt: skip
    """Each capacity row's reasons, in place, for what is not bounded and not proven, so a zero or a partial figure
    on the page says why (as `bench verify` says it of each figure): `why_not_bounded`, the distinct reasons of its
    devices that are not bounded with how many devices each (most first: the aggregator's reason per row, e.g. "the
    CPU peak is an estimate (current clock)", else stale, else no trusted aggregator), and `why_not_proven` where
    the proven tier is 0."""
    for c in capacity:
        rows = per_cat[c["category"]]
        c["why_not_bounded"] = []
        c["why_not_proven"] = None
        if not c["devices"]:
            continue
        if c["proven_pflops"] == 0:
            c["why_not_proven"] = WHY_NO_PROOF if auditor else WHY_NO_AUDITOR
        rest = rows["tier"] != v.BOUNDED  # the columns read filtered, not every column of the rows
        if not rest.any():
            continue
        if not trusted_aggregator:
            why = pd.Series(WHY_NO_AGGREGATOR, index=range(int(rest.sum())))
        else:
            said = rows["why"][rest]
            given = said.where(said.notna() & (said != ""), WHY_UNKNOWN)
            why = given.where(~rows["stale"][rest].astype(bool), WHY_STALE)
        counts = why.value_counts(sort=False)
        c["why_not_bounded"] = [{"why": str(w), "devices": int(n)}
                                for w, n in sorted(counts.items(), key=lambda x: (-x[1], str(x[0])))]  # fmt: skip


def inventory(counted: pd.DataFrame, *, devices: np.ndarray | None = None) -> list[dict[str, Any]]:
    """Accelerators (and CPU hosts) by model: devices counted, healthy, defective and stale ones, nodes, tier.
    Vectorized (no per-group Python): a country holds about a million device rows. `devices`: pd.factorize's codes of
    counted["device"], where the caller has them."""
    out: list[dict[str, Any]] = []
    if counted.empty:
        return out
    flags = counted.assign(bounded=counted["tier"] == v.BOUNDED)
    per_device = _devices_unsorted(flags, devices)
    if per_device is not None:
        per_device["model"] = per_device["model"].fillna("unknown model")
        # the one order-dependent figure below is each model's first kind: the same in any device order when no
        # model mixes kinds (else the devices are laid out sorted, as grouping by device did)
        if _mixes_kinds(per_device["model"], per_device["kind"]):
            per_device = None
    if per_device is None:
        per_device = flags.groupby("device", sort=True)[["defective", "stale", "bounded"]].any()
        first = flags.drop_duplicates("device").set_index("device")[["model", "kind", "host"]]
        per_device = per_device.join(first)
        per_device["model"] = per_device["model"].fillna("unknown model")
    per_device["healthy"] = ~per_device["defective"] & ~per_device["stale"]
    fast = _by_model_codes(per_device, flags)
    if fast is not None:
        return fast
    by_model = per_device.groupby("model", sort=True)
    sums = by_model[["defective", "stale", "bounded", "healthy"]].sum()
    nodes = by_model["host"].nunique()
    kinds = by_model["kind"].first()
    counts = by_model.size()
    model_of = flags["model"].fillna("unknown model")
    dates = flags.groupby(model_of)["measured"].agg(["min", "max"])
    for model in counts.index:
        out.append({"model": str(model), "kind": str(kinds[model]), "devices": int(counts[model]),
                    "healthy": int(sums.at[model, "healthy"]), "defective": int(sums.at[model, "defective"]),
                    "stale": int(sums.at[model, "stale"]), "bounded_devices": int(sums.at[model, "bounded"]),
                    "nodes": int(nodes[model]), "tier": v.REPORTED,
                    "date_range": [_utc(dates.at[model, "min"]), _utc(dates.at[model, "max"])]})  # fmt: skip
    return out


def _mixes_kinds(model: pd.Series, kind: pd.Series) -> bool:
    """Whether a model has devices of two kinds (missing kinds not counted): per_device.groupby("model")["kind"].
    nunique().max() > 1 (a groupby of a few hundred rows was a tenth of a site's inventory) from the distinct
    (model, kind) pairs by number; the groupby where a model is missing."""
    m, _ = pd.factorize(model)
    if (m < 0).any():
        return bool(pd.Series(kind.to_numpy(), index=model.index).groupby(model).nunique().max() > 1)
    k, kinds = pd.factorize(kind)
    present = k >= 0
    pairs = np.unique(m[present].astype(np.int64) * (len(kinds) + 1) + k[present])
    return bool(len(pairs) and np.bincount(pairs // (len(kinds) + 1)).max() > 1)


def _by_model_codes(per_device: pd.DataFrame, flags: pd.DataFrame) -> list[dict[str, Any]] | None:
    """inventory()'s rows by model from the models numbered once (sorted, so the numbers order as the names) and
    folded with numpy: the groupby's counts, sums, distinct hosts (nulls not counted, as nunique), first kind, and
    date range of each model's rows; None where that is not plainly so (a model with no kind, a flag that is not a
    boolean, a measurement time missing): then the groupby decides. Grouping a country's devices by model string five
    times (sums, nunique twice, first, size) and its rows once more was a quarter of building or verifying a level."""
    columns = ("defective", "stale", "bounded", "healthy")
    if any(per_device[c].dtype != bool for c in columns) or flags["measured"].isna().any():
        return None
    model, names = pd.factorize(per_device["model"], sort=True)
    if (model < 0).any():
        return None
    n = len(names)
    counts = np.bincount(model, minlength=n)
    sums = {c: np.bincount(model, weights=per_device[c].to_numpy(), minlength=n) for c in columns}
    host_present = per_device["host"].notna().to_numpy()
    hosts, _ = pd.factorize(per_device["host"].to_numpy()[host_present])
    pairs = np.unique(model[host_present].astype(np.int64) * (int(hosts.max(initial=0)) + 1) + hosts)
    nodes = np.bincount(pairs // (int(hosts.max(initial=0)) + 1), minlength=n)
    kind_present = np.flatnonzero(per_device["kind"].notna().to_numpy())
    with_kind, first = np.unique(model[kind_present], return_index=True)  # each model's first device with a kind
    if len(with_kind) != n:
        return None
    kinds = per_device["kind"].to_numpy()[kind_present[first]]
    rows, row_names = pd.factorize(flags["model"].fillna("unknown model"), sort=True)
    measured = flags["measured"]
    earliest, latest = _first_last(measured, rows, len(row_names))
    at = pd.Index(row_names).get_indexer(names)  # every device's model is its first row's, so among the rows'
    if (at < 0).any():
        return None
    out = []
    for m in range(n):
        out.append({"model": str(names[m]), "kind": str(kinds[m]), "devices": int(counts[m]),
                    "healthy": int(sums["healthy"][m]), "defective": int(sums["defective"][m]),
                    "stale": int(sums["stale"][m]), "bounded_devices": int(sums["bounded"][m]),
                    "nodes": int(nodes[m]), "tier": v.REPORTED,
                    "date_range": [_utc(earliest[at[m]]), _utc(latest[at[m]])]})  # fmt: skip
    return out


def _first_last(measured: pd.Series, groups: np.ndarray, n: int) -> tuple[list[Any], list[Any]]:
    """Each group's earliest and latest time (groups numbered 0..n-1, every one present, no time missing), as
    measured.groupby(groups).agg(["min", "max"]) gives them (the same Timestamps), from one sort of the rows by (group,
    time) on integers: the groupby was a tenth of a level's inventory, mostly pandas' own overhead."""
    ticks = getattr(measured.array, "asi8", None)  # a datetime column's integers (no copy)
    if ticks is None or not len(groups):
        dates = measured.groupby(groups, sort=True).agg(["min", "max"])
        return list(dates["min"]), list(dates["max"])
    order = np.lexsort((np.asarray(ticks), groups))
    ends = np.flatnonzero(np.diff(groups[order])) + 1
    firsts, lasts = order[np.concatenate(([0], ends))], order[np.concatenate((ends - 1, [len(order) - 1]))]
    if len(firsts) != n:
        raise ValueError(f"{n} groups, {len(firsts)} with rows")
    return [measured.iat[i] for i in firsts.tolist()], [measured.iat[i] for i in lasts.tolist()]


def _devices_unsorted(flags: pd.DataFrame, codes: np.ndarray | None = None) -> pd.DataFrame | None:
    """One row per device in the order of first appearance: whether any of its rows is defective, stale or bounded,
    and the model, kind and host of its first row; None where the flags are not plain booleans. Grouping by device
    sorted a million device ids (hashing and comparing strings); the devices are numbered here by hashing alone and
    the flags folded by number (numpy)."""
    if any(flags[c].dtype != bool for c in ("defective", "stale", "bounded")):
        return None
    if codes is None or len(codes) != len(flags):
        codes, _ = pd.factorize(flags["device"])
    if (codes < 0).any():
        return None
    firsts = np.unique(codes, return_index=True)[1]  # codes number the devices 0.. in order of first appearance
    devices = flags["device"].iloc[firsts].to_numpy()
    out = pd.DataFrame({c: np.bincount(codes, weights=flags[c].to_numpy(), minlength=len(devices)) > 0
                        for c in ("defective", "stale", "bounded")}, index=pd.Index(devices, name="device"))  # fmt: skip
    for c in ("model", "kind", "host"):
        out[c] = flags[c].iloc[firsts].to_numpy()
    return out


def readiness(
    per_cat: dict[str, pd.DataFrame], inventory_rows: list[dict[str, Any]], classes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Readiness figures: healthy share, MAMF / peak and MSMF / peak per category (peaks from bench's own table, only
    over devices that have one); then per node class (bench.disclosure.readiness) bus bandwidth, memory bandwidth,
    training MFU and TFLOPS per watt, each listed as not measured where no counted node report holds one."""
    return readiness_of_rows(per_cat, inventory_rows) + readiness_of_classes(classes)


def readiness_of_rows(per_cat: dict[str, pd.DataFrame], inventory_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """readiness()'s figures from the counted rows (healthy share, MAMF and MSMF over peak): what a level's rows
    decide, apart from its node classes (which a roll-up takes from its children)."""
    devices = sum(r["devices"] for r in inventory_rows)
    healthy = sum(r["healthy"] for r in inventory_rows)
    out: list[dict[str, Any]] = [{
        "id": "healthy_share", "label": "healthy share of counted devices (not defective, not stale)",
        "value": healthy / devices if devices else None, "unit": "share", "tier": v.REPORTED,
        "derivation": "devices not listed defective by their capacity report and measured within the staleness window",
    }]  # fmt: skip
    for category, _ in CATEGORIES:
        rows = per_cat[category]
        if rows.empty:
            continue
        peak = pd.to_numeric(rows["peak_tflops"], errors="coerce")
        keep = peak.notna() & (peak > 0)  # the three columns read filtered, not every column of the rows
        if not keep.any():
            continue
        peaks, mamf, msmf_given = rows["peak_tflops"][keep], rows["mamf_tflops"][keep], rows["msmf_tflops"][keep]
        psum = float(pd.to_numeric(peaks).sum())
        out.append({"id": f"mamf_over_peak.{category}", "label": f"{category}: measured MAMF / peak",
                    "value": float(mamf.sum()) / psum, "unit": "share", "tier": v.REPORTED,
                    "derivation": "sum of MAMF over sum of bench's table peak, devices with a peak"})  # fmt: skip
        msmf = pd.to_numeric(msmf_given, errors="coerce")
        both = msmf.notna()
        if both.any():
            out.append({"id": f"sustained_over_peak.{category}", "label": f"{category}: sustained (MSMF) / peak",
                        "value": float(pd.to_numeric(msmf_given[both]).sum()) / float(pd.to_numeric(peaks[both]).sum()),
                        "unit": "share", "tier": v.REPORTED,
                        "derivation": "sum of MSMF over sum of peak, devices with both"})  # fmt: skip
    return out


def readiness_of_classes(classes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """readiness()'s figures per node class (bench.disclosure.readiness), each listed as not measured where no counted
    node report holds one."""
    out: list[dict[str, Any]] = []
    units = {"busbw_gbps": "GB/s", "membw_gbps": "GB/s", "train_mfu": "share"}
    labels = {"busbw_gbps": "all-reduce bus bandwidth", "membw_gbps": "memory bandwidth", "train_mfu": "training MFU"}
    for key in ("busbw_gbps", "membw_gbps", "train_mfu"):
        rows = [c for c in classes if c[key] is not None]
        for c in rows:
            out.append({"id": f"{key}.{c['node_class']}", "label": f"{labels[key]}, {c['node_class']} ({c[key + '_nodes']} nodes)",
                        "value": c[key], "unit": units[key], "tier": v.REPORTED, "derivation": c["derivation"]})  # fmt: skip
        if not rows:
            out.append({"id": key, "label": labels[key], "value": None, "unit": None, "tier": None,
                        "derivation": "not measured: no node report of the counted nodes holds one (disclose --reports)"})  # fmt: skip
    watts = [(c, cat, x) for c in classes for cat, x in c["tflops_per_watt"].items()]
    for c, cat, x in watts:
        out.append({"id": f"tflops_per_watt.{cat}.{c['node_class']}", "label": f"{cat} TFLOPS per watt, {c['node_class']}",
                    "value": x, "unit": "TFLOPS/W", "tier": v.REPORTED,
                    "derivation": "matmul median TFLOPS over the mean power its telemetry recorded; " + c["derivation"]})  # fmt: skip
    if not watts:
        out.append({"id": "tflops_per_watt", "label": "measured TFLOPS per watt", "value": None, "unit": None, "tier": None,
                    "derivation": "not measured: no counted node report has power telemetry (disclose --reports)"})  # fmt: skip
    return out


def _keys_at(depth: int) -> list[str]:
    return [f"p{i}" for i in range(depth)] if depth <= 4 else ["p0", "p1", "p2", "p3", "cluster"]


def tree(counted: pd.DataFrame, per_cat: dict[str, pd.DataFrame], level_depth: int, *,
         devices: np.ndarray | None = None, coded: Any = None) -> dict[str, Any]:  # fmt: skip
    """The roll-up below this disclosure's level as nested nodes (country > region > city > site > cluster), each with
    its counted devices and reported / bounded PFLOPS per category, after the device-once rule (so children sum to
    their parent). Sums are grouped once per depth (vectorized), then nested.

    The place names and device ids are factorized once (sorted, so integer group ids order as the names do) instead
    of by every groupby: a country's rows are grouped at five depths for six categories, and hashing a million
    strings each time was a fifth of building or verifying a level. Every group holds the same rows in the same
    order as grouping by the names, so each sum is the same float (_tree_by_names, the plain form, is kept for rows
    the factorized form does not cover: a missing name, a repeated index). `coded` (leaves.Coded): the place names
    as the shared merge numbered them for the whole tree (sorted, so they order as the names do; some unused here),
    taken instead of factorizing them again: a roll-up's rows' names were hashed by each of its levels, and the
    groups are the same (a lexicographic order of the same ranks, compacted), so each sum is the same float."""
    if counted.empty:
        return {"name": "", "devices": 0, "pflops": {}, "children": []}
    columns = ["p0", "p1", "p2", "p3", "cluster"]
    codes: dict[str, np.ndarray] = {}
    names: dict[str, Any] = {}
    for c in columns:
        if coded is not None and c in coded.codes and len(coded.codes[c]) == len(counted):
            codes[c], names[c] = coded.codes[c], coded.names[c]
        else:
            codes[c], names[c] = pd.factorize(counted[c], sort=True)
        if (codes[c] < 0).any():
            return _tree_by_names(counted, per_cat, level_depth)
    if not counted.index.is_unique:
        return _tree_by_names(counted, per_cat, level_depth)
    device = devices if devices is not None and len(devices) == len(counted) else pd.factorize(counted["device"])[0]
    if (device < 0).any():
        return _tree_by_names(counted, per_cat, level_depth)
    frames = {}
    for category, _ in CATEGORIES:
        rows = per_cat[category]
        if rows.empty:
            continue
        at = counted.index.get_indexer(rows.index)
        if (at < 0).any():
            return _tree_by_names(counted, per_cat, level_depth)
        frames[category] = (at, rows.assign(bounded=rows["mamf_tflops"].where(rows["tier"] == v.BOUNDED, 0.0))[
            ["mamf_tflops", "bounded"]])  # fmt: skip
    n_devices = int(device.max()) + 1
    nodes: dict[tuple[str, ...], dict[str, Any]] = {}
    for depth in range(level_depth, 6):
        keys = _keys_at(depth)
        group = np.zeros(len(counted), dtype=np.int64)
        for c in keys:  # lexicographic over the sorted codes, compacted after each level (no overflow)
            group = np.unique(group * len(names[c]) + codes[c], return_inverse=True)[1].reshape(-1).astype(np.int64)
        firsts = np.unique(group, return_index=True)[1]
        key_of = [tuple(str(names[c][codes[c][i]]) for c in keys) for i in firsts]
        pairs = np.sort(group * n_devices + device)  # the distinct (group, device) pairs: sorted, then adjacent ones
        pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]  # differ (np.unique hashes, 10x slower here)
        per_group = np.bincount(pairs // n_devices, minlength=len(firsts))
        for g, key in enumerate(key_of):
            nodes[key] = {"name": str(key[-1]), "devices": int(per_group[g]), "pflops": {}, "children": []}
        for category, (at, frame) in frames.items():
            sums = frame.groupby(group[at], sort=True).sum()
            for g, reported, bounded in zip(sums.index, sums["mamf_tflops"], sums["bounded"], strict=True):
                nodes[key_of[g]]["pflops"][category] = {
                    "reported_pflops": _pf(reported),
                    "bounded_pflops": _pf(bounded),
                }
    for key in sorted(nodes, key=lambda k: (len(k), k)):
        if len(key) > level_depth:
            nodes[key[:-1]]["children"].append(nodes[key])
    (root,) = [node for key, node in nodes.items() if len(key) == level_depth]
    return root


def _tree_by_names(counted: pd.DataFrame, per_cat: dict[str, pd.DataFrame], level_depth: int) -> dict[str, Any]:
    """tree() grouping by the place names themselves (see tree)."""
    nodes: dict[tuple[str, ...], dict[str, Any]] = {}
    for depth in range(level_depth, 6):
        keys = _keys_at(depth)
        for key, n in counted.groupby(keys, sort=True)["device"].nunique().items():
            key = key if isinstance(key, tuple) else (key,)
            nodes[key] = {"name": str(key[-1]), "devices": int(n), "pflops": {}, "children": []}
        for category, _ in CATEGORIES:
            rows = per_cat[category]
            if rows.empty:
                continue
            sums = rows.assign(bounded=rows["mamf_tflops"].where(rows["tier"] == v.BOUNDED, 0.0)).groupby(keys, sort=True)[
                ["mamf_tflops", "bounded"]].sum()  # fmt: skip
            for key, reported, bounded in zip(sums.index, sums["mamf_tflops"], sums["bounded"], strict=True):
                key = key if isinstance(key, tuple) else (key,)
                nodes[key]["pflops"][category] = {"reported_pflops": _pf(reported), "bounded_pflops": _pf(bounded)}
    for key in sorted(nodes, key=lambda k: (len(k), k)):
        if len(key) > level_depth:
            nodes[key[:-1]]["children"].append(nodes[key])
    (root,) = [node for key, node in nodes.items() if len(key) == level_depth]
    return root
