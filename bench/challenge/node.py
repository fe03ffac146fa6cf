"""The node's side: warm every device before the challenge arrives, compute every product on every device at once,
commit to their Merkle roots (signed, the moment the products exist), then reveal the products themselves."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import gzip
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench import precision as prec
from bench.challenge import fold, generator, hostmem
from bench.challenge.documents import Challenge, commit_name, signature_problem
from bench.challenge.protocol import (
    COMMIT_SUFFIX,
    COMMITMENT_KIND,
    DTYPES,
    REVEAL_KIND,
    REVEAL_SUFFIX,
    SCHEMA_VERSION,
    ChallengeError,
    leaves,
    merkle_root,
    name_problem,
    operand,
    root_of_leaves,
    row_bytes,
    utc,
)
from bench.model import sign
from bench.report.store import dumps, write_atomic
from bench.workloads import tf32


@dataclass
class Product:
    device: dict[str, Any]  # id, kind, name, uuid
    index: int
    c: torch.Tensor
    root: str
    seconds: float


#: Square sizes of the products that warm a device in every challenge dtype before the wait: the CUDA context, cuBLAS
#: handles and lazily loaded kernels would otherwise load inside the auditor's window. The CPU has nothing to load.
WARM_SIZES = {"cuda": (1024, 4096), "cpu": (64,)}


def warm(device: dict[str, Any], fuse: bool = True) -> float:
    """One product per challenge dtype and warm size on `device`, and one operand generated; with `fuse` (the default,
    on every device) the operand generator compiled into one kernel per dtype (generator.fuse: kept only where it
    gives the formula's bits; where it cannot compile, e.g. a CI runner without a C compiler, eager generation answers
    with the same bits). On a CPU the generator shares the cores with the product, and its share of the window is
    generation ns/element x FLOP rate / n: eager (about 20 passes over memory) cost half the window at n = 4096
    (docs/proofs.md, "How tight a proof is"). Compiling takes 5-30 s per device type, before the challenge arrives.
    On a CPU the folded product's and float32 operands' C kernels are compiled too (fold.prepare, generator.native:
    about 0.2 s each; where they cannot be, the torch paths give the same bits, slower). Returns the seconds."""
    start = time.perf_counter()
    if device["kind"] == "cpu":
        fold.prepare()
        generator.native()
    if fuse:
        for dtype in DTYPES:
            generator.fuse(device["id"], dtype)  # where it fails, eager generation answers (same bits, slower)
    operand("warm", "warm", device.get("uuid") or "warm", 0, "A", 64, "float32", 2, on=device["id"])
    for dtype in DTYPES:
        for n in WARM_SIZES.get(device["kind"], (64,)):
            a = torch.ones(n, n, dtype=prec.get(dtype).torch_dtype, device=device["id"])
            float((a @ a)[0, 0])  # synchronizes
    return time.perf_counter() - start


def host_bytes(ch: Challenge, device_kind: str = "cpu") -> int:
    """Host memory a device of `device_kind` writes fresh while answering `ch` (hostmem.reserve sizes it before the
    challenge arrives): on a CPU, one A and one B (each product's operands go into the previous one's) and every
    product's C (kept until the reveal), and for a folded product the microkernel's packed operands where it answers
    (fold.packed_bytes: after fold.prepare(), which warm() runs); elsewhere nothing from hostmem."""
    if device_kind != "cpu":
        return 0
    item = prec.get(ch.dtype).torch_dtype.itemsize
    align = hostmem.ALIGN
    each = [ch.n * ch.inner * item] * 2 + [ch.n * ch.n * item] * ch.products
    if getattr(ch, "fold", None):  # and the microkernel's packed operands, where it answers (fold.packed_bytes)
        each += fold.packed_bytes(ch.n, ch.inner)
    return sum(-(-b // align) * align for b in each)


def operands(ch: Challenge, node: str, device: dict[str, Any], index: int,
             reuse: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """A_i (n x K) and B_i (K x n) for `device`: version 2 generated on the device itself (torch integer ops, no host work, no copy);
    version 1 on the host. On a CPU, into `reuse` (the previous product's operands, no longer needed) where given:
    their pages are mapped already (generator.matrix)."""
    on = device["id"] if ch.operands >= 2 else "cpu"
    return tuple(operand(ch.nonce, node, device["uuid"], index, which, ch.n, ch.dtype, ch.operands, inner=ch.inner,
                         on=on, out=None if reuse is None else reuse[k])
                 for k, which in enumerate("AB"))  # type: ignore[return-value]  # fmt: skip


#: torch's switches for cuBLAS's reduced-precision split-K reductions of half-precision GEMMs (both on by default).
REDUCTION_FLAGS = ("allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction")


@contextlib.contextmanager
def full_precision_reductions() -> Iterator[None]:
    """cuBLAS may reduce split-K partial sums of a half-precision GEMM in the output format ("reduced precision
    reductions", on by default in torch): a product less accurate than the precision's own (float32 accumulation,
    one rounding at the end), which version 2 challenges do not allow (bench.challenge.exact_rows). Off while
    answering, restored after."""
    m = torch.backends.cuda.matmul
    names = [n for n in REDUCTION_FLAGS if hasattr(m, n)]  # (a stand-in for torch's flags may lack them)
    saved = [getattr(m, n) for n in names]
    for n in names:
        setattr(m, n, False)
    try:
        yield
    finally:
        for n, value in zip(names, saved, strict=True):
            setattr(m, n, value)


def multiply(device: dict[str, Any], a: torch.Tensor, b: torch.Tensor, run: int | None = None,
             hashed: list[bytes] | None = None) -> torch.Tensor:  # fmt: skip
    """C = A.B on the device (with `run`, a folded challenge's: bench.challenge.fold.product), copied to the host
    once. Nothing of it stays on the device: with many products at n = 16384 keeping each C on the GPU until the
    reveal ran out of device memory before committing.

    `hashed` (a folded product on a CPU): filled with C's Merkle leaves in row order, each block of rows hashed by
    the fold worker that finished it, while it is in that core's cache (fold.product's rows_done). Hashed after the
    product instead, the last product's hash ran alone on the cores at the end of the window (0.06 s of a 2 s round
    at n = 4096) and every other product's took the cores from the next product's fold."""
    a, b = a.to(device["id"]), b.to(device["id"])
    if run is not None and hashed is not None and a.device.type == "cpu":
        c = hostmem.empty((a.shape[0], b.shape[1]))
        rows, parts = row_bytes(c), {}  # rows: C's bytes, no copy

        def hash_rows(first: int, stop: int) -> None:
            parts[first] = leaves(rows[first:stop], first)

        fold.product(a, b, run, out=c, rows_done=hash_rows)
        hashed.extend(leaf for first in sorted(parts) for leaf in parts[first])
        if len(hashed) != len(c):
            raise RuntimeError(f"the fold hashed {len(hashed)} of C's {len(c)} rows")
        return c
    if a.device.type == "cpu":  # C where the node reserved host memory (hostmem: already touched), same bits as a @ b
        out = hostmem.empty((a.shape[0], b.shape[1]), a.dtype)
        c = torch.mm(a, b, out=out) if run is None else fold.product(a, b, run, out=out)
    else:
        c = a @ b if run is None else fold.product(a, b, run)
    del a, b
    c_host = c.to("cpu")  # the one copy to the host (it waits for the product)
    del c
    return c_host


def product(device: dict[str, Any], index: int, a_host: torch.Tensor, b_host: torch.Tensor, start: float,
            pool: concurrent.futures.Executor | None = None, run: int | None = None) -> Product:  # fmt: skip
    """C_i = A_i.B_i on the device (folded with `run`), copied to the host once and hashed there (across `pool`'s
    threads if given)."""
    c_host = multiply(device, a_host, b_host, run)
    return Product(device, index, c_host, merkle_root(row_bytes(c_host), pool), time.perf_counter() - start)


def compute(ch: Challenge, node: str, device: dict[str, Any], index: int) -> Product:
    """One product on one device, timed by the node (for its own record only; the auditor's clock decides)."""
    start = time.perf_counter()
    with full_precision_reductions() if ch.operands >= 2 else contextlib.nullcontext():
        return product(device, index, *operands(ch, node, device, index), start, run=ch.fold)


def _hashed(device: dict[str, Any], index: int, c: torch.Tensor, start: float, pool: concurrent.futures.Executor,
            hashed: list[bytes] | None = None) -> Product:  # fmt: skip
    """Product i with C's Merkle root: from the leaves multiply() hashed (`hashed`), else hashing C across `pool`."""
    root = merkle_root(row_bytes(c), pool) if hashed is None else root_of_leaves(hashed)
    return Product(device, index, c, root, time.perf_counter() - start)


def compute_all(ch: Challenge, node: str, device: dict[str, Any]) -> list[Product]:
    """Every product of `device`. Version 2: operands generated on the device, and product i's rows hashed by a
    pool of host threads (one per core this process may use) while the device generates and multiplies product
    i + 1; the host's only work in the window is the copy and the hash. Version 1: the next product's operands
    generated on the host while the device works on the current one."""
    out: list[Product] = []
    if ch.operands >= 2:
        workers = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        with (full_precision_reductions(),
              concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="bench-hash") as hashers,
              concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bench-commit") as committer):  # fmt: skip
            pending = []
            # on a CPU each product's operands are written into the previous product's (their pages are mapped), the
            # first product's into huge pages (hostmem: 256 MiB of 4 KiB pages cost 0.1-1 s of faults at n = 4096)
            spent = None
            if device["kind"] == "cpu":
                dtype = prec.get(ch.dtype).torch_dtype
                spent = (hostmem.empty((ch.n, ch.inner), dtype), hostmem.empty((ch.inner, ch.n), dtype))
            for i in range(ch.products):
                start = time.perf_counter()
                a, b = operands(ch, node, device, i, spent)
                hashed = [] if ch.fold and device["kind"] == "cpu" else None
                c = multiply(device, a, b, ch.fold, hashed)
                spent = (a, b) if device["kind"] == "cpu" else None
                del a, b
                pending.append(committer.submit(_hashed, device, i, c, start, hashers, hashed))
            return [p.result() for p in pending]
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bench-operands") as pool:
        pending_ops = pool.submit(operands, ch, node, device, 0)
        for i in range(ch.products):
            start = time.perf_counter()
            a, b = pending_ops.result()
            if i + 1 < ch.products:
                pending_ops = pool.submit(operands, ch, node, device, i + 1)
            out.append(product(device, i, a, b, start))
    return out


def _gpu_entry(gpu: dict[str, Any]) -> dict[str, Any]:
    """A whole GPU of the inventory as a commitment lists it, with its MIG instances (index, MIG- UUID, SM count,
    memory): a slice answers under its own UUID, and its ceiling is its SM share of the GPU's peak."""
    entry = {k: gpu.get(k) for k in ("index", "name", "uuid")}
    migs = gpu.get("mig_devices")
    if isinstance(migs, list) and migs:
        entry["mig_devices"] = [{k: m.get(k) for k in ("index", "uuid", "sm_count", "memory_bytes")}
                                for m in migs if isinstance(m, dict)]  # fmt: skip
    return entry


def commitment(
    ch: Challenge, node: str, inventory: dict[str, Any], products: list[Product], key: Any
) -> dict[str, Any]:
    for what, name in (("node", node), *(("device", p.device["uuid"]) for p in products)):
        bad = name_problem(name, what)
        if bad:
            raise ChallengeError(f"cannot commit: {bad}")
    host = inventory.get("host", {})
    gpus = inventory.get("nvml", {}).get("gpus", [])
    data = {"kind": COMMITMENT_KIND, "schema_version": SCHEMA_VERSION, "nonce": ch.nonce, "node": node,
            "challenge_digest": sign.digest(ch.data), "committed_utc": utc(dt.datetime.now(dt.UTC)),
            "inventory": {"host": {k: host.get(k) for k in ("hostname", "fingerprint", "cpu_model", "physical_cores")},
                          "gpus": [_gpu_entry(g) for g in gpus if isinstance(g, dict)]},
            "products": [{"device": p.device["uuid"], "device_id": p.device["id"], "device_name": p.device["name"],
                          "device_kind": p.device["kind"], "index": p.index, "n": ch.n, "dtype": ch.dtype,
                          "root": p.root, "node_seconds": p.seconds} for p in products]}  # fmt: skip
    data["signature"] = sign.sign(data, key)
    return data


def reveal(directory: Path, base: str, ch: Challenge, products: list[Product]) -> dict[str, Any]:
    """Write each C_i (gzip of its little-endian bytes, dtype as computed) and the manifest naming them."""
    folder = directory / base
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for p in products:
        name = f"{commit_name(p.device['uuid'], '')}{p.index}.bin.gz"  # <uuid>-<i>.bin.gz
        raw = row_bytes(p.c).tobytes()
        tmp = folder / f".{name}.tmp"
        with gzip.open(tmp, "wb", compresslevel=1) as fh:
            fh.write(raw)
        os.replace(tmp, folder / name)
        files.append({"device": p.device["uuid"], "index": p.index, "file": f"{base}/{name}", "dtype": ch.dtype,
                      "shape": [ch.n, ch.n], "sha256": hashlib.sha256(raw).hexdigest()})  # fmt: skip
    return {"kind": REVEAL_KIND, "schema_version": SCHEMA_VERSION, "nonce": ch.nonce, "files": files}


def warm_all(devices: list[dict[str, Any]]) -> float:
    """Warm every device at once (warm()); returns the seconds the slowest took."""
    with concurrent.futures.ThreadPoolExecutor(len(devices)) as pool:
        return max(pool.map(warm, devices))


def refusal(ch: Challenge, node: str, trusted: set[str] | None, now: dt.datetime | None = None) -> str | None:
    """Why this node must not answer `ch`, or None: not signed by a trusted auditor key, past its deadline (an answer
    would not count), or this node is not among those challenged."""
    bad = signature_problem(ch.data, trusted, "challenge")
    if bad:
        return bad
    if (now or dt.datetime.now(dt.UTC)) > ch.deadline:
        return f"the challenge's deadline {utc(ch.deadline)} has passed; an answer would not count"
    if ch.nodes is not None and node not in ch.nodes:
        return f"node {node!r} is not among the challenged nodes ({', '.join(ch.nodes)}); use --node if it is named otherwise"
    return None


def fp32_refusal(devices: list[dict[str, Any]], env: dict[str, str] | None = None) -> str | None:
    """Why float32 products cannot be answered here, or None: with IEEE pinned (tf32.mode(False)), each CUDA device's
    probe product says what a float32 product really runs on. Before torch 2.9, TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1
    wins over that pin, and an answer computed in TF32 would be judged a cheaper precision (a cheat) by the auditor;
    refusing, and naming the variable, tells the operator what to unset instead."""
    paths = {d["id"]: tf32.probe(d["id"]) for d in devices if d.get("kind") == "cuda"}
    wrong = sorted(dev for dev, path in paths.items() if path != "ieee")
    if not wrong:
        return None
    found = tf32.environment(env)
    named = ", ".join(f"{k}={v}" for k, v in found.items()) or "no TF32 variable is set"
    return (f"float32 products on {', '.join(wrong)} run on TF32 ({paths[wrong[0]]}) although bench pinned IEEE "
            f"({named}; before torch 2.9 TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 wins over an explicit setting): an "
            "answer would fail the auditor's float32 check; unset it and answer again")  # fmt: skip


@contextlib.contextmanager
def fp32_pinned(ch: Challenge, devices: list[dict[str, Any]]) -> Any:
    """For a float32 challenge: IEEE float32 held for the block, and ChallengeError (naming the variable) when a
    probe shows TF32 regardless. Other dtypes: nothing."""
    if ch.dtype != "float32":
        yield
        return
    with tf32.mode(False):
        bad = fp32_refusal(devices)
        if bad:
            raise ChallengeError(bad)
        yield


def answer(ch: Challenge, node: str, inventory: dict[str, Any], devices: list[dict[str, Any]], drop: Path,
           key: Any) -> dict[str, Any]:  # fmt: skip
    """Answer `ch` into the drop directory: every device's products at once (one thread per device), the signed
    commitment written the moment they all exist, then the reveal. Returns what was done, timed by this node's clock
    (for its own record; the auditor's receipt log decides)."""
    started = time.perf_counter()
    with fp32_pinned(ch, devices), concurrent.futures.ThreadPoolExecutor(len(devices)) as pool:  # all at once
        products = [p for result in pool.map(lambda d: compute_all(ch, node, d), devices) for p in result]
    base = commit_name(node, ch.nonce)
    commit_path = drop / f"{base}{COMMIT_SUFFIX}"
    write_atomic(commit_path, dumps(commitment(ch, node, inventory, products, key)))
    committed_after = time.perf_counter() - started
    write_atomic(drop / f"{base}{REVEAL_SUFFIX}", dumps(reveal(drop, base, ch, products)))
    flops = len(products) * ch.flops_per_product
    kinds = sorted({torch.device(d["id"]).type for d in devices})
    return {"node": node, "commitment": str(commit_path), "reveal": str(drop / base), "products": len(products),
            "flops": flops, "seconds_to_commit": committed_after,
            "generator": {k: "native" if ch.operands >= 2 and generator.native_in_use(k, ch.dtype, ch.operands)
                          else "fused" if generator.is_fused(k, ch.dtype, ch.operands) else "eager" for k in kinds},
            "node_gflops": flops / committed_after / 1e9}  # fmt: skip
