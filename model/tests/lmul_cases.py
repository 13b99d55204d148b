"""The model tests' case table and operand helpers, written once.

:data:`CONFIGS` and :data:`MULTIPLIERS` come from the package's own lists (``lmul.PRESETS``,
``lmul.MULTIPLIERS``), so a preset renamed or a multiplier added shows here. The regression
knobs (seed, full run, vector count) are not read here: they are the repository conftest's
fixtures ``random_seed``, ``full_run`` and ``vector_count``, validated once.
"""

from __future__ import annotations

import numpy as np

import lmul
from lmul import LMulConfig

MULTIPLIERS: tuple[str, ...] = tuple(lmul.MULTIPLIERS)


def preset(name: str, **options: object) -> LMulConfig:
    """An L-Mul configuration on the preset format ``name`` (``offset``/``saturate`` as given)."""
    return LMulConfig.for_format(name, **options)  # type: ignore[arg-type]


#: Test name -> configuration: every preset format, and the options the kernels treat
#: separately (offset 0, saturation).
CONFIGS: dict[str, LMulConfig] = {
    "bf16": preset("bf16"),
    "bf16-mitchell": preset("bf16", offset=0),
    "e4m3_ieee": preset("e4m3_ieee"),
    "e4m3fn": preset("e4m3fn"),  # OCP FP8: no Inf, NaN only at S.1111.111, overflow -> NaN
    "e4m3fn-sat": preset("e4m3fn", saturate=True),
    "e5m2-sat": preset("e5m2", saturate=True),
    "fp16-sat": preset("fp16", saturate=True),
    "fp32": preset("fp32"),  # E + M = 31: the kernels' int64 path
}
#: One configuration per kind of kernel path (E = 8, E < 8, finite-only, saturating, int64):
#: what the product variants (narrow, prepared) are checked on.
PATH_CONFIGS: dict[str, LMulConfig] = {
    name: CONFIGS[name] for name in ("bf16", "e4m3_ieee", "e4m3fn", "e5m2-sat", "fp32")}

#: float32 values at the formats' edges: NaN, Inf, signed zeros, float32 subnormals, the largest
#: finite values of the presets, values beyond every format's range.
SPECIALS = np.array(
    [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-40, 1.1754942e-38, 3.0e38, -3.4028235e38,
     2.0**-130, 2.0**-133, 65504.0, 5.96e-8, 448.0, 240.0, 57344.0, -1.0, 1.0, 1e20, -1e-20],
    dtype=np.float32)


def bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


def assert_same_bits(got: np.ndarray, want: np.ndarray, canonical_nan: bool = True) -> None:
    """Same float32 bit patterns (signed zeros, Inf, NaN payloads); with ``canonical_nan`` every
    NaN must also be ``0x7FC00000``."""
    assert got.dtype == np.float32 and got.shape == want.shape
    diff = np.flatnonzero(bits(got) != bits(want))
    if diff.size:
        i = diff[0]
        g, w = bits(got).ravel()[i], bits(want).ravel()[i]
        raise AssertionError(f"{diff.size} of {got.size} results differ; first at flat index {i}: "
                             f"got {g:#010x}, want {w:#010x}")
    if canonical_nan:
        assert np.all(bits(got)[np.isnan(got)] == 0x7FC00000)


def mixed(rng: np.random.Generator, shape: tuple[int, ...], cfg: LMulConfig,
          special_frac: float = 0.0) -> np.ndarray:
    """float32 values: half near 1, half spread over the format's whole exponent range (so
    products under- and overflow), zeros of both signs, subnormals, and a fraction of
    :data:`SPECIALS`."""
    fmt = cfg.fmt
    e = rng.integers(fmt.emin - fmt.man_bits - 2, fmt.emax + 2, shape)
    wide = rng.uniform(1, 2, shape) * np.exp2(e) * rng.choice([-1, 1], shape)
    x = np.where(rng.random(shape) < 0.5, rng.standard_normal(shape), wide)
    x = np.where(rng.random(shape) < 0.05, rng.choice([0.0, -0.0], shape), x)
    with np.errstate(over="ignore"):
        x = x.astype(np.float32)
    if special_frac:
        pick = rng.random(shape) < special_frac
        x[pick] = rng.choice(SPECIALS, int(pick.sum()))
    return x
