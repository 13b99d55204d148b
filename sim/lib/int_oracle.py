"""Integer references for fp_mul and fp_add: exact product or sum, rounded once (vectorized).

The second oracle beside :mod:`sim.lib.oracle`: where that one computes with rationals one pair
at a time, these form the exact product or sum of the decoded operands in int64 and round it once
(round to nearest, ties to even, the module's subnormal policy) over whole arrays, fast enough
for the exhaustive proof (:mod:`sim.prove`, 2^32 pairs per 16-bit configuration). They import
nothing of the project (no ``lmul``), and ``sim/tests/test_prove.py`` checks them against the
rational oracle.

Bit layout of every operand and result: sign | exponent (E bits) | mantissa (M bits), IEEE
encodings, bias 2^(E-1) - 1; the canonical NaN is sign 0, exponent all ones, mantissa MSB only.
The product also takes finite-only formats (OCP "FN", ``finite_only=True``: no Inf, NaN only at
exponent and mantissa all ones, which is also the canonical NaN with sign 0).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["add_reference", "mul_reference"]


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
def _mul_kernel(a: np.ndarray, b: np.ndarray, out: np.ndarray, ebits: int, man: int,
                subnormals: int, fin: int) -> None:
    emaxf = (1 << ebits) - 1
    mmask = (1 << man) - 1
    fmask = (1 << (ebits + man)) - 1
    bias = (1 << (ebits - 1)) - 1
    qnan = fmask if fin != 0 else (emaxf << man) | (1 << (man - 1))
    for i in range(a.size):
        x = np.int64(a[i])
        y = np.int64(b[i])
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
            r = qnan
        elif x_inf or y_inf:
            r = qnan if ((not x_inf and sx == 0) or (not y_inf and sy == 0)) else (
                (neg << (ebits + man)) | (emaxf << man))
        elif sx == 0 or sy == 0:
            r = neg << (ebits + man)
        else:
            e = (max(ex, 1) - bias - man) + (max(ey, 1) - bias - man)
            r = _round_pack(neg, sx * sy, e, ebits, man, subnormals, fin)
        out[i] = r


@njit(cache=True, nogil=True)
def _add_kernel(a: np.ndarray, b: np.ndarray, out: np.ndarray, ebits: int, man: int) -> None:
    emaxf = (1 << ebits) - 1
    mmask = (1 << man) - 1
    bias = (1 << (ebits - 1)) - 1
    qnan = (emaxf << man) | (1 << (man - 1))
    far = man + 3  # beyond this exponent gap the smaller operand only matters as a sticky bit
    for i in range(a.size):
        x = np.int64(a[i])
        y = np.int64(b[i])
        nx, ny = (x >> (ebits + man)) & 1, (y >> (ebits + man)) & 1
        ex, ey = (x >> man) & emaxf, (y >> man) & emaxf
        mx, my = x & mmask, y & mmask
        if (ex == emaxf and mx != 0) or (ey == emaxf and my != 0):
            out[i] = qnan
            continue
        if ex == emaxf or ey == emaxf:
            if ex == emaxf and ey == emaxf and nx != ny:
                out[i] = qnan
            elif ex == emaxf:
                out[i] = (nx << (ebits + man)) | (emaxf << man)
            else:
                out[i] = (ny << (ebits + man)) | (emaxf << man)
            continue
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
            out[i] = (nx & ny) << (ebits + man)  # -0 + -0 = -0, every other exact zero is +0
        elif total < 0:
            out[i] = _round_pack(1, -total, e0, ebits, man, 1)
        else:
            out[i] = _round_pack(0, total, e0, ebits, man, 1)


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
