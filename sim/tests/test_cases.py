"""sim.lib.cases: the case table keeps every configuration the testbenches ran, with their ids."""

from __future__ import annotations

import lmul
from sim.lib import cases


def test_operand_formats_are_the_presets_narrower_than_binary32() -> None:
    assert cases.OPERAND_FORMATS == ("bf16", "fp16", "e4m3_ieee", "e5m2")
    assert cases.FINITE_ONLY_FORMATS == ("e4m3fn",)
    assert set(cases.REPRESENTATIVE) <= set(cases.OPERAND_FORMATS)
    assert {lmul.PRESETS[n].width for n in cases.REPRESENTATIVE} == {16, 8}
    # the RTL's MULTIPLIER values (hdl/mac_datapath.v: 0 = L-Mul, 1 = exact fp_mul)
    assert cases.MULTIPLIER_PARAMETER == {"lmul": 0, "exact": 1}


def test_case_ids_are_the_ones_the_testbenches_had() -> None:
    assert cases.ids(cases.lmul_core_cases()) == [
        f"{n}-off{o}-sat{s}" for n in ("bf16", "fp16", "e4m3_ieee", "e5m2")
        for o in ("paper", "0") for s in (0, 1)] + ["e4m3fn-offpaper-sat0", "e4m3fn-offpaper-sat1"]
    assert cases.ids(cases.fp_mul_cases()) == [
        f"{n}-sub{s}" for n in ("bf16", "fp16", "e4m3_ieee", "e5m2") for s in (1, 0)] + [
        "e4m3fn-sub1"]
    assert cases.ids(cases.lmul_unit_cases()) == [
        "bf16-sat0-skid0", "bf16-sat1-skid0", "e4m3_ieee-sat0-skid0", "e4m3_ieee-sat1-skid0",
        "bf16-sat0-skid1", "e4m3_ieee-sat1-skid1"]
    assert [c.values for c in cases.lmul_unit_cases()][-1] == ("e4m3_ieee", 1, 1)
    arr = cases.mac_array_cases()
    assert cases.ids(arr) == ["bf16-4x4", "e4m3_ieee-4x4", "e5m2-3x2-off0-sat", "bf16-4x4-skid",
                              "bf16-4x4-exact", "e4m3_ieee-3x2-exact-skid"]
    assert arr[2].values == ("e5m2", 3, 2, 0, True, 0, 0)
    assert arr[5].values == ("e4m3_ieee", 3, 2, None, False, 1, 1)
    assert cases.lmul_core_cases()[1].values == ("bf16", None, 1)
