"""Number formats and the L-Mul configuration: the single definition shared by model and RTL.

A format is ``sign | exponent (E bits) | mantissa (M bits)``, MSB first, with IEEE-style encodings:
exponent bias ``2**(E-1) - 1``; exponent field all ones is Inf (mantissa 0) or NaN (otherwise);
exponent field 0 is zero (mantissa 0) or a subnormal. Testbenches pass
:meth:`LMulConfig.verilog_parameters` to the RTL, so the hardware and this model cannot drift.

:class:`Format` covers every width of the project's datapaths (the adder goes up to binary64);
:class:`LMulConfig` alone enforces the narrower limits of the L-Mul unit. The preset ``e4m3_ieee``
is the IEEE-style E4M3 (with Inf, largest finite 240), not the OCP FP8 E4M3FN of ML frameworks
(``ml_dtypes.float8_e4m3fn``: no Inf, largest 448).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Widths a :class:`Format` may have (E, M): every datapath of the project, binary64 included
#: (the RTL's ``fp_add`` checks the same ranges).
FORMAT_EXP_BITS_RANGE = (2, 11)
FORMAT_MAN_BITS_RANGE = (1, 52)
#: Widths the L-Mul unit supports (``lmul_core``/``lmul_unit``/``mac_array`` check the same).
LMUL_EXP_BITS_RANGE = (2, 8)
LMUL_MAN_BITS_RANGE = (1, 23)


def _check_int(owner: str, name: str, value: object, lo: int, hi: int) -> int:
    """``value`` as an int in ``lo..hi``: TypeError for a non-integer (bools and floats
    included, so ``8.0`` never leaks into Verilog parameters), ValueError when out of range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner} {name} must be an int in {lo}..{hi}, got {value!r} "
                        f"({type(value).__name__})")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{owner} {name} must be in {lo}..{hi}, got {int(value)}")
    return int(value)


@dataclass(frozen=True)
class Format:
    """A binary floating-point format ``(exp_bits, man_bits)`` with IEEE-style encodings.

    Attributes:
        name: display name, e.g. ``"bf16"``.
        exp_bits: exponent field width E, 2..11 (the L-Mul unit takes 2..8: :class:`LMulConfig`).
        man_bits: stored mantissa width M, 1..52 (the L-Mul unit takes 1..23).
    """

    name: str
    exp_bits: int
    man_bits: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "exp_bits", _check_int("Format", "exp_bits", self.exp_bits,
                                                        *FORMAT_EXP_BITS_RANGE))
        object.__setattr__(self, "man_bits", _check_int("Format", "man_bits", self.man_bits,
                                                        *FORMAT_MAN_BITS_RANGE))

    @property
    def width(self) -> int:
        """Total width in bits: ``1 + E + M``."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def bias(self) -> int:
        """Exponent bias ``2**(E-1) - 1``."""
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def max_exp_field(self) -> int:
        """The all-ones exponent field (Inf/NaN), ``2**E - 1``."""
        return (1 << self.exp_bits) - 1

    @property
    def man_mask(self) -> int:
        """Mask of the mantissa field, ``2**M - 1``."""
        return (1 << self.man_bits) - 1

    @property
    def field_mask(self) -> int:
        """Mask of the exponent|mantissa field (everything but the sign), ``2**(E+M) - 1``."""
        return (1 << (self.exp_bits + self.man_bits)) - 1

    @property
    def sign_bit(self) -> int:
        """The sign bit's value, ``2**(E+M)``."""
        return 1 << (self.exp_bits + self.man_bits)

    @property
    def inf_bits(self) -> int:
        """Bit pattern of +Inf."""
        return self.max_exp_field << self.man_bits

    @property
    def qnan_bits(self) -> int:
        """Bit pattern of the canonical quiet NaN: sign 0, exponent all ones, mantissa MSB only."""
        return self.inf_bits | (1 << (self.man_bits - 1))

    @property
    def max_finite_bits(self) -> int:
        """Bit pattern of the largest finite positive value."""
        return self.inf_bits - 1

    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal number, ``1 - bias``."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Unbiased exponent of the largest finite number, ``2**E - 2 - bias``."""
        return self.max_exp_field - 1 - self.bias

    @property
    def max_finite(self) -> float:
        """Largest finite value, as a Python float."""
        return float((2.0 - 2.0 ** -self.man_bits) * 2.0**self.emax)

    @property
    def uint_dtype(self) -> np.dtype:
        """Smallest numpy unsigned dtype that holds one bit pattern."""
        if self.width <= 8:
            return np.dtype(np.uint8)
        if self.width <= 16:
            return np.dtype(np.uint16)
        if self.width <= 32:
            return np.dtype(np.uint32)
        return np.dtype(np.uint64)


#: The presets of the project, by lower-case name. ``e4m3_ieee`` is the IEEE-style E4M3: exponent
#: field 15 encodes Inf/NaN, so its largest finite value is 240. It is *not* the OCP FP8 E4M3FN of
#: ML frameworks (``ml_dtypes.float8_e4m3fn``: no Inf, largest 448); ``ml_dtypes.float8_e4m3``
#: is the same format as ``e4m3_ieee``.
PRESETS: dict[str, Format] = {
    "bf16": Format("bf16", 8, 7),
    "fp16": Format("fp16", 5, 10),
    "e4m3_ieee": Format("e4m3_ieee", 4, 3),
    "e5m2": Format("e5m2", 5, 2),
    "fp32": Format("fp32", 8, 23),
}

FP32 = PRESETS["fp32"]


def format_for(exp_bits: int, man_bits: int) -> Format:
    """Return the preset with these widths, or an anonymous ``e{E}m{M}`` format.

    Raises:
        TypeError / ValueError: widths that are not ints in the :class:`Format` ranges.
    """
    exp_bits = _check_int("format", "exp_bits", exp_bits, *FORMAT_EXP_BITS_RANGE)
    man_bits = _check_int("format", "man_bits", man_bits, *FORMAT_MAN_BITS_RANGE)
    for fmt in PRESETS.values():
        if fmt.exp_bits == exp_bits and fmt.man_bits == man_bits:
            return fmt
    return Format(f"e{exp_bits}m{man_bits}", exp_bits, man_bits)


def paper_offset(man_bits: int) -> int:
    """The paper's offset term ``2**-l(M)`` expressed in units of the mantissa LSB.

    ``l(M) = M`` for ``M <= 3``, ``3`` for ``M == 4`` and ``4`` for ``M > 4`` (Luo & Sun, eq. 2), so
    the offset added to the field sum is ``2**(M - l(M))``: 1 for M <= 3, 2 for M = 4, 8 for BF16.
    """
    if man_bits <= 3:
        lm = man_bits
    elif man_bits == 4:
        lm = 3
    else:
        lm = 4
    return 1 << (man_bits - lm)


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected a boolean (0/1/true/false), got {text!r}")


@dataclass(frozen=True)
class LMulConfig:
    """One L-Mul unit configuration: format widths, additive offset and overflow policy.

    Args:
        exp_bits: exponent width E, an int 2..8 (default 8: BF16).
        man_bits: mantissa width M, an int 1..23 (default 7: BF16).
        offset: int added to the field sum, in mantissa LSBs, ``0 <= offset < 2**M``;
            ``None`` selects the paper's ``2**(M - l(M))`` (:func:`paper_offset`); 0 is Mitchell's
            approximation.
        saturate: on exponent overflow return the largest finite value instead of Inf (a bool,
            or the int 0/1).

    Raises:
        TypeError: a field of the wrong type (floats such as ``8.0`` and bools for the widths
            and the offset are refused, so they cannot leak into :meth:`verilog_parameters`).
        ValueError: a field out of range.
    """

    exp_bits: int = 8
    man_bits: int = 7
    offset: int | None = None
    saturate: bool = False
    fmt: Format = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exp_bits = _check_int("LMulConfig", "exp_bits", self.exp_bits, *LMUL_EXP_BITS_RANGE)
        man_bits = _check_int("LMulConfig", "man_bits", self.man_bits, *LMUL_MAN_BITS_RANGE)
        object.__setattr__(self, "exp_bits", exp_bits)
        object.__setattr__(self, "man_bits", man_bits)
        object.__setattr__(self, "fmt", format_for(exp_bits, man_bits))
        if self.offset is not None:
            object.__setattr__(self, "offset", _check_int(
                "LMulConfig", f"offset (man_bits={man_bits})", self.offset, 0,
                (1 << man_bits) - 1))
        sat = self.saturate
        if not isinstance(sat, (bool, np.bool_)):
            if not isinstance(sat, (int, np.integer)):
                raise TypeError(f"LMulConfig saturate must be a bool (or 0/1), got {sat!r} "
                                f"({type(sat).__name__})")
            if sat not in (0, 1):
                raise ValueError(f"LMulConfig saturate must be a bool (or 0/1), got {sat!r}")
        object.__setattr__(self, "saturate", bool(sat))

    @property
    def offset_value(self) -> int:
        """The offset actually used, in mantissa LSBs (paper default resolved)."""
        return paper_offset(self.man_bits) if self.offset is None else self.offset

    def verilog_parameters(self) -> dict[str, int]:
        """Parameters for ``lmul_core``/``lmul_unit``: EXP_BITS, MAN_BITS, OFFSET, SATURATE."""
        return {
            "EXP_BITS": self.exp_bits,
            "MAN_BITS": self.man_bits,
            "OFFSET": self.offset_value,
            "SATURATE": int(self.saturate),
        }

    def describe(self) -> str:
        """Short human-readable label, e.g. ``bf16 offset=8``."""
        sat = " saturate" if self.saturate else ""
        return f"{self.fmt.name} offset={self.offset_value}{sat}"

    @classmethod
    def parse(cls, text: str) -> LMulConfig:
        """Parse ``"key=value,..."`` options into a config.

        Keys: ``fmt`` (a preset name: bf16, fp16, e4m3_ieee, e5m2, fp32), ``e``/``exp_bits``,
        ``m``/``man_bits``, ``offset`` (an int, or ``paper``), ``saturate`` (0/1). Empty text gives
        the default (BF16, paper offset). Example: ``"e=4,m=3,offset=0"``. Each field is set at
        most once: ``"e=8,e=5"`` and ``"fmt=bf16,e=5"`` (``fmt`` sets both widths) are errors.

        Raises:
            TypeError: ``text`` is not a string.
            ValueError: a malformed, unknown, repeated or contradicting option (the message
                names it), or a value out of range.
        """
        if not isinstance(text, str):
            raise TypeError(f"L-Mul options must be a string like 'e=4,m=3', got "
                            f"{type(text).__name__}")
        kwargs: dict[str, object] = {}
        set_by: dict[str, str] = {}  # field -> the option that set it

        def put(item: str, name: str, value: object) -> None:
            if name in set_by:
                raise ValueError(f"L-Mul option {item!r} sets {name} again (already set by "
                                 f"{set_by[name]!r}) in {text!r}")
            set_by[name] = item
            kwargs[name] = value

        for item in filter(None, (p.strip() for p in text.split(","))):
            if "=" not in item:
                raise ValueError(f"L-Mul option {item!r} is not key=value (in {text!r})")
            key, value = (s.strip() for s in item.split("=", 1))
            key = key.lower()
            try:
                if key == "fmt":
                    if value.lower() not in PRESETS:
                        raise ValueError(f"unknown format {value!r}; presets: {sorted(PRESETS)}")
                    preset = PRESETS[value.lower()]
                    put(item, "exp_bits", preset.exp_bits)
                    put(item, "man_bits", preset.man_bits)
                elif key in ("e", "exp_bits"):
                    put(item, "exp_bits", int(value))
                elif key in ("m", "man_bits"):
                    put(item, "man_bits", int(value))
                elif key == "offset":
                    put(item, "offset",
                        None if value.lower() in ("paper", "none") else int(value))
                elif key == "saturate":
                    put(item, "saturate", _parse_bool(value))
                else:
                    raise ValueError(
                        f"unknown L-Mul option {key!r}; known: fmt, e, m, offset, saturate"
                    )
            except ValueError as err:
                if str(err).startswith("L-Mul option"):
                    raise
                raise ValueError(f"bad L-Mul option {item!r}: {err}") from None
        return cls(**kwargs)  # type: ignore[arg-type]
