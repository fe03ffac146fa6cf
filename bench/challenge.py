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

import concurrent.futures
import datetime as dt
import gzip
import hashlib
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench import precision as prec
from bench.hardware import peaks
from bench.report import exact_rows, intake, sign
from bench.report import verify as verify_report
from bench.report.model import Measurement
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
#: Largest n and products per device a challenge may ask (the CLI's limits; a verifier refuses more).
MAX_N, MAX_PRODUCTS = 65536, 1000
#: Freivalds vectors per product (each O(n^2)); the exact-row check (bench.report.exact_rows) runs alongside.
FREIVALDS_VECTORS = 2
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


def check_kind(data: Any, kind: str, where: str) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("kind") != kind:
        found = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise ChallengeError(f"{where}: not a {kind} file (kind is {found!r})")
    version = data.get("schema_version")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise ChallengeError(f"{where}: unsupported schema_version {version!r}")
    return data


def read_document(path: Path, kind: str, root: Path | None = None) -> intake.Document:
    """A challenge file read once through bench.report.intake (regular file, size cap, strict JSON), of `kind`."""
    try:
        doc = intake.read_json(path, root=root)
    except intake.InputError as exc:
        raise ChallengeError(str(exc)) from None
    check_kind(doc.data, kind, str(path))
    return doc


def read_json(path: Path, kind: str) -> dict[str, Any]:
    return read_document(path, kind).data


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

    @property
    def digest(self) -> str:
        """sign.digest of the challenge as issued: commitments and receipts name it."""
        return sign.digest(self.data)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str) -> Challenge:
        nonce = _expect(data, "nonce", str, where)
        dtype = _expect(data, "dtype", str, where)
        if dtype not in DTYPES:
            raise ChallengeError(f"{where}: dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        n, products = _expect(data, "n", int, where), _expect(data, "products", int, where)
        if not (2 <= n <= MAX_N and 1 <= products <= MAX_PRODUCTS):
            raise ChallengeError(f"{where}: n must be in 2..{MAX_N} and products in 1..{MAX_PRODUCTS}")
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


#: Square sizes of the products that warm a device in every challenge dtype before the wait: the CUDA context, cuBLAS
#: handles and lazily loaded kernels would otherwise load inside the auditor's window. The CPU has nothing to load.
WARM_SIZES = {"cuda": (1024, 4096), "cpu": (64,)}


def warm(device: dict[str, Any]) -> float:
    """One product per challenge dtype and warm size on `device`, and one operand generated; returns the seconds."""
    start = time.perf_counter()
    operand("warm", "warm", device.get("uuid") or "warm", 0, "A", 64, "float32")
    for dtype in DTYPES:
        for n in WARM_SIZES.get(device["kind"], (64,)):
            a = torch.ones(n, n, dtype=prec.get(dtype).torch_dtype, device=device["id"])
            float((a @ a)[0, 0])  # synchronizes
    return time.perf_counter() - start


def operands(ch: Challenge, node: str, device: dict[str, Any], index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A_i and B_i for `device`, on the host."""
    return (operand(ch.nonce, node, device["uuid"], index, "A", ch.n, ch.dtype),
            operand(ch.nonce, node, device["uuid"], index, "B", ch.n, ch.dtype))  # fmt: skip


def product(device: dict[str, Any], index: int, a_host: torch.Tensor, b_host: torch.Tensor, start: float) -> Product:
    """C_i = A_i.B_i on the device, copied to the host once and hashed there. Nothing of it stays on the device: with
    many products at n = 16384 keeping each C on the GPU until the reveal ran out of device memory before committing."""
    a, b = a_host.to(device["id"]), b_host.to(device["id"])
    c = a @ b
    del a, b
    c_host = c.to("cpu")  # the one copy to the host (it waits for the product)
    del c
    return Product(device, index, c_host, merkle_root(row_bytes(c_host)), time.perf_counter() - start)


def compute(ch: Challenge, node: str, device: dict[str, Any], index: int) -> Product:
    """One product on one device, timed by the node (for its own record only; the auditor's clock decides)."""
    start = time.perf_counter()
    return product(device, index, *operands(ch, node, device, index), start)


def compute_all(ch: Challenge, node: str, device: dict[str, Any]) -> list[Product]:
    """Every product of `device`, the next product's operands generated on the host while the device works on the
    current one (generation and hashing, not the GEMM, dominate at large n)."""
    out: list[Product] = []
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bench-operands") as pool:
        pending = pool.submit(operands, ch, node, device, 0)
        for i in range(ch.products):
            start = time.perf_counter()
            a, b = pending.result()
            if i + 1 < ch.products:
                pending = pool.submit(operands, ch, node, device, i + 1)
            out.append(product(device, i, a, b, start))
    return out


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


# --- the auditor's side -----------------------------------------------------------------------------------------------


def receipts_doc(ch: Challenge, receipts: list[dict[str, Any]], key: Any) -> dict[str, Any]:
    """The collector's log, signed by the auditor's key: every commitment's bytes (sha256) and when they arrived."""
    data = {"kind": RECEIPTS_KIND, "schema_version": SCHEMA_VERSION, "nonce": ch.nonce, "challenge_digest": ch.digest,
            "issued_utc": utc(ch.issued), "receipts": receipts}  # fmt: skip
    data["signature"] = sign.sign(data, key)
    return data


def commitment_problem(data: Any, ch: Challenge, trusted: set[str] | None, auditor: str | None, where: str) -> str | None:
    """Why `data` is not a commitment to this challenge by an acceptable node key, or None."""
    try:
        check_kind(data, COMMITMENT_KIND, where)
    except ChallengeError as exc:
        return str(exc)
    if data.get("nonce") != ch.nonce:
        return f"{where}: answers another challenge (nonce differs)"
    if data.get("challenge_digest") != ch.digest:
        return f"{where}: answers another copy of the challenge (challenge_digest differs from the auditor's)"
    bad = signature_problem(data, trusted, where)
    if bad:
        return bad
    if auditor is not None and sign.signer(data) == auditor:
        return f"{where}: signed by the auditor's key, which no node may hold"
    return None


def scan(directory: Path, seen: dict[str, Any], now: dt.datetime, ch: Challenge | None = None,
         archive: Path | None = None, trusted: set[str] | None = None, auditor: str | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Commitment files in `directory` that are new or changed since `seen`: a receipt {file, sha256, arrived_utc,
    challenge_digest, issued_utc, accepted, why} for each. Each file is read once; the bytes hashed are the bytes
    parsed, and (with `archive`) the bytes kept. `accepted` says whether they are a signed commitment to this challenge
    (what --expect counts): junk files are recorded, never counted, and a name first taken by junk is recorded again
    when real bytes replace it."""
    new = []
    for path in sorted(directory.glob(f"*{COMMIT_SUFFIX}")):
        try:
            info = path.lstat()
        except OSError:
            continue
        state = (info.st_mtime_ns, info.st_size, info.st_ino)
        if seen.get(path.name) == state:
            continue
        seen[path.name] = state
        try:
            raw = intake.read_bytes(path, root=directory)
        except intake.InputError as exc:
            receipt = {"file": path.name, "sha256": None, "arrived_utc": utc(now), "accepted": False, "why": str(exc)}
        else:
            digest = hashlib.sha256(raw).hexdigest()
            why = None
            if ch is not None:
                try:
                    why = commitment_problem(intake.parse_json(raw, path.name), ch, trusted, auditor, path.name)
                except intake.InputError as exc:
                    why = str(exc)
            receipt = {"file": path.name, "sha256": digest, "arrived_utc": utc(now), "accepted": why is None, "why": why}
            if archive is not None:
                archive.mkdir(parents=True, exist_ok=True)
                write_bytes_atomic(archive / f"{digest[:16]}-{path.name}", raw)
        if ch is not None:
            receipt.update(challenge_digest=ch.digest, issued_utc=utc(ch.issued))
        new.append(receipt)
    return new


def write_bytes_atomic(path: Path, raw: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, path)


@dataclass
class Finding:
    severity: str  # 'error' or 'warning'
    where: str
    message: str
    code: str = ""


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
                "challenge_digest": self.challenge.digest, "issued_utc": utc(self.challenge.issued),
                "deadline_utc": utc(self.challenge.deadline), "findings": [f.__dict__ for f in self.findings],
                "nodes": self.nodes, "devices": self.devices, "fleet": self.fleet}  # fmt: skip


def signature_problem(data: dict[str, Any], trusted: set[str] | None, what: str) -> str | None:
    """Why the document's signature is not acceptable, or None."""
    valid, why = sign.check(data)
    if not valid:
        return f"{what}: {why}"
    kid = sign.signer(data)
    if trusted is not None and kid not in trusted:
        return f"{what}: signed by key {kid}, which is not in the trust list"
    return None


def _receipts(path: Path | None, ch: Challenge, auditor: str | None, out: list[Finding]) -> dict[str, dt.datetime]:
    """sha256 of each recorded commitment -> its earliest arrival, from a receipt log the auditor's key signed for this
    very challenge. Anything else is an error finding and proves no arrival."""
    if path is None:
        out.append(Finding("warning", "receipts", "no receipt log: no arrival time is known, so no bound is proven", "no-receipts"))
        return {}
    try:
        data = read_json(path, RECEIPTS_KIND)
    except ChallengeError as exc:
        out.append(Finding("error", "receipts", str(exc), "malformed"))
        return {}
    bad = signature_problem(data, {auditor} if auditor else set(), str(path))
    if bad:
        out.append(Finding("error", "receipts", f"{bad} (receipts count only when the auditor's key signed them)", "receipts-key"))
        return {}
    if data.get("nonce") != ch.nonce or data.get("challenge_digest") != ch.digest:
        out.append(Finding("error", "receipts", f"{path} is for another challenge (nonce or digest differs)", "receipts-challenge"))
        return {}
    receipts = data.get("receipts")
    if not isinstance(receipts, list):
        out.append(Finding("error", "receipts", f"{path}: receipts should be a list", "malformed"))
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
            out.append(Finding("error", "receipts", str(exc), "malformed"))
            continue
        if r["sha256"] not in arrivals or arrived < arrivals[r["sha256"]]:
            arrivals[r["sha256"]] = arrived
    return arrivals


def _products(data: dict[str, Any], ch: Challenge, where: str) -> tuple[dict[str, list[dict[str, Any]]], list[Finding]]:
    """The commitment's products by device UUID, each (device, index) exactly once and exactly ch.products per
    device; a product listed twice rejects the whole commitment (it would count the same work twice)."""
    products = data.get("products")
    if not isinstance(products, list):
        return {}, [Finding("error", where, "products should be a list", "malformed")]
    per_device: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, int]] = set()
    for i, p in enumerate(products):
        pw = f"{where}: products[{i}]"
        try:
            uuid, index, root = _expect(p, "device", str, pw), _expect(p, "index", int, pw), _expect(p, "root", str, pw)
            for key in ("device_kind", "device_name"):
                _expect(p, key, (str, type(None)), pw)
        except ChallengeError as exc:
            return {}, [Finding("error", where, str(exc), "malformed")]
        if (uuid, index) in seen:
            return {}, [Finding("error", where, f"{uuid}#{index} is listed more than once: the commitment is rejected",
                                "duplicate-product")]  # fmt: skip
        seen.add((uuid, index))
        if p.get("n") != ch.n or p.get("dtype") != ch.dtype or not 0 <= index < ch.products or len(root) != 64:
            return {}, [Finding("error", where, f"{uuid}#{index}: n, dtype, index or root differs from the challenge's",
                                "product-mismatch")]  # fmt: skip
        per_device.setdefault(uuid, []).append(p)
    out = []
    for uuid in sorted(per_device):
        if len(per_device[uuid]) != ch.products:
            out.append(Finding("error", where, f"{uuid} answers {len(per_device[uuid])} of the {ch.products} products "
                               "asked: none of its products count", "incomplete-device"))  # fmt: skip
            del per_device[uuid]
    return per_device, out


def verify(challenge_path: Path, directory: Path, receipts_path: Path | None = None, trusted: set[str] | None = None,
           generator: torch.Generator | None = None, *, auditor: str | None = None,
           rng: np.random.Generator | None = None) -> Verdict:  # fmt: skip
    """Everything in `directory` checked against the auditor's own copy of the challenge (see the module docstring).
    `auditor` is the auditor's key id: the challenge and the receipts must carry its signature, and no node may hold
    it; `trusted` the node keys commitments may be signed with. Only the challenge file itself may raise
    ChallengeError (it is the auditor's own); every problem with what nodes wrote is a Finding, one per file, and
    what fails is not counted."""
    ch = load_challenge(challenge_path)
    if auditor is not None and trusted is not None and auditor in trusted:
        raise ChallengeError(f"the auditor's key {auditor} is in the node trust list: no node may hold the auditor's key")
    verdict = Verdict(ch)
    out = verdict.findings
    if auditor is None:
        out.append(Finding("error", "auditor", "no auditor key given: the challenge and receipts are not authenticated, "
                           "so no bound is proven", "no-auditor-key"))  # fmt: skip
    else:
        bad = signature_problem(ch.data, {auditor}, f"challenge {challenge_path.name}")
        if bad:
            out.append(Finding("error", "challenge", f"{bad} (a challenge counts only when the auditor's key signed it)",
                               "challenge-key"))  # fmt: skip
    authentic = not any(f.code in ("no-auditor-key", "challenge-key") for f in out)
    arrivals = _receipts(receipts_path, ch, auditor, out) if authentic else {}
    generator = generator or torch.Generator().manual_seed(int.from_bytes(os.urandom(8), "little"))
    rng = rng or np.random.default_rng(int.from_bytes(os.urandom(16), "little"))
    counted: dict[str, tuple[dt.datetime, str]] = {}  # device UUID -> (arrival, node) of the product set counted
    candidates = []
    for path in sorted(directory.glob(f"*{COMMIT_SUFFIX}")):
        where = path.name
        try:
            doc = read_document(path, COMMITMENT_KIND, root=directory)  # read once: hashed and parsed from one buffer
            node = _expect(doc.data, "node", str, where)
        except ChallengeError as exc:
            out.append(Finding("error", where, str(exc), "malformed"))
            continue
        data = doc.data
        problems = []
        bad = commitment_problem(data, ch, trusted, auditor, where)
        if bad:
            problems.append((bad, "commitment"))
        if ch.nodes is not None and node not in ch.nodes:
            problems.append((f"{where}: node {node!r} was not challenged", "not-challenged"))
        arrival = arrivals.get(doc.sha256)
        if arrival is not None:
            if arrival <= ch.issued:
                problems.append((f"{where}: arrived {utc(arrival)}, not after the issue time {utc(ch.issued)}", "arrival-before-issue"))
            elif arrival > ch.deadline:
                problems.append((f"{where}: arrived {utc(arrival)}, after the deadline {utc(ch.deadline)}", "late"))
        elif receipts_path is not None and authentic:
            problems.append((f"{where}: no receipt for these bytes: the collector never recorded them (changed after "
                             "arrival, or never arrived)", "no-receipt"))  # fmt: skip
        for message, code in problems:
            out.append(Finding("error", where, message, code))
        per_device, product_findings = _products(data, ch, where)
        out += product_findings
        candidates.append((arrival or dt.datetime.max.replace(tzinfo=dt.UTC), path, data, node, per_device, not problems))
    for arrival, path, data, node, per_device, acceptable in sorted(candidates, key=lambda c: (c[0], c[1].name)):
        verdict.nodes.append(_node(ch, directory, path, data, node, per_device, acceptable, arrival, counted, generator,
                                   rng, out, verdict.devices))  # fmt: skip
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


def device_ceiling(kind: str | None, name: str | None, dtype: str, host: dict[str, Any]) -> float | None:
    """The most TFLOPS the device could give this dtype: its vendor peak (bench's table) for a GPU; for a CPU, what its
    committed core count (at most verify.CPU_MAX_CORES) could do at any clock with any ISA (verify.cpu_ceiling). None
    for a GPU bench has no row for."""
    if kind == "cuda":
        peak = peaks.vendor_peak(name or "", dtype)
        return peak.tflops if peak else None
    cores = host.get("physical_cores")
    cores = cores if isinstance(cores, int) and not isinstance(cores, bool) and cores > 0 else verify_report.CPU_MAX_CORES
    m = Measurement(workload="matmul", spec={"precision": dtype}, device={"kind": "cpu"}, status="ok")
    ceiling = verify_report.cpu_ceiling(m, {"host": {"physical_cores": cores}})
    return ceiling.tflops if ceiling else None


def _node(ch: Challenge, directory: Path, path: Path, data: dict[str, Any], node: str,
          per_device: dict[str, list[dict[str, Any]]], acceptable: bool, arrival: dt.datetime,
          counted: dict[str, tuple[dt.datetime, str]], generator: torch.Generator, rng: np.random.Generator,
          out: list[Finding], devices: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    where = path.name
    known = arrival.year < 9999
    result: dict[str, Any] = {"node": node, "file": path.name, "arrived_utc": utc(arrival) if known else None,
                              "products": sum(len(ps) for ps in per_device.values()), "verified": 0, "verified_flops": 0,
                              "failed": [], "duplicates": [], "gflops_lower_bound": None}  # fmt: skip
    if not acceptable or not per_device:
        return result
    reveal_path = directory / path.name.replace(COMMIT_SUFFIX, REVEAL_SUFFIX)
    try:
        reveal_doc = read_json_in(reveal_path, REVEAL_KIND, directory)
        files_list = _expect(reveal_doc, "files", list, reveal_path.name)
    except ChallengeError as exc:
        out.append(Finding("error", where, f"reveal: {exc}", "malformed-reveal"))
        return result
    files = {}
    for f in files_list:
        if isinstance(f, dict) and isinstance(f.get("device"), str) and isinstance(f.get("index"), int):
            files.setdefault((f["device"], f["index"]), f)
    inventory = data.get("inventory") if isinstance(data.get("inventory"), dict) else {}
    gpus = inventory.get("gpus") if isinstance(inventory.get("gpus"), list) else []
    inventory_gpus = {g.get("uuid") for g in gpus if isinstance(g, dict)}
    host = inventory.get("host") if isinstance(inventory.get("host"), dict) else {}
    good: dict[str, int] = {}
    elapsed = (arrival - ch.issued).total_seconds() if known else None
    for uuid, products in sorted(per_device.items()):
        kind, name = products[0].get("device_kind"), products[0].get("device_name")
        if (kind == "cuda" and uuid not in inventory_gpus) or (kind != "cuda" and uuid != host.get("fingerprint")):
            result["failed"].append((f"{uuid}: device is not in the commitment's inventory", "unknown-device"))
            continue
        passed = 0
        for p in sorted(products, key=lambda p: p["index"]):
            failure = _check_product(ch, directory, files.get((uuid, p["index"])), node, uuid, p, generator, rng, where)
            if failure:
                result["failed"].append(failure)
            else:
                passed += 1
        if not passed:
            continue
        if uuid in counted:
            result["duplicates"].append(f"{uuid} already counted for {counted[uuid][1]}")
            continue
        ceiling = device_ceiling(kind, name, ch.dtype, host)
        if elapsed and ceiling is not None and passed * ch.flops_per_product / elapsed / 1e12 > ceiling * (1 + peaks.IMPLAUSIBLE_TOLERANCE):
            result["failed"].append((f"{uuid}: {passed * ch.flops_per_product / elapsed / 1e12:.4g} TFLOPS is above the "
                                     f"physical peak of a {name} ({ceiling:.4g} TFLOPS {ch.dtype}): answered by other "
                                     "hardware, or a clock is wrong; not counted", "above-peak"))  # fmt: skip
            continue
        counted[uuid] = (arrival, node)
        good[uuid] = passed
        if elapsed:
            devices.append({"device": uuid, "node": node, "kind": kind, "name": name, "products": passed,
                            "verified_flops": passed * ch.flops_per_product, "elapsed_s": elapsed,
                            "tflops_lower_bound": passed * ch.flops_per_product / elapsed / 1e12})  # fmt: skip
    result["verified"] = sum(good.values())
    result["verified_flops"] = result["verified"] * ch.flops_per_product
    for message, code in result["failed"]:
        out.append(Finding("error", where, message, code))
    result["failed"] = [message for message, _ in result["failed"]]
    for d in result["duplicates"]:
        out.append(Finding("warning", where, f"duplicate device, counted once: {d}", "duplicate-device"))
    if elapsed and result["verified_flops"]:
        result["elapsed_s"] = elapsed
        result["gflops_lower_bound"] = result["verified_flops"] / elapsed / 1e9
    return result


def read_json_in(path: Path, kind: str, directory: Path) -> dict[str, Any]:
    return read_document(path, kind, root=directory).data


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
    a = operand(ch.nonce, node, uuid, index, "A", ch.n, ch.dtype)
    b = operand(ch.nonce, node, uuid, index, "B", ch.n, ch.dtype)
    for _ in range(FREIVALDS_VECTORS):
        check = freivalds.check(a, b, c, prec.get(ch.dtype), generator=generator)
        if not check.passed:
            return f"{uuid}#{index}: Freivalds check failed ({check.reason})", "freivalds"
    rows = exact_rows.check(a, b, c, ch.dtype, rng)
    if not rows.passed:
        return f"{uuid}#{index}: exact-row check failed ({rows.reason})", "precision"
    return None
