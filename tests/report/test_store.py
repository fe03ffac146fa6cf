import json
import os

import pytest

from bench import runner
from bench.figures import matmul_summary
from bench.model.reports import SCHEMA_VERSION, Measurement, NodeReport, ReportError
from bench.report.store import REPORT_NAME, ReportWriter, dumps, load_report, new_run_id, write_atomic


def measurement(status="ok"):
    samples = [0.01, 0.012, 0.011]
    return Measurement(
        workload="matmul",
        spec={"m": 8, "n": 8, "k": 8, "precision": "float32"},
        device={"id": "cpu", "kind": "cpu", "name": "cpu", "uuid": "f"},
        status=status,
        work_per_iteration=1024,
        work_unit="FLOP",
        timer="perf_counter",
        threads=2,
        warmup_s=[0.02],
        samples_s=samples,
        summary=matmul_summary(samples, 1024),
        validity={"check": "freivalds", "passed": True},
        start_utc="2026-11-28T10:00:00.000000Z",
        end_utc="2026-11-28T10:00:01.000000Z",
    )


def report(**kw):
    return NodeReport(
        run_id="r1",
        tool={"name": "bench", "version": "0.1.0", "git_commit": None},
        command_line=["bench", "matmul"],
        config={"workload": "matmul"},
        inventory={"host": {}, "nvml": {"available": False, "gpus": []}},
        start_utc="2026-11-28T10:00:00.000000Z",
        **kw,
    )


def test_round_trip(tmp_path):
    rep = report(end_utc="2026-11-28T10:00:02.000000Z", measurements=[measurement()])
    path = tmp_path / "report.json"
    write_atomic(path, dumps(rep.to_dict()))
    back = load_report(path)
    assert back == rep
    assert back.measurements[0].samples_s == [0.01, 0.012, 0.011]  # raw samples survive exactly
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    write_atomic(tmp_path / "a" / "x.json", "{}\n")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("old")
    with pytest.raises(TypeError):
        write_atomic(path, None)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def valid_text():
    return dumps(report(measurements=[measurement()]).to_dict())


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda t: t[: len(t) // 2], "not valid JSON"),
        (lambda t: "", "not valid JSON"),
        (lambda t: "[]", "report should be dict"),
        (lambda t: t.replace('"schema_version": 2', '"schema_version": 99'), "unsupported schema_version 99"),
        (lambda t: t.replace('"bench.node-report"', '"something-else"'), "not a bench node report"),
        (lambda t: t.replace('"run_id": "r1",', ""), "lacks required field 'run_id'"),
        (lambda t: t.replace('"threads": 2', '"threads": "two"'), "measurements[0].threads should be int"),
        (lambda t: t.replace('"threads": 2', '"threads": true'), "threads should be int or null, found bool"),
        (lambda t: t.replace('"status": "ok"', '"status": "great"'), "status is 'great'"),
        (lambda t: t.replace('"samples_s": [', '"samples_s": ["x", '), "samples_s[0] should be int or float"),
        (
            lambda t: t.replace('"samples_s": [', '"samples_s": [true, '),
            "samples_s[0] should be int or float, found bool",
        ),
        (lambda t: t.replace('"samples_s": [', '"samples_s": [0.001, -1.5, '), "samples_s[1] is -1.5; a duration must"),
        (lambda t: t.replace('"samples_s": [', '"samples_s": [0, '), "samples_s[0] is 0; a duration must"),
    ],
)
def test_bad_files_get_one_line_errors(tmp_path, mangle, message):
    path = tmp_path / "report.json"
    path.write_text(mangle(valid_text()))
    with pytest.raises(ReportError) as err:
        load_report(path)
    text = str(err.value)
    assert message in text and str(path) in text and "\n" not in text


def test_measured_entry_needs_its_samples():
    d = measurement().to_dict()
    d["samples_s"] = []
    with pytest.raises(ReportError, match="needs samples_s"):
        Measurement.from_dict(d)


def test_missing_file(tmp_path):
    with pytest.raises(ReportError, match="cannot read"):
        load_report(tmp_path / "nope.json")


def test_writer_saves_after_every_measurement(tmp_path):
    writer = ReportWriter(report(), tmp_path)
    path = tmp_path / REPORT_NAME
    assert load_report(path).measurements == []
    writer.add(measurement())
    mid = load_report(path)
    assert len(mid.measurements) == 1 and mid.end_utc is None
    writer.finish()
    done = load_report(path)
    assert done.end_utc and not done.interrupted


def test_a_crash_keeps_finished_measurements(tmp_path):
    writer = ReportWriter(report(), tmp_path)

    def boom():
        raise KeyboardInterrupt

    steps = [runner.Step("one", measurement), runner.Step("two", boom), runner.Step("three", measurement)]
    with pytest.raises(KeyboardInterrupt):
        runner.execute(writer, steps)
    saved = load_report(tmp_path / REPORT_NAME)
    assert saved.interrupted and saved.end_utc and len(saved.measurements) == 1


def test_run_ids_are_unique_and_sortable():
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(i[8] == "T" and i[15] == "Z" for i in ids)


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_reports_are_written_as_open_would_under_the_umask(tmp_path, umask, expected):
    """A report is shared (auditors, web servers, node_exporter's user): it gets 0666 less the umask, as any file
    open() creates, not mkstemp's owner-only 0600 — and the tightening of a strict umask is kept."""
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "report.json", "{}\n")
        write_atomic(tmp_path / "bench.prom", "", mode=0o644)
    finally:
        os.umask(old)
    assert (tmp_path / "report.json").stat().st_mode & 0o777 == expected
    assert (tmp_path / "bench.prom").stat().st_mode & 0o777 == 0o644  # an explicit mode wins
