"""Verification workers: every input node report examined once (in parallel processes on a large fleet), then the
auditor's trust and age policy applied to the examined entries without re-verifying them."""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import datetime as dt
import functools
import gc
import multiprocessing
import operator
import os
import signal
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import figures, registry
from bench.model import intake, sign
from bench.model.errors import ReportError
from bench.report import verify as v
from bench.report.devices import COLUMNS, device_rows

#: From this many inputs on, node reports are verified in parallel processes.
PARALLEL_FROM = 256

Examined = list[tuple[dict[str, Any], list[tuple[Any, ...]]]]
#: A device row's values in COLUMNS order, as a tuple (one C call: a generator over 19 keys cost a row 2 us).
_AS_TUPLE = operator.itemgetter(*COLUMNS)


def _load(data: Any) -> tuple[Any, list[bytes] | None, bytes | None]:
    """A report given as a path is read where it is examined (in a worker), so the parent never holds the fleet. Read
    through bench.model.intake: regular files only, size-capped, strict JSON. With it, for a record stream read as its
    canonical bytes, the SHA-256 of each record (intake.Document.chain: the signature is checked over those), and for
    a document read by intake's fast path, the canonical bytes of its signed view (intake.Document.signed_body)."""
    if not isinstance(data, Path):
        return data, None, None
    try:
        doc = intake.read_json(data)
    except intake.InputError as exc:
        return exc, None, None
    return doc.data, doc.chain, doc.signed_body


def _examine(item: tuple[str, Any], *, now: dt.datetime,
             mamf_rule: str = figures.MAMF_RULE_STEADY) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:  # fmt: skip
    """Verify one input, leaving the auditor's policy (trust list, age) to apply_policy: its entry for the capacity
    report's input list, and its device rows if it counts. One bad input is one rejected entry, never the end of the
    run: an unexpected failure while checking it is recorded as its reason."""
    entry = _blank(item)
    try:
        return _examine_one(item, entry, now, mamf_rule)
    except Exception as exc:  # noqa: BLE001 - a hostile file must cost one entry, not the run
        why = intake.safe_name(f"unchecked: {type(exc).__name__} while checking it: {exc}")
        return {**entry, "status": "rejected", "reasons": [why]}, []


def _blank(item: tuple[str, Any]) -> dict[str, Any]:
    # names are signed into the capacity report: a path that is not UTF-8 is written backslash-escaped
    return {"name": intake.safe_name(str(item[0])), "digest": None, "key_id": None, "node": None, "latest_utc": None}


def _unchecked(item: Any, how: str) -> Any:
    """What examine_all records for a task whose check ended its worker process, even run alone (the OOM killer on a
    hostile or huge file, a segfault): the input rejected with how, or the capacity signature not valid."""
    if isinstance(item, _SignatureCheck):
        return False, f"signature unchecked: checking it ended the worker process ({how})"
    why = f"unchecked: its check ended the worker process ({how})"
    return {**_blank(item), "status": "rejected", "reasons": [why]}, []


def _examine_one(
    item: tuple[str, Any], entry: dict[str, Any], now: dt.datetime, mamf_rule: str = figures.MAMF_RULE_STEADY
) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    data, chain, body = _load(item[1])
    if isinstance(data, Exception):
        return {**entry, "status": "rejected", "reasons": [intake.safe_name(f"unreadable: {data}")]}, []
    if not isinstance(data, dict):
        return {**entry, "status": "rejected", "reasons": ["schema: not a JSON object"]}, []
    with v.retained():  # the checks' table peaks serve the device rows too
        findings, entry["digest"], report = v.examine(data, now=now, policy=False, chain=chain, body=body)
        entry["key_id"] = sign.signer(data)
        bad = v.errors(findings)
        if bad or report is None:
            return {**entry, "status": "rejected", "reasons": [f"{f.code}: {f.message}" for f in bad]}, []
        entry["node"] = report.inventory.get("host", {}).get("hostname")
        entry["latest_utc"] = report.end_utc or report.start_utc
        # rows travel back from the worker as tuples (in COLUMNS order): a third of the pickling of dicts
        return {**entry, "status": "counted", "reasons": []}, [
            _AS_TUPLE(r) for r in device_rows(report, entry["digest"], mamf_rule)
        ]


def apply_policy(
    examined: Examined, *, trusted: set[str] | None, max_age_s: float | None, now: dt.datetime
) -> Examined:
    """The auditor's policy over examined inputs (cheap: no re-verification): inputs signed by keys outside the trust
    list, too old or from the future are rejected; without a trust list or a maximum age no figure is more than
    'reported'."""
    max_age = dt.timedelta(seconds=max_age_s) if max_age_s else None
    out: Examined = []
    tier_col, why_col = COLUMNS.index("tier"), COLUMNS.index("why")
    for entry, rows in examined:
        entry = {**entry, "reasons": list(entry["reasons"])}
        if entry["status"] != "counted":
            out.append((entry, []))
            continue
        bad = v.errors(v.policy_findings(entry["key_id"], v.parse_utc(entry["latest_utc"]), trusted=trusted,
                                         max_age=max_age, now=now))  # fmt: skip
        if bad:
            out.append(({**entry, "status": "rejected", "reasons": [f"{f.code}: {f.message}" for f in bad]}, []))
            continue
        why = ("no trust list (--trusted-keys): who signed is unchecked" if trusted is None
               else "freshness unchecked (no --max-age)" if max_age is None else None)  # fmt: skip
        if why:
            rows = [
                tuple(v.REPORTED if i == tier_col else why if i == why_col else x for i, x in enumerate(r))
                for r in rows
            ]
        out.append((entry, rows))
    return out


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask: a container's or a job's share), not the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """While the block runs, the cyclic collector leaves alone the objects that exist when it starts (gc.freeze; they
    are still freed by reference counting): each full collection otherwise walks every imported module's objects and
    every document read so far (a country's store holds millions), 6% of verifying a site's node reports and of
    re-deriving a disclosure. Nests: a block entered with the heap already frozen leaves that freeze to its owner.
    Whether it is frozen is first asked of this module's own mark (set by the outermost block, and inherited by a
    process forked inside it): gc.get_freeze_count() walks every frozen object, once per level derived: 23 of a
    site's 55 ms of CPU in the 30,000-node country, more in a larger one (its store holds more objects)."""
    global _FROZEN
    if _FROZEN or gc.get_freeze_count():  # the caller froze the heap already (a fork, an outer block): theirs to undo
        yield
        return
    gc.freeze()
    _FROZEN = True
    try:
        yield
    finally:
        _FROZEN = False
        gc.unfreeze()


#: Whether frozen_heap's outermost block is running (in this process, or in the one that forked it inside the block).
_FROZEN = False


_SHARED: list[Any] = []


def _call_shared(fn: Any, index: int) -> Any:
    if index + READ_AHEAD < len(_SHARED):
        _read_ahead(_SHARED[index + READ_AHEAD])
    return fn(_SHARED[index])


#: How many inputs ahead of the one being examined a file is asked of the kernel (POSIX_FADV_WILLNEED).
READ_AHEAD = 16


def _read_ahead(item: Any) -> None:
    """Ask the kernel to start reading an input's file now (posix_fadvise WILLNEED, which returns at once), so that
    examining the inputs before it overlaps the disk: a country's node reports are read once each, mostly from
    disk, and a worker that waits on each read leaves its core idle (the 10,000-node country's cold aggregate kept
    its two cores 68% busy). Only a regular file is advised, opened as intake opens it (non-blocking, not through a
    symbolic link); anything else, or any error, is left to the read itself, which checks and reads the bytes once."""
    path = item[1] if type(item) is tuple and len(item) == 2 else None
    if not isinstance(path, Path) or not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except (OSError, ValueError):
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def _examine_in_turn(task: Any, items: list[Any]) -> list[Any]:
    """task over items in this process, in order, each input's file asked of the kernel READ_AHEAD inputs ahead."""
    for item in items[:READ_AHEAD]:
        _read_ahead(item)
    done = []
    for i, item in enumerate(items):
        if i + READ_AHEAD < len(items):
            _read_ahead(items[i + READ_AHEAD])
        done.append(task(item))
    return done


class WorkerDied(ReportError):
    """A task's worker process ended without its result (a signal: the kernel's OOM killer, a segmentation fault in a
    C library, a SIGKILL), the task run alone in a process of its own. One line for a person (a ReportError: the
    command line prints it, never a traceback)."""


def _died_how(exitcode: int | None) -> str:
    """How a worker process ended, for a person: 'signal 9: SIGKILL, killed, e.g. out of memory'."""
    if exitcode is None or exitcode >= 0:
        return f"exit status {exitcode} before its result was sent"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = "unknown signal"
    hint = {"SIGKILL": "killed, e.g. out of memory", "SIGSEGV": "segmentation fault", "SIGBUS": "bus error",
            "SIGABRT": "aborted"}.get(name)  # fmt: skip
    return f"signal {-exitcode}: {name}" + (f", {hint}" if hint else "")


def _run_range(fn: Any, start: int, stop: int) -> list[Any]:
    """fn over _SHARED[start:stop] in a forked worker (which inherited _SHARED), reading READ_AHEAD inputs ahead."""
    return [_call_shared(fn, i) for i in range(start, stop)]


def _run_items(fn: Any, items: list[Any]) -> list[Any]:
    return [fn(item) for item in items]


def _solo_child(fn: Any, index: int, item: Any, send: Any) -> None:
    try:
        out: tuple[str, Any] = ("ok", fn(_SHARED[index] if item is _FROM_SHARED else item))
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, which raises it in order
        out = ("raised", exc)
    try:
        send.send(out)
    except Exception as exc:  # noqa: BLE001 - a result or exception that cannot be pickled
        send.send(("raised", RuntimeError(f"task {index}'s outcome could not be sent back: {exc}")))


_FROM_SHARED = object()


def _solo(ctx: Any, fn: Any, index: int, item: Any) -> tuple[str, Any]:
    """fn(item) in a process of its own: ('ok', result), ('raised', exception) or ('died', how it ended)."""
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_solo_child, args=(fn, index, item, send))
    proc.start()
    send.close()
    try:
        try:
            return recv.recv()
        except EOFError:
            proc.join()
            return "died", _died_how(proc.exitcode)
    finally:
        recv.close()
        if proc.is_alive():
            proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()


def _pooled(ctx: Any, fn: Any, items: list[Any], chunks: list[tuple[int, int]], workers: int, shared: bool,
            out: dict[int, tuple[str, Any]]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:  # fmt: skip
    """The chunks ((start, stop) of items) on a fresh pool, at most two a worker in flight, each chunk's outcome kept
    in out[start] as it comes back. If a worker dies the pool breaks: returns the chunks in flight then (one of them
    killed it) and those never sent, for the caller to retry; otherwise ([], [])."""
    todo = collections.deque(chunks)
    running: dict[concurrent.futures.Future[Any], tuple[int, int]] = {}
    suspects: list[tuple[int, int]] = []
    broken = False
    with concurrent.futures.ProcessPoolExecutor(min(workers, len(chunks)), mp_context=ctx) as pool:
        while todo or running:
            while todo and not broken and len(running) < 2 * workers:
                a, b = todo[0]
                try:
                    fut = (pool.submit(_run_range, fn, a, b) if shared
                           else pool.submit(_run_items, fn, items[a:b]))  # fmt: skip
                except concurrent.futures.BrokenExecutor:
                    broken = True
                    break
                running[fut] = todo.popleft()
            if not running:
                break
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in done:
                chunk = running.pop(fut)
                try:
                    out[chunk[0]] = ("ok", fut.result())
                except concurrent.futures.BrokenExecutor:
                    broken = True
                    suspects.append(chunk)
                except Exception as exc:  # noqa: BLE001 - raised in order by the caller, as a loop would raise it
                    out[chunk[0]] = ("raised", exc)
    return suspects, list(todo)


def _map_parallel(fn: Any, items: list[Any], jobs: int | None = None,
                  died: Callable[[Any, str], Any] | None = None) -> list[Any]:  # fmt: skip
    """fn over items on `jobs` processes (default: every core). Verification is CPU-bound pure Python (canonical
    JSON). Where processes fork, the workers inherit `items` and receive only indices, instead of every report being
    pickled across.

    A worker that dies (the OOM killer, a segfault, a SIGKILL) costs no other item its result: the results that came
    back are kept, the items in flight then are run again one by one on a fresh pool and those still unsent in chunks,
    and an item whose worker dies again is run alone in a process of its own. If that process dies too, the item's
    result is died(item, how) (examine_all: a rejected entry), or without `died` a WorkerDied naming the task.
    Ctrl-C (KeyboardInterrupt) stops the run."""
    workers = min(jobs or usable_cores(), len(items))  # a fork pool starts every worker at once, needed or not
    if workers < 2:
        return [fn(item) for item in items]
    chunk = max(1, len(items) // (workers * 8))
    shared = "fork" in multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if shared else None)
    out: dict[int, tuple[str, Any]] = {}
    chunks = [(a, min(a + chunk, len(items))) for a in range(0, len(items), chunk)]
    with contextlib.ExitStack() as stack:
        if shared:
            _SHARED[:] = items
            stack.callback(_SHARED.clear)
            # the workload descriptors a worker's re-derivation imports (bench.registry loads them on first use):
            # imported here they are inherited, where each worker of each pool imported them again (a tenth of a
            # 500-report pool)
            registry.workloads()
            # Forked workers share the parent's objects copy-on-write; the collector would touch (copy) and traverse
            # every inherited report on each full collection. Frozen objects are left alone: about 30% less CPU on a
            # large fleet.
            stack.enter_context(frozen_heap())
        while chunks:
            suspects, chunks = _pooled(ctx, fn, items, chunks, workers, shared, out)
            singles = [(i, i + 1) for a, b in suspects if b - a > 1 for i in range(a, b)]
            alone = [a for a, b in suspects if b - a == 1]
            while singles:  # the killer is among the chunks in flight: each of their items again, one a task
                more, singles = _pooled(ctx, fn, items, singles, workers, shared, out)
                alone += [a for a, _ in more]
            for i in sorted(alone):  # one of these killed its worker: each alone, in a process of its own
                kind, value = _solo(ctx, fn, i, _FROM_SHARED if shared else items[i])
                out[i] = (kind, [value] if kind == "ok" else value)
    results: list[Any] = []
    for start in sorted(out):
        kind, value = out[start]
        if kind == "raised":
            raise value
        if kind == "died":
            if died is None:
                task = getattr(fn, "func", fn)
                raise WorkerDied(f"task {start + 1} of {len(items)} ({getattr(task, '__module__', '?')}."
                                 f"{getattr(task, '__qualname__', task)}) ended its worker process ({value})")  # fmt: skip
            results.append(died(items[start], value))
        else:
            results.extend(value)
    return results


def map_forked(fn: Any, items: list[Any], jobs: int | None = None) -> list[Any]:
    """fn over items in forked worker processes (one per core, or `jobs`), which inherit `items` (and everything they
    reference: a disclosure tree's store of documents) instead of receiving them pickled; in this process, in order,
    where processes cannot fork or one core is all there is. `fn` must be picklable (a module-level function or a
    partial of one); its results come back pickled, in the order of `items`, and the first exception in that order is
    raised, as a loop would raise it. A task that ends its worker process even when run alone (the OOM killer, a
    segfault) raises WorkerDied, one line naming the task; no other task's result is lost to it (_map_parallel)."""
    if not forks(len(items), jobs):
        with frozen_heap():
            return [fn(item) for item in items]
    return _map_parallel(fn, items, jobs)


def forks(tasks: int, jobs: int | None = None) -> bool:
    """Whether map_forked would run `tasks` tasks in worker processes (not in this process)."""
    return "fork" in multiprocessing.get_all_start_methods() and min(jobs or usable_cores(), tasks) >= 2


@dataclass(frozen=True)
class _SignatureCheck:
    """A task for the verification pool: check this document's signature (see verify_capacity)."""

    data: dict[str, Any]


def _task(item: Any, **kw: Any) -> Any:
    return sign.check(item.data) if isinstance(item, _SignatureCheck) else _examine(item, **kw)


def examine_all(inputs: list[tuple[str, Any]], *, now: dt.datetime, check_signature_of: dict[str, Any] | None = None,
                jobs: int | None = None,
                mamf_rule: str = figures.MAMF_RULE_STEADY) -> tuple[Examined, tuple[bool, str] | None]:  # fmt: skip
    """Every input verified (in parallel from PARALLEL_FROM inputs on, on `jobs` processes: default every core; 1 in
    this process), before any trust or age policy (apply_policy): (input-list entry, device rows) each. An input's
    data is its parsed JSON or a Path to read it from. With check_signature_of, that document's signature is checked
    by the same pool, alongside (a capacity report's canonical bytes take seconds on a large fleet). mamf_rule: the
    rule device rows take their MAMF by (bench.figures.mamf)."""
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs should be at least 1, got {jobs}")
    task = functools.partial(_task, now=now, mamf_rule=mamf_rule)
    items: list[Any] = ([_SignatureCheck(check_signature_of)] if check_signature_of is not None else []) + list(inputs)
    parallel = len(inputs) >= PARALLEL_FROM and jobs != 1
    if parallel:
        done = _map_parallel(task, items, jobs, died=_unchecked)
    else:
        with frozen_heap():
            done = _examine_in_turn(task, items)
    if check_signature_of is not None:
        return done[1:], done[0]
    return done, None
