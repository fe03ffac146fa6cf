"""What one save costs: writing a measurement costs bytes in proportion to that measurement, never to the report so
far (issue 22: every save rewrote every raw sample). Bytes written are counted, not time, so the test is exact."""

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.figures import matmul_summary
from bench.model.reports import Measurement, NodeReport
from bench.report.store import ReportWriter


def measurement(n: int) -> Measurement:
    samples = [1e-5 * (1 + (i % 97) / 1000) for i in range(n)]
    return Measurement(workload="matmul", spec={"m": 8, "n": 8, "k": 8, "precision": "float32"},
                       device={"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "f"}, status="ok",
                       work_per_iteration=1024, work_unit="FLOP", timer="perf_counter", samples_s=samples,
                       summary=matmul_summary(samples, 1024), validity={"check": "freivalds", "passed": True})  # fmt: skip


@pytest.fixture
def key():
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def report() -> NodeReport:
    return NodeReport(run_id="r1", tool={"name": "bench"}, command_line=["bench"], config={},
                      inventory={"host": {}}, start_utc="2026-11-28T10:00:00.000000Z")  # fmt: skip


def bytes_written(action) -> int:
    """Bytes this process handed to write() system calls while `action` ran (wchar in /proc/self/io: every file
    API ends there, so an atomic rewrite and an append are counted alike)."""

    def wchar() -> int:
        with open("/proc/self/io") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("wchar:"))

    before = wchar()
    action()
    return wchar() - before


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="counts bytes through /proc/self/io (Linux)")
def test_a_save_costs_what_its_measurement_adds_not_the_report_so_far(tmp_path, key):
    small, big = measurement(10), measurement(20_000)
    quiet = ReportWriter(report(), tmp_path / "a", key)
    quiet.add(small)
    after_small = bytes_written(lambda: quiet.add(measurement(10)))
    loud = ReportWriter(report(), tmp_path / "b", key)
    loud.add(big)  # 20,000 samples already in the report
    after_big = bytes_written(lambda: loud.add(measurement(10)))
    assert after_small > 0
    assert after_big <= after_small + 64, (after_small, after_big)


def test_samples_cost_at_most_ten_bytes_each_on_disk(tmp_path, key):
    w = ReportWriter(report(), tmp_path, key)
    before = w.path.stat().st_size
    w.add(measurement(20_000))
    assert (w.path.stat().st_size - before) / 20_000 <= 10
