"""store.dumps (scalar-only containers through the C encoder) writes json.dumps(indent=2, sort_keys=True)'s bytes."""

import json
import math
import random
from pathlib import Path

import pytest

from bench.report import store
from tests.report.test_canonical import _value


def _reference(data) -> str:
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"


def test_fuzzed_documents_are_written_as_json_dumps_writes_them():
    r = random.Random("bench dumps")
    for _ in range(3000):
        doc = {"k": _value(r), "v": [_value(r) for _ in range(3)], "t": tuple(_value(r) for _ in range(2))}
        assert store.dumps(doc) == _reference(doc), doc


@pytest.mark.parametrize("value", [{}, [], "é", 1.5, None, True, [[]], [{}], {"a": {}}, {"a": []}, [1, [2, [3]]],
                                   {"b": 1, "a": {"d": [1.0, 2e-7, "x"], "c": None}}])  # fmt: skip
def test_edge_shapes(value):
    assert store.dumps(value) == _reference(value)


def test_what_json_dumps_refuses_or_converts_takes_json_dumps():
    for keys in ({1: "a", 2: {"x": 1}}, {"b": {2.5: None, 1.5: 1}}):
        assert store.dumps(keys) == _reference(keys)
    for bad in ({"a": math.nan}, {"a": [1, {"b": math.inf}]}, {"a": object()}):
        with pytest.raises((ValueError, TypeError)):
            store.dumps(bad)
    circular: list = []
    circular.append(circular)
    with pytest.raises(ValueError):
        store.dumps(circular)


def test_real_documents():
    for path in sorted(Path(__file__).parents[1].rglob("*.json"))[:200]:
        try:
            data = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError):
            continue
        assert store.dumps(data) == _reference(data), path


def test_the_msgspec_writer_gives_json_dumps_bytes_or_steps_aside():
    from tests.report.test_canonical import plain_value

    r = random.Random("msgspec dumps")
    taken = 0
    for _ in range(4000):
        doc = {
            "rows": [plain_value(r) for _ in range(4)],
            "k": plain_value(r),
            "e": r.choice([{}, [], [[]], {"a": {}}]),
        }
        fast = store._msgspec_dumps(doc)
        try:
            slow = _reference(doc)
        except (ValueError, TypeError):
            assert fast is None, doc
            continue
        if fast is not None:
            taken += 1
            assert fast == slow, doc
        assert store.dumps(doc) == slow
    assert taken > 400


@pytest.mark.parametrize("doc", [{"a": "\x7f"}, {"a": "é"}, {"a": "x\ty"}, {"a": 1e-5}, {"a": 1e16}, {"a": -0.0},
                                 {"a": math.nan}, {"a": 2**64}, [1, 2], {1: 2}])  # fmt: skip
def test_what_the_msgspec_writer_could_write_otherwise_steps_aside(doc):
    assert store._msgspec_dumps(doc) is None
