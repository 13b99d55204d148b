"""cocotb regressions of the L-Mul MAC array: hdl/fmt_to_fp32.v, hdl/mac_pe.v, hdl/mac_array.v.

* ``test_fmt_to_fp32``: the exact widening against ``ml_dtypes`` (an independent decoder; NaN
  patterns must give the canonical 0x7FC00000) and ``lmul.format_bits_to_float32``: all patterns
  of the 8- and 16-bit presets and of E=2/M=1, random patterns of E=8/M=23 and E=7/M=23.
* ``test_mac_array``: random tiles through ``mac_array`` against ``lmul.matmul``, every output bit
  (signed zeros, Inf, NaN = canonical 0x7FC00000 included). Tiles have K from 1 to 200 (1, 2,
  ROWS-1, ROWS, ROWS+1 and 200 always among them) and are of seven kinds: Gaussian values, uniform
  bit patterns (NaN/Inf/subnormal operands), wide exponent range (large dynamic range, product
  and accumulator overflow), special values sprinkled in, zero rows of A / zero columns of B
  (signed zeros), exactly cancelling product pairs, results in the binary32 subnormal range; the
  bias has the same classes in binary32 (the log prints the class histogram of the expected
  outputs). Streams run back to back under random input valid gaps and random output
  back-pressure (data, bias and last lines carry garbage whenever they are not sampled); resets
  land in the middle of tiles and of a back-pressured drain; the scoreboard checks order,
  out_row/out_last, that nothing is lost, duplicated or left over from before a reset, and that a
  stalled output holds. Cycle counts are measured and asserted: an isolated tile takes exactly
  K + ROWS + COLS cycles from first beat to last output row, N back-to-back tiles exactly
  (N-1)*max(K, ROWS) + K + ROWS + COLS. Configurations: BF16 4x4 (the default), E4M3 4x4, E5M2
  3x2 with OFFSET=0 and SATURATE=1. ``LMUL_TILES`` = number of random tiles per configuration
  (default 40), seed ``COCOTB_RANDOM_SEED`` (default 1); both are printed.
* ``test_mac_array_lstm``: an LSTM gate pre-activation x_t W_ih + h W_hh + b as one product:
  A rows = one 28-pixel row of a real test-set digit image (MNIST t10k, provisioned through
  experiments.data; offline, Debian's Fashion-MNIST t10k images, as the log says)
  concatenated with a 128-value hidden state, so K = 156; B = a deterministic [156 x 512] weight
  matrix (PyTorch's LSTM init range), bias [512]. The product is run tile by tile (ROWS rows x
  COLS columns per tile, back to back) and every output bit must equal ``lmul.matmul`` of the
  whole matrices. Default: a 4 x 32 slice of outputs; ``LMUL_FULL=1``: 8 images x all 512.

* ``test_lint_clean``, ``test_illegal_parameters_stop_elaboration``,
  ``test_yosys_elaborates_without_latches``: Verilator -Wall, parameter range checks, yosys.

Run: ``pytest sim/test_mac_array.py`` (``-rA`` or ``-s`` show seeds, counts and cycle numbers).
"""

from __future__ import annotations

import gzip
import random
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, Timer

import lmul

from common import (
    REPO,
    full_run,
    hdl,
    pack_lanes,
    random_seed,
    run_cocotb,
    tb_parameters,
    tile_count,
    unpack_lanes,
    vector_count,
)

DEFAULT_TILES = 40
K_MAX = 200
FMT_LANES = 64
FP32_QNAN = 0x7FC00000
#: formats instantiated by sim/hdl/fmt_to_fp32_formats.v (E, M)
FMT_CASES = ((8, 7), (5, 10), (4, 3), (5, 2), (2, 1), (8, 23), (7, 23))
ARRAY_SOURCES = ("mac_array.v", "mac_pe.v", "lmul_core.v", "fmt_to_fp32.v", "fp_add.v")

LSTM_INPUT = 28
LSTM_HIDDEN = 128
LSTM_GATES = 4 * LSTM_HIDDEN
LSTM_WEIGHT_SEED = 20241001
FASHION_T10K = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")

#: binary32 bias patterns covering every class (zeros, subnormals, boundaries, Inf, NaN payloads).
FP32_SPECIALS = np.array([
    0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x3F800000, 0xBF800000,
    0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFC00001,
    0x71800000, 0x8C800000,
], dtype=np.uint32)


# ------------------------------------------------------------------------------ configuration

def config_from_parameters(params: dict[str, int]) -> lmul.LMulConfig:
    """Model configuration for the RTL parameters the simulation was built with."""
    return lmul.LMulConfig(exp_bits=params["EXP_BITS"], man_bits=params["MAN_BITS"],
                           offset=params.get("OFFSET"), saturate=bool(params.get("SATURATE", 0)))


def format_specials(fmt: lmul.Format) -> np.ndarray:
    """Bit patterns of every special class of ``fmt`` (both signs)."""
    m = fmt.man_bits
    mags = sorted({0, 1, fmt.man_mask, 1 << m, fmt.bias << m, (fmt.bias << m) | fmt.man_mask,
                   fmt.max_finite_bits, fmt.inf_bits, fmt.qnan_bits, fmt.inf_bits | 1,
                   fmt.inf_bits | fmt.man_mask})
    mags_a = np.array(mags, dtype=np.int64)
    return np.concatenate([mags_a, mags_a | fmt.sign_bit])


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


def model_tile(a: np.ndarray, b: np.ndarray, bias: np.ndarray, cfg: lmul.LMulConfig,
               label: str) -> Tile:
    """Tile with the expected result ``lmul.matmul(widen(a), widen(b), bias)`` as bits."""
    fmt = cfg.fmt
    af = lmul.format_bits_to_float32(a, fmt)
    bf = lmul.format_bits_to_float32(b, fmt)
    biasf = np.asarray(bias, dtype=np.uint32).view(np.float32)
    y = lmul.matmul(af, bf, biasf, cfg=cfg)
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
        sp = format_specials(fmt)
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


def random_tile(rng: np.random.Generator, cfg: lmul.LMulConfig, rows: int, cols: int, k: int,
                kind: str) -> Tile:
    """A random tile of class ``kind`` (see TILE_KINDS) with inner length ``k``."""
    fmt = cfg.fmt
    if kind in ("gauss", "bits", "range", "special"):
        a = operands(rng, fmt, (rows, k), kind, k)
        b = operands(rng, fmt, (k, cols), kind, k)
        bias = bias_bits(rng, cols, kind)
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
    else:
        raise ValueError(f"unknown tile kind {kind!r}")
    return model_tile(a, b, bias, cfg, f"{kind} K={k}")


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
    """``count`` real 28x28 test-set images (uint8) and where they came from.

    MNIST t10k as provisioned by experiments.data (test_mac_array_lstm provisions it first;
    checked against its pinned SHA-256); offline, Debian's Fashion-MNIST t10k images (same IDX
    layout), and the log says so.
    """
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        from experiments import data as exp_data
    except ImportError:
        exp_data = None
    if exp_data is not None:
        name = "t10k-images-idx3-ubyte"
        path = exp_data.data_dir() / "MNIST" / "raw" / name
        if path.is_file():
            raw = path.read_bytes()
            if exp_data.sha256_bytes(raw) == exp_data.MNIST_SHA256[name]:
                return exp_data.parse_idx(raw, str(path))[:count].copy(), f"MNIST t10k ({path})"
    if not FASHION_T10K.is_file():
        raise FileNotFoundError(
            "no digit images: run `make data` (MNIST) or install dataset-fashion-mnist")
    raw = gzip.decompress(FASHION_T10K.read_bytes())
    if raw[:4] != b"\x00\x00\x08\x03":
        raise ValueError(f"{FASHION_T10K}: not an IDX image file")
    n, h, w = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    images = np.frombuffer(raw[16:16 + n * h * w], dtype=np.uint8).reshape(n, h, w)
    return images[:count].copy(), f"Fashion-MNIST t10k ({FASHION_T10K}; MNIST not provisioned)"


def lstm_operands(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 A [M, 156] (pixel row / 255 | hidden state), W [156, 512], bias [512].

    Image m contributes its pixel row 10 + (m mod 8) (rows with ink); the hidden state is a
    deterministic tanh-range vector per image; weights and bias are uniform in
    +-1/sqrt(hidden) like torch.nn.LSTM's init (b = b_ih + b_hh). Fixed seed, independent of
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
    """Cycle accounting of one stream (cycle 0 = first clock of the stream)."""

    cycles: int = 0
    first_accept: dict[int, int] = field(default_factory=dict)  # tile index -> cycle
    last_pop: dict[int, int] = field(default_factory=dict)      # tile index -> cycle
    rows_checked: int = 0
    tiles_done: int = 0
    stall_cycles: int = 0  # in_ready low


class ArrayTB:
    """Clock, reset, driver, sink and scoreboard around one mac_array."""

    def __init__(self, dut, cfg: lmul.LMulConfig, rows: int, cols: int, seed: int) -> None:
        self.dut = dut
        self.cfg = cfg
        self.rows = rows
        self.cols = cols
        self.width = cfg.fmt.width
        self.pyrng = random.Random(seed)
        self.tiles_checked = 0
        self.outputs_checked = 0

    async def start(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        self.drive_idle()
        self.dut.out_ready.value = 0
        await self.reset()

    def drive_idle(self) -> None:
        """in_valid low, every other input line random (must be ignored)."""
        g = self.pyrng.getrandbits
        self.dut.in_valid.value = 0
        self.dut.in_a.value = g(self.rows * self.width)
        self.dut.in_b.value = g(self.cols * self.width)
        self.dut.in_bias.value = g(self.cols * 32)
        self.dut.in_last.value = g(1)

    async def reset(self, cycles: int = 2) -> None:
        self.dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await ReadOnly()
        assert int(self.dut.out_valid.value) == 0, "out_valid set right after reset"
        assert int(self.dut.in_ready.value) == 1, "in_ready low right after reset"
        await RisingEdge(self.dut.clk)

    async def stream(self, tiles: list[Tile], p_valid: float, p_ready: float,
                     reset_at: int | None = None) -> StreamStats:
        """Send ``tiles`` back to back and check every output row against the model.

        ``reset_at``: cycle at which to pulse rst; the tile being sent is abandoned, results
        not yet drained are discarded, and sending resumes with the next tile.
        """

        dut, rng, cols = self.dut, self.pyrng, self.cols
        st = StreamStats()
        pending: deque[tuple[int, int, np.ndarray]] = deque()  # (tile, row, expected bits)
        ti = k = 0
        offering = False
        held: int | None = None
        limit = 50 * (sum(t.k for t in tiles) + len(tiles) * (self.rows + self.cols)) + 1000
        while ti < len(tiles) or pending:
            if ti < len(tiles) and (offering or rng.random() < p_valid):
                t = tiles[ti]
                offering = True
                dut.in_valid.value = 1
                dut.in_a.value = t.a_words[k]
                dut.in_b.value = t.b_words[k]
                dut.in_bias.value = t.bias_word if k == 0 else rng.getrandbits(32 * cols)
                dut.in_last.value = int(k == t.k - 1)
            else:
                self.drive_idle()
            dut.out_ready.value = int(rng.random() < p_ready)
            await ReadOnly()
            in_ready = int(dut.in_ready.value) == 1
            if not in_ready:
                st.stall_cycles += 1
            if int(dut.out_valid.value):
                word = int(dut.out_data.value)
                assert pending, f"cycle {st.cycles}: out_valid with no outstanding row"
                tix, row, exp = pending[0]
                got = unpack_lanes(word, 32, cols)
                if not np.array_equal(got, exp):
                    c = int(np.nonzero(got != exp)[0][0])
                    t = tiles[tix]
                    raise AssertionError(
                        f"tile {tix} ({t.label}) row {row} col {c}: rtl=0x{int(got[c]):08x} "
                        f"model=0x{int(exp[c]):08x} ({self.cfg.describe()}, "
                        f"{self.rows}x{cols}); a={[hex(int(x)) for x in t.a[row]]} "
                        f"b={[hex(int(x)) for x in t.b[:, c]]} bias=0x{int(t.bias[c]):08x}")
                assert int(dut.out_row.value) == row, f"cycle {st.cycles}: out_row"
                assert int(dut.out_last.value) == int(row == self.rows - 1), "out_last"
                if held is not None:
                    assert held == word, f"cycle {st.cycles}: out_data changed while stalled"
                if int(dut.out_ready.value):
                    pending.popleft()
                    held = None
                    st.rows_checked += 1
                    if row == self.rows - 1:
                        st.last_pop[tix] = st.cycles
                        st.tiles_done += 1
                else:
                    held = word
            else:
                assert held is None, f"cycle {st.cycles}: out_valid dropped while stalled"
            if offering and in_ready:
                offering = False
                if k == 0:
                    st.first_accept[ti] = st.cycles
                k += 1
                if k == tiles[ti].k:
                    pending.extend((ti, r, tiles[ti].expected[r].astype(np.uint64))
                                   for r in range(self.rows))
                    ti, k = ti + 1, 0
            await RisingEdge(dut.clk)
            st.cycles += 1
            if reset_at is not None and st.cycles == reset_at:
                self.drive_idle()
                await self.reset()
                if k > 0 or offering:
                    ti, k = ti + 1, 0
                offering = False
                pending.clear()
                held = None
                reset_at = None
            assert st.cycles < limit, "no progress: handshake deadlock"
        self.tiles_checked += st.tiles_done
        self.outputs_checked += st.rows_checked * cols
        return st



# ------------------------------------------------------------------------------ cocotb tests

@cocotb.test()
async def run_fmt_to_fp32(dut) -> None:
    """Widening of every format in FMT_CASES: exhaustive up to 16 bits, random patterns above."""

    seed, count = random_seed(), vector_count(20_000)
    rng = np.random.default_rng(seed)
    lanes = tb_parameters()["LANES"]
    for exp_bits, man_bits in FMT_CASES:
        fmt = lmul.format_for(exp_bits, man_bits)
        if fmt.width <= 16:
            x = np.arange(1 << fmt.width, dtype=np.int64)
            what = "exhaustive"
        else:
            x = rng.integers(0, 1 << fmt.width, count, dtype=np.int64)
            x = np.concatenate([x, format_specials(fmt)])
            what = "random + specials"
        x_port = getattr(dut, f"x_e{exp_bits}m{man_bits}")
        y_port = getattr(dut, f"y_e{exp_bits}m{man_bits}")
        pad = (-x.size) % lanes
        xp = np.concatenate([x, np.zeros(pad, np.int64)])
        got = np.empty(xp.size, dtype=np.uint64)
        for s in range(0, xp.size, lanes):
            x_port.value = pack_lanes(xp[s:s + lanes], fmt.width)
            await Timer(1, unit="ns")
            got[s:s + lanes] = unpack_lanes(int(y_port.value), 32, lanes)
        got = got[:x.size].astype(np.uint32)

        model = lmul.float32_bits(lmul.format_bits_to_float32(x, fmt))
        bad = np.nonzero(got != model)[0]
        assert bad.size == 0, (f"E={exp_bits} M={man_bits}: {bad.size} differ from the model; "
                               f"first x=0x{int(x[bad[0]]):x} rtl=0x{int(got[bad[0]]):08x} "
                               f"model=0x{int(model[bad[0]]):08x}")
        ref = independent_widen(x, fmt)
        is_nan = np.isnan(ref)
        ref_bits = ref.astype(np.float32).view(np.uint32)
        assert np.all(got[is_nan] == FP32_QNAN), "NaN patterns must widen to 0x7FC00000"
        bad = np.nonzero(got[~is_nan] != ref_bits[~is_nan])[0]
        assert bad.size == 0, (f"E={exp_bits} M={man_bits}: {bad.size} differ from the "
                               "independent decoder")
        dut._log.info("fmt_to_fp32 E=%d M=%d: %s, %d patterns bit-exact (model and independent "
                      "decoder), COCOTB_RANDOM_SEED=%d", exp_bits, man_bits, what, x.size, seed)


def independent_widen(x: np.ndarray, fmt: lmul.Format) -> np.ndarray:
    """float64 values of ``fmt`` patterns without the model: ml_dtypes where it has the format,
    else sign * 2^e * significand computed here."""
    import ml_dtypes

    known = {(8, 7): (ml_dtypes.bfloat16, np.uint16), (5, 10): (np.float16, np.uint16),
             (4, 3): (ml_dtypes.float8_e4m3, np.uint8), (5, 2): (ml_dtypes.float8_e5m2, np.uint8)}
    key = (fmt.exp_bits, fmt.man_bits)
    if key in known:
        dt, ut = known[key]
        return x.astype(ut).view(dt).astype(np.float64)
    e = (x >> fmt.man_bits) & fmt.max_exp_field
    m = x & fmt.man_mask
    sign = np.where((x >> (fmt.exp_bits + fmt.man_bits)) & 1, -1.0, 1.0)
    mag = np.where(e == 0, m * 2.0 ** (1 - fmt.bias - fmt.man_bits),
                   (m + 2.0 ** fmt.man_bits) * 2.0 ** (e.astype(np.float64) - fmt.bias
                                                      - fmt.man_bits))
    mag = np.where(e == fmt.max_exp_field, np.where(m == 0, np.inf, np.nan), mag)
    return sign * mag


@cocotb.test()
async def run_mac_array(dut) -> None:
    """Cycle measurements, random tiles under random handshakes, resets mid-tile."""
    params = tb_parameters()
    cfg = config_from_parameters(params)
    rows, cols = params["ROWS"], params["COLS"]
    seed, count = random_seed(), tile_count(DEFAULT_TILES)
    dut._log.info("mac_array %dx%d %s: COCOTB_RANDOM_SEED=%d LMUL_TILES=%d (random tiles)",
                  rows, cols, cfg.describe(), seed, count)
    rng = np.random.default_rng(seed)
    tb = ArrayTB(dut, cfg, rows, cols, seed)
    await tb.start()
    t0 = time.perf_counter()

    # 1. Latency of an isolated tile: first beat accepted in cycle 0, last row popped in cycle
    #    K + ROWS + COLS - 1.
    for k in sorted({1, 2, rows, rows + 1, 16, 156}):
        st = await tb.stream([random_tile(rng, cfg, rows, cols, k, "gauss")], 1.0, 1.0)
        lat = st.last_pop[0] - st.first_accept[0] + 1
        dut._log.info("latency K=%d: %d cycles (ideal K+ROWS+COLS = %d)", k, lat, k + rows + cols)
        assert lat == k + rows + cols, f"latency K={k}: {lat} != {k + rows + cols}"

    # 2. Back-to-back throughput: N tiles, always valid and ready.
    n = 6
    for k in sorted({1, 2, max(1, rows - 1), rows, rows + 1, 32}):
        tiles = [random_tile(rng, cfg, rows, cols, k, "gauss") for _ in range(n)]
        st = await tb.stream(tiles, 1.0, 1.0)
        total = st.last_pop[n - 1] - st.first_accept[0] + 1
        per_tile = (total - (k + rows + cols)) / (n - 1)
        dut._log.info("back-to-back K=%d: %d tiles in %d cycles, %.2f cycles/tile in steady "
                      "state (ideal max(K, ROWS) = %d), latency+drain %d", k, n, total,
                      per_tile, max(k, rows), k + rows + cols)
        # Tiles shorter than ROWS are drain-bound: one output row per cycle.
        ideal = (n - 1) * max(k, rows) + k + rows + cols
        assert total == ideal, f"K={k}: {n} tiles took {total} cycles, ideal {ideal}"

    # 3. Random tiles of every class under random valid gaps and back-pressure.
    ks = tile_lengths(rng, count, rows)
    kinds = [TILE_KINDS[i % len(TILE_KINDS)] for i in range(len(ks))]
    tiles = [random_tile(rng, cfg, rows, cols, k, kind) for k, kind in zip(ks, kinds, strict=True)]
    order = rng.permutation(len(tiles))
    tiles = [tiles[i] for i in order]
    dut._log.info("random tiles: K = %s; expected output classes %s", ks,
                  result_classes(tiles))
    phases = ((1.0, 1.0), (0.7, 0.5), (0.95, 0.2), (0.4, 0.9), (1.0, 0.6))
    per_phase = max(1, -(-len(tiles) // len(phases)))
    for i, (p_valid, p_ready) in enumerate(phases):
        chunk = tiles[i * per_phase:(i + 1) * per_phase]
        if chunk:
            st = await tb.stream(chunk, p_valid, p_ready)
            dut._log.info("p_valid=%.2f p_ready=%.2f: %d tiles, sum K=%d, %d cycles, in_ready "
                          "low %d cycles", p_valid, p_ready, len(chunk),
                          sum(t.k for t in chunk), st.cycles, st.stall_cycles)

    # 4. Reset in the middle of a tile, then clean tiles (a stale accumulator, first flag or
    #    result row would show up as a mismatch or an extra row).
    for reset_at, p_ready in ((25, 1.0), (9, 1.0), (60, 0.1)):
        tiles = [random_tile(rng, cfg, rows, cols, k, "gauss") for k in (40, 7, 33, 20, 12)]
        st = await tb.stream(tiles, 1.0, p_ready, reset_at=reset_at)
        dut._log.info("reset at cycle %d (p_ready %.1f): %d tiles completed after it",
                      reset_at, p_ready, st.tiles_done)
        assert st.tiles_done >= 2
    # Reset while a finished tile waits on back-pressure, then make sure its rows never appear.
    tiles = [random_tile(rng, cfg, rows, cols, k, "special") for k in (3, 5)]
    st = await tb.stream(tiles, 1.0, 0.0, reset_at=3 + rows + cols + 2)
    st = await tb.stream([random_tile(rng, cfg, rows, cols, 9, "gauss")], 1.0, 1.0)
    assert st.tiles_done == 1

    dt = time.perf_counter() - t0
    dut._log.info("mac_array %dx%d %s: %d tiles, %d outputs bit-exact in %.1f s", rows, cols,
                  cfg.describe(), tb.tiles_checked, tb.outputs_checked, dt)


@cocotb.test()
async def run_mac_array_lstm(dut) -> None:
    """LSTM-shaped product, tile by tile, against lmul.matmul of the whole matrices."""
    params = tb_parameters()
    cfg = config_from_parameters(params)
    rows, cols = params["ROWS"], params["COLS"]
    fmt = cfg.fmt
    full = full_run()
    n_images, n_out = (8, LSTM_GATES) if full else (4, 32)
    images, source = load_digit_images(n_images)
    a, w, bias = lstm_operands(images)
    dut._log.info("LSTM case: %d images from %s, A [%d x %d], B [%d x %d], outputs [%d x %d] "
                  "(LMUL_FULL=%d), %s %dx%d", n_images, source, *a.shape, *w.shape, n_images,
                  n_out, int(full), cfg.describe(), rows, cols)
    t0 = time.perf_counter()
    y = lmul.matmul(a, w, bias, cfg=cfg)  # the experiments' call: unrounded float32 operands
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
    tb = ArrayTB(dut, cfg, rows, cols, random_seed())
    await tb.start()
    st = await tb.stream(tiles, 1.0, 1.0)
    k = a.shape[1]
    total = st.last_pop[len(tiles) - 1] - st.first_accept[0] + 1
    ideal = len(tiles) * k + rows + cols
    dt = time.perf_counter() - t0
    dut._log.info("LSTM case: %d tiles (K=%d) in %d cycles = %.2f cycles/tile (ideal "
                  "back-to-back K = %d; one isolated tile K+ROWS+COLS = %d); %d outputs "
                  "bit-exact in %.1f s", len(tiles), k, total, total / len(tiles), k,
                  k + rows + cols, tb.outputs_checked, dt)
    assert total == ideal, f"LSTM stream took {total} cycles, expected {ideal}"
    assert tb.outputs_checked == len(tiles) * rows * cols


# ------------------------------------------------------------------------------ pytest side

def test_fmt_to_fp32() -> None:
    run_cocotb("test_mac_array", "fmt_to_fp32_formats",
               hdl("fmt_to_fp32_formats.v", "fmt_to_fp32.v"), parameters={"LANES": FMT_LANES},
               testcase="run_fmt_to_fp32")


ARRAY_CASES = [
    pytest.param("bf16", 4, 4, None, False, id="bf16-4x4"),
    pytest.param("e4m3_ieee", 4, 4, None, False, id="e4m3_ieee-4x4"),
    pytest.param("e5m2", 3, 2, 0, True, id="e5m2-3x2-off0-sat"),
]


def array_parameters(preset: str, rows: int, cols: int, offset: int | None,
                     saturate: bool) -> dict[str, int]:
    """RTL parameters from the model's configuration (so RTL and model cannot drift)."""
    fmt = lmul.PRESETS[preset]
    cfg = lmul.LMulConfig(fmt.exp_bits, fmt.man_bits, offset=offset, saturate=saturate)
    return {**cfg.verilog_parameters(), "ROWS": rows, "COLS": cols}


@pytest.mark.parametrize(("preset", "rows", "cols", "offset", "saturate"), ARRAY_CASES)
def test_mac_array(preset: str, rows: int, cols: int, offset: int | None,
                   saturate: bool) -> None:
    run_cocotb("test_mac_array", "mac_array", hdl(*ARRAY_SOURCES),
               parameters=array_parameters(preset, rows, cols, offset, saturate),
               testcase="run_mac_array$")


def test_mac_array_lstm() -> None:
    # Provision MNIST here, on the pytest side (pip runs from this interpreter, not from inside
    # the simulator); offline, the testbench falls back to Fashion-MNIST and logs which it used.
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from experiments import data as exp_data

    try:
        exp_data.ensure("mnist")
    except exp_data.DataError as err:
        print(f"MNIST unavailable, the LSTM case falls back to Fashion-MNIST rows: {err}")
    run_cocotb("test_mac_array", "mac_array", hdl(*ARRAY_SOURCES),
               parameters=array_parameters("bf16", 4, 4, None, False),
               testcase="run_mac_array_lstm")


# ------------------------------------------------------------------------------ static checks

LINT_CASES = [
    ("mac_array", ARRAY_SOURCES, {}),
    ("mac_array", ARRAY_SOURCES, {"EXP_BITS": 4, "MAN_BITS": 3}),
    ("mac_array", ARRAY_SOURCES, {"ROWS": 1, "COLS": 1, "EXP_BITS": 5, "MAN_BITS": 2}),
    ("mac_array", ARRAY_SOURCES, {"ROWS": 3, "COLS": 5, "SATURATE": 1, "OFFSET": 0}),
    ("mac_pe", ARRAY_SOURCES[1:], {}),
    ("fmt_to_fp32", ("fmt_to_fp32.v",), {}),
    ("fmt_to_fp32", ("fmt_to_fp32.v",), {"EXP_BITS": 2, "MAN_BITS": 1}),
    ("fmt_to_fp32", ("fmt_to_fp32.v",), {"EXP_BITS": 8, "MAN_BITS": 23}),
]


@pytest.mark.parametrize(("top", "sources", "params"), LINT_CASES,
                         ids=[f"{t}-{'-'.join(f'{k}{v}' for k, v in p.items()) or 'default'}"
                              for t, _, p in LINT_CASES])
def test_lint_clean(top: str, sources: tuple[str, ...], params: dict[str, int]) -> None:
    """``verilator --lint-only -Wall`` reports nothing."""
    import shutil
    import subprocess

    if shutil.which("verilator") is None:
        pytest.skip("verilator not installed")
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", top, *hdl(*sources)]
    cmd += [f"-G{k}={v}" for k, v in params.items()]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr


BAD_PARAMS = [
    ("fmt_to_fp32", ("fmt_to_fp32.v",), "EXP_BITS", 9),
    ("fmt_to_fp32", ("fmt_to_fp32.v",), "MAN_BITS", 24),
    ("mac_array", ARRAY_SOURCES, "ROWS", 0),
    ("mac_array", ARRAY_SOURCES, "COLS", 65),
]


@pytest.mark.parametrize(("top", "sources", "param", "value"), BAD_PARAMS,
                         ids=[f"{t}-{p}{v}" for t, _, p, v in BAD_PARAMS])
def test_illegal_parameters_stop_elaboration(top: str, sources: tuple[str, ...], param: str,
                                             value: int) -> None:
    """Icarus elaboration fails and names the offending parameter."""
    import shutil
    import subprocess

    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed")
    cmd = ["iverilog", "-g2005", "-o", "/dev/null", "-s", top, f"-P{top}.{param}={value}",
           *hdl(*sources)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert res.returncode != 0
    assert f"PARAMETER_ERROR__{top}__{param}" in res.stdout + res.stderr


@pytest.mark.parametrize("params", [{}, {"EXP_BITS": 4, "MAN_BITS": 3, "ROWS": 2, "COLS": 3}],
                         ids=["default", "e4m3-2x3"])
def test_yosys_elaborates_without_latches(params: dict[str, int]) -> None:
    """yosys reads, elaborates and flattens mac_array; `check -assert` finds no multiple
    drivers, undriven bits or combinational loops, and no latch is inferred."""
    import shutil
    import subprocess

    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed")
    chparam = " ".join(f"-chparam {k} {v}" for k, v in params.items())
    script = (f"read_verilog {' '.join(hdl(*ARRAY_SOURCES))}; "
              f"hierarchy -check -top mac_array {chparam}; proc; flatten; opt_clean; "
              "check -assert; select -assert-none t:$dlatch t:$adlatch t:$dlatchsr t:$_DLATCH_*")
    res = subprocess.run(["yosys", "-q", "-p", script], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
