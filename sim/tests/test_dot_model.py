"""The fused dot-product step of the model (``lmul.fused_sum_bits``, ``lmul.matmul(...,
accumulate=lmul.Fused(k, align_bits))``) against the exact rational oracle (``sim/lib/oracle.py``,
which imports nothing of ``lmul``).

The contract's exactness claim: with ``align_bits >= 276`` a step returns the correctly rounded
sum of its terms (IEEE's rules for NaN, Inf and the sign of a zero sum), for any number of terms;
with a narrower window it does whenever ``emax - min(e_j - 23) <= align_bits`` over the nonzero
terms, and not in general. Corollary: one product per step is the sequential PE's binary32 add.
"""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytest

import lmul
from lmul import FUSED_EXACT_ALIGN_BITS, Fused
from sim.lib import oracle


def exact_sum_bits(terms: list[int]) -> int:
    """binary32 bits of the exact IEEE sum of the terms, rounded once (the oracle's add is exact:
    it folds NaN/Inf and the sign of exact zeros without rounding)."""
    total = reduce(oracle.add, (oracle.decode(t, 8, 23) for t in terms))
    return oracle.encode(total, 8, 23)


def random_terms(rng: np.random.Generator, rows: int, t: int) -> np.ndarray:
    """binary32 patterns: exponents over the whole range around a random centre, BF16-like and
    full fractions, zeros of both signs, subnormals; a few Inf and NaN."""
    centre = rng.integers(1, 255, (rows, 1))
    spread = rng.choice([0, 2, 8, 30, 80], (rows, 1))
    exps = np.clip(centre + rng.integers(-1, 2, (rows, t)) * rng.integers(0, spread + 1,
                                                                          (rows, t)), 0, 254)
    kept = rng.integers(0, 24, (rows, 1))  # fraction bits kept per row (BF16: 7)
    frac = rng.integers(0, 1 << 23, (rows, t)) & ~((1 << (23 - kept)) - 1)
    sign = rng.integers(0, 2, (rows, t))
    pats = (sign << 31) | (exps << 23) | frac
    pats = np.where(rng.random((rows, t)) < 0.04, sign << 31, pats)
    special = rng.random((rows, t)) < 0.01
    pats = np.where(special, rng.choice([0x7F800000, 0xFF800000, 0x7FC00000, 0xFF812345],
                                        (rows, t)), pats)
    return pats.astype(np.uint32)


@pytest.mark.parametrize("t", [1, 2, 3, 5, 9, 17, 33, 65])
def test_exact_window_is_the_correctly_rounded_sum(t: int, random_seed: int) -> None:
    rng = np.random.default_rng([random_seed, t])
    terms = random_terms(rng, 400, t)
    terms[0] = 0x80000000  # all -0
    terms[1, :] = 0
    terms[1, 0] = 0x80000000  # -0 and +0
    got = lmul.fused_sum_bits(terms, FUSED_EXACT_ALIGN_BITS)
    for row, g in zip(terms.tolist(), got.tolist(), strict=True):
        assert g == exact_sum_bits(row), [hex(v) for v in row]


def low_bit_spread(row: list[int]) -> int | None:
    """``emax - (lowest set bit position)`` over the row's nonzero finite terms, positions in
    exponent units (None: no such term, or an Inf/NaN). The contract's bound
    ``emax - min(e_j - 23)`` is at least this, so its claim is covered by this stronger one."""
    if any((p >> 23) & 0xFF == 0xFF for p in row):
        return None
    highs, lows = [], []
    for p in row:
        e, f = (p >> 23) & 0xFF, p & 0x7FFFFF
        sig = f if e == 0 else f | 0x800000
        if sig:
            highs.append(max(e, 1))
            lows.append(max(e, 1) - 23 + ((sig & -sig).bit_length() - 1))
    return max(highs) - min(lows) if highs else None


@pytest.mark.parametrize("align", [1, 8, 24, 32, 60, 150])
def test_narrow_window_is_exact_when_nothing_falls_out(align: int, random_seed: int) -> None:
    rng = np.random.default_rng([random_seed, align, 1])
    terms = random_terms(rng, 1500, 9)
    got = lmul.fused_sum_bits(terms, align)
    exact_rows = truncated = inexact = 0
    for row, g in zip(terms.tolist(), got.tolist(), strict=True):
        spread = low_bit_spread(row)
        if spread is None:
            continue
        if spread <= align:
            assert g == exact_sum_bits(row), ([hex(v) for v in row], align)
            exact_rows += 1
        else:
            truncated += 1
            inexact += g != exact_sum_bits(row)
    # Both sides of the claim were exercised: covered rows, and rows losing bits (which, for
    # narrow windows, visibly change results: "in general not" exact).
    assert exact_rows >= 5 and truncated >= 5, (exact_rows, truncated)
    if align <= 32:
        assert inexact >= 5, inexact


def test_one_product_per_step_is_binary32_addition(random_seed: int) -> None:
    rng = np.random.default_rng([random_seed, 3])
    pairs = random_terms(rng, 3000, 2)
    got = lmul.fused_sum_bits(pairs, FUSED_EXACT_ALIGN_BITS)
    for (a, b), g in zip(pairs.tolist(), got.tolist(), strict=True):
        assert g == oracle.add_bits(a, b, 8, 23)


@pytest.mark.parametrize("multiplier", lmul.MULTIPLIERS)
@pytest.mark.parametrize("k", [1, 4, 16])
def test_matmul_exact_window_against_the_oracle(multiplier: str, k: int,
                                                random_seed: int) -> None:
    """``lmul.matmul`` (the numba kernels where numba runs) with ``Fused(k, 276)``: every step
    is the oracle's correctly rounded sum of the accumulator, ``k`` products and +0 padding."""
    rng = np.random.default_rng([random_seed, k, len(multiplier)])
    m, kk, n = 3, 21, 7
    a = (rng.standard_normal((m, kk)) * np.exp2(rng.integers(-40, 40, (m, kk)))).astype(
        np.float32)
    b = (rng.standard_normal((kk, n)) * np.exp2(rng.integers(-40, 40, (kk, n)))).astype(
        np.float32)
    a[0, :3] = [0.0, -0.0, np.inf]
    bias = rng.standard_normal(n).astype(np.float32)
    got = lmul.matmul(a, b, bias, multiplier=multiplier,
                      accumulate=Fused(k, FUSED_EXACT_ALIGN_BITS)).view(np.uint32)
    prods = lmul.elementwise_product(np.ascontiguousarray(a[:, :, None]), b[None],
                                     multiplier=multiplier)
    prods = np.ascontiguousarray(prods.transpose(0, 2, 1)).view(np.uint32)  # [m, n, kk]
    for i in range(m):
        for j in range(n):
            acc = int(bias.view(np.uint32)[j])
            for c0 in range(0, kk, k):
                step = prods[i, j, c0:c0 + k].tolist()
                acc = exact_sum_bits([acc, *step] + [0] * (k - len(step)))
            assert int(got[i, j]) == acc, (i, j)
