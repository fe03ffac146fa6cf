"""Benchmark, not a test: how tight a proof is. Runs an honest challenge round on this machine's CPU (issue, answer,
collect by the auditor's clock, verify) and prints proven bound / MAMF for float32 and bfloat16, then a cost model
that projects the same ratio for an H100 from each phase's cost per element.

    .venv/bin/python tests/perf/proof_ratio.py [--n 4096] [--products 2] [--dtype float32 bfloat16]

MAMF here is the best of a few timed products of the same n and dtype on the same cores, measured right before the
round (so the machine's load at the time affects both alike; the load average is printed).

Cost model (printed with its inputs). Per product of size n, on a GPU the node's window holds:
    generate   2 n^2 elements on the device: GEN_PASSES elementwise passes of 4-byte words, read and written, at the
               HBM bandwidth (bench's peak table has no memory rates; H100 SXM: 3.35 TB/s, NVIDIA's datasheet)
    multiply   2 n^3 / MAMF, MAMF = MAMF_OF_PEAK x the dense peak in bench/hardware/peaks.toml (bench's own table)
    copy       n^2 x itemsize over PCIe from device to pageable host memory at PCIE_GBS
    hash       n^2 x itemsize of SHA-256 at this machine's measured rate per core x HOST_CORES_PER_GPU
The node overlaps hashing product i with generating, multiplying and copying product i + 1 (node.compute_all). So
with p products and s = generate + multiply + copy the window is s + (p - 1) max(s, hash) + hash, and proven / MAMF
= p multiply / window. For comparison it also prints the ratio with the generator fused into one kernel and the copy
on a second stream (neither is done): three stages, the slowest of compute, copy and hash sets the pace.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import hashlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import challenge as chl
from bench.hardware import peaks
from bench.model import keys
from bench.report.store import dumps, write_atomic

#: Elementwise passes per generated element (bench.challenge.generator: the xor of the line keys, lowbias32's 11 ops,
#: the exponent, significand and sign ops, the cast), each reading and writing 4 bytes.
GEN_PASSES = 24
HBM_TBS = 3.35
PCIE_GBS = 20.0
HOST_CORES_PER_GPU = 14  # an 8-GPU node with two 56-core CPUs
MAMF_OF_PEAK = 0.8
#: The collector's polling interval in the round (seconds).
POLL_S = 0.05


def mamf(n: int, dtype: str, reps: int = 3) -> float:
    """Best FLOP/s of `reps` products of n x n operands in `dtype` on this CPU."""
    a = torch.randn(n, n).to(getattr(torch, dtype))
    a @ a
    best = min(_timed(lambda: a @ a) for _ in range(reps))
    return 2 * n**3 / best


def _timed(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def honest_round(n: int, products: int, dtype: str) -> tuple[float, dict[str, float]]:
    """(proven FLOP/s, seconds per phase of the node's own products) of one honest round on this CPU."""
    auditor, node_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    auditor_id = keys.key_id(keys.raw_public(auditor.public_key()))
    node_id = keys.key_id(keys.raw_public(node_key.public_key()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        drop = tmp / "drop"
        drop.mkdir()
        device = {"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "proof-ratio-host"}
        inventory = {"host": {"hostname": "node", "fingerprint": device["uuid"], "physical_cores": os.cpu_count()}}
        chl.warm(device)
        data = chl.issue(auditor, dtype=dtype, n=n, products=products, window=dt.timedelta(hours=1), nodes=None)
        path = tmp / "challenge.json"
        write_atomic(path, dumps(data))
        ch = chl.load_challenge(path)
        # the collector polls while the node answers (every POLL_S, as `challenge collect` does), so the arrival is
        # when the commitment was written, not after the untimed reveal
        receipts: list = []
        seen: dict = {}
        done = threading.Event()

        def collect() -> None:
            while not done.is_set() or not receipts:
                receipts.extend(chl.scan(drop, seen, lambda: dt.datetime.now(dt.UTC), ch, trusted={node_id},
                                         auditor=auditor_id))  # fmt: skip
                time.sleep(POLL_S)

        collector = threading.Thread(target=collect)
        collector.start()
        chl.answer(ch, "node", inventory, [device], drop, node_key)
        done.set()
        collector.join()
        write_atomic(tmp / "receipts.json", dumps(chl.receipts_doc(ch, receipts, auditor)))
        verdict = chl.verify(path, drop, tmp / "receipts.json", {node_id}, auditor=auditor_id)
        assert verdict.fleet["verified_flops"] == products * 2 * n**3, verdict.findings
        proven = verdict.fleet["gflops_lower_bound"] * 1e9
    # each phase alone, for the cost model
    gen = _timed(lambda: chl.operand(ch.nonce, "node", "x", 0, "A", n, dtype, 2))
    a = chl.operand(ch.nonce, "node", "x", 0, "A", n, dtype, 2)
    c = a @ a
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        hash_all = _timed(lambda: chl.merkle_root(chl.row_bytes(c), pool))
    return proven, {"generate_s_per_elem": gen / n**2, "hash_s_all_cores": hash_all}


def projected_h100(dtype: str, n: int, products: int, hash_rate_core: float) -> tuple[float, dict[str, float]]:
    dev = type("Device", (), {"name": "NVIDIA H100 80GB HBM3", "mig": False, "sm_count": None})()
    peak = peaks.device_peak(dev, dtype)
    item = torch.tensor([], dtype=getattr(torch, dtype)).element_size()
    t = {"generate": 2 * n * n * GEN_PASSES * 8 / (HBM_TBS * 1e12),
         "multiply": 2 * n**3 / (MAMF_OF_PEAK * peak.tflops * 1e12),
         "copy": n * n * item / (PCIE_GBS * 1e9),
         "hash": n * n * item / (hash_rate_core * HOST_CORES_PER_GPU)}  # fmt: skip
    # as implemented: hashing product i overlaps generating, multiplying and copying product i + 1
    serial = t["generate"] + t["multiply"] + t["copy"]
    window = serial + (products - 1) * max(serial, t["hash"]) + t["hash"]
    # not implemented, for comparison: the generator fused into one kernel (one 4-byte write per element) and the copy
    # on a second stream: three pipeline stages (compute, copy, hash), the slowest sets the pace
    compute = 2 * n * n * 4 / (HBM_TBS * 1e12) + t["multiply"]
    pipelined = compute + (products - 1) * max(compute, t["copy"], t["hash"]) + t["copy"] + t["hash"]
    return products * t["multiply"] / window, {**t, "peak_tflops": peak.tflops,
                                               "pipelined_ratio": products * t["multiply"] / pipelined}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--products", type=int, default=2)
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--model-only", action="store_true", help="skip the CPU round: measure SHA-256 and project")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()}")
    data = os.urandom(64 << 20)
    hash_rate = len(data) / min(_timed(lambda: hashlib.sha256(data).digest()) for _ in range(3))
    print(f"SHA-256 on one core of this machine: {hash_rate / 1e9:.2f} GB/s")
    for dtype in [] if args.model_only else args.dtype:
        m = mamf(args.n, dtype)
        proven, phases = honest_round(args.n, args.products, dtype)
        print(f"{dtype} n={args.n} x{args.products} on this CPU: MAMF {m / 1e9:.1f} GFLOPS, proven {proven / 1e9:.1f} "
              f"GFLOPS -> proven/MAMF {proven / m:.2f}; generation {phases['generate_s_per_elem'] * 1e9:.2f} ns/element, "
              f"Merkle root of C on all cores "
              f"{phases['hash_s_all_cores']:.3f} s (load average now {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(f"\nProjected H100 SXM (HBM {HBM_TBS} TB/s, {GEN_PASSES} passes/element, PCIe {PCIE_GBS} GB/s pageable, "
          f"{HOST_CORES_PER_GPU} host cores at this CPU's SHA-256 rate, MAMF = {MAMF_OF_PEAK} x peak, 4 products):")  # fmt: skip
    for dtype in ("float32", "bfloat16"):
        for n in (8192, 16384, 32768):
            ratio, t = projected_h100(dtype, n, 4, hash_rate)
            print(f"  {dtype} n={n}: proven/MAMF {ratio:.2f} (per product: generate {t['generate'] * 1e3:.2f} ms, "
                  f"multiply {t['multiply'] * 1e3:.2f} ms at {MAMF_OF_PEAK} x {t['peak_tflops']:.0f} TFLOPS, copy "
                  f"{t['copy'] * 1e3:.2f} ms, hash {t['hash'] * 1e3:.2f} ms); fused and pipelined (not done) "
                  f"{t['pipelined_ratio']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
