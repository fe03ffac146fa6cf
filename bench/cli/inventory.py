"""`bench inventory`: what hardware and software this node has."""

from __future__ import annotations

import click

from bench.cli.options import json_option
from bench.cli.output import stdout


@click.command()
@json_option("the inventory")
def inventory(as_json: bool) -> None:
    """Host (CPU, ISA flags, memory, OS, torch build) and every NVIDIA GPU through NVML.

    A node without a GPU or driver is normal: one line says so and the command exits 0. A field NVML or the OS
    cannot report is shown as unavailable, with the reason.
    """
    from bench.hardware.inventory import collect
    from bench.report import render
    from bench.report.store import dumps

    inv = collect()
    if as_json:
        click.echo(dumps(inv), nl=False)
        return
    out = stdout()
    out.print(render.host_table(inv["host"]))
    nvml = inv["nvml"]
    if nvml["gpus"]:
        out.print(render.gpu_table(nvml))
    else:
        out.print(f"No NVIDIA GPU: {nvml['reason']}")
