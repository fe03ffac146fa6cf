"""A killed parent loses nothing that finished (issue 22 item 1): `bench recover RUN_DIR` folds what the lanes' workers
spooled, and the parent never appended, into the run's signed report, closed as interrupted."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench import runner
from bench.cli import main
from bench.measure.sampling import Policy
from bench.model import intake, keys
from bench.report import verify as v
from bench.workloads import matmul as mm
from tests.fakes.cuda import Props
from tests.test_runner import SPEC

ROOT = Path(__file__).parent.parent
#: two fake GPUs at 10 GFLOP/s: a 32^3 product takes 6.6 us, and the 1024^3 product a measurement ends with 0.2 s
#: (tests.test_runner.FAST's rate, 20 ms a product, puts it 655 s ahead on the stream: a lane's next measurement
#: would wait that long)
FAKE = {"count": 2, "props": Props(L2_cache_size=4096), "flops_per_s": 1e10}
#: 50 samples a measurement: three fit in the pipe to a parent that stopped reading (at 10,000 a worker's second send
#: waits for the parent, as it should)
FEW = Policy(budget_s=0.2, min_iterations=5, max_iterations=50, max_warmup_s=0.05)


def _three_then_wait(f):
    """A lane that finishes three measurements quickly, then a long search the kill interrupts."""
    for _ in range(3):
        yield mm.run(SPEC, f, FEW)
    time.sleep(300)


def _stall_after_first(m, _seen=[]):  # noqa: B006 - the parent's state across calls, in its own process
    """The parent saves the first measurement, then stalls (a slow disk, a stopped process) while the workers go on."""
    _seen.append(m)
    time.sleep(600)


_PARENT = """
import functools, pathlib, sys
from dataclasses import asdict
import pytest
from bench import runner
from bench.hardware import devices
from bench.model import keys
from bench.report.store import ReportWriter
from tests.fakes.cuda import FakeCuda, install_in_worker
from tests.report.synthetic import report
from tests.test_recover import FAKE, _stall_after_first, _three_then_wait

folder, key = pathlib.Path(sys.argv[1]), keys.load(pathlib.Path(sys.argv[2]))
FakeCuda(**FAKE).install(pytest.MonkeyPatch())
gpus = [devices.facts("cuda:0"), devices.facts("cuda:1")]
r = report([], end=None)
r.inventory["nvml"]["gpus"] = [{"index": i, "uuid": f.uuid} for i, f in enumerate(gpus)]
steps = [runner.Step(f.id, functools.partial(_three_then_wait, f), "matmul", asdict(f), f.id) for f in gpus]
runner.execute(ReportWriter(r, folder, key), steps, on_measurement=_stall_after_first,
               worker_init=functools.partial(install_in_worker, **FAKE))
"""


def _spool_lines(folder: Path) -> list[int]:
    spools = folder / ".spool"
    return (
        sorted(p.read_bytes().count(b"\n") for p in spools.glob("lanes-run-a-fp-a-rank*.jsonl"))
        if spools.exists()
        else []
    )


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads /proc")
def test_a_sigkilled_parents_spools_reach_its_signed_report(tmp_path):
    """SIGKILL of a parent that saved one measurement while its two workers spooled three each: bench recover appends
    the five missing ones (signed by the node key, marked recovered) and an interrupted end record, cutting a torn last
    line off; other runs' and hosts' spools, a line that does not parse and a foreign device are left out; bench
    verify takes the result as a signed partial report. A second recover adds nothing."""
    key_path = tmp_path / "node.pem"
    keys.create(key_path)
    folder = tmp_path / "run"
    parent = subprocess.Popen([sys.executable, "-c", _PARENT, str(folder), str(key_path)], cwd=ROOT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and _spool_lines(folder) != [3, 3]:
        time.sleep(0.2)
    parent.kill()
    parent.wait()
    assert _spool_lines(folder) == [3, 3]
    before = intake.read_json(folder / "report.json").data
    assert len(before["measurements"]) == 1 and before["end_utc"] is None  # the parent saved one of six
    spooled = [
        json.loads(line) for p in sorted((folder / ".spool").glob("*.jsonl")) for line in p.read_text().splitlines()
    ]
    # what must be left out: another run's and another host's spools, a line that does not parse, a foreign device
    runner.lane_spool(folder, "run-b", "fp-a", 0).path.write_bytes(json.dumps(spooled[0]).encode() + b"\n")
    runner.lane_spool(folder, "run-a", "fp-b", 0).path.write_bytes(json.dumps(spooled[1]).encode() + b"\n")
    foreign = {**spooled[2], "device": {**spooled[2]["device"], "uuid": "GPU-elsewhere"}}
    with open(runner.lane_spool(folder, "run-a", "fp-a", 0).path, "ab") as fh:
        fh.write(b'{"workload": "matmul", "not": "a measurement"}\n' + json.dumps(foreign).encode() + b"\n")
    with open(folder / "report.json", "ab") as fh:
        fh.write(b'{"record":{"details":{"cut')  # a SIGKILL in the middle of an append
    out = CliRunner().invoke(main, ["recover", str(folder), "--key", str(key_path), "--json"])
    assert out.exit_code == 0, out.output
    done = json.loads(out.stdout)
    assert (done["added"], done["held"], done["torn_bytes"]) == (5, 1, len(b'{"record":{"details":{"cut'))
    assert len(done["ignored"]) == 2 and len(done["refused"]) == 2, done
    data = intake.read_json(folder / "report.json").data
    findings = v.verify_node_report(data)
    assert not v.errors(findings) and "partial" in {f.code for f in findings}, v.errors(findings)
    assert data["interrupted"] and data["end_utc"] and "torn_bytes" not in data
    assert data["signature"]["key_id"] == keys.key_id(keys.raw_public(keys.load(key_path).public_key()))
    got = data["measurements"]
    assert sorted(m["samples_sha256"] for m in got) == sorted(s["samples_sha256"] for s in spooled)
    assert sum("recovered" in m["details"] for m in got) == 5 and "recovered" not in got[0]["details"]
    assert {m["device"]["uuid"] for m in got} == {g["uuid"] for g in data["inventory"]["nvml"]["gpus"]}
    again = CliRunner().invoke(main, ["recover", str(folder), "--key", str(key_path), "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["added"] == 0 and json.loads(again.stdout)["ended"]
    assert len(intake.read_json(folder / "report.json").data["measurements"]) == 6
    verify = CliRunner().invoke(main, ["verify", str(folder / "report.json")])
    assert "partial" in verify.output, verify.output


def test_recover_refuses_a_report_it_cannot_extend(tmp_path):
    """Another key, a report whose signature does not hold: one line, exit 1, the file untouched."""
    from bench.report.store import ReportWriter
    from tests.report.synthetic import report

    mine, other = tmp_path / "mine.pem", tmp_path / "other.pem"
    w = ReportWriter(report([], end=None), tmp_path / "run", keys.create(mine))
    w.close()
    keys.create(other)
    raw = w.path.read_bytes()
    out = CliRunner().invoke(main, ["recover", str(w.path.parent), "--key", str(other)])
    assert out.exit_code == 1 and "not by this key" in out.output and w.path.read_bytes() == raw
    w.path.write_bytes(raw.replace(b"run-a", b"run-b"))
    out = CliRunner().invoke(main, ["recover", str(w.path.parent), "--key", str(mine)])
    assert out.exit_code == 1 and "signature" in out.output and len(out.output.strip().splitlines()) == 1
