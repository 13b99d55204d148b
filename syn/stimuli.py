"""Stimuli of the cost flow (:mod:`syn.cost`): what each design's inputs see, step by step.

A :class:`Stimulus` holds one integer per input port and step (clock period), the first step
whose transitions count and the number of operations the counted steps perform. Per level:

* ``mul``: one operand pair per step (:func:`mul_stimulus`);
* ``pe``: back-to-back dot products through ``mac_pe`` (:func:`pe_stimulus`);
* ``array``: back-to-back tiles through ``mac_array`` (:func:`array_stimulus`);
* ``dot``: the same dot products as ``pe`` through the sweep's sequential ``mac_pe``
  (:func:`pe_stimulus`) or, K operand pairs per step, through ``dot_pe``
  (:func:`dot_stimulus`); every design of the level sees the same dot products;
* ``cell``: one operand (pair) per step of the cell's element-wise units
  (:func:`cell_stimulus`).

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
STIMULUS_VERSION = {"mul": 1, "pe": 1, "array": 2, "dot": 1, "cell": 1}
WORKLOADS = ("uniform", "mnist")
#: The LSTM's gate product: K = 28 inputs + 128 hidden state.
DOT_K = 156
#: Per image of the MNIST classifier (rows: 28 steps of 28 pixels, hidden 128, 10 classes).
LSTM_STEPS, LSTM_IN, LSTM_HIDDEN, LSTM_CLASSES = 28, 28, 128, 10
MACS_PER_IMAGE = (LSTM_STEPS * (LSTM_IN + LSTM_HIDDEN) * 4 * LSTM_HIDDEN
                  + LSTM_HIDDEN * LSTM_CLASSES)
ELEMENTWISE_PER_IMAGE = LSTM_STEPS * 3 * LSTM_HIDDEN
#: Operations per image of each ``cell``-level unit (variant -> count), as ``make cosim`` runs
#: the cell: per step and hidden unit three products (f*c, i*g, o*tanh(c)) and one binary32
#: sum, three sigmoids (i, f, o) and two tanh (g, c), six roundings to the format (the
#: products' operands) and three widenings (the products); per step the 156 gate inputs are
#: rounded to the format, and once per image the final h for the head.
CELL_OPS_PER_IMAGE = {
    "ewmul": LSTM_STEPS * 3 * LSTM_HIDDEN,
    "add": LSTM_STEPS * LSTM_HIDDEN,
    "sigmoid": LSTM_STEPS * 3 * LSTM_HIDDEN,
    "tanh": LSTM_STEPS * 2 * LSTM_HIDDEN,
    "to_fmt": LSTM_STEPS * (LSTM_IN + LSTM_HIDDEN + 6 * LSTM_HIDDEN) + LSTM_HIDDEN,
    "widen": LSTM_STEPS * 3 * LSTM_HIDDEN,
}
#: Formats the cost flow takes (names of ``lmul.PRESETS``; fp32 is too large to be useful).
# Finite-only presets (OCP E4M3FN) are left out: the designs pass EXP_BITS/MAN_BITS only.
COST_FORMATS = tuple(k for k, f in lmul.PRESETS.items() if k != "fp32" and not f.finite_only)


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


def dot_pe_latency(pipeline: int) -> int:
    """Enabled clocks from a ``dot_pe`` step to the cycle whose ``out_sum`` is its result:
    PIPELINE 0 -> 0, 1 and 2 -> 1, 3 -> 2 (hdl/dot_pe.v)."""
    return {0: 0, 1: 1, 2: 1, 3: 2}[pipeline]


def dot_stimulus(tiles: Sequence[tuple[np.ndarray, np.ndarray, int]], k_lanes: int,
                 width: int, tail: int = 1) -> Stimulus:
    """Back-to-back dot products (a [L], b [L], bias bits) through ``dot_pe`` with ``k_lanes``
    lanes of ``width`` bits: two reset cycles, one step per chunk of ``k_lanes`` pairs (lane i
    at bits ``i*width``; a final partial chunk padded with +0 pairs, as the model pads),
    ``in_first`` / ``in_last`` on the first / last chunk, ``tail`` idle cycles at the end.
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
    for _ in range(tail):
        step(en=1)
    return Stimulus(v, len(v["rst"]), 2, macs)


def _dot_level(design: Design, tiles: Sequence[tuple[np.ndarray, np.ndarray, int]],
               width: int) -> Stimulus:
    """The ``dot`` level's stimulus of ``tiles``: ``mac_pe`` one pair per beat, ``dot_pe``
    K pairs per step."""
    if design.top == "mac_pe":
        return pe_stimulus(tiles)
    if design.top == "dot_pe":
        # one idle cycle, or as many as the PE's latency (the last result must show)
        tail = max(1, dot_pe_latency(design.param_dict.get("PIPELINE", 0)))
        return dot_stimulus(tiles, design.param_dict["K"], width, tail)
    raise ValueError(f"no dot-level stimulus for top {design.top}")


def dot_results(design: Design, stim: Stimulus) -> list[tuple[int, int]]:
    """The dot products a ``dot``-level stimulus (:func:`pe_stimulus` / :func:`dot_stimulus`)
    finishes, as (step, binary32 bits): the step at whose end the PE's ``out_sum`` must hold
    that dot product (``mac_pe`` and ``dot_pe`` with PIPELINE=0: the step with ``in_last``;
    PIPELINE=1 or 2: the next one, 3: the one after, the stimulus keeping ``en`` = 1), and its
    value from the model,
    ``lmul.matmul`` with the design's multiplier and offset and, for ``dot_pe``,
    ``accumulate=lmul.Fused(K, ALIGN_BITS)``. The operands are read back from the stimulus
    (lane i of a step at bits ``i*width``), padding pairs included (+0, as the model pads)."""
    prm = design.param_dict
    fmt = cost_format(design.fmt)
    lanes = prm.get("K", 1) if design.top == "dot_pe" else 1
    latency = dot_pe_latency(prm.get("PIPELINE", 0)) if design.top == "dot_pe" else 0
    if design.top not in ("mac_pe", "dot_pe"):
        raise ValueError(f"no dot-level results for top {design.top}")
    cfg = lmul.LMulConfig(prm["EXP_BITS"], prm["MAN_BITS"], offset=prm.get("OFFSET"))
    acc = lmul.Fused(lanes, prm["ALIGN_BITS"]) if design.top == "dot_pe" else None
    mult = "exact" if prm.get("MULTIPLIER") == 1 else "lmul"
    mask = (1 << fmt.width) - 1
    v = stim.values
    out: list[tuple[int, int]] = []
    a_bits: list[int] = []
    b_bits: list[int] = []
    for step in range(stim.n_steps):
        if v["rst"][step] or not v["in_valid"][step] or not v["en"][step]:
            continue
        if v["in_first"][step]:
            a_bits, b_bits, bias = [], [], v["in_bias"][step]
        a_bits += [(v["in_a"][step] >> (i * fmt.width)) & mask for i in range(lanes)]
        b_bits += [(v["in_b"][step] >> (i * fmt.width)) & mask for i in range(lanes)]
        if v["in_last"][step]:
            a = lmul.format_bits_to_float32(np.array(a_bits, dtype=fmt.uint_dtype), fmt)
            b = lmul.format_bits_to_float32(np.array(b_bits, dtype=fmt.uint_dtype), fmt)
            y = lmul.matmul(a[None, :], b[:, None],
                            np.array([bias], dtype=np.uint32).view(np.float32), cfg=cfg,
                            multiplier=mult, accumulate=acc)
            out.append((step + latency, int(np.asarray(y, dtype=np.float32)
                                            .view(np.uint32)[0, 0])))
    return out


def array_stimulus(tiles: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], width: int,
                   rows: int = ARRAY_ROWS, cols: int = ARRAY_COLS, dot_k: int = 1) -> Stimulus:
    """Back-to-back tiles (A [rows, K], B [K, cols], bias [cols] binary32 bits) through
    ``mac_array``: two reset cycles, one beat per k-step, then idle cycles until the last tile
    has drained (``out_ready`` always 1); a tile's last beat comes ``rows`` cycles or more
    after the previous tile's (idle cycles before it where a tile has fewer beats, as
    mac_array requires). ``dot_k`` > 1 (the array of fused PEs, ``DOT_K``):
    one beat per chunk of ``dot_k`` k-steps, lane i of row r at ``in_a[(r*dot_k + i)*width]``,
    of column c at ``in_b[(c*dot_k + i)*width]``, a final partial chunk padded with +0 pairs;
    ``ops`` counts the tiles' MACs (rows x cols x K), not the padding."""
    v, step = _recorder("rst", "in_valid", "in_a", "in_b", "in_bias", "in_last", "out_ready")
    for _ in range(2):
        step(rst=1, out_ready=1)
    macs = 0
    last_at = None  # the step of the previous tile's last beat
    for a_t, b_t, bias in tiles:
        k_len = a_t.shape[1]
        beats = -(-k_len // dot_k)
        bias_word = sum(int(bias[c]) << (32 * c) for c in range(cols))
        for j in range(beats):
            # mac_array accepts a tile's last beat only `rows` cycles or more after the
            # previous one (its drain): a tile of fewer beats waits with idle cycles, so that
            # open-loop driving stays valid
            while j == beats - 1 and last_at is not None and len(v["rst"]) - last_at < rows:
                step(out_ready=1)
            ks = range(j * dot_k, min(k_len, (j + 1) * dot_k))
            a_word = sum(int(a_t[r, k]) << (width * (r * dot_k + k - j * dot_k))
                         for r in range(rows) for k in ks)
            b_word = sum(int(b_t[k, c]) << (width * (c * dot_k + k - j * dot_k))
                         for c in range(cols) for k in ks)
            step(in_valid=1, in_a=a_word, in_b=b_word, in_bias=bias_word,
                 in_last=j == beats - 1, out_ready=1)
            if j == beats - 1:
                last_at = len(v["rst"]) - 1
        macs += rows * cols * k_len
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


def cell_ports(design: Design) -> dict[str, int]:
    """The input ports of a ``cell``-level design and their widths in bits."""
    width = cost_format(design.fmt).width
    return {"ewmul": {"a": width, "b": width}, "add": {"a": 32, "b": 32},
            "sigmoid": {"x": 32}, "tanh": {"x": 32}, "to_fmt": {"x": 32},
            "widen": {"x": width}}[design.variant]


def cell_operands(mnist: MnistOperands, fmt: lmul.Format) -> dict[str, list[np.ndarray]]:
    """Per ``cell`` variant, the operand pools (float32 arrays, one per input port, in port
    order) of the LSTM cell behind the captured gate products: gate pre-activations z W + b
    (float32), activations in float64 rounded to float32, c carried over the captured steps
    of each image (c = f*c + i*g with the products' operands rounded to ``fmt``, as the
    hardware multiplies them)."""
    pre = (np.einsum("tbk,kn->tbn", mnist.z.astype(np.float64), mnist.w.astype(np.float64))
           + mnist.b).astype(np.float32)
    hs = pre.shape[2] // 4

    def sig(x: np.ndarray) -> np.ndarray:
        return (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32)

    def rnd(x: np.ndarray) -> np.ndarray:
        return np.asarray(lmul.format_bits_to_float32(
            lmul.round_to_format_bits(np.asarray(x, dtype=np.float32), fmt, "rne"), fmt),
            dtype=np.float32)

    i, f = sig(pre[..., :hs]), sig(pre[..., hs:2 * hs])
    g, o = np.tanh(pre[..., 2 * hs:3 * hs]).astype(np.float32), sig(pre[..., 3 * hs:])
    c = np.zeros((pre.shape[1], hs), dtype=np.float32)
    mul_a, mul_b, add_a, add_b, c_all = [], [], [], [], []
    for t in range(pre.shape[0]):
        fc = rnd(f[t]) * rnd(c)
        ig = rnd(i[t]) * rnd(g[t])
        c_new = (fc + ig).astype(np.float32)
        tc = np.tanh(c_new).astype(np.float32)
        mul_a += [f[t], i[t], o[t]]
        mul_b += [c, g[t], tc]
        add_a.append(fc)
        add_b.append(ig)
        c_all.append(c_new)
        c = c_new
    flat = [np.concatenate([x.ravel() for x in xs]) for xs in (mul_a, mul_b, add_a, add_b)]
    prods = rnd(flat[0]) * rnd(flat[1])
    return {"ewmul": [rnd(flat[0]), rnd(flat[1])], "add": [flat[2], flat[3]],
            "sigmoid": [np.concatenate([pre[..., :2 * hs].ravel(), pre[..., 3 * hs:].ravel()])],
            "tanh": [np.concatenate([pre[..., 2 * hs:3 * hs].ravel(),
                                     np.concatenate([x.ravel() for x in c_all])])],
            "to_fmt": [np.concatenate([flat[0], flat[1], mnist.z.ravel()])],
            "widen": [rnd(prods)]}


def cell_stimulus(design: Design, workload: str, n: int, rng: np.random.Generator,
                  mnist: MnistOperands | None) -> Stimulus:
    """``n`` steps of one ``cell``-level unit, one operand (pair) per step (the first step only
    sets the starting state). ``check``: random bit patterns of each port's width;
    ``uniform``: values uniform in (-1, 1) (activations: (-8, 8)) rounded to the port's
    format; ``mnist``: ``n`` random picks of :func:`cell_operands` (pairs kept together)."""
    fmt = cost_format(design.fmt)
    ports = cell_ports(design)
    if workload == "check":
        values = {p: rng.integers(0, 1 << w, n, dtype=np.int64) for p, w in ports.items()}
    else:
        if workload == "uniform":
            span = 8.0 if design.variant in ("sigmoid", "tanh") else 1.0
            pools = [rng.uniform(-span, span, n).astype(np.float32) for _ in ports]
        elif workload == "mnist":
            if mnist is None:
                raise CostError("mnist workload requested without captured operands")
            pools = cell_operands(mnist, fmt)[design.variant]
            pick = rng.integers(0, len(pools[0]), n)
            pools = [p[pick] for p in pools]
        else:
            raise ValueError(f"unknown workload {workload!r}")
        values = {}
        for (port, width), x in zip(ports.items(), pools, strict=True):
            values[port] = (_f32_bits(x) if width == 32 else
                            np.asarray(lmul.round_to_format_bits(x, fmt, "rne"), dtype=np.int64))
    return Stimulus({p: [int(v) for v in vals] for p, vals in values.items()}, n, 1, n - 1)


def workload_stimulus(design: Design, workload: str, sizes: Sizes, seed: int,
                      mnist: MnistOperands | None) -> Stimulus:
    """The stimulus of ``workload`` (``uniform``, ``mnist`` or ``check``) for ``design``. A
    ``dot``-level ``mac_array`` (the 4x4 array of fused PEs) gets the ``array`` level's tiles
    (the same ones, so it compares with the sequential array), ``DOT_K`` k-steps per beat."""
    fmt = cost_format(design.fmt)
    level = "array" if design.top == "mac_array" else design.level
    dot_k = design.param_dict.get("DOT_K", 1)
    rng = np.random.default_rng([seed, hash_name(level), hash_name(workload),
                                 hash_name(design.fmt)])
    width = fmt.width
    if level == "cell":
        # the variant, not the name: the lmul and exact multipliers see the same operands
        rng = np.random.default_rng([seed, hash_name(design.variant), hash_name(workload)])
        n = sizes.check_mul_16 if workload == "check" else sizes.mul_vectors
        return cell_stimulus(design, workload, n, rng, mnist)
    if workload == "check":
        if level == "mul":
            if width <= 8:
                grid = np.arange(1 << (2 * width), dtype=np.int64)
                a, b = grid >> width, grid & ((1 << width) - 1)
                a = np.concatenate([[0], a])
                b = np.concatenate([[0], b])
            else:
                a = rng.integers(0, 1 << width, sizes.check_mul_16)
                b = rng.integers(0, 1 << width, sizes.check_mul_16)
            return mul_stimulus(a, b)
        if level in ("pe", "dot"):
            tiles = []
            for _ in range(sizes.check_pe_tiles):
                k = int(rng.integers(1, 12 if level == "pe" else 40))
                tiles.append((rng.integers(0, 1 << width, k), rng.integers(0, 1 << width, k),
                              int(rng.integers(0, 1 << 32))))
            return pe_stimulus(tiles) if level == "pe" else \
                _dot_level(design, tiles, width)
        tiles3 = []
        for _ in range(sizes.check_array_tiles):
            k = int(rng.integers(ARRAY_ROWS, 20))
            tiles3.append((rng.integers(0, 1 << width, (ARRAY_ROWS, k)),
                           rng.integers(0, 1 << width, (k, ARRAY_COLS)),
                           rng.integers(0, 1 << 32, ARRAY_COLS)))
        return array_stimulus(tiles3, width, dot_k=dot_k)
    if workload == "uniform":
        if level == "mul":
            return mul_stimulus(_uniform_bits(rng, fmt, sizes.mul_vectors),
                                _uniform_bits(rng, fmt, sizes.mul_vectors))
        if level in ("pe", "dot"):
            tiles = [(_uniform_bits(rng, fmt, DOT_K), _uniform_bits(rng, fmt, DOT_K),
                      int(_f32_bits(rng.uniform(-1, 1, 1))[0])) for _ in range(sizes.pe_tiles)]
            return pe_stimulus(tiles) if level == "pe" else \
                _dot_level(design, tiles, width)
        return array_stimulus([(_uniform_bits(rng, fmt, (ARRAY_ROWS, DOT_K)),
                                _uniform_bits(rng, fmt, (DOT_K, ARRAY_COLS)),
                                _f32_bits(rng.uniform(-1, 1, ARRAY_COLS)))
                               for _ in range(sizes.array_tiles)], width, dot_k=dot_k)
    if workload != "mnist":
        raise ValueError(f"unknown workload {workload!r}")
    if mnist is None:
        raise CostError("mnist workload requested without captured operands")
    steps, batch, _ = mnist.z.shape
    n_out = mnist.w.shape[1]

    def bits(x: np.ndarray) -> np.ndarray:
        return np.asarray(lmul.round_to_format_bits(np.asarray(x, dtype=np.float32), fmt,
                                                    "rne"), dtype=np.int64)

    if level in ("mul", "pe", "dot"):
        n_dots = (sizes.mul_vectors + DOT_K - 1) // DOT_K if level == "mul" \
            else sizes.pe_tiles
        picks = [(int(rng.integers(steps)), int(rng.integers(batch)), int(rng.integers(n_out)))
                 for _ in range(n_dots)]
        dots = [(bits(mnist.z[t, i]), bits(mnist.w[:, c]), int(_f32_bits(mnist.b[c:c + 1])[0]))
                for t, i, c in picks]
        if level == "pe":
            return pe_stimulus(dots)
        if level == "dot":
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
    return array_stimulus(tiles, width, dot_k=dot_k)


def hash_name(text: str) -> int:
    """A stable 32-bit integer of ``text`` (for seeding per design and workload)."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
