"""Training microbenchmarks: a GPT-style decoder and an MLP, trained on a learnable synthetic task, with honest FLOPs.

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
import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Self

import psutil
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from bench import figures
from bench.hardware import devices
from bench.hardware.devices import DeviceFacts
from bench.hardware.peaks import Peak
from bench.measure import stats
from bench.measure.stats import MeasurementWarning
from bench.measure.timer import CudaEventTimer, PerfCounterTimer, Timer
from bench.report.model import Measurement, utc_now

WORKLOAD = "train"
#: Final loss must be at most this fraction of the initial loss for the run to count as learning.
LOSS_DROP = 0.8
#: Steps at the end whose mean loss is the "final" loss (smooths one noisy step).
FINAL_WINDOW = 3
PRECISIONS = ("float32", "bfloat16")
#: Distinct synthetic batches generated up front and cycled through.
BATCH_POOL = 8
#: Distinct tokens in the GPT task's data, whatever the vocabulary.
DATA_TOKENS = 64


@dataclass(frozen=True)
class TrainSpec:
    model: str  # 'gpt' or 'mlp'
    preset: str
    layers: int
    width: int  # d_model (gpt) or hidden width (mlp)
    heads: int = 1
    seq_len: int = 1  # gpt: context T; mlp: 1
    batch: int = 8
    vocab: int = 256  # gpt: vocabulary V; mlp: input features and classes
    steps: int = 20
    warmup: int = 5
    lr: float = 3e-3
    precision: str = "float32"
    compile: bool = False

    def __post_init__(self) -> None:
        if self.model not in ("gpt", "mlp"):
            raise ValueError(f"unknown model {self.model!r}; valid: gpt, mlp")
        if self.precision not in PRECISIONS:
            raise ValueError(f"train precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        if self.model == "gpt" and self.width % self.heads:
            raise ValueError(f"d_model {self.width} is not divisible by {self.heads} heads")
        if min(self.layers, self.width, self.batch, self.vocab, self.seq_len, self.steps) < 1 or self.warmup < 0:
            raise ValueError("layers, width, batch, vocab, seq_len and steps must be positive; warmup >= 0")

    @property
    def items_per_step(self) -> int:
        """Tokens (gpt) or samples (mlp) per step."""
        return self.batch * self.seq_len

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Presets: 'tiny' is the CPU smoke test (well under 20 s on 2 cores with warm-up); 'gpt2-124m' is GPT-2 small's
#: shape; '1b' is ~1.0e9 parameters (18 layers x 2048 wide, GPT-2 vocabulary) for large GPUs.
PRESETS: dict[str, dict[str, TrainSpec]] = {
    "gpt": {
        "tiny": TrainSpec("gpt", "tiny", layers=2, width=128, heads=4, seq_len=64, batch=8, vocab=256, steps=30, warmup=5),
        "small": TrainSpec("gpt", "small", layers=6, width=384, heads=6, seq_len=256, batch=16, vocab=4096, steps=30, warmup=5),
        "gpt2-124m": TrainSpec("gpt", "gpt2-124m", layers=12, width=768, heads=12, seq_len=1024, batch=8, vocab=50257,
                               steps=30, warmup=5, lr=6e-4),
        "1b": TrainSpec("gpt", "1b", layers=18, width=2048, heads=16, seq_len=2048, batch=4, vocab=50257, steps=20,
                        warmup=5, lr=3e-4),
    },
    "mlp": {
        "tiny": TrainSpec("mlp", "tiny", layers=3, width=256, batch=64, vocab=64, steps=40, warmup=5),
        "small": TrainSpec("mlp", "small", layers=4, width=2048, batch=256, vocab=512, steps=40, warmup=5),
        "gpt2-124m": TrainSpec("mlp", "gpt2-124m", layers=8, width=4096, batch=1024, vocab=1024, steps=40, warmup=5),
        "1b": TrainSpec("mlp", "1b", layers=16, width=8192, batch=2048, vocab=2048, steps=30, warmup=5),
    },
}


# --- models and data -----------------------------------------------------------------------------------------------


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in self.qkv(self.ln1(x)).split(d, 2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, spec: TrainSpec) -> None:
        super().__init__()
        self.tok = nn.Embedding(spec.vocab, spec.width)
        self.pos = nn.Embedding(spec.seq_len, spec.width)
        self.blocks = nn.ModuleList(Block(spec.width, spec.heads) for _ in range(spec.layers))
        self.ln = nn.LayerNorm(spec.width)
        # GPT-2's initialisation: with N(0, 1) embeddings the tied head starts with huge logits and a loss far above
        # ln(V), which makes "did the loss fall" meaningless.
        for emb in (self.tok, self.pos):
            nn.init.normal_(emb.weight, std=0.02)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.ln(x) @ self.tok.weight.t()  # LM head tied to the embedding


def mlp(spec: TrainSpec) -> nn.Module:
    dims = [spec.vocab] + [spec.width] * (spec.layers - 1) + [spec.vocab]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(dims)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


def build_model(spec: TrainSpec) -> nn.Module:
    return GPT(spec) if spec.model == "gpt" else mlp(spec)


def batch(spec: TrainSpec, device: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A learnable synthetic batch. GPT: sequences that follow a fixed random cycle through DATA_TOKENS tokens from a
    random first token, so the next token is determined by the current one. MLP: inputs x,
    labels argmax of a fixed teacher's x.W. The fixed parts come from a constant seed; only the draws vary."""
    fixed = torch.Generator(device=device).manual_seed(1234)
    if spec.model == "gpt":
        # The sequences use a fixed subset of DATA_TOKENS tokens, so a model of any vocabulary starts at ln(V) and
        # learns within a few dozen steps (first which tokens occur, then which follows which).
        used = torch.randperm(spec.vocab, generator=fixed, device=device)[: min(spec.vocab, DATA_TOKENS)]
        successor = used[torch.randperm(len(used), generator=fixed, device=device)]
        nxt = torch.arange(spec.vocab, device=device)
        nxt[used] = successor
        seq = torch.empty(spec.batch, spec.seq_len + 1, dtype=torch.long, device=device)
        seq[:, 0] = used[torch.randint(0, len(used), (spec.batch,), generator=generator, device=device)]
        for i in range(spec.seq_len):
            seq[:, i + 1] = nxt[seq[:, i]]
        return seq[:, :-1], seq[:, 1:]
    teacher = torch.randn(spec.vocab, spec.vocab, generator=fixed, device=device)
    x = torch.randn(spec.batch, spec.vocab, generator=generator, device=device)
    return x, (x @ teacher).argmax(dim=1)


def loss_of(model: nn.Module, spec: TrainSpec, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    out = model(inputs)
    return F.cross_entropy(out.reshape(-1, out.shape[-1]).float(), targets.reshape(-1))


# --- FLOPs -----------------------------------------------------------------------------------------------------------


def flops_per_step(spec: TrainSpec) -> int:
    """The analytic count (bench.figures.train_step_flops), per step."""
    return figures.train_step_flops(spec.model, spec.layers, spec.width, spec.seq_len, spec.batch, spec.vocab)


def counted_flops(spec: TrainSpec) -> int:
    """torch's own count of one training step's FLOPs, on the meta device (shapes only, no arithmetic), with the math
    SDPA kernel so attention is counted (the fused CPU kernel counts 0)."""
    with torch.device("meta"):
        model = build_model(spec)
        inputs, targets = _meta_batch(spec)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        loss_of(model, spec, inputs, targets).backward()
    return int(counter.get_total_flops())


def _meta_batch(spec: TrainSpec) -> tuple[torch.Tensor, torch.Tensor]:
    if spec.model == "gpt":
        shape = (spec.batch, spec.seq_len)
        return torch.zeros(shape, dtype=torch.long), torch.zeros(shape, dtype=torch.long)
    return torch.zeros(spec.batch, spec.vocab), torch.zeros(spec.batch, dtype=torch.long)


def parameters(spec: TrainSpec) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in build_model(spec).parameters())


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
    peak_memory = torch.cuda.max_memory_allocated(device.id) if device.kind == "cuda" else psutil.Process().memory_info().rss
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


def preset(model: str, name: str, **overrides: Any) -> TrainSpec:
    try:
        base = PRESETS[model][name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(PRESETS['gpt'])}") from None
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def data_parallel_total(spec: TrainSpec, ranks: list[Measurement], baseline: Measurement, peak: Peak | None) -> Measurement:
    """The whole data-parallel job as one measurement. Steps are synchronous, so step i of the job takes as long as
    its slowest rank: raw samples = per-step max over ranks. Scaling efficiency = job throughput / (world size x the
    single-rank baseline's throughput)."""
    world = len(ranks)
    n = min(len(m.samples_s) for m in ranks)
    samples = [max(m.samples_s[i] for m in ranks) for i in range(n)]
    warmup = [max(m.warmup_s[i] for m in ranks) for i in range(min(len(m.warmup_s) for m in ranks))]
    job_peak = dataclasses.replace(peak, tflops=peak.tflops * world, assumptions={**peak.assumptions, "world_size": world}) if peak else None
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
            "per_rank": [{"rank": i, "host": m.details.get("host"), "device": m.device.get("id"), "uuid": m.device.get("uuid"),
                          "items_per_s": (m.summary or {}).get("items_per_s"), "status": m.status} for i, m in enumerate(ranks)],
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
