"""comm's planning: the message sizes a suite's [comm] section sweeps, and every op x size timed across a joined
process group, rank 0 recording each size as one Measurement (the slowest rank's time, every rank's samples kept).
comm has no per-device steps: it runs across ranks (bench.orchestrate), so its descriptor names no steps function."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import torch.distributed as dist

from bench import figures, launch, runner
from bench.hardware import devices
from bench.hardware.devices import DeviceFacts
from bench.model.reports import Measurement, utc_now
from bench.workloads import comm as cm

#: Largest message when a suite names none, by device kind (the [comm] max_bytes key's documented default; any kind
#: but cuda runs gloo on the host and takes the CPU's).
DEFAULT_MAX_BYTES = {"cuda": 2**30, "cpu": 64 * 2**20}


def default_max_bytes(kind: str) -> int:
    """The largest message on a device kind when none is named (a suite's [comm] max_bytes, bench comm's --max-bytes)."""
    return DEFAULT_MAX_BYTES["cuda" if kind == "cuda" else "cpu"]


def suite_sizes(cc: dict[str, Any], kind: str) -> list[int]:
    """The message sizes of a suite's [comm] section on a device kind (bench.workloads.comm.message_sizes)."""
    return cm.message_sizes(cc["min_bytes"], cc["max_bytes"] or default_max_bytes(kind), cc["factor"])


def measurements(where: launch.Placement, ops: list[str], sizes: list[int], iterations: int, warmup: int,
                 device_name: str, facts: DeviceFacts, hostname: str | None,
                 batches: int = cm.BATCHES) -> Iterator[Measurement | None]:  # fmt: skip
    """Every op x size across the joined process group; every rank must iterate this in step. Rank 0 gets each
    size's Measurement (max over ranks, every rank's samples kept); other ranks get None. Each size is `batches`
    samples, each the per-op mean of `iterations` back-to-back operations (bench.workloads.comm.time_batches)."""
    n = where.world_size
    # One collective of every rank on the job's own group first: NCCL makes its communicator at the first call, and
    # a batched send/recv (sendrecv) may be that first call only if every rank takes part, which an odd rank out of
    # the pairs does not.
    dist.barrier()
    for op in ops:
        for size in sizes:
            start = utc_now()
            b = cm.buffers(op, size, where.rank, n, device_name)
            warm, timed, ok = cm.time_op(b, batches, iterations, warmup, device_name)
            gathered: list[Any] = [None] * n
            dist.all_gather_object(gathered, {"rank": where.rank, "host": hostname, "device": asdict(facts),
                                              "warmup_s": warm, "samples_s": timed, "correct": ok},
                                   group=launch.control())  # fmt: skip
            yield measurement(op, b.bytes, n, gathered, facts, start, iterations) if where.rank == 0 else None


def measurement(op: str, size: int, n: int, ranks: list[dict[str, Any]], facts: devices.DeviceFacts, start: str,
                ops_per_sample: int = 1) -> Measurement:  # fmt: skip
    """Rank 0's record of one size: each sample (a batch's per-op mean) = max over ranks, every rank's raw samples
    kept; work_per_iteration stays the bytes of one operation, so verify re-derives the figures from the samples."""
    ranks = sorted(ranks, key=lambda r: r["rank"])
    samples = [max(r["samples_s"][i] for r in ranks) for i in range(len(ranks[0]["samples_s"]))]
    warm = [max(r["warmup_s"][i] for r in ranks) for i in range(len(ranks[0]["warmup_s"]))]
    wrong = [r["rank"] for r in ranks if not r["correct"]]
    return Measurement(
        workload=cm.WORKLOAD,
        spec={
            "op": op,
            "bytes": size,
            "world_size": n,
            "dtype": "float32",
            "backend": dist.get_backend(),
            "ops_per_sample": ops_per_sample,
        },
        device=asdict(facts),
        status="invalid" if wrong else "ok",
        reason=f"wrong result on rank(s) {wrong}" if wrong else None,
        work_per_iteration=size,  # bytes moved per iteration (S), the quantity bandwidths divide
        work_unit=figures.Unit.BYTE,
        timer="perf_counter",
        warmup_s=warm,
        samples_s=samples,
        summary=figures.comm_summary(samples, size, op, n),
        validity={"check": "collective", "passed": not wrong, "wrong_ranks": wrong},
        details={
            "busbw_factor": figures.busbw_factor(op, n),
            "per_rank": [
                {
                    "rank": r["rank"],
                    "host": r["host"],
                    "device": r["device"].get("id"),
                    "uuid": r["device"].get("uuid"),
                    "samples_s": r["samples_s"],
                }
                for r in ranks
            ],
        },
        start_utc=start,
        end_utc=utc_now(),
    )


def job_phases(cc: dict[str, Any], where: launch.Placement, kind: str,
               facts: list[DeviceFacts]) -> list[runner.JobPhase]:  # fmt: skip
    """A suite's [comm] section in a job of several ranks: every op at every size across the job's ranks, one sweep,
    recorded by rank 0 alone (a collective's figure is the job's)."""
    label = f"comm x{where.world_size} ranks"
    return [runner.JobPhase(runner.Step(label, list, "comm"), functools.partial(_job, cc, label))]


def _job(cc: dict[str, Any], label: str, ctx: runner.JobContext) -> Iterator[Measurement | None]:
    """The collectives' phase of a job; each measurement names the ranks it waited for."""
    sizes = suite_sizes(cc, ctx.kind)
    advance = ctx.sweep(label, len(cc["ops"]) * len(sizes))
    for m in measurements(ctx.where, cc["ops"], sizes, cc["iterations"], cc["warmup_iterations"], ctx.device.id,
                          ctx.device, ctx.host.get("hostname"), cc["batches"]):  # fmt: skip
        advance()
        if m:
            m.details["stragglers"] = ctx.stragglers
        yield m
