"""Bit-exact model of ``hdl/fp_add.v``: IEEE-754 binary addition, round to nearest even.

Bit patterns are unsigned integers laid out ``sign | exponent (E bits) | mantissa (M bits)``, MSB
first, exponent bias ``2**(E-1) - 1``, IEEE encodings (exponent 0: zero/subnormal; all ones:
Inf/NaN). The model follows the RTL's algorithm step by step on 64-bit integers (it never
delegates to a floating-point unit), so it is valid for every supported ``(E, M)``; for (8, 23) it
equals numpy float32 addition and for (11, 52) float64 addition, bit for bit on every non-NaN
result.

Semantics: subnormal inputs and outputs (no flushing); exact cancellation ``x + (-x)`` gives +0;
``-0 + -0`` gives -0; overflow gives Inf; ``Inf + (-Inf)`` and any NaN input give the canonical
quiet NaN (sign 0, exponent all ones, mantissa MSB only).
"""

from __future__ import annotations

import numpy as np

from ._convert import broadcast_pair
from ._formats import FORMAT_EXP_BITS_RANGE, FORMAT_MAN_BITS_RANGE, format_for

#: Legal exponent widths of ``fp_add`` (RTL parameter EXP_BITS): every :class:`lmul.Format`.
FP_ADD_EXP_BITS_RANGE = FORMAT_EXP_BITS_RANGE
#: Legal mantissa widths of ``fp_add`` (RTL parameter MAN_BITS): every :class:`lmul.Format`.
FP_ADD_MAN_BITS_RANGE = FORMAT_MAN_BITS_RANGE

_U64 = np.uint64


def _as_bits(bits: object, width: int, name: str) -> np.ndarray:
    """Validate bit patterns of ``width`` bits and return them as uint64."""
    arr = np.asarray(bits)
    if arr.dtype == object:
        # Python ints beyond int64 (64-bit formats) arrive as an object array.
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr.flat):
            raise TypeError(f"{name} must be integer bit patterns")
        flat = [int(v) for v in arr.flat]
        if any(v < 0 or v >> width for v in flat):
            raise ValueError(f"{name} has values outside 0..2**{width}-1")
        return np.array(flat, dtype=_U64).reshape(arr.shape)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of bit patterns, got dtype {arr.dtype}")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >> width:
            raise ValueError(f"{name} has values outside 0..2**{width}-1 (min {lo}, max {hi})")
    return arr.astype(_U64)


def _bit_length(v: np.ndarray) -> np.ndarray:
    """Number of significant bits of each uint64 (0 for 0), exact for all 64-bit values."""
    n = np.zeros(v.shape, dtype=_U64)
    v = v.copy()
    for step in (32, 16, 8, 4, 2, 1):
        high = (v >> _U64(step)) != 0
        n += np.where(high, _U64(step), _U64(0))
        v = np.where(high, v >> _U64(step), v)
    return n + (v != 0).astype(_U64)


def fp_add_bits(
    a_bits: object, b_bits: object, exp_bits: int = 8, man_bits: int = 23
) -> np.ndarray:
    """Add two arrays of floating-point bit patterns exactly as ``hdl/fp_add.v`` does.

    Args:
        a_bits: bit patterns ``sign | exponent | mantissa`` of width ``1 + exp_bits + man_bits``,
            any integer array-like (Python ints for 64-bit formats are accepted).
        b_bits: same, broadcast against ``a_bits``.
        exp_bits: exponent width E, an int 2..11 (default 8: binary32).
        man_bits: stored mantissa width M, an int 1..52 (default 23: binary32).

    Returns:
        Bit patterns of ``a + b`` rounded to nearest even, in the smallest unsigned dtype that
        holds ``1 + E + M`` bits (uint32 for binary32), with the broadcast shape of the inputs.

    Raises:
        ValueError: widths out of range, or a pattern negative or wider than the format.
        TypeError: widths or inputs are not integers.
    """
    fmt = format_for(exp_bits, man_bits)
    e_w, m_w, width = fmt.exp_bits, fmt.man_bits, fmt.width
    a, b = broadcast_pair(_as_bits(a_bits, width, "a_bits"), _as_bits(b_bits, width, "b_bits"),
                          ("a_bits", "b_bits"))

    exp_ones = _U64(fmt.max_exp_field)
    man_mask = _U64(fmt.man_mask)
    mag_mask = _U64(fmt.field_mask)
    sign_pos = _U64(e_w + m_w)
    m_sh = _U64(m_w)
    one, zero = _U64(1), _U64(0)

    sa, sb = a >> sign_pos, b >> sign_pos
    ea, eb = (a >> m_sh) & exp_ones, (b >> m_sh) & exp_ones
    ma, mb = a & man_mask, b & man_mask
    a_nan = (ea == exp_ones) & (ma != 0)
    b_nan = (eb == exp_ones) & (mb != 0)
    a_inf = (ea == exp_ones) & (ma == 0)
    b_inf = (eb == exp_ones) & (mb == 0)

    # Order by magnitude: {exponent, mantissa} as an unsigned integer orders IEEE magnitudes.
    a_ge_b = (a & mag_mask) >= (b & mag_mask)
    s_l = np.where(a_ge_b, sa, sb)
    e_l, e_s = np.where(a_ge_b, ea, eb), np.where(a_ge_b, eb, ea)
    m_l, m_s = np.where(a_ge_b, ma, mb), np.where(a_ge_b, mb, ma)
    eff_sub = sa != sb

    # Subnormals: exponent 1, hidden bit 0, so value = sig * 2**(x - bias - M) for all finite.
    h_l, h_s = (e_l != 0).astype(_U64), (e_s != 0).astype(_U64)
    x_l, x_s = np.where(h_l == 1, e_l, one), np.where(h_s == 1, e_s, one)

    # Align: significand {hidden, mantissa, guard, round, sticky}; bits shifted past the sticky
    # position are ORed into it. |l| >= |s| implies x_l >= x_s.
    sig_w = m_w + 4
    d = np.minimum(x_l - x_s, _U64(sig_w))
    sig_l = ((h_l << m_sh) | m_l) << _U64(3)
    sig_s = ((h_s << m_sh) | m_s) << _U64(3)
    lost = sig_s & ((one << d) - one)
    s_al = (sig_s >> d) | (lost != 0).astype(_U64)

    # Add or subtract (wrap-around in the lanes that np.where discards is harmless).
    r = np.where(eff_sub, sig_l - s_al, sig_l + s_al)
    r_zero = r == 0

    # Normalise: MSB to bit RW-1, shift capped so the exponent stops at 1 (subnormal result).
    r_w = m_w + 5
    lz = _U64(r_w) - _bit_length(r)
    sh = np.minimum(lz, x_l)
    e_n = x_l + one - sh
    r_n = r << sh
    hid = (r_n >> _U64(r_w - 1)) & one
    m_n = (r_n >> _U64(4)) & man_mask
    rnd = (r_n >> _U64(3)) & one
    stk = ((r_n & _U64(7)) != 0).astype(_U64)
    inc = rnd & (stk | (m_n & one))

    e_f = np.where(hid == 1, e_n, zero)
    ovf = e_f == exp_ones
    # A carry out of the mantissa moves into the exponent: subnormal -> normal, max -> Inf.
    mag = ((e_f << m_sh) | m_n) + inc
    # Zero sums are exact, so the only -0 result is -0 + -0.
    s_r = np.where(r_zero, sa & sb, s_l)
    inf_field = exp_ones << m_sh

    y = (s_r << sign_pos) | mag
    y = np.where(ovf, (s_r << sign_pos) | inf_field, y)
    inf_sign = np.where(a_inf, sa, sb)
    y = np.where(a_inf | b_inf, (inf_sign << sign_pos) | inf_field, y)
    qnan = inf_field | (one << _U64(m_w - 1))
    y = np.where(a_nan | b_nan | (a_inf & b_inf & eff_sub), qnan, y)
    return y.astype(fmt.uint_dtype)
