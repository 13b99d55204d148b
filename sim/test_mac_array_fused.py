"""cocotb regression of ``hdl/mac_array.v`` with fused dot-product PEs (``DOT_K > 1``).

Same stream bench as ``sim/test_mac_array.py`` (source with random idle cycles, sink with random
back-pressure, protocol monitors, in-order scoreboard), but every beat carries ``DOT_K`` k-steps
and every output must equal ``lmul.matmul(..., accumulate=lmul.Fused(DOT_K, ALIGN_BITS))`` bit
for bit. Tiles have inner lengths that are and are not multiples of ``DOT_K`` (the last chunk
padded with +0 operand pairs) and the seven kinds of ``test_mac_array.random_tile``. Cycles are
measured and asserted against the sequential array's formulas with K replaced by the number of
beats ``ceil(K / DOT_K)``: an isolated tile takes beats + ROWS + COLS cycles, N back-to-back
tiles (N-1) * max(beats, ROWS) + beats + ROWS + COLS, each plus the PEs' pipeline latency
(:data:`LAT_EXTRA`: PIPELINE 1 and 2 one cycle, 3 two); the log prints cycles per tile, fused vs
sequential. ``test_a_broken_fused_array_is_caught``: the same regression on an hdl/ copy whose
fp_dot_sum adder tree loses its carries must fail;
``test_a_pipelined_array_capturing_early_is_caught``: a PIPELINE = 1 array whose result chains
capture on the PEs' input tokens (the single-stage rule, one cycle before the sum is finished)
must fail. PIPELINE cases also reset mid-tile and while finished tiles wait on back-pressure.

Run: ``pytest sim/test_mac_array_fused.py`` (``-rA`` shows seeds and cycle counts).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import cocotb
import numpy as np
import pytest

import lmul
from sim.lib.common import (
    HDL_DIR,
    design_sources,
    pack_lanes,
    random_seed,
    run_cocotb,
    tb_parameters,
)
from sim.lib.mutation import broken_hdl
from sim.test_mac_array import (
    TILE_KINDS,
    ArrayConfig,
    ArrayTB,
    Tile,
    random_tile,
    result_classes,
)

#: Random tiles per configuration (at least one per kind).
TILES = len(TILE_KINDS)

#: Cycles a tile's results take longer per dot_pe PIPELINE value (mac_array's LAT_EXTRA).
LAT_EXTRA = {0: 0, 1: 1, 2: 1, 3: 2}


class FusedTile(Tile):
    """A tile streamed ``dot_k`` k-steps per beat; ``k`` is the number of beats."""

    dot_k: int = 1

    @property
    def k(self) -> int:
        return math.ceil(int(self.a.shape[1]) / self.dot_k)

    def pack(self, width: int) -> Tile:
        """Beat words: row r's lanes r*dot_k + i in in_a, column c's lanes c*dot_k + i in in_b;
        the inner dimension padded with +0 to a multiple of dot_k."""
        beats, dk = self.k, self.dot_k
        pad = beats * dk - int(self.a.shape[1])
        a = np.pad(self.a, ((0, 0), (0, pad)))
        b = np.pad(self.b, ((0, pad), (0, 0)))
        self.a_words = [pack_lanes(a[:, j * dk:(j + 1) * dk].ravel(), width)
                        for j in range(beats)]
        self.b_words = [pack_lanes(b[j * dk:(j + 1) * dk, :].T.ravel(), width)
                        for j in range(beats)]
        self.bias_word = pack_lanes(self.bias, 32)
        return self


def fused_tile(tile: Tile, acfg: ArrayConfig, dot_k: int, align: int) -> FusedTile:
    """``tile``'s operands with the fused model's result."""
    fmt = acfg.cfg.fmt
    af = lmul.format_bits_to_float32(tile.a.astype(fmt.uint_dtype), fmt)
    bf = lmul.format_bits_to_float32(tile.b.astype(fmt.uint_dtype), fmt)
    y = lmul.matmul(af, bf, tile.bias.view(np.float32), cfg=acfg.cfg,
                    multiplier=acfg.multiplier, accumulate=lmul.Fused(dot_k, align))
    out = FusedTile(tile.a, tile.b, tile.bias, lmul.float32_bits(
        np.ascontiguousarray(y, dtype=np.float32)).copy(), tile.label)
    out.dot_k = dot_k
    return out.pack(fmt.width)


@cocotb.test()
async def run_fused_array(dut) -> None:
    """Cycle counts of fused tiles, then random tiles of every kind under random handshakes."""
    params = tb_parameters()
    acfg = ArrayConfig.from_parameters(params)
    dk, align = params["DOT_K"], params["ALIGN_BITS"]
    pipeline = params.get("PIPELINE", 0)
    extra = LAT_EXTRA[pipeline]
    rows, cols = acfg.rows, acfg.cols
    seed = random_seed()
    rng = np.random.default_rng(seed)
    dut._log.info("mac_array %s DOT_K=%d ALIGN_BITS=%d PIPELINE=%d: COCOTB_RANDOM_SEED=%d",
                  acfg.describe(), dk, align, pipeline, seed)
    tb = ArrayTB(dut, acfg, seed)
    await tb.start()

    def gauss(k: int) -> FusedTile:
        return fused_tile(random_tile(rng, acfg, k, "gauss"), acfg, dk, align)

    for k in sorted({1, dk, dk + 1, 16, 156}):
        beats = math.ceil(k / dk)
        st = await tb.stream([gauss(k)], 0.0, 0.0)
        lat = st.last_pop[0] - st.first_accept[0] + 1
        dut._log.info("latency K=%d (%d beats): %d cycles (sequential array: %d)", k, beats, lat,
                      k + rows + cols)
        want = beats + rows + cols + extra
        assert lat == want, f"K={k}: {lat} != {want}"

    n = 4
    for k in (dk * rows, 156):
        beats = math.ceil(k / dk)
        st = await tb.stream([gauss(k) for _ in range(n)], 0.0, 0.0)
        total = st.last_pop[n - 1] - st.first_accept[0] + 1
        ideal = (n - 1) * max(beats, rows) + beats + rows + cols + extra
        dut._log.info("back-to-back K=%d: %d tiles in %d cycles, %d cycles/tile in steady state "
                      "(sequential array: %d cycles/tile)", k, n, total, max(beats, rows),
                      max(k, rows))
        assert total == ideal, f"K={k}: {n} tiles took {total} cycles, ideal {ideal}"

    ks = [int(v) for v in rng.integers(1, 40, TILES)]
    tiles = [fused_tile(random_tile(rng, acfg, k, kind), acfg, dk, align)
             for k, kind in zip(ks, TILE_KINDS, strict=True)]
    dut._log.info("random tiles: K = %s; result classes %s", ks, result_classes(tiles))
    st = await tb.stream(tiles, 0.3, 0.4)
    assert st.tiles_done == len(tiles), f"{st.tiles_done} of {len(tiles)} tiles completed"

    if pipeline:
        # The pipelined PEs' result tokens (and PIPELINE 3's delayed copy) must not carry a row
        # across a reset: one mid-tile, one while finished tiles wait on back-pressure.
        tiles = [gauss(k) for k in (10 * dk, 7, 3 * dk)]
        st = await tb.stream(tiles, 0.0, 0.0, reset_at=6)
        assert st.abandoned == 0, f"reset at 6 cut tile {st.abandoned}, not the first"
        assert st.tiles_done_after_reset == st.resent_after_reset == len(tiles) - 1, (
            f"{st.tiles_done_after_reset} tiles completed, {st.resent_after_reset} resent after "
            f"the reset, expected {len(tiles) - 1}")
        tiles = [fused_tile(random_tile(rng, acfg, k, "special"), acfg, dk, align)
                 for k in (3, 5)]
        st = await tb.stream(tiles, 0.0, 1.0,
                             reset_at=2 * rows + math.ceil(5 / dk) + cols + extra + 2)
        assert st.tiles_done == 0 and st.resent_after_reset == 0, (
            f"{st.tiles_done} tiles completed, {st.resent_after_reset} resent: expected none")
        st = await tb.stream([gauss(9)], 0.0, 0.0)
        assert st.tiles_done == 1, f"{st.tiles_done} tiles completed after the reset"

    dut._log.info("PASS: %d tiles, %d outputs bit-exact", tb.tiles_checked, tb.outputs_checked)


def _parameters(preset: str, rows: int, cols: int, dot_k: int, align: int,
                multiplier: int, pipeline: int = 0) -> dict[str, int]:
    fmt = lmul.PRESETS[preset]
    cfg = lmul.LMulConfig.for_format(fmt)
    # PIPELINE = 0 is left at mac_array's default, so those builds are the ones they always were.
    return {**cfg.verilog_parameters(), "ROWS": rows, "COLS": cols, "MULTIPLIER": multiplier,
            "DOT_K": dot_k, "ALIGN_BITS": align, **({"PIPELINE": pipeline} if pipeline else {})}


CASES = [("bf16", 2, 2, 4, 276, 0), ("e4m3_ieee", 2, 3, 2, 24, 1)]

#: Pipelined PEs: the chosen design's PE (K = 4, ALIGN_BITS = 8, L-Mul offset 6) with
#: PIPELINE = 1, and PIPELINE = 3 (the one that needs the delayed token) on a 2 x 3 exact array.
PIPELINED_CASES = [("bf16", 2, 2, 4, 8, 0, 1), ("e4m3_ieee", 2, 3, 2, 24, 1, 3)]


@pytest.mark.parametrize(("preset", "rows", "cols", "dot_k", "align", "multiplier"), CASES,
                         ids=["bf16-2x2-K4-276-lmul", "e4m3-2x3-K2-24-exact"])
def test_mac_array_fused(preset: str, rows: int, cols: int, dot_k: int, align: int,
                         multiplier: int) -> None:
    run_cocotb("test_mac_array_fused", "mac_array",
               parameters=_parameters(preset, rows, cols, dot_k, align, multiplier),
               testcase="run_fused_array$")


@pytest.mark.parametrize(("preset", "rows", "cols", "dot_k", "align", "multiplier", "pipeline"),
                         PIPELINED_CASES, ids=["bf16-2x2-K4-8-lmul-p1", "e4m3-2x3-K2-24-exact-p3"])
def test_mac_array_fused_pipelined(preset: str, rows: int, cols: int, dot_k: int, align: int,
                                   multiplier: int, pipeline: int) -> None:
    run_cocotb("test_mac_array_fused", "mac_array",
               parameters=_parameters(preset, rows, cols, dot_k, align, multiplier, pipeline),
               testcase="run_fused_array$")


def test_a_broken_fused_array_is_caught(tmp_path: Path) -> None:
    """The first configuration's regression on an hdl/ copy whose fp_dot_sum adder tree loses
    every carry (XOR instead of +) must fail."""
    hdl = broken_hdl(tmp_path, "fp_dot_sum.v", re.escape("tree[k] = tree[2*k] + tree[2*k+1];"),
                     "tree[k] = tree[2*k] ^ tree[2*k+1];")
    with pytest.raises(SystemExit, match="FAILED"):
        run_cocotb("test_mac_array_fused", "mac_array", parameters=_parameters(*CASES[0]),
                   testcase="run_fused_array$", hdl_dir=hdl, build_tag="broken-carry")


def test_a_pipelined_array_capturing_early_is_caught(tmp_path: Path) -> None:
    """The PIPELINE = 1 case on an hdl/ copy whose PIPELINE 1-2 result chains and row_done take
    the PE's input tokens (the single-stage rule) must fail: they capture the previous step's
    sum, one cycle before the finished one."""
    hdl = broken_hdl(tmp_path, "mac_array.v", re.escape("assign done = v_h[HI+1] & l_h[HI+1];"),
                     "assign done = v_h[HI] & l_h[HI];")
    with pytest.raises(SystemExit, match="FAILED"):
        run_cocotb("test_mac_array_fused", "mac_array",
                   parameters=_parameters(*PIPELINED_CASES[0]), testcase="run_fused_array$",
                   hdl_dir=hdl, build_tag="broken-early-capture")


def test_yosys_elaborates_without_latches() -> None:
    """yosys elaborates the fused array (DOT_K = 2) with no latch, multiple driver or loop."""
    if shutil.which("yosys") is None:
        pytest.fail("yosys not found: run scripts/setup.sh (Debian package yosys)")
    script = (f"read_verilog -I{HDL_DIR} {' '.join(design_sources())}; "
              "hierarchy -check -top mac_array -chparam ROWS 2 -chparam COLS 2 -chparam DOT_K 2 "
              "-chparam ALIGN_BITS 32; proc; flatten; opt_clean; check -assert; "
              "select -assert-none t:$dlatch t:$adlatch t:$dlatchsr t:$_DLATCH_*")
    res = subprocess.run(["yosys", "-q", "-p", script], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]

