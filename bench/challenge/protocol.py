"""What the auditor and every node compute alike: the documents' kinds and limits, the seeded operands (a counter-based
generator keyed by SHA-256 of nonce, node, device and index) and the Merkle root over a product's rows."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import numpy as np
import torch

from bench import precision as prec
from bench.report import verify as verify_report

CHALLENGE_KIND = "bench.challenge"


COMMITMENT_KIND = "bench.challenge-commitment"


REVEAL_KIND = "bench.challenge-reveal"


RECEIPTS_KIND = "bench.challenge-receipts"


SCHEMA_VERSION = 1


DTYPES = ("float64", "float32", "bfloat16", "float16")


COMMIT_SUFFIX = ".commit.json"


REVEAL_SUFFIX = ".reveal.json"


#: v2: each field of the seed is length-prefixed (v1 joined them with NUL bytes, and node and device names are the
#: operator's: 'a' + 'x\0y' and 'a\0x' + 'y' seeded the same operands, so one product set answered for two devices).
SEED_TAG = b"bench.challenge.v2"


#: Largest n and products per device a challenge may ask (the CLI's limits; a verifier refuses more).
MAX_N, MAX_PRODUCTS = 65536, 1000


#: Most devices one commitment may answer for (8 GPUs x 7 MIG slices and the CPU fit with room to spare): the verifier's
#: work grows with them, and the operator writes the commitment.
MAX_DEVICES = 128


#: Largest commitment file read (it holds roots, not products: 1000 products x 128 devices fit), and the most JSON
#: arrays and objects it may hold (parsing cost grows with their count, not only with bytes).
MAX_COMMIT_BYTES = 48 * 2**20


MAX_COMMIT_CONTAINERS = 200_000


#: Bytes of commitments the collector archives (and logs) under one file name: an operator rewriting a commitment
#: between polls must not grow the auditor's archive and receipt log without bound.
ARCHIVE_BYTES_PER_NAME = 2 * MAX_COMMIT_BYTES


ARCHIVE_VERSIONS_PER_NAME = 8


#: Freivalds vectors per product (each O(n^2)); the exact-row check (bench.challenge.exact_rows) runs alongside.
FREIVALDS_VECTORS = 2


LEAF, NODE = b"\x00", b"\x01"


class ChallengeError(ValueError):
    """A malformed challenge, commitment, reveal or receipt file; the message names the file and the field."""


def utc(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str, where: str) -> dt.datetime:
    try:
        return verify_report.parse_utc(text)
    except (TypeError, ValueError):
        raise ChallengeError(f"{where}: {text!r} is not a UTC timestamp") from None


def seed(nonce: str, node: str, device: str, index: int, which: str) -> bytes:
    """SHA-256 of the tag, nonce, node, device UUID, product index and operand name: the generator's key."""
    h = hashlib.sha256(SEED_TAG)
    for part in (nonce, node, device, which):
        raw = part.encode("utf-8", "surrogatepass")
        h.update(len(raw).to_bytes(8, "little") + raw)  # length-prefixed: no two field splits hash alike
    h.update(index.to_bytes(8, "little"))
    return h.digest()


def name_problem(name: Any, what: str) -> str | None:
    """Why `name` (a node's or a device's, both written by the operator) cannot name anything in a challenge: not a
    non-empty string of at most 256 printable characters (NUL and other control characters once let two names share a
    seed), or None."""
    if not isinstance(name, str) or not name or len(name) > 256:
        return f"{what} {str(name)[:80]!r} should be a non-empty string of at most 256 characters"
    if any(not ch.isprintable() or ch.isspace() and ch != " " for ch in name):
        return f"{what} {name[:80]!r} holds control characters"
    return None


def operand(nonce: str, node: str, device: str, index: int, which: str, n: int, dtype: str) -> torch.Tensor:
    """A_i or B_i (which = 'A' or 'B'): n x n uniform in [-1, 1) from Philox keyed by seed(), rounded to `dtype`, on
    the CPU. Counter-based and platform-independent: anyone regenerates it bit for bit."""
    key = int.from_bytes(seed(nonce, node, device, index, which)[:16], "little")
    values = np.random.Generator(np.random.Philox(key=key)).uniform(-1.0, 1.0, size=(n, n))
    if dtype == "float64":
        return torch.from_numpy(values)
    t = torch.from_numpy(values.astype(np.float32))
    return t if dtype == "float32" else t.to(prec.get(dtype).torch_dtype)


def row_bytes(c: torch.Tensor) -> np.ndarray:
    """C as a (rows, bytes per row) uint8 array of its little-endian bit patterns, dtype as computed."""
    c = c.detach().to("cpu").contiguous()
    if c.dtype in (torch.bfloat16, torch.float16):
        c = c.view(torch.int16)
    return c.numpy().view(np.uint8).reshape(c.shape[0], -1)


def merkle_root(rows: np.ndarray) -> str:
    """Merkle root (SHA-256) over the rows: leaf = H(0x00 | row index as u64 | row bytes), node = H(0x01 | left |
    right); an odd node out is carried up unchanged."""
    level = [hashlib.sha256(LEAF + i.to_bytes(8, "little") + row.tobytes()).digest() for i, row in enumerate(rows)]
    if not level:
        return hashlib.sha256(LEAF).hexdigest()
    while len(level) > 1:
        nxt = [hashlib.sha256(NODE + level[j] + level[j + 1]).digest() for j in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0].hex()
