"""The whole node's inventory: host and NVIDIA GPUs."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from bench.hardware.host import host_inventory
from bench.hardware.nvml import gpu_inventory


def collect(nvml: ModuleType | None = None) -> dict[str, Any]:
    return {"host": host_inventory(), "nvml": gpu_inventory(nvml)}
