"""sim.lib.mutation: a broken copy of hdl/ changes exactly the one line it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.lib.common import HDL_DIR
from sim.lib.mutation import broken_hdl


def test_one_match_is_replaced_and_nothing_else(tmp_path: Path) -> None:
    hdl = broken_hdl(tmp_path, "fp_dot_sum.v", r"tree\[k\] = tree\[2\*k\] \+ tree\[2\*k\+1\];",
                     "tree[k] = tree[2*k] ^ tree[2*k+1]; // \\1 kept literally")
    good = (HDL_DIR / "fp_dot_sum.v").read_text().splitlines()
    bad = (hdl / "fp_dot_sum.v").read_text().splitlines()
    changed = [b for g, b in zip(good, bad, strict=True) if g != b]
    assert len(changed) == 1 and changed[0].strip() == (
        "tree[k] = tree[2*k] ^ tree[2*k+1]; // \\1 kept literally")
    assert {p.name for p in hdl.iterdir()} == {p.name for p in HDL_DIR.iterdir()}


@pytest.mark.parametrize("pattern", [r"no such line", r"\bwire\b"])
def test_a_mutation_that_does_not_match_once_is_an_error(tmp_path: Path, pattern: str) -> None:
    with pytest.raises(AssertionError, match=r"fp_dot_sum\.v \d+ times, not once"):
        broken_hdl(tmp_path, "fp_dot_sum.v", pattern, "x")
