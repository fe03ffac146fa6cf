"""`bench verify`: check node reports (and capacity reports) the way an auditor would."""

from __future__ import annotations

import datetime as dt
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


def load_json(path: Path, root: Path | None = None) -> Any:
    """Parsed JSON read through bench.report.intake (regular files only, size-capped, strict), or the InputError."""
    from bench.report import intake

    try:
        return intake.read_json(path, root=root).data
    except intake.InputError as exc:
        return exc


def _node_reports(directory: Path) -> list[tuple[str, Path]]:
    """Every JSON file under `directory`: the capacity report's inputs are found among them by digest (each file is
    read, canonicalized and verified once, in parallel, during the recomputation)."""
    return [(str(path), path) for path in sorted(directory.rglob("*.json"))]


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


def findings_table(results: dict[str, list[v.Finding]]) -> Table:
    from bench.report import verify as v

    table = Table(title="verification")
    for col in ("report", "verdict", "severity", "check", "where", "finding"):
        table.add_column(col, overflow="fold", no_wrap=col in ("severity", "check", "verdict"))
    for path, findings in results.items():
        verdict = ("FAIL" if v.errors(findings) else "NOT RECOMPUTED"
                   if any(f.code == "not-recomputed" for f in findings) else "pass")  # fmt: skip
        style = {"FAIL": "bold red", "pass": "green"}.get(verdict, "yellow")
        if not findings:
            table.add_row(path, verdict, "-", "-", "-", "all checks passed", style=style)
        for f in findings:
            table.add_row(path, verdict, f.severity, f.code, f.where, f.message,
                          style="bold red" if f.severity == v.ERROR else None)  # fmt: skip
    return table


def _counted_devices(view: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Precision -> {device UUID counted in the view: its peak TFLOPS by bench's own table for the model its node
    report names (None when bench has none)}: a proven bound is capped at it."""
    out: dict[str, dict[str, float | None]] = {}
    for d in view["devices"]:
        peak = d.get("peak_tflops")
        peak = float(peak) if isinstance(peak, (int, float)) and not isinstance(peak, bool) else None
        out.setdefault(d["precision"], {})[d["device"]] = peak
    return out


def _check(data: Any, trusted: set[str] | None, max_age: Any) -> tuple[list[v.Finding], list[dict[str, Any]], tuple[Any, ...] | None]:
    """One node report: findings, the tier of each figure, and (for a claim over node reports) its examined entry."""
    from bench.report import verify as v

    findings, name, report = v.examine(data, trusted=trusted, max_age=max_age)
    if report is None or v.errors(findings):
        return findings, [], None
    return findings, v.measurement_tiers(report, data, trusted=trusted, max_age=max_age), (str(name), data)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@trusted_keys_option("File of trusted node key ids or base64 public keys, one per line ('#' comments). Unknown keys "
                     "fail.")
@max_age_option("Oldest acceptable report, e.g. 7d, 12h.")
@click.option("--reports", "reports_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Capacity reports: the directory of node reports to recompute them from.")
@click.option("--claim", "claims", multiple=True,
              help="A claim to test, e.g. '100 PFLOPS bf16' (TFLOPS/PFLOPS/EFLOPS), against a capacity report or the "
                   "node reports given. Supported only by the proven tier (--proof). Repeatable.")
@click.option("--proof", "proof_paths", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A challenge proof from `bench challenge verify --proof` (signed by --auditor-key). Repeatable.")
@auditor_key_option("The auditor's key (private, or its .pub): the only key whose proofs count.")
@click.option("--from", "from_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Disclosures: the folder of capacity reports, proofs and child disclosures to re-derive them from.")
@json_option("the findings, tiers and claim checks")
def verify(paths: tuple[Path, ...], trusted_path: Path | None, max_age: Any, reports_dir: Path | None,
           claims: tuple[str, ...], proof_paths: tuple[Path, ...], auditor_path: Path | None,
           from_dir: Path | None, as_json: bool) -> None:  # fmt: skip
    """Verify node reports: signature and key, schema, every figure recomputed from the raw samples, figures against
    the physical peak, correctness checks, timestamps, and that measured devices are in the inventory; then say the
    tier of every figure: reported, bounded or proven (README, "What bench proves, and what it does not").

    A capacity report (from bench aggregate) is checked for its signature and, with --reports, recomputed from the node
    reports it lists; every node report it counted must also pass this auditor's --trusted-keys and --max-age.

    --claim says whether a claimed figure is supported: only a proven tier (a verified challenge, --proof signed by
    --auditor-key) supports one; otherwise the answer gives reported, bounded and proven figures and "claim unproven".

    Exits 0 only when no report has an error-level finding and every claim is supported; 1 otherwise.
    """
    from bench.report import aggregate as agg
    from bench.report import proofs
    from bench.report import verify as v
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
    proven = proofs.read(list(proof_paths), {auditor} if auditor else set(), max_age=max_age)
    node_reports = _node_reports(reports_dir) if reports_dir else None
    results: dict[str, list[v.Finding]] = {}
    tiers: dict[str, list[dict[str, Any]]] = {}
    claim_results: list[dict[str, Any]] = []
    views: list[tuple[str, dict[str, Any] | None, str | None]] = []
    verified_nodes: list[tuple[str, Any]] = []
    for path in paths:
        data = load_json(path)
        if isinstance(data, Exception):
            results[str(path)] = [v.Finding(v.ERROR, "unreadable", str(data))]
        elif isinstance(data, dict) and data.get("kind") == "bench.disclosure":  # re-derived from the level below
            from bench.disclosure.document import examine as verify_disclosure

            results[str(path)] = verify_disclosure(data, from_dir, str(path), auditor=auditor, trusted=trusted)
        elif isinstance(data, dict) and data.get("kind") == agg.CAPACITY_KIND:
            try:
                results[str(path)], view = agg.audit_capacity(data, node_reports, trusted, max_age=max_age)
            except Exception as exc:  # noqa: BLE001 - one hostile file is one failed entry, never the end of the run
                results[str(path)], view = [v.Finding(v.ERROR, "unchecked", f"{type(exc).__name__}: {exc}")], None
            why = ("no --reports: the capacity was not recomputed" if node_reports is None
                   else "no --trusted-keys: who signed the node reports is unchecked" if trusted is None
                   else "the capacity report failed verification" if v.errors(results[str(path)]) else None)  # fmt: skip
            views.append((str(path), view, why))
        else:
            try:
                results[str(path)], tiers[str(path)], entry = _check(data, trusted, max_age)
            except Exception as exc:  # noqa: BLE001 - one hostile file is one failed entry, never the end of the run
                results[str(path)], entry = [v.Finding(v.ERROR, "unchecked", f"{type(exc).__name__}: {exc}")], None
            if entry is not None:
                verified_nodes.append(entry)
    if proof_paths:
        results.update({f.where: [f] for f in proven.findings})
    if claims and not views:  # a claim over the node reports themselves: their fleet, built the aggregator's way
        now = dt.datetime.now(dt.UTC)
        examined, _ = agg.examine_all(verified_nodes, now=now)
        audited = agg.apply_policy(examined, trusted=trusted, max_age_s=max_age.total_seconds() if max_age else None, now=now)
        views.append(("node reports", agg.build(audited, rules=agg.Rules(), trusted=trusted, now=now),
                      "no --trusted-keys: who signed the node reports is unchecked" if trusted is None else None))  # fmt: skip
    for name, view, _ in views:
        if view and proof_paths:
            excess = proven.excess(_counted_devices(view))
            if excess:
                results.setdefault(f"proofs against {name}", []).extend(excess)
    for name, view, why in views:
        totals = proven.totals(_counted_devices(view)) if view else {}
        claim_results += [{"report": name, **agg.check_claim(view, c, proven=totals, claimable=why is None, why_not=why)}
                          for c in claims]  # fmt: skip
    if as_json:
        payload: dict[str, Any] = {"reports": {p: [f.to_dict() for f in fs] for p, fs in results.items()}, "tiers": tiers}
        payload["totals"] = {name: [{**t, "proven_tflops": proven.totals(_counted_devices(view)).get(t["precision"], 0.0)}
                                    for t in view["totals"]] for name, view, _ in views if view}  # fmt: skip
        if claim_results:
            payload["claims"] = claim_results
        click.echo(dumps(payload), nl=False)
    else:
        out = stdout()
        out.print(findings_table(results))
        if any(tiers.values()):
            out.print(tiers_table(tiers))
        for _, view, _ in views:
            if view:
                out.print(totals_table(view, proven.totals(_counted_devices(view))))
        if claim_results:
            out.print(claims_table(claim_results))
    failed = [p for p, fs in results.items() if v.errors(fs)]
    unsupported = [c for c in claim_results if not c["supported"]]
    if unsupported and not failed:
        fail("; ".join(f"claim '{c['claim']}': reported {_pf(c['reported_tflops'])}, bounded {_pf(c['bounded_tflops'])}, "
                       f"proven {_pf(c['proven_tflops'])} PFLOPS {c['precision']}: {c['verdict']}" for c in unsupported))  # fmt: skip
    unchecked = [p for p, fs in results.items() if any(f.code == "not-recomputed" for f in fs) and p not in failed]
    if unchecked and not as_json:
        click.echo(f"not recomputed (signature only; their figures and tiers are unverified): {', '.join(unchecked)}",
                   err=True)  # fmt: skip
    if failed:
        fail(f"{len(failed)} of {len(results)} reports failed verification: {', '.join(failed)}")
