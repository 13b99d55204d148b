"""Numba kernels of the L-Mul unit on bit patterns (:func:`lmul.lmul_bits`) on flat, equally long
integer arrays.

Nothing here is public API; :mod:`lmul._matmul` validates arguments and calls these. One loop
body, compiled twice (:func:`lmul._kparams.serial_and_parallel`): :func:`lmul_bits_serial`
releases the GIL, so that callers running many small blocks from their own threads (the
exhaustive proof) overlap; :func:`lmul_bits_parallel` runs across numba's threads and holds it.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._kparams import _P_BIAS, _P_E, _P_FIN, _P_M, _P_OFFSET, _P_SAT, serial_and_parallel
from ._kscalar import _lmul64


def _lmul_bits(a, b, prm, out):
    """``out[i]`` = L-Mul of format bits ``a[i]``, ``b[i]`` (:func:`lmul._kscalar._lmul64`).

    Returns the number of elements of ``a`` and of ``b`` that do not fit in the format's width
    (``out`` is meaningless unless both are 0).
    """
    ebits, man, bias_e = prm[_P_E], prm[_P_M], prm[_P_BIAS]
    offset, sat = prm[_P_OFFSET], prm[_P_SAT]
    width = 1 + ebits + man
    bad_a = 0
    bad_b = 0
    for i in prange(a.size):
        x = np.int64(a[i])
        y = np.int64(b[i])
        bad_a += np.int64((x >> width) != 0)
        bad_b += np.int64((y >> width) != 0)
        out[i] = _lmul64(x, y, ebits, man, bias_e, offset, sat, prm[_P_FIN])
    return bad_a, bad_b


lmul_bits_serial, lmul_bits_parallel = serial_and_parallel(_lmul_bits, "lmul_bits_serial",
                                                           "lmul_bits_parallel")
#: Every kernel of this module (the cache-stamp test walks them).
KERNELS = (lmul_bits_serial, lmul_bits_parallel)
