"""The precision table in the README: how an honest product and a cheaper one score on the exact-row check.

For each challenge dtype, n and cheaper arithmetic, it generates the challenge's own operands (bench.challenge.operand),
computes the sampled rows of C honestly and the cheaper way on this CPU, and prints each row check's score (passing
needs <= 1) as a Markdown table: honest / tolerance and cheap / tolerance. Only the sampled rows are computed (the
check sees nothing else), so n = 16384 costs seconds, not the hours a full CPU product would.

Cheaper arithmetic is simulated by rounding the operands, then computing in float32 (float64 for the float64 row):
tf32 keeps 10 explicit mantissa bits (float32 with the low 13 rounded to nearest even); fp16, bf16 and fp8 (e4m3) are
torch casts. The honest product is torch's own matmul in the challenge dtype, and for float32 also the worst honest
order, a plain sequential float32 sum (numpy's add.accumulate), for n <= 4096.

    .venv/bin/python tests/perf/precision_table.py [--n 256 1024 4096 16384]
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

Product = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def tf32(x: torch.Tensor) -> torch.Tensor:
    """float32 rounded to tf32 (10 explicit mantissa bits), round to nearest even, still stored as float32."""
    bits = x.contiguous().view(torch.int32)
    lsb = (bits >> 13) & 1
    rounded = (bits + 0x0FFF + lsb) & ~0x1FFF
    return rounded.view(torch.float32)


def rounded(fmt: torch.dtype) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: x.to(fmt).to(torch.float32)


def cheap(
    operands: Callable[[torch.Tensor], torch.Tensor], out: torch.dtype, compute: torch.dtype = torch.float32
) -> Product:
    return lambda a, b: (operands(a).to(compute) @ operands(b).to(compute)).to(out)


def honest(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a @ b


def sequential_float32(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row by row, c_ij = (((a_i1 b_1j) + a_i2 b_2j) + ...) with every product and sum rounded to float32."""
    bn = b.numpy()
    out = [np.add.accumulate(a_row.numpy()[:, None] * bn, axis=0, dtype=np.float32)[-1] for a_row in a]
    return torch.from_numpy(np.stack(out))


def split_k(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Two halves of K computed apart, each rounded to the output format, then summed and rounded again: a split-K
    reduction that keeps its partial sums in the output format (the loosest honest order bench allows)."""
    half = a.shape[1] // 2
    first = (a[:, :half] @ b[:half]).to(a.dtype).to(torch.float32)
    second = (a[:, half:] @ b[half:]).to(a.dtype).to(torch.float32)
    return (first + second).to(a.dtype)


#: challenge dtype -> [(what, product of the sampled rows)]
CASES: dict[str, list[tuple[str, Product]]] = {
    "float32": [("honest", honest), ("honest, sequential", sequential_float32),
                ("tf32", cheap(tf32, torch.float32)), ("fp16", cheap(rounded(torch.float16), torch.float32)),
                ("bf16", cheap(rounded(torch.bfloat16), torch.float32))],
    "bfloat16": [("honest", honest), ("honest, split-K", split_k),
                 ("fp8 e4m3", cheap(rounded(torch.float8_e4m3fn), torch.bfloat16))],
    "float64": [("honest", honest), ("float32", cheap(lambda x: x.to(torch.float32), torch.float64))],
}  # fmt: skip


def scores(dtype: str, n: int, rows: int = exact_rows.ROWS, seed: int = 0) -> dict[str, float]:
    """Each case's worst row score (d/tau RMS) for the challenge operands of (dtype, n)."""
    nonce = f"{seed:064x}"
    a_full = chl.operand(nonce, "node", "GPU-x", 0, "A", n, dtype)
    b = chl.operand(nonce, "node", "GPU-x", 0, "B", n, dtype)
    picked = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(n, size=min(rows, n), replace=False)))
    a = a_full.index_select(0, picked)
    del a_full
    a64 = a.to(torch.float64).numpy()
    out = {}
    for what, product in CASES[dtype]:
        if what == "honest, sequential" and n > 4096:
            continue
        c = product(a, b).to(torch.float64).numpy()
        out[what] = float(exact_rows.scores(a64, b, c, dtype).max())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[256, 1024, 4096, 16384])
    args = parser.parse_args()
    print("| challenge | n | honest | worst honest order | cheaper arithmetic: score |")
    print("|---|---:|---:|---:|---|")
    for dtype in CASES:
        for n in args.n:
            s = scores(dtype, n)
            worst = {k: s.pop(k) for k in list(s) if k.startswith("honest, ")}
            hon = s.pop("honest")
            worst_text = ", ".join(f"{k.split(', ')[1]} {v:.2g}" for k, v in worst.items()) or "-"
            cheaper = ", ".join(f"{k} {v:.3g}" for k, v in s.items())
            print(f"| {dtype} | {n} | {hon:.2g} | {worst_text} | {cheaper} |", flush=True)


if __name__ == "__main__":
    main()
