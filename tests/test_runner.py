"""runner: a rank's spool, and a node's lanes run at once, one worker process per GPU, timed as the GPU ran."""

import datetime as dt
import functools
import itertools
import multiprocessing
import os
import signal
import statistics
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from bench import launch, plans, runner, suite
from bench.hardware import devices
from bench.measure.sampling import Policy
from bench.model.reports import Measurement
from bench.planning import matmul as matmul_plan
from bench.planning import membw as membw_plan
from bench.report.store import ReportWriter, load_report
from bench.workloads import matmul as mm
from tests.fakes.cuda import Props, install_in_worker
from tests.report.synthetic import matmul, report, samples


def test_a_spool_keeps_what_a_rank_finished_for_its_node_leader(tmp_path):
    a = runner.Spool(tmp_path, "job-1", "fp-a", 1)
    b = runner.Spool(tmp_path, "job-1", "fp-a", 2)
    elsewhere = runner.Spool(tmp_path, "job-1", "fp-b", 3)  # another node on a shared results folder
    other_job = runner.Spool(tmp_path, "job-2", "fp-a", 1)
    for spool, median in ((a, 0.01), (b, 0.02), (elsewhere, 0.03), (other_job, 0.04)):
        spool.add(matmul("float32", samples(median)))
    with open(b.path, "a") as fh:
        fh.write('{"workload": "matm')  # the rank died mid-line
    leader = runner.Spool(tmp_path, "job-1", "fp-a", 0)
    got = leader.recover()
    assert sorted(round(m.summary["median_s"], 2) for m in got) == [0.01, 0.02]
    a.remove()
    assert not a.path.exists() and [round(m.summary["median_s"], 2) for m in leader.recover()] == [0.02]


def test_job_ids_every_rank_derives_alike():
    p = launch.Placement(1, 4, 1, 2, "10.0.0.1", 29500, "env")
    assert launch.job_id(p, {"TORCHELASTIC_RUN_ID": "abc/def"}) == "abc_def"
    assert launch.job_id(p, {"SLURM_JOB_ID": "77", "SLURM_STEP_ID": "2"}) == "slurm-77-2"
    assert launch.job_id(p, {}) == "10.0.0.1-29500"


def test_a_straggler_is_the_rank_whose_own_device_fell_behind_the_jobs_median():
    ranks = [{"rank": 0, "hostname": "node0", "figures": {"float32": 1.0, "bfloat16": 3.0}},
             {"rank": 1, "hostname": "node1", "figures": {}},  # a rank that measured nothing (CPU, not a leader)
             {"rank": 2, "hostname": "node2", "figures": {"float32": 0.3}},
             {"rank": 3, "hostname": "node3", "figures": {"float32": 0.95}}]  # fmt: skip
    (slow,) = matmul_plan.stragglers(ranks)
    assert (slow["rank"], slow["hostname"], slow["precision"]) == (2, "node2", "float32")
    assert slow["job_median_tflops"] == 0.95 and round(slow["fraction_of_median"], 3) == round(0.3 / 0.95, 3)
    assert matmul_plan.stragglers(ranks[:2]) == []  # one measuring rank: nothing to compare
    m = matmul("float32", samples(0.01))
    assert matmul_plan.local_figures([m]) == {"float32": m.summary["tflops_median"]}


# --- lanes: one process per GPU ----------------------------------------------------------------------------------------

#: The fake node for the lanes tests: eight devices on which a 32^3 float32 product takes 20 ms and the L2 flush 0.1 ms,
#: and a host that pays 1.5 ms per launch (four per flushed iteration: flush, event, product, event). One process
#: keeps its stream busy (about 6.5 ms of host work per 20.1 ms of device work: a margin for a loaded test machine);
#: eight threads behind one lock cannot (8 x 6.5 = 52 ms).
RATE = 2 * 32**3 / 20e-3
FAKE = {"count": 8, "props": Props(L2_cache_size=4096), "flops_per_s": RATE, "bytes_per_s": 8192 / 1e-4,
        "launch_s": 1.5e-3}  # fmt: skip
SPEC = mm.MatmulSpec(32, 32, 32, "float32")
QUICK = Policy(budget_s=0.6, min_iterations=5, max_warmup_s=0.1)


def _steps(gpus):
    return [runner.Step(f"{f.id} float32 32^3", functools.partial(mm.run, SPEC, f, QUICK), "matmul", asdict(f), f.id)
            for f in gpus]  # fmt: skip


def _utc(text):
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def _readings(measurements):
    """Each measurement's median rate as a fraction of the fake's."""
    return {m.device["id"]: m.summary["tflops_median"] * 1e12 / RATE for m in measurements}


def test_the_fake_shows_that_lanes_in_threads_of_one_process_read_low(fake_cuda):
    """The defect the fake must model (issue 22 item 2): the lanes as threads of one process (the runner before)
    read far below the device's rate, because each stream sits idle inside its timed region while the other
    threads hold the launch lock."""
    fake_cuda(**FAKE)
    torch.set_num_threads(1)
    gpus = [devices.facts(f"cuda:{i}") for i in range(8)]
    out = {}

    def lane(f):
        devices.bind_process(f.id)
        out[f.id] = mm.run(SPEC, f, QUICK)

    threads = [threading.Thread(target=lane, args=(f,)) for f in gpus]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    readings = _readings(out.values())
    # (a lane left alone at the end reads better: the typical lane is the defect)
    assert len(readings) == 8 and statistics.median(readings.values()) < 0.9, readings
    assert sum(abs(r - 1) <= 0.02 for r in readings.values()) < 4, readings


def test_eight_gpus_measured_at_once_read_within_two_percent_of_their_rate(fake_cuda, tmp_path):
    """One worker process per lane: eight fake devices measured at the same time through the runner each read
    their rate within 2%, and only the parent saved the report."""
    fake_cuda(**FAKE)
    gpus = [devices.facts(f"cuda:{i}") for i in range(8)]
    writer = ReportWriter(report([], end=None), tmp_path)
    out = runner.execute(writer, _steps(gpus), worker_init=functools.partial(install_in_worker, **FAKE))
    readings = _readings(out.measurements)
    assert sorted(readings) == [g.id for g in gpus] and all(m.status == "ok" for m in out.measurements)
    assert all(abs(r - 1) <= 0.02 for r in readings.values()), readings
    # at the same time: the lanes' measuring times add up to more than the wall time they spanned (one after another,
    # at most that; workers start a little apart on a loaded machine)
    spans = [(_utc(m.start_utc), _utc(m.end_utc)) for m in out.measurements]
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    assert sum(e - s for s, e in spans) > 1.5 * wall
    assert out.measurements[0].details["concurrency"]["devices"] == sorted(g.id for g in gpus)
    assert load_report(writer.path).measurements and not list((tmp_path / ".spool").glob("*.jsonl"))


def _cpu_step():
    cpu = devices.facts("cpu", {"cpu_model": "cpu", "fingerprint": "fp"})
    return runner.Step("cpu", functools.partial(mm.run, SPEC, cpu, QUICK), "matmul", asdict(cpu), runner.lane(cpu))


def _boom():
    raise RuntimeError("CUDA error: an illegal memory access was encountered")


def _die_then(signal_number):
    os.kill(os.getpid(), signal_number)


def _one_then_wait(f):
    yield mm.run(SPEC, f, QUICK)
    time.sleep(120)  # a long search: the parent must stop it
    yield mm.run(SPEC, f, QUICK)


FAST = {**FAKE, "count": 2, "launch_s": 0.0}


def test_a_suite_rebuilds_each_lane_in_its_worker_and_the_cpu_runs_after(fake_cuda, tmp_path):
    """Steps are closures: each worker rebuilds its lane from the config (plans.lane_plan) and runs only it, the
    measurements say which devices ran alongside, and the CPU (no lane) runs afterwards in this process."""
    fake_cuda(**FAST)
    config = suite.defaults()
    config["suite"]["workloads"] = ["matmul"]
    config["matmul"].update(search="fixed", sizes=[32], precisions=["float32"], budget_s=0.05, min_iterations=3,
                            max_warmup_s=0.01)  # fmt: skip
    host = {"cpu_model": "cpu", "fingerprint": "fp"}
    facts = [devices.facts("cuda:0"), devices.facts("cuda:1"), devices.facts("cpu", host)]
    steps = plans.suite_steps(config, facts, host, {})
    seen = []
    writer = ReportWriter(report([], end=None), tmp_path)
    plan = functools.partial(plans.lane_plan, functools.partial(plans.suite_build, config, host), facts)
    out = runner.execute(
        writer, steps, seen.append, plan=plan, worker_init=functools.partial(install_in_worker, **FAST)
    )
    assert sorted(s.label for s in seen) == sorted(s.label for s in steps)  # progress reported here, per step
    assert [m.status for m in out.measurements] == ["ok"] * 3 and out.measurements[-1].device["id"] == "cpu"
    gpu = [m for m in out.measurements if m.device["kind"] == "cuda"]
    assert {m.device["id"] for m in gpu} == {"cuda:0", "cuda:1"}
    assert all(m.details["concurrency"]["devices"] == ["cuda:0", "cuda:1"] for m in gpu)
    assert "concurrency" not in out.measurements[-1].details
    closures = [runner.Step(f.id, lambda f=f: mm.run(SPEC, f, QUICK), lane=f.id) for f in facts[:2]]
    with pytest.raises(TypeError, match="does not pickle"):  # closures cannot reach a worker: said at once
        runner.execute(ReportWriter(report([], end=None), tmp_path / "closures"), closures)


def test_sequential_lanes_run_here_one_after_another(fake_cuda, tmp_path):
    fake_cuda(**FAST)
    gpus = [devices.facts("cuda:0"), devices.facts("cuda:1")]
    out = runner.execute(ReportWriter(report([], end=None), tmp_path), [*_steps(gpus), _cpu_step()], concurrent=False)
    spans = [(_utc(m.start_utc), _utc(m.end_utc)) for m in out.measurements]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert all("concurrency" not in m.details for m in out.measurements)


def test_a_failing_lane_stops_the_others_and_closes_the_report(fake_cuda, tmp_path):
    fake_cuda(**FAST)
    one = devices.facts("cuda:1")
    steps = [runner.Step("bad", _boom, lane="cuda:0"), *_steps([one])]
    init = functools.partial(install_in_worker, **FAST)
    writer = ReportWriter(report([], end=None), tmp_path)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        runner.execute(writer, steps, worker_init=init)
    assert load_report(writer.path).interrupted
    kept = runner.execute(ReportWriter(report([], end=None), tmp_path / "k"), steps, keep_going=True, worker_init=init)
    assert sorted(m.status for m in kept.measurements) == ["error", "ok"]


@pytest.mark.parametrize("keep_going", [True, False])
def test_a_worker_that_dies_is_an_error_record_for_its_lane(fake_cuda, tmp_path, keep_going):
    """A segfault or the out-of-memory killer ends a worker without a Python exception: its lane gets an 'error'
    record naming how it ended; with keep_going the other lanes finish, otherwise the run stops as interrupted."""
    fake_cuda(**FAST)
    zero, one = devices.facts("cuda:0"), devices.facts("cuda:1")
    steps = [runner.Step("dies", functools.partial(_die_then, signal.SIGKILL), "matmul", asdict(zero), "cuda:0"),
             *_steps([one])]  # fmt: skip
    writer = ReportWriter(report([], end=None), tmp_path)
    init = functools.partial(install_in_worker, **FAST)
    if keep_going:
        out = runner.execute(writer, steps, keep_going=True, worker_init=init)
    else:
        with pytest.raises(runner.LaneDied, match="killed by SIGKILL"):
            runner.execute(writer, steps, worker_init=init)
        out = load_report(writer.path)
        assert out.interrupted
    dead = [m for m in out.measurements if m.status == "error"]
    assert len(dead) == 1 and dead[0].device["id"] == "cuda:0" and "SIGKILL" in dead[0].reason
    assert "out-of-memory killer" in dead[0].reason and dead[0].details["exit"] == "killed by SIGKILL"
    if keep_going:
        assert [m.status for m in out.measurements if m.device["id"] == "cuda:1"] == ["ok"]


def test_ctrl_c_stops_the_workers_and_keeps_what_they_sent(fake_cuda, tmp_path):
    """Ctrl-C (or SIGTERM, raised as Terminated) in the parent: the workers are stopped at once, and the report is
    closed as interrupted with every measurement received."""
    fake_cuda(**FAST)
    gpus = [devices.facts("cuda:0"), devices.facts("cuda:1")]
    steps = [runner.Step(f.id, functools.partial(_one_then_wait, f), "matmul", asdict(f), f.id) for f in gpus]
    got = []

    def measured(m):
        got.append(m)
        if len(got) == 2:
            raise KeyboardInterrupt

    writer = ReportWriter(report([], end=None), tmp_path)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        runner.execute(writer, steps, on_measurement=measured, worker_init=functools.partial(install_in_worker, **FAST))
    assert time.monotonic() - t0 < 60 and not multiprocessing.active_children()
    saved = load_report(writer.path)
    assert saved.interrupted and sorted(m.device["id"] for m in saved.measurements) == ["cuda:0", "cuda:1"]
    # what a worker finished is also in its spool, should this process be killed before saving it
    assert len(list((tmp_path / ".spool").glob("lanes-run-a-fp-a-rank*.jsonl"))) == 2


def _hold_copies(f):
    """A lane's host<->device copies: hold the node's copy lock for a while and say when."""
    with devices.host_copies():
        held = [time.time()]
        time.sleep(0.3)
        held.append(time.time())
    return Measurement("membw", {"kernel": "h2d"}, asdict(f), "skipped", "test", details={"held": held})


def test_host_copies_take_turns_across_the_lanes_workers(fake_cuda, tmp_path):
    """GPUs behind one PCIe switch would each see a fraction of their link: the workers share one lock for copies."""
    fake_cuda(**FAST)
    gpus = [devices.facts("cuda:0"), devices.facts("cuda:1")]
    steps = [runner.Step(f.id, functools.partial(_hold_copies, f), "membw", asdict(f), f.id) for f in gpus]
    out = runner.execute(ReportWriter(report([], end=None), tmp_path), steps,
                         worker_init=functools.partial(install_in_worker, **FAST))  # fmt: skip
    first, second = sorted(m.details["held"] for m in out.measurements)
    assert first[1] <= second[0]


def test_every_gpu_plan_reaches_its_workers(fake_cuda):
    """bench matmul (fixed shapes), bench membw: steps that pickle as they are. bench matmul --search: steps are
    closures over telemetry readers and float32's result, so each worker rebuilds its lane (plans.lane_plan) with the
    same labels the parent shows."""
    import pickle

    fake_cuda(**FAST)
    host = {"cpu_model": "cpu", "fingerprint": "fp"}
    gpus = [devices.facts("cuda:0"), devices.facts("cuda:1")]
    fixed = matmul_plan.fixed_plan(gpus, host, ("float32",), [(32, 32, 32)], QUICK, matmul_plan.PeakOverrides())
    membw = membw_plan.steps(gpus, QUICK, 1024)
    assert [s.label for s in pickle.loads(pickle.dumps(fixed + membw))] == [s.label for s in fixed + membw]
    args = (host, ("float32", "bfloat16"), "auto", [], 1.0, 1.0, matmul_plan.PeakOverrides(), 0.0)
    search = matmul_plan.search_plan(gpus, host, *args[1:7], {}, args[7])
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(search)
    plan = pickle.loads(pickle.dumps(functools.partial(plans.lane_plan, functools.partial(matmul_plan.search_build, *args),
                                                       gpus)))  # fmt: skip
    with plan("cuda:1") as rebuilt:
        assert [s.label for s in rebuilt] == [s.label for s in search if s.lane == "cuda:1"] != []


def _mark_pid_then_one_then_wait(f, folder):
    (folder / f"{f.id}.pid").write_text(str(os.getpid()))
    yield from _one_then_wait(f)


_KILLED_PARENT = """
import functools, pathlib, sys
from dataclasses import asdict
import pytest
from bench import runner
from bench.hardware import devices
from bench.report.store import ReportWriter
from tests.fakes.cuda import FakeCuda, install_in_worker
from tests.report.synthetic import report
from tests.test_runner import FAST, _mark_pid_then_one_then_wait

folder = pathlib.Path(sys.argv[1])
FakeCuda(**FAST).install(pytest.MonkeyPatch())
gpus = [devices.facts("cuda:0"), devices.facts("cuda:1")]
steps = [runner.Step(f.id, functools.partial(_mark_pid_then_one_then_wait, f, folder), "matmul", asdict(f), f.id)
         for f in gpus]
runner.execute(ReportWriter(report([], end=None), folder), steps, worker_init=functools.partial(install_in_worker, **FAST))
"""


def _gone(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            return "\\nState:\\tZ" in fh.read()
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_a_killed_parent_loses_no_finished_measurement_and_leaves_no_worker(tmp_path):
    """SIGKILL of the parent (it cannot stop its workers): each worker's finished measurements are in its spool,
    and the workers end by themselves instead of holding their GPUs for nobody."""
    import subprocess
    import sys

    parent = subprocess.Popen([sys.executable, "-c", _KILLED_PARENT, str(tmp_path)], cwd=Path(__file__).parent.parent)
    spools = tmp_path / ".spool"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lines = (
            [p.read_text().count("\n") for p in spools.glob("lanes-run-a-fp-a-rank*.jsonl")] if spools.exists() else []
        )
        if lines == [1, 1]:
            break
        time.sleep(0.2)
    parent.kill()
    parent.wait()
    assert lines == [1, 1]
    pids = [int(p.read_text()) for p in tmp_path.glob("cuda:*.pid")]
    assert len(pids) == 2
    deadline = time.monotonic() + 30
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(_gone(p) for p in pids)
    kept = runner.lane_spool(tmp_path, "run-a", "fp-a", -1).recover()  # what a later reader finds in the spools
    assert sorted(m.device["id"] for m in kept) == ["cuda:0", "cuda:1"] and all(m.status == "ok" for m in kept)
