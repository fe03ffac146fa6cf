"""The launch examples under configs/ name the same bench commands that CI runs for real."""

from pathlib import Path

import yaml

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_k8s_indexed_job_runs_the_node_benchmark_then_comm_over_torchrun():
    service, job = list(yaml.safe_load_all((CONFIGS / "k8s" / "bench-job.yaml").read_text()))
    assert service["kind"] == "Service" and service["spec"]["clusterIP"] == "None"
    spec = job["spec"]
    assert job["kind"] == "Job" and spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"]  # every pod at once, or the collectives never start
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"]
    (container,) = pod["containers"]
    script = container["args"][0]
    assert "bench matmul" in script and '"$(which bench)" comm' in script
    assert "--node_rank=\"$JOB_COMPLETION_INDEX\"" in script and "rdzv-backend=c10d" in script
    assert container["image"] == "${BENCH_IMAGE}"
    env = {e["name"] for e in container["env"]}
    assert {"NODES", "GPUS_PER_NODE", "RESULTS"} <= env


def test_sbatch_script_runs_matmul_per_node_then_comm():
    text = (CONFIGS / "slurm" / "bench.sbatch").read_text()
    assert "--ntasks-per-node=1 $BENCH matmul" in text and "srun $BENCH comm" in text


def test_gpu_smoke_suite_loads_and_runs_every_workload_briefly_on_every_gpu():
    """configs/smoke-gpu.toml is what the device check (tests/gpu/check.py) runs on a GPU: it must load through the same
    schema `bench run` uses, cover every workload and the tensor-core precisions, and stay short."""
    from bench import suite

    config = suite.load(CONFIGS / "smoke-gpu.toml")
    assert config["suite"]["name"] == "smoke-gpu"
    assert config["suite"]["devices"] == ["all"]
    assert config["suite"]["workloads"] == list(suite.WORKLOADS)
    mm = config["matmul"]
    assert mm["search"] == "auto"
    assert set(mm["precisions"]) == {"bfloat16", "float16", "float8_e4m3", "float32", "tf32"}
    # short: search budgets plus MSMF windows under a minute (bench adds a 20 s clock settle before each GPU search)
    assert len(mm["precisions"]) * (mm["budget_s"] + mm["window_s"]) <= 60
    assert config["train"]["presets"] == ["small"] and config["train"]["precision"] == "bfloat16"
    assert config["membw"]["array_mib"] >= 256  # large enough that the GPU's L2 (50-60 MB) does not hold the arrays
    assert config["comm"]["max_bytes"] <= 1 << 30 and config["comm"]["timeout_s"] <= 300
    assert set(config["gates"]["fail_below"]) <= set(mm["precisions"])
