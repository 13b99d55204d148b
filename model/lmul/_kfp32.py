"""Numba kernel behind :func:`lmul.matmul_fp32`: the float32 matrix product in one fixed order.

Nothing here is public API; :mod:`lmul._matmul` validates arguments and calls it. Each output
is the MAC array's sequential binary32 sum with the IEEE float32 multiplier: ``acc = bias[n]``,
then for ``k = 0 .. K-1`` in order ``acc = fl32(acc + fl32(a[m, k] * b[k, n]))``. Compiled
without ``fastmath`` (see :mod:`lmul._kparams`), so LLVM neither contracts the multiply and the
add into an FMA nor reassociates the sum; it vectorizes the inner loop across output columns,
where each lane is a different output and keeps its own order. The bits therefore depend on
neither the CPU nor the thread count, unlike a BLAS ``sgemm``, whose blocking and kernels do.
"""

from __future__ import annotations

from numba import njit, prange

from ._kparams import stamp_helper_sources
from ._kscalar import _canonical_nans

#: Rows of A that share one pass over a row of B (each keeps its own accumulators; loading
#: ``b[k, n0:n1]`` once for several rows halves the loads per product).
ROWS = 4


@njit(parallel=True, cache=True)
def matmul_fp32(af, bf, bias, m_len, k_len, n_len, chunk, out):
    """``out = bias + A . B`` (A flat float32 [M*K], B flat float32 [K*N], out flat [M*N]).

    Tiles of up to ``ROWS`` rows x ``chunk`` columns run in parallel; inside a tile the loop
    over ``k`` is outermost, so every output sees its products in increasing ``k``. NaN results
    become the canonical ``0x7FC00000`` (a NaN's payload and sign depend on the CPU and on the
    operand order LLVM picks for a commutative add).
    """
    n_chunks = (n_len + chunk - 1) // chunk
    m_tiles = (m_len + ROWS - 1) // ROWS
    for tile in prange(m_tiles * n_chunks):
        m0 = (tile // n_chunks) * ROWS
        n0 = (tile % n_chunks) * chunk
        n1 = min(n0 + chunk, n_len)
        if m0 + ROWS <= m_len:
            acc0 = out[m0 * n_len + n0:m0 * n_len + n1]
            acc1 = out[(m0 + 1) * n_len + n0:(m0 + 1) * n_len + n1]
            acc2 = out[(m0 + 2) * n_len + n0:(m0 + 2) * n_len + n1]
            acc3 = out[(m0 + 3) * n_len + n0:(m0 + 3) * n_len + n1]
            acc0[:] = bias[n0:n1]
            acc1[:] = bias[n0:n1]
            acc2[:] = bias[n0:n1]
            acc3[:] = bias[n0:n1]
            for k in range(k_len):
                x0 = af[m0 * k_len + k]
                x1 = af[(m0 + 1) * k_len + k]
                x2 = af[(m0 + 2) * k_len + k]
                x3 = af[(m0 + 3) * k_len + k]
                bk = bf[k * n_len + n0:k * n_len + n1]
                for j in range(bk.size):
                    v = bk[j]
                    acc0[j] += x0 * v
                    acc1[j] += x1 * v
                    acc2[j] += x2 * v
                    acc3[j] += x3 * v
            _canonical_nans(acc0)
            _canonical_nans(acc1)
            _canonical_nans(acc2)
            _canonical_nans(acc3)
        else:
            for m in range(m0, m_len):
                acc = out[m * n_len + n0:m * n_len + n1]
                acc[:] = bias[n0:n1]
                for k in range(k_len):
                    x = af[m * k_len + k]
                    bk = bf[k * n_len + n0:k * n_len + n1]
                    for j in range(bk.size):
                        acc[j] += x * bk[j]
                _canonical_nans(acc)


#: Every kernel of this module (the cache-stamp test walks them).
KERNELS = (matmul_fp32,)
stamp_helper_sources(*KERNELS)
