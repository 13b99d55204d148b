"""The numba kernel of :mod:`lmul._torch_ops`' fused LSTM step: its backward pass in one loop.

Nothing here is public API. Imported on first use (by ``_torch_ops``, once the numba kernels are
known to be in use), so ``import lmul.torch`` does not import numba. Plain float32 arithmetic:
no format constants and no scalar helpers, so numba's own cache stamp (this file) is complete.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def lstm_pointwise_grad(dh, dc, has_dh, has_dc, c, i, f, g, o, tc, hs, grad_gates, grad_c):
    """Straight-through gradients of an LSTM step's pointwise part (``lmul.torch``'s fused node).

    All arrays float32, flat, C order: ``dh, dc, c, i, f, g, o, tc, grad_c`` [B*H] (``dh``/``dc``
    unread when ``has_dh``/``has_dc`` is 0), ``grad_gates`` [B*4H] (row r: blocks i, f, g, o);
    ``hs`` = H >= 1.
    Each value is the float32 operation sequence of the separate autograd nodes, one IEEE
    operation at a time and in their order (no fastmath, so nothing is fused into an FMA):
    ``d_o = dh*tc``, ``dc' = dc + (dh*o)*(1 - tc*tc)``, ``d_i = dc'*g`` ... sigmoid
    ``(d*(1 - y))*y``, tanh ``d*(1 - y*y)``, and ``+ 0.0`` on the gate gradient, which is what
    autograd's sum of the four blocks' zero-padded gradients does (-0.0 becomes +0.0).
    """
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for r in range(c.size // hs):
        for j in range(hs):
            k = r * hs + j
            base = r * 4 * hs + j
            d_o = zero
            if has_dh:
                d_o = dh[k] * tc[k]
                d_c_tanh = (dh[k] * o[k]) * (one - tc[k] * tc[k])
                dcv = dc[k] + d_c_tanh if has_dc else d_c_tanh
            else:
                dcv = dc[k]
            d_i = dcv * g[k]
            d_f = dcv * c[k]
            d_g = dcv * i[k]
            grad_gates[base] = (d_i * (one - i[k])) * i[k] + zero
            grad_gates[base + hs] = (d_f * (one - f[k])) * f[k] + zero
            grad_gates[base + 2 * hs] = d_g * (one - g[k] * g[k]) + zero
            grad_gates[base + 3 * hs] = (d_o * (one - o[k])) * o[k] + zero if has_dh else zero
            grad_c[k] = dcv * f[k]

