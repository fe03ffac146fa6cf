"""A capacity report's device rows are checked column by column (leaves._valid_columns) before the row loop: whatever
rows it is given, _rows accepts what the loop alone accepts and refuses with the loop's message what it refuses."""

import math
import random

import pytest

from bench.disclosure import leaves as lv

GOOD = {"device": "GPU-1", "precision": "bfloat16", "kind": "cuda", "model": "NVIDIA H100", "node": "n1", "host": "h1",
        "mamf_tflops": 700.5, "msmf_tflops": None, "peak_tflops": 989.4, "memory_bytes": 80 * 2**30,
        "measured_utc": "2026-11-27T10:00:00Z", "tier": "bounded", "why": None, "serial": None, "board": None,
        "pci": None, "samples": None}  # fmt: skip
BAD_VALUES = [True, False, math.nan, math.inf, -math.inf, -1, -0.5, 1e8, 10**7 + 1, "7", None, [], {}, 3, 0, 0.0,
              "yesterday", "2026-11-27T10:00:00", "reported", "platinum", 2**70]  # fmt: skip


def _outcome(rows):
    try:
        return "ok", list(lv._rows({"devices": rows}, "cap.json"))
    except lv.DisclosureError as exc:
        return "refused", str(exc)


def test_the_column_check_agrees_with_the_row_loop(monkeypatch):
    r = random.Random("rows")
    refused = accepted = 0
    for _ in range(400):
        rows = [dict(GOOD, device=f"GPU-{i}") for i in range(r.randrange(0, 6))]
        for _ in range(r.randrange(0, 3)):
            dicts = [row for row in rows if isinstance(row, dict)]
            if dicts and r.random() < 0.9:
                row = r.choice(dicts)
                key = r.choice([*lv._ROW_TYPES, "extra"])
                if r.random() < 0.1:
                    row.pop(key, None)
                else:
                    row[key] = r.choice(BAD_VALUES)
            else:
                rows.insert(r.randrange(len(rows) + 1), r.choice([None, "row", 7, []]))
        both = _outcome(rows)
        with monkeypatch.context() as m:
            m.setattr(lv, "_valid_columns", lambda rows: False)  # the loop alone
            assert _outcome(rows) == both
        refused += both[0] == "refused"
        accepted += both[0] == "ok"
    assert refused > 100 and accepted > 50


@pytest.mark.parametrize("key, value", [("mamf_tflops", True), ("peak_tflops", math.nan), ("memory_bytes", -1),
                                        ("msmf_tflops", 2e7), ("tier", "gold"), ("measured_utc", "soon")])  # fmt: skip
def test_a_bad_cell_is_refused_naming_its_row(key, value):
    rows = [dict(GOOD, device=f"GPU-{i}") for i in range(5)]
    rows[3][key] = value
    with pytest.raises(lv.DisclosureError, match=rf"devices\[3\]\.{key}"):
        lv._rows({"devices": rows}, "cap.json")


def test_columns_hold_each_distinct_string_once_and_the_same_values():
    """Rows.columns gives each field's equal strings one object (a forked worker then copies the pages of a few
    strings, not of a million): the same values of the same types, in the same order; a column holding anything but
    strings and None (not yet checked) is the rows' own values, so 1, 1.0 and True stay apart."""
    r = random.Random("shared")
    for _ in range(200):
        rows = []
        for i in range(r.randrange(0, 30)):
            row = dict(
                GOOD, device=f"GPU-{i % 7}", host=r.choice(["h1", "h2", None]), model=f"NVIDIA H{r.choice([100, 200])}"
            )
            if r.random() < 0.2:
                row[r.choice(list(lv._ROW_TYPES))] = r.choice([1, 1.0, True, 0, False, 0.0, None, "1", "x"])
            rows.append(row)
        columns = lv.Rows(rows).columns()
        for key in lv._ROW_TYPES:
            plain = [row.get(key) for row in rows]
            got = columns[key]
            assert [(type(x), x) for x in got] == [(type(x), x) for x in plain]
            if key in lv._STRING_FIELDS and set(map(type, plain)) <= {str, type(None)}:
                assert len({id(x) for x in got if x is not None}) == len({x for x in got if x is not None})
