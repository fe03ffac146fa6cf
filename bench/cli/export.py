"""`bench export`: a node report for ops tools, as a Prometheus textfile or CSV."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.inputs import REPORT_FILE, node_report
from bench.cli.options import output_option


def _octal(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        mode = int(value, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise click.BadParameter(f"{value!r}: expected an octal file mode such as 0644 or 0640")
    return mode


@click.group("export")
def export_group() -> None:
    """Export a node report for ops tools: Prometheus textfile or CSV."""


@export_group.command("prometheus")
@click.argument("path", type=REPORT_FILE)
@output_option(
    "File for node_exporter's textfile collector (e.g. /var/lib/node_exporter/bench.prom); "
    "written atomically. Default: stdout."
)
@click.option(
    "--mode",
    "mode",
    default="0644",
    show_default=True,
    callback=_octal,
    help="Permissions of the -o file (octal), whatever the umask: node_exporter runs as its own user.",
)
def export_prometheus(path: Path, output: Path | None, mode: int) -> None:
    """bench_* gauges in base units (FLOP/s, bytes/s, _ratio) with dcgm-exporter's device labels (Hostname, gpu,
    UUID, pci_bus_id, device, modelName), so PromQL joins them to DCGM_FI_* series; bench_device_info per device."""
    from bench.report import export

    text = export.prometheus(node_report(path))
    if output:
        export.write_public(output, text, mode)
    else:
        click.echo(text, nl=False)


@export_group.command("csv")
@click.argument("path", type=REPORT_FILE)
@output_option("Write to this file (default: stdout).")
@click.option("--measurements", is_flag=True, help="One row per measurement instead of one per headline metric.")
def export_csv(path: Path, output: Path | None, measurements: bool) -> None:
    """Headline metrics (or every measurement) as CSV, via pandas."""
    from bench.report import export
    from bench.report.store import write_atomic

    rep = node_report(path)
    text = export.to_csv(export.measurements_frame(rep) if measurements else export.metrics_frame(rep))
    if output:
        write_atomic(output, text)
    else:
        click.echo(text, nl=False)
