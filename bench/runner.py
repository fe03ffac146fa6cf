"""Run a plan of measurements into a node report, saving after each so a crash or Ctrl-C loses nothing finished."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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


def execute(
    writer: ReportWriter,
    steps: Sequence[Step],
    on_step: Callable[[Step], None] | None = None,
    on_measurement: Callable[[Measurement], None] | None = None,
    keep_going: bool = False,
) -> NodeReport:
    """Run every step in order, saving each measurement as it arrives. With keep_going, a step that raises is recorded
    as an 'error' measurement and the next step runs; otherwise, and always on Ctrl-C or SIGTERM, the report is closed
    as interrupted and the exception re-raised."""
    try:
        for step in steps:
            if on_step:
                on_step(step)
            for m in measurements_of(step, keep_going):
                writer.add(m)
                if on_measurement:
                    on_measurement(m)
    except BaseException:
        writer.finish(interrupted=True)
        raise
    writer.finish()
    return writer.report
