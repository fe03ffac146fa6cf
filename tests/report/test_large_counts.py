"""Counts beyond 2^53: RFC 8785 carries integers exactly only up to 2^53 - 1, so signed documents carry large counts
as decimal strings, and sign.py names the field of any integer it cannot carry (never a traceback)."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.model import canonical, sign
from bench.model.reports import exact_count, read_count
from bench.report import aggregate as agg
from tests.report.fleet import NOW, node_report, resign

KEY = Ed25519PrivateKey.generate()
LIMIT = 2**53


@pytest.mark.parametrize("value", [LIMIT - 1, -(LIMIT - 1)])
def test_the_largest_carriable_integer_signs_and_checks(value):
    doc = {"kind": "x", "count": value}
    doc["signature"] = sign.sign(doc, KEY)
    assert sign.check(doc) == (True, "valid")


@pytest.mark.parametrize("value", [LIMIT, LIMIT + 1, -LIMIT, 68 * 10**15 * 8])
def test_an_uncarriable_integer_is_a_clear_error_naming_the_field(value):
    doc = {"kind": "x", "totals": [{"precision": "bf16", "memory": value}]}
    with pytest.raises(canonical.UncarriableNumber, match=r"totals\[0\]\.memory = -?\d+ is beyond .*2\^53"):
        sign.sign(doc, KEY)
    # checking such a document is a finding, not a traceback
    valid, why = sign.check({**doc, "signature": {}})
    assert not valid and "totals[0].memory" in why


def test_counts_round_trip_exactly_as_decimal_strings():
    for n in (0, 1, LIMIT - 1, LIMIT, LIMIT + 1, 68 * 10**15):
        assert read_count(exact_count(n)) == n
    for bad in ("", "-1", "1e3", " 1", "01", "1.0", 1.0, True, None, "١٢"):
        with pytest.raises(ValueError):
            read_count(bad)


def _fleet(memories: list[list[int]]) -> list[tuple[str, dict]]:
    out = []
    for node, per_gpu in enumerate(memories):
        data = node_report(node, [700.0 + g for g in range(len(per_gpu))], KEY)
        for gpu, memory in zip(data["inventory"]["nvml"]["gpus"], per_gpu, strict=True):
            gpu["memory_bytes"] = memory
        out.append((f"r{node}", resign(data, KEY)))
    return out


@pytest.mark.parametrize(
    "memories, total",
    [
        ([[2**52], [2**52 - 1]], LIMIT - 1),
        ([[2**52], [2**52]], LIMIT),
        ([[2**52], [2**52 + 1]], LIMIT + 1),
        ([[85 * 10**14] * 8], 68 * 10**15),  # 68 PB of accelerator memory: the fleet benchmark's crash
    ],
)
def test_capacity_memory_totals_at_the_boundary_sign_and_verify_exactly(memories, total):
    inputs = _fleet(memories)
    cap = agg.aggregate(inputs, now=NOW, trusted={sign.signer(inputs[0][1])})
    assert cap["schema_version"] == 3
    assert cap["accelerator_memory_bytes"] == str(total)
    cap["signature"] = sign.sign(cap, KEY)
    assert sign.check(cap) == (True, "valid")
    assert read_count(cap["accelerator_memory_bytes"]) == total
    findings = agg.verify_capacity(cap, inputs, trusted={sign.signer(inputs[0][1])}, now=NOW)
    assert not [f for f in findings if f.severity == "error"], findings


def test_a_version_2_capacity_report_still_verifies_and_an_edited_total_does_not():
    inputs = _fleet([[85520809984] * 2, [85520809984] * 2])
    cap = agg.aggregate(inputs, now=NOW)
    old = {k: v for k, v in cap.items()}
    old["schema_version"], old["accelerator_memory_bytes"] = 2, int(cap["accelerator_memory_bytes"])
    old["signature"] = sign.sign(old, KEY)
    assert not [f for f in agg.verify_capacity(old, inputs, now=NOW) if f.severity == "error"]
    old["accelerator_memory_bytes"] += 1
    old = resign(old, KEY)
    codes = {f.code for f in agg.verify_capacity(old, inputs, now=NOW) if f.severity == "error"}
    assert "capacity-mismatch" in codes


def test_a_fleet_where_some_gpus_report_no_memory_still_sums_the_others_exactly():
    inputs = _fleet([[2**52, 2**52 + 1]])
    data = inputs[0][1]
    del data["inventory"]["nvml"]["gpus"][0]["memory_bytes"]  # NVML gave none: the column gets a gap (pandas: floats)
    inputs = [("r0", resign(data, KEY))]
    cap = agg.aggregate(inputs, now=NOW)
    assert cap["accelerator_memory_bytes"] == str(2**52 + 1)
