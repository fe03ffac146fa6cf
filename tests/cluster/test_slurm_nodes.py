"""Slurm across namespaced nodes: slurmctld on node 0, slurmd on nodes 1 and 2 (each its own NodeName, host name and
address), one srun of the suite over both, from Slurm's own variables."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from bench.report.store import load_report
from tests.cli.ranks import BIN
from tests.cluster import netns
from tests.cluster.test_multinode import QUICK, REPO, base_env
from tests.slurm import cluster as one_node

pytestmark = pytest.mark.skipif(not (netns.available() and one_node.available()),
                                reason="needs root, iproute2, util-linux and Debian's slurm-wlm + munge")  # fmt: skip


@pytest.fixture
def slurm(tmp_path):
    c = netns.Cluster(3, tmp_path / "cluster").start()
    r = tmp_path / "slurm"
    munged = None
    try:
        sock = one_node.start_munge(r)
        munged = r / "munge" / "munged.pid"
        conf = r / "slurm.conf"
        conf.write_text(one_node.slurm_conf(r, "node0", [(n.hostname, n.address, 2) for n in c.nodes[1:]], sock))
        for n in c.nodes[1:]:
            (r / "spool" / n.hostname).mkdir(parents=True, exist_ok=True)
        env = {**base_env(), "SLURM_CONF": str(conf)}
        c.popen(0, ["slurmctld", "-D", "-f", str(conf)], env=env)
        for n in c.nodes[1:]:
            c.popen(n.index, ["slurmd", "-D", "-N", n.hostname, "-f", str(conf)], env=env)
        deadline = time.monotonic() + 60
        while True:
            states = c.run(0, ["sinfo", "-h", "-N", "-o", "%N %t"], timeout=30, env=env).stdout.split()
            if states.count("idle") == 2:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"slurm nodes did not come up: {states}; logs in {r / 'log'}")
            time.sleep(0.5)
        yield c, env
    finally:
        c.stop()
        if munged and munged.exists():
            subprocess.run(["kill", munged.read_text().strip()], check=False)
        assert c.leftovers() == []


def test_sbatch_across_two_slurm_nodes_writes_one_report_per_node(slurm, tmp_path):
    """configs/slurm/bench.sbatch as users submit it, on two nodes with two tasks each."""
    c, env = slurm
    results = tmp_path / "results" / "nodes"
    bench = tmp_path / "bench.sh"  # each node signs with its own key (a shared home would give both the same one)
    bench.write_text(f'#!/bin/sh\nBENCH_KEY={tmp_path}/key-$(hostname).pem exec {BIN / "bench"} "$@"\n')
    bench.chmod(0o755)
    quick = " ".join(a.replace(" ", "") for a in QUICK)  # the script splits BENCH_NODE_ARGS on spaces
    job_env = {**env, "BENCH": str(bench), "BENCH_CONFIG": str(REPO / "configs" / "smoke-cpu.toml"),
               "BENCH_NODE_ARGS": f"{quick} --quiet --skip-doctor"}  # fmt: skip
    p = c.popen(0, ["sbatch", "--wait", "--nodes=2", "--ntasks-per-node=2", f"--output={tmp_path / 'job.out'}",
                    str(REPO / "configs" / "slurm" / "bench.sbatch"), str(tmp_path / "results")], env=job_env)  # fmt: skip
    _out, err = p.communicate(timeout=600)
    log = (tmp_path / "job.out").read_text() if (tmp_path / "job.out").exists() else ""
    assert p.returncode == 0, err[-2000:] + log[-3000:]
    reports = {r.inventory["host"]["hostname"]: r for r in map(load_report, results.glob("*/report.json"))}
    assert set(reports) == {"node1", "node2"}
    assert all(r.config["launcher"] == "slurm" and r.config["world_size"] == 4 for r in reports.values())
    job = next(r for r in reports.values() if any(m.workload == "comm" for m in r.measurements))
    assert job.inventory["host"]["hostname"] == "node1"  # Slurm's rank 0 is on the first node of the step
    total = next(m for m in job.measurements if m.details.get("role") == "data-parallel total")
    assert total.spec["world_size"] == 4 and len({r["host"] for r in total.details["per_rank"]}) == 2
    paths = [str(p) for p in results.glob("*/report.json")]
    assert c.run(0, [str(BIN / "bench"), "verify", *paths], timeout=120).returncode == 0
    agg = c.run(0, [str(BIN / "bench"), "aggregate", *paths, "-o", str(tmp_path / "cap.json")], timeout=120)
    assert agg.returncode == 0, agg.stdout + agg.stderr
    capacity = json.loads(Path(tmp_path / "cap.json").read_text())
    assert [i["status"] for i in capacity["inputs"]] == ["counted", "counted"]
