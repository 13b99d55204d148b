"""Results JSON round-trips to the summary table and plot; t quantiles match published tables."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from experiments import report, stats
from experiments.store import ResultsStore

# Two-sided 95% Student t critical values t_{0.975, df} from standard statistical tables.
T975 = {1: 12.7062, 2: 4.3027, 4: 2.7764, 9: 2.2622, 30: 2.0423}


@pytest.mark.parametrize(("df", "want"), sorted(T975.items()))
def test_t_quantile_matches_tables(df: int, want: float) -> None:
    assert stats.t_quantile(0.975, df) == pytest.approx(want, abs=1e-4)
    assert stats.t_quantile(0.025, df) == pytest.approx(-want, abs=1e-4)


def test_summarize_single_value_has_no_spread() -> None:
    s = stats.summarize([97.5])
    assert s.n == 1 and s.mean == 97.5 and math.isnan(s.std) and math.isnan(s.ci_low)


FP32 = [84.61, 84.34, 84.20, 83.60, 84.73]
LMUL = [83.55, 83.06, 83.91, 82.82, 84.01]


def _record(dataset: str, seed: int, mode: str, acc: float, epochs: int = 3) -> dict[str, object]:
    return {"dataset": dataset, "seq": "rows", "seed": seed, "epochs": epochs, "mode": mode,
            "train_limit": None, "test_limit": None, "n_test": 10000,
            "correct": round(acc * 100), "accuracy": acc}


def _cells(table: str, dataset: str, mode: str) -> list[str]:
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 4 and cells[0] == dataset and cells[4] == mode:
            return cells
    raise AssertionError(f"no row {dataset}/{mode} in\n{table}")


def test_results_json_round_trips_to_table_and_plot(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    store = ResultsStore(path)
    for seed, (a, b) in enumerate(zip(FP32, LMUL, strict=True)):
        store.add(_record("fashion", seed, "fp32", a))
        store.add(_record("fashion", seed, "lmul", b))
    store.add(_record("mnist", 0, "fp32", 97.49, epochs=5))
    store.add(_record("mnist", 0, "lmul", 97.71, epochs=5))
    store.mark_unavailable("kmnist", "KMNIST: download failed (offline)")

    table = report.write_report(path)  # reads the JSON back from disk
    assert (tmp_path / "r.md").read_text() == table
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    row = _cells(table, "fashion", "fp32")
    mean, sd = statistics.mean(FP32), statistics.stdev(FP32)
    half = T975[4] * sd / math.sqrt(5)
    assert row[5] == "5" and row[6] == f"{mean:.2f}" and row[7] == f"{sd:.2f}"
    assert row[8] == f"[{mean - half:.2f}, {mean + half:.2f}]"
    assert row[9] == "—"

    row = _cells(table, "fashion", "lmul")
    diffs = [b - a for a, b in zip(FP32, LMUL, strict=True)]
    dm, dsd = statistics.mean(diffs), statistics.stdev(diffs)
    dh = T975[4] * dsd / math.sqrt(5)
    assert row[6] == f"{statistics.mean(LMUL):.2f}"
    assert row[9] == f"{dm:+.2f}" and row[10] == f"[{dm - dh:.2f}, {dm + dh:.2f}]"

    row = _cells(table, "mnist", "lmul")
    assert row[2] == "5" and row[5] == "1" and row[6] == "97.71" and row[7] == "—"
    assert row[9] == "+0.22" and row[10] == "—"
    assert "Not run: kmnist: KMNIST: download failed (offline)" in table

    # The CLI prints the same table.
    assert report.main([str(path), "--no-plot"]) == 0


def test_report_rejects_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"runs": 3}')
    assert report.main([str(bad)]) == 1
    assert report.main([str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err
    assert "not an accuracy results file" in err and "no such results file" in err


def test_blas_order_fp32_rows_do_not_stand_in_for_fixed_order_ones(tmp_path: Path) -> None:
    """A results file written before the fp32 mode summed in fixed order: its fp32 rows (and
    head=fp32 rows) must count as missing, its bf16/lmul rows as present, and a fresh fp32 row
    must be added beside the old one and win in the table."""
    from experiments.store import run_key, uses_fp32_products

    path = tmp_path / "old.json"
    old = [_record("mnist", 0, m, 90.0) for m in ("fp32", "lmul", "seed:head=fp32")]
    path.write_text(json.dumps({"schema": report.SCHEMA, "runs": old, "unavailable": {}}))
    store = ResultsStore(path)
    query = {k: old[0][k] for k in ("dataset", "seq", "seed", "epochs", "n_test")}
    assert not store.has(run_key({**query, "mode": "fp32"}))
    assert not store.has(run_key({**query, "mode": "seed:head=fp32"}))
    assert store.has(run_key({**query, "mode": "lmul"}))
    assert uses_fp32_products("fp32 [ft1]") and not uses_fp32_products("lmul [ft1:fp32]")

    store.add(_record("mnist", 0, "fp32", 91.0))
    store.add(_record("mnist", 0, "fp32", 92.0))  # same key as the line above: kept out
    doc = json.loads(path.read_text())
    orders = [(r["mode"], r.get("fp32_order")) for r in doc["runs"]]
    assert orders == [("fp32", None), ("lmul", None), ("seed:head=fp32", None),
                      ("fp32", "fixed")]  # stored records are left as they were written
    assert store.has(run_key({**query, "mode": "fp32"}))
    (fp32_row,) = [r for r in report.build_rows(doc) if r.mode == "fp32"]
    assert fp32_row.acc.mean == 91.0
