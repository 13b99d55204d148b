"""Static checks of every RTL module: house style, Verilator lint for every preset and variant,
illegal parameters stopping elaboration (Icarus and Verilator) with a message that names the
parameter, and the one definition of the paper's default OFFSET agreeing with the model. The
checkers themselves are shown to fail on deliberately broken files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import lmul
from sim import lint_hdl

REPO = Path(__file__).resolve().parents[2]

HDL = REPO / "hdl"
MODULES = sorted(p.stem for p in HDL.glob("*.v"))
FORMAT_MODULES = [m for m in MODULES if lint_hdl.format_range(m) is not None]

#: Parameter values no format module may accept, and the parameter named in the error.
ILLEGAL = [({"EXP_BITS": 1}, "EXP_BITS"), ({"EXP_BITS": 12}, "EXP_BITS"),
           ({"MAN_BITS": 0}, "MAN_BITS")]
#: The upper mantissa bound differs: the adder and its helpers go to binary64, the rest to
#: binary32.
MAN_BITS_TOO_WIDE = {"fp_add": 53, "fp_classify": 53, "fp_round": 53}
LMUL_MODULES = ("lmul_core", "lmul_unit", "mac_datapath", "mac_pe", "mac_array", "mul_widen",
                "dot_datapath", "dot_pe")
ILLEGAL_LMUL = [({"OFFSET": 128}, "OFFSET"), ({"OFFSET": -1}, "OFFSET"),
                ({"EXP_BITS": 4, "MAN_BITS": 3, "OFFSET": 8}, "OFFSET"),  # OFFSET < 2^MAN_BITS
                ({"SATURATE": 2}, "SATURATE")]
ILLEGAL_EXTRA = {
    "act_unit": [({"FUNC": 2}, "FUNC"), ({"SEGMENTS": 24}, "SEGMENTS"),
                 ({"SEGMENTS": 512}, "SEGMENTS"), ({"COEF_BITS": 11}, "COEF_BITS"),
                 ({"SEGMENTS": 32}, "table")],
    "mac_array": [({"ROWS": 0}, "ROWS"), ({"COLS": 65}, "COLS"),
                  ({"MULTIPLIER": 2}, "MULTIPLIER"), ({"MULTIPLIER": -1}, "MULTIPLIER"),
                  ({"SKID": 2}, "SKID"), ({"SKID": -1}, "SKID"),
                  ({"DOT_K": 0}, "DOT_K"), ({"DOT_K": 65}, "DOT_K"),
                  ({"ALIGN_BITS": 0}, "ALIGN_BITS"), ({"DOT_K": 2, "ALIGN_BITS": 277},
                                                      "ALIGN_BITS"),
                  ({"DOT_K": 2, "PIPELINE": 4}, "PIPELINE"), ({"PIPELINE": 1}, "PIPELINE")],
    "mac_pe": [({"MULTIPLIER": 2}, "MULTIPLIER")],
    "mac_datapath": [({"MULTIPLIER": 2}, "MULTIPLIER"), ({"MULTIPLIER": 1, "SUBNORMALS": 2},
                                                         "SUBNORMALS"),
                     ({"MULTIPLIER": 1, "OFFSET": 128}, "OFFSET")],
    "lmul_unit": [({"SKID": 2}, "SKID"), ({"SKID": -1}, "SKID")],
    "fp_mul": [({"SUBNORMALS": 2}, "SUBNORMALS")],
    "stream_skid": [({"SKID": 2}, "SKID"), ({"WIDTH": 0}, "WIDTH")],
    "lzc": [({"WIDTH": 0}, "WIDTH"), ({"WIDTH": 1025}, "WIDTH")],
    "fp_dot_sum": [({"TERMS": 1}, "TERMS"), ({"TERMS": 66}, "TERMS"),
                   ({"ALIGN_BITS": 0}, "ALIGN_BITS"), ({"ALIGN_BITS": 277}, "ALIGN_BITS")],
    "mul_widen": [({"MULTIPLIER": 2}, "MULTIPLIER"), ({"MULTIPLIER": 1, "SUBNORMALS": 2},
                                                      "SUBNORMALS"),
                  ({"MULTIPLIER": 1, "OFFSET": 128}, "OFFSET")],
    "dot_datapath": [({"K": 0}, "K"), ({"K": 65}, "K"), ({"ALIGN_BITS": 0}, "ALIGN_BITS"),
                     ({"ALIGN_BITS": 277}, "ALIGN_BITS"), ({"MULTIPLIER": 2}, "MULTIPLIER")],
    "dot_pe": [({"K": 65}, "K"), ({"ALIGN_BITS": 277}, "ALIGN_BITS"),
               ({"MULTIPLIER": 2}, "MULTIPLIER"), ({"PIPELINE": 4}, "PIPELINE"),
               ({"PIPELINE": -1}, "PIPELINE"), ({"PIPELINE": 1, "K": 65}, "K"),
               ({"PIPELINE": 1, "ALIGN_BITS": 0}, "ALIGN_BITS"),
               ({"PIPELINE": 1, "MULTIPLIER": 2}, "MULTIPLIER"),
               ({"PIPELINE": 2, "K": 65}, "K"), ({"PIPELINE": 2, "ALIGN_BITS": 277}, "ALIGN_BITS"),
               ({"PIPELINE": 3, "K": 65}, "K")],
    "dot_prealign": [({"K": 0}, "K"), ({"K": 65}, "K"), ({"ALIGN_BITS": 0}, "ALIGN_BITS"),
                     ({"ALIGN_BITS": 277}, "ALIGN_BITS")],
    "dot_sum_prealigned": [({"K": 0}, "K"), ({"K": 65}, "K"), ({"ALIGN_BITS": 0}, "ALIGN_BITS"),
                           ({"ALIGN_BITS": 277}, "ALIGN_BITS")],
}


def require(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} not found: run scripts/setup.sh (it installs the Debian package)")


@pytest.mark.parametrize("path", lint_hdl.verilog_files(), ids=lambda p: p.name)
def test_style(path: Path) -> None:
    assert lint_hdl.style_problems(path) == []


@pytest.mark.parametrize("module", MODULES)
def test_lint_clean(module: str) -> None:
    require("verilator")
    for params in lint_hdl.parameter_sets(module):
        ok, out = lint_hdl.lint(module, params)
        assert ok, f"verilator lint of {module} {params}:\n{out}"


def test_lint_runs_the_verilator_on_path() -> None:
    """The lint calls ``verilator_bin`` directly; it must be the same Verilator that the
    ``verilator`` command runs."""
    require("verilator")
    versions = [subprocess.run([exe, "--version"], capture_output=True, text=True,
                               check=True).stdout.strip()
                for exe in ("verilator", lint_hdl.verilator_executable())]
    assert versions[0].startswith("Verilator ") and versions[0] == versions[1], versions


@pytest.mark.parametrize("wrapper", sorted((REPO / "sim" / "hdl").glob("*.v")),
                         ids=lambda p: p.name)
def test_wrapper_lint_clean(wrapper: Path) -> None:
    require("verilator")
    ok, out = lint_hdl.lint(wrapper.stem, {}, [str(wrapper)])
    assert ok, f"verilator lint of sim/hdl/{wrapper.name}:\n{out}"


def test_presets_reach_every_format_module() -> None:
    """Each format module is linted for every preset inside its range, and its range (from its
    own parameter checks) is the model's: the L-Mul range, or the adder's up to binary64."""
    wide = (tuple(lmul.FP_ADD_EXP_BITS_RANGE), tuple(lmul.FP_ADD_MAN_BITS_RANGE))
    for module in FORMAT_MODULES:
        rng = lint_hdl.format_range(module)
        assert rng == (wide if module in MAN_BITS_TOO_WIDE else lint_hdl.LMUL_RANGE), module
        linted = lint_hdl.parameter_sets(module)
        for fmt in lmul.PRESETS.values():
            p = {"EXP_BITS": fmt.exp_bits, "MAN_BITS": fmt.man_bits}
            (elo, ehi), (mlo, mhi) = rng
            inside = elo <= fmt.exp_bits <= ehi and mlo <= fmt.man_bits <= mhi
            assert (p in linted) == inside, (module, fmt.name)


def illegal_cases() -> list:
    cases = []
    for module in MODULES:
        common = []
        if module in FORMAT_MODULES:
            common = [*ILLEGAL, ({"MAN_BITS": MAN_BITS_TOO_WIDE.get(module, 24)}, "MAN_BITS")]
        extra = (ILLEGAL_LMUL if module in LMUL_MODULES else []) + ILLEGAL_EXTRA.get(module, [])
        for params, name in [*common, *extra]:
            label = ",".join(f"{k}={v}" for k, v in params.items())
            cases.append(pytest.param(module, params, name, id=f"{module}-{label}"))
    return cases


@pytest.mark.parametrize(("module", "params", "name"), illegal_cases())
def test_illegal_parameter_stops_elaboration(module: str, params: dict, name: str,
                                             tmp_path: Path) -> None:
    require("iverilog")
    require("verilator")
    defs = [f"-P{module}.{k}={v}" for k, v in params.items()]
    proc = subprocess.run(["iverilog", "-g2005", f"-I{HDL}", "-s", module,
                           "-o", str(tmp_path / "x"), *defs, *lint_hdl.design_sources()],
                          capture_output=True, text=True, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"iverilog accepted {module} {params}"
    assert "PARAMETER_ERROR" in out and name in out, out
    ok, out = lint_hdl.lint(module, params)
    assert not ok and name in out, f"verilator accepted {module} {params}:\n{out}"


def test_default_offset_matches_model(tmp_path: Path) -> None:
    """`LMUL_DEFAULT_OFFSET (hdl/lmul_defs.vh) is the model's paper_offset for every width."""
    require("iverilog")
    lines = [f'$display("%0d %0d", {m}, `LMUL_DEFAULT_OFFSET({m}));' for m in range(1, 24)]
    tb = tmp_path / "offset_tb.v"
    tb.write_text('`include "lmul_defs.vh"\nmodule offset_tb;\ninitial begin\n'
                  + "\n".join(lines) + "\nend\nendmodule\n")
    subprocess.run(["iverilog", "-g2005", f"-I{HDL}", "-o", str(tmp_path / "x"), str(tb)],
                   check=True)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "x")], capture_output=True, text=True,
                         check=True).stdout
    got = {int(m): int(v) for m, v in (ln.split() for ln in out.splitlines() if ln.strip())}
    assert got == {m: lmul.paper_offset(m) for m in range(1, 24)}


def test_qnan_matches_model(tmp_path: Path) -> None:
    """`LMUL_QNAN (hdl/lmul_defs.vh) is the model's canonical quiet NaN for every format the
    adder accepts (the widest range of any module)."""
    require("iverilog")
    (elo, ehi), (mlo, mhi) = lmul.FP_ADD_EXP_BITS_RANGE, lmul.FP_ADD_MAN_BITS_RANGE
    formats = [(e, m) for e in range(elo, ehi + 1) for m in range(mlo, mhi + 1)]
    lines = [f'$display("%0d %0d %0d %0d", {e}, {m}, $bits(`LMUL_QNAN({e}, {m})), '
             f'`LMUL_QNAN({e}, {m}));' for e, m in formats]
    tb = tmp_path / "qnan_tb.v"
    tb.write_text('`include "lmul_defs.vh"\nmodule qnan_tb;\ninitial begin\n'
                  + "\n".join(lines) + "\nend\nendmodule\n")
    subprocess.run(["iverilog", "-g2012", f"-I{HDL}", "-o", str(tmp_path / "x"), str(tb)],
                   check=True)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "x")], capture_output=True, text=True,
                         check=True).stdout
    got = {(int(e), int(m)): (int(w), int(v)) for e, m, w, v in
           (ln.split() for ln in out.splitlines() if ln.strip())}
    assert got == {(e, m): (1 + e + m, lmul.Format("f", e, m).qnan_bits) for e, m in formats}


# ------------------------------------------------------------ the checkers fail on broken files
GOOD = """`resetall
`timescale 1ns/1ps
`default_nettype none
module {name} (
    input  wire [3:0] a,
    output wire [3:0] y
);
  assign y = ~a;
endmodule
`default_nettype wire
"""


def test_style_check_catches_broken_files(tmp_path: Path) -> None:
    good = tmp_path / "good_mod.v"
    good.write_text(GOOD.format(name="good_mod"))
    assert lint_hdl.style_problems(good) == []
    broken = {
        "no_header": GOOD.format(name="no_header").replace("`resetall\n", ""),
        "no_footer": GOOD.format(name="no_footer").replace("`default_nettype wire\n", ""),
        "misnamed": GOOD.format(name="other_name"),
        "two_modules": GOOD.format(name="two_modules").replace(
            "endmodule\n", "endmodule\nmodule extra;\nendmodule\n"),
        "own_offset": GOOD.format(name="own_offset").replace(
            "  assign", "  localparam integer OFFSET = (1 << (MAN_BITS - 4));\n  assign"),
    }
    for name, text in broken.items():
        path = tmp_path / f"{name}.v"
        path.write_text(text)
        assert lint_hdl.style_problems(path), f"style check accepted {name}"


def test_lint_catches_a_broken_module(tmp_path: Path) -> None:
    """A misspelled net is an error under `default_nettype none, an unused input a warning."""
    require("verilator")
    good = tmp_path / "lint_probe.v"
    good.write_text(GOOD.format(name="lint_probe"))
    assert lint_hdl.lint("lint_probe", {}, [str(good)])[0]
    typo = tmp_path / "lint_typo.v"
    typo.write_text(GOOD.format(name="lint_typo").replace("assign y = ~a;",
                                                          "assign y = ~a_typo;"))
    assert not lint_hdl.lint("lint_typo", {}, [str(typo)])[0]
    unused = tmp_path / "lint_unused.v"
    unused.write_text(GOOD.format(name="lint_unused").replace("assign y = ~a;",
                                                              "assign y = 4'd0;"))
    ok, out = lint_hdl.lint("lint_unused", {}, [str(unused)])
    assert not ok and "UNUSED" in out
