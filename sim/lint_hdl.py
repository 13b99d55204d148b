"""Static checks of the RTL: Verilator lint and the house style of every Verilog file.

Usage: ``python -m sim.lint_hdl [module ...]``. Exit status 1 if any check fails.

* Verilator ``--lint-only -Wall`` of every module in hdl/ for its defaults, every format of the
  model's table ``lmul.PRESETS`` that the module accepts (its EXP_BITS / MAN_BITS range, read from
  the module's own parameter checks), and extra sets: MULTIPLIER, SKID, SUBNORMALS, OFFSET,
  SATURATE and array-shape variants. The test-only wrappers in sim/hdl/ are linted too, with
  their defaults.
* Style of every ``.v`` file in hdl/ and sim/hdl/: starts with `` `resetall``, `` `timescale
  1ns/1ps``, `` `default_nettype none`` and ends with `` `default_nettype wire``; one module per
  file, named like the file; the paper's default OFFSET written only in ``hdl/lmul_defs.vh``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import lmul

REPO = Path(__file__).resolve().parents[1]
HDL = REPO / "hdl"
SIM_HDL = REPO / "sim" / "hdl"
DEFS = HDL / "lmul_defs.vh"

#: EXP_BITS / MAN_BITS range of a module without its own check (it inherits lmul_core's, which
#: is the model's L-Mul range).
LMUL_RANGE = (tuple(lmul.LMUL_EXP_BITS_RANGE), tuple(lmul.LMUL_MAN_BITS_RANGE))

#: Extra parameter sets per module, on top of the defaults and the presets.
EXTRA_SETS: dict[str, list[dict[str, int]]] = {
    "lmul_core": [{"OFFSET": 0, "SATURATE": 1},
                  {"EXP_BITS": 2, "MAN_BITS": 1, "SATURATE": 1, "FINITE_ONLY": 1},
                  {"EXP_BITS": 7, "MAN_BITS": 23, "FINITE_ONLY": 1}],
    "fp_mul": [{"EXP_BITS": 2, "MAN_BITS": 1, "FINITE_ONLY": 1},
               {"EXP_BITS": 7, "MAN_BITS": 23, "SUBNORMALS": 0, "FINITE_ONLY": 1}],
    "lmul_unit": [{"OFFSET": 0, "SATURATE": 1}, {"SKID": 1},
                  {"EXP_BITS": 4, "MAN_BITS": 3, "SKID": 1}],
    "fp_add": [{"EXP_BITS": 11, "MAN_BITS": 52}, {"EXP_BITS": 2, "MAN_BITS": 1}],
    "fp_classify": [{"EXP_BITS": 11, "MAN_BITS": 52}, {"EXP_BITS": 2, "MAN_BITS": 1},
                    {"EXP_BITS": 2, "MAN_BITS": 1, "FINITE_ONLY": 1}],
    "fp_round": [{"EXP_BITS": 11, "MAN_BITS": 52}, {"EXP_BITS": 2, "MAN_BITS": 1},
                 {"EXP_BITS": 4, "MAN_BITS": 3, "FINITE_ONLY": 1}],
    "mac_datapath": [{"MULTIPLIER": 1}, {"MULTIPLIER": 1, "SUBNORMALS": 0},
                     {"EXP_BITS": 4, "MAN_BITS": 3, "MULTIPLIER": 1},
                     {"OFFSET": 0, "SATURATE": 1}],
    "mac_pe": [{"MULTIPLIER": 1}, {"EXP_BITS": 5, "MAN_BITS": 2, "MULTIPLIER": 1}],
    "mac_array": [{"ROWS": 2, "COLS": 3}, {"ROWS": 1, "COLS": 1}, {"MULTIPLIER": 1},
                  {"SKID": 1}, {"ROWS": 1, "COLS": 2, "SKID": 1, "MULTIPLIER": 1},
                  {"ROWS": 3, "COLS": 2, "EXP_BITS": 4, "MAN_BITS": 3, "MULTIPLIER": 1,
                   "SKID": 1},
                  {"DOT_K": 4}, {"ROWS": 2, "COLS": 3, "DOT_K": 2, "ALIGN_BITS": 24,
                                 "MULTIPLIER": 1, "SKID": 1},
                  {"ROWS": 2, "COLS": 2, "EXP_BITS": 4, "MAN_BITS": 3, "FINITE_ONLY": 1,
                   "MULTIPLIER": 1},
                  {"ROWS": 2, "COLS": 2, "DOT_K": 4, "ALIGN_BITS": 8, "PIPELINE": 1},
                  {"ROWS": 2, "COLS": 3, "DOT_K": 2, "ALIGN_BITS": 24, "MULTIPLIER": 1,
                   "PIPELINE": 3}],
    "stream_skid": [{"SKID": 1}, {"WIDTH": 1, "SKID": 1}, {"WIDTH": 1}],
    "lzc": [{"WIDTH": 1}, {"WIDTH": 2}, {"WIDTH": 24}, {"WIDTH": 28}, {"WIDTH": 1024}],
    "fp_dot_sum": [{"TERMS": 2, "ALIGN_BITS": 1}, {"TERMS": 3, "ALIGN_BITS": 24},
                   {"TERMS": 17, "ALIGN_BITS": 32}, {"TERMS": 65, "ALIGN_BITS": 276}],
    "mul_widen": [{"MULTIPLIER": 1}, {"MULTIPLIER": 1, "SUBNORMALS": 0},
                  {"OFFSET": 0, "SATURATE": 1}],
    "dot_datapath": [{"K": 1}, {"K": 2, "ALIGN_BITS": 24, "MULTIPLIER": 1},
                     {"K": 8, "ALIGN_BITS": 32}, {"K": 16, "MULTIPLIER": 1},
                     {"K": 64, "ALIGN_BITS": 1},
                     {"EXP_BITS": 4, "MAN_BITS": 3, "K": 3, "MULTIPLIER": 1, "SUBNORMALS": 0}],
    # every shipped activation set (the defaults are pwl16 sigmoid)
    "act_unit": [lmul.act_config(name, func).verilog_parameters()
                 for name in lmul.ACT_PRESETS for func in lmul.ACT_FUNCS],
    "dot_pe": [{"K": 1, "ALIGN_BITS": 24}, {"K": 8, "MULTIPLIER": 1},
               {"EXP_BITS": 4, "MAN_BITS": 3, "K": 2, "ALIGN_BITS": 32, "MULTIPLIER": 1},
               {"K": 4, "ALIGN_BITS": 8, "PIPELINE": 1},
               {"K": 1, "ALIGN_BITS": 276, "MULTIPLIER": 1, "PIPELINE": 1},
               {"K": 4, "ALIGN_BITS": 8, "PIPELINE": 2},
               {"K": 1, "ALIGN_BITS": 276, "MULTIPLIER": 1, "PIPELINE": 2},
               {"EXP_BITS": 4, "MAN_BITS": 3, "K": 3, "ALIGN_BITS": 24, "PIPELINE": 2},
               {"K": 4, "ALIGN_BITS": 8, "PIPELINE": 3},
               {"K": 1, "ALIGN_BITS": 276, "MULTIPLIER": 1, "PIPELINE": 3}],
    "dot_prealign": [{"K": 1, "ALIGN_BITS": 1}, {"K": 64, "ALIGN_BITS": 8}],
    "dot_sum_prealigned": [{"K": 1, "ALIGN_BITS": 1}, {"K": 3, "ALIGN_BITS": 24},
                           {"K": 64, "ALIGN_BITS": 276}],
}
#: fp_mul's flush variant for every preset it accepts.
SUBNORMAL_VARIANT = {"fp_mul": {"SUBNORMALS": 0}}


def design_sources() -> list[str]:
    """The design files of hdl/ (every module; the tools elaborate what the top uses)."""
    return sorted(str(p) for p in HDL.glob("*.v"))


def has_parameter(module: str, name: str) -> bool:
    """Whether hdl/<module>.v declares ``parameter integer <name>``."""
    text = (HDL / f"{module}.v").read_text()
    return re.search(rf"parameter\s+integer\s+{name}\b", text) is not None


def format_range(module: str) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """((EXP_BITS lo, hi), (MAN_BITS lo, hi)) that ``module`` accepts, from its
    ``PARAMETER_ERROR__<module>__X_BITS_must_be_<lo>_to_<hi>`` checks; None for a module without
    an EXP_BITS parameter. A module that passes the widths on without checking them itself
    inherits :data:`LMUL_RANGE`."""
    text = (HDL / f"{module}.v").read_text()
    if not re.search(r"parameter\s+integer\s+EXP_BITS\b", text):
        return None
    ranges = []
    for name, default in (("EXP_BITS", LMUL_RANGE[0]), ("MAN_BITS", LMUL_RANGE[1])):
        m = re.search(rf"PARAMETER_ERROR__{module}__{name}_must_be_(\d+)_to_(\d+)", text)
        ranges.append((int(m.group(1)), int(m.group(2))) if m else default)
    return ranges[0], ranges[1]


def parameter_sets(module: str) -> list[dict[str, int]]:
    """Defaults, every preset format the module accepts (EXP_BITS, MAN_BITS), with fp_mul's
    flush variant, then the module's extra sets."""
    sets: list[dict[str, int]] = [{}]
    rng = format_range(module)
    if rng is not None:
        (elo, ehi), (mlo, mhi) = rng
        finite_only = has_parameter(module, "FINITE_ONLY")
        for fmt in lmul.PRESETS.values():
            if elo <= fmt.exp_bits <= ehi and mlo <= fmt.man_bits <= mhi:
                p = {"EXP_BITS": fmt.exp_bits, "MAN_BITS": fmt.man_bits}
                if fmt.finite_only:
                    if not finite_only:
                        continue  # same widths as an IEEE-style preset, already linted
                    p["FINITE_ONLY"] = 1
                sets.append(p)
                if module in SUBNORMAL_VARIANT:
                    sets.append({**p, **SUBNORMAL_VARIANT[module]})
    return sets + EXTRA_SETS.get(module, [])


@functools.cache
def verilator_executable() -> str:
    """``verilator_bin`` under ``VERILATOR_ROOT`` or beside the ``verilator`` found on PATH
    (where that script looks for it), else ``verilator``.

    ``verilator`` is a Perl script that starts a shell that runs ``verilator_bin``: for a lint
    run, all it adds is that start-up, several times the lint of a small module itself, in each
    of the hundreds of runs of ``make lint`` and ``make test``. (It also lifts the stack limit;
    a lint that overflowed the default one would crash and fail, not pass.)
    """
    root = os.environ.get("VERILATOR_ROOT")  # where the script would look first
    wrapper = shutil.which("verilator")
    for direct in ([Path(root) / "bin" / "verilator_bin"] if root else []) + (
            [Path(wrapper).resolve().with_name("verilator_bin")] if wrapper else []):
        if os.access(direct, os.X_OK):
            return str(direct)
    return "verilator"


def lint(module: str, params: dict[str, int], extra_sources: list[str] | None = None
         ) -> tuple[bool, str]:
    """Run Verilator lint on ``module`` (hdl/ as library, plus ``extra_sources``); return
    (clean, output)."""
    # -Werror-USERERROR: a parameter check's $error (LMUL_PARAM_CHECK) ends the run after
    # parameter elaboration instead of being a warning after the whole (possibly huge, e.g.
    # 4x4 PEs of 65 terms) design is linted; a clean module never reaches one.
    # hdl/ as a library (-y): Verilator reads the top's file and the files of the modules it
    # instantiates, instead of parsing every file of hdl/ in each of the hundreds of runs.
    top_file = HDL / f"{module}.v"
    cmd = [verilator_executable(), "--lint-only", "-Wall", "-Werror-USERERROR", f"-I{HDL}",
           "-y", str(HDL), "--top-module", module, *([str(top_file)] if top_file.is_file() else []),
           *(extra_sources or [])]
    cmd += [f"-G{k}={v}" for k, v in params.items()]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    out = (proc.stdout + proc.stderr).strip()
    return proc.returncode == 0 and "%Warning" not in out, out


_MODULE_RE = re.compile(r"^\s*module\s+(\w+)", re.MULTILINE)
_HEADER = ("`resetall", "`timescale 1ns/1ps", "`default_nettype none")
#: How the paper's offset rule is spelled (the MAN_BITS - 4 exponent of its last case).
_OFFSET_RULE_RE = re.compile(r"1\s*<<\s*\(\s*\(?\s*\w+\s*\)?\s*-\s*4\s*\)")


def style_problems(path: Path) -> list[str]:
    """House-style violations of one Verilog file (empty list when it is clean)."""
    text = path.read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    problems = []
    if tuple(lines[:3]) != _HEADER:
        problems.append("must start with `resetall, `timescale 1ns/1ps, `default_nettype none")
    if not lines or lines[-1] != "`default_nettype wire":
        problems.append("must end with `default_nettype wire")
    modules = _MODULE_RE.findall(text)
    if modules != [path.stem]:
        problems.append(f"must define exactly one module named {path.stem}, found {modules}")
    if _OFFSET_RULE_RE.search(text):
        problems.append(f"defines the paper's default OFFSET; use `LMUL_DEFAULT_OFFSET from "
                        f"{DEFS.name}")
    return problems


def verilog_files() -> list[Path]:
    """Every Verilog file the style rules apply to: hdl/*.v and sim/hdl/*.v."""
    return sorted(HDL.glob("*.v")) + sorted(SIM_HDL.glob("*.v"))


def main(argv: list[str]) -> int:
    modules = argv or sorted(p.stem for p in HDL.glob("*.v"))
    failures = 0
    if not argv:
        for path in verilog_files():
            for problem in style_problems(path):
                failures += 1
                print(f"FAIL {path.relative_to(REPO)}: {problem}")
    for module in modules:
        for params in parameter_sets(module):
            ok, out = lint(module, params)
            label = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
            print(f"{'ok  ' if ok else 'FAIL'} {module} ({label})")
            if not ok:
                failures += 1
                print(out)
    if not argv:
        for wrapper in sorted(SIM_HDL.glob("*.v")):
            ok, out = lint(wrapper.stem, {}, [str(wrapper)])
            print(f"{'ok  ' if ok else 'FAIL'} sim/hdl/{wrapper.name} (defaults)")
            if not ok:
                failures += 1
                print(out)
    print(f"lint: {failures} failing check(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
