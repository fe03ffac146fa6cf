"""`bench train`: transformer and MLP training steps with honest FLOP counts, MFU, and data-parallel scaling."""

from __future__ import annotations

from pathlib import Path

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
from bench.cli.params import PrecisionParam
from bench.cli.ranks import place, rank_job


@click.command()
@click.option(
    "--model",
    "models",
    type=click.Choice(choices.TRAIN_MODELS),
    multiple=True,
    help="Workload (repeatable). Default: both.",
)
@click.option(
    "--preset",
    "presets",
    type=click.Choice(choices.TRAIN_PRESETS),
    multiple=True,
    help=f"Size (repeatable). Default {choices.per_kind(choices.DEFAULT_TRAIN_PRESETS)}. A preset that runs "
    "out of memory is skipped.",
)
@device_option(
    "cpu, cuda:N (or all, on a node with one device). Default: the local rank's GPU under a launcher, else "
    "the first GPU, else the CPU."
)
@click.option(
    "--dtype",
    "precision",
    type=PrecisionParam(list(choices.TRAIN_PRECISIONS)),
    default=None,
    help="bfloat16 (autocast over float32 master weights; default on GPU) or float32 (default on CPU).",
)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Timed steps (default: the preset's).")
@click.option(
    "--warmup-steps",
    "warmup",
    type=click.IntRange(min=0),
    default=None,
    help="Untimed steps first (default: the preset's).",
)
@click.option(
    "--warmup", "warmup_old", type=click.IntRange(min=0), default=None, hidden=True, deprecated="use --warmup-steps"
)
@click.option("--compile", "use_compile", is_flag=True, help="Run the model through torch.compile.")
@timeout_option
@results_dir_option()
@key_option
@json_option("the report")
@quiet_option
def train(models: tuple[str, ...], presets: tuple[str, ...], device_name: str | None, precision: str | None,
          steps: int | None, warmup: int | None, warmup_old: int | None, use_compile: bool, timeout: float, results_dir: Path,
          key_path: Path | None, as_json: bool, quiet: bool) -> None:  # fmt: skip
    """Train a GPT-style decoder and/or an MLP on a learnable synthetic task and report step time, tokens/s (samples/s),
    TFLOPS from an analytic FLOP count (checked against torch's FlopCounterMode), MFU and peak memory.

    A run whose loss is NaN/inf or did not fall is invalid (exit 1). Under torchrun, srun or RANK/WORLD_SIZE/
    MASTER_ADDR the same command trains data-parallel (DDP; NCCL on GPU, gloo on CPU): rank 0 first measures one rank
    alone, then all ranks together, and writes one report with per-rank and total throughput and the scaling
    efficiency. A rank that fails or never joins makes every rank exit with an error within --timeout.
    """
    from bench import launch, orchestrate, runner
    from bench.hardware import devices
    from bench.hardware.inventory import collect
    from bench.planning import train as train_plan
    from bench.registry import train as train_workload
    from bench.report import render
    from bench.report.store import dumps
    from bench.workloads import train as tr

    warmup = warmup if warmup_old is None else warmup_old
    where, device_name, kind = place(device_name)
    precision = precision or ("bfloat16" if kind == "cuda" else "float32")
    specs = [tr.preset(m, p, steps=steps, warmup=warmup, precision=precision, compile=use_compile or None)
             for m in (models or ("gpt", "mlp")) for p in (presets or train_plan.DEFAULT_PRESETS[kind])]  # fmt: skip
    if where.distributed:
        try:
            launch.join(where, "nccl" if kind == "cuda" else "gloo", timeout, device_name)
        except launch.LaunchError as exc:
            fail(str(exc))
    if kind == "cpu":
        orchestrate.share_cpu(where)
    lead = where.rank == 0 or where.local_rank == 0  # node leaders write their node's report; rank 0's adds the job's
    key = signing_key(key_path) if lead else None
    inv = collect()
    facts = devices.facts(device_name, inv["host"])
    config = {"workload": "train", "specs": [s.to_dict() for s in specs], "device": device_name,
              "world_size": where.world_size, "launcher": where.source, "timeout_s": timeout}  # fmt: skip
    writer = runner.start(results_dir, config, inv, key) if lead else None
    say = (lambda text: None) if quiet or not lead else (lambda text: click.echo(text, err=True))
    with rank_job(where, writer):
        orchestrate.train_job(specs, facts, inv, where, writer, say)
    if not writer:
        return
    report = writer.report
    if as_json:
        click.echo(dumps(report.to_dict()), nl=False)
    else:
        out = stdout()
        out.print(render.stacked([train_workload.train_grid(report.measurements)]))
        for line in render.warning_lines(report.measurements):
            out.print(line, highlight=False)
        out.print(f"report: {writer.path}")
    failed = [m for m in report.measurements if m.status in ("invalid", "error")]
    if failed:
        fail("; ".join(f"{m.spec.get('model')} {m.spec.get('preset')}: {m.reason}" for m in failed))
