"""`bench verify`: check node reports (and capacity reports) the way an auditor would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from bench.cli.output import fail, stdout
from bench.report import aggregate as agg
from bench.report import keys
from bench.report import verify as v
from bench.report.store import dumps


class DurationParam(click.ParamType):
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return value if not isinstance(value, str) else v.parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def load_json(path: Path) -> Any:
    """Parsed JSON, or a finding-worthy error string."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return exc


def trusted_keys(path: Path | None) -> set[str] | None:
    if path is None:
        return None
    try:
        return keys.parse_trusted(path.read_text(encoding="utf-8"))
    except keys.KeyFileError as exc:
        raise click.BadParameter(str(exc), param_hint="--trusted-keys") from None


def _node_reports(directory: Path) -> list[tuple[str, Path]]:
    """Every JSON file under `directory`: the capacity report's inputs are found among them by digest (each file is
    read, canonicalized and verified once, in parallel, during the recomputation)."""
    return [(str(path), path) for path in sorted(directory.rglob("*.json"))]


def claims_table(results: list[dict[str, Any]]) -> Table:
    table = Table(title="claims against measured capacity (MAMF sums)")
    for col in ("claim", "supported", "measured PFLOPS", "margin", "backed by measurement", "only by vendor peak"):
        table.add_column(col, justify="left" if col == "claim" else "right")
    for c in results:
        table.add_row(c["claim"], "yes" if c["supported"] else "NO", f"{c['measured_tflops'] / 1e3:.4g}",
                      f"{c['margin']:+.1%}", f"{c['measured_share']:.1%}", f"{c['peak_only_share']:.1%}",
                      style="green" if c["supported"] else "bold red")  # fmt: skip
    return table


def findings_table(results: dict[str, list[v.Finding]]) -> Table:
    table = Table(title="verification")
    for col in ("report", "verdict", "severity", "check", "where", "finding"):
        table.add_column(col, overflow="fold", no_wrap=col in ("severity", "check", "verdict"))
    for path, findings in results.items():
        verdict = "FAIL" if v.errors(findings) else "pass"
        style = "bold red" if verdict == "FAIL" else "green"
        if not findings:
            table.add_row(path, verdict, "-", "-", "-", "all checks passed", style=style)
        for f in findings:
            table.add_row(path, verdict, f.severity, f.code, f.where, f.message,
                          style="bold red" if f.severity == v.ERROR else None)  # fmt: skip
    return table


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--trusted-keys", "trusted_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File of trusted key ids or base64 public keys, one per line ('#' comments). Unknown keys fail.")
@click.option("--max-age", type=DurationParam(), default=None, help="Oldest acceptable report, e.g. 7d, 12h.")
@click.option("--reports", "reports_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Capacity reports: the directory of node reports to recompute them from.")
@click.option("--claim", "claims", multiple=True,
              help="Capacity reports: a claim to test, e.g. '100 PFLOPS bf16' (TFLOPS/PFLOPS/EFLOPS). Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings (and claim checks) as JSON.")
def verify(paths: tuple[Path, ...], trusted_path: Path | None, max_age: Any, reports_dir: Path | None,
           claims: tuple[str, ...], as_json: bool) -> None:  # fmt: skip
    """Verify node reports: signature and key, schema, every figure recomputed from the raw samples, figures against
    the physical peak, correctness checks, timestamps, and that measured devices are in the inventory.

    A capacity report (from bench aggregate) is checked for its signature and, with --reports, recomputed from the node
    reports it lists; --claim then says whether its measured capacity supports a claimed figure.

    Exits 0 only when no report has an error-level finding and every claim is supported; 1 otherwise.
    """
    for claim in claims:
        try:
            agg.parse_claim(claim)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--claim") from None
    trusted = trusted_keys(trusted_path)
    node_reports = _node_reports(reports_dir) if reports_dir else None
    results: dict[str, list[v.Finding]] = {}
    claim_results: list[dict[str, Any]] = []
    for path in paths:
        data = load_json(path)
        if isinstance(data, Exception):
            results[str(path)] = [v.Finding(v.ERROR, "unreadable", f"not valid JSON (truncated or corrupt?): {data}")]
        elif isinstance(data, dict) and data.get("kind") == agg.CAPACITY_KIND:
            results[str(path)] = agg.verify_capacity(data, node_reports, trusted)
            claim_results += [{"report": str(path), **agg.check_claim(data, c)} for c in claims]
        else:
            results[str(path)] = v.verify_node_report(data, trusted=trusted, max_age=max_age)
    if claims and not claim_results:
        raise click.UsageError("--claim needs a capacity report (from bench aggregate)")
    if as_json:
        payload: dict[str, Any] = {"reports": {p: [f.to_dict() for f in fs] for p, fs in results.items()}}
        if claim_results:
            payload["claims"] = claim_results
        click.echo(dumps(payload), nl=False)
    else:
        out = stdout()
        out.print(findings_table(results))
        if claim_results:
            out.print(claims_table(claim_results))
    unsupported = [c for c in claim_results if not c["supported"]]
    if unsupported and not [p for p, fs in results.items() if v.errors(fs)]:
        fail("; ".join(f"claim '{c['claim']}' is not supported: measured {c['measured_tflops'] / 1e3:.4g} PFLOPS "
                       f"{c['precision']} ({c['measured_share']:.1%} of the claim)" for c in unsupported))  # fmt: skip
    failed = [p for p, fs in results.items() if v.errors(fs)]
    if failed:
        fail(f"{len(failed)} of {len(results)} reports failed verification: {', '.join(failed)}")
