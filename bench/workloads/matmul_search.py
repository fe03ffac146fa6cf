"""Maximum achievable matmul FLOPS (MAMF) and maximum sustained matmul FLOPS (MSMF), after mamf-finder.

MAMF: search shapes for the fastest, then the median TFLOPS of that shape under a full measurement, taking the best
of the available implementations (torch, and numpy's BLAS on CPUs). MSMF: the MAMF shape run back to back for a
window; total FLOPs / total seconds of the window, with the throughput per tenth of the window and telemetry.

Every shape tried is its own Measurement (details.search.role = 'candidate'), yielded as soon as it is measured, so
an interrupted search keeps what it finished. All figures come from raw samples; nothing here is estimated.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bench.hardware.devices import DeviceFacts
from bench.hardware.peaks import Peak
from bench.measure.sampling import Policy
from bench.measure.stats import MeasurementWarning
from bench.measure.telemetry import Reader
from bench.precision import get
from bench.report.model import Measurement
from bench.workloads import matmul as mm

#: Square sizes the CPU auto search considers: from L2-resident operands (256^2 float32 = 256 KiB) through the L3
#: range (2048^2 = 16 MiB) to memory-bound sizes, as far as memory and the time budget allow.
CPU_SIZES = (256, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192)
#: GPU output tile (rows x columns) that cuBLAS/CUTLASS kernels commonly use on Ampere and Hopper: shapes whose tile
#: count is a whole multiple of the SM count leave no SM idle in the last wave.
GPU_TILE = (128, 256)
GPU_K = (4096, 8192, 16384)
GPU_MIN, GPU_MAX = 2048, 16384
#: Shares of the search budget: coarse sweep, re-measuring the best few, the final per-backend measurement.
COARSE_SHARE, REFINE_SHARE = 0.5, 0.25
REFINE_TOP = 3
#: Shapes per backend measured in full at the end; the MAMF is the fastest of them.
FINAL_PER_BACKEND = 2
#: Default MSMF window per device kind, seconds.
WINDOW_S = {"cpu": 2.0, "cuda": 10.0}
#: Default search budget per device x precision, seconds (MSMF window not included).
BUDGET_S = {"cpu": 30.0, "cuda": 300.0}
MEMORY_SHARE = 0.5
#: A precision measured below this fraction of the device's float32 MAMF is emulated (not capacity).
EMULATED_RATIO = 0.01
MSMF_BUCKETS = 10

Shape = tuple[int, int, int]


def parse_range(text: str) -> list[int]:
    """'start:stop:step' (stop included), 'start:stop' (step = start) or a single 'N'; ValueError when malformed."""
    parts = text.split(":")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) == 1 and nums[0] >= 1:
        return nums
    if len(nums) in (2, 3):
        start, stop = nums[0], nums[1]
        step = nums[2] if len(nums) == 3 else start
        if start >= 1 and stop >= start and step >= 1:
            return list(range(start, stop + 1, step))
    raise ValueError(f"{text!r} is not a range; expected start:stop:step with 1 <= start <= stop, e.g. 1024:8192:1024")


def grid_shapes(ms: list[int], ns: list[int], ks: list[int]) -> list[Shape]:
    return sorted(itertools.product(ms, ns, ks), key=lambda s: (mm.flops(*s), s))


def cpu_candidates(itemsize: int, memory_bytes: int) -> list[Shape]:
    return [(n, n, n) for n in CPU_SIZES if 3 * n * n * itemsize <= memory_bytes]


def gpu_candidates(sm_count: int, itemsize: int, memory_bytes: int, max_waves: int = 8) -> list[Shape]:
    """(M, N, K) whose 128x256 output tiles fill whole waves of `sm_count` SMs, near-square, within memory."""
    tm, tn = GPU_TILE
    shapes: set[Shape] = set()
    for waves in range(1, max_waves + 1):
        tiles = waves * sm_count
        for a in range(1, tiles + 1):
            if tiles % a:
                continue
            m, n = tm * a, tn * (tiles // a)
            if GPU_MIN <= m <= GPU_MAX and GPU_MIN <= n <= GPU_MAX and max(m, n) <= 2 * min(m, n):
                shapes.update((m, n, k) for k in GPU_K)
    shapes.update((s, s, s) for s in (4096, 8192, 12288, 16384))  # the square sizes everyone quotes, for comparison
    fits = [s for s in shapes if (s[0] * s[2] + s[2] * s[1] + s[0] * s[1]) * itemsize <= memory_bytes]
    return sorted(fits, key=lambda s: (mm.flops(*s), s))


@dataclass
class SearchConfig:
    mode: str  # 'auto' or 'grid'
    budget_s: float
    window_s: float
    grid: list[Shape] = field(default_factory=list)
    final_budget_s: float | None = None


def _policy(seconds: float) -> Policy:
    return Policy(budget_s=max(seconds, 1e-3), min_iterations=3, max_warmup_s=max(seconds, 1e-3), max_warmup_iterations=20)


def _tag(m: Measurement, role: str, mode: str, **extra: object) -> Measurement:
    m.details["search"] = {"role": role, "mode": mode, **extra}
    return m


def _spec_of(m: Measurement) -> mm.MatmulSpec:
    return mm.MatmulSpec(m.spec["m"], m.spec["n"], m.spec["k"], m.spec["precision"])


def _rate(m: Measurement) -> float:
    return m.summary["tflops_median"] if m.status == "ok" and m.summary else 0.0


def search(
    device: DeviceFacts,
    precision: str,
    config: SearchConfig,
    candidates: list[Shape],
    *,
    peak: Peak | None = None,
    float32_tflops: float | None = None,
    telemetry: Reader | None = None,
    clock: Callable[[], float] = time.monotonic,
    measure: Callable[..., Measurement] = mm.run,
) -> Iterator[Measurement]:
    """Yield every measurement of the search for one device x precision: candidates, the final per-backend runs (one
    marked mamf), and the MSMF window. `measure` is matmul.run; tests pass a wrapper with a fake timer."""
    start = clock()
    deadline = start + config.budget_s
    backends = mm.backends_for(device, precision)
    pairs = [(shape, b) for shape in candidates for b in backends]
    coarse_each = config.budget_s * COARSE_SHARE / max(len(pairs), 1) / 2  # half timed, half warm-up
    tried: list[Measurement] = []
    best_rate = 0.0
    for shape, backend in pairs:
        if clock() >= deadline:
            break
        spec = mm.MatmulSpec(*shape, precision)
        if best_rate > 0:
            # at the best rate so far, would this shape's minimum iterations overrun its share three times over?
            seconds_per_iteration = spec.flops / (best_rate * 1e12)
            if seconds_per_iteration * 8 > max(coarse_each * 6, deadline - clock()):
                break
        m = measure(spec, device, _policy(coarse_each), peak=peak, backend=backend)
        slow = float32_tflops and precision != "float32" and 0 < _rate(m) < EMULATED_RATIO * float32_tflops
        if m.status == "ok" and (m.emulated or slow):
            # An emulated precision is not searched further: its figure is not capacity. This one measurement is
            # what the device does at that precision, reported as its (emulated) result.
            if not m.emulated:
                m.emulated = True
                ratio = _rate(m) / float32_tflops
                m.warnings.append(
                    MeasurementWarning("emulated", f"{precision} runs at {ratio:.2%} of float32's MAMF on this device",
                                       "excluded from capacity").to_dict()
                )
            yield _tag(m, "final", config.mode, mamf=True, shapes_tried=1)
            return
        yield _tag(m, "candidate", config.mode, phase="coarse")
        tried.append(m)
        best_rate = max(best_rate, _rate(m))

    ranked = sorted((m for m in tried if m.status == "ok"), key=_rate, reverse=True)
    if not ranked:
        return
    # Re-measure the best few with more time: coarse timings are short and a noisy one must not pick the shape.
    refine_each = config.budget_s * REFINE_SHARE / REFINE_TOP / 2
    refined = []
    for m in ranked[:REFINE_TOP]:
        if clock() >= deadline:
            break
        r = measure(_spec_of(m), device, _policy(refine_each), peak=peak, backend=m.details["backend"])
        yield _tag(r, "candidate", config.mode, phase="refine")
        refined.append(r)

    # The final figure: each backend's FINAL_PER_BACKEND best shapes measured in full; the fastest is the MAMF. Each is
    # yielded (saved) as soon as it is measured; the winner's mamf flag is set afterwards, and saved with the next
    # measurement or when the run closes the report.
    picks = []
    for backend in backends:
        scores: dict[Shape, float] = {}
        for m in refined + ranked:
            if m.details["backend"] == backend and m.status == "ok":
                shape = (m.spec["m"], m.spec["n"], m.spec["k"])
                scores[shape] = max(scores.get(shape, 0.0), _rate(m))
        picks += [(shape, backend) for shape in sorted(scores, key=scores.get, reverse=True)[:FINAL_PER_BACKEND]]
    if not picks:
        return
    final_each = config.final_budget_s or max(config.budget_s * (1 - COARSE_SHARE - REFINE_SHARE) / len(picks), 0.5)
    finals = []
    for shape, backend in picks:
        f = measure(mm.MatmulSpec(*shape, precision), device, _policy(final_each), peak=peak, backend=backend)
        finals.append(f)
        yield _tag(f, "final", config.mode, mamf=False, shapes_tried=len(tried) + len(refined))
    winner = max(finals, key=_rate)
    winner.details["search"]["mamf"] = True
    best_shape = (winner.spec["m"], winner.spec["n"], winner.spec["k"])
    if winner.status != "ok" or config.window_s <= 0:
        return
    window = Policy(budget_s=config.window_s, min_iterations=1, max_iterations=10**7, max_warmup_s=0.5)
    s = measure(mm.MatmulSpec(*best_shape, precision), device, window, peak=peak, backend=winner.details["backend"],
                telemetry=telemetry)  # fmt: skip
    if s.status == "ok":
        s.details["msmf"] = msmf(s.samples_s, s.flops_per_iteration)
    yield _tag(s, "msmf", config.mode)


def msmf(samples_s: list[float], flops_per_iteration: float, buckets: int = MSMF_BUCKETS) -> dict[str, object]:
    """Sustained throughput of back-to-back iterations: total FLOPs / total seconds, and the same per tenth of the
    window (each iteration counted in the bucket where it ended)."""
    total = sum(samples_s)
    per: dict[int, list[float]] = {}
    elapsed = 0.0
    for s in samples_s:
        elapsed += s
        i = min(int(elapsed / total * buckets - 1e-9), buckets - 1)
        seconds, count, _ = per.get(i, [0.0, 0, 0.0])
        per[i] = [seconds + s, count + 1, elapsed]
    series = [{"t_s": end, "tflops": n * flops_per_iteration / sec / 1e12} for sec, n, end in (per[i] for i in sorted(per))]
    return {
        "tflops": len(samples_s) * flops_per_iteration / total / 1e12,
        "window_s": total,
        "iterations": len(samples_s),
        "min_bucket_tflops": min(p["tflops"] for p in series),
        "series": series,
    }


def candidates_for(device: DeviceFacts, precision: str, config: SearchConfig, free_bytes: int, sm_count: int) -> list[Shape]:
    if config.mode == "grid":
        return sorted(config.grid, key=lambda s: (mm.flops(*s), s))
    itemsize = get(precision).itemsize
    budget = int(free_bytes * MEMORY_SHARE)
    if device.kind == "cuda":
        return gpu_candidates(sm_count, itemsize, budget)
    return cpu_candidates(itemsize, budget)


