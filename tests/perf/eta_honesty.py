"""Benchmark, not a test: how honest `bench run`'s time left is (issue 25).

    .venv/bin/python tests/perf/eta_honesty.py [--config configs/smoke-cpu.toml --config configs/node.toml] [--runs 2]
                                                [--keep DIR]
    .venv/bin/python tests/perf/eta_honesty.py --replay DIR [--show]

For each config (default: the smoke and the node suite), runs the suite `--runs` times back to back into one fresh
temporary results directory, as a log sees it (BENCH_PROGRESS=lines), stamping every stderr line with the time it
arrived. The first run has only the budgets and the rates it measures to go by; later ones have what each step took
in the run before (StepHistory, RESULTS_DIR/step-seconds.json). For each '~h:mm:ss left' after the first step it
prints the step that starts there and how long it really took, the estimate against the time that really remained
(from the line to the '[done]' line), and their ratio; for the run, the worst ratio and the largest rise of the
estimate beyond the time elapsed between two lines.

Goal (issue 25): every estimate within +-30% of what remained, and no rise beyond the time elapsed. The estimate is
printed in whole seconds, so an estimate within 1 s of what remained also passes (0 s left with 0.4 s to go is
honest; the ratio would say 0). The machine's load skews both: `uptime` is printed before and after each run.

Each run's trace (the Eta's plan, step begins, re-estimates, progress and heartbeats, on its own clock) is kept in
DIR with --keep (else for the run only). The run ends by replaying the traces it made under bench's rule and the rule
before issue 25's fix, each run as it ran and with each other run's durations as its history, so one run prints the
old rule's figures on the very same runs. --replay DIR does only that, for every candidate rule in rules(), without
running anything: how a new rule is judged in milliseconds on recorded runs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
LEFT = re.compile(r"~(\d+):(\d\d):(\d\d) left")


def seconds(match: re.Match[str]) -> int:
    h, m, s = (int(x) for x in match.groups())
    return 3600 * h + 60 * m + s


def record(trace: Path) -> None:
    """Make every Eta of this process write what it is told and what it says, one JSON object a line, to `trace`:
    the plan (each step's label, class, estimate, whether it came from the history, the lane), each step's begin,
    the end, each re-estimate and progress fraction, and each time left read outside begin (a heartbeat), each with
    Eta's own clock. replay() feeds the same calls to an Eta of any rule on a fake clock: a rule is judged on recorded
    runs in milliseconds, without rerunning the suites."""
    import threading

    from bench.cli import progress

    lock, pid, out = threading.Lock(), os.getpid(), trace.open("a", encoding="utf-8")
    inside = threading.local()

    def write(eta: progress.Eta, event: str, **fields: object) -> None:
        if os.getpid() != pid:  # a forked worker inherits the patch, not the run's plan
            return
        with lock:
            out.write(json.dumps({"e": event, "t": eta.now(), **fields}) + "\n")
            out.flush()

    init, begin, end, reestimate, prog, left = (progress.Eta.__init__, progress.Eta.begin, progress.Eta.end,
                                                 progress.Eta.reestimate, progress.Eta.progress, progress.Eta.left)  # fmt: skip

    def init_(self: progress.Eta, steps, estimates, concurrent, now=time.monotonic, known=()):  # type: ignore[no-untyped-def]
        init(self, steps, estimates, concurrent, now=now, known=known)
        plan = [{"label": s.label, "workload": s.workload, "device": s.device, "lane": s.lane, "estimate": e,
                 "known": id(s) in self.known, "class": progress.step_class(s)} for s, e in zip(steps, estimates)]  # fmt: skip
        write(self, "plan", concurrent=concurrent, steps=plan)

    def begin_(self: progress.Eta, step):  # type: ignore[no-untyped-def]
        write(self, "begin", label=step.label)
        inside.begin = True
        try:
            value = begin(self, step)
        finally:
            inside.begin = False
        write(self, "said", value=value)
        return value

    def end_(self: progress.Eta) -> None:
        write(self, "end")
        end(self)

    def reestimate_(self: progress.Eta, step, seconds):  # type: ignore[no-untyped-def]
        write(self, "reestimate", label=step.label, seconds=seconds)
        reestimate(self, step, seconds)

    def progress_(self: progress.Eta, label, fraction):  # type: ignore[no-untyped-def]
        write(self, "progress", label=label, fraction=fraction)
        prog(self, label, fraction)

    def left_(self: progress.Eta) -> float:
        value = left(self)
        if not getattr(inside, "begin", False):
            write(self, "left", value=value)
        return value

    progress.Eta.__init__ = init_  # type: ignore[method-assign]
    progress.Eta.begin, progress.Eta.end, progress.Eta.reestimate = begin_, end_, reestimate_  # type: ignore[method-assign]
    progress.Eta.progress, progress.Eta.left = progress_, left_  # type: ignore[method-assign]


def run_once(config: Path, results: Path, trace: Path | None = None) -> list[tuple[float, str]]:
    env = {**os.environ, "BENCH_PROGRESS": "lines", "PYTHONPATH": str(ROOT)}
    code = "from bench.cli import main; main()"
    if trace is not None:
        code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import eta_honesty; "
                f"eta_honesty.record(__import__('pathlib').Path({str(trace)!r})); " + code)  # fmt: skip
    cmd = [sys.executable, "-c", code, "run", "--config", str(config),
           "--results-dir", str(results), "--skip-doctor"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    start = time.monotonic()
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append((time.monotonic() - start, line.rstrip()))
    proc.wait()
    return lines


class Said(NamedTuple):
    at: float
    left: float
    remaining: float
    label: str | None
    took: float
    estimate: float


#: the goal: within +-30% of what remained, or within the display's resolution (whole seconds)
TOLERANCE = 0.30
RESOLUTION_S = 1.0


def honest(estimate: float, remaining: float) -> bool:
    return abs(estimate - remaining) <= max(TOLERANCE * remaining, RESOLUTION_S)


def said_in(lines: list[tuple[float, str]], plan: dict[str, float]) -> list[Said]:
    """The estimates a run's log printed, as Said: a step line's step (what it really took: to the next step line or
    the '[done]' line) with its estimate in `plan` (label -> seconds; from the trace), or a heartbeat (no step)."""
    end = next((t for t, line in lines if line.startswith("[done]")), None)
    if end is None:
        raise SystemExit("the run printed no [done] line:\n" + "\n".join(line for _, line in lines[-20:]))
    # step lines only ('[3/6 33%] ...'): a heartbeat inside a step is an estimate too, but starts no step
    estimates = [(t, seconds(m), line) for t, line in lines if (m := LEFT.search(line))]
    starts = [t for t, _, line in estimates if not line.split("]")[0].endswith("...")] + [end]
    said = []
    for t, left, line in estimates:
        if line.split("]")[0].endswith("..."):
            said.append(Said(t, left, end - t, None, 0.0, 0.0))
            continue
        label = line.split(" left: ", 1)[1]
        took = next((b for b in starts if b > t), end) - t
        said.append(Said(t, left, end - t, label, took, plan.get(label, float("nan"))))
    return said


def judge(said: list[Said], show: bool = True) -> tuple[float, float, int, int]:
    """(worst ratio, largest rise beyond the time elapsed, estimates judged, estimates off the goal) of one run. The
    worst ratio is over the estimates off the goal and those made with 3.3 s or more to go. With `show`, a line per
    estimate: when, the step begun there (what it took, its estimate from the budgets or the history, and their
    ratio: that step's pace), what was said, what really remained, and their ratio."""
    worst, rise, judged, off = 1.0, 0.0, 0, 0
    if show:
        print(f"  {'at s':>7} {'took':>6} {'its est':>7} {'pace':>5} {'said':>6} {'really':>7} {'ratio':>6}  ok   step")
    for i, x in enumerate(said):
        left = round(x.left)  # the display's whole seconds (progress.clock(..., nearest=True))
        step = (
            f"{x.took:6.1f} {x.estimate:7.1f} {x.took / x.estimate if x.estimate else 0:5.2f}" if x.label else " " * 20
        )
        what = x.label or "(heartbeat)"
        if i == 0:  # the first step's line: the budgets' estimate (the plan's), not judged
            if show:
                print(f"  {x.at:7.1f} {step} {left:6d} {x.remaining:7.1f} {'':>6}  --   {what}")
            continue
        # on the figures themselves (a replay's are the Eta's seconds, a log's its whole seconds): rounding for the
        # display alone can turn 16.49 s then 16.51 s, 0.02 s later, into a 1 s rise
        rise = max(rise, x.left - said[i - 1].left - (x.at - said[i - 1].at))
        ratio = left / x.remaining if x.remaining > 0 else float("inf")
        good = honest(left, x.remaining)
        judged += 1
        off += not good
        # the ratio means something where a second is under 30% of what remained
        if (not good or x.remaining >= RESOLUTION_S / TOLERANCE) and abs(ratio - 1) > abs(worst - 1):
            worst = ratio
        if show:
            print(f"  {x.at:7.1f} {step} {left:6d} {x.remaining:7.1f} {ratio:6.2f}  {'ok' if good else 'OFF'}  {what}")
    return worst, rise, judged, off


def load(trace: Path) -> list[dict]:
    """A trace's events (record()), those of the run's one Eta: the first plan and what follows it."""
    events = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines() if line.strip()]
    first = next((i for i, e in enumerate(events) if e["e"] == "plan"), len(events))
    return events[first:]


def durations(events: list[dict]) -> dict[str, float]:
    """What each step of a recorded run took (from its begin to the next begin, or the end): the history the run
    leaves behind (StepHistory)."""
    marks = [(e["t"], e.get("label")) for e in events if e["e"] in ("begin", "end")]
    return {label: b - a for (a, label), (b, _) in itertools.pairwise(marks) if label is not None}


def median_history(runs: list[list[dict]]) -> dict[str, float]:
    """Each step's median duration over several recorded runs: a history of several runs rather than the last."""
    import statistics

    took = [durations(events) for events in runs]
    return {label: statistics.median(d[label] for d in took if label in d) for label in took[-1]}


def replay(events: list[dict], eta_type: type, history: dict[str, float] | None = None) -> list[Said]:
    """What an Eta of `eta_type` would have said in a recorded run, on a fake clock that reads each event's time:
    the same plan (with `history`, every step's estimate what it took in that other run, as StepHistory gives), the
    same begins, re-estimates, progress and heartbeats. Each Said: when, the seconds said, the seconds that really
    remained, the step begun there (None for a heartbeat), what it really took, its estimate (the plan's)."""
    from bench import runner

    plan, end = events[0], next(e["t"] for e in events if e["e"] == "end")
    steps = [runner.Step(p["label"], list, p["workload"], p["device"], p["lane"]) for p in plan["steps"]]
    by_label = {s.label: s for s in steps}
    assert len(by_label) == len(steps), "replay needs one label per step"
    if history is None:
        estimates = [p["estimate"] for p in plan["steps"]]
        known = [s for s, p in zip(steps, plan["steps"], strict=True) if p["known"]]
    else:
        estimates = [history.get(p["label"], p["estimate"]) for p in plan["steps"]]
        known = [s for s in steps if s.label in history]
    clock = [plan["t"]]
    eta = eta_type(steps, estimates, plan["concurrent"], now=lambda: clock[0], known=known)
    took = durations(events)
    said: list[Said] = []
    for e in events[1:]:
        clock[0] = e["t"]
        if e["e"] == "begin":
            step = by_label[e["label"]]
            planned = eta.estimates[id(step)]
            said.append(Said(e["t"] - plan["t"], eta.begin(step), end - e["t"], step.label, took[step.label], planned))
        elif e["e"] == "left":
            said.append(Said(e["t"] - plan["t"], eta.left(), end - e["t"], None, 0.0, 0.0))
        elif e["e"] == "reestimate":
            eta.reestimate(by_label[e["label"]], e["seconds"])
        elif e["e"] == "progress":
            eta.progress(e["label"], e["fraction"])
    return said


def old_rule() -> type:
    """The rule before issue 25's fix, for comparison: one pace for every step timed by the history (the sum of their
    times this run over the sum of their history), and each budget-estimated class its own such pace."""
    from bench.cli import progress

    class Shared(progress.Eta):
        OVERRUN_SHARE = 0.0  # a running step past its expected time: 0 s left

        def pace(self, step):  # type: ignore[no-untyped-def]
            if id(step) in self.known:
                peers = [(t, e) for s, t, e in self.finished if id(s) in self.known]
            else:
                peers = [(t, e) for s, t, e in self.finished
                         if id(s) not in self.known and progress.step_class(s) == progress.step_class(step)]  # fmt: skip
            actual, estimated = sum(t for t, _ in peers), sum(e for _, e in peers)
            return actual / estimated if estimated > 0 and actual > 0 else 1.0

    return Shared


def variant(prior_steps: float, per_class_known: bool = False, median: bool = False, overrun: float = 0.25,
            pooled: bool = True) -> type:  # fmt: skip
    """A candidate rule: bench's (progress.Eta: a group's pace shrunk toward 1 by a prior worth `prior_steps` of its
    typical steps), with the history-timed steps paced per class too (`per_class_known`), or with the pace the median
    of the finished steps' own paces and `prior_steps` (rounded) paces of 1 (`median`)."""
    import statistics

    from bench.cli import progress

    class Variant(progress.Eta):
        PRIOR_STEPS, OVERRUN_SHARE = prior_steps, overrun

        def group(self, step):  # type: ignore[no-untyped-def]
            return (id(step) in self.known, progress.step_class(step)) if per_class_known else super().group(step)

        def prior(self, group):  # type: ignore[no-untyped-def]
            return super().prior(group) if pooled else 1.0

        def pace(self, step):  # type: ignore[no-untyped-def]
            if not median:
                return super().pace(step)
            g = self.group(step)
            paces = [t / e for s, t, e in self.finished if self.group(s) == g and e > 0]
            return statistics.median(paces + [1.0] * round(prior_steps)) if paces else 1.0

    return Variant


def rules() -> dict[str, type]:
    """The rules --replay compares: bench's own (progress.Eta), the one it replaced, and candidates."""
    from bench.cli import progress

    found = {"bench": progress.Eta, "before": old_rule()}
    for k in (0.0, 0.5, 1.0, 2.0, 3.0, 4.0):
        found[f"prior {k}"] = variant(k)
        found[f"prior {k} per class"] = variant(k, per_class_known=True)
    for k in (1.0, 2.0):
        found[f"median, {k:.0f} prior"] = variant(k, median=True)
    for k in (0.5, 1.0, 2.0):
        found[f"prior {k}, budget classes toward 1"] = variant(k, pooled=False)
    for share in (0.0, 0.5):
        found[f"prior 2.0, overrun share {share}"] = variant(2.0, overrun=share)
    return found


def replay_all(directory: Path, show: bool, names: tuple[str, ...] = ()) -> None:
    """Each rule (those in `names`, or all) on every trace kept in `directory` (CONFIG-runN.jsonl): each run as it ran (run 1 from the budgets,
    later runs with the history of the run before), and each run with every other run of its config as its history
    (the run-to-run spread of n runs gives n(n-1) such pairs)."""
    traces: dict[str, list[tuple[int, list[dict]]]] = {}
    for path in sorted(directory.glob("*-run*.jsonl")):
        stem, n = path.stem.rsplit("-run", 1)
        events = load(path)
        if events and any(e["e"] == "end" for e in events):  # a run still going, or killed, has no end to judge by
            traces.setdefault(stem, []).append((int(n), events))
    totals: dict[tuple[str, str, bool], list[float]] = {}
    chosen = {name: rule for name, rule in rules().items() if not names or name in names}
    for name, eta_type in chosen.items():
        print(f"rule {name}:")
        for stem, runs in sorted(traces.items()):
            runs.sort()
            cases = [(f"run {n} as it ran", events, None) for n, events in runs]
            cases += [(f"run {j} with run {i}'s history", b, durations(a))
                      for i, a in runs for j, b in runs if i != j]  # fmt: skip
            cases += [(f"run {j} with the median of runs 1-{j - 1}", b, median_history([a for i, a in runs if i < j]))
                      for j, b in runs if j >= 3]  # fmt: skip
            for title, events, history in cases:
                if show:
                    print(f" {stem} {title}:")
                said = replay(events, eta_type, history)
                if name == "bench" and history is None:  # the check on the replay: it says what the run said
                    printed = [e["value"] for e in events if e["e"] == "said"]
                    replayed = [x.left for x in said if x.label is not None]
                    gap = max((abs(a - b) for a, b in zip(printed, replayed, strict=True)), default=0.0)
                    print(f"  {stem} {title}: replayed under bench's rule, each step's estimate within {gap:.3f} s of "
                          f"what the run said (a trace made by another rule differs)")  # fmt: skip
                worst, rise, judged, off = judge(said, show)
                print(
                    f"  {stem} {title}: {off}/{judged} off, worst ratio {worst:.2f}, largest rise {max(rise, 0):.0f} s"
                )
                tally = totals.setdefault((name, stem, history is None), [0, 0, 1.0])
                tally[0] += off
                tally[1] += judged
                tally[2] = max(tally[2], worst, 1 / worst if worst > 0 else float("inf"))
    print("\nper rule and config: estimates off / judged (worst ratio as max(r, 1/r)); as recorded | cross-history")
    for name in chosen:
        cells = []
        for stem in sorted(traces):
            a, b = totals.get((name, stem, True), [0, 0, 0]), totals.get((name, stem, False), [0, 0, 0])
            cells.append(f"{stem}: {a[0]}/{a[1]} ({a[2]:.2f}) | {b[0]}/{b[1]} ({b[2]:.2f})")
        print(f"  {name:34} " + "   ".join(cells))


def searches(directory: Path) -> None:
    """Where each matmul search of the node reports kept in `directory` (--keep) spent its time: per measurement its
    role and phase, shape and backend, when it began and how long it took from the search's start (start_utc,
    end_utc), its timed budget's use (warm-up and timed seconds, iterations, whether the warm-up settled); per search
    its length from its first measurement's start to its last one's end. Why one search ends early and another at its
    budget is read here, not guessed."""
    import datetime as dt

    from bench.measure.sampling import settled
    from bench.model import intake, samples

    def at(text: str) -> float:
        return dt.datetime.fromisoformat(text).timestamp()

    for path in sorted(directory.glob("*.report.json")):
        report = intake.read_json(path).data
        runs: dict[str, list[dict]] = {}
        for m in report.get("measurements") or []:
            if m.get("workload") == "matmul" and (m.get("details") or {}).get("search"):
                runs.setdefault(str(m["spec"].get("precision")), []).append(m)
        print(f"{path.name}:")
        for precision, ms in runs.items():
            ms.sort(key=lambda m: at(m["start_utc"]))
            t0 = at(ms[0]["start_utc"])
            print(f"  {precision} search: {at(ms[-1]['end_utc']) - t0:.1f} s, {len(ms)} measurements")
            for m in ms:
                search, spec = m["details"]["search"], m["spec"]
                what = search.get("phase") or search.get("role")
                what += " MAMF" if search.get("mamf") else ""
                warmup = [float(x) for x in samples.decode(m["warmup"], "warmup")]
                warm, timed = sum(warmup), float(samples.decode(m["samples"], "samples").sum())
                n = int(m["samples"]["n"])
                took = at(m["end_utc"]) - at(m["start_utc"])
                print(
                    f"    {at(m['start_utc']) - t0:6.2f} +{took:5.2f} s {what:12} {spec['m']}x{spec['n']}x{spec['k']:<6}"
                    f" {m['details'].get('backend', ''):6} warm-up {warm:5.2f} s ({len(warmup)}"
                    f"{', settled' if settled(warmup) else ''}) timed {timed:5.2f} s ({n}) other "
                    f"{took - warm - timed:5.2f} s"
                )


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return f"load average {os.getloadavg()[0]:.2f} (no uptime)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        type=Path,
        action="append",
        default=None,
        help="suite config (repeatable; default: configs/smoke-cpu.toml and configs/node.toml)",
    )
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--keep", type=Path, default=None,
                        help="directory to keep each run's trace (CONFIG-runN.jsonl, for --replay) and stderr log in")  # fmt: skip
    parser.add_argument(
        "--replay",
        type=Path,
        default=None,
        help="run nothing: judge each rule on the traces kept in this directory (--keep)",
    )
    parser.add_argument(
        "--show", action="store_true", help="with --replay: every estimate, not only each run's verdict"
    )
    parser.add_argument("--searches", type=Path, default=None,
                        help="run nothing: print where each matmul search of the reports kept in this directory spent "
                        "its time")  # fmt: skip
    args = parser.parse_args()
    if args.searches is not None:
        searches(args.searches)
        return
    if args.replay is not None:
        replay_all(args.replay, args.show)
        return
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    configs = args.config or [ROOT / "configs" / "smoke-cpu.toml", ROOT / "configs" / "node.toml"]
    print(f"{os.cpu_count()} CPUs; {uptime()}", flush=True)
    verdicts = []
    with tempfile.TemporaryDirectory() as kept:
        traces = args.keep or Path(kept)
        for config in configs:
            measure(config, args.runs, traces, args.keep is not None, verdicts)
        print("\nsummary (goal: 0 estimates off, no rise):")
        for name, n, worst, rise, judged, off in verdicts:
            print(f"  {name} run {n}: {off}/{judged} off, worst ratio {worst:.2f}, largest rise {max(rise, 0):.0f} s")
        print("\nthe same runs replayed (--replay): bench's rule as it ran, the rule before issue 25's fix, and each run "
              "with the other runs' history", flush=True)  # fmt: skip
        replay_all(traces, False, ("bench", "before"))


def measure(config: Path, runs: int, traces: Path, keep_logs: bool, verdicts: list[tuple]) -> None:
    """Run one suite `runs` times into one fresh results directory, keeping each run's trace in `traces`; print each
    estimate and the run's verdict, and add it to `verdicts`."""
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(1, runs + 1):
            trace = traces / f"{config.stem}-run{n}.jsonl"
            trace.unlink(missing_ok=True)
            lines = run_once(config.resolve(), Path(tmp) / "results", trace)
            if keep_logs:
                log = "".join(f"{t:9.3f} {line}\n" for t, line in lines)
                (traces / f"{config.stem}-run{n}.log").write_text(log, encoding="utf-8")
                reports = sorted((Path(tmp) / "results").glob("**/report.json"), key=lambda r: r.stat().st_mtime)
                if reports:  # the run's own node report: what each search measured, and when (--searches)
                    shutil.copyfile(reports[-1], traces / f"{config.stem}-run{n}.report.json")
            total = next((t for t, line in lines if line.startswith("[done]")), float("nan"))
            how = "no history: budgets and this run's rates" if n == 1 else "history: the run before"
            print(f"{config.name} run {n} ({how}): {total:.1f} s", flush=True)
            events = load(trace)
            worst, rise, judged, off = judge(said_in(lines, {p["label"]: p["estimate"] for p in events[0]["steps"]}))
            verdicts.append((config.name, n, worst, rise, judged, off))
            print(f"{config.name} run {n}: {off} of {judged} estimates off the goal, worst ratio {worst:.2f}; "
                  f"largest rise beyond the time elapsed {max(rise, 0):.0f} s; {uptime()}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
