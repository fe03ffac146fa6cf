"""An index of runs in SQLite (results/history.sqlite): every indexed report's headline metrics, so a node's figures
can be followed over time and a slow-down shows up as a trend. The reports stay the source of truth; the index can
be rebuilt from them at any time."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from bench.model.reports import NodeReport
from bench.report.metrics import metrics

DB_NAME = "history.sqlite"

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, host TEXT, fingerprint TEXT, start_utc TEXT, end_utc TEXT, complete INTEGER,
    key_id TEXT, bench_version TEXT, path TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT REFERENCES runs(run_id) ON DELETE CASCADE, name TEXT, labels TEXT, device TEXT, value REAL,
    unit TEXT, status TEXT
);
CREATE INDEX IF NOT EXISTS metrics_by_name ON metrics(name);
"""


def connect(db: Path) -> sqlite3.Connection:
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    con.execute("PRAGMA foreign_keys = ON")
    con.executescript(SCHEMA)
    return con


def index(db: Path, report: NodeReport, path: Path | str) -> int:
    """Add (or replace) one report's run and metrics; returns how many metrics were indexed."""
    host = report.inventory.get("host", {})
    rows = [(report.run_id, m.name, json.dumps(m.labels, sort_keys=True), m.labels.get("device"), m.value, m.unit, m.status)
            for m in metrics(report)]  # fmt: skip
    with connect(db) as con:
        con.execute("DELETE FROM runs WHERE run_id = ?", (report.run_id,))
        con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (report.run_id, host.get("hostname"), host.get("fingerprint"), report.start_utc, report.end_utc,
                     int(not report.partial), (report.signature or {}).get("key_id"),
                     report.tool.get("version"), str(path)))  # fmt: skip
        con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.close()
    return len(rows)


def query(db: Path, node: str | None = None, metric: str | None = None) -> list[dict[str, Any]]:
    """Every indexed figure, oldest first, optionally for one host and/or one metric name (a prefix matches too:
    'matmul' selects every matmul_* metric)."""
    if not db.exists():
        return []
    sql = ("SELECT r.start_utc, r.run_id, r.host, r.complete, m.name, m.labels, m.value, m.unit, m.status "
           "FROM metrics m JOIN runs r USING (run_id) WHERE 1=1")  # fmt: skip
    args: list[Any] = []
    if node:
        sql += " AND r.host = ?"
        args.append(node)
    if metric:
        sql += " AND (m.name = ? OR m.name LIKE ?)"
        args += [metric, metric.replace("%", "") + "%"]
    sql += " ORDER BY r.start_utc, m.name, m.labels"
    con = connect(db)
    try:
        rows = con.execute(sql, args).fetchall()
    finally:
        con.close()
    out = []
    for start, run_id, host, complete, name, labels, value, unit, status in rows:
        out.append({"start_utc": start, "run_id": run_id, "host": host, "complete": bool(complete), "metric": name,
                    "labels": json.loads(labels), "value": value, "unit": unit, "status": status})  # fmt: skip
    return out


def trends(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per host x metric x labels: first, last and their ratio over the runs (valid figures only), oldest first."""
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == "ok":
            series.setdefault((r["host"], r["metric"], json.dumps(r["labels"], sort_keys=True)), []).append(r)
    out = []
    for (host, name, labels), points in sorted(series.items()):
        first, last = points[0]["value"], points[-1]["value"]
        out.append({"host": host, "metric": name, "labels": json.loads(labels), "runs": len(points), "first": first,
                    "last": last, "change": last / first - 1 if first else None,
                    "values": [p["value"] for p in points]})  # fmt: skip
    return out
