`resetall
`timescale 1ns/1ps
`default_nettype none
// mul_widen: one product of the fused dot product, widened exactly to binary32:
//   y = fmt_to_fp32(mul(a, b))
// mul is chosen by MULTIPLIER, as in mac_datapath:
//   0 (default): lmul_core, the L-Mul approximation (OFFSET, SATURATE as there);
//   1: fp_mul, the exact IEEE product rounded (RNE) to the operand format; SUBNORMALS as there.
// Combinational. Operands: {sign, exponent[EXP_BITS], mantissa[MAN_BITS]}; EXP_BITS 2..8,
// MAN_BITS 1..23 (checked by the instantiated modules); OFFSET and SATURATE are ignored (but still
// range-checked) with MULTIPLIER = 1, SUBNORMALS is ignored with MULTIPLIER = 0. FINITE_ONLY
// (the OCP "FN" operand encoding, fp_classify) goes to the multiplier and the widening.
`include "lmul_defs.vh"
module mul_widen #(
    parameter integer EXP_BITS   = 8,
    parameter integer MAN_BITS   = 7,
    parameter integer OFFSET     = `LMUL_DEFAULT_OFFSET(MAN_BITS),
    parameter integer SATURATE   = 0,
    parameter integer MULTIPLIER = 0,
    parameter integer SUBNORMALS = 1,
    parameter integer FINITE_ONLY = 0
) (
    input  wire [EXP_BITS+MAN_BITS:0] a,
    input  wire [EXP_BITS+MAN_BITS:0] b,
    output wire [31:0]                y
);

  localparam integer W = 1 + EXP_BITS + MAN_BITS;

  wire [W-1:0] prod;

  generate
    `LMUL_PARAM_CHECK(MULTIPLIER == 0 || MULTIPLIER == 1, g_bad_multiplier,
                      PARAMETER_ERROR__mul_widen__MULTIPLIER_must_be_0_or_1,
                      ("mul_widen: MULTIPLIER=%0d must be 0 (L-Mul) or 1 (exact)", MULTIPLIER))
    `LMUL_PARAM_CHECK(SUBNORMALS == 0 || SUBNORMALS == 1, g_bad_subnormals,
                      PARAMETER_ERROR__mul_widen__SUBNORMALS_must_be_0_or_1,
                      ("mul_widen: SUBNORMALS=%0d must be 0 or 1", SUBNORMALS))
    // lmul_core checks OFFSET and SATURATE; repeat that for the exact multiplier so that a bad
    // value never passes silently.
    `LMUL_PARAM_CHECK(OFFSET >= 0 && OFFSET < (1 << MAN_BITS), g_bad_offset,
                      PARAMETER_ERROR__mul_widen__OFFSET_must_be_0_to_2_pow_MAN_BITS_minus_1,
                      ("mul_widen: OFFSET=%0d out of range 0..2^MAN_BITS-1", OFFSET))
    `LMUL_PARAM_CHECK(SATURATE == 0 || SATURATE == 1, g_bad_saturate,
                      PARAMETER_ERROR__mul_widen__SATURATE_must_be_0_or_1,
                      ("mul_widen: SATURATE=%0d must be 0 or 1", SATURATE))

    if (MULTIPLIER == 1) begin : g_exact
      fp_mul #(
          .EXP_BITS  (EXP_BITS),
          .MAN_BITS  (MAN_BITS),
          .SUBNORMALS (SUBNORMALS),
          .FINITE_ONLY(FINITE_ONLY)
      ) u_mul (
          .a(a),
          .b(b),
          .y(prod)
      );
    end else begin : g_lmul
      lmul_core #(
          .EXP_BITS(EXP_BITS),
          .MAN_BITS(MAN_BITS),
          .OFFSET  (OFFSET),
          .SATURATE   (SATURATE),
          .FINITE_ONLY(FINITE_ONLY)
      ) u_mul (
          .a(a),
          .b(b),
          .y(prod)
      );
    end
  endgenerate

  fmt_to_fp32 #(
      .EXP_BITS   (EXP_BITS),
      .MAN_BITS   (MAN_BITS),
      .FINITE_ONLY(FINITE_ONLY)
  ) u_widen (
      .x(prod),
      .y(y)
  );

endmodule
`default_nettype wire
