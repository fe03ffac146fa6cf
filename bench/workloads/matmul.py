"""Dense matrix multiplication C = A.B: the achievable FLOP/s of a device at one precision and shape.

FLOPs per product are 2*M*N*K (one multiply and one add per term of every dot product). Every measured product is
checked with Freivalds' algorithm; one that fails is reported 'invalid' and never counted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from bench import figures
from bench.hardware import devices, pinning
from bench.hardware.devices import DeviceFacts
from bench.hardware.peaks import IMPLAUSIBLE_TOLERANCE, Peak
from bench.measure import telemetry as telemetry_
from bench.measure.sampling import Policy, collect
from bench.measure.sampling import warnings as sampling_warnings
from bench.measure.stats import MeasurementWarning
from bench.measure.timer import CudaEventTimer, PerfCounterTimer, Timer
from bench.model.reports import Measurement, utc_now
from bench.precision import Precision, get
from bench.workloads import freivalds, tf32

WORKLOAD = "matmul"
#: Largest square size an emulated precision is measured at: ~0.1 s per product at the ~0.3 GFLOPS seen here.
EMULATED_SIZE = 256
#: Default square size per device kind when no shape is given.
DEFAULT_SIZE = {"cpu": 2048, "cuda": 8192}
#: Keep this fraction of free memory unused, for the allocator, the Freivalds check and the rest of the process.
MEMORY_HEADROOM = 0.10
#: fp8 products with fast accumulation (no periodic promotion of the tensor cores' partial sums to float32) keep
#: fewer accumulator bits; bound them as if 12 were kept, four times the promoted path's error.
FP8_FAST_ACCUM_ROUNDOFF = 2.0**-12

Product = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], object]


@functools.cache
def _unit_scale(device: torch.device) -> torch.Tensor:
    """The float32 scale 1.0 torch._scaled_mm takes per operand, made once per device (not inside the timing)."""
    return torch.ones((), dtype=torch.float32, device=device)


def matmul_product(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, fast_accum: bool = False) -> object:
    """torch's fastest matmul for the operands: _int_mm for int8, _scaled_mm (unit scales) for fp8, else matmul.
    Both low-precision kernels take B column-major (cuBLASLt's "TN" layout), as _operands makes it."""
    if a.dtype == torch.int8:
        return torch._int_mm(a, b, out=out)
    if a.dtype == torch.float8_e4m3fn:
        one = _unit_scale(a.device)
        return torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=out.dtype, out=out, use_fast_accum=fast_accum)
    return torch.matmul(a, b, out=out)


def numpy_product(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> object:
    """numpy's BLAS (OpenBLAS in PyPI wheels) on the same CPU buffers: on some CPUs it beats torch's MKL."""
    return np.matmul(a.numpy(), b.numpy(), out=out.numpy())


#: Matmul implementations by name. numpy runs float32/float64 on the CPU only.
BACKENDS: dict[str, Product] = {"torch": matmul_product, "numpy": numpy_product}


def shape_constraint(spec: MatmulSpec, device: DeviceFacts) -> str | None:
    """Why torch's int8/fp8 kernels cannot take this shape, or None. fp8 (_scaled_mm) needs every dimension a multiple
    of 16; int8 (_int_mm) on CUDA needs M > 16 and K, N multiples of 8."""
    if spec.precision == "float8_e4m3" and any(d % 16 for d in (spec.m, spec.n, spec.k)):
        return "float8_e4m3 products (torch._scaled_mm) need M, N and K to be multiples of 16"
    if spec.precision == "int8" and device.kind == "cuda" and (spec.m <= 16 or spec.k % 8 or spec.n % 8):
        return "int8 products (torch._int_mm) on CUDA need M > 16 and K, N multiples of 8"
    return None


def backends_for(device: DeviceFacts, precision: str) -> list[str]:
    if device.kind == "cpu" and precision in ("float32", "float64"):
        return ["torch", "numpy"]
    return ["torch"]


@dataclass(frozen=True)
class MatmulSpec:
    m: int
    n: int
    k: int
    precision: str
    #: fp8 only: torch._scaled_mm(use_fast_accum=True), the mode production fp8 GEMMs use
    fast_accum: bool = False

    def __post_init__(self) -> None:
        if min(self.m, self.n, self.k) < 1:
            raise ValueError(f"matrix dimensions must be positive, got {self.m}x{self.n}x{self.k}")
        get(self.precision)
        if self.fast_accum and self.precision != "float8_e4m3":
            raise ValueError("fast accumulation is a mode of float8_e4m3 products only")

    @property
    def flops(self) -> int:
        return flops(self.m, self.n, self.k)

    @property
    def check_precision(self) -> Precision:
        """The rounding model Freivalds' check uses: the precision's, with fewer accumulator bits for fast accum."""
        p = get(self.precision)
        return dataclasses.replace(p, accumulate_roundoff=FP8_FAST_ACCUM_ROUNDOFF) if self.fast_accum else p

    def operand_bytes(self) -> int:
        """Peak bytes a measurement holds: A, B and C in the spec's storage format, the float32 (float64) operand
        being generated before its cast, and the Freivalds check's float64 chunk and vectors."""
        precision = get(self.precision)
        out_size = torch.empty((), dtype=precision.result_dtype).element_size()
        check = freivalds.CHUNK_ROWS * max(self.k, self.n) * 8 + 4 * (self.m + self.n + self.k) * 8
        gen_size = 0 if precision.torch_dtype in (torch.int8, torch.float32, torch.float64) else 4
        generating = max(self.m * self.k, self.k * self.n) * gen_size
        return (
            (self.m * self.k + self.k * self.n) * precision.itemsize + self.m * self.n * out_size + check + generating
        )

    def with_shape(self, m: int, n: int, k: int) -> MatmulSpec:
        return dataclasses.replace(self, m=m, n=n, k=k)

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        if self.precision != "float8_e4m3":
            del d["fast_accum"]  # a mode of fp8 only; other specs keep their first-wave form
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MatmulSpec:
        return cls(d["m"], d["n"], d["k"], d["precision"], bool(d.get("fast_accum", False)))


#: FLOPs of one M x K by K x N product: 2*M*N*K (bench.figures holds every work formula).
flops = figures.matmul_flops


def _is_cuda_float32(device: DeviceFacts, precision: Precision) -> bool:
    return device.kind == "cuda" and precision.torch_dtype == torch.float32


@contextlib.contextmanager
def _float32_mode(device: DeviceFacts, precision: Precision) -> Iterator[None]:
    """On CUDA, float32 products run in IEEE float32 and 'tf32' ones on tf32 tensor cores, held process-wide for the
    block (bench.workloads.tf32.mode: the switch is one per process) and restored afterwards."""
    if not _is_cuda_float32(device, precision):
        yield
        return
    with tf32.mode(precision.cuda_only):
        yield


def tf32_verdict(spec: MatmulSpec, ran: str, env: dict[str, str]) -> MeasurementWarning | None:
    """Why a CUDA float32 or tf32 figure is not what its name says, from what the probe saw (`ran`), or None."""
    named = ", ".join(f"{k}={v}" for k, v in env.items())
    because = f" ({named} is set)" if named else ""
    if spec.precision == "float32" and ran == "tf32":
        return MeasurementWarning("tf32-override", f"float32 products ran on TF32 tensor cores{because}: not a float32 "
                                  "figure", "unset the TF32 variables; nothing else in this process may switch TF32 on")  # fmt: skip
    if spec.precision == "tf32" and ran == "ieee":
        return MeasurementWarning("tf32-override", f"'tf32' products ran as IEEE float32{because}: not a tf32 figure",
                                  "unset NVIDIA_TF32_OVERRIDE to measure tf32")  # fmt: skip
    if ran == "unexpected":
        return MeasurementWarning("tf32-probe", "the float32 probe product was neither IEEE nor TF32",
                                  "report this with the GPU model and torch version")  # fmt: skip
    return None


#: `cpus` of a measurement on every physical core, in a suite that also pins one (bench.hardware.pinning): the
#: label that tells the all-core figure from the per-core one (None, no label: a suite that pins nothing).
ALL_CPUS = "all"


@contextlib.contextmanager
def _cpu_threads(device: DeviceFacts, cpus: int | str | None = None) -> Iterator[int | None]:
    """torch's threads for a CPU measurement: one per physical core, or (`cpus` a CPU number) one thread on that CPU
    alone (pinning.one_core: PinningError where this process may not run on it)."""
    if device.kind != "cpu":
        yield None
        return
    if isinstance(cpus, int):
        with pinning.one_core(cpus) as one:
            yield one
        return
    old = torch.get_num_threads()
    threads = devices.physical_cores()
    torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()  # what torch runs on, read back (pinning.one_core)
    finally:
        torch.set_num_threads(old)


#: Flush used when torch does not report the L2 size: twice the largest L2 of GPUs in the peak table (B200: 126 MiB).
UNKNOWN_L2_FLUSH_BYTES = 256 * 2**20


def flush_bytes(device: DeviceFacts) -> int:
    """Twice the L2 size evicts whatever the previous iteration left there (GPUs only)."""
    if device.kind != "cuda":
        return 0
    return 2 * device.l2_cache_bytes if device.l2_cache_bytes else UNKNOWN_L2_FLUSH_BYTES


def default_timer(device: DeviceFacts, sustained: bool = False) -> Timer:
    """Per-iteration device time with an L2 flush before each; `sustained`: back-to-back iterations timed at their
    boundaries, every gap included and nothing flushed (MSMF)."""
    if device.kind == "cuda":
        return CudaEventTimer(torch.device(device.id), flush_bytes=0 if sustained else flush_bytes(device),
                              back_to_back=sustained)  # fmt: skip
    return PerfCounterTimer(back_to_back=sustained)


def _operands(spec: MatmulSpec, device: DeviceFacts, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A and B from a seeded generator on the device (uniform in [-1, 1), or all of int8), C empty in the result
    dtype. fp8's and int8's B are column-major, as torch._scaled_mm and cuBLASLt's int8 kernels require (TN)."""
    precision = get(spec.precision)
    dtype = precision.torch_dtype
    gen = torch.Generator(device=device.id).manual_seed(seed)
    c = torch.empty(spec.m, spec.n, device=device.id, dtype=precision.result_dtype)
    if dtype == torch.int8:
        a = torch.randint(-128, 128, (spec.m, spec.k), generator=gen, device=device.id, dtype=torch.int8)
        return a, torch.randint(-128, 128, (spec.n, spec.k), generator=gen, device=device.id, dtype=torch.int8).t(), c

    def uniform(rows: int, cols: int) -> torch.Tensor:
        # generated in float32 (float64), shifted in place, then cast: one temporary at most, counted in operand_bytes
        gen_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        return torch.rand(rows, cols, generator=gen, device=device.id, dtype=gen_dtype).mul_(2).sub_(1).to(dtype)

    a = uniform(spec.m, spec.k)
    b = uniform(spec.n, spec.k).t() if dtype == torch.float8_e4m3fn else uniform(spec.k, spec.n)
    return a, b, c


def _skipped(spec: MatmulSpec, device: DeviceFacts, reason: str) -> Measurement:
    now = utc_now()
    return Measurement(
        workload=WORKLOAD,
        spec=spec.to_dict(),
        device=asdict(device),
        status="skipped",
        reason=reason,
        work_per_iteration=spec.flops,
        work_unit=figures.Unit.FLOP,
        start_utc=now,
        end_utc=now,
    )


def plausibility(summary: dict[str, Any], peak: Peak | None) -> list[MeasurementWarning]:
    """An 'implausible' warning when any reported figure exceeds the physical peak by more than the tolerance."""
    if peak is None:
        return []
    best = summary["tflops_best"]
    if best <= peak.tflops * (1 + IMPLAUSIBLE_TOLERANCE):
        return []
    if peak.unverified:  # an estimate (a CPU whose max clock is unknown, an unconfirmed table row) bounds nothing
        return [
            MeasurementWarning(
                "above-estimated-peak",
                f"best {best:.4g} TFLOPS is {best / peak.tflops:.1%} of the estimated {peak.kind} peak {peak.tflops:.4g} "
                f"TFLOPS ({peak.assumptions.get('clock_source', 'unverified table row')})",
                "the estimate is too low (e.g. turbo above the reported clock): pass --cpu-clock-mhz with the real max clock",
            )
        ]
    return [
        MeasurementWarning(
            "implausible",
            f"best {best:.4g} TFLOPS is {best / peak.tflops:.1%} of the {peak.kind} peak {peak.tflops:.4g} TFLOPS",
            "check the clock the peak assumes (--cpu-clock-mhz, --fma-units) or the device's peak-table row",
        )
    ]


def _measure(
    spec: MatmulSpec,
    device: DeviceFacts,
    policy: Policy,
    *,
    timer: Timer | None = None,
    seed: int = 0,
    product: Product = matmul_product,
    peak: Peak | None = None,
    backend: str = "torch",
    telemetry: telemetry_.Reader | None = None,
    sustained: bool = False,
    cpus: int | str | None = None,
) -> Measurement:
    """Time `spec` on `device` and check the product. Running out of memory gives a 'skipped' measurement. `cpus`
    (CPU devices): None or ALL_CPUS, one thread per physical core; a CPU number, one thread pinned to it
    (_cpu_threads), recorded in details["cpus"] (with ALL_CPUS too), which the metric carries as a label."""
    precision = get(spec.precision)
    # The L2 flush buffer counted once: a timer made here allocates it after `free` is read, so it is part of `need`;
    # a timer handed in already holds it, so `free` already lacks it (counting it again skipped shapes that fit).
    free = devices.free_memory_bytes(device.id)
    need = spec.operand_bytes() + (flush_bytes(device) if timer is None and not sustained else 0)
    if need > free * (1 - MEMORY_HEADROOM):
        return _skipped(spec, device, f"needs {need / 2**30:.2f} GiB, {free / 2**30:.2f} GiB free on {device.id}")
    timer = timer or default_timer(device, sustained)

    start = utc_now()
    env = tf32.environment() if _is_cuda_float32(device, precision) else {}
    ran = None
    try:
        if isinstance(cpus, int) and device.kind == "cpu":
            cpus = pinning.resolve(cpus)  # pinning.FIRST_ALLOWED: labelled with the CPU it ran on
        with _float32_mode(device, precision), _cpu_threads(device, cpus) as threads:
            a, b, c = _operands(spec, device, seed)
            with telemetry_.Sampler(telemetry) if telemetry else contextlib.nullcontext() as sampler:
                sampled = collect(timer, lambda: product(a, b, c), policy)
            devices.synchronize(device.id)
            check = freivalds.check(
                a, b, c, spec.check_precision, torch.Generator(device=device.id).manual_seed(seed + 1)
            )
            if _is_cuda_float32(device, precision):
                ran = tf32.probe(device.id)  # in the same mode, untimed: what the products really ran on
    except pinning.PinningError as exc:  # refused: never measured on another CPU than the one asked for
        failed = _skipped(spec, device, str(exc))
        failed.status = "error"
        return failed
    except (RuntimeError, NotImplementedError, MemoryError, TypeError) as exc:
        # TypeError: an op whose signature this torch does not have (e.g. _scaled_mm before torch 2.4)
        # Out of memory is a shape that does not fit; any other kernel or driver failure is recorded as an error
        # with its message, and the run goes on to the next measurement.
        first_line = (str(exc).splitlines() or [""])[0]
        if devices.is_oom(exc):
            return _skipped(spec, device, f"out of memory on {device.id}: {first_line}")
        failed = _skipped(spec, device, f"{type(exc).__name__}: {first_line}")
        failed.status = "error"
        return failed
    finally:
        a = b = c = None  # free device memory before the next spec
    summary = figures.matmul_summary(sampled.samples_s, spec.flops, peak.tflops if peak else None)
    details: dict[str, Any] = {"backend": backend, **_telemetry_details(sampler, sampled.warmup_wall_s)}
    if cpus is not None and device.kind == "cpu":
        details["cpus"] = str(cpus)
    overridden = tf32_verdict(spec, ran, env) if ran else None
    if ran:
        details["tf32_environment"], details["fp32_path"] = env, ran
    if sustained:
        details["timing"] = "back-to-back: iterations timed at their boundaries, gaps included, no L2 flush"
    status, reason = ("ok", None) if check.passed else ("invalid", f"Freivalds check failed: {check.reason}")
    if overridden:  # not in the precision its name claims; the override is the cause even where Freivalds failed too
        status, reason = "invalid", overridden.message + ("" if check.passed else f" (and Freivalds: {check.reason})")
    return Measurement(
        workload=WORKLOAD,
        spec=spec.to_dict(),
        device=asdict(device),
        status=status,
        reason=reason,
        work_per_iteration=spec.flops,
        work_unit=figures.Unit.FLOP,
        timer=timer.name,
        threads=threads,
        warmup_s=sampled.warmup_s,
        samples_s=sampled.samples_s,
        summary=summary,
        validity=check.to_dict(),
        warnings=[
            w.to_dict()
            for w in sampling_warnings(sampled, policy, timer.resolution_s)
            + plausibility(summary, peak)
            + ([overridden] if overridden else [])
        ],
        peak=peak.to_dict() if peak else None,
        details=details,
        start_utc=start,
        end_utc=utc_now(),
    )


def _telemetry_details(sampler: telemetry_.Sampler | None, warmup_s: float = 0.0) -> dict[str, Any]:
    """The summary covers the timed iterations: samples from the warm-up (its first `warmup_s` seconds) are kept raw
    but left out of it, unless too few samples would remain."""
    if sampler is None:
        return {}
    timed = [s for s in sampler.samples if s["t_s"] >= warmup_s]
    summary = telemetry_.summarize(timed if len(timed) >= 2 else sampler.samples)
    summary["warmup_excluded_s"] = warmup_s if len(timed) >= 2 else 0.0
    return {"telemetry": summary, "telemetry_samples": sampler.samples}


def run(
    spec: MatmulSpec,
    device: DeviceFacts,
    policy: Policy,
    *,
    timer: Timer | None = None,
    seed: int = 0,
    product: Product | None = None,
    peak: Peak | None = None,
    backend: str = "torch",
    telemetry: telemetry_.Reader | None = None,
    sustained: bool = False,
    cpus: int | str | None = None,
) -> Measurement:
    """Measure `spec` on `device`, honouring what the device supports natively; `peak` bounds native figures.
    `sustained` times back-to-back iterations (MSMF) instead of flushed single ones.

    `backend` names the implementation (BACKENDS); `product` replaces it, for tests that inject a faulty product.

    An unsupported precision (tf32 on a CPU) is recorded as skipped with the reason. An emulated one is still
    measured and checked, at most at EMULATED_SIZE cubed (an emulated bf16 product of 2048^3 takes a minute on a CPU
    without native bf16), and marked emulated so that capacity excludes it.
    """
    constraint = shape_constraint(spec, device)
    if constraint:
        return _skipped(spec, device, constraint)
    if backend not in backends_for(device, spec.precision):
        return _skipped(spec, device, f"backend {backend!r} does not run {spec.precision} on {device.kind}")
    product = product or BACKENDS[backend]
    if spec.fast_accum and product is matmul_product:
        product = functools.partial(matmul_product, fast_accum=True)
    verdict, why = devices.support(device, spec.precision, get(spec.precision).cuda_only)
    if verdict == "unsupported":
        return _skipped(spec, device, why or "unsupported")
    if verdict == "native":
        return _measure(spec, device, policy, timer=timer, seed=seed, product=product, peak=peak, backend=backend,
                        telemetry=telemetry, sustained=sustained, cpus=cpus)  # fmt: skip
    run_spec = spec
    if spec.flops > flops(EMULATED_SIZE, EMULATED_SIZE, EMULATED_SIZE):
        run_spec = spec.with_shape(EMULATED_SIZE, EMULATED_SIZE, EMULATED_SIZE)
    m = _measure(
        run_spec,
        device,
        policy,
        timer=timer,
        seed=seed,
        product=product,
        backend=backend,
        sustained=sustained,
        cpus=cpus,
    )
    m.emulated = True
    m.warnings.append(
        MeasurementWarning(
            "emulated", why or "emulated", "excluded from capacity; native support needs other hardware"
        ).to_dict()
    )
    if run_spec != spec:
        m.details["requested_spec"] = spec.to_dict()
        m.warnings.append(
            MeasurementWarning(
                "reduced-shape",
                f"measured at {run_spec.m}x{run_spec.n}x{run_spec.k} instead of {spec.m}x{spec.n}x{spec.k}: "
                "emulated products are slow",
                f"name a --shape within {EMULATED_SIZE}x{EMULATED_SIZE}x{EMULATED_SIZE} to choose the size",
            ).to_dict()
        )
    return m
