"""Training microbenchmarks, the run loop (models in bench.workloads.train_models, FLOPs in
bench.workloads.train_flops and bench.figures, the spec and presets in bench.model.specs): a GPT-style decoder and an MLP, trained on a learnable synthetic task, with honest FLOPs.

FLOPs per training step (forward + backward = 3 x forward; elementwise ops, norms and softmax not counted, as in
Megatron's and PaLM's MFU accounting):

    GPT, per token, forward:  L * (24 * d^2  +  4 * T * d)  +  2 * d * V
        24 d^2: QKV (6 d^2), attention output (2 d^2), MLP d -> 4d -> d (16 d^2)
        4 T d:  Q.K^T and attention.V over the FULL T x T score matrix. Causal attention computes about half of it;
                like PaLM's MFU formula (6N + 12 L T d per token, training) and torch's FlopCounterMode under the
                math SDPA kernel, the reported TFLOPS count the full matrix.
        2 d V:  the LM head (weights tied with the token embedding; the lookup itself is free)
    MLP, per sample, forward: sum over layers of 2 * fan_in * fan_out; its first layer's backward computes only the
        weight gradient (the input needs none), so a step is 3 x forward - 2 * fan_in * fan_out of that layer.

Every analytic count is cross-checked against torch.utils.flop_counter.FlopCounterMode on the meta device (no
compute, exact shapes) and the ratio is recorded. A run whose loss is NaN/inf, or whose final loss did not fall
below LOSS_DROP x its initial loss, is invalid: the model did not learn, so its throughput is not a training result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Self

import psutil
import torch
from torch import nn

from bench import figures
from bench.hardware import devices
from bench.hardware.devices import DeviceFacts
from bench.hardware.peaks import Peak
from bench.measure import stats
from bench.measure.stats import MeasurementWarning
from bench.measure.timer import CudaEventTimer, PerfCounterTimer, Timer
from bench.model.reports import Measurement, utc_now
from bench.model.specs import PRECISIONS, PRESETS, TrainSpec, preset
from bench.workloads.train_flops import counted_flops, flops_per_step, parameters
from bench.workloads.train_models import GPT, Block, batch, build_model, loss_of, mlp

__all__ = ["GPT", "PRECISIONS", "PRESETS", "Block", "TrainSpec", "batch", "build_model", "counted_flops",
           "flops_per_step", "loss_of", "mlp", "parameters", "preset"]  # fmt: skip

WORKLOAD = "train"
#: Final loss must be at most this fraction of the initial loss for the run to count as learning.
LOSS_DROP = 0.8
#: Steps at the end whose mean loss is the "final" loss (smooths one noisy step).
FINAL_WINDOW = 3
#: Distinct synthetic batches generated up front and cycled through.
BATCH_POOL = 8


# --- running ---------------------------------------------------------------------------------------------------------


def _autocast(device: DeviceFacts, spec: TrainSpec) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast over float32 master weights (GPU and CPU alike); float32 runs plain."""
    if spec.precision == "bfloat16":
        return torch.autocast(device_type=device.kind, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def default_timer(device: DeviceFacts) -> Timer:
    return CudaEventTimer(torch.device(device.id), flush_bytes=0) if device.kind == "cuda" else PerfCounterTimer()


class _Watch:
    """Reports progress(done(), total) every `interval_s` on a daemon thread while the block runs, and once at its end."""

    def __init__(self, progress: Callable[[int, int], None] | None, done: Callable[[], int], total: int,
                 interval_s: float = 0.2) -> None:  # fmt: skip
        self.progress, self.done, self.total, self.interval_s = progress, done, total, interval_s
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self.stop.wait(self.interval_s):
            self.progress(self.done(), self.total)  # type: ignore[misc]

    def __enter__(self) -> Self:
        if self.progress:
            self.thread = threading.Thread(target=self._loop, name="bench-train-progress", daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread:
            self.thread.join()
            self.progress(self.done(), self.total)  # type: ignore[misc]


def run(
    spec: TrainSpec,
    device: DeviceFacts,
    *,
    peak: Peak | None = None,
    timer: Timer | None = None,
    seed: int = 0,
    wrap: Callable[[nn.Module], nn.Module] | None = None,
    corrupt_loss_at: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Measurement:
    """Train `spec` on `device`: warm-up steps, then timed steps, every loss kept. `wrap` turns the model into a
    distributed one (DDP); `corrupt_loss_at` makes the loss NaN from that step on, for testing the invalid path;
    `progress(done, total)` is told the steps done from a watcher thread, never from inside a timed step."""
    start = utc_now()
    timer = timer or default_timer(device)
    torch.manual_seed(seed)
    gen = torch.Generator(device=device.id).manual_seed(seed)
    try:
        model = build_model(spec).to(device.id)
        if wrap:
            model = wrap(model)
        if spec.compile:
            model = compiled(model)
        optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr)
        losses: list[torch.Tensor] = []
        pool = [batch(spec, device.id, gen) for _ in range(BATCH_POOL)]  # made before timing: steps time training only

        def step() -> None:
            inputs, targets = pool[len(losses) % BATCH_POOL]
            with _autocast(device, spec):
                loss = loss_of(model, spec, inputs, targets)
            if corrupt_loss_at is not None and len(losses) >= corrupt_loss_at:
                loss = loss * float("nan")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())

        if device.kind == "cuda":
            torch.cuda.reset_peak_memory_stats(device.id)
        with _Watch(progress, lambda: len(losses), spec.warmup + spec.steps):
            warmup = timer.time(step, spec.warmup)
            samples = timer.time(step, spec.steps)
            devices.synchronize(device.id)
    except (RuntimeError, MemoryError) as exc:
        first = (str(exc).splitlines() or [""])[0]
        status = "skipped" if devices.is_oom(exc) else "error"
        reason = f"out of memory on {device.id}: {first}" if status == "skipped" else f"{type(exc).__name__}: {first}"
        return Measurement(WORKLOAD, spec.to_dict(), asdict(device), status, reason, work_per_iteration=flops_per_step(spec),
                           work_unit=figures.Unit.FLOP,
                           start_utc=start, end_utc=utc_now())  # fmt: skip
    values = [float(v) for v in torch.stack(losses).float().cpu()]
    peak_memory = (
        torch.cuda.max_memory_allocated(device.id) if device.kind == "cuda" else psutil.Process().memory_info().rss
    )
    m = measurement(spec, device, warmup, samples, values, peak, peak_memory, timer, start)
    if spec.compile:
        m.details["compile"] = compile_record()
    return m


def compiled(model: nn.Module) -> nn.Module:
    """torch.compile with a fresh dynamo cache and static shapes. The cache is per code object: presets of one model
    share Block.forward, so a second preset in the same process recompiles, and past the recompile limit dynamo falls
    back to eager without an error (a 'compiled' figure that is not). Reset, each run compiles its own graphs."""
    torch._dynamo.reset()
    return torch.compile(model, dynamic=False)


def compile_record() -> dict[str, Any]:
    """What a compiled run's report says about compilation: dynamo's counters since the reset."""
    counters = torch._dynamo.utils.counters
    return {"dynamic": False, "cache_reset": True, "unique_graphs": int(counters["stats"].get("unique_graphs", 0)),
            "recompiles": int(sum(counters["recompiles"].values())) if "recompiles" in counters else 0,
            "graph_breaks": int(sum(counters["graph_break"].values()))}  # fmt: skip


def measurement(
    spec: TrainSpec, device: DeviceFacts, warmup: list[float], samples: list[float], losses: list[float],
    peak: Peak | None, peak_memory: int, timer: Timer, start: str,
) -> Measurement:  # fmt: skip
    """The Measurement of a finished run: figures from the raw step times, validity from the losses."""
    flops = flops_per_step(spec)
    counted = counted_flops(spec)
    summary = figures.train_summary(samples, flops, spec.items_per_step, peak.tflops if peak else None)
    initial, final = losses[0], sum(losses[-FINAL_WINDOW:]) / len(losses[-FINAL_WINDOW:])
    validity = loss_validity(losses)
    warnings = stats.warnings_for(stats.summarize(samples), timer.resolution_s)
    if abs(counted / flops - 1) > 0.05:
        warnings.append(MeasurementWarning("flop-count", f"analytic FLOPs differ from FlopCounterMode by "
                                           f"{counted / flops - 1:+.1%}", "report this: the formula needs fixing"))  # fmt: skip
    return Measurement(
        workload=WORKLOAD,
        spec=spec.to_dict(),
        device=asdict(device),
        status="ok" if validity["passed"] else "invalid",
        reason=None if validity["passed"] else validity["reason"],
        work_per_iteration=flops,
        work_unit=figures.Unit.FLOP,
        timer=timer.name,
        threads=torch.get_num_threads() if device.kind == "cpu" else None,
        warmup_s=warmup,
        samples_s=samples,
        summary=summary,
        validity=validity,
        warnings=[w.to_dict() for w in warnings],
        peak=peak.to_dict() if peak else None,
        details={
            "items_per_step": spec.items_per_step,
            "losses": losses,
            "initial_loss": initial,
            "final_loss": final,
            "parameters": parameters(spec),
            "flop_counter_flops": counted,
            "flop_counter_ratio": counted / flops,
            "peak_memory_bytes": int(peak_memory),
            "peak_memory_kind": "cuda max allocated" if device.kind == "cuda" else "process RSS",
        },
        start_utc=start,
        end_utc=utc_now(),
    )


def loss_validity(losses: list[float]) -> dict[str, Any]:
    """Passed when every loss is finite and the final loss fell below LOSS_DROP x the initial loss."""
    if not all(math.isfinite(v) for v in losses):
        first = next(i for i, v in enumerate(losses) if not math.isfinite(v))
        return {"check": "loss", "passed": False, "reason": f"loss is not finite from step {first} on"}
    initial, final = losses[0], sum(losses[-FINAL_WINDOW:]) / len(losses[-FINAL_WINDOW:])
    if not final <= LOSS_DROP * initial:
        return {"check": "loss", "passed": False,
                "reason": f"loss did not fall: {initial:.4g} -> {final:.4g} (needs <= {LOSS_DROP:g}x)"}  # fmt: skip
    return {"check": "loss", "passed": True, "reason": None, "initial": initial, "final": final}


def data_parallel_total(
    spec: TrainSpec, ranks: list[Measurement], baseline: Measurement, peak: Peak | None
) -> Measurement:
    """The whole data-parallel job as one measurement. Steps are synchronous, so step i of the job takes as long as
    its slowest rank: raw samples = per-step max over ranks. Scaling efficiency = job throughput / (world size x the
    single-rank baseline's throughput)."""
    world = len(ranks)
    n = min(len(m.samples_s) for m in ranks)
    samples = [max(m.samples_s[i] for m in ranks) for i in range(n)]
    warmup = [max(m.warmup_s[i] for m in ranks) for i in range(min(len(m.warmup_s) for m in ranks))]
    job_peak = (
        dataclasses.replace(peak, tflops=peak.tflops * world, assumptions={**peak.assumptions, "world_size": world})
        if peak
        else None
    )
    flops = flops_per_step(spec) * world
    summary = figures.train_summary(samples, flops, spec.items_per_step * world, job_peak.tflops if job_peak else None)
    valid = all(m.status == "ok" for m in ranks)
    base_rate = baseline.summary["items_per_s"] if baseline.summary else None
    first = ranks[0]
    return Measurement(
        workload=WORKLOAD,
        spec={**spec.to_dict(), "world_size": world},
        device=first.device,
        status="ok" if valid else "invalid",
        reason=None if valid else "; ".join(f"rank {i}: {m.reason}" for i, m in enumerate(ranks) if m.status != "ok"),
        work_per_iteration=flops,
        work_unit=figures.Unit.FLOP,
        timer=first.timer,
        threads=first.threads,
        warmup_s=warmup,
        samples_s=samples,
        summary=summary,
        validity={"check": "loss", "passed": valid, "reason": None if valid else "a rank's loss check failed"},
        peak=job_peak.to_dict() if job_peak else None,
        details={
            "role": "data-parallel total",
            "items_per_step": spec.items_per_step * world,
            "world_size": world,
            "per_rank": [
                {
                    "rank": i,
                    "host": m.details.get("host"),
                    "device": m.device.get("id"),
                    "uuid": m.device.get("uuid"),
                    "items_per_s": (m.summary or {}).get("items_per_s"),
                    "status": m.status,
                }
                for i, m in enumerate(ranks)
            ],
            "baseline_items_per_s": base_rate,
            "scaling_efficiency": summary["items_per_s"] / (world * base_rate) if base_rate else None,
        },
        start_utc=min(m.start_utc or "" for m in ranks),
        end_utc=max(m.end_utc or "" for m in ranks),
    )


def annotate_mamf_ratio(measurements: list[Measurement]) -> None:
    """Training TFLOPS / the matmul MAMF (bench.figures.mamf) of the same device and precision, when both are in one
    report."""
    chosen = figures.mamf(measurements, lambda m: (m.device.get("uuid"), m.spec.get("precision")))
    for m in measurements:
        key = (m.device.get("uuid"), m.spec.get("precision"))
        if m.workload == WORKLOAD and m.summary and key in chosen and "world_size" not in m.spec:
            m.details["mamf_tflops"] = chosen[key][0].summary["tflops_median"]
            m.details["mamf_ratio"] = m.summary["tflops_median"] / m.details["mamf_tflops"]
