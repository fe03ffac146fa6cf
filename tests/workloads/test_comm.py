import pytest

from bench import figures
from bench.workloads import comm as cm


@pytest.mark.parametrize(
    "op, n, factor",
    [("all_reduce", 2, 1.0), ("all_reduce", 8, 1.75), ("all_gather", 4, 0.75), ("reduce_scatter", 8, 0.875),
     ("all_to_all", 2, 0.5), ("broadcast", 8, 1.0), ("sendrecv", 2, 1.0), ("all_reduce", 1, 0.0)],
)  # fmt: skip
def test_busbw_factors_are_nccl_tests(op, n, factor):
    assert figures.busbw_factor(op, n) == pytest.approx(factor)


def test_unknown_op():
    with pytest.raises(ValueError, match="valid: all_reduce"):
        figures.busbw_factor("gossip", 2)


def test_message_sizes_like_nccl_tests_b_e_f():
    assert cm.message_sizes(8, 128, 2) == [8, 16, 32, 64, 128]
    assert cm.message_sizes(8, 100, 4) == [8, 32]
    with pytest.raises(ValueError):
        cm.message_sizes(64, 8, 2)


def test_buffers_split_evenly_over_ranks():
    assert cm.elements("all_gather", 100, 3) == 24
    assert cm.elements("all_reduce", 100, 3) == 25
    assert cm.elements("all_to_all", 8, 4) == 4  # never fewer elements than ranks


def test_figures_from_raw_samples():
    f = figures.comm_summary([2e-3, 1e-3, 4e-3], 2_000_000, "all_reduce", 4)
    assert f["median_s"] == 2e-3 and f["algbw_gbps"] == pytest.approx(1.0)
    assert f["busbw_gbps"] == pytest.approx(1.5) and f["busbw_best_gbps"] == pytest.approx(3.0)


class _Recorder:
    """A rank's host as time_batches sees it: a clock advanced by what each call costs, and a log of the calls.

    An operation costs 1 us to launch and 10 us on the wire (the device catches up at sync); a barrier costs 100 us,
    a synchronize 5 us: a per-op barrier or synchronize inside the timed region would show in the samples."""

    def __init__(self) -> None:
        self.now, self.pending, self.log = 0.0, 0.0, []

    def op(self) -> None:
        self.log.append("op")
        self.now += 1e-6
        self.pending += 10e-6

    def sync(self) -> None:
        self.log.append("sync")
        self.now += self.pending + 5e-6
        self.pending = 0.0

    def barrier(self) -> None:
        self.log.append("barrier")
        self.now += 100e-6

    def clock(self) -> float:
        self.log.append("clock")
        return self.now


def test_a_sample_is_the_per_op_mean_of_a_batch_with_barrier_and_sync_outside():
    """nccl-tests' BenchTime: barrier, start, `iters` operations back to back, one synchronize, stop; time / iters."""
    r = _Recorder()
    checked = []
    b = cm.Buffers(r.op, lambda: r.log.append("reset"), lambda: checked.append(list(r.log)) or True, 8)
    warm, timed, ok = cm.time_batches(b, 3, 20, 2, r.sync, r.barrier, r.clock)
    assert ok and len(warm) == 1 and len(timed) == 3
    # 20 launches (1 us each) + the device's 20 x 10 us drained by one 5 us synchronize, over 20 ops
    assert timed == pytest.approx([(20 * 1e-6 + 20 * 10e-6 + 5e-6) / 20] * 3)
    regions = " ".join(r.log).split("clock")[1::2]  # what ran between each start and stop
    assert len(regions) == 4  # the warm-up batch and three timed ones
    assert all(reg.split() == ["op"] * reg.count("op") + ["sync"] for reg in regions)
    assert [reg.count("op") for reg in regions] == [2, 20, 20, 20]
    assert "barrier" not in " ".join(regions)
    # every region begins after a reset, a synchronize and a barrier; the check runs last, on one fresh operation
    assert " ".join(r.log).count("reset sync barrier clock") == 4
    assert checked and checked[0][-4:] == ["reset", "sync", "op", "sync"]


def test_comm_measurement_keeps_the_batch_size_and_v2_records_still_verify():
    """A sample is seconds per operation either way: a v2 record (one op per sample, no ops_per_sample) verifies as
    it did, and a new record says how many operations each sample averages."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bench.model.reports import Measurement
    from bench.report import verify
    from tests.report import synthetic as syn

    key = Ed25519PrivateKey.generate()
    s = syn.samples(0.01)
    for spec in ({"op": "all_reduce", "bytes": 2**20, "world_size": 2},
                 {"op": "all_reduce", "bytes": 2**20, "world_size": 2, "ops_per_sample": 20}):  # fmt: skip
        m = Measurement(workload="comm", spec=spec, device=syn.gpu_measurement(0, 0, 700.0).device, status="ok",
                        timer="perf_counter", work_per_iteration=2**20, work_unit="byte", samples_s=s,
                        summary=figures.comm_summary(s, 2**20, "all_reduce", 2),
                        validity={"check": "collective", "passed": True},
                        start_utc="2026-11-28T10:00:00.000000Z", end_utc="2026-11-28T10:00:05.000000Z")  # fmt: skip
        data = syn.node_report(0, [700.0], key)
        data = {k: v for k, v in data.items() if k != "signature"}
        data["measurements"] = [*data["measurements"], m.to_dict()]
        found = [f for f in verify.verify_node_report(syn.resign(data, key)) if f.severity == "error"]
        assert not found, found
