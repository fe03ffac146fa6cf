"""Benchmark, not a test: aggregate and verify a synthetic fleet of signed node reports.

    .venv/bin/python tests/perf/aggregate_fleet.py [--nodes 10000] [--gpus 8] [--format v3|v2]

Each node report (a version-3 record stream, as `bench run` writes it; --format v2: a version-2 document) holds one H100 bf16 MAMF measurement per GPU (20 raw samples each), signed with one key, as
tests/report/fleet.py builds them, and is written to its own report.json in a temporary directory (not counted).
Then, as `bench aggregate DIR` and `bench verify capacity.json --reports DIR` do: aggregate the files (each read and
verified in a worker: signature, re-derivation, peaks, inventory) and sign the capacity report; then verify the
capacity report by recomputing it from every file in the directory.
Goal (issue: verifiable capacity): each under 20 s for 10,000 reports on a 2-core machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.model import sign
from bench.report import aggregate as agg
from bench.report.store import dumps

# tests.report.synthetic, not fleet: fleet's real-node builder imports torch (+186 MB in every process)
from tests.report.synthetic import NOW, node_report, node_stream


def _build(args: tuple[bytes, int, int, int, Path, str]) -> None:
    """Write nodes start..stop as DIR/nodeNNNNN/report.json (in a worker: the timed process never holds the fleet)."""
    pem, start, stop, gpus, directory, form = args
    key = load_pem_private_key(pem, password=None)
    for n in range(start, stop):
        path = directory / f"node{n:05d}" / "report.json"
        path.parent.mkdir()
        tflops = [700.0 + (n * 7 + g) % 11 for g in range(gpus)]
        if form == "v3":  # the signed record stream `bench run` writes
            path.write_bytes(node_stream(n, tflops, key))
        else:
            path.write_text(dumps(node_report(n, tflops, key)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--format", choices=("v2", "v3"), default="v3",
                    help="node reports as the version-3 record streams bench run writes (the default), or as "
                    "version-2 documents")  # fmt: skip
    args = ap.parse_args()
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    step = 250
    chunks = [(pem, s, min(s + step, args.nodes), args.gpus, tmp, args.format) for s in range(0, args.nodes, step)]
    with concurrent.futures.ProcessPoolExecutor() as pool:
        list(pool.map(_build, chunks))
    files = sorted(tmp.rglob("report.json"))
    built = time.perf_counter() - t0
    form = "version-3 record streams, as bench run writes them" if args.format == "v3" else "version-2 documents"
    print(f"wrote {len(files)} signed node reports ({form}, --format {args.format}; {args.gpus} GPUs each) under {tmp} "
          f"in {built:.1f} s (not counted)")  # fmt: skip

    t0 = time.perf_counter()
    cap = agg.aggregate([(str(f), f) for f in files], now=NOW)
    cap["signature"] = sign.sign(cap, key)
    aggregated = time.perf_counter() - t0
    counted = sum(i["status"] == "counted" for i in cap["inputs"])
    total = cap["totals"][0]
    print(f"aggregate (verifies each report): {aggregated:.1f} s; {counted} counted, {total['devices']} GPUs, "
          f"{total['mamf_pflops']:.1f} PFLOPS bf16 measured")  # fmt: skip

    t0 = time.perf_counter()
    findings = agg.verify_capacity(cap, [(str(p), p) for p in sorted(tmp.rglob("*.json"))])
    verified = time.perf_counter() - t0
    print(f"verify capacity report (recompute from all node reports): {verified:.1f} s; findings: {findings or 'none'}")
    print(f"each under 20 s is the goal: aggregate {aggregated:.1f} s, recompute-verify {verified:.1f} s")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
