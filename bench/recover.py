"""Fold an interrupted run's spools into its signed report (`bench recover RUN_DIR`).

A lane's worker spools each measurement it finishes (RESULTS/<run>/.spool/, bench.runner.lane_spool) before it sends
it to the parent, which alone appends to the report. When the parent is killed (SIGKILL, the out-of-memory killer, a
node that lost power) what the workers finished and the parent had not yet appended is only in the spools. Folding:
the report's torn last line (a write the kill cut short) is cut off, each spooled measurement the report does not hold
yet (the same samples digest and identity: workload, spec, device, start) is appended as a measurement record signed
by the same node key, marked `details.recovered`, then an end record with interrupted=true. The result is a signed
partial report `bench verify` accepts as such, holding every finished measurement.

Never folded: spools of another run or another host (named by both: lane_spool), a line that does not parse as a
measurement record (each line is read as hostile input), a measurement of a device the report's inventory does not
list, or anything into a report whose signature does not hold, that is signed by another key, or that has its end
record already (after it only amendments may follow).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.model import canonical, intake, keys, records, sign
from bench.model.reports import Measurement, ReportError, utc_now
from bench.report.store import REPORT_NAME
from bench.runner import lane_spool


@dataclass
class Recovery:
    """What a fold did: measurements appended, spooled ones the report held already, lines and files left out (each
    with why), and the bytes of the report's torn last line cut off."""

    report: Path
    added: int = 0
    held: int = 0
    refused: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    torn_bytes: int = 0
    ended: bool = False


def identity(m: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a measurement the same one in a spool and in a report: its samples digest and its identity
    (workload, spec, device, start time). Warnings and details are left out: the report may have amended them."""
    device = m.get("device") if isinstance(m.get("device"), dict) else {}
    spec = m.get("spec") if isinstance(m.get("spec"), dict) else {}
    return (m.get("samples_sha256"), m.get("workload"), canonical.canonical_bytes(spec), device.get("uuid"),
            device.get("id"), m.get("start_utc"))  # fmt: skip


def _devices(inventory: dict[str, Any]) -> set[Any]:
    """Every device identity this host's report lists: its host fingerprint (the CPU), GPU and MIG UUIDs."""
    host = inventory.get("host") if isinstance(inventory.get("host"), dict) else {}
    nvml = inventory.get("nvml") if isinstance(inventory.get("nvml"), dict) else {}
    out = {host.get("fingerprint")}
    for gpu in nvml.get("gpus") or []:
        if isinstance(gpu, dict):
            out.add(gpu.get("uuid"))
            out.update(m.get("uuid") for m in gpu.get("mig_devices") or [] if isinstance(m, dict))
    out.discard(None)
    return out


def _spooled(folder: Path, prefix: str, known: set[Any], out: Recovery) -> list[tuple[Measurement, str]]:
    """The measurements of the spools named `prefix`*.jsonl in `folder`, with the file each came from; every other
    spool is noted as ignored, every line that is not a measurement of a listed device as refused."""
    found: list[tuple[Measurement, str]] = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        if not path.name.startswith(prefix):
            out.ignored.append(f"{path.name}: another run's or another host's spool")
            continue
        lines = intake.read_bytes(path, max_bytes=intake.DEFAULT_MAX_STREAM_BYTES).split(b"\n")
        if lines[-1]:
            out.refused.append(f"{path.name}: its last {len(lines[-1])} bytes are a line cut short")
        for number, line in enumerate(lines[:-1], 1):
            where = f"{path.name}:{number}"
            try:
                m = Measurement.from_record(intake.parse_json(line, where), where)
            except (ValueError, TypeError, KeyError) as exc:
                out.refused.append(f"{where}: {str(exc).splitlines()[0][:200]}")
                continue
            device = m.device.get("uuid")
            if device not in known:
                out.refused.append(f"{where}: device {device!r} is not in this report's inventory")
                continue
            found.append((m, path.name))
    return found


def fold(run_dir: Path, key: Ed25519PrivateKey) -> Recovery:
    """Fold RUN_DIR/.spool's measurements of this run and host into RUN_DIR/report.json (see the module docstring).
    ReportError naming the file for a report that cannot be appended to."""
    path = run_dir / REPORT_NAME
    raw = intake.read_bytes(path, max_bytes=intake.DEFAULT_MAX_STREAM_BYTES)
    if not raw.startswith(records.PREFIX):
        raise ReportError(f"{path}: not a record-stream (schema 3) report; only those are appended to")
    data = records.parse(raw, str(path))
    valid, why, _ = records.inspect(data)
    if not valid:
        raise ReportError(f"{path}: {why}; bench recover appends only to a report whose signature holds")
    signer = data.get(sign.SIGNATURE_FIELD) or {}
    mine = keys.public_b64(key.public_key())
    if signer.get("public_key") != mine:
        raise ReportError(f"{path} is signed by key {signer.get('key_id')}, not by this key "
                          f"({keys.key_id(keys.raw_public(key.public_key()))}): recover with the node's own key "
                          "(--key)")  # fmt: skip
    out = Recovery(path, torn_bytes=int(data.get("torn_bytes") or 0), ended=bool(data.get("end_utc")))
    host = (data["inventory"].get("host") or {}).get("fingerprint") if isinstance(data["inventory"], dict) else None
    spool = lane_spool(run_dir, data["run_id"], host, -1)
    held = {identity(m) for m in data["measurements"] if isinstance(m, dict)}
    new = []
    for m, source in _spooled(spool.folder, spool.prefix, _devices(data["inventory"]), out):
        record = m.to_record()
        if identity(record) in held:
            out.held += 1
            continue
        held.add(identity(record))
        m.details["recovered"] = {"spool": source, "note": "finished and spooled by its worker; the run's parent "
                                  "process ended before it appended it (bench recover)"}  # fmt: skip
        new.append(m)
    if out.ended:
        if new:
            out.refused.append(f"{len(new)} spooled measurements not in the report: it has its end record, after "
                               "which no measurement may follow")  # fmt: skip
        return out
    chain = records.Chain(key)
    head, why = records.chain_head(data["records"])
    if head is None:
        raise ReportError(f"{path}: {why}")
    chain.seq, chain.prev = len(data["records"]), head
    lines = [chain.line({"type": records.MEASUREMENT, "measurement": m.to_record()})[0] for m in new]
    lines.append(chain.line({"type": records.END, "end_utc": utc_now(), "interrupted": True})[0])
    whole = len(raw) - out.torn_bytes
    with open(path, "r+b") as fh:
        fh.truncate(whole)
        fh.seek(whole)
        fh.write(b"".join(lines))
        fh.flush()
        os.fsync(fh.fileno())
    out.added = len(new)
    return out
