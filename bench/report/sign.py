"""Signing and checking reports: Ed25519 over the RFC 8785 canonical bytes of everything but the signature block.

Canonical JSON comes from the `rfc8785` package (sorted keys, shortest round-trip numbers, no whitespace), so any
verifier in any language that implements RFC 8785 gets the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bench.report import keys

ALG = "ed25519"
SIGNATURE_FIELD = "signature"


def canonical(data: dict[str, Any]) -> bytes:
    """RFC 8785 bytes of `data` without its signature block."""
    return rfc8785.dumps({k: v for k, v in data.items() if k != SIGNATURE_FIELD})


def digest(data: dict[str, Any]) -> str:
    """SHA-256 of a whole signed document's canonical bytes, signature included: how aggregates name their inputs."""
    return hashlib.sha256(rfc8785.dumps(data)).hexdigest()


def samples_digest(warmup_s: list[float], samples_s: list[float]) -> str:
    """SHA-256 of a measurement's raw-sample block, tying its summary to exactly these samples."""
    return hashlib.sha256(rfc8785.dumps({"samples_s": samples_s, "warmup_s": warmup_s})).hexdigest()


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
    """(valid, why) for the signature block of `data`: present, well formed, key id matching the key, and verifying."""
    block = data.get(SIGNATURE_FIELD)
    if not isinstance(block, dict):
        return False, "not signed (no signature block)"
    if block.get("alg") != ALG:
        return False, f"unsupported signature algorithm {block.get('alg')!r}; bench verifies {ALG}"
    try:
        raw = base64.b64decode(block.get("public_key", ""), validate=True)
        sig = base64.b64decode(block.get("signature", ""), validate=True)
        public = Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError, TypeError):
        return False, "malformed signature block (public key or signature is not valid base64 Ed25519)"
    if block.get("key_id") != keys.key_id(raw):
        return False, "key_id does not belong to the public key in the block"
    try:
        public.verify(sig, canonical(data))
    except InvalidSignature:
        return False, "signature does not match the report's contents (modified after signing?)"
    except rfc8785.CanonicalizationError as exc:
        return False, f"report cannot be canonicalized: {exc}"
    return True, "valid"
