"""`bench compare`, `bench export` and `bench history`: what ops and CI do with reports after a run."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from bench.cli.output import fail, stdout
from bench.cli.params import results_dir_option
from bench.report import compare as cmp
from bench.report import export, gates, history
from bench.report.model import NodeReport, ReportError
from bench.report.store import dumps, load_report, write_atomic

report_path = click.Path(exists=True, dir_okay=False, path_type=Path)


def _load(path: Path) -> NodeReport:
    try:
        return load_report(path)
    except ReportError as exc:
        fail(str(exc))
    raise AssertionError  # unreachable: fail() exits


def _fraction(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return gates.parse_fraction(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _octal(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise click.BadParameter(f"{value!r}: expected an octal file mode such as 0644 or 0640")
    return mode


@click.command()
@click.argument("a", type=report_path)
@click.argument("b", type=report_path)
@click.option("--threshold", default="5%", show_default=True, callback=_fraction,
              help="Smallest change that is reported (with significance).")
@click.option("--alpha", type=click.FloatRange(1e-9, 0.5), default=0.01, show_default=True,
              help="Significance level of the Mann-Whitney U test on the raw samples.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 when any metric is significantly worse.")
def compare(a: Path, b: Path, threshold: float, alpha: float, as_json: bool, fail_on_regression: bool) -> None:
    """Compare node report B against A, metric by metric (ratio B/A).

    A change is flagged only when it exceeds --threshold and is significant on the raw samples (two-sided
    Mann-Whitney U, p < --alpha). Reports from different hardware or software (CPU model, GPUs, torch, CUDA, BLAS,
    driver) are declared not comparable, exit 1, and nothing is compared.
    """
    result = cmp.compare(_load(a), _load(b), threshold=threshold, alpha=alpha)
    if as_json:
        click.echo(dumps(result), nl=False)
    else:
        out = stdout()
        if not result["comparable"]:
            out.print("not comparable:", highlight=False)
            for r in result["reasons"]:
                out.print(f"  {r}", highlight=False)
        else:
            t = Table(title=f"{result['b']} vs {result['a']} (threshold {threshold:.1%}, alpha {alpha:g})")
            for col in ("metric", "A", "B", "B/A", "p", "verdict"):
                t.add_column(col, justify="left" if col in ("metric", "verdict") else "right")
            for c in result["changes"]:
                p = "n/a" if c["p_value"] is None else f"{c['p_value']:.2g}"
                verdict = c["direction"] if c["flagged"] else ("same" if c["significant"] else "same (not significant)")
                t.add_row(c["metric"], f"{c['a']:.4g}", f"{c['b']:.4g}", f"{c['ratio']:.3f}", p, verdict)
            out.print(t)
            for side in ("only_in_a", "only_in_b"):
                if result[side]:
                    out.print(f"{side.replace('_', ' ')}: {', '.join(result[side])}", highlight=False)
    if not result["comparable"]:
        fail("reports are not comparable: " + "; ".join(result["reasons"]))
    worse = [c for c in result["changes"] if c["direction"] == "worse"]
    if fail_on_regression and worse:
        fail(f"{len(worse)} metrics regressed: " + ", ".join(c["metric"] for c in worse))


@click.group()
def export_group() -> None:
    """Export a node report for ops tools: Prometheus textfile or CSV."""


@export_group.command("prometheus")
@click.argument("path", type=report_path)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File for node_exporter's textfile collector (e.g. /var/lib/node_exporter/bench.prom); "
                   "written atomically. Default: stdout.")
@click.option("--mode", "mode", default="0644", show_default=True, callback=_octal,
              help="Permissions of the -o file (octal), whatever the umask: node_exporter runs as its own user.")
def export_prometheus(path: Path, output: Path | None, mode: int) -> None:
    """bench_* gauges in base units (FLOP/s, bytes/s, _ratio) with dcgm-exporter's device labels (Hostname, gpu,
    UUID, pci_bus_id, device, modelName), so PromQL joins them to DCGM_FI_* series; bench_device_info per device."""
    text = export.prometheus(_load(path))
    if output:
        export.write_public(output, text, mode)
    else:
        click.echo(text, nl=False)


@export_group.command("csv")
@click.argument("path", type=report_path)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--measurements", is_flag=True, help="One row per measurement instead of one per headline metric.")
def export_csv(path: Path, output: Path | None, measurements: bool) -> None:
    """Headline metrics (or every measurement) as CSV, via pandas."""
    rep = _load(path)
    text = export.to_csv(export.measurements_frame(rep) if measurements else export.metrics_frame(rep))
    if output:
        write_atomic(output, text)
    else:
        click.echo(text, nl=False)


@click.command("history")
@click.option("--node", default=None, help="Only this host name.")
@click.option("--metric", default=None, help="Only this metric (a prefix such as 'matmul' matches every matmul_*).")
@results_dir_option("Where bench run indexed its runs (RESULTS_DIR/history.sqlite).")
@click.option("--add", "add", type=report_path, multiple=True,
              help="Index these reports first (bench run indexes its own; other verbs' reports join this way).")
@click.option("--json", "as_json", is_flag=True)
def history_cmd(node: str | None, metric: str | None, results_dir: Path, add: tuple[Path, ...], as_json: bool) -> None:
    """A node's figures over time, from RESULTS_DIR/history.sqlite: per metric the first and last value, the change,
    and every run's value in order, so a slow-down shows up as a trend."""
    db = results_dir / history.DB_NAME
    for path in add:
        history.index(db, _load(path), path.resolve())
    rows = history.query(db, node=node, metric=metric)
    trend = history.trends(rows)
    if as_json:
        click.echo(dumps({"database": str(db), "runs": sorted({r["run_id"] for r in rows}), "trends": trend}), nl=False)
        return
    if not rows:
        fail(f"no indexed runs in {db}" + (f" for node {node!r}" if node else "") + (f" and metric {metric!r}" if metric else ""))
    t = Table(title=f"history ({len({r['run_id'] for r in rows})} runs, {db})")
    for col in ("host", "metric", "labels", "runs", "first", "last", "change", "values (oldest first)"):
        t.add_column(col)
    for s in trend:
        labels = " ".join(f"{k}={v}" for k, v in sorted(s["labels"].items()) if k != "model")
        change = "" if s["change"] is None else f"{s['change']:+.1%}"
        t.add_row(s["host"], s["metric"], labels, str(s["runs"]), f"{s['first']:.4g}", f"{s['last']:.4g}", change,
                  " ".join(f"{v:.3g}" for v in s["values"][-12:]))  # fmt: skip
    stdout().print(t)
