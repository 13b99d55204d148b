"""The exact-rounding oracle: IEEE-style values of any (E, M) format, computed with rationals.

This module is the one independent reference for "what is the correctly rounded result" that the
RTL regressions (sim/) and the model's tests (model/tests) share. It imports nothing from the
project (no ``lmul``), so it cannot inherit a bug from the model it checks.

A format is sign | exponent (E bits) | mantissa (M bits), bias 2^(E-1) - 1, IEEE encodings:
exponent field 0 holds zeros and subnormals, all ones Inf (mantissa 0) and NaN (mantissa != 0).
The project's canonical NaN is sign 0, exponent all ones, mantissa MSB only.

* :func:`decode` turns a bit pattern into an :class:`Exact` (a rational magnitude with a sign, or
  +-Inf, or NaN; zeros keep their sign);
* :func:`encode` rounds an exact value to a format's bits, round to nearest, ties to even;
  overflow gives Inf; results below the smallest normal are kept as subnormals or flushed to a
  zero of the value's sign;
* :func:`add` and :func:`mul` are the exact IEEE sum and product (NaN and Inf rules, the sign of
  an exact zero); :func:`add_bits` and :func:`mul_bits` do decode, operate, round in one call.

Everything is scalar Python; it is meant for exhaustive 8-bit grids and vetting faster
references, not for millions of vectors.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from fractions import Fraction

__all__ = [
    "Exact",
    "add",
    "add_bits",
    "canonical_nan",
    "check_format",
    "decode",
    "encode",
    "exact",
    "inf_bits",
    "max_finite_bits",
    "mul",
    "mul_bits",
]

FINITE, INF, NAN = "finite", "inf", "nan"


@dataclass(frozen=True)
class Exact:
    """An exact IEEE-style value.

    ``kind`` is ``"finite"``, ``"inf"`` or ``"nan"``; ``negative`` is the sign bit (meaningful for
    zeros and infinities too; NaNs carry no sign here); ``magnitude`` is the exact absolute value
    of a finite number (0 for zeros, Inf and NaN).
    """

    kind: str
    negative: bool = False
    magnitude: Fraction = Fraction(0)

    def __post_init__(self) -> None:
        if self.kind not in (FINITE, INF, NAN):
            raise ValueError(f"Exact.kind must be finite, inf or nan, got {self.kind!r}")
        if self.magnitude < 0:
            raise ValueError("Exact.magnitude is an absolute value, got a negative one")

    @property
    def is_nan(self) -> bool:
        return self.kind == NAN

    @property
    def is_inf(self) -> bool:
        return self.kind == INF

    @property
    def is_zero(self) -> bool:
        return self.kind == FINITE and self.magnitude == 0

    @property
    def value(self) -> Fraction:
        """The signed rational value of a finite number (zeros give 0, whatever their sign)."""
        if self.kind != FINITE:
            raise ValueError(f"{self.kind} has no rational value")
        return -self.magnitude if self.negative else self.magnitude

    def __neg__(self) -> Exact:
        if self.kind == NAN:
            return self
        return Exact(self.kind, not self.negative, self.magnitude)


NAN_VALUE = Exact(NAN)


def check_format(exp_bits: int, man_bits: int) -> None:
    """Raise ValueError unless E >= 2 and M >= 1 (the smallest format with Inf, NaN, normals)."""
    if isinstance(exp_bits, bool) or not isinstance(exp_bits, int) or exp_bits < 2:
        raise ValueError(f"exp_bits must be an integer >= 2, got {exp_bits!r}")
    if isinstance(man_bits, bool) or not isinstance(man_bits, int) or man_bits < 1:
        raise ValueError(f"man_bits must be an integer >= 1, got {man_bits!r}")


def _bias(exp_bits: int) -> int:
    return (1 << (exp_bits - 1)) - 1


def inf_bits(exp_bits: int, man_bits: int, negative: bool = False) -> int:
    """Bit pattern of +Inf (or -Inf)."""
    return (int(negative) << (exp_bits + man_bits)) | (((1 << exp_bits) - 1) << man_bits)


def max_finite_bits(exp_bits: int, man_bits: int, negative: bool = False) -> int:
    """Bit pattern of the largest finite magnitude (with the given sign)."""
    return inf_bits(exp_bits, man_bits, negative) - 1


def canonical_nan(exp_bits: int, man_bits: int) -> int:
    """The project's canonical NaN: sign 0, exponent all ones, mantissa MSB only."""
    return inf_bits(exp_bits, man_bits) | (1 << (man_bits - 1))


def decode(bits: int, exp_bits: int, man_bits: int, *, subnormals: bool = True) -> Exact:
    """Exact value of one bit pattern of the (E, M) format.

    ``subnormals=False`` reads an exponent field of 0 as a zero of its sign (flush on input, as
    L-Mul and fp_mul with SUBNORMALS=0 do).
    """
    check_format(exp_bits, man_bits)
    bits = int(bits)
    if not 0 <= bits < 1 << (1 + exp_bits + man_bits):
        raise ValueError(f"bit pattern 0x{bits:x} does not fit E={exp_bits} M={man_bits}")
    negative = bool(bits >> (exp_bits + man_bits))
    field = (bits >> man_bits) & ((1 << exp_bits) - 1)
    man = bits & ((1 << man_bits) - 1)
    if field == (1 << exp_bits) - 1:
        return NAN_VALUE if man else Exact(INF, negative)
    if field == 0:
        if not subnormals:
            return Exact(FINITE, negative)
        sig, scale = man, 1 - _bias(exp_bits) - man_bits
    else:
        sig, scale = man | (1 << man_bits), field - _bias(exp_bits) - man_bits
    mag = Fraction(sig << scale) if scale >= 0 else Fraction(sig, 1 << -scale)
    return Exact(FINITE, negative, mag)


def exact(x: Exact | Fraction | int | float) -> Exact:
    """Any number as an :class:`Exact`: a Python/numpy float keeps its sign of zero, Inf, NaN."""
    if isinstance(x, Exact):
        return x
    if isinstance(x, numbers.Rational) and not isinstance(x, bool):
        return Exact(FINITE, bool(x < 0), abs(Fraction(x)))
    f = float(x)
    if math.isnan(f):
        return NAN_VALUE
    negative = math.copysign(1.0, f) < 0
    if math.isinf(f):
        return Exact(INF, negative)
    return Exact(FINITE, negative, abs(Fraction(f)))


def _floor_log2(num: int, den: int) -> int:
    """floor(log2(num / den)) for positive integers."""
    e = num.bit_length() - den.bit_length()
    below = num < (den << e) if e >= 0 else (num << -e) < den
    return e - 1 if below else e


def encode(x: Exact | Fraction | int | float, exp_bits: int, man_bits: int, *,
           subnormals: bool = True) -> int:
    """Round ``x`` to the nearest (E, M) value, ties to even, and return its bit pattern.

    Overflow (the rounded magnitude reaches 2^(emax+1)) gives Inf of the value's sign; NaN gives
    the canonical NaN. A nonzero value that rounds to zero keeps its sign. ``subnormals=False``
    flushes a value whose exact magnitude is below the smallest normal to a zero of its sign
    (decided before rounding, as fp_mul's flush mode does).
    """
    check_format(exp_bits, man_bits)
    v = exact(x)
    sign = int(v.negative) << (exp_bits + man_bits)
    if v.is_nan:
        return canonical_nan(exp_bits, man_bits)
    if v.is_inf:
        return inf_bits(exp_bits, man_bits, v.negative)
    if v.magnitude == 0:
        return sign
    bias = _bias(exp_bits)
    emin = 1 - bias
    num, den = v.magnitude.numerator, v.magnitude.denominator
    e = _floor_log2(num, den)
    if e < emin and not subnormals:
        return sign
    q = max(e, emin) - man_bits  # the quantum (LSB weight) is 2^q
    if q <= 0:
        quo, rem = divmod(num << -q, den)
        den_q = den
    else:
        den_q = den << q
        quo, rem = divmod(num, den_q)
    if 2 * rem > den_q or (2 * rem == den_q and quo & 1):
        quo += 1
    if quo == 1 << (man_bits + 1):  # the carry made it the next binade's 1.0 (quo was odd+1)
        quo >>= 1
        q += 1
    if quo < 1 << man_bits:  # subnormal (or zero): exponent field 0
        return sign | quo
    field = q + man_bits + bias
    if field >= (1 << exp_bits) - 1:
        return sign | inf_bits(exp_bits, man_bits)
    return sign | (field << man_bits) | (quo - (1 << man_bits))


def add(a: Exact, b: Exact) -> Exact:
    """The exact IEEE sum: NaN if either is NaN or for Inf - Inf; an exact zero sum is +0
    unless both operands are -0 (round to nearest)."""
    if a.is_nan or b.is_nan or (a.is_inf and b.is_inf and a.negative != b.negative):
        return NAN_VALUE
    if a.is_inf:
        return a
    if b.is_inf:
        return b
    total = a.value + b.value
    if total == 0:
        return Exact(FINITE, a.negative and b.negative and a.is_zero and b.is_zero)
    return Exact(FINITE, total < 0, abs(total))


def mul(a: Exact, b: Exact) -> Exact:
    """The exact IEEE product: NaN if either is NaN or for Inf x 0; otherwise the sign is the
    XOR of the operands' signs (zeros and infinities included)."""
    if a.is_nan or b.is_nan or (a.is_inf and b.is_zero) or (b.is_inf and a.is_zero):
        return NAN_VALUE
    negative = a.negative != b.negative
    if a.is_inf or b.is_inf:
        return Exact(INF, negative)
    return Exact(FINITE, negative, a.magnitude * b.magnitude)


def add_bits(a: int, b: int, exp_bits: int, man_bits: int) -> int:
    """IEEE sum of two (E, M) patterns, rounded to nearest even (subnormals kept)."""
    return encode(add(decode(a, exp_bits, man_bits), decode(b, exp_bits, man_bits)),
                  exp_bits, man_bits)


def mul_bits(a: int, b: int, exp_bits: int, man_bits: int, *, subnormals: bool = True) -> int:
    """IEEE product of two (E, M) patterns, rounded to nearest even.

    ``subnormals=False``: subnormal operands read as zeros of their sign and results below the
    smallest normal flush to zeros of their sign (fp_mul's SUBNORMALS=0).
    """
    p = mul(decode(a, exp_bits, man_bits, subnormals=subnormals),
            decode(b, exp_bits, man_bits, subnormals=subnormals))
    return encode(p, exp_bits, man_bits, subnormals=subnormals)
