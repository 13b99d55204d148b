"""cocotb regressions of the L-Mul MAC array, hdl/mac_array.v (with mac_pe, mac_datapath).

* ``test_mac_array``: random tiles through ``mac_array`` against ``lmul.matmul`` (with
  ``multiplier="exact"`` for MULTIPLIER=1), every output bit (signed zeros, Inf, NaN = canonical
  0x7FC00000 included). Tiles have K from 1 to 200 (1, 2, ROWS-1, ROWS, ROWS+1 and 200 always
  among them) and are of seven kinds: Gaussian values, uniform bit patterns (NaN/Inf/subnormal
  operands), wide exponent range (large dynamic range, product and accumulator overflow),
  special values sprinkled in, zero rows of A / zero columns of B (signed zeros), exactly
  cancelling product pairs, results in the binary32 subnormal range; the bias has the same
  classes in binary32. The histogram of result classes of the random tiles (NaN, +-Inf, +-0,
  subnormal, normal) is logged and every class must occur. The shared stream components
  (sim/lib/stream.py) drive the array: a source that holds valid and data until the transfer, with
  random idle cycles and garbage on idle lines (and on in_bias except in a tile's first beat),
  a sink with random back-pressure, protocol monitors on both streams (valid falling or data
  changing while stalled, a row with no tile behind it) and an in-order scoreboard (data,
  out_row, out_last). Resets land in the middle of tiles and of a back-pressured drain; after
  each, exactly the tiles sent after it complete. Cycle counts are measured and asserted: an
  isolated tile takes exactly K + ROWS + COLS cycles from first beat to last output row, N
  back-to-back tiles exactly (N-1)*max(K, ROWS) + K + ROWS + COLS. Configurations: BF16 4x4
  (the default), E4M3 4x4, E5M2 3x2 with OFFSET=0 and SATURATE=1, BF16 4x4 with SKID=1, BF16
  4x4 and E4M3 3x2 (with SKID=1) with MULTIPLIER=1 (the exact IEEE multiplier). ``LMUL_TILES``
  = random tiles per configuration (default 40, at least one per kind: 7), seed
  ``COCOTB_RANDOM_SEED`` (default 1); both are printed.
* ``test_mac_array_lstm``: an LSTM gate pre-activation x_t W_ih + h W_hh + b as one product:
  A rows = one 28-pixel row of a real test-set digit image (MNIST t10k as provisioned by
  ``experiments.data``; when it cannot be provisioned, Fashion-MNIST t10k from the same module,
  as the log says) concatenated with a 128-value hidden state, so K = 156; B = a deterministic
  [156 x 512] weight matrix (PyTorch's LSTM init range), bias [512]. The product is run tile by
  tile (ROWS rows x COLS columns per tile, back to back) and every output bit must equal
  ``lmul.matmul`` of the whole matrices. Default: a 4 x 32 slice of outputs; ``LMUL_FULL=1``
  adds 8 images x all 512, with the L-Mul and with the exact multiplier (otherwise reported as
  skipped).
* ``test_yosys_elaborates_without_latches``: yosys finds no latch, multiple driver or loop.
  (Verilator lint and illegal parameters of every module: sim/test_hdl_static.py.)

Run: ``pytest sim/test_mac_array.py`` (``-rA`` or ``-s`` show seeds, counts and cycle numbers).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

import lmul
from sim.lib.cases import mac_array_cases
from sim.lib.common import (
    HDL_DIR,
    config_from_parameters,
    design_sources,
    pack_lanes,
    random_seed,
    run_cocotb,
    special_values,
    tb_parameters,
    tile_count,
    unpack_lanes,
)
from sim.lib.stream import (
    Beat,
    Scoreboard,
    StreamBench,
    StreamMonitor,
    StreamSink,
    StreamSource,
    pause_always,
    pause_never,
    pause_random,
    start_all,
)

DEFAULT_TILES = 40
K_MAX = 200

LSTM_INPUT = 28
LSTM_HIDDEN = 128
LSTM_GATES = 4 * LSTM_HIDDEN
LSTM_WEIGHT_SEED = 20241001

#: binary32 bias patterns covering every class (zeros, subnormals, boundaries, Inf, NaN payloads).
FP32_SPECIALS = np.array([
    0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x3F800000, 0xBF800000,
    0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFC00001,
    0x71800000, 0x8C800000,
], dtype=np.uint32)

#: binary32 result classes the random tiles must reach
RESULT_CLASSES = ("NaN", "+Inf", "-Inf", "+0", "-0", "subnormal", "normal")


# ------------------------------------------------------------------------------ configuration

@dataclass(frozen=True)
class ArrayConfig:
    """An array instance: the L-Mul configuration, shape, multiplier and skid buffer."""

    cfg: lmul.LMulConfig
    rows: int
    cols: int
    multiplier: str = "lmul"  # "lmul" (MULTIPLIER=0) or "exact" (MULTIPLIER=1)
    skid: int = 0

    @classmethod
    def from_parameters(cls, params: dict[str, int]) -> ArrayConfig:
        return cls(config_from_parameters(params), params["ROWS"], params["COLS"],
                   "exact" if params.get("MULTIPLIER", 0) else "lmul", params.get("SKID", 0))

    def describe(self) -> str:
        return (f"{self.rows}x{self.cols} {self.cfg.describe()} multiplier={self.multiplier} "
                f"SKID={self.skid}")


# ------------------------------------------------------------------------------ tiles

@dataclass
class Tile:
    """One array tile: operand bit patterns, bias bits, the model's result and packed beats.

    a: format bits [ROWS, K]; b: format bits [K, COLS]; bias: binary32 bits [COLS];
    expected: binary32 bits [ROWS, COLS] (``lmul.matmul``).
    """

    a: np.ndarray
    b: np.ndarray
    bias: np.ndarray
    expected: np.ndarray
    label: str
    a_words: list[int] = field(default_factory=list)
    b_words: list[int] = field(default_factory=list)
    bias_word: int = 0

    @property
    def k(self) -> int:
        return int(self.a.shape[1])

    def pack(self, width: int) -> Tile:
        """Precompute the input bus words of every beat (lane 0 in the LSBs)."""
        self.a_words = [pack_lanes(self.a[:, k], width) for k in range(self.k)]
        self.b_words = [pack_lanes(self.b[k, :], width) for k in range(self.k)]
        self.bias_word = pack_lanes(self.bias, 32)
        return self


def model_tile(a: np.ndarray, b: np.ndarray, bias: np.ndarray, acfg: ArrayConfig,
               label: str) -> Tile:
    """Tile with the expected result ``lmul.matmul(widen(a), widen(b), bias)`` as bits."""
    fmt = acfg.cfg.fmt
    af = lmul.format_bits_to_float32(a, fmt)
    bf = lmul.format_bits_to_float32(b, fmt)
    biasf = np.asarray(bias, dtype=np.uint32).view(np.float32)
    y = lmul.matmul(af, bf, biasf, cfg=acfg.cfg, multiplier=acfg.multiplier)
    exp = lmul.float32_bits(np.ascontiguousarray(y, dtype=np.float32)).copy()
    return Tile(a.astype(np.int64), b.astype(np.int64), np.asarray(bias, dtype=np.uint32), exp,
                label).pack(fmt.width)


def operands(rng: np.random.Generator, fmt: lmul.Format, shape: tuple[int, int], kind: str,
             k: int) -> np.ndarray:
    """Format bit patterns of one class (gauss, bits, range, special) for a tile of length k."""
    if kind == "bits":
        return rng.integers(0, 1 << fmt.width, shape, dtype=np.int64)
    if kind == "range":
        # Wide dynamic range: exponents spread over +-bias/2 around 1.0 (products stay mostly in
        # range, partial sums span many binades), 10% anywhere in the finite range including
        # subnormals (product underflow/overflow).
        half = max(1, fmt.bias // 2)
        e = fmt.bias + rng.integers(-half, half + 1, shape, dtype=np.int64)
        wide = rng.random(shape) < 0.1
        e[wide] = rng.integers(0, fmt.max_exp_field, int(wide.sum()), dtype=np.int64)
        m = rng.integers(0, 1 << fmt.man_bits, shape, dtype=np.int64)
        s = rng.integers(0, 2, shape, dtype=np.int64)
        return (s << (fmt.exp_bits + fmt.man_bits)) | (e << fmt.man_bits) | m
    x = rng.standard_normal(shape).astype(np.float32)
    bits = lmul.round_to_format_bits(x, fmt).astype(np.int64)
    if kind == "special":
        # About two specials per dot product, so that long tiles do not saturate to NaN.
        sp = special_values(fmt)
        hit = rng.random(shape) < min(0.2, 1.0 / k)
        bits[hit] = rng.choice(sp, size=int(hit.sum()))
    return bits


def bias_bits(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    """binary32 bias patterns of one class."""
    if kind == "bits":
        return rng.integers(0, 1 << 32, n, dtype=np.int64).astype(np.uint32)
    if kind == "special":
        return rng.choice(FP32_SPECIALS, size=n)
    if kind == "zero":
        return rng.choice(np.array([0, 0x80000000], dtype=np.uint32), size=n)
    if kind == "range":
        e = rng.integers(0, 255, n, dtype=np.int64)
        m = rng.integers(0, 1 << 23, n, dtype=np.int64)
        s = rng.integers(0, 2, n, dtype=np.int64)
        return ((s << 31) | (e << 23) | m).astype(np.uint32)
    return rng.standard_normal(n).astype(np.float32).view(np.uint32)


TILE_KINDS = ("gauss", "bits", "range", "special", "zeros", "cancel", "tiny")


def random_tile(rng: np.random.Generator, acfg: ArrayConfig, k: int, kind: str) -> Tile:
    """A random tile of class ``kind`` (see TILE_KINDS) with inner length ``k``."""
    fmt, rows, cols = acfg.cfg.fmt, acfg.rows, acfg.cols
    if kind in ("gauss", "bits", "range", "special"):
        a = operands(rng, fmt, (rows, k), kind, k)
        b = operands(rng, fmt, (k, cols), kind, k)
        bias = bias_bits(rng, cols, kind)
        if kind == "special":
            # Directed on top of the sprinkled specials: in one column of +-1.0 with a finite
            # bias, one row holds a single +Inf product, one a -Inf product, one a NaN operand
            # (as far as there are rows); the other entries of those rows are finite.
            c, j = int(rng.integers(cols)), int(rng.integers(k))
            one = fmt.bias << fmt.man_bits
            b[:, c] = one | (rng.integers(0, 2, k) * fmt.sign_bit)
            bias[c] = bias_bits(rng, 1, "gauss")[0]
            for r, special in zip(rng.permutation(rows), ("+inf", "-inf", "nan"), strict=False):
                a[r, :] = operands(rng, fmt, (1, k), "gauss", k)[0]
                if special == "nan":
                    a[r, j] = fmt.qnan_bits
                else:
                    negative = (special == "-inf") != bool(b[j, c] & fmt.sign_bit)
                    a[r, j] = fmt.inf_bits | (fmt.sign_bit if negative else 0)
    elif kind == "zeros":
        a = operands(rng, fmt, (rows, k), "gauss", k)
        b = operands(rng, fmt, (k, cols), "gauss", k)
        sign = fmt.sign_bit

        def zero_signs(n: int) -> np.ndarray:  # all +0, all -0, or mixed signed zeros
            pick = rng.integers(0, 3)
            return (np.full(n, pick, dtype=np.int64) if pick < 2 else rng.integers(0, 2, n)) * sign

        for r in range(rows):
            if rng.random() < 0.4:  # zero row of A
                a[r, :] = zero_signs(k)
            elif rng.random() < 0.2:  # subnormal row: L-Mul flushes these to signed zeros
                a[r, :] = rng.integers(1, 1 << fmt.man_bits, k) | zero_signs(k)
        for c in range(cols):
            if rng.random() < 0.4:
                b[:, c] = zero_signs(k)
        bias = bias_bits(rng, cols, "zero")
        # One output that must be -0: a row of -0 times a column of +0 plus a bias of -0.
        r, c = int(rng.integers(rows)), int(rng.integers(cols))
        a[r, :], b[:, c], bias[c] = sign, 0, 0x80000000
    elif kind == "cancel":
        # Pairs of steps whose products are exact negatives: exact cancellation (+0 rule) and
        # the rounding of the intermediate sums.
        a = operands(rng, fmt, (rows, k), "gauss", k)
        b = operands(rng, fmt, (k, cols), "gauss", k)
        a[:, 1::2] = a[:, 0:k - 1:2]
        b[1::2, :] = b[0:k - 1:2, :] ^ fmt.sign_bit
        bias = bias_bits(rng, cols, "zero" if rng.random() < 0.5 else "gauss")
    elif kind == "tiny":
        # Results in the binary32 subnormal range: subnormal biases; each row of A is signed
        # zeros except 0, 2 or 3 entries with the smallest normal exponent, B around +-1, so a
        # row's result is the bias plus a few products near the format's smallest normal that
        # partly cancel (for BF16 these differences are binary32 subnormals).
        sign = fmt.sign_bit
        a = rng.integers(0, 2, (rows, k)) * sign
        for r in range(rows):
            nz = min(k, int(rng.choice([0, 2, 3])))
            pos = rng.choice(k, size=nz, replace=False)
            a[r, pos] = ((1 << fmt.man_bits) | rng.integers(0, 1 << fmt.man_bits, nz)
                         | (rng.integers(0, 2, nz) * sign))
        b = ((fmt.bias + rng.integers(-1, 1, (k, cols))) << fmt.man_bits) | rng.integers(
            0, 1 << fmt.man_bits, (k, cols)) | (rng.integers(0, 2, (k, cols)) * sign)
        bias = (rng.integers(1, 1 << 23, cols) | (rng.integers(0, 2, cols) << 31)
                | ((rng.random(cols) < 0.25).astype(np.int64) << 23)).astype(np.uint32)
        # At least one row of zeros under a subnormal bias: a subnormal result for sure.
        a[int(rng.integers(rows)), :] = rng.integers(0, 2, k) * sign
        bias[int(rng.integers(cols))] &= np.uint32(0x807FFFFF)
    else:
        raise ValueError(f"unknown tile kind {kind!r}")
    return model_tile(a, b, bias, acfg, f"{kind} K={k}")


def result_classes(tiles: list[Tile]) -> dict[str, int]:
    """How many expected outputs fall in each binary32 class (coverage of the random tiles)."""
    y = np.concatenate([t.expected.ravel() for t in tiles]).astype(np.uint32)
    e, m, neg = (y >> 23) & 0xFF, y & 0x7FFFFF, (y >> 31) == 1
    return {
        "NaN": int(np.sum((e == 0xFF) & (m != 0))),
        "+Inf": int(np.sum((e == 0xFF) & (m == 0) & ~neg)),
        "-Inf": int(np.sum((e == 0xFF) & (m == 0) & neg)),
        "+0": int(np.sum(y == 0)),
        "-0": int(np.sum(y == 0x80000000)),
        "subnormal": int(np.sum((e == 0) & (m != 0))),
        "normal": int(np.sum((e != 0) & (e != 0xFF))),
    }


def tile_lengths(rng: np.random.Generator, count: int, rows: int) -> list[int]:
    """K values: the edges (1, 2, around ROWS, K_MAX) first, then uniform in 1..K_MAX."""
    edges = sorted({1, 2, max(1, rows - 1), rows, rows + 1, K_MAX})
    ks = edges[:count]
    ks += [int(x) for x in rng.integers(1, K_MAX + 1, max(0, count - len(ks)))]
    return ks


# ------------------------------------------------------------------------------ LSTM case

def load_digit_images(count: int) -> tuple[np.ndarray, str]:
    """The first ``count`` real 28x28 test-set images (uint8) and where they came from: the
    ``.npy`` named by ``LMUL_TB_IMAGES`` and the text of ``LMUL_TB_IMAGES_SOURCE``, written by
    the pytest side (``experiments/tests/test_array_lstm.py`` reads the dataset through
    ``experiments.data``; the testbench itself imports nothing of the experiments)."""
    images = np.load(os.environ["LMUL_TB_IMAGES"], allow_pickle=False)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.shape[0] < count:
        raise ValueError(f"LMUL_TB_IMAGES holds {images.shape}, need >= {count} x 28 x 28")
    return images[:count].copy(), os.environ.get("LMUL_TB_IMAGES_SOURCE", "(unnamed)")


def lstm_operands(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 A [M, 156] (pixel row / 255 | hidden state), W [156, 512], bias [512].

    Image m contributes its pixel row 10 + (m mod 8) (rows with ink); the hidden state is a
    deterministic tanh-range vector per image; weights and bias are uniform in
    +-1/sqrt(hidden) like PyTorch's nn.LSTM init (b = b_ih + b_hh). Fixed seed, independent of
    COCOTB_RANDOM_SEED, so the LSTM case is the same every run.
    """
    rng = np.random.default_rng(LSTM_WEIGHT_SEED)
    m = images.shape[0]
    rows = np.array([images[i, 10 + (i % 8), :] for i in range(m)], dtype=np.float32) / 255.0
    hidden = np.tanh(rng.standard_normal((m, LSTM_HIDDEN))).astype(np.float32)
    a = np.concatenate([rows.astype(np.float32), hidden], axis=1)
    bound = 1.0 / np.sqrt(LSTM_HIDDEN)
    w = rng.uniform(-bound, bound, (LSTM_INPUT + LSTM_HIDDEN, LSTM_GATES)).astype(np.float32)
    bias = (rng.uniform(-bound, bound, LSTM_GATES) + rng.uniform(-bound, bound, LSTM_GATES))
    return a, w, bias.astype(np.float32)


# ------------------------------------------------------------------------------ testbench

@dataclass
class StreamStats:
    """Cycle accounting of one stream (clock-edge numbers of transfers)."""

    cycles: int = 0
    first_accept: dict[int, int] = field(default_factory=dict)  # tile index -> cycle
    last_pop: dict[int, int] = field(default_factory=dict)      # tile index -> cycle
    rows_checked: int = 0
    tiles_done: int = 0
    tiles_done_after_reset: int = 0
    resent_after_reset: int = 0
    abandoned: int | None = None  # tile index cut by the reset
    stall_cycles: int = 0  # input offered, in_ready low


class ArrayTB(StreamBench):
    """Clock, reset (:meth:`StreamBench.reset`) and the shared stream components around one
    mac_array."""

    def __init__(self, dut: Any, acfg: ArrayConfig, seed: int) -> None:
        self.dut = dut
        self.acfg = acfg
        self.rows, self.cols = acfg.rows, acfg.cols
        self.width = acfg.cfg.fmt.width
        self.pyrng = random.Random(seed)
        self.tiles_checked = 0
        self.outputs_checked = 0
        self.tiles: list[Tile] = []
        self.st = StreamStats()
        self.board = Scoreboard("mac_array out", compare=self._compare)
        inputs = ["in_a", "in_b", "in_bias", "in_last"]
        self.source = StreamSource(dut, inputs, rng=self.pyrng, on_transfer=self._accepted,
                                   name="mac_array in")
        self.sink = StreamSink(dut)
        self.in_mon = StreamMonitor(dut, inputs, valid="in_valid", ready="in_ready",
                                    name="mac_array in")
        self.out_mon = StreamMonitor(dut, ["out_data", "out_row", "out_last"],
                                     outstanding=self.board.pending, on_transfer=self._delivered,
                                     name="mac_array out")

    async def start(self) -> None:
        # The simulator toggles the clock (no Python wake-up per edge); the components still write
        # after the rising edge, in that time step's ReadWrite phase.
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns", impl="gpi").start())
        self.dut.out_ready.value = 0
        await self.reset()
        start_all(self.in_mon, self.out_mon, self.source, self.sink)

    def ready_after_reset(self) -> bool:
        """The array comes out of reset empty and ready; a skid buffer may take a cycle."""
        return not self.acfg.skid

    def _accepted(self, beat: Beat, tag: tuple[int, int], cycle: int) -> None:
        ti, k = tag
        tile = self.tiles[ti]
        if k == 0:
            self.st.first_accept[ti] = cycle
        if k == tile.k - 1:
            for r in range(self.rows):
                row = pack_lanes(tile.expected[r], 32)
                self.board.expect({"out_data": row, "out_row": r,
                                   "out_last": int(r == self.rows - 1)}, (ti, r), cycle)

    def _delivered(self, beat: Beat, cycle: int) -> None:
        ti, r = self.board.check(beat, cycle)
        self.st.rows_checked += 1
        if r == self.rows - 1:
            self.st.last_pop[ti] = cycle
            self.st.tiles_done += 1

    def _compare(self, want: Beat, got: Beat, tag: tuple[int, int]) -> str | None:
        ti, row = tag
        if got == want:
            return None
        t = self.tiles[ti]
        if got["out_data"] == want["out_data"]:
            return (f"tile {ti} ({t.label}) row {row}: out_row={got['out_row']} "
                    f"out_last={got['out_last']}, expected {want['out_row']}, "
                    f"{want['out_last']}")
        g = unpack_lanes(got["out_data"], 32, self.cols)
        e = t.expected[row].astype(np.uint64)
        c = int(np.flatnonzero(g != e)[0])
        return (f"tile {ti} ({t.label}) row {row} col {c}: rtl=0x{int(g[c]):08x} "
                f"model=0x{int(e[c]):08x} ({self.acfg.describe()}); "
                f"a={[hex(int(x)) for x in t.a[row]]} b={[hex(int(x)) for x in t.b[:, c]]} "
                f"bias=0x{int(t.bias[c]):08x}")

    def _send(self, tiles: list[Tile], first: int) -> None:
        for ti in range(first, len(tiles)):
            t = tiles[ti]
            for k in range(t.k):
                bias = t.bias_word if k == 0 else self.pyrng.getrandbits(32 * self.cols)
                self.source.send({"in_a": t.a_words[k], "in_b": t.b_words[k], "in_bias": bias,
                                  "in_last": int(k == t.k - 1)}, (ti, k))

    async def stream(self, tiles: list[Tile], p_idle: float, p_stall: float,
                     reset_at: int | None = None) -> StreamStats:
        """Send ``tiles`` back to back and check every output row against the model.

        ``p_idle`` / ``p_stall``: probability per cycle that the source pauses between beats /
        the sink holds ready low. ``reset_at``: cycle at which to pulse rst; the tile being sent
        is abandoned, results not yet drained are dropped, and the following tiles are sent
        again from their first beat: exactly those must complete after the reset.
        """
        self.tiles = tiles
        st = self.st = StreamStats()
        self.source.set_pause(pause_random(self.pyrng, p_idle) if p_idle else pause_never())
        self.sink.set_pause(pause_always() if p_stall >= 1 else (
            pause_random(self.pyrng, p_stall) if p_stall else pause_never()))
        self._send(tiles, 0)
        stalls0 = self.in_mon.stall_cycles
        limit = 50 * (sum(t.k for t in tiles) + len(tiles) * (self.rows + self.cols)) + 1000
        while not self.source.idle or self.board.pending():
            await RisingEdge(self.dut.clk)
            st.cycles += 1
            if reset_at is not None and st.cycles == reset_at:
                active = self.source.active or (self.source.queue[0] if self.source.queue
                                                else None)
                # The tile on offer or partly sent is abandoned; the rest are sent again.
                nxt = len(tiles) if active is None else active[1][0] + 1
                st.abandoned = None if active is None else active[1][0]
                done_before = st.tiles_done
                await self.reset()
                st.tiles_done_after_reset = -done_before  # completed from here on
                st.resent_after_reset = len(tiles) - nxt
                self._send(tiles, nxt)
                reset_at = None
            assert st.cycles < limit, (
                f"no progress: handshake deadlock ({self.board.pending()} rows owed)")
        st.tiles_done_after_reset += st.tiles_done
        st.stall_cycles = self.in_mon.stall_cycles - stalls0
        self.tiles_checked += st.tiles_done
        self.outputs_checked += st.rows_checked * self.cols
        return st


# ------------------------------------------------------------------------------ cocotb tests

@cocotb.test()
async def run_mac_array(dut) -> None:
    """Cycle measurements, random tiles under random handshakes, resets mid-tile."""
    acfg = ArrayConfig.from_parameters(tb_parameters())
    rows, cols = acfg.rows, acfg.cols
    seed = random_seed()
    count = max(tile_count(DEFAULT_TILES), len(TILE_KINDS))
    dut._log.info("mac_array %s: COCOTB_RANDOM_SEED=%d LMUL_TILES=%d (random tiles; at least "
                  "one per kind)", acfg.describe(), seed, count)
    rng = np.random.default_rng(seed)
    tb = ArrayTB(dut, acfg, seed)
    await tb.start()
    t0 = time.perf_counter()

    def gauss(k: int) -> Tile:
        return random_tile(rng, acfg, k, "gauss")

    # 1. Latency of an isolated tile: first beat accepted at edge c, last row popped at edge
    #    c + K + ROWS + COLS - 1.
    for k in sorted({1, 2, rows, rows + 1, 16, 156}):
        st = await tb.stream([gauss(k)], 0.0, 0.0)
        lat = st.last_pop[0] - st.first_accept[0] + 1
        dut._log.info("latency K=%d: %d cycles (ideal K+ROWS+COLS = %d)", k, lat, k + rows + cols)
        assert lat == k + rows + cols, f"latency K={k}: {lat} != {k + rows + cols}"

    # 2. Back-to-back throughput: N tiles, always valid and ready.
    n = 6
    for k in sorted({1, 2, max(1, rows - 1), rows, rows + 1, 32}):
        st = await tb.stream([gauss(k) for _ in range(n)], 0.0, 0.0)
        total = st.last_pop[n - 1] - st.first_accept[0] + 1
        per_tile = (total - (k + rows + cols)) / (n - 1)
        dut._log.info("back-to-back K=%d: %d tiles in %d cycles, %.2f cycles/tile in steady "
                      "state (ideal max(K, ROWS) = %d), latency+drain %d", k, n, total,
                      per_tile, max(k, rows), k + rows + cols)
        # Tiles shorter than ROWS are drain-bound: one output row per cycle.
        ideal = (n - 1) * max(k, rows) + k + rows + cols
        assert total == ideal, f"K={k}: {n} tiles took {total} cycles, ideal {ideal}"

    # 3. Random tiles of every kind under random idle cycles and back-pressure.
    ks = tile_lengths(rng, count, rows)
    kinds = [TILE_KINDS[i % len(TILE_KINDS)] for i in range(len(ks))]
    tiles = [random_tile(rng, acfg, k, kind) for k, kind in zip(ks, kinds, strict=True)]
    tiles = [tiles[i] for i in rng.permutation(len(tiles))]
    classes = result_classes(tiles)
    dut._log.info("random tiles: K = %s; result classes %s", ks, classes)
    missing = [c for c in RESULT_CLASSES if classes[c] == 0]
    assert not missing, f"random tiles reach no {missing} result: the generator is broken"
    phases = ((0.0, 0.0), (0.3, 0.5), (0.05, 0.8), (0.6, 0.1), (0.0, 0.4))
    per_phase = max(1, -(-len(tiles) // len(phases)))
    for i, (p_idle, p_stall) in enumerate(phases):
        chunk = tiles[i * per_phase:(i + 1) * per_phase]
        if chunk:
            st = await tb.stream(chunk, p_idle, p_stall)
            assert st.tiles_done == len(chunk), f"{st.tiles_done} of {len(chunk)} tiles done"
            dut._log.info("p_idle=%.2f p_stall=%.2f: %d tiles, sum K=%d, %d cycles, input "
                          "stalled %d cycles", p_idle, p_stall, len(chunk),
                          sum(t.k for t in chunk), st.cycles, st.stall_cycles)

    # 4. Reset in the middle of a tile, then the following tiles from scratch (a stale
    #    accumulator, first flag or result row would show up as a mismatch or an extra row).
    for reset_at, p_stall, cut in ((25, 0.0, 0), (9, 0.0, 0), (60, 0.9, None)):
        tiles = [gauss(k) for k in (40, 7, 33, 20, 12)]
        st = await tb.stream(tiles, 0.0, p_stall, reset_at=reset_at)
        dut._log.info("reset at cycle %d (p_stall %.1f): tile %s cut, %d tiles sent again and "
                      "%d completed after it", reset_at, p_stall, st.abandoned,
                      st.resent_after_reset, st.tiles_done_after_reset)
        if cut is not None:  # with no stalls the first tile (K=40) is still streaming
            assert st.abandoned == cut, f"reset at {reset_at} cut tile {st.abandoned}"
        owed = len(tiles) - 1 - (st.abandoned if st.abandoned is not None else len(tiles) - 1)
        assert st.tiles_done_after_reset == st.resent_after_reset == owed, (
            f"reset at {reset_at}: {st.tiles_done_after_reset} tiles completed and "
            f"{st.resent_after_reset} resent after it, expected {owed}")
    # Reset while finished tiles wait on back-pressure: none of their rows may appear later.
    tiles = [random_tile(rng, acfg, k, "special") for k in (3, 5)]
    st = await tb.stream(tiles, 0.0, 1.0, reset_at=3 + 5 + rows + cols + 2)
    assert st.tiles_done == 0 and st.resent_after_reset == 0, (
        f"{st.tiles_done} tiles completed, {st.resent_after_reset} resent: expected none")
    st = await tb.stream([gauss(9)], 0.0, 0.0)
    assert st.tiles_done == 1, f"{st.tiles_done} tiles completed after the reset, expected 1"

    dt = time.perf_counter() - t0
    dut._log.info("mac_array %s: %d tiles, %d outputs bit-exact in %.1f s", acfg.describe(),
                  tb.tiles_checked, tb.outputs_checked, dt)


@cocotb.test()
async def run_mac_array_lstm(dut) -> None:
    """LSTM-shaped product, tile by tile, against lmul.matmul of the whole matrices."""
    acfg = ArrayConfig.from_parameters(tb_parameters())
    cfg, rows, cols = acfg.cfg, acfg.rows, acfg.cols
    fmt = cfg.fmt
    full = os.environ["LMUL_TB_LSTM_SIZE"] == "full"
    n_images, n_out = (8, LSTM_GATES) if full else (4, 32)
    images, source = load_digit_images(n_images)
    a, w, bias = lstm_operands(images)
    dut._log.info("LSTM case: %d images from %s, A [%d x %d], B [%d x %d], outputs [%d x %d] "
                  "(%s), %s", n_images, source, *a.shape, *w.shape, n_images, n_out,
                  "full" if full else "slice", acfg.describe())
    t0 = time.perf_counter()
    y = lmul.matmul(a, w, bias, cfg=cfg, multiplier=acfg.multiplier)  # unrounded float32 in
    y_bits = lmul.float32_bits(np.ascontiguousarray(y)).copy()
    a_bits = lmul.round_to_format_bits(a, fmt).astype(np.int64)
    w_bits = lmul.round_to_format_bits(w, fmt).astype(np.int64)
    bias_u = bias.view(np.uint32)
    assert n_images % rows == 0 and n_out % cols == 0, "the LSTM slice must tile exactly"
    tiles = []
    for r0 in range(0, n_images, rows):
        for c0 in range(0, n_out, cols):
            tiles.append(Tile(a_bits[r0:r0 + rows], w_bits[:, c0:c0 + cols],
                              bias_u[c0:c0 + cols].copy(), y_bits[r0:r0 + rows, c0:c0 + cols],
                              f"LSTM rows {r0}.. cols {c0}..").pack(fmt.width))
    tb = ArrayTB(dut, acfg, random_seed())
    await tb.start()
    st = await tb.stream(tiles, 0.0, 0.0)
    k = a.shape[1]
    total = st.last_pop[len(tiles) - 1] - st.first_accept[0] + 1
    ideal = len(tiles) * k + rows + cols
    dt = time.perf_counter() - t0
    dut._log.info("LSTM case: %d tiles (K=%d) in %d cycles = %.2f cycles/tile (ideal "
                  "back-to-back K = %d; one isolated tile K+ROWS+COLS = %d); %d outputs "
                  "bit-exact in %.1f s", len(tiles), k, total, total / len(tiles), k,
                  k + rows + cols, tb.outputs_checked, dt)
    assert total == ideal, f"LSTM stream took {total} cycles, expected {ideal}"
    assert tb.outputs_checked == len(tiles) * rows * cols, (
        f"{tb.outputs_checked} outputs checked, expected {len(tiles) * rows * cols}")


# ------------------------------------------------------------------------------ pytest side

def array_parameters(preset: str, rows: int, cols: int, offset: int | None = None,
                     saturate: bool = False, multiplier: int = 0,
                     skid: int = 0) -> dict[str, int]:
    """RTL parameters from the model's configuration (so RTL and model cannot drift)."""
    fmt = lmul.PRESETS[preset]
    cfg = lmul.LMulConfig.for_format(fmt, offset=offset, saturate=saturate)
    return {**cfg.verilog_parameters(), "ROWS": rows, "COLS": cols, "MULTIPLIER": multiplier,
            "SKID": skid}


@pytest.mark.parametrize(("preset", "rows", "cols", "offset", "saturate", "multiplier", "skid"),
                         mac_array_cases())
def test_mac_array(preset: str, rows: int, cols: int, offset: int | None, saturate: bool,
                   multiplier: int, skid: int) -> None:
    run_cocotb("test_mac_array", "mac_array",
               parameters=array_parameters(preset, rows, cols, offset, saturate, multiplier,
                                           skid),
               testcase="run_mac_array$")


# ------------------------------------------------------------------------------ static checks

@pytest.mark.parametrize("params", [{}, {"EXP_BITS": 4, "MAN_BITS": 3, "ROWS": 2, "COLS": 3},
                                    {"MULTIPLIER": 1, "SKID": 1}],
                         ids=["default", "e4m3-2x3", "exact-skid"])
def test_yosys_elaborates_without_latches(params: dict[str, int]) -> None:
    """yosys reads, elaborates and flattens mac_array; `check -assert` finds no multiple
    drivers, undriven bits or combinational loops, and no latch is inferred."""
    if shutil.which("yosys") is None:
        pytest.fail("yosys not found: run scripts/setup.sh (Debian package yosys)")
    chparam = " ".join(f"-chparam {k} {v}" for k, v in params.items())
    script = (f"read_verilog -I{HDL_DIR} {' '.join(design_sources())}; "
              f"hierarchy -check -top mac_array {chparam}; proc; flatten; opt_clean; "
              "check -assert; select -assert-none t:$dlatch t:$adlatch t:$dlatchsr t:$_DLATCH_*")
    res = subprocess.run(["yosys", "-q", "-p", script], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
