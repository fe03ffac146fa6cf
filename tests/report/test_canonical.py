"""The fast canonical form (the C JSON encoder, adjusted) gives the rfc8785 package's bytes exactly, or steps aside."""

import json
import random
from pathlib import Path

import pytest
import rfc8785

from bench.model import canonical

CHARS = ["a", "Z", "0", " ", '"', "\\", "/", "\n", "\t", "\b", "\f", "\r", "\x01", "\x1f", "\x7f", "é", "中", "\u2028",
         "\ue000", "\uffff", "😀", "\U0010ffff"]  # fmt: skip


def _float(r: random.Random) -> float:
    kind = r.randrange(6)
    if kind == 0:
        return float(r.randrange(-(10**6), 10**6))  # integral: '700.0' must become '700'
    if kind == 1:
        return r.choice([0.0, -0.0, 5e-324, 1.7976931348623157e308, 1e-7, 1e-6, 1e-5, 1e-4, 1e16, 1e20, 1e21, 1e22,
                         123456789012345680000.0, 0.1, 2.5, 1 / 3])  # fmt: skip
    return r.uniform(-1, 1) * 10 ** r.randrange(-30, 30)


def _value(r: random.Random, depth: int = 0):
    kind = r.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return r.random() < 0.5
    if kind == 2:
        return r.randrange(-(2**53) + 1, 2**53)
    if kind == 3:
        return _float(r)
    if kind in (4, 5):
        return "".join(r.choice(CHARS) for _ in range(r.randrange(8)))
    if kind in (6, 7):
        return {
            "".join(r.choice(CHARS) for _ in range(r.randrange(1, 5))): _value(r, depth + 1)
            for _ in range(r.randrange(6))
        }
    return [_value(r, depth + 1) for _ in range(r.randrange(6))]


def test_fuzzed_documents_canonicalize_to_the_same_bytes_or_step_aside():
    r = random.Random("bench canonical")
    fast_taken = 0
    for _ in range(3000):
        doc = {"k": _value(r), "v": [_value(r) for _ in range(3)]}
        fast = canonical._fast_canonical(doc)
        try:
            slow = rfc8785.dumps(doc)
        except rfc8785.CanonicalizationError:
            assert fast is None
            continue
        if fast is not None:
            fast_taken += 1
            assert fast == slow, doc
    assert fast_taken > 1000  # the fast path is the usual one, not a test that always steps aside


@pytest.mark.parametrize(
    "doc",
    [{"\U0001f600": 1, "\ue000": 2}, {"a": "x\x00y"}, {"\x000\x00": 1.5e-9}, {"a": float("nan")}, {1: "x"}, {"a": 2**53},
     {"a": "\ud800"}],
)  # fmt: skip
def test_what_could_differ_takes_the_slow_path(doc):
    assert canonical._fast_canonical(doc) is None


def test_floats_with_exponents_are_written_as_rfc8785_writes_them():
    doc = {"a": [1e-7, 1.5e-5, 1e21, 1e16, -2e-300, 700.0, -0.0, 0.5]}
    assert (
        canonical._fast_canonical(doc)
        == rfc8785.dumps(doc)
        == b'{"a":[1e-7,0.000015,1e+21,10000000000000000,-2e-300,700,0,0.5]}'
    )


def test_real_reports_canonicalize_identically():
    for path in sorted(Path(__file__).resolve().parents[1].joinpath("data").glob("*.json")):
        data = json.loads(path.read_text())
        view = canonical.signed_view(data)
        assert canonical._fast_canonical(view) == rfc8785.dumps(view), path


def test_floats_at_the_edges_of_reprs_plain_form():
    """repr writes no exponent from 1e-4 up to 1e16: the fast path decides there without repr, and must agree."""
    import math as m

    edges = [1e-4, 1e16, 1e15, 9999999999999998.0, 1e16 - 2, 1e16 + 2, 0.0, -0.0, 1.0, -1.0, 2.0**53, 2.0**53 + 2]
    values = []
    for x in edges:
        for y in (x, -x):
            values += [y, m.nextafter(y, m.inf), m.nextafter(y, -m.inf)]
    for x in values:
        doc = {"x": x, "l": [x, {"y": x}]}
        assert canonical._fast_canonical(doc) == rfc8785.dumps(doc), x
