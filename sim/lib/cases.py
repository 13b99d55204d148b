"""The test-case table of the RTL regressions, built from the model's ``lmul.PRESETS`` and
``lmul.MULTIPLIERS`` so that a preset added to the model is a case of every testbench.

* :data:`OPERAND_FORMATS` - the L-Mul operand formats: every IEEE-style preset narrower than
  binary32 (BF16, FP16, E4M3 (IEEE-style), E5M2), in the model's order;
* :data:`FINITE_ONLY_FORMATS` - the finite-only presets (OCP E4M3FN, ``FINITE_ONLY=1``): cases
  of the multiplier testbenches, fewer of them (``make prove`` and its test proves every
  configuration of them exhaustively through Verilator);
* :data:`REPRESENTATIVE` - one 16-bit and one 8-bit operand format (BF16, E4M3), for the
  expensive configurations;
* :data:`MULTIPLIER_PARAMETER` - the RTL's ``MULTIPLIER`` value of each multiplier of
  ``lmul.MULTIPLIERS`` the hardware has (L-Mul 0, exact IEEE 1);
* one function per testbench giving its ``pytest.param`` cases, with the ids the testbenches
  have always used (``bf16-offpaper-sat0``, ``e4m3_ieee-sub1``, ``bf16-4x4-exact`` ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import lmul

OPERAND_FORMATS: tuple[str, ...] = tuple(name for name, f in lmul.PRESETS.items()
                                         if f.width < 32 and not f.finite_only)
FINITE_ONLY_FORMATS: tuple[str, ...] = tuple(name for name, f in lmul.PRESETS.items()
                                             if f.finite_only)
REPRESENTATIVE: tuple[str, ...] = ("bf16", "e4m3_ieee")
#: RTL ``MULTIPLIER`` parameter per multiplier name of ``lmul.MULTIPLIERS`` (the hardware has
#: the L-Mul core and the exact IEEE multiplier; ``seed`` is a model-only variant).
MULTIPLIER_PARAMETER: dict[str, int] = {name: i for i, name in enumerate(lmul.MULTIPLIERS)
                                        if name in ("lmul", "exact")}


def _offset_id(offset: int | None) -> str:
    return "paper" if offset is None else str(offset)


def lmul_core_cases() -> list[Any]:
    """``(preset, offset, saturate)``: every operand format x OFFSET (paper default, 0) x
    SATURATE (0, 1), then each finite-only format x SATURATE at the paper OFFSET."""
    combos = [(name, offset, sat) for name in OPERAND_FORMATS for offset in (None, 0)
              for sat in (0, 1)]
    combos += [(name, None, sat) for name in FINITE_ONLY_FORMATS for sat in (0, 1)]
    return [pytest.param(name, offset, sat, id=f"{name}-off{_offset_id(offset)}-sat{sat}")
            for name, offset, sat in combos]


def fp_mul_cases() -> list[Any]:
    """``(preset, subnormals)``: every operand format x SUBNORMALS (1, 0), then each
    finite-only format with SUBNORMALS=1."""
    combos = [(name, sub) for name in OPERAND_FORMATS for sub in (1, 0)]
    combos += [(name, 1) for name in FINITE_ONLY_FORMATS]
    return [pytest.param(name, sub, id=f"{name}-sub{sub}") for name, sub in combos]


def lmul_unit_cases() -> list[Any]:
    """``(preset, saturate, skid)``: the representative formats x SATURATE without the skid
    buffer, then SKID=1 once per format (BF16 without, E4M3 with saturation)."""
    combos = [(p, s, 0) for p in REPRESENTATIVE for s in (0, 1)]
    combos += [(REPRESENTATIVE[0], 0, 1), (REPRESENTATIVE[1], 1, 1)]
    return [pytest.param(p, s, k, id=f"{p}-sat{s}-skid{k}") for p, s, k in combos]


def array_case(preset: str, rows: int, cols: int, offset: int | None = None,
               saturate: bool = False, multiplier: str = "lmul", skid: int = 0) -> Any:
    """One ``mac_array`` case ``(preset, rows, cols, offset, saturate, MULTIPLIER, SKID)``, id
    ``<preset>-<rows>x<cols>[-off<offset>][-sat][-exact][-skid]``."""
    tag = (f"{preset}-{rows}x{cols}" + ("" if offset is None else f"-off{offset}")
           + ("-sat" if saturate else "") + ("" if multiplier == "lmul" else f"-{multiplier}")
           + ("-skid" if skid else ""))
    return pytest.param(preset, rows, cols, offset, saturate, MULTIPLIER_PARAMETER[multiplier],
                        skid, id=tag)


def mac_array_cases() -> list[Any]:
    """The MAC-array configurations: 4x4 in the representative formats, a 3x2 E5M2 array with
    OFFSET 0 and saturation, the skid buffer, and the exact multiplier (with and without it)."""
    bf16, e4m3 = REPRESENTATIVE
    return [
        array_case(bf16, 4, 4),
        array_case(e4m3, 4, 4),
        array_case("e5m2", 3, 2, offset=0, saturate=True),
        array_case(bf16, 4, 4, skid=1),
        array_case(bf16, 4, 4, multiplier="exact"),
        array_case(e4m3, 3, 2, multiplier="exact", skid=1),
    ]


def ids(cases: Sequence[Any]) -> list[str]:
    """The pytest ids of ``cases`` (for tests of this table)."""
    return [c.id for c in cases]
