"""Version 2 operands: the formula of bench.challenge.generator, written again here in plain Python integers (what an
auditor's own implementation would do), matches torch's int32 kernels bit for bit; every value has a full significand
and the spread of binades the module promises; the rows the verifier regenerates alone are the rows of the whole
matrix; and the CUDA fake's device gives the same bits as the CPU."""

import hashlib
import struct

import pytest
import torch

from bench import challenge as chl
from bench.challenge import generator
from tests.fakes.cuda import device_of

M32 = 0xFFFFFFFF


def _mix(x: int) -> int:
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    return x ^ (x >> 16)


def _reference(seed: bytes, r: int, c: int, dtype: str) -> float:
    k = [int.from_bytes(seed[4 * i : 4 * i + 4], "little") for i in range(4)]
    h, g = _mix(_mix(r ^ k[0]) ^ k[1]), _mix(_mix(c ^ k[2]) ^ k[3])
    w0 = _mix(h ^ g)
    top = _mix(h ^ g ^ 1) if dtype == "float64" else w0
    binades = {"float64": 16, "float32": 16, "bfloat16": 16, "float16": 8}[dtype]
    e = (top >> 27) & (binades - 1)
    bits = {"float64": 52, "float32": 23, "bfloat16": 7, "float16": 10}[dtype]
    m = ((top & 0xFFFFF) << 32 | w0) if dtype == "float64" else w0 & ((1 << bits) - 1)
    value = (1 + m / 2**bits) * 2.0 ** (-1 - e)
    return -value if top >> 31 else value


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
def test_matches_the_formula_in_plain_integers(dtype):
    seed = chl.seed("cd" * 32, "node", "GPU-1", 3, "A")
    a = chl.operand("cd" * 32, "node", "GPU-1", 3, "A", 300, dtype, 2)
    for r, c in [(0, 0), (1, 0), (0, 1), (17, 250), (299, 299), (123, 45)]:
        assert float(a[r, c]) == _reference(seed, r, c, dtype), (r, c)


@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
def test_full_significands_over_the_promised_binades(dtype):
    a = chl.operand("cd" * 32, "node", "GPU-1", 0, "B", 512, dtype, 2).double()
    mags = a.abs()
    binades = generator.EXPONENT_BINADES[dtype]
    exps = torch.floor(torch.log2(mags)).long()
    assert int(exps.max()) == -1 and int(exps.min()) == -binades
    assert len(torch.unique(exps)) == binades
    bits = generator.LAYOUT[dtype][0]
    lowest = torch.round(mags / torch.ldexp(torch.ones_like(mags), exps - bits)).long() & 1
    assert 0.45 < float(lowest.double().mean()) < 0.55  # the last significand bit is used
    assert 0.45 < float((a < 0).double().mean()) < 0.55


def test_the_verifiers_rows_are_the_matrix_rows_and_seeds_differ():
    full = chl.operand("cd" * 32, "n", "d", 0, "A", 1000, "float32", 2)
    rows = torch.tensor([0, 7, 999, 500])
    assert torch.equal(chl.operand("cd" * 32, "n", "d", 0, "A", 1000, "float32", 2, rows=rows), full[rows])
    other = chl.operand("cd" * 32, "n", "d", 0, "B", 1000, "float32", 2)
    assert float((other == full).double().mean()) < 0.01


def test_version_1_challenges_keep_their_operands():
    """A challenge issued before the field existed names no generator and keeps its Philox operands."""
    a = chl.operand("cd" * 32, "n", "d", 0, "A", 64, "float32", 1)
    assert float(a.abs().max()) <= 1.0 and float(a.abs().min()) < 2**-10  # uniform: no lower bound of 2**-16
    assert struct.pack("<f", float(a[0, 0])) == struct.pack(
        "<f", float(chl.operand("cd" * 32, "n", "d", 0, "A", 64, "float32")[0, 0])
    )
    with pytest.raises(ValueError, match="unknown operand generator"):
        chl.operand("cd" * 32, "n", "d", 0, "A", 64, "float32", 3)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_generated_on_the_device_bit_identical_to_the_cpu(fake_cuda, dtype):
    fake_cuda(count=1)
    cpu = chl.operand("ef" * 32, "node", "GPU-0", 1, "A", 256, dtype, 2)
    dev = chl.operand("ef" * 32, "node", "GPU-0", 1, "A", 256, dtype, 2, on="cuda:0")
    assert device_of(dev) == "cuda:0"  # made there, not on the host and copied
    assert torch.equal(dev.to("cpu"), cpu)
    assert (
        hashlib.sha256(chl.row_bytes(dev).tobytes()).digest() == hashlib.sha256(chl.row_bytes(cpu).tobytes()).digest()
    )


def test_a_merkle_root_hashed_on_a_pool_is_the_same_root():
    """The node hashes a product's leaves on every core (LEAF_CHUNK rows a task): same root as one thread, and still
    bound to every row and its position."""
    import concurrent.futures

    from bench.challenge import protocol

    c = chl.operand("cd" * 32, "n", "d", 0, "A", protocol.LEAF_CHUNK * 3 + 5, "bfloat16", 2)
    rows = chl.row_bytes(c)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert chl.merkle_root(rows, pool) == chl.merkle_root(rows)
        swapped = rows.copy()
        swapped[[0, -1]] = swapped[[-1, 0]]
        assert chl.merkle_root(swapped, pool) != chl.merkle_root(rows)


def test_a_rectangular_operand_is_keyed_by_row_and_column_alone():
    """A (n x K) and B (K x n) of a challenge with an inner dimension: each element is the formula's for its row and
    column, so the square operand is the n x n corner of the long one, and the verifier's rows are the matrix rows."""
    seed = chl.seed("cd" * 32, "node", "GPU-1", 3, "A")
    a = chl.operand("cd" * 32, "node", "GPU-1", 3, "A", 100, "float32", 2, inner=700)
    b = chl.operand("cd" * 32, "node", "GPU-1", 3, "B", 100, "float32", 2, inner=700)
    assert a.shape == (100, 700) and b.shape == (700, 100)
    assert torch.equal(a[:, :100], chl.operand("cd" * 32, "node", "GPU-1", 3, "A", 100, "float32", 2))
    for r, c in [(0, 699), (99, 650), (42, 123)]:
        assert float(a[r, c]) == _reference(seed, r, c, "float32"), (r, c)
    rows = torch.tensor([3, 699, 512])
    assert torch.equal(
        chl.operand("cd" * 32, "node", "GPU-1", 3, "B", 100, "float32", 2, inner=700, rows=rows), b[rows]
    )
    with pytest.raises(ValueError, match="square"):
        chl.operand("cd" * 32, "node", "GPU-1", 3, "A", 64, "float32", 1, inner=128)


def test_a_fused_generator_is_used_only_when_it_gives_the_formulas_bits(monkeypatch):
    """generator.fuse keeps a compiled kernel only after it reproduced eager's bits on a probe; then matrix() fills
    whole blocks with it (same operands). A compiler that gets one bit wrong, or fails, leaves eager in use."""
    monkeypatch.setattr(generator, "_FUSED", {})
    calls = []

    def flipped(f, **kw):
        return lambda h, g: f(h, g).view(torch.int32).bitwise_xor(1).view(torch.float32)

    monkeypatch.setattr(torch, "compile", flipped)
    assert "differ" in generator.fuse("cpu", "float32") and not generator.is_fused("cpu", "float32")

    def broken(f, **kw):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    assert "no C++ compiler" in generator.fuse("cpu", "float32") and not generator.is_fused("cpu", "float32")

    def faithful(f, **kw):
        def run(h, g):
            calls.append(tuple(h.shape))
            return f(h, g)

        return run

    eager = chl.operand("cd" * 32, "n", "d", 0, "A", 300, "float32", 2, inner=900)
    monkeypatch.setattr(torch, "compile", faithful)
    assert generator.fuse("cpu", "float32") is None and generator.is_fused("cpu", "float32")
    calls.clear()
    assert torch.equal(chl.operand("cd" * 32, "n", "d", 0, "A", 300, "float32", 2, inner=900), eager)
    assert calls == [(300,)]  # one block: a fused kernel keeps no temporaries, so it fills up to FUSED_CHUNK at once
    assert not generator.is_fused("cpu", "bfloat16")


def test_no_fused_cuda_generator_without_triton(fake_cuda, monkeypatch):
    """Under the CUDA fake (no Triton on this machine) the node's warm-up leaves eager generation in use, at once."""
    fake_cuda(count=1)
    monkeypatch.setattr(generator, "_FUSED", {})
    monkeypatch.setattr(generator.importlib.util, "find_spec", lambda name: None)
    assert "Triton" in generator.fuse("cuda:0", "bfloat16")
