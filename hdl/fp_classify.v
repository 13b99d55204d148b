`resetall
`timescale 1ns/1ps
`default_nettype none
// fp_classify: special-value classification of one binary floating-point pattern, IEEE-style or
// finite-only (in the spirit of cvfpu's fpnew_classifier). Combinational.
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
// FINITE_ONLY = 1 (OCP FP8 "FN" encoding, e.g. float8_e4m3fn): no Inf; only exponent and
// mantissa all ones is NaN (quiet: its mantissa MSB is 1); every other exponent-all-ones pattern
// is_normal. FINITE_ONLY = 0 (default) is the IEEE-style table above.
// A module that flushes subnormal inputs treats is_zero | is_subnormal as zero.
`include "lmul_defs.vh"
module fp_classify #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 23,
    parameter integer FINITE_ONLY = 0
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
    `LMUL_PARAM_CHECK(FINITE_ONLY == 0 || FINITE_ONLY == 1, g_bad_finite_only,
                      PARAMETER_ERROR__fp_classify__FINITE_ONLY_must_be_0_or_1,
                      ("fp_classify: FINITE_ONLY=%0d must be 0 or 1", FINITE_ONLY))
  endgenerate

  wire [EXP_BITS-1:0] e = x[EXP_BITS+MAN_BITS-1:MAN_BITS];
  wire [MAN_BITS-1:0] m = x[MAN_BITS-1:0];
  wire e_zero = ~|e;
  wire e_ones = &e;
  wire m_zero = ~|m;
  wire fn     = (FINITE_ONLY != 0);
  // The special (Inf/NaN) codes: exponent all ones, or for FINITE_ONLY only the all-ones NaN.
  wire special = e_ones & (~fn | (&m));

  assign is_zero       = e_zero & m_zero;
  assign is_subnormal  = e_zero & ~m_zero;
  assign is_normal     = ~e_zero & ~special;
  assign is_inf        = special & m_zero;
  assign is_nan        = special & ~m_zero;
  assign is_quiet      = is_nan & m[MAN_BITS-1];
  assign is_signalling = is_nan & ~m[MAN_BITS-1];

  wire unused_sign = x[EXP_BITS+MAN_BITS];

endmodule
`default_nettype wire
