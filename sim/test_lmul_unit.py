"""cocotb regression of hdl/lmul_unit.v: the registered L-Mul stage with valid/ready.

The shared stream components (sim/lib/stream.py) drive it: a source offers random operand pairs
with random idle cycles (valid and data held until the transfer, garbage on idle data lines), a
sink applies random back-pressure, protocol monitors on both streams fail the test when valid
falls or data changes while ready is low or a result appears without an input, and a scoreboard
checks that every accepted pair produces exactly one result, in order, equal to
``lmul.lmul_bits`` (no loss, duplication or reordering). Also checked: full throughput (one
result per clock, with the measured latency) with ready held high; a reset in the middle of
traffic leaves no stale result; with SKID=1, in_ready does not change when only out_ready does
(it is a register), while with SKID=0 it does (so the probe itself is seen to detect a
combinational path). Vector count: ``LMUL_VECTORS`` (default 8,000 random under back-pressure,
plus min(LMUL_VECTORS, 2,000) at full rate and 300 around a reset), seed ``COCOTB_RANDOM_SEED``.
Configurations: BF16 and E4M3 x SATURATE with SKID=0, BF16 and saturating E4M3 with SKID=1.
"""

from __future__ import annotations

import random
from typing import Any

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, Timer

import lmul
from sim.lib.cases import lmul_unit_cases
from sim.lib.common import (
    config_from_parameters,
    random_seed,
    run_cocotb,
    tb_parameters,
    vector_count,
)
from sim.lib.stream import (
    Beat,
    Scoreboard,
    StreamBench,
    StreamMonitor,
    StreamSink,
    StreamSource,
    pause_never,
    pause_random,
    start_all,
)

DEFAULT_VECTORS = 8_000


class TB(StreamBench):
    """Clock, reset (:meth:`StreamBench.reset`) and the shared stream components around one
    lmul_unit."""

    def __init__(self, dut: Any, cfg: lmul.LMulConfig, seed: int) -> None:
        self.dut = dut
        self.cfg = cfg
        self.rng = random.Random(seed)
        self.board = Scoreboard("lmul_unit out", compare=self._compare)
        self.source = StreamSource(dut, ["in_a", "in_b"], rng=self.rng, name="lmul_unit in",
                                   on_transfer=self._accepted)
        self.sink = StreamSink(dut)
        self.in_mon = StreamMonitor(dut, ["in_a", "in_b"], valid="in_valid", ready="in_ready",
                                    name="lmul_unit in")
        self.out_mon = StreamMonitor(dut, ["out_data"], outstanding=self.board.pending,
                                     on_transfer=self._delivered, name="lmul_unit out")
        self.first_in: int | None = None
        self.last_out: int | None = None

    def _accepted(self, beat: Beat, tag: tuple[int, int, int], cycle: int) -> None:
        if self.first_in is None:
            self.first_in = cycle
        self.board.expect({"out_data": tag[2]}, tag, cycle)

    def _delivered(self, beat: Beat, cycle: int) -> None:
        self.board.check(beat, cycle)
        self.last_out = cycle

    def _compare(self, want: Beat, got: Beat, tag: tuple[int, int, int]) -> str | None:
        if got["out_data"] == want["out_data"]:
            return None
        return (f"a=0x{tag[0]:x} b=0x{tag[1]:x} rtl=0x{got['out_data']:x} "
                f"model=0x{want['out_data']:x} ({self.cfg.describe()})")

    def start(self) -> None:
        """Hand the bus to the stream components."""
        start_all(self.in_mon, self.out_mon, self.source, self.sink)

    async def run(self, a: np.ndarray, b: np.ndarray, p_idle: float, p_stall: float,
                  reset_after: int | None = None) -> int:
        """Stream all pairs and wait until every result is checked; return the cycles taken.

        ``reset_after``: pulse rst after that many cycles and stop sending (what was sent and
        not yet delivered is dropped; nothing stale may appear afterwards).
        """
        model = lmul.lmul_bits(a, b, self.cfg)
        self.first_in = self.last_out = None
        self.source.set_pause(pause_random(self.rng, p_idle) if p_idle else pause_never())
        self.sink.set_pause(pause_random(self.rng, p_stall) if p_stall else pause_never())
        for x, y, z in zip(a.tolist(), b.tolist(), model.tolist(), strict=True):
            self.source.send({"in_a": x, "in_b": y}, (x, y, z))
        cycles = 0
        while not self.source.idle or self.board.pending():
            await RisingEdge(self.dut.clk)
            cycles += 1
            if reset_after is not None and cycles == reset_after:
                await self.reset()
                reset_after = None
            assert cycles < 20 * len(a) + 1000, (
                f"no progress: handshake deadlock ({self.board.pending()} results owed)")
        return cycles

    async def probe_in_ready(self) -> tuple[int, int]:
        """With the output full, in_ready seen with out_ready = 0 and then 1 in one cycle."""
        dut = self.dut
        dut.out_ready.value = 0
        dut.in_valid.value = 1
        dut.in_a.value = 0
        dut.in_b.value = 0
        for _ in range(3):  # fill the output register (and a skid buffer)
            await RisingEdge(dut.clk)
        await Timer(2, unit="ns")
        seen = int(dut.in_ready.value)
        dut.out_ready.value = 1
        await Timer(2, unit="ns")
        seen_ready = int(dut.in_ready.value)
        dut.in_valid.value = 0
        dut.out_ready.value = 0
        return seen, seen_ready


@cocotb.test()
async def run_lmul_unit(dut) -> None:
    params = tb_parameters()
    cfg = config_from_parameters(params)
    skid = params.get("SKID", 0)
    seed, count = random_seed(), vector_count(DEFAULT_VECTORS)
    dut._log.info("config %s SKID=%d, COCOTB_RANDOM_SEED=%d, LMUL_VECTORS=%d", cfg.describe(),
                  skid, seed, count)
    rng = np.random.default_rng(seed)
    tb = TB(dut, cfg, seed)
    # The simulator toggles the clock (no Python wake-up per edge); the components still write
    # after the rising edge, in that time step's ReadWrite phase.
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns", impl="gpi").start())
    await tb.reset()
    # in_ready's dependence on out_ready, before the components take the bus.
    low, high = await tb.probe_in_ready()
    dut._log.info("output full: in_ready = %d with out_ready = 0, %d with out_ready = 1", low,
                  high)
    if skid:
        assert low == high, "SKID=1: in_ready changed with out_ready in the same cycle"
    else:
        assert (low, high) == (0, 1), "SKID=0: in_ready must be !out_valid | out_ready"
    await tb.reset()
    tb.start()
    width = cfg.fmt.width

    def pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
        return (rng.integers(0, 1 << width, n, dtype=np.int64),
                rng.integers(0, 1 << width, n, dtype=np.int64))

    # Latency of one isolated pair, then full throughput: n results, one per clock.
    await tb.run(*pairs(1), 0.0, 0.0)
    latency = tb.last_out - tb.first_in
    n = min(count, 2000)
    await tb.run(*pairs(n), 0.0, 0.0)
    span = tb.last_out - tb.first_in
    dut._log.info("latency %d cycle(s); %d results back to back in %d cycles", latency, n,
                  span + 1)
    assert 1 <= latency <= 2, f"latency {latency}"
    assert span == n - 1 + latency, f"throughput: {n} results took {span + 1} cycles"
    # Random idle cycles and back-pressure (probabilities of pausing per cycle).
    for p_idle, p_stall in ((0.5, 0.5), (0.1, 0.7), (0.7, 0.1), (0.0, 0.3)):
        await tb.run(*pairs(count // 4), p_idle, p_stall)
    before = tb.board.matched
    # Reset in the middle of traffic: outstanding results are dropped, nothing stale appears,
    # and the next pairs come out exactly.
    await tb.run(*pairs(200), 0.2, 0.6, reset_after=57)
    await tb.run(*pairs(100), 0.2, 0.3)
    dut._log.info("%d results checked in order; output stalled %d cycles", tb.board.matched,
                  tb.out_mon.stall_cycles)
    assert before == 1 + n + 4 * (count // 4), (
        f"{before} results matched before the reset, expected {1 + n + 4 * (count // 4)}")
    assert tb.board.matched >= before + 100, (
        f"{tb.board.matched - before} results after the reset, expected at least 100")
    assert tb.out_mon.stall_cycles > 0, "the output was never back-pressured"


@pytest.mark.parametrize(("preset", "saturate", "skid"), lmul_unit_cases())
def test_lmul_unit(preset: str, saturate: int, skid: int) -> None:
    fmt = lmul.PRESETS[preset]
    cfg = lmul.LMulConfig.for_format(fmt, saturate=bool(saturate))
    run_cocotb("test_lmul_unit", "lmul_unit",
               parameters={**cfg.verilog_parameters(), "SKID": skid})
