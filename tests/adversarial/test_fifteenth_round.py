"""Fifteenth adversarial round (issues 23, 25, 26): attacks on the session's new code, driven through the real entry
points: the declaration check held once accepted (discfast4, 02518ce), the paired gate's pass on a metric's target
(gate7, a799823), and the matmul search's slot that a final fills (eta4, 6013907).

Succeeded before its fix: a final's slot (sampling.collect with fill_s) was filled in batches of half of what was
left, so a slow-down of k x inside a batch overran the slot by (k/2 - 1) x what was left (a 2 s slot 2.4 s over at
7x, this VM under load); fixed by its owner in 66d5053 (a batch at most 1/8 of what is left, before budget_s too).
Succeeded before its fix: run_bench.sh's new venv built by another CPython on PATH (e38f30f) compiled the C kernels
with that interpreter's sysconfig compiler, absent on a node for conda's and python-build-standalone's builds: every
kernel refused though cc was there; fixed in bench.challenge.native (cc tried where that compiler is not found).

Held: a declaration accepted under one pair of trust lists is judged again under another (the key left the trust
lists out in the work before it landed; told, and fixed before 02518ce: these tests fail with the lists left out);
a candidate that lost one thread of N does not pass on the relaxed floor (never on 2-4 threads; on 5-8 in at most
1% of noisy sessions, about twice the rule before: within the rule's design); the per-core figure and a threshold
at half the target or wider are judged as before; the merge's columns joined in one concatenation (df089e5) are
the field-by-field ones on hostile frames; a search whose finals run slower than planned (or with overhead nobody
could plan) keeps one MAMF of at least 0.5 s timed and ends inside its budget (failed before eta4's 6013907).
Each test says what it attacks."""

from __future__ import annotations

import copy
import random

import pytest

from bench.disclosure import declaration as decl
from bench.measure.sampling import Policy, collect
from bench.report import paired
from tests.disclosure import world
from tests.fakes.timer import FakeTimer

K = world.KEYS
TEXT = world.DECLARATION.format(region="North", city="Alpha", site="A1")


# --- discfast4: a declaration accepted once is not accepted again under another trust list ----------------------------


def _said(fn, *args, **kw):
    try:
        d = fn(*args, **kw)
    except decl.DeclarationError as exc:
        return ("refused", str(exc))
    return ("ok", d.key_id, d.data)


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ((None, None), (set(), None)),  # no trust list, then one that lacks the signer
        ((None, None), (None, "signer")),  # then the signer named as a node key
        (("signer", None), ("other", None)),  # the signer trusted, then another trust list
        (("signer", None), ("signer", "signer")),  # then the same key also listed as a node's
    ],
)
def test_a_declaration_accepted_under_one_trust_list_is_judged_again_under_another(first, then):
    """Attack on the held declaration check (declaration._ACCEPTED): accept a declaration once where its signer is
    trusted (or no list is given), then ask again with trust lists that refuse it: the answer must be the plain
    check's (_check, or check on a fresh process), refused in its words, not the held acceptance."""
    signer = K.kid("operator")

    def ids(what):
        return None if what is None else {signer} if what == "signer" else {K.kid("node")} if what == "other" else set()

    sig = decl.sign_text(TEXT.encode(), K.operator, world.NOW)
    assert _said(decl.check, TEXT, sig, operator_ids=ids(first[0]), node_ids=ids(first[1]))[0] == "ok"
    again = _said(decl.check, TEXT, copy.deepcopy(sig), operator_ids=ids(then[0]), node_ids=ids(then[1]), where="x")
    plain = _said(getattr(decl, "_check", decl.check), TEXT, copy.deepcopy(sig), operator_ids=ids(then[0]),
                  node_ids=ids(then[1]), where="x")  # fmt: skip
    assert plain[0] == "refused"
    assert again == plain


# --- gate7: a metric passed on its target (PairedVerdict.rules_out_target) ---------------------------------------------


def _all_core_session(seed: int, sd: float, change: float, threads: int, disturbed: float = 0.1) -> tuple[str, int]:
    """One sequential session of the all-core figure alone (pairs 5..12), judged at 5% (a steady calibration) for a
    metric on `threads` threads: each run's figure N(1, sd), one run in ten (`disturbed`) slowed 10-40%, the
    candidate's times 1 - `change`. Seeded."""
    rng = random.Random(seed)
    speeds = [rng.gauss(1, sd) * (rng.uniform(0.6, 0.9) if rng.random() < disturbed else 1)
              for _ in range(2 * paired.MAX_PAIRS)]  # fmt: skip
    target = paired.target_of({"cpus": "all"}, threads)
    runs: list[float] = []
    ratios: list[float] = []

    def run(side: str) -> None:
        runs.append(speeds[len(runs)] * (1 - change if side == paired.CANDIDATE else 1))
        if len(runs) % 2 == 0:
            a, b = runs[-2:]
            ratios.append(b / a if paired.side_at(len(runs) - 2) == paired.BASELINE else a / b)

    return paired.sequential(run, lambda: paired.judge(ratios, 0.05, target).outcome)


@pytest.mark.parametrize("sd", [0.02, 0.05, 0.08, 0.12])
def test_a_candidate_that_lost_one_thread_of_two_to_four_never_passes_on_the_relaxed_floor(sd):
    """Attack on gate7's pass on a target (a799823): the floor relaxed to half the target lets a noisy all-core
    figure pass. Can a candidate that lost one thread of N (the all-core figure's target, target_of) pass in a
    session as noisy as the relaxed floor allows? Held on 2-4 threads (where the relaxation is widest): the median
    must still lie within the threshold and the lower bound within twice it, so in 200 seeded sessions a noise level
    none passes."""
    for threads in (2, 3, 4):
        outcomes = [_all_core_session(seed, sd, 1 / threads, threads)[0] for seed in range(200)]
        assert paired.PASS not in outcomes


@pytest.mark.parametrize("threads", [5, 6, 8])
def test_a_candidate_that_lost_one_thread_of_five_to_eight_passes_at_most_one_session_in_a_hundred(threads):
    """The same attack on 5-8 threads, where the target (1/N) is a little over twice the threshold: the relaxed
    floor roughly doubles how often a noisy session of one thread lost passes (8 threads, 12% run noise: 18 of 2000
    sessions, 9 by the rule before; /work/briefs/finds-gate7.md), inside the rule's design (the target lies 3.6
    standard deviations of the median past the pass line). Held at: at most 1% of 1000 seeded sessions at 12%."""
    outcomes = [_all_core_session(seed, 0.12, 1 / threads, threads)[0] for seed in range(1000)]
    assert outcomes.count(paired.PASS) <= 10


@pytest.mark.parametrize("threads", [2, 4, 16])
def test_a_per_core_figure_and_a_wide_threshold_are_not_relaxed(threads):
    """Held: the relaxation applies only where the target is wider than twice the threshold: the per-core figure
    (target 10%) and an all-core figure judged at half its target or wider are judged as before on every ratio set."""
    rng = random.Random(threads)
    for _ in range(300):
        ratios = [rng.gauss(1, rng.choice([0.01, 0.05, 0.1])) for _ in range(rng.randint(3, 12))]
        per_core = paired.judge(ratios, 0.05, paired.target_of({"cpus": "0"}, 1))
        assert per_core.outcome == paired.judge(ratios, 0.05).outcome and not per_core.on_target
        wide = paired.target_of({"cpus": "all"}, threads) / 2
        assert (
            paired.judge(ratios, wide, paired.target_of({"cpus": "all"}, threads)).outcome
            == paired.judge(ratios, wide).outcome
        )


# --- eta4: a final's slot (Policy.fill_s) is not run past when its iterations slow down -------------------------------


@pytest.mark.parametrize("slow", [2.0, 3.0, 7.0])
def test_a_slot_is_not_run_past_by_a_batch_that_slowed_down_up_to_seven_times(slow):
    """Attack on the slot a final fills (eta4: sampling.collect with fill_s): the sampler plans each batch from the
    pace so far; a slow-down that begins inside a batch runs the rest of it at the new pace. With batches of half
    of what is left, a 7x slow-down (this VM under load, sampling.py's own note) overran a 2 s slot by 2.4 s, and
    the phase before budget_s (batches as long as everything timed so far) by more. Every batch is now planned as
    a small enough part of what is left of the slot that a slow-down of up to 7x still ends inside it, but for the
    one slowed iteration that crosses its end. 1 ms iterations (a 0.5 s budget_s in a 2 s slot), `slow` x slower from
    iteration N, N swept over the whole slot. Succeeded before its fix (6013907: 3x 2.049 s, 7x 2.139 s at the first
    N that broke it); fixed in 66d5053."""
    fast, slot = 1e-3, 2.0
    for start in range(40, 2100, 23):
        script = [fast] * (3 + start) + [fast * slow] * 20_000
        policy = Policy(budget_s=0.5, min_iterations=3, max_iterations=10**6, max_warmup_s=slot, fill_s=slot)
        out = collect(FakeTimer(script), lambda: None, policy)
        took = sum(out.warmup_s) + sum(out.samples_s)
        assert took <= slot + fast * slow + 1e-9, (slow, start, took)
        assert sum(out.samples_s) >= policy.budget_s  # budget_s is still timed whatever the slot


# --- e38f30f (run_bench.sh picks another interpreter): its sysconfig compiler may not exist on the node -------------


def test_an_interpreter_whose_build_compiler_is_absent_still_compiles_the_kernels_with_cc(tmp_path, monkeypatch):
    """Succeeded before its fix: run_bench.sh now builds a fresh venv with another CPython of python3's version where
    one with libpython linked in is on PATH (e38f30f: Debian's, conda's, python-build-standalone's). Without CC in
    the environment, bench.challenge.native compiled with that interpreter's sysconfig CC, which conda's and
    python-build-standalone's builds name as their build machine's compiler (x86_64-conda-linux-gnu-cc,
    /tools/llvm/bin/clang), absent on a node: every C kernel (fold, microfold, generator) was refused as "no C
    compiler" though cc was on PATH, and the node answered challenges on the slower torch path. Now cc is tried
    where that compiler is not found; a CC the user set is still the only one tried (test_eleventh_round_country)."""
    import ctypes
    import shutil
    import sysconfig

    from bench.challenge import native

    if shutil.which("cc") is None:
        pytest.skip("no cc on PATH")
    monkeypatch.delenv("CC", raising=False)
    real = sysconfig.get_config_var
    monkeypatch.setattr(native.sysconfig, "get_config_var",
                        lambda name: "/nonexistent/bin/x86_64-conda-linux-gnu-cc -pthread" if name == "CC" else real(name))  # fmt: skip
    source = tmp_path / "seven.c"
    source.write_text("int seven(void) { return 7; }\n")
    lib = native._compile(source)
    assert isinstance(lib, ctypes.CDLL), lib
    assert lib.seven() == 7


# --- discfast4: the merge's columns joined in one concatenation (df089e5) ----------------------------------------------


def _hostile_value(rng: random.Random, mode: int, odd: tuple) -> object:
    """A row field's value of one kind (a short string, a small int, a float, None, or one of `odd`)."""
    if mode == 0:
        return f"s{rng.randint(0, 2)}"
    if mode == 1:
        return rng.randint(0, 9)
    return rng.random() if mode == 2 else None if mode == 3 else rng.choice(odd)


def test_the_merges_joined_columns_are_the_field_by_field_concatenation_on_hostile_frames():
    """Attack on leaves._joined (df089e5): frames of the row fields whose values are hostile for pandas' dtype
    inference: ints beyond int64, NaN, None, -0.0, 1e308, bools, empty and non-ASCII strings, all-None columns, each
    column's type drawn per frame so that dtypes agree or not. Held: the fields joined and each one's dtype, name,
    index and values (repr, so -0.0 and NaN count) are those of concatenating field by field, as the merge did before;
    600 seeds."""
    import pandas as pd

    from bench.disclosure import leaves as lv

    keys = list(lv._ROW_TYPES)
    odd = (None, float("nan"), 2**63 + 5, 2**62, "", "é\u2028", -0.0, 1e308, True, 7, 0.5, "s1")
    for seed in range(600):
        rng = random.Random(seed)
        frames = []
        for _ in range(rng.randint(1, 4)):
            n = rng.randint(1, 4)
            columns = {}
            for key in keys:
                mode = rng.randint(0, 4)  # one kind a column, so that the frames' dtypes often agree
                columns[key] = [_hostile_value(rng, mode, odd) for _ in range(n)]
            frames.append(pd.DataFrame(columns, columns=keys))
        fast = lv._joined(frames)
        slow = {k: pd.concat([f[k] for f in frames], ignore_index=True) for k in keys
                if len({str(f[k].dtype) for f in frames}) == 1}  # fmt: skip
        assert fast.keys() == slow.keys(), seed
        for k, got in fast.items():
            want = slow[k]
            assert (str(got.dtype), got.name) == (str(want.dtype), want.name) and got.index.equals(want.index), seed
            assert list(map(repr, got.tolist())) == list(map(repr, want.tolist())), (seed, k)


# --- eta4: the search never ends past its budget but by its one final that must run; the MAMF is always measured ----


@pytest.mark.parametrize("budget", [3.0, 30.0])
@pytest.mark.parametrize(
    ("slow_final", "final_overhead", "shapes", "rate"),
    [(1.0, 0.0, 8, 1e6), (2.0, 0.0, 8, 1e6), (5.0, 0.0, 8, 1e6), (1.0, 1.0, 8, 1e6), (2.0, 0.0, 5, 2e6),
     (1.0, 0.0, 1, 1e6), (3.0, 0.0, 2, 1e6)],
)  # fmt: skip
def test_a_search_whose_finals_run_slower_than_planned_keeps_its_mamf_and_its_budget(budget, slow_final,
                                                                                  final_overhead, shapes, rate):  # fmt: skip
    """Attack on the search that never ends past its budget (eta4, 6013907): every final (a measurement with a slot,
    Policy.fill_s) runs `slow_final` x slower than the sweep measured it, or with `final_overhead` s more around it
    than the sweep's measurements of the same shape (what a plan cannot know). Held: one MAMF, the fastest final,
    timed at least FINAL_MIN_S over at least 3 iterations; the MSMF window measured; the search (window excluded)
    ends inside its budget but by the overhead nobody could plan, or by the best shape's shortest final when the
    sweep left less than that."""
    import itertools

    from bench.hardware.devices import DeviceFacts
    from bench.workloads import matmul as mm
    from bench.workloads import matmul_search as ms

    cpu = DeviceFacts("cpu", "cpu", "test cpu", "fp", 0, None, ("avx2", "fma", "avx512_bf16"))
    sizes = [(n, n, n) for n in (16, 24, 32, 48, 64, 96, 128, 160)]
    sizes = sizes[:shapes] if shapes != 5 else sizes[3:]
    now, log = [0.0], []

    def measure(spec, device, policy, **kw):
        final = policy.fill_s is not None and not kw.get("sustained")
        t = spec.flops / rate * (slow_final if final else 1.0)
        began = now[0]
        m = mm.run(spec, device, policy, timer=FakeTimer(itertools.repeat(t)), **kw)
        now[0] += sum(m.warmup_s) + sum(m.samples_s) + (final_overhead if final else 0.0)
        log.append((began, now[0], kw.get("sustained", False)))
        return m

    out = list(ms.search(cpu, "float32", ms.SearchConfig("grid", budget_s=budget, window_s=1.0), sizes,
                         clock=lambda: now[0], measure=measure))  # fmt: skip
    finals = [m for m in out if m.details["search"]["role"] == "final"]
    (mamf,) = [m for m in finals if m.details["search"]["mamf"]]
    assert mamf is max(finals, key=ms._rate) and mamf.status == "ok"
    assert sum(mamf.samples_s) >= ms.FINAL_MIN_S and len(mamf.samples_s) >= 3
    assert [m.details["search"]["role"] for m in out].count("msmf") == 1
    searched = [(a, b) for a, b, sustained in log if not sustained]
    end = searched[-1][1]
    best_final = searched[-len(finals)]
    assert end <= budget + final_overhead * len(finals) + 1e-6 or (
        len(finals) == 1 and best_final[0] + ms.FINAL_MIN_S > budget - 1e-6
    ), (end, budget, len(finals))
