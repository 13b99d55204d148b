"""The OCP FP8 E4M3FN configurations of the proof (FINITE_ONLY=1): in full, and a broken copy.

Each 8-bit configuration has 2^16 operand pairs, one block of the harness, so the default test
run proves every E4M3FN configuration of ``make prove`` in full (L-Mul x OFFSET x SATURATE, the
exact multiplier x SUBNORMALS). The fp_mul reference of a finite-only format
(``int_oracle.mul_reference(..., finite_only=True)``) is checked against ml_dtypes first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import lmul
from sim import prove
from sim.lib import int_oracle
from sim.lib.mutation import E4M3FN_CODE_AS_INF, broken_hdl

ml_dtypes = pytest.importorskip("ml_dtypes")

FN_CONFIGS = ["lmul_core/e4m3fn/*", "fp_mul/e4m3fn/*"]
PAIRS = np.arange(1 << 16, dtype=np.int64)
A8, B8 = (PAIRS >> 8).astype(np.uint8), (PAIRS & 255).astype(np.uint8)


def _as_values(bits: np.ndarray) -> np.ndarray:
    return bits.astype(np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float64)


@pytest.mark.parametrize("subnormals", [True, False])
def test_finite_only_mul_reference_matches_ml_dtypes(subnormals: bool) -> None:
    """All 2^16 pairs: ml_dtypes' float32 product (exact) cast to float8_e4m3fn; with flushing,
    exponent-0 operands and products below 2^-6 are zeros of sign sa ^ sb."""
    got = int_oracle.mul_reference(A8, B8, 4, 3, subnormals, finite_only=True)
    va, vb = _as_values(A8), _as_values(B8)
    with np.errstate(invalid="ignore", over="ignore"):
        want = (va.astype(np.float32) * vb.astype(np.float32)).astype(ml_dtypes.float8_e4m3fn)
    want_v = want.astype(np.float64)
    if not subnormals:
        sign = np.where(np.signbit(va) != np.signbit(vb), -0.0, 0.0)
        tiny = 2.0**-6
        with np.errstate(invalid="ignore"):
            flush = (np.abs(va) < tiny) | (np.abs(vb) < tiny) | (np.abs(va * vb) < tiny)
        want_v = np.where(flush & ~np.isnan(va * vb), sign, want_v)
    nan = np.isnan(want_v)
    assert np.all(got[nan] == 0x7F), "every NaN is the canonical 0x7F"
    got_v = _as_values(got)
    assert np.array_equal(got_v[~nan], want_v[~nan])
    assert np.array_equal(np.signbit(got_v[~nan]), np.signbit(want_v[~nan]))
    assert ((got & 0x78) == 0x78).sum() > 0x7F  # the all-ones-exponent binade is reached


def test_e4m3fn_configurations_in_full(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Every E4M3FN configuration of ``make prove``, all 2^16 pairs each: 0 mismatches."""
    names = [c.name for c in prove.select_configs(FN_CONFIGS)]
    assert len(names) == 6 and all(c.fmt.finite_only for c in prove.select_configs(FN_CONFIGS))
    assert all(dict(c.params)["FINITE_ONLY"] == 1 for c in prove.select_configs(FN_CONFIGS))
    rc = prove.main(["--configs", *FN_CONFIGS, "--state", str(tmp_path / "state.json"),
                     "--out-dir", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    doc = json.loads((tmp_path / "proof.json").read_text())
    assert [e["config"] for e in doc["configs"]] == names
    for entry in doc["configs"]:
        assert entry["mismatches"] == 0 and entry["complete"] and entry["pairs"] == 1 << 16


def _broken_classifier(tmp_path: Path) -> Path:
    """hdl/ whose fp_classify treats the finite-only code S.1111.000 (256) as Inf, as an
    IEEE-style classifier would."""
    return broken_hdl(tmp_path, *E4M3FN_CODE_AS_INF)


def test_a_classifier_with_an_e4m3fn_inf_is_caught(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    configs = ["lmul_core/e4m3fn/offset=paper/saturate=1", "fp_mul/e4m3fn/subnormals=1"]
    rc = prove.main(["--configs", *configs, "--hdl-dir", str(_broken_classifier(tmp_path)),
                     "--state", str(tmp_path / "state.json"), "--no-results", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 1, out
    for name in configs:
        assert f"MISMATCH in {name}" in out, out[-3000:]
    # The model itself: 256 x 1 is 256 (a normal number), not Inf.
    cfg = lmul.LMulConfig.for_format("e4m3fn", offset=0)
    assert int(lmul.lmul_bits(np.array([0x78]), np.array([0x38]), cfg)[0]) == 0x78
