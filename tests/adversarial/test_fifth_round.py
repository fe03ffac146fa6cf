"""Fifth round, a review of issue 13's refactor: what verify accepted that it should not (membw work not held to its
spec, train items/s from the node's details, comm work unread, a v1 integer beyond float range, a stray descriptor)."""

from __future__ import annotations

import copy

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import figures, registry
from bench.model.reports import Measurement
from bench.report import verify
from tests.report import synthetic as syn


def _errors(data):
    return [f for f in verify.verify_node_report(data) if f.severity == "error"]


def _with(measurement: Measurement, key) -> dict:
    data = syn.node_report(0, [700.0], key)
    data = {k: v for k, v in data.items() if k != "signature"}
    data["measurements"] = [*data["measurements"], measurement.to_dict()]
    return syn.resign(data, key)


def _membw(work: int) -> Measurement:
    s = syn.samples(0.1)
    return Measurement(workload="membw", spec={"kernel": "triad", "elements": 2**27, "dtype": "float64"},
                       device=syn.gpu_measurement(0, 0, 700.0).device, status="ok", timer="cuda_event",
                       work_per_iteration=work, work_unit="byte", samples_s=s,
                       summary=figures.membw_summary(s, work, None), validity={"check": "stream", "passed": True},
                       start_utc="2026-11-28T10:00:00.000000Z", end_utc="2026-11-28T10:00:05.000000Z")  # fmt: skip


def test_honest_membw_verifies():
    key = Ed25519PrivateKey.generate()
    assert _errors(_with(_membw(figures.stream_bytes("triad", 2**27)), key)) == []


def test_membw_work_is_held_to_the_stream_bytes_of_its_spec():
    """triad over 2^27 float64 moves 24 * 2^27 bytes (3.2 GB); a node claiming 1000x that per iteration reports
    32 PB/s of memory bandwidth, and verify re-derives the same inflated figure from the inflated work and passes it.
    bench.figures.stream_bytes exists, but registry/membw.py declares work=None ('the spec does not fix it')."""
    key = Ed25519PrivateKey.generate()
    inflated = figures.stream_bytes("triad", 2**27) * 10**7
    errors = _errors(_with(_membw(inflated), key))
    assert errors, "an inflated membw work_per_iteration (and GB/s) passes verify"


def test_comm_work_per_iteration_agrees_with_its_message_size():
    """comm's summary reads spec.bytes, never work_per_iteration: a stored work of 10^39 bytes passes unread."""
    key = Ed25519PrivateKey.generate()
    s = syn.samples(0.01)
    m = Measurement(workload="comm", spec={"op": "all_reduce", "bytes": 2**20, "world_size": 2},
                    device=syn.gpu_measurement(0, 0, 700.0).device, status="ok", timer="perf_counter",
                    work_per_iteration=10**39, work_unit="byte", samples_s=s,
                    summary=figures.comm_summary(s, 2**20, "all_reduce", 2),
                    validity={"check": "collective", "passed": True},
                    start_utc="2026-11-28T10:00:00.000000Z", end_utc="2026-11-28T10:00:05.000000Z")  # fmt: skip
    assert _errors(_with(m, key)), "comm work_per_iteration is never checked against spec.bytes"


def test_v1_flops_per_iteration_beyond_float_is_a_report_error_not_a_traceback():
    """upgrade_v1 calls math.isfinite on a JSON integer: past 1.8e308 that raises OverflowError (the file loader
    refuses >64-bit integers first, so only library callers that pass parsed dicts reach it)."""
    import json
    from pathlib import Path

    from bench.model.reports import NodeReport, ReportError

    d = json.loads((Path(__file__).parents[1] / "data" / "report-v1-2ranks.json").read_text())
    d["measurements"][0]["flops_per_iteration"] = 10**400
    with pytest.raises(ReportError):
        NodeReport.from_dict(copy.deepcopy(d))


def test_a_dropped_descriptor_that_reuses_a_name_fails_closed_and_never_replaces_the_builtin(tmp_path, monkeypatch):
    """A copy of a built-in descriptor left in bench/registry/ (matmul_old.py) registers 'matmul' a second time. That
    is a broken installation, not a report: loading the registry refuses it by name (bench verify then fails every
    report, exit 1), and the built-in matmul is never replaced by the stray copy."""
    builtin = registry.get("matmul")
    (tmp_path / "matmul_old.py").write_text(
        "from bench.registry import matmul as _m, register\n"
        "import dataclasses\n"
        "register(dataclasses.replace(_m.WORKLOAD))\n"
    )
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_LOADED", False)
    key = Ed25519PrivateKey.generate()
    data = syn.node_report(0, [700.0], key)
    with pytest.raises(ValueError, match="workload 'matmul' is registered twice"):
        verify.verify_node_report(data)
    assert registry._REGISTRY["matmul"] is builtin


def test_train_throughput_is_re_derived_from_the_spec_not_the_nodes_details():
    """items_per_s (exported as bench_train_items_per_second) is recomputed from details.items_per_step, which only
    the node asserts; the spec fixes it (batch * seq_len, times world_size for a data-parallel total)."""
    from bench.model import specs as rt

    key = Ed25519PrivateKey.generate()
    spec = rt.PRESETS["gpt"]["tiny"]
    work = figures.train_work(spec.to_dict())
    s = syn.samples(0.05)
    inflated = spec.items_per_step * 1000
    m = Measurement(workload="train", spec=spec.to_dict(), device=syn.gpu_measurement(0, 0, 700.0).device,
                    status="ok", timer="cuda_event", work_per_iteration=work, work_unit="FLOP", samples_s=s,
                    summary=figures.train_summary(s, work, inflated, None), validity={"check": "loss", "passed": True},
                    details={"items_per_step": inflated},
                    start_utc="2026-11-28T10:00:00.000000Z", end_utc="2026-11-28T10:00:05.000000Z")  # fmt: skip
    assert _errors(_with(m, key)), "a 1000x items_per_step (tokens/s) passes verify"
