"""Benchmark, not a test: training TFLOPS against the matmul MAMF of the same CPU and precision, in one process.

    .venv/bin/python tests/perf/train_vs_mamf.py [--presets tiny,small] [--budget 20]

A training step is mostly matmuls plus what they cannot hide (attention softmax, norms, optimizer), so
train TFLOPS / MAMF says how much of the device's achievable matmul rate a real training step keeps.
"""

from __future__ import annotations

import argparse

from bench.hardware import devices, host, peaks
from bench.workloads import matmul_search as ms
from bench.workloads import train as tr


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--presets", default="tiny,small")
    ap.add_argument("--budget", type=float, default=20.0)
    args = ap.parse_args()
    inv = host.host_inventory()
    cpu = devices.facts("cpu", inv)
    config = ms.SearchConfig("auto", args.budget, window_s=0)
    out = list(
        ms.search(
            cpu, "float32", config, ms.candidates_for(cpu, "float32", config, devices.free_memory_bytes("cpu"), 0)
        )
    )
    mamf = next(m for m in out if m.details["search"].get("mamf")).summary["tflops_median"]
    print(f"float32 MAMF on this CPU: {mamf * 1e3:.1f} GFLOPS")
    print(f"{'model':6} {'preset':8} {'step ms':>9} {'items/s':>10} {'GFLOPS':>8} {'/ MAMF':>7} {'MFU':>6}")
    for name in args.presets.split(","):
        for model in ("gpt", "mlp"):
            m = tr.run(tr.preset(model, name), cpu, peak=peaks.cpu_peak(inv, "float32"))
            s = m.summary
            print(f"{model:6} {name:8} {s['median_s'] * 1e3:>9.2f} {s['items_per_s']:>10.0f} "
                  f"{s['tflops_median'] * 1e3:>8.1f} {s['tflops_median'] / mamf:>7.2f} {s.get('mfu', float('nan')):>6.1%}"
                  + ("" if m.status == "ok" else f"  {m.status}: {m.reason}"))  # fmt: skip


if __name__ == "__main__":
    main()
