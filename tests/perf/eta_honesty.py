"""Benchmark, not a test: how honest `bench run`'s time left is (issue 25).

    .venv/bin/python tests/perf/eta_honesty.py [--config configs/smoke-cpu.toml] [--runs 2]

Runs the suite `--runs` times back to back into one temporary results directory, as a log sees it
(BENCH_PROGRESS=lines), stamping every stderr line with the time it arrived. For each '~h:mm:ss left' after the first
step it prints the estimate over the time that really remained (from the line to the '[done]' line), and for the run
the worst ratio (furthest from 1) and the largest rise of the estimate beyond the time elapsed between two lines.
The first run has only the budgets to go by; later ones have what each step took in the run before (StepHistory).
Goal: every ratio within 0.7..1.3 and no rise beyond the time elapsed. The machine's load skews both: say it.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LEFT = re.compile(r"~(\d+):(\d\d):(\d\d) left")


def seconds(match: re.Match[str]) -> int:
    h, m, s = (int(x) for x in match.groups())
    return 3600 * h + 60 * m + s


def run_once(config: Path, results: Path) -> list[tuple[float, str]]:
    env = {**os.environ, "BENCH_PROGRESS": "lines", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", "from bench.cli import main; main()", "run", "--config", str(config),
           "--results-dir", str(results), "--skip-doctor"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    start = time.monotonic()
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append((time.monotonic() - start, line.rstrip()))
    proc.wait()
    return lines


def judge(lines: list[tuple[float, str]]) -> tuple[float, float, int]:
    """(worst ratio, largest rise beyond the time elapsed, estimates judged) of one run's lines."""
    end = next((t for t, line in lines if line.startswith("[done]")), None)
    if end is None:
        raise SystemExit("the run printed no [done] line:\n" + "\n".join(line for _, line in lines[-20:]))
    estimates = [(t, seconds(m), line) for t, line in lines if (m := LEFT.search(line))]
    worst, rise, judged = 1.0, 0.0, 0
    for i, (t, left, line) in enumerate(estimates):
        remaining = end - t
        if i > 0:  # after the first step (the first line is the plan's own estimate)
            rise = max(rise, left - estimates[i - 1][1] - (t - estimates[i - 1][0]))
            ratio = left / remaining if remaining > 0 else float("inf")
            judged += 1
            if abs(ratio - 1) > abs(worst - 1):
                worst = ratio
            print(f"  {t:7.1f} s  estimate {left:5d} s  really {remaining:6.1f} s  ratio {ratio:5.2f}  {line[:70]}")
    return worst, rise, judged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "smoke-cpu.toml")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(1, args.runs + 1):
            lines = run_once(args.config.resolve(), Path(tmp))
            total = next(t for t, line in lines if line.startswith("[done]"))
            print(f"run {n} ({'budgets only' if n == 1 else 'estimates from the run before'}): {total:.1f} s")
            worst, rise, judged = judge(lines)
            print(f"run {n}: worst ratio {worst:.2f} over {judged} estimates; largest rise beyond the time elapsed "
                  f"{max(rise, 0):.0f} s; load average now {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
