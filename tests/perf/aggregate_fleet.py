"""Benchmark, not a test: aggregate and verify a synthetic fleet of signed node reports.

    .venv/bin/python tests/perf/aggregate_fleet.py [--nodes 10000] [--gpus 8]

Each node report holds one H100 bf16 MAMF measurement per GPU (20 raw samples each), signed with one key, as
tests/report/fleet.py builds them. Prints the time to build the fleet (not counted), to aggregate it (which verifies
every report: signature, re-derivation, peaks, inventory), and to verify the capacity report by recomputing it.
Goal (issue: verifiable capacity): aggregate + verify 10,000 reports in under 20 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.report import aggregate as agg
from bench.report import sign
from tests.report.fleet import NOW, node_report


def _build(args: tuple[bytes, int, int, int]) -> list[dict]:
    pem, start, stop, gpus = args
    key = load_pem_private_key(pem, password=None)
    return [node_report(n, [700.0 + (n * 7 + g) % 11 for g in range(gpus)], key) for n in range(start, stop)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--gpus", type=int, default=8)
    args = ap.parse_args()
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    t0 = time.perf_counter()
    step = 250
    chunks = [(pem, s, min(s + step, args.nodes), args.gpus) for s in range(0, args.nodes, step)]
    with concurrent.futures.ProcessPoolExecutor() as pool:
        reports = [r for chunk in pool.map(_build, chunks) for r in chunk]
    built = time.perf_counter() - t0
    print(f"built {len(reports)} signed node reports ({args.gpus} GPUs each) in {built:.1f} s (not counted)")

    t0 = time.perf_counter()
    cap = agg.aggregate([(f"node{i}", r) for i, r in enumerate(reports)], now=NOW)
    cap["signature"] = sign.sign(cap, key)
    aggregated = time.perf_counter() - t0
    counted = sum(i["status"] == "counted" for i in cap["inputs"])
    total = cap["totals"][0]
    print(f"aggregate (verifies each report): {aggregated:.1f} s; {counted} counted, {total['devices']} GPUs, "
          f"{total['mamf_pflops']:.1f} PFLOPS bf16 measured")  # fmt: skip

    t0 = time.perf_counter()
    by_digest = {i["digest"]: r for i, r in zip(cap["inputs"], reports, strict=True)}
    findings = agg.verify_capacity(cap, by_digest)
    verified = time.perf_counter() - t0
    print(f"verify capacity report (recompute from all node reports): {verified:.1f} s; findings: {findings or 'none'}")
    print(f"each under 20 s is the goal: aggregate {aggregated:.1f} s, recompute-verify {verified:.1f} s")


if __name__ == "__main__":
    main()
