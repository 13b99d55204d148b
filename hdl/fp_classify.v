`resetall
`timescale 1ns/1ps
`default_nettype none
// fp_classify: special-value classification of one IEEE-style binary floating-point pattern
// (in the spirit of cvfpu's fpnew_classifier). Combinational.
//
// Format: {sign, exponent[EXP_BITS], mantissa[MAN_BITS]}; EXP_BITS 2..11, MAN_BITS 1..52 (every
// format the adder, the multipliers and the converters use). Exactly one of is_zero,
// is_subnormal, is_normal, is_inf, is_nan is 1:
//   exponent 0,        mantissa 0   -> is_zero        (either sign)
//   exponent 0,        mantissa != 0 -> is_subnormal
//   exponent all ones, mantissa 0   -> is_inf
//   exponent all ones, mantissa != 0 -> is_nan; is_quiet if the mantissa MSB is 1, else
//                                       is_signalling (MAN_BITS = 1 has no signalling NaN)
//   otherwise                        -> is_normal
// A module that flushes subnormal inputs treats is_zero | is_subnormal as zero.
`include "lmul_defs.vh"
module fp_classify #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 23
) (
    input  wire [EXP_BITS+MAN_BITS:0] x,
    output wire                       is_zero,
    output wire                       is_subnormal,
    output wire                       is_normal,
    output wire                       is_inf,
    output wire                       is_nan,
    output wire                       is_signalling,
    output wire                       is_quiet
);

  generate
    `LMUL_PARAM_CHECK(EXP_BITS >= 2 && EXP_BITS <= 11, g_bad_exp_bits,
                      PARAMETER_ERROR__fp_classify__EXP_BITS_must_be_2_to_11,
                      ("fp_classify: EXP_BITS=%0d out of range 2..11", EXP_BITS))
    `LMUL_PARAM_CHECK(MAN_BITS >= 1 && MAN_BITS <= 52, g_bad_man_bits,
                      PARAMETER_ERROR__fp_classify__MAN_BITS_must_be_1_to_52,
                      ("fp_classify: MAN_BITS=%0d out of range 1..52", MAN_BITS))
  endgenerate

  wire [EXP_BITS-1:0] e = x[EXP_BITS+MAN_BITS-1:MAN_BITS];
  wire [MAN_BITS-1:0] m = x[MAN_BITS-1:0];
  wire e_zero = ~|e;
  wire e_ones = &e;
  wire m_zero = ~|m;

  assign is_zero       = e_zero & m_zero;
  assign is_subnormal  = e_zero & ~m_zero;
  assign is_normal     = ~e_zero & ~e_ones;
  assign is_inf        = e_ones & m_zero;
  assign is_nan        = e_ones & ~m_zero;
  assign is_quiet      = is_nan & m[MAN_BITS-1];
  assign is_signalling = is_nan & ~m[MAN_BITS-1];

  wire unused_sign = x[EXP_BITS+MAN_BITS];

endmodule
`default_nettype wire
