"""The exact-row check tells the claimed arithmetic from a cheaper one, with 10x margin for honest products (the
README's precision table comes from tests/perf/precision_table.py; here its small sizes)."""

import numpy as np
import pytest
import torch

from bench.challenge import exact_rows
from tests.perf import precision_table as table


@pytest.mark.parametrize("n", [256, 1024])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
def test_honest_passes_with_10x_margin_and_cheaper_arithmetic_fails(dtype, n):
    scores = table.scores(dtype, n)
    honest = {k: v for k, v in scores.items() if k.startswith("honest")}
    cheaper = {k: v for k, v in scores.items() if not k.startswith("honest")}
    assert honest and all(v <= 0.1 for v in honest.values()), honest
    assert cheaper and all(v > 1.0 for v in cheaper.values()), cheaper


def test_check_picks_secret_rows_and_fails_a_tf32_product():
    from bench import challenge as chl

    a = chl.operand("11" * 32, "n", "d", 0, "A", 512, "float32")
    b = chl.operand("11" * 32, "n", "d", 0, "B", 512, "float32")
    good = exact_rows.check(a, b, a @ b, "float32", np.random.default_rng(1))
    assert good.passed and good.score < 0.1 and len(set(good.rows)) == exact_rows.ROWS
    bad = exact_rows.check(a, b, table.tf32(a) @ table.tf32(b), "float32", np.random.default_rng(1))
    assert not bad.passed and "cheaper precision" in bad.reason
    nan = (a @ b).clone()
    nan[bad.rows[0], 3] = float("nan")
    assert not exact_rows.check(a, b, nan, "float32", np.random.default_rng(1)).passed


def test_tf32_rounding_keeps_ten_mantissa_bits():
    x = torch.tensor([1.0 + 2.0**-10, 1.0 + 2.0**-11 + 2.0**-20, 1.0 + 2.0**-12], dtype=torch.float32)
    assert table.tf32(x).tolist() == [1.0 + 2.0**-10, 1.0 + 2.0**-10, 1.0]
