"""The auditor's side: collect commitments by the auditor's own clock (scan), then verify every answer on a CPU and
state the proven lower bound (verify); what fails is a Finding and is not counted."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import precision as prec
from bench.challenge import exact_rows, triage
from bench.challenge.documents import (
    Challenge,
    _expect,
    check_kind,
    commitment_problem,
    load_challenge,
    read_document,
    read_json,
    receipts_doc,
    signature_problem,
    write_bytes_atomic,
)
from bench.challenge.protocol import (
    ARCHIVE_BYTES_PER_NAME,
    ARCHIVE_VERSIONS_PER_NAME,
    COMMIT_SUFFIX,
    COMMITMENT_KIND,
    FREIVALDS_VECTORS,
    MAX_COMMIT_BYTES,
    MAX_COMMIT_CONTAINERS,
    MAX_DEVICES,
    RECEIPTS_KIND,
    REVEAL_KIND,
    REVEAL_SUFFIX,
    ChallengeError,
    merkle_root,
    name_problem,
    operand,
    parse_utc,
    row_bytes,
    utc,
)
from bench.hardware import peaks
from bench.model import intake, sign
from bench.model.reports import Measurement
from bench.report import verify as verify_report
from bench.report.store import dumps, write_atomic
from bench.report.verify import ERROR, WARNING, Finding
from bench.workloads import freivalds


def load_product(directory: Path, entry: Any, ch: Challenge, where: str) -> torch.Tensor:
    """A revealed C_i as a CPU tensor of the challenge's dtype; ChallengeError when the file is missing or malformed.
    The file must stay inside the drop directory, and it is decompressed only up to the n x n products it must hold."""
    rel = _expect(entry, "file", str, where)
    dtype = prec.get(ch.dtype).torch_dtype
    itemsize = torch.tensor([], dtype=dtype).element_size()
    try:
        raw = intake.read_gzip(directory / rel, ch.n * ch.n * itemsize, root=directory)
    except intake.InputError as exc:
        raise ChallengeError(f"{where}: {exc}") from None
    as_int = {2: torch.int16, 4: torch.int32, 8: torch.int64}[itemsize]
    return torch.frombuffer(bytearray(raw), dtype=as_int).view(dtype).reshape(ch.n, ch.n)


#: What a commitment may hold besides its products (node, digests, inventory of up to MAX_DEVICES GPUs and slices),
#: and per committed product (device UUID and name of at most a few hundred characters, root, index, n, dtype).
COMMIT_BASE_BYTES, COMMIT_BYTES_PER_PRODUCT = 256 * 2**10, 2 * 2**10


def commit_limit(ch: Challenge | None) -> int:
    """The most bytes a commitment to `ch` can take: COMMIT_BASE_BYTES plus COMMIT_BYTES_PER_PRODUCT for each of the
    products MAX_DEVICES devices answer, at most MAX_COMMIT_BYTES. A larger file is refused by its size, unread: a
    signed 42 MiB commitment cost the collector and the verifier 6 s each to parse and check (a 4-product challenge
    allows 1.25 MiB)."""
    if ch is None:
        return MAX_COMMIT_BYTES
    return min(MAX_COMMIT_BYTES, COMMIT_BASE_BYTES + MAX_DEVICES * ch.products * COMMIT_BYTES_PER_PRODUCT)


def scan(directory: Path, seen: dict[Any, Any], now: dt.datetime | Callable[[], dt.datetime], ch: Challenge | None = None,
         archive: Path | None = None, trusted: set[str] | None = None, auditor: str | None = None,
         names: dict[str, str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Commitment files in `directory` that are new or changed since `seen`: a receipt {file, sha256, arrived_utc,
    challenge_digest, issued_utc, accepted, why, node, expected} for each. Every file is read and stamped first (at most
    commit_limit(ch) bytes), then read again and checked; the bytes hashed are the bytes parsed, and (with `archive`)
    the bytes kept, and bytes that changed between the two reads are stamped after the second. `now` is the
    collector's clock (a callable; a fixed time only in tests): each file is stamped with a reading taken right after
    its bytes were read, so a slow read of other files (junk the operator put first, slow storage) never stamps a
    commitment with an earlier time than the moment its bytes were in hand, and checking junk never delays it. `accepted` says whether they are a signed commitment to this challenge
    (what --expect counts, and what the collector logs): junk is reported, never archived or logged, and a name first
    taken by junk is read again when real bytes replace it. At most ARCHIVE_VERSIONS_PER_NAME versions and
    ARCHIVE_BYTES_PER_NAME bytes are archived under one name; later ones are not accepted."""
    clock = now if callable(now) else (lambda: now)
    limit = commit_limit(ch)
    # First every new or changed file's bytes, each stamped right after it was read: parsing and checking a file costs
    # far more than reading it (a 42 MiB signed commitment: 6 s on a loaded machine), and junk sorted first delayed
    # the stamp of an honest commitment behind it by the time its checks took (17 s behind three such files).
    stamped: list[tuple[Path, str, str | None, dt.datetime, str | None]] = []  # path, name, sha256, arrival, error
    for path in sorted(directory.glob(f"*{COMMIT_SUFFIX}")):
        name = intake.safe_name(path.name)
        try:
            info = path.lstat()
        except OSError:
            continue
        state = (info.st_mtime_ns, info.st_size, info.st_ino)
        if seen.get(path.name) == state:
            continue
        seen[path.name] = state
        try:
            digest = hashlib.sha256(intake.read_bytes(path, root=directory, max_bytes=limit)).hexdigest()
        except intake.InputError as exc:
            stamped.append((path, name, None, clock(), intake.safe_name(str(exc))))
        else:
            stamped.append((path, name, digest, clock(), None))  # after the bytes are in hand
    new = []
    for path, name, first_digest, arrived, error in stamped:
        raw = b""
        if error is None:  # read again to check: bytes that changed since the first read are stamped now
            try:
                raw = intake.read_bytes(path, root=directory, max_bytes=limit)
            except intake.InputError as exc:
                error, arrived = intake.safe_name(str(exc)), clock()
            else:
                if hashlib.sha256(raw).hexdigest() != first_digest:
                    arrived = clock()
        if error is not None:
            receipt = {"file": name, "sha256": None, "arrived_utc": utc(arrived), "accepted": False, "why": error}
        else:
            digest = hashlib.sha256(raw).hexdigest()
            why = None
            if ch is not None:
                try:
                    data = intake.parse_json(raw, name, max_containers=MAX_COMMIT_CONTAINERS)
                    why = commitment_problem(data, ch, trusted, auditor, name) or triage.name_key_problem(
                        data["node"], sign.signer(data), names, name
                    )  # a name bound to another key is not this key's to answer for
                    if why is None and ch.nodes is not None and data["node"] not in ch.nodes:
                        why = f"{name}: node {data['node']!r} was not challenged"  # verify refuses it too
                except intake.InputError as exc:
                    why = str(exc)
            used_bytes, versions = seen.get(("archived", path.name), (0, 0))
            if why is None and (
                versions >= ARCHIVE_VERSIONS_PER_NAME or used_bytes + len(raw) > ARCHIVE_BYTES_PER_NAME
            ):
                why = (f"{name}: rewritten more than {ARCHIVE_VERSIONS_PER_NAME} times or {ARCHIVE_BYTES_PER_NAME} bytes "
                       "under this name; not archived or counted")  # fmt: skip
            receipt = {"file": name, "sha256": digest, "arrived_utc": utc(arrived), "accepted": why is None,
                       "why": None if why is None else intake.safe_name(why)}  # fmt: skip
            if why is None:  # whom it answers for, and whether it is one of the nodes --expect waits for
                receipt["node"] = data["node"]
                receipt["expected"] = triage.expected(data["node"], sign.signer(data), names)
                seen[("archived", path.name)] = (used_bytes + len(raw), versions + 1)
                if archive is not None:
                    archive.mkdir(parents=True, exist_ok=True)
                    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:200]
                    write_bytes_atomic(archive / f"{digest[:16]}-{safe}", raw)
        if ch is not None:
            receipt.update(challenge_digest=ch.digest, issued_utc=utc(ch.issued))
        new.append(receipt)
    return new


@dataclass
class Collected:
    """What a collector recorded: the accepted receipts (in the signed log), how many other files it saw (junk,
    refused: reported, never logged), and whether Ctrl-C stopped it early."""

    receipts: list[dict[str, Any]] = field(default_factory=list)
    others: int = 0
    stopped: bool = False

    @property
    def valid(self) -> int:
        """Distinct nodes that answered (what --expect counts): node names of accepted commitments that
        triage.expected counts. Files or sha256s were counted before, so one node rewriting its commitment, or writing
        it under several file names, ended the fleet's collection early and left the others without a receipt."""
        return len({r["node"] for r in self.receipts if r["accepted"] and r.get("expected", True)})


def collect(drop: Path, ch: Challenge, output: Path, key: Any, *, archive: Path, trusted: set[str] | None,
            auditor: str, expect: int | None, until: dt.datetime, interval: float, names: dict[str, str] | None = None,
            on_receipt: Callable[[dict[str, Any]], None] = lambda r: None) -> Collected:  # fmt: skip
    """The collector: scan `drop` every `interval` seconds and stamp each new commitment by this machine's clock
    (scan), rewriting the receipt log at `output`, signed by the auditor's `key`, after every accepted arrival (so a
    crash keeps what was recorded). Stops at `expect` valid commitments or once `until` (the deadline plus grace) has
    passed; Ctrl-C stops it early, and what was recorded is kept."""
    log = Collected()
    seen: dict[Any, Any] = {}
    write_atomic(output, dumps(receipts_doc(ch, log.receipts, key)))
    try:
        while True:
            # each file is stamped by this clock right after its bytes are read (not at the start of the scan)
            new = scan(
                drop,
                seen,
                lambda: dt.datetime.now(dt.UTC),
                ch,
                archive=archive,
                trusted=trusted,
                auditor=auditor,
                names=names,
            )
            now = dt.datetime.now(dt.UTC)
            accepted = [r for r in new if r["accepted"]]  # only commitments are logged and archived: junk is not kept
            log.others += len(new) - len(accepted)
            if accepted:
                log.receipts += accepted
                write_atomic(output, dumps(receipts_doc(ch, log.receipts, key)))
            for r in new:
                on_receipt(r)
            if (expect and log.valid >= expect) or now > until:
                return log
            time.sleep(interval)
    except KeyboardInterrupt:
        log.stopped = True
        return log


@dataclass
class Verdict:
    challenge: Challenge
    findings: list[Finding] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    fleet: dict[str, Any] = field(default_factory=dict)
    #: per device UUID counted: node, kind, name, verified FLOPs, elapsed (auditor's clock) and the lower bound
    devices: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"nonce": self.challenge.nonce, "dtype": self.challenge.dtype, "n": self.challenge.n,
                "inner": self.challenge.inner, "fold": self.challenge.fold, "challenge_digest": self.challenge.digest,
                "issued_utc": utc(self.challenge.issued), "deadline_utc": utc(self.challenge.deadline), "findings": [f.to_dict() for f in self.findings],
                "nodes": self.nodes, "devices": self.devices, "fleet": self.fleet}  # fmt: skip


def _receipts(path: Path | None, ch: Challenge, auditor: str | None, out: list[Finding]) -> dict[str, dt.datetime]:
    """sha256 of each recorded commitment -> its earliest arrival, from a receipt log the auditor's key signed for this
    very challenge. Anything else is an error finding and proves no arrival."""
    if path is None:
        out.append(
            Finding(
                WARNING, "no-receipts", "no receipt log: no arrival time is known, so no bound is proven", "receipts"
            )
        )
        return {}
    try:
        data = read_json(path, RECEIPTS_KIND)
    except ChallengeError as exc:
        out.append(Finding(ERROR, "malformed", str(exc), "receipts"))
        return {}
    bad = signature_problem(data, {auditor} if auditor else set(), str(path))
    if bad:
        out.append(
            Finding(
                ERROR, "receipts-key", f"{bad} (receipts count only when the auditor's key signed them)", "receipts"
            )
        )
        return {}
    if data.get("nonce") != ch.nonce or data.get("challenge_digest") != ch.digest:
        out.append(
            Finding(
                ERROR, "receipts-challenge", f"{path} is for another challenge (nonce or digest differs)", "receipts"
            )
        )
        return {}
    receipts = data.get("receipts")
    if not isinstance(receipts, list):
        out.append(Finding(ERROR, "malformed", f"{path}: receipts should be a list", "receipts"))
        return {}
    arrivals: dict[str, dt.datetime] = {}
    for i, r in enumerate(receipts):
        where = f"{path.name}: receipts[{i}]"
        try:
            if not isinstance(r, dict) or not isinstance(r.get("sha256"), (str, type(None))):
                raise ChallengeError(f"{where}: not a receipt")
            if r.get("sha256") is None or r.get("accepted") is False:
                continue
            if r.get("challenge_digest") != ch.digest or r.get("issued_utc") != utc(ch.issued):
                raise ChallengeError(f"{where}: names another challenge or issue time")
            arrived = parse_utc(_expect(r, "arrived_utc", str, where), where)
        except ChallengeError as exc:
            out.append(Finding(ERROR, "malformed", str(exc), "receipts"))
            continue
        if r["sha256"] not in arrivals or arrived < arrivals[r["sha256"]]:
            arrivals[r["sha256"]] = arrived
    return arrivals


def _products(data: dict[str, Any], ch: Challenge, where: str) -> tuple[dict[str, list[dict[str, Any]]], list[Finding]]:
    """The commitment's products by device UUID, each (device, index) exactly once and exactly ch.products per
    device; a product listed twice rejects the whole commitment (it would count the same work twice)."""
    products = data.get("products")
    if not isinstance(products, list):
        return {}, [Finding(ERROR, "malformed", "products should be a list", where)]
    per_device: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, int]] = set()
    for i, p in enumerate(products):
        pw = f"{where}: products[{i}]"
        try:
            uuid, index, root = _expect(p, "device", str, pw), _expect(p, "index", int, pw), _expect(p, "root", str, pw)
            for key in ("device_kind", "device_name"):
                _expect(p, key, (str, type(None)), pw)
        except ChallengeError as exc:
            return {}, [Finding(ERROR, "malformed", str(exc), where)]
        bad = name_problem(uuid, "device")
        if bad:
            return {}, [Finding(ERROR, "bad-name", f"{pw}: {bad}: the commitment is rejected", where)]
        if (uuid, index) in seen:
            return {}, [Finding(ERROR, "duplicate-product", f"{uuid}#{index} is listed more than once: the commitment is rejected", where)]  # fmt: skip
        seen.add((uuid, index))
        if p.get("n") != ch.n or p.get("dtype") != ch.dtype or not 0 <= index < ch.products or len(root) != 64:
            return {}, [Finding(ERROR, "product-mismatch", f"{uuid}#{index}: n, dtype, index or root differs from the challenge's", where)]  # fmt: skip
        per_device.setdefault(uuid, []).append(p)
        if len(per_device) > MAX_DEVICES:
            return {}, [Finding(ERROR, "too-many-devices", f"answers for more than {MAX_DEVICES} devices: the commitment is rejected", where)]  # fmt: skip
    out = []
    for uuid in sorted(per_device):
        if len(per_device[uuid]) != ch.products:
            out.append(Finding(ERROR, "incomplete-device", f"{uuid} answers {len(per_device[uuid])} of the {ch.products} products "
                               "asked: none of its products count", where))  # fmt: skip
            del per_device[uuid]
    return per_device, out


def verify(challenge_path: Path, directory: Path, receipts_path: Path | None = None, trusted: set[str] | None = None,
           generator: torch.Generator | None = None, *, auditor: str | None = None,
           rng: np.random.Generator | None = None, names: dict[str, str] | None = None) -> Verdict:  # fmt: skip
    """Everything in `directory` checked against the auditor's own copy of the challenge (see the module docstring).
    `auditor` is the auditor's key id: the challenge and the receipts must carry its signature, and no node may hold
    it; `trusted` the node keys commitments may be signed with; `names` the node names the trust list binds to keys
    (keys.parse_trust). Commitments are checked cheapest-first and under a per-key budget (bench.challenge.triage).
    Only the challenge file itself may raise ChallengeError (it is the auditor's own); every problem with what nodes
    wrote is a Finding, one per file, and what fails is not counted."""
    ch = load_challenge(challenge_path)
    if auditor is not None and trusted is not None and auditor in trusted:
        raise ChallengeError(
            f"the auditor's key {auditor} is in the node trust list: no node may hold the auditor's key"
        )
    verdict = Verdict(ch)
    out = verdict.findings
    if auditor is None:
        out.append(Finding(ERROR, "no-auditor-key", "no auditor key given: the challenge and receipts are not authenticated, "
                           "so no bound is proven", "auditor"))  # fmt: skip
    else:
        bad = signature_problem(ch.data, {auditor}, f"challenge {challenge_path.name}")
        if bad:
            out.append(Finding(ERROR, "challenge-key", f"{bad} (a challenge counts only when the auditor's key signed it)", "challenge"))  # fmt: skip
    authentic = not any(f.code in ("no-auditor-key", "challenge-key") for f in out)
    arrivals = _receipts(receipts_path, ch, auditor, out) if authentic else {}
    generator = generator or torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little"))
    rng = rng or np.random.default_rng(int.from_bytes(os.urandom(16), "little"))
    counted: dict[str, tuple[dt.datetime, str]] = {}  # device UUID -> (arrival, node) of the product set counted
    candidates = []
    for path in sorted(directory.glob(f"*{COMMIT_SUFFIX}")):
        where = intake.safe_name(path.name)
        try:  # read once: hashed and parsed from one buffer
            raw = intake.read_bytes(path, root=directory, max_bytes=commit_limit(ch))
            if receipts_path is not None and authentic and hashlib.sha256(raw).hexdigest() not in arrivals:
                # bytes the collector never accepted (junk, unsigned or not, and files changed since) are refused by
                # their hash before they are parsed: parsing and checking a signature cost 15 ms per 500 KiB
                why = f"{where}: no receipt for these bytes: the collector never recorded them (changed after arrival, or never arrived)"
                out.append(Finding(ERROR, "no-receipt", why, where))
                continue
            doc = intake.Document(path, raw, intake.parse_json(raw, where, max_containers=MAX_COMMIT_CONTAINERS))
            check_kind(doc.data, COMMITMENT_KIND, where)
            node = _expect(doc.data, "node", str, where)
        except intake.InputError as exc:
            out.append(Finding(ERROR, "malformed", str(exc), where))
            continue
        except ChallengeError as exc:
            out.append(Finding(ERROR, "malformed", str(exc), where))
            continue
        bad = name_problem(node, "node")
        if bad:
            out.append(Finding(ERROR, "bad-name", f"{where}: {bad}: the commitment is rejected", where))
            continue
        data = doc.data
        problems = []
        bad = commitment_problem(data, ch, trusted, auditor, where)
        if bad:
            problems.append((bad, "commitment"))
        if ch.nodes is not None and node not in ch.nodes:
            problems.append((f"{where}: node {node!r} was not challenged", "not-challenged"))
        signer = sign.signer(data) if isinstance(data.get("signature"), dict) else None
        bad = triage.name_key_problem(node, signer, names, where)
        if bad:
            problems.append((bad, "name-key"))
        arrival = arrivals.get(doc.sha256)
        if arrival is not None:
            if arrival <= ch.issued:
                problems.append(
                    (
                        f"{where}: arrived {utc(arrival)}, not after the issue time {utc(ch.issued)}",
                        "arrival-before-issue",
                    )
                )
            elif arrival > ch.deadline:
                problems.append((f"{where}: arrived {utc(arrival)}, after the deadline {utc(ch.deadline)}", "late"))
        elif receipts_path is not None and authentic:
            why = f"{where}: no receipt for these bytes: the collector never recorded them (changed after arrival, or never arrived)"
            problems.append((why, "no-receipt"))
        for message, code in problems:
            out.append(Finding(ERROR, code, message, where))
        per_device, product_findings = _products(data, ch, where)
        out += product_findings
        rank = triage.rank(node, signer, names, ch.nodes)
        first = arrival or dt.datetime.max.replace(tzinfo=dt.UTC)
        candidates.append((first, path, data, node, per_device, not problems, signer, rank))
    # a root committed twice (for two devices, or by two commitments) is one product claimed for several devices:
    # operands differ per node, device and index, so honest products never share one. Rejected before any work.
    # (A verbatim copy of one commitment claims the same node, device and index: that is the counted-once rule's.)
    owners: dict[str, set[tuple[str, str, int]]] = {}
    for c in candidates:
        if c[5]:  # acceptable: signed by a node key, for this challenge (junk cannot deny an honest node)
            for uuid, products in c[4].items():
                for p in products:
                    owners.setdefault(p["root"], set()).add((c[3], uuid, p["index"]))
    shared = {root for root, claims in owners.items() if len(claims) > 1}
    # what earlier commitments used: a node answers once, and a reveal file is decompressed at most once per run (a
    # file reused by another commitment, or more commitments from one node, would multiply the verifier's work)
    used_files: set[Any] = set()
    answered: set[tuple[str, str | None]] = set()  # (node, key): another key's commitment never voids a node's own
    budget = triage.KeyBudget()
    ordered = triage.order(candidates, key=lambda c: (c[7], c[0], c[1].name))
    for arrival, path, data, node, per_device, acceptable, signer, rank in ordered:
        if acceptable and per_device and (node, signer) in answered:
            out.append(Finding(ERROR, "second-commitment", f"node {node!r} already answered this challenge: a "
                               "second commitment is not checked", intake.safe_name(path.name)))  # fmt: skip
            acceptable = False
        if acceptable and per_device and budget.exhausted(signer, rank == 0):
            out.append(Finding(ERROR, "key-budget", f"key {signer} already sent {budget.limit} commitments that failed "
                               "a product check: its further ones under names not bound to it are not read",
                               intake.safe_name(path.name)))  # fmt: skip
            acceptable = False
        try:
            entry = _node(ch, directory, path, data, node, per_device, acceptable, arrival, counted, generator, rng,
                          out, verdict.devices, shared, used_files)  # fmt: skip
            if entry.pop("product_failed", False):
                budget.charge(signer)
            verdict.nodes.append(entry)
        except Exception as exc:  # noqa: BLE001 - one hostile commitment is one failed entry, never the end of the run
            out.append(Finding(ERROR, "unchecked", f"not checked: {type(exc).__name__}: {exc}", intake.safe_name(path.name)))  # fmt: skip
            budget.charge(signer)
        if acceptable and per_device:
            answered.add((node, signer))
    counted_nodes = [n for n in verdict.nodes if n["verified_flops"] > 0 and n["arrived_utc"]]
    flops = sum(n["verified_flops"] for n in counted_nodes)
    last = max((parse_utc(n["arrived_utc"], "node") for n in counted_nodes), default=None)
    elapsed = (last - ch.issued).total_seconds() if last else None
    verdict.fleet = {"nodes": len(counted_nodes), "devices": len(counted), "verified_flops": flops, "elapsed_s": elapsed,
                     "gflops_lower_bound": flops / elapsed / 1e9 if elapsed else None}  # fmt: skip
    # What a device proves is its share of the fleet's bound: its FLOPs over the fleet's elapsed time (the last counted
    # arrival), not over its own node's. Work forwarded from several nodes to one machine would otherwise be counted
    # at each node's early arrival, and the per-device bounds would sum to more than anyone computed.
    for d in verdict.devices:
        d["elapsed_s"] = elapsed
        d["tflops_lower_bound"] = d["verified_flops"] / elapsed / 1e12 if elapsed else 0.0
    return verdict


def device_ceiling(kind: str | None, name: str | None, dtype: str, host: dict[str, Any], *, sm_count: int | None = None,
                   mig: bool = False) -> float | None:  # fmt: skip
    """The most TFLOPS the device could give this dtype, or None when bench cannot bound it (and then it is not
    counted): a GPU's vendor peak from bench's table (a MIG slice: its SM share of its GPU's, from the slice's SM
    count; none without one), a CPU's from its committed core count (verify.cpu_ceiling: any clock, any ISA). A GPU
    model bench has no row for, a CPU without a core count, or any other kind has no ceiling."""
    if kind == "cuda":
        device = type("Device", (), {"name": name or "", "mig": mig, "sm_count": sm_count})()
        peak = peaks.device_peak(device, dtype)
        return peak.tflops if peak else None
    if kind != "cpu":
        return None
    cores = host.get("physical_cores")
    if not (isinstance(cores, int) and not isinstance(cores, bool) and 0 < cores <= verify_report.CPU_MAX_CORES):
        return None
    m = Measurement(workload="matmul", spec={"precision": dtype}, device={"kind": "cpu"}, status="ok")
    ceiling = verify_report.cpu_ceiling(m, {"host": {"physical_cores": cores}})
    return ceiling.tflops if ceiling else None


def _inventory_devices(inventory: Any) -> dict[str, dict[str, Any]]:
    """The commitment's inventory GPUs and MIG slices by UUID (string UUIDs only): {name (the whole GPU's model),
    mig, sm_count}. A GPU shared out as MIG slices is not also a device of its own, and when its slices' SM counts
    cannot be real (more than the GPU has, together or alone: peaks.mig_slices_fit) none of them has an SM count,
    so none gets a ceiling."""
    out: dict[str, dict[str, Any]] = {}
    gpus = inventory.get("gpus") if isinstance(inventory, dict) and isinstance(inventory.get("gpus"), list) else []
    for g in gpus:
        if not isinstance(g, dict) or not isinstance(g.get("uuid"), str):
            continue
        name = g.get("name") if isinstance(g.get("name"), str) else None
        migs = (
            [m for m in g.get("mig_devices") or [] if isinstance(m, dict)]
            if isinstance(g.get("mig_devices"), list)
            else []
        )
        if not migs:
            out.setdefault(g["uuid"], {"name": name, "mig": False, "sm_count": None})
            continue
        fit = peaks.mig_slices_fit(name or "", [m.get("sm_count") for m in migs])
        for m in migs:
            if isinstance(m.get("uuid"), str):
                out.setdefault(m["uuid"], {"name": name, "mig": True, "sm_count": m.get("sm_count") if fit else None})
    return out


def _file_key(directory: Path, entry: Any) -> Any:
    """What a reveal entry's file is on disk (device and inode, else its resolved path): two entries naming one file,
    by any path or hard link, share it."""
    rel = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(rel, str):
        return None
    path = directory / rel
    try:
        info = path.stat()
        return (info.st_dev, info.st_ino)
    except (OSError, ValueError):
        try:
            return str(path.resolve())
        except (OSError, RuntimeError, ValueError):
            return rel


def _node(ch: Challenge, directory: Path, path: Path, data: dict[str, Any], node: str,
          per_device: dict[str, list[dict[str, Any]]], acceptable: bool, arrival: dt.datetime,
          counted: dict[str, tuple[dt.datetime, str]], generator: torch.Generator, rng: np.random.Generator,
          out: list[Finding], devices: list[dict[str, Any]], shared_roots: set[str] = frozenset(),  # type: ignore[assignment]
          used_files: set[Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """One commitment's products checked. Nothing it proves is added to `counted` and `devices` until every device
    of it is checked (an exception part way leaves no trace). Cheap refusals come first (unknown device, no ceiling,
    a root claimed twice, a reveal file shared by entries); a device stops at its first failing product."""
    where = intake.safe_name(path.name)
    known = arrival.year < 9999
    result: dict[str, Any] = {"node": node, "file": where, "arrived_utc": utc(arrival) if known else None,
                              "products": sum(len(ps) for ps in per_device.values()), "verified": 0, "verified_flops": 0,
                              "failed": [], "duplicates": [], "gflops_lower_bound": None}  # fmt: skip
    if not acceptable or not per_device:
        return result
    reveal_path = directory / path.name.replace(COMMIT_SUFFIX, REVEAL_SUFFIX)
    try:  # under the commitment's own limits: a manifest names files, so it is no larger (never a 1 GiB stream)
        reveal_doc = read_document(reveal_path, REVEAL_KIND, root=directory, max_bytes=commit_limit(ch),
                                   max_containers=MAX_COMMIT_CONTAINERS).data  # fmt: skip
        files_list = _expect(reveal_doc, "files", list, intake.safe_name(reveal_path.name))
    except ChallengeError as exc:
        out.append(Finding(ERROR, "malformed-reveal", f"reveal: {exc}", where))
        result["product_failed"] = True  # nothing of it can be checked: charged to its key like a wrong product
        return result
    files = {}
    for f in files_list:
        if isinstance(f, dict) and isinstance(f.get("device"), str) and isinstance(f.get("index"), int):
            files.setdefault((f["device"], f["index"]), f)
    committed = {(uuid, p["index"]) for uuid, ps in per_device.items() for p in ps}
    users: dict[Any, int] = {}
    file_keys = {}
    used_files = set() if used_files is None else used_files
    for k in committed:
        if k in files:
            file_keys[k] = _file_key(directory, files[k])
            users[file_keys[k]] = users.get(file_keys[k], 0) + 1 + (file_keys[k] in used_files)  # used before: shared
    used_files.update(file_keys.values())
    inventory = data.get("inventory") if isinstance(data.get("inventory"), dict) else {}
    known_devices = _inventory_devices(inventory)
    host = inventory.get("host") if isinstance(inventory.get("host"), dict) else {}
    good: dict[str, int] = {}
    mine: list[dict[str, Any]] = []
    elapsed = (arrival - ch.issued).total_seconds() if known else None
    signer = sign.signer(data)
    committed_host = host.get("hostname") if isinstance(host.get("hostname"), str) else None
    eligible: dict[str, tuple[str | None, str | None, float]] = {}  # UUID -> (kind, name, ceiling): passed cheap checks
    for uuid, products in sorted(per_device.items()):
        kind = products[0].get("device_kind")
        if kind == "cuda":
            facts = known_devices.get(uuid)
            if facts is None:
                result["failed"].append((f"{uuid}: device is not in the commitment's inventory", "unknown-device"))
                continue
            name = facts["name"]
            ceiling = device_ceiling(kind, name, ch.dtype, host, sm_count=facts["sm_count"], mig=facts["mig"])
        else:
            name = products[0].get("device_name")
            if kind != "cpu" or uuid != host.get("fingerprint"):
                result["failed"].append((f"{uuid}: device is not in the commitment's inventory", "unknown-device"))
                continue
            ceiling = device_ceiling(kind, name, ch.dtype, host)
        if ceiling is None:
            why = ("a MIG slice without an SM count" if kind == "cuda" and known_devices[uuid]["mig"]
                   else f"a GPU model bench has no {ch.dtype} peak for ({name!r})" if kind == "cuda"
                   else "a CPU without a core count in the commitment's inventory")  # fmt: skip
            result["failed"].append(
                (f"{uuid}: {why}: no physical ceiling bounds it, so it is not counted", "no-ceiling")
            )
            continue
        roots = [p["root"] for p in products]
        if any(r in shared_roots for r in roots):
            why = f"{uuid}: a committed root is claimed more than once (one product for several devices): not counted"
            result["failed"].append((why, "duplicate-root"))
            continue
        if any(
            users.get(file_keys.get((uuid, p["index"])), 0) > 1 for p in products if (uuid, p["index"]) in file_keys
        ):
            result["failed"].append(
                (f"{uuid}: a reveal file is named by more than one entry: not counted", "shared-reveal-file")
            )
            continue
        eligible[uuid] = (kind, name, ceiling)
    spot = None
    if eligible:  # the cheapest decisive check next: one product of one device, drawn by the verifier's secret rng
        spot_uuid, spot = triage.spot_pick({u: per_device[u] for u in eligible}, rng)
        spot_failure = _check_product(ch, directory, files.get((spot_uuid, spot["index"])), node, spot_uuid, spot,
                                      generator, rng, where)  # fmt: skip
        if spot_failure:
            why, code = spot_failure
            for message, c in result["failed"]:
                out.append(Finding(ERROR, c, message, where))
            out.append(Finding(ERROR, code, f"{why}: the randomly drawn product is wrong, so the whole commitment is "
                               "refused and nothing else in it is checked or counted", where))  # fmt: skip
            result["failed"] = [message for message, _ in result["failed"]] + [why]
            result["product_failed"] = True
            return result
    for uuid, (kind, name, ceiling) in eligible.items():
        products = per_device[uuid]
        passed, failure = 0, None
        for p in sorted(products, key=lambda p: p["index"]):
            if p is spot:  # checked above
                passed += 1
                continue
            failure = _check_product(ch, directory, files.get((uuid, p["index"])), node, uuid, p, generator, rng, where)
            if failure:
                break  # one bad product: the device does not count, so its other products are not checked
            passed += 1
        if failure:
            result["failed"].append(failure)
            result["product_failed"] = True
            continue
        if uuid in counted:
            result["duplicates"].append(f"{uuid} already counted for {counted[uuid][1]}")
            continue
        if elapsed and passed * ch.flops_per_product / elapsed / 1e12 > ceiling * (1 + peaks.IMPLAUSIBLE_TOLERANCE):
            tflops = passed * ch.flops_per_product / elapsed / 1e12
            why = (f"{uuid}: {tflops:.4g} TFLOPS is above the physical peak of a {name} ({ceiling:.4g} TFLOPS "
                   f"{ch.dtype}): answered by other hardware, or a clock is wrong; not counted")  # fmt: skip
            result["failed"].append((why, "above-peak"))
            continue
        good[uuid] = passed
        if elapsed:
            mine.append({"device": uuid, "node": node, "key_id": signer, "host": committed_host, "kind": kind,
                         "name": name, "products": passed,
                         "verified_flops": passed * ch.flops_per_product, "elapsed_s": elapsed,
                         "tflops_lower_bound": passed * ch.flops_per_product / elapsed / 1e12})  # fmt: skip
    for uuid in good:
        counted[uuid] = (arrival, node)
    devices += mine
    result["verified"] = sum(good.values())
    result["verified_flops"] = result["verified"] * ch.flops_per_product
    for message, code in result["failed"]:
        out.append(Finding(ERROR, code, message, where))
    result["failed"] = [message for message, _ in result["failed"]]
    for d in result["duplicates"]:
        out.append(Finding(WARNING, "duplicate-device", f"duplicate device, counted once: {d}", where))
    if elapsed and result["verified_flops"]:
        result["elapsed_s"] = elapsed
        result["gflops_lower_bound"] = result["verified_flops"] / elapsed / 1e9
    return result


def reference_operand(nonce: str, node: str, device: str, index: int, which: str, n: int, dtype: str, version: int = 1,
                      *, inner: int | None = None) -> torch.Tensor:  # fmt: skip
    """protocol.operand by the formula alone (reference=True): never by a C kernel or compiled generator that a node
    warmed in this same process (generator.native, fuse), whose bits the auditor would otherwise be trusting."""
    return operand(nonce, node, device, index, which, n, dtype, version, inner=inner, reference=True)


def _check_product(ch: Challenge, directory: Path, entry: Any, node: str, uuid: str, p: dict[str, Any],
                   generator: torch.Generator, rng: np.random.Generator, where: str) -> tuple[str, str] | None:  # fmt: skip
    """(why, code) when this committed product does not count: not revealed, not what was committed, not the
    product (Freivalds), or not computed in the challenge's precision (exact rows)."""
    index = p["index"]
    if entry is None:
        return f"{uuid}#{index}: not revealed", "not-revealed"
    try:
        c = load_product(directory, entry, ch, f"{where}: {uuid}#{index}")
    except ChallengeError as exc:
        return str(exc), "malformed-reveal"
    if merkle_root(row_bytes(c)) != p["root"]:
        return f"{uuid}#{index}: revealed product does not match its committed Merkle root", "root-mismatch"
    a = reference_operand(ch.nonce, node, uuid, index, "A", ch.n, ch.dtype, ch.operands, inner=ch.inner)
    b = reference_operand(ch.nonce, node, uuid, index, "B", ch.n, ch.dtype, ch.operands, inner=ch.inner)
    for _ in range(FREIVALDS_VECTORS):
        check = freivalds.check(a, b, c, prec.get(ch.dtype), generator=generator)
        if not check.passed:
            return f"{uuid}#{index}: Freivalds check failed ({check.reason})", "freivalds"
    rows = exact_rows.check(a, b, c, ch.dtype, rng, operands=ch.operands, fold=ch.fold)
    if not rows.passed:
        return f"{uuid}#{index}: exact-row check failed ({rows.reason})", "precision"
    return None
