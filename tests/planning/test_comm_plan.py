"""bench.planning.comm: rank 0's record of one message size, and the sizes a suite sweeps."""

from bench import figures
from bench.hardware.devices import DeviceFacts
from bench.planning import comm as comm_plan

CPU = DeviceFacts("cpu", "cpu", "test cpu", "fp-a", 0, None, ("avx2", "fma"))
HOST = {"physical_cores": 2, "max_clock_mhz": 3000.0, "isa_flags": {"avx2": True, "fma": True}, "cpu_model": "test cpu"}


def test_a_comm_measurement_is_the_slowest_rank_per_iteration(monkeypatch):
    monkeypatch.setattr(comm_plan.dist, "get_backend", lambda: "gloo")
    device = {"id": "cpu", "uuid": "fp-a"}
    ranks = [{"rank": 1, "host": "b", "device": device, "warmup_s": [0.3], "samples_s": [0.1, 0.4], "correct": True},
             {"rank": 0, "host": "a", "device": device, "warmup_s": [0.2], "samples_s": [0.2, 0.3], "correct": True}]  # fmt: skip
    m = comm_plan.measurement("all_reduce", 1 << 20, 2, ranks, CPU, "2026-11-28T10:00:00.000000Z")
    assert (m.samples_s, m.warmup_s, m.status) == ([0.2, 0.4], [0.3], "ok")
    assert (m.work_per_iteration, m.work_unit) == (1 << 20, figures.Unit.BYTE)
    assert m.summary == figures.comm_summary([0.2, 0.4], 1 << 20, "all_reduce", 2)
    assert [r["host"] for r in m.details["per_rank"]] == ["a", "b"]  # every rank's raw samples kept, by rank


def test_a_suite_sweeps_the_kind_default_up_to_its_largest_message():
    cc = {"min_bytes": 8, "max_bytes": None, "factor": 2}
    assert comm_plan.suite_sizes(cc, "cpu")[-1] == 64 * 2**20
    assert comm_plan.suite_sizes(cc, "cuda")[-1] == 2**30
    assert comm_plan.suite_sizes({**cc, "max_bytes": 100, "factor": 4}, "cuda") == [8, 32]
