"""The SQLite run index: round trip, filters, re-indexing, and trends over runs."""

from __future__ import annotations

from bench.report import history
from tests.report import synthetic as syn


def _run(run_id: str, start: str, seconds: float, host: str = "node-a"):
    r = syn.report([syn.matmul("float32", syn.samples(seconds))], host={**syn.HOST, "hostname": host}, run_id=run_id)
    r.start_utc = start
    return r


def test_index_and_query_round_trip(tmp_path):
    db = tmp_path / "history.sqlite"
    runs = [_run("r1", "2026-11-01T00:00:00Z", 0.010), _run("r2", "2026-11-02T00:00:00Z", 0.011),
            _run("r3", "2026-11-03T00:00:00Z", 0.0125), _run("x1", "2026-11-02T00:00:00Z", 0.010, host="node-b")]  # fmt: skip
    for r in runs:
        assert history.index(db, r, f"/results/{r.run_id}/report.json") == 1
    rows = history.query(db, node="node-a")
    assert [r["run_id"] for r in rows] == ["r1", "r2", "r3"]
    assert rows[0]["value"] == runs[0].measurements[0].summary["tflops_median"]
    assert rows[0]["labels"]["precision"] == "float32" and rows[0]["complete"]
    assert len(history.query(db)) == 4
    assert history.query(db, metric="matmul") == history.query(db, metric="matmul_tflops")
    assert history.query(db, metric="membw") == []
    (trend,) = history.trends(rows)
    assert trend["runs"] == 3 and trend["change"] < -0.15  # a slow-down shows as a falling trend
    assert trend["values"] == [r["value"] for r in rows]


def test_reindexing_a_run_replaces_it(tmp_path):
    db = tmp_path / "history.sqlite"
    r = _run("r1", "2026-11-01T00:00:00Z", 0.010)
    history.index(db, r, "a")
    history.index(db, r, "a")
    assert len(history.query(db)) == 1


def test_an_absent_database_has_no_rows(tmp_path):
    assert history.query(tmp_path / "none.sqlite") == []
