"""Shared glue for the cocotb regressions: paths, simulator runs, configuration from RTL
parameters, special values, random pairs, lane packing and bit comparison.

The environment knobs (``COCOTB_RANDOM_SEED``, ``LMUL_VECTORS``, ``LMUL_TILES``, ``LMUL_FULL``,
``WAVES``) are parsed in :mod:`knobs`; their accessors are re-exported here. Every regression
prints the values it used, so a failure can be replayed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import lmul

from .knobs import full_run, random_seed, tile_count, vector_count, waves

__all__ = [
    "BUILD_DIR", "HDL_DIR", "REPO", "SIM_DIR", "SIM_HDL_DIR", "assert_bits_equal",
    "config_from_parameters", "drive_lanes", "drive_steps", "full_run", "pack_lanes", "pack_steps",
    "random_pairs", "random_seed", "run_cocotb", "special_values", "tb_parameters",
    "tile_count", "unpack_lanes", "unpack_steps", "vector_count", "waves",
]

REPO = Path(__file__).resolve().parents[2]
HDL_DIR = REPO / "hdl"
SIM_DIR = REPO / "sim"
SIM_HDL_DIR = SIM_DIR / "hdl"
BUILD_DIR = SIM_DIR / "sim_build"


def design_sources() -> list[str]:
    """Every design file in hdl/ (the simulator elaborates only what the top level uses)."""
    return sorted(str(p) for p in HDL_DIR.glob("*.v"))


def run_cocotb(test_module: str, toplevel: str, wrappers: tuple[str, ...] = (),
               parameters: dict[str, int] | None = None,
               extra_env: dict[str, str] | None = None,
               build_tag: str | None = None, testcase: str | None = None,
               hdl_dir: Path | None = None) -> None:
    """Compile hdl/ (plus the test-only ``wrappers`` from sim/hdl/) with Icarus and run the
    cocotb tests of ``test_module`` (all, or those matching ``testcase``) on ``toplevel``.
    ``hdl_dir`` replaces hdl/ (e.g. a copy with a deliberate bug; give it its own ``build_tag``).

    Each parameter set, test case and ``WAVES`` setting gets its own build directory, so
    parametrized runs never share a stale binary; with ``WAVES=1`` the directory holds
    ``<toplevel>.fst``. Seed and counts are forwarded to the simulator's Python.

    Safe under pytest-xdist: the compile step holds the build directory's lock exclusively,
    simulations hold it shared (each writes its own results file), so two workers that reach
    the same directory never run ``vvp`` on a half-written binary.
    """
    from cocotb_test.simulator import run

    parameters = dict(parameters or {})
    tag = build_tag or "-".join(f"{k}{v}" for k, v in sorted(parameters.items())) or "default"
    if testcase:
        tag += "-" + testcase.strip("$^")
    dump = waves()
    build = BUILD_DIR / f"{toplevel}-{tag}{'-waves' if dump else ''}"
    env = {
        "COCOTB_RANDOM_SEED": str(random_seed()),
        "LMUL_TB_PARAMETERS": json.dumps(parameters),
    }
    for key in ("LMUL_VECTORS", "LMUL_TILES", "LMUL_FULL"):
        if os.environ.get(key, "").strip():
            env[key] = os.environ[key].strip()
    # The testbenches' expected values through the model's numpy path (the same bits as the
    # numba kernels: model/tests check that), unless the caller chose: each simulation is a new
    # process, and importing numba, loading (or, on a fresh clone, compiling) the kernels and
    # starting their threads there cost more than the small products a testbench computes.
    if "LMUL_NO_NUMBA" not in os.environ:
        env["LMUL_NO_NUMBA"] = "1"
    # cocotb rewrites the asserts of every module imported after it starts (its default
    # pattern is *.py): numpy's, the model's and, where a testbench calls a numba kernel,
    # all of numba, module by module in every simulation (seconds each). Only the testbenches
    # (sim/test_*.py) hold the asserts whose operands a failure should show.
    if "COCOTB_REWRITE_ASSERTION_FILES" not in os.environ:
        env["COCOTB_REWRITE_ASSERTION_FILES"] = "test_*.py"
    env.update(extra_env or {})
    hdl = Path(hdl_dir) if hdl_dir is not None else HDL_DIR
    sources = sorted(str(p) for p in hdl.glob("*.v")) + [str(SIM_HDL_DIR / w) for w in wrappers]
    print(f"[{toplevel}] parameters={parameters} COCOTB_RANDOM_SEED={env['COCOTB_RANDOM_SEED']}"
          f" LMUL_VECTORS={env.get('LMUL_VECTORS', '(default)')}"
          f" LMUL_TILES={env.get('LMUL_TILES', '(default)')}"
          + (f" waves: {build / (toplevel + '.fst')}" if dump else ""))
    options = dict(
        simulator="icarus",
        toplevel=toplevel,
        module=f"sim.{test_module}",
        verilog_sources=sources,
        includes=[str(hdl)],
        parameters=parameters,
        sim_build=str(build),
        extra_env=env,
        python_search=[str(REPO)],
        testcase=testcase,
        timescale="1ns/1ps",
        waves=dump,
    )
    # cocotb-test recompiles only when a source is newer than the binary; the exclusive lock
    # makes that check and the compile one step per directory across processes.
    with _build_lock(build, exclusive=True):
        # compile_only still names a results file (never written): remove it.
        Path(run(**options, compile_only=True)).unlink(missing_ok=True)
    with _build_lock(build, exclusive=False):
        run(**options)


@contextlib.contextmanager
def _build_lock(build: Path, exclusive: bool) -> Iterator[None]:
    """``flock`` on ``<build>.lock`` beside the build directory (exclusive or shared)."""
    build.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(build.with_name(build.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def tb_parameters() -> dict[str, int]:
    """Inside the simulator: the RTL parameters the pytest side compiled with."""
    return json.loads(os.environ.get("LMUL_TB_PARAMETERS", "{}"))


def config_from_parameters(params: dict[str, int]) -> lmul.LMulConfig:
    """The model configuration of RTL parameters (OFFSET absent: both use their default)."""
    return lmul.LMulConfig(exp_bits=params["EXP_BITS"], man_bits=params["MAN_BITS"],
                           offset=params.get("OFFSET"),
                           saturate=bool(params.get("SATURATE", 0)),
                           finite_only=bool(params.get("FINITE_ONLY", 0)))


def special_values(fmt: lmul.Format) -> np.ndarray:
    """Bit patterns of every special class of ``fmt``, both signs (int64): zero; smallest,
    middle and largest subnormal; smallest normals; 0.5, 1.0, 1 + ulp, 2 - ulp; the two largest
    finite values; Inf; the canonical NaN, a signalling-style NaN (payload 1) and the NaN with
    a full payload (a finite-only format: its one NaN, and the first value of its
    all-ones-exponent binade instead of the Inf/NaN codes)."""
    m = fmt.man_bits
    mags = {
        0,
        1, fmt.man_mask, 1 << (m - 1),
        1 << m, (1 << m) | fmt.man_mask,
        (fmt.bias - 1) << m, fmt.bias << m, (fmt.bias << m) | 1, (fmt.bias << m) | fmt.man_mask,
        fmt.max_finite_bits, fmt.max_finite_bits - 1,
        fmt.qnan_bits,
    }
    if fmt.has_inf:
        mags |= {fmt.inf_bits, fmt.inf_bits | 1, fmt.inf_bits | fmt.man_mask}
    else:
        mags.add(fmt.max_exp_field << m)  # a finite-only format's top binade is normal
    arr = np.array(sorted(mags), dtype=np.int64)
    return np.concatenate([arr, arr | fmt.sign_bit])


def random_pairs(fmt: lmul.Format, count: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``count`` operand pairs (int64): half uniform bit patterns (every class), half normal
    values with exponents near the bias (products in range, where the mantissa arithmetic
    matters most)."""
    half = count // 2
    a = rng.integers(0, 1 << fmt.width, count, dtype=np.int64)
    b = rng.integers(0, 1 << fmt.width, count, dtype=np.int64)
    spread = max(1, min(fmt.bias - 1, 20))
    for arr in (a, b):
        e = fmt.bias + rng.integers(-spread, spread + 1, half)
        arr[:half] = ((rng.integers(0, 2, half) << (fmt.exp_bits + fmt.man_bits))
                      | (e << fmt.man_bits) | rng.integers(0, 1 << fmt.man_bits, half))
    return a, b


def pack_lanes(values: np.ndarray, width: int) -> int:
    """Pack lane values (lane 0 in the LSBs, ``width`` bits each) into one Python int."""
    vals = np.asarray(values, dtype=np.uint64)
    if width in (8, 16, 32, 64):
        return int.from_bytes(vals.astype(f"<u{width // 8}").tobytes(), "little")
    out = 0
    for i, v in enumerate(vals.tolist()):
        out |= int(v) << (i * width)
    return out


def unpack_lanes(word: int, width: int, lanes: int) -> np.ndarray:
    """Inverse of :func:`pack_lanes`: ``lanes`` values of ``width`` bits, as uint64."""
    if width in (8, 16, 32, 64):
        raw = word.to_bytes(lanes * width // 8, "little")
        return np.frombuffer(raw, dtype=f"<u{width // 8}").astype(np.uint64)
    mask = (1 << width) - 1
    return np.array([(word >> (i * width)) & mask for i in range(lanes)], dtype=np.uint64)


def pack_steps(values: np.ndarray, width: int, lanes: int) -> list[int]:
    """The bus words of consecutive steps: ``values`` (padded with zeros to a multiple of
    ``lanes``) cut into groups of ``lanes``, each packed as by :func:`pack_lanes`. One numpy
    conversion for all steps instead of one per step."""
    vals = np.asarray(values).astype(np.uint64)
    vals = np.concatenate([vals, np.zeros((-vals.size) % lanes, np.uint64)])
    if width not in (8, 16, 32, 64):
        return [pack_lanes(vals[s:s + lanes], width) for s in range(0, vals.size, lanes)]
    raw = memoryview(vals.astype(f"<u{width // 8}").tobytes())
    step = lanes * width // 8
    return [int.from_bytes(raw[s:s + step], "little") for s in range(0, len(raw), step)]


def unpack_steps(words: list[int], width: int, lanes: int) -> np.ndarray:
    """Inverse of :func:`pack_steps`: ``len(words) * lanes`` values (uint64), step by step."""
    if width not in (8, 16, 32, 64):
        return np.concatenate([unpack_lanes(w, width, lanes) for w in words]
                              or [np.zeros(0, np.uint64)])
    step = lanes * width // 8
    raw = b"".join(w.to_bytes(step, "little") for w in words)
    return np.frombuffer(raw, dtype=f"<u{width // 8}").astype(np.uint64)


async def drive_steps(dut, inputs: list[tuple[str, np.ndarray, int]], output: str,
                      out_width: int, lanes: int) -> np.ndarray:
    """Apply vectors to a combinational lanes wrapper, ``lanes`` per 1 ns step.

    ``inputs``: (port, values, width) per packed input bus, the values of lane i of step s at
    index ``s * lanes + i`` (all of one length; the last step is padded with zeros).
    ``output``: the packed result bus, ``out_width`` bits per lane. Returns the results as
    uint64, one per vector. Every step's bus words are packed before the first is applied and
    the results unpacked after the last: the loop is one write per input, one wait and one
    read per step.
    """
    from cocotb.triggers import Timer

    n = len(inputs[0][1])
    ports = [getattr(dut, name) for name, _, _ in inputs]
    words = [pack_steps(values, width, lanes) for _, values, width in inputs]
    y_port = getattr(dut, output)
    step = Timer(1, unit="ns")
    y_words = []
    for step_words in zip(*words, strict=True):
        for port, word in zip(ports, step_words, strict=True):
            port.value = word
        await step
        y_words.append(int(y_port.value))
    return unpack_steps(y_words, out_width, lanes)[:n]


async def drive_lanes(dut, a: np.ndarray, b: np.ndarray, width: int, lanes: int,
                      ports: tuple[str, str, str] = ("a_bus", "b_bus", "y_bus")) -> np.ndarray:
    """Apply operand pairs to a combinational lanes wrapper, ``lanes`` pairs per 1 ns step.

    ``ports`` names the packed operand inputs and the packed result output of the DUT. Returns
    the RTL results as uint64, one per pair (the last step is padded with zero operands).
    """
    a_port, b_port, y_port = ports
    return await drive_steps(dut, [(a_port, a, width), (b_port, b, width)], y_port, width,
                             lanes)


def assert_bits_equal(what: str, a: np.ndarray, b: np.ndarray, got: np.ndarray,
                      expected: np.ndarray, context: str = "") -> None:
    """Raise AssertionError naming the first vectors whose RTL bits differ from ``expected``."""
    got = np.asarray(got, dtype=np.uint64)
    expected = np.asarray(expected, dtype=np.uint64)
    bad = np.flatnonzero(got != expected)
    if bad.size:
        lines = [f"  a=0x{int(a[i]):x} b=0x{int(b[i]):x} rtl=0x{int(got[i]):x} "
                 f"expected=0x{int(expected[i]):x}" for i in bad[:10]]
        raise AssertionError(f"{what}: {bad.size} of {len(got)} vectors differ ({context}); "
                             "first:\n" + "\n".join(lines))
