"""Hardware cost of L-Mul against an exact IEEE multiplier: yosys synthesis, table and bar chart.

``python -m syn.synth`` (``make synth``) synthesizes, for the L-Mul operand formats of
``lmul.PRESETS`` (every preset narrower than binary32: BF16, FP16, E4M3 (IEEE-style), E5M2):

* level ``mul``: the multiplier alone, ``hdl/lmul_core.v`` (paper offset, no saturation) against
  ``hdl/fp_mul.v`` with full IEEE subnormals (``exact``) and with the L-Mul unit's flush policy
  (``exact_flush``);
* level ``pe``: the shipped MAC processing element's combinational datapath ``hdl/mac_datapath.v``
  (the module ``hdl/mac_pe.v`` instantiates): multiply + exact widening to binary32 + binary32 add,
  with ``MULTIPLIER=0`` (L-Mul) or ``MULTIPLIER=1`` (``fp_mul``, ``SUBNORMALS`` 1 or 0).

Each design goes through one yosys run on the files of ``hdl/`` it can read
(:func:`syn.designs.synth_sources`, as ``make cost`` does: yosys' mapping moves with modules it
has read even when the top never uses them)::

    read_verilog -I hdl <the design's files>; chparam ...; synth -flatten -top T;
    abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX; opt_clean; stat; stat -tech cmos; ltp -noff

and reports the number of two-input gates / muxes / inverters (``cells``), yosys' CMOS
transistor estimate (``transistors``) and the longest topological path in cells (``depth``, a
unit-delay logic depth). ``-flatten`` lets abc optimise across module boundaries and gives one
count per design.

Outputs (atomic writes; default directory ``results/``): ``synth.csv`` (one row per design),
``synth.md`` (tables with ratios L-Mul / exact) and ``synth.png`` (bar chart of the ratios).
Per-design results are cached under ``<out>/cache/synth/`` (git-ignored), keyed by a hash of the
yosys version, the script and the files the design can read, so an interrupted run resumes and a
repeated run is instant; ``--no-cache`` forces fresh synthesis. Designs run one at a time (shared
machines).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import lmul
from sim.lib.cli import run_main
from sim.lib.fileio import atomic_write_bytes, atomic_write_text

from .designs import (
    HDL,
    REPO,
    UNIT_LABELS,
    Design,
    design_files,
    parameter_mismatch,
    parse_parameters,
    synth_sources,
    yosys_front_end,
)
from .designs import designs as _designs
from .report import csv_text as _csv_text
from .report import png_bytes, ratio

#: Default formats: the presets of ``lmul.PRESETS`` narrower than binary32 (the L-Mul operand
#: formats; binary32 is the accumulator). Any IEEE-style preset can be asked for with
#: ``--formats`` (the finite-only OCP E4M3FN is not synthesized: the designs do not pass
#: FINITE_ONLY yet).
FORMATS: tuple[str, ...] = tuple(name for name, f in lmul.PRESETS.items()
                                 if f.width < 32 and not f.finite_only)
LEVELS = ("mul", "pe")
#: Multiplier variants: the L-Mul core and the exact multiplier with its two subnormal policies.
UNITS = ("lmul", "exact", "exact_flush")
GATES = "AND,NAND,OR,NOR,XOR,XNOR,MUX"
CSV_FIELDS = ("level", "format", "unit", "top", "parameters", "cells", "transistors", "depth",
              "seconds", "yosys")


class SynthError(RuntimeError):
    """yosys failed or its output could not be parsed."""


@dataclass
class SynthResult:
    """Parsed yosys statistics of one design.

    Attributes:
        cells: number of cells after ``abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX`` (2-input gates,
            2:1 muxes and inverters).
        transistors: yosys' ``stat -tech cmos`` estimate (NAND/NOR 4, AND/OR 6, XOR/XNOR/MUX 12,
            NOT 2 transistors).
        depth: longest topological path, in cells (``ltp -noff``).
        cell_types: cell count per yosys cell type, e.g. ``{"$_NAND_": 363}``.
        seconds: wall time of the yosys run that produced the numbers (kept in the cache, so a
            re-run from the cache writes identical files).
        yosys: ``yosys -V`` of the tool that produced the numbers.
    """

    cells: int
    transistors: int
    depth: int
    cell_types: dict[str, int]
    seconds: float
    yosys: str


def designs(formats: Sequence[str] = FORMATS, levels: Sequence[str] = LEVELS) -> list[Design]:
    """All synthesis jobs for ``formats`` (names of ``lmul.PRESETS``) x ``levels`` x
    :data:`UNITS` (the ``synth`` rows of :data:`syn.designs.FLOWS`)."""
    return _designs("synth", formats, levels,
                    tuple(n for n, f in lmul.PRESETS.items() if not f.finite_only))


def find_yosys(path: str | None = None) -> str:
    """Path of the yosys executable (``path`` or the one on PATH); SynthError if absent."""
    exe = shutil.which(path or "yosys")
    if exe is None:
        raise SynthError(f"yosys not found ({path or 'yosys'} is not on PATH); install it, e.g. "
                         "`apt-get install yosys`")
    return exe


def yosys_version(exe: str) -> str:
    """First line of ``yosys -V``, e.g. ``Yosys 0.23 (git sha1 7ce5011c24b)``."""
    proc = subprocess.run([exe, "-V"], capture_output=True, text=True, check=False)
    return proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else "unknown"


def yosys_script(design: Design, stat_file: Path, cmos_file: Path, ltp_file: Path,
                 params_file: Path) -> str:
    """The yosys command script for ``design``, writing its reports to the given files
    (``params_file``: the top's elaborated parameters, see :func:`syn.designs.parse_parameters`).
    """
    return "\n".join([
        *yosys_front_end(synth_sources(design.top), HDL, design.top, design.param_dict,
                         params_file),
        f"abc -g {GATES}",
        "opt_clean",
        f"tee -q -o {stat_file} stat",
        f"tee -q -o {cmos_file} stat -tech cmos",
        f"tee -q -o {ltp_file} ltp -noff",
        "",
    ])


_CELLS_RE = re.compile(r"Number of cells:\s+(\d+)")
_TYPE_RE = re.compile(r"^\s+(\$\S+)\s+(\d+)\s*$", re.MULTILINE)
_TRANSISTORS_RE = re.compile(r"Estimated number of transistors:\s+(\d+)")
_LTP_RE = re.compile(r"Longest topological path in \S+ \(length=(\d+)\)")


def parse_reports(stat_text: str, cmos_text: str, ltp_text: str) -> tuple[int, int, int,
                                                                          dict[str, int]]:
    """Parse yosys ``stat``, ``stat -tech cmos`` and ``ltp`` outputs of one flattened module.

    Returns:
        (cells, transistors, depth, cell_types). Raises SynthError when a number is missing or
        the per-type counts do not add up to the total (a sign of a changed report format).
    """
    cells = _CELLS_RE.findall(stat_text)
    trans = _TRANSISTORS_RE.findall(cmos_text)
    depth = _LTP_RE.findall(ltp_text)
    if len(cells) != 1 or len(trans) != 1 or len(depth) != 1:
        raise SynthError("unexpected yosys report (expected one flattened module): "
                         f"{len(cells)} cell totals, {len(trans)} transistor totals, "
                         f"{len(depth)} ltp lengths")
    types = {k: int(v) for k, v in _TYPE_RE.findall(stat_text)}
    if sum(types.values()) != int(cells[0]):
        raise SynthError(f"cell types {types} do not add up to {cells[0]} cells")
    return int(cells[0]), int(trans[0]), int(depth[0]), types


def cache_key(design: Design, version: str) -> str:
    """Hash of everything the numbers depend on: tool version, script, parameters, sources.

    The script is hashed with the repository path removed, so that clones in different
    directories share keys."""
    h = hashlib.sha256()
    h.update(version.encode())
    script = yosys_script(design, Path("S"), Path("C"), Path("L"), Path("P"))
    h.update(script.replace(str(REPO), "").encode())
    for src in design_files(design.top):
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:20]


def synthesize(design: Design, exe: str, version: str, cache_dir: Path | None = None
               ) -> SynthResult:
    """Synthesize one design (or load it from ``cache_dir``) and return its statistics."""
    cache_file = None
    if cache_dir is not None:
        cache_file = cache_dir / f"{design.name}-{cache_key(design, version)}.json"
        if cache_file.exists():
            return SynthResult(**json.loads(cache_file.read_text()))
    with tempfile.TemporaryDirectory(prefix="synth-") as tmp:
        tmpd = Path(tmp)
        files = tmpd / "stat.txt", tmpd / "cmos.txt", tmpd / "ltp.txt"
        params_file = tmpd / "params.il"
        script = tmpd / "run.ys"
        script.write_text(yosys_script(design, *files, params_file))
        t0 = time.perf_counter()
        proc = subprocess.run([exe, "-q", "-l", str(tmpd / "yosys.log"), "-s", str(script)],
                              capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise SynthError(f"yosys failed on {design.name} (exit {proc.returncode}):\n{tail}")
        cells, trans, depth, types = parse_reports(*(f.read_text() for f in files))
        try:
            wrong = parameter_mismatch(design, parse_parameters(params_file.read_text(),
                                                                design.top))
        except ValueError as err:
            raise SynthError(f"{design.name}: {err}") from None
        if wrong:
            raise SynthError(wrong)
    result = SynthResult(cells, trans, depth, types, round(seconds, 2), version)
    if cache_file is not None:
        for stale in cache_file.parent.glob(f"{design.name}-*.json"):
            stale.unlink(missing_ok=True)  # results of older sources: never read again
        atomic_write_text(cache_file, json.dumps(asdict(result), indent=1))
    return result


# ------------------------------------------------------------------------------------ reports
def rows_for(results: dict[Design, SynthResult]) -> list[dict[str, object]]:
    """CSV rows (see :data:`CSV_FIELDS`), in job order."""
    return [{
        "level": d.level, "format": d.fmt, "unit": d.unit, "top": d.top,
        "parameters": " ".join(f"{k}={v}" for k, v in d.params),
        "cells": r.cells, "transistors": r.transistors, "depth": r.depth,
        "seconds": r.seconds, "yosys": r.yosys,
    } for d, r in results.items()]


def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a ``synth.csv`` written by this module."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def csv_text(rows: list[dict[str, object]]) -> str:
    """CSV text of ``rows``."""
    return _csv_text(rows, CSV_FIELDS)


def _index(rows: list[dict[str, object]]) -> dict[tuple[str, str, str], dict[str, object]]:
    return {(str(r["level"]), str(r["format"]), str(r["unit"])): r for r in rows}


def ratios(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Per (level, format, baseline): L-Mul / exact ratios of cells, transistors and depth."""
    idx = _index(rows)
    out = []
    for (level, fmt, unit), base in idx.items():
        if unit == "lmul" or (level, fmt, "lmul") not in idx:
            continue
        lm = idx[(level, fmt, "lmul")]
        out.append({
            "level": level, "format": fmt, "baseline": unit,
            **{k: ratio(float(lm[k]), float(base[k])) for k in ("cells", "transistors", "depth")},
        })
    return out


def markdown(rows: list[dict[str, object]]) -> str:
    """The ``synth.md`` report: summary of ratios, then one table per level with all numbers."""
    version = next((str(r["yosys"]) for r in rows), "unknown")
    lines = [
        "<!-- generated by `make synth` (python -m syn.synth); do not edit by hand -->",
        "",
        f"Synthesis with {version}: `synth -flatten -top T; abc -g {GATES}; stat`; "
        "transistors from `stat -tech cmos`; depth = longest path in cells (`ltp -noff`).",
        "",
        "**L-Mul / exact ratios** (below 1: L-Mul is cheaper)",
        "",
        "| level | format | baseline | cells | transistors | depth |",
        "|---|---|---|---:|---:|---:|",
    ]
    level_names = {"mul": "multiplier", "pe": "PE datapath"}
    for r in ratios(rows):
        lines.append(f"| {level_names[str(r['level'])]} | {str(r['format']).upper()} | "
                     f"{UNIT_LABELS[str(r['baseline'])]} | {r['cells']:.3f} | "
                     f"{r['transistors']:.3f} | {r['depth']:.3f} |")
    idx = _index(rows)
    for level in LEVELS:
        if not any(k[0] == level for k in idx):
            continue
        title = ("Multiplier alone (`lmul_core` vs `fp_mul`)" if level == "mul" else
                 "MAC PE datapath (`mac_datapath`): multiply + widen to binary32 + binary32 add")
        lines += ["", f"**{title}**", "",
                  "| format | unit | cells | transistors | depth | cells vs exact |",
                  "|---|---|---:|---:|---:|---:|"]
        for (lv, fmt, unit), r in idx.items():
            if lv != level:
                continue
            base = idx.get((lv, fmt, "exact"))
            rel = f"{ratio(float(r['cells']), float(base['cells'])):.3f}" if base else "-"
            lines.append(f"| {fmt.upper()} | {UNIT_LABELS[unit]} | {r['cells']} | "
                         f"{r['transistors']} | {r['depth']} | {rel} |")
    return "\n".join(lines) + "\n"


def plot_png(rows: list[dict[str, object]]) -> bytes:
    """Bar chart of the L-Mul / exact ratios (cells, transistors, depth), one panel per level
    and baseline; returns PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rats = ratios(rows)
    levels = [lv for lv in LEVELS if any(r["level"] == lv for r in rats)]
    baselines = ("exact", "exact_flush")
    fig, axes = plt.subplots(len(levels), 2, figsize=(11, 3.6 * len(levels)), squeeze=False)
    metrics = ("cells", "transistors", "depth")
    colors = ("#4c72b0", "#55a868", "#c44e52")
    for i, level in enumerate(levels):
        for j, baseline in enumerate(baselines):
            ax = axes[i][j]
            sel = [r for r in rats if r["level"] == level and r["baseline"] == baseline]
            fmts = [str(r["format"]).upper() for r in sel]
            width = 0.26
            for k, (metric, color) in enumerate(zip(metrics, colors, strict=True)):
                xs = [x + (k - 1) * width for x in range(len(sel))]
                vals = [float(r[metric]) for r in sel]
                bars = ax.bar(xs, vals, width, label=metric, color=color)
                ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
            ax.axhline(1.0, color="black", lw=0.8, ls="--")
            ax.set_xticks(range(len(sel)), fmts)
            ax.set_ylim(0, 1.25)
            ax.set_ylabel("L-Mul / exact")
            what = "multiplier" if level == "mul" else "PE datapath (mul + widen + fp32 add)"
            ax.set_title(f"{what} vs {UNIT_LABELS[baseline]}", fontsize=9)
            if i == 0 and j == 0:
                ax.legend(fontsize=8, loc="upper left", ncol=3)
    fig.suptitle("Synthesized cost of L-Mul relative to an exact multiplier (yosys, lower is "
                 "cheaper)", fontsize=10)
    fig.tight_layout()
    return png_bytes(fig)


def write_outputs(rows: list[dict[str, object]], out_dir: Path, stem: str = "synth",
                  plot: bool = True) -> list[Path]:
    """Write ``<stem>.csv``, ``<stem>.md`` and (optionally) ``<stem>.png`` atomically."""
    paths = [out_dir / f"{stem}.csv", out_dir / f"{stem}.md"]
    atomic_write_text(paths[0], csv_text(rows))
    atomic_write_text(paths[1], markdown(rows))
    if plot:
        paths.append(out_dir / f"{stem}.png")
        atomic_write_bytes(paths[2], plot_png(rows))
    return paths


def run(formats: Sequence[str] = FORMATS, levels: Sequence[str] = LEVELS,
        out_dir: Path = REPO / "results", use_cache: bool = True, yosys: str | None = None,
        plot: bool = True, progress: bool = True) -> list[dict[str, object]]:
    """Synthesize every design, write the outputs and return the CSV rows."""
    from tqdm import tqdm

    exe = find_yosys(yosys)
    version = yosys_version(exe)
    jobs = designs(formats, levels)
    cache_dir = out_dir / "cache" / "synth" if use_cache else None
    results: dict[Design, SynthResult] = {}
    bar = tqdm(jobs, desc="yosys", unit="design", disable=not progress, file=sys.stderr)
    for design in bar:
        bar.set_postfix_str(design.name)
        results[design] = synthesize(design, exe, version, cache_dir)
    rows = rows_for(results)
    write_outputs(rows, out_dir, plot=plot)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the process exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--formats", default=",".join(FORMATS),
                    help=f"comma-separated names of lmul.PRESETS (default: {','.join(FORMATS)})")
    ap.add_argument("--levels", default=",".join(LEVELS),
                    help="comma-separated: mul (multiplier alone), pe (PE datapath)")
    ap.add_argument("--out", type=Path, default=REPO / "results",
                    help="output directory (default: results/)")
    ap.add_argument("--no-cache", action="store_true", help="ignore and do not write the cache")
    ap.add_argument("--no-plot", action="store_true", help="skip the PNG")
    ap.add_argument("--yosys", default=None, help="yosys executable (default: from PATH)")
    args = ap.parse_args(argv)

    def body() -> int:
        rows = run([f.strip().lower() for f in args.formats.split(",") if f.strip()],
                   [lv.strip().lower() for lv in args.levels.split(",") if lv.strip()],
                   args.out, use_cache=not args.no_cache, yosys=args.yosys,
                   plot=not args.no_plot)
        print(markdown(rows))
        print(f"wrote {args.out}/synth.csv, synth.md" + ("" if args.no_plot else ", synth.png"))
        return 0

    return run_main("synth", body, (SynthError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
