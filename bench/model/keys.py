"""Ed25519 signing keys: where they live, how they are made, and refusing private keys others can read.

The private key is a PEM (PKCS#8) file of mode 0600; it is never printed or embedded in a report. A report carries
only the raw public key (base64) and its key id: the first 32 hex digits (128 bits) of SHA-256 over the raw public key
bytes. Reports written before ids grew from 16 hex digits still verify (their block names the public key), but a
trust list takes only 128-bit ids or whole public keys: a 64-bit id is within reach of a second-preimage search.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path
from typing import Any

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


#: Hex digits of a key id (128 bits).
KEY_ID_HEX = 32
#: Hex digits of the key ids bench wrote before (64 bits): still read in signature blocks, refused in trust lists.
LEGACY_KEY_ID_HEX = 16


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:KEY_ID_HEX]


def legacy_key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).hexdigest()[:LEGACY_KEY_ID_HEX]


def public_b64(public: Ed25519PublicKey) -> str:
    return base64.b64encode(raw_public(public)).decode()


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to PATH.tmp, created here and now (O_EXCL|O_NOFOLLOW: never through a file or link someone left
    there), then rename it over PATH."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    except FileExistsError:
        raise KeyFileError(f"{tmp} already exists (left by a crash, or planted); remove it and retry") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create(path: Path, force: bool = False) -> Ed25519PrivateKey:
    """Write a new key pair: PATH (private, 0600, created that way, never looser) and PATH.pub (public, PEM)."""
    if path.is_symlink():
        raise KeyFileError(f"{path} is a symbolic link; a key is written only to a plain file")
    if path.exists() and not force:
        raise KeyFileError(
            f"{path} exists; use --force to replace it (reports signed with it stay verifiable by its id)"
        )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_new(path, pem, 0o600)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(path.with_name(path.name + ".pub"), public_pem, 0o644)
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


def public_key_id(path: Path) -> str:
    """The key id of a key file: a private key (PEM, as `load` takes it) or its public half (PATH.pub, PEM)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if b"PUBLIC KEY" in text.split(b"\n", 1)[0]:
        try:
            public = serialization.load_pem_public_key(text)
        except ValueError as exc:
            raise KeyFileError(f"{path} is not a PEM public key: {exc}") from None
        if not isinstance(public, Ed25519PublicKey):
            raise KeyFileError(f"{path} holds a {type(public).__name__}, not an Ed25519 key")
        return key_id(raw_public(public))
    return key_id(raw_public(load(path).public_key()))


def parse_trusted(text: str) -> set[str]:
    """Key ids from a trust list (see parse_trust; the node names a line binds are read there)."""
    return parse_trust(text)[0]


def parse_trust(text: str) -> tuple[set[str], dict[str, str]]:
    """Key ids, and node names bound to them, from a trust list: one key per line, either a key id (32 hex digits) or
    a base64 raw public key, optionally followed by the node names that key answers for (`KEY node001 node002`);
    '#' starts a comment. A name bound to a key may be committed under by that key only (a challenge commitment under
    it signed by any other key is refused); a line without names binds none (the format before names, still read).
    Anything else is an error naming the line (a 16-digit id, too short to trust, says so; a name bound to two keys
    too)."""
    ids: set[str] = set()
    names: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        token, *bound = entry.split()
        kid = _trusted_id(token, n)
        ids.add(kid)
        for name in bound:
            if names.get(name, kid) != kid:
                raise KeyFileError(f"trusted-keys line {n}: node name {name!r} is already bound to key {names[name]}: "
                                   "a name belongs to one key")  # fmt: skip
            names[name] = kid
    return ids, names


def _trusted_id(token: str, n: int) -> str:
    hexadecimal = all(c in "0123456789abcdef" for c in token.lower())
    if len(token) == KEY_ID_HEX and hexadecimal:
        return token.lower()
    if len(token) == LEGACY_KEY_ID_HEX and hexadecimal:
        raise KeyFileError(f"trusted-keys line {n}: {token!r} is a 64-bit key id, too short to trust; put the "
                           f"{KEY_ID_HEX}-digit id (`bench keys show`) or the base64 public key instead")  # fmt: skip
    try:
        raw = base64.b64decode(token, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise KeyFileError(f"trusted-keys line {n}: {token!r} is neither a {KEY_ID_HEX}-hex-digit key id nor a base64 "
                           "Ed25519 key")  # fmt: skip
    return key_id(raw)


#: The one signature algorithm bench signs and verifies (the `alg` of every signature block).
ALG = "ed25519"


#: Why a signature block whose base64 is not in its canonical spelling is refused.
NONCANONICAL_B64 = ("the signature block's base64 is not in its one canonical spelling (the unused bits of its last "
                    "character are set): the same signature would give the report a second digest")  # fmt: skip


def canonical_b64(block: dict[str, Any], public_raw: bytes, signature: bytes) -> bool:
    """Whether the block's public key and signature are written as base64 writes them. A decoder ignores the unused
    low bits of the last character, so each has several spellings; the digest that names a report covers the block's
    text, so a second spelling would be a second name for one signed report."""
    return (base64.b64encode(public_raw).decode() == block.get("public_key")
            and base64.b64encode(signature).decode() == (block.get("signature") or ""))  # fmt: skip
