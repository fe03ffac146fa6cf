"""Independent verification of node reports: every check an auditor needs, as findings with a severity.

Nothing in a report is taken on trust that can be re-derived: the signature covers the bytes, the raw samples are
tied to their digest, every summary figure is recomputed from the samples, every figure is held against the physical
peak from bench's own table (not the peak the report claims), and every measured device must be in the inventory.
A report that a node re-signed after editing figures or samples therefore fails on re-derivation, not only on trust.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Any

from bench import figures, registry
from bench.hardware import peaks
from bench.model import sign
from bench.model.reports import Measurement, NodeReport, ReportError, parse_timestamp
from bench.model.samples import samples_digest

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
    """An ISO 8601 timestamp as UTC; ValueError (a ReportError) when it is unreadable or names no time zone."""
    return parse_timestamp(text, "timestamp")


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-300)
    return a == b


#: No CPU core has shipped above this clock (boost included); a clock or inventory beyond it is not physics.
CPU_MAX_CLOCK_MHZ = 6500.0
#: More physical cores than this in one host is not a machine bench knows.
CPU_MAX_CORES = 1024

#: The tiers a figure can have, lowest first (docs/proofs.md, "What bench proves, and what it does not").
REPORTED, BOUNDED, PROVEN = "reported", "bounded", "proven"
TIERS = (REPORTED, BOUNDED, PROVEN)


def _overrides(m: Measurement) -> tuple[Any, Any]:
    assumptions = (m.peak or {}).get("assumptions") or {}
    clock = assumptions.get("clock_mhz") if assumptions.get("clock_source") == peaks.Source.OVERRIDE else None
    units = assumptions.get("fma_units") if assumptions.get("fma_units_source") == peaks.Source.OVERRIDE else None
    return clock, units


def _host(inventory: dict[str, Any]) -> dict[str, Any]:
    host = inventory.get("host")
    return host if isinstance(host, dict) else {}


def _gpus(inventory: dict[str, Any]) -> list[dict[str, Any]]:
    nvml = inventory.get("nvml")
    gpus = nvml.get("gpus") if isinstance(nvml, dict) else None
    return [g for g in gpus if isinstance(g, dict)] if isinstance(gpus, list) else []


def _model(device_name: str) -> str | None:
    """The peak-table model a device name maps to (None when bench has no row): what "the same model" means."""
    row = peaks.find_model(device_name)
    return row["model"] if row else None


#: (inventory, {uuid: (gpu, MIG instance or None)}) while a report's checks run (indexed): its GPUs looked up by
#: UUID instead of scanned, for every measurement, several times each.
_INDEXED: list[tuple[dict[str, Any], dict[Any, tuple[Any, Any]], dict[tuple[int, str], Any]]] = []


def indexed(inventory: dict[str, Any]) -> _Indexed:
    """While the block runs, inventory_gpu answers for this inventory from an index built once (the same answers:
    the first GPU, or MIG instance after its GPU, whose UUID equals, in inventory order), and a measurement's table
    peak is computed once (_cuda_peak). Neither the inventory nor the measurements checked against it may change
    inside the block. Inside retained(), a later block over the same inventory takes up the first one's index and
    peaks."""
    return _Indexed(inventory)


class _Indexed:
    """indexed()'s block, as a class: a generator context manager cost a report's checks ~2 us a block (three a
    report with retained's), this a tenth of it. Entering pushes the entry and leaving pops it, whatever is raised."""

    __slots__ = ("inventory",)

    def __init__(self, inventory: dict[str, Any]) -> None:
        self.inventory = inventory

    def __enter__(self) -> None:
        inventory = self.inventory
        kept = _RETAINED[-1] if _RETAINED else None
        if kept is not None and kept[0] is inventory:
            _INDEXED.append(kept)
            return
        index: dict[Any, tuple[Any, Any]] = {}
        for gpu in _gpus(inventory):
            uuid = gpu.get("uuid")
            if uuid is None or type(uuid) is str:
                index.setdefault(uuid, (gpu, None))
            migs = gpu.get("mig_devices")
            for mig in migs if isinstance(migs, list) else []:
                uuid = mig.get("uuid") if isinstance(mig, dict) else 0
                if uuid is None or type(uuid) is str:
                    index.setdefault(uuid, (gpu, mig))
        entry = (inventory, index, {})
        if kept is not None and kept[0] is None:
            _RETAINED[-1] = entry
        _INDEXED.append(entry)

    def __exit__(self, *exc: object) -> None:
        _INDEXED.pop()


#: Inside retained(): the first indexed() entry made there (None until one is), for later blocks over its inventory.
_RETAINED: list[Any] = []


def retained() -> _Retained:
    """While the block runs, the first indexed(inventory) block inside it keeps its index and peaks for later blocks
    over the same inventory object (examine's checks, then the device rows of the report it returned: the peaks
    computed once a report, not once for each). The caller keeps that report, its inventory and its measurements
    alive and unchanged until the block ends (the peaks are keyed by the measurements' ids)."""
    return _RETAINED_BLOCK


class _Retained:
    """retained()'s block, as a class (see _Indexed): one shared instance, its state on the _RETAINED stack."""

    __slots__ = ()

    def __enter__(self) -> None:
        _RETAINED.append((None, None, None))

    def __exit__(self, *exc: object) -> None:
        _RETAINED.pop()


_RETAINED_BLOCK = _Retained()


def inventory_gpu(inventory: dict[str, Any], uuid: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the inventory's GPU, its MIG instance or None) that a measured device UUID names: a whole GPU by its GPU- UUID,
    or a MIG instance by its MIG- UUID among its GPU's `mig_devices`. (None, None) when the inventory lists neither."""
    if _INDEXED and _INDEXED[-1][0] is inventory and (uuid is None or type(uuid) is str):
        return _INDEXED[-1][1].get(uuid, (None, None))
    for gpu in _gpus(inventory):
        if gpu.get("uuid") == uuid:
            return gpu, None
        migs = gpu.get("mig_devices")
        for mig in migs if isinstance(migs, list) else []:
            if isinstance(mig, dict) and mig.get("uuid") == uuid:
                return gpu, mig
    return None, None


def _cuda_facts(m: Measurement, inventory: dict[str, Any]) -> SimpleNamespace | None:
    """The device facts peaks.peak_for needs for a measured GPU, from the report's inventory where NVML recorded them:
    a MIG instance's SM count from its slice (its share of the GPU's peak), None for a whole GPU shared out as MIG
    slices (it is measured through them, never also whole)."""
    name = m.device.get("name") or ""
    gpu, mig = inventory_gpu(inventory, m.device.get("uuid"))
    migs = gpu.get("mig_devices") if gpu else None
    if mig is None and not m.device.get("mig"):
        return (
            None
            if isinstance(migs, list) and migs
            else SimpleNamespace(kind="cuda", name=name, mig=False, sm_count=None)
        )
    sm_count = (mig or {}).get("sm_count") or m.device.get("sm_count")
    sm_count = sm_count if isinstance(sm_count, int) and not isinstance(sm_count, bool) and sm_count > 0 else None
    if isinstance(migs, list) and not peaks.mig_slices_fit(
            name, [s.get("sm_count") if isinstance(s, dict) else None for s in migs]):  # fmt: skip
        sm_count = None  # slices that together claim more SMs than the GPU has: none of them is bounded
    return SimpleNamespace(kind="cuda", name=name, mig=True, sm_count=sm_count)


def _cuda_peak(m: Measurement, inventory: dict[str, Any], precision: str) -> peaks.Peak | None:
    """The table peak of a measured GPU; inside indexed(inventory) computed once per measurement and precision (the
    checks, the tier and the device row each ask for it), the measurements being left unchanged there too."""
    known = _INDEXED[-1][2] if _INDEXED and _INDEXED[-1][0] is inventory else None
    if known is not None and (id(m), precision) in known:
        return known[id(m), precision]
    facts = _cuda_facts(m, inventory)
    if facts is None:
        peak = None
    elif type(facts.name) is str and type(precision) is str:  # hashable facts (a model's checked fields are)
        peak = _table_peak(facts.name, facts.mig, facts.sm_count, precision)
    else:
        peak = peaks.peak_for(facts, {}, precision)
    if known is not None:
        known[id(m), precision] = peak
    return peak


@functools.lru_cache(maxsize=4096)
def _table_peak(name: str, mig: bool, sm_count: int | None, precision: Any) -> peaks.Peak | None:
    """peaks.peak_for of a GPU with these facts (what _cuda_facts gives it): a pure function of them and of the
    peak table (data shipped with bench, read once), so a fleet's thousands of reports of one model share one answer
    instead of building it for every measurement. Callers only read the Peak (frozen)."""
    return peaks.peak_for(SimpleNamespace(kind="cuda", name=name, mig=mig, sm_count=sm_count), {}, precision)


def reference_peak(m: Measurement, inventory: dict[str, Any]) -> tuple[peaks.Peak | None, list[Finding]]:
    """The peak bench itself would use for this measurement: the vendor table for GPUs, the CPU formula from the
    report's host inventory. A node's own overrides (--cpu-clock-mhz, --fma-units) never enter it: they are the
    node's word, so they are flagged and ignored."""
    precision = m.spec.get("precision", "")
    if m.device.get("kind") == "cuda":
        return _cuda_peak(m, inventory, precision), []
    clock, units = _overrides(m)
    findings = []
    if clock or units:
        findings.append(Finding(WARNING, "peak-override", f"the report's CPU peak uses the node's own overrides (clock "
                                f"{clock} MHz, FMA units {units}); bench checks against the inventory without them, and "
                                "the figure stays 'reported'"))  # fmt: skip
    return peaks.peak_for(SimpleNamespace(kind="cpu"), _host(inventory), precision), findings


#: Every ISA feature bench's CPU formula knows: the ceiling assumes the widest, whatever the inventory says.
_ALL_ISA = {flag: True for flag in ("avx512f", "fma", "amx_bf16", "amx_fp16", "amx_int8", "avx512_bf16", "avx512_fp16",
                                    "avx512_vnni")}  # fmt: skip


def cpu_ceiling(m: Measurement, inventory: dict[str, Any]) -> peaks.Peak | None:
    """What no CPU with this inventory's core count can exceed, whatever clock or ISA it claims: cores (at most
    CPU_MAX_CORES) x CPU_MAX_CLOCK_MHZ x the most FLOPs/cycle any ISA bench knows gives the precision. Above it a
    figure is impossible, not merely above an estimate."""
    cores = _host(inventory).get("physical_cores")
    if not cores:
        return None
    host = {"isa_flags": _ALL_ISA, "max_clock_mhz": CPU_MAX_CLOCK_MHZ, "cpu_model": _host(inventory).get("cpu_model")}
    return peaks.cpu_peak(host, m.spec.get("precision", ""), cores=min(cores, CPU_MAX_CORES))


def figure_tier(m: Measurement, inventory: dict[str, Any], *, trusted_key: bool, fresh: bool) -> tuple[str, str]:
    """(tier, why it is not higher) of one measurement's figures, before fleet uniqueness (see aggregate) and any
    challenge (proven). 'bounded' needs every physical check against bench's own tables to pass on facts that are not
    only the node's word; anything short of that leaves the figure 'reported'."""
    if m.workload != "matmul" or m.status != "ok" or m.emulated:
        return REPORTED, "not a valid native matmul"
    if not trusted_key:
        return REPORTED, "signed by a key outside the auditor's trust list (or no --trusted-keys given)"
    if not fresh:
        return REPORTED, "freshness unchecked (no --max-age given)"
    if m.spec.get("world_size", 1) != 1:
        return REPORTED, "not a matmul on one device"
    precision = m.spec.get("precision", "")
    if m.device.get("kind") == "cuda":
        name = m.device.get("name") or ""
        row = peaks.find_model(name)
        if row is None or _cuda_peak(m, inventory, precision) is None:
            return REPORTED, f"no peak-table row (or MIG share of it) for {name!r} {precision}"
        if row.get("unverified"):
            return REPORTED, f"the peak-table row for {row['model']} is unverified"
        listed, _ = inventory_gpu(inventory, m.device.get("uuid"))
        if listed is None or not listed.get("name") or _model(listed["name"]) != row["model"]:
            return REPORTED, "the device's model does not match the inventory's"
        return BOUNDED, "no challenge answered (proven needs one)"
    if any(_overrides(m)):
        return REPORTED, "the peak relies on the node's own --cpu-clock-mhz / --fma-units"
    host = _host(inventory)
    if not host.get("physical_cores"):
        return REPORTED, "no physical core count in the inventory"
    peak = peaks.peak_for(SimpleNamespace(kind="cpu"), host, precision)
    if peak is None:
        return REPORTED, f"no CPU peak for {precision}"
    if peak.unverified:
        return REPORTED, f"the CPU peak is an estimate ({peak.assumptions.get('clock_source')})"
    return BOUNDED, "no challenge answered (proven needs one)"


def _check_measurement(
    m: Measurement, raw: dict[str, Any], inventory: dict[str, Any], where: str, samples_checked: bool = False
) -> list[Finding]:
    out: list[Finding] = []
    # a valid signature has already checked every sample digest; otherwise say which measurement's samples differ
    if not samples_checked and raw.get("samples_sha256") != samples_digest(m.warmup_s, m.samples_s):
        out.append(Finding(ERROR, "samples-digest", "raw samples do not match their SHA-256", where))
    # the device must be one the inventory lists
    host = _host(inventory)
    if m.device.get("kind") == "cuda":
        listed, _ = inventory_gpu(inventory, m.device.get("uuid"))
        if listed is None:
            out.append(Finding(ERROR, "unknown-device", f"{m.device.get('id')} ({m.device.get('uuid')}) is not in the "
                               "report's GPU inventory", where))  # fmt: skip
        elif listed.get("name") and _model(listed["name"]) != _model(m.device.get("name") or ""):
            out.append(Finding(ERROR, "device-mismatch", f"measured as {m.device.get('name')!r} but the inventory lists "
                               f"{listed['name']!r} for {m.device.get('uuid')}", where))  # fmt: skip
    elif m.device.get("uuid") != host.get("fingerprint"):
        out.append(Finding(ERROR, "unknown-device", "CPU measurement does not carry this host's fingerprint", where))
    if m.status not in ("ok", "invalid"):
        return out
    world = m.spec.get("world_size", 1)
    spec = m.spec
    if m.workload == "matmul" and world != 1:
        # a matmul runs on one device; a world_size would multiply the peak it is held against
        out.append(Finding(ERROR, "world-size", f"a matmul runs on one device, but spec.world_size is {world}", where))
        world = 1
    workload = registry.get(m.workload)
    if workload is None:
        return [*out, Finding(ERROR, "unknown-workload", f"workload {m.workload!r} is not one this bench knows "
                              f"({', '.join(registry.names())}): its figures cannot be re-derived", where)]  # fmt: skip
    if m.work_unit != workload.unit:
        out.append(Finding(ERROR, "work-unit", f"a {m.workload} measurement counts work in {workload.unit}, not "
                           f"{m.work_unit}", where))  # fmt: skip
    if workload.work is not None:
        try:
            expected_work = workload.work(spec)
        except ValueError as exc:
            expected_work = None
            out.append(Finding(ERROR, "flops-mismatch", f"{m.workload} spec is not valid: {exc}", where))
        if expected_work is not None and m.work_per_iteration != expected_work:
            out.append(Finding(ERROR, "flops-mismatch", f"work_per_iteration {m.work_per_iteration} is not what the "
                               f"spec does ({expected_work} {workload.unit}, bench.figures)", where))  # fmt: skip
    passed = (m.validity or {}).get("passed")
    if (m.status == "ok") != (passed is True):
        out.append(
            Finding(ERROR, "validity", f"status {m.status!r} but the correctness check says passed={passed!r}", where)
        )

    peak, notes = reference_peak(m, inventory)
    out += [Finding(f.severity, f.code, f.message, where) for f in notes]
    recorded_peak = (m.peak or {}).get("tflops")
    try:
        expected = workload.summary(m)
    except ValueError as exc:
        return [*out, Finding(ERROR, "schema", f"{m.workload} spec: {exc}", where)]
    stored = m.summary or {}
    # equal dicts hold no figure that differs (equal values are close); else each figure is compared within REL_TOL
    wrong = [] if expected == stored else sorted(k for k in set(expected) | set(stored)
                                                  if not _close(expected.get(k), stored.get(k)))  # fmt: skip
    if wrong:
        out.append(Finding(ERROR, "figure-mismatch", f"{', '.join(wrong)} differ from their recomputation from the raw "
                           "samples", where))  # fmt: skip
    if "msmf" in m.details:
        redo = figures.msmf(m.samples_s, m.work_per_iteration)
        if not _close(redo["tflops"], m.details["msmf"].get("tflops")):
            out.append(
                Finding(ERROR, "figure-mismatch", "MSMF differs from its recomputation from the raw samples", where)
            )
    if peak is None:
        if m.device.get("kind") == "cuda":
            out.append(Finding(WARNING, "unknown-model", f"no peak-table row for {m.device.get('name')!r} "
                               f"{m.spec.get('precision')}: nothing bounds this figure, so it stays 'reported'", where))  # fmt: skip
        else:
            out.append(Finding(WARNING, "no-peak", "no CPU peak can be computed (no physical core count or clock in the "
                               "inventory): nothing bounds this figure, so it stays 'reported'", where))  # fmt: skip
    ceiling = cpu_ceiling(m, inventory) if m.device.get("kind") != "cuda" and m.workload == "matmul" else None
    best = max(expected.get("tflops_best", 0.0), (m.details.get("msmf") or {}).get("tflops", 0.0))
    if ceiling is not None and best > ceiling.tflops * (1 + peaks.IMPLAUSIBLE_TOLERANCE):
        out.append(Finding(ERROR, "implausible", f"{best:.4g} TFLOPS is above what {ceiling.assumptions['cores']} cores "
                           f"can do at {CPU_MAX_CLOCK_MHZ:g} MHz ({ceiling.tflops:.4g} TFLOPS), whatever the clock", where))  # fmt: skip
        return out
    if peak is None:
        return out
    if world > 1:  # a data-parallel total is bounded by world_size devices' peak
        peak = peaks.Peak(peak.tflops * world, peak.kind, peak.source, peak.model, peak.unverified, peak.assumptions)
    if recorded_peak is not None and not _close(recorded_peak, peak.tflops):
        out.append(
            Finding(
                WARNING, "peak-differs", f"report's peak {recorded_peak:.4g} TFLOPS, bench's {peak.tflops:.4g}", where
            )
        )
    if best > peak.tflops * (1 + peaks.IMPLAUSIBLE_TOLERANCE):
        if (
            peak.unverified and peak.kind == "theoretical"
        ):  # an estimate (e.g. a CPU whose max clock is unknown) bounds nothing: say so, don't reject
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
    policy: bool = True,
    chain: list[bytes] | None = None,
    body: bytes | None = None,
) -> tuple[list[Finding], str | None, NodeReport | None]:
    """Findings, digest and the parsed report (None when it does not parse), in one pass. With policy=False the
    auditor's policy (trust list, age, time) is left to policy_findings, so one examination serves several policies.
    chain: for a record stream just read by bench.model.intake.read_json, its Document.chain (the records' hashes
    over the bytes read: bench.model.records.inspect); body: for a document just read by read_json, its
    Document.signed_body (the canonical bytes of its signed view: bench.model.sign.inspect)."""
    now = now or dt.datetime.now(dt.UTC)
    if not isinstance(data, dict):
        return [Finding(ERROR, "schema", "report should be a JSON object")], None, None
    out: list[Finding] = []
    valid, why, name = sign.inspect(data, chain, body)
    if not valid:
        out.append(Finding(ERROR, "signature", why))
    try:
        report = NodeReport.from_dict(data)
    except ReportError as exc:
        return [*out, Finding(ERROR, "schema", str(exc))], name, None
    start = parse_utc(report.start_utc)  # from_dict checked both
    end = parse_utc(report.end_utc) if report.end_utc else None
    if policy:
        out += policy_findings(sign.signer(data), end or start, trusted=trusted, max_age=max_age,
                               now=now)  # fmt: skip
    if end and end < start:
        out.append(Finding(ERROR, "timestamp", "end_utc is before start_utc"))
    if report.partial:
        out.append(Finding(WARNING, "partial", "the run did not complete (interrupted or still running)"))
    if data.get("torn_bytes"):
        out.append(Finding(WARNING, "torn-record", f"the file ends in {data['torn_bytes']} bytes of a record cut short "
                           "(a write the run did not finish); they were left out"))  # fmt: skip
    with indexed(report.inventory):
        for i, (m, raw) in enumerate(zip(report.measurements, data["measurements"], strict=True)):
            out += _check_measurement(m, raw, report.inventory, f"measurements[{i}]", samples_checked=valid)
    return out, name, report


def policy_findings(key_id: str | None, latest: dt.datetime, *, trusted: set[str] | None, max_age: dt.timedelta | None,
                    now: dt.datetime) -> list[Finding]:  # fmt: skip
    """The auditor's policy for one signed document: its key in the trust list, not from the future, not too old."""
    out = []
    if trusted is not None and key_id not in trusted:
        out.append(Finding(ERROR, "untrusted-key", f"signed by key {key_id}, which is not in the trust list"))
    elif key_id and trusted is None:
        out.append(
            Finding(WARNING, "unknown-key", f"signed by key {key_id}; no trust list given, so who signed is unchecked")
        )
    if latest > now + CLOCK_SKEW:
        out.append(Finding(ERROR, "future", f"report ends {latest.isoformat()}, after now ({now.isoformat()})"))
    if max_age is not None and now - latest > max_age:
        out.append(Finding(ERROR, "stale", f"report is {now - latest} old, more than --max-age {max_age}"))
    return out


def measurement_tiers(report: NodeReport, data: dict[str, Any], *, trusted: set[str] | None,
                      max_age: dt.timedelta | None) -> list[dict[str, Any]]:  # fmt: skip
    """Per measurement of a verified report (`data` is its JSON): its headline figure, its tier (before fleet
    uniqueness and challenges) and why the tier is not higher."""
    kid = sign.signer(data)
    out = []
    for i, m in enumerate(report.measurements):
        tier, why = figure_tier(m, report.inventory, trusted_key=trusted is not None and kid in trusted,
                                fresh=max_age is not None)  # fmt: skip
        out.append({"where": f"measurements[{i}]", "workload": m.workload, "device": m.device.get("uuid"),
                    "precision": m.spec.get("precision"), "tflops": (m.summary or {}).get("tflops_median"),
                    "tier": tier, "why": why})  # fmt: skip
    return out


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == ERROR]
