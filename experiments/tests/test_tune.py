"""The tune sweep: step planning from the sweep's own results, the report's paired differences,
and a tiny resumable end-to-end run on synthetic data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from experiments import grid, tune
from experiments.report import SCHEMA
from experiments.tests.test_accuracy import _loader

TINY = tune.Preset("tiny", ("fashion", "mnist"), (0, 1), 1, 50, Path("unused.json"),
                   finetune_limit=128, top_offsets=1, fp8_ft_datasets=("fashion",),
                   fp8_ft_exact=False, fp8_ft_paper=False, scratch_datasets=())


def _run(dataset: str, mode: str, seed: int, acc: float, p: tune.Preset = TINY
         ) -> dict[str, Any]:
    return {"dataset": dataset, "seq": "rows", "seed": seed, "epochs": p.epochs, "mode": mode,
            "n_test": 50, "accuracy": acc, "train_limit": None, "test_limit": p.test_limit,
            "batch_size": 1000}


def _doc(rows: list[tuple[str, str, int, float]], p: tune.Preset = TINY) -> dict[str, Any]:
    return {"schema": SCHEMA, "runs": [_run(*r, p=p) for r in rows], "unavailable": {}}


def test_inference_modes_are_canonical_and_cover_the_sweep() -> None:
    modes = tune.inference_modes()
    assert modes[:2] == ["fp32", "bf16"]
    assert "lmul" in modes and "lmul:offset=8" not in modes  # the paper offset's own name
    assert {f"lmul:offset={o}" for o in (0, 4, 6, 7, 9, 10, 12)} <= set(modes)
    assert {"lmul:e=4,m=3,offset=0", "lmul:e=4,m=3", "exact:e=4,m=3",
            "lmul:e=4,m=3,fn=1,offset=0", "lmul:e=4,m=3,fn=1", "exact:e=4,m=3,fn=1",
            "lmul:e=5,m=2,offset=0", "lmul:e=5,m=2", "exact:e=5,m=2"} <= set(modes)
    assert tune.fp8_paper_offset("e4m3_ieee") == tune.fp8_paper_offset("e5m2") == 1
    assert tune.fp8_paper_offset("e4m3fn") == 1
    assert len(modes) == len(set(modes)) == 2 + 8 + 9


def test_plan_fine_tunes_the_best_offsets_of_the_sweep() -> None:
    rows = [("fashion", "fp32", s, 80.0 + s) for s in (0, 1)]
    # offset 6 loses least on fashion, offset 12 most; MNIST prefers 10 (ignored: fashion rules)
    for o, loss in ((0, 3.0), (4, 1.0), (6, 0.1), (7, 0.3), (8, 0.5), (9, 0.6), (10, 0.9),
                    (12, 2.0)):
        rows += [("fashion", tune.bf16_mode(o), s, 80.0 + s - loss) for s in (0, 1)]
    rows += [("mnist", "fp32", 0, 95.0), ("mnist", "lmul:offset=10", 0, 95.5)]
    rows += [("fashion", "lmul:e=4,m=3,offset=0", s, 70.0) for s in (0, 1)]
    rows += [("fashion", "lmul:e=4,m=3", s, 60.0) for s in (0, 1)]  # offset 1 (paper) worse
    steps = tune.plan(TINY, _doc(rows))
    assert [s.recipes for s in steps] == [("fp32",), ("ft1@128", "ft1@128:fp32"),
                                          ("ft1@128", "ft1@128:fp32")]
    assert steps[1].modes == ("fp32", "lmul", "lmul:offset=6")
    # e4m3: offset 0 measured best; e4m3fn and e5m2 not measured: their paper offset
    assert steps[2].modes == ("lmul:e=4,m=3,offset=0", "lmul:e=4,m=3,fn=1", "lmul:e=5,m=2")
    assert steps[2].datasets == ("fashion",)
    assert tune.best_offsets(tune._runs(_doc(rows), TINY), "fashion", 3) == [6, 7, 9]
    # The full preset also fine-tunes FP8 at the paper offset and the exact FP8 multiply, and
    # trains from scratch (BF16; FP8 training and from-scratch runs on FashionMNIST only).
    full = tune.plan(tune.PRESETS["full"], _doc([]))
    assert [s.recipes for s in full] == [("fp32",), ("ft1", "ft1:fp32"), ("ft1", "ft1:fp32"),
                                         ("scratch",)]
    assert "exact:e=4,m=3" in full[2].modes and "exact:e=5,m=2" in full[2].modes
    assert full[1].datasets == ("fashion", "mnist")
    assert full[2].datasets == full[3].datasets == ("fashion",)
    assert full[3].modes == ("lmul",)  # no sweep yet: the paper offset only
    # A scratch_fp8 preset adds FP8 L-Mul (paper offset without a sweep) and the exact multiply.
    fp8 = dataclasses.replace(tune.PRESETS["full"], scratch_fp8=True)
    assert tune.plan(fp8, _doc([]))[3].modes == ("lmul", "lmul:e=4,m=3", "exact:e=4,m=3")
    quick = tune.plan(tune.PRESETS["quick"], _doc(rows, tune.PRESETS["quick"]))
    assert quick[2].modes == ("lmul:e=4,m=3,offset=0", "exact:e=4,m=3", "lmul:e=4,m=3,fn=1",
                              "exact:e=4,m=3,fn=1", "lmul:e=5,m=2", "exact:e=5,m=2")
    assert (quick[3].datasets, quick[3].modes) == (("fashion",), ("lmul", "lmul:offset=6"))


def test_report_paired_differences_and_verdicts(tmp_path: Path) -> None:
    rows = []
    for s, (f, lm, o7, ctl, ft8, ft7) in enumerate(((84.0, 83.0, 83.8, 84.5, 84.3, 84.6),
                                                    (85.0, 84.2, 84.6, 85.2, 85.1, 85.0),
                                                    (83.0, 82.6, 83.2, 83.6, 83.2, 83.9))):
        rows += [("fashion", "fp32", s, f), ("fashion", "lmul", s, lm),
                 ("fashion", "lmul:offset=7", s, o7), ("fashion", "fp32 [ft1@128]", s, ctl),
                 ("fashion", "lmul [ft1@128]", s, ft8),
                 ("fashion", "lmul [ft1@128:fp32]", s, ctl - (0.7, 0.5, 0.6)[s]),
                 ("fashion", "lmul:offset=7 [ft1@128]", s, ft7)]
    p = tune.Preset("tiny", ("fashion",), (0, 1, 2), 1, 50, tmp_path / "t.json",
                    finetune_limit=128)
    out = tmp_path / "t.json"
    out.write_text(json.dumps(_doc(rows)))
    prec = tmp_path / "prec.csv"
    prec.write_text("distribution,format,presets,exp_bits,man_bits,offset,offset_value,n,bias,"
                    "mean_abs,max_abs\ngauss,e8m7,bf16,8,7,7,0.05,10,-0.001,0.0259,0.07\n"
                    "gauss,e8m7,bf16,8,7,8,0.06,10,0.0044,0.0269,0.07\n")
    text = tune.report(p, out, prec)
    # lmul - fp32 per seed: -1.0, -0.8, -0.4 -> mean -0.73, all below 0
    assert "| 8 (paper) | +0.44 | 2.69 | -0.73 [" in text
    assert "| 7 | -0.10 | 2.59 | -0.13 [" in text
    assert "| 0 | — | — | — |" in text  # offset not measured, no unit data
    # fine-tuned paper offset vs control: -0.2, -0.1, -0.4 -> -0.23; the control evaluated
    # in L-Mul: -0.7, -0.5, -0.6 -> -0.60
    assert ("Fine-tuning, fashion, lmul: L-Mul-aware fine-tuned − float32 control -0.23 "
            "[-0.61, +0.15] (includes 0: no difference resolved at this n); float32 fine-tuning "
            "alone, "
            "evaluated in lmul: -0.60 [-0.85, -0.35]; before fine-tuning") in text
    assert "| fashion | lmul | 83.27 ± 0.83 | -0.73 [" in text
    assert "offset 7 − offset 8: +0.60 [+0.10, +1.10] (above 0)" in text
    assert "before fine-tuning (float32 weights, E epochs): -0.73 [" in text
    assert "best mean Δ at offset 7: -0.13" in text
    assert (tmp_path / "t_offsets.png").stat().st_size > 1000
    assert (tmp_path / "t_recipes.png").stat().st_size > 1000
    assert (tmp_path / "t.md").read_text() == text


def test_precision_sweep_is_read_from_results_else_from_the_snapshot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sim.lib import fileio

    snapshot = fileio.SNAPSHOT_DIR / tune.PRECISION_CSV
    committed = tune.read_precision(snapshot)
    assert committed[("e8m7", tune.PAPER_BF16)]  # the committed sweep has the paper's unit
    monkeypatch.setattr(fileio, "RESULTS_DIR", tmp_path)
    assert fileio.snapshot_or_generated(tune.PRECISION_CSV) == snapshot
    assert tune.read_precision() == committed  # nothing generated: the snapshot
    (tmp_path / tune.PRECISION_CSV).write_text(
        "distribution,format,presets,exp_bits,man_bits,offset,offset_value,n,bias,mean_abs,"
        "max_abs\ngauss,e8m7,bf16,8,7,8,0.06,10,0.5,0.25,0.07\n")
    assert tune.read_precision() == {("e8m7", 8): (50.0, 25.0)}  # the generated file wins
    assert tune.read_precision(tmp_path / "absent.csv") == {}


def test_ci_verdicts_can_say_no() -> None:
    from experiments.stats import summarize

    assert tune._ci_verdict(summarize([-1.0, -0.8, -0.9])) == "below 0 (gap remains)"
    assert tune._ci_verdict(summarize([-1.0, 0.8, 0.1])) == \
        "includes 0: no difference resolved at this n"
    assert tune._ci_verdict(summarize([0.3])) == "one seed, no CI"
    assert tune._ci_verdict(None) == "not measured"


def test_tiny_sweep_runs_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tune.Preset("tiny", ("mnist",), (0,), 1, 20, tmp_path / "tiny.json",
                    finetune_limit=128, top_offsets=1, fp8_ft_datasets=("mnist",),
                    fp8_ft_exact=False, fp8_ft_paper=False, scratch_datasets=())
    kw: dict[str, Any] = {"progress": False, "log": lambda m: None,
                          "weights_dir": tmp_path / "w", "load_fn": _loader([])}
    tune.run_preset(p, only_steps=2, **kw)
    doc = json.loads(p.out.read_text())
    modes = [r["mode"] for r in doc["runs"]]
    assert modes[:len(tune.inference_modes())] == tune.inference_modes()
    best = tune.best_offsets(tune._runs(doc, p), "mnist", 1)
    tuned = [tune.bf16_mode(o) for o in (8, best[0])]
    assert modes[len(tune.inference_modes()):] == [
        "fp32 [ft1@128]", *(f"{m} [ft1@128]" for m in tuned), "fp32 [ft1@128:fp32]",
        *(f"{m} [ft1@128:fp32]" for m in tuned)]
    assert set(doc["tune_walls"]["tiny"]) == {s.title for s in tune.plan(p, doc)[:2]}

    evaluated: list[Any] = []
    real = grid.evaluate
    monkeypatch.setattr(grid, "evaluate",
                        lambda *a, **k: evaluated.append(a[3]) or real(*a, **k))
    tune.run_preset(p, only_steps=2, **kw)
    assert evaluated == []  # everything was there
    assert len(json.loads(p.out.read_text())["runs"]) == len(modes)
    assert "## All rows" in tune.report(p, p.out)


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "argument --steps: 0 is out of range"),
    (["--steps", "5"], "argument --steps: 5 is out of range"),
    (["--address", "auto"], "--address needs --executor ray"),
    (["--out", "t.md"], "'t.md' must end in .json"),
    (["--executor", "ray", "--task-cpus", "0"], "--task-cpus must be >= 1"),
])
def test_cli_rejects_bad_execution_options(argv: list[str], message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        tune.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
