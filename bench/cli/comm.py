"""`bench comm`: collective bus bandwidth across the ranks of a job (torchrun, srun, or plain variables)."""

from __future__ import annotations

import socket
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import click
import torch.distributed as dist

from bench import launch, runner
from bench.cli.keys import key_option, signing_key
from bench.cli.output import fail, stdout
from bench.cli.ranks import place, rank_job
from bench.hardware import devices
from bench.hardware.inventory import collect
from bench.report import render
from bench.report.model import Measurement, utc_now
from bench.report.store import dumps
from bench.workloads import comm as cm

DEFAULT_MAX = {"cpu": 64 * 2**20, "cuda": 2**30}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




@click.command()
@click.option("--op", "ops", type=click.Choice(list(cm.OPS)), multiple=True, help="Collective (repeatable). Default: all.")
@click.option("--min-bytes", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--max-bytes", type=click.IntRange(min=1), default=None, help=f"Default {DEFAULT_MAX}.")
@click.option("--factor", type=click.IntRange(min=2), default=2, show_default=True)
@click.option("--iterations", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True)
@click.option("--device", "device_name", default=None, help="cpu or cuda:N (default: the local rank's GPU, else cpu).")
@click.option("--timeout", type=click.FloatRange(min=1.0), default=300.0, show_default=True,
              help="Seconds to wait for the other ranks (joining or in a collective) before failing.")
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"), show_default=True)
@key_option
@click.option("--json", "as_json", is_flag=True)
@click.option("--quiet", is_flag=True)
def comm(ops: tuple[str, ...], min_bytes: int, max_bytes: int | None, factor: int, iterations: int, warmup: int,
         device_name: str | None, timeout: float, results_dir: Path, key_path: Path | None, as_json: bool,
         quiet: bool) -> None:  # fmt: skip
    """Time collectives over message sizes (min, min*factor, ... max) with NCCL on GPUs and gloo on CPUs, check every
    result, and report algbw and busbw per size. Launch it with torchrun, srun or RANK/WORLD_SIZE/MASTER_ADDR; alone it
    runs as a one-rank job. Rank 0 gathers every rank's timings and alone writes the report and prints the table.
    """
    where, device_name, kind = place(device_name)
    try:
        sizes = cm.message_sizes(min_bytes, max_bytes or DEFAULT_MAX[kind], factor)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not where.distributed:
        where = replace(where, master_port=_free_port())
    try:
        launch.join(where, "nccl" if kind == "cuda" else "gloo", timeout)
    except launch.LaunchError as exc:
        fail(str(exc))
    lead = where.rank == 0
    key = signing_key(key_path) if lead else None
    inv = collect()
    facts = devices.facts(device_name, inv["host"])
    config = {"workload": "comm", "ops": list(ops or cm.OPS), "sizes": sizes, "iterations": iterations,
              "warmup": warmup, "world_size": where.world_size, "launcher": where.source}  # fmt: skip
    writer = runner.start(results_dir, config, inv, key) if lead else None
    n = where.world_size
    with rank_job(where, writer):
        for op in ops or cm.OPS:
            for size in sizes:
                start = utc_now()
                b = cm.buffers(op, size, where.rank, n, device_name)
                warm, timed, ok = cm.time_op(b, iterations, warmup, device_name)
                gathered: list[Any] = [None] * n
                dist.all_gather_object(gathered, {"rank": where.rank, "host": inv["host"].get("hostname"),
                                                  "device": asdict(facts), "warmup_s": warm, "samples_s": timed,
                                                  "correct": ok})  # fmt: skip
                if writer:
                    writer.add(_measurement(op, b.bytes, n, gathered, facts, start))
                    if not quiet:
                        click.echo(f"{op} {b.bytes} B: busbw {writer.report.measurements[-1].summary['busbw_gbps']:.3f} GB/s",
                                   err=True)  # fmt: skip
    if not writer:
        return
    writer.finish()
    if as_json:
        click.echo(dumps(writer.report.to_dict()), nl=False)
    else:
        stdout().print(render.busbw_table(writer.report.measurements))
        stdout().print(f"report: {writer.path}")
    wrong = [m for m in writer.report.measurements if m.status != "ok"]
    if wrong:
        fail(f"{len(wrong)} collective results were wrong: " + "; ".join(f"{m.spec['op']} {m.spec['bytes']} B" for m in wrong))


def _measurement(op: str, size: int, n: int, ranks: list[dict[str, Any]], facts: devices.DeviceFacts, start: str) -> Measurement:
    """Rank 0's record of one size: per-iteration time = max over ranks, every rank's raw samples kept."""
    ranks = sorted(ranks, key=lambda r: r["rank"])
    samples = [max(r["samples_s"][i] for r in ranks) for i in range(len(ranks[0]["samples_s"]))]
    warm = [max(r["warmup_s"][i] for r in ranks) for i in range(len(ranks[0]["warmup_s"]))]
    wrong = [r["rank"] for r in ranks if not r["correct"]]
    return Measurement(
        workload=cm.WORKLOAD,
        spec={"op": op, "bytes": size, "world_size": n, "dtype": "float32", "backend": dist.get_backend()},
        device=asdict(facts),
        status="invalid" if wrong else "ok",
        reason=f"wrong result on rank(s) {wrong}" if wrong else None,
        flops_per_iteration=float(size),  # bytes moved per iteration (S), the quantity bandwidths divide
        timer="perf_counter",
        warmup_s=warm,
        samples_s=samples,
        summary=cm.figures(samples, size, op, n),
        validity={"check": "collective", "passed": not wrong, "wrong_ranks": wrong},
        details={"busbw_factor": cm.busbw_factor(op, n),
                 "per_rank": [{"rank": r["rank"], "host": r["host"], "device": r["device"].get("id"),
                               "uuid": r["device"].get("uuid"), "samples_s": r["samples_s"]} for r in ranks]},  # fmt: skip
        start_utc=start,
        end_utc=utc_now(),
    )
