"""Tests of the levelized zero-delay simulator (syn/_levelsim.py) against Icarus.

The simulator must give what an Icarus zero-delay run of the same testbench gives: the output
text of every step and the transitions of every net counted from Icarus' VCD
(:func:`syn._gatesim.count_toggles`), x and z included. Compared on a synthesized multiplier,
on a synthesized PE (flip-flops), on a hand-written netlist with flip-flops that are never
reset, a negative-edge flip-flop, a multiplexer UDP, assigns and an undriven net, and through
the whole per-design flow (``--zero-sim levelized`` vs ``icarus``). The comparison itself is
shown to fail on a wrong netlist and on a tampered VCD.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from syn import _gatesim as gs
from syn import _levelsim as ls
from syn import _stdcell as sc
from syn import cost, energy, stimuli
from syn.tests._flow import needs_flow, without_times

HDL = Path(__file__).resolve().parents[2] / "hdl"


@pytest.fixture(scope="module")
def tools() -> cost.Tools:
    return cost.Tools.find()


@pytest.fixture(scope="module")
def kernel(tools: cost.Tools, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return ls.kernel(tmp_path_factory.mktemp("levelsim"), tools.cxx)


def _icarus(tools: cost.Tools, nl: gs.Netlist, clock: str | None,
            stim: Mapping[str, Sequence[int]], n: int, dump_from: int, work: Path
            ) -> tuple[list[str], dict[str, int]]:
    net = work / "pwr.v"
    work.mkdir(parents=True, exist_ok=True)
    net.write_text(nl.to_verilog())
    sim = gs.simulate([net, tools.cells], nl.name, nl.inputs, nl.outputs, clock, stim, n,
                      20.0, work, tools.iverilog, tools.vvp, dump_from=dump_from)
    assert sim.vcd is not None
    return sim.outputs, gs.count_toggles(sim.vcd)


def _levelized(tools: cost.Tools, kernel: Any, nl: gs.Netlist, clock: str | None,
               stim: Mapping[str, Sequence[int]], n: int, dump_from: int
               ) -> tuple[list[str], dict[str, int]]:
    models = ls.cell_tables(tools.cells, tools.iverilog, tools.vvp)
    res = ls.simulate(ls.compile_netlist(nl, models, clock), stim, n, kernel, dump_from)
    assert res.toggles is not None
    return res.outputs, res.toggles


def _differences(a: tuple[list[str], dict[str, int]], b: tuple[list[str], dict[str, int]]
                 ) -> list[str]:
    """Where two simulations differ: output steps, then nets (empty if they agree)."""
    out = [f"step {i}: {x} vs {y}" for i, (x, y) in enumerate(zip(a[0], b[0], strict=True))
           if x != y]
    if len(a[0]) != len(b[0]):
        out.append(f"{len(a[0])} vs {len(b[0])} steps")
    out += [f"net {k}: {a[1].get(k)} vs {b[1].get(k)}" for k in sorted(set(a[1]) | set(b[1]))
            if a[1].get(k) != b[1].get(k)]
    return out


def _random_stimulus(nl: gs.Netlist, clock: str | None, n: int, seed: int
                     ) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    return {p.name: [int(x) for x in rng.integers(0, 1 << p.width, n, dtype=np.uint64)]
            for p in nl.inputs if p.name != clock}


@pytest.fixture(scope="module")
def small_lmul(tools: cost.Tools, tmp_path_factory: pytest.TempPathFactory) -> gs.Netlist:
    net = tmp_path_factory.mktemp("lmul") / "net.v"
    sc.synthesize(cost.hdl_sources(), HDL, "lmul_core",
                  {"EXP_BITS": 3, "MAN_BITS": 2, "SATURATE": 0}, tools.liberty, net,
                  tools.yosys)
    return gs.add_input_drivers(gs.parse_netlist(gs.split_constant_assigns(net.read_text())))


# ---------------------------------------------------------------------- against Icarus
@needs_flow
def test_combinational_netlist_matches_icarus(small_lmul: gs.Netlist, tools: cost.Tools,
                                              kernel: Any, tmp_path: Path) -> None:
    nl = small_lmul
    stim = _random_stimulus(nl, None, 400, 1)
    ica = _icarus(tools, nl, None, stim, 400, 3, tmp_path)
    lev = _levelized(tools, kernel, nl, None, stim, 400, 3)
    assert _differences(ica, lev) == []
    assert set(lev[1]) == {b for p in nl.ports for b in p.bits()} | {
        w if n == 1 else f"{w}[{i}]" for w, n in nl.wires for i in range(n)}
    assert sum(lev[1].values()) > 5000  # the nets do switch


@needs_flow
def test_synthesized_pe_matches_icarus_from_reset(tools: cost.Tools, kernel: Any,
                                                  tmp_path: Path) -> None:
    """A mac_pe netlist (flip-flops, enable multiplexers) on the flow's own PE stimulus: its
    first steps run from Icarus' all-x state, the window starts after the reset."""
    d = next(d for d in cost.designs(["e4m3_ieee"], ["pe"]) if d.unit == "lmul")
    net = tmp_path / "net.v"
    sc.synthesize(cost.synth_sources(d), HDL, d.top, d.param_dict, tools.liberty, net,
                  tools.yosys)
    nl = gs.add_input_drivers(gs.parse_netlist(gs.split_constant_assigns(net.read_text())),
                              skip=["clk"])
    stim = stimuli.workload_stimulus(d, "uniform", stimuli.Sizes(pe_tiles=1), 1, None)
    ica = _icarus(tools, nl, "clk", stim.values, stim.n_steps, stim.dump_from, tmp_path)
    lev = _levelized(tools, kernel, nl, "clk", stim.values, stim.n_steps, stim.dump_from)
    assert _differences(ica, lev) == []
    assert any("x" in o for o in ica[0][:2])  # the steps before the reset took are unknown
    assert lev[1]["clk"] == 2 * (stim.n_steps - stim.dump_from)


# A netlist for the corners: q1 is never reset (x until d1 is defined, then it follows d1),
# q2 holds while en is 1 and loads d1 when en is 0 (its x lasts until then), q3 is clocked on
# the falling edge, c is x whenever q3 is 1, y[8:7] is a part select set to a constant,
# the multiplexer's UDP passes a known value through an unknown select when both inputs agree,
# u is undriven (z) and r copies it, k is a constant through an assign.
CORNERS = """module corners(clk, d1, en, s, y);
  input clk;
  input d1;
  input en;
  input s;
  output [8:0] y;
  wire q1;
  wire q2;
  wire q3;
  wire m;
  wire n2;
  wire n3;
  wire u;
  wire r;
  wire k;
  wire c;
  DFFPOSX1 f1 (
    .CLK(clk),
    .D(d1),
    .Q(q1)
  );
  MUX2X1 mx (
    .A(q2),
    .B(d1),
    .S(en),
    .Y(m)
  );
  INVX1 i1 (
    .A(m),
    .Y(n2)
  );
  DFFPOSX1 f2 (
    .CLK(clk),
    .D(n2),
    .Q(q2)
  );
  DFFNEGX1 f3 (
    .CLK(clk),
    .D(q1),
    .Q(q3)
  );
  MUX2X1 mu (
    .A(s),
    .B(s),
    .S(q2),
    .Y(n3)
  );
  NAND2X1 g1 (
    .A(u),
    .B(q3),
    .Y(c)
  );
  assign r = u;
  assign k = 1'b1;
  assign y[0] = q1;
  assign y[1] = q2;
  assign y[2] = q3;
  assign y[3] = n3;
  assign y[4] = r;
  assign y[5] = k;
  assign y[6] = c;
  assign y[8:7] = 2'b10;
endmodule
"""


@needs_flow
def test_unknown_and_undriven_nets_match_icarus(tools: cost.Tools, kernel: Any,
                                                tmp_path: Path) -> None:
    nl = gs.add_input_drivers(gs.parse_netlist(CORNERS), skip=["clk"])
    n = 12
    stim = {"d1": [1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1],
            "en": [1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 1, 0],
            "s": [0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1]}
    for dump_from in (1, 5):
        ica = _icarus(tools, nl, "clk", stim, n, dump_from, tmp_path / str(dump_from))
        lev = _levelized(tools, kernel, nl, "clk", stim, n, dump_from)
        assert _differences(ica, lev) == []
    y = [{j: o[8 - j] for j in range(9)} for o in ica[0]]
    # y[4] (r) is z, y[5] (k) is 1, y[1] (q2) is x until the rising edge after en is 0
    assert all(s[4] == "z" and s[5] == "1" and s[8] + s[7] == "10" for s in y)
    assert y[4][1] == "x" and y[5][1] in "01"
    assert {s[6] for s in y} == {"1", "x"}  # c
    assert y[0][3] in "01"  # n3: both multiplexer inputs are s, the select unknown


# ------------------------------------------------------------------ the check can fail
_COMPLEMENT = {"AND2X1": "NAND2X1", "NAND2X1": "AND2X1", "OR2X1": "NOR2X1", "NOR2X1": "OR2X1",
               "XOR2X1": "XNOR2X1", "XNOR2X1": "XOR2X1", "BUFX2": "INVX1", "INVX1": "BUFX2"}


@needs_flow
def test_a_wrong_netlist_or_a_tampered_vcd_is_caught(small_lmul: gs.Netlist,
                                                     tools: cost.Tools, kernel: Any,
                                                     tmp_path: Path) -> None:
    nl = small_lmul
    stim = _random_stimulus(nl, None, 200, 2)
    ica = _icarus(tools, nl, None, stim, 200, 1, tmp_path / "ica")
    # one cell inside the netlist (not one driving an output) complemented
    outs = {b for p in nl.outputs for b in p.bits()}
    wrong = dataclasses.replace(nl, instances=[dataclasses.replace(i) for i in nl.instances])
    victim = next(i for i in wrong.instances if i.cell in _COMPLEMENT
                  and not i.name.startswith(gs.DRIVER_PREFIX)
                  and not any(v in outs for v in i.pins.values()))
    victim.cell = _COMPLEMENT[victim.cell]
    assert _differences(ica, _levelized(tools, kernel, wrong, None, stim, 200, 1))
    # one value of one net in Icarus' VCD flipped: that net's count differs
    vcd = tmp_path / "ica" / "dump.vcd"
    lines = vcd.read_text().split("\n")
    k = next(k for k in range(len(lines) - 1, 0, -1) if re.fullmatch(r"[01]\S+", lines[k]))
    lines[k] = ("1" if lines[k][0] == "0" else "0") + lines[k][1:]
    vcd.write_text("\n".join(lines))
    tampered = (ica[0], gs.count_toggles(vcd))
    diff = _differences(tampered, _levelized(tools, kernel, nl, None, stim, 200, 1))
    assert len(diff) == 1 and diff[0].startswith("net ")


# ------------------------------------------------------------------ outside the model
@needs_flow
@pytest.mark.parametrize(("cell", "pins", "why"), [
    ("LATCH", ".CLK(clk), .D(a), .Q(y)", "sequential cell"),
    ("DFFPOSX1", ".CLK(a), .D(clk), .Q(y)", "not clocked by the clock port"),
    ("TBUFX1", ".A(a), .EN(clk), .Y(y)", "z"),
])
def test_netlists_outside_the_model_are_refused(tools: cost.Tools, cell: str, pins: str,
                                                why: str) -> None:
    text = (f"module t(clk, a, y);\n  input clk;\n  input a;\n  output y;\n  {cell} c (\n"
            + ",\n".join(f"    {p.strip()}" for p in pins.split(", ")) + "\n  );\nendmodule\n")
    models = ls.cell_tables(tools.cells, tools.iverilog, tools.vvp)
    with pytest.raises(ls.UnsupportedError, match=why):
        ls.compile_netlist(gs.parse_netlist(text), models, "clk")


def test_a_combinational_loop_and_two_drivers_are_refused() -> None:
    inv = ls.CellModel("INVX1", ("A",), ("Y",), {"Y": np.array([1, 0, 2], dtype=np.uint8)})
    models = {"INVX1": inv}

    def netlist(body: str) -> gs.Netlist:
        return gs.parse_netlist("module t(a, y);\n  input a;\n  output y;\n  wire p;\n  wire q;\n"
                                + body + "endmodule\n")

    loop = ("  INVX1 i1 (\n    .A(q),\n    .Y(p)\n  );\n"
            "  INVX1 i2 (\n    .A(p),\n    .Y(q)\n  );\n  assign y = p;\n")
    with pytest.raises(ls.UnsupportedError, match="loop"):
        ls.compile_netlist(netlist(loop), models, None)
    two = ("  INVX1 i1 (\n    .A(a),\n    .Y(p)\n  );\n"
           "  INVX1 i2 (\n    .A(a),\n    .Y(p)\n  );\n  assign y = p;\n")
    with pytest.raises(ls.UnsupportedError, match="two drivers"):
        ls.compile_netlist(netlist(two), models, None)


# ------------------------------------------------------------------------- in the flow
@needs_flow
@pytest.mark.parametrize(("fmt", "level"), [("e5m2", "mul"), ("e4m3_ieee", "pe")])
def test_flow_results_are_the_same_with_either_zero_delay_simulator(
        fmt: str, level: str, tools: cost.Tools, tmp_path: Path) -> None:
    """Synthesis, check and both workloads at both timings of one design, once with Icarus for
    the zero-delay runs and once levelized: every value but the times is the same, and the
    profile says which simulator ran."""
    d = next(d for d in cost.designs([fmt], [level]) if d.unit == "lmul")
    sizes = stimuli.Sizes(mul_vectors=200, pe_tiles=1, check_pe_tiles=2)
    recs = {}
    for zero_sim in ("icarus", "levelized"):
        t = dataclasses.replace(tools, zero_sim=zero_sim)
        work = tmp_path / zero_sim
        if zero_sim == "levelized":  # the same netlist: only the simulations run again
            (work / "netlists").mkdir(parents=True)
            for f in (tmp_path / "icarus" / "netlists").iterdir():
                (work / "netlists" / f.name).write_bytes(f.read_bytes())
        recs[zero_sim] = cost.measure_cached(d, t, work, sizes, 1, ["uniform"],
                                             list(cost.TIMINGS), None, sc.StaConstraints())
    assert without_times(recs["levelized"]) == without_times(recs["icarus"])
    assert recs["levelized"]["runs"]["uniform/zero"]["energy_per_op_pj"] > 0
    assert "levelsim" in recs["levelized"]["profile"] and "yosys" not in recs[
        "levelized"]["profile"]
    assert "levelsim" not in recs["icarus"]["profile"]


@needs_flow
def test_an_unsupported_netlist_falls_back_to_icarus(tools: cost.Tools, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kw: Any) -> ls.Program:
        raise ls.UnsupportedError("refused by the test")

    monkeypatch.setattr(ls, "compile_netlist", refuse)
    d = next(d for d in cost.designs(["e5m2"], ["mul"]) if d.unit == "lmul")
    logged: list[str] = []
    rec = cost.measure_design(d, tools, tmp_path / "d", stimuli.Sizes(mul_vectors=30), 1,
                              ["uniform"], ["zero"], None, sc.StaConstraints(),
                              log=logged.append)
    assert rec["runs"]["uniform/zero"]["energy_per_op_pj"] > 0
    assert any("zero-delay runs on Icarus (refused by the test)" in m for m in logged)


def test_result_keys_depend_on_the_zero_delay_simulator(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-design cache key changes with the simulator and with its code (an edit of
    syn/_levelsim.py), and with Icarus alone it is the key of the flow before the simulator
    existed (the levelized simulator's code is not part of it)."""
    lib = tmp_path / "lib.lib"
    lib.write_text("library (x) { }\n")
    d = cost.designs(["e5m2"], ["mul"])[0]

    def key(zero_sim: str) -> str:
        tools = cost.Tools("yosys", "sta", "iverilog", "vvp", lib, lib, {"yosys": "Yosys test"},
                           zero_sim=zero_sim)
        return cost.design_workdir(d, tools, tmp_path / "none", stimuli.Sizes(), 1,
                                   sc.StaConstraints()).name

    before = {z: key(z) for z in cost.ZERO_SIMS}
    assert before["icarus"] != before["levelized"]
    edited = tmp_path / "_levelsim.py"
    edited.write_text(Path(ls.__file__).read_text() + "\n# edited\n")
    monkeypatch.setattr(ls, "__file__", str(edited))
    assert key("levelized") != before["levelized"]
    assert key("icarus") == before["icarus"]


def test_missing_compiler_is_one_line_naming_its_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tool but g++ on PATH: the levelized simulator needs it, Icarus alone does not."""
    import shutil

    found = {t: shutil.which(t) for t in ("yosys", "sta", "iverilog", "vvp")}
    if not all(found.values()):
        pytest.skip("needs yosys, sta, iverilog and vvp")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for t, p in found.items():
        (bin_dir / t).symlink_to(str(p))
    monkeypatch.setenv("PATH", str(bin_dir))
    try:
        sc.library_files()
    except sc.CostError:
        pytest.skip("needs the OSU 0.18 um library")
    with pytest.raises(sc.CostError, match=r"g\+\+ not found.*Debian package g\+\+") as e:
        cost.Tools.find()
    assert "\n" not in str(e.value)
    assert cost.Tools.find(zero_sim="icarus").zero_sim == "icarus"


def test_transitions_of_another_netlist_are_refused() -> None:
    nl = gs.parse_netlist(CORNERS)
    toggles = {b: 1 for b in gs.net_bits(nl)}
    assert energy.activity_from_toggles(nl, toggles, "run")["q1"] == 1
    del toggles["q1"]
    with pytest.raises(sc.CostError, match="run is not of netlist corners"):
        energy.activity_from_toggles(nl, toggles, "run")
    with pytest.raises(sc.CostError, match="run is not of netlist corners"):
        energy.activity_from_toggles(nl, {**toggles, "q1": 0, "elsewhere": 3}, "run")
