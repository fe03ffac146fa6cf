"""The host: CPU model and ISA flags, cores, clocks, memory, OS, Python and the torch build."""

from __future__ import annotations

import hashlib
import platform
import re
import socket
from pathlib import Path
from typing import Any

import psutil
import torch

from bench.hardware.fields import FieldSet

#: ISA flags (as /proc/cpuinfo names them) that decide how many FLOPs a core does per cycle at each precision:
#: x86 first, then Arm (asimd = NEON, asimdhp = fp16 arithmetic, bf16 = BFMMLA/BFDOT).
FLOP_FLAGS = (
    "fma", "avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "avx_vnni",
    "amx_tile", "amx_bf16", "amx_fp16", "amx_int8", "amx_fp8",
    "asimd", "asimdhp", "asimddp", "sve", "sve2", "bf16", "i8mm",
)  # fmt: skip

PROC_CPUINFO = Path("/proc/cpuinfo")
SYS_CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")
POWERCAP = Path("/sys/class/powercap")


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model name, socket count and flag set from the text of /proc/cpuinfo (x86 and Arm layouts)."""
    model = None
    sockets: set[str] = set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key in ("model name", "Model Name", "cpu model") and model is None:
            model = value
        elif key == "physical id":
            sockets.add(value)
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return {"model": model, "sockets": len(sockets) or None, "flags": flags}


def _cpuinfo() -> dict[str, Any]:
    return parse_cpuinfo(PROC_CPUINFO.read_text())


def _require(value: Any, what: str) -> Any:
    if value is None:
        raise LookupError(f"{what} not reported")
    return value


def _sysfs_mhz(name: str) -> float:
    return int((SYS_CPUFREQ / name).read_text().strip()) / 1000.0


def _max_mhz() -> float:
    try:
        return _sysfs_mhz("cpuinfo_max_freq")
    except OSError:
        freq = psutil.cpu_freq()
        if freq is None or not freq.max:
            raise LookupError("no cpufreq driver (common in VMs) and psutil reports no maximum") from None
        return float(freq.max)


def _os_release() -> str:
    text = Path("/etc/os-release").read_text()
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.MULTILINE)
    return _require(match and match.group(1), "PRETTY_NAME")


def blas_backend() -> str:
    """The BLAS torch was built against, from its build configuration (e.g. 'mkl', 'open', 'accelerate')."""
    match = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return _require(match and match.group(1), "BLAS_INFO in torch build config")


def cpu_capability() -> str:
    """The SIMD level torch's CPU kernels dispatch to (e.g. AVX2, AVX512)."""
    return torch.backends.cpu.get_cpu_capability()


def fingerprint(cpu_model: str | None, memory_bytes: int | None) -> str:
    """A stable id for this host, for deduplicating CPU capacity: SHA-256 of the machine id, CPU model and memory."""
    try:
        machine_id = Path("/etc/machine-id").read_text().strip()
    except OSError:
        machine_id = socket.gethostname()
    return hashlib.sha256(f"{machine_id}|{cpu_model}|{memory_bytes}".encode()).hexdigest()


def host_inventory() -> dict[str, Any]:
    f = FieldSet()
    f.add("hostname", socket.gethostname)
    info = f.add("cpuinfo", _cpuinfo)
    f.values.pop("cpuinfo")
    reason = f.unavailable.pop("cpuinfo", None)

    def from_cpuinfo(key: str) -> Any:
        if info is None:
            raise LookupError(reason)
        return _require(info[key], key)

    cpu_model = f.add("cpu_model", lambda: from_cpuinfo("model"))
    f.add("architecture", platform.machine)
    f.add("sockets", lambda: from_cpuinfo("sockets"))
    f.add("physical_cores", lambda: _require(psutil.cpu_count(logical=False), "physical core count"))
    f.add("logical_cpus", lambda: _require(psutil.cpu_count(logical=True), "logical CPU count"))
    f.add("isa_flags", lambda: {flag: flag in from_cpuinfo("flags") for flag in FLOP_FLAGS})
    f.add("base_clock_mhz", lambda: _sysfs_mhz("base_frequency"))
    f.add("max_clock_mhz", _max_mhz)
    f.add("current_clock_mhz", lambda: float(_require(psutil.cpu_freq(), "CPU frequency").current))
    memory = f.add("memory_bytes", lambda: psutil.virtual_memory().total)
    f.add("os", _os_release)
    f.add("kernel", platform.release)
    f.add("python", lambda: f"{platform.python_implementation()} {platform.python_version()}")
    f.add("torch_version", lambda: torch.__version__)
    f.add("torch_cuda", lambda: torch.version.cuda)
    f.add("torch_hip", lambda: torch.version.hip)
    f.add("torch_cudnn", lambda: torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
    f.add("torch_blas", blas_backend)
    f.add("torch_cpu_capability", cpu_capability)
    f.add("torch_mkldnn", torch.backends.mkldnn.is_available)
    f.add("torch_threads", torch.get_num_threads)
    f.add("torch_interop_threads", torch.get_num_interop_threads)
    f.add("fingerprint", lambda: fingerprint(cpu_model, memory))
    return f.to_dict()


def _rapl_energy_j() -> float | None:
    """Package energy from Intel/AMD RAPL (summed over sockets), or None when not exposed or not readable."""
    total, found = 0.0, False
    for zone in sorted(POWERCAP.glob("intel-rapl:*")):
        if zone.name.count(":") != 1:  # sub-zones (core, dram) are inside their package's count
            continue
        try:
            total += int((zone / "energy_uj").read_text()) / 1e6
            found = True
        except (OSError, ValueError):
            return None
    return total if found else None


def cpu_telemetry() -> dict[str, Any]:
    """One reading of the CPU: mean current frequency (psutil) and the RAPL energy counter where readable."""
    freq = psutil.cpu_freq()
    return {"cpu_mhz": float(freq.current) if freq else None, "energy_j": _rapl_energy_j()}
