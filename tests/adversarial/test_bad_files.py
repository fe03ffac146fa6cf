"""Issue 12, attack 9: bad files crashed or hung the fleet. Each is now one rejected entry with its reason (verify,
aggregate, challenge verify), never a traceback and never the end of the run; the honest files next to it still count."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os

import pytest
from click.testing import CliRunner

from bench import challenge as chl
from bench.cli import main
from bench.model import keys
from bench.report import aggregate as agg
from bench.report.store import dumps, write_atomic
from tests.adversarial import forge
from tests.report import fleet
from tests.test_challenge import AUDITOR, AUDITOR_ID, _answer, _drop, _issue, _receipts, verify

KEY = forge.fresh_keys(1)[0]


def _set(path: tuple, value):
    def edit(d):
        target = d
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value

    return edit


#: name -> edit of the parsed report (then re-signed by the node key: the operator holds it)
EDITS = {
    "nvml-null": _set(("inventory", "nvml"), None),
    "host-as-string": _set(("inventory", "host"), "node1"),
    "world-size-as-string": _set(("measurements", 0, "spec", "world_size"), "2"),
    "list-as-uuid": _set(("measurements", 0, "device", "uuid"), ["GPU-1"]),
    "msmf-as-list": _set(("measurements", 0, "details", "msmf"), [1, 2]),
    "zero-sample": _set(("measurements", 0, "samples_s", 0), 0.0),
    "negative-sample": _set(("measurements", 0, "samples_s", 0), -1.0),
    "schema-version-true": _set(("schema_version",), True),
    "timestamp-without-zone": _set(("start_utc",), "2026-11-28T10:00:00"),
    "gpu-uuid-as-number": _set(("inventory", "nvml", "gpus", 0, "uuid"), 7),
}
#: name -> raw text of a report.json (what no JSON writer would produce, or cannot be signed)
TEXTS = {
    "nan-sample": lambda text: text.replace('"samples_s": [', '"samples_s": [NaN, ', 1),
    "huge-integer-sample": lambda text: text.replace('"samples_s": [', '"samples_s": [' + "9" * 400 + ", ", 1),
    "deep-nesting": lambda text: text.replace('"config": {}', '"config": ' + "[" * 100000 + "]" * 100000, 1),
    "duplicate-key": lambda text: text.replace('"run_id": ', '"run_id": "other", "run_id": ', 1),
    "truncated": lambda text: text[: len(text) // 2],
}


def _fleet_dir(tmp_path, bad_name: str):
    """Two honest reports and one bad one, each in its own run directory."""
    root = tmp_path / "results"
    for i in range(2):
        (root / f"good{i}").mkdir(parents=True)
        (root / f"good{i}" / "report.json").write_text(json.dumps(fleet.node_report(i, [700.0], KEY)))
    bad = root / "bad" / "report.json"
    bad.parent.mkdir()
    data = fleet.node_report(9, [700.0], KEY)
    if bad_name in EDITS:
        EDITS[bad_name](data)
        data = forge.signed(data, KEY)
        bad.write_text(json.dumps(data))
    elif bad_name in TEXTS:
        bad.write_text(TEXTS[bad_name](json.dumps(data)))
    elif bad_name == "fifo":
        os.mkfifo(bad)
    elif bad_name == "symlink-to-dev-zero":
        bad.symlink_to("/dev/zero")
    return root, bad


@pytest.mark.parametrize("bad_name", [*EDITS, *TEXTS, "fifo", "symlink-to-dev-zero"])
def test_attack_9_bad_files_crash_or_hang_the_fleet(tmp_path, bad_name):
    root, bad = _fleet_dir(tmp_path, bad_name)
    files = sorted(root.rglob("report.json"))
    cap = agg.aggregate([(str(f), f) for f in files], now=forge.NOW)
    status = {i["name"]: i for i in cap["inputs"]}
    assert status[str(bad)]["status"] == "rejected" and status[str(bad)]["reasons"]
    assert not any(r.startswith("unchecked:") for r in status[str(bad)]["reasons"]), status[str(bad)]["reasons"]
    assert sum(i["status"] == "counted" for i in cap["inputs"]) == 2 and cap["totals"][0]["devices"] == 2
    res = CliRunner().invoke(main, ["verify", *map(str, files), "--json"])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    found = json.loads(res.stdout)["reports"]
    assert [f["code"] for f in found[str(bad)] if f["severity"] == "error"] and all(
        not [f for f in found[str(f_)] if f["severity"] == "error"] for f_ in files if f_ != bad
    )
    assert not any(f["code"] == "unchecked" for f in found[str(bad)])
    res = CliRunner().invoke(main, ["aggregate", str(root), "-o", str(tmp_path / "cap.json"), "--json"])
    # the fleet run goes on: the rest is counted and signed, and the exit status tells a script one was rejected
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    assert "1 of 3 node reports rejected" in res.stderr and str(bad) in res.stderr
    cap = json.loads((tmp_path / "cap.json").read_text())
    assert sum(i["status"] == "counted" for i in cap["inputs"]) == 2 and json.loads(res.stdout) == cap
    res = CliRunner().invoke(main, ["aggregate", str(root), "-o", str(tmp_path / "cap.json"), "--allow-rejected"])
    assert res.exit_code == 0, res.output


def test_attack_9_a_gzip_bomb_or_malformed_reveal_is_one_failed_entry(tmp_path):
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    good = _answer(drop, ch, node="node-a", uuid="host-a")
    bomb = _answer(drop, ch, node="node-b", uuid="host-b")
    manifest = json.loads((drop / f"{bomb}{chl.REVEAL_SUFFIX}").read_text())
    with gzip.open(drop / manifest["files"][0]["file"], "wb") as fh:
        fh.write(b"\0" * (32 << 20))  # 32 MB of zeros where 16 kB are expected
    broken = _answer(drop, ch, node="node-c", uuid="host-c")
    (drop / f"{broken}{chl.REVEAL_SUFFIX}").write_text(
        '{"kind": "bench.challenge-reveal", "schema_version": 1, "files": 5}'
    )
    verdict = verify(path, drop, _receipts(tmp_path, ch, drop, {good: 1.0, bomb: 1.0, broken: 1.0}))
    by_node = {n["node"]: n for n in verdict.nodes}
    # a device with one bad product counts for none (it is not checked further: finding R1)
    assert (
        by_node["node-a"]["verified"] == 2 and by_node["node-b"]["verified"] == 0 and by_node["node-c"]["verified"] == 0
    )
    assert {f.code for f in verdict.findings if f.severity == "error"} == {"malformed-reveal"}
    assert any("more than the expected" in f.message for f in verdict.findings)


def test_attack_9_junk_commitments_do_not_fill_the_collectors_expect_count(tmp_path):
    path, ch = _issue(tmp_path)
    drop = _drop(tmp_path)
    LATER = ch.issued + dt.timedelta(seconds=1)
    for i in range(5):
        (drop / f"junk{i}{chl.COMMIT_SUFFIX}").write_text("{}" if i % 2 else "not json")
    os.mkfifo(drop / f"fifo{chl.COMMIT_SUFFIX}")
    seen: dict = {}
    first = chl.scan(drop, seen, LATER, ch, auditor=AUDITOR_ID)
    assert len(first) == 6 and not any(r["accepted"] for r in first)
    base = _answer(drop, ch)
    (honest,) = chl.scan(drop, seen, LATER, ch, auditor=AUDITOR_ID)
    assert honest["accepted"] and honest["file"] == f"{base}{chl.COMMIT_SUFFIX}"
    # a name first taken by junk is recorded again when the real commitment replaces it
    squat = chl.commit_name("node-z", ch.nonce) + chl.COMMIT_SUFFIX
    (drop / squat).write_text("junk")
    assert not chl.scan(drop, seen, LATER, ch)[0]["accepted"]
    _answer(drop, ch, node="node-z", uuid="host-z")
    assert [r["accepted"] for r in chl.scan(drop, seen, LATER, ch, auditor=AUDITOR_ID)] == [True]
    receipts = tmp_path / "receipts.json"
    write_atomic(receipts, dumps(chl.receipts_doc(ch, [*first, honest], AUDITOR)))
    verdict = verify(path, drop, receipts)
    assert verdict.fleet["devices"] == 1 and verdict.nodes[0]["node"] == "node-a"


def test_attack_9_keys_init_never_writes_through_a_planted_tmp(tmp_path):
    path = tmp_path / "node.pem"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "node.pem.tmp").symlink_to(victim)
    res = CliRunner().invoke(main, ["keys", "init", "--key", str(path)])
    assert res.exit_code == 1 and "already exists" in res.stderr and victim.read_text() == "precious"
    (tmp_path / "node.pem.tmp").unlink()
    res = CliRunner().invoke(main, ["keys", "init", "--key", str(path)])
    assert res.exit_code == 0 and len(keys.public_key_id(path)) == 32  # 128-bit key ids
