"""The whole LSTM cell on the RTL (experiments.cosim with a hardware activation set).

* ``lmul`` / ``bf16`` arrays with ``-pwl64`` (sigmoid and tanh on ``hdl/act_unit.v``) next to
  the same arrays with exact activations (in Python): 4 images, all 28 steps and the head, every
  logit bit-identical to ``experiments.lstm.forward_logits`` in the mode with ``act=pwl64``
  (and not to the mode with exact activations, so the comparison is against the unit's
  arithmetic); the report says where the activations ran; the act_unit evaluations and the
  element-wise cycles are the counts of the cell's definition and the documented cycle model;
* copies of ``act_unit`` (a sigmoid that ignores the input's sign), of the element-wise adder
  (``fp_add`` adding magnitudes of opposite-sign operands) and multiplier (``lmul_core`` with
  the offset plus one), used only by the element-wise unit (the array keeps ``hdl/``), make the
  comparison fail;
* variant names with activation sets, the default variants, the command line.

The network and images are those of test_cosim.py: an untrained seeded LSTM and seeded strokes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from experiments import cosim, lstm
from experiments.modes import parse_mode
from sim.lib.mutation import broken_hdl

from . import test_cosim

# test_cosim.py's fixtures: the network and the images
network, images, N_IMAGES = test_cosim.network, test_cosim.images, test_cosim.N_IMAGES


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


def _stored(doc: dict, name: str) -> np.ndarray:
    imgs = doc["variants"][name]["images"]
    return np.array([[int(h, 16) for h in imgs[str(i)]["logits"]] for i in range(N_IMAGES)],
                    dtype=np.uint32)


@pytest.mark.parametrize("base", list(cosim.VARIANTS))
def test_whole_cell_on_rtl_bit_identical(base: str, network, images,
                                         tmp_path) -> None:
    x_seq, labels = images
    hw_name = f"{base}-pwl64"
    doc = cosim.run(network, x_seq, labels, [base, hw_name], tmp_path / "cosim.json",
                    progress=False, log=lambda s: None)
    for name in (base, hw_name):
        s = doc["summary"][name]
        assert s["images"] == N_IMAGES and s["identical"] == N_IMAGES, (name, s)
    v = cosim.variant(hw_name)
    mode = parse_mode(v.mode)
    assert mode.activation == "pwl64" and mode.kind == parse_mode(base).kind
    got = _stored(doc, hw_name)
    assert np.array_equal(got, _bits(lstm.forward_logits(network, x_seq, mode)))
    exact_act = _bits(lstm.forward_logits(network, x_seq, parse_mode(base)))
    assert np.array_equal(_stored(doc, base), exact_act)
    assert not np.array_equal(got, exact_act)
    # The cell's definition: 3 sigmoid and 2 tanh per hidden unit and step; the cycle model:
    # one hidden unit per lane per cycle, 4 lanes, the batch's 4 images in turn.
    steps, hidden = x_seq.shape[1], network.hidden
    s_hw, s_ex = doc["summary"][hw_name], doc["summary"][base]
    assert s_hw["act_evals_per_image"] == 5 * hidden * steps
    assert s_ex["act_evals_per_image"] == 0
    pointwise = steps * -(-N_IMAGES * hidden // 4) / N_IMAGES
    assert s_hw["pointwise_cycles_per_image"] == s_ex["pointwise_cycles_per_image"] == pointwise
    assert s_hw["total_cycles_per_image"] == pytest.approx(
        s_hw["array_cycles_per_image"] + pointwise, abs=0.11)
    md = (tmp_path / "cosim.md").read_text()
    assert f"{hw_name}: nothing, the whole cell runs on the RTL" in md
    assert f"{base}: **sigmoid and tanh run in Python**" in md
    assert "act_unit pwl64 (SEGMENTS=64, COEF_BITS=20)" in md


def _copy_hdl(tmp_path: Path, tag: str, module: str, line: str, new: str) -> Path:
    """A copy of hdl/ with one line of ``module``.v replaced."""
    return broken_hdl(tmp_path, f"{module}.v", re.escape(line), new, name=f"hdl_{tag}")


@pytest.mark.parametrize(("module", "line", "new"), [
    ("act_unit", "wire                neg_sigmoid = (FUNC == 0) & sign;",
     "wire                neg_sigmoid = 1'b0;"),
    ("fp_add", "if (eff_sub) r = {1'b0, sig_l} - {1'b0, s_al};",
     "if (1'b0) r = {1'b0, sig_l} - {1'b0, s_al};"),
    ("lmul_core", "+ {2'b00, b[FW-1:0]} + OFFSET_V;", "+ {2'b00, b[FW-1:0]} + OFFSET_V + ONE_V;"),
])
def test_broken_elementwise_unit_is_caught(module: str, line: str, new: str, network,
                                           images, tmp_path) -> None:
    """The element-wise unit alone built from a broken copy (the array from hdl/): the logits
    of four steps differ from the model's for every image, while the same hardware built from
    hdl/ alone matches. The copies: a sigmoid that ignores the input's sign, an adder that adds
    the magnitudes of operands of opposite signs, an L-Mul with the offset plus one. (An adder
    that truncates instead of rounding is not caught here: f*c and i*g carry BF16 significands,
    so their float32 sum is exact unless their exponents lie more than 16 apart.)"""
    x_seq = images[0][:, 8:12]  # rows through the strokes
    v = cosim.variant("lmul-pwl64")
    mode = parse_mode(v.mode)
    ref = _bits(lstm.forward_logits(network, x_seq, mode))
    broken = _copy_hdl(tmp_path, module, module, line, new)
    for pdirs, identical in ((None, N_IMAGES), ([broken], 0)):
        with cosim.Hardware(mode.cfg, v.multiplier, act=v.act,
                            pointwise_hdl_dirs=pdirs) as hw:
            got = _bits(cosim.rtl_forward(hw, cosim.CellBits.on(hw, network), x_seq))
        # the runner's comparison (cosim.run): a logit vector is identical or not
        assert int(np.all(got == ref, axis=1).sum()) == identical


def test_variant_names_with_activation_sets() -> None:
    v = cosim.variant("bf16-k8-a16-pwl64")
    assert v == cosim.Variant("bf16-k8-a16-pwl64", "bf16:acc=fused,k=8,align=16,act=pwl64", 1,
                              "fp_mul", 8, 16, "pwl64")
    assert parse_mode(v.mode).name == "bf16:acc=fused,k=8,align=16,act=pwl64"
    assert cosim.variant("lmul-pwl16") == cosim.Variant("lmul-pwl16", "lmul:act=pwl16", 0,
                                                        "lmul_core", act="pwl16")
    assert cosim.variant("lmul").act == "exact"
    assert cosim.default_variants() == [
        "lmul", "bf16", "lmul-k8-a16", "bf16-k8-a16",
        "lmul-pwl64", "bf16-pwl64", "lmul-k8-a16-pwl64", "bf16-k8-a16-pwl64"]
    assert cosim.default_variants(4, 24, "exact") == ["lmul", "bf16", "lmul-k4-a24",
                                                      "bf16-k4-a24"]
    for bad in ("lmul-pwl7", "lmul-exact", "lmul-k8-a16-exact"):
        with pytest.raises(ValueError, match="unknown activation set"):
            cosim.variant(bad)
    with pytest.raises(ValueError, match="act must be exact or one of"):
        cosim.Hardware(parse_mode("lmul").cfg, 0, act="pwl7")


def test_cli_rejects_bad_activation(capsys) -> None:
    with pytest.raises(SystemExit):
        cosim.main(["--act", "pwl7"])
    assert "unknown activation set" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cosim.main(["--ew-lanes", "0"])
    assert "--ew-lanes" in capsys.readouterr().err
