"""Sixteenth adversarial round (issue 26 and issue 25's leftovers): attacks on this session's fast paths, driven
through the real entry points where a report is involved, and checks that each fast path's tests hold it to the plain
path (a fast path loosened must fail a test here or in its owner's tests).

Held, and tested here because loosening them failed no test before: the exact sum of a summary's mean
(bench.measure.stats._exact_sum, realnode's cacbb7b) refuses sums that int64 cannot hold and subnormal values; with its
bound loosened by one or two binades, or its subnormal check dropped, realnode's tests still passed while the mean
differed from math.fsum's (the plain way's) on the inputs below.

Succeeded before its fix: a record stream (v3 node report) may be 1 GiB, and its values were not bounded before
parsing (containers and declared samples were): a line of numbers costs the reader ~30 times its bytes, so a hostile
1 GiB stream ~31 GB; fixed by attack17 (records.MAX_VALUES, counted before any line is parsed), v3fast having stopped.

Each test says what it attacks."""

from __future__ import annotations

import base64
import hashlib
import math
import struct

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.measure import stats
from bench.model import intake, records
from bench.model.canonical import canonical_bytes
from bench.report import pool
from bench.report import verify as v
from tests.report import synthetic
from tests.report.fleet import NOW


def _plain_summary(samples) -> dict:
    """summary_fields the plain way: every value sorted as a Python float, percentile()'s formula, math.fsum over n."""
    x = sorted(map(float, samples))
    q = {p: stats.percentile(x, p) for p in (25, 50, 75, 5, 95)}
    return {"n": len(x), "median_s": q[50], "q1_s": q[25], "q3_s": q[75], "iqr_s": q[75] - q[25], "p5_s": q[5],
            "p95_s": q[95], "min_s": x[0], "max_s": x[-1], "mean_s": math.fsum(x) / len(x)}  # fmt: skip


def _bits(d: dict) -> dict:
    return {k: struct.pack("<d", v) if isinstance(v, float) else v for k, v in d.items()}


# --- realnode (cacbb7b): the mean's exact sum in int64 -----------------------------------------------------------------

#: The largest significand (1.999...) at exponent 0: its high 27 bits are all ones, the most one value adds to a sum.
_TOP = float(np.nextafter(2.0, 0.0))


@pytest.mark.parametrize("bits", range(11, 18))
@pytest.mark.parametrize("over", [0, 1, 2])
def test_a_mean_whose_int64_sum_would_wrap_is_the_plain_mean(bits, over):
    """2**bits - 1 samples: all but one at the largest significand, 2**(36 - bits + over) above the last. At over = 0
    the exact sum fits int64 (its largest case); from over = 1 it would wrap past 2**63 if the bound let it through,
    and the mean would be garbage. Each must be math.fsum's mean, bit for bit."""
    n = (1 << bits) - 1
    spread = 36 - bits + over
    samples = np.concatenate([np.full(n - 1, _TOP * 2.0**spread * 1e-3), [1e-3]])
    assert _bits(stats.summary_fields(samples)) == _bits(_plain_summary(samples))
    got = stats._exact_sum(samples)
    assert got is None or struct.pack("<d", got) == struct.pack("<d", math.fsum(samples.tolist()))


@pytest.mark.parametrize("value", [5e-324, 1e-310, 2.2250738585072009e-308])
def test_subnormal_samples_get_the_plain_mean(value):
    """A hostile report's samples may be subnormal (finite, positive: decode accepts them). A subnormal has no
    implicit leading bit: summed as if it had one, 5e-324 counts as 2**-1022."""
    for samples in (np.full(2048, value), np.concatenate([np.full(2047, value), [value * 3]])):
        assert _bits(stats.summary_fields(samples)) == _bits(_plain_summary(samples))


# --- v3fast (1d77e09) and the per-line path: a record that holds a "signature" key of its own -------------------------

_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"attack17 sixteenth round").digest())


def _lines(config: dict, *, cut_at_first: bool = False) -> bytes:
    """A signed stream of node 3 (two GPUs) whose header's config is `config`. With cut_at_first, the record after the
    header names (prev) the SHA-256 of the header's bytes only up to the first ',"signature":' in them, and the
    stream is signed as its writer would sign that chain: what a reader that split a line at the first such bytes
    (instead of the last, the frame's) would hash, leaving the rest of the header out of every signature."""
    report = synthetic.gpu_node(3, [700.0, 701.0])
    report.config = config
    bodies = [canonical_bytes({**records.header(report, records.Chain(_KEY).signer()), "seq": 0, "prev": None})]
    head = bodies[0][: bodies[0].find(b',"signature":')] if cut_at_first else bodies[0]
    prev = hashlib.sha256(head).hexdigest()
    rest = [{"type": records.MEASUREMENT, "measurement": m.to_record()} for m in report.measurements]
    rest.append({"type": records.END, "end_utc": report.end_utc, "interrupted": False})
    for i, r in enumerate(rest, 1):
        bodies.append(canonical_bytes({**r, "seq": i, "prev": prev}))
        prev = hashlib.sha256(bodies[-1]).hexdigest()
    signature = base64.b64encode(_KEY.sign(records.SIGNING_CONTEXT + bytes.fromhex(prev))).decode()
    tails = [b"null"] * (len(bodies) - 1) + [b'"' + signature.encode() + b'"']
    return b"".join(b'{"record":' + b + b',"signature":' + t + b"}\n" for b, t in zip(bodies, tails, strict=True))


#: A config holding a "signature" key after another (its canonical bytes hold ',"signature":'), and the same with a
#: newline in a string, which the whole-stream check leaves to the per-line path (a backslash in the writing).
_CONFIGS = {
    "whole-stream": {"a": 1, "signature": {"note": "the suite's own"}, "z": "covered by the signature too"},
    "per-line": {"a": "line\nbreak", "signature": {"note": "the suite's own"}, "z": "covered by the signature too"},
}


@pytest.mark.parametrize("path", list(_CONFIGS))
def test_a_record_holding_a_signature_key_is_hashed_whole(tmp_path, path):
    """A stream's line is split at its LAST ',"signature":' (the frame's); a record may hold the same bytes (a config or
    a measurement's details with a "signature" key). The honest stream is counted with its records' canonical
    hashes, and one whose chain covers the header only up to the first ',"signature":' is refused, on the fast path
    (whole stream or per line) and the plain one alike. With either split taken at the first occurrence, the honest
    stream was refused and the cut one counted: everything after that point in the header signed by nobody."""
    honest, cut = _lines(_CONFIGS[path]), _lines(_CONFIGS[path], cut_at_first=True)
    for name, raw in (("honest", honest), ("cut", cut)):
        (tmp_path / name).write_bytes(raw)
    doc = intake.read_json(tmp_path / "honest")
    assert doc.chain == [hashlib.sha256(canonical_bytes(r)).digest() for r in doc.data["records"]]  # read fast, whole
    assert (records._canonical_lines(honest.split(b"\n")[:-1]) is None) == (path == "per-line")
    for name, counted in (("honest", True), ("cut", False)):
        fast, _ = pool._examine((name, tmp_path / name), now=NOW)
        plain = v.examine(records.parse((tmp_path / name).read_bytes(), name), now=NOW, policy=False)[0]
        assert (fast["status"] == "counted") == counted == (not v.errors(plain)), (name, fast["reasons"])


# --- a record stream's size limit (1 GiB) and the values its lines hold ---------------------------------------------


def test_a_stream_of_more_json_values_than_any_run_writes_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    """Containers (MAX_CONTAINERS) and samples (MAX_SAMPLES) are bounded before parsing, but were not the values
    between them: a stream may be 1 GiB (DEFAULT_MAX_STREAM_BYTES, for a real node's 107-165 MB), and a line of numbers
    costs the reader ~30 times its bytes (an 80 MB header of 20 million floats took 2.45 GB of peak memory and 3.8 s
    of CPU to be refused for its signature; a 1 GiB one ~31 GB at that rate: a worker the kernel kills breaks the
    pool, BrokenProcessPool is caught nowhere, and the fleet's run ends). A stream bench writes holds ~68 ',' a record
    (a base64 block none), ~0.7 million for a real 8-GPU node. The limit (records.MAX_VALUES, set small here)
    refuses a stream of more values by name, before any line is parsed; and it is far below the 512 million values
    the byte limit lets through. Failed before attack17's fix (no limit: the line was parsed)."""
    limit = getattr(records, "MAX_VALUES", None)
    assert limit is not None and limit <= 1 << 26, "no bound on a stream's values before it is parsed"
    monkeypatch.setattr(records, "MAX_VALUES", 1000)
    report = synthetic.gpu_node(3, [700.0])
    report.config = {"x": [0, 0]}
    head = canonical_bytes({**records.header(report, None), "seq": 0, "prev": None})
    path = tmp_path / "values.json"
    path.write_bytes(
        b'{"record":' + head.replace(b'"x":[0,0]', b'"x":[' + b"0," * 1000 + b"0]") + b',"signature":null}\n'
    )

    def parsed(*args, **kw):
        raise AssertionError("a line was parsed")

    for name in ("_DECODE", "parse_json", "parse_canonical"):
        monkeypatch.setattr(records, name, parsed)
    with pytest.raises(intake.InputError, match="limit"):
        intake.read_json(path)
    entry, rows = pool._examine(("values.json", path), now=NOW)
    assert entry["status"] == "rejected" and "limit" in entry["reasons"][0] and not rows
