"""The one report-builder of the tests: node reports built the way bench builds them (bench.figures for every
summary, bench.model.sign for the signature), with chosen raw samples.

Small CPU reports for the pure functions over reports (compare, gates, exports): matmul, report, every_workload.
Signed GPU fleets for verify and aggregate: gpu_measurement, node_report, resign (tests.report.fleet re-exports them).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import random

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import figures
from bench.hardware import peaks
from bench.model import records, sign
from bench.model.reports import Measurement, NodeReport

HOST = {"hostname": "node-a", "fingerprint": "fp-a", "cpu_model": "Test CPU", "architecture": "x86_64",
        "physical_cores": 2, "torch_version": "2.13.0+cpu", "torch_cuda": None, "torch_blas": "mkl"}  # fmt: skip
DEVICE = {"id": "cpu", "kind": "cpu", "name": "Test CPU", "uuid": "fp-a"}
N = 512


def samples(median_s: float, n: int = 30, spread: float = 0.01, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [median_s * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def matmul_measurement(n: int, precision: str, samples_s: list[float], device: dict, *, status: str = "ok",
                       emulated: bool = False, role: str | None = None, mamf: bool = False, peak: peaks.Peak | None = None,
                       **fields: object) -> Measurement:  # fmt: skip
    """An n x n x n matmul measured as bench records one: 2n^3 FLOPs, its summary from the samples (against the peak
    when one is given), the Freivalds verdict its status implies, and a search role when given."""
    flops = figures.matmul_flops(n, n, n)
    details: dict = {"backend": "torch"}
    if role:
        details["search"] = {"role": role, "mode": "auto", "mamf": mamf}
    return Measurement(workload="matmul", spec={"m": n, "n": n, "k": n, "precision": precision}, device=dict(device),
                       status=status, reason=None if status == "ok" else "product check failed", emulated=emulated,
                       work_per_iteration=flops, work_unit="FLOP", samples_s=samples_s,
                       summary=figures.matmul_summary(samples_s, flops, peak.tflops if peak else None),
                       validity={"check": "freivalds", "passed": status == "ok"},
                       peak=peak.to_dict() if peak else None, details=details, **fields)  # fmt: skip


def matmul(precision: str, samples_s: list[float], *, status: str = "ok", emulated: bool = False,
           role: str | None = None, mamf: bool = False) -> Measurement:  # fmt: skip
    return matmul_measurement(N, precision, samples_s, DEVICE, status=status, emulated=emulated, role=role, mamf=mamf,
                              timer="perf_counter")  # fmt: skip


def report(measurements: list[Measurement], *, host: dict | None = None, run_id: str = "run-a",
           end: str | None = "2026-11-28T10:05:00.000000Z", interrupted: bool = False) -> NodeReport:  # fmt: skip
    return NodeReport(run_id=run_id, tool={"name": "bench", "version": "0.1.0"}, command_line=["bench", "run"], config={},
                      inventory={"host": copy.deepcopy(host or HOST), "nvml": {"available": False, "gpus": []}},
                      start_utc="2026-11-28T10:00:00.000000Z", end_utc=end, interrupted=interrupted,
                      measurements=measurements)  # fmt: skip


GPU_UUIDS = ("GPU-6f0e1c2a-1111-2222-3333-444455556666", "GPU-6f0e1c2a-1111-2222-3333-777788889999")


def gpu_device(index: int) -> dict:
    return {"id": f"cuda:{index}", "kind": "cuda", "name": "NVIDIA H100 80GB HBM3", "uuid": GPU_UUIDS[index],
            "l2_cache_bytes": 50 << 20, "compute_capability": "9.0", "sm_count": 132, "mig": False}  # fmt: skip


def gpu_report(measurements: list[Measurement]) -> NodeReport:
    """A two-GPU node's report: NVML inventory with indices, PCI bus ids and serials (what Prometheus labels join on)."""
    r = report(measurements)
    r.inventory["nvml"] = {"available": True, "driver_version": "550.54.15", "cuda_driver_version": "12.4", "gpus": [
        {"index": i, "name": "NVIDIA H100 80GB HBM3", "uuid": u, "serial": f"16521234567{i}",
         "pci_bus_id": f"00000000:{0x18 + i:02X}:00.0"} for i, u in enumerate(GPU_UUIDS)]}  # fmt: skip
    return r


def on_gpu(m: Measurement, index: int) -> Measurement:
    m.device = gpu_device(index)
    return m


def simple(
    workload: str, spec: dict, summary: dict, details: dict | None = None, device: dict | None = None
) -> Measurement:
    """A measured entry of another workload (train, membw, comm) with the summary fields the metrics read."""
    s = samples(0.01)
    return Measurement(workload=workload, spec=spec, device=dict(device or DEVICE), status="ok", timer="perf_counter",
                       work_per_iteration=1, work_unit="FLOP",
                       samples_s=s, summary={"median_s": 0.01, "iqr_s": 0.0001, "n": len(s), **summary},
                       details=details or {})  # fmt: skip


def every_workload(device: dict | None = None) -> list[Measurement]:
    """One measurement of each metric bench exports: fixed matmul, MAMF, MSMF, train, membw, comm."""
    fixed = matmul("bfloat16", samples(0.002))
    final = matmul("bfloat16", samples(0.0015), role="final", mamf=True)
    final.summary["efficiency"] = 0.6
    msmf = matmul("bfloat16", samples(0.0015), role="msmf")
    msmf.details["msmf"] = {"tflops": 170.0, "min_bucket_tflops": 160.0, "series": []}
    out = [
        fixed,
        final,
        msmf,
        simple(
            "train",
            {"model": "gpt", "preset": "small", "precision": "bfloat16"},
            {"tflops_median": 120.0, "items_per_s": 50000.0, "mfu": 0.4},
        ),
        simple(
            "membw",
            {"kernel": "triad", "elements": 1 << 27, "dtype": "float64"},
            {"gbps_median": 3000.0, "gbps_best": 3100.0},
        ),
        simple(
            "comm", {"op": "all_reduce", "bytes": 1 << 20, "world_size": 8}, {"busbw_gbps": 300.0, "algbw_gbps": 170.0}
        ),
    ]
    for m in out:
        if device:
            m.device = dict(device)
    return out


# --- signed GPU fleets (verify, aggregate, disclosure) ---------------------------------------------------------------

H100 = "NVIDIA H100 80GB HBM3"
SHAPE = 8192


def gpu_uuid(node: int, index: int) -> str:
    return "GPU-" + hashlib.sha256(f"{node}/{index}".encode()).hexdigest()[:32]


def gpu_measurement(node: int, index: int, tflops: float, precision: str = "bfloat16", samples: int = 20,
                    role: str | None = "final", model: str = H100) -> Measurement:  # fmt: skip
    base = figures.matmul_flops(SHAPE, SHAPE, SHAPE) / (tflops * 1e12)
    # real timings never repeat across devices: a tiny per-device factor keeps clones (identical samples) detectable
    jitter = 1 + 1e-10 * (1 + node * 64 + index)
    samples_s = [base * jitter * (1 + 0.001 * ((i * 7) % 5 - 2)) for i in range(samples)]
    device = {"id": f"cuda:{index}", "kind": "cuda", "name": model, "uuid": gpu_uuid(node, index),
              "l2_cache_bytes": 50 * 2**20, "compute_capability": "9.0", "isa_flags": []}  # fmt: skip
    return matmul_measurement(SHAPE, precision, samples_s, device, role=role, mamf=True,
                              peak=peaks.vendor_peak(model, precision), timer="cuda_event", warmup_s=[base * 1.2, base],
                              start_utc="2026-11-28T10:00:00.000000Z", end_utc="2026-11-28T10:00:05.000000Z")  # fmt: skip


def gpu_node(node: int, tflops: list[float], *, end: str = "2026-11-28T10:05:00.000000Z",
             gpu_indices: list[int] | None = None, precision: str = "bfloat16") -> NodeReport:  # fmt: skip
    """The (unsigned) report of node `node` with one GPU per entry of `tflops` (its bf16 MAMF)."""
    indices = gpu_indices or list(range(len(tflops)))
    gpus = [{"index": i, "name": H100, "uuid": gpu_uuid(node, i), "memory_bytes": 85520809984, "unavailable": {}}
            for i in indices]  # fmt: skip
    return NodeReport(
        run_id=f"run-{node}",
        tool={"name": "bench", "version": "0.1.0", "git_commit": None},
        command_line=["bench", "matmul", "--search", "auto"],
        config={},
        inventory={
            "host": {"hostname": f"node{node:05d}", "fingerprint": f"host-{node}", "unavailable": {}},
            "nvml": {"available": True, "gpus": gpus},
        },
        start_utc=(dt.datetime.fromisoformat(end) - dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        end_utc=end,
        measurements=[gpu_measurement(node, i, t, precision) for i, t in zip(indices, tflops, strict=True)],
    )


def node_report(node: int, tflops: list[float], key: Ed25519PrivateKey, *, end: str = "2026-11-28T10:05:00.000000Z",
                gpu_indices: list[int] | None = None, precision: str = "bfloat16") -> dict:  # fmt: skip
    """A signed report of node `node` with one GPU per entry of `tflops` (its bf16 MAMF), as a version-2 document."""
    data = gpu_node(node, tflops, end=end, gpu_indices=gpu_indices, precision=precision).to_dict()
    data["signature"] = sign.sign(data, key)
    return data


def node_stream(node: int, tflops: list[float], key: Ed25519PrivateKey | None, *,
                end: str = "2026-11-28T10:05:00.000000Z", gpu_indices: list[int] | None = None,
                precision: str = "bfloat16") -> bytes:  # fmt: skip
    """The same report as node_report, as the file `bench run` writes: a version-3 stream of signed records
    (bench.report.store.ReportWriter's lines: header, one record per measurement, end record)."""
    report = gpu_node(node, tflops, end=end, gpu_indices=gpu_indices, precision=precision)
    chain = records.Chain(key)
    lines = [chain.line(records.header(report, chain.signer()))[0]]
    lines += [chain.line({"type": records.MEASUREMENT, "measurement": m.to_record()})[0] for m in report.measurements]
    lines.append(chain.line({"type": records.END, "end_utc": report.end_utc, "interrupted": report.interrupted})[0])
    return b"".join(lines)


def resign(data: dict, key: Ed25519PrivateKey) -> dict:
    data = {k: v for k, v in data.items() if k != "signature"}
    data["signature"] = sign.sign(data, key)
    return data


NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def gate_folders(tmp_path, base: list[NodeReport], cand: list[NodeReport]) -> tuple[str, str]:
    """`bench gate`'s two folders under tmp_path (base/, cand/), each run's report.json in its run id's folder, as
    `bench run` leaves them: the baseline's and the candidate's paths."""
    from bench.report.store import dumps

    for side, runs in (("base", base), ("cand", cand)):
        for r in runs:
            (tmp_path / side / r.run_id).mkdir(parents=True)
            (tmp_path / side / r.run_id / "report.json").write_text(dumps(r.to_dict()))
    return str(tmp_path / "base"), str(tmp_path / "cand")
