"""Cheaper schemes the precision table (tests/perf/precision_table.py) did not list, emulated by their numerics for
the attack round on issue 23: block-scaled int8 (MXINT8-like) and fp8 (MXFP8 e4m3, e5m2, an e4m3 hi/lo split),
bf16x2, tf32x2 and fp16 with a scale."""

import torch

from tests.perf import precision_table as table

F32, F64 = torch.float32, torch.float64
BLOCK = 32


def _blocks_a(x):  # rows x n -> scale per (row, 32-block of K), broadcast back to x's shape
    m, k = x.shape
    s = x.to(F64).abs().reshape(m, k // BLOCK, BLOCK).amax(dim=2, keepdim=True).clamp_min(1e-300)
    return s.expand(m, k // BLOCK, BLOCK).reshape(m, k)


def _blocks_b(x):  # n x cols -> scale per (32-block of K, column)
    return _blocks_a(x.T).T


def int8_block(slices: int):
    """MXINT8-style: one scale per 32 consecutive elements along K (A's rows, B's columns), the block's largest
    |element| mapped to 127, cut into `slices` 7-bit slices; slice products with i + j < slices, exact."""

    def cut(x, scale):
        rest, out = x.to(F64) / scale * 127.0, []
        for _ in range(slices):
            q = torch.round(rest).clamp(-127, 127)
            out.append(q * scale / 127.0)  # dequantised per block: the int32 block sums are rescaled exactly
            rest = (rest - q) * 128.0
            scale = scale / 128.0
        return out

    def run(a, b, dtype):
        qa, qb = cut(a, _blocks_a(a)), cut(b, _blocks_b(b))
        acc = torch.zeros(a.shape[0], b.shape[1], dtype=F64)
        for i in range(slices):
            for j in range(slices - i):
                acc += qa[i] @ qb[j]
        return table.out(acc, dtype)

    return run


def mxfp8(fmt: torch.dtype, parts: int = 1, products: int = 1):
    """MXFP8: one power-of-two scale per 32 elements along K (E8M0, the block max brought just under the format's
    max), elements in `fmt`; split into `parts` (hi, lo, ...) with the first `products` part products by weight,
    exact products, float32 accumulation."""
    top = torch.finfo(fmt).max

    def pow2(s):
        return torch.exp2(torch.floor(torch.log2(top / s)))

    def split(x, scale):
        rest, out = x.to(F64) * scale, []
        for _ in range(parts):
            q = rest.to(F32).to(fmt).to(F64)
            out.append(q / scale)
            rest = rest - q
        return out

    order = sorted(((i, j) for i in range(parts) for j in range(parts)), key=lambda p: (p[0] + p[1], p[0]))[:products]

    def run(a, b, dtype):
        sa, sb = split(a, pow2(_blocks_a(a))), split(b, pow2(_blocks_b(b)))
        acc = torch.zeros(a.shape[0], b.shape[1], dtype=F32)
        for i, j in order:
            acc = acc + (sa[i] @ sb[j]).to(F32)
        return table.out(acc, dtype)

    return run


def fp16_scaled(a, b, dtype):
    """fp16 operands scaled by 2**8 (the generator's smallest magnitude 2**-16 stays normal), float32 accumulation."""
    qa = (a.to(F32) * 256).to(torch.float16).to(F32) / 256
    qb = (b.to(F32) * 256).to(torch.float16).to(F32) / 256
    return table.out(qa @ qb, dtype)


SCHEMES = {
    **{f"int8 block32 x{k}": int8_block(k) for k in (1, 2, 3)},
    "mxfp8 e4m3": mxfp8(torch.float8_e4m3fn),
    "mxfp8 e5m2": mxfp8(torch.float8_e5m2),
    "mxfp8 e4m3 x2 (3 products)": mxfp8(torch.float8_e4m3fn, 2, 3),
    "mxfp8 e4m3 x2 (4 products)": mxfp8(torch.float8_e4m3fn, 2, 4),
    "bf16x2": table.float_split(table.BF16, 2, 2),
    "tf32x2": table.float_split(table.tf32, 2, 2),
    "fp16 scaled": fp16_scaled,
}


def _rz32(s: torch.Tensor) -> torch.Tensor:
    """float64 -> float32 rounded toward zero."""
    r = s.to(F32)
    return torch.where(r.to(F64).abs() > s.abs(), torch.nextafter(r, torch.zeros_like(r)), r)


def tensor_core(k: int = 16, toward_zero: bool = True):
    """An honest tensor-core product as published measurements describe it (Fasi et al. 2021 for V100/T4/A100, Ootomo
    and Yokota 2022, Khattak and Mikaitis 2025 for H100/B200): each MMA instruction adds the sum of k products to the
    float32 accumulator and rounds the result toward zero, not to nearest. Optimistic here: the k products are summed
    exactly (the hardware also truncates them, aligned to the largest)."""

    def run(a, b, dtype):
        a64, b64 = a.to(F64), b.to(F64)
        acc = torch.zeros(a.shape[0], b.shape[1], dtype=F32)
        for j in range(0, a.shape[1], k):
            s = acc.to(F64) + a64[:, j : j + k] @ b64[j : j + k]
            acc = _rz32(s) if toward_zero else s.to(F32)
        return table.out(acc, dtype)

    return run
