"""`bench aggregate`: fleet capacity from node reports, every device counted once, signed by the aggregator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from bench.cli.keys import key_option, signing_key
from bench.cli.output import fail, stdout
from bench.cli.verify import DurationParam, load_json, trusted_keys
from bench.report import aggregate as agg
from bench.report import sign
from bench.report.store import dumps, write_atomic


def report_files(paths: tuple[Path, ...]) -> list[Path]:
    """Files as given; directories searched recursively for report.json."""
    out: list[Path] = []
    for p in paths:
        out += sorted(p.rglob("report.json")) if p.is_dir() else [p]
    return out


def _f(x: float | None, scale: float = 1.0, fmt: str = ".4g") -> str:
    return "-" if x is None else format(x * scale, fmt)


def capacity_tables(cap: dict[str, Any]) -> list[Table]:
    groups = Table(title="capacity by model x precision (MAMF: measured; peak: vendor or theoretical)")
    for col in ("model", "precision", "devices", "nodes", "MAMF TFLOPS", "MSMF TFLOPS", "peak TFLOPS", "efficiency",
                "p5", "median", "p95"):  # fmt: skip
        groups.add_column(col, justify="left" if col in ("model", "precision") else "right")
    for g in cap["groups"]:
        groups.add_row(str(g["model"]), g["precision"], str(g["devices"]), str(g["nodes"]), _f(g["mamf_sum_tflops"]),
                       _f(g["msmf_sum_tflops"]), _f(g["peak_sum_tflops"]), _f(g["efficiency"], 100, ".1f") + "%" * (g["efficiency"] is not None),
                       _f(g["mamf_p5_tflops"]), _f(g["mamf_median_tflops"]), _f(g["mamf_p95_tflops"]))  # fmt: skip
    totals = Table(title="totals per precision")
    for col in ("precision", "devices", "nodes", "MAMF PFLOPS", "MAMF EFLOPS", "MSMF PFLOPS", "peak PFLOPS"):
        totals.add_column(col, justify="left" if col == "precision" else "right")
    for t in cap["totals"]:
        totals.add_row(t["precision"], str(t["devices"]), str(t["nodes"]), _f(t["mamf_pflops"]), _f(t["mamf_eflops"]),
                       _f(t["msmf_tflops"], 1e-3), _f(t["peak_tflops"], 1e-3))  # fmt: skip
    inputs = Table(title="node reports")
    for col in ("report", "node", "key id", "status", "why"):
        inputs.add_column(col, overflow="fold")
    for i in cap["inputs"]:
        inputs.add_row(i["name"], str(i["node"] or "-"), str(i["key_id"] or "-"), i["status"], "; ".join(i["reasons"]),
                       style="bold red" if i["status"] == "rejected" else None)  # fmt: skip
    tables = [groups, totals, inputs]
    if cap["defective"]:
        bad = Table(title="defective devices")
        for col in ("node", "device", "precision", "MAMF TFLOPS", "group median", "gap", "why"):
            bad.add_column(col, overflow="fold")
        for d in cap["defective"]:
            bad.add_row(str(d["node"]), d["device"], d["precision"], _f(d["value"]), _f(d["group_median"]),
                        f"{d['gap']:.1%}", "; ".join(d["reasons"]), style="bold red")  # fmt: skip
        tables.append(bad)
    if cap["duplicates"]:
        dup = Table(title="devices found in more than one report (counted once, from the newest)")
        for col in ("device", "precision", "counted from", "also in"):
            dup.add_column(col, overflow="fold")
        for d in cap["duplicates"]:
            dup.add_row(d["device"], d["precision"], d["kept"][:16], ", ".join(x[:16] for x in d["dropped"]))
        tables.append(dup)
    return tables


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("capacity.json"),
              show_default=True, help="Where the signed capacity report goes.")
@click.option("--trusted-keys", "trusted_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Only reports signed by these keys count (see bench verify).")
@click.option("--max-age", type=DurationParam(), default=None, help="Reject node reports older than this, e.g. 7d.")
@click.option("--rules", "rules_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="TOML thresholds: tolerance = 0.1 and [[baseline]] model/precision/min_tflops.")
@key_option
@click.option("--json", "as_json", is_flag=True, help="Print the capacity report as JSON.")
def aggregate(paths: tuple[Path, ...], output: Path, trusted_path: Path | None, max_age: Any, rules_path: Path | None,
              key_path: Path | None, as_json: bool) -> None:  # fmt: skip
    """Aggregate node reports (files, or directories searched for report.json) into a signed capacity report.

    Each report is verified first; rejected ones are listed with why. A GPU (by UUID) or CPU host (by fingerprint)
    found in several reports counts once, from the newest report, and is listed as a duplicate. Devices whose MAMF is
    more than the tolerance below their group's median, or below a baseline, are listed as defective.
    """
    try:
        rules = agg.load_rules(rules_path.read_text(encoding="utf-8"), str(rules_path)) if rules_path else agg.Rules()
    except agg.RulesError as exc:
        raise click.BadParameter(str(exc), param_hint="--rules") from None
    if max_age is not None:
        rules = agg.Rules(rules.tolerance, rules.baselines, max_age.total_seconds())
    files = report_files(paths)
    if not files:
        raise click.UsageError("no report.json found under the paths given")
    inputs = []
    for f in files:
        data = load_json(f)
        inputs.append((str(f), None if isinstance(data, Exception) else data))
    cap = agg.aggregate(inputs, rules=rules, trusted=trusted_keys(trusted_path))
    key = signing_key(key_path)
    cap["signature"] = sign.sign(cap, key)
    write_atomic(output, dumps(cap))
    if as_json:
        click.echo(dumps(cap), nl=False)
    else:
        out = stdout()
        for table in capacity_tables(cap):
            out.print(table)
        out.print(f"capacity report: {output}")
    if not any(i["status"] == "counted" for i in cap["inputs"]):
        fail("no node report passed verification; nothing was counted")
