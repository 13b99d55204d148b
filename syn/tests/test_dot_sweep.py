"""Tests of the cost flow's ``dot`` level: the energy-accuracy sweep of sequential and fused PEs
(syn/designs.py ``dot_sweep``, syn/stimuli.py ``dot_stimulus``, syn/energy.py's split of clock
and register energy, ``python -m syn.cost --levels dot`` / ``--preset quick``)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from syn import _gatesim as gs
from syn import _stdcell as sc
from syn import cost, designs, energy, stimuli
from syn.designs import Design
from syn.tests._flow import needs_flow


# ------------------------------------------------------------------------------ the table
def test_dot_sweep_names_and_parameters() -> None:
    ds = designs.dot_sweep("bf16", (4, 16), (8, 276))
    names = [d.name for d in ds]
    assert len(set(names)) == len(names) == 3 * (1 + 4)
    by = {d.name: d for d in ds}
    seq = by["dot-bf16-exact-seq"]
    assert seq.top == "mac_pe" and seq.param_dict == {"EXP_BITS": 8, "MAN_BITS": 7,
                                                      "MULTIPLIER": 1}
    # the paper's BF16 offset is 2^(7-4) = 8 LSBs; the tuned one is make tune's 6
    f = by["dot-bf16-lmul-k16-a276"]
    assert f.top == "dot_pe" and f.clock == "clk"
    assert f.param_dict == {"K": 16, "ALIGN_BITS": 276, "EXP_BITS": 8, "MAN_BITS": 7,
                            "MULTIPLIER": 0, "OFFSET": 8}
    assert by["dot-bf16-lmul_o6-k4-a8"].param_dict["OFFSET"] == 6
    # the name and the parameters cannot disagree
    for d in ds:
        m = re.fullmatch(r"dot-bf16-(\w+)-k(\d+)-a(\d+)", d.name)
        if m:
            assert (d.param_dict["K"], d.param_dict["ALIGN_BITS"]) == (int(m[2]), int(m[3]))
    assert [d.name for d in designs.dot_sweep("bf16", (8,), (16,), ("exact",), False)] == [
        "dot-bf16-exact-k8-a16"]
    # formats without a tuned offset get two multipliers
    assert {d.unit for d in designs.dot_sweep("e4m3_ieee", (8,), (16,))} == {"exact", "lmul"}


@pytest.mark.parametrize("kw, match", [({"ks": (0,)}, "K=0 outside"),
                                       ({"align_bits": (277,)}, "ALIGN_BITS=277 outside"),
                                       ({"units": ("lmul_o7",)}, "unknown dot unit")])
def test_dot_sweep_refuses_bad_selections(kw: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        designs.dot_sweep("bf16", **kw)


def test_dot_level_is_a_cost_level_not_a_default_one() -> None:
    assert "dot" not in cost.LEVELS
    got = cost.designs(["bf16"], ["dot"], dot=cost.DotSelection((8,), (16,), ("lmul",)))
    assert [d.name for d in got] == ["dot-bf16-lmul-seq", "dot-bf16-lmul-k8-a16"]
    with pytest.raises(ValueError, match="unknown format"):
        cost.designs(["fp32"], ["dot"])


# --------------------------------------------------------------------------- the stimulus
def _unpack(word: int, lanes: int, width: int) -> list[int]:
    return [(word >> (width * i)) & ((1 << width) - 1) for i in range(lanes)]


def test_dot_stimulus_packs_lanes_and_pads_the_last_chunk() -> None:
    a, b = np.array([1, 2, 3, 4, 5]), np.array([11, 12, 13, 14, 15])
    s = stimuli.dot_stimulus([(a, b, 0x3F800000)], k_lanes=2, width=16)
    beats = [i for i, v in enumerate(s.values["in_valid"]) if v]
    assert len(beats) == 3 and s.ops == 5 and s.dump_from == 2
    assert [_unpack(s.values["in_a"][i], 2, 16) for i in beats] == [[1, 2], [3, 4], [5, 0]]
    assert [_unpack(s.values["in_b"][i], 2, 16) for i in beats] == [[11, 12], [13, 14], [15, 0]]
    assert [s.values["in_first"][i] for i in beats] == [1, 0, 0]
    assert [s.values["in_last"][i] for i in beats] == [0, 0, 1]
    assert all(s.values["in_bias"][i] == 0x3F800000 for i in beats)


@pytest.mark.parametrize("workload", ["uniform", "mnist"])
def test_every_dot_design_sees_the_same_dot_products(workload: str) -> None:
    """The sequential PE one pair per beat and the fused PE K pairs per step must be fed the
    same operand stream, or their energies are not comparable."""
    rng = np.random.default_rng(3)
    mn = stimuli.MnistOperands(rng.uniform(-1, 1, (5, 4, 156)).astype(np.float32),
                               rng.uniform(-0.3, 0.3, (156, 512)).astype(np.float32),
                               rng.uniform(-0.1, 0.1, 512).astype(np.float32), "test")
    sizes = stimuli.Sizes(pe_tiles=3)
    seq, fused = designs.dot_sweep("bf16", (8,), (16,), ("exact",))
    s_seq = stimuli.workload_stimulus(seq, workload, sizes, 1, mn)
    s_dot = stimuli.workload_stimulus(fused, workload, sizes, 1, mn)
    assert s_seq.ops == s_dot.ops == 3 * 156
    pairs_seq = [(s_seq.values["in_a"][i], s_seq.values["in_b"][i])
                 for i, v in enumerate(s_seq.values["in_valid"]) if v]
    pairs_dot = []
    for i, v in enumerate(s_dot.values["in_valid"]):
        if v:
            pairs_dot += zip(_unpack(s_dot.values["in_a"][i], 8, 16),
                             _unpack(s_dot.values["in_b"][i], 8, 16), strict=True)
    # 156 = 19 * 8 + 4: each dot product's last step carries 4 padding pairs
    assert len(pairs_dot) == 3 * 160
    real = [p for j, p in enumerate(pairs_dot) if j % 160 < 156]
    assert real == pairs_seq
    assert all(p == (0, 0) for j, p in enumerate(pairs_dot) if j % 160 >= 156)


# ------------------------------------------------------------------------- clock/registers
@needs_flow
def test_sequential_cells_are_the_liberty_flip_flops() -> None:
    lib = sc.load_library(sc.library_files()[0])
    text = sc.library_files()[0].read_text()
    # independent of the parser: a cell is sequential if its liberty text has an ff/latch group
    seq_cells = set()
    for m in re.finditer(r"cell\s*\(\s*(\w+)\s*\)", text):
        end = text.find("cell (", m.end())
        body = text[m.end():end if end > 0 else len(text)]
        if re.search(r"\b(ff|latch)\s*\(", body):
            seq_cells.add(m.group(1))
    assert seq_cells and "DFFPOSX1" in seq_cells
    assert {c for c in lib.cells if energy.is_sequential(lib, c)} == seq_cells
    with pytest.raises(sc.CostError, match="not in library"):
        energy.is_sequential(lib, "NO_SUCH_CELL")


@needs_flow
def test_quick_preset_measures_the_designs_it_names(tmp_path: Path) -> None:
    """``python -m syn.cost --preset quick``: each reported design is the netlist yosys built
    with its parameters; the clock-and-register energy is a positive part of the dynamic
    energy; another design's netlist in the cache, or another design's activity file, stops
    the flow."""
    out = tmp_path / "out"
    assert cost.main(["--preset", "quick", "--workloads", "uniform", "--timings", "zero",
                      "--out", str(out), "--no-plot"]) == 0
    rep = json.loads((out / "cost.json").read_text())
    names = [r["name"] for r in rep["designs"]]
    assert names == ["dot-bf16-lmul-seq", "dot-bf16-lmul-k2-a8"]
    for r in rep["designs"]:
        built = r["synth"]["params"]
        assert all(built[k] == v for k, v in r["params"].items()), r["name"]
        e = r["runs"]["uniform/zero"]["energy"]
        assert 0 < e["clock"] <= e["clock_and_registers"] < e["dynamic"]
        assert e["registers"] > 0
        assert e["datapath"] == pytest.approx(e["dynamic"] - e["clock_and_registers"])
        assert r["runs"]["uniform/zero"]["ops"] == 156
    fused = next(r for r in rep["designs"] if r["top"] == "dot_pe")
    assert (fused["params"]["K"], fused["params"]["ALIGN_BITS"]) == (2, 8)
    # the dot_pe netlist under a design that claims another window
    cache = out / "cache" / "cost"
    wd_fused = next(p for p in cache.iterdir() if p.name.startswith("dot-bf16-lmul-k2-a8-"))
    wrong = Design("dot", "bf16", "lmul", "dot_pe",
                   (("K", 2), ("ALIGN_BITS", 16), ("EXP_BITS", 8), ("MAN_BITS", 7),
                    ("MULTIPLIER", 0), ("OFFSET", 8)), "clk", "k2-a16")
    wd = tmp_path / "wrong"
    wd.mkdir()
    shutil.copyfile(wd_fused / "netlist.v", wd / "netlist.v")
    rec = json.loads((wd_fused / "result.json").read_text())
    (wd / "result.json").write_text(json.dumps({"synth": rec["synth"]}))
    tools = cost.Tools.find()
    with pytest.raises(sc.CostError, match="built with ALIGN_BITS=8 \\(want 16\\)"):
        cost.measure_design(wrong, tools, wd, cost.QUICK_SIZES, 1, ["uniform"], ["zero"],
                            None, sc.StaConstraints())
    # the fused PE's activity handed to the sequential PE's energy
    wd_seq = next(p for p in cache.iterdir() if p.name.startswith("dot-bf16-lmul-seq-"))
    nets = {}
    for key, w in (("seq", wd_seq), ("fused", wd_fused)):
        nl = gs.parse_netlist((w / "netlist.v").read_text())
        nets[key] = (gs.add_input_drivers(nl, skip=["clk"]), w / "power_netlist.v", nl)
    d_fused = next(d for d in cost.designs(["bf16"], ["dot"], dot=cost.QUICK_DOT)
                   if d.top == "dot_pe")
    stim = stimuli.workload_stimulus(d_fused, "uniform", cost.QUICK_SIZES, 1, None)
    pwr, pwr_file, nl = nets["fused"]
    sim = gs.simulate([pwr_file, tools.cells], nl.name, nl.inputs, nl.outputs, "clk",
                      stim.values, stim.n_steps, 100.0, tmp_path / "sim", tools.iverilog,
                      tools.vvp, dump_from=stim.dump_from)
    assert sim.vcd is not None
    assert sum(energy.activity(pwr, sim.vcd).values()) > 0
    with pytest.raises(sc.CostError, match="is not of netlist"):
        energy.activity(nets["seq"][0], sim.vcd)


# ---------------------------------------------------------------------- PIPELINE = 1 designs
def test_pipelined_designs_are_named_apart_and_single_stage_ones_unchanged() -> None:
    ds = designs.dot_sweep("bf16", (4,), (8,), ("lmul_o6",), False, (0, 1))
    assert [d.name for d in ds] == ["dot-bf16-lmul_o6-k4-a8", "dot-bf16-lmul_o6-k4-a8-p1"]
    assert "PIPELINE" not in ds[0].param_dict  # the default: names and cache keys as before
    assert ds[1].param_dict == {**ds[0].param_dict, "PIPELINE": 1}
    assert ds[0] == designs.dot_sweep("bf16", (4,), (8,), ("lmul_o6",), False)[0]
    with pytest.raises(ValueError, match="PIPELINE=4 outside"):
        designs.dot_sweep("bf16", (4,), (8,), pipelines=(4,))
    p2 = designs.dot_sweep("bf16", (4,), (8,), ("lmul_o6",), False, (2,))[0]
    assert (p2.name, p2.param_dict["PIPELINE"]) == ("dot-bf16-lmul_o6-k4-a8-p2", 2)


def test_dot_results_are_the_model_at_the_step_the_latency_gives() -> None:
    """A hand-computed dot product (BF16, exact products: 0.5 + 1*1 + 2*1 + 3*1 = 6.5) is due
    at the in_last step of the single-stage PE, one step later with PIPELINE = 1 or 2, two with
    PIPELINE = 3."""
    one, two, three = 0x3F80, 0x4000, 0x4040
    tiles = [(np.array([one, two, three]), np.array([one, one, one]), 0x3F000000)]
    p0, p1 = designs.dot_sweep("bf16", (2,), (8,), ("exact",), False, (0, 1))
    s = stimuli.dot_stimulus(tiles, 2, 16)
    last = s.values["in_last"].index(1)
    assert stimuli.dot_results(p0, s) == [(last, 0x40D00000)]
    assert stimuli.dot_results(p1, s) == [(last + 1, 0x40D00000)]
    # PIPELINE = 2 shares PIPELINE = 1's latency; PIPELINE = 3 is one step later still, and its
    # stimulus ends with two idle steps so that the result shows within it
    p2, p3 = designs.dot_sweep("bf16", (2,), (8,), ("exact",), False, (2, 3))
    assert stimuli.dot_results(p2, s) == [(last + 1, 0x40D00000)]
    s3 = stimuli._dot_level(p3, tiles, 16)
    assert s3.n_steps == s.n_steps + 1 and s3.values["in_valid"][-2:] == [0, 0]
    assert stimuli.dot_results(p3, s3) == [(last + 2, 0x40D00000)] and last + 2 < s3.n_steps
    seq = designs.dot_sweep("bf16", (2,), (8,), ("exact",))[0]
    s_seq = stimuli.pe_stimulus(tiles)
    assert stimuli.dot_results(seq, s_seq) == [(s_seq.values["in_last"].index(1), 0x40D00000)]


@needs_flow
def test_the_flow_checks_the_pipelined_pe_against_the_model_at_its_latency(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The K=2 PIPELINE=1 design passes the flow's check (gate level = RTL = lmul.matmul one
    step after in_last); a flow that looked for the result at the single-stage step fails."""
    d = designs.dot_sweep("bf16", (2,), (8,), ("lmul",), False, (1,))[0]
    tools = cost.Tools.find()
    rec = cost.measure_design(d, tools, tmp_path / "ok", cost.QUICK_SIZES, 1, [], [], None,
                              sc.StaConstraints())
    assert rec["synth"]["params"]["PIPELINE"] == 1
    assert rec["check"]["model_dots"] == cost.QUICK_SIZES.check_pe_tiles
    real = stimuli.dot_results
    monkeypatch.setattr(cost, "dot_results",
                        lambda des, stim: [(s - 1, v) for s, v in real(des, stim)])
    with pytest.raises(sc.CostError, match="out_sum at step"):
        cost.measure_design(d, tools, tmp_path / "early", cost.QUICK_SIZES, 1, [], [], None,
                            sc.StaConstraints())


# ------------------------------------------------------------------- the 4x4 array of fused PEs
def test_fused_array_designs_and_their_stimulus_match_the_sequential_arrays() -> None:
    """``array_units``: the 4x4 mac_array of fused PEs (DOT_K = K); its stimulus carries the
    sequential array's tiles (same seed), DOT_K k-steps per beat in the array's lane order."""
    ds = designs.dot_sweep("bf16", (4,), (8,), ("lmul_o6",), False, array_units=("lmul_o6",))
    arr = ds[-1]
    assert arr.name == "dot-bf16-lmul_o6-k4-a8-array" and arr.top == "mac_array"
    assert arr.param_dict == {"ROWS": 4, "COLS": 4, "EXP_BITS": 8, "MAN_BITS": 7,
                              "MULTIPLIER": 0, "OFFSET": 6, "DOT_K": 4, "ALIGN_BITS": 8}
    with pytest.raises(ValueError, match="unknown dot unit"):
        designs.dot_sweep("bf16", (4,), (8,), array_units=("nope",))
    # the pipelined PEs' array: PIPELINE passed on, its own name; PIPELINE 0 keeps the old one
    p1 = designs.dot_sweep("bf16", (4,), (8,), ("lmul_o6",), False, (0, 1),
                           array_units=("lmul_o6",))
    assert [d.name for d in p1 if d.top == "mac_array"] == [
        "dot-bf16-lmul_o6-k4-a8-array", "dot-bf16-lmul_o6-k4-a8-p1-array"]
    assert p1[-1].param_dict == {**arr.param_dict, "PIPELINE": 1}
    rng = np.random.default_rng(5)
    mn = stimuli.MnistOperands(rng.uniform(-1, 1, (5, 4, 156)).astype(np.float32),
                               rng.uniform(-0.3, 0.3, (156, 512)).astype(np.float32),
                               rng.uniform(-0.1, 0.1, 512).astype(np.float32), "test")
    sizes = stimuli.Sizes(array_tiles=2)
    seq = designs.arrays("bf16")[0]
    s_seq = stimuli.workload_stimulus(seq, "mnist", sizes, 1, mn)
    s_arr = stimuli.workload_stimulus(arr, "mnist", sizes, 1, mn)
    assert s_seq.ops == s_arr.ops == 2 * 16 * 156 and s_arr.out_beats == s_seq.out_beats
    beats_seq = [i for i, v in enumerate(s_seq.values["in_valid"]) if v]
    beats_arr = [i for i, v in enumerate(s_arr.values["in_valid"]) if v]
    assert len(beats_seq) == 2 * 156 and len(beats_arr) == 2 * 39
    for t in range(2):
        for j in range(39):
            a = _unpack(s_arr.values["in_a"][beats_arr[39 * t + j]], 16, 16)
            b = _unpack(s_arr.values["in_b"][beats_arr[39 * t + j]], 16, 16)
            for i in range(4):
                step = beats_seq[156 * t + 4 * j + i]
                assert [a[r * 4 + i] for r in range(4)] == _unpack(
                    s_seq.values["in_a"][step], 4, 16)
                assert [b[c * 4 + i] for c in range(4)] == _unpack(
                    s_seq.values["in_b"][step], 4, 16)
    # a partial last chunk: K = 5 in beats of 2, lanes of the missing k-step +0
    s = stimuli.array_stimulus([(np.arange(1, 21).reshape(4, 5), np.arange(21, 41).reshape(5, 4),
                                 np.zeros(4, dtype=np.int64))], 16, dot_k=2)
    last = [i for i, v in enumerate(s.values["in_valid"]) if v][-1]
    assert s.ops == 80 and s.values["in_last"][last] == 1
    assert _unpack(s.values["in_a"][last], 8, 16) == [5, 0, 10, 0, 15, 0, 20, 0]
    assert _unpack(s.values["in_b"][last], 8, 16) == [37, 0, 38, 0, 39, 0, 40, 0]
