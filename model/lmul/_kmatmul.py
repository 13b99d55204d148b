"""Numba matrix-product kernels behind :func:`lmul.matmul`: B's preparation, the wide products
(tiled over rows and column chunks, vectorized across output columns) and the narrow products
(few output columns, vectorized across rows); the bits of :func:`lmul.matmul_reference`.

Nothing here is public API; :mod:`lmul._matmul` validates arguments and calls these. The
representation, the packed constants ``prm`` and the no-fastmath rule are :mod:`lmul._kparams`'.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._kintrinsics import _F32_INF, _INT32_MIN, _bits_f32, _f32_bits, _i32, _sra
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

# A B-operand field that makes every L-Mul field sum underflow (zero/subnormal operands).
_LMUL_FLUSH = -(1 << 31)
# A field that makes every seed-multiplier field sum land in its "underflow" class.
_SEED_FLUSH = -(1 << 16)


# ----------------------------------------------------------------------------------------------
# Preparation of B (once per call, O(K*N), one parallel launch). A is rounded inside the product
# kernels, once per (m, k), so a call costs two launches.
# ----------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True)
def prep_lmul_b(bf, k_len, n_len, prm, bb, fb, bpre, special, fbmin, fbmax):
    """Round B (flat float32 [K*N]) to the format and split it for the L-Mul loops.

    Fills ``bb`` (format bits), ``fb = field - (bias << M) + offset`` for normal values and
    ``-2**31`` for zeros/subnormals (every sum then underflows: the flush);
    ``bpre = (sign << 31) + ((fb + ((127 - bias) << M)) << (23 - M))`` (mod 2**32), B's half of
    the single-add path (see :func:`matmul_lmul`); ``special[k] = 1`` where row k holds an Inf
    or NaN; ``fbmin[k]``/``fbmax[k]`` the extremes of row k's ``fb``. ``fb``, ``bpre`` and the
    extremes are meaningful for E + M <= 29 (the only case they are used). The loops are int32,
    branch-free and touch few arrays each, so they vectorize.
    """
    e32, m32, rne32 = _i32(prm[_P_E]), _i32(prm[_P_M]), _i32(prm[_P_RNE])
    emin, emaxf = _i32(prm[_P_EMIN]), _i32(prm[_P_EMAXF])
    inf_bits, maxfin = _i32(prm[_P_INF]), _i32(prm[_P_MAXFIN])
    sign_bit, qnan = _i32(prm[_P_SIGN]), _i32(prm[_P_QNAN])
    field_mask, cadd, sh = _i32(prm[_P_FIELD]), _i32(prm[_P_CADD]), _i32(prm[_P_SH])
    # Unlike _P_K0 this is needed (and fits int32) for every format: fb is written for all.
    kb = _i32(prm[_P_OFFSET] - (prm[_P_BIAS] << prm[_P_M]))
    for k in prange(k_len):
        row = k * n_len
        bfr = bf[row:row + n_len]
        bbr = bb[row:row + n_len]
        for n in range(n_len):
            bbr[n] = _round32(_f32_bits(bfr[n]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
        fbr = fb[row:row + n_len]
        bpr = bpre[row:row + n_len]
        flag = _i32(0)
        lo = _i32(0x7FFFFFFF)
        hi = _i32(_INT32_MIN)
        for n in range(n_len):
            b = bbr[n]
            e = _i32(_sra(b, m32) & emaxf)
            f = _i32(_i32(b & field_mask) + kb)
            if e == 0:
                f = _i32(_LMUL_FLUSH)
            fbr[n] = f
            bpr[n] = _i32(_i32(_i32(_sra(b, e32 + m32) & 1) << 31) + _i32(_i32(f + cadd) << sh))
            lo = min(lo, f)
            hi = max(hi, f)
            flag |= _i32(e == emaxf)
        special[k] = flag
        fbmin[k] = lo
        fbmax[k] = hi


@njit(parallel=True, cache=True)
def prep_exact_b(bf, k_len, n_len, prm, vb, minabs):
    """Round B (flat float32 [K*N]) to the format and widen it back: ``vb`` = B's format values.

    ``minabs[k]`` = smallest nonzero ``|vb|`` of row k (Inf when the row has none), which lets
    :func:`matmul_exact` prove that no product of a row falls below 2**-126. The minimum runs on
    the magnitudes' bits (integer order = value order for non-negative floats), which
    vectorizes where a float minimum would not.
    """
    e32, m32, rne32 = _i32(prm[_P_E]), _i32(prm[_P_M]), _i32(prm[_P_RNE])
    emin = _i32(prm[_P_EMIN])
    inf_bits, maxfin = _i32(prm[_P_INF]), _i32(prm[_P_MAXFIN])
    sign_bit, qnan = _i32(prm[_P_SIGN]), _i32(prm[_P_QNAN])
    field_mask, cadd = _i32(prm[_P_FIELD]), _i32(prm[_P_CADD])
    sub_scale = _bits_f32(prm[_P_SUB])
    for k in prange(k_len):
        row = k * n_len
        bfr = bf[row:row + n_len]
        vbr = vb[row:row + n_len]
        cur = _i32(_F32_INF)
        for n in range(n_len):
            b = _round32(_f32_bits(bfr[n]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            v = _widen32(b, e32, m32, inf_bits, field_mask, cadd, sub_scale)
            vbr[n] = _bits_f32(v)
            mag = _i32(v & 0x7FFFFFFF)
            if mag == 0 or mag > _F32_INF:
                mag = _i32(_F32_INF)
            cur = min(cur, mag)
        minabs[k] = _bits_f32(cur)


@njit(parallel=True, cache=True)
def prep_seed_b(bf, k_len, n_len, hb, bpre, fbmin, fbmax):
    """B (flat float32 [K*N]) split for the seed multiplier's loops.

    ``hb``: the top 16 bits (the BF16 truncation); ``bpre = (sign << 31) + ((f + 0x4080 -
    0x8000) << 16)`` (mod 2**32) with ``f`` the exponent|mantissa field, B's half of the
    single-add path (see :func:`matmul_seed`); ``fbmin[k]``/``fbmax[k]`` row k's extremes of
    ``f``, where a zero exponent field counts as ``-2**16`` (its products are +0.0, so such a row
    never takes the single-add path).
    """
    for k in prange(k_len):
        row = k * n_len
        bfr = bf[row:row + n_len]
        hbr = hb[row:row + n_len]
        bpr = bpre[row:row + n_len]
        lo = _i32(0x7FFFFFFF)
        hi = _i32(_INT32_MIN)
        for n in range(n_len):
            h = _i32(_i32(_f32_bits(bfr[n]) >> 16) & 0xFFFF)
            f = _i32(h & 0x7FFF)
            if (f >> 7) == 0:
                f = _i32(_SEED_FLUSH)
            hbr[n] = h
            bpr[n] = _i32(_i32(_i32(h & 0x8000) << 16) + _i32(_i32(f + (0x4080 - 0x8000)) << 16))
            lo = min(lo, f)
            hi = max(hi, f)
        fbmin[k] = lo
        fbmax[k] = hi


# ----------------------------------------------------------------------------------------------
# Matrix products: out[m, n] = bias[n] + sum_k p(A[m, k], B[k, n]), k in order, binary32 adds.
# Work is split into tiles (row m, column chunk); each tile accumulates in its slice of out and
# finally replaces NaNs by the canonical 0x7FC00000.
# ----------------------------------------------------------------------------------------------


#: k terms one pass of the wide L-Mul product adds into each output (blocks where every product
#: is a single add); each output still receives its terms in k order.
_K_GROUP = 8
#: Most rows of A one wide L-Mul tile covers (B's rows of a k group are reused across them).
_ROW_BLOCK = 8


@njit
def _single_add_ok(ea, fz, fmn, fmx, special_k, fast32, lo, hi, emaxf32):
    """1 (int32) where every product of an A element with row k of B is one integer add.

    ``ea``: the A element's exponent field; ``fz``: its field (for a zero/subnormal element the
    stand-in field :func:`matmul_lmul` chose); ``fmn``/``fmx``: row k's ``fbmin``/``fbmax``;
    ``special_k``: row k holds an Inf/NaN. Holds when the format takes the int32 loops, neither
    operand is Inf/NaN, B's row has no zero/subnormal (``fmn`` is then ``-2**31``) and every
    field sum ``fz + fb`` lies in ``[lo, hi)``: no under- or overflow, so the product is a
    normal binary32 (:func:`matmul_lmul`). Branch-free int32 (it sits in a vectorized loop).
    """
    return _i32(fast32 & _i32(special_k == 0) & _i32(ea != emaxf32)
                & _i32(_i32(fz + fmn) >= lo) & _i32(_i32(fz + fmx) < hi))


@njit(parallel=True, cache=True)
def matmul_lmul(af, bb, fb, bpre, special, fbmin, fbmax, bias, m_len, k_len, n_len,
                chunk, prm, out):
    """L-Mul matrix product of A (flat float32 [M*K]) and B prepared by :func:`prep_lmul_b`.

    Tiles are (block of up to ``_ROW_BLOCK`` rows, column chunk). Per tile, each A element is
    rounded to the format once, and :func:`_single_add_ok` decides from B's per-row exponent
    ranges (``fbmin``/``fbmax``, ``special``) whether all its products with row k of B are
    single adds. Then, per k group of ``_K_GROUP`` and row:

    * every element of the group single-add (the common case, decided once per block, never
      per product): each output adds the group's products in k order in a register, each
      product's float32 bits being ``(sa << 31) + (fa << (23 - M)) + bpre`` mod 2**32: the
      magnitude ``(t + ((127 - bias) << M)) << (23 - M)`` of a normal L-Mul result is below
      2**31, so the two sign bits add into bit 31 as their XOR. A zero/subnormal A element
      takes a stand-in field keeping the row's sums in range and its (finite) product is
      multiplied by 0.0: the signed zero ``sa ^ sb`` of the L-Mul spec.
    * otherwise, per k, the exact paths: the single add; the int32 path where some products of
      the row may under/overflow or B is zero/subnormal (``t = field(a) + fb``; ``t < 2**M``
      underflows, ``t >= (2**E - 1) << M`` overflows); signed zeros for a zero/subnormal A
      element; the full spec per product for Inf/NaN (:func:`_lmul32`, int32, when E + M <=
      29, else :func:`_lmul64`).

    Every output gets ``bias`` then its K products in k order by binary32 adds, whichever path.
    """
    ebits, man, bias_e = prm[_P_E], prm[_P_M], prm[_P_BIAS]
    offset, sat = prm[_P_OFFSET], prm[_P_SAT]
    emaxf, inf_bits, field_mask = prm[_P_EMAXF], prm[_P_INF], prm[_P_FIELD]
    fast = prm[_P_FAST] != 0
    fast32 = _i32(1) if fast else _i32(0)
    cadd, sh = _i32(prm[_P_CADD]), _i32(prm[_P_SH])
    lo, hi, ovf = _i32(prm[_P_LO]), _i32(inf_bits), _i32(prm[_P_OVF])
    inf32, maxfin, field32 = _i32(inf_bits), _i32(prm[_P_MAXFIN]), _i32(field_mask)
    sub_scale = _bits_f32(prm[_P_SUB])
    e32, m32, emaxf32, rne32 = _i32(ebits), _i32(man), _i32(emaxf), _i32(prm[_P_RNE])
    emin, sign_bit, qnan = _i32(prm[_P_EMIN]), _i32(prm[_P_SIGN]), _i32(prm[_P_QNAN])
    k0 = _i32(prm[_P_K0])
    sbit = _i32(ebits + man)  # position of the sign bit in format bits
    n_chunks = (n_len + chunk - 1) // chunk
    # Row blocks only while they leave enough tiles to share among threads.
    rb = max(1, min(_ROW_BLOCK, (m_len * n_chunks) // 32))
    n_blocks = (m_len + rb - 1) // rb
    for tile in prange(n_blocks * n_chunks):
        m0 = (tile // n_chunks) * rb
        m1 = min(m0 + rb, m_len)
        n0 = (tile % n_chunks) * chunk
        n1 = min(n0 + chunk, n_len)
        w = n1 - n0
        # The tile's A elements, once each (small per-tile arrays: numba's allocator would
        # page-fault on large ones): format bits ab, single-add term ax, scale asc (1.0, or 0.0
        # for a zero/subnormal element), decision aok.
        nr = m1 - m0
        ab = np.empty(nr * k_len, dtype=np.int32)
        ax = np.empty(nr * k_len, dtype=np.int32)
        asc = np.empty(nr * k_len, dtype=np.float32)
        aok = np.empty(nr * k_len, dtype=np.int32)
        gok = np.empty(nr, dtype=np.int64)  # per row: the k group is all single-add
        gz = np.empty(nr, dtype=np.int64)  # per row: the k group holds a zero/subnormal
        for r in range(nr):
            # int32 and branch-free, so it vectorizes over k.
            for k in range(k_len):
                i = r * k_len + k
                a_i = _round32(_f32_bits(af[(m0 + r) * k_len + k]), m32, emin, rne32, inf32,
                               maxfin, sign_bit, qnan)
                ab[i] = a_i
                ea = _i32(_sra(a_i, m32) & emaxf32)
                fmn = fbmin[k]
                fz = _i32(a_i & field32)
                if ea == 0:
                    # The smallest stand-in field whose sums with row k reach lo; fbmin is
                    # -2**31 on rows with zeros (never single-add), clamped so this cannot wrap.
                    fz = _i32(lo - max(fmn, _i32(-(1 << 30))))
                ok = _single_add_ok(ea, fz, fmn, fbmax[k], special[k], fast32, lo, hi, emaxf32)
                sa = _i32(_i32(_sra(a_i, sbit) & 1) << 31)
                ax[i] = _i32(_i32(sa + _i32(fz << sh)) * ok)
                asc[i] = np.float32(0.0) if ea == 0 else np.float32(1.0)
                aok[i] = ok
        for m in range(m0, m1):
            out[m * n_len + n0:m * n_len + n1] = bias[n0:n1]
        for kg in range(0, k_len, _K_GROUP):
            kn = min(_K_GROUP, k_len - kg)
            for r in range(nr):
                i0 = r * k_len + kg
                allok = np.int64(kn == _K_GROUP)
                anyzero = np.int64(0)
                for u in range(kn):
                    allok &= aok[i0 + u]
                    anyzero |= np.int64(asc[i0 + u] == 0)
                gok[r] = allok
                gz[r] = anyzero
            r = 0
            while r < nr:
                o0 = (m0 + r) * n_len + n0
                acc = out[o0:o0 + w]
                i0 = r * k_len + kg
                anyzero = gz[r] != 0
                if r + 1 < nr and gok[r] != 0 and gok[r + 1] != 0 and gz[r] + gz[r + 1] == 0:
                    # Two rows per pass: each of B's loads serves two products.
                    i1 = i0 + k_len
                    x0, x1, x2, x3 = ax[i0], ax[i0 + 1], ax[i0 + 2], ax[i0 + 3]
                    x4, x5, x6, x7 = ax[i0 + 4], ax[i0 + 5], ax[i0 + 6], ax[i0 + 7]
                    y0, y1, y2, y3 = ax[i1], ax[i1 + 1], ax[i1 + 2], ax[i1 + 3]
                    y4, y5, y6, y7 = ax[i1 + 4], ax[i1 + 5], ax[i1 + 6], ax[i1 + 7]
                    r0 = kg * n_len + n0
                    b0 = bpre[r0:r0 + w]
                    b1 = bpre[r0 + n_len:r0 + n_len + w]
                    b2 = bpre[r0 + 2 * n_len:r0 + 2 * n_len + w]
                    b3 = bpre[r0 + 3 * n_len:r0 + 3 * n_len + w]
                    b4 = bpre[r0 + 4 * n_len:r0 + 4 * n_len + w]
                    b5 = bpre[r0 + 5 * n_len:r0 + 5 * n_len + w]
                    b6 = bpre[r0 + 6 * n_len:r0 + 6 * n_len + w]
                    b7 = bpre[r0 + 7 * n_len:r0 + 7 * n_len + w]
                    acc1 = out[o0 + n_len:o0 + n_len + w]
                    for j in range(w):
                        c0, c1, c2, c3 = b0[j], b1[j], b2[j], b3[j]
                        c4, c5, c6, c7 = b4[j], b5[j], b6[j], b7[j]
                        t = acc[j]
                        t += _bits_f32(_i32(x0 + c0))
                        t += _bits_f32(_i32(x1 + c1))
                        t += _bits_f32(_i32(x2 + c2))
                        t += _bits_f32(_i32(x3 + c3))
                        t += _bits_f32(_i32(x4 + c4))
                        t += _bits_f32(_i32(x5 + c5))
                        t += _bits_f32(_i32(x6 + c6))
                        t += _bits_f32(_i32(x7 + c7))
                        acc[j] = t
                        v = acc1[j]
                        v += _bits_f32(_i32(y0 + c0))
                        v += _bits_f32(_i32(y1 + c1))
                        v += _bits_f32(_i32(y2 + c2))
                        v += _bits_f32(_i32(y3 + c3))
                        v += _bits_f32(_i32(y4 + c4))
                        v += _bits_f32(_i32(y5 + c5))
                        v += _bits_f32(_i32(y6 + c6))
                        v += _bits_f32(_i32(y7 + c7))
                        acc1[j] = v
                    r += 2
                    continue
                if gok[r] != 0:
                    x0, x1, x2, x3 = ax[i0], ax[i0 + 1], ax[i0 + 2], ax[i0 + 3]
                    x4, x5, x6, x7 = ax[i0 + 4], ax[i0 + 5], ax[i0 + 6], ax[i0 + 7]
                    r0 = kg * n_len + n0
                    b0 = bpre[r0:r0 + w]
                    b1 = bpre[r0 + n_len:r0 + n_len + w]
                    b2 = bpre[r0 + 2 * n_len:r0 + 2 * n_len + w]
                    b3 = bpre[r0 + 3 * n_len:r0 + 3 * n_len + w]
                    b4 = bpre[r0 + 4 * n_len:r0 + 4 * n_len + w]
                    b5 = bpre[r0 + 5 * n_len:r0 + 5 * n_len + w]
                    b6 = bpre[r0 + 6 * n_len:r0 + 6 * n_len + w]
                    b7 = bpre[r0 + 7 * n_len:r0 + 7 * n_len + w]
                    if not anyzero:
                        for j in range(w):
                            t = acc[j]
                            t += _bits_f32(_i32(x0 + b0[j]))
                            t += _bits_f32(_i32(x1 + b1[j]))
                            t += _bits_f32(_i32(x2 + b2[j]))
                            t += _bits_f32(_i32(x3 + b3[j]))
                            t += _bits_f32(_i32(x4 + b4[j]))
                            t += _bits_f32(_i32(x5 + b5[j]))
                            t += _bits_f32(_i32(x6 + b6[j]))
                            t += _bits_f32(_i32(x7 + b7[j]))
                            acc[j] = t
                    else:
                        s0, s1, s2, s3 = asc[i0], asc[i0 + 1], asc[i0 + 2], asc[i0 + 3]
                        s4, s5, s6, s7 = asc[i0 + 4], asc[i0 + 5], asc[i0 + 6], asc[i0 + 7]
                        for j in range(w):
                            t = acc[j]
                            t += _bits_f32(_i32(x0 + b0[j])) * s0
                            t += _bits_f32(_i32(x1 + b1[j])) * s1
                            t += _bits_f32(_i32(x2 + b2[j])) * s2
                            t += _bits_f32(_i32(x3 + b3[j])) * s3
                            t += _bits_f32(_i32(x4 + b4[j])) * s4
                            t += _bits_f32(_i32(x5 + b5[j])) * s5
                            t += _bits_f32(_i32(x6 + b6[j])) * s6
                            t += _bits_f32(_i32(x7 + b7[j])) * s7
                            acc[j] = t
                    r += 1
                    continue
                for k in range(kg, kg + kn):
                    i = r * k_len + k
                    row = k * n_len + n0
                    bpr = bpre[row:row + w]
                    fbr = fb[row:row + w]
                    bbr = bb[row:row + w]
                    a_i = ab[i]
                    a = np.int64(a_i)
                    ea = (a >> man) & emaxf
                    sa = _i32(_INT32_MIN) if ((a >> (ebits + man)) & 1) != 0 else _i32(0)
                    if aok[i] != 0:
                        a32 = ax[i]
                        if asc[i] != 0:
                            for j in range(w):
                                acc[j] += _bits_f32(_i32(a32 + bpr[j]))
                        else:
                            for j in range(w):
                                acc[j] += _bits_f32(_i32(a32 + bpr[j])) * np.float32(0.0)
                    elif fast and special[k] == 0 and ea != 0 and ea != emaxf:
                        fa = _i32(a & field_mask)
                        for j in range(w):
                            t = _i32(fa + fbr[j])
                            rr = _i32(_i32(t + cadd) << sh)
                            if t < lo:
                                rr = _i32(0)
                            if t >= hi:
                                rr = ovf
                            sgn = _i32(_sra(bbr[j], sbit) << 31)
                            acc[j] += _bits_f32(_i32(rr | _i32(sa ^ sgn)))
                    elif special[k] == 0 and ea == 0:
                        # Zero/subnormal a times finite b: a zero of sign sa^sb (it can flip a
                        # -0 sum).
                        for j in range(w):
                            acc[j] += _bits_f32(_i32(sa ^ _i32(_sra(bbr[j], sbit) << 31)))
                    elif fast:
                        for j in range(w):
                            acc[j] += _bits_f32(_lmul32(a_i, bbr[j], e32, m32, emaxf32, k0, cadd,
                                                        lo, hi, ovf))
                    else:
                        for j in range(w):
                            rr = _lmul64(a, np.int64(bbr[j]), ebits, man, bias_e, offset, sat,
                                         prm[_P_FIN])
                            acc[j] += _bits_f32(_widen32(rr, e32, m32, inf32, field32, cadd,
                                                         sub_scale))
                r += 1
        for m in range(m0, m1):
            _canonical_nans(out[m * n_len + n0:m * n_len + n1])


@njit(parallel=True, cache=True)
def matmul_exact(af, vb, minabs, bias, m_len, k_len, n_len, chunk, prm, out):
    """Exact-multiplier product of A (flat float32 [M*K]) and B prepared by :func:`prep_exact_b`.

    Each product is the exact product of the format values rounded RNE to the format. For
    M <= 11 the float32 product of two format values is exact whenever it is a normal float32
    (<= 24 significant bits), so it is rounded from its float32 bits with integer operations
    (E = 8: :func:`_rne_e8`; E < 8: :func:`_round32`). With E = 8 a nonzero product below
    2**-126 may have been rounded by the float32 multiply already; ``minabs`` proves per (m, k)
    that no product of the row gets there, and rows where it cannot take a loop that redoes such
    products from float64. (With E < 8, every product below 2**-126 rounds to a signed zero
    either way.) For M > 11 every product goes through float64.
    """
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
    for tile in prange(m_len * n_chunks):
        m = tile // n_chunks
        n0 = (tile % n_chunks) * chunk
        n1 = min(n0 + chunk, n_len)
        acc = out[m * n_len + n0:m * n_len + n1]
        acc[:] = bias[n0:n1]
        for k in range(k_len):
            a = _round32(_f32_bits(af[m * k_len + k]), m32, emin, rne32, inf_bits,
                         maxfin, sign_bit, qnan)
            x = _bits_f32(_widen32(a, e32, m32, inf_bits, field_mask, cadd, sub_scale))
            row = k * n_len
            vbr = vb[row + n0:row + n1]
            if man <= 11 and ebits == 8:
                if x == 0 or abs(np.float64(x)) * np.float64(minabs[k]) >= tiny:
                    for j in range(acc.size):
                        acc[j] += _bits_f32(_rne_e8(_f32_bits(x * vbr[j]), rnd, sh, keep))
                else:
                    for j in range(acc.size):
                        u = _f32_bits(x * vbr[j])
                        if _i32(u & _F32_INF) == 0 and vbr[j] != 0:
                            acc[j] += _bits_f32(_exact64(x, vbr[j], ebits, man, emin64,
                                                         inf64, field_mask,
                                                         cadd, sub_scale))
                        else:
                            acc[j] += _bits_f32(_rne_e8(u, rnd, sh, keep))
            elif man <= 11:
                for j in range(acc.size):
                    r = _round32(_f32_bits(x * vbr[j]), m32, emin, _i32(1), inf_bits,
                                 maxfin, sign_bit, qnan)
                    acc[j] += _bits_f32(_widen32(r, e32, m32, inf_bits, field_mask, cadd,
                                                 sub_scale))
            else:
                for j in range(acc.size):
                    acc[j] += _bits_f32(_exact64(x, vbr[j], ebits, man, emin64,
                                                 inf64, field_mask, cadd,
                                                 sub_scale))
        _canonical_nans(acc)


@njit(parallel=True, cache=True)
def matmul_seed(af, hb, bpre, fbmin, fbmax, bias, m_len, k_len, n_len, chunk, out):
    """Seed-multiplier product of A (flat float32 [M*K]) and B prepared by :func:`prep_seed_b`.

    Where ``fbmin``/``fbmax`` prove that every field sum of the row lands in the "normal" class
    with a nonzero field (``0x8000 < fa + fb + 0x4080 < 0x10000``), the BF16 result bits are
    ``(sa << 16) + (fa << 16) + bpre`` mod 2**32 (the sign bits add into bit 31 as their XOR);
    otherwise the classification runs per product. The scaling ``(r + r/32) + r/64`` is
    computed as in :func:`_seed32`.
    """
    c5 = np.float32(0.03125)
    c6 = np.float32(0.015625)
    zero = np.float32(0.0)
    n_chunks = (n_len + chunk - 1) // chunk
    for tile in prange(m_len * n_chunks):
        m = tile // n_chunks
        n0 = (tile % n_chunks) * chunk
        n1 = min(n0 + chunk, n_len)
        acc = out[m * n_len + n0:m * n_len + n1]
        acc[:] = bias[n0:n1]
        for k in range(k_len):
            h = np.int64(_f32_bits(af[m * k_len + k]) >> 16) & 0xFFFF
            fa = h & 0x7FFF
            sa = h & 0x8000
            if (fa >> 7) == 0:
                # Flushed a: every product is +0.0 (which still turns a -0 sum into +0).
                for j in range(acc.size):
                    acc[j] += zero
                continue
            row = k * n_len
            if fa + fbmin[k] + 0x4080 > 0x8000 and fa + fbmax[k] + 0x4080 < 0x10000:
                a32 = _i32(((sa << 16) + (fa << 16)) & 0xFFFFFFFF)
                bpr = bpre[row + n0:row + n1]
                for j in range(acc.size):
                    r = _bits_f32(_i32(a32 + bpr[j]))
                    acc[j] += (r + r * c5) + r * c6
                continue
            fa4 = _i32(fa + 0x4080)
            sa32 = _i32(sa)
            hbr = hb[row + n0:row + n1]
            for j in range(acc.size):
                fbj = _i32(hbr[j] & 0x7FFF)
                total = _i32(fa4 + fbj)
                if (fbj >> 7) == 0:
                    total = _i32(0)  # flushed b: the "underflow" class, +0.0
                fld = _i32(total & 0x7FFF)
                if total < 0x8000:
                    fld = _i32(0)
                if total >= 0x10000:
                    fld = _i32(0x7FFF)
                sign = _i32(sa32 ^ _i32(hbr[j] & 0x8000))
                if fld == 0:
                    sign = _i32(0)
                r = _bits_f32(_i32(_i32(sign | fld) << 16))
                acc[j] += (r + r * c5) + r * c6
        _canonical_nans(acc)


# ----------------------------------------------------------------------------------------------
# Narrow products: out[obase[m] + n*ostride] = bias[n] + sum_k p(W[n, k], X[m, k]), k in order.
# For few outputs per row (N = out_channels of an im2col convolution: 6, 16) the kernels above
# spend their time on per-(m, k) work before a loop over only N columns. These vectorize across
# rows m instead: X (the wide operand) is read through index arrays, X[m, k] =
# ``x[mbase[m] + koff[k]]`` (a row-major [M, K] matrix, or the patches of a convolution straight
# from the padded image, with no im2col copy), rounded once per element in chunks of rows, and
# each weight W[n, k] plays the scalar role A[m, k] plays above. Every multiplier is commutative
# bit for bit (L-Mul: field sum, sign XOR and special cases symmetric in the operands; exact:
# the IEEE product of the two format values, rounded; seed: symmetric field sum and flushes;
# NaNs are canonical in the end), and each output still sums its K terms in order starting
# from its bias, so the bits are those of the kernels above. Results are scattered to
# ``out[obase[m] + n*ostride]`` ([M, N] row-major, or a convolution's [batch, N, positions]).
# ----------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True)
def narrow_lmul(x, mbase, koff, w, bias, obase, ostride, m_len, k_len, n_len, chunk, prm, out):
    """L-Mul narrow product (see the section comment): X through ``mbase``/``koff``, W flat
    float32 [N*K], bias float32 [N]; rows are tiled in chunks of ``chunk``.

    Per chunk, X's row chunks are rounded and split as :func:`prep_lmul_b` splits a row of B
    (extremes and Inf/NaN flag over the chunk only), ``_K_GROUP`` k at a time; then for each
    n, where all the group's weight elements take the single-add path, one loop adds the
    group's products in k order (one load and store of each accumulator per group), otherwise
    each k runs the path of :func:`matmul_lmul` for its weight element.

    Zeros keep the single-add path: the extremes are taken over the nonzero elements only, a
    zero's ``bpre`` is its sign bit alone, so ``a32 + bpre`` is a finite nonzero float32 of
    sign ``sa ^ sb`` (the magnitude bits ``fa << (23 - M)`` of a normal format value lie in
    [2**23, 0x7F800000)), and multiplied by ``one = +0.0`` it becomes the product's signed
    zero; nonzero elements are multiplied by 1.0, exactly.
    """
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
    kb = _i32(prm[_P_OFFSET] - (prm[_P_BIAS] << prm[_P_M]))
    sbit = _i32(ebits + man)
    # Per weight element: format bits, single-add term, and field (-2**40 where the element
    # is not a normal value of a fast format: never the single-add path).
    wr = np.empty(n_len * k_len, dtype=np.int32)
    wa32 = np.empty(n_len * k_len, dtype=np.int32)
    wfa = np.empty(n_len * k_len, dtype=np.int64)
    for i in range(n_len * k_len):
        wr[i] = _round32(_f32_bits(w[i]), m32, emin, rne32, inf32, maxfin, sign_bit, qnan)
        a = np.int64(wr[i])
        ea = (a >> man) & emaxf
        sa = _i32(_INT32_MIN) if ((a >> (ebits + man)) & 1) != 0 else _i32(0)
        wa32[i] = _i32(sa + _i32((a & field_mask) << sh))
        wfa[i] = (a & field_mask) if fast and ea != 0 and ea != emaxf else -(1 << 40)
    n_chunks = (m_len + chunk - 1) // chunk
    for c in prange(n_chunks):
        m0 = c * chunk
        cs = min(chunk, m_len - m0)
        cs2, cs3, cs4, cs5, cs6, cs7 = 2 * cs, 3 * cs, 4 * cs, 5 * cs, 6 * cs, 7 * cs
        mb = mbase[m0:m0 + cs]
        acc = np.empty(n_len * cs, dtype=np.float32)
        bbq = np.empty(_K_GROUP * cs, dtype=np.int32)
        fbq = np.empty(_K_GROUP * cs, dtype=np.int32)
        bpq = np.empty(_K_GROUP * cs, dtype=np.int32)
        oneq = np.empty(_K_GROUP * cs, dtype=np.float32)
        fminq = np.empty(_K_GROUP, dtype=np.int64)
        fmaxq = np.empty(_K_GROUP, dtype=np.int64)
        specq = np.empty(_K_GROUP, dtype=np.bool_)
        zerosq = np.empty(_K_GROUP, dtype=np.bool_)
        for n in range(n_len):
            acc[n * cs:(n + 1) * cs] = bias[n]
        for kq0 in range(0, k_len, _K_GROUP):
            nq = min(_K_GROUP, k_len - kq0)
            for q in range(nq):
                ko = koff[kq0 + q]
                bbr = bbq[q * cs:(q + 1) * cs]
                # The gather does not vectorize; rounding separately from it does.
                for j in range(cs):
                    bbr[j] = _f32_bits(x[np.uint64(mb[j] + ko)])
                for j in range(cs):
                    bbr[j] = _round32(bbr[j], m32, emin, rne32, inf32, maxfin, sign_bit, qnan)
                fbr = fbq[q * cs:(q + 1) * cs]
                bpr = bpq[q * cs:(q + 1) * cs]
                one = oneq[q * cs:(q + 1) * cs]
                # Exponent extremes flag Inf/NaN and zeros (min/max reductions vectorize where
                # flag ORs did not).
                emx = _i32(0)
                emn = _i32(emaxf32)
                fmin = _i32(0x7FFFFFFF)
                fmax = _i32(_INT32_MIN)
                for j in range(cs):
                    b = bbr[j]
                    e = _i32(_sra(b, m32) & emaxf32)
                    f = _i32(_i32(b & field32) + kb)
                    sgn = _i32(_i32(_sra(b, e32 + m32) & 1) << 31)
                    bpr[j] = _i32(sgn + _i32(_i32(f + cadd) << sh)) if e != 0 else sgn
                    one[j] = np.float32(1.0) if e != 0 else np.float32(0.0)
                    fz = _i32(_LMUL_FLUSH) if e == 0 else f
                    fbr[j] = fz
                    fmax = max(fmax, fz)
                    fmin = min(fmin, f if e != 0 else _i32(0x7FFFFFFF))
                    emx = max(emx, e)
                    emn = min(emn, e)
                fminq[q] = fmin
                fmaxq[q] = fmax
                specq[q] = emx == emaxf32
                zerosq[q] = emn == 0
            anyzero = False
            for q in range(nq):
                anyzero |= zerosq[q]
            for n in range(n_len):
                accn = acc[n * cs:(n + 1) * cs]
                i0 = n * k_len + kq0
                fused = nq == _K_GROUP
                for q in range(nq):
                    fq = wfa[i0 + q]
                    fused &= (not specq[q]) and fq + fminq[q] >= lo and fq + fmaxq[q] < hi
                if fused:
                    # Offsets into one array each (not four slices): few pointers to check for
                    # overlap, so the loop vectorizes.
                    x0, x1, x2, x3 = wa32[i0], wa32[i0 + 1], wa32[i0 + 2], wa32[i0 + 3]
                    x4, x5, x6, x7 = wa32[i0 + 4], wa32[i0 + 5], wa32[i0 + 6], wa32[i0 + 7]
                    if not anyzero:
                        for j in range(cs):
                            t = accn[j]
                            t += _bits_f32(_i32(x0 + bpq[j]))
                            t += _bits_f32(_i32(x1 + bpq[j + cs]))
                            t += _bits_f32(_i32(x2 + bpq[j + cs2]))
                            t += _bits_f32(_i32(x3 + bpq[j + cs3]))
                            t += _bits_f32(_i32(x4 + bpq[j + cs4]))
                            t += _bits_f32(_i32(x5 + bpq[j + cs5]))
                            t += _bits_f32(_i32(x6 + bpq[j + cs6]))
                            t += _bits_f32(_i32(x7 + bpq[j + cs7]))
                            accn[j] = t
                    else:
                        for j in range(cs):
                            t = accn[j]
                            t += _bits_f32(_i32(x0 + bpq[j])) * oneq[j]
                            t += _bits_f32(_i32(x1 + bpq[j + cs])) * oneq[j + cs]
                            t += _bits_f32(_i32(x2 + bpq[j + cs2])) * oneq[j + cs2]
                            t += _bits_f32(_i32(x3 + bpq[j + cs3])) * oneq[j + cs3]
                            t += _bits_f32(_i32(x4 + bpq[j + cs4])) * oneq[j + cs4]
                            t += _bits_f32(_i32(x5 + bpq[j + cs5])) * oneq[j + cs5]
                            t += _bits_f32(_i32(x6 + bpq[j + cs6])) * oneq[j + cs6]
                            t += _bits_f32(_i32(x7 + bpq[j + cs7])) * oneq[j + cs7]
                            accn[j] = t
                    continue
                for q in range(nq):
                    bbr = bbq[q * cs:(q + 1) * cs]
                    fbr = fbq[q * cs:(q + 1) * cs]
                    bpr = bpq[q * cs:(q + 1) * cs]
                    one = oneq[q * cs:(q + 1) * cs]
                    special = specq[q]
                    a_i = wr[i0 + q]
                    a = np.int64(a_i)
                    ea = (a >> man) & emaxf
                    sa = _i32(_INT32_MIN) if ((a >> (ebits + man)) & 1) != 0 else _i32(0)
                    fq = wfa[i0 + q]
                    if not special and fq + fminq[q] >= lo and fq + fmaxq[q] < hi:
                        a32 = wa32[i0 + q]
                        if not zerosq[q]:
                            for j in range(cs):
                                accn[j] += _bits_f32(_i32(a32 + bpr[j]))
                        else:
                            for j in range(cs):
                                accn[j] += _bits_f32(_i32(a32 + bpr[j])) * one[j]
                    elif fast and not special and ea != 0 and ea != emaxf:
                        fa = _i32(a & field_mask)
                        for j in range(cs):
                            t = _i32(fa + fbr[j])
                            r = _i32(_i32(t + cadd) << sh)
                            if t < lo:
                                r = _i32(0)
                            if t >= hi:
                                r = ovf
                            sgn = _i32(_sra(bbr[j], sbit) << 31)
                            accn[j] += _bits_f32(_i32(r | _i32(sa ^ sgn)))
                    elif not special and ea == 0:
                        for j in range(cs):
                            accn[j] += _bits_f32(_i32(sa ^ _i32(_sra(bbr[j], sbit) << 31)))
                    elif fast:
                        for j in range(cs):
                            accn[j] += _bits_f32(_lmul32(a_i, bbr[j], e32, m32, emaxf32, k0, cadd,
                                                         lo, hi, ovf))
                    else:
                        for j in range(cs):
                            r = _lmul64(a, np.int64(bbr[j]), ebits, man, bias_e, offset, sat,
                                        prm[_P_FIN])
                            accn[j] += _bits_f32(_widen32(r, e32, m32, inf32, field32, cadd,
                                                          sub_scale))
        _scatter(acc, obase, ostride, m0, cs, n_len, out)


@njit(parallel=True, cache=True)
def narrow_exact(x, mbase, koff, w, bias, obase, ostride, m_len, k_len, n_len, chunk, prm, out):
    """Exact-multiplier narrow product (see :func:`narrow_lmul` and :func:`matmul_exact`): per
    chunk and k, X's row chunk is rounded and widened, ``minabs`` taken over the chunk."""
    ebits, man = prm[_P_E], prm[_P_M]
    e32, m32, rne32 = _i32(ebits), _i32(man), _i32(prm[_P_RNE])
    emin, emin64, inf64 = _i32(prm[_P_EMIN]), prm[_P_EMIN], prm[_P_INF]
    inf_bits, field_mask = _i32(inf64), _i32(prm[_P_FIELD])
    sign_bit, qnan, cadd = _i32(prm[_P_SIGN]), _i32(prm[_P_QNAN]), _i32(prm[_P_CADD])
    sub_scale = _bits_f32(prm[_P_SUB])
    maxfin = _i32(prm[_P_MAXFIN])
    sh, rnd, keep = _i32(prm[_P_SH]), _i32(prm[_P_RND]), _i32(prm[_P_KEEP])
    tiny = 2.0 ** -126
    wv = np.empty(n_len * k_len, dtype=np.float32)
    for i in range(n_len * k_len):
        r = _round32(_f32_bits(w[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
        wv[i] = _bits_f32(_widen32(r, e32, m32, inf_bits, field_mask, cadd, sub_scale))
    n_chunks = (m_len + chunk - 1) // chunk
    for c in prange(n_chunks):
        m0 = c * chunk
        cs = min(chunk, m_len - m0)
        mb = mbase[m0:m0 + cs]
        acc = np.empty(n_len * cs, dtype=np.float32)
        vbr = np.empty(cs, dtype=np.float32)
        for n in range(n_len):
            acc[n * cs:(n + 1) * cs] = bias[n]
        for k in range(k_len):
            ko = koff[k]
            cur = _i32(_F32_INF)
            for j in range(cs):
                b = _round32(_f32_bits(x[np.uint64(mb[j] + ko)]), m32, emin, rne32, inf_bits,
                             maxfin, sign_bit, qnan)
                v = _widen32(b, e32, m32, inf_bits, field_mask, cadd, sub_scale)
                vbr[j] = _bits_f32(v)
                mag = _i32(v & 0x7FFFFFFF)
                if mag == 0 or mag > _F32_INF:
                    mag = _i32(_F32_INF)
                cur = min(cur, mag)
            minabs = _bits_f32(cur)
            for n in range(n_len):
                accn = acc[n * cs:(n + 1) * cs]
                xw = wv[n * k_len + k]
                if man <= 11 and ebits == 8:
                    if xw == 0 or abs(np.float64(xw)) * np.float64(minabs) >= tiny:
                        for j in range(cs):
                            accn[j] += _bits_f32(_rne_e8(_f32_bits(xw * vbr[j]), rnd, sh, keep))
                    else:
                        for j in range(cs):
                            u = _f32_bits(xw * vbr[j])
                            if _i32(u & _F32_INF) == 0 and vbr[j] != 0:
                                accn[j] += _bits_f32(_exact64(xw, vbr[j], ebits, man, emin64,
                                                              inf64, field_mask, cadd, sub_scale))
                            else:
                                accn[j] += _bits_f32(_rne_e8(u, rnd, sh, keep))
                elif man <= 11:
                    for j in range(cs):
                        r = _round32(_f32_bits(xw * vbr[j]), m32, emin, _i32(1), inf_bits,
                                     maxfin, sign_bit, qnan)
                        accn[j] += _bits_f32(_widen32(r, e32, m32, inf_bits, field_mask, cadd,
                                                      sub_scale))
                else:
                    for j in range(cs):
                        accn[j] += _bits_f32(_exact64(xw, vbr[j], ebits, man, emin64, inf64,
                                                      field_mask, cadd, sub_scale))
        _scatter(acc, obase, ostride, m0, cs, n_len, out)


@njit(parallel=True, cache=True)
def narrow_seed(x, mbase, koff, w, bias, obase, ostride, m_len, k_len, n_len, chunk, out):
    """Seed-multiplier narrow product (see :func:`narrow_lmul` and :func:`matmul_seed`): per
    chunk and k, X's row chunk is split as :func:`prep_seed_b` splits a row of B."""
    c5 = np.float32(0.03125)
    c6 = np.float32(0.015625)
    zero = np.float32(0.0)
    n_chunks = (m_len + chunk - 1) // chunk
    for c in prange(n_chunks):
        m0 = c * chunk
        cs = min(chunk, m_len - m0)
        mb = mbase[m0:m0 + cs]
        acc = np.empty(n_len * cs, dtype=np.float32)
        hbr = np.empty(cs, dtype=np.int32)
        bpr = np.empty(cs, dtype=np.int32)
        for n in range(n_len):
            acc[n * cs:(n + 1) * cs] = bias[n]
        for k in range(k_len):
            ko = koff[k]
            fmin = _i32(0x7FFFFFFF)
            fmax = _i32(_INT32_MIN)
            for j in range(cs):
                h = _i32(_i32(_f32_bits(x[np.uint64(mb[j] + ko)]) >> 16) & 0xFFFF)
                f = _i32(h & 0x7FFF)
                if (f >> 7) == 0:
                    f = _i32(_SEED_FLUSH)
                hbr[j] = h
                bpr[j] = _i32(_i32(_i32(h & 0x8000) << 16)
                              + _i32(_i32(f + (0x4080 - 0x8000)) << 16))
                fmin = min(fmin, f)
                fmax = max(fmax, f)
            for n in range(n_len):
                accn = acc[n * cs:(n + 1) * cs]
                hw = np.int64(_f32_bits(w[n * k_len + k]) >> 16) & 0xFFFF
                fa = hw & 0x7FFF
                sa = hw & 0x8000
                if (fa >> 7) == 0:
                    for j in range(cs):
                        accn[j] += zero
                    continue
                if fa + fmin + 0x4080 > 0x8000 and fa + fmax + 0x4080 < 0x10000:
                    a32 = _i32(((sa << 16) + (fa << 16)) & 0xFFFFFFFF)
                    for j in range(cs):
                        r = _bits_f32(_i32(a32 + bpr[j]))
                        accn[j] += (r + r * c5) + r * c6
                    continue
                fa4 = _i32(fa + 0x4080)
                sa32 = _i32(sa)
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
                    accn[j] += (r + r * c5) + r * c6
        _scatter(acc, obase, ostride, m0, cs, n_len, out)


@njit
def _scatter(acc, obase, ostride, m0, cs, n_len, out):
    """Canonical NaNs, then ``out[obase[m0 + j] + n*ostride] = acc[n*cs + j]``."""
    _canonical_nans(acc)
    ob = obase[m0:m0 + cs]
    for n in range(n_len):
        accn = acc[n * cs:(n + 1) * cs]
        on = n * ostride
        for j in range(cs):
            out[np.uint64(ob[j] + on)] = accn[j]


#: Every kernel of this module (the cache-stamp test walks them).
KERNELS = (prep_lmul_b, prep_exact_b, prep_seed_b, matmul_lmul, matmul_exact, matmul_seed,
           narrow_lmul, narrow_exact, narrow_seed)
stamp_helper_sources(*KERNELS)
