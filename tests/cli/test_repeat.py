"""`bench run --repeat N` (issue 25): a baseline with between-run spread in one command. Each run is a fresh process
(as pyperf's workers), the N reports land in one RESULTS_DIR that --baseline reads as N runs, and the spread of each
gated figure and the threshold it supports are printed; the rules behind them are pure (bench.report.drift)."""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.cli.repeat import ENV
from bench.report import drift
from bench.report.store import load_report
from tests.cli.ranks import BIN

#: one small fixed-shape product: a few seconds a run, start-up included
TINY = """
[suite]
devices = ["cpu"]
workloads = ["matmul"]

[matmul]
search = "none"
precisions = ["float32"]
sizes = [96]
budget_s = 0.05
max_warmup_s = 0.02

[outputs]
formats = []
"""


def _bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "bench"), *args], check=False, capture_output=True, text=True, timeout=600,
                          env=env)  # fmt: skip


def test_repeat_makes_n_runs_each_in_its_own_process_and_one_baseline_of_them(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    results = tmp_path / "baseline"
    # every Python process started says who it is and which repeat it runs (sitecustomize runs at each start-up)
    spy = tmp_path / "spy"
    spy.mkdir()
    log = tmp_path / "pids.log"
    (spy / "sitecustomize.py").write_text(
        "import os\n"
        f"with open({str(log)!r}, 'a') as f:\n"
        f"    f.write('%d %s\\n' % (os.getpid(), os.environ.get({ENV!r}, '-')))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(spy), os.environ.get("PYTHONPATH", "")])}
    proc = _bench("run", "--config", str(config), "--results-dir", str(results), "--skip-doctor", "--repeat", "3",
                  "--json", "--quiet", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    started = [line.split() for line in log.read_text().splitlines()]
    runs = {tag: {pid for pid, t in started if t == tag} for tag in ("-", "1/3", "2/3", "3/3")}
    assert all(runs.values()), started  # the command, then a process for each run
    assert len(set().union(*runs.values())) == sum(len(p) for p in runs.values())  # no process ran two of them
    out = json.loads(proc.stdout)
    reports = [load_report(p) for p in sorted(results.glob("*/report.json"))]
    assert len(reports) == 3 and len({r.run_id for r in reports}) == 3
    assert sorted(o["run_id"] for o in out["runs"]) == sorted(r.run_id for r in reports)
    (row,) = out["metrics"]
    assert row["metric"].startswith("matmul_tflops") and len(row["figures"]) == 3
    assert row["quiet_threshold"] == pytest.approx(drift.quiet_threshold(row["figures"]))
    assert row["robust_cv"] == pytest.approx(drift.robust_cv(row["figures"]))
    assert row["noise_floor"] == pytest.approx(drift.noise_floor(row["robust_cv"], 3, drift.CANDIDATE_RUNS))
    assert out["recommended_max_regression"] == drift.recommended_threshold([drift.spread(row["figures"])])
    assert out["candidate_runs"] == drift.CANDIDATE_RUNS and out["gates"] == []
    # the folder is the baseline: three runs, judged by their spread
    gated = _bench("run", "--config", str(config), "--results-dir", str(tmp_path / "next"), "--skip-doctor",
                   "--baseline", str(results), "--max-regression", "100%", "--quiet")  # fmt: skip
    said = gated.stdout + gated.stderr
    assert "3 baseline runs" in said, said
    # a 96^3 product's spread over three processes can pass 100% on a loaded machine (measured: a noise floor of
    # 109% during a full suite beside other work); the gate then says it cannot gate and exits 1, never a blind pass
    # or a false alarm. How the gate judges is tested on synthetic reports (tests/report/test_gate_runs.py, test_gates.py).
    assert gated.returncode == 0 or (gated.returncode == 1 and "steady enough to gate" in gated.stderr), said


def test_repeat_prints_the_spread_and_the_command_that_gates_against_it(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    results = tmp_path / "r"
    proc = _bench("run", "--config", str(config), "--results-dir", str(results), "--skip-doctor", "--repeat", "2",
                  "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "2 runs in" in proc.stdout and "robust" in proc.stdout and "floor" in proc.stdout
    assert f"bench run --repeat 3 --baseline {results} --max-regression" in proc.stdout


def test_repeat_with_a_baseline_gates_the_median_of_its_runs_not_each_run(tmp_path):
    """`bench run --repeat 2 --baseline DIR`: the command judges the two runs' median (pyperf's workers); the runs
    themselves do not gate; a failed gate exits 1."""
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    base = tmp_path / "base"
    for _ in range(2):
        assert (
            _bench("run", "--config", str(config), "--results-dir", str(base), "--skip-doctor", "--quiet").returncode
            == 0
        )
    proc = _bench("run", "--config", str(config), "--results-dir", str(tmp_path / "cand"), "--skip-doctor",
                  "--repeat", "2", "--baseline", str(base), "--max-regression", "100%", "--json", "--quiet")  # fmt: skip
    out = json.loads(proc.stdout)
    (gate,) = out["gates"]
    # as above: on a loaded machine the 96^3 figure may be too noisy to gate at all (exit 1, said so)
    noisy = proc.returncode == 1 and not gate["passed"] and "steady enough to gate" in gate["message"]
    assert (proc.returncode == 0 and gate["passed"]) or noisy, proc.stdout + proc.stderr
    assert noisy or ("the median of 2 runs" in gate["message"] and "2 baseline run(s)" in gate["message"])
    assert all(not any(g["name"] == "baseline" for g in run["gates"]) for run in out["runs"])  # no run gated alone
    other = tmp_path / "other.toml"
    other.write_text(TINY.replace("sizes = [96]", "sizes = [64]"))  # nothing in common with the baseline: a failure
    junit = tmp_path / "junit.xml"
    proc = _bench("run", "--config", str(other), "--results-dir", str(tmp_path / "odd"), "--skip-doctor",
                  "--repeat", "2", "--baseline", str(base), "--junit", str(junit), "--quiet")  # fmt: skip
    assert proc.returncode == 1 and "FAIL baseline: no metric in common" in proc.stdout, proc.stdout + proc.stderr
    assert "the median of 2 runs failed the baseline gate" in proc.stderr
    # the JUnit a CI shows carries the command's gate, not only the last run's own checks
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert "no metric in common" in cases["baseline"].find("failure").get("message")
    assert cases["matmul cpu float32"].find("failure") is None


def test_a_run_inside_a_repeat_runs_once(tmp_path, monkeypatch):
    """The environment marks a repeated run: it does not repeat again (no fork bomb)."""
    config = tmp_path / "tiny.toml"
    config.write_text(TINY)
    monkeypatch.setenv(ENV, "1/3")
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--results-dir", str(tmp_path / "r"),
                                       "--skip-doctor", "--repeat", "3", "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "r").glob("*/report.json"))) == 1


def test_repeat_with_a_bad_config_or_count_is_one_usage_error_and_no_run(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[matmul]\nbudjet_s = 1\n")
    result = CliRunner().invoke(main, ["run", "--config", str(config), "--results-dir", str(tmp_path / "r"),
                                       "--repeat", "3"])  # fmt: skip
    assert result.exit_code == 2 and "budjet_s" in result.output and result.output.count("error") == 1
    result = CliRunner().invoke(main, ["run", "--repeat", "0", "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--repeat" in result.output
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*/report.json"))


def test_the_spread_and_the_threshold_it_supports():
    s = drift.spread([1.0, 0.98, 1.02])
    assert s.median == pytest.approx(1.0) and s.spread == pytest.approx(0.04)
    assert s.cv == pytest.approx(0.02) and s.quiet == pytest.approx(1 - 0.98 / 1.01)  # 0.98 against 1.0 and 1.02
    assert s.robust_cv == pytest.approx(0.02 * 1.4826, rel=1e-4)
    # 3 x 2.97% x sqrt(pi/2) x sqrt(1/3 + 1/3) = 9.1%: above 10%/2, not steady; the smallest floor, rounded up
    assert s.floor() == pytest.approx(0.0911, abs=1e-4) and not s.steady()
    assert drift.recommended_threshold([s]) == 0.10
    assert drift.recommended_threshold([drift.spread([1.0, 1.0])]) == 0.01  # no spread at all: at least 1%
    wide = drift.spread([1.0, 0.8, 1.2])
    assert drift.recommended_threshold([drift.spread([1.0, 1.0, 1.001]), wide]) == 0.01  # the wide one is left out
    with pytest.raises(ValueError):
        drift.spread([1.0])
    with pytest.raises(ValueError):
        drift.recommended_threshold([])
