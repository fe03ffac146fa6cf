"""Simulation, not a test: how often the paired gate's sequential session (bench.report.paired.sequential) calls
unchanged code a regression or passes a 10% slow-down under heavy-tailed run noise, with and without the
order-statistic bounds of the median (paired.median_bounds), and how many pairs it needs (issue 25).

    .venv/bin/python tests/perf/paired_rule_sim.py [--sessions 3000] [--seed 3]

Each run's speed is 1 x N(1, 1%), and with probability p slowed by a factor drawn uniformly from [lo, hi] (another
process took a core): three noise models, from one run in six slowed 15-45% to one in twenty slowed 10-30%. Each
session is judged at 5% on one metric after 5 pairs, then after each added pair while inconclusive, up to 12. "MAD
alone" is the rule before the bounds: a regression below 1 - max(threshold, floor), a pass where the floor is within
the threshold and the median above 1 - threshold. Seconds: about 30 on one core."""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.report import paired

MODELS = ((1 / 6, 0.55, 0.85), (1 / 10, 0.6, 0.9), (1 / 20, 0.7, 0.9))
THRESHOLD = 0.05


def speeds(rng: random.Random, p: float, lo: float, hi: float) -> list[float]:
    return [rng.gauss(1, 0.01) * (rng.uniform(lo, hi) if rng.random() < p else 1) for _ in range(2 * paired.MAX_PAIRS)]


def paired_runs(run_speeds: list[float], slowdown: float) -> tuple[Callable[[str], None], list[float]]:
    """A session's `run` (each run's speed from `run_speeds`, the candidate's slowed by `slowdown`) and the pairs'
    ratios it fills (candidate / baseline), as bench gate's sequential session orders the sides."""
    runs: list[float] = []
    ratios: list[float] = []

    def run(side: str) -> None:
        runs.append(run_speeds[len(runs)] * (1 - slowdown if side == paired.CANDIDATE else 1))
        if len(runs) % 2 == 0:
            a, b = runs[-2:]
            ratios.append(b / a if paired.side_at(len(runs) - 2) == paired.BASELINE else a / b)

    return run, ratios


def session(run_speeds: list[float], slowdown: float, bounds: bool) -> tuple[str, int]:
    run, ratios = paired_runs(run_speeds, slowdown)

    def look() -> str:
        v = paired.judge(ratios, THRESHOLD)
        if bounds:
            return v.outcome
        if v.spread_known and v.ratio < 1 - max(THRESHOLD, v.floor):
            return paired.REGRESSION
        return paired.PASS if v.gated and v.ratio >= 1 - THRESHOLD else paired.INCONCLUSIVE

    return paired.sequential(run, look)


#: The all-core figure's noise models: each run's figure N(1, sd), and one run in ten slowed by 10-40% (another
#: process, or the host slowing one vCPU of the two the figure's threads run on).
ALL_CORE_SDS = (0.01, 0.03, 0.05, 0.08)
#: What the all-core figure is shown: unchanged, 10% slower (the per-core figure's to catch), 13 of 16 threads' work
#: (-19%: tests/adversarial/test_thirteenth_round.py) and half the threads.
ALL_CORE_CHANGES = (0.0, 0.10, 0.19, 0.50)


def all_core_session(run_speeds: list[float], slowdown: float, target: float | None) -> tuple[str, int]:
    """One all-core metric judged at 5% (its A/A calibration steady: paired.metric_threshold), for a metric there to
    catch `target` (0.5: one thread of 2; 0.1: one of 16, or any N of 10 or more; None: the rule before
    PairedVerdict.rules_out_target)."""
    run, ratios = paired_runs(run_speeds, slowdown)

    return paired.sequential(run, lambda: paired.judge(ratios, THRESHOLD, target).outcome)


def all_core_main(sessions: int, seed: int) -> None:
    print(
        f"\nthe all-core figure judged at 5% after a steady calibration, pairs 5..12; {sessions} sessions each; "
        "pass/REGRESSION/inconclusive and mean pairs; 'before': no target (inconclusive while its floor > 5%)"
    )
    head = " ".join(f"{f'-{c:.0%}':>21}" for c in ALL_CORE_CHANGES)
    print(f"{'run noise (1 in 10 slowed 10-40%)':<36} {'rule':<16} {head}")
    for sd in ALL_CORE_SDS:
        rng = random.Random(seed)
        drawn = [[rng.gauss(1, sd) * (rng.uniform(0.6, 0.9) if rng.random() < 0.1 else 1)
                  for _ in range(2 * paired.MAX_PAIRS)] for _ in range(sessions)]  # fmt: skip
        for name, target in (("before", None), ("2 threads (50%)", 0.5), ("16 threads (10%)", 0.1)):
            cols = []
            for change in ALL_CORE_CHANGES:
                out = [all_core_session(sp, change, target) for sp in drawn]
                n = {k: sum(o == k for o, _ in out) for k in (paired.PASS, paired.REGRESSION, paired.INCONCLUSIVE)}
                cols.append(f"{n[paired.PASS]}/{n[paired.REGRESSION]}/{n[paired.INCONCLUSIVE]} "
                            f"{statistics.fmean(q for _, q in out):.1f}")  # fmt: skip
            print(f"{f'sd {sd:.0%}':<36} {name:<16} " + " ".join(f"{c:>21}" for c in cols))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    print(f"{args.sessions} sessions each way per model, seed {args.seed}; 5% threshold, pairs 5..12")
    print(f"{'model':<28} {'rule':<11} {'unchanged: pass/REGRESSION/inconcl.':>36} {'pairs':>5}  "
          f"{'10% slower: PASS/regression/inconcl.':>37} {'pairs':>5}")  # fmt: skip
    for p, lo, hi in MODELS:
        rng = random.Random(args.seed)
        drawn = [speeds(rng, p, lo, hi) for _ in range(args.sessions)]
        for bounds in (False, True):
            cols = []
            for slowdown in (0.0, 0.10):
                out = [session(sp, slowdown, bounds) for sp in drawn]
                n = {k: sum(o == k for o, _ in out) for k in (paired.PASS, paired.REGRESSION, paired.INCONCLUSIVE)}
                cols.append(f"{n[paired.PASS]}/{n[paired.REGRESSION]}/{n[paired.INCONCLUSIVE]}")
                cols.append(f"{statistics.fmean(q for _, q in out):.2f}")
            model = f"1 in {round(1 / p)} runs slowed {1 - hi:.0%}-{1 - lo:.0%}"
            print(f"{model:<28} {'bounds' if bounds else 'MAD alone':<11} {cols[0]:>36} {cols[1]:>5}  {cols[2]:>37} "
                  f"{cols[3]:>5}")  # fmt: skip
    all_core_main(args.sessions, args.seed)


if __name__ == "__main__":
    main()
