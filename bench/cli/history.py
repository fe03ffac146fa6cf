"""`bench history`: a node's figures over time, from the index `bench run` keeps."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.inputs import REPORT_FILE, node_report
from bench.cli.options import json_option, results_dir_option
from bench.cli.output import fail, stdout


@click.command("history")
@click.option("--node", default=None, help="Only this host name.")
@click.option("--metric", default=None, help="Only this metric (a prefix such as 'matmul' matches every matmul_*).")
@results_dir_option("Where bench run indexed its runs (RESULTS_DIR/history.sqlite).")
@click.option(
    "--add",
    "add",
    type=REPORT_FILE,
    multiple=True,
    help="Index these reports first (bench run indexes its own; other verbs' reports join this way).",
)
@json_option("the runs and trends")
def history_cmd(node: str | None, metric: str | None, results_dir: Path, add: tuple[Path, ...], as_json: bool) -> None:
    """A node's figures over time, from RESULTS_DIR/history.sqlite: per metric the first and last value, the change,
    and every run's value in order, so a slow-down shows up as a trend."""
    from rich.table import Table

    from bench.report import history
    from bench.report.store import dumps

    db = results_dir / history.DB_NAME
    for path in add:
        history.index(db, node_report(path), path.resolve())
    rows = history.query(db, node=node, metric=metric)
    trend = history.trends(rows)
    if as_json:
        click.echo(dumps({"database": str(db), "runs": sorted({r["run_id"] for r in rows}), "trends": trend}), nl=False)
        return
    if not rows:
        fail(
            f"no indexed runs in {db}"
            + (f" for node {node!r}" if node else "")
            + (f" and metric {metric!r}" if metric else "")
        )
    t = Table(title=f"history ({len({r['run_id'] for r in rows})} runs, {db})")
    for col in ("host", "metric", "labels", "runs", "first", "last", "change", "values (oldest first)"):
        t.add_column(col)
    for s in trend:
        labels = " ".join(f"{k}={v}" for k, v in sorted(s["labels"].items()) if k != "model")
        change = "" if s["change"] is None else f"{s['change']:+.1%}"
        t.add_row(s["host"], s["metric"], labels, str(s["runs"]), f"{s['first']:.4g}", f"{s['last']:.4g}", change,
                  " ".join(f"{v:.3g}" for v in s["values"][-12:]))  # fmt: skip
    stdout().print(t)
