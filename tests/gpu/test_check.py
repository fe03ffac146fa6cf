"""The device check's machinery, without a GPU: tests/gpu/check.py against tests/gpu/fake_bench.py.

The fake answers like bench on a GPU, except that `membw` crashes and tf32 under NVIDIA_TF32_OVERRIDE=0 is silently
accepted, so the check must go on past a failure, judge each path on its own, keep stderr out of every JSON output and
exit 1."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CHECK = HERE / "check.py"
FAKE = HERE / "fake_bench.py"
sys.path.insert(0, str(HERE))
import fake_bench


def run_check(tmp_path: Path, *args: str, ngpu: int = 1, **env: str) -> subprocess.CompletedProcess[str]:
    fake = f"{sys.executable} {FAKE}"
    full = {k: v for k, v in os.environ.items() if not k.startswith(("BENCH_", "FAKE_"))}
    full.update(
        BENCH_CHECK_BENCH=fake,
        BENCH_CHECK_TORCHRUN=fake,
        BENCH_CHECK_NGPU=str(ngpu),
        FAKE_ARGV_LOG=str(tmp_path / "argv.log"),
        **env,
    )
    return subprocess.run(
        [sys.executable, str(CHECK), str(tmp_path / "out"), *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
        check=False,
    )


def test_dry_run_prints_every_step_with_its_command_and_timeout_and_runs_nothing(tmp_path):
    r = run_check(tmp_path, "--dry-run")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for step in (
        "inventory",
        "matmul-float64",
        "matmul-tf32",
        "matmul-float8_e4m3",
        "matmul-int8",
        "tf32-override-float32",
        "tf32-override-tf32",
        "search-bfloat16",
        "train-eager",
        "train-compile",
        "membw",
        "comm-1rank",
        "suite",
        "challenge",
        "challenge-float32",
        "verify",
    ):
        assert f"\n{step} " in out, step
    assert "--shape 2048,2048,16384" in out and "TORCH_LOGS=recompiles" in out and "--compile" in out
    assert "--search auto --dtype bfloat16 --budget 60 --window 10" in out
    assert "configs/smoke-gpu.toml" in out
    assert "not run: 1 GPU: multi-rank NCCL needs a node with 2+ GPUs" in out
    assert "total: " in out and "timeouts" in out and "deadline" in out
    assert not (tmp_path / "out" / "check.json").exists() and not (tmp_path / "out" / "r").exists()
    budget = float(out.split("budget ")[-1].split(" s")[0])
    # an H200 run, installation excluded, fits in 8 minutes; the float32 challenge after it is what the deadline cuts
    assert budget <= 8 * 60 + 20


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("check")
    r = run_check(tmp, "--return-dir", str(tmp / "back"), TORCH_ALLOW_TF32_CUBLAS_OVERRIDE="1")
    return tmp, r, json.loads((tmp / "out" / "check.json").read_text())


def test_a_failing_step_does_not_stop_the_later_ones_and_the_exit_status_is_1(full_run):
    _tmp, r, doc = full_run
    assert r.returncode == 1, r.stdout + r.stderr
    verdicts = {s["name"]: s["verdict"] for s in doc["steps"]}
    assert verdicts["membw"] == "FAIL"
    names = [s["name"] for s in doc["steps"]]
    assert names.index("membw") < names.index("suite") < names.index("verify")
    later_steps = ("comm-1rank", "train-eager", "search-bfloat16", "suite", "challenge", "train-compile")
    for later in (*later_steps, "challenge-float32", "verify"):
        assert verdicts[later] == "PASS", (later, next(s for s in doc["steps"] if s["name"] == later))
    assert doc["complete"] is True and doc["passed"] is False
    assert set(doc["failed"]) == {"membw", "tf32-override-tf32"}


def test_check_json_holds_every_step_with_rc_seconds_and_figure(full_run):
    _tmp, _r, doc = full_run
    steps = {s["name"]: s for s in doc["steps"]}
    assert set(steps) == {
        "inventory",
        *(f"matmul-{p}" for p in ("float64", "float32", "tf32", "bfloat16", "float16", "float8_e4m3", "int8")),
        "tf32-override-float32",
        "tf32-override-tf32",
        "membw",
        "comm-1rank",
        "comm-nccl",
        "train-eager",
        "train-ddp",
        "search-bfloat16",
        "suite",
        "challenge",
        "train-compile",
        "challenge-float32",
        "verify",
    }
    for s in doc["steps"]:
        assert {"rc", "seconds", "figure", "verdict", "timeout_s", "checks"} <= set(s), s["name"]
    assert steps["membw"]["rc"] == 1 and "illegal memory access" in json.dumps(steps["membw"]["checks"])
    assert steps["comm-nccl"]["verdict"] == "SKIP" and not steps["comm-nccl"]["required"]
    assert "single-GPU: multi-rank NCCL not proven" in steps["comm-1rank"]["notes"]
    # headline figures, parsed from each step's JSON
    assert steps["search-bfloat16"]["figures"]["mamf_tflops"] == 800.0
    assert steps["search-bfloat16"]["figures"]["msmf_tflops"] == 770.0
    assert "MAMF 800.0 TFLOPS (80.9% of H200 989.4)" in steps["search-bfloat16"]["figure"]
    fp8 = steps["matmul-float8_e4m3"]
    assert {c["name"] for c in fp8["checks"]} >= {
        "8192^3 fast_accum=True",
        "8192^3 fast_accum=False",
        "2048x2048x16384 fast_accum=True",
        "2048x2048x16384 fast_accum=False",
    }
    assert fp8["figures"]["fast_accum_speedup"] == 2.0
    assert {c["name"] for c in steps["matmul-int8"]["checks"]} == {"8192^3", "2048x2048x16384"}
    assert "TOPS" in steps["matmul-int8"]["figure"]
    assert steps["train-compile"]["figures"]["recompiles"] == 1
    assert steps["membw"]["figure"] == "no figure"
    assert "proven >= 250.00 TFLOPS" in steps["challenge"]["figure"]
    # the float32 round (fold's CUDA path) is its own step, after the compile, so the deadline cuts it first
    f32 = {x["label"]: x["command"] for x in steps["challenge-float32"]["logs"]}
    assert "float32" in f32["challenge-float32-issue"] and "challenge" in f32["challenge-float32-answer"]
    assert steps["challenge-float32"]["verdict"] == "PASS" and "proven >= " in steps["challenge-float32"]["figure"]
    names = [s["name"] for s in doc["steps"]]
    assert names.index("train-compile") < names.index("challenge-float32") < names.index("verify")
    assert steps["verify"]["figure"].endswith("reports verified")


def test_tf32_overrides_are_recorded_stripped_and_judged(full_run):
    _tmp, _r, doc = full_run
    steps = {s["name"]: s for s in doc["steps"]}
    assert doc["environment"]["tf32_env"]["TORCH_ALLOW_TF32_CUBLAS_OVERRIDE"] == "1"
    # the variable set in the check's own environment did not reach the plain float32 step
    assert steps["matmul-float32"]["verdict"] == "PASS"
    assert steps["tf32-override-float32"]["verdict"] == "PASS"  # flagged with a tf32-override warning
    bad = steps["tf32-override-tf32"]
    assert bad["verdict"] == "FAIL" and "accepted as an ok figure" in json.dumps(bad["checks"])


def test_stderr_never_reaches_a_json_output(full_run):
    tmp, _r, _doc = full_run
    out = tmp / "out"
    stdouts = sorted((out / "logs").glob("*.stdout"))
    assert len(stdouts) >= 15
    for path in stdouts:
        text = path.read_text()
        assert fake_bench.STDERR_MARK not in text, path.name
        if text.strip():
            json.loads(text)  # every step's stdout is its JSON alone
    assert fake_bench.STDERR_MARK in (out / "logs" / "inventory.stderr").read_text()
    json.loads((out / "fixtures" / "inventory.json").read_text())
    assert json.loads((out / "fixtures" / "report.json").read_text())["measurements"]
    assert fake_bench.STDERR_MARK not in (out / "check.json").read_text()


def test_the_table_is_printed_and_the_outputs_come_back(full_run):
    tmp, r, _doc = full_run
    lines = r.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("STEP ") and "VERDICT" in line)
    table = "\n".join(lines[header:])
    assert any(line.startswith("membw ") and " FAIL " in line for line in lines[header:])
    assert any(line.startswith("verify ") and " PASS " in line for line in lines[header:])
    assert "DEVICE CHECK FAILED: " in table and "membw" in table.split("DEVICE CHECK FAILED: ")[1]
    back = sorted(p.name for p in (tmp / "back").iterdir())
    assert back == ["check-logs.tar.gz", "check.json", "inventory.json", "report.json"]
    # the challenge's revealed products are removed; its commitment stays
    drop = tmp / "out" / "challenge" / "drop"
    assert (drop / "node-abab.commit.json").exists() and not (drop / "node-abab").exists()


def test_challenge_is_signed_by_an_auditor_key_distinct_from_the_node_key(full_run):
    tmp, _r, _doc = full_run
    calls = [json.loads(line) for line in (tmp / "argv.log").read_text().splitlines()]
    collect = next(c for c in calls if c[1] == "collect")
    assert collect[collect.index("--key") + 1].endswith("auditor.pem")
    assert not any("--auditor-key" in c for c in calls)


def test_auditor_key_option_is_used_where_bench_has_it_and_multi_gpu_runs_under_torchrun(tmp_path):
    r = run_check(tmp_path, "--only", "comm-nccl,train-ddp,challenge", ngpu=2, FAKE_AUDITOR_KEY="1")
    doc = json.loads((tmp_path / "out" / "check.json").read_text())
    steps = {s["name"]: s for s in doc["steps"]}
    assert r.returncode == 0, r.stdout + r.stderr
    assert steps["comm-nccl"]["verdict"] == "PASS" and "--nproc_per_node=2" in steps["comm-nccl"]["command"]
    assert "each rank on its own GPU" in json.dumps(steps["comm-nccl"]["checks"])
    assert "busbw 100.0 GB/s" in steps["comm-nccl"]["figure"]
    assert steps["train-ddp"]["verdict"] == "PASS" and steps["train-ddp"]["figures"]["scaling_efficiency"] == 0.95
    assert steps["inventory"]["verdict"] == "SKIP" and steps["verify"]["verdict"] in ("PASS", "FAIL")
    calls = [json.loads(line) for line in (tmp_path / "argv.log").read_text().splitlines()]
    for sub in ("collect", "verify"):
        argv = next(c for c in calls if c[1] == sub)
        assert argv[argv.index("--auditor-key") + 1].endswith("auditor.pem") and "--key" not in argv
        assert argv[argv.index("--trusted-keys") + 1].endswith("node.keys")
    # the auditor key was made with `bench keys init` first, and each side trusts only the other's public key
    out = tmp_path / "out"
    assert (out / "auditor.pem").exists() and (out / "node.pem").exists()
    assert (out / "challenge" / "auditor.keys").read_text().splitlines()[1] == base64.b64encode(
        bytes(range(32))
    ).decode()
    assert "challenge-keys" in json.dumps(steps["challenge"]["logs"])
    answer = next(x for x in steps["challenge"]["logs"] if x["label"] == "challenge-answer")["command"]
    assert "--trusted-keys" in answer and "auditor.keys" in answer


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_a_hanging_step_is_killed_with_its_children_at_its_timeout_and_the_deadline_holds(tmp_path):
    pid_file = tmp_path / "hang.pid"
    run_check(
        tmp_path, "--only", "train-eager,suite", "--deadline", "3", FAKE_HANG="train", FAKE_HANG_PID=str(pid_file)
    )
    doc = json.loads((tmp_path / "out" / "check.json").read_text())
    steps = {s["name"]: s for s in doc["steps"]}
    assert set(doc["failed"]) == {"verify"}  # cut by the deadline: no failure (verify fails: no report was written)
    hung = steps["train-eager"]
    assert hung["verdict"] == "SKIP" and hung["timed_out"] and hung["seconds"] < 15
    assert hung["figure"].startswith("not run: time")
    assert "killed after" in (tmp_path / "out" / "logs" / "train-eager.stderr").read_text()
    assert not _alive(int(pid_file.read_text()))  # the whole process group went, not just the step's first process
    assert steps["suite"]["verdict"] == "SKIP" and steps["suite"]["figure"].startswith("not run: time")
    assert "deadline" not in steps["verify"]["figure"]  # the final verify runs whatever the deadline (no reports here)


def test_the_checks_suite_override_is_valid_for_the_smoke_config():
    """The suite step narrows configs/smoke-gpu.toml's precisions with --set; bench must accept that override."""
    import check

    from bench import suite

    config = suite.load(check.REPO / check.SMOKE_CONFIG)
    override = "matmul.precisions=[" + ", ".join(f'"{p}"' for p in check.SUITE_PRECISIONS) + "]"
    narrowed = suite.apply_overrides(config, [suite.parse_override(override)])
    assert narrowed["matmul"]["precisions"] == list(check.SUITE_PRECISIONS)
    assert set(check.SUITE_PRECISIONS) <= set(config["matmul"]["precisions"])


@pytest.mark.parametrize(
    "torch_version, reject_ieee, verdict, path",
    [
        ("2.8.0", "", "PASS", "tf32"),  # before 2.9 the variable wins: float32 ran on TF32, and bench flagged it
        ("2.13.0", "", "PASS", "ieee"),  # from 2.9 bench's IEEE setting wins: an ok float32 figure is right
        ("2.13.0", "1", "FAIL", "ieee"),  # ...and rejecting it for a variable that changed nothing is wrong
    ],
)
def test_the_tf32_step_is_judged_on_the_recorded_path_per_torch_version(tmp_path, torch_version, reject_ieee, verdict,
                                                                      path):  # fmt: skip
    run_check(tmp_path, "--only", "tf32-override-float32", FAKE_TORCH_VERSION=torch_version,
              FAKE_REJECT_IEEE=reject_ieee)  # fmt: skip
    doc = json.loads((tmp_path / "out" / "check.json").read_text())
    step = next(s for s in doc["steps"] if s["name"] == "tf32-override-float32")
    assert step["verdict"] == verdict, step
    assert step["figures"]["fp32_path"] == path and step["figures"]["expected_path"] == path


def test_the_check_leaves_60_s_of_the_device_commands_limit_unused(tmp_path):
    """run_on_gpu.sh's total (set-up, steps, final verify, packing) and check.py's own default deadline both end at
    least 60 s before the device tool's 600 s limit per command, and a slow set-up never pushes the steps past it."""
    import re

    import check

    script = (HERE / "run_on_gpu.sh").read_text()
    total = int(re.search(r"BENCH_CHECK_TOTAL_S:-(\d+)", script)[1])
    assert check.SLACK_S >= 60 and total <= check.DEVICE_CALL_LIMIT_S - check.SLACK_S
    assert check.DEFAULT_DEADLINE_S + check.FINAL_VERIFY_S + check.PACKING_S <= total
    floor = re.search(r'\[ "\$deadline" -lt (\d+) \] && deadline=(\d+)', script)
    assert floor and int(floor[2]) == 0  # no floor that would outlast the total after a slow set-up
    r = subprocess.run([sys.executable, str(CHECK), str(tmp_path / "out"), "--dry-run"], capture_output=True, text=True, check=True,
                       env={**os.environ, "BENCH_CHECK_NGPU": "1"})  # fmt: skip
    verify = next(line for line in r.stdout.splitlines() if line.startswith("verify "))
    assert float(verify.split()[2].rstrip("s")) <= check.FINAL_VERIFY_S  # its timeout column


def test_a_step_cut_short_by_the_deadline_reads_not_run_time_never_fail(tmp_path):
    """The deadline cuts a step's timeout to what is left; a step stopped there did not fail, it ran out of time."""
    r = run_check(
        tmp_path, "--only", "train-eager", "--deadline", "3", FAKE_HANG="train", FAKE_HANG_PID=str(tmp_path / "pid")
    )
    doc = json.loads((tmp_path / "out" / "check.json").read_text())
    step = next(s for s in doc["steps"] if s["name"] == "train-eager")
    assert step["verdict"] == "SKIP" and step["figure"].startswith("not run: time"), step
    assert "train-eager" not in doc["failed"], r.stdout[-2000:]
