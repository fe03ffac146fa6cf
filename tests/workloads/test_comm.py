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
