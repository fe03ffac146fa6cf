"""The operator's declaration: what only the operator can say (where a site is, who runs it, how much of it is open
to outside users, which compute networks it belongs to, what is planned), in a TOML file the operator signs.

Everything here is *declared*: a disclosure shows it next to what was measured and never adds it to a measured total.
The signature is detached (a small JSON document over the SHA-256 of the exact TOML bytes), so the TOML a person
wrote is the TOML that is signed, and a disclosure embeds both so anyone can check them without the files.
An operator key is not a node key: a declaration signed by a key the node trust list holds is refused, because the
party whose figures are measured must not also be able to pass off node-signed text as the operator's word.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.model import intake, sign

SIGNATURE_KIND = "bench.declaration-signature"
SIGNATURE_VERSION = 1
#: A declaration is a few hundred bytes; anything far larger is not one.
MAX_BYTES = 256 * 1024
#: The suffix of the detached signature file next to the TOML.
SIGNATURE_SUFFIX = ".sig.json"

PLACE_KEYS = ("country", "region", "city", "site", "operator")
TOP_KEYS = frozenset(PLACE_KEYS) | {"clusters", "open_access", "networks", "planned", "contact"}
#: The keys of each table (docs/disclosure.md shows every one in its example declaration, held by a test).
TABLE_KEYS = {
    "clusters": frozenset({"name", "description"}),
    "open_access": frozenset({"share", "how_to_request"}),
    "networks": frozenset({"name", "role", "since"}),
    "planned": frozenset({"date", "pflops", "precision", "note"}),
}


class DeclarationError(ValueError):
    """A declaration that cannot be accepted; one line naming the file and the key."""


@dataclass(frozen=True)
class Declaration:
    """A parsed, signature-checked declaration; `text` and `signature` are what a disclosure embeds."""

    data: dict[str, Any]
    text: str
    signature: dict[str, Any]
    key_id: str

    @property
    def path(self) -> list[str]:
        """country / region / city / site: where the site sits in the roll-up."""
        return [self.data[k] for k in ("country", "region", "city", "site")]


def _text(d: dict[str, Any], key: str, where: str, *, required: bool = True, limit: int = 200) -> str | None:
    value = d.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or not value.isprintable():
        raise DeclarationError(f"{where}.{key}: needs a non-empty printable string of at most {limit} characters")
    return value.strip()


def _date(d: dict[str, Any], key: str, where: str) -> str:
    value = d.get(key)
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            pass
    if not isinstance(value, dt.date):
        raise DeclarationError(f"{where}.{key}: needs a date (YYYY-MM-DD), got {value!r}")
    return value.isoformat()


def _only(d: Any, allowed: set[str] | frozenset[str], where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise DeclarationError(f"{where}: should be a table")
    unknown = set(d) - set(allowed)
    if unknown:
        raise DeclarationError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(allowed))}"
        )
    return d


def _number(d: dict[str, Any], key: str, where: str, lo: float, hi: float) -> float:
    value = d.get(key)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not lo <= value <= hi
    ):
        raise DeclarationError(f"{where}.{key}: needs a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def parse(text: str, where: str = "declaration") -> dict[str, Any]:
    """The declaration TOML as plain data, every key checked (unknown keys refused, so a typo is never ignored)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeclarationError(f"{where}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level: a few KB of brackets exhaust the stack
        raise DeclarationError(f"{where}: not valid TOML: nested too deeply") from None
    _only(raw, TOP_KEYS, where)
    out: dict[str, Any] = {k: _text(raw, k, where) for k in PLACE_KEYS}
    for k in ("country", "region", "city", "site"):  # the roll-up joins them with '/': one must not hold another
        if "/" in out[k] or "#" in out[k]:
            raise DeclarationError(f"{where}.{k}: a place name may not contain '/' or '#' (they separate the levels "
                                   "of the roll-up)")  # fmt: skip
    out["contact"] = _text(raw, "contact", where, required=False)
    clusters = raw.get("clusters")
    if not isinstance(clusters, list) or not clusters:
        raise DeclarationError(f"{where}.clusters: needs at least one [[clusters]] table with a name")
    out["clusters"] = []
    for i, c in enumerate(clusters):
        c = _only(c, TABLE_KEYS["clusters"], f"{where}.clusters[{i}]")
        out["clusters"].append({"name": _text(c, "name", f"{where}.clusters[{i}]", limit=80),
                                "description": _text(c, "description", f"{where}.clusters[{i}]", required=False)})  # fmt: skip
    names = [c["name"] for c in out["clusters"]]
    if len(set(names)) != len(names):
        raise DeclarationError(f"{where}.clusters: cluster names must be unique")
    access = _only(raw.get("open_access", {}), TABLE_KEYS["open_access"], f"{where}.open_access")
    out["open_access"] = None if not access else {
        "share": _number(access, "share", f"{where}.open_access", 0.0, 1.0),
        "how_to_request": _text(access, "how_to_request", f"{where}.open_access", limit=500),
    }  # fmt: skip
    networks = raw.get("networks", [])
    if not isinstance(networks, list):
        raise DeclarationError(f"{where}.networks: should be a list of [[networks]] tables")
    out["networks"] = []
    for i, n in enumerate(networks):
        n = _only(n, TABLE_KEYS["networks"], f"{where}.networks[{i}]")
        out["networks"].append({"name": _text(n, "name", f"{where}.networks[{i}]"),
                                "role": _text(n, "role", f"{where}.networks[{i}]", required=False, limit=80),
                                "since": _date(n, "since", f"{where}.networks[{i}]") if "since" in n else None})  # fmt: skip
    planned = raw.get("planned", [])
    if not isinstance(planned, list):
        raise DeclarationError(f"{where}.planned: should be a list of [[planned]] tables")
    out["planned"] = []
    for i, p in enumerate(planned):
        p = _only(p, TABLE_KEYS["planned"], f"{where}.planned[{i}]")
        precision = _text(p, "precision", f"{where}.planned[{i}]", required=False, limit=20)
        out["planned"].append({"date": _date(p, "date", f"{where}.planned[{i}]"),
                               "pflops": _number(p, "pflops", f"{where}.planned[{i}]", 0.0, 1e9),
                               "precision": precision.lower() if precision else None,
                               "note": _text(p, "note", f"{where}.planned[{i}]", required=False, limit=500)})  # fmt: skip
    out["planned"].sort(key=lambda p: p["date"])
    return out


def sign_text(raw: bytes, key: Ed25519PrivateKey, now: dt.datetime | None = None) -> dict[str, Any]:
    """The detached signature document for a declaration's exact bytes, signed with the operator's key."""
    now = now or dt.datetime.now(dt.UTC)
    doc = {"kind": SIGNATURE_KIND, "schema_version": SIGNATURE_VERSION,
           "declaration_sha256": hashlib.sha256(raw).hexdigest(), "signed_utc": now.strftime("%Y-%m-%dT%H:%M:%SZ")}  # fmt: skip
    doc["signature"] = sign.sign(doc, key)
    return doc


#: Declarations accepted by check, by what decides its answer (the text, the signature document as JSON with sorted keys, the
#: two trust lists): a country's 200 embedded declarations were checked again at each of its four levels, by disclose
#: and by verify each, 1,600 signature checks and TOML parses a phase. A refusal is never kept (it is raised again,
#: worded for its place). At most _ACCEPTED_MAX entries (emptied when full).
_ACCEPTED: dict[tuple[Any, ...], Declaration] = {}
_ACCEPTED_MAX = 1 << 16


def check(text: str, signature: Any, *, operator_ids: set[str] | None, node_ids: set[str] | None,
          where: str = "declaration") -> Declaration:  # fmt: skip
    """A declaration from its text and detached signature document: the signature must verify over these exact bytes,
    by a key in the operator trust list (when one is given: without one the declaration is still 'declared', but by
    an unchecked signer) and not by a node key. The same inputs accepted before give the same answer (_ACCEPTED),
    with this call's text and signature objects and a parsed copy of its own."""
    key = _accepted_key(text, signature, operator_ids, node_ids)
    held = _ACCEPTED.get(key) if key is not None else None
    if held is not None:
        return Declaration(copy.deepcopy(held.data), text, signature, held.key_id)
    out = _check(text, signature, operator_ids=operator_ids, node_ids=node_ids, where=where)
    if key is not None:
        if len(_ACCEPTED) >= _ACCEPTED_MAX:
            _ACCEPTED.clear()
        _ACCEPTED[key] = Declaration(copy.deepcopy(out.data), text, signature, out.key_id)
    return out


def _accepted_key(text: Any, signature: Any, operator_ids: Any, node_ids: Any) -> tuple[Any, ...] | None:
    """check's answer's key in _ACCEPTED, or None where the inputs cannot name one (check then decides, and words
    the refusal)."""
    if not isinstance(text, str) or not isinstance(signature, dict):
        return None
    try:  # Python's own writing, which tells 1 from 1.0 and True (rfc8785 writes 1 and 1.0 alike)
        written = json.dumps(signature, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    lists = []
    for ids in (operator_ids, node_ids):
        if ids is not None and not all(isinstance(i, str) for i in ids):
            return None
        lists.append(None if ids is None else frozenset(ids))
    return (text, written, *lists)


def _check(text: str, signature: Any, *, operator_ids: set[str] | None, node_ids: set[str] | None,
           where: str) -> Declaration:  # fmt: skip
    """check, done."""
    if not isinstance(signature, dict) or signature.get("kind") != SIGNATURE_KIND:
        raise DeclarationError(f"{where}: the signature file is not a bench declaration signature")
    if signature.get("schema_version") != SIGNATURE_VERSION or isinstance(signature.get("schema_version"), bool):
        raise DeclarationError(
            f"{where}: unsupported declaration signature version {signature.get('schema_version')!r}"
        )
    valid, why = sign.check(signature)
    if not valid:
        raise DeclarationError(f"{where}: signature: {why}")
    if signature.get("declaration_sha256") != hashlib.sha256(text.encode("utf-8")).hexdigest():
        raise DeclarationError(f"{where}: the signature is over other bytes (the declaration was edited after signing)")
    kid = sign.signer(signature)
    if kid is None:
        raise DeclarationError(f"{where}: signature block names no readable key")
    if node_ids is not None and kid in node_ids:
        raise DeclarationError(f"{where}: signed by node key {kid}; a declaration needs the operator's key, not a "
                               "node's")  # fmt: skip
    if operator_ids is not None and kid not in operator_ids:
        raise DeclarationError(f"{where}: signed by key {kid}, which is not in the operator trust list")
    return Declaration(parse(text, where), text, signature, kid)


def read(
    path: Path, *, operator_ids: set[str] | None, node_ids: set[str] | None, signature_path: Path | None = None
) -> Declaration:
    """Read a declaration and its detached signature (default: the TOML's path + SIGNATURE_SUFFIX) as hostile input."""
    sig_path = signature_path or path.with_name(path.name + SIGNATURE_SUFFIX)
    try:
        raw = intake.read_bytes(path, max_bytes=MAX_BYTES)
        text = raw.decode("utf-8")
        signature = intake.read_json(sig_path).data
    except intake.InputError as exc:
        raise DeclarationError(str(exc)) from None
    except UnicodeDecodeError:
        raise DeclarationError(f"{path}: not UTF-8 text") from None
    return check(text, signature, operator_ids=operator_ids, node_ids=node_ids, where=str(path))
