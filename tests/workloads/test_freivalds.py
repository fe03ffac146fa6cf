import math

import pytest
import torch

from bench import precision
from bench.workloads import freivalds

ALL = list(precision.PRECISIONS)


def operands(name, m, k, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    dtype = precision.get(name).torch_dtype
    if dtype == torch.int8:
        return (
            torch.randint(-128, 128, (m, k), generator=g, dtype=dtype),
            torch.randint(-128, 128, (k, n), generator=g, dtype=dtype),
        )
    a = (torch.rand(m, k, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    b = (torch.rand(k, n, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    return a, b


def product(name, a, b):
    """The product as the device computes it: int8 -> int32, fp8 -> bfloat16 through _scaled_mm."""
    if name == "int8":
        return torch._int_mm(a, b) if a.shape[0] > 16 else (a.long() @ b.long()).int()
    if name == "float8_e4m3":
        one = torch.ones(())
        return torch._scaled_mm(a, b.t().contiguous().t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    return a @ b


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("shape", [(256, 256, 256), (96, 300, 40), (1, 513, 7)])
def test_correct_product_passes(name, shape):
    m, k, n = shape
    if name == "float8_e4m3" and any(d % 16 for d in shape):
        pytest.skip("_scaled_mm needs multiples of 16")
    a, b = operands(name, m, k, n)
    result = freivalds.check(a, b, product(name, a, b), precision.get(name), torch.Generator().manual_seed(1))
    assert result.passed, result.reason
    assert result.worst_ratio < 0.5  # well inside the tolerance, not at its edge


@pytest.mark.parametrize("name", ALL)
def test_single_corrupted_element_fails(name):
    a, b = operands(name, 256, 256, 256)
    c = product(name, a, b)
    rms = float(c.double().pow(2).mean().sqrt())
    c[17, 200] += int(10 * rms) if name == "int8" else 10 * rms
    result = freivalds.check(a, b, c, precision.get(name), torch.Generator().manual_seed(1))
    assert not result.passed
    assert result.worst_row == 17
    assert "row 17" in result.reason


@pytest.mark.parametrize("name", ["float64", "float32"])
def test_small_corruption_caught_at_high_precision(name):
    a, b = operands(name, 128, 128, 128)
    c = a @ b
    c[5, 5] += 2e-2  # 0.5% of a typical element: far above float32/64 rounding
    assert not freivalds.check(a, b, c, precision.get(name)).passed


def test_lower_precision_product_fails_a_float32_check():
    a, b = operands("float32", 256, 256, 256)
    c = (a.bfloat16() @ b.bfloat16()).float()
    assert not freivalds.check(a, b, c, precision.get("float32")).passed


def test_non_finite_product_fails():
    a, b = operands("float16", 64, 64, 64)
    c = a @ b
    c[3, 3] = math.inf
    result = freivalds.check(a, b, c, precision.get("float16"))
    assert not result.passed and "non-finite" in result.reason


def test_shape_mismatch_is_an_error():
    a, b = operands("float32", 4, 5, 6)
    with pytest.raises(ValueError):
        freivalds.check(a, b, torch.zeros(6, 4), precision.get("float32"))


def test_chunked_rows_give_the_same_answer(monkeypatch):
    a, b = operands("float32", 300, 64, 50)
    c = a @ b
    whole = freivalds.check(a, b, c, precision.get("float32"), torch.Generator().manual_seed(3))
    monkeypatch.setattr(freivalds, "CHUNK_ROWS", 7)
    chunked = freivalds.check(a, b, c, precision.get("float32"), torch.Generator().manual_seed(3))
    assert chunked.worst_row == whole.worst_row
    assert chunked.worst_ratio == pytest.approx(whole.worst_ratio, rel=1e-9)


def to_tf32(x):
    """Round float32 to tf32 (10 explicit mantissa bits) by round-to-nearest-even on the bit pattern, as tensor cores do."""
    bits = x.view(torch.int32)
    lsb = (bits >> 13) & 1
    return ((bits + 0xFFF + lsb) & ~0x1FFF).view(torch.float32)


def test_tf32_product_passes_tf32_and_fails_float32():
    a, b = operands("float32", 256, 256, 256)
    c = to_tf32(a) @ to_tf32(b)
    assert freivalds.check(a, b, c, precision.get("tf32")).passed
    assert not freivalds.check(a, b, c, precision.get("float32")).passed


def test_int8_check_is_exact():
    a, b = operands("int8", 64, 64, 64)
    c = product("int8", a, b)
    assert freivalds.check(a, b, c, precision.get("int8")).max_abs_error == 0.0
    c[9, 9] += 1  # off by one anywhere is wrong
    assert not freivalds.check(a, b, c, precision.get("int8")).passed


def test_fp8_product_of_bf16_operands_fails_a_bf16_check():
    """A node answering a bf16 product with fp8 arithmetic must not pass as bf16."""
    a, b = operands("bfloat16", 256, 256, 256)
    one = torch.ones(())
    a8, b8 = a.float().to(torch.float8_e4m3fn), b.float().t().contiguous().to(torch.float8_e4m3fn).t()
    c = torch._scaled_mm(a8, b8, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
    assert not freivalds.check(a, b, c, precision.get("bfloat16")).passed
