"""train: training throughput of a GPT-style decoder and an MLP (bench.workloads.train measures them), and the
spec a config and a report describe a run with (TrainSpec, the presets). Pure: the models live in
bench.workloads.train_models, the FLOP count in bench.figures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from bench import figures
from bench.registry import Workload, key, register
from bench.report import render
from bench.report.metrics import Metric, device_labels
from bench.report.model import Measurement

NAME = "train"
PRECISIONS = ("float32", "bfloat16")


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
#: shape; '1b' is ~1.0e9 parameters (18 layers x 2048 wide, GPT-2 vocabulary) for large GPUs. Both GPT-2 vocabularies
#: are padded from 50,257 to 50,304 tokens, the next multiple of 64, as nanoGPT does: the LM head's and embedding's
#: matmul dimension then tiles tensor cores evenly (an odd 50,257 leaves ragged tiles and reads low); the padded
#: tokens never occur in the data.
GPT2_VOCAB = 50257
VOCAB_MULTIPLE = 64
GPT2_VOCAB_PADDED = -(-GPT2_VOCAB // VOCAB_MULTIPLE) * VOCAB_MULTIPLE  # 50,304
# fmt: off
PRESETS: dict[str, dict[str, TrainSpec]] = {
    "gpt": {
        "tiny": TrainSpec("gpt", "tiny", layers=2, width=128, heads=4, seq_len=64, batch=8, vocab=256, steps=30, warmup=5),
        "small": TrainSpec("gpt", "small", layers=6, width=384, heads=6, seq_len=256, batch=16, vocab=4096, steps=30, warmup=5),
        "gpt2-124m": TrainSpec("gpt", "gpt2-124m", layers=12, width=768, heads=12, seq_len=1024, batch=8,
                               vocab=GPT2_VOCAB_PADDED, steps=30, warmup=5, lr=6e-4),
        "1b": TrainSpec("gpt", "1b", layers=18, width=2048, heads=16, seq_len=2048, batch=4, vocab=GPT2_VOCAB_PADDED,
                        steps=20, warmup=5, lr=3e-4),
    },
    "mlp": {
        "tiny": TrainSpec("mlp", "tiny", layers=3, width=256, batch=64, vocab=64, steps=40, warmup=5),
        "small": TrainSpec("mlp", "small", layers=4, width=2048, batch=256, vocab=512, steps=40, warmup=5),
        "gpt2-124m": TrainSpec("mlp", "gpt2-124m", layers=8, width=4096, batch=1024, vocab=1024, steps=40, warmup=5),
        "1b": TrainSpec("mlp", "1b", layers=16, width=8192, batch=2048, vocab=2048, steps=30, warmup=5),
    },
}
# fmt: on


def preset(model: str, name: str, **overrides: Any) -> TrainSpec:
    try:
        base = PRESETS[model][name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(PRESETS['gpt'])}") from None
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def summary(m: Measurement) -> dict[str, Any]:
    # items per step from the spec (batch x seq_len x world_size), not from details the node wrote
    return figures.train_summary(m.samples_s, m.work_per_iteration, figures.train_items(m.spec),
                                 (m.peak or {}).get("tflops"))  # fmt: skip


def work(spec: Mapping[str, Any]) -> int:
    """FLOPs per step of a stored spec (a data-parallel total's: times its world_size)."""
    return figures.train_work(spec)


#: The `role` label of a training figure, from the measurement's details["role"] (None: one device's own run).
#: Label values are stable identifiers without spaces, and one device's run reads the same whether it ran alone or as
#: a torchrun/srun rank, so a dashboard's series does not break when the launch mode changes.
ROLE_LABELS = {None: "device", "data-parallel total": "data_parallel", "single-rank baseline": "single_rank_baseline"}


def role_labels(m: Measurement) -> dict[str, str]:
    """`role` and `rank`, present on every training figure: the rank a device ran as (0 alone), or "all" for a
    data-parallel total over the ranks."""
    role = m.details.get("role")
    label = ROLE_LABELS.get(role) or "".join(c if c.isalnum() else "_" for c in str(role))
    rank = "all" if label == "data_parallel" else str(m.details.get("rank", 0))
    return {"role": label, "rank": rank}


def metrics(m: Measurement) -> list[Metric]:
    labels = {**device_labels(m), "model_kind": str(m.spec.get("model")), "preset": str(m.spec.get("preset")),
              "precision": str(m.spec.get("precision")), **role_labels(m)}  # fmt: skip
    s = m.summary or {}
    common = {"workload": NAME, "status": m.status, "samples_s": tuple(m.samples_s)}
    out = [Metric("train_tflops", labels, s.get("tflops_median", 0.0), "TFLOPS", **common),
           Metric("train_items_per_s", labels, s.get("items_per_s", 0.0), "items/s", **common)]  # fmt: skip
    if s.get("mfu") is not None:
        out.append(Metric("train_mfu", labels, s["mfu"], "ratio", **common))
    return out


WORKLOAD = register(Workload(
    name=NAME,
    unit=figures.Unit.FLOP,
    summary=summary,
    work=work,
    metrics=metrics,
    grids=lambda measurements, every_matmul=False: [render.train_grid(measurements)],
    series={
        "train_tflops": ("bench_train_flops_per_second", 1e12, "Training FLOP/s at the median step (analytic FLOP count)"),
        "train_items_per_s": ("bench_train_items_per_second", 1.0,
                              "Training tokens (GPT) or samples (MLP) per second at the median step"),
        "train_mfu": ("bench_train_mfu_ratio", 1.0, "Training model FLOPs utilisation against the device's peak (0..1)"),
    },
    config={
        "models": key("str-list", ["gpt", "mlp"], "gpt and/or mlp.", choices=tuple(PRESETS)),
        "presets": key("str-list", [], "Sizes; empty: tiny on CPU, small and gpt2-124m on GPU.",
                       choices=tuple(PRESETS["gpt"])),
        "precision": key("str", None, "bfloat16 or float32 (default: bfloat16 on GPU, float32 on CPU).",
                         choices=PRECISIONS, nullable=True),
        "steps": key("int", None, "Timed steps (default: the preset's).", minimum=1, nullable=True),
        "warmup_steps": key("int", None, "Untimed steps first (default: the preset's).", minimum=0, nullable=True),
    },
    steps="bench.plans:train_suite_steps",
))  # fmt: skip
