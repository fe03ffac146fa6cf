"""What the verbs read: a report file given on the command line, loaded or refused with one line (exit 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bench.cli.output import fail

#: an existing file argument (a report)
REPORT_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def node_report(path: Path) -> Any:
    """The validated NodeReport at `path`; exit 1 with the reason when it is not one (corrupt, unknown schema...)."""
    from bench.model.reports import ReportError
    from bench.report.store import load_report

    try:
        return load_report(path)
    except ReportError as exc:
        fail(str(exc))
