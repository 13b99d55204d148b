"""Bit-level models: the L-Mul unit (``hdl/lmul_core.v``), and the pure-numpy float paths of the
L-Mul unit, the exact multiplier baseline and the seed notebook's multiplier (the references of
the fast kernels; the public API is :func:`lmul.lmul_bits`, which runs a numba kernel when one
is available, and the float functions :func:`lmul.lmul`, :func:`lmul.exact_mul`,
:func:`lmul.seed_lmul`).

The L-Mul unit multiplies two values of one format by adding their (exponent|mantissa) fields as
integers (Luo & Sun, arXiv 2410.00907, eq. 2):

1. either operand NaN -> canonical quiet NaN (sign 0, exponent all ones, mantissa MSB only);
2. Inf times zero/subnormal (either order) -> canonical quiet NaN;
3. either operand Inf -> Inf with sign ``s = sa ^ sb``;
4. either exponent field 0 (zero or subnormal: inputs are flushed) -> zero with sign ``s``;
5. otherwise ``f = field(a) + field(b) - (bias << M) + OFFSET``; ``f >> M <= 0`` -> zero with
   sign ``s``; ``f >> M >= 2**E - 1`` -> Inf with sign ``s`` (largest finite when saturating);
   else the result is ``{s, f[E+M-1:0]}``. Nothing is rounded inside the unit.

A finite-only format (``cfg.finite_only``, OCP E4M3FN: no Inf, NaN only at ``S.1...1.1...1``)
keeps rules 1, 4 and 5 with two changes: NaN is that one magnitude (the canonical NaN is
``0.1...1.1...1``), rules 2 and 3 cannot occur, and overflow is ``f >= 2**(E+M) - 1`` (a field
sum reaching the NaN code; every other all-ones-exponent field is a normal result), which gives
the canonical NaN, or the largest finite value (``0.1...1.1...10``, 448) when saturating. The
OCP FP8 spec's two conversion modes are the same pair: non-saturating (NaN) and saturating.
"""

from __future__ import annotations

import numpy as np

from ._convert import (
    Rounding,
    as_float_array,
    broadcast_pair,
    check_bits,
    format_bits_to_float32,
    format_bits_to_float64,
    round_to_format_bits,
)
from ._formats import LMulConfig

_DEFAULT = LMulConfig()


def lmul_bits_numpy(a_bits: object, b_bits: object, cfg: LMulConfig = _DEFAULT) -> np.ndarray:
    """L-Mul of two arrays of bit patterns of ``cfg.fmt`` (see the module docstring), in numpy.

    The reference of the numba path of :func:`lmul.lmul_bits` (same contract, same bits).

    Args:
        a_bits, b_bits: unsigned integer arrays (broadcastable) of ``1 + E + M``-bit patterns,
            ``sign | exponent | mantissa``.
        cfg: format, offset and overflow policy.

    Returns:
        Bit patterns of the result, dtype ``cfg.fmt.uint_dtype``, the broadcast shape.
    """
    if not isinstance(cfg, LMulConfig):
        raise TypeError(f"cfg must be an lmul.LMulConfig, got {type(cfg).__name__}")
    fmt = cfg.fmt
    a = check_bits(a_bits, fmt, "a_bits")
    b = check_bits(b_bits, fmt, "b_bits")
    a, b = broadcast_pair(a, b, ("a_bits", "b_bits"))
    man = fmt.man_bits
    # Every magnitude at or above nonfinite_bits is Inf/NaN (finite-only: exactly the NaN).
    a_special = (a & fmt.field_mask) >= fmt.nonfinite_bits
    b_special = (b & fmt.field_mask) >= fmt.nonfinite_bits
    a_nan = a_special & ((a & fmt.man_mask) != 0)
    b_nan = b_special & ((b & fmt.man_mask) != 0)
    a_zero, b_zero = (a & fmt.field_mask) >> man == 0, (b & fmt.field_mask) >> man == 0
    sign = (a ^ b) & fmt.sign_bit

    f = (a & fmt.field_mask) + (b & fmt.field_mask) - (fmt.bias << man) + cfg.offset_value
    f_exp = f >> man  # arithmetic shift: a negative sum means underflow
    # The non-saturating overflow result is Inf, or NaN where the format has no Inf.
    overflow_mag = fmt.max_finite_bits if cfg.saturate else fmt.nonfinite_bits
    mag = np.where(f_exp <= 0, 0, np.where(f >= fmt.nonfinite_bits, overflow_mag,
                                           f & fmt.field_mask))
    # Special classes, lowest priority first so that each later rule overrides the earlier ones.
    mag = np.where(a_zero | b_zero, 0, mag)
    mag = np.where(a_special | b_special, fmt.nonfinite_bits, mag)
    out = sign | mag
    invalid = a_nan | b_nan | (a_special & b_zero) | (b_special & a_zero)
    if fmt.finite_only:
        invalid |= mag == fmt.nonfinite_bits  # an overflow to NaN is the canonical NaN
    out = np.where(invalid, fmt.qnan_bits, out)
    return out.astype(fmt.uint_dtype)


def lmul_numpy(x: np.ndarray, y: np.ndarray, cfg: LMulConfig = _DEFAULT,
               rounding: Rounding = "rne") -> np.ndarray:
    """Pure-numpy :func:`lmul.lmul` on float32 arrays (the reference path of the fast kernels)."""
    fmt = cfg.fmt
    bits = lmul_bits_numpy(round_to_format_bits(x, fmt, rounding),
                           round_to_format_bits(y, fmt, rounding), cfg)
    return format_bits_to_float32(bits, fmt)


def exact_mul_numpy(x: np.ndarray, y: np.ndarray, cfg: LMulConfig = _DEFAULT,
                    rounding: Rounding = "rne") -> np.ndarray:
    """Pure-numpy :func:`lmul.exact_mul` on float32 arrays."""
    fmt = cfg.fmt
    xd = format_bits_to_float64(round_to_format_bits(x, fmt, rounding), fmt)
    yd = format_bits_to_float64(round_to_format_bits(y, fmt, rounding), fmt)
    with np.errstate(invalid="ignore", over="ignore"):
        # Exact: two significands of <= 24 bits multiply into <= 48 bits, and the exponent range
        # of a product of two E <= 8 values stays far inside float64's.
        prod = xd * yd
    return format_bits_to_float32(round_to_format_bits(prod, fmt, "rne"), fmt)


def seed_lmul_numpy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pure-numpy :func:`lmul.seed_lmul` on float32 arrays (behaviour documented there)."""
    xb = (as_float_array(x, "x").view(np.uint32) >> 16).astype(np.int64)
    yb = (as_float_array(y, "y").view(np.uint32) >> 16).astype(np.int64)
    xb, yb = broadcast_pair(xb, yb, ("x", "y"))
    fx, fy = xb & 0x7FFF, yb & 0x7FFF
    flushed = ((fx >> 7) == 0) | ((fy >> 7) == 0)
    # 0x4080 == (2**15 - (127 << 7)) mod 2**15: subtracts the bias and sets bit 15 for a normal
    # result, so bits 16:15 of the 17-bit sum classify underflow (00), normal (01), overflow (1x).
    total = fx + fy + 0x4080
    top = (total >> 15) & 0x3
    field = np.where(top == 1, total & 0x7FFF, np.where(top >= 2, 0x7FFF, 0))
    sign = np.where(field == 0, 0, (xb ^ yb) & 0x8000)
    r = ((sign | field) << 16).astype(np.uint32).view(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        r = (r + r / np.float32(32)) + r / np.float32(64)
    return np.where(flushed, np.float32(0.0), r).astype(np.float32)
