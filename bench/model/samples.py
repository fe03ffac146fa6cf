"""Raw samples in a compact, exact form: the float64 values themselves, as bytes, in about a third to a half of what
decimal text takes (a decimal float64 is ~20 bytes; issue 22 asked for at most 10).

A block is a JSON object {"codec": CODEC, "n": N, "values": TEXT} or, when at most half the samples are distinct
(timers tick: a 20 us kernel timed by CUDA events shows a few thousand distinct durations in 10,000),
{"codec": CODEC, "n": N, "k": K, "values": TEXT, "index": TEXT}: K distinct values and N indexes into them.
TEXT is base64 of zlib of the array's bytes (little-endian float64 values; uint16 indexes when K <= 65,536, else
uint32) byte-shuffled: byte 0 of every element, then byte 1 of every element, and so on. Durations share their sign,
exponent and leading mantissa bytes, which the shuffle lines up for zlib; its run-length strategy at level 1 finds
them at a fraction of the default's time. Any reader with base64, zlib and numpy decodes it; the samples digest
(samples_digest, below) is taken over the decoded float64 bytes, so it does not depend on the encoding.

Every block is hostile input: base64 is strict, zlib output is bounded by the size the block declares (a zip bomb is
refused after that many bytes), counts are bounded (MAX_SAMPLES), indexes must point inside the value list, and
every decoded value must be a finite positive duration.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import sys
import zlib
from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench.model.errors import ReportError

CODEC = "f8-shuffle-zlib-b64"
#: Most samples one block may hold (16.8 million, 134 MB of float64): a sampling policy keeps at most 10,000 and an
#: MSMF window a few hundred thousand; a block claiming more is refused before anything is decompressed.
MAX_SAMPLES = 1 << 24
#: Below this many samples a palette is not tried (np.unique's sort costs more than it could save).
PALETTE_FROM = 64
_LEVEL = 1
_FIELDS = {"codec", "n", "k", "values", "index"}


def _pack(a: np.ndarray) -> str:
    width = a.dtype.itemsize
    shuffled = a.view(np.uint8).reshape(-1, width).T.tobytes() if width > 1 else a.tobytes()
    z = zlib.compressobj(_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS, 9, zlib.Z_RLE)
    return base64.b64encode(z.compress(shuffled) + z.flush()).decode("ascii")


def encode(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """The block for `values` (seconds; a list, array.array('d') or numpy array): exact, every bit kept."""
    a = np.asarray(values, dtype="<f8")
    n = len(a)
    if n > MAX_SAMPLES:
        raise ValueError(f"{n} samples in one block; at most {MAX_SAMPLES}")
    if n >= PALETTE_FROM:
        distinct, index = np.unique(a, return_inverse=True)
        k = len(distinct)
        if 2 * k <= n:
            dtype = "<u2" if k <= 1 << 16 else "<u4"
            return {"codec": CODEC, "n": n, "k": k, "values": _pack(distinct.astype("<f8")),
                    "index": _pack(index.astype(dtype))}  # fmt: skip
    return {"codec": CODEC, "n": n, "values": _pack(a)}


def _count(block: dict[str, Any], key: str, where: str, low: int, high: int) -> int:
    value = block.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ReportError(f"{where}.{key} should be a whole number from {low} to {high}, found {value!r}"[:300])
    return value


def _unpack(text: Any, count: int, dtype: str, where: str) -> np.ndarray:
    if not isinstance(text, str) or not text.isascii():
        raise ReportError(f"{where} should be base64 text")
    try:
        packed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ReportError(f"{where} is not valid base64") from None
    width = np.dtype(dtype).itemsize
    expected = count * width
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(packed, expected + 1)  # never more than declared (+1 to tell "more" from "exact")
    except zlib.error as exc:
        raise ReportError(f"{where} is not a valid zlib stream: {exc}") from None
    if len(raw) != expected or inflate.unconsumed_tail or not inflate.eof or inflate.unused_data:
        more = len(raw) > expected or bool(inflate.unconsumed_tail)
        what = "more" if more else "fewer" if len(raw) < expected or not inflate.eof else "other"
        raise ReportError(f"{where} decompresses to {what} than the {expected} bytes its count declares")
    planes = np.frombuffer(raw, dtype=np.uint8)
    if width == 1:
        return planes.view(dtype).reshape(count)
    # the byte planes put back: byte j of element i is at j * count + i. One strided copy a plane (a contiguous read,
    # a strided write) takes about half the time of copying the transposed view whole (np.ascontiguousarray)
    out = np.empty((count, width), dtype=np.uint8)
    source = planes.reshape(width, count)
    for j in range(width):
        out[:, j] = source[j]
    return out.view(dtype).reshape(count)


def decode(block: Any, where: str) -> np.ndarray:
    """The float64 samples of a block (a new native-order array); ReportError naming `where` for anything that is not
    a block this module writes: unknown fields or codec, counts out of range, bad base64 or zlib, more or fewer bytes
    than declared, an index outside the values, a value that is not a finite positive duration."""
    if not isinstance(block, dict):
        raise ReportError(f"{where} should be an object holding encoded samples")
    extra = set(block) - _FIELDS
    if extra or block.get("codec") != CODEC:
        raise ReportError(f"{where}: unknown samples encoding (codec {block.get('codec')!r}, fields "
                          f"{sorted(map(str, block))[:8]}); this bench reads {CODEC}"[:300])  # fmt: skip
    n = _count(block, "n", where, 0, MAX_SAMPLES)
    if "index" in block or "k" in block:
        k = _count(block, "k", where, 1, max(1, n // 2))
        values = _unpack(block.get("values"), k, "<f8", f"{where}.values")
        index = _unpack(block.get("index"), n, "<u2" if k <= 1 << 16 else "<u4", f"{where}.index")
        if n and int(index.max()) >= k:
            raise ReportError(f"{where}.index points past its {k} values")
        out = values[index]
    else:
        out = _unpack(block.get("values"), n, "<f8", f"{where}.values").astype(np.float64)
    if n and out.min() > 0 and out.max() < np.inf:  # the usual case in two reductions (NaN fails the first)
        return out
    bad = ~(np.isfinite(out) & (out > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ReportError(f"{where}[{i}] is {float(out[i])!r}; a duration must be a finite positive number")
    return out


#: Blocks of at most this many samples are decoded by decode_small (a run keeps ~20 per measurement: numpy's calls
#: cost more than the work there).
SMALL = 64
_SMALL_FIELDS = frozenset({"codec", "n", "values"})


def _small_planes(block: Any) -> bytes | None:
    """The inflated byte planes of a block decode_small takes (no palette, at most SMALL samples), strictly as decode
    reads them (strict base64, zlib bounded by the declared count and ending exactly there); None for anything else."""
    if type(block) is not dict or block.keys() != _SMALL_FIELDS or block["codec"] != CODEC:
        return None
    n, text = block["n"], block["values"]
    if type(n) is not int or not 0 <= n <= SMALL or type(text) is not str or not text.isascii():
        return None
    try:
        # strict: what it accepts, base64.b64decode(validate=True) accepts as the same bytes (tests/model/
        # test_samples_realnode.py); what it refuses goes to decode, which words the refusal
        packed = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(packed, 8 * n + 1)
    except zlib.error:
        return None
    if len(raw) != 8 * n or inflate.unconsumed_tail or not inflate.eof or inflate.unused_data:
        return None
    return raw


def decode_small(block: Any) -> bytes | None:
    """The little-endian float64 bytes of a block without a palette holding at most SMALL samples, each a finite
    positive duration, as decode would return them (decode(block, ...).astype('<f8').tobytes()); None for anything
    else, left to decode (which also words the refusal). Same steps as decode on the same bytes: strict base64, zlib
    bounded by the declared count and ending exactly there, the byte planes put back (byte j of element i is at
    j * n + i), every value checked, in pure Python, where numpy's dozen calls a block were most of reading it."""
    raw = _small_planes(block)
    if raw is None:
        return None
    n = len(raw) // 8
    out = np.frombuffer(raw, dtype=np.uint8).reshape(8, n).T.tobytes()  # byte j of element i from j * n + i
    values = array("d")
    values.frombytes(out)
    if sys.byteorder != "little":
        values.byteswap()
    if not n:
        return out
    total = sum(values)  # finite only when every value is (a NaN or an infinity carries through; so may an overflow)
    if total - total == 0.0 and min(values) > 0.0:
        return out
    return None


def decode_small_all(blocks: list[Any]) -> list[bytes | None]:
    """decode_small's answer for each block, in order, decided for all of them at once: a block's little-endian
    float64 bytes as decode returns them (decode(block, ...).astype('<f8').tobytes()) where it is a block decode_small
    takes the form of (no palette, at most SMALL samples) and every value of it and of the other blocks of its count
    is a finite positive duration; None for any other block (left to decode_small or decode, which words a refusal).

    A stream report's measurements each hold two such blocks (warm-up and timed): decode_small made a dozen numpy and
    Python calls a block after inflating it. Here each block is inflated as decode_small inflates it (_small_planes),
    then the byte planes of all the blocks of one count are put back by one transpose (block b's byte j of element i
    is at j * n + i of its planes) and their values checked by two reductions (the least above 0 and the greatest
    below infinity: a NaN makes both false, as it fails decode's check); where that check fails, every block of that
    count is None."""
    out: list[bytes | None] = []
    counts: dict[int, list[int]] = {}
    for i, block in enumerate(blocks):
        raw = _small_planes(block)
        out.append(raw)  # the empty bytes for no samples, as inflated; the others replaced below
        if raw:
            counts.setdefault(len(raw) // 8, []).append(i)
    for n, members in counts.items():
        size = 8 * n
        joined = np.frombuffer(b"".join([out[i] for i in members]), dtype=np.uint8)  # type: ignore[misc]
        put_back = joined.reshape(len(members), 8, n).transpose(0, 2, 1).tobytes()
        values = np.frombuffer(put_back, dtype="<f8")
        good = values.min() > 0.0 and values.max() < np.inf
        for at, i in enumerate(members):
            out[i] = put_back[at * size : (at + 1) * size] if good else None
    return out


__all__ = ["CODEC", "MAX_SAMPLES", "decode", "decode_small", "decode_small_all", "encode"]


def samples_digest(warmup_s: list[float], samples_s: list[float]) -> str:
    """SHA-256 of a measurement's raw-sample block: the tag 'bench.samples.v1', then for warm-up and timed samples in
    turn the count as a little-endian uint64 and the values as little-endian IEEE-754 binary64."""
    h = hashlib.sha256(b"bench.samples.v1")
    for values in (warmup_s, samples_s):
        plain = type(values) is list and set(map(type, values)) <= _FLOAT
        if _LITTLE and (plain or isinstance(values, array) and values.typecode == "d"):
            raw = array("d", values).tobytes() if plain else values.tobytes()  # numpy's bytes, without numpy's calls
            h.update((len(raw) // 8).to_bytes(8, "little"))
            h.update(raw)
            continue
        arr = np.asarray(values, dtype="<f8")
        h.update(len(arr).to_bytes(8, "little"))
        h.update(arr.tobytes())
    return h.hexdigest()


_LITTLE = sys.byteorder == "little"
_FLOAT = frozenset({float})


def samples_digest_bytes(warmup: bytes, samples: bytes) -> str:
    """samples_digest of samples given as their little-endian float64 bytes (decode_small's)."""
    h = hashlib.sha256(b"bench.samples.v1")
    for raw in (warmup, samples):
        h.update((len(raw) // 8).to_bytes(8, "little"))
        h.update(raw)
    return h.hexdigest()
