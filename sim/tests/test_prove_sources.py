"""sim.prove keeps each configuration's progress and results keyed by that configuration's own
sources: an edit re-proves the configurations whose design or reference can read the edited file,
and only those."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sim import prove, rtlsim
from sim.lib.mutation import broken_hdl

LMUL_CONFIG = "lmul_core/bf16/offset=paper/saturate=0"
ADD_CONFIG = "fp_add/e5m2"


def _config(name: str) -> prove.Config:
    return prove.select_configs([name])[0]


def test_each_configuration_hashes_what_it_reads() -> None:
    hdl = [rtlsim.HDL_DIR]
    core = prove.config_sources(_config(LMUL_CONFIG), hdl)
    add = prove.config_sources(_config(ADD_CONFIG), hdl)
    dot = prove.config_sources(prove.select_configs(["dot/*"])[0], hdl)
    assert "hdl/lmul_core.v" in core["verilog"] and "hdl/fp_add.v" not in core["verilog"]
    assert "hdl/fp_add.v" in add["verilog"] and "hdl/lmul_core.v" not in add["verilog"]
    assert {"sim/hdl/dot_datapath_lanes.v", "hdl/dot_datapath.v", "hdl/lmul_core.v",
            "hdl/fp_mul.v"} <= set(dot["verilog"])
    # fp_add's reference is sim/lib/int_oracle.py, which shares no code with the model's kernels.
    assert "sim/lib/int_oracle.py" in add["model"] and "model/lmul/_kdot.py" not in add["model"]
    assert "model/lmul/_core.py" in core["model"] and "sim/prove.py" in core["model"]
    assert "sim/lib/dot_oracle.py" in dot["model"]


def test_an_edit_reproves_only_the_configurations_that_read_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Both configurations proven on a copy of hdl/; then lmul_core.v is replaced by a broken
    version. The re-run must re-prove lmul_core (and catch the bug: a stale entry would report
    the old 0 mismatches) and leave fp_add's finished entry alone. Once the file is restored and
    only fp_add is run, proof.json drops the lmul_core row, which was proven on other sources."""
    hdl = tmp_path / "hdl"
    shutil.copytree(rtlsim.HDL_DIR, hdl)
    out = tmp_path / "out"
    args = ["--pairs", "2^18", "--hdl-dir", str(hdl), "--state", str(tmp_path / "state.json"),
            "--out-dir", str(out), "--no-progress", "--threads", "1"]
    assert prove.main(["--configs", LMUL_CONFIG, ADD_CONFIG, *args]) == 0
    capsys.readouterr()

    seen: list[str] = []
    real_block = prove.exhaustive_block

    def counting_block(config, block, index, lo, dtype):
        seen.append(config.name)
        return real_block(config, block, index, lo, dtype)

    monkeypatch.setattr(prove, "exhaustive_block", counting_block)
    assert prove.main(["--configs", LMUL_CONFIG, ADD_CONFIG, *args]) == 0
    assert seen == []  # nothing changed: both complete
    capsys.readouterr()

    good = (hdl / "lmul_core.v").read_text()
    bad = broken_hdl(tmp_path, "lmul_core.v", r"(UNDER_LIMIT\s*=\s*\(BIAS_V\s*\+\s*)ONE_V(\))",
                     lambda m: f"{m[1]}ONE_V + ONE_V{m[2]}")
    shutil.copyfile(bad / "lmul_core.v", hdl / "lmul_core.v")
    rc = prove.main(["--configs", LMUL_CONFIG, ADD_CONFIG, *args])
    captured = capsys.readouterr()
    assert rc == 1, captured.out
    assert set(seen) == {LMUL_CONFIG}
    assert f"MISMATCH in {LMUL_CONFIG}" in captured.out
    assert f"{LMUL_CONFIG}: sources changed" in captured.err and "lmul_core.v" in captured.err
    assert ADD_CONFIG not in captured.err
    rows = {e["config"]: e for e in json.loads((out / "proof.json").read_text())["configs"]}
    assert rows[LMUL_CONFIG]["mismatches"] > 0 and rows[ADD_CONFIG]["mismatches"] == 0
    assert rows[ADD_CONFIG]["pairs"] == 1 << 16 and rows[ADD_CONFIG]["complete"]

    (hdl / "lmul_core.v").write_text(good)
    seen.clear()
    assert prove.main(["--configs", ADD_CONFIG, *args]) == 0
    assert seen == []
    doc = json.loads((out / "proof.json").read_text())
    assert [e["config"] for e in doc["configs"]] == [ADD_CONFIG]
    assert not any(f.endswith("lmul_core.v") for f in doc["sources"]["verilog"])
    md = (out / "proof.md").read_text()
    assert ADD_CONFIG in md and LMUL_CONFIG not in md
