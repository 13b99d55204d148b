"""cocotb regression of ``hdl/fp_to_fmt.v`` (binary32 -> (E, M) format, round to nearest even).

The DUT is ``sim/hdl/fp_to_fmt_formats.v``: LANES converters for each of eight formats (the four
L-Mul presets, binary32 itself, E=2/M=1, E=7/M=23, E=6/M=4) in one simulation. Every RTL result
is compared, as an integer bit pattern, with the model ``lmul.round_to_format_bits(x, fmt, "rne")``
(the conversion the ``lmul`` and ``bf16`` inference modes apply to every operand); the special,
boundary and tie vectors and a sample of the random ones are also compared with the
``Fraction``-based oracle ``sim/lib/oracle.py`` (which does not import the model).

Vector classes per format (binary32 bit patterns):

* specials: signed zeros, +-Inf, quiet and signalling NaNs with payloads and both signs, binary32
  subnormals (smallest, largest), the largest finite binary32;
* boundaries: for target values around every edge (smallest subnormal, subnormal/normal boundary,
  1.0, the largest finite value) and, for E <= 6, in every binade: the value itself, the
  rounding midpoint to the next value (an exact tie, which must go to even) and the binary32
  neighbours of both (just below / just above the tie); the overflow threshold (largest finite
  plus half an ulp: a tie that rounds to Inf) and its neighbours;
* random: half uniform binary32 bit patterns (NaNs, Infs, huge and tiny values), half values
  in the format's range (exponent within the format's binades, random mantissa bits below the
  kept ones), default 20,000 per format (``LMUL_VECTORS`` overrides), seed
  ``COCOTB_RANDOM_SEED`` (default 1); both printed.

The outcome classes reached (exact ties rounded to even/up, overflows to Inf, subnormal results,
results rounded to zero, NaNs) are counted and required to be non-zero, so a weak vector set
cannot pass silently. The exhaustive sweep of all 2^32 binary32 inputs runs on the Verilator
harness instead (``python -m experiments.cosim --fp-to-fmt``).

Run: ``pytest sim/test_fp_to_fmt.py`` (``-s`` shows seeds, counts and vectors/s).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import cocotb
import numpy as np
import pytest

import lmul
from sim.lib import oracle
from sim.lib.common import (
    BUILD_DIR,
    HDL_DIR,
    SIM_DIR,
    SIM_HDL_DIR,
    assert_bits_equal,
    design_sources,
    drive_steps,
    random_seed,
    run_cocotb,
    vector_count,
)

LANES = 16  # vectors per step (wider buses cost Icarus more per vector)
DEFAULT_RANDOM_VECTORS = 20_000
ORACLE_RANDOM_SAMPLE = 2_000
#: (E, M) of the formats instantiated by sim/hdl/fp_to_fmt_formats.v, in port order.
FORMATS = ((8, 7), (5, 10), (4, 3), (5, 2), (8, 23), (2, 1), (7, 23), (6, 4))

F32_SPECIALS = np.array([
    0x00000000, 0x80000000,                          # signed zeros
    0x7F800000, 0xFF800000,                          # infinities
    0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001,  # quiet / signalling NaNs, both signs
    0x7FFFFFFF, 0xFFFFFFFF, 0x7FA00000, 0xFFC00001,  # NaN payloads
    0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF,  # binary32 subnormals
    0x00400000, 0x00800000, 0x80800000,              # mid subnormal, smallest normals
    0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0xBF800000,  # largest finite, +-1
], dtype=np.uint32)


def fmt_of(exp_bits: int, man_bits: int) -> lmul.Format:
    """The model's format object for (E, M) (a preset where one exists)."""
    return lmul.format_for(exp_bits, man_bits)


def _f32_neighbours(values: np.ndarray) -> np.ndarray:
    """float32 bit patterns of ``values`` and of their float32 neighbours on both sides."""
    v = values.astype(np.float32)
    up = np.nextafter(v, np.float32(np.inf))
    down = np.nextafter(v, np.float32(-np.inf))
    return np.concatenate([v, up, down]).view(np.uint32)


def boundary_inputs(fmt: lmul.Format, rng: np.random.Generator) -> np.ndarray:
    """Binary32 patterns at the format's rounding and range boundaries (see the module docstring).

    Only values that float32 represents exactly are used as ties; for M = 23 only the subnormal
    and overflow edges are interesting (elsewhere the conversion is exact).
    """
    m, emax_field = fmt.man_bits, fmt.max_exp_field
    if fmt.exp_bits <= 6:
        fields = list(range(0, emax_field))
    else:
        fields = sorted({0, 1, 2, fmt.bias - 1, fmt.bias, fmt.bias + 1, emax_field - 2,
                         emax_field - 1} | set(rng.integers(0, emax_field, 12).tolist()))
    mants = sorted({0, 1, 2, (1 << (m - 1)), fmt.man_mask - 1, fmt.man_mask} & set(
        range(1 << m)))
    pats = np.array([(f << m) | mm for f in fields for mm in mants], dtype=np.int64)
    vals = lmul.format_bits_to_float64(pats, fmt)  # exact
    fields_a = pats >> m
    ulp = np.ldexp(1.0, (np.maximum(fields_a, 1) - fmt.bias - m).astype(np.int32))
    mids = vals + ulp / 2  # tie between this value and the next (the next may be Inf)
    out = [vals]
    # A tie is a valid binary32 input only when float32 holds it exactly.
    exact_mid = mids.astype(np.float32).astype(np.float64) == mids
    out.append(mids[exact_mid])
    # Midpoints of the format's subnormals that are binary32 subnormals, for E = 8.
    cand = np.concatenate(out)
    cand = np.concatenate([cand, -cand])
    with np.errstate(over="ignore"):
        return np.unique(np.concatenate([_f32_neighbours(cand), F32_SPECIALS]))


def random_inputs(fmt: lmul.Format, count: int, rng: np.random.Generator) -> np.ndarray:
    """Half uniform binary32 patterns, half values inside the format's exponent range."""
    half = count // 2
    uni = rng.integers(0, 1 << 32, count - half, dtype=np.int64).astype(np.uint32)
    # Binary32 exponent fields covering the format's binades (subnormal ones included) and a
    # few beyond each end.
    lo = max(1, 127 - fmt.bias - fmt.man_bits - 2)
    hi = min(254, 127 + fmt.bias + 2)
    e = rng.integers(lo, hi + 1, half, dtype=np.int64)
    mant = rng.integers(0, 1 << 23, half, dtype=np.int64)
    sign = rng.integers(0, 2, half, dtype=np.int64)
    ranged = ((sign << 31) | (e << 23) | mant).astype(np.uint32)
    return np.concatenate([uni, ranged])


def oracle_bits(x: np.ndarray, fmt: lmul.Format) -> np.ndarray:
    """The oracle's RNE conversion of binary32 patterns (scalar Python, exact rationals)."""
    return np.array([oracle.encode(oracle.decode(int(v), 8, 23), fmt.exp_bits, fmt.man_bits)
                     for v in x.tolist()], dtype=np.uint64)


def outcome_counts(x: np.ndarray, y: np.ndarray, fmt: lmul.Format) -> dict[str, int]:
    """How many vectors reached each outcome class (used to require coverage)."""
    f = x.view(np.float32).astype(np.float64)
    y = y.astype(np.int64)
    mag = y & fmt.field_mask
    back = lmul.format_bits_to_float64(y, fmt)
    finite = np.isfinite(f)
    with np.errstate(invalid="ignore"):
        inexact = finite & np.isfinite(back) & (back != f)
        ties = inexact & (np.abs(np.abs(back) - np.abs(f)) * 2 ==
                          np.ldexp(1.0, (np.maximum(mag >> fmt.man_bits, 1) - fmt.bias
                                         - fmt.man_bits).astype(np.int32)))
    return {
        "exact": int(np.sum(finite & ~inexact & (mag < fmt.inf_bits))),
        "inexact": int(np.sum(inexact)),
        "ties": int(np.sum(ties)),
        "overflow_to_inf": int(np.sum(finite & (mag == fmt.inf_bits))),
        "subnormal_result": int(np.sum((mag > 0) & (mag < (1 << fmt.man_bits)))),
        "rounded_to_zero": int(np.sum(finite & (f != 0) & (mag == 0))),
        "nan": int(np.sum(np.isnan(f))),
    }


async def drive(dut, name: str, x: np.ndarray, width: int) -> np.ndarray:
    """Apply binary32 patterns to the lanes of format ``name``; return the RTL results."""
    return await drive_steps(dut, [(f"x_{name}", x, 32)], f"y_{name}", width, LANES)


@cocotb.test()
async def run_fp_to_fmt(dut) -> None:
    """Specials, boundaries, ties and random vectors for every format of the wrapper."""
    seed = random_seed()
    count = vector_count(DEFAULT_RANDOM_VECTORS)
    dut._log.info("fp_to_fmt: COCOTB_RANDOM_SEED=%d, LMUL_VECTORS=%d per format", seed, count)
    rng = np.random.default_rng(seed)
    total, t0 = 0, time.perf_counter()
    for e, m in FORMATS:
        fmt = fmt_of(e, m)
        name = f"e{e}m{m}"
        edge = boundary_inputs(fmt, rng)
        rand = random_inputs(fmt, count, rng)
        x = np.concatenate([edge, rand])
        got = await drive(dut, name, x, fmt.width)
        model = lmul.round_to_format_bits(x.view(np.float32), fmt, "rne").astype(np.uint64)
        assert_bits_equal(f"fp_to_fmt {name} vs model", x, x, got, model)
        sample = np.concatenate([edge, rand[:ORACLE_RANDOM_SAMPLE]])
        assert_bits_equal(f"fp_to_fmt {name} vs oracle", sample, sample, got[:len(sample)],
                          oracle_bits(sample, fmt))
        cov = outcome_counts(x, got, fmt)
        dut._log.info("%s: %d vectors bit-exact (%d boundary/special); outcomes %s", name, len(x),
                      len(edge), cov)
        # Binary32 itself converts exactly (NaN aside): nothing to round, nothing overflows.
        required = ["exact", "nan", "subnormal_result"]
        if (e, m) != (8, 23):
            required += ["inexact", "ties", "overflow_to_inf", "rounded_to_zero"]
        missing = [k for k in required if cov[k] == 0]
        assert not missing, f"{name}: vector set never reached {missing}"
        total += len(x)
    dt = time.perf_counter() - t0
    dut._log.info("fp_to_fmt: %d vectors in %.1f s (%.0f vectors/s)", total, dt,
                  total / max(dt, 1e-9))


def test_fp_to_fmt() -> None:
    run_cocotb("test_fp_to_fmt", "fp_to_fmt_formats", ("fp_to_fmt_formats.v",),
               parameters={"LANES": LANES})


#: A deliberately broken converter: the guard bit is dropped, so it truncates instead of RNE.
BROKEN_LINE = ("  wire        guard  = wide[MAX_SHIFT-1];", "  wire        guard  = 1'b0;")


def test_fp_to_fmt_regression_catches_broken_rounding(tmp_path) -> None:
    """The regression must fail on a copy of fp_to_fmt.v that truncates (one changed line)."""
    from cocotb_test.simulator import run

    src = (HDL_DIR / "fp_to_fmt.v").read_text()
    assert BROKEN_LINE[0] in src, "fp_to_fmt.v changed: update BROKEN_LINE"
    broken = tmp_path / "fp_to_fmt.v"
    broken.write_text(src.replace(*BROKEN_LINE))
    sources = [p for p in design_sources() if Path(p).name != "fp_to_fmt.v"]
    build = BUILD_DIR / "fp_to_fmt_formats-broken"
    shutil.rmtree(build, ignore_errors=True)
    with pytest.raises(SystemExit):
        run(simulator="icarus", toplevel="fp_to_fmt_formats", module="test_fp_to_fmt",
            verilog_sources=[*sources, str(broken), str(SIM_HDL_DIR / "fp_to_fmt_formats.v")],
            includes=[str(HDL_DIR)], parameters={"LANES": LANES}, sim_build=str(build),
            extra_env={"COCOTB_RANDOM_SEED": str(random_seed()), "LMUL_VECTORS": "200"},
            python_search=[str(SIM_DIR)], timescale="1ns/1ps")
    # It must have failed on the comparison, not on something else.
    reports = "".join(p.read_text() for p in build.glob("*results.xml"))
    assert "vs model" in reports and "vectors differ" in reports, reports[-2000:]
