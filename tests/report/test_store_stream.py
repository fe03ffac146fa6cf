"""Node reports as appended, signed records (schema version 3): round trip, cuts at any byte, SIGKILL of a real writer,
and every way a hostile file can be torn, garbled, reordered or shortened."""

import base64
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import zlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.model import intake, records, samples, sign
from bench.model.reports import STREAM_VERSION, NodeReport, ReportError
from bench.report import verify as v
from bench.report.store import REPORT_NAME, ReportWriter, load_report
from tests.report import synthetic as syn

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def write(tmp_path, count=3, n=200, finish=True, key=KEY):
    w = ReportWriter(syn.report([], end=None), tmp_path, key)
    for i in range(count):
        w.add(syn.matmul("float32", syn.samples(1e-3, n, seed=i)))
    if finish:
        w.finish()
    return w


def read(path):
    return intake.read_json(path).data


def errors(data):
    return {f.code for f in v.errors(v.verify_node_report(data))}


def test_round_trip_keeps_every_sample_bit_for_bit(tmp_path):
    w = write(tmp_path)
    back = load_report(w.path)
    assert [list(m.samples_s) for m in back.measurements] == [syn.samples(1e-3, 200, seed=i) for i in range(3)]
    assert back.measurements == w.report.measurements and not back.partial
    data = read(w.path)
    assert data["schema_version"] == STREAM_VERSION and errors(data) == set()
    assert sign.inspect(data)[2] == sign.digest(data)


def test_an_unfinished_report_is_signed_and_partial(tmp_path):
    w = write(tmp_path, finish=False)
    data = read(w.path)
    findings = v.verify_node_report(data)
    assert not v.errors(findings) and "partial" in {f.code for f in findings}
    assert load_report(w.path).partial and len(data["measurements"]) == 3


def test_a_cut_at_any_byte_leaves_a_signed_partial_report_with_every_whole_record(tmp_path):
    w = write(tmp_path, count=3, n=70)
    raw = w.path.read_bytes()
    ends = [i + 1 for i, b in enumerate(raw) if b == ord("\n")]
    cut = tmp_path / "cut" / REPORT_NAME
    cut.parent.mkdir()
    rng = random.Random(0)
    for size in sorted({*rng.sample(range(ends[0], len(raw)), 60), *ends, *(e - 1 for e in ends[1:])}):
        cut.write_bytes(raw[:size])
        data = read(cut)
        whole = sum(1 for e in ends if e <= size)
        assert len(data["measurements"]) == min(whole - 1, 3), size
        findings = v.verify_node_report(data)
        assert not v.errors(findings), (size, v.errors(findings))
        assert ("partial" in {f.code for f in findings}) == (size < len(raw)), size
        assert ("torn-record" in {f.code for f in findings}) == (size not in ends), size
    for size in (0, 1, ends[0] - 1):  # the header itself cut: nothing to read (the writer renames it into place whole)
        cut.write_bytes(raw[:size])
        with pytest.raises(intake.InputError):
            read(cut)


def lines_of(w):
    return w.path.read_bytes().split(b"\n")[:-1]


def rewrite(path, lines):
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def test_a_dropped_middle_record_is_refused(tmp_path):
    w = write(tmp_path)
    lines = lines_of(w)
    rewrite(w.path, lines[:2] + lines[3:])
    with pytest.raises(intake.InputError, match="record 2 says it is record 3: a record before it is missing"):
        read(w.path)


def test_a_dropped_record_with_the_rest_renumbered_does_not_verify(tmp_path):
    w = write(tmp_path)
    objs = [json.loads(line) for line in lines_of(w)]
    del objs[2]
    for i, o in enumerate(objs):
        o["record"]["seq"] = i
    rewrite(w.path, [json.dumps(o).encode() for o in objs])
    data = read(w.path)
    ok, why, _ = sign.inspect(data)
    assert not ok and "record 2 does not follow record 1" in why
    assert "signature" in errors(data)


def test_reordered_records_are_refused(tmp_path):
    w = write(tmp_path)
    lines = lines_of(w)
    rewrite(w.path, [lines[0], lines[2], lines[1], *lines[3:]])
    with pytest.raises(intake.InputError, match="out of order"):
        read(w.path)


def test_a_garbled_whole_line_is_refused_not_skipped(tmp_path):
    w = write(tmp_path)
    lines = lines_of(w)
    lines[2] = lines[2][: len(lines[2]) // 2]  # half a record, then the next one: not a torn end
    rewrite(w.path, lines)
    with pytest.raises(intake.InputError, match="record 2: not valid JSON"):
        read(w.path)
    lines[2] = b"#" + lines[3][1:]
    rewrite(w.path, lines)
    with pytest.raises(intake.InputError, match="record 2: not valid JSON"):
        read(w.path)


def test_an_edited_figure_breaks_the_signature_and_its_recomputation(tmp_path):
    w = write(tmp_path)
    objs = [json.loads(line) for line in lines_of(w)]
    objs[1]["record"]["measurement"]["summary"]["median_s"] *= 0.5
    rewrite(w.path, [json.dumps(o).encode() for o in objs])
    assert errors(read(w.path)) == {"signature", "figure-mismatch"}


def test_the_dictionary_form_must_say_what_its_records_say(tmp_path):
    data = read(write(tmp_path).path)
    data["measurements"][0] = {**data["measurements"][0], "status": "invalid"}
    ok, why, _ = sign.inspect(data)
    assert not ok and "differ from what its records say" in why


def test_records_after_the_end_and_measurements_without_a_header_are_refused(tmp_path):
    w = write(tmp_path)
    lines = lines_of(w)
    with pytest.raises(ReportError, match="follows the end record"):
        records.fold([json.loads(x)["record"] for x in [*lines, lines[1]]])
    rewrite(w.path, lines[1:])
    with pytest.raises(intake.InputError, match="record 0 says it is record 1"):
        read(w.path)


def test_a_zip_bomb_in_a_samples_block_is_refused_at_its_declared_size():
    import tracemalloc

    z = zlib.compressobj(9)
    packed = b"".join(z.compress(bytes(1 << 20)) for _ in range(200)) + z.flush()  # 200 MiB of zeros in 200 kB
    bomb = {"codec": samples.CODEC, "n": 10_000, "values": base64.b64encode(packed).decode()}
    tracemalloc.start()
    try:
        with pytest.raises(ReportError, match="decompresses to more than the 80000 bytes"):
            samples.decode(bomb, "samples")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak  # never inflated beyond what the block declares
    with pytest.raises(ReportError, match="n should be a whole number"):
        samples.decode({**bomb, "n": samples.MAX_SAMPLES + 1}, "samples")


def test_a_stream_declaring_more_samples_than_the_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    w = write(tmp_path, count=2, n=100)
    monkeypatch.setattr(records, "MAX_SAMPLES", 150)
    with pytest.raises(intake.InputError, match="declare 200 samples, more than the limit of 150"):
        read(w.path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: {**b, "codec": "gzip"}, "unknown samples encoding"),
        (lambda b: {**b, "extra": 1}, "unknown samples encoding"),
        (lambda b: {**b, "values": b["values"][:-4]}, "fewer than|not a valid zlib"),
        (lambda b: {**b, "values": "@@@@"}, "not valid base64"),
        (lambda b: {**b, "n": b["n"] - 1}, "more than"),
        (lambda b: {**b, "n": True}, "n should be a whole number"),
    ],
)
def test_a_malformed_block_is_refused_with_its_reason(change, message):
    block = samples.encode([1e-3, 2e-3, 3e-3])
    with pytest.raises(ReportError, match=message):
        samples.decode(change(block), "samples")


@pytest.mark.parametrize("bad", [0.0, -1e-3, float("nan"), float("inf")])
def test_a_decoded_sample_must_be_a_finite_positive_duration(bad):
    with pytest.raises(ReportError, match=r"samples\[1\] is .*a duration must be a finite positive number"):
        samples.decode(samples.encode([1e-3, bad, 1e-3]), "samples")


def test_a_palette_index_past_its_values_is_refused():
    block = samples.encode([1e-3, 2e-3] * 100)
    assert "index" in block
    raw = bytearray(zlib.decompress(base64.b64decode(block["index"])))
    raw[0] = 9  # index 9 of 2 values
    z = zlib.compress(bytes(raw))
    with pytest.raises(ReportError, match="points past its 2 values"):
        samples.decode({**block, "index": base64.b64encode(z).decode()}, "samples")


def test_the_codec_is_exact_on_any_finite_positive_bit_pattern():
    import numpy as np

    rng = np.random.default_rng(3)
    bits = rng.integers(1, 0x7FF0000000000000, 5_000, dtype=np.uint64)  # every positive finite float64
    x = bits.view(np.float64)
    for values in (x, np.repeat(x[:40], 50), x[:1], x[:0]):
        assert samples.decode(samples.encode(values), "s").tobytes() == values.tobytes()


def _mutated_blocks(r, block: dict) -> list:
    """A small block and what a hostile writer could make of it: fields, counts, base64, zlib and values changed."""
    packed = base64.b64decode(block["values"])
    raw = zlib.decompress(packed)
    out = [block, {**block, "n": block["n"] + 1}, {**block, "n": block["n"] - 1}, {**block, "n": True},
           {**block, "n": 1.0 * block["n"]}, {**block, "codec": "x"}, {**block, "extra": 1}, {**block, "k": 1},
           {k: v for k, v in block.items() if k != "n"}, {**block, "values": block["values"] + "="},
           {**block, "values": block["values"][:-4]}, {**block, "values": "é"}, {**block, "values": 7}, [block],
           {**block, "values": base64.b64encode(packed + b"x").decode()},
           {**block, "values": base64.b64encode(zlib.compress(raw + b"12345678")).decode()},
           {**block, "values": base64.b64encode(zlib.compress(raw[:-1])).decode()}]  # fmt: skip
    for _ in range(30):  # a byte of the samples changed: NaN, infinity, zero, a negative or a subnormal may appear
        changed = bytearray(raw)
        changed[r.randrange(len(raw))] = r.choice([0x00, 0x7F, 0x80, 0xFF, 0xF0, r.randrange(256)])
        out.append({**block, "values": base64.b64encode(zlib.compress(bytes(changed))).decode()})
    return out


def test_small_blocks_decode_in_python_exactly_as_numpy_decodes_them():
    """decode_small gives decode's bytes for every block decode accepts that it takes, and never takes one that
    decode refuses (then decode words the refusal)."""
    import random

    import numpy as np

    r = random.Random("small blocks")
    taken = 0
    for n in (0, 1, 2, 3, 20, 63, 64):
        values = np.array([r.uniform(1e-6, 1e-2) for _ in range(n)])
        for block in _mutated_blocks(r, samples.encode(values)) if n else [samples.encode(values)]:
            fast = samples.decode_small(block)
            try:
                slow = samples.decode(block, "samples").astype("<f8").tobytes()
            except ReportError:
                assert fast is None, block
                continue
            assert fast is None or fast == slow, block
            taken += fast is not None
    assert taken > 50
    for bad in (float("nan"), float("inf"), -float("inf"), 0.0, -0.0, -1e-3, -5e-324):
        for values in ([bad, 1e-3, 2e-3], [1e-3, bad, 2e-3], [1e-3, 2e-3, bad], [bad]):
            assert samples.decode_small(samples.encode(values)) is None, values
    assert samples.decode_small(samples.encode([1e308, 1e308])) is None  # the sum overflows: left to decode
    assert samples.decode_small(samples.encode([5e-324, 1e308])) is not None


def test_worst_case_samples_still_cost_under_ten_bytes_each():
    """Random mantissas (nothing for zlib to find below the exponent) in one binade, as timings of one kernel are."""
    import numpy as np

    rng = np.random.default_rng(4)
    x = (rng.integers(0, 1 << 52, 10_000, dtype=np.uint64) | np.uint64(0x3EF0000000000000)).view(np.float64)
    block = samples.encode(x)
    assert "index" not in block and len(json.dumps(block)) / len(x) < 9.5


def test_amendments_carry_what_a_run_notes_after_saving(tmp_path):
    w = write(tmp_path, count=2, finish=False)
    w.save()  # nothing changed: nothing appended
    size = w.path.stat().st_size
    w.save()
    assert w.path.stat().st_size == size
    w.report.measurements[0].warnings.append({"code": "median-far-from-best", "message": "m", "hint": "h"})
    w.save()
    w.finish()
    w.report.measurements[1].details["mamf_ratio"] = 0.5
    w.save()  # after the end record too
    with pytest.raises(ValueError, match="finished"):
        w.add(syn.matmul("float32", syn.samples(1e-3)))
    back = load_report(w.path)
    assert back.measurements[0].warnings[-1]["code"] == "median-far-from-best"
    assert back.measurements[1].details["mamf_ratio"] == 0.5 and not back.partial
    assert errors(read(w.path)) == set()
    assert [r["type"] for r in read(w.path)["records"]] == ["header", "measurement", "measurement", "amend", "end",
                                                            "amend"]  # fmt: skip


def test_an_unsigned_stream_reads_but_does_not_verify(tmp_path):
    w = write(tmp_path, key=None)
    assert len(load_report(w.path).measurements) == 3
    assert "signature" in errors(read(w.path))


def test_reports_keep_their_name_and_are_found_where_reports_are(tmp_path):
    w = write(tmp_path)
    assert w.path.name == REPORT_NAME == "report.json"


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from bench.report.store import ReportWriter
    from tests.report import synthetic as syn

    w = ReportWriter(syn.report([], end=None), Path(sys.argv[1]),
                     Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
    i = 0
    while True:
        w.add(syn.matmul("float32", syn.samples(1e-3, 2_000, seed=i)))
        i += 1
        print(i, flush=True)
""")


def test_sigkill_at_random_moments_leaves_every_returned_measurement_signed(tmp_path):
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    for trial in range(4):
        folder = tmp_path / str(trial)
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], stdout=subprocess.PIPE, text=True,
                                env=env)  # fmt: skip
        first = proc.stdout.readline()  # the writer is up and appending
        assert first.strip() == "1"
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        returned = int(([first] + out.split())[-1])
        data = read(folder / REPORT_NAME)
        findings = v.verify_node_report(data)
        assert not v.errors(findings), v.errors(findings)
        assert "partial" in {f.code for f in findings}
        assert isinstance(NodeReport.from_dict(data), NodeReport)
        assert len(data["measurements"]) >= returned


def test_blocks_encoded_by_a_lanes_spool_are_reused_only_while_they_encode_the_samples(tmp_path, monkeypatch):
    import pickle

    from bench import runner

    m = syn.matmul("float32", syn.samples(1e-3, 300))
    runner.Spool(tmp_path / "spool", "job", "host", 1).add(m)  # in the lane's worker
    sent = pickle.loads(pickle.dumps(m))  # through the lane's pipe
    calls = []
    real = samples.encode
    monkeypatch.setattr(samples, "encode", lambda values: calls.append(len(values)) or real(values))
    w = ReportWriter(syn.report([], end=None), tmp_path / "run", KEY)
    w.add(sent)
    assert calls == []  # reused
    stale = pickle.loads(pickle.dumps(m))
    stale.samples_s[0] *= 2  # changed after it was encoded: the blocks no longer encode it
    stale.summary = syn.matmul("float32", list(stale.samples_s)).summary
    w.add(stale)
    assert calls == [0, 300]
    w.finish()
    back = load_report(w.path)
    assert back.measurements[1].samples_s == stale.samples_s and errors(read(w.path)) == set()


@pytest.mark.parametrize("finish", [True, False])
def test_a_process_that_exits_without_closing_its_writer_exits_and_leaves_its_report(tmp_path, finish):
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from bench.report.store import ReportWriter
        from tests.report import synthetic as syn

        w = ReportWriter(syn.report([], end=None), Path(sys.argv[1]),
                         Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
        w.add(syn.matmul("float32", syn.samples(1e-3, 100)))
        if {finish}:
            w.finish()
        KEEP = w  # still referenced at exit: collected, if at all, while the interpreter shuts down
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], env=env, timeout=120, capture_output=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    data = read(tmp_path / REPORT_NAME)
    assert errors(data) == set() and len(data["measurements"]) == 1 and (data["end_utc"] is not None) == finish


def test_a_report_handed_over_complete_is_written_with_its_end_and_takes_no_more(tmp_path):
    w = ReportWriter(syn.report([syn.matmul("float32", syn.samples(1e-3))]), tmp_path, KEY)
    with pytest.raises(ValueError, match="finished"):
        w.add(syn.matmul("float32", syn.samples(2e-3)))
    data = read(w.path)
    assert errors(data) == set() and data["end_utc"] == "2026-11-28T10:05:00.000000Z"
    assert [r["type"] for r in data["records"]] == ["header", "measurement", "end"]


def test_samples_digest_is_numpys_on_every_kind_of_sequence():
    """samples_digest takes lists of floats and array('d') (Samples) without numpy: the digest numpy's float64 bytes
    give, for floats of every kind (signed zeros, subnormals, NaN, infinities) and for what still goes through numpy
    (integers, booleans, numeric strings, tuples, numpy arrays)."""
    import hashlib
    import random
    import struct
    from array import array

    import numpy as np

    from bench.model.reports import Samples

    def by_numpy(warmup, timed) -> str:
        h = hashlib.sha256(b"bench.samples.v1")
        for values in (warmup, timed):
            arr = np.asarray(values, dtype="<f8")
            h.update(len(arr).to_bytes(8, "little") + arr.tobytes())
        return h.hexdigest()

    r = random.Random("digest")
    floats = [struct.unpack("<d", struct.pack("<Q", r.getrandbits(64)))[0] for _ in range(200)]
    floats += [0.0, -0.0, 5e-324, float("inf"), float("-inf"), float("nan"), 1e-3]
    kinds = [floats[:50], floats[50:], [], [1, 2.5], [True, 1.0], ["1.5", 2.0], (1.0, 2.0), np.array(floats[:9]),
             array("d", floats[:30]), Samples(floats[30:60]), array("f", [1.5, 2.5])]  # fmt: skip
    for warmup in kinds:
        for timed in kinds:
            assert samples.samples_digest(warmup, timed) == by_numpy(warmup, timed)
