"""Issue 25's leftovers (left8): the gate compares each round's budget_s too. A candidate whose config timed each
measurement for another budget than the baseline's measured another thing (a run's figure is its fastest iteration,
which a longer window reads higher on the same code): docs/ci.md's rule for another config or another number of
rounds, "not comparable", with a finding naming both budgets."""

from __future__ import annotations

import copy

from click.testing import CliRunner

from bench.cli import main
from bench.report import gates
from tests.report.synthetic import gate_folders
from tests.report.test_paired_rounds import session


def _with_budget(runs, budget, where="suite"):
    out = []
    for r in runs:
        r = copy.deepcopy(r)
        if where == "suite":
            r.config = {"suite": {"matmul": {"budget_s": budget, "rounds": 3}}}
        else:  # bench matmul's own config
            r.config = {"workload": "matmul", "budget_s": budget}
        out.append(r)
    return out


def test_the_paired_gate_names_a_candidate_timed_for_another_budget_and_does_not_judge_it():
    base, cand = session(5)
    base, cand = _with_budget(base, 0.25), _with_budget(cand, 1.0)
    _, metrics, broken = gates.paired_metrics(base, cand, 0.05)
    assert not metrics and broken
    assert "budget_s 0.25 vs 1.0 (each measurement's timed seconds)" in broken[0].message
    assert "cannot gate" in broken[0].message and not broken[0].passed
    # the same budget (1 and 1.0 alike), or a budget neither config records: judged as before
    same_base, same_cand = _with_budget(base, 1), _with_budget(cand, 1.0)
    assert gates.paired_metrics(same_base, same_cand, 0.05)[2] == []
    assert gates.paired_metrics(*session(5), 0.05)[2] == []


def test_a_budget_left_to_the_default_is_named_against_one_given():
    base, cand = session(5)
    base, cand = _with_budget(base, None, "verb"), _with_budget(cand, 0.5, "verb")
    broken = gates.paired_metrics(base, cand, 0.05)[2]
    assert broken and "budget_s None (the default) vs 0.5" in broken[0].message


def test_the_unpaired_gate_names_another_budget_too():
    base, cand = session(3)
    base, cand = _with_budget(base, 0.25), _with_budget(cand, 2.0)
    out = gates.regressions(base, cand[0], 0.05)
    assert len(out) == 3 and not any(g.passed for g in out)  # one finding a baseline run
    assert all("measured another config" in g.message and "budget_s 0.25 vs 2.0" in g.message for g in out)


def test_bench_gate_says_not_comparable_with_both_budgets(tmp_path):
    base, cand = session(5)
    a, b = gate_folders(tmp_path, _with_budget(base, 0.25), _with_budget(cand, 1.0))
    out = CliRunner().invoke(main, ["gate", a, b])
    assert out.exit_code == 1, out.output
    assert "budget_s 0.25 vs 1.0" in out.output, out.output


def test_a_hostile_budget_is_shown_short_and_never_raises():
    base, cand = session(5)
    base, cand = _with_budget(base, "x" * 10_000), _with_budget(cand, [1, {"a": None}])
    (gate,) = gates.paired_metrics(base, cand, 0.05)[2][:1]
    assert "budget_s 'xxxx" in gate.message and len(gate.message) < 2_000
