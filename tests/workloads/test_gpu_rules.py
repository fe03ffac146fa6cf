"""The GPU paths under tests/fakes/cuda.py, which refuses what CUDA, cuBLAS and NCCL refuse (issue 16).

Each test names the defect it guards; each failed on the first wave's code, whose fakes accepted anything.
"""

import os
import types

import pytest
import torch

from bench import figures, launch
from bench.hardware import devices, peaks
from bench.measure.sampling import Policy
from bench.measure.timer import CudaEventTimer, PerfCounterTimer
from bench.planning import matmul as matmul_plan
from bench.planning import train as train_plan
from bench.workloads import comm as cm
from bench.workloads import matmul as mm
from bench.workloads import membw as mb
from bench.workloads import tf32
from bench.workloads import train as tr
from tests.fakes.cuda import Props

QUICK = Policy(budget_s=0.01, min_iterations=2, max_warmup_s=0.0, max_warmup_iterations=1)
NATIVE = ("float64", "float32", "tf32", "bfloat16", "float16", "float8_e4m3", "int8")


def h200(fake_cuda, **kw):
    fake = fake_cuda(**kw)
    return fake, devices.facts("cuda:0")


@pytest.mark.parametrize("precision", NATIVE)
def test_every_precision_measures_and_checks_on_a_gpu(fake_cuda, precision):
    """16.1: the Freivalds check drew its signs on the CPU with the CUDA generator: every GPU matmul was an error."""
    fake, gpu = h200(fake_cuda)
    m = mm.run(mm.MatmulSpec(64, 64, 64, precision), gpu, QUICK)
    assert m.status == "ok", m.reason
    assert m.validity["passed"] and m.timer == "cuda_event"
    assert ("matmul" in {n for n, _ in fake.calls}) or precision in ("int8", "float8_e4m3")
    assert {d for _, d in fake.calls} == {"cuda:0"}


def test_int8_takes_b_column_major(fake_cuda):
    """16.3: _int_mm got a row-major B (NN); cuBLASLt's int8 kernels take TN."""
    _, gpu = h200(fake_cuda)
    a, b, _c = mm._operands(mm.MatmulSpec(32, 64, 64, "int8"), gpu, 0)
    assert b.stride(0) == 1 and a.stride(1) == 1
    assert mm.run(mm.MatmulSpec(32, 64, 64, "int8"), gpu, QUICK).status == "ok"


def test_float32_mode_on_torch_without_fp32_precision(fake_cuda, monkeypatch):
    """16.4: torch.backends.cuda.matmul.fp32_precision exists from torch 2.9 only; older torch has allow_tf32."""
    _, gpu = h200(fake_cuda)
    seen = []

    class Knob:  # torch < 2.9
        def __init__(self):
            self._allow = False

        @property
        def allow_tf32(self):
            return self._allow

        @allow_tf32.setter
        def allow_tf32(self, value):
            seen.append(value)
            self._allow = value

    knob = Knob()
    monkeypatch.setattr(torch.backends.cuda, "matmul", knob)
    for precision, mode in (("float32", False), ("tf32", True)):
        m = mm.run(mm.MatmulSpec(64, 64, 64, precision), gpu, QUICK)
        assert m.status == "ok", m.reason
        assert seen[-2:] == [mode, False] and knob.allow_tf32 is False  # set for the run, restored after


@pytest.mark.parametrize("version", [(2, 8), (2, 13)])
@pytest.mark.parametrize(
    "precision, env, path, flagged",
    [
        ("float32", {}, "ieee", False),
        ("tf32", {}, "tf32", False),
        ("tf32", {"NVIDIA_TF32_OVERRIDE": "0"}, "ieee", True),  # NVIDIA's libraries never use TF32 then
        ("float32", {"NVIDIA_TF32_OVERRIDE": "0"}, "ieee", False),
        # before torch 2.9 the variable wins over bench's explicit IEEE setting; from 2.9 it is only the initial value
        ("float32", {"TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": "1"}, {(2, 8): "tf32", (2, 13): "ieee"}, None),
    ],
)
def test_tf32_overrides_in_the_environment_are_detected(fake_cuda, monkeypatch, version, precision, env, path, flagged):
    """16.14: NGC containers set variables that make float32 run on tensor cores, or 'tf32' as IEEE float32. A probe
    product, in the same mode on the same device, says what really ran; the variables are recorded beside it."""
    from tests.fakes import tf32 as fake_tf32

    _, gpu = h200(fake_cuda)
    for k in tf32.ENVIRONMENT:
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    fake_tf32.install(monkeypatch, version)
    path = path[version] if isinstance(path, dict) else path
    flagged = path == "tf32" if flagged is None else flagged
    m = mm.run(mm.MatmulSpec(64, 64, 64, precision), gpu, QUICK)
    assert m.details["tf32_environment"] == env and m.details["fp32_path"] == path
    codes = {w["code"] for w in m.warnings}
    assert (m.status == "invalid" and "tf32-override" in codes) == flagged, m.reason
    if flagged:
        assert next(iter(env)) in m.reason


def test_float32_that_ran_on_tf32_is_invalid_even_where_freivalds_passes(fake_cuda, monkeypatch):
    """Freivalds' float32 tolerance cannot tell TF32 from IEEE at K >= 4096; the probe can. Here TF32 leaks in from
    the process-wide switch (as another thread would have set it)."""
    import contextlib

    _, gpu = h200(fake_cuda)
    monkeypatch.setattr(mm, "_float32_mode", lambda device, precision: contextlib.nullcontext())
    knob = torch.backends.cuda.matmul
    before, knob.fp32_precision = knob.fp32_precision, "tf32"
    try:
        m = mm.run(mm.MatmulSpec(32, 32, 4096, "float32"), gpu, QUICK)
    finally:
        knob.fp32_precision = before
    assert m.validity["passed"]  # the product passes its check...
    assert m.status == "invalid" and m.details["fp32_path"] == "tf32" and "TF32 tensor cores" in m.reason  # ...not this


def test_lanes_never_hold_tf32_and_ieee_at_once(fake_cuda):
    """The TF32 switch is one per process: a lane timing float32 must wait while another lane times tf32."""
    import threading

    fake_cuda()
    inside, order = threading.Event(), []
    release = threading.Event()

    def tf32_lane():
        with tf32.mode(True):
            order.append(("tf32 in", torch.backends.cuda.matmul.fp32_precision))
            inside.set()
            release.wait(5)
            order.append(("tf32 out", None))

    def ieee_lane():
        inside.wait(5)
        with tf32.mode(False):
            order.append(("ieee in", torch.backends.cuda.matmul.fp32_precision))

    before = torch.backends.cuda.matmul.fp32_precision
    threads = [threading.Thread(target=tf32_lane), threading.Thread(target=ieee_lane)]
    for t in threads:
        t.start()
    inside.wait(5)
    threading.Event().wait(0.2)  # the IEEE lane is now waiting for the switch
    assert order == [("tf32 in", "tf32")]
    release.set()
    for t in threads:
        t.join(5)
    assert order == [("tf32 in", "tf32"), ("tf32 out", None), ("ieee in", "ieee")]
    assert torch.backends.cuda.matmul.fp32_precision == before  # restored when the last user left


def test_fp8_is_measured_with_and_without_fast_accumulation(fake_cuda):
    """16.16: production fp8 GEMMs use fast accumulation; bench measured only the slow mode and did not record it."""
    fake, gpu = h200(fake_cuda)
    steps = matmul_plan.fixed_plan([gpu], {}, ("float8_e4m3",), [(64, 64, 64)], QUICK, matmul_plan.PeakOverrides())
    assert len(steps) == 2 and "fast-accum" in steps[1].label
    out = [s.run() for s in steps]
    assert [m.spec["fast_accum"] for m in out] == [False, True]
    assert all(m.status == "ok" for m in out), [m.reason for m in out]
    assert set(fake.fast_accum) == {False, True}
    assert mm.MatmulSpec(16, 16, 16, "float8_e4m3", True).check_precision.accumulate_roundoff > \
        mm.MatmulSpec(16, 16, 16, "float8_e4m3").check_precision.accumulate_roundoff  # fmt: skip
    assert "fast_accum" not in mm.MatmulSpec(16, 16, 16, "bfloat16").to_dict()  # other specs keep their form


def test_memory_fit_counts_the_flush_buffer_and_the_generation_temporary(fake_cuda):
    """16.9: the 2xL2 flush buffer and the float32 operand made before a bf16 cast were not counted."""
    spec = mm.MatmulSpec(4096, 4096, 4096, "bfloat16")
    operands = (2 * 4096 * 4096) * 2 + 4096 * 4096 * 2
    assert spec.operand_bytes() >= operands + 4096 * 4096 * 4  # one float32 operand while generating
    l2 = 60 * 2**20
    need = spec.operand_bytes() + 2 * l2
    _fake, gpu = h200(
        fake_cuda, props=Props(total_memory=int(need / (1 - mm.MEMORY_HEADROOM)) - 2**20, L2_cache_size=l2)
    )
    m = mm.run(spec, gpu, QUICK)
    assert m.status == "skipped" and "GiB free" in m.reason


def test_memory_held_by_the_caching_allocator_counts_as_free(fake_cuda):
    """16.20: after large runs mem_get_info shows the allocator's cache as used, so shapes that fit were skipped."""
    fake, _gpu = h200(fake_cuda)
    fake.reserved[0], fake.allocated[0] = 100 * 10**9, 10**9
    free, _total = torch.cuda.mem_get_info(0)
    assert devices.free_memory_bytes("cuda:0") == free + 99 * 10**9


def test_msmf_times_iterations_back_to_back(fake_cuda):
    """16.6: MSMF added per-iteration event times (flushed, gaps excluded): a kernel rate, not sustained throughput."""
    _fake, gpu = h200(fake_cuda)
    timer = mm.default_timer(gpu, sustained=True)
    assert timer._flush is None and timer.back_to_back
    out = timer.time(lambda: torch.ones(8, device="cuda:0"), 4)
    assert len(out) == 4 and all(s >= 0 for s in out)
    with pytest.raises(ValueError, match="cannot flush"):
        CudaEventTimer(torch.device("cuda:0"), flush_bytes=64, back_to_back=True)
    # the host timer too: each duration runs from the previous call's end, so they add up to the whole batch
    import time

    wall = time.perf_counter()
    samples = PerfCounterTimer(back_to_back=True).time(lambda: time.sleep(0.002), 5)
    assert sum(samples) <= time.perf_counter() - wall and sum(samples) >= 0.01


def test_search_measures_msmf_sustained_after_settling(monkeypatch):
    from bench.workloads import matmul_search as ms

    calls = []

    def measure(spec, device, policy, **kw):
        calls.append(kw.get("sustained", False))
        return mm.run(spec, device, policy, **kw)

    cpu = devices.facts("cpu", {"cpu_model": "cpu", "fingerprint": "fp", "isa_flags": {"avx2": True}})
    config = ms.SearchConfig("auto", 0.05, 0.02, settle_s=0.01)
    out = list(ms.search(cpu, "float32", config, [(32, 32, 32), (64, 64, 64)], measure=measure))
    assert calls[0] is True and calls[-1] is True and not any(calls[1:-1])  # settle first, MSMF last
    msmf = out[-1]
    assert msmf.details["search"]["role"] == "msmf" and "back-to-back" in msmf.details["timing"]
    assert out[0].details["search"]["settled"]["shape"] == [64, 64, 64]


def test_a_mig_slice_gets_its_share_of_the_peak(fake_cuda):
    """16.8: a MIG slice got the whole GPU's peak, and a GPU- UUID NVML does not know."""
    fake_cuda(props=Props(name="NVIDIA H100 80GB HBM3 MIG 3g.40gb", multi_processor_count=60))
    f = devices.facts("cuda:0")
    assert f.mig and f.uuid.startswith("MIG-") and f.sm_count == 60
    whole = peaks.vendor_peak(f.name, "bfloat16").tflops
    assert peaks.device_peak(f, "bfloat16").tflops == pytest.approx(whole * 60 / 132)
    assert matmul_plan.PeakOverrides().peak(f, {}, "bfloat16").assumptions["mig_sm_share"] == pytest.approx(60 / 132)


@pytest.mark.parametrize(
    "count, local_rank, local_world, expected",
    [(8, 3, 8, "cuda:3"), (1, 3, 8, "cuda:0"), (4, 1, 2, "cuda:1"), (0, 1, 2, "cpu"), (2, 3, 4, ValueError)],
)
def test_each_rank_gets_its_own_gpu(fake_cuda, monkeypatch, count, local_rank, local_world, expected):
    """16.2: every rank used cuda:0; with one GPU per Slurm task, cuda:LOCAL_RANK did not exist."""
    if count:
        fake_cuda(count=count)
    else:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if expected is ValueError:
        with pytest.raises(ValueError, match="sees 2 GPUs"):
            devices.local_device(local_rank, local_world)
    else:
        assert devices.local_device(local_rank, local_world) == expected


def test_nccl_join_sets_the_rank_device_before_the_process_group(fake_cuda, monkeypatch):
    """16.2 and 16.21: NCCL binds a rank to the current device at init; the watchdog must not kill the process."""
    fake_cuda(count=4)
    seen = {}
    monkeypatch.delenv("TORCH_NCCL_ASYNC_ERROR_HANDLING", raising=False)
    monkeypatch.setattr(launch.torch_dist, "init_process_group",
                        lambda *a, **k: seen.update(device=torch.cuda.current_device(),
                                                    handling=os.environ.get("TORCH_NCCL_ASYNC_ERROR_HANDLING"),
                                                    gloo=os.environ.get("GLOO_SOCKET_IFNAME")))  # fmt: skip
    monkeypatch.setattr(launch.torch_dist, "new_group", lambda **k: seen.update(control=k) or "control")
    monkeypatch.setattr(launch.torch_dist, "barrier", lambda group=None: seen.setdefault("barriers", []).append(group))
    monkeypatch.setattr(launch.torch_dist.distributed_c10d, "_set_pg_timeout",
                        lambda timeout, group: seen.update(raised=(timeout, group, list(seen.get("barriers", [])))))  # fmt: skip
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "-")  # recorded as unset before the test, so restored so after it
    monkeypatch.delenv("GLOO_SOCKET_IFNAME")
    p = launch.Placement(2, 4, 2, 4, "127.0.0.1", 1, "torchrun")
    launch.join(p, "nccl", 30, "cuda:2")
    assert seen["device"] == 2 and seen["handling"] == launch.NCCL_ERROR_HANDLING
    # the control group is joined under the join timeout (a rank dying while it connects fails the others within
    # 30 s, not six hours), proven joined by a barrier on it, and only then given the long timeout of its gathers
    assert seen["control"]["backend"] == "gloo" and seen["control"]["timeout"].total_seconds() == 30
    timeout, group, barriers_before = seen["raised"]
    assert group == "control" and barriers_before == ["control"]
    assert timeout.total_seconds() >= launch.CONTROL_TIMEOUT_S
    assert launch.control() == "control"
    # gloo (the control group) binds to the interface that reaches MASTER_ADDR, not whatever the host name resolves to
    assert seen["gloo"] == launch.gloo_interface(p) == "lo"
    assert "GLOO_SOCKET_IFNAME" not in os.environ  # set while the groups were made, not left for the next job
    assert launch.gloo_interface(launch.Placement(2, 8, 2, 4, "127.0.0.1", 1, "torchrun")) is None  # two nodes: not lo
    with pytest.raises(launch.LaunchError, match="NCCL needs"):
        launch.join(p, "nccl", 30, None)
    monkeypatch.setattr(launch, "_control", None)


def test_collective_timing_synchronizes_the_rank_device(fake_cuda, monkeypatch):
    """16.2: comm synchronized the current device (cuda:0 on every rank): other ranks timed only the launch."""
    fake = fake_cuda(count=2)
    monkeypatch.setattr(cm.dist, "barrier", lambda group=None: None)
    b = cm.Buffers(run=lambda: None, reset=lambda: None, check=lambda: True, bytes=8)
    cm.time_op(b, 2, 3, 0, "cuda:1")
    assert fake.synced and set(fake.synced) == {"cuda:1"}


def test_sendrecv_posts_both_directions_in_one_group(monkeypatch):
    """16.11: an isend and an irecv posted separately can block each other under NCCL."""
    groups = []

    def isend(*a, **k):
        raise RuntimeError("NCCL: a send and a receive between the same ranks outside one group can deadlock")

    def irecv(*a, **k):
        raise RuntimeError("NCCL: a send and a receive between the same ranks outside one group can deadlock")

    class Work:
        def wait(self):
            pass

    def batch(ops):
        groups.append([op.op.__name__ for op in ops])
        for op in ops:
            if op.op.__name__ == "irecv":
                op.tensor.fill_(2.0)
        return [Work() for _ in ops]

    monkeypatch.setattr(cm.dist, "isend", isend)
    monkeypatch.setattr(cm.dist, "irecv", irecv)
    monkeypatch.setattr(cm.dist, "batch_isend_irecv", batch)
    monkeypatch.setattr(
        cm.dist, "P2POp", lambda op, tensor, peer: types.SimpleNamespace(op=op, tensor=tensor, peer=peer)
    )
    b = cm.buffers("sendrecv", 64, 0, 2, "cpu")
    b.reset()
    b.run()
    assert groups == [["isend", "irecv"]] and b.check()


def _ddp_world(monkeypatch, hosts):
    """Fake collectives for train_plan.measurements: each rank's run is a small measurement; the gather returns
    every rank's, tagged with its host."""
    from bench.model.reports import Measurement

    monkeypatch.setattr(train_plan.dist, "barrier", lambda group=None: None)

    def run(spec, facts, peak=None, seed=0, progress=None, wrap=None):
        samples = [0.1, 0.1, 0.1]
        return Measurement("train", spec.to_dict(), {"id": f"cuda:{seed % 2}", "kind": "cuda", "uuid": f"GPU-{seed}"},
                           "ok", work_per_iteration=tr.flops_per_step(spec), work_unit="FLOP", samples_s=samples, warmup_s=[0.1],
                           summary=figures.train_summary(samples, tr.flops_per_step(spec), spec.items_per_step, None))  # fmt: skip

    def gather(out, obj, group=None):
        for r, host in enumerate(hosts):
            out[r] = {**obj, "rank": r, "host": host, "measurement": run(spec, None, seed=r).to_dict()}

    spec = tr.preset("gpt", "tiny")
    monkeypatch.setattr(train_plan.tr, "run", run)
    monkeypatch.setattr(train_plan.dist, "all_gather_object", gather)
    return spec


def test_a_node_report_holds_only_its_own_devices_in_multi_node_ddp(monkeypatch):
    """16.13: rank 0's report listed the other node's GPUs as its own measurements (verify: unknown-device)."""
    spec = _ddp_world(monkeypatch, ["node-a", "node-a", "node-b", "node-b"])
    facts = devices.DeviceFacts("cuda:0", "cuda", "NVIDIA H200", "GPU-0", 0, "9.0")
    rank0 = train_plan.measurements(spec, facts, None, launch.Placement(0, 4, 0, 2, "a", 1, "env"), host="node-a")
    roles = [m.details.get("role") for m in rank0]
    assert roles[0] == "single-rank baseline" and roles[-1] == "data-parallel total"
    assert [m.details["host"] for m in rank0[1:-1]] == ["node-a", "node-a"]
    total = rank0[-1]
    assert [r["host"] for r in total.details["per_rank"]] == ["node-a", "node-a", "node-b", "node-b"]
    leader_b = train_plan.measurements(spec, facts, None, launch.Placement(2, 4, 0, 2, "a", 1, "env"), host="node-b")
    assert [m.details["rank"] for m in leader_b] == [2, 3] and {m.details["host"] for m in leader_b} == {"node-b"}
    assert train_plan.measurements(spec, facts, None, launch.Placement(3, 4, 1, 2, "a", 1, "env"), host="node-b") == []


def test_compiled_runs_reset_dynamo_and_compile_static(monkeypatch):
    """16.17: presets compiled in one process share dynamo's cache per code object, recompile, and past the limit
    silently run eager."""
    log = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: log.append("reset"))
    monkeypatch.setattr(torch, "compile", lambda model, **kw: log.append(("compile", kw)) or model)
    cpu = devices.facts("cpu", {"cpu_model": "cpu", "fingerprint": "fp"})
    for preset in ("tiny", "tiny"):
        m = tr.run(tr.preset("mlp", preset, steps=3, warmup=1, compile=True), cpu)
        assert m.details["compile"]["cache_reset"] and m.details["compile"]["dynamic"] is False
    assert log == ["reset", ("compile", {"dynamic": False})] * 2


def test_host_copies_run_on_the_gpus_numa_node(fake_cuda, monkeypatch):
    """16.18: pinned buffers landed on whichever NUMA node the main thread ran on."""
    fake = fake_cuda()
    bound = []
    real = os.sched_setaffinity
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cpus: bound.append(sorted(cpus)) or real(pid, cpus))
    gpu = devices.facts("cuda:0")
    mine = sorted(os.sched_getaffinity(0))
    out = mb.run(gpu, QUICK, elements=1024, cpu_affinity=mine[:1])
    copies = [m for m in out if m.spec["kernel"] in ("h2d", "d2h")]
    assert [m.status for m in out] == ["ok"] * 6
    assert all(m.details["cpu_affinity"] == mine[:1] and m.details["numa_bound"] for m in copies)
    # registered in place (not from torch's process-wide pinned pool, which would hand the next GPU these pages)
    assert all(m.details["pinned"] == "cudaHostRegister" and m.details["copies_alone"] for m in copies)
    assert not fake.registered  # and unregistered afterwards
    assert bound == [mine[:1], mine] and sorted(os.sched_getaffinity(0)) == mine  # bound, then restored
    unbound = mb.run(gpu, QUICK, elements=1024)
    assert not any(m.details.get("numa_bound") for m in unbound if m.spec["kernel"] == "h2d")


def test_telemetry_summary_leaves_out_the_warm_up():
    """16 (cosmetic): the telemetry window included warm-up, when clocks and power are still ramping."""
    sampler = types.SimpleNamespace(samples=[{"t_s": t, "sm_clock_mhz": c} for t, c in
                                             ((0.0, 900), (0.4, 1200), (1.1, 1980), (1.6, 1980), (2.2, 1970))])  # fmt: skip
    out = mm._telemetry_details(sampler, warmup_s=1.0)
    assert out["telemetry"]["sm_clock_mhz"]["min"] == 1970 and out["telemetry"]["warmup_excluded_s"] == 1.0
    assert len(out["telemetry_samples"]) == 5  # the raw samples stay
    assert mm._telemetry_details(sampler, warmup_s=2.0)["telemetry"]["sm_clock_mhz"]["min"] == 900  # too few left


def test_a_gpu_whose_l2_size_torch_does_not_report_is_still_flushed(fake_cuda):
    fake_cuda(props=Props(L2_cache_size=0))
    gpu = devices.facts("cuda:0")
    assert (
        mm.flush_bytes(gpu) == mm.UNKNOWN_L2_FLUSH_BYTES
        and mm.default_timer(gpu)._flush.numel() == mm.UNKNOWN_L2_FLUSH_BYTES
    )


def _challenge(products=3, n=64, dtype="float32"):
    import datetime as dt

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bench import challenge as chl

    data = chl.issue(Ed25519PrivateKey.generate(), dtype=dtype, n=n, products=products, window=dt.timedelta(minutes=5),
                     nodes=None)  # fmt: skip
    return chl, chl.Challenge.from_dict(data, "challenge")


def test_challenge_products_leave_the_device_at_once(fake_cuda):
    """16.12: products stayed on the GPU until the reveal, and C was copied to the host twice: with many products at
    n = 16384 the answer ran out of device memory and committed nothing."""
    fake = fake_cuda()
    chl, ch = _challenge()
    device = {"id": "cuda:0", "kind": "cuda", "name": "NVIDIA H200", "uuid": "GPU-0"}
    products = chl.compute_all(ch, "node-a", device)
    assert [p.index for p in products] == [0, 1, 2]
    assert all(p.c.device.type == "cpu" for p in products)
    assert fake.to_host == 3  # one copy per product, hashed and revealed from it
    cpu = {"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "fp"}
    assert [p.root for p in chl.compute_all(ch, "node-a", {**cpu, "uuid": "GPU-0"})] == [p.root for p in products]


def test_challenge_answer_warms_every_dtype_before_waiting(fake_cuda, monkeypatch):
    """16.15: the CUDA context, cuBLAS handles and lazily loaded kernels loaded inside the auditor's window."""
    fake = fake_cuda()
    chl, _ = _challenge()
    monkeypatch.setitem(chl.WARM_SIZES, "cuda", (16, 32))  # the CPU stands in for the GPU here: keep it small
    chl.warm({"id": "cuda:0", "kind": "cuda", "name": "NVIDIA H200", "uuid": "GPU-0"})
    products = [n for n, d in fake.calls if "matmul" in n and d == "cuda:0"]
    assert len(products) == len(chl.DTYPES) * 2, fake.calls


def test_the_l2_flush_buffer_is_counted_once_in_the_memory_check(fake_cuda):
    """The timer allocated its flush buffer (2 x L2) before free memory was read, and the check added it to the need
    again: a shape that fits with one flush buffer was skipped as out of memory."""
    from tests.fakes.cuda import Props

    spec = mm.MatmulSpec(1024, 1024, 1024, "bfloat16")
    flush = 2 * Props().L2_cache_size
    fits_once = int((spec.operand_bytes() + flush) / (1 - mm.MEMORY_HEADROOM)) + flush // 2
    _, gpu = h200(fake_cuda, props=Props(total_memory=fits_once))
    assert mm.flush_bytes(gpu) == flush
    m = mm.run(spec, gpu, QUICK)
    assert m.status == "ok", m.reason
    # and a device too small for the operands and one flush buffer is still refused before anything is allocated
    _, small = h200(fake_cuda, props=Props(total_memory=spec.operand_bytes() + flush))
    assert mm.run(spec, small, QUICK).status == "skipped"


@pytest.mark.skipif(not os.path.isdir("/sys/devices/system/node/node0"), reason="no NUMA nodes in sysfs here")
def test_numa_bound_only_when_the_pinned_pages_were_found_on_the_gpus_node(fake_cuda, monkeypatch, tmp_path):
    """numa_bound was reported whenever the thread could be bound, without looking where the pages went. Here the
    kernel's real placement (move_pages) is read against the true topology, then against one that puts the bound CPU
    on another node than the pages."""
    from bench.hardware import numa

    fake_cuda()
    gpu = devices.facts("cuda:0")
    cpu = sorted(os.sched_getaffinity(0))[:1]
    copies = [m for m in mb.run(gpu, QUICK, elements=2**18, cpu_affinity=cpu) if m.spec["kernel"] in ("h2d", "d2h")]
    assert all(m.details["numa_bound"] and m.details["numa_placement"]["pages_checked"] > 0 for m in copies)
    (tmp_path / "node0").mkdir()
    (tmp_path / "node0" / "cpulist").write_text("")
    (tmp_path / "node1").mkdir()
    (tmp_path / "node1" / "cpulist").write_text(f"{cpu[0]}\n")  # this CPU on node 1; the pages are on node 0
    monkeypatch.setattr(numa, "NODE_ROOT", tmp_path)
    copies = [m for m in mb.run(gpu, QUICK, elements=2**18, cpu_affinity=cpu) if m.spec["kernel"] in ("h2d", "d2h")]
    assert copies and not any(m.details["numa_bound"] for m in copies)
    assert copies[0].details["numa_placement"]["expected_nodes"] == [1]
