import pytest
import torch

from bench import figures
from bench.hardware.devices import DeviceFacts
from bench.measure.sampling import Policy
from bench.model.reports import Measurement
from bench.workloads import matmul as mm
from tests.fakes.timer import FakeTimer

FAST = Policy(budget_s=0.01, min_iterations=3, max_warmup_s=0.01, max_warmup_iterations=2)


def cpu(flags=()):
    return DeviceFacts("cpu", "cpu", "test cpu", "fingerprint", 0, None, tuple(flags))


def test_flop_formula():
    assert mm.flops(2, 3, 4) == 48
    assert mm.MatmulSpec(4096, 4096, 4096, "bfloat16").flops == 2 * 4096**3
    assert mm.MatmulSpec(128, 256, 512, "float32").flops == 2 * 128 * 256 * 512


@pytest.mark.parametrize("bad", [(0, 1, 1), (1, -1, 1)])
def test_spec_rejects_bad_dimensions(bad):
    with pytest.raises(ValueError):
        mm.MatmulSpec(*bad, "float32")


def test_spec_rejects_unknown_precision():
    with pytest.raises(ValueError, match="valid: float64"):
        mm.MatmulSpec(8, 8, 8, "int4")


@pytest.mark.parametrize("name", ["float64", "float32"])
def test_real_measurement_keeps_raw_samples_and_derives_figures_from_them(name):
    m = mm.run(mm.MatmulSpec(64, 48, 32, name), cpu(), FAST)
    assert m.status == "ok" and m.validity["passed"]
    assert m.timer == "perf_counter" and m.threads >= 1
    assert len(m.samples_s) >= 3 and m.warmup_s
    assert m.summary == figures.matmul_summary(m.samples_s, 2 * 64 * 48 * 32)
    assert m.work_per_iteration == 2 * 64 * 48 * 32
    Measurement.from_dict(m.to_dict())  # follows the report schema


def test_figures_follow_the_timer_exactly():
    timer = FakeTimer([0.5] * 3 + [0.25, 0.5, 1.0])
    m = mm.run(
        mm.MatmulSpec(8, 8, 8, "float32"), cpu(), Policy(budget_s=0.1, min_iterations=3, max_warmup_s=5.0), timer=timer
    )
    assert m.samples_s == [0.25, 0.5, 1.0]
    assert m.summary["median_s"] == 0.5
    assert m.summary["tflops_median"] == pytest.approx(1024 / 0.5 / 1e12)
    assert m.summary["tflops_best"] == pytest.approx(1024 / 0.25 / 1e12)
    assert [w["code"] for w in m.warnings] == ["noisy"]


def corrupting_product(a, b, out):
    torch.matmul(a, b, out=out)
    out[3, 5] += 100.0


def test_wrong_product_is_invalid_and_says_why():
    m = mm.run(mm.MatmulSpec(64, 64, 64, "float32"), cpu(), FAST, product=corrupting_product)
    assert m.status == "invalid"
    assert not m.validity["passed"]
    assert m.reason.startswith("Freivalds check failed: row 3")


def test_tf32_on_cpu_is_skipped_with_reason():
    m = mm.run(mm.MatmulSpec(64, 64, 64, "tf32"), cpu(), FAST)
    assert m.status == "skipped" and "tensor cores" in m.reason
    assert m.samples_s == [] and m.summary is None


def test_emulated_precision_is_measured_small_and_marked():
    m = mm.run(mm.MatmulSpec(1024, 1024, 1024, "bfloat16"), cpu(flags=("avx2", "fma")), FAST)
    assert m.status == "ok" and m.emulated
    assert (m.spec["m"], m.spec["n"], m.spec["k"]) == (mm.EMULATED_SIZE,) * 3
    assert m.details["requested_spec"]["m"] == 1024
    assert {"emulated", "reduced-shape"} <= {w["code"] for w in m.warnings}


def test_emulated_precision_keeps_a_small_requested_shape():
    m = mm.run(mm.MatmulSpec(32, 32, 32, "float16"), cpu(), FAST)
    assert m.emulated and m.spec["m"] == 32 and "requested_spec" not in m.details


def test_native_flag_means_not_emulated():
    m = mm.run(mm.MatmulSpec(32, 32, 32, "bfloat16"), cpu(flags=("avx512_bf16",)), FAST)
    assert m.status == "ok" and not m.emulated


def test_shape_larger_than_memory_is_skipped_not_a_crash():
    m = mm.run(mm.MatmulSpec(10**7, 10**7, 10**7, "float32"), cpu(), FAST)
    assert m.status == "skipped" and "GiB free" in m.reason


def test_out_of_memory_during_the_run_is_skipped():
    def oom(a, b, out):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    m = mm.run(mm.MatmulSpec(16, 16, 16, "float32"), cpu(), FAST, product=oom)
    assert m.status == "skipped" and "out of memory" in m.reason


def test_a_kernel_error_is_recorded_and_the_run_goes_on():
    def broken(a, b, out):
        raise RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED\nmore detail")

    m = mm.run(mm.MatmulSpec(16, 16, 16, "float32"), cpu(), FAST, product=broken)
    assert m.status == "error" and m.reason == "RuntimeError: CUBLAS_STATUS_EXECUTION_FAILED"
    Measurement.from_dict(m.to_dict())


def test_programming_errors_still_propagate():
    def wrong(a, b, out):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        mm.run(mm.MatmulSpec(16, 16, 16, "float32"), cpu(), FAST, product=wrong)


@pytest.mark.parametrize("name", ["float8_e4m3", "int8"])
def test_fp8_and_int8_products_are_measured_and_checked(name):
    m = mm.run(mm.MatmulSpec(64, 48, 32, name), cpu(), FAST)
    assert m.status == "ok" and m.validity["passed"] and m.emulated  # no native fp8/int8 without the flags


def test_int8_native_with_vnni_and_exact_check():
    m = mm.run(mm.MatmulSpec(32, 32, 32, "int8"), cpu(flags=("avx512_vnni",)), FAST)
    assert m.status == "ok" and not m.emulated and m.validity["max_abs_error"] == 0.0


@pytest.mark.parametrize(
    "spec, device, expected",
    [
        (("float8_e4m3", 100, 64, 64), "cpu", "multiples of 16"),
        (("int8", 16, 64, 64), "cuda", "M > 16"),
        (("int8", 32, 64, 60), "cuda", "multiples of 8"),
    ],
)
def test_kernel_shape_constraints_are_skips_with_reasons(spec, device, expected):
    name, m, n, k = spec
    facts = cpu() if device == "cpu" else DeviceFacts("cuda:0", "cuda", "gpu", "GPU-x", 0, "9.0")
    out = mm.run(mm.MatmulSpec(m, n, k, name), facts, FAST)
    assert out.status == "skipped" and expected in out.reason


def test_cpu_threads_are_physical_cores_and_restored():
    before = torch.get_num_threads()
    m = mm.run(mm.MatmulSpec(16, 16, 16, "float32"), cpu(), FAST)
    from bench.hardware.devices import physical_cores

    assert m.threads == physical_cores()
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("name, mode", [("tf32", "tf32"), ("float32", "ieee")])
def test_cuda_float32_mode_is_set_for_the_measurement_and_restored(name, mode):
    from bench.precision import get

    gpu = DeviceFacts("cuda:0", "cuda", "gpu", "GPU-x", 0, "9.0")
    knob = torch.backends.cuda.matmul
    before = knob.fp32_precision
    with mm._float32_mode(gpu, get(name)):
        assert knob.fp32_precision == mode
    assert knob.fp32_precision == before


def test_cuda_timer_flushes_twice_the_l2():
    gpu = DeviceFacts("cpu", "cuda", "gpu", "GPU-x", 1024, "9.0")  # a CPU tensor stands in for device memory
    timer = mm.default_timer(gpu)
    assert timer.name == "cuda_event" and timer._flush.numel() == 2048
