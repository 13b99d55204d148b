"""Scalar building blocks of the numba kernels (LLVM inlines them into the loops of
:mod:`lmul._kmatmul`, :mod:`lmul._kelementwise` and :mod:`lmul._kbits`): rounding float32 to a
format, widening back, the L-Mul unit, the exact product and the seed notebook's multiplier,
each returning the bits of :mod:`lmul._core`.

Bit patterns of a format ``(E, M)`` are int32 ``sign | exponent | mantissa`` (for E + M = 31 the
sign lands in int32's sign bit). Every ``_i32`` intermediate provably fits in 32 bits (ranges are
noted where it is not obvious). Functions are branch-free where they sit in vectorized loops.

Not cached on disk themselves (they are compiled into each kernel); numba's on-disk cache of the
kernels only checks the kernel's own source file, so :func:`lmul._kparams.stamp_helper_sources`
adds this file, :mod:`lmul._kintrinsics` and :mod:`lmul._kparams` to each kernel's cache stamp:
editing them recompiles the kernels.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._kintrinsics import _F32_INF, _F32_QNAN, _bits_f32, _f32_bits, _f64_bits, _i32, _sra


@njit
def _round32(u, man, emin, rne, inf_bits, maxfin, sign_bit, qnan):
    """Format bits (int32) of the float32 with IEEE bits ``u``: ``round_to_format_bits``.

    Values at or above the format's smallest normal keep a fixed quantum relative to their
    float32 encoding: rebias the exponent and drop ``23 - M`` bits (RNE adds half an LSB minus
    one plus the kept LSB first, so ties go to even and a carry bumps the exponent by itself).
    Smaller values lie on the format's subnormal grid, multiples of ``q = 2**(emin - M)``:
    ``|x| + C`` with ``C = 2**23 q`` rounds |x| to that grid (float32 addition is RNE and C's
    ulp is q), and the bits of the sum minus those of C count the quanta (2**M of them is the
    smallest normal, which encodes the same way). Truncation steps back one quantum where the
    rounded value exceeds |x|. Overflow gives Inf (RNE) or the largest finite value
    (truncate); NaN the canonical NaN; signs are kept. Branch-free, so the loops vectorize.
    For a finite-only format ``inf_bits`` is its NaN (``_P_INF``), so RNE overflow and Inf
    inputs give NaN (with the sign), as ``round_to_format_bits``.
    """
    sh = _i32(23 - man)
    rmask = _i32(1) if sh > 0 else _i32(0)
    half = _i32(_i32(1 << sh) >> 1)
    rebias = _i32(_i32(126 + emin) << 23)  # (127 - bias) << 23, bias = 1 - emin
    thr = _i32(_i32(emin + 127) << 23)
    c_bits = _i32(_i32(emin - man + 150) << 23)
    c = _bits_f32(c_bits)
    a = _i32(u & 0x7FFFFFFF)
    neg = _i32(_i32(u >> 31) & 1)
    an = _i32(a - rebias)
    ax = _bits_f32(a)
    s = c + ax
    if rne != 0:
        mag = _sra(_i32(_i32(an + _i32(half - rmask)) + _i32(_sra(an, sh) & rmask)), sh)
        mag_sub = _i32(_f32_bits(s) - c_bits)
    else:
        mag = _sra(an, sh)
        mag_sub = _i32(_i32(_f32_bits(s) - c_bits) - _i32((s - c) > ax))
    if a < thr:
        mag = mag_sub
    if mag >= inf_bits:
        mag = inf_bits if rne != 0 else maxfin
    out = _i32(mag | _i32(neg * sign_bit))
    if a >= _F32_INF:
        out = _i32(_i32(neg * sign_bit) | inf_bits) if a == _F32_INF else qnan
    return out


@njit
def _widen32(x, ebits, man, inf_bits, field_mask, cadd, sub_scale):
    """IEEE float32 bits (int32) of format bits ``x``, exact; NaN -> ``0x7FC00000``.

    Normal values rebias the exponent (``cadd = (127 - bias) << M``, 0 when E = 8); with E = 8 the
    format's subnormals are float32 subnormals on the same grid; with E < 8 they are float32
    normals, computed as ``mantissa * 2**(emin - M)`` (``sub_scale``, exact). ``inf_bits`` is
    ``_P_INF``: it equals ``field_mask`` exactly for a finite-only format (an IEEE-style Inf
    has mantissa 0, M >= 1), whose ``inf_bits`` is then its NaN.
    """
    neg = _i32(_sra(x, ebits + man) & 1)
    mag = _i32(x & field_mask)
    f = _i32(_i32(mag + cadd) << _i32(23 - man))
    if ebits != 8 and mag < _i32(1 << man):
        f = _f32_bits(np.float32(mag) * sub_scale)
    is_inf = (mag == inf_bits) & (inf_bits != field_mask)
    if mag >= inf_bits:
        f = _i32(_F32_INF) if is_inf else _i32(_F32_QNAN)
    if (mag < inf_bits) | is_inf:
        f = _i32(f | _i32(neg << 31))
    return f


@njit
def _lmul32(a, b, ebits, man, emaxf, k0, cadd, lo, hi, ovf):
    """The L-Mul unit on int32 format bits (E + M <= 29), returning float32 bits (int32).

    ``t = field(a) + field(b) + k0`` with ``k0 = OFFSET - (bias << M)``; exponent ``t >> M <= 0``
    (``t < lo``) underflows to zero, ``t >= hi`` (``hi`` = ``_P_INF``: exponent ``>= 2**E - 1``,
    or for a finite-only format the NaN code) gives ``ovf`` (Inf or NaN, or the largest finite
    value, as float32 bits); L-Mul results are never subnormal, so a normal result widens as
    ``(t + cadd) << (23 - M)``. Special operands follow the spec (``lmul_bits``): an operand is
    Inf/NaN when its magnitude is ``>= hi``, zero when below ``lo`` (exponent field 0); ``emaxf``
    is unused (kept so every caller's argument list stays one).
    """
    field_mask = _i32(_i32(1 << (ebits + man)) - 1)
    man_mask = _i32(_i32(1 << man) - 1)
    fa = _i32(a & field_mask)
    fb = _i32(b & field_mask)
    t = _i32(_i32(fa + fb) + k0)
    r = _i32(_i32(t + cadd) << _i32(23 - man))
    if t < lo:
        r = _i32(0)
    if t >= hi:
        r = ovf
    a_zero = fa < lo
    b_zero = fb < lo
    a_spec = fa >= hi
    b_spec = fb >= hi
    if a_zero | b_zero:
        r = _i32(0)
    if a_spec | b_spec:
        r = _i32(_F32_INF)
    r = _i32(r | _i32(_sra(_i32(a ^ b), ebits + man) << 31))
    a_nan = a_spec & (_i32(a & man_mask) != 0)
    b_nan = b_spec & (_i32(b & man_mask) != 0)
    # The last term: a NaN overflow result (finite-only formats) loses the sign it just got.
    if (a_nan | b_nan | (a_spec & b_zero) | (b_spec & a_zero)
            | (_i32(r & 0x7FFFFFFF) > _i32(_F32_INF))):
        r = _i32(_F32_QNAN)
    return r


@njit
def _lmul64(a, b, ebits, man, bias, offset, sat, fin):
    """The L-Mul unit on format bits in int64 (any format), returning format bits.

    The general path: rows of B holding Inf/NaN, and formats with E + M > 29. ``fin`` = 1: a
    finite-only format (``lmul_bits_numpy``: NaN only at ``S.1...1.1...1``, overflow to NaN).
    """
    a = np.int64(a) & ((1 << (1 + ebits + man)) - 1)
    b = np.int64(b) & ((1 << (1 + ebits + man)) - 1)
    emaxf = (1 << ebits) - 1
    man_mask = (1 << man) - 1
    field_mask = (1 << (ebits + man)) - 1
    sign_bit = 1 << (ebits + man)
    inf_bits = field_mask if fin != 0 else emaxf << man  # the nonfinite threshold
    qnan = inf_bits | (1 << (man - 1))
    fa = a & field_mask
    fb = b & field_mask
    f = fa + fb - (bias << man) + offset
    fe = f >> man
    if fe <= 0:
        mag = 0
    elif f >= inf_bits:
        mag = inf_bits - 1 if sat != 0 else inf_bits
    else:
        mag = f
    a_zero = (fa >> man) == 0
    b_zero = (fb >> man) == 0
    a_spec = fa >= inf_bits
    b_spec = fb >= inf_bits
    if a_zero or b_zero:
        mag = 0
    if a_spec or b_spec:
        mag = inf_bits
    out = ((a ^ b) & sign_bit) | mag
    a_nan = a_spec and (a & man_mask) != 0
    b_nan = b_spec and (b & man_mask) != 0
    if (a_nan or b_nan or (a_spec and b_zero) or (b_spec and a_zero)
            or (fin != 0 and mag == inf_bits)):
        out = qnan
    return out


@njit
def _round_f64_rne(u, man, emin, inf_bits, sign_bit, qnan):
    """Format bits (int64; RNE, overflow to Inf) of the float64 with IEEE bits ``u``."""
    a = u & 0x7FFFFFFFFFFFFFFF
    neg = (u >> 63) & 1
    e64 = a >> 52
    frac = a & 0xFFFFFFFFFFFFF
    sig = frac | 0x10000000000000 if e64 != 0 else frac
    e = max(e64, 1) - 1023
    e_eff = max(e, emin)
    # A 53-bit significand shifted by >= 55 rounds to 0 either way.
    shift = min(52 - man + (e_eff - e), 60)
    r = sig >> shift
    rem = sig & ((1 << shift) - 1)
    half = (1 << shift) >> 1
    if shift > 0 and (rem > half or (rem == half and (r & 1) == 1)):
        r += 1
    mag = ((e_eff - emin) << man) + r
    if mag >= inf_bits:
        mag = inf_bits
    out = mag | (neg * sign_bit)
    if e64 == 0x7FF:
        out = (neg * sign_bit) | inf_bits if frac == 0 else qnan
    return out


@njit
def _exact64(x, y, ebits, man, emin, inf_bits, field_mask, cadd, sub_scale):
    """Exact product of two float32 format values rounded RNE to the format, as float32 bits.

    Formed in float64 (exact: <= 48 significant bits, exponents far inside float64's range) and
    rounded once, so nothing is rounded twice.
    """
    sign_bit = 1 << (ebits + man)
    qnan = inf_bits | (1 << (man - 1))
    p = np.float64(x) * np.float64(y)
    bits = _round_f64_rne(_f64_bits(p), man, emin, inf_bits, sign_bit, qnan)
    return _widen32(bits, ebits, man, inf_bits, field_mask, cadd, sub_scale)


@njit
def _rne_e8(u, rnd, sh, keep):
    """Round float32 bits ``u`` to an E = 8 format with RNE, as float32 bits (NaN canonical).

    Add half an LSB minus one plus the LSB itself, then clear the dropped bits: the carry walks
    into the exponent (and to Inf) by itself; subnormals share float32's grid. The magnitude
    plus ``rnd + 1`` stays below 2**31 for every non-NaN ``u``, so no carry reaches the sign.
    """
    r = _i32(_i32(_i32(u + rnd) + _i32(_sra(u, sh) & 1)) & keep)
    if _i32(u & 0x7FFFFFFF) > _F32_INF:
        r = _i32(_F32_QNAN)
    return r


@njit
def _seed32(ua, ub):
    """The seed notebook's multiplier on float32 IEEE bits ``ua``, ``ub`` (``seed_lmul``).

    ``r / 32`` and ``r / 64`` are computed as ``r * 2**-5`` and ``r * 2**-6``: division by a power
    of two and multiplication by its exact reciprocal round the same real number, so the bits
    are identical (subnormal, Inf and NaN cases included), and multiplication is much cheaper.
    """
    ha = _i32(_i32(ua >> 16) & 0xFFFF)
    hb = _i32(_i32(ub >> 16) & 0xFFFF)
    fa = _i32(ha & 0x7FFF)
    fb = _i32(hb & 0x7FFF)
    total = _i32(_i32(fa + fb) + 0x4080)
    fld = _i32(total & 0x7FFF)
    if total < 0x8000:
        fld = _i32(0)
    if total >= 0x10000:
        fld = _i32(0x7FFF)
    sign = _i32(_i32(ha ^ hb) & 0x8000)
    if fld == 0:
        sign = _i32(0)
    r = _bits_f32(_i32(_i32(sign | fld) << 16))
    p = (r + r * np.float32(0.03125)) + r * np.float32(0.015625)
    if ((fa >> 7) == 0) | ((fb >> 7) == 0):
        p = np.float32(0.0)
    return p


@njit
def _canonical_nans(acc):
    """Replace every NaN of a float32 array by the canonical ``0x7FC00000``, in place."""
    qnan = _bits_f32(_i32(_F32_QNAN))
    for j in range(acc.size):
        if acc[j] != acc[j]:
            acc[j] = qnan
