"""Timers: how one iteration's duration is read. Swappable so tests are deterministic without hardware.

Every timer times `iterations` calls of `fn` and returns their durations in seconds. By default each call is timed on
its own (the GPU timer flushes the L2 cache before each, untimed). `back_to_back` timers run the calls one after the
other and read the clock only at the boundaries between them, so the durations add up to the whole batch: every gap
between calls counted, nothing flushed. That is what a sustained (MSMF) window means.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import torch


class Timer(Protocol):
    name: str
    #: the shortest duration the timer can tell apart, in seconds
    resolution_s: float

    def time(self, fn: Callable[[], object], iterations: int) -> list[float]: ...


class PerfCounterTimer:
    """Wall-clock time of synchronous CPU work with time.perf_counter."""

    name = "perf_counter"
    #: perf_counter's nominal resolution is 1 ns; a call and the scheduler cost about a microsecond.
    resolution_s = 1e-6

    def __init__(self, back_to_back: bool = False) -> None:
        self.back_to_back = back_to_back

    def time(self, fn: Callable[[], object], iterations: int) -> list[float]:
        out = []
        t0 = time.perf_counter()
        for _ in range(iterations):
            if not self.back_to_back:
                t0 = time.perf_counter()
            fn()
            t1 = time.perf_counter()
            out.append(t1 - t0)
            t0 = t1
        return out


class CudaEventTimer:
    """Device time between CUDA events around each call, with an L2 flush before each (not timed).

    All events of a batch are read after one synchronize, so the host never stalls the queue between iterations.
    `cuda` is torch.cuda; tests pass a small fake of the few calls used here.
    """

    name = "cuda_event"
    #: CUDA documents event timing resolution of about half a microsecond.
    resolution_s = 0.5e-6

    def __init__(
        self, device: torch.device, flush_bytes: int, cuda: Any = torch.cuda, back_to_back: bool = False
    ) -> None:
        if back_to_back and flush_bytes:
            raise ValueError("a back-to-back timer times the gaps between calls: it cannot flush inside them")
        self.device = device
        self.cuda = cuda
        self.back_to_back = back_to_back
        self._flush = torch.empty(flush_bytes, dtype=torch.uint8, device=device) if flush_bytes > 0 else None

    def _event(self) -> Any:
        e = self.cuda.Event(enable_timing=True)
        e.record()
        return e

    def time(self, fn: Callable[[], object], iterations: int) -> list[float]:
        pairs = []
        # events record on the current device's stream: make it the timed device's, and synchronize that device
        with self.cuda.device(self.device):
            boundary = self._event() if self.back_to_back else None
            for _ in range(iterations):
                if self._flush is not None:
                    self._flush.zero_()
                start = boundary or self._event()
                fn()
                end = self._event()
                pairs.append((start, end))
                boundary = end if self.back_to_back else None
            self.cuda.synchronize(self.device)
        return [s.elapsed_time(e) / 1000.0 for s, e in pairs]
