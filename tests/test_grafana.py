"""configs/grafana/bench-dashboard.json: every bench_* metric a query names is one the Prometheus export writes, and
every DCGM_FI_* series it joins is one dcgm-exporter exports by default, joined on a label both carry."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench.report import export
from tests.report import synthetic as syn

DASHBOARD = Path(__file__).resolve().parents[1] / "configs" / "grafana" / "bench-dashboard.json"
#: In dcgm-exporter's default-counters.csv
DCGM_DEFAULTS = {"DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
                 "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_XID_ERRORS"}  # fmt: skip


def _queries(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if isinstance(v.get("query"), dict)]
    return exprs


def _exported() -> dict[str, set[str]]:
    """Every series name the export writes for a GPU node that ran every workload, with its label names."""
    ms = [syn.on_gpu(m, 0) for m in syn.every_workload()]
    text = export.prometheus(syn.gpu_report(ms))
    return {f.name: {k for s in f.samples for k in s.labels} for f in text_string_to_metric_families(text)}


def test_every_bench_metric_in_the_dashboard_is_exported_with_the_labels_it_uses():
    dashboard = json.loads(DASHBOARD.read_text())
    exported = _exported()
    queries = _queries(dashboard)
    assert len(queries) >= 10
    named = set()
    for q in queries:
        for name in re.findall(r"\bbench_[a-z0-9_]+", q):
            named.add(name)
            assert name in exported, f"{name} in {q!r} is not in the export"
        for label in re.findall(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!=|=)\s*\"", q):
            assert any(label in labels for labels in exported.values()), (label, q)
        for name in re.findall(r"\bDCGM_FI_[A-Z0-9_]+", q):
            assert name in DCGM_DEFAULTS, name
            assert "on(UUID)" in q.replace(" ", "")  # the label dcgm-exporter and bench both carry
    # the headline series are on the dashboard
    assert {"bench_matmul_mamf_flops_per_second", "bench_matmul_mamf_efficiency_ratio", "bench_membw_bytes_per_second",
            "bench_train_mfu_ratio", "bench_measurement_valid", "bench_device_info"} <= named  # fmt: skip


def test_panels_have_units_and_no_two_share_a_place():
    dashboard = json.loads(DASHBOARD.read_text())
    places = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in dashboard["panels"]]
    assert len(places) == len(set(places))
    assert all(p["fieldConfig"]["defaults"].get("unit") for p in dashboard["panels"])
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def _legend(fmt: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda g: labels.get(g.group(1), ""), fmt)


def test_every_legend_tells_its_series_apart():
    """A legend that leaves out a label the series differ in draws several lines under one name (the training MFU
    legend read "vm cpu gpt tiny" four times: role, rank and precision missing). For every panel that plots a
    metric as exported, each series of a two-GPU node that ran every workload, training alone, as a rank and as a
    data-parallel total, gets a legend of its own; aggregated queries name every label they keep."""
    ms = [syn.on_gpu(m, i) for i in (0, 1) for m in syn.every_workload()]
    train = [m for m in ms if m.workload == "train"]
    ranked = [syn.on_gpu(m, 0) for m in syn.every_workload() if m.workload == "train"]
    ranked[0].details.update(rank=1)
    total = [syn.on_gpu(m, 0) for m in syn.every_workload() if m.workload == "train"]
    total[0].details.update(role="data-parallel total")
    text = export.prometheus(syn.gpu_report([*ms, *ranked, *total]))
    series = {f.name: [s.labels for s in f.samples] for f in text_string_to_metric_families(text)}
    assert len(train) == 2
    checked = 0
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            expr, fmt = target["expr"], target["legendFormat"]
            by = re.match(r"^\w+ by \(([^)]*)\)", expr)
            if by:
                kept = {x.strip() for x in by.group(1).split(",")}
                assert set(re.findall(r"\{\{\s*(\w+)\s*\}\}", fmt)) == kept, (panel["title"], fmt)
                continue
            bare = re.fullmatch(r"(bench_\w+)\{([^}]*)\}", expr)
            if not bare:
                continue
            rows = [s for s in series[bare.group(1)] if s.get("emulated", "false") == "false"]
            if 'gpu!=""' in bare.group(2):
                rows = [s for s in rows if s.get("gpu")]
            legends = [_legend(fmt, s) for s in rows]
            assert len(set(legends)) == len(legends), (panel["title"], sorted(legends))
            checked += 1
    assert checked >= 5
