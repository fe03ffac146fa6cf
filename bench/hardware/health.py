"""Read-only probes of what else is happening on a node, for the pre-flight check (`bench doctor`): CPU load and the
busiest other processes (psutil), and per GPU through NVML the compute processes, current clock-event (throttle)
reasons, uncorrected ECC errors and persistence mode. Nothing here changes the machine. NVML absent, or a call it
refuses, is a field marked unavailable (with the reason), never an exception."""

from __future__ import annotations

import os
import time
from types import ModuleType
from typing import Any

import psutil

from bench.hardware import nvml as nv

#: NVML clock-event reason bits (nvml.h, nvmlClocksEventReason*). Idle and the application-clock setting are normal.
CLOCK_EVENTS = {
    0x1: "gpu_idle", 0x2: "applications_clocks_setting", 0x4: "sw_power_cap", 0x8: "hw_slowdown", 0x10: "sync_boost",
    0x20: "sw_thermal_slowdown", 0x40: "hw_thermal_slowdown", 0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}  # fmt: skip
#: Reasons that mean the GPU cannot run at full clock now (hardware protection or thermal limits).
SEVERE_CLOCK_EVENTS = ("hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")


def clock_event_names(mask: int) -> list[str]:
    return [name for bit, name in CLOCK_EVENTS.items() if mask & bit]


def own_job() -> set[int]:
    """This process, its children, its parent and its siblings (the other ranks a launcher started with it): the job
    itself, not something else on the machine."""
    me = psutil.Process()
    pids = {me.pid, *(p.pid for p in me.children(recursive=True))}
    try:
        parent = me.parent()
        if parent is not None and parent.pid > 1:
            pids |= {parent.pid, *(p.pid for p in parent.children(recursive=True))}
    except (psutil.Error, OSError):
        pass
    return pids


def cpu_activity(sample_s: float = 0.5, top: int = 5) -> dict[str, Any]:
    """Load averages, logical CPUs, overall CPU use over `sample_s`, and the `top` other processes by CPU use (% of
    one core) in that interval. This job's own processes (own_job) are not counted."""
    mine = own_job()
    procs = []
    for p in psutil.process_iter(["pid", "name", "username"]):
        if p.pid in mine:
            continue
        try:
            p.cpu_percent(None)
            procs.append(p)
        except (psutil.Error, OSError):
            continue
    psutil.cpu_percent(None)
    time.sleep(sample_s)
    total = psutil.cpu_percent(None)
    busy = []
    for p in procs:
        try:
            pct = p.cpu_percent(None)
        except (psutil.Error, OSError):
            continue
        if pct > 0:
            busy.append({"pid": p.pid, "name": p.info.get("name"), "user": p.info.get("username"), "cpu_percent": pct})
    busy.sort(key=lambda r: -r["cpu_percent"])
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {"load_average": load, "logical_cpus": psutil.cpu_count() or 1, "cpu_percent": total, "busiest": busy[:top]}


def _processes(nvml: ModuleType, handle: Any) -> list[dict[str, Any]]:
    out = []
    for call in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
        if not hasattr(nvml, call):
            continue
        for p in getattr(nvml, call)(handle):
            used = getattr(p, "usedGpuMemory", None)
            try:
                name = psutil.Process(p.pid).name()
            except (psutil.Error, OSError):
                name = None  # another container's process, or gone
            out.append({"pid": int(p.pid), "name": name, "memory_bytes": int(used) if isinstance(used, int) else None})
    return out


def gpu_health(nvml: ModuleType | None = None) -> dict[str, Any]:
    """{available, reason, gpus: [{index, uuid, processes, clock_events, ecc_uncorrected, persistence_mode,
    unavailable: {field: why}}]} for every GPU NVML sees."""
    nvml = nvml or nv.load_nvml()
    if nvml is None:
        return {"available": False, "reason": "nvidia-ml-py (pynvml) is not installed", "gpus": []}
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return {"available": False, "reason": f"NVML unavailable: {exc}", "gpus": []}
    try:
        gpus = []
        reasons = nv.clock_event_reasons(nvml)
        for i in range(int(nvml.nvmlDeviceGetCount())):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            row: dict[str, Any] = {"index": i, "unavailable": {}}
            probes = {
                "uuid": lambda h=handle: nv._text(nvml.nvmlDeviceGetUUID(h)),
                "processes": lambda h=handle: _processes(nvml, h),
                "clock_events": lambda h=handle: clock_event_names(int(reasons(h))),
                "ecc_uncorrected": lambda h=handle: int(nvml.nvmlDeviceGetTotalEccErrors(
                    h, getattr(nvml, "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", 1), getattr(nvml, "NVML_VOLATILE_ECC", 0))),
                "persistence_mode": lambda h=handle: bool(nvml.nvmlDeviceGetPersistenceMode(h)),
            }  # fmt: skip
            for name, probe in probes.items():
                try:
                    row[name] = probe()
                except (nvml.NVMLError, AttributeError, TypeError) as exc:
                    row[name] = None
                    row["unavailable"][name] = str(exc) or type(exc).__name__
            gpus.append(row)
        return {"available": bool(gpus), "reason": None if gpus else "NVML reports no GPU", "gpus": gpus}
    except nvml.NVMLError as exc:
        return {"available": False, "reason": f"NVML: {exc}", "gpus": []}
    finally:
        nv._shutdown(nvml)
