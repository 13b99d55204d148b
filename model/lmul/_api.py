"""The float API: L-Mul, the exact multiplier and the seed multiplier on float32 numpy arrays
and torch tensors, through the fast kernels when available (same bits as :mod:`lmul._core`).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ._convert import Rounding, as_float_array, narrow_like, widen_narrow
from ._formats import LMulConfig
from ._matmul import exact_mul_elementwise, lmul_elementwise, seed_lmul_elementwise

_DEFAULT = LMulConfig()
_AUTOGRAD = "lmul.torch.lmul_mul"


def _to_numpy(x: Any, name: str) -> tuple[np.ndarray, Any]:
    """Return (float32 numpy array, torch tensor template or None).

    torch is looked up in ``sys.modules``, never imported: a tensor exists only once it is.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        if x.dtype != torch.float32:
            raise TypeError(f"{name} must be a float32 tensor, got {x.dtype}")
        as_float_array(x, name, _AUTOGRAD)  # refuses a tensor that requires grad, naming it
        return x.detach().cpu().numpy(), x
    return as_float_array(x, name, _AUTOGRAD), None


def _from_numpy(result: np.ndarray, *templates: Any) -> Any:
    """``result`` as a tensor on the first template's device (same shape, 0-d kept)."""
    for t in templates:
        if t is not None:
            torch = sys.modules["torch"]
            # np.ascontiguousarray would turn a 0-d result into shape (1,).
            arr = result if result.flags.c_contiguous else result.copy(order="C")
            return torch.from_numpy(arr).to(t.device)
    return result


def _binary(kernel: Any, x: Any, y: Any, cfg: LMulConfig, rounding: Rounding) -> Any:
    """Run an elementwise product on float32 or narrow-dtype inputs (see :func:`lmul`)."""
    if not isinstance(cfg, LMulConfig):
        raise TypeError(f"cfg must be an lmul.LMulConfig, got {type(cfg).__name__}")
    xw, x_narrow = widen_narrow(x, cfg.fmt, "x")
    yw, y_narrow = widen_narrow(y, cfg.fmt, "y")
    xa, xt = _to_numpy(xw, "x")
    ya, yt = _to_numpy(yw, "y")
    result = _from_numpy(kernel(xa, ya, cfg, rounding), xt, yt)
    if x_narrow and y_narrow:
        return narrow_like(result, x)
    return result


def lmul(x: Any, y: Any, cfg: LMulConfig = _DEFAULT, rounding: Rounding = "rne") -> Any:
    """Elementwise L-Mul of float32 values, as the hardware computes it.

    Each input is rounded to ``cfg.fmt`` (``"rne"`` or ``"truncate"``), multiplied by the L-Mul
    unit (:func:`lmul_bits`) and the result widened exactly to float32 (NaN -> ``0x7FC00000``).

    Args:
        x, y: float32 numpy arrays or torch tensors, broadcastable; or arrays/tensors of the
            narrow dtype of ``cfg``'s format (``lmul.NARROW_DTYPES``: ``torch.float8_e4m3fn`` /
            ``ml_dtypes.float8_e4m3fn`` for ``LMulConfig.for_format("e4m3fn")``, float8_e5m2,
            ml_dtypes' float8_e4m3 (``e4m3_ieee``), bfloat16), taken exactly.
        cfg: the unit's configuration (default BF16 with the paper's offset).
        rounding: how float32 inputs are rounded to the format.

    Returns:
        float32 numpy array, or a torch tensor (on the input's device) if an input was one; the
        broadcast shape of the inputs (0-d inputs give a 0-d result). When both inputs have the
        format's narrow dtype, the result has it too (exact: every product is a format value;
        NaN stays NaN).

    Raises:
        TypeError: an input is not float32 (nor the narrow dtype of ``cfg``'s format: the
            message names the configuration to use), or is a torch tensor that requires grad
            (use ``lmul.torch.lmul_mul`` for autograd: straight-through gradients).
        ValueError: shapes that do not broadcast, an unknown rounding.
    """
    return _binary(lmul_elementwise, x, y, cfg, rounding)


def exact_mul(x: Any, y: Any, cfg: LMulConfig = _DEFAULT, rounding: Rounding = "rne") -> Any:
    """The exact-multiplier baseline: IEEE product in ``cfg.fmt``, widened to float32.

    Inputs are rounded to the format (``rounding``; subnormals kept), multiplied exactly and the
    product rounded once to the format with round-to-nearest-even (overflow -> Inf; NaN ->
    canonical NaN). ``cfg.offset`` and ``cfg.saturate`` are ignored.

    For a finite-only format (``e4m3fn``) overflow gives NaN instead of Inf: the same bits as
    ``ml_dtypes``' float32 product cast back to ``float8_e4m3fn``.

    Args/returns as :func:`lmul` (narrow-dtype inputs included).
    """
    return _binary(exact_mul_elementwise, x, y, cfg, rounding)


def seed_lmul(x: Any, y: Any) -> Any:
    """The seed notebook's ``lmul_bits`` multiplier, bit for bit (float32 in, float32 out).

    Behaviour (reproduced from the notebook's documented steps, not corrected):

    * each float32 is truncated to its top 16 bits (BF16 by truncation, not rounding);
    * if either BF16 exponent field is 0 the result is ``+0.0`` (sign dropped);
    * field sum ``fa + fb + 0x4080`` on 17 bits: top bits ``00`` -> field 0, ``01`` -> the low
      15 bits, ``1x`` -> ``0x7FFF``; a zero field gets sign 0;
    * the BF16 result ``r`` (as float32) is scaled in float32 as ``(r + r/32) + r/64``.

    Defects, kept on purpose so experiments can compare it with the corrected unit:

    * no ``2**-l(M)`` offset: it is Mitchell's approximation, biased low by about 4 %, which the
      ad-hoc ``x (1 + 1/32 + 1/64) = x 1.046875`` scale only compensates on average;
    * the overflow pattern ``0x7FFF`` is a NaN, not Inf or the largest finite value; an exponent
      sum landing on 0xFF also yields Inf/NaN patterns;
    * no special values: NaN and Inf operands are added as ordinary fields, and the scaling turns
      the largest finite BF16 values into Inf;
    * inputs are truncated, not rounded.

    NaN results carry whatever payload the float32 arithmetic leaves (payloads are free).

    Args:
        x, y: float32 torch tensors or numpy arrays, broadcastable.

    Returns:
        float32 tensor (same device) or numpy array.
    """
    xa, xt = _to_numpy(x, "x")
    ya, yt = _to_numpy(y, "y")
    result = seed_lmul_elementwise(xa, ya)
    return _from_numpy(result, xt, yt)
