"""`bench gate BASELINE CANDIDATE`: the paired regression gate (issue 25). Two results folders whose runs were made
alternately on one machine in one session (A B B A ...: a shell loop running `bench run` of the base checkout and of
the candidate in turn, docs/ci.md), judged on the ratios of adjacent runs (bench.report.paired), so that the
machine's drift over minutes cancels instead of reading as a change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bench.cli.options import json_option
from bench.cli.output import fail


def _runs(text: Path) -> list[Path]:
    """A folder's runs (RESULTS_DIR/<run-id>/report.json, else its *.json), or the report file itself."""
    if text.is_dir():
        found = sorted(text.glob("*/report.json")) or sorted(text.glob("*.json"))
        if not found:
            raise ValueError(f"{text}: a folder with no */report.json or *.json report in it")
        return found
    if text.exists():
        return [text]
    raise ValueError(f"{text}: no such file or folder")


def _lines(pairs: list[Any], metrics: list[Any], threshold: float, aa_pairs: int) -> list[str]:
    """The pairs in time order, each metric's verdict, and the threshold these runs support if they are A/A."""
    from bench.report import paired

    order = " ".join("AB" if p.baseline_first else "BA" for p in pairs)
    lines = [f"{len(pairs)} pairs of adjacent runs, in time order (A baseline, B candidate): {order}"]
    if not metrics:
        return lines
    width = min(110, max(len(pm.metric.title) for pm in metrics))
    lines.append(f"  {'metric':<{width}} {'change':>7} {'cv':>6} {'floor':>6}  verdict at {threshold:.0%}")
    spreads = []
    for pm in metrics:
        v = pm.verdict
        if v.regressed:
            what = "REGRESSION"
        elif v.gated:
            what = "pass"
        elif not v.spread_known:
            what = f"not gated: fewer than {paired.MIN_PAIRS} pairs"
        else:
            what = f"not gated: floor {v.floor:.1%} > {threshold:.0%}"
        lines.append(f"  {pm.metric.title[:width]:<{width}} {v.ratio - 1:>+7.1%} {v.cv:>6.1%} {v.floor:>6.1%}  {what}")
        if v.spread_known:
            spreads.append(paired.pair_spread(v.ratios))
    lines.append("  change = median over pairs of candidate / baseline - 1 (figures at each run's fastest iteration); "
                 f"cv = the ratios' robust CV; floor = {paired.Z:g} robust SDs of that median")  # fmt: skip
    if spreads:
        rec = paired.recommended_threshold(spreads, aa_pairs)
        steady = sum(s.steady(aa_pairs) for s in spreads)
        lines.append(f"as an A/A session (both sides unchanged code), these pairs support --max-regression {rec:.0%} "
                     f"for candidates of {aa_pairs} pairs ({steady} of {len(spreads)} metrics steady enough to catch "
                     f"a {paired.TARGET:.0%} slow-down)")  # fmt: skip
    return lines


@click.command()
@click.argument("baseline", type=click.Path(path_type=Path))
@click.argument("candidate", type=click.Path(path_type=Path))
@click.option(
    "--max-regression",
    default="5%",
    show_default=True,
    metavar="PERCENT",
    help="Tolerated slow-down: a gated metric fails when the median of its pairs' candidate / baseline ratios is "
    "below 1 - PERCENT.",
)
@click.option(
    "--aa-pairs",
    type=click.IntRange(min=3),
    default=None,
    metavar="P",
    help="Pairs per candidate for the A/A recommendation (default: as many as here).",
)
@json_option("the verdicts (pairs, metrics, gates)")
def gate(baseline: Path, candidate: Path, max_regression: str, aa_pairs: int | None, as_json: bool) -> None:
    """Judge CANDIDATE's runs against BASELINE's, made alternately in one session on one machine (A B B A ...):
    each metric on the median of its adjacent pairs' candidate / baseline ratios, gated where the pairs' own spread
    leaves its noise floor within --max-regression. BASELINE and CANDIDATE are results folders (each run's
    report.json) or report files.

    Exit 0 when no gated metric regressed; 1 when one did, a pair is not comparable or nothing could be gated; 2 for
    bad input, including runs that do not alternate in time (drift would read as a change)."""
    from bench.model.reports import ReportError
    from bench.report import gates, paired
    from bench.report.store import dumps, load_report

    try:
        threshold = gates.parse_fraction(max_regression)
        base = [load_report(p) for p in _runs(baseline)]
        cand = [load_report(p) for p in _runs(candidate)]
        pairs, metrics, broken = gates.paired_metrics(base, cand, threshold)
    except paired.NotPaired as exc:
        fail(f"not paired: {exc}", 2)
    except (ReportError, ValueError) as exc:
        fail(str(exc), 2)
    checks = broken or gates.paired_regressions(base, cand, threshold)
    if as_json:
        click.echo(dumps({"pairs": [[p.baseline.run_id, p.candidate.run_id] for p in pairs],
                          "metrics": [{"metric": pm.metric.title, "ratios": list(pm.verdict.ratios),
                                       "ratio": pm.verdict.ratio, "cv": pm.verdict.cv, "floor": pm.verdict.floor,
                                       "gated": pm.verdict.gated, "regressed": pm.verdict.regressed}
                                      for pm in metrics],
                          "gates": [g.to_dict() for g in checks]}), nl=False)  # fmt: skip
    else:
        for line in _lines(pairs, metrics, threshold, aa_pairs or len(pairs)):
            click.echo(line)
        for g in checks:
            click.echo(f"{'PASS' if g.passed else 'FAIL'} {g.name}: {g.message}")
    if failed := [g for g in checks if not g.passed]:
        fail("gate failed: " + "; ".join(g.message for g in failed))
