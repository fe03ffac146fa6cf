"""`bench matmul`: achieved FLOP/s of dense matrix products, every one checked with Freivalds' algorithm."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import click

from bench.cli import choices
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
from bench.cli.params import PrecisionParam, RangeParam, SecondsParam, ShapeParam
from bench.cli.progress import Progress
from bench.hardware import peaks


@click.command()
@devices_option()
@click.option(
    "--dtype",
    "precisions",
    type=PrecisionParam(list(choices.PRECISIONS)),
    multiple=True,
    help="Precision to measure (repeatable). Default: every precision the device kind has.",
)
@click.option(
    "--size",
    "sizes",
    type=click.IntRange(min=1),
    multiple=True,
    help=f"Square size N for an N x N x N product (repeatable). Default "
    f"{choices.per_kind(choices.MATMUL_DEFAULT_SIZE)}.",
)
@click.option(
    "--shape", "shapes", type=ShapeParam(), multiple=True, help="M,N,K of an M x K by K x N product (repeatable)."
)
@click.option(
    "--search",
    type=click.Choice(["auto", "grid"]),
    default=None,
    help="Search shapes for MAMF and hold the best for MSMF. auto: candidates from the device; grid: --m/--n/--k.",
)
@click.option("--m", "m_range", type=RangeParam(), help="Grid search M values, start:stop:step (stop included).")
@click.option("--n", "n_range", type=RangeParam(), help="Grid search N values, start:stop:step.")
@click.option("--k", "k_range", type=RangeParam(), help="Grid search K values, start:stop:step.")
@click.option(
    "--budget",
    type=SecondsParam(0.001),
    default=None,
    help="Fixed shapes: timed seconds per measurement (default 1). --search: seconds for the whole search of "
    f"one device x precision, MSMF window excluded (default {choices.per_kind(choices.SEARCH_BUDGET_S, 's')}).",
)
@click.option(
    "--window",
    type=SecondsParam(),
    default=None,
    help=f"--search: seconds the best shape is held for MSMF (default "
    f"{choices.per_kind(choices.SEARCH_WINDOW_S, 's')}; 0 skips MSMF).",
)
@click.option(
    "--settle",
    type=SecondsParam(),
    default=None,
    help="--search: seconds a large product runs before the search so clocks settle (default "
    f"{choices.per_kind(choices.SEARCH_SETTLE_S, 's')}).",
)
@click.option(
    "--warmup-s",
    "warmup",
    type=SecondsParam(),
    default=1.0,
    show_default=True,
    help="Most seconds of warm-up per measurement; warm-up ends earlier once timings settle.",
)
@click.option(
    "--warmup", "warmup_old", type=SecondsParam(), default=None, hidden=True, deprecated="use --warmup-s (seconds)"
)
@click.option(
    "--min-iterations",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Fewest timed iterations per measurement.",
)
@click.option(
    "--cpu-clock-mhz",
    type=click.FloatRange(min=1.0),
    default=None,
    help="Clock the CPU theoretical peak assumes (default: max clock, else current clock).",
)
@click.option(
    "--fma-units",
    type=click.IntRange(min=1, max=4),
    default=None,
    help=f"Vector FMA units per core the CPU peak assumes (default {peaks.DEFAULT_FMA_UNITS}).",
)
@sequential_option
@results_dir_option("The report goes to RESULTS_DIR/<run-id>/report.json.")
@key_option
@json_option("the whole report")
@quiet_option
def matmul(
    device_lists: tuple[list[str], ...],
    precisions: tuple[str, ...],
    sizes: tuple[int, ...],
    shapes: tuple[tuple[int, int, int], ...],
    search: str | None,
    m_range: list[int] | None,
    n_range: list[int] | None,
    k_range: list[int] | None,
    budget: float | None,
    window: float | None,
    settle: float | None,
    warmup: float,
    warmup_old: float | None,
    min_iterations: int,
    cpu_clock_mhz: float | None,
    fma_units: int | None,
    sequential: bool,
    results_dir: Path,
    key_path: Path | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Measure dense matmul TFLOPS per device, precision and shape.

    FLOPs = 2*M*N*K per product. Each measurement warms up until timings settle, then repeats within --budget; it
    keeps every iteration's seconds and reports the median (headline), IQR and best, and the efficiency against the
    device's peak (vendor table, or cores x clock x FLOPs/cycle on CPUs). Every product is checked with Freivalds'
    algorithm: one that fails is 'invalid', never counted, and makes the command exit 1. Precisions the device lacks
    are skipped (tf32 on a CPU) or measured small and marked emulated (bf16 on a CPU without AVX512-BF16).

    With --search, each device x precision gets MAMF (the best shape's median TFLOPS, best of torch and, on CPUs,
    numpy's BLAS) and MSMF (that shape held for --window seconds, with clocks, power and temperature recorded).
    """
    from bench import runner
    from bench.hardware import devices
    from bench.hardware.inventory import collect
    from bench.measure import telemetry
    from bench.measure.sampling import Policy
    from bench.planning.matmul import PeakOverrides, fixed_build, fixed_plan, search_build, search_plan
    from bench.plans import lane_plan
    from bench.registry import matmul as matmul_workload
    from bench.report import render
    from bench.report.store import dumps
    from bench.workloads import matmul_search as ms

    warmup = warmup if warmup_old is None else warmup_old
    grid_given = any(r is not None for r in (m_range, n_range, k_range))
    if search == "grid" and not all(r is not None for r in (m_range, n_range, k_range)):
        raise click.UsageError("--search grid needs --m, --n and --k ranges (start:stop:step)")
    if grid_given and search != "grid":
        raise click.UsageError("--m/--n/--k go with --search grid")
    if search and (sizes or shapes):
        raise click.UsageError("--size/--shape measure fixed shapes; --search chooses shapes itself")
    if window is not None and not search:
        raise click.UsageError("--window goes with --search")
    if settle is not None and not search:
        raise click.UsageError("--settle goes with --search")

    device_ids = chosen_devices(device_lists)
    all_shapes = list(dict.fromkeys([(n, n, n) for n in sizes] + list(shapes)))
    grid = ms.grid_shapes(m_range, n_range, k_range) if search == "grid" else []
    overrides = PeakOverrides(cpu_clock_mhz, fma_units)
    config = {
        "workload": "matmul",
        "devices": device_ids,
        "precisions": list(precisions),
        "shapes": [list(s) for s in all_shapes],
        "search": search,
        "grid": [list(s) for s in grid],
        "budget_s": budget,
        "window_s": window,
        "settle_s": settle,
        "max_warmup_s": warmup,
        "min_iterations": min_iterations,
        "cpu_clock_mhz": cpu_clock_mhz,
        "fma_units": fma_units,
        "concurrent_devices": not sequential,
    }
    key = signing_key(key_path)
    inv = collect()
    facts = [devices.facts(d, inv["host"]) for d in device_ids]
    readers: dict[str, Any] = {}
    closers: list = []
    if search:
        readers, closers = telemetry.readers(facts)
        steps = search_plan(facts, inv["host"], precisions, search, grid, budget, window, overrides, readers, settle)
        # each GPU's worker rebuilds its searches (closures over telemetry readers and float32's result)
        plan = functools.partial(lane_plan, functools.partial(search_build, inv["host"], precisions, search, grid,
                                                              budget, window, overrides, settle), facts)  # fmt: skip
    else:
        policy = Policy(budget_s=budget or 1.0, min_iterations=min_iterations, max_warmup_s=warmup)
        steps = fixed_plan(facts, inv["host"], precisions, all_shapes, policy, overrides)
        # the steps pickle as they are, but a MIG instance's worker probes its device itself
        plan = functools.partial(lane_plan, functools.partial(fixed_build, inv["host"], precisions, all_shapes, policy,
                                                              overrides), facts)  # fmt: skip

    writer = runner.start(results_dir, config, inv, key)
    progress = Progress(quiet, concurrent=not sequential, count=lambda: len(writer.report.measurements),
                        config={"matmul": {"budget_s": budget, "window_s": window, "settle_s": settle,
                                           "max_warmup_s": warmup}})  # fmt: skip
    progress.plan(steps)
    try:
        with progress:
            report = runner.execute(writer, steps, progress.step, progress.measured, concurrent=not sequential,
                                    plan=plan)  # fmt: skip
        progress.finished()
    except KeyboardInterrupt:
        fail(f"interrupted; {len(writer.report.measurements)} finished measurements saved in {writer.path}", 130)
    finally:
        for close in closers:
            close()

    if as_json:
        click.echo(dumps(report.to_dict()), nl=False)
    else:
        out = stdout()
        shown = report.measurements
        if search:
            out.print(render.stacked(matmul_workload.search_grids(report.measurements)))
            shown = [m for m in report.measurements if m.details.get("search", {}).get("role") != "candidate"]
        else:
            out.print(render.stacked(matmul_workload.fixed_grids(shown)))
        for line in render.warning_lines(shown):
            out.print(line, highlight=False)
        out.print(f"report: {writer.path}")
    failed = [m for m in report.measurements if m.status in ("invalid", "error")]
    if failed:
        fail("; ".join(f"{m.device['id']} {m.spec['precision']}: {m.reason}" for m in failed))
