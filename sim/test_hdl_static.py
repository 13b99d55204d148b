"""Static checks of every RTL module: Verilator lint for every preset, and illegal parameters
stopping elaboration (Icarus and Verilator) with a message that names the parameter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import lint_hdl  # noqa: E402

MODULES = sorted(p.stem for p in (REPO / "hdl").glob("*.v"))

#: Parameter values no module may accept, and the parameter named in the error.
ILLEGAL = [({"EXP_BITS": 1}, "EXP_BITS"), ({"EXP_BITS": 12}, "EXP_BITS"),
           ({"MAN_BITS": 0}, "MAN_BITS")]
#: The upper mantissa bound differs: the adder goes to binary64, everything else to binary32.
MAN_BITS_TOO_WIDE = {"fp_add": 53}
LMUL_MODULES = ("lmul_core", "lmul_unit", "mac_pe", "mac_array")
ILLEGAL_LMUL = [({"OFFSET": 128}, "OFFSET"), ({"OFFSET": -1}, "OFFSET"),
                ({"EXP_BITS": 4, "MAN_BITS": 3, "OFFSET": 8}, "OFFSET"),  # OFFSET < 2^MAN_BITS
                ({"SATURATE": 2}, "SATURATE")]
ILLEGAL_EXTRA = {
    "mac_array": [({"ROWS": 0}, "ROWS"), ({"COLS": 65}, "COLS")],
    "fp_mul": [({"SUBNORMALS": 2}, "SUBNORMALS")],
}


def require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} not found: run scripts/setup.sh (it installs the Debian package)")


@pytest.mark.parametrize("module", MODULES)
def test_lint_clean(module: str) -> None:
    require("verilator")
    for params in lint_hdl.parameter_sets(module):
        ok, out = lint_hdl.lint(module, params)
        assert ok, f"verilator lint of {module} {params}:\n{out}"


def illegal_cases() -> list:
    cases = []
    for module in MODULES:
        too_wide = ({"MAN_BITS": MAN_BITS_TOO_WIDE.get(module, 24)}, "MAN_BITS")
        extra = (ILLEGAL_LMUL if module in LMUL_MODULES else []) + ILLEGAL_EXTRA.get(module, [])
        for params, name in [*ILLEGAL, too_wide, *extra]:
            label = ",".join(f"{k}={v}" for k, v in params.items())
            cases.append(pytest.param(module, params, name, id=f"{module}-{label}"))
    return cases


@pytest.mark.parametrize(("module", "params", "name"), illegal_cases())
def test_illegal_parameter_stops_elaboration(module: str, params: dict, name: str,
                                             tmp_path: Path) -> None:
    require("iverilog")
    require("verilator")
    sources = sorted(str(p) for p in (REPO / "hdl").glob("*.v"))
    defs = [f"-P{module}.{k}={v}" for k, v in params.items()]
    proc = subprocess.run(["iverilog", "-g2005", "-s", module, "-o", str(tmp_path / "x"), *defs,
                           *sources], capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"iverilog accepted {module} {params}"
    assert "PARAMETER_ERROR" in out and name in out, out
    ok, out = lint_hdl.lint(module, params)
    assert not ok and name in out, f"verilator accepted {module} {params}:\n{out}"
