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

On a CPU the fold runs in C, compiled by prepare() when the node warms up, the first of these kept:
- the microkernel (microfold_kernel.c): a register-blocked GEMM microkernel (Goto/BLIS) that computes each run as a
  sequential float32 FMA chain of L terms from zero, adds a group's runs in float32 in registers and folds each group
  into float64, B packed once a product, A once per block of MC rows; kept only where its bits equal emulate()'s (an
  exact emulation of that order) on a probe of ragged shapes and its error is within the fold's allowance. A run's
  order is a BLAS's own choice (a GPU's differs too): sequential FMA over L = 64 is the order the allowance is sized
  by (bench.challenge.exact_rows, tests/perf/fold_ratio.py).
- the sgemm kernel (fold_kernel.c): tiles of C (TILE), each worker's K / L GEMMs by the BLAS torch itself calls
  (MKL's sgemm, partial in memory every run), the float64 adds a vectorized loop; the same operations in the same
  order as the torch path, kept only where a probe gives the torch path's bits.
- else the torch path (_panel: the one panel a GPU computes, and a CPU's where no C compiler or MKL is found).
Each on one worker per core, no Python or GIL between runs. The error budget above is unchanged.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.challenge import exact_rows, hostmem, native, protocol

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
#: The sgemm kernel's source, compiled where it runs (prepare()).
KERNEL_SOURCE = Path(__file__).with_name("fold_kernel.c")
#: The microkernel's source (microfold_kernel.c), compiled where it runs (prepare()).
MICRO_SOURCE = Path(__file__).with_name("microfold_kernel.c")
#: The microkernel's blocking (microfold_kernel.c's header): about MC rows of C a work item (B's slivers are read
#: from memory once a block), columns of a tile (its float32 partial and float64 accumulator, MC x NC x 12 bytes, in
#: L2) and runs a chunk (B's sliver, KC x L x NR floats: 24 KiB at KC = 3, in L1). At n = 4096, K = 8192 (09:48 UTC,
#: load 1.7-2.2) 8 x 32 micro-tiles at these blocks ran 0.81 of MAMF, 6 x 32 at KC = 4 0.78 (0.74 without
#: prefetch), tiles of 320 x 320 0.68-0.74 (tests/perf/fold_ratio.py --micro-shapes; docs/proofs.md).
MICRO_BLOCKS = {"mc": 384, "nc": 128, "kc": 3}

#: Each kernel worker's scratch (a float32 partial and a float64 accumulator of a tile), kept from tile to tile and
#: product to product: allocated per tile, glibc mapped them afresh (page faults) about once a tile.
_SCRATCH: queue.SimpleQueue[tuple[torch.Tensor, torch.Tensor]] = queue.SimpleQueue()
#: The microkernel's packed A and B (_micro_product), kept from product to product like _SCRATCH: allocated per
#: product, 256 MiB at n = 4096, K = 8192 were mapped afresh (about 60 ms of page faults per 128 MiB).
_PACKED: queue.SimpleQueue[tuple[torch.Tensor, torch.Tensor]] = queue.SimpleQueue()
#: prepare()'s outcomes: "fold", (the sgemm kernel's fold_tile, the BLAS sgemm it calls); "micro", (the microkernel's
#: library, 0); or why there is none.
_KERNEL: dict[str, tuple[Any, int] | str] = {}


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


def _fma32(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """float32 fma(x, y, z), rounded once, for float32 values held in float64 arrays. x y is exact in float64 (two
    24-bit significands); t = fl64(x y + z) and e (Knuth's TwoSum: x y + z = t + e exactly) give the exact sum;
    rounding t to float32 is that sum's correct rounding except where t lies exactly halfway between two float32s
    and e is not zero (double rounding), where e's sign picks the nearer neighbour."""
    p = x * y
    t = p + z
    bp = t - p
    e = (p - (t - bp)) + (z - bp)
    with np.errstate(over="ignore", invalid="ignore"):  # t beyond float32's range rounds to inf, as FMA does
        r = t.astype(np.float32)
        other = np.nextafter(r, np.where(t > r, np.float32(np.inf), np.float32(-np.inf)))
    r64, o64 = r.astype(np.float64), other.astype(np.float64)
    # past FLT_MAX the rounding's other neighbour is 2^128 (IEEE 754's overflow threshold is FLT_MAX + half an ulp):
    # without it a t that double rounding put on that threshold became inf where FMA gives FLT_MAX
    edge = np.where(np.isinf(r64) & np.isfinite(t), np.copysign(2.0**128, t), r64)
    tie = (t != r64) & ((edge + o64) * 0.5 == t) & (e != 0)
    toward_other = np.sign(e) == np.sign(o64 - edge)
    return np.where(tie & toward_other, o64, r64)


def emulate(a: torch.Tensor, b: torch.Tensor, run: int, group: int = GROUP) -> torch.Tensor:
    """The microkernel's folded product by its stated order, exactly, in numpy (slow: for probes and tests): each
    output's run of `run` terms a float32 FMA chain from zero in order of k, a group's runs added in float32 one by
    one (fl32(p + s): a float64 sum of two float32s rounded to float32 is their float32 sum, 53 >= 2 x 24 + 2),
    each group's partial added into float64, the float64 sum rounded to float32 once."""
    x, y = a.to(torch.float64).numpy(), b.to(torch.float64).numpy()
    acc = np.zeros((x.shape[0], y.shape[1]))
    runs = x.shape[1] // run
    part = acc
    for j in range(runs):
        s = np.zeros_like(acc)
        for k in range(j * run, (j + 1) * run):
            s = _fma32(x[:, k : k + 1], y[k : k + 1, :], s)
        part = s if j % group == 0 else (part + s).astype(np.float32).astype(np.float64)
        if j % group == group - 1 or j == runs - 1:
            acc = acc + part
    return torch.from_numpy(acc.astype(np.float32))


def _micro_compile(source: Path | None = None, portable: bool = False) -> tuple[Any, str | None]:
    """microfold_kernel.c (or `source`) compiled for this CPU and its functions, or (None, why not). A build without
    a vector unit it was written for (AVX-512, else AVX2 with FMA) is refused unless `portable` (tests): its portable
    loop is slower than the sgemm kernel."""
    lib, why = native.compile_library(source or MICRO_SOURCE)
    if lib is None:
        return None, why
    if lib.microfold_isa() == 0 and not portable:
        return None, "the microkernel found neither AVX-512 nor AVX2 with FMA"
    lib.microfold_pack_b.restype = None
    lib.microfold_pack_b.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                     ctypes.c_int, ctypes.c_void_p]  # fmt: skip
    lib.microfold_pack_a.restype = None
    lib.microfold_pack_a.argtypes = lib.microfold_pack_b.argtypes
    lib.microfold_block.restype = ctypes.c_int
    lib.microfold_block.argtypes = [*[ctypes.c_void_p] * 3, *[ctypes.c_int] * 9, ctypes.c_void_p, ctypes.c_void_p]
    return lib, None


#: The microkernel's probe: rows and columns that no micro-tile, tile or block divides, 11 runs (a group of 8 and a
#: partial one) in chunks of 3 (a chunk that ends mid-group and one that starts mid-group), at small blocks.
PROBE = {"rows": 29, "cols": 77, "runs": 11, "blocks": {"mc": 12, "nc": 40, "kc": 3}}
#: And at the blocks a product runs at (MICRO_BLOCKS), on two workers: chunks of KC runs (PROBE's never hold KC), two
#: tiles of NC columns, a ragged micro-panel, the packing split across workers. A kernel wrong only there passed
#: PROBE alone and was kept (tests/adversarial/test_twelfth_round.py).
PROBE_AT_BLOCKS = {"rows": 13, "cols": 168, "runs": 11, "blocks": MICRO_BLOCKS, "workers": 2}


def _probe_operands(rows: int, cols: int, inner: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Challenge-like float32 operands (version 3: full significands, an exponent spread) cut to rows x inner and
    inner x cols."""
    size = max(rows, cols)
    a = protocol.operand("0" * 64, "probe", "probe", 0, "A", size, "float32", 3, inner=inner, reference=True)
    b = protocol.operand("0" * 64, "probe", "probe", 0, "B", size, "float32", 3, inner=inner, reference=True)
    return a[:rows].contiguous(), b[:, :cols].contiguous()


def micro_probe(lib: Any) -> str | None:
    """Why `lib`'s microkernel must not be used, or None: on PROBE's operands at PROBE's blocks its bits must equal
    emulate()'s, and every row's error must be within the fold's allowance (exact_rows.scores <= 1)."""
    for probe in (PROBE, PROBE_AT_BLOCKS):
        rows, cols, runs = probe["rows"], probe["cols"], probe["runs"]
        a, b = _probe_operands(rows, cols, runs * protocol.FOLD)
        got = _micro_product(lib, a, b, protocol.FOLD, GROUP, probe["blocks"], workers=probe.get("workers", 1))
        want = emulate(a, b, protocol.FOLD, GROUP)
        if not torch.equal(got, want):
            bad = int((got != want).sum())
            return (f"the microkernel's bits differ from its stated order's exact emulation in {bad} of {got.numel()} "
                    "outputs")  # fmt: skip
        worst = float(exact_rows.scores(a.double().numpy(), b, got.double().numpy(), "float32", 3, protocol.FOLD).max())
        if not worst <= 1.0:
            return f"the microkernel's error is {worst:.3g}x the fold's allowance"
    return None


def prepare_micro() -> str | None:
    """Compile the microkernel and keep it if micro_probe passes (about 0.5 s). None when it is in use, else why not."""
    if "micro" not in _KERNEL:
        lib, why = _micro_compile()
        why = why or micro_probe(lib)
        _KERNEL["micro"] = why or (lib, 0)  # type: ignore[assignment]
    got = _KERNEL["micro"]
    return got if isinstance(got, str) else None


def prepare() -> str | None:
    """Compile the CPU fold kernels; node.warm calls it before the challenge arrives. Both are compiled and probed
    (prepare_sgemm, prepare_micro); where both are kept, the one that measures faster here answers (calibrate), else
    the one kept. Returns None when either is in use, else why neither is (the torch path answers, slower).

    Why measured, not a fixed order: which is faster depends on the CPU. On the Intel-class VM this was first
    measured on (float32 MAMF 280-340 GFLOPS on 2 cores), the sgemm kernel was as fast as the microkernel or faster
    (tests/perf/fold_ratio.py, quiet, 2026-12-07 09:56 UTC: 0.79 against 0.72 of MAMF at n = 2048, K = 4096, 0.86
    against 0.83 at n = 4096, K = 8192), so it was kept first (7fba2c1); on the AMD EPYC this VM became (17:14 UTC),
    the microkernel ran 93-102 GFLOPS a core in CPU time against 78-93 for MKL's own GEMM on the same shapes
    (docs/proofs.md)."""
    why = prepare_sgemm()
    why_micro = prepare_micro()
    if why is None and why_micro is None:
        if "choice" not in _KERNEL:
            took = calibrate()
            _KERNEL["choice"] = ("micro" if took["micro"] < took["sgemm"] else "sgemm", took)  # type: ignore[assignment]
        return None
    return None if why is None or why_micro is None else f"{why}; {why_micro}"


#: calibrate()'s product: one worker's share of a challenge-like product, large enough for whole tiles of either
#: kernel (the sgemm kernel's TILE, the microkernel's blocks) and about 2 GFLOP (20-30 ms a kernel on one core here).
CALIBRATION = {"rows": 512, "cols": 1024, "inner": 2048, "reps": 3}


def calibrate() -> dict[str, float]:
    """CPU seconds of each kept kernel ("sgemm", "micro") on CALIBRATION's product on one worker, best of its
    repetitions, the kernels alternating (other load depresses both alike). Process CPU time, not wall: another
    process's load on the shared cores is not this kernel's cost. The microkernel's time includes packing its
    operands, a larger share here (about 6x) than in a challenge's product: ties go to the sgemm kernel."""
    rows, cols, inner = CALIBRATION["rows"], CALIBRATION["cols"], CALIBRATION["inner"]
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(rows, inner, generator=gen), torch.randn(inner, cols, generator=gen)
    out = torch.empty(rows, cols)
    took = {"sgemm": float("inf"), "micro": float("inf")}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for rep in range(CALIBRATION["reps"] + 1):  # the first round warms caches and scratch, and is not kept
            for name in ("sgemm", "micro"):
                start = time.process_time()
                product(a, b, protocol.FOLD, kernel=name, out=out)
                if rep:
                    took[name] = min(took[name], time.process_time() - start)
    finally:
        torch.set_num_threads(threads)
    return took


def prepare_sgemm() -> str | None:
    """Compile the sgemm fold kernel (fold_kernel.c) and keep it if sgemm_probe passes, about 0.2 s. Returns None
    when the kernel is in use, else why not (the torch path answers, slower)."""
    if "fold" in _KERNEL:
        got = _KERNEL["fold"]
        return got if isinstance(got, str) else None
    sgemm, why = _sgemm()
    fn, why = (None, why) if sgemm is None else _compile()
    if fn is None:
        _KERNEL["fold"] = why or "no kernel"
        return _KERNEL["fold"]
    _KERNEL["fold"] = (fn, sgemm)
    why = sgemm_probe()
    if why:
        _KERNEL["fold"] = why
    return why


def _tiles(a: torch.Tensor, b: torch.Tensor, fold: int, group: int) -> torch.Tensor:
    """The folded product by the torch path on the sgemm kernel's tiles (TILE): the same BLAS calls on the same
    shapes as the kernel's, by torch ops."""
    out = torch.empty(a.shape[0], b.shape[1])
    for i in range(0, a.shape[0], TILE[0]):
        for j in range(0, b.shape[1], TILE[1]):
            _panel(
                a, b, out, slice(i, min(a.shape[0], i + TILE[0])), fold, group, slice(j, min(b.shape[1], j + TILE[1]))
            )
    return out


def sgemm_probe() -> str | None:
    """Why the sgemm kernel must not be used, or None: on challenge operands of TILE plus a ragged edge (a partial
    tile each way) and 10 runs (a group of 8 and a partial one), at group 8 and 1, its bits must equal the torch
    path's on the same tiles (_tiles: what it states it computes), and every row's error must be within the fold's
    allowance (exact_rows.scores <= 1).

    On the same tiles, not the torch path's own row panels: a BLAS may order a run's 64 terms by the shape of the
    call. On an AMD EPYC (2026-12-07) MKL's sgemm summed 592 of 134,799 outputs of a 131 x 1029 product otherwise
    on tiles of 128 x 1024 than on panels of 64 rows, so the kernel was refused there, and the kernel's tests failed,
    though it made exactly the calls it states (equal to _tiles' bits)."""
    a, b = _probe_operands(TILE[0] + 3, TILE[1] + 5, 10 * protocol.FOLD)
    for group in (GROUP, 1):
        got = product(a, b, protocol.FOLD, group, kernel="sgemm")
        if not torch.equal(got, _tiles(a, b, protocol.FOLD, group)):
            return "the compiled kernel's bits differ from the torch path's on its tiles in the probe"
    worst = float(exact_rows.scores(a.double().numpy(), b, got.double().numpy(), "float32", 3, protocol.FOLD).max())
    if not worst <= 1.0:
        return f"the compiled kernel's error is {worst:.3g}x the fold's allowance"
    return None


def in_use(kernel: str | None = None) -> bool:
    """Whether prepare() compiled a CPU kernel ("micro" or "sgemm"; None: either) and kept it."""
    names = ("micro", "fold") if kernel is None else ("fold" if kernel == "sgemm" else kernel,)
    return any(isinstance(_KERNEL.get(k), tuple) for k in names)


def kernel_name() -> str:
    """What a CPU fold.product runs on after prepare(): 'sgemm', 'micro' or 'torch'. Where both kernels are kept,
    prepare()'s measured choice (calibration())."""
    if in_use("sgemm") and in_use("micro"):
        got = _KERNEL.get("choice")
        return got[0] if isinstance(got, tuple) else "sgemm"
    return "sgemm" if in_use("sgemm") else "micro" if in_use("micro") else "torch"


def calibration() -> dict[str, float] | None:
    """prepare()'s calibrate() timings (CPU seconds a kernel), where it chose between both kernels; else None."""
    got = _KERNEL.get("choice")
    return dict(got[1]) if isinstance(got, tuple) else None


def packed_bytes(n: int, inner: int) -> list[int]:
    """The microkernel's packed A and B (_micro_product: one pair, kept from product to product) for an n x inner
    times inner x n product, in bytes, where prepare() chose the microkernel; else none. node.host_bytes counts them,
    so that a node's reserve (hostmem.reserve, before the challenge) holds them touched: allocated fresh by the first
    product, 256 MiB at n = 4096, K = 8192 cost that product about 0.6 s of system time on this VM (page faults and
    zeroing of memory it had not touched: docs/proofs.md)."""
    if kernel_name() != "micro" or not n or not inner:
        return []
    lib = _KERNEL["micro"][0]  # type: ignore[index]
    mr, nr = lib.microfold_mr(), lib.microfold_nr()
    return [-(-n // mr) * inner * mr * 4, -(-n // nr) * inner * nr * 4]


#: product()'s `rows_done`: called with (first, stop) once rows first..stop - 1 of C hold their final values.
RowsDone = Callable[[int, int], None]


class _RowBlocks:
    """Which blocks of rows of C are final: each block of rows is written by `parts` work items (tiles or column
    ranges) on any worker; the worker that finishes a block's last part calls rows_done(first, stop) for it, while
    the rows are still in its cache. The lock orders the other workers' writes before that call."""

    def __init__(self, blocks: dict[int, tuple[int, int]], rows_done: RowsDone | None) -> None:
        self._left = {first: parts for first, (_, parts) in blocks.items()}
        self._stop = {first: stop for first, (stop, _) in blocks.items()}
        self._rows_done = rows_done
        self._lock = threading.Lock()

    def __call__(self, first: int) -> None:
        if self._rows_done is None:
            return
        with self._lock:
            self._left[first] -= 1
            last = self._left[first] == 0
        if last:
            self._rows_done(first, self._stop[first])


def _block_rows(n: int, most: int, mr: int, workers: int) -> int:
    """Rows a block, at most about `most`, a multiple of `mr`, such that the blocks split evenly across `workers`:
    at n = 4096 blocks of 384 made 11, one worker's 6 to the other's 5 (a tenth of the window idle)."""
    blocks = -(-n // max(mr, most))
    blocks = -(-blocks // workers) * workers
    per_block = -(-n // blocks)
    return -(-per_block // mr) * mr


def _micro_product(lib: Any, a: torch.Tensor, b: torch.Tensor, run: int, group: int, blocks: dict[str, int],
                   workers: int, out: torch.Tensor | None = None,
                   rows_done: RowsDone | None = None) -> torch.Tensor:  # fmt: skip
    """The folded product by the microkernel: A and B packed once (their panels and slivers split across `workers`,
    into buffers kept from product to product: _PACKED), then work items of about blocks["mc"] rows by a range of
    columns (at least 8 items a worker: a worker slowed by other load leaves its share to the others) across
    `workers` threads (ctypes releases the GIL), each with its own scratch (a tile's float32 partial and float64
    accumulator). `out` and `rows_done` as product()'s."""
    a, b = a.contiguous(), b.contiguous()
    n, inner, m = a.shape[0], a.shape[1], b.shape[1]
    out = torch.empty(n, m) if out is None else out
    if not n or not m or not inner:
        out.zero_()  # an empty sum (K = 0) is 0
        if rows_done is not None and n:
            rows_done(0, n)
        return out
    mr, nr = lib.microfold_mr(), lib.microfold_nr()
    panels, slivers = -(-n // mr), -(-m // nr)
    try:
        apacked, bpacked = _PACKED.get_nowait()
    except queue.Empty:
        apacked, bpacked = torch.empty(0), torch.empty(0)
    if apacked.numel() < panels * inner * mr or bpacked.numel() < slivers * inner * nr:
        apacked, bpacked = hostmem.empty((panels * inner * mr,)), hostmem.empty((slivers * inner * nr,))
    try:
        _micro_items(lib, a, b, out, apacked, bpacked, run, group, blocks, workers, rows_done)
    finally:
        _PACKED.put((apacked, bpacked))
    return out


def _micro_items(lib: Any, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, apacked: torch.Tensor,
                 bpacked: torch.Tensor, run: int, group: int, blocks: dict[str, int], workers: int,
                 rows_done: RowsDone | None = None) -> None:  # fmt: skip
    """_micro_product's packing and work items."""
    n, inner, m = a.shape[0], a.shape[1], b.shape[1]
    mr, nr = lib.microfold_mr(), lib.microfold_nr()
    panels, slivers = -(-n // mr), -(-m // nr)
    mc = _block_rows(n, blocks["mc"], mr, workers)
    ncr = -(-blocks["nc"] // nr) * nr
    row_blocks = -(-n // mc)
    col_ranges = max(1, min(-(-slivers * nr // ncr), -(-8 * workers // row_blocks)))
    width = -(-slivers // col_ranges) * nr
    finished = _RowBlocks({r0: (min(n, r0 + mc), len(range(0, m, width))) for r0 in range(0, n, mc)}, rows_done)
    scratch: queue.SimpleQueue[tuple[torch.Tensor, torch.Tensor]] = queue.SimpleQueue()

    def item(r0: int, c0: int) -> None:
        try:
            part, acc = scratch.get_nowait()
        except queue.Empty:
            part, acc = torch.empty(mc * ncr), torch.empty(mc * ncr, dtype=torch.float64)
        try:
            got = lib.microfold_block(apacked.data_ptr() + 4 * r0 * inner, bpacked.data_ptr(),
                                      out.data_ptr() + 4 * r0 * m, m, min(mc, n - r0), c0, min(m, c0 + width), inner,
                                      run, group, ncr, blocks["kc"], part.data_ptr(), acc.data_ptr())  # fmt: skip
            if got:
                raise ValueError(f"the microkernel refused rows {r0}.. columns {c0}.. of {n} x {inner} x {m}")
        finally:
            scratch.put((part, acc))
        finished(r0)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pa, pb = -(-panels // workers), -(-slivers // workers)
        packing = [pool.submit(lib.microfold_pack_a, a.data_ptr(), a.stride(0), inner, n, p, min(panels, p + pa),
                               apacked.data_ptr()) for p in range(0, panels, pa)]  # fmt: skip
        packing += [pool.submit(lib.microfold_pack_b, b.data_ptr(), b.stride(0), inner, m, s, min(slivers, s + pb),
                                bpacked.data_ptr()) for s in range(0, slivers, pb)]  # fmt: skip
        for f in packing:
            f.result()
        for f in [pool.submit(item, r0, c0) for r0 in range(0, n, mc) for c0 in range(0, m, width)]:
            f.result()


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


def product(a: torch.Tensor, b: torch.Tensor, fold: int, group: int = GROUP, kernel: bool | str = True,
            out: torch.Tensor | None = None, rows_done: RowsDone | None = None) -> torch.Tensor:  # fmt: skip
    """The folded float32 product of a (n x K) and b (K x n) on their device (module docstring); K a multiple of
    `fold`. On a CPU, across one worker per torch thread: with `kernel` True, the first compiled kernel prepare()
    kept (the sgemm kernel's tiles of TILE, else the microkernel); "micro" or "sgemm" names one (ValueError where it
    is not in use); False: row panels of PANEL_ROWS by torch ops. Elsewhere one panel.

    `out`: where C is written (a contiguous n x n float32 tensor on the operands' device); default a new one, on a
    CPU in huge pages (hostmem: a fresh 64 MiB C cost 16,384 page faults a product at n = 4096). `rows_done`: called
    with (first, stop) from the worker that finished rows first..stop - 1 of C, once each row, while they are in its
    cache (a node hashes them there: node.multiply); on a device, once for all rows after the product."""
    if a.dtype != torch.float32 or b.dtype != torch.float32:
        raise ValueError(f"a folded product is of float32 operands, not {a.dtype} and {b.dtype}")
    if a.shape[1] != b.shape[0] or a.shape[1] % fold:
        raise ValueError(f"inner dimension {a.shape[1]} (B: {b.shape[0]}) is not a multiple of the fold {fold}")
    n, m = a.shape[0], b.shape[1]
    if out is None:
        out = hostmem.empty((n, m)) if a.device.type == "cpu" else torch.empty(n, m, device=a.device)
    elif out.shape != (n, m) or out.dtype != torch.float32 or out.device != a.device or not out.is_contiguous():
        raise ValueError(f"out must be a contiguous {n} x {m} float32 tensor on {a.device}")
    if not n or not m:  # no element: the kernels' blocking divided by zero rows or columns
        return out
    if a.device.type != "cpu":
        _panel(a, b, out, slice(0, n), fold, group)
        if rows_done is not None:
            rows_done(0, n)
        return out
    if kernel is True and "fold" not in _KERNEL:
        prepare()
    if kernel in ("micro", "sgemm"):
        why = prepare_micro() if kernel == "micro" else prepare_sgemm()
        if why:
            raise ValueError(f"the {kernel} fold kernel is not in use: {why}")
    if kernel == "micro" or (kernel is True and kernel_name() == "micro"):
        lib = _KERNEL["micro"][0]  # type: ignore[index]
        with _one_thread_per_worker() as workers:
            return _micro_product(lib, a, b, fold, group, MICRO_BLOCKS, workers, out, rows_done)
    if kernel in (True, "sgemm") and in_use("sgemm"):
        a, b = a.contiguous(), b.contiguous()
        blocks = {i: (min(n, i + TILE[0]), len(range(0, m, TILE[1]))) for i in range(0, n, TILE[0])}
        work = [(_tile, a, b, out, slice(i, stop), slice(j, min(m, j + TILE[1])), fold, group)
                for i, (stop, _) in blocks.items() for j in range(0, m, TILE[1])]  # fmt: skip
    else:
        blocks = {i: (min(n, i + PANEL_ROWS), 1) for i in range(0, n, PANEL_ROWS)}
        work = [(_panel, a, b, out, slice(i, stop), fold, group) for i, (stop, _) in blocks.items()]
    finished = _RowBlocks(blocks, rows_done)

    def run(f: Callable[..., None], *args: Any) -> None:
        f(*args)
        finished(args[3].start)  # the rows' slice

    with (_one_thread_per_worker() as workers,
          concurrent.futures.ThreadPoolExecutor(workers, initializer=_single_threaded) as pool):  # fmt: skip
        for f in [pool.submit(run, *w) for w in work]:
            f.result()
    return out
