"""Benchmark, not a test: how long `bench --help` and each `bench VERB --help` take, each in a fresh interpreter.

    .venv/bin/python tests/perf/cli_help_time.py [--repeat 3]

The command line imports a verb's module only when that verb runs, and verb modules import torch, pandas and
matplotlib only inside their bodies, so help should answer in well under 0.5 s (tests/cli/test_lazy_cli.py checks
the imports themselves; this prints the time).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VERBS = ["", "run", "matmul", "train", "comm", "membw", "inventory", "doctor", "report", "verify", "aggregate",
         "compare", "challenge", "challenge answer", "export", "history", "keys"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for verb in VERBS:
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bench", *verb.split(), "--help"], env=env, check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            times.append(time.perf_counter() - start)
        print(
            f"bench {verb + ' ' if verb else ''}--help: best {min(times):.3f} s, median {sorted(times)[len(times) // 2]:.3f} s"
        )


if __name__ == "__main__":
    main()
