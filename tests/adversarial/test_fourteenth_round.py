"""Fourteenth adversarial round (issues 23, 25, 26): attacks on the day's new code: the gate's figures read over
rounds (gate6), the time-left history file (eta3), and the shared reading of capacity reports (discfast3).

Succeeded before its fix: a step-seconds.json nested deeper than the parser's recursion limit ended `bench run` in a
RecursionError traceback (json.loads raises RecursionError, not ValueError); fixed in bench.cli.progress.StepHistory.
Succeeded before its fix: a candidate whose config measured each figure in more rounds than the baseline's (40 against
3) read higher at its fastest window and passed a 10% slow-down; fixed in bench.report.gates (runs of another number of
rounds are not comparable). A search final's share_s said -54 s; fixed in bench.workloads.matmul_search.
Held: hostile values in step-seconds.json; version 3's paired C kernel off its probe's shapes; hostile files in read_many's shared reading (the same refusals as reading them here, in order)."""

from __future__ import annotations

import json
import math
import os
import random

import pytest

from bench import runner
from bench.cli import progress
from bench.disclosure import leaves as lv
from bench.model import intake
from bench.report import gates, paired
from tests.disclosure import world
from tests.report.test_paired_rounds import LIMITS, _run

# --- eta3: RESULTS_DIR/step-seconds.json is data, never a traceback ----------------------------------------------------


def test_a_step_history_nested_past_the_recursion_limit_is_no_history(tmp_path):
    """Attack (succeeded before the fix): '[' x 200,000 made json.loads raise RecursionError, which StepHistory did not
    catch (it caught OSError and ValueError), so every `bench run` in that results directory ended in a traceback."""
    (tmp_path / progress.StepHistory.FILE).write_text("[" * 200_000)
    history = progress.StepHistory(tmp_path, {"suite": "x"})
    assert history.seconds == {}
    history.save({"step": 1.5})  # and the run's own durations replace it
    assert json.loads((tmp_path / progress.StepHistory.FILE).read_text())[history.key] == {"step": 1.5}
    (tmp_path / progress.StepHistory.FILE).write_text('{"a":' * 200_000)
    assert progress.StepHistory(tmp_path, {"suite": "x"}).seconds == {}


def test_hostile_step_seconds_are_dropped_and_the_time_left_stays_a_finite_non_negative_figure(tmp_path):
    """Held: NaN, Infinity, negative, bool, string, huge-integer and nested values for a step are not its duration;
    what is left then is the budgets' estimate, finite and never negative, never rising by more than time elapsed."""
    config = {"suite": "x"}
    key = progress.StepHistory(tmp_path, config).key
    text = json.dumps({key: {"a": 1.0, "b": "2", "c": True, "d": -1, "e": [3], "f": 1e300}})
    text = text[:-2] + ', "g": NaN, "h": Infinity, "i": 1' + "0" * 400 + "}}"
    (tmp_path / progress.StepHistory.FILE).write_text(text)
    history = progress.StepHistory(tmp_path, config)
    assert history.seconds == {"a": 1.0}

    steps = [runner.Step(label, list) for label in ("a", "b", "g")]
    t = [0.0]
    eta = progress.Eta(steps, [history.seconds.get("a", 1.0), 2.0, 3.0], False, now=lambda: t[0], known=steps[:1])
    last = eta.left()
    for s in steps:
        t[0] += 0.7
        left = eta.begin(s)
        assert math.isfinite(left) and 0 <= left <= last + 0.7 + 1e-9
        last = left


# --- gate6: runs of another number of rounds do not buy a slower candidate a pass -------------------------------------


def _mixed_session(pairs: int, per_core: float, seed: int, base_rounds: int, cand_rounds: int, sigma: float = 0.06):
    """Alternating runs, each side at its own number of rounds (each side's checkout has its own
    configs/gate-cpu.toml: docs/ci.md's --base-cmd runs ../base's), every window's figure 1 + N(0, sigma), seeded."""
    rng = random.Random(seed)
    base, cand = [], []
    for slot in range(2 * pairs):
        rounds = base_rounds if paired.side_at(slot) == paired.BASELINE else cand_rounds
        figures = [max(0.5, 1 + rng.gauss(0, sigma)) for _ in range(rounds)]
        if paired.side_at(slot) == paired.BASELINE:
            base.append(_run(figures, slot, f"b{slot:02d}"))
        else:
            cand.append(_run([f * per_core for f in figures], slot, f"c{slot:02d}"))
    return base, cand


@pytest.mark.parametrize("base_rounds,cand_rounds", [(3, 40), (3, 12), (1, 3), (3, 1)])
def test_runs_of_another_number_of_rounds_are_not_compared(base_rounds, cand_rounds):
    """Attack (succeeded before the fix): a run's figure is its fastest iteration over its rounds, and the fastest of
    more windows reads higher on the same code. A candidate whose config said rounds = 40 (each measurement's spec
    unchanged, so config_difference saw nothing) against the baseline's 3, 10% slower in every window, passed the
    paired gate in 6 of 20 seeded sessions of 5 pairs (rounds 12: 1 of 20; the same rounds: none). Now such a session
    is not comparable, and `bench run --baseline` fails its baseline gate as measured at another config."""
    for seed in range(20):
        base, cand = _mixed_session(5, 0.9, seed, base_rounds, cand_rounds)
        j = gates.paired_judgement(base, cand, LIMITS)
        assert j.outcome == gates.NOT_COMPARABLE, (seed, j.outcome)
        assert any("rounds" in g.message for g in j.checks)
    unpaired = gates.regressions(base, cand, 0.05)
    assert any(not g.passed and "rounds" in g.message for g in unpaired), unpaired


def test_the_same_rounds_on_both_sides_still_pass_unchanged_code_and_catch_a_slowdown():
    """The fix refuses only a difference: the same 3 rounds each side is judged as before."""
    outcomes = [gates.paired_judgement(*_mixed_session(5, 1.0, s, 3, 3, 0.01), LIMITS).outcome for s in range(5)]
    assert outcomes == [paired.PASS] * 5
    slower = [gates.paired_judgement(*_mixed_session(5, 0.9, s, 3, 3, 0.01), LIMITS).outcome for s in range(5)]
    assert slower == [paired.REGRESSION] * 5


def test_a_run_that_failed_a_round_is_named_as_failed_not_as_another_number_of_rounds():
    """A failed measurement has no metric, so its run counts one round fewer: the session is FAILED with the
    correctness failure named (run_failures), not 'not comparable' for its rounds."""
    from tests.report import synthetic as syn

    base, cand = _mixed_session(5, 1.0, 0, 3, 3, 0.01)
    broken = syn.matmul("float32", [0.01] * 20, status="error")
    broken.details["cpus"] = "0"
    cand[0].measurements[3] = broken
    j = gates.paired_judgement(base, cand, LIMITS)
    assert j.outcome == gates.FAILED, [g.message for g in j.checks]


# --- discfast3: read_many's shared reading refuses hostile files as reading them here does -----------------------------


HOSTILE = {
    "deep_list": "[" * 200_000,
    "deep_object": '{"a":' * 200_000,
    "nan": '{"a": NaN}',
    "huge_int": '{"a": 1' + "0" * 5000 + "}",
    "duplicate": '{"a": 1, "a": 2}',
    "bom": "\ufeff{}",
    "bad_utf8": None,
    "neg_zero": '{"a": -0.0}',
}


def test_read_many_shares_hostile_files_with_the_same_refusals_as_reading_them_here(tmp_path, monkeypatch):
    """Held: hostile files among a country's honest ones, read by a worker and this process together, give each the
    same result (the same refusal, word for word) in its place as reading them all here, and no traceback."""
    world.country(tmp_path)
    for name, text in HOSTILE.items():
        path = tmp_path / f"hostile_{name}.json"
        if text is None:
            path.write_bytes(b'{"a": "\xff\xfe"}')
        else:
            path.write_text(text)
    paths = sorted(tmp_path.rglob("*.json"))
    here = [lv._read_one((p, tmp_path)) for p in paths]
    assert sum(isinstance(r, intake.InputError) for r in here) >= len(HOSTILE) - 1  # -0.0 alone may be a document
    monkeypatch.setattr(lv, "usable_cores", lambda: 2)
    monkeypatch.setattr(lv, "PARALLEL_FROM", 2)
    shared = lv.read_many(paths, root=tmp_path)
    assert len(shared) == len(here)
    for a, b in zip(shared, here, strict=True):
        assert type(a) is type(b)
        if isinstance(b, intake.InputError):
            assert str(a) == str(b)
        else:
            assert (a[0].path, a[0].sha256, a[1]) == (b[0].path, b[0].sha256, b[1])
    assert os.getpid()  # this process survived the reading


# --- eta3: a final's stated share is the slot it ran in, never a negative one -----------------------------------------


def test_a_final_run_past_an_overrun_budget_states_the_slot_it_ran_in_not_a_negative_share():
    """Attack (succeeded before the fix): a search whose earlier phases overran its budget (every clock read 10 s on)
    still runs its best shape's final at final_each, but its details said share_s -54.4 while it timed 6.25 s: the
    slot was stated as what the budget had left, negative, not the time the final was given."""
    import itertools

    from bench.workloads import matmul_search as ms
    from tests.workloads.test_matmul_search import CPU, fake_measure

    ticks = itertools.count(0.0, 10.0)
    config = ms.SearchConfig("grid", budget_s=25.0, window_s=0)
    shapes = [(n, n, n) for n in (32, 48, 64, 80, 96)]
    out = list(ms.search(CPU, "float32", config, shapes, clock=lambda: next(ticks),
                         measure=fake_measure(lambda spec, b: 1e-3)))  # fmt: skip
    finals = [m for m in out if m.details["search"]["role"] == "final"]
    assert finals
    for m in finals:
        share = m.details["search"]["share_s"]
        assert share >= ms.FINAL_MIN_S * 0.99 and share >= 0.9 * sum(m.samples_s), (share, sum(m.samples_s))


# --- fold2: version 3's C kernel for bfloat16/float16 on inputs its probe does not cover --------------------------------


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_the_paired_c_kernel_writes_every_element_of_ragged_misaligned_and_reused_buffers(dtype):
    """Held: widths 1-65 and 4097 (odd, even, below and past a vector of 16 words, the last block ragged), one row, a
    subset of rows, a buffer pre-filled with NaN (an element left unwritten would keep it), a buffer one element off
    4-byte alignment (the element path), and the same buffer reused for another key (nothing of the previous product
    left): the bits of the auditor's reference path (reference=True) every time."""
    import torch

    from bench.challenge import generator as gen

    gen.native()
    if not gen.native_in_use("cpu", dtype, 3):
        pytest.skip("no C kernel for version 3 here")
    torch_dtype = getattr(torch, dtype)
    for shape in [(1, 1), (1, 2), (1, 3), (2, 31), (3, 32), (5, 33), (7, 63), (9, 65), (1, 4097), (40, 129)]:
        buf = torch.full((shape[0] * shape[1] + 1,), float("nan"), dtype=torch_dtype)
        for out in (buf[: shape[0] * shape[1]].view(shape), buf[1:].view(shape)):
            for key in (b"k" * 32, b"j" * 32):  # the second into the buffer the first filled
                ref = gen.matrix(key, shape, dtype, version=3, reference=True)
                got = gen.matrix(key, shape, dtype, version=3, out=out)
                assert got.data_ptr() == out.data_ptr(), shape  # written in place, not a fresh operand
                assert torch.equal(got.view(torch.int16), ref.view(torch.int16)), (shape, key)
        rows = torch.tensor([shape[0] - 1, 0])
        part_out = torch.full((2, shape[1]), float("nan"), dtype=torch_dtype)
        part = gen.matrix(b"k" * 32, shape, dtype, rows=rows, version=3, out=part_out)
        ref = gen.matrix(b"k" * 32, shape, dtype, version=3, reference=True)
        assert torch.equal(part.view(torch.int16), ref[rows].view(torch.int16)), shape
