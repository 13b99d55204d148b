"""Tests of the cost flow's array synthesis (syn/cost.py ``--array-synth``): the ``hier`` script
keeps the PE as one mapped module and flattens only after ABC; every other design's script and
cache keys are those of ``flat``; the PE module's parameters are checked against the array's;
cache entries of one design never evict those of a design whose name extends its name; and a
small hierarchically synthesized fused array equals its RTL."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from syn import _gatesim as gs
from syn import _stdcell as sc
from syn import cost, designs, stimuli
from syn.designs import Design
from syn.tests._flow import needs_flow

LIB = Path("/nonexistent/lib.lib")
FILES = cost._ScriptFiles(Path("N"), Path("S"), Path("P"), Path("Q"), Path("R"))


def _tools(array_synth: str) -> cost.Tools:
    return cost.Tools("yosys", "sta", "iverilog", "vvp", LIB, LIB, {"yosys": "Yosys test"},
                      array_synth=array_synth)


def _fused_array() -> Design:
    return designs.dot_sweep("bf16", (4,), (8,), ("lmul_o6",), False,
                             array_units=("lmul_o6",))[-1]


def _script(d: Design, mode: str) -> str:
    return cost.synth_script(d, _tools(mode), [Path("a.v")], Path("hdl"), LIB, Path("C"), FILES)


def _pipelined_array(pipeline: int = 1) -> Design:
    return designs.dot_sweep("bf16", (4,), (8,), ("lmul_o6",), False, (pipeline,),
                             array_units=("lmul_o6",))[-1]


def test_array_pe_names_the_instances_module_and_parameters() -> None:
    assert designs.array_pe(_fused_array()) == ("dot_pe", {
        "K": 4, "ALIGN_BITS": 8, "PIPELINE": 0, "EXP_BITS": 8, "MAN_BITS": 7, "OFFSET": 6,
        "MULTIPLIER": 0})
    assert designs.array_pe(_pipelined_array(3)) == ("dot_pe", {
        "K": 4, "ALIGN_BITS": 8, "PIPELINE": 3, "EXP_BITS": 8, "MAN_BITS": 7, "OFFSET": 6,
        "MULTIPLIER": 0})
    assert designs.array_pe(designs.arrays("bf16")[1]) == ("mac_pe", {
        "EXP_BITS": 8, "MAN_BITS": 7, "MULTIPLIER": 1})
    assert designs.array_pe(designs.processing_elements("bf16")[0]) is None


def test_hier_script_maps_the_pe_module_before_it_flattens() -> None:
    arr = _fused_array()
    flat = _script(arr, "flat").split("\n")
    hier = _script(arr, "hier").split("\n")
    # flat is the script every design had before the option
    assert "\n".join(flat) == sc.yosys_script(
        [Path("a.v")], Path("hdl"), arr.top, arr.param_dict, LIB, Path("N"), Path("S"),
        cost.CLOCK_NS["dot"] * 1000, Path("C"), Path("P"))
    assert not any("keep_hierarchy" in ln or ln == "flatten" for ln in flat)
    # hier: the same lines plus the PE steps, in this order
    assert [ln for ln in hier if ln in flat] == flat

    def at(prefix: str) -> int:  # the first line that starts with prefix
        return next(k for k, ln in enumerate(hier) if ln.startswith(prefix))

    sel = "$paramod*dot_pe*"
    assert (at("hierarchy -top mac_array") < at(f"setattr -mod -set keep_hierarchy 1 {sel}")
            < at("synth -flatten -top mac_array") < at("dfflibmap") < at("abc ")
            < at(f"tee -q -o R stat -liberty {LIB} {sel}") < at("setattr -mod -unset")
            < hier.index("flatten") < hier.index("hierarchy -top mac_array", at("abc "))
            < at("opt_clean -purge") < at("tee -q -o S stat"))
    assert at(f"tee -q -o Q dump {sel}") < at("synth -flatten")
    # every design that is not an array: hier changes nothing
    for d in (designs.processing_elements("bf16")[0], designs.dot_sweep(
            "bf16", (4,), (8,), ("exact",), False)[0]):
        assert _script(d, "hier") == _script(d, "flat")


def test_hier_arrays_have_their_own_keys_and_cache_names(tmp_path: Path) -> None:
    arr, pe = _fused_array(), designs.processing_elements("bf16")[0]
    lib = tmp_path / "lib.lib"
    lib.write_text("library (x) { }\n")
    flat, hier = (dataclasses.replace(_tools(m), liberty=lib) for m in ("flat", "hier"))
    c = sc.StaConstraints()
    assert cost.netlist_key(arr, flat, c) != cost.netlist_key(arr, hier, c)
    assert cost.netlist_key(pe, flat, c) == cost.netlist_key(pe, hier, c)
    assert cost.cache_stem(arr, hier) == arr.name + "-hier"
    assert cost.cache_stem(arr, flat) == arr.name
    assert cost.cache_stem(pe, hier) == pe.name


def test_a_design_evicts_only_its_own_stale_cache_entries(tmp_path: Path) -> None:
    """``...-k4-a8`` must not remove the entries of ``...-k4-a8-p1``, ``...-k4-a8-array`` or
    the ``-hier`` array (their names start with its name), only its own older ones."""
    lib = tmp_path / "lib.lib"
    lib.write_text("library (x) { }\n")
    tools = dataclasses.replace(_tools("hier"), liberty=lib, cells=lib)
    ds = designs.dot_sweep("bf16", (4,), (8,), ("lmul_o6",), False, (0, 1),
                           array_units=("lmul_o6",))
    assert [d.variant for d in ds] == ["k4-a8", "k4-a8-p1", "k4-a8-array", "k4-a8-p1-array"]
    root = tmp_path / "cache"
    others = [root / "dot-bf16-lmul_o6-k4-a8-p1-0123456789abcdef",
              root / "dot-bf16-lmul_o6-k4-a8-array-0123456789abcdef",
              root / "dot-bf16-lmul_o6-k4-a8-array-hier-0123456789abcdef",
              root / "dot-bf16-lmul_o6-k4-a8-hier-notakey", root / "netlists"]
    own_stale = root / "dot-bf16-lmul_o6-k4-a8-fedcba9876543210"
    for p in [*others, own_stale]:
        p.mkdir(parents=True)
    args = (tools, root, stimuli.Sizes(), 1, sc.StaConstraints())
    wd = cost.design_workdir(ds[0], *args)
    wd.mkdir()
    assert not own_stale.exists() and all(p.exists() for p in others)
    # the flat array entry survives the hier one's, and the other way round
    hier_wd = cost.design_workdir(ds[2], *args)
    assert hier_wd.name.startswith("dot-bf16-lmul_o6-k4-a8-array-hier-")
    assert all(p.exists() for p in others[:2]) and not others[2].exists()
    hier_wd.mkdir()
    cost.design_workdir(ds[2], dataclasses.replace(tools, array_synth="flat"), *args[1:])
    assert hier_wd.exists()


def test_the_pe_parameter_check_refuses_another_pe() -> None:
    """A hier array's record must hold the PE module yosys built, with the array's K,
    ALIGN_BITS, format, multiplier and offset; a flat record needs no PE entry."""
    arr = _fused_array()
    hier = _tools("hier")
    params = {**arr.param_dict, "SATURATE": 0, "SKID": 0}
    pe = {"module": "dot_pe", "area": 1.0, "cells": 1,
          "params": {"K": 4, "ALIGN_BITS": 8, "EXP_BITS": 8, "MAN_BITS": 7, "OFFSET": 6,
                     "SATURATE": 0, "FINITE_ONLY": 0, "MULTIPLIER": 0, "PIPELINE": 0}}
    good = {"params": params, "pe": pe}
    assert cost.synthesis_mismatch(arr, hier, good) is None
    assert cost.synthesis_mismatch(arr, _tools("flat"), {"params": params}) is None
    bad = [({**good, "pe": {**pe, "params": {**pe["params"], "K": 2}}}, "dot_pe was built "
            "with K=2 \\(want 4\\)"),
           ({**good, "pe": {**pe, "params": {**pe["params"], "MULTIPLIER": 1}}},
            "MULTIPLIER=1 \\(want 0\\)"),
           ({**good, "pe": {**pe, "params": {**pe["params"], "OFFSET": 8}}},
            "OFFSET=8 \\(want 6\\)"),
           ({**good, "pe": {**pe, "module": "mac_pe"}}, "no dot_pe module record"),
           ({"params": params}, "no dot_pe module record"),
           ({**good, "params": {**params, "DOT_K": 2}}, "netlist was built with DOT_K=2")]
    for rec, match in bad:
        msg = cost.synthesis_mismatch(arr, hier, rec)
        assert msg is not None and re.search(match, msg), (msg, match)
    # the pipelined array's PEs must be the pipelined dot_pe, and the other way round
    pl = _pipelined_array(1)
    pl_good = {"params": {**params, "PIPELINE": 1},
               "pe": {**pe, "params": {**pe["params"], "PIPELINE": 1}}}
    assert cost.synthesis_mismatch(pl, hier, pl_good) is None
    msg = cost.synthesis_mismatch(pl, hier, {**pl_good, "pe": pe})
    assert msg is not None and "PIPELINE=0 (want 1)" in msg, msg
    msg = cost.synthesis_mismatch(arr, hier, {**good, "pe": pl_good["pe"]})
    assert msg is not None and "PIPELINE=1 (want 0)" in msg, msg
    msg = cost.synthesis_mismatch(pl, hier, {**pl_good, "params": params})
    assert msg is not None and "netlist was built with PIPELINE=unset (want 1)" in msg, msg


def test_parameters_of_a_derived_module() -> None:
    dump = "\n".join([
        "attribute \\hdlname \"\\\\dot_pe\"",
        "module $paramod$fe1add9d39b0bb0cb9a19bac8ae69a047bc1c628\\dot_pe",
        "  parameter \\K 4", "  parameter \\ALIGN_BITS 8", "  wire input 1 \\clk", "end",
        "module $paramod\\lzc\\WIDTH=s32'00000000000000000000000000001100",
        "  parameter \\WIDTH 12", "end"])
    assert designs.parse_parameters(dump, "dot_pe") == {"K": 4, "ALIGN_BITS": 8}
    assert designs.parse_parameters(dump, "lzc") == {"WIDTH": 12}
    with pytest.raises(ValueError, match="no module mac_pe"):
        designs.parse_parameters(dump, "mac_pe")
    # two PE modules (instances built with different parameters): refused
    with pytest.raises(ValueError, match="2 modules dot_pe"):
        designs.parse_parameters(dump + "\n" + dump.split("\n", 1)[1], "dot_pe")


# ------------------------------------------------------------------------ the real flow
@needs_flow
def test_hier_synthesis_of_a_small_fused_array_equals_its_rtl(tmp_path: Path) -> None:
    """A 2x2 E5M2 array of fused PEs (K = 2) synthesized ``hier``: one flattened module made of
    four copies of the mapped PE and the array's own cells, with the PE parameters of the
    array; its netlist equals the RTL on random beats (every bit the RTL defines)."""
    tools = dataclasses.replace(cost.Tools.find(), array_synth="hier")
    em = (("EXP_BITS", 5), ("MAN_BITS", 2))
    d = Design("dot", "e5m2", "lmul", "mac_array",
               (("ROWS", 2), ("COLS", 2), *em, ("MULTIPLIER", 0), ("DOT_K", 2),
                ("ALIGN_BITS", 8)), "clk", "k2-a8-array2x2")
    net = tmp_path / "net.v"
    st = cost.synthesize_design(d, tools, net, sc.StaConstraints())
    assert cost.synthesis_mismatch(d, tools, st) is None
    assert st["pe"]["params"]["K"] == 2 and st["pe"]["params"]["MULTIPLIER"] == 0
    nl = gs.parse_netlist(gs.split_constant_assigns(net.read_text()))
    assert nl.name == "mac_array" and "module" not in net.read_text().split("endmodule", 1)[1]
    lib = sc.load_library(tools.liberty)
    assert abs(sum(lib.cells[i.cell].area for i in nl.instances) - st["area"]) < 1e-3
    # the PEs are most of it; the skew registers, chains and drain the rest
    assert 4 * st["pe"]["cells"] < st["cells"] < 4 * st["pe"]["cells"] * 1.6
    # the same netlist with a record of another PE: the flow stops before measuring anything
    broken = {**st, "pe": {**st["pe"], "params": {**st["pe"]["params"], "ALIGN_BITS": 16}}}
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "netlist.v").write_text(net.read_text())
    (wd / "result.json").write_text(json.dumps({"synth": broken}))
    with pytest.raises(sc.CostError, match=r"dot_pe was built with ALIGN_BITS=16 \(want 8\)"):
        cost.measure_design(d, tools, wd, stimuli.Sizes(), 1, ["uniform"], ["zero"], None,
                            sc.StaConstraints())
    assert sorted(p.name for p in wd.iterdir()) == ["netlist.v", "result.json"]
    rng = np.random.default_rng(11)
    n = 60
    widths = {p.name: p.width for p in nl.inputs}
    stim = {"rst": [1, 1] + [0] * (n - 2), "out_ready": rng.integers(0, 2, n).tolist(),
            "in_valid": rng.integers(0, 2, n).tolist(), "in_last": rng.integers(0, 2, n).tolist()}
    for port in ("in_a", "in_b", "in_bias"):
        stim[port] = [int.from_bytes(rng.bytes((widths[port] + 7) // 8), "little")
                      & ((1 << widths[port]) - 1) for _ in range(n)]
    gate = gs.simulate([net, tools.cells], nl.name, nl.inputs, nl.outputs, "clk", stim, n,
                       20.0, tmp_path / "gate", tools.iverilog, tools.vvp)
    ref = gs.simulate(cost.synth_sources(d), d.top, nl.inputs, nl.outputs, "clk", stim, n,
                      20.0, tmp_path / "rtl", tools.iverilog, tools.vvp,
                      params=d.param_dict, include=cost.HDL)
    compared, bad = gs.compare_outputs(ref.outputs, gate.outputs)
    assert not bad and compared > n * 32
    assert json.dumps(st)  # the record is JSON-ready (the netlist cache stores it)


def test_array_stimulus_spaces_the_last_beats_of_short_tiles() -> None:
    """mac_array takes a tile's last beat only ROWS cycles or more after the previous one:
    tiles of fewer beats (the fused array's check tiles) wait with idle cycles; tiles of
    ROWS beats or more (every sequential array stimulus) get none."""
    def lasts(s: stimuli.Stimulus) -> list[int]:
        return [i for i, (v, ln) in enumerate(zip(s.values["in_valid"], s.values["in_last"],
                                                  strict=True)) if v and ln]

    rng = np.random.default_rng(2)
    tiles = [(rng.integers(0, 1 << 16, (4, k)), rng.integers(0, 1 << 16, (k, 4)),
              np.zeros(4, dtype=np.int64)) for k in (5, 1, 9, 16, 3)]
    s = stimuli.array_stimulus(tiles, 16, dot_k=4)
    assert lasts(s) == [3, 7, 11, 15, 19]  # beats 2, 1, 3, 4, 1: each waits for the drain
    assert sum(s.values["in_valid"]) == 2 + 1 + 3 + 4 + 1 and s.ops == 16 * (5 + 1 + 9 + 16 + 3)
    seq = stimuli.array_stimulus(tiles[2:4], 16)
    assert lasts(seq) == [10, 26] and seq.n_steps == 2 + 25 + 10
