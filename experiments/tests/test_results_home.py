"""Generated results and committed snapshots have one home each: every command writes into
``results/`` (git-ignored) by default, the snapshots live in ``docs/results/``, and a reader of
another target's output falls back to the snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import accuracy, convert_demo, cosim, operands, tune
from sim.lib import fileio


def _default_outputs() -> dict[str, Path]:
    outs = {f"accuracy --preset {n}": Path(p["out"]) for n, p in accuracy.PRESETS.items()}
    outs.update({f"tune --preset {n}": p.out for n, p in tune.PRESETS.items()})
    outs.update({"convert_demo": convert_demo.DEFAULT_OUT, "cosim": cosim.DEFAULT_OUT,
                 "operands": operands.DEFAULT_OUT})
    return outs


def test_default_outputs_are_generated_never_snapshots() -> None:
    outs = _default_outputs()
    assert len(outs) == 7
    for what, path in outs.items():
        assert path.is_relative_to(fileio.RESULTS_DIR), (what, path)
        assert not path.is_relative_to(fileio.SNAPSHOT_DIR), (what, path)
    assert fileio.RESULTS_DIR == fileio.REPO / "results"
    assert not fileio.RESULTS_DIR.is_relative_to(fileio.SNAPSHOT_DIR)


def test_results_dir_is_git_ignored() -> None:
    ignored = (fileio.REPO / ".gitignore").read_text().splitlines()
    assert "/results/" in ignored


def test_snapshot_or_generated_prefers_the_generated_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generated, snapshots = tmp_path / "results", tmp_path / "docs" / "results"
    snapshots.mkdir(parents=True)
    monkeypatch.setattr(fileio, "RESULTS_DIR", generated)
    monkeypatch.setattr(fileio, "SNAPSHOT_DIR", snapshots)
    assert fileio.snapshot_or_generated("x.csv") == snapshots / "x.csv"  # neither: snapshot path
    (snapshots / "x.csv").write_text("committed")
    assert fileio.snapshot_or_generated("x.csv") == snapshots / "x.csv"
    generated.mkdir()
    (generated / "x.csv").write_text("generated")
    assert fileio.snapshot_or_generated("x.csv").read_text() == "generated"
