"""Collective communication bandwidth, with nccl-tests' definitions (doc/PERFORMANCE.md in NVIDIA/nccl-tests).

For a message of S bytes (nccl-tests' "size": the per-rank buffer for all_reduce, broadcast and send/recv; the total
gathered (all_gather), scattered (reduce_scatter) or exchanged (all_to_all) across ranks otherwise):

    time   = per-op mean of a batch of back-to-back operations (time_batches), max over ranks (a collective is as
             slow as its slowest rank; nccl-tests averages over ranks unless -a 3)
    algbw  = S / time                   (GB/s, 1 GB = 1e9 bytes)
    busbw  = algbw x factor(op, n):  all_reduce 2(n-1)/n; all_gather, reduce_scatter, all_to_all (n-1)/n;
                                     broadcast and send/recv 1

Every buffer is filled with values known in advance and every result checked after the timed batches; a wrong result
makes that size invalid. A sample is one timed batch's per-op mean (spec `ops_per_sample`); reports from before batches
(no `ops_per_sample`) hold one operation per sample, and read and verify the same way: both are seconds per operation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.distributed as dist

from bench import figures, launch

WORKLOAD = "comm"
OPS = figures.COMM_OPS
ELEMENT = torch.float32
#: torch 2.13 deprecates all_gather_into_tensor / reduce_scatter_tensor (a FutureWarning per rank and call site) for
#: the *_single names, which older torch lacks: the new name where it exists, the same collective either way.
ALL_GATHER = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
REDUCE_SCATTER = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
ITEMSIZE = 4


def message_sizes(min_bytes: int, max_bytes: int, factor: int) -> list[int]:
    """min_bytes, min_bytes*factor, ... up to max_bytes (inclusive), as nccl-tests' -b/-e/-f."""
    if min_bytes < 1 or max_bytes < min_bytes or factor < 2:
        raise ValueError("need 1 <= min_bytes <= max_bytes and factor >= 2")
    out, size = [], min_bytes
    while size <= max_bytes:
        out.append(size)
        size *= factor
    return out


def elements(op: str, size: int, n: int) -> int:
    """Elements per rank's buffer for an S-byte message: whole float32s, and a multiple of n where the buffer splits."""
    count = max(1, size // ITEMSIZE)
    if op in ("all_gather", "reduce_scatter", "all_to_all"):
        count = max(n, count - count % n)
    return count


@dataclass
class Buffers:
    run: Callable[[], None]
    reset: Callable[[], None]
    check: Callable[[], bool]
    bytes: int  # S as nccl-tests counts it


def buffers(op: str, size: int, rank: int, n: int, device: str) -> Buffers:
    """Input/output tensors with known contents, the collective as a callable, and the check of its result."""
    count = elements(op, size, n)
    full = lambda value: torch.full((count,), float(value), dtype=ELEMENT, device=device)
    total = n * (n + 1) / 2  # sum of (r + 1) over ranks
    if op == "all_reduce":
        buf = full(0)
        return Buffers(lambda: dist.all_reduce(buf), lambda: buf.fill_(rank + 1), lambda: bool((buf == total).all()),
                       count * ITEMSIZE)  # fmt: skip
    if op == "broadcast":
        buf = full(0)
        return Buffers(lambda: dist.broadcast(buf, src=0), lambda: buf.fill_(rank + 1), lambda: bool((buf == 1).all()),
                       count * ITEMSIZE)  # fmt: skip
    if op == "all_gather":
        per = count // n
        mine, out = torch.full((per,), float(rank + 1), dtype=ELEMENT, device=device), full(0)
        expect = torch.arange(1, n + 1, dtype=ELEMENT, device=device).repeat_interleave(per)
        return Buffers(lambda: ALL_GATHER(out, mine), lambda: out.zero_(),
                       lambda: bool((out == expect).all()), count * ITEMSIZE)  # fmt: skip
    if op == "reduce_scatter":
        per = count // n
        inp, out = full(rank + 1), torch.zeros(per, dtype=ELEMENT, device=device)
        return Buffers(lambda: REDUCE_SCATTER(out, inp), lambda: out.zero_(),
                       lambda: bool((out == total).all()), count * ITEMSIZE)  # fmt: skip
    if op == "all_to_all":
        per = count // n
        # rank r sends chunk j filled with r*n + j; so rank j's chunk r must hold r*n + j
        inp = (rank * n + torch.arange(n, dtype=ELEMENT, device=device)).repeat_interleave(per)
        out = full(0)
        expect = (torch.arange(n, dtype=ELEMENT, device=device) * n + rank).repeat_interleave(per)
        return Buffers(lambda: dist.all_to_all_single(out, inp), lambda: out.zero_(),
                       lambda: bool((out == expect).all()), count * ITEMSIZE)  # fmt: skip
    if op == "sendrecv":
        peer = rank ^ 1  # pairs (0,1), (2,3), ...; with an odd count the last rank has no peer and copies locally
        if peer >= n:
            peer = rank
        send, recv = full(rank + 1), full(0)

        def exchange() -> None:
            if peer == rank:
                recv.copy_(send)
                return
            # One group holding both directions: posted separately, NCCL can block each rank's send behind the other's
            # (each waits for a receive queued after the peer's own send) until the watchdog kills the job.
            for r in dist.batch_isend_irecv([dist.P2POp(dist.isend, send, peer), dist.P2POp(dist.irecv, recv, peer)]):
                r.wait()

        return Buffers(exchange, lambda: recv.zero_(), lambda: bool((recv == peer + 1).all()), count * ITEMSIZE)
    raise ValueError(f"unknown collective {op!r}; valid: {', '.join(OPS)}")


#: nccl-tests' defaults: `-n 20` operations per timed region, and bench keeps several such regions per size
OPS_PER_SAMPLE = 20
BATCHES = 5


def time_batches(b: Buffers, batches: int, per_batch: int, warmup: int, sync: Callable[[], None],
                 barrier: Callable[[], None], clock: Callable[[], float] = time.perf_counter,
                 ) -> tuple[list[float], list[float], bool]:  # fmt: skip
    """(warm-up seconds per op, timed seconds per op, result correct) on this rank, as nccl-tests' BenchTime times.

    `warmup` untimed operations first (nccl-tests' -w). Then each of `batches` samples: the inputs reset, the device
    synchronized and every rank met at a barrier, all *outside* the timed region; then the clock starts, `per_batch`
    operations are launched back to back (nccl-tests' -n), one device synchronize, the clock stops, and the sample is
    the elapsed time / per_batch (the per-op mean). A barrier or synchronize per op would time the host's round trips
    and the launch latency instead of the collective. The result is checked after the timing, from freshly reset
    inputs and one operation (nccl-tests' -c 1), so a buffer that accumulated over a batch is never judged."""

    def batch(ops: int) -> float:
        b.reset()
        sync()
        barrier()
        t0 = clock()
        for _ in range(ops):
            b.run()
        sync()
        return (clock() - t0) / ops

    warm = [batch(warmup)] if warmup else []
    timed = [batch(per_batch) for _ in range(batches)]
    b.reset()
    sync()
    b.run()
    sync()
    return warm, timed, b.check()


def time_op(
    b: Buffers, batches: int, per_batch: int, warmup: int, device: str
) -> tuple[list[float], list[float], bool]:
    """time_batches on this rank's device: the clock stops once this rank's own device has finished (synchronizing
    any other device would time only the launch); ranks meet on the job's control (gloo) group."""
    sync = (lambda: torch.cuda.synchronize(torch.device(device))) if device.startswith("cuda") else (lambda: None)
    return time_batches(b, batches, per_batch, warmup, sync, lambda: dist.barrier(group=launch.control()))
