"""The workload registry: each workload says once, in its own module here, everything the rest of bench needs to
know about it without running it.

A `Workload` names the workload, the unit its work is counted in, how its figures are re-derived from raw samples
(bench.figures) and its work from its spec, its headline metrics and their Prometheus series, its tables, its
section of a suite config, where the function that builds its suite steps lives (its planning module,
bench.planning.<name>), its figures on the HTML page, and the keys that name its measurements in warning lines, JUnit
cases and Prometheus labels. The suite config, the suite's steps (bench.plans), the metrics, verify, the tables
(bench.report.render), the plots, warning lines, JUnit cases, regression gates and the Prometheus export loop over
`workloads()` and name none. What still names one is the MAMF, the capacity figure bench.figures defines on matmul:
the --fail-below floors, the headline, verify's physical checks and the Prometheus MAMF series read it. Adding a workload is one descriptor module here (found by itself; its
measuring code under bench/workloads/, or in the descriptor with torch imported inside the functions that run it)
and its tests.

Everything here is pure: no torch, no workload module, and nothing of the report layer. A descriptor hands the
report layer plain data defined below it (bench.model): its metrics as Metric values, its tables as Grids of text
cells built by functions in the descriptor's own module; bench.report reads them and draws them. The steps function is
named by "module:function" and imported only when a suite is built, so verify, aggregate and the renderers never load
what measures.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.figures import Unit

if TYPE_CHECKING:
    from bench.model.metrics import Metric
    from bench.model.reports import Measurement
    from bench.model.tables import Grid

#: The built-in workloads, in the order a suite runs them by default; each is bench.registry.<name>.
BUILTIN = ("matmul", "membw", "train", "comm")


@dataclass(frozen=True)
class ConfigKey:
    """One key of a suite config section: its kind ('str', 'int', 'float', 'bool', 'str-list', 'int-list',
    'table'), default, and what values are allowed (bench.suite checks them)."""

    kind: str
    default: Any
    help: str
    choices: Sequence[str] = ()
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False


def key(kind: str, default: Any, help: str, **kw: Any) -> ConfigKey:
    return ConfigKey(kind, default, help, **kw)


@dataclass(frozen=True)
class Plot:
    """A figure of the HTML report, as plain data: `kind` names how bench.report.plots draws it (plots.KINDS), `title`
    is its caption ({unit}: the FLOP unit of the measurements it shows, GFLOPS on a CPU page). Workloads that list the
    same kind and title share one figure, drawn where the first of them lists it; `role` says what each gives it (the
    roofline: "compute" points and ceilings, "memory" bandwidth). The kind "vs_size" draws any workload: summary key
    `y` against spec key `x` (log2), one panel per value of spec key `panel`, with axis labels `xlabel` and `ylabel`
    and `heading` above the panels (formatted with the first measurement's spec)."""

    kind: str
    title: str
    role: str = ""
    x: str = ""
    y: str = ""
    panel: str = ""
    xlabel: str = ""
    ylabel: str = ""
    heading: str = ""


@dataclass(frozen=True)
class Workload:
    """Everything bench knows about one workload outside the code that measures it."""

    name: str
    #: what work_per_iteration counts
    unit: Unit
    #: the summary a measurement's raw samples give (bench.figures); verify compares it with the stored one
    summary: Callable[[Measurement], dict[str, Any]]
    #: headline metrics of a measured entry (gates, compare, JUnit, CSV, history, Prometheus), as plain Metric values
    metrics: Callable[[Measurement], list[Metric]]
    #: its tables as Grids of text cells, given this workload's measurements and whether every matmul is wanted
    #: (bench.report.render draws them on the terminal, in HTML and in Markdown)
    grids: Callable[[list[Measurement], bool], list[Grid]]
    #: its section of a suite config (bench.suite)
    config: Mapping[str, ConfigKey]
    #: the work one iteration of a spec does (bench.figures), checked by verify; None: the spec does not fix it
    work: Callable[[Mapping[str, Any]], int] | None = None
    #: Prometheus series per metric name: (series name in base units, scale to base units, help)
    series: Mapping[str, tuple[str, float, str]] = field(default_factory=dict)
    #: "module:function" building a suite's steps for one device (see bench.plans.suite_steps); None: the workload
    #: runs across ranks only (bench run's multi-rank part), not as per-device steps
    steps: str | None = None
    #: in a job of several ranks, it runs across them, once for the job after the node leaders' gather (data-parallel
    #: training, collectives), not as each rank's own per-device steps (bench.plans.per_rank / across_ranks)
    across_ranks: bool = False
    #: with across_ranks: "module:function" giving its job phases (bench.runner.JobPhase) from its config section, the
    #: rank's placement, the device kind and the rank's devices (bench.orchestrate.distributed_suite runs them after
    #: the gather); None: bench run has no job phase for it and says so
    job: str | None = None
    #: its figures in the HTML report, in page order (bench.report.plots draws each kind)
    plots: tuple[Plot, ...] = ()
    #: the spec keys that name one of its measurements after its device and precision, e.g. in a warning line
    #: ("shape": M x N x K); none given, or none in a spec (a failed step's), the spec's step label names it
    what: tuple[str, ...] = ()
    #: the metric labels that name its JUnit test case and gate after its device (default: its precision, op or
    #: kernel, the first it has)
    case_labels: tuple[str, ...] = ()
    #: the details keys whose values tell apart measurements of one spec on one device (Prometheus'
    #: bench_measurement_valid `variant` label: a matmul's backend), besides fp8 accumulation and rank
    variant: tuple[str, ...] = ()

    def step_builder(self) -> Callable[..., list[Any]] | None:
        """The steps function, imported now (it loads torch)."""
        return _function(self.steps)

    def job_builder(self) -> Callable[..., list[Any]] | None:
        """The job phases function, imported now (it loads torch)."""
        return _function(self.job)


def _function(target: str | None) -> Callable[..., Any] | None:
    """A descriptor's "module:function", imported."""
    if target is None:
        return None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


_REGISTRY: dict[str, Workload] = {}


def register(workload: Workload) -> Workload:
    """Add a workload (its descriptor module calls this once, at import); a second one of the same name is a bug."""
    if workload.name in _REGISTRY and _REGISTRY[workload.name] is not workload:
        raise ValueError(f"workload {workload.name!r} is registered twice")
    _REGISTRY[workload.name] = workload
    return workload


def _load() -> None:
    """Import every descriptor module of this package once: the built-ins in BUILTIN's order, then any other module
    found here (a new workload needs no edit outside its own module)."""
    global _LOADED
    if _LOADED:
        return
    found = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    for name in [*BUILTIN, *(n for n in found if n not in BUILTIN)]:
        importlib.import_module(f"{__name__}.{name}")
    _LOADED = True


_LOADED = False


def workloads() -> list[Workload]:
    """Every registered workload, built-ins first in BUILTIN's order (whichever was imported first), then any other
    in the order it registered."""
    _load()
    order = {name: i for i, name in enumerate(BUILTIN)}
    return sorted(_REGISTRY.values(), key=lambda w: order.get(w.name, len(BUILTIN)))


def names() -> tuple[str, ...]:
    return tuple(w.name for w in workloads())


def get(name: str) -> Workload | None:
    """The workload of that name, or None (a report may hold one this bench does not know)."""
    _load()
    return _REGISTRY.get(name)
