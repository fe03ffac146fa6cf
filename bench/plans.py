"""What each workload runs, as runner steps and measurement generators: shared by the single-workload verbs and the
suite (`bench run`), so both measure exactly the same way."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.distributed as dist

from bench import figures, launch, registry, runner
from bench import precision as prec
from bench.hardware import devices, host, nvml, peaks
from bench.hardware.devices import DeviceFacts
from bench.measure.sampling import Policy
from bench.model.reports import Measurement, utc_now
from bench.workloads import comm as cm
from bench.workloads import matmul as mm
from bench.workloads import matmul_search as ms
from bench.workloads import membw as mb
from bench.workloads import train as tr

# --- matmul -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeakOverrides:
    clock_mhz: float | None = None
    fma_units: int | None = None

    def peak(self, device: DeviceFacts, host_inv: dict[str, Any], precision: str) -> peaks.Peak | None:
        return peaks.peak_for(device, host_inv, precision, clock_mhz=self.clock_mhz, fma_units=self.fma_units)


def fp8_modes(precision: str) -> tuple[bool, ...]:
    """fp8 is measured with and without fast accumulation (production GEMMs use it); every other precision once."""
    return (False, True) if precision == "float8_e4m3" else (False,)


def _mode_label(fast_accum: bool) -> str:
    return " fast-accum" if fast_accum else ""


def lane(device: DeviceFacts) -> str | None:
    """GPUs measure in lanes of their own, at the same time as the node's other GPUs (see runner); the CPU alone. A
    MIG instance bench binds is keyed by its MIG- UUID: its worker shows it alone (runner, devices.bind_process)."""
    return (device.visible or device.id) if device.kind == "cuda" else None


def fixed_plan(
    facts: list[DeviceFacts], host_inv: dict, precisions: tuple[str, ...], shapes: list[tuple[int, int, int]],
    policy: Policy, overrides: PeakOverrides,
) -> list[runner.Step]:  # fmt: skip
    """One step per device x precision x shape; defaults per device kind where none are named."""
    steps = []
    for f in facts:
        size = mm.DEFAULT_SIZE[f.kind]
        for name in precisions or prec.DEFAULT_PRECISIONS[f.kind]:
            peak = overrides.peak(f, host_inv, name)
            for (m, n, k), fast in itertools.product(shapes or [(size, size, size)], fp8_modes(name)):
                spec = mm.MatmulSpec(m, n, k, name, fast)
                steps.append(runner.Step(f"{f.label} {name}{_mode_label(fast)} {m}x{n}x{k}",
                                         functools.partial(mm.run, spec, f, policy, peak=peak), lane=lane(f)))  # fmt: skip
    return steps


def search_plan(
    facts: list[DeviceFacts], host_inv: dict, precisions: tuple[str, ...], mode: str, grid: list[tuple[int, int, int]],
    budget: float | None, window: float | None, overrides: PeakOverrides, readers: dict[str, Any],
    settle: float | None = None,
) -> list[runner.Step]:  # fmt: skip
    """One step per device x precision (fp8 twice: fast accumulation off and on); float32 first, so that later
    precisions can be tested for emulation. `settle`: seconds a large product runs before each search (default
    matmul_search.SETTLE_S per device kind)."""
    steps = []
    for f in facts:
        names = list(precisions or prec.DEFAULT_PRECISIONS[f.kind])
        names.sort(key=lambda n: n != "float32")
        config = ms.SearchConfig(mode, budget or ms.BUDGET_S[f.kind], ms.WINDOW_S[f.kind] if window is None else window, grid,
                                 settle_s=ms.SETTLE_S[f.kind] if settle is None else settle)  # fmt: skip
        float32_mamf: dict[str, float] = {}

        def run(f: DeviceFacts = f, name: str = "", config: ms.SearchConfig = config, f32=float32_mamf,
                fast: bool = False) -> Iterator[Measurement]:  # fmt: skip
            if prec.get(name).cuda_only and f.kind != "cuda":
                size = mm.DEFAULT_SIZE[f.kind]
                yield mm.run(mm.MatmulSpec(size, size, size, name), f, Policy())  # recorded as skipped, with why
                return
            sm_count = devices.sm_count(f.id) if f.kind == "cuda" else 0
            candidates = ms.candidates_for(f, name, config, devices.free_memory_bytes(f.id), sm_count)
            finals = []
            mode = dataclasses.replace(config, fast_accum=fast)
            for m in ms.search(f, name, mode, candidates, peak=overrides.peak(f, host_inv, name),
                               float32_tflops=f32.get("rate"), telemetry=readers.get(f.id)):  # fmt: skip
                if m.details["search"]["role"] == "final":
                    finals.append(m)
                yield m
            # the MAMF flag is set once every final is measured: only now is float32's MAMF known
            mamf = [m for m in finals if m.details["search"].get("mamf") and m.status == "ok"]
            if name == "float32" and mamf:
                f32["rate"] = mamf[0].summary["tflops_median"]

        steps += [runner.Step(f"{f.label} {name}{_mode_label(fast)} search", lambda n=name, r=run, fast=fast: r(name=n, fast=fast),
                              lane=lane(f)) for name in names for fast in fp8_modes(name)]  # fmt: skip
    return steps


def telemetry_readers(facts: list[DeviceFacts]) -> tuple[dict[str, Any], list[Callable[[], None]]]:
    """Telemetry readers by device id for MSMF windows (NVML for GPUs, the host's for the CPU) and their closers."""
    readers: dict[str, Any] = {}
    closers = []
    for f in facts:
        if f.kind == "cuda" and f.uuid:
            reader = nvml.telemetry_reader(f.uuid)
            if reader:
                readers[f.id], close = reader
                closers.append(close)
        elif f.kind == "cpu":
            readers[f.id] = host.cpu_telemetry
    return readers, closers


# --- memory bandwidth -------------------------------------------------------------------------------------------------


def membw_steps(facts: list[DeviceFacts], policy: Policy, elements: int | None) -> list[runner.Step]:
    """One step per device: STREAM's four kernels (and host<->device copies on GPUs)."""
    steps = []
    for f in facts:
        peak = peaks.memory_bandwidth_tbps(f.name) if f.kind == "cuda" else None
        cpus = nvml.cpu_affinity(f.uuid) if f.kind == "cuda" and f.uuid else None
        steps.append(runner.Step(f"membw {f.label}", functools.partial(mb.run, f, policy, elements, peak, cpu_affinity=cpus),
                                 lane=lane(f)))  # fmt: skip
    return steps


# --- training ---------------------------------------------------------------------------------------------------------


def train_peak(device: DeviceFacts, host: dict[str, Any], precision: str) -> peaks.Peak | None:
    """Training is held against the same peak as a matmul (peaks.peak_for), never with the CPU overrides."""
    return peaks.peak_for(device, host, precision)


def train_measurements(spec: tr.TrainSpec, facts: DeviceFacts, peak: peaks.Peak | None, where: launch.Placement,
                       progress: Callable[[int, int], None] | None = None,
                       host: str | None = None) -> list[Measurement]:  # fmt: skip
    """One rank: the measurement. Several: rank 0's single-rank baseline, then every rank's DDP run and the total.
    A node's report holds only its own devices, so each node leader (local rank 0) gets the DDP runs of the ranks on
    its host (`host`: this node's fingerprint); rank 0 also gets the baseline and the job-wide total, whose details
    name every rank's host and device. Other ranks get nothing. `progress(done, total)` follows each run's steps."""
    if not where.distributed:
        return [tr.run(spec, facts, peak=peak, progress=progress)]
    baseline = tr.run(spec, facts, peak=peak) if where.rank == 0 else None  # one rank alone: the scaling reference
    # the others wait for the baseline on the host-side group, whose timeout allows for a rank working alone
    dist.barrier(group=launch.control())
    ids = [facts.local_index] if facts.kind == "cuda" else None
    # each rank draws its own batches (seed = rank); DDP starts every replica from rank 0's parameters
    mine = tr.run(spec, facts, peak=peak, seed=where.rank, progress=progress,
                  wrap=lambda model: torch.nn.parallel.DistributedDataParallel(model, device_ids=ids))  # fmt: skip
    gathered: list[Any] = [None] * where.world_size
    dist.all_gather_object(gathered, {"rank": where.rank, "host": host, "measurement": mine.to_dict()},
                           group=launch.control())  # fmt: skip
    if where.local_rank != 0 and where.rank != 0:
        return []
    everyone = sorted(gathered, key=lambda g: g["rank"])
    ranks = [Measurement.from_dict(g["measurement"]) for g in everyone]
    for g, m in zip(everyone, ranks, strict=True):
        m.details["rank"], m.details["host"] = g["rank"], g["host"]
    local = [m for g, m in zip(everyone, ranks, strict=True) if g["host"] == host]
    if where.rank != 0:
        return local
    assert baseline is not None
    baseline.details["role"] = "single-rank baseline"
    return [baseline, *local, tr.data_parallel_total(spec, ranks, baseline, peak)]


# --- stragglers --------------------------------------------------------------------------------------------------------

#: A rank whose own device measured below this fraction of the job's median, at a precision every measuring rank has,
#: is named a straggler in the job's report (synchronous training and collectives run at its pace).
STRAGGLER_FRACTION = 0.75


def local_figures(measurements: list[Measurement]) -> dict[str, float]:
    """This rank's own matmul figure per precision, for comparing the ranks of a job: its device's MAMF
    (bench.figures.mamf: the search's when a search ran, else the best valid, non-emulated fixed-shape median; the
    best of its devices if it measured several)."""
    out: dict[str, float] = {}
    for (_, p), (m, _) in figures.mamf(measurements, lambda m: (m.device.get("uuid"), m.spec.get("precision"))).items():
        out[p] = max(out.get(p, 0.0), float(m.summary["tflops_median"]))
    return out


def stragglers(ranks: list[dict[str, Any]], fraction: float = STRAGGLER_FRACTION) -> list[dict[str, Any]]:
    """The ranks (each {rank, hostname, figures}) whose own matmul figure is below `fraction` x the median of the
    ranks that measured, at the first precision (float32 first) all of them measured. Empty when fewer than two did."""
    measured = [r for r in ranks if r.get("figures")]
    common = set.intersection(*(set(r["figures"]) for r in measured)) if len(measured) > 1 else set()
    if not common:
        return []
    precision = "float32" if "float32" in common else min(common)
    values = sorted(r["figures"][precision] for r in measured)
    mid = len(values) // 2
    median = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
    return [{"rank": r["rank"], "hostname": r.get("hostname"), "precision": precision,
             "tflops": r["figures"][precision], "job_median_tflops": median,
             "fraction_of_median": r["figures"][precision] / median}
            for r in measured if r["figures"][precision] < fraction * median]  # fmt: skip


# --- collectives ------------------------------------------------------------------------------------------------------


def comm_measurements(where: launch.Placement, ops: list[str], sizes: list[int], iterations: int, warmup: int,
                      device_name: str, facts: DeviceFacts, hostname: str | None,
                      batches: int = cm.BATCHES) -> Iterator[Measurement | None]:  # fmt: skip
    """Every op x size across the joined process group; every rank must iterate this in step. Rank 0 gets each
    size's Measurement (max over ranks, every rank's samples kept); other ranks get None. Each size is `batches`
    samples, each the per-op mean of `iterations` back-to-back operations (bench.workloads.comm.time_batches)."""
    n = where.world_size
    # One collective of every rank on the job's own group first: NCCL makes its communicator at the first call, and
    # a batched send/recv (sendrecv) may be that first call only if every rank takes part, which an odd rank out of
    # the pairs does not.
    dist.barrier()
    for op in ops:
        for size in sizes:
            start = utc_now()
            b = cm.buffers(op, size, where.rank, n, device_name)
            warm, timed, ok = cm.time_op(b, batches, iterations, warmup, device_name)
            gathered: list[Any] = [None] * n
            dist.all_gather_object(gathered, {"rank": where.rank, "host": hostname, "device": asdict(facts),
                                              "warmup_s": warm, "samples_s": timed, "correct": ok},
                                   group=launch.control())  # fmt: skip
            yield comm_measurement(op, b.bytes, n, gathered, facts, start, iterations) if where.rank == 0 else None


def comm_measurement(op: str, size: int, n: int, ranks: list[dict[str, Any]], facts: devices.DeviceFacts, start: str,
                     ops_per_sample: int = 1) -> Measurement:  # fmt: skip
    """Rank 0's record of one size: each sample (a batch's per-op mean) = max over ranks, every rank's raw samples
    kept; work_per_iteration stays the bytes of one operation, so verify re-derives the figures from the samples."""
    ranks = sorted(ranks, key=lambda r: r["rank"])
    samples = [max(r["samples_s"][i] for r in ranks) for i in range(len(ranks[0]["samples_s"]))]
    warm = [max(r["warmup_s"][i] for r in ranks) for i in range(len(ranks[0]["warmup_s"]))]
    wrong = [r["rank"] for r in ranks if not r["correct"]]
    return Measurement(
        workload=cm.WORKLOAD,
        spec={
            "op": op,
            "bytes": size,
            "world_size": n,
            "dtype": "float32",
            "backend": dist.get_backend(),
            "ops_per_sample": ops_per_sample,
        },
        device=asdict(facts),
        status="invalid" if wrong else "ok",
        reason=f"wrong result on rank(s) {wrong}" if wrong else None,
        work_per_iteration=size,  # bytes moved per iteration (S), the quantity bandwidths divide
        work_unit=figures.Unit.BYTE,
        timer="perf_counter",
        warmup_s=warm,
        samples_s=samples,
        summary=figures.comm_summary(samples, size, op, n),
        validity={"check": "collective", "passed": not wrong, "wrong_ranks": wrong},
        details={
            "busbw_factor": figures.busbw_factor(op, n),
            "per_rank": [
                {
                    "rank": r["rank"],
                    "host": r["host"],
                    "device": r["device"].get("id"),
                    "uuid": r["device"].get("uuid"),
                    "samples_s": r["samples_s"],
                }
                for r in ranks
            ],
        },
        start_utc=start,
        end_utc=utc_now(),
    )


# --- suites (bench run) ------------------------------------------------------------------------------------------


def suite_steps(config: dict[str, Any], facts: list[DeviceFacts], host_inv: dict[str, Any], readers: dict[str, Any],
                progress_for: Callable[[str], Callable[[int, int], None]] | None = None) -> list[runner.Step]:  # fmt: skip
    """A suite config's per-device workloads as steps, in the config's order: each workload's steps function
    (bench.registry: matmul_suite_steps, membw_suite_steps, train_suite_steps here) for each device. Workloads that
    run across ranks (comm) have none. `progress_for(label)` gives a long step its progress(done, total) callback."""
    steps: list[runner.Step] = []
    for name in config["suite"]["workloads"]:
        workload = registry.get(name)
        build = workload.step_builder() if workload else None
        if build is None:
            continue
        for f in facts:
            device = asdict(f)
            chosen = build(config[name], f, host_inv, readers, progress_for)
            # training stays out of the lanes (lane None), except on a MIG instance bench binds (train_suite_steps)
            steps += [runner.Step(s.label, s.run, name, device, s.lane) for s in chosen]
    return steps


@contextlib.contextmanager
def lane_plan(build: Callable[[list[DeviceFacts], dict[str, Any]], list[runner.Step]], facts: list[DeviceFacts],
              lane_id: str) -> Iterator[list[runner.Step]]:  # fmt: skip
    """runner.LanePlan: the steps of one lane, rebuilt in its worker process by `build(facts, readers)` (suite_build,
    search_build: module-level, so that functools.partial(lane_plan, partial(build, ...), facts) pickles where the
    steps, closures over telemetry readers and each other's results, do not), with telemetry readers of its own,
    closed when the lane is done."""
    # a MIG instance's facts are probed here, in the one process that sees it
    mine = [devices.probed(f) for f in facts if lane(f) == lane_id]
    readers, closers = telemetry_readers(mine)
    try:
        yield [s for s in build(mine, readers) if s.lane == lane_id]
    finally:
        for close in closers:
            close()


def suite_build(config: dict[str, Any], host_inv: dict[str, Any], facts: list[DeviceFacts],
                readers: dict[str, Any]) -> list[runner.Step]:  # fmt: skip
    """suite_steps as a lane_plan build."""
    return suite_steps(config, facts, host_inv, readers)


def fixed_build(host_inv: dict[str, Any], precisions: tuple[str, ...], shapes: list[tuple[int, int, int]],
                policy: Policy, overrides: PeakOverrides, facts: list[DeviceFacts],
                readers: dict[str, Any]) -> list[runner.Step]:  # fmt: skip
    """fixed_plan as a lane_plan build (its steps pickle as they are, but a MIG instance's facts must be probed in its
    worker)."""
    return fixed_plan(facts, host_inv, precisions, shapes, policy, overrides)


def membw_build(policy: Policy, elements: int | None, facts: list[DeviceFacts],
                readers: dict[str, Any]) -> list[runner.Step]:  # fmt: skip
    """membw_steps as a lane_plan build."""
    return membw_steps(facts, policy, elements)


def search_build(host_inv: dict[str, Any], precisions: tuple[str, ...], mode: str, grid: list[tuple[int, int, int]],
                 budget: float | None, window: float | None, overrides: PeakOverrides, settle: float | None,
                 facts: list[DeviceFacts], readers: dict[str, Any]) -> list[runner.Step]:  # fmt: skip
    """search_plan as a lane_plan build."""
    return search_plan(facts, host_inv, precisions, mode, grid, budget, window, overrides, readers, settle)


def matmul_suite_steps(mc: dict[str, Any], f: DeviceFacts, host_inv: dict[str, Any], readers: dict[str, Any],
                       progress_for: Callable[[str], Callable[[int, int], None]] | None = None) -> list[runner.Step]:  # fmt: skip
    """A suite's [matmul] section on one device: a search (MAMF, MSMF) or fixed sizes."""
    precisions = tuple(mc["precisions"])
    if mc["search"] == "auto":
        return search_plan([f], host_inv, precisions, "auto", [], mc["budget_s"], mc["window_s"], PeakOverrides(),
                           readers, mc["settle_s"])  # fmt: skip
    policy = Policy(
        budget_s=mc["budget_s"] or 1.0, min_iterations=mc["min_iterations"], max_warmup_s=mc["max_warmup_s"]
    )
    return fixed_plan([f], host_inv, precisions, [(n, n, n) for n in mc["sizes"]], policy, PeakOverrides())


def membw_suite_steps(bc: dict[str, Any], f: DeviceFacts, host_inv: dict[str, Any], readers: dict[str, Any],
                      progress_for: Callable[[str], Callable[[int, int], None]] | None = None) -> list[runner.Step]:  # fmt: skip
    """A suite's [membw] section on one device: the STREAM kernels."""
    policy = Policy(budget_s=bc["budget_s"], min_iterations=5, max_warmup_s=min(bc["budget_s"], 1.0))
    elements = int(bc["array_mib"] * 2**20 / 8) if bc["array_mib"] else None
    return membw_steps([f], policy, elements)


def train_suite_steps(tc: dict[str, Any], f: DeviceFacts, host_inv: dict[str, Any], readers: dict[str, Any],
                      progress_for: Callable[[str], Callable[[int, int], None]] | None = None) -> list[runner.Step]:  # fmt: skip
    """A suite's [train] section on one device: one step per model x preset, in this process."""
    chosen = []
    for spec in train_specs(tc, f.kind):
        label = f"train {spec.model} {spec.preset} on {f.label}"
        # in this process after the lanes, except on a MIG instance bench binds: this process cannot see it
        chosen.append(runner.Step(label, lambda s=spec, f=f, label=label: train_measurements(
            s, f, train_peak(f, host_inv, s.precision), launch.placement({}),
            progress_for(label) if progress_for else None), lane=f.visible))  # fmt: skip
    return chosen


#: Training presets a suite runs when its config names none.
DEFAULT_TRAIN_PRESETS = {"cpu": ("tiny",), "cuda": ("small", "gpt2-124m")}


def train_specs(tc: dict[str, Any], kind: str) -> list[tr.TrainSpec]:
    """The [train] section of a suite config as specs for a device kind."""
    precision = tc["precision"] or ("bfloat16" if kind == "cuda" else "float32")
    return [tr.preset(m, p, steps=tc["steps"], warmup=tc["warmup_steps"], precision=precision)
            for m in tc["models"] for p in (tc["presets"] or DEFAULT_TRAIN_PRESETS[kind])]  # fmt: skip
