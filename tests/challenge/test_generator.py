"""Version 2 operands: the formula of bench.challenge.generator, written again here in plain Python integers (what an
auditor's own implementation would do), matches torch's int32 kernels bit for bit; every value has a full significand
and the spread of binades the module promises; the rows the verifier regenerates alone are the rows of the whole
matrix; and the CUDA fake's device gives the same bits as the CPU."""

import datetime as dt
import hashlib
import struct

import pytest
import torch

from bench import challenge as chl
from bench.challenge import generator, native
from bench.challenge.protocol import seed
from tests.fakes.cuda import device_of

M32 = 0xFFFFFFFF


def _mix(x: int) -> int:
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    return x ^ (x >> 16)


def _reference(seed: bytes, r: int, c: int, dtype: str, version: int = 2) -> float:
    k = [int.from_bytes(seed[4 * i : 4 * i + 4], "little") for i in range(4)]
    if version == 3 and dtype in ("bfloat16", "float16"):  # two elements a word: column c is half c % 2 of word c // 2
        h, g = _mix(_mix(r ^ k[0]) ^ k[1]), _mix(_mix(c // 2 ^ k[2]) ^ k[3])
        u = _mix(h ^ g) >> 16 * (c % 2) & 0xFFFF
        bits, binades = (7, 16) if dtype == "bfloat16" else (10, 8)
        value = (1 + (u & ((1 << bits) - 1)) / 2**bits) * 2.0 ** (-1 - ((u >> 11) & (binades - 1)))
        return -value if u >> 15 else value
    h, g = _mix(_mix(r ^ k[0]) ^ k[1]), _mix(_mix(c ^ k[2]) ^ k[3])
    w0 = _mix(h ^ g)
    top = _mix(h ^ g ^ 1) if dtype == "float64" else w0
    binades = {"float64": 16, "float32": 16, "bfloat16": 16, "float16": 8}[dtype]
    e = (top >> 27) & (binades - 1)
    bits = {"float64": 52, "float32": 23, "bfloat16": 7, "float16": 10}[dtype]
    m = ((top & 0xFFFFF) << 32 | w0) if dtype == "float64" else w0 & ((1 << bits) - 1)
    value = (1 + m / 2**bits) * 2.0 ** (-1 - e)
    return -value if top >> 31 else value


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
def test_matches_the_formula_in_plain_integers(dtype, version):
    seed = chl.seed("cd" * 32, "node", "GPU-1", 3, "A")
    a = chl.operand("cd" * 32, "node", "GPU-1", 3, "A", 299, dtype, version)
    for r, c in [(0, 0), (1, 0), (0, 1), (17, 250), (298, 298), (123, 45), (5, 297)]:
        assert float(a[r, c]) == _reference(seed, r, c, dtype, version), (r, c)


def test_version_3_changes_only_the_half_precisions():
    """Old challenges keep their operands: version 3 gives float32 and float64 the bits of version 2, and the half
    precisions new ones (a new version is what lets a version 2 challenge still verify)."""
    for dtype in ("float32", "float64", "bfloat16", "float16"):
        v2, v3 = (chl.operand("cd" * 32, "n", "d", 0, "A", 64, dtype, v, inner=96) for v in (2, 3))
        assert torch.equal(v2, v3) == (dtype not in generator.PAIRED), dtype


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("dtype", ["float64", "float32", "bfloat16", "float16"])
def test_full_significands_over_the_promised_binades(dtype, version):
    a = chl.operand("cd" * 32, "node", "GPU-1", 0, "B", 512, dtype, version).double()
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
        chl.operand("cd" * 32, "n", "d", 0, "A", 64, "float32", 4)


@pytest.mark.parametrize(("dtype", "version"), [("float32", 2), ("bfloat16", 2), ("bfloat16", 3), ("float16", 3)])
def test_generated_on_the_device_bit_identical_to_the_cpu(fake_cuda, dtype, version):
    fake_cuda(count=1)
    cpu = chl.operand("ef" * 32, "node", "GPU-0", 1, "A", 256, dtype, version, inner=255)
    dev = chl.operand("ef" * 32, "node", "GPU-0", 1, "A", 256, dtype, version, inner=255, on="cuda:0")
    assert device_of(dev) == "cuda:0"  # made there, not on the host and copied
    assert torch.equal(dev.to("cpu"), cpu)
    assert (
        hashlib.sha256(chl.row_bytes(dev).tobytes()).digest() == hashlib.sha256(chl.row_bytes(cpu).tobytes()).digest()
    )


@pytest.mark.parametrize(("dtype", "version"), [("float32", 3), ("bfloat16", 3), ("float16", 3), ("bfloat16", 2)])
def test_operands_have_no_structure_an_operator_could_exploit(dtype, version):
    """What a weak generator would hand an operator: low rank (a product in O(n^2 r)), repeated or related rows and
    columns (reuse one dot product), or halves of a word that predict each other (version 3 pairs two elements in a
    word). Over 512 x 512 operands: full numerical rank with singular values where a random matrix's are (the smallest
    about 1/n of the largest, Edelman), no two rows or columns equal or correlated beyond sqrt(1/n) noise (6 sigma),
    and the two elements of a word uncorrelated in sign, exponent and significand."""
    n = 512
    a = chl.operand("ab" * 32, "n", "d", 0, "A", n, dtype, version).double()
    s = torch.linalg.svdvals(a)
    assert float(s[-1] / s[0]) > 1e-5 and int(torch.linalg.matrix_rank(a)) == n
    for m in (a, a.T):
        unit = m / m.norm(dim=1, keepdim=True)
        corr = (unit @ unit.T - torch.eye(n, dtype=torch.float64)).abs()
        assert float(corr.max()) < 6 / n**0.5  # one row/column is no scaled copy or near copy of another
        assert len(torch.unique(m, dim=0)) == n
    even, odd = a[:, 0::2].flatten(), a[:, 1::2].flatten()
    features = [lambda x: torch.sign(x), lambda x: torch.floor(torch.log2(x.abs())),
                lambda x: torch.frexp(x.abs()).mantissa]  # fmt: skip
    for feature in features:
        x, y = feature(even), feature(odd)
        r = torch.corrcoef(torch.stack([x, y]))[0, 1]
        assert abs(float(r)) < 6 / len(x) ** 0.5, float(r)


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
    whole blocks with it (same operands). A compiler that gets one bit wrong, or fails, leaves eager in use. (The C
    kernel, which matrix() prefers for float32 on a CPU, is off here: test_the_c_kernel_gives_the_formulas_bits.)"""
    monkeypatch.setattr(generator, "_FUSED", {})
    monkeypatch.setattr(generator, "_NATIVE", {"float32": "off in this test"})
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
    assert calls == [(300,)]  # one call: a fused kernel keeps no temporaries, so its output is the whole operand
    assert not generator.is_fused("cpu", "bfloat16")


def test_no_fused_cuda_generator_without_triton(fake_cuda, monkeypatch):
    """Under the CUDA fake (no Triton on this machine) the node's warm-up leaves eager generation in use, at once."""
    fake_cuda(count=1)
    monkeypatch.setattr(generator, "_FUSED", {})
    monkeypatch.setattr(generator.importlib.util, "find_spec", lambda name: None)
    assert "Triton" in generator.fuse("cuda:0", "bfloat16")


def test_the_node_fuses_the_generator_on_a_cpu_by_default_and_answers_eager_where_it_cannot(tmp_path, monkeypatch):
    """warm() compiles the generator for every dtype on a CPU too (its share of a CPU window is what the proof loses);
    where torch.compile fails, as on a CI runner without a C compiler, the answer is generated eager, same bits."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    asked = []
    monkeypatch.setattr(generator, "fuse", lambda device, dtype: asked.append((device, dtype)))
    cpu = {"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "host-a"}
    chl.warm(cpu)
    assert asked == [("cpu", d) for d in chl.DTYPES]
    asked.clear()
    chl.warm(cpu, fuse=False)
    assert asked == []
    monkeypatch.undo()

    def broken(f, **kw):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(generator, "_FUSED", {})
    monkeypatch.setattr(generator, "_NATIVE", {})
    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(generator.bench_native, "compile_library", lambda source: (None, "no C compiler (a test)"))
    chl.warm(cpu)
    assert generator.native() == "no C compiler (a test)"
    assert not any(generator.native_in_use("cpu", d, 3) for d in chl.DTYPES)  # the paired kernel's dtypes too
    assert not any(generator.is_fused("cpu", d) for d in chl.DTYPES)
    key = Ed25519PrivateKey.generate()
    issued = chl.issue(Ed25519PrivateKey.generate(), dtype="float32", n=64, products=1, window=dt.timedelta(hours=1),
                       nodes=None)  # fmt: skip
    ch = chl.load_challenge(_write(tmp_path, issued))
    drop = tmp_path / "drop"
    drop.mkdir()
    summary = chl.answer(ch, "node", {"host": {"hostname": "node", "physical_cores": 2}}, [cpu], drop, key)
    assert summary["generator"] == {"cpu": "eager"}
    a, b = (chl.operand(ch.nonce, "node", "host-a", 0, w, 64, "float32", 2, inner=ch.inner) for w in "AB")
    commitment = next(p for p in drop.iterdir() if p.name.endswith(chl.COMMIT_SUFFIX))
    assert chl.merkle_root(chl.row_bytes(a @ b)) in commitment.read_text()


def _write(tmp_path, data):
    from bench.report.store import dumps, write_atomic

    path = tmp_path / "challenge.json"
    write_atomic(path, dumps(data))
    return path


def test_a_fused_kernel_that_fails_when_called_leaves_eager_in_use(monkeypatch):
    """A compiled kernel may have to be recompiled for a new shape, and that can fail (as under the CUDA fake, where
    torch.compile asks CUDA for its RNG state): the operand is then generated eager, the same bits, and the kernel
    is dropped."""
    eager = chl.operand("cd" * 32, "n", "d", 0, "A", 64, "bfloat16", 3, inner=96)

    def failing(h, g):
        raise AssertionError("Torch not compiled with CUDA enabled")

    monkeypatch.setattr(generator, "_FUSED", {("cpu", "bfloat16", 3): failing})
    monkeypatch.setattr(generator, "_NATIVE", {})  # the C kernel, where native() kept it, comes before a fused one
    assert torch.equal(chl.operand("cd" * 32, "n", "d", 0, "A", 64, "bfloat16", 3, inner=96), eager)
    assert not generator.is_fused("cpu", "bfloat16")


@pytest.mark.parametrize("version", [2, 3])
def test_the_c_kernel_gives_the_formulas_bits(monkeypatch, version):
    """generator_kernel.c (float32 on a CPU, preferred by matrix() once native() kept it) gives eager's bits: a
    ragged operand (300 x 700, blocks of rows not dividing it), a subset of its rows (what the verifier regenerates),
    and written into a reused buffer (a node's previous operands) the same bits, in place."""
    why = generator.native()
    if why and why.startswith("no C compiler"):
        pytest.skip(why)
    assert why is None and generator.native_in_use("cpu", "float32"), why
    monkeypatch.setattr(generator, "CHUNK", 7 * 700)
    fast = chl.operand("cd" * 32, "n", "d", 0, "A", 300, "float32", version, inner=700)
    rows = torch.tensor([299, 0, 64])
    part = chl.operand("cd" * 32, "n", "d", 0, "A", 300, "float32", version, inner=700, rows=rows)
    spent = torch.zeros(300, 700)
    into = chl.operand("cd" * 32, "n", "d", 0, "A", 300, "float32", version, inner=700, out=spent)
    monkeypatch.setattr(generator, "_NATIVE", {"float32": "off: eager's bits"})
    monkeypatch.setattr(generator, "_FUSED", {})
    eager = chl.operand("cd" * 32, "n", "d", 0, "A", 300, "float32", version, inner=700)
    assert torch.equal(fast.view(torch.int32), eager.view(torch.int32))
    assert torch.equal(part, eager[rows])
    assert into.data_ptr() == spent.data_ptr() and torch.equal(into, eager)


def test_a_c_kernel_whose_vector_path_differs_is_not_used(monkeypatch, tmp_path):
    """The same for generator_kernel.c's AVX-512 path (non-temporal stores, 16 elements a step), which writes every
    aligned element: one significand bit flipped there alone is refused by native()'s probe."""
    source = generator.NATIVE_SOURCE.read_text()
    assert "_mm512_set1_epi32((int)0x807fffffu)" in source
    (tmp_path / "bad.c").write_text(
        source.replace("_mm512_set1_epi32((int)0x807fffffu)", "_mm512_set1_epi32((int)0x807ffffeu)")
    )
    monkeypatch.setattr(generator, "NATIVE_SOURCE", tmp_path / "bad.c")
    monkeypatch.setattr(generator, "_NATIVE", {})
    lib, why = native.compile_library(tmp_path / "bad.c")
    if lib is None:
        pytest.skip(why)
    if lib.float32_isa() != 512:
        pytest.skip("no AVX-512 build here: the vector path is not compiled")
    why = generator.native()
    assert why is not None and "differ" in why and not generator.native_in_use("cpu", "float32")


def test_a_c_kernel_whose_bits_differ_is_not_used(monkeypatch, tmp_path):
    """native() keeps the C kernel only if its probe gives eager's bits: one significand bit flipped is refused, and
    operands are generated by the torch path."""
    source = generator.NATIVE_SOURCE.read_text()
    assert "(w & 0x807fffffu)" in source
    (tmp_path / "bad.c").write_text(source.replace("(w & 0x807fffffu)", "(w & 0x807ffffeu)"))
    monkeypatch.setattr(generator, "NATIVE_SOURCE", tmp_path / "bad.c")
    monkeypatch.setattr(generator, "_NATIVE", {})
    why = generator.native()
    if why and why.startswith("no C compiler"):
        pytest.skip(why)
    assert "differ" in why and not generator.native_in_use("cpu", "float32")
    a = chl.operand("cd" * 32, "n", "d", 0, "A", 64, "float32", 2, inner=96)
    key = seed("cd" * 32, "n", "d", 0, "A")
    assert all(float(a[r, c]) == _reference(key, r, c, "float32") for r, c in [(0, 0), (63, 95), (17, 40)])


@pytest.mark.parametrize("dtype", generator.PAIRED)
def test_the_paired_c_kernel_gives_the_formulas_bits(monkeypatch, dtype):
    """generator_kernel.c's paired_block (version 3 bfloat16 and float16 on a CPU) gives eager's bits: an even width
    (words, the vector path) and an odd one (the last word's high half dropped), blocks of rows not dividing the
    operand, a subset of rows, and into a reused buffer in place (a node's previous operands: no fresh pages).
    Version 2 of the same dtype is not its formula and stays off it."""
    why = generator.native()
    if why and why.startswith("no C compiler"):
        pytest.skip(why)
    assert generator.native_in_use("cpu", dtype, 3) and not generator.native_in_use("cpu", dtype, 2)
    monkeypatch.setattr(generator, "CHUNK", 7 * 700)
    rows = torch.tensor([299, 0, 64])
    got = {}
    for width in (700, 701):
        spent = torch.zeros(300, width, dtype=getattr(torch, dtype))
        got[width] = (chl.operand("cd" * 32, "n", "d", 0, "A", 300, dtype, 3, inner=width),
                      chl.operand("cd" * 32, "n", "d", 0, "A", 300, dtype, 3, inner=width, rows=rows),
                      chl.operand("cd" * 32, "n", "d", 0, "A", 300, dtype, 3, inner=width, out=spent), spent)  # fmt: skip
    monkeypatch.setattr(generator, "_NATIVE", {})
    monkeypatch.setattr(generator, "_FUSED", {})
    for width, (fast, part, into, spent) in got.items():
        eager = chl.operand("cd" * 32, "n", "d", 0, "A", 300, dtype, 3, inner=width)
        assert torch.equal(fast.view(torch.int16), eager.view(torch.int16))
        assert torch.equal(part.view(torch.int16), eager[rows].view(torch.int16))
        assert into.data_ptr() == spent.data_ptr() and torch.equal(into.view(torch.int16), eager.view(torch.int16))


@pytest.mark.parametrize(
    "old, new",
    [
        ("return (w & keep) | (expo", "return (w & keep & ~1u) | (expo"),  # every path's element
        ("_mm512_and_si512(x, kv)", "_mm512_and_si512(x, _mm512_set1_epi32((int)(keep & ~1u)))"),  # vector path only
    ],
)
def test_a_paired_c_kernel_whose_bits_differ_is_not_used(monkeypatch, tmp_path, old, new):
    """native() keeps paired_block only where its probe gives eager's bits: one significand bit flipped, in every
    path or in the AVX-512 path alone, is refused for both PAIRED dtypes (eager or fused answer, same bits), and the
    float32 kernel, whose probe passes, is kept."""
    source = generator.NATIVE_SOURCE.read_text()
    assert old in source
    (tmp_path / "bad.c").write_text(source.replace(old, new))
    monkeypatch.setattr(generator, "NATIVE_SOURCE", tmp_path / "bad.c")
    monkeypatch.setattr(generator, "_NATIVE", {})
    lib, why = native.compile_library(tmp_path / "bad.c")
    if lib is None:
        pytest.skip(why)
    if "mm512" in old and lib.float32_isa() != 512:
        pytest.skip("no AVX-512 build here: the vector path is not compiled")
    assert generator.native() is None and generator.native_in_use("cpu", "float32")
    for dtype in generator.PAIRED:
        assert "differ" in generator._NATIVE[dtype] and not generator.native_in_use("cpu", dtype, 3)
    a = chl.operand("cd" * 32, "n", "d", 0, "A", 64, "bfloat16", 3, inner=96)
    monkeypatch.setattr(generator, "_FUSED", {})
    assert torch.equal(a.view(torch.int16), chl.operand("cd" * 32, "n", "d", 0, "A", 64, "bfloat16", 3, inner=96,
                                                         reference=True).view(torch.int16))  # fmt: skip
