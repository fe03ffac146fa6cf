"""Click parameter types shared by the verbs: a bad value is a usage error (exit 2) that lists what is valid."""

from __future__ import annotations

import click

from bench.hardware import devices
from bench.workloads.matmul_search import parse_range


class DeviceParam(click.ParamType):
    """'cpu', 'cuda:N' or 'all', converted to the list of device ids it names."""

    name = "cpu|cuda:N|all"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        if isinstance(value, list):
            return value
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
            self.fail(f"{value!r} is not a shape; expected three positive integers M,N,K such as 4096,4096,4096", param, ctx)
        return dims  # type: ignore[return-value]


class RangeParam(click.ParamType):
    """'start:stop:step' (stop included), converted to the list of values."""

    name = "start:stop:step"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> list[int]:
        if isinstance(value, list):
            return value
        try:
            return parse_range(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
