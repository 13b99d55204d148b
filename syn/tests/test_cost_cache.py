"""Tests of the cost flow's caches and process pool (syn/cost.py): the netlist and per-design
caches miss on an edit of a file the design reads and hit on any other edit; a run on two
processes gives the results of a serial run; a step that fails in a worker names its design;
the phase profile covers what ran. The flow tests use the E5M2 multipliers (seconds each)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from syn import _stdcell as sc
from syn import cost, stimuli
from syn.tests._flow import needs_flow, without_times

HDL = Path(__file__).resolve().parents[2] / "hdl"


def _tools(liberty: Path) -> cost.Tools:
    return cost.Tools("yosys", "sta", "iverilog", "vvp", liberty, liberty,
                      {"yosys": "Yosys test"})


@pytest.fixture
def hdl_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of hdl/ that the flow reads instead of the real one."""
    copy = tmp_path / "hdl"
    shutil.copytree(HDL, copy)
    monkeypatch.setattr(cost, "HDL", copy)
    return copy


def _append(path: Path, text: str = "\n// edited\n") -> None:
    path.write_text(path.read_text() + text)


def _keys(tools: cost.Tools, design: Any) -> tuple[str, str]:
    c = sc.StaConstraints()
    return (cost.netlist_key(design, tools, c),
            cost.design_workdir(design, tools, Path("/nonexistent"), stimuli.Sizes(), 1,
                                c).name)


def test_keys_follow_the_files_the_design_reads(hdl_copy: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib.lib"
    lib.write_text("library (x) { }\n")
    tools = _tools(lib)
    lmul_core = next(d for d in cost.designs(["e5m2"], ["mul"]) if d.unit == "lmul")
    assert [p.name for p in cost.design_files(lmul_core)] == [
        "fp_classify.v", "lmul_core.v", "lmul_defs.vh"]
    base = _keys(tools, lmul_core)
    # files lmul_core does not read: an edit, and a new module file, keep both keys
    _append(hdl_copy / "fp_mul.v")
    _append(hdl_copy / "mac_array.v")
    (hdl_copy / "zz_new.v").write_text("module zz_new; endmodule\n")
    assert _keys(tools, lmul_core) == base
    # its own module, a module it instantiates, its include, the liberty: both keys change
    for edited in (hdl_copy / "lmul_core.v", hdl_copy / "fp_classify.v",
                   hdl_copy / "lmul_defs.vh", lib):
        before = _keys(tools, lmul_core)
        _append(edited)
        after = _keys(tools, lmul_core)
        assert after[0] != before[0] and after[1] != before[1], edited.name
    # another design, or the same one with another parameter, has other keys
    exact = next(d for d in cost.designs(["e5m2"], ["mul"]) if d.unit == "exact")
    flush = next(d for d in cost.designs(["e5m2"], ["mul"]) if d.unit == "exact_flush")
    assert len({_keys(tools, d)[0] for d in (lmul_core, exact, flush)}) == 3


def test_keys_do_not_depend_on_where_the_repository_is(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    lib = tmp_path / "lib.lib"
    lib.write_text("library (x) { }\n")
    tools = _tools(lib)
    d = cost.designs(["e5m2"], ["mul"])[0]
    keys = []
    for where in ("a", "b/c"):
        repo = tmp_path / where
        shutil.copytree(HDL, repo / "hdl")
        monkeypatch.setattr(cost, "REPO", repo)
        monkeypatch.setattr(cost, "HDL", repo / "hdl")
        keys.append(_keys(tools, d))
    assert keys[0] == keys[1]


@pytest.fixture(scope="module")
def tools() -> cost.Tools:
    return cost.Tools.find()


SMALL = stimuli.Sizes(mul_vectors=30)


@needs_flow
def test_the_netlist_cache_misses_on_an_edit_of_the_design_only(
        hdl_copy: Path, tools: cost.Tools, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """yosys runs again after an edit of lmul_core.v (a comment: the same design, but the
    cache cannot know), not after an edit of a module lmul_core does not use."""
    calls: list[str] = []
    real = sc.synthesize

    def counting(*args: Any, **kw: Any) -> sc.SynthStats:
        calls.append(args[2])
        return real(*args, **kw)

    monkeypatch.setattr(sc, "synthesize", counting)
    d = next(d for d in cost.designs(["e5m2"], ["mul"]) if d.unit == "lmul")
    root = tmp_path / "cache"

    def measure() -> dict[str, Any]:
        return cost.measure_cached(d, tools, root, SMALL, 1, [], [], None,
                                   sc.StaConstraints())

    first = measure()
    assert calls == ["lmul_core"] and "yosys" in first["profile"]
    _append(hdl_copy / "fp_mul.v")
    again = measure()
    assert calls == ["lmul_core"] and "yosys" not in again["profile"]
    assert again["synth"] == first["synth"] and again["check"] == first["check"]
    _append(hdl_copy / "lmul_core.v")
    measure()
    assert calls == ["lmul_core", "lmul_core"]
    # one netlist per design is kept, and one cache directory
    assert len(list((root / "netlists").glob(f"{d.name}-*.v"))) == 1
    assert len([p for p in root.iterdir() if p.name.startswith(d.name)]) == 1


@needs_flow
def test_two_processes_give_the_serial_results(tools: cost.Tools, tmp_path: Path) -> None:
    jobs = cost.designs(["e5m2"], ["mul"])
    args = (SMALL, 1, ["uniform"], list(cost.TIMINGS), None, sc.StaConstraints())
    serial = cost.measure_all(jobs, tools, tmp_path / "s", *args, n_jobs=1)
    # the parallel run starts from the serial run's netlists: it must not run yosys, and
    # measures everything after synthesis again
    shutil.copytree(tmp_path / "s" / "netlists", tmp_path / "p" / "netlists")
    seen: list[list[str]] = []
    parallel = cost.measure_all(jobs, tools, tmp_path / "p", *args, n_jobs=2,
                                done=lambda res: seen.append([r["name"] for r in res]))
    assert [r["name"] for r in parallel] == [d.name for d in jobs]
    assert without_times(parallel) == without_times(serial)
    assert all(r["runs"]["uniform/specify"]["energy_per_op_pj"] > 0 for r in parallel)
    for r in parallel:
        assert "yosys" not in r["profile"]
        assert {"sta_timing", "sta_power", "gate_sim", "toggles"} <= set(r["profile"])
    # the results handed out as designs finish: growing, in job order
    assert len(seen) == len(jobs) and seen[-1] == [d.name for d in jobs]
    assert all(s == [n for n in seen[-1] if n in s] for s in seen)


@needs_flow
def test_a_failing_step_in_a_worker_names_its_design(tools: cost.Tools,
                                                     tmp_path: Path) -> None:
    """The mnist workload without its operand file fails inside a worker's workload step;
    the run stops with a CostError that names the design."""
    jobs = [d for d in cost.designs(["e5m2"], ["mul"]) if d.unit == "lmul"]
    with pytest.raises(sc.CostError, match=r"^mul-e5m2-lmul.*without captured operands"):
        cost.measure_all(jobs, tools, tmp_path, SMALL, 1, ["mnist"], ["zero"], None,
                         sc.StaConstraints(), n_jobs=2)


def test_profile_table_sums_the_phases() -> None:
    from syn.report import profile_markdown

    results = [{"name": "a", "level": "mul", "profile": {"yosys": [2.0, 1.5],
                                                         "gate_sim": [1.0, 0.5]}},
               {"name": "b", "level": "pe", "profile": {"gate_sim": [3.0, 3.0]}}]
    text = profile_markdown({"command": "x", "jobs": 2, "wall_s": 4.0}, results, cost.PHASES)
    rows = {ln.split(" | ")[0].lstrip("| "): ln for ln in text.splitlines()
            if ln.startswith("|")}
    assert rows["yosys"] == "| yosys | 1.5 | 0.0 | 1.5 | 30% |"
    assert rows["gate_sim"] == "| gate_sim | 0.5 | 3.0 | 3.5 | 70% |"
    assert "5 CPU s" in text and "b 3 s, a 2 s" in text
    assert json.dumps(results)  # the profile is JSON-ready


# ----------------------------------------------------------------------------------- toggles
@needs_flow
def test_fast_toggle_count_equals_the_line_by_line_count(tools: cost.Tools,
                                                         tmp_path: Path) -> None:
    """The numpy count of a real gate-level VCD (E5M2 multiplier, both timings: the specify
    run has glitches) and of hand-written edge cases equals the line-by-line definition."""
    import numpy as np

    from syn import _gatesim as gs

    d = next(d for d in cost.designs(["e5m2"], ["mul"]) if d.unit == "exact")
    net = tmp_path / "net.v"
    sc.synthesize(cost.synth_sources(d), cost.HDL, d.top, d.param_dict, tools.liberty, net,
                  tools.yosys)
    nl = gs.add_input_drivers(gs.parse_netlist(gs.split_constant_assigns(net.read_text())))
    pwr = tmp_path / "pwr.v"
    pwr.write_text(nl.to_verilog())
    rng = np.random.default_rng(3)
    stim = {"a": rng.integers(0, 256, 200).tolist(), "b": rng.integers(0, 256, 200).tolist()}
    for timing in ("zero", "specify"):
        sim = gs.simulate([pwr, tools.cells], nl.name, nl.inputs, nl.outputs, None, stim, 200,
                          20.0, tmp_path / timing, tools.iverilog, tools.vvp, dump_from=1,
                          timing=timing)
        assert sim.vcd is not None
        fast, ref = gs.count_toggles(sim.vcd), gs.count_toggles_reference(sim.vcd)
        assert fast == ref and sum(fast.values()) > 1000
    vcd = tmp_path / "edge.vcd"
    vcd.write_text("\n".join([
        "$scope module u $end", "$var wire 1 ! a $end", "$var wire 1 !! b $end",
        "$var wire 1 z c $end", "$var wire 2 # v [1:0] $end", "$upscope $end",
        "$enddefinitions $end", "$dumpvars", "0!", "1!!", "xz", "b1 #", "$end", "#1", "1!",
        "0!!", "1z", "bx #", "#2", "z!", "0z", "b10 #", "#3", "0!", "1!!", "1z", "b01 #",
        "#4", "1!"]))  # no newline at the end
    assert gs.count_toggles(vcd) == gs.count_toggles_reference(vcd) == {
        "a": 2, "b": 2, "c": 2, "v[1]": 1, "v[0]": 1}
