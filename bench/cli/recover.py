"""`bench recover`: fold an interrupted run's spooled measurements into its signed report."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.options import json_option, key_option
from bench.cli.output import fail


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@key_option
@json_option("what was folded (added, held, refused, ignored, torn_bytes)")
def recover(run_dir: Path, key_path: Path | None, as_json: bool) -> None:
    """Fold RUN_DIR's spools into RUN_DIR/report.json after its bench was killed (SIGKILL, the out-of-memory killer,
    a lost node): the measurements a GPU's worker finished and spooled but the run never appended are appended, signed
    with the node's key (--key: the run's own), marked details.recovered, then the report is closed as interrupted.
    Only this run's and this host's spools are read; a line that does not parse, or names a device the report does
    not list, is left out and named. The report's torn last line, if the kill cut one short, is cut off.

    Exit 0 when the report is closed (bench verify then takes it as partial); 1 when it cannot be appended to (its
    signature does not hold, another key signed it, or it has its end record already and spooled measurements are
    missing from it)."""
    from bench.model import keys
    from bench.model.reports import ReportError
    from bench.recover import fold
    from bench.report.store import dumps

    try:
        key = keys.load(key_path or keys.default_key_path())
        done = fold(run_dir, key)
    except keys.KeyFileError as exc:
        fail(str(exc))
    except (ReportError, OSError) as exc:
        fail(str(exc).splitlines()[0])
    if as_json:
        click.echo(dumps({"report": str(done.report), "added": done.added, "held": done.held, "refused": done.refused,
                          "ignored": done.ignored, "torn_bytes": done.torn_bytes, "ended": done.ended}), nl=False)  # fmt: skip
    else:
        for line in done.refused:
            click.echo(f"left out: {line}", err=True)
        for line in done.ignored:
            click.echo(f"ignored: {line}", err=True)
        if done.ended:
            click.echo(f"{done.report} was closed already; {done.held} spooled measurements are in it")
        else:
            click.echo(f"{done.report}: {done.added} spooled measurements added, {done.held} already in it"
                       + (f", a torn last line of {done.torn_bytes} bytes cut off" if done.torn_bytes else "")
                       + "; closed as interrupted (partial)")  # fmt: skip
    if done.ended and any("end record" in r for r in done.refused):
        fail("spooled measurements are missing from a report that has its end record; they cannot be added")
