"""The designs that synthesis (:mod:`syn.synth`) and the cell-library cost flow (:mod:`syn.cost`)
measure, and the front end of the yosys script both flows run.

A :class:`Design` is a top module of ``hdl/`` with its Verilog parameters. Per format (a name of
``lmul.PRESETS``) the designs of a level are:

==========================  =============================================================
level (flows)               designs (unit: top, parameters besides EXP_BITS / MAN_BITS)
==========================  =============================================================
``mul`` (synth, cost)       lmul: ``lmul_core`` SATURATE=0; exact / exact_flush: ``fp_mul``
                            SUBNORMALS=1 / 0
``pe`` (synth)              the combinational PE datapath ``mac_datapath``: lmul:
                            SATURATE=0 MULTIPLIER=0; exact / exact_flush: MULTIPLIER=1
                            SUBNORMALS=1 / 0
``pe`` (cost)               the clocked PE ``mac_pe``: lmul / exact: MULTIPLIER=0 / 1
``array`` (cost)            ``mac_array`` ROWS=COLS=4: lmul / exact: MULTIPLIER=0 / 1
``dot`` (cost)              the energy-accuracy sweep (:func:`dot_sweep`): the sequential
                            ``mac_pe`` and the fused ``dot_pe`` (K, ALIGN_BITS, optionally
                            PIPELINE=1..3), each with the exact multiplier, L-Mul at the paper
                            offset and L-Mul at :data:`TUNED_OFFSET`
``cell`` (cost)             the LSTM cell's arithmetic outside the array
                            (:func:`cell_units`): the element-wise multiplier (lmul:
                            ``lmul_core``, exact: ``fp_mul`` SUBNORMALS=1), and, shared by
                            both (unit ``common``), the binary32 ``fp_add``, ``act_unit``
                            sigmoid and tanh (set :data:`CELL_ACT_SET`), ``fp_to_fmt`` and
                            ``fmt_to_fp32``
==========================  =============================================================

:data:`FLOWS` is that table. Both flows start their yosys script with :func:`yosys_front_end`
(read every Verilog file of ``hdl/``, set the parameters, write the top's parameter values as
yosys elaborated them, synthesize flattened), so the parameters a report names can be checked
against the ones the netlist was built with (:func:`parse_parameters`,
:func:`parameter_mismatch`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import lmul
from sim.rtlsim import design_sources

REPO = Path(__file__).resolve().parents[1]
HDL = REPO / "hdl"
ARRAY_ROWS = ARRAY_COLS = 4
UNIT_LABELS = {"lmul": "L-Mul", "exact": "exact (IEEE subnormals)", "common": "common",
               "exact_flush": "exact (flush, as L-Mul)"}


@dataclass(frozen=True)
class Design:
    """One design to measure.

    Attributes:
        level: ``mul``, ``pe`` or ``array`` (see the module docstring). fmt: preset name.
        unit: ``lmul``, ``exact`` or ``exact_flush``. top: top module of ``hdl/``.
        params: Verilog parameters as (name, value) pairs, in the order they are set.
        clock: the clock port of a clocked design, None for a combinational one.
        variant: what tells designs of one level, format and unit apart (the ``dot`` level:
            ``seq`` or ``k<K>-a<ALIGN_BITS>``), empty otherwise.
    """

    level: str
    fmt: str
    unit: str
    top: str
    params: tuple[tuple[str, int], ...]
    clock: str | None = None
    variant: str = ""

    @property
    def name(self) -> str:
        """Short label, e.g. ``mul-bf16-lmul`` (``dot-bf16-lmul_o6-k8-a16`` with a variant)."""
        base = f"{self.level}-{self.fmt}-{self.unit}"
        return f"{base}-{self.variant}" if self.variant else base

    @property
    def param_dict(self) -> dict[str, int]:
        """Verilog parameters as a dict."""
        return dict(self.params)


def preset(name: str, choices: Sequence[str]) -> lmul.Format:
    """The format ``lmul.PRESETS[name]``; ValueError naming ``choices`` if ``name`` is not one
    of them."""
    if name not in choices or name not in lmul.PRESETS:
        raise ValueError(f"unknown format {name!r}; choose from {', '.join(choices)}")
    return lmul.PRESETS[name]


def _em(name: str) -> tuple[tuple[str, int], tuple[str, int]]:
    f = lmul.PRESETS[name]
    return ("EXP_BITS", f.exp_bits), ("MAN_BITS", f.man_bits)


def multipliers(name: str) -> list[Design]:
    """``lmul_core`` (paper offset, no saturation) and ``fp_mul`` with and without subnormals."""
    em = _em(name)
    return [Design("mul", name, "lmul", "lmul_core", (*em, ("SATURATE", 0))),
            *(Design("mul", name, unit, "fp_mul", (*em, ("SUBNORMALS", sub)))
              for unit, sub in (("exact", 1), ("exact_flush", 0)))]


def datapaths(name: str) -> list[Design]:
    """``mac_datapath`` (multiply + widen to binary32 + binary32 add, combinational) with the
    L-Mul core and with ``fp_mul`` (both subnormal policies)."""
    em = _em(name)
    return [Design("pe", name, "lmul", "mac_datapath", (*em, ("SATURATE", 0), ("MULTIPLIER", 0))),
            *(Design("pe", name, unit, "mac_datapath", (*em, ("MULTIPLIER", 1),
                                                        ("SUBNORMALS", sub)))
              for unit, sub in (("exact", 1), ("exact_flush", 0)))]


def processing_elements(name: str) -> list[Design]:
    """``mac_pe`` (the clocked MAC processing element) with the L-Mul and the exact
    multiplier."""
    return [Design("pe", name, unit, "mac_pe", (*_em(name), ("MULTIPLIER", mult)), "clk")
            for unit, mult in (("lmul", 0), ("exact", 1))]


def arrays(name: str) -> list[Design]:
    """``mac_array`` of :data:`ARRAY_ROWS` x :data:`ARRAY_COLS` PEs, both multipliers."""
    return [Design("array", name, unit, "mac_array",
                   (("ROWS", ARRAY_ROWS), ("COLS", ARRAY_COLS), *_em(name),
                    ("MULTIPLIER", mult)), "clk")
            for unit, mult in (("lmul", 0), ("exact", 1))]


#: L-Mul offset per format found best by ``make tune`` (docs/results/tune.md: BF16 offset 6).
TUNED_OFFSET = {"bf16": 6}
#: The ``dot`` level's grid: products per fused step and window widths (276 = exact).
DOT_KS = (4, 8, 16)
DOT_ALIGN_BITS = (8, 16, 32, 276)


def dot_units(name: str) -> list[tuple[str, tuple[tuple[str, int], ...]]]:
    """The multipliers of the ``dot`` level as (unit, parameters): ``exact`` (MULTIPLIER=1),
    ``lmul`` (paper offset) and, where :data:`TUNED_OFFSET` has the format, ``lmul_o<OFFSET>``."""
    paper = lmul.paper_offset(lmul.PRESETS[name].man_bits)
    out = [("exact", (("MULTIPLIER", 1),)), ("lmul", (("MULTIPLIER", 0), ("OFFSET", paper)))]
    if name in TUNED_OFFSET:
        off = TUNED_OFFSET[name]
        out.append((f"lmul_o{off}", (("MULTIPLIER", 0), ("OFFSET", off))))
    return out


def dot_sweep(name: str, ks: Sequence[int] = DOT_KS,
              align_bits: Sequence[int] = DOT_ALIGN_BITS,
              units: Sequence[str] | None = None, sequential: bool = True,
              pipelines: Sequence[int] = (0,), array_units: Sequence[str] = ()) -> list[Design]:
    """The energy-accuracy sweep of one format: per multiplier of :func:`dot_units` (those
    named in ``units``, all if None) the sequential ``mac_pe`` (variant ``seq``, if
    ``sequential``) and ``dot_pe`` for every K x ALIGN_BITS x ``pipelines`` (variant
    ``k<K>-a<ALIGN_BITS>``; with PIPELINE=1, the products registered before the sum,
    ``k<K>-a<ALIGN_BITS>-p1``; PIPELINE=2, the products pre-aligned and registered, ``-p2``;
    PIPELINE=3, both registers, ``-p3``).
    PIPELINE=0 designs leave the parameter at dot_pe's default (so
    their names, parameters and cached results are those of the single-stage PE). For the
    multipliers of ``array_units`` also the :data:`ARRAY_ROWS` x :data:`ARRAY_COLS`
    ``mac_array`` of fused PEs (DOT_K = K, variant ``k<K>-a<ALIGN_BITS>-array``, with the PEs'
    PIPELINE p > 0 ``k<K>-a<ALIGN_BITS>-p<p>-array``), per K x ALIGN_BITS x ``pipelines``
    (PIPELINE=0 arrays, as the PEs, leave the parameter at its default). ValueError on an
    unknown unit or a K / ALIGN_BITS / PIPELINE outside ``dot_pe``'s range."""
    em = _em(name)
    avail = dict(dot_units(name))
    for u in [*(units or ()), *array_units]:
        if u not in avail:
            raise ValueError(f"unknown dot unit {u!r} for {name}; choose from "
                             f"{', '.join(avail)}")
    for k in ks:
        if not 1 <= k <= 64:
            raise ValueError(f"K={k} outside dot_pe's range 1..64")
    for a in align_bits:
        if not 1 <= a <= 276:
            raise ValueError(f"ALIGN_BITS={a} outside dot_pe's range 1..276")
    for pl in pipelines:
        if pl not in (0, 1, 2, 3):
            raise ValueError(f"PIPELINE={pl} outside dot_pe's range 0..3")
    out = []
    for unit, mult in avail.items():
        if units is not None and unit not in units:
            continue
        if sequential:
            out.append(Design("dot", name, unit, "mac_pe", (*em, *mult), "clk", "seq"))
        out += [Design("dot", name, unit, "dot_pe",
                       (("K", k), ("ALIGN_BITS", a), *em, *mult,
                        *((("PIPELINE", pl),) if pl else ())),
                       "clk", f"k{k}-a{a}" + (f"-p{pl}" if pl else ""))
                for k in ks for a in align_bits for pl in pipelines]
    for unit, mult in avail.items():
        if unit in array_units:
            out += [Design("dot", name, unit, "mac_array",
                           (("ROWS", ARRAY_ROWS), ("COLS", ARRAY_COLS), *em, *mult,
                            ("DOT_K", k), ("ALIGN_BITS", a),
                            *((("PIPELINE", pl),) if pl else ())),
                           "clk", f"k{k}-a{a}" + (f"-p{pl}" if pl else "") + "-array")
                    for k in ks for a in align_bits for pl in pipelines]
    return out


def array_pe(design: Design) -> tuple[str, dict[str, int]] | None:
    """The processing element of a ``mac_array`` design and the parameters each of its
    instances must have: ``dot_pe`` with K = DOT_K, ALIGN_BITS, PIPELINE (DOT_K > 1; mac_array
    passes its PIPELINE, default 0, on) or ``mac_pe`` (DOT_K = 1), and the operand format,
    multiplier and (where the design sets it) OFFSET of the array. None for any other top."""
    if design.top != "mac_array":
        return None
    p = design.param_dict
    shared = {k: p[k] for k in ("EXP_BITS", "MAN_BITS", "OFFSET", "SATURATE", "FINITE_ONLY",
                                "MULTIPLIER") if k in p}
    if p.get("DOT_K", 1) > 1:
        return "dot_pe", {"K": p["DOT_K"], "ALIGN_BITS": p.get("ALIGN_BITS", 276),
                          "PIPELINE": p.get("PIPELINE", 0), **shared}
    return "mac_pe", shared


#: The activation unit's parameter set of the ``cell`` level: the cheapest shipped set whose
#: MNIST / FashionMNIST accuracy CI includes 0 (docs/results/act_accuracy.md).
CELL_ACT_SET = "pwl64"


def cell_units(name: str) -> list[Design]:
    """The ``cell`` level of one operand format: what the LSTM cell computes besides the gate
    products (c = f*c + i*g, h = o*tanh(c), the activations, the conversions to and from the
    format), one combinational unit per design (variant = the operation): ``ewmul`` per
    multiplier (lmul: ``lmul_core`` at the paper offset; exact: ``fp_mul`` with subnormals),
    then the units both share (unit ``common``): ``add`` (binary32 ``fp_add``), ``sigmoid`` and
    ``tanh`` (``act_unit`` FUNC 0 / 1 of :data:`CELL_ACT_SET`), ``to_fmt`` (``fp_to_fmt``) and
    ``widen`` (``fmt_to_fp32``)."""
    em = _em(name)
    segments, coef_bits = lmul.ACT_PRESETS[CELL_ACT_SET]
    act = (("SEGMENTS", segments), ("COEF_BITS", coef_bits))
    return [Design("cell", name, "lmul", "lmul_core", (*em, ("SATURATE", 0)), None, "ewmul"),
            Design("cell", name, "exact", "fp_mul", (*em, ("SUBNORMALS", 1)), None, "ewmul"),
            Design("cell", name, "common", "fp_add", (("EXP_BITS", 8), ("MAN_BITS", 23)), None,
                   "add"),
            Design("cell", name, "common", "act_unit", (("FUNC", 0), *act), None, "sigmoid"),
            Design("cell", name, "common", "act_unit", (("FUNC", 1), *act), None, "tanh"),
            Design("cell", name, "common", "fp_to_fmt", em, None, "to_fmt"),
            Design("cell", name, "common", "fmt_to_fp32", em, None, "widen")]


#: flow -> level -> the designs of one format at that level (see the module docstring).
FLOWS: dict[str, dict[str, Callable[[str], list[Design]]]] = {
    "synth": {"mul": multipliers, "pe": datapaths},
    "cost": {"mul": multipliers, "pe": processing_elements, "array": arrays,
             "dot": dot_sweep, "cell": cell_units},
}


def check_levels(flow: str, levels: Sequence[str]) -> None:
    """ValueError if a level is not one of ``flow``'s."""
    for level in levels:
        if level not in FLOWS[flow]:
            raise ValueError(f"unknown level {level!r}; choose from {', '.join(FLOWS[flow])}")


def designs(flow: str, formats: Sequence[str], levels: Sequence[str],
            choices: Sequence[str]) -> list[Design]:
    """The designs of ``flow`` for ``formats`` (each one of ``choices``) x ``levels``, format by
    format, levels in the given order."""
    out = []
    for name in formats:
        preset(name, choices)
        check_levels(flow, levels)
        for level in levels:
            out += FLOWS[flow][level](name)
    return out


# ---------------------------------------------------------------------------------- sources
def hdl_sources(hdl: Path = HDL) -> list[Path]:
    """Every Verilog module file of ``hdl/`` (read together, ``-I hdl`` for the includes);
    ValueError if there is none."""
    srcs = sorted(hdl.glob("*.v"))
    if not srcs:
        raise ValueError(f"no Verilog sources in {hdl}")
    return srcs


def design_files(top: str, hdl: Path = HDL) -> list[Path]:
    """The files of ``hdl`` a design with top module ``top`` can read: its file, every module
    file it names and every include (:func:`sim.rtlsim.design_sources`, the list the proof's
    and the Verilator builds' cache keys use). FileNotFoundError if ``top`` has no file."""
    return design_sources(top, [hdl])


def synth_sources(top: str, hdl: Path = HDL) -> list[Path]:
    """The module files yosys reads for ``top``: the ``.v`` files of :func:`design_files` (the
    includes come through ``-I``). Only these: yosys' mapping depends on every module it has
    read, used or not (the order of its internal names changes), so reading all of ``hdl/``
    would make a netlist depend on files the design does not use."""
    return [p for p in design_files(top, hdl) if p.suffix == ".v"]


def hdl_includes(hdl: Path = HDL) -> list[Path]:
    """The include files of ``hdl/`` (``*.vh``): part of every design's sources."""
    return sorted(hdl.glob("*.vh"))


# ------------------------------------------------------------------------ yosys front end
def yosys_front_end(sources: Sequence[Path], include: Path, top: str,
                    params: Mapping[str, int], params_file: Path | None = None,
                    synth: str = "synth -flatten") -> list[str]:
    """The first commands of every synthesis script: read ``sources``, set ``params`` on
    ``top``, (with ``params_file``) write the top's elaborated module header, parameters
    included, for :func:`parse_parameters`, then ``synth -flatten -top`` (``synth``: another
    synthesis command, e.g. ``synth -flatten -booth`` or ``synth_ecp5 -json F``)."""
    lines = [f"read_verilog -I {include} {' '.join(str(s) for s in sources)}"]
    if params:
        lines.append(f"chparam {' '.join(f'-set {k} {v}' for k, v in params.items())} {top}")
    if params_file is not None:
        lines.append(f"tee -q -o {params_file} dump {top}")
    lines.append(f"{synth} -top {top}")
    return lines


# ``module \\name``, or a module yosys derived from ``name`` for a parameter set:
# ``module $paramod$<hash>\\name`` / ``module $paramod\\name\\P=value...``
_MODULE_RE = re.compile(r"^module (?:\\|\$paramod\$[0-9a-f]+\\|\$paramod\\)([^\\\s]+)\S*$",
                        re.M)
_PARAM_RE = re.compile(r"^  parameter (?:signed )?(?:real )?\\(\S+) (.*)$")
_SIZED_RE = re.compile(r"^\d+'([01]+)$")


def parse_parameters(dump: str, top: str) -> dict[str, int]:
    """The integer parameter values of module ``top`` in a yosys ``dump`` (RTLIL) of it: the
    header lines ``parameter \\NAME value`` (decimal, or ``W'bits`` binary) right after
    ``module \\top`` (or after the header of the one module yosys derived from ``top``,
    ``module $paramod...\\top``). ValueError if the module is not in the dump, or if it holds
    more than one module of that name."""
    found = [m for m in _MODULE_RE.finditer(dump) if m.group(1) == top]
    if len(found) > 1:
        raise ValueError(f"yosys dump has {len(found)} modules {top}")
    for m in found:
        out: dict[str, int] = {}
        for line in dump[m.end():].lstrip("\n").splitlines():
            p = _PARAM_RE.match(line)
            if p is None:
                break
            value = p.group(2)
            sized = _SIZED_RE.match(value)
            if sized:
                out[p.group(1)] = int(sized.group(1), 2)
            elif re.fullmatch(r"-?\d+", value):
                out[p.group(1)] = int(value)
        return out
    raise ValueError(f"yosys dump has no module {top}")


def parameter_mismatch(design: Design, built: Mapping[str, int]) -> str | None:
    """How the parameters a netlist was built with (``built``, from :func:`parse_parameters`)
    differ from ``design``'s, or None when every parameter of ``design`` has its value."""
    bad = [f"{k}={built.get(k, 'unset')} (want {v})" for k, v in design.params
           if built.get(k) != v]
    return f"{design.name} netlist was built with {', '.join(bad)}" if bad else None
