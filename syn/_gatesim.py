"""Gate-level simulation helpers for :mod:`syn.cost`: netlists, testbenches, toggles.

Private module. A mapped netlist (yosys ``write_verilog`` of a flattened design, every internal
net a 1-bit wire) is parsed into :class:`Netlist`; :func:`add_input_drivers` gives every input
bit a ``BUFX2`` driver so the capacitance of the design's input pins shows up as switching power
of a driver inside the netlist. :func:`simulate` runs a generated Icarus testbench that applies
one stimulus vector per clock period (the same testbench runs the RTL, so gate-level and RTL
outputs can be compared bit for bit) and optionally dumps a VCD of the design's top-level nets,
from which :func:`count_toggles` counts the 0<->1 transitions of every net.

Two simulation timings: ``zero`` (Icarus without specify delays: every net settles once per
vector, so no glitches are counted, and the VCD holds one value per time step) and
``specify`` (``iverilog -gspecify``: each cell's path delays from the library's Verilog models,
fixed per cell, not load dependent; glitches shorter than a cell's delay are swallowed by
Icarus' inertial delays, longer ones are counted as transitions).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._stdcell import CostError, run_tool

DRIVER_CELL = "BUFX2"
DRIVER_PREFIX = "drv_"


@dataclass(frozen=True)
class Port:
    """A module port: direction (``input``/``output``), name, width (1 for a scalar)."""

    direction: str
    name: str
    width: int
    scalar: bool

    def bits(self) -> list[str]:
        """Net names of the port's bits, LSB first (``a[0]``, ... or ``clk``)."""
        return [self.name] if self.scalar else [f"{self.name}[{i}]" for i in range(self.width)]


@dataclass
class Instance:
    """A cell instance: cell type, instance name, pin -> net."""

    cell: str
    name: str
    pins: dict[str, str]


@dataclass
class Netlist:
    """A flat gate-level module."""

    name: str
    ports: list[Port]
    wires: list[tuple[str, int]] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    assigns: list[tuple[str, str]] = field(default_factory=list)

    @property
    def inputs(self) -> list[Port]:
        """Input ports in declaration order."""
        return [p for p in self.ports if p.direction == "input"]

    @property
    def outputs(self) -> list[Port]:
        """Output ports in declaration order."""
        return [p for p in self.ports if p.direction == "output"]

    def to_verilog(self) -> str:
        """Verilog text of the module (same shape as yosys' output)."""
        lines = [f"module {self.name}({', '.join(p.name for p in self.ports)});"]
        for p in self.ports:
            rng = "" if p.scalar else f"[{p.width - 1}:0] "
            lines.append(f"  {p.direction} {rng}{p.name};")
        for name, width in self.wires:
            rng = "" if width == 1 else f"[{width - 1}:0] "
            lines.append(f"  wire {rng}{name};")
        for inst in self.instances:
            conns = ",\n".join(f"    .{pin}({net})" for pin, net in inst.pins.items())
            lines.append(f"  {inst.cell} {inst.name} (\n{conns}\n  );")
        for lhs, rhs in self.assigns:
            lines.append(f"  assign {lhs} = {rhs};")
        lines.append("endmodule")
        return "\n".join(lines) + "\n"


_MODULE_RE = re.compile(r"^\s*module\s+(\S+)\s*\((.*?)\);", re.S | re.M)
_DECL_RE = re.compile(r"^\s*(input|output|inout|wire)\s+(?:\[(\d+):(\d+)\]\s+)?(\S+?);\s*$")
_INST_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+(\S+)\s*\(\s*$")
_PIN_RE = re.compile(r"^\s*\.(\w+)\((.*)\),?\s*$")
_ASSIGN_RE = re.compile(r"^\s*assign\s+(.+?)\s*=\s*(.+?)\s*;\s*$")


_CONCAT_ASSIGN_RE = re.compile(r"^(\s*)assign\s*\{([^}]*)\}\s*=\s*(\d+)'b([01xz]+)\s*;\s*$",
                               re.M)
_BIT_RANGE_RE = re.compile(r"^(\S+?)\[(\d+):(\d+)\]$")


def select_bits(item: str) -> list[str]:
    """The bit names of one netlist item, MSB first: a part select ``y[15:0]`` becomes
    ``y[15]`` .. ``y[0]``; anything else is itself."""
    r = _BIT_RANGE_RE.match(item)
    if not r:
        return [item]
    hi, lo = int(r.group(2)), int(r.group(3))
    step = -1 if hi >= lo else 1
    return [f"{r.group(1)}[{k}]" for k in range(hi, lo + step, step)]


def split_constant_assigns(text: str) -> str:
    """The netlist with each ``assign { a, b[3:0] } = 5'b00000;`` (constant output bits, as
    yosys writes them) split into one ``assign`` per bit, which OpenSTA's reader and
    :func:`parse_netlist` take. CostError if a constant's width differs from its targets'."""
    def one(m: re.Match[str]) -> str:
        bits_lhs = [b for x in m.group(2).split(",") for b in select_bits(x.strip())]
        width, bits = int(m.group(3)), m.group(4)
        if len(bits) != width or width != len(bits_lhs):
            raise CostError(f"netlist: constant assignment of {width} bits to "
                            f"{len(bits_lhs)} targets: {m.group(0).strip()}")
        return "\n".join(f"{m.group(1)}assign {lhs} = 1'b{v};"
                         for lhs, v in zip(bits_lhs, bits, strict=True))

    return _CONCAT_ASSIGN_RE.sub(one, text)


def parse_netlist(text: str) -> Netlist:
    """Parse a flat yosys netlist (``write_verilog -noattr -noexpr``) with one module."""
    m = _MODULE_RE.search(text)
    if m is None:
        raise CostError("netlist: no module header")
    order = [p.strip() for p in m.group(2).split(",") if p.strip()]
    decl: dict[str, tuple[str, int, bool]] = {}
    nl = Netlist(m.group(1), [])
    body = text[m.end():].splitlines()
    i = 0
    while i < len(body):
        line = body[i]
        i += 1
        s = line.strip()
        if not s or s.startswith("//") or s.startswith("/*") or s == "endmodule":
            continue
        d = _DECL_RE.match(line)
        if d:
            kind, hi, lo, name = d.group(1), d.group(2), d.group(3), d.group(4)
            width = int(hi) - int(lo) + 1 if hi is not None else 1
            if hi is not None and int(lo) != 0:
                raise CostError(f"netlist: range [{hi}:{lo}] of {name} does not end at 0")
            if kind == "wire":
                if name not in decl:
                    nl.wires.append((name, width))
            else:
                decl[name] = (kind, width, hi is None)
            continue
        a = _ASSIGN_RE.match(line)
        if a:
            nl.assigns.append((a.group(1), a.group(2)))
            continue
        inst_m = _INST_RE.match(line)
        if inst_m:
            pins: dict[str, str] = {}
            while i < len(body) and body[i].strip() != ");":
                pm = _PIN_RE.match(body[i])
                if pm is None:
                    raise CostError(f"netlist: cannot parse pin line {body[i].strip()!r}")
                pins[pm.group(1)] = pm.group(2).strip()
                i += 1
            i += 1
            nl.instances.append(Instance(inst_m.group(1), inst_m.group(2), pins))
            continue
        raise CostError(f"netlist: cannot parse line {s!r}")
    for name in order:
        if name not in decl:
            raise CostError(f"netlist: port {name} has no direction")
        kind, width, scalar = decl[name]
        nl.ports.append(Port(kind, name, width, scalar))
    port_names = set(order)
    nl.wires = [(n, w) for n, w in nl.wires if n not in port_names]
    return nl


def add_input_drivers(nl: Netlist, cell: str = DRIVER_CELL, skip: Sequence[str] = ()
                      ) -> Netlist:
    """A copy of ``nl`` in which every input bit (but the ports in ``skip``, e.g. an ideal
    clock) drives one ``cell`` (pins A -> Y) whose output replaces the input bit everywhere
    inside the module."""
    rename: dict[str, str] = {}
    drivers: list[Instance] = []
    wires = list(nl.wires)
    for p in nl.inputs:
        if p.name in skip:
            continue
        for k, bit in enumerate(p.bits()):
            tag = p.name if p.scalar else f"{p.name}_{k}"
            net = f"{DRIVER_PREFIX}n_{tag}"
            rename[bit] = net
            wires.append((net, 1))
            drivers.append(Instance(cell, f"{DRIVER_PREFIX}{tag}", {"A": bit, "Y": net}))
    insts = drivers + [Instance(i.cell, i.name, {pin: rename.get(net, net)
                                                 for pin, net in i.pins.items()})
                       for i in nl.instances]
    assigns = [(lhs, rename.get(rhs, rhs)) for lhs, rhs in nl.assigns]
    for lhs, _ in nl.assigns:
        if lhs in rename:
            raise CostError(f"netlist: assignment to input bit {lhs}")
    return Netlist(nl.name, list(nl.ports), wires, insts, assigns)


# ------------------------------------------------------------------------------- testbench
def _pack(values: Mapping[str, Sequence[int]], ports: Sequence[Port], n: int) -> list[str]:
    """One binary string per step: the input ports concatenated, first port in the MSBs."""
    cols = []
    for p in ports:
        if p.name not in values:
            raise CostError(f"stimulus has no values for input {p.name}")
        col = values[p.name]
        if len(col) != n:
            raise CostError(f"stimulus: {p.name} has {len(col)} steps, expected {n}")
        mask = (1 << p.width) - 1
        cols.append([format(int(v) & mask, f"0{p.width}b") for v in col])
    return ["".join(parts) for parts in zip(*cols, strict=True)] if cols else ["0"] * n


def testbench(module: str, inputs: Sequence[Port], outputs: Sequence[Port], clock: str | None,
              n_steps: int, period_ns: float, dump_from: int | None, params: Mapping[str, int],
              stim_file: str, out_file: str, vcd_file: str) -> str:
    """Verilog testbench: one stimulus step per period; inputs change 0.1 ns after the step's
    start (with a clock: after its rising edge, which ends the previous step), outputs are
    written just before the next step (so a register captures step i's inputs at the rising
    edge that starts step i + 1). The VCD (level 1: the design's own nets) starts once step
    ``dump_from - 1`` has settled, so it counts the transitions of steps ``dump_from`` ..."""
    data_in = [p for p in inputs if p.name != clock]
    iw = max(1, sum(p.width for p in data_in))
    ow = sum(p.width for p in outputs)
    conns = []
    pos = iw
    for p in data_in:
        conns.append(f".{p.name}(vin[{pos - 1}:{pos - p.width}])")
        pos -= p.width
    if clock:
        conns.append(f".{clock}(clk)")
    pos = ow
    for p in outputs:
        conns.append(f".{p.name}(vout[{pos - 1}:{pos - p.width}])")
        pos -= p.width
    pstr = (" #(" + ", ".join(f".{k}({v})" for k, v in params.items()) + ")") if params else ""
    half = period_ns / 2
    eps = 0.002
    setup = 0.1  # inputs change 0.1 ns after the rising edge, like register outputs
    dump = (f"      if (i + 1 == {dump_from}) begin $dumpfile(\"{vcd_file}\"); "
            "$dumpvars(1, u); end\n") if dump_from is not None else ""
    if dump_from == 0:
        raise CostError("dump_from must be >= 1 (step 0 starts from an unknown state)")
    clk_decl = "  reg clk = 1'b0;\n" if clock else ""
    rise = "clk = 1'b1;" if clock else ""
    fall = "clk = 1'b0;" if clock else ""
    return f"""`timescale 1ns/1ps
module tb;
  reg  [{iw - 1}:0] vin;
  wire [{ow - 1}:0] vout;
{clk_decl}  reg  [{iw - 1}:0] mem [0:{n_steps - 1}];
  integer i, fd;
  {module}{pstr} u ({", ".join(conns)});
  initial begin
    $readmemb("{stim_file}", mem);
    fd = $fopen("{out_file}", "w");
    for (i = 0; i < {n_steps}; i = i + 1) begin
      {rise}
      #({setup}) vin = mem[i];
      #({half - setup}) {fall}
      #({half - eps});
      $fwrite(fd, "%b\\n", vout);
{dump}      #({eps});
    end
    $fclose(fd);
    $finish;
  end
endmodule
"""


@dataclass
class SimResult:
    """Outputs per step (binary strings, ``x``/``z`` kept) and the VCD path, if dumped.

    ``seconds``: wall time of the simulation (``vvp``); ``times``: ``{"compile": (wall,
    cpu), "run": (wall, cpu)}`` seconds of ``iverilog`` and ``vvp`` (cpu: the child's user +
    system time), for the flow's profile."""

    outputs: list[str]
    vcd: Path | None
    seconds: float
    times: dict[str, tuple[float, float]] = field(default_factory=dict)


def _child_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def simulate(sources: Sequence[Path], module: str, inputs: Sequence[Port],
             outputs: Sequence[Port], clock: str | None, stimulus: Mapping[str, Sequence[int]],
             n_steps: int, period_ns: float, workdir: Path, iverilog: str, vvp: str,
             params: Mapping[str, int] | None = None, include: Path | None = None,
             dump_from: int | None = None, timing: str = "zero") -> SimResult:
    """Compile and run one testbench with Icarus in ``workdir``; see :func:`testbench`."""
    import time

    if timing not in ("zero", "specify"):
        raise CostError(f"timing must be zero or specify, got {timing!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    data_in = [p for p in inputs if p.name != clock]
    (workdir / "stim.txt").write_text("\n".join(_pack(stimulus, data_in, n_steps)) + "\n")
    vcd = workdir / "dump.vcd"
    tb = testbench(module, inputs, outputs, clock, n_steps, period_ns, dump_from, params or {},
                   "stim.txt", "out.txt", "dump.vcd")
    (workdir / "tb.v").write_text(tb)
    cmd = [iverilog, "-g2005", "-o", "sim.vvp", "-s", "tb"]
    if timing == "specify":
        cmd.append("-gspecify")
    if include is not None:
        cmd += ["-I", str(Path(include).resolve())]
    cmd += ["tb.v", *[str(Path(s).resolve()) for s in sources]]
    w0, c0 = time.perf_counter(), _child_cpu()
    run_tool(cmd, f"iverilog ({module})", cwd=workdir)
    t0, c1 = time.perf_counter(), _child_cpu()
    run_tool([vvp, "-n", "sim.vvp"], f"vvp ({module})", cwd=workdir)
    seconds = time.perf_counter() - t0
    times = {"compile": (t0 - w0, c1 - c0), "run": (seconds, _child_cpu() - c1)}
    outs = (workdir / "out.txt").read_text().split()
    if len(outs) != n_steps:
        raise CostError(f"simulation of {module} wrote {len(outs)} output steps, expected "
                        f"{n_steps}")
    return SimResult(outs, vcd if dump_from is not None else None, seconds, times)


def compare_outputs(reference: Sequence[str], gate: Sequence[str]) -> tuple[int, list[str]]:
    """Compare per-step output bit strings: every bit the reference (RTL) defines (0/1) must be
    the same in the gate-level result. Returns (bits compared, first mismatches)."""
    if len(reference) != len(gate):
        raise CostError(f"{len(reference)} reference steps vs {len(gate)} gate-level steps")
    compared = 0
    bad: list[str] = []
    for step, (r, g) in enumerate(zip(reference, gate, strict=True)):
        if len(r) != len(g):
            raise CostError(f"step {step}: output widths {len(r)} vs {len(g)}")
        if r == g and "x" not in r and "z" not in r:
            compared += len(r)
            continue
        for k, (rb, gb) in enumerate(zip(r, g, strict=True)):
            if rb in "01":
                compared += 1
                if gb != rb and len(bad) < 5:
                    bad.append(f"step {step} bit {len(r) - 1 - k}: RTL {rb} gate {gb}")
    return compared, bad


# ----------------------------------------------------------------------------------- toggles
_VAR_RE = re.compile(r"\$var\s+\S+\s+(\d+)\s+(\S+)\s+(\S+)(?:\s+\[(\d+)(?::(\d+))?\])?\s+\$end")


def count_toggles(vcd: Path) -> dict[str, int]:
    """0<->1 transitions of every net in a VCD (Icarus, one scope), keyed by net name (vector
    bits as ``name[i]``). Changes from or to x/z are not transitions; the first value of each
    net (the ``$dumpvars`` block) is its starting state.

    The scalar changes (nearly every line of a gate-level dump) are counted with numpy over
    the whole file; :func:`count_toggles_reference` is the same count line by line."""
    with open(vcd, "rb") as f:
        data = f.read()
    end_defs = data.find(b"$enddefinitions")
    if end_defs < 0:
        return count_toggles_reference(vcd)
    body_at = data.find(b"\n", end_defs) + 1 or len(data)
    ids, widths = _vcd_header(data[:body_at].decode().splitlines())
    codes = list(ids)
    keys = [_code_key(c.encode()) for c in codes]
    if any(k is None for k in keys):  # identifiers longer than 8 characters
        return count_toggles_reference(vcd)
    buf = np.frombuffer(data, dtype=np.uint8)[body_at:]
    if len(buf) == 0:
        return _toggle_names(ids, widths, {}, {})
    ends = np.flatnonzero(buf == 10)
    if buf[-1] != 10:
        ends = np.append(ends, len(buf))
    starts = np.concatenate([[0], ends[:-1] + 1])
    lens = ends - starts
    first = buf[np.minimum(starts, len(buf) - 1)]
    scalar = (lens > 0) & np.isin(first, np.frombuffer(b"01xzXZ", dtype=np.uint8))
    s_at, s_len, s_val = starts[scalar] + 1, lens[scalar] - 1, first[scalar]
    key = np.zeros(len(s_at), dtype=np.uint64)
    for k in range(int(s_len.max()) if len(s_len) else 0):
        if k >= 8:
            return count_toggles_reference(vcd)
        byte = np.where(s_len > k, buf[np.minimum(s_at + k, len(buf) - 1)], 0)
        key |= byte.astype(np.uint64) << np.uint64(8 * k)
    known = np.array(keys, dtype=np.uint64)
    order = np.argsort(known)
    pos = np.minimum(np.searchsorted(known[order], key), len(known) - 1)
    found = known[order][pos] == key
    idx = order[pos][found]
    val = s_val[found]
    # each code's values in file order; a transition is a change between two 0/1 values
    # (numpy's stable sort of 16-bit keys is a radix sort)
    by_code = np.argsort(idx.astype(np.uint16) if len(codes) <= 1 << 16 else idx,
                         kind="stable")
    idx, val = idx[by_code], val[by_code]
    is01 = (val == ord("0")) | (val == ord("1"))
    step = (idx[1:] == idx[:-1]) & is01[1:] & is01[:-1] & (val[1:] != val[:-1])
    counts = np.bincount(idx[1:][step], minlength=len(codes))
    scalar_count = {c: int(counts[i]) for i, c in enumerate(codes)}
    # vector changes (ports, and with delays their glitches): per code, one row per change
    vector = (first == ord("b")) | (first == ord("B"))
    rows: dict[str, list[str]] = {}
    for a, e in zip(starts[vector].tolist(), ends[vector].tolist(), strict=True):
        val, code = data[body_at + a + 1:body_at + e].decode().split()
        width = widths.get(code, len(val))
        rows.setdefault(code, []).append(val.rjust(width, "0" if val[0] in "01" else val[0]))
    vec_count: dict[str, list[int]] = {}
    for code, vals in rows.items():
        if len(vals) < 2:
            continue
        if len({len(v) for v in vals}) != 1:  # a value wider than declared: the line loop
            return count_toggles_reference(vcd)
        bits = np.frombuffer("".join(vals).encode(), dtype=np.uint8).reshape(len(vals), -1)
        ok = (bits == ord("0")) | (bits == ord("1"))
        flips = (bits[1:] != bits[:-1]) & ok[1:] & ok[:-1]
        vec_count[code] = [int(c) for c in flips.sum(axis=0)]
    return _toggle_names(ids, widths, scalar_count, vec_count)


def _code_key(code: bytes) -> int | None:
    """A VCD identifier as an integer (its bytes, little-endian); None if over 8 bytes."""
    return int.from_bytes(code, "little") if 0 < len(code) <= 8 else None


def _vcd_header(lines: Sequence[str]) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Net names (``name[i]`` for vector bits, MSB first) and width of every identifier code
    declared in a VCD header."""
    ids: dict[str, list[str]] = {}
    widths: dict[str, int] = {}
    for line in lines:
        if "$var" in line:
            m = _VAR_RE.search(line)
            if m is None:
                raise CostError(f"VCD: cannot parse {line.strip()!r}")
            width, code, name = int(m.group(1)), m.group(2), m.group(3)
            if width == 1:
                names = [f"{name}[{m.group(4)}]" if m.group(4) is not None else name]
            else:
                hi = int(m.group(4)) if m.group(4) is not None else width - 1
                lo = int(m.group(5)) if m.group(5) is not None else 0
                if hi - lo + 1 != width or lo != 0:
                    raise CostError(f"VCD: unsupported range in {line.strip()!r}")
                names = [f"{name}[{i}]" for i in range(width - 1, -1, -1)]  # MSB first
            ids.setdefault(code, []).extend(names)
            widths[code] = width
    return ids, widths


def _vector_change(line: str, widths: Mapping[str, int], vec_last: dict[str, str],
                   vec_count: dict[str, list[int]]) -> None:
    val, code = line[1:].split()
    width = widths.get(code, len(val))
    val = val.rjust(width, "0" if val[0] in "01" else val[0])
    prev = vec_last.get(code)
    if prev is not None:
        cnt = vec_count.setdefault(code, [0] * width)
        for k in range(width):
            a, b = prev[k], val[k]
            if a != b and a in "01" and b in "01":
                cnt[k] += 1
    vec_last[code] = val


def _toggle_names(ids: Mapping[str, list[str]], widths: Mapping[str, int],
                  scalar_count: Mapping[str, int], vec_count: Mapping[str, list[int]]
                  ) -> dict[str, int]:
    out: dict[str, int] = {}
    for code, names in ids.items():
        if widths[code] == 1:
            for nm in names:
                out[nm] = scalar_count.get(code, 0)
        else:
            cnt = vec_count.get(code, [0] * widths[code])
            for nm, k in zip(names, cnt, strict=True):
                out[nm] = k
    return out


def count_toggles_reference(vcd: Path) -> dict[str, int]:
    """:func:`count_toggles`, one line at a time (the definition the fast count is tested
    against, and its fallback for identifiers over 8 characters)."""
    header: list[str] = []
    with open(vcd) as f:
        for line in f:
            if "$enddefinitions" in line:
                break
            header.append(line)
        ids, widths = _vcd_header(header)
        scalar_last: dict[str, str] = {}
        scalar_count: dict[str, int] = {}
        vec_last: dict[str, str] = {}
        vec_count: dict[str, list[int]] = {}
        for line in f:
            c = line[0] if line else ""
            if c in "01xzXZ":
                code = line[1:].rstrip("\n")
                prev = scalar_last.get(code)
                if prev is not None and prev != c and prev in "01" and c in "01":
                    scalar_count[code] = scalar_count.get(code, 0) + 1
                scalar_last[code] = c
            elif c in "bB":
                _vector_change(line, widths, vec_last, vec_count)
    return _toggle_names(ids, widths, scalar_count, vec_count)


def net_bits(nl: Netlist) -> list[str]:
    """Names of every net bit declared in ``nl`` (ports, then wires, vector bits as
    ``name[i]``, each once): the nets a level-1 VCD of the module holds."""
    out = [b for p in nl.ports for b in p.bits()]
    for name, width in nl.wires:
        out += [name] if width == 1 else [f"{name}[{i}]" for i in range(width)]
    return list(dict.fromkeys(out))


def net_toggles_for(nl: Netlist, toggles: Mapping[str, int]) -> dict[str, int]:
    """Transitions of every net a cell pin touches (assign aliases resolved); nets the VCD does
    not know raise CostError, constants count 0."""
    alias = {lhs: rhs for lhs, rhs in nl.assigns}
    out: dict[str, int] = {}
    for inst in nl.instances:
        for net in inst.pins.values():
            if net in out:
                continue
            name = net
            seen = 0
            while name not in toggles and name in alias and seen < 10:
                name, seen = alias[name], seen + 1
            if name in toggles:
                out[net] = toggles[name]
            elif re.fullmatch(r"\d+'[bhd][0-9a-fA-FxXzZ]+", name):
                out[net] = 0
            else:
                raise CostError(f"net {net} of {inst.name} is not in the VCD")
    return out

