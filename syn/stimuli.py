"""Stimuli of the cost flow (:mod:`syn.cost`): what each design's inputs see, step by step.

A :class:`Stimulus` holds one integer per input port and step (clock period), the first step
whose transitions count and the number of operations the counted steps perform. Per level:

* ``mul``: one operand pair per step (:func:`mul_stimulus`);
* ``pe``: back-to-back dot products through ``mac_pe`` (:func:`pe_stimulus`);
* ``array``: back-to-back tiles through ``mac_array`` (:func:`array_stimulus`);
* ``dot``: the same dot products as ``pe`` through the sweep's sequential ``mac_pe``
  (:func:`pe_stimulus`) or, K operand pairs per step, through ``dot_pe``
  (:func:`dot_stimulus`); every design of the level sees the same dot products.

Workloads (:func:`workload_stimulus`): ``uniform`` (operands uniform in (-1, 1), rounded to the
format; dot products of length :data:`DOT_K`), ``mnist`` (operands of the MNIST LSTM's gate
products, read by :func:`load_mnist_operands` from the file ``python -m experiments.operands``
writes) and ``check`` (random bit patterns for the equivalence check; every pair of an 8-bit
multiplier). Operands are bit patterns of the design's format (sign | exponent | mantissa);
biases are binary32 bit patterns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import lmul

from ._stdcell import CostError
from .designs import ARRAY_COLS, ARRAY_ROWS, REPO, Design, preset

#: Per level, bumped when that level's stimulus changes (re-measures only those designs).
STIMULUS_VERSION = {"mul": 1, "pe": 1, "array": 2, "dot": 1}
WORKLOADS = ("uniform", "mnist")
#: The LSTM's gate product: K = 28 inputs + 128 hidden state.
DOT_K = 156
#: Per image of the MNIST classifier (rows: 28 steps of 28 pixels, hidden 128, 10 classes).
LSTM_STEPS, LSTM_IN, LSTM_HIDDEN, LSTM_CLASSES = 28, 28, 128, 10
MACS_PER_IMAGE = (LSTM_STEPS * (LSTM_IN + LSTM_HIDDEN) * 4 * LSTM_HIDDEN
                  + LSTM_HIDDEN * LSTM_CLASSES)
ELEMENTWISE_PER_IMAGE = LSTM_STEPS * 3 * LSTM_HIDDEN
#: Formats the cost flow takes (names of ``lmul.PRESETS``; fp32 is too large to be useful).
COST_FORMATS = tuple(k for k in lmul.PRESETS if k != "fp32")


def cost_format(name: str) -> lmul.Format:
    """The preset ``name``; ValueError unless it is one of :data:`COST_FORMATS`."""
    return preset(name, COST_FORMATS)


@dataclass
class Stimulus:
    """Per-step input values of one simulation, and what the steps mean.

    Attributes:
        values: input port -> one integer per step.
        n_steps: steps (clock periods). dump_from: first step whose transitions are counted.
        ops: operations (multiplies or MACs) performed by the counted steps.
        out_beats: output beats the steps must produce (arrays: rows per tile).
    """

    values: dict[str, list[int]]
    n_steps: int
    dump_from: int
    ops: int
    out_beats: int = 0


def mul_stimulus(a: np.ndarray, b: np.ndarray) -> Stimulus:
    """One operand pair per step; the first step only sets the starting state."""
    n = len(a)
    return Stimulus({"a": [int(v) for v in a], "b": [int(v) for v in b]}, n, 1, n - 1)


def _recorder(*ports: str) -> tuple[dict[str, list[int]], Callable[..., None]]:
    """(values, step): ``step(port=value, ...)`` appends one step, ports not named get 0."""
    v: dict[str, list[int]] = {k: [] for k in ports}

    def step(**kw: int) -> None:
        for k in v:
            v[k].append(int(kw.get(k, 0)))

    return v, step


def pe_stimulus(tiles: Sequence[tuple[np.ndarray, np.ndarray, int]]) -> Stimulus:
    """Back-to-back dot products (a [K], b [K], bias bits) through ``mac_pe``: two reset
    cycles, one beat per k-step (``in_first`` / ``in_last`` on the first / last), one idle
    cycle at the end."""
    v, step = _recorder("rst", "en", "in_a", "in_b", "in_bias", "in_valid", "in_first",
                        "in_last")
    for _ in range(2):
        step(rst=1, en=1)
    macs = 0
    for a, b, bias in tiles:
        for k in range(len(a)):
            step(en=1, in_a=a[k], in_b=b[k], in_bias=bias, in_valid=1, in_first=k == 0,
                 in_last=k == len(a) - 1)
            macs += 1
    step(en=1)
    return Stimulus(v, len(v["rst"]), 2, macs)


def dot_stimulus(tiles: Sequence[tuple[np.ndarray, np.ndarray, int]], k_lanes: int,
                 width: int) -> Stimulus:
    """Back-to-back dot products (a [L], b [L], bias bits) through ``dot_pe`` with ``k_lanes``
    lanes of ``width`` bits: two reset cycles, one step per chunk of ``k_lanes`` pairs (lane i
    at bits ``i*width``; a final partial chunk padded with +0 pairs, as the model pads),
    ``in_first`` / ``in_last`` on the first / last chunk, one idle cycle at the end.
    ``ops`` counts the MACs of the dot products (L each), not the padding."""
    v, step = _recorder("rst", "en", "in_a", "in_b", "in_bias", "in_valid", "in_first",
                        "in_last")
    for _ in range(2):
        step(rst=1, en=1)
    macs = 0
    for a, b, bias in tiles:
        n = len(a)
        chunks = max(1, -(-n // k_lanes))
        for c in range(chunks):
            lanes = range(c * k_lanes, min(n, (c + 1) * k_lanes))
            a_word = sum(int(a[i]) << (width * (i - c * k_lanes)) for i in lanes)
            b_word = sum(int(b[i]) << (width * (i - c * k_lanes)) for i in lanes)
            step(en=1, in_a=a_word, in_b=b_word, in_bias=bias, in_valid=1, in_first=c == 0,
                 in_last=c == chunks - 1)
        macs += n
    step(en=1)
    return Stimulus(v, len(v["rst"]), 2, macs)


def _dot_level(design: Design, tiles: Sequence[tuple[np.ndarray, np.ndarray, int]],
               width: int) -> Stimulus:
    """The ``dot`` level's stimulus of ``tiles``: ``mac_pe`` one pair per beat, ``dot_pe``
    K pairs per step."""
    if design.top == "mac_pe":
        return pe_stimulus(tiles)
    if design.top == "dot_pe":
        return dot_stimulus(tiles, design.param_dict["K"], width)
    raise ValueError(f"no dot-level stimulus for top {design.top}")


def array_stimulus(tiles: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], width: int,
                   rows: int = ARRAY_ROWS, cols: int = ARRAY_COLS) -> Stimulus:
    """Back-to-back tiles (A [rows, K], B [K, cols], bias [cols] binary32 bits) through
    ``mac_array``: two reset cycles, one beat per k-step, then idle cycles until the last tile
    has drained (``out_ready`` always 1)."""
    v, step = _recorder("rst", "in_valid", "in_a", "in_b", "in_bias", "in_last", "out_ready")
    for _ in range(2):
        step(rst=1, out_ready=1)
    macs = 0
    for a_t, b_t, bias in tiles:
        k_len = a_t.shape[1]
        bias_word = sum(int(bias[c]) << (32 * c) for c in range(cols))
        for k in range(k_len):
            a_word = sum(int(a_t[r, k]) << (width * r) for r in range(rows))
            b_word = sum(int(b_t[k, c]) << (width * c) for c in range(cols))
            step(in_valid=1, in_a=a_word, in_b=b_word, in_bias=bias_word,
                 in_last=k == k_len - 1, out_ready=1)
            macs += rows * cols
    # the last tile's last row leaves rows + cols cycles after its last beat
    for _ in range(rows + cols + 2):
        step(out_ready=1)
    return Stimulus(v, len(v["rst"]), 2, macs, out_beats=rows * len(tiles))


def _uniform_bits(rng: np.random.Generator, fmt: Any, shape: Any) -> np.ndarray:
    x = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    return np.asarray(lmul.round_to_format_bits(x, fmt, "rne"), dtype=np.int64)


def _f32_bits(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.int64)


@dataclass
class MnistOperands:
    """Float32 operands of the MNIST LSTM's gate products in ``lmul`` mode.

    Attributes:
        z: [T, B, 156] the per-step inputs [x_t, h] of the gate product (h from the lmul run).
        w: [156, 512] the gate weights. b: [512] the gate bias.
        source: how the weights were obtained (for the report).
    """

    z: np.ndarray
    w: np.ndarray
    b: np.ndarray
    source: str


#: Where ``python -m experiments.operands`` writes the MNIST LSTM's operands for this flow.
DEFAULT_OPERANDS = REPO / "results" / "operands" / "mnist_lstm.npz"


def load_mnist_operands(path: Path) -> MnistOperands:
    """Read the operand file written by ``python -m experiments.operands`` (``make operands``):
    an ``.npz`` with ``z`` [T, B, 156], ``w`` [156, 512], ``b`` [512] (float32) and ``source``.

    Raises:
        CostError: the file is missing or lacks one of the arrays.
    """
    if not path.is_file():
        raise CostError(f"MNIST operand file {path} not found; run `make operands` "
                        "(python -m experiments.operands) first, or --workloads uniform")
    with np.load(path, allow_pickle=False) as d:
        missing = [k for k in ("z", "w", "b", "source") if k not in d.files]
        if missing:
            raise CostError(f"{path}: not an operand file (missing {', '.join(missing)})")
        z, w, b = (np.asarray(d[k], dtype=np.float32) for k in ("z", "w", "b"))
        if z.ndim != 3 or w.ndim != 2 or z.shape[2] != w.shape[0] or b.shape != (w.shape[1],):
            raise CostError(f"{path}: operand shapes z{z.shape} w{w.shape} b{b.shape} "
                            "do not form a gate product")
        return MnistOperands(z, w, b, str(d["source"]))


@dataclass(frozen=True)
class Sizes:
    """Vector counts. mul_*: operand pairs; pe_tiles / array_tiles: dot products / tiles of
    K = 156; check_*: equivalence vectors (random bit patterns)."""

    mul_vectors: int = 2001
    pe_tiles: int = 6
    array_tiles: int = 2
    check_mul_16: int = 20000
    check_pe_tiles: int = 40
    check_array_tiles: int = 6


def workload_stimulus(design: Design, workload: str, sizes: Sizes, seed: int,
                      mnist: MnistOperands | None) -> Stimulus:
    """The stimulus of ``workload`` (``uniform``, ``mnist`` or ``check``) for ``design``."""
    fmt = cost_format(design.fmt)
    rng = np.random.default_rng([seed, hash_name(design.level), hash_name(workload),
                                 hash_name(design.fmt)])
    width = fmt.width
    if workload == "check":
        if design.level == "mul":
            if width <= 8:
                grid = np.arange(1 << (2 * width), dtype=np.int64)
                a, b = grid >> width, grid & ((1 << width) - 1)
                a = np.concatenate([[0], a])
                b = np.concatenate([[0], b])
            else:
                a = rng.integers(0, 1 << width, sizes.check_mul_16)
                b = rng.integers(0, 1 << width, sizes.check_mul_16)
            return mul_stimulus(a, b)
        if design.level in ("pe", "dot"):
            tiles = []
            for _ in range(sizes.check_pe_tiles):
                k = int(rng.integers(1, 12 if design.level == "pe" else 40))
                tiles.append((rng.integers(0, 1 << width, k), rng.integers(0, 1 << width, k),
                              int(rng.integers(0, 1 << 32))))
            return pe_stimulus(tiles) if design.level == "pe" else \
                _dot_level(design, tiles, width)
        tiles3 = []
        for _ in range(sizes.check_array_tiles):
            k = int(rng.integers(ARRAY_ROWS, 20))
            tiles3.append((rng.integers(0, 1 << width, (ARRAY_ROWS, k)),
                           rng.integers(0, 1 << width, (k, ARRAY_COLS)),
                           rng.integers(0, 1 << 32, ARRAY_COLS)))
        return array_stimulus(tiles3, width)
    if workload == "uniform":
        if design.level == "mul":
            return mul_stimulus(_uniform_bits(rng, fmt, sizes.mul_vectors),
                                _uniform_bits(rng, fmt, sizes.mul_vectors))
        if design.level in ("pe", "dot"):
            tiles = [(_uniform_bits(rng, fmt, DOT_K), _uniform_bits(rng, fmt, DOT_K),
                      int(_f32_bits(rng.uniform(-1, 1, 1))[0])) for _ in range(sizes.pe_tiles)]
            return pe_stimulus(tiles) if design.level == "pe" else \
                _dot_level(design, tiles, width)
        return array_stimulus([(_uniform_bits(rng, fmt, (ARRAY_ROWS, DOT_K)),
                                _uniform_bits(rng, fmt, (DOT_K, ARRAY_COLS)),
                                _f32_bits(rng.uniform(-1, 1, ARRAY_COLS)))
                               for _ in range(sizes.array_tiles)], width)
    if workload != "mnist":
        raise ValueError(f"unknown workload {workload!r}")
    if mnist is None:
        raise CostError("mnist workload requested without captured operands")
    steps, batch, _ = mnist.z.shape
    n_out = mnist.w.shape[1]

    def bits(x: np.ndarray) -> np.ndarray:
        return np.asarray(lmul.round_to_format_bits(np.asarray(x, dtype=np.float32), fmt,
                                                    "rne"), dtype=np.int64)

    if design.level in ("mul", "pe", "dot"):
        n_dots = (sizes.mul_vectors + DOT_K - 1) // DOT_K if design.level == "mul" \
            else sizes.pe_tiles
        picks = [(int(rng.integers(steps)), int(rng.integers(batch)), int(rng.integers(n_out)))
                 for _ in range(n_dots)]
        dots = [(bits(mnist.z[t, i]), bits(mnist.w[:, c]), int(_f32_bits(mnist.b[c:c + 1])[0]))
                for t, i, c in picks]
        if design.level == "pe":
            return pe_stimulus(dots)
        if design.level == "dot":
            return _dot_level(design, dots, width)
        a = np.concatenate([d[0] for d in dots])[:sizes.mul_vectors]
        b = np.concatenate([d[1] for d in dots])[:sizes.mul_vectors]
        return mul_stimulus(a, b)
    if batch < ARRAY_ROWS:
        raise CostError(f"array workload needs >= {ARRAY_ROWS} images, captured {batch}")
    tiles = []
    for _ in range(sizes.array_tiles):
        t = int(rng.integers(steps))
        c0 = int(rng.integers(n_out // ARRAY_COLS)) * ARRAY_COLS
        tiles.append((bits(mnist.z[t, :ARRAY_ROWS]), bits(mnist.w[:, c0:c0 + ARRAY_COLS]),
                      _f32_bits(mnist.b[c0:c0 + ARRAY_COLS])))
    return array_stimulus(tiles, width)


def hash_name(text: str) -> int:
    """A stable 32-bit integer of ``text`` (for seeding per design and workload)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
