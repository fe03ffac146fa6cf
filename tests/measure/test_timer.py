"""The CUDA event timer, driven through a fake of the torch.cuda calls it makes (no GPU needed)."""

import contextlib

import pytest
import torch

from bench.measure.timer import CudaEventTimer, PerfCounterTimer
from tests.fakes.timer import FakeTimer


class FakeCuda:
    """Records the order of calls; event i's elapsed time is scripted in milliseconds."""

    def __init__(self, elapsed_ms):
        self.log = []
        self.elapsed_ms = list(elapsed_ms)
        fake = self

        class Event:
            def __init__(self, enable_timing=False):
                assert enable_timing
                self.kind = None

            def record(self):
                fake.log.append("record")

            def elapsed_time(self, end):
                assert fake.log[-1] == "synchronize", "events must be read after synchronize"
                return fake.elapsed_ms.pop(0)

        self.Event = Event

    def device(self, dev):
        self.log.append(f"device {dev}")
        return contextlib.nullcontext()

    def synchronize(self, dev=None):
        self.log.append("synchronize")


def test_cuda_event_timer_flushes_times_each_iteration_and_syncs_once():
    cuda = FakeCuda([2.0, 4.0, 1.5])
    timer = CudaEventTimer(torch.device("cpu"), flush_bytes=4096, cuda=cuda)
    flush = timer._flush
    flush.fill_(7)
    calls = []

    def work():
        calls.append("fn")
        assert int(flush.max()) == 0, "the L2 flush buffer is rewritten before every timed call"
        flush.fill_(7)

    out = timer.time(work, 3)
    assert out == [0.002, 0.004, 0.0015]  # milliseconds -> seconds
    assert calls == ["fn"] * 3
    assert cuda.log == ["device cpu"] + ["record", "record"] * 3 + ["synchronize"]
    assert flush.numel() == 4096


def test_cuda_event_timer_without_flush():
    timer = CudaEventTimer(torch.device("cpu"), flush_bytes=0, cuda=FakeCuda([1.0]))
    assert timer._flush is None
    assert timer.time(lambda: None, 1) == [0.001]


def test_perf_counter_timer_measures_positive_durations():
    out = PerfCounterTimer().time(lambda: sum(range(10_000)), 4)
    assert len(out) == 4 and all(t > 0 for t in out)


def test_fake_timer_runs_out_loudly():
    timer = FakeTimer([1.0])
    timer.time(lambda: None, 1)
    with pytest.raises(AssertionError, match="ran out after 1"):
        timer.time(lambda: None, 1)


@pytest.mark.parametrize("bad", [0.0, -1e-3, float("nan"), float("inf")])
def test_fake_timer_refuses_what_no_clock_measures(bad):
    with pytest.raises(AssertionError, match="finite positive"):
        FakeTimer([bad]).time(lambda: None, 1)
