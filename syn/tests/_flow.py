"""The skip marker of the tests that run the standard-cell flow, and the comparison of their
results without times (one definition for syn/tests)."""

from __future__ import annotations

import shutil
from typing import Any

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


def without_times(x: Any) -> Any:
    """A flow result without the fields that hold times (they differ from run to run)."""
    if isinstance(x, dict):
        return {k: without_times(v) for k, v in x.items()
                if k not in ("seconds", "sim_seconds", "profile")}
    if isinstance(x, list):
        return [without_times(v) for v in x]
    return x
