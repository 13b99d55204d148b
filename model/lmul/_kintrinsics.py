"""LLVM intrinsics and constants shared by the numba kernels (:mod:`lmul._kscalar` and the
kernel modules gathered in :mod:`lmul._kernels`): free bitcasts between float32/float64 and
their IEEE bits, and a 32-bit arithmetic shift.

Numba types integer arithmetic as int64; the kernels' hot loops cast every intermediate back to
int32 (``_i32``) so that LLVM vectorizes them 8 lanes wide. These intrinsics keep values in 32
bits where numba's own operators would widen them.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

_i32 = np.int32
#: float32 bits of the canonical quiet NaN and of +Inf.
_F32_QNAN = 0x7FC00000
_F32_INF = 0x7F800000
_INT32_MIN = -(1 << 31)


@intrinsic
def _f32_bits(typingctx, x):
    """IEEE bits of a float32 as an int32 (a free bitcast)."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def _bits_f32(typingctx, x):
    """The float32 whose IEEE bits are the low 32 bits of an integer (a free bitcast)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        v = args[0]
        if x.bitwidth > 32:
            v = builder.trunc(v, ir.IntType(32))
        elif x.bitwidth < 32:
            v = builder.zext(v, ir.IntType(32))
        return builder.bitcast(v, ir.FloatType())

    return types.float32(x), codegen


@intrinsic
def _f64_bits(typingctx, x):
    """IEEE bits of a float64 as int64 (a free bitcast)."""
    if x != types.float64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _sra(typingctx, x, s):
    """``x >> s`` as a 32-bit arithmetic shift (int32 result; 0 <= s < 32).

    Numba widens integer operands to 64 bits, and LLVM cannot narrow a variable right shift
    back to 32 bits by itself (it would need ``s < 32``); in 64-bit lanes the loops run at half
    the vector width.
    """
    if not isinstance(x, types.Integer) or not isinstance(s, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        def i32(v, ty):
            if ty.bitwidth > 32:
                return builder.trunc(v, ir.IntType(32))
            if ty.bitwidth < 32:
                return builder.sext(v, ir.IntType(32)) if ty.signed else \
                    builder.zext(v, ir.IntType(32))
            return v

        return builder.ashr(i32(args[0], x), i32(args[1], s))

    return types.int32(x, s), codegen
