"""The fused dot-product step's reference (``lmul.fused_sum_bits``, ``lmul.Fused``) and the
reference matrix product with fused accumulation (``lmul.matmul_reference(accumulate=...)``).

Expected values are worked out by hand in the comments (binary32 patterns of exact sums), or
come from references that share no code with ``lmul._dot``: a rounding of exact
``fractions.Fraction`` sums written here (``round_fraction``), numpy float32 addition (the
CPU's IEEE adder) and ``lmul.fp_add_bits`` (the model of ``hdl/fp_add.v``). The shared rational
oracle (``sim/lib/oracle.py``) checks the exactness claim in ``sim/tests/test_dot_model.py``
(model tests import nothing of ``sim``).

The random cases are seeded by the repository conftest's ``random_seed`` fixture.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest

import lmul
from lmul import FUSED_EXACT_ALIGN_BITS, Fused, LMulConfig, fused_sum_bits

QNAN = 0x7FC00000
PINF, NINF = 0x7F800000, 0xFF800000
FLT_MAX = float(np.finfo(np.float32).max)


def b32(x: float) -> int:
    """binary32 bits of ``x`` (which must be exactly representable, or Inf/NaN)."""
    f = np.float32(x)
    assert math.isnan(x) or float(f) == x, f"{x} is not a binary32 value"
    return int(f.view(np.uint32))


def fused(values: list[float], align: int) -> int:
    return int(fused_sum_bits(np.array([b32(v) for v in values], dtype=np.uint32), align))


# --------------------------------------------------------------------------------------------
# Hand-computed steps.


@pytest.mark.parametrize(("align", "want"), [
    # 1 + 2**-24 + 2**-30: above the halfway point 1 + 2**-24, rounds up to 1 + 2**-23 ...
    (FUSED_EXACT_ALIGN_BITS, 0x3F800001),
    # ... as long as the window keeps 2**-30 (unit u = 2**(0 - align))
    (30, 0x3F800001),
    # with u = 2**-29 or coarser the small term becomes 2**-24: an exact tie, to even (1.0)
    (29, 0x3F800000),
    (24, 0x3F800000),
    # u = 2**-23: the small term is truncated away completely
    (23, 0x3F800000),
])
def test_window_truncates_the_small_term(align: int, want: int) -> None:
    assert fused([1.0, 2.0**-24 + 2.0**-30], align) == want


def test_ties_to_even_and_sticky_terms() -> None:
    # 1 + 2**-24 is halfway between 1.0 (even) and 1 + 2**-23: to 1.0.
    assert fused([1.0, 2.0**-24], FUSED_EXACT_ALIGN_BITS) == 0x3F800000
    # (1 + 2**-23) + 2**-24: halfway, the even neighbour is 1 + 2**-22 (fraction 2).
    assert fused([1.0 + 2.0**-23, 2.0**-24], FUSED_EXACT_ALIGN_BITS) == 0x3F800002
    # A third, tiny term breaks the tie when the window holds it (no sticky bit otherwise).
    assert fused([1.0, 2.0**-24, 2.0**-60], FUSED_EXACT_ALIGN_BITS) == 0x3F800001
    assert fused([1.0, 2.0**-24, 2.0**-60], 60) == 0x3F800001
    assert fused([1.0, 2.0**-24, 2.0**-60], 59) == 0x3F800000
    # Negative tie: -(1 + 2**-24) -> -1.0.
    assert fused([-1.0, -(2.0**-24)], FUSED_EXACT_ALIGN_BITS) == 0xBF800000


def test_negative_terms_truncate_toward_zero() -> None:
    # u = 2**-24: -(2**-24 + 2**-30) becomes -2**-24 (magnitude truncated, then negated), the
    # sum 1 - 2**-24 = 0x3F7FFFFF exactly. A two's-complement floor would give -2**-23 and
    # 1 - 2**-23 = 0x3F7FFFFE.
    assert fused([1.0, -(2.0**-24 + 2.0**-30)], 24) == 0x3F7FFFFF
    # 1.5 + (0.75 + 2**-20) with an 8-bit window (u = 2**-8): 2.25 = 0x40100000.
    assert fused([1.5, 0.75 + 2.0**-20], 8) == 0x40100000
    assert fused([-1.5, -(0.75 + 2.0**-20)], 8) == 0xC0100000
    # Exact: 2.25 + 2**-20 rounds to 2.25 + 2**-20 (within 24 bits of 2.25's binade: ulp 2**-22
    # -> 2**-20 is 4 ulps): 0x40100000 + 4.
    assert fused([1.5, 0.75 + 2.0**-20], FUSED_EXACT_ALIGN_BITS) == 0x40100004


def test_signed_zero_sums() -> None:
    assert fused([-0.0], 24) == 0x80000000
    assert fused([0.0], 24) == 0
    assert fused([-0.0, -0.0, -0.0], 24) == 0x80000000
    assert fused([-0.0, 0.0, -0.0], 24) == 0
    assert fused([0.0, -0.0], FUSED_EXACT_ALIGN_BITS) == 0


def test_cancellation_gives_plus_zero() -> None:
    assert fused([1.0, -1.0], 24) == 0
    assert fused([-1.0, 1.0, -0.0], 24) == 0
    assert fused([-(2.0**-100), 2.0**-100], FUSED_EXACT_ALIGN_BITS) == 0
    # Cancellation after truncation: u = 2**-8 turns -(1 + 2**-23) into -1, S = 0 -> +0, where
    # the exact sum is -2**-23.
    assert fused([1.0, -(1.0 + 2.0**-23)], 8) == 0
    assert fused([1.0, -(1.0 + 2.0**-23)], FUSED_EXACT_ALIGN_BITS) == b32(-(2.0**-23))


def test_special_values() -> None:
    inf, nan = math.inf, math.nan
    assert fused([inf, -inf, 1.0], 24) == QNAN
    assert fused([inf, 1.0, -3.0], 24) == PINF
    assert fused([-inf, -inf, FLT_MAX], 24) == NINF
    assert fused([nan, inf], 24) == QNAN
    assert fused([1.0, 2.0, nan], 276) == QNAN
    # A signalling NaN with a payload, and a negative NaN, still give the canonical NaN.
    for pattern in (0x7F800001, 0xFFC12345):
        assert int(fused_sum_bits(np.array([b32(1.0), pattern], dtype=np.uint32), 24)) == QNAN


def test_subnormal_results() -> None:
    # 2**-126 - 2**-149 is the largest subnormal, 0x007FFFFF.
    assert fused([2.0**-126, -(2.0**-149)], 24) == 0x007FFFFF
    # 1.5 * 2**-126 - 2**-126 = 2**-127 = 0x00400000.
    assert fused([1.5 * 2.0**-126, -(2.0**-126)], 24) == 0x00400000
    # Subnormal terms: e = 1, sig = fraction. 3*2**-149 + 2**-149 = 4*2**-149 with u = 2**-149
    # (align 23); with align 1, u = 2**-127 truncates both away: +0.
    assert fused([3 * 2.0**-149, 2.0**-149], 23) == 4
    assert fused([3 * 2.0**-149, 2.0**-149], 1) == 0
    assert fused([-(2.0**-149), -(2.0**-149)], FUSED_EXACT_ALIGN_BITS) == 0x80000002
    # A subnormal sum that carries into the normals: 2 * (2**-126 - 2**-149).
    assert fused([2.0**-126 - 2.0**-149] * 2, 24) == b32(2.0**-125 - 2.0**-148)


def test_overflow_to_inf() -> None:
    assert fused([FLT_MAX, FLT_MAX], 24) == PINF
    # FLT_MAX + 2**103 is halfway to 2**128; FLT_MAX's fraction is odd: rounds up, Inf.
    assert fused([FLT_MAX, 2.0**103], FUSED_EXACT_ALIGN_BITS) == PINF
    assert fused([-FLT_MAX, -(2.0**103)], 24) == NINF
    assert fused([FLT_MAX, 2.0**102], FUSED_EXACT_ALIGN_BITS) == b32(FLT_MAX)
    # align 23 (u = 2**104) drops 2**103: FLT_MAX stays.
    assert fused([FLT_MAX, 2.0**103], 23) == b32(FLT_MAX)


def test_single_term_is_the_term_or_its_window() -> None:
    assert fused([1.0 + 2.0**-23], 24) == b32(1.0 + 2.0**-23)
    # A lone term keeps only its top align_bits + 1 bits.
    assert fused([1.0 + 2.0**-23], 22) == b32(1.0)
    assert fused([-(1.0 + 2.0**-23)], 22) == b32(-1.0)


def test_shapes_and_dtypes() -> None:
    terms = np.array([[[b32(1.0), b32(2.0)], [b32(-0.0), b32(-0.0)]]], dtype=np.uint32)
    out = fused_sum_bits(terms, 24)
    assert out.dtype == np.uint32 and out.shape == (1, 2)
    assert out.tolist() == [[b32(3.0), 0x80000000]]
    assert fused_sum_bits(terms.astype(np.int64), 24).tolist() == out.tolist()
    assert fused_sum_bits(np.zeros((0, 3), dtype=np.uint32), 24).shape == (0,)


@pytest.mark.parametrize(("args", "exc", "text"), [
    ((np.array([1.0], dtype=np.float32), 24), TypeError, "integer array"),
    ((np.uint32(5), 24), ValueError, "[..., T]"),
    ((np.zeros((3, 0), dtype=np.uint32), 24), ValueError, "[..., T]"),
    ((np.array([-1]), 24), ValueError, "outside"),
    ((np.array([1 << 32]), 24), ValueError, "outside"),
    ((np.array([1], dtype=np.uint32), 0), ValueError, "1..276"),
    ((np.array([1], dtype=np.uint32), 277), ValueError, "1..276"),
    ((np.array([1], dtype=np.uint32), 24.0), TypeError, "int"),
])
def test_fused_sum_bits_bad_input(args: tuple, exc: type, text: str) -> None:
    with pytest.raises(exc) as info:
        fused_sum_bits(*args)
    assert text in str(info.value) and "\n" not in str(info.value)


def test_fused_validates() -> None:
    assert Fused(1, 1) == Fused(1, 1) and Fused(64, 276).k == 64
    for k, align in ((0, 24), (65, 24), (4, 0), (4, 277), (-1, 24)):
        with pytest.raises(ValueError) as info:
            Fused(k, align)
        assert "\n" not in str(info.value) and "Fused." in str(info.value)
    with pytest.raises(TypeError):
        Fused(4.0, 24)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Fused(True, 24)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Fused(4, 24).k = 5  # type: ignore[misc]
    assert hash(Fused(4, 24)) == hash(Fused(4, 24))


# --------------------------------------------------------------------------------------------
# Random steps against exact rational sums rounded here (no code shared with lmul._dot).


def round_fraction(x: Fraction) -> int:
    """binary32 bits of the finite nonzero rational ``x`` rounded to nearest, ties to even."""
    mag = abs(x)
    e = math.floor(math.log2(mag.numerator)) - math.floor(math.log2(mag.denominator))
    while Fraction(2) ** e > mag:  # fix up the estimate until 2**e <= mag < 2**(e+1)
        e -= 1
    while Fraction(2) ** (e + 1) <= mag:
        e += 1
    q = max(e, -126) - 23
    n = round(mag / Fraction(2) ** q)  # Fraction.__round__: half to even
    value = n * Fraction(2) ** q
    if value >= Fraction(2) ** 128:
        f = np.float32(np.inf)
    else:
        f = np.float32(float(value))  # exact: n <= 2**24, in range
        assert Fraction(float(f)) == value
    return int(f.view(np.uint32)) | (0x80000000 if x < 0 else 0)


def window_sum(patterns: list[int], align: int) -> Fraction:
    """Sum of the finite terms' values, each magnitude truncated to a multiple of
    2**(emax - 127 - align), emax the largest exponent (subnormals: 1) of a nonzero term."""
    values = [Fraction(float(np.uint32(p).view(np.float32))) for p in patterns]
    if not any(values):
        return Fraction(0)
    emax = max(max((p >> 23) & 0xFF, 1) for p, v in zip(patterns, values, strict=True) if v != 0)
    unit = Fraction(2) ** (emax - 127 - align)
    return sum(((-1 if v < 0 else 1) * (abs(v) // unit) * unit for v in values), Fraction(0))


def random_terms(rng: np.random.Generator, rows: int, t: int, spread: int) -> np.ndarray:
    """Finite binary32 patterns: random signs and fractions, exponents within ``spread`` of
    a random centre (so sums keep and lose bits), some zeros and subnormals."""
    centre = rng.integers(1, 255, size=(rows, 1))
    exps = np.clip(centre + rng.integers(-spread, spread + 1, size=(rows, t)), 0, 254)
    frac = rng.integers(0, 1 << 23, size=(rows, t))
    frac = np.where(rng.random((rows, t)) < 0.3, frac & ~((1 << 16) - 1), frac)  # BF16-like
    sign = rng.integers(0, 2, size=(rows, t))
    pats = (sign << 31) | (exps << 23) | frac
    pats = np.where(rng.random((rows, t)) < 0.05, sign << 31, pats)
    return pats.astype(np.uint32)


@pytest.mark.parametrize("align", [1, 8, 24, 32, 50, 100, FUSED_EXACT_ALIGN_BITS])
def test_random_steps_against_rational_window_sums(align: int, random_seed: int) -> None:
    rng = np.random.default_rng([random_seed, align])
    checked = 0
    for t, spread in ((2, 3), (5, 30), (17, 10), (65, 60), (9, 127)):
        terms = random_terms(rng, 60, t, spread)
        got = fused_sum_bits(terms, align)
        for row, g in zip(terms.tolist(), got.tolist(), strict=True):
            s = window_sum(row, align)
            if s == 0:
                all_neg_zero = all(p == 0x80000000 for p in row)
                want = 0x80000000 if all_neg_zero else 0
            else:
                want = round_fraction(s)
            assert g == want, (row, align, hex(g), hex(want))
            checked += 1
    assert checked == 300


def test_order_does_not_matter(random_seed: int) -> None:
    rng = np.random.default_rng([random_seed, 7])
    terms = random_terms(rng, 40, 9, 20)
    for align in (8, 24, FUSED_EXACT_ALIGN_BITS):
        want = fused_sum_bits(terms, align)
        shuffled = terms[:, rng.permutation(9)]
        assert (fused_sum_bits(shuffled, align) == want).all()


# --------------------------------------------------------------------------------------------
# K = 1 with the exact window is the sequential PE's binary32 addition.


def float32_corollary_pairs(rng: np.random.Generator) -> np.ndarray:
    specials = [b32(v) for v in (0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, 2.0**-149,
                                 -(2.0**-149), 2.0**-126, FLT_MAX, -FLT_MAX)] + [0x7FC00000,
                                                                                 0x7F800001]
    grid = np.array([[a, b] for a in specials for b in specials], dtype=np.uint32)
    close = random_terms(rng, 3000, 2, 25)
    anything = rng.integers(0, 1 << 32, size=(1000, 2), dtype=np.uint64).astype(np.uint32)
    return np.concatenate([grid, close, anything])


def test_k1_exact_window_is_binary32_addition(random_seed: int) -> None:
    pairs = float32_corollary_pairs(np.random.default_rng([random_seed, 11]))
    got = fused_sum_bits(pairs, FUSED_EXACT_ALIGN_BITS)
    f = pairs.view(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        numpy_sum = (f[:, 0] + f[:, 1]).view(np.uint32)
    numpy_sum = np.where(np.isnan(numpy_sum.view(np.float32)), np.uint32(QNAN), numpy_sum)
    assert (got == numpy_sum).all(), pairs[got != numpy_sum][:5]
    assert (got == lmul.fp_add_bits(pairs[:, 0], pairs[:, 1])).all()


def test_k1_narrow_window_is_not_binary32_addition(random_seed: int) -> None:
    """The check above can fail: with a 24-bit window the step truncates where IEEE rounds."""
    pairs = random_terms(np.random.default_rng([random_seed, 12]), 2000, 2, 25)
    differ = fused_sum_bits(pairs, 24) != lmul.fp_add_bits(pairs[:, 0], pairs[:, 1])
    assert differ.any()


# --------------------------------------------------------------------------------------------
# matmul_reference(accumulate=Fused(...)).

FP32 = LMulConfig(8, 23)  # with the exact multiplier: IEEE binary32 products


def test_reference_matmul_hand_computed() -> None:
    a = np.array([[1.0, 1.0]], dtype=np.float32)
    b = np.array([[1.0], [2.0**-24 + 2.0**-30]], dtype=np.float32)
    run = lambda acc: lmul.matmul_reference(a, b, None, FP32, multiplier="exact",  # noqa: E731
                                            accumulate=acc)
    # Sequential: 0 + 1 = 1, then 1 + (2**-24 + 2**-30) rounds up.
    assert b32(float(run(None)[0, 0])) == 0x3F800001
    # One step of [0, 1, 2**-24 + 2**-30]: 24-bit window -> tie -> 1.0; exact -> up.
    assert b32(float(run(Fused(2, 24))[0, 0])) == 0x3F800000
    assert b32(float(run(Fused(2, FUSED_EXACT_ALIGN_BITS))[0, 0])) == 0x3F800001
    # Steps of one product: [0, 1] then [1, 2**-24 + 2**-30] with 24 bits -> 1.0.
    assert b32(float(run(Fused(1, 24))[0, 0])) == 0x3F800000
    # K larger than the inner dimension: one padded step.
    assert b32(float(run(Fused(8, 24))[0, 0])) == 0x3F800000


def test_reference_partial_chunk_is_padded_with_plus_zero() -> None:
    # bias -0, product (-0) * 1 = -0: the sequential sum is -0, a padded fused step is +0.
    a = np.array([[-0.0]], dtype=np.float32)
    b = np.array([[1.0]], dtype=np.float32)
    bias = np.array([-0.0], dtype=np.float32)
    seq = lmul.matmul_reference(a, b, bias)
    assert b32(float(seq[0, 0])) == 0x80000000
    assert b32(float(lmul.matmul_reference(a, b, bias, accumulate=Fused(1, 24))[0, 0])) == \
        0x80000000
    for k in (2, 4):
        got = lmul.matmul_reference(a, b, bias, accumulate=Fused(k, 24))
        assert b32(float(got[0, 0])) == 0


@pytest.mark.parametrize("multiplier", lmul.MULTIPLIERS)
def test_reference_k1_exact_window_equals_sequential(multiplier: str, random_seed: int) -> None:
    rng = np.random.default_rng([random_seed, 13])
    a = rng.standard_normal((6, 23)).astype(np.float32)
    b = (rng.standard_normal((23, 7)) * np.exp2(rng.integers(-20, 20, (23, 7)))).astype(
        np.float32)
    a[0, :3] = [np.inf, -0.0, 0.0]
    b[5, 2] = np.nan
    bias = rng.standard_normal(7).astype(np.float32)
    seq = lmul.matmul_reference(a, b, bias, multiplier=multiplier)
    fused_1 = lmul.matmul_reference(a, b, bias, multiplier=multiplier,
                                    accumulate=Fused(1, FUSED_EXACT_ALIGN_BITS))
    assert (seq.view(np.uint32) == fused_1.view(np.uint32)).all()
    # ... and a narrow window, or a larger K, is a different sum on these operands.
    narrow = lmul.matmul_reference(a, b, bias, multiplier=multiplier, accumulate=Fused(4, 8))
    assert (seq.view(np.uint32) != narrow.view(np.uint32)).any()


def test_reference_chunks_are_steps_of_fused_sum_bits(random_seed: int) -> None:
    """Inner dimension 6, K = 4: two steps, the second padded, composed by hand here."""
    rng = np.random.default_rng([random_seed, 14])
    a = rng.standard_normal((3, 6)).astype(np.float32)
    b = rng.standard_normal((6, 5)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    got = lmul.matmul_reference(a, b, bias, accumulate=Fused(4, 16))
    prods = lmul.lmul(a[:, :, None], b[None, :, :]).view(np.uint32)  # [3, 6, 5]
    acc = np.broadcast_to(bias.view(np.uint32), (3, 5))
    step1 = np.stack([acc, *(prods[:, i] for i in range(4))], axis=-1)
    acc = fused_sum_bits(step1, 16)
    zero = np.zeros_like(acc)
    step2 = np.stack([acc, prods[:, 4], prods[:, 5], zero, zero], axis=-1)
    assert (got.view(np.uint32) == fused_sum_bits(step2, 16)).all()


def test_reference_rejects_bad_accumulate() -> None:
    a = np.ones((1, 1), dtype=np.float32)
    with pytest.raises(TypeError, match=r"lmul\.Fused"):
        lmul.matmul_reference(a, a, accumulate=(4, 24))  # type: ignore[arg-type]
