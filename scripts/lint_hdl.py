"""Verilator lint (``--lint-only -Wall``) of every module in hdl/ for every preset format.

Usage: ``python scripts/lint_hdl.py [module ...]``. Exit status 1 if any run warns or fails.
The parameter sets come from the model's format table (``lmul.PRESETS``), the one definition of
the formats.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lmul

REPO = Path(__file__).resolve().parents[1]
HDL = REPO / "hdl"
LMUL_FORMATS = ("bf16", "fp16", "e4m3_ieee", "e5m2")

#: Extra parameter sets per module, on top of the defaults and the presets.
EXTRA_SETS: dict[str, list[dict[str, int]]] = {
    "lmul_core": [{"OFFSET": 0, "SATURATE": 1}, {"EXP_BITS": 8, "MAN_BITS": 23}],
    "lmul_unit": [{"OFFSET": 0, "SATURATE": 1}],
    "fp_add": [{"EXP_BITS": 8, "MAN_BITS": 23}, {"EXP_BITS": 11, "MAN_BITS": 52}],
    "fp_mul": [{"EXP_BITS": 8, "MAN_BITS": 23}]
    + [{"EXP_BITS": lmul.PRESETS[n].exp_bits, "MAN_BITS": lmul.PRESETS[n].man_bits, "SUBNORMALS": 0}
       for n in LMUL_FORMATS],
    "mac_array": [{"ROWS": 2, "COLS": 3}, {"ROWS": 1, "COLS": 1}],
}


def parameter_sets(module: str) -> list[dict[str, int]]:
    """Defaults, every preset format (EXP_BITS, MAN_BITS), then the module's extra sets."""
    sets: list[dict[str, int]] = [{}]
    for name in LMUL_FORMATS:
        fmt = lmul.PRESETS[name]
        sets.append({"EXP_BITS": fmt.exp_bits, "MAN_BITS": fmt.man_bits})
    return sets + EXTRA_SETS.get(module, [])


def lint(module: str, params: dict[str, int]) -> tuple[bool, str]:
    """Run Verilator lint on ``module`` (all of hdl/ as library); return (clean, output)."""
    sources = sorted(str(p) for p in HDL.glob("*.v"))
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", module, *sources]
    cmd += [f"-G{k}={v}" for k, v in params.items()]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    out = (proc.stdout + proc.stderr).strip()
    return proc.returncode == 0 and "%Warning" not in out, out


def main(argv: list[str]) -> int:
    modules = argv or sorted(p.stem for p in HDL.glob("*.v"))
    failures = 0
    for module in modules:
        for params in parameter_sets(module):
            ok, out = lint(module, params)
            label = ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"
            print(f"{'ok  ' if ok else 'FAIL'} {module} ({label})")
            if not ok:
                failures += 1
                print(out)
    print(f"lint: {failures} failing run(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
