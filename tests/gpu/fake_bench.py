"""A stand-in for `bench` (and torchrun) that answers the device check's commands the way bench does on a GPU, in
milliseconds: JSON on stdout, progress and noise on stderr, a report.json in --results-dir.

Used by test_check.py through BENCH_CHECK_BENCH / BENCH_CHECK_TORCHRUN. What it gets wrong on purpose:
- `membw` crashes (exit 1, a traceback on stderr, nothing on stdout): a failing step must not stop the later ones;
- `matmul --dtype tf32` under NVIDIA_TF32_OVERRIDE=0 is accepted silently: the override check must FAIL it;
- every command writes STDERR_MARK to stderr, which must never reach a JSON output;
- the verb named by FAKE_HANG never ends (and leaves a child running): the step's timeout must end both.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

STDERR_MARK = "FAKE-STDERR-NOISE"
UUIDS = ["GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111", "GPU-cccccccc-2222", "GPU-dddddddd-3333"]


def opt(argv: list[str], name: str, default: str | None = None) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else default


def opts(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


def measurement(
    workload: str,
    spec: dict,
    summary: dict,
    status: str = "ok",
    warnings: list | None = None,
    details: dict | None = None,
    device: int = 0,
) -> dict:
    return {
        "workload": workload,
        "spec": spec,
        "status": status,
        "reason": None,
        "emulated": False,
        "summary": summary,
        "validity": {"passed": status == "ok"},
        "warnings": warnings or [],
        "details": details or {},
        "device": {"id": f"cuda:{device}", "uuid": UUIDS[device]},
        "peak": {"tflops": 989.4},
        "samples_s": [0.001, 0.001],
    }


TF32_VARS = ("NVIDIA_TF32_OVERRIDE", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE")


def torch_version() -> str:
    """The torch this fake pretends to be (FAKE_TORCH_VERSION, default 2.13.0)."""
    return os.environ.get("FAKE_TORCH_VERSION", "2.13.0")


def fp32_path(dtype: str) -> str:
    """What bench's probe records for `dtype` under the environment, as torch_version() treats the variables (bench
    sets the switch explicitly: the variable wins over it only before 2.9)."""
    if os.environ.get("NVIDIA_TF32_OVERRIDE") == "0":
        return "ieee"
    if dtype == "tf32":
        return "tf32"
    major, minor = (int(x) for x in torch_version().split(".")[:2])
    forced = os.environ.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE") == "1"
    return "tf32" if forced and (major, minor) < (2, 9) else "ieee"


def report(argv: list[str], ms: list[dict]) -> dict:
    doc = {"schema_version": 1, "kind": "node", "measurements": ms,
           "inventory": {"host": {"torch_version": torch_version()}}, "signature": {}}  # fmt: skip
    rdir = opt(argv, "--results-dir")
    if rdir:
        path = Path(rdir) / f"run-{os.getpid()}" / "report.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))
        doc["_path"] = str(path)
    return doc


def matmul(argv: list[str]) -> int:
    ms = []
    for dtype in opts(argv, "--dtype"):
        if "--search" in argv:
            for i, t in enumerate((700.0, 790.0)):
                ms.append(
                    measurement(
                        "matmul",
                        {"m": 4096 * (i + 1), "n": 4096, "k": 8192, "precision": dtype},
                        {"tflops_median": t},
                        details={"search": {"role": "candidate"}},
                    )
                )
            ms.append(
                measurement(
                    "matmul",
                    {"m": 8192, "n": 4096, "k": 8192, "precision": dtype},
                    {"tflops_median": 800.0, "efficiency": 0.81},
                    details={"search": {"role": "final", "mamf": True}},
                )
            )
            ms.append(
                measurement(
                    "matmul",
                    {"m": 8192, "n": 4096, "k": 8192, "precision": dtype},
                    {"tflops_median": 780.0},
                    details={"search": {"role": "msmf"}, "msmf": {"tflops": 770.0}},
                )
            )
            continue
        warn, status, details = [], "ok", {}
        if dtype in ("float32", "tf32"):
            path = fp32_path(dtype)
            details = {"fp32_path": path, "tf32_environment": {k: os.environ[k] for k in TF32_VARS if k in os.environ}}
            if dtype == "float32" and path == "tf32":  # bench flags it; 'tf32' run as IEEE is accepted on purpose
                warn, status = (
                    [{"code": "tf32-override", "message": "float32 ran on TF32", "hint": "unset it"}],
                    "invalid",
                )
            if (
                os.environ.get("FAKE_REJECT_IEEE")
                and dtype == "float32"
                and path == "ieee"
                and os.environ.get(TF32_VARS[1])
            ):
                warn, status = [{"code": "tf32-override", "message": "variable set", "hint": "unset it"}], "invalid"
        modes = [True, False] if dtype == "float8_e4m3" else [None]
        for shape in opts(argv, "--shape"):
            m, n, k = (int(x) for x in shape.split(","))
            for mode in modes:
                spec = {"m": m, "n": n, "k": k, "precision": dtype, **({} if mode is None else {"fast_accum": mode})}
                ms.append(
                    measurement(
                        "matmul",
                        spec,
                        {"tflops_median": 1000.0 if mode else 500.0, "efficiency": 0.5},
                        status=status,
                        warnings=warn,
                        details=details,
                    )
                )
    print(json.dumps(report(argv, ms)))
    return 0


def train(argv: list[str], world: int, rank: int) -> int:
    if world > 1:
        if rank:
            return 0
        ranks = [{"rank": r, "device": f"cuda:{r}", "uuid": UUIDS[r], "status": "ok"} for r in range(world)]
        ms = [
            measurement(
                "train",
                {"model": "gpt", "preset": "small", "world_size": world},
                {"mfu": 0.3},
                details={
                    "role": "data-parallel total",
                    "world_size": world,
                    "per_rank": ranks,
                    "scaling_efficiency": 0.95,
                },
            )
        ]
        print(json.dumps(report(argv, ms)))
        return 0
    compiled = "--compile" in argv
    if compiled:
        print(
            "V1128 torch/_dynamo/guards.py] [__recompiles] Recompiling function forward in model.py:10", file=sys.stderr
        )
    ms = [
        measurement("train", {"model": model, "preset": preset, "compile": compiled}, {"mfu": 0.42, "items_per_s": 1e5})
        for model in opts(argv, "--model")
        for preset in opts(argv, "--preset")
    ]
    print(json.dumps(report(argv, ms)))
    return 0


def comm(argv: list[str], world: int, rank: int) -> int:
    if rank:
        return 0
    per_rank = [{"rank": r, "uuid": UUIDS[r]} for r in range(world)]
    ms = [
        measurement(
            "comm",
            {
                "op": op,
                "bytes": b,
                "backend": "nccl",
                "world_size": world,
                "ops_per_sample": int(opt(argv, "--iterations", "20")),
            },
            {"busbw_gbps": 100.0 * (world > 1), "algbw_gbps": 50.0},
            details={"per_rank": per_rank},
        )
        for op in ("all_reduce", "all_gather")
        for b in (8, 268435456)
    ]
    print(json.dumps(report(argv, ms)))
    return 0


def wait_for(path: Path, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists():
            return True
        time.sleep(0.02)
    return path.exists()


def challenge(argv: list[str]) -> int:
    sub = argv[1]
    if "--help" in argv:
        key = "  --key FILE  Private signing key (default $BENCH_KEY)."
        if os.environ.get("FAKE_AUDITOR_KEY") and sub in ("issue", "collect", "verify"):
            key = (
                "  --auditor-key FILE  The auditor's private key (never a node's).\n  --trusted-keys FILE  Nodes' keys."
            )
        elif os.environ.get("FAKE_AUDITOR_KEY"):
            key += "\n  --trusted-keys FILE  The auditor's key id or public key."
        print(f"Usage: bench challenge {sub} [OPTIONS]\n\nOptions:\n{key}\n  --json\n  -h, --help  Show this message.")
        return 0
    if sub == "issue":
        Path(opt(argv, "-o")).write_text(json.dumps({"nonce": "ab" * 32, "n": int(opt(argv, "--size"))}))
        print(json.dumps({"nonce": "ab" * 32}))
        return 0
    if sub == "answer":
        ch, drop = Path(argv[2]), Path(opt(argv, "--drop"))
        print("waiting for the challenge", file=sys.stderr, flush=True)
        if not wait_for(ch, float(opt(argv, "--wait", "0"))):
            return 1
        (drop / "node-abab").mkdir(parents=True, exist_ok=True)
        (drop / "node-abab" / "0.bin.gz").write_bytes(b"\0" * 1024)  # a revealed product: the check removes it
        (drop / "node-abab.commit.json").write_text("{}")
        print(json.dumps({"node": "node", "products": 2, "node_gflops": 600000.0, "seconds_to_commit": 0.05}))
        return 0
    if sub == "collect":
        if not wait_for(Path(opt(argv, "--challenge")), float(opt(argv, "--wait", "0"))):
            return 1
        if not wait_for(Path(argv[2]) / "node-abab.commit.json", 20):
            return 1
        Path(opt(argv, "-o")).write_text(json.dumps({"receipts": [{"file": "node-abab.commit.json"}]}))
        with open(os.environ["FAKE_ARGV_LOG"], "a") as log:
            log.write(json.dumps(argv) + "\n")
        return 0
    if sub == "verify":
        with open(os.environ["FAKE_ARGV_LOG"], "a") as log:
            log.write(json.dumps(argv) + "\n")
        print(
            json.dumps(
                {
                    "findings": [],
                    "fleet": {"gflops_lower_bound": 250000.0, "elapsed_s": 0.6, "verified_flops": 2 * 2 * 4096**3},
                }
            )
        )
        return 0
    return 2


def main() -> int:
    argv = sys.argv[1:]
    print(f"{STDERR_MARK} {{not json: progress for {' '.join(argv[:2])}", file=sys.stderr)
    world, rank = 1, 0
    if any(a.startswith("--nproc_per_node") for a in argv):  # called as torchrun ... -m bench VERB ...
        world = int(next(a for a in argv if a.startswith("--nproc_per_node")).split("=")[1])
        argv = argv[argv.index("-m") + 2 :]
    verb = argv[0] if argv else ""
    if verb and verb == os.environ.get("FAKE_HANG"):  # a step that never ends, with a child (as torchrun has)
        import subprocess

        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        Path(os.environ["FAKE_HANG_PID"]).write_text(str(child.pid))
        time.sleep(120)
    if verb == "inventory":
        print(
            json.dumps(
                {
                    "host": {"hostname": "gpu-node", "torch": "2.11.0+cu130"},
                    "nvml": {
                        "available": True,
                        "driver_version": "580.159.03",
                        "gpus": [{"name": "NVIDIA H200", "uuid": UUIDS[i]} for i in range(world)],
                    },
                }
            )
        )
        return 0
    if verb == "matmul":
        return matmul(argv)
    if verb == "train":
        return train(argv, world, rank)
    if verb == "comm":
        return comm(argv, world, rank)
    if verb == "membw":
        print("Traceback (most recent call last):\nRuntimeError: CUDA error: an illegal memory access", file=sys.stderr)
        return 1
    if verb == "run":
        ms = [
            measurement(
                "matmul",
                {"m": 8192, "n": 8192, "k": 8192, "precision": "bfloat16"},
                {"tflops_median": 750.0},
                details={"search": {"role": "final", "mamf": True}},
            ),
            measurement("membw", {"kernel": "triad"}, {"gbps_median": 4000.0}),
            measurement("train", {"model": "gpt", "preset": "small"}, {"mfu": 0.3}),
        ]
        doc = report(argv, ms)
        print(json.dumps({"run_id": "run", "report": doc["_path"], "status": "complete", "gates": [], "outputs": {}}))
        return 0
    if verb == "challenge":
        return challenge(argv)
    if verb == "keys" and argv[1:2] == ["init"]:  # exists only in the newer protocol (FAKE_AUDITOR_KEY)
        if not os.environ.get("FAKE_AUDITOR_KEY"):
            return 2
        if "--help" in argv:
            print("Usage: bench keys init [OPTIONS]\n\nOptions:\n  --key FILE\n  --force")
            return 0
        key = Path(opt(argv, "--key"))
        key.write_text("-----BEGIN PRIVATE KEY-----\nfake\n-----END PRIVATE KEY-----\n")
        der = bytes(12) + bytes(range(32))  # an SPKI header's length, then the raw 32-byte key
        pub = __import__("base64").b64encode(der).decode()
        Path(f"{key}.pub").write_text(f"-----BEGIN PUBLIC KEY-----\n{pub}\n-----END PUBLIC KEY-----\n")
        return 0
    if verb == "verify":
        paths = [a for a in argv[1:] if a.endswith("report.json")]
        print(
            json.dumps(
                {
                    "reports": {
                        p: [{"code": "unknown-key", "severity": "warning", "message": "no trust list"}] for p in paths
                    }
                }
            )
        )
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
