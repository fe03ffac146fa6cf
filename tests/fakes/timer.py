"""A timer double: scripted durations instead of a clock, for deterministic tests of what sits above a timer
(bench.measure.timer.Timer: `name`, `resolution_s`, `time(fn, iterations) -> seconds per iteration`).

Like a real timer it runs `fn` once per iteration it reports, and only returns what a clock can: finite durations
above zero. A script that runs out is a test bug, said as such rather than a bare StopIteration."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator


class FakeTimer:
    name = "fake"

    def __init__(self, durations: Iterable[float], resolution_s: float = 1e-6) -> None:
        self._it: Iterator[float] = iter(durations)
        self.resolution_s = resolution_s
        self.calls = 0

    def time(self, fn: Callable[[], object], iterations: int) -> list[float]:
        if iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations}")
        out = []
        for _ in range(iterations):
            fn()
            self.calls += 1
            try:
                seconds = float(next(self._it))
            except StopIteration:
                raise AssertionError(f"FakeTimer's script ran out after {self.calls - 1} iterations") from None
            if not (math.isfinite(seconds) and seconds > 0):
                raise AssertionError(f"FakeTimer scripted {seconds!r} s; a clock only measures finite positive times")
            out.append(seconds)
        return out
