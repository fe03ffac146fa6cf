"""The fast path for version-2 node reports (bench.model.written.parse_node_report: msgspec's C decoder and encoder
instead of the strict parse and the canonicalization walk) reaches the slow path's decision with the slow path's
words: on valid, re-signed non-canonical, tampered (every field, every sample), duplicate-key, NaN, overflowing,
huge-integer, lone-surrogate, BOM, deep and truncated reports, and on strings that look like the numbers it respells.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.model import canonical, intake, sign, written
from bench.model.strict_json import parse_json
from bench.report import pool
from bench.report.store import dumps
from tests.adversarial import forge
from tests.report.fleet import NOW, node_report, resign

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"node document fast path").digest())

#: Strings holding what the fast path counts or respells (':', '.0' before a delimiter, exponents, true/false) or
#: declines (escapes, characters beyond U+FFFF).
TRICKY = ['a": b', ",5.0]", ":7.0,", "[1.0}", ":1e16,", ",3.1e-6]", "true", "false e", "é", "😀", "tab\there",
          'q"uote', "back\\slash", ",-0.0,", "", "del\x7f", ":12345678901234567,", "[[[[", "}}}", 'k":1.0,"',
          '\\":2.0]']  # fmt: skip
#: Numbers RFC 8785 spells otherwise than msgspec, or cannot carry.
NUMBERS = [700.0, -0.0, 0.0, 3.1e-6, 1.5e-7, 1e-5, 1e16, 1.5e16, 3e21, 1e300, 5e-324, 2**53 - 1, 2**53, 2**63 + 1,
           -(2**53), 10**20, 0.1 + 0.2]  # fmt: skip


def _report(node: int = 3, key: Ed25519PrivateKey = KEY) -> dict[str, Any]:
    return node_report(node, [700.0 + g for g in range(4)], key)


def _read(raw: bytes, *, fast: bool) -> tuple[Any, ...]:
    """What reading `raw` gives on one path: the refusal's words, or (data, signed body or None)."""
    read = written.parse_node_report(raw) if fast else None
    if read is not None:
        return read
    try:
        return parse_json(raw, "node.json"), None
    except intake.InputError as exc:
        return ("refused", str(exc))


def _outcome(raw: bytes, *, fast: bool) -> tuple[Any, ...]:
    """What reading `raw` and checking its signature decides: the refusal's words, or (valid, why, digest, data)."""
    read = _read(raw, fast=fast)
    if read[0] == "refused":
        return read
    data, body = read
    if body is not None:
        assert body == sign.canonical(data)  # the fast path's bytes are the canonical ones, whatever the signature
    if not isinstance(data, dict):
        return ("not an object", data)
    return (*sign.inspect(data, body=body), data)


def _variants(rng: random.Random, doc: dict[str, Any]) -> list[bytes]:
    raw = dumps(doc).encode()
    text = raw.decode()
    out = [*forge.rewritten(doc, KEY), b"\xef\xbb\xbf" + raw]
    for _ in range(8):  # tampered: one character changed, a number or a letter
        at = rng.randrange(len(text))
        out.append((text[:at] + rng.choice('0189.e-"a: ,}[]') + text[at + 1 :]).encode("utf-8", "surrogatepass"))
    out.append(raw[: rng.randrange(len(raw))])  # truncated
    kind = b'"kind": "bench.node-report"'
    out.append(raw.replace(kind, b'"kind": "x",\n  ' + kind, 1))  # a key twice, the last one kept
    out.append(raw.replace(b'"samples_s": [', b'"samples_s": [1.0],\n      "samples_s": [', 1))
    out.append(raw.replace(b'"signature": {', b'"signature": {"alg": "x"},\n  "signature": {', 1))
    # a key twice, and the kept value holding a ':' escaped: as many ':' in the file as members and characters read
    out.append(raw.replace(b'"run_id": "', b'"run_id": "a",\n  "run_id": "x\\u003ay', 1))
    out.append(raw.replace(b'"run_id": "', b'"run_id": "a",\n  "run_id": "x\\u003Ay', 1))
    out.append(raw.replace(b'"efficiency": ', b'"efficiency": NaN, "x": ', 1))
    out.append(raw.replace(b'"efficiency": ', b'"efficiency": Infinity, "x": ', 1))
    out.append(raw.replace(b'"efficiency": ', b'"efficiency": 1e400, "x": ', 1))
    out.append(raw.replace(b'"run_id": "', b'"run_id": "\\ud800', 1))  # a lone surrogate
    out.append(raw.replace(b'"run_id": "', b'"run_id": "\xff', 1))  # not UTF-8
    out.append(raw.replace(b'"run_id": "', b'"run_id": "\x01', 1))  # a control character as it is
    for deep in (29, 30, 31, 32, 40):  # strict_json's MAX_DEPTH, counted as it counts
        out.append(raw.replace(kind, kind + b', "deep": ' + b"[" * deep + b"]" * deep, 1))
        out.append(raw.replace(kind, kind + b', "deep": ' + b'{"a":' * deep + b"1" + b"}" * deep, 1))
    for big in (2**53, 2**63 + 1, 10**20):  # beyond what RFC 8785 carries, or 64 bits: in the view and the samples
        out.append(raw.replace(b'"index": 0', b'"index": %d' % big, 1))
        out.append(raw.replace(b'"samples_s": [', b'"samples_s": [%d, ' % big, 1))
        out.append(raw.replace(b'"samples_s": [', b'"samples_s": [-%d, ' % big, 1))
    out.append(raw.replace(b'"samples_s": [', b'"samples_s": [[1.0], ', 1))  # a container among the samples
    out.append(raw.replace(b'"samples_s": [', b'"samples_s": ["a:b", ', 1))
    out.append(raw.replace(b'"warmup_s": [', b'"warmup_s": {"a": [', 1).replace(b"],\n      \"work_per", b"]},\n      \"work_per", 1))  # fmt: skip
    out.append(raw.replace(b'"alg": "ed25519"', b'"alg": 12345678901234567890123', 1))
    out.append(raw.replace(b'"alg": "ed25519"', b'"alg": ["ed25519"]', 1))
    return out


def test_keys_beyond_u_ffff_sort_as_rfc8785_sorts_them() -> None:
    """RFC 8785 orders keys by UTF-16 code unit: a character beyond U+FFFF (a surrogate pair, from U+D800) comes
    before U+E000, where msgspec orders by code point."""
    doc = _report()
    doc["inventory"]["host"].update({"\U0001f600": 1, "\ue000": 2})
    raw = dumps(resign(doc, KEY)).encode()
    assert _outcome(raw, fast=True) == _outcome(raw, fast=False)
    assert _outcome(raw, fast=True)[:2] == (True, "valid")


def _edited(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """doc with a tricky string or number put somewhere in its signed view, re-signed by its key."""
    doc = json.loads(json.dumps(doc))
    m = doc["measurements"][rng.randrange(len(doc["measurements"]))]
    target = rng.choice([doc["inventory"]["host"], m["summary"], m["details"], m["device"], doc["config"]])
    value = rng.choice(TRICKY + NUMBERS)
    target[rng.choice(TRICKY[:6] + ["note", "zz", "a"])] = value
    try:
        return resign(doc, KEY)
    except canonical.UncarriableNumber:
        return doc  # no signature can cover it: the one it had no longer matches


@pytest.mark.parametrize("seed", range(12))
def test_fast_path_decides_as_the_slow_path(seed: int) -> None:
    rng = random.Random(seed)
    doc = _report(seed) if seed % 2 else _edited(_report(seed), rng)
    for raw in _variants(rng, doc):
        assert _outcome(raw, fast=True) == _outcome(raw, fast=False), raw[:300]


def test_tricky_strings_and_numbers_in_the_signed_view_decide_as_the_slow_path() -> None:
    rng = random.Random("tricky")
    taken = 0
    for _ in range(150):
        raw = dumps(_edited(_report(), rng)).encode()
        fast = _outcome(raw, fast=True)
        assert fast == _outcome(raw, fast=False)
        taken += written.parse_node_report(raw) is not None
    assert 40 < taken < 150  # the fast path takes most, and steps aside for what it cannot vouch for


def test_every_field_tampered_without_re_signing_is_refused_alike() -> None:
    """Each field of the signed view, and each raw sample, changed after signing: refused, in the same words."""
    doc = _report()
    checked = 0
    paths: list[tuple[Any, Any]] = [(doc, k) for k in doc if k not in ("measurements", "signature")]
    for m in doc["measurements"]:
        paths += [(m, k) for k in m]
        paths += [(m["summary"], k) for k in m["summary"]] + [(m["device"], k) for k in m["device"]]
        paths += [(m["samples_s"], i) for i in range(len(m["samples_s"]))]
    for gpu in doc["inventory"]["nvml"]["gpus"]:
        paths += [(gpu, k) for k in gpu]
    for holder, key in paths:
        old = holder[key]
        holder[key] = old * 1.001 if type(old) is float else "tampered"
        raw = dumps(doc).encode()
        holder[key] = old
        fast = _outcome(raw, fast=True)
        assert fast == _outcome(raw, fast=False), key
        assert fast[0] is False or fast[0] == "refused" or key == "samples_s", key
        checked += written.parse_node_report(raw) is not None
    assert checked > 100


def test_fast_path_is_taken_for_reports_bench_wrote_and_gives_the_canonical_bytes(tmp_path) -> None:
    for node in range(5):
        doc = _report(node)
        path = tmp_path / f"node{node}.json"
        path.write_text(dumps(doc))
        read = intake.read_json(path)
        assert read.data == doc and read.signed_body == sign.canonical(doc)
        assert sign.inspect(read.data, body=read.signed_body)[:2] == (True, "valid")


def _examined(tmp_path, raw: bytes) -> tuple[dict, list]:
    path = tmp_path / "node.json"
    path.write_bytes(raw)
    return pool._examine(("node.json", path), now=NOW)


def test_aggregate_examines_alike_on_both_paths(tmp_path, monkeypatch) -> None:
    """pool._examine (what bench aggregate runs per report): the same entry and device rows, fast or slow."""
    rng = random.Random("examine")
    doc = _report(9)
    statuses = set()
    for raw in _variants(rng, doc)[:12] + [dumps(_edited(doc, rng)).encode() for _ in range(6)]:
        fast = _examined(tmp_path, raw)
        with monkeypatch.context() as m:
            m.setattr(written, "parse_node_report", lambda raw, **kw: None)
            slow = _examined(tmp_path, raw)
        assert fast == slow
        statuses.add(fast[0]["status"])
    assert statuses == {"counted", "rejected"}


def test_negative_exponents_are_respelled_as_rfc8785_spells_them() -> None:
    """plain_small on every float msgspec writes with 'e-' (the usual odd one out: a GPU's iqr_s is a few
    microseconds) gives rfc8785's bytes, and _respell_small finds them outside strings only."""
    import msgspec
    import rfc8785

    r = random.Random("small floats")
    checked = 0
    for _ in range(40_000):
        x = r.uniform(-1, 1) * 10.0 ** r.randrange(-12, -3)
        token = msgspec.json.encode(x)
        if b"e-" in token:
            assert canonical.plain_small(token) == rfc8785.dumps(x), x
            checked += 1
    assert checked > 20_000
    text = b'{"a":"x:3e-,","b":[3.1e-6,-2.5e-7],"c":"e-","d":"1e-5]","e":{"f":-1.25e-6}}'
    assert written._respell_small(text, 3) == (
        b'{"a":"x:3e-,","b":[0.0000031,-2.5e-7],"c":"e-","d":"1e-5]","e":{"f":-0.00000125}}'
    )
    assert written._respell_small(text, 2) is None and written._respell_small(text, 4) is None
    # a string holding what reads as a whole token (':3.1e-6,'): found beside the two outside, so unsure (None),
    # never respelled inside the string nor taken as one of the two
    assert written._respell_small(b'{"a":"x:3.1e-6,","b":[3.1e-6,-2.5e-7],"c":"e-"}', 2) is None
    assert written._respell_small(b"[1e-5]", 1) == b"[0.00001]"  # within the first bytes


def test_timestamps_near_the_ends_of_the_calendar_are_judged_as_before() -> None:
    """parse_timestamp skips the 400-day overflow probe from year 4 to 9996 (a zone moves a time by under a day): the
    same answers as probing, at each year and zone near either end."""
    import datetime as dt

    from bench.model.reports import ReportError, parse_timestamp

    def probed(text: str) -> object:
        utc = dt.datetime.fromisoformat(text).astimezone(dt.UTC)
        try:
            utc + dt.timedelta(days=400), utc - dt.timedelta(days=400)
        except OverflowError:
            return "out of range"
        return utc

    for year in [1, 2, 3, 4, 5, 9995, 9996, 9997, 9998, 9999]:
        for day in ("01-01T00:00:00", "12-31T23:59:59"):
            for zone in ("Z", "+23:59", "-23:59"):
                text = f"{year:04d}-{day}{zone}"
                try:
                    got: object = parse_timestamp(text, "t")
                except ReportError as exc:
                    assert "out of range" in str(exc)
                    got = "out of range"
                except OverflowError:
                    got = "overflow"
                try:
                    want = probed(text)
                except OverflowError:
                    want = "overflow"
                assert got == want or (want == "overflow" and got == "out of range"), text


def _model_outcome(data: dict[str, Any]) -> object:
    from bench.model.reports import NodeReport, ReportError

    try:
        return NodeReport.from_dict(data)
    except ReportError as exc:
        return ("refused", str(exc))


def test_the_models_exact_type_checks_decide_as_each_fields_own_check(monkeypatch) -> None:
    """Measurement.from_dict takes fields of their exact JSON types at once (_plain_measurement, _exact_fields): each
    measurement, device, spec, peak, host, GPU, summary, details and search field replaced by every JSON type, or removed, gives the model or
    the refusal that checking field by field gives."""
    from bench.model import reports

    doc = json.loads(json.dumps(_report()))
    kinds: list[Any] = ["s", 7, -1, 0.5, True, None, [], {}, reports._ABSENT]
    m = doc["measurements"][1]
    holders = [(m, sorted(m)), (m["device"], [*sorted(m["device"]), "name", "uuid"]),
               (m["spec"], [*sorted(m["spec"]), "world_size", "op"]), (m["peak"], [*sorted(m["peak"]), "tbps"]),
               (doc["inventory"]["host"], [*sorted(doc["inventory"]["host"]), "cpu_model", "physical_cores",
                                           "max_clock_mhz", "current_clock_mhz", "isa_flags"]),
               (doc["inventory"]["nvml"]["gpus"][1], [*sorted(doc["inventory"]["nvml"]["gpus"][1]), "serial",
                                                      "board_id", "pci_bus_id"]),
               (m["summary"], ["median_s", "n", "extra"]),
               (m["details"], [*sorted(m["details"]), "msmf", "items_per_step"]),
               (m["details"]["search"], [*sorted(m["details"]["search"]), "role", "mamf"])]  # fmt: skip
    compared = refused = 0
    for holder, keys in holders:
        for key in keys:
            old = holder.get(key, reports._ABSENT)
            for kind in kinds:
                if kind is reports._ABSENT:
                    holder.pop(key, None)
                else:
                    holder[key] = kind
                fast = _model_outcome(doc)
                with monkeypatch.context() as patch:
                    patch.setattr(reports, "_plain_measurement", lambda d: False)
                    patch.setattr(reports, "_exact_fields", lambda d, exact, required=None: False)
                    patch.setattr(reports, "_NUMBER_TYPE_SET", frozenset())
                    slow = _model_outcome(doc)
                assert fast == slow, (key, kind)
                compared += 1
                refused += isinstance(fast, tuple)
            if old is reports._ABSENT:
                holder.pop(key, None)
            else:
                holder[key] = old
    assert compared > 300 and 100 < refused < compared


def test_device_rows_take_up_the_checks_peaks_and_give_the_same_rows(tmp_path) -> None:
    """pool._examine computes each table peak once a report (verify.retained): its entry and rows are those of
    examine and device_rows run apart, for reports whose peaks differ (models, precisions, a GPU the table lacks)."""
    from bench.report import verify as v
    from bench.report.devices import COLUMNS, device_rows
    from tests.report.fleet import gpu_measurement, gpu_node

    reports = [_report(1), node_report(2, [650.0, 640.0], KEY, precision="float16")]
    other = gpu_node(3, [500.0, 510.0])
    other.measurements.append(gpu_measurement(3, 0, 300.0, precision="float16", role=None))
    other.measurements.append(gpu_measurement(3, 1, 200.0, model="NVIDIA Unknown 9000", role=None))
    data = other.to_dict()
    data["signature"] = sign.sign(data, KEY)
    reports.append(data)
    for n, doc in enumerate(reports):
        path = tmp_path / f"node{n}.json"
        path.write_text(dumps(doc))
        entry, rows = pool._examine((path.name, path), now=NOW)
        read = intake.read_json(path)
        findings, name, report = v.examine(read.data, now=NOW, policy=False, body=read.signed_body)
        assert entry["status"] == ("rejected" if v.errors(findings) else "counted")
        if report is not None and not v.errors(findings):
            assert rows == [tuple(r[c] for c in COLUMNS) for r in device_rows(report, name)]
            assert rows


def test_a_container_limit_refuses_on_both_paths_whatever_the_file_size() -> None:
    """With a limit on arrays and objects (max_containers), the fast reads take a document only where the strict parse
    does: the count is skipped only for a file no longer than the limit (a container takes a byte at least)."""
    for reader, raw in ((written.parse_node_report, dumps(_report()).encode()),
                        (written.parse_written, dumps({"a": [[1], {"b": 2}], "signature": {"alg": "x"}}).encode()),
                        (written.parse_signed, dumps({"a": [[1], {"b": 2}], "signature": {"alg": "x"}}).encode())):  # fmt: skip
        containers = raw.count(b"[") + raw.count(b"{")
        for limit in (1, containers - 1, containers, containers + 1, len(raw) - 1, len(raw), len(raw) + 1):
            try:
                strict = parse_json(raw, "doc.json", max_containers=limit)
            except intake.InputError:
                strict = None
            fast = reader(raw, max_containers=limit)
            assert (fast is None) if strict is None else (fast is not None and fast[0] == strict), (reader, limit)


def test_count_byte_counts_as_bytes_count_on_either_side_of_the_vector_threshold() -> None:
    rng = random.Random("count_byte")
    for size in (0, 1, 100, written._VECTOR_COUNT_FROM - 1, written._VECTOR_COUNT_FROM, 23_435, 100_000):
        data = bytes(rng.choice(b':{}[]"ae \xff\x00') for _ in range(size))
        for byte in (b":", b"e", b"\xff", b"\x00", b"q"):
            assert written.count_byte(data, byte) == data.count(byte), (size, byte)
