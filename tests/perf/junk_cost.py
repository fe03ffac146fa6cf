"""Benchmark, not a test: what a flood of signed junk commitments costs the auditor's verifier (issue 23, item 5).

    .venv/bin/python tests/perf/junk_cost.py [--junk 100 --devices 128 --n 1024 --honest 2]

The attacker holds a trusted node key (here: honest node 0's own key, the hardest case for ordering) and drops
--junk commitments under made-up node names, each listing --devices H100s with one bfloat16 product of size --n whose
revealed matrix is junk (a constant, with a last row of its own so that no Merkle root is shared) and whose roots
match what is revealed: every cheap check passes. Next to them, --honest nodes answer the same challenge on this CPU,
each under a name the trust list binds to its own key, arriving after all the junk.

The verifier runs twice, each in a fresh (spawned) child: over the honest answers alone, then over honest + junk. Printed: the
wall time and the peak memory each child added, and each honest node's verified FLOPs both times (they must be the
same). Goal: the junk's added cost under 5 s at 100 x 128 x n = 1024, the honest verdict unchanged.

Writing the junk is made cheap for the attacker (and this benchmark): the constant part of each matrix is compressed,
CRC'd and Merkle-hashed once, and only the last row is done per device.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import hashlib
import multiprocessing
import resource
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench import challenge as chl
from bench.challenge import protocol
from bench.model import keys
from bench.report.store import dumps, write_atomic

H100 = "NVIDIA H100 80GB HBM3"


def kid(key: Ed25519PrivateKey) -> str:
    return keys.key_id(keys.raw_public(key.public_key()))


class JunkMatrix:
    """n x n bfloat16 junk whose rows but the last are a constant: gzip, CRC and Merkle levels of that part made once."""

    def __init__(self, n: int) -> None:
        self.n = n
        rows = np.full((n - 1, n), 0x4040, dtype=np.uint16).view(np.uint8).reshape(n - 1, -1)  # bf16 3.0
        head = rows.tobytes()
        co = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        # a full flush leaves the deflate stream byte-aligned with no back-references: a last row compressed on its
        # own can follow it
        self.deflated_head = co.compress(head) + co.flush(zlib.Z_FULL_FLUSH)
        self.crc_head, self.size = zlib.crc32(head), n * n * 2
        self.leaves = [hashlib.sha256(protocol.LEAF + i.to_bytes(8, "little") + r.tobytes()).digest()
                       for i, r in enumerate(rows)]  # fmt: skip
        # the tree over every leaf but the last: levels[k][j] is node j of level k
        self.levels = [self.leaves + [b""]]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            self.levels.append([hashlib.sha256(protocol.NODE + below[j] + below[j + 1]).digest()
                                for j in range(0, len(below) - 1, 2)])  # fmt: skip

    def make(self, tag: int) -> tuple[bytes, str]:
        """(gzip bytes, Merkle root) of the junk whose last row is the bfloat16 of `tag` (distinct per device)."""
        last = np.full(self.n, 0x3F80 + (tag % 0x3F00), dtype=np.uint16).tobytes()  # some finite bf16 per tag
        tail = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
        body = self.deflated_head + tail.compress(last) + tail.flush()
        gz = (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + body
              + struct.pack("<II", zlib.crc32(last, self.crc_head), self.size & 0xFFFFFFFF))  # fmt: skip
        node = hashlib.sha256(protocol.LEAF + (self.n - 1).to_bytes(8, "little") + last).digest()
        i = self.n - 1
        for level in self.levels[:-1]:  # n is a power of two: the last leaf's path is its left siblings
            node = hashlib.sha256(protocol.NODE + level[i - 1] + node).digest()
            i //= 2
        return gz, node.hex()


def write_junk(drop: Path, ch: chl.Challenge, node: str, key: Ed25519PrivateKey, devices: int, junk: JunkMatrix,
               first_tag: int) -> str:  # fmt: skip
    devs = [{"id": f"cuda:{i}", "kind": "cuda", "name": H100, "uuid": f"GPU-{node}-{i:04d}"} for i in range(devices)]
    products, files = [], []
    folder = drop / node
    folder.mkdir()
    for i, d in enumerate(devs):
        gz, root = junk.make(first_tag + i)
        (folder / f"{i}.bin.gz").write_bytes(gz)
        products.append(chl.Product(d, 0, None, root, 0.0))  # type: ignore[arg-type]
        files.append({"device": d["uuid"], "index": 0, "file": f"{node}/{i}.bin.gz", "dtype": ch.dtype,
                      "shape": [ch.n, ch.n], "sha256": "0" * 64})  # fmt: skip
    inv = {"host": {"hostname": node, "fingerprint": f"fp-{node}"},
           "nvml": {"gpus": [{"index": i, "name": H100, "uuid": d["uuid"]} for i, d in enumerate(devs)]}}  # fmt: skip
    write_atomic(drop / f"{node}{chl.COMMIT_SUFFIX}", dumps(chl.commitment(ch, node, inv, products, key)))
    write_atomic(drop / f"{node}{chl.REVEAL_SUFFIX}",
                 dumps({"kind": chl.REVEAL_KIND, "schema_version": chl.SCHEMA_VERSION, "nonce": ch.nonce, "files": files}))  # fmt: skip
    return node


def write_honest(drop: Path, ch: chl.Challenge, node: str, key: Ed25519PrivateKey) -> str:
    device = {"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": f"fp-{node}"}
    products = chl.compute_all(ch, node, device)
    inv = {"host": {"hostname": node, "fingerprint": device["uuid"], "physical_cores": 64}, "nvml": {"gpus": []}}
    base = chl.commit_name(node, ch.nonce)
    write_atomic(drop / f"{base}{chl.COMMIT_SUFFIX}", dumps(chl.commitment(ch, node, inv, products, key)))
    write_atomic(drop / f"{base}{chl.REVEAL_SUFFIX}", dumps(chl.reveal(drop, base, ch, products)))
    return base


def receipts(path: Path, ch: chl.Challenge, drop: Path, arrivals: dict[str, float], auditor: Ed25519PrivateKey) -> Path:
    rs = [{"file": f"{b}{chl.COMMIT_SUFFIX}", "arrived_utc": chl.utc(ch.issued + dt.timedelta(seconds=s)),
           "sha256": hashlib.sha256((drop / f"{b}{chl.COMMIT_SUFFIX}").read_bytes()).hexdigest(), "accepted": True,
           "why": None, "challenge_digest": ch.digest, "issued_utc": chl.utc(ch.issued)} for b, s in arrivals.items()]  # fmt: skip
    write_atomic(path, dumps(chl.receipts_doc(ch, rs, auditor)))
    return path


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


def _verify(args: tuple) -> tuple[float, float, dict[str, int], dict[str, int]]:
    """In a forked child: (seconds, MB of peak memory above the child's start, verified FLOPs per honest node,
    error findings by code)."""
    challenge, drop, receipts_path, trusted, names, auditor_id = args
    start_kb = _rss_kb()
    t0 = time.perf_counter()
    verdict = chl.verify(challenge, drop, receipts_path, trusted, auditor=auditor_id, names=names)
    seconds = time.perf_counter() - t0
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - start_kb) / 1024
    honest = {n["node"]: n["verified_flops"] for n in verdict.nodes if n["node"].startswith("honest")}
    codes: dict[str, int] = {}
    for f in verdict.findings:
        if f.severity == "error":
            codes[f.code] = codes.get(f.code, 0) + 1
    return seconds, peak_mb, honest, codes


def in_child(args: tuple) -> tuple[float, float, dict[str, int], dict[str, int]]:
    context = multiprocessing.get_context("spawn")  # fork after torch ran its thread pool can deadlock
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_verify, args).result()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--junk", type=int, default=100)
    ap.add_argument("--devices", type=int, default=128)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--honest", type=int, default=2)
    args = ap.parse_args()
    if args.n & (args.n - 1):
        ap.error("--n must be a power of two (the junk's Merkle path is built for one)")
    auditor = Ed25519PrivateKey.generate()
    node_keys = [Ed25519PrivateKey.generate() for _ in range(args.honest)]
    trusted = {kid(k) for k in node_keys}
    names = {f"honest{i}": kid(k) for i, k in enumerate(node_keys)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.junk} junk commitments x "
          f"{args.devices} devices, bfloat16 n = {args.n}, signed by honest0's key; {args.honest} honest nodes")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ch_data = chl.issue(auditor, dtype="bfloat16", n=args.n, products=1, window=dt.timedelta(minutes=5),
                            nodes=None, now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))  # fmt: skip
        challenge = root / "challenge.json"
        write_atomic(challenge, dumps(ch_data))
        ch = chl.load_challenge(challenge)
        honest_drop, flood_drop = root / "honest", root / "flood"
        honest_drop.mkdir()
        flood_drop.mkdir()
        t0 = time.perf_counter()
        arrivals = {}
        for i, k in enumerate(node_keys):
            for drop in (honest_drop, flood_drop):
                arrivals[write_honest(drop, ch, f"honest{i}", k)] = 30.0 + i
        honest_arrivals = dict(arrivals)
        junk = JunkMatrix(args.n)
        gz, root_hex = junk.make(7)
        c = torch.frombuffer(bytearray(zlib.decompress(gz, 16 + zlib.MAX_WBITS)), dtype=torch.int16)
        assert root_hex == chl.merkle_root(chl.row_bytes(c.view(torch.bfloat16).reshape(args.n, args.n)))
        for j in range(args.junk):
            arrivals[write_junk(flood_drop, ch, f"junk{j:03d}", node_keys[0], args.devices, junk, j * args.devices)] = (
                1.0 + j / 100
            )
        print(f"attacker: wrote {args.junk * args.devices} junk products in {time.perf_counter() - t0:.1f} s "
              f"({sum(p.stat().st_size for p in flood_drop.rglob('*') if p.is_file()) / 1e6:.1f} MB on disk)")  # fmt: skip
        r_honest = receipts(root / "r-honest.json", ch, honest_drop, honest_arrivals, auditor)
        r_flood = receipts(root / "r-flood.json", ch, flood_drop, arrivals, auditor)
        base = in_child((challenge, honest_drop, r_honest, trusted, names, kid(auditor)))
        flood = in_child((challenge, flood_drop, r_flood, trusted, names, kid(auditor)))
    for label, (seconds, peak, honest, codes) in (("honest alone", base), ("honest + junk", flood)):
        print(
            f"{label:14s}: verify {seconds:6.2f} s, peak +{peak:6.1f} MB; honest verified FLOPs {honest}; errors {codes}"
        )
    added = flood[0] - base[0]
    same = base[2] == flood[2] and all(v > 0 for v in base[2].values())
    print(f"junk cost the verifier {added:.2f} s (goal < 5 s) and the honest verdict is "
          f"{'unchanged' if same else 'CHANGED'}")  # fmt: skip
    sys.exit(0 if added < 5 and same else 1)


if __name__ == "__main__":
    main()
