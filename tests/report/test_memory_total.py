"""memory_total sums a column of device byte counts at once where its dtype allows: the same integer as reading each
cell as _count does, for integer columns, float columns with gaps, and anything else (None, bools, strings)."""

import math
import random

import pandas as pd

from bench.report.capacity import _count, memory_total


def test_memory_total_is_the_sum_of_each_cell_read_as_a_count():
    r = random.Random("memory")
    big = 80 * 2**30
    columns = [
        pd.Series([big] * 1000 + [0, -5]),  # int64
        pd.Series([float(big), math.nan, 1.5e9, -2.0, math.inf, 0.0] * 50),  # float64 with gaps
        pd.Series([big, None, True, False, "8", 3.0, -1, math.nan] * 30, dtype=object),  # anything
        pd.Series([2**62, 2**62, 2**62], dtype="uint64"),  # beyond int64 when summed: exact as Python ints
        pd.Series([r.randrange(1, 2**40) for _ in range(500)]),
        pd.Series([], dtype=float),
    ]
    for col in columns:
        assert memory_total(col) == sum(_count(x) for x in col.tolist())
    assert memory_total(columns[3]) == 3 * 2**62
    assert type(memory_total(columns[1])) is int
