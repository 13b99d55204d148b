"""syn.designs: the design table both flows use, and the parameter record of a netlist."""

from __future__ import annotations

import pytest

from syn import cost, designs, synth
from syn.designs import Design

DUMP = """
autoidx 12

attribute \\hdlname "\\\\fp_classify"
module \\fp_classify

  parameter \\EXP_BITS 8
  parameter \\MAN_BITS 7

  wire width 8 input 1 \\x
end
attribute \\src "hdl/fp_mul.v:37.1-90.10"
module \\fp_mul

  parameter \\EXP_BITS 5
  parameter signed \\MAN_BITS 2
  parameter \\SUBNORMALS 1'0
  parameter \\NAME "text"

  attribute \\src "hdl/fp_mul.v:43.40-43.41"
  wire width 8 input 1 \\a
  parameter \\NOT_A_HEADER 9
end
"""


def test_parse_parameters_reads_the_top_module_header() -> None:
    assert designs.parse_parameters(DUMP, "fp_mul") == {"EXP_BITS": 5, "MAN_BITS": 2,
                                                        "SUBNORMALS": 0}
    assert designs.parse_parameters(DUMP, "fp_classify") == {"EXP_BITS": 8, "MAN_BITS": 7}
    with pytest.raises(ValueError, match="no module lmul_core"):
        designs.parse_parameters(DUMP, "lmul_core")


def test_parameter_mismatch_names_each_wrong_value() -> None:
    d = Design("mul", "e5m2", "exact_flush", "fp_mul",
               (("EXP_BITS", 5), ("MAN_BITS", 2), ("SUBNORMALS", 0)))
    assert designs.parameter_mismatch(d, {"EXP_BITS": 5, "MAN_BITS": 2, "SUBNORMALS": 0,
                                          "EXTRA": 3}) is None
    assert designs.parameter_mismatch(d, {"EXP_BITS": 5, "MAN_BITS": 2, "SUBNORMALS": 1}) == (
        "mul-e5m2-exact_flush netlist was built with SUBNORMALS=1 (want 0)")
    assert "MAN_BITS=unset (want 2)" in str(designs.parameter_mismatch(d, {"EXP_BITS": 5}))


def test_front_end_sets_records_and_flattens() -> None:
    lines = designs.yosys_front_end([designs.HDL / "a.v"], designs.HDL, "fp_mul",
                                    {"EXP_BITS": 5, "MAN_BITS": 2}, designs.HDL / "p.il")
    assert lines[1:] == ["chparam -set EXP_BITS 5 -set MAN_BITS 2 fp_mul",
                         f"tee -q -o {designs.HDL / 'p.il'} dump fp_mul",
                         "synth -flatten -top fp_mul"]


def test_one_table_serves_both_flows() -> None:
    """The multipliers of a format are the same designs in both flows; the PE level is the
    combinational datapath for synthesis and the clocked PE for the cost flow (as documented
    in syn/designs.py)."""
    mul = [(d.unit, d.top, d.param_dict) for d in synth.designs(["e4m3_ieee"], ["mul"])]
    assert mul == [("lmul", "lmul_core", {"EXP_BITS": 4, "MAN_BITS": 3, "SATURATE": 0}),
                   ("exact", "fp_mul", {"EXP_BITS": 4, "MAN_BITS": 3, "SUBNORMALS": 1}),
                   ("exact_flush", "fp_mul", {"EXP_BITS": 4, "MAN_BITS": 3, "SUBNORMALS": 0})]
    assert cost.designs(["e4m3_ieee"], ["mul"]) == synth.designs(["e4m3_ieee"], ["mul"])
    assert {d.top for d in synth.designs(["bf16"], ["pe"])} == {"mac_datapath"}
    pe = cost.designs(["bf16"], ["pe"])
    assert [(d.unit, d.top, d.clock, d.param_dict["MULTIPLIER"]) for d in pe] == [
        ("lmul", "mac_pe", "clk", 0), ("exact", "mac_pe", "clk", 1)]
    arr = cost.designs(["fp16"], ["array"], ["bf16"])
    assert [d.name for d in arr] == ["array-bf16-lmul", "array-bf16-exact"]
    assert arr[0].param_dict == {"ROWS": 4, "COLS": 4, "EXP_BITS": 8, "MAN_BITS": 7,
                                 "MULTIPLIER": 0}
    with pytest.raises(ValueError, match="unknown format 'fp32'"):
        cost.designs(["fp32"])
    assert synth.designs(["fp32"], ["mul"])[0].param_dict["MAN_BITS"] == 23
