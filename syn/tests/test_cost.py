"""Tests of the standard-cell cost flow (syn/cost.py and its private helpers).

Each test checks the flow against something computed independently of it: the liberty file's
own numbers, a hand-evaluated NLDM path, the bit-exact model, a hand-written VCD or trace. They
need yosys, OpenSTA, Icarus and the OSU 0.18 um library (Debian: yosys opensta iverilog
qflow-tech-osu018) and are skipped, with that reason, where one is missing.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import lmul
from syn import _gatesim as gs
from syn import _stdcell as sc
from syn import cost, designs, energy, stimuli, synth
from syn.designs import Design
from syn.tests._flow import needs_flow

HDL = Path(__file__).resolve().parents[2] / "hdl"




@pytest.fixture(scope="module")
def tools() -> cost.Tools:
    return cost.Tools.find()


@pytest.fixture(scope="module")
def library(tools: cost.Tools) -> sc.Library:
    return sc.load_library(tools.liberty)


def _raw_cell_attr(liberty: Path, cell: str, attr: str) -> float:
    """An attribute of a cell read straight from the liberty text (not through the parser)."""
    text = liberty.read_text()
    start = text.index(f"cell ({cell})")
    m = re.compile(rf"{attr}\s*:\s*([0-9.eE+-]+)\s*;").search(text, start)
    assert m is not None
    return float(m.group(1))


# ----------------------------------------------------------------------------- missing tools
def test_missing_tool_names_its_debian_package(tmp_path: Path) -> None:
    with pytest.raises(sc.CostError, match=r"sta not found.*Debian package opensta") as e:
        sc.find_tool("sta", path_env=str(tmp_path))
    assert "\n" not in str(e.value)
    with pytest.raises(sc.CostError, match="Debian package iverilog"):
        sc.find_tool("vvp", path_env=str(tmp_path))
    with pytest.raises(sc.CostError, match="Debian package yosys"):
        sc.find_tool("yosys", path_env=str(tmp_path))


def test_missing_library_names_its_debian_package(tmp_path: Path) -> None:
    with pytest.raises(sc.CostError, match="qflow-tech-osu018") as e:
        sc.library_files(tmp_path)
    assert "\n" not in str(e.value)


def test_cli_reports_missing_tool_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cost.main(["--levels", "mul", "--formats", "e5m2", "--workloads", "uniform",
                      "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "apt-get install" in err[0]


# ------------------------------------------------------------------------------------- area
@needs_flow
@pytest.mark.parametrize("cell", ["AOI22X1", "DFFPOSX1"])
def test_one_cell_netlist_area_is_the_liberty_area(cell: str, tools: cost.Tools,
                                                   library: sc.Library, tmp_path: Path) -> None:
    info = library.cells[cell]
    pins = ", ".join(f".{p}({p.lower()})" for p in (*info.inputs, *info.outputs))
    ports = [p.lower() for p in (*info.inputs, *info.outputs)]
    src = tmp_path / "one.v"
    src.write_text(f"module one({', '.join(ports)});\n"
                   + "".join(f"  input {p.lower()};\n" for p in info.inputs)
                   + "".join(f"  output {p.lower()};\n" for p in info.outputs)
                   + f"  {cell} u ({pins});\nendmodule\n")
    st = sc.synthesize([src], tmp_path, "one", {}, tools.liberty, tmp_path / "net.v",
                       tools.yosys)
    assert st.cells == 1 and st.cell_types == {cell: 1}
    assert st.area == _raw_cell_attr(tools.liberty, cell, "area")
    assert st.area == info.area


# ------------------------------------------------------------------------------------ power
@pytest.fixture(scope="module")
def small_lmul(tools: cost.Tools, tmp_path_factory: pytest.TempPathFactory
               ) -> tuple[Path, gs.Netlist]:
    d = tmp_path_factory.mktemp("lmul_e3m2")
    net = d / "net.v"
    sc.synthesize(cost.hdl_sources(), HDL, "lmul_core",
                  {"EXP_BITS": 3, "MAN_BITS": 2, "SATURATE": 0}, tools.liberty, net,
                  tools.yosys)
    return net, gs.parse_netlist(net.read_text())


@needs_flow
def test_zero_activity_power_equals_leakage(small_lmul: tuple[Path, gs.Netlist],
                                            tools: cost.Tools, library: sc.Library,
                                            tmp_path: Path) -> None:
    net, nl = small_lmul
    inputs = [p.name for p in nl.inputs]
    total, leak = sc.sta_power_at_zero_activity(net, nl.name, inputs, None, tools.liberty,
                                                tools.sta, sc.StaConstraints())
    # liberty leakage unit is nW; read each cell's number from the file text
    want = sum(_raw_cell_attr(tools.liberty, i.cell, "cell_leakage_power")
               for i in nl.instances) * 1e-9
    assert want > 0
    assert total == pytest.approx(want, rel=1e-6)
    assert leak == pytest.approx(want, rel=1e-6)
    # the flow's energy with no transitions is leakage x time, nothing else
    pins = sc.sta_pin_energies(net, nl.name, inputs, None, tools.liberty, tools.sta,
                               sc.StaConstraints())
    zero = {n: 0 for i in nl.instances for n in i.pins.values()}
    e = energy.window_energy(nl, pins, zero, 100, 10.0, None, library)
    assert e.dynamic == 0.0
    assert e.total == pytest.approx(want * 100 * 10e-9, rel=1e-6)


@needs_flow
def test_energy_recombination_matches_opensta_at_uniform_activity(
        small_lmul: tuple[Path, gs.Netlist], tools: cost.Tools, library: sc.Library) -> None:
    """If every net switches once per cycle, transitions x OpenSTA's per-pin energies must give
    OpenSTA's own report_power at activity 1 (what the flow does, minus the simulation)."""
    net, nl = small_lmul
    c = sc.StaConstraints(period_ns=10.0)
    pins = sc.sta_pin_energies(net, nl.name, [p.name for p in nl.inputs], None, tools.liberty,
                               tools.sta, c)
    cycles = 1000
    every = {n: cycles for i in nl.instances for n in i.pins.values()}
    e = energy.window_energy(nl, pins, every, cycles, c.period_ns, None, library)
    power = e.total / (cycles * c.period_ns * 1e-9)
    assert power == pytest.approx(pins.report_total_w, rel=5e-3)


def test_power_trace_parser_hand_made() -> None:
    trace = "\n".join([
        "power: internal u0/A (INVX1)",
        "power:  cap = 0.0000",
        "power: switching INVX1/Y activity = 1.00e+08 volt = 1.80 2.00e-06",
        "power: internal u0/Y (INVX1)",
        "power:  cap = 0.0100",
        "power:        when act/ns duty  energy    power",
        "power:  A -> Y 1  0.10 1.00  3.00e-14  3.00e-06 no pg_pin",
        "power: internal r0/CLK (DFFPOSX1)",
        "power:  CLK -> CLK       0.20 1.00  1.00e-13  2.00e-05 no pg_pin",
        "Total                2.30000000e-05 2.00000000e-06 1.00000000e-10 2.50001000e-05 100.0%",
    ])
    pe = sc.parse_power_trace(trace, period_ns=10.0)
    # one transition per 10 ns period -> energy = power x 10 ns; the clock pin has two
    assert pe.switching[("u0", "Y")] == pytest.approx(2e-14)
    assert pe.internal[("u0", "Y")] == pytest.approx(3e-14)
    assert pe.internal[("r0", "CLK")] == pytest.approx(1e-13)
    assert pe.energy[("u0", "Y")] == pytest.approx(5e-14)
    broken = trace.replace("2.30000000e-05", "4.60000000e-05")
    with pytest.raises(sc.CostError, match="trace"):
        sc.parse_power_trace(broken, period_ns=10.0)


# ----------------------------------------------------------------------------------- timing
@needs_flow
def test_critical_path_matches_hand_computed_cell_delays(tools: cost.Tools,
                                                         library: sc.Library,
                                                         tmp_path: Path) -> None:
    """a -> INVX1 -> NAND2X1(A) -> INVX1 -> y, evaluated by hand from the liberty tables
    (bilinear interpolation, slews carried from stage to stage, worst of both edges)."""
    net = tmp_path / "chain.v"
    net.write_text("module chain(a, b, y);\n  input a;\n  input b;\n  output y;\n"
                   "  wire n1;\n  wire n2;\n"
                   "  INVX1 u1 (.A(a), .Y(n1));\n"
                   "  NAND2X1 u2 (.A(n1), .B(b), .Y(n2));\n"
                   "  INVX1 u3 (.A(n2), .Y(y));\nendmodule\n")
    c = sc.StaConstraints(period_ns=10.0, driving_cell=None, input_transition_ns=0.15,
                          output_load_pf=0.05)
    tm = sc.sta_timing(net, "chain", ["a", "b"], None, tools.liberty, tools.sta, c)

    def arc(cell: str, pin: str) -> sc.LibGroup:
        out = library.cell_group(cell).find("pin", "Y")[0]
        return next(t for t in out.find("timing") if t.attrs["related_pin"] == pin)

    cap = {(cell, pin): library.cells[cell].pin_cap[pin] for cell, pin in
           (("NAND2X1", "A"), ("INVX1", "A"))}
    stages = [("INVX1", "A", cap["NAND2X1", "A"]), ("NAND2X1", "A", cap["INVX1", "A"]),
              ("INVX1", "A", c.output_load_pf)]
    worst = 0.0
    for first_edge in ("rise", "fall"):
        edge, slew, t = first_edge, c.input_transition_ns, 0.0
        for cell, pin, load in stages:
            timing = arc(cell, pin)
            assert timing.attrs["timing_sense"] == "negative_unate"
            edge = "fall" if edge == "rise" else "rise"  # inverting stage
            t += sc.table_lookup(timing.find(f"cell_{edge}")[0], load, slew)
            slew = sc.table_lookup(timing.find(f"{edge}_transition")[0], load, slew)
            if cell == "NAND2X1":
                # graph-based STA keeps the worst slew of all arcs into a pin: input b
                # (slew input_transition_ns) also drives u2/Y
                other = arc("NAND2X1", "B").find(f"{edge}_transition")[0]
                slew = max(slew, sc.table_lookup(other, load, c.input_transition_ns))
        worst = max(worst, t)
    assert tm.startpoint == "a" and tm.endpoint == "y"
    assert tm.arrival_ns == pytest.approx(worst, abs=2e-3)
    assert tm.min_period_ns == pytest.approx(worst, abs=2e-3)


# ----------------------------------------------------------------------------- equivalence
@needs_flow
def test_lmul_core_netlist_equals_model_on_every_pair(small_lmul: tuple[Path, gs.Netlist],
                                                      tools: cost.Tools,
                                                      tmp_path: Path) -> None:
    net, nl = small_lmul
    w = 6
    grid = np.arange(1 << (2 * w), dtype=np.int64)
    a, b = grid >> w, grid & ((1 << w) - 1)
    sim = gs.simulate([net, tools.cells], nl.name, nl.inputs, nl.outputs, None,
                      {"a": a.tolist(), "b": b.tolist()}, len(grid), 10.0, tmp_path,
                      tools.iverilog, tools.vvp)
    want = lmul.lmul_bits(a.astype(np.uint8), b.astype(np.uint8), lmul.LMulConfig(3, 2))
    got = np.array([int(x, 2) for x in sim.outputs])
    assert len(got) == 4096
    assert np.array_equal(got, want.astype(np.int64))


_COMPLEMENT = {"AND2X1": "NAND2X1", "NAND2X1": "AND2X1", "OR2X1": "NOR2X1", "NOR2X1": "OR2X1",
               "XOR2X1": "XNOR2X1", "XNOR2X1": "XOR2X1", "BUFX2": "INVX1", "INVX1": "BUFX2"}


@needs_flow
def test_broken_netlist_is_caught_by_the_equivalence_check(
        small_lmul: tuple[Path, gs.Netlist], tools: cost.Tools, tmp_path: Path) -> None:
    net, nl = small_lmul
    rng = np.random.default_rng(3)
    stim = {"a": rng.integers(0, 64, 300).tolist(), "b": rng.integers(0, 64, 300).tolist()}
    params = {"EXP_BITS": 3, "MAN_BITS": 2}
    ref = gs.simulate(cost.hdl_sources(), "lmul_core", nl.inputs, nl.outputs, None, stim, 300,
                      10.0, tmp_path / "rtl", tools.iverilog, tools.vvp, params=params,
                      include=HDL)
    good = gs.simulate([net, tools.cells], nl.name, nl.inputs, nl.outputs, None, stim, 300,
                       10.0, tmp_path / "good", tools.iverilog, tools.vvp)
    compared, bad = gs.compare_outputs(ref.outputs, good.outputs)
    assert compared == 300 * 6 and bad == []
    # break the cell that drives the sign bit: swap it for its complement
    outs = set(nl.outputs[0].bits())
    victim = next(i for i in nl.instances if i.cell in _COMPLEMENT
                  and any(n in outs for n in i.pins.values()))
    victim.cell = _COMPLEMENT[victim.cell]
    broken = tmp_path / "broken.v"
    broken.write_text(nl.to_verilog())
    res = gs.simulate([broken, tools.cells], nl.name, nl.inputs, nl.outputs, None, stim, 300,
                      10.0, tmp_path / "broken", tools.iverilog, tools.vvp)
    _, bad = gs.compare_outputs(ref.outputs, res.outputs)
    assert bad, "a netlist with a complemented output cell passed the equivalence check"


# ----------------------------------------------------------------------------------- toggles
def test_count_toggles_hand_written_vcd(tmp_path: Path) -> None:
    vcd = tmp_path / "t.vcd"
    vcd.write_text("\n".join([
        "$timescale 1ps $end", "$scope module u $end",
        "$var wire 1 ! _1_ $end", "$var wire 3 \" y [2:0] $end",
        "$upscope $end", "$enddefinitions $end", "#0", "$dumpvars", "0!", "bx10 \"", "$end",
        "#10", "1!", "b011 \"", "#20", "0!", "b110 \"", "#30", "x!", "#40", "1!", "b111 \"", ""]))
    t = gs.count_toggles(vcd)
    # _1_: 0->1, 1->0, (x), -> 1 after x does not count: 2
    assert t["_1_"] == 2
    # y[2]: x,0,1,1 -> 1 transition; y[1]: 1,1,1,1 -> 0; y[0]: 0,1,0,1 -> 3
    assert (t["y[2]"], t["y[1]"], t["y[0]"]) == (1, 0, 3)


def test_array_stimulus_packs_rows_and_columns() -> None:
    a = np.arange(8).reshape(4, 2)
    b = np.arange(100, 108).reshape(2, 4)
    bias = np.array([1, 2, 3, 4])
    s = stimuli.array_stimulus([(a, b, bias)], width=8)
    beat = s.values["in_valid"].index(1)
    assert s.values["in_a"][beat] == sum(int(a[r, 0]) << (8 * r) for r in range(4))
    assert s.values["in_b"][beat + 1] == sum(int(b[1, c]) << (8 * c) for c in range(4))
    assert s.values["in_last"][beat + 1] == 1 and s.ops == 2 * 16


# ------------------------------------------------------------------------------- whole flow
@needs_flow
def test_measure_design_end_to_end_and_catches_a_broken_netlist(tools: cost.Tools,
                                                                 tmp_path: Path) -> None:
    """The whole per-design flow on the E5M2 L-Mul core (every operand pair checked against
    the RTL and the model), then the same flow on a tampered netlist must stop."""
    design = next(d for d in cost.designs(["e5m2"], ["mul"]) if d.unit == "lmul")
    sizes = stimuli.Sizes(mul_vectors=60)
    args = (tools, tmp_path, sizes, 1, ["uniform"], ["zero"], None, sc.StaConstraints())
    rec = cost.measure_design(design, *args)
    # the netlist measured is the one yosys built with the parameters the report names
    assert {k: rec["synth"]["params"][k] for k in ("EXP_BITS", "MAN_BITS", "SATURATE")} == {
        "EXP_BITS": 5, "MAN_BITS": 2, "SATURATE": 0}
    assert rec["check"]["model_pairs"] == 65536 + 1
    assert rec["check"]["bits_compared"] == (65536 + 1) * 8
    run = rec["runs"]["uniform/zero"]
    assert run["ops"] == 59 and run["energy_per_op_pj"] > 0
    assert 0 < rec["timing"]["min_period_ns"] < cost.CLOCK_NS["mul"]
    # swap one XOR for an XNOR (same area, so only the equivalence check can notice)
    net = tmp_path / "netlist.v"
    text = net.read_text()
    swapped = re.sub(r"^(\s*)XOR2X1 ", r"\1XNOR2X1 ", text, count=1, flags=re.M)
    if swapped == text:
        swapped = re.sub(r"^(\s*)XNOR2X1 ", r"\1XOR2X1 ", text, count=1, flags=re.M)
    assert swapped != text
    net.write_text(swapped)
    res = tmp_path / "result.json"
    stale = json.loads(res.read_text())
    del stale["check"]
    res.write_text(json.dumps(stale))
    for runs in tmp_path.glob("runs-*.json"):
        runs.unlink()
    with pytest.raises(sc.CostError, match="differs from the RTL"):
        cost.measure_design(design, *args)


# ------------------------------------------------------------------ the design that was built
E3M2_FP_MUL = {"EXP_BITS": 3, "MAN_BITS": 2, "SUBNORMALS": 1}


@pytest.fixture(scope="module")
def small_fp_mul(tools: cost.Tools, tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[Path, gs.Netlist, sc.SynthStats]:
    d = tmp_path_factory.mktemp("fp_mul_e3m2")
    net = d / "net.v"
    st = sc.synthesize(cost.hdl_sources(), HDL, "fp_mul", E3M2_FP_MUL, tools.liberty, net,
                       tools.yosys)
    return net, gs.parse_netlist(net.read_text()), st


@needs_flow
def test_synthesis_records_the_parameters_yosys_built(
        small_fp_mul: tuple[Path, gs.Netlist, sc.SynthStats], tools: cost.Tools,
        tmp_path: Path) -> None:
    _, nl, st = small_fp_mul
    assert nl.name == "fp_mul"
    assert {k: st.params[k] for k in E3M2_FP_MUL} == E3M2_FP_MUL
    # the ports' widths (1 + E + M) are the netlist's own evidence of the format
    assert [(p.name, p.width) for p in nl.ports] == [("a", 6), ("b", 6), ("y", 6)]
    other = sc.synthesize(cost.hdl_sources(), HDL, "fp_mul", {**E3M2_FP_MUL, "SUBNORMALS": 0},
                          tools.liberty, tmp_path / "flush.v", tools.yosys)
    assert other.params["SUBNORMALS"] == 0 and other.area < st.area


@needs_flow
def test_cost_flow_refuses_the_netlist_of_another_design(
        small_fp_mul: tuple[Path, gs.Netlist, sc.SynthStats], tools: cost.Tools,
        tmp_path: Path) -> None:
    """measure_design reuses the netlist in its work directory; one that was built for another
    design (the flush variant of the same multiplier, another format, another module) stops
    the flow before anything is measured."""
    net, _, st = small_fp_mul
    em = (("EXP_BITS", 3), ("MAN_BITS", 2))
    swapped = [
        (Design("mul", "e3m2", "exact_flush", "fp_mul", (*em, ("SUBNORMALS", 0))),
         "built with SUBNORMALS=1 \\(want 0\\)"),
        (next(d for d in cost.designs(["e5m2"], ["mul"]) if d.unit == "exact"),
         "built with EXP_BITS=3 \\(want 5\\)"),
        (Design("mul", "e3m2", "lmul", "lmul_core", (*em, ("SATURATE", 0))),
         "module fp_mul, not lmul_core"),
    ]
    for design, match in swapped:
        wd = tmp_path / design.name
        wd.mkdir()
        shutil.copyfile(net, wd / "netlist.v")
        (wd / "result.json").write_text(json.dumps({"synth": dataclasses.asdict(st)}))
        with pytest.raises(sc.CostError, match=match):
            cost.measure_design(design, tools, wd, stimuli.Sizes(), 1, ["uniform"], ["zero"],
                                None, sc.StaConstraints())
        assert sorted(p.name for p in wd.iterdir()) == ["netlist.v", "result.json"]


@needs_flow
def test_a_flow_that_ignores_the_parameters_is_caught(monkeypatch: pytest.MonkeyPatch,
                                                      tools: cost.Tools, tmp_path: Path) -> None:
    """A yosys script that drops the chparam builds the module's defaults (BF16 fp_mul): both
    flows notice that the netlist is not the design they report."""
    def no_chparam(sources, include, top, params, params_file=None, synth="synth -flatten"):
        return designs.yosys_front_end(sources, include, top, {}, params_file, synth)

    monkeypatch.setattr(sc, "yosys_front_end", no_chparam)
    design = next(d for d in cost.designs(["e5m2"], ["mul"]) if d.unit == "exact")
    with pytest.raises(sc.CostError, match="built with EXP_BITS=8 \\(want 5\\)"):
        cost.measure_design(design, tools, tmp_path / "cost", stimuli.Sizes(), 1, ["uniform"],
                            ["zero"], None, sc.StaConstraints())
    monkeypatch.setattr(synth, "yosys_front_end", no_chparam)
    design = next(d for d in synth.designs(["e5m2"], ["mul"]) if d.unit == "exact")
    with pytest.raises(synth.SynthError, match="built with EXP_BITS=8 \\(want 5\\)"):
        synth.synthesize(design, tools.yosys, "test")


# ------------------------------------------------------------- energy of the right netlist
@needs_flow
def test_energy_refuses_activity_and_pin_energies_of_another_netlist(
        small_lmul: tuple[Path, gs.Netlist],
        small_fp_mul: tuple[Path, gs.Netlist, sc.SynthStats], tools: cost.Tools,
        library: sc.Library, tmp_path: Path) -> None:
    """The VCD and the OpenSTA pin energies of the E3M2 fp_mul, handed to the energy of the
    E3M2 lmul_core (or the other way round), must stop the calculation: net and instance names
    (``_N_``) are shared by every netlist, so only a check of the whole set can tell."""
    rng = np.random.default_rng(7)
    stim = {"a": rng.integers(0, 64, 40).tolist(), "b": rng.integers(0, 64, 40).tolist()}
    power: dict[str, tuple[gs.Netlist, Path, Path]] = {}
    for key, (_, nl) in {"lmul": small_lmul, "fp_mul": small_fp_mul[:2]}.items():
        pwr = gs.add_input_drivers(nl)
        pwr_file = tmp_path / f"{key}.v"
        pwr_file.write_text(pwr.to_verilog())
        sim = gs.simulate([pwr_file, tools.cells], nl.name, nl.inputs, nl.outputs, None, stim,
                          40, 10.0, tmp_path / key, tools.iverilog, tools.vvp, dump_from=1)
        assert sim.vcd is not None
        power[key] = (pwr, pwr_file, sim.vcd)
    small, big = power["lmul"], power["fp_mul"]
    assert len(small[0].instances) < len(big[0].instances)
    # its own VCD is accepted and counted as before
    own = energy.activity(small[0], small[2])
    assert own == gs.net_toggles_for(small[0], gs.count_toggles(small[2]))
    assert sum(own.values()) > 0
    # the bigger design's VCD holds every net name of the smaller one: only the new check sees it
    gs.net_toggles_for(small[0], gs.count_toggles(big[2]))
    for pwr, vcd in ((small[0], big[2]), (big[0], small[2])):
        with pytest.raises(sc.CostError, match="is not of netlist"):
            energy.activity(pwr, vcd)
    pins = {key: sc.sta_pin_energies(f, p.name, [q.name for q in p.inputs], None, tools.liberty,
                                     tools.sta, sc.StaConstraints())
            for key, (p, f, _) in power.items()}
    energy.window_energy(small[0], pins["lmul"], own, 39, 10.0, None, library)
    for pwr, other in ((big[0], pins["lmul"]), (small[0], pins["fp_mul"])):
        toggles = {n: 1 for i in pwr.instances for n in i.pins.values()}
        with pytest.raises(sc.CostError, match="pin energies of another netlist"):
            energy.window_energy(pwr, other, toggles, 39, 10.0, None, library)
