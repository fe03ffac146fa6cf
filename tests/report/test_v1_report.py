"""A report written by bench before the bottom-layer rework (schema version 1, a two-rank CPU suite: matmul search,
STREAM, training alone and data-parallel, every collective), read through today's code: every stored figure equals
what bench.figures derives from its raw samples, and its signature still verifies."""

import json
from pathlib import Path

import pytest

from bench import figures
from bench.report import keys, sign
from bench.report import verify as v
from bench.report.model import NodeReport

V1 = Path(__file__).resolve().parents[1] / "data" / "report-v1-2ranks.json"


@pytest.fixture(scope="module")
def data():
    return json.loads(V1.read_text())


def _derived(m) -> dict:
    work = m.flops_per_iteration
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
            assert m.details["msmf"] == figures.msmf(m.samples_s, m.flops_per_iteration), f"measurements[{i}] msmf"


def test_work_formulas_match_what_was_stored(data):
    report = NodeReport.from_dict(data)
    for m in report.measurements:
        if m.workload == "matmul":
            assert m.flops_per_iteration == figures.matmul_flops(m.spec["m"], m.spec["n"], m.spec["k"])
        elif m.workload == "train":
            assert m.flops_per_iteration == figures.train_work(m.spec)
        elif m.workload == "membw":
            assert m.flops_per_iteration == figures.stream_bytes(m.spec["kernel"], m.spec["elements"])


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
