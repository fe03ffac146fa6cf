"""One thread on one CPU: the per-core figure of `bench gate`'s suite (configs/gate-cpu.toml, issue 25).

Why: on a 2-vCPU VM a two-thread GEMM waits on whichever vCPU the host slows at that moment, so the all-core figure of
one run differs from the next run's by 5-12% (robust CV of A/A pair ratios; ratios 0.64-1.20 on the lead's 10:46 UTC
measurement of 2026-12-07), while one thread held on one CPU read 2.2% (ratios 0.96-1.11) on the same idle VM: a
10% slow-down is then many standard deviations away. The all-core figure is kept beside it (a thread-count
regression does not show on one thread), judged at its own threshold.

The seam is `os.sched_getaffinity` / `os.sched_setaffinity` and `torch.set_num_threads` / `torch.get_num_threads`,
looked up at each call (tests replace them and assert what was asked); a CPU this process may not run on is refused
with PinningError before anything changes, never silently measured on another one."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch


class PinningError(ValueError):
    """A CPU this process may not run on, or no affinity call on this OS."""


def allowed_cpus() -> set[int]:
    """The CPUs this process may run on (its affinity mask); PinningError where the OS has no affinity call."""
    if not hasattr(os, "sched_getaffinity") or not hasattr(os, "sched_setaffinity"):
        raise PinningError("pinning a measurement to one CPU needs os.sched_setaffinity (Linux)")
    return set(os.sched_getaffinity(0))


def check_cpu(cpu: int) -> int:
    """`cpu` when this process may run on it, else PinningError naming the CPUs it may run on."""
    allowed = allowed_cpus()
    if cpu not in allowed:
        raise PinningError(f"CPU {cpu} is not one this process may run on (its CPUs: "
                         f"{', '.join(map(str, sorted(allowed)))}): pin to one of those")  # fmt: skip
    return cpu


#: pin_cpu's "the first CPU this process may run on" (the lowest of its affinity mask): a container's cpuset or a
#: taskset may leave CPU 0 out (docker --cpuset-cpus=2,3, Kubernetes' static CPU manager), where pinning CPU 0 is
#: refused; the figure is labelled with the CPU it resolved to.
FIRST_ALLOWED = -1


def resolve(cpu: int) -> int:
    """`cpu`, or for FIRST_ALLOWED the lowest CPU this process may run on (PinningError where the OS has no affinity
    call)."""
    return min(allowed_cpus()) if cpu == FIRST_ALLOWED else cpu


@contextlib.contextmanager
def one_core(cpu: int) -> Iterator[int]:
    """Inside: this process (every thread torch starts from it) runs on `cpu` (resolve) alone, and torch uses one intra-op
    thread; the affinity and the thread count are put back as they were afterwards, whatever happened. Yields the
    threads torch reports inside (1: read back, not assumed, so that a pinning whose thread setting did not take is
    recorded as what ran and the gate refuses to compare it with a one-thread figure: tests/adversarial/
    test_thirteenth_round.py). PinningError (check_cpu) before any change when `cpu` is not allowed."""
    before = allowed_cpus()
    cpu = check_cpu(resolve(cpu))
    threads = torch.get_num_threads()
    os.sched_setaffinity(0, {cpu})
    try:
        torch.set_num_threads(1)
        try:
            yield torch.get_num_threads()
        finally:
            torch.set_num_threads(threads)
    finally:
        os.sched_setaffinity(0, before)
