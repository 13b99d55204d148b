"""Integer references for fp_mul and fp_add: exact product or sum, rounded once (vectorized).

The second oracle beside :mod:`sim.lib.oracle`: where that one computes with rationals one pair
at a time, these form the exact product or sum of the decoded operands in int64 and round it once
(round to nearest, ties to even, the module's subnormal policy) over whole arrays, fast enough
for the exhaustive proof (:mod:`sim.prove`, 2^32 pairs per 16-bit configuration). They import
nothing of the project (no ``lmul``), and ``sim/tests/test_prove.py`` checks them against the
rational oracle.

Each kernel makes two passes over the arrays. The first computes every pair as if its operands
were finite (the product: normal, so that the significand product's leading one is one of two
known bits and no leading zeros are counted), with selects instead of branches, so that numba
compiles it to vector code; the second recomputes the pairs it does not cover (a zero,
subnormal, Inf or NaN operand of the product, an Inf or NaN operand of the sum) with the general
scalar code. Both passes round the same exact value the same way; the split is only for speed.
:func:`mul_reference_into` / :func:`add_reference_into` write straight into the caller's array
of the RTL's dtype (the proof's inner loop).

Bit layout of every operand and result: sign | exponent (E bits) | mantissa (M bits), IEEE
encodings, bias 2^(E-1) - 1; the canonical NaN is sign 0, exponent all ones, mantissa MSB only.
The product also takes finite-only formats (OCP "FN", ``finite_only=True``: no Inf, NaN only at
exponent and mantissa all ones, which is also the canonical NaN with sign 0).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["add_reference", "add_reference_into", "mul_reference", "mul_reference_into"]


@njit(cache=True, nogil=True)
def _bit_length(x: int) -> int:
    n = 0
    while x >= 256:
        x >>= 8
        n += 8
    while x > 0:
        x >>= 1
        n += 1
    return n


@njit(cache=True, nogil=True)
def _round_pack(neg: int, mag: int, exp: int, ebits: int, man: int, subnormals: int,
                fin: int = 0) -> int:
    """Bits of ``(-1)^neg * mag * 2^exp`` (``mag > 0`` exact) rounded to nearest even.

    Overflow gives Inf (``fin=1``, a finite-only format: the canonical NaN, sign 0, once the
    rounded value exceeds the largest finite one); results below the smallest normal are
    subnormals (``subnormals=1``) or, with ``subnormals=0``, a zero when the exact magnitude is
    below the smallest normal.
    """
    bias = (1 << (ebits - 1)) - 1
    emin_lsb = 1 - bias - man  # weight of the subnormals' LSB, also the smallest normal's LSB
    sign = neg << (ebits + man)
    top = exp + _bit_length(mag) - 1  # weight of the leading one
    if subnormals == 0 and top < 1 - bias:
        return sign
    lsb = max(top - man, emin_lsb)
    sh = lsb - exp
    if sh <= 0:
        q = mag << (-sh)
    elif sh > 62:
        q = 0  # mag < 2^62 <= half the quantum: rounds down to zero
    else:
        q = mag >> sh
        rem = mag & ((1 << sh) - 1)
        half = 1 << (sh - 1)
        if rem > half or (rem == half and (q & 1) == 1):
            q += 1
    if q >= (1 << (man + 1)):
        q >>= 1
        lsb += 1
    if q < (1 << man):
        return sign | q  # subnormal or zero: exponent field 0
    field = lsb - emin_lsb + 1
    if fin != 0:
        packed = (field << man) | (q - (1 << man))
        if packed >= (1 << (ebits + man)) - 1:
            return (1 << (ebits + man)) - 1
        return sign | packed
    if field >= (1 << ebits) - 1:
        return sign | (((1 << ebits) - 1) << man)
    return sign | (field << man) | (q - (1 << man))


@njit(cache=True, nogil=True)
def _mul_general(x: int, y: int, ebits: int, man: int, subnormals: int, fin: int) -> int:
    """Bits of the product of the bit patterns ``x`` and ``y``: every class of operand."""
    emaxf = (1 << ebits) - 1
    mmask = (1 << man) - 1
    fmask = (1 << (ebits + man)) - 1
    bias = (1 << (ebits - 1)) - 1
    qnan = fmask if fin != 0 else (emaxf << man) | (1 << (man - 1))
    neg = ((x ^ y) >> (ebits + man)) & 1
    ex, ey = (x >> man) & emaxf, (y >> man) & emaxf
    mx, my = x & mmask, y & mmask
    sx = mx if ex == 0 else mx | (1 << man)
    sy = my if ey == 0 else my | (1 << man)
    if subnormals == 0:
        if ex == 0:
            sx = 0
        if ey == 0:
            sy = 0
    x_inf, y_inf = ex == emaxf, ey == emaxf
    if fin != 0:
        # No Inf: an all-ones exponent is a normal binade; only all ones is NaN.
        x_inf = (x & fmask) == fmask
        y_inf = (y & fmask) == fmask
    if (x_inf and mx != 0) or (y_inf and my != 0):
        return qnan
    if x_inf or y_inf:
        if (not x_inf and sx == 0) or (not y_inf and sy == 0):
            return qnan
        return (neg << (ebits + man)) | (emaxf << man)
    if sx == 0 or sy == 0:
        return neg << (ebits + man)
    e = (max(ex, 1) - bias - man) + (max(ey, 1) - bias - man)
    return _round_pack(neg, sx * sy, e, ebits, man, subnormals, fin)


@njit(cache=True, nogil=True)
def _mul_kernel(a: np.ndarray, b: np.ndarray, out: np.ndarray, ebits: int, man: int,
                subnormals: int, fin: int) -> None:
    emaxf = (1 << ebits) - 1
    mmask = (1 << man) - 1
    fmask = (1 << (ebits + man)) - 1
    bias = (1 << (ebits - 1)) - 1
    hidden = 1 << man
    inf_bits = emaxf << man
    one = np.int64(1)
    # First pass, for every pair as if both operands were normal and, in a format with Inf,
    # finite (exponent fields 1..emaxf-1): their significands' product lies in [2^2M, 2^(2M+2)),
    # so the exact product's leading one is bit 2M + hi and no leading zeros need counting.
    # Selects instead of branches, so that the loop compiles to vector code.
    for i in range(a.size):
        x = np.int64(a[i])
        y = np.int64(b[i])
        ex = (x >> man) & emaxf
        ey = (y >> man) & emaxf
        sign = ((x ^ y) >> (ebits + man) & 1) << (ebits + man)
        mag = ((x & mmask) | hidden) * ((y & mmask) | hidden)
        hi = mag >> (2 * man + 1)
        top = ex + ey - 2 * bias + hi  # unbiased exponent of the exact product's leading one
        normal = top >= 1 - bias
        # A normal result keeps M + 1 significant bits. A subnormal one has its LSB at
        # 2^(1-bias-M) while the product's LSB is at 2^(top-hi-2M); a shift beyond 2M + 3 leaves
        # rem < half, the same result as 2M + 3 (zero).
        sh = man + hi if normal else min(1 - bias - man - (top - hi - 2 * man), 2 * man + 3)
        q = mag >> sh
        rem = mag & ((one << sh) - 1)
        # Round to nearest, ties to even: up iff rem > half, or rem == half and q odd.
        q += np.int64(rem + (q & 1) > (one << (sh - 1)))
        # A normal q lies in [2^M, 2^(M+1)]: added with the hidden bit removed, it carries into
        # the exponent field by itself when rounding reached 2^(M+1). A subnormal q is the
        # encoding itself (2^M after rounding up: the smallest normal).
        packed = ((top + bias) << man) + q - hidden if normal else q
        if subnormals == 0 and not normal:
            packed = 0  # exact magnitude below the smallest normal: a zero of the sign
        if fin != 0:
            r = fmask if packed >= fmask else sign | packed
        else:
            r = sign | (inf_bits if packed >= inf_bits else packed)
        out[i] = r
    # Second pass: pairs with a zero, subnormal, Inf or NaN operand (a finite-only format's top
    # binade goes this way too), the general way.
    for i in range(a.size):
        x = np.int64(a[i])
        y = np.int64(b[i])
        ex = (x >> man) & emaxf
        ey = (y >> man) & emaxf
        if ex == 0 or ey == 0 or ex == emaxf or ey == emaxf:
            out[i] = _mul_general(x, y, ebits, man, subnormals, fin)


@njit(cache=True, nogil=True)
def _add_general(x: int, y: int, ebits: int, man: int) -> int:
    """Bits of the sum of the bit patterns ``x`` and ``y``: every class of operand."""
    emaxf = (1 << ebits) - 1
    mmask = (1 << man) - 1
    bias = (1 << (ebits - 1)) - 1
    qnan = (emaxf << man) | (1 << (man - 1))
    far = man + 3  # beyond this exponent gap the smaller operand only matters as a sticky bit
    nx, ny = (x >> (ebits + man)) & 1, (y >> (ebits + man)) & 1
    ex, ey = (x >> man) & emaxf, (y >> man) & emaxf
    mx, my = x & mmask, y & mmask
    if (ex == emaxf and mx != 0) or (ey == emaxf and my != 0):
        return qnan
    if ex == emaxf or ey == emaxf:
        if ex == emaxf and ey == emaxf and nx != ny:
            return qnan
        if ex == emaxf:
            return (nx << (ebits + man)) | (emaxf << man)
        return (ny << (ebits + man)) | (emaxf << man)
    sx = mx if ex == 0 else mx | (1 << man)
    sy = my if ey == 0 else my | (1 << man)
    px = max(ex, 1) - bias - man  # value = s * 2^p
    py = max(ey, 1) - bias - man
    if px < py:
        sx, sy, px, py, nx, ny = sy, sx, py, px, ny, nx
    d = px - py
    if d > far:
        # |y| < a quarter of x's quantum in the binade below x: any nonzero value that
        # small, with y's sign, rounds the same, so y shrinks to one unit 2^(px - far).
        big = sx << far
        small = 1 if sy != 0 else 0
        e0 = px - far
    else:
        big = sx << d
        small = sy
        e0 = py
    total = (-big if nx else big) + (-small if ny else small)
    if total == 0:
        return (nx & ny) << (ebits + man)  # -0 + -0 = -0, every other exact zero is +0
    if total < 0:
        return _round_pack(1, -total, e0, ebits, man, 1)
    return _round_pack(0, total, e0, ebits, man, 1)


@njit(cache=True, nogil=True)
def _bit_length_select(x: int) -> int:
    """``x.bit_length()`` for ``0 <= x < 2^63`` with selects only (no branches, no loop)."""
    n = 0
    for k in (32, 16, 8, 4, 2, 1):
        s = k if x >= (np.int64(1) << k) else 0
        x >>= s
        n += s
    return n + x


@njit(cache=True, nogil=True)
def _add_kernel(a: np.ndarray, b: np.ndarray, out: np.ndarray, ebits: int, man: int) -> None:
    emaxf = (1 << ebits) - 1
    mmask = (1 << man) - 1
    bias = (1 << (ebits - 1)) - 1
    emin_lsb = 1 - bias - man  # weight of the subnormals' LSB, also the smallest normal's LSB
    inf_bits = emaxf << man
    sign_at = ebits + man
    far = man + 3
    one = np.int64(1)
    # First pass, for every pair as if both operands were finite: the computation of
    # _add_general with selects instead of branches (the loop compiles to vector code).
    for i in range(a.size):
        x = np.int64(a[i])
        y = np.int64(b[i])
        nx, ny = (x >> sign_at) & 1, (y >> sign_at) & 1
        ex, ey = (x >> man) & emaxf, (y >> man) & emaxf
        sx = (x & mmask) | (np.int64(ex != 0) << man)
        sy = (y & mmask) | (np.int64(ey != 0) << man)
        px = max(ex, 1) - bias - man  # value = s * 2^p
        py = max(ey, 1) - bias - man
        swap = px < py
        s_big, s_small = (sy, sx) if swap else (sx, sy)
        n_big, n_small = (ny, nx) if swap else (nx, ny)
        p_big, p_small = (py, px) if swap else (px, py)
        d = p_big - p_small
        dd = min(d, far)
        big = s_big << dd
        # Beyond `far` binades the smaller operand only counts as one sticky unit.
        small = np.int64(s_small != 0) if d > far else s_small
        e0 = p_big - dd
        total = (-big if n_big else big) + (-small if n_small else small)
        neg = np.int64(total < 0)
        mag = -total if total < 0 else total
        top = e0 + _bit_length_select(mag) - 1
        lsb = max(top - man, emin_lsb)
        sh = lsb - e0
        shr = max(sh, 0)
        q = (mag << max(-sh, 0)) >> shr
        rem = mag & ((one << shr) - 1)
        # Round to nearest, ties to even (nothing to round when no bit was shifted out).
        q += np.int64((shr > 0) & (rem + (q & 1) > ((one << shr) >> 1)))
        # q is the significand at weight 2^lsb, in [2^M, 2^(M+1)] for a normal result (the top
        # value carries into the exponent field by itself), below 2^M for a subnormal one
        # (lsb = emin_lsb, exponent field 0; 2^M after rounding up is the smallest normal).
        packed = ((lsb - emin_lsb) << man) + q
        r = (neg << sign_at) | (inf_bits if packed >= inf_bits else packed)
        # An exact zero is +0 unless both operands are -0.
        out[i] = ((nx & ny) << sign_at) if total == 0 else r
    # Second pass: pairs with an Inf or NaN operand, the general way.
    for i in range(a.size):
        x = np.int64(a[i])
        y = np.int64(b[i])
        if ((x >> man) & emaxf) == emaxf or ((y >> man) & emaxf) == emaxf:
            out[i] = _add_general(x, y, ebits, man)


def _as_int64(x: object, width: int, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of bit patterns, got {arr.dtype}")
    wide = np.ascontiguousarray(arr.reshape(-1), dtype=np.int64)
    if wide.size and (wide.min() < 0 or int(wide.max()) >> width):
        raise ValueError(f"{name} has values outside 0..2**{width}-1")
    return wide


def _check_widths(exp_bits: int, man_bits: int) -> None:
    if not (2 <= exp_bits <= 11 and 1 <= man_bits <= 52 and man_bits * 2 + 6 <= 62):
        raise ValueError(f"reference supports E 2..11 and M 1..28, got E={exp_bits} M={man_bits}")


def _operands(a: object, b: object, exp_bits: int, man_bits: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a, b) as checked flat int64 bit patterns of the format, and an int64 output array."""
    _check_widths(exp_bits, man_bits)
    width = 1 + exp_bits + man_bits
    av, bv = _as_int64(a, width, "a"), _as_int64(b, width, "b")
    if av.size != bv.size:
        raise ValueError(f"a and b differ in length ({av.size} vs {bv.size})")
    return av, bv, np.empty(av.size, dtype=np.int64)


def mul_reference(a: object, b: object, exp_bits: int, man_bits: int,
                  subnormals: bool = True, finite_only: bool = False) -> np.ndarray:
    """Correctly rounded IEEE products of bit patterns, as uint64 bit patterns.

    The significands are multiplied exactly in int64 and the product is rounded once to nearest,
    ties to even; overflow gives Inf, NaN the canonical quiet NaN (sign 0, exponent all ones,
    mantissa MSB), Inf x 0 NaN. ``subnormals=False``: operands with exponent field 0 are zeros of
    their sign and a product whose exact magnitude is below 2^(1-bias) is a zero of its sign.
    ``finite_only=True``: the OCP "FN" encoding (no Inf; a product rounding beyond the largest
    finite value is the canonical NaN ``0.1...1.1...1``).
    """
    av, bv, out = _operands(a, b, exp_bits, man_bits)
    _mul_kernel(av, bv, out, exp_bits, man_bits, int(bool(subnormals)), int(bool(finite_only)))
    return out.astype(np.uint64)


def add_reference(a: object, b: object, exp_bits: int, man_bits: int) -> np.ndarray:
    """Correctly rounded IEEE sums of bit patterns (subnormals kept), as uint64 bit patterns.

    The sum is formed exactly in int64 (an operand more than M + 3 binades below the other is
    replaced by a sticky unit, which provably rounds the same) and rounded once to nearest, ties
    to even; overflow gives Inf; an exact zero is +0 unless both operands are -0; NaN or
    Inf - Inf gives the canonical quiet NaN.
    """
    av, bv, out = _operands(a, b, exp_bits, man_bits)
    _add_kernel(av, bv, out, exp_bits, man_bits)
    return out.astype(np.uint64)


def _check_into(a: np.ndarray, b: np.ndarray, out: np.ndarray, exp_bits: int,
                man_bits: int) -> None:
    _check_widths(exp_bits, man_bits)
    width = 1 + exp_bits + man_bits
    for name, arr in (("a", a), ("b", b), ("out", out)):
        if not (isinstance(arr, np.ndarray) and arr.ndim == 1 and arr.flags.c_contiguous
                and arr.dtype.kind == "u" and arr.dtype.itemsize * 8 >= width):
            raise TypeError(f"{name} must be a 1-D contiguous unsigned array of at least {width} "
                            f"bits, got {getattr(arr, 'dtype', type(arr))}")
    if not a.size == b.size == out.size:
        raise ValueError(f"a, b and out differ in length ({a.size}, {b.size}, {out.size})")


def mul_reference_into(a: np.ndarray, b: np.ndarray, out: np.ndarray, exp_bits: int,
                       man_bits: int, subnormals: bool = True, finite_only: bool = False) -> None:
    """:func:`mul_reference` written into ``out``, for the proof's inner loop.

    ``a``, ``b`` and ``out`` are 1-D contiguous unsigned arrays of equal length (any unsigned
    dtype at least ``1 + E + M`` bits wide, typically the RTL's). The operands' values are not
    range-checked: bits above the format's width must be zero (:func:`mul_reference` checks).
    """
    _check_into(a, b, out, exp_bits, man_bits)
    _mul_kernel(a, b, out, exp_bits, man_bits, int(bool(subnormals)), int(bool(finite_only)))


def add_reference_into(a: np.ndarray, b: np.ndarray, out: np.ndarray, exp_bits: int,
                       man_bits: int) -> None:
    """:func:`add_reference` written into ``out`` (same contract as :func:`mul_reference_into`)."""
    _check_into(a, b, out, exp_bits, man_bits)
    _add_kernel(a, b, out, exp_bits, man_bits)
