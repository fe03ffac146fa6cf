"""What the multi-rank verbs (train, comm) share: where this process sits in the job, and its device."""

from __future__ import annotations

import click

from bench import launch
from bench.cli.output import fail
from bench.hardware import devices


def place(device_name: str | None) -> tuple[launch.Placement, str, str]:
    """(placement, device id, device kind). A malformed launcher environment exits 2 naming the variable; an
    unknown --device is a usage error. Default device: the local rank's GPU when there are GPUs, else the CPU."""
    try:
        where = launch.placement()
    except launch.LaunchError as exc:
        fail(str(exc), 2)
    if device_name is None:
        device_name = f"cuda:{where.local_rank}" if devices.cuda_count() else "cpu"
    try:
        devices.resolve(device_name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from None
    return where, device_name, "cuda" if device_name.startswith("cuda") else "cpu"
