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
from .formats import FP32, PRESETS, Format, LMulConfig, format_for, paper_offset
from .fpadd import FP_ADD_EXP_BITS_RANGE, FP_ADD_MAN_BITS_RANGE, fp_add_bits

# ``lmul.matmul`` is the function (the fast kernels, with the reference as fallback); the module
# of the same name stays reachable as ``importlib.import_module("lmul.matmul")``.
from .matmul import elementwise_product, fast_path_enabled, matmul
from .reference import MULTIPLIERS, matmul_reference

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
    "elementwise_product",
    "exact_mul",
    "fast_path_enabled",
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
