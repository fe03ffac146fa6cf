"""`bench run --repeat N`: the same suite N times back to back, each run a fresh `bench run` process (as pyperf's
worker processes: a run's figures share its process's clock, placement, allocator and thread pool, so only separate
processes show the spread between runs), into one RESULTS_DIR that `--baseline RESULTS_DIR` reads as N baseline runs.
Then each gated figure's spread across the N runs and the --max-regression that spread supports
(bench.report.drift)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from bench.cli.output import fail

#: set in a repeated run's environment ("i/N"): that process runs once, whatever --repeat says
ENV = "BENCH_REPEAT_RUN"


class KeepsArgs(click.Command):
    """A command that keeps the arguments it was given (ctx.meta[ARGS]), so that --repeat can start each run as a
    fresh process with exactly them."""

    ARGS = "bench.run.args"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[self.ARGS] = list(args)
        return super().parse_args(ctx, args)


def repeated() -> bool:
    """This process is one of a --repeat's runs."""
    return bool(os.environ.get(ENV))


def _reports(results_dir: Path) -> set[Path]:
    return set(results_dir.glob("*/report.json"))


def run_all(n: int, results_dir: Path, as_json: bool, quiet: bool) -> None:
    """Start `bench run` with this command's own arguments n times, one after another, each in its own process; stop
    at a usage error (2) or Ctrl-C (130). Then the summary; exit with the worst run's status (0, 1)."""
    args = click.get_current_context().meta.get(KeepsArgs.ARGS)
    if args is None:
        fail("--repeat: the command's arguments are unknown", 2)
    made: list[Path] = []
    outputs: list[Any] = []
    codes: list[int] = []
    for i in range(1, n + 1):
        if not quiet:
            click.echo(f"repeat: run {i} of {n}, a fresh process", err=True)
        before = _reports(results_dir)
        proc = subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", "run", *args],
                              env={**os.environ, ENV: f"{i}/{n}"}, stdout=subprocess.PIPE if as_json else None,
                              check=False, text=True)  # fmt: skip
        codes.append(proc.returncode)
        new = sorted(_reports(results_dir) - before)
        made += new
        if as_json:
            try:
                outputs.append(json.loads(proc.stdout))
            except ValueError:
                outputs.append(None)
        if proc.returncode in (2, 130) or proc.returncode < 0:
            fail(f"--repeat: run {i} of {n} exited {proc.returncode}; {len(made)} run(s) kept in {results_dir}",
                 proc.returncode if proc.returncode > 0 else 1)  # fmt: skip
    summary = spread_summary(made)
    if as_json:
        from bench.report.store import dumps

        click.echo(dumps({"runs": outputs, "reports": [str(p) for p in made], **summary}), nl=False)
    else:
        for line in summary_lines(summary, results_dir, made):
            click.echo(line)
    if any(codes):
        fail(f"--repeat: {sum(c != 0 for c in codes)} of {n} runs failed a check or gate (exit codes {codes})")


def spread_summary(reports: list[Path]) -> dict[str, Any]:
    """{"metrics": [{metric, unit, figures, mean, cv, range, quiet_threshold}], "recommended_max_regression"} over the
    metrics every report has, each run's figure as the gate reads it (drift.gated_figure); empty with fewer than two
    reports."""
    from bench.report import drift
    from bench.report.compare import ok_metrics
    from bench.report.store import load_report

    if len(reports) < 2:
        return {"metrics": [], "recommended_max_regression": None}
    per_run = [ok_metrics(load_report(p))[0] for p in reports]
    common = set(per_run[0]).intersection(*per_run[1:])
    rows = []
    for key in sorted(common, key=lambda k: per_run[0][k].title):
        s = drift.spread([drift.metric_figure(run[key].name, run[key].value, run[key].samples_s) for run in per_run])
        m = per_run[0][key]
        rows.append({"metric": m.title, "unit": m.unit, "figures": list(s.runs), "mean": s.mean, "cv": s.cv,
                     "range": s.spread, "quiet_threshold": s.quiet})  # fmt: skip
    spreads = [drift.Spread(tuple(r["figures"]), r["mean"], r["cv"], r["range"], r["quiet_threshold"]) for r in rows]
    return {"metrics": rows, "recommended_max_regression": drift.recommended_threshold(spreads) if rows else None}


def summary_lines(summary: dict[str, Any], results_dir: Path, made: list[Path]) -> list[str]:
    """The spread table and how to gate against these runs."""
    rows = summary["metrics"]
    head = f"{len(made)} runs in {results_dir}; each figure at its run's fastest iteration, as the gate reads it:"
    lines = [head]
    if not rows:
        return [*lines, "  no metric measured in every run: nothing to gate on"]
    width = min(90, max(len(r["metric"]) for r in rows))
    lines.append(f"  {'metric':<{width}} {'mean':>10} {'cv':>6} {'range':>6} {'quiet at':>8}")
    for r in rows:
        lines.append(f"  {r['metric'][:width]:<{width}} {r['mean']:>10.4g} {r['cv']:>6.1%} {r['range']:>6.1%} "
                     f"{r['quiet_threshold']:>8.1%}")  # fmt: skip
    rec = summary["recommended_max_regression"]
    # the folder as a whole when it holds these runs only; else each run by name
    others = _reports(results_dir) - set(made)
    named = " ".join(f"--baseline {p.parent}" for p in made) if others else f"--baseline {results_dir}"
    lines.append(f"recommended --max-regression {rec:.0%} (the worst 'quiet at', rounded up, plus 1%): "
                 f"bench run {named} --max-regression {rec:.0%}")  # fmt: skip
    if rec >= 0.10:
        lines.append("  these runs spread too widely to catch a 10% slow-down: longer budgets or a quieter machine")
    return lines
