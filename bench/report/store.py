"""Reading and writing reports: atomic writes, validated reads, and a writer that appends each measurement."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import pickle
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.model import intake, records, sign
from bench.model.canonical import MAX_SAFE_INTEGER, SIGNATURE_FIELD, plain_values
from bench.model.reports import Measurement, NodeReport, ReportError, Samples, utc_now

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
    fast = _msgspec_dumps(data)
    if fast is not None:
        return fast
    try:
        return "".join(_indented(data, 0, [])) + "\n"
    except (_NotPlain, ValueError, RecursionError):
        return json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"


#: JSON sorted by key, compact, in C (msgspec): a 500-node capacity report in 5 ms, where the standard library's C
#: encoder takes 37 ms with sort_keys and the walk below 70 ms.
_SORTED = msgspec.json.Encoder(order="sorted")
#: Integers json and msgspec both write as their digits (msgspec refuses some beyond 64 bits).
_MAX_INT = 2**63 - 1


def _msgspec_dumps(data: Any) -> str | None:
    """dumps(data) written by msgspec (sorted compact, then re-indented by msgspec.json.format, which keeps every
    token's text and lays containers out as json.dumps(indent=2) does: empty ones as '[]' and '{}', 'key: value'),
    or None where the bytes could differ: a value canonical.plain_values refuses (a float either writer spells with
    an exponent, NaN, a subclass, a key that is not a string), or a string json would escape (ensure_ascii: a
    backslash, a byte beyond ASCII or DEL in msgspec's writing; every other ASCII character both write as it is).
    tests/report/test_store_dumps.py holds it to json.dumps on randomized documents."""
    if type(data) is not dict or plain_values(data, _MAX_INT) is None:
        return None
    try:
        compact = _SORTED.encode(data)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return None
    if not compact.isascii() or b"\\" in compact or b"\x7f" in compact:
        return None
    return msgspec.json.format(compact, indent=2).decode("ascii") + "\n"


def signed_dumps(data: dict[str, Any], key: Ed25519PrivateKey) -> str:
    """Sign `data` (data['signature'] = sign.sign(data, key)) and return dumps(data): the same block and the same text,
    with one walk of the values (canonical.plain_values) and one msgspec writing where sign and dumps took two each
    (a site's capacity report: 4,000 device rows). The members before and after 'signature' are written apart; joined
    they are the compact sorted writing both take (msgspec sorts keys by code point, as the split does): less the
    integral floats' '.0', the canonical bytes signed (as canonical._msgspec_canonical takes them), and with the
    signature member between them, what _msgspec_dumps re-indents. Where either fast writer would step aside (a
    document it is unsure of, one holding measurements or a signature already), sign.sign and dumps do it as before
    (tests/report/test_signed_dumps.py holds both to them)."""
    fast = _signed_msgspec(data, key)
    if fast is None:
        data[SIGNATURE_FIELD] = sign.sign(data, key)
        return dumps(data)
    data[SIGNATURE_FIELD], text = fast
    return text


def _signed_msgspec(data: Any, key: Ed25519PrivateKey) -> tuple[dict[str, Any], str] | None:
    if type(data) is not dict or SIGNATURE_FIELD in data or "measurements" in data:
        return None  # signed_view would take measurements' raw arrays out; a block already there is left out
    integral = plain_values(data, MAX_SAFE_INTEGER)  # within 2^53: canonical's bound, tighter than dumps's 2^63
    if integral is None:
        return None
    try:
        halves = [_SORTED.encode({k: v for k, v in data.items() if (k < SIGNATURE_FIELD) is first})
                  for first in (True, False)]  # fmt: skip
    except (TypeError, ValueError, OverflowError, RecursionError):
        return None
    members = [h[1:-1] for h in halves]
    written = b"{" + b",".join(m for m in members if m) + b"}"
    if b"\\" in written or not written.isascii() or b"\x7f" in written:  # what either fast writer steps aside for
        return None
    body = written
    if integral:
        if body.count(b".0,") + body.count(b".0]") + body.count(b".0}") != integral:
            return None
        for end in (b",", b"]", b"}"):
            body = body.replace(b".0" + end, end)
    block = sign.block_for(body, key)
    if not all(type(k) is str and type(v) is str for k, v in block.items()):
        return None
    signed = b'"' + SIGNATURE_FIELD.encode() + b'":' + _SORTED.encode(block)
    if not signed.isascii() or b"\\" in signed or b"\x7f" in signed:
        return None
    compact = b"{" + b",".join(m for m in (members[0], signed, members[1]) if m) + b"}"
    return block, msgspec.json.format(compact, indent=2).decode("ascii") + "\n"


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


def write_atomic(path: Path, text: str | bytes, mode: int | None = None) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`: readers never see half a file.
    The file gets `mode`, else what open() would give it (0666 less the umask: 0644 under the usual 022) — reports hold
    nothing secret and are meant to be shared; keys are written elsewhere (bench.model.keys), owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            text = text.encode("utf-8") if isinstance(text, str) else text
            fh.write(text)
            fh.flush()
            os.fchmod(fh.fileno(), mode if mode is not None else 0o666 & ~_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_report(path: str | Path) -> NodeReport:
    """Read and validate a node report (a record stream, or a version 1 or 2 document); every problem is a one-line
    ReportError naming the file."""
    path = Path(path)
    data = intake.read_json(path).data  # InputError is a ReportError naming the file
    try:
        return NodeReport.from_dict(data)
    except ReportError as exc:
        raise ReportError(f"{path}: {exc}") from None


#: Seconds between two fsyncs of a report while a run appends to it. Every record is written (handed to the kernel)
#: before add() returns, so a crash or SIGKILL of bench loses nothing finished; an fsync guards against the machine
#: itself going down, and takes 1-2 ms on an idle local disk and 15 ms on this shared one: one per record was up to
#: 11,200 of them on an eight-GPU node, more than the whole persistence budget. So a background thread fsyncs what
#: was appended at most this often (add() never waits for the disk), and the header and the end record are fsynced
#: before the writer goes on: a power cut loses at most this many seconds of measurements.
SYNC_INTERVAL_S = 1.0


def _snapshot(m: Measurement) -> bytes:
    """What save() compares to tell whether a measurement's warnings or details changed since it was written: their
    pickle (a copy that costs a microsecond or two; equal values pickle alike unless a dict's keys were reordered,
    which at worst appends an amendment that changes nothing)."""
    return pickle.dumps((m.warnings, m.details), protocol=5)


#: Longest a closing writer waits for its fsync thread (one fsync, on a slow network file system).
STOP_WAIT_S = 30.0


class _Syncer:
    """fsyncs a report's file from a thread of its own (on its own descriptor): whenever records are pending, then it
    rests `interval` seconds. os.fsync releases the interpreter lock, so the run goes on while the disk works. The
    thread holds this object, not the writer, so a writer dropped without close() is still collected (and closed)."""

    def __init__(self, fd: int, interval: float) -> None:
        self.fd = fd
        self.interval = interval
        self.pending = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.fsyncs = 0
        self.seconds = 0.0
        self.thread = threading.Thread(target=self._run, name="bench-report-fsync", daemon=True)
        self.thread.start()

    def sync(self) -> None:
        """fsync now, in the caller's thread."""
        with self.lock:
            self.pending.clear()
            start = time.perf_counter()
            os.fsync(self.fd)
            self.fsyncs += 1
            self.seconds += time.perf_counter() - start

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.pending.wait()
                if self.stopping.is_set():
                    break
                self.sync()
                self.stopping.wait(self.interval)
        finally:
            with self.lock:
                if self.pending.is_set():
                    os.fsync(self.fd)
                os.close(self.fd)
                self.fd = -1

    def stop(self) -> None:
        """Sync what is pending, end the thread and close its descriptor. While the interpreter shuts down its
        daemon threads no longer run: the pending records are synced here instead of waiting for the thread."""
        self.stopping.set()
        self.pending.set()
        if sys.is_finalizing():
            with contextlib.suppress(OSError):
                os.fsync(self.fd)
            return
        self.thread.join(timeout=STOP_WAIT_S)


class ReportWriter:
    """Owns a report while a run fills it, as a stream of signed records (bench.model.records): the header is written
    at once, each measurement is appended as it arrives, finish() appends the end record. Each append costs what its
    record holds, never what the report holds already, and a crash at any moment leaves a signed partial report.

    `report.measurements` keeps every measurement added, the same objects (their raw samples moved into model.Samples,
    a quarter of the memory of a list). A run that notes something on a measurement after adding it (a warning, a
    detail) calls save(), which appends an amendment for each measurement whose warnings or details changed; finish()
    does the same before its end record."""

    def __init__(self, report: NodeReport, directory: Path, key: Ed25519PrivateKey | None = None, *,
                 sync_interval_s: float = SYNC_INTERVAL_S) -> None:  # fmt: skip
        self.report = report
        self.path = directory / REPORT_NAME
        self.key = key
        self.sync_interval_s = sync_interval_s
        self._lock = threading.Lock()
        self._chain = records.Chain(key)
        self._seen: list[bytes] = []
        self._finished = bool(report.end_utc)  # a report handed over complete gets its end record now
        self._broken = False
        signer = self._chain.signer()
        lines = [self._line(records.header(report, signer))]
        for m in report.measurements:
            lines.append(self._line(self._measurement(m)))
            self._seen.append(_snapshot(m))
        if report.end_utc:
            lines.append(self._line(self._end()))
        first = b"".join(lines)
        try:
            write_atomic(self.path, first)  # the header appears whole or not at all
        except OSError as exc:  # a read-only, full or missing results folder: said before anything is measured
            raise ReportError(f"cannot write a report in {directory}: {exc.strerror or exc}") from exc
        self._size = len(first)  # bytes of whole records in the file: where a failed append is cut back to
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.syncer = _Syncer(os.dup(self._fd), sync_interval_s)

    def _line(self, record: dict[str, Any]) -> bytes:
        line, signature = self._chain.line(record)
        if signature is not None:
            self.report.signature = {**(self._chain.signer() or {}), "signature": signature}
        return line

    def _measurement(self, m: Measurement) -> dict[str, Any]:
        for name in ("warmup_s", "samples_s"):
            values = getattr(m, name)
            if not isinstance(values, Samples):
                setattr(m, name, Samples(values))
        return {"type": records.MEASUREMENT, "measurement": m.to_record()}

    def _end(self) -> dict[str, Any]:
        return {"type": records.END, "end_utc": self.report.end_utc, "interrupted": self.report.interrupted}

    def _write(self, record: dict[str, Any], sync: bool = False, then: Callable[[], None] | None = None) -> None:
        """Sign, chain and append one record (then run `then`, which notes it in memory), or leave the file, the chain
        and the measurements as they were: a write that fails (ENOSPC, EIO) after part of the line reached the file,
        or a Ctrl-C or SIGTERM raised anywhere in between, is cut back, and the chain does not move on past a record
        the file does not hold. Otherwise what follows (the end record closing the run as interrupted) would sit
        after half a line, or name a record that is not there: the whole report refused, every finished measurement
        with it. When the cut itself fails, nothing more is appended (the report stays a signed partial one, its
        torn last line dropped by readers)."""
        if self._broken:
            raise ReportError(f"{self.path}: an earlier write failed and could not be undone; the report ends before "
                              "it (partial)")  # fmt: skip
        seq, prev, signature, size = self._chain.seq, self._chain.prev, self.report.signature, self._size
        kept = len(self.report.measurements), len(self._seen)
        try:
            line = self._line(record)
            self._append(line, sync)
            self._size = size + len(line)
            if then is not None:
                then()
        except BaseException as exc:
            self._chain.seq, self._chain.prev, self.report.signature, self._size = seq, prev, signature, size
            del self.report.measurements[kept[0] :], self._seen[kept[1] :]
            try:
                os.ftruncate(self._fd, size)
            except OSError:
                self._broken = True
            if isinstance(exc, OSError):  # a full or read-only disk: one line saying what the report holds
                raise ReportError(f"{self.path}: cannot append to the report ({exc.strerror or exc}); it holds the "
                                  f"{len(self.report.measurements)} measurements written before (partial)") from exc  # fmt: skip
            raise

    def _append(self, line: bytes, sync: bool = False) -> None:
        view = memoryview(line)
        while view:
            view = view[os.write(self._fd, view) :]
        if sync:
            self.syncer.sync()
        else:
            self.syncer.pending.set()

    def add(self, measurement: Measurement) -> None:
        """Append one measurement (written before this returns; see SYNC_INTERVAL_S for when it is fsynced)."""
        with self._lock:
            if self._finished:
                raise ValueError(f"{self.path}: the report is finished; nothing can be added")
            seen = _snapshot(measurement)

            def kept() -> None:
                self.report.measurements.append(measurement)
                self._seen.append(seen)

            self._write(self._measurement(measurement), then=kept)

    def save(self) -> None:
        """Append an amendment for every measurement whose warnings or details changed since it was written (compared
        with a copy taken then: no re-encoding of what did not change)."""
        with self._lock:
            self._amend_changed()

    def _amend_changed(self) -> None:
        for i, (m, seen) in enumerate(zip(self.report.measurements, self._seen, strict=True)):
            now = _snapshot(m)
            if now != seen:
                record = {"type": records.AMEND, "index": i, "warnings": m.warnings, "details": m.details}
                self._write(record, sync=True, then=functools.partial(self._seen.__setitem__, i, now))

    def finish(self, interrupted: bool = False) -> None:
        """Append what changed on measurements already written (as save()), the end record (end time, whether the run
        was interrupted), and fsync. Amendments may follow (save()); measurements may not."""
        with self._lock:
            if self._finished:
                return
            self._amend_changed()
            self.report.end_utc = utc_now()
            self.report.interrupted = interrupted
            self._finished = True
            self._write(self._end(), sync=True)

    def close(self) -> None:
        """Fsync what is pending and release the file (the report stays as written: without finish() it reads as
        partial). finish() does not close: amendments may still follow."""
        with self._lock:
            if self._fd < 0:
                return
            self.syncer.stop()
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        try:
            self.close()
        except (OSError, AttributeError):
            pass


__all__ = ["REPORT_NAME", "ReportError", "ReportWriter", "dumps", "load_report", "new_run_id", "write_atomic"]
