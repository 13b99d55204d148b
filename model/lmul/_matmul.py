"""Fast L-Mul matrix products and elementwise products: the same bits as the reference model.

:func:`matmul` has the semantics of :func:`lmul.matmul_reference` (the MAC array: bias preload,
``k``-ordered binary32 accumulation, canonical NaN) and runs the numba kernels of
:mod:`lmul._kernels`: multi-threaded over (row, column-chunk) tiles, vectorized across output
columns, extra memory O(M*N + M*K + K*N) (operands are pre-rounded once; there is never an
[M, N, K] temporary). For few output columns (N <= 32, M >= 256) it runs
:func:`narrow_product` instead, vectorized across rows (same bits: the multipliers are
commutative); :func:`conv2d_product` is the same kernel reading a convolution's patches straight
from the image (the converted ``Conv1d``/``Conv2d`` without autograd).
:func:`lmul_elementwise`, :func:`exact_mul_elementwise` and :func:`seed_lmul_elementwise` are
the fast paths of :func:`lmul.lmul`, :func:`lmul.exact_mul` and
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

from ._convert import Rounding, as_float_array, broadcast_pair, check_bits, widen_narrow
from ._core import exact_mul_numpy, lmul_bits_numpy, lmul_numpy, seed_lmul_numpy
from ._dot import Fused
from ._formats import LMulConfig
from ._reference import (
    Multiplier,
    check_accumulate,
    check_matmul_args,
    matmul_fp32_numpy,
    matmul_reference,
)


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


@functools.cache
def _load_dot_kernels() -> ModuleType:
    """The fused-accumulation kernels (:mod:`lmul._kdot`), imported on first use; callers check
    :func:`fast_path_enabled` first."""
    from . import _kdot

    return _kdot


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
                                rounding == "rne", cfg.finite_only)  # cached: once per config


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


#: Widest N (output columns) for which :func:`matmul` takes the narrow kernels ...
_NARROW_MAX_N = 32
#: ... when A has at least this many rows (each narrow tile covers up to 1024 rows).
_NARROW_MIN_M = 256


def _use_narrow(m_len: int, n_len: int) -> bool:
    """Whether :func:`matmul` runs the narrow kernels (same bits either way; speed only)."""
    return 0 < n_len <= _NARROW_MAX_N and m_len >= _NARROW_MIN_M


def _narrow_chunk(m_len: int, n_len: int) -> int:
    """Rows per narrow tile: N accumulator rows of it in 32 KiB, enough tiles for every thread."""
    _kernels = _load_kernels()
    assert _kernels is not None
    chunk = min(1024, max(64, 8192 // max(n_len, 1)))
    want_tiles = 4 * _kernels.num_threads()
    while chunk > 64 and math.ceil(m_len / chunk) < want_tiles:
        chunk //= 2
    return chunk


def narrow_product(x: np.ndarray, mbase: np.ndarray, koff: np.ndarray, w: np.ndarray,
                   bias: np.ndarray, obase: np.ndarray, ostride: int, out: np.ndarray,
                   cfg: LMulConfig = _DEFAULT, rounding: Rounding = "rne",
                   multiplier: Multiplier = "lmul") -> None:
    """``out[obase[m] + n*ostride] = bias[n] + sum_k p(X[m, k], W[n, k])``, X read in place.

    The MAC array's sum (bias first, ``k`` in order, binary32 additions, canonical NaN), with
    ``X[m, k] = x[mbase[m] + koff[k]]``: the fast path of :func:`matmul` when N is small, and of
    an im2col convolution read straight from the padded image. Runs the numba kernels (callers
    check :func:`fast_path_enabled` first); the bits are those of :func:`matmul` with
    ``A = X`` and ``B = W.T``.

    Args:
        x: flat float32, contiguous; mbase: int64 [M]; koff: int64 [K] (element offsets into
            ``x``). w: float32 [N, K] C-contiguous; bias: float32 [N]. obase: int64 [M], ostride:
            element offsets into ``out`` (flat float32, contiguous), written once per (m, n).
        cfg, rounding, multiplier: as for :func:`matmul`.

    Raises:
        ValueError: an offset falls outside ``x`` or ``out`` (checked, because the kernels do not
            check bounds).
    """
    _kernels = _load_kernels()
    assert _kernels is not None
    prm = _params(cfg, rounding)
    m_len, k_len, n_len = mbase.size, koff.size, w.shape[0]
    if m_len == 0 or n_len == 0:
        return
    if not (x.dtype == w.dtype == bias.dtype == out.dtype == np.float32
            and mbase.dtype == koff.dtype == obase.dtype == np.int64
            and w.shape == (n_len, k_len) and bias.shape == (n_len,) and obase.shape == (m_len,)
            and x.ndim == out.ndim == 1 and x.flags.c_contiguous and w.flags.c_contiguous
            and out.flags.c_contiguous):
        raise ValueError("narrow_product: operand dtypes, shapes or layouts do not match")
    if k_len and (min(mbase.min() + koff.min(), 0) < 0
                  or mbase.max() + koff.max() >= x.size):
        raise ValueError("narrow_product: an X offset falls outside x")
    if obase.min() < 0 or obase.max() + (n_len - 1) * ostride >= out.size or ostride < 0:
        raise ValueError("narrow_product: an output offset falls outside out")
    chunk = _narrow_chunk(m_len, n_len)
    wf = w.reshape(-1)
    if multiplier == "lmul":
        _kernels.narrow_lmul(x, mbase, koff, wf, bias, obase, ostride, m_len, k_len, n_len,
                             chunk, prm, out)
    elif multiplier == "exact":
        _kernels.narrow_exact(x, mbase, koff, wf, bias, obase, ostride, m_len, k_len, n_len,
                              chunk, prm, out)
    elif multiplier == "seed":
        _kernels.narrow_seed(x, mbase, koff, wf, bias, obase, ostride, m_len, k_len, n_len,
                             chunk, out)
    else:
        raise ValueError(f"multiplier must be one of 'lmul', 'exact', 'seed', got {multiplier!r}")


def conv2d_product(x: np.ndarray, w2d: np.ndarray, bias: np.ndarray | None,
                   kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                   groups: int, cfg: LMulConfig = _DEFAULT, rounding: Rounding = "rne",
                   multiplier: Multiplier = "lmul") -> np.ndarray:
    """A 2-D convolution (cross-correlation) of an already padded image, by the MAC array.

    The bits of im2col + :func:`matmul` per group (``A`` = patches [batch*positions,
    C/groups*kh*kw] with the contraction index ordered (channel, kernel row, kernel column),
    ``B = w2d[group].T``, ``bias[group]``), computed by :func:`narrow_product` straight from the
    image: no patch matrix is built. Fast path only (callers check :func:`fast_path_enabled`).

    Args:
        x: float32 [batch, C, H, W], padded. w2d: float32 [out_channels, C/groups*kh*kw];
            bias: float32 [out_channels] or None (+0.0). kernel, stride, dilation: (rows,
            columns), >= 1; groups divides C and out_channels.

    Returns:
        float32 [batch, out_channels, OH, OW], ``OH = (H - dilation[0]*(kh-1) - 1)//stride[0] + 1``
        (likewise OW), both >= 1.
    """
    n_img, chans, height, width = x.shape
    out_ch = w2d.shape[0]
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    out_h = (height - dh * (kh - 1) - 1) // sh + 1
    out_w = (width - dw * (kw - 1) - 1) // sw + 1
    cg, og = chans // groups, out_ch // groups
    if (out_h < 1 or out_w < 1 or chans != cg * groups or out_ch != og * groups
            or w2d.shape != (out_ch, cg * kh * kw)):
        raise ValueError(f"conv2d_product: input {x.shape}, weights {w2d.shape}, kernel {kernel}"
                         f" and groups {groups} do not fit")
    n_pos = out_h * out_w
    plane = height * width
    xf = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    w2 = np.ascontiguousarray(w2d, dtype=np.float32)
    c = (np.zeros(out_ch, dtype=np.float32) if bias is None
         else np.ascontiguousarray(bias, dtype=np.float32))
    pos = ((np.arange(out_h, dtype=np.int64) * (sh * width))[:, None]
           + np.arange(out_w, dtype=np.int64) * sw).reshape(-1)
    mbase = ((np.arange(n_img, dtype=np.int64) * (chans * plane))[:, None] + pos).reshape(-1)
    koff = ((np.arange(cg, dtype=np.int64) * plane)[:, None, None]
            + (np.arange(kh, dtype=np.int64) * (dh * width))[:, None]
            + np.arange(kw, dtype=np.int64) * dw).reshape(-1)
    obase = ((np.arange(n_img, dtype=np.int64) * (out_ch * n_pos))[:, None]
             + np.arange(n_pos, dtype=np.int64)).reshape(-1)
    out = np.empty(n_img * out_ch * n_pos, dtype=np.float32)
    for g in range(groups):
        # Group g reads channels [g*cg, (g+1)*cg) and writes output channels [g*og, (g+1)*og).
        narrow_product(xf, mbase, koff + g * cg * plane, w2[g * og:(g + 1) * og],
                       c[g * og:(g + 1) * og], obase, n_pos, out[g * og * n_pos:], cfg,
                       rounding, multiplier)
    return out.reshape(n_img, out_ch, out_h, out_w)


def matmul(A: object, B: object, bias: object | None = None, cfg: LMulConfig = _DEFAULT,
           rounding: Rounding = "rne", multiplier: Multiplier = "lmul",
           accumulate: Fused | None = None) -> np.ndarray:
    """``Y = bias + A . B`` exactly as the MAC array computes it (fast path).

    Same contract and bits as :func:`lmul.matmul_reference`: for every output ``(m, n)``,
    ``acc = bias[n]``; for ``k = 0 .. K-1`` in order, ``acc = fl32(acc + p(A[m,k], B[k,n]))``
    with IEEE binary32 addition; NaN results are ``0x7FC00000``. With
    ``accumulate=lmul.Fused(k, align_bits)`` the array's fused processing element instead: steps
    of ``k`` products, each summed with the accumulator by :func:`lmul.fused_sum_bits`.

    Args:
        A: float32 [M, K]; B: float32 [K, N]; bias: float32 [N] or None (= +0.0). Non-contiguous
            arrays are copied; M, N or K may be 0. A and B may instead be numpy arrays or torch
            tensors of the narrow dtype of ``cfg``'s format (``torch.float8_e4m3fn`` or
            ``ml_dtypes.float8_e4m3fn`` with ``LMulConfig.for_format("e4m3fn")``, see
            :func:`lmul.lmul`), widened exactly.
        cfg: L-Mul configuration (format of A and B, offset, saturation).
        rounding: how A and B are rounded to the format (``"rne"`` or ``"truncate"``).
        multiplier: ``"lmul"`` (the L-Mul unit), ``"exact"`` (IEEE product rounded RNE to the
            format) or ``"seed"`` (the notebook's multiplier; ``cfg``/``rounding`` unused).
        accumulate: None (sequential binary32 sum) or an :class:`lmul.Fused`.

    Returns:
        float32 [M, N] (numpy, whatever the inputs: the accumulator is binary32).

    Raises:
        TypeError: an operand is not float32 or is a torch tensor that requires grad (the message
            names it; ``lmul.torch.lmul_linear`` has gradients), cfg is not an LMulConfig, or
            accumulate is neither None nor an :class:`lmul.Fused`.
        ValueError: wrong ranks, mismatched dimensions, unknown multiplier or rounding.
    """
    check_accumulate(accumulate)
    _check_options(cfg, rounding)
    A, B = _widen_operand(A, cfg, "A"), _widen_operand(B, cfg, "B")
    a, b, c = check_matmul_args(A, B, bias, multiplier, rounding)
    if not fast_path_enabled():
        return matmul_reference(a, b, c, cfg, rounding, multiplier, accumulate)
    prm = _params(cfg, rounding)
    m_len, k_len = a.shape
    n_len = b.shape[1]
    if accumulate is not None:
        return _fused_product(a, _prepare_arrays(b, prm, multiplier), c, n_len, prm, multiplier,
                              accumulate)
    if _use_narrow(m_len, n_len):
        # Few columns: vectorize across rows instead (same bits, see narrow_product).
        out = np.empty((m_len, n_len), dtype=np.float32)
        rows = np.arange(m_len, dtype=np.int64)
        narrow_product(a.reshape(-1), rows * k_len, np.arange(k_len, dtype=np.int64),
                       np.ascontiguousarray(b.T), c, rows * n_len, 1, out.reshape(-1), cfg,
                       rounding, multiplier)
        return out
    return _wide_product(a, _prepare_arrays(b, prm, multiplier), c, n_len, prm, multiplier)


@functools.cache
def _load_fp32_kernel() -> ModuleType:
    """The fixed-order float32 kernel (:mod:`lmul._kfp32`), imported on first use; callers
    check :func:`fast_path_enabled` first."""
    from . import _kfp32

    return _kfp32


def matmul_fp32(A: object, B: object, bias: object | None = None) -> np.ndarray:
    """``Y = bias + A . B`` in float32, summed in one fixed order: the same bits on every machine.

    For every output ``(m, n)``: ``acc = bias[n]``; for ``k = 0 .. K-1`` in order,
    ``acc = fl32(acc + fl32(A[m,k] * B[k,n]))``: IEEE binary32 multiply and add, each rounded to
    nearest even, subnormals kept, no fused multiply-add, no reassociation. NaN results are the
    canonical ``0x7FC00000``. This is the MAC array of :func:`lmul.matmul` with an IEEE binary32
    multiplier: the bits of ``lmul.matmul(A, B, bias, cfg=lmul.LMulConfig(8, 23),
    multiplier="exact")``, far faster. Unlike ``A @ B`` (BLAS ``sgemm``, whose summation order
    depends on the CPU's kernel, the blocking and the thread count) the result does not depend
    on the machine.

    Args:
        A: float32 [M, K]; B: float32 [K, N]; bias: float32 [N] or None (= +0.0). Non-contiguous
            arrays are copied; M, N or K may be 0.

    Returns:
        float32 [M, N] (numpy).

    Raises:
        TypeError: an operand is not float32, or is a torch tensor that requires grad.
        ValueError: wrong ranks or mismatched dimensions.
    """
    a, b, c = check_matmul_args(A, B, bias)
    if not fast_path_enabled():
        return matmul_fp32_numpy(a, b, c)
    m_len, k_len = a.shape
    n_len = b.shape[1]
    out = np.empty(m_len * n_len, dtype=np.float32)
    kfp32 = _load_fp32_kernel()
    chunk = _chunk(math.ceil(m_len / kfp32.ROWS), n_len)  # tiles are ROWS rows high
    kfp32.matmul_fp32(a.reshape(-1), b.reshape(-1), c, m_len, k_len, n_len, chunk, out)
    return out.reshape(m_len, n_len)


def _widen_operand(x: object, cfg: LMulConfig, name: str) -> object:
    """A narrow-dtype operand of ``cfg``'s format as float32 numpy values (exact); any other
    operand unchanged (``check_matmul_args`` validates it)."""
    wide, narrow = widen_narrow(x, cfg.fmt, name)
    if not narrow:
        return x
    if not type(wide).__module__.startswith("torch"):
        return wide
    if wide.requires_grad:  # a bfloat16 tensor can require grad: refuse it, naming it
        as_float_array(wide, name, "lmul.torch.lmul_linear")
    return wide.cpu().numpy()


def _prepare_arrays(b: np.ndarray, prm: np.ndarray, multiplier: str) -> tuple[np.ndarray, ...]:
    """B [K, N] (float32, C-contiguous) rounded and split for the wide product kernels (the
    operands :class:`PreparedB` documents), by one ``prep_*_b`` launch."""
    _kernels = _load_kernels()
    assert _kernels is not None
    k_len, n_len = b.shape
    b_flat, kn = b.reshape(-1), b.size
    arrays: tuple[np.ndarray, ...]
    if multiplier == "lmul":
        arrays = (*(np.empty(kn, dtype=np.int32) for _ in range(3)),
                  *(np.empty(k_len, dtype=np.int32) for _ in range(3)))
        _kernels.prep_lmul_b(b_flat, k_len, n_len, prm, *arrays)
    elif multiplier == "exact":
        arrays = (np.empty(kn, dtype=np.float32), np.empty(k_len, dtype=np.float32))
        _kernels.prep_exact_b(b_flat, k_len, n_len, prm, *arrays)
    else:
        arrays = (*(np.empty(kn, dtype=np.int32) for _ in range(2)),
                  *(np.empty(k_len, dtype=np.int32) for _ in range(2)))
        _kernels.prep_seed_b(b_flat, k_len, n_len, *arrays)
    return arrays


def _wide_product(a: np.ndarray, arrays: tuple[np.ndarray, ...], c: np.ndarray, n_len: int,
                  prm: np.ndarray, multiplier: str) -> np.ndarray:
    """``c + a . B`` (a: float32 [M, K] C-contiguous) for B prepared by :func:`_prepare_arrays`:
    the wide kernels, tiled over (row, column chunk)."""
    _kernels = _load_kernels()
    assert _kernels is not None
    m_len, k_len = a.shape
    chunk = _chunk(m_len, n_len)
    a_flat = a.reshape(-1)
    # Arrays are allocated by numpy, not inside the kernels: numpy maps large arrays with huge
    # pages, numba's allocator does not, and first-touch page faults otherwise dominate.
    out = np.empty(m_len * n_len, dtype=np.float32)
    if multiplier == "lmul":
        _kernels.matmul_lmul(a_flat, *arrays, c, m_len, k_len, n_len, chunk, prm, out)
    elif multiplier == "exact":
        _kernels.matmul_exact(a_flat, *arrays, c, m_len, k_len, n_len, chunk, prm, out)
    else:
        _kernels.matmul_seed(a_flat, *arrays, c, m_len, k_len, n_len, chunk, out)
    return out.reshape(m_len, n_len)


def _fused_product(a: np.ndarray, arrays: tuple[np.ndarray, ...], c: np.ndarray, n_len: int,
                   prm: np.ndarray, multiplier: str, accumulate: Fused) -> np.ndarray:
    """:func:`_wide_product` with fused accumulation: the :mod:`lmul._kdot` kernels."""
    _kdot = _load_dot_kernels()
    m_len, k_len = a.shape
    chunk = _chunk(m_len, n_len)
    a_flat = a.reshape(-1)
    out = np.empty(m_len * n_len, dtype=np.float32)
    k, align = accumulate.k, accumulate.align_bits
    wf = _kdot.float64_window(k, align)
    if multiplier == "lmul":
        _kdot.fused_lmul(a_flat, *arrays, c, m_len, k_len, n_len, chunk, prm, k, align, wf, out)
    elif multiplier == "exact":
        _kdot.fused_exact(a_flat, *arrays, c, m_len, k_len, n_len, chunk, prm, k, align, wf, out)
    else:
        _kdot.fused_seed(a_flat, *arrays, c, m_len, k_len, n_len, chunk, k, align, wf, out)
    return out.reshape(m_len, n_len)


class PreparedB:
    """The right operand B [K, N] of :func:`matmul`, rounded and split once for many products.

    A recurrent layer multiplies a new A by the same gate weights at every time step; preparing
    B (rounding to the format and the per-row split :func:`lmul._kernels.prep_lmul_b` and its
    siblings compute) is O(K*N) per product, which :func:`matmul_prepared` skips. Built by
    :func:`prepare_b`; holds a snapshot of B's values at that moment (arrays of its own), so it
    can never go stale by itself, but it does not follow later changes of B either: prepare
    again after every weight update (a per-forward object, never a cache keyed on B's address).

    Attributes:
        cfg, rounding, multiplier: as given to :func:`prepare_b`.
        k_len, n_len: B's shape.
        arrays: the kernel's operands (``multiplier`` ``"lmul"``: int32 ``bb, fb, bpre`` [K*N]
            and ``special, fbmin, fbmax`` [K]; ``"exact"``: float32 ``vb`` [K*N], ``minabs``
            [K]; ``"seed"``: int32 ``hb, bpre`` [K*N], ``fbmin, fbmax`` [K]); empty without
            the fast path.
        b: a float32 copy of B for the numpy reference (without the fast path), else None.
    """

    __slots__ = ("arrays", "b", "cfg", "k_len", "multiplier", "n_len", "rounding")

    def __init__(self, cfg: LMulConfig, rounding: str, multiplier: str, k_len: int, n_len: int,
                 arrays: tuple[np.ndarray, ...], b: np.ndarray | None) -> None:
        self.cfg, self.rounding, self.multiplier = cfg, rounding, multiplier
        self.k_len, self.n_len = k_len, n_len
        self.arrays, self.b = arrays, b


def prepare_b(B: object, cfg: LMulConfig = _DEFAULT, rounding: Rounding = "rne",
              multiplier: Multiplier = "lmul") -> PreparedB:
    """B [K, N] float32 prepared for :func:`matmul_prepared` (see :class:`PreparedB`).

    ``matmul_prepared(A, prepare_b(B, cfg, rounding, multiplier), bias)`` returns the bits of
    ``matmul(A, B, bias, cfg, rounding, multiplier)`` for every A and bias.

    Raises:
        TypeError / ValueError: as :func:`matmul` for B, cfg, rounding and multiplier.
    """
    b_arr = as_float_array(B, "B", "lmul.torch.lmul_linear")
    if b_arr.ndim != 2:
        raise ValueError(f"B must be 2-D, got shape {b_arr.shape}")
    _, b, _ = check_matmul_args(np.empty((0, b_arr.shape[0]), dtype=np.float32), b_arr, None,
                                multiplier, rounding)
    _check_options(cfg, rounding)
    k_len, n_len = b.shape
    if not fast_path_enabled():
        return PreparedB(cfg, rounding, multiplier, k_len, n_len, (), b.copy())
    arrays = _prepare_arrays(b, _params(cfg, rounding), multiplier)
    return PreparedB(cfg, rounding, multiplier, k_len, n_len, arrays, None)


def matmul_prepared(A: object, prepared: PreparedB, bias: object | None = None,
                    accumulate: Fused | None = None) -> np.ndarray:
    """``Y = bias + A . B`` for a B prepared by :func:`prepare_b`: the bits of :func:`matmul`.

    Runs the same product kernels as :func:`matmul` on the prepared operands (its wide-N path),
    so one product costs no O(K*N) preparation.

    Args:
        A: float32 [M, K] (non-contiguous is copied); prepared: B [K, N] and its options;
            bias: float32 [N] or None (= +0.0); accumulate: None or an :class:`lmul.Fused`, as
            for :func:`matmul`.

    Returns:
        float32 [M, N].

    Raises:
        TypeError: A or bias is not float32 or is a tensor that requires grad; ``prepared`` is
            not a :class:`PreparedB`.
        ValueError: A is not [M, K] or bias not [N].
    """
    if not isinstance(prepared, PreparedB):
        raise TypeError(f"prepared must come from prepare_b, got {type(prepared).__name__}")
    check_accumulate(accumulate)
    k_len, n_len = prepared.k_len, prepared.n_len
    a = np.ascontiguousarray(as_float_array(A, "A", "lmul.torch.lmul_linear"))
    if a.ndim != 2 or a.shape[1] != k_len:
        raise ValueError(f"A must be [M, {k_len}] for the prepared B [{k_len}, {n_len}], got "
                         f"shape {a.shape}")
    if bias is None:
        c = np.zeros(n_len, dtype=np.float32)
    else:
        c = np.ascontiguousarray(as_float_array(bias, "bias", "lmul.torch.lmul_linear"))
        if c.shape != (n_len,):
            raise ValueError(f"bias must have shape ({n_len},), got {c.shape}")
    cfg, rounding, multiplier = prepared.cfg, prepared.rounding, prepared.multiplier
    if prepared.b is not None:
        return matmul_reference(a, prepared.b, c, cfg, rounding, multiplier, accumulate)
    if accumulate is not None:
        return _fused_product(a, prepared.arrays, c, n_len, _params(cfg, rounding), multiplier,
                              accumulate)
    return _wide_product(a, prepared.arrays, c, n_len, _params(cfg, rounding), multiplier)


def _flat_pair(x: object, y: object) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    xa = as_float_array(x, "x")
    ya = as_float_array(y, "y")
    try:
        shape = np.broadcast_shapes(xa.shape, ya.shape)
    except ValueError:
        raise ValueError(f"shapes {xa.shape} and {ya.shape} do not broadcast") from None
    return _flat(xa, shape), _flat(ya, shape), shape


def _flat(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` broadcast to ``shape``, as a flat C-contiguous array, writable unless ``a`` is
    read-only: a broadcast that adds no element (only new or size-1 axes) is a reshape, and one
    to an empty shape a new empty array, not a read-only ``broadcast_to`` view that
    ``ascontiguousarray`` would hand on as it is (the kernels would compile a second time, for
    read-only arrays)."""
    size = math.prod(shape)
    if a.size == size:
        return np.ascontiguousarray(a).reshape(-1)
    if size == 0:
        return np.empty(0, dtype=a.dtype)
    return np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1)


#: Fewest elements for which the elementwise products run their parallel kernel. Below it the
#: launch (15-20 us, ~140 us when the pool's worker sleeps, as between a training step's torch
#: calls) costs more than splitting saves: the serial loop does 16 K L-Mul products in ~23 us.
_PARALLEL_ELEMENTWISE = 1 << 17


def _elementwise(x: object, y: object, cfg: LMulConfig, rounding: str, multiplier: str
                 ) -> np.ndarray:
    """``multiplier``'s elementwise product (options already checked): the numba kernel, serial
    or parallel by size, or without it the numpy model (the same bits)."""
    if not fast_path_enabled():
        xa, ya = as_float_array(x, "x"), as_float_array(y, "y")
        if multiplier == "seed":
            return seed_lmul_numpy(xa, ya)
        return (lmul_numpy if multiplier == "lmul" else exact_mul_numpy)(xa, ya, cfg, rounding)
    _kernels = _load_kernels()
    assert _kernels is not None
    mode = {"lmul": _kernels.MUL_LMUL, "exact": _kernels.MUL_EXACT,
            "seed": _kernels.MUL_SEED}[multiplier]
    prm = _params(cfg, rounding)
    xf, yf, shape = _flat_pair(x, y)
    out = np.empty(xf.size, dtype=np.float32)
    kernel = (_kernels.elementwise
              if xf.size >= _PARALLEL_ELEMENTWISE and _kernels.num_threads() > 1
              else _kernels.elementwise_serial)
    kernel(xf, yf, mode, prm, out)
    return out.reshape(shape)


def lmul_elementwise(x: np.ndarray, y: np.ndarray, cfg: LMulConfig = _DEFAULT,
                     rounding: Rounding = "rne") -> np.ndarray:
    """Elementwise L-Mul of float32 numpy arrays (broadcastable): the fast path of ``lmul.lmul``.

    Inputs rounded to ``cfg.fmt`` (``rounding``), multiplied by the L-Mul unit, widened exactly
    to float32 (NaN -> ``0x7FC00000``). Same bits as ``lmul._core.lmul_numpy``.
    """
    _check_options(cfg, rounding)
    return _elementwise(x, y, cfg, rounding, "lmul")


def exact_mul_elementwise(x: np.ndarray, y: np.ndarray, cfg: LMulConfig = _DEFAULT,
                          rounding: Rounding = "rne") -> np.ndarray:
    """Elementwise exact product in ``cfg.fmt`` (RNE), widened to float32: fast ``exact_mul``.

    Same bits as ``lmul._core.exact_mul_numpy``.
    """
    _check_options(cfg, rounding)
    return _elementwise(x, y, cfg, rounding, "exact")


def seed_lmul_elementwise(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The seed notebook's multiplier on float32 numpy arrays: the fast path of ``seed_lmul``.

    Same bits as ``lmul._core.seed_lmul_numpy`` (NaN payloads included: both run the same float32
    operations).
    """
    return _elementwise(x, y, _DEFAULT, "rne", "seed")


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
