"""The `bench` command: one module per verb, each a thin shell over library calls.

A verb's module is imported only when that verb runs (or its help is shown), and verb modules import torch, pandas and
matplotlib only inside the command body: `bench --help` and `bench VERB --help` answer at once. To add a verb, add one
line to VERBS."""

from __future__ import annotations

import importlib

import click

import bench

#: verb -> "module:attribute" of its click command (a group for verbs with sub-verbs)
VERBS = {
    "aggregate": "bench.cli.aggregate:aggregate",
    "challenge": "bench.cli.challenge:challenge_group",
    "comm": "bench.cli.comm:comm",
    "compare": "bench.cli.compare:compare",
    "disclose": "bench.cli.disclose:disclose_group",
    "doctor": "bench.cli.doctor:doctor_cmd",
    "export": "bench.cli.export:export_group",
    "gate": "bench.cli.gate:gate",
    "history": "bench.cli.history:history_cmd",
    "inventory": "bench.cli.inventory:inventory",
    "keys": "bench.cli.keys:keys_group",
    "matmul": "bench.cli.matmul:matmul",
    "membw": "bench.cli.membw:membw",
    "recover": "bench.cli.recover:recover",
    "report": "bench.cli.report:report",
    "run": "bench.cli.run:run",
    "train": "bench.cli.train:train",
    "verify": "bench.cli.verify:verify",
}


class LazyGroup(click.Group):
    """A group whose verbs are named in a table and imported on first use."""

    def __init__(self, *args: object, verbs: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.verbs = verbs

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.verbs, *self.commands})

    def invoke(self, ctx: click.Context) -> object:
        """Run the verb; a ReportError that reaches here (a results folder that cannot be written, a disk that filled
        during the run) is its one line, exit 1, never a traceback."""
        try:
            return super().invoke(ctx)
        except ValueError as exc:
            from bench.model.reports import ReportError

            if not isinstance(exc, ReportError):
                raise
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in self.verbs:
            return super().get_command(ctx, cmd_name)
        module, _, attr = self.verbs[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attr)
        self.add_command(command, cmd_name)
        return command


@click.group(cls=LazyGroup, verbs=VERBS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(bench.__version__, prog_name="bench")
def main() -> None:
    """bench: measure the compute capacity of AI nodes, honestly, into reports anyone can check."""
