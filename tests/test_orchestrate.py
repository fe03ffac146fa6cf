"""bench.orchestrate: what a suite does after its steps — gates over the report, the output files next to it (a
failing renderer named, never fatal; the others still written, world-readable), the history index — and the warning
it adds to a measurement whose median is far from its best."""

from __future__ import annotations

import os
import stat

from bench import orchestrate, suite
from bench.report import history
from bench.report.store import ReportWriter
from tests.report import synthetic as syn


def _written_report(tmp_path):
    report = syn.report([syn.matmul("float32", syn.samples(0.01))])
    writer = ReportWriter(report, tmp_path / report.run_id, None)
    writer.finish()
    return writer


def test_outputs_are_written_world_readable_and_a_failing_renderer_is_named_not_fatal(tmp_path, monkeypatch):
    writer = _written_report(tmp_path)
    config = suite.load(None)
    checks = orchestrate.evaluate(writer.report, config, None)
    assert all(g.passed for g in checks)

    def broken(report, checks):
        raise RuntimeError("renderer bug")

    monkeypatch.setattr(orchestrate.export, "markdown", broken)
    warned: list[str] = []
    written = orchestrate.write_outputs(writer.report, writer.path.parent, ["md", "csv", "prometheus"], checks, "smoke",
                                        warned.append)  # fmt: skip
    assert set(written) == {"csv", "prometheus"}
    assert len(warned) == 1 and "report.md" in warned[0] and "RuntimeError: renderer bug" in warned[0]
    for path in written.values():
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o044 == 0o044  # node_exporter reads them as another user


def test_conclude_gates_writes_and_indexes_the_run(tmp_path):
    writer = _written_report(tmp_path)
    config = suite.apply_overrides(suite.load(None), [("outputs", "formats", ["junit"]),
                                                      ("gates", "fail_below", {"float32": 1e9})])  # fmt: skip
    junit = tmp_path / "copy" / "junit.xml"
    checks, outputs = orchestrate.conclude(writer, config, None, tmp_path, junit, lambda text: None)
    assert [g.name for g in checks if not g.passed]  # a floor of 1e9 TFLOPS is missed
    assert set(outputs) == {"junit", "junit_copy"} and junit.exists()
    assert history.query(tmp_path / history.DB_NAME)  # indexed


def test_a_median_far_from_the_best_is_warned_once_and_saved():
    slow = syn.matmul("float32", [0.002] * 5 + [0.1] * 10)
    saves: list[int] = []
    orchestrate.flag_far_from_best(slow, lambda: saves.append(1))
    orchestrate.flag_far_from_best(slow, lambda: saves.append(1))
    assert [w["code"] for w in slow.warnings].count("median-far-from-best") == 1 and saves == [1]
