"""What a dishonest operator builds: node reports and challenge answers forged with bench's own functions (the
operator holds the node keys), next to the honest ones they imitate."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import figures
from bench.model import keys, sign
from bench.model.canonical import signed_view
from bench.model.samples import samples_digest
from bench.report.store import dumps
from tests.report import fleet, synthetic

NOW = fleet.NOW
H100 = fleet.H100


def resigned_over(doc: dict, body: bytes, key: Ed25519PrivateKey) -> dict:
    """doc signed by `key` over `body` as it is (not the canonical bytes): what a writer holding the key can make."""
    out = dict(doc)
    out["signature"] = dict(doc["signature"], signature=base64.b64encode(key.sign(body)).decode())
    return out


def rewritten(doc: dict, key: Ed25519PrivateKey) -> list[bytes]:
    """A signed document as bench writes it, then written otherwise by whoever holds its key: whitespace changed, no
    final newline, CRLF, keys as inserted, compact with sorted keys, and re-signed over compact non-canonical bytes
    (keys unsorted, then sorted): what a fast reader and the strict one must decide alike."""
    raw = dumps(doc).encode()
    out = [raw, raw.replace(b"\n  ", b"\n   "), raw.rstrip(b"\n"), raw.replace(b"\n", b"\r\n")]
    out.append(json.dumps(doc, indent=2).encode())  # keys as inserted, not sorted: bench did not write it
    out.append(json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode())
    view = signed_view(doc)
    for sort in (False, True):
        body = json.dumps(view, sort_keys=sort, separators=(",", ":")).encode()
        out.append(dumps(resigned_over(doc, body, key)).encode())
    return out


def kid(key: Ed25519PrivateKey) -> str:
    return keys.key_id(keys.raw_public(key.public_key()))


def signed(data: dict, key: Ed25519PrivateKey) -> dict:
    return fleet.resign(data, key)


def cpu_report(key: Ed25519PrivateKey, median_s: float = 0.002) -> dict:
    """An honest float32 matmul report of a 2-core CPU (as bench writes it), signed."""
    m = synthetic.matmul("float32", synthetic.samples(median_s))
    report = synthetic.report([m])
    data = report.to_dict()
    data["signature"] = sign.sign(data, key)
    return data


def refigure(m: dict, peak_tflops: float | None = None) -> None:
    """Recompute a measurement's digest and summary from its (edited) samples, as a careful forger would."""
    m["samples_sha256"] = samples_digest(m["warmup_s"], m["samples_s"])
    m["summary"] = figures.matmul_summary(m["samples_s"], int(m["work_per_iteration"]), peak_tflops)


def as_h100(
    data: dict, node: int, key: Ed25519PrivateKey, *, world_size: int | None = 1000, speedup: float = 1e4
) -> dict:
    """Attack 1: the CPU report's samples divided by `speedup`, relabelled as an H100 bf16 matmul with a made-up UUID
    (in the inventory too), spec.world_size set, moved to host `node`, re-signed by `key`."""
    data = copy.deepcopy({k: v for k, v in data.items() if k != "signature"})
    uuid = "GPU-" + hashlib.sha256(f"forged-{node}".encode()).hexdigest()[:32]
    host = data["inventory"]["host"]
    host.update(hostname=f"forged{node:03d}", fingerprint=f"fp-forged-{node}")
    data["inventory"]["nvml"] = {
        "available": True,
        "gpus": [{"index": 0, "name": H100, "uuid": uuid, "memory_bytes": 85520809984}],
    }
    for m in data["measurements"]:
        m["device"] = {"id": "cuda:0", "kind": "cuda", "name": H100, "uuid": uuid}
        m["spec"]["precision"] = "bfloat16"
        if world_size is not None:
            m["spec"]["world_size"] = world_size
        m["samples_s"] = [s / speedup for s in m["samples_s"]]
        m["warmup_s"] = [s / speedup for s in m["warmup_s"]]
        refigure(m)
    return signed(data, key)


def honest_fleet(n_nodes: int, key: Ed25519PrivateKey, tflops: float = 700.0, gpus: int = 2) -> list[dict]:
    return [fleet.node_report(i, [tflops + i % 3] * gpus, key) for i in range(n_nodes)]


def fresh_keys(n: int) -> list[Ed25519PrivateKey]:
    return [Ed25519PrivateKey.generate() for _ in range(n)]


def hours_before_now(h: float) -> str:
    return (NOW - dt.timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
