"""`bench comm`: collective bus bandwidth across the ranks of a job (torchrun, srun, or plain variables)."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from bench.cli import choices
from bench.cli.options import (
    device_option,
    json_option,
    key_option,
    quiet_option,
    results_dir_option,
    signing_key,
    timeout_option,
)
from bench.cli.output import fail, stdout
from bench.cli.params import ByteSizeParam
from bench.cli.ranks import place, rank_job


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@click.command()
@click.option(
    "--op", "ops", type=click.Choice(choices.COMM_OPS), multiple=True, help="Collective (repeatable). Default: all."
)
@click.option(
    "--min-bytes",
    type=ByteSizeParam(),
    default="8",
    show_default=True,
    help="Smallest message: bytes, or with a unit (4K, 1M; K/M/G are binary).",
)
@click.option(
    "--max-bytes", type=ByteSizeParam(), default=None, help="Largest message, e.g. 1G (default: 64M on CPU, 1G on GPU)."
)
@click.option(
    "--factor", type=click.IntRange(min=2), default=2, show_default=True, help="Each size is the last times this."
)
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Operations launched back to back per timed batch (nccl-tests' -n); a sample is their per-op mean.",
)
@click.option(
    "--batches", type=click.IntRange(min=1), default=5, show_default=True, help="Timed batches (samples) per size."
)
@click.option(
    "--warmup-iterations",
    "warmup",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Untimed operations per size first (nccl-tests' -w).",
)
@click.option(
    "--warmup",
    "warmup_old",
    type=click.IntRange(min=0),
    default=None,
    hidden=True,
    deprecated="use --warmup-iterations",
)
@device_option("cpu, cuda:N (or all, on a node with one device). Default: the local rank's GPU, else the CPU.")
@timeout_option
@results_dir_option()
@key_option
@json_option("the report")
@quiet_option
def comm(ops: tuple[str, ...], min_bytes: int, max_bytes: int | None, factor: int, iterations: int, batches: int, warmup: int,
         warmup_old: int | None, device_name: str | None, timeout: float, results_dir: Path, key_path: Path | None, as_json: bool,
         quiet: bool) -> None:  # fmt: skip
    """Time collectives over message sizes (min, min*factor, ... max) with NCCL on GPUs and gloo on CPUs as nccl-tests
    times them (batches of back-to-back operations, barrier and synchronize outside the timing), check every result,
    and report the per-op time (us), algbw and busbw per size. Launch it with torchrun, srun or RANK/WORLD_SIZE/MASTER_ADDR; alone it
    runs as a one-rank job. Rank 0 gathers every rank's timings and alone writes the report and prints the table.
    """
    from bench import launch, orchestrate, runner
    from bench.hardware import devices
    from bench.hardware.inventory import collect
    from bench.planning import comm as comm_plan
    from bench.registry import comm as comm_workload
    from bench.report import render
    from bench.report.store import dumps
    from bench.workloads import comm as cm

    warmup = warmup if warmup_old is None else warmup_old
    where, device_name, kind = place(device_name)
    try:
        sizes = cm.message_sizes(min_bytes, max_bytes or comm_plan.default_max_bytes(kind), factor)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not where.distributed:
        where = replace(where, master_port=_free_port())
    try:
        launch.join(where, "nccl" if kind == "cuda" else "gloo", timeout, device_name)
    except launch.LaunchError as exc:
        fail(str(exc))
    lead = where.rank == 0
    key = signing_key(key_path) if lead else None
    inv = collect()
    facts = devices.facts(device_name, inv["host"])
    config = {"workload": "comm", "ops": list(ops or cm.OPS), "sizes": sizes, "iterations": iterations,
              "batches": batches, "warmup": warmup, "world_size": where.world_size, "launcher": where.source}  # fmt: skip
    writer = runner.start(results_dir, config, inv, key) if lead else None

    def show(m: Any) -> None:
        if not quiet:
            s = m.summary
            click.echo(f"{m.spec['op']} {m.spec['bytes']} B: {s['median_s'] * 1e6:.1f} us, algbw "
                       f"{s['algbw_gbps']:.3f} GB/s, busbw {s['busbw_gbps']:.3f} GB/s", err=True)  # fmt: skip

    with rank_job(where, writer):
        orchestrate.comm_job(where, list(ops or cm.OPS), sizes, iterations, warmup, facts, inv, writer, show, batches)
    if not writer:
        return
    if as_json:
        click.echo(dumps(writer.report.to_dict()), nl=False)
    else:
        stdout().print(render.stacked([comm_workload.busbw_grid(writer.report.measurements, full=True)]))
        stdout().print(f"report: {writer.path}")
    wrong = [m for m in writer.report.measurements if m.status != "ok"]
    if wrong:
        fail(
            f"{len(wrong)} collective results were wrong: "
            + "; ".join(f"{m.spec['op']} {m.spec['bytes']} B" for m in wrong)
        )
