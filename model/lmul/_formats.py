"""Number formats and the L-Mul configuration: the single definition shared by model and RTL.

A format is ``sign | exponent (E bits) | mantissa (M bits)``, MSB first, exponent bias
``2**(E-1) - 1``, exponent field 0 zero (mantissa 0) or a subnormal, with one of two encodings of
the special values (:attr:`Format.finite_only`):

* IEEE-style (default): exponent field all ones is Inf (mantissa 0) or NaN (otherwise);
* finite-only, the OCP FP8 "FN" style of ``float8_e4m3fn``: no Inf; only exponent and mantissa
  both all ones (``S.1...1.1...1``, either sign) is NaN, every other all-ones-exponent code is a
  normal number (E4M3FN: largest finite ``S.1111.110`` = 448).

Testbenches pass :meth:`LMulConfig.verilog_parameters` to the RTL, so the hardware and this model
cannot drift.

:class:`Format` covers every width of the project's datapaths (the adder goes up to binary64);
:class:`LMulConfig` alone enforces the narrower limits of the L-Mul unit. The preset ``e4m3_ieee``
is the IEEE-style E4M3 (with Inf, largest finite 240, ``ml_dtypes.float8_e4m3``); ``e4m3fn`` is
the OCP FP8 E4M3 of ML frameworks (``torch.float8_e4m3fn``, ``ml_dtypes.float8_e4m3fn``: no Inf,
largest 448); ``e5m2`` is OCP FP8 E5M2 (IEEE-style, ``ml_dtypes.float8_e5m2``) bit for bit.
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
#: Widest exponent of a finite-only L-Mul format: with E = 8 its top binade exceeds float32's.
LMUL_FINITE_ONLY_MAX_EXP_BITS = 7


def _check_int(owner: str, name: str, value: object, lo: int, hi: int) -> int:
    """``value`` as an int in ``lo..hi``: TypeError for a non-integer (bools and floats
    included, so ``8.0`` never leaks into Verilog parameters), ValueError when out of range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner} {name} must be an int in {lo}..{hi}, got {value!r} "
                        f"({type(value).__name__})")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{owner} {name} must be in {lo}..{hi}, got {int(value)}")
    return int(value)


def _check_bool(owner: str, name: str, value: object) -> bool:
    """``value`` as a bool: a bool or the int 0/1 (TypeError / ValueError otherwise)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner} {name} must be a bool (or 0/1), got {value!r} "
                        f"({type(value).__name__})")
    if value not in (0, 1):
        raise ValueError(f"{owner} {name} must be a bool (or 0/1), got {value!r}")
    return bool(value)


@dataclass(frozen=True)
class Format:
    """A binary floating-point format ``(exp_bits, man_bits)``, IEEE-style or finite-only.

    Attributes:
        name: display name, e.g. ``"bf16"``.
        exp_bits: exponent field width E, 2..11 (the L-Mul unit takes 2..8: :class:`LMulConfig`).
        man_bits: stored mantissa width M, 1..52 (the L-Mul unit takes 1..23).
        finite_only: False (default): IEEE-style Inf/NaN at exponent all ones. True: the OCP
            "FN" encoding: no Inf, NaN only at exponent and mantissa all ones, the other
            all-ones-exponent codes are normal numbers (one more binade, less one code).
    """

    name: str
    exp_bits: int
    man_bits: int
    finite_only: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "exp_bits", _check_int("Format", "exp_bits", self.exp_bits,
                                                        *FORMAT_EXP_BITS_RANGE))
        object.__setattr__(self, "man_bits", _check_int("Format", "man_bits", self.man_bits,
                                                        *FORMAT_MAN_BITS_RANGE))
        object.__setattr__(self, "finite_only", _check_bool("Format", "finite_only",
                                                            self.finite_only))

    @property
    def has_inf(self) -> bool:
        """Whether the format encodes Inf (IEEE-style); finite-only formats do not."""
        return not self.finite_only

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
        """The all-ones exponent field, ``2**E - 1`` (Inf/NaN only; finite-only: also normals)."""
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
    def nonfinite_bits(self) -> int:
        """The smallest non-finite magnitude pattern: +Inf, or for a finite-only format the NaN
        ``0.1...1.1...1``. Every magnitude (pattern without sign) at or above it is Inf/NaN."""
        if self.finite_only:
            return self.field_mask
        return self.max_exp_field << self.man_bits

    @property
    def inf_bits(self) -> int:
        """Bit pattern of +Inf.

        Raises:
            ValueError: a finite-only format (it has no Inf; see :attr:`nonfinite_bits`).
        """
        if self.finite_only:
            raise ValueError(f"format {self.name} is finite-only: it has no Inf")
        return self.max_exp_field << self.man_bits

    @property
    def qnan_bits(self) -> int:
        """Bit pattern of the canonical quiet NaN, sign 0: exponent all ones and mantissa MSB only
        (IEEE-style), or exponent and mantissa all ones (finite-only, the one NaN magnitude)."""
        if self.finite_only:
            return self.field_mask
        return self.inf_bits | (1 << (self.man_bits - 1))

    @property
    def max_finite_bits(self) -> int:
        """Bit pattern of the largest finite positive value (E4M3FN: ``0x7E``, 448)."""
        return self.nonfinite_bits - 1

    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal number, ``1 - bias``."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Unbiased exponent of the largest finite number: ``2**E - 2 - bias``, or
        ``2**E - 1 - bias`` for a finite-only format."""
        return (self.max_finite_bits >> self.man_bits) - self.bias

    @property
    def max_finite(self) -> float:
        """Largest finite value, as a Python float (E4M3FN: 448.0)."""
        sig = (self.max_finite_bits & self.man_mask) | (1 << self.man_bits)
        return float(sig * 2.0 ** (self.emax - self.man_bits))

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
#: field 15 encodes Inf/NaN, so its largest finite value is 240 (``ml_dtypes.float8_e4m3``).
#: ``e4m3fn`` is the OCP FP8 E4M3 of ML frameworks (``torch.float8_e4m3fn``,
#: ``ml_dtypes.float8_e4m3fn``: finite-only, NaN ``S.1111.111``, largest 448). ``e5m2`` is both
#: the IEEE-style E5M2 and OCP FP8 E5M2 (``torch.float8_e5m2``, ``ml_dtypes.float8_e5m2``): the
#: OCP spec gives E5M2 IEEE encodings, so the two are one format bit for bit.
PRESETS: dict[str, Format] = {
    "bf16": Format("bf16", 8, 7),
    "fp16": Format("fp16", 5, 10),
    "e4m3_ieee": Format("e4m3_ieee", 4, 3),
    "e4m3fn": Format("e4m3fn", 4, 3, finite_only=True),
    "e5m2": Format("e5m2", 5, 2),
    "fp32": Format("fp32", 8, 23),
}

#: Other names of presets: the dtype names of ml_dtypes / torch (and OCP's), lower case.
PRESET_ALIASES: dict[str, str] = {
    "bfloat16": "bf16",
    "float16": "fp16",
    "float8_e4m3": "e4m3_ieee",
    "float8_e4m3fn": "e4m3fn",
    "ocp_e4m3": "e4m3fn",
    "float8_e5m2": "e5m2",
    "ocp_e5m2": "e5m2",
    "float32": "fp32",
}

FP32 = PRESETS["fp32"]


def preset(name: str) -> Format:
    """The preset called ``name`` (case-insensitive), or one of :data:`PRESET_ALIASES`.

    Raises:
        ValueError: an unknown name (the message lists the presets and aliases).
    """
    key = str(name).strip().lower()
    key = PRESET_ALIASES.get(key, key)
    if key not in PRESETS:
        raise ValueError(f"unknown format {name!r}; presets: {sorted(PRESETS)}, aliases: "
                         f"{sorted(PRESET_ALIASES)}")
    return PRESETS[key]


def format_for(exp_bits: int, man_bits: int, finite_only: bool = False) -> Format:
    """Return the preset with these widths and encoding, or an anonymous ``e{E}m{M}`` format
    (``e{E}m{M}fn`` when finite-only).

    Raises:
        TypeError / ValueError: widths that are not ints in the :class:`Format` ranges, or a
            ``finite_only`` that is not a bool (or 0/1).
    """
    exp_bits = _check_int("format", "exp_bits", exp_bits, *FORMAT_EXP_BITS_RANGE)
    man_bits = _check_int("format", "man_bits", man_bits, *FORMAT_MAN_BITS_RANGE)
    finite_only = _check_bool("format", "finite_only", finite_only)
    for fmt in PRESETS.values():
        if (fmt.exp_bits, fmt.man_bits, fmt.finite_only) == (exp_bits, man_bits, finite_only):
            return fmt
    suffix = "fn" if finite_only else ""
    return Format(f"e{exp_bits}m{man_bits}{suffix}", exp_bits, man_bits, finite_only)


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
            or the int 0/1). For a finite-only format (no Inf) overflow gives NaN unless
            saturating: the two conversion modes of the OCP FP8 spec.
        finite_only: the OCP "FN" encoding (:attr:`Format.finite_only`; ``e4m3fn`` is E=4,
            M=3 with it); a bool or 0/1. Needs E <= 7: with E = 8 the extra binade would not
            widen to float32.

    Raises:
        TypeError: a field of the wrong type (floats such as ``8.0`` and bools for the widths
            and the offset are refused, so they cannot leak into :meth:`verilog_parameters`).
        ValueError: a field out of range.
    """

    exp_bits: int = 8
    man_bits: int = 7
    offset: int | None = None
    saturate: bool = False
    finite_only: bool = False
    fmt: Format = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exp_bits = _check_int("LMulConfig", "exp_bits", self.exp_bits, *LMUL_EXP_BITS_RANGE)
        man_bits = _check_int("LMulConfig", "man_bits", self.man_bits, *LMUL_MAN_BITS_RANGE)
        object.__setattr__(self, "exp_bits", exp_bits)
        object.__setattr__(self, "man_bits", man_bits)
        finite_only = _check_bool("LMulConfig", "finite_only", self.finite_only)
        if finite_only and exp_bits > LMUL_FINITE_ONLY_MAX_EXP_BITS:
            raise ValueError(f"LMulConfig finite_only needs exp_bits <= "
                             f"{LMUL_FINITE_ONLY_MAX_EXP_BITS} (its largest values must widen "
                             f"to float32), got exp_bits={exp_bits}")
        object.__setattr__(self, "finite_only", finite_only)
        object.__setattr__(self, "fmt", format_for(exp_bits, man_bits, finite_only))
        if self.offset is not None:
            object.__setattr__(self, "offset", _check_int(
                "LMulConfig", f"offset (man_bits={man_bits})", self.offset, 0,
                (1 << man_bits) - 1))
        object.__setattr__(self, "saturate", _check_bool("LMulConfig", "saturate",
                                                         self.saturate))

    @classmethod
    def for_format(cls, fmt: Format | str, offset: int | None = None,
                   saturate: bool = False) -> LMulConfig:
        """The configuration of format ``fmt`` (a :class:`Format`, a preset name or alias)."""
        f = preset(fmt) if isinstance(fmt, str) else fmt
        if not isinstance(f, Format):
            raise TypeError(f"fmt must be an lmul.Format or a preset name, got "
                            f"{type(fmt).__name__}")
        return cls(f.exp_bits, f.man_bits, offset, saturate, f.finite_only)

    @property
    def offset_value(self) -> int:
        """The offset actually used, in mantissa LSBs (paper default resolved)."""
        return paper_offset(self.man_bits) if self.offset is None else self.offset

    def verilog_parameters(self) -> dict[str, int]:
        """Parameters for ``lmul_core``/``lmul_unit`` (and the modules above them): EXP_BITS,
        MAN_BITS, OFFSET, SATURATE, FINITE_ONLY."""
        return {
            "EXP_BITS": self.exp_bits,
            "MAN_BITS": self.man_bits,
            "OFFSET": self.offset_value,
            "SATURATE": int(self.saturate),
            "FINITE_ONLY": int(self.finite_only),
        }

    def describe(self) -> str:
        """Short human-readable label, e.g. ``bf16 offset=8``."""
        sat = " saturate" if self.saturate else ""
        return f"{self.fmt.name} offset={self.offset_value}{sat}"

    @classmethod
    def parse(cls, text: str) -> LMulConfig:
        """Parse ``"key=value,..."`` options into a config.

        Keys: ``fmt`` (a preset name: bf16, fp16, e4m3_ieee, e4m3fn, e5m2, fp32, or an alias of
        :data:`PRESET_ALIASES` such as float8_e4m3fn), ``e``/``exp_bits``, ``m``/``man_bits``,
        ``fn``/``finite_only`` (0/1), ``offset`` (an int, or ``paper``), ``saturate`` (0/1).
        Empty text gives
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
                    pre = preset(value)
                    put(item, "exp_bits", pre.exp_bits)
                    put(item, "man_bits", pre.man_bits)
                    put(item, "finite_only", pre.finite_only)
                elif key in ("fn", "finite_only"):
                    put(item, "finite_only", _parse_bool(value))
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
                        f"unknown L-Mul option {key!r}; known: fmt, e, m, fn, offset, saturate"
                    )
            except ValueError as err:
                if str(err).startswith("L-Mul option"):
                    raise
                raise ValueError(f"bad L-Mul option {item!r}: {err}") from None
        return cls(**kwargs)  # type: ignore[arg-type]
