"""FLOPs of a training step: the analytic count (bench.figures.train_step_flops, the one the report uses) and
torch's FlopCounterMode count it is cross-checked against, with the parameter count."""

from __future__ import annotations

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from bench import figures
from bench.model.specs import TrainSpec
from bench.workloads.train_models import build_model, loss_of


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
