"""`bench gate BASELINE CANDIDATE`: the paired regression gate (issue 25). Two results folders whose runs were made
alternately on one machine in one session (A B B A ...: a shell loop running `bench run` of the base checkout and of
the candidate in turn, docs/ci.md), judged on the ratios of adjacent runs (bench.report.paired), so that the
machine's drift over minutes cancels instead of reading as a change.

With --base-cmd and --candidate-cmd it runs the session itself, sequentially (bench.report.paired.sequential): the
two commands alternately (A B B A ...) for --pairs pairs, then one pair more at a time while the verdict is
inconclusive, up to --max-pairs. Why one command rather than a shell loop in CI: the order, the adding of pairs and
the cap are the rule's, and a loop copied into every job drifts from it (the docs' old loop had no way to add a
pair). The folders are still ordinary RESULTS_DIRs, and `bench gate BASE CAND` still judges folders made elsewhere.

Exit status: 0 pass, 1 a regression (or pairs not comparable, or a command that failed), 2 bad input,
3 inconclusive: too noisy to tell, never a pass (a real slow-down on a noisy runner must not slip through) and never
called a regression (unchanged code on a noisy runner must not read as one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bench.cli.options import json_option
from bench.cli.output import fail
from bench.report import paired


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


def _lines(pairs: list[Any], metrics: list[Any], limits: paired.Thresholds, aa_pairs: int) -> list[str]:
    """The pairs in time order, each metric's verdict at its threshold, and the thresholds these runs support if they
    are A/A: one for all metrics, and each metric's own (paired.metric_threshold) as --max-regression flags."""
    order = " ".join("AB" if p.baseline_first else "BA" for p in pairs)
    lines = [f"{len(pairs)} pairs of adjacent runs, in time order (A baseline, B candidate): {order}"]
    if not metrics:
        return lines
    width = min(110, max(len(pm.metric.title) for pm in metrics))
    lines.append(f"  {'metric':<{width}} {'change':>7} {'cv':>6} {'floor':>6} {'limit':>6}  verdict")
    spreads = []
    for pm in metrics:
        v = pm.verdict
        if v.regressed:
            what = "REGRESSION"
        elif v.on_target:
            what = f"pass: floor {v.floor:.1%} > {v.threshold:.0%}, a {v.target:.0%} slow-down (its target) ruled out"
        elif v.outcome == paired.PASS:
            what = "pass"
        elif not v.spread_known:
            what = f"inconclusive: fewer than {paired.MIN_PAIRS} pairs"
        elif not v.gated:
            what = f"inconclusive: floor {v.floor:.1%} > {v.threshold:.0%}, about {v.pairs_needed} pairs needed"
        else:
            lo, hi = v.bounds
            what = f"inconclusive: bounds [{lo - 1:+.1%}, {hi - 1:+.1%}] not clear of {v.threshold:.0%}"
        lines.append(f"  {pm.metric.title[:width]:<{width}} {v.ratio - 1:>+7.1%} {v.cv:>6.1%} {v.floor:>6.1%} "
                     f"{v.threshold:>6.0%}  {what}")  # fmt: skip
        if v.spread_known:
            spreads.append(paired.pair_spread(v.ratios))
    lines.append("  change = median over pairs of candidate / baseline - 1 (figures at each run's fastest iteration, over "
                 f"its rounds where it has several); cv = the ratios' robust CV; floor = {paired.Z:g} robust SDs of that "
                 "median")  # fmt: skip
    if spreads:
        rec = paired.recommended_threshold(spreads, aa_pairs)
        steady = sum(s.steady(aa_pairs) for s in spreads)
        lines.append(f"as an A/A session (both sides unchanged code), these pairs support --max-regression {rec:.0%} "
                     f"for candidates of {aa_pairs} pairs ({steady} of {len(spreads)} metrics steady enough to catch "
                     f"a {paired.TARGET:.0%} slow-down)")  # fmt: skip
    if len(spreads) == len(metrics):
        lines.append("  " + recommendation([pm.metric.labels for pm in metrics], spreads, aa_pairs,
                                           [pm.threads for pm in metrics]))  # fmt: skip
    return lines


def recommendation(label_sets: list[Any], spreads: list[paired.PairSpread], pairs: int,
                   threads: list[int | None] | None = None) -> str:  # fmt: skip
    """Each metric's own threshold (paired.recommended_thresholds; an all-core figure's target from its `threads`)
    as --max-regression flags."""
    each = [None] * len(label_sets) if threads is None else threads
    limits = paired.recommended_thresholds(label_sets, spreads, pairs, each)
    blind = sum(paired.unsteady(s, limits.of(labels), pairs) for labels, s in zip(label_sets, spreads, strict=True))
    return (f"recommended setting per metric (half the slow-down each must catch: {paired.TARGET:.0%}, or one thread "
            f"of N for cpus=all, up to {paired.HALVING:.0%}; {paired.TARGET / 2:.0%} where its A/A floor allows): "
            + paired.flags(limits) + (f" ({blind} metric(s) with an A/A floor above it: their sessions add pairs, or end "
                                      "inconclusive)" if blind else ""))  # fmt: skip


#: Exit status of an inconclusive session: neither 1 (a regression) nor 0 (a pass), so a CI job can tell them apart.
INCONCLUSIVE_EXIT = 3


def _reports(folder: Path) -> set[Path]:
    return set(folder.glob("*/report.json")) if folder.is_dir() else set()


def _run_side(command: str, folder: Path, side: str) -> None:
    """One run of one side: `command` through the shell with BENCH_GATE_RESULTS (the side's folder) and
    BENCH_GATE_SIDE (A or B) set; it must exit 0 and leave exactly one new report in the folder."""
    import os
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    before = _reports(folder)
    letter = "A" if side == "baseline" else "B"
    click.echo(f"gate: run {letter} ({side}): {command}", err=True)
    env = {**os.environ, "BENCH_GATE_RESULTS": str(folder.resolve()), "BENCH_GATE_SIDE": letter}
    # the operator's own command line; its stdout goes to our stderr, so that --json's stdout stays JSON
    done = subprocess.run(
        command, shell=True, env=env, check=False, stdout=subprocess.PIPE, text=True, errors="replace"
    )
    if done.stdout:
        click.echo(done.stdout, err=True, nl=False)
    if done.returncode:
        fail(f"the {side} command exited {done.returncode}: {command}")
    new = _reports(folder) - before
    if len(new) != 1:
        fail(f"the {side} command left {len(new)} new reports in {folder} (expected one RESULTS_DIR/<run-id>/"
             f"report.json: give it --results-dir \"$BENCH_GATE_RESULTS\"): {command}", 2)  # fmt: skip


@click.command()
@click.argument("baseline", type=click.Path(path_type=Path))
@click.argument("candidate", type=click.Path(path_type=Path))
@click.option(
    "--max-regression",
    "max_regression",
    multiple=True,
    metavar="[LABEL=VALUE,...:]PERCENT",
    help="Tolerated slow-down (default 5%, and 25% for the all-core figures, cpus=all): a gated metric fails when the "
    "median of its pairs' candidate / baseline ratios is below 1 - PERCENT. Repeat with LABEL=VALUE:PERCENT for the metrics carrying that label (e.g. cpus=all:15%, "
    "the all-core figure of configs/gate-cpu.toml): each metric at its own threshold.",
)
@click.option("--base-cmd", default=None, metavar="CMD",
              help="Run the session: this shell command makes one baseline run into BASELINE (as "
              "--results-dir \"$BENCH_GATE_RESULTS\"); with --candidate-cmd.")  # fmt: skip
@click.option(
    "--candidate-cmd",
    default=None,
    metavar="CMD",
    help="Run the session: this shell command makes one candidate run into CANDIDATE; with --base-cmd.",
)
@click.option("--pairs", "first", type=click.IntRange(min=paired.MIN_PAIRS), default=paired.FIRST_PAIRS,
              show_default=True, help="Pairs run before the first verdict (with the commands).")  # fmt: skip
@click.option("--max-pairs", type=click.IntRange(min=paired.MIN_PAIRS), default=paired.MAX_PAIRS, show_default=True,
              help="Pairs the session stops at while inconclusive (with the commands).")  # fmt: skip
@click.option(
    "--aa-pairs",
    type=click.IntRange(min=3),
    default=None,
    metavar="P",
    help="Pairs per candidate for the A/A recommendation (default: as many as here).",
)
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write JUnit XML here: one case per metric, with its time, failing on a regression or when "
              "inconclusive.")  # fmt: skip
@json_option("the verdicts (outcome, pairs, metrics, gates)")
def gate(baseline: Path, candidate: Path, max_regression: tuple[str, ...], base_cmd: str | None, candidate_cmd: str | None,
         first: int, max_pairs: int, aa_pairs: int | None, junit_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """Judge CANDIDATE's runs against BASELINE's, made alternately in one session on one machine (A B B A ...):
    each metric on the median of its adjacent pairs' candidate / baseline ratios, gated where the pairs' own spread
    leaves its noise floor within --max-regression. BASELINE and CANDIDATE are results folders (each run's
    report.json) or report files. With --base-cmd and --candidate-cmd, bench runs the two commands in turns itself,
    adding pairs while the verdict is inconclusive, up to --max-pairs.

    Exit 0 when every metric passed (gated, and within --max-regression); 1 when one regressed, a pair is not
    comparable or a command failed; 2 for bad input, including runs that do not alternate in time (drift would read
    as a change); 3 when inconclusive (a metric too noisy to tell either way, at the cap): the job fails, not as a
    regression."""
    from bench.model.reports import ReportError
    from bench.report import gates
    from bench.report.store import dumps, load_report

    if (base_cmd is None) != (candidate_cmd is None):
        fail("--base-cmd and --candidate-cmd go together: one runs the baseline, the other the candidate", 2)
    if max_pairs < first:
        fail(f"--max-pairs {max_pairs} is below --pairs {first}", 2)
    try:  # no spread is within 0%: nothing could be gated (and pairs_needed has no answer), so 0% is refused too
        limits = gates.parse_thresholds(max_regression)
    except ValueError as exc:
        fail(str(exc), 2)
    state: dict[str, Any] = {}

    def look() -> str:
        try:
            base = [load_report(p) for p in _runs(baseline)]
            cand = [load_report(p) for p in _runs(candidate)]
            state["reports"] = [*base, *cand]
            state["judgement"] = gates.paired_judgement(base, cand, limits)
        except paired.NotPaired as exc:
            fail(f"not paired: {exc}", 2)
        except (ReportError, ValueError) as exc:
            fail(str(exc), 2)
        j = state["judgement"]
        if max_regression and j.metrics and (stray := limits.unmatched([pm.metric.labels for pm in j.metrics])):
            # a typo (cpus=al) would leave its metric at the default threshold without a word
            fail("--max-regression: no metric carries " + "; ".join(",".join(f"{k}={v}" for k, v in want)
                                                                   for want in stray), 2)  # fmt: skip
        if base_cmd is not None:
            click.echo(f"gate: {len(j.pairs)} pairs: {j.outcome}", err=True)
        return j.outcome

    if base_cmd is not None and candidate_cmd is not None:
        done = [len(_reports(baseline)), len(_reports(candidate))]
        if done[0] != done[1]:
            fail(f"{baseline} holds {done[0]} runs and {candidate} {done[1]}: a session continues from as many of "
                 "each (empty folders start one)", 2)  # fmt: skip
        if done[0] >= first and (was := look()) != paired.INCONCLUSIVE:
            # a session is continued while it cannot tell; folders left by a concluded one (a runner that keeps its
            # workspace, an earlier candidate's runs) would be judged again and the command never run
            fail(f"{baseline} and {candidate} already hold a concluded session ({was} over {done[0]} pairs): a "
                 "session is continued only while inconclusive; give empty folders to gate a candidate", 2)  # fmt: skip
        commands = {paired.BASELINE: (base_cmd, baseline), paired.CANDIDATE: (candidate_cmd, candidate)}
        paired.sequential(lambda side: _run_side(*commands[side], side), look, done[0], first, max_pairs)
    else:
        look()
    j: gates.PairedJudgement = state["judgement"]
    if junit_path is not None:
        junit_path.write_text(gates.paired_junit(state["reports"], j))
    if as_json:
        click.echo(dumps({"outcome": j.outcome, "pairs_needed": j.pairs_needed,
                          "reason": next((g.message for g in j.checks if not g.passed), None),
                          "pairs": [[p.baseline.run_id, p.candidate.run_id] for p in j.pairs],
                          "metrics": [{"metric": pm.metric.title, "ratios": list(pm.verdict.ratios),
                                       "ratio": pm.verdict.ratio, "cv": pm.verdict.cv, "floor": pm.verdict.floor,
                                       "threshold": pm.verdict.threshold, "target": pm.verdict.target,
                                       "on_target": pm.verdict.on_target,
                                       "gated": pm.verdict.gated, "regressed": pm.verdict.regressed,
                                       "outcome": pm.verdict.outcome, "pairs_needed": pm.verdict.pairs_needed}
                                      for pm in j.metrics],
                          "gates": [g.to_dict() for g in j.checks]}), nl=False)  # fmt: skip
    else:
        for line in _lines(j.pairs, j.metrics, limits, aa_pairs or len(j.pairs)):
            click.echo(line)
        for g in j.checks:
            click.echo(f"{'PASS' if g.passed else 'FAIL'} {g.name}: {g.message}")
    if failed := [g for g in j.checks if not g.passed]:
        why = "; ".join(g.message for g in failed)
        if j.outcome == paired.INCONCLUSIVE:
            fail(f"gate inconclusive after {len(j.pairs)} pairs: {why}", INCONCLUSIVE_EXIT)
        fail("gate failed: " + why)
