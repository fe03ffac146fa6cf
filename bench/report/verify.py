"""Independent verification of node reports: every check an auditor needs, as findings with a severity.

Nothing in a report is taken on trust that can be re-derived: the signature covers the bytes, the raw samples are
tied to their digest, every summary figure is recomputed from the samples, every figure is held against the physical
peak from bench's own table (not the peak the report claims), and every measured device must be in the inventory.
A report that a node re-signed after editing figures or samples therefore fails on re-derivation, not only on trust.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from bench.hardware import peaks
from bench.report import sign
from bench.report.model import Measurement, NodeReport, ReportError
from bench.workloads import comm as cm
from bench.workloads import matmul as mm
from bench.workloads import matmul_search as ms
from bench.workloads import membw as mb
from bench.workloads import train as tr

#: Clock skew allowed before a timestamp counts as "in the future".
CLOCK_SKEW = dt.timedelta(minutes=5)
#: Relative tolerance when comparing a stored figure with its recomputation (they come from the same arithmetic).
REL_TOL = 1e-9

ERROR, WARNING, INFO = "error", "warning", "info"


@dataclass(frozen=True)
class Finding:
    severity: str
    code: str
    message: str
    where: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def parse_duration(text: str) -> dt.timedelta:
    """'90s', '30m', '12h', '7d', '2w' -> timedelta; ValueError naming the valid forms."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; use a number with s, m, h, d or w (e.g. 7d)")
    value, unit = float(match.group(1)), match.group(2)
    return dt.timedelta(seconds=value * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit])


def parse_utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-300)
    return a == b


def reference_peak(m: Measurement, inventory: dict[str, Any]) -> tuple[peaks.Peak | None, list[Finding]]:
    """The peak bench itself would use for this measurement: the vendor table for GPUs, the CPU formula from the
    report's host inventory (with the report's own clock / FMA overrides, which are flagged)."""
    precision = m.spec.get("precision", "")
    if m.device.get("kind") == "cuda":
        return peaks.vendor_peak(m.device.get("name") or "", precision), []
    assumptions = (m.peak or {}).get("assumptions", {})
    clock = assumptions.get("clock_mhz") if assumptions.get("clock_source") == "--cpu-clock-mhz" else None
    units = assumptions.get("fma_units") if assumptions.get("fma_units_source") == "--fma-units" else None
    findings = []
    if clock or units:
        findings.append(Finding(WARNING, "peak-override", f"CPU peak uses the node's own overrides (clock {clock} MHz, "
                                f"FMA units {units}): efficiency is only as good as they are"))  # fmt: skip
    return peaks.cpu_peak(inventory.get("host", {}), precision, clock_mhz=clock, fma_units=units), findings


def _check_measurement(
    m: Measurement, raw: dict[str, Any], inventory: dict[str, Any], where: str, samples_checked: bool = False
) -> list[Finding]:
    out: list[Finding] = []
    # a valid signature has already checked every sample digest; otherwise say which measurement's samples differ
    if not samples_checked and raw.get("samples_sha256") != sign.samples_digest(m.warmup_s, m.samples_s):
        out.append(Finding(ERROR, "samples-digest", "raw samples do not match their SHA-256", where))
    # the device must be one the inventory lists
    host, gpus = inventory.get("host", {}), inventory.get("nvml", {}).get("gpus", [])
    if m.device.get("kind") == "cuda":
        if m.device.get("uuid") not in {g.get("uuid") for g in gpus}:
            out.append(Finding(ERROR, "unknown-device", f"{m.device.get('id')} ({m.device.get('uuid')}) is not in the "
                               "report's GPU inventory", where))  # fmt: skip
    elif m.device.get("uuid") != host.get("fingerprint"):
        out.append(Finding(ERROR, "unknown-device", "CPU measurement does not carry this host's fingerprint", where))
    if m.status not in ("ok", "invalid"):
        return out
    world = m.spec.get("world_size", 1)
    spec = m.spec
    if m.workload == "matmul" and m.flops_per_iteration != mm.flops(spec.get("m", 0), spec.get("n", 0), spec.get("k", 0)):
        out.append(Finding(ERROR, "flops-mismatch", f"flops_per_iteration {m.flops_per_iteration} is not 2*M*N*K", where))
    if m.workload == "train":
        try:
            fields = {k: val for k, val in spec.items() if k != "world_size"}
            expected_flops = tr.flops_per_step(tr.TrainSpec(**fields)) * spec.get("world_size", 1)
        except (TypeError, ValueError) as exc:
            expected_flops = None
            out.append(Finding(ERROR, "flops-mismatch", f"train spec is not valid: {exc}", where))
        if expected_flops is not None and m.flops_per_iteration != expected_flops:
            out.append(Finding(ERROR, "flops-mismatch", "flops_per_iteration differs from the analytic count", where))
    passed = (m.validity or {}).get("passed")
    if (m.status == "ok") != (passed is True):
        out.append(Finding(ERROR, "validity", f"status {m.status!r} but the correctness check says passed={passed!r}", where))

    peak, notes = reference_peak(m, inventory)
    out += [Finding(f.severity, f.code, f.message, where) for f in notes]
    recorded_peak = (m.peak or {}).get("tflops")
    if m.workload == "train":
        expected = tr.figures(m.samples_s, m.flops_per_iteration, m.details.get("items_per_step", 0), recorded_peak)
    elif m.workload == "comm":
        try:
            expected = cm.figures(m.samples_s, m.spec.get("bytes", 0), m.spec.get("op", ""), m.spec.get("world_size", 1))
        except ValueError as exc:
            return [*out, Finding(ERROR, "schema", f"comm spec: {exc}", where)]
    elif m.workload == "membw":
        expected = mb.figures(m.samples_s, m.flops_per_iteration, (m.peak or {}).get("tbps"))
    else:
        expected = mm.derived_figures(m.samples_s, m.flops_per_iteration, recorded_peak)
    stored = m.summary or {}
    wrong = sorted(k for k in set(expected) | set(stored) if not _close(expected.get(k), stored.get(k)))
    if wrong:
        out.append(Finding(ERROR, "figure-mismatch", f"{', '.join(wrong)} differ from their recomputation from the raw "
                           "samples", where))  # fmt: skip
    if "msmf" in m.details:
        redo = ms.msmf(m.samples_s, m.flops_per_iteration)
        if not _close(redo["tflops"], m.details["msmf"].get("tflops")):
            out.append(Finding(ERROR, "figure-mismatch", "MSMF differs from its recomputation from the raw samples", where))
    if peak is None:
        return out
    if world > 1:  # a data-parallel total is bounded by world_size devices' peak
        peak = peaks.Peak(peak.tflops * world, peak.kind, peak.source, peak.model, peak.unverified, peak.assumptions)
    if recorded_peak is not None and not _close(recorded_peak, peak.tflops):
        out.append(Finding(WARNING, "peak-differs", f"report's peak {recorded_peak:.4g} TFLOPS, bench's {peak.tflops:.4g}", where))
    best = max(expected["tflops_best"], (m.details.get("msmf") or {}).get("tflops", 0.0))
    if best > peak.tflops * (1 + peaks.IMPLAUSIBLE_TOLERANCE):
        if peak.unverified:  # an estimate (e.g. a CPU whose max clock is unknown) bounds nothing: say so, don't reject
            out.append(Finding(WARNING, "above-estimated-peak", f"{best:.4g} TFLOPS is {best / peak.tflops:.0%} of the "
                               f"estimated peak {peak.tflops:.4g} ({peak.model}, {peak.source}; unverified: "
                               f"{peak.assumptions.get('clock_source', 'unverified table row')})", where))  # fmt: skip
        else:
            out.append(Finding(ERROR, "implausible", f"{best:.4g} TFLOPS is {best / peak.tflops:.0%} of the physical "
                               f"peak {peak.tflops:.4g} ({peak.model}, {peak.source})", where))  # fmt: skip
    return out


def verify_node_report(
    data: Any,
    *,
    trusted: set[str] | None = None,
    max_age: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> list[Finding]:
    """Every check on one node report's parsed JSON; the report passes when no finding is an error."""
    return verify_and_digest(data, trusted=trusted, max_age=max_age, now=now)[0]


def verify_and_digest(
    data: Any,
    *,
    trusted: set[str] | None = None,
    max_age: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> tuple[list[Finding], str | None]:
    """verify_node_report's findings and the report's digest (sign.digest), canonicalizing the report only once."""
    findings, name, _ = examine(data, trusted=trusted, max_age=max_age, now=now)
    return findings, name


def examine(
    data: Any,
    *,
    trusted: set[str] | None = None,
    max_age: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> tuple[list[Finding], str | None, NodeReport | None]:
    """Findings, digest and the parsed report (None when it does not parse), in one pass."""
    now = now or dt.datetime.now(dt.UTC)
    if not isinstance(data, dict):
        return [Finding(ERROR, "schema", "report should be a JSON object")], None, None
    out: list[Finding] = []
    valid, why, name = sign.inspect(data)
    if not valid:
        out.append(Finding(ERROR, "signature", why))
    try:
        report = NodeReport.from_dict(data)
    except ReportError as exc:
        return [*out, Finding(ERROR, "schema", str(exc))], name, None
    kid = (report.signature or {}).get("key_id")
    if kid and trusted is not None and kid not in trusted:
        out.append(Finding(ERROR, "untrusted-key", f"signed by key {kid}, which is not in the trust list"))
    elif kid and trusted is None:
        out.append(Finding(WARNING, "unknown-key", f"signed by key {kid}; no trust list given, so who signed is unchecked"))
    try:
        start = parse_utc(report.start_utc)
        end = parse_utc(report.end_utc) if report.end_utc else None
    except ValueError as exc:
        return [*out, Finding(ERROR, "timestamp", f"unreadable timestamp: {exc}")], name, report
    latest = end or start
    if latest > now + CLOCK_SKEW:
        out.append(Finding(ERROR, "future", f"report ends {latest.isoformat()}, after now ({now.isoformat()})"))
    if end and end < start:
        out.append(Finding(ERROR, "timestamp", "end_utc is before start_utc"))
    if max_age is not None and now - latest > max_age:
        out.append(Finding(ERROR, "stale", f"report is {now - latest} old, more than --max-age {max_age}"))
    if end is None or report.interrupted:
        out.append(Finding(WARNING, "partial", "the run did not complete (interrupted or still running)"))
    for i, (m, raw) in enumerate(zip(report.measurements, data["measurements"], strict=True)):
        out += _check_measurement(m, raw, report.inventory, f"measurements[{i}]", samples_checked=valid)
    return out, name, report


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == ERROR]
