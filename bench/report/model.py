"""The data model every layer shares: Measurement and NodeReport, their JSON form and its validation.

A report's JSON is the contract: readers validate every field they rely on and refuse unknown schema versions, so a
truncated, hand-edited or future file gets a one-line ReportError instead of a traceback somewhere downstream.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 1
NODE_REPORT_KIND = "bench.node-report"
STATUSES = ("ok", "invalid", "skipped", "error")


class ReportError(ValueError):
    """A report that cannot be read or does not follow the schema; the message is one line meant for a person."""


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Measurement:
    """One workload on one device at one spec, with its raw per-iteration seconds and the figures derived from them.

    status: 'ok' (measured and checked), 'invalid' (measured, but the correctness check failed: never counted),
    'skipped' (not measured; `reason` says why) or 'error' (the kernel or driver failed; `reason` holds the error).
    """

    workload: str
    spec: dict[str, Any]
    device: dict[str, Any]
    status: str
    reason: str | None = None
    emulated: bool = False
    flops_per_iteration: float | None = None
    timer: str | None = None
    threads: int | None = None
    warmup_s: list[float] = field(default_factory=list)
    samples_s: list[float] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    validity: dict[str, Any] | None = None
    warnings: list[dict[str, str]] = field(default_factory=list)
    #: the physical peak the figures are compared with (vendor table or CPU formula), or None when none is on file
    peak: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    start_utc: str | None = None
    end_utc: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, with the SHA-256 of the raw-sample block (see sign.samples_digest)."""
        from bench.report.sign import samples_digest

        return {**asdict(self), "samples_sha256": samples_digest(self.warmup_s, self.samples_s)}

    @classmethod
    def from_dict(cls, d: Any, where: str = "measurement") -> Measurement:
        _expect(d, dict, where)
        m = cls(
            workload=_field(d, "workload", str, where),
            spec=_field(d, "spec", dict, where),
            device=_field(d, "device", dict, where),
            status=_field(d, "status", str, where),
            reason=_field(d, "reason", (str, type(None)), where),
            emulated=_field(d, "emulated", bool, where),
            flops_per_iteration=_field(d, "flops_per_iteration", (int, float, type(None)), where),
            timer=_field(d, "timer", (str, type(None)), where),
            threads=_field(d, "threads", (int, type(None)), where),
            warmup_s=_numbers(d, "warmup_s", where),
            samples_s=_numbers(d, "samples_s", where),
            summary=_field(d, "summary", (dict, type(None)), where),
            validity=_field(d, "validity", (dict, type(None)), where),
            warnings=_field(d, "warnings", list, where),
            peak=_field(d, "peak", (dict, type(None)), where),
            details=_field(d, "details", dict, where),
            start_utc=_field(d, "start_utc", (str, type(None)), where),
            end_utc=_field(d, "end_utc", (str, type(None)), where),
        )
        if m.status not in STATUSES:
            raise ReportError(f"{where}.status is {m.status!r}; valid: {', '.join(STATUSES)}")
        if m.status in ("ok", "invalid") and (not m.samples_s or m.summary is None or m.flops_per_iteration is None):
            raise ReportError(f"{where}: a measured ({m.status}) entry needs samples_s, summary and flops_per_iteration")
        return m


@dataclass
class NodeReport:
    """Everything one run on one node measured, with the inventory it ran on and how it was invoked."""

    run_id: str
    tool: dict[str, Any]
    command_line: list[str]
    config: dict[str, Any]
    inventory: dict[str, Any]
    start_utc: str
    end_utc: str | None = None
    interrupted: bool = False
    measurements: list[Measurement] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    kind: str = NODE_REPORT_KIND
    #: {alg, public_key, key_id, signature} over the canonical bytes of everything else (see report.sign)
    signature: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["measurements"] = [m.to_dict() for m in self.measurements]
        if self.signature is None:
            del d["signature"]
        return d

    @classmethod
    def from_dict(cls, d: Any) -> NodeReport:
        _expect(d, dict, "report")
        kind = d.get("kind")
        if kind != NODE_REPORT_KIND:
            raise ReportError(f"not a bench node report (kind is {kind!r}, expected {NODE_REPORT_KIND!r})")
        version = d.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ReportError(
                f"unsupported schema_version {version!r}; this bench reads version {SCHEMA_VERSION} (upgrade bench?)"
            )
        raw = _field(d, "measurements", list, "report")
        return cls(
            run_id=_field(d, "run_id", str, "report"),
            tool=_field(d, "tool", dict, "report"),
            command_line=_field(d, "command_line", list, "report"),
            config=_field(d, "config", dict, "report"),
            inventory=_field(d, "inventory", dict, "report"),
            start_utc=_field(d, "start_utc", str, "report"),
            end_utc=_field(d, "end_utc", (str, type(None)), "report"),
            interrupted=_field(d, "interrupted", bool, "report"),
            measurements=[Measurement.from_dict(m, f"measurements[{i}]") for i, m in enumerate(raw)],
            signature=d.get("signature") if isinstance(d.get("signature"), dict) else None,
        )


def _expect(value: Any, types: type | tuple[type, ...], where: str) -> None:
    types = types if isinstance(types, tuple) else (types,)
    # bool is an int in Python; a number field must not accept true/false.
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise ReportError(f"{where} should be {names}, found {type(value).__name__}")


def _field(d: dict[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise ReportError(f"{where} lacks required field {key!r}")
    _expect(d[key], types, f"{where}.{key}")
    return d[key]


def _numbers(d: dict[str, Any], key: str, where: str) -> list[float]:
    values = _field(d, key, list, where)
    for i, v in enumerate(values):
        _expect(v, (int, float), f"{where}.{key}[{i}]")
    return values
