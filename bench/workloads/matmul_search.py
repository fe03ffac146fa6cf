"""Maximum achievable matmul FLOPS (MAMF) and maximum sustained matmul FLOPS (MSMF), after mamf-finder.

MAMF: search shapes for the fastest, then the median TFLOPS of that shape under a full measurement, taking the best
of the available implementations (torch, and numpy's BLAS on CPUs). MSMF: the MAMF shape run back to back for a
window, timed at the boundaries between iterations (every launch gap counted, no L2 flush): total FLOPs / total
seconds of the window, with the throughput per tenth of the window and telemetry.

On GPUs the search first holds a large product for SETTLE_S seconds (clocks and temperature settle over tens of
seconds; a search started cold would favour whichever shapes ran first), then sweeps candidates from three sources:
shapes whose output tiles fill whole waves of SMs, the best shapes published for Hopper-class GPUs (mamf-finder's
tables, which the wave heuristic misses: Hopper's cuBLAS kernels are persistent with varying tiles), and an even
spread over mamf-finder's M, N, K range.

Every shape tried is its own Measurement (details.search.role = 'candidate'), yielded as soon as it is measured, so
an interrupted search keeps what it finished. All figures come from raw samples; nothing here is estimated.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from bench import figures
from bench.hardware.devices import DeviceFacts
from bench.hardware.peaks import Peak
from bench.measure import stats
from bench.measure.sampling import Policy, settled
from bench.measure.stats import MeasurementWarning
from bench.measure.telemetry import Reader
from bench.model.reports import Measurement
from bench.precision import get
from bench.workloads import matmul as mm

#: Square sizes the CPU auto search considers: from L2-resident operands (256^2 float32 = 256 KiB) through the L3
#: range (2048^2 = 16 MiB) to memory-bound sizes, as far as memory and the time budget allow.
CPU_SIZES = (256, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192)
#: GPU output tile (rows x columns) that cuBLAS/CUTLASS kernels commonly use on Ampere and Hopper: shapes whose tile
#: count is a whole multiple of the SM count leave no SM idle in the last wave.
GPU_TILE = (128, 256)
GPU_K = (2048, 4096, 8192, 16384)
GPU_MIN, GPU_MAX = 1024, 20480
#: Wave-filling shapes may be this elongated (H100's best published shape, 6144x17920, is about 1:3).
GPU_MAX_ASPECT = 4
#: Best shapes published with mamf-finder (Stas Bekman, ml-engineering): H100 SXM 2048x2048x13312 (794.5 TFLOPS bf16)
#: and 6144x17920x2816 (792.1); GH200 1024x15360x4096 (828.6).
PUBLISHED_BEST = ((2048, 2048, 13312), (6144, 17920, 2816), (1024, 15360, 4096))
#: Step of the even spread over mamf-finder's range (M, N, K in 1024..20480), and how many shapes it contributes.
SPREAD_STEP, SPREAD_COUNT = 256, 48
#: Most GPU candidates swept (the coarse share of the budget is split among them).
MAX_GPU_CANDIDATES = 160
#: Seconds a large product runs before a search, per device kind, so clocks and temperature settle first.
SETTLE_S = {"cpu": 0.0, "cuda": 20.0}
#: Shares of the search budget: coarse sweep, re-measuring the best few, the final per-backend measurement.
COARSE_SHARE, REFINE_SHARE = 0.5, 0.25
REFINE_TOP = 3
#: Shapes per backend measured in full at the end; the MAMF is the fastest of them.
FINAL_PER_BACKEND = 2
#: Default MSMF window per device kind, seconds.
WINDOW_S = {"cpu": 2.0, "cuda": 10.0}
#: Default search budget per device x precision, seconds (MSMF window not included, the final measurements included).
BUDGET_S = {"cpu": 30.0, "cuda": 300.0}
#: Shortest timed budget of a final measurement, seconds: the MAMF is never taken from a shorter one.
FINAL_MIN_S = 0.5
#: Most timed iterations of a final: enough to fill its share at the fastest shapes (int8 at 256^3 runs 0.05 ms an
#: iteration on the 2-core VM: 5 s; a GPU ~1 ms), where the sampler's default 10,000 ended int8's search 4 s early.
FINAL_MAX_ITERATIONS = 10**5
#: Most timed iterations of a coarse or refine measurement (the sampler's default is 10,000): enough for a median and
#: an IQR that rank shapes. A median of 1,000 samples at the jitter seen is within ~0.1-0.6% (bootstrap standard
#: error; the 21 of 178 coarse candidates of the quiet node runs of 2026-12-07 that timed more than 1,000, CPU; realnode's
#: H100 model, 0.5% i.i.d. jitter: ~0.02%), under the gaps between the shapes the sweep ranks, and the best few are
#: re-measured and then measured in full as finals, which choose the MAMF. At 10,000 the coarse sweep and the refines
#: were 68% of a real 8-H100 node report's 30 M samples (160 shapes x up to 10,000 in 0.47 s slots; realnode,
#: tests/report/fleet.py). A slot that ends at the cap leaves its time to the later phases (the plan counts the cap:
#: measurement_s), and the finals fill what is left, so the search still ends at its budget unless its finals reach
#: FINAL_MAX_ITERATIONS (realnode's H100 model, one GPU: 3.76 -> 2.01 M samples, the MAMF of each precision the same
#: to 0.1 TFLOPS, the searches 135-300 s of their 300 s budget against 180-300 s before).
CANDIDATE_MAX_ITERATIONS = 1_000
MEMORY_SHARE = 0.5
#: A precision measured below this fraction of float32's rate is emulated (not capacity): float32's rate at the same
#: shape when float32's search measured it, else float32's MAMF. Like with like: the first coarse shape is the smallest
#: (256^3 on a CPU), and on a loaded machine each of its ~0.3 ms iterations can wait a whole scheduler slice (~10 ms)
#: for a descheduled BLAS thread: 1.4-3 GFLOPS measured there (float32 too) against a MAMF of ~100-200 at 4096^3.
EMULATED_RATIO = 0.01
#: Coarse measurements that must all fall below EMULATED_RATIO, none faster, before a precision is called emulated:
#: one short measurement can stall whole; a truly emulated precision (100x slower everywhere) is slow in every one.
#: The second is the sweep's next candidate, or a re-measure of the first when the sweep stops before one.
EMULATED_CONFIRM = 2
MSMF_BUCKETS = figures.MSMF_BUCKETS

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


def wave_shapes(sm_count: int, max_waves: int = 8) -> set[Shape]:
    """(M, N, K) whose 128x256 output tiles fill whole waves of `sm_count` SMs, at most GPU_MAX_ASPECT elongated."""
    tm, tn = GPU_TILE
    shapes: set[Shape] = set()
    for waves in range(1, max_waves + 1):
        tiles = waves * sm_count
        for a in range(1, tiles + 1):
            if tiles % a:
                continue
            m, n = tm * a, tn * (tiles // a)
            if GPU_MIN <= m <= GPU_MAX and GPU_MIN <= n <= GPU_MAX and max(m, n) <= GPU_MAX_ASPECT * min(m, n):
                shapes.update((m, n, k) for k in GPU_K)
    return shapes


def spread_shapes(count: int = SPREAD_COUNT) -> set[Shape]:
    """`count` shapes spread evenly over M, N, K in GPU_MIN..GPU_MAX (multiples of SPREAD_STEP): the additive
    recurrence with the plastic number's powers (a low-discrepancy sequence), so the same shapes on every run."""
    g = 1.22074408460575947536  # the plastic number: x^4 = x + 1 in three dimensions
    alphas = (1 / g, 1 / g**2, 1 / g**3)
    steps = (GPU_MAX - GPU_MIN) // SPREAD_STEP + 1
    out: set[Shape] = set()
    for i in range(1, count + 1):
        m, n, k = (GPU_MIN + SPREAD_STEP * int(((0.5 + a * i) % 1.0) * steps) for a in alphas)
        out.add((m, n, k))
    return out


def gpu_candidates(sm_count: int, itemsize: int, memory_bytes: int, max_waves: int = 8) -> list[Shape]:
    """Wave-filling shapes, the published best shapes, an even spread over the range and the square sizes everyone
    quotes, within memory; at most MAX_GPU_CANDIDATES, thinned evenly over the wave-filling ones when there are more."""
    fixed = set(PUBLISHED_BEST) | spread_shapes() | {(s, s, s) for s in (2048, 4096, 8192, 12288, 16384)}
    waves = sorted(wave_shapes(sm_count, max_waves) - fixed, key=lambda s: (mm.flops(*s), s))
    room = max(MAX_GPU_CANDIDATES - len(fixed), 0)
    if len(waves) > room:
        waves = [waves[i * len(waves) // room] for i in range(room)] if room else []
    shapes = fixed | set(waves)
    fits = [s for s in shapes if (s[0] * s[2] + s[2] * s[1] + s[0] * s[1]) * itemsize <= memory_bytes]
    return sorted(fits, key=lambda s: (mm.flops(*s), s))


@dataclass
class SearchConfig:
    mode: str  # 'auto' or 'grid'
    budget_s: float
    window_s: float
    grid: list[Shape] = field(default_factory=list)
    final_budget_s: float | None = None
    #: seconds a large product runs before the sweep (clocks settle); not part of the budget
    settle_s: float = 0.0
    #: fp8 only: measure with torch._scaled_mm's fast accumulation
    fast_accum: bool = False


def _policy(seconds: float) -> Policy:
    return Policy(
        budget_s=max(seconds, 1e-3), min_iterations=3, max_warmup_s=max(seconds, 1e-3), max_warmup_iterations=20
    )


def _candidate_policy(seconds: float) -> Policy:
    """_policy for a coarse or refine measurement: at most CANDIDATE_MAX_ITERATIONS timed iterations."""
    return dataclasses.replace(_policy(seconds), max_iterations=CANDIDATE_MAX_ITERATIONS)


def _tag(m: Measurement, role: str, mode: str, **extra: object) -> Measurement:
    m.details["search"] = {"role": role, "mode": mode, **{k: v for k, v in extra.items() if v is not None}}
    return m


def _spec_of(m: Measurement) -> mm.MatmulSpec:
    return mm.MatmulSpec.from_dict(m.spec)


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
    float32_rates: Mapping[Shape, float] | None = None,
    telemetry: Reader | None = None,
    clock: Callable[[], float] = time.monotonic,
    measure: Callable[..., Measurement] = mm.run,
) -> Iterator[Measurement]:
    """Yield every measurement of the search for one device x precision: candidates, the final per-backend runs (one
    marked mamf), and the MSMF window. `measure` is matmul.run; tests pass a wrapper with a fake timer.

    `float32_tflops` (float32's MAMF) and `float32_rates` (float32's best coarse TFLOPS per shape, on this device in
    this run) are what a precision is compared with to tell whether it is emulated (EMULATED_RATIO, EMULATED_CONFIRM)."""
    base = mm.MatmulSpec(1, 1, 1, precision, config.fast_accum)
    settled_at = _settle(device, base, config, candidates, measure) if config.settle_s > 0 and candidates else None
    start = clock()
    deadline = start + config.budget_s
    backends = mm.backends_for(device, precision)
    pairs = [(shape, b) for shape in candidates for b in backends]
    coarse_each = config.budget_s * COARSE_SHARE / max(len(pairs), 1) / 2  # half timed, half warm-up
    planned_finals = min(FINAL_PER_BACKEND, len(candidates)) * len(backends)
    final_each = _final_each(config, planned_finals)
    ledger = _Ledger(clock, measure)
    measure = ledger.measure
    tried: list[Measurement] = []
    best_rate = 0.0
    reference = _emulation_reference(precision, float32_tflops, float32_rates)
    slow: list[Measurement] = []  # the coarse measurements so far, while every one is below EMULATED_RATIO
    judging = reference is not None
    for shape, backend in pairs:
        if clock() >= deadline:
            break
        spec = base.with_shape(*shape)
        if best_rate > 0:
            # at the best rate so far: would this shape's minimum iterations overrun its share three times over, or
            # would its coarse measurement leave too little of the budget for the finals it could then be one of?
            seconds_per_iteration = spec.flops / (best_rate * 1e12)
            if seconds_per_iteration * 8 > max(coarse_each * 6, deadline - clock()):
                break
            reserve = _finals_s(tried, backends, final_each, ledger, extra=(shape, backend, seconds_per_iteration))
            seconds = measurement_s(coarse_each, seconds_per_iteration, None, CANDIDATE_MAX_ITERATIONS)
            seconds += ledger.overhead(shape, backend)
            if clock() + seconds + reserve > deadline:
                break
        m = measure(spec, device, _candidate_policy(coarse_each), peak=peak, backend=backend)
        if m.status == "ok" and m.emulated:
            # emulated by what the device supports (not by timing): not searched further, its figure is not capacity
            yield _tag(m, "final", config.mode, mamf=True, shapes_tried=1, settled=settled_at)
            return
        if judging and m.status == "ok" and reference is not None:
            judging = _below(m, reference)
            slow += [m] if judging else []
            if len(slow) >= EMULATED_CONFIRM:
                yield _emulated(m, precision, reference, config.mode, len(slow), settled_at)
                return
        yield _tag(m, "candidate", config.mode, phase="coarse", settled=settled_at)
        tried.append(m)
        best_rate = max(best_rate, _rate(m))
    if judging and slow and reference is not None:
        # the sweep stopped (budget, or the next shape too slow at this rate) before a second look: re-measure
        first = slow[-1]
        m = measure(_spec_of(first), device, _candidate_policy(coarse_each), peak=peak,
                    backend=first.details["backend"])  # fmt: skip
        if m.status == "ok" and _below(m, reference):
            yield _emulated(m, precision, reference, config.mode, len(slow) + 1, settled_at)
            return
        yield _tag(m, "candidate", config.mode, phase="coarse", settled=settled_at)
        tried.append(m)

    ranked = sorted((m for m in tried if m.status == "ok"), key=_rate, reverse=True)
    if not ranked:
        return
    # Re-measure the best few with more time: coarse timings are short and a noisy one must not pick the shape. Each
    # only while the finals still fit in the budget after it.
    refine_each = config.budget_s * REFINE_SHARE / REFINE_TOP / 2
    refined: list[Measurement] = []
    for m in ranked[:REFINE_TOP]:
        seconds = measurement_s(refine_each, _per_iteration(m), _warmup_iterations(m), CANDIDATE_MAX_ITERATIONS)
        seconds += ledger.overhead(*_key(m))
        if clock() + seconds + _finals_s(tried + refined, backends, final_each, ledger) > deadline:
            break
        r = measure(_spec_of(m), device, _candidate_policy(refine_each), peak=peak, backend=m.details["backend"])
        yield _tag(r, "candidate", config.mode, phase="refine")
        refined.append(r)

    # The final figure: each backend's FINAL_PER_BACKEND best shapes measured in full; the fastest is the MAMF. They are
    # yielded (saved) once the winner is known, its mamf flag set: a report is appended to, never rewritten, so a flag
    # set on a saved measurement would need an amendment record (a crash now loses at most these few finals).
    # The best shape overall is always measured; the others, in order, while they fit together at final_each in what
    # is left of the budget. Each gets, when it starts, its length at final_each plus an equal part of what the finals
    # still to run leave of the budget, never more than what is left, and fills it (Policy.fill_s: the timed budget is
    # what its warm-up leaves of the share, and no iteration starts that would end past it), so time an earlier phase
    # or final left unused goes to the finals still to run, and the search ends at its budget whether a warm-up
    # settles in three iterations or not (shares planned for unsettled warm-ups ended float16's and int8's searches
    # here 6-9 s early when the warm-ups settled). It never ends past the budget but by the one final that must run:
    # the best shape, when less is left than its shortest measurement (FINAL_MIN_S timed, at least 3 iterations);
    # a runner-up whose shortest measurement no longer fits is skipped (the MAMF is then the best shape's). A final
    # that had to run at final_each took int8's search on the 2-core VM 3.75-5 s past its budget (issue 25).
    picks = _finalists(refined + ranked, backends)
    if not picks:
        return
    final_each = _final_each(config, len(picks))
    chosen = _fitting(picks, final_each, deadline - clock(), ledger)
    finals = []
    for i, (shape, backend, seen) in enumerate(chosen):
        t, k, extra = _per_iteration(seen), _warmup_iterations(seen), ledger.overhead(shape, backend)
        now = clock()
        least = [_least_s(p, final_each, ledger) for p in chosen[i:]]
        shortest = measurement_s(FINAL_MIN_S, t, k, FINAL_MAX_ITERATIONS) + extra
        if i > 0 and now + shortest > deadline:
            continue  # the best shape is measured: this one would end past the budget
        policy = _policy(final_each)
        if config.final_budget_s is None:
            # its least, plus an equal part of what the finals still to run leave over their least; never past the
            # budget but by its shortest measurement (the best shape's, which always runs)
            share = max(min(least[0] + max(deadline - now - sum(least), 0.0) / len(least), deadline - now), shortest)
            share -= extra
            seconds = _stretch(FINAL_MIN_S, share, t, k)  # the warm-up's allowance in it
            policy = Policy(budget_s=FINAL_MIN_S, min_iterations=3, max_iterations=FINAL_MAX_ITERATIONS,
                            max_warmup_s=seconds, max_warmup_iterations=20, fill_s=share)  # fmt: skip
        f = measure(base.with_shape(*shape), device, policy, peak=peak, backend=backend)
        what = {"share_s": round(share, 3)} if config.final_budget_s is None else {}
        finals.append(_tag(f, "final", config.mode, mamf=False, shapes_tried=len(tried) + len(refined), **what))
    winner = max(finals, key=_rate)
    winner.details["search"]["mamf"] = True
    yield from finals
    best_shape = (winner.spec["m"], winner.spec["n"], winner.spec["k"])
    if winner.status != "ok" or config.window_s <= 0:
        return
    s = measure(base.with_shape(*best_shape), device, window_policy(config.window_s), peak=peak, backend=winner.details["backend"],
                telemetry=telemetry, sustained=True)  # fmt: skip
    if s.status == "ok":
        s.details["msmf"] = figures.msmf(s.samples_s, s.work_per_iteration)
    yield _tag(s, "msmf", config.mode)


def window_policy(window_s: float) -> Policy:
    """The MSMF window's sampling: `window_s` timed seconds after a warm-up of at most half a second, bounded (a batch
    is at most 1/SLOT_BATCHES of what is left of the window, planned from the slower of the mean and the last batch's
    iteration), so that iterations that slow down under load end the window near its length rather than a planned
    batch's count later (a 2 s window took 11.8 s when its batches were counted from fast iterations)."""
    return Policy(budget_s=window_s, min_iterations=1, max_iterations=10**7, max_warmup_s=0.5, bounded=True)


def _key(m: Measurement) -> tuple[Shape, str]:
    return (m.spec["m"], m.spec["n"], m.spec["k"]), m.details.get("backend", "torch")


class _Ledger:
    """What each measurement of a search cost on the search's clock beyond its timed iterations: the operands made,
    the Freivalds check, the Python around them (on the 2-core VM a float64 768^3 coarse measurement took 0.30 s for
    0.14 s timed; a 3 s search that counted only timed seconds ended at 3.5 s). A shape not measured yet is charged
    the largest shape's overhead scaled by its operands' size (making and checking them is linear in their elements)."""

    def __init__(self, clock: Callable[[], float], measure: Callable[..., Measurement]) -> None:
        self.clock, self.inner = clock, measure
        self.extra: dict[tuple[Shape, str], float] = {}

    def measure(self, spec: mm.MatmulSpec, *args: object, **kw: object) -> Measurement:
        began = self.clock()
        m = self.inner(spec, *args, **kw)
        timed = sum(m.warmup_s) + sum(m.samples_s)
        if not kw.get("sustained"):
            self.extra[(spec.m, spec.n, spec.k), str(kw.get("backend", "torch"))] = max(
                self.clock() - began - timed, 0.0
            )
        return m

    def overhead(self, shape: Shape, backend: str) -> float:
        if (shape, backend) in self.extra:
            return self.extra[shape, backend]
        if not self.extra:
            return 0.0
        (largest, _), seconds = max(self.extra.items(), key=lambda kv: (_elements(kv[0][0]), kv[1]))
        return seconds * max(_elements(shape) / _elements(largest), 1.0)


def _elements(shape: Shape) -> int:
    m, n, k = shape
    return m * k + k * n + m * n


def measurement_s(budget_s: float, per_iteration_s: float, warmup_iterations: int | None,
                  max_iterations: int | None = None) -> float:  # fmt: skip
    """Seconds one measurement under _policy(budget_s) of a shape at `per_iteration_s` takes (bench.measure.sampling
    .collect): a warm-up that stops once settled (`warmup_iterations`, as the shape's last measurement settled; None:
    unknown or never settled, so it runs its budget out plus the iteration that crosses it, at most 20 iterations),
    then at least 3 timed iterations, else the budget plus the iteration that crosses it, at most max_iterations (a
    1 ms GPU product stops at 10,000 whatever its budget; a final at FINAL_MAX_ITERATIONS)."""
    policy = _policy(budget_s)
    if max_iterations is not None:
        policy = dataclasses.replace(policy, max_iterations=max_iterations)
    t, b = per_iteration_s, policy.budget_s
    warm = (
        min(b + t, policy.max_warmup_iterations * t) if warmup_iterations is None else min(warmup_iterations * t, b + t)
    )
    return max(warm, t) + min(max(b + t, policy.min_iterations * t), policy.max_iterations * t)


def _final_each(config: SearchConfig, picks: int) -> float:
    """The timed seconds of each final measurement: the budget's final share split among the finals, at least
    FINAL_MIN_S (config.final_budget_s when set)."""
    return config.final_budget_s or max(
        config.budget_s * (1 - COARSE_SHARE - REFINE_SHARE) / max(picks, 1), FINAL_MIN_S
    )


def _stretch(final_each: float, allotted_s: float, per_iteration_s: float, warmup_iterations: int | None) -> float:
    """The timed budget, at least `final_each`, whose measurement_s fills `allotted_s` (bisection: measurement_s only
    grows with the budget). A final that gets the time the earlier phases left over ends the search at its budget."""
    low, high = final_each, max(final_each, allotted_s)
    if measurement_s(high, per_iteration_s, warmup_iterations) <= allotted_s:
        return high
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if measurement_s(mid, per_iteration_s, warmup_iterations) <= allotted_s else (low, mid)
    return low


def _per_iteration(m: Measurement) -> float:
    """Mean seconds of one iteration of a measured shape: what its next measurement will take per iteration. Not the
    median: int8 at 256^3 on the 2-core VM ran at a median of 0.05 ms and a mean of 0.8 ms (stalls), and its final,
    planned at the median, took 5.7 s for 10,000 iterations planned as 0.5 s."""
    return sum(m.samples_s) / len(m.samples_s) if m.samples_s else 0.0


def _warmup_iterations(m: Measurement) -> int | None:
    """How many warm-up iterations the measurement took to settle; None when it never settled."""
    return len(m.warmup_s) if settled(m.warmup_s) else None


def too_short(m: Measurement) -> bool:
    """Whether `m`'s median iteration is under the line the MAMF rule refuses a figure at (bench.figures
    .unsteady_reasons' 'too-short': MIN_RESOLUTIONS_PER_ITERATION x its timer's resolution: 1 ms on perf_counter,
    0.5 ms on CUDA events)."""
    median = (m.summary or {}).get("median_s")
    if not isinstance(median, (int, float)):
        return False
    return median < stats.MIN_RESOLUTIONS_PER_ITERATION * stats.timer_resolution(m.timer)


def _finalists(measured: list[Measurement], backends: list[str]) -> list[tuple[Shape, str, Measurement]]:
    """Each backend's FINAL_PER_BACKEND fastest shapes (a shape's best rate over its measurements), with the
    measurement that rated it: every backend's best first, fastest first, then the runners-up. Only shapes whose
    iteration clears the MAMF rule's too-short line (too_short) while any measured one does: a final the rule refuses
    is spent for nothing (realnode, 2026-12-07: an H100's best fp8 and int8 shapes run 0.40-0.46 ms, under the 0.5 ms
    line, so their 100,000-sample finals were refused and the MAMF came from a 1,000-sample coarse stand-in of
    another shape). Where every shape is under the line, the fastest as before (the rule then finds a stand-in)."""
    clear = [m for m in measured if m.status == "ok" and not too_short(m)]
    if clear:
        measured = clear
    best: dict[tuple[Shape, str], Measurement] = {}
    for m in measured:
        if m.status != "ok" or m.details["backend"] not in backends:
            continue
        key = ((m.spec["m"], m.spec["n"], m.spec["k"]), m.details["backend"])
        if key not in best or _rate(m) > _rate(best[key]):
            best[key] = m
    rounds: list[list[tuple[Shape, str, Measurement]]] = [[] for _ in range(FINAL_PER_BACKEND)]
    for backend in backends:
        mine = sorted(((s, m) for (s, b), m in best.items() if b == backend), key=lambda p: _rate(p[1]), reverse=True)
        for i, (shape, m) in enumerate(mine[:FINAL_PER_BACKEND]):
            rounds[i].append((shape, backend, m))
    return [p for r in rounds for p in sorted(r, key=lambda p: _rate(p[2]), reverse=True)]


def _fitting(picks: list[tuple[Shape, str, Measurement]], final_each: float, left_s: float,
             ledger: _Ledger) -> list[tuple[Shape, str, Measurement]]:  # fmt: skip
    """The first of `picks` whatever it takes (the best shape), then each next one while all so far fit together in
    `left_s` seconds at `final_each` each (warm-ups as their last measurements settled)."""
    chosen: list[tuple[Shape, str, Measurement]] = []
    spent = 0.0
    for pick in picks:
        seconds = _least_s(pick, final_each, ledger)
        if chosen and spent + seconds > left_s:
            break
        chosen.append(pick)
        spent += seconds
    return chosen


def _least_s(pick: tuple[Shape, str, Measurement], final_each: float, ledger: _Ledger) -> float:
    """Seconds a final of `pick` (shape, backend, its last measurement) takes at final_each, its overhead included."""
    shape, backend, seen = pick
    seconds = measurement_s(final_each, _per_iteration(seen), _warmup_iterations(seen), FINAL_MAX_ITERATIONS)
    return seconds + ledger.overhead(shape, backend)


def _finals_s(measured: list[Measurement], backends: list[str], final_each: float, ledger: _Ledger,
              extra: tuple[Shape, str, float] | None = None) -> float:  # fmt: skip
    """Seconds the finals that must fit would take if the search stopped now: each backend's best shape, measured for
    final_each (the runners-up run only in what is left). With `extra` (shape, backend, seconds per iteration: a shape
    about to be measured) as its backend's best, as if it came out fastest (the sweep's bigger shapes often do)."""
    best: dict[str, tuple[float, int | None, float]] = {}
    for shape, backend, m in _finalists(measured, backends):
        best.setdefault(backend, (_per_iteration(m), _warmup_iterations(m), ledger.overhead(shape, backend)))
    if extra is not None:
        best[extra[1]] = (extra[2], None, ledger.overhead(extra[0], extra[1]))
    return sum(measurement_s(final_each, t, k, FINAL_MAX_ITERATIONS) + o for t, k, o in best.values())


def _emulation_reference(
    precision: str, float32_tflops: float | None, float32_rates: Mapping[Shape, float] | None
) -> Callable[[Shape], float] | None:
    """float32's TFLOPS to compare a shape of `precision` with: float32's own rate at that shape when measured, else
    its MAMF; None when there is nothing to compare with (float32 itself, or float32 not measured)."""
    if precision == "float32" or not (float32_tflops or float32_rates):
        return None
    rates = {s: r for s, r in (float32_rates or {}).items() if r > 0}
    return lambda shape: rates.get(shape) or float32_tflops or max(rates.values())


def _below(m: Measurement, reference: Callable[[Shape], float]) -> bool:
    shape = (m.spec["m"], m.spec["n"], m.spec["k"])
    return 0 < _rate(m) < EMULATED_RATIO * reference(shape)


def _emulated(m: Measurement, precision: str, reference: Callable[[Shape], float], mode: str, tried: int,
              settled: dict[str, object] | None) -> Measurement:  # fmt: skip
    """The measurement that confirmed `precision` emulated, as its (emulated) result: what the device does at that
    precision, excluded from capacity."""
    shape = (m.spec["m"], m.spec["n"], m.spec["k"])
    m.emulated = True
    ratio = _rate(m) / reference(shape)
    m.warnings.append(
        MeasurementWarning(
            "emulated",
            f"{precision} runs at {ratio:.2%} of float32's rate at {shape[0]}x{shape[1]}x{shape[2]} on this device "
            f"({tried} measurements, all below {EMULATED_RATIO:.0%})",
            "excluded from capacity",
        ).to_dict()
    )
    return _tag(m, "final", mode, mamf=True, shapes_tried=tried, settled=settled)


def _settle(device: DeviceFacts, base: mm.MatmulSpec, config: SearchConfig, candidates: list[Shape],
            measure: Callable[..., Measurement]) -> dict[str, object]:  # fmt: skip
    """Hold the largest candidate back to back for config.settle_s before the sweep. Its timings are warm-up, like
    any measurement's: what is kept is how long it ran and at what rate, in each candidate's search details."""
    shape = candidates[-1]
    policy = Policy(budget_s=config.settle_s, min_iterations=1, max_iterations=10**7, max_warmup_s=0.0,
                    max_warmup_iterations=1)  # fmt: skip
    m = measure(base.with_shape(*shape), device, policy, sustained=True)
    seconds = sum(m.warmup_s) + sum(m.samples_s)
    return {"shape": list(shape), "seconds": seconds, "status": m.status,
            "tflops": m.work_per_iteration * len(m.samples_s) / sum(m.samples_s) / 1e12 if m.samples_s else None}  # fmt: skip


def candidates_for(
    device: DeviceFacts, precision: str, config: SearchConfig, free_bytes: int, sm_count: int
) -> list[Shape]:
    if config.mode == "grid":
        return sorted(config.grid, key=lambda s: (mm.flops(*s), s))
    itemsize = get(precision).itemsize
    budget = int(free_bytes * MEMORY_SHARE)
    if device.kind == "cuda":
        return gpu_candidates(sm_count, itemsize, budget)
    return cpu_candidates(itemsize, budget)
