"""Auditor challenges: nonce-bound, seeded matrix products whose answers a CPU checks in O(n^2), timed by the
auditor's own clock.

Protocol (README, "Challenging a fleet"):
  1. issue    — the auditor signs {nonce, dtype, n, products per device, issue time, deadline, nodes?}.
  2. answer   — each node derives A_i, B_i from (nonce, node, device UUID, i) with a counter-based generator (Philox,
                seeded by SHA-256) on the CPU, copies them to each device, computes C_i = A_i.B_i, hashes C_i's rows
                into a Merkle root, and drops a small signed commitment (roots, UUIDs, inventory) as soon as the
                products exist; then it reveals the C_i themselves (gzip, dtype as computed) next to it, untimed.
  3. collect  — the auditor records, by its own clock, when each commitment arrived, in a signed receipt log.
  4. verify   — on a CPU: signatures and nonce; arrival before the deadline; each revealed C_i hashes to its committed
                root (so nothing computed after the commitment counts); Freivalds' check with the verifier's own secret
                vectors in float64 (bench.workloads.freivalds, tolerance from the dtype and n); every device UUID
                counted once; proven lower bound = verified FLOPs / (arrival - issue time), per node and for the fleet.

What it proves: that whoever answered had, at the time, at least that much throughput on matrices they could not have
prepared in advance. The bound includes input generation, transfers and hashing, and the commitment's transfer
time, so it is conservative.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import math
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import precision as prec
from bench.report import sign
from bench.report import verify as verify_report
from bench.workloads import freivalds

CHALLENGE_KIND = "bench.challenge"
COMMITMENT_KIND = "bench.challenge-commitment"
REVEAL_KIND = "bench.challenge-reveal"
RECEIPTS_KIND = "bench.challenge-receipts"
SCHEMA_VERSION = 1
DTYPES = ("float64", "float32", "bfloat16", "float16")
COMMIT_SUFFIX = ".commit.json"
REVEAL_SUFFIX = ".reveal.json"
SEED_TAG = b"bench.challenge.v1"
LEAF, NODE = b"\x00", b"\x01"


class ChallengeError(ValueError):
    """A malformed challenge, commitment, reveal or receipt file; the message names the file and the field."""


# --- time -------------------------------------------------------------------------------------------------------------


def utc(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str, where: str) -> dt.datetime:
    try:
        return verify_report.parse_utc(text)
    except (TypeError, ValueError):
        raise ChallengeError(f"{where}: {text!r} is not a UTC timestamp") from None


# --- inputs -----------------------------------------------------------------------------------------------------------


def seed(nonce: str, node: str, device: str, index: int, which: str) -> bytes:
    """SHA-256 of the tag, nonce, node, device UUID, product index and operand name: the generator's key."""
    h = hashlib.sha256(SEED_TAG)
    for part in (nonce, node, device):
        h.update(part.encode() + b"\x00")
    h.update(index.to_bytes(8, "little") + which.encode())
    return h.digest()


def operand(nonce: str, node: str, device: str, index: int, which: str, n: int, dtype: str) -> torch.Tensor:
    """A_i or B_i (which = 'A' or 'B'): n x n uniform in [-1, 1) from Philox keyed by seed(), rounded to `dtype`, on
    the CPU. Counter-based and platform-independent: anyone regenerates it bit for bit."""
    key = int.from_bytes(seed(nonce, node, device, index, which)[:16], "little")
    values = np.random.Generator(np.random.Philox(key=key)).uniform(-1.0, 1.0, size=(n, n))
    if dtype == "float64":
        return torch.from_numpy(values)
    t = torch.from_numpy(values.astype(np.float32))
    return t if dtype == "float32" else t.to(prec.get(dtype).torch_dtype)


def row_bytes(c: torch.Tensor) -> np.ndarray:
    """C as a (rows, bytes per row) uint8 array of its little-endian bit patterns, dtype as computed."""
    c = c.detach().to("cpu").contiguous()
    if c.dtype in (torch.bfloat16, torch.float16):
        c = c.view(torch.int16)
    return c.numpy().view(np.uint8).reshape(c.shape[0], -1)


def merkle_root(rows: np.ndarray) -> str:
    """Merkle root (SHA-256) over the rows: leaf = H(0x00 | row index as u64 | row bytes), node = H(0x01 | left |
    right); an odd node out is carried up unchanged."""
    level = [hashlib.sha256(LEAF + i.to_bytes(8, "little") + row.tobytes()).digest() for i, row in enumerate(rows)]
    if not level:
        return hashlib.sha256(LEAF).hexdigest()
    while len(level) > 1:
        nxt = [hashlib.sha256(NODE + level[j] + level[j + 1]).digest() for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()


# --- files ------------------------------------------------------------------------------------------------------------


def _expect(d: Any, key: str, types: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(d, dict) or key not in d:
        raise ChallengeError(f"{where}: missing field {key!r}")
    value = d[key]
    allowed = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        raise ChallengeError(f"{where}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def read_json(path: Path, kind: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ChallengeError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChallengeError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != kind:
        found = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise ChallengeError(f"{path}: not a {kind} file (kind is {found!r})")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ChallengeError(f"{path}: unsupported schema_version {data.get('schema_version')!r}")
    return data


@dataclass(frozen=True)
class Challenge:
    nonce: str
    dtype: str
    n: int
    products: int
    issued: dt.datetime
    deadline: dt.datetime
    nodes: list[str] | None
    data: dict[str, Any]

    @property
    def flops_per_product(self) -> int:
        return 2 * self.n**3

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> Challenge:
        nonce = _expect(data, "nonce", str, where)
        dtype = _expect(data, "dtype", str, where)
        if dtype not in DTYPES:
            raise ChallengeError(f"{where}: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        n, products = _expect(data, "n", int, where), _expect(data, "products", int, where)
        if n < 2 or products < 1:
            raise ChallengeError(f"{where}: n must be >= 2 and products >= 1")
        nodes = data.get("nodes")
        if nodes is not None and not (isinstance(nodes, list) and all(isinstance(x, str) for x in nodes)):
            raise ChallengeError(f"{where}: nodes must be a list of host names or null")
        issued = parse_utc(_expect(data, "issued_utc", str, where), where)
        deadline = parse_utc(_expect(data, "deadline_utc", str, where), where)
        if deadline <= issued:
            raise ChallengeError(f"{where}: deadline_utc is not after issued_utc")
        return cls(nonce, dtype, n, products, issued, deadline, nodes, data)


def load_challenge(path: Path) -> Challenge:
    return Challenge.from_dict(read_json(path, CHALLENGE_KIND), str(path))


def issue(key: Any, *, dtype: str, n: int, products: int, window: dt.timedelta, nodes: list[str] | None,
          now: dt.datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """A new signed challenge: a fresh 256-bit nonce from the OS, valid from now until now + window."""
    now = now or dt.datetime.now(dt.UTC)
    data = {"kind": CHALLENGE_KIND, "schema_version": SCHEMA_VERSION, "nonce": secrets.token_hex(32), "dtype": dtype,
            "n": n, "products": products, "issued_utc": utc(now), "deadline_utc": utc(now + window), "nodes": nodes}  # fmt: skip
    Challenge.from_dict(data, "challenge")
    data["signature"] = sign.sign(data, key)
    return data


def commit_name(node: str, nonce: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in node)
    return f"{safe}-{nonce[:12]}"


# --- the node's side --------------------------------------------------------------------------------------------------


@dataclass
class Product:
    device: dict[str, Any]  # id, kind, name, uuid
    index: int
    c: torch.Tensor
    root: str
    seconds: float


def compute(ch: Challenge, node: str, device: dict[str, Any], index: int) -> Product:
    """One product on one device, timed by the node (for its own record only; the auditor's clock decides)."""
    start = time.perf_counter()
    a = operand(ch.nonce, node, device["uuid"], index, "A", ch.n, ch.dtype).to(device["id"])
    b = operand(ch.nonce, node, device["uuid"], index, "B", ch.n, ch.dtype).to(device["id"])
    c = a @ b
    if device["kind"] == "cuda":
        torch.cuda.synchronize(device["id"])
    root = merkle_root(row_bytes(c))
    return Product(device, index, c, root, time.perf_counter() - start)


def commitment(ch: Challenge, node: str, inventory: dict[str, Any], products: list[Product], key: Any) -> dict[str, Any]:
    host = inventory.get("host", {})
    gpus = inventory.get("nvml", {}).get("gpus", [])
    data = {"kind": COMMITMENT_KIND, "schema_version": SCHEMA_VERSION, "nonce": ch.nonce, "node": node,
            "challenge_digest": sign.digest(ch.data), "committed_utc": utc(dt.datetime.now(dt.UTC)),
            "inventory": {"host": {k: host.get(k) for k in ("hostname", "fingerprint", "cpu_model", "physical_cores")},
                          "gpus": [{k: g.get(k) for k in ("index", "name", "uuid")} for g in gpus]},
            "products": [{"device": p.device["uuid"], "device_id": p.device["id"], "device_name": p.device["name"],
                          "device_kind": p.device["kind"], "index": p.index, "n": ch.n, "dtype": ch.dtype,
                          "root": p.root, "node_seconds": p.seconds} for p in products]}  # fmt: skip
    data["signature"] = sign.sign(data, key)
    return data


def reveal(directory: Path, base: str, ch: Challenge, products: list[Product]) -> dict[str, Any]:
    """Write each C_i (gzip of its little-endian bytes, dtype as computed) and the manifest naming them."""
    folder = directory / base
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for p in products:
        name = f"{commit_name(p.device['uuid'], '')}{p.index}.bin.gz"  # <uuid>-<i>.bin.gz
        raw = row_bytes(p.c).tobytes()
        tmp = folder / f".{name}.tmp"
        with gzip.open(tmp, "wb", compresslevel=1) as fh:
            fh.write(raw)
        os.replace(tmp, folder / name)
        files.append({"device": p.device["uuid"], "index": p.index, "file": f"{base}/{name}", "dtype": ch.dtype,
                      "shape": [ch.n, ch.n], "sha256": hashlib.sha256(raw).hexdigest()})  # fmt: skip
    return {"kind": REVEAL_KIND, "schema_version": SCHEMA_VERSION, "nonce": ch.nonce, "files": files}


def load_product(directory: Path, entry: dict[str, Any], ch: Challenge, where: str) -> torch.Tensor:
    """A revealed C_i as a CPU tensor of the challenge's dtype; ChallengeError when the file is missing or malformed."""
    rel = _expect(entry, "file", str, where)
    path = (directory / rel).resolve()
    if directory.resolve() not in path.parents:
        raise ChallengeError(f"{where}: file {rel!r} lies outside the drop directory")
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise ChallengeError(f"{where}: cannot read {rel}: {exc}") from None
    dtype = prec.get(ch.dtype).torch_dtype
    itemsize = torch.tensor([], dtype=dtype).element_size()
    if len(raw) != ch.n * ch.n * itemsize:
        raise ChallengeError(f"{where}: {rel} holds {len(raw)} bytes, expected {ch.n}x{ch.n} {ch.dtype}")
    as_int = {2: torch.int16, 4: torch.int32, 8: torch.int64}[itemsize]
    return torch.frombuffer(bytearray(raw), dtype=as_int).view(dtype).reshape(ch.n, ch.n)


# --- the auditor's side -----------------------------------------------------------------------------------------------


def receipts_doc(ch: Challenge, receipts: list[dict[str, Any]], key: Any) -> dict[str, Any]:
    data = {"kind": RECEIPTS_KIND, "schema_version": SCHEMA_VERSION, "nonce": ch.nonce, "receipts": receipts}
    data["signature"] = sign.sign(data, key)
    return data


def scan(directory: Path, seen: dict[str, dict[str, Any]], now: dt.datetime) -> list[dict[str, Any]]:
    """Commitment files in `directory` not yet in `seen`: receipt {file, sha256, arrived_utc} for each (files are
    written atomically, so one that exists is complete)."""
    new = []
    for path in sorted(directory.glob(f"*{COMMIT_SUFFIX}")):
        if path.name in seen:
            continue
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue
        receipt = {"file": path.name, "sha256": digest, "arrived_utc": utc(now)}
        seen[path.name] = receipt
        new.append(receipt)
    return new


@dataclass
class Finding:
    severity: str  # 'error' or 'warning'
    where: str
    message: str


@dataclass
class Verdict:
    challenge: Challenge
    findings: list[Finding] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    fleet: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"nonce": self.challenge.nonce, "dtype": self.challenge.dtype, "n": self.challenge.n,
                "issued_utc": utc(self.challenge.issued), "deadline_utc": utc(self.challenge.deadline),
                "findings": [f.__dict__ for f in self.findings], "nodes": self.nodes, "fleet": self.fleet}  # fmt: skip


def signature_problem(data: dict[str, Any], trusted: set[str] | None, what: str) -> str | None:
    """Why the document's signature is not acceptable, or None."""
    valid, why = sign.check(data)
    if not valid:
        return f"{what}: {why}"
    kid = data["signature"]["key_id"]
    if trusted is not None and kid not in trusted:
        return f"{what}: signed by key {kid}, which is not in the trust list"
    return None


def _receipts(path: Path | None, ch: Challenge, trusted: set[str] | None, out: list[Finding]) -> dict[str, dict[str, Any]]:
    if path is None:
        out.append(Finding("warning", "receipts", "no receipt log: no arrival time is known, so no bound is proven"))
        return {}
    data = read_json(path, RECEIPTS_KIND)
    bad = signature_problem(data, trusted, str(path))
    if bad:
        out.append(Finding("error", "receipts", bad))
        return {}
    if data.get("nonce") != ch.nonce:
        out.append(Finding("error", "receipts", f"{path} is for another challenge (nonce differs)"))
        return {}
    receipts = _expect(data, "receipts", list, str(path))
    for i, r in enumerate(receipts):
        for k in ("file", "sha256", "arrived_utc"):
            _expect(r, k, str, f"{path}: receipts[{i}]")
    return {r["file"]: r for r in receipts}


def verify(challenge_path: Path, directory: Path, receipts_path: Path | None = None, trusted: set[str] | None = None,
           generator: torch.Generator | None = None) -> Verdict:  # fmt: skip
    """Everything in `directory` checked against the challenge (see the module docstring). Malformed files raise
    ChallengeError; every other problem is a Finding, and what fails is not counted."""
    ch = load_challenge(challenge_path)
    verdict = Verdict(ch)
    out = verdict.findings
    bad = signature_problem(ch.data, trusted, f"challenge {challenge_path.name}")
    if bad:
        out.append(Finding("error", "challenge", bad))
    receipts = _receipts(receipts_path, ch, trusted, out)
    generator = generator or torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little"))
    counted: dict[str, tuple[dt.datetime, str]] = {}  # device UUID -> (arrival, node) of the product set counted
    candidates = []
    for path in sorted(directory.glob(f"*{COMMIT_SUFFIX}")):
        where = path.name
        data = read_json(path, COMMITMENT_KIND)
        node = _expect(data, "node", str, where)
        products = _expect(data, "products", list, where)
        problems = []
        bad = signature_problem(data, trusted, where)
        if bad:
            problems.append(bad)
        if data.get("nonce") != ch.nonce:
            problems.append(f"{where}: answers another challenge (nonce differs)")
        if ch.nodes is not None and node not in ch.nodes:
            problems.append(f"{where}: node {node!r} was not challenged")
        receipt = receipts.get(path.name)
        arrival = None
        if receipt is not None:
            if receipt["sha256"] != hashlib.sha256(path.read_bytes()).hexdigest():
                problems.append(f"{where}: differs from the file whose arrival was recorded (sha256)")
            else:
                arrival = parse_utc(receipt["arrived_utc"], f"receipt for {where}")
                if arrival > ch.deadline:
                    problems.append(f"{where}: arrived {utc(arrival)}, after the deadline {utc(ch.deadline)}")
        elif receipts_path is not None:
            problems.append(f"{where}: no receipt: its arrival was never recorded")
        for p in problems:
            out.append(Finding("error", where, p))
        candidates.append((arrival or dt.datetime.max.replace(tzinfo=dt.UTC), path, data, node, products, not problems))
    for arrival, path, data, node, products, acceptable in sorted(candidates, key=lambda c: (c[0], c[1].name)):
        verdict.nodes.append(_node(ch, directory, path, data, node, products, acceptable, arrival, counted, generator, out))
    counted_nodes = [n for n in verdict.nodes if n["verified_flops"] > 0 and n["arrived_utc"]]
    flops = sum(n["verified_flops"] for n in counted_nodes)
    last = max((parse_utc(n["arrived_utc"], "node") for n in counted_nodes), default=None)
    elapsed = (last - ch.issued).total_seconds() if last else None
    verdict.fleet = {"nodes": len(counted_nodes), "devices": len(counted), "verified_flops": flops,
                     "elapsed_s": elapsed, "gflops_lower_bound": flops / elapsed / 1e9 if elapsed else None}  # fmt: skip
    return verdict


def _node(ch: Challenge, directory: Path, path: Path, data: dict[str, Any], node: str, products: list[Any],
          acceptable: bool, arrival: dt.datetime, counted: dict[str, tuple[dt.datetime, str]],
          generator: torch.Generator, out: list[Finding]) -> dict[str, Any]:  # fmt: skip
    where = path.name
    known = arrival.year < 9999
    result: dict[str, Any] = {"node": node, "file": path.name, "arrived_utc": utc(arrival) if known else None,
                              "products": len(products), "verified": 0, "verified_flops": 0, "failed": [],
                              "duplicates": [], "gflops_lower_bound": None}  # fmt: skip
    if not acceptable:
        return result
    reveal_path = directory / path.name.replace(COMMIT_SUFFIX, REVEAL_SUFFIX)
    if not reveal_path.exists():
        out.append(Finding("error", where, f"no reveal ({reveal_path.name}): the products cannot be checked"))
        return result
    reveal_doc = read_json(reveal_path, REVEAL_KIND)
    files = {(f.get("device"), f.get("index")): f for f in _expect(reveal_doc, "files", list, reveal_path.name)}
    inventory_gpus = {g.get("uuid") for g in (data.get("inventory") or {}).get("gpus", [])}
    fingerprint = ((data.get("inventory") or {}).get("host") or {}).get("fingerprint")
    per_device: dict[str, int] = {}
    expected = {(p.get("device"), i) for p in products if isinstance(p, dict) for i in range(ch.products)}
    for i, p in enumerate(products):
        pw = f"{where}: products[{i}]"
        uuid, index, root = _expect(p, "device", str, pw), _expect(p, "index", int, pw), _expect(p, "root", str, pw)
        kind = p.get("device_kind")
        if (kind == "cuda" and uuid not in inventory_gpus) or (kind != "cuda" and uuid != fingerprint):
            result["failed"].append(f"{uuid}#{index}: device is not in the commitment's inventory")
            continue
        if p.get("n") != ch.n or p.get("dtype") != ch.dtype or not 0 <= index < ch.products:
            result["failed"].append(f"{uuid}#{index}: n, dtype or index differs from the challenge")
            continue
        entry = files.get((uuid, index))
        if entry is None:
            result["failed"].append(f"{uuid}#{index}: not revealed")
            continue
        c = load_product(directory, entry, ch, pw)
        if merkle_root(row_bytes(c)) != root:
            result["failed"].append(f"{uuid}#{index}: revealed product does not match its committed Merkle root")
            continue
        a = operand(ch.nonce, node, uuid, index, "A", ch.n, ch.dtype)
        b = operand(ch.nonce, node, uuid, index, "B", ch.n, ch.dtype)
        check = freivalds.check(a, b, c, prec.get(ch.dtype), generator=generator)
        if not check.passed:
            result["failed"].append(f"{uuid}#{index}: Freivalds check failed ({check.reason})")
            continue
        per_device[uuid] = per_device.get(uuid, 0) + 1
    missing = expected - {(p.get("device"), p.get("index")) for p in products if isinstance(p, dict)}
    if missing:
        out.append(Finding("warning", where, f"{len(missing)} challenged products were not answered"))
    for uuid, good in sorted(per_device.items()):
        if uuid in counted:
            result["duplicates"].append(f"{uuid} already counted for {counted[uuid][1]}")
            continue
        counted[uuid] = (arrival, node)
        result["verified"] += good
        result["verified_flops"] += good * ch.flops_per_product
    for f in result["failed"]:
        out.append(Finding("error", where, f))
    for d in result["duplicates"]:
        out.append(Finding("warning", where, f"duplicate device, counted once: {d}"))
    if known and result["verified_flops"]:
        elapsed = (arrival - ch.issued).total_seconds()
        result["elapsed_s"] = elapsed
        result["gflops_lower_bound"] = result["verified_flops"] / elapsed / 1e9 if elapsed > 0 else math.inf
    return result
