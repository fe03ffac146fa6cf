"""The challenge's files: reading one (a regular file, size-capped, strict JSON, of the right kind and version), the
challenge itself, issuing it, naming a node's answer, the collector's receipt log, and whether a document is signed by
an acceptable key."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.challenge.exact_rows import MIN_ROW_WIDTH
from bench.challenge.protocol import (
    ACCURACY_INNER,
    CHALLENGE_KIND,
    COMMITMENT_KIND,
    DTYPES,
    FOLD,
    INNER_CAP,
    INNER_FACTOR,
    MAX_INNER,
    MAX_N,
    MAX_PRODUCTS,
    OPERAND_VERSION,
    OPERAND_VERSIONS,
    RECEIPTS_KIND,
    SCHEMA_VERSION,
    ChallengeError,
    name_problem,
    parse_utc,
    utc,
)
from bench.model import intake, sign


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


def read_document(path: Path, kind: str, root: Path | None = None, *, max_bytes: int | None = None,
                  max_containers: int | None = None) -> intake.Document:  # fmt: skip
    """A challenge file read once through bench.model.intake (regular file, size cap, strict JSON), of `kind`."""
    try:
        doc = intake.read_json(path, root=root, max_bytes=max_bytes, max_containers=max_containers)
    except intake.InputError as exc:
        raise ChallengeError(str(exc)) from None
    check_kind(doc.data, kind, intake.safe_name(str(path)))
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
    def inner(self) -> int:
        """K, the inner dimension of each product (A is n x K, B is K x n): the "inner" field, or n for a challenge
        issued before it existed (the square form)."""
        return self.data.get("inner", self.n)

    @property
    def fold(self) -> int | None:
        """A folded challenge's run length L (protocol.FOLD; bench.challenge.fold): each product is the exact sum of
        K / L float32 products of inner dimension L, and the exact-row check holds it to that. None: not folded (every
        challenge issued before the field existed)."""
        return self.data.get("fold")

    @property
    def flops_per_product(self) -> int:
        return 2 * self.n * self.n * self.inner

    @property
    def operands(self) -> int:
        """The operand generator (protocol.OPERAND_VERSIONS): 1 for a challenge issued before the field existed."""
        return self.data.get("operands", 1)

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
        version = data.get("operands", 1)
        if isinstance(version, bool) or version not in OPERAND_VERSIONS:
            raise ChallengeError(f"{where}: operands must be one of {OPERAND_VERSIONS} (the generator's version)")
        inner = data.get("inner", n)
        if isinstance(inner, bool) or not isinstance(inner, int) or not 2 <= inner <= MAX_INNER:
            raise ChallengeError(f"{where}: inner must be an integer in 2..{MAX_INNER} (the products' inner dimension)")
        if "inner" in data and version == 1:
            raise ChallengeError(f"{where}: an inner dimension needs operands 2 or 3 (version 1 operands are square)")
        fold = data.get("fold")
        if fold is not None and (type(fold) is not int or fold != FOLD or dtype != "float32" or version == 1
                                 or inner % fold or inner <= fold or n < MIN_ROW_WIDTH):  # fmt: skip
            raise ChallengeError(f"{where}: fold must be {FOLD}, for a float32 challenge of operands 2 or 3 whose inner "
                                 f"dimension is a multiple of it above it and n at least {MIN_ROW_WIDTH} (the folded "
                                 "products' run length)")  # fmt: skip
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
          now: dt.datetime | None = None, inner: int | None = None, fold: int | None = None) -> dict[str, Any]:  # fmt: skip
    """A new signed challenge: a fresh 256-bit nonce from the OS, valid from now until now + window; each product A
    (n x inner) times B (inner x n), or n x n times n x n without `inner` (the square form; `challenge issue` asks
    default_inner(dtype, n)); with `fold` (float32: default_fold), each the exact sum of inner / fold products."""
    now = now or dt.datetime.now(dt.UTC)
    data = {"kind": CHALLENGE_KIND, "schema_version": SCHEMA_VERSION, "nonce": secrets.token_hex(32), "dtype": dtype,
            "operands": OPERAND_VERSION, "n": n, **({} if inner is None else {"inner": inner}),
            **({} if fold is None else {"fold": fold}), "products": products,
            "issued_utc": utc(now), "deadline_utc": utc(now + window), "nodes": nodes}  # fmt: skip
    Challenge.from_dict(data, "challenge")
    data["signature"] = sign.sign(data, key)
    return data


def default_inner(dtype: str, n: int, fold: bool = True) -> int:
    """The inner dimension `challenge issue` asks by default: protocol.INNER_FACTOR[dtype] x n, at most
    INNER_CAP[dtype] (half precisions: honest tensor cores' truncation) and MAX_INNER, and never below n. For float32
    that K is folded (default_fold) where it can be, a multiple of protocol.FOLD; where it cannot (or `fold` is
    False) float32 asks protocol.ACCURACY_INNER (at most n), where every cheaper scheme still fails."""
    k = max(n, min(MAX_INNER, INNER_CAP.get(dtype, MAX_INNER), INNER_FACTOR[dtype] * n))
    if dtype in ACCURACY_INNER and not (fold and default_fold(dtype, k, n)):
        return min(n, ACCURACY_INNER[dtype])
    return k


def default_fold(dtype: str, inner: int, n: int | None = None) -> int | None:
    """The run length `challenge issue` folds a product of inner dimension `inner` into (bench.challenge.fold):
    protocol.FOLD for float32 where `inner` is a multiple of it above it and n (when given) at least
    exact_rows.MIN_ROW_WIDTH, else None (not folded). Narrower rows are held to the per-element allowance, which a
    fold sizes for 64 terms while t spans all K: int8 x3 (block scales) scored 0.86 and passed at n = 128, K = 256
    (tests/adversarial/test_ninth_round_proofs.py), against 5.05 unfolded at K = 64."""
    if n is not None and n < MIN_ROW_WIDTH:
        return None
    return FOLD if dtype == "float32" and inner % FOLD == 0 and inner > FOLD else None


def commit_name(node: str, nonce: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in node)
    return f"{safe}-{nonce[:12]}"


def receipts_doc(ch: Challenge, receipts: list[dict[str, Any]], key: Any) -> dict[str, Any]:
    """The collector's log, signed by the auditor's key: every commitment's bytes (sha256) and when they arrived."""
    data = {"kind": RECEIPTS_KIND, "schema_version": SCHEMA_VERSION, "nonce": ch.nonce, "challenge_digest": ch.digest,
            "issued_utc": utc(ch.issued), "receipts": receipts}  # fmt: skip
    data["signature"] = sign.sign(data, key)
    return data


def commitment_problem(
    data: Any, ch: Challenge, trusted: set[str] | None, auditor: str | None, where: str
) -> str | None:
    """Why `data` is not a commitment to this challenge by an acceptable node key, or None."""
    try:
        check_kind(data, COMMITMENT_KIND, where)
    except ChallengeError as exc:
        return str(exc)
    if data.get("nonce") != ch.nonce:
        return f"{where}: answers another challenge (nonce differs)"
    if data.get("challenge_digest") != ch.digest:
        return f"{where}: answers another copy of the challenge (challenge_digest differs from the auditor's)"
    bad = name_problem(data.get("node"), "node")
    if bad:
        return f"{where}: {bad}"
    bad = signature_problem(data, trusted, where)
    if bad:
        return bad
    if auditor is not None and sign.signer(data) == auditor:
        return f"{where}: signed by the auditor's key, which no node may hold"
    return None


def write_bytes_atomic(path: Path, raw: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(raw)
    os.replace(tmp, path)


def signature_problem(data: dict[str, Any], trusted: set[str] | None, what: str) -> str | None:
    """Why the document's signature is not acceptable, or None."""
    valid, why = sign.check(data)
    if not valid:
        return f"{what}: {why}"
    kid = sign.signer(data)
    if trusted is not None and kid not in trusted:
        return f"{what}: signed by key {kid}, which is not in the trust list"
    return None


def read_json_in(path: Path, kind: str, directory: Path) -> dict[str, Any]:
    return read_document(path, kind, root=directory).data
