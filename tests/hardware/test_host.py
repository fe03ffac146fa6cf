from pathlib import Path

import torch

from bench.hardware import host

DATA = Path(__file__).parent.parent / "data"


def test_parse_cpuinfo_x86_two_sockets():
    info = host.parse_cpuinfo((DATA / "cpuinfo_sapphire_rapids.txt").read_text())
    assert info["model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert info["sockets"] == 2
    assert {"avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16", "fma"} <= info["flags"]


def test_parse_cpuinfo_arm_features():
    info = host.parse_cpuinfo((DATA / "cpuinfo_neoverse_v2.txt").read_text())
    assert info["model"] is None and info["sockets"] is None
    assert {"bf16", "asimdhp", "sve2"} <= info["flags"]


def test_host_inventory_on_this_machine():
    inv = host.host_inventory()
    assert inv["physical_cores"] >= 1 and inv["logical_cpus"] >= inv["physical_cores"]
    assert inv["memory_bytes"] > 0
    assert inv["torch_version"] == torch.__version__
    assert inv["torch_threads"] >= 1
    assert set(inv["isa_flags"]) == set(host.FLOP_FLAGS)
    assert len(inv["fingerprint"]) == 64
    # every field is either reported or explained
    for key, value in inv.items():
        if value is None and key not in ("torch_cuda", "torch_hip", "torch_cudnn"):
            assert key in inv["unavailable"], key


def test_unreadable_cpuinfo_marks_fields_unavailable_without_crashing(monkeypatch, tmp_path):
    monkeypatch.setattr(host, "PROC_CPUINFO", tmp_path / "missing")
    monkeypatch.setattr(host, "SYS_CPUFREQ", tmp_path / "nope")
    inv = host.host_inventory()
    for key in ("cpu_model", "sockets", "isa_flags", "base_clock_mhz"):
        assert inv[key] is None
        assert inv["unavailable"][key]
    assert "missing" in inv["unavailable"]["cpu_model"]
    assert inv["memory_bytes"] > 0  # the rest still reported


def test_clock_from_sysfs(monkeypatch, tmp_path):
    (tmp_path / "base_frequency").write_text("2000000\n")
    (tmp_path / "cpuinfo_max_freq").write_text("3800000\n")
    monkeypatch.setattr(host, "SYS_CPUFREQ", tmp_path)
    inv = host.host_inventory()
    assert inv["base_clock_mhz"] == 2000.0 and inv["max_clock_mhz"] == 3800.0


def test_blas_backend_reported():
    assert host.blas_backend() in torch.__config__.show()
