#!/usr/bin/env python3
"""The device check: every GPU path of bench, for real, each as its own step with a verdict.

    python tests/gpu/check.py OUT_DIR [--dry-run] [--only a,b] [--skip a,b] [--deadline S] [--return-dir DIR]

Normally started by tests/gpu/run_on_gpu.sh, which sets up .venv first (./run_bench.sh) and runs this with the venv's
python. Standard library only, so it also runs (and reports a failed set-up) where bench cannot be imported.

Each step runs in its own process group with its own timeout; its stdout and stderr go to separate files under
OUT_DIR/logs/ (stderr is never mixed into a JSON output); its exit code, wall time and headline figure (parsed from the
step's JSON output or report) are recorded. A failing step never stops the later ones. OUT_DIR/check.json is rewritten
after every step, so a check killed half-way still says what ran. At the end a PASS/FAIL table is printed and the exit
status is 1 when any required step failed.

Test hooks (tests/gpu/test_check.py): BENCH_CHECK_BENCH (the bench command, split like a shell line; default: this
python -m bench), BENCH_CHECK_TORCHRUN (the launcher; default: this python -m torch.distributed.run), BENCH_CHECK_NGPU
(the GPU count; default: nvidia-smi -L, else torch in this python).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import datetime as dt
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SMOKE_CONFIG = "configs/smoke-gpu.toml"

# The H200's dense bf16 peak (NVIDIA H200 datasheet, SXM: 1,979 TFLOPS with sparsity) and what stas00's mamf-finder
# reached on an H100 SXM (794.5 of 989.4 TFLOPS): bench's MAMF on an H200 should reach at least that fraction.
H200_BF16_PEAK_TFLOPS = 989.4
MAMF_FINDER_FRACTION = 794.5 / 989.4

TF32_VARS = ("NVIDIA_TF32_OVERRIDE", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE")
PRECISIONS = ("float64", "float32", "tf32", "bfloat16", "float16", "float8_e4m3", "int8")
FIXED_SHAPE = (8192, 8192, 8192)
SPLIT_K_SHAPE = (2048, 2048, 16384)  # small M, N and a long K: cuBLAS picks split-K kernels here
MEMBW_KERNELS = ("copy", "scale", "add", "triad", "h2d", "d2h")
TRAIN_PRESETS = ("small", "gpt2-124m")
SUITE_PRECISIONS = ("bfloat16", "float32")
#: the challenge rounds, each a step of its own: bfloat16 (tensor cores), and float32 at its default inner dimension
#: (2n, folded in runs of 64: bench.challenge.fold's CUDA path, which no GPU has run yet; 2 x 6.9e13 FLOPs, about
#: 1.5 s at an H100's float32 rate: the step is start-up, the exact-row check on the CPU and the hash)
CHALLENGES = (
    {"step": "challenge", "dtype": "bfloat16", "n": 4096, "products": 2, "window": "3m"},
    {"step": "challenge-float32", "dtype": "float32", "n": 2048, "products": 2, "window": "2m", "budget_s": 20},
)
CHALLENGE = CHALLENGES[0]

PASS, FAIL, SKIP, WARN = "PASS", "FAIL", "SKIP", "WARN"
#: the device tool runs one command for at most 600 s; the whole check (set-up, steps, final verify, packing) keeps at
#: least SLACK_S of it unused, so a slow start or a slow copy back never loses what ran (run_on_gpu.sh's total)
DEVICE_CALL_LIMIT_S = 600.0
SLACK_S = 60.0
FINAL_VERIFY_S = 60.0
PACKING_S = 15.0
#: every step but the final verify: what is left of the limit after the slack, the final verify and packing
DEFAULT_DEADLINE_S = DEVICE_CALL_LIMIT_S - SLACK_S - FINAL_VERIFY_S - PACKING_S
NOT_RUN_TIME = "not run: time"


# --- the plan ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Check:
    """One verdict inside a step (a precision at a shape, an fp8 mode, a report)."""

    name: str
    verdict: str
    figure: str = ""
    note: str = ""
    required: bool = True


@dataclasses.dataclass
class Outcome:
    figure: str = ""
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)
    checks: list[Check] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Run:
    """What one process did: exit code, wall seconds, whether its timeout killed it, where its output went."""

    label: str
    command: list[str]
    rc: int | None
    seconds: float
    timed_out: bool
    stdout: Path
    stderr: Path

    def out(self) -> str:
        return _read(self.stdout)

    def err(self) -> str:
        return _read(self.stderr)


@dataclasses.dataclass
class Step:
    name: str
    what: str
    budget_s: float  # what it should take on an H200, start-up included
    timeout_s: float
    command: list[str] | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    judge: Callable[[Ctx, Step, list[Run]], Outcome] | None = None
    runner: Callable[[Ctx, Step, float], list[Run]] | None = None  # instead of `command`, e.g. the challenge
    required: bool = True
    skip: str | None = None  # why this step does not run here
    final: bool = False  # runs even after the deadline (verify)
    shown: list[str] = dataclasses.field(default_factory=list)  # commands to print in the plan (runner steps)
    notes: list[str] = dataclasses.field(default_factory=list)  # what a runner observed, for the judge


@dataclasses.dataclass
class Ctx:
    out: Path
    bench: list[str]
    torchrun: list[str]
    python: str
    device: str
    ngpu: int
    ngpu_source: str
    env: dict[str, str]
    tf32_env: dict[str, str | None]
    challenge_help: dict[str, str]
    results: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    started: float = 0.0
    deadline: float = 0.0
    environment: dict[str, Any] = dataclasses.field(default_factory=dict)

    def rdir(self, step: str) -> Path:
        return self.out / "r" / step

    def logs(self) -> Path:
        return self.out / "logs"


def bench_cmd(ctx: Ctx, step: str, verb: list[str], *args: str, results: bool = True) -> list[str]:
    return [*ctx.bench, *verb, *args, *(["--results-dir", str(ctx.rdir(step))] if results else [])]


def build_plan(ctx: Ctx) -> list[Step]:
    """Every step in the order it runs. The slowest and least predictable (torch.compile) comes last but two (before the float32 challenge), so a slow
    compile is what the deadline cuts, never the cheap steps; verify always runs last."""
    dev = ctx.device
    fixed, splitk = ",".join(map(str, FIXED_SHAPE)), ",".join(map(str, SPLIT_K_SHAPE))
    steps = [
        Step(
            "inventory",
            "bench inventory --json: NVML GPUs, host, torch build (and the TF32 environment)",
            8,
            60,
            [*ctx.bench, "inventory", "--json"],
            judge=judge_inventory,
        )
    ]
    for p in PRECISIONS:
        fp8 = p == "float8_e4m3"
        steps.append(
            Step(
                f"matmul-{p}",
                f"{p} at {_shape(FIXED_SHAPE)} and the split-K-prone {_shape(SPLIT_K_SHAPE)}"
                + (" (fast accumulation on and off)" if fp8 else ""),
                14 if fp8 else 10,
                60 if fp8 else 45,
                bench_cmd(
                    ctx,
                    f"matmul-{p}",
                    ["matmul"],
                    "--device",
                    dev,
                    "--dtype",
                    p,
                    "--shape",
                    fixed,
                    "--shape",
                    splitk,
                    "--budget",
                    "0.5",
                    "--warmup-s",
                    "0.5",
                    "--json",
                ),
                judge=lambda c, s, r, p=p: judge_matmul(c, s, r, p),
            )
        )
    for p, var, value in (("float32", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "1"), ("tf32", "NVIDIA_TF32_OVERRIDE", "0")):
        steps.append(
            Step(
                f"tf32-override-{p}",
                f"{p} with {var}={value} set: judged on the path bench's probe recorded, per torch version",
                8,
                40,
                bench_cmd(
                    ctx,
                    f"tf32-override-{p}",
                    ["matmul"],
                    "--device",
                    dev,
                    "--dtype",
                    p,
                    "--shape",
                    fixed,
                    "--budget",
                    "0.5",
                    "--warmup-s",
                    "0.3",
                    "--json",
                ),
                env={var: value},
                judge=lambda c, s, r, p=p: judge_override(c, s, r, p),
            )
        )
    steps.append(
        Step(
            "membw",
            "STREAM copy/scale/add/triad (1 GiB arrays) and pinned H2D/D2H",
            15,
            45,
            bench_cmd(ctx, "membw", ["membw"], "--device", dev, "--array-mib", "1024", "--budget", "0.5", "--json"),
            judge=judge_membw,
        )
    )
    comm_args = (
        "--max-bytes",
        str(256 << 20),
        "--factor",
        "16",
        "--iterations",
        "10",
        "--batches",
        "3",
        "--warmup-iterations",
        "3",
        "--timeout",
        "60",
        "--json",
    )
    eager = Step(
        "train-eager",
        "gpt, presets small and gpt2-124m, bf16, eager (the suite trains mlp too)",
        20,
        90,
        bench_cmd(
            ctx,
            "train-eager",
            ["train"],
            "--device",
            dev,
            "--model",
            "gpt",
            *_each("--preset", TRAIN_PRESETS),
            "--dtype",
            "bfloat16",
            "--json",
        ),
        judge=lambda c, s, r: judge_train(c, s, r, compiled=False),
    )
    gpus = f"{ctx.ngpu} GPU{'' if ctx.ngpu == 1 else 's'}"
    if ctx.ngpu >= 2:
        launch = [*ctx.torchrun, "--standalone", f"--nproc_per_node={ctx.ngpu}", "-m", "bench"]
        steps += [
            Step(
                "comm-nccl",
                f"every collective over NCCL, {ctx.ngpu} ranks under torchrun",
                40,
                120,
                [*launch, "comm", *comm_args, "--results-dir", str(ctx.rdir("comm-nccl"))],
                judge=judge_comm,
            ),
            eager,
            Step(
                "train-ddp",
                f"data-parallel gpt small over NCCL, {ctx.ngpu} ranks under torchrun",
                40,
                120,
                [
                    *launch,
                    "train",
                    "--model",
                    "gpt",
                    "--preset",
                    "small",
                    "--dtype",
                    "bfloat16",
                    "--timeout",
                    "60",
                    "--json",
                    "--results-dir",
                    str(ctx.rdir("train-ddp")),
                ],
                judge=judge_train_ddp,
            ),
        ]
    else:
        steps += [
            Step(
                "comm-1rank",
                "every collective, one rank on the GPU (single-GPU: multi-rank NCCL not proven)",
                15,
                60,
                bench_cmd(ctx, "comm-1rank", ["comm"], "--device", dev, *comm_args),
                judge=judge_comm,
            ),
            Step(
                "comm-nccl",
                "collectives over NCCL across GPUs under torchrun",
                0,
                0,
                required=False,
                skip=f"{gpus}: multi-rank NCCL needs a node with 2+ GPUs",
            ),
            eager,
            Step(
                "train-ddp",
                "data-parallel training across GPUs under torchrun",
                0,
                0,
                required=False,
                skip=f"{gpus}: data-parallel training needs a node with 2+ GPUs",
            ),
        ]
    steps += [
        Step(
            "search-bfloat16",
            "bf16 MAMF search (60 s, after bench's 20 s clock settle) and MSMF window (10 s)",
            95,
            140,
            bench_cmd(
                ctx,
                "search-bfloat16",
                ["matmul"],
                "--device",
                dev,
                "--search",
                "auto",
                "--dtype",
                "bfloat16",
                "--budget",
                "60",
                "--window",
                "10",
                "--json",
            ),
            judge=judge_search,
        ),
        # Each search first holds a large product for 20 s so clocks settle (bench's matmul_search.SETTLE_S, which
        # neither the config nor the CLI can shorten yet): the config's five precisions would take 2.5 min, so the
        # check's suite searches two; the fixed-shape steps above cover every precision.
        Step(
            "suite",
            f"bench run --config {SMOKE_CONFIG}, searching {' and '.join(SUITE_PRECISIONS)}",
            80,
            150,
            bench_cmd(
                ctx,
                "suite",
                ["run"],
                "--config",
                SMOKE_CONFIG,
                "--set",
                "matmul.precisions=[" + ", ".join(f'"{p}"' for p in SUITE_PRECISIONS) + "]",
                "--json",
            ),
            judge=judge_suite,
        ),
        challenge_step(ctx),
        Step(
            "train-compile",
            "gpt, presets small and gpt2-124m in one torch.compile'd process (TORCH_LOGS=recompiles)",
            90,
            200,
            bench_cmd(
                ctx,
                "train-compile",
                ["train"],
                "--device",
                dev,
                "--model",
                "gpt",
                *_each("--preset", TRAIN_PRESETS),
                "--dtype",
                "bfloat16",
                "--compile",
                "--json",
            ),
            env={"TORCH_LOGS": "recompiles"},
            judge=lambda c, s, r: judge_train(c, s, r, compiled=True),
        ),
        *(challenge_step(ctx, c) for c in CHALLENGES[1:]),  # after the compile: the deadline cuts these first
        Step(
            "verify",
            "bench verify on every report.json this check wrote",
            15,
            FINAL_VERIFY_S,
            None,
            runner=run_verify,
            judge=judge_verify,
            final=True,
            shown=[" ".join([*ctx.bench, "verify", "--json", f"{ctx.out}/r/*/*/report.json"])],
        ),
    ]
    return steps


def _each(flag: str, values: tuple[str, ...]) -> list[str]:
    return [x for v in values for x in (flag, v)]


def _shape(s: tuple[int, ...] | list[int]) -> str:
    return "x".join(map(str, s)) if len(set(s)) > 1 else f"{s[0]}^3"


# --- the challenge: collect and answer wait, warm, for the challenge; then issue; then verify ---------------------


def _option_help(text: str, option: str) -> str | None:
    """The help paragraph of `option` in click's --help text, or None when the command has no such option."""
    m = re.search(rf"^\s*{re.escape(option)}\b(.*?)(?=^\s*-{{1,2}}[a-z]|\Z)", text, re.MULTILINE | re.DOTALL)
    return m.group(0) if m else None


def challenge_commands(ctx: Ctx, c: dict[str, Any] = CHALLENGE) -> dict[str, list[str]]:
    """The commands, with the options this bench's --help shows. An auditor key distinct from the node's (BENCH_KEY)
    signs the challenge and the receipts: through --auditor-key where a subcommand has it, else through --key on issue
    and collect (whose --help says that key is the auditor's). Where --trusted-keys exists, the node trusts only the
    auditor's key and the auditor only the node's. `keys` (bench keys init) creates the auditor key first where bench
    wants it made beforehand."""
    d = ctx.out / c["step"]
    ch, drop, receipts, auditor = d / "challenge.json", d / "drop", d / "receipts.json", ctx.out / "auditor.pem"
    helps = ctx.challenge_help

    def has(sub: str, option: str) -> bool:
        return _option_help(helps.get(sub, ""), option) is not None

    def auditor_args(sub: str) -> list[str]:
        opt = _option_help(helps.get(sub, ""), "--auditor-key")
        if opt is not None:
            public = "public" in opt.lower() and "private" not in opt.lower()
            return ["--auditor-key", str(auditor) + (".pub" if public else "")]
        if sub in ("issue", "collect") and (has(sub, "--key") or not helps.get(sub)):
            return ["--key", str(auditor)]
        return []

    def trusted(sub: str, keys: Path) -> list[str]:
        return ["--trusted-keys", str(keys)] if has(sub, "--trusted-keys") else []

    nodes_keys, auditor_keys = d / "node.keys", d / "auditor.keys"
    cmds = {
        "collect": [
            *ctx.bench,
            "challenge",
            "collect",
            str(drop),
            "--challenge",
            str(ch),
            "-o",
            str(receipts),
            "--expect",
            "1",
            "--wait",
            "120",
            *auditor_args("collect"),
            *trusted("collect", nodes_keys),
        ],
        "answer": [
            *ctx.bench,
            "challenge",
            "answer",
            str(ch),
            "--drop",
            str(drop),
            "--device",
            ctx.device,
            "--wait",
            "120",
            *trusted("answer", auditor_keys),
            "--json",
        ],
        "issue": [
            *ctx.bench,
            "challenge",
            "issue",
            "-o",
            str(ch),
            "--dtype",
            c["dtype"],
            "--size",
            str(c["n"]),
            "--products",
            str(c["products"]),
            "--window",
            c["window"],
            *auditor_args("issue"),
            *trusted("issue", nodes_keys),
            "--json",
        ],
        "verify": [
            *ctx.bench,
            "challenge",
            "verify",
            str(ch),
            str(drop),
            "--receipts",
            str(receipts),
            *auditor_args("verify"),
            *trusted("verify", nodes_keys),
            *(["--proof", str(d / "proof.json")] if has("verify", "--proof") else []),
            "--json",
        ],
    }
    if helps.get("keys-init"):
        cmds["keys"] = [*ctx.bench, "keys", "init", "--key", str(auditor)]
    return cmds


def public_key_line(pem_pub: Path) -> str | None:
    """The base64 raw Ed25519 public key (what trust files list) from a .pub PEM: the last 32 bytes of its DER."""
    import base64

    try:
        body = "".join(line for line in pem_pub.read_text().splitlines() if line and not line.startswith("-----"))
        return base64.b64encode(base64.b64decode(body)[-32:]).decode()
    except (OSError, ValueError):
        return None


def challenge_step(ctx: Ctx, c: dict[str, Any] = CHALLENGE, required: bool = True) -> Step:
    cmds = challenge_commands(ctx, c)
    shown = ([" ".join(cmds["keys"])] if "keys" in cmds else []) + [
        " ".join(cmds[k]) + (" &" if k in ("collect", "answer") else "")
        for k in ("collect", "answer", "issue", "verify")
    ]
    return Step(
        c["step"],
        f"{c['dtype']} challenge n={c['n']} x{c['products']} answered on {ctx.device}: collect and "
        "answer --wait, then issue, then verify on the CPU",
        c.get("budget_s", 40),
        120,
        None,
        runner=run_challenge,
        judge=judge_challenge,
        required=required,
        shown=shown,
    )


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _await_ready(proc: subprocess.Popen[bytes] | None, stderr: Path, limit_s: float) -> str:
    """Until the waiting answer process is ready: it says so on stderr ('ready', 'waiting'), or it stopped burning CPU
    for a second (only polling for the challenge file is left), or `limit_s` passed."""
    if proc is None:
        return "could not be started"
    start, last, idle = time.monotonic(), None, 0
    while time.monotonic() - start < limit_s:
        if proc.poll() is not None:
            return f"exited early (rc {proc.returncode})"
        if re.search(r"\b(ready|waiting)\b", _read(stderr), re.IGNORECASE):
            return f"said it is ready after {time.monotonic() - start:.1f} s"
        cpu = _cpu_seconds(proc.pid)
        idle = idle + 1 if cpu is not None and last is not None and cpu - last < 0.05 else 0
        if idle >= 2 and time.monotonic() - start > 3:
            return f"idle (polling) after {time.monotonic() - start:.1f} s"
        last = cpu
        time.sleep(0.5)
    return f"not known to be ready after {limit_s:.0f} s; issuing anyway"


def _challenge_of(step: Step) -> dict[str, Any]:
    return next(c for c in CHALLENGES if c["step"] == step.name)


def run_challenge(ctx: Ctx, step: Step, timeout: float) -> list[Run]:
    cmds = challenge_commands(ctx, _challenge_of(step))
    d = ctx.out / step.name
    (d / "drop").mkdir(parents=True, exist_ok=True)
    end = time.monotonic() + timeout
    env = ctx.env
    runs: list[Run] = []
    node_key = Path(env["BENCH_KEY"])
    if "keys" in cmds:
        inits = [_start(ctx, f"{step.name}-keys", cmds["keys"], env)] if not (ctx.out / "auditor.pem").exists() else []
        if not node_key.exists():  # made on first use by the steps before; made here when the challenge runs alone
            inits.append(
                _start(ctx, f"{step.name}-node-key", [*ctx.bench, "keys", "init", "--key", str(node_key)], env)
            )
        runs += [_finish(i, 30) for i in inits]
    for pub, keys in (
        (Path(str(node_key) + ".pub"), d / "node.keys"),
        (ctx.out / "auditor.pem.pub", d / "auditor.keys"),
    ):
        line = public_key_line(pub)
        keys.write_text(f"# from {pub.name}\n{line}\n" if line else f"# {pub.name} not found\n")
    collect = _start(ctx, f"{step.name}-collect", cmds["collect"], env)
    answer = _start(ctx, f"{step.name}-answer", cmds["answer"], env)
    try:
        ready = _await_ready(answer[0], answer[3], min(40.0, timeout / 3))
        issue = _run(ctx, f"{step.name}-issue", cmds["issue"], env, 30)
    except KeyboardInterrupt:  # they run in sessions of their own: nothing else would end them
        for started in (answer, collect):
            if started[0] is not None:
                _kill(started[0])
        raise
    runs.append(issue)
    if issue.rc != 0:  # nothing to answer or collect: end both now rather than at their --wait
        runs += [_finish(answer, 0.1), _finish(collect, 0.1)]
    else:
        reserve = 40.0  # for verify, which reads every product back on the CPU
        runs.append(_finish(answer, max(end - time.monotonic() - reserve, 10)))
        runs.append(_finish(collect, max(end - time.monotonic() - reserve, 5)))
    runs.append(_run(ctx, f"{step.name}-verify", cmds["verify"], env, max(end - time.monotonic(), 30)))
    # the revealed products are large (n^2 values each); the commitment, reveal manifest and receipts stay
    for sub in (d / "drop").iterdir():
        if sub.is_dir():
            shutil.rmtree(sub, ignore_errors=True)
    step.notes = [f"answer process {ready} before the challenge was issued"]
    return runs


def run_verify(ctx: Ctx, step: Step, timeout: float) -> list[Run]:
    reports = report_paths(ctx)
    if not reports:
        return [Run("verify", [], None, 0.0, False, ctx.logs() / "verify.stdout", ctx.logs() / "verify.stderr")]
    return [_run(ctx, "verify", [*ctx.bench, "verify", "--json", *map(str, reports)], ctx.env, timeout)]


def report_paths(ctx: Ctx) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(str(ctx.out / "r" / "*" / "*" / "report.json")))


# --- running processes -------------------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


Started = tuple["subprocess.Popen[bytes] | None", float, Path, Path, str, list[str]]


def _start(ctx: Ctx, label: str, command: list[str], env: dict[str, str]) -> Started:
    stdout, stderr = ctx.logs() / f"{label}.stdout", ctx.logs() / f"{label}.stderr"
    proc = None
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        try:
            proc = subprocess.Popen(
                command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=REPO, start_new_session=True
            )  # its own process group: a timeout ends its children too
        except (OSError, IndexError) as exc:
            err.write(f"check.py: cannot start {command[:1]}: {exc}\n".encode())
    return proc, time.monotonic(), stdout, stderr, label, command


def _finish(started: Started, timeout: float) -> Run:
    proc, t0, stdout, stderr, label, command = started
    if proc is None:
        return Run(label, command, 127, 0.0, False, stdout, stderr)
    timed_out = False
    try:
        proc.wait(timeout=max(timeout, 0.1))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(proc)
    except KeyboardInterrupt:  # the check itself is stopped: take the step's processes with it
        _kill(proc)
        raise
    seconds = time.monotonic() - t0
    if timed_out:
        with open(stderr, "a", encoding="utf-8") as err:
            err.write(f"\ncheck.py: killed after its {timeout:.0f} s timeout\n")
    return Run(label, command, proc.returncode, seconds, timed_out, stdout, stderr)


def _kill(proc: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _run(ctx: Ctx, label: str, command: list[str], env: dict[str, str], timeout: float) -> Run:
    return _finish(_start(ctx, label, command, env), timeout)


# --- reading what a step wrote -----------------------------------------------------------------------------------


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _report(text: str) -> Any:
    """A report file's contents as one dictionary: a version 1-2 document as it is; a version 3 stream of records
    (bench/model/records.py: one {"record", "signature"} object a line) folded as bench folds it: the header's
    fields, each measurement record's measurement (with later amendments' warnings and details), the end record's
    end_utc and interrupted. A last line cut short (a killed run) is left out. Verification is bench verify's."""
    lines = text.split("\n")
    first = _json(lines[0]) if lines else None
    if not (isinstance(first, dict) and isinstance(first.get("record"), dict)):
        return _json(text)
    head = first["record"]
    out: dict[str, Any] = {k: v for k, v in head.items() if k not in ("type", "seq", "prev", "signer")}
    out.update(measurements=[], end_utc=None, interrupted=False)
    for line in lines[1:-1] if not text.endswith("\n") else lines[1:]:
        r = (_json(line) or {}).get("record") if line else None
        if not isinstance(r, dict):
            continue
        if r.get("type") == "measurement":
            out["measurements"].append(r.get("measurement"))
        elif r.get("type") == "amend" and isinstance(r.get("index"), int) and r["index"] < len(out["measurements"]):
            out["measurements"][r["index"]] = {**out["measurements"][r["index"]], "warnings": r.get("warnings"),
                                               "details": r.get("details")}  # fmt: skip
        elif r.get("type") == "end":
            out.update(end_utc=r.get("end_utc"), interrupted=r.get("interrupted"))
    return out


def step_report(ctx: Ctx, step: Step, runs: list[Run]) -> dict[str, Any] | None:
    """The step's node report: its --json stdout when that is a whole report, else the newest report.json in the step's
    results directory (a process killed half-way leaves a partial report there)."""
    data = _json(runs[0].out()) if runs else None
    if isinstance(data, dict) and "measurements" in data:
        return data
    if isinstance(data, dict) and isinstance(data.get("report"), str):  # bench run --json: a summary naming the report
        rep = _report(_read(Path(data["report"])))
        if isinstance(rep, dict):
            return rep
    found = sorted(glob.glob(str(ctx.rdir(step.name) / "*" / "report.json")), key=os.path.getmtime)
    return _report(_read(Path(found[-1]))) if found else None


def measurements(report: dict[str, Any] | None, workload: str) -> list[dict[str, Any]]:
    return [m for m in (report or {}).get("measurements", []) if m.get("workload") == workload]


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    return m.get("summary") or {}


def _warning_codes(m: dict[str, Any]) -> list[str]:
    return [str(w.get("code", "")) for w in m.get("warnings") or [] if isinstance(w, dict)]


def _ok(m: dict[str, Any]) -> tuple[bool, str]:
    """Whether a measurement is a valid figure, and if not why."""
    status = m.get("status")
    if status != "ok":
        return False, f"{status}: {m.get('reason') or (m.get('validity') or {}).get('reason') or 'no reason given'}"
    if (m.get("validity") or {}).get("passed") is False:
        return False, f"check failed: {(m.get('validity') or {}).get('reason')}"
    if m.get("emulated"):
        return False, "emulated (not the device's own arithmetic)"
    bad = [c for c in _warning_codes(m) if "implausible" in c or "tf32" in c]
    if bad:
        return False, f"warning {', '.join(bad)}"
    return True, ""


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _tflops(m: dict[str, Any], unit: str = "TFLOPS") -> str:
    s = _summary(m)
    t = _num(s.get("tflops_median"))
    if t is None:
        return ""
    eff = _num(s.get("efficiency"))
    return f"{t:.1f} {unit}" + (f" ({eff:.0%} of peak)" if eff is not None else "")


def _rc_check(runs: list[Run]) -> Check | None:
    for r in runs:
        if r.timed_out:
            return Check(f"{r.label} finished", FAIL, note=f"killed after {r.seconds:.0f} s (timeout)")
        if r.rc != 0:
            tail = (r.err().strip().splitlines() or ["(no stderr)"])[-1][:160]
            return Check(f"{r.label} exit 0", FAIL, note=f"exit {r.rc}: {tail}")
    return None


# --- judges: each turns a step's runs into checks and a headline figure ------------------------------------------


def judge_inventory(ctx: Ctx, step: Step, runs: list[Run]) -> Outcome:
    data = _json(runs[0].out())
    if not isinstance(data, dict):
        return Outcome("no JSON on stdout", checks=[Check("inventory is JSON", FAIL)])
    nvml = data.get("nvml") or {}
    gpus = nvml.get("gpus") or []
    names = sorted({str(g.get("name")) for g in gpus})
    host = data.get("host") or {}
    fixtures = ctx.out / "fixtures"
    fixtures.mkdir(exist_ok=True)
    (fixtures / "inventory.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    figure = f"{len(gpus)} GPU(s): {', '.join(names) or '-'}; driver {nvml.get('driver_version', '?')}"
    torch_info = host.get("torch") if isinstance(host.get("torch"), (str, dict)) else None
    checks = [
        Check("NVML sees the GPUs", PASS if gpus else FAIL, f"{len(gpus)}", "" if gpus else str(nvml.get("reason")))
    ]
    if ctx.ngpu and len(gpus) != ctx.ngpu:
        checks.append(Check("NVML count = GPUs counted", FAIL, f"{len(gpus)} vs {ctx.ngpu} ({ctx.ngpu_source})"))
    tf32 = {k: v for k, v in ctx.tf32_env.items() if v is not None}
    return Outcome(
        figure,
        {"gpus": len(gpus), "names": names, "torch": torch_info, "tf32_env": ctx.tf32_env},
        checks,
        [f"TF32 environment at start: {tf32 or 'none set'} (removed for every other step)"],
    )


def judge_matmul(ctx: Ctx, step: Step, runs: list[Run], precision: str) -> Outcome:
    report = step_report(ctx, step, runs)
    ms = [m for m in measurements(report, "matmul") if (m.get("spec") or {}).get("precision") == precision]
    unit = "TOPS" if precision == "int8" else "TFLOPS"
    fp8 = precision == "float8_e4m3"
    checks, figures = [], {}
    modes = sorted({(m.get("spec") or {}).get("fast_accum") for m in ms}, key=str) if fp8 else [None]
    if fp8 and ms and modes == [None]:
        checks.append(Check("fp8 fast_accum recorded", FAIL, note="no measurement spec carries fast_accum"))
    elif fp8 and ms:
        for want in (True, False):
            if want not in modes:
                checks.append(Check(f"fp8 fast_accum={want} measured", FAIL, note="no such measurement"))
    for shape in (FIXED_SHAPE, SPLIT_K_SHAPE):
        for mode in modes:
            match = [
                m
                for m in ms
                if _spec_shape(m) == shape and (not fp8 or (m.get("spec") or {}).get("fast_accum") == mode)
            ]
            label = _shape(shape) + (f" fast_accum={mode}" if fp8 and mode is not None else "")
            if not match:
                checks.append(Check(label, FAIL, note="not measured"))
                continue
            m = match[-1]
            good, why = _ok(m)
            checks.append(Check(label, PASS if good else FAIL, _tflops(m, unit), why))
            figures[label] = _num(_summary(m).get("tflops_median"))
    if fp8:
        on = [v for k, v in figures.items() if k.startswith(_shape(FIXED_SHAPE)) and k.endswith("fast_accum=True")]
        off = [v for k, v in figures.items() if k.startswith(_shape(FIXED_SHAPE)) and k.endswith("fast_accum=False")]
        if on and off and on[0] and off[0]:
            figures["fast_accum_speedup"] = on[0] / off[0]
    head = figures.get(_shape(FIXED_SHAPE)) or figures.get(f"{_shape(FIXED_SHAPE)} fast_accum=True")
    figure = f"{head:.1f} {unit} at {_shape(FIXED_SHAPE)}" if head else "no figure"
    if "fast_accum_speedup" in figures:
        figure += f"; fast accum x{figures['fast_accum_speedup']:.2f}"
    return Outcome(figure, figures, checks)


def _spec_shape(m: dict[str, Any]) -> tuple[int, int, int] | None:
    s = m.get("spec") or {}
    try:
        return int(s["m"]), int(s["n"]), int(s["k"])
    except (KeyError, TypeError, ValueError):
        return None


#: the first torch whose TORCH_ALLOW_TF32_CUBLAS_OVERRIDE only sets fp32_precision's initial value; before it the
#: variable wins over an explicit setting (ATen's allowTF32CuBLAS: `override || precision != HIGHEST`)
TF32_NEW_API = (2, 9)


def torch_version(report: dict[str, Any] | None) -> tuple[int, int] | None:
    """(major, minor) of the torch that made the report (inventory.host.torch_version, e.g. '2.8.0+cu128'), or None."""
    text = str((((report or {}).get("inventory") or {}).get("host") or {}).get("torch_version") or "")
    found = re.match(r"(\d+)\.(\d+)", text)
    return (int(found[1]), int(found[2])) if found else None


def expected_fp32_path(precision: str, env: dict[str, str], version: tuple[int, int] | None) -> str | None:
    """What a `precision` product should run on under `env` with this torch, bench having set the switch explicitly:
    NVIDIA_TF32_OVERRIDE=0 forbids TF32 on every version; TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 forces it for float32
    only before torch 2.9. None when the torch version is unknown and it matters."""
    if env.get("NVIDIA_TF32_OVERRIDE", "").strip() == "0":
        return "ieee"
    if precision == "tf32":
        return "tf32"
    if env.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "").strip() == "1":
        return None if version is None else ("tf32" if version < TF32_NEW_API else "ieee")
    return "ieee"


def judge_override(ctx: Ctx, step: Step, runs: list[Run], precision: str) -> Outcome:
    """Judged on what bench's probe recorded (details.fp32_path), not on the variable alone: a figure whose products
    ran on the other path (float32 on TF32, 'tf32' as IEEE) must be invalid or carry a tf32 warning (FAIL when it was
    accepted); a figure whose products ran on its own path must be accepted (FAIL when bench rejected a figure the
    variable did not change: from torch 2.9 TORCH_ALLOW_TF32_CUBLAS_OVERRIDE is only the initial value, which bench's
    explicit setting replaces). A probe that disagrees with the documented behaviour of this torch is a WARN."""
    report = step_report(ctx, step, runs)
    ms = [m for m in measurements(report, "matmul") if (m.get("spec") or {}).get("precision") == precision]
    if not ms:
        return Outcome("no measurement", checks=[Check("override detected", FAIL, note="nothing measured to judge")])
    version = torch_version(report)
    expected = expected_fp32_path(precision, step.env, version)
    torch_name = "torch " + (".".join(map(str, version)) if version else "(version unknown)")
    checks = []
    for m in ms:
        path = (m.get("details") or {}).get("fp32_path")
        codes = [c for c in _warning_codes(m) if "tf32" in c.lower()]
        status, reason = m.get("status"), str(m.get("reason") or "")
        rejected = bool(codes) or status == "invalid" or (status in ("skipped", "error") and "tf32" in reason.lower())
        why = f"warning {', '.join(codes)}" if codes else f"{status}: {reason}"
        if path not in ("ieee", "tf32"):
            checks.append(Check("probe recorded", FAIL, _tflops(m), f"no fp32_path in the report ({path!r})"))
            continue
        if expected is not None:
            verdict = PASS if path == expected else WARN
            checks.append(Check(f"path as {torch_name} treats it", verdict, path, f"expected {expected}",
                                required=False))  # fmt: skip
        other = path != ("tf32" if precision == "tf32" else "ieee")
        if other and rejected:
            checks.append(Check("override detected", PASS, _tflops(m), f"ran {path}; {why}"))
        elif other:
            checks.append(Check("override detected", FAIL, _tflops(m), f"ran {path}: accepted as an ok figure with no "
                                "tf32 warning"))  # fmt: skip
        elif rejected:
            checks.append(Check("own path accepted", FAIL, _tflops(m), f"ran {path} as {precision} should, yet {why}"))
        else:
            checks.append(Check("own path accepted", PASS, _tflops(m), f"ran {path}, as {precision} should"))
    env = ", ".join(f"{k}={v}" for k, v in step.env.items())
    main = next((c for c in checks if c.required), checks[0])
    return Outcome(f"{env} ({torch_name}): {main.note}",
                   {"status": ms[0].get("status"), "warnings": _warning_codes(ms[0]), "torch": torch_name,
                    "fp32_path": (ms[0].get("details") or {}).get("fp32_path"), "expected_path": expected},
                   checks)  # fmt: skip


def judge_search(ctx: Ctx, step: Step, runs: list[Run]) -> Outcome:
    report = step_report(ctx, step, runs)
    ms = measurements(report, "matmul")
    mamf = [m for m in ms if ((m.get("details") or {}).get("search") or {}).get("mamf")]
    msmf = [
        m
        for m in ms
        if ((m.get("details") or {}).get("search") or {}).get("role") == "msmf" or "msmf" in (m.get("details") or {})
    ]
    tried = [m for m in ms if ((m.get("details") or {}).get("search") or {}).get("role") not in ("final", "msmf")]
    checks = []
    figures: dict[str, Any] = {"candidates": len(tried)}
    if mamf:
        m = mamf[-1]
        good, why = _ok(m)
        t = _num(_summary(m).get("tflops_median"))
        figures.update(mamf_tflops=t, mamf_shape=_spec_shape(m))
        checks.append(
            Check(
                "MAMF",
                PASS if good and t else FAIL,
                f"{t:.1f} TFLOPS at {_shape(_spec_shape(m) or (0,))}" if t else "",
                why,
            )
        )
    else:
        checks.append(Check("MAMF", FAIL, note="no final measurement with details.search.mamf = true"))
    if msmf:
        m = msmf[-1]
        t = _num(((m.get("details") or {}).get("msmf") or {}).get("tflops"))
        good, why = _ok(m)
        figures["msmf_tflops"] = t
        checks.append(Check("MSMF", PASS if good and t else FAIL, f"{t:.1f} TFLOPS" if t else "", why))
    else:
        checks.append(Check("MSMF", FAIL, note="no MSMF measurement (details.msmf)"))
    t = figures.get("mamf_tflops")
    if t:
        peak = _num(((mamf[-1].get("peak") or {}) if mamf else {}).get("tflops"))
        ratio = t / H200_BF16_PEAK_TFLOPS
        figures.update(peak_in_report=peak, mamf_over_h200_peak=ratio, mamf_finder_h100_fraction=MAMF_FINDER_FRACTION)
        reached = ratio >= MAMF_FINDER_FRACTION
        checks.append(
            Check(
                f"MAMF >= {MAMF_FINDER_FRACTION:.1%} of peak (mamf-finder, H100)",
                PASS if reached else WARN,
                f"{ratio:.1%} of {H200_BF16_PEAK_TFLOPS} TFLOPS",
                "" if peak is None else f"the report's peak for this device: {peak:g} TFLOPS",
                required=False,
            )
        )
    figure = (
        f"MAMF {t:.1f} TFLOPS ({t / H200_BF16_PEAK_TFLOPS:.1%} of H200 {H200_BF16_PEAK_TFLOPS}), " if t else "MAMF -, "
    ) + (f"MSMF {figures['msmf_tflops']:.1f}" if figures.get("msmf_tflops") else "MSMF -")
    return Outcome(figure, figures, checks)


def judge_train(ctx: Ctx, step: Step, runs: list[Run], compiled: bool) -> Outcome:
    report = step_report(ctx, step, runs)
    ms = measurements(report, "train")
    models = ("gpt",)
    checks, figures = [], {}
    for model in models:
        for preset in TRAIN_PRESETS:
            match = [
                m
                for m in ms
                if (m.get("spec") or {}).get("model") == model and (m.get("spec") or {}).get("preset") == preset
            ]
            label = f"{model} {preset}"
            if not match:
                checks.append(Check(label, FAIL, note="not measured"))
                continue
            m = match[-1]
            good, why = _ok(m)
            if compiled and not (m.get("spec") or {}).get("compile"):
                good, why = False, "spec.compile is not true: not a compiled run"
            mfu = _num(_summary(m).get("mfu"))
            rate = _num(_summary(m).get("items_per_s"))
            figures[label] = {"mfu": mfu, "items_per_s": rate, "tflops": _num(_summary(m).get("tflops_median"))}
            checks.append(
                Check(
                    label,
                    PASS if good else FAIL,
                    (f"MFU {mfu:.1%}" if mfu is not None else "MFU -") + (f", {rate:,.0f} items/s" if rate else ""),
                    why,
                )
            )
    if compiled:
        err = runs[0].err() if runs else ""
        recompiles = len(re.findall(r"Recompiling", err))
        limit = re.findall(r"(hit config\.\w*limit|recompile_limit|cache_size_limit)", err)
        figures["recompiles"] = recompiles
        checks.append(
            Check(
                "no fall-back to eager (recompile limit)",
                FAIL if limit else PASS,
                f"{recompiles} 'Recompiling' line(s) in stderr",
                "; ".join(sorted(set(limit))),
            )
        )
        if recompiles:
            checks.append(
                Check(
                    "no recompiles across presets",
                    WARN,
                    f"{recompiles}",
                    "see logs/train-compile.stderr for the guards that failed",
                    required=False,
                )
            )
    mfus = [f"{k} {v['mfu']:.1%}" for k, v in figures.items() if isinstance(v, dict) and v.get("mfu") is not None]
    figure = "MFU " + ", ".join(mfus) if mfus else "no MFU"
    if compiled:
        figure += f"; {figures.get('recompiles', 0)} recompiles"
    return Outcome(figure, figures, checks)


def judge_membw(ctx: Ctx, step: Step, runs: list[Run]) -> Outcome:
    ms = measurements(step_report(ctx, step, runs), "membw")
    checks, figures = [], {}
    for kernel in MEMBW_KERNELS:
        match = [m for m in ms if (m.get("spec") or {}).get("kernel") == kernel]
        if not match:
            checks.append(Check(kernel, FAIL, note="not measured"))
            continue
        m = match[-1]
        good, why = _ok(m)
        g = _num(_summary(m).get("gbps_median"))
        figures[kernel] = g
        checks.append(Check(kernel, PASS if good else FAIL, f"{g:,.1f} GB/s" if g else "", why))
    figure = ", ".join(f"{k} {figures[k]:,.0f} GB/s" for k in ("triad", "h2d", "d2h") if figures.get(k))
    return Outcome(figure or "no figure", figures, checks)


def judge_comm(ctx: Ctx, step: Step, runs: list[Run]) -> Outcome:
    ms = measurements(step_report(ctx, step, runs), "comm")
    checks, figures = [], {}
    if not ms:
        return Outcome("no figure", checks=[Check("collectives measured", FAIL, note="no comm measurement")])
    world = max(int((m.get("spec") or {}).get("world_size") or 1) for m in ms)
    backends = sorted({str((m.get("spec") or {}).get("backend")) for m in ms})
    batched = sorted({(m.get("spec") or {}).get("ops_per_sample") for m in ms}, key=str)
    figures.update(world_size=world, backends=backends, ops_per_sample=batched)
    # nccl-tests' timing: each sample the per-op mean of a batch of back-to-back operations (--iterations 10)
    checks.append(Check("timed in batches", PASS if batched == [10] else FAIL, f"ops per sample {batched}"))
    if "nccl" not in backends:
        checks.append(Check("NCCL backend", FAIL, ", ".join(backends)))
    for op in sorted({(m.get("spec") or {}).get("op") for m in ms}, key=str):
        sizes = [m for m in ms if (m.get("spec") or {}).get("op") == op]
        bad = [f"{(m.get('spec') or {}).get('bytes')} B: {_ok(m)[1]}" for m in sizes if not _ok(m)[0]]
        top = max(sizes, key=lambda m: (m.get("spec") or {}).get("bytes") or 0)
        s = _summary(top)
        key = "busbw_gbps" if world > 1 else "algbw_gbps"
        bw = _num(s.get(key))
        figures[op] = {key: bw, "bytes": (top.get("spec") or {}).get("bytes")}
        checks.append(
            Check(
                op,
                FAIL if bad else PASS,
                f"{key.split('_')[0]} {bw:,.1f} GB/s at {(top.get('spec') or {}).get('bytes')} B"
                if bw is not None
                else "",
                "; ".join(bad[:2]),
            )
        )
    if world > 1:
        per_rank = (ms[0].get("details") or {}).get("per_rank") or []
        uuids = [r.get("uuid") for r in per_rank]
        distinct = len(set(uuids)) == len(uuids) == world
        checks.append(
            Check(
                "each rank on its own GPU", PASS if distinct else FAIL, f"{len(set(uuids))} devices for {world} ranks"
            )
        )
    ar = figures.get("all_reduce") or {}
    bw = next((v for k, v in ar.items() if k.endswith("gbps")), None)
    figure = (
        f"all_reduce {'busbw' if world > 1 else 'algbw'} {bw:,.1f} GB/s" if bw is not None else "all_reduce -"
    ) + f", {world} rank(s), {'/'.join(backends)}"
    notes = [] if world > 1 else ["single-GPU: multi-rank NCCL not proven"]
    return Outcome(figure, figures, checks, notes)


def judge_train_ddp(ctx: Ctx, step: Step, runs: list[Run]) -> Outcome:
    ms = measurements(step_report(ctx, step, runs), "train")
    total = [m for m in ms if (m.get("details") or {}).get("role") == "data-parallel total"]
    if not total:
        return Outcome(
            "no figure", checks=[Check("data-parallel total", FAIL, note="no 'data-parallel total' measurement")]
        )
    m = total[-1]
    d = m.get("details") or {}
    good, why = _ok(m)
    eff = _num(d.get("scaling_efficiency"))
    uuids = [r.get("uuid") for r in d.get("per_rank") or []]
    checks = [
        Check("data-parallel total", PASS if good else FAIL, f"scaling efficiency {eff:.1%}" if eff else "", why),
        Check(
            "each rank on its own GPU",
            PASS if len(set(uuids)) == len(uuids) == d.get("world_size") else FAIL,
            f"{len(set(uuids))} devices for {d.get('world_size')} ranks",
        ),
    ]
    mfu = _num(_summary(m).get("mfu"))
    return Outcome(
        f"{d.get('world_size')} ranks, scaling {eff:.1%}" if eff else "no scaling figure",
        {"scaling_efficiency": eff, "mfu": mfu, "world_size": d.get("world_size")},
        checks,
    )


def judge_suite(ctx: Ctx, step: Step, runs: list[Run]) -> Outcome:
    summary = _json(runs[0].out()) if runs else None
    report = step_report(ctx, step, runs)
    checks = []
    status = summary.get("status") if isinstance(summary, dict) else None
    checks.append(Check("run complete", PASS if status == "complete" else FAIL, str(status)))
    for g in (summary or {}).get("gates", []) if isinstance(summary, dict) else []:
        checks.append(
            Check(f"gate {g.get('name')}", PASS if g.get("passed") else FAIL, "", str(g.get("message", ""))[:160])
        )
    counts: dict[str, dict[str, int]] = {}
    for m in (report or {}).get("measurements", []):
        c = counts.setdefault(str(m.get("workload")), {})
        c[str(m.get("status"))] = c.get(str(m.get("status")), 0) + 1
    for workload in ("matmul", "membw", "train"):
        c = counts.get(workload, {})
        bad = {k: v for k, v in c.items() if k not in ("ok", "skipped")}
        checks.append(
            Check(
                workload,
                PASS if c.get("ok") and not bad else FAIL,
                ", ".join(f"{v} {k}" for k, v in sorted(c.items())) or "none",
            )
        )
    mamf = {}
    for m in measurements(report, "matmul"):
        if ((m.get("details") or {}).get("search") or {}).get("mamf") and m.get("status") == "ok":
            mamf[(m.get("spec") or {}).get("precision")] = _num(_summary(m).get("tflops_median"))
    if report:
        fixtures = ctx.out / "fixtures"
        fixtures.mkdir(exist_ok=True)
        src = summary.get("report") if isinstance(summary, dict) else None
        if src and Path(src).is_file():
            shutil.copyfile(src, fixtures / "report.json")
        else:
            (fixtures / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    figure = "MAMF " + ", ".join(f"{p} {t:.0f}" for p, t in mamf.items() if t) + " TFLOPS" if mamf else "no MAMF"
    return Outcome(figure, {"status": status, "counts": counts, "mamf_tflops": mamf}, checks)


def judge_challenge(ctx: Ctx, step: Step, runs: list[Run]) -> Outcome:
    by = {r.label.removeprefix(step.name + "-"): r for r in runs}
    issued = "issue" in by and by["issue"].rc == 0

    def why(label: str, r: Run) -> str:
        if r.timed_out:
            return "stopped: no challenge was issued" if not issued and label != "issue" else "timed out"
        return "" if r.rc == 0 else (r.err().strip().splitlines() or [f"exit {r.rc}"])[-1][:160]

    checks = [
        Check(
            f"{label} exit 0",
            PASS if r.rc == 0 and not r.timed_out else FAIL,
            f"{r.seconds:.1f} s",
            why(label, r),
        )
        for label, r in by.items()
    ]
    answer = _json(by["answer"].out()) if "answer" in by else None
    verdict = _json(by["verify"].out()) if "verify" in by else None
    figures: dict[str, Any] = {}
    if isinstance(answer, dict):
        figures["node_gflops"] = _num(answer.get("node_gflops"))
        figures["seconds_to_commit"] = _num(answer.get("seconds_to_commit"))
    if isinstance(verdict, dict):
        fleet = verdict.get("fleet") or {}
        errors = [f for f in verdict.get("findings") or [] if isinstance(f, dict) and f.get("severity") == "error"]
        bound = _num(fleet.get("gflops_lower_bound"))
        figures.update(
            proven_gflops=bound,
            elapsed_s=_num(fleet.get("elapsed_s")),
            verified_flops=fleet.get("verified_flops"),
            findings=verdict.get("findings"),
        )
        checks.append(
            Check(
                "proven bound",
                PASS if bound and not errors else FAIL,
                f"{bound / 1000:.2f} TFLOPS in {fleet.get('elapsed_s')} s" if bound else "none",
                "; ".join(str(f.get("message")) for f in errors)[:200],
            )
        )
    else:
        checks.append(Check("proven bound", FAIL, note="challenge verify printed no JSON verdict"))
    bound = figures.get("proven_gflops")
    figure = (f"proven >= {bound / 1000:.2f} TFLOPS" if bound else "no proven bound") + (
        f"; node's own clock {figures['node_gflops'] / 1000:.1f} TFLOPS" if figures.get("node_gflops") else ""
    )
    return Outcome(figure, figures, checks, list(step.notes))


def judge_verify(ctx: Ctx, step: Step, runs: list[Run]) -> Outcome:
    if not runs or not runs[0].command:
        return Outcome("no reports", checks=[Check("reports to verify", FAIL, note="no report.json was written")])
    data = _json(runs[0].out())
    if not isinstance(data, dict):
        return Outcome("no JSON", checks=[Check("verify printed JSON", FAIL)])
    checks = []
    for path, findings in sorted((data.get("reports") or {}).items()):
        errors = [f for f in findings or [] if isinstance(f, dict) and f.get("severity") == "error"]
        name = str(Path(path).parent.parent.name)
        # an override run's figure is wrong on purpose (float32 on TF32 is above the float32 peak): verify may say so
        expected = name.startswith("tf32-override")
        checks.append(
            Check(
                name,
                (WARN if expected else FAIL) if errors else PASS,
                f"{len(findings or [])} finding(s), {len(errors)} error(s)",
                ("expected of an override run: " if expected and errors else "")
                + "; ".join(f"{f.get('code')}: {f.get('message')}" for f in errors[:2])[:200],
                required=not expected,
            )
        )
    n_ok = sum(c.verdict == PASS for c in checks)
    return Outcome(f"{n_ok}/{len(checks)} reports verified", {"reports": len(checks)}, checks)


# --- the run -----------------------------------------------------------------------------------------------------


def count_gpus(python: str) -> tuple[int, str, str]:
    """(GPUs, how they were counted, nvidia-smi -L output)."""
    smi = ""
    if shutil.which("nvidia-smi"):
        try:
            smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            smi = f"nvidia-smi -L failed: {exc}"
    if os.environ.get("BENCH_CHECK_NGPU"):
        return int(os.environ["BENCH_CHECK_NGPU"]), "BENCH_CHECK_NGPU", smi
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() not in ("", "all"):
        return len([v for v in visible.split(",") if v.strip() and v.strip() != "-1"]), "CUDA_VISIBLE_DEVICES", smi
    listed = [line for line in smi.splitlines() if line.startswith("GPU ")]
    if listed:
        return len(listed), "nvidia-smi -L", smi
    try:
        out = subprocess.run(
            [python, "-c", "import torch; print(torch.cuda.device_count())"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        ).stdout.strip()
        return int(out or 0), "torch.cuda.device_count()", smi
    except (OSError, subprocess.SubprocessError, ValueError):
        return 0, "none found", smi


def challenge_help(bench: list[str], env: dict[str, str]) -> dict[str, str]:
    """Each challenge subcommand's --help text and `keys init`'s (run at once), so the options this bench has are
    used; an empty text where the command does not exist."""

    def one(sub: str) -> str:
        words = ["keys", "init"] if sub == "keys-init" else ["challenge", sub]
        try:
            r = subprocess.run(
                [*bench, *words, "--help"],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
                cwd=REPO,
                check=False,
            )
            return r.stdout if r.returncode == 0 else ""
        except (OSError, subprocess.SubprocessError):
            return ""

    subs = ("issue", "answer", "collect", "verify", "keys-init")
    with concurrent.futures.ThreadPoolExecutor(len(subs)) as pool:
        return dict(zip(subs, pool.map(one, subs)))


def make_context(args: argparse.Namespace) -> Ctx:
    out = Path(args.out_dir).resolve()
    python = os.environ.get("BENCH_CHECK_PYTHON", sys.executable)
    bench = (
        shlex.split(os.environ["BENCH_CHECK_BENCH"]) if os.environ.get("BENCH_CHECK_BENCH") else [python, "-m", "bench"]
    )
    torchrun = (
        shlex.split(os.environ["BENCH_CHECK_TORCHRUN"])
        if os.environ.get("BENCH_CHECK_TORCHRUN")
        else [python, "-m", "torch.distributed.run"]
    )
    tf32_env = {k: os.environ.get(k) for k in TF32_VARS}
    env = {k: v for k, v in os.environ.items() if k not in TF32_VARS}  # the override steps set them on purpose only
    env.update(BENCH_KEY=str(out / "node.pem"), PYTHONUNBUFFERED="1")
    ngpu, source, smi = count_gpus(python)
    (out / "logs" / "nvidia-smi-L.txt").write_text(smi or "(nvidia-smi not found or printed nothing)\n")
    ctx = Ctx(out, bench, torchrun, python, args.device, ngpu, source, env, tf32_env, challenge_help(bench, env))
    ctx.environment = {
        "tf32_env": tf32_env,
        "nvidia_smi_L": smi,
        "ngpu": ngpu,
        "ngpu_source": source,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "python": python,
        "bench": bench,
        "device": args.device,
        "auditor_key_option": {k: _option_help(v, "--auditor-key") is not None for k, v in ctx.challenge_help.items()},
    }
    return ctx


def print_plan(ctx: Ctx, steps: list[Step], deadline: float) -> None:
    print(f"device check: {ctx.ngpu} GPU(s) ({ctx.ngpu_source}); device {ctx.device}; output {ctx.out}")
    print(f"{'step':24} {'budget':>7} {'timeout':>8}  command")
    for s in steps:
        if s.skip:
            print(f"{s.name:24} {'-':>7} {'-':>8}  not run: {s.skip}")
            continue
        cmds = s.shown or [" ".join(shlex.quote(a) for a in s.command or [])]
        envs = " ".join(f"{k}={v}" for k, v in s.env.items())
        print(f"{s.name:24} {s.budget_s:>6.0f}s {s.timeout_s:>7.0f}s  {(envs + ' ') if envs else ''}{cmds[0]}")
        for c in cmds[1:]:
            print(f"{'':42}{c}")
    run = [s for s in steps if not s.skip]
    budget, timeouts = sum(s.budget_s for s in run), sum(s.timeout_s for s in run)
    final = sum(s.timeout_s for s in run if s.final)
    print(
        f"total: {len(run)} steps, budget {budget:.0f} s ({budget / 60:.1f} min), timeouts {timeouts:.0f} s "
        f"({timeouts / 60:.1f} min); capped by the {deadline:.0f} s deadline + {final:.0f} s for the final verify "
        f"= at most {(deadline + final) / 60:.1f} min"
    )


def run_step(ctx: Ctx, step: Step) -> dict[str, Any]:
    record: dict[str, Any] = {
        "name": step.name,
        "what": step.what,
        "required": step.required,
        "budget_s": step.budget_s,
        "timeout_s": step.timeout_s,
        "env": step.env,
        "command": " ".join(step.shown) if step.shown else shlex.join(step.command or []),
    }
    if step.skip:
        return {
            **record,
            "verdict": SKIP,
            "rc": None,
            "seconds": 0.0,
            "figure": step.skip,
            "figures": {},
            "checks": [],
            "notes": [step.skip],
            "logs": [],
        }
    left = ctx.deadline - time.monotonic()
    timeout = step.timeout_s if step.final else min(step.timeout_s, left)
    if timeout < 2:  # the deadline came first: the step says so, and is no failure of what it would have tested
        return {
            **record,
            "verdict": SKIP,
            "rc": None,
            "seconds": 0.0,
            "figure": f"{NOT_RUN_TIME} (the check's deadline was reached)",
            "figures": {},
            "checks": [],
            "notes": [],
            "logs": [],
        }
    print(f"--- {step.name} (timeout {timeout:.0f} s): {step.what}", flush=True)
    t0 = time.monotonic()
    if step.runner:
        runs = step.runner(ctx, step, timeout)
    else:
        runs = [_run(ctx, step.name, step.command or [], {**ctx.env, **step.env}, timeout)]
    seconds = time.monotonic() - t0
    try:
        outcome = step.judge(ctx, step, runs) if step.judge else Outcome()
    except Exception as exc:  # noqa: BLE001 - a judge that cannot read the output is a failed step, never a crashed check
        outcome = Outcome(
            f"could not read the output: {type(exc).__name__}: {exc}",
            checks=[Check("output readable", FAIL, note=f"{type(exc).__name__}: {exc}")],
        )
    rc_problem = (
        _rc_check(runs) if step.runner is not run_challenge else None
    )  # the challenge's judge checks each process
    checks = ([rc_problem] if rc_problem else []) + outcome.checks
    failed = [c for c in checks if c.verdict == FAIL and c.required]
    verdict = FAIL if failed or not runs else PASS
    if timeout < step.timeout_s and any(r.timed_out for r in runs):  # cut short by the deadline, not by its own limit
        verdict = SKIP
        outcome.figure = (
            f"{NOT_RUN_TIME} (stopped at {timeout:.0f} s, the deadline's cut of its {step.timeout_s:.0f} s)"
        )
    rcs = [r.rc for r in runs]
    return {
        **record,
        "verdict": verdict,
        "rc": next((rc for rc in rcs if rc != 0), rcs[0] if rcs else None),
        "timed_out": any(r.timed_out for r in runs),
        "seconds": round(seconds, 2),
        "timeout_used_s": round(timeout, 1),
        "figure": outcome.figure,
        "figures": outcome.figures,
        "checks": [dataclasses.asdict(c) for c in checks],
        "notes": outcome.notes,
        "logs": [
            {
                "label": r.label,
                "command": shlex.join(r.command),
                "rc": r.rc,
                "seconds": round(r.seconds, 2),
                "timed_out": r.timed_out,
                "stdout": str(r.stdout.relative_to(ctx.out)),
                "stderr": str(r.stderr.relative_to(ctx.out)),
            }
            for r in runs
        ],
    }


def setup_record(args: argparse.Namespace, out: Path) -> dict[str, Any] | None:
    if args.setup_rc is None:
        return None
    logs = [{"label": "setup", "stdout": "logs/setup.stdout", "stderr": "logs/setup.stderr"}]
    tail = (_read(out / "logs" / "setup.stderr").strip().splitlines() or [""])[-1][:160]
    return {
        "name": "setup",
        "what": "./run_bench.sh inventory: .venv with bench and torch",
        "required": True,
        "verdict": PASS if args.setup_rc == 0 else FAIL,
        "rc": args.setup_rc,
        "seconds": args.setup_seconds,
        "timeout_s": None,
        "figure": "" if args.setup_rc == 0 else tail,
        "figures": {},
        "checks": [],
        "notes": [],
        "logs": logs,
    }


def write_json(ctx: Ctx, results: list[dict[str, Any]], done: bool) -> None:
    failed = [r["name"] for r in results if r["verdict"] == FAIL and r["required"]]
    doc = {
        "check": "bench device check (tests/gpu/check.py)",
        "utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "complete": done,
        "passed": done and not failed,
        "failed": failed,
        "seconds": round(time.monotonic() - ctx.started, 1),
        "environment": ctx.environment,
        "steps": results,
    }
    tmp = ctx.out / "check.json.tmp"
    tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    tmp.replace(ctx.out / "check.json")


def print_table(results: list[dict[str, Any]]) -> None:
    print()
    print(f"{'STEP':40} {'VERDICT':7} {'RC':>4} {'SECONDS':>8}  FIGURE")
    for r in results:
        rc = "-" if r.get("rc") is None else str(r["rc"])
        secs = f"{r.get('seconds') or 0:.1f}"
        print(f"{r['name']:40} {r['verdict']:7} {rc:>4} {secs:>8}  {r.get('figure', '')}")
        for c in r.get("checks", []):
            text = " ".join(x for x in (c.get("figure"), c.get("note")) if x)
            print(f"  {c['name'][:38]:38} {c['verdict']:7} {'':>4} {'':>8}  {text}")
        for n in r.get("notes", []):
            if r["verdict"] != SKIP:
                print(f"  note: {n}")
    failed = [r["name"] for r in results if r["verdict"] == FAIL and r["required"]]
    print()
    print(
        f"DEVICE CHECK {'FAILED: ' + ', '.join(failed) if failed else 'PASSED'} "
        f"({sum(r['verdict'] == PASS for r in results)} passed, {len(failed)} failed, "
        f"{sum(r['verdict'] == SKIP for r in results)} not run here)"
    )


def bundle(ctx: Ctx, return_dir: Path, archive: bool = True) -> None:
    """At most 8 files into `return_dir` (what a device run can bring back): check.json, the fixtures, and one archive of
    every log and report (without the challenge's revealed products), smaller without reports if it is over 15 MiB.
    Without `archive`, only the small files (after every step, so a run killed from outside still brings them back)."""
    return_dir.mkdir(parents=True, exist_ok=True)
    for src, name in (
        (ctx.out / "check.json", "check.json"),
        (ctx.out / "fixtures" / "inventory.json", "inventory.json"),
        (ctx.out / "fixtures" / "report.json", "report.json"),
    ):
        if src.is_file():
            shutil.copyfile(src, return_dir / name)
    if not archive:
        return

    def small(t: tarfile.TarInfo) -> tarfile.TarInfo | None:  # no history index, no revealed products
        return None if t.name.endswith((".sqlite", ".bin.gz")) or t.size > 8 << 20 else t

    tarball = return_dir / "check-logs.tar.gz"
    for with_reports in (True, False):
        with tarfile.open(tarball, "w:gz") as tar:
            for sub in ("logs", *(c["step"] for c in CHALLENGES), *(("r",) if with_reports else ())):
                if (ctx.out / sub).exists():
                    tar.add(ctx.out / sub, arcname=sub, filter=small)
            tar.add(ctx.out / "check.json", arcname="check.json")
        if tarball.stat().st_size <= 15 << 20:
            break


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out_dir", help="where logs, reports, fixtures and check.json go")
    ap.add_argument("--dry-run", action="store_true", help="print the plan (each step's command, budget and timeout)")
    ap.add_argument("--only", default="", help="comma-separated step names to run (verify always runs last)")
    ap.add_argument("--skip", default="", help="comma-separated step names not to run")
    ap.add_argument("--device", default="cuda:0", help="the GPU the single-device steps use (default cuda:0)")
    ap.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_S,
        help=f"seconds for every step but the final verify (default {DEFAULT_DEADLINE_S:.0f}): a step's "
        "timeout is cut to what is left, and steps past it are not run",
    )
    ap.add_argument("--return-dir", type=Path, help="also copy check.json, the fixtures and a log archive here")
    ap.add_argument("--setup-rc", type=int, help="(run_on_gpu.sh) exit status of the set-up step")
    ap.add_argument("--setup-seconds", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    out = Path(args.out_dir).resolve()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    ctx = make_context(args)
    steps = build_plan(ctx)
    only = {s for s in args.only.split(",") if s}
    skip = {s for s in args.skip.split(",") if s}
    unknown = (only | skip) - {s.name for s in steps}
    if unknown:
        print(
            f"unknown step(s): {', '.join(sorted(unknown))}; steps: {', '.join(s.name for s in steps)}", file=sys.stderr
        )
        return 2
    for s in steps:
        if not s.skip and ((only and s.name not in only and not s.final) or s.name in skip):
            s.skip, s.required = "left out (--only/--skip)", False
    print_plan(ctx, steps, args.deadline)
    if args.dry_run:
        return 0

    ctx.started = time.monotonic()
    ctx.deadline = ctx.started + args.deadline
    results: list[dict[str, Any]] = []
    setup = setup_record(args, out)
    if setup:
        results.append(setup)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # killed from outside: still write the table and what came back
    done = False
    try:
        for step in steps:
            results.append(run_step(ctx, step))
            r = results[-1]
            if r["verdict"] != SKIP:
                print(f"    {r['verdict']} in {r['seconds']:.1f} s: {r['figure']}", flush=True)
            write_json(ctx, results, done=False)
            if args.return_dir:
                bundle(ctx, args.return_dir, archive=False)
        done = True
    except KeyboardInterrupt:
        print("check stopped by a signal: writing what ran", file=sys.stderr, flush=True)
    finally:
        write_json(ctx, results, done=done)
        print_table(results)
        if args.return_dir:
            bundle(ctx, args.return_dir)
    return 1 if not done or any(r["verdict"] == FAIL and r["required"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
