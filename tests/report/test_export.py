"""Prometheus text parsed back by prometheus-client's own parser; CSV read back by pandas; Markdown content."""

from __future__ import annotations

import io

import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from bench.report import export
from tests.report import synthetic as syn


def _report():
    return syn.report([syn.matmul("float32", syn.samples(0.002)), syn.matmul("float64", syn.samples(0.004), status="invalid"),
                       syn.matmul("float32", syn.samples(0.0015), role="final", mamf=True)])  # fmt: skip


def test_prometheus_text_parses_back_with_labels_and_values():
    r = _report()
    families = {f.name: f for f in text_string_to_metric_families(export.prometheus(r))}
    assert {"bench_matmul_flops_per_second", "bench_matmul_mamf_flops_per_second", "bench_measurement_valid",
            "bench_run_complete", "bench_run_timestamp_seconds", "bench_device_info"} <= set(families)  # fmt: skip
    (mamf,) = families["bench_matmul_mamf_flops_per_second"].samples
    assert mamf.labels == {"Hostname": "node-a", "gpu": "", "UUID": "", "pci_bus_id": "", "device": "cpu",
                           "modelName": "Test CPU", "GPU_I_ID": "", "precision": "float32", "emulated": "false"}  # fmt: skip
    assert mamf.value == r.measurements[2].summary["tflops_median"] * 1e12
    fixed = families["bench_matmul_flops_per_second"].samples
    assert [s.labels["precision"] for s in fixed] == [
        "float32"
    ]  # the invalid float64 figure is not exported as a figure
    valid = {(s.labels["what"], s.labels["role"]): s.value for s in families["bench_measurement_valid"].samples}
    assert valid == {("float32", ""): 1.0, ("float64", ""): 0.0, ("float32", "final"): 1.0}
    assert families["bench_run_complete"].samples[0].value == 1.0
    assert families["bench_run_timestamp_seconds"].samples[0].value == 1795860300.0  # 2026-11-28T10:05:00Z


def test_a_partial_run_exports_incomplete():
    r = syn.report([syn.matmul("float32", syn.samples(0.002))], end=None)
    families = {f.name: f for f in text_string_to_metric_families(export.prometheus(r))}
    assert families["bench_run_complete"].samples[0].value == 0.0


def test_csv_round_trips_through_pandas():
    r = _report()
    metrics = pd.read_csv(io.StringIO(export.to_csv(export.metrics_frame(r))))
    assert list(metrics["metric"]) == ["matmul_tflops", "matmul_tflops", "matmul_mamf_tflops"]
    assert metrics.loc[0, "value"] == r.measurements[0].summary["tflops_median"]
    rows = pd.read_csv(io.StringIO(export.to_csv(export.measurements_frame(r))))
    assert len(rows) == 3 and list(rows["status"]) == ["ok", "invalid", "ok"]
    assert rows.loc[0, "median_s"] == r.measurements[0].summary["median_s"] and rows.loc[0, "spec_m"] == 512


def test_markdown_lists_figures_and_what_was_not_counted():
    text = export.markdown(_report())
    assert (
        "# bench run run-a" in text
        and "| MAMF GFLOPS |" in text
        and "| cpu | float32 | 512x512x512 | torch | 178.5 |" in text
    )
    assert "## Gates" in text and "| FAIL | correctness | matmul cpu float64: invalid" in text
    assert "## Not counted" in text and "invalid: product check failed" in text


def test_csv_writes_whole_numbers_as_integers_and_drops_empty_columns():
    r = _report()
    text = export.to_csv(export.measurements_frame(r))
    header, first = text.splitlines()[:2]
    assert "spec_m" in header and ",512,512,512," in first and "512.0" not in text
    frame = export.measurements_frame(r)
    assert len(header.split(",")) < len(frame.columns)  # 'reason' of ok rows etc. stay; never-filled columns go
