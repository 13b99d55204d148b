"""Tests of syn/synth.py: the yosys flow runs on a small case (E4M3 multipliers) and its
own outputs are parsed back, so the synthesis numbers in docs/results/ and the README cannot
silently go stale. Skipped, with the reason, when yosys is not installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from syn import synth

HAVE_YOSYS = shutil.which("yosys") is not None
needs_yosys = pytest.mark.skipif(
    not HAVE_YOSYS, reason="yosys not on PATH (apt-get install yosys); synthesis not tested")


@pytest.fixture(scope="module")
def e4m3_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, object]]]:
    out = tmp_path_factory.mktemp("synth")
    rows = synth.run(["e4m3_ieee"], ["mul"], out, use_cache=False, plot=True, progress=False)
    return out, rows


@needs_yosys
def test_e4m3_ieee_multipliers_synthesize_and_lmul_is_cheaper(
        e4m3_run: tuple[Path, list[dict[str, object]]]) -> None:
    out, _ = e4m3_run
    parsed = {r["unit"]: r for r in synth.read_csv(out / "synth.csv")}
    assert set(parsed) == {"lmul", "exact", "exact_flush"}
    for r in parsed.values():
        assert r["format"] == "e4m3_ieee" and r["level"] == "mul"
        cells, trans, depth = int(r["cells"]), int(r["transistors"]), int(r["depth"])
        assert cells > 20 and depth > 3
        # Every mapped cell costs 2..12 transistors in yosys' CMOS model.
        assert 2 * cells <= trans <= 12 * cells
    cells = {u: int(r["cells"]) for u, r in parsed.items()}
    trans = {u: int(r["transistors"]) for u, r in parsed.items()}
    # The claim under test: no multiplier array, so L-Mul is cheaper than either exact variant,
    # and flushing subnormals makes the exact multiplier cheaper than full IEEE.
    assert cells["lmul"] < cells["exact_flush"] < cells["exact"]
    assert trans["lmul"] < trans["exact_flush"] < trans["exact"]


@needs_yosys
def test_tables_and_chart_regenerated(e4m3_run: tuple[Path, list[dict[str, object]]]) -> None:
    out, rows = e4m3_run
    md = (out / "synth.md").read_text()
    for r in rows:
        assert f"| {r['cells']} | {r['transistors']} | {r['depth']} |" in md
    ratio = int(rows[0]["cells"]) / int(rows[1]["cells"])  # lmul / exact (job order)
    assert f"| {ratio:.3f} |" in md
    assert (out / "synth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_yosys
def test_committed_results_are_current(e4m3_run: tuple[Path, list[dict[str, object]]]) -> None:
    """docs/results/synth.csv (the committed snapshot the README quotes) matches a fresh
    synthesis of the current RTL."""
    committed = synth.REPO / "docs" / "results" / "synth.csv"
    _, rows = e4m3_run
    old = {(r["level"], r["format"], r["unit"]): r for r in synth.read_csv(committed)}
    for r in rows:
        key = (r["level"], r["format"], r["unit"])
        assert key in old, (f"docs/results/synth.csv lacks {key}; run `make synth`, then "
                            "`make snapshot NAME=synth`")
        if old[key]["yosys"] != r["yosys"]:
            pytest.skip(f"docs/results/synth.csv was made with {old[key]['yosys']}, this machine "
                        f"has {r['yosys']}: numbers are not comparable")
        for metric in ("cells", "transistors", "depth"):
            assert int(old[key][metric]) == int(r[metric]), (
                f"docs/results/synth.csv is stale for {key} {metric}: {old[key][metric]} "
                f"committed, {r[metric]} now; run `make synth`, then `make snapshot NAME=synth`")


STAT = """
=== fp_mul ===

   Number of wires:                 10
   Number of cells:                  6
     $_AND_                          2
     $_MUX_                          1
     $_NOT_                          3
"""
CMOS = STAT + "\n   Estimated number of transistors:         30\n"
LTP = "Longest topological path in fp_mul (length=4):\n"


def test_parse_reports_reads_yosys_text() -> None:
    cells, trans, depth, types = synth.parse_reports(STAT, CMOS, LTP)
    assert (cells, trans, depth) == (6, 30, 4)
    assert types == {"$_AND_": 2, "$_MUX_": 1, "$_NOT_": 3}


def test_parse_reports_rejects_inconsistent_text() -> None:
    with pytest.raises(synth.SynthError):
        synth.parse_reports(STAT.replace("cells:                  6", "cells: 7"), CMOS, LTP)
    with pytest.raises(synth.SynthError):
        synth.parse_reports(STAT, STAT, LTP)  # no transistor estimate


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown format"):
        synth.designs(["e3m9"])
    assert synth.main(["--formats", "e3m9", "--no-plot"]) == 2


def test_yosys_reads_only_the_files_the_design_can_read() -> None:
    """yosys' mapping moves with modules it has read even when the top never uses them, so each
    design reads its own files (as ``make cost`` does) and its cache key covers exactly those."""
    design = next(d for d in synth.designs(("bf16",)) if d.top == "lmul_core")
    script = synth.yosys_script(design, Path("S"), Path("C"), Path("L"), Path("P"))
    read = next(line for line in script.splitlines() if line.startswith("read_verilog"))
    assert "lmul_core.v" in read and "fp_classify.v" in read
    assert "fp_add.v" not in read and "mac_array.v" not in read and "dot_pe.v" not in read
    names = [p.name for p in synth.design_files(design.top)]
    assert "lmul_defs.vh" in names and "fp_mul.v" not in names
