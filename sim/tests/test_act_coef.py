"""hdl/act_coef.vh is the model's table: ``python -m sim.gen_act_coef --check``, which must also
fail on a file with one coefficient changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sim import gen_act_coef


def test_committed_table_matches_the_model() -> None:
    assert gen_act_coef.main(["--check"]) == 0


def test_check_catches_a_changed_coefficient(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    text = gen_act_coef.OUT.read_text()
    changed, count = re.subn(r"(13'h0405: act_coef_rom = \{32'h)([0-9a-f]{8})",
                             lambda m: m.group(1) + f"{int(m.group(2), 16) + 1:08x}", text)
    assert count == 1
    bad = tmp_path / "act_coef.vh"
    bad.write_text(changed)
    monkeypatch.setattr(gen_act_coef, "OUT", bad)
    assert gen_act_coef.main(["--check"]) == 1


def test_every_shipped_set_has_a_table() -> None:
    text = gen_act_coef.OUT.read_text()
    for n, cfg in enumerate(gen_act_coef.table_configs(), start=1):
        p = cfg.verilog_parameters()
        assert (f"func == {p['FUNC']} && segments == {p['SEGMENTS']} && coef_bits == "
                f"{p['COEF_BITS']}) act_coef_table = {n};") in text
        assert text.count(f"13'h{n << 9 | (cfg.segments - 1):04x}:") == 1
