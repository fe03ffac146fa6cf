"""Benchmark, not a test: persist and verify a synthetic eight-GPU node's run through the real writer and verifier.

    .venv/bin/python tests/perf/persist_node.py [--devices 8] [--measurements 1400] [--total 20000000]

The run (issue 22, item 1): each of `devices` H100s measures `measurements` matmul shapes, as the auto search does,
each in a 0.47 s slot, keeping min(10,000, 0.47 s / kernel time) samples; kernel times are log-uniform between the
shortest and longest the search tries, the shortest chosen so the run holds about `total` samples (20 million). The
samples look like CUDA event timings: a kernel's nanoseconds with 1% jitter, as float32 milliseconds (what
cudaEventElapsedTime returns) divided by 1000. Measurements reach the writer as a node's lanes deliver them: slot by
slot, each slot's devices in turn, their samples as Python lists (what the sampling loop makes).

Each measurement goes the way bench.runner's lanes take it: its device's worker process spools it (runner.Spool:
the samples encoded into the record form, one line written), sends it through a pipe (pickled), and the leader's
ReportWriter appends it (reusing the encoded blocks once their SHA-256 matches the samples). Modelled wall time:
devices run concurrently, so the run takes measurements x 0.47 s. Persist time is measured: in the leader, the seconds
spent inside ReportWriter.__init__, add() and finish() (canonical JSON, hashing, one Ed25519 signature per record,
write(); the fsyncs run on the writer's own thread and are reported apart), wall and CPU; in each worker, the CPU of
Spool.add (the device's own share). The machine is shared: CPU time is the steadier figure. Then the report is read and verified by the real verifier (bench verify's
library call), timed, and reported as samples per second. Worst-case bytes per sample encode 10,000 random-mantissa
samples in one binade (nothing below the exponent to compress).
Goals: persisting under 1% of the modelled wall time; at most 10 bytes per sample; verifying at 1 million samples/s.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench import figures, runner
from bench.hardware import peaks
from bench.model import intake, samples
from bench.model.reports import Measurement, NodeReport
from bench.report import verify as v
from bench.report.store import ReportWriter

SLOT_S = 0.47
MAX_SAMPLES = 10_000
H100 = "NVIDIA H100 80GB HBM3"


def uuid(d: int) -> str:
    return f"GPU-00000000-0000-0000-0000-{d:012d}"


def kernel_times(rng: np.random.Generator, count: int, total: int) -> np.ndarray:
    """`count` kernel times, log-uniform from the shortest (found by bisection so the samples add up to about
    `total`) to 20 ms."""
    u = rng.random(count)

    def samples_for(shortest: float) -> int:
        t = np.exp(np.log(shortest) + u * (np.log(20e-3) - np.log(shortest)))
        return int(np.minimum(MAX_SAMPLES, np.floor(SLOT_S / t)).sum())

    lo, hi = 1e-6, 20e-3
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (lo, mid) if samples_for(mid) < total else (mid, hi)
    return np.exp(np.log(hi) + u * (np.log(20e-3) - np.log(hi)))


def cuda_event_samples(rng: np.random.Generator, seconds: float, n: int) -> list[float]:
    ns = np.maximum(1, np.round(rng.normal(seconds * 1e9, seconds * 1e7, n)))
    return ((ns / 1e6).astype(np.float32).astype(np.float64) / 1000.0).tolist()


def measurement(rng: np.random.Generator, device: int, seconds: float, peak: float) -> Measurement:
    n = int(min(MAX_SAMPLES, SLOT_S // seconds))
    side = max(64, round((seconds * 700e12 / 2) ** (1 / 3) / 64) * 64)  # a shape that takes about `seconds`
    flops = figures.matmul_flops(side, side, side)
    timed = cuda_event_samples(rng, seconds, n)
    return Measurement(
        workload="matmul", spec={"m": side, "n": side, "k": side, "precision": "bfloat16"},
        device={"id": f"cuda:{device}", "kind": "cuda", "name": H100, "uuid": uuid(device),
                "l2_cache_bytes": 50 * 2**20, "compute_capability": "9.0", "sm_count": 132, "mig": False},
        status="ok", work_per_iteration=flops, work_unit="FLOP", timer="cuda_event",
        warmup_s=cuda_event_samples(rng, seconds * 1.1, 5), samples_s=timed,
        summary=figures.matmul_summary(timed, flops, peak), validity={"check": "freivalds", "passed": True},
        peak=peaks.vendor_peak(H100, "bfloat16").to_dict(),
        details={"backend": "torch", "search": {"role": "candidate", "mode": "auto", "phase": "coarse"}},
        start_utc="2026-12-06T10:00:00.000000Z", end_utc="2026-12-06T10:00:00.470000Z",
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=8)
    ap.add_argument("--measurements", type=int, default=1400, help="per device")
    ap.add_argument("--total", type=int, default=20_000_000, help="samples in the whole run (about)")
    args = ap.parse_args()
    rng = np.random.default_rng(22)
    peak = peaks.vendor_peak(H100, "bfloat16").tflops
    times = kernel_times(rng, args.devices * args.measurements, args.total).reshape(args.measurements, args.devices)
    gpus = [{"index": d, "name": H100, "uuid": uuid(d), "memory_bytes": 85520809984} for d in range(args.devices)]
    report = NodeReport(run_id="persist-node", tool={"name": "bench", "version": "0.1.0"},
                        command_line=["bench", "run"], config={},
                        inventory={"host": {"hostname": "node0", "fingerprint": "host-0"},
                                   "nvml": {"available": True, "gpus": gpus}},
                        start_utc="2026-12-06T10:00:00.000000Z")  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="bench-persist-"))
    key = Ed25519PrivateKey.generate()
    persist = cpu = 0.0
    t0, c0 = time.perf_counter(), time.thread_time()
    writer = ReportWriter(report, tmp, key)
    persist += time.perf_counter() - t0
    cpu += time.thread_time() - c0
    stored = warm = 0
    slowest = 0.0
    spools = [runner.Spool(tmp / "spools", "job", "host", d) for d in range(args.devices)]
    lane_cpu = [0.0] * args.devices
    for slot in range(args.measurements):
        for d in range(args.devices):
            m = measurement(rng, d, float(times[slot, d]), peak)
            stored += len(m.samples_s)
            warm += len(m.warmup_s)
            c0 = time.thread_time()
            spools[d].add(m)  # in the device's worker process: spooled, then sent through the lane's pipe
            lane_cpu[d] += time.thread_time() - c0
            m = pickle.loads(pickle.dumps(m, protocol=pickle.HIGHEST_PROTOCOL))
            t0, c0 = time.perf_counter(), time.thread_time()
            writer.add(m)
            took = time.perf_counter() - t0
            cpu += time.thread_time() - c0
            persist += took
            slowest = max(slowest, took)
    t0, c0 = time.perf_counter(), time.thread_time()
    writer.finish()
    persist += time.perf_counter() - t0
    cpu += time.thread_time() - c0
    writer.close()
    fsyncs, fsync_s = writer.syncer.fsyncs, writer.syncer.seconds
    rss_written = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall = args.measurements * SLOT_S
    size = writer.path.stat().st_size
    count = args.devices * args.measurements
    del writer, report

    t0, c0 = time.perf_counter(), time.process_time()
    data = intake.read_json(tmp / "report.json").data
    findings = v.verify_node_report(data)
    verify_s, verify_cpu = time.perf_counter() - t0, time.process_time() - c0
    bad = v.errors(findings)
    rss_verified = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    worst = (np.random.default_rng(5).integers(0, 1 << 52, MAX_SAMPLES, dtype=np.uint64)
             | np.uint64(0x3EF0000000000000)).view(np.float64)  # fmt: skip
    worst_bytes = len(json.dumps(samples.encode(worst))) / MAX_SAMPLES
    realistic = cuda_event_samples(np.random.default_rng(6), 20e-6, MAX_SAMPLES)
    realistic_bytes = len(json.dumps(samples.encode(realistic))) / MAX_SAMPLES

    print(f"run: {args.devices} devices x {args.measurements} measurements = {count} records, {stored:,} timed + "
          f"{warm:,} warm-up samples")  # fmt: skip
    print(f"modelled wall time: {args.measurements} slots x {SLOT_S} s (devices concurrent) = {wall:.0f} s")
    print(f"persist: {persist:.2f} s in all = {100 * persist / wall:.3f}% of the modelled wall time "
          f"(goal < 1%); {1e3 * persist / count:.3f} ms per record, slowest add {1e3 * slowest:.1f} ms; CPU time of the "
          f"adding thread {cpu:.2f} s = {100 * cpu / wall:.3f}%")  # fmt: skip
    print(f"each device's worker: spooling (encoding) its measurements took {max(lane_cpu):.2f} s of CPU at most = "
          f"{100 * max(lane_cpu) / wall:.3f}% of its time; all persisting CPU, workers and writer together: "
          f"{sum(lane_cpu) + cpu:.2f} s = {100 * (sum(lane_cpu) + cpu) / wall:.3f}% of the modelled wall time")  # fmt: skip
    print(f"fsync: {fsyncs} in {fsync_s:.2f} s, from the writer's own thread (the run does not wait for them); this "
          f"benchmark adds faster than a run does, so a real run fsyncs up to once a second: {wall:.0f} of them")  # fmt: skip
    print(
        f"file: {size / 1e6:.1f} MB = {size / (stored + warm):.2f} bytes per sample, all records included (goal <= 10)"
    )
    print(f"one block of 10,000 samples: {realistic_bytes:.2f} bytes/sample for 20 us CUDA-event timings, "
          f"{worst_bytes:.2f} for random mantissas (worst case)")  # fmt: skip
    print(f"verify: {verify_s:.2f} s = {(stored + warm) / verify_s / 1e6:.2f} million samples/s (goal >= 1); CPU "
          f"{verify_cpu:.2f} s = {(stored + warm) / verify_cpu / 1e6:.2f} million samples/s; errors: "
          f"{[f.code for f in bad] or 'none'}")  # fmt: skip
    print(f"peak memory (max RSS): {rss_written:.0f} MiB after writing, {rss_verified:.0f} MiB after verifying")
    shutil.rmtree(tmp, ignore_errors=True)
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
