"""A report written by bench before the bottom-layer rework (schema version 1, a two-rank CPU suite: matmul search,
STREAM, training alone and data-parallel, every collective), read through today's code: every stored figure equals
what bench.figures derives from its raw samples, and its signature still verifies."""

import json
from pathlib import Path

import pytest

from bench import figures, registry
from bench.hardware import peaks
from bench.model import keys, sign
from bench.model.reports import NodeReport
from bench.report import verify as v

V1 = Path(__file__).resolve().parents[1] / "data" / "report-v1-2ranks.json"


@pytest.fixture(scope="module")
def data():
    return json.loads(V1.read_text())


def _derived(m) -> dict:
    work = m.work_per_iteration
    if m.workload == "matmul":
        return figures.matmul_summary(m.samples_s, work, (m.peak or {}).get("tflops"))
    if m.workload == "train":
        return figures.train_summary(m.samples_s, work, m.details["items_per_step"], (m.peak or {}).get("tflops"))
    if m.workload == "membw":
        return figures.membw_summary(m.samples_s, work, (m.peak or {}).get("tbps"))
    return figures.comm_summary(m.samples_s, m.spec["bytes"], m.spec["op"], m.spec["world_size"])


def test_every_figure_is_what_the_figures_module_derives(data):
    report = NodeReport.from_dict(data)
    assert {m.workload for m in report.measurements} == {"matmul", "membw", "train", "comm"}
    for i, m in enumerate(report.measurements):
        assert m.summary == _derived(m), f"measurements[{i}] ({m.workload})"  # identical, not approximately
        if "msmf" in m.details:
            assert m.details["msmf"] == figures.msmf(m.samples_s, m.work_per_iteration), f"measurements[{i}] msmf"


def test_work_formulas_match_what_was_stored(data):
    report = NodeReport.from_dict(data)
    for m in report.measurements:
        if m.workload == "matmul":
            assert m.work_per_iteration == figures.matmul_flops(m.spec["m"], m.spec["n"], m.spec["k"])
        elif m.workload == "train":
            assert m.work_per_iteration == figures.train_work(m.spec)
        elif m.workload == "membw":
            assert m.work_per_iteration == figures.stream_bytes(m.spec["kernel"], m.spec["elements"])


def test_its_signature_verifies_and_verify_finds_no_error(data):
    valid, why, _ = sign.inspect(data)
    assert valid, why
    trusted = {keys.public_key_id(V1.with_suffix(".pub"))}
    findings = v.verify_node_report(data, trusted=trusted)
    assert not v.errors(findings), findings
    assert "unknown-key" not in {f.code for f in findings}


def test_a_changed_figure_is_found(data):
    """The comparison can fail: one stored figure off in its last bit is a mismatch."""
    report = NodeReport.from_dict(data)
    m = report.measurements[0]
    assert m.summary != {**_derived(m), "tflops_median": _derived(m)["tflops_median"] * (1 + 2**-52)}


def test_upgraded_to_version_2_and_back_every_figure_is_the_same(data):
    """Read as version 1, written as version 2, read again: the same work, units, summaries and details."""
    old = NodeReport.from_dict(data)
    written = old.to_dict()
    assert written["schema_version"] == 2
    first = written["measurements"][0]
    assert "flops_per_iteration" not in first and isinstance(first["work_per_iteration"], str)
    again = NodeReport.from_dict(json.loads(json.dumps(written)))
    for a, b in zip(old.measurements, again.measurements, strict=True):
        assert (a.work_per_iteration, a.work_unit, a.summary, a.details) == (
            b.work_per_iteration,
            b.work_unit,
            b.summary,
            b.details,
        )
        assert a.work_unit == registry.get(a.workload).unit
        assert isinstance(a.work_per_iteration, int)


def test_version_1_override_sources_become_the_enum(data):
    import copy

    old = copy.deepcopy(data)
    m = next(m for m in old["measurements"] if m["peak"] and "assumptions" in m["peak"])
    m["peak"]["assumptions"].update(clock_source="--cpu-clock-mhz", fma_units_source="--fma-units")
    peak = NodeReport.from_dict(old).measurements[old["measurements"].index(m)].peak
    assert peak["assumptions"]["clock_source"] == peaks.Source.OVERRIDE
    assert peak["assumptions"]["fma_units_source"] == peaks.Source.OVERRIDE


@pytest.mark.parametrize("work", [2**53 - 1, 2**53, 2**53 + 1, 3 * 2**60 + 7])
def test_work_past_2_to_the_53_is_carried_exactly_and_signs(work, tmp_path):
    """A data-parallel training step of 2^53 FLOPs and more: a JSON number would round it (and RFC 8785 refuses it);
    the decimal string carries it to the last FLOP through signing and reading."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.report import synthetic as syn

    m = syn.matmul("float32", syn.samples(0.002))
    m.workload, m.work_per_iteration = "train", work
    d = syn.report([m]).to_dict()
    assert d["measurements"][0]["work_per_iteration"] == str(work)
    signed = {**d, "signature": sign.sign(d, Ed25519PrivateKey.generate())}
    assert sign.check(json.loads(json.dumps(signed)))[0]
    back = NodeReport.from_dict(json.loads(json.dumps(signed)))
    assert back.measurements[0].work_per_iteration == work


@pytest.mark.parametrize("bad", ["", "0", "012", "1e9", "-5", "1.5", " 7", "٣"])
def test_a_malformed_work_string_is_a_report_error(data, bad):
    from bench.model.reports import ReportError

    d = NodeReport.from_dict(data).to_dict()
    d["measurements"][0]["work_per_iteration"] = bad
    with pytest.raises(ReportError, match="work_per_iteration"):
        NodeReport.from_dict(d)


def test_a_version_1_fractional_work_is_refused(data):
    import copy

    from bench.model.reports import ReportError

    old = copy.deepcopy(data)
    old["measurements"][0]["flops_per_iteration"] = 1.5
    with pytest.raises(ReportError, match="whole number"):
        NodeReport.from_dict(old)
