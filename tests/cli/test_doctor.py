"""bench doctor: each check's verdict from probe results (NVML through the fake at the pynvml boundary), a machine
without NVML is 'unavailable' (never a crash), and bench run records the checks in its report."""

from __future__ import annotations

import io
import json

from click.testing import CliRunner

from bench import orchestrate, preflight, runner
from bench.cli import main as cli_main
from bench.cli import progress
from bench.hardware import health
from tests.fakes.nvml import H100, FakeNvml, NVMLError
from tests.report import synthetic as syn


def _by_name(checks):
    return {c.name: c for c in checks}


def test_an_idle_healthy_gpu_passes_every_check():
    checks = _by_name(preflight.gpu_checks(health.gpu_health(FakeNvml([H100]))))
    assert {c.status for c in checks.values()} == {"pass"}
    assert set(checks) == {"GPU 0 processes", "GPU 0 clocks", "GPU 0 ECC", "GPU 0 persistence"}


def test_other_processes_throttling_ecc_errors_and_persistence_off_are_named_with_a_fix():
    fake = FakeNvml([dict(H100, processes=[(4242, 3 << 30)], reasons=0x41, ecc_errors=2, persistence=0)])
    checks = _by_name(preflight.gpu_checks(health.gpu_health(fake)))
    assert checks["GPU 0 processes"].status == "fail" and "pid 4242, 3.0 GiB" in checks["GPU 0 processes"].detail
    assert checks["GPU 0 clocks"].status == "fail" and "hw_thermal_slowdown" in checks["GPU 0 clocks"].detail
    assert checks["GPU 0 ECC"].status == "fail" and "2 uncorrected" in checks["GPU 0 ECC"].detail
    assert checks["GPU 0 persistence"].status == "warn" and "nvidia-smi -pm 1" in checks["GPU 0 persistence"].fix
    assert all(c.fix for c in checks.values() if c.status != "pass")
    assert fake.inits == 0  # every nvmlInit matched by a shutdown


def test_the_job_s_own_processes_on_the_gpu_are_not_others():
    fake = FakeNvml([dict(H100, processes=[(4242, 1 << 30)])])
    checks = _by_name(preflight.gpu_checks(health.gpu_health(fake), own={4242}))
    assert checks["GPU 0 processes"].status == "pass"


def test_a_field_nvml_refuses_is_unavailable_and_no_nvml_is_not_a_crash():
    fake = FakeNvml([H100], failing={(0, "ecc_errors"): NVMLError(3, "Not Supported")})
    checks = _by_name(preflight.gpu_checks(health.gpu_health(fake)))
    assert checks["GPU 0 ECC"].status == "unavailable" and "Not Supported" in checks["GPU 0 ECC"].detail
    none = preflight.gpu_checks(health.gpu_health(FakeNvml(init_error=NVMLError(9, "Driver Not Loaded"))))
    assert [(c.name, c.status) for c in none] == [("gpu", "unavailable")] and "Driver Not Loaded" in none[0].detail


def test_cpu_load_and_busy_processes_warn():
    busy = preflight.cpu_checks({"load_average": [3.9, 3.0, 2.0], "logical_cpus": 4,
                              "busiest": [{"pid": 7, "name": "stress", "cpu_percent": 390.0}]})  # fmt: skip
    checks = _by_name(busy)
    assert checks["cpu-load"].status == "warn" and checks["cpu-processes"].status == "warn"
    assert "stress (pid 7, 390% of a core)" in checks["cpu-processes"].detail
    idle = preflight.cpu_checks({"load_average": [0.1, 0.1, 0.1], "logical_cpus": 4, "busiest": []})
    assert preflight.verdict(idle) == "pass" and preflight.verdict(busy) == "warn"


def test_driver_torch_cuda_mismatches_fail_with_the_cuda_to_install():
    inv = {"available": True, "driver_version": "535.104", "cuda_driver_version": "12.2", "gpus": [{}] * 8}
    (cpu_build,) = preflight.version_checks(None, 0, inv, "2.13.0+cpu")
    assert cpu_build.status == "fail" and "CPU-only" in cpu_build.detail and "CUDA <= 12.2" in cpu_build.fix
    (too_new,) = preflight.version_checks("13.0", 8, inv, "2.13.0")
    assert too_new.status == "fail" and "newer than the driver" in too_new.detail
    (ok,) = preflight.version_checks("12.1", 8, inv, "2.5.0")
    assert ok.status == "pass"
    (cpu_node,) = preflight.version_checks(None, 0, {"available": False, "reason": "no driver", "gpus": []})
    assert cpu_node.status == "pass"


def test_bench_doctor_prints_a_line_per_check_and_json():
    result = CliRunner().invoke(cli_main, ["doctor", "--sample-s", "0.05", "--json"])
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    assert data["verdict"] in ("pass", "warn", "fail")
    names = {c["name"] for c in data["checks"]}
    assert {"cpu-load", "cpu-processes", "driver-torch-cuda"} <= names
    text = CliRunner().invoke(cli_main, ["doctor", "--sample-s", "0.05"])
    assert "verdict:" in text.output and "cpu-load" in text.output


def test_a_median_far_from_its_best_is_warned_about():
    slow = syn.matmul("float32", [0.002] * 5 + [0.1] * 10)  # a loaded machine: best 2 ms, median 100 ms
    saved = []
    orchestrate.flag_far_from_best(slow, lambda: saved.append(1))
    (w,) = [w for w in slow.warnings if w["code"] == "median-far-from-best"]
    assert "50.0x slower" in w["message"] and saved == [1]
    steady = syn.matmul("float32", syn.samples(0.002))
    assert orchestrate.far_from_best(steady) is None


def test_a_log_gets_the_plan_and_one_line_per_step_with_elapsed_and_eta():
    steps = [runner.Step(f"cuda:{i} bfloat16 search", list, lane=f"cuda:{i}", device={"id": f"cuda:{i}", "kind": "cuda"})
             for i in range(2)] + [runner.Step("train gpt small on cuda:0", list, "train", {"id": "cuda:0", "kind": "cuda"})]  # fmt: skip
    config = {"matmul": {"budget_s": 60, "window_s": 10, "settle_s": 20}}
    est = [progress.estimate_s(s, config) for s in steps]
    # a search: its budget (the final shapes inside it), the window after 0.5 s of warm-up, and the settle: 60 + 10.5 + 20
    assert est == [90.5, 90.5, 120]
    assert "estimated 0:03:30" in progress.plan_line(steps, est, concurrent=True)  # lanes at once: 90.5 + 120
    sequential = progress.plan_line(steps, est, concurrent=False)
    assert "estimated 0:05:01" in sequential and "ONE AFTER ANOTHER" in sequential
    out = io.StringIO()
    lines = progress.StepLines(steps, est, True, out)
    for s in steps:
        lines.step(s)
    lines.finished(3)
    text = out.getvalue().splitlines()
    assert text[0].startswith("[1/3 0%] 0:00:00 elapsed, ~0:03:30 left: cuda:0 bfloat16 search")
    assert text[2].startswith("[3/3 66%]") and text[3].startswith("[done]")


def test_more_devices_in_nvml_than_torch_sees_is_a_warning_that_says_what_to_do():
    """Issue 22 (MIG): CUDA enumerates one MIG instance per process, so a node whose GPUs are sliced shows torch one
    device. The check warns whenever NVML lists more devices than torch sees, and names the remedy."""
    from bench.hardware import nvml

    sliced = FakeNvml([{**H100, "mig": (1, 1)}, H100])
    sliced.mig_slots = {"MIG-aaaa": (0, 0, 60, 40 * 2**30), "MIG-bbbb": (0, 3, 16, 10 * 2**30)}
    inv = nvml.gpu_inventory(sliced)
    assert [(d["uuid"], d["mig"]) for d in nvml.listed_devices(inv)] == [
        ("MIG-aaaa", True), ("MIG-bbbb", True), (H100["uuid"], False)]  # fmt: skip
    # without CUDA_VISIBLE_DEVICES bench measures each MIG instance in a worker of its own (tests/test_mig_lanes.py)
    assert preflight.visibility_checks(2, inv, None, torch_migs=1)[0].status == "pass"
    (check,) = preflight.visibility_checks(1, inv, "MIG-aaaa", torch_migs=1)  # bound by hand: torch sees one
    assert check.status == "warn" and "NVML lists 3 devices (2 of them MIG instances), torch sees 1" in check.detail
    assert "CUDA_VISIBLE_DEVICES=<its MIG- UUID> (MIG-aaaa MIG-bbbb)" in check.fix
    assert preflight.visibility_checks(1, inv, None, torch_migs=1)[0].status == "warn"  # the whole GPU unseen
    assert preflight.visibility_checks(3, inv, None)[0].status == "pass"
    (whole,) = preflight.visibility_checks(1, nvml.gpu_inventory(FakeNvml([H100, H100])), "0")
    assert whole.status == "warn" and "(CUDA_VISIBLE_DEVICES=0)" in whole.detail and "nvidia-smi -L" in whole.fix
    assert preflight.visibility_checks(0, {"available": False, "gpus": []}, None) == []
