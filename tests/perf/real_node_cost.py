"""Benchmark, not a test: what a real 8-GPU node report costs to store and to verify (issue 26, realnode).

    /tmp/venv-deb/bin/python tests/perf/real_node_cost.py [--nodes 3] [--gpus 8] [--passes 2] [--site 500] [--jobs 2]

The reports are tests/report/fleet.py's real_node_lines: what `bench run` (configs/node.toml) writes on an 8-H100 node,
every matmul search (7 precisions, fp8 twice) run by bench.workloads.matmul_search.search itself with a modelled H100
and CUDA-event-like timings (the assumptions are fleet.py's REAL_* constants). They are written once to
/tmp/realnode-cost-NODES-GPUS-DIGEST (not timed; DIGEST of fleet.py, matmul_search.py and sampling.py, which decide
them; reused while there).

Then, in this process: their size on disk, samples and records; the CPU per report of bench aggregate's check
(bench.report.pool._examine, --passes passes, process_time); its parts, each timed over every report in turn: the file
read, read and strict parse (records split, canonical check), signature chain and digest, the measurement model
(fields, samples decoded and digested), of that the samples decoded and digested alone, the summaries re-derived,
the rest of the checks, the device rows. Last, `bench aggregate --jobs JOBS` over the reports as a subprocess (wall
and its CPU), and that scaled to a --site node site on JOBS and on 32 cores (CPU per report x site / cores: the
reports are independent, so the scaling holds while the reports outnumber the cores; disk reads not included).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench import figures, registry
from bench.model import intake, sign
from bench.model import samples as codec
from bench.model.reports import NodeReport
from bench.report import pool
from bench.report import verify as v
from bench.report.devices import device_rows
from tests.report.fleet import NOW, real_node_lines

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"real_node_cost").digest())


def write(folder: Path, nodes: int, gpus: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(nodes):
        path = folder / f"node{n:06d}" / "report.json"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            part = path.with_suffix(".part")
            with part.open("wb") as f:
                for line in real_node_lines(n, KEY, gpus):
                    f.write(line)
            part.rename(path)
        paths.append(path)
    return paths


def parts(paths: list[Path]) -> tuple[dict[str, float], dict[str, int]]:
    """CPU seconds per report of each part of the check, each timed over every report in turn; and the counts."""
    t = time.process_time
    out: dict[str, float] = {k: 0.0 for k in ("file read", "read and strict parse", "signature, chain and digest",
                                              "model (fields, samples decoded and digested)",
                                              "(of which samples decoded and digested)", "summaries re-derived",
                                              "other checks", "device rows")}  # fmt: skip
    counts = {"measurements": 0, "samples": 0, "warm-up samples": 0}
    for p in paths:  # one at a time: a report's parsed form is ~10x its file
        start = t()
        intake.read_bytes(p, stream_max_bytes=intake.DEFAULT_MAX_STREAM_BYTES)
        out["file read"] += t() - start
        start = t()
        d = intake.read_json(p)
        out["read and strict parse"] += t() - start
        start = t()
        sign.inspect(d.data, d.chain, d.signed_body)
        sig = t() - start
        out["signature, chain and digest"] += sig
        start = t()
        report = NodeReport.from_dict(d.data)
        model = t() - start
        out["model (fields, samples decoded and digested)"] += model
        start = t()
        for r in d.data["measurements"]:
            codec.samples_digest(codec.decode(r["warmup"], "w"), codec.decode(r["samples"], "s"))
        out["(of which samples decoded and digested)"] += t() - start
        start = t()
        for m in report.measurements:
            figures.matmul_summary(m.samples_s, m.work_per_iteration, (m.peak or {}).get("tflops"))
        derived = t() - start
        out["summaries re-derived"] += derived
        start = t()
        _, name, checked = v.examine(d.data, now=NOW, policy=False, chain=d.chain, body=d.signed_body)
        out["other checks"] += t() - start - sig - model - derived
        start = t()
        device_rows(checked, name or "")
        out["device rows"] += t() - start
        counts["measurements"] += len(report.measurements)
        counts["samples"] += sum(len(m.samples_s) for m in report.measurements)
        counts["warm-up samples"] += sum(len(m.warmup_s) for m in report.measurements)
        del d, report, checked
    return {k: x / len(paths) for k, x in out.items()}, {k: x // len(paths) for k, x in counts.items()}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=3, help="reports generated and verified (each ~1/8 GB parsed)")
    ap.add_argument("--gpus", type=int, default=8)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--site", type=int, default=500, help="nodes of the site the figures are scaled to")
    ap.add_argument("--jobs", type=int, default=2, help="bench aggregate --jobs")
    args = ap.parse_args()
    # the reports are what the search code makes: cached under a digest of the files that decide them
    root = Path(__file__).resolve().parents[2]
    made = hashlib.sha256()
    for name in ("tests/report/fleet.py", "bench/workloads/matmul_search.py", "bench/measure/sampling.py"):
        made.update((root / name).read_bytes())
    folder = Path(f"/tmp/realnode-cost-{args.nodes}-{args.gpus}-{made.hexdigest()[:10]}")
    t0 = time.process_time()
    paths = write(folder, args.nodes, args.gpus)
    print(f"reports: {args.nodes} in {folder} ({time.process_time() - t0:.1f} s of CPU to write the new ones)")
    registry.workloads()
    print(f"load average before: {load()} (1, 5, 15 min) on {os.cpu_count()} CPUs; {sys.executable}")
    sizes = [p.stat().st_size for p in paths]
    items = [(str(p), p) for p in paths]
    pool._examine(items[0], now=NOW)  # warm: imports, peak table
    per = []
    for _ in range(args.passes):
        start = time.process_time()
        with pool.frozen_heap():
            done = [pool._examine(item, now=NOW)[0] for item in items]
        per.append((time.process_time() - start) / len(items))
        if any(entry["status"] != "counted" for entry in done):
            raise SystemExit(f"a report was refused: {[e.get('reasons') for e in done if e['status'] != 'counted']}")
    with pool.frozen_heap():
        split, counts = parts(paths)
    stored = counts["samples"] + counts["warm-up samples"]
    each = min(per)
    print(f"a report ({args.gpus} GPUs): {sum(sizes) / len(sizes) / 1e6:.1f} MB on disk, {counts['measurements']:,} "
          f"measurement records, {counts['samples']:,} timed + {counts['warm-up samples']:,} warm-up samples "
          f"({sum(sizes) / len(sizes) / stored:.2f} bytes a sample)")  # fmt: skip
    print(f"bench aggregate's check (pool._examine): {' '.join(f'{x:.3f}' for x in per)} s of CPU per report "
          f"({args.passes} passes over {len(items)}) = {stored / each / 1e6:.1f} million samples/s a core")  # fmt: skip
    print("parts (s of CPU per report): " + ", ".join(f"{k} {x:.3f}" for k, x in split.items()))
    key_file = folder / "aggregator.pem"
    key_file.write_bytes(KEY.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    key_file.chmod(0o600)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "bench", "aggregate", str(folder), "--jobs", str(args.jobs), "--key",
                          str(key_file), "-o", str(folder / "capacity.json")], check=False, capture_output=True,
                         text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if run.returncode:
        raise SystemExit(f"bench aggregate failed ({run.returncode}): {run.stderr[-2000:]}")
    print(f"bench aggregate --jobs {args.jobs} over {len(paths)} reports: {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"({cpu / len(paths):.2f} s a report, start-up and signing included); peak RSS of a child "
          f"{after.ru_maxrss / 1024:.0f} MiB")  # fmt: skip
    for cores in (args.jobs, 32):
        print(f"a {args.site}-node site on {cores} cores: {args.site * each / cores:.0f} s "
              f"({args.site} x {each:.2f} s / {cores}; check alone), {args.site * sum(sizes) / len(sizes) / 1e9:.0f} GB "
              f"read")  # fmt: skip
    print(f"load average after: {load()} (1, 5, 15 min)")


if __name__ == "__main__":
    main()
