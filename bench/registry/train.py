"""train: training throughput of a GPT-style decoder and an MLP (bench.workloads.train measures them). Pure: the
spec and its presets live in bench.model.specs, the models in bench.workloads.train_models, the FLOP count in
bench.figures."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench import figures
from bench.model.metrics import Metric, device_labels
from bench.model.reports import Measurement
from bench.model.specs import PRECISIONS, PRESETS
from bench.model.tables import STATUS_STYLE, Grid, device_kind, flop_unit, num, pct
from bench.registry import Workload, key, register

NAME = "train"


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


def train_grid(measurements: list[Measurement]) -> Grid:
    rows = [m for m in measurements if m.workload == "train"]
    # one unit for the table: GFLOPS when every run was on a CPU (its figures would read 0.00x TFLOPS), else TFLOPS
    unit, scale = flop_unit("cpu" if rows and all(device_kind(m) == "cpu" for m in rows) else "cuda")
    grid = Grid(f"train: step time from raw per-step seconds; {unit} from the analytic FLOP count",
                ["model", "preset", "precision", "device", "ranks", "status", "step ms", "IQR %", "tokens|samples/s",
                 unit, "MFU", "scaling", "loss", "notes"],
                numeric={"step ms", "IQR %", "tokens|samples/s", unit, "MFU", "ranks", "scaling"})  # fmt: skip
    for m in rows:
        s, d = m.summary, m.details
        role = d.get("role") or (f"rank {d['rank']}" if "rank" in d else "")
        loss = f"{d['initial_loss']:.3g} -> {d['final_loss']:.3g}" if "initial_loss" in d else "-"
        grid.add([m.spec.get("model", "-"), m.spec.get("preset", "-"), m.spec.get("precision", "-"), m.device.get("id", "?"),
                  m.spec.get("world_size", 1), m.status,
                  num(s["median_s"], 1e3) if s else "-", f"{100 * s['iqr_s'] / s['median_s']:.1f}" if s else "-",
                  num(s["items_per_s"]) if s else "-", num(s["tflops_median"], scale) if s else "-",
                  pct(s["mfu"]) if s and "mfu" in s else "-",
                  pct(d["scaling_efficiency"]) if d.get("scaling_efficiency") else "-",
                  loss, ", ".join(filter(None, [role, m.reason] + [w.get("code") for w in m.warnings]))],
                 STATUS_STYLE[m.status])  # fmt: skip
    return grid


WORKLOAD = register(Workload(
    name=NAME,
    across_ranks=True,
    job="bench.planning.train:job_phases",
    unit=figures.Unit.FLOP,
    summary=summary,
    work=work,
    metrics=metrics,
    grids=lambda measurements, every_matmul=False: [train_grid(measurements)],
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
    steps="bench.planning.train:suite_steps",
    what=("model", "preset"),
    case_labels=("model_kind", "preset", "precision"),
))  # fmt: skip
