"""Benchmark, not a test: what an auditor challenge costs the prover and the verifier.

    .venv/bin/python tests/perf/challenge_cost.py [--n 4096 --n 8192] [--dtype float32]

For each n, one product: the prover generates A and B (version 2 operands, bench.challenge.generator, on the CPU),
multiplies them (torch, this machine's CPU), and hashes C's rows into a Merkle root on every core; the verifier regenerates A and B, re-hashes C and runs Freivalds' check
in float64 (bench.workloads.freivalds: C.r, B.r, A.(B.r), (A*A).v and three row-norm passes, about 15 n^2 FLOPs).
Prints both times and FLOP counts, and the ratio of the verifier's FLOPs to the prover's 2 n^3.
Goal (issue: auditor challenges): verifier FLOPs <= 1% of the prover's.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench import challenge as chl
from bench import precision as prec
from bench.challenge.protocol import OPERAND_VERSION
from bench.workloads import freivalds

#: Floating-point operations of freivalds.check on n x n operands: 3 matrix-vector products (2n^2 each), (A*A).v
#: (3n^2), and the row norms of C, A and B (2n^2 each).
VERIFIER_FLOPS_PER_N2 = 15


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--dtype", default="float32", choices=chl.DTYPES)
    args = ap.parse_args()
    nonce, node, device = "cd" * 32, "node", "cpu-fingerprint"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dtype {args.dtype}")
    for n in args.n or [4096, 8192]:
        t0 = time.perf_counter()
        a = chl.operand(nonce, node, device, 0, "A", n, args.dtype, OPERAND_VERSION)
        b = chl.operand(nonce, node, device, 0, "B", n, args.dtype, OPERAND_VERSION)
        t1 = time.perf_counter()
        c = a @ b
        t2 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
            root = chl.merkle_root(chl.row_bytes(c), pool)
        t3 = time.perf_counter()
        prover = t3 - t0
        del a, b
        v0 = time.perf_counter()
        a = chl.operand(nonce, node, device, 0, "A", n, args.dtype, OPERAND_VERSION)
        b = chl.operand(nonce, node, device, 0, "B", n, args.dtype, OPERAND_VERSION)
        v1 = time.perf_counter()
        assert chl.merkle_root(chl.row_bytes(c)) == root
        v2 = time.perf_counter()
        result = freivalds.check(a, b, c, prec.get(args.dtype))
        v3 = time.perf_counter()
        assert result.passed, result.reason
        verifier = v3 - v0
        p_flops, v_flops = 2 * n**3, VERIFIER_FLOPS_PER_N2 * n**2
        print(f"n={n}: prover {prover:.2f} s (generate {t1 - t0:.2f}, multiply {t2 - t1:.2f} = "
              f"{p_flops / (t2 - t1) / 1e9:.1f} GFLOPS, hash {t3 - t2:.2f}); verifier {verifier:.2f} s (generate "
              f"{v1 - v0:.2f}, hash {v2 - v1:.2f}, Freivalds {v3 - v2:.2f})")  # fmt: skip
        print(f"       FLOPs: prover {p_flops:.3g}, verifier {v_flops:.3g} -> verifier/prover = {v_flops / p_flops:.3%}"
              f" (goal <= 1%); time verifier/prover = {verifier / prover:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
