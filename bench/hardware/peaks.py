"""Physical peaks: the vendor table for accelerators (data, with a source per row) and the theoretical CPU peak.

A peak is never a measurement: it is the ceiling a measurement is compared with, for efficiency and plausibility.
A device with no peak on file is still benchmarked; its efficiency is simply unknown.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

#: Which table column(s) bound a matmul precision; the larger applies (cuBLAS DGEMM runs on FP64 tensor cores).
COLUMNS = {
    "float64": ("fp64", "fp64_tensor"),
    "float32": ("fp32",),
    "tf32": ("tf32",),
    "bfloat16": ("bf16",),
    "float16": ("fp16",),
    "float8_e4m3": ("fp8",),
    "int8": ("int8",),
}
FIGURE_KEYS = {c for cols in COLUMNS.values() for c in cols}
ROW_KEYS = FIGURE_KEYS | {"model", "match", "exclude", "memory_tbps", "sms", "source", "unverified"}

#: A measured figure above peak by more than this is physically implausible (clock or timer error, or a wrong peak).
IMPLAUSIBLE_TOLERANCE = 0.03


@dataclass(frozen=True)
class Peak:
    tflops: float
    kind: str  # 'vendor' (table) or 'theoretical' (CPU formula)
    source: str
    model: str
    unverified: bool = False
    assumptions: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@cache
def table() -> tuple[dict[str, Any], ...]:
    """The rows of peaks.toml, checked: unknown keys or non-numeric figures are a packaging error."""
    raw = tomllib.loads(resources.files("bench.hardware").joinpath("peaks.toml").read_text(encoding="utf-8"))
    rows = raw.get("device", [])
    for row in rows:
        unknown = set(row) - ROW_KEYS
        if unknown or not row.get("match") or not row.get("source"):
            raise ValueError(f"peaks.toml row {row.get('model')!r}: unknown keys {sorted(unknown)} or no match/source")
    return tuple(rows)


@functools.lru_cache(maxsize=1024)
def find_model(device_name: str) -> dict[str, Any] | None:
    """The table row whose match substrings all occur in `device_name` (and no exclude does); the most specific wins."""
    name = device_name.lower()
    hits = [
        row
        for row in table()
        if all(s.lower() in name for s in row["match"]) and not any(s.lower() in name for s in row.get("exclude", []))
    ]
    return max(hits, key=lambda r: len(r["match"]), default=None)


def vendor_peak(device_name: str, precision: str) -> Peak | None:
    row = find_model(device_name)
    if row is None:
        return None
    figures = [row[c] for c in COLUMNS.get(precision, ()) if c in row]
    if not figures:
        return None
    return Peak(float(max(figures)), "vendor", row["source"], row["model"], bool(row.get("unverified", False)))


def device_peak(device: Any, precision: str) -> Peak | None:
    """The vendor peak of a CUDA device (bench.hardware.devices.DeviceFacts). A MIG slice gets its share of the GPU's:
    peak x its SMs / the GPU's SMs (the row's `sms`); without an SM count on file it gets none rather than the GPU's."""
    peak = vendor_peak(device.name, precision)
    if peak is None or not getattr(device, "mig", False):
        return peak
    row = find_model(device.name) or {}
    if not row.get("sms") or not device.sm_count or device.sm_count > row["sms"]:
        return None  # an SM count only the node asserts cannot exceed the whole GPU's
    share = device.sm_count / row["sms"]
    return Peak(
        peak.tflops * share,
        peak.kind,
        peak.source,
        peak.model,
        peak.unverified,
        {**peak.assumptions, "mig_sm_share": share, "sm_count": device.sm_count, "gpu_sm_count": row["sms"]},
    )


def peak_for(device: Any, host: dict[str, Any], precision: str, *, clock_mhz: float | None = None,
             fma_units: int | None = None) -> Peak | None:  # fmt: skip
    """The one rule for the peak a measurement is held against: a CUDA device's vendor peak (a MIG slice's share,
    device_peak), else the CPU's theoretical peak from the host inventory (cpu_peak), with the operator's clock and
    FMA-unit overrides when given. `device` has kind, name, mig and sm_count (a DeviceFacts, or what a report says)."""
    if device.kind == "cuda":
        return device_peak(device, precision)
    return cpu_peak(host, precision, clock_mhz=clock_mhz, fma_units=fma_units)


def mig_slices_fit(gpu_name: str, sm_counts: list[Any]) -> bool:
    """Whether a GPU's MIG slices, as an inventory lists them, can be real: every SM count a positive integer and
    together no more than the GPU's (the table's `sms`). When they cannot, no slice of that GPU gets a ceiling."""
    sms = (find_model(gpu_name) or {}).get("sms")
    counts = [c for c in sm_counts if isinstance(c, int) and not isinstance(c, bool) and c > 0]
    return bool(sms) and len(counts) == len(sm_counts) and sum(counts) <= sms


def memory_bandwidth_tbps(device_name: str) -> float | None:
    row = find_model(device_name)
    return None if row is None else row.get("memory_tbps")


# --- CPU theoretical peak -------------------------------------------------------------------------------------------

#: Vector width in bits by ISA flag, widest first.
_VECTOR_BITS = (("avx512f", 512), ("avx2", 256), ("avx", 256), ("asimd", 128), ("sse2", 128))
#: FLOPs per cycle per core of the matrix engines (Intel AMX: 16x32 bf16 tile-multiply per cycle, 1024 FLOPs).
_AMX_FLOPS = {"bfloat16": ("amx_bf16", 1024), "float16": ("amx_fp16", 1024), "int8": ("amx_int8", 2048)}
#: Most x86 server cores since Haswell/Zen 2 issue two vector FMAs per cycle; some AVX-512 parts have one.
DEFAULT_FMA_UNITS = 2


def cpu_flops_per_cycle(flags: set[str], precision: str, fma_units: int = DEFAULT_FMA_UNITS) -> tuple[int, str] | None:
    """Peak FLOPs per cycle per core for matmul in `precision`, and the path it assumes; None when not native."""
    if precision in _AMX_FLOPS and _AMX_FLOPS[precision][0] in flags:
        return _AMX_FLOPS[precision][1], f"{_AMX_FLOPS[precision][0]} tile multiply"
    bits = next((b for flag, b in _VECTOR_BITS if flag in flags), 128)
    has_fma = "fma" in flags or "asimd" in flags or "avx512f" in flags
    per_lane = 2 * fma_units if has_fma else 2  # an FMA is 2 FLOPs; without FMA one add and one multiply per cycle
    if precision == "float64":
        return bits // 64 * per_lane, f"{bits}-bit {'FMA' if has_fma else 'add+mul'} x{fma_units if has_fma else 1}"
    if precision == "float32":
        return bits // 32 * per_lane, f"{bits}-bit {'FMA' if has_fma else 'add+mul'} x{fma_units if has_fma else 1}"
    if precision == "bfloat16" and "avx512_bf16" in flags:
        # VDPBF16PS: per fp32 lane, two bf16 products accumulated = 4 FLOPs
        return 512 // 32 * 4 * fma_units, f"avx512_bf16 dot product x{fma_units}"
    if precision == "float16" and "avx512_fp16" in flags:
        return 512 // 16 * 2 * fma_units, f"avx512_fp16 FMA x{fma_units}"
    if precision == "int8" and ({"avx512_vnni", "avx_vnni"} & flags):
        # VPDPBUSD: per int32 lane, four int8 products accumulated = 8 integer ops
        width = 512 if "avx512_vnni" in flags else 256
        return width // 32 * 8 * fma_units, f"{width}-bit VNNI dot product x{fma_units}"
    return None


class Source(StrEnum):
    """Where an input of the CPU peak came from, as a report's peak assumptions record it (clock_source,
    cores_source, fma_units_source). OVERRIDE is a value the caller gave: the operator's --cpu-clock-mhz or
    --fma-units (the node's word, which verify never lets bound a figure), or verify's own core count for its
    ceiling; the rest are read from the host."""

    OVERRIDE = "override"
    CPUFREQ_MAX = "max clock (cpufreq)"
    PSUTIL_CURRENT = "current clock (psutil; max unknown)"
    PHYSICAL_CORES = "physical cores"
    DEFAULT = "default"


def cpu_peak(
    host: dict[str, Any],
    precision: str,
    *,
    clock_mhz: float | None = None,
    fma_units: int | None = None,
    cores: int | None = None,
) -> Peak | None:
    """cores x clock x FLOPs/cycle, every input recorded as an assumption with where it came from.

    Clock: the override, else the host's max clock (cpufreq), else psutil's current frequency (a VM often reports only
    that). A current clock is only a lower bound of what the cores run at (turbo), so a peak built on it is marked
    unverified: figures above it are flagged, but it cannot prove them impossible. `cores` replaces the host's
    physical core count (verify's ceiling passes its own); no command-line flag sets it.
    """
    flags = {f for f, present in (host.get("isa_flags") or {}).items() if present}
    units = fma_units or DEFAULT_FMA_UNITS
    per_cycle = cpu_flops_per_cycle(flags, precision, units)
    if per_cycle is None:
        return None
    n_cores = cores or host.get("physical_cores")
    if not n_cores:
        return None
    if clock_mhz:
        clock, clock_source = float(clock_mhz), Source.OVERRIDE
    elif host.get("max_clock_mhz"):
        clock, clock_source = float(host["max_clock_mhz"]), Source.CPUFREQ_MAX
    elif host.get("current_clock_mhz"):
        clock, clock_source = float(host["current_clock_mhz"]), Source.PSUTIL_CURRENT
    else:
        return None
    flops, path = per_cycle
    assumptions = {
        "cores": n_cores,
        "cores_source": Source.OVERRIDE if cores else Source.PHYSICAL_CORES,
        "clock_mhz": clock,
        "clock_source": clock_source,
        "flops_per_cycle_per_core": flops,
        "path": path,
        "fma_units": units,
        "fma_units_source": Source.OVERRIDE if fma_units else Source.DEFAULT,
    }
    return Peak(
        n_cores * clock * 1e6 * flops / 1e12,
        "theoretical",
        "cores x clock x FLOPs/cycle",
        host.get("cpu_model") or "cpu",
        unverified=clock_source == Source.PSUTIL_CURRENT,
        assumptions=assumptions,
    )
