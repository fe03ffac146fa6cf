"""Benchmark, not a test: does the regression gate cry wolf, and does it catch a real slow-down? (issue 25)

    .venv/bin/python tests/perf/gate_false_alarms.py [--runs 10] [--slow-runs 3] [--threshold 5%] [--budget 1.5]
                                                      [--config configs/smoke-cpu.toml]

Makes `--runs` back-to-back `bench run`s of unchanged code (default: a short matmul-only config, float32 and float64
at two fixed sizes, `--budget` seconds each; `--config` for another suite), each in its own process and results
directory, then `--slow-runs` runs of each of two real slow-downs, applied to every bench process (workers too) by a
sitecustomize first on PYTHONPATH:

- half the threads: bench.hardware.devices.physical_cores halved, so torch.set_num_threads gets half the cores;
- 10% slower: every timed matmul product followed by a busy-wait of 1/0.9 - 1 = 11.1% of its own time, inside the
  timed iteration, so the product's rate is 0.90 of what it was.

From the reports it prints:

- each metric's between-run coefficient of variation read three ways: at each run's median iteration (the headline's
  figure), at its fastest tenth, and at its fastest iteration (bench.report.drift.gated_figure, what the gate judges);
  and the smallest threshold at which no unchanged run, judged against the others, would be flagged
  (bench.report.drift.quiet_threshold, on the gated figure);
- the recommended threshold derived from that spread: the worst leave-one-out drop rounded up to a whole percent,
  plus one (a margin for the run after these), and whether it is below 10%, i.e. can catch a 10% slow-down at all;
- at `--threshold` and at the recommended one: the false alarms (each unchanged run judged against all the others by
  bench.report.gates.regressions, what `bench run --baseline` runs), and each slowed run judged against all the
  unchanged runs, with its measured slow-down (its gated figures against the unchanged runs' mean) and the gate's
  verdict.

Every figure comes from the runs made here. On a loaded machine (it prints `uptime` before and after) the spread is
the load's.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
budget_s = {budget}
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

#: every timed matmul product 1/0.9 - 1 longer, busy-waiting inside the timed iteration (time.sleep is too coarse for
#: a millisecond product): a rate of 0.90 of the unchanged one
TEN_PERCENT_SLOWER = """
import time as _time

from bench.workloads import matmul as _mm

_collect = _mm.collect
_EXTRA = 1 / 0.9 - 1


def _slower(timer, fn, policy):
    def slow():
        start = _time.perf_counter()
        out = fn()
        until = _time.perf_counter() + (_time.perf_counter() - start) * _EXTRA
        while _time.perf_counter() < until:
            pass
        return out

    return _collect(timer, slow, policy)


_mm.collect = _slower
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


def figures(reports: list[NodeReport], quantile: float | None = None, gated: bool = True) -> dict[str, list[float]]:
    """{metric title: one figure per run} for the metrics every run has: what the gate judges
    (drift.metric_figure), or read at each run's `quantile` iteration, or (gated False, no quantile) the metric's own
    value, its median iteration."""

    def one(m: Any) -> float:
        if quantile is not None:
            return drift.gated_figure(m.value, m.samples_s, quantile)
        return drift.metric_figure(m.name, m.value, m.samples_s) if gated else m.value

    per_run = [{m.title: one(m) for m in ok_metrics(r)[0].values()} for r in reports]
    common = set(per_run[0]).intersection(*per_run[1:])
    return {t: [run[t] for run in per_run] for t in sorted(common)}


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()[0]:.2f}"


def judge_all(runs: list[NodeReport], slowed: dict[str, list[NodeReport]], base: dict[str, list[float]],
              threshold: float) -> None:  # fmt: skip
    """False alarms among the unchanged runs (each against the others) and the slowed runs caught, at `threshold`."""
    alarms = 0
    for i, r in enumerate(runs):
        failed = [g for g in gates.regressions(runs[:i] + runs[i + 1 :], r, threshold) if not g.passed]
        alarms += bool(failed)
        for g in failed:
            print(f"    false alarm, unchanged run {i + 1}: {g.message}")
    print(f"  false alarms at {threshold:.1%}: {alarms} of {len(runs)} unchanged runs (each against the other "
          f"{len(runs) - 1})")  # fmt: skip
    for kind, reports in slowed.items():
        caught = 0
        for i, r in enumerate(reports):
            checks = gates.regressions(runs, r, threshold)
            mine = figures([r])
            drops = [1 - mine[t][0] / statistics.fmean(v) for t, v in base.items() if t in mine]
            flagged = sum(not g.passed for g in checks)
            caught += flagged > 0
            print(f"    {kind} run {i + 1}: measured {min(drops):.1%} to {max(drops):.1%} slower across {len(drops)} "
                  f"metrics; the gate failed {flagged} of them")  # fmt: skip
        print(f"  {kind} runs caught at {threshold:.1%}: {caught} of {len(reports)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="unchanged runs (at least 3)")
    ap.add_argument("--slow-runs", type=int, default=3, help="runs of each slow-down (half threads, 10%% slower)")
    ap.add_argument("--threshold", default="5%", help="the --max-regression under test (default 5%%)")
    ap.add_argument("--budget", type=float, default=1.5, help="seconds per measurement of the default config")
    ap.add_argument("--config", type=Path, default=None, help="suite config (default: a short matmul-only one)")
    args = ap.parse_args()
    if args.runs < 3:
        ap.error("--runs: at least 3 (each run is judged against the others)")
    threshold = gates.parse_fraction(args.threshold)
    print(f"before: {uptime()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gate-false-alarms-") as tmp:
        work = Path(tmp)
        config = args.config.resolve() if args.config else work / "short.toml"
        if not args.config:
            config.write_text(SHORT.format(budget=args.budget))
        plain_path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        runs, took = [], []
        for i in range(args.runs):
            t = time.monotonic()
            runs.append(bench_run(config, work / f"run-{i}", plain_path))
            took.append(time.monotonic() - t)
            print(f"unchanged run {i + 1}/{args.runs}: {took[-1]:.1f} s", file=sys.stderr)
        slowed: dict[str, list[NodeReport]] = {}
        for kind, code in (("half-threads", HALF_THREADS), ("10%-slower", TEN_PERCENT_SLOWER)):
            folder = work / kind
            folder.mkdir()
            (folder / "sitecustomize.py").write_text(code)
            for i in range(args.slow_runs):
                path = os.pathsep.join([str(folder), plain_path])
                slowed.setdefault(kind, []).append(bench_run(config, work / f"{kind}-{i}", path))
                print(f"{kind} run {i + 1}/{args.slow_runs} done", file=sys.stderr)
    print(f"after: {uptime()}")

    threads = sorted({m.threads for r in runs for m in r.measurements if m.threads})
    for kind, reports in slowed.items():
        theirs = sorted({m.threads for r in reports for m in r.measurements if m.threads})
        print(f"CPU threads recorded in the reports: unchanged runs {threads}, {kind} runs {theirs}")
    print(f"{args.runs} unchanged runs ({statistics.median(took):.1f} s each, median), {args.slow_runs} of each "
          f"slow-down; {os.cpu_count()} logical CPUs\n")  # fmt: skip
    base = figures(runs)
    medians = figures(runs, gated=False)
    tenth = figures(runs, 0.1)
    quiet = {}
    print("between-run CV read at each run's: median iteration / fastest tenth / fastest iteration (gated)")
    print(f"{'metric':<66} {'gated mean':>10} {'median':>7} {'tenth':>7} {'fastest':>7} {'range':>6} {'quiet at':>8}")
    for title, values in base.items():
        name = re.sub(r" model=.*? (?=\w+=)", " ", title).replace("matmul_tflops device=", "")
        spread = (max(values) - min(values)) / statistics.fmean(values)
        quiet[title] = drift.quiet_threshold(values)
        print(f"{name[:66]:<66} {statistics.fmean(values):>10.4g} {cv(medians[title]):>7.1%} {cv(tenth[title]):>7.1%} "
              f"{cv(values):>7.1%} {spread:>6.1%} {quiet[title]:>8.1%}")  # fmt: skip
    worst = max(quiet.values())
    recommended = (math.ceil(worst * 100) + 1) / 100
    print(f"\nworst leave-one-out drop of the gated figure: {worst:.1%}; recommended threshold (rounded up to a whole "
          f"percent, plus one): {recommended:.0%}"
          + ("" if recommended < 0.10 else " -- NOT below 10%: this machine cannot gate a 10% slow-down"))  # fmt: skip
    for t in dict.fromkeys([threshold, recommended]):
        print(f"\nat --max-regression {t:.0%}:")
        judge_all(runs, slowed, base, t)


if __name__ == "__main__":
    main()
