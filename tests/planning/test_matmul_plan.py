"""bench.planning.matmul: the steps a matmul plan gives, the peak each is held against (a training run is held against
the same one, never the CPU overrides), and the rank figures stragglers are judged on."""

import pytest

from bench.hardware import peaks
from bench.hardware.devices import DeviceFacts
from bench.measure.sampling import Policy
from bench.planning import matmul as matmul_plan
from bench.planning import train as train_plan
from tests.report import synthetic as syn

CPU = DeviceFacts("cpu", "cpu", "test cpu", "fp-a", 0, None, ("avx2", "fma"))
HOST = {"physical_cores": 2, "max_clock_mhz": 3000.0, "isa_flags": {"avx2": True, "fma": True}, "cpu_model": "test cpu"}


def test_fp8_is_planned_with_and_without_fast_accumulation():
    gpu = DeviceFacts("cuda:0", "cuda", "NVIDIA H100 80GB HBM3", "GPU-x", 50 << 20, "9.0", sm_count=132)
    steps = matmul_plan.fixed_plan([gpu], {}, ("float8_e4m3",), [(64, 64, 64)], Policy(), matmul_plan.PeakOverrides())
    assert [s.label for s in steps] == ["cuda:0 float8_e4m3 64x64x64", "cuda:0 float8_e4m3 fast-accum 64x64x64"]
    assert {s.lane for s in steps} == {"cuda:0"}


def test_a_matmul_and_a_training_run_are_held_against_the_same_peak():
    for precision in ("float32", "float64"):
        expected = peaks.peak_for(CPU, HOST, precision)
        assert matmul_plan.PeakOverrides().peak(CPU, HOST, precision) == expected
        assert train_plan.peak(CPU, HOST, precision) == expected


def test_an_override_is_recorded_as_one_and_never_reaches_training():
    overridden = matmul_plan.PeakOverrides(clock_mhz=4000.0, fma_units=1).peak(CPU, HOST, "float32")
    assert overridden.assumptions["clock_source"] == peaks.Source.OVERRIDE == "override"
    assert overridden.assumptions["fma_units_source"] == peaks.Source.OVERRIDE
    assert overridden.tflops == pytest.approx(2 * 4000e6 * 16 / 1e12)  # 2 cores x 4 GHz x (1 FMA unit x 8 lanes x 2)
    assert train_plan.peak(CPU, HOST, "float32").assumptions["clock_source"] == peaks.Source.CPUFREQ_MAX


def test_a_rank_is_judged_on_its_mamf_not_on_its_fastest_search_candidate():
    """local_figures uses the one MAMF rule (bench.figures.mamf): a search candidate that happened to be quicker does
    not stand for the rank."""
    candidate = syn.matmul("float32", syn.samples(0.001), role="candidate")
    final = syn.matmul("float32", syn.samples(0.002), role="final", mamf=True)
    other = syn.matmul("float64", syn.samples(0.004))
    got = matmul_plan.local_figures([candidate, final, other])
    assert got == {"float32": final.summary["tflops_median"], "float64": other.summary["tflops_median"]}
    assert got["float32"] < candidate.summary["tflops_median"]


def test_stragglers_are_below_the_fraction_of_the_job_median_at_float32_first():
    ranks = [{"rank": 0, "hostname": "a", "figures": {"float32": 1.0, "bfloat16": 4.0}},
             {"rank": 1, "hostname": "b", "figures": {"float32": 0.5, "bfloat16": 4.0}},
             {"rank": 2, "hostname": "c", "figures": {"float32": 1.1, "bfloat16": 1.0}},
             {"rank": 3, "hostname": "d", "figures": {}}]  # fmt: skip
    (slow,) = matmul_plan.stragglers(ranks, 0.75)
    assert (slow["rank"], slow["precision"], slow["job_median_tflops"]) == (1, "float32", 1.0)
    assert slow["fraction_of_median"] == pytest.approx(0.5)
    assert matmul_plan.stragglers(ranks[:1]) == []  # one rank measured: nothing to compare with
