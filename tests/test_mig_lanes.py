"""A worker process per MIG instance (issue 22 item 4): CUDA enumerates one MIG instance per process, and only through
CUDA_VISIBLE_DEVICES=MIG-<uuid> set before CUDA initialises, so bench starts a worker per instance NVML lists."""

import functools
import itertools
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import launch, orchestrate, plans, preflight, runner, suite
from bench.hardware import devices, nvml
from bench.hardware.inventory import collect
from bench.model import intake
from bench.report import export
from bench.report import verify as v
from tests.fakes.cuda import FakeCuda, FakeGpu, Props, enumerate_node, install_in_worker
from tests.fakes.nvml import H100, FakeNvml
from tests.test_runner import FAST

H100_NAME = "NVIDIA H100 80GB HBM3"
#: (profile, SMs, memory bytes, GPU instance id) of the three instances each MIG-mode GPU is cut into
PROFILES = (("3g.40gb", 60, 40 * 10**9, 2), ("2g.20gb", 32, 20 * 10**9, 3), ("1g.10gb", 16, 10 * 10**9, 9))


def _mig_uuid(gpu: int, slot: int) -> str:
    return f"MIG-{gpu:08x}-{slot:04x}-4000-8000-{gpu * 16 + slot:012x}"


def _gpu_uuid(gpu: int) -> str:
    return f"GPU-{gpu:08x}-0000-4000-8000-00000000000{gpu}"


def fake_node() -> tuple[tuple[FakeGpu, ...], FakeNvml]:
    """Two H100s in MIG mode, three instances each, and one whole H100: as CUDA and as NVML see them."""
    gpus, rows = [], []
    slots, parents, gi_ids = {}, {}, {}
    for g in range(3):
        mig = g < 2
        instances = tuple((_mig_uuid(g, s), Props(name=f"{H100_NAME} MIG {p}", multi_processor_count=sm,
                                                   total_memory=mem, L2_cache_size=4096))
                          for s, (p, sm, mem, _) in enumerate(PROFILES)) if mig else ()  # fmt: skip
        gpus.append(FakeGpu(_gpu_uuid(g), Props(name=H100_NAME, L2_cache_size=4096), instances))
        rows.append({**H100, "uuid": _gpu_uuid(g), "bus": f"00000000:{0x18 + g:02x}:00.0", "mig": (int(mig), int(mig))})
        for s, (_, sm, mem, gi) in enumerate(PROFILES if mig else ()):
            slots[_mig_uuid(g, s)] = (g, s, sm, mem)
            parents[_mig_uuid(g, s)] = g
            gi_ids[_mig_uuid(g, s)] = gi
    fake = FakeNvml(rows)
    fake.mig_slots, fake.mig_instances, fake.mig_gi_ids = slots, parents, gi_ids
    return tuple(gpus), fake


NODE, _ = fake_node()
MIGS = [_mig_uuid(g, s) for g in range(2) for s in range(3)]


def _note_then_install(folder: Path, lane: str, **kwargs) -> None:
    """worker_init: note this worker's process and CUDA_VISIBLE_DEVICES (before CUDA initialises), then the fake."""
    (folder / f"{os.getpid()}.json").write_text(
        json.dumps({"lane": lane, "visible": os.environ.get("CUDA_VISIBLE_DEVICES")})
    )
    install_in_worker(lane, **kwargs)


def test_the_fake_enumerates_a_mig_node_as_cuda_does(monkeypatch):
    """Unset: the whole GPU and ONE MIG instance. MIG-<uuid>: that instance alone, as cuda:0. Two entries with a MIG
    instance among them, or CUDA_VISIBLE_DEVICES changed after CUDA initialised, are refused."""
    names = [p.name for p in enumerate_node(NODE, None)]
    assert names == [f"{H100_NAME} MIG 3g.40gb", H100_NAME]
    (alone,) = enumerate_node(NODE, MIGS[4])
    assert alone.name.endswith("2g.20gb") and alone.uuid == MIGS[4].removeprefix("MIG-")
    assert [p.uuid for p in enumerate_node(NODE, f"2,{_gpu_uuid(2)}")] == [_gpu_uuid(2).removeprefix("GPU-")] * 2
    assert enumerate_node(NODE, "7,2") == []  # an entry that names nothing hides the rest
    with pytest.raises(RuntimeError, match="single MIG instance per process"):
        enumerate_node(NODE, f"{MIGS[0]},{MIGS[1]}")
    with pytest.raises(RuntimeError, match="single MIG instance per process"):
        enumerate_node(NODE, f"2,{MIGS[1]}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", MIGS[2])
    fake = FakeCuda(node=NODE)
    assert not fake.is_initialized() and fake.device_count() == 1 and fake.is_initialized()
    assert fake.get_device_properties(0).multi_processor_count == 16
    with pytest.raises(RuntimeError, match="invalid device ordinal"):
        fake.get_device_properties(1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", MIGS[3])  # too late: CUDA read it already
    with pytest.raises(RuntimeError, match="CUDA reads it once"):
        fake.device_count()


def test_a_process_that_initialised_cuda_cannot_be_shown_a_mig_instance(fake_cuda, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake_cuda(node=NODE)
    assert devices.cuda_count() == 2
    with pytest.raises(RuntimeError, match="initialised CUDA already"):
        devices.show_only(MIGS[0])
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def _node(fake_cuda, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    _, fake_nvml = fake_node()
    monkeypatch.setattr(nvml, "load_nvml", lambda: fake_nvml)
    fake_cuda(node=NODE, **{k: v for k, v in FAST.items() if k not in ("count", "props")})
    return fake_nvml


def _suite(folder: Path, concurrent: bool) -> tuple[dict, list, dict, runner.ReportWriter]:
    config = suite.defaults()
    config["suite"]["workloads"] = ["matmul"]
    config["suite"]["concurrent_devices"] = concurrent
    config["matmul"].update(search="fixed", sizes=[32], precisions=["float32"], budget_s=0.05, min_iterations=3,
                            max_warmup_s=0.01)  # fmt: skip
    inv = collect()
    facts = orchestrate.rank_devices(config, launch.placement({}), "cuda", inv["host"])
    writer = runner.start(folder, {"suite": config}, inv, Ed25519PrivateKey.generate())
    return config, facts, inv, writer


def _run(config, facts, inv, writer, notes: Path, concurrent: bool):
    steps = plans.suite_steps(config, facts, inv["host"], {})
    plan = functools.partial(plans.lane_plan, functools.partial(plans.suite_build, config, inv["host"]), facts)
    init = functools.partial(_note_then_install, notes, node=NODE, **{k: v for k, v in FAST.items()
                                                                       if k not in ("count", "props")})  # fmt: skip
    return runner.execute(writer, steps, plan=plan, worker_init=init, keep_going=True, concurrent=concurrent)


def test_a_mig_node_gets_a_worker_per_instance_and_one_signed_report(fake_cuda, monkeypatch, tmp_path):
    """Two GPUs in MIG mode (three instances each) and a whole GPU: `bench run`'s devices are the whole GPU and the six
    instances, seven lanes, each measured in a worker of its own whose CUDA_VISIBLE_DEVICES is its MIG- UUID (so its
    torch sees cuda:0, probed there), labelled with its parent GPU and GPU instance id, into one signed report."""
    _node(fake_cuda, monkeypatch)
    notes = tmp_path / "notes"
    notes.mkdir()
    assert devices.default_devices() == ["cuda:1", *MIGS]  # the instance this process sees is measured by its lane
    config, facts, inv, writer = _suite(tmp_path / "results", concurrent=True)
    assert [runner.lane(f) for f in facts] == ["cuda:1", *MIGS]
    out = _run(config, facts, inv, writer, notes, concurrent=True)
    assert [m.status for m in out.measurements] == ["ok"] * 7, [m.reason for m in out.measurements]
    seen = [json.loads(p.read_text()) | {"pid": p.stem} for p in notes.glob("*.json")]
    assert sorted(n["lane"] for n in seen) == sorted(["cuda:1", *MIGS]) and len({n["pid"] for n in seen}) == 7
    assert all(n["visible"] == (n["lane"] if n["lane"].startswith("MIG-") else None) for n in seen), seen
    by_uuid = {m.device["uuid"]: m for m in out.measurements}
    assert sorted(by_uuid) == sorted([_gpu_uuid(2), *MIGS])
    for g, s in itertools.product(range(2), range(3)):
        d = by_uuid[_mig_uuid(g, s)].device
        profile, sm, _, gi = PROFILES[s]
        # probed in its worker: the profile's name and SMs are what that process's CUDA showed, not NVML's plan
        assert (d["id"], d["name"], d["sm_count"], d["mig"]) == ("cuda:0", f"{H100_NAME} MIG {profile}", sm, True)
        assert (d["parent_gpu"], d["gpu_instance_id"]) == (g, gi)
    assert by_uuid[_gpu_uuid(2)].device["id"] == "cuda:1" and not by_uuid[_gpu_uuid(2)].device["mig"]
    assert all(len(m.details["concurrency"]["devices"]) == 7 for m in out.measurements)
    data = intake.read_json(writer.path).data
    findings = v.verify_node_report(data)
    assert not v.errors(findings) and data["signature"] and not out.partial, v.errors(findings)
    prom = export.prometheus(out)
    assert f'UUID="{MIGS[4]}"' in prom and 'GPU_I_ID="3"' in prom and 'gpu="1"' in prom


def test_mig_lanes_stay_in_workers_when_sequential(fake_cuda, monkeypatch, tmp_path):
    """--sequential: the whole GPU is measured here, each MIG instance still in a worker of its own (this process
    cannot see two), one after another."""
    _node(fake_cuda, monkeypatch)
    notes = tmp_path / "notes"
    notes.mkdir()
    config, facts, inv, writer = _suite(tmp_path / "results", concurrent=False)
    out = _run(config, facts, inv, writer, notes, concurrent=False)
    assert [m.status for m in out.measurements] == ["ok"] * 7
    seen = [json.loads(p.read_text()) for p in notes.glob("*.json")]
    assert sorted(n["lane"] for n in seen) == sorted(MIGS) and all(n["visible"] == n["lane"] for n in seen)
    spans = sorted((m.start_utc, m.end_utc) for m in out.measurements)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert all("concurrency" not in m.details for m in out.measurements)
    assert not list((tmp_path / "results").glob("*/.spool/*.jsonl"))


def test_the_warning_remains_for_a_mig_instance_bench_cannot_reach(fake_cuda, monkeypatch):
    """Without CUDA_VISIBLE_DEVICES bench reaches every instance NVML names: no warning. Given one, bench measures what
    torch sees, and NVML's other instances are named; an instance whose UUID NVML cannot read is unreachable."""
    fake_nvml = _node(fake_cuda, monkeypatch)
    inv = nvml.gpu_inventory(fake_nvml)
    (ok,) = preflight.visibility_checks(2, inv, None, torch_migs=1)
    assert ok.status == "pass" and "6 MIG instances in a worker process each" in ok.detail
    (bound,) = preflight.visibility_checks(1, inv, MIGS[0], torch_migs=1)
    assert bound.status == "warn" and f"CUDA_VISIBLE_DEVICES={MIGS[0]}" in bound.detail and MIGS[1] in bound.fix
    assert devices.mig_lanes(MIGS[0], fake_nvml) == []  # bench leaves an operator's binding alone
    fake_nvml.failing[(("mig", MIGS[5]), "uuid")] = fake_nvml.NVMLError(3, "Not Supported")
    inv = nvml.gpu_inventory(fake_nvml)
    (lost,) = preflight.visibility_checks(2, inv, None, torch_migs=1)
    assert lost.status == "warn" and "could not read a MIG instance's UUID" in lost.fix
    assert devices.mig_lanes(None, fake_nvml) == MIGS[:5]
