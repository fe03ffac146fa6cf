"""Ed25519 signing keys: where they live, how they are made, and refusing private keys others can read.

The private key is a PEM (PKCS#8) file of mode 0600; it is never printed or embedded in a report. A report carries
only the raw public key (base64) and its key id: the first 16 hex digits of SHA-256 over the raw public key bytes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: Environment variable naming the key file; otherwise the default path below.
KEY_ENV = "BENCH_KEY"


class KeyFileError(Exception):
    """A key that cannot be used; the message is one line meant for a person."""


def default_key_path() -> Path:
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "bench" / "node_ed25519.pem"


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:16]


def public_b64(public: Ed25519PublicKey) -> str:
    return base64.b64encode(raw_public(public)).decode()


def create(path: Path, force: bool = False) -> Ed25519PrivateKey:
    """Write a new key pair: PATH (private, 0600, created that way, never looser) and PATH.pub (public, PEM)."""
    if path.exists() and not force:
        raise KeyFileError(f"{path} exists; use --force to replace it (reports signed with it stay verifiable by its id)")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(tmp, path)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path.with_name(path.name + ".pub").write_bytes(public_pem)
    return key


def load(path: Path) -> Ed25519PrivateKey:
    """Load a private key, refusing one that group or others can read (like ssh does)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"no key at {path}; create one with `bench keys init`") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"private key {path} is readable by others (mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def load_or_create(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The key at `path`, creating it when absent (True when created, so the caller can say so)."""
    if path.exists():
        return load(path), False
    return create(path), True


def parse_trusted(text: str) -> set[str]:
    """Key ids from a trust list: one per line, either a key id (16 hex digits) or a base64 raw public key; '#' starts
    a comment. Anything else is an error naming the line."""
    ids = set()
    for n, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        token = entry.split()[0]
        if len(token) == 16 and all(c in "0123456789abcdef" for c in token.lower()):
            ids.add(token.lower())
            continue
        try:
            raw = base64.b64decode(token, validate=True)
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise KeyFileError(f"trusted-keys line {n}: {token!r} is neither a 16-hex-digit key id nor a base64 Ed25519 key")
        ids.add(key_id(raw))
    return ids
