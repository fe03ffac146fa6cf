import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.hardware import devices
from bench.model.reports import NodeReport
from bench.planning import matmul as matmul_plan
from bench.report.store import dumps, load_report

FAST = ["--budget", "0.01", "--warmup-s", "0.01", "--min-iterations", "3"]


@pytest.fixture
def cli():
    return CliRunner()


def run(cli, *args):
    return cli.invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("verb", [[], ["inventory"], ["matmul"], ["report"]])
def test_help(cli, verb):
    result = run(cli, *verb, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_version(cli):
    result = run(cli, "--version")
    assert result.exit_code == 0 and "bench, version" in result.output


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "bench", "--help"], capture_output=True, text=True, check=True)
    assert "inventory" in out.stdout and "matmul" in out.stdout


def test_inventory_text(cli):
    result = run(cli, "inventory")
    assert result.exit_code == 0
    assert "physical_cores" in result.output
    if devices.cuda_count() == 0:
        assert "No NVIDIA GPU:" in result.output


def test_inventory_json(cli):
    result = run(cli, "inventory", "--json")
    assert result.exit_code == 0
    inv = json.loads(result.stdout)
    assert inv["host"]["physical_cores"] >= 1
    assert isinstance(inv["nvml"]["gpus"], list)


def test_matmul_json_writes_a_valid_report(cli, tmp_path):
    result = run(cli, "matmul", "--device", "cpu", "--dtype", "float32", "--dtype", "float64", "--size", "64",
                 "--shape", "32,48,16", "--results-dir", str(tmp_path), "--json", "--quiet", *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rep = NodeReport.from_dict(data)
    assert [(m.spec["precision"], m.spec["m"], m.spec["k"]) for m in rep.measurements] == [
        ("float32", 64, 64), ("float32", 32, 16), ("float64", 64, 64), ("float64", 32, 16),
    ]  # fmt: skip
    assert all(m.status == "ok" and m.samples_s for m in rep.measurements)
    assert rep.end_utc and not rep.interrupted
    assert rep.config["devices"] == ["cpu"] and rep.inventory["host"]["physical_cores"] >= 1
    (saved,) = tmp_path.glob("*/report.json")
    assert load_report(saved) == rep


def test_matmul_table_and_report_path(cli, tmp_path):
    result = run(cli, "matmul", "--device", "cpu", "--dtype", "float32", "--dtype", "tf32", "--size", "64",
                 "--results-dir", str(tmp_path), "--quiet", *FAST)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "GFLOPS" in result.output and "skipped" in result.output
    assert "tf32 is a mode of NVIDIA tensor cores" in result.output
    (saved,) = tmp_path.glob("*/report.json")
    assert f"report: {saved}" in result.output.replace("\n", "")


def test_matmul_defaults_on_cpu_cover_the_cpu_precisions(cli, tmp_path):
    result = run(cli, "matmul", "--device", "cpu", "--size", "32", "--results-dir", str(tmp_path), "--json", *FAST)
    assert result.exit_code == 0
    got = [m["spec"]["precision"] for m in json.loads(result.stdout)["measurements"]]
    assert got == ["float64", "float32", "bfloat16", "float16", "int8"]


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--device", "tpu"], "valid here: cpu"),
        (["--device", "cuda:99"], "valid here: cpu"),
        (["--dtype", "int4"], "'float64', 'float32', 'tf32', 'bfloat16', 'float16', 'float8_e4m3', 'int8'"),
        (["--shape", "1,2"], "expected three positive integers"),
        (["--shape", "a,b,c"], "expected three positive integers"),
        (["--shape", "4,0,4"], "expected three positive integers"),
        (["--size", "0"], "x>=1"),
        (["--budget", "0"], "0.001"),
    ],
)
def test_matmul_bad_input_is_a_usage_error(cli, tmp_path, args, expected):
    result = cli.invoke(main, ["matmul", "--results-dir", str(tmp_path), *args])
    assert result.exit_code == 2
    assert expected in result.output
    assert not list(tmp_path.iterdir())  # nothing ran, nothing written


def test_report_verb_shows_and_validates(cli, tmp_path):
    run(cli, "matmul", "--device", "cpu", "--dtype", "float32", "--size", "32", "--results-dir", str(tmp_path), *FAST)
    (saved,) = tmp_path.glob("*/report.json")
    shown = run(cli, "report", str(saved))
    assert shown.exit_code == 0 and "complete" in shown.output and "float32" in shown.output
    as_json = run(cli, "report", str(saved), "--json")
    folded = json.loads(dumps(load_report(saved).to_dict()))
    # a record stream's signatures sign its records: the folded view carries none (a copy would fail verify) and
    # names the signed original
    assert "signature" in folded and json.loads(as_json.stdout) == {k: v for k, v in folded.items() if k != "signature"}
    assert "unsigned view" in as_json.stderr and str(saved) in as_json.stderr


def test_report_verb_rejects_a_corrupt_file_with_one_line(cli, tmp_path):
    bad = tmp_path / "report.json"
    bad.write_text('{"kind": "bench.node-report", "schema_version": 1, "run_')
    result = cli.invoke(main, ["report", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "not valid JSON" in result.stderr


def test_report_verb_missing_file_is_usage_error(cli, tmp_path):
    result = cli.invoke(main, ["report", str(tmp_path / "none.json")])
    assert result.exit_code == 2


def test_a_wrong_product_fails_the_run_with_exit_1_and_is_kept(cli, tmp_path, monkeypatch):
    """A faulty BLAS (simulated at the torch boundary) must be caught by Freivalds, reported and never hidden."""
    import torch

    real = torch.matmul

    def faulty(a, b, out=None):
        result = real(a, b, out=out)
        result[1, 2] += 1000.0
        return result

    monkeypatch.setattr(torch, "matmul", faulty)
    result = cli.invoke(main, ["matmul", "--device", "cpu", "--dtype", "float32", "--size", "32",
                               "--results-dir", str(tmp_path), "--quiet", *FAST])  # fmt: skip
    assert result.exit_code == 1
    assert "Freivalds check failed: row 1" in result.stderr
    (saved,) = tmp_path.glob("*/report.json")
    (m,) = load_report(saved).measurements
    assert m.status == "invalid" and m.samples_s


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--search", "grid"], "needs --m, --n and --k"),
        (["--search", "grid", "--m", "64:32", "--n", "64", "--k", "64"], "start:stop:step"),
        (["--m", "64"], "go with --search grid"),
        (["--search", "auto", "--size", "64"], "--search chooses shapes itself"),
        (["--window", "1"], "--window goes with --search"),
        (["--search", "best"], "'auto', 'grid'"),
    ],
)
def test_search_bad_input_is_a_usage_error(cli, tmp_path, args, expected):
    result = cli.invoke(main, ["matmul", "--results-dir", str(tmp_path), *args])
    assert result.exit_code == 2 and expected in result.output
    assert not list(tmp_path.iterdir())


def test_grid_search_reports_mamf_msmf_and_efficiency(cli, tmp_path):
    result = run(cli, "matmul", "--device", "cpu", "--search", "grid", "--m", "64:128:64", "--n", "64", "--k", "64",
                 "--dtype", "float32", "--dtype", "tf32", "--budget", "0.5", "--window", "0.2",
                 "--cpu-clock-mhz", "100000", "--results-dir", str(tmp_path), "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "MAMF" in result.output and "MSMF" in result.output and "tensor cores" in result.output
    (saved,) = tmp_path.glob("*/report.json")
    rep = load_report(saved)
    roles = [m.details.get("search", {}).get("role") for m in rep.measurements]
    assert "candidate" in roles and "final" in roles and "msmf" in roles
    (mamf,) = [m for m in rep.measurements if m.details.get("search", {}).get("mamf")]
    assert mamf.peak["assumptions"]["clock_mhz"] == 100000 and 0 < mamf.summary["efficiency"] < 1
    held = next(m for m in rep.measurements if m.details.get("search", {}).get("role") == "msmf")
    assert held.details["msmf"]["tflops"] > 0 and held.details["telemetry"]["samples"] >= 2
    assert rep.config["search"] == "grid" and rep.config["grid"] == [[64, 64, 64], [128, 64, 64]]
    shown = run(cli, "report", str(saved))
    assert shown.exit_code == 0 and "MAMF" in shown.output


def test_search_without_window_still_saves_which_final_is_the_mamf(cli, tmp_path):
    result = run(cli, "matmul", "--device", "cpu", "--search", "grid", "--m", "32:64:32", "--n", "32", "--k", "32",
                 "--dtype", "float64", "--budget", "4", "--window", "0", "--results-dir", str(tmp_path), "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    (saved,) = tmp_path.glob("*/report.json")
    finals = [m for m in load_report(saved).measurements if m.details.get("search", {}).get("role") == "final"]
    assert len(finals) >= 2 and sum(m.details["search"]["mamf"] for m in finals) == 1


def test_ctrl_c_in_the_middle_of_a_search_keeps_finished_shapes(tmp_path):
    """A real SIGINT to a real bench process: exit 130, and the report on disk holds what was finished."""
    import os
    import signal
    import time

    # An ignored SIGINT is inherited across exec, and Python then leaves it ignored: a test run started in the
    # background of a non-interactive shell (`.ci/run &`, nohup) ignores it, and so did bench here, which then ran its
    # 60 s search to the end (2026-12-07). The child is started as a terminal starts it, with SIGINT's default action
    # (a handled signal is reset to it by exec).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench", "matmul", "--device", "cpu", "--search", "grid", "--m", "64:4096:64", "--n",
             "64", "--k", "64", "--dtype", "float32", "--budget", "60", "--results-dir", str(tmp_path), "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            saved = list(tmp_path.glob("*/report.json"))
            if saved and len(load_report(saved[0]).measurements) >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("no measurement was saved within 60 s")
        os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "interrupted;" in err and "finished measurements saved" in err
    rep = load_report(saved[0])
    assert rep.interrupted and len(rep.measurements) >= 2
    assert all(m.status == "ok" and m.details["search"]["role"] == "candidate" for m in rep.measurements)


def test_search_hands_the_float32_mamf_to_later_precisions(monkeypatch):
    """float32 is searched first and its MAMF reaches the bf16 search, which tests it for emulation (the ratio rule
    itself is tested in test_matmul_search)."""
    from bench.hardware.devices import DeviceFacts
    from bench.workloads import matmul_search as ms

    seen, rates = [], []
    real = ms.search

    def spy(device, precision, config, candidates, **kw):
        seen.append((precision, kw["float32_tflops"]))
        rates.append(dict(kw["float32_rates"] or {}))
        return real(device, precision, config, candidates, **kw)

    monkeypatch.setattr(ms, "search", spy)
    facts = DeviceFacts("cpu", "cpu", "cpu", "fp", 0, None, ("avx2", "fma", "avx512_bf16"))
    steps = matmul_plan.search_plan([facts], {}, ("bfloat16", "float32"), "grid", [(64, 64, 64)], 0.2, 0.0,
                                   matmul_plan.PeakOverrides(), {})  # fmt: skip
    assert [s.label for s in steps] == ["cpu float32 search", "cpu bfloat16 search"]
    measured = [m for step in steps for m in step.run()]
    f32 = next(m for m in measured if m.details["search"].get("mamf") and m.spec["precision"] == "float32")
    assert seen == [("float32", None), ("bfloat16", f32.summary["tflops_median"])]
    # and float32's best rate at each shape it measured, for a like-with-like comparison at that shape
    best = max(m.summary["tflops_median"] for m in measured if m.spec["precision"] == "float32" and m.summary)
    assert rates == [{}, {(64, 64, 64): best}]


def test_settle_runs_before_the_search_and_is_recorded(cli, tmp_path):
    result = run(cli, "matmul", "--device", "cpu", "--search", "grid", "--m", "32:64:32", "--n", "32", "--k", "32",
                 "--dtype", "float32", "--budget", "0.5", "--window", "0", "--settle", "0.05", "--results-dir",
                 str(tmp_path), "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    (saved,) = tmp_path.glob("*/report.json")
    first = load_report(saved).measurements[0]
    assert (
        first.details["search"]["settled"]["shape"] == [64, 32, 32]
        and first.details["search"]["settled"]["seconds"] > 0
    )
    assert load_report(saved).config["settle_s"] == 0.05
    bad = run(cli, "matmul", "--device", "cpu", "--settle", "1", "--results-dir", str(tmp_path))
    assert bad.exit_code == 2 and "--settle goes with --search" in bad.output


def test_one_meaning_per_option_and_the_old_spelling_still_works_with_a_warning(cli, tmp_path):
    for verb, new in (("matmul", "--warmup-s"), ("train", "--warmup-steps"), ("comm", "--warmup-iterations")):
        shown = run(cli, verb, "--help").output
        assert new in shown and "--warmup " not in shown  # the deprecated alias is hidden
    result = cli.invoke(main, ["matmul", "--device", "cpu", "--dtype", "fp32", "--size", "32", "--budget", "0.01",
                               "--warmup", "0.01", "--min-iterations", "3", "--results-dir", str(tmp_path), "--json",
                               "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "deprecated" in result.stderr and "--warmup-s" in result.stderr
    (saved,) = tmp_path.glob("*/report.json")
    assert load_report(saved).config["max_warmup_s"] == 0.01
    assert {m.spec["precision"] for m in load_report(saved).measurements} == {"float32"}  # fp32 is float32


def test_dtype_aliases_devices_and_human_sizes(cli):
    from bench.cli.params import parse_size

    assert parse_size("1G") == 2**30 and parse_size("64MiB") == 64 * 2**20 and parse_size("1GB") == 10**9
    assert parse_size("4096") == 4096
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")
    bad = cli.invoke(main, ["matmul", "--dtype", "fp7"])
    assert bad.exit_code == 2 and "fp7" in bad.output
    bad = cli.invoke(main, ["train", "--device", "gpu0"])
    assert bad.exit_code == 2 and "valid here: cpu" in bad.output
    bad = cli.invoke(main, ["comm", "--max-bytes", "1Q"])
    assert bad.exit_code == 2 and "not a size" in bad.output


def test_results_dir_comes_from_the_environment(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_RESULTS_DIR", str(tmp_path / "fleet"))
    result = cli.invoke(main, ["matmul", "--device", "cpu", "--dtype", "bf16", "--size", "16", *FAST, "--quiet"])
    assert result.exit_code == 0, result.output
    (saved,) = (tmp_path / "fleet").glob("*/report.json")
    assert {m.spec["precision"] for m in load_report(saved).measurements} == {"bfloat16"}
