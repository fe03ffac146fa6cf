"""Node reports as a stream of signed records (schema version 3): what a run appends as it goes, and how it is read.

A report file is one record a line, each line the RFC 8785 canonical JSON of {"record": R, "signature": S}:
- R is an object with `type`, `seq` (its position, from 0) and `prev` (the hex SHA-256 of the canonical bytes of the
  record before it; null for the first). Types: "header" (kind, schema_version 3, run_id, tool, command_line, config,
  inventory, start_utc and `signer`, the public half of the signature block or null), "measurement" (`measurement`:
  its record form, bench.model.reports.Measurement.to_record), "amend" (`index` of a measurement and its new
  `warnings` and `details`: what a run notes about a measurement after saving it), and "end" (end_utc, interrupted).
  After "end" only amendments may follow.
- S is base64 of the node key's Ed25519 signature of SIGNING_CONTEXT + SHA-256(R) (or null when unsigned).

So appending costs one record's canonical bytes, one hash and one signature, whatever came before; the hash chain
makes the last record's signature cover every record before it. A file cut at any byte (SIGKILL mid-write, a disk
filling up) ends in a torn line without its newline: the reader drops it and what remains is a signed partial report
(no end record). A record removed, reordered or edited breaks the chain and the signature of the last record.

Reading (parse) turns a stream into the dictionary every reader of reports takes (the version-2 layout: run_id, ...,
measurements, end_utc, interrupted, signature), keeping the records themselves under `records`; verification
(inspect) recomputes the chain from those records, checks the dictionary is what they say, and checks the last
signature. Only the last signature is checked: the chain already binds every record to it, and checking all of them
would cost an Ed25519 verification per measurement for nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

import msgspec
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bench.model import ed25519, keys
from bench.model.canonical import SIGNATURE_FIELD, block_bytes, canonical_bytes, parse_canonical
from bench.model.reports import NODE_REPORT_KIND, STREAM_VERSION, ReportError
from bench.model.strict_json import MAX_DEPTH, InputError, parse_json
from bench.model.written import count_byte, rfc8785_writing

#: Every stream starts with these bytes (the canonical form of its first line): how a reader tells it from a document.
PREFIX = b'{"record":{'
#: How an amendment's line starts (canonical JSON sorts its keys: `details` comes first): the only record a writer
#: appends after the end record, so the only one a torn write after it can be the start of.
AMEND_PREFIX = b'{"record":{"details":'
#: What each record's signature signs, before the record's SHA-256: a signature over a stream record can never pass
#: for one over a version-2 document (whose canonical bytes start with "{").
SIGNING_CONTEXT = b"bench.node-report.v3 record\n"
HEADER, MEASUREMENT, AMEND, END = "header", "measurement", "amend", "end"
#: Header fields that make up the report's top level, in the record as in the dictionary form.
HEADER_FIELDS = ("run_id", "tool", "command_line", "config", "inventory", "start_utc")
#: Most arrays and objects in one stream (all records together): a real eight-GPU node's 11,200 measurements hold
#: about 40 each. A document is held to DEFAULT_MAX_CONTAINERS; a stream's records are many small documents.
MAX_CONTAINERS = 1 << 22
#: Most samples a whole stream may declare (134 million, 1 GiB as float64; an eight-GPU node's run is about 20
#: million): checked on the declared counts before any block is decompressed.
MAX_SAMPLES = 1 << 27
#: Most JSON values (numbers, strings, literals, containers) one stream may hold, counted before any line is parsed as
#: at most its ',' and its containers (every value but a container's first follows a ','): a line of numbers costs
#: the reader ~30 times its bytes in Python objects (an 80 MB line of 20 million floats took 2.45 GB), so a 1 GiB
#: stream of them ~31 GB; this bounds them to a few GB, about what MAX_CONTAINERS' objects already may cost. A stream
#: bench writes holds ~68 ',' a record (a samples block none): ~0.7 million for a real eight-GPU node's 10,624 records;
#: its MSMF windows' telemetry (10 samples a second, ~9 values each) ~0.3 million more at 60 s windows.
MAX_VALUES = 1 << 25


class Chain:
    """The writer's side: turns records into signed, chained lines."""

    def __init__(self, key: Ed25519PrivateKey | None) -> None:
        self.key = key
        self.seq = 0
        self.prev: str | None = None

    def signer(self) -> dict[str, str] | None:
        """The public half of the signature block (alg, public_key, key_id), or None when unsigned."""
        if self.key is None:
            return None
        public = self.key.public_key()
        return {"alg": keys.ALG, "public_key": keys.public_b64(public), "key_id": keys.key_id(keys.raw_public(public))}

    def line(self, record: dict[str, Any]) -> tuple[bytes, str | None]:
        """The line for `record` (seq and prev filled in) and its signature; the chain moves on."""
        body = canonical_bytes({**record, "seq": self.seq, "prev": self.prev})
        head = hashlib.sha256(body).digest()
        signature = base64.b64encode(self.key.sign(SIGNING_CONTEXT + head)).decode() if self.key else None
        self.seq += 1
        self.prev = head.hex()
        tail = b'"' + signature.encode() + b'"' if signature else b"null"
        return b'{"record":' + body + b',"signature":' + tail + b"}\n", signature


def header(report: Any, signer: dict[str, str] | None) -> dict[str, Any]:
    """The header record of a NodeReport."""
    return {"type": HEADER, "kind": NODE_REPORT_KIND, "schema_version": STREAM_VERSION,
            **{k: getattr(report, k) for k in HEADER_FIELDS}, "signer": signer}  # fmt: skip


def _fail(where: str, why: str) -> ReportError:
    return InputError(f"{where}: {why}")


#: A line as Chain.line writes it: the record's canonical bytes between these, then its signature (base64 or null).
_LINE_HEAD = b'{"record":'
_SIGNATURE_SEP = b',"signature":'
_BASE64_TAIL = re.compile(rb'"([A-Za-z0-9+/=]*)"\}')


def _parse_line(line: bytes, where: str, limit: int) -> tuple[Any, bytes | None]:
    """A line parsed as strict_json.parse_json parses it, and the SHA-256 of its record's bytes when those bytes are
    the record's canonical form (what the chain and the signature cover), else None.

    The line is split as Chain.line joins it (_LINE_HEAD, record bytes, _SIGNATURE_SEP at its last occurrence, then
    "<base64>"} or null}): when the record bytes parse as one JSON object and the rest is that fixed frame, the line is
    exactly {"record": that object, "signature": that string or null}. The record is then parsed once, by
    canonical.parse_canonical, which says whether its bytes are canonical; the strict checks parse_json makes
    (containers, depth, overflowing numbers, integers beyond 64 bits) are made on the same object. Anything else
    (another frame, bytes that are not canonical or fail a check) is parsed by parse_json itself, which gives the
    value or the refusal the slow path gives, and no digest."""
    at = line.rfind(_SIGNATURE_SEP)
    if at > 0 and line.startswith(_LINE_HEAD) and line.endswith((b"null}", b'"}')):
        tail = line[at + len(_SIGNATURE_SEP) :]
        signature = None if tail == b"null}" else _BASE64_TAIL.fullmatch(tail)
        body = line[len(_LINE_HEAD) : at]
        if signature is not None or tail == b"null}":
            # the record lies one level inside the line, which holds its containers to MAX_DEPTH from depth 1
            ok, record = parse_canonical(body, MAX_DEPTH - 2)
            if ok:  # its containers are within `limit`: parse counted the whole stream's before
                obj = {"record": record, "signature": signature.group(1).decode("ascii") if signature else None}
                return obj, hashlib.sha256(body).digest()
    return parse_json(line, where, max_containers=limit), None


_PARSE_LINE = _parse_line
#: The members of a line's object.
_FRAME = {"record", "signature"}


_DECODE = msgspec.json.Decoder().decode
_SORTED = msgspec.json.Encoder(order="sorted")


def _canonical_lines(lines: list[bytes]) -> tuple[list[Any], list[bytes]] | None:
    """(each line parsed, the SHA-256 of each line's record bytes) when every line is the canonical form of what it holds, framed as
    Chain.line writes it ({"record": R, "signature": S}); None when any is not, or when unsure (then each line is
    parsed and checked on its own, _parse_line, as before). What _parse_line decides per line, decided for the whole
    stream a batch of lines at a time (about a MiB of them): msgspec parses each line (C), writes the batch back in one
    call (C), and its writing is turned into RFC 8785's by written.rfc8785_writing, which does its byte passes over
    the batch once (not once a line) and needs no Python call per float (canonical.parse_canonical's float_hook: a
    third of its cost).

    Why the answer is _parse_line's, for each batch: J = '[' + ','.join(lines) + ']' equals C = '[' + ','.join(c_i) +
    ']', c_i the RFC 8785 writing of line i's value v_i. Each line and each c_i is one complete JSON value (msgspec refuses
    trailing bytes), and no complete JSON value's text has a proper prefix that is one too followed by ',' (a number
    holds no ','; an object, array or string closes where its text ends, lexing being decided by the bytes before):
    so line 1 is c_1, and so on, each line its value's canonical form. Hence parse_json reads v_i from it (RFC 8785
    writes each float in its shortest round-trip digits, which json reads back as that float), and a line holding a
    key twice, spaces, another spelling or escape differs from c_i. What parse_json refuses besides: NaN, infinity,
    overflowing numbers and bytes that are not UTF-8 (msgspec refuses them: None), integers beyond 64 bits and
    nesting deeper than MAX_DEPTH (rfc8785_writing: None; J's array at depth 0 and its lines at 1, as parse_json
    counts a line); the containers were counted over the whole stream by parse. A record R_i's bytes are the line's
    between '{"record":' and its last ',"signature":' (S_i is null or a string, whose canonical form holds a quote
    only escaped, and then rfc8785_writing is unsure), so they are R_i's canonical bytes, what the chain hashes."""
    heads = []
    for line in lines:
        at = line.rfind(_SIGNATURE_SEP)
        if at <= 0 or not line.startswith(_LINE_HEAD):
            return None
        heads.append(hashlib.sha256(memoryview(line)[len(_LINE_HEAD) : at]).digest())  # hashed in place, not copied
    values: list[Any] = []
    start, count = 0, len(lines)
    while start < count:  # a batch of lines at a time (about _BATCH_BYTES): a real node's 165 MB stream written
        end, size = start + 1, len(lines[start])  # back whole held three copies of it at once
        while end < count and size + len(lines[end]) <= _BATCH_BYTES:
            size += len(lines[end])
            end += 1
        batch = lines[start:end]
        try:
            parsed = [_DECODE(line) for line in batch]
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, ValueError):
            return None
        if rfc8785_writing(_SORTED.encode(parsed), MAX_DEPTH) != b"[" + b",".join(batch) + b"]":
            return None
        values += parsed
        start = end
    return values, heads


#: How many bytes of lines _canonical_lines checks at once (one line more when a line alone is longer).
_BATCH_BYTES = 1 << 20


def parse(raw: bytes, where: str, *, max_containers: int | None = None,
          digests: list[bytes] | None = None) -> dict[str, Any]:  # fmt: skip
    """The dictionary form of a stream (see the module docstring); InputError naming `where` and the record for
    anything that is not a stream this module writes. A last line without its newline is a torn write: dropped, and
    counted in `torn_bytes`.

    With `digests` (an empty list), each record whose bytes are its canonical form has their SHA-256 appended, so that
    inspect(data, digests) checks the chain and signature over the bytes read instead of canonicalizing each record
    again; where a record's bytes are not canonical the list is left empty (inspect canonicalizes, as without it)."""
    limit = MAX_CONTAINERS if max_containers is None else max_containers
    containers = count_byte(raw, b"[") + count_byte(raw, b"{")  # raw.count's numbers, by numpy on a long stream
    if containers > limit:
        raise _fail(where, f"{containers} JSON arrays and objects, more than the limit of {limit}")
    values = count_byte(raw, b",") + containers
    if values > MAX_VALUES:
        raise _fail(where, f"about {values} JSON values, more than the limit of {MAX_VALUES}")
    lines = raw.split(b"\n")
    torn = lines.pop()
    if not lines:
        raise _fail(where, "no complete record (the header was cut short)")
    out: list[dict[str, Any]] = []
    signatures: list[Any] = []
    declared = 0
    # every line canonical, decided at once (tests that replace _parse_line with the strict parse, the slow path, turn
    # this off too): each line's value and its record's SHA-256 over the bytes read
    whole = _canonical_lines(lines) if digests is not None and _parse_line is _PARSE_LINE else None
    if whole is not None:
        digests[:] = whole[1]  # type: ignore[index]
    for i, line in enumerate(lines):
        if whole is not None:
            obj = whole[0][i]
        elif digests is None or len(digests) != i:  # no digests asked for, or a record before was not canonical
            obj = parse_json(line, f"{where}: record {i}", max_containers=limit)
        else:
            obj, line_digest = _parse_line(line, f"{where}: record {i}", limit)
            if line_digest is None:
                digests.clear()
            else:
                digests.append(line_digest)
        # (each message's "record {i}" is built only for a refusal: a real node's stream holds 11,200 records)
        if not isinstance(obj, dict) or obj.keys() != _FRAME or not isinstance(obj["record"], dict):
            raise _fail(where, f"record {i} is not a {{record, signature}} object")
        r, s = obj["record"], obj["signature"]
        if s is not None and not isinstance(s, str):
            raise _fail(where, f"record {i}.signature should be base64 text or null")
        seq = r.get("seq")
        if seq != i or type(seq) is bool:
            raise _fail(where, f"record {i} says it is record {seq!r}: a record before it is missing, or they are "
                        "out of order")  # fmt: skip
        kind = r.get("type")
        if (i == 0) != (kind == HEADER):
            raise _fail(where, f"record {i} is a {kind!r} record; a stream starts with its one header")
        if kind == MEASUREMENT:
            m = r.get("measurement")
            for name in ("warmup", "samples"):
                block = m.get(name) if isinstance(m, dict) else None
                n = block.get("n") if isinstance(block, dict) else None
                declared += n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 0
        elif kind not in (HEADER, AMEND, END):
            raise _fail(where, f"record {i} has unknown type {kind!r}")
        out.append(r)
        signatures.append(s)
    ended = any(r.get("type") == END for r in out)
    start = AMEND_PREFIX if ended else PREFIX
    if torn[: len(start)] != start[: len(torn)]:  # a torn write is the start of a line the writer appends
        raise _fail(where, f"its last {len(torn)} bytes are not the start of a record "
                    f"{'(an amendment) after the end record' if ended else 'line'}: bytes appended to the file, not a "
                    "write cut short")  # fmt: skip
    if declared > MAX_SAMPLES:
        raise _fail(where, f"its records declare {declared} samples, more than the limit of {MAX_SAMPLES}")
    try:
        data = fold(out)
    except ReportError as exc:
        raise _fail(where, str(exc)) from None
    if data["signature"] is not None:
        data["signature"] = {**data["signature"], "signature": signatures[-1]}
    else:
        del data["signature"]
    if torn:
        data["torn_bytes"] = len(torn)
    return data


def fold(records: list[Any]) -> dict[str, Any]:
    """The dictionary form of a list of records (their measurements with amendments applied), with the header's
    signer block as `signature` (its signature itself is the last line's, which the records do not hold) and the
    records under `records`. ReportError for a sequence no writer produces."""
    head = records[0] if records and isinstance(records[0], dict) else {}
    if head.get("type") != HEADER:
        raise ReportError("a stream starts with its header record")
    for key in ("kind", "schema_version", "signer", *HEADER_FIELDS):
        if key not in head:
            raise ReportError(f"the header record lacks {key!r}")
    signer = head["signer"]
    if signer is not None and not isinstance(signer, dict):
        raise ReportError("the header's signer should be an object or null")
    measurements: list[Any] = []
    end: dict[str, Any] | None = None
    for i, r in enumerate(records[1:], 1):
        kind = r.get("type") if isinstance(r, dict) else None
        if kind == MEASUREMENT and end is None:
            measurements.append(r.get("measurement"))
        elif kind == AMEND:
            index = r.get("index")
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(measurements):
                raise ReportError(f"record {i} amends measurement {index!r}, which no record before it holds")
            if not isinstance(measurements[index], dict):
                raise ReportError(f"record {i} amends measurement {index}, which is not an object")
            if set(r) != {"type", "seq", "prev", "index", "warnings", "details"}:
                raise ReportError(f"record {i}: an amendment sets warnings and details, nothing else")
            measurements[index] = {**measurements[index], "warnings": r["warnings"], "details": r["details"]}
        elif kind == END and end is None:
            end = r
        else:
            raise ReportError(f"record {i} ({kind!r}) follows the end record" if end else f"record {i} is a {kind!r}")
    data = {k: head[k] for k in ("kind", "schema_version", *HEADER_FIELDS)}
    data.update(measurements=measurements, end_utc=end.get("end_utc") if end else None,
                interrupted=end.get("interrupted") if end else False, signature=signer, records=records)  # fmt: skip
    return data


def chain_head(records: list[Any], digests: list[bytes] | None = None) -> tuple[str | None, str | None]:
    """(hex SHA-256 of the last record, None), or (None, why) when a record does not name the one before it. With
    `digests` (from parse, one per record: the SHA-256 of its bytes as read, which parse found to be its canonical
    bytes) those are the records' hashes, instead of each record canonicalized again."""
    known = digests is not None and len(digests) == len(records)
    prev = None
    for i, r in enumerate(records):
        if not isinstance(r, dict) or r.get("seq") != i or r.get("prev") != prev:
            return None, (f"record {i} does not follow record {i - 1} (a record was removed, reordered or changed)"
                          if i else "the header record is not the first of its chain")  # fmt: skip
        prev = digests[i].hex() if known else hashlib.sha256(canonical_bytes(r)).hexdigest()  # type: ignore[index]
    return prev, None


def _name(head: str, block: Any) -> str:
    return hashlib.sha256(b"bench.node-report.v3\n" + head.encode() + b"\n" + block_bytes(block)).hexdigest()


def digest(data: dict[str, Any]) -> str:
    """What names a stream report (as bench.model.sign.digest names a document): SHA-256 over its chain head and signature
    block. Two cuts of one run are two reports."""
    head, why = chain_head(data.get("records") if isinstance(data.get("records"), list) else [])
    if head is None:
        raise ValueError(why)
    return _name(head, data.get(SIGNATURE_FIELD))


def inspect(data: dict[str, Any], digests: list[bytes] | None = None) -> tuple[bool, str, str | None]:
    """bench.model.sign.inspect for a stream: (valid, why, digest or None).

    digests: what parse(raw, where, digests=[]) left in its list for the `data` it returned, unchanged since (the
    SHA-256 of each record's bytes as read, each found canonical there: see parse_canonical). The answer is then the
    one inspect(data) gives, by the same steps, with the chain hashed from the bytes read (chain_head): a record's
    canonical bytes are the bytes read, so their SHA-256 are the ones canonicalizing would hash. An empty or short list
    (a record that was not canonical) is ignored."""
    records = data.get("records")
    if not isinstance(records, list) or not records:
        return False, "a version 3 report holds its records (read it with bench.model.intake)", None
    try:
        head, why = chain_head(records, digests)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        return False, f"a record cannot be canonicalized (RFC 8785): {exc}", None
    if head is None:
        return False, str(why), None
    block = data.get(SIGNATURE_FIELD)
    try:
        name = _name(head, block)
        folded = fold(records)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        return False, f"the report cannot be read from its records: {exc}", None
    signer = folded.pop(SIGNATURE_FIELD)
    own = {k: v for k, v in data.items() if k not in (SIGNATURE_FIELD, "torn_bytes")}
    if own != folded:
        return False, "the report's fields differ from what its records say", name
    if not isinstance(block, dict) or signer is None:
        return False, "not signed (no signature block)", name
    if {k: v for k, v in block.items() if k != "signature"} != signer:
        return False, "the signature block is not the one the header names", name
    if block.get("alg") != keys.ALG:
        return False, f"unsupported signature algorithm {block.get('alg')!r}; bench verifies {keys.ALG}", name
    try:
        public_raw = base64.b64decode(block.get("public_key", ""), validate=True)
        signature = base64.b64decode(block.get("signature") or "", validate=True)
        Ed25519PublicKey.from_public_bytes(public_raw)  # a key that is not 32 bytes: malformed
    except (binascii.Error, ValueError, TypeError):
        return False, "malformed signature block (public key or signature is not valid base64 Ed25519)", name
    if not keys.canonical_b64(block, public_raw, signature):
        return False, keys.NONCANONICAL_B64, name
    if block.get("key_id") not in (keys.key_id(public_raw), keys.legacy_key_id(public_raw)):
        return False, "key_id does not belong to the public key in the block", name
    if not ed25519.valid(public_raw, signature, SIGNING_CONTEXT + bytes.fromhex(head)):
        return False, "signature does not match the report's records (modified after signing?)", name
    return True, "valid", name


__all__ = ["AMEND", "AMEND_PREFIX", "END", "HEADER", "MEASUREMENT", "PREFIX", "SIGNING_CONTEXT", "Chain", "digest", "fold", "header",
           "inspect", "parse"]  # fmt: skip
