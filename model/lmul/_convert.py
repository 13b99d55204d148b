"""Conversions between float32/float64 numpy arrays and bit patterns of a :class:`Format`.

Bit patterns are unsigned integers laid out ``sign | exponent | mantissa`` (MSB first) in the
smallest numpy unsigned dtype that holds ``1 + E + M`` bits (:attr:`Format.uint_dtype`).
"""

from __future__ import annotations

import sys
from typing import Any, Literal

import numpy as np

from ._formats import PRESETS, Format

Rounding = Literal["rne", "truncate"]

#: float32 bit pattern of the canonical quiet NaN (sign 0, exponent all ones, mantissa MSB only).
FP32_QNAN_BITS = 0x7FC00000


def as_float_array(x: object, name: str = "x",
                   autograd: str = "lmul.torch.lmul_mul / lmul.torch.lmul_linear") -> np.ndarray:
    """Return ``x`` as a numpy float32 array; raise TypeError for any other dtype.

    Float64 is refused on purpose: rounding float64 to a narrow format directly differs from
    rounding it to float32 first, and the hardware only ever sees float32 inputs. A torch tensor
    that requires grad is refused too (TypeError naming ``name`` and pointing to ``autograd``,
    the function with gradients): a detached result would silently cut the graph.
    """
    if getattr(x, "requires_grad", False) is True:
        raise TypeError(f"{name} is a torch tensor that requires grad, and this function returns "
                        f"no gradient: use {autograd} for autograd (straight-through "
                        f"gradients), or pass {name}.detach()")
    arr = np.asarray(x)
    if arr.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got dtype {arr.dtype}")
    return arr


#: Narrow float dtypes whose values are exactly one preset's, by dtype name (numpy / ml_dtypes
#: ``dtype.name``; torch's without the ``torch.`` prefix): the array/tensor types that
#: :func:`lmul.lmul`, :func:`lmul.exact_mul` and :func:`lmul.matmul` take besides float32.
NARROW_DTYPES: dict[str, str] = {
    "float8_e4m3fn": "e4m3fn",
    "float8_e5m2": "e5m2",
    "float8_e4m3": "e4m3_ieee",
    "bfloat16": "bf16",
}


def narrow_dtype_format(x: object) -> Format | None:
    """The preset whose values ``x``'s dtype holds (:data:`NARROW_DTYPES`), for a numpy /
    ml_dtypes array or a torch tensor of such a dtype; None for anything else (float32 too).

    torch is looked up in ``sys.modules``, never imported."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        name = str(x.dtype).removeprefix("torch.")
    elif isinstance(x, (np.ndarray, np.generic)):
        name = x.dtype.name
    else:
        return None
    key = NARROW_DTYPES.get(name)
    return None if key is None else PRESETS[key]


def widen_narrow(x: Any, fmt: Format, name: str) -> tuple[Any, bool]:
    """``(float32 values of x, True)`` when ``x`` has a narrow dtype of format ``fmt`` (numpy
    array or torch tensor, same kind and device: the widening is exact); ``(x, False)`` for any
    other input (left for the float32 checks).

    Raises:
        TypeError: ``x``'s dtype holds another format than ``fmt`` (the message names both).
    """
    got = narrow_dtype_format(x)
    if got is None:
        return x, False
    if got != fmt:
        raise TypeError(f"{name} has dtype {x.dtype} (format {got.name}) but the configuration's "
                        f"format is {fmt.name}: use cfg=lmul.LMulConfig.for_format({got.name!r}) "
                        "or float32 values")
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.to(torch.float32), True
    return np.asarray(x).astype(np.float32), True


def narrow_like(result: Any, like: Any) -> Any:
    """``result`` (float32 values of ``like``'s format, numpy or torch) in ``like``'s dtype;
    exact, NaN stays NaN."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(result, torch.Tensor):
        return result.to(like.dtype)
    return np.asarray(result).astype(like.dtype)


def _check_int64_format(fmt: Format) -> None:
    """The conversions compute on int64 patterns: a 64-bit format (binary64) does not fit."""
    if fmt.width > 63:
        raise ValueError(f"format {fmt.name} is {fmt.width} bits wide; the float conversions "
                         "handle formats of up to 63 bits (use numpy's float64 for binary64)")


def check_bits(bits: object, fmt: Format, name: str = "bits") -> np.ndarray:
    """Validate an array of bit patterns for ``fmt`` and return it as int64.

    Raises:
        TypeError: not an integer array.
        ValueError: a pattern is negative or does not fit in ``fmt.width`` bits (or ``fmt`` is a
            64-bit format).
    """
    _check_int64_format(fmt)
    arr = np.asarray(bits)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of bit patterns, got dtype {arr.dtype}")
    wide = arr.astype(np.int64)
    if wide.size and (wide.min() < 0 or wide.max() >> fmt.width):
        raise ValueError(f"{name} has values outside 0..2**{fmt.width}-1 for format {fmt.name}")
    return wide


def round_to_format_bits(x: object, fmt: Format, rounding: Rounding = "rne") -> np.ndarray:
    """Round float32 (or float64) values to ``fmt`` and return its bit patterns.

    Args:
        x: numpy array of float32 or float64 values (float64 is used for exact products).
        fmt: the target format.
        rounding: ``"rne"`` (IEEE round to nearest, ties to even; overflow gives Inf) or
            ``"truncate"`` (round toward zero, i.e. drop low bits; overflow gives the largest
            finite value). Subnormal results are produced in both modes (no flushing).

    Returns:
        Array of ``fmt.uint_dtype`` bit patterns, same shape. NaN becomes the canonical quiet
        NaN (sign 0); signed zeros and infinities keep their sign. A finite-only format (no Inf)
        follows the OCP FP8 non-saturating conversion, as ``ml_dtypes``/``torch`` casts do:
        where an IEEE format gets Inf (RNE overflow, an Inf input, either rounding) the result is
        NaN, with the sign of ``x`` (``S.1...1.1...1``); truncation still saturates finite values.
    """
    if rounding not in ("rne", "truncate"):
        raise ValueError(f"rounding must be 'rne' or 'truncate', got {rounding!r}")
    _check_int64_format(fmt)
    arr = np.asarray(x)
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got dtype {arr.dtype}")
    man = fmt.man_bits
    with np.errstate(invalid="ignore", over="ignore"):
        xd = arr.astype(np.float64)  # signalling NaNs raise "invalid" here; they become qNaN
        ax = np.abs(xd)
        finite = np.isfinite(ax)
        ax_f = np.where(finite, ax, 0.0)
        _, ex = np.frexp(ax_f)
        # Quantum of the result: one mantissa LSB at the value's binade, or at the subnormal one.
        # (frexp gives exponent 0 for zero, hence the explicit zero case.)
        e_eff = np.where(ax_f == 0, fmt.emin, np.maximum(ex.astype(np.int64) - 1, fmt.emin))
        scaled = np.ldexp(ax_f, (man - e_eff).astype(np.int32))  # exact: power-of-two scale
        r = np.rint(scaled) if rounding == "rne" else np.floor(scaled)
        # Binade offset plus rounded significand; a carry out of the significand bumps the
        # exponent by itself, and the subnormal binade encodes as exponent field 0.
        mag = ((e_eff - fmt.emin) << man) + r.astype(np.int64)
        # For a finite-only format nonfinite_bits is its NaN magnitude.
        overflow_to = fmt.nonfinite_bits if rounding == "rne" else fmt.max_finite_bits
        mag = np.where(mag >= fmt.nonfinite_bits, overflow_to, mag)
        mag = np.where(np.isinf(ax), fmt.nonfinite_bits, mag)
        bits = np.where(np.signbit(xd), mag | fmt.sign_bit, mag)
        bits = np.where(np.isnan(xd), fmt.qnan_bits, bits)
    return bits.astype(fmt.uint_dtype)


def format_bits_to_float64(bits: object, fmt: Format) -> np.ndarray:
    """Decode bit patterns of ``fmt`` to float64 values (exact for every format here).

    NaN patterns decode to a float64 NaN; use :func:`format_bits_to_float32` for the canonical
    float32 NaN pattern. A finite-only format's all-ones-exponent codes other than its NaN are
    normal numbers (E4M3FN ``0x7E`` is 448).
    """
    b = check_bits(bits, fmt)
    man = fmt.man_bits
    e_field = (b >> man) & fmt.max_exp_field
    m_field = b & fmt.man_mask
    sig = np.where(e_field == 0, m_field, m_field | (1 << man)).astype(np.float64)
    exp = np.maximum(e_field, 1) - fmt.bias - man
    val = np.ldexp(sig, exp.astype(np.int32))
    mag = b & fmt.field_mask
    if fmt.finite_only:
        val = np.where(mag == fmt.nonfinite_bits, np.nan, val)
    else:
        val = np.where(e_field == fmt.max_exp_field, np.where(m_field == 0, np.inf, np.nan), val)
    return np.where((b & fmt.sign_bit) != 0, -val, val)


def format_bits_to_float32(bits: object, fmt: Format) -> np.ndarray:
    """Widen bit patterns of ``fmt`` exactly to float32 (needs E <= 8, M <= 23).

    NaN patterns become the canonical float32 quiet NaN ``0x7FC00000``.

    Raises:
        ValueError: ``fmt`` is wider than float32 (its values would not fit exactly).
    """
    if fmt.exp_bits > 8 or fmt.man_bits > 23:
        raise ValueError(f"format {fmt.name} (E={fmt.exp_bits}, M={fmt.man_bits}) does not widen "
                         "exactly to float32 (needs E <= 8, M <= 23)")
    val = format_bits_to_float64(bits, fmt).astype(np.float32)
    return canonicalize_nan(val)


def canonicalize_nan(x: np.ndarray) -> np.ndarray:
    """Replace every NaN of a float32 array by the canonical quiet NaN ``0x7FC00000`` (in place)."""
    nan = np.isnan(x)
    if nan.any():
        x.view(np.uint32)[nan] = FP32_QNAN_BITS
    return x


def float32_bits(x: object) -> np.ndarray:
    """Bit patterns (uint32) of a float32 array."""
    return as_float_array(x).view(np.uint32)


def broadcast_pair(a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("a", "b")
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``np.broadcast_arrays(a, b)`` with an error that names both operands and their shapes."""
    try:
        return tuple(np.broadcast_arrays(a, b))  # type: ignore[return-value]
    except ValueError:
        raise ValueError(f"{names[0]} shape {np.shape(a)} and {names[1]} shape {np.shape(b)} "
                         "do not broadcast") from None
