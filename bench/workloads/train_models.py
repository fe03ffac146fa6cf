"""The training workload's models and data: a GPT-style decoder and an MLP, and the learnable synthetic batches
they train on (bench.workloads.train runs them; bench.figures counts their FLOPs)."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from bench.model.specs import TrainSpec

#: Distinct tokens in the GPT task's data, whatever the vocabulary.
DATA_TOKENS = 64


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
