"""The third attack on issue 12 (around the second round's fixes): each forged with bench's own functions, rejected
with its finding code, the honest path next to it still counting. Named after the attacker's scripts."""

from __future__ import annotations

import datetime as dt

import pytest

from bench import challenge as chl
from bench.hardware import peaks
from bench.model import intake
from bench.report import proofs
from bench.report.store import dumps, write_atomic
from tests.adversarial.test_second_round import H100, _answer_as, error_codes
from tests.test_challenge import AUDITOR, AUDITOR_ID, NODE_KEY, _drop, _issue, _receipts, kid, verify


def test_a1_same_challenge_proofs_max(tmp_path):
    """Each proof credits its devices over the elapsed time of its own verify run, and the operator chooses which
    answers each run sees (by holding back reveals): run i credited device i over a shorter time, and the per-device
    best of three proofs of ONE challenge summed to 1.45x the best single run. Proofs are never added now."""
    _, ch = _issue(tmp_path, dtype="bfloat16")
    paths = []
    for i, credited in enumerate(([("GPU-a", 7.0)], [("GPU-a", 5.0), ("GPU-b", 5.0)],
                                  [("GPU-a", 3.7), ("GPU-b", 3.7), ("GPU-c", 3.7)])):  # fmt: skip
        devices = [{"device": d, "tflops_lower_bound": t} for d, t in credited]
        p = tmp_path / f"proof{i}.json"
        write_atomic(p, dumps(proofs.document(ch.data, devices, AUDITOR)))
        paths.append(p)
    proven = proofs.read(paths, {AUDITOR_ID}, max_age=dt.timedelta(days=3650))
    assert proven.totals()["bfloat16"] == 3 * 3.7  # the best single proof, not 7 + 5 + 3.7


def test_b1_mig_sm_inflation(tmp_path):
    """A MIG slice's ceiling is its SM share of its GPU's peak, and its SM count is the operator's word: one slice
    claiming 1320 SMs of a 132-SM H100, seven slices of 132 SMs each, or the whole GPU answering beside its slices
    all passed the peak guards. Now: no slice count above the GPU's, slices no more than the GPU in all, and a GPU
    shared out as slices is no device of its own."""
    whole = peaks.vendor_peak(H100, "bfloat16").tflops

    def ceilings(slices, extra_whole=False):
        gpu = {
            "index": 0,
            "name": H100,
            "uuid": "GPU-e",
            "mig_devices": [
                {"index": i, "uuid": u, "sm_count": sm, "memory_bytes": 10 * 2**30} for i, (u, sm) in enumerate(slices)
            ],
        }
        known = chl.auditor._inventory_devices({"gpus": [gpu]})
        return {u: chl.device_ceiling("cuda", f["name"], "bfloat16", {}, sm_count=f["sm_count"], mig=f["mig"])
                for u, f in known.items()}  # fmt: skip

    assert ceilings([("MIG-a", 1320)]) == {"MIG-a": None}
    assert set(ceilings([(f"MIG-{i}", 132) for i in range(7)]).values()) == {None}
    honest = ceilings([(f"MIG-{i}", 18) for i in range(7)])
    assert "GPU-e" not in honest  # the GPU answering as a whole beside its slices is an unknown device
    assert sum(honest.values()) <= whole and honest["MIG-0"] == pytest.approx(whole * 18 / 132)
    assert not peaks.mig_slices_fit(H100, [100, 40]) and peaks.mig_slices_fit(H100, [60, 60])


def test_c1_shared_reveal_across_commitments(tmp_path):
    """The shared-file check and the device cap held within one commitment only: eight commitments of one node, each
    naming the same reveal files, cost the verifier eight full decompressions per file. A node answers once now, and
    a reveal file another commitment already named is shared."""
    path, ch = _issue(tmp_path, dtype="float32", n=64, products=1)
    drop = _drop(tmp_path)
    first = _answer_as(drop, ch, "node1", "GPU-1")
    again = _answer_as(drop, ch, "node1", "GPU-2", base="zz-" + chl.commit_name("node1", ch.nonce))
    other = _answer_as(drop, ch, "node2", "GPU-3")
    manifest = drop / f"{other}{chl.REVEAL_SUFFIX}"  # node2's reveal names node1's file for its own device
    mine = chl.reveal(drop, other, ch, [])
    theirs = intake.read_json(drop / f"{first}{chl.REVEAL_SUFFIX}").data["files"][0]
    mine["files"] = [{**theirs, "device": "GPU-3"}]
    write_atomic(manifest, dumps(mine))
    receipts = _receipts(tmp_path, ch, drop, {first: 1.0, again: 2.0, other: 3.0})
    verdict = verify(path, drop, receipts, trusted={kid(NODE_KEY)})
    codes = error_codes(verdict)
    assert {"second-commitment", "shared-reveal-file"} <= codes
    assert [d["device"] for d in verdict.devices] == ["GPU-1"]  # node1's first answer still counts
    assert again
