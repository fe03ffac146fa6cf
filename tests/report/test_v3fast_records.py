"""bench.model.records._canonical_lines (a whole record stream found canonical at once) held to the per-line decision
it replaces (records._parse_line, and under it the strict parse and canonical_bytes): on randomized records holding
floats of every magnitude, integers near the limits, strings with escapes and characters beyond U+FFFF, deep nesting
and one byte changed anywhere, it accepts only streams whose every line is canonical, with the strict parse's values,
types included, and each record's canonical bytes; and it takes the streams bench writes."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.model import records
from bench.model.canonical import canonical_bytes
from bench.model.strict_json import InputError, parse_json
from tests.report.fleet import node_stream

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"v3fast records").digest())


def _typed(value: object) -> object:
    """A value with every scalar's type beside it: 1 and 1.0 (equal in Python) compare unequal here."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, repr(value))


def _per_line(lines: list[bytes]) -> list[tuple[object, bytes | None]] | None:
    """What the per-line path makes of each line: (its value, the SHA-256 of its record's bytes when they are the
    record's canonical bytes, else None); None when a line is refused."""
    out = []
    for line in lines:
        try:
            out.append(records._parse_line(line, "x", records.MAX_CONTAINERS))
        except InputError:
            return None
    return out


def _canonical_record(line: bytes) -> bool:
    """Whether a line is exactly {"record": R, "signature": S} as Chain.line writes it, R in its canonical bytes."""
    try:
        obj = parse_json(line, "x", max_containers=records.MAX_CONTAINERS)
        body = canonical_bytes(obj["record"])
        signature = obj["signature"]
    except (InputError, KeyError, TypeError, ValueError):
        return False
    tail = b"null" if signature is None else json.dumps(signature).encode()
    return isinstance(signature, (str, type(None))) and line == b'{"record":' + body + b',"signature":' + tail + b"}"


def _judged_alike(lines: list[bytes]) -> bool:
    """Asserts what _canonical_lines answers is sound; returns whether it took the stream."""
    whole = records._canonical_lines(lines)
    if whole is None:
        return False
    values, heads = whole
    per = _per_line(lines)
    assert per is not None, "taken whole, refused line by line"
    assert len(values) == len(heads) == len(lines)
    for line, value, head, (slow, digest) in zip(lines, values, heads, per, strict=True):
        body = line[10 : line.rfind(b',"signature":')]
        assert head == hashlib.sha256(body).digest()
        assert _typed(value) == _typed(parse_json(line, "x", max_containers=records.MAX_CONTAINERS))
        assert _typed(value) == _typed(slow)
        assert _canonical_record(line), line[:120]
        assert body == canonical_bytes(value["record"])
        assert digest in (None, hashlib.sha256(body).digest())  # the per-line path may be unsure where this is not
    return True


def _line(record: dict, signature: str | None = "c2lnbmF0dXJl") -> bytes:
    tail = b"null" if signature is None else b'"' + signature.encode() + b'"'
    return b'{"record":' + canonical_bytes(record) + b',"signature":' + tail + b"}"


def _float(r: random.Random) -> float:
    kind = r.randrange(6)
    if kind == 0:  # any bit pattern that is a finite float
        while True:
            x = struct.unpack("<d", r.getrandbits(64).to_bytes(8, "little"))[0]
            if math.isfinite(x):
                return x
    if kind == 1:  # near the edges where spellings change (1e-7, 1e-6, 1e-5, 1e-4, 1e15, 1e16, 1e21)
        return r.choice([1, -1]) * 10.0 ** r.choice([-7, -6, -5, -4, 15, 16, 21]) * r.uniform(0.5, 5)
    if kind == 2:  # integral
        return float(r.choice([0, 1, 700, 2**53, 2**53 + 2, 10**15, 10**16, 10**21, -3]))
    if kind == 3:
        return r.choice([0.0, -0.0, 5e-324, 1.7976931348623157e308, 2.2250738585072014e-308])
    return r.uniform(-1e3, 1e3) * 10.0 ** r.randrange(-12, 12)


def _scalar(r: random.Random) -> object:
    kind = r.randrange(8)
    if kind == 0:
        return r.choice([0, 1, -1, 2**53 - 1, 2**53, 2**53 + 1, 10**15, 10**16 - 1, 2**63, -(2**63), 2**64])
    if kind == 1:
        return "".join(r.choice(['a', '"', "\\", "\n", "\x7f", "\x01", "é", "€", "\U0001f600", ":", ",", "e-6", "0.0,",
                                 "[", "}", " "]) for _ in range(r.randrange(6)))  # fmt: skip
    if kind == 2:
        return r.choice([True, False, None])
    return _float(r)


def _value(r: random.Random, depth: int) -> object:
    if depth <= 0 or r.random() < 0.4:
        return _scalar(r)
    if r.random() < 0.5:
        return [_value(r, depth - 1) for _ in range(r.randrange(4))]
    return {
        r.choice(["a", "b", "z", "é", "\U0001f600", "ä", "A"]) + str(i): _value(r, depth - 1)
        for i in range(r.randrange(4))
    }


def _stream_lines(node: int = 3) -> list[bytes]:
    return node_stream(node, [700.0 + g for g in range(4)], KEY).split(b"\n")[:-1]


def test_the_streams_bench_writes_are_taken_whole() -> None:
    for node in range(5):
        lines = _stream_lines(node)
        assert _judged_alike(lines)
        assert records._canonical_lines(lines)[1] == [
            hashlib.sha256(line[10 : line.rfind(b',"signature":')]).digest() for line in lines
        ]


def test_randomized_records_are_taken_only_when_every_line_is_canonical() -> None:
    r = random.Random("v3fast canonical lines")
    taken = refused = 0
    for _ in range(1500):
        lines = _stream_lines(r.randrange(50))
        i = r.randrange(len(lines))
        record = json.loads(lines[i])["record"]
        record["config" if i == 0 else "extra"] = _value(r, 4)
        try:
            lines[i] = _line(record, r.choice(["c2ln", None]))
        except (TypeError, ValueError):  # a value RFC 8785 cannot write (an integer beyond 2^53): spelled by json
            lines[i] = (
                b'{"record":'
                + json.dumps(record, separators=(",", ":"), sort_keys=True).encode()
                + b',"signature":null}'
            )
        if _judged_alike(lines):
            taken += 1
        else:
            refused += 1
            assert not all(_canonical_record(x) for x in lines) or _unsure_by_design(lines), lines[i][:300]
    assert taken > 300 and refused > 100, (taken, refused)


def _unsure_by_design(lines: list[bytes]) -> bool:
    """Canonical streams _canonical_lines leaves to the per-line path (which then decides): a string with a quote,
    backslash or control character (an escape), a character beyond U+FFFF, an integer of 16 digits or more, or a
    16-digit run after a letter in a string (read as such an integer), nesting beyond the limit."""
    joined = b"".join(lines)
    # a run of 16 digits after neither a digit nor a point (a float's fraction holds longer runs: not one)
    digits = (b" " + joined).translate(bytes(57 if 48 <= c <= 57 else 46 if c == 46 else 32 for c in range(256)))
    return b"\\" in joined or any(b >= 0xF0 for b in joined) or b" " + b"9" * 16 in digits


def test_one_byte_changed_anywhere_is_judged_as_line_by_line() -> None:
    r = random.Random("v3fast one byte")
    base = _stream_lines(7)
    for _ in range(1500):
        lines = list(base)
        i = r.randrange(len(lines))
        at = r.randrange(len(lines[i]))
        lines[i] = lines[i][:at] + bytes([r.choice(b'0123456789abcdef"{}[],: .eE-+\\\x00\xff')]) + lines[i][at + 1 :]
        _judged_alike(lines)


@pytest.mark.parametrize("depth", [29, 30, 31, 32])
def test_nesting_at_the_limit_is_taken_exactly_as_the_per_line_path_takes_it(depth) -> None:
    lines = _stream_lines()
    record = json.loads(lines[0])["record"]
    nested: object = 1
    for _ in range(depth):
        nested = [nested]
    record["config"] = {"deep": nested}  # the config at 1 in the record, its list at 2, the innermost at depth + 1
    lines[0] = _line(record)
    per = _per_line(lines)
    took = _judged_alike(lines)
    assert took == (per is not None and all(d is not None for _, d in per))
    assert took == (depth + 1 <= 30)  # a record's containers at most 30 deep (the line's 32, less 2)


def test_a_line_holding_two_values_or_a_line_split_in_two_is_not_taken() -> None:
    lines = _stream_lines()
    a, b = lines[1], lines[2]
    assert records._canonical_lines([lines[0], a + b"," + b, *lines[3:]]) is None
    cut = a.rfind(b",")
    assert records._canonical_lines([lines[0], a[:cut], a[cut + 1 :], *lines[2:]]) is None
    assert records._canonical_lines([lines[0], b"", *lines[1:]]) is None


def _respell_small_before(written: bytes, expected: int) -> bytes | None:
    """written._respell_small as it was before an 'e-' after a non-digit was passed over at once (the reference)."""
    from bench.model.canonical import plain_small
    from bench.model.written import _CLOSERS, _DIGITS, _SMALL_FLOAT

    out: list[bytes] = []
    done = found = 0
    at = written.find(b"e-")
    while at >= 0:
        back = max(0, at - 24)
        start = max(written.rfind(b":", back, at), written.rfind(b",", back, at), written.rfind(b"[", back, at)) + 1
        end = _DIGITS.match(written, at + 2).end()
        if (
            start
            and end > at + 2
            and written[end : end + 1] in _CLOSERS
            and _SMALL_FLOAT.fullmatch(written, start, end)
        ):
            if start < done:
                return None
            out += (written[done:start], plain_small(written[start:end]))
            done = end
            found += 1
        at = written.find(b"e-", at + 2)
    return b"".join(out) + written[done:] if found == expected else None


def test_respelling_small_floats_answers_as_before_on_randomized_writings() -> None:
    """written._respell_small passes over an 'e-' with no digit before it; on writings made of small floats, strings
    holding 'e-' after letters, digits and delimiters, and every expected count near the true one, it answers as
    before, byte for byte (fails if the skip took a token's 'e-' or left one it should not)."""
    from bench.model import written

    r = random.Random("v3fast respell")
    pieces = [b"3.1e-6", b"-2.5e-6", b"7e-6", b"1.25e-7", b"4e-5", b"node-report", b"f8-shuffle", b"e-", b"1e-", b"ee-6",
              b":", b",", b"[", b"]", b"}", b'"', b"0", b"9.", b".5e-6", b"-e-6", b"12345678901234567890e-6"]  # fmt: skip
    differed = 0
    for _ in range(5000):
        text = b"".join(r.choice(pieces) for _ in range(r.randrange(1, 14)))
        for expected in range(4):
            new = written._respell_small(text, expected)
            assert new == _respell_small_before(text, expected), text
            differed += new is not None and new != text
    assert differed > 100


@pytest.mark.parametrize(
    "text",
    ["2026-11-28T10:00:00.000000Z", "2026-11-28T10:00:00+00:00", "2026-11-28T10:00:00-00:00", "2026-11-28T10:00:00+01:00",
     "2026-11-28T10:00:00", "0003-01-01T00:00:00Z", "0004-01-01T00:00:00Z", "9996-12-31T23:59:59Z",
     "9997-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0004-01-01T00:00:00+05:00", "junk"],
)  # fmt: skip
def test_a_utc_timestamp_reads_as_it_did_through_astimezone(text) -> None:
    """parse_timestamp returns a '...Z' or '+00:00' time as parsed (already UTC) where it converted it: the same
    value and zone, and every other text (another zone, none, a year at the edges, not a time) as before."""
    import datetime as dt

    from bench.model.errors import ReportError
    from bench.model.reports import parse_timestamp

    def before(text: str) -> object:
        try:
            t = dt.datetime.fromisoformat(text)
        except (TypeError, ValueError):
            return "not ISO"
        if t.tzinfo is None or t.utcoffset() is None:
            return "no zone"
        try:
            utc = t.astimezone(dt.UTC)
            utc + dt.timedelta(days=400), utc - dt.timedelta(days=400)
        except OverflowError:
            return "out of range"
        return utc

    try:
        got: object = parse_timestamp(text, "x")
    except ReportError as exc:
        got = "not ISO" if "not an ISO" in str(exc) else "no zone" if "no time zone" in str(exc) else "out of range"
    want = before(text)
    assert got == want and type(got) is type(want)
    if isinstance(got, dt.datetime):
        assert got.tzinfo is dt.UTC and got.isoformat() == want.isoformat()


def _examined(tmp_path, raw: bytes) -> tuple[dict, list]:
    from bench.report import pool
    from tests.report.fleet import NOW

    path = tmp_path / "node.json"
    path.write_bytes(raw)
    return pool._examine(("node.json", path), now=NOW)


def _resigned(lines: list[bytes], key: Ed25519PrivateKey = KEY) -> bytes:
    """The records of `lines` as they are spelled there, re-chained and re-signed over the SHA-256 of those bytes: what
    a writer holding the node key makes of them, canonical or not."""
    import base64

    out, prev = [], None
    for i, line in enumerate(lines):
        body = line[10 : line.rfind(b',"signature":')]
        body = body.replace(b'"prev":null', b'"prev":' + (b"null" if prev is None else b'"' + prev.encode() + b'"'), 1)
        if prev is not None:
            body = re.sub(rb'"prev":"[0-9a-f]{64}"', b'"prev":"' + prev.encode() + b'"', body, count=1)
        sig = base64.b64encode(key.sign(records.SIGNING_CONTEXT + hashlib.sha256(body).digest())).decode()
        out.append(b'{"record":' + body + b',"signature":"' + sig.encode() + b'"}\n')
        prev = hashlib.sha256(body).hexdigest()
    return b"".join(out)


def test_randomized_hostile_streams_are_examined_alike_with_and_without_the_whole_stream_check(tmp_path, monkeypatch):
    """End to end (pool._examine: read, verify, rows): the whole-stream check on, and every fast path off (the strict
    parse line by line, each record canonicalized), give the same entry and rows, refusal words included, on streams
    with one byte changed, records swapped or dropped, a record respelled (spaces, escapes, another float spelling) and
    re-signed by the key holder, and bytes appended."""
    r = random.Random("v3fast end to end")
    base = _stream_lines(11)
    respell = [(b'"seq":', b'"seq": '), (b'"type"', b'"typ\\u0065"'), (b":0.00", b":0.000e0"), (b'"n":20', b'"n":20.0'),
               (b'"n":20', b'"n":2e1'), (b"989.4", b"989.40"), (b'"kind"', b'"kind" ')]  # fmt: skip
    statuses = set()
    for case in range(160):
        lines = list(base)
        kind = case % 4
        if kind == 0:
            i, at = r.randrange(len(lines)), None
            at = r.randrange(len(lines[i]))
            lines[i] = lines[i][:at] + bytes([r.choice(b'0123456789abcdef"{}[],: .eE-\\')]) + lines[i][at + 1 :]
            raw = b"".join(x + b"\n" for x in lines)
        elif kind == 1:
            i, j = r.sample(range(len(lines)), 2)
            lines[i], lines[j] = lines[j], lines[i]
            raw = b"".join(x + b"\n" for x in (lines if r.random() < 0.5 else lines[: r.randrange(1, len(lines))]))
        elif kind == 2:
            i = r.randrange(len(lines))
            old, new = r.choice(respell)
            lines[i] = lines[i].replace(old, new, 1)
            raw = _resigned(lines)
        else:
            raw = _resigned(lines) + r.choice([b"", b"x", b'{"record":{', b'{"record":{"details":', b"\n"])
        fast = _examined(tmp_path, raw)
        with monkeypatch.context() as m:
            m.setattr(
                records, "_parse_line", lambda line, where, limit: (parse_json(line, where, max_containers=limit), None)
            )
            slow = _examined(tmp_path, raw)
        assert fast == slow, case
        statuses.add(fast[0]["status"])
    assert statuses == {"counted", "rejected"}


def test_a_samples_key_is_what_it_was_on_lists_and_samples_of_every_spread() -> None:
    """devices._samples_key counts distinct values in the first 64 samples before counting them all, and hashes a
    Samples' own buffer (realnode's finding: a real node's 100,000-sample finals): the same key, or None, as the
    whole count and the copy gave, on vectors whose distinct values lie early, late or nowhere (fails if the early
    count decided a vector with its distinct values past the 64th, or the buffer hashed other bytes)."""
    from array import array

    from bench.model.reports import Samples
    from bench.report import devices

    def before(samples_s) -> str | None:
        if len(set(samples_s)) < devices.SAMPLES_IDENTITY_MIN_DISTINCT:
            return None
        return hashlib.sha256(array("d", samples_s).tobytes()).hexdigest()

    r = random.Random("v3fast samples key")
    keyed = 0
    for _ in range(400):
        n = r.choice([1, 4, 5, 20, 63, 64, 65, 200, 5000])
        distinct = [r.uniform(1e-4, 1e-2) for _ in range(r.choice([1, 2, 4, 5, 6, 50]))]
        values = [distinct[0]] * n
        for v in distinct[1:]:  # each other value somewhere: early, late, or past the 64th
            values[r.randrange(n) if r.random() < 0.5 else min(n - 1, 64 + r.randrange(max(1, n - 64)))] = v
        for form in (values, Samples(values)):
            got = devices._samples_key(form)
            assert got == before(form), (n, len(distinct))
            keyed += got is not None
    assert keyed > 100


@pytest.mark.parametrize("batch", [1, 3000, 1 << 20])  # a line a batch, a few lines a batch, the whole stream
def test_batches_of_lines_are_judged_as_one_whole(monkeypatch, batch) -> None:
    """_canonical_lines checks about _BATCH_BYTES of lines at a time (a real node's stream is 165 MB): any batch size
    gives the answer the per-line path gives, on the streams bench writes and with one byte changed in any line."""
    monkeypatch.setattr(records, "_BATCH_BYTES", batch)
    r = random.Random(f"v3fast batches {batch}")
    base = _stream_lines(13)
    assert _judged_alike(base)
    took = 0
    for _ in range(300):
        lines = list(base)
        i = r.randrange(len(lines))
        at = r.randrange(len(lines[i]))
        lines[i] = lines[i][:at] + bytes([r.choice(b'0123456789"{}[],: .e-\\')]) + lines[i][at + 1 :]
        took += _judged_alike(lines)
        if not all(_canonical_record(x) for x in lines):
            assert records._canonical_lines(lines) is None
    assert 0 < took < 300
