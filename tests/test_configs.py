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
