"""Precisions bench measures: their names, torch dtypes and rounding properties.

The unit roundoff u of a format with p significand bits (implicit bit included) is 2**-p: the largest relative
error of rounding a real number to the nearest representable value. Freivalds tolerances are built from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    name: str
    torch_dtype: torch.dtype
    #: unit roundoff of the stored operands and the product's output
    unit_roundoff: float
    #: relative error of each term a*b of a dot product: operands rounded inside the unit (tf32) and the multiply
    term_roundoff: float
    #: unit roundoff of the accumulator that sums the terms
    accumulate_roundoff: float
    #: True when the precision exists only as a mode of CUDA tensor cores (tf32)
    cuda_only: bool = False

    @property
    def itemsize(self) -> int:
        return torch.tensor([], dtype=self.torch_dtype).element_size()


_U64 = 2.0**-53
_U32 = 2.0**-24
_UTF32 = 2.0**-11  # tf32 keeps 10 explicit mantissa bits
_UBF16 = 2.0**-8
_UF16 = 2.0**-11

PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("float64", torch.float64, _U64, _U64, _U64),
        Precision("float32", torch.float32, _U32, _U32, _U32),
        # tf32: operands stored as float32, each rounded to tf32 inside the tensor core, accumulated in float32.
        Precision("tf32", torch.float32, _U32, 2 * _UTF32, _U32, cuda_only=True),
        # half formats: the product of two 8- or 11-bit significands is exact in float32, and cuBLAS, MKL/oneDNN
        # and the emulated CPU paths all accumulate in float32.
        Precision("bfloat16", torch.bfloat16, _UBF16, 0.0, _U32),
        Precision("float16", torch.float16, _UF16, 0.0, _U32),
    )
}

#: Precisions a matmul run measures when none is named, per device kind.
DEFAULT_PRECISIONS: dict[str, tuple[str, ...]] = {
    "cpu": ("float64", "float32", "bfloat16", "float16"),
    "cuda": ("float64", "float32", "tf32", "bfloat16", "float16"),
}


def get(name: str) -> Precision:
    try:
        return PRECISIONS[name]
    except KeyError:
        raise ValueError(f"unknown precision {name!r}; valid: {', '.join(PRECISIONS)}") from None
