"""`bench matmul`: achieved FLOP/s of dense matrix products, every one checked with Freivalds' algorithm."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import precision as prec
from bench import runner
from bench.cli.output import fail, stderr, stdout
from bench.cli.params import DeviceParam, ShapeParam
from bench.hardware import devices
from bench.hardware.inventory import collect
from bench.measure.sampling import Policy
from bench.report import render
from bench.report.store import dumps
from bench.workloads import matmul as mm


def plan(
    device_ids: list[str], host: dict, precisions: tuple[str, ...], shapes: list[tuple[int, int, int]], policy: Policy
) -> list[runner.Step]:
    """One step per device x precision x shape; defaults per device kind where none are named."""
    steps = []
    for device_id in device_ids:
        facts = devices.facts(device_id, host)
        size = mm.DEFAULT_SIZE[facts.kind]
        for name in precisions or prec.DEFAULT_PRECISIONS[facts.kind]:
            for m, n, k in shapes or [(size, size, size)]:
                spec = mm.MatmulSpec(m, n, k, name)
                steps.append(
                    runner.Step(f"{device_id} {name} {m}x{n}x{k}", lambda s=spec, f=facts: mm.run(s, f, policy))
                )
    return steps


@click.command()
@click.option("--device", "device_lists", type=DeviceParam(), multiple=True,
              help="cpu, cuda:N or all (every GPU, else the CPU; the default). Repeatable.")
@click.option("--dtype", "precisions", type=click.Choice(list(prec.PRECISIONS)), multiple=True,
              help="Precision to measure (repeatable). Default: every precision the device kind has.")
@click.option("--size", "sizes", type=click.IntRange(min=1), multiple=True,
              help=f"Square size N for an N x N x N product (repeatable). Default {mm.DEFAULT_SIZE}.")
@click.option("--shape", "shapes", type=ShapeParam(), multiple=True, help="M,N,K of an M x K by K x N product (repeatable).")
@click.option("--budget", type=click.FloatRange(min=0.001), default=1.0, show_default=True,
              help="Seconds of timed iterations per measurement, after warm-up.")
@click.option("--warmup", type=click.FloatRange(min=0.0), default=1.0, show_default=True,
              help="Most seconds of warm-up per measurement; warm-up ends earlier once timings settle.")
@click.option("--min-iterations", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--results-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("results"),
              show_default=True, help="The report goes to RESULTS_DIR/<run-id>/report.json.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON on stdout.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def matmul(
    device_lists: tuple[list[str], ...],
    precisions: tuple[str, ...],
    sizes: tuple[int, ...],
    shapes: tuple[tuple[int, int, int], ...],
    budget: float,
    warmup: float,
    min_iterations: int,
    results_dir: Path,
    as_json: bool,
    quiet: bool,
) -> None:
    """Measure dense matmul TFLOPS per device, precision and shape.

    FLOPs = 2*M*N*K per product. Each measurement warms up until timings settle, then repeats within --budget; it
    keeps every iteration's seconds and reports the median (headline), IQR and best. Every product is checked with
    Freivalds' algorithm: one that fails is 'invalid', never counted, and makes the command exit 1. Precisions the
    device lacks are skipped (tf32 on a CPU) or measured small and marked emulated (bf16 on a CPU without AVX512-BF16).
    """
    device_ids = list(dict.fromkeys(d for ds in device_lists for d in ds)) or devices.default_devices()
    all_shapes = list(dict.fromkeys([(n, n, n) for n in sizes] + list(shapes)))
    policy = Policy(budget_s=budget, min_iterations=min_iterations, max_warmup_s=warmup)
    config = {
        "workload": "matmul",
        "devices": device_ids,
        "precisions": list(precisions),
        "shapes": [list(s) for s in all_shapes],
        "budget_s": budget,
        "max_warmup_s": warmup,
        "min_iterations": min_iterations,
    }
    inv = collect()
    steps = plan(device_ids, inv["host"], precisions, all_shapes, policy)
    writer = runner.start(results_dir, config, inv)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=stderr(), disable=quiet, transient=True,
    )  # fmt: skip
    task = progress.add_task("matmul", total=len(steps))

    def on_step(step: runner.Step) -> None:
        progress.update(task, description=step.label, completed=len(writer.report.measurements))

    try:
        with progress:
            report = runner.execute(writer, steps, on_step)
    except KeyboardInterrupt:
        fail(f"interrupted; {len(writer.report.measurements)} finished measurements saved in {writer.path}", 130)

    if as_json:
        click.echo(dumps(report.to_dict()), nl=False)
    else:
        out = stdout()
        out.print(render.measurements_table(report.measurements))
        for line in render.warning_lines(report.measurements):
            out.print(line, highlight=False)
        out.print(f"report: {writer.path}")
    invalid = [m for m in report.measurements if m.status == "invalid"]
    if invalid:
        fail("; ".join(f"{m.device['id']} {m.spec['precision']}: {m.reason}" for m in invalid))
