"""Zero-delay gate-level simulation without an event-driven simulator, for :mod:`syn.cost`.

Private module. The ``zero`` timing runs of :func:`syn._gatesim.simulate` (Icarus without
specify delays) give, at every time step of the testbench, each net's settled value, and the
VCD holds only those (Icarus dumps a net's last value of a time step). With no delays, a
settled value is a function of the inputs and the flip-flops' state, so the same values come
from evaluating the cells in topological order (levels) once per time step. This module does
that in Icarus' four-valued logic (0, 1, x; an undriven net is z), so the initial unknown state
of flip-flops without reset, and every net it reaches, reads x exactly where Icarus has x; the
loop over time steps and cells is C++ compiled once with g++ (:func:`kernel`), and it counts
every net's transitions itself (no VCD).

* Combinational cells: their truth tables over 0/1/x inputs are taken from Icarus itself
  (:func:`cell_tables` simulates each cell of the library's Verilog models on every input
  combination), so the evaluation is Icarus' own gate semantics, UDPs included.
* Flip-flops: :data:`FLOPS` (``DFFPOSX1``, ``DFFNEGX1``): Q takes D at the clock edge, as the
  library's ``udp_dff`` does with its set and clear tied off; every flip-flop must be clocked
  by the design's clock port (the testbench's 0/1 clock).
* The schedule is :func:`syn._gatesim.testbench`'s: per step the clock rises (flip-flops
  capture, logic settles), the inputs change, the clock falls; outputs are sampled at the end
  of the step. Transitions are counted between consecutive settled values from the end of step
  ``dump_from - 1`` on, changes from or to x/z not counted, as :func:`syn._gatesim.count_toggles`
  counts the VCD.

:func:`compile_netlist` raises :class:`UnsupportedError` for a netlist outside that scope (another
sequential cell, a flip-flop on another clock, a combinational loop, a net with two drivers, a
cell with a z output); :mod:`syn.cost` then runs Icarus. ``syn/tests/test_levelsim.py`` compares
outputs and per-net transitions with Icarus' on synthesized and hand-written netlists.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _gatesim as gs
from ._stdcell import CostError, run_tool, tool_version

#: Value codes of a net (z only for nets nothing drives; it reads as x into a cell, as in
#: Icarus' gates and UDPs).
V0, V1, VX = 0, 1, 2
_CHARS = np.frombuffer(b"01xz", dtype=np.uint8)
#: Inputs per cell the tables are laid out for (the library's widest combinational cell).
MAX_INPUTS = 4
#: Flip-flops the simulator models: cell -> (clock edge, clock pin, data pin, output pin).
FLOPS = {"DFFPOSX1": ("posedge", "CLK", "D", "Q"), "DFFNEGX1": ("negedge", "CLK", "D", "Q")}
_SEQ_UDP_RE = re.compile(r"\budp_(dff|tlat|rslat)\b")
_CELL_RE = re.compile(r"^\s*module\s+(\w+)\s*\((.*?)\)\s*;(.*?)^\s*endmodule", re.S | re.M)
_DIR_RE = re.compile(r"^\s*(input|output|inout)\s+([^;]+);", re.M)
_CONST_RE = re.compile(r"^1'[bB]([01xXzZ])$")


class UnsupportedError(CostError):
    """The netlist is outside what this simulator models (the reason says what)."""


@dataclass(frozen=True)
class CellModel:
    """One cell of the library: input and output pins in declaration order; ``tables``: per
    output pin, its value for each input combination (index: inputs as base-3 digits, first
    pin most significant, 0/1/x), None for a sequential cell; ``problem`` why the cell cannot
    be modelled, completing "<cell> ..." (None if it can)."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tables: dict[str, np.ndarray] | None
    problem: str | None = None


def cell_ports(cells_v: Path) -> dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]]:
    """Every module of a Verilog cell library: (inputs, outputs, sequential), sequential if
    it instantiates a sequential UDP (``udp_dff``, ``udp_tlat``, ``udp_rslat``)."""
    out: dict[str, tuple[tuple[str, ...], tuple[str, ...], bool]] = {}
    for m in _CELL_RE.finditer(Path(cells_v).read_text()):
        name, body = m.group(1), m.group(3)
        body = re.sub(r"\bspecify\b.*?\bendspecify\b", "", body, flags=re.S)
        ins: list[str] = []
        outs: list[str] = []
        for d in _DIR_RE.finditer(body):
            names = [n.strip() for n in d.group(2).split(",") if n.strip()]
            if any("[" in n for n in names) or d.group(1) == "inout":
                ins, outs = [], []
                break
            (ins if d.group(1) == "input" else outs).extend(names)
        out[name] = (tuple(ins), tuple(outs), bool(_SEQ_UDP_RE.search(body)))
    return out


def _table_testbench(cells: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]],
                     out_file: str) -> str:
    lines = ["`timescale 1ns/1ps", "module tb;", "  integer i, fd;",
             "  function val(input integer d);",
             "    val = d == 0 ? 1'b0 : (d == 1 ? 1'b1 : 1'bx);", "  endfunction"]
    body = []
    for k, (name, (ins, outs)) in enumerate(cells.items()):
        lines += [f"  reg {', '.join(f'c{k}_{p}' for p in ins)};",
                  f"  wire {', '.join(f'c{k}_{p}' for p in outs)};",
                  f"  {name} c{k} ({', '.join(f'.{p}(c{k}_{p})' for p in (*ins, *outs))});"]
        n = len(ins)
        sets = " ".join(f"c{k}_{p} = val((i / {3 ** (n - 1 - j)}) % 3);"
                        for j, p in enumerate(ins))
        fmt = "%b" * len(outs)
        body += [f"    for (i = 0; i < {3 ** n}; i = i + 1) begin",
                 f"      {sets}",
                 f'      #1 $fwrite(fd, "{name} %0d {fmt}\\n", i, '
                 f"{', '.join(f'c{k}_{p}' for p in outs)});",
                 "    end"]
    lines += ["  initial begin", f'    fd = $fopen("{out_file}", "w");', *body,
              "    $fclose(fd);", "    $finish;", "  end", "endmodule", ""]
    return "\n".join(lines)


@functools.lru_cache(maxsize=4)
def _cell_tables(cells_v: str, digest: str, iverilog: str, vvp: str) -> dict[str, CellModel]:
    ports = cell_ports(Path(cells_v))
    comb = {n: (i, o) for n, (i, o, seq) in ports.items()
            if not seq and i and o and len(i) <= MAX_INPUTS}
    models: dict[str, CellModel] = {}
    with tempfile.TemporaryDirectory(prefix="cost-celltables-") as tmp:
        tmpd = Path(tmp)
        (tmpd / "tb.v").write_text(_table_testbench(comb, "tables.txt"))
        run_tool([iverilog, "-g2005", "-o", "t.vvp", "-s", "tb", "tb.v", cells_v],
                 "iverilog (cell tables)", cwd=tmpd)
        run_tool([vvp, "-n", "t.vvp"], "vvp (cell tables)", cwd=tmpd)
        rows = (tmpd / "tables.txt").read_text().split("\n")
    got: dict[str, dict[int, str]] = {}
    for row in rows:
        if row.strip():
            name, idx, bits = row.split()
            got.setdefault(name, {})[int(idx)] = bits
    for name, (ins, outs, seq) in ports.items():
        if name not in comb:
            problem = None if name in FLOPS else (
                "is a sequential cell the simulator does not model" if seq else
                f"has {len(ins)} inputs and {len(outs)} outputs")
            models[name] = CellModel(name, ins, outs, None, problem)
            continue
        vals = got.get(name, {})
        n = 3 ** len(ins)
        if sorted(vals) != list(range(n)) or any(len(v) != len(outs) for v in vals.values()):
            raise CostError(f"cell tables: Icarus gave {len(vals)} of {n} rows of {name}")
        text = [vals[i] for i in range(n)]
        problem = "has an output that can be z" if any("z" in t for t in text) else None
        tables = {p: np.array([{"0": V0, "1": V1}.get(t[j], VX) for t in text], dtype=np.uint8)
                  for j, p in enumerate(outs)}
        models[name] = CellModel(name, ins, outs, tables, problem)
    return models


def cell_tables(cells_v: Path, iverilog: str, vvp: str) -> dict[str, CellModel]:
    """Every cell of the Verilog library ``cells_v`` with its truth tables as Icarus computes
    them (one run per process and library content)."""
    digest = hashlib.sha256(Path(cells_v).read_bytes()).hexdigest()
    return _cell_tables(str(Path(cells_v).resolve()), digest, iverilog, vvp)


# ------------------------------------------------------------------------------ compile
@dataclass
class Program:
    """A netlist ready to evaluate: nodes 0-3 are the constants 0, 1, x and z, then every net
    bit (``names``, as :func:`syn._gatesim.net_bits` names them). The combinational operations
    in an order that evaluates each after its inputs (by level, ``n_levels`` of them): output
    node ``outs``, the ``MAX_INPUTS`` input nodes ``ins`` (padded with node 0) and the offset
    of the output's table in ``table`` (``3 ** MAX_INPUTS`` entries each). ``flops``: per clock
    edge the Q and D nodes. ``z``: nodes nothing drives (they compute as x, print as z)."""

    names: list[str]
    inputs: list[tuple[str, np.ndarray]]
    outputs: list[tuple[str, np.ndarray]]
    clock: int | None
    clock_read: bool
    outs: np.ndarray
    ins: np.ndarray
    offs: np.ndarray
    n_levels: int
    table: np.ndarray
    flops: dict[str, tuple[np.ndarray, np.ndarray]]
    z: np.ndarray
    constants: np.ndarray = field(default_factory=lambda: np.array([V0, V1, VX, VX], np.uint8))

    @property
    def n_nodes(self) -> int:
        """Nodes, constants included."""
        return 4 + len(self.names)


_VECTOR_CONST_RE = re.compile(r"^(\d+)'[bB]([01xXzZ]+)$")


def _bits(expr: str) -> list[str]:
    """The bits of one side of an ``assign``, MSB first: a part select ``y[15:0]`` and a sized
    binary constant (``16'b0...``) become one name or 1-bit constant per bit."""
    expr = expr.strip()
    c = _VECTOR_CONST_RE.match(expr)
    if c and int(c.group(1)) == len(c.group(2)):
        return [f"1'b{b}" for b in c.group(2)]
    return gs.select_bits(expr)


def compile_netlist(nl: gs.Netlist, models: Mapping[str, CellModel], clock: str | None
                    ) -> Program:
    """The levelized :class:`Program` of ``nl`` (``clock``: its clock port, or None);
    :class:`UnsupportedError` if the netlist is outside what the simulator models."""
    names = gs.net_bits(nl)
    node = {n: 4 + k for k, n in enumerate(names)}
    consts = {"0": 0, "1": 1, "x": 2, "z": 3}

    def ref(net: str, where: str) -> int:
        if net in node:
            return node[net]
        c = _CONST_RE.match(net.strip())
        if c:
            return consts[c.group(1).lower()]
        raise UnsupportedError(f"{where}: net {net!r} is not a declared net bit or a 1-bit "
                               "constant")

    driver: dict[int, str] = {}

    def drive(n: int, who: str) -> None:
        if n < 4:
            raise UnsupportedError(f"{who} drives a constant")
        if n in driver:
            raise UnsupportedError(f"net {names[n - 4]} has two drivers: {driver[n]} and {who}")
        driver[n] = who

    inputs = []
    for p in nl.inputs:
        bits = np.array([node[b] for b in p.bits()], dtype=np.int32)
        for b in bits:
            drive(int(b), f"input {p.name}")
        inputs.append((p.name, bits))
    outputs = [(p.name, np.array([node[b] for b in p.bits()], dtype=np.int32))
               for p in nl.outputs]
    clk = node[clock] if clock is not None else None
    if clock is not None and not any(p.name == clock for p in nl.inputs):
        raise UnsupportedError(f"clock {clock} is not an input port")
    # combinational operations: (output node, input nodes, table key)
    ops: list[tuple[int, list[int], tuple[str, str]]] = []
    flops: dict[str, tuple[list[int], list[int]]] = {"posedge": ([], []), "negedge": ([], [])}
    for inst in nl.instances:
        m = models.get(inst.cell)
        if m is None:
            raise UnsupportedError(f"cell {inst.cell} ({inst.name}) is not in the cell library")
        if m.problem is not None:
            raise UnsupportedError(f"{inst.name}: {inst.cell} {m.problem}")
        unknown = set(inst.pins) - set(m.inputs) - set(m.outputs)
        if unknown:
            raise UnsupportedError(f"{inst.name}: {inst.cell} has no pin {sorted(unknown)[0]}")
        if m.tables is None:
            edge, cp, dp, qp = FLOPS[inst.cell]
            if clk is None or inst.pins.get(cp) != clock:
                raise UnsupportedError(f"flip-flop {inst.name} is not clocked by the clock port")
            if dp not in inst.pins or qp not in inst.pins:
                raise UnsupportedError(f"flip-flop {inst.name} has an unconnected pin")
            q = ref(inst.pins[qp], inst.name)
            drive(q, inst.name)
            flops[edge][0].append(q)
            flops[edge][1].append(ref(inst.pins[dp], inst.name))
            continue
        # an unconnected input pin is z, which a cell reads as x
        ins = [ref(inst.pins[p], inst.name) if p in inst.pins else 3 for p in m.inputs]
        for p in m.outputs:
            if p in inst.pins:
                o = ref(inst.pins[p], inst.name)
                drive(o, inst.name)
                ops.append((o, ins, (inst.cell, p)))
    # assign lhs = rhs copies the value, z included
    alias: dict[int, int] = {}
    for lhs, rhs in nl.assigns:
        left, right = _bits(lhs), _bits(rhs)
        if len(left) != len(right):
            raise UnsupportedError(f"assign {lhs} = {rhs}: {len(left)} bits from "
                                   f"{len(right)}")
        for lb, rb in zip(left, right, strict=True):
            o = ref(lb, f"assign {lhs}")
            drive(o, f"assign {lhs}")
            alias[o] = ref(rb, f"assign {lhs}")
    n_nodes = 4 + len(names)
    z = np.ones(n_nodes, dtype=bool)
    z[:3] = False
    z[list(driver)] = False
    # resolve assign chains: a copy of a z net is z, of a constant that constant
    for o in list(alias):
        seen = {o}
        src = alias[o]
        while src in alias:
            if src in seen:
                raise UnsupportedError(f"assign loop through {names[o - 4]}")
            seen.add(src)
            src = alias[src]
        alias[o] = src
    buf = ("<assign>", "Y")
    for o, src in alias.items():
        if z[src]:
            z[o] = True
        else:
            ops.append((o, [src], buf))
    # tables, 3 ** MAX_INPUTS entries each (a cell with fewer inputs ignores the padding)
    keys = sorted({k for _, _, k in ops})
    full = 3 ** MAX_INPUTS
    table = np.zeros(full * max(1, len(keys)), dtype=np.uint8)
    offset = {}
    for t, key in enumerate(keys):
        if key == buf:
            tk, k = np.array([V0, V1, VX], dtype=np.uint8), 1
        else:
            m = models[key[0]]
            assert m.tables is not None
            tk, k = m.tables[key[1]], len(m.inputs)
        table[t * full:(t + 1) * full] = np.repeat(tk, 3 ** (MAX_INPUTS - k))
        offset[key] = t * full
    # levels: a source (input, flip-flop output, constant, undriven net) is level 0, an
    # operation one above its highest input; relaxed until nothing changes (as many rounds as
    # the logic is deep), and without end through a loop
    outs = np.array([o for o, _, _ in ops], dtype=np.int64)
    ins_pad = np.array([ins + [0] * (MAX_INPUTS - len(ins)) for _, ins, _ in ops],
                       dtype=np.int64).reshape(len(ops), MAX_INPUTS)
    offs = np.array([offset[key] for _, _, key in ops], dtype=np.int32)
    lv = np.zeros(n_nodes, dtype=np.int64)
    cols = [ins_pad[:, j].copy() for j in range(MAX_INPUTS)]
    for _ in range(len(ops) + 1):
        new = lv.copy()
        new[outs] = np.maximum(np.maximum(lv[cols[0]], lv[cols[1]]),
                               np.maximum(lv[cols[2]], lv[cols[3]])) + 1
        if np.array_equal(new, lv):
            break
        lv = new
    else:
        if len(ops):
            raise UnsupportedError("combinational loop through "
                                   f"{names[int(np.argmax(lv)) - 4]}")
    order = np.argsort(lv[outs], kind="stable")  # every operation after its inputs'
    n_levels = int(lv.max()) if len(ops) else 0
    clock_read = clk is not None and any(clk in ins for _, ins, _ in ops)
    fl = {e: (np.array(q, dtype=np.int32), np.array(d, dtype=np.int32))
          for e, (q, d) in flops.items()}
    if (len(fl["posedge"][0]) or len(fl["negedge"][0])) and clk is None:
        raise UnsupportedError("flip-flops without a clock port")
    return Program(names, inputs, outputs, clk, clock_read, outs[order].astype(np.int32),
                   np.ascontiguousarray(ins_pad[order], dtype=np.int32), offs[order],
                   n_levels, table, fl, z)


# -------------------------------------------------------------------------------- kernel
#: The evaluation loop, compiled once per compiler and source (:func:`kernel`): the schedule of
#: the module docstring, one pass over the operations per settle, transitions counted per node.
_KERNEL = r"""
#include <stdint.h>
#include <string.h>

static void settle(uint8_t *v, int64_t n_ops, const int32_t *outs, const int32_t *ins,
                   const int32_t *offs, const uint8_t *table) {
  for (int64_t k = 0; k < n_ops; ++k) {
    const int32_t *p = ins + 4 * k;
    v[outs[k]] = table[offs[k] + v[p[0]] * 27 + v[p[1]] * 9 + v[p[2]] * 3 + v[p[3]]];
  }
}

static void capture(uint8_t *v, int64_t n, const int32_t *q, const int32_t *d, uint8_t *tmp) {
  for (int64_t k = 0; k < n; ++k) tmp[k] = v[d[k]];  /* every D before any Q changes */
  for (int64_t k = 0; k < n; ++k) v[q[k]] = tmp[k];
}

static void count(const uint8_t *v, uint8_t *prev, int64_t n, int64_t *counts) {
  for (int64_t j = 0; j < n; ++j) {
    uint8_t a = prev[j], b = v[j];
    counts[j] += (a != b) & (a < 2) & (b < 2);
    prev[j] = b;
  }
}

extern "C" int levelsim_run(
    int64_t n_nodes, uint8_t *v, int64_t n_ops, const int32_t *outs, const int32_t *ins,
    const int32_t *offs, const uint8_t *table,
    int64_t n_pos, const int32_t *pos_q, const int32_t *pos_d,
    int64_t n_neg, const int32_t *neg_q, const int32_t *neg_d,
    int32_t clk, int32_t settle_on_fall,
    int64_t n_steps, int64_t n_in, const int32_t *in_nodes, const uint8_t *in_vals,
    int64_t n_out, const int32_t *out_nodes, uint8_t *rows,
    int64_t first, int64_t *counts, uint8_t *prev, uint8_t *tmp) {
  settle(v, n_ops, outs, ins, offs, table);
  for (int64_t i = 0; i < n_steps; ++i) {
    if (clk >= 0) {
      capture(v, n_pos, pos_q, pos_d, tmp);
      v[clk] = 1;
      settle(v, n_ops, outs, ins, offs, table);
      if (i >= first) count(v, prev, n_nodes, counts);
    }
    const uint8_t *in = in_vals + i * n_in;
    for (int64_t k = 0; k < n_in; ++k) v[in_nodes[k]] = in[k];
    settle(v, n_ops, outs, ins, offs, table);
    if (i >= first) count(v, prev, n_nodes, counts);
    if (clk >= 0) {
      capture(v, n_neg, neg_q, neg_d, tmp);
      v[clk] = 0;
      if (settle_on_fall) settle(v, n_ops, outs, ins, offs, table);
      if (i >= first) count(v, prev, n_nodes, counts);
    }
    uint8_t *row = rows + i * n_out;
    for (int64_t k = 0; k < n_out; ++k) row[k] = v[out_nodes[k]];
    if (i + 1 == first) memcpy(prev, v, (size_t)n_nodes);
  }
  return 0;
}
"""
_CXXFLAGS = ("-O2", "-shared", "-fPIC")


@functools.lru_cache(maxsize=4)
def kernel(build_dir: Path, cxx: str) -> Any:
    """The compiled evaluation loop (``ctypes`` function), built with ``cxx`` into
    ``build_dir`` once per compiler version and source (a file named by their hash), loaded
    once per process."""
    version = tool_version(cxx, "--version")
    key = hashlib.sha256("\0".join([_KERNEL, version, *_CXXFLAGS]).encode()).hexdigest()[:16]
    path = Path(build_dir) / f"levelsim-{key}.so"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="levelsim-", dir=path.parent) as tmp:
            src = Path(tmp) / "levelsim.cpp"
            src.write_text(_KERNEL)
            run_tool([cxx, *_CXXFLAGS, "-o", "levelsim.so", "levelsim.cpp"],
                     "compiling the zero-delay simulator", cwd=Path(tmp))
            os.replace(Path(tmp) / "levelsim.so", path)  # atomic: processes may race
    fn = ctypes.CDLL(str(path)).levelsim_run
    i64, i32 = ctypes.c_int64, ctypes.c_int32
    ptr = ctypes.c_void_p
    fn.argtypes = [i64, ptr, i64, ptr, ptr, ptr, ptr, i64, ptr, ptr, i64, ptr, ptr, i32, i32,
                   i64, i64, ptr, ptr, i64, ptr, ptr, i64, ptr, ptr, ptr]
    fn.restype = ctypes.c_int
    return fn


# ------------------------------------------------------------------------------- simulate
@dataclass
class LevelResult:
    """Outputs per step (binary strings as the Icarus testbench writes them), transitions per
    net bit from step ``dump_from`` on (None without ``dump_from``), wall seconds of the run
    and ``times`` (``{"run": (wall, cpu)}``)."""

    outputs: list[str]
    toggles: dict[str, int] | None
    seconds: float
    times: dict[str, tuple[float, float]]


def _input_bits(prog: Program, stimulus: Mapping[str, Sequence[int]], n_steps: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """(input nodes, values per step x node) of every data input bit, from the same packed
    text the Icarus testbench reads (:func:`syn._gatesim._pack`)."""
    data = [(n, b) for n, b in prog.inputs if prog.clock is None or b[0] != prog.clock]
    ports = [gs.Port("input", n, len(b), False) for n, b in data]
    if not ports:
        return np.zeros(0, dtype=np.int32), np.zeros((n_steps, 0), dtype=np.uint8)
    rows = gs._pack(stimulus, ports, n_steps)
    chars = np.frombuffer("".join(rows).encode(), dtype=np.uint8).reshape(n_steps, -1)
    nodes = np.concatenate([b[::-1] for _, b in data]).astype(np.int32)  # MSB first
    return nodes, np.ascontiguousarray(chars - ord("0"), dtype=np.uint8)


def simulate(prog: Program, stimulus: Mapping[str, Sequence[int]], n_steps: int,
             run: Any, dump_from: int | None = None) -> LevelResult:
    """Run ``prog`` on ``stimulus`` with the zero-delay schedule of the Icarus testbench
    (module docstring) through the compiled loop ``run`` (:func:`kernel`)."""
    if dump_from is not None and not 1 <= dump_from <= n_steps:
        raise CostError(f"dump_from must be in 1..{n_steps}, got {dump_from}")
    w0, c0 = time.perf_counter(), time.process_time()
    in_nodes, in_vals = _input_bits(prog, stimulus, n_steps)
    out_nodes = np.ascontiguousarray(np.concatenate([b[::-1] for _, b in prog.outputs]),
                                     dtype=np.int32)
    n = prog.n_nodes
    v = np.full(n, VX, dtype=np.uint8)
    v[:4] = prog.constants
    if prog.clock is not None:
        v[prog.clock] = V0  # the testbench's clock register starts at 0
    counts = np.zeros(n, dtype=np.int64)
    prev = np.zeros(n, dtype=np.uint8)
    rows = np.zeros((n_steps, len(out_nodes)), dtype=np.uint8)
    (pq, pd), (nq, nd) = prog.flops["posedge"], prog.flops["negedge"]
    tmp = np.zeros(max(1, len(pq), len(nq)), dtype=np.uint8)
    first = n_steps if dump_from is None else dump_from
    arrays = [v, prog.outs, prog.ins, prog.offs, prog.table, pq, pd, nq, nd, in_nodes, in_vals,
              out_nodes, rows, counts, prev, tmp]
    for a in arrays:
        assert a.flags["C_CONTIGUOUS"], "the kernel reads arrays as flat C arrays"
    p = [a.ctypes.data for a in arrays]
    run(n, p[0], len(prog.outs), p[1], p[2], p[3], p[4], len(pq), p[5], p[6], len(nq), p[7],
        p[8], -1 if prog.clock is None else prog.clock,
        int(len(nq) > 0 or prog.clock_read), n_steps, len(in_nodes), p[9], p[10],
        len(out_nodes), p[11], p[12], first, p[13], p[14], p[15])
    chars = _CHARS[np.where(prog.z[out_nodes][None, :], 3, rows)]
    outs = [r.tobytes().decode() for r in chars]
    toggles = None
    if dump_from is not None:
        toggles = dict(zip(prog.names, counts[4:].tolist(), strict=True))
    wall = time.perf_counter() - w0
    return LevelResult(outs, toggles, wall, {"run": (wall, time.process_time() - c0)})
