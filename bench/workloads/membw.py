"""Memory bandwidth with STREAM's kernels (McCalpin), on any torch device, plus host<->device copies on GPUs.

Bytes per iteration are counted as STREAM counts them, for arrays of N float64 elements:
    copy  c = a          2 * 8 * N        scale  b = s * c      2 * 8 * N
    add   c = a + b      3 * 8 * N        triad  a = b + s * c  3 * 8 * N
Each kernel is timed on its own; its output is not one of its inputs, so repeating it leaves a known value, and
after timing every element is checked against that value (STREAM's checkSTREAMresults, exactly, since the arrays
are uniform). Host<->device copies move one pinned host buffer of the same size and are checked the same way; the
buffer is allocated, first touched and copied from a thread bound to the GPU's own CPUs (NVML's affinity), since
pinned pages on the other socket's memory cross the inter-socket link and report lower bandwidth; `numa_bound` is
reported only after move_pages(2) found the pages on those CPUs' node (bench.hardware.numa). It is pinned with
cudaHostRegister, not pin_memory(): torch's pinned pool keeps freed blocks for the whole process, so the next GPU
would reuse pages placed on the first GPU's socket. When a node's GPUs are measured at once, their copies still take
turns (one GPU's link at a time: GPUs that share a PCIe switch would each see a fraction of theirs).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict
from typing import Any

import torch

from bench import figures
from bench.hardware import devices, numa
from bench.hardware.devices import DeviceFacts
from bench.measure.sampling import Policy, collect
from bench.measure.sampling import warnings as sampling_warnings
from bench.measure.timer import CudaEventTimer, PerfCounterTimer, Timer
from bench.model.reports import Measurement, utc_now

WORKLOAD = "membw"
KERNELS = figures.STREAM_KERNELS
SCALAR = 3.0
#: Default elements per array: 4x a 32 MiB last-level cache on CPUs (256 MiB arrays); 1 GiB arrays on GPUs.
DEFAULT_ELEMENTS = {"cpu": 2**25, "cuda": 2**27}


def _timer(device: DeviceFacts) -> Timer:
    return CudaEventTimer(torch.device(device.id), flush_bytes=0) if device.kind == "cuda" else PerfCounterTimer()


def _record(name: str, n: int, device: DeviceFacts, sampled: Any, policy: Policy, timer: Timer, nbytes: int,
            correct: bool, peak_tbps: float | None, start: str) -> Measurement:  # fmt: skip
    summary = figures.membw_summary(sampled.samples_s, nbytes, peak_tbps)
    return Measurement(
        workload=WORKLOAD,
        spec={"kernel": name, "elements": n, "dtype": "float64"},
        device=asdict(device),
        status="ok" if correct else "invalid",
        reason=None if correct else f"{name} left wrong values in its output",
        work_per_iteration=nbytes,  # bytes moved per iteration, the quantity bandwidth divides
        work_unit=figures.Unit.BYTE,
        timer=timer.name,
        threads=torch.get_num_threads() if device.kind == "cpu" else None,
        warmup_s=sampled.warmup_s,
        samples_s=sampled.samples_s,
        summary=summary,
        validity={"check": "stream", "passed": correct},
        warnings=[w.to_dict() for w in sampling_warnings(sampled, policy, timer.resolution_s)],
        peak={"tbps": peak_tbps, "kind": "vendor"} if peak_tbps else None,
        details={"bytes_per_iteration": nbytes},
        start_utc=start,
        end_utc=utc_now(),
    )


@contextlib.contextmanager
def bound_to(cpus: list[int] | None) -> Iterator[list[int] | None]:
    """Run the block on `cpus` (this thread only), restoring the previous set after; yields the CPUs actually bound
    (None when no affinity is known or the OS refuses it)."""
    usable = sorted(set(cpus or []) & os.sched_getaffinity(0)) if hasattr(os, "sched_setaffinity") else []
    if not usable:
        yield None
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, usable)
    try:
        yield usable
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def pinned_host(n: int, value: float) -> Iterator[tuple[torch.Tensor, str]]:
    """n float64 host elements set to `value`, first touched by this thread alone, page-locked with cudaHostRegister
    and unregistered after; torch's pin_memory() where registering is not available. Yields (tensor, how it was
    pinned). torch.full would fill a large tensor from its intra-op thread pool, whose threads are not bound to this
    thread's CPUs, and place pages wherever they run: the buffer is allocated untouched and filled by numpy, which
    fills in the calling thread."""
    host = torch.empty((n,), dtype=torch.float64)
    host.numpy().fill(value)  # the first touch, here
    try:
        cudart = torch.cuda.cudart()
        registered = int(cudart.cudaHostRegister(host.data_ptr(), n * 8, 0)) == 0
    except (RuntimeError, AttributeError):
        registered = False
    if not registered:
        yield host.pin_memory(), "pin_memory (torch's pinned pool: NUMA placement not guaranteed)"
        return
    try:
        yield host, "cudaHostRegister"
    finally:
        cudart.cudaHostUnregister(host.data_ptr())


def run(device: DeviceFacts, policy: Policy, elements: int | None = None, peak_tbps: float | None = None,
        timer: Timer | None = None, cpu_affinity: list[int] | None = None) -> list[Measurement]:  # fmt: skip
    """STREAM copy, scale, add and triad (and on GPUs host-to-device and device-to-host), one Measurement each.
    `cpu_affinity`: the GPU's CPUs, for the host side of the copies. (When the node's GPUs are measured at once, the
    runner records that in each measurement's details.concurrency.)"""
    n = elements or DEFAULT_ELEMENTS[device.kind]
    need = 3 * 8 * n
    if need > devices.free_memory_bytes(device.id) * 0.8:
        start = utc_now()
        return [Measurement(WORKLOAD, {"kernel": k, "elements": n, "dtype": "float64"}, asdict(device), "skipped",
                            f"needs {need / 2**30:.2f} GiB for three arrays", start_utc=start, end_utc=start)
                for k in KERNELS]  # fmt: skip
    timer = timer or _timer(device)
    a = torch.full((n,), 1.0, dtype=torch.float64, device=device.id)
    b = torch.full((n,), 2.0, dtype=torch.float64, device=device.id)
    c = torch.zeros(n, dtype=torch.float64, device=device.id)
    value = {"a": 1.0, "b": 2.0, "c": 0.0}
    kernels: dict[str, tuple[Callable[[], object], str, Callable[[], float]]] = {
        "copy": (lambda: c.copy_(a), "c", lambda: value["a"]),
        "scale": (lambda: torch.mul(c, SCALAR, out=b), "b", lambda: SCALAR * value["c"]),
        "add": (lambda: torch.add(a, b, out=c), "c", lambda: value["a"] + value["b"]),
        "triad": (lambda: torch.add(b, c, alpha=SCALAR, out=a), "a", lambda: value["b"] + SCALAR * value["c"]),
    }
    arrays = {"a": a, "b": b, "c": c}
    out = []
    for name in KERNELS:
        fn, target, expected = kernels[name]
        start = utc_now()
        sampled = collect(timer, fn, policy)
        devices.synchronize(device.id)
        value[target] = expected()
        correct = bool((arrays[target] == value[target]).all())
        out.append(
            _record(name, n, device, sampled, policy, timer, figures.stream_bytes(name, n), correct, peak_tbps, start)
        )
    if device.kind == "cuda":
        with devices.host_copies(), bound_to(cpu_affinity) as bound, pinned_host(n, 5.0) as (host, pinned):
            # numa_bound only when the pages were checked to be on the bound CPUs' node (bench.hardware.numa)
            where = numa.placement(host.data_ptr(), host.nbytes, bound) if bound else {"on_node": False}
            for name, fn, check in (
                ("h2d", lambda: a.copy_(host, non_blocking=True), lambda: bool((a == 5.0).all())),
                ("d2h", lambda: host.copy_(b, non_blocking=True), lambda: bool((host == value["b"]).all())),
            ):
                start = utc_now()
                sampled = collect(timer, fn, policy)
                devices.synchronize(device.id)
                m = _record(name, n, device, sampled, policy, timer, 8 * n, check(), None, start)
                m.details.update({"pinned": pinned, "cpu_affinity": bound, "numa_bound": where["on_node"],
                                  "numa_placement": where, "copies_alone": True})  # fmt: skip
                out.append(m)
    return out
