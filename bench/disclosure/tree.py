"""A whole region's disclosures in one process (`bench disclose tree DIR`): every site folder under DIR (its signed
declaration, the capacity report of each declared cluster, and optionally its node reports), then every city, region
and country above them, each built by the same functions as `bench disclose site` and `bench disclose rollup` and so
the same documents, but with every input file read once into one store (the per-level verbs read the whole folder on
each call: a country of 200 sites through the CLI read it 25 times).

A site folder is a folder holding a declaration TOML with its detached signature (`NAME.toml` + `NAME.toml.sig.json`).
Its JSON files (searched recursively, the output folder excepted) are sorted by kind: a capacity report named
`capacity.json` belongs to the declaration's only cluster, one named `capacity-CLUSTER.json` to that cluster; node
reports feed readiness per node class (only those a counted capacity input names by digest count). Anything else is
refused by name, so a file meant as evidence is never silently left out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.disclosure import declaration as decl
from bench.disclosure import document as dd
from bench.disclosure.leaves import DisclosureError, Rows, Store, leaf, shared_merge
from bench.model import intake
from bench.model.reports import CAPACITY_KIND, NODE_REPORT_KIND
from bench.report import capacity
from bench.report.pool import frozen_heap, map_forked
from bench.report.rules import Rules
from bench.report.store import signed_dumps, write_atomic

#: The file a capacity report of the declaration's only cluster is read from; else CAPACITY_PREFIX + cluster + ".json".
CAPACITY_FILE = "capacity.json"
CAPACITY_PREFIX = "capacity-"


@dataclass
class SiteFolder:
    """One site's inputs as found on disk (paths only: read once, later, all together)."""

    folder: Path
    declaration: Path
    capacity: dict[str, Path] = field(default_factory=dict)
    reports: list[Path] = field(default_factory=list)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def find_sites(root: Path, *, exclude: Path | None = None) -> list[SiteFolder]:
    """Every site folder under `root` (a folder holding NAME.toml and NAME.toml.sig.json), its JSON files named, in
    path order. A folder with two declarations, or a site folder inside another, is refused: whose files are whose
    would be a guess."""
    sites: dict[Path, SiteFolder] = {}
    for toml in sorted(root.rglob("*.toml")):
        if exclude is not None and _inside(toml, exclude):
            continue
        if not toml.with_name(toml.name + decl.SIGNATURE_SUFFIX).is_file():
            continue  # not a signed declaration (a claims file, a rules file)
        if toml.parent in sites:
            raise DisclosureError(f"{toml.parent}: two signed declarations in one site folder "
                                  f"({sites[toml.parent].declaration.name}, {toml.name})")  # fmt: skip
        sites[toml.parent] = SiteFolder(toml.parent, toml)
    # a site folder inside another is one of whose parents is a site folder: looked up by its parents (a few each),
    # not by testing every pair (a country's 200 sites were 40,000 tests of a path's parents, a second of this process
    # before any worker started); the one named is the first in path order, as testing every pair named it
    order = {f: i for i, f in enumerate(sites)}
    for folder in sites:
        outer = sorted((f for f in folder.parents if f in order), key=order.__getitem__)
        if outer:
            raise DisclosureError(f"{folder}: a site folder inside site folder {outer[0]}")
    if not sites:
        raise DisclosureError(f"{root}: no site folder (a declaration NAME.toml with its signature NAME.toml.sig.json)")
    return [sites[f] for f in sorted(sites)]


def _json_files(site: SiteFolder, exclude: Path | None) -> list[Path]:
    return [p for p in sorted(site.folder.rglob("*.json"))
            if not p.name.endswith(decl.SIGNATURE_SUFFIX) and not (exclude is not None and _inside(p, exclude))]  # fmt: skip


@dataclass
class Built:
    """A disclosure as written: its level, name, path of disclosure.json and the document read back from its bytes."""

    level: str
    name: str
    path: Path
    doc: intake.Document


def build(root: Path, *, policy: dd.Policy, as_of: dt.datetime, write: Callable[[dict[str, Any], Path], bytes],
          output: Path, proof_paths: list[Path] = (), claims_input: list[dict[str, str]] | None = None,
          audit_input: dict[str, Any] | None = None, now: dt.datetime | None = None,
          aggregator_key: Ed25519PrivateKey | None = None) -> list[Built]:  # fmt: skip
    """Every level from the site folders under `root` to each country, written under `output` as
    output/COUNTRY[/REGION[/CITY[/SITE]]]/disclosure.json (write(doc, folder) signs and writes one, returning the
    disclosure.json bytes). Claims and the audit request apply to the country (the level a claim is usually about,
    and the population an auditor samples); proofs to every level whose devices they name. Returns the disclosures
    built, country first.

    With `aggregator_key`, a declared cluster without a capacity report is aggregated here from its node reports (the
    site folder's, or for a site of several clusters those under its folder named for the cluster), as `bench
    aggregate --trusted-keys (the policy's node keys) --max-age (its stale-after)` would at the disclosure date, signed
    with that key and written beside the site's disclosure as capacity[-CLUSTER].json: the node reports are read once,
    for the capacity report and for readiness."""
    root, output = root.resolve(), output.resolve()
    sites = find_sites(root, exclude=output)
    store = Store()
    # the capacity reports (found by name) read first, all together, their signatures checked by worker processes; the
    # node reports one site at a time (a country's are gigabytes), each file read once either way
    files = [(s, p) for s in sites for p in _json_files(s, output) if _is_capacity_name(p)]
    for (s, path), doc in zip(files, store.add_many([p for _, p in files]), strict=True):
        kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
        if kind != CAPACITY_KIND:
            raise DisclosureError(f"{path}: named as a capacity report, but its kind is {kind!r}")
        if path.name in s.capacity:
            raise DisclosureError(f"{path}: a second {path.name} in site folder {s.folder}")
        s.capacity[path.name] = doc  # keyed by file name until the declaration says which clusters exist
    for s in sites:
        s.reports = [p for p in _json_files(s, output) if not _is_capacity_name(p)]
    proof_docs = store.add_many(list(proof_paths))
    # the whole tree's merge, shared by its levels (capacity reports alone); the documents read (a country's millions of
    # objects) left out of the cyclic collector's walks while the levels are built here, as compute() leaves them out
    with frozen_heap(), contextlib.ExitStack() as stack:
        return _levels(sites, store, stack, policy=policy, as_of=as_of, write=write, output=output,
                       proof_docs=proof_docs, claims_input=claims_input, audit_input=audit_input, now=now,
                       aggregator_key=aggregator_key)  # fmt: skip


def _levels(sites: list[SiteFolder], store: Store, stack: contextlib.ExitStack, *, policy: dd.Policy,
            as_of: dt.datetime, write: Callable[[dict[str, Any], Path], bytes], output: Path,
            proof_docs: list[intake.Document], claims_input: list[dict[str, str]] | None,
            audit_input: dict[str, Any] | None, now: dt.datetime | None,
            aggregator_key: Ed25519PrivateKey | None) -> list[Built]:  # fmt: skip
    """build()'s levels, from the sites found and their capacity reports read into `store`."""
    built: list[Built] = []
    by_city: dict[tuple[str, str, str], list[Built]] = {}
    if any(s.reports for s in sites) or aggregator_key is not None:
        # node reports are read one site at a time (a country's are gigabytes): these sites are built in turn
        sited = []
        for s in sites:
            d = decl.read(s.declaration, operator_ids=policy.operator_ids, node_ids=policy.node_ids)
            node_docs = _node_reports(s)
            if aggregator_key is not None:
                _aggregate_missing(s, d, node_docs or [], store, output.joinpath(*d.path), key=aggregator_key,
                                   policy=policy, as_of=as_of)  # fmt: skip
            sited.append(_site((s, d, store, policy, proof_docs, as_of, now, node_docs)))
    else:
        # capacity reports alone: every site's document built by worker processes (which inherit the store), after
        # each capacity report's rows are checked and laid out here once, for them and for the levels above
        _lay_out(sites, store, policy)
        placed = _all_leaves(sites, store, policy)
        shared = [x for _, pairs in placed for x in pairs]
        stack.enter_context(shared_merge(shared, trusted_aggregator=policy.aggregator_ids is not None, as_of=as_of,
                                         stale_after=dt.timedelta(seconds=policy.stale_after_s)))  # fmt: skip
        # every roll-up's figures from its rows derived at once by worker processes, the largest first (the country's
        # alone took a core for seconds after the regions), for the roll-ups below to take (dd.precomputed); the sites'
        # documents built by the same workers after them
        sited = stack.enter_context(dd.precomputed(
            _rollups(placed, policy=policy, proof_docs=proof_docs, as_of=as_of, claims_input=claims_input,
                     audit_input=audit_input),
            along=(_site, [(s, None, store, policy, proof_docs, as_of, now, None) for s in sites])))  # fmt: skip
    for path, doc in sited:
        b = _keep(store, write, doc, output.joinpath(*path), "site", path[-1])
        by_city.setdefault(tuple(path[:3]), []).append(b)
        built.append(b)

    def roll(level: str, groups: dict[tuple[str, ...], list[Built]], top: bool) -> list[Built]:
        """Every roll-up of one level, by worker processes: the levels below are in the store they inherit."""
        docs = map_forked(_rollup, [(level, key[-1], [c.doc for c in children], store, policy, as_of,
                                     (claims_input or []) if top else [], audit_input if top else None, now)
                                    for key, children in groups.items()])  # fmt: skip
        return [_keep(store, write, doc, output.joinpath(*key), level, key[-1])
                for key, doc in zip(groups, docs, strict=True)]  # fmt: skip

    by_region: dict[tuple[str, str], list[Built]] = {}
    cities = dict(sorted(by_city.items()))
    for key, b in zip(cities, roll("city", cities, False), strict=True):
        by_region.setdefault(key[:2], []).append(b)
        built.append(b)
    by_country: dict[tuple[str, ...], list[Built]] = {}
    regions = dict(sorted(by_region.items()))
    for key, b in zip(regions, roll("region", regions, False), strict=True):
        by_country.setdefault(key[:1], []).append(b)
        built.append(b)
    countries = roll("country", dict(sorted(by_country.items())), True)
    return countries + built


def _lay_out(sites: list[SiteFolder], store: Store, policy: dd.Policy) -> None:
    """Each capacity report's rows checked and laid out (columns, frame, order) in this process before workers fork,
    so that none of them, and no level above, does it again. A report that fails is left to its site's worker, which
    refuses it in site order, as building the sites in turn would."""
    for s in sites:
        for doc in s.capacity.values():
            try:
                _, rows = leaf(doc, ("",), "", store, aggregator_ids=policy.aggregator_ids)
            except DisclosureError:
                continue
            if isinstance(rows, Rows):
                rows.frame(), rows.ranks()


def _all_leaves(sites: list[SiteFolder], store: Store,
                policy: dd.Policy) -> list[tuple[decl.Declaration, list[tuple[Any, Any]]]]:  # fmt: skip
    """Each site's declaration and capacity reports as leaves (with their rows) as its site's worker will place them,
    for shared_merge and the roll-ups' figures; none where any site cannot be placed (its declaration or a report
    refused): the sites' workers then refuse it in site order, as before."""
    out = []
    try:
        for s in sites:
            d = decl.read(s.declaration, operator_ids=policy.operator_ids, node_ids=policy.node_ids)
            out.append((d, [leaf(doc, tuple(d.path), cluster, store, aggregator_ids=policy.aggregator_ids)
                            for cluster, doc in _clusters(s, d)]))  # fmt: skip
    except (DisclosureError, decl.DeclarationError, ValueError):
        return []
    return out


def _rollups(placed: list[tuple[decl.Declaration, list[tuple[Any, Any]]]], *, policy: dd.Policy,
             proof_docs: list[intake.Document], as_of: dt.datetime, claims_input: list[dict[str, str]] | None,
             audit_input: dict[str, Any] | None) -> list[dict[str, Any]]:  # fmt: skip
    """dd.from_rows' inputs of every city, region and country above the sites as _levels will roll them up: the leaves
    and declarations of their sites, the proofs those sites cite, the claims and audit request at the country. Inputs
    guessed otherwise than the roll-up's own are harmless (dd.inputs_key then differs, and the roll-up derives its
    figures itself)."""
    groups: dict[tuple[str, ...], list[tuple[decl.Declaration, list[tuple[Any, Any]], list[intake.Document]]]] = {}
    for d, pairs in placed:
        mine = _proofs_of(pairs, proof_docs)
        for depth in (1, 2, 3):
            groups.setdefault(tuple(d.path[:depth]), []).append((d, pairs, mine))
    out = []
    for key, members in groups.items():
        proofs = {p.sha256: p for _, _, mine in members for p in mine}
        top = len(key) == 1
        out.append({"level": dd.LEVELS[len(key) - 1], "name": key[-1],
                    "leaves": [x for _, pairs, _ in members for x in pairs], "declarations": [d for d, _, _ in members],
                    "proof_docs": sorted(proofs.values(), key=lambda p: p.sha256), "policy": policy, "as_of": as_of,
                    "claims_input": (claims_input or []) if top else [], "audit_input": audit_input if top else None})  # fmt: skip
    return out


def _proofs_of(pairs: list[tuple[Any, Any]], proof_docs: list[intake.Document]) -> list[intake.Document]:
    """The proofs that name a device the capacity reports of `pairs` (a site's: (cluster or leaf, document)) count."""
    if not proof_docs:
        return []
    counted = {row.get("device") for _, doc in pairs for row in doc.data.get("devices", []) if isinstance(row, dict)}
    return [p for p in proof_docs if any(isinstance(x, dict) and x.get("device") in counted
                                         for x in (p.data.get("devices") or []))]  # fmt: skip


def _site(task: tuple[Any, ...]) -> tuple[list[str], dict[str, Any]]:
    """One site's disclosure (unsigned) and its place: `task` is (site folder, its declaration or None to read it,
    store, policy, proofs, as_of, now, node reports or None)."""
    s, d, store, policy, proof_docs, as_of, now, node_docs = task
    if d is None:
        d = decl.read(s.declaration, operator_ids=policy.operator_ids, node_ids=policy.node_ids)
    pairs = _clusters(s, d)
    for name in d.path:
        if name in (".", "..") or name.startswith("."):
            raise DisclosureError(f"{s.declaration}: place name {name!r} cannot name a folder of the output")
    mine = _proofs_of(pairs, proof_docs)
    doc = dd.site(d, pairs, store, policy=policy, proof_docs=mine, as_of=as_of, claims_input=[], audit_input=None,
                  now=now, node_docs=node_docs)  # fmt: skip
    return list(d.path), doc


def _rollup(task: tuple[Any, ...]) -> dict[str, Any]:
    """One roll-up (unsigned): `task` is (level, name, child documents, store, policy, as_of, claims, audit, now)."""
    level, name, children, store, policy, as_of, claims_input, audit_input, now = task
    return dd.rollup(level, name, children, store, policy=policy, proof_docs=[], as_of=as_of,
                     claims_input=claims_input, audit_input=audit_input, now=now)  # fmt: skip


def _aggregate_missing(site: SiteFolder, d: decl.Declaration, node_docs: list[intake.Document], store: Store,
                       folder: Path, *, key: Ed25519PrivateKey, policy: dd.Policy, as_of: dt.datetime) -> None:  # fmt: skip
    """Each declared cluster of `site` without a capacity report, aggregated from its node reports (build's docstring),
    signed, written into `folder` and kept in the store as written."""
    names = [c["name"] for c in d.data["clusters"]]
    for cluster in names:
        file = CAPACITY_FILE if len(names) == 1 else f"{CAPACITY_PREFIX}{cluster}.json"
        if file in site.capacity or f"{CAPACITY_PREFIX}{cluster}.json" in site.capacity:
            continue
        mine = node_docs if len(names) == 1 else [n for n in node_docs if _inside(n.path, site.folder / cluster)]
        if not mine:
            continue  # _clusters names the missing capacity report
        cap = capacity.aggregate([(str(n.path), n.data) for n in mine], trusted=policy.node_ids, now=as_of,
                                 rules=Rules(max_age_s=policy.stale_after_s))  # fmt: skip
        raw = signed_dumps(cap, key).encode("utf-8")  # sign.sign and dumps in one walk (as bench aggregate writes)
        write_atomic(folder / file, raw)
        site.capacity[file] = store.keep(folder / file, raw)


def _is_capacity_name(path: Path) -> bool:
    return path.name == CAPACITY_FILE or (path.name.startswith(CAPACITY_PREFIX) and path.suffix == ".json")


def _node_reports(site: SiteFolder) -> list[intake.Document] | None:
    """The site's node reports (readiness per node class), read now in worker processes and not kept afterwards: a
    disclosure written there by the per-level verbs is output, not input, and is skipped; any other file is refused."""
    if not site.reports:
        return None
    out = []
    for path, doc in zip(site.reports, Store().add_many(site.reports), strict=True):
        kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
        if kind == NODE_REPORT_KIND:
            out.append(doc)
        elif kind != dd.KIND:
            raise DisclosureError(f"{path}: neither a capacity report nor a node report (kind {kind!r})")
    return out


def _clusters(site: SiteFolder, d: decl.Declaration) -> list[tuple[str, intake.Document]]:
    """Each declared cluster's capacity report, by file name (CAPACITY_FILE for a one-cluster site)."""
    names = [c["name"] for c in d.data["clusters"]]
    wanted = {CAPACITY_FILE: names[0]} if len(names) == 1 else {}
    wanted |= {f"{CAPACITY_PREFIX}{n}.json": n for n in names}
    pairs = []
    for file, doc in sorted(site.capacity.items()):
        if file not in wanted:
            raise DisclosureError(f"{doc.path}: a capacity report's file names its cluster "
                                  f"({', '.join(sorted(wanted))}); this one names none of {', '.join(names)}")  # fmt: skip
        pairs.append((wanted[file], doc))
    missing = sorted(set(names) - {c for c, _ in pairs})
    if missing:
        raise DisclosureError(f"{site.folder}: no capacity report for cluster(s) {', '.join(missing)} "
                              f"(expected {', '.join(f'{CAPACITY_PREFIX}{n}.json' for n in missing)})")  # fmt: skip
    return pairs


def _keep(store: Store, write: Callable[[dict[str, Any], Path], bytes], doc: dict[str, Any], folder: Path,
          level: str, name: str) -> Built:  # fmt: skip
    """Sign and write a level, and keep it in the store as its written bytes read back (not the file read again): the
    parent cites exactly what a reader of the file would read."""
    path = folder / "disclosure.json"
    raw = write(doc, folder)
    return Built(level, name, path, store.keep(path, raw))
