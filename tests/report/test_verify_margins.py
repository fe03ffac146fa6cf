"""Every threshold a `bench verify` or `bench challenge verify` verdict rests on, tested just past its margin through
the verifier's own check (issue 23, test strength): loosening one (the 6.5 GHz CPU ceiling tenfold, the 3% tolerance
by half, a proven bound's cap at its device's peak, a claim's comparison) fails a test here. The expected figures are
written out from their definitions (cores x 6.5 GHz x FLOPs per cycle of the widest ISA), not read back from the code
under test."""

from __future__ import annotations

import json

import pytest

from bench import figures
from bench.hardware import peaks
from bench.report import verify as v
from tests.adversarial import forge
from tests.adversarial.test_seventh_round import _reports, _verify_with_proof
from tests.report import synthetic
from tests.test_challenge import NODE_KEY, _answer, _drop, _issue, _receipts, kid, verify

#: float32 FLOPs per cycle per core of the widest ISA bench knows: 512-bit vectors (16 lanes) x FMA (2 FLOPs) x 2 units.
FLOAT32_PER_CYCLE = 16 * 2 * 2
#: What no 2-core CPU can exceed in float32 at any clock: 2 cores x 6.5 GHz x 64 FLOPs/cycle, in TFLOPS.
CEILING_2_CORES_TFLOPS = 2 * 6.5e9 * FLOAT32_PER_CYCLE / 1e12
#: bench's tolerance above a ceiling before a figure is impossible (rounding, timer resolution).
TOLERANCE = 0.03
#: Just inside and just past the tolerance: a loosening of the ceiling or the tolerance by half moves a verdict.
INSIDE, PAST = 1 + TOLERANCE - 0.01, 1 + TOLERANCE + 0.01


def test_the_definitions_these_tests_rest_on():
    flags = {f for f in ("avx512f", "fma", "amx_bf16", "amx_fp16", "amx_int8", "avx512_bf16", "avx512_fp16",
                         "avx512_vnni")}  # fmt: skip
    assert peaks.cpu_flops_per_cycle(flags, "float32")[0] == FLOAT32_PER_CYCLE
    assert peaks.IMPLAUSIBLE_TOLERANCE == TOLERANCE and v.CPU_MAX_CLOCK_MHZ == 6500.0


def _cpu_report(tflops_best: float) -> dict:
    """A 2-core CPU's float32 matmul whose best sample is `tflops_best`; the inventory names no clock, so the only
    bound is the verifier's ceiling (cores x 6.5 GHz x the widest ISA)."""
    work = figures.matmul_flops(synthetic.N, synthetic.N, synthetic.N)
    m = synthetic.matmul("float32", [work / (tflops_best * 1e12)] * 30)
    data = synthetic.report([m]).to_dict()
    assert data["measurements"][0]["summary"]["tflops_best"] == pytest.approx(tflops_best)
    return forge.signed(data, NODE_KEY)


@pytest.mark.parametrize(("factor", "impossible"), [(INSIDE, False), (PAST, True)])
def test_a_cpu_figure_just_past_the_6_5_ghz_ceiling_is_implausible(factor, impossible):
    findings = v.verify_node_report(_cpu_report(CEILING_2_CORES_TFLOPS * factor), trusted={kid(NODE_KEY)})
    flagged = [f for f in findings if f.code == "implausible"]
    assert bool(flagged) == impossible, [f.message for f in findings]
    if impossible:
        assert "whatever the clock" in flagged[0].message and f"{CEILING_2_CORES_TFLOPS:.4g}" in flagged[0].message


@pytest.mark.parametrize(("factor", "counted"), [(INSIDE, True), (PAST, False)])
def test_a_challenge_answered_just_past_a_cpus_ceiling_is_not_counted(tmp_path, factor, counted):
    """2 x 512^3 FLOPs from a 2-core CPU (as the commitment's inventory says) arriving at `factor` times what those
    cores could do at 6.5 GHz: at 1.04 it is above the peak (not counted), at 1.02 it counts."""
    path, ch = _issue(tmp_path, dtype="float32", n=512, products=1)
    drop = _drop(tmp_path)
    base = _answer(drop, ch)
    seconds = ch.flops_per_product / (CEILING_2_CORES_TFLOPS * factor * 1e12)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {base: seconds}), trusted={kid(NODE_KEY)})
    codes = {f.code for f in verdict.findings if f.severity == "error"}
    assert ("above-peak" not in codes) == counted and bool(verdict.devices) == counted, verdict.findings


H100_BF16_TFLOPS = 989.4  # NVIDIA's H100 SXM dense BF16 figure, as bench's peak table holds it


def _proof(tmp_path, uuid, tflops):
    import datetime as dt

    from bench import challenge as chl
    from bench.report import proofs
    from bench.report.store import dumps, write_atomic
    from tests.test_challenge import AUDITOR

    ch = chl.issue(AUDITOR, dtype="bfloat16", n=64, products=1, window=dt.timedelta(minutes=5), nodes=None)
    path = tmp_path / f"{tflops}.proof.json"
    entry = {"device": uuid, "key_id": kid(NODE_KEY), "host": "x-host", "tflops_lower_bound": tflops}
    write_atomic(path, dumps(proofs.document(ch, [entry], AUDITOR)))
    return path


@pytest.mark.parametrize(("factor", "capped"), [(0.999, False), (1.001, True)])
def test_a_proven_bound_just_past_its_devices_peak_is_capped_there(tmp_path, factor, capped):
    uuid = "GPU-" + "5" * 32
    report = _reports(tmp_path, uuid, NODE_KEY, "x-host")
    res = _verify_with_proof(tmp_path, report, _proof(tmp_path, uuid, H100_BF16_TFLOPS * factor), "0.5 PFLOPS bf16")
    out = json.loads(res.stdout)
    codes = {f["code"] for fs in out["reports"].values() for f in fs}
    proven = out["claims"][0]["proven_tflops"]
    assert ("proof-above-peak" in codes) == capped
    assert proven == pytest.approx(H100_BF16_TFLOPS * min(factor, 1.0))


@pytest.mark.parametrize(("factor", "supported"), [(0.999, True), (1.001, False)])
def test_a_claim_just_above_the_proven_bound_is_unsupported(tmp_path, factor, supported):
    uuid = "GPU-" + "6" * 32
    report = _reports(tmp_path, uuid, NODE_KEY, "x-host")
    proof = _proof(tmp_path, uuid, 600.0)
    res = _verify_with_proof(tmp_path, report, proof, f"{600.0 * factor} TFLOPS bf16")
    claim = json.loads(res.stdout)["claims"][0]
    assert claim["supported"] == supported and (res.exit_code == 0) == supported, res.output
