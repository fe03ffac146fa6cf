"""Run a plan of measurements into a node report, saving after each so a crash or Ctrl-C loses nothing finished.

Steps with a `lane` (a GPU's device id) run in order within their lane, and the lanes of a node's GPUs run at the same
time, one thread each with its own current device: measured one after another, eight GPUs take eight times as long,
and each GPU's sustained figure would be taken with its neighbours idle (cooler, more power to share) — flattering.
Every measurement taken that way records which devices ran alongside it. Steps without a lane (the CPU) run after.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.hardware import devices
from bench.provenance import tool_info
from bench.report.model import Measurement, NodeReport, utc_now
from bench.report.store import ReportWriter, new_run_id


@dataclass(frozen=True)
class Step:
    """One unit of work: returns a Measurement, or yields several (a search), each saved as soon as it arrives."""

    label: str
    run: Callable[[], Measurement | Iterable[Measurement]]
    #: what an error record names when the step fails (see execute(keep_going=True))
    workload: str = "step"
    device: dict[str, Any] | None = None
    #: the device whose steps run in order in one thread, concurrently with other lanes (None: run after the lanes)
    lane: str | None = None


class Terminated(BaseException):
    """SIGTERM (a scheduler's cancel or pre-emption) delivered as an exception, so the report is closed as partial
    exactly as on Ctrl-C. A BaseException, so that no step's error handling swallows it."""


def failure(step: Step, exc: BaseException, start: str) -> Measurement:
    """The record of a step that raised: status 'error' with the exception, so the suite can go on."""
    lines = traceback.format_exception_only(type(exc), exc)
    return Measurement(
        workload=step.workload,
        spec={"step": step.label},
        device=step.device or {},
        status="error",
        reason=(lines[-1].strip() if lines else type(exc).__name__)[:500],
        details={"traceback": traceback.format_exc(limit=8)[-4000:]},
        start_utc=start,
        end_utc=utc_now(),
    )


def measurements_of(step: Step, keep_going: bool = False) -> Iterator[Measurement]:
    """The step's measurements as they arrive (a Measurement, or several from a generator). With keep_going, an
    exception ends the step with its failure() record instead of propagating (Ctrl-C and SIGTERM always propagate)."""
    start = utc_now()
    try:
        result = step.run()
        yield from [result] if isinstance(result, Measurement) else result
    except Exception as exc:
        if not keep_going:
            raise
        yield failure(step, exc, start)


def start(
    results_dir: Path, config: dict[str, Any], inventory: dict[str, Any], key: Ed25519PrivateKey | None = None
) -> ReportWriter:
    """Create results_dir/<run-id>/report.json (written at once, then after every measurement; signed with `key`)."""
    run_id = new_run_id()
    report = NodeReport(
        run_id=run_id,
        tool=tool_info(),
        command_line=list(sys.argv),
        config=config,
        inventory=inventory,
        start_utc=utc_now(),
    )
    return ReportWriter(report, results_dir / run_id, key)


class Spool:
    """One rank's finished measurements, appended to RESULTS_DIR/.spool/<job>-<host>-rank<N>.jsonl as each finishes
    (flushed and fsynced), for ranks that are not their node's leader: their measurements reach the signed report
    only at the gather, and a rank that dies before it would lose them. recover() reads this host's spools of the
    job; remove() deletes this rank's once its measurements were delivered."""

    def __init__(self, results_dir: Path, job: str, host: str, rank: int) -> None:
        self.folder = results_dir / ".spool"
        self.prefix = f"{job}-{host[:16]}-rank"
        self.path = self.folder / f"{self.prefix}{rank}.jsonl"

    def add(self, m: Measurement) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(m.to_dict(), sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def recover(self) -> list[Measurement]:
        """Every measurement in this host's spools of this job but this rank's own; a torn last line is skipped."""
        out = []
        for path in sorted(self.folder.glob(f"{self.prefix}*.jsonl")):
            if path == self.path:
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    out.append(Measurement.from_dict(json.loads(line)))
                except (ValueError, TypeError, KeyError):
                    continue
        return out

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def lanes(steps: Sequence[Step]) -> dict[str, list[Step]]:
    """The steps of each lane, in order."""
    out: dict[str, list[Step]] = {}
    for s in steps:
        if s.lane is not None:
            out.setdefault(s.lane, []).append(s)
    return out


def execute(
    writer: ReportWriter,
    steps: Sequence[Step],
    on_step: Callable[[Step], None] | None = None,
    on_measurement: Callable[[Measurement], None] | None = None,
    keep_going: bool = False,
    concurrent: bool = True,
) -> NodeReport:
    """Run every step, saving each measurement as it arrives: with `concurrent` and more than one lane, the lanes at
    once (one thread each), then the steps without a lane in order; otherwise everything in order. With keep_going, a
    step that raises is recorded as an 'error' measurement and the next step runs; otherwise, and always on Ctrl-C or
    SIGTERM, the report is closed as interrupted and the exception re-raised."""
    lock = threading.Lock()
    parallel = lanes(steps) if concurrent else {}
    if len(parallel) < 2:
        parallel = {}

    def record(step_or_m: Step | Measurement) -> None:
        with lock:
            if isinstance(step_or_m, Step):
                if on_step:
                    on_step(step_or_m)
                return
            writer.add(step_or_m)
            if on_measurement:
                on_measurement(step_or_m)

    try:
        if parallel:
            _run_lanes(parallel, record, keep_going)
        for step in steps:
            if step.lane in parallel:
                continue
            record(step)
            for m in measurements_of(step, keep_going):
                record(m)
    except BaseException:
        with lock:
            writer.finish(interrupted=True)
        raise
    writer.finish()
    return writer.report


def _run_lanes(parallel: dict[str, list[Step]], record: Callable[[Any], None], keep_going: bool) -> None:
    """One thread per lane; the first exception that escapes a lane stops the others between steps and is raised
    here. The main thread only waits (in short joins, so Ctrl-C and SIGTERM still reach it)."""
    stop = threading.Event()
    errors: list[BaseException] = []
    together = sorted(parallel)

    def run_lane(lane: str, steps: list[Step]) -> None:
        try:
            devices.bind_thread(lane)
            for step in steps:
                if stop.is_set():
                    return
                record(step)
                for m in measurements_of(step, keep_going):
                    m.details["concurrency"] = {"devices": together, "note": "measured at the same time as these"}
                    if stop.is_set():
                        return
                    record(m)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which re-raises it
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=run_lane, args=(lane, s), name=f"bench-{lane}", daemon=True)
               for lane, s in parallel.items()]  # fmt: skip
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.1)
    except BaseException:
        stop.set()
        raise
    if errors:
        raise errors[0]
