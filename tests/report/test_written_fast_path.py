"""The fast path for signed documents as bench writes them (bench.model.written: one C parse and one C write compared
with the file's text, the signature checked over that writing's compact form) reaches the slow path's decision with
the slow path's words: on valid, re-signed non-canonical, tampered, NaN, duplicate-key, lone-surrogate, deep and
truncated documents, and on strings that look like the keys and numbers the fast path respells."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.model import intake, sign, written
from bench.model.strict_json import parse_json
from bench.report.store import dumps
from tests.adversarial import forge

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"written fast path").digest())

#: Strings that hold what the fast path replaces (': ', '.0' before a delimiter, exponents) or declines (escapes).
TRICKY = ['a": b', ',5.0]', ':7.0,', '[1.0}', 'x\\": 2.0,', "1e-05", ",1e+16]", "é", "😀", "tab\there", "q\"uote",
          "back\\slash", '": ', ",-0.0,", "", "del\x7f", "nl\n\r\x08\x0c"]  # fmt: skip


def _value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(10 if depth < 4 else 6)
    if kind == 0:
        return rng.choice([0.0, 1.0, 700.0, -3.0, 2.5, 703.999999648, 1e-5, 1.5e-7, 1e16, 3e20, -0.0, 0.1 + 0.2])
    if kind == 1:
        return rng.choice([0, 1, -7, 85520809984, 2**53 - 1, -(2**53 - 1)])
    if kind == 2:
        return rng.choice(TRICKY) if rng.random() < 0.5 else f"host-{rng.randrange(1000)}"
    if kind == 3:
        return rng.choice([True, False, None])
    if kind in (4, 5):
        return rng.uniform(-1e6, 1e6)
    if kind in (6, 7):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_key(rng): _value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _key(rng: random.Random) -> str:
    return (
        rng.choice(TRICKY + ["devices", "peak_tflops", "a", "b", "z"])
        if rng.random() < 0.3
        else f"k{rng.randrange(50)}"
    )


def _document(rng: random.Random) -> dict[str, Any]:
    doc = {"kind": "capacity-report", "devices": [_value(rng, 2) for _ in range(rng.randrange(1, 6))]}
    doc.update({_key(rng): _value(rng, 1) for _ in range(rng.randrange(4))})
    doc.pop("signature", None)
    doc["signature"] = sign.sign(doc, KEY)
    return doc


def _outcome(raw: bytes, *, fast: bool, reader: Any = written.parse_written) -> tuple[Any, ...]:
    """What reading `raw` (through the fast `reader` where `fast`, falling back to the strict parse where it is unsure)
    and checking its signature decides: the refusal's words, or (valid, why, digest, data)."""
    read = reader(raw) if fast else None
    if read is None:
        try:
            data = parse_json(raw, "doc.json")
        except intake.InputError as exc:
            return ("refused", str(exc))
        body = None
    else:
        data, body = read
    if not isinstance(data, dict):
        return ("not an object", data)
    return (*sign.inspect(data, body=body), data)


def _variants(rng: random.Random, doc: dict[str, Any]) -> list[bytes]:
    raw = dumps(doc).encode()
    text = raw.decode()
    out = forge.rewritten(doc, KEY)
    for _ in range(6):  # tampered: one character changed, a number or a letter
        at = rng.randrange(len(text))
        out.append((text[:at] + rng.choice('0189.e-"a: ,}') + text[at + 1 :]).encode("utf-8", "surrogatepass"))
    out.append(raw[: rng.randrange(len(raw))])  # truncated
    out.append(raw.replace(b'"kind": ', b'"kind": "x",\n  "kind": ', 1))  # duplicate key
    out.append(raw.replace(b'"kind": "capacity-report"', b'"kind": NaN', 1))
    out.append(raw.replace(b'"kind": "capacity-report"', b'"kind": 1e400', 1))
    out.append(raw.replace(b'"kind": "capacity-report"', b'"kind": "\\ud800"', 1))  # a lone surrogate
    for deep in (29, 30, 31, 32, 40):  # strict_json's MAX_DEPTH, counted as it counts
        out.append(raw.replace(b'"kind": "capacity-report"', b'"kind": ' + b"[" * deep + b"]" * deep, 1))
        out.append(raw.replace(b'"kind": "capacity-report"', b'"kind": ' + b'{"a":' * deep + b"1" + b"}" * deep, 1))
    for big in (2**53, 2**63 + 1, 10**20):  # beyond what RFC 8785 carries, or 64 bits
        out.append(raw.replace(b'"kind": "capacity-report"', b'"kind": %d' % big, 1))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_fast_path_decides_as_the_slow_path(seed: int) -> None:
    rng = random.Random(seed)
    doc = _document(rng)
    for raw in _variants(rng, doc):
        assert _outcome(raw, fast=True) == _outcome(raw, fast=False), raw[:300]


def _plain(rng: random.Random) -> dict[str, Any]:
    """A capacity-report-like document the fast path should take: device rows of plain values and an integral float."""
    rows = [{"device": f"GPU-{i:04x}", "memory_bytes": 85520809984, "peak_tflops": 989.4, "mamf_tflops": 700.0 + i / 3,
             "board": None, "note": rng.choice(TRICKY[:4]) if i == 0 and rng.random() < 0.5 else "ok"}
            for i in range(20)]  # fmt: skip
    doc = {"kind": "capacity-report", "devices": rows, "total": 1400.0, "nodes": 2}
    doc["signature"] = sign.sign(doc, KEY)
    return doc


def test_fast_path_is_taken_for_documents_bench_wrote_and_gives_the_canonical_bytes() -> None:
    rng = random.Random(7)
    taken = 0
    for _ in range(40):
        doc = _plain(rng)
        raw = dumps(doc).encode()
        read = written.parse_written(raw)
        if read is not None:
            taken += 1
            assert read[0] == doc
            assert read[1] == sign.canonical(doc)
            assert sign.inspect(read[0], body=read[1])[:2] == (True, "valid")
    assert 10 <= taken < 40  # a string that looks like a respelled key or number sends a document to the slow path


def test_read_json_carries_the_signed_body(tmp_path) -> None:
    doc = _plain(random.Random(1))
    doc["devices"][0]["note"] = "plain"
    doc["signature"] = sign.sign({k: v for k, v in doc.items() if k != "signature"}, KEY)
    path = tmp_path / "capacity.json"
    path.write_text(dumps(doc))
    read = intake.read_json(path)
    assert read.data == doc and read.signed_body == sign.canonical(doc)
    path.write_text(json.dumps(doc))  # not as bench writes it, but as plain: the same answers
    assert intake.read_json(path).signed_body == sign.canonical(doc)
    path.write_text(json.dumps(doc).replace("plain", "pl\\u0061in"))  # an escape the fast path declines
    read = intake.read_json(path)
    assert read.signed_body is None and read.data == doc


@pytest.mark.parametrize("number", [-0.0, 0.0, 1e-05, 1.5e-7, 1e16, 3e20, 2.0**53, -(2**53 - 1), 123.0])
def test_numbers_canonical_json_spells_otherwise_decide_as_the_slow_path(number: float) -> None:
    doc = _plain(random.Random(3))
    doc["devices"][0].update(note="plain", odd=number)
    doc["signature"] = sign.sign({k: v for k, v in doc.items() if k != "signature"}, KEY)
    raw = dumps(doc).encode()
    assert _outcome(raw, fast=True) == _outcome(raw, fast=False)
    assert _outcome(raw, fast=True)[:2] == (True, "valid")


def test_control_escapes_and_del_written_raw_take_the_fast_path_with_the_canonical_bytes() -> None:
    doc = _plain(random.Random(3))
    doc["devices"][0]["note"] = "del\x7f nl\n cr\r bs\x08 ff\x0c tab\t"
    doc["signature"] = sign.sign({k: v for k, v in doc.items() if k != "signature"}, KEY)
    raw = json.dumps(doc, indent=2, ensure_ascii=False).encode()  # DEL raw: ASCII, no '\\u'
    read = written.parse_written(raw)
    assert read is not None and read[1] == sign.canonical(doc)
    assert _outcome(raw, fast=True) == _outcome(raw, fast=False)
