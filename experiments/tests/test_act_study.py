"""The activation study's table: Δ paired with the same products and exact activations, and the
cheapest set whose CI includes 0."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from experiments import act_study
from experiments.report import SCHEMA

#: Per-seed accuracies (%) chosen by hand: pwl16 loses 1-2 pp on every seed (CI excludes 0),
#: pwl64 scatters around 0 (CI includes 0), pwl256 equals exact.
LMUL = [90.0, 91.0, 92.0, 90.5, 91.5]
PWL16 = [88.5, 89.0, 90.5, 89.5, 90.0]
PWL64 = [90.1, 90.9, 92.0, 90.6, 91.4]
FP32 = [93.0, 93.5, 94.0, 93.2, 93.8]


def _run(dataset: str, seed: int, mode: str, acc: float) -> dict[str, object]:
    return {"dataset": dataset, "seq": "rows", "seed": seed, "epochs": 1, "mode": mode,
            "train_limit": None, "test_limit": None, "n_test": 10000, "batch_size": 1000,
            "accuracy": acc}


def _doc(sets: dict[str, dict[str, list[float]]]) -> dict[str, object]:
    runs = [_run(ds, s, mode, acc) for ds, modes in sets.items() for mode, accs in modes.items()
            for s, acc in enumerate(accs)]
    return {"schema": SCHEMA, "runs": runs}


def _grid() -> dict[str, dict[str, list[float]]]:
    modes = {"fp32": FP32, "lmul": LMUL, "lmul:act=pwl16": PWL16, "lmul:act=pwl64": PWL64,
             "lmul:act=pwl256": LMUL}
    return {"mnist": dict(modes), "fashion": dict(modes)}


def test_split_activation() -> None:
    assert act_study.split_activation("lmul:act=pwl64") == ("lmul", "pwl64")
    assert act_study.split_activation("fp32:act=pwl16") == ("fp32", "pwl16")
    assert act_study.split_activation("lmul:offset=7,act=pwl16") == ("lmul:offset=7", "pwl16")
    assert act_study.split_activation("bf16") == ("bf16", "exact")
    assert act_study.study_modes(["lmul"]) == ["lmul", "lmul:act=pwl16", "lmul:act=pwl64",
                                               "lmul:act=pwl256"]


def test_delta_is_paired_with_the_same_products() -> None:
    rows = act_study.study_rows(_doc(_grid()))
    row = next(r for r in rows if r.dataset == "mnist" and r.activation == "pwl16")
    want = [a - b for a, b in zip(PWL16, LMUL, strict=True)]
    assert row.products == "lmul"
    assert row.diff is not None and row.diff.mean == pytest.approx(statistics.mean(want))
    assert row.diff.std == pytest.approx(statistics.stdev(want))
    assert row.diff.ci_high < 0  # pwl16 loses on every seed
    to_fp32 = [a - b for a, b in zip(PWL16, FP32, strict=True)]
    assert row.diff_fp32 is not None
    assert row.diff_fp32.mean == pytest.approx(statistics.mean(to_fp32))
    exact = next(r for r in rows if r.dataset == "mnist" and r.products == "lmul"
                 and r.activation == "exact")
    assert exact.diff is None
    same = next(r for r in rows if r.dataset == "mnist" and r.activation == "pwl256")
    assert same.diff is not None and (same.diff.ci_low, same.diff.ci_high) == (0.0, 0.0)


def test_cheapest_set_whose_ci_includes_zero() -> None:
    rows = act_study.study_rows(_doc(_grid()))
    assert act_study.cheapest(rows, "lmul") == "pwl64"
    # pwl64 shifted by -1 pp on one dataset: its CI excludes 0 there, so pwl256 is the answer
    grid = _grid()
    grid["fashion"]["lmul:act=pwl64"] = [a - 1.0 for a in PWL64]
    assert act_study.cheapest(act_study.study_rows(_doc(grid)), "lmul") == "pwl256"
    # a set measured on one dataset only is not named
    grid = _grid()
    del grid["fashion"]["lmul:act=pwl64"]
    del grid["fashion"]["lmul:act=pwl256"]
    assert act_study.cheapest(act_study.study_rows(_doc(grid)), "lmul") is None
    # one seed: no CI, nothing named
    one = {ds: {m: a[:1] for m, a in modes.items()} for ds, modes in _grid().items()}
    assert act_study.cheapest(act_study.study_rows(_doc(one)), "lmul") is None
    assert not act_study.includes_zero(None)


def test_report_only_writes_the_table(tmp_path: Path) -> None:
    results = tmp_path / "r.json"
    results.write_text(json.dumps(_doc(_grid())))
    md = tmp_path / "t.md"
    assert act_study.main(["--out", str(results), "--snapshot", str(md), "--report-only"]) == 0
    text = md.read_text()
    assert "`lmul` products: **pwl64**" in text
    line = next(ln for ln in text.splitlines() if "| mnist |" in ln and "| pwl16 |" in ln)
    mean = statistics.mean(a - b for a, b in zip(PWL16, LMUL, strict=True))
    assert f"| {mean:+.2f} |" in line and not math.isnan(mean)


def test_products_with_act_are_refused(tmp_path: Path) -> None:
    results = tmp_path / "r.json"
    results.write_text(json.dumps(_doc(_grid())))
    assert act_study.main(["--out", str(results), "--snapshot", str(tmp_path / "t.md"),
                           "--report-only", "--products", "lmul:act=pwl16"]) == 2
