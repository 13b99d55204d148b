"""The fused dot-product step: ``K`` products and the accumulator summed with one rounding.

Reference model of the fused processing element (the arithmetic contract shared with the RTL).
One step computes ``acc' = dot(acc, a[0..K-1], b[0..K-1])`` from ``K + 1`` binary32 terms: the
accumulator and the multiplier's ``K`` products widened exactly to binary32. Every term's
magnitude is truncated to a window of ``align_bits`` bits below the largest term's leading bit
position, the truncated terms are summed exactly, and the sum is rounded once to binary32
(round to nearest, ties to even, subnormals kept, overflow to Inf).

:func:`fused_sum_bits` is the slow, readable reference on Python integers; the fast kernels
(``lmul._kdot``) must return the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ``align_bits`` from which no binary32 term ever loses a bit: the largest leading bit is
#: 2**127, the smallest binary32 LSB 2**-149, and 127 + 149 = 276. With it a step returns the
#: correctly rounded sum of its terms.
FUSED_EXACT_ALIGN_BITS = 276

#: Legal products per step ``k`` (RTL parameter K).
FUSED_K_RANGE = (1, 64)
#: Legal window widths ``align_bits`` (RTL parameter ALIGN_BITS).
FUSED_ALIGN_BITS_RANGE = (1, FUSED_EXACT_ALIGN_BITS)

_QNAN = 0x7FC00000
_NEG_ZERO = 0x80000000
_INF = 0x7F800000
_FRAC_MASK = (1 << 23) - 1


def _check_int(value: object, name: str, lo: int, hi: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {int(value)}")
    return int(value)


@dataclass(frozen=True)
class Fused:
    """Fused accumulation of a matrix product: ``k`` products per step, one rounding per step.

    For each output ``(m, n)``: ``acc = bias[n]``; for chunks ``c = 0, 1, ...`` of the inner
    dimension, ``acc = dot(acc, A[m, c*k : c*k + k], B[c*k : c*k + k, n])`` as
    :func:`fused_sum_bits` computes it (a final partial chunk is padded with products +0).
    ``Fused(1, FUSED_EXACT_ALIGN_BITS)`` returns the bits of the sequential binary32 sum.

    Attributes:
        k: products per step, an int 1..64.
        align_bits: window width in bits below the largest term's leading bit, an int 1..276
            (276 = :data:`FUSED_EXACT_ALIGN_BITS`: exact sums, correctly rounded).

    Raises:
        ValueError: ``k`` or ``align_bits`` out of range.
        TypeError: either is not an int.
    """

    k: int
    align_bits: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "k", _check_int(self.k, "Fused.k", *FUSED_K_RANGE))
        object.__setattr__(self, "align_bits", _check_int(self.align_bits, "Fused.align_bits",
                                                          *FUSED_ALIGN_BITS_RANGE))


def _round_binary32(negative: bool, mag: int, exp2: int) -> int:
    """binary32 bits of ``(-1)**negative * mag * 2**exp2`` (``mag`` > 0), RNE, subnormals kept,
    overflow to Inf."""
    lead = mag.bit_length() - 1 + exp2  # value in [2**lead, 2**(lead+1))
    quantum = max(lead - 23, -149)  # LSB weight: 24 significant bits, or the subnormal step
    shift = quantum - exp2
    if shift <= 0:
        sig = mag << -shift
    else:
        sig, rest = mag >> shift, mag & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if rest > half or (rest == half and sig & 1):
            sig += 1
    # sig < 2**23 only for a subnormal (quantum -149); sig == 2**24 is a carry into the next
    # binade. In both cases the biased exponent and fraction fields add up to this:
    mag_bits = ((quantum + 149) << 23) + sig
    if mag_bits >= _INF:
        mag_bits = _INF
    return (_NEG_ZERO if negative else 0) | mag_bits


def _fused_one(terms: list[int], align_bits: int) -> int:
    """Steps 1-7 of the contract for one list of binary32 bit patterns."""
    exps = [(t >> 23) & 0xFF for t in terms]
    fracs = [t & _FRAC_MASK for t in terms]
    # 1. Specials.
    if any(e == 0xFF and f != 0 for e, f in zip(exps, fracs, strict=True)):
        return _QNAN
    infs = {t >> 31 for t, e, f in zip(terms, exps, fracs, strict=True) if e == 0xFF and f == 0}
    if len(infs) == 2:
        return _QNAN
    if infs:
        return (_NEG_ZERO if infs.pop() else 0) | _INF
    # 2. Decode.
    sigs = [f if e == 0 else (1 << 23) + f for e, f in zip(exps, fracs, strict=True)]
    es = [1 if e == 0 else e for e in exps]
    # 3. Every term a zero: -0 only if all are -0.
    if all(s == 0 for s in sigs):
        return _NEG_ZERO if all(t == _NEG_ZERO for t in terms) else 0
    # 4. Window: magnitudes truncated to multiples of 2**(emax - 127 - align_bits).
    emax = max(e for e, s in zip(es, sigs, strict=True) if s)
    total = 0
    for t, s, e in zip(terms, sigs, es, strict=True):
        shift = e - emax + align_bits - 23
        m = s << shift if shift >= 0 else s >> -shift
        # 5. Exact signed sum.
        total += -m if t >> 31 else m
    # 6. Exact cancellation or everything truncated away.
    if total == 0:
        return 0
    # 7. One rounding of total * 2**(emax - 127 - align_bits).
    return _round_binary32(total < 0, abs(total), emax - 127 - align_bits)


def fused_sum_bits(terms: object, align_bits: int) -> np.ndarray:
    """One fused step per row of ``terms``: window-truncated exact sum, rounded once.

    The arithmetic contract (shared with the RTL's fused processing element):

    1. any NaN term -> ``0x7FC00000``; +Inf and -Inf among the terms -> ``0x7FC00000``; any
       other Inf -> that Inf;
    2. each finite term: sign ``s``, exponent field ``E``, fraction ``f`` (23 bits);
       ``sig = f, e = 1`` if ``E == 0`` else ``sig = 2**23 + f, e = E``;
       value ``(-1)**s * sig * 2**(e - 150)``;
    3. all ``sig == 0`` -> ``0x80000000`` if every term is -0, else ``0x00000000``;
    4. ``emax`` = largest ``e`` of a term with ``sig != 0``; unit
       ``u = 2**(emax - 127 - align_bits)``; each magnitude truncated toward zero to a multiple
       of ``u``: ``m = floor(sig * 2**(e - emax + align_bits - 23))``, then signed (no sticky);
    5. ``S`` = the exact integer sum of the signed ``m``;
    6. ``S == 0`` -> ``0x00000000`` (+0);
    7. otherwise binary32 ``RNE(S * u)``, subnormal results kept, overflow -> +-Inf.

    Slow (a Python loop over rows, Python integers): a reference for tests and the numpy
    fallback, not for large products.

    Args:
        terms: integer array-like [..., T], T >= 1: binary32 bit patterns
            ``sign | exponent (8) | fraction (23)`` (values 0..2**32-1); by convention
            ``terms[..., 0]`` is the accumulator and the rest the products (the result does not
            depend on their order).
        align_bits: window width, an int 1..276 (:data:`FUSED_EXACT_ALIGN_BITS`).

    Returns:
        uint32 [...]: binary32 bit patterns of the results.

    Raises:
        ValueError: ``align_bits`` out of range, ``terms`` not at least 1-D with T >= 1, or a
            value outside 0..2**32-1.
        TypeError: ``terms`` is not an integer array, or ``align_bits`` not an int.
    """
    align = _check_int(align_bits, "align_bits", *FUSED_ALIGN_BITS_RANGE)
    arr = np.asarray(terms)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"terms must be an integer array of binary32 bit patterns, got dtype "
                        f"{arr.dtype}")
    if arr.ndim < 1 or arr.shape[-1] < 1:
        raise ValueError(f"terms must have shape [..., T] with T >= 1, got {arr.shape}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 0xFFFFFFFF):
        raise ValueError("terms has values outside 0..2**32-1")
    rows = arr.reshape(-1, arr.shape[-1]).tolist()
    out = np.array([_fused_one([int(v) for v in row], align) for row in rows], dtype=np.uint32)
    return out.reshape(arr.shape[:-1])
