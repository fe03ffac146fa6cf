"""The exact-row check on version 2 operands: every honest accumulation order passes with a 10x margin, every scheme
cheaper than the claimed precision fails with a 3x margin, and emulations that reach the precision pass (docs/proofs.md's
precision table comes from tests/perf/precision_table.py; here its small sizes)."""

import functools

import numpy as np
import pytest
import torch

from bench import challenge as chl
from bench.challenge import exact_rows, protocol
from tests.perf import precision_table as table


@functools.cache
def scores(dtype: str, n: int) -> dict[str, float]:
    return table.scores(dtype, n)


#: Schemes cheaper than each challenge precision on an H100 (fewer tensor-core cycles than one product of the claimed
#: precision): each must fail with a 3x margin.
CHEAPER = {
    "float32": ["int8 tensor x1", "int8 tensor x2", "int8 row x1", "int8 row x2", "fp8", "fp8 fast-acc", "fp16", "bf16",
                "tf32"],
    "bfloat16": ["int8 tensor x1", "int8 tensor x2", "int8 row x1", "int8 row x2", "fp8", "fp8 fast-acc",
                 "bf16 split-K reduced"],
    "float16": ["int8 tensor x1", "int8 tensor x2", "int8 row x1", "int8 row x2", "fp8", "fp8 fast-acc", "bf16"],
    "float64": [k for k in table.CHEAPER if table.applies("float64", k)],
}  # fmt: skip
#: Emulations as accurate as the claimed precision: they are its capacity and pass.
ACCURATE = {"float32": ["bf16x9", "3xtf32", "int8 row x4"], "bfloat16": ["int8 row x3", "fp16"],
            "float16": ["int8 row x3"], "float64": []}  # fmt: skip


#: The largest honest score each dtype's rule allows here: float32 is judged against a sequential sum's own expected
#: error over a whole row (exact_rows.sequential_scores, pass mark 1.6x it), so its honest orders keep a 1.5x margin,
#: not 10x; every other dtype is held element by element with a 10x margin.
HONEST_MARGIN = {"float32": 1 / 1.5, "bfloat16": 0.1, "float16": 0.1, "float64": 0.1}


@pytest.mark.parametrize("n", [256, 1024])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
def test_every_honest_order_passes_with_its_margin(dtype, n):
    honest = {k: v for k, v in scores(dtype, n).items() if k in table.HONEST}
    assert len(honest) == len(table.HONEST) and all(v <= HONEST_MARGIN[dtype] for v in honest.values()), honest


@pytest.mark.parametrize("n", [256, 1024])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
def test_cheaper_schemes_fail_with_3x_margin_and_accurate_emulations_pass(dtype, n):
    s = scores(dtype, n)
    assert {k: s[k] for k in CHEAPER[dtype] if s[k] < 3} == {}
    assert {k: s[k] for k in ACCURATE[dtype] if s[k] > 1} == {}


def test_bf16x3_and_int8x3_fail_a_float32_challenge_at_1024():
    """Failed before the float32 rule judged a row against a sequential sum's expected error (3.5 u sqrt(n) t per
    element admitted both from n = 1024): bf16x3 scores 4.3, int8x3 1.4 (per row and per tensor scales)."""
    s = scores("float32", 1024)
    assert s["bf16x3"] > 3 and s["int8 row x3"] > 1 and s["int8 tensor x3"] > 1


def test_bf16x3_fails_a_float32_challenge_at_256():
    assert scores("float32", 256)["bf16x3"] > 3


def test_bf16x3_fails_at_the_default_inner_dimension():
    """At `challenge issue`'s float32 K (2n folded in runs of 64, as at K = 64) bf16x3 fails by far (about 17);
    unfolded at K = 2n it scored 2.9 at n = 1024: each quadrupling of K halves its score, as a sequential sum's error
    grows and bf16x3's does not (docs/proofs.md)."""
    inner = chl.default_inner("float32", 1024)
    assert table.scores("float32", 1024, inner=inner, fold=chl.default_fold("float32", inner))["bf16x3"] > 10


def test_the_float32_default_k_is_where_every_cheaper_scheme_still_fails_by_3x():
    """protocol.ACCURACY_INNER's margin, through exact_rows' own row rule: at K = 64 the most accurate cheap scheme
    (int8 x3 with block scales of 32, six int8 products) scores above 3 and honest orders below 0.7; at twice that K
    it scores below 3, so raising the default K fails here (docs/proofs.md: 3.8-4.0 at K = 64, 2.6-2.8 at 128)."""
    from tests.adversarial import block_schemes

    k = protocol.ACCURACY_INNER["float32"]
    assert chl.default_inner("float32", 4096, fold=False) == k == protocol.FOLD
    schemes = {
        "int8 block32 x3": block_schemes.SCHEMES["int8 block32 x3"],
        "int8 row x3": table.CHEAPER["int8 row x3"],
        **{name: table.HONEST[name] for name in ("torch", "sequential FMA", "sequential", "blocked 256")},
    }
    at = table.scores("float32", 1024, inner=k, schemes=schemes)
    assert min(at["int8 block32 x3"], at["int8 row x3"]) > 3, at
    assert max(at[name] for name in ("torch", "sequential FMA", "sequential", "blocked 256")) < 0.7, at
    past = table.scores("float32", 1024, inner=2 * k, schemes={"int8 block32 x3": schemes["int8 block32 x3"]})
    assert past["int8 block32 x3"] < 3, past


def test_check_picks_secret_rows_and_fails_a_tf32_product():
    a = chl.operand("11" * 32, "n", "d", 0, "A", 512, "float32", 2)
    b = chl.operand("11" * 32, "n", "d", 0, "B", 512, "float32", 2)
    good = exact_rows.check(a, b, a @ b, "float32", np.random.default_rng(1))
    assert good.passed and good.score < 0.5 and len(set(good.rows)) == exact_rows.ROWS
    bad = exact_rows.check(a, b, table.tf32(a) @ table.tf32(b), "float32", np.random.default_rng(1))
    assert not bad.passed and "cheaper precision" in bad.reason
    nan = (a @ b).clone()
    nan[bad.rows[0], 3] = float("nan")
    assert not exact_rows.check(a, b, nan, "float32", np.random.default_rng(1)).passed


def test_tf32_rounding_keeps_ten_mantissa_bits():
    x = torch.tensor([1.0 + 2.0**-10, 1.0 + 2.0**-11 + 2.0**-20, 1.0 + 2.0**-12], dtype=torch.float32)
    assert table.tf32(x).tolist() == [1.0 + 2.0**-10, 1.0 + 2.0**-10, 1.0]


def test_narrow_float32_rows_keep_the_per_element_rule_and_honest_products_pass():
    """The float32 row rule judged rows of 64 elements too: a few elements of large expected error dominate a narrow
    row's mean square, and honest torch products scored above 1 in 3 of 400 challenges (an honest answer refused,
    and a flaky CI test). Rows narrower than MIN_ROW_WIDTH keep the per-element allowance: 40 fixed nonces at n = 64
    all pass with the 10x margin."""
    assert not exact_rows.sequential_rule("float32", 2, 64) and exact_rows.sequential_rule("float32", 2, 256)
    worst = 0.0
    for i in range(40):
        nonce = f"{i:064x}"
        a = chl.operand(nonce, "honest", "fp-honest", 0, "A", 64, "float32", 2)
        b = chl.operand(nonce, "honest", "fp-honest", 0, "B", 64, "float32", 2)
        worst = max(worst, exact_rows.check(a, b, a @ b, "float32", np.random.default_rng(i), operands=2).score)
    assert worst <= 0.2, worst
