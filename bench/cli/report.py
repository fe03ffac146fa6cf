"""`bench report`: read, validate and show a node report."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.output import fail, stdout
from bench.report import render
from bench.report.model import ReportError
from bench.report.store import dumps, load_report


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the validated report as JSON.")
def report(path: Path, as_json: bool) -> None:
    """Validate the node report at PATH and print its measurements.

    Exits 1 with a one-line reason when the file is not a valid report (corrupt, truncated, unknown schema version).
    """
    try:
        rep = load_report(path)
    except ReportError as exc:
        fail(str(exc))
    if as_json:
        click.echo(dumps(rep.to_dict()), nl=False)
        return
    out = stdout()
    state = "interrupted" if rep.interrupted else ("complete" if rep.end_utc else "incomplete (still running or crashed)")
    out.print(f"run {rep.run_id}  {rep.start_utc} -> {rep.end_utc or '?'}  {state}")
    out.print(f"bench {rep.tool.get('version')} ({rep.tool.get('git_commit') or 'not from a checkout'})")
    matmuls = [m for m in rep.measurements if m.workload == "matmul"]
    if matmuls:
        out.print(render.measurements_table(matmuls))
    if any(m.workload == "train" for m in rep.measurements):
        out.print(render.train_table(rep.measurements))
    for workload, table in (("comm", render.busbw_table), ("membw", render.membw_table)):
        chosen = [m for m in rep.measurements if m.workload == workload]
        if chosen:
            out.print(table(chosen))
    if any("search" in m.details for m in rep.measurements):
        out.print(render.search_table(rep.measurements))
    for line in render.warning_lines(rep.measurements):
        out.print(line, highlight=False)
