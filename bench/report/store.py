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
    """JSON with sorted keys and a 2-space indent (json.dumps(data, indent=2, sort_keys=True, allow_nan=False)), the
    form every report is written in. The standard library writes an indented document with its pure-Python encoder
    (its C encoder only runs without indent), about 10x slower: a country's capacity reports and disclosures hold a
    million device rows. So containers are walked here and each one holding only scalars (a device row, a list of
    samples) is written by the C encoder, its item separator carrying the newline and indent of its depth: the same
    bytes (tests/report/test_store_dumps.py). Anything else (a key that is not a string, a subclass, a value the
    encoder refuses) takes json.dumps itself, which writes or refuses it as before."""
    try:
        return "".join(_indented(data, 0, [])) + "\n"
    except (_NotPlain, ValueError, RecursionError):
        return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"


class _NotPlain(Exception):
    """A value the fast writer leaves to json.dumps."""


_SCALARS = frozenset({str, int, float, bool, type(None)})
_FLAT: dict[int, Any] = {}


def _flat_encoder(depth: int) -> Any:
    """The encoder for a container of scalars at `depth`, its items one per line, indented one level deeper: the C
    encoder json.JSONEncoder.iterencode builds (made once here: building it per row cost more than the row), or the
    pure-Python one where the C one is missing."""
    enc = _FLAT.get(depth)
    if enc is None:
        settings = json.JSONEncoder(sort_keys=True, allow_nan=False, separators=(",\n" + "  " * (depth + 1), ": "))
        if json.encoder.c_make_encoder is not None:  # markers None: a container of scalars cannot hold itself
            c = json.encoder.c_make_encoder(None, settings.default, json.encoder.encode_basestring_ascii, None, ": ",
                                            ",\n" + "  " * (depth + 1), True, False, False)  # fmt: skip
            enc = _FLAT[depth] = lambda o: "".join(c(o, 0))
        else:
            enc = _FLAT[depth] = settings.encode
    return enc


def _indented(o: Any, depth: int, out: list[str]) -> list[str]:
    t = type(o)
    if t is dict:
        if not o:
            out.append("{}")
            return out
        for k in o:
            if type(k) is not str:
                raise _NotPlain
        values = o.values()
    elif t is list or t is tuple:
        if not o:
            out.append("[]")
            return out
        values = o
    elif t in _SCALARS:
        out.append(json.dumps(o, allow_nan=False))
        return out
    else:
        raise _NotPlain
    inner = "\n" + "  " * (depth + 1)
    if all(type(x) in _SCALARS for x in values):
        text = _flat_encoder(depth)(o)
        out.append(text[0] + inner + text[1:-1] + "\n" + "  " * depth + text[-1])
        return out
    if t is dict:
        out.append("{")
        sep = inner
        for k in sorted(o):
            out.append(sep)
            out.append(json.encoder.encode_basestring_ascii(k))
            out.append(": ")
            _indented(o[k], depth + 1, out)
            sep = "," + inner
        out.append("\n" + "  " * depth + "}")
    else:
        out.append("[")
        sep = inner
        for x in o:
            out.append(sep)
            _indented(x, depth + 1, out)
            sep = "," + inner
        out.append("\n" + "  " * depth + "]")
    return out


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
