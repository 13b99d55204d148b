"""cocotb regression of hdl/fmt_to_fp32.v: the exact widening of a format to binary32.

Every pattern's result must equal both the model (``lmul.format_bits_to_float32``) and the
exact-rounding oracle (``sim/lib/oracle.py``: the pattern's exact value encoded as binary32, which
is exact here; NaN patterns give the canonical 0x7FC00000). Formats (``sim/hdl/
fmt_to_fp32_formats.v``): all patterns of E8M7, E5M10, E4M3, E5M2, E2M1; random patterns plus
the special values of E8M23 and E7M23 (default 20,000 each, ``LMUL_VECTORS`` overrides; seed
``COCOTB_RANDOM_SEED``).
"""

from __future__ import annotations

import cocotb
import numpy as np

import lmul
from sim.lib import oracle
from sim.lib.common import (
    drive_steps,
    random_seed,
    run_cocotb,
    special_values,
    tb_parameters,
    vector_count,
)

FMT_LANES = 16  # lanes per format (wider buses cost Icarus more per vector)
#: formats instantiated by sim/hdl/fmt_to_fp32_formats.v (E, M)
FMT_CASES = ((8, 7), (5, 10), (4, 3), (5, 2), (2, 1), (8, 23), (7, 23))


@cocotb.test()
async def run_fmt_to_fp32(dut) -> None:
    """Widening of every format in FMT_CASES: exhaustive up to 16 bits, random patterns above."""
    seed, count = random_seed(), vector_count(20_000)
    rng = np.random.default_rng(seed)
    lanes = tb_parameters()["LANES"]
    for exp_bits, man_bits in FMT_CASES:
        fmt = lmul.format_for(exp_bits, man_bits)
        if fmt.width <= 16:
            x = np.arange(1 << fmt.width, dtype=np.int64)
            what = "exhaustive"
        else:
            x = rng.integers(0, 1 << fmt.width, count, dtype=np.int64)
            x = np.concatenate([x, special_values(fmt)])
            what = "random + specials"
        got = (await drive_steps(dut, [(f"x_e{exp_bits}m{man_bits}", x, fmt.width)],
                                 f"y_e{exp_bits}m{man_bits}", 32, lanes)).astype(np.int64)

        model = lmul.float32_bits(lmul.format_bits_to_float32(x, fmt)).astype(np.int64)
        bad = np.flatnonzero(got != model)
        assert bad.size == 0, (f"E={exp_bits} M={man_bits}: {bad.size} differ from the model; "
                               f"first x=0x{int(x[bad[0]]):x} rtl=0x{int(got[bad[0]]):08x} "
                               f"model=0x{int(model[bad[0]]):08x}")
        ref = np.array([oracle.encode(oracle.decode(v, exp_bits, man_bits), 8, 23)
                        for v in x.tolist()], dtype=np.int64)
        bad = np.flatnonzero(got != ref)
        assert bad.size == 0, (f"E={exp_bits} M={man_bits}: {bad.size} differ from the oracle; "
                               f"first x=0x{int(x[bad[0]]):x} rtl=0x{int(got[bad[0]]):08x} "
                               f"oracle=0x{int(ref[bad[0]]):08x}")
        dut._log.info("fmt_to_fp32 E=%d M=%d: %s, %d patterns bit-exact (model and oracle), "
                      "COCOTB_RANDOM_SEED=%d", exp_bits, man_bits, what, x.size, seed)


def test_fmt_to_fp32() -> None:
    run_cocotb("test_fmt_to_fp32", "fmt_to_fp32_formats", ("fmt_to_fp32_formats.v",),
               parameters={"LANES": FMT_LANES})
