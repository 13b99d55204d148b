"""Fast L-Mul matrix products and elementwise products: the same bits as the reference model.

:func:`matmul` has the semantics of :func:`lmul.matmul_reference` (the MAC array: bias preload,
``k``-ordered binary32 accumulation, canonical NaN) and runs the numba kernels of
:mod:`lmul._kernels`: multi-threaded over (row, column-chunk) tiles, vectorized across output
columns, extra memory O(M*N + M*K + K*N) (operands are pre-rounded once; there is never an
[M, N, K] temporary). :func:`lmul_elementwise`, :func:`exact_mul_elementwise` and
:func:`seed_lmul_elementwise` are the fast paths of :func:`lmul.lmul`, :func:`lmul.exact_mul` and
:func:`lmul.seed_lmul` on numpy float32 arrays, and :func:`lmul_bits` (public as
:func:`lmul.lmul_bits`) is the L-Mul unit on bit patterns, the fast path of
``lmul._core.lmul_bits_numpy``.

With the environment variable ``LMUL_NO_NUMBA=1``, or without numba installed (then with one
``RuntimeWarning``), every function here uses the pure-numpy reference, which returns the same
bits (only slower). A numba that is installed but fails to import is an error, not a fallback.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import warnings
from types import ModuleType

import numpy as np

from ._convert import Rounding, as_float_array, broadcast_pair, check_bits
from ._core import exact_mul_numpy, lmul_bits_numpy, lmul_numpy, seed_lmul_numpy
from ._formats import LMulConfig
from ._reference import Multiplier, check_matmul_args, matmul_reference


@functools.cache
def _load_kernels() -> ModuleType | None:
    """The numba kernel module, imported on first use; None (and one warning) without numba.

    Imported here rather than at the top on purpose: ``import lmul`` must stay cheap for the many
    short-lived processes (every cocotb simulation) that only need the bit-level model.
    """
    if importlib.util.find_spec("numba") is None:
        warnings.warn("numba is not installed: lmul.matmul, lmul.lmul_bits and the elementwise "
                      "products run the pure-numpy model (same bits, far slower); install numba, "
                      "or set LMUL_NO_NUMBA=1 to choose the numpy path explicitly",
                      RuntimeWarning, stacklevel=4)
        return None
    from . import _kernels

    return _kernels


_DEFAULT = LMulConfig()

#: Widest column chunk one tile accumulates (4 KiB of float32 accumulators stay in L1).
_MAX_CHUNK = 1024
#: Narrowest column chunk worth a tile of its own.
_MIN_CHUNK = 64


def fast_path_enabled() -> bool:
    """True when the numba kernels are used (``LMUL_NO_NUMBA`` unset or 0, and numba installed).

    The first call without numba warns once (``RuntimeWarning``) that the numpy path is used.
    """
    if os.environ.get("LMUL_NO_NUMBA", "").strip() not in ("", "0"):
        return False
    return _load_kernels() is not None


def _check_options(cfg: LMulConfig, rounding: str) -> None:
    if rounding not in ("rne", "truncate"):
        raise ValueError(f"rounding must be 'rne' or 'truncate', got {rounding!r}")
    if not isinstance(cfg, LMulConfig):
        raise TypeError(f"cfg must be an lmul.LMulConfig, got {type(cfg).__name__}")


def _params(cfg: LMulConfig, rounding: str) -> np.ndarray:
    _check_options(cfg, rounding)
    _kernels = _load_kernels()
    assert _kernels is not None
    return _kernels.make_params(cfg.exp_bits, cfg.man_bits, cfg.offset_value, cfg.saturate,
                                rounding == "rne")  # cached: built once per configuration


def _chunk(m_len: int, n_len: int) -> int:
    """Column-chunk width: enough tiles to feed every thread, accumulators that fit in L1."""
    _kernels = _load_kernels()
    assert _kernels is not None
    want_tiles = 4 * _kernels.num_threads()
    n_chunks = max(1, math.ceil(n_len / _MAX_CHUNK))
    if m_len * n_chunks < want_tiles:
        n_chunks = max(n_chunks, min(math.ceil(want_tiles / max(m_len, 1)),
                                     math.ceil(n_len / _MIN_CHUNK)))
    return max(1, math.ceil(n_len / n_chunks))


def matmul(A: object, B: object, bias: object | None = None, cfg: LMulConfig = _DEFAULT,
           rounding: Rounding = "rne", multiplier: Multiplier = "lmul") -> np.ndarray:
    """``Y = bias + A . B`` exactly as the MAC array computes it (fast path).

    Same contract and bits as :func:`lmul.matmul_reference`: for every output ``(m, n)``,
    ``acc = bias[n]``; for ``k = 0 .. K-1`` in order, ``acc = fl32(acc + p(A[m,k], B[k,n]))``
    with IEEE binary32 addition; NaN results are ``0x7FC00000``.

    Args:
        A: float32 [M, K]; B: float32 [K, N]; bias: float32 [N] or None (= +0.0). Non-contiguous
            arrays are copied; M, N or K may be 0.
        cfg: L-Mul configuration (format of A and B, offset, saturation).
        rounding: how A and B are rounded to the format (``"rne"`` or ``"truncate"``).
        multiplier: ``"lmul"`` (the L-Mul unit), ``"exact"`` (IEEE product rounded RNE to the
            format) or ``"seed"`` (the notebook's multiplier; ``cfg``/``rounding`` unused).

    Returns:
        float32 [M, N].

    Raises:
        TypeError: an operand is not float32 or is a torch tensor that requires grad (the message
            names it; ``lmul.torch.lmul_linear`` has gradients), or cfg is not an LMulConfig.
        ValueError: wrong ranks, mismatched dimensions, unknown multiplier or rounding.
    """
    a, b, c = check_matmul_args(A, B, bias, multiplier, rounding)
    _check_options(cfg, rounding)
    if not fast_path_enabled():
        return matmul_reference(a, b, c, cfg, rounding, multiplier)
    _kernels = _load_kernels()
    assert _kernels is not None
    prm = _params(cfg, rounding)
    m_len, k_len = a.shape
    n_len = b.shape[1]
    chunk = _chunk(m_len, n_len)
    a_flat, b_flat = a.reshape(-1), b.reshape(-1)
    # Arrays are allocated by numpy, not inside the kernels: numpy maps large arrays with huge
    # pages, numba's allocator does not, and first-touch page faults otherwise dominate.
    out = np.empty(m_len * n_len, dtype=np.float32)
    kn = b_flat.size
    if multiplier == "lmul":
        bb, fb, bpre = (np.empty(kn, dtype=np.int32) for _ in range(3))
        special = np.empty(k_len, dtype=np.int32)
        fbmin, fbmax = np.empty(k_len, dtype=np.int32), np.empty(k_len, dtype=np.int32)
        _kernels.prep_lmul_b(b_flat, k_len, n_len, prm, bb, fb, bpre, special, fbmin, fbmax)
        _kernels.matmul_lmul(a_flat, bb, fb, bpre, special, fbmin, fbmax, c, m_len, k_len, n_len,
                             chunk, prm, out)
    elif multiplier == "exact":
        vb = np.empty(kn, dtype=np.float32)
        minabs = np.empty(k_len, dtype=np.float32)
        _kernels.prep_exact_b(b_flat, k_len, n_len, prm, vb, minabs)
        _kernels.matmul_exact(a_flat, vb, minabs, c, m_len, k_len, n_len, chunk, prm, out)
    else:
        hb, bpre = np.empty(kn, dtype=np.int32), np.empty(kn, dtype=np.int32)
        fbmin, fbmax = np.empty(k_len, dtype=np.int32), np.empty(k_len, dtype=np.int32)
        _kernels.prep_seed_b(b_flat, k_len, n_len, hb, bpre, fbmin, fbmax)
        _kernels.matmul_seed(a_flat, hb, bpre, fbmin, fbmax, c, m_len, k_len, n_len, chunk, out)
    return out.reshape(m_len, n_len)


def _flat_pair(x: object, y: object) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    xa = as_float_array(x, "x")
    ya = as_float_array(y, "y")
    try:
        shape = np.broadcast_shapes(xa.shape, ya.shape)
    except ValueError:
        raise ValueError(f"shapes {xa.shape} and {ya.shape} do not broadcast") from None
    if xa.shape != shape:
        xa = np.broadcast_to(xa, shape)
    if ya.shape != shape:
        ya = np.broadcast_to(ya, shape)
    return np.ascontiguousarray(xa).reshape(-1), np.ascontiguousarray(ya).reshape(-1), shape


def _elementwise(x: object, y: object, cfg: LMulConfig, rounding: str, mode: int) -> np.ndarray:
    _kernels = _load_kernels()
    assert _kernels is not None
    prm = _params(cfg, rounding)
    xf, yf, shape = _flat_pair(x, y)
    out = np.empty(xf.size, dtype=np.float32)
    _kernels.elementwise(xf, yf, mode, prm, out)
    return out.reshape(shape)


def lmul_elementwise(x: np.ndarray, y: np.ndarray, cfg: LMulConfig = _DEFAULT,
                     rounding: Rounding = "rne") -> np.ndarray:
    """Elementwise L-Mul of float32 numpy arrays (broadcastable): the fast path of ``lmul.lmul``.

    Inputs rounded to ``cfg.fmt`` (``rounding``), multiplied by the L-Mul unit, widened exactly
    to float32 (NaN -> ``0x7FC00000``). Same bits as ``lmul._core.lmul_numpy``.
    """
    _check_options(cfg, rounding)
    if not fast_path_enabled():
        return lmul_numpy(as_float_array(x, "x"), as_float_array(y, "y"), cfg, rounding)
    _kernels = _load_kernels()
    assert _kernels is not None
    return _elementwise(x, y, cfg, rounding, _kernels.MUL_LMUL)


def exact_mul_elementwise(x: np.ndarray, y: np.ndarray, cfg: LMulConfig = _DEFAULT,
                          rounding: Rounding = "rne") -> np.ndarray:
    """Elementwise exact product in ``cfg.fmt`` (RNE), widened to float32: fast ``exact_mul``.

    Same bits as ``lmul._core.exact_mul_numpy``.
    """
    _check_options(cfg, rounding)
    if not fast_path_enabled():
        return exact_mul_numpy(as_float_array(x, "x"), as_float_array(y, "y"), cfg, rounding)
    _kernels = _load_kernels()
    assert _kernels is not None
    return _elementwise(x, y, cfg, rounding, _kernels.MUL_EXACT)


def seed_lmul_elementwise(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The seed notebook's multiplier on float32 numpy arrays: the fast path of ``seed_lmul``.

    Same bits as ``lmul._core.seed_lmul_numpy`` (NaN payloads included: both run the same float32
    operations).
    """
    if not fast_path_enabled():
        return seed_lmul_numpy(as_float_array(x, "x"), as_float_array(y, "y"))
    _kernels = _load_kernels()
    assert _kernels is not None
    return _elementwise(x, y, _DEFAULT, "rne", _kernels.MUL_SEED)


#: Fewest elements for which :func:`lmul_bits` runs its parallel kernel (below it, thread
#: start-up costs more than it saves, and the serial kernel releases the GIL for threaded callers).
_PARALLEL_BITS = 1 << 18


def _bits_operand(bits: object, native: np.dtype, name: str) -> np.ndarray:
    """``bits`` as an ndarray of ``native`` dtype (as is) or int64 (any other integer dtype)."""
    arr = np.asarray(bits)
    if arr.dtype == native:
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of bit patterns, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def lmul_bits(a_bits: object, b_bits: object, cfg: LMulConfig = _DEFAULT) -> np.ndarray:
    """L-Mul of two arrays of bit patterns of ``cfg.fmt``: the unit ``hdl/lmul_core.v``.

    For each pair: either operand NaN, or Inf times zero/subnormal -> the canonical quiet NaN;
    either operand Inf -> Inf; either exponent field 0 -> zero; otherwise the integer sum
    ``field(a) + field(b) - (bias << M) + OFFSET`` of the ``exponent|mantissa`` fields, zero
    when its exponent is <= 0, Inf (or the largest finite value when ``cfg.saturate``) when it
    is >= ``2**E - 1``; the sign is ``sa ^ sb``. Nothing is rounded (details: ``lmul._core``).

    Runs a numba kernel (see :func:`fast_path_enabled`), otherwise the numpy model; both
    return the same bits. The first call in a process imports numba and loads the kernel (about
    a second; compiling it, once per dtype, a few seconds more).

    Args:
        a_bits, b_bits: integer arrays, lists or scalars (broadcastable) of ``1 + E + M``-bit
            patterns, ``sign | exponent | mantissa``. Arrays of ``cfg.fmt.uint_dtype`` are
            read in place when contiguous and of the broadcast shape.
        cfg: format, offset and overflow policy.

    Returns:
        Bit patterns of the result, dtype ``cfg.fmt.uint_dtype``, the broadcast shape (0-d
        inputs give a 0-d array).

    Raises:
        TypeError: an operand is not of an integer dtype, or cfg is not an LMulConfig.
        ValueError: a pattern is negative or wider than the format, or the shapes do not
            broadcast.
    """
    if not isinstance(cfg, LMulConfig):
        raise TypeError(f"cfg must be an lmul.LMulConfig, got {type(cfg).__name__}")
    if not fast_path_enabled():
        return lmul_bits_numpy(a_bits, b_bits, cfg)
    _kernels = _load_kernels()
    assert _kernels is not None
    fmt = cfg.fmt
    native = np.dtype(fmt.uint_dtype)
    a = _bits_operand(a_bits, native, "a_bits")
    b = _bits_operand(b_bits, native, "b_bits")
    if a.dtype != b.dtype:  # one compiled kernel per dtype: widen both rather than mix
        a, b = a.astype(np.int64), b.astype(np.int64)
    if a.shape != b.shape:
        a, b = broadcast_pair(a, b, ("a_bits", "b_bits"))
    shape = a.shape
    a_flat = np.ascontiguousarray(a).reshape(-1)
    b_flat = np.ascontiguousarray(b).reshape(-1)
    out = np.empty(a_flat.size, dtype=native)
    prm = _params(cfg, "rne")  # rounding is not used on bit patterns; shares matmul's entry
    kernel = (_kernels.lmul_bits_parallel
              if a_flat.size >= _PARALLEL_BITS and _kernels.num_threads() > 1
              else _kernels.lmul_bits_serial)
    bad_a, bad_b = kernel(a_flat, b_flat, prm, out)
    if bad_a or bad_b:
        # Let the numpy path's validation raise its error (same message, same operand order).
        check_bits(a_bits, fmt, "a_bits")
        check_bits(b_bits, fmt, "b_bits")
        raise RuntimeError("lmul_bits: the kernel and check_bits disagree on the input range")
    return out.reshape(shape)


def elementwise_product(x: np.ndarray, y: np.ndarray, cfg: LMulConfig = _DEFAULT,
                        rounding: Rounding = "rne", multiplier: Multiplier = "lmul"
                        ) -> np.ndarray:
    """Dispatch on ``multiplier`` (``"lmul"``, ``"exact"``, ``"seed"``) to the functions above."""
    if multiplier == "lmul":
        return lmul_elementwise(x, y, cfg, rounding)
    if multiplier == "exact":
        return exact_mul_elementwise(x, y, cfg, rounding)
    if multiplier == "seed":
        return seed_lmul_elementwise(x, y)
    raise ValueError(f"multiplier must be one of 'lmul', 'exact', 'seed', got {multiplier!r}")
