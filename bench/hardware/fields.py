"""Collect inventory fields one at a time, so one failing probe marks one field unavailable instead of crashing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class FieldSet:
    """An ordered set of named fields; a field whose probe raised holds None and its reason under `unavailable`."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.unavailable: dict[str, str] = {}

    def add(self, name: str, probe: Callable[[], Any]) -> Any:
        try:
            value = probe()
        except Exception as exc:  # noqa: BLE001 - any probe failure is reported, never raised
            self.values[name] = None
            self.unavailable[name] = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
            return None
        self.values[name] = value
        return value

    def to_dict(self) -> dict[str, Any]:
        return {**self.values, "unavailable": dict(self.unavailable)}
