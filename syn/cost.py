"""Area, delay and energy of L-Mul vs an exact multiplier in a real standard-cell library.

``python -m syn.cost`` (``make cost``) maps the shipped RTL of ``hdl/`` to the OSU
0.18 um standard-cell library (Debian ``qflow-tech-osu018``, 1.8 V, typical corner) and measures,
for each design:

* ``mul``: ``lmul_core`` vs ``fp_mul`` (``SUBNORMALS`` 1 = IEEE, the exact mode of the model,
  and 0 = flush like L-Mul), for every format of ``--formats`` (default: the 8- and 16-bit
  presets of ``lmul.PRESETS``);
* ``pe``: ``mac_pe`` (``MULTIPLIER`` 0 = L-Mul, 1 = exact) per format;
* ``array``: ``mac_array`` 4 x 4, both multipliers (default BF16, the LSTM's format).

Flow per design (every step with a clear error naming the Debian package if a tool is missing):

1. yosys: ``read_verilog -I hdl hdl/*.v; chparam; synth -flatten -top T; dfflibmap -liberty;
   abc -liberty; stat -liberty`` -> area (um^2), cell count, mapped netlist.
2. OpenSTA: critical path / minimum clock period under :class:`StaConstraints` (inputs driven
   by ``BUFX2`` with 0 ns input delay, 0 ns output delay, 40 fF on every output, ideal clock with
   0.1 ns transition, no wire load: the library has no wire-load model and nothing is placed).
3. Equivalence: the mapped netlist is simulated (Icarus, the library's Verilog cell models)
   on random bit patterns next to the RTL; every output bit the RTL defines must match
   (``lmul_core`` is also compared with ``lmul.lmul_bits``).
4. Activity: the netlist (with a ``BUFX2`` driver on every input bit, so input capacitance is
   charged) is simulated on each workload with a VCD of all its nets; transitions are counted
   per net, in zero-delay simulation (no glitches) and with the cells' specify delays (glitches
   counted). Every activity run is also compared with the RTL on the same stimulus.
5. Energy: OpenSTA's energy per transition of every pin (:mod:`syn._stdcell`) times the
   counted transitions, plus leakage over the run; energy per operation = that / operations
   (one multiply per vector; one MAC per valid PE beat; 16 MACs per accepted array beat);
   power at the stated clock = energy per cycle / period.

Workloads: ``uniform`` (operands uniform in (-1, 1), rounded to the format; PE and array:
dot products of length 156 like the LSTM's gate products, bias uniform in (-1, 1)) and
``mnist`` (the operand pairs that reach the multipliers when the trained MNIST LSTM runs in
``lmul`` mode, captured from its gate products on test images; other formats take the same
float32 operands rounded to that format).

Outputs (atomic, resumable through a per-design cache under ``results/cache/cost``):
``results/cost.json`` (everything), ``cost.csv``, ``cost.md`` and ``cost.png``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import io
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.lib.cli import run_main
from sim.lib.fileio import atomic_write_bytes, atomic_write_text

from . import _gatesim as gs
from . import _stdcell as sc
from ._stdcell import CostError, StaConstraints

REPO = Path(__file__).resolve().parents[1]
HDL = REPO / "hdl"
FLOW_VERSION = "cost-flow-2"  # bump when a change of this file changes measured numbers
#: Per level, bumped when that level's stimulus changes (re-measures only those designs).
STIMULUS_VERSION = {"mul": 1, "pe": 1, "array": 2}

#: Formats measured by default (names of ``lmul.PRESETS``; fp32 is too large to be useful here).
DEFAULT_FORMATS = ("bf16", "fp16", "e4m3_ieee", "e5m2")
DEFAULT_ARRAY_FORMATS = ("bf16",)
LEVELS = ("mul", "pe", "array")
WORKLOADS = ("uniform", "mnist")
TIMINGS = ("zero", "specify")
ARRAY_ROWS = ARRAY_COLS = 4
#: The LSTM's gate product: K = 28 inputs + 128 hidden state.
DOT_K = 156
#: Per image of the MNIST classifier (rows: 28 steps of 28 pixels, hidden 128, 10 classes).
LSTM_STEPS, LSTM_IN, LSTM_HIDDEN, LSTM_CLASSES = 28, 28, 128, 10
MACS_PER_IMAGE = (LSTM_STEPS * (LSTM_IN + LSTM_HIDDEN) * 4 * LSTM_HIDDEN
                  + LSTM_HIDDEN * LSTM_CLASSES)
ELEMENTWISE_PER_IMAGE = LSTM_STEPS * 3 * LSTM_HIDDEN

UNIT_LABELS = {"lmul": "L-Mul", "exact": "exact (IEEE subnormals)",
               "exact_flush": "exact (flush, as L-Mul)"}

#: Published figures compared in the report (units as published).
ANCHORS = [
    {"source": "Luo & Sun (paper), Horowitz ISSCC 2014 table", "node": "45 nm, 0.9 V",
     "method": "per-operation energy table, no circuit",
     "claim": "L-Mul ~ integer add: 95 % less energy per element-wise multiply, 80 % less per "
              "dot product (fp16 mult 1.1 pJ, fp32 mult 3.7 pJ, fp32 add 0.9 pJ, int32 add "
              "0.1 pJ)"},
    {"source": "FreePDK45 PyRTL/OpenROAD university project (2025)", "node": "45 nm",
     "method": "combinational, activity not stated, units 'likely' um^2 / mW / ns",
     "claim": "BF16 area 255.6 vs 1067.7 (0.239), power 0.253 vs 7.46 mW (0.034), delay 0.48 "
              "vs 1.94 ns (0.247); fp8 area 112.8 vs 347.4 (0.325)"},
    {"source": "seed repository, yosys + OpenSTA", "node": "Nangate45",
     "method": "synthesis area only",
     "claim": "BF16 L-Mul vs BF16 multiplier: -66.8 % area (0.332), -63 % cells (0.37)"},
]


# ------------------------------------------------------------------------------------ designs
@dataclass(frozen=True)
class Design:
    """One design to measure: level (mul/pe/array), format, unit, top module, parameters."""

    level: str
    fmt: str
    unit: str
    top: str
    params: tuple[tuple[str, int], ...]
    clock: str | None

    @property
    def name(self) -> str:
        """Short label, e.g. ``mul-bf16-lmul``."""
        return f"{self.level}-{self.fmt}-{self.unit}"

    @property
    def param_dict(self) -> dict[str, int]:
        """Verilog parameters as a dict."""
        return dict(self.params)


def _fmt(name: str) -> Any:
    import lmul

    if name not in lmul.PRESETS or name == "fp32":
        raise ValueError(f"unknown format {name!r}; choose from "
                         f"{', '.join(k for k in lmul.PRESETS if k != 'fp32')}")
    return lmul.PRESETS[name]


def designs(formats: Sequence[str] = DEFAULT_FORMATS, levels: Sequence[str] = LEVELS,
            array_formats: Sequence[str] = DEFAULT_ARRAY_FORMATS) -> list[Design]:
    """All designs for ``formats`` x ``levels`` (arrays only for ``array_formats``)."""
    out = []
    for level in levels:
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; choose from {', '.join(LEVELS)}")
    for name in formats:
        f = _fmt(name)
        e, m = f.exp_bits, f.man_bits
        if "mul" in levels:
            out.append(Design("mul", name, "lmul", "lmul_core",
                              (("EXP_BITS", e), ("MAN_BITS", m), ("SATURATE", 0)), None))
            for unit, sub in (("exact", 1), ("exact_flush", 0)):
                out.append(Design("mul", name, unit, "fp_mul",
                                  (("EXP_BITS", e), ("MAN_BITS", m), ("SUBNORMALS", sub)), None))
        if "pe" in levels:
            for unit, mult in (("lmul", 0), ("exact", 1)):
                out.append(Design("pe", name, unit, "mac_pe", (("EXP_BITS", e), ("MAN_BITS", m),
                                                               ("MULTIPLIER", mult)), "clk"))
    if "array" in levels:
        for name in array_formats:
            f = _fmt(name)
            for unit, mult in (("lmul", 0), ("exact", 1)):
                out.append(Design("array", name, unit, "mac_array",
                                  (("ROWS", ARRAY_ROWS), ("COLS", ARRAY_COLS),
                                   ("EXP_BITS", f.exp_bits), ("MAN_BITS", f.man_bits),
                                   ("MULTIPLIER", mult)), "clk"))
    return out


def hdl_sources(hdl: Path = HDL) -> list[Path]:
    """Every Verilog file of ``hdl/`` (read together, with ``-I hdl`` for the include files)."""
    srcs = sorted(hdl.glob("*.v"))
    if not srcs:
        raise CostError(f"no Verilog sources in {hdl}")
    return srcs


# ---------------------------------------------------------------------------------- workloads
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


def pe_stimulus(tiles: Sequence[tuple[np.ndarray, np.ndarray, int]]) -> Stimulus:
    """Back-to-back dot products (a [K], b [K], bias bits) through ``mac_pe``: two reset
    cycles, one beat per k-step (``in_first`` / ``in_last`` on the first / last), one idle
    cycle at the end."""
    v: dict[str, list[int]] = {k: [] for k in ("rst", "en", "in_a", "in_b", "in_bias",
                                                "in_valid", "in_first", "in_last")}

    def step(**kw: int) -> None:
        for k in v:
            v[k].append(int(kw.get(k, 0)))

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


def array_stimulus(tiles: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]], width: int,
                   rows: int = ARRAY_ROWS, cols: int = ARRAY_COLS) -> Stimulus:
    """Back-to-back tiles (A [rows, K], B [K, cols], bias [cols] binary32 bits) through
    ``mac_array``: two reset cycles, one beat per k-step, then idle cycles until the last tile
    has drained (``out_ready`` always 1)."""
    v: dict[str, list[int]] = {k: [] for k in ("rst", "in_valid", "in_a", "in_b", "in_bias",
                                                "in_last", "out_ready")}

    def step(**kw: int) -> None:
        for k in v:
            v[k].append(int(kw.get(k, 0)))

    for _ in range(2):
        step(rst=1, out_ready=1)
    macs = 0
    k_last = 0
    for a_t, b_t, bias in tiles:
        k_len = a_t.shape[1]
        bias_word = sum(int(bias[c]) << (32 * c) for c in range(cols))
        for k in range(k_len):
            a_word = sum(int(a_t[r, k]) << (width * r) for r in range(rows))
            b_word = sum(int(b_t[k, c]) << (width * c) for c in range(cols))
            step(in_valid=1, in_a=a_word, in_b=b_word, in_bias=bias_word,
                 in_last=k == k_len - 1, out_ready=1)
            macs += rows * cols
        k_last = k_len
    del k_last
    # the last tile's last row leaves rows + cols cycles after its last beat
    for _ in range(rows + cols + 2):
        step(out_ready=1)
    return Stimulus(v, len(v["rst"]), 2, macs, out_beats=rows * len(tiles))


def _uniform_bits(rng: np.random.Generator, fmt: Any, shape: Any) -> np.ndarray:
    import lmul

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
    import lmul

    fmt = _fmt(design.fmt)
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
        if design.level == "pe":
            tiles = []
            for _ in range(sizes.check_pe_tiles):
                k = int(rng.integers(1, 12))
                tiles.append((rng.integers(0, 1 << width, k), rng.integers(0, 1 << width, k),
                              int(rng.integers(0, 1 << 32))))
            return pe_stimulus(tiles)
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
        if design.level == "pe":
            return pe_stimulus([(_uniform_bits(rng, fmt, DOT_K), _uniform_bits(rng, fmt, DOT_K),
                                 int(_f32_bits(rng.uniform(-1, 1, 1))[0]))
                                for _ in range(sizes.pe_tiles)])
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

    if design.level in ("mul", "pe"):
        n_dots = (sizes.mul_vectors + DOT_K - 1) // DOT_K if design.level == "mul" \
            else sizes.pe_tiles
        picks = [(int(rng.integers(steps)), int(rng.integers(batch)), int(rng.integers(n_out)))
                 for _ in range(n_dots)]
        dots = [(bits(mnist.z[t, i]), bits(mnist.w[:, c]), int(_f32_bits(mnist.b[c:c + 1])[0]))
                for t, i, c in picks]
        if design.level == "pe":
            return pe_stimulus(dots)
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


# ------------------------------------------------------------------------------------- energy
@dataclass
class Energy:
    """Energy of one simulated window (joules) and its parts.

    Attributes:
        total: dynamic + leakage. dynamic: sum over pins of transitions x OpenSTA's energy per
            transition. logic_internal / logic_switching: the design's own cells. input_nets:
            switching of the nets the input drivers charge (the design's input capacitance).
            clock: part of ``dynamic`` on the clock net (clock pins' internal energy and the
            net's switching). leakage: leakage power x time.
        cycles: simulated periods in the window; toggles: transitions of all counted nets.
    """

    total: float
    dynamic: float
    logic_internal: float
    logic_switching: float
    input_nets: float
    clock: float
    leakage: float
    cycles: int
    toggles: int


def window_energy(pwr: gs.Netlist, pins: sc.PinEnergies, net_toggles: dict[str, int],
                  cycles: int, period_ns: float, clock: str | None, lib: sc.Library) -> Energy:
    """Combine OpenSTA's pin energies with simulated transitions (see :class:`Energy`).

    The clock is ideal (no driver, no tree: OpenSTA takes the stated clock transition at every
    clock pin); the clock net's own switching, which OpenSTA charges to no cell, is added as
    transitions x 0.5 x (sum of the clock pins' liberty capacitances) x V^2.
    """
    inst_of = {i.name: i for i in pwr.instances}
    li = ls = inp = clk = 0.0
    clock_net = clock
    for (iname, pin), e_int in pins.internal.items():
        inst = inst_of.get(iname)
        if inst is None:
            raise CostError(f"power trace names unknown instance {iname}")
        if iname.startswith(gs.DRIVER_PREFIX):
            continue  # the input drivers stand for the previous stage: only their nets count
        net = inst.pins[pin]
        e = e_int * net_toggles.get(net, 0)
        li += e
        if net == clock_net or net == clock:
            clk += e
    for (iname, pin), e_sw in pins.switching.items():
        inst = inst_of[iname]
        net = inst.pins[pin]
        e = e_sw * net_toggles.get(net, 0)
        if iname.startswith(gs.DRIVER_PREFIX):
            inp += e
        else:
            ls += e
        if net == clock_net:
            clk += e
    if clock:
        cap_pf = sum(lib.cells[i.cell].pin_cap.get(pin, 0.0) for i in pwr.instances
                     for pin, net in i.pins.items() if net == clock)
        e_net = net_toggles.get(clock, 0) * 0.5 * cap_pf * 1e-12 * lib.voltage ** 2
        ls += e_net
        clk += e_net
    leak = pins.leakage_w * cycles * period_ns * 1e-9
    dyn = li + ls + inp
    return Energy(dyn + leak, dyn, li, ls, inp, clk, leak, cycles, int(sum(net_toggles.values())))


# --------------------------------------------------------------------------------------- flow
@dataclass
class Tools:
    """Executables, versions and library files of one run."""

    yosys: str
    sta: str
    iverilog: str
    vvp: str
    liberty: Path
    cells: Path
    versions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def find(cls, lib_dir: Path | None = None) -> Tools:
        """Locate every tool and the library (CostError naming the Debian package if not)."""
        t = cls(sc.find_tool("yosys"), sc.find_tool("sta"), sc.find_tool("iverilog"),
                sc.find_tool("vvp"), *sc.library_files(lib_dir))
        t.versions = {"yosys": sc.tool_version(t.yosys, "-V"),
                      "opensta": "OpenSTA " + sc.tool_version(t.sta, "-version"),
                      "iverilog": sc.tool_version(t.iverilog, "-V"),
                      "library": f"OSU 0.18 um ({t.liberty.name}, Debian {sc.LIB_PACKAGE})"}
        return t


#: The stated clock of each level (ns): every energy and power figure is at this clock, the
#: same for the L-Mul and the exact variant; each design's minimum period must fit in it.
CLOCK_NS = {"mul": 20.0, "pe": 50.0, "array": 50.0}


def _period_for(design: Design, min_period_ns: float) -> float:
    """The stated clock period of ``design``; CostError if its critical path does not fit with
    a 10 % margin (the delay-annotated simulation must settle within a period)."""
    period = CLOCK_NS[design.level]
    if 1.1 * min_period_ns > period:
        raise CostError(f"{design.name}: minimum period {min_period_ns:.2f} ns does not fit "
                        f"the stated {period:.0f} ns clock; raise CLOCK_NS[{design.level!r}]")
    return period


def _cache_key(design: Design, tools: Tools, srcs: Sequence[Path], extra: str) -> str:
    h = hashlib.sha256()
    h.update(FLOW_VERSION.encode())
    h.update(str(STIMULUS_VERSION[design.level]).encode())
    for mod in (sc, gs):
        h.update(Path(mod.__file__).read_bytes())  # type: ignore[arg-type]
    h.update(json.dumps(tools.versions, sort_keys=True).encode())
    h.update(repr(design).encode())
    h.update(extra.encode())
    for s in sorted(srcs):
        h.update(s.name.encode())
        h.update(s.read_bytes())
    for inc in sorted(HDL.glob("*.vh")):
        h.update(inc.read_bytes())
    return h.hexdigest()[:16]


def _split(bits: str, outputs: Sequence[gs.Port]) -> dict[str, str]:
    out, pos = {}, 0
    for p in outputs:
        out[p.name] = bits[pos:pos + p.width]
        pos += p.width
    return out


def measure_design(design: Design, tools: Tools, workdir: Path, sizes: Sizes, seed: int,
                   workloads: Sequence[str], timings: Sequence[str],
                   mnist: MnistOperands | None, constraints: StaConstraints,
                   log: Any = None) -> dict[str, Any]:
    """Synthesize, time, check and measure the energy of one design; returns a JSON-ready
    dict (see :func:`run`). Intermediate results are cached in ``workdir``."""
    log = log or (lambda msg: None)
    srcs = hdl_sources()
    workdir.mkdir(parents=True, exist_ok=True)
    rec_file = workdir / "result.json"
    rec: dict[str, Any] = json.loads(rec_file.read_text()) if rec_file.exists() else {}

    def save() -> None:
        atomic_write_text(rec_file, json.dumps(rec, indent=1))

    netlist = workdir / "netlist.v"
    if "synth" not in rec or not netlist.exists():
        # synthesis depends only on the sources, parameters, yosys and the library: its own
        # cache survives changes of the rest of the flow (the array takes minutes)
        h = hashlib.sha256()
        h.update(tools.versions["yosys"].encode())
        target_ps = CLOCK_NS[design.level] * 1000
        constr = sc.abc_constraints(constraints.driving_cell or "BUFX2",
                                    constraints.output_load_pf)
        h.update(sc.yosys_script(srcs, HDL, design.top, design.param_dict, tools.liberty,
                                 Path("N"), Path("S"), target_ps, Path("C")).encode())
        h.update(constr.encode())
        h.update(tools.liberty.read_bytes())
        for s in [*srcs, *sorted(HDL.glob("*.vh"))]:
            h.update(s.read_bytes())
        syn_dir = workdir.parent / "netlists"
        syn_net = syn_dir / f"{design.name}-{h.hexdigest()[:16]}.v"
        syn_stat = syn_net.with_suffix(".json")
        if syn_net.exists() and syn_stat.exists():
            st_d = json.loads(syn_stat.read_text())
        else:
            for stale in syn_dir.glob(f"{design.name}-*"):
                stale.unlink(missing_ok=True)
            log(f"{design.name}: yosys")
            t0 = time.perf_counter()
            st = sc.synthesize(srcs, HDL, design.top, design.param_dict, tools.liberty,
                               syn_dir / "tmp.v", tools.yosys, target_ps, constr)
            st_d = {**asdict(st), "seconds": round(time.perf_counter() - t0, 1)}
            (syn_dir / "tmp.v").replace(syn_net)
            atomic_write_text(syn_stat, json.dumps(st_d))
        netlist.write_bytes(syn_net.read_bytes())
        rec = {"synth": st_d}
        save()
    nl = gs.parse_netlist(netlist.read_text())
    inputs = [p.name for p in nl.inputs]
    lib = sc.load_library(tools.liberty)
    area = sum(lib.cells[i.cell].area for i in nl.instances)
    if abs(area - rec["synth"]["area"]) > 1e-6 * max(area, 1.0):
        raise CostError(f"{design.name}: netlist area {area} != yosys stat {rec['synth']['area']}")
    if "timing" not in rec:
        log(f"{design.name}: OpenSTA timing")
        tm = sc.sta_timing(netlist, nl.name, inputs, design.clock, tools.liberty, tools.sta,
                           constraints)
        rec["timing"] = {"min_period_ns": tm.min_period_ns, "arrival_ns": tm.arrival_ns,
                         "startpoint": tm.startpoint, "endpoint": tm.endpoint}
        save()
    period = _period_for(design, rec["timing"]["min_period_ns"])
    rec["period_ns"] = period
    pwr = gs.add_input_drivers(nl, skip=[design.clock] if design.clock else [])
    pwr_file = workdir / "power_netlist.v"
    pwr_file.write_text(pwr.to_verilog())
    pc = dataclasses.replace(constraints, period_ns=period)
    pins_memo: list[sc.PinEnergies] = []

    def pin_energies() -> sc.PinEnergies:
        if not pins_memo:
            log(f"{design.name}: OpenSTA pin energies")
            pins_memo.append(sc.sta_pin_energies(pwr_file, nl.name, inputs, design.clock,
                                                 tools.liberty, tools.sta, pc))
            rec["leakage_w"] = pins_memo[0].leakage_w
            rec["power_at_activity_1_w"] = pins_memo[0].report_total_w
        return pins_memo[0]

    def run_sim(workload: str, timing: str, stim: Stimulus, dump: bool) -> dict[str, Any]:
        gate = gs.simulate([pwr_file, tools.cells], nl.name, nl.inputs, nl.outputs,
                           design.clock, stim.values, stim.n_steps, period,
                           workdir / f"sim-{workload}-{timing}", tools.iverilog, tools.vvp,
                           dump_from=stim.dump_from if dump else None, timing=timing)
        ref_dir = workdir / f"rtl-{workload}"
        ref_file = ref_dir / "out.txt"
        if ref_file.exists() and len(ref_file.read_text().split()) == stim.n_steps:
            ref_out = ref_file.read_text().split()
        else:
            ref_out = gs.simulate(srcs, design.top, nl.inputs, nl.outputs, design.clock,
                                  stim.values, stim.n_steps, period, ref_dir, tools.iverilog,
                                  tools.vvp, params=design.param_dict, include=HDL).outputs
        compared, bad = gs.compare_outputs(ref_out, gate.outputs)
        if bad or compared == 0:
            raise CostError(f"{design.name}: gate-level netlist differs from the RTL on the "
                            f"{workload} vectors ({timing} timing): {'; '.join(bad) or 'no bits'}")
        res: dict[str, Any] = {"steps": stim.n_steps, "bits_compared": compared,
                               "sim_seconds": round(gate.seconds, 2)}
        if design.level == "array":
            # open-loop driving is only valid if every beat was accepted
            beats = 0
            for step, bits in enumerate(ref_out):
                o = _split(bits, nl.outputs)
                if stim.values["in_valid"][step] and o.get("in_ready") != "1":
                    raise CostError(f"{design.name}: beat at step {step} not accepted")
                beats += o.get("out_valid") == "1"
            if beats != stim.out_beats:
                raise CostError(f"{design.name}: {beats} output beats in the run, expected "
                                f"{stim.out_beats}")
        if dump and gate.vcd is not None:
            tog = gs.count_toggles(gate.vcd)
            nt = gs.net_toggles_for(pwr, tog)
            cycles = stim.n_steps - stim.dump_from
            en = window_energy(pwr, pin_energies(), nt, cycles, period, design.clock, lib)
            gate.vcd.unlink()
            res.update({"ops": stim.ops, "cycles": cycles, "energy": asdict(en),
                        "energy_per_op_pj": en.total / stim.ops * 1e12,
                        "power_w": en.total / (cycles * period * 1e-9)})
        return res

    if "check" not in rec:
        log(f"{design.name}: equivalence check")
        stim = workload_stimulus(design, "check", sizes, seed, None)
        res = run_sim("check", "zero", stim, dump=False)
        if design.unit == "lmul" and design.level == "mul":
            import lmul

            cfg = lmul.LMulConfig(design.param_dict["EXP_BITS"], design.param_dict["MAN_BITS"])
            want = lmul.lmul_bits(np.array(stim.values["a"], dtype=np.uint32),
                                  np.array(stim.values["b"], dtype=np.uint32), cfg)
            got_file = workdir / "sim-check-zero" / "out.txt"
            got = [int(x, 2) for x in got_file.read_text().split()]
            if any(int(w) != g for w, g in zip(want, got, strict=True)):
                raise CostError(f"{design.name}: gate-level netlist differs from lmul.lmul_bits")
            res["model_pairs"] = len(got)
        rec["check"] = {"vectors": stim.n_steps, **res}
        save()
    rec.setdefault("runs", {})
    for workload in workloads:
        stim = None
        for timing in timings:
            key = f"{workload}/{timing}"
            if key in rec["runs"]:
                continue
            if stim is None:
                stim = workload_stimulus(design, workload, sizes, seed, mnist)
            log(f"{design.name}: {workload} workload, {timing} timing")
            rec["runs"][key] = run_sim(workload, timing, stim, dump=True)
            save()
    for d in workdir.glob("sim-*"):
        for f in d.glob("*.v*"):
            f.unlink(missing_ok=True)
    return rec


# ------------------------------------------------------------------------------------ reports
CSV_FIELDS = ("level", "format", "unit", "top", "parameters", "area_um2", "cells",
              "min_period_ns", "period_ns", "workload", "timing", "ops", "cycles",
              "energy_per_op_pj", "power_mw", "dynamic_pj", "logic_internal_pj",
              "logic_switching_pj", "input_nets_pj", "clock_pj", "leakage_pj",
              "check_vectors", "check_bits")


def csv_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per design x workload x timing."""
    rows = []
    for r in results:
        base = {"level": r["level"], "format": r["format"], "unit": r["unit"], "top": r["top"],
                "parameters": " ".join(f"{k}={v}" for k, v in r["params"].items()),
                "area_um2": r["synth"]["area"], "cells": r["synth"]["cells"],
                "min_period_ns": r["timing"]["min_period_ns"], "period_ns": r["period_ns"],
                "check_vectors": r["check"]["vectors"], "check_bits": r["check"]["bits_compared"]}
        for key, run in sorted(r["runs"].items()):
            wl, tm = key.split("/")
            e = run["energy"]
            per = 1e12 / run["ops"]
            rows.append({**base, "workload": wl, "timing": tm, "ops": run["ops"],
                         "cycles": run["cycles"],
                         "energy_per_op_pj": round(run["energy_per_op_pj"], 4),
                         "power_mw": round(run["power_w"] * 1e3, 4),
                         "dynamic_pj": round(e["dynamic"] * per, 4),
                         "logic_internal_pj": round(e["logic_internal"] * per, 4),
                         "logic_switching_pj": round(e["logic_switching"] * per, 4),
                         "input_nets_pj": round(e["input_nets"] * per, 4),
                         "clock_pj": round(e["clock"] * per, 4),
                         "leakage_pj": round(e["leakage"] * per, 6)})
    return rows


def csv_text(rows: list[dict[str, Any]]) -> str:
    """CSV text of :func:`csv_rows`."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _get(results: list[dict[str, Any]], level: str, fmt: str, unit: str) -> dict[str, Any] | None:
    for r in results:
        if (r["level"], r["format"], r["unit"]) == (level, fmt, unit):
            return r
    return None


def _epo(r: dict[str, Any] | None, key: str) -> float:
    if r is None or key not in r["runs"]:
        return float("nan")
    return float(r["runs"][key]["energy_per_op_pj"])


def ratios(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """L-Mul / exact ratios per level, format and baseline: area, cells, delay, energy."""
    out = []
    for r in results:
        if r["unit"] == "lmul":
            continue
        lm = _get(results, r["level"], r["format"], "lmul")
        if lm is None:
            continue
        row = {"level": r["level"], "format": r["format"], "baseline": r["unit"],
               "area": lm["synth"]["area"] / r["synth"]["area"],
               "cells": lm["synth"]["cells"] / r["synth"]["cells"],
               "delay": lm["timing"]["min_period_ns"] / r["timing"]["min_period_ns"]}
        for key in r["runs"]:
            row[f"energy {key}"] = _epo(lm, key) / _epo(r, key)
        out.append(row)
    return out


def per_image(results: list[dict[str, Any]], timing: str = "specify") -> dict[str, Any] | None:
    """Energy per classified MNIST image on the L-Mul vs the exact BF16 array: MACs x array
    energy per MAC + element-wise products x multiplier energy per multiply (mnist workload)."""
    key = f"mnist/{timing}"
    out: dict[str, Any] = {"macs": MACS_PER_IMAGE, "elementwise": ELEMENTWISE_PER_IMAGE,
                           "timing": timing}
    for unit in ("lmul", "exact"):
        arr = _get(results, "array", "bf16", unit)
        mul = _get(results, "mul", "bf16", unit)
        if arr is None or mul is None or key not in arr["runs"] or key not in mul["runs"]:
            return None
        e_mac, e_mul = _epo(arr, key), _epo(mul, key)
        out[unit] = {"mac_pj": e_mac, "mul_pj": e_mul,
                     "image_uj": (MACS_PER_IMAGE * e_mac + ELEMENTWISE_PER_IMAGE * e_mul) * 1e-6}
    out["ratio"] = out["lmul"]["image_uj"] / out["exact"]["image_uj"]
    return out


def multiplier_share(results: list[dict[str, Any]], fmt: str, unit: str,
                     key: str) -> float:
    """Energy of the multiplier alone on the same workload / energy of the PE per MAC: the
    multiplier's share of the PE (approximate: the multiplier is measured as its own netlist,
    with its output load in place of the widening logic)."""
    return _epo(_get(results, "mul", fmt, unit), key) / _epo(_get(results, "pe", fmt, unit), key)


def _f(x: float, nd: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def markdown(meta: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The ``cost.md`` report."""
    v = meta["versions"]
    c = meta["constraints"]
    lines = [
        "<!-- generated by `make cost` (python -m syn.cost); do not edit by hand -->",
        "",
        f"Command: `{meta['command']}`. Tools: {v['yosys']}; {v['opensta']}; {v['iverilog']}; "
        f"{v['library']}, typical corner, {meta['voltage']} V. Seed {meta['seed']}"
        + (f"; wall time {meta['wall_s'] / 60:.1f} min" if "wall_s" in meta else "") + ".",
        "",
        "Flow: `read_liberty -lib; read_verilog -I hdl hdl/*.v; chparam; synth -flatten -top T;"
        " dfflibmap -liberty; abc -D <clock in ps> -constr <BUFX2 drive, output load> -liberty;"
        " stat -liberty` (area; ABC maps for the stated clock and buffers high-fanout nets); "
        "OpenSTA: inputs driven by "
        f"{c['driving_cell']}, input delay {c['input_delay_ns']} ns, output delay "
        f"{c['output_delay_ns']} ns, {c['output_load_pf'] * 1000:.0f} fF on every output, ideal "
        f"clock ({c['clock_transition_ns']} ns transition), no wire load (nothing is placed). "
        "Delay = minimum clock period meeting every setup check (combinational: the input to "
        "output critical path). Energy per operation = OpenSTA's energy per transition of every "
        "pin (internal power tables + 0.5 C V^2) x transitions counted per net in Icarus "
        "gate-level simulation of the mapped netlist (library cell models), + leakage, / "
        "operations; input capacitance is charged through a BUFX2 driver per input bit (its "
        "net's switching counts, its internal energy does not). `zero`: zero-delay simulation, "
        "no glitches; `specify`: the cells' specify-block delays, glitches counted. Each "
        "netlist equals the RTL on random bit patterns and on every workload vector (bits "
        "compared below).",
        "",
        f"Workloads: `uniform` = operands uniform in (-1, 1) rounded to the format (PE/array: "
        f"dot products of K = {DOT_K}); `mnist` = operand pairs of the MNIST LSTM's gate "
        f"products in `lmul` mode ({meta.get('mnist_source', 'not run')}).",
        "",
    ]
    rats = ratios(results)
    if rats:
        keys = sorted({k for r in rats for k in r if k.startswith("energy ")})
        lines += ["**L-Mul / exact ratios** (below 1: L-Mul is cheaper)", "",
                  "| level | format | baseline | area | cells | delay | "
                  + " | ".join(k.replace("energy ", "energy/op ") for k in keys) + " |",
                  "|---|---|---|---:|---:|---:|" + "---:|" * len(keys)]
        for r in rats:
            lines.append(f"| {r['level']} | {r['format']} | {UNIT_LABELS[r['baseline']]} | "
                         f"{_f(r['area'])} | {_f(r['cells'])} | {_f(r['delay'])} | "
                         + " | ".join(_f(r.get(k, float('nan'))) for k in keys) + " |")
        lines.append("")
    lines += ["**All designs**", "",
              "| design | area um^2 | cells | delay / min period ns | f_max MHz | clock ns | "
              "check bits | workload | timing | energy/op pJ | power mW | of which clock pJ | "
              "input nets pJ |",
              "|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|"]
    for row in csv_rows(results):
        fmax = "—" if row["level"] == "mul" else f"{1000 / row['min_period_ns']:.1f}"
        lines.append(f"| {row['level']}-{row['format']}-{row['unit']} | {row['area_um2']:.0f} | "
                     f"{row['cells']} | {row['min_period_ns']:.3f} | {fmax} | "
                     f"{row['period_ns']:.0f} | "
                     f"{row['check_bits']} | {row['workload']} | {row['timing']} | "
                     f"{row['energy_per_op_pj']:.3f} | {row['power_mw']:.3f} | "
                     f"{row['clock_pj']:.3f} | {row['input_nets_pj']:.3f} |")
    lines.append("")
    glitch = []
    for r in results:
        for wl in WORKLOADS:
            z, s = _epo(r, f"{wl}/zero"), _epo(r, f"{wl}/specify")
            if not math.isnan(z) and not math.isnan(s):
                glitch.append(s / z)
    if glitch:
        lines += [f"Glitches: with cell delays the energy per operation is "
                  f"{min(glitch):.2f}x to {max(glitch):.2f}x the zero-delay figure, so the "
                  "tables quote both; the verdict uses the `specify` (glitch-inclusive) runs.", ""]
    shares = []
    for r in results:
        if r["level"] == "pe":
            for wl in WORKLOADS:
                s = multiplier_share(results, r["format"], r["unit"], f"{wl}/specify")
                if not math.isnan(s):
                    shares.append((r["format"], r["unit"], wl, s))
    if shares:
        lines += ["**Multiplier share of the PE's energy per MAC** (multiplier alone on the "
                  "same workload / PE; `specify` timing)", "",
                  "| format | unit | workload | share |", "|---|---|---|---:|"]
        lines += [f"| {f} | {UNIT_LABELS[u]} | {w} | {s:.3f} |" for f, u, w, s in shares]
        lines += ["", "The share is a lower bound on what the multiplier costs inside a PE: "
                  "its output glitches also make the adder behind it switch. Saving per MAC "
                  "(exact PE - L-Mul PE) vs saving of the multiplier alone (exact - L-Mul), "
                  "pJ, `specify` timing:", "",
                  "| format | workload | PE saving pJ | multiplier-alone saving pJ |",
                  "|---|---|---:|---:|"]
        for r in results:
            if r["level"] != "pe" or r["unit"] != "exact":
                continue
            for wl in WORKLOADS:
                key = f"{wl}/specify"
                d_pe = _epo(r, key) - _epo(_get(results, "pe", r["format"], "lmul"), key)
                d_mul = (_epo(_get(results, "mul", r["format"], "exact"), key)
                         - _epo(_get(results, "mul", r["format"], "lmul"), key))
                if not (math.isnan(d_pe) or math.isnan(d_mul)):
                    lines.append(f"| {r['format']} | {wl} | {d_pe:.1f} | {d_mul:.1f} |")
        lines.append("")
    img = per_image(results)
    if img:
        lines += ["**Energy per classified MNIST image** (BF16 4x4 array, `mnist` workload, "
                  f"`specify` timing): {img['macs']:,} MACs x array energy per MAC + "
                  f"{img['elementwise']:,} element-wise products x multiplier energy", "",
                  "| array | pJ per MAC | pJ per element-wise multiply | uJ per image |",
                  "|---|---:|---:|---:|"]
        for unit in ("lmul", "exact"):
            u = img[unit]
            lines.append(f"| {UNIT_LABELS[unit]} | {u['mac_pj']:.3f} | {u['mul_pj']:.3f} | "
                         f"{u['image_uj']:.3f} |")
        lines += ["", f"L-Mul / exact per image: **{img['ratio']:.3f}**.", ""]
    lines += verdict_lines(results)
    lines += ["", "**Published figures, for comparison** (other nodes and methods)", "",
              "| source | node | method | figures |", "|---|---|---|---|"]
    lines += [f"| {a['source']} | {a['node']} | {a['method']} | {a['claim']} |" for a in ANCHORS]
    bf = [r for r in ratios(results) if r["format"] == "bf16" and r["baseline"] == "exact"]
    for r in bf:
        lines.append(f"| this flow, {r['level']} BF16 | OSU 0.18 um, 1.8 V | mapped + OpenSTA + "
                     f"gate-level activity | area {_f(r['area'])}, delay {_f(r['delay'])}, "
                     f"energy/op (mnist, glitches) "
                     f"{_f(r.get('energy mnist/specify', float('nan')))} (L-Mul / exact) |")
    return "\n".join(lines) + "\n"


def verdict_lines(results: list[dict[str, Any]]) -> list[str]:
    """A plain verdict on the paper's 95 % (element-wise) and 80 % (dot product) claims."""
    key = "mnist/specify"
    lines = ["**Verdict at this node (OSU 0.18 um)**", ""]
    mul = [(r["format"], 1 - _epo(_get(results, "mul", r["format"], "lmul"), key) / _epo(r, key))
           for r in results if r["level"] == "mul" and r["unit"] == "exact"]
    mul = [(f, s) for f, s in mul if not math.isnan(s)]
    if mul:
        txt = ", ".join(f"{f} {100 * s:.0f} %" for f, s in mul)
        ok = all(s >= 0.95 for _, s in mul)
        lines.append(f"- Element-wise multiply (paper: 95 % less energy): measured saving vs the "
                     f"exact IEEE multiplier {txt}. "
                     + ("The claim holds." if ok else "The 95 % claim does not hold here."))
    dot = []
    for lvl in ("pe", "array"):
        for r in results:
            if r["level"] == lvl and r["unit"] == "exact":
                s = 1 - _epo(_get(results, lvl, r["format"], "lmul"), key) / _epo(r, key)
                if not math.isnan(s):
                    dot.append((lvl, r["format"], s))
    if dot:
        txt = ", ".join(f"{lvl} {f} {100 * s:.0f} %" for lvl, f, s in dot)
        ok = all(s >= 0.80 for *_, s in dot)
        lines.append(f"- Dot product (paper: 80 % less energy): measured saving per MAC {txt}. "
                     + ("The claim holds." if ok else "The 80 % claim does not hold here: the "
                        "binary32 accumulation, registers and clock, which L-Mul does not "
                        "change, dominate a MAC's energy."))
    return lines


def plot_png(results: list[dict[str, Any]]) -> bytes:
    """Bar chart of L-Mul / exact (IEEE) ratios: area, delay, energy per op (both workloads,
    glitch-inclusive), one group per design level and format."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rats = [r for r in ratios(results) if r["baseline"] == "exact"]
    metrics = [("area", "area"), ("delay", "delay"),
               ("energy uniform/specify", "energy/op uniform (cell delays)"),
               ("energy mnist/specify", "energy/op MNIST (cell delays)")]
    colors = ("#4c72b0", "#55a868", "#c44e52", "#8172b2")
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(rats) + 2), 4.2))
    width = 0.2
    for k, ((key, label), color) in enumerate(zip(metrics, colors, strict=True)):
        xs = [x + (k - 1.5) * width for x in range(len(rats))]
        vals = [float(r.get(key, float("nan"))) for r in rats]
        bars = ax.bar(xs, vals, width, label=label, color=color)
        ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.axhline(0.05, color="black", lw=1.0, ls=":", label="paper: 0.05 per multiply")
    ax.axhline(0.20, color="black", lw=1.0, ls="-.", label="paper: 0.20 per dot product")
    ax.set_xticks(range(len(rats)), [f"{r['level']}\n{r['format']}" for r in rats], fontsize=8)
    ax.set_ylim(0, 1.3)
    ax.set_ylabel("L-Mul / exact IEEE")
    ax.set_title("OSU 0.18 um: L-Mul relative to the exact multiplier (lower is cheaper)",
                 fontsize=10)
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write_outputs(meta: dict[str, Any], results: list[dict[str, Any]], out_dir: Path,
                  plot: bool = True) -> list[Path]:
    """Write ``cost.json``, ``cost.csv``, ``cost.md`` and (optionally) ``cost.png``."""
    paths = [out_dir / "cost.json", out_dir / "cost.csv", out_dir / "cost.md"]
    atomic_write_text(paths[0], json.dumps({"meta": meta, "designs": results,
                                            "ratios": ratios(results),
                                            "per_image": per_image(results)}, indent=1))
    atomic_write_text(paths[1], csv_text(csv_rows(results)))
    atomic_write_text(paths[2], markdown(meta, results))
    if plot and ratios(results):
        paths.append(out_dir / "cost.png")
        atomic_write_bytes(paths[3], plot_png(results))
    return paths


# --------------------------------------------------------------------------------------- main
def run(formats: Sequence[str] = DEFAULT_FORMATS, levels: Sequence[str] = LEVELS,
        array_formats: Sequence[str] = DEFAULT_ARRAY_FORMATS,
        workloads: Sequence[str] = WORKLOADS, timings: Sequence[str] = TIMINGS,
        out_dir: Path = REPO / "results", sizes: Sizes | None = None, seed: int = 1,
        constraints: StaConstraints | None = None, progress: bool = True,
        command: str = "python -m syn.cost", plot: bool = True,
        operands: Path = DEFAULT_OPERANDS) -> list[dict[str, Any]]:
    """Measure every design and write the reports; returns the per-design results.

    ``operands`` is the MNIST LSTM operand file (``make operands``), read for the ``mnist``
    workload only."""
    from tqdm import tqdm

    sizes = sizes or Sizes()
    constraints = constraints or StaConstraints()
    for w in workloads:
        if w not in WORKLOADS:
            raise ValueError(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    for t in timings:
        if t not in TIMINGS:
            raise ValueError(f"unknown timing {t!r}; choose from {', '.join(TIMINGS)}")
    t_start = time.perf_counter()
    jobs = designs(formats, levels, array_formats)
    tools = Tools.find()
    print(f"cost: seed {seed}; {len(jobs)} designs; {tools.versions}", file=sys.stderr)
    cache_root = out_dir / "cache" / "cost"
    mnist = None
    meta: dict[str, Any] = {"command": command, "seed": seed, "versions": tools.versions,
                            "constraints": asdict(constraints), "sizes": asdict(sizes),
                            "voltage": sc.load_library(tools.liberty).voltage}
    if "mnist" in workloads:
        mnist = load_mnist_operands(operands)
        meta["mnist_source"] = mnist.source
    srcs = hdl_sources()
    results = []
    bar = tqdm(jobs, desc="cost", unit="design", disable=not progress, file=sys.stderr)
    for d in bar:
        bar.set_postfix_str(d.name)
        key = _cache_key(d, tools, srcs, json.dumps([asdict(sizes), asdict(constraints), seed]))
        wd = cache_root / f"{d.name}-{key}"
        for stale in cache_root.glob(f"{d.name}-*"):
            if stale != wd and stale.is_dir() and stale.name != "netlists":
                import shutil

                shutil.rmtree(stale, ignore_errors=True)
        t0 = time.perf_counter()
        rec = measure_design(d, tools, wd, sizes, seed, workloads, timings, mnist, constraints,
                             log=(lambda m: bar.write(f"  {m}", file=sys.stderr))
                             if progress else None)
        results.append({"level": d.level, "format": d.fmt, "unit": d.unit, "top": d.top,
                        "params": d.param_dict, **rec,
                        "seconds": round(time.perf_counter() - t0, 1)})
        write_outputs(meta, results, out_dir, plot=False)
    meta["wall_s"] = round(time.perf_counter() - t_start, 1)
    write_outputs(meta, results, out_dir, plot=plot)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the process exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--formats", default=",".join(DEFAULT_FORMATS))
    ap.add_argument("--levels", default=",".join(LEVELS), help="mul,pe,array")
    ap.add_argument("--array-formats", default=",".join(DEFAULT_ARRAY_FORMATS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--timings", default=",".join(TIMINGS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "results")
    ap.add_argument("--operands", type=Path, default=DEFAULT_OPERANDS,
                    help="MNIST LSTM operand file of `make operands` (the mnist workload)")
    ap.add_argument("--mul-vectors", type=int, default=Sizes.mul_vectors)
    ap.add_argument("--pe-tiles", type=int, default=Sizes.pe_tiles)
    ap.add_argument("--array-tiles", type=int, default=Sizes.array_tiles)
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite cost.md/.csv/.png from the existing cost.json, measure nothing")
    args = ap.parse_args(argv)
    cmd = "python -m syn.cost" + ("" if argv is None and len(sys.argv) <= 1 else
                                          " " + " ".join(argv if argv is not None
                                                         else sys.argv[1:]))

    def split(s: str) -> list[str]:
        return [x.strip() for x in s.split(",") if x.strip()]

    def body() -> int:
        if args.report_only:
            src = args.out / "cost.json"
            if not src.is_file():
                raise CostError(f"{src} not found; run without --report-only first")
            d = json.loads(src.read_text())
            write_outputs(d["meta"], d["designs"], args.out, plot=not args.no_plot)
        else:
            if args.mul_vectors < 2 or args.pe_tiles < 1 or args.array_tiles < 1:
                raise CostError("--mul-vectors >= 2, --pe-tiles >= 1, --array-tiles >= 1")
            sizes = Sizes(mul_vectors=args.mul_vectors, pe_tiles=args.pe_tiles,
                          array_tiles=args.array_tiles)
            run(split(args.formats), split(args.levels), split(args.array_formats),
                split(args.workloads), split(args.timings), args.out, sizes, args.seed,
                command=cmd, plot=not args.no_plot, operands=args.operands)
        print((args.out / "cost.md").read_text())
        return 0

    return run_main("cost", body, (CostError, ValueError))

if __name__ == "__main__":
    sys.exit(main())
