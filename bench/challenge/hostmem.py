"""Host buffers for a node's CPU work inside the window, backed by transparent huge pages where the kernel allows it
(issue 23).

Why: a node's first product at n = 4096, K = 8192 writes 256 MiB of fresh operands and every product a fresh 64 MiB
C. Mapped in 4 KiB pages, each first touch is a page fault: measured on this 2-core VM, 128 MiB cost 0.05-0.52 s of
CPU in 32,768 faults (the spread is the hypervisor's), against 0.03-0.11 s in 64 faults with MADV_HUGEPAGE, inside a
window of about 2 s. Huge pages also cut the TLB misses of the fold's strided reads of A (one 32 KiB row a page).

First touch is what costs, more than the page size: on this VM a never-touched 128 MiB cost 0.1-0.8 s to fill the
first time and 0.02-0.03 s once mapped (memory this VM had not touched before faults in the guest and, by the spread, in the hypervisor), and a round's first
product writes 256 MiB of fresh operands and each product a fresh C: the first product's generation took 0.83 s where
the second's, into the first's buffers, took 0.03 s (proof_ratio, load 4). So a node may reserve() host memory
before the challenge arrives (`challenge answer --reserve-mib`, as it compiles its kernels then): empty() carves
buffers from it, touched already, until it is spent, then maps new ones.

Only where the buffer's contents are the node's own: the values written are the same bits whatever backs them, and
the auditor never allocates through here. Linux's `transparent_hugepage` setting decides ("madvise" here: only
advised mappings get huge pages; "never": plain pages, the same result, slower); elsewhere, or for an empty
buffer, torch.empty."""

from __future__ import annotations

import math
import mmap
import threading
import time

import torch

#: Reserved mappings (reserve()) and the offset of each one's first free byte: empty() carves from them in order.
_RESERVED: list[list] = []
_LOCK = threading.Lock()
#: Carved buffers start on this boundary (a huge page's), so no two share a page.
ALIGN = 2 << 20


def advisable() -> bool:
    """Whether this platform takes the huge-page advice (Linux's MADV_HUGEPAGE, Python's mmap.madvise)."""
    return hasattr(mmap, "MADV_HUGEPAGE") and hasattr(mmap.mmap, "madvise")


def reserve(nbytes: int) -> float:
    """Map `nbytes` (rounded up to ALIGN) advised for huge pages and touch every page (written with zeros by torch's
    threads), for empty() to carve from; returns the seconds it took. Kept until the process ends or release()."""
    size = -(-max(0, nbytes) // ALIGN) * ALIGN
    if not size:
        return 0.0
    start = time.perf_counter()
    buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if advisable():
        try:
            buf.madvise(mmap.MADV_HUGEPAGE)
        except OSError:
            pass
    torch.frombuffer(buf, dtype=torch.uint8).zero_()
    with _LOCK:
        _RESERVED.append([buf, 0])
    return time.perf_counter() - start


def reserved() -> int:
    """Bytes reserved and not yet carved."""
    with _LOCK:
        return sum(len(buf) - used for buf, used in _RESERVED)


def release() -> None:
    """Forget the reserved mappings (each is unmapped once no tensor carved from it remains)."""
    with _LOCK:
        _RESERVED.clear()


def _carve(size: int, dtype: torch.dtype) -> torch.Tensor | None:
    """`size` bytes from the first reserved mapping with room, or None."""
    with _LOCK:
        for entry in _RESERVED:
            buf, used = entry
            if len(buf) - used >= size:
                entry[1] = used + -(-size // ALIGN) * ALIGN
                return torch.frombuffer(buf, dtype=dtype, count=size // torch.empty(0, dtype=dtype).element_size(),
                                        offset=used)  # fmt: skip
    return None


def empty(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialized contiguous CPU tensor of `shape` and `dtype`: carved from reserve()'s memory where enough is
    left, else in a new anonymous mapping advised for huge pages
    (zero-filled by the kernel on first touch, as torch.empty's large allocations are); torch.empty where the advice
    is unavailable or the tensor is empty. The tensor holds the mapping: it is unmapped when the last view goes."""
    size = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
    if not size:
        return torch.empty(shape, dtype=dtype)
    carved = _carve(size, dtype)
    if carved is not None:
        return carved.view(shape)
    if not advisable():
        return torch.empty(shape, dtype=dtype)
    buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        buf.madvise(mmap.MADV_HUGEPAGE)
    except OSError:  # a kernel built without transparent huge pages: plain pages, the same buffer
        pass
    return torch.frombuffer(buf, dtype=dtype).view(shape)
