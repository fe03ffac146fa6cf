"""`bench aggregate`: fleet capacity from node reports, every device counted once, signed by the aggregator."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from bench.cli.options import (
    json_option,
    key_option,
    max_age_option,
    output_option,
    signing_key,
    trusted_keys,
    trusted_keys_option,
)
from bench.cli.output import fail, stdout


def report_files(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given; directories searched recursively for report.json."""
    out: list[Path] = []
    for p in paths:
        out += sorted(p.rglob("report.json")) if p.is_dir() else [p]
    return out


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@output_option("Where the signed capacity report goes.", default=Path("capacity.json"))
@trusted_keys_option("Only reports signed by these keys count (see bench verify).")
@max_age_option("Reject node reports older than this, e.g. 7d.")
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML thresholds: tolerance = 0.1 and [[baseline]] model/precision/min_tflops.",
)
@click.option(
    "--jobs",
    type=click.IntRange(1, 1024),
    default=None,
    help="Processes verifying node reports (default: one per core this process may use). --jobs 1 when several "
    "aggregations run at once.",
)
@click.option(
    "--allow-rejected",
    is_flag=True,
    help="Exit 0 even when some node reports were rejected (they are still listed with why). Without it, any "
    "rejected report makes the exit status 1, after the capacity report of the rest is written.",
)
@key_option
@json_option("the capacity report")
def aggregate(paths: tuple[Path, ...], output: Path, trusted_path: Path | None, max_age: Any, rules_path: Path | None,
              jobs: int | None, allow_rejected: bool, key_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """Aggregate node reports (files, or directories searched for report.json) into a signed capacity report.

    Each report is verified first; rejected ones are listed with why, and make the exit status 1 (after the
    capacity report of the rest is written) unless --allow-rejected. A GPU (by UUID) or CPU host (by fingerprint)
    found in several reports counts once, from the newest report, and is listed as a duplicate. Devices whose MAMF is
    more than the tolerance below their group's median, or below a baseline, are listed as defective.
    """
    from bench.report import aggregate as agg
    from bench.report import render
    from bench.report.store import signed_dumps, write_atomic

    try:
        rules = agg.load_rules(rules_path.read_text(encoding="utf-8"), str(rules_path)) if rules_path else agg.Rules()
    except agg.RulesError as exc:
        raise click.BadParameter(str(exc), param_hint="--rules") from None
    if max_age is not None:
        rules = dataclasses.replace(rules, max_age_s=max_age.total_seconds())
    files = report_files(paths)
    if not files:
        raise click.UsageError("no report.json found under the paths given")
    # each file is read and verified in a worker process: the parent never holds the whole fleet
    cap = agg.aggregate([(str(f), f) for f in files], rules=rules, trusted=trusted_keys(trusted_path), jobs=jobs)
    key = signing_key(key_path)
    text = signed_dumps(cap, key)  # cap["signature"] set, and the text store.dumps writes of the signed report
    write_atomic(output, text)
    if as_json:
        click.echo(text, nl=False)
    else:
        out = stdout()
        for table in render.capacity_tables(cap):
            out.print(table)
        out.print(f"capacity report: {output}")
    if not any(i["status"] == "counted" for i in cap["inputs"]):
        fail("no node report passed verification; nothing was counted")
    rejected = [i for i in cap["inputs"] if i["status"] == "rejected"]
    if rejected and not allow_rejected:
        first = rejected[0]
        fail(f"{len(rejected)} of {len(cap['inputs'])} node reports rejected (first: {first['name']}: "
             f"{'; '.join(first.get('reasons') or [])[:300]}); the capacity report of the rest is in {output} "
             "(--allow-rejected exits 0)")  # fmt: skip
