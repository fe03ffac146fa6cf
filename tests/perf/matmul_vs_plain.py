"""Benchmark, not a test: bench's CPU MAMF against plain numpy and torch matmul loops, in one process.

    .venv/bin/python tests/perf/matmul_vs_plain.py [--sizes 1024,2048,4096] [--reps 10] [--budget 30]

For each precision: the median GFLOPS of a plain `a @ b` loop in numpy and in torch at each size (the best size
counts), bench's MAMF from `--search auto`, and MAMF / best plain loop. bench must never under-report a machine:
the ratio should be >= 1.0 (up to noise on a shared VM).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from bench.hardware import devices, host, peaks
from bench.workloads import matmul_search as ms

NUMPY = {"float64": np.float64, "float32": np.float32}
TORCH = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}


def _median_gflops(fn, n: int, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def plain(name: str, sizes: list[int], reps: int) -> tuple[float | None, float]:
    best_np, best_t = None, 0.0
    for n in sizes:
        if name in NUMPY:
            a, b = np.random.rand(n, n).astype(NUMPY[name]), np.random.rand(n, n).astype(NUMPY[name])
            best_np = max(best_np or 0.0, _median_gflops(lambda a=a, b=b: a @ b, n, reps))
        ta, tb = torch.rand(n, n).to(TORCH[name]), torch.rand(n, n).to(TORCH[name])
        best_t = max(best_t, _median_gflops(lambda a=ta, b=tb: a @ b, n, reps))
    return best_np, best_t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1024,2048,4096")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--budget", type=float, default=ms.BUDGET_S["cpu"])
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    inv = host.host_inventory()
    cpu = devices.facts("cpu", inv)
    print(
        f"{'precision':10} {'numpy':>9} {'torch':>9} {'MAMF':>9} {'shape':>16} {'backend':>8} {'MAMF/plain':>10}  GFLOPS"
    )
    for name in ("float32", "float64"):
        np_g, t_g = plain(name, sizes, args.reps)
        config = ms.SearchConfig("auto", args.budget, window_s=0)
        candidates = ms.candidates_for(cpu, name, config, devices.free_memory_bytes("cpu"), 0)
        out = list(ms.search(cpu, name, config, candidates, peak=peaks.cpu_peak(inv, name)))
        mamf = next(m for m in out if m.details["search"].get("mamf"))
        g = mamf.summary["tflops_median"] * 1e3
        shape = f"{mamf.spec['m']}x{mamf.spec['n']}x{mamf.spec['k']}"
        best_plain = max(x for x in (np_g, t_g) if x is not None)
        print(
            f"{name:10} {np_g or float('nan'):>9.1f} {t_g:>9.1f} {g:>9.1f} {shape:>16} {mamf.details['backend']:>8} "
            f"{g / best_plain:>10.2f}"
        )


if __name__ == "__main__":
    main()
