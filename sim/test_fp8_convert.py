"""cocotb regression of the conversions of the OCP FP8 E4M3FN format (``FINITE_ONLY=1``).

The DUT is ``sim/hdl/fp8_convert_lanes.v``: ``fp_to_fmt`` (binary32 -> E4M3FN, RNE) and
``fmt_to_fp32`` (E4M3FN -> binary32) lanes. Checked, as bit patterns:

* ``fmt_to_fp32``: all 256 codes against the model ``lmul.format_bits_to_float32`` and against
  ``ml_dtypes.float8_e4m3fn``'s values (``S.1111.111`` the canonical float32 NaN; ``S.1111.000``
  .. ``S.1111.110`` the normal numbers 256 .. 448, never Inf);
* ``fp_to_fmt``: every code's value, the midpoints between neighbouring codes (ties to even), one
  binary32 ulp either side of each, values beyond 448 (464 is the tie that stays 448), +-Inf,
  NaNs, binary32 subnormals, and ``LMUL_VECTORS`` random values (default 20,000; seed
  ``COCOTB_RANDOM_SEED``) against the model ``lmul.round_to_format_bits`` and against
  ``ml_dtypes``' cast (NaN inputs aside: the RTL's NaN is canonical, ml_dtypes keeps the sign).

The outcomes reached (ties, overflow to NaN, results in the all-ones-exponent binade) are
required to be non-zero.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cocotb
import ml_dtypes
import numpy as np
import pytest

import lmul
from sim.lib.common import (
    BUILD_DIR,
    assert_bits_equal,
    drive_steps,
    random_seed,
    run_cocotb,
    vector_count,
)
from sim.lib.mutation import E4M3FN_CODE_AS_INF, broken_hdl

LANES = 16  # vectors per step (wider buses cost Icarus more per vector)
FMT = lmul.PRESETS["e4m3fn"]


def probe_inputs(rng: np.random.Generator, count: int) -> np.ndarray:
    """binary32 bit patterns (uint32) of the vector classes in the module docstring."""
    codes = np.arange(256, dtype=np.uint8)
    vals = np.unique(np.abs(codes.view(ml_dtypes.float8_e4m3fn).astype(np.float64)))
    vals = vals[np.isfinite(vals)]
    ext = np.concatenate([vals, [480.0, 512.0]])
    mids = ((ext[1:] + ext[:-1]) / 2).astype(np.float32)
    near = np.concatenate([vals.astype(np.float32), mids, np.nextafter(mids, np.float32(0)),
                           np.nextafter(mids, np.float32(np.inf))])
    e = rng.integers(-12, 10, count)
    rand = (rng.uniform(1, 2, count) * np.exp2(e)).astype(np.float32)
    x = np.concatenate([near, rand]).astype(np.float32)
    x = np.concatenate([x, -x]).view(np.uint32)
    specials = np.array([0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001, 0x7F800001,
                         0x00000001, 0x807FFFFF, 0x7F7FFFFF, 0xFF7FFFFF, 0x80000000],
                        dtype=np.uint32)
    return np.concatenate([x, specials])


async def _drive(dut, x_port: str, y_port: str, x: np.ndarray, x_width: int,
                 y_width: int) -> np.ndarray:
    return await drive_steps(dut, [(x_port, x, x_width)], y_port, y_width, LANES)


@cocotb.test()
async def run_fp8_convert(dut) -> None:
    seed = random_seed()
    count = vector_count(20_000)
    dut._log.info("E4M3FN conversions: COCOTB_RANDOM_SEED=%d, LMUL_VECTORS=%d", seed, count)
    codes = np.arange(256, dtype=np.uint64)
    wid = await _drive(dut, "wid_x", "wid_y", codes, 8, 32)
    want = lmul.format_bits_to_float32(codes, FMT).view(np.uint32).astype(np.uint64)
    assert_bits_equal("fmt_to_fp32 vs model", codes, codes, wid, want)
    ref = codes.astype(np.uint8).view(ml_dtypes.float8_e4m3fn).astype(np.float32)
    ref_bits = lmul.canonicalize_nan(ref).view(np.uint32).astype(np.uint64)
    assert_bits_equal("fmt_to_fp32 vs ml_dtypes", codes, codes, wid, ref_bits)

    x = probe_inputs(np.random.default_rng(seed), count)
    got = await _drive(dut, "cvt_x", "cvt_y", x, 32, 8)
    model = lmul.round_to_format_bits(x.view(np.float32), FMT, "rne").astype(np.uint64)
    assert_bits_equal("fp_to_fmt vs model", x, x, got, model)
    xf = x.view(np.float32)
    keep = ~np.isnan(xf)
    with np.errstate(invalid="ignore", over="ignore"):
        ml = xf[keep].astype(ml_dtypes.float8_e4m3fn).view(np.uint8).astype(np.uint64)
    assert_bits_equal("fp_to_fmt vs ml_dtypes", x[keep], x[keep], got[keep], ml)
    mag = got & 0x7F
    reached = {"overflow_to_nan": int(np.sum(keep & (mag == 0x7F))),
               "top_binade": int(np.sum((mag >= 0x78) & (mag < 0x7F))),
               "ties_to_448": int(np.sum(np.abs(xf) == 464.0)),
               "subnormal": int(np.sum((mag > 0) & (mag < 0x08)))}
    dut._log.info("E4M3FN: %d codes widened, %d inputs converted; outcomes %s", len(codes),
                  len(x), reached)
    assert all(v > 0 for v in reached.values()), reached


def test_fp8_convert() -> None:
    run_cocotb("test_fp8_convert", "fp8_convert_lanes", ("fp8_convert_lanes.v",),
               parameters={"EXP_BITS": 4, "MAN_BITS": 3, "FINITE_ONLY": 1, "LANES": LANES})


def test_fp8_convert_catches_a_classifier_with_an_e4m3fn_inf(tmp_path: Path) -> None:
    """hdl/ whose fp_classify reads S.1111.000 (256) as Inf, as an IEEE-style classifier would:
    the widening of that code differs, so the regression must fail."""
    hdl = broken_hdl(tmp_path, *E4M3FN_CODE_AS_INF)
    shutil.rmtree(BUILD_DIR / "fp8_convert_lanes-broken-classifier", ignore_errors=True)
    with pytest.raises(SystemExit):
        run_cocotb("test_fp8_convert", "fp8_convert_lanes", ("fp8_convert_lanes.v",),
                   parameters={"EXP_BITS": 4, "MAN_BITS": 3, "FINITE_ONLY": 1, "LANES": LANES},
                   build_tag="broken-classifier", hdl_dir=hdl)
