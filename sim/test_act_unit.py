"""cocotb regression of ``hdl/act_unit.v`` (piecewise-linear binary32 sigmoid / tanh).

Every RTL result is compared, as an integer bit pattern, with the model ``lmul.act_hw_bits``
(evaluated by the pytest process, which has the model's numba kernel loaded once, and handed to
the simulation in a ``.npz`` with the inputs it was computed for; the simulation regenerates
the inputs from the seed and requires them equal);
the special inputs are also checked against values written here, not taken from the model
(NaN -> 0x7FC00000, the limits at +-Inf, tanh(+-0) = +-0, sigmoid(+-0) = 0.5, tanh(x) = x for
tiny x, sigmoid(x) + sigmoid(-x) = 1 on the knots).

Vectors per parameter set: the specials (signed zeros, infinities, NaNs with payloads and both
signs, subnormals, the largest finite values, +-1); the boundaries (the tanh pass-through edge
2^-12, the saturation edge R and every knot R i / S, each with its binary32 neighbours, both
signs); random: half uniform bit patterns, half values in (-2R, 2R); default 3,000
(``LMUL_VECTORS`` overrides), seed ``COCOTB_RANDOM_SEED`` (both printed). The exhaustive check of
all 2^32 inputs runs on the Verilator harness (``python -m sim.prove --configs 'act/*'``).

Run: ``pytest sim/test_act_unit.py`` (``-s`` shows seeds and counts).
"""

from __future__ import annotations

import os
from pathlib import Path

import cocotb
import numpy as np
import pytest
from cocotb.triggers import Timer

import lmul
from sim.lib.common import random_seed, run_cocotb, tb_parameters, vector_count
from sim.lib.mutation import broken_hdl

DEFAULT_RANDOM_VECTORS = 3_000
QNAN = 0x7FC00000
ONE = 0x3F800000
SPECIALS = np.array([
    0x00000000, 0x80000000, 0x7F800000, 0xFF800000,
    0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF, 0xFFA00000,
    0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF, 0x00800000,
    0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000, 0xBF800000,
], dtype=np.uint32)


def _cfg(params: dict[str, int]) -> lmul.ActConfig:
    return lmul.ActConfig(lmul.ACT_FUNCS[params["FUNC"]], params["SEGMENTS"],
                          params["COEF_BITS"])


def boundary_vectors(cfg: lmul.ActConfig) -> np.ndarray:
    """Knots, the saturation edge R and the tanh pass-through edge, with neighbours, +-."""
    r = float(1 << cfg.xmax_log2)
    points = [r * i / cfg.segments for i in range(cfg.segments + 1)] + [2.0 ** -12]
    bits = np.array(points, dtype=np.float32).view(np.uint32).astype(np.int64)
    near = np.concatenate([bits - 1, bits, bits + 1])
    near = near[near >= 0].astype(np.uint32)
    return np.concatenate([near, near | np.uint32(0x80000000)])


def random_vectors(cfg: lmul.ActConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    half = n // 2
    uniform = rng.integers(0, 1 << 32, n - half, dtype=np.uint64).astype(np.uint32)
    r = float(1 << cfg.xmax_log2)
    ranged = rng.uniform(-2 * r, 2 * r, half).astype(np.float32).view(np.uint32)
    return np.concatenate([uniform, ranged])


def special_expectations(cfg: lmul.ActConfig) -> dict[int, int]:
    """Results fixed by the specification, written without the model."""
    tanh = cfg.func == "tanh"
    exp = {0x7FC00000: QNAN, 0xFFC00000: QNAN, 0x7F800001: QNAN, 0x7FFFFFFF: QNAN,
           0x7F800000: ONE, 0xFF800000: ONE | 0x80000000 if tanh else 0}
    if tanh:
        exp.update({0x00000000: 0x00000000, 0x80000000: 0x80000000,
                    0x00000001: 0x00000001, 0x807FFFFF: 0x807FFFFF,
                    0x39000000: 0x39000000, 0xB9000000: 0xB9000000})  # +-2^-13 passes
    else:
        exp.update({0x00000000: 0x3F000000, 0x80000000: 0x3F000000, 0x00000001: 0x3F000000})
    return exp


def regression_inputs(cfg: lmul.ActConfig, n: int, seed: int) -> np.ndarray:
    """The inputs of one run (uint32): the specials, the inputs with fixed results, the
    boundaries, then ``n`` random inputs of ``seed``."""
    rng = np.random.default_rng(seed)
    return np.concatenate([SPECIALS, np.array(sorted(special_expectations(cfg)), dtype=np.uint32),
                           boundary_vectors(cfg), random_vectors(cfg, n, rng)])


def write_expected(path: Path, cfg: lmul.ActConfig) -> None:
    """The pytest side: the inputs of this run and ``lmul.act_hw_bits`` of them, to ``path``
    (read by :func:`act_unit_regression` through ``LMUL_TB_EXPECTED``)."""
    xs = regression_inputs(cfg, vector_count(DEFAULT_RANDOM_VECTORS), random_seed())
    np.savez(path, x=xs, y=lmul.act_hw_bits(xs, cfg))


@cocotb.test()
async def act_unit_regression(dut) -> None:
    """Specials, boundaries and random inputs against the model (and the fixed specials)."""
    cfg = _cfg(tb_parameters())
    seed = random_seed()
    n = vector_count(DEFAULT_RANDOM_VECTORS)
    fixed = special_expectations(cfg)
    xs = regression_inputs(cfg, n, seed)
    with np.load(os.environ["LMUL_TB_EXPECTED"]) as data:
        assert np.array_equal(data["x"], xs), (
            "the model's results were computed for other inputs (seed or LMUL_VECTORS differ)")
        expected = data["y"]
    dut._log.info(f"{cfg}: {xs.size} vectors ({n} random, seed {seed})")
    got = np.empty_like(expected)
    step = Timer(1, unit="ns")
    for i, x in enumerate(xs.tolist()):
        dut.x.value = x
        await step
        got[i] = int(dut.y.value)
    for x, y in fixed.items():
        idx = int(np.flatnonzero(xs == x)[0])
        assert int(got[idx]) == y, f"{cfg}: x=0x{x:08x} gave 0x{int(got[idx]):08x}, spec 0x{y:08x}"
    if cfg.func == "sigmoid":
        # Knot pairs +-x: 1 - y(x) is exact in the fixed point, so the float sum is 1 to within
        # the two roundings.
        knots = boundary_vectors(cfg)
        pos = knots[:knots.size // 2]
        gf = got.view(np.float32).astype(np.float64)
        for xp in pos.tolist():
            ip = int(np.flatnonzero(xs == xp)[0])
            im = int(np.flatnonzero(xs == (xp | 0x80000000))[0])
            s = gf[ip] + gf[im]
            assert abs(s - 1.0) <= 2.0 ** -24, \
                f"{cfg}: sigmoid(x) + sigmoid(-x) = {s!r}, x=0x{xp:08x}"
    bad = np.flatnonzero(got != expected)
    if bad.size:
        rows = "; ".join(f"x=0x{int(xs[i]):08x} rtl=0x{int(got[i]):08x} "
                         f"model=0x{int(expected[i]):08x}" for i in bad[:8])
        raise AssertionError(f"{cfg}: {bad.size} of {xs.size} results differ: {rows}")


def _params(name: str, func: str) -> dict[str, int]:
    return lmul.act_config(name, func).verilog_parameters()


CONFIGS = [(name, func) for name in lmul.ACT_PRESETS for func in lmul.ACT_FUNCS]


def _run(name: str, func: str, tmp: Path, hdl_dir: Path | None = None,
         tag: str | None = None) -> None:
    params = _params(name, func)
    expected = tmp / "act_expected.npz"
    write_expected(expected, _cfg(params))
    run_cocotb("test_act_unit", "act_unit", (), params, build_tag=tag, hdl_dir=hdl_dir,
               extra_env={"LMUL_TB_EXPECTED": str(expected)})


@pytest.mark.parametrize("config", CONFIGS, ids=["/".join(c) for c in CONFIGS])
def test_act_unit(config: tuple[str, str], tmp_path: Path) -> None:
    _run(*config, tmp_path)


#: Deliberate bugs: (pattern, replacement, what the regression must see).
MUTATIONS = {
    "offset product not truncated": (
        r"a \+ \{1'b0, prod\[COEF_BITS\+K-1:K\]\}", "a + {1'b0, prod[COEF_BITS+K-2:K-1]}",
        "the product is shifted one bit short (slope doubled)"),
    "saturation one binade late": (
        r"SAT_EXP = 127 \+ XMAX_LOG2;", "SAT_EXP = 128 + XMAX_LOG2;",
        "inputs in [R, 2R) overflow the fixed point instead of saturating"),
    "tanh sign dropped": (
        r"wire                y_sign = \(FUNC == 1\) & sign;", "wire y_sign = 1'b0;",
        "tanh(-x) comes out positive"),
}


def broken_act_unit(tmp: Path, mutation: str) -> Path:
    """A copy of hdl/ with one deliberate bug in act_unit.v (``MUTATIONS``)."""
    pattern, repl, _ = MUTATIONS[mutation]
    return broken_hdl(tmp, "act_unit.v", pattern, repl)


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_broken_design_fails_the_regression(tmp_path: Path, mutation: str) -> None:
    """The regression on a copy of hdl/ with one bug in act_unit.v must fail (tanh, pwl256:
    the set whose results need binary32 rounding)."""
    hdl = broken_act_unit(tmp_path, mutation)
    with pytest.raises(SystemExit, match="FAILED"):
        _run("pwl256", "tanh", tmp_path, hdl_dir=hdl,
             tag=f"broken-{mutation.replace(' ', '_')}")
