"""Run a plan of measurements into a node report, saving after each so a crash or Ctrl-C loses nothing finished."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
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
) -> NodeReport:
    """Run every step in order, saving each measurement as it arrives. On any exception, Ctrl-C included, the report is
    closed as interrupted and the exception re-raised."""
    try:
        for step in steps:
            if on_step:
                on_step(step)
            result = step.run()
            for m in [result] if isinstance(result, Measurement) else result:  # a Measurement, or several
                writer.add(m)
                if on_measurement:
                    on_measurement(m)
    except BaseException:
        writer.finish(interrupted=True)
        raise
    writer.finish()
    return writer.report
