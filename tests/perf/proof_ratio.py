"""Benchmark, not a test: how tight a proof is. Runs an honest challenge round on this machine's CPU (issue, answer,
collect by the auditor's clock, verify) and prints proven bound / MAMF for float32 and bfloat16, then a cost model
that projects the same ratio for an H100 from each phase's cost per element.

    .venv/bin/python tests/perf/proof_ratio.py [--n 4096] [--inner K ...] [--products 2] [--dtype float32 bfloat16]
        [--eager] [--no-fold] [--rounds 3]

(--products at K >= n; a round at a shorter K asks more, short_k_products.)

Each product is A (n x K) times B (K x n), K the challenge's inner dimension (default chl.default_inner: what
`challenge issue` writes: 2n for float32, folded in runs of 64 (bench.challenge.fold: the node computes each run
and adds them exactly), INNER_FACTOR x n capped for half precisions; float32 also runs at K = 2n unfolded (one
product, `--no-fold`: float32-accurate only), to show what the fold costs; the projection also prints K = n and the
uncapped factor, and float32's former default K = 64 unfolded). The node's generator is compiled
(generator.fuse, what `challenge answer`'s warm-up does) unless --eager. MAMF here is the best of a few timed products on the same cores, of both the square n x n
shape and the challenge's n x K x n. It is measured before the first round and again after each of --rounds honest
rounds (MAMF, round, MAMF, round, ..., MAMF): each round's ratio is its proven rate over the larger of the two MAMFs
measured either side of it, so that a round is compared with the machine of its own minute (the MAMF read 290-337
GFLOPS between runs minutes apart on this VM), never with a faster moment than the neighbouring ones. Printed: each
round's ratio, their median (the figure to quote) and their smallest, and the median against the best MAMF of the
whole run (the strictest reading). Each round also prints where its window went: each phase's calls, the time the
fold workers spent hashing C's rows, and each core's busy, idle and stolen time (/proc/stat) over the answer.

Cost model (printed with its inputs). Per product on a GPU the node's window holds:
    generate   n K + K n elements on the device. As implemented (eager torch ops): GEN_PASSES elementwise passes of
               4-byte words, read and written, at the HBM bandwidth (bench's peak table has no memory rates; H100 SXM:
               3.35 TB/s, NVIDIA's datasheet). Fused into one kernel (torch.compile; not done on a GPU yet): the larger
               of writing the elements once and GEN_INT_OPS integer ops each at INT32_TOPS
    multiply   2 n^2 K / MAMF, MAMF = MAMF_OF_PEAK x the dense peak in bench/hardware/peaks.toml (bench's own table)
    copy       n^2 x itemsize over PCIe from device to pageable host memory at PCIE_GBS
    hash       n^2 x itemsize of SHA-256 at this machine's measured rate per core x HOST_CORES_PER_GPU
The node overlaps hashing product i with generating, multiplying and copying product i + 1 (node.compute_all). So
with p products and s = generate + multiply + copy the window is s + (p - 1) max(s, hash) + hash, and proven / MAMF
= p multiply / window. Copy and hash grow with n^2, the product with n^2 K: K = c n makes them a 1/c share; the
generator grows with n K like the product, so only a faster generator (or a larger n) shrinks its share.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import challenge as chl
from bench.challenge import fold, generator, hostmem, node
from bench.challenge.protocol import FOLD, INNER_FACTOR
from bench.hardware import peaks
from bench.model import keys
from bench.report.store import dumps, write_atomic

#: Elementwise passes per generated element (bench.challenge.generator: the xor of the line keys, lowbias32's 11 ops,
#: the exponent, significand and sign ops, the cast), each reading and writing 4 bytes.
GEN_PASSES = 24
#: Integer ops per generated element in one fused kernel (the same ops, none of the passes' loads and stores), and an
#: H100 SXM's int32 rate: 132 SMs x 64 INT32 lanes x 1.98 GHz (NVIDIA's Hopper whitepaper), taken for every op.
#: Version 3 operands (bench.challenge.generator.paired_words) make two half-precision elements from one word: about
#: 17 ops a word, 9 an element; float32's one element a word costs about 18 (24 kept: masks and casts).
GEN_INT_OPS = {"float32": 24, "bfloat16": 9}
INT32_TOPS = 16.7
HBM_TBS = 3.35
PCIE_GBS = 20.0
HOST_CORES_PER_GPU = 14  # an 8-GPU node with two 56-core CPUs
MAMF_OF_PEAK = 0.8
#: The collector's polling interval in the round (seconds).
POLL_S = 0.05


#: Most products a round at a short K asks (each C stays in host memory until the reveal: 32 x 64 MiB at n = 4096).
SHORT_K_PRODUCTS = 32


def short_k_products(products: int, n: int, inner: int) -> int:
    """Products for a round at K < n: as many more as keep the round's FLOPs those of `products` at K = n, at most
    SHORT_K_PRODUCTS. An auditor asking float32's K = 64 would ask more products, so the round's fixed costs (the
    answer's start, the commitment, the collector's polling) stay a small share of the window, as at a long K."""
    return products if inner >= n else max(products, min(SHORT_K_PRODUCTS, products * n // inner))


def mamf(n: int, inner: int, dtype: str, reps: int = 3) -> float:
    """Best FLOP/s of `reps` products in `dtype` on this CPU, of the square n x n x n shape and of n x inner x n."""
    best = 0.0
    for k in sorted({n, inner}):
        a, b = torch.randn(n, k).to(getattr(torch, dtype)), torch.randn(k, n).to(getattr(torch, dtype))
        a @ b
        best = max(best, 2 * n * n * k / min(_timed(lambda a=a, b=b: a @ b) for _ in range(reps)))
        del a, b
    return best


def _timed(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


#: The node's phases timed inside the round (bench.challenge.node's functions, wrapped while it answers).
PHASES = {"operands": "generate A, B", "multiply": "multiply", "_hashed": "hash C", "commitment": "sign commitment"}
#: Called inside a phase (node.multiply's fold workers hash each finished block of C's rows into its leaves): summed
#: per product, not printed call by call (32 blocks a product at n = 4096).
INNER = {"leaves": "of which hashing C's rows in the fold workers (CPU seconds, summed over workers)"}


#: getrusage at the end of each commitment signed while timeline() runs (the reveal written after it is not in the window).
COMMITTED: list[resource.struct_rusage] = []
#: /proc/stat's per-core times at the end of each commitment signed while timeline() runs.
COMMITTED_CORES: list[dict[str, list[int]]] = []


def core_times() -> dict[str, list[int]]:
    """Each core's cumulative times from /proc/stat in clock ticks (user, nice, system, idle, iowait, irq, softirq,
    steal), by name (cpu0, cpu1, ...); empty where there is no /proc/stat."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return {}
    return {f[0]: [int(x) for x in f[1:9]] for f in (line.split() for line in lines)
            if f and f[0].startswith("cpu") and f[0] != "cpu"}  # fmt: skip


def print_cores(before: dict[str, list[int]], after: dict[str, list[int]]) -> None:
    """Each core's share of the answer busy (user + nice + system + irq + softirq: this process and any other),
    idle (idle + iowait) and stolen by the hypervisor (steal), from two core_times() readings."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parts = []
    for core in sorted(after, key=lambda c: int(c[3:])):
        d = [x - y for x, y in zip(after[core], before.get(core, after[core]), strict=True)]
        total = sum(d) or 1
        busy, idle, steal = d[0] + d[1] + d[2] + d[5] + d[6], d[3] + d[4], d[7]
        parts.append(f"{core} busy {busy / total:.0%} idle {idle / total:.0%} stolen {steal / total:.0%} "
                     f"({total / tick:.2f} s)")  # fmt: skip
    if parts:
        print("    per core over the answer (/proc/stat, every process): " + "; ".join(parts))


@contextlib.contextmanager
def timeline() -> Iterator[list[tuple[str, float, float]]]:
    """(phase, start, end) in Unix seconds of each call of node's PHASES while the block runs (compute_all looks
    them up in its module at each call, so the wrappers see every product)."""
    events: list[tuple[str, float, float]] = []
    saved = {name: getattr(node, name) for name in (*PHASES, *INNER)}

    def wrap(name, f):
        def timed(*args, **kwargs):
            start = time.time()
            try:
                return f(*args, **kwargs)
            finally:
                events.append((name, start, time.time()))
                if name == "commitment":  # the process's CPU time and page faults up to the commitment
                    COMMITTED.append(resource.getrusage(resource.RUSAGE_SELF))
                    COMMITTED_CORES.append(core_times())

        return timed

    for name, f in saved.items():
        setattr(node, name, wrap(name, f))
    try:
        yield events
    finally:
        for name, f in saved.items():
            setattr(node, name, f)


def print_timeline(events: list[tuple[str, float, float]], issued: float, arrival: float, flops: float,
                   rate: float) -> None:  # fmt: skip
    """Where the window went: each phase's calls from the issue time, the multiply's share of the window, and what
    no phase covered (answer start, polling)."""
    window = arrival - issued
    print(f"  window {window:.3f} s (issue to the commitment's arrival); the products at MAMF would take "
          f"{flops / rate:.3f} s")  # fmt: skip
    for name, label in PHASES.items():
        spans = sorted((s - issued, e - issued) for k, s, e in events if k == name)
        total = sum(e - s for s, e in spans)
        print(f"    {label}: {total:.3f} s in {len(spans)} call(s) = {total / window:.1%} of the window: "
              + ", ".join(f"{s:.3f}-{e:.3f}" for s, e in spans))  # fmt: skip
    for name, label in INNER.items():
        spans = [e - s for k, s, e in events if k == name]
        if spans:
            print(f"      {label}: {sum(spans):.3f} s in {len(spans)} blocks = {sum(spans) / window:.1%} of the "
                  f"window's wall on one core")  # fmt: skip
    last = max(e for _, _, e in events) - issued
    first = min(s for _, s, _ in events) - issued
    print(f"    before the first phase {first:.3f} s, after the last (commitment written, polled) "
          f"{window - last:.3f} s")  # fmt: skip


def honest_round(n: int, inner: int, products: int, dtype: str, fuse: bool, run: int | None = None,
                 mamf_rate: float = 1.0, reserve: bool = True,
                 phases: bool = True) -> tuple[float, dict[str, float]]:  # fmt: skip
    """(proven FLOP/s, seconds per phase of the node's own products) of one honest round on this CPU; prints where
    its window went (print_timeline; `mamf_rate` in FLOP/s for the products' time at MAMF). With `reserve`, the node
    maps and touches the host memory the round writes before the challenge is issued (node.host_bytes,
    hostmem.reserve: `challenge answer --reserve-mib`), as it compiles its kernels then. Without `phases` the
    phases are not timed alone afterwards (the cost model's inputs: one extra product) and the dict is empty."""
    auditor, node_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    auditor_id = keys.key_id(keys.raw_public(auditor.public_key()))
    node_id = keys.key_id(keys.raw_public(node_key.public_key()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        drop = tmp / "drop"
        drop.mkdir()
        device = {"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "proof-ratio-host"}
        inventory = {"host": {"hostname": "node", "fingerprint": device["uuid"], "physical_cores": os.cpu_count()}}
        if fuse:  # what warm(device) does for every dtype (`challenge answer`'s default): this one is enough here
            why = generator.fuse("cpu", dtype)
            print(f"  fused generator for {dtype} on the CPU: {why or 'in use'}")
        chl.warm(device, fuse=False)
        if reserve:
            shape = types.SimpleNamespace(n=n, inner=inner, dtype=dtype, products=products, fold=run)
            need = node.host_bytes(shape)  # type: ignore[arg-type]
            took = hostmem.reserve(need)
            print(f"  host memory reserved before the challenge (challenge answer --reserve-mib {need >> 20}): "
                  f"{took:.2f} s")  # fmt: skip
        if run:
            took = fold.prepare() or fold.kernel_name() + " in use"
            if fold.calibration():  # both kernels kept: prepare() measured them and kept the faster
                took += (
                    " (calibrated, CPU ms: "
                    + ", ".join(f"{k} {t * 1e3:.1f}" for k, t in fold.calibration().items())
                    + ")"
                )
            print(f"  fold kernel (bench.challenge.fold.prepare): {took}")
        data = chl.issue(auditor, dtype=dtype, n=n, products=products, window=dt.timedelta(hours=1), nodes=None,
                         inner=inner, fold=run)  # fmt: skip
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
        before = resource.getrusage(resource.RUSAGE_SELF)
        cores_before = core_times()
        with timeline() as events:
            chl.answer(ch, "node", inventory, [device], drop, node_key)
        after = COMMITTED[-1]
        done.set()
        collector.join()
        write_atomic(tmp / "receipts.json", dumps(chl.receipts_doc(ch, receipts, auditor)))
        verdict = chl.verify(path, drop, tmp / "receipts.json", {node_id}, auditor=auditor_id)
        hostmem.release()
        assert verdict.fleet["verified_flops"] == products * 2 * n * n * inner, verdict.findings
        proven = verdict.fleet["gflops_lower_bound"] * 1e9
        arrival = ch.issued.timestamp() + verdict.fleet["elapsed_s"]
        print_timeline(events, ch.issued.timestamp(), arrival, products * 2 * n * n * inner, mamf_rate)
        cpu = (after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime)
        answer_s = max(e for _, _, e in events) - min(s for _, s, _ in events)
        print(f"    the answer's CPU: {cpu[0]:.3f} s user + {cpu[1]:.3f} s system (page faults, zeroing) of "
              f"{os.cpu_count()} cores x {answer_s:.3f} s = {sum(cpu) / (os.cpu_count() * answer_s):.1%} busy; "
              f"{after.ru_minflt - before.ru_minflt} page faults; fold kernel {fold.kernel_name() if run else '-'}, "
              f"{torch.get_num_threads()} fold workers of 1 thread each; C hashed "
              f"{'in the fold workers' if run else 'by a pool of ' + str(os.cpu_count()) + ' threads'}")  # fmt: skip
        print_cores(cores_before, COMMITTED_CORES[-1])
    if not phases:
        return proven, {}
    # each phase alone, for the cost model
    gen = _timed(lambda: chl.operand(ch.nonce, "node", "x", 0, "A", n, dtype, ch.operands, inner=inner))
    a = chl.operand(ch.nonce, "node", "x", 0, "A", n, dtype, ch.operands, inner=inner)
    b = chl.operand(ch.nonce, "node", "x", 0, "B", n, dtype, ch.operands, inner=inner)
    c = a @ b if run is None else fold.product(a, b, run)
    del a, b
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        hash_all = _timed(lambda: chl.merkle_root(chl.row_bytes(c), pool))
    return proven, {"generate_s_per_elem": gen / (n * inner), "hash_s_all_cores": hash_all}


def folded_multiply(n: int, inner: int, run: int, flops_rate: float, fused_fold: bool) -> float:
    """Seconds of a folded product (bench.challenge.fold) on a GPU. As built (torch ops): each run is a GEMM of inner
    dimension `run` whose n^2 float32 partial goes through HBM (written, and read back by the next run's addmm_ with
    beta = 1: 8 bytes an element), so a run takes the larger of its FLOPs at the MAMF and that traffic; every
    fold.GROUP runs the partial is added into the float64 accumulator (read 4 + 8, write 8 bytes an element). A
    fused kernel (not built: float32 tile accumulators reset every `run` terms and added into float64 registers, one
    float64 add per element per run, 2 run FLOPs) would take the product's own time."""
    if fused_fold:
        return 2 * n * n * inner / flops_rate
    runs = inner // run
    per_run = max(2 * n * n * run / flops_rate, 8 * n * n / (HBM_TBS * 1e12))
    return runs * per_run + -(-runs // fold.GROUP) * 20 * n * n / (HBM_TBS * 1e12)


def projected_h100(dtype: str, n: int, inner: int, products: int, hash_rate_core: float,
                   fused: bool, run: int | None = None, fused_fold: bool = False) -> tuple[float, dict[str, float]]:  # fmt: skip
    """(proven / MAMF, seconds per phase of one product) on an H100 SXM, from the module docstring's model; `run`:
    folded (folded_multiply)."""
    dev = type("Device", (), {"name": "NVIDIA H100 80GB HBM3", "mig": False, "sm_count": None})()
    peak = peaks.device_peak(dev, dtype)
    item = torch.tensor([], dtype=getattr(torch, dtype)).element_size()
    elements = 2 * n * inner
    generate = (max(elements * item / (HBM_TBS * 1e12), elements * GEN_INT_OPS[dtype] / (INT32_TOPS * 1e12)) if fused
                else elements * GEN_PASSES * 8 / (HBM_TBS * 1e12))  # fmt: skip
    rate = MAMF_OF_PEAK * peak.tflops * 1e12
    t = {"generate": generate,
         "multiply": 2 * n * n * inner / rate if run is None else folded_multiply(n, inner, run, rate, fused_fold),
         "copy": n * n * item / (PCIE_GBS * 1e9),
         "hash": n * n * item / (hash_rate_core * HOST_CORES_PER_GPU)}  # fmt: skip
    # as implemented: hashing product i overlaps generating, multiplying and copying product i + 1
    serial = t["generate"] + t["multiply"] + t["copy"]
    window = serial + (products - 1) * max(serial, t["hash"]) + t["hash"]
    return products * 2 * n * n * inner / rate / window, {**t, "peak_tflops": peak.tflops}


def cpu_model() -> str:
    """This CPU's model name (/proc/cpuinfo), or 'unknown'. The VM behind these figures is not always the same CPU:
    from 17:14 UTC on 2026-12-07 an AMD EPYC whose two cores peak at about 231 GFLOPS of float32 FMA (a register-only
    loop, 115.6 GFLOPS a core), below the MAMF of 280-340 GFLOPS measured earlier that day (docs/proofs.md); a ratio
    is of the CPU it was measured on."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument(
        "--inner",
        type=int,
        nargs="+",
        default=None,
        help="K (default: `challenge issue`'s, chl.default_inner: float32 2n folded, and also 2n unfolded: the "
        "difference is what the fold costs)",
    )
    ap.add_argument("--no-fold", action="store_true", help="float32 unfolded only (`challenge issue --no-fold`)")
    ap.add_argument("--products", type=int, default=2)
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="honest rounds per dtype and K, each between two MAMF measurements (module docstring)",
    )
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument(
        "--eager",
        action="store_true",
        help="leave the CPU generator eager (`challenge answer` compiles "
        "it, generator.fuse, where it reproduces the eager bits)",
    )
    ap.add_argument(
        "--no-reserve",
        action="store_true",
        help="the node reserves no host memory before the challenge "
        "(`challenge answer` without --reserve-mib): the round's first touches of fresh memory are in the window",
    )
    ap.add_argument("--model-only", action="store_true", help="skip the CPU round: measure SHA-256 and project")
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()}; "
          f"CPU: {cpu_model()}")  # fmt: skip
    data = os.urandom(64 << 20)
    hash_rate = len(data) / min(_timed(lambda: hashlib.sha256(data).digest()) for _ in range(3))
    print(f"SHA-256 on one core of this machine: {hash_rate / 1e9:.2f} GB/s")
    runs = [(dtype, inner, run) for dtype in ([] if args.model_only else args.dtype)
            for inner in args.inner or [chl.default_inner(dtype, args.n, not args.no_fold)]
            for run in dict.fromkeys([None if args.no_fold else chl.default_fold(dtype, inner), None])]  # fmt: skip
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    for dtype, inner, run in runs:
        products = short_k_products(args.products, args.n, inner)
        label = f"{dtype} n={args.n} K={inner}{f' folded in runs of {run}' if run else ''} x{products}"
        mamfs, ratios, phases = [mamf(args.n, inner, dtype)], [], {}
        for r in range(args.rounds):
            print(f"{label}, round {r + 1} of {args.rounds} (MAMF before it {mamfs[-1] / 1e9:.1f} GFLOPS):")
            proven, got = honest_round(args.n, inner, products, dtype, not args.eager, run, mamfs[-1],
                                       not args.no_reserve, phases=r == 0)  # fmt: skip
            phases = phases or got
            mamfs.append(mamf(args.n, inner, dtype))
            ratios.append((proven, max(mamfs[-2:])))
            print(f"  round {r + 1}: proven {proven / 1e9:.1f} GFLOPS, MAMF before/after {mamfs[-2] / 1e9:.1f}/"
                  f"{mamfs[-1] / 1e9:.1f} -> proven/MAMF {proven / max(mamfs[-2:]):.2f} (load average now "
                  f"{os.getloadavg()[0]:.1f})")  # fmt: skip
        each = [p / m for p, m in ratios]
        mid = statistics.median(each)
        print(f"{label} on this CPU ({'C kernel' if generator.native_in_use('cpu', dtype) else 'fused' if generator.is_fused('cpu', dtype) else 'eager'} "
              f"generator): proven/MAMF {mid:.2f} (median of {len(each)} rounds: "
              f"{', '.join(f'{x:.2f}' for x in each)}; smallest {min(each):.2f}; the median proven rate over the best "
              f"MAMF of the run, {max(mamfs) / 1e9:.1f} GFLOPS: "
              f"{statistics.median(p for p, _ in ratios) / max(mamfs):.2f}); MAMF read "
              f"{min(mamfs) / 1e9:.1f}-{max(mamfs) / 1e9:.1f} GFLOPS; generation "
              f"{phases['generate_s_per_elem'] * 1e9:.2f} ns/element, Merkle root of C on all cores "
              f"{phases['hash_s_all_cores']:.3f} s (load average now {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(f"\nProjected H100 SXM (HBM {HBM_TBS} TB/s, PCIe {PCIE_GBS} GB/s pageable, {HOST_CORES_PER_GPU} host cores "
          f"at this CPU's SHA-256 rate, MAMF = {MAMF_OF_PEAK} x peak, 4 products; generator eager: {GEN_PASSES} "
          f"passes/element over HBM, fused: {GEN_INT_OPS} int32 ops/element at {INT32_TOPS} Tops):")  # fmt: skip
    print("  (float32 K = 64 unfolded, `challenge issue --no-fold`'s: the copy and hash of C, 4 bytes per 128 FLOPs, "
          "bound it whatever overlaps; folded: each run of 64 is a GEMM whose float32 partial goes through HBM, "
          "8 bytes per 128 FLOPs, unless a fused kernel keeps it in registers)")  # fmt: skip
    for n in (8192, 16384):
        k = chl.default_inner("float32", n)
        for fused_fold in (False, True):
            ratio, t = projected_h100("float32", n, k, 4, hash_rate, fused=False, run=FOLD, fused_fold=fused_fold)
            fused, tf = projected_h100("float32", n, k, 4, hash_rate, fused=True, run=FOLD, fused_fold=fused_fold)
            print(f"  float32 n={n} K={k // n}n folded in runs of {FOLD}, "
                  f"{'a fused fold (not built)' if fused_fold else 'as built (torch ops)'}: proven/MAMF {ratio:.2f} "
                  f"eager generator, {fused:.2f} fused (per product: fold {t['multiply'] * 1e3:.2f} ms, copy "
                  f"{t['copy'] * 1e3:.2f} ms, hash {t['hash'] * 1e3:.2f} ms)")  # fmt: skip
    for dtype in ("float32", "bfloat16"):
        for n in (8192, 16384):
            for k in sorted({n, chl.default_inner(dtype, n, fold=False), INNER_FACTOR[dtype] * n}):
                label = f"K={k // n}n" if k % n == 0 else f"K={k}"
                ratio, t = projected_h100(dtype, n, k, 4, hash_rate, fused=False)
                fused, tf = projected_h100(dtype, n, k, 4, hash_rate, fused=True)
                print(f"  {dtype} n={n} {label}: proven/MAMF {ratio:.2f} eager generator, {fused:.2f} fused (per "
                      f"product: generate {t['generate'] * 1e3:.2f} / {tf['generate'] * 1e3:.2f} ms, multiply "
                      f"{t['multiply'] * 1e3:.2f} ms at {MAMF_OF_PEAK} x {t['peak_tflops']:.0f} TFLOPS, copy "
                      f"{t['copy'] * 1e3:.2f} ms, hash {t['hash'] * 1e3:.2f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
