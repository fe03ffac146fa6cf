"""Issue 12, attacks 1, 6, 7 and 8: forged node and capacity reports, built as a dishonest operator would (holding
the node keys, not the auditor's), each rejected with its finding code while the honest fleet still passes."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.model import sign
from bench.report import aggregate as agg
from bench.report import verify as v
from tests.adversarial import forge
from tests.report import fleet

KEY = forge.fresh_keys(1)[0]
AGGREGATOR = forge.fresh_keys(1)[0]
WEEK = dt.timedelta(days=7)
WEEK_S = WEEK.total_seconds()


def codes(findings, severity=v.ERROR):
    return {f.code for f in findings if f.severity == severity}


def aggregate(reports, trusted, max_age_s=WEEK_S):
    return agg.aggregate([(f"r{i}", r) for i, r in enumerate(reports)], trusted=trusted, now=forge.NOW,
                         rules=agg.Rules(max_age_s=max_age_s))  # fmt: skip


def test_honest_fleet_is_bounded_and_a_claim_needs_a_proof():
    reports = forge.honest_fleet(4, KEY)
    trusted = {forge.kid(KEY)}
    assert all(not v.errors(v.verify_node_report(r, trusted=trusted, max_age=WEEK, now=forge.NOW)) for r in reports)
    cap = aggregate(reports, trusted)
    (total,) = cap["totals"]
    assert total["devices"] == 8 and total["bounded_tflops"] == pytest.approx(total["reported_tflops"])
    assert not agg.check_claim(cap, "5 PFLOPS bf16")["supported"]
    assert agg.check_claim(cap, "5 PFLOPS bf16", proven={"bfloat16": 5.6e3})["supported"]


def test_attack_1_one_cpu_report_became_100_pflops_bf16():
    """Samples / 1e4, relabelled an H100 bf16 matmul with world_size 1000, cloned to 70 hosts with fresh keys."""
    cpu = forge.cpu_report(KEY)
    forgers = forge.fresh_keys(70)
    clones = [forge.as_h100(cpu, i, k) for i, k in enumerate(forgers)]
    trusted = {forge.kid(k) for k in forgers}
    findings = v.verify_node_report(clones[0], trusted=trusted, max_age=WEEK, now=forge.NOW)
    assert {"world-size", "implausible"} <= codes(findings)  # the peak is no longer multiplied by world_size
    cap = aggregate(clones, trusted)
    assert cap["totals"] == [] and all(i["status"] == "rejected" for i in cap["inputs"])
    assert any("world-size" in r for r in cap["inputs"][0]["reasons"])
    # the careful forger stays under the peak with world_size 1: the clones share their samples, so they are one device
    # counted once, and only 'reported'; and no claim holds without a challenge
    subtle = [forge.as_h100(cpu, i, k, world_size=None, speedup=300) for i, k in enumerate(forgers)]
    assert not v.errors(v.verify_node_report(subtle[0], trusted=trusted, max_age=WEEK, now=forge.NOW))
    cap = aggregate(subtle, trusted)
    (total,) = cap["totals"]
    assert total["devices"] == 1 and total["bounded_tflops"] == 0.0
    assert {"timed samples"} <= set(cap["duplicates"][0]["shared"])
    claim = agg.check_claim(cap, "100 PFLOPS bf16")
    assert not claim["supported"] and claim["verdict"].startswith("claim unproven")


@pytest.mark.parametrize("variant", ["unknown-model", "no-physical-cores", "relabelled-model", "cpu-clock-override",
                                     "unverified-clock"])  # fmt: skip
def test_attack_6_physical_bounds_sidestepped(variant):
    trusted = {forge.kid(KEY)}
    if variant in ("unknown-model", "relabelled-model"):
        data = fleet.node_report(1, [700.0], KEY)
        m = data["measurements"][0]
        if variant == "unknown-model":  # a name with no table row: nothing bounds it
            data["inventory"]["nvml"]["gpus"][0]["name"] = m["device"]["name"] = "NVIDIA Imaginary X9"
            data = forge.signed(data, KEY)
            findings = v.verify_node_report(data, trusted=trusted, max_age=WEEK, now=forge.NOW)
            assert "unknown-model" in codes(findings, v.WARNING) and not v.errors(findings)
            (total,) = aggregate([data], trusted)["totals"]
            assert total["bounded_tflops"] == 0.0 and total["reported_tflops"] > 0
            return
        m["device"]["name"] = "NVIDIA A100-SXM4-80GB"  # measured as another model than the inventory lists
        findings = v.verify_node_report(forge.signed(data, KEY), trusted=trusted, now=forge.NOW)
        assert "device-mismatch" in codes(findings)
        return
    host = {**forge.synthetic.HOST, "isa_flags": {"avx2": True, "fma": True}, "max_clock_mhz": 3000.0}
    from bench.hardware import peaks
    from tests.report import synthetic as syn

    m = syn.matmul("float32", syn.samples(0.002 / 1000))  # 1000x faster than the CPU can be
    if variant == "no-physical-cores":
        host = {k: val for k, val in host.items() if k != "physical_cores"}
        m = syn.matmul("float32", syn.samples(0.002))
    elif variant == "cpu-clock-override":  # the node's own --cpu-clock-mhz 1e7 in its recorded peak
        m.peak = peaks.cpu_peak(host, "float32", clock_mhz=1e7).to_dict()
    else:  # only a current clock: an estimate, which used to turn a 1000x inflation into a warning
        host = {**host, "max_clock_mhz": None, "current_clock_mhz": 2000.0}
        m.peak = peaks.cpu_peak(host, "float32").to_dict()
    m.summary = forge.figures.matmul_summary(m.samples_s, m.work_per_iteration, (m.peak or {}).get("tflops"))
    data = syn.report([m], host=host).to_dict()
    data = forge.signed(data, KEY)
    findings = v.verify_node_report(data, trusted=trusted, max_age=WEEK, now=forge.NOW)
    if variant == "no-physical-cores":
        assert "no-peak" in codes(findings, v.WARNING) and not v.errors(findings)
        (total,) = aggregate([data], trusted)["totals"]
        assert total["bounded_tflops"] == 0.0  # nothing bounds it: reported at most
        return
    assert "implausible" in codes(findings)  # above what 2 cores can do at any clock
    if variant == "cpu-clock-override":
        assert "peak-override" in codes(findings, v.WARNING)


def test_attack_6_an_override_or_estimate_never_raises_the_tier():
    from tests.report import synthetic as syn

    host = {**forge.synthetic.HOST, "isa_flags": {"avx2": True, "fma": True}, "max_clock_mhz": None,
            "current_clock_mhz": 2000.0}  # fmt: skip
    m = syn.matmul("float32", syn.samples(0.01))
    data = forge.signed(syn.report([m], host=host).to_dict(), KEY)
    report = v.NodeReport.from_dict(data)
    (tier,) = v.measurement_tiers(report, data, trusted={forge.kid(KEY)}, max_age=WEEK)
    assert tier["tier"] == v.REPORTED and "estimate" in tier["why"]


def test_attack_7_capacity_verify_ignores_the_auditor(tmp_path):
    """Stale and untrusted node reports passed capacity verify (it used the capacity report's own list and time); a
    capacity report x1000, re-signed by an unknown key, passed --claim without --reports."""
    mine = forge.honest_fleet(2, KEY)
    rogue = forge.fresh_keys(1)[0]
    stale = fleet.node_report(7, [700.0], rogue, end="2026-10-01T10:00:00.000000Z")
    reports = [*mine, stale]
    cap = agg.aggregate([(f"r{i}", r) for i, r in enumerate(reports)], now=forge.NOW)  # no list, no max age
    cap["signature"] = sign.sign(cap, AGGREGATOR)
    by_digest = {sign.digest(r): r for r in reports}
    findings = agg.verify_capacity(cap, by_digest, {forge.kid(KEY), forge.kid(AGGREGATOR)}, max_age=WEEK, now=forge.NOW)
    assert {"stale", "untrusted-key"} <= codes(findings)
    honest = agg.aggregate([(f"r{i}", r) for i, r in enumerate(mine)], now=forge.NOW)
    honest["signature"] = sign.sign(honest, AGGREGATOR)
    assert not v.errors(agg.verify_capacity(honest, {sign.digest(r): r for r in mine}, {forge.kid(KEY), forge.kid(AGGREGATOR)},
                                            max_age=WEEK, now=forge.NOW))  # fmt: skip
    # x1000, re-signed by a key nobody trusts, checked without --reports: no claim
    inflated = copy.deepcopy(honest)
    for t in inflated["totals"]:
        t["mamf_tflops"] *= 1000
        t["reported_tflops"] *= 1000
    inflated = forge.signed(inflated, rogue)
    path = tmp_path / "capacity.json"
    path.write_text(json.dumps(inflated))
    res = CliRunner().invoke(main, ["verify", str(path), "--claim", "1 PFLOPS bf16", "--json"])
    assert res.exit_code == 1
    (claim,) = json.loads(res.stdout)["claims"]
    assert not claim["supported"] and "no --reports" in claim["verdict"]


def test_attack_8_clones_are_not_duplicates():
    """Ten copies of one report under ten hostnames, UUIDs and keys share one samples vector: one device, reported."""
    original = fleet.node_report(1, [700.0], KEY)
    forgers = forge.fresh_keys(10)
    clones = []
    for i, k in enumerate(forgers):
        c = copy.deepcopy(original)
        c["inventory"]["host"].update(hostname=f"clone{i}", fingerprint=f"clone-fp-{i}")
        uuid = fleet.gpu_uuid(1000 + i, 0)
        c["inventory"]["nvml"]["gpus"][0]["uuid"] = c["measurements"][0]["device"]["uuid"] = uuid
        clones.append(forge.signed(c, k))
    trusted = {forge.kid(k) for k in forgers}
    cap = aggregate(clones, trusted)
    (total,) = cap["totals"]
    assert total["devices"] == 1 and total["bounded_tflops"] == 0.0
    (dup,) = cap["duplicates"]
    assert dup["shared"] == ["timed samples"] and len(dup["dropped"]) == 9
    assert sum(1 for i in cap["inputs"] if any(r.startswith("duplicate:") for r in i["reasons"])) == 9


@pytest.mark.parametrize("identity", ["serial", "board_id", "pci_bus_id"])
def test_attack_8_shared_serial_board_or_pci_ids_are_one_device(identity):
    a = fleet.node_report(1, [700.0], KEY)
    b = fleet.node_report(2, [705.0], KEY)
    value = {"serial": "1654922001234", "board_id": 6144, "pci_bus_id": "00000000:18:00.0"}[identity]
    for r in (a, b):
        r["inventory"]["nvml"]["gpus"][0][identity] = value
    if identity == "pci_bus_id":  # a PCI id is unique within a host only: the clone kept its host
        b["inventory"]["host"]["fingerprint"] = a["inventory"]["host"]["fingerprint"]
    cap = aggregate([forge.signed(a, KEY), forge.signed(b, KEY)], {forge.kid(KEY)})
    assert cap["totals"][0]["devices"] == 1 and len(cap["duplicates"]) == 1
    different = fleet.node_report(2, [705.0], KEY)
    different["inventory"]["nvml"]["gpus"][0][identity] = "other" if identity != "board_id" else 7000
    cap = aggregate([forge.signed(a, KEY), forge.signed(different, KEY)], {forge.kid(KEY)})
    assert cap["totals"][0]["devices"] == 2 and cap["duplicates"] == []
