"""store.signed_dumps signs a document and writes it as sign.sign and store.dumps do, one walk and one writing for
both: the same signature block and the same text on randomized documents (keys on either side of 'signature', integral
floats, strings holding '.0,', escapes, characters beyond ASCII and U+FFFF, integers beyond 2^53, a measurements or
signature member already there), or it steps aside to them."""

from __future__ import annotations

import copy
import hashlib
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.model import sign
from bench.report import store
from tests.report.test_canonical import _value, plain_value

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"signed dumps").digest())
#: Top-level keys around 'signature' in code-point order (the split writes the members below it first).
NAMES = ["a", "inputs", "sig", "signaturd", "signature_", "signatures", "signaturf", "z", "Signature", "~", "devices"]


def _check(doc: dict) -> bool:
    """Whether the fast path took `doc`; either way the block and the text are the reference's."""
    taken = store._signed_msgspec(copy.deepcopy(doc), KEY) is not None
    new, old = copy.deepcopy(doc), copy.deepcopy(doc)
    try:
        got = store.signed_dumps(new, KEY)
    except (ValueError, TypeError) as exc:  # what sign.sign or dumps refuse, refused alike (UncarriableNumber...)
        got = (type(exc), str(exc))
    try:
        old["signature"] = sign.sign(old, KEY)
        want = store.dumps(old)
    except (ValueError, TypeError) as exc:
        want = (type(exc), str(exc))
    assert got == want
    assert new == old
    return taken


def test_randomized_documents_are_signed_and_written_as_before():
    r = random.Random("signed dumps")
    taken = 0
    for n in range(1500):
        make = plain_value if n % 3 else _value  # mostly what the fast writers take; a third anything JSON holds
        doc = {name: make(r) for name in r.sample(NAMES, r.randrange(0, len(NAMES) + 1))}
        if r.random() < 0.3:
            doc["rows"] = [{c: make(r) for c in ("tier", "tflops", "why", "n")} for _ in range(r.randrange(1, 6))]
        taken += _check(doc)
    assert 150 < taken < 1500  # both paths exercised


@pytest.mark.parametrize("doc", [
    {}, {"a": 1.0}, {"z": [2.0, {"y": 3.0}]}, {"a": "x.0,", "b": 1.0}, {"sig": "é"}, {"z": "\U0001f600"},
    {"a": 2**53}, {"a": 2**53 - 1, "z": -(2**53) + 1}, {"a": "back\\slash"}, {"a": "del\x7f"}, {"a": -0.0},
    {"a": 1e16}, {"a": 1e-5}, {"measurements": [{"samples_s": [1.0], "x": 1}]}, {"signature": {"alg": "x"}, "a": 1},
    {"signaturd": 1.0, "signaturf": 2.0}, {"signature_": [], "signatur": {}},
])  # fmt: skip
def test_edge_documents(doc):
    _check(doc)


def test_a_capacity_report_takes_the_fast_path():
    rows = [{"device": f"GPU-{i}", "tflops": 700.0 + i % 11, "tier": "bounded", "why": None, "memory": 80 * 2**30}
            for i in range(300)]  # fmt: skip
    doc = {"kind": "bench.capacity-report", "schema_version": 3, "devices": rows, "totals": {"tflops": 1.5e5},
           "inputs": [{"name": f"n{i}.json", "digest": "ab" * 32} for i in range(40)]}  # fmt: skip
    assert _check(doc)
