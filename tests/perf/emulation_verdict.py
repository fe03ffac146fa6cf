"""Benchmark, not a test: does load make the search call a native precision emulated? (issue 25)

    .venv/bin/python tests/perf/emulation_verdict.py [--rounds 4] [--budget 3] [--precisions float64,bfloat16]

Each round searches float32, then each precision, on this CPU with the smoke suite's 3 s budget, as `bench run`
does (bench.planning.matmul.search_plan: float32's MAMF and per-shape rates handed on). Per precision it prints the
measurements its search made, whether it was called emulated, its MAMF, and how many of its coarse measurements
ran below EMULATED_RATIO of float32's MAMF: each of those alone stopped the search before the fix (one look,
compared with a MAMF measured at a large shape), and the lowest ratio seen. The machine's load is printed with each
round: quote it with the figures.
"""

from __future__ import annotations

import argparse
import os
import time

from bench.hardware import devices, host
from bench.planning import matmul as plan
from bench.workloads import matmul_search as ms


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--budget", type=float, default=3.0)
    ap.add_argument("--precisions", default="float64,bfloat16")
    args = ap.parse_args()
    inv = host.host_inventory()
    cpu = devices.facts("cpu", inv)
    names = ("float32", *args.precisions.split(","))
    called, old_trips, searches = 0, 0, 0
    for r in range(1, args.rounds + 1):
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"round {r} (load {load} on {os.cpu_count()} cores)")
        steps = plan.search_plan([cpu], inv, names, "auto", [], args.budget, 0.0, plan.PeakOverrides(), {}, 0.0)
        f32_mamf = None
        for step in steps:
            began = time.monotonic()
            measured = list(step.run())
            seconds = time.monotonic() - began
            precision = measured[0].spec["precision"] if measured else "?"
            mamf = next((m for m in measured if m.details.get("search", {}).get("mamf") and m.summary), None)
            rate = mamf.summary["tflops_median"] if mamf else None
            if precision == "float32":
                f32_mamf = rate
            coarse = [m for m in measured if m.summary and m.details.get("search", {}).get("phase") == "coarse"]
            ratios = [m.summary["tflops_median"] / f32_mamf for m in coarse] if f32_mamf else []
            trips = sum(x < ms.EMULATED_RATIO for x in ratios) if precision != "float32" else 0
            emulated = any(m.emulated for m in measured)
            if precision != "float32":
                searches += 1
                called += emulated
                old_trips += bool(ratios) and ratios[0] < ms.EMULATED_RATIO
            where = f"{rate * 1e3:.1f} GFLOPS at {mamf.spec['m']}^3" if rate and mamf else "-"
            low = f", lowest coarse/f32 MAMF {min(ratios):.2%}" if ratios and precision != "float32" else ""
            print(f"  {precision}: {seconds:.1f} s, {len(measured)} measurements, emulated={emulated}, MAMF {where}, "
                  f"{trips} coarse below {ms.EMULATED_RATIO:.0%}{low}")  # fmt: skip
    print(f"searches called emulated: {called}/{searches}; first coarse below {ms.EMULATED_RATIO:.0%} of float32's "
          f"MAMF (what alone stopped a search before the fix): {old_trips}/{searches}")  # fmt: skip


if __name__ == "__main__":
    main()
