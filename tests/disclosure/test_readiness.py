"""Readiness per node class from the node reports a site's capacity reports counted, re-derivable at every level."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.disclosure import document as dd
from bench.disclosure import readiness as rd
from bench.disclosure.leaves import Store
from bench.model import intake, sign
from bench.report.store import dumps
from tests.disclosure import world
from tests.report import synthetic as syn


def test_node_figures_take_each_workloads_best_ok_figure():
    report = syn.gpu_report([syn.on_gpu(m, 0) for m in syn.every_workload()]).to_dict()
    figures = rd.node_figures(report)
    assert figures["busbw_gbps"] == 300.0 and figures["membw_gbps"] == 3000.0 and figures["train_mfu"] == 0.4
    report["measurements"][-1]["status"] = "invalid"  # a failed collective is not readiness
    assert rd.node_figures(report)["busbw_gbps"] is None


@pytest.mark.parametrize(
    "junk", [None, "x", [1], {"measurements": "no"}, {"measurements": [{"status": "ok", "summary": 3}]}]
)
def test_node_figures_survive_junk(junk):
    figures = rd.node_figures(junk if isinstance(junk, dict) else {"measurements": junk})
    assert figures["busbw_gbps"] is None and figures["tflops_per_watt"] == {}


def test_a_site_reports_tflops_per_watt_per_node_class_and_the_country_re_derives_it(tmp_path):
    store = Store()
    a = world.write_site(tmp_path, "North", "Alpha", "A1", [1, 2], power_w=700.0)
    b = world.write_site(tmp_path, "South", "Beta", "B1", [3], power_w=350.0)
    sa = world.site_disclosure(tmp_path, a, store, node_reports=True)
    sb = world.site_disclosure(tmp_path, b, store, node_reports=True)
    site = world.read(sa)
    (cls,) = site["readiness_by_class"]["classes"]
    assert cls["node_class"] == "4x NVIDIA H100 80GB HBM3" and cls["nodes"] == 2
    assert cls["tflops_per_watt"]["bf16/fp16"] == pytest.approx(701.5 / 700.0, rel=1e-3)
    assert len(site["readiness_by_class"]["node_reports"]) == 2
    assert any(r["id"].startswith("tflops_per_watt.bf16/fp16") and r["value"] for r in site["readiness"])
    city_a = world.rollup("city", "Alpha", [sa], store, tmp_path / "alpha.json")
    city_b = world.rollup("city", "Beta", [sb], store, tmp_path / "beta.json")
    north = world.rollup("region", "North", [city_a], store, tmp_path / "north.json")
    south = world.rollup("region", "South", [city_b], store, tmp_path / "south.json")
    top = world.read(world.rollup("country", "Freedonia", [north, south], store, tmp_path / "f.json"))
    (cls,) = top["readiness_by_class"]["classes"]
    assert cls["nodes"] == 3 and top["readiness_by_class"]["source"] == "children"
    assert cls["tflops_per_watt"]["bf16/fp16"] == pytest.approx((2 * 701.5 / 700 + 701.5 / 350) / 3, rel=1e-3)
    assert dd.verify(top, Store(tmp_path)) == []


def test_a_node_report_the_capacity_did_not_count_is_not_used(tmp_path):
    store = Store()
    files = world.write_site(tmp_path, "North", "Alpha", "A1", [1], power_w=700.0)
    stranger = Ed25519PrivateKey.generate()
    data = intake.read_json(next(files["nodes"].glob("*.json"))).data
    for m in data["measurements"]:
        m["details"]["telemetry"]["mean_power_w"] = 1.0  # 700 TFLOPS per watt, from a report nobody counted
    data = {k: x for k, x in data.items() if k != "signature"}
    data["signature"] = sign.sign(data, stranger)
    (files["nodes"] / "extra.json").write_text(dumps(data))
    doc = world.read(world.site_disclosure(tmp_path, files, store, node_reports=True))
    (cls,) = doc["readiness_by_class"]["classes"]
    assert cls["nodes"] == 1 and cls["tflops_per_watt"]["bf16/fp16"] < 2


def test_re_deriving_readiness_needs_the_node_reports(tmp_path):
    store = Store()
    files = world.write_site(tmp_path, "North", "Alpha", "A1", [1], power_w=700.0)
    out = world.site_disclosure(tmp_path, files, store, node_reports=True)
    for p in files["nodes"].glob("*.json"):
        p.unlink()
    findings = dd.verify(world.read(out), Store(tmp_path))
    assert findings and "node report" in findings[0].message and "not in the folder" in findings[0].message
