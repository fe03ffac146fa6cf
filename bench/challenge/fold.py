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
"""

from __future__ import annotations

import concurrent.futures
import contextlib
from collections.abc import Iterator

import torch

#: Runs added in float32 before each exact fold into float64 (see the module docstring's error budget).
GROUP = 8
#: Rows of C one CPU worker computes at a time: its float64 accumulator (PANEL_ROWS x n x 8 bytes: 1 MiB at n = 2048)
#: and float32 partial stay in the core's L2 cache across all K / L runs; a whole n x n float64 fold per run streams
#: 20 bytes an element through memory for 2 L FLOPs and ran at 0.14 of MAMF at n = 2048 (tests/perf/fold_ratio.py).
PANEL_ROWS = 64


@contextlib.contextmanager
def _one_thread_per_worker() -> Iterator[int]:
    """torch's intra-op threads set to 1 while `threads` Python workers (GIL released in each op) take a row panel
    each, restored after. Yields the worker count (torch's threads before)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)


def _panel(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, rows: slice, fold: int, group: int) -> None:
    """out[rows] = the folded product of a[rows] and b (module docstring)."""
    a_runs, b_runs = a[rows].split(fold, dim=1), b.split(fold)
    acc = torch.zeros(a_runs[0].shape[0], b.shape[1], dtype=torch.float64, device=a.device)
    part = torch.empty(a_runs[0].shape[0], b.shape[1], dtype=torch.float32, device=a.device)
    for j, (a_j, b_j) in enumerate(zip(a_runs, b_runs, strict=True)):
        if j % group == 0:
            torch.mm(a_j, b_j, out=part)
        else:
            part.addmm_(a_j, b_j)
        if j % group == group - 1 or j == len(b_runs) - 1:
            acc += part  # float32 to float64: exact, then one float64 rounding
    out[rows] = acc  # the one rounding to float32


def product(a: torch.Tensor, b: torch.Tensor, fold: int, group: int = GROUP) -> torch.Tensor:
    """The folded float32 product of a (n x K) and b (K x n) on their device (module docstring); K a multiple of
    `fold`. On a CPU, row panels of PANEL_ROWS across one worker per torch thread; elsewhere one panel."""
    if a.dtype != torch.float32 or b.dtype != torch.float32:
        raise ValueError(f"a folded product is of float32 operands, not {a.dtype} and {b.dtype}")
    if a.shape[1] != b.shape[0] or a.shape[1] % fold:
        raise ValueError(f"inner dimension {a.shape[1]} (B: {b.shape[0]}) is not a multiple of the fold {fold}")
    n = a.shape[0]
    out = torch.empty(n, b.shape[1], dtype=torch.float32, device=a.device)
    if a.device.type != "cpu":
        _panel(a, b, out, slice(0, n), fold, group)
        return out
    with _one_thread_per_worker() as workers, concurrent.futures.ThreadPoolExecutor(workers) as pool:
        panels = [slice(i, min(n, i + PANEL_ROWS)) for i in range(0, n, PANEL_ROWS)]
        for f in [pool.submit(_panel, a, b, out, rows, fold, group) for rows in panels]:
            f.result()
    return out
