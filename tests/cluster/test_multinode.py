"""bench across nodes for real: namespaced hosts on this machine (tests/cluster/netns.py), torchrun's c10d rendezvous
between them, one signed report per node, and nodes that never join or die."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from bench.planning import matmul as matmul_plan
from bench.report.store import load_report
from tests.cli.ranks import BIN
from tests.cluster import netns

REPO = Path(__file__).resolve().parents[2]
#: A lost peer between phases ends the job after this long, not bench's 6 h default (a test must fail, not hang).
CONTROL_TIMEOUT_S = "180"
#: What each node's processes do not inherit from this one: what would tie them to this host's network or job.
HOST_ONLY = (
    "GLOO_SOCKET_IFNAME",
    "NCCL_SOCKET_IFNAME",
    "MASTER_ADDR",
    "MASTER_PORT",
    "RANK",
    "WORLD_SIZE",
    "LOCAL_RANK",
)


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in HOST_ONLY}


if not netns.available() and os.environ.get("CI"):  # .ci/run installs iproute2 and util-linux and runs as root
    raise RuntimeError("CI needs the namespaced cluster: run as root with iproute2 and util-linux (.ci/run does it)")
pytestmark = pytest.mark.skipif(not netns.available(), reason="needs root, ip (iproute2), unshare and nsenter")

#: The smoke suite, shortened for four ranks on two cores: every workload still runs, across both nodes.
QUICK = ["--set", 'matmul.precisions=["float32"]', "--set", "matmul.budget_s=1", "--set", "matmul.window_s=0.3",
         "--set", "membw.array_mib=8", "--set", 'train.models=["mlp"]', "--set", "comm.max_bytes=65536",
         "--set", 'comm.ops=["all_reduce", "all_gather"]', "--set", "comm.timeout_s=60",
         "--set", "gates.fail_below={ float32 = 0.0001 }"]  # fmt: skip


@pytest.fixture
def cluster(tmp_path):
    made = []

    def make(count):
        c = netns.Cluster(count, tmp_path / "cluster").start()
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()
        assert c.leftovers() == []


def test_nodes_have_their_own_names_and_reach_each_other(cluster):
    c = cluster(3)
    server = c.popen(0, [str(BIN / "python"), "-c", ("import socket; s = socket.create_server(('0.0.0.0', 7000)); "
                         "conn, _ = s.accept(); print(conn.recv(64).decode(), socket.gethostname())")])  # fmt: skip
    time.sleep(0.5)
    client = c.run(1, [str(BIN / "python"), "-c", (f"import socket; s = socket.create_connection(('{c.nodes[0].address}', "
                       "7000), timeout=10); s.sendall(socket.gethostname().encode())")])  # fmt: skip
    out, err = server.communicate(timeout=30)
    assert client.returncode == 0, client.stderr
    assert out.split() == ["node1", "node0"], err
    ids = {c.run(i, ["cat", "/etc/machine-id"]).stdout for i in range(3)}
    assert len(ids) == 3  # so each node's host fingerprint is its own


def test_teardown_leaves_nothing_even_with_processes_running(tmp_path):
    c = netns.Cluster(2, tmp_path / "c").start()
    c.popen(0, ["sleep", "300"])
    c.popen(1, ["sleep", "300"])
    assert c.leftovers()  # namespaces and live processes
    c.stop()
    assert c.leftovers() == []


def _torchrun(c, node, port, results, *args, nnodes=2):
    env = {**base_env(), "BENCH_KEY": str(results.parent / f"key-{node}.pem"), "PYTHONUNBUFFERED": "1",
           "BENCH_CONTROL_TIMEOUT_S": CONTROL_TIMEOUT_S}  # fmt: skip
    return c.popen(node, [str(BIN / "torchrun"), f"--nnodes={nnodes}", "--nproc-per-node=2", "--rdzv-backend=c10d",
                          f"--rdzv-endpoint={c.nodes[0].address}:{port}", "--rdzv-id=bench-test", "--max-restarts=0",
                          str(BIN / "bench"), *args], env=env)  # fmt: skip


def test_torchrun_across_two_nodes_writes_one_report_per_node(cluster, tmp_path):
    c = cluster(2)
    results = tmp_path / "results"
    args = [
        "run",
        "--config",
        str(REPO / "configs" / "smoke-cpu.toml"),
        *QUICK,
        "--results-dir",
        str(results),
        "--quiet",
    ]
    procs = [_torchrun(c, i, 29400, results, *args) for i in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    said = "\n".join(
        f"--- node{i} (exit {p.returncode}):\n{err[-2500:]}" for i, (p, (_, err)) in enumerate(zip(procs, outs))
    )
    assert all(p.returncode == 0 for p in procs), said
    reports = {r.inventory["host"]["hostname"]: r for r in map(load_report, results.glob("*/report.json"))}
    assert set(reports) == {"node0", "node1"}
    # rank 0 (on whichever node the rendezvous made group 0) adds the job-wide measurements to its node's report
    job = next(r for r in reports.values() if any(m.workload == "comm" for m in r.measurements))
    other = next(r for r in reports.values() if r is not job)
    fp = {r.inventory["host"]["fingerprint"] for r in reports.values()}
    assert len(fp) == 2  # each node's own fingerprint (its own machine id)
    assert {m.workload for m in job.measurements} == {"matmul", "membw", "train", "comm"}
    assert {m.workload for m in other.measurements} == {"matmul", "membw", "train"}  # its ranks' DDP runs
    for r in (job, other):  # a node's report measures only its own devices
        assert {m.device.get("uuid") for m in r.measurements} == {r.inventory["host"]["fingerprint"]}
        assert (
            len([m for m in r.measurements if m.workload == "train" and "rank" in m.details]) == 2 * 1
        )  # 2 ranks x mlp
    total = next(m for m in job.measurements if m.details.get("role") == "data-parallel total")
    hosts = [r["host"] for r in total.details["per_rank"]]  # ranks 0, 1 on rank 0's node; 2, 3 on the other
    assert hosts == [job.inventory["host"]["fingerprint"]] * 2 + [other.inventory["host"]["fingerprint"]] * 2
    assert total.spec["world_size"] == 4 and total.status == "ok"
    comm = [m for m in job.measurements if m.workload == "comm"]
    assert comm and all(m.spec["world_size"] == 4 and m.status == "ok" for m in comm)
    assert {x["host"] for x in comm[0].details["per_rank"]} == {"node0", "node1"}
    verify = c.run(0, [str(BIN / "bench"), "verify", *map(str, results.glob("*/report.json"))], timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    agg = c.run(0, [str(BIN / "bench"), "aggregate", *map(str, results.glob("*/report.json")), "-o",
                    str(tmp_path / "capacity.json"), "--json"], timeout=120)  # fmt: skip
    assert agg.returncode == 0, agg.stdout + agg.stderr
    capacity = json.loads((tmp_path / "capacity.json").read_text())
    assert [i["status"] for i in capacity["inputs"]] == ["counted", "counted"] and not capacity["duplicates"]
    cpu = [g for g in capacity["groups"] if g.get("precision") == "float32"]
    assert cpu and cpu[0]["nodes"] == 2


def _env_rank(c, node, world, results, *args, extra=None):
    """`bench ARGS` as rank `node` of `world` (one rank per node), rendezvous on node 0, from plain variables."""
    env = {**base_env(), "RANK": str(node), "WORLD_SIZE": str(world), "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
           "MASTER_ADDR": c.nodes[0].address, "MASTER_PORT": "29500", "BENCH_KEY": str(results.parent / f"key-{node}.pem"),
           "BENCH_CONTROL_TIMEOUT_S": CONTROL_TIMEOUT_S, **(extra or {})}  # fmt: skip
    return c.popen(node, [str(BIN / "bench"), *args], env=env)


def _wait_for_report(results, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in results.glob("*/report.json"):
            try:
                if load_report(path).measurements:
                    return path
            except Exception:  # noqa: BLE001, S110 - being written; try again
                pass
        time.sleep(0.2)
    raise AssertionError(f"no report with a measurement under {results} after {timeout} s")


def test_a_node_that_never_joins_ends_the_job_within_the_timeout_and_writes_nothing(cluster, tmp_path):
    c = cluster(2)
    results = tmp_path / "results"
    start = time.monotonic()
    lone = _env_rank(c, 0, 2, results, "run", "--config", str(REPO / "configs" / "smoke-cpu.toml"), *QUICK,
                     "--set", "comm.timeout_s=8", "--results-dir", str(results), "--quiet")  # fmt: skip
    _, err = lone.communicate(timeout=120)
    took = time.monotonic() - start
    assert lone.returncode == 1 and "rank 0 could not join 2 ranks" in err and "within 8 s" in err, err[-2000:]
    assert took < 60
    assert not list(results.glob("*/report.json"))  # nothing half-written


@pytest.mark.parametrize("fault", ["killed", "link cut"])
def test_a_node_lost_mid_run_leaves_the_survivor_a_valid_partial_report(cluster, tmp_path, fault):
    """Node 1 dies (SIGKILL to everything on it) or loses its link while node 0 measures: node 0 ends within the
    timeouts with one line, and its signed report keeps what it finished, marked partial, with the failure recorded."""
    c = cluster(2)
    results = tmp_path / "results"
    args = ["run", "--config", str(REPO / "configs" / "smoke-cpu.toml"), *QUICK, "--set", "comm.timeout_s=15",
            "--set", "matmul.budget_s=4", "--results-dir", str(results), "--quiet"]  # fmt: skip
    extra = {"BENCH_CONTROL_TIMEOUT_S": "15"}
    procs = [_env_rank(c, i, 2, results, *args, extra=extra) for i in range(2)]
    _wait_for_report(results)  # node 0's leader is measuring
    lost = time.monotonic()
    if fault == "killed":
        c.kill_node(1)
    else:
        c.cut(1)
    _, err = procs[0].communicate(timeout=180)
    assert procs[0].returncode == 1 and "rank 0:" in err, err[-2000:]
    assert time.monotonic() - lost < 90  # no hang past the timeouts
    (path,) = [p for p in results.glob("*/report.json") if load_report(p).inventory["host"]["hostname"] == "node0"]
    report = load_report(path)
    assert report.interrupted and any(m.workload == "matmul" and m.status == "ok" for m in report.measurements)
    assert report.measurements[-1].workload == "job" and report.measurements[-1].status == "error"
    verify = c.run(0, [str(BIN / "bench"), "verify", str(path)], timeout=120)
    assert verify.returncode == 0 and "partial" in verify.stdout, verify.stdout  # valid, signed, and says partial


def test_a_throttled_node_is_named_a_straggler_and_flagged_defective(cluster, tmp_path):
    """Node 1 gets a fifth of a CPU (a CFS quota). Its fixed-size products (1024^3, longer than one 5 ms period) fall
    behind node 0's: the job's report names it a straggler, and aggregate's defective-node rule flags it."""
    c = cluster(2)
    c.throttle(1, 0.2)
    results = tmp_path / "results"
    args = ["run", "--config", str(REPO / "configs" / "smoke-cpu.toml"), *QUICK, "--set", 'matmul.search="none"',
            "--set", "matmul.sizes=[1024]", "--results-dir", str(results), "--quiet", "--skip-doctor"]  # fmt: skip
    procs = [_env_rank(c, i, 2, results, *args) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    reports = {r.inventory["host"]["hostname"]: r for r in map(load_report, results.glob("*/report.json"))}
    figures = {h: matmul_plan.local_figures(r.measurements)["float32"] for h, r in reports.items()}
    job = reports["node0"]
    total = next(m for m in job.measurements if m.details.get("role") == "data-parallel total")
    assert [(s["rank"], s["hostname"]) for s in total.details["stragglers"]] == [(1, "node1")], figures
    assert all(m.details["stragglers"] == total.details["stragglers"] for m in job.measurements if m.workload == "comm")
    agg = c.run(0, [str(BIN / "bench"), "aggregate", *map(str, results.glob("*/report.json")), "-o",
                    str(tmp_path / "cap.json")], timeout=120)  # fmt: skip
    assert agg.returncode in (0, 1), agg.stdout + agg.stderr  # 1: a defective node
    defective = json.loads((tmp_path / "cap.json").read_text())["defective"]
    flagged = {d["node"] for d in defective if d["precision"] == "float32"}
    assert flagged & {"node1", reports["node1"].inventory["host"]["fingerprint"]}, (figures, defective)
    assert not flagged & {"node0", job.inventory["host"]["fingerprint"]}, (figures, defective)
