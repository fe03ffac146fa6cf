"""bench.model.written.parse_signed (msgspec's C parse and sorted C write of a signed document without raw samples, a
capacity report) reaches the slow path's decision with the slow path's words, on the documents and variants that hold
parse_written to it (tests/report/test_written_fast_path.py: valid, re-signed non-canonical, tampered, NaN,
duplicate-key, lone-surrogate, deep, truncated, beyond 2^53, tricky strings), and gives the canonical bytes of a
capacity report as bench writes it."""

from __future__ import annotations

import random
from typing import Any

import pytest

from bench.model import intake, sign, written
from bench.report.store import dumps
from tests.report import test_written_fast_path as twf


def _outcome(raw: bytes, *, fast: bool) -> tuple[Any, ...]:
    return twf._outcome(raw, fast=fast, reader=written.parse_signed)


def test_signed_fast_path_decides_as_the_slow_path() -> None:
    taken = total = 0
    for seed in range(40):
        rng = random.Random(seed)
        doc = twf._document(rng)
        for raw in twf._variants(rng, doc):
            assert _outcome(raw, fast=True) == _outcome(raw, fast=False), (seed, raw[:300])
            taken += written.parse_signed(raw) is not None
            total += 1
    assert 40 <= taken < total  # both paths exercised (a tricky string or a broken file goes the slow way)


@pytest.mark.parametrize("number", [-0.0, 0.0, 1e-05, 1.5e-7, 1e16, 3e20, 2.0**53, -(2**53 - 1), 123.0, 700.5])
def test_numbers_canonical_json_spells_otherwise_decide_as_the_slow_path(number: float) -> None:
    doc = twf._plain(random.Random(3))
    doc["devices"][0].update(note="plain", odd=number)
    doc["signature"] = sign.sign({k: v for k, v in doc.items() if k != "signature"}, twf.KEY)
    raw = dumps(doc).encode()
    assert _outcome(raw, fast=True) == _outcome(raw, fast=False)
    assert _outcome(raw, fast=True)[:2] == (True, "valid")


def test_capacity_reports_as_bench_writes_them_take_it_with_the_canonical_bytes(tmp_path) -> None:
    rng = random.Random(7)
    for i in range(40):
        doc = twf._plain(rng)
        doc["kind"] = "bench.capacity-report"
        doc["devices"][0]["note"] = rng.choice(["plain", "q: 5.0, [1.0} e-5 1e+16"])  # no quote, no backslash
        doc["signature"] = sign.sign({k: v for k, v in doc.items() if k != "signature"}, twf.KEY)
        raw = dumps(doc).encode()
        read = written.parse_signed(raw)
        assert read is not None and read[0] == doc and read[1] == sign.canonical(doc)
        path = tmp_path / f"capacity{i}.json"
        path.write_bytes(raw)
        got = intake.read_json(path)  # intake takes this path for a capacity report
        assert got.data == doc and got.signed_body == read[1]
    doc["measurements"] = []  # a node report's raw arrays are parse_node_report's
    assert written.parse_signed(dumps(doc).encode()) is None


def test_outside_strings_is_the_split_pieces_joined(monkeypatch) -> None:
    """written._outside_strings (numpy from _VECTOR_OUTSIDE_FROM bytes on) gives the even pieces of split(b'"')
    joined, on randomized writings (quotes paired or not, empty strings, quotes first or last)."""
    rng = random.Random("outside")
    monkeypatch.setattr(written, "_VECTOR_OUTSIDE_FROM", 0)
    for _ in range(3000):
        w = bytes(rng.choice(b'"""ab:,[]{}07e-.') for _ in range(rng.randrange(0, 50)))
        assert written._outside_strings(w) == b"".join(w.split(b'"')[0::2]), w


def test_signed_fast_path_decides_as_the_slow_path_with_numpy_outside(monkeypatch) -> None:
    """test_signed_fast_path_decides_as_the_slow_path with every writing's outside found by numpy (the path a
    country's 3 MB capacity reports take)."""
    monkeypatch.setattr(written, "_VECTOR_OUTSIDE_FROM", 0)
    test_signed_fast_path_decides_as_the_slow_path()
    for number in (-0.0, 1e-05, 1.5e-7, 1e16, 123.0):
        test_numbers_canonical_json_spells_otherwise_decide_as_the_slow_path(number)
