"""Where host memory pages really are: the NUMA node of each CPU (sysfs) and of each page (move_pages(2)).

A pinned buffer for host<->device copies belongs on the GPU's own NUMA node: pages on the other socket cross the
inter-socket link and the copy reads low. Linux places a page on the node of the CPU that first touches it, so the
buffer is first touched from a thread bound to the GPU's CPUs; whether that worked is then *checked*, not assumed:
move_pages(2) with no target nodes moves nothing and reports the node each page is on (or -ENOENT for a page never
touched). A report says `numa_bound` only when every page checked is on a node of the CPUs the thread was bound to.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import platform
from collections import Counter
from pathlib import Path
from typing import Any

#: sysfs' NUMA nodes, each with a cpulist (tests point this at a fake topology)
NODE_ROOT = Path("/sys/devices/system/node")
#: move_pages' system call number per machine (asm/unistd.h)
SYS_MOVE_PAGES = {"x86_64": 279, "aarch64": 239, "ppc64le": 301}
#: pages checked per buffer, spread evenly over it: one system call, and a 1 GiB buffer's 262,144 pages need not all
#: be listed to find one placed wrong by a whole thread pool
MAX_PAGES_CHECKED = 4096


def parse_cpulist(text: str) -> set[int]:
    """'0-3,8,10-11' -> {0, 1, 2, 3, 8, 10, 11} (the kernel's cpulist format)."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return cpus


def cpu_nodes(root: Path | None = None) -> dict[int, set[int]]:
    """NUMA node -> its CPUs, from sysfs; {} where sysfs has no nodes (not Linux, or no NUMA support)."""
    root = NODE_ROOT if root is None else root
    out: dict[int, set[int]] = {}
    for path in sorted(root.glob("node[0-9]*")):
        try:
            out[int(path.name[4:])] = parse_cpulist((path / "cpulist").read_text())
        except (OSError, ValueError):
            continue
    return out


def nodes_of(cpus: list[int], root: Path | None = None) -> set[int]:
    """The NUMA nodes `cpus` belong to."""
    return {node for node, members in cpu_nodes(root).items() if members & set(cpus)}


def page_nodes(address: int, nbytes: int, max_pages: int = MAX_PAGES_CHECKED) -> list[int]:
    """The node of up to `max_pages` pages spread over [address, address + nbytes), by move_pages(2) in query mode (a
    negative value is -errno for that page: -2, ENOENT, for a page never touched). OSError where the call is not
    available (another OS or machine, or a sandbox that forbids it)."""
    number = SYS_MOVE_PAGES.get(platform.machine())
    if number is None or not hasattr(os, "sched_setaffinity"):
        raise OSError(f"move_pages is not known on {platform.system()} {platform.machine()}")
    page = mmap.PAGESIZE
    first = -(-address // page) * page
    whole = (address + nbytes - first) // page
    if whole <= 0:
        return []
    count = min(whole, max_pages)
    step = whole / count
    pages = (ctypes.c_void_p * count)(*(first + int(i * step) * page for i in range(count)))
    status = (ctypes.c_int * count)()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(ctypes.c_long(number), 0, ctypes.c_ulong(count), pages, None, status, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"move_pages: {os.strerror(err)}")
    return list(status)


def placement(address: int, nbytes: int, cpus: list[int] | None, root: Path | None = None) -> dict[str, Any]:
    """Where a buffer's pages are against the nodes of `cpus` (the CPUs that first touched it): `on_node` is True only
    when pages were checked and every one is on one of those nodes."""
    expected = sorted(nodes_of(cpus or [], root))
    out: dict[str, Any] = {"expected_nodes": expected, "on_node": False}
    if not expected:
        out["why"] = "the bound CPUs' NUMA node is unknown (no sysfs node lists them)"
        return out
    try:
        found = page_nodes(address, nbytes)
    except OSError as exc:
        out["why"] = f"page placement could not be read: {exc}"
        return out
    counts = Counter(found)
    out["pages_checked"] = len(found)
    out["page_nodes"] = {("untouched" if n == -2 else str(n) if n >= 0 else f"error {-n}"): c
                         for n, c in sorted(counts.items())}  # fmt: skip
    out["on_node"] = bool(found) and all(n in expected for n in found)
    if not out["on_node"]:
        out["why"] = "pages found off the bound CPUs' node(s)"
    return out
