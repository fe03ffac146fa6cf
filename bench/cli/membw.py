"""`bench membw`: device memory bandwidth with STREAM's kernels."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from bench.cli.options import (
    chosen_devices,
    devices_option,
    json_option,
    key_option,
    quiet_option,
    results_dir_option,
    sequential_option,
    signing_key,
)
from bench.cli.output import fail, stdout
from bench.cli.params import MebibyteParam, SecondsParam
from bench.cli.progress import Progress


@click.command()
@devices_option()
@click.option(
    "--array-mib",
    type=MebibyteParam(),
    default=None,
    help="Size of each of the three arrays: MiB, or a size with its unit (512M, 1G; K/M/G are binary) "
    "(default: 256 MiB on CPU, 1 GiB on GPU).",
)
@click.option(
    "--budget", type=SecondsParam(0.001), default=1.0, show_default=True, help="Timed seconds per kernel after warm-up."
)
@sequential_option
@results_dir_option()
@key_option
@json_option("the report")
@quiet_option
def membw(device_lists: tuple[list[str], ...], array_mib: float | None, budget: float, sequential: bool,
          results_dir: Path, key_path: Path | None, as_json: bool, quiet: bool) -> None:  # fmt: skip
    """STREAM copy, scale, add and triad on each device (multi-threaded on the CPU), and host<->device over pinned
    memory on GPUs; every result checked. Efficiency against the peak table's memory bandwidth where one is on file."""
    from bench import plans, runner
    from bench.hardware import devices
    from bench.hardware.inventory import collect
    from bench.measure.sampling import Policy
    from bench.planning import membw as membw_plan
    from bench.registry import membw as membw_workload
    from bench.report import render
    from bench.report.store import dumps

    device_ids = chosen_devices(device_lists)
    key = signing_key(key_path)
    inv = collect()
    elements = int(array_mib * 2**20 / 8) if array_mib else None
    writer = runner.start(results_dir, {"workload": "membw", "devices": device_ids, "array_mib": array_mib,
                                        "budget_s": budget}, inv, key)  # fmt: skip
    policy = Policy(budget_s=budget, min_iterations=5, max_warmup_s=min(budget, 1.0))
    facts = [devices.facts(d, inv["host"]) for d in device_ids]
    steps = membw_plan.steps(facts, policy, elements)
    # each GPU's worker rebuilds its steps, so that a MIG instance's worker probes its device itself
    plan = functools.partial(plans.lane_plan, functools.partial(membw_plan.build, policy, elements), facts)
    progress = Progress(quiet, concurrent=not sequential, config={"membw": {"budget_s": budget}},
                        count=lambda: len(writer.report.measurements))  # fmt: skip
    progress.plan(steps)
    try:
        with progress:
            report = runner.execute(writer, steps, progress.step, progress.measured, concurrent=not sequential,
                                    plan=plan)  # fmt: skip
        progress.finished()
    except KeyboardInterrupt:
        fail(f"interrupted; finished kernels are saved in {writer.path}", 130)
    if as_json:
        click.echo(dumps(report.to_dict()), nl=False)
    else:
        stdout().print(render.stacked([membw_workload.membw_grid(report.measurements)]))
        stdout().print(f"report: {writer.path}")
    wrong = [m for m in report.measurements if m.status == "invalid"]
    if wrong:
        fail("wrong results: " + ", ".join(f"{m.device['id']} {m.spec['kernel']}" for m in wrong))
