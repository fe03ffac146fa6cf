import pytest
import torch

from bench.hardware import devices
from bench.hardware.devices import DeviceFacts


def gpu(cc):
    return DeviceFacts("cuda:0", "cuda", "gpu", "GPU-x", 50 * 2**20, cc)


def cpu(*flags):
    return DeviceFacts("cpu", "cpu", "cpu", "f", 0, None, flags)


def test_cpu_always_resolves():
    assert devices.resolve("cpu") == ["cpu"]


def test_all_means_every_gpu_else_cpu():
    expected = [f"cuda:{i}" for i in range(devices.cuda_count())] or ["cpu"]
    assert devices.resolve("all") == expected == devices.default_devices()


@pytest.mark.parametrize("name", ["tpu", "cuda:99", "cuda", "gpu0", ""])
def test_unknown_device_lists_valid_ones(name):
    with pytest.raises(ValueError, match="valid here: cpu"):
        devices.resolve(name)


def test_cpu_facts_come_from_host_inventory():
    f = devices.facts("cpu", {"cpu_model": "X", "fingerprint": "abc", "isa_flags": {"avx2": True, "amx_bf16": False}})
    assert (f.kind, f.name, f.uuid, f.isa_flags) == ("cpu", "X", "abc", ("avx2",))


@pytest.mark.parametrize(
    "device, precision, cuda_only, verdict",
    [
        (cpu("avx2", "fma"), "float32", False, "native"),
        (cpu("avx2", "fma"), "bfloat16", False, "emulated"),
        (cpu("avx512_bf16"), "bfloat16", False, "native"),
        (cpu("amx_bf16"), "bfloat16", False, "native"),
        (cpu("bf16"), "bfloat16", False, "native"),  # Arm
        (cpu("avx512_bf16"), "float16", False, "emulated"),
        (cpu("avx512_fp16"), "float16", False, "native"),
        (cpu("avx512_fp16"), "tf32", True, "unsupported"),
        (gpu("9.0"), "tf32", True, "native"),
        (gpu("7.0"), "tf32", True, "unsupported"),
        (gpu("7.0"), "bfloat16", False, "emulated"),
        (gpu("7.0"), "float16", False, "native"),
        (gpu("8.0"), "bfloat16", False, "native"),
        (gpu("5.2"), "float16", False, "emulated"),
        (gpu("8.9"), "float8_e4m3", False, "native"),
        (gpu("8.0"), "float8_e4m3", False, "unsupported"),
        (gpu("7.5"), "int8", False, "native"),
        (gpu("7.0"), "int8", False, "unsupported"),
        (cpu("avx2", "fma"), "int8", False, "emulated"),
        (cpu("avx512_vnni"), "int8", False, "native"),
        (cpu("amx_bf16", "avx512_fp16"), "float8_e4m3", False, "emulated"),
    ],
)
def test_support_matrix(device, precision, cuda_only, verdict):
    got, reason = devices.support(device, precision, cuda_only)
    assert got == verdict
    assert (reason is None) == (verdict == "native")


def test_free_memory_and_oom_detection():
    import torch

    assert devices.free_memory_bytes("cpu") > 0
    assert devices.is_oom(MemoryError())
    assert devices.is_oom(torch.OutOfMemoryError("CUDA out of memory"))
    assert devices.is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried ... out of memory"))
    assert not devices.is_oom(RuntimeError("shape mismatch"))


def fake_gpus(monkeypatch, count=2):
    """Fake the torch.cuda calls devices.py makes: count, properties, free memory."""
    from types import SimpleNamespace

    import torch

    props = SimpleNamespace(name="NVIDIA H200", uuid="6f0e1c2a-1111-2222-3333-444455556666", L2_cache_size=60 * 2**20,
                            major=9, minor=0, total_memory=150 * 2**30)  # fmt: skip
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda dev: props)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev: (140 * 2**30, 150 * 2**30))


def test_gpus_resolve_and_default(monkeypatch):
    fake_gpus(monkeypatch)
    assert devices.default_devices() == ["cuda:0", "cuda:1"]
    assert devices.resolve("all") == ["cuda:0", "cuda:1"]
    assert devices.resolve("cuda:1") == ["cuda:1"]
    assert devices.resolve("cpu") == ["cpu"]
    with pytest.raises(ValueError, match="cpu, cuda:0, cuda:1, all"):
        devices.resolve("cuda:2")


def test_gpu_facts_use_the_nvml_uuid_form(monkeypatch):
    fake_gpus(monkeypatch)
    f = devices.facts("cuda:1")
    assert (f.kind, f.name, f.compute_capability) == ("cuda", "NVIDIA H200", "9.0")
    assert f.uuid == "GPU-6f0e1c2a-1111-2222-3333-444455556666"  # as NVML prints it, so reports join on it
    assert f.l2_cache_bytes == 60 * 2**20
    assert devices.free_memory_bytes("cuda:1") == 140 * 2**30


def test_gpus_the_driver_sees_but_torch_does_not_are_an_error(monkeypatch):
    """A GPU node with a torch built for a newer CUDA than its driver (or a CPU build) must not quietly benchmark the
    CPU and report 'complete'."""
    from bench.hardware import nvml
    from tests.fakes.nvml import H100, FakeNvml

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(nvml, "load_nvml", lambda: FakeNvml([H100, H100]))
    with pytest.raises(ValueError, match="the driver sees 2 GPU"):
        devices.default_devices()
    with pytest.raises(ValueError, match="--device cpu"):
        devices.resolve("all")
    assert devices.resolve("cpu") == ["cpu"]  # the CPU named on purpose still works
    monkeypatch.setattr(nvml, "load_nvml", lambda: FakeNvml([]))
    assert devices.default_devices() == ["cpu"]
