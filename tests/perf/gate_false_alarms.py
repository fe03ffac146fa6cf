"""Benchmark, not a test: does the regression gate cry wolf, and does it catch a real slow-down? (issue 25)

    .venv/bin/python tests/perf/gate_false_alarms.py [--runs 10] [--slow-runs 3] [--threshold 5%]
                                                      [--config configs/smoke-cpu.toml]

Makes `--runs` back-to-back `bench run`s of unchanged code (default: a short matmul-only config, float32 and float64
at two fixed sizes; `--config` for another suite), each in its own process and results directory, then `--slow-runs`
runs with half the threads (torch.set_num_threads at half the physical cores, through a sitecustomize that every bench
process, workers included, imports). From the reports it prints:

- each metric's figures across the unchanged runs: mean, coefficient of variation, range, and the smallest threshold
  at which no unchanged run, judged against the others, would have been flagged (bench.report.drift.quiet_threshold);
- the false alarms at `--threshold`: each unchanged run judged against all the others by the gate itself
  (bench.report.gates.regressions, what `bench run --baseline` runs);
- each half-threads run judged against all the unchanged runs: its slow-down per metric and whether the gate failed;
- each unchanged run's figures scaled by 0.90 (exactly 10% slower), judged against the others: caught or not.

Every figure comes from the runs made here. Run it with K = 10 on an idle machine before trusting the threshold it
suggests; on a loaded one (it prints the load average) the spread is the load's.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.model.reports import NodeReport
from bench.report import drift, gates
from bench.report.compare import ok_metrics
from bench.report.store import load_report

#: matmul only, fixed sizes (256^3 is too short to be steady on a CPU), no outputs but the report: about 20 s a run
#: on 2 cores, start-up included
SHORT = """
[suite]
name = "gate-false-alarms"
devices = ["cpu"]
workloads = ["matmul"]

[matmul]
search = "none"
precisions = ["float32", "float64"]
sizes = [512, 1024]
budget_s = 1.5
max_warmup_s = 0.2

[outputs]
formats = []
"""

#: imported by every Python process started with its folder first on PYTHONPATH (bench's workers too)
HALF_THREADS = """
from bench.hardware import devices as _devices

_cores = _devices.physical_cores()
_devices.physical_cores = lambda: max(1, _cores // 2)
"""


def bench_run(config: Path, results: Path, pythonpath: str) -> NodeReport:
    env = {**os.environ, "PYTHONPATH": pythonpath, "BENCH_PROGRESS": "lines"}
    cmd = [sys.executable, "-c", "from bench.cli import main; main()", "run", "--config", str(config),
           "--results-dir", str(results), "--skip-doctor", "--quiet"]  # fmt: skip
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=ROOT)
    found = sorted(results.glob("*/report.json"))
    if not found:
        raise SystemExit(f"bench run wrote no report (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return load_report(found[-1])


def figures(reports: list[NodeReport]) -> dict[str, list[float]]:
    """{metric title: one figure per run} for the metrics every run has."""
    per_run = [{m.title: m.value for m in ok_metrics(r)[0].values()} for r in reports]
    common = set(per_run[0]).intersection(*per_run[1:])
    return {t: [run[t] for run in per_run] for t in sorted(common)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="unchanged runs (at least 3)")
    ap.add_argument("--slow-runs", type=int, default=3, help="runs with half the threads")
    ap.add_argument("--threshold", default="5%", help="the --max-regression under test (default 5%%)")
    ap.add_argument("--config", type=Path, default=None, help="suite config (default: a short matmul-only one)")
    args = ap.parse_args()
    if args.runs < 3:
        ap.error("--runs: at least 3 (each run is judged against the others)")
    threshold = gates.parse_fraction(args.threshold)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="gate-false-alarms-") as tmp:
        work = Path(tmp)
        config = args.config.resolve() if args.config else work / "short.toml"
        if not args.config:
            config.write_text(SHORT)
        half = work / "half"
        half.mkdir()
        (half / "sitecustomize.py").write_text(HALF_THREADS)
        plain_path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        runs, slow, took = [], [], []
        for i in range(args.runs):
            t = time.monotonic()
            runs.append(bench_run(config, work / f"run-{i}", plain_path))
            took.append(time.monotonic() - t)
            print(f"unchanged run {i + 1}/{args.runs}: {took[-1]:.1f} s", file=sys.stderr)
        for i in range(args.slow_runs):
            slow.append(bench_run(config, work / f"slow-{i}", os.pathsep.join([str(half), plain_path])))
            print(f"half-threads run {i + 1}/{args.slow_runs} done", file=sys.stderr)
    load_after = os.getloadavg()

    threads = sorted({m.threads for r in runs for m in r.measurements if m.threads})
    slow_threads = sorted({m.threads for r in slow for m in r.measurements if m.threads})
    print(f"CPU threads recorded in the reports: unchanged runs {threads}, half-threads runs {slow_threads}")
    print(f"{args.runs} unchanged runs ({statistics.median(took):.1f} s each, median), {args.slow_runs} half-threads "
          f"runs; {os.cpu_count()} logical CPUs; load average before {load_before[0]:.2f} / after "
          f"{load_after[0]:.2f} (1 min)\n")  # fmt: skip
    base = figures(runs)
    quiet = {}
    print(f"{'metric':<70} {'mean':>10} {'cv':>6} {'range':>6} {'quiet at':>8}")
    for title, values in base.items():
        mean = statistics.fmean(values)
        cv = statistics.stdev(values) / mean
        spread = (max(values) - min(values)) / mean
        quiet[title] = drift.quiet_threshold(values)
        print(f"{title:<70} {mean:>10.4g} {cv:>6.1%} {spread:>6.1%} {quiet[title]:>8.1%}")
    worst = max(quiet.values())
    print(f"\nthreshold that would have raised no gate on these runs (worst leave-one-out drop): {worst:.1%} "
          f"-> {math.ceil(worst * 100):d}% rounded up")  # fmt: skip

    alarms = 0
    for i, r in enumerate(runs):
        failed = [g for g in gates.regressions(runs[:i] + runs[i + 1 :], r, threshold) if not g.passed]
        alarms += bool(failed)
        for g in failed:
            print(f"  false alarm, unchanged run {i + 1}: {g.message}")
    print(f"false alarms at {threshold:.1%}: {alarms} of {len(runs)} unchanged runs (each against the other "
          f"{len(runs) - 1})")  # fmt: skip

    caught = 0
    for i, r in enumerate(slow):
        checks = gates.regressions(runs, r, threshold)
        mine = figures([r])
        drops = [1 - mine[t][0] / statistics.fmean(v) for t, v in base.items() if t in mine]
        flagged = sum(not g.passed for g in checks)
        caught += flagged > 0
        print(f"half-threads run {i + 1}: slower by {min(drops):.1%} to {max(drops):.1%} across {len(drops)} metrics; "
              f"gate failed on {flagged} of them")  # fmt: skip
    print(f"half-threads runs caught at {threshold:.1%}: {caught} of {len(slow)}")

    hits = total = 0
    for i in range(len(runs)):
        for values in base.values():
            others = values[:i] + values[i + 1 :]
            hits += drift.judge(others, values[i] * 0.90, threshold).regressed
            total += 1
    print(f"exactly 10% slower (each unchanged run's figures x 0.90, against the others) caught at {threshold:.1%}: "
          f"{hits} of {total} metric-runs")  # fmt: skip


if __name__ == "__main__":
    main()
