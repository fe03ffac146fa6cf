"""A node suite from a validated config, in one process or across the ranks of a job, into a signed report and the
files people and tools read next to it. `bench run` parses its flags and calls these; progress goes through a
Feedback (the command line's bar or log lines, or nothing).

One process: every step of the plan (bench.plans.suite_steps), the GPUs' lanes at once, each measurement saved as it
arrives. Several ranks (already joined): each measures its own device (the CPU once per node), node leaders collect
their node's measurements at a gather, then all ranks run the collective workloads (data-parallel training, comm) into
rank 0's report. A rank that is not its node's leader spools each finished measurement to disk, so that its leader can
still sign what it finished if it dies before the gather."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist

from bench import launch, plans, preflight, runner
from bench.hardware import devices
from bench.measure import telemetry
from bench.model.reports import Measurement, NodeReport, utc_now
from bench.planning import comm as comm_plan
from bench.planning import matmul as matmul_plan
from bench.planning import train as train_plan
from bench.report import export, gates, history
from bench.report.store import ReportWriter, write_atomic
from bench.workloads import comm as cm
from bench.workloads import train as tr

#: the file each output format is written to, next to report.json
OUTPUT_FILES = {"html": "report.html", "md": "report.md", "csv": "measurements.csv", "junit": "junit.xml",
                "prometheus": "bench.prom"}  # fmt: skip


#: A measurement whose median iteration is this many times slower than its best: the device was shared or throttled
#: for much of the run (a loaded CPU gave median 2.8 GFLOPS against a best of 188.9), so the median is not its speed.
FAR_FROM_BEST = 1.5


class Feedback(Protocol):
    """What a suite tells whoever watches it (bench.cli.progress.Progress on the command line)."""

    def plan(self, steps: Sequence[runner.Step]) -> None: ...
    def step(self, step: runner.Step) -> None: ...
    def measured(self, m: Measurement) -> None: ...
    def steps_of(self, label: str) -> Callable[[int, int], None]: ...
    def sweep(self, label: str, total: int) -> Callable[[], None]: ...
    def say(self, text: str) -> None: ...
    def finished(self) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> Any: ...


def far_from_best(m: Measurement) -> dict[str, str] | None:
    """The warning for a measured entry whose median is FAR_FROM_BEST x its best iteration, else None."""
    s = m.summary or {}
    median, best = s.get("median_s"), s.get("min_s")
    if m.status != "ok" or not median or not best or median < FAR_FROM_BEST * best:
        return None
    if any(w.get("code") == "median-far-from-best" for w in m.warnings):
        return None
    return {"code": "median-far-from-best",
            "message": f"median iteration {median / best:.1f}x slower than the best ({median:.3g} s vs {best:.3g} s)",
            "hint": "something else used the device for much of the run (bench doctor lists busy processes, "
                    "throttling and other GPU processes); rerun on an idle node"}  # fmt: skip


def flag_far_from_best(m: Measurement, save: Callable[[], None]) -> None:
    """Add the far-from-best warning to `m` (already saved) and save the report again, signed with it."""
    w = far_from_best(m)
    if w is not None:
        m.warnings.append(w)
        save()


def rank_devices(config: dict[str, Any], where: launch.Placement, kind: str,
                 host: dict[str, Any]) -> list[devices.DeviceFacts]:  # fmt: skip
    """The devices this process measures: the config's (suite.devices) in one process; across ranks, each rank its own
    GPU, and the CPU once per node (by its local rank 0)."""
    device_ids = [d for name in config["suite"]["devices"] for d in devices.resolve(name)]
    if where.distributed:
        device_ids = [devices.local_device(where.local_rank, where.local_world_size)] if kind == "cuda" else (
            ["cpu"] if where.local_rank == 0 else [])  # fmt: skip
    return [devices.facts(d, host) for d in dict.fromkeys(device_ids)]


def preflight_into(run_config: dict[str, Any]) -> list[preflight.Check]:
    """Run the pre-flight checks (bench doctor's) and record them in the run's config (preflight, preflight_verdict),
    so a figure taken on a busy or unhealthy machine says so."""
    checks = preflight.run_checks()
    run_config["preflight"] = [c.to_dict() for c in checks]
    run_config["preflight_verdict"] = preflight.verdict(checks)
    return checks


def evaluate(report: NodeReport, config: dict[str, Any], baseline: NodeReport | None) -> list[gates.Gate]:
    """The config's gates over the report: correctness (a partial run fails 'complete'), floors, and regressions
    against the baseline when there is one."""
    g = config["gates"]
    checks = gates.correctness(report) + gates.floors(report, g["fail_below"])
    if baseline is not None:
        checks += gates.regressions(baseline, report, g["max_regression"], g["alpha"])
    return checks


def write_outputs(report: NodeReport, directory: Path, formats: list[str], checks: list[gates.Gate], suite_name: str,
                  warn: Callable[[str], None]) -> dict[str, str]:  # fmt: skip
    """Every configured rendering of the report next to it; a failing renderer is named (through `warn`), never
    fatal. Returns format -> path written."""
    written = {}
    for fmt in formats:
        path = directory / OUTPUT_FILES[fmt]
        try:
            if fmt == "html":
                from bench.report import html  # here: matplotlib costs ~0.5 s of a run that writes no page

                text = html.node_page(report, checks)
            elif fmt == "md":
                text = export.markdown(report, checks)
            elif fmt == "csv":
                text = export.to_csv(export.measurements_frame(report))
            elif fmt == "junit":
                text = gates.junit(report, checks, suite_name)
            else:
                text = export.prometheus(report)
            export.write_public(path, text)  # 0644: node_exporter and the web server read these as other users
            written[fmt] = str(path)
        except Exception as exc:  # noqa: BLE001 - a rendering bug must not cost the measurements or other files
            warn(f"warning: could not write {path}: {type(exc).__name__}: {exc}")
    return written


def conclude(writer: ReportWriter, config: dict[str, Any], baseline: NodeReport | None, results_dir: Path,
             junit_path: Path | None, warn: Callable[[str], None]) -> tuple[list[gates.Gate], dict[str, str]]:  # fmt: skip
    """After the suite (complete or not): its gates, its output files (and the extra JUnit copy), and its entry in
    RESULTS_DIR/history.sqlite. Returns (gates, format -> path)."""
    report = writer.report
    checks = evaluate(report, config, baseline)
    outputs = write_outputs(report, writer.path.parent, config["outputs"]["formats"], checks, config["suite"]["name"],
                            warn)  # fmt: skip
    if junit_path:
        write_atomic(junit_path, gates.junit(report, checks, config["suite"]["name"]))
        outputs["junit_copy"] = str(junit_path)
    history.index(results_dir / history.DB_NAME, report, writer.path)
    return checks, outputs


def single_suite(config: dict[str, Any], facts: list[devices.DeviceFacts], inv: dict[str, Any], writer: ReportWriter,
                 feedback: Feedback, worker_init: runner.WorkerInit | None = None) -> None:  # fmt: skip
    """Every step of the suite from this process: the GPUs' lanes at once, one worker process each, unless the config
    says otherwise (each worker rebuilds its lane's steps through plans.lane_plan); each measurement saved here as it
    arrives. Ctrl-C and SIGTERM close the report as interrupted and propagate. `worker_init`: runner.execute's (tests
    install their CUDA fake in the workers with it)."""
    if "comm" in config["suite"]["workloads"]:
        feedback.say("comm: collectives need several ranks (torchrun, srun); skipped in a single process")
    if any(f.kind == "cpu" for f in facts):
        torch.set_num_threads(devices.physical_cores())
    readers, closers = telemetry.readers(facts)
    steps = plans.suite_steps(config, facts, inv["host"], readers, feedback.steps_of)
    feedback.plan(steps)

    def measured(m: Measurement) -> None:
        flag_far_from_best(m, writer.save)
        feedback.measured(m)

    try:
        with feedback:
            runner.execute(writer, steps, feedback.step, measured, keep_going=True,
                           concurrent=config["suite"]["concurrent_devices"],
                           plan=functools.partial(plans.lane_plan, functools.partial(plans.suite_build, config,
                                                                                     inv["host"]), facts),
                           worker_init=worker_init)  # fmt: skip
        feedback.finished()
        tr.annotate_mamf_ratio(writer.report.measurements)
        writer.save()
    finally:
        for close in closers:
            close()


def job_name(where: launch.Placement) -> str:
    """This job's name for its spools: launch.job_id and a token rank 0 draws and sends every rank (over the
    control group). A job id alone repeats across jobs: torchrun's default --rdzv-id is 'none', and a master address
    and port are reused. Under a repeated name a leader whose peer died would recover an earlier job's leftover
    spools (or a concurrent job's, on a shared results folder) into its own signed report."""
    token = [secrets.token_hex(6) if where.rank == 0 else None]
    dist.broadcast_object_list(token, src=0, group=launch.control())
    return f"{launch.job_id(where)}-{token[0]}"


def distributed_suite(config: dict[str, Any], where: launch.Placement, kind: str, facts: list[devices.DeviceFacts],
                      inv: dict[str, Any], writer: ReportWriter | None, results_dir: Path,
                      feedback: Feedback) -> None:  # fmt: skip
    """The suite across the ranks of a joined job (see the module's docstring). `writer` is this node leader's report
    (None on other ranks); `feedback` is shown by rank 0 only. Errors propagate: the caller ends the rank."""
    fingerprint = inv["host"].get("fingerprint")
    spool = runner.Spool(results_dir, job_name(where), node_key(fingerprint, inv["host"].get("hostname")), where.rank)
    if kind == "cpu":
        share_cpu(where)
    local = plans.per_rank(config)  # the rest run across the ranks below, after the gather
    readers, closers = telemetry.readers(facts)
    mine: list[Measurement] = []
    local_steps = plans.suite_steps(local, facts, inv["host"], readers)
    # the job's phases as steps too, so rank 0 prints one plan and a line per step (they run below, not through these)
    job, missing = plans.job_phases(config, where, kind, facts)
    feedback.plan([*local_steps, *(phase.step for phase in job)])
    for name in missing:
        feedback.say(f"{name}: runs across ranks, but bench run has no job phase for it; skipped")
    with feedback:
        for step in local_steps:
            feedback.step(step)
            for m in runner.measurements_of(step, keep_going=True):  # a failing step is recorded; the suite goes on
                if writer:
                    writer.add(m)
                else:
                    spool.add(m)
                    mine.append(m)
        for close in closers:
            close()
        gathered = gather(where, writer, spool, mine, facts, fingerprint, inv["host"].get("hostname"))
        device = facts[0] if facts else devices.facts(devices.local_device(where.local_rank, where.local_world_size),
                                                      inv["host"])  # fmt: skip
        job_writer = writer if where.rank == 0 else None
        # the job's measurements name the ranks whose own device fell behind: synchronous work runs at their pace
        slow = matmul_plan.stragglers(gathered, config["suite"]["straggler_fraction"]) if job_writer else []
        ctx = runner.JobContext(where, kind, device, inv["host"], fingerprint, slow, feedback.steps_of, feedback.sweep)
        for phase in job:
            feedback.step(phase.step)
            recorder = writer if phase.leaders else job_writer
            for m in phase.run(ctx):
                if recorder and m:
                    recorder.add(m)
    feedback.finished()
    if writer:
        tr.annotate_mamf_ratio(writer.report.measurements)
        writer.finish()


def share_cpu(where: launch.Placement) -> None:
    """torch's CPU threads for one rank: the node's physical cores shared among its ranks (at least one each)."""
    torch.set_num_threads(max(1, devices.physical_cores() // where.local_world_size))


def train_job(specs: Sequence[Any], device: devices.DeviceFacts, inv: dict[str, Any], where: launch.Placement,
              writer: ReportWriter | None, say: Callable[[str], None]) -> None:  # fmt: skip
    """`bench train`: each spec on this rank's device (data-parallel across the job's ranks, rank 0 also alone first);
    node leaders (`writer`) record their node's ranks, and their report is closed with the MAMF ratios."""
    for spec in specs:
        peak = train_plan.peak(device, inv["host"], spec.precision)
        say(f"train {spec.model} {spec.preset} {spec.precision} on {device.id} x{where.world_size}")
        for m in train_plan.measurements(spec, device, peak, where, host=inv["host"].get("fingerprint")):
            if writer:
                writer.add(m)
    if writer:
        tr.annotate_mamf_ratio(writer.report.measurements)
        writer.finish()


def comm_job(where: launch.Placement, ops: list[str], sizes: list[int], iterations: int, warmup: int,
             device: devices.DeviceFacts, inv: dict[str, Any], writer: ReportWriter | None,
             on_result: Callable[[Measurement], None], batches: int = cm.BATCHES) -> None:  # fmt: skip
    """`bench comm`: every collective over every size across the job's ranks; rank 0 (`writer`) records each result
    (timed as the slowest rank) and closes its report."""
    for m in comm_plan.measurements(
        where, ops, sizes, iterations, warmup, device.id, device, inv["host"].get("hostname"), batches
    ):
        if writer and m:
            writer.add(m)
            on_result(m)
    if writer:
        writer.finish()


def record_job_failure(writer: ReportWriter, where: launch.Placement, exc: BaseException) -> None:
    """Close this node leader's report as interrupted, with an error record saying why the job ended here (a lost
    peer, a timeout): the measurements already saved stay, and the report says it is partial and why."""
    host = writer.report.inventory.get("host") or {}
    node = {"id": "cpu", "kind": "cpu", "name": host.get("cpu_model"), "uuid": host.get("fingerprint")}
    step = runner.Step(f"job of {where.world_size} ranks", lambda: None, "job", node)
    writer.add(runner.failure(step, exc, utc_now()))
    writer.finish(interrupted=True)


def gather(where: launch.Placement, writer: ReportWriter | None, spool: runner.Spool, mine: list[Measurement],
           facts: list[devices.DeviceFacts], fingerprint: str | None, hostname: str | None) -> list[dict[str, Any]]:  # fmt: skip
    """Every rank's figures, gathered to all (for the straggler check); each node leader adds its node's other ranks'
    measurements to its report. When a peer died, a leader first recovers what its node's ranks spooled, then the
    error propagates."""
    gathered: list[Any] = [None] * where.world_size
    own = matmul_plan.local_figures(writer.report.measurements if writer else mine) if facts else {}
    try:
        dist.all_gather_object(gathered, {"rank": where.rank, "host": fingerprint, "hostname": hostname,
                                          "figures": own, "measurements": [m.to_dict() for m in mine]},
                               group=launch.control())  # fmt: skip
    except Exception:
        if writer:  # a peer died: what this node's other ranks finished is in their spools
            for m in spool.recover():
                writer.add(m)
        raise
    spool.remove()
    if writer:
        for g in node_peers(gathered, where.rank, fingerprint, hostname):
            for d in g["measurements"]:
                writer.add(Measurement.from_dict(d))
    return gathered


def node_key(fingerprint: str | None, hostname: str | None) -> str:
    """What names this node among a job's ranks (its spools): its fingerprint and its host name together. The
    fingerprint alone repeats across the nodes of a cluster installed from one image that kept one /etc/machine-id
    (same CPU, same memory): their leaders would take each other's ranks as their own."""
    return hashlib.sha256(f"{fingerprint}|{hostname}".encode()).hexdigest()


def node_peers(gathered: list[dict[str, Any]], rank: int, fingerprint: str | None,
               hostname: str | None) -> list[dict[str, Any]]:  # fmt: skip
    """The gathered entries of this node's other ranks, in rank order: same fingerprint and same host name."""
    return [g for g in sorted(gathered, key=lambda g: g["rank"])
            if g["host"] == fingerprint and g.get("hostname") == hostname and g["rank"] != rank]  # fmt: skip
