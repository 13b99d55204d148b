"""lmul: bit-exact model of the project's L-Mul unit and MAC array (import name ``lmul``).

The RTL in ``hdl/`` is the source of truth; every function here returns the same bits.

Layers (each module imports only from those above it; all are private, the API is this
package's ``__all__``): ``_formats`` (formats, presets, :class:`LMulConfig`) -> ``_convert``
(float <-> bit patterns) -> ``_core``, ``_fpadd``, ``_dot``, ``_reference`` (bit-level models,
the fused dot-product step, the numpy reference of the MAC array) -> ``_kintrinsics``,
``_kscalar``, ``_kparams``, then ``_kmatmul``, ``_kelementwise``, ``_kbits`` (gathered by
``_kernels``), ``_kdot`` and ``_kfp32`` (numba, imported on first use only) -> ``_matmul``,
``_api`` (the float/array API). ``lmul.torch`` (autograd layers; numba kernel
``_torch_kernels``) is an optional submodule that needs PyTorch; ``import lmul`` imports
neither numba nor torch.
"""

from ._act_hw import (
    ACT_FUNCS,
    ACT_PRESETS,
    ActConfig,
    act_config,
    act_hw,
    act_hw_bits,
)
from ._activations import sigmoid32, tanh32
from ._api import exact_mul, lmul, seed_lmul
from ._convert import (
    FP32_QNAN_BITS,
    NARROW_DTYPES,
    canonicalize_nan,
    float32_bits,
    format_bits_to_float32,
    format_bits_to_float64,
    round_to_format_bits,
)
from ._dot import FUSED_EXACT_ALIGN_BITS, Fused, fused_sum_bits
from ._formats import (
    FORMAT_EXP_BITS_RANGE,
    FORMAT_MAN_BITS_RANGE,
    FP32,
    LMUL_EXP_BITS_RANGE,
    LMUL_FINITE_ONLY_MAX_EXP_BITS,
    LMUL_MAN_BITS_RANGE,
    PRESET_ALIASES,
    PRESETS,
    Format,
    LMulConfig,
    format_for,
    paper_offset,
    preset,
)
from ._fpadd import FP_ADD_EXP_BITS_RANGE, FP_ADD_MAN_BITS_RANGE, fp_add_bits
from ._matmul import (
    PreparedB,
    elementwise_product,
    fast_path_enabled,
    lmul_bits,
    matmul,
    matmul_fp32,
    matmul_prepared,
    prepare_b,
)
from ._reference import MULTIPLIERS, matmul_reference

__all__ = [
    "ACT_FUNCS",
    "ACT_PRESETS",
    "FORMAT_EXP_BITS_RANGE",
    "FORMAT_MAN_BITS_RANGE",
    "FP32",
    "FP32_QNAN_BITS",
    "FP_ADD_EXP_BITS_RANGE",
    "FP_ADD_MAN_BITS_RANGE",
    "FUSED_EXACT_ALIGN_BITS",
    "LMUL_EXP_BITS_RANGE",
    "LMUL_FINITE_ONLY_MAX_EXP_BITS",
    "LMUL_MAN_BITS_RANGE",
    "MULTIPLIERS",
    "NARROW_DTYPES",
    "PRESETS",
    "PRESET_ALIASES",
    "ActConfig",
    "Format",
    "Fused",
    "LMulConfig",
    "PreparedB",
    "act_config",
    "act_hw",
    "act_hw_bits",
    "canonicalize_nan",
    "elementwise_product",
    "exact_mul",
    "fast_path_enabled",
    "float32_bits",
    "format_bits_to_float32",
    "format_bits_to_float64",
    "format_for",
    "fp_add_bits",
    "fused_sum_bits",
    "lmul",
    "lmul_bits",
    "matmul",
    "matmul_fp32",
    "matmul_prepared",
    "matmul_reference",
    "paper_offset",
    "prepare_b",
    "preset",
    "round_to_format_bits",
    "seed_lmul",
    "sigmoid32",
    "tanh32",
]
