"""The paired regression gate (issue 25, `bench gate`): baseline and candidate runs made alternately in one session,
judged on the ratios of adjacent runs (bench.report.paired), so that a machine drifting over minutes neither flags
unchanged code nor hides a real slow-down; runs that do not alternate in time are refused. Fake figures and start
times: each run's samples are all equal, so its gated figure is exactly the figure chosen."""

from __future__ import annotations

import datetime as dt
import json
import random
import re

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.model.reports import NodeReport
from bench.report import gates, paired
from tests.report import synthetic as syn
from tests.report.synthetic import gate_folders

T0 = dt.datetime(2026, 12, 7, 6, 0, tzinfo=dt.UTC)
#: seconds between run starts, and each run's length
STEP_S, RUN_S = 10, 8
#: seconds per 512^3 product at figure 1.0
BASE_S = 0.010
#: run-to-run noise of adjacent runs: uniform +-1.5%, seeded, cycled (independent of which side runs)
_RNG = random.Random(7)
NOISE = tuple(1 + _RNG.uniform(-0.015, 0.015) for _ in range(64))
#: A B B A A B B A ...: which side runs at each slot of a session of pairs
ABBA = ("baseline", "candidate", "candidate", "baseline")


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _run(figure: float, slot: int, run_id: str) -> NodeReport:
    """A run at `slot` of the session whose float32 and float64 figures are `figure` (float64 at half the rate)."""
    r = syn.report([syn.matmul("float32", [BASE_S / figure] * 20), syn.matmul("float64", [2 * BASE_S / figure] * 20)],
                   run_id=run_id)  # fmt: skip
    r.start_utc = _stamp(T0 + dt.timedelta(seconds=STEP_S * slot))
    r.end_utc = _stamp(T0 + dt.timedelta(seconds=STEP_S * slot + RUN_S))
    return r


def session(pairs: int, slowdown: float = 0.0, drift: float = 0.0, order: tuple[str, ...] = ABBA,
            noise: tuple[float, ...] = NOISE) -> tuple[list[NodeReport], list[NodeReport]]:  # fmt: skip
    """(baseline runs, candidate runs) of a session of `pairs` pairs in `order` (cycled), the machine's speed falling
    linearly by `drift` from the first run to the last, the candidate `slowdown` slower."""
    n = 2 * pairs
    base, cand = [], []
    for slot in range(n):
        side = order[slot % len(order)]
        speed = (1 - drift * slot / (n - 1)) * noise[slot % len(noise)]
        if side == "baseline":
            base.append(_run(speed, slot, f"b{slot:02d}"))
        else:
            cand.append(_run(speed * (1 - slowdown), slot, f"c{slot:02d}"))
    return base, cand


def _verdict(checks: list[gates.Gate]) -> str:
    failed = [g for g in checks if not g.passed]
    return "pass" if not failed else "REGRESSION" if any(g.case for g in failed) else "CANNOT GATE"


# --- the pairing rule -----------------------------------------------------------------------------------------------


def _timed(sides: str, starts: list[float] | None = None, length: float = RUN_S) -> list[paired.TimedRun]:
    starts = starts if starts is not None else [STEP_S * i for i in range(len(sides))]
    return [paired.TimedRun("baseline" if s == "A" else "candidate", f"{s}{i}", T0 + dt.timedelta(seconds=t),
                            T0 + dt.timedelta(seconds=t + length), {"x": 1.0}) for i, (s, t) in enumerate(zip(sides, starts, strict=True))]  # fmt: skip


def test_alternating_runs_pair_up_in_time_order_whatever_order_they_are_given():
    runs = _timed("ABBAABBA")
    pairs = paired.pair_up(list(reversed(runs)))
    assert [(p.baseline.run_id, p.candidate.run_id) for p in pairs] == [("A0", "B1"), ("A3", "B2"), ("A4", "B5"),
                                                                          ("A7", "B6")]  # fmt: skip
    assert [p.baseline_first for p in pairs] == [True, False, True, False]
    assert len(paired.pair_up(_timed("ABBAAB"))) == 3  # A B B A A B: one more AB than BA is balanced


def test_runs_that_do_not_alternate_are_refused():
    with pytest.raises(paired.NotPaired, match=r"runs 1 and 2 .* both baseline runs: the runs must alternate"):
        paired.pair_up(_timed("AAAABBBB"))  # a baseline made first, then the candidate: drift reads as a change
    with pytest.raises(paired.NotPaired, match="both candidate runs"):
        paired.pair_up(_timed("ABBBAA"))


def test_a_session_where_one_side_always_runs_first_is_refused():
    """A B A B ...: under a drift each pair reads the same bias, which does not cancel."""
    with pytest.raises(paired.NotPaired, match="baseline ran first in 3 of 3 pairs"):
        paired.pair_up(_timed("ABABAB"))
    with pytest.raises(paired.NotPaired, match="baseline ran first in 0 of 4 pairs"):
        paired.pair_up(_timed("BABABABA"))


def test_overlapping_runs_and_uneven_sides_are_refused():
    with pytest.raises(paired.NotPaired, match="overlap in time"):
        paired.pair_up(_timed("ABBA", [0, 5, 20, 30]))  # the second started 5 s into the first's 8 s
    with pytest.raises(paired.NotPaired, match="3 baseline and 1 candidate"):
        paired.pair_up(_timed("AABA"))
    with pytest.raises(paired.NotPaired, match="0 baseline and 2 candidate"):
        paired.pair_up(_timed("BB"))


# --- judging the pairs ----------------------------------------------------------------------------------------------


def test_a_drift_of_15_percent_across_the_session_neither_flags_unchanged_code_nor_hides_a_10_percent_slowdown():
    base, cand = session(8, drift=0.15)
    assert _verdict(gates.paired_regressions(base, cand, 0.05)) == "pass"
    base, cand = session(8, slowdown=0.10, drift=0.15)
    checks = gates.paired_regressions(base, cand, 0.05)
    # the same runs judged unpaired (median against median) cannot gate: the drift is in each side's spread
    assert _verdict(gates.regressions(base, cand, 0.05)) == "CANNOT GATE"
    assert _verdict(checks) == "REGRESSION" and len(checks) == 2
    assert re.search(r": -(9\.[5-9]|10\.[0-4])% \(median of 8 paired ratios", checks[0].message)
    assert checks[0].case == "matmul cpu float32"
    # a drift the other way (the machine speeding up) hides nothing either
    base, cand = session(8, slowdown=0.10, drift=-0.15)
    assert _verdict(gates.paired_regressions(base, cand, 0.05)) == "REGRESSION"


def test_the_verdict_is_the_median_over_pairs_so_one_hiccup_pair_is_outvoted():
    noise = list(NOISE)
    noise[5] = 0.6  # one candidate run 40% slow (something else ran)
    base, cand = session(6, noise=tuple(noise))
    checks = gates.paired_regressions(base, cand, 0.05)
    assert _verdict(checks) == "pass" and "no regression in 2 gated metrics on 6 pairs" in checks[0].message
    # four pairs: the median and MAD outvote it, the order statistics cannot yet (the lowest ratio is their lower
    # bound there): inconclusive, never a regression; a sequential session adds pairs
    base, cand = session(4, noise=tuple(noise))
    assert gates.paired_judgement(base, cand, 0.05).outcome == paired.INCONCLUSIVE


def test_a_slowdown_inside_the_threshold_passes_and_one_past_it_fails():
    base, cand = session(4, slowdown=0.03)
    assert _verdict(gates.paired_regressions(base, cand, 0.05)) == "pass"
    base, cand = session(4, slowdown=0.07)
    assert _verdict(gates.paired_regressions(base, cand, 0.05)) == "REGRESSION"
    base, cand = session(4, slowdown=-0.10)  # faster is no regression
    assert _verdict(gates.paired_regressions(base, cand, 0.05)) == "pass"


#: adjacent runs 10-40% apart: a floor for 4 pairs far above 5%
WILD = (1.0, 1.2, 0.8, 1.15, 0.85, 1.1, 0.9, 1.05)


def test_pairs_too_noisy_or_too_few_to_gate_say_so_and_fail():
    base, cand = session(4, slowdown=0.10, noise=WILD)
    (g,) = gates.paired_regressions(base, cand, 0.05)
    assert not g.passed and g.case is None and "inconclusive: 2 of 2 metrics neither within nor past 5.0%" in g.message
    assert "pairs needed" in g.message
    base, cand = session(2, slowdown=0.10)
    (g,) = gates.paired_regressions(base, cand, 0.05)
    assert not g.passed and "fewer than 3 pairs: no spread known" in g.message and "at least 3 pairs" in g.message
    assert "floor 0.0%" not in g.message  # no spread is known from two pairs: no floor is printed as if it were


def test_a_drop_past_a_noisy_metrics_own_floor_is_still_a_regression():
    """Half the speed on a machine too noisy to vouch for 5%: the drop is past the threshold and past the noise."""
    noisy = (1.0, 1.1, 0.92, 1.05, 0.97, 1.08, 0.94, 1.02)  # pairs' ratios 10-20% apart: a floor of 26%
    base, cand = session(4, slowdown=0.5, noise=noisy)
    checks = gates.paired_regressions(base, cand, 0.05)
    assert _verdict(checks) == "REGRESSION" and "-49.5% (median of 4 paired ratios" in checks[0].message
    assert "noise floor 26.4%" in checks[0].message
    base, cand = session(4, slowdown=0.1, noise=noisy)  # -9% inside that noise: not called, and nothing vouched for
    assert _verdict(gates.paired_regressions(base, cand, 0.05)) == "CANNOT GATE"
    v = paired.judge([0.78, 0.70, 0.62, 0.74, 0.66], 0.05)  # -30% with a floor of about 14%: called
    assert not v.gated and v.regressed
    v = paired.judge([0.95, 0.80, 0.65, 0.90, 0.70], 0.05)  # -20% with a floor of about 28%: not called
    assert not v.gated and not v.regressed


def test_the_noise_floor_is_z_robust_sds_of_the_median_of_the_pairs():
    v = paired.judge([1.0, 1.02, 0.98, 1.01, 0.99], 0.05)
    assert v.ratio == 1.0 and v.cv == pytest.approx(1.4826 * 0.01, rel=1e-5)
    assert v.floor == pytest.approx(3 * v.cv * (3.141592653589793 / 2) ** 0.5 / 5**0.5)
    assert v.gated and not v.regressed
    assert not paired.judge([0.9, 0.9], 0.05).gated  # two pairs: no spread, not gated


def test_pairs_not_comparable_cannot_gate_and_metrics_some_runs_lack_are_named():
    base, cand = session(4)
    cand[1].inventory["host"]["cpu_model"] = "Other CPU"
    checks = gates.paired_regressions(base, cand, 0.05)
    assert not checks[0].passed and "is not comparable with candidate run" in checks[0].message
    base, cand = session(4)
    del cand[2].measurements[1]  # one candidate run without float64: float64 judged on the other three pairs
    (g,) = gates.paired_regressions(base, cand, 0.05)
    assert g.passed and "no regression in 2 gated metrics" in g.message and "not judged" not in g.message
    j = gates.paired_judgement(base, cand, 0.05)
    assert sorted(len(pm.verdict.ratios) for pm in j.metrics) == [3, 4]
    cand[0].measurements.append(syn.matmul("bfloat16", [BASE_S] * 20))  # a metric only one run measured: said so
    (g,) = gates.paired_regressions(base, cand, 0.05)
    assert "1 metric(s) no pair measured on both sides, not judged: matmul_tflops" in g.message


def test_a_run_named_on_both_sides_or_partial_is_bad_input():
    base, cand = session(4)
    with pytest.raises(ValueError, match="named twice: b00"):
        gates.paired_regressions(base, [base[0], *cand[1:]], 0.05)
    base[2].end_utc = None
    with pytest.raises(ValueError, match="baseline run b04 is partial"):
        gates.paired_regressions(base, cand, 0.05)


def test_the_recommended_threshold_comes_from_the_aa_pairs_spread():
    steady = paired.pair_spread([1.0, 1.01, 0.99, 1.005, 0.995, 1.0])  # robust CV ~1%: floor for 4 pairs ~2.3%
    noisy = paired.pair_spread([1.0, 1.1, 0.9, 1.05, 0.95, 1.0])  # ~10%: floor ~ 23%
    assert steady.steady(4) and not noisy.steady(4)
    assert paired.recommended_threshold([steady, noisy], 4) == pytest.approx(
        paired.whole_percent_up(steady.floor(4)))  # fmt: skip
    assert paired.recommended_threshold([noisy], 4) == pytest.approx(paired.whole_percent_up(noisy.floor(4)))
    assert noisy.pairs_needed() is None and steady.pairs_needed() == 3


# --- bench gate -----------------------------------------------------------------------------------------------------


_folders = gate_folders  # base/ and cand/ under tmp_path, one report.json per run


def test_bench_gate_passes_unchanged_code_under_drift_and_recommends_a_threshold(tmp_path):
    a, b = _folders(tmp_path, *session(8, drift=0.15))
    result = CliRunner().invoke(main, ["gate", a, b, "--max-regression", "5%"])
    assert result.exit_code == 0, result.output
    assert "8 pairs of adjacent runs, in time order (A baseline, B candidate): AB BA AB BA AB BA AB BA" in result.output
    assert "these pairs support --max-regression" in result.output and "PASS baseline" in result.output


def test_bench_gate_fails_a_10_percent_slowdown_with_its_figures(tmp_path):
    a, b = _folders(tmp_path, *session(8, slowdown=0.10, drift=0.15))
    result = CliRunner().invoke(main, ["gate", a, b, "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert len(data["pairs"]) == 8 and all(m["regressed"] for m in data["metrics"])
    assert all(m["ratio"] == pytest.approx(0.9, abs=0.01) for m in data["metrics"])


def test_bench_gate_refuses_runs_that_do_not_alternate_with_exit_2(tmp_path):
    base, cand = session(4, order=("baseline",) * 4 + ("candidate",) * 4)
    a, b = _folders(tmp_path, base, cand)
    result = CliRunner().invoke(main, ["gate", a, b])
    assert result.exit_code == 2
    assert "not paired: runs 1 and 2 in time order (b00, b01) are both baseline runs" in result.stderr
    result = CliRunner().invoke(main, ["gate", a, str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such file or folder" in result.stderr
