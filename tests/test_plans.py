"""bench.plans: what a suite config turns into (steps per workload and device, in the config's order), the peak each
step is held against, the training specs, and the rank figures stragglers are judged on. Building steps measures
nothing: every check here runs without timing a kernel."""

import pytest

from bench import figures, plans, suite
from bench.hardware import peaks
from bench.hardware.devices import DeviceFacts
from bench.measure.sampling import Policy
from tests.report import synthetic as syn

CPU = DeviceFacts("cpu", "cpu", "test cpu", "fp-a", 0, None, ("avx2", "fma"))
HOST = {"physical_cores": 2, "max_clock_mhz": 3000.0, "isa_flags": {"avx2": True, "fma": True}, "cpu_model": "test cpu"}


def _config(**sections):
    config = suite.defaults()
    for name, values in sections.items():
        config[name].update(values)
    return config


def test_suite_steps_follow_the_config_order_and_leave_comm_to_the_ranks():
    config = _config(suite={"workloads": ["train", "membw", "matmul", "comm"]}, matmul={"precisions": ["float32"]},
                     train={"models": ["mlp"], "presets": ["tiny"]})  # fmt: skip
    steps = plans.suite_steps(config, [CPU], HOST, {})
    assert [s.workload for s in steps] == ["train", "membw", "matmul"]
    assert [s.label for s in steps] == ["train mlp tiny on cpu", "membw cpu", "cpu float32 search"]
    assert all(s.device["id"] == "cpu" and s.lane is None for s in steps)  # the CPU never runs in a lane


def test_fixed_sizes_give_one_step_per_precision_and_size():
    config = _config(suite={"workloads": ["matmul"]},
                     matmul={"search": "none", "precisions": ["float32", "float64"], "sizes": [128, 256]})  # fmt: skip
    labels = [s.label for s in plans.suite_steps(config, [CPU], HOST, {})]
    assert labels == ["cpu float32 128x128x128", "cpu float32 256x256x256", "cpu float64 128x128x128",
                      "cpu float64 256x256x256"]  # fmt: skip


def test_fp8_is_planned_with_and_without_fast_accumulation():
    gpu = DeviceFacts("cuda:0", "cuda", "NVIDIA H100 80GB HBM3", "GPU-x", 50 << 20, "9.0", sm_count=132)
    steps = plans.fixed_plan([gpu], {}, ("float8_e4m3",), [(64, 64, 64)], Policy(), plans.PeakOverrides())
    assert [s.label for s in steps] == ["cuda:0 float8_e4m3 64x64x64", "cuda:0 float8_e4m3 fast-accum 64x64x64"]
    assert {s.lane for s in steps} == {"cuda:0"}


def test_every_step_builder_of_the_registry_is_what_suite_steps_calls():
    from bench import registry

    builders = {w.name: w.step_builder() for w in registry.workloads()}
    assert builders == {"matmul": plans.matmul_suite_steps, "membw": plans.membw_suite_steps,
                        "train": plans.train_suite_steps, "comm": None}  # fmt: skip


def test_a_matmul_and_a_training_run_are_held_against_the_same_peak():
    for precision in ("float32", "float64"):
        expected = peaks.peak_for(CPU, HOST, precision)
        assert plans.PeakOverrides().peak(CPU, HOST, precision) == expected
        assert plans.train_peak(CPU, HOST, precision) == expected


def test_an_override_is_recorded_as_one_and_never_reaches_training():
    overridden = plans.PeakOverrides(clock_mhz=4000.0, fma_units=1).peak(CPU, HOST, "float32")
    assert overridden.assumptions["clock_source"] == peaks.Source.OVERRIDE == "override"
    assert overridden.assumptions["fma_units_source"] == peaks.Source.OVERRIDE
    assert overridden.tflops == pytest.approx(2 * 4000e6 * 16 / 1e12)  # 2 cores x 4 GHz x (1 FMA unit x 8 lanes x 2)
    assert plans.train_peak(CPU, HOST, "float32").assumptions["clock_source"] == peaks.Source.CPUFREQ_MAX


@pytest.mark.parametrize(("kind", "precision", "presets"), [("cpu", "float32", ["tiny"]),
                                                           ("cuda", "bfloat16", ["small", "gpt2-124m"])])  # fmt: skip
def test_train_specs_default_per_device_kind(kind, precision, presets):
    specs = plans.train_specs(suite.defaults()["train"], kind)
    assert [(s.model, s.preset) for s in specs] == [(m, p) for m in ("gpt", "mlp") for p in presets]
    assert {s.precision for s in specs} == {precision}


def test_train_specs_take_the_config_overrides():
    tc = {**suite.defaults()["train"], "models": ["mlp"], "presets": ["small"], "steps": 3, "warmup_steps": 0,
          "precision": "bfloat16"}  # fmt: skip
    (spec,) = plans.train_specs(tc, "cpu")
    assert (spec.model, spec.preset, spec.steps, spec.warmup, spec.precision) == ("mlp", "small", 3, 0, "bfloat16")


def test_a_rank_is_judged_on_its_mamf_not_on_its_fastest_search_candidate():
    """local_figures uses the one MAMF rule (bench.figures.mamf): a search candidate that happened to be quicker does
    not stand for the rank."""
    candidate = syn.matmul("float32", syn.samples(0.001), role="candidate")
    final = syn.matmul("float32", syn.samples(0.002), role="final", mamf=True)
    other = syn.matmul("float64", syn.samples(0.004))
    got = plans.local_figures([candidate, final, other])
    assert got == {"float32": final.summary["tflops_median"], "float64": other.summary["tflops_median"]}
    assert got["float32"] < candidate.summary["tflops_median"]


def test_stragglers_are_below_the_fraction_of_the_job_median_at_float32_first():
    ranks = [{"rank": 0, "hostname": "a", "figures": {"float32": 1.0, "bfloat16": 4.0}},
             {"rank": 1, "hostname": "b", "figures": {"float32": 0.5, "bfloat16": 4.0}},
             {"rank": 2, "hostname": "c", "figures": {"float32": 1.1, "bfloat16": 1.0}},
             {"rank": 3, "hostname": "d", "figures": {}}]  # fmt: skip
    (slow,) = plans.stragglers(ranks, 0.75)
    assert (slow["rank"], slow["precision"], slow["job_median_tflops"]) == (1, "float32", 1.0)
    assert slow["fraction_of_median"] == pytest.approx(0.5)
    assert plans.stragglers(ranks[:1]) == []  # one rank measured: nothing to compare with


def test_a_comm_measurement_is_the_slowest_rank_per_iteration(monkeypatch):
    monkeypatch.setattr(plans.dist, "get_backend", lambda: "gloo")
    device = {"id": "cpu", "uuid": "fp-a"}
    ranks = [{"rank": 1, "host": "b", "device": device, "warmup_s": [0.3], "samples_s": [0.1, 0.4], "correct": True},
             {"rank": 0, "host": "a", "device": device, "warmup_s": [0.2], "samples_s": [0.2, 0.3], "correct": True}]  # fmt: skip
    m = plans.comm_measurement("all_reduce", 1 << 20, 2, ranks, CPU, "2026-11-28T10:00:00.000000Z")
    assert (m.samples_s, m.warmup_s, m.status) == ([0.2, 0.4], [0.3], "ok")
    assert (m.work_per_iteration, m.work_unit) == (1 << 20, figures.Unit.BYTE)
    assert m.summary == figures.comm_summary([0.2, 0.4], 1 << 20, "all_reduce", 2)
    assert [r["host"] for r in m.details["per_rank"]] == ["a", "b"]  # every rank's raw samples kept, by rank
