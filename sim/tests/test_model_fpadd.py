"""Tests of ``lmul.fp_add_bits``, the bit-exact model of ``hdl/fp_add.v``.

References, all independent of the model: numpy float32 / float64 / float16 addition (the CPU's
IEEE adder, round to nearest even, subnormals kept), ``ml_dtypes.bfloat16``, and the exact sum
rounded to nearest even by the shared rational oracle ``sim/lib/oracle.py``. Random vectors use the
seed in ``COCOTB_RANDOM_SEED`` (default 1) and ``LMUL_VECTORS`` vectors per class (default
100,000).
"""

from __future__ import annotations

import functools

import ml_dtypes
import numpy as np
import pytest

from lmul import FP_ADD_EXP_BITS_RANGE, FP_ADD_MAN_BITS_RANGE, fp_add_bits
from sim.lib import oracle
from sim.lib.knobs import random_seed, vector_count

SEED = random_seed()
VECTORS = vector_count(100_000)


def _rng(salt: int) -> np.random.Generator:
    return np.random.default_rng([SEED, salt])


# --------------------------------------------------------------------------------------------
# Exact reference: the shared rational oracle (sim/lib/oracle.py), which imports nothing of lmul.


@functools.cache
def exact_add_table(e_w: int, m_w: int) -> np.ndarray:
    """Reference sums of every pattern pair, ``table[a, b]``, for a small format."""
    n = 1 << (1 + e_w + m_w)
    vals = [oracle.decode(x, e_w, m_w) for x in range(n)]
    table = np.empty((n, n), dtype=np.uint64)
    for i, va in enumerate(vals):
        for j, vb in enumerate(vals):
            table[i, j] = oracle.encode(oracle.add(va, vb), e_w, m_w)
    return table


def _all_pairs(e_w: int, m_w: int) -> tuple[np.ndarray, np.ndarray]:
    n = 1 << (1 + e_w + m_w)
    a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return a.ravel(), b.ravel()


def test_reference_sanity() -> None:
    """The exact reference itself, on hand-checked E4M3 sums (bias 7)."""
    one, two, half = 0x38, 0x40, 0x30
    table = exact_add_table(4, 3)
    assert table[one, one] == two
    assert table[one, half] == 0x3C  # 1.5
    assert table[0x38, 0x10] == 0x38  # 1 + 1/32 (a quarter ulp) -> 1
    assert table[0x38, 0x1C] == 0x39  # 1 + 3/32 -> 1.125
    assert table[0x39, 0x18] == 0x3A  # 1.125 + 1/16 = tie between 1.125 and 1.25 -> even 1.25
    assert table[0x38, 0x18] == 0x38  # 1 + 1/16 = tie between 1 and 1.125 -> even 1
    assert table[0x77, 0x77] == 0x78  # 240 + 240 overflows to +Inf
    assert table[0x01, 0x01] == 0x02  # subnormal + subnormal, exact
    assert table[0x07, 0x01] == 0x08  # largest subnormal + smallest -> smallest normal
    assert table[0x80, 0x80] == 0x80 and table[0x00, 0x80] == 0x00
    assert table[0x78, 0xF8] == 0x7C  # Inf - Inf -> canonical qNaN


@pytest.mark.parametrize("e_w,m_w", [(4, 3), (5, 2), (2, 1), (3, 2), (2, 4), (3, 1)])
def test_exhaustive_small_formats(e_w: int, m_w: int) -> None:
    """Every pattern pair of small formats equals the exact Fraction reference (E4M3: 65,536)."""
    a, b = _all_pairs(e_w, m_w)
    got = fp_add_bits(a, b, e_w, m_w)
    want = exact_add_table(e_w, m_w).ravel()
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, (
        f"E{e_w}M{m_w}: {bad.size} mismatches, first a={a[bad[0]]:#x} b={b[bad[0]]:#x} "
        f"got={int(got[bad[0]]):#x} want={int(want[bad[0]]):#x}")


# --------------------------------------------------------------------------------------------
# Against the CPU's IEEE adders


def _check_against(a: np.ndarray, b: np.ndarray, e_w: int, m_w: int, ftype: type,
                   utype: type) -> None:
    """Bit for bit on non-NaN results; NaN results must be the canonical quiet NaN."""
    got = fp_add_bits(a, b, e_w, m_w)
    assert got.dtype == np.dtype(utype)
    with np.errstate(over="ignore", invalid="ignore"):
        want = (a.astype(utype).view(ftype) + b.astype(utype).view(ftype)).view(utype)
    nan = np.isnan(want.view(ftype))
    qnan = (((1 << e_w) - 1) << m_w) | (1 << (m_w - 1))
    assert np.all(got[nan] == qnan), "NaN results must be the canonical quiet NaN"
    bad = np.flatnonzero(~nan & (got != want))
    assert bad.size == 0, (
        f"{bad.size} mismatches, first a={int(a[bad[0]]):#x} b={int(b[bad[0]]):#x} "
        f"got={int(got[bad[0]]):#x} want={int(want[bad[0]]):#x}")


def _fields(rng: np.random.Generator, n: int, e_w: int, m_w: int, exp_lo: int, exp_hi: int,
            ) -> np.ndarray:
    sign = rng.integers(0, 2, n, dtype=np.uint64)
    field = rng.integers(exp_lo, exp_hi + 1, n, dtype=np.uint64)
    man = rng.integers(0, 1 << m_w, n, dtype=np.uint64)
    return (sign << np.uint64(e_w + m_w)) | (field << np.uint64(m_w)) | man


def _targeted(rng: np.random.Generator, n: int, e_w: int, m_w: int) -> tuple[np.ndarray, ...]:
    """Cancellation, ties, subnormal boundary, overflow and special-value vectors."""
    top = (1 << e_w) - 2
    w = 1 + e_w + m_w
    sign_bit = np.uint64(1 << (w - 1))
    parts = []
    # Cancellation: b = -(a with its low mantissa bits scrambled), exponent equal or adjacent.
    a = _fields(rng, n, e_w, m_w, 1, top)
    low = rng.integers(0, m_w + 1, n).astype(np.uint64)
    scramble = rng.integers(0, 1 << m_w, n, dtype=np.uint64)
    scramble &= (np.uint64(1) << low) - np.uint64(1)
    step = rng.integers(-1, 2, n).astype(np.int64) << m_w
    b = ((a ^ scramble ^ sign_bit).astype(np.int64) + step).astype(np.uint64)
    ok = ((b >> np.uint64(m_w)) & np.uint64((1 << e_w) - 1)) <= top
    parts.append((a[ok], b[ok]))
    # Ties: the bits of b below a's LSB are exactly 100..0.
    d = rng.integers(1, m_w + 2, n).astype(np.uint64)
    ea = rng.integers(0, top + 1, n).astype(np.uint64) % np.uint64(top - m_w - 1) + d + np.uint64(1)
    sig_b = rng.integers(1 << m_w, 1 << (m_w + 1), n, dtype=np.uint64)
    sig_b = ((sig_b >> d) << d) | (np.uint64(1) << (d - np.uint64(1)))
    ma = rng.integers(0, 1 << m_w, n, dtype=np.uint64)
    sa = rng.integers(0, 2, n, dtype=np.uint64) << np.uint64(w - 1)
    sb = np.where(rng.random(n) < 0.7, sa, sa ^ sign_bit)
    a = sa | (ea << np.uint64(m_w)) | ma
    b = sb | ((ea - d) << np.uint64(m_w)) | (sig_b & np.uint64((1 << m_w) - 1))
    parts.append((a, b))
    # Subnormal / normal boundary.
    parts.append((_fields(rng, n, e_w, m_w, 0, 2), _fields(rng, n, e_w, m_w, 0, 2)))
    # Overflow edges: large + large, and max-ish + about half an ulp of the maximum.
    a = _fields(rng, n, e_w, m_w, top - 2, top)
    b = np.concatenate([_fields(rng, n // 2, e_w, m_w, top - 2, top),
                        _fields(rng, n - n // 2, e_w, m_w, top - m_w - 3, top - m_w)])
    b = (b & ~sign_bit) | (a & sign_bit)
    parts.append((a, b))
    # Special classes against everything.
    inf = (top + 1) << m_w
    specials = np.array([0, 1, (1 << m_w) - 1, 1 << m_w, inf - 1, inf, inf | 1,
                         inf | (1 << (m_w - 1)), (1 << (w - 1)) - 1], dtype=np.uint64)
    specials = np.concatenate([specials, specials | sign_bit])
    sa_, sb_ = np.meshgrid(specials, specials, indexing="ij")
    parts.append((sa_.ravel(), sb_.ravel()))
    rnd = rng.integers(0, 1 << 62, n, dtype=np.uint64) & np.uint64((1 << w) - 1)
    parts.append((rng.choice(specials, n), rnd))
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


@pytest.mark.parametrize("name,e_w,m_w,ftype,utype", [
    ("fp32", 8, 23, np.float32, np.uint32),
    ("fp64", 11, 52, np.float64, np.uint64),
    ("fp16", 5, 10, np.float16, np.uint16),
    ("bf16", 8, 7, ml_dtypes.bfloat16, np.uint16),
])
def test_against_hardware_float(name: str, e_w: int, m_w: int, ftype: type, utype: type) -> None:
    """Random bit patterns and targeted classes against numpy / ml_dtypes addition.

    numpy float16 and ml_dtypes bfloat16 add in float32 and round once more; float32 carries
    more than 2p + 2 bits for both, so that double rounding is innocuous and the results are the
    correctly rounded sums.
    """
    rng = _rng(e_w * 100 + m_w)
    w = 1 + e_w + m_w
    mask = np.uint64((1 << w) - 1)
    a = rng.integers(0, 1 << 63, VECTORS, dtype=np.uint64) * np.uint64(2) & mask
    a |= rng.integers(0, 2, VECTORS, dtype=np.uint64)
    b = rng.integers(0, 1 << 63, VECTORS, dtype=np.uint64) * np.uint64(2) & mask
    b |= rng.integers(0, 2, VECTORS, dtype=np.uint64)
    _check_against(a, b, e_w, m_w, ftype, utype)
    ta, tb = _targeted(rng, VECTORS // 5, e_w, m_w)
    _check_against(ta, tb, e_w, m_w, ftype, utype)
    _check_against(tb, ta, e_w, m_w, ftype, utype)


def test_fp32_tie_coverage() -> None:
    """The targeted generator really produces ties of both parities, and they round to even."""
    rng = _rng(7)
    a, b = _targeted(rng, 20_000, 8, 23)
    with np.errstate(invalid="ignore"):  # signalling NaNs quieten on widening
        fa = a.astype(np.uint32).view(np.float32).astype(np.float64)
        fb = b.astype(np.uint32).view(np.float32).astype(np.float64)
    ea = (a >> np.uint64(23)) & np.uint64(0xFF)
    eb = (b >> np.uint64(23)) & np.uint64(0xFF)
    # float64 holds the exact sum of two float32 whose exponents differ by less than 29.
    close = np.abs(ea.astype(np.int64) - eb.astype(np.int64)) < 29
    ok = np.isfinite(fa) & np.isfinite(fb) & close
    exact = np.where(ok, fa, 0) + np.where(ok, fb, 0)
    y = fp_add_bits(a, b).view(np.float32)
    ok &= np.isfinite(y)
    y64 = np.where(ok, y, 0).astype(np.float64)
    with np.errstate(over="ignore"):
        lo = np.where(y64 > exact, np.nextafter(y, np.float32(-np.inf)), y)
        hi = np.nextafter(lo, np.float32(np.inf))
    mid = (lo.astype(np.float64) + hi.astype(np.float64)) / 2
    tie = ok & (exact != lo.astype(np.float64)) & (mid == exact)
    lo_odd = (lo.view(np.uint32) & 1) == 1
    assert np.sum(tie & lo_odd) > 1000, "too few ties that round up"
    assert np.sum(tie & ~lo_odd) > 1000, "too few ties that round down"
    assert np.all((y.view(np.uint32)[tie] & 1) == 0), "a tie did not round to even"


# --------------------------------------------------------------------------------------------
# Specific semantics


FP32 = {"+0": 0x00000000, "-0": 0x80000000, "+1": 0x3F800000, "-1": 0xBF800000,
        "+inf": 0x7F800000, "-inf": 0xFF800000, "qnan": 0x7FC00000, "max": 0x7F7FFFFF,
        "min_sub": 0x00000001, "max_sub": 0x007FFFFF, "min_norm": 0x00800000}


@pytest.mark.parametrize("a,b,want", [
    ("+0", "-0", "+0"), ("-0", "+0", "+0"), ("-0", "-0", "-0"), ("+0", "+0", "+0"),
    ("+1", "-1", "+0"), ("-1", "+1", "+0"), ("+inf", "-inf", "qnan"), ("-inf", "+inf", "qnan"),
    ("+inf", "+inf", "+inf"), ("-inf", "-1", "-inf"), ("max", "max", "+inf"),
    ("max_sub", "min_sub", "min_norm"), ("min_norm", "-0", "min_norm"),
    ("-0", "min_sub", "min_sub"),
])
def test_named_cases(a: str, b: str, want: str) -> None:
    assert int(fp_add_bits(FP32[a], FP32[b])) == FP32[want]


@pytest.mark.parametrize("nan", [0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF, 0x7FBFFFFF])
@pytest.mark.parametrize("other", [0x0, 0x80000000, 0x3F800000, 0x7F800000, 0xFF800000, 0x7FC00001])
def test_any_nan_gives_canonical_qnan(nan: int, other: int) -> None:
    assert int(fp_add_bits(nan, other)) == 0x7FC00000
    assert int(fp_add_bits(other, nan)) == 0x7FC00000


@pytest.mark.parametrize("e_w,m_w", [(2, 1), (4, 3), (8, 7), (11, 52)])
def test_canonical_qnan_per_format(e_w: int, m_w: int) -> None:
    inf = ((1 << e_w) - 1) << m_w
    neg_inf = inf | (1 << (e_w + m_w))
    assert int(fp_add_bits(inf, neg_inf, e_w, m_w)) == inf | (1 << (m_w - 1))


def test_commutative() -> None:
    rng = _rng(11)
    a = rng.integers(0, 1 << 32, VECTORS, dtype=np.uint64)
    b = rng.integers(0, 1 << 32, VECTORS, dtype=np.uint64)
    assert np.array_equal(fp_add_bits(a, b), fp_add_bits(b, a))


def test_shapes_and_dtypes() -> None:
    out = fp_add_bits(np.array([[0x3F800000], [0x40000000]], dtype=np.uint32),
                      np.array([0x3F800000, 0], dtype=np.uint32))
    assert out.shape == (2, 2) and out.dtype == np.uint32
    assert out.tolist() == [[0x40000000, 0x3F800000], [0x40400000, 0x40000000]]
    assert fp_add_bits(0x38, 0x38, 4, 3).dtype == np.uint8
    assert fp_add_bits(0x3C00, 0x3C00, 5, 10).dtype == np.uint16
    # 64-bit patterns above 2**63 arrive as Python ints: -1.0 + -1.0 = -2.0 in binary64.
    assert int(fp_add_bits([0xBFF0000000000000], [0xBFF0000000000000], 11, 52)[0]) == (
        0xC000000000000000)
    assert fp_add_bits(np.array([], dtype=np.uint32), np.array([], dtype=np.uint32)).size == 0


@pytest.mark.parametrize("a_bits,e_w,m_w", [
    (1 << 32, 8, 23), (-1, 8, 23), (256, 4, 3), ([0, 1 << 16], 5, 10), ([1 << 64], 11, 52),
])
def test_out_of_range_bits_rejected(a_bits: object, e_w: int, m_w: int) -> None:
    with pytest.raises(ValueError):
        fp_add_bits(a_bits, 0, e_w, m_w)
    with pytest.raises(ValueError):
        fp_add_bits(0, a_bits, e_w, m_w)


def test_non_integer_input_rejected() -> None:
    with pytest.raises(TypeError):
        fp_add_bits(np.float32(1.0), 0)
    with pytest.raises(TypeError):
        fp_add_bits(np.array([True]), 0)


@pytest.mark.parametrize("e_w,m_w", [
    (FP_ADD_EXP_BITS_RANGE[0] - 1, 3), (FP_ADD_EXP_BITS_RANGE[1] + 1, 3),
    (4, FP_ADD_MAN_BITS_RANGE[0] - 1), (4, FP_ADD_MAN_BITS_RANGE[1] + 1),
])
def test_bad_widths_rejected(e_w: object, m_w: object) -> None:
    with pytest.raises(ValueError, match="_bits must be in"):
        fp_add_bits(0, 0, e_w, m_w)  # type: ignore[arg-type]


@pytest.mark.parametrize("e_w,m_w", [(4.0, 3), (True, 3), (4, 3.0), (4, np.float32(3))])
def test_non_integer_widths_rejected(e_w: object, m_w: object) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        fp_add_bits(0, 0, e_w, m_w)  # type: ignore[arg-type]


def test_adder_ranges_are_the_format_ranges() -> None:
    """The adder takes every width a Format has, binary64 included (one definition)."""
    import lmul

    assert FP_ADD_EXP_BITS_RANGE == lmul.FORMAT_EXP_BITS_RANGE == (2, 11)
    assert FP_ADD_MAN_BITS_RANGE == lmul.FORMAT_MAN_BITS_RANGE == (1, 52)
    assert lmul.format_for(11, 52).uint_dtype == np.uint64
    one = 0x3FF0000000000000
    assert int(fp_add_bits(one, one, 11, 52)) == 0x4000000000000000  # 1 + 1 = 2 in binary64
