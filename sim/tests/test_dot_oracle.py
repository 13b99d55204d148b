"""sim.lib.dot_oracle, the proof's reference of the fused dot-product step: against the model
``lmul.fused_sum_bits`` (an independent implementation of the same contract, Python integers) at
every window width, against the rational oracle's correctly rounded sum at ALIGN_BITS = 276, its
exact widening against the model's, its independence of the project, and its input checks."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import lmul
from sim.lib import dot_oracle, oracle
from sim.tests.test_oracle import _imports_nothing_of_the_project

SPECIALS = np.array([0, 1, 0x7FFFFF, 0x800000, 0x3F800000, 0x7F7FFFFF, 0x7F800000, 0x7FC00000,
                     0x7F800001], dtype=np.int64)


def _terms(rng: np.random.Generator, n: int, t: int) -> np.ndarray:
    """Terms of every kind: uniform patterns, close exponents, cancelling pairs, specials."""
    uniform = rng.integers(0, 1 << 32, (n, t), dtype=np.int64)
    close = ((rng.integers(0, 2, (n, t)) << 31) | (rng.integers(110, 140, (n, t)) << 23)
             | rng.integers(0, 1 << 23, (n, t)))
    tiny = (rng.integers(0, 2, (n, t)) << 31) | rng.integers(0, 3 << 23, (n, t))
    specials = rng.choice(np.concatenate([SPECIALS, SPECIALS | (1 << 31)]), (n, t))
    kind = rng.integers(0, 10, (n, t))
    out = np.where(kind < 3, uniform, np.where(kind < 7, close, np.where(kind < 9, tiny,
                                                                          specials)))
    if t >= 2:
        cancel = rng.random(n) < 0.25
        out[cancel, 1] = out[cancel, 0] ^ (1 << 31)
    return out.astype(np.uint32)


@pytest.mark.parametrize("align", [1, 7, 23, 24, 25, 32, 64, 150, 275, 276])
def test_matches_the_model_at_every_window(align: int) -> None:
    rng = np.random.default_rng(align)
    for t in (1, 2, 3, 5, 9, 17, 65):
        terms = _terms(rng, 400, t)
        got = dot_oracle.fused_sum_reference(terms, align)
        want = lmul.fused_sum_bits(terms, align)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, (align, t, [hex(v) for v in terms[bad[0]]], hex(got[bad[0]]),
                               hex(want[bad[0]]))


def test_exact_window_is_the_correctly_rounded_sum() -> None:
    """ALIGN_BITS = 276: the rational oracle's RNE of the exact sum (IEEE zero signs)."""
    rng = np.random.default_rng(7)
    terms = _terms(rng, 1500, 5)
    got = dot_oracle.fused_sum_reference(terms, dot_oracle.EXACT_ALIGN_BITS)
    for row, y in zip(terms, got, strict=True):
        vals = [oracle.decode(int(v), 8, 23) for v in row]
        if any(v.is_nan for v in vals) or len({v.negative for v in vals if v.is_inf}) == 2:
            want = oracle.canonical_nan(8, 23)
        elif any(v.is_inf for v in vals):
            want = oracle.inf_bits(8, 23, next(v.negative for v in vals if v.is_inf))
        else:
            total = sum((v.value for v in vals), Fraction(0))
            want = (oracle.encode(oracle.exact(total), 8, 23) if total
                    else (0x80000000 if all(v.negative for v in vals) else 0))
        assert int(y) == want, ([hex(v) for v in row], hex(int(y)), hex(want))


def test_a_wrong_window_is_seen() -> None:
    """The comparison with the model is sharp: one bit of window makes a difference."""
    terms = np.array([[0x3F800000, 0x33800000]], dtype=np.uint32)  # 1 + 2^-24: a tie at 24
    assert dot_oracle.fused_sum_reference(terms, 24)[0] == lmul.fused_sum_bits(terms, 24)[0]
    assert dot_oracle.fused_sum_reference(terms, 23)[0] == 0x3F800000  # the 2^-24 term dropped
    assert dot_oracle.fused_sum_reference(np.array([[0x3F800001, 0x33800000]], np.uint32),
                                          24)[0] == 0x3F800002  # odd: the tie rounds up


@pytest.mark.parametrize("name", ["e4m3_ieee", "e5m2", "bf16", "fp16"])
def test_widening_matches_the_model_exhaustively(name: str) -> None:
    fmt = lmul.PRESETS[name]
    bits = np.arange(1 << fmt.width, dtype=np.int64)
    want = lmul.format_bits_to_float32(bits.astype(fmt.uint_dtype), fmt).view(np.uint32)
    np.testing.assert_array_equal(dot_oracle.widen_reference(bits, fmt.exp_bits, fmt.man_bits),
                                  want)


def test_dot_reference_uses_the_exact_products() -> None:
    """Without ``products``: the exact IEEE products rounded to the format (the model's
    exact_mul), widened and summed with the accumulator."""
    fmt = lmul.PRESETS["bf16"]
    rng = np.random.default_rng(3)
    a = rng.integers(0, 1 << 16, (2000, 4), dtype=np.int64)
    b = rng.integers(0, 1 << 16, (2000, 4), dtype=np.int64)
    acc = rng.integers(0, 1 << 32, 2000, dtype=np.int64).astype(np.uint32)
    x = lmul.format_bits_to_float32(a.astype(np.uint16), fmt)
    y = lmul.format_bits_to_float32(b.astype(np.uint16), fmt)
    prods = np.asarray(lmul.exact_mul(x, y, lmul.LMulConfig(8, 7)), np.float32).view(np.uint32)
    want = lmul.fused_sum_bits(np.concatenate([acc[:, None], prods], axis=1), 40)
    np.testing.assert_array_equal(dot_oracle.dot_reference(a, b, acc, 8, 7, 40), want)


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match=r"align_bits must be an int 1\.\.276"):
        dot_oracle.fused_sum_reference(np.zeros((1, 2), np.uint32), 277)
    with pytest.raises(ValueError, match="shape"):
        dot_oracle.fused_sum_reference(np.zeros(3, np.uint32), 24)
    with pytest.raises(ValueError, match="outside"):
        dot_oracle.fused_sum_reference(np.array([[1 << 32]]), 24)
    with pytest.raises(TypeError, match="integer"):
        dot_oracle.fused_sum_reference(np.zeros((1, 2)), 24)


def test_dot_oracle_is_independent_of_the_model() -> None:
    _imports_nothing_of_the_project("sim.lib.dot_oracle", ("sim.lib.o", "sim.prove"))
