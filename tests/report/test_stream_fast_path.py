"""The fast path for record streams (a version-3 node report checked over the bytes it was read as, each record's bytes
found canonical by bench.model.canonical.parse_canonical instead of canonicalized again) reaches the slow path's
decision with the slow path's words, on valid, tampered, re-signed, non-canonical, reordered and truncated streams."""

from __future__ import annotations

import base64
import hashlib
import json
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.model import intake, records
from bench.model.canonical import canonical_bytes
from bench.model.strict_json import parse_json
from bench.report import pool
from tests.report.fleet import NOW, node_report, node_stream

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"fast path node").digest())


def _slow_line(line: bytes, where: str, limit: int) -> tuple[object, None]:
    return parse_json(line, where, max_containers=limit), None


def _examined(tmp_path, raw: bytes, name: str = "node.json") -> tuple[dict, list]:
    path = tmp_path / name
    path.write_bytes(raw)
    return pool._examine((name, path), now=NOW)


def _both(tmp_path, monkeypatch, raw: bytes) -> tuple[tuple[dict, list], tuple[dict, list], bool]:
    """(fast result, slow result, whether the fast path hashed every record from its bytes)."""
    path = tmp_path / "probe.json"
    path.write_bytes(raw)
    try:
        took = intake.read_json(path).chain is not None
    except intake.InputError:
        took = False
    fast = _examined(tmp_path, raw)
    with monkeypatch.context() as m:
        m.setattr(records, "_parse_line", _slow_line)
        slow = _examined(tmp_path, raw)
    return fast, slow, took


def _lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\n")[:-1]


def _bodies(raw: bytes) -> list[dict]:
    return [json.loads(line)["record"] for line in _lines(raw)]


def _signed(bodies: list[bytes], key: Ed25519PrivateKey | None = KEY) -> bytes:
    """Lines over the given record bytes as they are (canonical or not), signed as a writer holding the node key
    would sign them, the signature over the SHA-256 of the bytes written: what an attacker with the key can make."""
    out = []
    for i, body in enumerate(bodies):
        sig = (
            base64.b64encode(key.sign(records.SIGNING_CONTEXT + hashlib.sha256(body).digest())).decode()
            if key
            else None
        )
        tail = b'"' + sig.encode() + b'"' if sig and i == len(bodies) - 1 else b'"' + (sig or "").encode() + b'"'
        out.append(b'{"record":' + body + b',"signature":' + tail + b"}\n")
    return b"".join(out)


def _rechain(recs: list[dict], spell=canonical_bytes) -> bytes:
    """Records spelled by `spell`, each naming the SHA-256 of the bytes before it, and signed over those bytes."""
    bodies, prev = [], None
    for i, r in enumerate(recs):
        body = spell({**r, "seq": i, "prev": prev})
        bodies.append(body)
        prev = hashlib.sha256(body).hexdigest()
    return _signed(bodies)


def _stream(node: int = 3) -> bytes:
    return node_stream(node, [700.0 + g for g in range(4)], KEY)


def test_a_valid_stream_takes_the_fast_path_and_counts_as_the_slow_path_counts(tmp_path, monkeypatch):
    fast, slow, took = _both(tmp_path, monkeypatch, _stream())
    assert took and fast == slow and fast[0]["status"] == "counted" and len(fast[1]) == 4


def test_a_version_2_document_and_a_stream_of_the_same_run_give_the_same_rows_but_their_own_digest(tmp_path):
    v2 = _examined(tmp_path, json.dumps(node_report(3, [700.0 + g for g in range(4)], KEY)).encode(), "a.json")
    v3 = _examined(tmp_path, _stream(), "b.json")
    digest = pool.COLUMNS.index("report")
    strip = [tuple(x for i, x in enumerate(r) if i != digest) for r in v2[1]]
    assert strip == [tuple(x for i, x in enumerate(r) if i != digest) for r in v3[1]]
    assert v2[0]["digest"] != v3[0]["digest"]


def _spellings() -> list[tuple[str, object]]:
    """Ways to write a record that are valid JSON with the same value, but not its canonical bytes."""
    return [
        ("spaces", lambda r: json.dumps(r, sort_keys=True).encode()),
        ("unsorted keys", lambda r: json.dumps(dict(reversed(list(r.items()))), separators=(",", ":"), ensure_ascii=False).encode()),
        ("ascii escapes", lambda r: json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()),
        ("python floats", lambda r: json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()),
        ("an escaped letter", lambda r: canonical_bytes(r).replace(b'"type"', b'"typ\\u0065"')),
        ("a duplicate key", lambda r: b'{"seq":-1,' + canonical_bytes(r)[1:]),
        ("an integral float", lambda r: canonical_bytes(r).replace(b'"seq":0', b'"seq":0.0')),
        ("a negative zero", lambda r: canonical_bytes(r).replace(b'"seq":0', b'"seq":-0')),
        ("an exponent", lambda r: canonical_bytes(r).replace(b'"seq":1,', b'"seq":1e0,')),
        ("a trailing space", lambda r: canonical_bytes(r) + b" "),
    ]  # fmt: skip


@pytest.mark.parametrize("name,spell", _spellings(), ids=[n for n, _ in _spellings()])
def test_records_signed_over_bytes_that_are_not_canonical_are_refused_alike(tmp_path, monkeypatch, name, spell):
    """An attacker holding the node key signs the bytes it wrote, not their canonical form: the slow path hashes the
    canonical form, so the chain breaks there, and the fast path must not accept what it hashed as written."""
    raw = _rechain(_bodies(_stream()), spell)
    fast, slow, took = _both(tmp_path, monkeypatch, raw)
    assert not took
    assert fast == slow
    assert fast[0]["status"] == "rejected", name


def _tampered(raw: bytes, r: random.Random) -> list[tuple[str, bytes]]:
    lines = _lines(raw)
    out = [
        ("reordered", b"".join(x + b"\n" for x in [lines[0], lines[2], lines[1], *lines[3:]])),
        ("a record removed", b"".join(x + b"\n" for x in lines[:2] + lines[3:])),
        ("a record doubled", b"".join(x + b"\n" for x in lines[:2] + lines[1:])),
        ("the end record removed", b"".join(x + b"\n" for x in lines[:-1])),
        ("signature of another line", raw.replace(lines[-1][lines[-1].rfind(b'"signature":') :],
                                                  lines[-2][lines[-2].rfind(b'"signature":') :])),
        ("unsigned last line", raw.replace(lines[-1][lines[-1].rfind(b'"signature":') :], b'"signature":null}')),
        ("NaN", raw.replace(b'"efficiency":', b'"efficiency":NaN,"x":', 1)),
        ("overflow", raw.replace(b'"efficiency":', b'"efficiency":1e400,"x":', 1)),
        ("huge integer", raw.replace(b'"index":0', b'"index":123456789012345678901234567890', 1)),
        ("lone surrogate", raw.replace(b'"hostname":"', b'"hostname":"\\ud800', 1)),
        ("not UTF-8", raw.replace(b'"hostname":"', b'"hostname":"\xff', 1)),
        ("a line without its frame", raw.replace(b'{"record":', b'{"record" :', 1)),
        ("bytes after the end", raw + b"garbage"),
    ]  # fmt: skip
    for cut in sorted(r.sample(range(1, len(raw)), 12)):
        out.append((f"truncated at {cut}", raw[:cut]))
    for _ in range(40):  # one byte changed anywhere
        i = r.randrange(len(raw))
        out.append((f"byte {i}", raw[:i] + bytes([r.choice(b'0123456789abcdef"{}[],: .eE-\\')]) + raw[i + 1 :]))
    # a figure changed and the stream re-signed by the key holder, canonically: the fast path hashes, re-derivation
    # refuses, as it does on the slow path
    recs = _bodies(raw)
    recs[1]["measurement"]["summary"]["tflops_median"] *= 1.5
    out.append(("a figure changed and re-signed", _rechain(recs)))
    recs = _bodies(raw)
    recs[0]["inventory"]["nvml"]["gpus"][0]["uuid"] = "GPU-other"
    out.append(("the inventory changed and re-signed", _rechain(recs)))
    return out


def test_tampered_streams_get_the_same_decision_and_words_on_both_paths(tmp_path, monkeypatch):
    r = random.Random("bench stream fast path")
    raw = _stream()
    decisions = set()
    for name, mutated in _tampered(raw, r):
        fast, slow, _ = _both(tmp_path, monkeypatch, mutated)
        assert fast == slow, name
        decisions.add(fast[0]["status"])
    assert decisions == {"counted", "rejected"}  # a truncation at a line's end is a valid partial report


def test_every_field_tampered_without_re_signing_is_refused_alike(tmp_path, monkeypatch):
    raw = _stream(5)
    lines = _lines(raw)
    checked = 0
    for n, line in enumerate(lines):
        record = json.loads(line)["record"]
        for key in sorted(record):
            if key in ("seq", "prev", "type"):
                continue
            changed = {**record, key: "tampered"}
            body = canonical_bytes(changed)
            new = b'{"record":' + body + line[line.rfind(b',"signature":') :]
            mutated = b"".join(x + b"\n" for x in lines[:n] + [new] + lines[n + 1 :])
            fast, slow, took = _both(tmp_path, monkeypatch, mutated)
            assert fast == slow and fast[0]["status"] == "rejected", (n, key)
            checked += took  # read (its records canonical), then refused on the signature
    assert checked > 10


@pytest.mark.parametrize("depth", [28, 29, 30, 31])
def test_nesting_at_the_depth_limit_is_judged_alike(tmp_path, monkeypatch, depth):
    recs = _bodies(_stream())
    nested: object = 1
    for _ in range(depth):
        nested = {"a": nested}
    recs[0]["config"] = nested  # the header's config, 1 level in a record, 2 in its line
    fast, slow, took = _both(tmp_path, monkeypatch, _rechain(recs))
    assert fast == slow
    assert took == (fast[0]["status"] == "counted")


@pytest.mark.parametrize("lines", [1, None])  # a 1.7 kB header alone (bytes.count), the whole 16 kB stream (numpy)
def test_a_streams_containers_are_counted_as_strict_json_counts_them(lines) -> None:
    """records.parse refuses a stream with more arrays and objects than the limit, and takes one with exactly as many,
    on either side of written.count_byte's vector threshold: the count is raw.count's, '[' and '{' inside strings
    included (fails with either byte's count off by one)."""
    raw = node_stream(3, [700.0] * 8, KEY)
    if lines is not None:
        raw = b"".join(raw.split(b"\n")[:lines]) + b"\n"
    containers = raw.count(b"[") + raw.count(b"{")
    assert records.parse(raw, "node.json", max_containers=containers)["kind"] == "bench.node-report"
    with pytest.raises(intake.InputError, match=f"{containers} JSON arrays and objects, more than the limit of"):
        records.parse(raw, "node.json", max_containers=containers - 1)
