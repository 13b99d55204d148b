"""Shared glue for the cocotb regressions: paths, environment knobs, simulator runs, lane packing.

Environment variables (all optional, printed by every regression so a failure can be replayed):

* ``COCOTB_RANDOM_SEED`` - seed of all random vectors (default 1).
* ``LMUL_VECTORS``       - number of random operand vectors per configuration; overrides each
  testbench's documented default.
* ``LMUL_TILES``         - number of random matrix tiles per MAC-array configuration.
* ``LMUL_FULL=1``        - run the large variants (full LSTM product, etc.).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
HDL_DIR = REPO / "hdl"
SIM_DIR = REPO / "sim"
SIM_HDL_DIR = SIM_DIR / "hdl"
BUILD_DIR = SIM_DIR / "sim_build"

DEFAULT_SEED = 1


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def random_seed() -> int:
    """The regression seed: ``COCOTB_RANDOM_SEED`` or 1."""
    return _env_int("COCOTB_RANDOM_SEED", DEFAULT_SEED)


def vector_count(default: int) -> int:
    """Random vectors per configuration: ``LMUL_VECTORS`` if set, else ``default``."""
    return _env_int("LMUL_VECTORS", default)


def tile_count(default: int) -> int:
    """Random matrix tiles per MAC-array configuration: ``LMUL_TILES`` if set, else ``default``."""
    return _env_int("LMUL_TILES", default)


def full_run() -> bool:
    """True when ``LMUL_FULL=1`` asks for the large variants."""
    return os.environ.get("LMUL_FULL", "0") not in ("", "0")


def hdl(*names: str) -> list[str]:
    """Paths of RTL files: ``hdl/<name>`` or, for test-only wrappers, ``sim/hdl/<name>``."""
    paths = []
    for name in names:
        path = HDL_DIR / name
        if not path.exists():
            path = SIM_HDL_DIR / name
        if not path.exists():
            raise FileNotFoundError(f"no RTL file {name} in hdl/ or sim/hdl/")
        paths.append(str(path))
    return paths


def run_cocotb(test_module: str, toplevel: str, sources: list[str],
               parameters: dict[str, int] | None = None,
               extra_env: dict[str, str] | None = None,
               build_tag: str | None = None, testcase: str | None = None) -> None:
    """Compile ``sources`` with Icarus and run the cocotb tests of ``test_module`` on ``toplevel``.

    Each parameter set gets its own build directory, so parametrized runs never share a stale
    simulation binary. Seed and vector count are forwarded to the simulator's Python.
    """
    from cocotb_test.simulator import run

    parameters = dict(parameters or {})
    tag = build_tag or "-".join(f"{k}{v}" for k, v in sorted(parameters.items())) or "default"
    env = {
        "COCOTB_RANDOM_SEED": str(random_seed()),
        "LMUL_TB_PARAMETERS": json.dumps(parameters),
    }
    for key in ("LMUL_VECTORS", "LMUL_TILES", "LMUL_FULL"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra_env or {})
    print(f"[{toplevel}] parameters={parameters} COCOTB_RANDOM_SEED={env['COCOTB_RANDOM_SEED']}"
          f" LMUL_VECTORS={env.get('LMUL_VECTORS', '(default)')}"
          f" LMUL_TILES={env.get('LMUL_TILES', '(default)')}")
    run(
        simulator="icarus",
        toplevel=toplevel,
        module=test_module,
        verilog_sources=sources,
        parameters=parameters,
        sim_build=str(BUILD_DIR / f"{toplevel}-{tag}"),
        extra_env=env,
        python_search=[str(SIM_DIR)],
        testcase=testcase,
        timescale="1ns/1ps",
    )


def tb_parameters() -> dict[str, int]:
    """Inside the simulator: the RTL parameters the pytest side compiled with."""
    return json.loads(os.environ.get("LMUL_TB_PARAMETERS", "{}"))


def pack_lanes(values: np.ndarray, width: int) -> int:
    """Pack lane values (lane 0 in the LSBs, ``width`` bits each) into one Python int."""
    vals = np.asarray(values, dtype=np.uint64)
    if width in (8, 16, 32):
        return int.from_bytes(vals.astype(f"<u{width // 8}").tobytes(), "little")
    out = 0
    for i, v in enumerate(vals.tolist()):
        out |= int(v) << (i * width)
    return out


def unpack_lanes(word: int, width: int, lanes: int) -> np.ndarray:
    """Inverse of :func:`pack_lanes`: ``lanes`` values of ``width`` bits, as uint64."""
    if width in (8, 16, 32):
        raw = word.to_bytes(lanes * width // 8, "little")
        return np.frombuffer(raw, dtype=f"<u{width // 8}").astype(np.uint64)
    mask = (1 << width) - 1
    return np.array([(word >> (i * width)) & mask for i in range(lanes)], dtype=np.uint64)


async def drive_lanes(dut, a: np.ndarray, b: np.ndarray, width: int, lanes: int,
                      ports: tuple[str, str, str] = ("a_bus", "b_bus", "y_bus")) -> np.ndarray:
    """Apply operand pairs to a combinational lanes wrapper, ``lanes`` pairs per 1 ns step.

    ``ports`` names the packed operand inputs and the packed result output of the DUT. Returns
    the RTL results as uint64, one per pair (the last step is padded with zero operands).
    """
    from cocotb.triggers import Timer

    a_port, b_port, y_port = (getattr(dut, name) for name in ports)
    n = len(a)
    pad = (-n) % lanes
    a_p = np.concatenate([np.asarray(a).astype(np.uint64), np.zeros(pad, np.uint64)])
    b_p = np.concatenate([np.asarray(b).astype(np.uint64), np.zeros(pad, np.uint64)])
    out = np.empty(n + pad, dtype=np.uint64)
    for start in range(0, n + pad, lanes):
        a_port.value = pack_lanes(a_p[start:start + lanes], width)
        b_port.value = pack_lanes(b_p[start:start + lanes], width)
        await Timer(1, unit="ns")
        out[start:start + lanes] = unpack_lanes(int(y_port.value), width, lanes)
    return out[:n]


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
