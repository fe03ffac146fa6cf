"""`bench doctor`: the pre-flight checks (bench.preflight) as pass/warn/fail lines, each with its fix."""

from __future__ import annotations

import click

from bench.cli.options import json_option


@click.command("doctor")
@json_option("the checks")
@click.option(
    "--sample-s",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    help="Seconds over which CPU use per process is sampled.",
)
def doctor_cmd(as_json: bool, sample_s: float) -> None:
    """Pre-flight checks before trusting a benchmark: CPU load and busy processes, other processes on the GPUs,
    clocks held back (thermal, power brake, hardware slowdown), uncorrected ECC errors, persistence mode, and whether the
    driver, torch and CUDA agree. One PASS/WARN/FAIL line each, with the fix. No NVML is 'unavailable', not an error.
    Exit 1 when a check fails, else 0. `bench run` runs these first and records them in its report."""
    from bench.preflight import line, run_checks, verdict
    from bench.report.store import dumps

    checks = run_checks(sample_s)
    if as_json:
        click.echo(dumps({"verdict": verdict(checks), "checks": [c.to_dict() for c in checks]}), nl=False)
    else:
        for c in checks:
            click.echo(line(c))
        click.echo(f"verdict: {verdict(checks)}")
    if verdict(checks) == "fail":
        raise SystemExit(1)
