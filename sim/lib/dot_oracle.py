"""Integer reference of the fused dot-product step (docs/dot_product.md), vectorized with numba.

The proof's reference for ``hdl/dot_datapath.v`` (:mod:`sim.prove`), independent of the model
``lmul.fused_sum_bits``: it imports nothing of the project but :mod:`sim.lib.int_oracle`'s
rounder and multiplier. The window sum is formed exactly in 32-bit limbs held in int64 (enough
for ``ALIGN_BITS + 2 + ceil(log2(T))`` <= 285 bits), reduced to its top 60 bits plus a sticky
bit (exact for one rounding to 24 bits) and rounded once (:func:`int_oracle._round_pack`).

Bit layouts: binary32 terms and results ``sign | exponent (8) | fraction (23)``; operands of the
(E, M) format ``sign | exponent (E) | mantissa (M)``, IEEE encodings, canonical NaN sign 0,
exponent all ones, mantissa MSB only (``0x7FC00000`` in binary32).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.lib.int_oracle import _round_pack, mul_reference

__all__ = ["EXACT_ALIGN_BITS", "dot_reference", "fused_sum_reference", "widen_reference"]

#: Window width from which no binary32 term loses a bit (127 + 149).
EXACT_ALIGN_BITS = 276
_LIMBS = 12  # 384 bits: the 285-bit sum plus a spill limb for any term's 55-bit placement
_QNAN = 0x7FC00000
_MASK32 = (1 << 32) - 1


@njit(cache=True, nogil=True)
def _fused_kernel(terms: np.ndarray, align: int, out: np.ndarray) -> None:
    n, t = terms.shape
    acc = np.zeros(_LIMBS + 2, dtype=np.int64)
    for i in range(n):
        nan = False
        pinf = False
        ninf = False
        all_zero = True
        all_neg = True
        emax = 1
        for j in range(t):
            x = np.int64(terms[i, j])
            e = (x >> 23) & 0xFF
            f = x & 0x7FFFFF
            s = (x >> 31) & 1
            if e == 0xFF:
                if f != 0:
                    nan = True
                elif s:
                    ninf = True
                else:
                    pinf = True
            if e != 0 or f != 0:
                all_zero = False
            if s == 0:
                all_neg = False
            if e > emax:
                emax = e
        if nan or (pinf and ninf):
            out[i] = _QNAN
            continue
        if pinf:
            out[i] = 0x7F800000
            continue
        if ninf:
            out[i] = 0xFF800000
            continue
        if all_zero:
            out[i] = 0x80000000 if all_neg else 0
            continue
        acc[:] = 0
        for j in range(t):
            x = np.int64(terms[i, j])
            e = (x >> 23) & 0xFF
            f = x & 0x7FFFFF
            sig = f if e == 0 else f | (1 << 23)
            ee = 1 if e == 0 else e
            if sig == 0:
                continue
            sh = align + ee - emax - 23  # m = floor(sig * 2^sh), truncation toward zero
            neg = (x >> 31) & 1
            if sh >= 0:
                limb = sh >> 5
                v = sig << (sh & 31)
                lo = v & _MASK32
                hi = v >> 32
                if neg:
                    acc[limb] -= lo
                    acc[limb + 1] -= hi
                else:
                    acc[limb] += lo
                    acc[limb + 1] += hi
            elif -sh < 24:
                v = sig >> (-sh)
                if neg:
                    acc[0] -= v
                else:
                    acc[0] += v
        # Carries: every limb but the top one into 0 .. 2^32-1 (arithmetic shifts floor).
        for k in range(_LIMBS + 1):
            c = acc[k] >> 32
            acc[k] -= c << 32
            acc[k + 1] += c
        negative = acc[_LIMBS + 1] < 0
        if negative:
            # Two's-complement negation across the limbs.
            carry = 1
            for k in range(_LIMBS + 2):
                v = (_MASK32 - acc[k]) + carry
                acc[k] = v & _MASK32
                carry = v >> 32
        top = -1
        for k in range(_LIMBS + 1, -1, -1):
            if acc[k] != 0:
                top = k
                break
        if top < 0:
            out[i] = 0  # exact cancellation (or everything truncated away): +0
            continue
        v = acc[top]
        nbits = 32 * top
        while v > 0:
            v >>= 1
            nbits += 1
        exp = emax - 127 - align
        if nbits <= 62:
            mag = acc[0] | (acc[1] << 32) if top >= 1 else acc[0]
        else:
            # Keep the top 60 bits and a sticky bit for everything below them.
            cut = nbits - 60
            lo_limb = cut >> 5
            off = cut & 31
            mag = acc[lo_limb] >> off
            mag |= acc[lo_limb + 1] << (32 - off)
            if off > 4:
                mag |= acc[lo_limb + 2] << (64 - off)
            mag &= (np.int64(1) << 60) - 1
            sticky = (acc[lo_limb] & ((np.int64(1) << off) - 1)) != 0
            for k in range(lo_limb):
                if acc[k] != 0:
                    sticky = True
            mag = (mag << 1) | np.int64(sticky)
            exp += cut - 1
        out[i] = _round_pack(np.int64(negative), mag, exp, 8, 23, 1)


@njit(cache=True, nogil=True)
def _widen_kernel(x: np.ndarray, out: np.ndarray, ebits: int, man: int) -> None:
    emaxf = (1 << ebits) - 1
    bias = (1 << (ebits - 1)) - 1
    for i in range(x.size):
        v = np.int64(x[i])
        s = (v >> (ebits + man)) & 1
        e = (v >> man) & emaxf
        f = v & ((1 << man) - 1)
        if e == emaxf:
            out[i] = _QNAN if f != 0 else (s << 31) | 0x7F800000
            continue
        if e == 0 and f == 0:
            out[i] = s << 31
            continue
        sig = f if e == 0 else f | (1 << man)
        # value = sig * 2^(max(e, 1) - bias - man), exactly representable in binary32.
        out[i] = _round_pack(s, sig, max(e, 1) - bias - man, 8, 23, 1)


def _uint_array(x: object, name: str, bits: int) -> np.ndarray:
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer array of bit patterns, got {arr.dtype}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >> bits):
        raise ValueError(f"{name} has values outside 0..2**{bits}-1")
    return arr.astype(np.int64)


def _check_align(align_bits: int) -> int:
    if isinstance(align_bits, bool) or not isinstance(align_bits, (int, np.integer)) or not (
            1 <= int(align_bits) <= EXACT_ALIGN_BITS):
        raise ValueError(f"align_bits must be an int 1..{EXACT_ALIGN_BITS}, got {align_bits!r}")
    return int(align_bits)


def fused_sum_reference(terms: object, align_bits: int) -> np.ndarray:
    """The fused step on binary32 terms: ``terms`` uint [n, T] (T >= 1) -> uint32 [n].

    Specials (NaN, +Inf with -Inf -> ``0x7FC00000``, else Inf), the all-zero sign rule, each
    magnitude truncated toward zero to a multiple of ``u = 2^(emax - 127 - align_bits)``, the exact
    signed sum, +0 for a zero sum, else RNE to binary32 (subnormals kept, overflow to Inf).
    """
    align = _check_align(align_bits)
    arr = _uint_array(terms, "terms", 32)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"terms must have shape [n, T] with T >= 1, got {arr.shape}")
    out = np.empty(arr.shape[0], dtype=np.int64)
    _fused_kernel(np.ascontiguousarray(arr), align, out)
    return out.astype(np.uint32)


def widen_reference(bits: object, exp_bits: int, man_bits: int) -> np.ndarray:
    """Exact widening of (E, M) bit patterns (E <= 8, M <= 23) to binary32 bits (uint32);
    NaN -> ``0x7FC00000``."""
    if not (2 <= exp_bits <= 8 and 1 <= man_bits <= 23):
        raise ValueError(f"widen_reference needs E 2..8 and M 1..23, got E={exp_bits} "
                         f"M={man_bits}")
    arr = _uint_array(bits, "bits", 1 + exp_bits + man_bits).reshape(-1)
    out = np.empty(arr.size, dtype=np.int64)
    _widen_kernel(arr, out, exp_bits, man_bits)
    return out.astype(np.uint32).reshape(np.shape(bits))


def dot_reference(a: object, b: object, acc: object, exp_bits: int, man_bits: int,
                  align_bits: int, products: object | None = None,
                  subnormals: bool = True) -> np.ndarray:
    """One fused step per row: ``acc`` uint32 [n], ``a``/``b`` [n, K] (E, M) bit patterns.

    The products are ``products`` [n, K] (format bits, e.g. the model's L-Mul) when given, else
    the exact IEEE products rounded to the format (:func:`int_oracle.mul_reference`, the
    ``fp_mul`` of ``MULTIPLIER = 1``); they are widened exactly and summed with ``acc`` as term 0.
    """
    a64 = np.asarray(a)
    if a64.ndim != 2 or np.shape(b) != a64.shape:
        raise ValueError(f"a and b must have the same shape [n, K], got {a64.shape} and "
                         f"{np.shape(b)}")
    accv = _uint_array(acc, "acc", 32).reshape(-1)
    if accv.size != a64.shape[0]:
        raise ValueError(f"acc has {accv.size} elements, expected {a64.shape[0]}")
    if products is None:
        products = mul_reference(a64.reshape(-1), np.asarray(b).reshape(-1), exp_bits, man_bits,
                                 subnormals).reshape(a64.shape)
    wide = widen_reference(products, exp_bits, man_bits)
    terms = np.concatenate([accv.astype(np.uint32)[:, None], wide], axis=1)
    return fused_sum_reference(terms, align_bits)
