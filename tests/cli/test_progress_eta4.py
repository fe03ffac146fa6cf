"""eta4 (issue 25): the plan's estimate of a search step for a precision its device emulates or lacks."""

import dataclasses

from bench import runner
from bench.cli import progress
from bench.hardware.devices import DeviceFacts
from bench.workloads import matmul_search as ms

CPU = DeviceFacts("cpu", "cpu", "test cpu", "fp", 0, None, ("avx2", "fma", "avx512_bf16", "avx512f"))


def step(label, device=CPU):
    facts = dataclasses.asdict(device) if device is not None else None
    return runner.Step(label, list, "matmul", facts)


def test_a_search_the_device_emulates_is_planned_as_the_one_small_measurement_it_is():
    """On the 2-core VM (no AVX512-FP16) float16's search is one small measurement (1.0-1.3 s measured), planned at
    32.5 s: every estimate before it read ~30 s high. Native precisions keep the full search's estimate."""
    config = {"matmul": {"budget_s": 30.0, "window_s": 2.0}}
    full = progress.estimate_s(step("cpu float32 search"), config)
    assert full == 30.0 + 2.0 + 0.5
    assert progress.estimate_s(step("cpu bfloat16 search"), config) == full  # avx512_bf16: native here
    emulated = progress.estimate_s(step("cpu float16 search"), config)
    assert emulated == 30.0 * ms.COARSE_SHARE / len(ms.CPU_SIZES) == 1.5
    assert (
        progress.estimate_s(step("cpu bfloat16 search", dataclasses.replace(CPU, isa_flags=("avx2",))), config) == 1.5
    )
    assert progress.estimate_s(step("cpu tf32 search"), config) == 0.1  # a CUDA mode: skipped on a CPU
    # without device facts (bench matmul's own steps) or with a label that names no precision: the full search
    assert progress.estimate_s(step("cpu float16 search", None), config) == full
    assert progress.estimate_s(step("cpu nonsense search"), config) == full


def test_the_constants_progress_copies_are_the_search_s():
    assert (progress.COARSE_SHARE, progress.SEARCH_SIZES) == (ms.COARSE_SHARE, len(ms.CPU_SIZES))
