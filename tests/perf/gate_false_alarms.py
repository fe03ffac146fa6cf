"""Benchmark, not a test: does the regression gate cry wolf, and does it catch a real slow-down? (issue 25)

    .venv/bin/python tests/perf/gate_false_alarms.py [--runs 10] [--candidates 10] [--workers 3] [--slow-runs 3]
                                                      [--threshold 5%] [--budget 0.5] [--config FILE]
    .venv/bin/python tests/perf/gate_false_alarms.py --paired [--aa-pairs 8] [--pairs 5] [--max-pairs 12]
                                                      [--candidates 10] [--slow-runs 3] [--threshold recommended]
                                                      [--budget 0.25] [--rounds 3] [--warmup 0.1] [--sizes 1024]
                                                      [--pin-cpu 0] [--duet-pairs 0] [--config FILE] [--keep DIR]
    .venv/bin/python tests/perf/gate_false_alarms.py --replay DIR [--pairs 5] [--max-pairs 12] [--threshold PERCENT]

--paired measures `bench gate` (bench.report.paired) as a CI job runs it with --base-cmd/--candidate-cmd: every
candidate is a sequential session (paired.sequential, the same function): `--pairs` pairs, its runs alternating with
baseline runs of the same code base (A B B A A B ...), judged at `--threshold`; while inconclusive, one pair more and
judged again, up to `--max-pairs`. First an A/A session of `--aa-pairs` pairs (unchanged code against itself) gives
the pairs' spread per metric (read at each run's fastest iteration, as the gate does, and at its median iteration)
and the recommended setting: each metric's own threshold (paired.recommended_thresholds for candidates of `--pairs`
pairs; the default config measures each figure on all cores, cpus=all, and on one thread pinned to `--pin-cpu`,
cpus=N, in `--rounds` rounds of `--budget` s spread over the run and read at the fastest iteration over them, as
configs/gate-cpu.toml does; the A/A table also reads each run's first round alone: what rounds change); then `--duet-pairs` A/A pairs run as a duet (both sides at once, per-core
figures on CPUs 0 and 1, swapped each pair: Bulej et al. 2020), their spread printed beside the sequential pairs'
and their seconds a pair; then `--candidates`
unchanged candidates and `--slow-runs` of each slow-down below, each judged at the recommended setting (or at
`--threshold` PERCENT for every metric). It prints, per session, the pairs it needed, its
seconds, its verdict (and the first look's), each metric's change, floor and order-statistic bounds, the verdict on
the same pairs read at the median iteration, and the unpaired gate's verdict on its candidate runs against the A/A
runs made before it (the drift it cannot separate); then the totals per kind.

Without --paired it measures the unpaired gate of `bench run --baseline` (bench.report.drift):

Makes `--runs` back-to-back `bench run`s of unchanged code, the baseline (default: a short matmul-only config,
float32 and float64 at two fixed sizes, `--budget` seconds each; `--config` for another suite), each in its own
process and results directory; then `--candidates` unchanged candidates of `--workers` runs each (what
`bench run --repeat W --baseline ...` judges: the median of its runs); then `--slow-runs` candidates of each of two
real slow-downs, applied to every bench process by a sitecustomize first on PYTHONPATH:

- half the threads: bench.hardware.devices.physical_cores halved, so torch.set_num_threads gets half the cores;
- 10% slower: every timed matmul product followed by a busy-wait of 1/0.9 - 1 = 11.1% of its own measured time,
  inside the timed iteration, so each iteration's rate is 0.90 of its product's. Each process logs every product's
  time and its iteration's, and the benchmark prints the slow-down injected at each measurement's fastest iteration
  (the gated figure) as measured there.

It prints:

- each metric's between-run spread over the baseline runs: the coefficient of variation read at each run's median
  iteration, fastest tenth and fastest iteration (the gated figure), the robust CV of the gated figure
  (bench.report.drift.robust_cv), the range, the worst leave-one-out drop (what the old gate's threshold came from),
  and the noise floor against a candidate of `--workers` runs (drift.noise_floor), i.e. whether it is gated;
- the recommended threshold derived from that spread (drift.recommended_threshold);
- at `--threshold` and at the recommended one: each unchanged candidate's drop per metric (median of its runs
  against the baseline's median) and the gate's verdict (bench.report.gates.regressions, what `bench run --repeat W
  --baseline ...` runs), the false alarms, and each slowed candidate's injected and measured slow-down and verdict.

Every figure comes from the runs made here. On a loaded machine (it prints `uptime` before and after) the spread is
the load's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.model.reports import NodeReport
from bench.report import drift, gates
from bench.report.compare import ok_metrics
from bench.report.metrics import of as metrics_of
from bench.report.store import load_report

#: matmul only, fixed sizes, no outputs but the report: about 10 s a run on 2 cores, start-up included
SHORT = """
[suite]
name = "gate-false-alarms"
devices = ["cpu"]
workloads = ["matmul"]

[matmul]
search = "none"
precisions = ["float32", "float64"]
sizes = [{sizes}]
budget_s = {budget}
max_warmup_s = {warmup}
rounds = {rounds}
{pin}
[outputs]
formats = []
"""

#: imported by every Python process started with its folder first on PYTHONPATH (bench's workers too)
HALF_THREADS = """
from bench.hardware import devices as _devices

_cores = _devices.physical_cores()
_devices.physical_cores = lambda: max(1, _cores // 2)
"""

#: every timed matmul product 1/0.9 - 1 longer, busy-waiting inside the timed iteration (time.sleep is too coarse for
#: a millisecond product): a rate of 0.90 of the product's. Each collect() appends one line to $GATE_INJECT_LOG: its
#: timed iterations' product and iteration seconds (the last len(samples_s) calls are the timed ones).
TEN_PERCENT_SLOWER = """
import json as _json
import os as _os
import time as _time

import torch as _torch
from bench.workloads import matmul as _mm

_collect = _mm.collect
_EXTRA = 1 / 0.9 - 1


def _slower(timer, fn, policy):
    calls = []

    def slow():
        start = _time.perf_counter()
        out = fn()
        product = _time.perf_counter() - start
        until = start + product * (1 + _EXTRA)
        while _time.perf_counter() < until:
            pass
        calls.append((product, _time.perf_counter() - start))
        return out

    sampled = _collect(timer, slow, policy)
    timed = calls[len(calls) - len(sampled.samples_s):]
    with open(_os.environ["GATE_INJECT_LOG"], "a") as f:
        f.write(_json.dumps({"product_s": [p for p, _ in timed], "iteration_s": sampled.samples_s,
                             "threads": _torch.get_num_threads()}) + "\\n")
    return sampled


_mm.collect = _slower
"""


def bench_run(config: Path, results: Path, pythonpath: str, extra_env: dict[str, str] | None = None) -> NodeReport:
    env = {**os.environ, "PYTHONPATH": pythonpath, "BENCH_PROGRESS": "lines", **(extra_env or {})}
    cmd = [sys.executable, "-c", "from bench.cli import main; main()", "run", "--config", str(config),
           "--results-dir", str(results), "--skip-doctor", "--quiet"]  # fmt: skip
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, cwd=ROOT)
    found = sorted(results.glob("*/report.json"))
    if not found:
        raise SystemExit(f"bench run wrote no report (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    return load_report(found[-1])


def run_by_title(report: NodeReport, quantile: float | None = None, gated: bool = True,
                 first_round: bool = False) -> dict[str, float]:  # fmt: skip
    """{metric title: its figure in this run}: what the gate judges (gates.run_figures: the fastest iteration, over
    the run's rounds where it measured a metric in several), or the median over its rounds of the figure read at
    their `quantile` iteration, or (gated False, no quantile) of the metric's own value, its median iteration.
    `first_round`: from its first round alone (what one window of the round's length would give)."""
    rounds: dict[str, list[Any]] = {}
    for m in ok_metrics(report)[0].values():
        rounds[m.title] = []
    for measurement in report.measurements:
        for m in metrics_of(measurement):
            if m.status == "ok" and m.title in rounds and not (first_round and rounds[m.title]):
                rounds[m.title].append(m)
    if quantile is None and gated:
        return {ms[0].title: drift.rounds_figure(ms[0].name, [(m.value, m.samples_s) for m in ms])
                for ms in rounds.values()}  # fmt: skip

    def one(m: Any) -> float:
        return drift.gated_figure(m.value, m.samples_s, quantile) if quantile is not None else m.value

    return {t: statistics.median(one(m) for m in ms) for t, ms in rounds.items()}


def figures(reports: list[NodeReport], quantile: float | None = None, gated: bool = True,
            first_round: bool = False) -> dict[str, list[float]]:  # fmt: skip
    """{metric title: one figure per run} for the metrics every run has (run_by_title)."""
    per_run = [run_by_title(r, quantile, gated, first_round) for r in reports]
    common = set(per_run[0]).intersection(*per_run[1:])
    return {t: [run[t] for run in per_run] for t in sorted(common)}


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.fmean(values)


def short(title: str) -> str:
    return re.sub(r" model=.*? (?=\w+=)", " ", title).replace("matmul_tflops device=", "")


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()[0]:.2f}"


def injected(log: Path) -> str:
    """The slow-down injected at each measurement's fastest iteration (the gated figure's): 1 - product / iteration
    seconds there, as the slowed process measured them; per thread count when the measurements ran at several (the
    pinned suite: 1 thread is the per-core figure, the others the all-core one)."""
    if not log.exists():
        return "no injection log"
    drops: dict[int, list[float]] = {}
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        i = min(range(len(rec["iteration_s"])), key=rec["iteration_s"].__getitem__)
        drops.setdefault(rec.get("threads", 0), []).append(1 - rec["product_s"][i] / rec["iteration_s"][i])
    parts = [f"{min(d):.2%} to {max(d):.2%} over {len(d)} measurements" + (f" at {t} thread(s)" if len(drops) > 1
             else "") for t, d in sorted(drops.items())]  # fmt: skip
    return "injected " + "; ".join(parts) + " (at the fastest iteration)"


def verdict(checks: list[gates.Gate]) -> str:
    """'pass', 'REGRESSION' (a gated metric failed) or 'CANNOT GATE' (nothing steady enough at this threshold: the
    gate fails too, but it judged nothing)."""
    failed = [g for g in checks if not g.passed]
    if not failed:
        return "pass"
    return "REGRESSION" if any(g.case for g in failed) else "CANNOT GATE"


def judge_all(base: list[NodeReport], candidates: dict[str, list[list[NodeReport]]], centre: dict[str, float],
              notes: dict[str, list[str]], threshold: float) -> None:  # fmt: skip
    """Each candidate (a list of runs) judged against the baseline at `threshold`: its drop per metric (median of its
    runs against the baseline's median), the gate's verdict, and per kind how many ended in each verdict."""
    for kind, groups in candidates.items():
        counts: dict[str, int] = {}
        for i, runs in enumerate(groups):
            checks = gates.regressions(base, runs, threshold)
            v = verdict(checks)
            counts[v] = counts.get(v, 0) + 1
            mine = figures(runs)
            drops = ", ".join(f"{1 - statistics.median(mine[t]) / c:+.1%}" for t, c in centre.items() if t in mine)
            extra = f"; {notes[kind][i]}" if kind in notes else ""
            print(f"    {kind} candidate {i + 1}: drop per metric [{drops}]{extra}: {v}")
            for g in checks:
                if not g.passed and v != "CANNOT GATE":
                    print(f"      {g.message}")
        if counts.get("CANNOT GATE"):
            print("    CANNOT GATE: " + next(g.message for g in gates.regressions(base, groups[0], threshold)))
        what = "false alarms (REGRESSION)" if kind == "unchanged" else "caught (REGRESSION)"
        print(f"  {kind} at {threshold:.0%}: {what} {counts.get('REGRESSION', 0)} of {len(groups)}; "
              f"pass {counts.get('pass', 0)}; CANNOT GATE {counts.get('CANNOT GATE', 0)}")  # fmt: skip


def sizes(args: argparse.Namespace) -> str:
    """The default config's matmul sizes: --sizes, else 1024 paired and 512, 1024 unpaired.

    Why the paired defaults (1024^3 only, 1.0 s a figure, 5 pairs a candidate, an A/A session of 8 pairs): a run is
    then about 4.4 s, of which start-up (torch, bench) is about 2 s, so the 176 runs fit in about 13 minutes on 2 cores;
    512^3 figures spread 2-3x more between runs (issue 25's tables). Per-pair noise is heavy-tailed here (a run that
    another process slowed reads 20-50% off, both ways in a ratio): with 4 pairs a shared-machine trial left 8 of 10
    unchanged candidates with a floor above 5% (their median absolute deviation took an outlier), so 5 pairs, whose
    median and MAD outvote one disturbed pair and, mostly, two. A figure's window of 1.0 s rather than 0.3 s: the
    figure is the fastest iteration, and a longer window outlasts the VM's sub-second disturbances (the lead's quiet
    runs of 2026-12-07: A/A pair CV 1.1-2.5% and a 10% slow-down caught 0 of 3 at 0.3 s, 0.8-0.9% and 3 of 3 at 1.0 s)."""
    text = args.sizes or ("1024" if args.paired else "512,1024")
    try:
        return ", ".join(str(int(n)) for n in text.split(","))
    except ValueError:
        raise SystemExit(f"--sizes {text!r}: expected sizes like 512,1024") from None


def figure_outcome(base: list[NodeReport], cand: list[NodeReport], limits: Any, quantile: float) -> str:
    """The session's outcome on its pairs with each run's figure read at `quantile` of its iterations (0.5: the
    median iteration) instead of the fastest: whether the choice of a pair's figure matters."""
    from bench.report import paired

    pairs, metrics, _ = gates.paired_metrics(base, cand, limits)
    by_id = {r.run_id: r for r in [*base, *cand]}

    def fig(run_id: str, title: str) -> float:
        return run_by_title(by_id[run_id], quantile)[title]

    verdicts = [paired.judge([fig(p.candidate.run_id, pm.metric.title) / fig(p.baseline.run_id, pm.metric.title)
                              for p in pairs], pm.verdict.threshold) for pm in metrics]  # fmt: skip
    return paired.session_outcome(verdicts)


def before_target(ss: Session, limits: Any, first: int, most: int) -> str:
    """The session's outcome on its own runs by the rule before PairedVerdict.rules_out_target (a metric passes only
    within its threshold): judged at each look from `first` pairs on, as paired.sequential would, on the pairs this
    session ran; 'inconclusive at N, would add pairs' where it stopped before `most` with that rule still
    inconclusive (the runs it would have added were not made)."""
    from bench.report import paired

    outcome = paired.INCONCLUSIVE
    for k in range(first, ss.pairs + 1):
        j = gates.paired_judgement(ss.base[:k], ss.cand[:k], limits)
        if j.outcome not in (paired.PASS, paired.INCONCLUSIVE):
            return j.outcome
        outcome = paired.session_outcome([paired.judge(pm.verdict.ratios, pm.verdict.threshold) for pm in j.metrics])
        if outcome != paired.INCONCLUSIVE:
            return outcome
    return outcome if ss.pairs >= most else f"inconclusive at {ss.pairs}, would add pairs"


def replay_main(args: argparse.Namespace) -> None:
    """--replay DIR: the runs a --paired --keep DIR benchmark kept, judged again by today's rule without measuring
    anything: the A/A session's recommended setting (or --threshold), then each session replayed look by look from
    --pairs pairs as paired.sequential would, on the pairs it ran, beside its outcome by the rule before
    PairedVerdict.rules_out_target. A session the benchmark stopped at a conclusion may read 'would add pairs' where
    a rule needs more than it ran."""
    from bench.report import paired

    name = re.compile(r"^\d{4}-(?P<session>.+)-(?P<side>[AB])(?P<i>\d+)$")
    found: dict[str, dict[str, list[tuple[int, NodeReport]]]] = {}
    for folder in sorted(args.replay.iterdir()):
        if (m := name.match(folder.name)) and (reports := sorted(folder.glob("*/report.json"))):
            side = paired.BASELINE if m["side"] == "A" else paired.CANDIDATE
            found.setdefault(m["session"], {}).setdefault(side, []).append((int(m["i"]), load_report(reports[-1])))
    if "aa" not in found:
        raise SystemExit(f"--replay {args.replay}: no A/A session's runs (NNNN-aa-A0/ ...) there")

    def runs(s: str) -> tuple[list[NodeReport], list[NodeReport]]:
        sides = found[s]
        return tuple([r for _, r in sorted(sides.get(side, []), key=lambda x: x[0])]
                     for side in (paired.BASELINE, paired.CANDIDATE))  # type: ignore[return-value]  # fmt: skip

    aa_base, aa_cand = runs("aa")
    _, aa_metrics, broken = gates.paired_metrics(aa_base, aa_cand, paired.TARGET / 2)
    if broken:
        raise SystemExit("the A/A session cannot be paired: " + broken[0].message)
    spreads = [paired.pair_spread(pm.verdict.ratios) for pm in aa_metrics]
    limits: Any = paired.recommended_thresholds([pm.metric.labels for pm in aa_metrics], spreads, args.pairs)
    if args.threshold != "recommended":
        limits = paired.Thresholds(gates.parse_fraction(args.threshold))
    print(f"replay of {args.replay}: A/A {len(aa_base)} pairs, A/A robust CV per metric "
          + "; ".join(f"{short(pm.metric.title)} {sp.cv:.1%}" for pm, sp in zip(aa_metrics, spreads, strict=True))
          + f"; judged at {paired.flags(limits)}, looks from {args.pairs} to {args.max_pairs} pairs")  # fmt: skip
    totals: dict[str, dict[str, int]] = {}
    for s in sorted(k for k in found if k != "aa"):
        base, cand = runs(s)
        n = min(len(base), len(cand))
        if n < args.pairs:
            print(f"  {s}: {n} pairs, fewer than {args.pairs}: not judged")
            continue
        outcome, k = paired.INCONCLUSIVE, args.pairs
        for k in range(args.pairs, n + 1):
            j = gates.paired_judgement(base[:k], cand[:k], limits)
            if (outcome := j.outcome) != paired.INCONCLUSIVE:
                break
        now = (
            outcome
            if outcome != paired.INCONCLUSIVE or n >= args.max_pairs
            else f"inconclusive at {n}, would add pairs"
        )
        ss = Session(base[:n], cand[:n], [0.0], outcome, n, outcome, 0.0)
        before = before_target(ss, limits, args.pairs, args.max_pairs)
        kind = re.sub(r"\d+$", "", s)
        for rule, o in (("now", now), ("before", before)):
            tally = totals.setdefault(f"{kind} {rule}", {})
            tally[o.split(" at ")[0]] = tally.get(o.split(" at ")[0], 0) + 1
        per = ", ".join(f"{short(pm.metric.title)} {pm.verdict.ratio - 1:+.1%} floor {pm.verdict.floor:.1%}"
                        f"{' (on target)' if pm.verdict.on_target else ''}: {pm.verdict.outcome}"
                        for pm in j.metrics)  # fmt: skip
        print(f"  {s}: ran {n} pairs; now {now} at {k} pairs; before the target rule: {before} [{per}]")
    for key, tally in totals.items():
        print(f"  {key}: {tally}")


def duet(config: Path, work: Path, pythonpath: str, pairs: int) -> tuple[dict[str, list[float]], list[float]]:
    """Duet benchmarking (Bulej et al., "Duet benchmarking: improving measurement accuracy in the cloud", Empirical
    Software Engineering 2020): `pairs` A/A pairs whose two runs run *at the same time*, each with its per-core
    figures only (matmul.all_cores = false: two all-core runs at once would fight over the cores), one on CPU 0 and
    one on CPU 1, the CPUs swapped each pair. Returns {metric (cpus label left out): ratio of the run started second
    to the one started first, per pair} and each pair's wall seconds."""
    env = {**os.environ, "PYTHONPATH": pythonpath, "BENCH_PROGRESS": "lines"}
    out: dict[str, list[float]] = {}
    took = []
    for i in range(pairs):
        cores = (0, 1) if i % 2 == 0 else (1, 0)
        t = time.monotonic()
        procs, folders = [], []
        for side, cpu in zip("AB", cores, strict=True):
            folder = work / f"duet-{i:02d}-{side}"
            folders.append(folder)
            cmd = [sys.executable, "-c", "from bench.cli import main; main()", "run", "--config", str(config),
                   "--results-dir", str(folder), "--skip-doctor", "--quiet", "--set", f"matmul.pin_cpu={cpu}",
                   "--set", "matmul.all_cores=false"]  # fmt: skip
            procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True))  # fmt: skip
        for proc in procs:
            _, err = proc.communicate()
            if proc.returncode:
                raise SystemExit(f"duet run failed (exit {proc.returncode}):\n{err[-2000:]}")
        took.append(time.monotonic() - t)
        print(f"duet pair {i}: {took[-1]:.1f} s", file=sys.stderr, flush=True)

        def per_metric(folder: Path) -> dict[str, float]:
            (report,) = [load_report(f) for f in folder.glob("*/report.json")]
            return {re.sub(r" cpus=\S+", "", t): f for t, f in run_by_title(report).items()}

        first, second = (per_metric(f) for f in folders)
        for title in first.keys() & second.keys():
            out.setdefault(title, []).append(second[title] / first[title])
    return out, took


def paired_main(args: argparse.Namespace) -> None:
    """The paired mode (see the module's docstring)."""
    from bench.report import paired

    flat = None if args.threshold == "recommended" else gates.parse_fraction(args.threshold)
    print(f"before: {uptime()}", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gate-paired-") as tmp:
        work = Path(tmp)
        if args.keep:  # every run's results folder kept there, for judging the same runs again under another rule
            work = args.keep.resolve()
            if work.exists() and any(work.iterdir()):
                raise SystemExit(f"--keep {args.keep}: not empty (the runs of another benchmark are there)")
            work.mkdir(parents=True, exist_ok=True)
        config = args.config.resolve() if args.config else work / "short.toml"
        if not args.config:
            pin = "" if args.pin_cpu < 0 else f"pin_cpu = {args.pin_cpu}\n"
            config.write_text(SHORT.format(budget=args.budget, sizes=sizes(args), pin=pin, rounds=args.rounds,
                                           warmup=args.warmup))  # fmt: skip
        plain = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        took: list[float] = []
        loads: list[float] = []
        counter = iter(range(1_000_000))
        limits: Any = paired.Thresholds(flat if flat is not None else paired.TARGET / 2)

        def run(name: str, path: str = plain, env: dict[str, str] | None = None) -> NodeReport:
            t = time.monotonic()
            loads.append(os.getloadavg()[0])
            r = bench_run(config, work / f"{next(counter):04d}-{name}", path, env)
            took.append(time.monotonic() - t)
            print(f"{name}: {took[-1]:.1f} s", file=sys.stderr, flush=True)
            return r

        def session(name: str, first: int, most: int, path: str = plain, env: dict[str, str] | None = None) -> Session:
            """One paired session by bench gate's rule (paired.sequential): `first` pairs, then one more at a time
            while inconclusive at the thresholds (`limits`), up to `most`."""
            runs: dict[str, list[NodeReport]] = {paired.BASELINE: [], paired.CANDIDATE: []}
            t0, first_load = time.monotonic(), len(loads)
            looks: list[str] = []

            def one(side: str) -> None:
                if side == paired.BASELINE:
                    runs[side].append(run(f"{name}-A{len(runs[side])}"))
                else:
                    runs[side].append(run(f"{name}-B{len(runs[side])}", path, env))

            def look() -> str:
                looks.append(gates.paired_judgement(runs[paired.BASELINE], runs[paired.CANDIDATE], limits).outcome)
                print(f"{name}: {len(runs[paired.BASELINE])} pairs: {looks[-1]}", file=sys.stderr, flush=True)
                return looks[-1]

            outcome, pairs = paired.sequential(one, look, 0, first, most)
            return Session(runs[paired.BASELINE], runs[paired.CANDIDATE], loads[first_load:], outcome, pairs,
                           looks[0], time.monotonic() - t0)  # fmt: skip

        aa = session("aa", args.aa_pairs, args.aa_pairs)
        _, aa_metrics, broken = gates.paired_metrics(aa.base, aa.cand, limits)
        if broken:
            raise SystemExit("the A/A session cannot be paired: " + broken[0].message)
        spreads = {pm.metric.title: paired.pair_spread(pm.verdict.ratios) for pm in aa_metrics}
        titles = {pm.metric.title: pm.metric for pm in aa_metrics}
        recommended = paired.recommended_thresholds([pm.metric.labels for pm in aa_metrics], list(spreads.values()),
                                                    args.pairs)  # fmt: skip
        if flat is None:
            limits = recommended
        print(f"recommended: {paired.flags(recommended)}; judging at {paired.flags(limits)}", file=sys.stderr,
              flush=True)  # fmt: skip
        duet_ratios, duet_took = duet(config, work, plain, args.duet_pairs) if args.duet_pairs else ({}, [])
        sessions: dict[str, list[Session]] = {
            "unchanged": [session(f"cand{i}", args.pairs, args.max_pairs) for i in range(args.candidates)]
        }
        notes: dict[str, list[str]] = {}
        for kind, code in (("half-threads", HALF_THREADS), ("10%-slower", TEN_PERCENT_SLOWER)):
            folder = work / kind
            folder.mkdir()
            (folder / "sitecustomize.py").write_text(code)
            path = os.pathsep.join([str(folder), plain])
            for i in range(args.slow_runs):
                log = work / f"{kind}-{i}.jsonl"
                sessions.setdefault(kind, []).append(
                    session(f"{kind}{i}", args.pairs, args.max_pairs, path, {"GATE_INJECT_LOG": str(log)})
                )
                if kind == "10%-slower":
                    notes.setdefault(kind, []).append(injected(log))
    print(f"after: {uptime()}")
    n_sessions = args.candidates + 2 * args.slow_runs
    print(f"{len(took)} runs in {time.monotonic() - started:.0f} s ({statistics.median(took):.1f} s each, median): an "
          f"A/A session of {args.aa_pairs} pairs, {args.duet_pairs} duet A/A pairs, then {args.candidates} unchanged "
          f"candidates and {args.slow_runs} of each slow-down, each a sequential session (bench gate "
          f"--base-cmd/--candidate-cmd's rule: {args.pairs} pairs, one more while inconclusive, at most "
          f"{args.max_pairs}; A B B A ...; {n_sessions} sessions); {os.cpu_count()} logical CPUs; 1-minute load as "
          f"runs started {min(loads):.1f}-{max(loads):.1f}; config: "
          + (str(args.config) if args.config else f"matmul {sizes(args)}^3, {args.rounds} round(s) of {args.budget} s a figure, "
             + ("no CPU pinned" if args.pin_cpu < 0 else f"all cores and one thread on CPU {args.pin_cpu}")))  # fmt: skip
    threads = sorted({m.threads for r in aa.base for m in r.measurements if m.threads})
    for kind, group in sessions.items():
        theirs = sorted({m.threads for ss in group for r in ss.cand for m in r.measurements if m.threads})
        print(f"CPU threads recorded: baseline {threads}, {kind} candidates {theirs}")

    # the A/A session: the pairs' spread against the unpaired spread of the same runs, and at the median iteration
    unpaired = figures([*aa.base, *aa.cand])
    at_median = figures([*aa.base, *aa.cand], quantile=0.5)
    round_one = figures([*aa.base, *aa.cand], first_round=True)
    rec = paired.recommended_threshold(list(spreads.values()), args.pairs)
    print(
        f"\nA/A session, {args.aa_pairs} pairs of unchanged code (ratio = second side / first side of each pair); "
        f"floor for a candidate of {args.pairs} pairs = {paired.Z:g} x robust CV x sqrt(pi/2) / sqrt({args.pairs}); "
        f"1-minute load {min(aa.loads):.1f}-{max(aa.loads):.1f}"
    )
    print(f"{'metric':<44} {'unpaired':>8} {'paired':>7} {'@median':>7} {'round1':>7} {'floor':>6} {'own':>4} steady {'pairs':>5}"
          "  A/A ratios")  # fmt: skip
    ids = [(p.baseline.run_id, p.candidate.run_id) for p in gates.paired_metrics(aa.base, aa.cand, limits)[0]]
    order = {r.run_id: i for i, r in enumerate([*aa.base, *aa.cand])}
    for pm in aa_metrics:
        sp = spreads[pm.metric.title]
        runs_cv = drift.robust_cv(unpaired[pm.metric.title])
        med = at_median[pm.metric.title]
        med_cv = drift.robust_cv([med[order[c]] / med[order[b]] for b, c in ids])
        one = round_one[pm.metric.title]
        one_cv = drift.robust_cv([one[order[c]] / one[order[b]] for b, c in ids])
        print(f"{short(pm.metric.title)[:44]:<44} {runs_cv:>8.1%} {sp.cv:>7.1%} {med_cv:>7.1%} {one_cv:>7.1%} "
              f"{sp.floor(args.pairs):>6.1%} {recommended.of(pm.metric.labels):>4.0%} "
              f"{'yes' if sp.steady(args.pairs) else 'no':>6} "
              f"{sp.pairs_needed() or '>20':>5}  " + " ".join(f"{r - 1:+.1%}" for r in sp.ratios))  # fmt: skip
    print(f"(unpaired: robust CV of the {2 * args.aa_pairs} runs' figures, drift included; paired: robust CV of the "
          "pairs' ratios, each run's figure at its fastest iteration (what the gate reads); @median: the same at each "
          "run's median iteration (over its rounds: their median); round1: the same at its first round's fastest "
          "iteration alone (one window, no rounds); own: the metric's own threshold (paired.metric_threshold: half the slow-down it "
          f"must catch, {paired.TARGET:.0%} or a halving for cpus=all, or its floor rounded up where wider); steady: floor <= {paired.TARGET:.0%}/2; pairs: fewest pairs per "
          "candidate that would make it steady)")  # fmt: skip
    steady = [t for t, sp in spreads.items() if sp.steady(args.pairs)]
    print(f"\nrecommended setting: {paired.flags(recommended)} (each metric's own threshold); one threshold for all "
          f"would be {rec:.0%} (largest A/A floor of the {len(steady)} steady metric(s), rounded up)"
          + ("" if steady else f" -- no metric steady enough to catch a {paired.TARGET:.0%} slow-down")
          + f"; the sessions below are judged at {paired.flags(limits)}")  # fmt: skip
    if blind := [
        short(t) for t, m in titles.items() if paired.unsteady(spreads[t], recommended.of(m.labels), args.pairs)
    ]:
        print("  A/A floor above the recommended threshold (sessions add pairs, or end inconclusive; never loosened): "
              + "; ".join(blind))  # fmt: skip
    if duet_ratios:
        seq = {re.sub(r" cpus=\S+", "", pm.metric.title): spreads[pm.metric.title].cv for pm in aa_metrics
               if pm.metric.labels.get("cpus", "all") != "all"}  # fmt: skip
        print(f"\nduet A/A ({args.duet_pairs} pairs, both runs at once on CPUs 0 and 1, swapped each pair; per-core "
              f"figures only): {statistics.fmean(duet_took):.1f} s a pair against "
              f"{2 * statistics.median(took):.1f} s for a sequential pair (two runs' median)")  # fmt: skip
        for title, values in sorted(duet_ratios.items()):
            against = f"; sequential pinned A/A above: {seq[title]:.1%}" if title in seq else ""
            spread = f"{drift.robust_cv(values):.1%}" if len(values) > 1 else "- (one pair)"
            print(f"  {short(title)[:44]:<44} robust CV {spread} (range {min(values) - 1:+.1%} "
                  f"to {max(values) - 1:+.1%}){against}  " + " ".join(f"{r - 1:+.1%}" for r in values))  # fmt: skip
    unpaired_rec = drift.recommended_threshold([drift.spread(v) for v in unpaired.values()], args.pairs)
    print("metrics in the change lists, in order: " + "; ".join(short(pm.metric.title) for pm in aa_metrics))
    print(f"\neach candidate: a sequential session at {paired.flags(limits)}; change, floor and the order "
          f"statistics' bounds of the median ratio per metric, at the last look; 'at {args.pairs} pairs': the first "
          "look's outcome; '@median': the outcome on the same pairs with each run's figure at its median iteration; "
          f"'flat {paired.TARGET / 2:.0%}': on the same pairs with one threshold for every metric; 'unpaired': its "
          f"candidate runs by the unpaired gate against the {2 * args.aa_pairs} A/A runs made before it, at the "
          f"threshold they support ({unpaired_rec:.0%})")  # fmt: skip
    for kind, group in sessions.items():
        counts: dict[str, int] = {}
        caught_unpaired, first_counts, median_counts, flat_counts, before_counts = 0, {}, {}, {}, {}
        for i, ss in enumerate(group):
            j = gates.paired_judgement(ss.base, ss.cand, limits)
            counts[ss.outcome] = counts.get(ss.outcome, 0) + 1
            first_counts[ss.first] = first_counts.get(ss.first, 0) + 1
            by_median = figure_outcome(ss.base, ss.cand, limits, 0.5)
            median_counts[by_median] = median_counts.get(by_median, 0) + 1
            by_flat = gates.paired_judgement(ss.base, ss.cand, paired.TARGET / 2).outcome
            flat_counts[by_flat] = flat_counts.get(by_flat, 0) + 1
            before = before_target(ss, limits, args.pairs, args.max_pairs)
            before_counts[before] = before_counts.get(before, 0) + 1
            per = ", ".join(f"{pm.verdict.ratio - 1:+.1%} floor {pm.verdict.floor:.1%} [{pm.verdict.bounds[0] - 1:+.1%}"
                            f", {pm.verdict.bounds[1] - 1:+.1%}] at {pm.verdict.threshold:.0%}: {pm.verdict.outcome}"
                            for pm in j.metrics)  # fmt: skip
            old = verdict(gates.regressions([*aa.base, *aa.cand], ss.cand, unpaired_rec))
            caught_unpaired += old == "REGRESSION"
            extra = f"; {notes[kind][i]}" if kind in notes else ""
            print(f"    {kind} candidate {i + 1}: {ss.pairs} pairs, {ss.seconds:.0f} s: {ss.outcome.upper()} (at "
                  f"{args.pairs} pairs: {ss.first}; @median: {by_median}; flat {paired.TARGET / 2:.0%}: {by_flat}; "
                  f"unpaired: {old}; before the target rule: {before}) [{per}]{extra}; load {min(ss.loads):.1f}-"
                  f"{max(ss.loads):.1f}")  # fmt: skip
            if ss.outcome in (paired.INCONCLUSIVE, gates.NOT_COMPARABLE):
                print(f"      {next(g.message for g in j.checks if not g.passed)}")
        # a metric measured on another thread count on each side is "not comparable" (gates._thread_difference, exit
        # 1 naming the thread counts): half the threads fails the job that way, as surely as a regression
        what = (
            "false alarms (regression or not comparable)"
            if kind == "unchanged"
            else "caught (regression or not comparable)"
        )
        failed = counts.get(paired.REGRESSION, 0) + counts.get(gates.NOT_COMPARABLE, 0)
        pairs = [ss.pairs for ss in group]
        secs = [ss.seconds for ss in group]
        print(f"  {kind} at the setting above: {what} {failed} of {len(group)} (not comparable "
              f"{counts.get(gates.NOT_COMPARABLE, 0)}); pass "
              f"{counts.get(paired.PASS, 0)}; inconclusive {counts.get(paired.INCONCLUSIVE, 0)}; pairs "
              f"{min(pairs)}-{max(pairs)} (mean {statistics.fmean(pairs):.1f}); a session {min(secs):.0f}-"
              f"{max(secs):.0f} s; at the first look ({args.pairs} pairs) {first_counts}; on median-iteration "
              f"figures {median_counts}; flat {paired.TARGET / 2:.0%} on the same pairs {flat_counts}; the unpaired "
              f"gate: regression {caught_unpaired} of {len(group)}; before the target rule (no metric passed on its "
              f"target, paired.PairedVerdict.rules_out_target) {before_counts}")  # fmt: skip


@dataclass(frozen=True)
class Session:
    """One paired session as run: its runs, the 1-minute loads as they started, its outcome after `pairs` pairs,
    its first look's outcome and its seconds."""

    base: list[NodeReport]
    cand: list[NodeReport]
    loads: list[float]
    outcome: str
    pairs: int
    first: str
    seconds: float


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paired", action="store_true", help="measure the paired gate (bench gate) instead")
    ap.add_argument("--aa-pairs", type=int, default=8, help="pairs of the A/A session (--paired; at least 3)")
    ap.add_argument("--pairs", type=int, default=5, help="pairs before a session's first look (--paired; at least 3)")
    ap.add_argument("--max-pairs", type=int, default=12, help="pairs a session stops at while inconclusive (--paired)")
    ap.add_argument(
        "--sizes", default=None, help="matmul sizes of the default config (default 1024 paired, else 512,1024)"
    )
    ap.add_argument("--runs", type=int, default=10, help="unchanged baseline runs (at least 3)")
    ap.add_argument("--candidates", type=int, default=10, help="unchanged candidates judged against the baseline")
    ap.add_argument("--workers", type=int, default=drift.CANDIDATE_RUNS, help="runs per candidate (its median)")
    ap.add_argument("--slow-runs", type=int, default=3, help="candidates of each slow-down (half threads, 10%% slower)")
    ap.add_argument("--threshold", default=None,
                    help="a --max-regression to judge at besides the recommended one (default 5%%); --paired: "
                    "'recommended' (the default) judges each metric at its own threshold from the A/A session, a "
                    "percentage judges every metric at it")  # fmt: skip
    ap.add_argument(
        "--pin-cpu",
        type=int,
        default=0,
        help="--paired: the CPU the default config's per-core figures run on (-1: none, all cores only)",
    )
    ap.add_argument(
        "--duet-pairs",
        type=int,
        default=0,
        help="--paired: A/A pairs run as a duet (both at once, per-core figures on CPUs 0 and 1; 0, the default: "
        "none; measured twice and not adopted, docs/ci.md)",
    )
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds per measurement of the default config (default 0.25 paired, as "
                    "configs/gate-cpu.toml, else 0.5)")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=None,
                    help="the default config's matmul.rounds: each figure measured that many times in turn, spread "
                    "over the run, read at its fastest iteration over them (default 3 paired, as "
                    "configs/gate-cpu.toml, else 1)")  # fmt: skip
    ap.add_argument("--warmup", type=float, default=None,
                    help="the default config's matmul.max_warmup_s (default 0.1 paired, else 0.2)")  # fmt: skip
    ap.add_argument("--config", type=Path, default=None, help="suite config (default: a short matmul-only one)")
    ap.add_argument("--keep", type=Path, default=None,
                    help="--paired: keep every run's results folder under this (new or empty) folder, to judge the "
                    "same runs again (default: a temporary folder, removed)")  # fmt: skip
    ap.add_argument("--replay", type=Path, default=None,
                    help="judge the runs a --paired --keep DIR benchmark kept in DIR again, measuring nothing "
                    "(with --pairs, --max-pairs, --threshold)")  # fmt: skip
    args = ap.parse_args()
    if args.replay:
        args.threshold = args.threshold or "recommended"
        replay_main(args)
        return
    args.budget = args.budget or (0.25 if args.paired else 0.5)
    args.rounds = args.rounds or (3 if args.paired else 1)
    args.warmup = args.warmup if args.warmup is not None else (0.1 if args.paired else 0.2)
    args.threshold = args.threshold or ("recommended" if args.paired else "5%")
    if args.paired:
        if (
            args.aa_pairs < 3
            or args.pairs < 3
            or args.max_pairs < args.pairs
            or args.candidates < 0
            or args.slow_runs < 0
        ):
            ap.error("--aa-pairs and --pairs at least 3, --max-pairs at least --pairs")
        paired_main(args)
        return
    if args.runs < drift.MIN_SPREAD_RUNS or args.workers < 1 or args.candidates < 0 or args.slow_runs < 0:
        ap.error(f"--runs at least {drift.MIN_SPREAD_RUNS}, --workers at least 1")
    threshold = gates.parse_fraction(args.threshold)
    print(f"before: {uptime()}", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gate-false-alarms-") as tmp:
        work = Path(tmp)
        config = args.config.resolve() if args.config else work / "short.toml"
        if not args.config:
            config.write_text(SHORT.format(budget=args.budget, sizes=sizes(args), pin="", rounds=args.rounds,
                                           warmup=args.warmup))  # fmt: skip
        plain = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        took: list[float] = []
        loads: dict[str, float] = {}  # run id -> 1-minute load average as it started

        def run(name: str, path: str = plain, env: dict[str, str] | None = None) -> NodeReport:
            t = time.monotonic()
            load = os.getloadavg()[0]
            r = bench_run(config, work / name, path, env)
            took.append(time.monotonic() - t)
            loads[r.run_id] = load
            print(f"{name}: {took[-1]:.1f} s", file=sys.stderr, flush=True)
            return r

        base = [run(f"base-{i}") for i in range(args.runs)]
        candidates: dict[str, list[list[NodeReport]]] = {
            "unchanged": [[run(f"cand-{i}-{w}") for w in range(args.workers)] for i in range(args.candidates)]
        }
        notes: dict[str, list[str]] = {}
        for kind, code in (("half-threads", HALF_THREADS), ("10%-slower", TEN_PERCENT_SLOWER)):
            folder = work / kind
            folder.mkdir()
            (folder / "sitecustomize.py").write_text(code)
            path = os.pathsep.join([str(folder), plain])
            for i in range(args.slow_runs):
                log = work / f"{kind}-{i}.jsonl"
                group = [run(f"{kind}-{i}-{w}", path, {"GATE_INJECT_LOG": str(log)}) for w in range(args.workers)]
                candidates.setdefault(kind, []).append(group)
                if kind == "10%-slower":
                    notes.setdefault(kind, []).append(injected(log))
    for kind, groups in candidates.items():  # what else the machine was doing, run by run
        for i, group in enumerate(groups):
            text = "load " + "/".join(f"{loads[r.run_id]:.1f}" for r in group)
            kept = notes.setdefault(kind, ["" for _ in groups])
            kept[i] = f"{kept[i]}; {text}" if kept[i] else text
    print(f"after: {uptime()}")
    print(f"{len(took)} runs in {time.monotonic() - started:.0f} s ({statistics.median(took):.1f} s each, median): "
          f"baseline {args.runs}, {args.candidates} unchanged candidates and {args.slow_runs} of each slow-down, "
          f"{args.workers} runs each; {os.cpu_count()} logical CPUs")  # fmt: skip
    threads = sorted({m.threads for r in base for m in r.measurements if m.threads})
    for kind, groups in candidates.items():
        theirs = sorted({m.threads for g in groups for r in g for m in r.measurements if m.threads})
        print(f"CPU threads recorded: baseline {threads}, {kind} candidates {theirs}")

    gated = figures(base)
    medians = figures(base, gated=False)
    tenth = figures(base, 0.1)
    spreads = {t: drift.spread(v) for t, v in gated.items()}
    rec = drift.recommended_threshold(list(spreads.values()), args.workers)
    print(f"\nbaseline spread over {args.runs} runs: CV (stdev/mean) read at each run's median iteration, fastest tenth "
          f"and fastest iteration (gated); robust CV of the gated figure; noise floor against {args.workers} "
          "candidate runs")  # fmt: skip
    print(f"{'metric':<44} {'median':>8} {'cv@med':>7} {'@tenth':>7} {'@fast':>7} {'robust':>7} {'range':>6} "
          f"{'worst1':>7} {'floor':>6} steady {'runs':>5}")  # fmt: skip
    for title, s in spreads.items():
        print(f"{short(title)[:44]:<44} {s.median:>8.4g} {cv(medians[title]):>7.1%} {cv(tenth[title]):>7.1%} "
              f"{s.cv:>7.1%} {s.robust_cv:>7.1%} {s.spread:>6.1%} {s.quiet:>7.1%} {s.floor(args.workers):>6.1%} "
              f"{'yes' if s.steady(args.workers) else 'no':>6} {s.runs_needed() or '>20':>5}")  # fmt: skip
    print(f"(worst1: worst leave-one-out drop, what the old threshold came from; steady: floor <= {drift.TARGET:.0%}/2; "
          "runs: candidate runs that would make it steady)")  # fmt: skip
    print("baseline runs' 1-minute load averages as each started: " + " ".join(f"{loads[r.run_id]:.1f}" for r in base))
    steady = [t for t, s in spreads.items() if s.steady(args.workers)]
    print(f"\nrecommended threshold: {rec:.0%} (largest noise floor of the {len(steady)} steady metric(s), rounded up)"
          + ("" if steady else f" -- no metric steady enough to catch a {drift.TARGET:.0%} slow-down"))  # fmt: skip
    centre = {t: s.median for t, s in spreads.items()}
    print("metrics in the drop lists, in order: " + "; ".join(short(t) for t in centre))
    for t in dict.fromkeys([rec, threshold]):
        print(
            f"\nat --max-regression {t:.0%} (candidates of {args.workers} runs against the {args.runs} baseline runs):"
        )
        judge_all(base, candidates, centre, notes, t)


if __name__ == "__main__":
    main()
