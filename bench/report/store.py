"""Reading and writing reports: atomic writes, validated reads, and a writer that saves after every measurement."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.report import intake, sign
from bench.report.model import Measurement, NodeReport, ReportError, utc_now

REPORT_NAME = "report.json"


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second plus 6 random hex digits."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"


def _umask() -> int:
    """The process's umask, read without changing it (os.umask sets it, which would race with writer threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`: readers never see half a file.
    The file gets `mode`, else what open() would give it (0666 less the umask: 0644 under the usual 022) — reports hold
    nothing secret and are meant to be shared; keys are written elsewhere (bench.report.keys), owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fchmod(fh.fileno(), mode if mode is not None else 0o666 & ~_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_report(path: str | Path) -> NodeReport:
    """Read and validate a node report; every problem is a one-line ReportError naming the file."""
    path = Path(path)
    data = intake.read_json(path).data  # InputError is a ReportError naming the file
    try:
        return NodeReport.from_dict(data)
    except ReportError as exc:
        raise ReportError(f"{path}: {exc}") from None


class ReportWriter:
    """Owns a report while a run fills it; rewrites the file, signed, after every measurement so a crash loses
    nothing and even a partial report is signed."""

    def __init__(self, report: NodeReport, directory: Path, key: Ed25519PrivateKey | None = None) -> None:
        self.report = report
        self.path = directory / REPORT_NAME
        self.key = key
        self.save()

    def add(self, measurement: Measurement) -> None:
        self.report.measurements.append(measurement)
        self.save()

    def finish(self, interrupted: bool = False) -> None:
        self.report.end_utc = utc_now()
        self.report.interrupted = interrupted
        self.save()

    def save(self) -> None:
        self.report.signature = None
        data = self.report.to_dict()
        if self.key is not None:
            self.report.signature = data["signature"] = sign.sign(data, self.key)
        write_atomic(self.path, dumps(data))


__all__ = ["REPORT_NAME", "ReportError", "ReportWriter", "dumps", "load_report", "new_run_id", "write_atomic"]
