"""matmul's planning: fixed-size products and the shape search (MAMF, MSMF) as steps per device x precision, the
peaks they are held against, and the straggler rule a multi-rank job judges its ranks' own matmul figures by."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bench import figures, runner
from bench import precision as prec
from bench.hardware import devices, peaks, pinning
from bench.hardware.devices import DeviceFacts
from bench.measure.sampling import Policy
from bench.model.reports import Measurement
from bench.workloads import matmul as mm
from bench.workloads import matmul_search as ms


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


def fixed_plan(
    facts: list[DeviceFacts], host_inv: dict, precisions: tuple[str, ...], shapes: list[tuple[int, int, int]],
    policy: Policy, overrides: PeakOverrides, pin_cpu: int | None = None, all_cores: bool = True, rounds: int = 1,
) -> list[runner.Step]:  # fmt: skip
    """One step per device x precision x shape; defaults per device kind where none are named. `pin_cpu` (CPU
    devices): each also measured on one thread pinned to that CPU (pinning.FIRST_ALLOWED, -1: the first this process
    may run on; the per-core figure, labelled cpus=N), after
    the all-core one (labelled cpus=all; left out with `all_cores` False). A CPU this process may not run on gives
    each pinned measurement status 'error' with the reason (bench.hardware.pinning), so the run fails (exit 1).
    `rounds`: the whole list measured that many times in turn (round 1 of every step, then round 2, ...), so that
    each metric's windows are spread over the run and a host stall of a second or two slows one round of it, not
    all (bench gate reads the fastest iteration over the rounds: bench.report.gates.timed_run)."""
    if pin_cpu == pinning.FIRST_ALLOWED:  # resolved here, so that steps and labels name the CPU measured
        with contextlib.suppress(pinning.PinningError):  # no affinity call: each pinned measurement says so
            pin_cpu = pinning.resolve(pin_cpu)
    steps = []
    for f in facts:
        size = mm.DEFAULT_SIZE[f.kind]
        pinned = pin_cpu is not None and f.kind == "cpu"
        ways: list[int | str | None] = [None]
        if pinned:
            ways = [*([mm.ALL_CPUS] if all_cores else []), pin_cpu]
        for name in precisions or prec.DEFAULT_PRECISIONS[f.kind]:
            peak = overrides.peak(f, host_inv, name)
            for (m, n, k), fast in itertools.product(shapes or [(size, size, size)], fp8_modes(name)):
                spec = mm.MatmulSpec(m, n, k, name, fast)
                for cpus in ways:
                    where = "" if cpus is None else f" cpus={cpus}"
                    steps.append(runner.Step(f"{f.label} {name}{_mode_label(fast)} {m}x{n}x{k}{where}",
                                             functools.partial(mm.run, spec, f, policy, peak=peak, cpus=cpus),
                                             lane=runner.lane(f)))  # fmt: skip
    if rounds <= 1:
        return steps
    return [dataclasses.replace(s, label=f"{s.label} round {r}/{rounds}") for r in range(1, rounds + 1) for s in steps]


def search_plan(
    facts: list[DeviceFacts], host_inv: dict, precisions: tuple[str, ...], mode: str, grid: list[tuple[int, int, int]],
    budget: float | None, window: float | None, overrides: PeakOverrides, readers: dict[str, Any],
    settle: float | None = None,
) -> list[runner.Step]:  # fmt: skip
    """One step per device x precision (fp8 twice: fast accumulation off and on); float32 first, so that later
    precisions can be tested for emulation. `settle`: seconds a large product runs before each search (default
    matmul_search.SETTLE_S per device kind). `readers`: telemetry readers by device id for the MSMF windows
    (bench.measure.telemetry.readers)."""
    steps = []
    for f in facts:
        names = list(precisions or prec.DEFAULT_PRECISIONS[f.kind])
        names.sort(key=lambda n: n != "float32")
        config = ms.SearchConfig(mode, budget or ms.BUDGET_S[f.kind], ms.WINDOW_S[f.kind] if window is None else window, grid,
                                 settle_s=ms.SETTLE_S[f.kind] if settle is None else settle)  # fmt: skip
        float32_mamf: dict[str, Any] = {}

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
                               float32_tflops=f32.get("rate"), float32_rates=f32.get("by_shape"),
                               telemetry=readers.get(f.id)):  # fmt: skip
                if m.details["search"]["role"] == "final":
                    finals.append(m)
                if name == "float32" and m.status == "ok" and m.summary:
                    # float32's best rate per shape: what a later precision's same shape is compared with (emulation)
                    shape, rate = (m.spec["m"], m.spec["n"], m.spec["k"]), m.summary["tflops_median"]
                    by_shape = f32.setdefault("by_shape", {})
                    by_shape[shape] = max(by_shape.get(shape, 0.0), rate)
                yield m
            # the MAMF flag is set once every final is measured: only now is float32's MAMF known
            mamf = [m for m in finals if m.details["search"].get("mamf") and m.status == "ok"]
            if name == "float32" and mamf:
                f32["rate"] = mamf[0].summary["tflops_median"]

        steps += [runner.Step(f"{f.label} {name}{_mode_label(fast)} search", lambda n=name, r=run, fast=fast: r(name=n, fast=fast),
                              lane=runner.lane(f)) for name in names for fast in fp8_modes(name)]  # fmt: skip
    return steps


def fixed_build(host_inv: dict[str, Any], precisions: tuple[str, ...], shapes: list[tuple[int, int, int]],
                policy: Policy, overrides: PeakOverrides, facts: list[DeviceFacts],
                readers: dict[str, Any]) -> list[runner.Step]:  # fmt: skip
    """fixed_plan as a bench.plans.lane_plan build (its steps pickle as they are, but a MIG instance's facts must be
    probed in its worker)."""
    return fixed_plan(facts, host_inv, precisions, shapes, policy, overrides)


def search_build(host_inv: dict[str, Any], precisions: tuple[str, ...], mode: str, grid: list[tuple[int, int, int]],
                 budget: float | None, window: float | None, overrides: PeakOverrides, settle: float | None,
                 facts: list[DeviceFacts], readers: dict[str, Any]) -> list[runner.Step]:  # fmt: skip
    """search_plan as a bench.plans.lane_plan build."""
    return search_plan(facts, host_inv, precisions, mode, grid, budget, window, overrides, readers, settle)


def suite_steps(mc: dict[str, Any], f: DeviceFacts, host_inv: dict[str, Any], readers: dict[str, Any],
                progress_for: Callable[[str], Callable[[int, int], None]] | None = None) -> list[runner.Step]:  # fmt: skip
    """A suite's [matmul] section on one device: a search (MAMF, MSMF) or fixed sizes."""
    precisions = tuple(mc["precisions"])
    if mc["search"] == "auto":
        return search_plan([f], host_inv, precisions, "auto", [], mc["budget_s"], mc["window_s"], PeakOverrides(),
                           readers, mc["settle_s"])  # fmt: skip
    policy = Policy(
        budget_s=mc["budget_s"] or 1.0, min_iterations=mc["min_iterations"], max_warmup_s=mc["max_warmup_s"]
    )
    return fixed_plan([f], host_inv, precisions, [(n, n, n) for n in mc["sizes"]], policy, PeakOverrides(),
                      mc["pin_cpu"], mc["all_cores"], mc["rounds"])  # fmt: skip


# --- stragglers: a job's ranks judged by their own device's matmul figure ---------------------------------------------

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
