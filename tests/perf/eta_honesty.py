"""Benchmark, not a test: how honest `bench run`'s time left is (issue 25).

    .venv/bin/python tests/perf/eta_honesty.py [--config configs/smoke-cpu.toml --config configs/node.toml] [--runs 2]

For each config (default: the smoke and the node suite), runs the suite `--runs` times back to back into one fresh
temporary results directory, as a log sees it (BENCH_PROGRESS=lines), stamping every stderr line with the time it
arrived. The first run has only the budgets and the rates it measures to go by; later ones have what each step took
in the run before (StepHistory, RESULTS_DIR/step-seconds.json). For each '~h:mm:ss left' after the first step it
prints the step that starts there and how long it really took, the estimate against the time that really remained
(from the line to the '[done]' line), and their ratio; for the run, the worst ratio and the largest rise of the
estimate beyond the time elapsed between two lines.

Goal (issue 25): every estimate within +-30% of what remained, and no rise beyond the time elapsed. The estimate is
printed in whole seconds, so an estimate within 1 s of what remained also passes (0 s left with 0.4 s to go is
honest; the ratio would say 0). The machine's load skews both: `uptime` is printed before and after each run.
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


#: the goal: within +-30% of what remained, or within the display's resolution (whole seconds)
TOLERANCE = 0.30
RESOLUTION_S = 1.0


def honest(estimate: float, remaining: float) -> bool:
    return abs(estimate - remaining) <= max(TOLERANCE * remaining, RESOLUTION_S)


def judge(lines: list[tuple[float, str]]) -> tuple[float, float, int, int]:
    """(worst ratio, largest rise beyond the time elapsed, estimates judged, estimates off the goal) of one run. The
    worst ratio is over the estimates off the goal and those made with 3.3 s or more to go."""
    end = next((t for t, line in lines if line.startswith("[done]")), None)
    if end is None:
        raise SystemExit("the run printed no [done] line:\n" + "\n".join(line for _, line in lines[-20:]))
    # step lines only ('[3/6 33%] ...'): a heartbeat inside a step is an estimate too, but starts no step
    estimates = [(t, seconds(m), line) for t, line in lines if (m := LEFT.search(line))]
    starts = [t for t, _, line in estimates if not line.split("]")[0].endswith("...")] + [end]
    worst, rise, judged, off = 1.0, 0.0, 0, 0
    print(f"  {'at s':>7} {'step took':>9} {'estimate':>8} {'really':>7} {'ratio':>6}  ok   line")
    for i, (t, left, line) in enumerate(estimates):
        remaining = end - t
        took = next((b for b in starts if b > t), end) - t
        if i == 0:  # the first step's line: the budgets' estimate (the plan's), not judged
            print(f"  {t:7.1f} {took:9.1f} {left:8d} {remaining:7.1f} {'':>6}  --   {line[:90]}")
            continue
        rise = max(rise, left - estimates[i - 1][1] - (t - estimates[i - 1][0]))
        ratio = left / remaining if remaining > 0 else float("inf")
        good = honest(left, remaining)
        judged += 1
        off += not good
        # the ratio means something where a second is under 30% of what remained
        if (not good or remaining >= RESOLUTION_S / TOLERANCE) and abs(ratio - 1) > abs(worst - 1):
            worst = ratio
        print(f"  {t:7.1f} {took:9.1f} {left:8d} {remaining:7.1f} {ratio:6.2f}  {'ok' if good else 'OFF'}  {line[:90]}")
    return worst, rise, judged, off


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()[0]:.2f} (no uptime)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        type=Path,
        action="append",
        default=None,
        help="suite config (repeatable; default: configs/smoke-cpu.toml and configs/node.toml)",
    )
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    configs = args.config or [ROOT / "configs" / "smoke-cpu.toml", ROOT / "configs" / "node.toml"]
    print(f"{os.cpu_count()} CPUs; {uptime()}", flush=True)
    verdicts = []
    for config in configs:
        with tempfile.TemporaryDirectory() as tmp:
            for n in range(1, args.runs + 1):
                lines = run_once(config.resolve(), Path(tmp))
                total = next((t for t, line in lines if line.startswith("[done]")), float("nan"))
                how = "no history: budgets and this run's rates" if n == 1 else "history: the run before"
                print(f"{config.name} run {n} ({how}): {total:.1f} s", flush=True)
                worst, rise, judged, off = judge(lines)
                verdicts.append((config.name, n, worst, rise, judged, off))
                print(f"{config.name} run {n}: {off} of {judged} estimates off the goal, worst ratio {worst:.2f}; "
                      f"largest rise beyond the time elapsed {max(rise, 0):.0f} s; {uptime()}", flush=True)  # fmt: skip
    print("\nsummary (goal: 0 estimates off, no rise):")
    for name, n, worst, rise, judged, off in verdicts:
        print(f"  {name} run {n}: {off}/{judged} off, worst ratio {worst:.2f}, largest rise {max(rise, 0):.0f} s")


if __name__ == "__main__":
    main()
