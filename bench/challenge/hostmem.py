"""Host buffers for a node's CPU work inside the window, backed by transparent huge pages where the kernel allows it
(issue 23).

Why: a node's first product at n = 4096, K = 8192 writes 256 MiB of fresh operands and every product a fresh 64 MiB
C. Mapped in 4 KiB pages, each first touch is a page fault: measured on this 2-core VM, 128 MiB cost 0.05-0.52 s of
CPU in 32,768 faults (the spread is the hypervisor's), against 0.03-0.11 s in 64 faults with MADV_HUGEPAGE, inside a
window of about 2 s. Huge pages also cut the TLB misses of the fold's strided reads of A (one 32 KiB row a page).

Only where the buffer's contents are the node's own: the values written are the same bits whatever backs them, and
the auditor never allocates through here. Linux's `transparent_hugepage` setting decides ("madvise" here: only
advised mappings get huge pages; "never": plain pages, the same result, slower); elsewhere, or for an empty
buffer, torch.empty."""

from __future__ import annotations

import math
import mmap

import torch


def advisable() -> bool:
    """Whether this platform takes the huge-page advice (Linux's MADV_HUGEPAGE, Python's mmap.madvise)."""
    return hasattr(mmap, "MADV_HUGEPAGE") and hasattr(mmap.mmap, "madvise")


def empty(shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialized contiguous CPU tensor of `shape` and `dtype` in an anonymous mapping advised for huge pages
    (zero-filled by the kernel on first touch, as torch.empty's large allocations are); torch.empty where the advice
    is unavailable or the tensor is empty. The tensor holds the mapping: it is unmapped when the last view goes."""
    size = math.prod(shape) * torch.empty(0, dtype=dtype).element_size()
    if not size or not advisable():
        return torch.empty(shape, dtype=dtype)
    buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        buf.madvise(mmap.MADV_HUGEPAGE)
    except OSError:  # a kernel built without transparent huge pages: plain pages, the same buffer
        pass
    return torch.frombuffer(buf, dtype=dtype).view(shape)
