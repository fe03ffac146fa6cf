import pytest
import torch

from bench import figures
from bench.hardware.devices import DeviceFacts
from bench.measure.sampling import Policy
from bench.model.reports import Measurement
from bench.workloads import membw as mb
from tests.fakes.timer import FakeTimer

CPU = DeviceFacts("cpu", "cpu", "test cpu", "fp", 0, None, ())
FAST = Policy(budget_s=0.02, min_iterations=3, max_warmup_s=0.01, max_warmup_iterations=2)


def test_stream_kernels_on_cpu_are_measured_and_checked():
    ms = mb.run(CPU, FAST, elements=2**16)
    assert [m.spec["kernel"] for m in ms] == ["copy", "scale", "add", "triad"]
    assert all(m.status == "ok" and m.validity["passed"] for m in ms)
    assert [m.details["bytes_per_iteration"] for m in ms] == [16 * 2**16, 16 * 2**16, 24 * 2**16, 24 * 2**16]
    for m in ms:
        assert m.summary == figures.membw_summary(m.samples_s, m.work_per_iteration, None)
        Measurement.from_dict(m.to_dict())


def test_stream_byte_counts_and_figures_from_a_fake_timer():
    timer = FakeTimer([1e-3] * 100)
    triad = mb.run(CPU, Policy(budget_s=0.005, min_iterations=3, max_warmup_s=0.003), elements=1000, timer=timer)[3]
    assert triad.summary["gbps_median"] == pytest.approx(24 * 1000 / 1e-3 / 1e9)
    assert figures.membw_summary([1.0], 2e12, 4.0)["efficiency"] == pytest.approx(0.5)


def test_a_wrong_kernel_result_is_invalid(monkeypatch):
    real = torch.add

    def faulty(*args, **kwargs):
        out = real(*args, **kwargs)
        out[7] = -1.0
        return out

    monkeypatch.setattr(torch, "add", faulty)
    ms = mb.run(CPU, FAST, elements=1024)
    assert [m.status for m in ms] == ["ok", "ok", "invalid", "invalid"]


def test_arrays_that_do_not_fit_are_skipped():
    ms = mb.run(CPU, FAST, elements=2**45)
    assert all(m.status == "skipped" and "GiB" in m.reason for m in ms)
