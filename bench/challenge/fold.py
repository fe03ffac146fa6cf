"""A folded float32 product (issue 23): C = sum_j A_j B_j over the K / L runs of L columns of A and rows of B, each
A_j B_j a float32 product of inner dimension L, the run results added exactly, C rounded to float32 once.

Why: float32's accuracy check refuses every cheaper scheme only while the sums it models are short (an honest
sequential float32 sum errs as u sqrt(K / 6) t and grows with K; bf16x3 and int8 x3 err about 2^-21 t whatever K), so
float32 challenges asked K = 64, and a node committed and hashed an n x n float32 C for every 128 FLOPs an element:
a proof at about 0.05 of the CPU's MAMF. Folded, a product of inner dimension K is K / L products of inner dimension
L whose exact sum is committed once: the error of C is the sum of K / L independent errors of length-L products, the
same share of t = sqrt(sum_k a^2 b^2) as one length-L product's, so the margins measured at K = L hold at any K
(bench.challenge.exact_rows with `fold`), while the node commits n^2 elements per 2 n^2 K FLOPs.

"Exact" means: the fold adds nothing the check can see. The runs' results are float32; each is converted to float64
exactly and added there (an error of about 2^-53 of the running sum). A node may add a few runs' float32 results in
float32 before folding them (`group`, what torch's addmm does with beta = 1: one rounding per run added): over g runs
that adds u^2 kappa L^2 sigma^2 g (g + 1) / 2 of variance to the g runs' own L^2 sigma^2 g / 2 (sigma^2 a term's
a^2 b^2), a (g + 1) / L share: 14% at g = 8, L = 64, a 7% larger error, measured by tests/perf/fold_ratio.py. Folding
every run in float32 (g = K / L) grows the error with K again and fails from K of about 16384 at n = 256.

On a CPU the fold runs in C (fold_kernel.c, compiled by prepare() when the node warms up): tiles of C (TILE) on one
worker per core, each worker's K / L GEMMs by the BLAS torch itself calls (MKL's sgemm), the float64 adds a
vectorized loop, no Python or GIL between runs. The same operations in the same order as the torch path (_panel:
the one panel a GPU computes, and a CPU's where no C compiler or MKL is found), so the same bits; prepare() keeps the
kernel only where a probe gives them. The error budget above is unchanged.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import queue
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from bench.challenge import native

#: Runs added in float32 before each exact fold into float64 (see the module docstring's error budget).
GROUP = 8
#: Rows of C one CPU worker computes at a time on the torch path (no compiled kernel): its float64 accumulator
#: (PANEL_ROWS x n x 8 bytes: 1 MiB at n = 2048) and float32 partial stay in the core's L2 cache across all K / L runs;
#: a whole n x n float64 fold per run streams 20 bytes an element through memory for 2 L FLOPs and ran at 0.14 of
#: MAMF at n = 2048 (tests/perf/fold_ratio.py).
PANEL_ROWS = 64
#: Rows and columns of C one CPU worker folds at a time with the compiled kernel (fold_kernel.c): its float32
#: partial and float64 accumulator (12 bytes an element: 1.5 MiB) fit a core's 2 MiB L2 cache, and each of its K / L
#: GEMMs (128 x 64 x 1024, 17 MFLOP) is large enough that the BLAS call costs nothing measurable. 128 x 1024 ran at
#: 0.81-0.87 of MKL's single-threaded long-K GEMM in CPU time per FLOP, 256 x 512 and 512 x 512 at 0.76-0.79 (four
#: interleaved runs on the shared machine, load 5-6).
TILE = (128, 1024)
#: The kernel's source, compiled where it runs (prepare()).
KERNEL_SOURCE = Path(__file__).with_name("fold_kernel.c")

#: Each kernel worker's scratch (a float32 partial and a float64 accumulator of a tile), kept from tile to tile and
#: product to product: allocated per tile, glibc mapped them afresh (page faults) about once a tile.
_SCRATCH: queue.SimpleQueue[tuple[torch.Tensor, torch.Tensor]] = queue.SimpleQueue()
#: prepare()'s outcome: (the compiled fold_tile, the BLAS sgemm it calls) or why there is none.
_KERNEL: dict[str, tuple[ctypes._CFuncPtr, int] | str] = {}


@contextlib.contextmanager
def _one_thread_per_worker() -> Iterator[int]:
    """torch's intra-op threads set to 1 while `threads` Python workers (GIL released in each op) take a tile each,
    restored after. Yields the worker count (torch's threads before). Each worker sets its own too (_single_threaded):
    OpenMP's and MKL's thread counts are per thread, and a worker that calls the kernel through ctypes never passes
    through torch's per-thread initialization, so its GEMMs ran on MKL's default threads (two here: a single worker
    measured 1.9 cores of CPU, two of them four threads on two cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)


def _single_threaded() -> None:
    """A worker's initializer: its own OpenMP and MKL threads (torch.set_num_threads sets both for the calling
    thread) to 1."""
    torch.set_num_threads(1)


def _sgemm() -> tuple[int | None, str | None]:
    """(address of the BLAS sgemm torch's CPU matmul calls, None) or (None, why not): MKL's Fortran sgemm_, which
    torch's x86 builds link statically and export from libtorch_cpu."""
    lib = Path(torch.__file__).parent / "lib" / f"libtorch_cpu{'.so' if sys.platform.startswith('linux') else '.dylib'}"
    if not torch.backends.mkl.is_available() or not lib.exists():
        return None, "torch's CPU build has no MKL"
    try:
        return ctypes.cast(ctypes.CDLL(str(lib)).sgemm_, ctypes.c_void_p).value, None
    except (OSError, AttributeError) as exc:
        return None, f"no sgemm_ in {lib.name} ({exc})"


def _compile() -> tuple[ctypes._CFuncPtr | None, str | None]:
    """fold_kernel.c compiled for this CPU (bench.challenge.native) and its fold_tile, or (None, why not)."""
    lib, why = native.compile_library(KERNEL_SOURCE)
    if lib is None:
        return None, why
    fn = lib.fold_tile
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                   ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                   ctypes.c_void_p, ctypes.c_void_p]  # fmt: skip
    return fn, None


def prepare() -> str | None:
    """Compile the CPU fold kernel (fold_kernel.c) and keep it if it gives the torch path's bits on a probe (ragged
    tiles, both a partial group and a full one); node.warm calls it before the challenge arrives (about 0.2 s).
    Returns None when the kernel is in use, else why not (the torch path answers with the same bits, slower)."""
    if "fold" in _KERNEL:
        got = _KERNEL["fold"]
        return got if isinstance(got, str) else None
    sgemm, why = _sgemm()
    fn, why = (None, why) if sgemm is None else _compile()
    if fn is None:
        _KERNEL["fold"] = why or "no kernel"
        return _KERNEL["fold"]
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(TILE[0] + 3, 640, generator=gen), torch.randn(640, TILE[1] + 5, generator=gen)
    _KERNEL["fold"] = (fn, sgemm)
    if not torch.equal(product(a, b, 64), product(a, b, 64, kernel=False)):
        _KERNEL["fold"] = "the compiled kernel's bits differ from the torch path's on the probe"
        return _KERNEL["fold"]
    return None


def in_use() -> bool:
    """Whether prepare() compiled the CPU kernel and kept it."""
    return isinstance(_KERNEL.get("fold"), tuple)


def _panel(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, rows: slice, fold: int, group: int,
           cols: slice = slice(None)) -> None:  # fmt: skip
    """out[rows, cols] = the folded product of a[rows] and b[:, cols] (module docstring), by torch ops: the CUDA
    path (one panel), and the CPU's where the compiled kernel is not in use."""
    a_runs, b_runs = a[rows].split(fold, dim=1), b[:, cols].split(fold)
    acc = torch.zeros(a_runs[0].shape[0], b_runs[0].shape[1], dtype=torch.float64, device=a.device)
    part = torch.empty(a_runs[0].shape[0], b_runs[0].shape[1], dtype=torch.float32, device=a.device)
    for j, (a_j, b_j) in enumerate(zip(a_runs, b_runs, strict=True)):
        if j % group == 0:
            torch.mm(a_j, b_j, out=part)
        else:
            part.addmm_(a_j, b_j)
        if j % group == group - 1 or j == len(b_runs) - 1:
            acc += part  # float32 to float64: exact, then one float64 rounding
    out[rows, cols] = acc  # the one rounding to float32


def _tile(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, rows: slice, cols: slice, fold: int,
          group: int) -> None:  # fmt: skip
    """out[rows, cols] by the compiled kernel (fold_kernel.c): the same operations as _panel's, in C."""
    fn, sgemm = _KERNEL["fold"]  # type: ignore[misc]
    lda, ldb, ldo = a.stride(0), b.stride(0), out.stride(0)
    size = (rows.stop - rows.start) * (cols.stop - cols.start)
    try:
        part, acc = _SCRATCH.get_nowait()
    except queue.Empty:
        part, acc = torch.empty(0), torch.empty(0, dtype=torch.float64)
    if part.numel() < size:  # a tile larger than any before (TILE changed): scratch for it
        part, acc = torch.empty(size), torch.empty(size, dtype=torch.float64)
    try:
        fn(sgemm, a.data_ptr() + 4 * rows.start * lda, lda, b.data_ptr() + 4 * cols.start, ldb,
           out.data_ptr() + 4 * (rows.start * ldo + cols.start), ldo, rows.stop - rows.start, cols.stop - cols.start,
           a.shape[1], fold, group, part.data_ptr(), acc.data_ptr())  # fmt: skip
    finally:
        _SCRATCH.put((part, acc))


def product(a: torch.Tensor, b: torch.Tensor, fold: int, group: int = GROUP, kernel: bool = True) -> torch.Tensor:
    """The folded float32 product of a (n x K) and b (K x n) on their device (module docstring); K a multiple of
    `fold`. On a CPU, tiles of TILE across one worker per torch thread, each by the compiled kernel (prepare(); with
    `kernel` and where it is in use), else row panels of PANEL_ROWS by torch ops; elsewhere one panel."""
    if a.dtype != torch.float32 or b.dtype != torch.float32:
        raise ValueError(f"a folded product is of float32 operands, not {a.dtype} and {b.dtype}")
    if a.shape[1] != b.shape[0] or a.shape[1] % fold:
        raise ValueError(f"inner dimension {a.shape[1]} (B: {b.shape[0]}) is not a multiple of the fold {fold}")
    n, m = a.shape[0], b.shape[1]
    out = torch.empty(n, m, dtype=torch.float32, device=a.device)
    if a.device.type != "cpu":
        _panel(a, b, out, slice(0, n), fold, group)
        return out
    if kernel and "fold" not in _KERNEL:
        prepare()
    if kernel and in_use():
        a, b = a.contiguous(), b.contiguous()
        tiles = [(slice(i, min(n, i + TILE[0])), slice(j, min(m, j + TILE[1])))
                 for i in range(0, n, TILE[0]) for j in range(0, m, TILE[1])]  # fmt: skip
        work = [(_tile, a, b, out, rows, cols, fold, group) for rows, cols in tiles]
    else:
        work = [(_panel, a, b, out, slice(i, min(n, i + PANEL_ROWS)), fold, group) for i in range(0, n, PANEL_ROWS)]
    with (_one_thread_per_worker() as workers,
          concurrent.futures.ThreadPoolExecutor(workers, initializer=_single_threaded) as pool):  # fmt: skip
        for f in [pool.submit(*w) for w in work]:
            f.result()
    return out
