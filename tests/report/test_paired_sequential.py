"""The paired gate's sequential session (issue 25: a gate that never leaves CI red on unchanged code): a session too
noisy to judge is INCONCLUSIVE (its own outcome and exit status, never a pass and never a regression), and pairs are
added while it is, up to a cap (bench.report.paired.sequential), so that a disturbed stretch of the VM is outvoted
rather than failing the job. Fake figures and start times, no sleeps: a run's samples are all equal, so its gated
figure is exactly the speed chosen for its slot."""

from __future__ import annotations

import json
import math
import random
import shlex
import sys
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.model.reports import NodeReport
from bench.report import gates, paired
from bench.report.store import dumps
from tests.report.test_drift_paired import NOISE, session

#: a disturbed stretch over the first five pairs, as the lead's quiet runs saw one session in ten: one run of three
#: of them 20-30% slow (something else took a core), the candidate's in one pair and the baseline's in two, so the
#: pairs' ratios read 0.70, 1.33 and 1.25 beside two calm ones: the floor of five pairs is far above 5%
DISTURBED = {2: 0.70, 4: 0.75, 7: 0.80}


def noise(disturbed: dict[int, float] = DISTURBED, slots: int = 2 * paired.MAX_PAIRS) -> tuple[float, ...]:
    return tuple(NOISE[i % len(NOISE)] * disturbed.get(i, 1.0) for i in range(slots))


def run_session(slowdown: float = 0.0, speeds: tuple[float, ...] = noise(), first: int = paired.FIRST_PAIRS,
                most: int = paired.MAX_PAIRS) -> tuple[str, int, gates.PairedJudgement]:  # fmt: skip
    """A sequential session by paired.sequential over fake runs: each run() takes the next slot of a session whose
    slot speeds are `speeds`, the candidate `slowdown` slower; each look judges every run so far at 5%."""
    pool_base, pool_cand = session(len(speeds) // 2, slowdown=slowdown, noise=speeds)
    taken: dict[str, list[NodeReport]] = {paired.BASELINE: [], paired.CANDIDATE: []}
    pools = {paired.BASELINE: iter(pool_base), paired.CANDIDATE: iter(pool_cand)}
    seen: list[gates.PairedJudgement] = []

    def run(side: str) -> None:
        taken[side].append(next(pools[side]))

    def look() -> str:
        seen.append(gates.paired_judgement(taken[paired.BASELINE], taken[paired.CANDIDATE], 0.05))
        return seen[-1].outcome

    outcome, pairs = paired.sequential(run, look, 0, first, most)
    assert len(seen[-1].pairs) == pairs
    return outcome, pairs, seen[0]


def test_a_disturbed_stretch_is_inconclusive_at_five_pairs_and_resolved_by_added_pairs():
    outcome, pairs, at_first = run_session()
    assert at_first.outcome == paired.INCONCLUSIVE and len(at_first.pairs) == 5
    assert all(pm.verdict.floor > 0.05 and not pm.verdict.regressed for pm in at_first.metrics)
    (g,) = at_first.checks
    assert not g.passed and g.message.startswith("inconclusive: 2 of 2 metrics") and at_first.pairs_needed > 5
    assert outcome == paired.PASS and 5 < pairs < paired.MAX_PAIRS  # two calm pairs outvote the stretch


def test_a_calm_session_stops_at_its_first_look():
    assert run_session(speeds=noise({}))[:2] == (paired.PASS, 5)
    assert run_session(0.10, speeds=noise({}))[:2] == (paired.REGRESSION, 5)


def test_a_ten_percent_slowdown_inside_a_disturbed_stretch_is_caught_after_added_pairs():
    outcome, pairs, at_first = run_session(0.10)
    assert at_first.outcome == paired.INCONCLUSIVE  # not passed at five pairs, and not yet called
    assert outcome == paired.REGRESSION and pairs > 5
    assert all(g.case == "matmul cpu float32" or g.case == "matmul cpu float64" for g in gates.paired_regressions(
        *session(pairs, slowdown=0.10, noise=noise()), 0.05))  # fmt: skip


#: adjacent runs 10-40% apart throughout: no cap makes these pairs steady at 5%
WILD = (1.0, 1.2, 0.8, 1.15, 0.85, 1.1, 0.9, 1.05) * 3


def test_a_session_still_inconclusive_at_the_cap_says_so_with_the_pairs_it_would_need():
    outcome, pairs, _ = run_session(0.10, speeds=WILD)
    assert (outcome, pairs) == (paired.INCONCLUSIVE, paired.MAX_PAIRS)
    j = gates.paired_judgement(*session(paired.MAX_PAIRS, slowdown=0.10, noise=WILD), 0.05)
    assert j.outcome == paired.INCONCLUSIVE and j.pairs_needed > paired.MAX_PAIRS
    assert f"about {j.pairs_needed} pairs at the spread measured ({j.pairs_needed - 12} more)" in j.checks[0].message


def test_three_of_five_pairs_disturbed_the_same_way_neither_fail_unchanged_code_nor_pass_a_slowdown():
    """Median and MAD read a majority of disturbed pairs as the change: the order statistics' bounds do not."""
    # unchanged code, the candidate's run 10% slow in three pairs: MAD floor 2.7%, median -10%
    v = paired.judge([0.90, 0.89, 0.905, 1.0, 1.01], 0.05)
    assert v.gated and v.ratio < 1 - max(v.threshold, v.floor)  # what the MAD rule alone calls a regression
    assert v.bounds[1] == 1.01 and v.outcome == paired.INCONCLUSIVE
    # 10% slower, the baseline's run 10% slow in three pairs: floor 3.7%, median -0.5%
    v = paired.judge([0.90, 0.89, 1.0, 1.01, 0.995], 0.05)
    assert v.gated and v.ratio >= 0.95  # what the MAD rule alone passes
    assert v.bounds[0] == 0.89 and v.outcome == paired.INCONCLUSIVE
    assert paired.median_bounds([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) == (4, 9)
    assert paired.median_bounds([1.0, 2.0]) == (-math.inf, math.inf)


def test_pairs_needed_is_the_fewest_whose_floor_is_within_the_threshold():
    for cv in (0.005, 0.02, 0.0371, 0.1):
        need = paired.pairs_needed(cv, 0.05)
        assert paired.pair_floor(cv, need) <= 0.05
        assert need == paired.MIN_PAIRS or paired.pair_floor(cv, need - 1) > 0.05
    assert paired.pairs_needed(0.1, 0.05) == 57  # (3 x 0.1 x 1.2533 / 0.05)^2 = 56.5
    v = paired.judge([1.0, 1.2, 0.8, 1.1, 0.9], 0.05)
    assert v.outcome == paired.INCONCLUSIVE and v.pairs_needed == paired.pairs_needed(v.cv, 0.05)


def test_the_session_outcome_is_inconclusive_when_any_metric_is_neither_gated_nor_regressed():
    calm, wild = paired.judge([1.0, 1.01, 0.99, 1.0, 1.005], 0.05), paired.judge([1.0, 1.2, 0.8, 1.1, 0.9], 0.05)
    slow = paired.judge([0.9, 0.91, 0.89, 0.9, 0.905], 0.05)
    assert [v.outcome for v in (calm, wild, slow)] == [paired.PASS, paired.INCONCLUSIVE, paired.REGRESSION]
    assert paired.session_outcome([calm, calm]) == paired.PASS
    assert paired.session_outcome([calm, wild]) == paired.INCONCLUSIVE  # one metric nobody vouches for: not a pass
    assert paired.session_outcome([wild, slow]) == paired.REGRESSION
    assert paired.session_outcome([]) == paired.INCONCLUSIVE


def test_sequential_runs_the_sides_in_a_b_b_a_order_and_continues_a_session():
    sides: list[str] = []
    looks = iter([paired.INCONCLUSIVE, paired.INCONCLUSIVE, paired.PASS])
    assert paired.sequential(sides.append, lambda: next(looks), 0, 3, 10) == (paired.PASS, 5)
    assert "".join("A" if s == paired.BASELINE else "B" for s in sides) == "ABBAABBAAB"
    sides.clear()
    assert paired.sequential(sides.append, lambda: paired.INCONCLUSIVE, 3, 3, 4) == (paired.INCONCLUSIVE, 4)
    assert sides == [paired.CANDIDATE, paired.BASELINE]  # pair 4 of A B B A A B B A
    with pytest.raises(ValueError, match="first at least 3"):
        paired.sequential(sides.append, lambda: paired.PASS, 0, 2, 10)


def _speeds(rng: random.Random, slots: int) -> list[float]:
    """Heavy-tailed run speeds: 1% normal noise, and one run in six disturbed by 15-45% (something else ran)."""
    return [rng.gauss(1, 0.01) * (rng.uniform(0.55, 0.85) if rng.random() < 1 / 6 else 1) for _ in range(slots)]


def _simulated(speeds: list[float], slowdown: float, bound: bool = True) -> tuple[str, int]:
    """One sequential session over run `speeds` (slot by slot), the candidate `slowdown` slower, judged at 5% on one
    metric; `bound` False judges without the order-statistic bound (the MAD rule alone), for comparison."""
    ratios: list[float] = []
    runs: list[float] = []

    def run(side: str) -> None:
        runs.append(speeds[len(runs)] * (1 - slowdown if side == paired.CANDIDATE else 1))
        if len(runs) % 2 == 0:
            a, b = runs[-2:]
            first_is_base = paired.side_at(len(runs) - 2) == paired.BASELINE
            ratios.append(b / a if first_is_base else a / b)

    def look() -> str:
        v = paired.judge(ratios, 0.05)
        if not bound and v.spread_known and v.ratio < 1 - max(v.threshold, v.floor):
            return paired.REGRESSION
        return paired.session_outcome([v])

    return paired.sequential(run, look)


def test_no_noisy_session_passes_a_real_regression_or_calls_unchanged_code_one():
    """400 seeded sessions of heavy-tailed noise each way (one run in six disturbed by 15-45%): a 10% slow-down never
    passes (caught, or inconclusive at the cap: the job fails either way), unchanged code is never called a
    regression, and the added pairs resolve most sessions. The MAD rule alone, on the same runs, called unchanged
    code a regression: three of five pairs disturbed on the candidate's side, which the order statistics refuse."""
    rng = random.Random(25)
    slow_speeds = [_speeds(rng, 2 * paired.MAX_PAIRS) for _ in range(400)]
    same_speeds = [_speeds(rng, 2 * paired.MAX_PAIRS) for _ in range(400)]
    slow = [_simulated(sp, 0.10) for sp in slow_speeds]
    same = [_simulated(sp, 0.0) for sp in same_speeds]
    assert sum(o == paired.PASS for o, _ in slow) == 0
    assert sum(o == paired.REGRESSION for o, _ in same) == 0
    assert sum(_simulated(sp, 0.0, bound=False)[0] == paired.REGRESSION for sp in same_speeds) >= 2
    # what this noise gives (one run in six disturbed is harsher than the quiet VM's one session in ten)
    assert sum(o == paired.REGRESSION for o, _ in slow) >= 350 and sum(o == paired.PASS for o, _ in same) >= 340
    assert sum(p > paired.FIRST_PAIRS for _, p in same) > 0  # some sessions needed the added pairs


# --- bench gate: its outcome, its exit status, running the session itself -------------------------------------------


def _folders(tmp_path, base: list[NodeReport], cand: list[NodeReport]) -> tuple[str, str]:
    for side, runs in (("base", base), ("cand", cand)):
        for i, r in enumerate(runs):
            (tmp_path / side / f"{i:02d}").mkdir(parents=True)
            (tmp_path / side / f"{i:02d}" / "report.json").write_text(dumps(r.to_dict()))
    return str(tmp_path / "base"), str(tmp_path / "cand")


def test_bench_gate_inconclusive_exits_3_with_its_reason_and_json_fields(tmp_path):
    a, b = _folders(tmp_path, *session(5, noise=noise()))
    result = CliRunner().invoke(main, ["gate", a, b, "--json"])
    assert result.exit_code == 3, result.output
    data = json.loads(result.stdout)
    assert data["outcome"] == "inconclusive" and data["pairs_needed"] > 5 and data["reason"].startswith("inconclusive")
    assert {m["outcome"] for m in data["metrics"]} == {"inconclusive"} and all(
        m["pairs_needed"] for m in data["metrics"]
    )
    assert "gate inconclusive after 5 pairs" in result.stderr
    result = CliRunner().invoke(main, ["gate", a, b])
    assert result.exit_code == 3 and "inconclusive: floor" in result.output and "pairs needed" in result.output


def test_bench_gate_exit_status_tells_pass_regression_and_inconclusive_apart(tmp_path):
    for name, slowdown, speeds, code, outcome in (("calm", 0.0, noise({}), 0, "pass"),
                                                  ("slow", 0.10, noise({}), 1, "regression"),
                                                  ("wild", 0.10, WILD, 3, "inconclusive")):  # fmt: skip
        a, b = _folders(tmp_path / name, *session(5, slowdown=slowdown, noise=speeds))
        result = CliRunner().invoke(main, ["gate", a, b, "--json"])
        assert (result.exit_code, json.loads(result.stdout)["outcome"]) == (code, outcome), name


#: one run of a side: copies the next prepared run of that side into the side's folder, as `bench run
#: --results-dir "$BENCH_GATE_RESULTS"` would write it
COPY_NEXT = (
    'n=$(ls "$BENCH_GATE_RESULTS" | wc -l); cp -r {src}/$(printf %02d $n) "$BENCH_GATE_RESULTS/"; echo copied $n'
)


def _commands(tmp_path, slowdown: float, speeds: tuple[float, ...]) -> list[str]:
    src_a, src_b = _folders(tmp_path / "src", *session(len(speeds) // 2, slowdown=slowdown, noise=speeds))
    a, b = str(tmp_path / "runs-A"), str(tmp_path / "runs-B")
    return [a, b, "--base-cmd", COPY_NEXT.format(src=shlex.quote(src_a)),
            "--candidate-cmd", COPY_NEXT.format(src=shlex.quote(src_b))]  # fmt: skip


def _taken(tmp_path) -> list[NodeReport]:
    from bench.report.store import load_report

    return [load_report(p) for p in sorted(tmp_path.glob("runs-*/*/report.json"))]


def test_bench_gate_runs_the_session_and_adds_pairs_until_a_disturbed_stretch_is_outvoted(tmp_path):
    args = _commands(tmp_path, 0.0, noise())
    junit = tmp_path / "gate.xml"
    result = CliRunner().invoke(main, ["gate", *args, "--json", "--junit", str(junit)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # the commands' own output ("copied N") went to stderr
    assert data["outcome"] == "pass" and 5 < len(data["pairs"]) < 12 and "copied 0" in result.stderr
    assert "gate: 5 pairs: inconclusive" in result.stderr and f"gate: {len(data['pairs'])} pairs: pass" in result.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name").split(" precision=")[1].split()[0] for c in cases] == ["float32", "float64"]
    # each case's time: its measurements' seconds over every run of both sides (20 samples a run, 10 or 20 ms each
    # at speed 1): 2 x pairs runs
    took = [sum(sum(r.measurements[i].samples_s) for r in _taken(tmp_path)) for i in (0, 1)]
    assert [float(c.get("time")) for c in cases] == pytest.approx(took, abs=2e-3)
    assert len(_taken(tmp_path)) == 2 * len(data["pairs"]) and took[0] > 2 * len(data["pairs"]) * 0.19
    assert all(c.find("failure") is None for c in cases) and suite.get("failures") == "0"


def test_bench_gate_at_its_cap_fails_inconclusive_and_junit_says_why(tmp_path):
    args = _commands(tmp_path, 0.10, WILD)
    junit = tmp_path / "gate.xml"
    result = CliRunner().invoke(main, ["gate", *args, "--max-pairs", "7", "--junit", str(junit)])
    assert result.exit_code == 3, result.output
    assert "gate inconclusive after 7 pairs" in result.stderr and "pairs needed" in result.stderr
    cases = ET.parse(junit).getroot().find("testsuite").findall("testcase")
    assert len(cases) == 2 and {c.find("failure").get("type") for c in cases} == {"inconclusive"}
    # the session continues from the folders: three more pairs, the sides still alternating
    result = CliRunner().invoke(main, ["gate", *args, "--max-pairs", "10", "--json"])
    assert result.exit_code == 3 and len(json.loads(result.stdout)["pairs"]) == 10


def test_bench_gate_regression_fails_its_metrics_junit_cases(tmp_path):
    args = _commands(tmp_path, 0.10, noise({}))
    junit = tmp_path / "gate.xml"
    result = CliRunner().invoke(main, ["gate", *args, "--junit", str(junit)])
    assert result.exit_code == 1 and "gate failed" in result.stderr
    cases = ET.parse(junit).getroot().find("testsuite").findall("testcase")
    assert {c.find("failure").get("type") for c in cases} == {"regression"}


def test_bench_gate_commands_that_fail_or_write_no_report_stop_the_session(tmp_path):
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    result = CliRunner().invoke(main, ["gate", a, b, "--base-cmd", "true", "--candidate-cmd", "true"])
    assert result.exit_code == 2 and "the baseline command left 0 new reports" in result.stderr
    result = CliRunner().invoke(main, ["gate", a, b, "--base-cmd", "exit 4", "--candidate-cmd", "true"])
    assert result.exit_code == 1 and "the baseline command exited 4" in result.stderr
    bytes_out = "printf '\\377\\376 not UTF-8\\n'"  # a command printing bytes no text encoding holds
    result = CliRunner().invoke(main, ["gate", a, b, "--base-cmd", bytes_out, "--candidate-cmd", "true"])
    assert result.exit_code == 2 and "the baseline command left 0 new reports" in result.stderr, result.output
    result = CliRunner().invoke(main, ["gate", a, b, "--base-cmd", "true"])
    assert result.exit_code == 2 and "go together" in result.stderr
    result = CliRunner().invoke(main, ["gate", a, b, "--base-cmd", "true", "--candidate-cmd", "true",
                                       "--pairs", "6", "--max-pairs", "5"])  # fmt: skip
    assert result.exit_code == 2 and "below --pairs" in result.stderr


if sys.platform == "win32":  # the commands are POSIX shell lines
    pytestmark = pytest.mark.skip
