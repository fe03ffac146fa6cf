"""bench train through the CLI: one process, torchrun with two gloo ranks, and ranks that never join or die."""

import json
import subprocess
import time

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.model import intake
from bench.report import verify as v
from bench.report.store import load_report
from tests.cli.ranks import BIN, failed_cleanly, free_port, kill_rank_1, launch_rank


def test_single_process_train_json(tmp_path):
    res = CliRunner().invoke(main, ["train", "--device", "cpu", "--model", "mlp", "--preset", "tiny", "--steps", "20",
                                    "--results-dir", str(tmp_path), "--json", "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output
    (m,) = json.loads(res.stdout)["measurements"]
    assert m["workload"] == "train" and m["status"] == "ok" and m["summary"]["items_per_s"] > 0
    (path,) = tmp_path.glob("*/report.json")
    assert not v.errors(v.verify_node_report(intake.read_json(path).data))
    shown = CliRunner().invoke(main, ["report", str(path)])
    assert shown.exit_code == 0 and "tokens|samples/s" in shown.output and "M x N x K" not in shown.output


def test_train_bad_device_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(main, ["train", "--device", "tpu", "--results-dir", str(tmp_path)])
    assert res.exit_code == 2 and "valid here: cpu" in res.output


@pytest.mark.skipif(not (BIN / "torchrun").exists(), reason="torchrun not installed next to this Python")
def test_torchrun_two_ranks_write_one_report_with_scaling(tmp_path):
    cmd = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", str(BIN / "bench"), "train", "--device", "cpu",
           "--model", "mlp", "--preset", "tiny", "--steps", "20", "--timeout", "60", "--results-dir", str(tmp_path)]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    (path,) = tmp_path.glob("*/report.json")  # one report, from rank 0
    rep = load_report(path)
    roles = [m.details.get("role") or f"rank {m.details.get('rank')}" for m in rep.measurements]
    assert roles == ["single-rank baseline", "rank 0", "rank 1", "data-parallel total"]
    total = rep.measurements[-1]
    assert total.spec["world_size"] == 2 and total.details["scaling_efficiency"] > 0
    assert [r["rank"] for r in total.details["per_rank"]] == [0, 1]
    assert total.samples_s == [max(a, b) for a, b in zip(rep.measurements[1].samples_s, rep.measurements[2].samples_s)]
    assert not v.errors(v.verify_node_report(intake.read_json(path).data))
    assert "data-parallel total" in out.stdout


TRAIN = ["train", "--device", "cpu", "--model", "mlp", "--preset", "tiny", "--quiet"]


def test_a_rank_that_never_joins_fails_the_others_within_the_timeout(tmp_path):
    start = time.monotonic()
    proc = launch_rank(0, free_port(), [*TRAIN, "--results-dir", str(tmp_path), "--timeout", "4"])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "could not join 2 ranks" in err and time.monotonic() - start < 45


def test_a_rank_that_dies_fails_the_others_within_the_timeout(tmp_path):
    # after 4 s both have joined; rank 0 measures its single-rank baseline while rank 1 waits for it
    code, err, seconds = kill_rank_1([*TRAIN, "--results-dir", str(tmp_path), "--timeout", "8", "--steps", "1000"], 4)
    assert failed_cleanly(code, err)
    assert seconds < 60  # the rest of the baseline, then at most the timeout


@pytest.mark.parametrize(
    "args, message",
    [(["--preset", "huge"], "'tiny', 'small', 'gpt2-124m', '1b'"), (["--dtype", "float16"], "'float32', 'bfloat16'"),
     (["--model", "cnn"], "'gpt', 'mlp'"), (["--steps", "0"], "x>=1")],
)  # fmt: skip
def test_train_bad_options_exit_2(tmp_path, args, message):
    res = CliRunner().invoke(main, ["train", "--device", "cpu", "--results-dir", str(tmp_path), *args])
    assert res.exit_code == 2 and message in res.output
