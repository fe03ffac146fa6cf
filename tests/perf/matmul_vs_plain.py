"""Benchmark, not a test: bench's matmul figure against plain numpy and torch loops in the same process.

    .venv/bin/python tests/perf/matmul_vs_plain.py [--size 2048] [--reps 10]

Prints GFLOPS (best of the plain loops' iterations, bench's median and best) and the ratio bench/plain per precision.
bench must never under-report a machine: its best should be at least ~0.9x the plain loops' best.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.hardware import devices, host
from bench.measure.sampling import Policy
from bench.workloads import matmul as mm

NUMPY = {"float64": np.float64, "float32": np.float32}


def plain_torch(name: str, n: int, reps: int) -> float:
    dtype = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16}[name]
    a, b = torch.rand(n, n).to(dtype), torch.rand(n, n).to(dtype)
    c = a @ b
    best = min(_time(lambda: torch.matmul(a, b, out=c)) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def plain_numpy(name: str, n: int, reps: int) -> float | None:
    if name not in NUMPY:
        return None
    a, b = np.random.rand(n, n).astype(NUMPY[name]), np.random.rand(n, n).astype(NUMPY[name])
    best = min(_time(lambda: a @ b) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    cpu = devices.facts("cpu", host.host_inventory())
    print(f"{'precision':10} {'size':>6} {'numpy':>9} {'torch':>9} {'bench med':>10} {'bench best':>10} {'best/plain':>10}")
    for name in ("float64", "float32", "bfloat16"):
        m = mm.run(mm.MatmulSpec(args.size, args.size, args.size, name), cpu, Policy(budget_s=2.0, max_warmup_s=1.0))
        n = m.spec["n"]  # an emulated precision is measured smaller; compare at the same size
        reps = args.reps if n == args.size else 3
        np_g, t_g = plain_numpy(name, n, reps), plain_torch(name, n, reps)
        med, best = m.summary["tflops_median"] * 1e3, m.summary["tflops_best"] * 1e3
        plain = max(g for g in (np_g, t_g) if g is not None)
        print(f"{name:10} {n:>6} {np_g or float('nan'):>9.2f} {t_g:>9.2f} {med:>10.2f} {best:>10.2f} {best / plain:>10.2f}"
              + ("  (emulated)" if m.emulated else ""))


if __name__ == "__main__":
    main()
