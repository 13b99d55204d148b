"""Correctly rounded float32 logistic sigmoid and tanh: the same bits on every machine.

Each result is the float32 nearest the exact real value ``f(x)`` of the float32 input (round to
nearest, ties to even; for ``x != 0`` neither function can hit a tie: ``exp`` of a nonzero
rational is transcendental). The value is computed in float64 with numpy's ``exp`` / ``tanh``,
whose last bits depend on the machine (libm or numpy's SIMD code), and rounded to float32; that
rounding can only be wrong where the float64 value lies within its error bound of a float32
rounding boundary (the midpoint of two adjacent float32 values). Those inputs, a few per million
plus a family near ``sigmoid(0)`` (``0.5 + x/4`` on a midpoint for tiny ``x``), are found
vectorized and settled with mpmath interval arithmetic, precision doubled until the enclosure of
``f(x)`` lies on one side of the midpoint. The sigmoid family, whose midpoint is exactly
``1/2 + x/4``, needs no arithmetic: ``sigmoid(x) = (1 + tanh(x/2)) / 2`` and ``|tanh(t)| < |t|``
put ``f(x)`` on the side of ``-x``.

Error bound relied on: the float64 value ``y64`` satisfies ``|y64 - f(x)| <= 2**-45 |f(x)|``.
It holds if numpy's float64 ``exp`` and ``tanh`` are within ``2**-46`` relative error, i.e.
within 64 ulps, on the machine: numpy specifies its SIMD (SVML) float64 functions within 4 ulps
and glibc's are within 1-2 ulps. ``sigmoid = 1 / (1 + e)`` adds two roundings (``2**-53`` each;
the error of ``e`` shrinks by ``e / (1 + e) < 1`` in ``1 + e``); ``tanh`` is used as returned.
The detector flags every input whose ``y64`` lies within ``2**-43 |y64|`` of a midpoint (four
times that bound), so a machine's result is correct unless its libm is off by more than 256 ulps.

Special values: NaN gives the input NaN, quieted (sign and payload kept: the float64 NaN
propagation of the hardware is not used, so this holds everywhere); ``+-Inf`` gives the limits
(sigmoid 1 / +0, tanh +-1); ``tanh(-0) = -0``; sigmoid saturates to exactly 1.0 above about
17.33 and falls through the float32 subnormals to +0 below about -103.97, rounded correctly all
the way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

#: log2 of the relative distance from a float32 midpoint below which an input is settled exactly.
_DETECT_LOG2 = -43
# Prefilter on the float64 bits: for |y64| >= 2**-126 (a normal float32 result), the low 29 bits
# of y64's mantissa are y64's position between two float32 values in units of 2**-29 float32
# ulps, so a midpoint is 2**28. Within 2**-43 |y64| of it is within 2**-43 * 2**53 = 2**10 units.
_LOW29 = (1 << 29) - 1
_SLACK = (1 << (53 + _DETECT_LOG2)) + 1
_LOW_START = (1 << 28) - _SLACK
# Inputs below these give every result under 2**-126 (float32 subnormal, ulp 2**-149 fixed, where
# the prefilter does not apply), and a few more: they are tested one by one.
_SIGMOID_TINY_X = np.float32(-87.0)  # sigmoid(-87) > 2**-126
_TANH_TINY_X = np.float32(2.0 ** -125)  # tanh(2**-125) > 2**-126
_QUIET = np.uint32(0x00400000)
_SIGN = np.uint32(0x80000000)

_PRECISIONS = (96, 192, 384, 768, 1536, 3072)  # bits: the next while the enclosure straddles
_ctx_lock = threading.Lock()
_ctx = None


def _interval_ctx():
    """A private mpmath interval context (its precision is global state: not mpmath.iv's)."""
    global _ctx
    if _ctx is None:
        from mpmath.ctx_iv import MPIntervalContext
        _ctx = MPIntervalContext()
    return _ctx


def _sigmoid_iv(ctx, x):
    return 1 / (1 + ctx.exp(-x))


def _tanh_iv(ctx, x):  # for x >= 0; one occurrence of exp(2x): a tight enclosure
    return 1 - 2 / (ctx.exp(2 * x) + 1)


def _side(fn_iv: Callable, x: float, mid: float) -> int:
    """-1 / +1 if f(x) is below / above ``mid`` (both exact binary values); 0 if no enclosure
    up to 3072 bits separates them (an exact tie: impossible for x != 0)."""
    if fn_iv is _sigmoid_iv and x != 0.0 and 0.25 <= mid <= 1.0 and (mid - 0.5) * 4.0 == x:
        # The family near sigmoid(0): mid = 1/2 + x/4 exactly (mid - 0.5 is exact by Sterbenz,
        # * 4 is exact), and sigmoid(x) = (1 + tanh(x/2)) / 2 with tanh(t) < t for t > 0 (and
        # > t for t < 0) puts f(x) strictly on the side of -x: no interval arithmetic needed.
        return -1 if x > 0.0 else 1
    from mpmath.libmp import from_float, mpf_gt, mpf_lt
    m = from_float(mid)
    with _ctx_lock:
        ctx = _interval_ctx()
        for prec in _PRECISIONS:
            ctx.prec = prec
            lo, hi = fn_iv(ctx, ctx.mpf(x))._mpi_
            if mpf_lt(hi, m):
                return -1
            if mpf_gt(lo, m):
                return 1
    return 0


def _correct(y64: np.ndarray, x32: np.ndarray, tiny: np.ndarray, fn_iv: Callable
             ) -> tuple[np.ndarray, np.ndarray]:
    """(indices, corrected float32 values) of the entries of ``y64 = f(x32)`` (float64 >= 0, 1-D)
    whose float32 rounding the error bound does not settle. ``tiny`` marks (at least) the
    entries with ``y64 < 2**-126``."""
    bits = y64.view(np.int64)  # y64 >= 0: the bits order like the values
    near = bits - _LOW_START
    near &= _LOW29
    cand = near <= 2 * _SLACK
    cand |= tiny
    idx = np.flatnonzero(cand)
    if idx.size == 0:
        return idx, np.empty(0, np.float32)
    a = y64[idx]
    _, e = np.frexp(a)  # a = m * 2**e, 0.5 <= m < 1: float32 ulp 2**(e - 24), or 2**-149
    q = np.maximum(e - 24, -149)
    t = np.ldexp(a, -q)  # exact: a power-of-two scale of a float64 normal, t < 2**24
    k = np.floor(t)
    hard = np.isfinite(a) & (np.abs(t - k - 0.5) <= np.ldexp(t, _DETECT_LOG2))
    idx, k, q = idx[hard], k[hard], q[hard]
    mids = np.ldexp(k + 0.5, q)
    out = np.empty(idx.size, np.float32)
    for j in range(idx.size):
        side = _side(fn_iv, float(x32[idx[j]]), float(mids[j]))
        up = side > 0 or (side == 0 and int(k[j]) % 2 == 1)  # a tie goes to the even one
        out[j] = np.ldexp(k[j] + 1.0 if up else k[j], q[j])
    return idx, out


def _check(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype != np.float32:
        raise TypeError(f"{name} needs float32 values, got dtype {arr.dtype}")
    return arr


def _finish(x32: np.ndarray, ax: np.ndarray, y64: np.ndarray, tiny: np.ndarray,
            fn_iv: Callable) -> np.ndarray:
    """float32 results from ``y64 = f(ax)`` (float64 >= 0): correct the hard cases, then put
    on the sign of ``x32`` if ``ax`` is ``|x32|`` (an odd function), and the NaNs."""
    out = y64.astype(np.float32)
    idx, val = _correct(y64, ax, tiny, fn_iv)
    out[idx] = val
    if ax is not x32:
        out.view(np.uint32)[...] |= x32.view(np.uint32) & _SIGN
    nan = np.isnan(x32)
    if nan.any():
        out.view(np.uint32)[nan] = x32.view(np.uint32)[nan] | _QUIET
    return out


def sigmoid32(x: np.ndarray) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))`` of float32 values, correctly rounded to float32.

    Args:
        x: float32 array (any shape) or scalar.

    Returns:
        float32 array of ``x``'s shape: the float32 nearest the exact value of each element, the
        same bits on every machine (see the module docstring for the method and special values).
    """
    arr = _check(x, "sigmoid32")
    x32 = np.ascontiguousarray(arr).reshape(-1)
    with np.errstate(invalid="ignore", over="ignore"):  # signaling NaNs; exp(-x) -> inf: +0
        y64 = x32.astype(np.float64)
        np.negative(y64, out=y64)
        np.exp(y64, out=y64)
    y64 += 1.0
    np.divide(1.0, y64, out=y64)
    return _finish(x32, x32, y64, x32 < _SIGMOID_TINY_X, _sigmoid_iv).reshape(arr.shape)


def tanh32(x: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent of float32 values, correctly rounded to float32.

    Args:
        x: float32 array (any shape) or scalar.

    Returns:
        float32 array of ``x``'s shape, as :func:`sigmoid32` (``tanh(-0) = -0``).
    """
    arr = _check(x, "tanh32")
    x32 = np.ascontiguousarray(arr).reshape(-1)
    ax = np.abs(x32)  # tanh is odd: |x| here, x's sign bit on the result (tanh(-0) = -0)
    with np.errstate(invalid="ignore"):  # signaling NaNs
        y64 = ax.astype(np.float64)
        np.tanh(y64, out=y64)
    return _finish(x32, ax, y64, ax < _TANH_TINY_X, _tanh_iv).reshape(arr.shape)
