"""`bench compare`: node report B against A, metric by metric, a change flagged only when it is large and significant."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.inputs import REPORT_FILE, node_report
from bench.cli.options import json_option
from bench.cli.output import fail, stdout


def _fraction(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from bench.report import gates

    try:
        return gates.parse_fraction(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.argument("a", type=REPORT_FILE)
@click.argument("b", type=REPORT_FILE)
@click.option(
    "--threshold",
    default="5%",
    show_default=True,
    callback=_fraction,
    help="Smallest change that is reported (with significance).",
)
@click.option(
    "--alpha",
    type=click.FloatRange(1e-9, 0.5),
    default=0.01,
    show_default=True,
    help="Significance level of the Mann-Whitney U test on the raw samples.",
)
@json_option("the comparison")
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 when any metric is significantly worse.")
def compare(a: Path, b: Path, threshold: float, alpha: float, as_json: bool, fail_on_regression: bool) -> None:
    """Compare node report B against A, metric by metric (ratio B/A).

    A change is flagged only when it exceeds --threshold and is significant on the raw samples (two-sided
    Mann-Whitney U, p < --alpha). Reports from different hardware or software (CPU model, GPUs, torch, CUDA, BLAS,
    driver) are declared not comparable, exit 1, and nothing is compared.
    """
    from rich.table import Table

    from bench.report import compare as cmp
    from bench.report.store import dumps

    result = cmp.compare(node_report(a), node_report(b), threshold=threshold, alpha=alpha)
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
            for why in result["config_differs"]:
                out.print(f"not compared, {why}", highlight=False)
            for side in ("only_in_a", "only_in_b"):
                if result[side]:
                    out.print(f"{side.replace('_', ' ')}: {', '.join(result[side])}", highlight=False)
    if not result["comparable"]:
        fail("reports are not comparable: " + "; ".join(result["reasons"]))
    worse = [c for c in result["changes"] if c["direction"] == "worse"]
    if fail_on_regression and worse:
        fail(f"{len(worse)} metrics regressed: " + ", ".join(c["metric"] for c in worse))
