"""What a CUDA float32 product really runs on: IEEE float32, or TF32 tensor cores.

torch's switch (`torch.backends.cuda.matmul.fp32_precision`, `allow_tf32` before torch 2.9) is ONE per process: cuBLAS
reads it at every call, from every thread. When a node's GPUs are measured at once (one thread each), a lane timing
'tf32' and a lane timing 'float32' must never hold it at the same time, or one of them measures the other's mode.
`mode()` lets any number of lanes share one setting and makes a lane that wants the other one wait until the last
user of the first has left (new arrivals of the held mode wait too while someone waits for the other, so neither
starves), and restores what was there before.

Environment variables can override the switch: NVIDIA_TF32_OVERRIDE=0 makes NVIDIA's libraries never use TF32 (so a
'tf32' run is IEEE float32), and TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 forces TF32 before torch 2.9 (ATen's
allowTF32CuBLAS() is `override || precision != HIGHEST`: the variable wins over an explicit allow_tf32 = False) and
from 2.9 only sets the initial fp32_precision ('tf32'), which an explicit setting replaces. Rather than guess from
them, `probe()` asks the device: it multiplies A = 1 + 2^-12 everywhere
by B = 1. IEEE float32 sums each row exactly to N(1 + 2^-12) (N = 1024: 22 significant bits); TF32 keeps 10 mantissa
bits, rounds 1 + 2^-12 to 1 and gets exactly N. Freivalds' check cannot tell the two apart at K >= 4096 (its float32
tolerance is a worst-case bound), the probe always can. The variables are recorded next to its answer.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

import torch

ENVIRONMENT = ("NVIDIA_TF32_OVERRIDE", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE")
PROBE_N = 1024
PROBE_VALUE = 1 + 2.0**-12

_cond = threading.Condition()
_held: dict[str, Any] = {"tf32": None, "users": 0, "saved": None, "waiting": {True: 0, False: 0}}


def _knob() -> tuple[Any, str]:
    knob = torch.backends.cuda.matmul
    return knob, "fp32_precision" if hasattr(knob, "fp32_precision") else "allow_tf32"


def _get() -> tuple[str, Any]:
    knob, name = _knob()
    return name, getattr(knob, name)


def _set(tf32: bool) -> None:
    knob, name = _knob()
    if name == "fp32_precision":
        try:
            knob.fp32_precision = "tf32" if tf32 else "ieee"
            return
        except (ValueError, RuntimeError, TypeError):  # a torch whose new API takes other values: the legacy switch
            pass
    knob.allow_tf32 = tf32


def _restore(saved: tuple[str, Any]) -> None:
    knob, _ = _knob()
    with contextlib.suppress(ValueError, RuntimeError, TypeError):
        setattr(knob, *saved)


@contextlib.contextmanager
def mode(tf32: bool) -> Iterator[None]:
    """Hold torch's process-wide float32 matmul mode at TF32 (or IEEE) for the block; see the module docstring."""
    with _cond:
        _held["waiting"][tf32] += 1
        while _held["users"] and (_held["tf32"] != tf32 or _held["waiting"][not tf32]):
            _cond.wait()
        _held["waiting"][tf32] -= 1
        if _held["users"] == 0:
            _held["saved"], _held["tf32"] = _get(), tf32
            _set(tf32)
        _held["users"] += 1
    try:
        yield
    finally:
        with _cond:
            _held["users"] -= 1
            if _held["users"] == 0:
                _restore(_held["saved"])
                _held["tf32"] = None
            _cond.notify_all()


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The TF32 override variables set in the environment, by name."""
    env = os.environ if env is None else env
    return {k: env[k] for k in ENVIRONMENT if k in env}


def probe(device_id: str) -> str:
    """'ieee' or 'tf32': how float32 products run on `device_id` right now ('unexpected' for anything else)."""
    a = torch.full((PROBE_N, PROBE_N), PROBE_VALUE, dtype=torch.float32, device=device_id)
    b = torch.ones(PROBE_N, PROBE_N, dtype=torch.float32, device=device_id)
    value = float((a @ b)[0, 0])
    if value == PROBE_N * PROBE_VALUE:
        return "ieee"
    return "tf32" if value == PROBE_N else "unexpected"
