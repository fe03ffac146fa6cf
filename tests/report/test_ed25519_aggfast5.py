"""bench.model.ed25519.valid on large messages (a site's capacity report signs megabytes): beyond LIBSODIUM_UP_TO
bytes OpenSSL alone is asked (libsodium is 3x slower there), with the same verdicts on honest, tampered and hostile
signatures; up to it libsodium is still asked first."""

from __future__ import annotations

import nacl.bindings
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.model import ed25519
from tests.report.test_ed25519 import SMALL, L, _le, openssl


@pytest.fixture
def sodium_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = nacl.bindings.crypto_sign_open

    def counted(signed: bytes, public: bytes) -> bytes:
        calls.append(len(signed) - ed25519.SIGNATURE_BYTES)
        return real(signed, public)

    monkeypatch.setattr(nacl.bindings, "crypto_sign_open", counted)
    return calls


@pytest.mark.parametrize("size", [ed25519.LIBSODIUM_UP_TO + 1, 3_000_000])
def test_a_large_message_takes_openssls_verdict_without_libsodium(size: int, sodium_calls: list[int]) -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    message = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    signature = key.sign(message)
    assert ed25519.valid(public, signature, message) is True
    tampered = message[:-1] + b"y"
    assert ed25519.valid(public, signature, tampered) is False
    flipped = signature[:10] + bytes([signature[10] ^ 1]) + signature[11:]
    assert ed25519.valid(public, flipped, message) is False
    for a in SMALL[:4]:  # hostile keys and R of small order, S at and around the group order
        for s in (0, 1, L - 1, L):
            hostile = SMALL[1] + _le(s)
            assert ed25519.valid(a, hostile, message) is openssl(a, hostile, message)
    assert sodium_calls == []


def test_up_to_the_limit_libsodium_is_still_asked_first(sodium_calls: list[int]) -> None:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    for size in (12_000, ed25519.LIBSODIUM_UP_TO):
        message = b"r" * size
        assert ed25519.valid(public, key.sign(message), message) is True
    assert sodium_calls == [12_000, ed25519.LIBSODIUM_UP_TO]
