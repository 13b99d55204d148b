"""Tests of the energy-accuracy study's FP8 E4M3 designs (experiments/energy_accuracy.py:
format-aware join, the FP8 section and verdict 1's addendum)."""

from __future__ import annotations

from typing import Any

import pytest

from experiments import _ea_report
from experiments import energy_accuracy as ea
from experiments.stats import Summary

from .test_energy_accuracy import _acc, _cost_doc, _cost_row

DS = ["mnist", "fashion"]
FUSED = "acc=fused,k=8,align=8"


def _fp8_doc() -> dict[str, Any]:
    """The BF16 designs of _cost_doc (sequential exact 500 pJ) after the E4M3 ones (sequential
    exact 300 pJ), so nothing can rely on the BF16 rows coming first."""
    doc = _cost_doc()
    doc["designs"] = [
        _cost_row("exact", "mac_pe", e=300.0, clkreg=30.0, fmt="e4m3_ieee"),
        _cost_row("lmul", "mac_pe", e=75.0, clkreg=27.0, fmt="e4m3_ieee"),
        _cost_row("exact", "dot_pe", 8, 8, e=180.0, clkreg=10.0, fmt="e4m3_ieee"),
        _cost_row("lmul", "dot_pe", 8, 8, e=50.0, clkreg=9.0, fmt="e4m3_ieee"),
        _cost_row("exact", "dot_pe", 8, 8, e=250.0, clkreg=20.0),
        *doc["designs"]]
    return doc


def _fp8_acc() -> dict[tuple[str, str], dict[int, float]]:
    out = _acc()
    for ds in DS:
        base = out[(ds, "fp32")]
        out[(ds, "bf16:" + FUSED)] = dict(base)
        # on float32-trained weights E4M3 L-Mul loses clearly, the exact E4M3 multiply not
        out[(ds, "lmul:e=4,m=3")] = {s: v - 8.0 - 0.3 * s for s, v in base.items()}
        out[(ds, "lmul:e=4,m=3," + FUSED)] = {s: v - 7.0 + 0.2 * s for s, v in base.items()}
        out[(ds, "exact:e=4,m=3")] = {s: v + (0.1, -0.2, 0.05)[s] for s, v in base.items()}
        out[(ds, "exact:e=4,m=3," + FUSED)] = {s: v + (0.1, -0.1, 0.0)[s]
                                               for s, v in base.items()}
    return out


def test_an_e4m3_row_joins_with_its_formats_mode_and_paper_offset() -> None:
    rows = ea.join(_fp8_doc(), _fp8_acc(), DS)
    by = {r["design"]: r for r in rows}
    assert by["dot-e4m3_ieee-lmul-seq"]["mode"] == "lmul:e=4,m=3"
    assert by["dot-e4m3_ieee-lmul-k8-a8"]["mode"] == "lmul:e=4,m=3," + FUSED
    assert by["dot-e4m3_ieee-exact-k8-a8"]["mode"] == "exact:e=4,m=3," + FUSED
    assert by["dot-e4m3_ieee-lmul-k8-a8"]["format"] == "e4m3_ieee"
    d = by["dot-e4m3_ieee-lmul-seq"]["fashion_delta"]
    assert d.n == 3 and d.mean == pytest.approx(-8.3)
    # an unset OFFSET is the format's paper offset (1 for E4M3), not BF16's 8; another offset
    # is its own mode
    base = {"EXP_BITS": 4, "MAN_BITS": 3, "MULTIPLIER": 0}
    assert ea.mode_of(base, "mac_pe") == "lmul:e=4,m=3"
    assert ea.mode_of({**base, "OFFSET": 1}, "mac_pe") == "lmul:e=4,m=3"
    assert ea.mode_of({**base, "OFFSET": 0}, "mac_pe") == "lmul:e=4,m=3,offset=0"
    assert ea.mode_of({**base, "FINITE_ONLY": 0, "MULTIPLIER": 1, "K": 8, "ALIGN_BITS": 8},
                      "dot_pe") == "exact:e=4,m=3," + FUSED


def _bf16_name(r: dict[str, Any]) -> None:
    r["name"] = r["name"].replace("e4m3_ieee", "bf16")


def _e4m3_name_on_bf16(r: dict[str, Any]) -> None:
    for d in (r["params"], r["synth"]["params"]):
        d.update(EXP_BITS=8, MAN_BITS=7, OFFSET=8)


def _wrong_offset(r: dict[str, Any]) -> None:
    for d in (r["params"], r["synth"]["params"]):
        d.update(OFFSET=2)


def _bf16_offset(r: dict[str, Any]) -> None:
    r["params"].pop("OFFSET")
    r["synth"]["params"]["OFFSET"] = 8  # BF16's paper offset on an E4M3 netlist


def _other_fp8(r: dict[str, Any]) -> None:
    for d in (r["params"], r["synth"]["params"]):
        d.update(EXP_BITS=5, MAN_BITS=2)


@pytest.mark.parametrize("tamper, match", [
    (_bf16_name, r"netlist is e4m3_ieee .*not bf16"),
    (_e4m3_name_on_bf16, r"netlist is bf16 .*not e4m3_ieee"),
    (_wrong_offset, r"OFFSET=2, not the paper's \(1 for e4m3_ieee\)"),
    (_bf16_offset, r"OFFSET=8, not the paper's \(1 for e4m3_ieee\)"),
    (_other_fp8, r"EXP_BITS=5, MAN_BITS=2.*not a format of the sweep"),
    (lambda r: r.update(format="bf16"), "reported format bf16, netlist is e4m3_ieee")])
def test_a_name_format_or_offset_that_is_not_the_netlists_is_refused(tamper: Any,
                                                                     match: str) -> None:
    doc = _fp8_doc()
    tamper(next(r for r in doc["designs"] if r["name"] == "dot-e4m3_ieee-lmul-k8-a8"))
    with pytest.raises(ea.JoinError, match=match):
        ea.join(doc, _fp8_acc(), DS)


def test_the_fp8_section_sets_each_design_against_both_sequential_exact_pes() -> None:
    rows = ea.join(_fp8_doc(), _fp8_acc(), DS)
    fv = ea.format_verdict(rows, "e4m3_ieee", DS)
    assert (fv["baseline"], fv["own_baseline"]) == ("dot-bf16-exact-seq",
                                                     "dot-e4m3_ieee-exact-seq")
    assert fv["ratios"]["dot-e4m3_ieee-lmul-k8-a8"] == pytest.approx(
        {"bf16": 50.0 / 500.0, "own": 50.0 / 300.0})
    assert fv["ratios"]["dot-e4m3_ieee-exact-seq"] == pytest.approx({"bf16": 0.6, "own": 1.0})
    assert set(fv["ratios"]) == {r["design"] for r in rows if r["format"] == "e4m3_ieee"}
    # the table prints both ratios in its columns
    lines = ea.format_section(rows, "e4m3_ieee", {}, DS, 500.0)
    row = next(x for x in lines if x.startswith("| dot-e4m3_ieee-lmul-k8-a8 |"))
    assert "| 50.0 | " in row and "| 0.100 | 0.167 |" in row
    # the cheapest E4M3 design with every CI including 0 is the fused exact one (the L-Mul
    # ones lose on these float32-trained weights); its saving split accumulation / format
    assert fv["best"] == "dot-e4m3_ieee-exact-k8-a8" and fv["best_weights"] is None
    assert (fv["best_ratio"], fv["best_ratio_own"]) == pytest.approx((180 / 500, 180 / 300))
    sp = fv["split"]
    assert sp["bf16_exact_same_acc"] == "dot-bf16-exact-k8-a8"
    assert (sp["accumulation_share"], sp["format_share"], sp["lmul_share"]) == pytest.approx(
        ((500 - 250) / 320, (250 - 180) / 320, 0.0))
    assert fv["lmul_fails_fp32"] and len(fv["lmul_fp32"]) == 2
    assert not fv["exact_fails_fp32"] and len(fv["exact_fp32"]) == 2
    assert fv["best_fp32"] == "dot-e4m3_ieee-exact-k8-a8"
    # the BF16 verdicts ignore the E4M3 rows (cheaper ones included)
    v = ea.verdicts(rows, DS)
    assert v["baseline"] == "dot-bf16-exact-seq" and v["baseline_pj"] == 500.0
    assert v["best"] == "dot-bf16-lmul_o6-k8-a16" and v["cheapest"] == "dot-bf16-lmul-k8-a16"


def test_fp8_on_fine_tuned_weights_counts_the_datasets_that_have_them() -> None:
    """make tune fine-tunes E4M3 on FashionMNIST only: the fused L-Mul design on its
    fine-tuned weights qualifies on fashion, says mnist is not measured, and is the cheapest."""
    ft = ea.FineTuned(epochs=1)
    ctrl = {0: 90.0, 1: 91.0, 2: 92.0}
    ft_acc = {("fashion", ft.control): dict(ctrl), ("mnist", ft.control): dict(ctrl),
              ("fashion", f"lmul:e=4,m=3,{FUSED} [ft1:lmul:e=4,m=3]"):
                  {s: v + (0.3, -0.4, 0.1)[s] for s, v in ctrl.items()}}
    rows = ea.join(_fp8_doc(), _fp8_acc(), DS, ft=ft, ft_acc=ft_acc)
    by = {r["design"]: r for r in rows}
    assert by["dot-e4m3_ieee-exact-k8-a8"]["ft_weights"] == "ft1:exact:e=4,m=3"
    fv = ea.format_verdict(rows, "e4m3_ieee", DS, ft_seeds=3)
    assert fv["best"] == "dot-e4m3_ieee-lmul-k8-a8"
    assert fv["best_weights"] == "ft1:lmul:e=4,m=3"
    assert (fv["best_datasets"], fv["best_unmeasured"]) == (["fashion"], ["mnist"])
    assert fv["split"]["lmul_share"] == pytest.approx((180 - 50) / 450)
    # not listed as missing seeds (make tune never trains them), but as not trained
    miss = ea.ft_missing(rows, ft_acc, ft, DS, (0, 1, 2))
    assert not any("e=4,m=3" in m and "mnist" in m for m in miss)
    text = _ea_report._format_addendum(fv, DS, {"ft_not_trained": ea.ft_not_trained(
        ft, [("ft1:lmul:e=4,m=3", [])], DS)})
    assert "**0.100x** the BF16 sequential exact PE" in text and "0.167x the FP8 E4M3" in text
    assert "mnist not measured (make tune's full preset fine-tunes" in text
    assert "not an L-Mul-only saving" in text and "**fails**" in text
    assert isinstance(Summary(**fv["best_delta"]["fashion"]), Summary)
