"""Challenge operands, version 2: a counter-based generator built from torch integer ops, so the node generates A and
B on the device that multiplies them and the verifier regenerates, bit for bit on a CPU, exactly the rows it checks.

Generator. Row r and column c get 32-bit keys h_r = mix(mix(r ^ k0) ^ k1) and g_c = mix(mix(c ^ k2) ^ k3), and
element (r, c) the words
    w_s = mix(h_r ^ g_c ^ s)                          s = 0 (and 1 for float64: the stream)
with k0..k3 the first four little-endian 32-bit words of the SHA-256 seed (protocol.seed: nonce, node, device, index,
operand) and mix() Chris Wellons' lowbias32 integer hash (x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15;
x *= 0x846ca68b; x ^= x >> 16, all mod 2**32). Words are held in int32 tensors as their two's-complement bit
patterns: multiplication keeps the low 32 bits (what CUDA's integer multiply and the vector instructions torch's CPU
kernels use do), and each right shift is masked to act as a logical one, so CPU and CUDA agree bit for bit
(tests/challenge/test_generator.py, and the GPU check). Keying rows and columns once (four rounds over 2n words)
leaves one round, about 20 int32 ops with the mapping below, per element: on a CPU, where the generator shares the
cores with the product, that is what it costs.

Values (exactly representable in the challenge dtype, with a full significand):
    x = (-1)^sign * (1 + m / 2**p) * 2**(-1 - e)        p = explicit significand bits (52, 23, 10, 7)
sign = bit 31 of w_0, e = bits 27..30 masked to 0 .. EXPONENT_BINADES - 1, m = the low p bits (float64: sign and e from w_1,
m = the low 20 bits of w_1 above the 32 of w_0). So |x| lies in [2**-16, 1) (float16: [2**-8, 1)): the operands span EXPONENT_BINADES binades. Uniform [-1, 1)
operands had no dynamic range, and one int8 scale per tensor lost almost nothing; here a fixed-point code (int8 with
one scale per tensor or per row) spends its first 7 bits on the row's largest element, and a term whose operands
sit 4-7 binades lower keeps only a few significant bits. The spread is kept narrow on purpose: the products then
span 16 binades, so every term of every dot product stays far above a float32 product's rounding allowance and no
term can be skipped (a sparse shortcut would be a cheaper computation, not a more accurate one). Products and sums
stay normal and finite in every challenge dtype (float16's outputs included: |c| <= n).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import importlib.util
from collections.abc import Callable
from pathlib import Path

import torch

from bench.challenge import native as bench_native

#: Binades the operands' magnitudes span, per dtype (e in 0 .. binades - 1): float16's normal range starts at 2**-14,
#: so its operands keep to 8 (2**-8 .. 1) and stay normal with full significands.
EXPONENT_BINADES = {"float64": 16, "float32": 16, "bfloat16": 16, "float16": 8}
#: (explicit significand bits, exponent bias, bit width) of each challenge dtype.
LAYOUT = {"float64": (52, 1023, 64), "float32": (23, 127, 32), "bfloat16": (7, 127, 16), "float16": (10, 15, 16)}
#: Elements generated at once: bounds the int32 temporaries (a few, 4 bytes each) to a few MiB.
CHUNK = 1 << 18
#: Elements per block on a CPU (see matrix()).
CPU_CHUNK = 1 << 15


def _i32(word: int) -> int:
    """A 32-bit word as the int32 value with its bit pattern."""
    return word - (1 << 32) if word >= 1 << 31 else word


def key_words(seed: bytes) -> tuple[int, int, int, int]:
    """k0..k3: the first four little-endian 32-bit words of the 32-byte seed, as int32 values."""
    return tuple(_i32(int.from_bytes(seed[4 * i : 4 * i + 4], "little")) for i in range(4))  # type: ignore[return-value]


def mix(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 on an int32 tensor of 32-bit patterns (in place on `x`' copy)."""
    x = x ^ ((x >> 16) & 0xFFFF)
    x.mul_(_i32(0x7FEB352D))
    x ^= (x >> 15) & 0x1FFFF
    x.mul_(_i32(0x846CA68B))
    x ^= (x >> 16) & 0xFFFF
    return x


def line_keys(seed: bytes, rows: int, device: torch.device | str, cols: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """h (one key per row, `rows` words) and g (one per column, `cols` words, default `rows`): int32 tensors. Row r's
    and column c's keys do not depend on the matrix's shape, so a square operand is the n x n corner of any
    rectangular one with the same seed."""
    k0, k1, k2, k3 = key_words(seed)
    r = torch.arange(rows, device=device, dtype=torch.int32)
    c = r if cols is None or cols == rows else torch.arange(cols, device=device, dtype=torch.int32)
    return mix(mix(r ^ k0) ^ k1), mix(mix(c ^ k2) ^ k3)


def words(h: torch.Tensor, g: torch.Tensor, stream: int) -> torch.Tensor:
    """The 32-bit word `stream` of each element (h[:, None], g[None, :]), as int32 (stream 0's xor is skipped: the
    same bits, one pass fewer)."""
    x = h[:, None] ^ g[None, :]
    return mix(x ^ stream if stream else x)


def values(h: torch.Tensor, g: torch.Tensor, dtype: str) -> torch.Tensor:
    """The elements of rows h x columns g, in `dtype` (see the module docstring for the formula). Built from integer
    ops only (no torch.where: its CPU kernel cost 20 of the other ops): the exponent field is (bias - 1 - e) << p,
    computed as (bias - 1) << p minus e's bits shifted into place, and the sign is OR-ed in (float32) or the value
    multiplied by +-1 (exact)."""
    bits, bias, width = LAYOUT[dtype]
    binades = EXPONENT_BINADES[dtype]
    w0 = words(h, g, 0)
    if dtype == "float64":
        top = words(h, g, 1)
        e = ((top >> 27) & (binades - 1)).to(torch.int64)
        m = ((top & ((1 << 20) - 1)).to(torch.int64) << 32) | (w0.to(torch.int64) & 0xFFFFFFFF)
        out = (((bias - 1 - e) << bits) | m).view(torch.float64)
        return out * ((top >> 31) | 1).to(torch.float64)  # top >> 31 is -1 (bit 31 set) or 0: the sign, exactly
    exponent = ((bias - 1) << bits) - ((w0 >> (27 - bits)) & ((binades - 1) << bits))
    magnitude = exponent | (w0 & ((1 << bits) - 1))
    if width == 32:
        return float32_words(magnitude, w0).view(torch.float32)
    return magnitude.to(torch.int16).view(getattr(torch, dtype)) * ((w0 >> 31) | 1).to(getattr(torch, dtype))


#: Generator versions (protocol.OPERAND_VERSIONS 2 and up): 3 differs from 2 only for the half precisions (PAIRED).
VERSIONS = (2, 3)
#: The dtypes whose version 3 elements come two from one word (values_paired).
PAIRED = ("bfloat16", "float16")


def float32_words(magnitude: torch.Tensor, w0: torch.Tensor) -> torch.Tensor:
    """A float32 element's bit pattern, as int32: the magnitude with w0's sign bit."""
    return magnitude | (w0 & _i32(0x80000000))


def _float32_kernel(h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """values() for float32 as int32 bit patterns: compiled, the bit cast to float32 stays outside the kernel (inside,
    torch.compile's CPU code for this kernel ran 6x slower: measured 5.4 against 0.9 ns an element)."""
    bits, bias, _ = LAYOUT["float32"]
    w0 = words(h, g, 0)
    exponent = ((bias - 1) << bits) - ((w0 >> (27 - bits)) & ((EXPONENT_BINADES["float32"] - 1) << bits))
    return float32_words(exponent | (w0 & ((1 << bits) - 1)), w0)


def paired_words(h: torch.Tensor, g: torch.Tensor, dtype: str) -> torch.Tensor:
    """Version 3 for bfloat16 and float16: two elements from each word, as the int32 words whose little-endian halves
    are their bit patterns (values_paired views them). g holds one key per *pair* of columns: w = mix(h_r ^ g_j)
    gives column 2j its low 16 bits and column 2j + 1 its high 16 bits, and each half u is mapped as a version 2 word
    is (sign = u's bit 15, e = bits 11..14 masked to 0 .. EXPONENT_BINADES - 1, m = the low p bits), both halves at
    once: the exponent fields (bias - 1 - e) << p of the two halves are one subtraction from a constant that holds
    bias - 1 in both (no borrow crosses: e < bias - 1). A half-precision element needs 12 (bfloat16) or 14 (float16)
    random bits, so one lowbias32 round and 6 ops more serve two elements: about 8.5 int32 ops an element against
    version 2's 18. lowbias32's output bits each depend on every input bit (full avalanche), so neither half predicts
    the other (tests/challenge/test_generator.py measures it, with rank and row-correlation checks)."""
    bits, bias, _ = LAYOUT[dtype]
    both = 0x10001  # a 16-bit field repeated in both halves
    field = (EXPONENT_BINADES[dtype] - 1) << bits
    w = mix(h[:, None] ^ g[None, :])
    keep = w & _i32(0x80008000 | ((1 << bits) - 1) * both)  # both signs and significands
    return keep | (((bias - 1) << bits) * both - ((w >> (11 - bits)) & field * both))


def values_paired(words: torch.Tensor, dtype: str, width: int) -> torch.Tensor:
    """paired_words' words as `width` elements of `dtype` a row (a row of an odd width drops its last half)."""
    pairs = words.view(getattr(torch, dtype))
    return pairs if pairs.shape[1] == width else pairs[:, :width]


def _kernel(dtype: str, version: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """What one block of rows costs: paired_words (version 3's PAIRED dtypes) or values."""
    if version >= 3 and dtype in PAIRED:
        return lambda h, g: paired_words(h, g, dtype)
    if dtype == "float32":
        return _float32_kernel
    return lambda h, g: values(h, g, dtype)


def _finish(x: torch.Tensor, dtype: str, version: int, width: int) -> torch.Tensor:
    """_kernel's output as elements: version 3's pairs viewed (values_paired), float32's patterns bit-cast."""
    if version >= 3 and dtype in PAIRED:
        return values_paired(x, dtype, width)
    return x.view(torch.float32) if dtype == "float32" else x


def elements(h: torch.Tensor, g: torch.Tensor, dtype: str, version: int, width: int) -> torch.Tensor:
    """The elements of rows h x `width` columns for generator `version`: g holds a key per column (values) or, for
    version 3's PAIRED dtypes, per pair of columns (paired_words)."""
    return _finish(_kernel(dtype, version)(h, g), dtype, version, width)


def _formula(dtype: str, version: int) -> int:
    """The version whose formula makes `dtype` under generator `version`: 3 differs from 2 only for PAIRED dtypes, so
    a float32 kernel compiled once serves challenges of both."""
    return 3 if version >= 3 and dtype in PAIRED else 2


def key_columns(dtype: str, version: int, width: int) -> int:
    """Column keys a row of `width` elements needs: one per column, or one per pair (version 3, PAIRED)."""
    return (width + 1) // 2 if version >= 3 and dtype in PAIRED else width


#: _kernel() compiled into one kernel per (device type, dtype, formula version: _formula) by fuse(), once it gave the
#: eager bits on a probe.
_FUSED: dict[tuple[str, str, int], Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {}


def fuse(device: torch.device | str, dtype: str, version: int = VERSIONS[-1]) -> str | None:
    """Compile values() for `dtype` on `device`'s type with torch.compile, so that generating an element is one
    kernel's ~20 integer ops (version 3's pairs: ~8.5) instead of ~20 eager passes over memory (on a GPU, each a kernel that reads and writes
    every element: tests/perf/proof_ratio.py's cost model puts eager generation at 5x a bfloat16 product's time on
    an H100, a fused kernel at 0.14x). The compiled kernel is kept only if it gives eager's bits on a probe block of
    64 x 4096 elements (every word's multiplies overflow: a compiler that did not wrap them would differ), so the
    operands stay the formula's. Returns None when fused, else why not (eager stays in use). Call it before the
    challenge arrives (node.warm): compiling takes seconds to tens of seconds."""
    kind = torch.device(device).type
    if (kind, dtype, _formula(dtype, version)) in _FUSED:
        return None
    if kind == "cuda" and importlib.util.find_spec("triton") is None:
        return "no Triton: torch.compile cannot build a CUDA kernel here"
    try:
        compiled = torch.compile(_kernel(dtype, version), dynamic=True)
        h, g = line_keys(b"fuse-probe".ljust(32, b"\0"), 64, device, key_columns(dtype, version, 4095))
        fused, eager = _finish(compiled(h, g), dtype, version, 4095), elements(h, g, dtype, version, 4095)
    except Exception as exc:  # noqa: BLE001 - no compiler, no Triton, an unsupported backend: eager still works
        return f"torch.compile failed ({type(exc).__name__}: {str(exc)[:200]})"
    width = {8: torch.int64, 4: torch.int32, 2: torch.int16}[eager.element_size()]
    if fused.dtype != eager.dtype or not torch.equal(fused.view(width), eager.view(width)):
        return "the compiled generator's bits differ from the formula's on the probe"
    _FUSED[(kind, dtype, _formula(dtype, version))] = compiled
    return None


#: The C kernel for float32 operands on a CPU (bench.challenge.native): float32_block, or why it is not in use.
NATIVE_SOURCE = Path(__file__).with_name("generator_kernel.c")
_NATIVE: dict[str, Callable[..., None] | str] = {}


def native() -> str | None:
    """Compile generator_kernel.c (float32 on a CPU, both versions) and keep it if it gives eager's bits on a probe
    block (64 x 4095, every word's multiplies overflowing, and a subset of rows), as fuse() does for its kernel.
    matrix() then uses it before any fused kernel: torch.compile's float32 kernel ran at several ns an element here,
    a fifth of a folded proof's window at n = 4096. The same file's paired_block makes version 3's PAIRED dtypes,
    each kept only where its own probe passes (_native_paired_probe). Returns None when the float32 kernel is in
    use, else why not (native_in_use says which dtypes it serves)."""
    if "float32" in _NATIVE:
        got = _NATIVE["float32"]
        return got if isinstance(got, str) else None
    lib, why = bench_native.compile_library(NATIVE_SOURCE)
    if lib is None:
        for dtype in ("float32", *PAIRED):
            _NATIVE[dtype] = why or "no kernel"
        return _NATIVE["float32"]
    _native_paired_probe(lib)
    fn = lib.float32_block
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_long]
    h, g = line_keys(b"native-probe".ljust(32, b"\0"), 64, "cpu", 4095)
    _NATIVE["float32"] = fn
    got = matrix(b"native-probe".ljust(32, b"\0"), (64, 4095), "float32")
    rows = torch.tensor([63, 0, 17])
    part = matrix(b"native-probe".ljust(32, b"\0"), (64, 4095), "float32", rows=rows)
    eager = elements(h, g, "float32", 2, 4095)
    if not (torch.equal(got.view(torch.int32), eager.view(torch.int32)) and torch.equal(part, eager[rows])):
        _NATIVE["float32"] = "the C kernel's bits differ from the formula's on the probe"
        return _NATIVE["float32"]
    return None


def _native_paired_probe(lib: ctypes.CDLL) -> None:
    """generator_kernel.c's paired_block (version 3's PAIRED dtypes) kept in _NATIVE for each PAIRED dtype whose
    probe gives eager's bits (an even width: the word and vector path; an odd one: the element path and the last
    half dropped; a subset of rows), else why not. native() calls it."""
    fn = lib.paired_block
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                   ctypes.c_long, ctypes.c_int, ctypes.c_int, ctypes.c_int]  # fmt: skip
    key = b"native-probe".ljust(32, b"\0")
    for dtype in PAIRED:
        _NATIVE[dtype] = fn
        for shape in ((64, 4096), (33, 4095)):
            h, g = line_keys(key, shape[0], "cpu", key_columns(dtype, 3, shape[1]))
            eager = elements(h, g, dtype, 3, shape[1])
            rows = torch.tensor([shape[0] - 1, 0, 17])
            got = matrix(key, shape, dtype, version=3)
            part = matrix(key, shape, dtype, rows=rows, version=3)
            if not (torch.equal(got.view(torch.int16), eager.view(torch.int16))
                    and torch.equal(part.view(torch.int16), eager[rows].view(torch.int16))):  # fmt: skip
                _NATIVE[dtype] = "the C kernel's bits differ from the formula's on the probe"
                break


def native_in_use(device_type: str, dtype: str, version: int = VERSIONS[-1]) -> bool:
    """Whether matrix() generates `dtype` (generator `version`) on this device type with a C kernel (native()):
    float32 at every version, the PAIRED dtypes at version 3."""
    if device_type != "cpu" or (dtype in PAIRED and _formula(dtype, version) < 3):
        return False
    return callable(_NATIVE.get(dtype))


def _native_paired(fn: Callable[..., None], h: torch.Tensor, g: torch.Tensor, width: int, dtype: str,
                   out: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """Version 3 `dtype` rows h x `width` columns (g: a key per pair of columns) by the C kernel, into `out` where it
    fits (a node's previous operands or reserve: no fresh pages), blocks of rows across one thread per torch thread."""
    h, g = h.contiguous(), g.contiguous()
    if not _fits(out, (len(h), width), getattr(torch, dtype)):
        out = torch.empty(len(h), width, dtype=getattr(torch, dtype))
    bits, bias, _ = LAYOUT[dtype]
    step = max(1, CHUNK // max(1, width))

    def fill(start: int) -> None:
        rows = min(step, len(h) - start)
        fn(h.data_ptr() + 4 * start, rows, g.data_ptr(), len(g), width, out.data_ptr() + 2 * start * width, width,
           bits, bias, EXPONENT_BINADES[dtype])  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        list(pool.map(fill, range(0, len(h), step)))
    return out


def _native_matrix(fn: Callable[..., None], h: torch.Tensor, g: torch.Tensor,
                   out: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """float32 rows h x columns g by the C kernel (into `out` where it is a contiguous float32 tensor of that shape),
    blocks of rows across one thread per torch thread (ctypes releases the GIL)."""
    h, g = h.contiguous(), g.contiguous()
    if not _fits(out, (len(h), len(g)), torch.float32):
        out = torch.empty(len(h), len(g), dtype=torch.float32)
    step = max(1, CHUNK // max(1, len(g)))

    def fill(start: int) -> None:
        rows = min(step, len(h) - start)
        fn(h.data_ptr() + 4 * start, rows, g.data_ptr(), len(g), out.data_ptr() + 4 * start * len(g), len(g))

    with concurrent.futures.ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        list(pool.map(fill, range(0, len(h), step)))
    return out


def _fits(out: torch.Tensor | None, shape: tuple[int, int], dtype: torch.dtype) -> bool:
    """Whether `out` can be written as a CPU operand of this shape and dtype."""
    return (out is not None and out.device.type == "cpu" and tuple(out.shape) == shape and out.dtype == dtype
            and out.is_contiguous())  # fmt: skip


def is_fused(device_type: str, dtype: str, version: int = VERSIONS[-1]) -> bool:
    """Whether fuse() compiled the generator for this device type ('cpu', 'cuda'), dtype and version."""
    return (device_type, dtype, _formula(dtype, version)) in _FUSED


def matrix(seed: bytes, shape: int | tuple[int, int], dtype: str, rows: torch.Tensor | None = None,
           device: torch.device | str = "cpu", version: int = 2, out: torch.Tensor | None = None,
           reference: bool = False) -> torch.Tensor:  # fmt: skip
    """Rows `rows` (default: all) of the operand keyed by `seed`, of `shape` (n: n x n; or (rows, columns)),
    generated on `device` by generator `version` (VERSIONS). On a CPU, into `out` where it fits (a contiguous CPU
    tensor of the operand's shape and dtype; a fused kernel makes its own): a node reuses the previous product's
    operands, whose pages are already mapped (a fresh 128 MiB operand cost about 60 ms of page faults here, a
    sixth of generating it, 0.4 s a folded product at n = 4096). `reference`: by the formula in torch alone, never
    by a kernel a node compiled in this process (native(), fuse()): an auditor's operands must not trust node-side
    code."""
    if dtype not in LAYOUT:
        raise ValueError(f"no operand generator for {dtype!r}; valid: {', '.join(LAYOUT)}")
    if version not in VERSIONS:
        raise ValueError(f"no operand generator version {version!r}; valid: {VERSIONS}")
    height, n = (shape, shape) if isinstance(shape, int) else shape
    h, g = line_keys(seed, height, device, key_columns(dtype, version, n))
    if rows is not None:
        h = h.index_select(0, rows.to(device=device, dtype=torch.int64))
    kind = torch.device(device).type
    if not reference and native_in_use(kind, dtype, version):
        if dtype == "float32":
            return _native_matrix(_NATIVE["float32"], h, g, out)  # type: ignore[arg-type]
        return _native_paired(_NATIVE[dtype], h, g, n, dtype, out)  # type: ignore[arg-type]
    fused = None if reference else _FUSED.get((kind, dtype, _formula(dtype, version)))
    if fused is not None:  # one call: a fused kernel keeps no temporaries, and its output is the operand (no copy)
        try:
            return _finish(fused(h, g), dtype, version, n).contiguous()
        except Exception:  # noqa: BLE001 - a shape the kernel must be recompiled for, and that fails: eager, same bits
            _FUSED.pop((kind, dtype, _formula(dtype, version)), None)
    if kind != "cpu" or not _fits(out, (len(h), n), getattr(torch, dtype)):
        out = torch.empty(len(h), n, dtype=getattr(torch, dtype), device=device)
    if kind != "cpu":
        step = max(1, CHUNK // n)
        for start in range(0, len(h), step):
            out[start : start + step] = _finish(_kernel(dtype, version)(h[start : start + step], g), dtype, version, n)
        return out
    # On a CPU: blocks below ATen's grain size (32768 elements) run each op on the calling thread, without an OpenMP
    # barrier per op (under load those barriers made generation 10x slower); one Python thread per intra-op thread
    # fills blocks side by side (torch releases the GIL inside each op).
    step = max(1, CPU_CHUNK // n)

    def fill(start: int) -> None:
        out[start : start + step] = elements(h[start : start + step], g, dtype, version, n)

    with concurrent.futures.ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        list(pool.map(fill, range(0, len(h), step)))
    return out
