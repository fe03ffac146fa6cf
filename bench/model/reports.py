"""The data model every layer shares: Measurement, NodeReport and CapacityReport, their JSON form and its validation.

A report's JSON is the contract: readers validate every field they rely on and refuse unknown schema versions, so a
truncated, hand-edited or future file gets a one-line ReportError instead of a traceback somewhere downstream.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import sys
from array import array
from dataclasses import dataclass, field, fields
from typing import Any, Self

from bench.model.errors import ReportError

#: Format history of node reports (a reader upgrades every older version it lists in READABLE_VERSIONS):
#:
#: 1 — each measurement's work as `flops_per_iteration`, a JSON number holding FLOPs (matmul, train) or bytes (membw,
#:     comm); CPU peak assumptions name the command-line flag an override came from ("--cpu-clock-mhz",
#:     "--fma-units") as its source.
#: 2 — `work_per_iteration` as a decimal string with its `work_unit` ("FLOP" or "byte"): exact at any size, where a
#:     JSON number is exact only to 2^53 under RFC 8785 (a large data-parallel training step crosses it); an
#:     override's source is "override" (bench.hardware.peaks.Source). Version 1 is upgraded in memory (upgrade_v1);
#:     its signature covers the bytes it was written with, so it still verifies.
#: 3 — a stream of records, one JSON object a line, appended as the run goes (bench.model.records): a header, one
#:     record per measurement (its raw samples as compact exact bytes, bench.model.samples), amendments, and an end
#:     record; each record names the SHA-256 of the one before and is signed, so a file cut anywhere is a signed
#:     partial report. Read into the same dictionary form as version 2 (plus its records), which is what
#:     NodeReport.from_dict takes; the single-document form (to_dict) stays version 2.
SCHEMA_VERSION = 2
STREAM_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
NODE_REPORT_KIND = "bench.node-report"
STATUSES = ("ok", "invalid", "skipped", "error")


def exact_count(n: int) -> str:
    """A non-negative count of any size as the decimal string signed documents carry it (exact at every magnitude,
    unlike an integer beyond 2^53, which RFC 8785 refuses)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"a count is a non-negative integer, got {n!r}")
    return str(n)


def read_count(value: Any) -> int:
    """The integer a count field holds: a decimal string (exact_count) or, in documents written before that form, a
    JSON integer. ValueError for anything else (a float, a sign, spaces, an exponent)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    digits = isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 40
    if digits and (value == "0" or value[0] != "0"):
        return int(value)
    raise ValueError(f"a count should be a decimal string of digits, got {value!r}")


#: Measurement fields holding raw samples (written as lists in documents, as encoded blocks in records).
_RAW = ("warmup_s", "samples_s")
#: Where a measurement keeps its encoded sample blocks once to_record made them, beside the SHA-256 of the samples they
#: encode (not a field: equality, asdict and to_dict ignore it; pickling carries it). A lane's worker encodes its
#: measurement for its spool and sends it to the process that writes the report, which then only hashes the samples
#: (checking the blocks still encode them) instead of compressing them again.
_ENCODED = "_encoded_samples"


class Samples(array):
    """Raw seconds as float64, 8 bytes each where a list of floats takes 32: what measurements read from records (and
    kept by a report writer) hold. Reads like a list of floats (len, iteration, indexing, sum, sorted, truth) and
    equals a list or tuple holding the same values; numpy wraps it without a copy (np.frombuffer)."""

    def __new__(cls, values: Any = ()) -> Self:
        return super().__new__(cls, "d", values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, array):
            return array.__eq__(self, other)
        if isinstance(other, (list, tuple)):
            return self.tolist() == list(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    def __reduce_ex__(self, protocol: Any) -> Any:
        return Samples, (self.tobytes(),)

    def __deepcopy__(self, memo: Any) -> Samples:
        return Samples(self.tobytes())

    def __repr__(self) -> str:
        return f"Samples({self.tolist()!r})"


#: bench.model.samples once imported (by _samples, on the first record read: it imports numpy, which `bench --help`
#: must not load); a `from ... import` in from_record cost each measurement read 2 us.
_SAMPLES: Any = None
_LITTLE = sys.byteorder == "little"


def _samples() -> Any:
    global _SAMPLES
    from bench.model import samples

    _SAMPLES = samples
    return samples


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
    #: the work one iteration does, an exact integer in `work_unit` (bench.figures.Unit: FLOPs or bytes)
    work_per_iteration: int | None = None
    work_unit: str | None = None
    timer: str | None = None
    threads: int | None = None
    #: raw seconds: a list as measured, Samples when read from a record or kept by a writer (same reads, a quarter of
    #: the memory)
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
        """The JSON form, with the SHA-256 of the raw-sample block (bench.model.samples.samples_digest)."""
        from bench.model.samples import samples_digest  # numpy: loaded when samples are hashed, not by bench --help

        d = self._fields()
        d["warmup_s"], d["samples_s"] = list(self.warmup_s), list(self.samples_s)
        return {**copy.deepcopy(d), "samples_sha256": samples_digest(self.warmup_s, self.samples_s)}

    def _fields(self) -> dict[str, Any]:
        """Every field but the raw samples (shallow: the values are this measurement's own), work as a string."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _RAW}
        if self.work_per_iteration is not None:
            d["work_per_iteration"] = exact_count(self.work_per_iteration)
        return d

    def to_record(self) -> dict[str, Any]:
        """The record form (node reports from version 3 on, and spools): every field as to_dict writes it, the raw
        samples as compact exact blocks (bench.model.samples: `warmup`, `samples`) beside their SHA-256. Shallow:
        meant to be serialized at once, not kept."""
        from bench.model import samples as codec
        from bench.model.samples import samples_digest

        digest = samples_digest(self.warmup_s, self.samples_s)
        blocks = self.__dict__.get(_ENCODED)
        if blocks is None or blocks[0] != digest:
            blocks = (digest, codec.encode(self.warmup_s), codec.encode(self.samples_s))
            self.__dict__[_ENCODED] = blocks  # kept (and pickled) with the samples they encode: see _ENCODED
        return {**self._fields(), "warmup": blocks[1], "samples": blocks[2], "samples_sha256": digest}

    @classmethod
    def from_record(cls, d: Any, where: str = "measurement", decoded: tuple[bytes, bytes] | None = None) -> Measurement:
        """A measurement from its record form (to_record): the blocks decoded (strictly: bench.model.samples) into
        array('d') samples, their SHA-256 checked against samples_sha256. decoded: the blocks' bytes as
        bench.model.samples.decode_small_all gave them (NodeReport.from_dict decodes a report's blocks together)."""
        codec = _SAMPLES or _samples()
        _expect(d, dict, where)
        if "warmup_s" in d or "samples_s" in d:
            raise ReportError(f"{where}: a record holds its samples as encoded blocks, not samples_s lists")
        small = decoded or (codec.decode_small(d.get("warmup")), codec.decode_small(d.get("samples")))
        if small[0] is not None and small[1] is not None and _LITTLE:  # the usual case, in Python
            if d.get("samples_sha256") != codec.samples_digest_bytes(*small):
                raise ReportError(f"{where}: raw samples do not match their samples_sha256")
            # from_dict reads the fields it names, never the blocks: d is given as it is (no copy without them)
            return cls.from_dict(d, where, raw=(Samples(small[0]), Samples(small[1])))
        warmup = codec.decode(d.get("warmup"), f"{where}.warmup")
        timed = codec.decode(d.get("samples"), f"{where}.samples")
        if d.get("samples_sha256") != codec.samples_digest(warmup, timed):
            raise ReportError(f"{where}: raw samples do not match their samples_sha256")
        plain = {k: v for k, v in d.items() if k not in ("warmup", "samples")}
        return cls.from_dict(plain, where, raw=(Samples(warmup.tobytes()), Samples(timed.tobytes())))

    @classmethod
    def from_dict(cls, d: Any, where: str = "measurement", raw: tuple[Any, Any] | None = None) -> Measurement:
        _expect(d, dict, where)
        if _plain_measurement(
            d
        ):  # every field of its exact JSON type: taken as _field would take it, without a call each
            m = cls(workload=d["workload"], spec=d["spec"], device=d["device"], status=d["status"],
                    reason=d["reason"], emulated=d["emulated"], work_per_iteration=_work(d, where),
                    work_unit=d["work_unit"], timer=d["timer"], threads=d["threads"],
                    warmup_s=_numbers(d, "warmup_s", where) if raw is None else raw[0],
                    samples_s=_numbers(d, "samples_s", where) if raw is None else raw[1],
                    summary=d["summary"], validity=d["validity"], warnings=d["warnings"], peak=d["peak"],
                    details=d["details"], start_utc=d["start_utc"], end_utc=d["end_utc"])  # fmt: skip
        else:
            m = cls._from_fields(d, where, raw)
        if m.status not in STATUSES:
            raise ReportError(f"{where}.status is {m.status!r}; valid: {', '.join(STATUSES)}")
        if m.status in ("ok", "invalid") and (
            not len(m.samples_s) or m.summary is None or m.work_per_iteration is None
        ):
            raise ReportError(f"{where}: a measured ({m.status}) entry needs samples_s, summary and work_per_iteration")
        if (m.work_per_iteration is None) != (m.work_unit is None) or m.work_unit not in (*WORK_UNITS, None):
            raise ReportError(f"{where}.work_unit is {m.work_unit!r}; work_per_iteration needs one of: "
                              f"{', '.join(WORK_UNITS)}")  # fmt: skip
        _check_measurement_fields(m, where, checked_samples=raw is not None)
        return m

    @classmethod
    def _from_fields(cls, d: dict[str, Any], where: str, raw: tuple[Any, Any] | None) -> Measurement:
        """The measurement's fields, each checked by _field in turn (the first wrong one raises, named)."""
        return cls(
            workload=_field(d, "workload", str, where),
            spec=_field(d, "spec", dict, where),
            device=_field(d, "device", dict, where),
            status=_field(d, "status", str, where),
            reason=_field(d, "reason", (str, type(None)), where),
            emulated=_field(d, "emulated", bool, where),
            work_per_iteration=_work(d, where),
            work_unit=_field(d, "work_unit", (str, type(None)), where),
            timer=_field(d, "timer", (str, type(None)), where),
            threads=_field(d, "threads", (int, type(None)), where),
            warmup_s=_numbers(d, "warmup_s", where) if raw is None else raw[0],
            samples_s=_numbers(d, "samples_s", where) if raw is None else raw[1],
            summary=_field(d, "summary", (dict, type(None)), where),
            validity=_field(d, "validity", (dict, type(None)), where),
            warnings=_field(d, "warnings", list, where),
            peak=_field(d, "peak", (dict, type(None)), where),
            details=_field(d, "details", dict, where),
            start_utc=_field(d, "start_utc", (str, type(None)), where),
            end_utc=_field(d, "end_utc", (str, type(None)), where),
        )


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

    @property
    def partial(self) -> bool:
        """The one definition of a partial report: the run was interrupted (SIGTERM, Ctrl-C, a crash the writer saw)
        or never finished (no end time: still running, or killed before it could say so)."""
        return self.interrupted or not self.end_utc

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "measurements"}
        d = copy.deepcopy(d)
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
        if isinstance(version, bool) or not isinstance(version, int) or version not in READABLE_VERSIONS:
            raise ReportError(
                f"unsupported schema_version {version!r}; this bench reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))} (upgrade bench?)"
            )
        if version == 1:
            d = upgrade_v1(d)
        raw = _field(d, "measurements", list, "report")
        read = Measurement.from_record if version == STREAM_VERSION else Measurement.from_dict
        if version == STREAM_VERSION:
            read = _record_reader(raw)
        _check_inventory(_field(d, "inventory", dict, "report"))
        parse_timestamp(_field(d, "start_utc", str, "report"), "report.start_utc")
        if d.get("end_utc") is not None:
            parse_timestamp(_field(d, "end_utc", str, "report"), "report.end_utc")
        signature = d.get("signature")
        if signature is not None:
            _expect(signature, dict, "report.signature")
            for k in ("alg", "public_key", "key_id", "signature"):
                _field(signature, k, str, "report.signature")
        return cls(
            run_id=_field(d, "run_id", str, "report"),
            tool=_field(d, "tool", dict, "report"),
            command_line=_field(d, "command_line", list, "report"),
            config=_field(d, "config", dict, "report"),
            inventory=_field(d, "inventory", dict, "report"),
            start_utc=_field(d, "start_utc", str, "report"),
            end_utc=_field(d, "end_utc", (str, type(None)), "report"),
            interrupted=_field(d, "interrupted", bool, "report"),
            measurements=[read(m, f"measurements[{i}]") for i, m in enumerate(raw)],
            signature=d.get("signature") if isinstance(d.get("signature"), dict) else None,
        )


def _record_reader(raw: list[Any]) -> Any:
    """Measurement.from_record for a stream report's measurements (`raw`, in order), with the sample blocks of those
    whose two blocks are small decoded together first (bench.model.samples.decode_small_all: a few numpy calls for the
    report, where each block took a dozen). A measurement whose blocks that does not take (a palette, more samples,
    anything decode_small leaves to decode) is read by from_record alone, which decodes its blocks and words any
    refusal. Either way the same measurements, checked by the same steps in the same order (decode_small_all refuses
    nothing: it only answers None)."""
    codec = _SAMPLES or _samples()
    if not _LITTLE:
        return Measurement.from_record
    small = codec.SMALL
    blocks, where = [], []
    for i, m in enumerate(raw):
        if type(m) is dict:
            w, s = m.get("warmup"), m.get("samples")
            if type(w) is dict and type(s) is dict and _small_count(w, small) and _small_count(s, small):
                blocks += (w, s)
                where.append(i)
    if not blocks:
        return Measurement.from_record
    decoded = codec.decode_small_all(blocks)
    # keyed by the measurement's own dict (raw holds each alive meanwhile), so an answer can only reach the record
    # it was decoded from, whatever order or count read is called in
    pairs: dict[int, tuple[bytes, bytes]] = {}
    for at, i in enumerate(where):
        w, s = decoded[2 * at], decoded[2 * at + 1]
        if w is not None and s is not None:
            pairs[id(raw[i])] = (w, s)

    def read(d: Any, where: str) -> Measurement:
        return Measurement.from_record(d, where, pairs.get(id(d)))

    return read


def _small_count(block: dict[str, Any], small: int) -> bool:
    n = block.get("n")
    return type(n) is int and 0 <= n <= small


#: Units work_per_iteration is counted in (bench.figures.Unit's values).
WORK_UNITS = ("FLOP", "byte")
#: Version 1's flops_per_iteration held bytes for these workloads, FLOPs for the others.
_V1_BYTE_WORKLOADS = ("membw", "comm")
#: Version 1 named an override's source by its flag; version 2 says "override" (bench.hardware.peaks.Source).
_V1_SOURCES = {"--cpu-clock-mhz": "override", "--fma-units": "override", "--cpu-cores": "override"}


#: Format history of capacity reports (bench aggregate; built in bench.report.capacity):
#:
#: 2 — device rows carry a tier and identities; totals carry reported / bounded / proven figures.
#: 3 — accelerator_memory_bytes is a decimal string (exact_count): a fleet of 110,000 80-GB GPUs holds more bytes than
#:     RFC 8785 can carry as an integer (2^53). Version 2 (an integer there) is still read and verified.
CAPACITY_KIND = "bench.capacity-report"
CAPACITY_SCHEMA_VERSION = 3
CAPACITY_READABLE = (2, 3)


@dataclass(frozen=True)
class CapacityReport:
    """A fleet capacity report as every reader takes it (bench report, bench verify, bench disclose): kind and version
    checked once, here, and the parts they use typed. `data` is the signed document itself, which its signature and
    digest cover; the figures are re-derived from node reports by bench.report.capacity.audit_capacity."""

    schema_version: int
    created_utc: str
    trusted_key_ids: list[str] | None
    inputs: list[dict[str, Any]]
    devices: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    totals: list[dict[str, Any]]
    accelerator_memory_bytes: int
    duplicates: list[Any]
    defective: list[dict[str, Any]]
    data: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Any) -> CapacityReport:
        """The capacity report in `data` (parsed JSON); ReportError naming what is wrong (kind, version, a field)."""
        if not isinstance(data, dict) or data.get("kind") != CAPACITY_KIND:
            raise ReportError("not a bench capacity report")
        version = data.get("schema_version")
        if isinstance(version, bool) or version not in CAPACITY_READABLE:
            raise ReportError(f"unsupported capacity schema_version {version!r}; this bench reads "
                              f"{', '.join(map(str, CAPACITY_READABLE))} (re-aggregate the node reports)")  # fmt: skip
        where = "capacity"
        created = _field(data, "created_utc", str, where)
        parse_timestamp(created, f"{where}.created_utc")
        trusted = _field(data, "trusted_key_ids", (list, type(None)), where)
        for i, k in enumerate(trusted or []):
            _expect(k, str, f"{where}.trusted_key_ids[{i}]")
        tables = {}
        for key in ("inputs", "devices", "groups", "totals", "defective"):
            tables[key] = _field(data, key, list, where)
            for i, row in enumerate(tables[key]):
                _expect(row, dict, f"{where}.{key}[{i}]")
        try:
            memory = read_count(data.get("accelerator_memory_bytes"))
        except ValueError as exc:
            raise ReportError(f"{where}.accelerator_memory_bytes: {exc}") from None
        return cls(schema_version=version, created_utc=created, trusted_key_ids=trusted,
                   accelerator_memory_bytes=memory, duplicates=_field(data, "duplicates", list, where), data=data,
                   **tables)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return self.data


def upgrade_v1(d: dict[str, Any]) -> dict[str, Any]:
    """A version-1 node report as version 2 (a new dict; `d` is left as signed): flops_per_iteration becomes
    work_per_iteration (a decimal string) with its unit, and an override's flag-named source becomes "override".
    Figures, samples and everything else are carried over unchanged."""
    out = {**d, "schema_version": 2}
    measurements = d.get("measurements")
    if not isinstance(measurements, list):
        return out  # from_dict names what is wrong
    upgraded = []
    for i, m in enumerate(measurements):
        if not isinstance(m, dict):
            upgraded.append(m)
            continue
        where = f"measurements[{i}]"
        m = dict(m)
        work = m.pop("flops_per_iteration", None)
        if work is not None:
            _expect(work, (int, float), f"{where}.flops_per_iteration")
            ok = work > 0 and (isinstance(work, int) or (math.isfinite(work) and work.is_integer()))
            if not ok or len(str(int(work))) > 40:  # an int beyond a float's range is no number of FLOPs either
                raise ReportError(f"{where}.flops_per_iteration should be a positive whole number, found {work!r}")
            m["work_per_iteration"] = str(int(work))
            m["work_unit"] = "byte" if m.get("workload") in _V1_BYTE_WORKLOADS else "FLOP"
        else:
            m["work_per_iteration"] = m["work_unit"] = None
        peak = m.get("peak")
        if isinstance(peak, dict) and isinstance(peak.get("assumptions"), dict):
            assumptions = dict(peak["assumptions"])
            for key in ("clock_source", "fma_units_source", "cores_source"):
                if assumptions.get(key) in _V1_SOURCES:
                    assumptions[key] = _V1_SOURCES[assumptions[key]]
            m["peak"] = {**peak, "assumptions": assumptions}
        upgraded.append(m)
    out["measurements"] = upgraded
    return out


def parse_timestamp(text: str, where: str) -> dt.datetime:
    """An ISO 8601 timestamp that names its time zone, as UTC; one read without a zone would be local time, which
    differs between the node and the auditor."""
    try:
        t = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ReportError(f"{where}: {text!r} is not an ISO 8601 timestamp") from None
    if t.tzinfo is dt.UTC and 3 < t.year < 9997:  # '...Z' or '+00:00', as bench writes: already the UTC value
        return t
    if t.tzinfo is None or t.utcoffset() is None:
        raise ReportError(f"{where}: {text!r} has no time zone (write UTC as ...Z)")
    if 3 < t.year < 9997:  # a zone moves it by less than a day: 400 days either side stay within years 1-9999
        return t.astimezone(dt.UTC)
    try:
        utc = t.astimezone(dt.UTC)
        utc + dt.timedelta(days=400), utc - dt.timedelta(days=400)  # room for the skews and ages computed from it
    except OverflowError:
        raise ReportError(f"{where}: {text!r} is out of range (within a year of 0001 or 9999)") from None
    return utc


_OPTIONAL_STR = (str, type(None))
_OPTIONAL_NUMBER = (int, float, type(None))
#: The exact types a JSON number or null parses to (bool, an int subclass, is not one).
_NUMBER_TYPES = (int, float, type(None))
_NUMBER_TYPE_SET = frozenset(_NUMBER_TYPES)
#: The exact types of a JSON number (a constant: a set display is built anew at each call).
_INT_FLOAT = frozenset({int, float})
#: Fields of the inventory that verify and aggregate read, with the types they must have when present.
_HOST_FIELDS = {"hostname": _OPTIONAL_STR, "fingerprint": _OPTIONAL_STR, "cpu_model": _OPTIONAL_STR,
                "physical_cores": (int, type(None)), "max_clock_mhz": _OPTIONAL_NUMBER,
                "current_clock_mhz": _OPTIONAL_NUMBER, "isa_flags": (dict, type(None))}  # fmt: skip
_GPU_FIELDS = {"uuid": str, "name": _OPTIONAL_STR, "index": (int, type(None)), "memory_bytes": (int, type(None)),
               "serial": _OPTIONAL_STR, "board_id": (int, str, type(None)), "pci_bus_id": _OPTIONAL_STR}  # fmt: skip
_DEVICE_FIELDS = {"id": str, "kind": str, "name": _OPTIONAL_STR, "uuid": _OPTIONAL_STR}
#: Spec fields: integer sizes (positive), names, and world_size (a positive integer).
_SPEC_FIELDS = {"m": int, "n": int, "k": int, "world_size": int, "bytes": int, "precision": str, "op": str}


def _typed_fields(d: dict[str, Any], fields: dict[str, Any], where: str, required: tuple[str, ...] = ()) -> None:
    for key, types in fields.items():
        if key in d or key in required:
            _field(d, key, types, where)


def _check_inventory(inventory: dict[str, Any]) -> None:
    host = _field(inventory, "host", dict, "report.inventory")
    if not _exact_fields(host, _HOST_EXACT):
        _typed_fields(host, _HOST_FIELDS, "report.inventory.host")
    if host.get("physical_cores") is not None and host["physical_cores"] < 1:
        raise ReportError("report.inventory.host.physical_cores should be a positive integer")
    for key in ("max_clock_mhz", "current_clock_mhz"):
        if host.get(key) is not None and not (math.isfinite(host[key]) and host[key] > 0):
            raise ReportError(f"report.inventory.host.{key} should be a positive number")
    if "nvml" in inventory:
        nvml = _field(inventory, "nvml", dict, "report.inventory")
        for i, gpu in enumerate(_field(nvml, "gpus", list, "report.inventory.nvml") if "gpus" in nvml else []):
            if type(gpu) is not dict or not _exact_fields(gpu, _GPU_EXACT, "uuid"):
                where = f"report.inventory.nvml.gpus[{i}]"
                _expect(gpu, dict, where)
                _typed_fields(gpu, _GPU_FIELDS, where, required=("uuid",))


#: A key no dictionary holds (d.get(key, _ABSENT) tells a missing field from a null one).
_ABSENT = object()
_STR, _BOOL, _LIST, _DICT = frozenset({str}), frozenset({bool}), frozenset({list}), frozenset({dict})
_OPT_STR, _OPT_INT = frozenset({str, type(None)}), frozenset({int, type(None)})
_OPT_DICT, _OPT_NUMBER = frozenset({dict, type(None)}), frozenset({int, float, type(None)})
#: Measurement fields (but work and the raw samples) with the exact types a JSON parse gives the values _field takes.
_MEASUREMENT_EXACT = (("workload", _STR), ("spec", _DICT), ("device", _DICT), ("status", _STR), ("reason", _OPT_STR),
                      ("emulated", _BOOL), ("work_unit", _OPT_STR), ("timer", _OPT_STR), ("threads", _OPT_INT),
                      ("summary", _OPT_DICT), ("validity", _OPT_DICT), ("warnings", _LIST), ("peak", _OPT_DICT),
                      ("details", _DICT), ("start_utc", _OPT_STR), ("end_utc", _OPT_STR))  # fmt: skip
_DEVICE_EXACT = {"id": _STR, "kind": _STR, "name": _OPT_STR, "uuid": _OPT_STR}
_SPEC_EXACT = {key: frozenset({int}) if types is int else _STR for key, types in _SPEC_FIELDS.items()}
_PEAK_FIELDS = {"tflops": _OPTIONAL_NUMBER, "tbps": _OPTIONAL_NUMBER, "assumptions": dict, "unverified": bool}
_HOST_EXACT = {"hostname": _OPT_STR, "fingerprint": _OPT_STR, "cpu_model": _OPT_STR, "physical_cores": _OPT_INT,
               "max_clock_mhz": _OPT_NUMBER, "current_clock_mhz": _OPT_NUMBER, "isa_flags": _OPT_DICT}  # fmt: skip
_GPU_EXACT = {"uuid": _STR, "name": _OPT_STR, "index": _OPT_INT, "memory_bytes": _OPT_INT, "serial": _OPT_STR,
              "board_id": frozenset({int, str, type(None)}), "pci_bus_id": _OPT_STR}  # fmt: skip
_PEAK_EXACT = {"tflops": _OPT_NUMBER, "tbps": _OPT_NUMBER, "assumptions": _DICT, "unverified": _BOOL}
#: A measurement's details that the checks read, with their exact types (those _field takes) and their own checks.
_DETAILS_EXACT = {"msmf": _DICT, "search": _DICT, "items_per_step": frozenset({int, float})}
_SEARCH_FIELDS = {"role": _OPTIONAL_STR, "mamf": (bool, type(None))}
_SEARCH_EXACT = {"role": _OPT_STR, "mamf": frozenset({bool, type(None)})}


def _plain_measurement(d: dict[str, Any]) -> bool:
    """Whether every field of _MEASUREMENT_EXACT is present with one of its exact types: then _field would return
    each as it is (an exact type is an instance, and bool, its own type, is listed only where _field takes it)."""
    get = d.get
    for key, types in _MEASUREMENT_EXACT:
        if type(get(key, _ABSENT)) not in types:
            return False
    return True


def _exact_fields(d: dict[str, Any], exact: dict[str, frozenset[type]], required: str | None = None) -> bool:
    """Whether each key of `exact` that d holds (and `required` always) has one of its exact types: then
    _typed_fields(d, ...) passes (see _plain_measurement)."""
    if required is not None and required not in d:
        return False
    for key, value in d.items():
        types = exact.get(key)
        if types is not None and type(value) not in types:
            return False
    return True


def _check_measurement_fields(m: Measurement, where: str, checked_samples: bool = False) -> None:
    if not _exact_fields(m.device, _DEVICE_EXACT, "kind"):
        _typed_fields(m.device, _DEVICE_FIELDS, f"{where}.device", required=("kind",))
    if not _exact_fields(m.spec, _SPEC_EXACT):
        _typed_fields(m.spec, _SPEC_FIELDS, f"{where}.spec")
    for key in ("m", "n", "k", "world_size", "bytes"):
        if key in m.spec and m.spec[key] < 1:
            raise ReportError(f"{where}.spec.{key} should be a positive integer, found {m.spec[key]}")
    for name, values in () if checked_samples else (("warmup_s", m.warmup_s), ("samples_s", m.samples_s)):
        if _positive_durations(values) or all(0 < value < math.inf for value in values):  # NaN fails both: the loop
            continue
        for i, value in enumerate(values):
            if not (math.isfinite(value) and value > 0):
                raise ReportError(f"{where}.{name}[{i}] is {value!r}; a duration must be a finite positive number")
    if m.summary and not set(map(type, m.summary.values())) <= _NUMBER_TYPE_SET:  # the usual case in C
        for key, value in m.summary.items():
            if type(value) not in _NUMBER_TYPES:  # the name for a message is built only for one
                _expect(value, _OPTIONAL_NUMBER, f"{where}.summary.{key}")
    if m.validity is not None and "passed" in m.validity:
        _field(m.validity, "passed", (bool, type(None)), f"{where}.validity")
    if m.peak is not None and not _exact_fields(m.peak, _PEAK_EXACT):
        _typed_fields(m.peak, _PEAK_FIELDS, f"{where}.peak")
    details = m.details
    if not _exact_fields(details, _DETAILS_EXACT):
        for key, types in (("msmf", dict), ("search", dict), ("items_per_step", (int, float))):
            if key in details:
                _field(details, key, types, f"{where}.details")
    if "msmf" in details:
        _field(details["msmf"], "tflops", (int, float), f"{where}.details.msmf")
    if "search" in details and not _exact_fields(details["search"], _SEARCH_EXACT):
        _typed_fields(details["search"], _SEARCH_FIELDS, f"{where}.details.search")
    for i, w in enumerate(m.warnings):
        if type(w) is not dict:
            _expect(w, dict, f"{where}.warnings[{i}]")
    for key in ("start_utc", "end_utc"):
        if getattr(m, key) is not None:
            parse_timestamp(getattr(m, key), f"{where}.{key}")


def _positive_durations(values: Any) -> bool:
    """True only where every value is a finite positive number, decided in C (sum and min; a generator over a
    report's 176 samples cost it 20 us): a finite sum means no value is infinite or NaN (both carry through, and
    inf + -inf is NaN), and then the minimum is exact. False (the caller's own check decides) for an empty list, a
    sum that overflows or anything sum and min refuse."""
    try:
        total = sum(values)
        return total - total == 0 and min(values) > 0
    except (OverflowError, TypeError, ValueError):
        return False


def _expect(value: Any, types: type | tuple[type, ...], where: str) -> None:
    types = types if isinstance(types, tuple) else (types,)
    # bool is an int in Python; a number field must not accept true/false.
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise ReportError(f"{where} should be {names}, found {type(value).__name__}")


def _field(d: dict[str, Any], key: str, types: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise ReportError(f"{where} lacks required field {key!r}")
    value = d[key]
    # the usual case decided without building the field's name for a message (most of reading a report, once)
    if type(value) is not bool and isinstance(value, types):
        return value
    _expect(value, types, f"{where}.{key}")
    return value


def _work(d: dict[str, Any], where: str) -> int | None:
    """work_per_iteration: None, or a positive whole number written as a decimal string (exact at any size)."""
    value = _field(d, "work_per_iteration", (str, type(None)), where)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 40 and value[0] != "0"):
        raise ReportError(f"{where}.work_per_iteration should be a positive whole number in decimal digits, "
                          f"found {value[:50]!r}")  # fmt: skip
    return int(value)


def _numbers(d: dict[str, Any], key: str, where: str) -> list[float]:
    values = _field(d, key, list, where)
    if set(map(type, values)) <= _INT_FLOAT:  # the usual case, checked in C (bool is its own type: not here)
        return values
    for i, v in enumerate(values):
        _expect(v, (int, float), f"{where}.{key}[{i}]")
    return values
