"""bench under a real Slurm: a one-node cluster started for the test (root, Debian's slurm-wlm and munge)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.model import intake
from bench.report import verify as v
from bench.report.store import load_report
from tests.slurm.cluster import Cluster, available

ROOT = Path(__file__).resolve().parents[2]
BENCH = str(Path(sys.executable).parent / "bench")

if not available():
    if os.environ.get("CI"):  # .ci/run installs slurm-wlm and munge: missing ones there are a failure, not a skip
        raise RuntimeError("CI needs Slurm: run as root with slurm-wlm and munge installed (.ci/run does it)")
    pytest.skip("needs root and Debian's slurm-wlm + munge", allow_module_level=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("slurm"))
    c.start()
    yield c
    c.stop()


def test_srun_two_tasks_run_comm_and_write_one_report(cluster, tmp_path):
    cmd = ["srun", "-n", "2", BENCH, "comm", "--device", "cpu", "--op", "all_reduce", "--op", "all_gather",
           "--max-bytes", "4096", "--factor", "16", "--iterations", "3", "--warmup-iterations", "1", "--timeout", "60",
           "--results-dir", str(tmp_path)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=cluster.env, timeout=180, check=False)
    assert out.returncode == 0, out.stdout[-1500:] + out.stderr[-1500:]
    assert "busbw GB/s" in out.stdout
    (path,) = tmp_path.glob("*/report.json")
    rep = load_report(path)
    assert rep.config["launcher"] == "slurm" and rep.config["world_size"] == 2
    assert all(m.status == "ok" and m.spec["world_size"] == 2 for m in rep.measurements)
    assert not v.errors(v.verify_node_report(intake.read_json(path).data))


#: The node suite, briefly: what configs/slurm/bench.sbatch runs (configs/node.toml there) in seconds
QUICK_SUITE = """
[suite]
name = "slurm-quick"
devices = ["cpu"]
workloads = ["matmul", "comm"]
[matmul]
precisions = ["float32"]
budget_s = 0.5
window_s = 0.2
[comm]
ops = ["all_reduce"]
max_bytes = 1024
factor = 32
iterations = 3
warmup = 1
"""


def test_sbatch_runs_the_node_suite_exclusively_with_collectives_across_tasks(cluster, tmp_path):
    config = tmp_path / "quick.toml"
    config.write_text(QUICK_SUITE)
    env = {**cluster.env, "BENCH": BENCH, "BENCH_CONFIG": str(config), "BENCH_NODE_ARGS": "--skip-doctor --quiet"}
    cmd = ["sbatch", "--wait", "-N", "1", "-n", "2", f"--output={tmp_path / 'job.out'}",
           str(ROOT / "configs" / "slurm" / "bench.sbatch"), str(tmp_path / "results")]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    log = (tmp_path / "job.out").read_text() if (tmp_path / "job.out").exists() else ""
    assert out.returncode == 0, out.stderr + log[-2000:]
    (node,) = (tmp_path / "results" / "nodes").glob("*/report.json")  # one node, one report
    assert not v.errors(v.verify_node_report(intake.read_json(node).data))
    rep = load_report(node)
    assert rep.config["world_size"] == 2 and rep.config["launcher"] == "slurm"
    assert {m.workload for m in rep.measurements} == {"matmul", "comm"}
    assert any(m.details.get("search", {}).get("mamf") for m in rep.measurements)
