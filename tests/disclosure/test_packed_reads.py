"""A capacity report read by a worker of read_many comes back without its row dicts (leaves._packed) and is rebuilt here
(leaves._unpacked); Rows.columns takes plain rows apart at once (leaves._transposed). Whatever the rows, the document
and rows rebuilt are the ones read (equal data, every dict's keys in the same order, the same columns, frame and
ranks), and the columns are the plain per-key look-ups."""

import json
import pickle
import random

import pandas as pd

from bench.disclosure import leaves as lv
from bench.model import intake

from .test_rows_check import BAD_VALUES, GOOD

EXTRA = ("mamf_source", "report", "zz")


class Sub(dict):
    """A dict subclass among the rows (a parser never makes one: the packed way leaves such rows alone)."""


def _plain_columns(rows):
    """Rows.columns before the transposition: each field's look-up in every row."""
    return {key: [r.get(key) for r in rows] for key in lv._ROW_TYPES}


def _random_rows(r: random.Random) -> list:
    rows = []
    extra = EXTRA[: r.randrange(0, 4)]
    for i in range(r.randrange(0, 40)):
        row = dict(GOOD, device=f"GPU-{r.randrange(8)}-{i}", precision=r.choice(["bfloat16", "float16", "int8"]),
                   host=r.choice(["h1", "h2", None]), mamf_tflops=r.choice([700.5, 3, 0.0, 1e-7]))  # fmt: skip
        for key in extra:
            row[key] = r.choice(["search", "x" * 64, None, 7])
        rows.append(dict(sorted(row.items())))  # as canonical JSON parses them: keys sorted
    # hostile or unusual rows, now and then: another key order, a key missing, a value of any type, not a dict
    for _ in range(r.choice([0, 0, 1, 2])):
        if not rows:
            break
        i = r.randrange(len(rows))
        kind = r.randrange(5) if isinstance(rows[i], dict) else 3
        if kind == 0:
            rows[i] = dict(reversed(list(rows[i].items())))
        elif kind == 1:
            rows[i].pop(r.choice(list(rows[i])))
        elif kind == 2:
            rows[i][r.choice([*lv._ROW_TYPES, *EXTRA])] = r.choice(BAD_VALUES)
        elif kind == 3:
            rows[i] = r.choice([["a"], "row", 7, None])
        else:
            rows[i] = Sub(rows[i])
    return rows


def _read(rows: list) -> lv.Read:
    data = {"accelerator_memory_bytes": "1", "devices": rows, "kind": "bench.capacity-report", "signature": {"a": "b"}}
    doc = intake.Document(None, json.dumps(data, default=str).encode(), data)
    sha = doc.sha256
    rows_read = lv.Rows(rows)
    if all(isinstance(x, dict) for x in rows):
        rows_read.columns(), rows_read.frame()
        try:  # (a worker lays out only rows that passed the check: these may not order)
            rows_read.ranks()
        except TypeError:
            pass
    return doc, (True, "", "digest"), rows_read, sha


def _same(a, b) -> None:
    """The same JSON, every dict's keys in the same order (what canonical JSON and the digests see), and the same
    types (1 is not 1.0, True is not 1); a NaN (which no parser here gives, but the rows are hostile) equals a NaN."""
    assert json.dumps(a, default=repr) == json.dumps(b, default=repr)
    assert _types(a) == _types(b)


def _types(x):
    if isinstance(x, dict):
        return type(x), [(k, _types(v)) for k, v in x.items()]
    if isinstance(x, list):
        return type(x), [_types(v) for v in x]
    return type(x)


def test_rows_columns_are_the_plain_look_ups():
    r = random.Random("columns")
    transposed = 0
    for _ in range(500):
        rows = _random_rows(r)
        if not all(isinstance(x, dict) for x in rows):
            continue
        got = lv.Rows(rows).columns()
        assert got == _plain_columns(rows)
        assert list(got) == list(lv._ROW_TYPES)
        transposed += lv._transposed(rows) is not None
    assert transposed > 100  # the transposition itself was exercised, not only the look-ups


def test_a_packed_read_is_rebuilt_as_it_was_read():
    r = random.Random("packed")
    packed = 0
    for _ in range(400):
        rows = _random_rows(r)
        doc, inspected, rows_read, sha = _read(rows)
        sent = lv._packed((doc, inspected, rows_read))
        packed += isinstance(sent, tuple) and sent[0] == lv._PACKED
        got_doc, got_inspected, got_rows = lv._unpacked(pickle.loads(pickle.dumps(sent, pickle.HIGHEST_PROTOCOL)))
        _same(got_doc.data, doc.data)
        assert got_doc.sha256 == sha and got_doc.path == doc.path and got_inspected == inspected
        assert all(a is b for a, b in zip(got_doc.data["devices"], got_rows, strict=True))  # one set of row objects
        assert type(got_rows) is lv.Rows
        _same(list(got_rows), list(rows_read))
        if all(isinstance(x, dict) for x in rows):
            _same(got_rows.columns(), _plain_columns(rows))
            pd.testing.assert_frame_equal(got_rows.frame(), lv.Rows(rows).frame())
            assert got_rows._ranks == rows_read._ranks
        if sent[0] == lv._PACKED:  # what went back carries no row dict
            assert sent[1][0].data["devices"] is None
            assert not any(isinstance(x, dict) for x in sent[1][0].data.values() if isinstance(x, list))
    assert packed > 150  # most reads took the packed way


def test_rows_that_are_not_the_documents_own_go_back_as_read():
    r = random.Random("own")
    rows = [dict(sorted(dict(GOOD, device=f"GPU-{i}").items())) for i in range(5)]
    doc, inspected, rows_read, _ = _read(rows)
    for other in (lv.Rows([dict(x) for x in rows]), lv.Rows(rows[:4]), [*rows]):
        if isinstance(other, lv.Rows):
            other.columns()
        sent = lv._packed((doc, inspected, other))
        assert sent == (doc, inspected, other)
    assert lv._packed((doc, None, rows_read)) == (doc, None, rows_read)  # not a capacity report's read
    assert lv._packed((doc, inspected, None)) == (doc, inspected, None)  # refused rows
    error = intake.InputError("x")
    assert lv._packed(error) is error and lv._unpacked(error) is error
    assert r  # (deterministic)
