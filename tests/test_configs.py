"""The launch examples under configs/ name the same bench commands that CI runs for real."""

import re
import shlex
from pathlib import Path

import yaml

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


#: Field names of the Kubernetes objects the manifest uses (API reference, batch/v1 and core/v1): a misspelt field is
#: silently dropped by `kubectl apply` without --validate=strict, so the test holds the manifest to these.
K8S_FIELDS = {
    "object": {"apiVersion", "kind", "metadata", "spec"},
    "metadata": {"name", "namespace", "labels", "annotations"},
    "service.spec": {"clusterIP", "selector", "ports", "type"},
    "port": {"name", "port", "targetPort", "protocol"},
    "job.spec": {"completionMode", "completions", "parallelism", "backoffLimit", "template", "ttlSecondsAfterFinished",
                 "activeDeadlineSeconds"},
    "template": {"metadata", "spec"},
    "pod.spec": {"subdomain", "restartPolicy", "containers", "volumes", "nodeSelector", "tolerations", "hostname"},
    "container": {"name", "image", "env", "command", "args", "resources", "volumeMounts", "imagePullPolicy"},
    "env": {"name", "value", "valueFrom"},
    "resources": {"limits", "requests"},
    "volumeMount": {"name", "mountPath", "readOnly", "subPath"},
    "volume": {"name", "persistentVolumeClaim", "emptyDir", "hostPath", "configMap"},
    "persistentVolumeClaim": {"claimName", "readOnly"},
    "emptyDir": {"medium", "sizeLimit"},
}  # fmt: skip


def _fields(obj: dict, kind: str) -> None:
    unknown = set(obj) - K8S_FIELDS[kind]
    assert not unknown, f"{kind}: unknown Kubernetes fields {unknown}"


def test_k8s_manifest_uses_only_kubernetes_field_names():
    service, job = list(yaml.safe_load_all((CONFIGS / "k8s" / "bench-job.yaml").read_text()))
    for obj in (service, job):
        _fields(obj, "object")
        _fields(obj["metadata"], "metadata")
    _fields(service["spec"], "service.spec")
    for port in service["spec"]["ports"]:
        _fields(port, "port")
    _fields(job["spec"], "job.spec")
    _fields(job["spec"]["template"], "template")
    pod = job["spec"]["template"]["spec"]
    _fields(pod, "pod.spec")
    for c in pod["containers"]:
        _fields(c, "container")
        _fields(c["resources"], "resources")
        for e in c["env"]:
            _fields(e, "env")
        for mount in c["volumeMounts"]:
            _fields(mount, "volumeMount")
    for vol in pod["volumes"]:
        _fields(vol, "volume")
        for kind in ("persistentVolumeClaim", "emptyDir"):
            if kind in vol:
                _fields(vol[kind], kind)


def test_k8s_indexed_job_runs_the_node_suite_then_comm_over_torchrun():
    service, job = list(yaml.safe_load_all((CONFIGS / "k8s" / "bench-job.yaml").read_text()))
    assert service["kind"] == "Service" and service["spec"]["clusterIP"] == "None"
    spec = job["spec"]
    assert job["kind"] == "Job" and spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"]  # every pod at once, or the collectives never start
    pod = spec["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"]
    (container,) = pod["containers"]
    script = container["args"][0]
    assert "bench run --config /opt/bench/configs/node.toml" in script and '"$(which bench)" comm' in script
    assert '--node_rank="$JOB_COMPLETION_INDEX"' in script and "rdzv-backend=c10d" in script
    # the rendezvous waits for pods whose node suites ran longer: torchrun's own parser reads the join timeout
    from torch.distributed.run import get_args_parser

    line = script.split("torchrun ", 1)[1].split('"$(which bench)"')[0].replace("\\\n", " ")
    for name, value in {"$NODES": "4", "$GPUS_PER_NODE": "8", "$JOB_COMPLETION_INDEX": "0"}.items():
        line = line.replace(name, value)  # what the pod's shell substitutes
    args = get_args_parser().parse_args([*shlex.split(line), "bench"])
    conf = dict(kv.split("=") for kv in args.rdzv_conf.split(",") if kv)
    assert int(conf["join_timeout"]) >= 1800, args.rdzv_conf
    assert "${" not in container["image"]  # kubectl substitutes no variables: the image is set by kustomize
    env = {e["name"] for e in container["env"]}
    assert {"NODES", "GPUS_PER_NODE", "BENCH_RESULTS_DIR"} <= env
    # /dev/shm as a memory volume: NCCL and DataLoader workers need more than the container default of 64 MiB
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    (shm,) = [v for v in pod["volumes"] if v["name"] == mounts["/dev/shm"]]
    assert shm["emptyDir"]["medium"] == "Memory"


def test_kustomization_sets_the_job_s_image_and_the_dockerfile_builds_it():
    kust = yaml.safe_load((CONFIGS / "k8s" / "kustomization.yaml").read_text())
    assert kust["kind"] == "Kustomization" and kust["resources"] == ["bench-job.yaml"]
    _, job = list(yaml.safe_load_all((CONFIGS / "k8s" / kust["resources"][0]).read_text()))
    (container,) = job["spec"]["template"]["spec"]["containers"]
    (image,) = kust["images"]
    assert image["name"] == container["image"] and image["newName"] and image["newTag"]
    dockerfile = (CONFIGS.parent / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "\nFROM python:3.1" in dockerfile
    assert "COPY configs ./configs" in dockerfile and "WORKDIR /opt/bench" in dockerfile  # the Job's --config path
    assert "RUN pip install ." in dockerfile


def test_sbatch_runs_the_node_suite_exclusively():
    text = (CONFIGS / "slurm" / "bench.sbatch").read_text()
    assert "#SBATCH --exclusive" in text
    assert 'srun $BENCH run --config "$CONFIG"' in text and "configs/node.toml" in text


def test_github_workflow_has_the_permissions_its_junit_reporter_needs():
    wf = yaml.safe_load((CONFIGS / "ci" / "github-actions.yml").read_text())
    assert wf["permissions"] == {"contents": "read", "checks": "write", "pull-requests": "write"}
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as True
    assert on == ["push", "pull_request"]
    (job,) = wf["jobs"].values()
    assert {"runs-on", "steps"} <= set(job)
    uses = [s.get("uses", "") for s in job["steps"]]
    assert any(u.startswith("mikepenz/action-junit-report") for u in uses)
    runs = " ".join(s.get("run", "") for s in job["steps"])
    assert "--junit bench-junit.xml" in runs and "run --config configs/smoke-cpu.toml" in runs
    (report,) = [s for s in job["steps"] if s.get("uses", "").startswith("mikepenz/")]
    assert report["with"]["report_paths"] == "bench-junit.xml"


def test_gpu_smoke_suite_loads_and_runs_every_workload_briefly_on_every_gpu():
    """configs/smoke-gpu.toml is what the device check (tests/gpu/check.py) runs on a GPU: it must load through the same
    schema `bench run` uses, cover every workload and the tensor-core precisions, and stay short."""
    from bench import suite

    config = suite.load(CONFIGS / "smoke-gpu.toml")
    assert config["suite"]["name"] == "smoke-gpu"
    assert config["suite"]["devices"] == ["all"]
    assert config["suite"]["workloads"] == list(suite.workload_names())
    mm = config["matmul"]
    assert mm["search"] == "auto"
    assert set(mm["precisions"]) == {"bfloat16", "float16", "float8_e4m3", "float32", "tf32"}
    # short: search budgets plus MSMF windows under a minute (bench adds a 20 s clock settle before each GPU search)
    assert len(mm["precisions"]) * (mm["budget_s"] + mm["window_s"]) <= 60
    assert config["train"]["presets"] == ["small"] and config["train"]["precision"] == "bfloat16"
    assert config["membw"]["array_mib"] >= 256  # large enough that the GPU's L2 (50-60 MB) does not hold the arrays
    assert config["comm"]["max_bytes"] <= 1 << 30 and config["comm"]["timeout_s"] <= 300
    assert set(config["gates"]["fail_below"]) <= set(mm["precisions"])


def test_the_configuration_doc_lists_every_key_exactly_as_describe_prints_it():
    from bench import suite

    text = (CONFIGS.parent / "docs" / "configuration.md").read_text()
    block = re.search(r"^```text\n(\[suite\].*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    assert block, "docs/configuration.md shows no key block"
    assert block.group(1).strip() == suite.describe().strip()
