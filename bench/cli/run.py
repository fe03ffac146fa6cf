"""`bench run`: the whole node suite from a TOML config, into one signed report plus the files people and tools read."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import torch
import torch.distributed as dist
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import launch, plans, runner, suite
from bench.cli import doctor, progress
from bench.cli.keys import key_option, signing_key
from bench.cli.output import fail, stderr, stdout
from bench.cli.params import DeviceParam, results_dir_option
from bench.cli.ranks import place, rank_job
from bench.hardware import devices
from bench.hardware.inventory import collect
from bench.report import export, gates, history, html, render
from bench.report.model import Measurement, NodeReport, ReportError
from bench.report.store import ReportWriter, dumps, load_report, write_atomic
from bench.workloads import comm as cm
from bench.workloads import train as tr

OUTPUT_FILES = {"html": "report.html", "md": "report.md", "csv": "measurements.csv", "junit": "junit.xml",
                "prometheus": "bench.prom"}  # fmt: skip


class Feedback:
    """Progress on stderr: one bar over the suite's steps, and one over the steps of the training run in progress."""

    def __init__(self, quiet: bool) -> None:
        #: a terminal gets live bars; a log (Slurm, CI) gets one line per step instead (see progress.StepLines)
        self.lines = not quiet and not progress.interactive()
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=stderr(), disable=quiet or self.lines,
                                 transient=True)  # fmt: skip
        self.detail: Any = None

    def steps_of(self, label: str) -> Callable[[int, int], None]:
        """progress(done, total) for one training run: a second bar while it runs, gone when it ends."""

        def update(done: int, total: int) -> None:
            if self.detail is None:
                self.detail = self.progress.add_task(f"  {label}: steps", total=total)
            self.progress.update(self.detail, completed=done, total=total)
            if done >= total:
                self.progress.remove_task(self.detail)
                self.detail = None

        return update


def write_outputs(report: NodeReport, directory: Path, formats: list[str], checks: list[gates.Gate],
                  suite_name: str) -> dict[str, str]:  # fmt: skip
    """Every configured rendering of the report next to it; a failing renderer is named, never fatal."""
    written = {}
    for fmt in formats:
        path = directory / OUTPUT_FILES[fmt]
        try:
            if fmt == "html":
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
            click.echo(f"warning: could not write {path}: {type(exc).__name__}: {exc}", err=True)
    return written


def evaluate(report: NodeReport, config: dict[str, Any], baseline: NodeReport | None) -> list[gates.Gate]:
    g = config["gates"]
    checks = gates.correctness(report) + gates.floors(report, g["fail_below"])
    if baseline is not None:
        checks += gates.regressions(baseline, report, g["max_regression"], g["alpha"])
    return checks


def _on_sigterm(signum: int, frame: Any) -> None:
    raise runner.Terminated()


def _config(config_path: Path | None, sets: tuple[str, ...], device_lists: tuple[list[str], ...],
            workloads: tuple[str, ...], fail_below: tuple[str, ...], baseline: Path | None,
            max_regression: str | None) -> dict[str, Any]:  # fmt: skip
    """The validated config with the command line's overrides, or exit 2 naming the file/flag and key."""
    try:
        overrides = [suite.parse_override(t) for t in sets]
        if device_lists:
            overrides.append(("suite", "devices", list(dict.fromkeys(d for ds in device_lists for d in ds))))
        if workloads:
            overrides.append(("suite", "workloads", list(workloads)))
        loaded = suite.load(config_path)
        if config_path and loaded["gates"]["baseline"] and not Path(loaded["gates"]["baseline"]).is_absolute():
            # a path in a config file is relative to that file; one given on the command line, to the current directory
            loaded["gates"]["baseline"] = str(config_path.parent / loaded["gates"]["baseline"])
        if fail_below:  # added to (or replacing) the config's floors, precision by precision
            from bench.report.aggregate import ALIASES  # bf16=500 as well as bfloat16=500

            parsed = [gates.parse_floor(t) for t in fail_below]
            floors = {**loaded["gates"]["fail_below"], **{ALIASES.get(k.lower(), k): v for k, v in parsed}}
            overrides.append(("gates", "fail_below", floors))
        if baseline:
            overrides.append(("gates", "baseline", str(baseline)))
        if max_regression is not None:
            overrides.append(("gates", "max_regression", gates.parse_fraction(max_regression)))
        config = suite.apply_overrides(loaded, overrides)
        for name in config["suite"]["devices"]:
            devices.resolve(name)
    except (suite.ConfigError, ValueError) as exc:
        fail(str(exc), 2)
    return config


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Suite TOML (configs/smoke-cpu.toml, node.toml, audit.toml). Default: every built-in default.")
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override one config value, e.g. --set matmul.budget_s=5 (repeatable; the value is TOML).")
@click.option("--device", "device_lists", type=DeviceParam(), multiple=True, help="Overrides suite.devices (repeatable).")
@click.option("--workload", "workloads", type=click.Choice(suite.WORKLOADS), multiple=True,
              help="Overrides suite.workloads: run only these (repeatable).")
@click.option("--fail-below", multiple=True, metavar="PRECISION=TFLOPS",
              help="Exit 1 when a device's best valid matmul at PRECISION is below TFLOPS (repeatable).")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Node report to gate against: a significant slow-down beyond --max-regression exits 1.")
@click.option("--max-regression", default=None, metavar="PERCENT", help="Tolerated slow-down vs --baseline (default 5%).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the JUnit XML here (it is always in the run directory when junit is an output).")
@results_dir_option("Runs go to RESULTS_DIR/<run-id>/, and are indexed in RESULTS_DIR/history.sqlite.")
@key_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary (run, status, gates, outputs) on stdout.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@click.option("--skip-doctor", is_flag=True,
              help="Do not run the pre-flight checks (bench doctor) first; the report then records none.")
def run(config_path: Path | None, sets: tuple[str, ...], device_lists: tuple[list[str], ...], workloads: tuple[str, ...],
        fail_below: tuple[str, ...], baseline: Path | None, max_regression: str | None, junit_path: Path | None,
        results_dir: Path, key_path: Path | None, as_json: bool, quiet: bool, skip_doctor: bool) -> None:  # fmt: skip
    """Run a suite (matmul search, memory bandwidth, training, and collectives when launched with several ranks) into
    RESULTS_DIR/<run-id>/: report.json (signed, saved after every measurement) plus report.html, report.md,
    measurements.csv, junit.xml and bench.prom, and index it in RESULTS_DIR/history.sqlite.

    A workload that fails is recorded with its error and the suite goes on. Exit 0 when the run completed and every
    check and gate passed; 1 when it is partial (SIGTERM, crash), a result was wrong or failed, or a gate failed; 2 for a
    bad config or flag (nothing runs); 130 on Ctrl-C (the partial report is kept).
    """
    config = _config(config_path, sets, device_lists, workloads, fail_below, baseline, max_regression)
    base = None
    if config["gates"]["baseline"]:
        try:
            base = load_report(config["gates"]["baseline"])
        except ReportError as exc:
            fail(f"--baseline: {exc}", 2)
    where, _, kind = place(None)
    signal.signal(signal.SIGTERM, _on_sigterm)
    leader = where.local_rank == 0
    key = signing_key(key_path) if leader else None
    inv = collect()
    device_ids = [d for name in config["suite"]["devices"] for d in devices.resolve(name)]
    if where.distributed:  # each rank measures its own device; the CPU once per node
        device_ids = [devices.local_device(where.local_rank, where.local_world_size)] if kind == "cuda" else (
            ["cpu"] if leader else [])  # fmt: skip
    facts = [devices.facts(d, inv["host"]) for d in dict.fromkeys(device_ids)]
    run_config = {"suite": config, "config_file": str(config_path) if config_path else None,
                  "world_size": where.world_size, "launcher": where.source}  # fmt: skip
    if leader and not skip_doctor:  # before anything of ours runs: what else is the machine doing?
        checks = doctor.run_checks()
        run_config["preflight"] = [c.to_dict() for c in checks]
        run_config["preflight_verdict"] = doctor.verdict(checks)
        if not quiet:
            for c in checks:
                if c.status in ("warn", "fail"):
                    click.echo(f"pre-flight {doctor.line(c)}", err=True)
            if doctor.verdict(checks) != "pass":
                click.echo("pre-flight: the machine is not idle or not healthy; the run goes on and its report says so "
                           "(config.preflight)", err=True)  # fmt: skip
    if where.distributed:  # joined before any report exists: a job that never forms leaves nothing half-written
        try:
            launch.join(where, "nccl" if kind == "cuda" else "gloo", config["comm"]["timeout_s"],
                        devices.local_device(where.local_rank, where.local_world_size))  # fmt: skip
        except launch.LaunchError as exc:
            fail(str(exc))
    writer = runner.start(results_dir, run_config, inv, key) if leader else None
    stopped: BaseException | None = None
    if where.distributed:
        _distributed(config, where, kind, facts, inv, writer, quiet, results_dir)
    else:
        try:
            _single(config, facts, inv, writer, quiet)
        except (KeyboardInterrupt, runner.Terminated) as exc:  # the report is already closed as interrupted
            stopped = exc
    if writer is None:
        return
    report = writer.report
    checks = evaluate(report, config, base)  # a partial run fails the 'complete' gate
    outputs = write_outputs(report, writer.path.parent, config["outputs"]["formats"], checks, config["suite"]["name"])
    if junit_path:
        write_atomic(junit_path, gates.junit(report, checks, config["suite"]["name"]))
        outputs["junit_copy"] = str(junit_path)
    history.index(results_dir / history.DB_NAME, report, writer.path)
    if stopped is not None:
        what = "interrupted" if isinstance(stopped, KeyboardInterrupt) else "terminated (SIGTERM)"
        fail(f"{what}; {len(report.measurements)} finished measurements saved in {writer.path} (partial)",
             130 if isinstance(stopped, KeyboardInterrupt) else 1)  # fmt: skip
    _finish(report, writer, checks, outputs, as_json)


def _single(config: dict[str, Any], facts: list[devices.DeviceFacts], inv: dict[str, Any], writer: ReportWriter | None,
            quiet: bool) -> None:  # fmt: skip
    assert writer is not None
    if "comm" in config["suite"]["workloads"] and not quiet:
        click.echo("comm: collectives need several ranks (torchrun, srun); skipped in a single process", err=True)
    if any(f.kind == "cpu" for f in facts):
        torch.set_num_threads(devices.physical_cores())
    readers, closers = plans.telemetry_readers(facts)
    feedback = Feedback(quiet)
    steps = plans.suite_steps(config, facts, inv["host"], readers, feedback.steps_of)
    estimates = [progress.estimate_s(s, config) for s in steps]
    if not quiet:
        click.echo(progress.plan_line(steps, estimates, config["suite"]["concurrent_devices"]), err=True)
    try:
        _execute(writer, steps, feedback, config["suite"]["concurrent_devices"], estimates)
        tr.annotate_mamf_ratio(writer.report.measurements)
        writer.save()
    finally:
        for close in closers:
            close()


def _execute(writer: ReportWriter, steps: list[runner.Step], feedback: Feedback, concurrent: bool = True,
             estimates: list[float] | None = None) -> None:  # fmt: skip
    """Run the steps with progress on stderr (a live bar on a terminal, one line per step in a log). Ctrl-C and
    SIGTERM close the report as interrupted and propagate."""
    bars = feedback.progress
    estimates = estimates or [progress.estimate_s(s) for s in steps]
    lines = progress.StepLines(steps, estimates, concurrent) if feedback.lines else None
    task = bars.add_task("suite", total=len(steps))
    state = {"label": "", "done": -1}

    def show() -> None:
        bars.update(task, description=f"{state['label']} ({len(writer.report.measurements)} measured)",
                    completed=state["done"])  # fmt: skip

    def on_step(step: runner.Step) -> None:
        state["label"], state["done"] = step.label, state["done"] + 1
        if lines:
            lines.step(step)
        show()

    def on_measurement(m: Measurement) -> None:
        progress.flag_far_from_best(m, writer.save)
        show()

    with bars:
        runner.execute(writer, steps, on_step, on_measurement, keep_going=True, concurrent=concurrent)
    if lines:
        lines.finished(len(writer.report.measurements))


def _distributed(config: dict[str, Any], where: launch.Placement, kind: str, facts: list[devices.DeviceFacts],
                 inv: dict[str, Any], writer: ReportWriter | None, quiet: bool, results_dir: Path) -> None:  # fmt: skip
    """Several ranks (joined): each measures its own device (the CPU once per node), node leaders collect their node's
    measurements, then all ranks run the collective workloads (data-parallel training, comm) into rank 0's report.
    A rank that is not its node's leader also appends each finished measurement to a spool file, so that its leader
    can still sign what it finished if it dies before the gather."""
    cc, tc = config["comm"], config["train"]
    fingerprint = inv["host"].get("fingerprint")
    spool = runner.Spool(results_dir, launch.job_id(where), fingerprint or "host", where.rank)
    if kind == "cpu":
        torch.set_num_threads(max(1, devices.physical_cores() // where.local_world_size))
    local = {**config, "suite": {**config["suite"], "workloads": [w for w in config["suite"]["workloads"]
                                                                  if w in ("matmul", "membw")]}}  # fmt: skip
    readers, closers = plans.telemetry_readers(facts)
    mine: list[Measurement] = []
    with rank_job(where, writer):
        for step in plans.suite_steps(local, facts, inv["host"], readers):
            for m in runner.measurements_of(step, keep_going=True):  # a failing step is recorded; the suite goes on
                if writer:
                    writer.add(m)
                else:
                    spool.add(m)
                    mine.append(m)
        for close in closers:
            close()
        gathered: list[Any] = [None] * where.world_size
        own = plans.local_figures(writer.report.measurements if writer else mine) if facts else {}
        try:
            dist.all_gather_object(gathered, {"rank": where.rank, "host": fingerprint, "hostname": inv["host"].get("hostname"),
                                              "figures": own, "measurements": [m.to_dict() for m in mine]},
                                   group=launch.control())  # fmt: skip
        except Exception:
            if writer:  # a peer died: what this node's other ranks finished is in their spools
                for m in spool.recover():
                    writer.add(m)
            raise
        spool.remove()
        if writer:
            for g in sorted(gathered, key=lambda g: g["rank"]):
                if g["host"] == fingerprint and g["rank"] != where.rank:
                    for d in g["measurements"]:
                        writer.add(Measurement.from_dict(d))
        device = facts[0] if facts else devices.facts(devices.local_device(where.local_rank, where.local_world_size),
                                                      inv["host"])  # fmt: skip
        job_writer = writer if where.rank == 0 else None
        # the job's measurements name the ranks whose own device fell behind: synchronous work runs at their pace
        slow = plans.stragglers(gathered, config["suite"]["straggler_fraction"]) if job_writer else []
        feedback = Feedback(quiet or where.rank != 0)
        with feedback.progress:
            if "train" in config["suite"]["workloads"]:
                for spec in plans.train_specs(tc, kind):
                    label = f"train {spec.model} {spec.preset} x{where.world_size} ranks"
                    peak = plans.train_peak(device, inv["host"], spec.precision)
                    for m in plans.train_measurements(spec, device, peak, where, feedback.steps_of(label), fingerprint):
                        if writer:  # each node leader: its node's ranks; rank 0 also the baseline and the job's total
                            if m.details.get("role") == "data-parallel total":
                                m.details["stragglers"] = slow
                            writer.add(m)
            if "comm" in config["suite"]["workloads"]:
                sizes = cm.message_sizes(cc["min_bytes"], cc["max_bytes"] or (2**30 if kind == "cuda" else 64 * 2**20),
                                         cc["factor"])  # fmt: skip
                sweep = feedback.progress.add_task(f"comm x{where.world_size} ranks", total=len(cc["ops"]) * len(sizes))
                for m in plans.comm_measurements(where, cc["ops"], sizes, cc["iterations"], cc["warmup_iterations"], device.id, device,
                                                 inv["host"].get("hostname")):  # fmt: skip
                    feedback.progress.advance(sweep)
                    if job_writer and m:
                        m.details["stragglers"] = slow
                        job_writer.add(m)
        if writer:
            tr.annotate_mamf_ratio(writer.report.measurements)
            writer.finish()


def _finish(report: NodeReport, writer: ReportWriter, checks: list[gates.Gate], outputs: dict[str, str], as_json: bool) -> None:
    failed = [g for g in checks if not g.passed]
    status = "partial" if report.interrupted or not report.end_utc else ("failed" if failed else "complete")
    if as_json:
        click.echo(dumps({"run_id": report.run_id, "report": str(writer.path), "status": status,
                          "gates": [g.to_dict() for g in checks], "outputs": outputs}), nl=False)  # fmt: skip
    else:
        out = stdout()
        for table in render.workload_tables(report.measurements):
            out.print(table)
        for line in render.warning_lines(report.measurements):
            out.print(line, highlight=False)
        for g in checks:
            out.print(f"{'PASS' if g.passed else 'FAIL'} {g.name}: {g.message}", highlight=False)
        out.print(f"report: {writer.path}")
        for fmt, path in outputs.items():
            out.print(f"{fmt}: {path}", highlight=False)
    if failed:
        fail(f"run {status}: " + "; ".join(g.message for g in failed))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
