"""Ed25519 signature checks with OpenSSL's verdict (cryptography), asked of libsodium (PyNaCl) first because it is
faster: under callgrind one check of a node report's 12 kB signed body takes 1.07 M instructions in libsodium against
1.67 M in the OpenSSL build that cryptography ships, a fifth of aggregating an 8-GPU node report (issue 26).

Why the verdict is OpenSSL's: both check the same cofactorless equation, encode [S]B - [h]A and compare it with R byte
for byte, with h = SHA-512(R || A || M), and both refuse S >= L. libsodium refuses besides what OpenSSL accepts: a
public key or R of small order and a public key not canonically encoded ("Taming the many EdDSAs", Chalkias et al.,
2020, table 5). So what libsodium accepts OpenSSL accepts (the same point decoded, the same h, the same R'); what
libsodium refuses is asked of OpenSSL, whose answer stands. tests/report/test_ed25519.py holds the two to the same
verdicts on honest, tampered and hostile signatures (small-order keys and R, S + L, non-canonical keys)."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PUBLIC_KEY_BYTES, SIGNATURE_BYTES = 32, 64
#: Up to this many bytes of message libsodium is asked first; beyond it OpenSSL alone (the verdict is OpenSSL's
#: either way). libsodium's SHA-512 is portable C and crypto_sign_open copies signature and message into one buffer:
#: process time here (2026-12-07, load ~5), 12 kB (a node report's signed view) libsodium 75 us against OpenSSL's 118,
#: 64 kB 209 against 179, 128 kB 641 against 310, 3 MB (a site's capacity report) 11.2 ms against 4.1.
LIBSODIUM_UP_TO = 65536


def _openssl(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def valid(public: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is a valid Ed25519 signature of `message` by the 32-byte public key `public`, as OpenSSL
    (cryptography's Ed25519PublicKey.verify) decides (libsodium asked first for a message up to LIBSODIUM_UP_TO
    bytes). ValueError, as from_public_bytes raises it, for a key that is not 32 bytes."""
    if len(public) != PUBLIC_KEY_BYTES:
        Ed25519PublicKey.from_public_bytes(public)  # raises ValueError with cryptography's words
    if len(signature) == SIGNATURE_BYTES and len(message) <= LIBSODIUM_UP_TO:
        from nacl.bindings import crypto_sign_open  # imported on first use: `bench --help` loads no crypto library
        from nacl.exceptions import BadSignatureError

        try:
            crypto_sign_open(signature + message, public)
        except BadSignatureError:
            pass  # libsodium refuses more than OpenSSL does: OpenSSL's answer stands
        else:
            return True
    return _openssl(public, signature, message)


__all__ = ["valid"]
