"""v3gap (issue 26): a stream report's small sample blocks are decoded together (samples.decode_small_all, used by
NodeReport.from_dict), and that gives exactly what decoding each block on its own gives: the same bytes, the same
measurements, the same refusal words, on honest and hostile blocks."""

import base64
import random
import zlib

import numpy as np

from bench.model import records, reports
from bench.model import samples as codec
from bench.model.errors import ReportError
from bench.model.reports import Measurement, NodeReport
from tests.report.test_store_stream import _mutated_blocks


def _each(blocks: list) -> list[bytes | None]:
    """Each block's bytes as decode gives them; None for a block decode refuses."""
    out = []
    for i, b in enumerate(blocks):
        try:
            out.append(codec.decode(b, f"b{i}").astype("<f8").tobytes())
        except ReportError:
            out.append(None)
    return out


def _honest(r: random.Random, n: int) -> dict:
    return codec.encode(np.array([r.uniform(1e-6, 1e-2) for _ in range(n)]))


def test_honest_small_blocks_decode_together_to_each_ones_bytes() -> None:
    r = random.Random("v3gap honest")
    for _ in range(300):
        blocks = [_honest(r, r.choice([0, 1, 2, 3, 20, 63, 64, r.randrange(65)])) for _ in range(r.randrange(1, 20))]
        assert codec.decode_small_all(blocks) == _each(blocks) == [codec.decode_small(b) for b in blocks]
    assert codec.decode_small_all([]) == []


def test_hostile_blocks_among_honest_ones_are_never_taken_otherwise_than_one_by_one() -> None:
    """A hostile block anywhere (fields, counts, base64, zlib, values: NaN, infinity, zero, negative, subnormal) is
    either taken with decode's bytes, or left to decode (None); never taken where decode refuses it. Blocks of
    another count are taken all the same."""
    r = random.Random("v3gap hostile")
    taken = left = 0
    for n in (1, 2, 3, 20, 63, 64):
        for bad in _mutated_blocks(r, _honest(r, n)):
            blocks = [_honest(r, r.choice([2, 20])) for _ in range(r.randrange(0, 6))]
            at = r.randrange(len(blocks) + 1)
            blocks.insert(at, bad)
            together, each = codec.decode_small_all(blocks), _each(blocks)
            planes = codec._small_planes(bad)  # the hostile block inflated, when it is taken that far
            assert len(together) == len(blocks)
            for i, (x, y) in enumerate(zip(together, each, strict=True)):
                assert x is None or x == y, (bad, i)
                if i == at:
                    taken += x is not None
                    left += y is None
                elif planes is None or len(planes) != 8 * blocks[i]["n"]:
                    assert x == y, (bad, i)  # not grouped with the hostile block: taken whatever that holds
    for value in (float("nan"), float("inf"), 0.0, -0.0, -1e-3, -5e-324):
        blocks = [_honest(r, 20), codec.encode([1e-3, value, 2e-3]), _honest(r, 2)]
        together = codec.decode_small_all(blocks)
        assert together[1] is None and _each(blocks)[1] is None, value
        assert together[0] == _each(blocks)[0] and together[2] == _each(blocks)[2]
    # what decode_small leaves to decode but decode accepts: taken with decode's bytes, or left to decode
    for blocks in ([codec.encode([1e308, 1e308])], [codec.encode([5e-324, 1e308])], [_honest(r, 65)],
                   [codec.encode([1e-3] * 64)], [{**_honest(r, 2), "extra": None}]):  # fmt: skip
        together = codec.decode_small_all(blocks)
        assert together[0] is None or together == _each(blocks)
    assert taken > 20 and left > 50


def _stream_data(r: random.Random) -> dict:
    from tests.report.synthetic import node_stream

    raw = node_stream(r.randrange(1000), [700.0 + r.random() for _ in range(r.randrange(1, 9))], None)
    return records.parse(raw, "node.json")


def _read(data: dict) -> tuple[str, object]:
    try:
        report = NodeReport.from_dict(data)
    except ReportError as exc:
        return "refused", str(exc)
    return "read", (
        report,
        [(m.warmup_s.tobytes(), m.samples_s.tobytes(), type(m.samples_s)) for m in report.measurements],
    )


def test_reports_read_alike_with_and_without_decoding_their_blocks_together(monkeypatch) -> None:
    """NodeReport.from_dict on stream reports with a block, a digest or a field changed in one measurement: the same
    report (samples byte for byte) or the same refusal, word for word, as with each measurement's blocks decoded on
    its own (Measurement.from_record alone)."""
    r = random.Random("v3gap reports")
    outcomes = set()
    for case in range(200):
        data = _stream_data(r)
        ms = data["measurements"]
        i = r.randrange(len(ms))
        m = dict(ms[i])
        what = case % 8
        if what == 0:
            m[r.choice(["warmup", "samples"])] = r.choice(_mutated_blocks(r, m["samples"]))
        elif what == 1:
            values = np.frombuffer(codec.decode_small(m["samples"]), dtype="<f8").copy()
            values[r.randrange(len(values))] = r.choice([float("nan"), float("inf"), 0.0, -1e-3, 1e308])
            m["samples"] = codec.encode(values)
        elif what == 2:
            m["samples_sha256"] = "0" * 64
        elif what == 3:
            m["samples_s"] = [1e-3]
        elif what == 4:
            m["samples"] = codec.encode(np.repeat([1e-3, 2e-3], 40))  # a palette: decode's own path
        elif what == 5:
            m = r.choice([None, [], "x", {}])
        elif what == 6:
            m["status"] = r.choice(["done", 1, None])
        # what == 7: left as it is
        ms = [*ms[:i], m, *ms[i + 1 :]]
        data = {**data, "measurements": ms}
        together = _read(data)
        with monkeypatch.context() as patch:
            patch.setattr(reports, "_record_reader", lambda raw: Measurement.from_record)
            alone = _read(data)
        assert together == alone, case
        outcomes.add(together[0])
    assert outcomes == {"read", "refused"}


def test_a_report_s_blocks_are_decoded_together_when_all_are_small(monkeypatch) -> None:
    """The batch is what reads an honest stream report (not decode_small block by block); in a report holding one
    block it does not take (a palette), that measurement is read on its own and the others together."""
    r = random.Random("v3gap used")
    calls = []
    real = codec.decode_small_all
    monkeypatch.setattr(codec, "decode_small_all", lambda blocks: calls.append(len(blocks)) or real(blocks))
    monkeypatch.setattr(codec, "decode_small", lambda block: (_ for _ in ()).throw(AssertionError("one by one")))
    data = _stream_data(r)
    while len(data["measurements"]) < 2:
        data = _stream_data(r)
    report = NodeReport.from_dict(data)
    assert calls == [2 * len(report.measurements)]
    # the last measurement's samples as a palette block (decode's own path): the others are still decoded together
    ms = [dict(m) for m in data["measurements"]]
    values = np.repeat([1e-3, 2e-3], 40)
    ms[-1]["samples"] = codec.encode(values)
    ms[-1]["samples_sha256"] = codec.samples_digest(
        np.frombuffer(real([ms[-1]["warmup"]])[0], "<f8").tolist(), values.tolist()
    )
    calls.clear()
    monkeypatch.setattr(codec, "decode_small", lambda block: None)  # the last one: decode_small leaves it to decode
    report = NodeReport.from_dict({**data, "measurements": ms})
    assert calls == [2 * (len(ms) - 1)]
    assert report.measurements[-1].samples_s == values.tolist()


def test_zlib_output_is_still_bounded_by_the_declared_count() -> None:
    """A block whose zlib stream inflates far past its declared count is refused by the batch (left to decode, which
    words it) without inflating more than the count allows (decompressobj's max_length, as decode_small)."""
    bomb = base64.b64encode(zlib.compress(bytes(50_000_000))).decode()
    blocks = [codec.encode([1e-3, 2e-3]), {"codec": codec.CODEC, "n": 2, "values": bomb}]
    assert codec.decode_small_all(blocks) == [codec.decode_small(blocks[0]), None]


def test_each_record_gets_its_own_decoded_blocks_whatever_order_it_is_read_in() -> None:
    """_record_reader's answers are keyed by the record they were decoded from: read in reverse order, or one record
    twice, each measurement still holds its own samples (a reader that counted calls handed record 0 the last one's
    blocks, which its digest then refused)."""
    r = random.Random("v3gap order")
    ms = _stream_data(r)["measurements"]
    assert len(ms) > 2
    read = reports._record_reader(ms)
    backwards = [read(m, f"measurements[{i}]") for i, m in reversed(list(enumerate(ms)))][::-1]
    again = read(ms[1], "measurements[1]")
    alone = [Measurement.from_record(m, f"measurements[{i}]") for i, m in enumerate(ms)]
    assert backwards == alone
    assert again == alone[1]
