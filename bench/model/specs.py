"""Workload specs as plain data: what a config asks a workload to run and a report records it ran with. Pure (no
torch): the workload that measures a spec (bench.workloads), its descriptor (bench.registry) and the CLI's choices
all read it from here, so none of them depends on another to know what a spec is.

TrainSpec and its presets: the training workload's models (bench.workloads.train_models builds them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

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
