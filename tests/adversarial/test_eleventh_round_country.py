"""Eleventh round (issue 26): attacks on the country's new fast paths (msgspec writer and reader of capacity reports,
levels derived ahead and taken by dd.inputs_key) and on the auditor's independence from node-side native code.

Each attack is driven through the real entry points and compared with the slow path (strict parse, rfc8785, json).
Those that held stay as tests; the one that succeeded (the auditor's operands taken from a node-side C kernel compiled
in the same process) is fixed alongside."""

from __future__ import annotations

import base64
import ctypes
import json
import random
import struct

import pytest
import rfc8785
import torch
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.challenge import auditor, generator, protocol
from bench.disclosure import document as dd
from bench.model import canonical, intake, sign, written
from bench.report import store

# --- invariant (3)/(1): the msgspec writer (canonical_bytes, store.dumps) against rfc8785 and json.dumps ---

_ALPHABET = ["a", "Z", ".0,", ".0]", ".0}", ":", "\x7f", "\u2028", "\u00e9", "\uffff", "\ue000", "\U0001f600", '"',
             "\\", "\x1f", "/", "1.0", "e-", "\ud7ff", "\u0080"]  # fmt: skip


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 4)))


def _float(rng: random.Random) -> float:
    k = rng.random()
    if k < 0.3:
        return struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]  # any bit pattern: NaN, inf, subnormal
    if k < 0.6:
        return rng.uniform(-1, 1) * 10 ** rng.randint(-8, 22)
    if k < 0.8:
        return float(rng.randint(-(10**17), 10**17))  # integral floats around the 1e16 edge
    return rng.choice([-0.0, 0.0, 1e16, -1e16, 9999999999999998.0, 1e-4, 9.999999999999999e-05, 1e21, 5e-324])


def _value(rng: random.Random, depth: int = 0):
    k = rng.random()
    if depth < 3 and k < 0.2:
        return {_text(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if depth < 3 and k < 0.35:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if k < 0.5:
        return _text(rng)
    if k < 0.75:
        return _float(rng)
    if k < 0.9:
        return rng.choice([2**53, 2**53 - 1, -(2**53), 2**63, 2**64, -(2**63) - 1, 10**30, 0, True, False, None])
    return rng.randint(-(2**60), 2**60)


def _reference(doc):
    try:
        return rfc8785.dumps(doc)
    except Exception as exc:  # noqa: BLE001 - the reference's refusal, whatever its type
        return type(exc)


def test_msgspec_canonical_writer_is_rfc8785_on_hostile_values():
    """Held: every document the msgspec writer vouches for is rfc8785's bytes (floats at the 1e16/1e-4 edges, -0.0,
    integers beyond 2^53/2^64, NaN/inf, escapes, astral keys, '.0,' inside strings)."""
    rng = random.Random(11)
    vouched = 0
    for _ in range(6000):
        doc = {_text(rng): _value(rng) for _ in range(3)}
        fast = canonical._msgspec_canonical(doc)
        if fast is not None:
            vouched += 1
            assert fast == _reference(doc), doc
    assert vouched > 60  # the fast writer did vouch for some: the comparison is not vacuous


def test_msgspec_dumps_is_json_dumps_on_hostile_values():
    """Held: store.dumps through msgspec writes json.dumps(indent=2, sort_keys=True)'s bytes, or leaves it to it."""
    rng = random.Random(12)
    vouched = 0
    for _ in range(6000):
        doc = {_text(rng): _value(rng) for _ in range(3)}
        fast = store._msgspec_dumps(doc)
        if fast is not None:
            vouched += 1
            assert fast == json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n", doc
    assert vouched > 30


# --- invariant (1)/(3): parse_signed (capacity reports read through msgspec) against the strict path ---

_TOKENS = [b"1e400", b"-0.0", b"1E2", b"0.000001", b"1e-7", b"9007199254740993", b"18446744073709551616",
           b"-9223372036854775809", b"100000000000000000000.0", b'"\\u003a"', b'"\\ud800"', b'"\\udbff\\udfff"',
           b'"\\u0000"', b'"a\\/b"', b'"\xc3\xa9"', b'"\xf0\x9f\x98\x80"', b'"\xed\xa0\x80"', b"NaN", b"-Infinity",
           b'[[[[]]]]', b'{"a":1,"a":2}', b'{"b":"x:y","b":1}', b"1.0", b"-0", b"5e-324", b"1.7976931348623157e308",
           b"12345678901234567890123", b'"\\u2028"', b'"\x7f"', b'"\\u007f"', b'{"":""}', b"1.00000000000000000001",
           b"-1e-400", b"1e16", b"1e15", b"4.35e-5", b'{"\xf0\x9f\x98\x80":1,"\xef\xbf\xbf":2}',
           b'"bench.capacity-report"', b'{"signature":{"a":"b"}}', b"1234567890123456.5", b"1e21", b"-1.5e-6",
           b"[" * 70 + b"]" * 70, b"\xef\xbb\xbf1"]  # fmt: skip


def _slow(raw: bytes):
    try:
        data = intake.parse_json(raw, "x")
    except Exception as exc:  # noqa: BLE001
        return None, type(exc)
    try:
        return data, canonical.canonical(data)
    except Exception as exc:  # noqa: BLE001
        return data, type(exc)


def _hostile_capacity_report(rng: random.Random) -> bytes:
    base = {"kind": "bench.capacity-report", "devices": [{"device": f"d{i}", "mamf": 1.5 * i} for i in range(3)]}
    parts = [json.dumps(k).encode() + b":" + json.dumps(v).encode() for k, v in base.items()]
    for _ in range(rng.randint(1, 4)):
        key = rng.choice([b'"x"', b'"y"', b'"kind"', b'"devices"', b'"z:"', b'"\\u0078"', b'"signature"'])
        parts.append(key + b":" + rng.choice(_TOKENS))
    rng.shuffle(parts)
    parts.append(b'"signature":{"alg":"ed25519","key":"k","sig":"s"}')
    if rng.random() < 0.2:
        parts.append(b'"signature":{"alg":"ed25519","key":"k","sig":"t"}')
    return b"{" + b",".join(parts) + b"}"


def test_parse_signed_takes_only_what_the_strict_path_takes_with_the_same_bytes():
    """Held: whatever parse_signed returns, the strict parse accepts with equal data (types included: -0.0, 1 vs
    1.0) and canonical() writes the same bytes; duplicate keys (a second signature block included), \\u003a, lone
    surrogates, BOM, NaN, deep nesting, integers beyond 2^53/2^64 and overflowing floats all go to the slow path."""
    rng = random.Random(13)
    taken = 0
    for _ in range(3000):
        raw = _hostile_capacity_report(rng)
        fast = written.parse_signed(raw)
        if fast is None:
            continue
        taken += 1
        data, body = _slow(raw)
        assert body == fast[1], raw
        assert json.dumps(data, sort_keys=True) == json.dumps(fast[0], sort_keys=True), raw
    assert taken > 150


def test_a_hostile_capacity_report_is_refused_by_read_json_with_the_strict_paths_words(tmp_path):
    """Held: what the strict parse refuses, intake.read_json (msgspec first) refuses with the same one-line
    InputError, never a traceback (duplicate keys, NaN, BOM, lone surrogates, nesting, huge integers and floats)."""
    rng = random.Random(15)
    path = tmp_path / "capacity.json"
    refused = 0
    for _ in range(1500):
        raw = _hostile_capacity_report(rng)
        path.write_bytes(raw)
        try:
            intake.parse_json(raw, intake.safe_name(str(path)))
            continue
        except intake.InputError as exc:
            slow = str(exc)
        refused += 1
        with pytest.raises(intake.InputError) as fast:
            intake.read_json(path)
        assert str(fast.value) == slow, raw
    assert refused > 500


def test_a_document_naming_the_capacity_kind_in_a_string_reads_as_the_slow_path_reads_it(tmp_path):
    """Held: intake.read_json sends any file holding '"bench.capacity-report"' to parse_signed, a declaration quoting
    it included: its data and signed body are still the strict path's, and its signature verifies."""
    key = Ed25519PrivateKey.generate()
    doc = {"kind": "bench.declaration", "note": "bench.capacity-report", "x": [1.0, -0.0, 3.1e-6, 1e16, 2.5]}
    doc[canonical.SIGNATURE_FIELD] = sign.sign(doc, key)
    path = tmp_path / "d.json"
    path.write_text(store.dumps(doc))
    read = intake.read_json(path)
    assert written.parse_signed(path.read_bytes()) is not None  # the fast path did take it
    assert json.dumps(read.data, sort_keys=True) == json.dumps(doc, sort_keys=True)
    assert read.signed_body == canonical.canonical(doc) == rfc8785.dumps(canonical.signed_view(doc))
    assert sign.inspect(read.data, body=read.signed_body)[0]


# --- invariant (4): a capacity report signed through the msgspec writer verifies under the old verifier, and back ---


def _capacity_like(rng: random.Random) -> dict:
    return {"kind": "bench.capacity-report", "version": 2, "site": ["Country", "Region", "City", "Site"],
            "devices": [{"device": f"gpu-{i:05d}", "mamf_tflops": rng.uniform(100, 1000), "memory_bytes": 80 << 30,
                         "peak_tflops": float(rng.randint(100, 2000)), "healthy": rng.random() < 0.9,
                         "note": rng.choice(["", "é", "a:b", None]), "small": rng.choice([3.1e-6, 1e-7, 0.5])}
                        for i in range(200)]}  # fmt: skip


def _block_over_rfc8785(doc: dict, key: Ed25519PrivateKey) -> dict:
    """A signature block signed over rfc8785.dumps of the signed view: the old writer's bytes."""
    block = sign.sign(doc, key)
    block["signature"] = base64.b64encode(key.sign(rfc8785.dumps(canonical.signed_view(doc)))).decode()
    return block


def test_msgspec_signed_capacity_report_verifies_under_the_old_writer_and_back(tmp_path):
    """Held: signed by sign.sign (canonical_bytes through msgspec), the signature verifies over rfc8785.dumps of the
    signed view (the old verifier's bytes); signed over rfc8785's bytes, it reads and verifies through
    intake.read_json (parse_signed) and sign.inspect; one value changed, both refuse."""
    rng = random.Random(14)
    key = Ed25519PrivateKey.generate()
    doc = _capacity_like(rng)
    doc[canonical.SIGNATURE_FIELD] = sign.sign(doc, key)
    old_bytes = rfc8785.dumps(canonical.signed_view(doc))
    public = key.public_key()
    public.verify(base64.b64decode(doc[canonical.SIGNATURE_FIELD]["signature"]), old_bytes)  # raises if not
    path = tmp_path / "new.json"
    path.write_text(store.dumps(doc))
    assert path.read_text() == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    read = intake.read_json(path)
    assert read.signed_body == old_bytes and sign.inspect(read.data, body=read.signed_body)[0]
    # the reverse: signed over the old writer's bytes, written by json.dumps itself
    other = _capacity_like(rng)
    other[canonical.SIGNATURE_FIELD] = _block_over_rfc8785(other, key)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(other, indent=2, sort_keys=True) + "\n")
    read = intake.read_json(path)
    assert written.parse_signed(path.read_bytes()) is not None
    assert read.signed_body == canonical.canonical(other) and sign.inspect(read.data, body=read.signed_body)[0]
    # one value changed: refused by the fast read and the slow one alike
    path.write_text(path.read_text().replace('"gpu-00007"', '"gpu-00008"', 1))
    read = intake.read_json(path)
    assert not sign.inspect(read.data, body=read.signed_body)[0]
    assert not sign.inspect(intake.parse_json(path.read_bytes(), "x"))[0]


# --- invariant (2): levels derived ahead taken only for exactly their inputs ---


def test_nothing_derived_ahead_survives_the_block_even_when_it_raises():
    """Held: dd.precomputed's entries are gone after its block, on an exception too (no cache between calls)."""
    with pytest.raises(RuntimeError), dd.precomputed([]):
        assert len(dd._PRECOMPUTED) == 1
        raise RuntimeError
    assert dd._PRECOMPUTED == []


# --- the auditor's reference path against node-side native code ---


def _poisoned_block(h_ptr, rows, g_ptr, cols, out_ptr, stride):
    """A stand-in for a node-side float32 kernel that writes wrong bits (zeros)."""
    ctypes.memset(out_ptr, 0, 4 * rows * stride)


def test_the_auditor_regenerates_operands_without_a_native_kernel_compiled_in_its_process(monkeypatch):
    """Attack (succeeded before the fix): a process that warmed a node (generator.native() kept the C kernel) and then
    audits took the auditor's reference operands from that node-side kernel; a kernel giving other bits would have
    made the auditor's own operands wrong. The auditor now regenerates them by the formula (reference=True)."""
    args = ("nonce", "node", "GPU-1", 0, "A", 64, "float32", 2)
    expected = protocol.operand(*args)
    monkeypatch.setitem(generator._NATIVE, "float32", _poisoned_block)
    assert generator.native_in_use("cpu", "float32")
    assert not torch.equal(protocol.operand(*args), expected)  # a node's operand does use the kernel
    assert torch.equal(auditor.reference_operand(*args), expected)
    assert torch.equal(auditor.reference_operand(*args, inner=128), protocol.operand(*args, inner=128, reference=True))


def test_compiling_the_native_kernels_is_steered_only_by_the_operators_cc(monkeypatch, tmp_path):
    """Held: the compiler command comes from $CC (else Python's, else cc) and the source is bench's own file; no
    document or config names a flag or a path (the command is built from those alone)."""
    from bench.challenge import native

    seen = []

    def run(cmd, **kw):
        seen.append(cmd)
        raise OSError("no compiler here")

    monkeypatch.setattr(native.subprocess, "run", run)
    monkeypatch.setenv("CC", "my-cc -Dx")
    source = tmp_path / "k.c"
    source.write_text("")
    assert native._compile(source).startswith("no C compiler")
    assert seen[0][:2] == ["my-cc", "-Dx"] and seen[0][-1] == str(source)


def _store_with_leaves(out, root):
    from bench.disclosure.leaves import Store

    store = Store(out)
    for path in root.rglob("capacity.json"):
        store.add(path)
    return store


def _errors(findings):
    return sorted((f.code, f.where) for f in findings if f.severity == "error")


def test_verify_in_one_process_never_takes_figures_derived_from_another_capacity_report(tmp_path, monkeypatch):
    """Held: `bench verify`'s work ahead (dd.precomputed, shared_merge) in one process: verified clean; then one
    site's capacity report replaced by another validly signed by the same aggregator (same name and size, one
    device's MAMF changed) is an error, never the first figures; the original put back verifies clean again (nothing
    cached between calls); two sites' files swapped verify as before (the store is content-addressed); and figures
    were derived ahead each time (the attack is on the fast path). The disclosure pins each input by SHA-256, so a
    replaced report is refused before dd.inputs_key matters; the key's own parts: tests/disclosure/test_precomputed.py."""
    from bench.disclosure import tree
    from bench.model.canonical import SIGNATURE_FIELD
    from bench.report import pool
    from tests.disclosure import world

    monkeypatch.setattr(pool, "usable_cores", lambda: 1)  # the work ahead done here, and seen
    sites = (("North", "Alpha", "A1", [1, 2]), ("North", "Alpha", "A2", [3]), ("South", "Beta", "B1", [4, 5]))
    world.site_folders(tmp_path, sites)
    root, out = tmp_path / "in", tmp_path / "out"
    built = tree.build(root, policy=world.KEYS.policy(), as_of=world.AS_OF, write=world.write_disclosure, output=out,
                       now=world.NOW, claims_input=[])  # fmt: skip
    top = json.loads(built[0].doc.raw)
    ahead = []
    real = dd._rows_task
    monkeypatch.setattr(dd, "_rows_task", lambda t: ahead.append(t) or real(t))
    clean = _errors(dd.verify(top, _store_with_leaves(out, root), "country"))
    assert clean == [] and ahead
    victim = root / "North" / "Alpha" / "A1" / "capacity.json"
    original = victim.read_bytes()
    doc = json.loads(original)
    row = next(r for r in doc["devices"] if isinstance(r.get("mamf_tflops"), float))
    row["mamf_tflops"] = float(f"{row['mamf_tflops']:.6g}") * 1.5
    doc[SIGNATURE_FIELD] = sign.sign({k: v for k, v in doc.items() if k != SIGNATURE_FIELD}, world.KEYS.aggregator)
    forged = store.dumps(doc).encode()
    assert sign.check(json.loads(forged))[0]
    victim.write_bytes(forged)
    ahead.clear()
    assert _errors(dd.verify(top, _store_with_leaves(out, root), "country")) != []
    victim.write_bytes(original)
    ahead.clear()
    findings = dd.verify(top, _store_with_leaves(out, root), "country")
    assert _errors(findings) == [] and ahead
    # two sites' files swapped: the store finds capacity reports by their SHA-256, each level names its own, so the
    # same leaves sit in the same places and the verification is the same (nothing is taken by a file's place)
    other = root / "North" / "Alpha" / "A2" / "capacity.json"
    theirs = other.read_bytes()
    victim.write_bytes(theirs)
    other.write_bytes(original)
    assert dd.verify(top, _store_with_leaves(out, root), "country") == findings
    assert dd._PRECOMPUTED == []


def test_a_node_kernel_warmed_in_the_auditors_process_cannot_make_it_accept_a_product_of_other_operands(
    tmp_path, monkeypatch
):
    """Attack (succeeded before the fix), through chl.issue, the node's answer and chl.verify in one process: with a
    node-side float32 kernel that writes zeros in use (generator._NATIVE), the node's operands and product are zeros,
    and the auditor, regenerating its operands by the same kernel, counted the product of zeros as proven work. Now it
    regenerates them by the formula, and the product is refused."""
    from tests.test_challenge import _answer, _drop, _errors, _issue, _receipts, verify

    path, ch = _issue(tmp_path, dtype="float32", n=64, products=1)
    drop = _drop(tmp_path)
    monkeypatch.setitem(generator._NATIVE, "float32", _poisoned_block)
    base = _answer(drop, ch)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: 1.0}))
    assert verdict.fleet["verified_flops"] == 0
    assert any("Freivalds" in e or "exact-row" in e for e in _errors(verdict)), _errors(verdict)
