"""Click parameter types shared by the verbs: a bad value is a usage error (exit 2) that lists what is valid."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import click

# Library modules are imported inside convert(): they load torch, and `bench VERB --help` must not.


class DeviceParam(click.ParamType):
    """'cpu', 'cuda:N' or 'all', converted to the list of device ids it names."""

    name = "cpu|cuda:N|all"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        if isinstance(value, list):
            return value
        from bench.hardware import devices

        try:
            return devices.resolve(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class ShapeParam(click.ParamType):
    """'M,N,K' (positive integers) for an M x K by K x N product."""

    name = "M,N,K"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int, int]:
        if isinstance(value, tuple):
            return value
        parts = str(value).split(",")
        try:
            dims = tuple(int(p) for p in parts)
        except ValueError:
            dims = ()
        if len(dims) != 3 or min(dims) < 1:
            self.fail(
                f"{value!r} is not a shape; expected three positive integers M,N,K such as 4096,4096,4096", param, ctx
            )
        return dims  # type: ignore[return-value]


class RangeParam(click.ParamType):
    """'start:stop:step' (stop included), converted to the list of values."""

    name = "start:stop:step"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> list[int]:
        if isinstance(value, list):
            return value
        from bench.workloads.matmul_search import parse_range

        try:
            return parse_range(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class PrecisionParam(click.Choice):
    """A precision by its name (bfloat16) or a common alias (bf16, fp16, fp32, fp64, fp8, tf32, int8): the same
    aliases `bench verify --claim` reads (bench.report.claims.ALIASES)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(names)

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from bench.report.claims import ALIASES

        text = str(value).strip().lower()
        return str(super().convert(ALIASES.get(text, text), param, ctx))

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:  # type: ignore[override]
        return "[" + "|".join(map(str, self.choices)) + "] (or an alias: bf16, fp32, ...)"


class OneDeviceParam(DeviceParam):
    """--device where each rank measures one device: the same names as everywhere (cpu, cuda:N, all), and a usage
    error when they name more than one (launch one rank per GPU instead)."""

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:  # type: ignore[override]
        named = super().convert(value, param, ctx)
        if len(named) != 1:
            self.fail(f"{value!r} names {len(named)} devices ({', '.join(named)}); this verb measures one device per "
                      "rank: launch one rank per GPU (torchrun --nproc_per_node, srun -n) and let each take its own",
                      param, ctx)  # fmt: skip
        return named[0]


#: Binary (KiB, MiB, GiB; K, M, G as their short forms, as ops tools read them) and decimal (kB, MB, GB) multipliers.
SIZE_UNITS = {"": 1, "b": 1, "k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30, "gib": 2**30, "t": 2**40,
              "tib": 2**40, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}  # fmt: skip


def parse_size(text: str) -> int:
    """'1G' -> 1073741824, '64M', '512KiB', '1GB' (= 1e9), '4096'; ValueError naming the forms accepted."""
    t = str(text).strip().replace(" ", "")
    number = t.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    unit = t[len(number) :].lower()
    try:
        value = float(number) * SIZE_UNITS[unit]
    except (KeyError, ValueError):
        raise ValueError(f"{text!r} is not a size; expected bytes or a number with K, M, G (binary: 1G = 2^30) or "
                         "kB, MB, GB (decimal), e.g. 1G or 64MiB") from None  # fmt: skip
    if value < 1 or value != int(value):
        raise ValueError(f"{text!r}: a size is a whole number of bytes, at least 1")
    return int(value)


class ByteSizeParam(click.ParamType):
    """A size in bytes: a plain number, or with a unit (see parse_size)."""

    name = "BYTES"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class MebibyteParam(click.ParamType):
    """A size in MiB: a plain number is MiB (256, 0.5), a number with a unit any size parse_size reads (512M, 1G)."""

    name = "SIZE"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        try:
            mib = float(text)
        except ValueError:
            try:
                mib = parse_size(text) / 2**20
            except ValueError as exc:
                self.fail(f"{exc}; a plain number is MiB", param, ctx)
        if not mib > 0 or mib == float("inf"):
            self.fail(f"{value!r}: a size must be positive", param, ctx)
        return mib


def parse_seconds(text: str) -> float:
    """A time span in seconds, written the same way in every verb: a plain number is seconds ('2', '0.5'), a number
    with a unit is that many s, m, h, d or w ('90s', '10m', '12h'). ValueError naming the forms accepted."""
    t = str(text).strip()
    try:
        value = float(t)
    except ValueError:
        from bench.report.verify import parse_duration

        try:
            value = parse_duration(t).total_seconds()
        except ValueError:
            raise ValueError(f"{text!r} is not a time span; use seconds (e.g. 30 or 0.5) or a number with s, m, h, d "
                             "or w (e.g. 90s, 10m, 12h)") from None  # fmt: skip
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{text!r}: a time span is a finite number of seconds, at least 0")
    return value


class SecondsParam(click.ParamType):
    """A time span as float seconds (see parse_seconds), at least `minimum`: every time option of every verb reads
    this one way, so --window 10 and --window 10s mean the same in matmul and in challenge issue."""

    name = "SECONDS"

    def __init__(self, minimum: float = 0.0) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            try:
                seconds = parse_seconds(str(value))
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
        if not seconds >= self.minimum:
            self.fail(f"{value!r}: must be at least {self.minimum:g} s", param, ctx)
        return seconds


class DurationParam(SecondsParam):
    """A time span (see parse_seconds: 90s, 30m, 12h, 7d, 2w, or plain seconds) as a datetime.timedelta."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.timedelta):
            return value
        return dt.timedelta(seconds=super().convert(value, param, ctx))
