import pytest

from bench.hardware import peaks


@pytest.mark.parametrize(
    "name, model",
    [
        ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM"),
        ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
        ("NVIDIA H200", "NVIDIA H200 SXM"),
        ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 SXM 80GB"),
        ("NVIDIA A100 80GB PCIe", "NVIDIA A100 PCIe 80GB"),
        ("NVIDIA L40S", "NVIDIA L40S"),
        ("AMD Instinct MI300X", "AMD Instinct MI300X"),
    ],
)
def test_lookup_by_nvml_name(name, model):
    assert peaks.find_model(name)["model"] == model


def test_dense_figures_and_source():
    p = peaks.vendor_peak("NVIDIA H100 80GB HBM3", "bfloat16")
    assert p.tflops == 989.4 and p.kind == "vendor" and "datasheet" in p.source
    assert peaks.vendor_peak("NVIDIA H100 80GB HBM3", "float64").tflops == 67.0  # FP64 tensor cores bound DGEMM
    assert peaks.memory_bandwidth_tbps("NVIDIA H200") == 4.8


def test_unknown_device_or_precision_has_no_peak():
    assert peaks.find_model("NVIDIA H100 NVL")["model"] == "NVIDIA H100 NVL"  # its own row, never the SXM one
    assert peaks.vendor_peak("Some Future GPU 9000", "bfloat16") is None
    assert peaks.vendor_peak("NVIDIA L40S", "float64") is None  # not on file for that model


def test_every_row_has_a_source_and_known_keys():
    rows = peaks.table()
    assert len(rows) >= 7
    assert all(r["source"] and r["match"] for r in rows)


def host(flags, cores=8, max_mhz=None, current=None):
    return {"isa_flags": dict.fromkeys(flags, True), "physical_cores": cores, "max_clock_mhz": max_mhz,
            "current_clock_mhz": current, "cpu_model": "test"}  # fmt: skip


def test_cpu_peak_avx2_fma_by_hand():
    # 8 cores x 3.0 GHz x (256/64 lanes x 2 FLOPs x 2 FMA units = 16) = 384 GFLOPS float64
    p = peaks.cpu_peak(host({"avx2", "fma"}, max_mhz=3000.0), "float64")
    assert p.tflops == pytest.approx(8 * 3.0e9 * 16 / 1e12)
    assert p.kind == "theoretical"
    assert p.assumptions["clock_source"] == "max clock (cpufreq)" and p.assumptions["flops_per_cycle_per_core"] == 16
    assert peaks.cpu_peak(host({"avx2", "fma"}, max_mhz=3000.0), "float32").tflops == pytest.approx(2 * p.tflops)


def test_cpu_peak_avx512_one_fma_unit_override_and_clock_override():
    h = host({"avx512f", "fma"}, cores=4, max_mhz=2000.0)
    p = peaks.cpu_peak(h, "float32", fma_units=1, clock_mhz=2500.0)
    # 4 x 2.5 GHz x (16 lanes x 2 x 1) = 320 GFLOPS
    assert p.tflops == pytest.approx(4 * 2.5e9 * 32 / 1e12)
    assert p.assumptions["clock_source"] == "override" and p.assumptions["fma_units_source"] == "override"


def test_cpu_peak_bf16_paths():
    assert peaks.cpu_peak(host({"avx2", "fma"}, max_mhz=3000.0), "bfloat16") is None  # emulated: no peak
    amx = peaks.cpu_peak(host({"avx512f", "avx512_bf16", "amx_bf16"}, cores=56, max_mhz=2000.0), "bfloat16")
    assert amx.tflops == pytest.approx(56 * 2.0e9 * 1024 / 1e12) and "amx_bf16" in amx.assumptions["path"]
    vnni = peaks.cpu_peak(host({"avx512f", "avx512_bf16"}, cores=1, max_mhz=1000.0), "bfloat16")
    assert vnni.tflops == pytest.approx(1e9 * 128 / 1e12)


def test_cpu_peak_falls_back_to_current_clock_and_says_so():
    p = peaks.cpu_peak(host({"avx2", "fma"}, cores=2, current=2445.4), "float32")
    assert p.assumptions["clock_source"].startswith("current clock")
    assert p.unverified  # a current clock is a lower bound (turbo): the peak built on it cannot bound measurements
    assert not peaks.cpu_peak(host({"avx2", "fma"}, cores=2, max_mhz=3000.0, current=2445.4), "float32").unverified
    assert not peaks.cpu_peak(host({"avx2", "fma"}, cores=2, current=2445.4), "float32", clock_mhz=3500.0).unverified
    assert peaks.cpu_peak(host({"avx2", "fma"}, cores=2), "float32") is None  # no clock at all: no peak


def test_cpu_peak_int8_vnni_and_amx():
    # 512-bit VNNI: 16 int32 lanes x 4 products x 2 ops x 2 units = 256 ops/cycle
    vnni = peaks.cpu_peak(host({"avx512f", "avx512_vnni"}, cores=2, max_mhz=1000.0), "int8")
    assert vnni.tflops == pytest.approx(2 * 1e9 * 256 / 1e12)
    amx = peaks.cpu_peak(host({"amx_int8", "avx512_vnni"}, cores=1, max_mhz=1000.0), "int8")
    assert amx.tflops == pytest.approx(1e9 * 2048 / 1e12)
    assert peaks.cpu_peak(host({"avx2", "fma"}, max_mhz=1000.0), "int8") is None
    assert peaks.vendor_peak("NVIDIA H100 80GB HBM3", "float8_e4m3").tflops == 1978.9
