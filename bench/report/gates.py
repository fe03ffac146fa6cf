"""CI gating on a node report: floors per precision, regression against a baseline, correctness and completeness; and
the JUnit XML a CI server shows (one test case per workload and precision, with the figure)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import registry
from bench.model.metrics import Metric
from bench.model.reports import Measurement, NodeReport, ReportError, parse_timestamp
from bench.report import compare as cmp
from bench.report import drift, headline, paired
from bench.report.metrics import best_by_precision
from bench.report.metrics import of as metrics_of

#: Characters no XML 1.0 document may hold (C0 controls but tab, newline and return; lone surrogates, which UTF-8
#: cannot encode either; U+FFFE and U+FFFF). ElementTree writes them as they are.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(root: ET.Element) -> str:
    """`root` as an XML document, each character XML cannot hold written as its \\uXXXX escape: a report's names
    (a device id, a precision) are the node's input, and one control character made the whole JUnit file
    ill-formed, one lone surrogate a traceback (tests/adversarial/test_twelfth_round.py)."""
    for el in root.iter():
        for k, v in el.attrib.items():
            el.set(k, _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", v))
        if el.text:
            el.text = _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", el.text)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


@dataclass(frozen=True)
class Gate:
    """One pass/fail check. `case` ties it to a JUnit test case name (None: a case of its own)."""

    name: str
    passed: bool
    message: str
    case: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "message": self.message}


def parse_floor(text: str) -> tuple[str, float]:
    """'float32=0.1' -> ('float32', 0.1); ValueError with the expected form."""
    name, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not sep or not name.strip() or number < 0:
        raise ValueError(f"{text!r}: expected PRECISION=TFLOPS, e.g. float32=0.1")
    return name.strip(), number


def parse_fraction(text: str) -> float:
    """'5%' or '0.05' -> 0.05; ValueError outside 0..100%."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise ValueError(f"{text!r}: expected a percentage like 5% or a fraction like 0.05") from None
    if not 0 <= value <= 1:
        raise ValueError(f"{text!r}: must be between 0% and 100%")
    return value


def case_name(m: Metric) -> str:
    """The JUnit test case (and gate) a metric belongs to: its workload, device and what its descriptor's
    `case_labels` name (default: its precision, op or kernel, the first it has)."""
    labels = m.labels
    workload = registry.get(m.workload)
    if workload and workload.case_labels:
        what = " ".join(str(labels.get(k)) for k in workload.case_labels)
    else:
        what = labels.get("precision") or labels.get("op") or labels.get("kernel") or ""
    return f"{m.workload} {labels.get('device')} {what}".strip()


def correctness(report: NodeReport) -> list[Gate]:
    """Every measurement that failed its correctness check or errored, and an incomplete run, fail."""
    gates = []
    for m in report.measurements:
        if m.status in ("invalid", "error"):
            what = m.spec.get("precision") or m.spec.get("op") or m.spec.get("kernel") or m.spec.get("step") or ""
            gates.append(
                Gate("correctness", False, f"{m.workload} {m.device.get('id')} {what}: {m.status}: {m.reason}")
            )
    if report.partial:
        gates.append(
            Gate("complete", False, "the run did not complete (interrupted or crashed): the report is partial")
        )
    return gates


def floors(report: NodeReport, fail_below: dict[str, float]) -> list[Gate]:
    """--fail-below: every device's best valid matmul TFLOPS at each named precision must reach the floor."""
    best = best_by_precision(report)
    gates = []
    for precision, floor in sorted(fail_below.items()):
        per_device = best.get(precision)
        if not per_device:
            gates.append(
                Gate(
                    f"fail-below {precision}",
                    False,
                    f"no valid {precision} matmul was measured (floor {floor:g} TFLOPS)",
                )
            )
            continue
        for device, value in sorted(per_device.items()):
            ok = value >= floor
            verdict = ">=" if ok else "<"
            gates.append(Gate(f"fail-below {precision}", ok, f"{device} {precision}: {value:.4g} TFLOPS {verdict} floor {floor:g}",
                              case=f"matmul {device} {precision}"))  # fmt: skip
    return gates


def loaded_note(baselines: Sequence[NodeReport], candidates: Sequence[NodeReport]) -> str:
    """'; pre-flight warned of a loaded machine before B of the K baseline runs and C of the M candidate runs ...'
    when any did (bench.report.headline.load_note), else '': a spread or a drop that is partly the load's."""
    busy_b = sum(headline.load_note(b) is not None for b in baselines)
    busy_c = sum(headline.load_note(c) is not None for c in candidates)
    if not busy_b and not busy_c:
        return ""
    return (f"; pre-flight warned of a loaded machine before {busy_b} of {len(baselines)} baseline runs and {busy_c} "
            f"of {len(candidates)} candidate runs: their spread and any drop are partly the load's")  # fmt: skip


def regressions(baselines: NodeReport | Sequence[NodeReport], report: NodeReport | Sequence[NodeReport],
                max_regression: float, alpha: float | None = None) -> list[Gate]:  # fmt: skip
    """--baseline: each metric's figure (bench.report.drift.metric_figure: read at its run's fastest iteration,
    where runs on a shared machine agree), the median over the candidate run(s) in `report` (one run, or the runs of
    `bench run --repeat M`), against the median of the same metric's figures in the baseline runs, by
    bench.report.drift.judge: a metric is gated only where its noise floor is within max_regression (the others are
    named, not gated) and fails below the baseline's median by more than max_regression; with fewer than
    drift.MIN_SPREAD_RUNS baseline runs, by the threshold alone (said in the message). A baseline that is not
    comparable (other hardware or software) or measured a metric at another config fails, since it cannot gate; so
    does a gate that gated nothing. `alpha` is accepted for old callers and unused: no test over pooled samples
    decides a regression."""
    named = [baselines] if isinstance(baselines, NodeReport) else list(baselines)
    candidates = [report] if isinstance(report, NodeReport) else list(report)
    if not candidates:
        raise ValueError("no candidate run to gate")
    # one run named twice (a folder and a file in it) is one run: a copy would shrink the spread to nothing
    runs = list({b.run_id: b for b in named}.values())
    if not runs:
        raise ValueError("no baseline report to gate against")
    ids = ", ".join(b.run_id for b in runs)
    named_runs = f"{len(runs)} baseline " + ("run(s)" if len(runs) < drift.MIN_SPREAD_RUNS else "runs")
    named_runs += f" ({ids})" if len(runs) <= 3 else ""  # ten run ids make a line nobody reads
    broken = []
    for b in runs:
        for c in candidates:
            if reasons := cmp.not_comparable(b, c):
                broken.append(Gate("baseline", False, f"baseline run {b.run_id} is not comparable"
                                   + (f" with run {c.run_id}" if len(candidates) > 1 else "") + ": "
                                   + "; ".join(reasons)))  # fmt: skip
    if broken:
        return broken[:1] if len(candidates) > 1 else broken
    measured = [cmp.ok_metrics(c) for c in candidates]
    mine, my_specs = measured[0]
    common = set(mine).intersection(*(m for m, _ in measured[1:]))  # what every candidate run measured
    figures: dict[Any, list[float]] = {}
    for b in runs:
        theirs, their_specs = cmp.ok_metrics(b)
        their_rounds, my_rounds = _rounds(b), _rounds(candidates[0])
        their_budgets, my_budgets = _budgets(b), _budgets(candidates[0])
        differs = [f"{mine[k].title}: {why}" for k in theirs if k in mine
                   if (why := cmp.config_difference(their_specs[k], my_specs[k])
                       or _rounds_difference(their_rounds.get(k), my_rounds.get(k))
                       or _budget_difference(their_budgets.get(k, _UNRECORDED),
                                             my_budgets.get(k, _UNRECORDED)))]  # fmt: skip
        if differs:
            broken.append(Gate("baseline", False, f"baseline run {b.run_id} measured another config, so it cannot "
                               "gate: " + "; ".join(differs)))  # fmt: skip
        for k, f in run_figures(b).items():
            figures.setdefault(k, []).append(f)
    if broken:
        return broken
    theirs_now = [run_figures(c) for c in candidates]
    verdicts = {k: drift.judge(figures[k], [f[k] for f in theirs_now], max_regression)
                for k in mine if k in figures and k in common}  # fmt: skip
    if not verdicts:  # a gate that compared nothing must not pass as if it had looked
        return [Gate("baseline", False, f"no metric in common with baseline run(s) {ids}: nothing to gate (another "
                     "suite, precision or device?)")]  # fmt: skip
    cands = "1 run" if len(candidates) == 1 else f"the median of {len(candidates)} runs"
    if len(runs) < drift.MIN_SPREAD_RUNS:
        how = (f"{named_runs}: too few to measure the between-run spread, so the threshold "
               f"{max_regression:.1%} alone decides, {cands} against their median")  # fmt: skip
    else:
        how = (f"{named_runs}: {cands} below their median by more than {max_regression:.1%}, "
               "each run's figure at its fastest iteration")  # fmt: skip
    ungated = sorted(((v.floor, mine[k].title) for k, v in verdicts.items() if not v.gated), reverse=True)
    gated = len(verdicts) - len(ungated)
    note = loaded_note(runs, candidates)
    if ungated:
        note += (f"; {len(ungated)} not gated (noise floor above {max_regression:.1%} against {cands}): "
                + ", ".join(f"{t} (floor {f:.1%})" for f, t in ungated))  # fmt: skip
    if not gated:
        return [Gate("baseline", False, f"none of {len(verdicts)} metrics is steady enough to gate "
                     f"{max_regression:.1%} against {how}: raise --max-regression, or judge more candidate runs "
                     f"(bench run --repeat N){note}")]  # fmt: skip
    worse = [(k, v) for k, v in verdicts.items() if v.regressed]
    if not worse:
        return [Gate("baseline", True, f"no regression in {gated} gated metrics against {how}{note}")]
    out = []
    for k, v in worse:
        m = mine[k]
        if v.spread_known:
            against = (f"median of {len(v.runs)} runs {v.centre:.4g}, robust CV {v.cv:.1%}, noise floor "
                       f"{v.floor:.1%}")  # fmt: skip
        else:
            against = f"median of {len(v.runs)} run(s) {v.centre:.4g}; between-run spread unknown: threshold alone"
        as_median = f" as the median of {len(candidates)} runs" if len(candidates) > 1 else ""
        out.append(Gate("baseline", False, f"{m.title}: {v.candidate:.4g} {m.unit} ({v.ratio - 1:+.1%}){as_median} "
                        f"against {against}", case=case_name(m)))  # fmt: skip
    return out


@dataclass(frozen=True)
class PairedMetric:
    """One metric of a paired judgement: the candidate's Metric (its title, unit, JUnit case) and its verdict."""

    metric: Metric
    verdict: paired.PairedVerdict
    #: the threads the baseline's runs measured it on (Measurement.threads; None where not recorded)
    threads: int | None = None


def run_figures(report: NodeReport) -> dict[Any, float]:
    """Each valid metric's figure in one run, as the gates read it: drift.metric_figure, or, for a metric the run
    measured in several rounds (a fixed-size matmul suite with `rounds`), drift.rounds_figure over them (its fastest
    iteration over all rounds)."""
    rounds: dict[Any, list[tuple[float, Any]]] = {}
    names: dict[Any, str] = {}
    for m in report.measurements:
        for metric in metrics_of(m):
            if metric.status == "ok":
                rounds.setdefault(metric.key, []).append((metric.value, metric.samples_s))
                names[metric.key] = metric.name
    return {k: drift.rounds_figure(names[k], r) for k, r in rounds.items()}


def timed_run(report: NodeReport, side: str) -> paired.TimedRun:
    """A report as one run of `side` for bench.report.paired: its start and end, and each valid metric's figure as
    the gates read it (run_figures: over its rounds, where it measured a metric in several). ValueError for a run
    with no end (partial: it did not take its turn)."""
    if report.partial:
        raise ValueError(f"{side} run {report.run_id} is partial (interrupted or crashed): rerun it, or leave it out "
                         "with the run it was paired with")  # fmt: skip
    start = parse_timestamp(report.start_utc, f"run {report.run_id} start_utc")
    end = parse_timestamp(str(report.end_utc), f"run {report.run_id} end_utc")
    if end < start:  # it would pass the pairing's overlap check whatever ran beside it
        raise ValueError(f"{side} run {report.run_id} ends ({report.end_utc}) before it starts ({report.start_utc})")
    return paired.TimedRun(side, report.run_id, start, end, run_figures(report))


def paired_metrics(baselines: Sequence[NodeReport], candidates: Sequence[NodeReport],
                   max_regression: float | paired.Thresholds,
                   ) -> tuple[list[paired.Pair], list[PairedMetric], list[Gate]]:  # fmt: skip
    """The runs of `bench gate`: baseline and candidate runs made alternately in one session (bench.report.paired),
    paired in time order, and each metric every run measured judged on its pairs' ratios, at its own threshold
    (`max_regression`: one for all, or paired.Thresholds per metric label). Returns the pairs, the
    verdicts, and the gates that refuse the comparison (a pair not comparable: other hardware or software, or a
    metric measured at another config). paired.NotPaired when the runs do not alternate; ValueError for a run
    named twice, a partial run or a bad timestamp."""
    ids = [r.run_id for r in [*baselines, *candidates]]
    if twice := sorted({i for i in ids if ids.count(i) > 1}):
        raise ValueError(f"run(s) named twice: {', '.join(twice)} (a run is one side, once)")
    by_id = {r.run_id: r for r in [*baselines, *candidates]}
    runs = [timed_run(r, paired.BASELINE) for r in baselines] + [timed_run(r, paired.CANDIDATE) for r in candidates]
    pairs = paired.pair_up(runs)
    broken = []
    for p in pairs:
        b, c = by_id[p.baseline.run_id], by_id[p.candidate.run_id]
        if reasons := cmp.not_comparable(b, c):
            broken.append(Gate("baseline", False, f"baseline run {b.run_id} is not comparable with candidate run "
                               f"{c.run_id}: " + "; ".join(reasons)))  # fmt: skip
            continue
        (theirs, their_specs), (mine, my_specs) = cmp.ok_metrics(b), cmp.ok_metrics(c)
        their_threads, my_threads = _threads(b), _threads(c)
        their_rounds, my_rounds = _rounds(b), _rounds(c)
        their_budgets, my_budgets = _budgets(b), _budgets(c)
        if differs := [f"{mine[k].title}: {why}" for k in theirs if k in mine
                       if (why := cmp.config_difference(their_specs[k], my_specs[k])
                           or _thread_difference(their_threads.get(k), my_threads.get(k))
                           or _rounds_difference(their_rounds.get(k), my_rounds.get(k))
                           or _budget_difference(their_budgets.get(k, _UNRECORDED),
                                                 my_budgets.get(k, _UNRECORDED)))]:  # fmt: skip
            broken.append(Gate("baseline", False, f"baseline run {b.run_id} measured another config than candidate "
                               f"run {c.run_id}, so it cannot gate: " + "; ".join(differs)))  # fmt: skip
    if broken:
        return pairs, [], broken[:3]
    # each metric judged on the pairs that hold it on both sides (paired.ratios skips the others): one run that
    # skipped a workload left its metric unjudged while the session passed on the rest, whatever the candidate did
    # there (tests/adversarial/test_twelfth_round.py); fewer than MIN_PAIRS such pairs is inconclusive
    both = {k for p in pairs for k in p.baseline.figures.keys() & p.candidate.figures.keys()}
    titles = {k: m for r in [*baselines, *candidates] for k, m in cmp.ok_metrics(r)[0].items()}
    limits = as_thresholds(max_regression)
    threads: dict[Any, int | None] = {}  # each metric's threads, as the baseline's runs record them
    for b in baselines:
        for k, t in _threads(b).items():
            threads.setdefault(k, t)
    # each metric judged at its threshold, for the slow-down it is there to catch (paired.target_of: a halving for an
    # all-core figure on 2 threads): a session noisier than its threshold but whose noise rules that out passes
    metrics = [PairedMetric(titles[k], paired.judge(paired.ratios(pairs, k), limits.of(titles[k].labels,
                                                                                      threads.get(k)),
                                                    paired.target_of(titles[k].labels, threads.get(k))),
                            threads.get(k))
               for k in sorted(both, key=lambda k: titles[k].title)]  # fmt: skip
    return pairs, metrics, []


def _threads(report: NodeReport) -> dict[Any, int | None]:
    """The threads each valid metric of `report` was measured on (Measurement.threads), by key."""
    return {metric.key: m.threads for m in report.measurements for metric in metrics_of(m) if metric.status == "ok"}


def _rounds(report: NodeReport) -> dict[Any, int]:
    """How many measurements of each metric `report` made, whatever their status (its rounds: bench.planning.matmul's
    `rounds`), by key; none for a run that failed a measurement (a failed one has no metric to count, and
    run_failures names the failure)."""
    counts: dict[Any, int] = {}
    if any(m.status in ("invalid", "error") for m in report.measurements):
        return counts
    for m in report.measurements:
        for metric in metrics_of(m):
            counts[metric.key] = counts.get(metric.key, 0) + 1
    return counts


def _rounds_difference(base: int | None, cand: int | None) -> str:
    """Why one metric measured in `base` rounds in one run and `cand` in another is not compared, or "". Why: a run's
    figure is its fastest iteration over its rounds (run_figures), and the fastest of more windows reads higher on
    the same code: a candidate whose config measured each figure in 40 rounds against the baseline's 3 passed a 10%
    slow-down in 6 of 20 sessions of 5 pairs at 6% noise a window (tests/adversarial/test_fourteenth_round.py)."""
    return "" if base is None or cand is None or base == cand else f"measured in {base!r} rounds vs {cand!r}"


#: What a run's budgets were not recorded as (an old report, a config without the workload's section): not compared.
_UNRECORDED = object()


def _budgets(report: NodeReport) -> dict[Any, Any]:
    """Each valid metric's timed budget per measurement (each round's) as `report`'s config recorded it, by key: the
    suite's [WORKLOAD] budget_s (bench run), or budget_s of a one-workload verb's config (bench matmul, bench membw);
    None where the config left it to the default. Metrics whose budget the config does not record are left out."""
    config = report.config if isinstance(report.config, dict) else {}
    suite = config.get("suite")
    out: dict[Any, Any] = {}
    for m in report.measurements:
        section: Any = None
        if isinstance(suite, dict):
            section = suite.get(m.workload)
        elif config.get("workload") == m.workload:
            section = config
        budget = section.get("budget_s", _UNRECORDED) if isinstance(section, dict) else _UNRECORDED
        if budget is _UNRECORDED:
            continue
        for metric in metrics_of(m):
            if metric.status == "ok":
                out[metric.key] = budget
    return out


def _budget_difference(base: Any, cand: Any) -> str:
    """Why one metric timed for `base` seconds a measurement in one run and `cand` in another is not compared, or "".
    Why: a run's figure is its fastest iteration (over its rounds), and the fastest of a longer window reads higher on
    the same code, while a shorter one's warm-up and first iterations weigh more; a candidate config with another
    budget_s was judged as the same figure, and the gate did not say so (issue 25's leftovers). A default (None) is
    named as one: what it means depends on the verb."""
    if base is _UNRECORDED or cand is _UNRECORDED or base is None and cand is None:
        return ""
    if base == cand and type(base) is type(cand):
        return ""
    if isinstance(base, (int, float)) and isinstance(cand, (int, float)) and base == cand:
        return ""  # 1 and 1.0: one budget

    def shown(v: Any) -> str:
        text = "None (the default)" if v is None else repr(v)
        return text if len(text) <= 40 else text[:37] + "..."

    return f"budget_s {shown(base)} vs {shown(cand)} (each measurement's timed seconds)"


def _thread_difference(base: int | None, cand: int | None) -> str:
    """Why one metric's figures measured on `base` and `cand` threads are not compared, or "". Why: the per-core
    figure is the one steady enough to catch a 10% slow-down; a candidate whose "per-core" run used two threads read
    1.8x the baseline's, passed, and left a 10% slow-down to the all-core figure's wider threshold, which passed it
    too (tests/adversarial/test_thirteenth_round.py). A thread count that changed is the candidate's change: named,
    never judged as a figure of the same thing."""
    return "" if base == cand else f"threads {base!r} vs {cand!r}"


def unjudged(baselines: Sequence[NodeReport], candidates: Sequence[NodeReport], judged: set[Any]) -> list[str]:
    """The titles of valid metrics some run measured that no pair held on both sides (not judged by the paired
    gate: `judged` are the keys it judged)."""
    each = [cmp.ok_metrics(r)[0] for r in [*baselines, *candidates]]
    return sorted({m.title for found in each for k, m in found.items() if k not in judged})


#: The outcome of a paired judgement whose pairs cannot be compared (other hardware or software, another config).
NOT_COMPARABLE = "not comparable"
#: The outcome of a paired judgement in which a run failed a measurement (its check failed, it errored) or the
#: candidate lacks a metric every baseline run measured: a workload a run broke is not a metric to leave unjudged.
FAILED = "failed"


def run_failures(baselines: Sequence[NodeReport], candidates: Sequence[NodeReport]) -> list[Gate]:
    """What the session's runs broke: each measurement of either side that failed its check or errored
    (correctness: a failed baseline run leaves its metric unjudged as surely as a candidate's), and each metric every
    baseline run measured validly that no candidate run did (skipped or no longer run: a metric some candidate runs
    lack stays a note, unjudged). Without this a workload failing in every candidate run (or in a baseline run)
    dropped out of the pairs (only valid metrics are paired) and the session passed on the others
    (tests/adversarial/test_twelfth_round.py)."""
    out = [Gate("correctness", False, f"{side} run {r.run_id}: {g.message}")
           for side, runs in ((paired.CANDIDATE, candidates), (paired.BASELINE, baselines)) for r in runs
           for g in correctness(r) if g.name == "correctness"]  # fmt: skip
    theirs = [cmp.ok_metrics(b)[0] for b in baselines]
    every = set(theirs[0]).intersection(*theirs[1:]) if theirs else set()
    mine = set().union(*(cmp.ok_metrics(c)[0] for c in candidates))
    if lost := sorted(theirs[0][k].title for k in every - mine):
        out.append(Gate("baseline", False, f"no candidate run measured what every baseline run measured: "
                        f"{', '.join(lost)}"))  # fmt: skip
    return out


@dataclass(frozen=True)
class PairedJudgement:
    """`bench gate`'s verdict on a session: its pairs, each metric's verdict, the gates (what JUnit and the log
    show), and the session's `outcome`: paired.PASS, paired.REGRESSION, paired.INCONCLUSIVE (more pairs may tell;
    `pairs_needed` is the most any inconclusive metric needs at its measured spread, None where unknown),
    NOT_COMPARABLE or FAILED (run_failures)."""

    pairs: list[paired.Pair]
    metrics: list[PairedMetric]
    checks: list[Gate]
    outcome: str
    pairs_needed: int | None = None


def as_thresholds(max_regression: float | paired.Thresholds) -> paired.Thresholds:
    """One --max-regression for every metric as paired.Thresholds; Thresholds as they are."""
    if isinstance(max_regression, paired.Thresholds):
        return max_regression
    return paired.Thresholds(float(max_regression))


#: The smallest --max-regression `bench gate` refuses: a metric regresses only when its change is below minus its
#: threshold, so at 50% a candidate at half the baseline's speed passes (at 100%, nothing can fail), the thread-count
#: regression the all-core figure is kept for (tests/adversarial/test_thirteenth_round.py).
HALVING = 0.5


#: bench gate's thresholds by label when no --max-regression is given: the all-core figures (cpus=all) at half the
#: halving they are kept to catch (paired.target_of); every other metric at paired.TARGET / 2.
DEFAULT_RULES = (((("cpus", "all"),), paired.HALVING / 2),)


def parse_thresholds(texts: Sequence[str]) -> paired.Thresholds:
    """`bench gate`'s --max-regression values: 'PERCENT' for every metric (5% = paired.TARGET / 2 when none is
    given), 'LABEL=VALUE[,LABEL=VALUE...]:PERCENT' for the metrics carrying those labels (e.g. cpus=all:15%, the
    all-core figure of a pinned suite). ValueError with the expected form, for two plain values, a percentage of 0
    (no spread is within 0%: nothing could be gated) or of HALVING or more (a halving would pass).

    With no value at all, the recommended setting where the A/A spread supports it (paired.metric_threshold): half
    of what each metric must catch, 5% (a 10% slow-down) and 25% for an all-core figure (cpus=all: a halving), so
    that `bench gate` with configs/gate-cpu.toml needs no threshold on its command line (DEFAULT_RULES)."""
    if not texts:  # an all-core figure's threshold from its threads where the runs record them (paired.target_of)
        return paired.Thresholds(paired.TARGET / 2, DEFAULT_RULES, by_threads=True)
    default: float | None = None
    rules = []
    for text in texts:
        where, sep, amount = text.rpartition(":")
        fraction = parse_fraction(amount)
        if fraction <= 0:
            raise ValueError(f"--max-regression {text}: must be above 0%")
        if fraction >= HALVING:
            raise ValueError(f"--max-regression {text}: must be below {HALVING:.0%} (at {HALVING:.0%} or more even a "
                             "halving passes, half the threads included: a metric that noisy cannot gate here)")  # fmt: skip
        if not sep:
            if default is not None:
                raise ValueError(f"--max-regression {text}: a second value for every metric (give one PERCENT, and "
                                 "LABEL=VALUE:PERCENT for the others)")  # fmt: skip
            default = fraction
            continue
        labels = []
        for item in where.split(","):
            name, eq, value = item.partition("=")
            if not eq or not name.strip() or not value.strip():
                raise ValueError(f"--max-regression {text!r}: expected LABEL=VALUE[,LABEL=VALUE...]:PERCENT, e.g. "
                                 "cpus=all:15%")  # fmt: skip
            labels.append((name.strip(), value.strip()))
        rules.append((tuple(labels), fraction))
    return paired.Thresholds(paired.TARGET / 2 if default is None else default, tuple(rules))


def paired_judgement(baselines: Sequence[NodeReport], candidates: Sequence[NodeReport],
                     max_regression: float | paired.Thresholds) -> PairedJudgement:  # fmt: skip
    """`bench gate`: the paired judgement (paired_metrics) as gates: one failing gate per regressed metric on its
    workload's JUnit case (REGRESSION); else one failing gate naming each metric that is neither gated nor regressed,
    its floor and the pairs its spread would need (INCONCLUSIVE: nothing vouches that it did not slow down, so it
    must not pass, and it is no regression either); else one passing gate naming what was gated (PASS).
    paired.NotPaired / ValueError as paired_metrics."""
    pairs, metrics, broken = paired_metrics(baselines, candidates, max_regression)
    if broken:
        return PairedJudgement(pairs, metrics, broken, NOT_COMPARABLE)
    if failures := run_failures(baselines, candidates):
        return PairedJudgement(pairs, metrics, failures[:3], FAILED)
    if not metrics:
        return PairedJudgement(pairs, metrics, [Gate("baseline", False, "no metric measured by every run: nothing "
                                                     "to gate (another suite, precision or device?)")],
                               NOT_COMPARABLE)  # fmt: skip
    first_b = sum(p.baseline_first for p in pairs)
    limits = as_thresholds(max_regression)
    below = f"{1 - limits.default:.3g}" if limits.flat else "1 - each metric's threshold"
    how = (f"{len(pairs)} pairs of adjacent runs (baseline first in {first_b}), the median of the candidate / "
           f"baseline ratios below {below}")  # fmt: skip
    note = ""
    if missing := unjudged(baselines, candidates, {pm.metric.key for pm in metrics}):
        note = f"; {len(missing)} metric(s) no pair measured on both sides, not judged: " + ", ".join(missing)
    outcome = paired.session_outcome([pm.verdict for pm in metrics])
    if outcome == paired.REGRESSION:
        return PairedJudgement(pairs, metrics, [
            Gate("baseline", False, f"{pm.metric.title}: {pm.verdict.ratio - 1:+.1%} (median of {len(pm.verdict.ratios)} paired "
                 f"ratios, robust CV {pm.verdict.cv:.1%}, noise floor {pm.verdict.floor:.1%}; tolerated "
                 f"{pm.verdict.threshold:.1%})", case=case_name(pm.metric))
            for pm in metrics if pm.verdict.regressed], outcome)  # fmt: skip
    if outcome == paired.INCONCLUSIVE:
        unsure = [pm for pm in metrics if pm.verdict.outcome == paired.INCONCLUSIVE]
        needs = [pm.verdict.pairs_needed for pm in unsure]
        need = None if None in needs else max(n for n in needs if n is not None)
        named = ", ".join(f"{pm.metric.title} ({pm.verdict.ratio - 1:+.1%}, floor {pm.verdict.floor:.1%}, "
                          f"{pm.verdict.pairs_needed} pairs needed)" if pm.verdict.spread_known else
                          f"{pm.metric.title} (fewer than {paired.MIN_PAIRS} pairs: no spread known)"
                          for pm in unsure)  # fmt: skip
        tolerated = (f"{limits.default:.1%}" if limits.flat else
                     "their thresholds (" + ", ".join(f"{pm.verdict.threshold:.0%}" for pm in unsure) + ")")  # fmt: skip
        more = (f"at least {paired.MIN_PAIRS} pairs" if need is None else f"about {need} pairs at the spread "
                f"measured ({max(need - len(pairs), 1)} more)")  # fmt: skip
        return PairedJudgement(pairs, metrics, [
            Gate("baseline", False, f"inconclusive: {len(unsure)} of {len(metrics)} metrics neither within nor past "
                 f"{tolerated} beyond their own noise on {how}: {named}; {more}, or a larger "
                 f"--max-regression{note}")], outcome, need)  # fmt: skip
    if wide := [pm for pm in metrics if pm.verdict.on_target]:
        note += "; passed on the slow-down each is there to catch, which its noise rules out (not within its " \
                "threshold): " + ", ".join(f"{pm.metric.title} (floor {pm.verdict.floor:.1%}, target "
                                            f"{pm.verdict.target:.0%})" for pm in wide)  # fmt: skip
    return PairedJudgement(pairs, metrics, [Gate("baseline", True, f"no regression in {len(metrics)} gated metrics "
                                                 f"on {how}{note}")], outcome)  # fmt: skip


def paired_regressions(baselines: Sequence[NodeReport], candidates: Sequence[NodeReport],
                       max_regression: float | paired.Thresholds) -> list[Gate]:  # fmt: skip
    """paired_judgement's gates."""
    return paired_judgement(baselines, candidates, max_regression).checks


def paired_junit(reports: Sequence[NodeReport], judgement: PairedJudgement, suite_name: str = "bench.gate") -> str:
    """JUnit XML for `bench gate`, as junit() does for a run: one test case per metric judged, its time the seconds
    its measurements took over every run of the session (both sides), its change, floor and pairs as properties; it
    fails on a regression (type "regression") or when inconclusive (type "inconclusive"). Gates that belong to no
    metric (pairs not comparable) are cases of their own."""
    seconds: dict[Any, float] = {}
    for r in reports:
        for measurement in r.measurements:
            for key in {m.key for m in metrics_of(measurement)}:
                seconds[key] = seconds.get(key, 0.0) + seconds_of(measurement)
    root = ET.Element("testsuites", name=suite_name)
    cases = []
    for pm in judgement.metrics:
        v, m = pm.verdict, pm.metric
        case = ET.Element("testcase", classname=f"bench.{m.workload}", name=m.title,
                          time=f"{seconds.get(m.key, 0.0):.3f}")  # fmt: skip
        props = ET.SubElement(case, "properties")
        for k, val in (("change", f"{v.ratio - 1:+.2%}"), ("robust_cv", f"{v.cv:.2%}"), ("floor", f"{v.floor:.2%}"),
                       ("pairs", str(len(v.ratios))), ("outcome", v.outcome),
                       ("pairs_needed", str(v.pairs_needed))):  # fmt: skip
            ET.SubElement(props, "property", name=k, value=val)
        if v.outcome != paired.PASS:
            text = (f"{m.title}: {v.ratio - 1:+.1%} over {len(v.ratios)} pairs, floor {v.floor:.1%}, tolerated "
                    f"{v.threshold:.1%}" + (f"; about {v.pairs_needed} pairs needed at this spread"
                                            if v.outcome == paired.INCONCLUSIVE and v.spread_known else ""))  # fmt: skip
            ET.SubElement(case, "failure", message=text[:200], type=v.outcome).text = text
        cases.append(case)
    for g in judgement.checks:
        if g.case is None and not g.passed and judgement.outcome in (NOT_COMPARABLE, FAILED):
            case = ET.Element("testcase", classname="bench.gate", name=g.name, time="0.000")
            ET.SubElement(case, "failure", message=g.message[:200], type="bench").text = g.message
            cases.append(case)
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(cases)),
                          failures=str(sum(c.find("failure") is not None for c in cases)), errors="0", skipped="0",
                          time=f"{sum(float(c.get('time', 0)) for c in cases):.3f}",
                          timestamp=min((r.start_utc or "" for r in reports), default="")[:19])  # fmt: skip
    props = ET.SubElement(suite, "properties")
    for k, val in (("outcome", judgement.outcome), ("pairs", str(len(judgement.pairs)))):
        ET.SubElement(props, "property", name=k, value=val)
    suite.extend(cases)
    return _xml_text(root)


@dataclass
class _Case:
    name: str
    workload: str
    figures: list[Metric] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    skipped: str | None = None
    #: seconds its measurements took (JUnit's time attribute)
    seconds: float = 0.0


def seconds_of(m: Measurement) -> float:
    """How long a measurement took: end minus start when both are on record, else its timed and warm-up samples."""
    try:
        took = (parse_timestamp(m.end_utc, "end_utc") - parse_timestamp(m.start_utc, "start_utc")).total_seconds()
        if took >= 0:
            return took
    except (ReportError, TypeError):
        pass
    return float(sum(m.warmup_s) + sum(m.samples_s))


def junit(report: NodeReport, gates: list[Gate], suite_name: str = "bench") -> str:
    """JUnit XML: a test case per workload x device x precision (op, kernel, preset) carrying its figures as
    properties; a case fails when one of its measurements is invalid or a gate on it fails. Gates that belong to no
    figure (baseline, completeness, errors) are cases of their own."""
    cases: dict[str, _Case] = {}
    for measurement in report.measurements:
        timed: set[str] = set()
        for m in metrics_of(measurement):
            c = cases.setdefault(case_name(m), _Case(case_name(m), m.workload))
            c.figures.append(m)
            if c.name not in timed:
                c.seconds += seconds_of(measurement)
                timed.add(c.name)
            if m.status != "ok":
                c.failures.append(f"{m.title}: {m.status}")
            elif m.emulated and not c.skipped:
                c.skipped = "emulated precision: measured, but not the device's capacity"
    loose: dict[str, _Case] = {}
    for g in gates:
        target = cases.get(g.case) if g.case else None
        if target is None:
            target = loose.setdefault(g.name, _Case(g.name, "gate"))
        if not g.passed:
            target.failures.append(g.message)
    every = [*cases.values(), *loose.values()]
    root = ET.Element("testsuites", name=suite_name)
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(every)),
                          failures=str(sum(bool(c.failures) for c in every)), errors="0",
                          skipped=str(sum(bool(c.skipped) and not c.failures for c in every)),
                          time=f"{sum(c.seconds for c in every):.3f}",
                          timestamp=(report.start_utc or "")[:19])  # fmt: skip
    props = ET.SubElement(suite, "properties")
    for k, v in (("run_id", report.run_id), ("host", report.inventory.get("host", {}).get("hostname"))):
        ET.SubElement(props, "property", name=k, value=str(v))
    for c in every:
        case = ET.SubElement(suite, "testcase", classname=f"bench.{c.workload}", name=c.name, time=f"{c.seconds:.3f}")
        if c.figures:
            cp = ET.SubElement(case, "properties")
            for m in c.figures:
                ET.SubElement(cp, "property", name=m.title, value=f"{m.value:.6g} {m.unit}")
            ET.SubElement(case, "system-out").text = "\n".join(f"{m.title} = {m.value:.6g} {m.unit}" for m in c.figures)
        if c.failures:
            ET.SubElement(case, "failure", message=c.failures[0][:200], type="bench").text = "\n".join(c.failures)
        elif c.skipped:
            ET.SubElement(case, "skipped", message=c.skipped)
    return _xml_text(root)
