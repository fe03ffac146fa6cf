"""`bench verify`: check node reports (and capacity reports) the way an auditor would."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from bench.cli.options import (
    auditor_key_id,
    auditor_key_option,
    json_option,
    max_age_option,
    trusted_keys,
    trusted_keys_option,
)
from bench.cli.output import fail, stdout

if TYPE_CHECKING:
    from bench.report import verify as v


def _pf(tflops: float | None) -> str:
    return "-" if tflops is None else f"{tflops / 1e3:.4g}"


def claims_table(results: list[dict[str, Any]]) -> Table:
    table = Table(title="claims by tier (PFLOPS): only the proven tier supports a claim")
    for col in ("claim", "reported", "bounded", "proven", "verdict"):
        table.add_column(col, justify="right" if col in ("reported", "bounded", "proven") else "left")
    for c in results:
        table.add_row(c["claim"], _pf(c["reported_tflops"]), _pf(c["bounded_tflops"]), _pf(c["proven_tflops"]),
                      c["verdict"], style="green" if c["supported"] else "bold red")  # fmt: skip
    return table


def totals_table(view: dict[str, Any], proven: dict[str, float]) -> Table:
    table = Table(title="fleet totals by tier, under the auditor's policy (PFLOPS)")
    for col in ("precision", "devices", "reported", "bounded", "proven"):
        table.add_column(col, justify="left" if col == "precision" else "right")
    for t in view["totals"]:
        table.add_row(t["precision"], str(t["devices"]), _pf(t["reported_tflops"]), _pf(t["bounded_tflops"]),
                      _pf(proven.get(t["precision"], 0.0)))  # fmt: skip
    return table


def tiers_table(tiers: dict[str, list[dict[str, Any]]]) -> Table:
    table = Table(title="tier of each figure (reported: signed by a node key; bounded: also physically possible, "
                  "unique, fresh; proven: a verified challenge)")  # fmt: skip
    for col in ("report", "where", "precision", "TFLOPS", "tier", "why not higher"):
        table.add_column(col, overflow="fold")
    for path, rows in tiers.items():
        for r in rows:
            table.add_row(path, r["where"], str(r["precision"]), "-" if r["tflops"] is None else f"{r['tflops']:.4g}",
                          r["tier"], r["why"])  # fmt: skip
    return table


def findings_table(results: dict[str, list[v.Finding]], *, signature_only: bool = False) -> Table:
    """Every verdict is pass or FAIL: a report whose figures were not recomputed fails (its not-recomputed finding an
    error, see decisive()) unless --signature-only asked for exactly that check, when it reads 'pass (signature only)'."""
    from bench.report import verify as v

    table = Table(title="verification")
    for col in ("report", "verdict", "severity", "check", "where", "finding"):
        table.add_column(col, overflow="fold", no_wrap=col in ("severity", "check", "verdict"))
    for path, findings in results.items():
        verdict = ("FAIL" if v.errors(findings) else "pass (signature only)"
                   if signature_only and any(f.code == "not-recomputed" for f in findings) else "pass")  # fmt: skip
        style = "bold red" if verdict == "FAIL" else "green"
        if not findings:
            table.add_row(path, verdict, "-", "-", "-", "all checks passed", style=style)
        for f in findings:
            table.add_row(path, verdict, f.severity, f.code, f.where, f.message,
                          style="bold red" if f.severity == v.ERROR else None)  # fmt: skip
    return table


def decisive(results: dict[str, list[v.Finding]]) -> None:
    """A not-recomputed finding made an error in place: without --signature-only a report whose figures nobody
    recomputed fails, so that no verdict is neither pass nor fail."""
    from bench.report import verify as v

    for path, findings in results.items():
        results[path] = [
            v.Finding(v.ERROR, f.code, f"{f.message} (--signature-only accepts this)", f.where)
            if f.code == "not-recomputed" else f
            for f in findings
        ]  # fmt: skip


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@trusted_keys_option(
    "File of trusted node key ids or base64 public keys, one per line ('#' comments). Unknown keys fail."
)
@max_age_option("Oldest acceptable report, e.g. 7d, 12h.")
@click.option(
    "--reports",
    "reports_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Capacity reports: the directory of node reports to recompute them from.",
)
@click.option(
    "--claim",
    "claims",
    multiple=True,
    help="A claim to test, e.g. '100 PFLOPS bf16' (TFLOPS/PFLOPS/EFLOPS), against a capacity report or the "
    "node reports given. Supported only by the proven tier (--proof). Repeatable.",
)
@click.option(
    "--proof",
    "proof_paths",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A challenge proof from `bench challenge verify --proof` (signed by --auditor-key). Repeatable.",
)
@auditor_key_option("The auditor's key (private, or its .pub): the only key whose proofs count.")
@click.option(
    "--from",
    "from_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Disclosures: the folder of capacity reports, proofs and child disclosures to re-derive them from.",
)
@click.option("--aggregator-keys", "aggregator_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Disclosures: the aggregator key ids this verifier accepts; the disclosure's policy and every "
                   "capacity report it cites must be within them.")  # fmt: skip
@click.option("--operator-keys", "operator_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Disclosures: the operator key ids this verifier accepts; the disclosure's policy and every "
                   "declaration it embeds must be within them.")  # fmt: skip
@click.option("--signature-only", is_flag=True,
              help="Accept a capacity report without --reports, or a disclosure without --from, on its signature, "
                   "schema and keys alone (its figures unverified). Without it such a report fails.")  # fmt: skip
@json_option("the findings, tiers and claim checks")
def verify(paths: tuple[Path, ...], trusted_path: Path | None, max_age: Any, reports_dir: Path | None,
           claims: tuple[str, ...], proof_paths: tuple[Path, ...], auditor_path: Path | None,
           from_dir: Path | None, aggregator_path: Path | None, operator_path: Path | None, signature_only: bool,
           as_json: bool) -> None:  # fmt: skip
    """Verify node reports: signature and key, schema, every figure recomputed from the raw samples, figures against
    the physical peak, correctness checks, timestamps, and that measured devices are in the inventory; then say the
    tier of every figure: reported, bounded or proven (docs/proofs.md, "What bench proves, and what it does not").

    A capacity report (from bench aggregate) is checked for its signature and, with --reports, recomputed from the node
    reports it lists; every node report it counted must also pass this auditor's --trusted-keys and --max-age.

    --claim says whether a claimed figure is supported: only a proven tier (a verified challenge, --proof signed by
    --auditor-key) supports one; otherwise the answer gives reported, bounded and proven figures and "claim unproven".

    A disclosure (from bench disclose) is re-derived with --from, level by level, and held to the verifier's own keys:
    --auditor-key, --trusted-keys, --aggregator-keys, --operator-keys.

    Every verdict is pass or FAIL: a capacity report without --reports, or a disclosure without --from, fails (its
    figures were not recomputed) unless --signature-only asks for that weaker check by name.

    Exits 0 only when no report has an error-level finding and every claim is supported; 1 otherwise.
    """
    from bench import audit as au
    from bench.report import aggregate as agg
    from bench.report.store import dumps

    for claim in claims:
        try:
            agg.parse_claim(claim)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--claim") from None
    trusted = trusted_keys(trusted_path)
    auditor = auditor_key_id(auditor_path, trusted)
    if proof_paths and auditor is None:
        raise click.UsageError("--proof needs --auditor-key: a proof counts only when the auditor's own key signed it")
    if claims and proof_paths and max_age is None:
        raise click.UsageError("--claim with --proof needs --max-age (e.g. --max-age 7d): a claim is about capacity now, "
                               "and without it a proof or node report of any age would support one")  # fmt: skip
    aggregators, operators = (
        trusted_keys(aggregator_path, "--aggregator-keys"),
        trusted_keys(operator_path, "--operator-keys"),
    )
    result = au.audit(list(paths), trusted=trusted, max_age=max_age, reports_dir=reports_dir, claims=claims,
                      proof_paths=proof_paths, auditor=auditor, from_dir=from_dir, aggregators=aggregators,
                      operators=operators)  # fmt: skip
    if not signature_only:
        decisive(result.results)
    if as_json:
        click.echo(dumps(result.to_dict()), nl=False)
    else:
        out = stdout()
        out.print(findings_table(result.results, signature_only=signature_only))
        if any(result.tiers.values()):
            out.print(tiers_table(result.tiers))
        for fleet in result.views:
            if fleet.view:
                out.print(totals_table(fleet.view, result.proven_totals(fleet.view)))
        if result.claims:
            out.print(claims_table(result.claims))
    failed = result.failed
    if result.unsupported and not failed:
        fail("; ".join(f"claim '{c['claim']}': reported {_pf(c['reported_tflops'])}, bounded {_pf(c['bounded_tflops'])}, "
                       f"proven {_pf(c['proven_tflops'])} PFLOPS {c['precision']}: {c['verdict']}"
                       for c in result.unsupported))  # fmt: skip
    if signature_only and result.not_recomputed and not as_json:
        click.echo(f"not recomputed (signature only; their figures and tiers are unverified): "
                   f"{', '.join(result.not_recomputed)}", err=True)  # fmt: skip
    if failed:
        fail(f"{len(failed)} of {len(result.results)} reports failed verification: {', '.join(failed)}")
