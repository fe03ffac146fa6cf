"""A worker process that dies (the OOM killer on a hostile or huge file, a segfault in a C library, a SIGKILL) costs
the run one item, never the others' results: bench.report.pool._map_parallel keeps what came back, runs the rest
again, and isolates the item that kills its worker (examine_all: one rejected entry with its reason). Real deaths:
the task SIGKILLs its own worker process, through the fork pool."""

import json
import os
import signal

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.cli import main
from bench.report import pool
from tests.report.fleet import NOW, node_report

KEY = Ed25519PrivateKey.generate()
KILLERS: set[int] = set()
WHY = "unchecked: its check ended the worker process (signal 9: SIGKILL, killed, e.g. out of memory)"

pytestmark = pytest.mark.skipif(not pool.forks(2, 2), reason="needs fork")


def _square_or_die(x):
    if x in KILLERS:
        os.kill(os.getpid(), signal.SIGKILL)
    if x == -1:
        raise ValueError("minus one")
    if x == -2:
        raise KeyboardInterrupt
    return x * x


@pytest.fixture
def killers():
    KILLERS.clear()
    yield KILLERS
    KILLERS.clear()


@pytest.mark.parametrize("kill", [{0}, {57}, {199}, {3, 120}, set(range(10, 14))])
def test_one_killer_costs_its_item_only(killers, kill):
    """Chunks of 12 on two workers: a killer anywhere (first, middle, last, two apart, four side by side) is its item's
    failure, with how its process ended; every other item's result is what a run without it gives."""
    items = list(range(200))
    clean = pool._map_parallel(_square_or_die, items, jobs=2)
    assert clean == [x * x for x in items]
    killers |= kill
    got = pool._map_parallel(_square_or_die, items, jobs=2, died=lambda item, how: ("died", item, how))
    assert [g for i, g in enumerate(got) if i not in kill] == [c for i, c in enumerate(clean) if i not in kill]
    assert [g for i, g in enumerate(got) if i in kill] == [
        ("died", i, "signal 9: SIGKILL, killed, e.g. out of memory") for i in sorted(kill)
    ]


def test_without_a_died_handler_a_worker_death_is_one_clear_error_naming_the_task(killers):
    killers.add(5)
    with pytest.raises(pool.WorkerDied, match=r"task 6 of 40 \(.*_square_or_die\) ended its worker process \(signal 9"):
        pool.map_forked(_square_or_die, list(range(40)), jobs=2)


def test_exceptions_are_still_raised_first_in_order(killers):
    """A task's exception is raised as a loop would raise it, a killer after it or before it."""
    with pytest.raises(ValueError, match="minus one"):
        pool._map_parallel(_square_or_die, [*range(30), -1, *range(30)], jobs=2)
    killers.add(40)
    with pytest.raises(ValueError, match="minus one"):
        pool._map_parallel(_square_or_die, [*range(30), -1, *range(30)], jobs=2, died=lambda i, how: None)
    killers.clear()
    killers.add(3)
    with pytest.raises(pool.WorkerDied, match="task 4 of 61"):
        pool._map_parallel(_square_or_die, [*range(30), -1, *range(30)], jobs=2)


def test_ctrl_c_in_a_worker_still_stops_the_run(killers):
    killers.add(3)  # a killer before it: the run is not retrying its way past a Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        pool._map_parallel(_square_or_die, [*range(30), -2, *range(30)], jobs=2, died=lambda i, how: None)


def _fleet_files(folder, n):
    folder.mkdir()
    paths = []
    for i in range(n):
        paths.append(folder / f"n{i}" / "report.json")
        paths[-1].parent.mkdir()
        paths[-1].write_text(json.dumps(node_report(i, [700.0 + g for g in range(2)], KEY)))
    return paths


def _kill_when_checking(monkeypatch, name):
    """Checking the input named `name` SIGKILLs the worker process checking it (the OOM killer's way)."""
    real = pool._examine_one

    def examine_one(item, *a, **k):
        if str(item[0]).endswith(name):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(item, *a, **k)

    monkeypatch.setattr(pool, "_examine_one", examine_one)


def test_examine_all_rejects_the_input_whose_check_kills_its_worker(monkeypatch, tmp_path):
    paths = _fleet_files(tmp_path / "fleet", 9)
    inputs = [(str(p), p) for p in paths]
    monkeypatch.setattr(pool, "PARALLEL_FROM", 2)
    clean, _ = pool.examine_all(inputs, now=NOW, jobs=2)
    assert all(e["status"] == "counted" for e, _ in clean)
    _kill_when_checking(monkeypatch, "n4/report.json")
    got, _ = pool.examine_all(inputs, now=NOW, jobs=2)
    assert repr(got[:4] + got[5:]) == repr(clean[:4] + clean[5:])  # repr: rows hold NaN (no MAMF interval)
    assert got[4] == ({"name": str(paths[4]), "digest": None, "key_id": None, "node": None, "latest_utc": None,
                       "status": "rejected", "reasons": [WHY]}, [])  # fmt: skip


def test_bench_aggregate_counts_the_rest_when_one_input_kills_its_worker(monkeypatch, tmp_path):
    """The CLI on a folder: one input's check ends its worker process; the capacity report of the others is written
    and signed as without it, the one listed as rejected with why, exit status 1 (0 with --allow-rejected)."""
    _fleet_files(tmp_path / "fleet", 9)
    monkeypatch.setattr(pool, "PARALLEL_FROM", 2)
    args = ["aggregate", str(tmp_path / "fleet"), "--jobs", "2", "--json", "-o"]
    (tmp_path / "fleet" / "n6" / "report.json").rename(tmp_path / "n6.json")  # the run without the killer
    res = CliRunner().invoke(main, [*args, str(tmp_path / "without.json")])
    assert res.exit_code == 0, res.output
    (tmp_path / "n6.json").rename(tmp_path / "fleet" / "n6" / "report.json")
    _kill_when_checking(monkeypatch, "n6/report.json")
    res = CliRunner().invoke(main, [*args, str(tmp_path / "cap.json")])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    assert "1 of 9 node reports rejected" in res.stderr and "ended the worker process (signal 9" in res.stderr
    cap, without = (json.loads((tmp_path / f).read_text()) for f in ("cap.json", "without.json"))
    (killed,) = [i for i in cap["inputs"] if i["status"] != "counted"]
    assert killed["name"].endswith("n6/report.json") and killed["status"] == "rejected"
    assert killed["reasons"] == [WHY]
    assert [i for i in cap["inputs"] if i is not killed] == without["inputs"]
    assert cap["groups"] == without["groups"] and cap["totals"] == without["totals"]
    res = CliRunner().invoke(main, [*args, str(tmp_path / "cap.json"), "--allow-rejected"])
    assert res.exit_code == 0, res.output
