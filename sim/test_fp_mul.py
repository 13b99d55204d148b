"""cocotb regression of hdl/fp_mul.v (exact IEEE multiplier, RNE) against independent references.

Reference: each operand is decoded by ml_dtypes / numpy (``float8_e4m3``, ``float8_e5m2``,
``bfloat16``, ``float16``) to float64, multiplied in float64 (exact: two significands of at most
11 bits give at most 22 bits, and the exponent range stays far inside float64's), and the product
is rounded once to the format by the ml_dtypes / numpy cast. A second reference rounds the exact
product with the exact-rounding oracle ``sim/lib/oracle.py`` (rational arithmetic); it checks the
first on every exhaustive, special and boundary vector (ml_dtypes casts float64 to bfloat16
through float32, a double rounding that is harmless for products of two bfloat16 values but must
not be trusted blindly).

Configurations: presets BF16, FP16, E4M3, E5M2 x SUBNORMALS (1: full IEEE, 0: flush).

* 8-bit formats: all 65,536 operand pairs.
* BF16 / FP16: every special class against every other, underflow / subnormal / overflow /
  rounding-carry boundary pairs (a fixed 12,000), then random pairs: default 40,000 per
  configuration, ``LMUL_VECTORS`` overrides; seed ``COCOTB_RANDOM_SEED``. Both are printed.

The DUT is ``sim/hdl/fp_mul_lanes.v``: LANES multipliers on packed buses.
"""

from __future__ import annotations

import cocotb
import ml_dtypes
import numpy as np
import pytest

import lmul
from sim.lib import oracle
from sim.lib.cases import fp_mul_cases
from sim.lib.common import (
    random_pairs,
    random_seed,
    run_cocotb,
    special_values,
    tb_parameters,
    vector_count,
)
from sim.lib.lanes import LaneBench, cross_pairs, exhaustive_pairs

LANES = 32
DEFAULT_RANDOM_VECTORS = 40_000
BOUNDARY_VECTORS = 12_000

#: The independent numpy / ml_dtypes scalar type of each preset (E4M3 is the IEEE-style one).
NUMPY_TYPES = {
    "bf16": ml_dtypes.bfloat16,
    "fp16": np.float16,
    "e4m3_ieee": ml_dtypes.float8_e4m3,
    "e4m3fn": ml_dtypes.float8_e4m3fn,
    "e5m2": ml_dtypes.float8_e5m2,
}


def _exp_field(bits: np.ndarray, fmt: lmul.Format) -> np.ndarray:
    return (bits >> fmt.man_bits) & fmt.max_exp_field


def reference_bits(a: np.ndarray, b: np.ndarray, fmt: lmul.Format, subnormals: bool
                   ) -> np.ndarray:
    """Expected fp_mul result bits (uint64) from ml_dtypes / numpy rounding of the exact product.

    With ``subnormals=False``: operands with exponent field 0 are zeros of their sign, and a
    product whose exact magnitude is below the smallest normal is a zero of the product's sign.
    NaN results are the canonical quiet NaN (for E4M3FN also an overflow, which the cast makes
    a NaN of either sign).
    """
    dtype = NUMPY_TYPES[fmt.name]
    x = a.astype(fmt.uint_dtype).view(dtype).astype(np.float64)
    y = b.astype(fmt.uint_dtype).view(dtype).astype(np.float64)
    if not subnormals:
        x = np.where(_exp_field(a, fmt) == 0, np.copysign(0.0, x), x)
        y = np.where(_exp_field(b, fmt) == 0, np.copysign(0.0, y), y)
    with np.errstate(invalid="ignore", over="ignore"):
        p = x * y
        if not subnormals:
            p = np.where(np.abs(p) < 2.0 ** (1 - fmt.bias), np.copysign(0.0, p), p)
        cast = p.astype(dtype)
    out = cast.view(fmt.uint_dtype).astype(np.uint64)
    return np.where(np.isnan(cast.astype(np.float64)), np.uint64(fmt.qnan_bits), out)


def oracle_reference_bits(a: np.ndarray, b: np.ndarray, fmt: lmul.Format, subnormals: bool
                            ) -> np.ndarray:
    """Expected bits from the exact-rounding oracle (slow; used to vet :func:`reference_bits`)."""
    e, m = fmt.exp_bits, fmt.man_bits
    return np.array([oracle.mul_bits(x, y, e, m, subnormals=subnormals)
                     for x, y in zip(a.tolist(), b.tolist(), strict=True)], dtype=np.uint64)


def boundary_pairs(fmt: lmul.Format, count: int, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose products land where the datapath has edge cases: the subnormal range and just
    below it (denormalisation shift, rounding up to the smallest normal), subnormal operands
    times normals (normalisation shift), and the overflow edge (rounding up to Inf). Mantissas are
    biased towards all ones / zero so that rounding carries happen often."""
    m, e_bits = fmt.man_bits, fmt.exp_bits
    emax = fmt.max_exp_field
    quarter = count // 4

    def mantissas(n: int) -> np.ndarray:
        special = np.array([0, 1, fmt.man_mask, fmt.man_mask - 1 if m > 1 else 0])
        pick = rng.integers(0, 2, n).astype(bool)
        return np.where(pick, rng.choice(special, n), rng.integers(0, 1 << m, n))

    def pack(sign: np.ndarray, e: np.ndarray, man: np.ndarray) -> np.ndarray:
        return (sign << (e_bits + m)) | (e << m) | man

    def pair_with_sum(n: int, t_lo: int, t_hi: int) -> tuple[np.ndarray, np.ndarray]:
        # Exponent fields ea + eb = t + bias with both in 1..emax-1.
        t = rng.integers(t_lo, t_hi + 1, n)
        s = t + fmt.bias
        lo = np.maximum(1, s - (emax - 1))
        hi = np.minimum(emax - 1, s - 1)
        ok = lo <= hi
        ea = lo + (rng.random(n) * (hi - lo + 1)).astype(np.int64)
        ea, eb = ea[ok], (s - ea)[ok]
        k = ea.size
        return (pack(rng.integers(0, 2, k), ea, mantissas(k)),
                pack(rng.integers(0, 2, k), eb, mantissas(k)))

    parts = [
        pair_with_sum(quarter, -m - 3, 1),                 # subnormal / underflow results
        pair_with_sum(quarter, emax - 3, emax),            # overflow edge
    ]
    sub = pack(rng.integers(0, 2, quarter), np.zeros(quarter, np.int64),
               rng.integers(1, 1 << m, quarter))
    other = pack(rng.integers(0, 2, quarter), rng.integers(0, emax, quarter), mantissas(quarter))
    parts.append((sub, other))                               # subnormal x anything finite
    parts.append((other[: count - 3 * quarter], sub[: count - 3 * quarter]))
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


class TB(LaneBench):
    """Drives packed operand lanes into fp_mul_lanes; the reference is :func:`reference_bits`."""

    def __init__(self, dut, fmt: lmul.Format, subnormals: bool, lanes: int) -> None:
        super().__init__(dut, fmt.width, lanes, f"{fmt.name}, SUBNORMALS={int(subnormals)}")
        self.fmt = fmt
        self.subnormals = subnormals

    async def check(self, a: np.ndarray, b: np.ndarray, what: str, vet: bool) -> None:
        """Apply all pairs (a[i], b[i]); assert the RTL bits equal the reference's, every vector.

        With ``vet``, the ml_dtypes reference is itself checked against exact rationals first.
        """
        fmt = self.fmt
        expected = reference_bits(a, b, fmt, self.subnormals)
        if vet:
            exact = oracle_reference_bits(a, b, fmt, self.subnormals)
            bad = np.nonzero(exact != expected)[0]
            assert not bad.size, (
                f"{what}: ml_dtypes reference disagrees with the exact oracle on {bad.size} "
                f"vectors, first a=0x{int(a[bad[0]]):x} b=0x{int(b[bad[0]]):x}")
        await self.check_bits(a, b, expected, what)


@cocotb.test()
async def run_fp_mul(dut) -> None:
    """All vector classes for one configuration."""
    params = tb_parameters()
    fmt = lmul.format_for(params["EXP_BITS"], params["MAN_BITS"],
                          bool(params.get("FINITE_ONLY", 0)))
    subnormals = bool(params["SUBNORMALS"])
    seed = random_seed()
    count = vector_count(DEFAULT_RANDOM_VECTORS)
    dut._log.info("fp_mul %s SUBNORMALS=%d, COCOTB_RANDOM_SEED=%d, LMUL_VECTORS=%d",
                  fmt.name, subnormals, seed, count)
    tb = TB(dut, fmt, subnormals, params["LANES"])
    if fmt.width <= 8:
        # The rational oracle has IEEE-style encodings only; a finite-only format's ml_dtypes
        # reference is vetted against the integer oracle in sim/tests/test_prove_fp8.py.
        await tb.check(*exhaustive_pairs(fmt.width), "exhaustive", vet=fmt.has_inf)
    else:
        rng = np.random.default_rng(seed)
        await tb.check(*cross_pairs(special_values(fmt)), "special x special", vet=True)
        await tb.check(*boundary_pairs(fmt, BOUNDARY_VECTORS, rng), "boundaries", vet=True)
        await tb.check(*random_pairs(fmt, count, rng), "random", vet=False)
    tb.log_summary(f"{fmt.name} SUBNORMALS={int(subnormals)}")


@pytest.mark.parametrize(("preset", "subnormals"), fp_mul_cases())
def test_fp_mul(preset: str, subnormals: int) -> None:
    fmt = lmul.PRESETS[preset]
    params = {"EXP_BITS": fmt.exp_bits, "MAN_BITS": fmt.man_bits, "SUBNORMALS": subnormals,
              "FINITE_ONLY": int(fmt.finite_only), "LANES": LANES}
    run_cocotb("test_fp_mul", "fp_mul_lanes", ("fp_mul_lanes.v",),
               parameters=params, build_tag=f"{preset}-sub{subnormals}")
