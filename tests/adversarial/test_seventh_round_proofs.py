"""Attack round on issue 23's proofs (attacker 'attack23'): a dishonest operator holding its node keys, choosing its
files, timing and arithmetic. Each attack is a test; those that succeeded before their fix say so in their docstring,
those that held say 'held'."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from bench import challenge as chl
from bench.challenge import exact_rows
from bench.model import sign
from bench.report.store import dumps, write_atomic
from tests.adversarial import block_schemes
from tests.adversarial.test_seventh_round import _junk, error_codes
from tests.perf import precision_table as table
from tests.test_challenge import AUDITOR, AUDITOR_ID, NODE_KEY, OTHER, _answer, _drop, _issue, _receipts, kid, verify

# --- the collector's --expect -------------------------------------------------------------------------------------


def _collect(tmp_path, ch, drop, expect, **kw):
    """`challenge collect --expect` once over what is in the drop (a deadline already past: one scan)."""
    return chl.collect(drop, ch, tmp_path / "receipts.json", AUDITOR, archive=tmp_path / "archive", auditor=AUDITOR_ID,
                       expect=expect, until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), interval=0.0, **kw)  # fmt: skip


def test_one_node_cannot_fill_expect_with_copies_of_its_own_answer(tmp_path):
    """Succeeded before the fix: one node (its own key, its own bound name) wrote its commitment under three file
    names, each re-signed (committed_utc differs, so the bytes and their sha256 differ): `collect --expect 3` counted
    three valid commitments and stopped, before the other two nodes of the fleet had answered, whose answers then had
    no receipt and proved nothing. --expect now counts node names, not files."""
    _, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    base = _answer(drop, ch, node="node-a", uuid="host-a", key=NODE_KEY)
    for copy in range(2):
        data = chl.commitment(ch, "node-a", {"host": {"hostname": "node-a"}}, [], NODE_KEY)
        data["committed_utc"] = f"2026-11-28T12:00:0{copy}.000000Z"

        data.pop("signature")
        data["signature"] = sign.sign(data, NODE_KEY)
        write_atomic(drop / f"{base}-copy{copy}{chl.COMMIT_SUFFIX}", dumps(data))
    log = _collect(tmp_path, ch, drop, 3, trusted={kid(NODE_KEY)}, names={"node-a": kid(NODE_KEY)})
    assert len([r for r in log.receipts if r["accepted"]]) >= 1
    assert log.valid == 1, log.receipts


def test_made_up_names_do_not_fill_expect(tmp_path):
    """Succeeded before the fix: a trusted key (bound to node-b in the trust list) signed three commitments under
    names nobody challenged or bound: each was accepted and counted toward --expect, so one key could end the fleet's
    collection at once. A name the challenge does not list is not accepted; where the trust list binds names to a key,
    that key's commitments under other names are logged (verify judges them) but do not count toward --expect."""
    _, ch = _issue(tmp_path, dtype="bfloat16", products=1, nodes=["node-a", "node-b"])
    drop = _drop(tmp_path)
    _junk(drop, ch, "intruder", OTHER, 1)
    log = _collect(tmp_path, ch, drop, 1, trusted={kid(NODE_KEY), kid(OTHER)})
    assert log.valid == 0 and not any(r["accepted"] for r in log.receipts), log.receipts

    _, ch = _issue(tmp_path, dtype="bfloat16", products=1)  # no node list: any name may answer
    drop = tmp_path / "drop2"
    drop.mkdir()
    for j in range(3):
        _junk(drop, ch, f"made-up{j}", OTHER, 1)
    names = {"node-a": kid(NODE_KEY), "node-b": kid(OTHER)}
    log = _collect(tmp_path, ch, drop, 3, trusted={kid(NODE_KEY), kid(OTHER)}, names=names)
    assert log.valid == 0, log.receipts


# --- junk that costs the verifier before it is refused -------------------------------------------------------------


def test_hostile_reveal_manifests_are_capped_and_charged_to_the_key(tmp_path, monkeypatch):
    """Succeeded before the fix: a reveal manifest was read with the default limits of a node report, and one that
    starts like a record stream ('{"record":{') up to 1 GiB; a manifest that failed to read ('malformed-reveal') was not
    charged to the key's budget. So one trusted key could make the verifier read 1 GiB per commitment (100 commitments
    under made-up names: 100 GiB read). Now a manifest is read under the commitment's own limits (MAX_COMMIT_BYTES,
    MAX_COMMIT_CONTAINERS, never as a stream), and an unreadable one counts as a failed product check."""
    from bench.challenge import triage
    from bench.model import intake

    path, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    arrivals = {}
    for j in range(6):
        base = _junk(drop, ch, f"junk{j}", OTHER, 1)
        with open(drop / f"{base}{chl.REVEAL_SUFFIX}", "wb") as fh:  # sparse: no disk used, 100 MiB to read
            fh.write(b'{"record":{')
            fh.truncate(100 * 2**20)
        arrivals[base] = 0.1 + j / 100
    arrivals[_answer(drop, ch, node="node-a", uuid="host-a", key=NODE_KEY)] = 1.0
    read = []
    original = intake.read_bytes
    monkeypatch.setattr(intake, "read_bytes", lambda p, **kw: read.append(p.name) or original(p, **kw))
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, arrivals), trusted={kid(NODE_KEY), kid(OTHER)})
    assert verdict.fleet["verified_flops"] == 2 * 64**3  # the honest answer, judged all the same
    big = [f for f in verdict.findings if f.code == "malformed-reveal"]
    assert big and all("more than the limit" in f.message for f in big), [f.message for f in big]
    assert len([n for n in read if n.endswith(chl.REVEAL_SUFFIX) and n.startswith("junk")]) == triage.JUNK_PER_KEY
    assert "key-budget" in error_codes(verdict)


# --- cheaper arithmetic the precision table did not list ----------------------------------------------------------

#: Each scheme of block_schemes that is cheaper than the challenge precision on an H100 (fewer tensor-core cycles than
#: one product of it): it must fail with a 3x margin. For float32 (67 TFLOPS on an H100 SXM) every listed scheme but
#: the six int8 products of 'int8 block32 x3' (the known gap of int8 x3) is; for the half precisions, one int8 or fp8
#: product (2x their rate) is, three int8 products (1.5x the cost of one) or four fp8 products (2x) are not.
BLOCK_CHEAPER = {
    "float32": ["int8 block32 x1", "int8 block32 x2", "mxfp8 e4m3", "mxfp8 e5m2", "mxfp8 e4m3 x2 (3 products)",
                "mxfp8 e4m3 x2 (4 products)", "bf16x2", "tf32x2", "fp16 scaled"],
    "bfloat16": ["int8 block32 x1", "mxfp8 e4m3", "mxfp8 e5m2"],
    "float16": ["int8 block32 x1", "mxfp8 e4m3", "mxfp8 e5m2", "bf16x2"],
    "float64": list(block_schemes.SCHEMES),
}  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
def test_block_scaled_and_split_schemes_fail_with_3x_margin(dtype):
    """Held at n = 256 (and, run once, at 1024: docs/proofs.md): MX-style block scales of 32 elements along K do not save
    int8 or fp8, because the version 2 operands spread over 16 binades inside every block of 32, so the block's
    largest element sets the scale as a row's does (int8 block32 x2 scores 1.6x better than per-row scales, still
    failing for bfloat16 at 4.1 at n = 1024; it costs 1.5 bf16 products). Schemes as accurate as the precision pass:
    an e4m3 hi/lo split with all four products, bf16x2 and tf32x2 for bfloat16 (exact on bf16 operands)."""
    s = table.scores(dtype, 256, schemes=block_schemes.SCHEMES)
    assert {k: v for k, v in s.items() if k in BLOCK_CHEAPER[dtype] and v < 3} == {}
    if dtype == "bfloat16":
        assert {k: s[k] for k in ("mxfp8 e4m3 x2 (4 products)", "bf16x2", "tf32x2", "fp16 scaled") if s[k] > 1} == {}


def test_int8_x3_fails_a_float32_challenge_at_the_default_k_and_passes_at_k_2n():
    """Succeeded before the float32 row rule (exact_rows.sequential_scores): six int8 products with row or block scales
    passed already at n = 256 (0.64 and 0.41), where on an H100 they cost about a tenth of one float32 product. Under
    the row rule they fail at n = 256 (3.1 and 1.9 square) and passed from n = 1024 at the former default K = 2n
    (0.99 and 0.67): a sequential float32 sum over 2048 terms errs as much as their 21-bit fixed point. The default K
    became protocol.ACCURACY_INNER (64), where they fail by 3x (4.6 and 3.8), and is now K = 2n folded in runs of 64
    (bench.challenge.fold), where they fail as at K = 64; an auditor's --inner 2n --no-fold is where they still pass
    (docs/proofs.md, the stated limit). Recorded so the docs' sizes are not relied on beyond measurement."""
    schemes = {"int8 row x3": table.CHEAPER["int8 row x3"], "int8 block32 x3": block_schemes.SCHEMES["int8 block32 x3"]}
    inner = chl.default_inner("float32", 1024)
    default = table.scores("float32", 1024, schemes=schemes, inner=inner, fold=chl.default_fold("float32", inner))
    assert default["int8 row x3"] > 3 and default["int8 block32 x3"] > 3
    long = table.scores("float32", 1024, schemes=schemes, inner=2048)
    assert long["int8 row x3"] < 1.1 and long["int8 block32 x3"] < 1


# --- which rows the auditor opens ---------------------------------------------------------------------------------


def _partly_cheap(n: int, cheap_rows: np.ndarray, dtype: str = "float32"):
    a = chl.operand("0" * 64, "node", "GPU-x", 0, "A", n, dtype, 2)
    b = chl.operand("0" * 64, "node", "GPU-x", 0, "B", n, dtype, 2)
    c = a @ b
    c[cheap_rows] = (a[cheap_rows].to(torch.bfloat16).float() @ b.to(torch.bfloat16).float()).to(c.dtype)
    return a, b, c


def test_rows_computed_cheaply_are_found_as_often_as_sixteen_secret_rows_allow():
    """Held: a node that computes one row in eight in bf16 (saving about 7/8 of an eighth on an H100) passes the
    exact-row check only when none of the 16 secret rows is one of them, (7/8)^16 = 12% of rounds; over 64 rounds
    (fresh verifier seeds) it passed 7. The test catches fewer rows (ROWS = 8 let 20 of 64 through). Cheap rows are
    always caught when sampled: each scores about 1000."""
    n = 128
    a, b, c = _partly_cheap(n, np.arange(0, n, 8))
    passed = sum(exact_rows.check(a, b, c, "float32", np.random.default_rng(seed)).passed for seed in range(64))
    assert passed <= 14, passed
    every = exact_rows.check(a, b, c, "float32", np.random.default_rng(0), rows=n)
    assert not every.passed and every.score > 30


def test_a_few_cheap_columns_are_diluted_only_within_the_allowance():
    """Held, with a bound stated: the row score is an RMS over n columns, so a scheme that fails by S can be used on
    a share below 1/S^2 of the columns and still pass. For the schemes cheaper than each precision S >= 3 (the table's
    margin), so at most a ninth of the columns of a scheme failing just past the margin, and for bf16 answering a
    float32 challenge (S ~ 700 at n = 256) not even one column: one bf16 column of 256 already fails."""
    n = 256
    a = chl.operand("0" * 64, "node", "GPU-x", 0, "A", n, "float32", 2)
    b = chl.operand("0" * 64, "node", "GPU-x", 0, "B", n, "float32", 2)
    c = a @ b
    c[:, :1] = a @ b[:, :1].to(torch.bfloat16).float()  # one column of 256 from bf16 operands (B's column rounded)
    assert not exact_rows.check(a, b, c, "float32", np.random.default_rng(1)).passed


def _big_junk(drop, ch, name, key, mib):
    """A commitment signed by a trusted key, padded to about `mib` MiB of small JSON objects (within the container
    limit): every check it passes is a parse and a signature over all of it."""
    data = chl.commitment(ch, name, {"host": {"hostname": name}}, [], key)
    data.pop("signature")
    data["inventory"]["pad"] = [{"k": "x" * 200} for _ in range(mib * 4700)]
    data["signature"] = sign.sign(data, key)
    write_atomic(drop / f"{name}{chl.COMMIT_SUFFIX}", dumps(data))


def test_junk_checked_first_does_not_delay_an_honest_arrival(tmp_path, monkeypatch):
    """Succeeded before the fix: the collector read, parsed and checked each file in name order, stamping each after
    its own read, so junk sorted first delayed the stamp of every honest commitment behind it by the time its checks
    took (three signed 42 MiB commitments: 17 s on this loaded machine, and rewriting them made every poll as slow),
    a lower proven bound for honest nodes. Now every file is read and stamped before any is checked. Here each parse
    advances the collector's clock by 10 s (a slow check, deterministically): the honest stamp is taken before any."""
    _, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    for j in range(2):
        _junk(drop, ch, f"aaa-junk{j}", OTHER, 1)  # sorted before node-a's file
    _answer(drop, ch, node="node-a", uuid="host-a", key=NODE_KEY)
    now = [ch.issued]
    from bench.model import intake

    parse = intake.parse_json

    def slow_parse(*a, **kw):
        now[0] += dt.timedelta(seconds=10)
        return parse(*a, **kw)

    monkeypatch.setattr(intake, "parse_json", slow_parse)
    receipts = chl.scan(drop, {}, lambda: now[0], ch, trusted={kid(NODE_KEY), kid(OTHER)}, auditor=AUDITOR_ID)
    honest = next(r for r in receipts if r["file"].startswith("node-a"))
    assert chl.parse_utc(honest["arrived_utc"], "t") == ch.issued, receipts


def test_a_commitment_larger_than_the_challenge_allows_is_refused_unread(tmp_path):
    """Succeeded before the fix: any commitment up to MAX_COMMIT_BYTES (48 MiB) was parsed and its signature checked,
    by the collector and by the verifier, whatever the challenge asked (a 1-product challenge's commitment for 128
    GPUs takes about 60 KiB); 100 such files from one key cost minutes before any budget applied. Now a commitment
    (and a reveal manifest) may take at most commit_limit(ch) bytes, refused by size."""
    path, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    _big_junk(drop, ch, "aaa-big", OTHER, 1)
    assert (drop / f"aaa-big{chl.COMMIT_SUFFIX}").stat().st_size > chl.auditor.commit_limit(ch)
    base = _junk(drop, ch, "full", OTHER, chl.MAX_DEVICES)  # the largest honest shape fits
    assert (drop / f"{base}{chl.COMMIT_SUFFIX}").stat().st_size < chl.auditor.commit_limit(ch)
    receipts = chl.scan(drop, {}, ch.issued, ch, trusted={kid(OTHER)}, auditor=AUDITOR_ID)
    big = next(r for r in receipts if r["file"].startswith("aaa-big"))
    assert not big["accepted"] and "more than the limit" in big["why"]
    verdict = verify(path, drop, None, trusted={kid(OTHER)})
    assert any(f.code == "malformed" and "more than the limit" in f.message for f in verdict.findings)


# --- whose device, whose name -------------------------------------------------------------------------------------


def test_another_key_answering_first_for_a_nodes_device_uuid_does_not_take_it(tmp_path):
    """Held where the trust list binds names: operator Y (its own key and node name) answers first for X's device
    UUID, doing the work itself, to have X's device counted for Y and X's answer refused as a duplicate. Bound names
    are judged before any other, so X's device counts for X and Y's answer is the duplicate. (Without name bindings
    the first arrival takes the UUID: bind names.)"""
    path, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    thief = _answer(drop, ch, node="node-y", uuid="host-x", key=OTHER)
    honest = _answer(drop, ch, node="node-x", uuid="host-x", key=NODE_KEY)
    receipts = _receipts(tmp_path, ch, drop, {thief: 0.5, honest: 1.0})
    verdict = verify(path, drop, receipts, trusted={kid(NODE_KEY), kid(OTHER)}, names={"node-x": kid(NODE_KEY)})
    assert [(d["device"], d["node"], d["key_id"]) for d in verdict.devices] == [("host-x", "node-x", kid(NODE_KEY))]


def test_look_alike_names_do_not_take_a_bound_name(tmp_path):
    """Held: commitments by another key under 'NODE001', 'node001 ' (a trailing space, printable) and 'nоde001'
    (Cyrillic o) are other names: they neither void node001's own answer nor count toward collect --expect for a key
    with names of its own; what they prove is their signer's, for their signer's host."""
    path, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    arrivals = {}
    for j, name in enumerate(["NODE001", "node001 ", "n\u043ede001"]):
        arrivals[_junk(drop, ch, name, OTHER, 1, base=f"look{j}")] = 0.1 + j / 10
    arrivals[_answer(drop, ch, node="node001", uuid="host-a", key=NODE_KEY)] = 1.0
    names = {"node001": kid(NODE_KEY), "node002": kid(OTHER)}
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, arrivals), trusted={kid(NODE_KEY), kid(OTHER)},
                     names=names)  # fmt: skip
    assert [(d["device"], d["key_id"]) for d in verdict.devices] == [("host-a", kid(NODE_KEY))]
    log = _collect(tmp_path, ch, drop, 4, trusted={kid(NODE_KEY), kid(OTHER)}, names=names)
    assert log.valid == 1


@pytest.mark.parametrize("first_junk", [True, False])
def test_storage_that_changes_between_the_collectors_two_reads_gains_nothing(tmp_path, monkeypatch, first_junk):
    """Held: the collector reads each file twice (stamp, then check). Storage that serves junk to the first read and
    the real commitment to the second gets the real bytes stamped after the second read, not at the first; served
    the other way round, the receipt is the junk's, and the real bytes the verifier reads have none."""
    import hashlib

    from bench.model import intake

    _, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    commit = drop / f"{_answer(drop, ch)}{chl.COMMIT_SUFFIX}"
    real = commit.read_bytes()
    original = intake.read_bytes
    reads = [0]
    now = [ch.issued]

    def two_faced(p, **kw):
        raw = original(p, **kw)
        reads[0] += 1
        now[0] += dt.timedelta(seconds=10)  # each read takes 10 s by the collector's clock
        return b'{"kind": "junk"}' if (reads[0] == 1) == first_junk else raw

    monkeypatch.setattr(intake, "read_bytes", two_faced)
    (receipt,) = chl.scan(drop, {}, lambda: now[0], ch, trusted={kid(NODE_KEY)}, auditor=AUDITOR_ID)
    if first_junk:
        assert receipt["accepted"] and receipt["sha256"] == hashlib.sha256(real).hexdigest()
        assert chl.parse_utc(receipt["arrived_utc"], "t") == ch.issued + dt.timedelta(seconds=20)
    else:
        assert not receipt["accepted"] and receipt["sha256"] != hashlib.sha256(real).hexdigest()


# --- the per-key budget -------------------------------------------------------------------------------------------


def test_a_key_shared_by_nodes_is_one_identity_and_its_budget_covers_listed_names(tmp_path):
    """Succeeds, by design, and stays: nodes of one operator share a key and the trust list binds no names; the
    challenge lists node-b, node-c and node-d. A compromised node-c sends junk first under node-c and node-d: two
    failed product checks spend the key's budget, and node-b's honest answer, later, is refused unread (key-budget).
    Exempting listed names from the budget (tried in this round, reverted) let one key cost a spot check per listed
    name, a product check each for a challenge listing 1000 nodes, while the compromised node could void node-b's
    answer anyway by committing junk under node-b first (a node answers once per key). A shared key is one identity:
    give each node its own key and bind its name. Made-up names are refused as not challenged, free."""
    path, ch = _issue(tmp_path, dtype="bfloat16", products=1, nodes=["node-b", "node-c", "node-d"])
    drop = _drop(tmp_path)
    arrivals = {_junk(drop, ch, name, NODE_KEY, 1): 0.1 + j / 10 for j, name in enumerate(["node-c", "node-d"])}
    arrivals[_junk(drop, ch, "made-up", NODE_KEY, 1)] = 0.4
    honest = _answer(drop, ch, node="node-b", uuid="host-b", key=NODE_KEY)
    arrivals[honest] = 1.0
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, arrivals), trusted={kid(NODE_KEY)})
    assert verdict.devices == [] and {"key-budget", "not-challenged"} <= error_codes(verdict)
    # with its own key, bound to its name, node-b is judged whatever the other key sent
    arrivals[_answer(drop, ch, node="node-b", uuid="host-b", key=OTHER)] = arrivals.pop(honest)
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, arrivals), trusted={kid(NODE_KEY), kid(OTHER)},
                     names={"node-b": kid(OTHER)})  # fmt: skip
    assert [d["device"] for d in verdict.devices] == ["host-b"]


# --- honest hardware the table does not model ---------------------------------------------------------------------


def test_tensor_core_truncation_passes_with_10x_margin_at_1024():
    """Held at n <= 1024: tensor cores (A100: 8 products per MMA step, H100: 16) round the float32 accumulator toward
    zero, not to nearest; the precision table's honest orders all round to nearest. Truncation's error is biased, so it
    grows about as n^0.75 here rather than sqrt(n): at n = 1024 the half precisions still score below 0.05."""
    for dtype in ("bfloat16", "float16"):
        s = table.scores(dtype, 1024, schemes={f"k{k}": block_schemes.tensor_core(k) for k in (8, 16)})
        assert max(s.values()) < 0.05, (dtype, s)


@pytest.mark.xfail(strict=True, reason="gap: the exact-row allowance (3.5 u sqrt(n) t) is sized for round-to-nearest "
                   "accumulation; an honest float16 product on A100-style tensor cores (8 products per step, float32 "
                   "accumulator rounded toward zero) scores 0.128 at n = 4096 (measured; 0.047 with 16 per step, "
                   "H100-style), past the 10x margin (0.1), and about n^0.75 extrapolates to ~1 (an honest answer refused) "
                   "near n = 65536 = MAX_N. Needs real-GPU scores (no device lent here) and a truncation term in "
                   "exact_rows, or a lower MAX_N for half precisions")  # fmt: skip
def test_tensor_core_truncation_passes_with_10x_margin_at_4096():
    s = table.scores("float16", 4096, schemes={"k8": block_schemes.tensor_core(8)})
    assert s["k8"] <= 0.1, s


def test_files_the_collector_never_accepted_are_refused_by_their_hash_unparsed(tmp_path, monkeypatch):
    """Succeeded before the fix (cost): verify parsed every *.commit.json in the drop and checked its signature before
    looking up its receipt, so anyone able to write the drop made it parse junk: 200 unsigned files of 480 KiB (within
    the size a 1-product challenge allows) took 2.9 s, 0.13 s now (this shared machine, load ~4). Bytes without a
    receipt are refused by their SHA-256 before any parse."""
    from bench.model import intake

    path, ch = _issue(tmp_path, dtype="bfloat16", products=1)
    drop = _drop(tmp_path)
    for j in range(5):
        write_atomic(drop / f"junk{j}{chl.COMMIT_SUFFIX}", b'{"kind": "bench.challenge-commitment", "node": "x"}')
    honest = _answer(drop, ch, node="node-a", uuid="host-a", key=NODE_KEY)
    parsed = []
    original = intake.parse_json
    monkeypatch.setattr(intake, "parse_json", lambda raw, name, **kw: parsed.append(name) or original(raw, name, **kw))
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {honest: 1.0}), trusted={kid(NODE_KEY)})
    assert verdict.fleet["verified_flops"] == 2 * 64**3
    assert not [n for n in parsed if n.startswith("junk")], parsed
    assert [f.code for f in verdict.findings if f.where.startswith("junk")] == ["no-receipt"] * 5
