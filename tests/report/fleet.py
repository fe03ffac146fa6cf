"""Synthetic but well-formed signed node reports, built the way bench builds real ones (bench.figures, sign)."""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import figures
from bench.hardware import peaks
from bench.report import sign
from bench.report.model import Measurement, NodeReport
from bench.workloads import matmul as mm

H100 = "NVIDIA H100 80GB HBM3"
SHAPE = 8192


def gpu_uuid(node: int, index: int) -> str:
    return "GPU-" + hashlib.sha256(f"{node}/{index}".encode()).hexdigest()[:32]


def gpu_measurement(node: int, index: int, tflops: float, precision: str = "bfloat16", samples: int = 20,
                    role: str | None = "final", model: str = H100) -> Measurement:  # fmt: skip
    flops = mm.flops(SHAPE, SHAPE, SHAPE)
    base = flops / (tflops * 1e12)
    # real timings never repeat across devices: a tiny per-device factor keeps clones (identical samples) detectable
    jitter = 1 + 1e-10 * (1 + node * 64 + index)
    samples_s = [base * jitter * (1 + 0.001 * ((i * 7) % 5 - 2)) for i in range(samples)]
    peak = peaks.vendor_peak(model, precision)
    m = Measurement(
        workload="matmul",
        spec={"m": SHAPE, "n": SHAPE, "k": SHAPE, "precision": precision},
        device={"id": f"cuda:{index}", "kind": "cuda", "name": model, "uuid": gpu_uuid(node, index),
                "l2_cache_bytes": 50 * 2**20, "compute_capability": "9.0", "isa_flags": []},
        status="ok",
        work_per_iteration=flops, work_unit="FLOP",
        timer="cuda_event",
        warmup_s=[base * 1.2, base],
        samples_s=samples_s,
        summary=figures.matmul_summary(samples_s, flops, peak.tflops if peak else None),
        validity={"check": "freivalds", "passed": True},
        peak=peak.to_dict() if peak else None,
        details={"backend": "torch", **({"search": {"role": role, "mode": "auto", "mamf": True}} if role else {})},
        start_utc="2026-11-28T10:00:00.000000Z",
        end_utc="2026-11-28T10:00:05.000000Z",
    )
    return m


def node_report(node: int, tflops: list[float], key: Ed25519PrivateKey, *, end: str = "2026-11-28T10:05:00.000000Z",
                gpu_indices: list[int] | None = None, precision: str = "bfloat16") -> dict:  # fmt: skip
    """A signed report of node `node` with one GPU per entry of `tflops` (its bf16 MAMF)."""
    indices = gpu_indices or list(range(len(tflops)))
    gpus = [{"index": i, "name": H100, "uuid": gpu_uuid(node, i), "memory_bytes": 85520809984, "unavailable": {}}
            for i in indices]  # fmt: skip
    report = NodeReport(
        run_id=f"run-{node}",
        tool={"name": "bench", "version": "0.1.0", "git_commit": None},
        command_line=["bench", "matmul", "--search", "auto"],
        config={},
        inventory={"host": {"hostname": f"node{node:05d}", "fingerprint": f"host-{node}", "unavailable": {}},
                   "nvml": {"available": True, "gpus": gpus}},
        start_utc=(dt.datetime.fromisoformat(end) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        end_utc=end,
        measurements=[gpu_measurement(node, i, t, precision) for i, t in zip(indices, tflops, strict=True)],
    )
    data = report.to_dict()
    data["signature"] = sign.sign(data, key)
    return data


def resign(data: dict, key: Ed25519PrivateKey) -> dict:
    data = {k: v for k, v in data.items() if k != "signature"}
    data["signature"] = sign.sign(data, key)
    return data


NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
