"""A suite as runner steps: each workload of the config, in the config's order, planned by its own descriptor
(bench.registry: `steps`, "module:function", one device at a time), and each GPU's lane rebuilt in its worker. What a
workload runs, and with which sizes, peaks and rules, lives with that workload (bench.planning.<name>, or wherever its
descriptor names): this module names none."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

from bench import registry, runner
from bench.hardware import devices
from bench.hardware.devices import DeviceFacts
from bench.measure import telemetry


def suite_steps(config: dict[str, Any], facts: list[DeviceFacts], host_inv: dict[str, Any], readers: dict[str, Any],
                progress_for: Callable[[str], Callable[[int, int], None]] | None = None) -> list[runner.Step]:  # fmt: skip
    """A suite config's per-device workloads as steps, in the config's order: each workload's steps function (its
    descriptor's `steps`) for each device. Workloads that run across ranks (no steps function) have none here.
    `progress_for(label)` gives a long step its progress(done, total) callback."""
    steps: list[runner.Step] = []
    for name in config["suite"]["workloads"]:
        workload = registry.get(name)
        build = workload.step_builder() if workload else None
        if build is None:
            continue
        for f in facts:
            device = asdict(f)
            chosen = build(config[name], f, host_inv, readers, progress_for)
            # each step keeps the lane its workload chose for it (bench.runner.lane, or None: after the lanes)
            steps += [runner.Step(s.label, s.run, name, device, s.lane) for s in chosen]
    return steps


def across_ranks(config: dict[str, Any]) -> list[str]:
    """The config's workloads that run across a job's ranks (their descriptor's `across_ranks`), in its order."""
    return [name for name in config["suite"]["workloads"] if (w := registry.get(name)) is not None and w.across_ranks]


def job_phases(config: dict[str, Any], where: Any, kind: str,
               facts: list[DeviceFacts]) -> tuple[list[runner.JobPhase], list[str]]:  # fmt: skip
    """The job phases of the config's across-ranks workloads, in its order (each descriptor's `job`), and the names of
    those that declare none (bench run says they are skipped)."""
    phases: list[runner.JobPhase] = []
    missing: list[str] = []
    for name in across_ranks(config):
        build = registry.get(name).job_builder()
        if build is None:
            missing.append(name)
        else:
            phases += build(config[name], where, kind, facts)
    return phases, missing


def per_rank(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with only the workloads each rank runs on its own device in a job of several ranks: those that do not
    run across ranks."""
    joint = set(across_ranks(config))
    return {**config, "suite": {**config["suite"], "workloads": [w for w in config["suite"]["workloads"]
                                                                 if w not in joint]}}  # fmt: skip


@contextlib.contextmanager
def lane_plan(build: Callable[[list[DeviceFacts], dict[str, Any]], list[runner.Step]], facts: list[DeviceFacts],
              lane_id: str) -> Iterator[list[runner.Step]]:  # fmt: skip
    """runner.LanePlan: the steps of one lane, rebuilt in its worker process by `build(facts, readers)` (suite_build,
    or a workload's own build such as bench.planning.matmul.search_build: module-level, so that
    functools.partial(lane_plan, partial(build, ...), facts) pickles where the steps, closures over telemetry readers
    and each other's results, do not), with telemetry readers of its own, closed when the lane is done."""
    # a MIG instance's facts are probed here, in the one process that sees it
    mine = [devices.probed(f) for f in facts if runner.lane(f) == lane_id]
    readers, closers = telemetry.readers(mine)
    try:
        yield [s for s in build(mine, readers) if s.lane == lane_id]
    finally:
        for close in closers:
            close()


def suite_build(config: dict[str, Any], host_inv: dict[str, Any], facts: list[DeviceFacts],
                readers: dict[str, Any]) -> list[runner.Step]:  # fmt: skip
    """suite_steps as a lane_plan build."""
    return suite_steps(config, facts, host_inv, readers)
