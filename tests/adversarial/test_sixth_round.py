"""Sixth round, a review of issue 17's speed-ups of the disclosure path (strict JSON by a walk after parsing, column-wise
row checks, merge by integer ranks, numeric KPIs, folders read in worker processes, gc.freeze around compute).

Differential fuzzing of the old code (7245be3) against the new found the same acceptances, refusals, messages and
outputs (intake.parse_json, leaves._rows, leaves.merge, kpis.categories/capacity/inventory/readiness/tree and the GPU
memory total); what is left are the resources the new process pools and the gc freeze take. Each test fails on the
code under review."""

from __future__ import annotations

import concurrent.futures
import gc
import json
import os
from typing import ClassVar, Self

from bench.disclosure import leaves as lv
from bench.report import pool
from bench.report.pool import frozen_heap


class _CountingPool:
    """Stands in for ProcessPoolExecutor: records how many workers were asked for, runs the map here. With the fork
    start method CPython starts every one of max_workers processes when the pool is first used, whatever the number of
    tasks (concurrent.futures.process: _safe_to_dynamically_spawn_children is False for fork)."""

    asked: ClassVar[list[int]] = []

    def __init__(self, max_workers: int | None = None, mp_context=None, **kw) -> None:
        _CountingPool.asked.append(max_workers or 0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def map(self, fn, *iterables, chunksize: int = 1, timeout=None):
        return map(fn, *iterables)

    def submit(self, fn, *args):
        """fn run here at once: a future already done (not cancellable, so read_many reads none of it itself)."""
        future = concurrent.futures.Future()
        future.set_result(fn(*args))
        return future


def test_jobs_forks_no_more_workers_than_there_are_inputs(monkeypatch):
    """`bench aggregate --jobs N` (click.IntRange(min=1), no maximum) reaches _map_parallel, which asks the pool for N
    workers whatever the number of reports: with fork every one is started up front, so `--jobs 100000` over a site's
    eight reports forks 100,000 copies of the parent (a fork bomb, then a traceback when fork fails) instead of being
    bounded by the work (min(jobs, len(items))) or refused as a usage error."""
    _CountingPool.asked = []
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", _CountingPool)
    items = list(range(-pool.PARALLEL_FROM, 0))
    assert pool._map_parallel(abs, items, jobs=100_000) == [abs(i) for i in items]
    assert _CountingPool.asked and max(_CountingPool.asked) <= len(items), _CountingPool.asked


def test_read_many_forks_no_more_workers_than_there_are_files(monkeypatch, tmp_path):
    """read_many (every Store(folder) with 8 or more *.json files) asks for os.cpu_count() workers, not
    min(cpu_count, files), and os.cpu_count() is the machine's count, not the cores this process may use
    (sched_getaffinity, a container's quota): on a 256-core host, a folder of 8 files forks 256 copies of the
    parent (which, in verify, may hold a country's store), all started at once under fork."""
    _CountingPool.asked = []
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", _CountingPool)
    monkeypatch.setattr(os, "cpu_count", lambda: 256)
    paths = []
    for i in range(lv.PARALLEL_FROM):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps({"n": i}))
    read = lv.read_many(paths)
    assert [r[0].data for r in read] == [{"n": i} for i in range(lv.PARALLEL_FROM)]
    assert _CountingPool.asked and max(_CountingPool.asked) <= len(paths), _CountingPool.asked


def test_frozen_heap_leaves_a_callers_freeze_in_place():
    """frozen_heap always ends with gc.unfreeze(), which thaws every frozen object, the caller's too: a program that
    froze its heap before forking (the pattern _map_parallel itself uses, and any service embedding bench) has its
    freeze undone by one disclosure compute() (decorated with frozen_heap), and a nested block (compute inside a
    frozen caller) ends the outer block's freeze early. Nesting-safe: freeze and unfreeze only when nothing is frozen
    on entry."""
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        assert before > 0
        with frozen_heap():
            pass
        assert gc.get_freeze_count() >= before
    finally:
        gc.unfreeze()
