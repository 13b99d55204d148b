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
ILLEGAL_LMUL = [({"OFFSET": 128}, "OFFSET"), ({"OFFSET": -1}, "OFFSET"),
                ({"SATURATE": 2}, "SATURATE")]


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
        extra = ILLEGAL_LMUL if module in ("lmul_core", "lmul_unit", "mac_pe", "mac_array") else []
        for params, name in ILLEGAL + extra:
            cases.append(pytest.param(module, params, name, id=f"{module}-{name}={params[name]}"))
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
