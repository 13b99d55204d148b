"""The shared stream components (sim/lib/stream.py) must catch a broken design.

``sim/hdl/stream_fault.v`` is a one-register valid/ready stage (out_data = in_data + 1) with a
FAULT parameter that breaks one rule at a time. The same source, sink, protocol monitors and
scoreboard that the lmul_unit and mac_array testbenches use drive it under random valid gaps and
back-pressure. FAULT=0 must pass; every fault must make the cocotb test fail with the checker's
message (seen from pytest, through the simulator run, as a failing regression would be).
"""

from __future__ import annotations

import logging
import random
import re

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from sim.lib.common import random_seed, run_cocotb, tb_parameters
from sim.lib.stream import (
    Scoreboard,
    StreamMonitor,
    StreamSink,
    StreamSource,
    pause_random,
    start_all,
)

BEATS = 600
WIDTH = 8


@cocotb.test()
async def run_stream_fault(dut) -> None:
    """Random traffic through stream_fault, checked by the shared components."""
    seed = random_seed()
    rng = random.Random(seed)
    dut._log.info("stream_fault FAULT=%d, COCOTB_RANDOM_SEED=%d, %d beats",
                  tb_parameters()["FAULT"], seed, BEATS)
    # The simulator toggles the clock (no Python wake-up per edge); the components still write
    # after the rising edge, in that time step's ReadWrite phase.
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns", impl="gpi").start())
    board = Scoreboard("stream_fault out")
    source = StreamSource(dut, ["in_data"], rng=rng, name="stream_fault in",
                          on_transfer=lambda beat, tag, cycle: board.expect(
                              {"out_data": (beat["in_data"] + 1) % (1 << WIDTH)}, tag, cycle))
    sink = StreamSink(dut)
    in_mon = StreamMonitor(dut, ["in_data"], valid="in_valid", ready="in_ready",
                           name="stream_fault in")
    out_mon = StreamMonitor(dut, ["out_data"], outstanding=board.pending,
                            on_transfer=lambda beat, cycle: board.check(beat, cycle),
                            name="stream_fault out")
    dut.rst.value = 1
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    start_all(in_mon, out_mon, source, sink)
    source.set_pause(pause_random(rng, 0.4))
    sink.set_pause(pause_random(rng, 0.5))
    for i in range(BEATS):
        source.send({"in_data": rng.getrandbits(WIDTH)}, i)
    cycles = 0
    while not source.idle or board.pending():
        await RisingEdge(dut.clk)
        cycles += 1
        assert cycles < 20 * BEATS, f"no progress: {board.pending()} results outstanding"
    for _ in range(100):  # nothing may appear once everything is drained
        await RisingEdge(dut.clk)
    assert board.matched == BEATS, f"{board.matched} of {BEATS} results"
    dut._log.info("%d results in order, %d output stall cycles", board.matched,
                  out_mon.stall_cycles)
    assert out_mon.stall_cycles > 0, "the sink never stalled the output: nothing was checked"


#: FAULT value -> what the failing run must report (a regular expression)
FAULTS = [
    pytest.param(1, "valid fell while ready was low", id="valid-falls"),
    pytest.param(2, "out_data changed while ready was low", id="data-changes"),
    pytest.param(3, "valid with no matching input", id="spurious-result"),
    pytest.param(4, "expected 0x|valid with no matching input", id="duplicate-result"),
    pytest.param(5, "expected 0x", id="lost-result"),
]


def _run(fault: int) -> None:
    run_cocotb("test_stream", "stream_fault", ("stream_fault.v",),
               parameters={"WIDTH": WIDTH, "FAULT": fault})


def test_correct_stream_passes() -> None:
    _run(0)


@pytest.mark.parametrize(("fault", "message"), FAULTS)
def test_broken_stream_fails(fault: int, message: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(SystemExit, match="FAILED 1 tests"):
        _run(fault)
    assert re.search(message, caplog.text), caplog.text[-3000:]
