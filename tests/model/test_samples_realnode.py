"""realnode (issue 26): the samples codec's decoder puts the byte planes back plane by plane; the blocks (encode) are
the bytes they were, every block decodes to the exact values it encodes, and hostile blocks are still refused."""

import base64
import binascii
import zlib

import numpy as np
import pytest

from bench.model import samples as codec
from bench.model.errors import ReportError


def blocks():
    rng = np.random.default_rng(26)
    ns = np.round(rng.normal(1e6, 5e2, 20_000))
    yield "cuda events (palette, u2)", (ns / 1e6).astype(np.float32).astype(np.float64) / 1000
    yield (
        "random mantissas",
        (rng.integers(0, 1 << 52, 5000, dtype=np.uint64) | np.uint64(0x3F50000000000000)).view(np.float64),
    )
    yield "palette, u4", np.repeat(np.exp(rng.uniform(-10, -2, 70_000)), 2)
    yield "small", np.array([1e-3, 2e-3, 3e-3])
    yield "one", np.array([0.25])
    yield "empty", np.array([])


@pytest.mark.parametrize("name,values", list(blocks()), ids=[b[0] for b in blocks()])
def test_every_block_decodes_to_its_exact_values(name, values):
    block = codec.encode(values)
    out = codec.decode(block, "m.samples")
    assert out.dtype == np.float64 and out.flags.c_contiguous and out.flags.writeable
    assert out.tobytes() == values.astype("<f8").tobytes()
    if "palette" in name:
        assert "index" in block


def test_a_block_written_before_still_reads():
    """The codec's bytes are unchanged: a block as encode wrote it at 1449d3c (before this change) decodes."""
    block = {"codec": codec.CODEC, "n": 90, "k": 3, "values": GOLDEN_VALUES, "index": GOLDEN_INDEX}
    assert codec.encode([1.5e-3, 1.25e-3, 1.0e-3] * 30) == block
    assert codec.decode(block, "x").tolist() == [1.5e-3, 1.25e-3, 1.0e-3] * 30


def _raw(values_bytes: bytes) -> str:
    return base64.b64encode(zlib.compress(values_bytes)).decode()


def _planes(a: np.ndarray) -> bytes:
    return a.astype("<f8").view(np.uint8).reshape(-1, 8).T.tobytes()


def _index(a: list[int]) -> str:
    return _raw(np.array(a, "<u2").view(np.uint8).reshape(-1, 2).T.tobytes())


@pytest.mark.parametrize(
    "block,match",
    [
        ({"codec": codec.CODEC, "n": 2, "values": "!!!"}, "not valid base64"),
        ({"codec": codec.CODEC, "n": 2, "values": base64.b64encode(b"not zlib").decode()}, "not a valid zlib"),
        ({"codec": codec.CODEC, "n": 2, "values": _raw(b"\0" * 10**6)}, "more than the 16 bytes"),
        ({"codec": codec.CODEC, "n": 3, "values": _raw(_planes(np.array([1.0, 2.0])))}, "fewer than the 24 bytes"),
        ({"codec": codec.CODEC, "n": 2, "values": _raw(_planes(np.array([1.0, np.nan])))}, r"\[1\] is nan"),
        ({"codec": codec.CODEC, "n": 2, "values": _raw(_planes(np.array([-1.0, 1.0])))}, r"\[0\] is -1.0"),
        ({"codec": codec.CODEC, "n": 2, "values": _raw(_planes(np.array([1.0, np.inf])))}, r"\[1\] is inf"),
        ({"codec": codec.CODEC, "n": 2, "values": _raw(_planes(np.array([0.0, 1.0])))}, r"\[0\] is 0.0"),
        ({"codec": codec.CODEC, "n": 4, "k": 2, "values": _raw(_planes(np.array([1.0, 2.0]))),
          "index": _index([0, 1, 2, 0])}, "points past"),
        ({"codec": codec.CODEC, "n": codec.MAX_SAMPLES + 1, "values": ""}, "whole number"),
        ({"codec": "other", "n": 1, "values": ""}, "unknown samples encoding"),
        ({"codec": codec.CODEC, "n": 1, "values": "", "extra": 1}, "unknown samples encoding"),
    ],
)  # fmt: skip
def test_hostile_blocks_are_refused(block, match):
    with pytest.raises(ReportError, match=match):
        codec.decode(block, "m.samples")


def test_a_palette_block_decodes():
    block = {"codec": codec.CODEC, "n": 4, "k": 2, "values": _raw(_planes(np.array([1.0, 2.0]))),
             "index": _index([0, 1, 1, 0])}  # fmt: skip
    assert codec.decode(block, "m.samples").tolist() == [1.0, 2.0, 2.0, 1.0]


GOLDEN_VALUES = "eAH7U/1rpUjdx3VZl9z3+D4sSaqaHBASYW9vDwCxWAxV"
GOLDEN_INDEX = "eAG1wQEBAAAAgiD1/+hWBEmSJEmSJEmSJEmSJEmSJEmSJEmSJEnyMzCTAFs="


def test_strict_base64_accepts_only_what_validate_accepts():
    """decode_small reads base64 with binascii's strict mode, decode with b64decode(validate=True): whatever the strict
    mode accepts, validate=True accepts as the same bytes (what strict refuses goes to decode, which words it)."""
    rng = np.random.default_rng(26)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n -_.\x00"
    seeds = [base64.b64encode(bytes(rng.integers(0, 256, int(n), dtype=np.uint8))) for n in rng.integers(0, 12, 300)]
    for seed in seeds:
        for _ in range(20):
            text = bytearray(seed)
            for _ in range(int(rng.integers(0, 3))):  # mangle: replace, insert or delete a byte
                what, at = int(rng.integers(0, 3)), int(rng.integers(0, len(text) + 1))
                c = alphabet[int(rng.integers(0, len(alphabet)))]
                if what == 0 and at < len(text):
                    text[at] = c
                elif what == 1:
                    text.insert(at, c)
                elif at < len(text):
                    del text[at]
            s = text.decode("latin-1")
            try:
                strict = binascii.a2b_base64(s, strict_mode=True)
            except (binascii.Error, ValueError):
                continue
            assert base64.b64decode(s, validate=True) == strict, s


@pytest.mark.parametrize("n", [0, 1, 3, 20, 64])
def test_decode_small_is_decode(n):
    values = np.random.default_rng(n).uniform(1e-4, 2e-3, n)
    block = codec.encode(values)
    assert codec.decode_small(block) == codec.decode(block, "x").astype("<f8").tobytes() == values.tobytes()
    for text in ("!" + block["values"][1:], block["values"] + "=", block["values"] + "==", "=" + block["values"][1:],
                 block["values"][:-1], block["values"] + "A", block["values"] + "A==", " " + block["values"]):  # fmt: skip
        other = {**block, "values": text}
        try:
            want = codec.decode(other, "x").astype("<f8").tobytes()
        except ReportError:
            assert codec.decode_small(other) is None, text
            continue
        assert codec.decode_small(other) in (None, want), text
