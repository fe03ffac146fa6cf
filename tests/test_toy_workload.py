"""A new workload is one module: this one defines "toy" (a descriptor and a step that times a real operation and keeps
its raw samples) and, with no edit anywhere in bench, gets what every workload gets from its descriptor: a suite plans
it (bench.plans), a signed report holds it, a table row, a Prometheus series, a plot on the HTML page, a JUnit case
and a baseline regression gate, and bench verify re-derives its figures from its raw samples (a signed report
verifies; a tampered one, or one re-signed with a changed sample, fails).

The toy sums a float64 array (numpy, real work on this CPU): its work is the bytes read per iteration, its figure the
read bandwidth at the median iteration, computed from the raw samples the same way when it is measured and when it is
verified.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import plans, registry, runner, suite
from bench.cli import main
from bench.figures import Unit
from bench.hardware import devices, inventory
from bench.model.metrics import Metric, device_labels
from bench.model.reports import Measurement, NodeReport, utc_now
from bench.model.tables import Grid, num
from bench.report import export, gates, html, plots, render
from bench.report.store import ReportWriter, load_report

NAME = "toy"

# --- the workload: everything below this line up to the tests is what a new workload writes -------------------------


def summary(m: Measurement) -> dict[str, Any]:
    """Read bandwidth at the median iteration (GB/s = 1e9 bytes/s), from the raw samples alone."""
    median = statistics.median(m.samples_s)
    return {"median_s": median, "gbps_median": m.work_per_iteration / median / 1e9}


def work(spec: dict[str, Any]) -> int:
    """Bytes read per iteration: the array's float64 elements."""
    return int(spec["elements"]) * 8


def metrics(m: Measurement) -> list[Metric]:
    labels = {**device_labels(m), "elements": str(m.spec.get("elements"))}
    return [Metric("toy_gbps", labels, (m.summary or {}).get("gbps_median", 0.0), "GB/s", NAME, m.status,
                   samples_s=tuple(m.samples_s))]  # fmt: skip


def grids(measurements: list[Measurement], every: bool = False) -> list[Grid]:
    grid = Grid("toy: array sum", ["device", "elements", "GB/s", "samples"], numeric={"GB/s", "samples"})
    for m in measurements:
        grid.add([m.device.get("id"), m.spec.get("elements"), num((m.summary or {}).get("gbps_median")),
                  len(m.samples_s)])  # fmt: skip
    return [grid]


def measure(elements: int, device: devices.DeviceFacts, iterations: int) -> Measurement:
    """Sum the array `iterations` times, each timed on its own (perf_counter); checked against the exact sum."""
    data = np.arange(elements, dtype=np.float64)
    start = utc_now()
    samples, total = [], 0.0
    for _ in range(iterations):
        t0 = time.perf_counter()
        total = float(data.sum())
        samples.append(time.perf_counter() - t0)
    exact = elements * (elements - 1) / 2
    m = Measurement(workload=NAME, spec={"elements": elements}, device=dataclasses.asdict(device), status="ok",
                    work_per_iteration=work({"elements": elements}), work_unit=Unit.BYTE, timer="perf_counter",
                    samples_s=samples, validity={"check": "exact sum", "passed": total == exact},
                    start_utc=start, end_utc=utc_now())  # fmt: skip
    m.status = "ok" if total == exact else "invalid"
    m.summary = summary(m)
    return m


def suite_steps(section: dict[str, Any], f: devices.DeviceFacts, host: dict[str, Any], readers: dict[str, Any],
                progress_for: Callable[[str], Callable[[int, int], None]] | None = None) -> list[runner.Step]:  # fmt: skip
    return [runner.Step(f"toy {n} on {f.label}", lambda n=n: measure(n, f, section["iterations"]))
            for n in section["elements"]]  # fmt: skip


TOY = registry.Workload(
    name=NAME,
    unit=Unit.BYTE,
    summary=summary,
    work=work,
    metrics=metrics,
    grids=grids,
    series={"toy_gbps": ("bench_toy_bytes_per_second", 1e9, "Toy array-sum read bandwidth in bytes per second")},
    config={
        "elements": registry.key("int-list", [1 << 16], "Array sizes."),
        "iterations": registry.key("int", 30, "Timed sums per size.", minimum=1),
    },
    steps=f"{__name__}:suite_steps",
    plots=(
        registry.Plot(
            "vs_size",
            "Toy bandwidth vs array size",
            x="elements",
            y="gbps_median",
            xlabel="elements",
            ylabel="GB/s",
            heading="Toy array sum",
        ),
    ),
    what=("elements",),
)

# --- the tests ------------------------------------------------------------------------------------------------------


@pytest.fixture()
def toy():
    """The toy registered for one test (a descriptor module registers at import; here it leaves no trace in the
    session's registry for the other tests)."""
    registry.workloads()  # the built-ins first, as at any start
    registry.register(TOY)
    yield TOY
    registry._REGISTRY.pop(NAME)


def test_a_config_file_names_a_workload_registered_after_bench_suite_was_imported(toy, tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(f'[suite]\nworkloads = ["{NAME}", "membw"]\n[{NAME}]\niterations = 3\n')
    config = suite.load(path)
    assert config["suite"]["workloads"] == [NAME, "membw"]
    assert config[NAME] == {"elements": [1 << 16], "iterations": 3}
    assert NAME in suite.describe()
    path.write_text('[suite]\nworkloads = ["toys"]\n')
    with pytest.raises(suite.ConfigError, match=r"'toys' is not allowed; valid: matmul, membw, train, comm, toy"):
        suite.load(path)
    path.write_text("[toy]\niterations = 0\n")  # its own keys' ranges hold as the built-ins' do
    with pytest.raises(suite.ConfigError, match=r"\[toy\] iterations: must be >= 1"):
        suite.load(path)


def test_a_workload_that_declares_it_runs_across_ranks_is_left_out_of_each_ranks_own_steps(toy, tmp_path):
    """bench run across ranks (bench.orchestrate.distributed_suite) runs plans.per_rank's workloads on each rank's own
    device and plans.across_ranks' once for the job: both read the descriptor, so the toy declaring it moves."""
    config = suite.validate({"suite": {"workloads": ["matmul", NAME, "train", "comm"]}}, "test")
    assert plans.per_rank(config)["suite"]["workloads"] == ["matmul", NAME]
    assert plans.across_ranks(config) == ["train", "comm"]
    registry._REGISTRY[NAME] = dataclasses.replace(TOY, across_ranks=True)
    assert plans.per_rank(config)["suite"]["workloads"] == ["matmul"]
    assert plans.across_ranks(config) == [NAME, "train", "comm"]
    assert config["suite"]["workloads"] == ["matmul", NAME, "train", "comm"]  # the config itself is left as it was


def toy_job(section: dict[str, Any], where: Any, kind: str, facts: list[Any]) -> list[runner.JobPhase]:
    """The toy's job phase across ranks (its descriptor's `job`): one step for the plan; it yields one toy
    measurement naming the job's stragglers."""
    step = runner.Step(f"toy x{where.world_size} ranks", list, NAME)

    def run(ctx: runner.JobContext):
        yield Measurement(workload=NAME, spec={"elements": 1}, device={"kind": ctx.kind}, status="ok",
                          details={"stragglers": ctx.stragglers})  # fmt: skip

    return [runner.JobPhase(step, run, leaders=False)]


def test_an_across_ranks_workload_runs_the_job_phases_its_descriptor_names(toy):
    """bench run across ranks runs each across-ranks workload's job phases (the descriptor's `job`), in the config's
    order; one that names none is reported missing (bench run says it is skipped), not run or dropped silently."""
    config = suite.validate({"suite": {"workloads": ["matmul", NAME, "train", "comm"]}}, "test")
    where = type("Where", (), {"world_size": 2, "rank": 0})()
    registry._REGISTRY[NAME] = dataclasses.replace(TOY, across_ranks=True)
    phases, missing = plans.job_phases(config, where, "cpu", [])
    assert missing == [NAME] and phases[-1].step.label == "comm x2 ranks"
    registry._REGISTRY[NAME] = dataclasses.replace(TOY, across_ranks=True, job=f"{__name__}:toy_job")
    phases, missing = plans.job_phases(config, where, "cpu", [])
    assert missing == []
    labels = [p.step.label for p in phases]
    assert labels[0] == "toy x2 ranks" and labels[-1] == "comm x2 ranks"
    assert [p.leaders for p in phases] == [False] + [True] * (len(phases) - 2) + [False]  # train: every node leader
    ctx = runner.JobContext(
        where, "cpu", None, {}, None, [{"rank": 1}], lambda label: None, lambda label, n: lambda: None
    )
    (m,) = list(phases[0].run(ctx))
    assert m.workload == NAME and m.details["stragglers"] == [{"rank": 1}]


def _run(tmp_path: Path, key, sizes=(1 << 14, 1 << 16)) -> Path:
    """A suite of the toy alone, read from a config file (its section and its name in suite.workloads are checked
    against the registry as it is when the file is read), planned by bench.plans from the descriptor and run into a
    signed report."""
    inv = inventory.collect()
    cpu = devices.facts("cpu", inv["host"])
    path = tmp_path / "toy.toml"
    path.write_text(f'[suite]\nworkloads = ["{NAME}"]\n[{NAME}]\nelements = {list(sizes)}\niterations = 30\n')
    config = suite.load(path)
    assert config[NAME] == {"elements": list(sizes), "iterations": 30}
    steps = plans.suite_steps(config, [cpu], inv["host"], {})
    assert [(s.label, s.workload, s.lane) for s in steps] == [(f"toy {n} on cpu", NAME, None) for n in sizes]
    writer = runner.start(tmp_path / "results", config, inv, key)
    runner.execute(writer, steps)
    return writer.path


def _verify(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["verify", str(path)])
    return result.exit_code, result.output


def test_a_toy_workload_gets_table_metric_plot_gate_and_verify_from_its_descriptor(toy, tmp_path):
    key = Ed25519PrivateKey.generate()
    path = _run(tmp_path, key)
    report = load_report(path)
    assert [m.workload for m in report.measurements] == [NAME, NAME]
    assert all(len(m.samples_s) == 30 and m.status == "ok" for m in report.measurements)

    # table: its grid, on the terminal, in Markdown and on the HTML page
    (grid,) = [g for g in render.workload_grids(report.measurements) if g.title.startswith("toy")]
    assert [r[1] for r in grid.rows] == ["16384", "65536"]
    assert "toy: array sum" in export.markdown(report) and "toy: array sum" in html.node_page(report)

    # Prometheus: its series in base units, with the device labels and its own
    prom = export.prometheus(report)
    (line,) = [x for x in prom.splitlines() if x.startswith("bench_toy_bytes_per_second{") and 'elements="65536"' in x]
    assert 'device="cpu"' in line
    value = float(line.rsplit(" ", 1)[1])
    assert value == pytest.approx(report.measurements[1].summary["gbps_median"] * 1e9)
    assert 'workload="toy"' in prom  # bench_measurement_valid names its measurements too

    # plot: a "vs_size" figure of its own, drawn from its measurements
    page = html.node_page(report)
    assert 'alt="Toy bandwidth vs array size"' in page
    (png,) = [p for title, p in plots.node_figures(report) if title == "Toy bandwidth vs array size"]
    assert png is not None and png.startswith(b"\x89PNG")

    # warning lines name its measurements by its spec keys
    noisy = dataclasses.replace(report.measurements[0], warnings=[{"code": "noisy", "message": "m", "hint": "h"}])
    assert render.warning_lines([noisy]) == ["warning noisy (1x): toy cpu 16384: m (hint: h)"]

    # gate: against a baseline run twice as fast, the toy's figure regresses, in its own JUnit case
    fast = NodeReport.from_dict(json.loads(json.dumps(report.to_dict())))
    fast.run_id = "baseline"
    for m in fast.measurements:
        m.samples_s = [s / 2 for s in m.samples_s]
        m.summary = summary(m)
    checks = gates.regressions(fast, report, 0.05)
    assert checks and not any(g.passed for g in checks)
    assert {g.case for g in checks} == {"toy cpu"}
    assert all("toy_gbps" in g.message for g in checks)
    junit = gates.junit(report, checks, "toy")
    assert 'classname="bench.toy"' in junit and "<failure" in junit
    assert gates.regressions(report, report, 0.05)[0].passed  # against itself: no regression

    # verify: the signed report verifies, its figures re-derived from its raw samples by the toy's descriptor
    code, out = _verify(path)
    assert code == 0, out


def test_a_tampered_toy_report_fails_verify(toy, tmp_path):
    key = Ed25519PrivateKey.generate()
    path = _run(tmp_path, key, sizes=(1 << 14,))
    assert _verify(path)[0] == 0

    # one byte of a measurement record changed: its signature no longer holds
    lines = path.read_bytes().splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if b'"workload":"toy"' in line)
    lines[i] = lines[i].replace(b'"elements":16384', b'"elements":16385')
    assert lines[i] != path.read_bytes().splitlines(keepends=True)[i]
    bad = tmp_path / "tampered.json"
    bad.write_bytes(b"".join(lines))
    code, out = _verify(bad)
    assert code == 1, out

    # re-signed by the node's own key with one sample halved: the signature holds, the figure does not
    report = load_report(path)
    m = report.measurements[0]
    m.samples_s = [s / 2 for s in m.samples_s]  # the stored summary is now not what the samples give
    fresh = dataclasses.replace(report, measurements=[], end_utc=None, signature=None)
    resigned = ReportWriter(fresh, tmp_path / "resigned", key)
    resigned.add(m)
    resigned.finish()
    code, out = _verify(resigned.path)
    assert code == 1 and "figure-mismatch" in out, out
