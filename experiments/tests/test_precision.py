"""Tests of experiments/precision.py and precision_report.py: error statistics checked against
independently computed bounds and integrals, the fast offset sweep against the model, and the
report generation on a small sample."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

import lmul
from experiments import precision as prec
from experiments import precision_report


def _mitchell_mean_error_continuous(n: int = 2000) -> float:
    """E[approx/exact - 1] of Mitchell's product for independent uniform mantissas x, y in
    [0, 1), by the midpoint rule on an n x n grid (independent of the model and the script)."""
    x = (np.arange(n) + 0.5) / n
    X, Y = np.meshgrid(x, x)
    s = X + Y
    approx = np.where(s < 1, 1 + s, 2 * s)
    return float((approx / ((1 + X) * (1 + Y)) - 1).mean())


@pytest.fixture(scope="module")
def small_run() -> prec.Results:
    formats = prec.analysed_formats(man_bits=(3, 4, 7), presets=("e4m3_ieee", "e5m2", "bf16"))
    return prec.run(n=30_000, seed=3, sweep_n=10_000, formats=formats, progress=False)


def test_mitchell_is_biased_low_by_known_amount(small_run: prec.Results) -> None:
    expected = _mitchell_mean_error_continuous()
    assert -0.0390 < expected < -0.0380  # the textbook ~3.85 % underestimate
    grid = prec.lookup(small_run.stats, "grid", "e8m7", "mitchell")
    assert grid is not None
    # Mitchell never overestimates and is at worst 1/9 low (x = y = 1/2).
    assert float(grid["max_err"]) <= 0.0
    assert float(grid["min_err"]) == pytest.approx(-1 / 9, abs=1e-12)
    assert float(grid["bias"]) == pytest.approx(expected, abs=5e-4)
    assert float(grid["mean_abs"]) == pytest.approx(-float(grid["bias"]), rel=1e-12)
    gauss = prec.lookup(small_run.stats, "gauss", "e8m7", "mitchell")
    assert gauss is not None and -0.042 < float(gauss["bias"]) < -0.034


def test_exact_rne_within_half_ulp(small_run: prec.Results) -> None:
    for r in small_run.stats:
        if r["method"] != "exact_rne" or r["domain"] != "normal":
            continue
        half_ulp = 2.0 ** -(int(r["man_bits"]) + 1)
        assert 0 < float(r["max_abs"]) <= half_ulp, r
        assert float(r["mean_abs"]) < half_ulp / 2


def test_seed_is_mitchell_times_notebook_scale(small_run: prec.Results) -> None:
    """On BF16 operands the seed's r + r/32 + r/64 is exact, so its error is 1.046875 (1 + e) - 1
    of Mitchell's error e, pair by pair and hence on average."""
    for dist in ("grid", "gauss"):
        mitchell = prec.lookup(small_run.stats, dist, "e8m7", "mitchell")
        seed = prec.lookup(small_run.stats, dist, "e8m7", "seed")
        assert mitchell is not None and seed is not None
        assert float(seed["bias"]) == pytest.approx(
            1.046875 * (1 + float(mitchell["bias"])) - 1, abs=1e-12)


def test_paper_offset_removes_most_of_the_bias(small_run: prec.Results) -> None:
    lm = prec.lookup(small_run.stats, "grid", "e8m7", "lmul")
    assert lm is not None and lm["offset"] == 8
    assert 0 < float(lm["bias"]) < 0.01  # continuous-mantissa value: +0.41 %


@pytest.mark.parametrize("man_bits", [3, 5])
def test_grouped_offset_sweep_matches_model_at_every_offset(man_bits: int) -> None:
    fmt = lmul.format_for(8, man_bits)
    rng = np.random.default_rng(0)
    ma = rng.integers(0, 1 << man_bits, 3000)
    mb = rng.integers(0, 1 << man_bits, 3000)
    groups = prec.MantissaGroups.from_mantissas(ma, mb, man_bits)
    a = (fmt.bias << man_bits) | ma
    b = (fmt.bias << man_bits) | mb
    exact = lmul.format_bits_to_float64(a, fmt) * lmul.format_bits_to_float64(b, fmt)
    for off in range(0, (1 << (man_bits - 1)) + 1):
        cfg = lmul.LMulConfig(8, man_bits, offset=off)
        err = lmul.format_bits_to_float64(lmul.lmul_bits(a, b, cfg), fmt) / exact - 1
        bias, mean_abs, max_abs = groups.stats(off)
        assert bias == pytest.approx(err.mean(), abs=1e-12)
        assert mean_abs == pytest.approx(np.abs(err).mean(), abs=1e-12)
        assert max_abs == pytest.approx(np.abs(err).max(), abs=1e-12)


def test_sweep_agrees_with_model_statistics(small_run: prec.Results) -> None:
    for s in prec.sweep_summary(small_run.sweep):
        if s["distribution"] != "grid":
            continue
        for key, method in (("paper", "lmul"), ("mitchell", "mitchell")):
            row = s[key]
            stats = prec.lookup(small_run.stats, "grid", str(s["format"]), method)
            assert isinstance(row, dict) and stats is not None
            for metric in ("bias", "mean_abs", "max_abs"):
                assert float(row[metric]) == pytest.approx(float(stats[metric]), abs=1e-12)
        best, free = s["best"], s["bias_free"]
        assert isinstance(best, dict) and isinstance(free, dict)
        rows = [r for r in small_run.sweep
                if r["format"] == s["format"] and r["distribution"] == "grid"]
        assert float(best["mean_abs"]) == min(float(r["mean_abs"]) for r in rows)
        assert abs(float(free["bias"])) == min(abs(float(r["bias"])) for r in rows)


def test_bf16_sweep_optimum_near_continuous_theory(small_run: prec.Results) -> None:
    """The bias-free offset c solves E[(1+x+y+c or 2(x+y+c)) / ((1+x)(1+y))] = 1; for uniform
    mantissas it lies near 0.057, i.e. 7 LSBs of BF16 (0.0547); computed here independently."""
    n = 1000
    x = (np.arange(n) + 0.5) / n
    X, Y = np.meshgrid(x, x)

    def bias(c: float) -> float:
        s = X + Y + c
        approx = np.where(s < 1, 1 + s, np.where(s < 2, 2 * s, 4 * (s - 1)))
        return float((approx / ((1 + X) * (1 + Y)) - 1).mean())

    lo, hi = 0.0, 0.25
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if bias(mid) < 0 else (lo, mid)
    assert 0.05 < lo < 0.065
    summ = {(s["distribution"], s["format"]): s for s in prec.sweep_summary(small_run.sweep)}
    free = summ[("grid", "e8m7")]["bias_free"]
    assert isinstance(free, dict)
    assert abs(int(free["offset"]) - lo * 128) <= 1


def test_report_files_regenerated(small_run: prec.Results, tmp_path: Path) -> None:
    written = precision_report.write_outputs(small_run, tmp_path, plots=True)
    names = {p.name for p in written}
    assert {"precision.csv", "precision_offsets.csv", "precision.md", "precision_vs_m.png",
            "precision_hist.png", "precision_offsets.png"} <= names
    for p in written:
        if p.suffix == ".png":
            assert p.read_bytes()[:4] == b"\x89PNG"
    with open(tmp_path / "precision.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["format"] for r in rows} >= {"e8m3", "e8m4", "e8m7", "e4m3", "e5m2"}
    md = (tmp_path / "precision.md").read_text()
    # The markdown shows the CSV's numbers.
    bf16 = next(r for r in rows if (r["distribution"], r["format"], r["method"], r["domain"])
                == ("grid", "e8m7", "lmul", "normal"))
    assert f"{100 * float(bf16['mean_abs']):.3f}%" in md
    assert "Claim 1" in md and "Claim 2" in md and "1 + 1/32 + 1/64" in md
    verdicts = prec.claims(small_run.stats, small_run.sweep)
    assert {v["claim"] for v in verdicts} == {"1", "2"}
    for v in verdicts:
        assert f"| {float(v['ratio']):.3f} | {'yes' if v['holds'] else 'no'} |" in md


def test_docs_quote_current_grid_numbers(small_run: prec.Results) -> None:
    """docs/precision.md quotes grid (N-independent) numbers; they must match the script."""
    doc = (prec.REPO / "docs" / "precision.md").read_text()
    nb = prec.notebook_numbers(small_run)
    for key in ("grid_mitchell_low", "grid_seed_bias", "grid_lmul_bias", "grid_lmul_mean_abs",
                "grid_seed_mean_abs", "grid_best_mean_abs"):
        assert f"{100 * nb[key]:.2f}%" in doc, key
    assert f"{nb['grid_unbias_scale']:.4f}" in doc
    offsets = re.findall(r"OFFSET = (\d+)", doc)
    assert str(int(nb["grid_bias_free_offset"])) in offsets
    assert str(int(nb["grid_best_offset"])) in offsets


def test_bad_arguments_are_clear_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert prec.main(["--presets", "e3m9"]) == 2
    assert "unknown preset" in capsys.readouterr().err
    assert prec.main(["--man-bits", "0"]) == 2
    assert prec.main(["--n", "-1"]) == 2
