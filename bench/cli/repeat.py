"""`bench run --repeat N`: the same suite N times back to back, each run a fresh `bench run` process (as pyperf's
worker processes: a run's figures share its process's clock, placement, allocator and thread pool, so only separate
processes show the spread between runs), into one RESULTS_DIR that `--baseline RESULTS_DIR` reads as N baseline runs.
Then each gated figure's spread across the N runs, which metrics are steady enough to gate, and the --max-regression
that spread supports (bench.report.drift). With --baseline the N runs are one candidate: the command gates the median
of their figures (bench.report.gates.regressions), and no run gates itself alone."""

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
#: set in a repeated run's environment when the command gates the runs' median against --baseline: the run does not
#: gate itself alone
GATE_ENV = "BENCH_REPEAT_GATED"


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


def repeated_gate() -> bool:
    """This process is one of a --repeat's runs whose command gates their median against the baseline."""
    return repeated() and bool(os.environ.get(GATE_ENV))


def _reports(results_dir: Path) -> set[Path]:
    return set(results_dir.glob("*/report.json"))


def run_all(n: int, results_dir: Path, as_json: bool, quiet: bool, baseline: list[Any] | None = None,
            config: dict[str, Any] | None = None, junit_path: Path | None = None) -> None:  # fmt: skip
    """Start `bench run` with this command's own arguments n times, one after another, each in its own process; stop
    at a usage error (2) or Ctrl-C (130). Then the summary and, with `baseline` (NodeReports), the gate on the median
    of the n runs at the `config`'s gates.max_regression (with `junit_path`, the last run's JUnit again, with that
    gate on the regressed workloads' cases); exit with the worst status (0, 1)."""
    args = click.get_current_context().meta.get(KeepsArgs.ARGS)
    if args is None:
        fail("--repeat: the command's arguments are unknown", 2)
    made: list[Path] = []
    outputs: list[Any] = []
    codes: list[int] = []
    env = {**os.environ, **({GATE_ENV: "1"} if baseline else {})}
    for i in range(1, n + 1):
        if not quiet:
            click.echo(f"repeat: run {i} of {n}, a fresh process", err=True)
        before = _reports(results_dir)
        proc = subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", "run", *args],
                              env={**env, ENV: f"{i}/{n}"}, stdout=subprocess.PIPE if as_json else None,
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
    checks = gate_runs(baseline, made, config or {}, junit_path) if baseline else []
    if as_json:
        from bench.report.store import dumps

        click.echo(dumps({"runs": outputs, "reports": [str(p) for p in made], **summary,
                          "gates": [g.to_dict() for g in checks]}), nl=False)  # fmt: skip
    else:
        for line in summary_lines(summary, results_dir, made):
            click.echo(line)
        for g in checks:
            click.echo(f"{'PASS' if g.passed else 'FAIL'} {g.name}: {g.message}")
    if any(codes):
        fail(f"--repeat: {sum(c != 0 for c in codes)} of {n} runs failed a check or gate (exit codes {codes})")
    if failed := [g for g in checks if not g.passed]:
        fail(
            f"--repeat: the median of {len(made)} runs failed the baseline gate: "
            + "; ".join(g.message for g in failed)
        )


def gate_runs(baseline: list[Any], made: list[Path], config: dict[str, Any], junit_path: Path | None) -> list[Any]:
    """The baseline gate on the median of the runs just made (bench.report.gates.regressions) at the config's
    gates.max_regression (5% without one). The runs wrote their JUnit without it (no run gates itself alone): with
    `junit_path`, the last run's is written again with the gate on the regressed workloads' own cases."""
    from bench import orchestrate
    from bench.report import gates
    from bench.report.store import load_report, write_atomic

    if not made:
        return [gates.Gate("baseline", False, "no run wrote a report: nothing to gate")]
    reports = [load_report(p) for p in made]
    checks = gates.regressions(baseline, reports, config.get("gates", {}).get("max_regression", 0.05))
    if junit_path and config:
        own = orchestrate.evaluate(reports[-1], config, None)
        write_atomic(junit_path, gates.junit(reports[-1], own + checks, config["suite"]["name"]))
    return checks


def spread_summary(reports: list[Path], candidate_runs: int | None = None) -> dict[str, Any]:
    """{"metrics": [{metric, unit, figures, median, cv, robust_cv, range, quiet_threshold, noise_floor, steady}],
    "candidate_runs", "recommended_max_regression", "catches_target"} over the metrics every report has, each run's
    figure as the gate reads it (drift.metric_figure), the noise floor and the recommendation for candidates of
    `candidate_runs` runs (default drift.CANDIDATE_RUNS); empty with fewer than two reports."""
    from bench.report import drift
    from bench.report.compare import ok_metrics
    from bench.report.store import load_report

    m_runs = candidate_runs or drift.CANDIDATE_RUNS
    empty = {"metrics": [], "candidate_runs": m_runs, "recommended_max_regression": None, "catches_target": False}
    if len(reports) < 2:
        return empty
    per_run = [ok_metrics(load_report(p))[0] for p in reports]
    common = set(per_run[0]).intersection(*per_run[1:])
    rows, spreads = [], []
    for key in sorted(common, key=lambda k: per_run[0][k].title):
        s = drift.spread([drift.metric_figure(run[key].name, run[key].value, run[key].samples_s) for run in per_run])
        m = per_run[0][key]
        spreads.append(s)
        rows.append({"metric": m.title, "unit": m.unit, "figures": list(s.runs), "median": s.median, "cv": s.cv,
                     "robust_cv": s.robust_cv, "range": s.spread, "quiet_threshold": s.quiet,
                     "noise_floor": s.floor(m_runs), "steady": s.steady(m_runs),
                     "candidate_runs_needed": s.runs_needed()})  # fmt: skip
    if not rows:
        return empty
    return {"metrics": rows, "candidate_runs": m_runs,
            "recommended_max_regression": drift.recommended_threshold(spreads, m_runs),
            "catches_target": any(s.steady(m_runs) for s in spreads)}  # fmt: skip


def summary_lines(summary: dict[str, Any], results_dir: Path, made: list[Path]) -> list[str]:
    """The spread table, what each metric can gate, and how to gate against these runs."""
    from bench.report.drift import TARGET

    rows = summary["metrics"]
    m_runs = summary["candidate_runs"]
    head = f"{len(made)} runs in {results_dir}; each figure at its run's fastest iteration, as the gate reads it:"
    lines = [head]
    if not rows:
        return [*lines, "  no metric measured in every run: nothing to gate on"]
    rec = summary["recommended_max_regression"]
    width = min(90, max(len(r["metric"]) for r in rows))
    lines.append(f"  {'metric':<{width}} {'median':>10} {'cv':>6} {'robust':>6} {'range':>6} {'floor':>6} "
                 f"{'runs for 10%':>12}  gated at {rec:.0%}")  # fmt: skip
    for r in rows:
        verdict = "yes" if r["noise_floor"] <= rec else f"no: noise floor {r['noise_floor']:.1%} > {rec:.0%}"
        needed = r["candidate_runs_needed"]
        lines.append(f"  {r['metric'][:width]:<{width}} {r['median']:>10.4g} {r['cv']:>6.1%} {r['robust_cv']:>6.1%} "
                     f"{r['range']:>6.1%} {r['noise_floor']:>6.1%} {needed or '> 20':>12}  {verdict}")  # fmt: skip
    # the folder as a whole when it holds these runs only; else each run by name
    others = _reports(results_dir) - set(made)
    named = " ".join(f"--baseline {p.parent}" for p in made) if others else f"--baseline {results_dir}"
    lines.append(f"  robust = 1.4826 x MAD / median; floor = 3 robust SDs of the median of {m_runs} candidate runs "
                 f"against the median of these {len(made)}; runs for 10% = the candidate runs (--repeat) that would "
                 "make the floor at most 5%")  # fmt: skip
    lines.append(f"recommended --max-regression {rec:.0%} (the largest floor of the metrics steady enough to catch a "
                 f"{TARGET:.0%} slow-down, rounded up): bench run --repeat {m_runs} {named} --max-regression {rec:.0%}")  # fmt: skip
    if not summary["catches_target"]:
        lines.append(f"  no metric is steady enough to catch a {TARGET:.0%} slow-down: more baseline or candidate "
                     "runs, longer budgets or a quieter machine")  # fmt: skip
    return lines
