"""NVIDIA GPUs through NVML (the nvidia-ml-py binding, imported as pynvml).

The binding module is passed in (`nvml=`) so tests drive every path with a small fake at the pynvml boundary. No
driver, no library or no GPU is a normal outcome ("unavailable" with the reason), never an exception; a single call
that fails marks that one field unavailable.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from bench.hardware.fields import FieldSet


def load_nvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _cuda_version(raw: int) -> str:
    """NVML encodes the CUDA driver version as 1000*major + 10*minor (12040 -> '12.4')."""
    return f"{raw // 1000}.{(raw % 1000) // 10}"


def _nvlinks_up(nvml: ModuleType, handle: Any) -> int:
    """Links whose state is enabled. Link indices past the GPU's last raise; a GPU without NVLink raises on link 0."""
    up = 0
    for link in range(getattr(nvml, "NVML_NVLINK_MAX_LINKS", 18)):
        try:
            state = nvml.nvmlDeviceGetNvLinkState(handle, link)
        except nvml.NVMLError:
            if link == 0:
                raise
            break
        up += int(state == nvml.NVML_FEATURE_ENABLED)
    return up


def _gpu(nvml: ModuleType, index: int) -> dict[str, Any]:
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
    except nvml.NVMLError as exc:
        return {
            "index": index,
            **dict.fromkeys(GPU_FIELDS),
            "unavailable": dict.fromkeys(GPU_FIELDS, f"no handle: {exc}"),
        }
    f = FieldSet()
    f.values["index"] = index
    probes = {
        "name": lambda: _text(nvml.nvmlDeviceGetName(handle)),
        "uuid": lambda: _text(nvml.nvmlDeviceGetUUID(handle)),
        "serial": lambda: _text(nvml.nvmlDeviceGetSerial(handle)),
        "board_id": lambda: int(nvml.nvmlDeviceGetBoardId(handle)),
        "pci_bus_id": lambda: _text(nvml.nvmlDeviceGetPciInfo(handle).busId),
        "memory_bytes": lambda: int(nvml.nvmlDeviceGetMemoryInfo(handle).total),
        "max_sm_clock_mhz": lambda: nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM),
        "max_memory_clock_mhz": lambda: nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_MEM),
        "power_limit_w": lambda: nvml.nvmlDeviceGetPowerManagementLimit(handle) / 1000.0,
        "ecc_enabled": lambda: bool(nvml.nvmlDeviceGetEccMode(handle)[0]),
        "compute_capability": lambda: "{}.{}".format(*nvml.nvmlDeviceGetCudaComputeCapability(handle)),
        "nvlink_links_up": lambda: _nvlinks_up(nvml, handle),
        # MIG mode (current, pending): enabled, the GPU is shared out as instances, each its own torch device
        "mig_enabled": lambda: bool(nvml.nvmlDeviceGetMigMode(handle)[0]),
    }
    for name, probe in probes.items():
        f.add(name, probe)
    if f.values.get("mig_enabled"):
        f.add("mig_devices", lambda: _mig_devices(nvml, handle))
    return f.to_dict()


def _mig_devices(nvml: ModuleType, handle: Any) -> list[dict[str, Any]]:
    """The MIG instances of a GPU in MIG mode: each is a device of its own to torch (and in measurements), named by its
    MIG- UUID, with its share of the GPU's SMs and memory. Empty slots raise NotFound and are skipped."""
    out = []
    for i in range(int(nvml.nvmlDeviceGetMaxMigDeviceCount(handle))):
        try:
            mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, i)
        except nvml.NVMLError:
            continue
        f = FieldSet()
        f.values["index"] = i
        f.add("uuid", lambda mig=mig: _text(nvml.nvmlDeviceGetUUID(mig)))
        # the GPU instance id (dcgm-exporter's GPU_I_ID label), which is not the handle's slot index
        f.add("gpu_instance_id", lambda mig=mig: int(nvml.nvmlDeviceGetGpuInstanceId(mig)))
        f.add("sm_count", lambda mig=mig: int(nvml.nvmlDeviceGetAttributes(mig).multiprocessorCount))
        f.add("memory_bytes", lambda mig=mig: int(nvml.nvmlDeviceGetMemoryInfo(mig).total))
        out.append(f.to_dict())
    return out


GPU_FIELDS = (
    "name", "uuid", "serial", "board_id", "pci_bus_id", "memory_bytes", "max_sm_clock_mhz", "max_memory_clock_mhz",
    "power_limit_w", "ecc_enabled", "compute_capability", "nvlink_links_up", "mig_enabled",
)  # fmt: skip


def gpu_count(nvml: ModuleType | None = None) -> int:
    """How many GPUs the driver sees (0 without NVML, a driver or GPUs)."""
    nvml = _started(nvml)
    if nvml is None:
        return 0
    try:
        return int(nvml.nvmlDeviceGetCount())
    except nvml.NVMLError:
        return 0
    finally:
        _shutdown(nvml)


def listed_devices(inventory: dict[str, Any]) -> list[dict[str, Any]]:
    """The compute devices NVML lists (gpu_inventory): each GPU, or each MIG instance of a GPU in
    MIG mode, as {gpu, uuid, mig}."""
    out = []
    for gpu in inventory.get("gpus") or []:
        instances = gpu.get("mig_devices") or [] if gpu.get("mig_enabled") else []
        if instances:
            out += [{"gpu": gpu.get("index"), "uuid": m.get("uuid"), "mig": True} for m in instances]
        else:
            out.append({"gpu": gpu.get("index"), "uuid": gpu.get("uuid"), "mig": False})
    return out


def mig_uuids(inventory: dict[str, Any]) -> list[str]:
    """The MIG- UUIDs of every MIG instance NVML lists (gpu_inventory), in GPU order: those bench can start a worker
    for (an instance whose UUID NVML could not read cannot be named to CUDA)."""
    return [d["uuid"] for d in listed_devices(inventory) if d["mig"] and d["uuid"]]


def unseen_by_torch(inventory: dict[str, Any], torch_count: int, visible: str | None,
                    torch_migs: int = 0) -> tuple[str, str] | None:  # fmt: skip
    """(what, what to do) when NVML lists more devices than bench can measure, else None. CUDA enumerates one MIG
    instance per process (NVIDIA's MIG user guide: "CUDA Device Enumeration"), so a node whose GPUs are in MIG mode
    shows torch one instance whatever the number. Started without CUDA_VISIBLE_DEVICES (`visible` None), bench measures
    every MIG instance NVML names in a worker process of its own (bench.hardware.devices.mig_lanes): then only the
    whole GPUs must be among the `torch_count` devices torch sees (`torch_migs` of which are MIG instances), and an
    instance without a UUID is one bench cannot reach. Given CUDA_VISIBLE_DEVICES, bench measures what torch sees."""
    listed = listed_devices(inventory)
    reached = mig_uuids(inventory) if visible is None else []
    rest = [d for d in listed if not (d["mig"] and d["uuid"] in reached)]
    seen = torch_count - torch_migs if reached else torch_count
    if len(rest) <= seen:
        return None
    migs = [d["uuid"] for d in rest if d["mig"] and d["uuid"]]
    what = (f"NVML lists {len(listed)} devices ({sum(d['mig'] for d in listed)} of them MIG instances), "
            + (f"bench reaches {len(reached)} MIG instances through a worker process each and torch sees {seen} "
               "other devices" if reached else f"torch sees {torch_count}")
            + (f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else ""))  # fmt: skip
    if migs:
        shown = " ".join(migs[:2]) + (" ..." if len(migs) > 2 else "")
        return what, (f"a process sees one MIG instance, and this one was given CUDA_VISIBLE_DEVICES: run bench "
                      f"without it to measure every instance (a worker each), or one bench per instance, each with "
                      f"CUDA_VISIBLE_DEVICES=<its MIG- UUID> ({shown}), or launch one rank per instance "
                      "(srun/torchrun, each rank's CUDA_VISIBLE_DEVICES one MIG- UUID)")  # fmt: skip
    if any(d["mig"] and not d["uuid"] for d in rest):
        return what, ("NVML could not read a MIG instance's UUID (inventory.nvml lists why), and CUDA can be given "
                      "an instance only by its UUID: check `nvidia-smi -L`")  # fmt: skip
    return what, "check CUDA_VISIBLE_DEVICES, `nvidia-smi -L` and the container's GPU allocation"


def gpu_inventory(nvml: ModuleType | None = None) -> dict[str, Any]:
    """{available, reason, driver_version, cuda_driver_version, gpus: [...]} for every GPU NVML sees."""
    if nvml is None:
        nvml = load_nvml()
    if nvml is None:
        return {"available": False, "reason": "nvidia-ml-py (pynvml) is not installed", "gpus": []}
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return {"available": False, "reason": f"NVML unavailable: {exc}", "gpus": []}
    try:
        f = FieldSet()
        f.add("driver_version", lambda: _text(nvml.nvmlSystemGetDriverVersion()))
        f.add("cuda_driver_version", lambda: _cuda_version(nvml.nvmlSystemGetCudaDriverVersion()))
        count = f.add("device_count", nvml.nvmlDeviceGetCount)
        gpus = [_gpu(nvml, i) for i in range(count or 0)]
        reason = None if gpus else f.unavailable.get("device_count", "NVML reports no GPU")
        return {"available": bool(gpus), "reason": reason, **f.to_dict(), "gpus": gpus}
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass


def _started(nvml: ModuleType | None) -> ModuleType | None:
    """The binding, initialised (the caller shuts it down), or None when the binding, the driver or a GPU is missing."""
    nvml = nvml or load_nvml()
    if nvml is None:
        return None
    try:
        nvml.nvmlInit()
    except nvml.NVMLError:
        return None
    return nvml


def _shutdown(nvml: ModuleType) -> None:
    try:
        nvml.nvmlShutdown()
    except nvml.NVMLError:
        pass


def _handle(nvml: ModuleType, uuid: str) -> tuple[Any, str]:
    """NVML's handle for a GPU or MIG UUID, and its scope. Clocks, power, temperature and energy belong to the whole
    GPU: NVML refuses them for a MIG instance, so its telemetry is read from its parent GPU (shared by every slice)."""
    handle = nvml.nvmlDeviceGetHandleByUUID(uuid)
    if uuid.startswith("MIG-"):
        return nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle), "parent GPU of a MIG instance (shared)"
    return handle, "GPU"


def clock_event_reasons(nvml: ModuleType) -> Any:
    """reasons(handle): the GPU's clock-event (throttle) reason bits. The binding may have R535's name while the driver
    is older and lacks the symbol: each call falls back to the older name."""
    calls = [getattr(nvml, n) for n in ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons")
             if hasattr(nvml, n)]  # fmt: skip

    def reasons(h: Any) -> Any:
        for call in calls[:-1]:
            try:
                return call(h)
            except nvml.NVMLError:
                continue
        if not calls:
            raise AttributeError("this NVML binding has no clock-event (throttle) reasons call")
        return calls[-1](h)

    return reasons


def cpu_affinity(uuid: str, nvml: ModuleType | None = None) -> list[int] | None:
    """The CPUs NVML names as closest to the GPU (its NUMA node), or None when NVML cannot tell."""
    nvml = _started(nvml)
    if nvml is None:
        return None
    try:
        handle, _ = _handle(nvml, uuid)
        words = nvml.nvmlDeviceGetCpuAffinity(handle, ((os.cpu_count() or 1) + 63) // 64)
    except nvml.NVMLError:
        return None
    finally:
        _shutdown(nvml)
    cpus = [i * 64 + bit for i, word in enumerate(words) for bit in range(64) if int(word) >> bit & 1]
    return cpus or None


def telemetry_reader(uuid: str, nvml: ModuleType | None = None) -> tuple[Any, Any] | None:
    """(read, close) for the GPU with `uuid`: SM clock, power, temperature, clock-event (throttle) reasons and the
    energy counter, each None when NVML cannot read it, plus `scope` (the GPU, or a MIG instance's parent GPU).
    None when NVML or the GPU is unavailable."""
    nvml = _started(nvml)
    if nvml is None:
        return None
    try:
        handle, scope = _handle(nvml, uuid)
    except nvml.NVMLError:
        _shutdown(nvml)  # every successful init is matched by a shutdown (NVML counts them)
        return None
    reasons = clock_event_reasons(nvml)
    probes = {
        "sm_clock_mhz": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
        "power_w": lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,
        "temperature_c": lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
        "throttle_reasons": lambda: reasons(handle),
        "energy_j": lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1000.0,
    }

    def read() -> dict[str, Any]:
        out: dict[str, Any] = {"scope": scope}
        for name, probe in probes.items():
            try:
                out[name] = probe()
            except (nvml.NVMLError, TypeError, AttributeError):
                out[name] = None
        return out

    def close() -> None:
        _shutdown(nvml)

    return read, close
