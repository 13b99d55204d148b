`resetall
`timescale 1ns/1ps
`default_nettype none
// fmt_to_fp32: exact widening of a small binary floating-point pattern to IEEE binary32.
//
// Input format: {sign, exponent[EXP_BITS], mantissa[MAN_BITS]}, bias 2^(EXP_BITS-1)-1, IEEE-style
// encodings (exponent field all ones: Inf if the mantissa is zero, else NaN), or with
// FINITE_ONLY = 1 the OCP "FN" encodings (fp_classify: no Inf, NaN only at all ones, the other
// all-ones-exponent patterns normal). Supported parameters: EXP_BITS 2..8 (2..7 finite-only),
// MAN_BITS 1..23; every value of such a format is exactly a binary32 value, so the widening never
// rounds.
//
//   zero       -> signed zero
//   subnormal  -> normalised binary32 (EXP_BITS < 8) or binary32 subnormal (EXP_BITS = 8)
//   normal     -> same value, exponent re-biased, mantissa left-aligned
//   Inf        -> Inf with the same sign
//   NaN        -> canonical quiet NaN 0x7FC00000 (payload and sign dropped, as in lmul_core)
//
// Combinational. Bit-exact with lmul.format_bits_to_float32.
`include "lmul_defs.vh"
module fmt_to_fp32 #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 7,
    parameter integer FINITE_ONLY = 0
) (
    input  wire [EXP_BITS+MAN_BITS:0] x,
    output reg  [31:0]                y
);

  generate
    `LMUL_PARAM_CHECK(EXP_BITS >= 2 && EXP_BITS <= 8, g_bad_exp_bits,
                      PARAMETER_ERROR__fmt_to_fp32__EXP_BITS_must_be_2_to_8,
                      ("fmt_to_fp32: EXP_BITS=%0d out of range 2..8", EXP_BITS))
    `LMUL_PARAM_CHECK(MAN_BITS >= 1 && MAN_BITS <= 23, g_bad_man_bits,
                      PARAMETER_ERROR__fmt_to_fp32__MAN_BITS_must_be_1_to_23,
                      ("fmt_to_fp32: MAN_BITS=%0d out of range 1..23", MAN_BITS))
    `LMUL_PARAM_CHECK(FINITE_ONLY == 0 || FINITE_ONLY == 1, g_bad_finite_only,
                      PARAMETER_ERROR__fmt_to_fp32__FINITE_ONLY_must_be_0_or_1,
                      ("fmt_to_fp32: FINITE_ONLY=%0d must be 0 or 1", FINITE_ONLY))
    `LMUL_PARAM_CHECK(FINITE_ONLY == 0 || EXP_BITS <= `LMUL_FINITE_ONLY_MAX_EXP_BITS,
                      g_bad_finite_only_exp,
                      PARAMETER_ERROR__fmt_to_fp32__FINITE_ONLY_needs_EXP_BITS_at_most_7,
                      ("fmt_to_fp32: FINITE_ONLY=1 needs EXP_BITS <= 7, got %0d", EXP_BITS))
  endgenerate

  localparam integer BIAS = (1 << (EXP_BITS - 1)) - 1;

  wire                sign = x[EXP_BITS+MAN_BITS];
  wire [EXP_BITS-1:0] expf = x[EXP_BITS+MAN_BITS-1:MAN_BITS];
  wire [MAN_BITS-1:0] man  = x[MAN_BITS-1:0];

  wire is_zero, is_sub, is_inf, is_nan;
  wire unused_norm, unused_snan, unused_qnan;
  fp_classify #(.EXP_BITS(EXP_BITS), .MAN_BITS(MAN_BITS), .FINITE_ONLY(FINITE_ONLY)) u_class (
      .x(x), .is_zero(is_zero), .is_subnormal(is_sub), .is_normal(unused_norm), .is_inf(is_inf),
      .is_nan(is_nan), .is_signalling(unused_snan), .is_quiet(unused_qnan)
  );

  // Left-align the mantissa in 23 bits (no replication of width 0 when MAN_BITS = 23).
  wire [22:0] man_al;
  generate
    if (MAN_BITS == 23) begin : g_man_full
      assign man_al = man;
    end else begin : g_man_pad
      assign man_al = {man, {(23 - MAN_BITS){1'b0}}};
    end
  endgenerate

  // Binary32 encoding of the finite non-zero magnitudes: normal inputs (exp_norm) and subnormal
  // inputs (sub_word).
  wire [7:0]  exp_norm;
  wire [30:0] sub_word;
  generate
    if (EXP_BITS == 8) begin : g_same_bias
      // Same bias as binary32: exponents carry over, a subnormal stays a subnormal with the same
      // left-aligned mantissa.
      assign exp_norm = expf;
      assign sub_word = {8'd0, man_al};
    end else begin : g_rebias
      // Binary32 exponent field of a normal input: field + (127 - BIAS), at most 254.
      localparam integer EXP_ADJ = 127 - BIAS;
      localparam [7:0] EXP_ADJ8 = EXP_ADJ[7:0];
      // Leading-zero counts of the mantissa, 0..MAN_BITS.
      localparam integer LZ_BITS = $clog2(MAN_BITS + 1);

      assign exp_norm = {{(8 - EXP_BITS){1'b0}}, expf} + EXP_ADJ8;

      // A subnormal input man * 2^(1-BIAS-MAN_BITS) with lz leading zeros (its leading one at
      // mantissa bit MAN_BITS-1-lz) is a binary32 normal with exponent field EXP_ADJ - lz
      // (42..126 over all formats here). lz is meaningful only for man != 0, i.e. a subnormal.
      wire [LZ_BITS-1:0] lz;
      wire               unused_man_zero;
      lzc #(
          .WIDTH(MAN_BITS)
      ) u_lzc (
          .x       (man),
          .count   (lz),
          .all_zero(unused_man_zero)
      );
      // Shifting the leading one out of the MAN_BITS-wide word leaves the stored fraction.
      wire [LZ_BITS-1:0]  sub_shift = lz + 1'b1;
      wire [MAN_BITS-1:0] sub_frac  = man << sub_shift;
      wire [7:0]          exp_sub   = EXP_ADJ8 - {{(8 - LZ_BITS){1'b0}}, lz};
      if (MAN_BITS == 23) begin : g_sub_full
        assign sub_word = {exp_sub, sub_frac};
      end else begin : g_sub_pad
        assign sub_word = {exp_sub, sub_frac, {(23 - MAN_BITS){1'b0}}};
      end
    end
  endgenerate

  always @* begin
    if (is_nan) y = `LMUL_QNAN(8, 23);
    else if (is_inf) y = {sign, 8'hFF, 23'd0};
    else if (is_zero) y = {sign, 31'd0};
    else if (is_sub) y = {sign, sub_word};
    else y = {sign, exp_norm, man_al};
  end

endmodule
`default_nettype wire
