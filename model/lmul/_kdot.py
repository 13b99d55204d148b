"""Numba kernels of the matrix product with fused accumulation (``lmul.Fused``): the bits of
:func:`lmul.fused_sum_bits` applied as :func:`lmul.matmul_reference` chains it.

Nothing here is public API; :mod:`lmul._matmul` validates arguments and calls these. Work is
split into tiles (row m, column chunk) like the sequential kernels of :mod:`lmul._kmatmul`, and
B is prepared by the same ``prep_*_b`` kernels. A step of ``k`` products takes one of:

* L-Mul steps whose rows all take the sequential kernel's single-add path (products
  ``a32 + bpre``, never zero, Inf or NaN) or hold only zero products (A's rows judged once per
  tile, :func:`_tile_a`), computed in registers without a product buffer:
  :func:`_exact_sum_step` when the tile's exponent bounds prove that no term loses a bit (the
  float64 sum is then exact; one conversion rounds it), else :func:`_window_sum_step32` /
  ``64`` (per column ``emax``, :func:`_emax_pass`: from the operands' field sums, int16 where
  the format fits 15 bits; each term scaled to the window's LSB in float32 and converted to an
  integer truncating toward zero, integer sums; one conversion to float32 rounds the sum, an
  exact power-of-two scaling restores it); where the int32 window applies, two rows of A whose
  steps both take it with no zero product share each pass over B (:func:`_window_pair32`,
  taken without a route decision: it is exact wherever it applies and declines otherwise);
* any other step (other multipliers, specials, under/overflowing products, windows wider than
  float64 holds): the products' bits into a buffer ``[k, chunk]`` by the sequential kernels'
  per-row paths, then :func:`_fused_tile`: ``emax`` per column, terms scaled exactly in float64,
  ``trunc`` (the contract's sign-magnitude truncation), float64 sums, one conversion.

Why float64 is exact: with a window of ``w <= 52 - ceil(log2(k + 1))`` bits every truncated term
is an integer below ``2**(w + 1)`` in units of the LSB, so every partial sum of the ``k + 1``
terms is an integer below ``2**53`` and no float64 addition rounds; scaling by powers of two is
exact and the final float64 -> float32 conversion is the one RNE rounding (gradual underflow and
overflow to Inf included). Inf and NaN terms flow through the same IEEE operations to the
contract's results (NaNs are made canonical at the end). A zero sum of terms not all zero is +0,
as the contract says. Two cases take the exact scalar step :func:`_fused_step_scalar`
(multi-word integers) instead, per column: a wider window (``align_bits`` above ``w``) where
some term has bits below the float64 window's LSB, and a step whose terms are all zeros (the
sign of the result needs every term).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

from ._kintrinsics import _F32_INF, _F32_QNAN, _INT32_MIN, _bits_f32, _f32_bits, _i32, _sra
from ._kparams import (
    _P_BIAS,
    _P_CADD,
    _P_E,
    _P_EMAXF,
    _P_EMIN,
    _P_FAST,
    _P_FIELD,
    _P_FIN,
    _P_INF,
    _P_K0,
    _P_KEEP,
    _P_LO,
    _P_M,
    _P_MAXFIN,
    _P_OFFSET,
    _P_OVF,
    _P_QNAN,
    _P_RND,
    _P_RNE,
    _P_SAT,
    _P_SH,
    _P_SIGN,
    _P_SUB,
    stamp_helper_sources,
)
from ._kscalar import (
    _canonical_nans,
    _exact64,
    _lmul32,
    _lmul64,
    _rne_e8,
    _round32,
    _widen32,
)

_i16 = np.int16

#: Blocks of tiles per kernel launch (each allocates its scratch once): several per thread.
_BLOCKS = 256
#: 32-bit limbs of the scalar step's exact sum: 276 + 1 bits, 7 carry bits, a sign, spare.
_LIMBS = 12


@njit
def _ceil_log2(x):
    n = 0
    while (1 << n) < x:
        n += 1
    return n


def float64_window(k: int, align_bits: int) -> int:
    """Widest window the float64 sum of ``k + 1`` terms holds exactly, capped at align_bits."""
    return min(align_bits, 52 - math.ceil(math.log2(k + 1)))


@intrinsic
def _bits_f64(typingctx, x):
    """The float64 whose IEEE bits are an int64 (a free bitcast)."""
    if x != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit
def _bits_of(limbs, pos, count):
    """``count`` (<= 25) bits of the limb array's integer from bit ``pos`` upwards."""
    i = pos >> 5
    off = pos & 31
    v = (limbs[i] >> off) | (limbs[i + 1] << (32 - off))
    return v & ((1 << count) - 1)


@njit
def _any_below(limbs, pos):
    """Whether any bit below position ``pos`` of the limb array's integer is set."""
    i = pos >> 5
    if limbs[i] & ((1 << (pos & 31)) - 1):
        return True
    for j in range(i):
        if limbs[j] != 0:
            return True
    return False


@njit
def _fused_step_scalar(tb, t_len, align, limbs):
    """The contract's steps 1-7 for the binary32 bits ``tb[:t_len]`` (int64 values
    0..2**32-1), exactly, for any window up to 276 bits: the sum in 32-bit limbs of int64.
    Returns the result's bits as an int64."""
    any_nan = False
    pinf = False
    ninf = False
    all_zero = True
    all_neg0 = True
    emax = 0
    for i in range(t_len):
        t = tb[i]
        e = (t >> 23) & 0xFF
        if e == 0xFF:
            if t & 0x7FFFFF:
                any_nan = True
            elif t >> 31:
                ninf = True
            else:
                pinf = True
        if t != 0x80000000:
            all_neg0 = False
        if t & 0x7FFFFFFF:
            all_zero = False
            emax = max(emax, max(e, 1))
    if any_nan or (pinf and ninf):
        return np.int64(_F32_QNAN)
    if pinf:
        return np.int64(_F32_INF)
    if ninf:
        return np.int64(_F32_INF) | (np.int64(1) << 31)
    if all_zero:
        return (np.int64(1) << 31) if all_neg0 else np.int64(0)
    nl = (align + 8) // 32 + 2
    for i in range(nl + 1):
        limbs[i] = 0
    for i in range(t_len):
        t = tb[i]
        e = (t >> 23) & 0xFF
        sig = t & 0x7FFFFF
        if e == 0:
            e = 1
        else:
            sig |= 0x800000
        if sig == 0:
            continue
        sh = e - emax + align - 23
        if sh < 0:
            if sh <= -24:
                continue
            sig >>= -sh  # the magnitude truncated toward zero, before its sign
            sh = 0
        w = sig << (sh & 31)
        lo = w & 0xFFFFFFFF
        hi = w >> 32
        if t >> 31:
            lo, hi = -lo, -hi
        limbs[sh >> 5] += lo
        limbs[(sh >> 5) + 1] += hi
    for i in range(nl - 1):
        c = limbs[i] >> 32
        limbs[i] -= c << 32
        limbs[i + 1] += c
    neg = limbs[nl - 1] < 0
    if neg:
        for i in range(nl):
            limbs[i] = -limbs[i]
        for i in range(nl - 1):
            c = limbs[i] >> 32
            limbs[i] -= c << 32
            limbs[i + 1] += c
    top = nl - 1
    while top >= 0 and limbs[top] == 0:
        top -= 1
    if top < 0:
        return np.int64(0)  # exact cancellation, or every term truncated away: +0
    n = 32 * top
    v = limbs[top]
    while v:
        n += 1
        v >>= 1
    exp2 = emax - 127 - align
    lead = n - 1 + exp2
    quantum = max(lead - 23, -149)
    shift = quantum - exp2
    if shift <= 0:
        sig = limbs[0] << -shift
    else:
        sig = _bits_of(limbs, shift, 25)
        if _bits_of(limbs, shift - 1, 1) and (sig & 1 or _any_below(limbs, shift - 1)):
            sig += 1
    mag = ((quantum + 149) << 23) + sig
    if mag >= _F32_INF:
        mag = _F32_INF
    return (np.int64(1) << 31 if neg else np.int64(0)) | mag


@njit
def _fused_tile(acc, pb, nk, k, cs, align, wf, em, sc, s64, lost, tb, limbs):
    """One fused step for ``cs`` columns: ``acc[j] = dot(acc[j], pb[0:nk, j])`` in place.

    ``pb``: int32 product bits ``[nk * cs]`` (step-major); ``nk <= k`` products, the missing
    ``k - nk`` are +0 padding. ``wf``: the float64 window (:func:`float64_window`); where
    ``align > wf`` a column whose terms have bits below the float64 window's LSB is redone by
    :func:`_fused_step_scalar`, as is a column of zeros only (the sign of its zero result needs
    every term; any other zero result is +0). ``em, sc, s64, lost, tb, limbs``:
    scratch arrays of the tile.
    """
    for j in range(cs):
        em[j] = _i32(_f32_bits(acc[j]) & 0x7FFFFFFF)
    k4 = nk - nk % 4
    for kk in range(0, k4, 4):
        p0 = pb[kk * cs:(kk + 1) * cs]
        p1 = pb[(kk + 1) * cs:(kk + 2) * cs]
        p2 = pb[(kk + 2) * cs:(kk + 3) * cs]
        p3 = pb[(kk + 3) * cs:(kk + 4) * cs]
        for j in range(cs):
            em[j] = max(max(max(em[j], _i32(p0[j] & 0x7FFFFFFF)), max(_i32(p1[j] & 0x7FFFFFFF),
                    _i32(p2[j] & 0x7FFFFFFF))), _i32(p3[j] & 0x7FFFFFFF))
    for kk in range(k4, nk):
        p = pb[kk * cs:(kk + 1) * cs]
        for j in range(cs):
            em[j] = max(em[j], _i32(p[j] & 0x7FFFFFFF))
    check = align > wf
    for j in range(cs):
        e = max(_sra(em[j], 23), _i32(1))  # 255 for Inf/NaN: finite terms scale harmlessly
        scale = _bits_f64(np.int64(1023 + 127 + wf - e) << 52)
        x = np.float64(acc[j]) * scale
        t = np.trunc(x)
        sc[j] = scale
        s64[j] = 0.0 + t  # +0.0 first: a -0 term must not decide the sign of a zero sum
        lost[j] = check and t != x
    for kk in range(0, k4, 4):
        p0 = pb[kk * cs:(kk + 1) * cs]
        p1 = pb[(kk + 1) * cs:(kk + 2) * cs]
        p2 = pb[(kk + 2) * cs:(kk + 3) * cs]
        p3 = pb[(kk + 3) * cs:(kk + 4) * cs]
        if check:
            for j in range(cs):
                scale = sc[j]
                x0 = np.float64(_bits_f32(p0[j])) * scale
                x1 = np.float64(_bits_f32(p1[j])) * scale
                x2 = np.float64(_bits_f32(p2[j])) * scale
                x3 = np.float64(_bits_f32(p3[j])) * scale
                t0, t1, t2, t3 = np.trunc(x0), np.trunc(x1), np.trunc(x2), np.trunc(x3)
                s64[j] = (((s64[j] + t0) + t1) + t2) + t3
                lost[j] |= (t0 != x0) | (t1 != x1) | (t2 != x2) | (t3 != x3)
        else:
            for j in range(cs):
                scale = sc[j]
                t0 = np.trunc(np.float64(_bits_f32(p0[j])) * scale)
                t1 = np.trunc(np.float64(_bits_f32(p1[j])) * scale)
                t2 = np.trunc(np.float64(_bits_f32(p2[j])) * scale)
                t3 = np.trunc(np.float64(_bits_f32(p3[j])) * scale)
                s64[j] = (((s64[j] + t0) + t1) + t2) + t3
    for kk in range(k4, nk):
        p = pb[kk * cs:(kk + 1) * cs]
        for j in range(cs):
            x = np.float64(_bits_f32(p[j])) * sc[j]
            t = np.trunc(x)
            s64[j] += t
            lost[j] |= check and t != x
    redo = False
    for j in range(cs):
        # The scale is a power of two: dividing by it is exact.
        r = np.float32(s64[j] / sc[j])
        bad = lost[j] | ((r == 0) & (em[j] == 0))  # all terms zero: the sign needs them all
        lost[j] = bad
        acc[j] = acc[j] if bad else r  # a redone column keeps its input for _redo_columns
        redo |= bad
    if redo:
        _redo_columns(acc, pb, nk, k, cs, align, lost, tb, limbs)


@njit
def _redo_columns(acc, pb, nk, k, cs, align, flag, tb, limbs):
    """:func:`_fused_step_scalar` for the columns ``j`` with ``flag[j]``; ``acc`` holds the
    step's input accumulators there, ``pb`` the products."""
    for j in range(cs):
        if not flag[j]:
            continue
        tb[0] = np.int64(_f32_bits(acc[j])) & 0xFFFFFFFF
        for kk in range(nk):
            tb[kk + 1] = np.int64(pb[kk * cs + j]) & 0xFFFFFFFF
        t_len = nk + 1
        if nk < k:
            tb[t_len] = 0  # one +0 padding product stands for all of them
            t_len += 1
        acc[j] = _bits_f32(_i32(_fused_step_scalar(tb, t_len, align, limbs)))


@njit
def _scratch(chunk, k):
    """Per-tile scratch: products, emax, scales, sums, flags, one column's terms, limbs."""
    return (np.empty(k * chunk, dtype=np.int32), np.empty(chunk, dtype=np.int32),
            np.empty(chunk, dtype=np.float64), np.empty(chunk, dtype=np.float64),
            np.empty(chunk, dtype=np.bool_), np.empty(k + 2, dtype=np.int64),
            np.zeros(_LIMBS, dtype=np.int64))


@njit
def _lmul_products(af, bb, fb, bpre, special, fbmin, fbmax, m, k_len, n_len, n0, n1, c0, nk,
                   prm, pb):
    """The L-Mul products of step ``A[m, c0:c0+nk] x B[c0:c0+nk, n0:n1]`` as float32 bits into
    ``pb`` (step-major), by the paths of :func:`lmul._kmatmul.matmul_lmul` (same bits)."""
    ebits, man, bias_e = prm[_P_E], prm[_P_M], prm[_P_BIAS]
    offset, sat = prm[_P_OFFSET], prm[_P_SAT]
    emaxf, inf_bits, field_mask = prm[_P_EMAXF], prm[_P_INF], prm[_P_FIELD]
    fast = prm[_P_FAST] != 0
    cadd, sh = _i32(prm[_P_CADD]), _i32(prm[_P_SH])
    lo, hi, ovf = _i32(prm[_P_LO]), _i32(inf_bits), _i32(prm[_P_OVF])
    inf32, maxfin, field32 = _i32(inf_bits), _i32(prm[_P_MAXFIN]), _i32(field_mask)
    sub_scale = _bits_f32(prm[_P_SUB])
    e32, m32, emaxf32, rne32 = _i32(ebits), _i32(man), _i32(emaxf), _i32(prm[_P_RNE])
    emin, sign_bit, qnan = _i32(prm[_P_EMIN]), _i32(prm[_P_SIGN]), _i32(prm[_P_QNAN])
    k0 = _i32(prm[_P_K0])
    sbit = _i32(ebits + man)
    cs = n1 - n0
    for kk in range(nk):
        kr = c0 + kk
        p = pb[kk * cs:(kk + 1) * cs]
        a_i = _round32(_f32_bits(af[m * k_len + kr]), m32, emin, rne32, inf32, maxfin,
                       sign_bit, qnan)
        a = np.int64(a_i)
        ea = (a >> man) & emaxf
        sa = _i32(_INT32_MIN) if ((a >> (ebits + man)) & 1) != 0 else _i32(0)
        row = kr * n_len
        if (fast and special[kr] == 0 and ea != 0 and ea != emaxf
                and (a & field_mask) + fbmin[kr] >= lo and (a & field_mask) + fbmax[kr] < hi):
            a32 = _i32(sa + _i32((a & field_mask) << sh))
            bpr = bpre[row + n0:row + n1]
            for j in range(cs):
                p[j] = _i32(a32 + bpr[j])
        elif fast and special[kr] == 0 and ea != 0 and ea != emaxf:
            fa = _i32(a & field_mask)
            fbr = fb[row + n0:row + n1]
            bbr = bb[row + n0:row + n1]
            for j in range(cs):
                t = _i32(fa + fbr[j])
                r = _i32(_i32(t + cadd) << sh)
                if t < lo:
                    r = _i32(0)
                if t >= hi:
                    r = ovf
                sgn = _i32(_sra(bbr[j], sbit) << 31)
                p[j] = _i32(r | _i32(sa ^ sgn))
        elif special[kr] == 0 and ea == 0:
            bbr = bb[row + n0:row + n1]
            for j in range(cs):
                p[j] = _i32(sa ^ _i32(_sra(bbr[j], sbit) << 31))
        elif fast:
            bbr = bb[row + n0:row + n1]
            for j in range(cs):
                p[j] = _lmul32(a_i, bbr[j], e32, m32, emaxf32, k0, cadd, lo, hi, ovf)
        else:
            bbr = bb[row + n0:row + n1]
            for j in range(cs):
                r64 = _lmul64(a, np.int64(bbr[j]), ebits, man, bias_e, offset, sat, prm[_P_FIN])
                p[j] = _i32(_widen32(r64, e32, m32, inf32, field32, cadd, sub_scale))


@njit
def _tile_a(af, fbmin, fbmax, special, m, k_len, prm, kind, ax, ahi, alo):
    """Row ``m`` of A judged once per tile for every step (:func:`_step_rows`): ``kind[k]`` 1
    where A[m, k]'s products with row k of B all take the single-add path of
    :func:`lmul._kmatmul.matmul_lmul` (products ``a32 + bpre``, never zero, Inf or NaN), 2
    where they are all zeros (a zero/subnormal A element, no Inf/NaN in the row), 0 otherwise
    (the general path); ``ax``, ``ahi``, ``alo`` A's half of the product bits and the bounds of
    the products' float32 exponent fields (kind 1 only). Branch-free, so the loop over k
    vectorizes (rounding A per step and row cost as much as a narrow step's sums)."""
    ebits, man = prm[_P_E], prm[_P_M]
    emaxf, field_mask = prm[_P_EMAXF], prm[_P_FIELD]
    fast = np.int64(prm[_P_FAST] != 0)
    cadd, sh = prm[_P_CADD], prm[_P_SH]
    lo, hi = prm[_P_LO], prm[_P_INF]
    m32, emin, rne32 = _i32(man), _i32(prm[_P_EMIN]), _i32(prm[_P_RNE])
    inf32, maxfin = _i32(prm[_P_INF]), _i32(prm[_P_MAXFIN])
    sign_bit, qnan = _i32(prm[_P_SIGN]), _i32(prm[_P_QNAN])
    for kr in range(k_len):
        a = np.int64(_round32(_f32_bits(af[m * k_len + kr]), m32, emin, rne32, inf32, maxfin,
                              sign_bit, qnan))
        ea = (a >> man) & emaxf
        fa = a & field_mask
        usable = fast & np.int64(special[kr] == 0)
        single = (np.int64(ea != 0) & np.int64(ea != emaxf) & np.int64(fa + fbmin[kr] >= lo)
                  & np.int64(fa + fbmax[kr] < hi))
        kind[kr] = usable * (single + 2 * np.int64(ea == 0))
        sa = ((a >> (ebits + man)) & 1) << 31
        ax[kr] = _i32(sa + (fa << sh))
        ahi[kr] = (fa + fbmax[kr] + cadd) >> man
        alo[kr] = (fa + fbmin[kr] + cadd) >> man


@njit
def _step_rows(kind, ax, ahi, alo, c0, nk, n_len, n0, man, a32r, rowr, rlo, rhi):
    """Whether every row of an L-Mul step (A's row judged by :func:`_tile_a`, columns
    ``c0 .. c0 + nk``) takes the single-add path or holds only zero products (which add nothing
    to a nonzero sum); then, in ``a32r``/``rowr``, A's half of each nonzero row's product bits
    and the row's offset into ``bpre``, in ``rlo``/``rhi`` the bounds of its products' float32
    exponent fields. Returns ``(ok, rows, hi, low)``: the float32 exponent field bound of all
    the products, and the lowest bit position (same units) any of them can have."""
    nz = 0
    p_hi = np.int64(0)
    p_low = np.int64(1 << 20)
    for kk in range(nk):
        kr = c0 + kk
        t = kind[kr]
        if t == 0:
            return False, nz, p_hi, p_low
        if t == 2:
            continue
        a32r[nz] = ax[kr]
        rowr[nz] = kr * n_len + n0
        rhi[nz] = ahi[kr]
        rlo[nz] = alo[kr]
        nz += 1
        p_hi = max(p_hi, ahi[kr])
        p_low = min(p_low, alo[kr] - man)
    return True, nz, p_hi, p_low


@njit
def _acc_bounds(acc):
    """(largest exponent field, lowest possible bit position in the same units) of ``acc``."""
    a_hi = _i32(0)
    a_low = _i32(1 << 20)
    for j in range(acc.size):
        b = _i32(_f32_bits(acc[j]) & 0x7FFFFFFF)
        e = _sra(b, 23)
        a_hi = max(a_hi, e)
        a_low = min(a_low, _i32(max(e, _i32(1)) - 23) if b != 0 else _i32(1 << 20))
    return np.int64(a_hi), np.int64(a_low)


@njit
def _zero_rows_only(acc, flag):
    """A step whose products are all zeros: the result is the accumulator, except that a -0
    accumulator gives -0 only if every product is -0 (flagged for :func:`_redo_columns`).
    Returns whether a column was flagged."""
    redo = False
    for j in range(acc.size):
        bad = _f32_bits(acc[j]) == _INT32_MIN
        flag[j] = bad
        redo |= bad
    return redo


@njit
def _group_rows(nz, man, rlo, rhi, quads, pairs, singles):
    """Rows of a single-add step grouped so that float32 sums inside a group are exact.

    A product has ``man + 1`` significant bits, its lowest at ``e - man`` for exponent field
    ``e``; ``n`` of them whose fields span ``d`` (over every column of the tile) sum exactly in
    24 bits when ``d + man + 1 + ceil(log2 n) <= 24``. Consecutive rows are grouped greedily in
    fours, else twos, else alone (sorting first finds a few more groups but costs more than
    they save). Returns the counts; ``quads``/``pairs``/``singles`` hold the row indices.
    """
    nq = npr = ns = 0
    i = 0
    while i < nz:
        if i + 4 <= nz:
            hi = max(max(rhi[i], rhi[i + 1]), max(rhi[i + 2], rhi[i + 3]))
            lo = min(min(rlo[i], rlo[i + 1]), min(rlo[i + 2], rlo[i + 3]))
            if hi - lo + man + 3 <= 24:
                for t in range(4):
                    quads[4 * nq + t] = i + t
                nq += 1
                i += 4
                continue
        if (i + 2 <= nz
                and max(rhi[i], rhi[i + 1]) - min(rlo[i], rlo[i + 1]) + man + 2 <= 24):
            pairs[2 * npr] = i
            pairs[2 * npr + 1] = i + 1
            npr += 1
            i += 2
            continue
        singles[ns] = i
        ns += 1
        i += 1
    return nq, npr, ns


@njit
def _mag(x, v):
    """A single-add product's magnitude bits (A's half ``x``, B's ``v``)."""
    return _i32(_i32(x + v) & 0x7FFFFFFF)


@njit
def _prod(x, b, j):
    """A single-add product's float32: A's half plus B's, the bits wrapping mod 2**32."""
    return _bits_f32(_i32(x + b[j]))


@njit
def _exact_sum_step(bpre, nz, a32r, rowr, off, man, rlo, rhi, acc, s64, flag, grp):
    """A single-add step that truncates nothing (see :func:`_step_rows`): the float64 sum of
    the terms, exact (in any order), converted once to float32. Rows whose products sum exactly
    in float32 (:func:`_group_rows`) are added in float32 first: fewer conversions. Returns
    whether a column is left for :func:`_redo_columns` (``flag[j]``, ``acc[j]`` unchanged):
    only a -0 accumulator in a step of zero products."""
    cs = acc.size
    if nz == 0:
        return _zero_rows_only(acc, flag)
    k = a32r.size
    quads, pairs, singles = grp[:4 * k], grp[4 * k:6 * k], grp[6 * k:7 * k]
    nq, npr, ns = _group_rows(nz, man, rlo, rhi, quads, pairs, singles)
    for j in range(cs):
        s64[j] = np.float64(acc[j])
    for g in range(nq):
        r = quads[4 * g:4 * g + 4]
        x0, x1, x2, x3 = a32r[r[0]], a32r[r[1]], a32r[r[2]], a32r[r[3]]
        b0 = bpre[rowr[r[0]] + off:rowr[r[0]] + off + cs]
        b1 = bpre[rowr[r[1]] + off:rowr[r[1]] + off + cs]
        b2 = bpre[rowr[r[2]] + off:rowr[r[2]] + off + cs]
        b3 = bpre[rowr[r[3]] + off:rowr[r[3]] + off + cs]
        for j in range(cs):
            s64[j] += np.float64((_prod(x0, b0, j) + _prod(x1, b1, j))
                                 + (_prod(x2, b2, j) + _prod(x3, b3, j)))
    g = 0
    while g + 2 <= npr:
        r = pairs[2 * g:2 * g + 4]
        x0, x1, x2, x3 = a32r[r[0]], a32r[r[1]], a32r[r[2]], a32r[r[3]]
        b0 = bpre[rowr[r[0]] + off:rowr[r[0]] + off + cs]
        b1 = bpre[rowr[r[1]] + off:rowr[r[1]] + off + cs]
        b2 = bpre[rowr[r[2]] + off:rowr[r[2]] + off + cs]
        b3 = bpre[rowr[r[3]] + off:rowr[r[3]] + off + cs]
        for j in range(cs):
            s64[j] += (np.float64(_prod(x0, b0, j) + _prod(x1, b1, j))
                       + np.float64(_prod(x2, b2, j) + _prod(x3, b3, j)))
        g += 2
    if g < npr:
        r = pairs[2 * g:2 * g + 2]
        x0, x1 = a32r[r[0]], a32r[r[1]]
        b0 = bpre[rowr[r[0]] + off:rowr[r[0]] + off + cs]
        b1 = bpre[rowr[r[1]] + off:rowr[r[1]] + off + cs]
        for j in range(cs):
            s64[j] += np.float64(_prod(x0, b0, j) + _prod(x1, b1, j))
    g = 0
    while g + 4 <= ns:
        r = singles[g:g + 4]
        x0, x1, x2, x3 = a32r[r[0]], a32r[r[1]], a32r[r[2]], a32r[r[3]]
        b0 = bpre[rowr[r[0]] + off:rowr[r[0]] + off + cs]
        b1 = bpre[rowr[r[1]] + off:rowr[r[1]] + off + cs]
        b2 = bpre[rowr[r[2]] + off:rowr[r[2]] + off + cs]
        b3 = bpre[rowr[r[3]] + off:rowr[r[3]] + off + cs]
        for j in range(cs):
            s64[j] += ((np.float64(_prod(x0, b0, j)) + np.float64(_prod(x1, b1, j)))
                       + (np.float64(_prod(x2, b2, j)) + np.float64(_prod(x3, b3, j))))
        g += 4
    while g < ns:
        x0 = a32r[singles[g]]
        b0 = bpre[rowr[singles[g]] + off:rowr[singles[g]] + off + cs]
        for j in range(cs):
            s64[j] += np.float64(_prod(x0, b0, j))
        g += 1
    for j in range(cs):
        # A zero sum of terms not all zero is +0 (exact cancellation): the float64 sum of
        # nonzero terms that cancel is +0 in round-to-nearest, and conversion keeps it.
        acc[j] = np.float32(s64[j])
    return False


@njit
def _exact_sum_pair(bpre, nz, x, y, rowr, off, man, rlo, rhi, acc, acc1, s64, s64b, grp):
    """:func:`_exact_sum_step` for two rows of A (halves ``x``, ``y``; accumulators ``acc``,
    ``acc1``) whose steps both truncate nothing and have the same ``nz >= 1`` nonzero rows
    ``rowr`` of B: each load of B serves both rows. ``rlo``/``rhi`` hold the exponent bounds
    of both rows' products (the wider of the two), so a group is summed in float32 only where
    it is exact in both rows. Same sums, so the same bits."""
    cs = acc.size
    k = x.size
    quads, pairs, singles = grp[:4 * k], grp[4 * k:6 * k], grp[6 * k:7 * k]
    nq, npr, ns = _group_rows(nz, man, rlo, rhi, quads, pairs, singles)
    for j in range(cs):
        s64[j] = np.float64(acc[j])
        s64b[j] = np.float64(acc1[j])
    for g in range(nq):
        r = quads[4 * g:4 * g + 4]
        x0, x1, x2, x3 = x[r[0]], x[r[1]], x[r[2]], x[r[3]]
        y0, y1, y2, y3 = y[r[0]], y[r[1]], y[r[2]], y[r[3]]
        b0 = bpre[rowr[r[0]] + off:rowr[r[0]] + off + cs]
        b1 = bpre[rowr[r[1]] + off:rowr[r[1]] + off + cs]
        b2 = bpre[rowr[r[2]] + off:rowr[r[2]] + off + cs]
        b3 = bpre[rowr[r[3]] + off:rowr[r[3]] + off + cs]
        for j in range(cs):
            s64[j] += np.float64((_prod(x0, b0, j) + _prod(x1, b1, j))
                                 + (_prod(x2, b2, j) + _prod(x3, b3, j)))
            s64b[j] += np.float64((_prod(y0, b0, j) + _prod(y1, b1, j))
                                  + (_prod(y2, b2, j) + _prod(y3, b3, j)))
    for g in range(npr):
        r = pairs[2 * g:2 * g + 2]
        x0, x1, y0, y1 = x[r[0]], x[r[1]], y[r[0]], y[r[1]]
        b0 = bpre[rowr[r[0]] + off:rowr[r[0]] + off + cs]
        b1 = bpre[rowr[r[1]] + off:rowr[r[1]] + off + cs]
        for j in range(cs):
            s64[j] += np.float64(_prod(x0, b0, j) + _prod(x1, b1, j))
            s64b[j] += np.float64(_prod(y0, b0, j) + _prod(y1, b1, j))
    g = 0
    while g + 2 <= ns:
        x0, x1 = x[singles[g]], x[singles[g + 1]]
        y0, y1 = y[singles[g]], y[singles[g + 1]]
        b0 = bpre[rowr[singles[g]] + off:rowr[singles[g]] + off + cs]
        b1 = bpre[rowr[singles[g + 1]] + off:rowr[singles[g + 1]] + off + cs]
        for j in range(cs):
            s64[j] += np.float64(_prod(x0, b0, j)) + np.float64(_prod(x1, b1, j))
            s64b[j] += np.float64(_prod(y0, b0, j)) + np.float64(_prod(y1, b1, j))
        g += 2
    if g < ns:
        x0, y0 = x[singles[g]], y[singles[g]]
        b0 = bpre[rowr[singles[g]] + off:rowr[singles[g]] + off + cs]
        for j in range(cs):
            s64[j] += np.float64(_prod(x0, b0, j))
            s64b[j] += np.float64(_prod(y0, b0, j))
    for j in range(cs):
        # As in _exact_sum_step: a zero sum of terms not all zero is +0.
        acc[j] = np.float32(s64[j])
        acc1[j] = np.float32(s64b[j])


@njit
def _emax_pass(bpre, fbn, nz, x, rowr, off, sh, cadd, acc, em, emf):
    """``em[j]``: the largest magnitude bits among column ``j``'s terms, ``acc[j]`` and the
    products of the ``nz`` single-add rows (A's halves ``x``, B's rows at ``rowr + off``).

    A single-add product's magnitude is ``(fa + fb + cadd) << sh`` (``fa``, ``fb`` the operands'
    fields as :func:`lmul._kmatmul.prep_lmul_b` defines ``fb``), so the largest one is found
    from the field sums. With ``fbn`` (``fb`` as int16, formats of at most 15 bits, where every
    single-add sum lies in ``[2**M, 2**15)``) the maximum runs 16 lanes wide; an empty ``fbn``
    (wider formats) takes the magnitudes ``x + bpre`` in int32."""
    cs = acc.size
    for j in range(cs):
        em[j] = _i32(_f32_bits(acc[j]) & 0x7FFFFFFF)
    n4 = nz - nz % 4
    if fbn.size != 0 and nz != 0:
        for j in range(cs):
            emf[j] = _i16(0)
        for g in range(0, n4, 4):
            f0, f1 = _i16((x[g] & 0x7FFFFFFF) >> sh), _i16((x[g + 1] & 0x7FFFFFFF) >> sh)
            f2, f3 = _i16((x[g + 2] & 0x7FFFFFFF) >> sh), _i16((x[g + 3] & 0x7FFFFFFF) >> sh)
            c0 = fbn[rowr[g] + off:rowr[g] + off + cs]
            c1 = fbn[rowr[g + 1] + off:rowr[g + 1] + off + cs]
            c2 = fbn[rowr[g + 2] + off:rowr[g + 2] + off + cs]
            c3 = fbn[rowr[g + 3] + off:rowr[g + 3] + off + cs]
            for j in range(cs):
                emf[j] = max(max(emf[j], max(_i16(f0 + c0[j]), _i16(f1 + c1[j]))),
                             max(_i16(f2 + c2[j]), _i16(f3 + c3[j])))
        for g in range(n4, nz):
            f0 = _i16((x[g] & 0x7FFFFFFF) >> sh)
            c0 = fbn[rowr[g] + off:rowr[g] + off + cs]
            for j in range(cs):
                emf[j] = max(emf[j], _i16(f0 + c0[j]))
        for j in range(cs):
            em[j] = max(em[j], _i32(_i32(emf[j] + cadd) << sh))
        return
    for g in range(0, n4, 4):
        x0, x1, x2, x3 = x[g], x[g + 1], x[g + 2], x[g + 3]
        b0 = bpre[rowr[g] + off:rowr[g] + off + cs]
        b1 = bpre[rowr[g + 1] + off:rowr[g + 1] + off + cs]
        b2 = bpre[rowr[g + 2] + off:rowr[g + 2] + off + cs]
        b3 = bpre[rowr[g + 3] + off:rowr[g + 3] + off + cs]
        for j in range(cs):
            em[j] = max(max(em[j], max(_mag(x0, b0[j]), _mag(x1, b1[j]))),
                        max(_mag(x2, b2[j]), _mag(x3, b3[j])))
    for g in range(n4, nz):
        x0 = x[g]
        b0 = bpre[rowr[g] + off:rowr[g] + off + cs]
        for j in range(cs):
            em[j] = max(em[j], _mag(x0, b0[j]))


@njit(inline="always")
def _scale_col_pair(j, m0, m1, align, acc, acc1, em, em1, sc, sc1, isum, isum1):
    """Column ``j`` of :func:`_emax_pair`'s outputs from ``m0``/``m1``, the largest magnitude
    bits (int32, binary32 layout) among each row's terms and accumulator: ``em``/``em1`` the
    exponent field ``e = max(emax, 1)``, ``sc``/``sc1`` the scale ``2**(align + 127 - e)``
    (from ``max(e, align)``), ``isum``/``isum1`` the accumulator's truncated term. Returns
    ``(e0, e1)``."""
    e0 = max(_sra(m0, 23), _i32(1))
    e1 = max(_sra(m1, 23), _i32(1))
    em[j] = e0
    em1[j] = e1
    s0 = _bits_f32(_i32(_i32(align + 254 - max(e0, _i32(align))) << 23))
    s1 = _bits_f32(_i32(_i32(align + 254 - max(e1, _i32(align))) << 23))
    sc[j] = s0
    sc1[j] = s1
    isum[j] = _i32(acc[j] * s0)
    isum1[j] = _i32(acc1[j] * s1)
    return e0, e1


@njit
def _emax_pair(bpre, fbn, nz, x, y, rowr, off, sh, cadd, align, acc, acc1, em, em1, emf, emf1,
               sc, sc1, isum, isum1):
    """The first pass of :func:`_window_pair32`: :func:`_emax_pass` for two rows of A (halves
    ``x``, ``y``; accumulators ``acc``, ``acc1``) over the same rows of B, each load of B's
    int16 fields serving both; then, in the same loop over the columns, ``em``/``em1`` the
    exponent field ``e = max(emax, 1)``, ``sc``/``sc1`` the scale ``2**(align + 127 - e)``
    and ``isum``/``isum1`` the accumulator's truncated term. Returns the least ``e`` (int32);
    where it is below ``align`` the scales are not float32 values and the caller discards
    them (they are computed from ``max(e, align)``: no overflow either way); 0 where some
    accumulator is Inf or NaN (``e = 255``)."""
    cs = acc.size
    if fbn.size == 0 or nz == 0:
        _emax_pass(bpre, fbn, nz, x, rowr, off, sh, cadd, acc, em, emf)
        _emax_pass(bpre, fbn, nz, y, rowr, off, sh, cadd, acc1, em1, emf)
        e_min = _i32(255)
        e_top = _i32(0)
        for j in range(cs):
            e0, e1 = _scale_col_pair(j, em[j], em1[j], align, acc, acc1, em, em1, sc, sc1,
                                     isum, isum1)
            e_min = min(e_min, min(e0, e1))
            e_top = max(e_top, max(e0, e1))
        return e_min if e_top < 255 else _i32(0)
    for j in range(cs):
        emf[j] = _i16(0)
        emf1[j] = _i16(0)
    n8 = nz - nz % 8
    n4 = nz - nz % 4
    for g in range(0, n8, 8):
        f0, f1 = _i16((x[g] & 0x7FFFFFFF) >> sh), _i16((x[g + 1] & 0x7FFFFFFF) >> sh)
        f2, f3 = _i16((x[g + 2] & 0x7FFFFFFF) >> sh), _i16((x[g + 3] & 0x7FFFFFFF) >> sh)
        f4, f5 = _i16((x[g + 4] & 0x7FFFFFFF) >> sh), _i16((x[g + 5] & 0x7FFFFFFF) >> sh)
        f6, f7 = _i16((x[g + 6] & 0x7FFFFFFF) >> sh), _i16((x[g + 7] & 0x7FFFFFFF) >> sh)
        d0, d1 = _i16((y[g] & 0x7FFFFFFF) >> sh), _i16((y[g + 1] & 0x7FFFFFFF) >> sh)
        d2, d3 = _i16((y[g + 2] & 0x7FFFFFFF) >> sh), _i16((y[g + 3] & 0x7FFFFFFF) >> sh)
        d4, d5 = _i16((y[g + 4] & 0x7FFFFFFF) >> sh), _i16((y[g + 5] & 0x7FFFFFFF) >> sh)
        d6, d7 = _i16((y[g + 6] & 0x7FFFFFFF) >> sh), _i16((y[g + 7] & 0x7FFFFFFF) >> sh)
        c0 = fbn[rowr[g] + off:rowr[g] + off + cs]
        c1 = fbn[rowr[g + 1] + off:rowr[g + 1] + off + cs]
        c2 = fbn[rowr[g + 2] + off:rowr[g + 2] + off + cs]
        c3 = fbn[rowr[g + 3] + off:rowr[g + 3] + off + cs]
        c4 = fbn[rowr[g + 4] + off:rowr[g + 4] + off + cs]
        c5 = fbn[rowr[g + 5] + off:rowr[g + 5] + off + cs]
        c6 = fbn[rowr[g + 6] + off:rowr[g + 6] + off + cs]
        c7 = fbn[rowr[g + 7] + off:rowr[g + 7] + off + cs]
        for j in range(cs):
            v0, v1, v2, v3 = c0[j], c1[j], c2[j], c3[j]
            v4, v5, v6, v7 = c4[j], c5[j], c6[j], c7[j]
            emf[j] = max(max(max(emf[j], max(_i16(f0 + v0), _i16(f1 + v1))),
                             max(_i16(f2 + v2), _i16(f3 + v3))),
                         max(max(_i16(f4 + v4), _i16(f5 + v5)), max(_i16(f6 + v6), _i16(f7 + v7))))
            emf1[j] = max(max(max(emf1[j], max(_i16(d0 + v0), _i16(d1 + v1))),
                              max(_i16(d2 + v2), _i16(d3 + v3))),
                          max(max(_i16(d4 + v4), _i16(d5 + v5)), max(_i16(d6 + v6), _i16(d7 + v7))))
    for g in range(n8, n4, 4):
        f0, f1 = _i16((x[g] & 0x7FFFFFFF) >> sh), _i16((x[g + 1] & 0x7FFFFFFF) >> sh)
        f2, f3 = _i16((x[g + 2] & 0x7FFFFFFF) >> sh), _i16((x[g + 3] & 0x7FFFFFFF) >> sh)
        d0, d1 = _i16((y[g] & 0x7FFFFFFF) >> sh), _i16((y[g + 1] & 0x7FFFFFFF) >> sh)
        d2, d3 = _i16((y[g + 2] & 0x7FFFFFFF) >> sh), _i16((y[g + 3] & 0x7FFFFFFF) >> sh)
        c0 = fbn[rowr[g] + off:rowr[g] + off + cs]
        c1 = fbn[rowr[g + 1] + off:rowr[g + 1] + off + cs]
        c2 = fbn[rowr[g + 2] + off:rowr[g + 2] + off + cs]
        c3 = fbn[rowr[g + 3] + off:rowr[g + 3] + off + cs]
        for j in range(cs):
            v0, v1, v2, v3 = c0[j], c1[j], c2[j], c3[j]
            emf[j] = max(max(emf[j], max(_i16(f0 + v0), _i16(f1 + v1))),
                         max(_i16(f2 + v2), _i16(f3 + v3)))
            emf1[j] = max(max(emf1[j], max(_i16(d0 + v0), _i16(d1 + v1))),
                          max(_i16(d2 + v2), _i16(d3 + v3)))
    for g in range(n4, nz):
        f0 = _i16((x[g] & 0x7FFFFFFF) >> sh)
        d0 = _i16((y[g] & 0x7FFFFFFF) >> sh)
        c0 = fbn[rowr[g] + off:rowr[g] + off + cs]
        for j in range(cs):
            emf[j] = max(emf[j], _i16(f0 + c0[j]))
            emf1[j] = max(emf1[j], _i16(d0 + c0[j]))
    e_min = _i32(255)
    e_top = _i32(0)
    for j in range(cs):
        m0 = max(_i32(_f32_bits(acc[j]) & 0x7FFFFFFF), _i32(_i32(emf[j] + cadd) << sh))
        m1 = max(_i32(_f32_bits(acc1[j]) & 0x7FFFFFFF), _i32(_i32(emf1[j] + cadd) << sh))
        e0, e1 = _scale_col_pair(j, m0, m1, align, acc, acc1, em, em1, sc, sc1, isum, isum1)
        e_min = min(e_min, min(e0, e1))
        e_top = max(e_top, max(e0, e1))
    return e_min if e_top < 255 else _i32(0)


def _make_window_step(ity):
    """:func:`_window_sum_step32`/``64``: the window step, terms converted (truncating) and
    summed by ``ity`` (int32, or :func:`_trunc64`)."""

    def window_step(bpre, fbn, nz, a32r, rowr, off, sh, cadd, align, acc, em, emf, sc, isum,
                    flag):
        cs = acc.size
        # No shortcut for nz == 0: the window truncates the accumulator even when it is the
        # only nonzero term (a zero column, whose sign needs every term, takes the general
        # path below: e_min == 1).
        _emax_pass(bpre, fbn, nz, a32r, rowr, off, sh, cadd, acc, em, emf)
        n4 = nz - nz % 4
        e_min = _i32(255)
        for j in range(cs):
            e = max(_sra(em[j], 23), _i32(1))
            em[j] = e
            e_min = min(e_min, e)
        if e_min <= align or e_min == 1:
            return -1
        for j in range(cs):
            scale = _bits_f32(_i32(_i32(align + 254 - em[j]) << 23))
            sc[j] = scale
            isum[j] = ity(acc[j] * scale)
        for g in range(0, n4, 4):
            x0, x1, x2, x3 = a32r[g], a32r[g + 1], a32r[g + 2], a32r[g + 3]
            b0 = bpre[rowr[g] + off:rowr[g] + off + cs]
            b1 = bpre[rowr[g + 1] + off:rowr[g + 1] + off + cs]
            b2 = bpre[rowr[g + 2] + off:rowr[g + 2] + off + cs]
            b3 = bpre[rowr[g + 3] + off:rowr[g + 3] + off + cs]
            for j in range(cs):
                scale = sc[j]
                t01 = ity(ity(_bits_f32(_i32(x0 + b0[j])) * scale)
                          + ity(_bits_f32(_i32(x1 + b1[j])) * scale))
                t23 = ity(ity(_bits_f32(_i32(x2 + b2[j])) * scale)
                          + ity(_bits_f32(_i32(x3 + b3[j])) * scale))
                isum[j] = ity(isum[j] + ity(t01 + t23))
        for g in range(n4, nz):
            x0 = a32r[g]
            b0 = bpre[rowr[g] + off:rowr[g] + off + cs]
            for j in range(cs):
                isum[j] = ity(isum[j] + ity(_bits_f32(_i32(x0 + b0[j])) * sc[j]))
        for j in range(cs):
            # One rounding (the conversion), then an exact scaling (see _WINDOW_DOC). An integer
            # sum of 0 is +0 here, the contract's result when some term is nonzero.
            acc[j] = np.float32(isum[j]) * _bits_f32(_i32(_i32(em[j] - align) << 23))
        return np.int64(0)

    window_step.__doc__ = _WINDOW_DOC
    return njit(window_step)


_WINDOW_DOC = """A single-add step (see :func:`_step_rows`) free of Inf/NaN, with a window of at
    most the float64 window (:func:`float64_window`) bits, narrow enough for the sums' type
    (``align + 1 + ceil(log2(k + 1))`` bits: int32, or integers in float64). Per column:
    ``emax`` from the largest magnitude (:func:`_emax_pass`); each term times
    ``2**(align + 127 - emax)`` in float32 (exact, or below 1 where it underflows) and
    truncated toward zero (the contract's sign-magnitude truncation); the integer sum (exact in
    any order) converted once to float32 (the one rounding, to nearest even) and scaled back by
    ``2**(emax - 127 - align)``, a normal float32 where ``emax > align``: exact, since a
    nonzero sum is at least 1, so the scaled value is normal or overflows to Inf as the
    rounded sum would. Returns -1 when some column's ``emax <= align`` (its scales would not
    be normal float32 values; nothing written), else whether a column was flagged (as
    :func:`_exact_sum_step`)."""

_window_sum_step32 = _make_window_step(np.int32)


@njit
def _trunc64(v):
    """``v`` truncated toward zero, as float64: the float64 window step's "integer type"
    (float32 -> int64 conversions do not vectorize; float32 truncation and float64 sums do, and
    every sum of the window's terms is an integer below 2**53 there)."""
    return np.float64(np.trunc(v))


_window_sum_step64 = _make_window_step(_trunc64)


def _make_window_pair(ity):
    """:func:`_window_pair32`: the window step for two rows of A at once, sums in ``ity``."""

    @njit
    def term(x, v, s):
        return ity(_bits_f32(_i32(x + v)) * s)

    def window_pair(bpre, fbn, nz, x, y, rowr, off, sh, cadd, align, acc, acc1, em, em1, emf,
                    emf1, sc, sc1, isum, isum1):
        cs = acc.size
        e_min = _emax_pair(bpre, fbn, nz, x, y, rowr, off, sh, cadd, align, acc, acc1, em, em1,
                           emf, emf1, sc, sc1, isum, isum1)
        n4 = nz - nz % 4
        n8 = nz - nz % 8
        if e_min <= align or e_min == 1:
            return -1
        for g in range(0, n8, 8):
            x0, x1, x2, x3 = x[g], x[g + 1], x[g + 2], x[g + 3]
            x4, x5, x6, x7 = x[g + 4], x[g + 5], x[g + 6], x[g + 7]
            y0, y1, y2, y3 = y[g], y[g + 1], y[g + 2], y[g + 3]
            y4, y5, y6, y7 = y[g + 4], y[g + 5], y[g + 6], y[g + 7]
            b0 = bpre[rowr[g] + off:rowr[g] + off + cs]
            b1 = bpre[rowr[g + 1] + off:rowr[g + 1] + off + cs]
            b2 = bpre[rowr[g + 2] + off:rowr[g + 2] + off + cs]
            b3 = bpre[rowr[g + 3] + off:rowr[g + 3] + off + cs]
            b4 = bpre[rowr[g + 4] + off:rowr[g + 4] + off + cs]
            b5 = bpre[rowr[g + 5] + off:rowr[g + 5] + off + cs]
            b6 = bpre[rowr[g + 6] + off:rowr[g + 6] + off + cs]
            b7 = bpre[rowr[g + 7] + off:rowr[g + 7] + off + cs]
            for j in range(cs):
                v0, v1, v2, v3 = b0[j], b1[j], b2[j], b3[j]
                v4, v5, v6, v7 = b4[j], b5[j], b6[j], b7[j]
                s0 = sc[j]
                s1 = sc1[j]
                t0 = ity(ity(term(x0, v0, s0) + term(x1, v1, s0))
                         + ity(term(x2, v2, s0) + term(x3, v3, s0)))
                t1 = ity(ity(term(x4, v4, s0) + term(x5, v5, s0))
                         + ity(term(x6, v6, s0) + term(x7, v7, s0)))
                u0 = ity(ity(term(y0, v0, s1) + term(y1, v1, s1))
                         + ity(term(y2, v2, s1) + term(y3, v3, s1)))
                u1 = ity(ity(term(y4, v4, s1) + term(y5, v5, s1))
                         + ity(term(y6, v6, s1) + term(y7, v7, s1)))
                isum[j] = ity(isum[j] + ity(t0 + t1))
                isum1[j] = ity(isum1[j] + ity(u0 + u1))
        for g in range(n8, n4, 4):
            x0, x1, x2, x3 = x[g], x[g + 1], x[g + 2], x[g + 3]
            y0, y1, y2, y3 = y[g], y[g + 1], y[g + 2], y[g + 3]
            b0 = bpre[rowr[g] + off:rowr[g] + off + cs]
            b1 = bpre[rowr[g + 1] + off:rowr[g + 1] + off + cs]
            b2 = bpre[rowr[g + 2] + off:rowr[g + 2] + off + cs]
            b3 = bpre[rowr[g + 3] + off:rowr[g + 3] + off + cs]
            for j in range(cs):
                v0, v1, v2, v3 = b0[j], b1[j], b2[j], b3[j]
                s0 = sc[j]
                s1 = sc1[j]
                t01 = ity(ity(_bits_f32(_i32(x0 + v0)) * s0)
                          + ity(_bits_f32(_i32(x1 + v1)) * s0))
                t23 = ity(ity(_bits_f32(_i32(x2 + v2)) * s0)
                          + ity(_bits_f32(_i32(x3 + v3)) * s0))
                u01 = ity(ity(_bits_f32(_i32(y0 + v0)) * s1)
                          + ity(_bits_f32(_i32(y1 + v1)) * s1))
                u23 = ity(ity(_bits_f32(_i32(y2 + v2)) * s1)
                          + ity(_bits_f32(_i32(y3 + v3)) * s1))
                isum[j] = ity(isum[j] + ity(t01 + t23))
                isum1[j] = ity(isum1[j] + ity(u01 + u23))
        for g in range(n4, nz):
            x0, y0 = x[g], y[g]
            b0 = bpre[rowr[g] + off:rowr[g] + off + cs]
            for j in range(cs):
                isum[j] = ity(isum[j] + ity(_bits_f32(_i32(x0 + b0[j])) * sc[j]))
                isum1[j] = ity(isum1[j] + ity(_bits_f32(_i32(y0 + b0[j])) * sc1[j]))
        for j in range(cs):
            acc[j] = np.float32(isum[j]) * _bits_f32(_i32(_i32(em[j] - align) << 23))
            acc1[j] = np.float32(isum1[j]) * _bits_f32(_i32(_i32(em1[j] - align) << 23))
        return np.int64(0)

    window_pair.__doc__ = _PAIR_DOC
    return njit(window_pair)


_PAIR_DOC = """:func:`_window_sum_step32` for two rows of A whose steps have the same nonzero
    rows ``rowr`` of B (A's halves ``x`` and ``y``, accumulators ``acc`` and ``acc1``): each
    load of B serves both rows' products; the same integer sums, so the same bits. Returns -1
    (nothing written) when either row's step would return -1, else 0."""

_window_pair32 = _make_window_pair(np.int32)



@njit(parallel=True, cache=True)
def lmul_fields16(fb, fbn):
    """``fbn = fb`` clamped to int16: exact on every row of B that the single-add path takes,
    for formats of at most 15 bits (a row's field sums lie in ``[2**M, 2**15)``)."""
    for i in prange(fb.size):
        fbn[i] = max(min(np.int64(fb[i]), 32767), -32768)


def fused_lmul(af, bb, fb, bpre, special, fbmin, fbmax, bias, m_len, k_len, n_len, chunk, prm,
               k, align, wf, out):
    """L-Mul product with fused accumulation; operands as :func:`lmul._kmatmul.matmul_lmul`
    (B from ``prep_lmul_b``), steps of ``k`` products, window ``align`` bits, float64 window
    ``wf`` (:func:`float64_window`), result into ``out``: B's fields as int16 where the format
    fits 15 bits (:func:`lmul_fields16`), then :func:`fused_lmul_tiles`."""
    fbn = np.empty(fb.size if prm[_P_E] + prm[_P_M] <= 15 else 0, dtype=np.int16)
    lmul_fields16(fb[:fbn.size], fbn)
    fused_lmul_tiles(af, bb, fb, bpre, special, fbmin, fbmax, bias, m_len, k_len, n_len, chunk,
                     prm, k, align, wf, fbn, out)


@njit(parallel=True, cache=True)
def fused_lmul_tiles(af, bb, fb, bpre, special, fbmin, fbmax, bias, m_len, k_len, n_len, chunk,
                     prm, k, align, wf, fbn, out):
    """The tiles of :func:`fused_lmul`. The products are the bits ``matmul_lmul`` adds, by the
    same paths. Steps of single-add rows take :func:`_exact_sum_step` (nothing truncated) or
    :func:`_window_sum_step32`/``64`` (windows up to ``wf``), the others :func:`_fused_tile`.
    Where the int32 window step applies, tiles are (pair of rows, column chunk), and a step
    whose rows are single-add with no zero product in both rows of A first tries
    :func:`_window_pair32` (both rows in each pass over B)."""
    # int32 window sums: every truncated term is below 2**(align + 1), k + 1 of them.
    narrow = align + 1 + _ceil_log2(k + 1) <= 31
    man, sh, cadd = prm[_P_M], prm[_P_SH], prm[_P_CADD]
    # Where the int32 window step applies, tiles of two rows: the steps of both share each load
    # of B. One loop serves both tile heights: each parallel loop is compiled with every step
    # inlined into it, so a loop per height would compile them all twice, for no speed.
    rows = 2
    n_chunks = (n_len + chunk - 1) // chunk
    n_tiles = (m_len + rows - 1) // rows * n_chunks
    n_blocks = min(n_tiles, _BLOCKS)
    for blk in prange(n_blocks):
        # Scratch once per block of tiles, not per tile: allocations cost as much as a step.
        pb, em, sc, s64, lost, tb, limbs = _scratch(chunk, k)
        a32r = np.empty(k, dtype=np.int32)
        rowr = np.empty(k, dtype=np.int64)
        rlo = np.empty(k, dtype=np.int64)
        rhi = np.empty(k, dtype=np.int64)
        b32r = np.empty(k, dtype=np.int32)
        rowr1 = np.empty(k, dtype=np.int64)
        rlo1 = np.empty(k, dtype=np.int64)
        rhi1 = np.empty(k, dtype=np.int64)
        grp = np.empty(7 * k, dtype=np.int64)
        sc32 = np.empty(chunk, dtype=np.float32)
        sc32b = np.empty(chunk, dtype=np.float32)
        em1 = np.empty(chunk, dtype=np.int32)
        isum = np.empty(chunk, dtype=np.int32)
        isum1 = np.empty(chunk, dtype=np.int32)
        isum64 = np.empty(chunk, dtype=np.float64)
        emf = np.empty(chunk, dtype=np.int16)
        emf1 = np.empty(chunk, dtype=np.int16)
        kind0 = np.empty(k_len, dtype=np.int64)
        ax0 = np.empty(k_len, dtype=np.int32)
        ahi0 = np.empty(k_len, dtype=np.int64)
        alo0 = np.empty(k_len, dtype=np.int64)
        kind1 = np.empty(k_len, dtype=np.int64)
        ax1 = np.empty(k_len, dtype=np.int32)
        ahi1 = np.empty(k_len, dtype=np.int64)
        alo1 = np.empty(k_len, dtype=np.int64)
        for tile in range(blk * n_tiles // n_blocks, (blk + 1) * n_tiles // n_blocks):
            m0 = rows * (tile // n_chunks)
            two = m0 + 1 < m_len
            n0 = (tile % n_chunks) * chunk
            n1 = min(n0 + chunk, n_len)
            cs = n1 - n0
            acc = out[m0 * n_len + n0:m0 * n_len + n1]
            acc[:] = bias[n0:n1]
            m1 = m0 + 1 if two else m0
            acc1 = out[m1 * n_len + n0:m1 * n_len + n1]
            if two:
                acc1[:] = bias[n0:n1]
            _tile_a(af, fbmin, fbmax, special, m0, k_len, prm, kind0, ax0, ahi0, alo0)
            if two:
                _tile_a(af, fbmin, fbmax, special, m1, k_len, prm, kind1, ax1, ahi1, alo1)
            for c0 in range(0, k_len, k):
                nk = min(k, k_len - c0)
                have_bounds = False  # the accumulators' bounds of this step, once known
                ah0 = al0 = ah1 = al1 = np.int64(0)
                if two:
                    ok, nz, p_hi, p_low = _step_rows(kind0, ax0, ahi0, alo0, c0, nk, n_len, n0,
                                                     man, a32r, rowr, rlo, rhi)
                    ok1, nz1, p_hi1, p_low1 = _step_rows(kind1, ax1, ahi1, alo1, c0, nk, n_len,
                                                         n0, man, b32r, rowr1, rlo1, rhi1)
                    # No zero product in either row: both use every row of B, rowr == rowr1.
                    if ok and ok1 and nz == nk and nz1 == nk:
                        if narrow:
                            # The window step is exact wherever it applies, so it needs no
                            # route decision (the exact step, where the bounds allow it, gives
                            # the same bits); an Inf/NaN accumulator makes it decline (-1).
                            st = _window_pair32(bpre, fbn, nz, a32r, b32r, rowr, 0, sh, cadd,
                                                align, acc, acc1, em, em1, emf, emf1, sc32,
                                                sc32b, isum, isum1)
                            if st == 0:
                                continue
                        else:
                            ah0, al0 = _acc_bounds(acc)
                            ah1, al1 = _acc_bounds(acc1)
                            have_bounds = True
                            e_hi = max(max(p_hi, ah0), max(p_hi1, ah1))
                            low = min(min(p_low, al0), min(p_low1, al1))
                            if e_hi - low <= wf and e_hi < 255:
                                for i in range(nz):
                                    rlo[i] = min(rlo[i], rlo1[i])
                                    rhi[i] = max(rhi[i], rhi1[i])
                                _exact_sum_pair(bpre, nz, a32r, b32r, rowr, 0, man, rlo, rhi,
                                                acc, acc1, s64, isum64, grp)
                                continue
                for r in range(1 if two else 0, -1, -1):
                    mr = m0 + r
                    accr = acc1 if r == 1 else acc  # row mr, sliced once per tile
                    if r == 1:
                        ok, nz, p_hi, p_low = _step_rows(kind1, ax1, ahi1, alo1, c0, nk, n_len,
                                                         n0, man, a32r, rowr, rlo, rhi)
                    else:
                        ok, nz, p_hi, p_low = _step_rows(kind0, ax0, ahi0, alo0, c0, nk, n_len,
                                                         n0, man, a32r, rowr, rlo, rhi)
                    state = -1  # -1: general path; 0: done; 1: done but for zero results
                    if ok:
                        if have_bounds:
                            a_hi, a_low = (ah1, al1) if r == 1 else (ah0, al0)
                        else:
                            a_hi, a_low = _acc_bounds(accr)
                        e_hi = max(p_hi, a_hi)
                        if e_hi - min(p_low, a_low) <= wf and e_hi < 255:
                            state = np.int64(_exact_sum_step(bpre, nz, a32r, rowr, 0, man, rlo,
                                                             rhi, accr, s64, lost, grp))
                        elif narrow and e_hi < 255:
                            state = _window_sum_step32(bpre, fbn, nz, a32r, rowr, 0, sh, cadd,
                                                       align, accr, em, emf, sc32, isum, lost)
                        elif align <= wf and e_hi < 255:
                            state = _window_sum_step64(bpre, fbn, nz, a32r, rowr, 0, sh, cadd,
                                                       align, accr, em, emf, sc32, isum64, lost)
                    if state == 0:
                        continue
                    _lmul_products(af, bb, fb, bpre, special, fbmin, fbmax, mr, k_len, n_len, n0,
                                   n1, c0, nk, prm, pb)
                    if state == 1:
                        _redo_columns(accr, pb, nk, k, cs, align, lost, tb, limbs)
                    else:
                        _fused_tile(accr, pb, nk, k, cs, align, wf, em, sc, s64, lost, tb, limbs)
            _canonical_nans(acc)
            if two:
                _canonical_nans(acc1)


@njit(parallel=True, cache=True)
def fused_exact(af, vb, minabs, bias, m_len, k_len, n_len, chunk, prm, k, align, wf, out):
    """Exact-multiplier product with fused accumulation; operands as
    :func:`lmul._kmatmul.matmul_exact` (B from ``prep_exact_b``), the products by its paths."""
    ebits, man = prm[_P_E], prm[_P_M]
    e32, m32, rne32 = _i32(ebits), _i32(man), _i32(prm[_P_RNE])
    emin, emin64, inf64 = _i32(prm[_P_EMIN]), prm[_P_EMIN], prm[_P_INF]
    inf_bits, field_mask = _i32(inf64), _i32(prm[_P_FIELD])
    sign_bit, qnan, cadd = _i32(prm[_P_SIGN]), _i32(prm[_P_QNAN]), _i32(prm[_P_CADD])
    sub_scale = _bits_f32(prm[_P_SUB])
    maxfin = _i32(prm[_P_MAXFIN])
    sh, rnd, keep = _i32(prm[_P_SH]), _i32(prm[_P_RND]), _i32(prm[_P_KEEP])
    tiny = 2.0 ** -126
    n_chunks = (n_len + chunk - 1) // chunk
    n_tiles = m_len * n_chunks
    n_blocks = min(n_tiles, _BLOCKS)
    for blk in prange(n_blocks):
        # Scratch once per block of tiles, not per tile: allocations cost as much as a step.
        pb, em, sc, s64, lost, tb, limbs = _scratch(chunk, k)
        for tile in range(blk * n_tiles // n_blocks, (blk + 1) * n_tiles // n_blocks):
            m = tile // n_chunks
            n0 = (tile % n_chunks) * chunk
            n1 = min(n0 + chunk, n_len)
            cs = n1 - n0
            acc = out[m * n_len + n0:m * n_len + n1]
            acc[:] = bias[n0:n1]
            for c0 in range(0, k_len, k):
                nk = min(k, k_len - c0)
                for kk in range(nk):
                    kr = c0 + kk
                    p = pb[kk * cs:(kk + 1) * cs]
                    a = _round32(_f32_bits(af[m * k_len + kr]), m32, emin, rne32, inf_bits,
                                 maxfin, sign_bit, qnan)
                    x = _bits_f32(_widen32(a, e32, m32, inf_bits, field_mask, cadd, sub_scale))
                    row = kr * n_len
                    vbr = vb[row + n0:row + n1]
                    if man <= 11 and ebits == 8:
                        if x == 0 or abs(np.float64(x)) * np.float64(minabs[kr]) >= tiny:
                            for j in range(cs):
                                p[j] = _rne_e8(_f32_bits(x * vbr[j]), rnd, sh, keep)
                        else:
                            for j in range(cs):
                                u = _f32_bits(x * vbr[j])
                                if _i32(u & _F32_INF) == 0 and vbr[j] != 0:
                                    p[j] = _i32(_exact64(x, vbr[j], ebits, man, emin64, inf64,
                                                         field_mask, cadd, sub_scale))
                                else:
                                    p[j] = _rne_e8(u, rnd, sh, keep)
                    elif man <= 11:
                        for j in range(cs):
                            r = _round32(_f32_bits(x * vbr[j]), m32, emin, _i32(1), inf_bits,
                                         maxfin, sign_bit, qnan)
                            p[j] = _i32(_widen32(r, e32, m32, inf_bits, field_mask, cadd,
                                                 sub_scale))
                    else:
                        for j in range(cs):
                            p[j] = _i32(_exact64(x, vbr[j], ebits, man, emin64, inf64, field_mask,
                                                 cadd, sub_scale))
                _fused_tile(acc, pb, nk, k, cs, align, wf, em, sc, s64, lost, tb, limbs)
            _canonical_nans(acc)


@njit(parallel=True, cache=True)
def fused_seed(af, hb, bpre, fbmin, fbmax, bias, m_len, k_len, n_len, chunk, k, align, wf, out):
    """Seed-multiplier product with fused accumulation; operands as
    :func:`lmul._kmatmul.matmul_seed` (B from ``prep_seed_b``), the products by its paths."""
    c5 = np.float32(0.03125)
    c6 = np.float32(0.015625)
    n_chunks = (n_len + chunk - 1) // chunk
    n_tiles = m_len * n_chunks
    n_blocks = min(n_tiles, _BLOCKS)
    for blk in prange(n_blocks):
        # Scratch once per block of tiles, not per tile: allocations cost as much as a step.
        pb, em, sc, s64, lost, tb, limbs = _scratch(chunk, k)
        for tile in range(blk * n_tiles // n_blocks, (blk + 1) * n_tiles // n_blocks):
            m = tile // n_chunks
            n0 = (tile % n_chunks) * chunk
            n1 = min(n0 + chunk, n_len)
            cs = n1 - n0
            acc = out[m * n_len + n0:m * n_len + n1]
            acc[:] = bias[n0:n1]
            for c0 in range(0, k_len, k):
                nk = min(k, k_len - c0)
                for kk in range(nk):
                    kr = c0 + kk
                    p = pb[kk * cs:(kk + 1) * cs]
                    h = np.int64(_f32_bits(af[m * k_len + kr]) >> 16) & 0xFFFF
                    fa = h & 0x7FFF
                    sa = h & 0x8000
                    row = kr * n_len
                    if (fa >> 7) == 0:
                        for j in range(cs):
                            p[j] = _i32(0)  # flushed a: every product is +0.0
                    elif fa + fbmin[kr] + 0x4080 > 0x8000 and fa + fbmax[kr] + 0x4080 < 0x10000:
                        a32 = _i32(((sa << 16) + (fa << 16)) & 0xFFFFFFFF)
                        bpr = bpre[row + n0:row + n1]
                        for j in range(cs):
                            r = _bits_f32(_i32(a32 + bpr[j]))
                            p[j] = _f32_bits((r + r * c5) + r * c6)
                    else:
                        fa4 = _i32(fa + 0x4080)
                        sa32 = _i32(sa)
                        hbr = hb[row + n0:row + n1]
                        for j in range(cs):
                            fbj = _i32(hbr[j] & 0x7FFF)
                            total = _i32(fa4 + fbj)
                            if (fbj >> 7) == 0:
                                total = _i32(0)
                            fld = _i32(total & 0x7FFF)
                            if total < 0x8000:
                                fld = _i32(0)
                            if total >= 0x10000:
                                fld = _i32(0x7FFF)
                            sign = _i32(sa32 ^ _i32(hbr[j] & 0x8000))
                            if fld == 0:
                                sign = _i32(0)
                            r = _bits_f32(_i32(_i32(sign | fld) << 16))
                            p[j] = _f32_bits((r + r * c5) + r * c6)
                _fused_tile(acc, pb, nk, k, cs, align, wf, em, sc, s64, lost, tb, limbs)
            _canonical_nans(acc)


@njit(cache=True)
def fused_step_bits(terms, t_len, align):
    """:func:`_fused_step_scalar` on each row of ``terms`` (int64 [rows, t_len]): the scalar
    step, for tests. Returns int64 [rows]."""
    rows = terms.shape[0]
    out = np.empty(rows, dtype=np.int64)
    limbs = np.zeros(_LIMBS, dtype=np.int64)
    for i in range(rows):
        out[i] = _fused_step_scalar(terms[i], t_len, align, limbs)
    return out


#: Every kernel of this module (the cache-stamp test walks them).
KERNELS = (lmul_fields16, fused_lmul_tiles, fused_exact, fused_seed, fused_step_bits)
stamp_helper_sources(*KERNELS)
