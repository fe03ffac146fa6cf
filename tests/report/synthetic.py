"""Small NodeReports with chosen raw samples, for the pure functions over reports (compare, gates, exports)."""

from __future__ import annotations

import copy
import random

from bench.report.model import Measurement, NodeReport
from bench.workloads import matmul as mm

HOST = {"hostname": "node-a", "fingerprint": "fp-a", "cpu_model": "Test CPU", "architecture": "x86_64",
        "physical_cores": 2, "torch_version": "2.13.0+cpu", "torch_cuda": None, "torch_blas": "mkl"}  # fmt: skip
DEVICE = {"id": "cpu", "kind": "cpu", "name": "Test CPU", "uuid": "fp-a"}
N = 512


def samples(median_s: float, n: int = 30, spread: float = 0.01, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [median_s * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def matmul(precision: str, samples_s: list[float], *, status: str = "ok", emulated: bool = False,
           role: str | None = None, mamf: bool = False) -> Measurement:  # fmt: skip
    flops = mm.flops(N, N, N)
    details: dict = {"backend": "torch"}
    if role:
        details["search"] = {"role": role, "mode": "auto", "mamf": mamf}
    return Measurement(workload="matmul", spec={"m": N, "n": N, "k": N, "precision": precision}, device=dict(DEVICE),
                       status=status, reason=None if status == "ok" else "product check failed", emulated=emulated,
                       flops_per_iteration=flops, timer="perf_counter", samples_s=samples_s,
                       summary=mm.derived_figures(samples_s, flops, None),
                       validity={"check": "freivalds", "passed": status == "ok"}, details=details)  # fmt: skip


def report(measurements: list[Measurement], *, host: dict | None = None, run_id: str = "run-a",
           end: str | None = "2026-11-28T10:05:00.000000Z", interrupted: bool = False) -> NodeReport:  # fmt: skip
    return NodeReport(run_id=run_id, tool={"name": "bench", "version": "0.1.0"}, command_line=["bench", "run"], config={},
                      inventory={"host": copy.deepcopy(host or HOST), "nvml": {"available": False, "gpus": []}},
                      start_utc="2026-11-28T10:00:00.000000Z", end_utc=end, interrupted=interrupted,
                      measurements=measurements)  # fmt: skip
