"""Every figure bench reports, derived from raw samples and a workload's work per iteration: the one place where
TFLOPS, GB/s, busbw, MFU, efficiency and MSMF are computed, and where each workload's work formula is written.

Pure: no torch, no I/O, nothing from the workloads. The workloads call it when they measure and verify calls it when
it re-derives a report's figures, so a figure and its check are the same arithmetic (they must agree bit for bit: a
report's summary is compared with its recomputation).

Work formulas (work per iteration, with its unit):
- matmul: 2*M*N*K FLOPs (a multiply and an add per term).
- train: 3x the forward FLOPs per step (backward is twice forward), forward from the model's shapes (train_step_flops);
  the MLP's first layer has no input gradient to compute, so its backward is one matmul, not two.
- membw (STREAM): bytes the kernel moves per element times elements (stream_bytes), reads and writes both counted.
- comm: the message size S in bytes (nccl-tests' "size"); busbw = algbw x busbw_factor(op, ranks).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bench.measure import stats

if TYPE_CHECKING:
    from bench.model.reports import Measurement


class Unit(StrEnum):
    """What a workload's work per iteration counts."""

    FLOP = "FLOP"
    BYTE = "byte"


# --- work formulas ---------------------------------------------------------------------------------------------------


def matmul_flops(m: int, n: int, k: int) -> int:
    """FLOPs of one (M x K) @ (K x N) product: M*N dot products of K multiply-adds."""
    return 2 * m * n * k


#: Fields of a training spec the FLOP count reads, with the models the formula knows.
TRAIN_MODELS = ("gpt", "mlp")
_TRAIN_SIZES = ("layers", "width", "seq_len", "batch", "vocab")


def train_step_flops(model: str, layers: int, width: int, seq_len: int, batch: int, vocab: int) -> int:
    """Analytic FLOPs of one training step (forward + backward, optimizer excluded).

    gpt: per token and layer 24*d^2 (QKV, attention output and the 4d MLP, two FLOPs per multiply-add) plus 4*T*d for
    attention scores and their weighted sum over the full TxT matrix (the causal mask is not subtracted: this is
    the convention of the reported TFLOPS, and what FlopCounterMode counts under the math SDPA kernel), plus 2*d*V for
    the output projection. mlp: 2*a*b per layer of a->b, per sample; its first layer's input needs no gradient."""
    if model == "gpt":
        d, t = width, seq_len
        forward = batch * t * (layers * (24 * d * d + 4 * t * d) + 2 * d * vocab)
        return 3 * forward
    if model == "mlp":
        dims = [vocab] + [width] * (layers - 1) + [vocab]
        forward = batch * sum(2 * a * b for a, b in itertools.pairwise(dims))
        return 3 * forward - batch * 2 * dims[0] * dims[1]
    raise ValueError(f"unknown model {model!r}; valid: {', '.join(TRAIN_MODELS)}")


def train_work(spec: Mapping[str, Any]) -> int:
    """FLOPs per step of a training measurement's spec as a report stores it (a data-parallel total: times its
    world_size); ValueError naming the field when the spec cannot be counted."""
    sizes = {}
    for key in _TRAIN_SIZES:
        value = spec.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} should be a positive integer, found {value!r}")
        sizes[key] = value
    world = spec.get("world_size", 1)
    if isinstance(world, bool) or not isinstance(world, int) or world < 1:
        raise ValueError(f"world_size should be a positive integer, found {world!r}")
    return train_step_flops(str(spec.get("model")), **sizes) * world


#: STREAM kernels and the bytes each moves per element of float64 arrays (McCalpin's counting: each array read or
#: written once): copy c = a and scale b = s*c read one array and write one; add c = a + b and triad a = b + s*c read
#: two and write one.
STREAM_KERNELS = ("copy", "scale", "add", "triad")
STREAM_BYTES_PER_ELEMENT = {"copy": 16, "scale": 16, "add": 24, "triad": 24}
#: FLOPs per element of each STREAM kernel (copy does none): what puts STREAM on a roofline, in FLOP per byte.
STREAM_FLOPS_PER_ELEMENT = {"scale": 1, "add": 1, "triad": 2}


def stream_bytes(kernel: str, elements: int) -> int:
    """Bytes one pass of a STREAM kernel moves over arrays of `elements` float64s."""
    return STREAM_BYTES_PER_ELEMENT[kernel] * elements


#: Host<->device copies of membw on a GPU: one float64 array each way, 8 bytes per element.
COPY_KERNELS = ("h2d", "d2h")


def positive_int(spec: Mapping[str, Any], key: str) -> int:
    """spec[key] when it is a positive integer (not a bool); ValueError naming the key otherwise."""
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} should be a positive integer, found {value!r}")
    return value


def membw_work(spec: Mapping[str, Any]) -> int:
    """Bytes one iteration of a membw measurement moves, from its spec (kernel, elements): a STREAM kernel's count, or
    8 bytes per element for a host<->device copy. ValueError naming what is wrong."""
    kernel, elements = spec.get("kernel"), positive_int(spec, "elements")
    if kernel in STREAM_BYTES_PER_ELEMENT:
        return stream_bytes(kernel, elements)
    if kernel in COPY_KERNELS:
        return 8 * elements
    raise ValueError(f"kernel {kernel!r} is not one bench measures ({', '.join([*STREAM_KERNELS, *COPY_KERNELS])})")


def train_items(spec: Mapping[str, Any]) -> int:
    """Tokens (gpt) or samples (mlp) per step of a training measurement's spec: batch x seq_len, times world_size for
    a data-parallel total. What items/s divides by, fixed by the spec rather than by what the node wrote."""
    world = positive_int(spec, "world_size") if "world_size" in spec else 1
    return positive_int(spec, "batch") * positive_int(spec, "seq_len") * world


def stream_intensity(kernel: str) -> float:
    """FLOP per byte of a STREAM kernel (triad: 2 FLOPs over 24 bytes = 1/12); 0 for copy."""
    return STREAM_FLOPS_PER_ELEMENT.get(kernel, 0) / STREAM_BYTES_PER_ELEMENT[kernel]


COMM_OPS = ("all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all", "sendrecv")


def busbw_factor(op: str, n: int) -> float:
    """nccl-tests' bus bandwidth factor for `op` over `n` ranks (doc/PERFORMANCE.md in NVIDIA/nccl-tests)."""
    if op == "all_reduce":
        return 2 * (n - 1) / n
    if op in ("all_gather", "reduce_scatter", "all_to_all"):
        return (n - 1) / n
    if op in ("broadcast", "sendrecv"):
        return 1.0
    raise ValueError(f"unknown collective {op!r}; valid: {', '.join(COMM_OPS)}")


# --- figures from samples --------------------------------------------------------------------------------------------


def derive(
    samples_s: Sequence[float], work: float, peak: float | None = None, *, unit: Unit = Unit.FLOP
) -> dict[str, Any]:
    """The summary of one measurement: statistics of the raw seconds (bench.measure.stats), the rate at the median
    and the best iteration, and the efficiency (median rate / peak) when a peak is known.

    FLOP work gives tflops_median/tflops_best against a peak in TFLOPS; byte work gives gbps_median/gbps_best
    (1 GB = 1e9 bytes) against a peak in TB/s."""
    out: dict[str, Any] = stats.summary_fields(samples_s)  # a new dict: summarize(samples_s).to_dict()
    if unit == Unit.FLOP:
        median = stats.rate(work, out["median_s"]) / 1e12
        out["tflops_median"], out["tflops_best"] = median, stats.rate(work, out["min_s"]) / 1e12
        if peak:
            out["efficiency"] = median / peak
        return out
    out["gbps_median"], out["gbps_best"] = work / out["median_s"] / 1e9, work / out["min_s"] / 1e9
    if peak:
        out["efficiency"] = out["gbps_median"] / (peak * 1e3)
    return out


def matmul_summary(samples_s: Sequence[float], flops: float, peak_tflops: float | None = None) -> dict[str, Any]:
    """derive() in FLOPs: statistics, TFLOPS at the median and best iteration, efficiency against the peak."""
    return derive(samples_s, flops, peak_tflops)


def train_summary(samples_s: Sequence[float], flops: float, items: float, peak_tflops: float | None) -> dict[str, Any]:
    """Step-time statistics, throughput (tokens or samples per second at the median step), TFLOPS and MFU (what
    derive() calls efficiency: median TFLOPS over the peak)."""
    out = derive(samples_s, flops)
    out["items_per_s"] = items / out["median_s"]
    if peak_tflops:
        out["mfu"] = out["tflops_median"] / peak_tflops
    return out


def membw_summary(samples_s: Sequence[float], nbytes: float, peak_tbps: float | None) -> dict[str, Any]:
    """derive() in bytes: GB/s at the median and best iteration, efficiency against the memory bandwidth peak."""
    return derive(samples_s, nbytes, peak_tbps, unit=Unit.BYTE)


def comm_summary(samples_s: Sequence[float], size: int, op: str, n: int) -> dict[str, Any]:
    """nccl-tests' figures: algbw = S / time at the median, busbw = algbw x factor, and busbw at the best time."""
    factor = busbw_factor(op, n)
    out = derive(samples_s, size, unit=Unit.BYTE)
    algbw, best = out.pop("gbps_median"), out.pop("gbps_best")
    return {**out, "algbw_gbps": algbw, "busbw_gbps": algbw * factor, "busbw_best_gbps": best * factor}


#: The MSMF window is split into this many buckets, each with its own rate, to show whether throughput held.
MSMF_BUCKETS = 10


def msmf(samples_s: Sequence[float], flops_per_iteration: float, buckets: int = MSMF_BUCKETS) -> dict[str, Any]:
    """Maximum sustained FLOPS of back-to-back iterations: total FLOPs / total seconds, and the same per tenth of the
    window (each iteration counted in the bucket where it ended)."""
    if len(samples_s) >= stats.NUMPY_FROM:
        return _msmf_numpy(samples_s, flops_per_iteration, buckets)
    total = sum(samples_s)
    per: dict[int, list[float]] = {}
    elapsed = 0.0
    for s in samples_s:
        elapsed += s
        i = min(int(elapsed / total * buckets - 1e-9), buckets - 1)
        seconds, count, _ = per.get(i, [0.0, 0, 0.0])
        per[i] = [seconds + s, count + 1, elapsed]
    series = [
        {"t_s": end, "tflops": n * flops_per_iteration / sec / 1e12} for sec, n, end in (per[i] for i in sorted(per))
    ]
    return _msmf_result(series, len(samples_s), total, flops_per_iteration)


def _msmf_result(series: list[dict[str, float]], n: int, total: float, flops_per_iteration: float) -> dict[str, Any]:
    """msmf()'s answer from its buckets' series: the whole window's rate and its slowest bucket's."""
    return {
        "tflops": n * flops_per_iteration / total / 1e12,
        "window_s": total,
        "iterations": n,
        "min_bucket_tflops": min(p["tflops"] for p in series),
        "series": series,
    }


def _msmf_numpy(samples_s: Sequence[float], flops_per_iteration: float, buckets: int) -> dict[str, Any]:
    """msmf() over numpy arrays, bit for bit: numpy's running sum (add.accumulate) adds in order as the loop does, the
    bucket index is the same IEEE arithmetic elementwise, and each bucket's seconds are its own running sum."""
    import numpy as np  # here: figures stays importable without numpy's start-up cost

    x = np.asarray(samples_s, dtype=np.float64)
    elapsed = np.cumsum(x)
    total = sum(x.tolist())  # the builtin's own summation, as the loop uses it
    index = np.minimum(np.trunc(elapsed / total * buckets - 1e-9), buckets - 1).astype(np.int64)
    index[index < 0] = 0  # int() truncates toward zero: a tiny negative is bucket 0
    bounds = np.flatnonzero(np.diff(index)) + 1
    starts, ends = np.concatenate(([0], bounds)), np.concatenate((bounds, [len(x)]))
    series = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        seconds = float(np.cumsum(x[a:b])[-1])
        series.append({"t_s": float(elapsed[b - 1]), "tflops": (b - a) * flops_per_iteration / seconds / 1e12})
    return _msmf_result(series, len(x), total, flops_per_iteration)


# --- a device's MAMF --------------------------------------------------------------------------------------------------

MAMF_SEARCH, MAMF_FIXED = "search", "fixed shape"
#: mamf()'s source carries this suffix when no measurement of the device x precision was steady: the figure stands,
#: flagged, so every output (table, page, Prometheus) says it is not a steady one.
UNSTEADY = ", none steady"
#: The MAMF rules a capacity report can be built under (Rules.mamf_rule). MAMF_RULE_BEST is the rule before issue 25
#: (capacity reports without a mamf_rule were built under it and verify under it); MAMF_RULE_STEADY is the default.
MAMF_RULE_BEST, MAMF_RULE_STEADY = "best", "steady"
MAMF_RULES = (MAMF_RULE_BEST, MAMF_RULE_STEADY)


def mamf_source(m: Measurement) -> str | None:
    """What a matmul measurement can stand for as its device's MAMF: MAMF_SEARCH for a search's chosen shape (its
    final, MAMF-marked measurement), MAMF_FIXED for a matmul outside any search, None otherwise (search candidates and
    re-measurements, MSMF windows, other workloads, anything not a valid measured matmul)."""
    if m.workload != "matmul" or m.status != "ok" or not m.summary:
        return None
    search = m.details.get("search") or {}
    if not search:
        return MAMF_FIXED
    return MAMF_SEARCH if search.get("role") == "final" and search.get("mamf") else None


def unsteady_reasons(m: Measurement) -> list[str]:
    """Why a measurement's timings are not steady enough to be a headline, [] when they are: bench.measure.stats'
    timing warnings judged afresh ('noisy': IQR/median above stats.NOISY_IQR_RATIO; 'too-short': median iteration
    under MIN_RESOLUTIONS_PER_ITERATION x its timer's resolution, stats.timer_resolution). Read from the summary,
    which verify recomputes from the raw samples and compares: the node's own warning flags are never consulted."""
    s = m.summary or {}
    median, iqr = s.get("median_s"), s.get("iqr_s")
    if not isinstance(median, (int, float)) or not isinstance(iqr, (int, float)) or not median > 0:
        return ["no summary"]
    out = []
    if iqr / median > stats.NOISY_IQR_RATIO:
        out.append(f"noisy: IQR {iqr / median:.0%} of the median")
    if median < stats.MIN_RESOLUTIONS_PER_ITERATION * stats.timer_resolution(m.timer):
        out.append(f"too-short: {median:.3g} s per iteration")
    return out


def steady(m: Measurement) -> bool:
    """Whether a measurement may be a headline: no unsteady_reasons."""
    return not unsteady_reasons(m)


def _standin(m: Measurement) -> bool:
    """A measurement that may stand in for a device's unsteady MAMF: any valid matmul of its search or outside one
    (candidates, re-measurements, finals, fixed shapes), but not an MSMF window (timed back to back, no flush)."""
    return (m.workload == "matmul" and m.status == "ok" and bool(m.summary)
            and (m.details.get("search") or {}).get("role") != "msmf")  # fmt: skip


def mamf(measurements: Iterable[Measurement], key: Callable[[Measurement], Hashable],
         emulated: bool = False, rule: str = MAMF_RULE_STEADY) -> dict[Hashable, tuple[Measurement, str]]:  # fmt: skip
    """The one rule for a device's MAMF (maximum achievable matmul FLOPS), per `key` (device x precision).

    First the pick (rule 'best', the whole rule before issue 25): the median TFLOPS of the search's MAMF measurement
    when a search ran; else the best fixed-shape median. Why the search's figure wins even when a fixed shape's median
    is higher: the search picks its shape on candidates and re-measures it in a window of its own, so its median is
    not the maximum of many noisy medians (the larger of the two would be); a fixed shape that beats it is a sign the
    grid missed a shape, which the search table shows.

    Then, under rule 'steady' (the default): when the pick is not steady (see steady(): noisy or too short, judged
    from the samples), the MAMF is the best steady measurement of the same device and precision (any search
    measurement but the MSMF window, or a fixed shape) whose median is at most the pick's; the pick never rises, so
    a node cannot raise its figure by making its own pick noisy. When none is steady, the pick stands and its source
    ends with UNSTEADY.

    Emulated measurements (a precision the device does not run natively) count only with emulated=True: they are
    shown, never capacity. Returns {key: (measurement, source)}, source MAMF_SEARCH or MAMF_FIXED for where the figure
    came from, plus UNSTEADY when it is not steady."""
    if rule not in MAMF_RULES:
        raise ValueError(f"unknown MAMF rule {rule!r}; valid: {', '.join(MAMF_RULES)}")
    measurements = list(measurements)
    out: dict[Hashable, tuple[Measurement, str]] = {}
    for m in measurements:
        source = mamf_source(m)
        if source is None or (m.emulated and not emulated):
            continue
        k = key(m)
        held = out.get(k)
        if source == MAMF_SEARCH:
            out[k] = (m, source)  # a report holds one search MAMF per device and precision; the last stands
        elif held is None or (held[1] == MAMF_FIXED and m.summary["tflops_median"] > held[0].summary["tflops_median"]):
            out[k] = (m, source)
    if rule == MAMF_RULE_BEST or all(steady(m) for m, _ in out.values()):
        return out
    # each key's stand-ins in report order, gathered once: a real node's report holds ~10,000 measurements and 64
    # device x precision keys, and going through them all for each unsteady pick was most of its device rows
    standins: dict[Hashable, list[Measurement]] = {}
    for m in measurements:
        if _standin(m):
            standins.setdefault(key(m), []).append(m)
    for k, (pick, source) in list(out.items()):
        if steady(pick):
            continue
        ceiling = pick.summary["tflops_median"]
        best = None
        for m in standins.get(k, ()):
            if (m is pick or (m.emulated and not emulated) or m.emulated != pick.emulated
                    or m.summary["tflops_median"] > ceiling or not steady(m)):  # fmt: skip
                continue
            if best is None or m.summary["tflops_median"] > best.summary["tflops_median"]:
                best = m
        if best is None:
            out[k] = (pick, source + UNSTEADY)
        else:
            out[k] = (best, MAMF_SEARCH if best.details.get("search") else MAMF_FIXED)
    return out
