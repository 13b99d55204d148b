"""Tests of the energy-accuracy study's rows on make tune's L-Mul-aware fine-tuned weights
(experiments/energy_accuracy.py: FineTuned, ft_recipe, ft_weights_present, run_finetuned)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from experiments import energy_accuracy as ea
from experiments import grid, tune
from experiments.modes import parse_mode
from experiments.recipes import checkpoint_tag, parse_recipe
from experiments.stats import paired_differences

from .test_energy_accuracy import _cost_row, _loader

TAG = "mnist-rows-h128"


@pytest.mark.parametrize("offset", [8, 6, 7])
def test_each_lmul_design_reads_the_weights_make_tune_fine_tuned_at_its_offset(
        offset: int) -> None:
    ft = ea.FineTuned()
    full = tune.PRESETS["full"]
    assert (ft.epochs, ft.ft, ft.train_limit) == (full.epochs, full.ft, None)
    assert ft.control == f"fp32 [{full.ft}]"  # the control make tune pairs its rows with
    # make tune's row MULTIPLIER [ft1]: recipe ft1 trained in the evaluated multiplier
    tuned = checkpoint_tag(TAG, parse_recipe(full.ft), parse_mode(tune.bf16_mode(offset)),
                           full.epochs)
    for mode in (tune.bf16_mode(offset), ea.fused_mode(tune.bf16_mode(offset), 4, 8)):
        rcp = parse_recipe(ea.ft_recipe(mode, ft))
        arith = rcp.train_arith(parse_mode(mode))
        assert arith is not None and arith.accumulate is None  # tuned in sequential sums
        assert checkpoint_tag(TAG, rcp, arith, ft.epochs) == tuned
        assert ea.ft_label(mode, ft) == f"{parse_mode(mode).name} [{rcp.name}]"


def test_exact_designs_use_the_float32_control_and_untuned_offsets_have_no_rows() -> None:
    ft = ea.FineTuned()
    for mode in ("bf16", "bf16:acc=fused,k=4,align=8"):
        rcp = parse_recipe(ea.ft_recipe(mode, ft))
        assert checkpoint_tag(TAG, rcp, rcp.train_arith(parse_mode(mode)), 3) == TAG
    assert ea.ft_label("fp32", ft) == ft.control
    assert ea.ft_recipe("lmul:offset=9,acc=fused,k=4,align=8", ft) is None
    # formats make tune does not fine-tune, and FP8 L-Mul off its paper offset, have no rows
    for mode in ("lmul:e=4,m=3,offset=0", "lmul:e=5,m=2", "exact:e=4,m=3,fn=1",
                 "lmul:e=4,m=3,head=fp32"):
        assert ea.ft_recipe(mode, ft) is None, mode
    assert ea.ft_recipe("bf16", ea.FineTuned(exact=False)) is None
    p = ea.PRESETS["sweep"]
    groups = dict(ea.ft_groups(p))
    assert list(groups)[:2] == ["ft1", "ft1:lmul:offset=6"]  # control, then the tuned offset
    assert "lmul:offset=6,acc=fused,k=2,align=8" in groups["ft1:lmul:offset=6"]
    only = dict(ea.ft_groups(p, {"lmul", "lmul:offset=6,acc=fused,k=4,align=8"}))
    assert only == {"ft1": ["fp32"], "ft1:lmul": ["lmul"],
                    "ft1:lmul:offset=6": ["lmul:offset=6,acc=fused,k=4,align=8"]}
    assert ea.ft_groups(ea.PRESETS["quick"]) == []


@pytest.mark.parametrize("offset", [1, None])
def test_e4m3_designs_read_make_tunes_fp8_weights_of_their_own_multiplier_on_fashion_only(
        offset: int | None) -> None:
    ft = ea.FineTuned()
    full = tune.PRESETS["full"]
    assert ft.format_datasets == full.fp8_ft_datasets == ("fashion",)
    assert ea.format_paper_offset("e4m3_ieee") == tune.fp8_paper_offset("e4m3_ieee") == 1
    tuned_mode = tune.fp8_mode("e4m3_ieee", offset)  # make tune's row MODE [ft1]
    tag = "fashion-rows-h128"
    tuned = checkpoint_tag(tag, parse_recipe(full.ft), parse_mode(tuned_mode), full.epochs)
    for mode in (tuned_mode, ea.fused_mode(tuned_mode, 8, 8)):
        recipe = ea.ft_recipe(mode, ft)
        assert recipe == f"ft1:{parse_mode(tuned_mode).name}"  # the exact one too, not ft1:fp32
        rcp = parse_recipe(recipe)
        assert checkpoint_tag(tag, rcp, rcp.train_arith(parse_mode(mode)), ft.epochs) == tuned
        assert ft.trained_on(recipe, ("mnist", "fashion")) == ("fashion",)
    assert ft.trained_on("ft1:lmul:offset=6", ("mnist", "fashion")) == ("mnist", "fashion")
    lines = ea.ft_not_trained(ft, [(ea.ft_recipe(tuned_mode, ft), [])], ("mnist", "fashion"))
    assert len(lines) == 1 and "on mnist" in lines[0] and "fashion only" in lines[0]


def _preset(tmp_path: Path, seeds: tuple[int, ...] = (0, 1, 2)) -> ea.Preset:
    return ea.Preset("t", ("mnist",), seeds, 1, None, (), (), tmp_path / "ea_runs.json",
                     pairs=((8, 16),),
                     finetuned=ea.FineTuned(epochs=1, offsets=(6,), test_limit=None))


def _tune_step2(tmp_path: Path, seeds: list[int], modes: tuple[str, ...] = ("fp32",
                                                                             "lmul:offset=6")
                ) -> Path:
    """make tune's BF16 fine-tuning step on synthetic data: its weights land in tmp/w."""
    out = tmp_path / "tune.json"
    grid.run([grid.Job(["mnist"], seeds, 1)], list(modes), out, load_fn=_loader,
             progress=False, log=lambda m: None, weights_dir=tmp_path / "w",
             recipes=("ft1", "ft1:fp32"))
    return out


def _files(d: Path) -> dict[str, int]:
    return {f.name: f.stat().st_mtime_ns for f in d.iterdir()}


def test_finetuned_rows_read_existing_weights_only_and_pair_with_the_control(
        tmp_path: Path) -> None:
    tune_out = _tune_step2(tmp_path, [0, 1])
    w = tmp_path / "w"
    before = _files(w)
    p = _preset(tmp_path)
    logs: list[str] = []
    missing = ea.run_finetuned(p, weights_dir=w, load_fn=_loader, progress=False,
                               log=logs.append, reference=False)
    assert _files(w) == before  # nothing trained, nothing rewritten
    assert missing and all("seed 2" in m or "seeds 2" in m for m in missing)
    runs = json.loads(p.out.read_text())["runs"]
    assert {r["seed"] for r in runs} == {0, 1}
    by = {(r["mode"], r["seed"]): r for r in runs}
    o6 = "lmul:offset=6"
    for seed in (0, 1):
        for mode in (o6, ea.fused_mode(o6, 8, 16)):
            rec = by[(f"{mode} [ft1:{o6}]", seed)]
            assert rec["train_arithmetic"] == parse_mode(o6).describe()
        for mode in ("bf16", ea.fused_mode("bf16", 8, 16)):
            assert by[(f"{mode} [ft1:fp32]", seed)]["train_arithmetic"]["multiplier"] == "fp32"
        # the same weights and arithmetic as make tune's row: the same count
        tuned = {(r["mode"], r["seed"]): r for r in json.loads(tune_out.read_text())["runs"]}
        assert by[(f"{o6} [ft1:{o6}]", seed)]["correct"] == tuned[(f"{o6} [ft1]", seed)][
            "correct"]
        assert by[("fp32 [ft1]", seed)]["correct"] == tuned[("fp32 [ft1]", seed)]["correct"]

    # the report: Δ paired with the float32 control, not with the float32-trained fp32 rows
    cost = tmp_path / "cost.json"
    cost.write_text(json.dumps({"meta": {"command": "syn.cost"}, "designs": [
        _cost_row("exact", "mac_pe", e=500.0), _cost_row("lmul_o6", "mac_pe", e=300.0),
        _cost_row("exact", "dot_pe", 8, 16, e=200.0),
        _cost_row("lmul_o6", "dot_pe", 8, 16, e=110.0)]}))
    paths = ea.report(cost, p.out, p, tmp_path / "ea", "test", plot=True)
    out = json.loads(paths[0].read_text())
    row = {r["design"]: r for r in out["designs"]}["dot-bf16-lmul_o6-k8-a16"]
    label = f"{ea.fused_mode(o6, 8, 16)} [ft1:{o6}]"
    want = paired_differences({s: by[(label, s)]["accuracy"] for s in (0, 1)},
                              {s: by[("fp32 [ft1]", s)]["accuracy"] for s in (0, 1)})
    assert row["ft_weights"] == f"ft1:{o6}"
    assert row["mnist_ft_delta"]["n"] == 2
    assert row["mnist_ft_delta"]["mean"] == pytest.approx(sum(want) / 2)
    assert out["meta"]["ft_missing"] and "seed 2" in " ".join(out["meta"]["ft_missing"])
    md = paths[2].read_text()
    assert "## Accuracy on L-Mul-aware fine-tuned weights" in md and "Not measured yet" in md
    assert "mnist_ft_delta_mean" in paths[1].read_text().splitlines()[0]


def test_a_missing_or_wrong_offset_checkpoint_is_never_trained(tmp_path: Path) -> None:
    # make tune fine-tuned at offset 7 only: nothing of it is the offset-6 designs' weights
    _tune_step2(tmp_path, [0], modes=("fp32", "lmul:offset=7"))
    w = tmp_path / "w"
    ft = ea.FineTuned(epochs=1, offsets=(6, 7), test_limit=None)
    o6 = "lmul:offset=6,acc=fused,k=8,align=16"
    assert not ea.ft_weights_present("mnist", 0, "ft1:lmul:offset=6", o6, ft, w, False)
    assert ea.ft_weights_present("mnist", 0, "ft1:lmul:offset=7", "lmul:offset=7", ft, w, False)
    assert ea.ft_weights_present("mnist", 0, "ft1", "fp32", ft, w, False)
    # the base it was fine-tuned from gone: not readable without training either
    (w / f"{TAG}-seed0-epoch1.pt").unlink()
    assert not ea.ft_weights_present("mnist", 0, "ft1:lmul:offset=7", "lmul:offset=7", ft, w,
                                     False)
    before = _files(w)
    p = _preset(tmp_path, seeds=(0,))
    assert ea.run_finetuned(p, weights_dir=w, load_fn=_loader, progress=False,
                            log=lambda m: None, reference=False)
    assert _files(w) == before and not p.out.exists()


def _ft_acc(control: dict[int, float], deltas: dict[str, float]
            ) -> dict[tuple[str, str], dict[int, float]]:
    out: dict[tuple[str, str], dict[int, float]] = {}
    for ds in ("mnist", "fashion"):
        out[(ds, "fp32 [ft1]")] = dict(control)
        for label, d in deltas.items():
            out[(ds, label)] = {s: v + d + (0.3, -0.3, 0.1)[s] for s, v in control.items()}
    return out


def test_verdict_1_says_which_weights_and_requires_a_ci_including_0_on_both() -> None:
    doc = {"meta": {"command": "c"}, "designs": [
        _cost_row("exact", "mac_pe", e=500.0), _cost_row("lmul_o6", "mac_pe", e=300.0),
        _cost_row("exact", "dot_pe", 8, 16, e=200.0),
        _cost_row("lmul_o6", "dot_pe", 8, 16, e=110.0)]}
    base = {0: 90.0, 1: 91.0, 2: 92.0}
    acc = {(ds, m): {s: v + (0.2, -0.2, 0.1)[s] * (m != "fp32") for s, v in base.items()}
           for ds in ("mnist", "fashion")
           for m in ("fp32", "bf16", "lmul:offset=6", "bf16:acc=fused,k=8,align=16",
                     "lmul:offset=6,acc=fused,k=8,align=16")}
    o6, f6 = "lmul:offset=6", "lmul:offset=6,acc=fused,k=8,align=16"
    # the control is 5 pp above the float32-trained fp32: a Δ paired with the wrong one
    # would be off by 5
    ft = ea.FineTuned(offsets=(6,))
    ft_acc = _ft_acc({s: v + 5 for s, v in base.items()},
                     {f"{f6} [ft1:{o6}]": -2.0, f"{o6} [ft1:{o6}]": 0.0})
    rows = ea.join(doc, acc, ["mnist", "fashion"], ft=ft, ft_acc=ft_acc)
    by = {r["design"]: r for r in rows}
    assert by["dot-bf16-lmul_o6-k8-a16"]["mnist_ft_delta"].mean == pytest.approx(-2.0 + 0.1 / 3)
    assert by["dot-bf16-exact-seq"]["mnist_ft_delta"] is None  # its control rows not measured
    v = ea.verdicts(rows, ["mnist", "fashion"])
    assert v["best"] == "dot-bf16-lmul_o6-k8-a16"  # float32-trained weights
    assert v["best_ft"] == "dot-bf16-lmul_o6-seq"  # the fused one loses 2 pp when fine-tuned
    assert v["best_ft_ratio"] == pytest.approx(0.6) and not v["best_ft_reaches_target"]
    assert v["chosen_ft_delta"]["mnist"]["mean"] == pytest.approx(-2.0 + 0.1 / 3)
    # a design not measured on every seed does not compete (a CI of fewer seeds is wider)
    assert ea.verdicts(rows, ["mnist", "fashion"], ft_seeds=4)["best_ft"] is None
    half = {**by["dot-bf16-lmul_o6-seq"], "fashion_ft_delta": None}
    assert all(ea._worst_delta(half, ds, "ft_delta") != ea._worst_delta(half, ds, "ft_delta")
               for ds in (["mnist", "fashion"], ["fashion", "mnist"]))  # NaN either order
    meta: dict[str, Any] = {"cost_command": "c", "command": "t", "epochs": 1, "seeds": [0, 1, 2],
                            "test_limit": None, "pareto": [], "pareto_ft": [],
                            "finetuned": {**ft.__dict__, "ft": ft.ft, "control": ft.control},
                            "seeds_ft": [0, 1, 2], "ft_missing": []}
    md = ea.markdown(rows, v, meta, ["mnist", "fashion"])
    assert "chosen on the float32-trained weights' Δ" in md
    assert "not every CI includes 0" in md
    assert "**On fine-tuned weights**" in md and "`dot-bf16-lmul_o6-seq`" in md
    assert "Every row of this table is measured on all seeds." in md
