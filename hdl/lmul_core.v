`resetall
`timescale 1ns/1ps
`default_nettype none
// lmul_core: combinational L-Mul (Luo & Sun, arXiv 2410.00907, eq. 2) for one IEEE-style format.
//
// Operands and result are sign | exponent (EXP_BITS) | mantissa (MAN_BITS), bias 2^(EXP_BITS-1)-1.
// Priority of the rules (the Python model lmul.lmul_bits mirrors them bit for bit):
//   1. a or b NaN                      -> canonical quiet NaN (sign 0, exp all ones, mantissa MSB)
//   2. Inf x zero/subnormal            -> canonical quiet NaN
//   3. a or b Inf                      -> Inf, sign s = sa ^ sb
//   4. a or b exponent field 0         -> zero, sign s (subnormal inputs are flushed)
//   5. f = field(a) + field(b) - (BIAS << MAN_BITS) + OFFSET
//      f >> MAN_BITS <= 0              -> zero, sign s (underflow flushes)
//      f >> MAN_BITS >= all ones       -> Inf, sign s (largest finite, sign s, when SATURATE = 1)
//      otherwise                       -> {s, f[EXP_BITS+MAN_BITS-1:0]}
// Nothing is rounded. OFFSET defaults to the paper's 2^-l(M) term in mantissa LSBs
// (`LMUL_DEFAULT_OFFSET in lmul_defs.vh); OFFSET = 0 is Mitchell's approximation.
// FINITE_ONLY = 1 (EXP_BITS 2..7; OCP "FN", e.g. float8_e4m3fn: no Inf, NaN only at exponent and
// mantissa all ones): rules 2 and 3 cannot occur; the canonical NaN is {0, all ones}; overflow is
// a result field >= all ones (the NaN code; every other all-ones-exponent field is a normal
// result) and gives the canonical NaN, or the largest finite value {s, all ones - 1} (E4M3FN:
// 448) when SATURATE = 1: the OCP FP8 spec's non-saturating and saturating modes.
//
// The biased field sum is kept unsigned (no bias subtraction before the range checks): underflow
// and overflow are comparisons of the raw sum against constants, which is cheaper than a signed
// subtract followed by exponent decoding.
`include "lmul_defs.vh"
module lmul_core #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 7,
    parameter integer OFFSET   = `LMUL_DEFAULT_OFFSET(MAN_BITS),
    parameter integer SATURATE = 0,
    parameter integer FINITE_ONLY = 0
) (
    input  wire [EXP_BITS+MAN_BITS:0] a,
    input  wire [EXP_BITS+MAN_BITS:0] b,
    output wire [EXP_BITS+MAN_BITS:0] y
);
  localparam integer FW = EXP_BITS + MAN_BITS;  // exponent|mantissa field width
  // Field sum width: two fields + OFFSET < 2^(FW+2).
  localparam integer FIELD_SUM_BITS = FW + 2;

  generate
    `LMUL_PARAM_CHECK(EXP_BITS >= 2 && EXP_BITS <= 8, g_bad_exp_bits,
                      PARAMETER_ERROR__lmul_core__EXP_BITS_must_be_2_to_8,
                      ("lmul_core: EXP_BITS=%0d out of range 2..8", EXP_BITS))
    `LMUL_PARAM_CHECK(MAN_BITS >= 1 && MAN_BITS <= 23, g_bad_man_bits,
                      PARAMETER_ERROR__lmul_core__MAN_BITS_must_be_1_to_23,
                      ("lmul_core: MAN_BITS=%0d out of range 1..23", MAN_BITS))
    `LMUL_PARAM_CHECK(OFFSET >= 0 && OFFSET < (1 << MAN_BITS), g_bad_offset,
                      PARAMETER_ERROR__lmul_core__OFFSET_must_be_0_to_2_pow_MAN_BITS_minus_1,
                      ("lmul_core: OFFSET=%0d out of range 0..2^MAN_BITS-1", OFFSET))
    `LMUL_PARAM_CHECK(SATURATE == 0 || SATURATE == 1, g_bad_saturate,
                      PARAMETER_ERROR__lmul_core__SATURATE_must_be_0_or_1,
                      ("lmul_core: SATURATE=%0d must be 0 or 1", SATURATE))
    `LMUL_PARAM_CHECK(FINITE_ONLY == 0 || FINITE_ONLY == 1, g_bad_finite_only,
                      PARAMETER_ERROR__lmul_core__FINITE_ONLY_must_be_0_or_1,
                      ("lmul_core: FINITE_ONLY=%0d must be 0 or 1", FINITE_ONLY))
    `LMUL_PARAM_CHECK(FINITE_ONLY == 0 || EXP_BITS <= `LMUL_FINITE_ONLY_MAX_EXP_BITS,
                      g_bad_finite_only_exp,
                      PARAMETER_ERROR__lmul_core__FINITE_ONLY_needs_EXP_BITS_at_most_7,
                      ("lmul_core: FINITE_ONLY=1 needs EXP_BITS <= 7, got %0d", EXP_BITS))
  endgenerate

  localparam [FIELD_SUM_BITS-1:0] ONE_V = {{(FIELD_SUM_BITS - 1) {1'b0}}, 1'b1};
  localparam [FIELD_SUM_BITS-1:0] BIAS_V = (ONE_V << (EXP_BITS - 1)) - ONE_V;
  localparam [FIELD_SUM_BITS-1:0] EMAX_V = (ONE_V << EXP_BITS) - ONE_V;  // all-ones exponent
  localparam [FIELD_SUM_BITS-1:0] OFFSET_V =
      {{(FIELD_SUM_BITS - MAN_BITS) {1'b0}}, OFFSET[MAN_BITS-1:0]};
  localparam [FIELD_SUM_BITS-1:0] BIAS_SHIFT = BIAS_V << MAN_BITS;
  // Raw sums below UNDER_LIMIT have a result exponent <= 0; at or above OVER_LIMIT, >= all ones.
  localparam [FIELD_SUM_BITS-1:0] UNDER_LIMIT = (BIAS_V + ONE_V) << MAN_BITS;
  // (Finite-only: at or above BIAS_SHIFT + all ones, the result field reaches the NaN code.)
  localparam [FIELD_SUM_BITS-1:0] FIELD_ONES = (ONE_V << FW) - ONE_V;
  localparam [FIELD_SUM_BITS-1:0] OVER_LIMIT = (FINITE_ONLY != 0) ? BIAS_SHIFT + FIELD_ONES
                                                                  : (BIAS_V + EMAX_V) << MAN_BITS;

  localparam [FW-1:0] INF_FIELD  = {{EXP_BITS{1'b1}}, {MAN_BITS{1'b0}}};
  // The smallest non-finite field: Inf, or the NaN code of a finite-only format.
  localparam [FW-1:0] BIG_FIELD  = (FINITE_ONLY != 0) ? {FW{1'b1}} : INF_FIELD;
  localparam [FW-1:0] MAXF_FIELD = BIG_FIELD - {{(FW-1){1'b0}}, 1'b1};
  localparam [FW-1:0] OVF_FIELD  = (SATURATE == 1) ? MAXF_FIELD : INF_FIELD;
  // A non-saturating overflow of a finite-only format is NaN (it has no Inf).
  localparam integer OVF_NAN = (FINITE_ONLY != 0 && SATURATE == 0) ? 1 : 0;
  localparam [FW:0] QNAN = `LMUL_NAN(EXP_BITS, MAN_BITS, FINITE_ONLY);

  // Classification; subnormals count as zeros (flushed).
  wire a_zero, a_sub, a_inf, a_nan, b_zero, b_sub, b_inf, b_nan;
  wire unused_a_norm, unused_a_snan, unused_a_qnan, unused_b_norm, unused_b_snan, unused_b_qnan;
  fp_classify #(.EXP_BITS(EXP_BITS), .MAN_BITS(MAN_BITS), .FINITE_ONLY(FINITE_ONLY)) u_class_a (
      .x(a), .is_zero(a_zero), .is_subnormal(a_sub), .is_normal(unused_a_norm), .is_inf(a_inf),
      .is_nan(a_nan), .is_signalling(unused_a_snan), .is_quiet(unused_a_qnan)
  );
  fp_classify #(.EXP_BITS(EXP_BITS), .MAN_BITS(MAN_BITS), .FINITE_ONLY(FINITE_ONLY)) u_class_b (
      .x(b), .is_zero(b_zero), .is_subnormal(b_sub), .is_normal(unused_b_norm), .is_inf(b_inf),
      .is_nan(b_nan), .is_signalling(unused_b_snan), .is_quiet(unused_b_qnan)
  );
  wire a_flush = a_zero | a_sub;
  wire b_flush = b_zero | b_sub;
  wire sign    = a[FW] ^ b[FW];

  wire [FIELD_SUM_BITS-1:0] sum = {2'b00, a[FW-1:0]} + {2'b00, b[FW-1:0]} + OFFSET_V;
  wire [FW-1:0] norm = sum[FW-1:0] - BIAS_SHIFT[FW-1:0];  // exact modulo 2^FW
  wire underflow = sum < UNDER_LIMIT;
  wire overflow  = sum >= OVER_LIMIT;

  reg [FW:0] y_r;
  always @* begin
    if (a_nan | b_nan | (a_inf & b_flush) | (b_inf & a_flush))
      y_r = QNAN;
    else if (a_inf | b_inf)
      y_r = {sign, INF_FIELD};
    else if (a_flush | b_flush | underflow)
      y_r = {sign, {FW{1'b0}}};
    else if (overflow)
      y_r = (OVF_NAN != 0) ? QNAN : {sign, OVF_FIELD};
    else
      y_r = {sign, norm};
  end
  assign y = y_r;
endmodule
`default_nettype wire
