"""numba kernel of :func:`lmul._act_hw.act_hw_bits` (imported on first use: ``import lmul``
does not import numba). The steps and their order are those of ``hdl/act_unit.v``; see
:mod:`lmul._act_hw` for the definition. Imports nothing of the package (``_act_hw`` imports it
and passes every constant)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_QNAN = 0x7FC00000


@njit(cache=True)
def _act_one(xb, is_tanh, pass_exp, coef_bits, seg_log2, xmax_log2, ta, td):
    sign = (xb >> 31) & 1
    e = (xb >> 23) & 0xFF
    m = xb & 0x7FFFFF
    if e == 0xFF and m != 0:
        return _QNAN
    if is_tanh and e < pass_exp:
        return xb
    if e >= 127 + xmax_log2:
        y = np.int64(1) << coef_bits
    else:
        sig = np.int64(m | (0x800000 if e != 0 else 0))
        ee = e if e != 0 else 1
        # u = floor(sig * 2^(ee - 150 + C))
        sh = 150 - coef_bits - ee
        if sh <= 0:
            u = sig << (-sh)
        elif sh < 63:
            u = sig >> sh
        else:
            u = np.int64(0)
        k = coef_bits + xmax_log2 - seg_log2
        i = u >> k
        t = u & ((np.int64(1) << k) - 1)
        y = ta[i] + ((td[i] * t) >> k)
    neg = sign
    if not is_tanh:
        if sign:
            y = (np.int64(1) << coef_bits) - y
        neg = 0
    if y == 0:
        return neg << 31
    # binary32 of y * 2^-C: normalize to bit 31, round to nearest even at bit 8.
    q = 0
    while (y >> (q + 1)) != 0:
        q += 1
    norm = (y << (31 - q)) & 0xFFFFFFFF
    exp = 127 + q - coef_bits
    man = (norm >> 8) & 0x7FFFFF
    guard = (norm >> 7) & 1
    sticky = 1 if (norm & 0x7F) != 0 else 0
    mag = (exp << 23) | man
    mag += guard & (sticky | (man & 1))
    return (neg << 31) | mag


@njit(cache=True, parallel=True)
def _act_array(x, out, is_tanh, pass_exp, coef_bits, seg_log2, xmax_log2, ta, td):
    for j in prange(x.size):
        out[j] = _act_one(np.int64(x[j]), is_tanh, pass_exp, coef_bits, seg_log2, xmax_log2,
                          ta, td)
