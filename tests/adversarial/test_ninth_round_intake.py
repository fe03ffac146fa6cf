"""Ninth round (issue 26): a dishonest operator, who holds its node key and writes its own files, against the fast
path that checks a version-3 record stream over the bytes read (bench.model.records._parse_line: each record's bytes
found canonical by bench.model.canonical.parse_canonical are hashed as read, not canonicalized again).

The invariant: what the fast path accepts, the slow path (strict_json.parse_json of every line, every record
canonicalized again) accepts with the same figures, and what the slow path refuses the fast path refuses with the same
words. Every attack goes through the real entry points, `bench verify --json` and bench aggregate's per-report check
(bench.report.pool._examine), once as shipped and once with the fast path switched off, and the two must agree; the
cost attack holds the fast path to the slow path's order of cost. Tests whose docstring says "Succeeded before its
fix" were accepted (or cost far more) on the fast path before the fix landed with them; the others guard a defence
that held."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.model import canonical, intake, records
from bench.model.canonical import canonical_bytes
from bench.model.strict_json import parse_json
from bench.report import pool
from tests.report.fleet import NOW, node_report, node_stream

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"ninth round node").digest())
OTHER = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"ninth round other node").digest())


def _slow_line(line: bytes, where: str, limit: int) -> tuple[object, None]:
    return parse_json(line, where, max_containers=limit), None


def _stream(node: int = 3, key: Ed25519PrivateKey = KEY) -> bytes:
    return node_stream(node, [700.0 + g for g in range(4)], key)


def _lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\n")[:-1]


def _bodies(raw: bytes) -> list[dict]:
    return [json.loads(line)["record"] for line in _lines(raw)]


def _frame(body: bytes, signature: str | None) -> bytes:
    tail = b'"' + signature.encode() + b'"' if signature else b"null"
    return b'{"record":' + body + b',"signature":' + tail + b"}\n"


def _sign(body: bytes, key: Ed25519PrivateKey = KEY) -> str:
    return base64.b64encode(key.sign(records.SIGNING_CONTEXT + hashlib.sha256(body).digest())).decode()


def _chained(bodies: list[bytes], key: Ed25519PrivateKey = KEY) -> bytes:
    """Lines over record bytes exactly as given, each line signed over the SHA-256 of its bytes as written: what a
    key holder makes when it hashes and signs what it wrote rather than the canonical form."""
    return b"".join(_frame(body, _sign(body, key)) for body in bodies)


def _rechain(recs: list[dict], spell=canonical_bytes, key: Ed25519PrivateKey = KEY) -> bytes:
    """Records spelled by `spell`, each naming the SHA-256 of the bytes before it, signed over those bytes."""
    bodies, prev = [], None
    for i, r in enumerate(recs):
        body = spell({**r, "seq": i, "prev": prev})
        bodies.append(body)
        prev = hashlib.sha256(body).hexdigest()
    return _chained(bodies, key)


def _examine(tmp_path, raw: bytes) -> tuple[dict, list]:
    path = tmp_path / "node.json"
    path.write_bytes(raw)
    return pool._examine(("node.json", path), now=NOW)


def _verify(tmp_path, raw: bytes) -> tuple[int, str]:
    from click.testing import CliRunner

    from bench.cli import main

    path = tmp_path / "node.json"
    path.write_bytes(raw)
    res = CliRunner().invoke(main, ["verify", str(path), "--json"], catch_exceptions=False)
    return res.exit_code, res.output


def _took_fast(tmp_path, raw: bytes) -> bool:
    path = tmp_path / "probe.json"
    path.write_bytes(raw)
    try:
        return intake.read_json(path).chain is not None
    except intake.InputError:
        return False


def _both(tmp_path, monkeypatch, raw: bytes) -> tuple[str, str]:
    """((aggregate's check, bench verify) as shipped, the same with the fast path off), each as its repr (a row's
    missing figure is NaN, which equals no NaN)."""
    fast = (_examine(tmp_path, raw), _verify(tmp_path, raw))
    with monkeypatch.context() as m:
        m.setattr(records, "_parse_line", _slow_line)
        slow = (_examine(tmp_path, raw), _verify(tmp_path, raw))
    return repr(fast), repr(slow)


def _status(result: str) -> tuple[str, int]:
    """(aggregate's status, bench verify's exit code) of a result from _both."""
    status = re.search(r"'status': '(\w+)'", result)
    code = re.search(r"\), \((\d+), ['\"]", result)
    assert status and code, result[:300]
    return status.group(1), int(code.group(1))


def test_an_honest_stream_is_counted_on_both_paths_and_takes_the_fast_one(tmp_path, monkeypatch):
    raw = _stream()
    fast, slow = _both(tmp_path, monkeypatch, raw)
    assert _took_fast(tmp_path, raw) and fast == slow and _status(fast) == ("counted", 0)


# --- record bytes that Python's json reads and writes back, but RFC 8785 or the strict parser refuse or read apart


def _splice(raw: bytes, n: int, old: bytes, new: bytes) -> bytes:
    """Line n's record bytes with `old` replaced by `new` (once), the chain re-made over the bytes as written."""
    bodies = [line[len(b'{"record":') : line.rfind(b',"signature":')] for line in _lines(raw)]
    assert old in bodies[n], old
    bodies[n] = bodies[n].replace(old, new, 1)
    # re-chain: each later record names the SHA-256 of the (changed) bytes before it
    out, prev = [], None
    for i, body in enumerate(bodies):
        if i:
            body = re.sub(rb'"prev":"[0-9a-f]{64}"', b'"prev":"' + prev.encode() + b'"', body, count=1)
        out.append(body)
        prev = hashlib.sha256(body).hexdigest()
    return _chained(out)


#: A measurement record's free-form details, whose first key is "backend": a number put before it under a key that
#: sorts first leaves the record in canonical key order, so the fast path judges the number itself.
DETAILS = b'"backend":'
#: (name, record index, bytes in that record, what replaces them): each a record the key holder re-signs as written.
BYTE_ATTACKS = [
    ("NaN", 1, b'"efficiency":', b'"efficiency":NaN,"x":'),
    ("Infinity", 1, b'"efficiency":', b'"efficiency":Infinity,"x":'),
    ("-Infinity", 1, b'"efficiency":', b'"efficiency":-Infinity,"x":'),
    ("a duplicate key, last wins", 0, b'"hostname":"', b'"hostname":"evil","hostname":"'),
    ("a lone high surrogate", 0, b'"hostname":"', b'"hostname":"\\ud800'),
    ("a lone low surrogate", 0, b'"hostname":"', b'"hostname":"\\udc00'),
    ("an escaped solidus", 0, b'"hostname":"', b'"hostname":"\\/'),
    ("an escaped ASCII letter", 0, b'"hostname":"', b'"hostname":"\\u0041'),
    ("an escaped non-ASCII letter", 0, b'"hostname":"', b'"hostname":"\\u00e9'),
    ("an escaped astral character", 0, b'"hostname":"', b'"hostname":"\\ud83d\\ude00'),
    ("an escaped control character the long way", 0, b'"hostname":"', b'"hostname":"\\u000a'),
    ("a raw NUL", 0, b'"hostname":"', b'"hostname":"\x00'),
    ("an escaped NUL", 0, b'"hostname":"', b'"hostname":"\\u0000'),
    ("a raw DEL", 0, b'"hostname":"', b'"hostname":"\x7f'),
    ("a raw line separator", 0, b'"hostname":"', b'"hostname":"\xe2\x80\xa8'),
    ("invalid UTF-8", 0, b'"hostname":"', b'"hostname":"\xff'),
    ("an overlong slash", 0, b'"hostname":"', b'"hostname":"\xc0\xaf'),
    ("a UTF-8 encoded surrogate", 0, b'"hostname":"', b'"hostname":"\xed\xa0\x80'),
    ("an integral float", 1, b'"m":8192', b'"m":8192.0'),
    ("an integer in exponent form", 1, b'"m":8192', b'"m":8.192e3'),
    ("an upper-case exponent", 1, b'"m":8192', b'"m":8192E0'),
    ("a negative zero", 1, DETAILS, b'"a0":-0,' + DETAILS),
    ("a negative zero float", 1, DETAILS, b'"a0":-0.0,' + DETAILS),
    ("a float's shortest form padded", 1, DETAILS, b'"a0":0.50,' + DETAILS),
    ("1E5", 1, DETAILS, b'"a0":1E5,' + DETAILS),
    ("1e21", 1, DETAILS, b'"a0":1e21,' + DETAILS),
    ("1e+21", 1, DETAILS, b'"a0":1e+21,' + DETAILS),
    ("1e16 as digits", 1, DETAILS, b'"a0":10000000000000000,' + DETAILS),
    ("2^53 + 1", 1, DETAILS, b'"a0":9007199254740993,' + DETAILS),
    ("-2^53 - 1", 1, DETAILS, b'"a0":-9007199254740993,' + DETAILS),
    ("2^64", 1, DETAILS, b'"a0":18446744073709551616,' + DETAILS),
    ("a 400-digit integer", 1, DETAILS, b'"a0":' + b"9" * 400 + b"," + DETAILS),
    ("5e-324", 1, DETAILS, b'"a0":5e-324,' + DETAILS),
    ("the smallest subnormal, padded", 1, DETAILS, b'"a0":5.0e-324,' + DETAILS),
    ("1e-7 spelled out", 1, DETAILS, b'"a0":0.0000001,' + DETAILS),
    ("1e-5 as Python writes it", 1, DETAILS, b'"a0":1e-05,' + DETAILS),
    ("1e-5 as RFC 8785 writes it", 1, DETAILS, b'"a0":0.00001,' + DETAILS),
    ("1e-7 as RFC 8785 writes it", 1, DETAILS, b'"a0":1e-7,' + DETAILS),
    ("-1.5e-7 as RFC 8785 writes it", 1, DETAILS, b'"a0":-1.5e-7,' + DETAILS),
    ("1.5e+300 as RFC 8785 writes it", 1, DETAILS, b'"a0":1.5e+300,' + DETAILS),
    ("1.5e-5 as RFC 8785 writes it", 1, DETAILS, b'"a0":0.000015,' + DETAILS),
    ("1e21 as RFC 8785 writes it", 1, DETAILS, b'"a0":1e+21,' + DETAILS),
    ("an overflowing float", 1, DETAILS, b'"a0":1e400,' + DETAILS),
    ("a float with trailing zeros", 1, DETAILS, b'"a0":1.50,' + DETAILS),
    ("a leading plus", 1, DETAILS, b'"a0":+1,' + DETAILS),
    ("a leading zero", 1, DETAILS, b'"a0":01,' + DETAILS),
    ("an exponent in a string", 0, b'"hostname":"', b'"hostname":"1e+16,'),
    ("a float token in a string", 0, b'"hostname":"', b'"hostname":",1e-05],'),
    ("a float token in a string, respelled", 0, b'"hostname":"', b'"hostname":",0.00001],'),
    ("a float token in a key", 1, DETAILS, b'",1e-05]":1,' + DETAILS),
    ("a 5000-digit integer", 1, DETAILS, b'"a0":' + b"9" * 5000 + b"," + DETAILS),
    ("a float's spelling in a key", 1, DETAILS, b'"1e-05":1,' + DETAILS),
    ("a space after a colon", 0, b'"hostname":"', b'"hostname": "'),
    ("a tab between members", 1, b'"efficiency":', b'\t"efficiency":'),
    ("a BOM inside the record", 0, b'"hostname":"', b'"hostname":"\xef\xbb\xbf'),
]


@pytest.mark.parametrize("name,n,old,new", BYTE_ATTACKS, ids=[a[0] for a in BYTE_ATTACKS])
def test_record_bytes_json_round_trips_but_rfc8785_or_strict_json_refuse_are_judged_alike(
    tmp_path, monkeypatch, name, n, old, new
):
    """Held: each spelling either is not the record's canonical form (the fast path hands the line to the slow one) or
    is, and then reads as the slow path reads it; both entry points give one decision and the same words."""
    raw = _splice(_stream(), n, old, new)
    fast, slow = _both(tmp_path, monkeypatch, raw)
    assert fast == slow, name


def test_keys_sorted_by_code_point_where_rfc8785_sorts_by_utf16_code_unit_are_judged_alike(tmp_path, monkeypatch):
    """Held: U+1F600 sorts before U+E000 in UTF-16 (a surrogate, 0xD83D) but after it by code point; a header whose
    config holds both, written in either order and signed as written, gets one decision on both paths (any astral
    character sends the line to the slow path)."""
    recs = _bodies(_stream())
    recs[0]["config"] = {"\ue000": 1, "\U0001f600": 2}
    for spell in (
        canonical_bytes,  # UTF-16 order: the canonical form
        lambda r: json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),  # code points
    ):
        raw = _rechain(recs, spell)
        fast, slow = _both(tmp_path, monkeypatch, raw)
        assert fast == slow
    assert _status(fast)[0] == "rejected" and _status(slow)[0] == "rejected"


# --- the signed bytes differ from what is parsed


def _join(lines: list[bytes]) -> bytes:
    return b"".join(x + b"\n" for x in lines)


def _stream_attacks() -> list[tuple[str, bytes]]:
    raw = _stream()
    lines = _lines(raw)
    other = _lines(_stream(3, OTHER))
    recs = _bodies(raw)
    v2 = json.dumps(node_report(3, [700.0 + g for g in range(4)], KEY)).encode()
    header_as_v2 = [dict(r) for r in recs]
    header_as_v2[0]["schema_version"] = 2
    sep = lines[1].rfind(b',"signature":')
    # the last record written with spaces, but chained and signed over its canonical bytes (as the slow path hashes)
    last = recs[-1]
    spaced = b'{"record":' + json.dumps(last, sort_keys=True).encode() + b',"signature":"'
    spaced += _sign(canonical_bytes(last)).encode() + b'"}\n'
    return [
        ("two JSON values on one line", _join([lines[0], lines[1] + lines[2], *lines[3:]])),
        ("a line joined to the next by a space", _join([lines[0], lines[1] + b" " + lines[2], *lines[3:]])),
        ("a record split over two lines", _join([lines[0], lines[1][:sep], lines[1][sep:], *lines[2:]])),
        ("CRLF line ends", raw.replace(b"\n", b"\r\n")),
        ("a CR before the last newline", raw[:-1] + b"\r\n"),
        ("a BOM before the stream", b"\xef\xbb\xbf" + raw),
        ("a blank line between records", _join([lines[0], b"", *lines[1:]])),
        ("a NUL after a line", _join([lines[0] + b"\x00", *lines[1:]])),
        ("spaces around the frame", _join([lines[0].replace(b'{"record":', b'{ "record" : ', 1), *lines[1:]])),
        ("the frame's keys swapped", _join([lines[0], *lines[1:-1],
                                            b'{"signature":' + lines[-1][lines[-1].rfind(b',"signature":') + 13 : -1]
                                            + b',"record":' + lines[-1][10 : lines[-1].rfind(b',"signature":')]
                                            + b"}"])),
        ("the signature's '=' escaped", raw[:-4] + b"\\u003d" + raw[-3:]),
        ("a third frame member", _join([*lines[:-1], lines[-1][:-1] + b',"x":1}'])),
        ("a signature given twice", _join([*lines[:-1], lines[-1][:-1] + lines[-1][lines[-1].rfind(b',"signature":') :]])),
        ("the last record spaced, signed over its canonical bytes", _join(lines[:-1]) + spaced),
        ("records reordered", _join([lines[0], lines[2], lines[1], *lines[3:]])),
        ("a record dropped", _join([lines[0], *lines[2:]])),
        ("a record duplicated", _join([lines[0], lines[1], *lines[1:]])),
        ("a record from another node's report", _join([lines[0], other[1], *lines[2:]])),
        ("another node's last line", _join([*lines[:-1], other[-1]])),
        ("a version 2 document", v2),
        ("a version 2 document renamed a stream", b'{"record":' + v2[1:] + b"\n"),
        ("the header says version 2, re-signed", _rechain(header_as_v2)),
        ("the records of a stream re-signed by another key", _rechain(recs, key=OTHER)),
    ]  # fmt: skip


#: Spellings of the frame around signed record bytes that the strict parser reads as the same line (whitespace outside
#: the record, the frame's two members in either order, an escaped character in the signature), a record spelled with
#: spaces but signed over its canonical bytes (a stream is signed over its records' canonical forms, not its bytes) and
#: a genuine version 2 document: the slow path counts them, so the fast path (which hands them to it) must too.
READ_ALIKE = {"CRLF line ends", "a CR before the last newline", "spaces around the frame", "the frame's keys swapped",
              "the signature's '=' escaped", "a version 2 document",
              "the last record spaced, signed over its canonical bytes"}  # fmt: skip


@pytest.mark.parametrize("name", [a[0] for a in _stream_attacks()])
def test_streams_whose_signed_bytes_differ_from_what_is_parsed_are_judged_alike(tmp_path, monkeypatch, name):
    """Held: each is refused on both paths with the same words at both entry points, or (READ_ALIKE) read alike."""
    raw = dict(_stream_attacks())[name]
    fast, slow = _both(tmp_path, monkeypatch, raw)
    assert fast == slow, name
    assert _status(fast) == (("counted", 0) if name in READ_ALIKE else ("rejected", 1)), name


# --- nesting that the fast path's depth check misjudges


def _nested(depth: int, kinds: str) -> object:
    """A value whose innermost container lies `depth` levels below it (the value itself at 1), alternating the
    container kinds in `kinds` ("[" for a list, "{" for an object) from the inside out."""
    value: object = 1
    for i in range(depth):
        value = [value] if kinds[i % len(kinds)] == "[" else {"a": value}
    return value


@pytest.mark.parametrize("depth", [29, 30, 31, 40, 60])
@pytest.mark.parametrize("kinds", ["{", "[", "[{", "{["], ids=["objects", "lists", "object-list", "list-object"])
def test_nesting_past_the_limit_is_refused_alike_however_it_alternates(tmp_path, monkeypatch, depth, kinds):
    """Succeeded before its fix: parse_canonical's depth check (_depth_within) emptied '[]' pairs and then '{}' pairs
    in one round, so where an object held a list ('{[...]}') one round removed two levels. A header config of 31 to
    about 60 levels alternating object and list was accepted on the fast path ("counted", bench verify exit 0) where
    strict_json refuses it ("JSON nested deeper than 32 levels")."""
    recs = _bodies(_stream())
    recs[0]["config"] = {"deep": _nested(depth, kinds)}  # the config at 1 in its record, 2 in its line
    raw = _rechain(recs)
    fast, slow = _both(tmp_path, monkeypatch, raw)
    assert fast == slow
    assert _status(fast) == (("counted", 0) if depth < 30 else ("rejected", 1)), _status(fast)


@pytest.mark.parametrize("escape", ['\\"', "\\\\", '\\\\\\"', "\\n"])
def test_nesting_past_the_limit_behind_an_escaped_quote_is_refused_alike(tmp_path, monkeypatch, escape):
    """Succeeded before its fix (for an escaped quote): _depth_within drops what lies inside strings by splitting the
    text at every '"', an escaped one too, so after a string holding '\\"' the brackets outside strings were taken
    for string content: 40 levels of nesting after it were accepted on the fast path and refused by strict_json."""
    recs = _bodies(_stream())
    text = json.loads('"' + escape + '"')
    recs[0]["config"] = {"a": text, "b": _nested(40, "{"), "c": text}
    raw = _rechain(recs)
    fast, slow = _both(tmp_path, monkeypatch, raw)
    assert fast == slow
    assert _status(fast) == ("rejected", 1)


def test_an_honest_deep_config_with_escapes_still_takes_the_fast_path(tmp_path, monkeypatch):
    """The depth fix must not send honest records to the slow path: a header with escaped quotes and backslashes and
    nesting within the limit is read as its bytes and counted."""
    recs = _bodies(_stream())
    recs[0]["config"] = {"a": 'say "hi" \\ [{', "b": _nested(28, "{["), "c": "}]"}
    raw = _rechain(recs)
    fast, slow = _both(tmp_path, monkeypatch, raw)
    assert _took_fast(tmp_path, raw) and fast == slow and _status(fast) == ("counted", 0)


# --- what makes the fast path cost far more than the slow one


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@pytest.mark.parametrize("filler", ["e-", "e+", "e-,", ":e-", "1e-5 "])
def test_a_record_full_of_exponent_marks_costs_the_fast_path_what_it_costs_the_slow_one(filler):
    """Succeeded before its fix: parse_canonical's respelling of floats (_respell_exponents) searched back for the
    token's start and forward for its end from every 'e-' and 'e+' in the written text, strings included, so a record
    holding a 160 kB string of 'e-' took 1.2 s to judge where strict_json parses it in 0.2 ms: quadratic, minutes for
    the few MB a line may hold. The fast path must stay within a small multiple of the slow one (generous bounds: the
    machine is shared)."""
    text = json.dumps({"a": filler * (200_000 // len(filler)), "b": 1}, separators=(",", ":"), sort_keys=True)
    line = b'{"record":' + text.encode() + b',"signature":null}'
    slow = min(_timed(lambda: parse_json(line, "x")) for _ in range(3))
    fast = min(_timed(lambda: records._parse_line(line, "x", records.MAX_CONTAINERS)) for _ in range(3))
    assert fast < 20 * slow + 0.05, (fast, slow)


def test_many_keys_and_a_huge_line_cost_the_fast_path_about_what_they_cost_the_slow_one():
    """Held: a record of 200,000 keys, or one string of 4 MB, is judged by one C parse and one C write."""
    many = json.dumps({f"k{i:06d}": i for i in range(200_000)}, separators=(",", ":"), sort_keys=True)
    huge = json.dumps({"a": "x" * 4_000_000}, separators=(",", ":"))
    for text in (many, huge):
        line = b'{"record":' + text.encode() + b',"signature":null}'
        slow = min(_timed(lambda: parse_json(line, "x")) for _ in range(3))  # noqa: B023 (called at once)
        fast = min(_timed(lambda: records._parse_line(line, "x", records.MAX_CONTAINERS)) for _ in range(3))  # noqa: B023
        assert fast < 20 * slow + 0.05, (fast, slow)


def test_deep_nesting_costs_the_fast_path_about_what_it_costs_the_slow_one():
    """Held: 100,000 nested lists (within the container limit) are refused by json's recursion limit on both paths,
    and 31 rounds of emptying bracket pairs cost linear time."""
    line = b'{"record":{"a":' + b"[" * 100_000 + b"]" * 100_000 + b'},"signature":null}'
    slow = _timed(lambda: pytest.raises(intake.InputError, parse_json, line, "x"))
    fast = _timed(lambda: pytest.raises(intake.InputError, records._parse_line, line, "x", records.MAX_CONTAINERS))
    assert fast < 20 * slow + 0.05, (fast, slow)


def test_parse_canonical_agrees_with_canonical_bytes_on_the_attack_records():
    """Held (the unit under the two tests above): parse_canonical answers True exactly when the text is
    canonical_bytes of what it holds and no deeper than the limit, on the nesting and escape attacks."""
    for value in (
        {"x": _nested(31, "[{")},
        {"x": _nested(30, "[{")},
        {"a": '"', "x": _nested(40, "{")},
        {"a": "\\", "x": _nested(31, "{")},
        {"a": '\\"[{', "x": _nested(30, "{["), "b": "]}"},
    ):
        text = canonical_bytes(value).decode()
        depth = max(_depth(v) for v in value.values())
        assert canonical.parse_canonical(text, 30)[0] == (depth <= 30), (text[:60], depth)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


# --- the other per-report cuts of issue 26: each must answer as the scan it replaced


def _first_bad(values: list[float]) -> int | None:
    for i, x in enumerate(values):
        if not (math.isfinite(x) and x > 0):
            return i
    return None


@pytest.mark.parametrize("indexed", [False, True], ids=["plain", "indexed"])
def test_a_sample_block_with_a_bad_value_anywhere_is_refused_naming_the_first(indexed):
    """Held: samples.decode's two reductions (min > 0, max < inf) pass only blocks whose every value is a finite
    positive duration: NaN (which min carries), infinities, zeros, a negative zero, negatives, alone or together, at
    the start, middle or end, plain or as an indexed block of repeated values, are refused naming the first bad one
    as the scan does; the smallest subnormal passes."""
    from bench.model import samples
    from bench.model.errors import ReportError

    bad = [math.nan, math.inf, -math.inf, 0.0, -0.0, -1e-3]
    cases = [[1e-3] * 9 + [5e-324]]
    for x in bad:
        for at in (0, 4, 9):
            values = [1e-3 + i * 1e-6 for i in range(10)]
            values[at] = x
            cases.append(values)
    cases.append([1e-3, math.inf, 2e-3, math.nan, 0.0, 1e-3, -0.0, 4e-3, 1e-3, 2e-3])
    cases.append([math.nan] * 10)
    for values in cases:
        if indexed:  # each value many times: encode writes the distinct values once and an index into them
            values = values * (samples.PALETTE_FROM // len(values) + 1)
        block = samples.encode(values)
        assert ("index" in block) == indexed
        first = _first_bad(values)
        if first is None:
            assert samples.decode(block, "w").tolist() == values
        else:
            with pytest.raises(ReportError) as exc:
                samples.decode(block, "w")
            assert (
                str(exc.value) == f"w[{first}] is {float(values[first])!r}; a duration must be a finite positive number"
            )


def _inventories() -> list[dict]:
    gpu = {"uuid": "GPU-a", "name": "NVIDIA H100 80GB HBM3"}
    mig = {"uuid": "MIG-a1"}
    return [
        {"nvml": {"gpus": [gpu, {"uuid": "GPU-a", "name": "second with the same UUID"}]}},
        {"nvml": {"gpus": [{"uuid": "GPU-b", "mig_devices": [{"uuid": "GPU-a"}]}, gpu]}},  # a MIG named as a GPU
        {"nvml": {"gpus": [{"name": "no uuid"}, {"uuid": None}, gpu]}},
        {"nvml": {"gpus": [{"uuid": 7}, {"uuid": ["GPU-a"]}, gpu]}},
        {"nvml": {"gpus": [{"uuid": "GPU-c", "mig_devices": ["MIG-a1", 3, None, {"name": "no uuid"}, mig]}, gpu]}},
        {"nvml": {"gpus": [{"uuid": "GPU-c", "mig_devices": {"uuid": "MIG-a1"}}, {**gpu, "mig_devices": [mig, mig]}]}},
        {"nvml": {"gpus": ["GPU-a", 1, None, gpu]}},
        {
            "nvml": {
                "gpus": [
                    {"uuid": "GPU-c", "mig_devices": [{"uuid": "MIG-a1", "slice": 1}]},
                    {"uuid": "GPU-d", "mig_devices": [{"uuid": "MIG-a1", "slice": 2}]},
                ]
            }
        },  # one MIG UUID twice
        {"nvml": {"gpus": [gpu, {"uuid": "GPU-b", "mig_devices": [{"uuid": "GPU-a"}]}]}},  # a GPU's UUID, then a MIG's
        {"nvml": {"gpus": {"uuid": "GPU-a"}}},
        {"nvml": None},
        {},
    ]


def test_the_gpu_index_answers_as_the_inventory_scan_does_on_hostile_inventories():
    """Held: verify.indexed's UUID index gives, for every measured UUID an operator can write (a GPU's, a MIG
    instance's, one listed twice, one naming both a GPU and a MIG instance, null, a number, a list, one not listed),
    the GPU and MIG instance the scan in inventory order gives."""
    from bench.report import verify as v

    queries = ["GPU-a", "GPU-b", "GPU-c", "MIG-a1", "MIG-none", "", None, 7, ["GPU-a"], "gpu-a"]
    for inventory in _inventories():
        scanned = [v.inventory_gpu(inventory, q) for q in queries]
        with v.indexed(inventory):
            looked_up = [v.inventory_gpu(inventory, q) for q in queries]
        assert all(a[0] is b[0] and a[1] is b[1] for a, b in zip(scanned, looked_up, strict=True)), inventory


def test_floats_beside_float_look_alikes_in_strings_are_never_taken_for_canonical_when_they_are_not():
    """Held: parse_canonical respells json's exponent floats found near each 'e-'/'e+'; a real float left in json's
    spelling (1e-07, 1e+16 ...) where RFC 8785 writes another would let bytes that are not canonical be hashed as read.
    Floats with exponents beside strings and keys full of look-alikes (',1e-05]', ':1e+16,', '[2e-7}'), written both
    canonically and as json writes them, are judged True only where the text is canonical_bytes of its value."""
    import random

    r = random.Random("ninth round look-alikes")
    looks = [",1e-05]", ":1e+16,", "[2e-7}", "e-", "e+", ",-1.5e-300,", "[5e-324]", ",0.00001}", '"', "\\"]
    floats = [1e-7, -2.5e-7, 1e-5, 1.5e-5, 1.5e300, 1.7976931348623157e308, 5e-324, 1e21, -1e-300, 0.5, 1e-4]
    judged = {True: 0, False: 0}
    for _ in range(400):
        value: dict = {}
        for i in range(r.randint(1, 6)):
            look = "".join(r.choice(looks) for _ in range(r.randint(1, 4)))
            roll = r.random()
            if roll < 0.4:
                value[f"k{i}"] = r.choice(floats)
            elif roll < 0.6:
                value[f"k{i}"] = [r.choice(floats), look, r.choice(floats)]
            elif roll < 0.8:
                value[look + str(i)] = r.choice(floats)
            else:
                value[f"k{i}"] = look
        for text in (
            canonical_bytes(value).decode(),
            json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        ):
            ok, parsed = canonical.parse_canonical(text)
            try:
                canonical_form = canonical_bytes(json.loads(text))
            except ValueError:  # an integer beyond 2^53: never canonical
                canonical_form = None
            # True only for canonical text; False is allowed for canonical text too (a look-alike in a string respelled:
            # the line is then canonicalized, as on the slow path)
            assert not ok or canonical_form == text.encode(), text
            assert not ok or parsed == json.loads(text)
            judged[ok] += 1
    assert judged[True] > 100 and judged[False] > 100, judged
