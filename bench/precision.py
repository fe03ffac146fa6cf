"""Precisions bench measures: their names, torch dtypes and rounding properties.

The unit roundoff u of a format with p significand bits (implicit bit included) is 2**-p: the largest relative
error of rounding a real number to the nearest representable value. Freivalds tolerances are built from it.

Torch is imported only when a dtype is asked for: the report layer reads names, itemsizes and roundoffs without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Precision:
    name: str
    #: the torch dtype's attribute name (torch.float32 is "float32")
    dtype: str
    #: bytes per element of the operands
    itemsize: int
    #: unit roundoff of the stored operands and the product's output
    unit_roundoff: float
    #: relative error of each term a*b of a dot product: operands rounded inside the unit (tf32) and the multiply
    term_roundoff: float
    #: unit roundoff of the accumulator that sums the terms
    accumulate_roundoff: float
    #: True when the precision exists only as a mode of CUDA tensor cores (tf32)
    cuda_only: bool = False
    #: dtype name of the product when it differs from the operands' (fp8 -> bfloat16, int8 -> int32)
    output: str | None = None

    @property
    def torch_dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype)

    @property
    def output_dtype(self) -> torch.dtype | None:
        import torch

        return getattr(torch, self.output) if self.output else None

    @property
    def result_dtype(self) -> torch.dtype:
        return self.output_dtype or self.torch_dtype


_U64 = 2.0**-53
_U32 = 2.0**-24
_UTF32 = 2.0**-11  # tf32 keeps 10 explicit mantissa bits
_UBF16 = 2.0**-8
_UF16 = 2.0**-11
#: Hopper's fp8 tensor cores keep fewer accumulator bits than float32 between promotions (DeepSeek-V3 report: about
#: 14); bound them as if 14 bits were kept.
_UFP8_ACC = 2.0**-14

PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("float64", "float64", 8, _U64, _U64, _U64),
        Precision("float32", "float32", 4, _U32, _U32, _U32),
        # tf32: operands stored as float32, each rounded to tf32 inside the tensor core, accumulated in float32.
        Precision("tf32", "float32", 4, _U32, 2 * _UTF32, _U32, cuda_only=True),
        # half formats: the product of two 8- or 11-bit significands is exact in float32, and cuBLAS, MKL/oneDNN
        # and the emulated CPU paths all accumulate in float32.
        Precision("bfloat16", "bfloat16", 2, _UBF16, 0.0, _U32),
        Precision("float16", "float16", 2, _UF16, 0.0, _U32),
        # fp8 e4m3 operands (torch._scaled_mm, unit scales), product written as bfloat16.
        Precision("float8_e4m3", "float8_e4m3fn", 1, _UBF16, 0.0, _UFP8_ACC, output="bfloat16"),
        # int8 operands, int32 product (torch._int_mm): exact, so any difference at all is an error. Its "FLOPs" are
        # integer operations (TOPS).
        Precision("int8", "int8", 1, 0.0, 0.0, 0.0, output="int32"),
    )
}

#: Precisions a matmul run measures when none is named, per device kind.
DEFAULT_PRECISIONS: dict[str, tuple[str, ...]] = {
    "cpu": ("float64", "float32", "bfloat16", "float16", "int8"),
    "cuda": ("float64", "float32", "tf32", "bfloat16", "float16", "float8_e4m3", "int8"),
}


def get(name: str) -> Precision:
    try:
        return PRECISIONS[name]
    except KeyError:
        raise ValueError(f"unknown precision {name!r}; valid: {', '.join(PRECISIONS)}") from None
