"""Numba kernels of the elementwise products (:func:`lmul.lmul`, :func:`lmul.exact_mul`,
:func:`lmul.seed_lmul` on arrays) on flat, equally long float32 arrays.

Nothing here is public API; :mod:`lmul._matmul` validates arguments and calls these. One loop
body, compiled twice (:func:`lmul._kparams.serial_and_parallel`): :func:`elementwise` across
numba's threads and :func:`elementwise_serial` on the calling thread. A parallel launch costs
15-20 us even with one numba thread, and far more (measured ~140 us inside a training step) when
the pool's worker has to be woken up, against ~23 us of work for a [128, 128] L-Mul product; the
serial kernel runs where it is called (and releases the GIL).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._kintrinsics import _F32_INF, _bits_f32, _f32_bits, _i32
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
    MUL_LMUL,
    MUL_SEED,
    serial_and_parallel,
)
from ._kscalar import _exact64, _lmul32, _lmul64, _rne_e8, _round32, _seed32, _widen32


def _elementwise(x, y, mode, prm, out):
    """``mode`` MUL_LMUL: L-Mul; MUL_EXACT: exact product in the format; MUL_SEED: seed.

    Inputs are rounded to the format per ``prm`` (not for the seed multiplier); results are
    widened to float32 with canonical NaNs (the seed multiplier's NaNs keep the payload its float32
    arithmetic gives, as ``seed_lmul`` does).
    """
    ebits, man, bias_e = prm[_P_E], prm[_P_M], prm[_P_BIAS]
    offset, sat = prm[_P_OFFSET], prm[_P_SAT]
    e32, m32, rne32 = _i32(ebits), _i32(man), _i32(prm[_P_RNE])
    emin64, inf64 = prm[_P_EMIN], prm[_P_INF]
    emin, emaxf = _i32(emin64), _i32(prm[_P_EMAXF])
    inf_bits, maxfin = _i32(inf64), _i32(prm[_P_MAXFIN])
    field_mask, sign_bit, qnan = _i32(prm[_P_FIELD]), _i32(prm[_P_SIGN]), _i32(prm[_P_QNAN])
    cadd = _i32(prm[_P_CADD])
    sub_scale = _bits_f32(prm[_P_SUB])
    k0, lo, ovf = _i32(prm[_P_K0]), _i32(prm[_P_LO]), _i32(prm[_P_OVF])
    fast = prm[_P_FAST] != 0
    if mode == MUL_SEED:
        for i in prange(x.size):
            out[i] = _seed32(_f32_bits(x[i]), _f32_bits(y[i]))
    elif mode == MUL_LMUL and fast:
        for i in prange(x.size):
            a = _round32(_f32_bits(x[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            b = _round32(_f32_bits(y[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            out[i] = _bits_f32(_lmul32(a, b, e32, m32, emaxf, k0, cadd, lo, inf_bits, ovf))
    elif mode == MUL_LMUL:
        for i in prange(x.size):
            a = _round32(_f32_bits(x[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            b = _round32(_f32_bits(y[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            r = _lmul64(np.int64(a), np.int64(b), ebits, man, bias_e, offset, sat, prm[_P_FIN])
            out[i] = _bits_f32(_widen32(r, e32, m32, inf_bits, field_mask, cadd, sub_scale))
    elif man <= 11:
        # Exact products: the float32 product of two format values is exact when it is a normal
        # float32 (see matmul_exact); products left in the float32 subnormal range with E = 8
        # are counted and redone from float64 in a second pass.
        rnd, sh, keep = _i32(prm[_P_RND]), _i32(prm[_P_SH]), _i32(prm[_P_KEEP])
        redo = 0
        for i in prange(x.size):
            a = _round32(_f32_bits(x[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            b = _round32(_f32_bits(y[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            va = _bits_f32(_widen32(a, e32, m32, inf_bits, field_mask, cadd, sub_scale))
            vb = _bits_f32(_widen32(b, e32, m32, inf_bits, field_mask, cadd, sub_scale))
            u = _f32_bits(va * vb)
            if ebits == 8:
                r = _rne_e8(u, rnd, sh, keep)
                redo += np.int64((_i32(u & _F32_INF) == 0) & (va != 0) & (vb != 0))
            else:
                r = _widen32(_round32(u, m32, emin, _i32(1), inf_bits, maxfin, sign_bit, qnan),
                             e32, m32, inf_bits, field_mask, cadd, sub_scale)
            out[i] = _bits_f32(r)
        if redo != 0:
            for i in prange(x.size):
                a = _round32(_f32_bits(x[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
                b = _round32(_f32_bits(y[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
                va = _bits_f32(_widen32(a, e32, m32, inf_bits, field_mask, cadd, sub_scale))
                vb = _bits_f32(_widen32(b, e32, m32, inf_bits, field_mask, cadd, sub_scale))
                if (_i32(_f32_bits(va * vb) & _F32_INF) == 0) & (va != 0) & (vb != 0):
                    out[i] = _bits_f32(_exact64(va, vb, ebits, man, emin64,
                                                inf64, field_mask, cadd,
                                                sub_scale))
    else:
        for i in prange(x.size):
            a = _round32(_f32_bits(x[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            b = _round32(_f32_bits(y[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            va = _bits_f32(_widen32(a, e32, m32, inf_bits, field_mask, cadd, sub_scale))
            vb = _bits_f32(_widen32(b, e32, m32, inf_bits, field_mask, cadd, sub_scale))
            out[i] = _bits_f32(_exact64(va, vb, ebits, man, emin64,
                                        inf64, field_mask, cadd, sub_scale))




elementwise_serial, elementwise = serial_and_parallel(_elementwise, "elementwise_serial",
                                                      "elementwise")
#: Every kernel of this module (the cache-stamp test walks them).
KERNELS = (elementwise_serial, elementwise)
