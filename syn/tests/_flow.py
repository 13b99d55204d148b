"""The skip marker of the tests that run the standard-cell flow (one definition for syn/tests)."""

from __future__ import annotations

import shutil

import pytest

from syn import _stdcell as sc


def _have_flow() -> bool:
    try:
        sc.library_files()
    except sc.CostError:
        return False
    return all(shutil.which(t) for t in ("yosys", "sta", "iverilog", "vvp"))


needs_flow = pytest.mark.skipif(
    not _have_flow(), reason="needs yosys, OpenSTA, Icarus and the OSU 0.18 um library "
    "(apt-get install yosys opensta iverilog qflow-tech-osu018)")
