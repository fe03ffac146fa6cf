"""train's planning: the [train] section of a suite as specs per device kind, one step per model x preset, the peak
a training run is held against, and what each rank of a data-parallel job runs and records."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.distributed as dist

from bench import launch, runner
from bench.hardware import peaks
from bench.hardware.devices import DeviceFacts
from bench.model.reports import Measurement
from bench.workloads import train as tr

#: Training presets a suite runs when its config names none.
DEFAULT_PRESETS = {"cpu": ("tiny",), "cuda": ("small", "gpt2-124m")}


def peak(device: DeviceFacts, host: dict[str, Any], precision: str) -> peaks.Peak | None:
    """Training is held against the same peak as a matmul (peaks.peak_for), never with the CPU overrides."""
    return peaks.peak_for(device, host, precision)


def specs(tc: dict[str, Any], kind: str) -> list[tr.TrainSpec]:
    """The [train] section of a suite config as specs for a device kind."""
    precision = tc["precision"] or ("bfloat16" if kind == "cuda" else "float32")
    return [tr.preset(m, p, steps=tc["steps"], warmup=tc["warmup_steps"], precision=precision)
            for m in tc["models"] for p in (tc["presets"] or DEFAULT_PRESETS[kind])]  # fmt: skip


def measurements(spec: tr.TrainSpec, facts: DeviceFacts, peak: peaks.Peak | None, where: launch.Placement,
                 progress: Callable[[int, int], None] | None = None, host: str | None = None) -> list[Measurement]:  # fmt: skip
    """One rank: the measurement. Several: rank 0's single-rank baseline, then every rank's DDP run and the total.
    A node's report holds only its own devices, so each node leader (local rank 0) gets the DDP runs of the ranks on
    its host (`host`: this node's fingerprint); rank 0 also gets the baseline and the job-wide total, whose details
    name every rank's host and device. Other ranks get nothing. `progress(done, total)` follows each run's steps."""
    if not where.distributed:
        return [tr.run(spec, facts, peak=peak, progress=progress)]
    baseline = tr.run(spec, facts, peak=peak) if where.rank == 0 else None  # one rank alone: the scaling reference
    # the others wait for the baseline on the host-side group, whose timeout allows for a rank working alone
    dist.barrier(group=launch.control())
    ids = [facts.local_index] if facts.kind == "cuda" else None
    # each rank draws its own batches (seed = rank); DDP starts every replica from rank 0's parameters
    mine = tr.run(spec, facts, peak=peak, seed=where.rank, progress=progress,
                  wrap=lambda model: torch.nn.parallel.DistributedDataParallel(model, device_ids=ids))  # fmt: skip
    gathered: list[Any] = [None] * where.world_size
    dist.all_gather_object(gathered, {"rank": where.rank, "host": host, "measurement": mine.to_dict()},
                           group=launch.control())  # fmt: skip
    if where.local_rank != 0 and where.rank != 0:
        return []
    everyone = sorted(gathered, key=lambda g: g["rank"])
    ranks = [Measurement.from_dict(g["measurement"]) for g in everyone]
    for g, m in zip(everyone, ranks, strict=True):
        m.details["rank"], m.details["host"] = g["rank"], g["host"]
    local = [m for g, m in zip(everyone, ranks, strict=True) if g["host"] == host]
    if where.rank != 0:
        return local
    assert baseline is not None
    baseline.details["role"] = "single-rank baseline"
    return [baseline, *local, tr.data_parallel_total(spec, ranks, baseline, peak)]


def suite_steps(tc: dict[str, Any], f: DeviceFacts, host_inv: dict[str, Any], readers: dict[str, Any],
                progress_for: Callable[[str], Callable[[int, int], None]] | None = None) -> list[runner.Step]:  # fmt: skip
    """A suite's [train] section on one device: one step per model x preset, in this process."""
    chosen = []
    for spec in specs(tc, f.kind):
        label = f"train {spec.model} {spec.preset} on {f.label}"
        # in this process after the lanes, except on a MIG instance bench binds: this process cannot see it
        chosen.append(runner.Step(label, lambda s=spec, f=f, label=label: measurements(
            s, f, peak(f, host_inv, s.precision), launch.placement({}),
            progress_for(label) if progress_for else None), lane=f.visible))  # fmt: skip
    return chosen


def job_phases(tc: dict[str, Any], where: launch.Placement, kind: str,
               facts: list[DeviceFacts]) -> list[runner.JobPhase]:  # fmt: skip
    """A suite's [train] section in a job of several ranks: each model x preset trained data-parallel across the
    job's ranks (rank 0 also alone first, as the baseline), recorded by every node leader for its node's ranks."""
    phases = []
    for spec in specs(tc, kind):
        label = f"train {spec.model} {spec.preset} x{where.world_size} ranks"
        step = runner.Step(label, list, "train", {"id": facts[0].id if facts else "cpu", "kind": kind})
        phases.append(runner.JobPhase(step, functools.partial(_job, spec, label), leaders=True))
    return phases


def _job(spec: tr.TrainSpec, label: str, ctx: runner.JobContext) -> Iterator[Measurement]:
    """One training phase of a job; the job's total names the ranks it waited for."""
    top = peak(ctx.device, ctx.host, spec.precision)
    for m in measurements(spec, ctx.device, top, ctx.where, ctx.steps_of(label), ctx.fingerprint):
        if m.details.get("role") == "data-parallel total":
            m.details["stragglers"] = ctx.stragglers
        yield m
