"""Signing and checking reports: Ed25519 over the RFC 8785 canonical bytes (bench.model.canonical) of everything but
the signature block; a record stream (a version 3 node report) is checked by bench.model.records.

The layers under it, none of which imports this module: canonical (the bytes), keys (key ids and the block's
spelling), samples (the raw-sample digest), reports (the kinds and versions that say which form a document is).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bench.model import ed25519, keys
from bench.model.canonical import SIGNATURE_FIELD, block_bytes, canonical
from bench.model.keys import ALG, NONCANONICAL_B64, canonical_b64
from bench.model.reports import NODE_REPORT_KIND, STREAM_VERSION
from bench.model.samples import samples_digest


def _digest(canonical_bytes: bytes, block: Any) -> str:
    return hashlib.sha256(canonical_bytes + b"\n" + block_bytes(block)).hexdigest()


def digest(data: dict[str, Any]) -> str:
    """SHA-256 naming a signed document (its canonical bytes and its signature block): how aggregates cite inputs.
    A record stream (a version 3 node report) is named by its chain head instead (bench.model.records.digest)."""
    if _is_stream(data):
        from bench.model import records

        return records.digest(data)
    return _digest(canonical(data), data.get(SIGNATURE_FIELD))


def _is_stream(data: Any) -> bool:
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
    return block_for(canonical(data), key)


def block_for(canonical_bytes: bytes, key: Ed25519PrivateKey) -> dict[str, Any]:
    """The signature block over a document's canonical bytes (canonical(data)), as sign(data, key) writes it."""
    public = key.public_key()
    return {
        "alg": ALG,
        "public_key": keys.public_b64(public),
        "key_id": keys.key_id(keys.raw_public(public)),
        "signature": base64.b64encode(key.sign(canonical_bytes)).decode(),
    }


def check(data: dict[str, Any]) -> tuple[bool, str]:
    """(valid, why) for the signature block of `data`: present, well formed, key id matching the key, every raw-sample
    block matching its digest, and the signature verifying over the canonical bytes."""
    valid, why, _ = inspect(data)
    return valid, why


def inspect(data: dict[str, Any], chain: list[bytes] | None = None, body: bytes | None = None) -> tuple[bool, str, str | None]:  # fmt: skip
    """check() and digest() together, canonicalizing once: (valid, why, digest or None if not canonicalizable). chain:
    a record stream's hashes as bench.model.intake read them (Document.chain; see bench.model.records.inspect); body:
    canonical(data) as bench.model.intake read it (Document.signed_body), so that data is not canonicalized again."""
    if _is_stream(data):
        from bench.model import records

        return records.inspect(data, chain)
    try:
        if body is None:
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
        Ed25519PublicKey.from_public_bytes(raw)  # a key that is not 32 bytes: malformed
    except (binascii.Error, ValueError, TypeError):
        return False, "malformed signature block (public key or signature is not valid base64 Ed25519)", name
    if not canonical_b64(block, raw, sig):
        return False, NONCANONICAL_B64, name
    if block.get("key_id") not in (keys.key_id(raw), keys.legacy_key_id(raw)):
        return False, "key_id does not belong to the public key in the block", name
    if not ed25519.valid(raw, sig, body):  # OpenSSL's verdict, libsodium asked first (faster)
        return False, "signature does not match the report's contents (modified after signing?)", name
    mismatch = _samples_mismatch(data)
    if mismatch:
        return False, mismatch, name
    return True, "valid", name
