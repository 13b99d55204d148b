"""cocotb + Icarus reference flow for the RTL-in-the-loop LSTM: a few time steps of one image.

Not collected by pytest on its own: ``experiments/tests/test_cosim.py`` runs the Verilator path
(``experiments.cosim.rtl_forward``) on one image, writes its inputs and per-step results to an
``.npz`` (path in ``LMUL_COSIM_STEP_DATA``) and runs this module on ``sim/hdl/cosim_step_tb.v``
(the same RTL, compiled by Icarus). Here every step is recomputed with the testbench's own
drivers: the float32 -> format rounding on the ``fp_to_fmt`` lanes, the gate product through
``mac_array``'s valid/ready streams (ROWS x COLS tiles, back to back, the image in array row 0,
any other rows +0; the test uses a 1 x 16 array where the Verilator path has 4 x 4: the bits
must not depend on the shape), sigmoid/tanh by :func:`lmul.sigmoid32` / :func:`lmul.tanh32`
(correctly rounded float32, numpy only: the testbench needs no torch), the elementwise products
on the multiplier lanes with ``fmt_to_fp32`` widening, the cell-state sum on the ``fp_add``
lanes. The gates, c and h of every step must
equal the Verilator path's bit for bit.

npz keys: ``x`` float32 [T, I]; ``w_bits`` [I+H, 4H] and ``b`` float32 [4H] (the gate weights,
already rounded: the testbench rounds the float32 ``w`` itself and checks it against
``w_bits``); ``w`` float32; ``gates`` [T, 4H], ``c``, ``h`` [T, H] float32 (Verilator path).
"""

from __future__ import annotations

import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, Timer

from lmul import sigmoid32, tanh32
from sim.lib.common import pack_lanes, tb_parameters, unpack_lanes


class StepTB:
    """Drives the wrapper's array stream and combinational lanes."""

    def __init__(self, dut, params: dict[str, int]) -> None:
        self.dut = dut
        self.rows = params["ROWS"]
        self.cols = params["COLS"]
        self.lanes = params["LANES"]
        self.w = 1 + params["EXP_BITS"] + params["MAN_BITS"]
        self.cycles = 0

    async def reset(self) -> None:
        d = self.dut
        d.in_valid.value = 0
        d.out_ready.value = 1
        d.in_last.value = 0
        d.rst.value = 1
        for _ in range(2):
            await RisingEdge(d.clk)
        d.rst.value = 0

    async def _lanes(self, inputs: dict[str, tuple[np.ndarray, int]], out: str,
                     out_width: int) -> np.ndarray:
        """Apply equally long operand arrays to the named lane buses, LANES per step."""
        flat = {port: (np.asarray(vals).reshape(-1), width)
                for port, (vals, width) in inputs.items()}
        n = next(iter(flat.values()))[0].size
        res = np.empty(n, dtype=np.uint64)
        for s in range(0, n, self.lanes):
            e = min(n, s + self.lanes)
            for port, (vals, width) in flat.items():
                chunk = np.zeros(self.lanes, dtype=np.uint64)
                chunk[:e - s] = vals[s:e]
                getattr(self.dut, port).value = pack_lanes(chunk, width)
            await Timer(1, unit="ns")
            res[s:e] = unpack_lanes(int(getattr(self.dut, out).value), out_width,
                                    self.lanes)[:e - s]
        return res

    async def to_format(self, x: np.ndarray) -> np.ndarray:
        bits = np.ascontiguousarray(x, dtype=np.float32).reshape(-1).view(np.uint32)
        return (await self._lanes({"cvt_x": (bits.astype(np.uint64), 32)}, "cvt_y",
                                  self.w)).reshape(np.shape(x))

    async def mul(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        xb, yb = await self.to_format(x), await self.to_format(y)
        pb = await self._lanes({"mul_a": (xb, self.w), "mul_b": (yb, self.w)}, "mul_y", self.w)
        wide = await self._lanes({"wid_x": (pb, self.w)}, "wid_y", 32)
        return wide.astype(np.uint32).view(np.float32).reshape(np.shape(x))

    async def add(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        xb = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
        yb = np.ascontiguousarray(y, dtype=np.float32).view(np.uint32).astype(np.uint64)
        out = await self._lanes({"add_a": (xb, 32), "add_b": (yb, 32)}, "add_y", 32)
        return out.astype(np.uint32).view(np.float32).reshape(np.shape(x))

    async def matmul(self, a_bits: np.ndarray, b_bits: np.ndarray, bias: np.ndarray
                     ) -> np.ndarray:
        """``bias + A . B`` for A [M <= ROWS, K]: tiles over the N outputs, back to back."""
        d, rows, cols = self.dut, self.rows, self.cols
        m_len, k_len = a_bits.shape
        n_len = b_bits.shape[1]
        a_pad = np.zeros((rows, k_len), dtype=np.uint64)
        a_pad[:m_len] = a_bits
        n_tiles = -(-n_len // cols)
        b_pad = np.zeros((k_len, n_tiles * cols), dtype=np.uint64)
        b_pad[:, :n_len] = b_bits
        bias_pad = np.zeros(n_tiles * cols, dtype=np.uint64)
        bias_pad[:n_len] = np.ascontiguousarray(bias, dtype=np.float32).view(np.uint32)
        a_words = [pack_lanes(a_pad[:, k], self.w) for k in range(k_len)]
        y = np.zeros((rows, n_tiles * cols), dtype=np.uint32)
        beats = [(t, k) for t in range(n_tiles) for k in range(k_len)]
        total_rows = n_tiles * rows
        got_rows, i = 0, 0

        def apply(idx: int) -> None:
            if idx >= len(beats):
                d.in_valid.value = 0
                return
            t, k = beats[idx]
            d.in_valid.value = 1
            d.in_a.value = a_words[k]
            d.in_b.value = pack_lanes(b_pad[k, t * cols:(t + 1) * cols], self.w)
            d.in_bias.value = pack_lanes(bias_pad[t * cols:(t + 1) * cols], 32)
            d.in_last.value = int(k == k_len - 1)

        apply(0)
        tile_out, row_expect, start = 0, 0, self.cycles
        while got_rows < total_rows:
            await RisingEdge(d.clk)
            self.cycles += 1
            # Values read right after the edge are those of the cycle that just ended.
            fire = i < len(beats) and int(d.in_ready.value) == 1
            if int(d.out_valid.value):
                assert int(d.out_row.value) == row_expect, "output rows out of order"
                y[row_expect, tile_out * cols:(tile_out + 1) * cols] = unpack_lanes(
                    int(d.out_data.value), 32, cols).astype(np.uint32)
                got_rows += 1
                row_expect += 1
                if row_expect == rows:
                    row_expect, tile_out = 0, tile_out + 1
            if fire:
                i += 1
                apply(i)
            assert self.cycles - start < 4 * (len(beats) + rows + cols) + 64, "array hangs"
        return y[:m_len, :n_len].view(np.float32)


@cocotb.test()
async def run_cosim_step(dut) -> None:
    """The LSTM steps of one image on Icarus equal the Verilator path, bit for bit."""
    params = tb_parameters()
    data = np.load(os.environ["LMUL_COSIM_STEP_DATA"])
    tb = StepTB(dut, params)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await tb.reset()
    t0 = time.perf_counter()
    w_bits = await tb.to_format(data["w"])
    assert np.array_equal(w_bits, data["w_bits"].astype(np.uint64)), \
        "fp_to_fmt on Icarus rounds the weights differently from the Verilator path"
    dut._log.info("weights rounded on the fp_to_fmt lanes in %.1f s", time.perf_counter() - t0)
    x, b = data["x"], data["b"]
    hs = data["h"].shape[1]
    h = np.zeros((1, hs), dtype=np.float32)
    c = np.zeros((1, hs), dtype=np.float32)
    for t in range(x.shape[0]):
        zb = await tb.to_format(np.concatenate([x[t:t + 1], h], axis=1))
        gates = await tb.matmul(zb, w_bits, b)
        dut._log.info("step %d: gate product done at %.1f s", t, time.perf_counter() - t0)
        i = sigmoid32(gates[:, :hs])
        f = sigmoid32(gates[:, hs:2 * hs])
        g = tanh32(gates[:, 2 * hs:3 * hs])
        o = sigmoid32(gates[:, 3 * hs:])
        fc = await tb.mul(f, c)
        ig = await tb.mul(i, g)
        c = (await tb.add(fc, ig)).reshape(1, hs)
        h = (await tb.mul(o, tanh32(c))).reshape(1, hs)
        for name, got in (("gates", gates), ("c", c), ("h", h)):
            g32 = got.view(np.uint32).reshape(-1)
            w32 = data[name][t:t + 1].view(np.uint32).reshape(-1)
            bad = np.flatnonzero(g32 != w32)
            assert bad.size == 0, (f"step {t}: {name} differs from the Verilator path in "
                                   f"{bad.size} places, first index {bad[0]}: Icarus "
                                   f"0x{int(g32[bad[0]]):08x}, Verilator 0x{int(w32[bad[0]]):08x}")
        dut._log.info("step %d: gates, c, h bit-identical to the Verilator path", t)
    dut._log.info("%d steps, %d array cycles in %.1f s", x.shape[0], tb.cycles,
                  time.perf_counter() - t0)
