"""lmul: bit-exact model of the project's L-Mul unit and MAC array (import name ``lmul``).

The RTL in ``hdl/`` is the source of truth; every function here returns the same bits.
"""

from .convert import (
    FP32_QNAN_BITS,
    canonicalize_nan,
    float32_bits,
    format_bits_to_float32,
    format_bits_to_float64,
    round_to_format_bits,
)
from .core import exact_mul, lmul, lmul_bits, seed_lmul
from .fpadd import FP_ADD_EXP_BITS_RANGE, FP_ADD_MAN_BITS_RANGE, fp_add_bits
from .formats import FP32, PRESETS, Format, LMulConfig, format_for, paper_offset
from .reference import MULTIPLIERS, matmul_reference

try:
    from .matmul import matmul
except ImportError:  # the fast-kernel module is optional; the reference has the same bits
    matmul = matmul_reference

__all__ = [
    "FP32",
    "FP32_QNAN_BITS",
    "FP_ADD_EXP_BITS_RANGE",
    "FP_ADD_MAN_BITS_RANGE",
    "MULTIPLIERS",
    "PRESETS",
    "Format",
    "LMulConfig",
    "canonicalize_nan",
    "exact_mul",
    "float32_bits",
    "format_bits_to_float32",
    "format_bits_to_float64",
    "format_for",
    "fp_add_bits",
    "lmul",
    "lmul_bits",
    "matmul",
    "matmul_reference",
    "paper_offset",
    "round_to_format_bits",
    "seed_lmul",
]
