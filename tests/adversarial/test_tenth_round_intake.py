"""Tenth round (issue 26): a dishonest operator or aggregator, who holds its key and writes its own files, against the
C fast paths that now read signed documents: version-3 record streams judged canonical by msgspec
(bench.model.canonical._parse_canonical_msgspec), version-2 node reports decoded and written back by msgspec
(bench.model.written.parse_node_report), and signed documents read with one json parse and one json write
(bench.model.written.parse_written: capacity reports, challenges, receipts).

The invariant: what a fast path accepts, the slow path (strict_json.parse_json, RFC 8785 via canonical/rfc8785, every
model check) accepts with the same figures; what the slow path refuses, the fast path refuses with the same words.
Each attack goes through the real entry points (`bench verify --json`, bench aggregate's per-report check
bench.report.pool._examine, bench.model.intake.read_json), once as shipped and once with every fast path switched off
(_slow), and the two must agree. Tests whose docstring says "Succeeded before its fix" were accepted on the fast path
(and refused on the slow one) before the fix landed with them; the others guard a defence that held."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import time
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.cli import main
from bench.model import canonical, intake, keys, records, sign, written
from bench.model.canonical import canonical_bytes
from bench.model.samples import samples_digest
from bench.model.strict_json import parse_json
from bench.report import pool
from bench.report.store import dumps
from tests.adversarial import test_ninth_round_intake as ninth_round_intake
from tests.report.fleet import NOW, node_report, node_stream, resign

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"tenth round node").digest())


def _slow_line(line: bytes, where: str, limit: int) -> tuple[object, None]:
    return parse_json(line, where, max_containers=limit), None


def _slow(m: pytest.MonkeyPatch) -> None:
    """Every fast path off: each stream line parsed strictly and each record canonicalized again, each document parsed
    strictly and canonicalized by bench.model.canonical."""
    m.setattr(records, "_parse_line", _slow_line)
    m.setattr(written, "parse_node_report", lambda raw, **kw: None)
    m.setattr(written, "parse_written", lambda raw, **kw: None)


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return res.exit_code, res.output


def _read(path: Path) -> str:
    """What intake.read_json makes of a file: its data, or the refusal's words."""
    try:
        return repr(intake.read_json(path).data)
    except intake.InputError as exc:
        return f"refused: {exc}"


# --- signed documents read by written.parse_written (json.loads of the bytes, then json's writer)


@pytest.fixture(scope="module")
def capacity(tmp_path_factory) -> tuple[Path, str]:
    """(folder of node reports, the capacity report `bench aggregate --key` signed over them, as text)."""
    root = tmp_path_factory.mktemp("capacity")
    (root / "nodes" / "n3").mkdir(parents=True)
    (root / "nodes" / "n3" / "report.json").write_text(dumps(node_report(3, [700.0, 701.0], KEY)))
    keys.create(root / "agg.pem")
    code, out = _cli("aggregate", str(root / "nodes"), "-o", str(root / "cap.json"), "--key", str(root / "agg.pem"))
    assert code == 0, out
    return root / "nodes", (root / "cap.json").read_text()


def _verify_capacity(tmp_path: Path, monkeypatch, raw: bytes, nodes: Path) -> tuple[str, str]:
    """(as shipped, every fast path off): what read_json and `bench verify --reports --json` make of a capacity report."""
    path = tmp_path / "cap.json"
    path.write_bytes(raw)

    def run() -> str:
        return repr((_read(path), _cli("verify", str(path), "--reports", str(nodes), "--json")))

    fast = run()
    with monkeypatch.context() as m:
        _slow(m)
        slow = run()
    return fast, slow


def _exit(result: str) -> int:
    found = re.search(r", \((\d+), ['\"]", result)
    assert found, result[:300]
    return int(found.group(1))


def test_an_honest_capacity_report_is_read_alike_and_takes_the_fast_path(tmp_path, monkeypatch, capacity):
    nodes, text = capacity
    fast, slow = _verify_capacity(tmp_path, monkeypatch, text.encode(), nodes)
    assert fast == slow and _exit(fast) == 0
    assert written.parse_written(text.encode()) is not None


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-be", "utf-32-le"])
def test_a_capacity_report_written_in_utf16_or_utf32_is_refused_alike(tmp_path, monkeypatch, capacity, encoding):
    """Succeeded before its fix (UTF-16 either way round, UTF-32 big-endian): parse_written took any bytes below 0x80
    for ASCII text and handed them to json.loads, which guesses UTF-16 or UTF-32 from where the NUL bytes fall. A
    capacity report re-encoded so (every byte below 0x80; no b'\\\\u' to see) was read, its signature checked and
    `bench verify --reports` passed it (exit 0), where strict_json reads the bytes as UTF-8 and refuses them ("not
    valid JSON"); the file's SHA-256, which disclosures cite, named other bytes than the report bench wrote."""
    nodes, text = capacity
    raw = text.encode(encoding)
    assert raw.isascii()
    fast, slow = _verify_capacity(tmp_path, monkeypatch, raw, nodes)
    assert fast == slow
    assert "refused" in fast and _exit(fast) == 1


def test_a_key_given_twice_behind_an_escaped_colon_in_utf16_is_refused_alike(tmp_path, monkeypatch, capacity):
    """Succeeded before its fix: in UTF-16 the fast path's b'\\\\u' test saw no escape, so a ':' written '\\\\u003a'
    in a string made json's writing hold one ':' more than the file, and a figure given twice (json keeps the last,
    a first-wins reader the first: 99999 TFLOPS) passed the ':' count meant to catch it. Signed as bench wrote it,
    verified (exit 0) on the fast path; refused on the slow one."""
    nodes, text = capacity
    figure = re.search(r'"mamf_tflops": [0-9.]+', text).group()
    forged = text.replace(figure, '"mamf_tflops": 99999.0, ' + figure, 1).replace("): who", ")\\u003a who", 1)
    assert forged != text and "\\u003a" in forged
    for raw in (forged.encode("utf-16-le"), forged.encode()):
        fast, slow = _verify_capacity(tmp_path, monkeypatch, raw, nodes)
        assert fast == slow
        assert "refused" in fast and _exit(fast) == 1


# --- version-2 node reports read by written.parse_node_report (msgspec's decoder and sorted encoder)


def _examine(tmp_path: Path, raw: bytes, name: str = "node.json") -> tuple[dict, list]:
    path = tmp_path / name
    path.write_bytes(raw)
    return pool._examine((name, path), now=NOW)


def _judged(tmp_path: Path, monkeypatch, raw: bytes) -> tuple[str, str]:
    """(as shipped, every fast path off): what read_json, aggregate's per-report check and `bench verify --json` make
    of a node report, each as its repr (a row's missing figure is NaN, which equals no NaN)."""
    path = tmp_path / "node.json"
    path.write_bytes(raw)

    def run() -> str:
        return repr((_read(path), _examine(tmp_path, raw), _cli("verify", str(path), "--json")))

    fast = run()
    with monkeypatch.context() as m:
        _slow(m)
        slow = run()
    return fast, slow


def _status(result: str) -> tuple[str, int]:
    """(aggregate's status, bench verify's exit code) of a result from _judged."""
    status = re.search(r"'status': '(counted|rejected)'", result)
    code = re.search(r"\), \((\d+), ['\"]", result)
    assert status and code, result[:300]
    return status.group(1), int(code.group(1))


def _v2(edit=None) -> dict:
    """A signed version-2 report, `edit`ed (a function of its dictionary) and re-signed by its key."""
    doc = node_report(3, [700.0 + g for g in range(4)], KEY)
    if edit is not None:
        edit(doc)
    return resign(doc, KEY)


def _sample_spelled(spelling: str) -> bytes:
    """The report with measurements[0].samples_s[0] set to float(spelling), its samples_sha256 and signature re-made
    over that value, and the sample written in the file as `spelling`."""
    value = float(spelling)

    def edit(doc: dict) -> None:
        m = doc["measurements"][0]
        m["samples_s"][0] = value
        m["samples_sha256"] = samples_digest(m["warmup_s"], m["samples_s"])

    text = dumps(_v2(edit))
    token = f"\n        {value!r},\n"
    assert text.count(token) >= 1
    return text.replace(token, f"\n        {spelling},\n", 1).encode()


def _halfway(x: float, above: bool) -> str:
    """The exact midpoint between x and the next float up, with a digit 1 far past it (above) or not: a decimal that a
    parser reading only its first 17-19 digits rounds the wrong way."""
    with localcontext(prec=1200):
        mid = (Decimal(x) + Decimal(math.nextafter(x, math.inf))) / 2
    return format(mid, "f") + ("0" * 40 + "1" if above else "")


#: A sample near 1.57 ms spelled so that only a correctly rounding parser reads the intended float.
SAMPLE = 0.0015675894652836875
SAMPLE_SPELLINGS = [_halfway(SAMPLE, False), _halfway(SAMPLE, True), _halfway(math.nextafter(SAMPLE, 0), True),
                    f"{SAMPLE!r}0000000000000000000000000", "1.5675894652836875e-3", "15675894652836875e-19",
                    "0.0015675894652836875E0", "1.5675894652836875E-03"]  # fmt: skip


@pytest.mark.parametrize("spelling", SAMPLE_SPELLINGS)
def test_a_raw_sample_spelled_to_round_one_way_reads_alike(tmp_path, monkeypatch, spelling):
    """Held: samples_s lies outside the signed view, bound only by samples_sha256 over the binary64 values; a parser
    that read a 60-digit halfway decimal otherwise than Python's float() would check the digest over other values
    than the slow path (one path counting the report, the other refusing it). msgspec rounds as float() does."""
    raw = _sample_spelled(spelling)
    assert written.parse_node_report(raw) is not None  # the fast path reads it
    fast, slow = _judged(tmp_path, monkeypatch, raw)
    assert fast == slow and _status(fast) == ("counted", 0)


#: Raw samples the strict parser refuses or reads as another type: beyond 64 bits, overflowing, not a duration.
ODD_SAMPLES = ["9223372036854775808", "-9223372036854775808", "9223372036854775809", "18446744073709551616",
               "1" + "0" * 30, "1e400", "-1e400", "1e-400", "-0", "-0.0", "0", "1E2", "true", "null", '"1.5"',
               "[1.5]", "NaN", "1.7976931348623159e308"]  # fmt: skip


@pytest.mark.parametrize("spelling", ODD_SAMPLES)
def test_odd_raw_samples_are_judged_alike(tmp_path, monkeypatch, spelling):
    """Held: each is refused by the strict parser (integers beyond 2^63, overflow, NaN) or read as the same value and
    then refused by the model (not a finite positive duration) with the same words on both paths."""
    text = dumps(_v2()).replace(f"\n        {SAMPLE!r},\n", f"\n        {spelling},\n", 1)
    assert spelling in text
    fast, slow = _judged(tmp_path, monkeypatch, text.encode())
    assert fast == slow and _status(fast)[0] == "rejected"


#: Signed numbers (measurements[0].details.x) spelled otherwise than RFC 8785 would, or at the edges of binary64.
SIGNED_NUMBERS = ["1E5", "1e5", "100000.0", "-0", "-0.0", "0e0", "1e16", "1.5e16", "1e+16", "123456789012345.67",
                  "9007199254740993", "9007199254740991", "-9007199254740991", "1000000000000000", "5e-324",
                  "4.9406564584124654e-324", "2.2250738585072011e-308", "1.7976931348623157e308",
                  "1.7976931348623158e308", "0.000001", "1e-6", "1e-7", "0.0000001", "5e-6", "0.000005", "1e21",
                  "1e+21", "1e22", _halfway(0.1, True), _halfway(0.1, False), "0.30000000000000004",
                  "0.3000000000000000444089209850062616169452667236328125"]  # fmt: skip


@pytest.mark.parametrize("spelling", SIGNED_NUMBERS)
def test_a_signed_number_spelled_any_way_reads_and_verifies_alike(tmp_path, monkeypatch, spelling):
    """Held: a number in the signed view is written back by msgspec and respelled as RFC 8785 writes it; whatever the
    spelling in the file, both paths read one value and check the signature over the same canonical bytes (the key
    holder signed the canonical bytes of the value the strict parser reads)."""
    value = json.loads(spelling)
    carriable = type(value) is float or abs(value) <= 2**53 - 1
    if carriable:
        text = dumps(_v2(lambda doc: doc["measurements"][0]["details"].update(x=value)))
    else:  # no signature covers it (RFC 8785 cannot write it): the report's own, over the value without it
        doc = _v2()
        doc["measurements"][0]["details"]["x"] = value
        text = dumps(doc)
    token = f'"x": {json.dumps(value)}'
    assert token in text, token
    raw = text.replace(token, f'"x": {spelling}', 1).encode()
    assert type(value) is not float or written.parse_node_report(raw) is not None  # a float: the fast path reads it
    fast, slow = _judged(tmp_path, monkeypatch, raw)
    assert fast == slow
    assert _status(fast) == (("counted", 0) if carriable else ("rejected", 1))


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-8-sig", "utf-32-be"])
def test_a_node_report_in_another_unicode_encoding_is_refused_alike(tmp_path, monkeypatch, encoding):
    """Held: msgspec reads UTF-8 only; a report re-encoded is refused by both paths in strict_json's words."""
    raw = dumps(_v2()).encode(encoding)
    fast, slow = _judged(tmp_path, monkeypatch, raw)
    assert fast == slow and _status(fast) == ("rejected", 1)


@pytest.mark.parametrize("space", ["\x0c", "\x0b", "\xc2\xa0", "\xe2\x80\xa8", "\x00"])
def test_whitespace_json_does_not_allow_is_refused_alike(tmp_path, monkeypatch, space):
    """Held: msgspec allows no whitespace beyond JSON's four (space, tab, LF, CR), as json.loads."""
    raw = dumps(_v2()).replace('\n  "kind"', f'\n {space} "kind"', 1).encode()
    fast, slow = _judged(tmp_path, monkeypatch, raw)
    assert fast == slow and _status(fast) == ("rejected", 1)


# --- version-3 streams whose records msgspec judges canonical (canonical._parse_canonical_msgspec)


def _chained(bodies: list[bytes]) -> bytes:
    """Lines over record bytes exactly as given, each signed over the SHA-256 of its bytes as written."""
    out = b""
    for body in bodies:
        signature = KEY.sign(records.SIGNING_CONTEXT + hashlib.sha256(body).digest())
        out += b'{"record":' + body + b',"signature":"' + base64.b64encode(signature) + b'"}\n'
    return out


def _stream_with(placeholder: bytes, spelled: bytes, edit=None) -> bytes:
    """The stream of node 3 with its header's config {"x": 0} and the bytes `placeholder` of that header written
    `spelled` instead; every record after it names the SHA-256 of the bytes before it as written, and each line is
    signed over its bytes as written: what a key holder makes of a record it spells its own way."""
    stream = node_stream(3, [700.0 + g for g in range(4)], KEY)
    recs = [json.loads(line)["record"] for line in stream.split(b"\n")[:-1]]
    recs[0]["config"] = {"x": 0}
    if edit is not None:
        edit(recs)
    bodies, prev = [], None
    for i, r in enumerate(recs):
        body = canonical_bytes({**r, "seq": i, "prev": prev})
        if i == 0:
            assert placeholder in body, placeholder
            body = body.replace(placeholder, spelled, 1)
        bodies.append(body)
        prev = hashlib.sha256(body).hexdigest()
    return _chained(bodies)


def _took_fast(tmp_path: Path, raw: bytes) -> bool:
    """Whether read_json read every record of the stream as its canonical bytes (Document.chain)."""
    return ninth_round_intake._took_fast(tmp_path, raw)


def _canonical_spelling(spelling: str) -> str | None:
    try:
        return canonical_bytes({"x": json.loads(spelling)})[5:-1].decode()
    except canonical.UncarriableNumber:
        return None


#: Numbers as msgspec writes them where RFC 8785 writes them otherwise, as RFC 8785 writes them, and at binary64's edges.
STREAM_NUMBERS = [*SIGNED_NUMBERS, "0.00001", "1e-5", "1e-05", "0.0001", "1e-4", "1.5e-7", "1.5e-07", "-5e-6",
                  "-0.000005", "3.0000000000000004", "1e300", "1e+300", "1.7976931348623157e+308",
                  "2.2250738585072014e-308", "9.999999999999999e+22", "1.2345678901234567e-7", "4503599627370495.5",
                  "4503599627370495.5e0", "0.1", "0.10", "1.0", "1", "-1", "10", "1e1", "-9007199254740993",
                  "9223372036854775808", "18446744073709551616", "9" * 400, "999999999999999", "1000000000000000",
                  "1e+23", "1e23", "9.999999999999999e+22", "5e-310", "2.225073858507201e-308", "0.3333333333333333",
                  "1.1000000000000001", "110.00000000000001", "4.35e-7", "0.000001234567890123456",
                  "1.234567890123456e-6", "8.41e+21", "123456789012345680000"]  # fmt: skip


@pytest.mark.parametrize("spelling", STREAM_NUMBERS)
def test_a_header_number_spelled_as_msgspec_or_rfc8785_writes_it_is_judged_alike(tmp_path, monkeypatch, spelling):
    """Held: a record holding a number spelled otherwise than RFC 8785 writes it (msgspec's '5e-6', '1e16', '1e22',
    '1.7976931348623157e308'; Python's '1e-05'; padded or over-long forms) is not its canonical form: the fast path hands
    it to the slow one, which hashes the record's canonical bytes, not the bytes signed, and refuses the report; the
    canonical spelling is read as its bytes and counted on both paths."""
    raw = _stream_with(b'"config":{"x":0}', b'"config":{"x":' + spelling.encode() + b"}")
    fast, slow = _judged(tmp_path, monkeypatch, raw)
    assert fast == slow
    canonical_form = _canonical_spelling(spelling) == spelling
    assert _status(fast) == (("counted", 0) if canonical_form else ("rejected", 1))
    assert _took_fast(tmp_path, raw) == canonical_form


def _key_order_stream(keys_in_order: list[str]) -> bytes:
    inner = ",".join(f'"{k}":{i}' for i, k in enumerate(keys_in_order))
    return _stream_with(b'"config":{"x":0}', b'"config":{' + inner.encode() + b"}")


@pytest.mark.parametrize(
    "keys_in_order",
    [["\ue000", "\U0001f600"], ["\U0001f600", "\ue000"], ["\uffff", "\U00010000"], ["\U00010000", "\uffff"],
     ["a", "a\x7f", "a\u0080"], ["a\u0080", "a\x7f", "a"], ["", "a"], ["B", "a"], ["a", "B"], ["é", "e\u0301"]],
)  # fmt: skip
def test_keys_in_code_point_or_utf16_order_are_judged_alike(tmp_path, monkeypatch, keys_in_order):
    """Held: msgspec sorts keys by code point, RFC 8785 by UTF-16 code unit (they differ for a character beyond
    U+FFFF against U+E000..U+FFFF): any such character makes the fast path unsure; otherwise only the sorted order is
    canonical, on both paths."""
    raw = _key_order_stream(keys_in_order)
    fast, slow = _judged(tmp_path, monkeypatch, raw)
    assert fast == slow
    utf16 = sorted(keys_in_order, key=lambda k: k.encode("utf-16-be"))
    assert _status(fast) == (("counted", 0) if keys_in_order == utf16 else ("rejected", 1))
    astral = any(c > "\uffff" for k in keys_in_order for c in k)
    assert _took_fast(tmp_path, raw) == (keys_in_order == utf16 and not astral)


#: String contents spelled in ways JSON allows: msgspec's writing is RFC 8785's for each character, so only one is
#: canonical (the short escapes and lower-case \\u00xx for controls, raw UTF-8 for everything else).
STRING_SPELLINGS = [("\\b", True), ("\\u0008", False), ("\\u001f", True), ("\\u001F", False), ("\x7f", True),
                    ("\\u007f", False), ("/", True), ("\\/", False), ("\\u0000", True), ("\u2028", True),
                    ("\\u2028", False), ("\ufeff", True), ("\\ud83d\\ude00", False), ("\U0001f600", True),
                    ("\\uD83D\\uDE00", False), ("\\ud800", False), ("\\udfff", False), ("\\ud800\\u0041", False),
                    ('\\"', True), ("\\\\", True), ("\\t\\n\\r\\f", True), ("\\u000b", True), ("\\v", False)]  # fmt: skip


@pytest.mark.parametrize("spelled,canonical_form", STRING_SPELLINGS, ids=[s[0] for s in STRING_SPELLINGS])
def test_string_escapes_are_judged_alike(tmp_path, monkeypatch, spelled, canonical_form):
    """Held: a string in a record spelled with each escape JSON allows (or does not): read alike, and counted exactly
    when it is RFC 8785's own spelling."""
    raw = _stream_with(b'"config":{"x":0}', b'"config":{"x":"' + spelled.encode() + b'"}')
    fast, slow = _judged(tmp_path, monkeypatch, raw)
    assert fast == slow
    assert _status(fast) == (("counted", 0) if canonical_form else ("rejected", 1))
    assert _took_fast(tmp_path, raw) == (canonical_form and spelled != "\U0001f600")  # astral: the slow path's


# --- what makes a fast path cost far more than the slow one


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _slow_node_read(raw: bytes) -> bytes:
    return sign.canonical(parse_json(raw, "node.json"))


@pytest.mark.parametrize("filler", [[700.0], [0.0, -0.0], [1.0, 2.5]])
def test_a_report_full_of_integral_floats_costs_the_fast_path_what_it_costs_the_slow_one(filler):
    """Succeeded before its fix: parse_node_report respelled every integral float msgspec writes ('700.0', RFC 8785
    '700') through a Python call to rfc8785 each, so a report whose signed details held 150,000 of them took the fast
    path 4-5x the strict parse and canonicalization it replaces (1.0 s against 0.22 s; a 64 MB report ~16 million,
    a minute). The fast path must stay within a small multiple of the slow one (bounds generous: the machine is
    shared)."""
    doc = _v2(lambda d: d["measurements"][0]["details"].update(x=filler * (150_000 // len(filler))))
    raw = json.dumps(doc, separators=(",", ":")).encode()
    fast_read = written.parse_node_report(raw)
    assert fast_read is not None and fast_read[1] == _slow_node_read(raw)
    slow = min(_timed(lambda: _slow_node_read(raw)) for _ in range(2))
    fast = min(_timed(lambda: written.parse_node_report(raw)) for _ in range(2))
    assert fast < 2 * slow + 0.02, (fast, slow)


# --- a version-2 report renamed version 3, and the reverse


def _renamed() -> list[tuple[str, bytes, str]]:
    """(name, file, the status both paths must give) for reports passed off as the other version."""
    stream = node_stream(3, [700.0 + g for g in range(4)], KEY)
    folded = records.parse(stream, "stream")
    as_document = dumps(folded).encode()  # the stream's dictionary form (records included) as one JSON document
    tampered = dict(folded, run_id="run-forged")
    v2 = _v2()
    v2_as_v3 = dumps({**v2, "schema_version": 3}).encode()
    v2_resigned_v3 = dumps(resign({**v2, "schema_version": 3}, KEY)).encode()
    v2_with_records = dumps({**v2, "records": folded["records"]}).encode()
    return [
        ("a stream's dictionary form written as one document", as_document, "counted"),
        ("that document with a field its records do not say", dumps(tampered).encode(), "rejected"),
        ("a version 2 report saying version 3", v2_as_v3, "rejected"),
        ("a version 2 report saying version 3, re-signed", v2_resigned_v3, "rejected"),
        ("a version 2 report carrying another stream's records", v2_with_records, "rejected"),
        ("a version 2 report as one stream line", b'{"record":' + json.dumps(v2).encode() + b',"signature":null}\n',
         "rejected"),
    ]  # fmt: skip


@pytest.mark.parametrize("name", [r[0] for r in _renamed()])
def test_a_report_passed_off_as_the_other_version_is_judged_alike(tmp_path, monkeypatch, name):
    """Held: the version a report is checked as follows its kind and schema_version on both paths (a version-3 report
    is checked over its records' chain whatever file form carries it; a version-2 one over its canonical bytes), so a
    renamed report gets one decision. The stream's dictionary form written as a document is the same signed report:
    counted on both paths, under the stream's own digest (so a fleet holding both counts it once)."""
    raw, expected = next((r[1], r[2]) for r in _renamed() if r[0] == name)
    fast, slow = _judged(tmp_path, monkeypatch, raw)
    assert fast == slow
    assert _status(fast)[0] == expected
    if expected == "counted":
        stream = node_stream(3, [700.0 + g for g in range(4)], KEY)
        entry, _ = _examine(tmp_path, stream, "stream.json")
        assert _examine(tmp_path, raw)[0]["digest"] == entry["digest"]


# --- random edits of an honest file, judged on both paths


#: What an edit puts in: JSON's structural and number bytes, escapes, whitespace JSON allows and does not, bytes that
#: are not UTF-8, a NUL, characters either side of U+FFFF.
EDITS = [b"0", b"1", b"9", b".", b"e", b"E", b"-", b"+", b'"', b"\\", b":", b",", b"[", b"]", b"{", b"}", b" ", b"\t",
         b"\r", b"\n", b"\x0c", b"\x00", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", "\ue000".encode(), "😀".encode(),
         b"\\u003a", b"\\ud800", b"\\/", b"\\u0000", b".0", b"e-7", b"e+16", b"E5", b"1e400", b"NaN", b"true", b"null",
         b"9" * 20]  # fmt: skip


def _mutants(raw: bytes, seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        at = rng.randrange(len(raw))
        cut = rng.choice([0, 0, 1, 1, 2])
        out.append(raw[:at] + rng.choice(EDITS) + raw[at + cut :])
    return out


def _decided(tmp_path: Path, raw: bytes) -> str:
    path = tmp_path / "node.json"
    path.write_bytes(raw)
    return repr((_read(path), _examine(tmp_path, raw)))


@pytest.mark.parametrize("form", ["v2 as bench writes it", "v2 compact", "v3 stream"])
def test_random_edits_of_an_honest_report_are_judged_alike(tmp_path, monkeypatch, form):
    """Held: 150 single edits of an honest report (a byte or token put in, replacing up to two), each read and
    examined as aggregate does, as shipped and with every fast path off: the same data or refusal, the same entry."""
    if form == "v3 stream":
        raw = node_stream(3, [700.0 + g for g in range(4)], KEY)
    else:
        doc = _v2()
        raw = (
            dumps(doc).encode() if form == "v2 as bench writes it" else json.dumps(doc, separators=(",", ":")).encode()
        )
    mutants = _mutants(raw, len(form), 150)
    fast = [_decided(tmp_path, m) for m in mutants]
    with monkeypatch.context() as m:
        _slow(m)
        slow = [_decided(tmp_path, x) for x in mutants]
    for mutant, a, b in zip(mutants, fast, slow, strict=True):
        assert a == b, mutant


@pytest.mark.parametrize("depth", [28, 29, 33, 1000, 1_000_000])
def test_deep_nesting_in_a_node_report_is_refused_alike_and_cheaply(tmp_path, monkeypatch, depth):
    """Held: msgspec stops at its recursion limit (RecursionError, no crash) and the ':'-and-bracket checks hold the
    depth strict_json allows; a million levels (within the container limit) cost both paths about the same."""
    if depth < 100:  # signed over the nested value
        nested: list = []
        for _ in range(depth - 1):
            nested = [nested]
        raw = dumps(_v2(lambda d: d["measurements"][0]["details"].update(x=nested))).encode()
    else:
        text = dumps(_v2(lambda d: d["measurements"][0]["details"].update(x=0)))
        raw = text.replace('"x": 0', '"x": ' + "[" * depth + "]" * depth, 1).encode()
    fast, slow = _judged(tmp_path, monkeypatch, raw)
    assert fast == slow  # the list lies at depth 5 (report 1, measurements 2, one 3, details 4): 28 more reach 32
    assert _status(fast) == (("counted", 0) if depth <= 28 else ("rejected", 1))
    assert (written.parse_node_report(raw) is not None) == (depth <= 28)
    with monkeypatch.context() as m:  # the slow path's read of the file _judged wrote
        _slow(m)
        strict = _timed(lambda: _read(tmp_path / "node.json"))
    assert _timed(lambda: written.parse_node_report(raw)) < 5 * strict + 0.05


#: What may follow (or precede) a document's one JSON value: whitespace JSON allows is read alike; anything else is not
#: JSON, on either path.
TAILS = [(b"", b"\n\n\r\n\t "), (b"", b" x"), (b"", b"\x00"), (b"", b"{}"), (b"", b"\n{}\n"), (b"", b"\xef\xbb\xbf"),
         (b"\xef\xbb\xbf", b""), (b" \r\n\t", b""), (b"\x00", b""), (b"", b"\\"), (b"", b"]"), (b"", b"//")]  # fmt: skip


@pytest.mark.parametrize("head,tail", TAILS)
def test_bytes_around_a_node_report_are_judged_alike(tmp_path, monkeypatch, head, tail):
    """Held: msgspec, like json.loads, takes only JSON's whitespace around the one value."""
    raw = head + dumps(_v2()).encode() + tail
    fast, slow = _judged(tmp_path, monkeypatch, raw)
    assert fast == slow
    assert _status(fast) == (("counted", 0) if not (head + tail).strip(b" \t\r\n") else ("rejected", 1))


@pytest.mark.parametrize("head,tail", TAILS)
def test_bytes_around_a_capacity_report_are_judged_alike(tmp_path, monkeypatch, capacity, head, tail):
    """Held: the same for a capacity report read by parse_written."""
    nodes, text = capacity
    fast, slow = _verify_capacity(tmp_path, monkeypatch, head + text.encode() + tail, nodes)
    assert fast == slow
    assert _exit(fast) == (0 if not (head + tail).strip(b" \t\r\n") else 1)


def _slow_document_read(raw: bytes) -> bytes:
    return sign.canonical(parse_json(raw, "doc.json"))


@pytest.mark.parametrize("filler", [[700.0], [1.0, -3.0, 0.5]])
def test_a_signed_document_full_of_integral_floats_costs_parse_written_what_it_costs_the_slow_path(filler):
    """Succeeded before its fix: parse_written dropped each integral float's '.0' by a regular expression whose
    replacement named groups, which Python expands by a call per match: a signed document (a capacity report's shape)
    holding 300,000 integral floats took the fast path ~3x the strict parse and canonicalization it replaces."""
    doc = {"kind": "bench.capacity", "rows": filler * (300_000 // len(filler)), "note": "v1.5, [2.5]"}
    doc["signature"] = sign.sign(doc, KEY)
    raw = dumps(doc).encode()
    read = written.parse_written(raw)
    assert read is not None and read[1] == _slow_document_read(raw)
    slow = min(_timed(lambda: _slow_document_read(raw)) for _ in range(2))
    fast = min(_timed(lambda: written.parse_written(raw)) for _ in range(2))
    assert fast < 2 * slow + 0.02, (fast, slow)


@pytest.mark.parametrize("text", ["1.0,", "x.0]", "[2.0}", ":3.0,", "7.0"])
def test_an_integral_float_look_alike_in_a_string_is_not_respelled(text):
    """Held: a string holding what looks like an integral float's end ('.0' before ',]}') beside real integral floats
    makes parse_written unsure (None) or leaves the string as it is: its bytes are canonical's either way."""
    doc = {"kind": "bench.capacity", "rows": [700.0, 1.0], "note": text}
    doc["signature"] = sign.sign(doc, KEY)
    raw = dumps(doc).encode()
    read = written.parse_written(raw)
    assert read is None or read[1] == _slow_document_read(raw)
