"""What every numba kernel module shares: the packed configuration constants, the multiplier
codes, the threading-layer choice, the on-disk cache stamp, and the one-body serial/parallel
kernel pair.

Nothing here is public API. The kernels (:mod:`lmul._kmatmul`, :mod:`lmul._kelementwise`,
:mod:`lmul._kbits`, gathered by :mod:`lmul._kernels`) are ``@njit(cache=True)`` without
``fastmath``: float32 additions and multiplications are single IEEE operations in program order,
and each output's accumulator sees its ``k`` terms in order (vectorization runs across outputs,
never across ``k``), so the accumulation order of the MAC array is kept exactly.

Representation: bit patterns of a format ``(E, M)`` are int32 ``sign | exponent | mantissa``;
float32 values become their IEEE bits where integer tricks need them (free bitcasts, see
:mod:`lmul._kintrinsics`); the scalar pieces live in :mod:`lmul._kscalar`. The int32-only fast
loops are used for E + M <= 29, wider formats take the int64 scalar path. A configuration's
constants are computed once, by :func:`make_params`, into one int64 array (``_P_*`` indices) that
every kernel takes, so every kernel has exactly one type signature (one compilation, cached on
disk) and no kernel re-derives a format constant. The exception are the bit-pattern kernels
(``lmul_bits_*``): they read the caller's arrays in place, so they compile once per dtype pair
(the format's unsigned dtype, or int64) and output dtype.
"""

from __future__ import annotations

import functools
import os
import sys
import types
from collections.abc import Callable

import numba
import numpy as np
from numba import njit

from . import _kintrinsics, _kscalar
from ._kintrinsics import _F32_INF, _F32_QNAN


def _prefer_passive_threading_layer() -> None:
    """Pick numba's TBB or workqueue threading layer before OpenMP, unless the user chose.

    With numba's OpenMP layer, idle workers spin-wait; on a machine shared with other jobs
    (and next to torch's own OpenMP pool) the spinning workers and the barrier at the end of
    each parallel loop made the 2-thread gate product 5x slower than 1 thread (measured: 40 ms
    vs 8 ms with workqueue or ``OMP_WAIT_POLICY=passive``). Workqueue is not safe for
    concurrent launches from several threads, but these kernels hold the GIL (no ``nogil``),
    so launches never overlap. ``NUMBA_THREADING_LAYER`` or ``NUMBA_THREADING_LAYER_PRIORITY``
    in the environment override this. It has no effect once numba has launched its threads.
    """
    if "NUMBA_THREADING_LAYER" in os.environ or "NUMBA_THREADING_LAYER_PRIORITY" in os.environ:
        return
    if numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER_PRIORITY = ["tbb", "workqueue", "omp"]


_prefer_passive_threading_layer()

# Indices into the int64 parameter array built by :func:`make_params`.
_P_E = 0  # exponent bits E
_P_M = 1  # mantissa bits M
_P_BIAS = 2  # 2**(E-1) - 1
_P_OFFSET = 3  # L-Mul offset in mantissa LSBs
_P_SAT = 4  # 1: overflow gives the largest finite value
_P_RNE = 5  # 1: round inputs to nearest even, 0: truncate
_P_EMIN = 6  # 1 - bias: unbiased exponent of the smallest normal
_P_EMAXF = 7  # 2**E - 1: the all-ones exponent field (Inf/NaN; finite-only: also normals)
# Format bits of +Inf, or of the NaN of a finite-only format: every magnitude at or above it is
# Inf/NaN, so one comparison with it classifies (and bounds L-Mul field sums) for both encodings.
_P_INF = 8
_P_MAXFIN = 9  # format bits of the largest finite value
_P_SIGN = 10  # the sign bit, 2**(E+M)
_P_QNAN = 11  # format bits of the canonical quiet NaN
_P_FIELD = 12  # mask of exponent|mantissa, 2**(E+M) - 1
_P_CADD = 13  # (127 - bias) << M: rebias a format field to float32 (0 when E = 8)
_P_SUB = 14  # float32 bits of 2**(emin - M), the format's subnormal quantum
_P_FAST = 15  # 1: E + M <= 29, the int32 fast loops apply
_P_K0 = 16  # OFFSET - (bias << M), the L-Mul field-sum constant (fast loops only, else 0)
_P_LO = 17  # 2**M: an L-Mul field sum below it underflows
_P_OVF = 18  # float32 bits of an overflowing L-Mul result (Inf or NaN, or the largest finite)
_P_SH = 19  # 23 - M: format mantissa -> float32 mantissa shift
_P_RND = 20  # half a format LSB minus one, in float32 mantissa units (RNE for E = 8)
_P_KEEP = 21  # mask clearing the float32 mantissa bits below a format LSB
_P_FIN = 22  # 1: finite-only format (OCP "FN": no Inf, NaN only at S.1...1.1...1)
_P_LEN = 23

# Multiplier codes shared with lmul._matmul.
MUL_LMUL = 0
MUL_EXACT = 1
MUL_SEED = 2

# Widest E + M whose L-Mul field sums (plus offset and rebias) stay inside int32.
_FAST_FIELD_BITS = 29


@functools.lru_cache(maxsize=64)
def make_params(exp_bits: int, man_bits: int, offset: int, saturate: bool, rne: bool,
                finite_only: bool = False) -> np.ndarray:
    """Every constant of a configuration, computed once, as the int64 array the kernels take.

    Cached per configuration and read-only (the kernels never write it). For a finite-only
    format ``_P_INF`` holds its NaN (see the index's comment), so the canonical NaN, the
    overflow threshold and the non-saturating overflow result (NaN) follow from it.
    """
    bias = (1 << (exp_bits - 1)) - 1
    emaxf = (1 << exp_bits) - 1
    field_mask = (1 << (exp_bits + man_bits)) - 1
    inf_bits = field_mask if finite_only else emaxf << man_bits
    cadd = (127 - bias) << man_bits
    fast = exp_bits + man_bits <= _FAST_FIELD_BITS
    sh = 23 - man_bits
    prm = np.zeros(_P_LEN, dtype=np.int64)
    prm[_P_E] = exp_bits
    prm[_P_M] = man_bits
    prm[_P_BIAS] = bias
    prm[_P_OFFSET] = offset
    prm[_P_SAT] = int(bool(saturate))
    prm[_P_RNE] = int(bool(rne))
    prm[_P_EMIN] = 1 - bias
    prm[_P_EMAXF] = emaxf
    prm[_P_INF] = inf_bits
    prm[_P_MAXFIN] = inf_bits - 1
    prm[_P_SIGN] = 1 << (exp_bits + man_bits)
    prm[_P_QNAN] = inf_bits | (1 << (man_bits - 1))
    prm[_P_FIELD] = field_mask
    prm[_P_CADD] = cadd
    prm[_P_SUB] = int(np.float32(2.0 ** (1 - bias - man_bits)).view(np.uint32))
    prm[_P_FAST] = int(fast)
    prm[_P_K0] = offset - (bias << man_bits) if fast else 0
    prm[_P_LO] = 1 << man_bits
    prm[_P_OVF] = (((inf_bits - 1 + cadd) << sh) if saturate
                   else _F32_QNAN if finite_only else _F32_INF)
    prm[_P_SH] = sh
    prm[_P_RND] = (1 << (sh - 1)) - 1 if sh > 0 else 0
    prm[_P_KEEP] = -(1 << sh)
    prm[_P_FIN] = int(bool(finite_only))
    prm.flags.writeable = False
    return prm


def num_threads() -> int:
    """Threads numba's parallel loops use."""
    return int(numba.get_num_threads())


#: Modules compiled into every kernel besides its own file: the scalar helpers, and this module,
#: whose ``_P_*`` indices and codes numba freezes into the machine code as constants.
HELPER_MODULES = (_kintrinsics, _kscalar, sys.modules[__name__])


def stamp_helper_sources(*kernels: object) -> None:
    """Make each kernel's on-disk cache depend on the :data:`HELPER_MODULES` sources too.

    numba validates a cached kernel against the (mtime, size) of the kernel's own file only, so
    an edit of :mod:`lmul._kscalar`, :mod:`lmul._kintrinsics` or this module would otherwise go
    unnoticed and the stale machine code keep running. The helpers' stamps are appended to the
    kernel's. Relies on numba internals of the pinned version; ``test_kernel_cache_tracks_helpers``
    fails if they change.
    """
    deps = tuple((os.stat(m.__file__).st_mtime_ns, os.stat(m.__file__).st_size)
                 for m in HELPER_MODULES if m.__file__ is not None)
    for kernel in kernels:
        cache_file = getattr(getattr(kernel, "_cache", None), "_cache_file", None)
        if cache_file is None or not hasattr(cache_file, "_source_stamp"):
            continue
        cache_file._source_stamp = (cache_file._source_stamp, deps)


def serial_and_parallel(body: Callable, serial_name: str, parallel_name: str
                        ) -> tuple[Callable, Callable]:
    """One kernel body, its loop written with ``prange``, compiled as two cached kernels.

    The serial kernel (``nogil``, ``prange`` runs as ``range`` without ``parallel``) runs on the
    calling thread and releases the GIL, so callers running many small blocks from their own
    threads overlap; the parallel one spreads the loop over numba's threads and holds the GIL
    (see :func:`_prefer_passive_threading_layer`: workqueue launches must not overlap). Each is a
    copy of ``body`` under its own name: numba names a kernel's cache files after it and keys
    the entries on signature and bytecode only, so two compilations of one function object with
    different options would overwrite each other's cache.
    """

    def named(name: str) -> Callable:
        renamed = {"co_name": name}
        if hasattr(body.__code__, "co_qualname"):  # Python >= 3.11
            renamed["co_qualname"] = name
        code = body.__code__.replace(**renamed)
        fn = types.FunctionType(code, body.__globals__, name, body.__defaults__, body.__closure__)
        fn.__qualname__ = name
        fn.__module__ = body.__module__
        fn.__doc__ = body.__doc__
        return fn

    serial = njit(nogil=True, cache=True)(named(serial_name))
    parallel = njit(parallel=True, cache=True)(named(parallel_name))
    stamp_helper_sources(serial, parallel)
    return serial, parallel
