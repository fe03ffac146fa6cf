"""bench.model.ed25519.valid gives OpenSSL's verdict (cryptography's Ed25519PublicKey.verify) on every signature,
libsodium being asked first: honest, tampered and hostile ones (small-order keys and R, S + L, keys not canonically
encoded), including those OpenSSL accepts and libsodium refuses (its answer must not stand there)."""

from __future__ import annotations

import random

import nacl.bindings
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bench.model import ed25519, sign

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493


def openssl(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def libsodium(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        nacl.bindings.crypto_sign_open(signature + message, public)
    except Exception:  # noqa: BLE001 - any refusal
        return False
    return True


def _le(n: int) -> bytes:
    return n.to_bytes(32, "little")


#: Encodings of points of small order (the identity, the point of order 2, those of order 4 and 8: libsodium's list),
#: with either sign bit, and the identity and order-4 y written non-canonically (y + p).
_ORDER_8 = (bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
            bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"))  # fmt: skip
SMALL = [_le(y) for y in (0, 1, P - 1, P, P + 1)]
SMALL += [bytes(e[:31]) + bytes([e[31] | 0x80]) for e in SMALL[:3]] + list(_ORDER_8)
SMALL += [bytes(e[:31]) + bytes([e[31] | 0x80]) for e in _ORDER_8]


def test_hostile_small_order_keys_and_r_take_openssls_verdict() -> None:
    accepted_by_openssl_only = 0
    for a in SMALL:
        for r in SMALL:
            for s in (0, 1, 8, L - 1, L, L + 1):
                for message in (b"", b"report", bytes(range(256)) * 40):
                    signature = r + _le(s)
                    want = openssl(a, signature, message)
                    assert ed25519.valid(a, signature, message) is want, (a.hex(), r.hex(), s)
                    accepted_by_openssl_only += want and not libsodium(a, signature, message)
    # the fallback is exercised: OpenSSL accepts signatures by small-order keys that libsodium refuses
    assert accepted_by_openssl_only > 0


def test_honest_and_tampered_signatures_take_openssls_verdict() -> None:
    rng = random.Random(26)
    for _ in range(200):
        key = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
        public = key.public_key().public_bytes_raw()
        message = rng.randbytes(rng.choice((0, 1, 64, 12_000)))
        signature = key.sign(message)
        assert ed25519.valid(public, signature, message) is True
        s = int.from_bytes(signature[32:], "little")
        variants = [
            (public, signature[:32] + _le(s + L), message),  # S + L: the same point, S not reduced
            (public, signature, message + b"\x00"),
            (public, signature[:-1], message),  # 63 bytes: never asked of libsodium (it would split elsewhere)
            (public, signature + b"\x00", message),
            (public, rng.randbytes(64), message),
            (rng.randbytes(32), signature, message),
        ]
        flip = rng.randrange(64 * 8)
        variants.append((public, bytes(b ^ (1 << (flip % 8)) if i == flip // 8 else b for i, b in enumerate(signature)),
                         message))  # fmt: skip
        if message:
            flip = rng.randrange(len(message) * 8)
            variants.append((public, signature,
                             bytes(b ^ (1 << (flip % 8)) if i == flip // 8 else b for i, b in enumerate(message))))  # fmt: skip
        for args in variants:
            assert ed25519.valid(*args) is openssl(*args)


def test_a_key_that_is_not_32_bytes_is_refused_as_cryptography_refuses_it() -> None:
    with pytest.raises(ValueError):
        ed25519.valid(b"\x01" * 31, b"\x00" * 64, b"m")


def test_documents_signed_by_a_small_order_key_keep_their_verdict() -> None:
    """sign.inspect goes through ed25519.valid: a document 'signed' by the identity key with
    R = identity and S = 0 (which OpenSSL accepts for any message) is judged as OpenSSL judges it."""
    import base64

    from bench.model import keys

    doc = {"kind": "something", "value": 1}
    raw = _le(1)
    block = {"alg": keys.ALG, "public_key": base64.b64encode(raw).decode(), "key_id": keys.key_id(raw),
             "signature": base64.b64encode(_le(1) + _le(0)).decode()}  # fmt: skip
    doc["signature"] = block
    assert sign.check(doc) == (True, "valid")
    doc["value"] = 2  # any message: R' = identity = R
    assert sign.check(doc) == (True, "valid")
