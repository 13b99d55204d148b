"""Tests of the cost flow's ``cell`` level: the LSTM cell's arithmetic outside the array
(element-wise multipliers, binary32 adder, activation unit, conversions; syn/designs.py
``cell_units``, syn/stimuli.py ``cell_stimulus`` / ``cell_operands``, the whole-cell energy per
image of syn/report.py ``per_image``)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import lmul
from syn import _gatesim as gs
from syn import _stdcell as sc
from syn import cost, designs, report, stimuli
from syn.tests._flow import needs_flow


def test_cell_units_names_tops_and_parameters() -> None:
    by = {d.name: d for d in designs.cell_units("bf16")}
    assert list(by) == ["cell-bf16-lmul-ewmul", "cell-bf16-exact-ewmul", "cell-bf16-common-add",
                        "cell-bf16-common-sigmoid", "cell-bf16-common-tanh",
                        "cell-bf16-common-to_fmt", "cell-bf16-common-widen"]
    assert by["cell-bf16-lmul-ewmul"].top == "lmul_core"
    assert by["cell-bf16-exact-ewmul"].param_dict == {"EXP_BITS": 8, "MAN_BITS": 7,
                                                      "SUBNORMALS": 1}
    # the adder is binary32 whatever the operand format; sigmoid is FUNC 0, tanh FUNC 1
    assert by["cell-bf16-common-add"].param_dict == {"EXP_BITS": 8, "MAN_BITS": 23}
    assert by["cell-bf16-common-sigmoid"].param_dict == {"FUNC": 0, "SEGMENTS": 64,
                                                        "COEF_BITS": 20}
    assert by["cell-bf16-common-tanh"].param_dict["FUNC"] == 1
    assert all(d.clock is None for d in by.values())
    # make cost measures the cell for the array's formats only
    assert [d.fmt for d in cost.designs(["fp16", "e5m2"], ["cell"], ["bf16"])] == ["bf16"] * 7


def _port_widths(top: str, params: dict[str, int]) -> dict[str, int]:
    """Input port widths read from the module's ANSI header in hdl/ (independent of the flow)."""
    text = (designs.HDL / f"{top}.v").read_text()
    out = {}
    for m in re.finditer(r"input\s+wire\s+(?:\[([^\]:]+):0\]\s*)?(\w+)", text):
        rng, name = m.group(1), m.group(2)
        out[name] = 1 + eval(rng, {}, dict(params)) if rng else 1
    return out


def test_cell_ports_are_the_rtl_inputs() -> None:
    for d in designs.cell_units("bf16") + designs.cell_units("e4m3_ieee"):
        assert stimuli.cell_ports(d) == _port_widths(d.top, d.param_dict), d.name


def test_cell_operations_per_image_from_the_lstm_shape() -> None:
    # 28 steps, hidden 128, 28 inputs: per step and hidden unit f*c, i*g, o*tanh(c) (3
    # products, widened), one sum, sigmoid of i, f, o and tanh of g and c, both operands of the
    # three products rounded to the format; 156 gate inputs rounded per step; the head's h once
    assert stimuli.CELL_OPS_PER_IMAGE == {"ewmul": 10752, "add": 3584, "sigmoid": 10752,
                                          "tanh": 7168, "to_fmt": 28 * 156 + 28 * 768 + 128,
                                          "widen": 10752}
    assert stimuli.CELL_OPS_PER_IMAGE["ewmul"] == stimuli.ELEMENTWISE_PER_IMAGE


def _operands(t: int = 3, b: int = 2, hs: int = 2) -> stimuli.MnistOperands:
    rng = np.random.default_rng(5)
    k = 6
    return stimuli.MnistOperands(rng.uniform(-1, 1, (t, b, k)).astype(np.float32),
                                 rng.uniform(-1, 1, (k, 4 * hs)).astype(np.float32),
                                 rng.uniform(-0.5, 0.5, 4 * hs).astype(np.float32), "test")


def test_cell_operands_follow_the_cell_recurrence() -> None:
    t, b, hs = 3, 2, 2
    mn = _operands(t, b, hs)
    fmt = lmul.PRESETS["bf16"]
    pools = stimuli.cell_operands(mn, fmt)
    n = b * hs
    mul_a, mul_b = pools["ewmul"]
    assert len(mul_a) == len(mul_b) == 3 * t * n
    assert len(pools["add"][0]) == t * n and len(pools["sigmoid"][0]) == 3 * t * n
    assert len(pools["tanh"][0]) == 2 * t * n and len(pools["widen"][0]) == 3 * t * n
    # step 0: f * c with c = 0; step s: c is the previous step's f*c + i*g
    assert np.all(mul_b[:n] == 0)
    fc, ig = pools["add"]
    for s in range(1, t):
        c_prev = (fc[(s - 1) * n:s * n] + ig[(s - 1) * n:s * n]).astype(np.float32)
        got = mul_b[3 * s * n:3 * s * n + n]
        want = lmul.format_bits_to_float32(lmul.round_to_format_bits(c_prev, fmt, "rne"), fmt)
        np.testing.assert_array_equal(got, want)
    # the sums' operands are the products of the format operands, which BF16 holds exactly
    np.testing.assert_array_equal(fc[:n], mul_a[:n] * mul_b[:n])
    # the sigmoid sees the i, f, o pre-activations, the tanh those of g (and c)
    pre = np.einsum("tbk,kn->tbn", mn.z.astype(np.float64), mn.w.astype(np.float64)) + mn.b
    sig_cols = np.r_[0:2 * hs, 3 * hs:4 * hs]
    np.testing.assert_allclose(np.sort(pools["sigmoid"][0]), np.sort(pre[..., sig_cols].ravel()),
                               rtol=1e-5)
    g_pre = pre[..., 2 * hs:3 * hs].ravel()
    tanh_pool = pools["tanh"][0]
    assert all(np.any(np.isclose(tanh_pool, v, rtol=1e-5)) for v in g_pre)


def test_cell_stimulus_pairs_and_same_operands_for_both_multipliers() -> None:
    mn = _operands()
    sizes = stimuli.Sizes(mul_vectors=50, check_mul_16=30)
    by = {d.name: d for d in designs.cell_units("bf16")}
    s_l = stimuli.workload_stimulus(by["cell-bf16-lmul-ewmul"], "mnist", sizes, 1, mn)
    s_e = stimuli.workload_stimulus(by["cell-bf16-exact-ewmul"], "mnist", sizes, 1, mn)
    assert s_l.values == s_e.values and s_l.ops == 49 and s_l.n_steps == 50
    add = stimuli.workload_stimulus(by["cell-bf16-common-add"], "uniform", sizes, 1, None)
    assert set(add.values) == {"a", "b"}
    x = np.array(add.values["a"], dtype=np.uint32).view(np.float32)
    assert np.all(np.abs(x) < 1) and len(set(add.values["a"])) > 40
    chk = stimuli.workload_stimulus(by["cell-bf16-common-widen"], "check", sizes, 1, None)
    assert chk.n_steps == 30 and max(chk.values["x"]) < 1 << 16
    with pytest.raises(sc.CostError, match="without captured operands"):
        stimuli.workload_stimulus(by["cell-bf16-common-tanh"], "mnist", sizes, 1, None)


def _result(level: str, unit: str, pj: float, variant: str = "") -> dict:
    return {"level": level, "format": "bf16", "unit": unit, "variant": variant,
            "runs": {"mnist/specify": {"energy_per_op_pj": pj}}}


def test_per_image_adds_the_whole_cell_with_each_units_multiplier() -> None:
    e = {"ewmul": 0.0, "add": 20.0, "sigmoid": 30.0, "tanh": 31.0, "to_fmt": 2.0, "widen": 1.0}
    res = [_result("array", "lmul", 300.0), _result("array", "exact", 500.0),
           _result("mul", "lmul", 10.0), _result("mul", "exact", 100.0),
           _result("cell", "lmul", 11.0, "ewmul"), _result("cell", "exact", 110.0, "ewmul")]
    res += [_result("cell", "common", v, k) for k, v in e.items() if k != "ewmul"]
    img = report.per_image(res)
    assert img is not None
    rest = 3584 * 20 + 10752 * 30 + 7168 * 31 + 26000 * 2 + 10752 * 1
    macs = 28 * 156 * 512 + 1280
    assert img["lmul"]["image_uj"] == pytest.approx((macs * 300 + rest + 10752 * 11) * 1e-6)
    assert img["exact"]["image_uj"] == pytest.approx((macs * 500 + rest + 10752 * 110) * 1e-6)
    assert img["ratio"] == pytest.approx(img["lmul"]["image_uj"] / img["exact"]["image_uj"])
    # a unit missing: the cell is not summed (products only, as before the cell level)
    img2 = report.per_image([r for r in res if r.get("variant") != "tanh"])
    assert img2 is not None and "cell_ops" not in img2
    assert img2["lmul"]["image_uj"] == pytest.approx((macs * 300 + 10752 * 10) * 1e-6)


@needs_flow
def test_cell_unit_is_measured_and_checked_against_the_rtl(tmp_path: Path) -> None:
    """The smallest cell unit through the whole flow (synthesis, timing, equivalence, energy);
    the netlist's parameters are the design's."""
    d = next(x for x in designs.cell_units("bf16") if x.variant == "widen")
    tools = cost.Tools.find()
    sizes = stimuli.Sizes(mul_vectors=30, check_mul_16=200)
    rec = cost.measure_design(d, tools, tmp_path / "wd", sizes, 1, ["uniform"], ["zero"], None,
                              sc.StaConstraints())
    assert rec["synth"]["params"]["EXP_BITS"] == 8 and rec["synth"]["params"]["MAN_BITS"] == 7
    assert rec["check"]["vectors"] == 200 and rec["check"]["bits_compared"] > 0
    run = rec["runs"]["uniform/zero"]
    assert run["ops"] == 29 and run["energy_per_op_pj"] > 0


def test_constant_output_bits_are_split_into_one_assign_per_bit() -> None:
    # yosys writes constant output bits of a port (sigmoid's sign, the pwl set's low bits) as
    # one concatenation, which OpenSTA's reader refuses
    text = ("module m(x, y);\n  input [1:0] x;\n  output [5:0] y;\n"
            "  assign { y[5], y[2:0] } = 4'b0101;\n  assign y[4:3] = x;\nendmodule\n")
    out = gs.split_constant_assigns(text)
    assert "{" not in out
    for bit, v in ((5, 0), (2, 1), (1, 0), (0, 1)):
        assert f"  assign y[{bit}] = 1'b{v};" in out
    assert "assign y[4:3] = x;" in out
    nl = gs.parse_netlist(out)
    assert ("y[2]", "1'b1") in nl.assigns
    with pytest.raises(sc.CostError, match="3 bits to 4 targets"):
        gs.split_constant_assigns("  assign { y[5], y[2:0] } = 3'b010;\n")
