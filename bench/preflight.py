"""Pre-flight checks: what an ops team checks by hand before trusting a number — is anything else using the CPUs or
the GPUs, are the GPUs throttled, do they report ECC errors, is persistence mode on, do the driver, torch and CUDA
agree — each a pass/warn/fail line with the fix. `bench doctor` prints them; `bench run` runs them first and records
them in the report (config.preflight), so a figure taken on a busy machine says so."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from bench.hardware import health
from bench.hardware import nvml as nv

#: The load average per logical CPU above which the machine is busy (before bench starts anything).
LOAD_PER_CPU = 0.5
#: Another process using more than this share of one core while the check samples is busy.
BUSY_PROCESS_PERCENT = 20.0


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass, warn, fail, unavailable
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_checks(activity: dict[str, Any]) -> list[Check]:
    out = []
    cpus, load = activity.get("logical_cpus") or 1, activity.get("load_average")
    if load is None:
        out.append(Check("cpu-load", "unavailable", "no load average on this OS"))
    else:
        busy = load[0] / cpus >= LOAD_PER_CPU
        out.append(Check("cpu-load", "warn" if busy else "pass",
                         f"load average {load[0]:.2f} over the last minute on {cpus} logical CPUs",
                         "wait for the work listed below, or run on an idle node (Slurm --exclusive)" if busy else ""))  # fmt: skip
    hogs = [p for p in activity.get("busiest", []) if p["cpu_percent"] >= BUSY_PROCESS_PERCENT]
    if hogs:
        listed = ", ".join(f"{p['name']} (pid {p['pid']}, {p['cpu_percent']:.0f}% of a core)" for p in hogs[:3])
        out.append(Check("cpu-processes", "warn", f"other processes busy: {listed}",
                         "stop them or wait; CPU figures (and GPU launch rates) suffer while they run"))  # fmt: skip
    else:
        out.append(Check("cpu-processes", "pass", "no other process used more than "
                         f"{BUSY_PROCESS_PERCENT:.0f}% of a core while sampled"))  # fmt: skip
    return out


def gpu_checks(state: dict[str, Any], own: set[int] | None = None) -> list[Check]:
    if not state.get("available"):
        return [Check("gpu", "unavailable", f"no GPU checks: {state.get('reason')}")]
    own = own or set()
    out = []
    for g in state["gpus"]:
        gpu = f"GPU {g['index']}"
        missing = g.get("unavailable", {})
        procs = [p for p in (g.get("processes") or []) if p["pid"] not in own]
        if "processes" in missing:
            out.append(Check(f"{gpu} processes", "unavailable", missing["processes"]))
        elif procs:
            listed = ", ".join(f"{p['name'] or '?'} (pid {p['pid']}"
                               + (f", {p['memory_bytes'] / 2**30:.1f} GiB)" if p.get("memory_bytes") else ")")
                               for p in procs[:3])  # fmt: skip
            out.append(
                Check(
                    f"{gpu} processes",
                    "fail",
                    f"other processes on the GPU: {listed}",
                    "stop them (nvidia-smi lists them) or drain the node; shared GPUs give shared figures",
                )
            )
        else:
            out.append(Check(f"{gpu} processes", "pass", "no other process on the GPU"))
        events = g.get("clock_events")
        if events is None:
            out.append(Check(f"{gpu} clocks", "unavailable", missing.get("clock_events", "not reported")))
        else:
            severe = [e for e in events if e in health.SEVERE_CLOCK_EVENTS]
            out.append(Check(f"{gpu} clocks", "fail" if severe else "pass",
                             f"clocks held back: {', '.join(severe)}" if severe else
                             f"no thermal or hardware slowdown ({', '.join(events) or 'no clock events'})",
                             "check cooling, power and `nvidia-smi -q -d PERFORMANCE`; a slowed GPU measures low"
                             if severe else ""))  # fmt: skip
        ecc = g.get("ecc_uncorrected")
        if ecc is None:
            out.append(Check(f"{gpu} ECC", "unavailable", missing.get("ecc_uncorrected", "not reported")))
        else:
            out.append(Check(f"{gpu} ECC", "fail" if ecc else "pass", f"{ecc} uncorrected ECC errors since the driver "
                             "loaded", "drain the node; `nvidia-smi -q -d ECC,PAGE_RETIREMENT`, then reset the GPU or "
                             "call the vendor" if ecc else ""))  # fmt: skip
        pm = g.get("persistence_mode")
        if pm is None:
            out.append(Check(f"{gpu} persistence", "unavailable", missing.get("persistence_mode", "not reported")))
        else:
            out.append(Check(f"{gpu} persistence", "pass" if pm else "warn",
                             "persistence mode on" if pm else "persistence mode off: the driver re-initialises the GPU "
                             "for every process (slow starts, clocks reset)",
                             "" if pm else "sudo nvidia-smi -pm 1, or run nvidia-persistenced"))  # fmt: skip
    return out


def version_checks(torch_cuda: str | None, torch_gpus: int, inventory: dict[str, Any],
                   torch_version: str = "") -> list[Check]:  # fmt: skip
    """torch, its CUDA and the driver agree: the driver sees the GPUs torch sees, and runs torch's CUDA."""
    nvml_gpus = len(inventory.get("gpus") or [])
    driver, driver_cuda = inventory.get("driver_version"), inventory.get("cuda_driver_version")
    if not inventory.get("available") and not torch_gpus:
        return [Check("driver-torch-cuda", "pass", f"no NVIDIA GPU ({inventory.get('reason')}): a CPU node; torch "
                      f"{torch_version}")]  # fmt: skip
    if nvml_gpus and not torch_gpus:
        why = "a CPU-only build" if not torch_cuda else f"built for CUDA {torch_cuda}"
        return [
            Check(
                "driver-torch-cuda",
                "fail",
                f"the driver ({driver}, CUDA {driver_cuda}) sees {nvml_gpus} GPUs "
                f"but torch {torch_version} ({why}) sees none",
                f"install a torch built for CUDA <= {driver_cuda} (./run_bench.sh picks one from the driver)",
            )
        ]

    def ver(v: str | None) -> tuple[int, ...]:
        try:
            return tuple(int(x) for x in str(v).split(".")[:2])
        except ValueError:
            return ()

    if torch_cuda and driver_cuda and ver(torch_cuda) > ver(driver_cuda):
        return [
            Check(
                "driver-torch-cuda",
                "fail",
                f"torch is built for CUDA {torch_cuda}, newer than the driver's CUDA {driver_cuda} ({driver})",
                f"upgrade the driver or install a torch for CUDA <= {driver_cuda}",
            )
        ]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if nvml_gpus and torch_gpus != nvml_gpus and visible is None:
        return [
            Check(
                "driver-torch-cuda",
                "warn",
                f"torch sees {torch_gpus} GPUs, the driver {nvml_gpus}",
                "check `nvidia-smi -L` and the container's GPU allocation",
            )
        ]
    return [Check("driver-torch-cuda", "pass", f"driver {driver} (CUDA {driver_cuda}); torch {torch_version} built for "
                  f"CUDA {torch_cuda}; {torch_gpus} GPUs visible to torch")]  # fmt: skip


def visibility_checks(torch_gpus: int, inventory: dict[str, Any], visible: str | None,
                      torch_migs: int = 0) -> list[Check]:  # fmt: skip
    """A warning whenever NVML lists more devices (GPUs, or MIG instances) than bench can measure: what torch sees,
    plus, without CUDA_VISIBLE_DEVICES, every MIG instance in a worker process of its own (nvml.unseen_by_torch;
    `torch_migs` of torch's devices are MIG instances)."""
    if not inventory.get("available"):
        return []
    unseen = nv.unseen_by_torch(inventory, torch_gpus, visible, torch_migs)
    if unseen is None:
        migs = nv.mig_uuids(inventory) if visible is None else []
        return [Check("devices-visible", "pass", f"bench measures every device NVML lists ({torch_gpus - torch_migs} "
                      f"seen by torch, {len(migs)} MIG instances in a worker process each)" if migs else
                      f"torch sees every device NVML lists ({torch_gpus})")]  # fmt: skip
    return [Check("devices-visible", "warn", *unseen)]


def run_checks(sample_s: float = 0.5) -> list[Check]:
    """Every check on this machine now (about `sample_s` seconds: CPU use is sampled over that interval)."""
    import torch

    own = health.own_job()
    checks = cpu_checks(health.cpu_activity(sample_s))
    checks += gpu_checks(health.gpu_health(), own)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    inventory = nv.gpu_inventory()
    checks += version_checks(torch.version.cuda, gpus, inventory, torch.__version__)
    migs = sum(" MIG " in f" {torch.cuda.get_device_properties(i).name} " for i in range(gpus))
    checks += visibility_checks(gpus, inventory, os.environ.get("CUDA_VISIBLE_DEVICES"), migs)
    return checks


def verdict(checks: list[Check]) -> str:
    """'fail', 'warn' or 'pass': the worst status (unavailable counts as pass: nothing to say)."""
    statuses = {c.status for c in checks}
    return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"


def line(c: Check) -> str:
    return f"{c.status.upper():11} {c.name}: {c.detail}" + (f" -> fix: {c.fix}" if c.fix else "")
