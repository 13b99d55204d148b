`resetall
`timescale 1ns/1ps
`default_nettype none
// mac_datapath: the combinational datapath of one MAC processing element (mac_pe), also the
// design the cost analysis (syn/synth.py) synthesizes:
//   y = fp_add(acc, fmt_to_fp32(mul(a, b)))     binary32, round to nearest even, canonical NaN
// mul is chosen by MULTIPLIER:
//   0 (default): lmul_core, the L-Mul approximation (OFFSET, SATURATE as there);
//   1: fp_mul, the exact IEEE product rounded (RNE) to the operand format; SUBNORMALS as there
//      (1, the default, is the model's exact mode: lmul.matmul(..., multiplier="exact")).
// The product is widened exactly to binary32 (fmt_to_fp32); mul and the widening are mul_widen,
// shared with dot_datapath. With acc the running binary32 sum this is one k-step
// acc = fl32(acc + widen(mul(a, b))) of lmul.matmul.
// Operands: {sign, exponent[EXP_BITS], mantissa[MAN_BITS]}; EXP_BITS 2..8, MAN_BITS 1..23 (checked
// by the instantiated modules); OFFSET and SATURATE are ignored (but still range-checked) with
// MULTIPLIER = 1, SUBNORMALS is ignored with MULTIPLIER = 0. FINITE_ONLY (0/1): the operands'
// OCP "FN" encoding (float8_e4m3fn; fp_classify), passed to the multiplier and the widening.
`include "lmul_defs.vh"
module mac_datapath #(
    parameter integer EXP_BITS   = 8,
    parameter integer MAN_BITS   = 7,
    parameter integer OFFSET     = `LMUL_DEFAULT_OFFSET(MAN_BITS),
    parameter integer SATURATE   = 0,
    parameter integer FINITE_ONLY = 0,
    parameter integer MULTIPLIER = 0,
    parameter integer SUBNORMALS = 1
) (
    input  wire [EXP_BITS+MAN_BITS:0] a,
    input  wire [EXP_BITS+MAN_BITS:0] b,
    input  wire [31:0]                acc,
    output wire [31:0]                y
);

  wire [31:0] prod32;

  generate
    `LMUL_PARAM_CHECK(MULTIPLIER == 0 || MULTIPLIER == 1, g_bad_multiplier,
                      PARAMETER_ERROR__mac_datapath__MULTIPLIER_must_be_0_or_1,
                      ("mac_datapath: MULTIPLIER=%0d must be 0 (L-Mul) or 1 (exact)", MULTIPLIER))
    `LMUL_PARAM_CHECK(SUBNORMALS == 0 || SUBNORMALS == 1, g_bad_subnormals,
                      PARAMETER_ERROR__mac_datapath__SUBNORMALS_must_be_0_or_1,
                      ("mac_datapath: SUBNORMALS=%0d must be 0 or 1", SUBNORMALS))
    // lmul_core checks OFFSET and SATURATE; repeat that for the exact multiplier so that a bad
    // value never passes silently.
    `LMUL_PARAM_CHECK(OFFSET >= 0 && OFFSET < (1 << MAN_BITS), g_bad_offset,
                      PARAMETER_ERROR__mac_datapath__OFFSET_must_be_0_to_2_pow_MAN_BITS_minus_1,
                      ("mac_datapath: OFFSET=%0d out of range 0..2^MAN_BITS-1", OFFSET))
    `LMUL_PARAM_CHECK(SATURATE == 0 || SATURATE == 1, g_bad_saturate,
                      PARAMETER_ERROR__mac_datapath__SATURATE_must_be_0_or_1,
                      ("mac_datapath: SATURATE=%0d must be 0 or 1", SATURATE))
  endgenerate

  mul_widen #(
      .EXP_BITS  (EXP_BITS),
      .MAN_BITS  (MAN_BITS),
      .OFFSET    (OFFSET),
      .SATURATE  (SATURATE),
      .FINITE_ONLY(FINITE_ONLY),
      .MULTIPLIER(MULTIPLIER),
      .SUBNORMALS(SUBNORMALS)
  ) u_mul (
      .a(a),
      .b(b),
      .y(prod32)
  );

  fp_add #(
      .EXP_BITS(8),
      .MAN_BITS(23)
  ) u_add (
      .a(acc),
      .b(prod32),
      .y(y)
  );

endmodule
`default_nettype wire
