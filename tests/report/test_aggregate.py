import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import figures
from bench.model import keys, sign
from bench.model.samples import samples_digest
from bench.report import aggregate as agg
from bench.report import pool
from tests.report.fleet import NOW, gpu_uuid, node_report, resign

KEY = Ed25519PrivateKey.generate()
AGGREGATOR = Ed25519PrivateKey.generate()


def run(inputs, **kw):
    return agg.aggregate([(f"r{i}", d) for i, d in enumerate(inputs)], now=NOW, **kw)


def fleet(n_nodes=10, slow=None):
    """n_nodes x 8 H100s at ~700 bf16 TFLOPS; `slow` = (node, gpu, tflops) for one weak GPU."""
    reports = []
    for node in range(n_nodes):
        tflops = [700.0 + (g % 3) for g in range(8)]
        if slow and slow[0] == node:
            tflops[slow[1]] = slow[2]
        reports.append(node_report(node, tflops, KEY))
    return reports


def test_fleet_totals_groups_and_memory():
    cap = run(fleet())
    (group,) = cap["groups"]
    assert group["model"] == "NVIDIA H100 80GB HBM3" and group["precision"] == "bfloat16"
    assert group["devices"] == 80 and group["nodes"] == 10
    expected = 10 * sum(700.0 + (g % 3) for g in range(8))
    assert group["mamf_sum_tflops"] == pytest.approx(expected, rel=1e-3)
    assert group["peak_sum_tflops"] == pytest.approx(80 * 989.4)
    assert group["efficiency"] == pytest.approx(expected / (80 * 989.4), rel=1e-3)
    (total,) = cap["totals"]
    assert (
        total["mamf_pflops"] == pytest.approx(expected / 1e3, rel=1e-3)
        and total["mamf_eflops"] == total["mamf_pflops"] / 1e3
    )
    assert cap["accelerator_memory_bytes"] == str(80 * 85520809984)  # a decimal string: exact at any size
    assert cap["defective"] == [] and cap["duplicates"] == []
    assert all(i["status"] == "counted" and i["digest"] for i in cap["inputs"])


def test_duplicate_gpu_across_reports_counts_once_from_the_newest():
    old = node_report(1, [650.0, 650.0], KEY, end="2026-11-28T09:00:00.000000Z")
    new = node_report(1, [700.0, 700.0], KEY, end="2026-11-28T11:00:00.000000Z")
    cap = run([old, new])
    assert cap["groups"][0]["devices"] == 2
    assert cap["groups"][0]["mamf_sum_tflops"] == pytest.approx(1400.0, rel=1e-3)
    assert {d["device"] for d in cap["duplicates"]} == {gpu_uuid(1, 0), gpu_uuid(1, 1)}
    assert all(d["kept"] == sign.digest(new) and d["dropped"] == [sign.digest(old)] for d in cap["duplicates"])
    old_entry = next(i for i in cap["inputs"] if i["digest"] == sign.digest(old))
    assert any(r.startswith("duplicate:") for r in old_entry["reasons"])


def test_one_gpu_claimed_by_two_nodes_counts_once():
    a = node_report(1, [700.0], KEY)
    b = node_report(2, [700.0], KEY)
    b["inventory"]["nvml"]["gpus"][0]["uuid"] = a["inventory"]["nvml"]["gpus"][0]["uuid"]
    b["measurements"][0]["device"]["uuid"] = a["measurements"][0]["device"]["uuid"]
    cap = run([a, resign(b, KEY)])
    assert cap["totals"][0]["devices"] == 1 and len(cap["duplicates"]) == 1


def test_defective_gpu_is_listed_with_its_gap():
    cap = run(fleet(slow=(3, 5, 560.0)))
    (bad,) = cap["defective"]
    assert bad["node"] == "node00003" and bad["device"] == gpu_uuid(3, 5)
    assert bad["gap"] == pytest.approx(1 - 560.0 / 701.0, abs=0.01)
    assert "below the group median" in bad["reasons"][0]


def test_tolerance_and_baseline_rules():
    cap = run(fleet(slow=(3, 5, 660.0)))
    assert cap["defective"] == []  # 6% below median: inside the default 10%
    tight = agg.load_rules("tolerance = 0.05\n", "rules.toml")
    assert len(run(fleet(slow=(3, 5, 660.0)), rules=tight)["defective"]) == 1
    base = agg.load_rules('[[baseline]]\nmodel = "H100"\nprecision = "bfloat16"\nmin_tflops = 701.5\n', "rules.toml")
    flagged = run(fleet(n_nodes=2), rules=base)["defective"]
    assert len(flagged) == 2 * 6 and all("baseline" in d["reasons"][0] for d in flagged)  # the 700s and 701s


@pytest.mark.parametrize(
    "text, message",
    [("tolerence = 0.1", r"unknown key\(s\) tolerence"), ("tolerance = 2", "tolerance must be"),
     ('tolerance = "0.1"', "tolerance must be"), ("[[baseline]]\nmodel = 'x'", "needs exactly model"),
     ("x = [", "not valid TOML")],
)  # fmt: skip
def test_bad_rules_name_the_key(text, message):
    with pytest.raises(agg.RulesError, match=message):
        agg.load_rules(text, "rules.toml")


def test_rejected_reports_are_listed_with_why_and_not_counted():
    good = node_report(1, [700.0], KEY)
    forged = node_report(2, [700.0], KEY)
    forged["measurements"][0]["summary"]["tflops_median"] = 900.0
    cap = run([good, resign(forged, KEY), None])
    statuses = [i["status"] for i in cap["inputs"]]
    assert statuses == ["counted", "rejected", "rejected"]
    assert "figure-mismatch" in cap["inputs"][1]["reasons"][0]
    assert cap["totals"][0]["devices"] == 1


def test_untrusted_reports_are_rejected():
    other = Ed25519PrivateKey.generate()
    trusted = {keys.key_id(keys.raw_public(KEY.public_key()))}
    cap = run([node_report(1, [700.0], KEY), node_report(2, [700.0], other)], trusted=trusted)
    assert [i["status"] for i in cap["inputs"]] == ["counted", "rejected"]


def test_emulated_and_invalid_measurements_are_not_capacity():
    data = node_report(1, [700.0, 700.0], KEY)
    data["measurements"][1]["emulated"] = True
    cap = run([resign(data, KEY)])
    assert cap["totals"][0]["devices"] == 1


def test_claims_are_supported_only_by_the_proven_tier():
    """A measured MAMF sum is 'reported' (or 'bounded'): the operator holds the node keys, so it supports no claim on
    its own. Only a challenge's proven lower bound does."""
    cap = run(fleet(), trusted={keys.key_id(keys.raw_public(KEY.public_key()))})  # ~56 PFLOPS bf16, ~79 vendor peak
    unproven = agg.check_claim(cap, "50 PFLOPS bf16")
    assert not unproven["supported"] and unproven["reported_tflops"] > 50e3 and unproven["proven_tflops"] == 0.0
    assert unproven["bounded_tflops"] == 0.0  # no --max-age: freshness unchecked
    assert unproven["verdict"].startswith("claim unproven")
    yes = agg.check_claim(cap, "50 PFLOPS bf16", proven={"bfloat16": 55e3})
    assert yes["supported"] and yes["tier"] == "proven" and yes["margin"] == pytest.approx(0.1)
    no = agg.check_claim(cap, "0.07 EFLOPS bf16", proven={"bfloat16": 55e3})
    assert not no["supported"] and no["measured_share"] == pytest.approx(56.08 / 70, rel=1e-2)
    assert no["peak_only_share"] == pytest.approx((70 - 56.08) / 70, rel=1e-2)
    none = agg.check_claim(cap, "1 TFLOPS fp32")
    assert not none["supported"] and none["measured_tflops"] == 0.0
    assert not agg.check_claim(cap, "1 TFLOPS bf16", proven={"bfloat16": 55e3}, claimable=False)["supported"]
    with pytest.raises(ValueError, match="PFLOPS"):
        agg.parse_claim("lots of compute")
    assert agg.parse_claim("2.5 eflops fp8") == (2.5e6, "float8_e4m3")


def test_tiers_of_the_totals():
    trusted = {keys.key_id(keys.raw_public(KEY.public_key()))}
    rules = agg.Rules(max_age_s=7 * 86400)
    (total,) = run(fleet(n_nodes=2), trusted=trusted, rules=rules)["totals"]
    assert total["bounded_tflops"] == pytest.approx(total["reported_tflops"]) and total["bounded_devices"] == 16
    (total,) = run(fleet(n_nodes=2), rules=rules)["totals"]  # no trust list: integrity only
    assert total["bounded_tflops"] == 0.0 and total["reported_tflops"] > 0


def signed(cap):
    cap["signature"] = sign.sign(cap, AGGREGATOR)
    return cap


def test_capacity_report_recomputes_from_its_node_reports():
    reports = fleet(n_nodes=3, slow=(1, 2, 500.0))
    cap = signed(run(reports))
    by_digest = {sign.digest(r): r for r in reports}
    assert {f.code for f in agg.verify_capacity(cap, by_digest, now=NOW)} == {"no-trust-list"}  # a warning
    assert {f.code for f in agg.verify_capacity(cap)} == {"not-recomputed"}


def test_inflated_capacity_resigned_by_the_aggregator_fails_recomputation():
    reports = fleet(n_nodes=3)
    cap = run(reports)
    cap["totals"][0]["mamf_tflops"] *= 2
    findings = [
        f for f in agg.verify_capacity(signed(cap), {sign.digest(r): r for r in reports}) if f.severity == "error"
    ]
    assert [f.code for f in findings] == ["capacity-mismatch"] and "totals" in findings[0].message


def test_capacity_with_a_missing_or_altered_input_fails():
    reports = fleet(n_nodes=2)
    cap = signed(run(reports))
    assert "missing-input" in {f.code for f in agg.verify_capacity(cap, {sign.digest(reports[0]): reports[0]})}
    cap["groups"][0]["devices"] = 99
    assert "signature" in {f.code for f in agg.verify_capacity(cap, {sign.digest(r): r for r in reports})}


def test_parallel_verification_gives_the_same_capacity(monkeypatch):
    reports = fleet(n_nodes=4, slow=(2, 1, 500.0)) + [None]
    serial = run(reports)
    monkeypatch.setattr(pool, "PARALLEL_FROM", 2)
    assert run(reports) == serial


def test_jobs_1_verifies_in_this_process_and_gives_the_same_capacity(monkeypatch):
    """--jobs 1 (several sites aggregated at once, one process each) never starts a pool, whatever the fleet size."""
    reports = fleet(n_nodes=4, slow=(2, 1, 500.0))
    serial = run(reports)
    monkeypatch.setattr(pool, "PARALLEL_FROM", 2)

    def no_pool(*a, **k):
        raise AssertionError("a pool was started with jobs=1")

    monkeypatch.setattr(pool, "_map_parallel", no_pool)
    assert run(reports, jobs=1) == serial
    with pytest.raises(ValueError, match="at least 1"):
        run(reports, jobs=0)


def test_capacity_verification_from_files_in_parallel_checks_the_signature_too(monkeypatch, tmp_path):
    """The CLI's path: node reports as files read by the workers, the capacity signature checked by the same pool,
    unrelated files in the directory ignored."""
    reports = fleet(n_nodes=4, slow=(2, 1, 500.0))
    paths = []
    for i, r in enumerate(reports):
        paths.append(tmp_path / f"n{i}.json")
        paths[-1].write_text(json.dumps(r))
    (tmp_path / "junk.json").write_text("{not json")
    monkeypatch.setattr(pool, "PARALLEL_FROM", 2)
    cap = signed(agg.aggregate([(str(p), p) for p in paths], now=NOW))
    given = [(str(p), p) for p in sorted(tmp_path.glob("*.json"))]
    assert [f.code for f in agg.verify_capacity(cap, given, now=NOW)] == ["no-trust-list"]
    cap["groups"][0]["devices"] = 99
    assert next(f.code for f in agg.verify_capacity(cap, given)) == "signature"
    bad = [(str(paths[0]), tmp_path / "junk.json")]  # a counted input that cannot be read is missing
    assert "missing-input" in {f.code for f in agg.verify_capacity(signed(cap), bad)}


def _mig_report(node, tflops, serial="1650123", slots=(1, 2)):
    """A node with one H100 in MIG mode whose slices (3g.40gb, 60 of 132 SMs each) were measured as devices."""
    data = node_report(node, [tflops] * len(slots), KEY)
    gpu = data["inventory"]["nvml"]["gpus"][0]
    gpu.update(serial=serial, mig_enabled=True, mig_devices=[])
    data["inventory"]["nvml"]["gpus"] = [gpu]
    for slot, m in zip(slots, data["measurements"], strict=True):
        uuid = f"MIG-{node}-{slot}"
        gpu["mig_devices"].append({"index": slot, "uuid": uuid, "sm_count": 60, "memory_bytes": 40 << 30})
        m["device"].update(uuid=uuid, mig=True, sm_count=60, name=gpu["name"] + " MIG 3g.40gb")
    return resign(data, KEY)


def test_mig_slices_of_one_gpu_are_devices_a_cloned_slice_is_not():
    trusted = {keys.key_id(keys.raw_public(KEY.public_key()))}
    rules = agg.Rules(max_age_s=7 * 86400)
    cap = run([_mig_report(1, 300.0)], trusted=trusted, rules=rules)
    assert [i["status"] for i in cap["inputs"]] == ["counted"]
    (total,) = cap["totals"]
    assert total["devices"] == 2 and total["bounded_devices"] == 2  # 300 <= 989.4 x 60/132
    assert total["peak_tflops"] == pytest.approx(2 * 989.4 * 60 / 132)
    clone = _mig_report(2, 301.0, slots=(1,))  # another host claiming slot 1 of the same GPU (same serial)
    cap = run([_mig_report(1, 300.0), clone], trusted=trusted, rules=rules)
    assert cap["totals"][0]["devices"] == 2 and cap["duplicates"][0]["shared"] == ["NVML serial"]
    too_fast = _mig_report(3, 600.0)  # above a 60-SM slice's share of the peak
    assert "implausible" in cap_codes(run([too_fast], trusted=trusted, rules=rules))


def cap_codes(cap):
    return {r.split(":", 1)[0] for i in cap["inputs"] for r in i["reasons"]}


def test_steady_quantized_timings_are_not_taken_for_clones():
    """Two honest GPUs whose every sample the timer rounded to the same value share a vector that identifies nothing."""

    reports = []
    for node in (1, 2):
        data = node_report(node, [700.0], KEY)
        m = data["measurements"][0]
        m["samples_s"] = [0.0015625] * len(m["samples_s"])
        m["samples_sha256"] = samples_digest(m["warmup_s"], m["samples_s"])
        m["summary"] = figures.matmul_summary(m["samples_s"], int(m["work_per_iteration"]), m["peak"]["tflops"])
        reports.append(resign(data, KEY))
    cap = run(reports)
    assert cap["totals"][0]["devices"] == 2 and cap["duplicates"] == []
