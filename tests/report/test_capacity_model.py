"""CapacityReport: one reader of capacity reports (kind, version, the fields every reader uses), shared by bench report,
bench verify and bench disclose, so a future or hostile capacity report gets the same one-line answer from each."""

from __future__ import annotations

import copy

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.disclosure.leaves import DisclosureError, check_capacity
from bench.model.reports import CAPACITY_KIND, CAPACITY_READABLE, CapacityReport, ReportError, exact_count
from bench.report import aggregate as agg
from tests.report.fleet import NOW, node_report

KEY = Ed25519PrivateKey.generate()


def _capacity():
    reports = [(f"n{i}", node_report(i, [300.0 + i, 310.0 + i], KEY)) for i in range(3)]
    return agg.aggregate(reports, now=NOW)


def test_a_built_capacity_report_reads_back_typed():
    data = _capacity()
    cap = CapacityReport.from_dict(data)
    assert cap.schema_version == agg.CAPACITY_SCHEMA_VERSION and cap.to_dict() is data
    assert len(cap.devices) == 6 and cap.totals == data["totals"] and cap.inputs == data["inputs"]
    assert cap.accelerator_memory_bytes == int(data["accelerator_memory_bytes"])  # the exact decimal string, read


def test_version_2_wrote_memory_as_an_integer_and_is_still_read():
    data = _capacity()
    data["schema_version"], data["accelerator_memory_bytes"] = 2, 6 * 80 * 2**30
    assert CapacityReport.from_dict(data).accelerator_memory_bytes == 6 * 80 * 2**30
    big = 2**60 + 1
    data["schema_version"], data["accelerator_memory_bytes"] = 3, exact_count(big)
    assert CapacityReport.from_dict(data).accelerator_memory_bytes == big  # beyond 2^53, exact


def _edit(path, value):
    data = copy.deepcopy(_capacity())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("kind",), "bench.node-report", "not a bench capacity report"),
        (("schema_version",), 99, "unsupported capacity schema_version 99"),
        (("schema_version",), True, "unsupported capacity schema_version True"),
        (("created_utc",), "yesterday", "capacity.created_utc"),
        (("trusted_key_ids",), "k1", "capacity.trusted_key_ids should be list or null"),
        (("inputs",), {"a": 1}, "capacity.inputs should be list"),
        (("devices", 0), "row", "capacity.devices[0] should be dict"),
        (("accelerator_memory_bytes",), "0123", "capacity.accelerator_memory_bytes"),
        (("accelerator_memory_bytes",), 1.5e18, "capacity.accelerator_memory_bytes"),
    ],
)
def test_a_hostile_capacity_report_is_one_line_naming_the_field(path, value, message):
    with pytest.raises(ReportError, match=message.replace("[", r"\[").replace("]", r"\]")):
        CapacityReport.from_dict(_edit(path, value))


def test_every_reader_gives_the_same_answer_for_a_future_version():
    data = _edit(("schema_version",), max(CAPACITY_READABLE) + 1)
    with pytest.raises(ReportError) as one:
        CapacityReport.from_dict(data)
    findings = agg.verify_capacity(data)
    assert [f.message for f in findings] == [str(one.value)]
    with pytest.raises(DisclosureError) as other:
        check_capacity(data, "site.json", aggregator_ids=None)
    assert str(other.value) == f"site.json: {one.value}"
    assert data["kind"] == CAPACITY_KIND
