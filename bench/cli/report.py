"""`bench report`: read, validate and show a node report (or a capacity report), or render it as md, html or csv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bench.cli.inputs import node_report
from bench.cli.options import json_option, output_option
from bench.cli.output import fail, stdout


def _show(rep: Any) -> None:
    from bench.report import headline, render

    out = stdout()
    state = (
        "interrupted" if rep.interrupted else ("complete" if rep.end_utc else "incomplete (still running or crashed)")
    )
    out.print(f"run {rep.run_id}  {rep.start_utc} -> {rep.end_utc or '?'}  {state}")
    out.print(f"bench {rep.tool.get('version')} ({rep.tool.get('git_commit') or 'not from a checkout'})")
    for line in headline.lines(rep):
        out.print(line, style="bold red", highlight=False)
    for grid in headline.grids(rep):
        out.print(render.to_rich(grid))
    for table in render.workload_tables(rep.measurements, every_matmul=True):
        out.print(table)
    for line in render.warning_lines(rep.measurements):
        out.print(line, highlight=False)


def _capacity(path: Path) -> dict | None:
    """The parsed capacity report at `path`, or None when the file is something else (a node report)."""
    from bench.model import intake
    from bench.model.reports import CAPACITY_KIND, CapacityReport, ReportError

    try:
        data = intake.read_json(path).data
    except intake.InputError:
        return None  # load_report says why
    if not (isinstance(data, dict) and data.get("kind") == CAPACITY_KIND):
        return None
    try:
        return CapacityReport.from_dict(data).to_dict()
    except ReportError as exc:
        fail(f"{path}: {exc}")


def _is_stream(path: Path) -> bool:
    """Whether PATH is a schema-3 record stream (bench.model.records), told by its first bytes."""
    from bench.model import records

    with open(path, "rb") as fh:
        return fh.read(len(records.PREFIX)) == records.PREFIX


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "md", "html", "csv"]),
    default="text",
    show_default=True,
    help="text: tables on the terminal; md: Markdown; html: one stand-alone page with embedded plots; "
    "csv: one row per measurement.",
)
@output_option("Write to this file (default: stdout).")
@json_option("the validated report")
def report(path: Path, fmt: str, output: Path | None, as_json: bool) -> None:
    """Validate the node report at PATH and print its measurements, or render it (--format md|html|csv).

    A capacity report (from `bench aggregate`) renders as HTML with the per-node distribution, defective nodes marked.
    Exits 1 with a one-line reason when the file is not a valid report (corrupt, truncated, unknown schema version).
    """
    from bench.report import export, html
    from bench.report.store import dumps, write_atomic

    cap = _capacity(path)
    if cap is not None:
        if fmt != "html":
            fail("a capacity report renders as --format html; `bench verify` prints its tables", 2)
        text = html.capacity_page(cap)
    else:
        rep = node_report(path)
        if as_json:
            data = rep.to_dict()
            if _is_stream(path):
                # a v3 report's signatures sign its records, not this folded view: a signature block here would fail
                # `bench verify` on a saved copy, so the view carries none and says where the signed original is
                data.pop("signature", None)
                click.echo(f"note: unsigned view of a record-stream report; verify the original: {path}", err=True)
            click.echo(dumps(data), nl=False)
            return
        if fmt == "text":
            _show(rep)
            return
        text = {"md": export.markdown, "html": html.node_page,
                "csv": lambda r: export.to_csv(export.measurements_frame(r))}[fmt](rep)  # fmt: skip
    if output:
        write_atomic(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
