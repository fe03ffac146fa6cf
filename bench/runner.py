"""Run a plan of measurements into a node report, saving after each so a crash or Ctrl-C loses nothing finished.

Steps with a `lane` (a GPU's device id) run in order within their lane, and the lanes of a node's GPUs run at the same
time: measured one after another, eight GPUs take eight times as long, and each GPU's sustained figure would be taken
with its neighbours idle (cooler, more power to share) - flattering. Every measurement taken that way records which
devices ran alongside it. Steps without a lane (the CPU, training) run after, in this process.

Each lane runs in a worker process of its own, never in a thread of this one. A CUDA event pair times everything
between the two events reaching the GPU, the time the stream sat empty waiting for its host included: eight lanes
behind one interpreter lock (and this process's report saves) left each GPU's stream idle inside its own timed region
while the other lanes' hosts launched, so short products and sustained windows read low on multi-GPU nodes only.
mamf-finder and nccl-tests run one process per GPU for the same reason. A worker is started by forkserver (spawn where
there is none), never forked from a process that may have initialised CUDA; it is bound to its device before anything
touches CUDA, rebuilds its lane's steps from a picklable plan (steps are closures), spools each finished measurement
to disk and sends it here: only this process saves the report and reports progress, so no save is ever inside a
timed region.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.hardware import devices
from bench.model.reports import Measurement, NodeReport, Samples, utc_now
from bench.provenance import tool_info
from bench.report.store import ReportWriter, new_run_id


@dataclass(frozen=True)
class Step:
    """One unit of work: returns a Measurement, or yields several (a search), each saved as soon as it arrives."""

    label: str
    run: Callable[[], Measurement | Iterable[Measurement]]
    #: what an error record names when the step fails (see execute(keep_going=True))
    workload: str = "step"
    device: dict[str, Any] | None = None
    #: the device whose steps run in order in one worker process, concurrently with other lanes (None: run after the
    #: lanes, in this process)
    lane: str | None = None


@dataclass
class JobContext:
    """What a workload's job phase runs with, in a job of several ranks (bench.orchestrate.distributed_suite), once
    the node leaders' gather is done: the rank's placement (launch.Placement) and device, the host inventory, and the
    ranks whose own device fell behind (each phase names them in the measurements synchronous work ran at their pace)."""

    where: Any
    kind: str
    device: devices.DeviceFacts
    host: dict[str, Any]
    fingerprint: str | None
    stragglers: list[dict[str, Any]]
    #: a long phase's progress(done, total) callback, by its step label (the leader's live progress)
    steps_of: Callable[[str], Callable[[int, int], None] | None]
    #: a loop without steps: sweep(label, total) gives the callback to call once per item
    sweep: Callable[[str, int], Callable[[], None]]


@dataclass(frozen=True)
class JobPhase:
    """One phase a workload runs across a job's ranks (its descriptor's `job`): the step rank 0 shows in the plan and
    its progress line, and what the phase yields when run (None: nothing for this rank to record). `leaders`: every
    node leader records what its rank yields (training: its node's ranks); otherwise rank 0 alone (collectives)."""

    step: Step
    run: Callable[[JobContext], Iterable[Measurement | None]]
    leaders: bool = False


def lane(device: devices.DeviceFacts) -> str | None:
    """The lane a device's steps run in: GPUs measure in lanes of their own, at the same time as the node's other
    GPUs; the CPU alone (None). A MIG instance bench binds is keyed by its MIG- UUID: its worker shows it alone
    (devices.bind_process)."""
    return (device.visible or device.id) if device.kind == "cuda" else None


class Terminated(BaseException):
    """SIGTERM (a scheduler's cancel or pre-emption) delivered as an exception, so the report is closed as partial
    exactly as on Ctrl-C. A BaseException, so that no step's error handling swallows it."""


def failure(step: Step, exc: BaseException, start: str) -> Measurement:
    """The record of a step that raised: status 'error' with the exception, so the suite can go on."""
    lines = traceback.format_exception_only(type(exc), exc)
    return Measurement(
        workload=step.workload,
        spec={"step": step.label},
        device=step.device or {},
        status="error",
        reason=(lines[-1].strip() if lines else type(exc).__name__)[:500],
        details={"traceback": traceback.format_exc(limit=8)[-4000:]},
        start_utc=start,
        end_utc=utc_now(),
    )


def measurements_of(step: Step, keep_going: bool = False) -> Iterator[Measurement]:
    """The step's measurements as they arrive (a Measurement, or several from a generator). With keep_going, an
    exception ends the step with its failure() record instead of propagating (Ctrl-C and SIGTERM always propagate)."""
    start = utc_now()
    try:
        result = step.run()
        yield from [result] if isinstance(result, Measurement) else result
    except Exception as exc:
        if not keep_going:
            raise
        yield failure(step, exc, start)


def start(
    results_dir: Path, config: dict[str, Any], inventory: dict[str, Any], key: Ed25519PrivateKey | None = None
) -> ReportWriter:
    """Create results_dir/<run-id>/report.json (its header written at once, each measurement appended as it arrives;
    signed with `key`: see bench.report.store.ReportWriter)."""
    run_id = new_run_id()
    report = NodeReport(
        run_id=run_id,
        tool=tool_info(),
        command_line=list(sys.argv),
        config=config,
        inventory=inventory,
        start_utc=utc_now(),
    )
    return ReportWriter(report, results_dir / run_id, key)


class Spool:
    """One rank's finished measurements, appended to RESULTS_DIR/.spool/<job>-<host>-rank<N>.jsonl as each finishes
    (flushed and fsynced), for ranks that are not their node's leader: their measurements reach the signed report
    only at the gather, and a rank that dies before it would lose them. recover() reads this host's spools of the
    job; remove() deletes this rank's once its measurements were delivered."""

    def __init__(self, results_dir: Path, job: str, host: str, rank: int) -> None:
        self.folder = results_dir / ".spool"
        self.prefix = f"{job}-{host[:16]}-rank"
        self.path = self.folder / f"{self.prefix}{rank}.jsonl"

    def add(self, m: Measurement) -> None:
        """Append `m` in its record form (raw samples as compact exact blocks, bench.model.samples), one line. Its
        samples become model.Samples, and it keeps its encoded blocks: sent on to the leader, it pickles compactly and
        the report writer reuses the blocks. Written and flushed, not fsynced: what a spool guards against is this
        rank's process dying (the kernel keeps what was written); an fsync cost 2-15 ms of this device's time here."""
        from bench.model.canonical import canonical_bytes

        for name in ("warmup_s", "samples_s"):
            if not isinstance(getattr(m, name), Samples):
                setattr(m, name, Samples(getattr(m, name)))
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as fh:
            fh.write(canonical_bytes(m.to_record()) + b"\n")

    def recover(self) -> list[Measurement]:
        """Every measurement in this host's spools of this job but this rank's own; a torn last line is skipped, and
        so is a line that does not read as a measurement record (every line is read as hostile input)."""
        from bench.model import intake

        out = []
        for path in sorted(self.folder.glob(f"{self.prefix}*.jsonl")):
            if path == self.path:
                continue
            for line in intake.read_bytes(path, max_bytes=intake.DEFAULT_MAX_STREAM_BYTES).split(b"\n"):
                try:
                    out.append(Measurement.from_record(intake.parse_json(line, str(path))))
                except (ValueError, TypeError, KeyError):
                    continue
        return out

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def lane_spool(folder: Path, run_id: str, host: str | None, rank: int) -> Spool:
    """Where a lane's worker spools what it finished: RESULTS/<run>/.spool/lanes-<run id>-<host fingerprint>-rank<N>
    .jsonl, named by its run and its host, so that `bench recover` (bench.report.recover) folds into a report only
    its own run's and its own host's spools (a results folder copied or shared may hold others)."""
    return Spool(folder, f"lanes-{run_id}", host or "host", rank)


def lanes(steps: Sequence[Step]) -> dict[str, list[Step]]:
    """The steps of each lane, in order."""
    out: dict[str, list[Step]] = {}
    for s in steps:
        if s.lane is not None:
            out.setdefault(s.lane, []).append(s)
    return out


#: A lane's steps, rebuilt inside its worker: `plan(lane)` is a context manager giving the lane's steps in order (and
#: closing what they opened, such as telemetry readers). It must pickle (a module-level function, or a
#: functools.partial of one over picklable data), since the worker is a fresh process.
LanePlan = Callable[[str], contextlib.AbstractContextManager[Sequence[Step]]]
#: Called first in each worker with its lane, before CUDA is touched (tests install their CUDA fake with it). Picklable.
WorkerInit = Callable[[str], None]

#: Seconds a stopped worker gets to end on SIGTERM before it is killed.
STOP_GRACE_S = 5.0
#: Seconds a worker, ready to measure, waits for the other lanes' workers to be ready too (they start one after
#: another, each importing torch and opening its device): then all lanes start measuring together, and none is timed
#: while its neighbours' hosts are still starting up. A worker that never gets ready does not hold the others longer.
START_WAIT_S = 300.0


@contextlib.contextmanager
def given_steps(steps: dict[str, list[Step]], lane: str) -> Iterator[Sequence[Step]]:
    """The LanePlan of steps that pickle as they are (their `run` a module-level function or a partial of one)."""
    yield steps[lane]


def execute(
    writer: ReportWriter,
    steps: Sequence[Step],
    on_step: Callable[[Step], None] | None = None,
    on_measurement: Callable[[Measurement], None] | None = None,
    keep_going: bool = False,
    concurrent: bool = True,
    plan: LanePlan | None = None,
    worker_init: WorkerInit | None = None,
) -> NodeReport:
    """Run every step, saving each measurement as it arrives: with `concurrent` and more than one lane, the lanes at
    once (one worker process each, its steps rebuilt there by `plan`, by default the lane's steps pickled as they are),
    then the steps without a lane in order; otherwise everything in order, here - except a MIG instance's lane (keyed
    by its MIG- UUID), which always runs in a worker of its own (a process sees one MIG instance, and this one may
    see another): sequentially, one such worker after another, first. With keep_going, a step that raises
    is recorded as an 'error' measurement and the next step runs, and a worker that dies becomes an 'error' record for
    its lane while the other lanes finish; otherwise, and always on Ctrl-C or SIGTERM, the workers are stopped, the
    report is closed as interrupted with every measurement received, and the exception re-raised."""
    every = lanes(steps)
    parallel = every if concurrent and (len(every) > 1 or any(map(devices.is_mig_name, every))) else {}
    batches = [parallel] if parallel else [{lane: s} for lane, s in every.items() if devices.is_mig_name(lane)]
    in_workers = {lane for batch in batches for lane in batch}

    def record(step_or_m: Step | Measurement) -> None:
        if isinstance(step_or_m, Step):
            if on_step:
                on_step(step_or_m)
            return
        writer.add(step_or_m)
        if on_measurement:
            on_measurement(step_or_m)

    try:
        for batch in batches:
            spool = functools.partial(lane_spool, writer.path.parent, writer.report.run_id,
                                      (writer.report.inventory.get("host") or {}).get("fingerprint"))  # fmt: skip
            Lanes(batch, plan or functools.partial(given_steps, batch), worker_init, keep_going, spool,
                  first_rank=sorted(in_workers).index(min(batch))).run(record)  # fmt: skip
        for step in steps:
            if step.lane in in_workers:
                continue
            record(step)
            for m in measurements_of(step, keep_going):
                record(m)
    except BaseException:
        writer.finish(interrupted=True)
        raise
    writer.finish()
    return writer.report


def _step_modules() -> list[str]:
    """The modules of every registered workload's steps function (bench.registry: `steps`): a lane's worker rebuilds
    its steps with them, so the fork server imports them (and torch) once, not each worker."""
    from bench import registry

    return [w.steps.partition(":")[0] for w in registry.workloads() if w.steps]


def worker_context() -> multiprocessing.context.BaseContext:
    """forkserver where the platform has it (each worker forks from a clean server that never touched CUDA and has
    torch imported already), else spawn. Never fork: CUDA cannot be used in a child forked after it was initialised."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["bench.runner", "bench.plans", *_step_modules()])
        return ctx
    return multiprocessing.get_context("spawn")


class LaneDied(RuntimeError):
    """A lane's worker process ended without finishing its lane (a segfault, the out-of-memory killer)."""


class Lanes:
    """The lanes of a node, one worker process each, run at once; their measurements recorded here as they arrive."""

    def __init__(self, parallel: dict[str, list[Step]], plan: LanePlan, worker_init: WorkerInit | None,
                 keep_going: bool, spool: Callable[[int], Spool], first_rank: int = 0) -> None:  # fmt: skip
        self.parallel, self.plan, self.worker_init, self.keep_going = parallel, plan, worker_init, keep_going
        self.together = sorted(parallel)
        # one spool per lane of the run (`first_rank`: this batch's first lane among all the run's worker lanes)
        self.spools = {lane: spool(first_rank + i) for i, lane in enumerate(self.together)}
        try:
            pickle.dumps((plan, worker_init))
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise TypeError(f"a lane's steps must be rebuilt in its worker process: the lane plan does not pickle "
                            f"({exc}); give execute() a plan= that rebuilds them from data") from exc  # fmt: skip

    def run(self, record: Callable[[Step | Measurement], None]) -> None:
        ctx = worker_context()
        # the node's host<->device copies take turns across the workers (devices.host_copies)
        copies = self.copies = devices.SharedCopies(ctx)
        self.ready = ctx.Barrier(len(self.together))
        # the workers read EOF on `alive` once this process's end closes: when it is done with them, or killed
        alive, self.alive = ctx.Pipe(duplex=False)
        self.procs: dict[str, Any] = {}
        self.pipes: dict[str, Connection] = {}
        self.current: dict[str, Step | None] = {lane: None for lane in self.together}
        done: set[str] = set()
        try:
            for lane in self.together:
                receive, send = ctx.Pipe(duplex=False)
                p = ctx.Process(target=_lane_worker, name=f"bench-{lane}", daemon=True,
                                args=(lane, self.plan, [s.label for s in self.parallel[lane]], self.worker_init,
                                      send, self.spools[lane], self.keep_going, self.together, copies,
                                      self.ready, alive))  # fmt: skip
                p.start()
                send.close()  # the worker holds the only sending end: its death closes the pipe
                self.procs[lane], self.pipes[lane] = p, receive
            running = set(self.together)
            while running:
                by_handle = {self.pipes[lane]: lane for lane in running}
                for ready in wait(list(by_handle), timeout=0.5):
                    lane = by_handle[ready]  # type: ignore[index]
                    if self._receive(lane, record):
                        done.add(lane)
                        running.discard(lane)
                for lane in list(running):
                    if not self.procs[lane].is_alive() and not self.pipes[lane].poll():
                        running.discard(lane)
                        self._died(lane, record)
        except BaseException:
            self._drain(record, done)
            self.stop()
            raise
        finally:
            alive.close()
        for lane in self.together:
            self.procs[lane].join()
            self.spools[lane].remove()
        self.alive.close()

    def _receive(self, lane: str, record: Callable[[Step | Measurement], None]) -> bool:
        """Handle one message from a lane's worker; True once the lane is finished. A closed pipe without 'done' is
        a worker that died."""
        try:
            kind, value = self.pipes[lane].recv()
        except (EOFError, OSError):
            self.procs[lane].join(STOP_GRACE_S)
            self._died(lane, record)
            return True
        if kind == "step":
            step = self.parallel[lane][value]
            self.current[lane] = step
            record(step)
        elif kind == "measurement":
            record(value)
        elif kind == "raised":
            self.ready.abort()
            raise value
        return kind in ("done", "raised")

    def _died(self, lane: str, record: Callable[[Step | Measurement], None]) -> None:
        """A worker ended without finishing its lane: an 'error' record naming how it ended, then (without
        keep_going) LaneDied, which stops the other lanes."""
        p = self.procs[lane]
        self.ready.abort()  # a worker that died before it was ready must not hold the others at the start
        p.join(STOP_GRACE_S)
        self.copies.release_if_held_by(p.pid)  # killed mid-copy: the other lanes' copies must not wait for it
        code = p.exitcode
        how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 and -code in
               signal.valid_signals() else f"exit code {code}")  # fmt: skip
        step = self.current[lane] or self.parallel[lane][0]
        exc = LaneDied(f"the worker process measuring {lane} died ({how}) during step {step.label!r}: a SIGKILL is "
                       "often the kernel's out-of-memory killer, a SIGSEGV a driver or library fault")  # fmt: skip
        start = utc_now()
        try:
            raise exc
        except LaneDied:
            m = failure(Step(step.label, step.run, step.workload, step.device or {"id": lane}, lane), exc, start)
        m.details["exit"] = how
        record(m)
        if not self.keep_going:
            raise exc

    def _drain(self, record: Callable[[Step | Measurement], None], done: set[str]) -> None:
        """Record every measurement the workers already sent (on Ctrl-C, SIGTERM or a failed lane)."""
        for lane, pipe in getattr(self, "pipes", {}).items():
            with contextlib.suppress(Exception):
                while lane not in done and pipe.poll():
                    kind, value = pipe.recv()
                    if kind == "measurement":
                        record(value)

    def stop(self) -> None:
        """SIGTERM every worker still running, then SIGKILL those that have not ended after STOP_GRACE_S."""
        if hasattr(self, "alive"):
            self.alive.close()
        procs = getattr(self, "procs", {})
        for p in procs.values():
            if p.is_alive():
                p.terminate()
        for p in procs.values():
            p.join(STOP_GRACE_S)
            if p.is_alive():
                p.kill()
                p.join()


def _watch_parent(alive: Connection) -> None:
    """End this worker when the process that started it is gone (killed, so it never stopped us): an orphaned lane
    would go on using its GPU for nobody; what it finished is in its spool. `alive` is the reading end of a pipe only
    the parent writes to (it never does): it reads EOF when the parent's end closes, at its death. (Not getppid(): a
    forkserver worker's parent is the fork server, which outlives a killed client while its children hold its socket.)"""

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                alive.recv()
        os._exit(3)

    threading.Thread(target=watch, name="bench-parent-watch", daemon=True).start()


def _lane_worker(lane: str, plan: LanePlan, labels: list[str], worker_init: WorkerInit | None, conn: Connection,
                 spool: Spool, keep_going: bool, together: list[str], copies: Any, ready: Any,
                 alive: Connection) -> None:  # fmt: skip
    """One lane in its own process: bind the device, rebuild the lane's steps, run them in order, and spool then send
    each measurement. Ctrl-C belongs to the parent, which stops the workers and closes the report. A MIG instance's
    lane is shown alone (CUDA_VISIBLE_DEVICES=<its MIG- UUID>) before anything, a test's worker_init included, can
    initialise CUDA."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if devices.is_mig_name(lane):
        devices.show_only(lane)
    if worker_init is not None:
        worker_init(lane)
    _watch_parent(alive)
    devices.share_host_copies(copies)
    try:
        devices.bind_process(lane)
        with plan(lane) as steps:
            got = [s.label for s in steps]
            if got != labels:
                raise RuntimeError(f"lane {lane}: its worker rebuilt the steps {got}, the plan has {labels}")
            with contextlib.suppress(threading.BrokenBarrierError):
                ready.wait(START_WAIT_S)
            for i, step in enumerate(steps):
                conn.send(("step", i))
                for m in measurements_of(step, keep_going):
                    if len(together) > 1:
                        m.details["concurrency"] = {"devices": together, "note": "measured at the same time as "
                                                    "these, one process each"}  # fmt: skip
                    spool.add(m)
                    conn.send(("measurement", m))
        conn.send(("done", None))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which closes the report and re-raises it
        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001 - an exception that does not pickle travels as its text
            exc = RuntimeError("".join(traceback.format_exception_only(type(exc), exc)).strip())
        with contextlib.suppress(OSError):
            conn.send(("raised", exc))
    finally:
        conn.close()
