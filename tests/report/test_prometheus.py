"""The Prometheus textfile: base units, dcgm-exporter's device labels (so figures join DCGM_FI_* series), one
bench_device_info per device, one series per measurement identity, no per-run label, a world-readable file; parsed
back with prometheus-client's parser."""

from __future__ import annotations

import os
import stat

from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from bench.cli import main
from bench.report import export
from bench.report.store import dumps
from tests.report import synthetic as syn


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _gpu_report():
    ms = [
        syn.on_gpu(syn.matmul("bfloat16", syn.samples(0.002), role="candidate"), 0),
        syn.on_gpu(syn.matmul("bfloat16", syn.samples(0.004), role="candidate", status="invalid"), 0),
        syn.on_gpu(syn.matmul("bfloat16", syn.samples(0.0015), role="final", mamf=True), 0),
        syn.on_gpu(syn.matmul("bfloat16", syn.samples(0.0016), role="final", mamf=True), 1),
    ]
    ms[2].summary["efficiency"] = 0.5
    return syn.gpu_report(ms)


def test_figures_are_in_base_units_with_dcgm_exporter_labels():
    r = _gpu_report()
    f = families(export.prometheus(r))
    samples = {s.labels["gpu"]: s for s in f["bench_matmul_mamf_flops_per_second"].samples}
    assert set(samples) == {"0", "1"}
    s0 = samples["0"]
    assert s0.labels == {"Hostname": "node-a", "gpu": "0", "UUID": syn.GPU_UUIDS[0], "pci_bus_id": "00000000:18:00.0",
                         "device": "nvidia0", "modelName": "NVIDIA H100 80GB HBM3", "GPU_I_ID": "",
                         "precision": "bfloat16", "emulated": "false"}  # fmt: skip
    assert s0.value == r.measurements[2].summary["tflops_median"] * 1e12  # FLOP/s, not TFLOPS
    (eff,) = f["bench_matmul_mamf_efficiency_ratio"].samples
    assert eff.value == 0.5 and eff.labels["UUID"] == syn.GPU_UUIDS[0]


def test_a_mig_instance_carries_its_parent_gpu_and_its_gpu_instance_id():
    """dcgm-exporter labels a MIG instance's series with the parent's gpu index and PCI bus id, its own MIG- UUID and
    GPU_I_ID; bench's must match to join."""
    m = syn.on_gpu(syn.matmul("bfloat16", syn.samples(0.002), role="final", mamf=True), 0)
    m.device["uuid"] = "MIG-5b8d9f6e-1111-2222-3333-444455556666"
    r = syn.gpu_report([m])
    r.inventory["nvml"]["gpus"][0]["mig_devices"] = [
        {"index": 0, "uuid": m.device["uuid"], "gpu_instance_id": 7, "sm_count": 16, "memory_bytes": 10 << 30}
    ]
    (s,) = families(export.prometheus(r))["bench_matmul_mamf_flops_per_second"].samples
    assert (s.labels["gpu"], s.labels["pci_bus_id"], s.labels["UUID"], s.labels["GPU_I_ID"]) == (
        "0",
        "00000000:18:00.0",
        m.device["uuid"],
        "7",
    )


def test_one_device_info_per_device_with_serial_and_driver():
    f = families(export.prometheus(_gpu_report()))
    info = {s.labels["UUID"]: s.labels for s in f["bench_device_info"].samples}
    assert set(info) == set(syn.GPU_UUIDS)
    assert (
        info[syn.GPU_UUIDS[1]]["serial"] == "165212345671" and info[syn.GPU_UUIDS[1]]["driver_version"] == "550.54.15"
    )
    assert (
        info[syn.GPU_UUIDS[1]]["torch_device"] == "cuda:1"
        and info[syn.GPU_UUIDS[1]]["pci_bus_id"] == "00000000:19:00.0"
    )


def test_validity_is_one_series_per_measurement_identity_and_an_invalid_one_is_not_hidden():
    r = _gpu_report()
    f = families(export.prometheus(r))
    valid = f["bench_measurement_valid"].samples
    keys = [tuple(sorted(s.labels.items())) for s in valid]
    assert len(keys) == len(set(keys)) == 3  # gpu0 candidate (both at 512^3: one identity), gpu0 final, gpu1 final
    (candidate,) = [s for s in valid if s.labels["role"] == "candidate"]
    assert candidate.value == 0.0  # the invalid candidate is not overwritten by the valid one of the same identity


def test_no_label_changes_between_runs():
    a, b = _gpu_report(), _gpu_report()
    b.run_id, b.start_utc, b.end_utc = "run-b", "2026-12-01T10:00:00.000000Z", "2026-12-01T10:05:00.000000Z"
    series = lambda r: {(fam.name, tuple(sorted(s.labels.items()))) for fam in families(export.prometheus(r)).values()
                        for s in fam.samples}  # fmt: skip
    assert series(a) == series(b)
    assert "run_id" not in export.prometheus(a)


def test_cpu_figures_leave_the_gpu_labels_empty_and_name_the_cpu():
    r = syn.report([syn.matmul("float32", syn.samples(0.002))])
    (s,) = families(export.prometheus(r))["bench_matmul_flops_per_second"].samples
    assert s.labels["device"] == "cpu" and s.labels["gpu"] == "" and s.labels["UUID"] == ""
    assert s.labels["Hostname"] == "node-a" and s.labels["shape"] == "512x512x512"


def test_export_writes_a_world_readable_file_whatever_the_umask(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(dumps(_gpu_report().to_dict()))
    out = tmp_path / "textfile" / "bench.prom"
    old = os.umask(0o077)
    try:
        result = CliRunner().invoke(main, ["export", "prometheus", str(path), "-o", str(out)])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert "bench_matmul_mamf_flops_per_second" in families(out.read_text())


def test_preflight_warnings_count_only_checks_that_warned_or_failed():
    """A CPU node's NVML checks read 'unavailable': nothing wrong with the machine, so they are not counted (every
    CPU or NVML-less node read >= 1 in the dashboard's 'busy machine' panel)."""
    r = syn.report([syn.matmul("float32", syn.samples(0.002))])
    r.config["preflight"] = [{"name": "nvml", "status": "unavailable"}, {"name": "load", "status": "pass"}]
    count = lambda: families(export.prometheus(r))["bench_run_preflight_warnings"].samples[0].value
    assert count() == 0
    r.config["preflight"] += [{"name": "load", "status": "warn"}, {"name": "clock", "status": "fail"}]
    assert count() == 2


def test_a_training_series_keeps_its_labels_across_launch_modes():
    """One device's training run reads the same series whether it ran alone or as rank 0 of torchrun/srun (the role
    label changed from "single" to "rank" and broke the series); label values hold no spaces; a data-parallel total
    is a series of its own."""

    def labels(details):
        (m,) = [m for m in syn.every_workload() if m.workload == "train"]
        m.details.update(details)
        (s,) = families(export.prometheus(syn.report([m])))["bench_train_mfu_ratio"].samples
        return s.labels

    alone, rank0, rank1, total = (
        labels({}),
        labels({"rank": 0}),
        labels({"rank": 1}),
        labels({"role": "data-parallel total"}),
    )
    assert alone == rank0 and alone["role"] == "device" and alone["rank"] == "0"
    assert rank1["rank"] == "1" and total["role"] == "data_parallel" and total["rank"] == "all"
    assert not any(" " in v for s in (alone, rank1, total) for k, v in s.items() if k in ("role", "rank"))
