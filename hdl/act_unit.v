`resetall
`timescale 1ns/1ps
`default_nettype none
`include "lmul_defs.vh"
// act_unit: piecewise-linear logistic sigmoid (FUNC 0) or tanh (FUNC 1) of a binary32 input,
// binary32 result. Combinational. Specification: docs/activation.md; the model is
// lmul.act_hw_bits (lmul/_act_hw.py), equal bit for bit on all 2^32 inputs (make prove).
//
//   u = floor(|x| 2^COEF_BITS) on [0, R), R = 2^XMAX_LOG2 (16 for sigmoid, 8 for tanh);
//   SEGMENTS uniform segments: index i = u >> K, offset t = u mod 2^K, K = COEF_BITS +
//   XMAX_LOG2 - log2(SEGMENTS);
//   y = A[i] + floor(D[i] t / 2^K) (units of 2^-COEF_BITS; A = knot values, D = rises, from
//   act_coef.vh, generated from the model's table), one fixed-point multiply of COEF_BITS x K
//   bits (a plain integer product: the operands are unsigned fixed point, which the L-Mul and
//   binary32 multipliers of the project don't take);
//   |x| >= R (Inf too) saturates to y = 1.0; tanh(-x) = -tanh(x), sigmoid(-x) = 1 - sigmoid(x);
//   tanh passes x through for |x| < 2^-12 (+-0 and subnormals included);
//   y is normalized (lzc) and rounded once to binary32 (fp_round, nearest even);
//   NaN gives the canonical NaN 0x7FC00000.
// Parameters: FUNC 0..1; SEGMENTS a power of two in 2..256; COEF_BITS 12..30; the
// (FUNC, SEGMENTS, COEF_BITS) set must have a generated table (python -m sim.gen_act_coef).
module act_unit #(
    parameter integer FUNC = 0,
    parameter integer SEGMENTS = 16,
    parameter integer COEF_BITS = 16
) (
    input  wire [31:0] x,
    output wire [31:0] y
);

`include "act_coef.vh"

  localparam integer TABLE = act_coef_table(FUNC, SEGMENTS, COEF_BITS);

  generate
    `LMUL_PARAM_CHECK(FUNC == 0 || FUNC == 1, g_bad_func,
                      PARAMETER_ERROR__act_unit__FUNC_must_be_0_or_1,
                      ("act_unit: FUNC=%0d must be 0 (sigmoid) or 1 (tanh)", FUNC))
    `LMUL_PARAM_CHECK(SEGMENTS >= 2 && SEGMENTS <= 256 && (SEGMENTS & (SEGMENTS - 1)) == 0,
                      g_bad_segments,
                      PARAMETER_ERROR__act_unit__SEGMENTS_must_be_a_power_of_two_2_to_256,
                      ("act_unit: SEGMENTS=%0d must be a power of two in 2..256", SEGMENTS))
    `LMUL_PARAM_CHECK(COEF_BITS >= 12 && COEF_BITS <= 30, g_bad_coef_bits,
                      PARAMETER_ERROR__act_unit__COEF_BITS_must_be_12_to_30,
                      ("act_unit: COEF_BITS=%0d out of range 12..30", COEF_BITS))
    `LMUL_PARAM_CHECK(TABLE != 0, g_no_table,
                      PARAMETER_ERROR__act_unit__no_coefficient_table_for_these_parameters,
                      ("act_unit: no table for FUNC=%0d SEGMENTS=%0d COEF_BITS=%0d (add the set %s",
                       FUNC, SEGMENTS, COEF_BITS, "to lmul.ACT_PRESETS, python -m sim.gen_act_coef)"))
  endgenerate

  localparam integer XMAX_LOG2 = (FUNC == 0) ? 4 : 3;
  localparam integer SEG_LOG2 = $clog2(SEGMENTS);
  localparam integer UW = COEF_BITS + XMAX_LOG2;       // bits of u
  localparam integer K = UW - SEG_LOG2;                // bits of the offset t
  localparam integer YW = COEF_BITS + 1;               // bits of y (0 .. 2^COEF_BITS)
  localparam integer PASS_EXP = 127 - 12;              // tanh: |x| < 2^-12 passes through
  localparam integer SAT_EXP = 127 + XMAX_LOG2;        // |x| >= R saturates
  localparam [3:0] TABLE_ID = TABLE[3:0];
  localparam integer RSH_BASE_I = 166 - COEF_BITS;
  localparam [8:0] RSH_BASE = RSH_BASE_I[8:0];
  localparam integer EXP_BASE_I = 158 - COEF_BITS;
  localparam [7:0] EXP_BASE = EXP_BASE_I[7:0];
  localparam [YW-1:0] ONE = {1'b1, {COEF_BITS{1'b0}}};

  wire       sign = x[31];
  wire [7:0] e = x[30:23];
  wire       is_nan = (&e) & (|x[22:0]);
  wire       pass = (FUNC == 1) && (e < PASS_EXP[7:0]);
  wire       sat = e >= SAT_EXP[7:0];

  // u = floor(sig 2^(e' - 150 + COEF_BITS)), e' = max(e, 1): {sig, 16 zeros} shifted right by
  // 166 - COEF_BITS - e' (at least 6 for |x| < R; shifts of 40 and more give 0).
  wire [7:0]  e_eff = (e == 8'd0) ? 8'd1 : e;
  wire [39:0] wide = {|e, x[22:0], 16'd0};
  wire [8:0]  rsh = RSH_BASE - {1'b0, e_eff};
  wire [39:0] u_wide = wide >> rsh;
  wire [UW-1:0] u = u_wide[UW-1:0];

  wire [SEG_LOG2-1:0] seg = u[UW-1:K];
  wire [K-1:0]        t = u[K-1:0];
  wire [63:0]         coef = act_coef_rom(TABLE_ID, {{(9 - SEG_LOG2){1'b0}}, seg});
  wire [YW-1:0]       a = coef[32 +: YW];
  wire [COEF_BITS-1:0] d = coef[0 +: COEF_BITS];
  wire [COEF_BITS+K-1:0] prod = {{K{1'b0}}, d} * {{COEF_BITS{1'b0}}, t};
  wire [YW-1:0]       y_pos = sat ? ONE : a + {1'b0, prod[COEF_BITS+K-1:K]};
  wire                neg_sigmoid = (FUNC == 0) & sign;
  wire [YW-1:0]       y_mag = neg_sigmoid ? ONE - y_pos : y_pos;
  wire                y_sign = (FUNC == 1) & sign;

  // binary32 of y_mag 2^-COEF_BITS: leading one to bit 31, exponent 158 - COEF_BITS - lz
  // (127 - COEF_BITS .. 127: always normal), 23 fraction bits, guard and sticky below.
  wire [31:0] w = {{(32 - YW){1'b0}}, y_mag};
  wire [5:0]  lz;
  wire        y_zero;
  lzc #(.WIDTH(32)) u_lzc (.x(w), .count(lz), .all_zero(y_zero));
  wire [31:0] norm = w << lz[4:0];
  wire [7:0]  exp_field = EXP_BASE - {2'b00, lz};
  wire [31:0] rounded;
  wire        inexact_unused;
  fp_round #(.EXP_BITS(8), .MAN_BITS(23)) u_round (
      .sign(y_sign), .exp(exp_field), .man(norm[30:8]), .guard(norm[7]), .sticky(|norm[6:0]),
      .overflow(1'b0), .y(rounded), .inexact(inexact_unused));

  assign y = is_nan ? `LMUL_QNAN(8, 23)
           : pass   ? x
           : y_zero ? {y_sign, 31'd0}
           : rounded;

  // Unused: the upper bits of the 64-bit table word and of the shifted significand, the
  // product's bits below the result's LSB (truncated), the normalized word's leading one, the
  // rounder's inexact flag.
  wire unused_ok = &{1'b0, coef, u_wide, prod[K-1:0], norm[31], inexact_unused};

endmodule
`default_nettype wire
