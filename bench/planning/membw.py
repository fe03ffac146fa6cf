"""membw's planning: STREAM's kernels as one step per device (and host<->device copies on GPUs), held against the
peak table's memory bandwidth, on the NUMA node NVML names for a GPU."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from bench import runner
from bench.hardware import nvml, peaks
from bench.hardware.devices import DeviceFacts
from bench.measure.sampling import Policy
from bench.workloads import membw as mb


def steps(facts: list[DeviceFacts], policy: Policy, elements: int | None) -> list[runner.Step]:
    """One step per device: STREAM's four kernels (and host<->device copies on GPUs)."""
    out = []
    for f in facts:
        peak = peaks.memory_bandwidth_tbps(f.name) if f.kind == "cuda" else None
        cpus = nvml.cpu_affinity(f.uuid) if f.kind == "cuda" and f.uuid else None
        out.append(runner.Step(f"membw {f.label}", functools.partial(mb.run, f, policy, elements, peak, cpu_affinity=cpus),
                               lane=runner.lane(f)))  # fmt: skip
    return out


def build(policy: Policy, elements: int | None, facts: list[DeviceFacts], readers: dict[str, Any]) -> list[runner.Step]:
    """steps as a bench.plans.lane_plan build."""
    return steps(facts, policy, elements)


def suite_steps(bc: dict[str, Any], f: DeviceFacts, host_inv: dict[str, Any], readers: dict[str, Any],
                progress_for: Callable[[str], Callable[[int, int], None]] | None = None) -> list[runner.Step]:  # fmt: skip
    """A suite's [membw] section on one device: the STREAM kernels."""
    policy = Policy(budget_s=bc["budget_s"], min_iterations=5, max_warmup_s=min(bc["budget_s"], 1.0))
    elements = int(bc["array_mib"] * 2**20 / 8) if bc["array_mib"] else None
    return steps([f], policy, elements)
