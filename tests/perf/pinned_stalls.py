"""Benchmark, not a test: what slows a pinned matmul thread on this machine, for how long, and which per-core figure
outlasts it (issue 25: bench gate's per-core figure, configs/gate-cpu.toml's `rounds`).

    .venv/bin/python tests/perf/pinned_stalls.py [--seconds 180] [--window 0.25] [--size 1024]

One thread, pinned to each allowed CPU in turn (os.sched_setaffinity), runs float32 and float64 products of --size^3
in windows of --window seconds, cycling CPU x precision, for --seconds. Each window records every product's wall
seconds and thread CPU seconds (time.thread_time) and each CPU's /proc/stat counters over the window (the 8th column,
steal: time the hypervisor ran something else while this vCPU wanted to run). It prints, per CPU and precision:

- the windows' fastest-iteration spread (robust CV, 90th percentile and worst slow-down), at wall and at CPU time:
  a stall that slows the CPU time too is the vCPU running slower (a sibling hyperthread, the host's clock), not the
  vCPU descheduled, and no steal counter or re-take on steal can see it;
- how many windows the host stole from, and whether they are the slow ones (their median slow-down, the correlation);
- the correlation of a window's slow-down with the next ones' (lag in seconds): how long a stall lasts;
- the figure of a "run" (consecutive windows over about 7 s) read four ways, and the robust CV of the ratios of
  consecutive runs, as bench gate's pairs read them: one window; the fastest of three windows spread over the run
  (`rounds = 3`); the fastest of all its windows; the median of three.

Every figure is measured here; on a machine shared with other processes it prints their load beside it.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch


def steal_and_busy() -> dict[int, tuple[int, int]]:
    """{cpu: (steal jiffies, all non-idle jiffies)} from /proc/stat ({} where there is none)."""
    out = {}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return {}
    for line in lines:
        f = line.split()
        if f and f[0].startswith("cpu") and f[0][3:].isdigit():
            v = [int(x) for x in f[1:]]
            out[int(f[0][3:])] = (v[7] if len(v) > 7 else 0, sum(v) - v[3] - v[4])
    return out


def rcv(v: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(v - np.median(v))) / np.median(v))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--window", type=float, default=0.25)
    ap.add_argument("--size", type=int, default=1024)
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    before = os.getloadavg()
    torch.set_num_threads(1)
    dtypes = (torch.float32, torch.float64)
    mats = {}
    for dt in dtypes:
        g = torch.Generator().manual_seed(0)
        n = args.size
        mats[dt] = (torch.rand(n, n, generator=g, dtype=dt), torch.rand(n, n, generator=g, dtype=dt),
                    torch.empty(n, n, dtype=dt))  # fmt: skip
    combos = [(c, dt) for dt in dtypes for c in cpus]
    windows: list[dict] = []
    t0 = time.monotonic()
    i = 0
    try:
        while time.monotonic() - t0 < args.seconds:
            cpu, dt = combos[i % len(combos)]
            i += 1
            os.sched_setaffinity(0, {cpu})
            a, b, c = mats[dt]
            torch.mm(a, b, out=c)
            s0, w0, its = steal_and_busy(), time.perf_counter(), []
            while time.perf_counter() - w0 < args.window:
                p, q = time.perf_counter(), time.thread_time()
                torch.mm(a, b, out=c)
                its.append((time.perf_counter() - p, time.thread_time() - q))
            s1 = steal_and_busy()
            stolen = s1[cpu][0] - s0[cpu][0] if cpu in s0 and cpu in s1 else 0
            windows.append({"t": w0 - t0, "cpu": cpu, "dt": str(dt).split(".")[-1], "wall": min(x[0] for x in its),
                            "cpu_s": min(x[1] for x in its), "steal": stolen})  # fmt: skip
    finally:
        os.sched_setaffinity(0, set(cpus))
    after = os.getloadavg()
    span = windows[-1]["t"] / max(1, len(windows) - 1)
    print(f"{len(windows)} windows of {args.window} s in {time.monotonic() - t0:.0f} s, CPUs {cpus}, {args.size}^3; "
          f"one window every {span:.2f} s; load average before {before[0]:.2f}, after {after[0]:.2f} (1 min)")  # fmt: skip
    per_run = max(1, round(7.0 / (span * len(combos))))  # windows of one CPU x precision in about 7 s
    for cpu, dt in combos:
        name = str(dt).split(".")[-1]
        ws = [w for w in windows if w["cpu"] == cpu and w["dt"] == name]
        wall = np.array([w["wall"] for w in ws])
        cpu_s = np.array([w["cpu_s"] for w in ws])
        steal = np.array([w["steal"] for w in ws])
        slow = wall / np.median(wall) - 1
        print(f"\nCPU {cpu} {name}: {len(ws)} windows; fastest iteration at wall: robust CV {rcv(wall):.1%}, 90th "
              f"percentile {np.percentile(slow, 90):+.1%}, worst {slow.max():+.1%}; at thread CPU time: robust CV "
              f"{rcv(cpu_s):.1%}, 90th percentile {np.percentile(cpu_s / np.median(cpu_s) - 1, 90):+.1%}")  # fmt: skip
        hit = steal > 0
        corr = float(np.corrcoef(steal, slow)[0, 1]) if hit.any() and not hit.all() else float("nan")
        print(f"  steal: {hit.sum()} of {len(ws)} windows had any ({steal.sum()} jiffies in all); their median "
              f"slow-down {np.median(slow[hit]) if hit.any() else float('nan'):+.1%}, the others' "
              f"{np.median(slow[~hit]) if (~hit).any() else float('nan'):+.1%}; correlation with the slow-down "
              f"{corr:.2f}")  # fmt: skip
        lags = [k for k in (1, 2, 4, 8, 16) if k < len(slow) - 2]
        print("  correlation with the window that many seconds later: " + ", ".join(
            f"{k * span * len(combos):.1f} s {np.corrcoef(slow[:-k], slow[k:])[0, 1]:.2f}" for k in lags))  # fmt: skip
        rate = 1 / wall
        if per_run < 3 or len(rate) < 4 * per_run:
            continue
        runs = [rate[j : j + per_run] for j in range(0, len(rate) - per_run + 1, per_run)]
        spread3 = [r[:: max(1, per_run // 3)][:3] for r in runs]
        ways = {"one window": [r[0] for r in runs], "fastest of 3 spread (rounds = 3)": [max(r) for r in spread3],
                f"fastest of all {per_run}": [max(r) for r in runs],
                "median of 3 spread": [float(np.median(r)) for r in spread3]}  # fmt: skip
        for what, figs in ways.items():
            f = np.array(figs)
            ratios = f[1:] / f[:-1]
            print(f"  a run of ~7 s read at {what}: consecutive runs' ratios robust CV {rcv(ratios):.1%}, range "
                  f"{ratios.min() - 1:+.1%} to {ratios.max() - 1:+.1%} ({len(ratios)} ratios)")  # fmt: skip


if __name__ == "__main__":
    main()
