"""cocotb regression of hdl/lmul_unit.v: the registered L-Mul stage with valid/ready.

A driver offers random operand pairs with random valid gaps, a sink applies random back-pressure,
and a scoreboard checks that every accepted pair produces exactly one result, in order, equal to
``lmul.lmul_bits`` (no loss, duplication or reordering); that out_valid/out_y hold while stalled;
that full throughput (one result per clock) is reached with ready held high; and that a reset in
the middle of traffic leaves no stale result. Vector count: ``LMUL_VECTORS`` (default 8,000),
seed ``COCOTB_RANDOM_SEED``.
"""

from __future__ import annotations

from collections import deque

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

import lmul

from common import hdl, random_seed, run_cocotb, tb_parameters, vector_count

DEFAULT_VECTORS = 8_000


class TB:
    """Clock, reset, driver, sink and scoreboard around one lmul_unit."""

    def __init__(self, dut, cfg: lmul.LMulConfig, rng: np.random.Generator) -> None:
        self.dut = dut
        self.cfg = cfg
        self.rng = rng
        self.expected: deque[tuple[int, int, int]] = deque()
        self.received = 0

    async def start(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        self.dut.in_valid.value = 0
        self.dut.out_ready.value = 0
        self.dut.in_a.value = 0
        self.dut.in_b.value = 0
        await self.reset()

    async def reset(self, cycles: int = 2) -> None:
        self.dut.rst.value = 1
        self.dut.in_valid.value = 0
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        self.expected.clear()

    async def run(self, a: np.ndarray, b: np.ndarray, p_valid: float, p_ready: float,
                  reset_at: int | None = None) -> int:
        """Stream all pairs; return the number of cycles taken. Checks on every clock edge."""

        dut = self.dut
        model = lmul.lmul_bits(a, b, self.cfg)
        i = cycles = 0
        held: int | None = None  # out_y of a stalled (valid, not ready) cycle
        while i < len(a) or self.expected:
            offer = i < len(a) and self.rng.random() < p_valid
            dut.in_valid.value = int(offer)
            if offer:
                dut.in_a.value = int(a[i])
                dut.in_b.value = int(b[i])
            dut.out_ready.value = int(self.rng.random() < p_ready)
            await ReadOnly()
            in_fire = offer and int(dut.in_ready.value) == 1
            out_valid = int(dut.out_valid.value) == 1
            out_fire = out_valid and int(dut.out_ready.value) == 1
            if out_valid:
                y = int(dut.out_y.value)
                assert self.expected, f"cycle {cycles}: out_valid with no outstanding operation"
                ea, eb, ey = self.expected[0]
                assert y == ey, (f"cycle {cycles}: a=0x{ea:x} b=0x{eb:x} rtl=0x{y:x} "
                                 f"model=0x{ey:x} ({self.cfg.describe()})")
                if held is not None:
                    assert held == y, f"cycle {cycles}: output changed while stalled"
                held = None if out_fire else y
            else:
                assert held is None, f"cycle {cycles}: out_valid dropped while stalled"
            if out_fire:
                self.expected.popleft()
                self.received += 1
            if in_fire:
                self.expected.append((int(a[i]), int(b[i]), int(model[i])))
                i += 1
            await RisingEdge(dut.clk)
            cycles += 1
            if reset_at is not None and cycles == reset_at:
                await self.reset()
                held = None
                await ReadOnly()
                assert int(dut.out_valid.value) == 0, "out_valid set right after reset"
                await RisingEdge(dut.clk)
                reset_at = None
            assert cycles < 20 * len(a) + 1000, "no progress: handshake deadlock"
        return cycles



@cocotb.test()
async def run_lmul_unit(dut) -> None:
    params = tb_parameters()
    cfg = lmul.LMulConfig(params["EXP_BITS"], params["MAN_BITS"], offset=params["OFFSET"],
                          saturate=bool(params["SATURATE"]))
    seed, count = random_seed(), vector_count(DEFAULT_VECTORS)
    dut._log.info("config %s, COCOTB_RANDOM_SEED=%d, LMUL_VECTORS=%d", cfg.describe(), seed, count)
    rng = np.random.default_rng(seed)
    tb = TB(dut, cfg, rng)
    await tb.start()
    width = cfg.fmt.width

    def pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
        return (rng.integers(0, 1 << width, n, dtype=np.int64),
                rng.integers(0, 1 << width, n, dtype=np.int64))

    # Full throughput: always valid, always ready -> n results in n + 1 cycles.
    n = min(count, 2000)
    cycles = await tb.run(*pairs(n), p_valid=1.0, p_ready=1.0)
    assert cycles <= n + 2, f"throughput: {n} results took {cycles} cycles"
    # Random valid and ready patterns.
    for p_valid, p_ready in ((0.5, 0.5), (0.9, 0.3), (0.3, 0.9), (1.0, 0.7)):
        await tb.run(*pairs(count // 4), p_valid=p_valid, p_ready=p_ready)
    # Reset in the middle of traffic: outstanding results are dropped, nothing stale appears.
    await tb.run(*pairs(200), p_valid=0.8, p_ready=0.4, reset_at=57)
    dut._log.info("%d results checked in order", tb.received)
    assert tb.received >= n + 4 * (count // 4)


@pytest.mark.parametrize("preset", ["bf16", "e4m3_ieee"])
@pytest.mark.parametrize("saturate", [0, 1])
def test_lmul_unit(preset: str, saturate: int) -> None:
    fmt = lmul.PRESETS[preset]
    cfg = lmul.LMulConfig(fmt.exp_bits, fmt.man_bits, saturate=bool(saturate))
    run_cocotb("test_lmul_unit", "lmul_unit", hdl("lmul_unit.v", "lmul_core.v"),
               parameters=cfg.verilog_parameters())
