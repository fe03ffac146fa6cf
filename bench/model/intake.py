"""The one door every document an auditor reads comes through: node reports, capacity reports, challenges,
commitments, receipt logs, reveal manifests and proofs.

An auditor's inputs are written by the party being audited, so each is treated as hostile:
- only regular files are read (a FIFO would hang the reader, /dev/zero would fill its memory); a symlink is followed
  only when its target stays inside the folder being scanned (`root`), and never for a file named on its own;
- at most `max_bytes` are read (DEFAULT_MAX_BYTES, or $BENCH_MAX_FILE_BYTES), checked on the open descriptor;
- the bytes are read once, and the same buffer is both hashed and parsed, so storage that answers two reads
  differently (NFS, FUSE) cannot show one file to the hash and another to the parser;
- JSON is parsed strictly (bench.model.strict_json): duplicate keys (the stored bytes would differ from the view
  that was signed), NaN and Infinity, numbers that overflow binary64, integers beyond 64 bits and nesting deeper
  than MAX_DEPTH are refused.
Every refusal is an InputError with one line naming the file.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.model import written
from bench.model.strict_json import InputError, parse_json

#: Largest document read, in bytes. A node report with a few thousand samples per measurement is well under 10 MB.
DEFAULT_MAX_BYTES = 64 * 2**20
#: Largest record stream (a version 3 node report, bench.model.records) read, in bytes: an eight-GPU node's run of
#: 20 million samples takes 80-180 MB. $BENCH_MAX_FILE_BYTES, when set, bounds streams too.
DEFAULT_MAX_STREAM_BYTES = 1024 * 2**20
#: How a record stream starts (bench.model.records.PREFIX; repeated here so that reading a document imports
#: nothing more).
_STREAM_PREFIX = b'{"record":{'
#: What a version-2 node report holds (its kind, bench.model.reports.NODE_REPORT_KIND): such a document is read by
#: bench.model.written.parse_node_report first.
_NODE_REPORT_KIND = b'"bench.node-report"'
#: What a capacity report holds (its kind, bench.model.reports.CAPACITY_KIND): such a document is read by
#: bench.model.written.parse_signed first (a country's are 3 MB each).
_CAPACITY_KIND = b'"bench.capacity-report"'
#: A stream as any JSON writer may have spaced it (the prefix is the form bench writes).
_STREAM_START = re.compile(rb'[ \t\r\n]*\{[ \t\r\n]*"record"[ \t\r\n]*:')

#: Environment variable overriding DEFAULT_MAX_BYTES (an integer number of bytes).
MAX_BYTES_ENV = "BENCH_MAX_FILE_BYTES"


@dataclass(frozen=True)
class Document:
    """A file's bytes as read (once), their SHA-256, and the JSON parsed from those same bytes."""

    path: Path
    raw: bytes
    data: Any
    #: For a record stream whose every record was read as its canonical bytes: their SHA-256 each, in order (what
    #: bench.model.records.inspect(data, chain) takes instead of canonicalizing the records again); else None. It
    #: describes `data` as parsed: a caller that changes `data` must not pass it on.
    chain: list[bytes] | None = None
    #: For a signed document read as bench writes it (bench.model.written): the canonical bytes of its signed view,
    #: what sign.inspect(data, body=...) checks the signature over instead of canonicalizing `data` again; else None.
    #: Like chain, it describes `data` as parsed.
    signed_body: bytes | None = None

    @functools.cached_property  # hashed once: a folder index and every level of a disclosure tree ask for it
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


def max_bytes_default() -> int:
    value = os.environ.get(MAX_BYTES_ENV)
    if value:
        try:
            if int(value) > 0:
                return int(value)
        except ValueError:
            pass
        raise InputError(f"${MAX_BYTES_ENV} is {value!r}; it should be a positive number of bytes")
    return DEFAULT_MAX_BYTES


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def read_bytes(path: Path, *, root: Path | None = None, max_bytes: int | None = None,
               stream_max_bytes: int | None = None) -> bytes:  # fmt: skip
    """The bytes of a regular file, read once, at most max_bytes of them (see the module docstring); a file that
    starts as a record stream does may hold up to stream_max_bytes (when given)."""
    limit = max_bytes_default() if max_bytes is None else max_bytes
    try:
        if path.is_symlink() and (root is None or not _inside(path, root)):
            raise InputError(
                f"{path}: is a symbolic link" + (f" leading outside {root}" if root else "") + "; not read"
            )
        if root is not None and not _inside(path, root):
            raise InputError(f"{path}: lies outside {root}; not read")
        target = path.resolve() if root is not None else path
        # O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: the checked name is the file opened
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{path}: not a regular file (a FIFO, device or directory); not read")
        chunks, total = [], 0
        if stream_max_bytes is not None and info.st_size > limit:
            first = os.read(fd, len(_STREAM_PREFIX))
            chunks.append(first)
            total = len(first)
            if first == _STREAM_PREFIX:
                limit = stream_max_bytes
        if info.st_size > limit:
            raise InputError(f"{path}: {info.st_size} bytes, more than the limit of {limit} (${MAX_BYTES_ENV})")
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # the file grew after fstat
                raise InputError(f"{path}: more than the limit of {limit} bytes (${MAX_BYTES_ENV})")
        return b"".join(chunks)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def safe_name(name: str) -> str:
    """A file name as text that any JSON writer (RFC 8785 included) accepts: bytes that are not UTF-8 (which Python
    carries as lone surrogates) are written backslash-escaped, e.g. b'\\xff' -> '\\\\xff'."""
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = name.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def read_json(path: Path, *, root: Path | None = None, max_bytes: int | None = None,
              max_containers: int | None = None) -> Document:  # fmt: skip
    """A document read once and parsed from the same bytes; InputError (one line, naming the file) otherwise. A
    record stream (a version 3 node report) is parsed into its dictionary form (bench.model.records.parse)."""
    stream_limit = None
    if max_bytes is None:
        stream_limit = max_bytes_default() if os.environ.get(MAX_BYTES_ENV) else DEFAULT_MAX_STREAM_BYTES
    raw = read_bytes(path, root=root, max_bytes=max_bytes, stream_max_bytes=stream_limit)
    if _STREAM_START.match(raw, 0, 256):
        from bench.model import records

        digests: list[bytes] = []
        data = records.parse(raw, safe_name(str(path)), digests=digests)
        return Document(path, raw, data, digests or None)
    if _NODE_REPORT_KIND in raw:  # a version-2 node report, most likely: its raw samples lie outside its signed view
        node = written.parse_node_report(raw, max_containers=max_containers)
        if node is not None:
            return Document(path, raw, node[0], signed_body=node[1])
    if _CAPACITY_KIND in raw:
        signed = written.parse_signed(raw, max_containers=max_containers)
        if signed is not None:
            return Document(path, raw, signed[0], signed_body=signed[1])
    fast = written.parse_written(raw, max_containers=max_containers)
    if fast is not None:
        return Document(path, raw, fast[0], signed_body=fast[1])
    return Document(path, raw, parse_json(raw, safe_name(str(path)), max_containers=max_containers))


def read_gzip(path: Path, expected: int, *, root: Path | None = None) -> bytes:
    """Decompress a gzip file whose content must be exactly `expected` bytes, stopping as soon as it would exceed them
    (a few MB of zeros decompress to gigabytes). The compressed file is capped at `expected` plus gzip's overhead."""
    packed = read_bytes(path, root=root, max_bytes=expected + expected // 100 + 65536)
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflate.decompress(packed, expected + 1)
    except zlib.error as exc:
        raise InputError(f"{path}: not a valid gzip file: {exc}") from None
    if len(out) != expected or inflate.unconsumed_tail or not inflate.eof:
        more = len(out) > expected or bool(inflate.unconsumed_tail)
        raise InputError(f"{path}: decompresses to {'more' if more else 'fewer'} than the expected {expected} bytes")
    if inflate.unused_data and inflate.unused_data.strip(b"\x00"):
        raise InputError(f"{path}: data after the gzip stream")
    return out


__all__ = ["DEFAULT_MAX_BYTES", "MAX_BYTES_ENV", "Document", "InputError",
           "parse_json", "read_bytes", "read_gzip", "read_json", "safe_name"]  # fmt: skip
