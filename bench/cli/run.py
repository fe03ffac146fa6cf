"""`bench run`: the whole node suite from a TOML config, into one signed report plus the files people and tools read."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

from bench.cli import choices
from bench.cli.options import devices_option, json_option, key_option, quiet_option, results_dir_option, signing_key
from bench.cli.output import fail, stdout
from bench.cli.progress import Progress
from bench.cli.ranks import place, rank_job
from bench.cli.repeat import KeepsArgs, repeated, repeated_gate, run_all


def _on_sigterm(signum: int, frame: Any) -> None:
    from bench import runner

    raise runner.Terminated()


def _config(config_path: Path | None, sets: tuple[str, ...], device_lists: tuple[list[str], ...],
            workloads: tuple[str, ...], fail_below: tuple[str, ...], baseline: tuple[Path, ...],
            max_regression: str | None) -> dict[str, Any]:  # fmt: skip
    """The validated config with the command line's overrides, or exit 2 naming the file/flag and key."""
    from bench import suite
    from bench.hardware import devices
    from bench.report import gates

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
            from bench.report.claims import ALIASES  # bf16=500 as well as bfloat16=500

            parsed = [gates.parse_floor(t) for t in fail_below]
            floors = {**loaded["gates"]["fail_below"], **{ALIASES.get(k.lower(), k): v for k, v in parsed}}
            overrides.append(("gates", "fail_below", floors))
        if len(baseline) == 1:
            overrides.append(("gates", "baseline", str(baseline[0])))
        if max_regression is not None:
            overrides.append(("gates", "max_regression", gates.parse_fraction(max_regression)))
        config = suite.apply_overrides(loaded, overrides)
        if len(baseline) > 1:  # several runs: recorded as a list (the config key itself names one file or folder)
            config["gates"]["baseline"] = [str(p) for p in baseline]
        for name in config["suite"]["devices"]:
            devices.resolve(name)
    except (suite.ConfigError, ValueError) as exc:
        fail(str(exc), 2)
    return config


def baseline_files(paths: list[str]) -> list[Path]:
    """The reports named by --baseline: files as given; a folder gives its runs' <run-id>/report.json when it is a
    RESULTS_DIR (whose other *.json, like step-seconds.json, are not reports), else its *.json, sorted. ValueError
    for a path that does not exist or a folder with no report."""
    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted(path.glob("*/report.json")) or sorted(path.glob("*.json"))
            if not found:
                raise ValueError(f"{path}: a folder with no *.json or */report.json report in it")
            files += found
        elif path.exists():
            files.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    return files


@click.command(cls=KeepsArgs)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Suite TOML (configs/smoke-cpu.toml, node.toml, audit.toml). Default: every built-in default.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override one config value, e.g. --set matmul.budget_s=5 (repeatable; the value is TOML).",
)
@devices_option("Overrides suite.devices: cpu, cuda:N or all (repeatable).")
@click.option(
    "--workload",
    "workloads",
    type=click.Choice(choices.WORKLOADS),
    multiple=True,
    help="Overrides suite.workloads: run only these (repeatable).",
)
@click.option(
    "--fail-below",
    multiple=True,
    metavar="PRECISION=TFLOPS",
    help="Exit 1 when a device's best valid matmul at PRECISION is below TFLOPS (repeatable).",
)
@click.option(
    "--baseline",
    type=click.Path(path_type=Path),
    multiple=True,
    help="Node report(s) to gate against, or a folder of them (each run's report.json): repeat it for several runs. "
    "A metric below the runs' mean by more than --max-regression and outside their spread exits 1; with one run, the "
    "threshold alone decides.",
)
@click.option(
    "--max-regression",
    default=None,
    metavar="PERCENT",
    help="Tolerated slow-down vs --baseline, e.g. 5% or 0.05 (default: gates.max_regression, 5%).",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=1,
    metavar="N",
    help="Run the suite N times back to back, each in a fresh process, into RESULTS_DIR, then print each gated "
    "figure's spread across the runs and the --max-regression it supports: a baseline of N runs in one command "
    "(--baseline RESULTS_DIR). With --baseline the N runs are one candidate: the median of their figures is gated "
    "(pyperf's worker processes), not each run alone. Exit 1 when any run failed or the gate failed.",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the JUnit XML here (it is always in the run directory when junit is an output).",
)
@results_dir_option("Runs go to RESULTS_DIR/<run-id>/, and are indexed in RESULTS_DIR/history.sqlite.")
@key_option
@json_option("a summary (run, status, gates, outputs)")
@quiet_option
@click.option(
    "--skip-doctor",
    is_flag=True,
    help="Do not run the pre-flight checks (bench doctor) first; the report then records none.",
)
def run(config_path: Path | None, sets: tuple[str, ...], device_lists: tuple[list[str], ...], workloads: tuple[str, ...],
        fail_below: tuple[str, ...], baseline: tuple[Path, ...], max_regression: str | None, repeat: int,
        junit_path: Path | None, results_dir: Path, key_path: Path | None, as_json: bool, quiet: bool, skip_doctor: bool) -> None:  # fmt: skip
    """Run a suite (matmul search, memory bandwidth, training, and collectives when launched with several ranks) into
    RESULTS_DIR/<run-id>/: report.json (signed, saved after every measurement) plus report.html, report.md,
    measurements.csv, junit.xml and bench.prom, and index it in RESULTS_DIR/history.sqlite.

    A workload that fails is recorded with its error and the suite goes on. Exit 0 when the run completed and every
    check and gate passed; 1 when it is partial (SIGTERM, crash), a result was wrong or failed, or a gate failed; 2 for a
    bad config or flag (nothing runs); 130 on Ctrl-C (the partial report is kept).
    """
    from bench import launch, orchestrate, preflight, runner
    from bench.hardware import devices
    from bench.hardware.inventory import collect
    from bench.model.reports import ReportError
    from bench.report.store import load_report

    config = _config(config_path, sets, device_lists, workloads, fail_below, baseline, max_regression)
    base = None
    if config["gates"]["baseline"]:
        named = config["gates"]["baseline"]
        try:
            base = [load_report(p) for p in baseline_files([named] if isinstance(named, str) else named)]
        except (ReportError, ValueError) as exc:
            fail(f"--baseline: {exc}", 2)
    where, _, kind = place(None)
    if repeat > 1 and not repeated():
        if where.distributed:
            fail("--repeat: not under a launcher (each rank would repeat the job); repeat the launch instead", 2)
        run_all(repeat, results_dir, as_json, quiet, base, config, junit_path)
        return
    if repeated_gate():  # one of a --repeat's runs: the command gates the median of them all, not each alone
        base = None
    signal.signal(signal.SIGTERM, _on_sigterm)
    leader = where.local_rank == 0
    key = signing_key(key_path) if leader else None
    inv = collect()
    facts = orchestrate.rank_devices(config, where, kind, inv["host"])
    run_config = {"suite": config, "config_file": str(config_path) if config_path else None,
                  "world_size": where.world_size, "launcher": where.source}  # fmt: skip
    if leader and not skip_doctor:  # before anything of ours runs: what else is the machine doing?
        checks = orchestrate.preflight_into(run_config)
        if not quiet:
            for c in checks:
                if c.status in ("warn", "fail"):
                    click.echo(f"pre-flight {preflight.line(c)}", err=True)
            if preflight.verdict(checks) != "pass":
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
        # rank 0 speaks for the job: the plan, a line per step, heartbeats and the total (the other ranks are quiet)
        feedback = Progress(quiet or where.rank != 0, config=config, show_plan=True,
                            count=lambda: len(writer.report.measurements) if writer else 0,
                            history=results_dir if where.rank == 0 else None)  # fmt: skip
        with rank_job(where, writer):
            orchestrate.distributed_suite(config, where, kind, facts, inv, writer, results_dir, feedback)
    else:
        assert writer is not None
        feedback = Progress(quiet, concurrent=config["suite"]["concurrent_devices"], config=config,
                            count=lambda: len(writer.report.measurements), show_plan=True,
                            history=results_dir)  # fmt: skip
        try:
            orchestrate.single_suite(config, facts, inv, writer, feedback)
        except (KeyboardInterrupt, runner.Terminated) as exc:  # the report is already closed as interrupted
            stopped = exc
    if writer is None:
        return
    report = writer.report
    # a partial run fails the 'complete' gate
    checks, outputs = orchestrate.conclude(writer, config, base, results_dir, junit_path,
                                           lambda text: click.echo(text, err=True))  # fmt: skip
    if stopped is not None:
        what = "interrupted" if isinstance(stopped, KeyboardInterrupt) else "terminated (SIGTERM)"
        fail(f"{what}; {len(report.measurements)} finished measurements saved in {writer.path} (partial)",
             130 if isinstance(stopped, KeyboardInterrupt) else 1)  # fmt: skip
    _finish(report, writer, checks, outputs, as_json)


def _finish(report: Any, writer: Any, checks: list[Any], outputs: dict[str, str], as_json: bool) -> None:
    from bench.report import headline, render
    from bench.report.store import dumps

    failed = [g for g in checks if not g.passed]
    status = "partial" if report.partial else ("failed" if failed else "complete")
    if as_json:
        click.echo(dumps({"run_id": report.run_id, "report": str(writer.path), "status": status,
                          "gates": [g.to_dict() for g in checks], "outputs": outputs}), nl=False)  # fmt: skip
    else:
        out = stdout()
        for line in headline.lines(report):
            out.print(line, style="bold red", highlight=False)
        for grid in headline.grids(report):
            out.print(render.to_rich(grid))
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
