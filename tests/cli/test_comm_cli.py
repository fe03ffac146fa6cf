"""bench comm end to end: one rank alone, and two gloo ranks under torchrun checking every collective."""

import json

import pytest
from click.testing import CliRunner

from bench import figures
from bench.cli import main
from bench.model import intake
from bench.report import verify as v
from bench.report.store import load_report
from bench.workloads import comm as cm
from tests.cli.ranks import BIN, failed_cleanly, kill_rank_1


def test_one_rank_runs_alone(tmp_path):
    res = CliRunner().invoke(main, ["comm", "--device", "cpu", "--op", "all_reduce", "--op", "broadcast",
                                    "--max-bytes", "1024", "--factor", "32", "--iterations", "3", "--warmup-iterations", "1",
                                    "--results-dir", str(tmp_path), "--json", "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output
    ms = json.loads(res.stdout)["measurements"]
    assert [(m["spec"]["op"], m["spec"]["bytes"]) for m in ms] == [("all_reduce", 8), ("all_reduce", 256),
                                                                    ("broadcast", 8), ("broadcast", 256)]  # fmt: skip
    assert all(m["status"] == "ok" and m["spec"]["world_size"] == 1 for m in ms)
    (path,) = tmp_path.glob("*/report.json")
    shown = CliRunner().invoke(main, ["report", str(path)])
    assert shown.exit_code == 0 and "busbw GB/s" in shown.output


def test_without_max_bytes_bench_comm_sweeps_to_the_suites_default(tmp_path, monkeypatch):
    """bench comm and a suite's [comm] section share one default largest message (bench.planning.comm)."""
    from bench.planning import comm as comm_plan

    monkeypatch.setitem(comm_plan.DEFAULT_MAX_BYTES, "cpu", 2048)
    res = CliRunner().invoke(main, ["comm", "--device", "cpu", "--op", "all_reduce", "--factor", "16",
                                    "--iterations", "2", "--warmup-iterations", "0", "--results-dir", str(tmp_path),
                                    "--json", "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output
    sizes = [m["spec"]["bytes"] for m in json.loads(res.stdout)["measurements"]]
    cc = {"min_bytes": 8, "max_bytes": None, "factor": 16}
    assert sizes == comm_plan.suite_sizes(cc, "cpu") == [8, 128, 2048]


def test_bad_sizes_are_usage_errors(tmp_path):
    res = CliRunner().invoke(main, ["comm", "--min-bytes", "64", "--max-bytes", "8", "--results-dir", str(tmp_path)])
    assert res.exit_code == 2 and "min_bytes <= max_bytes" in res.output


@pytest.mark.skipif(not (BIN / "torchrun").exists(), reason="torchrun not installed next to this Python")
def test_two_ranks_every_collective_checked_one_report(tmp_path):
    import subprocess

    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(BIN / "bench"), "comm", "--device", "cpu",
           "--max-bytes", "65536", "--factor", "64", "--iterations", "5", "--batches", "3", "--warmup-iterations", "1",
           "--timeout", "60",
           "--results-dir", str(tmp_path)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "busbw GB/s" in out.stdout and "peak" in out.stdout
    (path,) = tmp_path.glob("*/report.json")  # rank 0 alone writes
    rep = load_report(path)
    assert {m.spec["op"] for m in rep.measurements} == set(cm.OPS)
    for m in rep.measurements:
        assert m.status == "ok" and m.validity["passed"] and m.spec["world_size"] == 2
        assert m.spec["ops_per_sample"] == 5 and len(m.samples_s) == 3  # a sample per batch of 5 operations
        per_rank = m.details["per_rank"]
        assert [r["rank"] for r in per_rank] == [0, 1]
        assert m.samples_s == [
            max(a, b) for a, b in zip(per_rank[0]["samples_s"], per_rank[1]["samples_s"], strict=True)
        ]
        assert m.summary["busbw_gbps"] == pytest.approx(m.summary["algbw_gbps"] * figures.busbw_factor(m.spec["op"], 2))
    assert not v.errors(v.verify_node_report(intake.read_json(path).data))


def test_a_wrong_collective_result_is_invalid_and_exits_1(tmp_path, monkeypatch):
    import torch.distributed as dist

    real = dist.all_reduce

    def faulty(tensor, *args, **kwargs):
        out = real(tensor, *args, **kwargs)
        tensor[0] += 1  # one element wrong, as a flaky link or buggy transport would leave it
        return out

    monkeypatch.setattr(dist, "all_reduce", faulty)
    res = CliRunner().invoke(main, ["comm", "--device", "cpu", "--op", "all_reduce", "--max-bytes", "64",
                                    "--iterations", "2", "--warmup-iterations", "0", "--results-dir", str(tmp_path), "--quiet"])  # fmt: skip
    assert res.exit_code == 1 and "collective results were wrong" in res.stderr
    (path,) = tmp_path.glob("*/report.json")
    assert all(m.status == "invalid" for m in load_report(path).measurements)


def test_membw_cli_reports_triad(tmp_path):
    res = CliRunner().invoke(main, ["membw", "--device", "cpu", "--array-mib", "1", "--budget", "0.02",
                                    "--results-dir", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "triad" in res.output and "GB/s" in res.output
    (path,) = tmp_path.glob("*/report.json")
    assert not v.errors(v.verify_node_report(intake.read_json(path).data))
    shown = CliRunner().invoke(main, ["report", str(path)])
    assert shown.exit_code == 0 and "triad" in shown.output


def test_a_comm_rank_that_dies_fails_the_other_within_the_timeout(tmp_path):
    args = ["comm", "--device", "cpu", "--op", "all_reduce", "--max-bytes", "1048576", "--iterations", "100000",
            "--timeout", "8", "--results-dir", str(tmp_path), "--quiet"]  # fmt: skip
    code, err, seconds = kill_rank_1(args, 5)
    assert failed_cleanly(code, err) and seconds < 30
