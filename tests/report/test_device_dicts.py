"""capacity.device_dicts (each row zipped in C, NaN searched a float column at a time) gives the comprehension it
replaced, on randomized rows: NaN and None in any column, numpy floats, other widths refused alike."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from bench.report import capacity
from bench.report.devices import COLUMNS


def _slow(rows, order):
    return [{k: (None if isinstance(x, float) and math.isnan(x) else x) for k, x in zip(COLUMNS, rows[i], strict=True)}
            for i in order]  # fmt: skip


def _value(r: random.Random):
    return r.choice([math.nan, float("nan"), np.float64("nan"), np.float64(2.5), None, 1.5, 0.0, -math.inf, 3, True,
                     "GPU-x", "", np.int64(4)])  # fmt: skip


@pytest.mark.parametrize("seed", range(20))
def test_device_dicts_are_the_comprehension(seed):
    r = random.Random(seed)
    rows = [
        tuple(_value(r) if r.random() < 0.3 else f"v{c}" for c in range(len(COLUMNS)))
        for _ in range(r.randrange(0, 60))
    ]
    order = r.sample(range(len(rows)), r.randrange(len(rows) + 1))
    got, want = capacity.device_dicts(rows, order), _slow(rows, order)
    assert got == want or repr(got) == repr(want)  # NaN kept (-inf, numpy values) compare by repr
    assert [list(d) for d in got] == [list(COLUMNS)] * len(order)
    assert [[type(x) for x in d.values()] for d in got] == [[type(x) for x in d.values()] for d in want]
    for g, w in zip(got, want, strict=True):
        for k in COLUMNS:
            assert (g[k] is None) == (w[k] is None)


def test_a_row_of_another_width_is_refused_alike():
    rows = [tuple(range(len(COLUMNS))), tuple(range(len(COLUMNS) - 1))]
    with pytest.raises(ValueError):
        capacity.device_dicts(rows, [0, 1])
    assert capacity.device_dicts(rows, [0]) == _slow(rows, [0])  # only the rows named are built
