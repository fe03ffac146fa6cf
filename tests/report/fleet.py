"""Signed GPU fleets: the names tests import from here, built by the one report-builder, tests.report.synthetic."""

from __future__ import annotations

import dataclasses as _dc
from collections.abc import Iterator as _Iterator

import numpy as _np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import figures as _figures
from bench import precision as _prec
from bench.hardware import peaks as _peaks
from bench.model import records as _records
from bench.model.reports import Measurement as _Measurement
from bench.model.reports import NodeReport as _NodeReport
from tests.report.synthetic import (
    H100,
    NOW,
    SHAPE,
    gpu_measurement,
    gpu_node,
    gpu_uuid,
    node_report,
    node_stream,
    resign,
)

__all__ = ["H100", "NOW", "SHAPE", "gpu_measurement", "gpu_node", "gpu_uuid", "node_report", "node_stream", "resign"]


# --- a real node's report (realnode, issue 26): what `bench run` with configs/node.toml writes on 8 H100s ----------


#: Assumptions of real_node_measurements (everything else is the code's own: configs/node.toml's [matmul]
#: search = "auto" with every CUDA precision, fp8 twice; matmul_search.search with its BUDGET_S, WINDOW_S, SETTLE_S,
#: shares, FINAL_MAX_ITERATIONS; gpu_candidates for 132 SMs and 80 GB; sampling.collect's warm-up, batches and caps).
#: An H100 SXM reaches REAL_EFFICIENCY of the datasheet's dense peak (peaks.toml) on large products (bf16: 0.8 x 989
#: = 791 TFLOPS, mamf-finder's 792-795), less on small ones (half of it at REAL_HALF_FLOPS of work) and a little less
#: on the largest (power: 1 / (1 + FLOPs / REAL_POWER_FLOPS)); each GPU 0-2% apart.
REAL_EFFICIENCY, REAL_HALF_FLOPS, REAL_POWER_FLOPS = 0.8, 5e9, 1e14
#: Timings as CUDA events give them: the kernel's time with REAL_JITTER (relative, normal) noise, in whole
#: nanoseconds, as float32 milliseconds (cudaEventElapsedTime) / 1000; the first warm-up iteration REAL_COLD x slower.
REAL_JITTER, REAL_COLD = 0.005, 1.5
#: Seconds a measurement costs the search's clock beyond its timed iterations (operands made, Freivalds check).
REAL_OVERHEAD_S = 0.05
REAL_MEMORY_BYTES = 85520809984


def real_kernel_s(shape: tuple[int, int, int], precision: str, gpu_factor: float = 1.0) -> float:
    """Seconds one m x n x k product takes on the modelled H100 SXM at `precision` (REAL_* assumptions)."""
    flops = _figures.matmul_flops(*shape)
    peak = _peaks.vendor_peak(H100, precision)
    assert peak is not None, precision
    eff = REAL_EFFICIENCY * flops / (flops + REAL_HALF_FLOPS) / (1 + flops / REAL_POWER_FLOPS)
    return flops / (peak.tflops * 1e12 * eff) * gpu_factor


class _EventTimer:
    """bench.measure.timer.Timer's shape (name, resolution_s, time) with CUDA-event-like timings of one kernel."""

    name, resolution_s = "cuda_event", 5e-7

    def __init__(self, rng: _np.random.Generator, seconds: float) -> None:
        self.rng, self.seconds, self.first = rng, seconds, True

    def time(self, fn: object, iterations: int) -> list[float]:
        ns = _np.maximum(
            1.0, _np.round(self.rng.normal(self.seconds * 1e9, self.seconds * 1e9 * REAL_JITTER, iterations))
        )
        if self.first and iterations:
            ns[0] *= REAL_COLD
            self.first = False
        return ((ns / 1e6).astype(_np.float32).astype(_np.float64) / 1000.0).tolist()


def real_node_measurements(node: int, gpus: int = 8, *, seed: int = 26,
                           precisions: tuple[str, ...] | None = None) -> _Iterator[_Measurement]:  # fmt: skip
    """The matmul measurements `bench run` (configs/node.toml) writes on an 8-H100 node, device by device, each
    precision's search as bench.workloads.matmul_search.search runs it (the code itself, with a modelled kernel time and
    a search clock that advances by what each measurement timed plus REAL_OVERHEAD_S). Not modelled: membw (4 STREAM
    kernels x at most 1 s / ~1 ms = ~4,000 samples a GPU), train and comm (tens to hundreds of steps or batches), the
    MSMF window's telemetry samples: together under 1% of the samples."""
    # here, not at the top: they import torch, which every other user of this module does without
    from bench.hardware.devices import DeviceFacts as _DeviceFacts
    from bench.measure import sampling as _sampling
    from bench.workloads import matmul_search as _ms

    names = list(precisions or _prec.DEFAULT_PRECISIONS["cuda"])
    names.sort(key=lambda n: n != "float32")
    for index in range(gpus):
        rng = _np.random.default_rng([seed, node, index])
        gpu_factor = 1 + 0.02 * rng.random()
        facts = _DeviceFacts(f"cuda:{index}", "cuda", H100, gpu_uuid(node, index), 50 * 2**20, "9.0", (), 132)
        device = {**_dc.asdict(facts), "isa_flags": []}
        f32: dict = {}
        for name in names:
            for fast in (False, True) if name == "float8_e4m3" else (False,):
                now = [0.0]
                peak = _peaks.vendor_peak(H100, name)

                def measure(spec, dev, policy, *, peak=None, backend="torch", telemetry=None, sustained=False,
                            _rng=rng, _now=now, _gf=gpu_factor, _dev=device):  # fmt: skip
                    shape = (spec.m, spec.n, spec.k)
                    sampled = _sampling.collect(_EventTimer(_rng, real_kernel_s(shape, spec.precision, _gf)),
                                                lambda: None, policy)  # fmt: skip
                    _now[0] += sum(sampled.warmup_s) + sum(sampled.samples_s) + REAL_OVERHEAD_S
                    details: dict = {"backend": backend}
                    if sustained:
                        details["timing"] = (
                            "back-to-back: iterations timed at their boundaries, gaps included, no L2 flush"
                        )
                    return _Measurement(workload="matmul", spec=spec.to_dict(), device=dict(_dev), status="ok",
                                        work_per_iteration=spec.flops, work_unit="FLOP", timer="cuda_event",
                                        warmup_s=sampled.warmup_s, samples_s=sampled.samples_s,
                                        summary=_figures.matmul_summary(sampled.samples_s, spec.flops,
                                                                        peak.tflops if peak else None),
                                        validity={"check": "freivalds", "passed": True},
                                        peak=peak.to_dict() if peak else None, details=details,
                                        start_utc="2026-12-07T10:00:00.000000Z", end_utc="2026-12-07T10:00:01.000000Z")  # fmt: skip

                config = _ms.SearchConfig("auto", _ms.BUDGET_S["cuda"], _ms.WINDOW_S["cuda"],
                                          settle_s=_ms.SETTLE_S["cuda"], fast_accum=fast)  # fmt: skip
                itemsize = _prec.get(name).itemsize
                candidates = _ms.gpu_candidates(132, itemsize, int(REAL_MEMORY_BYTES * _ms.MEMORY_SHARE))
                for m in _ms.search(facts, name, config, candidates, peak=peak, float32_tflops=f32.get("rate"),
                                    float32_rates=f32.get("by_shape"), clock=lambda n=now: n[0], measure=measure):  # fmt: skip
                    if name == "float32" and m.status == "ok" and m.summary:
                        shape, rate = (m.spec["m"], m.spec["n"], m.spec["k"]), m.summary["tflops_median"]
                        by_shape = f32.setdefault("by_shape", {})
                        by_shape[shape] = max(by_shape.get(shape, 0.0), rate)
                        if m.details["search"].get("mamf"):
                            f32["rate"] = rate
                    yield m


def real_node_lines(node: int, key: Ed25519PrivateKey | None, gpus: int = 8, *, seed: int = 26,
                    precisions: tuple[str, ...] | None = None) -> _Iterator[bytes]:  # fmt: skip
    """real_node_measurements as the version-3 stream `bench run` writes, line by line (header, one signed record per
    measurement, end record): a file of tens of MB, written without holding it whole."""
    gpu_rows = [{"index": i, "name": H100, "uuid": gpu_uuid(node, i), "memory_bytes": REAL_MEMORY_BYTES,
                 "unavailable": {}} for i in range(gpus)]  # fmt: skip
    report = _NodeReport(run_id=f"real-{node}", tool={"name": "bench", "version": "0.1.0", "git_commit": None},
                         command_line=["bench", "run", "configs/node.toml"], config={},
                         inventory={"host": {"hostname": f"node{node:05d}", "fingerprint": f"host-{node}",
                                             "unavailable": {}}, "nvml": {"available": True, "gpus": gpu_rows}},
                         start_utc="2026-12-07T10:00:00.000000Z", end_utc="2026-12-07T11:00:00.000000Z")  # fmt: skip
    chain = _records.Chain(key)
    yield chain.line(_records.header(report, chain.signer()))[0]
    for m in real_node_measurements(node, gpus, seed=seed, precisions=precisions):
        yield chain.line({"type": _records.MEASUREMENT, "measurement": m.to_record()})[0]
    yield chain.line({"type": _records.END, "end_utc": report.end_utc, "interrupted": False})[0]


def real_node_stream(node: int, key: Ed25519PrivateKey | None, gpus: int = 8, **kw: object) -> bytes:
    """real_node_lines joined: the whole file's bytes."""
    return b"".join(real_node_lines(node, key, gpus, **kw))  # type: ignore[arg-type]


__all__ += ["real_kernel_s", "real_node_lines", "real_node_measurements", "real_node_stream"]
