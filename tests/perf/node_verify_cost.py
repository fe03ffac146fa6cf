"""Benchmark, not a test: the CPU cost of verifying one signed 8-GPU node report, as bench aggregate's workers verify
each input (bench.report.pool._examine: read, strict parse, signature and digest, model checks, re-derivation, device
rows), for a version-2 document and for the version-3 record stream bench run writes.

    .venv/bin/python tests/perf/node_verify_cost.py [--nodes 500] [--passes 3] [--gpus 8]

The reports (tests/report/fleet.py: node_report and node_stream of the same nodes, one fixed key) are written to a
temporary folder first (not timed). Then, in this one process, `--passes` passes over them: CPU time (process_time)
per report of the whole check, and of its parts timed one by one in a separate pass (read and parse, and of it the
file read and the fast parse with its canonical check; signature,
chain and digest; the model's validation, samples decoded; the checks and re-derivation; the device rows). Issue 26
asks <= 0.6-0.7 ms of CPU per report on this machine (100,000 reports aggregated in 45 s on 2 cores).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench import registry
from bench.model import intake, sign, written
from bench.model.reports import NodeReport
from bench.report import pool
from bench.report import verify as v
from bench.report.devices import device_rows
from bench.report.store import dumps

# tests.report.synthetic, not fleet: fleet's real-node builder imports torch (+186 MB in every process)
from tests.report.synthetic import NOW, node_report, node_stream


def _parts(paths: list[Path]) -> dict[str, float]:
    """CPU seconds per report of each part of the check, each timed over every report in turn."""
    t = time.process_time
    out: dict[str, float] = {}
    start = t()
    raws = [intake.read_bytes(p) for p in paths]
    read = t() - start
    start = t()
    # every report read (a list: a generator would stop at the first one not taken): a version-2 document's fast read
    taken = all([written.parse_node_report(raw) is not None for raw in raws])  # noqa: C419
    fast = t() - start
    del raws
    start = t()
    docs = [intake.read_json(p) for p in paths]
    out["read and strict parse"] = t() - start
    # of which (timed apart, over the same files): the file's bytes read, and msgspec's parse with the canonical check
    if taken:
        out["(of which file read"], out["msgspec parse and canonical check)"] = read, fast
    else:
        out["(of which file read)"] = read
    start = t()
    for d in docs:
        sign.inspect(d.data, d.chain, d.signed_body)
    out["signature, chain and digest"] = t() - start
    start = t()
    reports = [NodeReport.from_dict(d.data) for d in docs]
    out["model (fields, samples decoded)"] = t() - start
    start = t()
    examined = [v.examine(d.data, now=NOW, policy=False, chain=d.chain, body=d.signed_body) for d in docs]
    out["checks and re-derivation"] = (
        t() - start - out["signature, chain and digest"] - out["model (fields, samples decoded)"]
    )
    start = t()
    for (_, name, report), _r in zip(examined, reports, strict=True):
        device_rows(report, name or "")
    out["device rows"] = t() - start
    return {k: x / len(paths) for k, x in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=500)
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--gpus", type=int, default=8)
    args = ap.parse_args()
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"node_verify_cost").digest())
    tmp = Path(tempfile.mkdtemp(prefix="bench-node-cost-"))
    forms = {"v2 document": tmp / "v2", "v3 record stream": tmp / "v3"}
    for folder in forms.values():
        folder.mkdir()
    for n in range(args.nodes):
        tflops = [700.0 + (n * 7 + g) % 11 for g in range(args.gpus)]
        (forms["v2 document"] / f"node{n:06d}.json").write_text(dumps(node_report(n, tflops, key)))
        (forms["v3 record stream"] / f"node{n:06d}.json").write_bytes(node_stream(n, tflops, key))
    registry.workloads()
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min) on {os.cpu_count()} CPUs"
    )
    for form, folder in forms.items():
        paths = sorted(folder.glob("*.json"))
        items = [(p.name, p) for p in paths]
        [pool._examine(item, now=NOW) for item in items[:20]]  # warm: imports, peak table
        per = []
        for _ in range(args.passes):
            start = time.process_time()
            with pool.frozen_heap():
                done = [pool._examine(item, now=NOW) for item in items]
            per.append((time.process_time() - start) / len(items) * 1e3)
            if any(entry["status"] != "counted" for entry, _ in done):
                raise SystemExit(f"{form}: a report was refused")
        with pool.frozen_heap():
            parts = _parts(paths)
        size = sum(p.stat().st_size for p in paths) / len(paths) / 1024
        print(f"{form} ({args.gpus} GPUs, {size:.0f} kB): {' '.join(f'{x:.3f}' for x in per)} ms of CPU per report "
              f"({args.passes} passes over {len(items)}; min {min(per):.3f}); parts: "
              + ", ".join(f"{k} {x * 1e3:.3f}" for k, x in parts.items()))  # fmt: skip
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
