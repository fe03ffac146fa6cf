"""torch.backends.cuda.matmul as each torch version treats TF32, for the CUDA fake (tests/fakes/cuda.py).

What torch does (aten/src/ATen/Context.cpp; checked for 2.13 on this machine's CPU build):

- before 2.9 there is only the legacy switch (`allow_tf32`, or `torch.set_float32_matmul_precision`), and cuBLAS
  uses TF32 when `TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1` *or* the switch allows it: `allowTF32CuBLAS()` returns
  `override || precision != HIGHEST`, so the variable wins over an explicit `allow_tf32 = False`;
- from 2.9 `fp32_precision` ('none', 'ieee', 'tf32') is the switch. The variable only sets the initial value ('tf32'
  and `allow_tf32` True instead of 'none' and False); an explicit setting wins. Setting `allow_tf32` sets both;
  setting `fp32_precision` sets only the new one, and reading `allow_tf32` while the two disagree raises
  RuntimeError ("you have used mix of the legacy and new APIs");
- `NVIDIA_TF32_OVERRIDE=0` (NVIDIA's libraries, any torch) forbids TF32 whatever torch asks.

`install(monkeypatch, version)` puts a Knob in place of torch's; `on()` is what the fake's products follow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

MIXED_APIS = (
    "PyTorch is checking whether allow_tf32_new is enabled for cuBlas matmul,Current status indicate that you have "
    "used mix of the legacy and new APIs to set the TF32 status for cublas matmul. We suggest only using the new API "
    "to set the TF32 flag."
)
NEW_API = (2, 9)


def _forced(env: Mapping[str, str]) -> bool:
    return env.get("TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "").strip() == "1"


def _forbidden(env: Mapping[str, str]) -> bool:
    return env.get("NVIDIA_TF32_OVERRIDE", "").strip() == "0"


class LegacyKnob:
    """torch < 2.9: `allow_tf32` only (no `fp32_precision` attribute); the variable, read once, always wins."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._env = dict(env)
        self._allow = False

    @property
    def allow_tf32(self) -> bool:
        return self._allow or _forced(self._env)  # torch._C._get_cublas_allow_tf32 reads allowTF32CuBLAS()

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        self._allow = bool(value)

    def tf32(self) -> bool:
        """Whether a float32 product runs on TF32 tensor cores now."""
        return not _forbidden(self._env) and (self._allow or _forced(self._env))


class Knob:
    """torch >= 2.9: `fp32_precision` is the switch, the variable its initial value; legacy and new APIs mixed raise."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._env = dict(env)
        forced = _forced(env)
        self._new, self._legacy = ("tf32" if forced else "none"), forced

    @property
    def fp32_precision(self) -> str:
        return self._new

    @fp32_precision.setter
    def fp32_precision(self, value: str) -> None:
        if value not in ("none", "ieee", "tf32"):
            raise RuntimeError(f"{value} is not supported in cuda matmul, supported: ['ieee', 'tf32', 'none']")
        self._new = value

    @property
    def allow_tf32(self) -> bool:
        if self._new != "none" and (self._new == "tf32") != self._legacy:
            raise RuntimeError(MIXED_APIS)
        return self._legacy

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        self._legacy, self._new = bool(value), "tf32" if value else "ieee"

    def tf32(self) -> bool:
        """Whether a float32 product runs on TF32 tensor cores now."""
        if _forbidden(self._env):
            return False
        return self._new == "tf32" or (self._new == "none" and self._legacy)


def install(monkeypatch: Any, version: tuple[int, int], env: Mapping[str, str] | None = None) -> LegacyKnob | Knob:
    """torch `version`'s knob in place of torch.backends.cuda.matmul, reading the variables now (torch reads them
    once, at its first use of cuBLAS)."""
    knob = Knob(env) if version >= NEW_API else LegacyKnob(env)
    monkeypatch.setattr(torch.backends.cuda, "matmul", knob)
    return knob


def on() -> bool:
    """Whether a float32 product on the fake CUDA device runs on TF32 now: the installed knob's answer, else the
    installed torch's own switch (2.9+ semantics) under NVIDIA_TF32_OVERRIDE."""
    knob = torch.backends.cuda.matmul
    if isinstance(knob, (Knob, LegacyKnob)):
        return knob.tf32()
    if _forbidden(os.environ):
        return False
    mode = getattr(knob, "fp32_precision", None)
    return mode == "tf32" if mode is not None else bool(getattr(knob, "allow_tf32", False))
