"""The `bench` command: one module per verb, each a thin shell over library calls."""

from __future__ import annotations

import click

import bench
from bench.cli.aggregate import aggregate
from bench.cli.challenge import challenge_group
from bench.cli.comm import comm
from bench.cli.doctor import doctor_cmd
from bench.cli.inventory import inventory
from bench.cli.keys import keys_group
from bench.cli.matmul import matmul
from bench.cli.membw import membw
from bench.cli.report import report
from bench.cli.run import run
from bench.cli.tools import compare, export_group, history_cmd
from bench.cli.train import train
from bench.cli.verify import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(bench.__version__, prog_name="bench")
def main() -> None:
    """bench: measure the compute capacity of AI nodes, honestly, into reports anyone can check."""


main.add_command(run)
main.add_command(inventory)
main.add_command(doctor_cmd, name="doctor")
main.add_command(matmul)
main.add_command(train)
main.add_command(comm)
main.add_command(membw)
main.add_command(report)
main.add_command(keys_group, name="keys")
main.add_command(verify)
main.add_command(aggregate)
main.add_command(compare)
main.add_command(challenge_group, name="challenge")
main.add_command(export_group, name="export")
main.add_command(history_cmd, name="history")
main.add_command(__import__("bench.cli.disclose", fromlist=["x"]).disclose_group, name="disclose")
