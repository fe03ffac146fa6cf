"""Where the verbs write: results to stdout (clean for --json), progress and errors to stderr."""

from __future__ import annotations

import click
from rich.console import Console

#: Width for output that is not a terminal (pipes, files, CI logs), where rich would otherwise assume 80 columns.
PIPE_WIDTH = 160


def stdout() -> Console:
    console = Console()
    if not console.is_terminal:
        console = Console(width=PIPE_WIDTH)
    return console


def stderr() -> Console:
    return Console(stderr=True)


def fail(message: str, code: int = 1) -> None:
    """Exit with `code` after one line on stderr: 1 for a failed check, 2 for a usage error."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)
