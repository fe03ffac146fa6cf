"""The disclosure document: build it from its leaves (capacity reports), declarations and proofs; sign it; read it
strictly against its published JSON Schema (schema.json in this package); and re-derive it from the level below.

Every level is computed from the leaves themselves, so a parent never trusts a child's figures: `verify` rebuilds a
disclosure from the capacity reports, proofs and child disclosures found in a folder and compares every derived
section, then does the same for each child it finds (each level re-derivable from the level below).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import rfc8785

from bench.disclosure import claims as cl
from bench.disclosure import declaration as decl
from bench.disclosure import kpis, sampling
from bench.disclosure import readiness as rd
from bench.disclosure.leaves import MERGE_ONLY, Coded, DisclosureError, Leaf, Store, leaf, merge_coded, shared_merge
from bench.model import intake, sign
from bench.model.reports import exact_count
from bench.report import proofs
from bench.report import verify as v
from bench.report.capacity import _same, memory_total
from bench.report.pool import forks, frozen_heap, map_forked

KIND = "bench.disclosure"
SCHEMA_VERSION = 1
LEVELS = ("country", "region", "city", "site")
DEPTH = {level: i + 1 for i, level in enumerate(LEVELS)}
#: Sections recomputed on verification; everything else is an input or a stamp.
DERIVED = ("declared", "capacity", "kpis", "inventory", "readiness", "readiness_by_class", "tree", "duplicates",
           "accelerator_memory_bytes", "claims", "audit", "path")  # fmt: skip
DEFAULT_STALE_AFTER_S = 30 * 86400.0
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@functools.cache
def schema() -> dict[str, Any]:
    """The published JSON Schema of a disclosure (bench/disclosure/schema.json)."""
    return json.loads(resources.files("bench.disclosure").joinpath("schema.json").read_text(encoding="utf-8"))


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    """The schema's validator, built once: building it for each document read (its references resolved anew) was a
    quarter of checking one, and a country's verification checks every one of its 266 documents. A validator holds
    no state between documents (jsonschema's are immutable), so each check finds what a new one finds."""
    return jsonschema.Draft202012Validator(schema())


@dataclass(frozen=True)
class Policy:
    """Whose keys count: aggregators (capacity reports), the auditor (proofs), operators (declarations); node keys are
    refused on declarations. Recorded in the disclosure, so a verifier re-derives it under the same policy."""

    aggregator_ids: frozenset[str] | None = None
    auditor_id: str | None = None
    operator_ids: frozenset[str] | None = None
    node_ids: frozenset[str] | None = None
    stale_after_s: float = DEFAULT_STALE_AFTER_S

    def check(self) -> None:
        """Refuse a policy whose auditor key is also a node, aggregator or operator key: those keys are the operator's,
        and a proof it signs is the operator's word, not the auditor's."""
        if self.auditor_id is None:
            return
        for what, ids in (
            ("node", self.node_ids),
            ("aggregator", self.aggregator_ids),
            ("operator", self.operator_ids),
        ):
            if ids is not None and self.auditor_id in ids:
                raise DisclosureError(f"the policy names key {self.auditor_id} both as the auditor and as a {what} key: "
                                      "the auditor's key must be one the operator does not hold")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "aggregator_key_ids": sorted(self.aggregator_ids) if self.aggregator_ids is not None else None,
            "auditor_key_id": self.auditor_id,
            "operator_key_ids": sorted(self.operator_ids) if self.operator_ids is not None else None,
            "node_key_ids": sorted(self.node_ids) if self.node_ids is not None else None,
            "stale_after_s": self.stale_after_s,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Policy:
        def ids(x: Any) -> frozenset[str] | None:
            return None if x is None else frozenset(x)

        return cls(ids(d["aggregator_key_ids"]), d["auditor_key_id"], ids(d["operator_key_ids"]), ids(d["node_key_ids"]),
                   float(d["stale_after_s"]))  # fmt: skip


def _utc(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime(TIME_FORMAT)


def _read_proofs(docs: list[intake.Document], policy: Policy, as_of: dt.datetime) -> proofs.Proven:
    if docs and policy.auditor_id is None:
        raise DisclosureError("proofs were given without the auditor's key: a proof counts only under that key")
    proven = proofs.read([d.path for d in docs], {policy.auditor_id} if policy.auditor_id else set(),
                         max_age=dt.timedelta(seconds=policy.stale_after_s), now=as_of)  # fmt: skip
    if proven.findings:
        raise DisclosureError("; ".join(f"{f.where}: {f.message}" if f.where not in f.message else f.message
                                        for f in proven.findings))  # fmt: skip
    return proven


def _owned(
    proven: proofs.Proven, counted: pd.DataFrame, leaves: list[tuple[Leaf, list[dict[str, Any]]]]
) -> proofs.Proven:
    """Only the proven bounds that belong to the rows counting their devices: a bound counts for a device only where
    the node report counting it (a capacity input: its digest and signing key) is signed by the key that committed
    the challenge answer, for the host name that committed it (proofs.Proven.owned). A proof cited for another
    operator's report is refused, naming both owners. Only the proofs' devices are looked up (a country holds a
    million rows)."""
    if not proven.tflops:
        return proven
    wanted = {d for challenges in proven.tflops.values() for per in challenges.values() for d in per}
    rows = counted[counted["device"].isin(wanted)]
    keys = set(zip(rows["leaf"].tolist(), rows["precision"].tolist(), rows["device"].tolist(), strict=True))
    labels = {k[0] for k in keys}
    reporters: dict[str, dict[str, set[proofs.Owner]]] = {}
    for lf, _ in leaves:  # a disclosure row keeps its capacity report, whose own row names the node report counted
        if lf.label not in labels:
            continue
        signer = {i.get("digest"): i.get("key_id") for i in lf.data.get("inputs", []) if isinstance(i, dict)}
        for d in lf.data.get("devices", []):
            if isinstance(d, dict) and (lf.label, d.get("precision"), d.get("device")) in keys:
                owner = (signer.get(d.get("report")), d.get("node"))
                reporters.setdefault(d["precision"], {}).setdefault(d["device"], set()).add(owner)
    owned, refused = proven.owned(reporters)
    if refused:
        raise DisclosureError("; ".join(f.message for f in refused))
    return owned


def _declared(declarations: list[decl.Declaration], capacity_by_site: dict[str, float]) -> dict[str, Any]:
    sites = []
    for d in sorted(declarations, key=lambda d: d.path):
        sites.append({"path": d.path, "operator": d.data["operator"], "contact": d.data["contact"],
                      "clusters": d.data["clusters"], "open_access": d.data["open_access"],
                      "networks": d.data["networks"], "planned": d.data["planned"], "key_id": d.key_id,
                      "tier": "declared"})  # fmt: skip
    planned: dict[tuple[str, str | None], float] = {}
    for s in sites:
        for p in s["planned"]:
            planned[(p["date"], p["precision"])] = planned.get((p["date"], p["precision"]), 0.0) + p["pflops"]
    weighted = [
        (s["open_access"]["share"], capacity_by_site.get("/".join(s["path"]), 0.0)) for s in sites if s["open_access"]
    ]
    total = sum(w for _, w in weighted)
    return {
        "tier": "declared",
        "note": "stated by each site's operator (signed with the operator's key); not measured, never added to a "
                "measured total",
        "sites": sites,
        "planned_by_date": [{"date": d, "precision": p, "pflops": x} for (d, p), x in sorted(planned.items(), key=str)],
        "open_access_share_weighted": sum(s * w for s, w in weighted) / total if total else None,
    }  # fmt: skip


@frozen_heap()  # the documents already read (a country's store holds millions of objects) left out of gc's walks
def compute(*, level: str, name: str, leaves: list[tuple[Leaf, list[dict[str, Any]]]],
            declarations: list[decl.Declaration], proof_docs: list[intake.Document], policy: Policy,
            as_of: dt.datetime, claims_input: list[dict[str, str]], audit_input: dict[str, Any] | None,
            node_docs: list[intake.Document] | None = None,
            child_docs: list[intake.Document] | None = None) -> dict[str, Any]:  # fmt: skip
    """Every derived section of a disclosure (DERIVED), from its inputs: readiness per node class from the node reports
    (`node_docs`, a site) or from the children (`child_docs`, a roll-up). The sections its rows decide are taken from
    `precomputed` where they were derived there from the same inputs (a worker's, while other levels were built)."""
    if level not in LEVELS:
        raise DisclosureError(f"level should be one of {', '.join(LEVELS)}, got {level!r}")
    policy.check()
    rows = None
    if _PRECOMPUTED:
        key = inputs_key(level, name, leaves, declarations, proof_docs, policy, as_of, claims_input, audit_input)
        for held in _PRECOMPUTED:
            rows = held.pop(key, None)
            if rows is not None:
                break
    if rows is None:
        rows = from_rows(level=level, name=name, leaves=leaves, declarations=declarations, proof_docs=proof_docs,
                         policy=policy, as_of=as_of, claims_input=claims_input, audit_input=audit_input)  # fmt: skip
    return _finish(rows, leaves, node_docs, child_docs)


def from_rows(*, level: str, name: str, leaves: list[tuple[Leaf, list[dict[str, Any]]]],
              declarations: list[decl.Declaration], proof_docs: list[intake.Document], policy: Policy,
              as_of: dt.datetime, claims_input: list[dict[str, str]],
              audit_input: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """compute()'s sections that the level's rows decide (all but readiness per node class), with the inventory and
    the rows' readiness figures _finish needs, and the refusal of the audit or the claims (raised by _finish after
    the node classes are checked, in compute's order). A pure function of its inputs (inputs_key names them)."""
    depth = DEPTH[level]
    if not leaves:
        raise DisclosureError("no capacity report to disclose")
    prefixes = {lf.path[:depth] for lf, _ in leaves}
    if len(prefixes) != 1 or next(iter(prefixes))[-1] != name:
        raise DisclosureError(f"a {level} disclosure named {name!r} can hold only that {level}'s sites; the capacity "
                              f"reports given sit in {', '.join(sorted('/'.join(p) for p in prefixes))}")  # fmt: skip
    sites = {lf.path for lf, _ in leaves}
    declared_sites = {tuple(d.path) for d in declarations}
    if sites != declared_sites:
        missing = sorted("/".join(s) for s in sites ^ declared_sites)
        raise DisclosureError(f"every site needs exactly one declaration, and every declaration a capacity report: "
                              f"{', '.join(missing)}")  # fmt: skip
    if len(declared_sites) != len(declarations):
        raise DisclosureError("two declarations for one site")
    counted, duplicates, coded = merge_coded(leaves, trusted_aggregator=policy.aggregator_ids is not None, as_of=as_of,
                                             stale_after=dt.timedelta(seconds=policy.stale_after_s),
                                             without=MERGE_ONLY)  # fmt: skip
    proven = _owned(_read_proofs(proof_docs, policy, as_of), counted, leaves)
    # the device ids numbered once (in order of appearance) for every figure below that folds rows by device: hashing
    # a country's million ids was done four times
    devices, _ = pd.factorize(counted["device"])
    per_cat = kpis.categories(counted, devices=devices)
    capacity = kpis.capacity(counted, proven, per_cat)
    kpis.reasons(capacity, per_cat, trusted_aggregator=policy.aggregator_ids is not None,
                 auditor=policy.auditor_id is not None)  # fmt: skip
    inventory = kpis.inventory(counted, devices=devices)
    peak_pflops = {}
    for category, _ in kpis.CATEGORIES:
        peak_pflops[category] = float(pd.to_numeric(per_cat[category]["peak_tflops"], errors="coerce").sum()) / 1e3
    declared = _declared(declarations, site_pflops(counted, devices, coded=coded))
    memory = gpu_memory(counted, devices)
    out: dict[str, Any] = {"path": list(next(iter(prefixes))), "declared": declared, "capacity": capacity,
                           "kpis": _flat_kpis(capacity, inventory), "inventory": inventory,
                           "readiness": kpis.readiness_of_rows(per_cat, inventory), "refused": None}  # fmt: skip
    try:
        audit = None
        if audit_input is not None:
            audit = _audit(audit_input, counted, proven, proof_docs, policy)
        out["tree"] = kpis.tree(counted, per_cat, depth, devices=devices, coded=coded)
        out["duplicates"] = [{k: (sorted(map(str, x)) if isinstance(x, list) else str(x)) for k, x in d.items()}
                             for d in duplicates]  # fmt: skip
        out["accelerator_memory_bytes"] = exact_count(memory)
        out["claims"] = cl.ledger(claims_input, capacity, peak_pflops, declared["sites"],
                                  capacity_at=lambda by: _capacity_at(by, counted, proven, proof_docs))  # fmt: skip
        out["audit"] = audit
    except Exception as exc:  # noqa: BLE001 - raised by _finish, after the node classes, where compute raised it
        out["refused"] = exc
    return out


def _finish(
    rows: dict[str, Any],
    leaves: list[tuple[Leaf, list[dict[str, Any]]]],
    node_docs: list[intake.Document] | None,
    child_docs: list[intake.Document] | None,
) -> dict[str, Any]:
    """compute()'s sections from from_rows' and the node classes (from the children, or the node reports)."""
    if child_docs:
        classes = rd.combine([c.data["readiness_by_class"]["classes"] for c in child_docs])
        by_class = {"source": "children", "node_reports": [], "classes": classes}
    elif node_docs:
        counted_digests = {i.get("digest") for lf, _ in leaves for i in lf.data.get("inputs", [])
                           if isinstance(i, dict) and i.get("status") == "counted"}  # fmt: skip
        classes, used = rd.from_reports(node_docs, counted_digests)
        by_class = {"source": "node reports", "node_reports": used, "classes": classes}
    else:
        by_class = {"source": "none", "node_reports": [], "classes": []}
    try:
        rd.check_classes(by_class["classes"], rows["inventory"])
    except ValueError as exc:
        raise DisclosureError(str(exc)) from None
    if rows["refused"] is not None:
        raise rows["refused"]
    return {
        "path": rows["path"],
        "declared": rows["declared"],
        "capacity": rows["capacity"],
        "kpis": rows["kpis"],
        "inventory": rows["inventory"],
        "readiness": rows["readiness"] + kpis.readiness_of_classes(by_class["classes"]),
        "readiness_by_class": by_class,
        "tree": rows["tree"],
        "duplicates": rows["duplicates"],
        "accelerator_memory_bytes": rows["accelerator_memory_bytes"],
        "claims": rows["claims"],
        "audit": rows["audit"],
    }


def inputs_key(level: str, name: str, leaves: list[tuple[Leaf, list[dict[str, Any]]]],
               declarations: list[decl.Declaration], proof_docs: list[intake.Document], policy: Policy,
               as_of: dt.datetime, claims_input: list[dict[str, str]] | None,
               audit_input: dict[str, Any] | None) -> tuple[Any, ...]:  # fmt: skip
    """What from_rows' answer depends on, exactly: the level and name, each capacity report by its place, file hash and
    signed digest (its data and rows are its bytes'), each declaration by its text and signature (its data and key
    are theirs), each proof by its file hash, the policy, the date, the claims and the audit request. from_rows is
    indifferent to the order of leaves, declarations and proofs (merging sorts the rows; the rest are sets or sorted)."""
    return (level, name, tuple(sorted((lf.label, lf.path, lf.sha256, lf.digest) for lf, _ in leaves)),
            tuple(sorted((tuple(d.path), d.text, json.dumps(d.signature, sort_keys=True)) for d in declarations)),
            tuple(sorted(d.sha256 for d in proof_docs)), json.dumps(policy.to_dict(), sort_keys=True),
            as_of.isoformat(), json.dumps(claims_input, sort_keys=True), json.dumps(audit_input, sort_keys=True))  # fmt: skip


#: from_rows' answers derived ahead (precomputed), by inputs_key; each taken once by compute. Forked workers inherit it.
_PRECOMPUTED: list[dict[tuple[Any, ...], dict[str, Any]]] = []


def _rows_task(task: tuple[Any, ...]) -> dict[str, Any] | None:
    """from_rows of one level (a worker's task: its keyword arguments); None where it refuses (compute, doing it again
    where it is needed, refuses in its own order and words)."""
    try:
        rows = from_rows(**task[1])
    except Exception:  # noqa: BLE001 - a refusal (or a failure) is compute's to report, in place
        return None
    return rows if rows["refused"] is None else None


def _ahead_task(fn: Any, task: tuple[str, Any]) -> Any:
    """A task of precomputed's pool: one level's from_rows (_rows_task), or fn of an item given along."""
    kind, item = task
    return _rows_task(item) if kind == "rows" else fn(item)


@contextlib.contextmanager
def precomputed(levels: list[dict[str, Any]], *, along: tuple[Any, list[Any]] | None = None) -> Iterator[list[Any]]:
    """While the block runs, compute() of any of `levels` (from_rows' keyword arguments each) takes the sections its
    rows decide from a derivation done here beforehand: all of them at once by worker processes (one per core), the
    largest first, so that no core waits while one level (a country's million rows) is derived alone, as it was when
    each level waited for the one below. The documents are the same (tests/disclosure/test_precomputed.py). `along`,
    (fn, items): fn of each item by the same workers after the levels (one pool forked, not two), its results yielded
    in order (the first exception in that order raised, as map_forked raises it)."""
    order = sorted(range(len(levels)), key=lambda i: -sum(len(rows) for _, rows in levels[i]["leaves"]))
    fn, items = along if along is not None else (None, [])
    tasks = [("rows", (i, levels[i])) for i in order] + [("along", item) for item in items]
    done = map_forked(functools.partial(_ahead_task, fn), tasks)
    held: dict[tuple[Any, ...], dict[str, Any]] = {}
    for (_, (_, kw)), rows in zip(tasks[: len(order)], done[: len(order)], strict=True):
        if rows is not None:
            held[inputs_key(**kw)] = rows
    _PRECOMPUTED.append(held)
    try:
        yield done[len(order) :]
    finally:
        _PRECOMPUTED.remove(held)


def site_pflops(counted: pd.DataFrame, devices: np.ndarray, *, coded: Coded | None = None) -> dict[str, float]:
    """Each site's headline PFLOPS (its devices' MAMF at the headline category's precisions, each device's first row
    within the site): what the open-access share is weighted by. The sites and (site, device) pairs numbered (numpy)
    instead of grouping the rows by site name and dropping duplicate device names in each group; each site's sum is
    still pandas' sum of the same values in the same order (_site_pflops_by_names, the plain form, where the MAMF
    column is not float64 or a site is missing). `coded`: the rows' sites numbered by the shared merge, where they
    were (each site's number there, its name at that number)."""
    mamf = counted["mamf_tflops"]
    if mamf.dtype != np.float64 or counted["site"].isna().any() or len(devices) != len(counted):
        return _site_pflops_by_names(counted)
    at = np.flatnonzero(counted["precision"].isin(dict(kpis.CATEGORIES)[kpis.HEADLINE]).to_numpy())
    if coded is not None and len(coded.codes["site"]) == len(counted) and (coded.codes["site"] >= 0).all():
        sites, names = coded.codes["site"][at], coded.names["site"]
    else:
        sites, names = pd.factorize(counted["site"].to_numpy()[at])
    firsts = (
        ~pd.Series(sites.astype(np.int64) * (int(devices.max(initial=0)) + 1) + devices[at]).duplicated().to_numpy()
    )
    at, sites = at[firsts], sites[firsts]
    order = np.argsort(sites, kind="stable")  # each site's rows in their order
    at, sites = at[order], sites[order]
    values = mamf.to_numpy()
    bounds = np.flatnonzero(np.diff(sites)) + 1
    return {str(names[sites[lo]]): float(pd.Series(values[at[lo:hi]]).sum()) / 1e3
            for lo, hi in zip([0, *bounds], [*bounds, len(at)], strict=True) if hi > lo}  # fmt: skip


def _site_pflops_by_names(counted: pd.DataFrame) -> dict[str, float]:
    """site_pflops by grouping the headline rows by site name and dropping each group's repeated devices."""
    headline = counted[counted["precision"].isin(dict(kpis.CATEGORIES)[kpis.HEADLINE])]
    return {str(s): float(g.drop_duplicates("device")["mamf_tflops"].sum()) / 1e3 for s, g in headline.groupby("site")}


def gpu_memory(counted: pd.DataFrame, devices: np.ndarray) -> int:
    """Bytes of accelerator memory: each GPU's (kind 'cuda') from its first row, as counted[cuda].drop_duplicates(
    "device") keeps it, found by the devices' numbers (`devices`: pd.factorize's codes of counted["device"])."""
    cuda = np.flatnonzero((counted["kind"] == "cuda").to_numpy())
    first = np.sort(np.unique(devices[cuda], return_index=True)[1])
    return memory_total(counted["memory_bytes"].iloc[cuda[first]])


def _capacity_at(by: str, counted: pd.DataFrame, proven: proofs.Proven,
                 proof_docs: list[intake.Document]) -> list[dict[str, Any]]:  # fmt: skip
    """Capacity rows as of the end of day `by` (YYYY-MM-DD): only devices measured and proofs issued by then."""
    end = pd.Timestamp(dt.datetime.fromisoformat(by).replace(tzinfo=dt.UTC) + dt.timedelta(days=1))
    issued = {sign.digest(d.data): d.data.get("issued_utc") for d in proof_docs if isinstance(d.data, dict)}
    then = proofs.Proven()
    for precision, challenges in proven.tflops.items():
        for digest, per in challenges.items():
            when = issued.get(digest)
            if isinstance(when, str) and pd.Timestamp(v.parse_utc(when)) < end:
                then.tflops.setdefault(precision, {})[digest] = per
    early = counted[counted["measured"] < end]
    return kpis.capacity(early, then, kpis.categories(early))


def _audit(audit_input: dict[str, Any], counted: pd.DataFrame, proven: proofs.Proven,
           proof_docs: list[intake.Document], policy: Policy) -> dict[str, Any]:  # fmt: skip
    """The audit by sampling, under the auditor's signed request (its nonce, bound to this population, so neither the
    nonce nor the population is the discloser's choice). Each sampled device's bound comes from ONE proof issued after
    the request (the challenge the sampled devices answered), never from bounds of different proofs together."""
    try:
        req = sampling.check_request(audit_input.get("request"), policy.auditor_id)
    except sampling.SamplingError as exc:
        raise DisclosureError(f"audit: {exc}") from None
    differ = [k for k in ("nonce", "precision", "size", "confidence") if audit_input.get(k) != req[k]]
    if differ:
        raise DisclosureError(f"audit: {', '.join(differ)} differ from the auditor's request")
    precision = req["precision"]
    rows = counted[counted["precision"] == precision]
    if rows.empty:
        raise DisclosureError(f"audit: no counted device measured at {precision}")
    issued = {sign.digest(d.data): d.data.get("issued_utc") for d in proof_docs if isinstance(d.data, dict)}
    after = [per for digest, per in proven.tflops.get(precision, {}).items()
             if isinstance(issued.get(digest), str) and v.parse_utc(issued[digest]) >= v.parse_utc(req["issued_utc"])]  # fmt: skip
    try:
        audit = sampling.audit(req["nonce"], list(zip(rows["device"], rows["mamf_tflops"].astype(float), strict=True)),
                               after, req["size"], req["confidence"])  # fmt: skip
    except sampling.SamplingError as exc:
        raise DisclosureError(f"audit: {exc}") from None
    if audit["population_digest"] != req["population_digest"]:
        raise DisclosureError(f"audit: the auditor's request samples population {req['population_digest'][:16]}, not "
                              f"this disclosure's {audit['population_digest'][:16]} (counted devices changed?)")  # fmt: skip
    audit.pop("proof_index")
    audit["precision"] = precision
    audit["request_key_id"] = sign.signer(req)
    audit["request_issued_utc"] = req["issued_utc"]
    audit["tier"] = "proven (sampled)"
    return audit


def _flat_kpis(capacity: list[dict[str, Any]], inventory: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in capacity:
        if not c["devices"]:
            continue
        for tier in ("reported", "bounded", "proven"):
            out.append({"id": f"capacity.{c['category']}.{tier}", "label": f"{c['category']} dense capacity, {tier}",
                        "value": c[f"{tier}_pflops"], "unit": "PFLOPS", "tier": tier, "date_range": c["date_range"],
                        "derivation": kpis.DERIVATION[tier]})  # fmt: skip
        if c["sustained_pflops"] is not None:
            out.append({"id": f"capacity.{c['category']}.sustained", "label": f"{c['category']} sustained (MSMF)",
                        "value": c["sustained_pflops"], "unit": "PFLOPS", "tier": "reported",
                        "date_range": c["date_range"], "derivation": kpis.DERIVATION["sustained"]})  # fmt: skip
    for r in inventory:
        out.append({"id": f"accelerators.{r['model']}", "label": f"{r['model']}: devices counted", "value": r["devices"],
                    "unit": "devices", "tier": "reported", "date_range": r["date_range"],
                    "derivation": "distinct devices in counted capacity reports, each once across the tree"})  # fmt: skip
    return out


def document(*, level: str, name: str, leaves: list[tuple[Leaf, list[dict[str, Any]]]],
             declarations: list[decl.Declaration], proof_docs: list[intake.Document], policy: Policy,
             as_of: dt.datetime, claims_input: list[dict[str, str]], audit_input: dict[str, Any] | None,
             children: list[dict[str, Any]], now: dt.datetime | None = None,
             node_docs: list[intake.Document] | None = None,
             child_docs: list[intake.Document] | None = None) -> dict[str, Any]:  # fmt: skip
    """The unsigned disclosure."""
    derived = compute(level=level, name=name, leaves=leaves, declarations=declarations, proof_docs=proof_docs,
                      policy=policy, as_of=as_of, claims_input=claims_input, audit_input=audit_input,
                      node_docs=node_docs, child_docs=child_docs)  # fmt: skip
    return {
        "kind": KIND,
        "schema_version": SCHEMA_VERSION,
        "level": level,
        "name": name,
        "created_utc": _utc(now or dt.datetime.now(dt.UTC)),
        "as_of_utc": _utc(as_of),
        "policy": policy.to_dict(),
        "inputs": {
            "capacity_reports": sorted((lf.entry() for lf, _ in leaves), key=lambda e: (e["path"], e["cluster"])),
            "proofs": sorted(
                (
                    {"sha256": d.sha256, "digest": sign.digest(d.data), "key_id": sign.signer(d.data)}
                    for d in proof_docs
                ),
                key=lambda e: e["sha256"],
            ),
            "children": children,
        },
        "declarations": [
            {"path": d.path, "text": d.text, "signature": d.signature}
            for d in sorted(declarations, key=lambda d: d.path)
        ],
        "claims_input": claims_input,
        "audit_input": audit_input,
        **derived,
    }


def child_entry(doc: intake.Document) -> dict[str, Any]:
    return {"level": doc.data["level"], "name": doc.data["name"], "sha256": doc.sha256, "digest": sign.digest(doc.data),
            "key_id": sign.signer(doc.data)}  # fmt: skip


# --- reading and re-deriving ------------------------------------------------------------------------------------------


def check(data: Any, where: str) -> dict[str, Any]:
    """A disclosure as read: valid against the published schema and signed; DisclosureError with one line otherwise."""
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise DisclosureError(f"{where}: not a bench disclosure")
    if data.get("schema_version") != SCHEMA_VERSION or isinstance(data.get("schema_version"), bool):
        raise DisclosureError(f"{where}: disclosure schema_version {data.get('schema_version')!r}; this bench reads "
                              f"{SCHEMA_VERSION}")  # fmt: skip
    error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    if error is not None:
        at = "/".join(map(str, error.absolute_path)) or "(document)"
        raise DisclosureError(f"{where}: schema: at {at}: {error.message[:300]}")
    valid, why = sign.check(data)
    if not valid:
        raise DisclosureError(f"{where}: {why}")
    return data


def inputs_of(data: dict[str, Any], store: Store, where: str, *, deep: bool = True) -> dict[str, Any]:
    """The inputs a disclosure cites, found in `store` and checked under the disclosure's own policy; with `deep`, also
    the node reports and child disclosures its readiness was derived from (what re-deriving it needs, and a roll-up
    built on it does not)."""
    policy = Policy.from_dict(data["policy"])
    leaves = []
    for e in data["inputs"]["capacity_reports"]:
        doc = store.get(e["sha256"])
        if doc is None:
            raise DisclosureError(f"{where}: capacity report {e['sha256'][:16]} ({'/'.join(e['path'])}#{e['cluster']}) "
                                  "is not in the folder")  # fmt: skip
        lf, rows = leaf(doc, tuple(e["path"]), e["cluster"], store, aggregator_ids=policy.aggregator_ids)
        if lf.digest != e["digest"]:
            raise DisclosureError(f"{where}: capacity report {e['sha256'][:16]} has digest {lf.digest[:16]}, not the "
                                  "one cited")  # fmt: skip
        leaves.append((lf, rows))
    proof_docs = []
    for e in data["inputs"]["proofs"]:
        doc = store.get(e["sha256"])
        if doc is None:
            raise DisclosureError(f"{where}: proof {e['sha256'][:16]} is not in the folder")
        proof_docs.append(doc)
    declarations = [decl.check(d["text"], d["signature"], operator_ids=policy.operator_ids, node_ids=policy.node_ids,
                               where=f"{where}: declaration of {'/'.join(d['path'])}") for d in data["declarations"]]  # fmt: skip
    node_docs: list[intake.Document] = []
    child_docs: list[intake.Document] = []
    for e in data["readiness_by_class"]["node_reports"] if deep else []:
        doc = store.get(e["sha256"])
        if doc is None:
            raise DisclosureError(f"{where}: node report {e['sha256'][:16]} (readiness) is not in the folder")
        node_docs.append(doc)
    for e in sorted(data["inputs"]["children"], key=lambda e: e["sha256"]) if deep else []:
        doc = store.get(e["sha256"])
        if doc is None:
            raise DisclosureError(f"{where}: child disclosure {e['level']} {e['name']} is not in the folder")
        check(doc.data, f"{where} > {e['level']} {e['name']}")
        child_docs.append(doc)
    return {
        "leaves": leaves,
        "declarations": declarations,
        "proof_docs": proof_docs,
        "policy": policy,
        "node_docs": node_docs,
        "child_docs": child_docs,
    }


def verifier_findings(data: dict[str, Any], where: str, *, auditor: str | None, trusted: set[str] | None,
                      aggregators: set[str] | None = None, operators: set[str] | None = None) -> list[v.Finding]:  # fmt: skip
    """The disclosure's policy held to the VERIFIER's keys, not its own: its proven tier counts only under the
    verifier's auditor key (`auditor`), and the node keys it names must be in the verifier's node trust list
    (`trusted`). A forger who makes every key (nodes, aggregator, operator, an 'auditor') re-derives clean under its
    own policy; only these keys tell it apart. Likewise the aggregators (`aggregators`: the policy's list and the key
    of every capacity report it cites) and the operators (`operators`: the policy's list and the signer of every
    declaration it embeds) must be the verifier's, when it names them."""
    policy = data["policy"]
    named = policy.get("auditor_key_id")
    proofs_by = sorted({str(e.get("key_id")) for e in data["inputs"]["proofs"] if isinstance(e, dict)})
    proven = bool(data["inputs"]["proofs"]) or data.get("audit_input") is not None
    out = []
    if auditor is not None:
        if named is not None and named != auditor:
            out.append(v.Finding(v.ERROR, "untrusted-auditor", f"the disclosure's proven tier rests on key {named}, not "
                                 f"on the verifier's --auditor-key {auditor}", where))  # fmt: skip
        others = [k for k in proofs_by if k != auditor]
        if others:
            out.append(v.Finding(v.ERROR, "untrusted-auditor", f"proofs signed by {', '.join(others)}, not by the "
                                 f"verifier's --auditor-key {auditor}", where))  # fmt: skip
        if trusted is not None and auditor in trusted:
            out.append(v.Finding(v.ERROR, "untrusted-auditor", "the auditor's key is in the node trust list", where))
    elif proven and named is not None:
        out.append(v.Finding(v.WARNING, "auditor-unnamed", f"the proven tier rests on key {named}, which the verifier "
                             "did not name (--auditor-key): anyone can make such a key", where))  # fmt: skip
    if trusted is not None:
        nodes = policy.get("node_key_ids")
        if nodes is None:
            out.append(v.Finding(v.ERROR, "untrusted-key", "the disclosure names no node trust list; the verifier's "
                                 "--trusted-keys cannot be checked against it", where))  # fmt: skip
        else:
            outside = sorted(set(nodes) - trusted)
            if outside:
                out.append(v.Finding(v.ERROR, "untrusted-key", f"node keys {', '.join(outside)} are not in the "
                                     "verifier's --trusted-keys", where))  # fmt: skip
            if named is not None and named in trusted:
                out.append(v.Finding(v.ERROR, "untrusted-auditor", f"the disclosure's auditor key {named} is in the "
                                     "verifier's node trust list", where))  # fmt: skip
    cited = {
        "aggregator": (aggregators, "--aggregator-keys", policy.get("aggregator_key_ids"),
                       {str(e.get("key_id")) for e in data["inputs"]["capacity_reports"]}, "capacity reports"),
        "operator": (operators, "--operator-keys", policy.get("operator_key_ids"),
                     {str(sign.signer(d["signature"])) for d in data["declarations"]}, "declarations"),
    }  # fmt: skip
    for what, (mine, option, listed, signers, documents) in cited.items():
        if mine is None:
            continue
        if listed is None:
            out.append(v.Finding(v.ERROR, f"untrusted-{what}", f"the disclosure names no {what} keys; the verifier's "
                                 f"{option} cannot be checked against it", where))  # fmt: skip
        elif outside := sorted(set(listed) - mine):
            out.append(v.Finding(v.ERROR, f"untrusted-{what}", f"{what} keys {', '.join(outside)} are not in the "
                                 f"verifier's {option}", where))  # fmt: skip
        if strangers := sorted(signers - mine):
            out.append(v.Finding(v.ERROR, f"untrusted-{what}", f"{documents} signed by {', '.join(strangers)}, not in "
                                 f"the verifier's {option}", where))  # fmt: skip
    return out


def _rederive_capacities(leaves: list[tuple[Leaf, list[dict[str, Any]]]], store: Store, where: str, *,
                         trusted: set[str] | None, as_of: dt.datetime, reported: set[str]) -> list[v.Finding]:  # fmt: skip
    """Each capacity report whose node reports are in the folder, recomputed from them (as `bench verify capacity.json
    --reports` does) and its counted inputs held to the verifier's node trust list: the aggregator is usually the
    operator, so its rows are otherwise its word (bounded at most by each device's own peak). Each capacity report is
    re-derived once per store, however many levels cite it."""
    from bench.model.reports import NODE_REPORT_KIND
    from bench.report import capacity as capacity_report

    # per store, and per the verifier's trust list and time (a store may serve several verifications)
    cache: dict[str, list[v.Finding] | None] = store.__dict__.setdefault("_capacity_findings", {}).setdefault(
        (tuple(sorted(trusted)) if trusted is not None else None, as_of.isoformat()), {}
    )
    if "_node_index" not in store.__dict__:
        index: dict[str, intake.Document] = {}
        for sha in list(store.paths):
            doc = store.get(sha)
            if doc is not None and isinstance(doc.data, dict) and doc.data.get("kind") == NODE_REPORT_KIND:
                try:  # a candidate is found by its digest; one that has none (not canonical JSON) no one can cite
                    index.setdefault(store.digest(doc), doc)
                except (rfc8785.CanonicalizationError, TypeError, ValueError):
                    store.skipped.append(intake.safe_name(str(store.paths[sha])))
        store.__dict__["_node_index"] = index
    index = store.__dict__["_node_index"]
    out = []
    for lf, _ in leaves:
        if lf.sha256 not in cache:
            inputs = lf.data.get("inputs") if isinstance(lf.data.get("inputs"), list) else []
            given = [(str(i.get("name")), index[i["digest"]].data) for i in inputs
                     if isinstance(i, dict) and isinstance(i.get("digest"), str) and i["digest"] in index]  # fmt: skip
            if not given:
                cache[lf.sha256] = None
            else:
                try:
                    found, _ = capacity_report.audit_capacity(lf.data, given, trusted, now=as_of)
                except Exception as exc:  # noqa: BLE001 - a hostile capacity report is one finding
                    found = [v.Finding(v.ERROR, "unchecked", f"{type(exc).__name__} while recomputing it: {exc}")]
                cache[lf.sha256] = v.errors(found)  # (warnings about trust lists are the disclosure's own, above)
        if "capacity:" + lf.sha256 in reported:  # named once per verification: every level cites the same leaves
            continue
        reported.add("capacity:" + lf.sha256)
        name = f"{where} > capacity {lf.label}"
        out += [v.Finding(f.severity, f.code, f.message, name) for f in cache[lf.sha256] or []]
        if trusted is not None:  # the node keys it counted, as it lists them (checked above where its reports are)
            inputs = lf.data.get("inputs") if isinstance(lf.data.get("inputs"), list) else []
            outside = sorted({str(i.get("key_id")) for i in inputs if isinstance(i, dict) and i.get("status") == "counted"
                              and i.get("key_id") not in trusted})  # fmt: skip
            if outside:
                out.append(v.Finding(v.ERROR, "untrusted-key", f"counts node reports signed by {', '.join(outside)}, "
                                     "not in the verifier's --trusted-keys", name))  # fmt: skip
    return out


def _not_rederived(store: Store, where: str) -> list[v.Finding]:
    """After verify: a warning naming how many capacity reports had no node reports in the folder, and one naming the
    files skipped as no document's input (unreadable, not strict JSON, or with no digest): nobody cites them, so they
    are not evidence of anything."""
    out = []
    if store.skipped:
        names = sorted(set(store.skipped))
        out.append(v.Finding(v.WARNING, "uncited-files", f"{len(names)} file(s) in the folder skipped, unreadable or "
                             f"without a digest, so no document cites them: {', '.join(names[:5])}"
                             f"{' ...' if len(names) > 5 else ''}", where))  # fmt: skip
    missing = len({sha for per in store.__dict__.get("_capacity_findings", {}).values()
                   for sha, f in per.items() if f is None})  # fmt: skip
    if not missing:
        return out
    return [*out, v.Finding(v.WARNING, "capacity-not-recomputed", f"{missing} capacity report(s) not recomputed: their node "
                      "reports are not in the folder, so their rows are the aggregator's word (a bounded row counts "
                      "only at or below its device's own peak)", where)]  # fmt: skip


def verify(
    data: dict[str, Any], store: Store, where: str = "disclosure", *, auditor: str | None = None,
    trusted: set[str] | None = None, aggregators: set[str] | None = None, operators: set[str] | None = None, _seen: set[str] | None = None, _checked: bool = False, _fork: bool = True,
) -> list[v.Finding]:  # fmt: skip
    """Re-derive a disclosure from the folder's documents and compare; then each child found there, recursively.
    Findings: errors for a bad signature or schema, a missing input, a section that differs, a child whose leaves are
    not the parent's, and a policy the verifier's own keys (`auditor`, `trusted`: see verifier_findings) refuse.
    The top level's merge of its capacity reports is shared by the levels below it (leaves.shared_merge), which take
    their rows from it where that is exactly what merging them again gives."""
    keys = {"auditor": auditor, "trusted": trusted, "aggregators": aggregators, "operators": operators}
    if _seen is not None:
        return _verify(data, store, where, **keys, _seen=_seen, _checked=_checked, _fork=_fork)
    # the store's documents (a country's millions of objects, read before) left out of the cyclic collector's walks
    # while every level is re-derived here, as compute() leaves them out in each worker
    with frozen_heap(), contextlib.ExitStack() as share:
        if _fork:
            _ahead(data, store, where, share)
        return _verify(data, store, where, **keys, _seen=set(), _checked=_checked, _fork=_fork, _share=share)


def _ahead(data: dict[str, Any], store: Store, where: str, share: contextlib.ExitStack) -> None:
    """Before verifying: the whole tree's merge (shared_merge, from the top level's capacity reports) and every level's
    figures from its rows (precomputed: all levels at once by worker processes, the largest first), entered on
    `share`, for the verification to take where its inputs are the same. Only work done ahead: what cannot be read
    here is left to the verification, which finds and words it."""
    if not isinstance(data, dict):
        return
    levels = []
    seen: set[str] = set()
    todo = [(data, where)]
    while todo:
        d, name = todo.pop()
        try:
            found = inputs_of(d, store, name, deep=False)
            levels.append({"level": d["level"], "name": d["name"], "leaves": found["leaves"],
                           "declarations": found["declarations"], "proof_docs": found["proof_docs"],
                           "policy": found["policy"], "as_of": v.parse_utc(d["as_of_utc"]),
                           "claims_input": d["claims_input"], "audit_input": d["audit_input"]})  # fmt: skip
            for e in d["inputs"]["children"]:
                child = store.get(e["sha256"]) if e["sha256"] not in seen else None
                seen.add(e["sha256"])
                if child is not None and isinstance(child.data, dict):
                    todo.append((child.data, name))
        except Exception:  # noqa: BLE001, S112 - a document that cannot be read here is the verification's to report
            continue
    if not levels or levels[0]["level"] != data.get("level") or levels[0]["name"] != data.get("name"):
        return
    top = levels[0]
    try:  # the documents are not yet checked against the schema: what fails here is the verification's to find
        share.enter_context(shared_merge(top["leaves"], trusted_aggregator=top["policy"].aggregator_ids is not None,
                                         as_of=top["as_of"], stale_after=dt.timedelta(seconds=top["policy"].stale_after_s)))  # fmt: skip
        share.enter_context(precomputed(levels))
    except Exception:  # noqa: BLE001 - nothing derived ahead; verify derives (and refuses) in place
        return


def _verify(
    data: dict[str, Any], store: Store, where: str, *, auditor: str | None, trusted: set[str] | None,
    aggregators: set[str] | None, operators: set[str] | None, _seen: set[str], _checked: bool, _fork: bool,
    _share: contextlib.ExitStack | None = None,
) -> list[v.Finding]:  # fmt: skip
    """verify(); with `_share`, the merge of this level's leaves is shared (entered on it) with the levels below."""
    seen = _seen
    try:
        if not _checked:  # a child is checked (schema and signature) by its parent's inputs_of before it is visited
            check(data, where)
        keys = verifier_findings(data, where, auditor=auditor, trusted=trusted, aggregators=aggregators,
                                 operators=operators)  # fmt: skip
        found = inputs_of(data, store, where)
        if _share is not None:
            _share.enter_context(shared_merge(found["leaves"], trusted_aggregator=found["policy"].aggregator_ids is not None,
                                              as_of=v.parse_utc(data["as_of_utc"]),
                                              stale_after=dt.timedelta(seconds=found["policy"].stale_after_s)))  # fmt: skip
        derived = compute(level=data["level"], name=data["name"], as_of=v.parse_utc(data["as_of_utc"]),
                          claims_input=data["claims_input"], audit_input=data["audit_input"], **found)  # fmt: skip
    except (DisclosureError, decl.DeclarationError, cl.ClaimError, ValueError) as exc:
        return [v.Finding(v.ERROR, "disclosure", str(exc), where)]
    out = keys
    out += _rederive_capacities(found["leaves"], store, where, trusted=trusted, as_of=v.parse_utc(data["as_of_utc"]),
                                reported=seen)  # fmt: skip
    wrong = [k for k in DERIVED if not _same(data.get(k), derived.get(k))]
    if wrong:
        out.append(v.Finding(v.ERROR, "disclosure-mismatch", f"{', '.join(wrong)} differ from the re-derivation from "
                             "the level below", where))  # fmt: skip
    mine = {e["sha256"] for e in data["inputs"]["capacity_reports"]}
    below: set[str] = set()
    listed = [c["sha256"] for c in data["inputs"]["children"]]
    if len(set(listed)) != len(listed):
        out.append(v.Finding(v.ERROR, "disclosure", "a child disclosure is listed more than once", where))
    present = [store.get(sha) for sha in dict.fromkeys(listed)]
    try:
        _children_once([d for d in present if d is not None])
    except DisclosureError as exc:
        out.append(v.Finding(v.ERROR, "disclosure", str(exc), where))
    keys = {"auditor": auditor, "trusted": trusted, "aggregators": aggregators, "operators": operators}
    parts: list[list[v.Finding] | tuple[dict[str, Any], str]] = []  # findings, or a child to verify, in order
    for child in data["inputs"]["children"]:
        doc = store.get(child["sha256"])
        name = f"{where} > {child['level']} {child['name']}"
        if doc is None:
            parts.append([v.Finding(v.ERROR, "missing-input", "child disclosure is not in the folder", name)])
            continue
        if DEPTH.get(doc.data.get("level"), 0) <= DEPTH[data["level"]]:
            parts.append([v.Finding(v.ERROR, "disclosure", "a child must sit at a lower level than its parent", name)])
        below |= {e["sha256"] for e in doc.data.get("inputs", {}).get("capacity_reports", []) if isinstance(e, dict)}
        if child["sha256"] not in seen:
            seen.add(child["sha256"])
            parts.append((doc.data, name))
    tasks = [p for p in parts if isinstance(p, tuple)]
    if _fork and forks(len(tasks)) and _apart(tasks, store, seen):
        # the children's subtrees share no disclosure and no capacity report this level has not named already: each
        # verified by a worker process (which inherits the store and this level's checks), as the loop would; what
        # each saw is then seen here too (a sibling of this level, verified next in turn, skips it as the loop does)
        results = map_forked(_verify_child, [(d, store, name, keys, seen) for d, name in tasks])
        done = iter(results)
        out += [f for p in parts for f in (next(done)[0] if isinstance(p, tuple) else p)]
        for _, saw in results:
            seen |= saw
    else:
        for p in parts:
            out += (
                verify(p[0], store, p[1], **keys, _seen=seen, _checked=True, _fork=_fork) if isinstance(p, tuple) else p
            )
    if data["inputs"]["children"] and below != mine:
        out.append(v.Finding(v.ERROR, "disclosure-mismatch", "the capacity reports of the children are not the ones "
                             "this level counts", where))  # fmt: skip
    return out


def _verify_child(task: tuple[Any, ...]) -> tuple[list[v.Finding], set[str]]:
    """verify() of one child (a worker's task: its document, store, name, the verifier's keys, what was seen): its
    findings, and what it saw that was not seen before."""
    data, store, where, keys, seen = task
    mine = set(seen)
    return verify(data, store, where, **keys, _seen=mine, _checked=True, _fork=False), mine - seen


def _apart(tasks: list[tuple[dict[str, Any], str]], store: Store, seen: set[str]) -> bool:
    """Whether verifying each child apart gives what verifying them in turn gives: no disclosure below them is reached
    from two of them (in turn, the second would find it seen and skip it), and every capacity report they cite is one
    `seen` names (the level above reported it; otherwise the first child citing it would, the second not)."""
    reached: set[str] = set()
    for data, _ in tasks:
        stack = [data]
        while stack:
            d = stack.pop()
            inputs = d.get("inputs") if isinstance(d, dict) else None
            if not isinstance(inputs, dict):
                return False
            for e in inputs.get("capacity_reports") or []:
                if not isinstance(e, dict) or "capacity:" + str(e.get("sha256")) not in seen:
                    return False
            for e in inputs.get("children") or []:
                sha = e.get("sha256") if isinstance(e, dict) else None
                if not isinstance(sha, str) or sha in reached or sha in seen:
                    return False
                reached.add(sha)
                doc = store.get(sha)
                if doc is not None:
                    stack.append(doc.data)
    return True


def examine(data: dict[str, Any], folder: Path | None, where: str, *, auditor: str | None = None,
            trusted: set[str] | None = None, aggregators: set[str] | None = None,
            operators: set[str] | None = None) -> list[v.Finding]:  # fmt: skip
    """For `bench verify`: a disclosure re-derived from the documents under `folder`, held to the verifier's own
    auditor key and node trust list. Without a folder only its schema, signature and policy are checked, and a
    warning says that no figure was re-derived (as a capacity report without --reports)."""
    if folder is None:
        try:
            check(data, where)
            keys = verifier_findings(data, where, auditor=auditor, trusted=trusted, aggregators=aggregators,
                                     operators=operators)  # fmt: skip
        except DisclosureError as exc:
            return [v.Finding(v.ERROR, "disclosure", str(exc), where)]
        return [*keys, v.Finding(v.WARNING, "not-recomputed", "no --from: nothing was re-derived; only the signature "
                                 "and policy were checked, so no figure or tier in it is verified", where)]  # fmt: skip
    try:
        store = Store(folder)
        return [*verify(data, store, where, auditor=auditor, trusted=trusted, aggregators=aggregators,
                        operators=operators), *_not_rederived(store, where)]  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - a hostile document is one failed entry, never a traceback
        return [v.Finding(v.ERROR, "unchecked", f"{type(exc).__name__} while re-deriving it: {exc}", where)]


def load(path: Path) -> dict[str, Any]:
    try:
        data = intake.read_json(path).data
    except intake.InputError as exc:
        raise DisclosureError(str(exc)) from None
    return check(data, str(path))


# --- the two ways to make one ------------------------------------------------------------------------------------------


def site(declaration: decl.Declaration, capacities: list[tuple[str, intake.Document]], store: Store, *,
         policy: Policy, proof_docs: list[intake.Document], as_of: dt.datetime, claims_input: list[dict[str, str]],
         audit_input: dict[str, Any] | None, now: dt.datetime | None = None,
         node_docs: list[intake.Document] | None = None) -> dict[str, Any]:  # fmt: skip
    """A site's disclosure: its declaration and one capacity report per declared cluster; with `node_docs` (the node
    reports, any of which its capacity reports counted), readiness per node class."""
    declared = {c["name"] for c in declaration.data["clusters"]}
    given = [c for c, _ in capacities]
    if len(set(given)) != len(given):
        raise DisclosureError("a cluster was given two capacity reports")
    if set(given) != declared:
        raise DisclosureError(f"the declaration lists clusters {', '.join(sorted(declared))}; capacity reports were "
                              f"given for {', '.join(sorted(given)) or 'none'}")  # fmt: skip
    path = tuple(declaration.path)
    leaves = [leaf(doc, path, cluster, store, aggregator_ids=policy.aggregator_ids) for cluster, doc in capacities]
    return document(level="site", name=path[-1], leaves=leaves, declarations=[declaration], proof_docs=proof_docs,
                    policy=policy, as_of=as_of, claims_input=claims_input, audit_input=audit_input, children=[],
                    now=now, node_docs=node_docs)  # fmt: skip


def _children_once(children: list[intake.Document]) -> None:
    """A child appears once (by its signed digest), and no two children cite the same capacity report: otherwise a
    child listed three times (or a site both directly and through its city) weighs three times in readiness and node
    counts, though its devices are counted once."""
    digests: dict[str, str] = {}
    leaves: dict[str, str] = {}
    for child in children:
        where = intake.safe_name(str(child.path))
        if not isinstance(child.data, dict):
            continue
        digest = sign.digest(child.data)
        if digest in digests:
            raise DisclosureError(f"{where}: the same child disclosure as {digests[digest]}: a child is listed once")
        digests[digest] = where
        cited = (
            child.data.get("inputs", {}).get("capacity_reports", [])
            if isinstance(child.data.get("inputs"), dict)
            else []
        )
        for e in cited if isinstance(cited, list) else []:
            sha = e.get("sha256") if isinstance(e, dict) else None
            if sha in leaves and leaves[sha] != where:
                raise DisclosureError(f"{where}: cites capacity report {str(sha)[:16]}, as {leaves[sha]} does: children "
                                      "may not overlap")  # fmt: skip
            leaves[str(sha)] = where


def rollup(level: str, name: str, children: list[intake.Document], store: Store, *, policy: Policy,
           proof_docs: list[intake.Document], as_of: dt.datetime, claims_input: list[dict[str, str]],
           audit_input: dict[str, Any] | None, now: dt.datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """A city, region or country from the disclosures of the level below: every figure recomputed from their capacity
    reports (found in `store`) under this disclosure's own policy, each device once across all of them."""
    if level not in LEVELS[:-1]:
        raise DisclosureError(f"a roll-up level is one of {', '.join(LEVELS[:-1])}, got {level!r}")
    if not children:
        raise DisclosureError("a roll-up needs at least one child disclosure")
    leaves: dict[str, tuple[Leaf, list[dict[str, Any]]]] = {}
    declarations: dict[tuple[str, ...], decl.Declaration] = {}
    proofs_by_sha = {d.sha256: d for d in proof_docs}
    _children_once(children)
    for child in children:
        where = intake.safe_name(str(child.path))
        check(child.data, where)
        if DEPTH[child.data["level"]] <= DEPTH[level]:
            raise DisclosureError(f"{where}: a {child.data['level']} cannot be a child of a {level}")
        found = inputs_of(child.data, store, where, deep=False)
        for lf, rows in found["leaves"]:
            leaves.setdefault(lf.sha256, (lf, rows))
        for d in found["declarations"]:
            previous = declarations.setdefault(tuple(d.path), d)
            if previous.text != d.text:
                raise DisclosureError(f"{where}: two different declarations for site {'/'.join(d.path)}")
        for d in found["proof_docs"]:
            proofs_by_sha.setdefault(d.sha256, d)
    # each declaration is checked again under this level's policy (operator and node keys)
    checked = [decl.check(d.text, d.signature, operator_ids=policy.operator_ids, node_ids=policy.node_ids,
                          where=f"declaration of {'/'.join(d.path)}") for d in declarations.values()]  # fmt: skip
    # leaves are re-read under this level's aggregator policy (their signatures were checked once, by the store)
    relaid = [leaf(lf_doc, lf.path, lf.cluster, store, aggregator_ids=policy.aggregator_ids)
              for lf, _ in leaves.values() for lf_doc in [store.get(lf.sha256)] if lf_doc is not None]  # fmt: skip
    return document(level=level, name=name, leaves=relaid, declarations=checked,
                    proof_docs=sorted(proofs_by_sha.values(), key=lambda d: d.sha256), policy=policy, as_of=as_of,
                    claims_input=claims_input, audit_input=audit_input,
                    children=sorted((child_entry(c) for c in children), key=lambda e: (e["level"], e["name"], e["sha256"])),
                    now=now, child_docs=sorted(children, key=lambda c: c.sha256))  # fmt: skip
