"""cocotb regression of ``hdl/dot_pe.v`` on its own, single-stage (``PIPELINE = 0``), with the
products registered before the sum (``PIPELINE = 1``) and with the products pre-aligned to their
largest exponent and registered (``PIPELINE = 2``, ``dot_prealign`` / ``dot_sum_prealigned``).

The dot products are those of ``sim/test_mac_array_fused.py``: tiles of every kind of
``test_mac_array.random_tile`` (gauss, bits, range, special, zeros, cancel, tiny) with inner
lengths that are and are not multiples of K (the last chunk padded with +0 pairs), plus lengths
1, K, K + 1 and the LSTM's 156; each (row, column) of a tile is one dot product, expected bit for
bit from ``lmul.matmul(..., accumulate=lmul.Fused(K, ALIGN_BITS))``. They are streamed back to
back, first without gaps, then with random idle steps (``in_valid = 0``) and random stalls
(``en = 0``).

What is checked, cycle by cycle (outputs sampled after the inputs of the cycle settle):

* the latency: with PIPELINE = 0, ``out_sum`` is the finished dot product in the cycle whose
  enabled step has ``in_last``; with PIPELINE = 1 or 2, in the cycle after that step's enabled
  clock, where ``out_valid = out_last = 1``, and it holds while ``en = 0``; with PIPELINE = 3,
  two enabled clocks after that step's (held while ``en = 0`` as well);
* the throughput: every step is accepted on its enabled clock (the PE has no ready), so a dot
  product of L pairs takes ceil(L / K) enabled cycles either way and the next starts at once;
* the forwarding registers (``out_a``, ``out_b``, ``out_bias``, ``out_valid``, ``out_first``,
  ``out_last``) carry the previous enabled step, and only ``rst`` clears ``out_valid``.

``test_a_broken_pipelined_pe_is_caught``: a PIPELINE = 1 copy of dot_pe whose sum stage takes
the step tokens of the input (``in_first`` / ``in_bias``) instead of the registered ones, the
latency bug a second stage invites, must fail. ``test_a_broken_prealigned_pe_is_caught``: a
PIPELINE = 2 copy whose sum stage forgets to shift the pre-aligned products when the
accumulator's exponent is the larger (mag_j instead of mag_j >> d), the bug that scheme invites,
must fail.

Run: ``pytest sim/test_dot_pe.py`` (``-rA`` shows the seed and counts).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly

import lmul
from sim.lib.common import (
    config_from_parameters,
    pack_lanes,
    random_seed,
    run_cocotb,
    tb_parameters,
)
from sim.lib.mutation import broken_hdl
from sim.test_mac_array import TILE_KINDS, ArrayConfig, random_tile
from sim.test_mac_array_fused import fused_tile

#: 2 x 2 tiles per kind of test_mac_array.TILE_KINDS (four dot products each).
TILES = 3


def latency_of(pipeline: int) -> int:
    """Enabled clocks from a step's to the cycle where out_sum holds its result: 0 for
    PIPELINE 0, 1 for 1 and 2, 2 for 3 (docs/dot_product.md)."""
    return {0: 0, 1: 1, 2: 1, 3: 2}[pipeline]


@dataclass
class Dot:
    """One dot product as dot_pe steps: per step the packed K lanes of a and b."""

    a_words: list[int]
    b_words: list[int]
    bias: int
    expected: int


def dots_of_tiles(rng: np.random.Generator, acfg: ArrayConfig, k: int,
                  align: int) -> list[Dot]:
    """The dot products of :data:`TILES` fused tiles per kind (random inner lengths 1..39) and
    of gauss tiles of inner length 1, K, K + 1 and 156, row by row and column by column."""
    width = acfg.cfg.fmt.width
    specs = [(int(rng.integers(1, 40)), kind) for kind in TILE_KINDS for _ in range(TILES)]
    specs += [(n, "gauss") for n in sorted({1, k, k + 1, 156})]
    out = []
    for n, kind in specs:
        tile = fused_tile(random_tile(rng, acfg, n, kind), acfg, k, align)
        steps = math.ceil(n / k)
        pad = steps * k - n
        a = np.pad(tile.a, ((0, 0), (0, pad)))
        b = np.pad(tile.b, ((0, pad), (0, 0)))
        for r in range(acfg.rows):
            for c in range(acfg.cols):
                out.append(Dot([pack_lanes(a[r, j * k:(j + 1) * k], width) for j in range(steps)],
                               [pack_lanes(b[j * k:(j + 1) * k, c], width)
                                for j in range(steps)],
                               int(tile.bias[c]), int(tile.expected[r, c])))
    return out


class DotPeTB:
    """Drives dot_pe one step per cycle (inputs set after the falling edge) and checks the
    outputs of every cycle before the rising edge that ends it."""

    def __init__(self, dut, pipeline: int) -> None:
        self.dut = dut
        self.pipeline = pipeline
        self.latency = latency_of(pipeline)
        self.prev: dict[str, int] | None = None  # the last enabled step's inputs
        self.due: int | None = None  # latency >= 1: the result out_sum must show now
        # latency 2: the results of enabled steps not yet due (None: the step finishes none)
        self.pending: list[int | None] = [None] * max(self.latency - 1, 0)
        self.fresh = False  # the last cycle's clock was enabled
        self.checked = 0
        self.cycles = 0
        self.enabled = 0

    async def cycle(self, en: int, rst: int = 0, beat: dict[str, int] | None = None,
                    expected: int | None = None) -> None:
        """One clock cycle with these inputs (``beat``: a, b, bias, first, last; None = idle);
        ``expected``: the dot product this step finishes."""
        d = self.dut
        await FallingEdge(d.clk)
        ins = {"in_valid": 0, "in_first": 0, "in_last": 0, "in_a": 0, "in_b": 0, "in_bias": 0}
        if beat is not None:
            ins.update(in_valid=1, in_first=beat["first"], in_last=beat["last"],
                       in_a=beat["a"], in_b=beat["b"], in_bias=beat["bias"])
        for name, value in ins.items():
            getattr(d, name).value = value
        d.en.value = en
        d.rst.value = rst
        await ReadOnly()
        self.cycles += 1
        if self.prev is not None:
            for name in ("a", "b", "bias", "first", "last"):
                got = int(getattr(d, f"out_{name}").value)
                assert got == self.prev[f"in_{name}"], f"out_{name} {got:#x} is not the " \
                    f"previous enabled step's in_{name} {self.prev[f'in_{name}']:#x}"
            assert int(d.out_valid.value) == self.prev["in_valid"], "out_valid"
        if self.latency == 0 and en and not rst and beat is not None and beat["last"]:
            self.check(expected)
        if self.latency == 1 and self.due is not None:
            assert int(d.out_valid.value) == 1 and int(d.out_last.value) == 1, \
                f"PIPELINE={self.pipeline}: out_valid/out_last not set in the cycle of the result"
        if self.latency >= 1 and self.due is not None:
            # counted in the cycle after the step's enabled clock; it must hold while stalled
            self.check(self.due, count=self.fresh)
        self.fresh = bool(en)
        if en:
            self.enabled += 1
            self.prev = dict(ins)
            if rst:
                self.prev["in_valid"] = 0
            finishes = not rst and beat is not None and beat["last"]
            if self.latency >= 1:
                self.pending.append(expected if finishes else None)
                self.due = self.pending.pop(0)

    def check(self, expected: int | None, count: bool = True) -> None:
        assert expected is not None
        got = int(self.dut.out_sum.value)
        assert got == expected, (f"out_sum {got:#010x}, model {expected:#010x} "
                                 f"(PIPELINE={self.pipeline})")
        self.checked += count


@cocotb.test()
async def run_dot_pe(dut) -> None:
    """The fused tiles' dot products back to back, then with idle steps and stalls."""
    params = tb_parameters()
    k, align, pipeline = params["K"], params["ALIGN_BITS"], params.get("PIPELINE", 0)
    acfg = ArrayConfig(config_from_parameters(params), 2, 2,
                       "exact" if params.get("MULTIPLIER", 0) else "lmul")
    seed = random_seed()
    rng = np.random.default_rng(seed)
    dut._log.info("dot_pe %s K=%d ALIGN_BITS=%d PIPELINE=%d: COCOTB_RANDOM_SEED=%d",
                  acfg.cfg.describe(), k, align, pipeline, seed)
    dots = dots_of_tiles(rng, acfg, k, align)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    tb = DotPeTB(dut, pipeline)
    for _ in range(2):
        await tb.cycle(1, rst=1)
    for phase, (p_idle, p_stall) in enumerate(((0.0, 0.0), (0.3, 0.3))):
        start_checked, start_enabled = tb.checked, tb.enabled
        steps = 0
        for dot in dots:
            n = len(dot.a_words)
            for j in range(n):
                while rng.random() < p_idle:
                    await tb.cycle(int(rng.random() >= p_stall))
                beat = {"a": dot.a_words[j], "b": dot.b_words[j], "bias": dot.bias,
                        "first": int(j == 0), "last": int(j == n - 1)}
                while rng.random() < p_stall:  # the step is held until an enabled clock
                    await tb.cycle(0, beat=beat, expected=dot.expected)
                await tb.cycle(1, beat=beat, expected=dot.expected)
                steps += 1
        tail = max(tb.latency, 1)
        for _ in range(tail):  # latency >= 1: the last sum
            await tb.cycle(1)
        done = tb.checked - start_checked
        assert done == len(dots), f"phase {phase}: {done} of {len(dots)} results seen"
        if phase == 0:
            # back to back: one enabled cycle per step, the result `latency` cycles later
            assert tb.enabled - start_enabled == steps + tail
        dut._log.info("phase %d: %d dot products (%d steps) bit-exact, %d enabled cycles",
                      phase, done, steps, tb.enabled - start_enabled)
    dut._log.info("PASS: %d results checked in %d cycles", tb.checked, tb.cycles)


def _parameters(preset: str, k: int, align: int, multiplier: int,
                pipeline: int) -> dict[str, int]:
    cfg = lmul.LMulConfig.for_format(lmul.PRESETS[preset])
    return {**cfg.verilog_parameters(), "K": k, "ALIGN_BITS": align, "MULTIPLIER": multiplier,
            "PIPELINE": pipeline}


CASES = [("bf16", 4, 8, 0, 0), ("bf16", 4, 8, 0, 1), ("bf16", 2, 276, 1, 1),
         ("e4m3_ieee", 3, 24, 1, 1), ("bf16", 4, 8, 0, 2), ("bf16", 2, 276, 1, 2),
         ("e4m3_ieee", 3, 24, 0, 2), ("bf16", 4, 8, 0, 3), ("e4m3_ieee", 3, 24, 1, 3)]


@pytest.mark.parametrize(("preset", "k", "align", "multiplier", "pipeline"), CASES,
                         ids=["bf16-K4-a8-lmul-p0", "bf16-K4-a8-lmul-p1", "bf16-K2-a276-exact-p1",
                              "e4m3-K3-a24-exact-p1", "bf16-K4-a8-lmul-p2",
                              "bf16-K2-a276-exact-p2", "e4m3-K3-a24-lmul-p2",
                              "bf16-K4-a8-lmul-p3", "e4m3-K3-a24-exact-p3"])
def test_dot_pe(preset: str, k: int, align: int, multiplier: int, pipeline: int) -> None:
    run_cocotb("test_dot_pe", "dot_pe",
               parameters=_parameters(preset, k, align, multiplier, pipeline),
               testcase="run_dot_pe$")


def test_a_broken_pipelined_pe_is_caught(tmp_path: Path) -> None:
    """The PIPELINE = 1 regression on an hdl/ copy whose sum stage starts a dot product from the
    input step's tokens (in_first ? in_bias) instead of the registered step's must fail."""
    hdl = broken_hdl(tmp_path, "dot_pe.v",
                     re.escape("        assign base = out_first ? out_bias : acc;\n"
                               "        assign sum_valid"),
                     "        assign base = in_first ? in_bias : acc;\n        assign sum_valid")
    with pytest.raises(SystemExit, match="FAILED"):
        run_cocotb("test_dot_pe", "dot_pe", parameters=_parameters(*CASES[1]),
                   testcase="run_dot_pe$", hdl_dir=hdl, build_tag="broken-pipeline-tokens")


def test_a_broken_prealigned_pe_is_caught(tmp_path: Path) -> None:
    """The PIPELINE = 2 regression on an hdl/ copy whose sum stage adds the pre-aligned product
    magnitudes unshifted when the accumulator's exponent exceeds the products' (mag_j, not
    mag_j >> d: the products keep a window below their own largest exponent) must fail."""
    hdl = broken_hdl(tmp_path, "dot_sum_prealigned.v", re.escape("mj = mag[j*MB+:MB] >> d;"),
                     "mj = mag[j*MB+:MB];")
    with pytest.raises(SystemExit, match="FAILED"):
        run_cocotb("test_dot_pe", "dot_pe", parameters=_parameters(*CASES[4]),
                   testcase="run_dot_pe$", hdl_dir=hdl, build_tag="broken-prealigned-unshifted")


def test_a_three_stage_pe_with_one_stage_tokens_is_caught(tmp_path: Path) -> None:
    """The PIPELINE = 3 regression on an hdl/ copy whose sum stage starts a dot product from the
    tokens one stage behind the input (out_first ? out_bias) instead of its own, two behind,
    must fail."""
    hdl = broken_hdl(tmp_path, "dot_pe.v",
                     re.escape("assign base = first_q ? bias_q : acc;"),
                     "assign base = out_first ? out_bias : acc;")
    with pytest.raises(SystemExit, match="FAILED"):
        run_cocotb("test_dot_pe", "dot_pe", parameters=_parameters(*CASES[7]),
                   testcase="run_dot_pe$", hdl_dir=hdl, build_tag="broken-three-stage-tokens")
