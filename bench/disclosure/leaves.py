"""The leaves of a disclosure tree: signed capacity reports, each one cluster of one site, and the device-once rule.

Every level of the roll-up (site, city, region, country) is computed from the same leaves, so a parent is re-derivable
from the level below and a device is counted once across the whole tree: rows of all leaves are deduplicated together
by the identities capacity aggregation uses (UUID, NVML serial, board id, host + PCI id, samples digest), newest first.
A site that lists another site's devices gains nothing: the device is counted in one place and the duplicate is named.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import dataclasses
import datetime as dt
import gc
import hashlib
import itertools
import math
import multiprocessing
import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.model import intake, sign
from bench.model.reports import CapacityReport, ReportError
from bench.report import capacity as cap
from bench.report import verify as v
from bench.report.pool import usable_cores


class DisclosureError(ValueError):
    """An input a disclosure cannot be built from; one line naming the file and why (exit 2)."""


@dataclass(frozen=True)
class Leaf:
    """One capacity report placed in the tree: its site path (country, region, city, site), cluster and digests."""

    path: tuple[str, ...]
    cluster: str
    digest: str  # sign.digest: the signed identity, as capacity reports cite node reports
    sha256: str  # of the file's bytes: how a folder of inputs is searched without canonicalizing every file
    key_id: str | None
    data: dict[str, Any] = field(compare=False, repr=False)

    @property
    def label(self) -> str:
        return "/".join(self.path) + "#" + self.cluster

    def entry(self) -> dict[str, Any]:
        return {"path": list(self.path), "cluster": self.cluster, "digest": self.digest, "sha256": self.sha256,
                "key_id": self.key_id}  # fmt: skip


#: Row fields a capacity report's device entry must carry, with the types accepted (None allowed where listed).
_ROW_TYPES: dict[str, tuple[type, ...]] = {
    "device": (str,), "precision": (str,), "kind": (str, type(None)), "model": (str, type(None)),
    "node": (str, type(None)), "host": (str, type(None)), "mamf_tflops": (int, float),
    "msmf_tflops": (int, float, type(None)), "peak_tflops": (int, float, type(None)),
    "memory_bytes": (int, type(None)), "measured_utc": (str,), "tier": (str,), "why": (str, type(None)),
    "serial": (str, type(None)), "board": (str, type(None)), "pci": (str, type(None)), "samples": (str, type(None)),
}  # fmt: skip


#: Above any device by orders of magnitude (an H100 is ~2,000 TFLOPS at fp8): a row above it is refused, so that the
#: sums of a million rows stay finite.
MAX_DEVICE_TFLOPS = 1e7
_TFLOPS = ("mamf_tflops", "msmf_tflops", "peak_tflops")


class Rows(list):  # type: ignore[type-arg] - a list of device-row dicts
    """A capacity report's checked device rows, with their columns laid out once (`columns`): every level of a tree
    merges the same leaves, and picking a million rows' fields out of dicts was a fifth of a country's merge."""

    _columns: dict[str, list[Any]] | None = None
    _ranks: list[int] | None = None
    _frame: pd.DataFrame | None = None
    #: every row's keys, in order, where columns() found all rows plain dicts with one order of keys (else None)
    _order: tuple[str, ...] | None = None

    def columns(self) -> dict[str, list[Any]]:
        """Each field's values in row order, with each field's equal strings one object (_shared): the same values."""
        if self._columns is None:
            transposed = _transposed(self)
            if transposed is None:
                self._columns = {key: _shared([r.get(key) for r in self]) if key in _STRING_FIELDS else
                                 [r.get(key) for r in self] for key in _ROW_TYPES}  # fmt: skip
            else:
                self._order, by_key = transposed
                self._columns = {}
                for key in _ROW_TYPES:
                    column = by_key[key] if key in by_key else [None] * len(self)
                    self._columns[key] = _shared(column) if key in _STRING_FIELDS else column
        return self._columns

    def frame(self) -> pd.DataFrame:
        """The columns as a DataFrame (each column's dtype inferred from this report's rows alone), built once."""
        if self._frame is None:
            self._frame = pd.DataFrame(self.columns(), columns=list(_ROW_TYPES))
        return self._frame

    def ranks(self) -> list[int]:
        """Each row's place in this report's rows ordered by (precision, device id)."""
        if self._ranks is None:
            columns = self.columns()
            keys = list(zip(columns["precision"], columns["device"], strict=True))
            self._ranks = [0] * len(keys)
            for rank, i in enumerate(sorted(range(len(keys)), key=keys.__getitem__)):
                self._ranks[i] = rank
        return self._ranks


#: The row fields whose equal strings Rows.columns makes one object (_shared): those a level's figures read (the
#: identities only the merge reads, in the parent, are mostly one per device and are left as they are).
_STRING_FIELDS = frozenset({"device", "precision", "kind", "model", "node", "host", "measured_utc", "tier", "why"})


def _transposed(rows: list[Any]) -> tuple[tuple[str, ...], dict[str, list[Any]]] | None:
    """(the rows' keys, each key's values in row order) where every row is a plain dict with the same keys in the same
    order (as a capacity report's rows are parsed: canonical JSON sorts them), taken apart at once by C loops (zip of
    the rows' values); None otherwise, or for no rows. `[r.get(key) for r in rows]` for each field was a twelfth of
    reading a capacity report."""
    if not rows or set(map(type, rows)) != {dict}:
        return None
    orders = set(map(tuple, rows))
    if len(orders) != 1:
        return None
    (order,) = orders
    return order, {key: list(column) for key, column in zip(order, zip(*map(dict.values, rows)), strict=True)}


def _shared(values: list[Any]) -> list[Any]:
    """`values` with equal strings as one object each: the same values, only which object holds each is changed. A
    parsed capacity report holds a new string object for every row's precision, model, tier, time, host and so on,
    and so did the frame of a country's million rows. A forked worker deriving a level touches every object it
    meets (a reference count, a cached hash), and each page it touches is copied from its parent: a country's level
    took 8 to 14 s of CPU in a worker, 4.3 in the parent, and with these shared 3.4 in either (measured at 100,000
    nodes, load 2). Only strings: a column holding anything else (1, 1.0 and True are equal keys) is left as it is."""
    if not set(map(type, values)) <= {str, type(None)}:
        return values  # not yet checked (check_capacity reads these columns to check them): left as they are
    one = {x: x for x in values}  # each value's object: the last of its equals
    return [one[x] for x in values]


def _valid_columns(rows: Rows) -> bool:
    """The checks of _rows' loop, column by column (sets of exact types, numpy for the numbers): True when every row
    passes them. False sends the rows through the loop, which names the first that fails; so this may refuse more than
    the loop (a subclass, a number beyond binary64), never less. A country's rows are checked at every level."""
    if set(map(type, rows)) - {dict}:
        return False
    columns = rows.columns()
    try:
        for key, types in _ROW_TYPES.items():
            column = columns[key]
            if not set(map(type, column)) <= set(types) - {bool}:
                return False
            if int in types or float in types:
                numbers = np.asarray(
                    [x for x in column if x is not None] if None in column else column, dtype=np.float64
                )
                if not (np.isfinite(numbers).all() and (numbers >= 0).all()):
                    return False
                if key in _TFLOPS and not (numbers <= MAX_DEVICE_TFLOPS).all():
                    return False
        if not set(columns["tier"]) <= set(v.TIERS):
            return False
        for t in set(columns["measured_utc"]):
            v.parse_utc(t)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _rows(data: dict[str, Any], where: str) -> Rows:
    devices = data.get("devices")
    if not isinstance(devices, list):
        raise DisclosureError(f"{where}: devices should be a list")
    checked = Rows(devices)
    if _valid_columns(checked):
        return checked
    out = Rows()
    times: set[str] = set()
    for i, d in enumerate(devices):
        if not isinstance(d, dict):
            raise DisclosureError(f"{where}: devices[{i}] should be an object")
        for key, types in _ROW_TYPES.items():
            value = d.get(key)
            if isinstance(value, bool) or not isinstance(value, types):
                raise DisclosureError(f"{where}: devices[{i}].{key} has type {type(value).__name__}")
            if isinstance(value, float) and not math.isfinite(value) or isinstance(value, (int, float)) and value < 0:
                raise DisclosureError(f"{where}: devices[{i}].{key} should be a finite non-negative number")
            if key in _TFLOPS and value is not None and value > MAX_DEVICE_TFLOPS:
                raise DisclosureError(f"{where}: devices[{i}].{key} is {value:.3g} TFLOPS, above any device "
                                      f"({MAX_DEVICE_TFLOPS:g})")  # fmt: skip
        if d["tier"] not in v.TIERS:
            raise DisclosureError(f"{where}: devices[{i}].tier {d['tier']!r} is not one of {', '.join(v.TIERS)}")
        if d["measured_utc"] not in times:  # a capacity report's rows share a few timestamps: each parsed once
            try:
                v.parse_utc(d["measured_utc"])
            except ValueError as exc:
                raise DisclosureError(f"{where}: devices[{i}].measured_utc: {exc}") from None
            times.add(d["measured_utc"])
        out.append(d)  # validated in place: a country holds about a million rows, not copied
    return out


def check_capacity(
    data: Any, where: str, *, aggregator_ids: set[str] | None, verified: bool = False
) -> list[dict[str, Any]]:
    """The device rows of a capacity report, refused unless it is a capacity report of a version bench reads, its
    signature verifies (skipped when `verified`: its bytes were already checked) and, with a trust list, an aggregator
    key signed it. Rows carry no more than the tier the aggregator gave them; a capacity built without a trust list or
    a maximum age gave 'reported' (see bench.report.pool.apply_policy)."""
    try:
        CapacityReport.from_dict(data)
    except ReportError as exc:
        raise DisclosureError(f"{where}: {exc}") from None
    if not verified:
        valid, why = sign.check(data)
        if not valid:
            raise DisclosureError(f"{where}: {why}")
    kid = sign.signer(data)
    if aggregator_ids is not None and kid not in aggregator_ids:
        raise DisclosureError(f"{where}: signed by key {kid}, which is not in the aggregator trust list")
    defective = data.get("defective")
    if not isinstance(defective, list) or not all(isinstance(d, dict) for d in defective):
        raise DisclosureError(f"{where}: defective should be a list of objects")
    return _rows(data, where)


#: From this many files on, a store reads them in worker processes (read_many).
PARALLEL_FROM = 8

Inspected = tuple[bool, str, str | None]
#: What a worker of read_many returns for one file: the document, sign.inspect of a capacity report, and that report's
#: rows checked by check_capacity (no aggregator policy: the reader's to apply) and laid out (None when refused).
Read = tuple[intake.Document, Inspected | None, "Rows | None"]


def _laid_out(data: dict[str, Any]) -> Rows | None:
    """A capacity report's rows as check_capacity checks them without a trust list (signature aside), with their
    columns, frame and ranks laid out; None where it refuses them (the reader refuses the report again, in its own
    order and words). Done by the worker that read the report: in the parent it was a serial tenth of a country's
    disclose and verify phases (4,000 rows a site checked column by column, framed and ranked)."""
    try:
        rows = check_capacity(data, "", aggregator_ids=None, verified=True)
    except DisclosureError:
        return None
    if not isinstance(rows, Rows):
        return None
    rows.columns(), rows.frame(), rows.ranks()
    return rows


@contextlib.contextmanager
def _no_cycles() -> Iterator[None]:
    """The cyclic collector paused while documents are parsed, pickled and unpickled (restored as it was after): JSON
    parsing makes no reference cycle, and a country's 200 capacity reports are millions of new containers, each
    generation-0 collection walking the newest of them and each full one the whole store (a second of the main
    process's CPU and a tenth of each reading worker's per 100 reports of 3 MB, measured at 100,000 nodes)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _read_one(task: tuple[Path, Path | None]) -> Read | intake.InputError:
    """A file read as intake reads it and, for a capacity report, sign.inspect of it (its signature and digest) and
    its rows laid out (_laid_out): the work of a worker of read_many. The parsed document travels back pickled (half
    the time of parsing it again), its rows with it (pickle keeps one copy of the objects both refer to)."""
    with _no_cycles():
        return _read_checked(*task)


def _read_checked(path: Path, root: Path | None) -> Read | intake.InputError:
    """_read_one's work."""
    try:
        doc = intake.read_json(path, root=root)
    except intake.InputError as exc:
        return exc
    inspected = rows = None
    if isinstance(doc.data, dict) and doc.data.get("kind") == cap.CAPACITY_KIND:
        inspected = sign.inspect(doc.data, body=doc.signed_body)
        rows = _laid_out(doc.data) if inspected[0] else None
    # the signed body (3 MB for a site's capacity report) served the check above; pickled back and kept by the store
    # it cost a country of 200 sites about 0.6 GB of peak memory and the time to pickle it. So do the file's bytes: a
    # store finds a document by their SHA-256 (hashed here, and carried back as the document's) and reads its data,
    # never the bytes again
    sha256 = doc.sha256
    doc = dataclasses.replace(doc, raw=b"", signed_body=None)
    doc.__dict__["sha256"] = sha256  # functools.cached_property's own slot: the hash of the bytes read
    return doc, inspected, rows


#: A capacity report's read as a worker hands it back (_packed): the document with its device rows left out, the
#: rows' keys in their order, the columns of the keys Rows.columns does not lay out, and the laid-out Rows' columns,
#: frame and ranks.
Packed = tuple[intake.Document, Inspected, tuple[str, ...], dict[str, list[Any]], dict[str, list[Any]], Any, list[int]]


def _packed(read: Read | intake.InputError) -> Read | intake.InputError | tuple[str, Packed]:
    """A worker's read, handed back without its device rows' dicts where _unpacked rebuilds them from the columns
    exactly (the same keys in the same order, the same values, equal strings one object as in the columns): a site's
    report (4,000 rows, 3.1 MB) pickled there and unpickled here cost 7.6-8.2 + 8.5-9.2 ms of CPU, packed and rebuilt
    4.0 + 6.0 (medians of 60, load 2.4-2.9; tests/disclosure/test_packed_reads.py holds the rebuilt read to the read).
    Anything else (a refused report, rows that are not all plain dicts with one key order, rows other than the
    document's own) goes back as read."""
    if not isinstance(read, tuple):
        return read
    doc, inspected, rows = read
    if not isinstance(rows, Rows) or rows._columns is None or inspected is None or not isinstance(doc.data, dict):
        return read
    order = rows._order  # every row a plain dict, all with these keys in this order (Rows.columns saw them)
    devices = doc.data.get("devices")
    if order is None or type(devices) is not list or len(devices) != len(rows):
        return read
    if not all(map(operator.is_, devices, rows)):
        return read
    others = {key: _shared([d[key] for d in devices]) for key in order if key not in _ROW_TYPES}
    data = {k: (None if k == "devices" else x) for k, x in doc.data.items()}
    sha256 = doc.sha256
    light = dataclasses.replace(doc, data=data)
    light.__dict__["sha256"] = sha256
    return _PACKED, (light, inspected, order, others, rows._columns, rows._frame, rows._ranks)


#: Marks a read handed back by _packed.
_PACKED = "bench.disclosure.leaves.packed"


def _unpacked(result: Read | intake.InputError | tuple[str, Packed]) -> Read | intake.InputError:
    """The read _packed left its rows out of, with the rows rebuilt: the same document (equal data, every dict's keys in
    the same order) and the same Rows (equal rows, the same columns, frame and ranks)."""
    if not (isinstance(result, tuple) and len(result) == 2 and result[0] == _PACKED):
        return result  # type: ignore[return-value]
    light, inspected, order, others, columns, frame, ranks = result[1]
    values = [others[key] if key in others else columns[key] for key in order]
    devices = list(map(dict, map(zip, itertools.repeat(order), zip(*values, strict=True))))
    light.data["devices"] = devices
    rows = Rows(devices)
    rows._columns, rows._frame, rows._ranks = columns, frame, ranks
    return light, inspected, rows


def _read_packed(task: tuple[Path, Path | None]) -> Read | intake.InputError | tuple[str, Packed]:
    """_read_one in a worker of read_many, its answer _packed for the trip back."""
    read = _read_one(task)
    with _no_cycles():
        return _packed(read)


def read_many(paths: list[Path], *, root: Path | None = None) -> list[Read | intake.InputError]:
    """Each path as _read_one reads it, in order; from PARALLEL_FROM paths on, by worker processes (one fewer than the
    cores) and this process together: a country's 200 capacity reports take seconds each to parse and canonicalize,
    on one core otherwise. The workers take the files from the first on, this process from the last back (each file
    it reads is one not pickled there and unpickled here: 18 of a site's report's 95 ms of CPU, measured at 10,000
    nodes), until they meet. The same results as reading them all here, in order, and the first exception in that
    order raised."""
    tasks = [(p, root) for p in paths]
    workers = min(usable_cores(), len(tasks)) - 1  # a fork pool starts every worker at once, needed or not
    if len(tasks) < PARALLEL_FROM or workers < 1:
        return [_read_one(t) for t in tasks]
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with _no_cycles(), concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                              initializer=_keep_freed_memory) as pool:  # fmt: skip
        futures = [pool.submit(_read_packed, t) for t in tasks]
        here: dict[int, tuple[bool, Any]] = {}
        for i in reversed(range(len(tasks))):
            if not futures[i].cancel():  # queued for a worker or taken: so is every file before it
                break
            try:
                here[i] = (True, _read_one(tasks[i]))
            except Exception as exc:  # noqa: BLE001 - raised below, in the files' order, as a loop would
                here[i] = (False, exc)
        out = []
        for i, future in enumerate(futures):
            if i not in here:
                out.append(_unpacked(future.result()))  # unpickled here, in this process
                continue
            ok, result = here[i]
            if not ok:
                raise result
            out.append(result)
        return out


def _keep_freed_memory() -> None:
    """A reading worker keeps the memory it frees for the next file (glibc's mallopt: no trimming of the heap, no
    mmap for large blocks) instead of handing it back to the system and faulting it in again: a 3 MB capacity report
    parsed, checked, laid out and pickled is tens of MB allocated and freed, and the workers reading a 10,000-node
    country's 20 reports spent 0.30 s of CPU in the kernel, 0.08 s with this. The worker ends with the reading, so
    what it keeps is given back then; without glibc (another libc, another system) nothing is changed."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):
        pass


#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


class Store:
    """The documents of a folder (capacity reports, proofs, disclosures), found by the SHA-256 of their bytes, each read
    once through bench.model.intake and each signature checked once, however many levels of the tree cite it."""

    def __init__(self, directory: Path | None = None) -> None:
        self.paths: dict[str, Path] = {}
        self._docs: dict[str, intake.Document] = {}
        self._checked: set[str] = set()
        self._digests: dict[str, str] = {}
        self._rows: dict[str, list[dict[str, Any]]] = {}
        self._inspected: dict[str, Inspected] = {}
        self._laid: dict[str, Rows] = {}  # a capacity report's rows as its reader checked and laid them out
        #: files of the folder no document can cite (unreadable, not strict JSON, no digest): a warning, not evidence
        self.skipped: list[str] = []
        if directory is not None:
            for path, read in zip(
                paths := sorted(directory.rglob("*.json")), read_many(paths, root=directory), strict=True
            ):
                if isinstance(read, intake.InputError):
                    # not an input this tree can cite; a cited one that is missing is reported by digest
                    self.skipped.append(intake.safe_name(str(path)))
                    continue
                self._keep(path, *read)

    def _keep(self, path: Path, doc: intake.Document, inspected: Inspected | None,
              rows: Rows | None = None) -> intake.Document:  # fmt: skip
        self.paths.setdefault(doc.sha256, path)
        if self._docs.setdefault(doc.sha256, doc) is doc and rows is not None:
            self._laid[doc.sha256] = rows  # only with the document they were read from (their rows are its rows)
        if inspected is not None:
            self._inspected.setdefault(doc.sha256, inspected)
        return doc

    def add(self, path: Path) -> intake.Document:
        try:
            doc = intake.read_json(path)
        except intake.InputError as exc:
            raise DisclosureError(str(exc)) from None
        return self._keep(path, doc, None)

    def keep(self, path: Path, raw: bytes) -> intake.Document:
        """A document this process wrote (`raw`, the bytes now at `path`), kept as a reader of the file would read it,
        without reading the file again."""
        try:
            data = intake.parse_json(raw, str(path))
        except intake.InputError as exc:
            raise DisclosureError(str(exc)) from None
        return self._keep(path, intake.Document(path, raw, data), None)

    def add_many(self, paths: list[Path]) -> list[intake.Document]:
        """add() of each path, read (and capacity reports' signatures checked) in worker processes (read_many)."""
        out = []
        for path, read in zip(paths, read_many(paths), strict=True):
            if isinstance(read, intake.InputError):
                raise DisclosureError(str(read))
            out.append(self._keep(path, *read))
        return out

    def laid_out(self, doc: intake.Document) -> Rows | None:
        """The rows of a capacity report as the worker that read it checked them (no trust list) and laid them out;
        None where it did not (or refused them): then check_capacity decides here."""
        rows = self._laid.pop(doc.sha256, None)
        return rows if rows is not None and self._docs.get(doc.sha256) is doc else None

    def inspected(self, doc: intake.Document) -> Inspected:
        """sign.inspect of a capacity report: from the worker that read it, else computed here."""
        found = self._inspected.get(doc.sha256)
        return found if found is not None else sign.inspect(doc.data, body=doc.signed_body)

    def get(self, sha256: str) -> intake.Document | None:
        return self._docs.get(sha256)

    def digest(self, doc: intake.Document) -> str:
        """sign.digest of a document, computed once (canonicalizing a large capacity report takes a fraction of a
        second, and every level of a tree cites the same leaves)."""
        if doc.sha256 not in self._digests:
            self._digests[doc.sha256] = sign.digest(doc.data)
        return self._digests[doc.sha256]

    def remember_digest(self, doc: intake.Document, digest: str | None) -> None:
        if digest is not None:
            self._digests[doc.sha256] = digest

    def checked(self, sha256: str) -> bool:
        return sha256 in self._checked

    def mark_checked(self, sha256: str, rows: list[dict[str, Any]]) -> None:
        """A capacity report whose signature and rows were checked: its rows are kept for the other levels."""
        self._checked.add(sha256)
        self._rows[sha256] = rows

    def rows(self, sha256: str) -> list[dict[str, Any]]:
        return self._rows[sha256]


def leaf(
    doc: intake.Document, path: tuple[str, ...], cluster: str, store: Store, *, aggregator_ids: set[str] | None
) -> tuple[Leaf, list[dict[str, Any]]]:
    """A capacity report as a leaf at `path`/`cluster`, with its checked device rows."""
    if store.checked(doc.sha256):  # read and checked before: only the aggregator policy remains to apply
        kid = sign.signer(doc.data)
        if aggregator_ids is not None and kid not in aggregator_ids:
            raise DisclosureError(f"{intake.safe_name(str(doc.path))}: signed by key {kid}, which is not in the "
                                  "aggregator trust list")  # fmt: skip
        rows = store.rows(doc.sha256)
    else:
        where = intake.safe_name(str(doc.path))
        if isinstance(doc.data, dict) and doc.data.get("kind") == cap.CAPACITY_KIND:
            valid, why, digest = store.inspected(doc)  # the signature and the digest from one canonicalization
            if not valid:
                raise DisclosureError(f"{where}: {why}")
            store.remember_digest(doc, digest)
        rows = store.laid_out(doc)
        if rows is None:
            rows = check_capacity(doc.data, where, aggregator_ids=aggregator_ids, verified=True)
        elif aggregator_ids is not None and sign.signer(doc.data) not in aggregator_ids:  # check_capacity's last check
            raise DisclosureError(f"{where}: signed by key {sign.signer(doc.data)}, which is not in the aggregator "
                                  "trust list")  # fmt: skip
        store.mark_checked(doc.sha256, rows)
    return Leaf(path, cluster, store.digest(doc), doc.sha256, sign.signer(doc.data), doc.data), rows


def defective_keys(data: dict[str, Any]) -> set[tuple[str, str]]:
    return {(str(d.get("device")), str(d.get("precision"))) for d in data.get("defective", []) if isinstance(d, dict)}


@dataclass(frozen=True)
class _Shared:
    """One merge of a whole tree's leaves (shared_merge), from which the merge of any subset of them is taken."""

    key: tuple[bool, dt.datetime, dt.timedelta]
    #: label -> (site path, cluster, sha256 of the capacity report, its rows object)
    leaves: dict[str, tuple[tuple[str, ...], str, str, list[dict[str, Any]]]]
    number: dict[str, int]  # label -> its number in `codes`
    codes: np.ndarray  # each counted row's leaf, by number
    counted: pd.DataFrame
    #: where each leaf's rows lie in `counted` ([start, stop) by number) when every leaf's rows lie together (they do:
    #: counted is ordered by site and cluster first), else None: a subset's rows are then its leaves' runs in order
    #: of their starts, found without a mask over the whole tree's rows for each level
    runs: tuple[np.ndarray, np.ndarray] | None = None
    #: the place columns numbered once for the whole tree (_coded), or None
    coded: Coded | None = None


@dataclass(frozen=True)
class Coded:
    """Columns of a merge's counted rows numbered: codes[c][i] is row i's place in names[c] (sorted, distinct), so rows'
    codes order as their values do. Numbered once in the shared merge for every level taken from it (a level's codes
    are the whole tree's at its rows: some names then unused), instead of each level factorizing a million strings."""

    codes: dict[str, np.ndarray]
    names: dict[str, pd.Index]

    def at(self, rows: np.ndarray) -> Coded:
        return Coded({c: x[rows] for c, x in self.codes.items()}, self.names)


#: The counted rows' columns that are one value per leaf (its site path, the path's parts, its cluster): numbered by
#: leaf in the shared merge (_coded), for kpis.tree and document.site_pflops.
CODED = ("site", "cluster", "p0", "p1", "p2", "p3")


def _coded(counted: pd.DataFrame, codes: np.ndarray, runs: tuple[np.ndarray, np.ndarray] | None) -> Coded | None:
    """CODED's columns of the shared merge numbered from one value per leaf (each leaf's value at its first row; a few
    hundred strings sorted, not a million hashed), laid out by each row's leaf number (`codes`). None unless every
    leaf's rows lie together (`runs`) and each column is one string per leaf there; a leaf's rows are checked against
    its first row (numbers compared, not strings: the numbers of each column's distinct strings, found once)."""
    if runs is None or not len(codes):
        return None
    start, stop = runs
    has = np.flatnonzero(stop > start)
    out_codes: dict[str, np.ndarray] = {}
    out_names: dict[str, pd.Index] = {}
    for c in CODED:
        values = counted[c].to_numpy(dtype=object)
        firsts = values[start[has]]
        if not all(type(x) is str for x in firsts):
            return None
        names = pd.Index(sorted(set(firsts)), dtype=counted[c].dtype)
        per_leaf = np.full(len(start), -1, dtype=np.int64)
        per_leaf[has] = names.get_indexer(firsts)
        row_codes = per_leaf[codes]
        # every row's value is its leaf's (as _merge lays them out): checked row by row by numpy (most are the same
        # object, which compares equal at once)
        if not bool((values == names.to_numpy(dtype=object)[row_codes]).all()):
            return None
        out_codes[c], out_names[c] = row_codes, names
    return Coded(out_codes, out_names)


#: The merge shared_merge holds while its block runs (forked workers inherit it); empty otherwise.
_SHARED: list[_Shared] = []


def _restrictable(leaves: list[tuple[Leaf, list[dict[str, Any]]]]) -> bool:
    """Whether the merge of any subset of `leaves` is the subset's rows taken from the merge of them all, when that
    merge dropped nothing: each leaf its own (site, cluster) and its rows laid out (Rows), so both order by the same
    integer ranks; every column's dtype the same in every non-empty leaf's frame, so that concatenating any of them
    infers what concatenating all of them infers; and every site path of one depth, so the p0..p3 columns are padded
    alike. Row-local rules (future, stale, physically impossible, the aggregator's trust) give each row the same
    result in any subset; deduplication is the one rule that looks across rows, and with nothing dropped in the whole
    no subset drops anything either (its groups are subsets of the whole's)."""
    if not leaves or not all(isinstance(rows, Rows) for _, rows in leaves):
        return False
    if len({lf.label for lf, _ in leaves}) != len(leaves) or len({len(lf.path) for lf, _ in leaves}) != 1:
        return False
    frames = [rows.frame() for _, rows in leaves if len(rows)]
    return bool(frames) and len(_uniform(frames)) == len(_ROW_TYPES)


def _uniform(frames: list[pd.DataFrame]) -> list[str]:
    """The row fields (in _ROW_TYPES' order) whose dtype is the same in every one of `frames` (Rows.frame()s), read from
    each frame's dtypes at once: a country's 200 frames asked column by column were 3,400 Series made to read a dtype."""
    types = [dict(zip(f.columns, map(str, f.dtypes), strict=True)) for f in frames]
    return [key for key in _ROW_TYPES if len({t.get(key) for t in types}) == 1 and types[0].get(key) is not None]


def _joined(frames: list[pd.DataFrame]) -> dict[str, pd.Series]:
    """Each row field whose dtype every one of `frames` shares, as their columns put end to end (what concatenating
    that column of each gives, pd.concat([f[key] for f in frames]), the same values, dtype and name): the frames
    concatenated once, not field by field (a country's 200 leaves were 3,400 Series concatenated one field at a time,
    a quarter of a second of the merge, which runs alone before any worker starts). tests/disclosure/
    test_repeated_checks.py holds it to the field-by-field form on frames of mixed dtypes."""
    if not frames:
        return {}
    keys = _uniform(frames)
    if not keys:
        return {}
    whole = pd.concat([f if list(f.columns) == keys else f[keys] for f in frames], ignore_index=True)
    return {key: whole[key] for key in keys}


@contextlib.contextmanager
def shared_merge(leaves: list[tuple[Leaf, list[dict[str, Any]]]], *, trusted_aggregator: bool, as_of: dt.datetime,
                 stale_after: dt.timedelta) -> Iterator[None]:  # fmt: skip
    """While the block runs, merge() of any subset of `leaves` (the same leaf objects' rows, under the same rules) is
    taken from one merge of them all instead of merging again: every level of a tree (site, city, region, country)
    merges the same leaves, and merging was two fifths of building or verifying each level. Only where the whole
    merge dropped no row (no duplicate, no clone, no second configuration of a GPU) and _restrictable holds: then
    the subset's merge is exactly those rows in the same order (tests/disclosure/test_shared_merge.py holds the two to
    the same documents and findings on randomized trees). Otherwise, or where merging them all is refused, each merge
    is done as before (and refuses as before)."""
    entry = None
    if not _SHARED and _restrictable(leaves):
        try:
            counted, duplicates = _merge(leaves, trusted_aggregator=trusted_aggregator, as_of=as_of,
                                         stale_after=stale_after)  # fmt: skip
        except DisclosureError:
            duplicates = [None]
        if not duplicates:
            _compact(counted, _COMPACTED)
            number = {label: i for i, label in enumerate(sorted(lf.label for lf, _ in leaves))}
            # each row's leaf by number: the distinct labels factorized (mapping a million labels through a dict
            # was a quarter of a second of this process alone)
            found, labels = pd.factorize(counted["leaf"])
            codes = np.array([number[label] for label in labels], dtype=np.int64)[found]
            runs = _runs(codes, len(number))
            entry = _Shared((trusted_aggregator, as_of, stale_after),
                            {lf.label: (lf.path, lf.cluster, lf.sha256, rows) for lf, rows in leaves}, number, codes,
                            counted, runs, _coded(counted, codes, runs))  # fmt: skip
            _SHARED.append(entry)
    try:
        yield
    finally:
        if entry is not None:
            _SHARED.remove(entry)


#: The shared merge's columns of about one distinct string per row that every level reads (each device's id, each
#: node's host name): _compact lays their strings out anew, side by side.
_COMPACTED = ("device", "host")


def _compact(counted: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Each of `columns` of the shared merge (in place) made of new string objects, equal to the old ones and laid out
    side by side in memory: the same values and dtype, only other objects. The old ones were parsed with their capacity
    report's rows, one to a row's kilobyte of dicts, and a forked worker deriving a level touches each string it takes
    (its reference count) and so copies the page holding it from its parent: every page of a country's rows, in each
    worker. Measured at 100,000 nodes (225 levels in two workers, two pairs interleaved, load 2-3.4): the levels' CPU
    13.0 + 1.1-1.2 s (user + kernel) -> 11.5-11.6 + 0.6-0.7, for 0.3 s here. A column holding anything but strings, or a string with a NUL (the joint),
    is left as it is."""
    for c in columns:
        values = counted[c].to_numpy(dtype=object)
        if not len(values) or set(map(type, values)) != {str}:
            continue
        fresh = "\0".join(values).split("\0")  # one C pass: new strings, allocated one after another
        if len(fresh) != len(values):
            continue
        laid = np.empty(len(fresh), dtype=object)
        laid[:] = fresh
        counted[c] = pd.Series(laid, index=counted.index, dtype=counted[c].dtype)


def _runs(codes: np.ndarray, leaves: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Each leaf number's [start, stop) in `codes` (empty, start == stop, for a leaf with no counted row), or None
    unless each number's rows lie together."""
    if not len(codes):
        return None
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    if len(np.unique(codes[starts])) != len(starts):  # a number in two places
        return None
    start = np.zeros(leaves, dtype=np.int64)
    stop = np.zeros(leaves, dtype=np.int64)
    start[codes[starts]] = starts
    stop[codes[starts]] = np.append(starts[1:], len(codes))
    return start, stop


def _taken(leaves: list[tuple[Leaf, list[dict[str, Any]]]], key: tuple[bool, dt.datetime, dt.timedelta],
           without: tuple[str, ...] = ()) -> tuple[pd.DataFrame, Coded | None] | None:  # fmt: skip
    """merge()'s counted rows of `leaves` from the shared merge (less the columns `without`), with the shared merge's
    numbered columns at those rows; or None where it does not hold them all (a leaf it lacks, another capacity report
    under a label, other rules)."""
    for shared in _SHARED:
        if shared.key != key or len({lf.label for lf, _ in leaves}) != len(leaves):
            continue
        wanted = np.zeros(len(shared.number), dtype=bool)
        for lf, rows in leaves:
            held = shared.leaves.get(lf.label)
            if held is None or held[:3] != (lf.path, lf.cluster, lf.sha256) or held[3] is not rows:
                break
            wanted[shared.number[lf.label]] = True
        else:
            if shared.runs is not None:  # the leaves' runs in order: what the mask below finds, without the mask
                start, stop = shared.runs
                mine = np.flatnonzero(wanted)
                mine = mine[np.argsort(start[mine], kind="stable")]
                at = np.concatenate([np.arange(start[i], stop[i]) for i in mine.tolist()] or [np.zeros(0, np.int64)])
            else:
                at = np.flatnonzero(wanted[shared.codes])
            # (dropping columns copies none: copy on write, as the shallow copy; a change to either copies what it
            # changes)
            whole = shared.counted.drop(columns=list(without)) if without else shared.counted.copy(deep=False)
            if len(at) == len(shared.codes):  # the whole tree (its top level): the frame itself, not a second copy
                return whole, shared.coded
            if len(at):
                return whole.take(at).reset_index(drop=True), None if shared.coded is None else shared.coded.at(at)
    return None


#: The counted rows' columns that only the merge itself reads (the identities deduplication compares, the report's
#: label, the node's name, the time as written): a level's figures (document.from_rows) read none of them, and
#: taking them with its rows cost each level a copy of four columns of distinct strings per row (a forked worker
#: touching each string's page, copied from its parent) and a tenth of a level's CPU.
MERGE_ONLY = ("serial", "board", "pci", "samples", "report", "node", "measured_utc")


def merge(leaves: list[tuple[Leaf, list[dict[str, Any]]]], *, trusted_aggregator: bool, as_of: dt.datetime,
          stale_after: dt.timedelta, without: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[dict[str, Any]]]:  # fmt: skip
    """_merge, or inside shared_merge the rows of these leaves taken from the whole tree's merge (the same frame); less
    the columns `without` (MERGE_ONLY, say), which are then never copied from the shared merge."""
    counted, duplicates, _ = merge_coded(leaves, trusted_aggregator=trusted_aggregator, as_of=as_of,
                                         stale_after=stale_after, without=without)  # fmt: skip
    return counted, duplicates


def merge_coded(leaves: list[tuple[Leaf, list[dict[str, Any]]]], *, trusted_aggregator: bool, as_of: dt.datetime,
                stale_after: dt.timedelta,
                without: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[dict[str, Any]], Coded | None]:  # fmt: skip
    """merge(), with the rows' numbered place columns (Coded) where they were taken from a shared merge that numbered
    them (else None: the caller numbers what it needs)."""
    if _SHARED:
        taken = _taken(leaves, (trusted_aggregator, as_of, stale_after), without)
        if taken is not None:
            return taken[0], [], taken[1]
    counted, duplicates = _merge(leaves, trusted_aggregator=trusted_aggregator, as_of=as_of, stale_after=stale_after)
    return (counted.drop(columns=list(without)) if without else counted), duplicates, None


def _merge(leaves: list[tuple[Leaf, list[dict[str, Any]]]], *, trusted_aggregator: bool, as_of: dt.datetime,
           stale_after: dt.timedelta) -> tuple[pd.DataFrame, list[dict[str, Any]]]:  # fmt: skip
    """Every leaf's rows, deduplicated across the whole tree: (counted rows, duplicates). Each counted row carries its
    leaf, site path, whether it is defective (by its capacity report) or stale (measured more than `stale_after` before
    `as_of`), and its tier after the disclosure's own rules: a stale row, a row of a capacity report whose signer is
    unchecked, and the kept row of a clone (two device ids sharing an identity) are 'reported' at most."""
    columns = [*_ROW_TYPES, "leaf", "report", "site", "cluster", "defective"]
    data: dict[str, list[Any]] = {c: [] for c in columns}
    # the final order (site, cluster, precision, device) as two integers per row, where each leaf is its own (site,
    # cluster): the leaf's place among them, and the row's place in its leaf by (precision, device), computed once per
    # capacity report for every level of a tree. After the device-once rule no two rows share (precision, device), so
    # sorting by these gives the order sorting by the strings gives (a million device ids sorted at each level cost a
    # quarter of a country's merge); otherwise the strings are sorted.
    pairs = sorted({("/".join(lf.path), lf.cluster) for lf, _ in leaves})
    by_ranks = len(pairs) == len(leaves) and all(isinstance(rows, Rows) for _, rows in leaves)
    pair_rank = {pair: i for i, pair in enumerate(pairs)}
    outer: list[int] = []
    inner: list[int] = []
    ordered = sorted(leaves, key=lambda x: x[0].label)
    # a column whose every (non-empty) capacity report inferred one dtype is those reports' frames put end to end, as
    # inferring it from all the rows gives; any other is inferred from all the rows (DataFrame(lists) was a fifth of a
    # country's merge)
    frames = [rows.frame() for _, rows in ordered if len(rows)] if all(isinstance(r, Rows) for _, r in leaves) else []
    joined = _joined(frames)
    lengths = []
    for lf, rows in ordered:
        bad = defective_keys(lf.data)
        laid = rows.columns() if isinstance(rows, Rows) else {key: [r.get(key) for r in rows] for key in _ROW_TYPES}
        for key in _ROW_TYPES:  # column by column: no per-row dict for a million rows
            if key not in joined:
                data[key] += laid[key]
        n = len(rows)
        lengths.append(n)
        if by_ranks:
            inner += rows.ranks()
        data["defective"] += [(r["device"], r["precision"]) in bad for r in rows] if bad else [False] * n
    data |= _per_leaf(ordered, lengths)
    if by_ranks:
        outer = _repeated([pair_rank["/".join(lf.path), lf.cluster] for lf, _ in ordered], lengths, np.int64)
    df = pd.DataFrame(
        {c: joined[c] if c in joined else pd.Series(data[c], dtype=None) for c in columns}, columns=columns
    )
    del data, joined, frames
    if df.empty:
        return df.assign(stale=pd.Series(dtype=bool), measured=pd.Series(dtype="datetime64[ns, UTC]"),
                         **{f"p{i}": pd.Series(dtype=object) for i in range(4)}), []  # fmt: skip
    if by_ranks:
        df["_outer"], df["_inner"] = np.array(outer, dtype=np.int64), np.array(inner, dtype=np.int64)
    del outer, inner
    df["measured"] = pd.to_datetime(df["measured_utc"], utc=True, format="ISO8601")
    future = df["measured"] > pd.Timestamp(as_of + v.CLOCK_SKEW)
    if future.any():  # as a proof issued after as_of is refused: a disclosure 'as of' a date shows what existed then
        first = df.loc[future].iloc[0]
        raise DisclosureError(f"{first['leaf']}: device {first['device']} was measured {first['measured_utc']}, after "
                              f"the disclosure's as-of date {as_of.astimezone(dt.UTC).isoformat()}")  # fmt: skip
    # newest first, then by leaf: the rows were laid out in leaf-label order, so each leaf's rank among the distinct
    # labels orders as its label does, and sorting by it (an integer) gives the same permutation without sorting a
    # million strings
    labels = sorted({lf.label for lf, _ in leaves})
    rank = {label: i for i, label in enumerate(labels)}
    # each row's leaf rank repeated over its leaf's rows (laid out in `ordered`), as mapping the million labels gave
    df["_leaf_rank"] = _repeated([rank[lf.label] for lf, _ in ordered], lengths, np.int64)
    df = df.sort_values(["measured", "_leaf_rank"], ascending=[False, True], kind="stable").reset_index(drop=True)
    del df["_leaf_rank"]
    df, repartitioned = _one_configuration(df)
    keep, duplicates = cap.unique_positions(df)
    counted = df.take(keep)
    counted["stale"] = counted["measured"] < pd.Timestamp(as_of - stale_after)
    for d in duplicates:
        if set(d["dropped_devices"]) - {d["device"]}:
            counted.at[d["kept_index"], "tier"] = v.REPORTED
            counted.at[d["kept_index"], "why"] = "shares an identity with another device (a clone?)"
        del d["kept_index"]
        d["kept_in"], d["dropped_from"] = d.pop("kept"), d.pop("dropped")
    duplicates = sorted([*duplicates, *repartitioned], key=lambda d: (d["device"], d["precision"]))
    counted.loc[counted["stale"], "tier"] = v.REPORTED
    # bounded means physically possible on a device bench knows: the aggregator's word is not enough (it is often the
    # operator), so a 'bounded' row without a peak, or above its own peak, is reported at most
    peak = pd.to_numeric(counted["peak_tflops"], errors="coerce")
    impossible = (counted["tier"] == v.BOUNDED) & ~(counted["mamf_tflops"].astype(float) <= peak)
    counted.loc[impossible, "tier"] = v.REPORTED
    counted.loc[impossible, "why"] = "above (or without) the device's own peak: not physically possible"
    if not trusted_aggregator:
        counted["tier"] = v.REPORTED
    if by_ranks:
        counted = counted.take(np.lexsort((counted["_inner"].to_numpy(), counted["_outer"].to_numpy())))
        counted = counted.drop(columns=["_outer", "_inner"]).reset_index(drop=True)
    else:
        counted = counted.sort_values(["site", "cluster", "precision", "device"], kind="stable").reset_index(drop=True)
    # the path's levels as columns p0..p3 (country .. site): each distinct site split once (a few hundred, not a
    # million rows), then laid out by row
    codes, sites = pd.factorize(counted["site"])
    if (codes < 0).any():
        parts = counted["site"].str.split("/", expand=True)
    else:
        parts = pd.Series(sites, dtype=counted["site"].dtype).str.split("/", expand=True).take(codes)
        parts.index = counted.index
    for i in range(4):
        counted[f"p{i}"] = parts[i] if i in parts.columns else None
    return counted, duplicates


_MIG_SLOT = re.compile(r"/mig\d+$")


def _repeated(values: list[Any], counts: list[int], dtype: Any = object) -> np.ndarray:
    """values[i] repeated counts[i] times, in order (an object array holds each value as one object)."""
    out = np.empty(len(values), dtype=dtype)
    out[:] = values
    return np.repeat(out, counts)


def _per_leaf(ordered: list[tuple[Leaf, list[dict[str, Any]]]], lengths: list[int]) -> dict[str, np.ndarray]:
    """The columns _merge gives every row of a leaf alike (its label as leaf and report, its site path, its cluster),
    each leaf's value repeated over its rows (`lengths`, in the order of `ordered`) by numpy, one object a value:
    lists of a million repeated strings, and a Series inferred from each, were a tenth of a country's merge. A Series
    made from these infers what one made from the lists infers (str), with the same values (tests/disclosure/
    test_merge_columns.py)."""
    return {"leaf": _repeated([lf.label for lf, _ in ordered], lengths),
            "report": _repeated([lf.label for lf, _ in ordered], lengths),
            "site": _repeated(["/".join(lf.path) for lf, _ in ordered], lengths),
            "cluster": _repeated([lf.cluster for lf, _ in ordered], lengths)}  # fmt: skip


def _one_configuration(df: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One physical GPU, one configuration: a MIG slice's identities are its GPU's (NVML serial, host + PCI id) with a
    '/migN' slot, so a GPU measured whole in one place and as slices in another (or re-partitioned within the
    staleness window) would count twice. Rows of one physical GPU (the slot stripped) keep only the configuration of
    the newest row (df is sorted newest first): the same leaf and the same mode (whole, or slices). Returns the rows
    kept and a duplicate entry for each GPU whose other configuration was dropped."""
    columns = ("serial", "pci")
    flags = [False] * len(df)
    for c in columns:  # a plain substring test over every row (a country holds millions), the pattern on the few hits
        present = df[c].notna().to_numpy()
        if not present.any():  # no NVML serials or PCI ids at all: nothing to test
            continue
        values = df[c].tolist()
        for n in np.flatnonzero(present).tolist():
            x = values[n]
            if isinstance(x, str) and "/mig" in x and _MIG_SLOT.search(x) is not None:
                flags[n] = True
    mig = pd.Series(flags, index=df.index)
    if not mig.any():
        return df, []

    def parent(x: Any) -> str | None:
        return _MIG_SLOT.sub("", x) if isinstance(x, str) else None

    wanted = {(c, parent(x), pr) for c in columns for x, pr in zip(df.loc[mig, c], df.loc[mig, "precision"], strict=True)
              if parent(x)}  # fmt: skip
    groups: dict[tuple[str, str, str], list[Any]] = {}
    for c in columns:
        for i, x, pr in zip(df.index, df[c].tolist(), df["precision"].tolist(), strict=True):
            key = (c, parent(x), pr)
            if key in wanted:
                groups.setdefault(key, []).append(i)
    position = {i: n for n, i in enumerate(df.index)}
    root = {i: i for members in groups.values() for i in members}

    def find(i: Any) -> Any:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for members in groups.values():
        for i in members[1:]:
            a, b = find(i), find(members[0])
            if a != b:
                root[max(a, b, key=position.__getitem__)] = min(a, b, key=position.__getitem__)
    components: dict[Any, list[Any]] = {}
    for i in sorted(root, key=position.__getitem__):
        components.setdefault(find(i), []).append(i)
    drop, out = [], []
    for members in components.values():
        first = members[0]
        config = (df.at[first, "leaf"], bool(mig[first]))
        dropped = [i for i in members if (df.at[i, "leaf"], bool(mig[i])) != config]
        if not dropped:
            continue
        drop += dropped
        out.append({"device": df.at[first, "device"], "precision": df.at[first, "precision"],
                    "kept_in": df.at[first, "report"], "dropped_from": sorted({df.at[i, "report"] for i in dropped}),
                    "dropped_devices": sorted({df.at[i, "device"] for i in dropped}),
                    "shared": ["one physical GPU (whole and as MIG slices): its newest configuration counts"]})  # fmt: skip
    return df.drop(index=drop), out


def digest_devices(counted: pd.DataFrame) -> str:
    """SHA-256 of the counted (device, precision, MAMF) set: what a sample is drawn from (bench.disclosure.sampling)."""
    h = hashlib.sha256(b"bench.disclosure.devices.v1")
    for device, precision, mamf in zip(counted["device"], counted["precision"], counted["mamf_tflops"], strict=True):
        h.update(f"{device}\0{precision}\0{float(mamf)!r}\n".encode())
    return h.hexdigest()
