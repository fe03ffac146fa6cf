"""The precision table in docs/proofs.md: how honest products (every accumulation order) and every cheaper scheme the
field knows score on the exact-row check (bench.challenge.exact_rows; passing needs <= 1).

For each challenge dtype and n it generates the challenge's own operands (version 3, bench.challenge.generator;
--operands 2 the former generator, 1 the old uniform ones), takes the rows the check samples, and computes those
rows of C each way on this CPU. Only the sampled rows are computed (the check sees nothing else), and B is processed a block of columns at
a time, so n = 16384 costs minutes, not the hours a full CPU product would. Schemes are emulated by their numerics,
not their speed: operands and partial sums are rounded exactly as the scheme rounds them (torch dtype casts, bit
masks), products of narrow formats are exact in float32/float64, and accumulation is float32 (float64 where the
scheme accumulates exactly, as int8's int32 does).

Honest orders (float32 accumulation; float64 for a float64 challenge): torch's own matmul in the challenge dtype;
sequential FMA (one rounding per term, the order of a SIMT sgemm thread); sequential without FMA (product rounded,
then added); blocked (sums of 256 terms added to C, a CPU microkernel's kc blocking); split-K in 4 with float32
partials; pairwise (numpy's); the exact product rounded once. Cheaper schemes, for every challenge dtype: int8 with
one scale per tensor or per row (A) and column (B), split into 1..6 int8 slices of 7 bits each (k slices: the
k(k+1)/2 slice products whose weight is at least 2**-7(k-1), Ozaki-style), fp8 e4m3 (per-tensor scale to 448) with
float32 accumulation and with "fast accumulation" (a 14-bit accumulator between promotions every 32 terms, as
measured on Hopper), fp16, bf16, tf32, bf16x3/x6/x9 (A and B split into bf16 parts, the products of parts whose
weight is at least 2**-8, 2**-16, all) and 3xtf32, and float32 for float64. bf16 split-K with partials rounded to
bfloat16 ("reduced precision reduction") is listed with the cheaper schemes: version 2 challenges do not allow it.

    .venv/bin/python tests/perf/precision_table.py [--n 256 1024 4096 16384] [--dtype float32 ...] [--operands 2]
        [--inner default|square]

Each product is A (n x K) times B (K x n), K `challenge issue`'s default for the dtype, folded as it folds float32
(bench.challenge.fold; --inner square: K = n, not folded).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import challenge as chl
from bench.challenge import exact_rows

#: A scheme: (sampled rows of A, a block of columns of B, challenge dtype) -> those rows x columns of C, float64.
Scheme = Callable[[torch.Tensor, torch.Tensor, str], np.ndarray]
#: Columns of B computed at once.
BLOCK = 1024
F32, F64 = torch.float32, torch.float64
#: int8 slices cut (the schemes use the first 1 .. MAX_SLICES).
MAX_SLICES = 6


def tf32(x: torch.Tensor) -> torch.Tensor:
    """float32 rounded to tf32 (10 explicit mantissa bits), round to nearest even, still stored as float32."""
    bits = x.contiguous().view(torch.int32)
    lsb = (bits >> 13) & 1
    rounded = (bits + 0x0FFF + lsb) & ~0x1FFF
    return rounded.view(torch.float32)


def round_bits(x: torch.Tensor, bits: int) -> torch.Tensor:
    """float32 x rounded to `bits` significand bits (implicit included), nearest even."""
    drop = 24 - bits
    v = x.contiguous().view(torch.int32)
    lsb = (v >> drop) & 1
    return ((v + ((1 << (drop - 1)) - 1) + lsb) & ~((1 << drop) - 1)).view(torch.float32)


def out(c: torch.Tensor, dtype: str) -> np.ndarray:
    """The result as the challenge dtype stores it, as float64."""
    return c.to(getattr(torch, dtype)).to(F64).numpy()


def acc_dtype(dtype: str) -> torch.dtype:
    return F64 if dtype == "float64" else F32


# --- honest orders -------------------------------------------------------------------------------------------------


def honest(a: torch.Tensor, b: torch.Tensor, dtype: str) -> np.ndarray:
    return (a @ b).to(F64).numpy()


def exact(a: torch.Tensor, b: torch.Tensor, dtype: str) -> np.ndarray:
    return out(a.to(F64) @ b.to(F64), dtype)


def sequential(fma: bool) -> Scheme:
    """One term at a time into an accumulator of the accumulation dtype: with FMA the exact product is added and
    rounded once; without, the product is rounded first."""

    def run(a: torch.Tensor, b: torch.Tensor, dtype: str) -> np.ndarray:
        acc_t = acc_dtype(dtype)
        a64, b64 = a.to(F64), b.to(F64)
        acc = torch.zeros(a.shape[0], b.shape[1], dtype=acc_t)
        for k in range(a.shape[1]):
            term = a64[:, k : k + 1] * b64[k : k + 1, :]
            acc = (acc.to(F64) + term).to(acc_t) if fma else acc + term.to(acc_t)
        return out(acc, dtype)

    return run


def blocked(kc: int = 256) -> Scheme:
    def run(a: torch.Tensor, b: torch.Tensor, dtype: str) -> np.ndarray:
        acc_t = acc_dtype(dtype)
        acc = torch.zeros(a.shape[0], b.shape[1], dtype=acc_t)
        for k in range(0, a.shape[1], kc):
            acc = acc + a[:, k : k + kc].to(acc_t) @ b[k : k + kc].to(acc_t)
        return out(acc, dtype)

    return run


def split_k(parts: int = 4, partials: torch.dtype | None = None) -> Scheme:
    """K split in `parts`, each partial rounded to `partials` (default: the accumulator), summed in the accumulator."""

    def run(a: torch.Tensor, b: torch.Tensor, dtype: str) -> np.ndarray:
        acc_t = acc_dtype(dtype)
        step = -(-a.shape[1] // parts)
        acc = torch.zeros(a.shape[0], b.shape[1], dtype=acc_t)
        for k in range(0, a.shape[1], step):
            p = a[:, k : k + step].to(acc_t) @ b[k : k + step].to(acc_t)
            acc = acc + (p.to(partials).to(acc_t) if partials is not None else p)
        return out(acc, dtype)

    return run


def pairwise(a: torch.Tensor, b: torch.Tensor, dtype: str) -> np.ndarray:
    acc_t = np.float64 if dtype == "float64" else np.float32
    a64, b64 = a.to(F64).numpy(), b.to(F64).numpy()
    rows = [np.sum((a64[i][None, :] * b64.T).astype(acc_t), axis=1, dtype=acc_t) for i in range(a64.shape[0])]
    return out(torch.from_numpy(np.stack(rows)), dtype)


# --- cheaper schemes -----------------------------------------------------------------------------------------------


def rounded(fmt: Callable[[torch.Tensor], torch.Tensor]) -> Scheme:
    """Operands rounded by `fmt` (float32 in, float32 out), then a float32-accumulated product."""

    def run(a: torch.Tensor, b: torch.Tensor, dtype: str) -> np.ndarray:
        return out(fmt(a.to(F32)) @ fmt(b.to(F32)), dtype)

    return run


def cast(fmt: torch.dtype) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: x.to(fmt).to(F32)


def float_split(fmt: Callable[[torch.Tensor], torch.Tensor], parts: int, products: int) -> Scheme:
    """x = x0 + x1 + ... (each part rounded by `fmt` from the remainder, in float64); the first `products` products of
    parts in order of weight (i + j ascending), each exact in float64 here, summed in float32."""
    order = sorted(((i, j) for i in range(parts) for j in range(parts)), key=lambda p: (p[0] + p[1], p[0]))[:products]

    def split(x: torch.Tensor, which: str) -> list[torch.Tensor]:
        return _cached(("split", id(fmt), parts, which), x, lambda: _split(x))

    def _split(x: torch.Tensor) -> list[torch.Tensor]:
        rest, out_parts = x.to(F64), []
        for _ in range(parts):
            part = fmt(rest.to(F32)).to(F64)
            out_parts.append(part)
            rest = rest - part
        return out_parts

    def run(a: torch.Tensor, b: torch.Tensor, dtype: str) -> np.ndarray:
        sa, sb = split(a, "a"), split(b, "b")
        acc = torch.zeros(a.shape[0], b.shape[1], dtype=F32)
        for i, j in order:
            acc = acc + (sa[i] @ sb[j]).to(F32)
        return out(acc, dtype)

    return run


#: Cuts and splits of the current block of B (and of A), shared by the schemes that differ only in how many parts they
#: use (the first k slices of a 6-slice cut are a k-slice cut). An entry holds the tensor it was made from and serves
#: only that very tensor; scores() also clears it for every block.
_CACHE: dict[tuple, tuple[torch.Tensor, list[torch.Tensor]]] = {}


def _cached(key: tuple, x: torch.Tensor, make: Callable[[], list[torch.Tensor]]) -> list[torch.Tensor]:
    entry = _CACHE.get(key)
    if entry is None or entry[0] is not x:
        entry = _CACHE[key] = (x, make())
    return entry[1]


def int8_split(slices: int, per_row: bool) -> Scheme:
    """Fixed point: A scaled by its largest |element| per row (or per tensor: the generator's bound, 1), B per column
    (or per tensor), cut into `slices` int8 slices of 7 bits (nearest); slice products with i + j < slices, exact
    (int32 accumulation, float64 here), rescaled and rounded once to the output."""

    def cut(x: torch.Tensor, scale: torch.Tensor) -> list[torch.Tensor]:
        rest, out_slices = x.to(F64) / scale * 127.0, []
        for _ in range(MAX_SLICES):
            q = torch.round(rest).clamp(-127, 127)
            out_slices.append(q)
            rest = (rest - q) * 128.0
        return out_slices

    def run(a: torch.Tensor, b: torch.Tensor, dtype: str) -> np.ndarray:
        if per_row:
            sa = a.to(F64).abs().amax(dim=1, keepdim=True).clamp_min(1e-300)
            sb = b.to(F64).abs().amax(dim=0, keepdim=True).clamp_min(1e-300)
        else:
            sa = sb = torch.tensor(1.0, dtype=F64)
        qa = _cached(("int8", "a", per_row), a, lambda: cut(a, sa))
        qb = _cached(("int8", "b", per_row), b, lambda: cut(b, sb))
        acc = torch.zeros(a.shape[0], b.shape[1], dtype=F64)
        for i in range(slices):
            for j in range(slices - i):
                acc += (qa[i] @ qb[j]) * 2.0 ** (-7 * (i + j))
        return out(acc * sa * sb / 127.0**2, dtype)

    return run


def fp8(fast: bool) -> Scheme:
    """e4m3 operands, one scale per tensor (the generator's bound 1 maps to 448), exact products; float32
    accumulation, or (fast) partial sums of 32 terms added to an accumulator kept at 14 significand bits."""

    def run(a: torch.Tensor, b: torch.Tensor, dtype: str) -> np.ndarray:
        qa = (a.to(F32) * 448).to(torch.float8_e4m3fn).to(F32) / 448
        qb = (b.to(F32) * 448).to(torch.float8_e4m3fn).to(F32) / 448
        if not fast:
            return out(qa @ qb, dtype)
        acc = torch.zeros(a.shape[0], b.shape[1], dtype=F32)
        for k in range(0, a.shape[1], 32):
            acc = round_bits(acc + qa[:, k : k + 32] @ qb[k : k + 32], 14)
        return out(acc, dtype)

    return run


#: One bf16 rounding function for the bf16xN schemes, so that they share the parts of a block (_CACHE keys on it).
BF16 = cast(torch.bfloat16)

HONEST: dict[str, Scheme] = {"torch": honest, "sequential FMA": sequential(True), "sequential": sequential(False),
                             "blocked 256": blocked(), "split-K 4": split_k(), "pairwise": pairwise,
                             "exact, rounded once": exact}  # fmt: skip
#: Orders too slow in Python at large n (a Python loop over n terms), run only up to this n.
SLOW = {"sequential FMA": 8192, "sequential": 8192, "pairwise": 8192}

CHEAPER: dict[str, Scheme] = {
    **{f"int8 tensor x{k}": int8_split(k, False) for k in range(1, 7)},
    **{f"int8 row x{k}": int8_split(k, True) for k in range(1, 7)},
    "fp8": fp8(False), "fp8 fast-acc": fp8(True),
    "fp16": rounded(cast(torch.float16)), "bf16": rounded(cast(torch.bfloat16)), "tf32": rounded(tf32),
    "bf16x3": float_split(BF16, 3, 3), "bf16x6": float_split(BF16, 3, 6), "bf16x9": float_split(BF16, 3, 9),
    "3xtf32": float_split(tf32, 2, 3),
    "float32": rounded(lambda x: x),
    "bf16 split-K reduced": split_k(4, torch.bfloat16),
}  # fmt: skip


def applies(dtype: str, scheme: str) -> bool:
    """Which schemes are cheaper than `dtype` at all: float32 is float64's only; the bf16 reduced split-K only bf16's."""
    if scheme == "float32":
        return dtype == "float64"
    if scheme == "bf16 split-K reduced":
        return dtype == "bfloat16"
    return True


def scores(dtype: str, n: int, rows: int = exact_rows.ROWS, seed: int = 0, operands: int = 2,
           schemes: dict[str, Scheme] | None = None, inner: int | None = None,
           fold: int | None = None) -> dict[str, float]:  # fmt: skip
    """Each scheme's worst row score (exact_rows.scores: the challenge's own rule) on the sampled rows of the
    challenge operands of (dtype, n, inner K; default K = n, the square form; `fold`: a folded challenge's run
    length, bench.challenge.fold)."""
    nonce = f"{seed:064x}"
    picked = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(n, size=min(rows, n), replace=False)))
    a = chl.operand(nonce, "node", "GPU-x", 0, "A", n, dtype, operands, inner=inner, rows=picked)
    b = chl.operand(nonce, "node", "GPU-x", 0, "B", n, dtype, operands, inner=inner)
    a64 = a.to(F64).numpy()
    todo = schemes or {**HONEST, **{k: v for k, v in CHEAPER.items() if applies(dtype, k)}}
    todo = {k: v for k, v in todo.items() if a.shape[1] <= SLOW.get(k, a.shape[1])}
    c = {k: np.empty((len(picked), n)) for k in todo}
    for j in range(0, n, BLOCK):
        block = b[:, j : j + BLOCK]
        _CACHE.clear()
        for k, scheme in todo.items():
            c[k][:, j : j + block.shape[1]] = scheme(a, block, dtype)
    _CACHE.clear()
    return {k: float(exact_rows.scores(a64, b, c[k], dtype, operands, fold).max()) for k in todo}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    parser.add_argument("--dtype", nargs="+", default=["float32", "bfloat16", "float16", "float64"])
    parser.add_argument("--operands", type=int, default=3, choices=[1, 2, 3])
    parser.add_argument("--inner", choices=["square", "default"], default="default",
                        help="K = n, or `challenge issue`'s default K for the dtype (protocol.INNER_FACTOR)")  # fmt: skip
    args = parser.parse_args()
    for dtype in args.dtype:
        inner = {n: n if args.inner == "square" else chl.default_inner(dtype, n) for n in args.n}
        fold = {n: None if args.inner == "square" else chl.default_fold(dtype, inner[n]) for n in args.n}
        table = {n: scores(dtype, n, operands=args.operands, inner=inner[n], fold=fold[n]) for n in args.n}
        names = list(dict.fromkeys(k for s in table.values() for k in s))
        ks = ", ".join(f"K = {inner[n]}" + (f" folded in runs of {fold[n]}" if fold[n] else "") for n in args.n)
        print(
            f"\n{dtype} challenge (operands v{args.operands}; {ks}); score = row error / allowance, passing needs <= 1\n"
        )
        print("| scheme | " + " | ".join(f"n = {n}" for n in args.n) + " |")
        print("|---|" + "---:|" * len(args.n))
        for k in names:
            kind = "honest" if k in HONEST else "cheaper"
            cells = " | ".join(f"{table[n][k]:.3g}" if k in table[n] else "-" for n in args.n)
            print(f"| {kind}: {k} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
