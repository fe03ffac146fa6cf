"""What `bench verify` does, as a library call: read each file given (node report, capacity report, disclosure), check
it, say the tier of every figure, hold proofs to the auditor's key and test claims against the proven tier.

The verb only parses options, calls `audit` and prints the result (tables or JSON); anyone scripting an audit gets
the same findings, tiers, totals and claim checks from here. No torch, no terminal output.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.model import intake
from bench.report import aggregate as agg
from bench.report import proofs
from bench.report import verify as v

NO_TRUSTED_KEYS = "no --trusted-keys: who signed the node reports is unchecked"


def load_json(path: Path, root: Path | None = None) -> Any:
    """Parsed JSON read through bench.model.intake (regular files only, size-capped, strict), or the InputError."""
    try:
        return intake.read_json(path, root=root).data
    except intake.InputError as exc:
        return exc


def node_report_files(directory: Path) -> list[tuple[str, Path]]:
    """Every JSON file under `directory`: the capacity report's inputs are found among them by digest (each file is
    read, canonicalized and verified once, in parallel, during the recomputation)."""
    return [(str(path), path) for path in sorted(directory.rglob("*.json"))]


def counted_devices(view: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Precision -> {device UUID counted in the view: its peak TFLOPS by bench's own table for the model its node
    report names (None when bench has none)}: a proven bound is capped at it."""
    out: dict[str, dict[str, float | None]] = {}
    for d in view["devices"]:
        peak = d.get("peak_tflops")
        peak = float(peak) if isinstance(peak, (int, float)) and not isinstance(peak, bool) else None
        out.setdefault(d["precision"], {})[d["device"]] = peak
    return out


def reporters(view: dict[str, Any]) -> dict[str, dict[str, set[tuple[str | None, str | None]]]]:
    """Precision -> {device UUID counted in the view: the (signing key id, host name) of the node report counting it}:
    whose proven bound may count for it (proofs.Proven.owned)."""
    signer = {e.get("digest"): e.get("key_id") for e in view.get("inputs") or [] if isinstance(e, dict)}
    out: dict[str, dict[str, set[tuple[str | None, str | None]]]] = {}
    for d in view["devices"]:
        owner = (signer.get(d.get("report")), d.get("node"))
        out.setdefault(d["precision"], {}).setdefault(d["device"], set()).add(owner)
    return out


@dataclass
class View:
    """A fleet a claim is tested against: a capacity report's recomputed view, or the node reports given themselves;
    `why_not` says why its figures cannot support a claim (None when they can)."""

    name: str
    view: dict[str, Any] | None
    why_not: str | None


@dataclass
class Audit:
    """Everything `bench verify` found: per-file findings, per-figure tiers of node reports, the fleets seen (with
    proven totals from the proofs), and each claim's check."""

    proven: proofs.Proven
    results: dict[str, list[v.Finding]] = field(default_factory=dict)
    tiers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    views: list[View] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)

    def proven_totals(self, view: dict[str, Any]) -> dict[str, float]:
        """Per precision, what the proofs prove of this fleet: only bounds owned by the reports counting each device."""
        return self.proven.owned(reporters(view))[0].totals(counted_devices(view))

    def totals(self) -> dict[str, list[dict[str, Any]]]:
        """Per fleet seen: its totals per precision, each with the proven TFLOPS the proofs support."""
        return {
            fleet.name: [
                {**t, "proven_tflops": self.proven_totals(fleet.view).get(t["precision"], 0.0)}
                for t in fleet.view["totals"]
            ]
            for fleet in self.views
            if fleet.view
        }

    @property
    def failed(self) -> list[str]:
        return [p for p, fs in self.results.items() if v.errors(fs)]

    @property
    def unsupported(self) -> list[dict[str, Any]]:
        return [c for c in self.claims if not c["supported"]]

    @property
    def not_recomputed(self) -> list[str]:
        failed = set(self.failed)
        return [p for p, fs in self.results.items() if any(f.code == "not-recomputed" for f in fs) and p not in failed]

    def to_dict(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "reports": {p: [f.to_dict() for f in fs] for p, fs in self.results.items()},
            "tiers": self.tiers,
            "totals": self.totals(),
        }
        if self.claims:
            payload["claims"] = self.claims
        return payload


def _node_report(data: Any, trusted: set[str] | None, max_age: Any) -> tuple[list[v.Finding], list[dict[str, Any]], tuple[Any, ...] | None]:  # fmt: skip
    """One node report: findings, the tier of each figure, and (for a claim over node reports) its examined entry."""
    findings, name, report = v.examine(data, trusted=trusted, max_age=max_age)
    if report is None or v.errors(findings):
        return findings, [], None
    return findings, v.measurement_tiers(report, data, trusted=trusted, max_age=max_age), (str(name), data)


def audit(
    paths: list[Path],
    *,
    trusted: set[str] | None = None,
    max_age: dt.timedelta | None = None,
    reports_dir: Path | None = None,
    claims: tuple[str, ...] = (),
    proof_paths: tuple[Path, ...] = (),
    auditor: str | None = None,
    from_dir: Path | None = None,
    aggregators: set[str] | None = None,
    operators: set[str] | None = None,
) -> Audit:
    """Check every file in `paths`; one hostile file is one failed entry, never the end of the audit. Claims are
    parsed by the caller (agg.parse_claim) so that a malformed one is a usage error before anything is read."""
    result = Audit(proven=proofs.read(list(proof_paths), {auditor} if auditor else set(), max_age=max_age))
    node_reports = node_report_files(reports_dir) if reports_dir else None
    verified_nodes: list[tuple[str, Any]] = []
    for path in paths:
        name = str(path)
        data = load_json(path)
        if isinstance(data, Exception):
            result.results[name] = [v.Finding(v.ERROR, "unreadable", str(data))]
        elif isinstance(data, dict) and data.get("kind") == "bench.disclosure":  # re-derived from the level below
            from bench.disclosure.document import examine as verify_disclosure

            result.results[name] = verify_disclosure(data, from_dir, name, auditor=auditor, trusted=trusted,
                                                     aggregators=aggregators, operators=operators)  # fmt: skip
        elif isinstance(data, dict) and data.get("kind") == agg.CAPACITY_KIND:
            try:
                result.results[name], view = agg.audit_capacity(data, node_reports, trusted, max_age=max_age)
            except Exception as exc:  # noqa: BLE001 - one hostile file is one failed entry, never the end of the run
                result.results[name], view = [v.Finding(v.ERROR, "unchecked", f"{type(exc).__name__}: {exc}")], None
            why = (
                "no --reports: the capacity was not recomputed" if node_reports is None
                else NO_TRUSTED_KEYS if trusted is None
                else "the capacity report failed verification" if v.errors(result.results[name])
                else None
            )  # fmt: skip
            result.views.append(View(name, view, why))
        else:
            try:
                result.results[name], result.tiers[name], entry = _node_report(data, trusted, max_age)
            except Exception as exc:  # noqa: BLE001 - one hostile file is one failed entry, never the end of the run
                result.results[name], entry = [v.Finding(v.ERROR, "unchecked", f"{type(exc).__name__}: {exc}")], None
            if entry is not None:
                verified_nodes.append(entry)
    if proof_paths:
        result.results.update({f.where: [f] for f in result.proven.findings})
    if claims and not result.views:  # a claim over the node reports themselves: their fleet, built the aggregator's way
        now = dt.datetime.now(dt.UTC)
        examined, _ = agg.examine_all(verified_nodes, now=now)
        max_age_s = max_age.total_seconds() if max_age else None
        audited = agg.apply_policy(examined, trusted=trusted, max_age_s=max_age_s, now=now)
        fleet = agg.build(audited, rules=agg.Rules(), trusted=trusted, now=now)
        result.views.append(View("node reports", fleet, NO_TRUSTED_KEYS if trusted is None else None))
    for fleet in result.views:
        if fleet.view and proof_paths:
            owned, excess = result.proven.owned(reporters(fleet.view))
            excess += owned.excess(counted_devices(fleet.view))
            if excess:
                result.results.setdefault(f"proofs against {fleet.name}", []).extend(excess)
    for fleet in result.views:
        totals = result.proven_totals(fleet.view) if fleet.view else {}
        result.claims += [
            {"report": fleet.name, **agg.check_claim(fleet.view, c, proven=totals, claimable=fleet.why_not is None,
                                                     why_not=fleet.why_not)}
            for c in claims
        ]  # fmt: skip
    return result
