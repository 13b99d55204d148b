"""cocotb regression of hdl/lmul_core.v against the bit-exact model ``lmul.lmul_bits``.

Configurations: presets BF16, FP16, E4M3, E5M2 x OFFSET (paper default, 0) x SATURATE (0, 1),
plus the RTL's own OFFSET default (elaborated without OFFSET) against the model's default.

* 8-bit formats: all 65,536 operand pairs.
* BF16 / FP16: every special class against every other, the exponent-sum underflow / overflow
  boundaries and mantissa-carry boundaries, then random pairs (default 100,000 per configuration,
  ``LMUL_VECTORS`` overrides; seed ``COCOTB_RANDOM_SEED``).

The DUT is ``sim/hdl/lmul_core_lanes.v``: LANES cores on packed buses, one vector per lane and step.
"""

from __future__ import annotations

import cocotb
import numpy as np
import pytest

import lmul
from sim.lib.cases import REPRESENTATIVE, lmul_core_cases
from sim.lib.common import (
    config_from_parameters,
    random_pairs,
    random_seed,
    run_cocotb,
    special_values,
    tb_parameters,
    vector_count,
)
from sim.lib.lanes import LaneBench, cross_pairs, exhaustive_pairs

LANES = 16
DEFAULT_RANDOM_VECTORS = 100_000


def boundary_pairs(cfg: lmul.LMulConfig) -> tuple[np.ndarray, np.ndarray]:
    """Operand pairs whose exponent sum sits at the underflow / overflow edges, with mantissas
    around the carry point of ``ma + mb + OFFSET``."""
    fmt = cfg.fmt
    m, off = fmt.man_bits, cfg.offset_value
    emax = fmt.max_exp_field
    mants = sorted({0, 1, fmt.man_mask, fmt.man_mask - 1, max(0, (1 << m) - off),
                    max(0, (1 << m) - off - 1), 1 << (m - 1), max(0, (1 << (m - 1)) - off)})
    mants = [x & fmt.man_mask for x in mants]
    targets = [-1, 0, 1, 2, emax - 2, emax - 1, emax, emax + 1]  # result exponent ea+eb-bias
    # Every (ea, eb) pair with ea + eb - bias on a target, ea outer and the target inner, then
    # per pair every mantissa pair (ma outer) and sign pair ((0,0), (1,0), (0,1), (1,1)).
    ea = np.repeat(np.arange(1, emax, dtype=np.int64), len(targets))
    eb = np.tile(np.array(targets, dtype=np.int64), emax - 1) + fmt.bias - ea
    keep = (eb >= 1) & (eb < emax)
    ea, eb = ea[keep], eb[keep]
    mant = np.array(mants, dtype=np.int64)
    shape = (ea.size, mant.size, mant.size, 4)
    sa = np.array([0, 1, 0, 1], dtype=np.int64) << (fmt.exp_bits + m)
    sb = np.array([0, 0, 1, 1], dtype=np.int64) << (fmt.exp_bits + m)
    a = (sa[None, None, None, :] | (ea << m)[:, None, None, None]
         | mant[None, :, None, None])
    b = (sb[None, None, None, :] | (eb << m)[:, None, None, None]
         | mant[None, None, :, None])
    return np.broadcast_to(a, shape).ravel().copy(), np.broadcast_to(b, shape).ravel().copy()


class TB(LaneBench):
    """Drives packed operand lanes into lmul_core_lanes; the reference is ``lmul.lmul_bits``."""

    def __init__(self, dut, cfg: lmul.LMulConfig) -> None:
        super().__init__(dut, cfg.fmt.width, LANES, cfg.describe())
        self.cfg = cfg

    async def check(self, a: np.ndarray, b: np.ndarray, what: str) -> None:
        """Apply all pairs (a[i], b[i]) and assert the RTL bits equal the model's, every vector."""
        await self.check_bits(a, b, lmul.lmul_bits(a, b, self.cfg), what)


@cocotb.test()
async def run_lmul_core(dut) -> None:
    """All vector classes for one configuration."""
    cfg = config_from_parameters(tb_parameters())
    fmt = cfg.fmt
    seed = random_seed()
    count = vector_count(DEFAULT_RANDOM_VECTORS)
    dut._log.info("config %s, COCOTB_RANDOM_SEED=%d, LMUL_VECTORS=%d", cfg.describe(), seed, count)
    tb = TB(dut, cfg)
    if fmt.width <= 8:
        await tb.check(*exhaustive_pairs(fmt.width), "exhaustive")
    else:
        await tb.check(*cross_pairs(special_values(fmt)), "special x special")
        await tb.check(*boundary_pairs(cfg), "exponent/carry boundaries")
        rng = np.random.default_rng(seed)
        await tb.check(*random_pairs(fmt, count, rng), "random")
    tb.log_summary(cfg.describe())


@pytest.mark.parametrize(("preset", "offset", "saturate"), lmul_core_cases())
def test_lmul_core(preset: str, offset: int | None, saturate: int) -> None:
    fmt = lmul.PRESETS[preset]
    cfg = lmul.LMulConfig.for_format(fmt, offset=offset, saturate=bool(saturate))
    run_cocotb("test_lmul_core", "lmul_core_lanes", ("lmul_core_lanes.v",),
               parameters={**cfg.verilog_parameters(), "LANES": LANES})


@pytest.mark.parametrize("preset", REPRESENTATIVE)
def test_lmul_core_rtl_default_offset(preset: str) -> None:
    """The RTL's OFFSET default (not passed) must equal the model's paper default.

    Random vectors: ``LMUL_VECTORS``, or 20,000 by default (the offset is what is checked here).
    """
    fmt = lmul.PRESETS[preset]
    params = {"EXP_BITS": fmt.exp_bits, "MAN_BITS": fmt.man_bits, "LANES": LANES}
    run_cocotb("test_lmul_core", "lmul_core_lanes", ("lmul_core_lanes.v",),
               parameters=params, build_tag=f"{preset}-rtl-default-offset",
               extra_env={"LMUL_VECTORS": str(vector_count(20_000))})
