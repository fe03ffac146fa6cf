"""Background telemetry: read clocks, power, temperature and energy while a measurement runs.

The reader is a plain callable returning {field: number or None}; the hardware seam supplies one for NVML GPUs and
one for the host CPU. Summaries are pure functions of the recorded samples.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from bench.hardware.devices import DeviceFacts

Reader = Callable[[], dict[str, Any]]
#: Fields that are running counters (their difference is what matters), not levels.
COUNTERS = ("energy_j",)
#: Fields that are bitmasks of reasons (NVML clock event / throttle reasons); summarised as the union of bits seen.
BITMASKS = ("throttle_reasons",)


class Sampler:
    """Calls `read` every `interval_s` on a daemon thread between __enter__ and __exit__, plus once at each end."""

    def __init__(self, read: Reader, interval_s: float = 0.1) -> None:
        self.read = read
        self.interval_s = interval_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def _sample(self) -> None:
        try:
            values = self.read()
        except Exception as exc:  # noqa: BLE001 - telemetry must never break a measurement
            values = {"error": f"{type(exc).__name__}: {exc}"}
        self.samples.append({"t_s": time.monotonic() - self._t0, **values})

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> Self:
        self._t0 = time.monotonic()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="bench-telemetry", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()


def summarize(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Per level field: min/median/max; per counter: the increase (energy over the window) and mean power; bitmasks:
    the union of the values seen while the work ran (the first and last samples are taken at the window's edges,
    where an idle GPU reports GpuIdle, so they count only when there is nothing else); text fields such as the
    reader's `scope`: the first value."""
    out: dict[str, Any] = {"samples": len(samples)}
    if not samples:
        return out
    duration = samples[-1]["t_s"] - samples[0]["t_s"]
    out["duration_s"] = duration
    fields = {k for s in samples for k in s if k not in ("t_s", "error")}
    for name in sorted(fields):
        values = [
            s[name] for s in samples if isinstance(s.get(name), (int, float)) and not isinstance(s.get(name), bool)
        ]
        if not values:
            continue
        if name in COUNTERS:
            delta = values[-1] - values[0]
            if delta >= 0:
                out[name] = delta
                if duration > 0:
                    out["mean_power_w"] = delta / duration
        elif name in BITMASKS:
            union = 0
            for v in values[1:-1] if len(values) > 2 else values:
                union |= int(v)
            out[name] = union
        else:
            out[name] = {"min": min(values), "median": statistics.median(values), "max": max(values)}
    for name in ("scope",):
        text = next((s[name] for s in samples if isinstance(s.get(name), str)), None)
        if text is not None:
            out[name] = text
    errors = [s["error"] for s in samples if "error" in s]
    if errors:
        out["errors"] = sorted(set(errors))
    return out


def readers(facts: list[DeviceFacts]) -> tuple[dict[str, Reader], list[Callable[[], None]]]:
    """A telemetry reader by device id (NVML for a GPU with a UUID, the host's for the CPU; none where NVML has none)
    and the closers of those opened: what a workload samples during a sustained window (a lane opens its own)."""
    from bench.hardware import host, nvml

    out: dict[str, Reader] = {}
    closers = []
    for f in facts:
        if f.kind == "cuda" and f.uuid:
            reader = nvml.telemetry_reader(f.uuid)
            if reader:
                out[f.id], close = reader
                closers.append(close)
        elif f.kind == "cpu":
            out[f.id] = host.cpu_telemetry
    return out, closers
