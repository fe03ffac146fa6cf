"""Signing and checking reports: Ed25519 over the RFC 8785 canonical bytes of everything but the signature block.

Canonical JSON comes from the `rfc8785` package (sorted keys, shortest round-trip numbers, no whitespace), so any
verifier in any language that implements RFC 8785 gets the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from typing import Any

import numpy as np
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bench.report import keys
from bench.report.model import exact_count, read_count  # noqa: F401 - the count form signed documents use

ALG = "ed25519"
SIGNATURE_FIELD = "signature"


#: Per-measurement arrays that the signed bytes cover through their digest (samples_sha256) rather than verbatim:
#: canonicalizing thousands of floats in pure Python would make verifying a fleet slow, and hashing their binary64
#: bytes is exact, fast and just as binding (changing a sample means finding a SHA-256 preimage).
RAW_ARRAYS = ("warmup_s", "samples_s")


def samples_digest(warmup_s: list[float], samples_s: list[float]) -> str:
    """SHA-256 of a measurement's raw-sample block: the tag 'bench.samples.v1', then for warm-up and timed samples in
    turn the count as a little-endian uint64 and the values as little-endian IEEE-754 binary64."""
    h = hashlib.sha256(b"bench.samples.v1")
    for values in (warmup_s, samples_s):
        arr = np.asarray(values, dtype="<f8")
        h.update(len(arr).to_bytes(8, "little"))
        h.update(arr.tobytes())
    return h.hexdigest()


def signed_view(data: dict[str, Any]) -> dict[str, Any]:
    """What the signature covers: the document without its signature block, with each measurement's raw arrays left
    out (their samples_sha256, which stays in, binds them)."""
    view = {k: v for k, v in data.items() if k != SIGNATURE_FIELD}
    if isinstance(view.get("measurements"), list):
        view["measurements"] = [
            {k: v for k, v in m.items() if k not in RAW_ARRAYS} if isinstance(m, dict) else m
            for m in view["measurements"]
        ]
    return view


#: RFC 8785 writes numbers as IEEE-754 binary64, so it carries integers exactly only up to this magnitude; a larger
#: count must be written in a larger unit (GiB, PFLOP) or as a decimal string (see exact_count).
MAX_SAFE_INTEGER = 2**53 - 1


class UncarriableNumber(ValueError):
    """A document holds an integer RFC 8785 cannot carry exactly; the message names the field."""


def _uncarriable(obj: Any, path: str) -> tuple[str, int] | None:
    """(JSON path, value) of the first integer beyond MAX_SAFE_INTEGER in obj, depth first in key order."""
    if isinstance(obj, bool):
        return None
    if isinstance(obj, int):
        return (path or "(document)", obj) if abs(obj) > MAX_SAFE_INTEGER else None
    if isinstance(obj, dict):
        for k in sorted(obj, key=str):
            found = _uncarriable(obj[k], f"{path}.{k}" if path else str(k))
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for i, x in enumerate(obj):
            found = _uncarriable(x, f"{path}[{i}]")
            if found:
                return found
    return None


class _Slow(Exception):
    """A value the fast path does not handle: the rfc8785 package canonicalizes the document instead."""


_PLACEHOLDER = re.compile(r'"\\u0000(\d+)\\u0000"')


def _fast_canonical(view: Any) -> bytes | None:
    """The RFC 8785 bytes of `view` through the standard library's C JSON encoder, or None where that could differ
    from the rfc8785 package (which then does the work: it is exact, and about 5x slower on a large document).

    The encoder already writes what RFC 8785 asks for with sorted keys, ',' and ':' separators and no ASCII escaping:
    the same string escapes (the two tables are the same), integers in decimal, true/false/null. What differs is
    handled here: a float whose shortest repr has no exponent is RFC 8785's form too, except that an integral one
    ('700.0') is written as an integer ('700'); a float with an exponent is written by rfc8785 itself (through a
    placeholder string replaced afterwards). Keys sort by UTF-16 code units in RFC 8785 and by code points in Python,
    the same order unless a key holds a character beyond U+FFFF; such a key, an exact-type mismatch (a dict or float
    subclass), a NUL in any string (it could collide with a placeholder), a non-finite float or an integer beyond 2^53
    take the slow path. tests/report/test_canonical.py holds the two to the same bytes on fuzzed and real documents."""
    floats: list[str] = []

    def num(o: float) -> Any:
        # repr writes no exponent from 1e-4 up to (not including) 1e16: there an integral float is written as an
        # integer and any other as repr has it, without building repr
        if o.is_integer():
            if -1e16 < o < 1e16:
                return int(o)
        elif 1e-4 <= abs(o) < 1e16:
            return o
        if not math.isfinite(o):
            raise _Slow
        text = repr(o)
        if "e" in text:
            floats.append(rfc8785.dumps(o).decode("ascii"))
            return f"\x00{len(floats) - 1}\x00"
        return int(o) if text.endswith(".0") else o

    def conv(o: Any) -> Any:
        # scalars are handled inline in the container loops (a device row is a dict of scalars, a country holds a
        # million): a call per value was most of the time
        t = type(o)
        if t is dict:
            out = {}
            for k, x in o.items():
                if type(k) is not str or "\x00" in k or (not k.isascii() and max(map(ord, k)) > 0xFFFF):
                    raise _Slow
                tx = type(x)
                if tx is str:
                    if "\x00" in x:
                        raise _Slow
                    out[k] = x
                elif tx is float:
                    out[k] = num(x)
                elif tx is int:
                    if abs(x) > MAX_SAFE_INTEGER:
                        raise _Slow
                    out[k] = x
                elif x is None or tx is bool:
                    out[k] = x
                else:
                    out[k] = conv(x)
            return out
        if t is list or t is tuple:
            items = []
            for x in o:
                tx = type(x)
                if tx is float:
                    items.append(num(x))
                elif tx is str:
                    if "\x00" in x:
                        raise _Slow
                    items.append(x)
                elif tx is int:
                    if abs(x) > MAX_SAFE_INTEGER:
                        raise _Slow
                    items.append(x)
                elif x is None or tx is bool:
                    items.append(x)
                else:
                    items.append(conv(x))
            return items
        if t is str:
            if "\x00" in o:
                raise _Slow
            return o
        if t is float:
            return num(o)
        if t is int:
            if abs(o) > MAX_SAFE_INTEGER:
                raise _Slow
            return o
        if o is None or t is bool:
            return o
        raise _Slow

    try:
        text = json.dumps(conv(view), ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
        if floats:
            text = _PLACEHOLDER.sub(lambda m: floats[int(m.group(1))], text)
        return text.encode("utf-8")
    except (_Slow, RecursionError, UnicodeEncodeError, TypeError, ValueError):
        return None


def canonical(data: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of the signed view of `data`. UncarriableNumber, naming the field, for an integer beyond
    ±MAX_SAFE_INTEGER (RFC 8785 would change its value or, in the rfc8785 package, raise IntegerDomainError)."""
    return canonical_bytes(signed_view(data))


def canonical_bytes(view: Any) -> bytes:
    """RFC 8785 bytes of `view` itself (canonical() takes a document's signed view first); UncarriableNumber as
    there."""
    fast = _fast_canonical(view)
    if fast is not None:
        return fast
    try:
        return rfc8785.dumps(view)
    except rfc8785.IntegerDomainError:
        found = _uncarriable(view, "")
        where, value = found if found else ("a field", None)
        raise UncarriableNumber(
            f"{where} = {value} is beyond the integers a signed document can carry exactly (RFC 8785: up to 2^53 - 1 "
            "= 9007199254740991); write it in a larger unit or as a decimal string"
        ) from None


def _digest(canonical_bytes: bytes, block: Any) -> str:
    return hashlib.sha256(canonical_bytes + b"\n" + rfc8785.dumps(block)).hexdigest()


def digest(data: dict[str, Any]) -> str:
    """SHA-256 naming a signed document (its canonical bytes and its signature block): how aggregates cite inputs.
    A record stream (a version 3 node report) is named by its chain head instead (bench.report.records.digest)."""
    if _is_stream(data):
        from bench.report import records

        return records.digest(data)
    return _digest(canonical(data), data.get(SIGNATURE_FIELD))


def _is_stream(data: Any) -> bool:
    from bench.report.model import NODE_REPORT_KIND, STREAM_VERSION

    return isinstance(data, dict) and data.get("schema_version") == STREAM_VERSION and data.get(
        "kind") == NODE_REPORT_KIND  # fmt: skip


def _samples_mismatch(data: dict[str, Any]) -> str | None:
    measurements = data.get("measurements")
    for i, m in enumerate(measurements if isinstance(measurements, list) else []):
        if not isinstance(m, dict):
            continue
        try:
            ok = m.get("samples_sha256") == samples_digest(m.get("warmup_s", []), m.get("samples_s", []))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            return f"raw samples of measurements[{i}] do not match their samples_sha256"
    return None


#: Why a signature block whose base64 is not in its canonical spelling is refused.
NONCANONICAL_B64 = ("the signature block's base64 is not in its one canonical spelling (the unused bits of its last "
                    "character are set): the same signature would give the report a second digest")  # fmt: skip


def canonical_b64(block: dict[str, Any], public_raw: bytes, signature: bytes) -> bool:
    """Whether the block's public key and signature are written as base64 writes them. A decoder ignores the unused
    low bits of the last character, so each has several spellings; the digest that names a report covers the block's
    text, so a second spelling would be a second name for one signed report."""
    return (base64.b64encode(public_raw).decode() == block.get("public_key")
            and base64.b64encode(signature).decode() == (block.get("signature") or ""))  # fmt: skip


def signer(data: Any) -> str | None:
    """The 128-bit key id of the public key in `data`'s signature block (whatever id the block itself states: older
    blocks state a 64-bit one), or None when there is no readable key. Trust lists are matched against this."""
    block = data.get(SIGNATURE_FIELD) if isinstance(data, dict) else None
    try:
        raw = base64.b64decode(block.get("public_key", ""), validate=True) if isinstance(block, dict) else b""
    except (binascii.Error, ValueError, TypeError):
        return None
    return keys.key_id(raw) if len(raw) == 32 else None


def sign(data: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The signature block for `data` (to be stored under data['signature'])."""
    public = key.public_key()
    return {
        "alg": ALG,
        "public_key": keys.public_b64(public),
        "key_id": keys.key_id(keys.raw_public(public)),
        "signature": base64.b64encode(key.sign(canonical(data))).decode(),
    }


def check(data: dict[str, Any]) -> tuple[bool, str]:
    """(valid, why) for the signature block of `data`: present, well formed, key id matching the key, every raw-sample
    block matching its digest, and the signature verifying over the canonical bytes."""
    valid, why, _ = inspect(data)
    return valid, why


def inspect(data: dict[str, Any]) -> tuple[bool, str, str | None]:
    """check() and digest() together, canonicalizing once: (valid, why, digest or None if not canonicalizable)."""
    if _is_stream(data):
        from bench.report import records

        return records.inspect(data)
    try:
        body = canonical(data)
        name = _digest(body, data.get(SIGNATURE_FIELD))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        return False, f"report cannot be canonicalized (RFC 8785): {exc}", None
    block = data.get(SIGNATURE_FIELD)
    if not isinstance(block, dict):
        return False, "not signed (no signature block)", name
    if block.get("alg") != ALG:
        return False, f"unsupported signature algorithm {block.get('alg')!r}; bench verifies {ALG}", name
    try:
        raw = base64.b64decode(block.get("public_key", ""), validate=True)
        sig = base64.b64decode(block.get("signature", ""), validate=True)
        public = Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError, TypeError):
        return False, "malformed signature block (public key or signature is not valid base64 Ed25519)", name
    if not canonical_b64(block, raw, sig):
        return False, NONCANONICAL_B64, name
    if block.get("key_id") not in (keys.key_id(raw), keys.legacy_key_id(raw)):
        return False, "key_id does not belong to the public key in the block", name
    try:
        public.verify(sig, body)
    except InvalidSignature:
        return False, "signature does not match the report's contents (modified after signing?)", name
    mismatch = _samples_mismatch(data)
    if mismatch:
        return False, mismatch, name
    return True, "valid", name
