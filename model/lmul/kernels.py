"""Numba kernels behind :mod:`lmul.matmul`: the bits of :mod:`lmul.core` and :mod:`lmul.reference`.

Nothing here is public API; :mod:`lmul.matmul` validates arguments and calls these. Every kernel
is ``@njit(cache=True)`` without ``fastmath``: float32 additions and multiplications are single
IEEE operations in program order, and each output's accumulator sees its ``k`` terms in order
(vectorization runs across outputs ``n``, never across ``k``), so the accumulation order of the
MAC array is kept exactly.

Representation: bit patterns of a format ``(E, M)`` are int32 ``sign | exponent | mantissa``
(for E + M = 31 the sign lands in int32's sign bit); float32 values become their IEEE bits where
integer tricks need them (:func:`_f32_bits` / :func:`_bits_f32` are free bitcasts). Numba types
integer arithmetic as int64; the hot loops cast every intermediate back to int32 (``_i32``) so
LLVM vectorizes them 8 lanes wide. Every such value provably fits in 32 bits (ranges are noted
where it is not obvious); the int32-only fast loops are used for E + M <= 29, wider formats take
the int64 scalar path. Format parameters travel in one int64 array (``_P_*`` indices), so every
kernel has exactly one type signature (one compilation, cached on disk).
"""

from __future__ import annotations

import os

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic


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
_P_LEN = 6

# Multiplier codes shared with lmul.matmul.
MUL_LMUL = 0
MUL_EXACT = 1
MUL_SEED = 2

_i32 = np.int32
_F32_QNAN = 0x7FC00000
_F32_INF = 0x7F800000
_INT32_MIN = -(1 << 31)
# Widest E + M whose L-Mul field sums (plus offset and rebias) stay inside int32.
_FAST_FIELD_BITS = 29
# A B-operand field that makes every L-Mul field sum underflow (zero/subnormal operands).
_LMUL_FLUSH = -(1 << 31)
# A field that makes every seed-multiplier field sum land in its "underflow" class.
_SEED_FLUSH = -(1 << 16)


def make_params(exp_bits: int, man_bits: int, offset: int, saturate: bool, rne: bool) -> np.ndarray:
    """Pack a configuration into the int64 parameter array every kernel takes."""
    prm = np.zeros(_P_LEN, dtype=np.int64)
    prm[_P_E] = exp_bits
    prm[_P_M] = man_bits
    prm[_P_BIAS] = (1 << (exp_bits - 1)) - 1
    prm[_P_OFFSET] = offset
    prm[_P_SAT] = int(bool(saturate))
    prm[_P_RNE] = int(bool(rne))
    return prm


@intrinsic
def _f32_bits(typingctx, x):
    """IEEE bits of a float32 as an int32 (a free bitcast)."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, x):
    """The float32 whose IEEE bits are the low 32 bits of an integer (a free bitcast)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        v = args[0]
        if x.bitwidth > 32:
            v = builder.trunc(v, ir.IntType(32))
        elif x.bitwidth < 32:
            v = builder.zext(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())

    return types.float32(x), codegen


@intrinsic
def _f64_bits(typingctx, x):
    """IEEE bits of a float64 as int64 (a free bitcast)."""
    if x != types.float64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _sra(typingctx, x, s):
    """``x >> s`` as a 32-bit arithmetic shift (int32 result; 0 <= s < 32).

    Numba widens integer operands to 64 bits, and LLVM cannot narrow a variable right shift
    back to 32 bits by itself (it would need ``s < 32``); in 64-bit lanes the loops run at half
    the vector width.
    """
    if not isinstance(x, types.Integer) or not isinstance(s, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        def i32(v, ty):
            if ty.bitwidth > 32:
                return builder.trunc(v, ir.IntType(32))
            if ty.bitwidth < 32:
                return builder.sext(v, ir.IntType(32)) if ty.signed else \
                    builder.zext(v, ir.IntType(32))
            return v

        return builder.ashr(i32(args[0], x), i32(args[1], s))

    return types.int32(x, s), codegen


# ----------------------------------------------------------------------------------------------
# Scalar building blocks (LLVM inlines them into the loops below).
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def _round32(u, man, emin, rne, inf_bits, maxfin, sign_bit, qnan):
    """Format bits (int32) of the float32 with IEEE bits ``u``: ``round_to_format_bits``.

    Values at or above the format's smallest normal keep a fixed quantum relative to their
    float32 encoding: rebias the exponent and drop ``23 - M`` bits (RNE adds half an LSB minus
    one plus the kept LSB first, so ties go to even and a carry bumps the exponent by itself).
    Smaller values lie on the format's subnormal grid, multiples of ``q = 2**(emin - M)``:
    ``|x| + C`` with ``C = 2**23 q`` rounds |x| to that grid (float32 addition is RNE and C's
    ulp is q), and the bits of the sum minus those of C count the quanta (2**M of them is the
    smallest normal, which encodes the same way). Truncation steps back one quantum where the
    rounded value exceeds |x|. Overflow gives Inf (RNE) or the largest finite value
    (truncate); NaN the canonical NaN; signs are kept. Branch-free, so the loops vectorize.
    """
    sh = _i32(23 - man)
    rmask = _i32(1) if sh > 0 else _i32(0)
    half = _i32(_i32(1 << sh) >> 1)
    rebias = _i32(_i32(126 + emin) << 23)  # (127 - bias) << 23, bias = 1 - emin
    thr = _i32(_i32(emin + 127) << 23)
    c_bits = _i32(_i32(emin - man + 150) << 23)
    c = _bits_f32(c_bits)
    a = _i32(u & 0x7FFFFFFF)
    neg = _i32(_i32(u >> 31) & 1)
    an = _i32(a - rebias)
    ax = _bits_f32(a)
    s = c + ax
    if rne != 0:
        mag = _sra(_i32(_i32(an + _i32(half - rmask)) + _i32(_sra(an, sh) & rmask)), sh)
        mag_sub = _i32(_f32_bits(s) - c_bits)
    else:
        mag = _sra(an, sh)
        mag_sub = _i32(_i32(_f32_bits(s) - c_bits) - _i32((s - c) > ax))
    if a < thr:
        mag = mag_sub
    if mag >= inf_bits:
        mag = inf_bits if rne != 0 else maxfin
    out = _i32(mag | _i32(neg * sign_bit))
    if a >= _F32_INF:
        out = _i32(_i32(neg * sign_bit) | inf_bits) if a == _F32_INF else qnan
    return out


@njit(cache=True)
def _widen32(x, ebits, man, inf_bits, field_mask, cadd, sub_scale):
    """IEEE float32 bits (int32) of format bits ``x``, exact; NaN -> ``0x7FC00000``.

    Normal values rebias the exponent (``cadd = (127 - bias) << M``, 0 when E = 8); with E = 8 the
    format's subnormals are float32 subnormals on the same grid; with E < 8 they are float32
    normals, computed as ``mantissa * 2**(emin - M)`` (``sub_scale``, exact).
    """
    neg = _i32(_sra(x, ebits + man) & 1)
    mag = _i32(x & field_mask)
    f = _i32(_i32(mag + cadd) << _i32(23 - man))
    if ebits != 8 and mag < _i32(1 << man):
        f = _f32_bits(np.float32(mag) * sub_scale)
    if mag >= inf_bits:
        f = _i32(_F32_INF) if mag == inf_bits else _i32(_F32_QNAN)
    if mag <= inf_bits:
        f = _i32(f | _i32(neg << 31))
    return f


@njit(cache=True)
def _lmul32(a, b, ebits, man, emaxf, k0, cadd, lo, hi, ovf):
    """The L-Mul unit on int32 format bits (E + M <= 29), returning float32 bits (int32).

    ``t = field(a) + field(b) + k0`` with ``k0 = OFFSET - (bias << M)``; exponent ``t >> M <= 0``
    (``t < lo``) underflows to zero, ``>= 2**E - 1`` (``t >= hi``) gives ``ovf`` (Inf or the
    largest finite value, as float32 bits); L-Mul results are never subnormal, so a normal result
    widens as ``(t + cadd) << (23 - M)``. Special operands follow the spec (``lmul_bits``).
    """
    field_mask = _i32(_i32(1 << (ebits + man)) - 1)
    man_mask = _i32(_i32(1 << man) - 1)
    ea = _i32(_sra(a, man) & emaxf)
    eb = _i32(_sra(b, man) & emaxf)
    t = _i32(_i32(_i32(a & field_mask) + _i32(b & field_mask)) + k0)
    r = _i32(_i32(t + cadd) << _i32(23 - man))
    if t < lo:
        r = _i32(0)
    if t >= hi:
        r = ovf
    a_zero = ea == 0
    b_zero = eb == 0
    a_spec = ea == emaxf
    b_spec = eb == emaxf
    if a_zero | b_zero:
        r = _i32(0)
    if a_spec | b_spec:
        r = _i32(_F32_INF)
    r = _i32(r | _i32(_sra(_i32(a ^ b), ebits + man) << 31))
    a_nan = a_spec & (_i32(a & man_mask) != 0)
    b_nan = b_spec & (_i32(b & man_mask) != 0)
    if a_nan | b_nan | (a_spec & b_zero) | (b_spec & a_zero):
        r = _i32(_F32_QNAN)
    return r


@njit(cache=True)
def _lmul64(a, b, ebits, man, bias, offset, sat):
    """The L-Mul unit on format bits in int64 (any format), returning format bits.

    The general path: rows of B holding Inf/NaN, and formats with E + M > 29.
    """
    a = np.int64(a) & ((1 << (1 + ebits + man)) - 1)
    b = np.int64(b) & ((1 << (1 + ebits + man)) - 1)
    emaxf = (1 << ebits) - 1
    man_mask = (1 << man) - 1
    field_mask = (1 << (ebits + man)) - 1
    sign_bit = 1 << (ebits + man)
    inf_bits = emaxf << man
    ea = (a >> man) & emaxf
    eb = (b >> man) & emaxf
    f = (a & field_mask) + (b & field_mask) - (bias << man) + offset
    fe = f >> man
    if fe <= 0:
        mag = 0
    elif fe >= emaxf:
        mag = inf_bits - 1 if sat != 0 else inf_bits
    else:
        mag = f
    if ea == 0 or eb == 0:
        mag = 0
    if ea == emaxf or eb == emaxf:
        mag = inf_bits
    out = ((a ^ b) & sign_bit) | mag
    a_nan = ea == emaxf and (a & man_mask) != 0
    b_nan = eb == emaxf and (b & man_mask) != 0
    if a_nan or b_nan or (ea == emaxf and eb == 0) or (eb == emaxf and ea == 0):
        out = inf_bits | (1 << (man - 1))
    return out


@njit(cache=True)
def _round_f64_rne(u, man, emin, inf_bits, sign_bit, qnan):
    """Format bits (int64; RNE, overflow to Inf) of the float64 with IEEE bits ``u``."""
    a = u & 0x7FFFFFFFFFFFFFFF
    neg = (u >> 63) & 1
    e64 = a >> 52
    frac = a & 0xFFFFFFFFFFFFF
    sig = frac | 0x10000000000000 if e64 != 0 else frac
    e = max(e64, 1) - 1023
    e_eff = max(e, emin)
    # A 53-bit significand shifted by >= 55 rounds to 0 either way.
    shift = min(52 - man + (e_eff - e), 60)
    r = sig >> shift
    rem = sig & ((1 << shift) - 1)
    half = (1 << shift) >> 1
    if shift > 0 and (rem > half or (rem == half and (r & 1) == 1)):
        r += 1
    mag = ((e_eff - emin) << man) + r
    if mag >= inf_bits:
        mag = inf_bits
    out = mag | (neg * sign_bit)
    if e64 == 0x7FF:
        out = (neg * sign_bit) | inf_bits if frac == 0 else qnan
    return out


@njit(cache=True)
def _exact64(x, y, ebits, man, emin, inf_bits, field_mask, cadd, sub_scale):
    """Exact product of two float32 format values rounded RNE to the format, as float32 bits.

    Formed in float64 (exact: <= 48 significant bits, exponents far inside float64's range) and
    rounded once, so nothing is rounded twice.
    """
    sign_bit = 1 << (ebits + man)
    qnan = inf_bits | (1 << (man - 1))
    p = np.float64(x) * np.float64(y)
    bits = _round_f64_rne(_f64_bits(p), man, emin, inf_bits, sign_bit, qnan)
    return _widen32(bits, ebits, man, inf_bits, field_mask, cadd, sub_scale)


@njit(cache=True)
def _rne_e8(u, rnd, sh, keep):
    """Round float32 bits ``u`` to an E = 8 format with RNE, as float32 bits (NaN canonical).

    Add half an LSB minus one plus the LSB itself, then clear the dropped bits: the carry walks
    into the exponent (and to Inf) by itself; subnormals share float32's grid. The magnitude
    plus ``rnd + 1`` stays below 2**31 for every non-NaN ``u``, so no carry reaches the sign.
    """
    r = _i32(_i32(_i32(u + rnd) + _i32(_sra(u, sh) & 1)) & keep)
    if _i32(u & 0x7FFFFFFF) > _F32_INF:
        r = _i32(_F32_QNAN)
    return r


@njit(cache=True)
def _seed32(ua, ub):
    """The seed notebook's multiplier on float32 IEEE bits ``ua``, ``ub`` (``seed_lmul``).

    ``r / 32`` and ``r / 64`` are computed as ``r * 2**-5`` and ``r * 2**-6``: division by a power
    of two and multiplication by its exact reciprocal round the same real number, so the bits
    are identical (subnormal, Inf and NaN cases included), and multiplication is much cheaper.
    """
    ha = _i32(_i32(ua >> 16) & 0xFFFF)
    hb = _i32(_i32(ub >> 16) & 0xFFFF)
    fa = _i32(ha & 0x7FFF)
    fb = _i32(hb & 0x7FFF)
    total = _i32(_i32(fa + fb) + 0x4080)
    fld = _i32(total & 0x7FFF)
    if total < 0x8000:
        fld = _i32(0)
    if total >= 0x10000:
        fld = _i32(0x7FFF)
    sign = _i32(_i32(ha ^ hb) & 0x8000)
    if fld == 0:
        sign = _i32(0)
    r = _bits_f32(_i32(_i32(sign | fld) << 16))
    p = (r + r * np.float32(0.03125)) + r * np.float32(0.015625)
    if ((fa >> 7) == 0) | ((fb >> 7) == 0):
        p = np.float32(0.0)
    return p


# ----------------------------------------------------------------------------------------------
# Operand preparation (once per call, O(M*K + K*N)).
# ----------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True)
def round_to_bits(x, prm, out):
    """Format bit patterns (int32) of a flat float32 array, ``round_to_format_bits`` semantics."""
    ebits, man, bias, rne = prm[_P_E], prm[_P_M], prm[_P_BIAS], prm[_P_RNE]
    man32 = _i32(man)
    emin = _i32(1 - bias)
    rne32 = _i32(rne)
    inf_bits = _i32(((1 << ebits) - 1) << man)
    maxfin = _i32(inf_bits - 1)
    sign_bit = _i32(1 << (ebits + man))
    qnan = _i32(inf_bits | (1 << (man - 1)))
    for i in prange(x.size):
        out[i] = _round32(_f32_bits(x[i]), man32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
    return out


# ----------------------------------------------------------------------------------------------
# Preparation of B (once per call, O(K*N), one parallel launch). A is rounded inside the product
# kernels, once per (m, k), so a call costs two launches.
# ----------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True)
def prep_lmul_b(bf, k_len, n_len, prm, bb, fb, bpre, special, fbmin, fbmax):
    """Round B (flat float32 [K*N]) to the format and split it for the L-Mul loops.

    Fills ``bb`` (format bits), ``fb = field - (bias << M) + offset`` for normal values and
    ``-2**31`` for zeros/subnormals (every sum then underflows: the flush);
    ``bpre = (sign << 31) + ((fb + ((127 - bias) << M)) << (23 - M))`` (mod 2**32), B's half of
    the single-add path (see :func:`matmul_lmul`); ``special[k] = 1`` where row k holds an Inf
    or NaN; ``fbmin[k]``/``fbmax[k]`` the extremes of row k's ``fb``. ``fb``, ``bpre`` and the
    extremes are meaningful for E + M <= 29 (the only case they are used). The loops are int32,
    branch-free and touch few arrays each, so they vectorize.
    """
    ebits, man, bias, offset, rne = prm[_P_E], prm[_P_M], prm[_P_BIAS], prm[_P_OFFSET], prm[_P_RNE]
    e32, m32, rne32 = _i32(ebits), _i32(man), _i32(rne)
    emin = _i32(1 - bias)
    emaxf = _i32((1 << ebits) - 1)
    inf_bits = _i32(((1 << ebits) - 1) << man)
    maxfin = _i32(inf_bits - 1)
    sign_bit = _i32(1 << (ebits + man))
    qnan = _i32(inf_bits | (1 << (man - 1)))
    field_mask = _i32((1 << (ebits + man)) - 1)
    kb = _i32(offset - (bias << man))
    cadd = _i32((127 - bias) << man)
    sh = _i32(23 - man)
    for k in prange(k_len):
        row = k * n_len
        bfr = bf[row:row + n_len]
        bbr = bb[row:row + n_len]
        for n in range(n_len):
            bbr[n] = _round32(_f32_bits(bfr[n]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
        fbr = fb[row:row + n_len]
        bpr = bpre[row:row + n_len]
        flag = _i32(0)
        lo = _i32(0x7FFFFFFF)
        hi = _i32(_INT32_MIN)
        for n in range(n_len):
            b = bbr[n]
            e = _i32(_sra(b, m32) & emaxf)
            f = _i32(_i32(b & field_mask) + kb)
            if e == 0:
                f = _i32(_LMUL_FLUSH)
            fbr[n] = f
            bpr[n] = _i32(_i32(_i32(_sra(b, e32 + m32) & 1) << 31) + _i32(_i32(f + cadd) << sh))
            lo = min(lo, f)
            hi = max(hi, f)
            flag |= _i32(e == emaxf)
        special[k] = flag
        fbmin[k] = lo
        fbmax[k] = hi


@njit(parallel=True, cache=True)
def prep_exact_b(bf, k_len, n_len, prm, vb, minabs):
    """Round B (flat float32 [K*N]) to the format and widen it back: ``vb`` = B's format values.

    ``minabs[k]`` = smallest nonzero ``|vb|`` of row k (Inf when the row has none), which lets
    :func:`matmul_exact` prove that no product of a row falls below 2**-126. The minimum runs on
    the magnitudes' bits (integer order = value order for non-negative floats), which
    vectorizes where a float minimum would not.
    """
    ebits, man, bias, rne = prm[_P_E], prm[_P_M], prm[_P_BIAS], prm[_P_RNE]
    e32, m32, rne32 = _i32(ebits), _i32(man), _i32(rne)
    emin = _i32(1 - bias)
    inf_bits = _i32(((1 << ebits) - 1) << man)
    maxfin = _i32(inf_bits - 1)
    sign_bit = _i32(1 << (ebits + man))
    qnan = _i32(inf_bits | (1 << (man - 1)))
    field_mask = _i32((1 << (ebits + man)) - 1)
    cadd = _i32((127 - bias) << man)
    sub_scale = np.float32(2.0 ** (1 - bias - man))
    for k in prange(k_len):
        row = k * n_len
        bfr = bf[row:row + n_len]
        vbr = vb[row:row + n_len]
        cur = _i32(_F32_INF)
        for n in range(n_len):
            b = _round32(_f32_bits(bfr[n]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            v = _widen32(b, e32, m32, inf_bits, field_mask, cadd, sub_scale)
            vbr[n] = _bits_f32(v)
            mag = _i32(v & 0x7FFFFFFF)
            if mag == 0 or mag > _F32_INF:
                mag = _i32(_F32_INF)
            cur = min(cur, mag)
        minabs[k] = _bits_f32(cur)


@njit(parallel=True, cache=True)
def prep_seed_b(bf, k_len, n_len, hb, bpre, fbmin, fbmax):
    """B (flat float32 [K*N]) split for the seed multiplier's loops.

    ``hb``: the top 16 bits (the BF16 truncation); ``bpre = (sign << 31) + ((f + 0x4080 -
    0x8000) << 16)`` (mod 2**32) with ``f`` the exponent|mantissa field, B's half of the
    single-add path (see :func:`matmul_seed`); ``fbmin[k]``/``fbmax[k]`` row k's extremes of
    ``f``, where a zero exponent field counts as ``-2**16`` (its products are +0.0, so such a row
    never takes the single-add path).
    """
    for k in prange(k_len):
        row = k * n_len
        bfr = bf[row:row + n_len]
        hbr = hb[row:row + n_len]
        bpr = bpre[row:row + n_len]
        lo = _i32(0x7FFFFFFF)
        hi = _i32(_INT32_MIN)
        for n in range(n_len):
            h = _i32(_i32(_f32_bits(bfr[n]) >> 16) & 0xFFFF)
            f = _i32(h & 0x7FFF)
            if (f >> 7) == 0:
                f = _i32(_SEED_FLUSH)
            hbr[n] = h
            bpr[n] = _i32(_i32(_i32(h & 0x8000) << 16) + _i32(_i32(f + (0x4080 - 0x8000)) << 16))
            lo = min(lo, f)
            hi = max(hi, f)
        fbmin[k] = lo
        fbmax[k] = hi


# ----------------------------------------------------------------------------------------------
# Matrix products: out[m, n] = bias[n] + sum_k p(A[m, k], B[k, n]), k in order, binary32 adds.
# Work is split into tiles (row m, column chunk); each tile accumulates in its slice of out and
# finally replaces NaNs by the canonical 0x7FC00000.
# ----------------------------------------------------------------------------------------------


@njit(cache=True)
def _canonical_nans(acc):
    qnan = _bits_f32(_i32(_F32_QNAN))
    for j in range(acc.size):
        if acc[j] != acc[j]:
            acc[j] = qnan


@njit(parallel=True, cache=True)
def matmul_lmul(af, bb, fb, bpre, special, fbmin, fbmax, bias, m_len, k_len, n_len,
                chunk, prm, out):
    """L-Mul matrix product of A (flat float32 [M*K]) and B prepared by :func:`prep_lmul_b`.

    Per (m, k), A's element is rounded to the format, then on the row chunk of B:

    * single-add path (E + M <= 29, A element normal, row k free of Inf/NaN/zero/subnormal, and
      ``fbmin``/``fbmax`` prove no product of the row under- or overflows): every product's
      float32 bits are ``(sa << 31) + (fa << (23 - M)) + bpre`` mod 2**32. The magnitude
      ``(t + ((127 - bias) << M)) << (23 - M)`` of a normal L-Mul result is below 2**31, so the
      two sign bits add into bit 31 as their XOR. L-Mul results are never subnormal.
    * fast path (same, but some products may under/overflow or B is zero/subnormal):
      ``t = field(a) + fb``; ``t < 2**M`` underflows, ``t >= (2**E - 1) << M`` overflows.
    * zero/subnormal A element: signed zeros (they can still flip a -0 sum).
    * everything else (Inf/NaN operands): the full spec per product, :func:`_lmul32` (int32,
      vectorized) when E + M <= 29, else :func:`_lmul64`.
    """
    ebits, man, bias_e = prm[_P_E], prm[_P_M], prm[_P_BIAS]
    offset, sat, rne = prm[_P_OFFSET], prm[_P_SAT], prm[_P_RNE]
    emaxf = (1 << ebits) - 1
    inf_bits = emaxf << man
    field_mask = (1 << (ebits + man)) - 1
    fast = ebits + man <= _FAST_FIELD_BITS
    cadd = _i32((127 - bias_e) << man)
    sh = _i32(23 - man)
    lo = _i32(1 << man)
    hi = _i32(inf_bits)
    ovf = _i32(((inf_bits - 1 + cadd) << sh) if sat != 0 else _F32_INF)
    sub_scale = np.float32(2.0 ** (1 - bias_e - man))
    e32, m32, emaxf32, rne32 = _i32(ebits), _i32(man), _i32(emaxf), _i32(rne)
    emin = _i32(1 - bias_e)
    sign_bit = _i32(1 << (ebits + man))
    qnan = _i32(inf_bits | (1 << (man - 1)))
    k0 = _i32(offset - (bias_e << man)) if fast else _i32(0)
    sbit = _i32(ebits + man)  # position of the sign bit in format bits
    n_chunks = (n_len + chunk - 1) // chunk
    for tile in prange(m_len * n_chunks):
        m = tile // n_chunks
        n0 = (tile % n_chunks) * chunk
        n1 = min(n0 + chunk, n_len)
        acc = out[m * n_len + n0:m * n_len + n1]
        acc[:] = bias[n0:n1]
        for k in range(k_len):
            a_i = _round32(_f32_bits(af[m * k_len + k]), m32, emin, rne32, _i32(inf_bits),
                           _i32(inf_bits - 1), sign_bit, qnan)
            a = np.int64(a_i)
            ea = (a >> man) & emaxf
            sa = _i32(_INT32_MIN) if ((a >> (ebits + man)) & 1) != 0 else _i32(0)
            row = k * n_len
            if (fast and special[k] == 0 and ea != 0 and ea != emaxf
                    and (a & field_mask) + fbmin[k] >= lo and (a & field_mask) + fbmax[k] < hi):
                a32 = _i32(sa + _i32((a & field_mask) << sh))
                bpr = bpre[row + n0:row + n1]
                for j in range(acc.size):
                    acc[j] += _bits_f32(_i32(a32 + bpr[j]))
            elif fast and special[k] == 0 and ea != 0 and ea != emaxf:
                fa = _i32(a & field_mask)
                fbr = fb[row + n0:row + n1]
                bbr = bb[row + n0:row + n1]
                for j in range(acc.size):
                    t = _i32(fa + fbr[j])
                    r = _i32(_i32(t + cadd) << sh)
                    if t < lo:
                        r = _i32(0)
                    if t >= hi:
                        r = ovf
                    sgn = _i32(_sra(bbr[j], sbit) << 31)
                    acc[j] += _bits_f32(_i32(r | _i32(sa ^ sgn)))
            elif special[k] == 0 and ea == 0:
                # Zero/subnormal a times finite b: a zero of sign sa^sb (it can flip a -0 sum).
                bbr = bb[row + n0:row + n1]
                for j in range(acc.size):
                    acc[j] += _bits_f32(_i32(sa ^ _i32(_sra(bbr[j], sbit) << 31)))
            elif fast:
                bbr = bb[row + n0:row + n1]
                for j in range(acc.size):
                    acc[j] += _bits_f32(_lmul32(a_i, bbr[j], e32, m32, emaxf32, k0, cadd, lo, hi,
                                                ovf))
            else:
                bbr = bb[row + n0:row + n1]
                for j in range(acc.size):
                    r = _lmul64(a, bbr[j], ebits, man, bias_e, offset, sat)
                    acc[j] += _bits_f32(_widen32(r, e32, m32, _i32(inf_bits),
                                                 _i32(field_mask), cadd, sub_scale))
        _canonical_nans(acc)


@njit(parallel=True, cache=True)
def matmul_exact(af, vb, minabs, bias, m_len, k_len, n_len, chunk, prm, out):
    """Exact-multiplier product of A (flat float32 [M*K]) and B prepared by :func:`prep_exact_b`.

    Each product is the exact product of the format values rounded RNE to the format. For
    M <= 11 the float32 product of two format values is exact whenever it is a normal float32
    (<= 24 significant bits), so it is rounded from its float32 bits with integer operations
    (E = 8: :func:`_rne_e8`; E < 8: :func:`_round32`). With E = 8 a nonzero product below
    2**-126 may have been rounded by the float32 multiply already; ``minabs`` proves per (m, k)
    that no product of the row gets there, and rows where it cannot take a loop that redoes such
    products from float64. (With E < 8, every product below 2**-126 rounds to a signed zero
    either way.) For M > 11 every product goes through float64.
    """
    ebits, man, bias_e, rne = prm[_P_E], prm[_P_M], prm[_P_BIAS], prm[_P_RNE]
    e32, m32, rne32 = _i32(ebits), _i32(man), _i32(rne)
    emin = _i32(1 - bias_e)
    inf_bits = _i32(((1 << ebits) - 1) << man)
    field_mask = _i32((1 << (ebits + man)) - 1)
    sign_bit = _i32(1 << (ebits + man))
    qnan = _i32(inf_bits | (1 << (man - 1)))
    cadd = _i32((127 - bias_e) << man)
    sub_scale = np.float32(2.0 ** (1 - bias_e - man))
    sh = _i32(23 - man)
    rnd = _i32((1 << (23 - man - 1)) - 1) if man < 23 else _i32(0)
    keep = _i32(-(1 << (23 - man)))
    tiny = 2.0 ** -126
    n_chunks = (n_len + chunk - 1) // chunk
    for tile in prange(m_len * n_chunks):
        m = tile // n_chunks
        n0 = (tile % n_chunks) * chunk
        n1 = min(n0 + chunk, n_len)
        acc = out[m * n_len + n0:m * n_len + n1]
        acc[:] = bias[n0:n1]
        for k in range(k_len):
            a = _round32(_f32_bits(af[m * k_len + k]), m32, emin, rne32, inf_bits,
                         _i32(inf_bits - 1), sign_bit, qnan)
            x = _bits_f32(_widen32(a, e32, m32, inf_bits, field_mask, cadd, sub_scale))
            row = k * n_len
            vbr = vb[row + n0:row + n1]
            if man <= 11 and ebits == 8:
                if x == 0 or abs(np.float64(x)) * np.float64(minabs[k]) >= tiny:
                    for j in range(acc.size):
                        acc[j] += _bits_f32(_rne_e8(_f32_bits(x * vbr[j]), rnd, sh, keep))
                else:
                    for j in range(acc.size):
                        u = _f32_bits(x * vbr[j])
                        if _i32(u & _F32_INF) == 0 and vbr[j] != 0:
                            acc[j] += _bits_f32(_exact64(x, vbr[j], ebits, man, 1 - bias_e,
                                                         ((1 << ebits) - 1) << man, field_mask,
                                                         cadd, sub_scale))
                        else:
                            acc[j] += _bits_f32(_rne_e8(u, rnd, sh, keep))
            elif man <= 11:
                for j in range(acc.size):
                    r = _round32(_f32_bits(x * vbr[j]), m32, emin, _i32(1), inf_bits,
                                 _i32(inf_bits - 1), sign_bit, qnan)
                    acc[j] += _bits_f32(_widen32(r, e32, m32, inf_bits, field_mask, cadd,
                                                 sub_scale))
            else:
                for j in range(acc.size):
                    acc[j] += _bits_f32(_exact64(x, vbr[j], ebits, man, 1 - bias_e,
                                                 ((1 << ebits) - 1) << man, field_mask, cadd,
                                                 sub_scale))
        _canonical_nans(acc)


@njit(parallel=True, cache=True)
def matmul_seed(af, hb, bpre, fbmin, fbmax, bias, m_len, k_len, n_len, chunk, out):
    """Seed-multiplier product of A (flat float32 [M*K]) and B prepared by :func:`prep_seed_b`.

    Where ``fbmin``/``fbmax`` prove that every field sum of the row lands in the "normal" class
    with a nonzero field (``0x8000 < fa + fb + 0x4080 < 0x10000``), the BF16 result bits are
    ``(sa << 16) + (fa << 16) + bpre`` mod 2**32 (the sign bits add into bit 31 as their XOR);
    otherwise the classification runs per product. The scaling ``(r + r/32) + r/64`` is
    computed as in :func:`_seed32`.
    """
    c5 = np.float32(0.03125)
    c6 = np.float32(0.015625)
    zero = np.float32(0.0)
    n_chunks = (n_len + chunk - 1) // chunk
    for tile in prange(m_len * n_chunks):
        m = tile // n_chunks
        n0 = (tile % n_chunks) * chunk
        n1 = min(n0 + chunk, n_len)
        acc = out[m * n_len + n0:m * n_len + n1]
        acc[:] = bias[n0:n1]
        for k in range(k_len):
            h = np.int64(_f32_bits(af[m * k_len + k]) >> 16) & 0xFFFF
            fa = h & 0x7FFF
            sa = h & 0x8000
            if (fa >> 7) == 0:
                # Flushed a: every product is +0.0 (which still turns a -0 sum into +0).
                for j in range(acc.size):
                    acc[j] += zero
                continue
            row = k * n_len
            if fa + fbmin[k] + 0x4080 > 0x8000 and fa + fbmax[k] + 0x4080 < 0x10000:
                a32 = _i32(((sa << 16) + (fa << 16)) & 0xFFFFFFFF)
                bpr = bpre[row + n0:row + n1]
                for j in range(acc.size):
                    r = _bits_f32(_i32(a32 + bpr[j]))
                    acc[j] += (r + r * c5) + r * c6
                continue
            fa4 = _i32(fa + 0x4080)
            sa32 = _i32(sa)
            hbr = hb[row + n0:row + n1]
            for j in range(acc.size):
                fbj = _i32(hbr[j] & 0x7FFF)
                total = _i32(fa4 + fbj)
                if (fbj >> 7) == 0:
                    total = _i32(0)  # flushed b: the "underflow" class, +0.0
                fld = _i32(total & 0x7FFF)
                if total < 0x8000:
                    fld = _i32(0)
                if total >= 0x10000:
                    fld = _i32(0x7FFF)
                sign = _i32(sa32 ^ _i32(hbr[j] & 0x8000))
                if fld == 0:
                    sign = _i32(0)
                r = _bits_f32(_i32(_i32(sign | fld) << 16))
                acc[j] += (r + r * c5) + r * c6
        _canonical_nans(acc)


# ----------------------------------------------------------------------------------------------
# Elementwise products on flat, equally long float32 arrays.
# ----------------------------------------------------------------------------------------------


@njit(parallel=True, cache=True)
def elementwise(x, y, mode, prm, out):
    """``mode`` MUL_LMUL: L-Mul; MUL_EXACT: exact product in the format; MUL_SEED: seed.

    Inputs are rounded to the format per ``prm`` (not for the seed multiplier); results are
    widened to float32 with canonical NaNs (the seed multiplier's NaNs keep the payload its float32
    arithmetic gives, as ``seed_lmul`` does).
    """
    ebits, man, bias_e = prm[_P_E], prm[_P_M], prm[_P_BIAS]
    offset, sat, rne = prm[_P_OFFSET], prm[_P_SAT], prm[_P_RNE]
    e32, m32, rne32 = _i32(ebits), _i32(man), _i32(rne)
    emin = _i32(1 - bias_e)
    emaxf = _i32((1 << ebits) - 1)
    inf_bits = _i32(((1 << ebits) - 1) << man)
    maxfin = _i32(inf_bits - 1)
    field_mask = _i32((1 << (ebits + man)) - 1)
    sign_bit = _i32(1 << (ebits + man))
    qnan = _i32(inf_bits | (1 << (man - 1)))
    cadd = _i32((127 - bias_e) << man)
    sub_scale = np.float32(2.0 ** (1 - bias_e - man))
    k0 = _i32(offset - (bias_e << man)) if ebits + man <= _FAST_FIELD_BITS else _i32(0)
    lo = _i32(1 << man)
    ovf = _i32(((inf_bits - 1 + cadd) << (23 - man)) if sat != 0 else _F32_INF)
    if mode == MUL_SEED:
        for i in prange(x.size):
            out[i] = _seed32(_f32_bits(x[i]), _f32_bits(y[i]))
    elif mode == MUL_LMUL and ebits + man <= _FAST_FIELD_BITS:
        for i in prange(x.size):
            a = _round32(_f32_bits(x[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            b = _round32(_f32_bits(y[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            out[i] = _bits_f32(_lmul32(a, b, e32, m32, emaxf, k0, cadd, lo, inf_bits, ovf))
    elif mode == MUL_LMUL:
        for i in prange(x.size):
            a = _round32(_f32_bits(x[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            b = _round32(_f32_bits(y[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            r = _lmul64(a, b, ebits, man, bias_e, offset, sat)
            out[i] = _bits_f32(_widen32(r, e32, m32, inf_bits, field_mask, cadd, sub_scale))
    elif man <= 11:
        # Exact products: the float32 product of two format values is exact when it is a normal
        # float32 (see matmul_exact); products left in the float32 subnormal range with E = 8
        # are counted and redone from float64 in a second pass.
        rnd = _i32((1 << (23 - man - 1)) - 1)
        sh = _i32(23 - man)
        keep = _i32(-(1 << (23 - man)))
        redo = 0
        for i in prange(x.size):
            a = _round32(_f32_bits(x[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            b = _round32(_f32_bits(y[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            va = _bits_f32(_widen32(a, e32, m32, inf_bits, field_mask, cadd, sub_scale))
            vb = _bits_f32(_widen32(b, e32, m32, inf_bits, field_mask, cadd, sub_scale))
            u = _f32_bits(va * vb)
            if ebits == 8:
                r = _rne_e8(u, rnd, sh, keep)
                redo += np.int64((_i32(u & _F32_INF) == 0) & (va != 0) & (vb != 0))
            else:
                r = _widen32(_round32(u, m32, emin, _i32(1), inf_bits, maxfin, sign_bit, qnan),
                             e32, m32, inf_bits, field_mask, cadd, sub_scale)
            out[i] = _bits_f32(r)
        if redo != 0:
            for i in prange(x.size):
                a = _round32(_f32_bits(x[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
                b = _round32(_f32_bits(y[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
                va = _bits_f32(_widen32(a, e32, m32, inf_bits, field_mask, cadd, sub_scale))
                vb = _bits_f32(_widen32(b, e32, m32, inf_bits, field_mask, cadd, sub_scale))
                if (_i32(_f32_bits(va * vb) & _F32_INF) == 0) & (va != 0) & (vb != 0):
                    out[i] = _bits_f32(_exact64(va, vb, ebits, man, 1 - bias_e,
                                                ((1 << ebits) - 1) << man, field_mask, cadd,
                                                sub_scale))
    else:
        for i in prange(x.size):
            a = _round32(_f32_bits(x[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            b = _round32(_f32_bits(y[i]), m32, emin, rne32, inf_bits, maxfin, sign_bit, qnan)
            va = _bits_f32(_widen32(a, e32, m32, inf_bits, field_mask, cadd, sub_scale))
            vb = _bits_f32(_widen32(b, e32, m32, inf_bits, field_mask, cadd, sub_scale))
            out[i] = _bits_f32(_exact64(va, vb, ebits, man, 1 - bias_e,
                                        ((1 << ebits) - 1) << man, field_mask, cadd, sub_scale))


def num_threads() -> int:
    """Threads numba's parallel loops use."""
    return int(numba.get_num_threads())
