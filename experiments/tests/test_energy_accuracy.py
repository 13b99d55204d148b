"""Tests of the energy-accuracy study (experiments/energy_accuracy.py) and the fused
accumulation option of the arithmetic modes (experiments/modes.py)."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lmul
from experiments import energy_accuracy as ea
from experiments import grid
from experiments.modes import parse_mode

from .helpers import synthetic_images


# ------------------------------------------------------------------------------------ modes
def test_fused_mode_options_parse_and_compute_the_fused_matmul() -> None:
    m = parse_mode("lmul:offset=6,acc=fused,k=8,align=exact")
    assert m.name == "lmul:offset=6,acc=fused,k=8,align=276"
    assert m.accumulate == lmul.Fused(8, 276) and m.cfg.offset == 6
    assert parse_mode(m.name) == m
    assert parse_mode("bf16:acc=seq") == parse_mode("bf16")
    d = m.describe()
    assert (d["accumulate"], d["k"], d["align_bits"]) == ("fused", 8, 276)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 20)).astype(np.float32)
    b = rng.standard_normal((20, 5)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    for mode, mult in (("lmul:acc=fused,k=4,align=8", "lmul"),
                       ("bf16:acc=fused,k=4,align=8", "exact")):
        got = parse_mode(mode).matmul(a, b, bias)
        want = lmul.matmul_reference(a, b, bias, multiplier=mult,
                                     accumulate=lmul.Fused(4, 8))
        assert np.array_equal(got.view(np.uint32), np.asarray(want, np.float32).view(np.uint32))
    # a narrow window must change some bits, or the option would be ignored unnoticed
    seq = parse_mode("lmul").matmul(a, b, bias)
    assert not np.array_equal(seq, parse_mode("lmul:acc=fused,k=4,align=2").matmul(a, b, bias))


@pytest.mark.parametrize("text, match", [
    ("lmul:acc=fused,k=8", "needs k=K and align=A"), ("lmul:k=8", "need acc=fused"),
    ("lmul:acc=sum", "acc must be seq or fused"), ("seed:acc=fused,k=8,align=8", "seed"),
    ("lmul:acc=fused,k=x,align=8", "must be integers"),
    ("lmul:acc=fused,k=65,align=8", "1..64"), ("fp32:acc=fused,k=8,align=8", "no options"),
    ("lmul:acc=fused,k=8,k=4,align=8", "given twice")])
def test_bad_fused_mode_options(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_mode(text)


# ------------------------------------------------------------------------------------- join
def _cost_row(unit: str, top: str, k: int = 1, align: int | None = None,
              e: float = 100.0, clkreg: float = 20.0, pipeline: int = 0,
              zero: float | None = None, fmt: str = "bf16") -> dict[str, Any]:
    """A cost row as syn.cost writes it; ``fmt`` a name of lmul.PRESETS (its widths and, for
    ``lmul``, the paper's offset of that format: 8 for BF16, 1 for E4M3, written here by hand
    rather than taken from the code under test)."""
    f = lmul.PRESETS[fmt]
    params: dict[str, int] = {"EXP_BITS": f.exp_bits, "MAN_BITS": f.man_bits}
    if top == "dot_pe":
        params = {"K": k, "ALIGN_BITS": align or 8, **params}
    params["MULTIPLIER"] = 1 if unit == "exact" else 0
    if unit == "lmul":
        params["OFFSET"] = {"bf16": 8, "e4m3_ieee": 1}[fmt]
    if unit == "lmul_o6":
        params["OFFSET"] = 6
    if pipeline:
        params["PIPELINE"] = pipeline
    variant = "seq" if top == "mac_pe" else f"k{k}-a{align}" + (f"-p{pipeline}" if pipeline
                                                                 else "")
    ops = 156

    def run(pj: float) -> dict[str, Any]:
        return {"ops": ops, "energy_per_op_pj": pj,
                "energy": {"clock_and_registers": clkreg * ops * 1e-12,
                           "datapath": (pj - clkreg) * ops * 1e-12, "leakage": 0.0}}

    runs = {"mnist/specify": run(e), "uniform/specify": run(e)}
    if zero is not None:
        runs["mnist/zero"] = run(zero)
    built = {**params, "SATURATE": 0, **({"PIPELINE": pipeline} if top == "dot_pe" else {})}
    return {"level": "dot", "name": f"dot-{fmt}-{unit}-{variant}", "unit": unit, "top": top,
            "format": fmt,
            "params": dict(params), "synth": {"area": 1000.0, "params": built},
            "timing": {"min_period_ns": 20.0}, "period_ns": 100.0, "runs": runs}


def _cost_doc() -> dict[str, Any]:
    return {"meta": {"command": "python -m syn.cost --levels dot"}, "designs": [
        _cost_row("exact", "mac_pe", e=500.0, clkreg=40.0),
        _cost_row("lmul", "mac_pe", e=350.0, clkreg=40.0),
        _cost_row("exact", "dot_pe", 8, 16, e=200.0, clkreg=30.0),
        _cost_row("lmul", "dot_pe", 8, 16, e=110.0, clkreg=30.0),
        _cost_row("lmul_o6", "dot_pe", 8, 16, e=110.0, clkreg=30.0)]}


def _acc() -> dict[tuple[str, str], dict[int, float]]:
    base = {0: 90.0, 1: 91.0, 2: 92.0}
    out = {}
    for ds in ("mnist", "fashion"):
        out[(ds, "fp32")] = dict(base)
        out[(ds, "bf16")] = {s: v + 0.01 * (s - 1) for s, v in base.items()}
        out[(ds, "lmul")] = {s: v - 1.0 - 0.1 * s for s, v in base.items()}
        out[(ds, "bf16:acc=fused,k=8,align=16")] = dict(base)
        out[(ds, "lmul:acc=fused,k=8,align=16")] = {s: v - 2.0 for s, v in base.items()}
        out[(ds, "lmul:offset=6,acc=fused,k=8,align=16")] = {
            s: v + (0.2, -0.2, 0.1)[s] for s, v in base.items()}
    return out


def test_join_pairs_each_design_with_the_mode_of_its_built_parameters() -> None:
    rows = ea.join(_cost_doc(), _acc(), ["mnist", "fashion"])
    by = {r["design"]: r for r in rows}
    assert by["dot-bf16-lmul_o6-k8-a16"]["mode"] == "lmul:offset=6,acc=fused,k=8,align=16"
    assert by["dot-bf16-exact-seq"]["mode"] == "bf16"
    d = by["dot-bf16-lmul-k8-a16"]["mnist_delta"]
    assert d.n == 3 and d.mean == pytest.approx(-2.0)
    assert by["dot-bf16-lmul-k8-a16"]["clkreg_mnist_pj"] == pytest.approx(30.0)
    v = ea.verdicts(rows, ["mnist", "fashion"])
    # the only L-Mul design whose CIs include 0 is the tuned-offset fused one
    assert v["best"] == "dot-bf16-lmul_o6-k8-a16"
    assert v["best_ratio"] == pytest.approx(110.0 / 500.0) and v["reaches_target"]
    assert v["fused_exact"] == "dot-bf16-exact-k8-a16"
    assert v["ratio_to_fused_exact"] == pytest.approx(110.0 / 200.0)
    assert v["lmul_share_of_saving"] == pytest.approx((200.0 - 110.0) / (500.0 - 110.0))
    assert v["per_image_uj"] == pytest.approx(110.0 * ea.MACS_PER_IMAGE * 1e-6)
    assert ea.MACS_PER_IMAGE == 28 * 156 * 512 + 128 * 10 == 2_237_696


def _cell_row(unit: str, variant: str, pj: float) -> dict[str, Any]:
    return {"level": "cell", "format": "bf16", "unit": unit, "variant": variant,
            "name": f"cell-bf16-{unit}-{variant}",
            "runs": {"mnist/specify": {"ops": 10, "energy_per_op_pj": pj}}}


def test_whole_cell_per_image_uses_each_designs_own_multiplier() -> None:
    ops = {"ewmul": 100, "add": 10, "sigmoid": 30}
    doc = _cost_doc()
    doc["meta"]["cell_ops_per_image"] = ops
    doc["designs"] += [_cell_row("lmul", "ewmul", 1.0), _cell_row("exact", "ewmul", 9.0),
                       _cell_row("common", "add", 20.0), _cell_row("common", "sigmoid", 5.0)]
    rest_l, rest_e = ea.cell_rest(doc, "lmul_o6"), ea.cell_rest(doc, "exact")
    assert rest_l is not None and rest_e is not None
    assert rest_l["uj"] == pytest.approx((100 * 1.0 + 10 * 20.0 + 30 * 5.0) * 1e-6)
    assert rest_e["uj"] == pytest.approx((100 * 9.0 + 10 * 20.0 + 30 * 5.0) * 1e-6)
    rows = ea.join(doc, _acc(), ["mnist", "fashion"])  # the cell rows are not designs
    assert len(rows) == 5
    v = ea.verdicts(rows, ["mnist", "fashion"], {"lmul": rest_l, "exact": rest_e})
    macs = ea.MACS_PER_IMAGE
    assert v["cell_per_image_uj"] == pytest.approx((110.0 * macs + 450.0) * 1e-6)
    assert v["baseline_cell_per_image_uj"] == pytest.approx((500.0 * macs + 1250.0) * 1e-6)
    # a missing unit leaves the cell out instead of counting it as free
    doc["designs"] = [r for r in doc["designs"] if r.get("variant") != "sigmoid"]
    assert ea.cell_rest(doc, "lmul") is None
    assert "cell_per_image_uj" not in ea.verdicts(rows, ["mnist"], {"lmul": None,
                                                                  "exact": rest_e})


@pytest.mark.parametrize("tamper, match", [
    (lambda r: r["synth"]["params"].update(ALIGN_BITS=8), "built with ALIGN_BITS=8"),
    (lambda r: (r["params"].update(ALIGN_BITS=8), r["synth"]["params"].update(ALIGN_BITS=8)),
     "netlist has K=8, ALIGN_BITS=8"),
    (lambda r: (r["params"].update(MULTIPLIER=1), r["synth"]["params"].update(MULTIPLIER=1)),
     "MULTIPLIER=1"),
    (lambda r: (r["params"].update(OFFSET=7), r["synth"]["params"].update(OFFSET=7)),
     "not the paper's"),
    (lambda r: r.update(top="mac_pe"), "variant k8-a16 but top mac_pe"),
    (lambda r: r.update(name="pe-bf16-lmul"), "not a dot-level design")])
def test_join_refuses_mismatched_designs(tamper: Any, match: str) -> None:
    doc = _cost_doc()
    tamper(next(r for r in doc["designs"] if r["name"] == "dot-bf16-lmul-k8-a16"))
    with pytest.raises(ea.JoinError, match=match):
        ea.join(doc, _acc(), ["mnist"])


def test_join_refuses_two_rows_of_one_design() -> None:
    doc = _cost_doc()
    dup = copy.deepcopy(doc["designs"][3])
    doc["designs"].append(dup)
    with pytest.raises(ea.JoinError, match="are the same design"):
        ea.join(doc, _acc(), ["mnist"])


def test_pareto_front_on_a_hand_made_set() -> None:
    pts = [(10.0, -1.0), (5.0, -2.0), (12.0, 0.0), (11.0, -1.0), (5.0, -3.0),
           (20.0, 0.0), (3.0, math.nan), (15.0, 0.5)]
    # (11,-1) is dominated by (10,-1), (5,-3) by (5,-2), (20,0) by (12,0), NaN never counts
    assert ea.pareto(pts) == [1, 0, 2, 7]
    assert ea.pareto([(1.0, 0.0), (1.0, 0.0)]) == [0, 1]


# -------------------------------------------------------------------------------- end to end
def _loader(name: str, root: Path | None) -> Any:
    return synthetic_images(name, n_train=64, n_test=20)


def test_quick_grid_and_report_end_to_end(tmp_path: Path) -> None:
    p = ea.Preset("t", ("mnist",), (0, 1), 1, None, (8,), (16,), tmp_path / "acc.json")
    grid.run([grid.Job(list(p.datasets), list(p.seeds), p.epochs)],
             [m for m in ea.preset_modes(p) if "lmul" not in m or "offset" in m],
             p.out, load_fn=_loader, progress=False, log=lambda m: None,
             weights_dir=tmp_path / "w")
    cost = tmp_path / "cost.json"
    doc = _cost_doc()
    doc["designs"] = [r for r in doc["designs"] if r["unit"] != "lmul"]
    cost.write_text(json.dumps(doc))
    paths = ea.report(cost, p.out, p, tmp_path / "ea", "test", plot=True)
    assert [x.suffix for x in paths] == [".json", ".csv", ".md", ".png"]
    out = json.loads(paths[0].read_text())
    by = {r["design"]: r for r in out["designs"]}
    assert by["dot-bf16-lmul_o6-k8-a16"]["mnist_delta"]["n"] == 2
    assert out["meta"]["pareto"][0] == "dot-bf16-lmul_o6-k8-a16"
    md = paths[2].read_text()
    assert "Verdicts" in md and "dot-bf16-exact-seq" in md
    # a report written over the grid's own results file would destroy them
    before = p.out.read_bytes()
    with pytest.raises(ea.JoinError, match="would overwrite the accuracy results"):
        ea.report(cost, p.out, p, p.out.with_suffix(""), "test")
    assert p.out.read_bytes() == before
    assert all(q.report_stem.with_suffix(".json") != q.out for q in ea.PRESETS.values())


def test_cost_files_of_parts_of_the_sweep_are_merged_only_with_equal_settings(
        tmp_path: Path) -> None:
    doc = _cost_doc()
    meta = {"command": "a", "versions": {"yosys": "1"}, "sizes": {"pe_tiles": 6}, "seed": 1,
            "constraints": {}}
    one, two = tmp_path / "1.json", tmp_path / "2.json"
    one.write_text(json.dumps({"meta": meta, "designs": doc["designs"][:2]}))
    two.write_text(json.dumps({"meta": {**meta, "command": "b"}, "designs": doc["designs"][2:]}))
    merged = ea.read_cost([one, two])
    assert [r["name"] for r in merged["designs"]] == [r["name"] for r in doc["designs"]]
    assert merged["meta"]["command"] == "a; b" and merged["meta"]["superseded"] == []
    # a re-measured design in a later file replaces the earlier row
    again = copy.deepcopy(doc["designs"][0])
    again["runs"]["mnist/specify"]["energy_per_op_pj"] = 480.0
    three = tmp_path / "3.json"
    three.write_text(json.dumps({"meta": {**meta, "command": "c"}, "designs": [again]}))
    merged = ea.read_cost([one, two, three])
    assert len(merged["designs"]) == len(doc["designs"])
    assert [r["runs"]["mnist/specify"]["energy_per_op_pj"] for r in merged["designs"]
            if r["name"] == "dot-bf16-exact-seq"] == [480.0]
    assert merged["meta"]["superseded"] == [f"dot-bf16-exact-seq (by {three})"]
    three.write_text(json.dumps({"meta": meta, "designs": [again, again]}))
    with pytest.raises(ea.JoinError, match="appears twice"):
        ea.read_cost([three])
    two.write_text(json.dumps({"meta": {**meta, "sizes": {"pe_tiles": 1}},
                               "designs": doc["designs"][2:]}))
    with pytest.raises(ea.JoinError, match="other cost-flow settings"):
        ea.read_cost([one, two])
    with pytest.raises(ea.JoinError, match="not found"):
        ea.read_cost([tmp_path / "none.json"])


def test_sweep_preset_evaluates_the_named_pairs_only() -> None:
    p = ea.PRESETS["sweep"]
    modes = ea.preset_modes(p)
    fused = [m for m in modes if "acc=fused" in m and ea.mode_format(m) == "bf16"]
    assert len(fused) == 3 * len(p.pairs or ())
    # E4M3: the exact multiply and L-Mul at its paper offset, sequential and K=8 ALIGN_BITS=8
    assert [m for m in modes if ea.mode_format(m) == "e4m3_ieee"] == [
        "exact:e=4,m=3", "lmul:e=4,m=3", "exact:e=4,m=3,acc=fused,k=8,align=8",
        "lmul:e=4,m=3,acc=fused,k=8,align=8"]
    assert "lmul:offset=6,acc=fused,k=16,align=8" in fused
    assert "bf16:acc=fused,k=16,align=16" not in fused  # not a pair: not the ks x align grid
    assert len(p.seeds) == 5 and p.datasets == ("mnist", "fashion")
    for m in modes:
        assert parse_mode(m).name == m


def test_accuracy_carried_from_an_earlier_report_fills_only_missing_modes(
        tmp_path: Path) -> None:
    rows = ea.join(_cost_doc(), _acc(), ["mnist", "fashion"])
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"meta": {"preset": "medium", "seeds": [0, 1, 2]},
                                   "designs": ea._jsonable(rows)}))
    carried, meta = ea.carried_accuracy(earlier)
    assert meta["preset"] == "medium"
    doc = _cost_doc()
    doc["designs"].append(_cost_row("exact", "dot_pe", 16, 8, e=150.0))  # not in the earlier
    acc = {k: v for k, v in _acc().items() if k[1] in ("fp32", "bf16")}  # bf16 measured anew
    acc[("mnist", "bf16")] = {0: 50.0, 1: 51.0, 2: 52.0}
    new = {r["design"]: r for r in ea.join(doc, acc, ["mnist", "fashion"], carried)}
    lm = new["dot-bf16-lmul-k8-a16"]
    assert lm["accuracy_from"] == "carried"
    assert lm["mnist_delta"].mean == pytest.approx(-2.0) and lm["mnist_delta"].n == 3
    assert new["dot-bf16-exact-seq"]["accuracy_from"] is None  # its own rows win
    assert new["dot-bf16-exact-seq"]["mnist_delta"].mean == pytest.approx(-40.0)
    assert new["dot-bf16-exact-k16-a8"]["mnist_delta"] is None
    with pytest.raises(ea.JoinError, match="not an energy_accuracy report"):
        (tmp_path / "bad.json").write_text("{}")
        ea.carried_accuracy(tmp_path / "bad.json")


def test_array_over_pe_ratio_from_the_cost_rows() -> None:
    doc = _cost_doc()
    assert ea.array_vs_pe(doc) is None
    for level, unit, pj in (("pe", "lmul", 200.0), ("pe", "exact", 400.0),
                            ("array", "lmul", 300.0), ("array", "exact", 440.0)):
        doc["designs"].append({"level": level, "format": "bf16", "unit": unit,
                               "name": f"{level}-bf16-{unit}",
                               "runs": {"mnist/specify": {"energy_per_op_pj": pj}}})
    assert ea.array_vs_pe(doc) == pytest.approx({"lmul": 1.5, "exact": 1.1})


def test_a_pipelined_pe_shares_its_twins_accuracy_and_is_set_against_its_energy() -> None:
    """PIPELINE=1 rows: the same mode (same bits) as the single-stage twin, so the same
    accuracy rows; named -p1 only with PIPELINE=1 built; their energy terms beside the twin's;
    the cheaper pipelined design can be the verdict's, against the pipelined exact twin."""
    doc = _cost_doc()
    doc["designs"] += [
        _cost_row("lmul_o6", "dot_pe", 8, 16, e=90.0, clkreg=35.0, pipeline=1, zero=60.0),
        _cost_row("exact", "dot_pe", 8, 16, e=180.0, clkreg=36.0, pipeline=1)]
    doc["designs"][4]["runs"]["mnist/zero"] = {"ops": 156, "energy_per_op_pj": 40.0}
    rows = ea.join(doc, _acc(), ["mnist", "fashion"])
    by = {r["design"]: r for r in rows}
    p1, p0 = by["dot-bf16-lmul_o6-k8-a16-p1"], by["dot-bf16-lmul_o6-k8-a16"]
    assert p1["mode"] == p0["mode"] and (p1["pipeline"], p0["pipeline"]) == (1, 0)
    assert p1["mnist_delta"] == p0["mnist_delta"]
    pairs = {q["design"]: q for q in ea.pipeline_pairs(rows)}
    q = pairs["dot-bf16-lmul_o6-k8-a16-p1"]
    assert q["twin"] == "dot-bf16-lmul_o6-k8-a16"
    assert (q["p1_pj"], q["p0_pj"], q["p1_clkreg"], q["p0_clkreg"]) == pytest.approx(
        (90.0, 110.0, 35.0, 30.0))
    assert (q["p1_glitch"], q["p0_glitch"]) == (pytest.approx(30.0), pytest.approx(70.0))
    v = ea.verdicts(rows, ["mnist", "fashion"])
    assert v["best"] == "dot-bf16-lmul_o6-k8-a16-p1" and v["chosen_pipeline"] == 1
    assert v["fused_exact"] == "dot-bf16-exact-k8-a16-p1"
    assert v["chosen_glitch_pj"] == pytest.approx(30.0)
    meta = {"command": "c", "cost_command": "cc", "seeds": [0, 1, 2], "epochs": 1,
            "test_limit": None, "pareto": [], "datasets": ["mnist", "fashion"]}
    for r in rows:
        r["ratio_to_seq_exact"] = r["e_mnist_pj"] / 500.0
    md = ea.markdown(rows, v, meta, ["mnist", "fashion"])
    assert "their Δ columns are the twin's accuracy rows" in md
    assert "| dot-bf16-lmul_o6-k8-a16-p1 | dot-bf16-lmul_o6-k8-a16 | 90.0 | 110.0 |" in md
    assert "its accuracy is its single-stage twin's" in md
    # a -p1 name on a single-stage netlist, and a pipelined netlist under a plain name
    bad = copy.deepcopy(doc)
    bad["designs"][-2]["synth"]["params"]["PIPELINE"] = 0
    with pytest.raises(ea.JoinError, match="built with PIPELINE=0"):
        ea.join(bad, _acc(), ["mnist"])
    del bad["designs"][-2]["params"]["PIPELINE"]
    with pytest.raises(ea.JoinError, match="netlist has PIPELINE=0"):
        ea.join(bad, _acc(), ["mnist"])
    bad = copy.deepcopy(doc)
    bad["designs"][4]["synth"]["params"]["PIPELINE"] = 1
    with pytest.raises(ea.JoinError, match="netlist has PIPELINE=1"):
        ea.join(bad, _acc(), ["mnist"])


def test_a_prealigned_pe_is_a_third_design_of_the_same_mode() -> None:
    """PIPELINE=2 rows (-p2) beside the -p1 and single-stage ones: the twin's mode and accuracy,
    their own energy pair against the twin, and a -p2 name on a PIPELINE=1 netlist refused."""
    doc = _cost_doc()
    doc["designs"] += [
        _cost_row("lmul_o6", "dot_pe", 8, 16, e=90.0, clkreg=35.0, pipeline=1, zero=60.0),
        _cost_row("lmul_o6", "dot_pe", 8, 16, e=70.0, clkreg=34.0, pipeline=2, zero=55.0),
        _cost_row("exact", "dot_pe", 8, 16, e=150.0, clkreg=36.0, pipeline=2)]
    doc["designs"][4]["runs"]["mnist/zero"] = {"ops": 156, "energy_per_op_pj": 40.0}
    rows = ea.join(doc, _acc(), ["mnist", "fashion"])
    by = {r["design"]: r for r in rows}
    p2, p0 = by["dot-bf16-lmul_o6-k8-a16-p2"], by["dot-bf16-lmul_o6-k8-a16"]
    assert p2["mode"] == p0["mode"] and p2["pipeline"] == 2
    assert p2["mnist_delta"] == p0["mnist_delta"]
    pairs = {q["design"]: q for q in ea.pipeline_pairs(rows)}
    assert pairs["dot-bf16-lmul_o6-k8-a16-p2"]["twin"] == "dot-bf16-lmul_o6-k8-a16"
    assert pairs["dot-bf16-lmul_o6-k8-a16-p2"]["p1_glitch"] == pytest.approx(15.0)
    assert "dot-bf16-lmul_o6-k8-a16-p1" in pairs
    v = ea.verdicts(rows, ["mnist", "fashion"])
    assert (v["best"], v["chosen_pipeline"]) == ("dot-bf16-lmul_o6-k8-a16-p2", 2)
    assert v["fused_exact"] == "dot-bf16-exact-k8-a16-p2"
    bad = copy.deepcopy(doc)
    bad["designs"][-2]["synth"]["params"]["PIPELINE"] = 1
    del bad["designs"][-2]["params"]["PIPELINE"]
    with pytest.raises(ea.JoinError, match="netlist has PIPELINE=1"):
        ea.join(bad, _acc(), ["mnist"])


def test_the_fused_array_row_gives_verdict_3_against_the_sequential_exact_array() -> None:
    """A ``-array`` row (mac_array, DOT_K = K) joins with its PE's mode, is never the chosen
    design, and gives the per-image energy on the 4x4 array against make cost's sequential
    exact array; its name must agree with the DOT_K it was built with."""
    doc = _cost_doc()
    arr = _cost_row("lmul_o6", "dot_pe", 8, 16, e=100.0)  # cheaper per MAC than its PE (110)
    prm = {"ROWS": 4, "COLS": 4, "EXP_BITS": 8, "MAN_BITS": 7, "MULTIPLIER": 0, "OFFSET": 6,
           "DOT_K": 8, "ALIGN_BITS": 16}
    arr.update(name="dot-bf16-lmul_o6-k8-a16-array", top="mac_array", params=dict(prm),
               synth={"area": 1.0, "params": {**prm, "SATURATE": 0, "SKID": 0}})
    doc["designs"] += [arr, {"level": "array", "format": "bf16", "unit": "exact",
                             "name": "array-bf16-exact",
                             "runs": {"mnist/specify": {"energy_per_op_pj": 600.0}}}]
    rows = ea.join(doc, _acc(), ["mnist", "fashion"])
    by = {r["design"]: r for r in rows}
    a = by["dot-bf16-lmul_o6-k8-a16-array"]
    assert a["mode"] == by["dot-bf16-lmul_o6-k8-a16"]["mode"] and a["k"] == 8
    v = ea.verdicts(rows, ["mnist", "fashion"], None, ea.seq_array_pj(doc))
    assert v["best"] == "dot-bf16-lmul_o6-k8-a16"  # the array row is not a candidate
    assert v["array"] == "dot-bf16-lmul_o6-k8-a16-array"
    assert v["array_over_pe"] == pytest.approx(100.0 / 110.0)
    assert v["array_per_image_uj"] == pytest.approx(100.0 * ea.MACS_PER_IMAGE * 1e-6)
    assert v["array_per_image_ratio"] == pytest.approx(100.0 / 600.0)
    arr["synth"]["params"]["DOT_K"] = arr["params"]["DOT_K"] = 4
    with pytest.raises(ea.JoinError, match="netlist has DOT_K=4"):
        ea.join(doc, _acc(), ["mnist"])


def test_a_pipelined_array_row_is_the_array_of_the_pipelined_pe() -> None:
    """``-p1-array`` (mac_array with PIPELINE=1) joins with the PE's mode, gives verdict 3 when
    the chosen PE is the PIPELINE=1 one (not the single-stage array beside it), and a
    ``-p1-array`` name on a single-stage netlist is refused."""
    doc = _cost_doc()
    prm = {"ROWS": 4, "COLS": 4, "EXP_BITS": 8, "MAN_BITS": 7, "MULTIPLIER": 0, "OFFSET": 6,
           "DOT_K": 8, "ALIGN_BITS": 16}
    doc["designs"].append(_cost_row("lmul_o6", "dot_pe", 8, 16, e=60.0, pipeline=1))
    for name, pipe, e in (("dot-bf16-lmul_o6-k8-a16-array", 0, 100.0),
                          ("dot-bf16-lmul_o6-k8-a16-p1-array", 1, 66.0)):
        arr = _cost_row("lmul_o6", "dot_pe", 8, 16, e=e)
        p = {**prm, "PIPELINE": pipe} if pipe else dict(prm)
        arr.update(name=name, top="mac_array", params=dict(p),
                   synth={"area": 1.0, "params": {**p, "SATURATE": 0, "SKID": 0}})
        doc["designs"].append(arr)
    doc["designs"].append({"level": "array", "format": "bf16", "unit": "exact",
                           "name": "array-bf16-exact",
                           "runs": {"mnist/specify": {"energy_per_op_pj": 600.0}}})
    rows = ea.join(doc, _acc(), ["mnist", "fashion"])
    by = {r["design"]: r for r in rows}
    assert by["dot-bf16-lmul_o6-k8-a16-p1-array"]["pipeline"] == 1
    assert by["dot-bf16-lmul_o6-k8-a16-p1-array"]["mode"] == by["dot-bf16-lmul_o6-k8-a16"]["mode"]
    v = ea.verdicts(rows, ["mnist", "fashion"], None, ea.seq_array_pj(doc))
    assert v["best"] == "dot-bf16-lmul_o6-k8-a16-p1"
    assert v["array"] == "dot-bf16-lmul_o6-k8-a16-p1-array"
    assert v["array_over_pe"] == pytest.approx(66.0 / 60.0)
    assert v["array_per_image_ratio"] == pytest.approx(66.0 / 600.0)
    bad = copy.deepcopy(doc)
    bad["designs"][-2]["synth"]["params"]["PIPELINE"] = 0
    del bad["designs"][-2]["params"]["PIPELINE"]
    with pytest.raises(ea.JoinError, match="netlist has PIPELINE=0"):
        ea.join(bad, _acc(), ["mnist"])


def test_array_tiles_bind_only_the_arrays_that_are_kept(tmp_path: Path) -> None:
    """Files that differ only in --array-tiles merge when the arrays of one size are all
    superseded (the PEs are not sized by it), and are refused when arrays measured on
    different tiles would be compared."""
    doc = _cost_doc()
    meta = {"command": "a", "versions": {"yosys": "1"}, "seed": 1, "constraints": {},
            "sizes": {"pe_tiles": 6, "array_tiles": 2, "check_array_tiles": 6}}
    seq = {"level": "array", "format": "bf16", "unit": "exact", "name": "array-bf16-exact",
           "runs": {"mnist/specify": {"energy_per_op_pj": 600.0}}}
    fused = _cost_row("lmul_o6", "dot_pe", 8, 16, e=100.0)
    fused.update(name="dot-bf16-lmul_o6-k8-a16-array", top="mac_array")
    eight = {**meta, "sizes": {**meta["sizes"], "array_tiles": 8}}
    one, two, three = (tmp_path / f"{i}.json" for i in (1, 2, 3))
    one.write_text(json.dumps({"meta": meta, "designs": [*doc["designs"], seq]}))
    two.write_text(json.dumps({"meta": eight, "designs": [fused]}))
    with pytest.raises(ea.JoinError, match="different MNIST tiles"):
        ea.read_cost([one, two])
    three.write_text(json.dumps({"meta": eight, "designs": [{**seq, "runs": {
        "mnist/specify": {"energy_per_op_pj": 650.0}}}]}))
    merged = ea.read_cost([one, two, three])
    assert ea.seq_array_pj(merged) == {"exact": 650.0}
    two.write_text(json.dumps({"meta": {**eight, "seed": 2}, "designs": [fused]}))
    with pytest.raises(ea.JoinError, match="other cost-flow settings"):
        ea.read_cost([one, two, three])
