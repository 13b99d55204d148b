`resetall
`timescale 1ns/1ps
`default_nettype none
// fp_mul: combinational exact IEEE-754-style multiplication, y = round(a * b).
//
// This is the baseline the L-Mul core is measured against (precision and synthesized area), so
// it is a complete, honest multiplier: the significands are multiplied exactly and the product
// is rounded once.
//
// Format: {sign, exponent[EXP_BITS], mantissa[MAN_BITS]}, bias 2^(EXP_BITS-1)-1, IEEE-style
// encodings (exponent all ones: Inf / NaN; exponent 0: zero / subnormal). Same port style as
// lmul_core. Supported parameters: EXP_BITS 2..8, MAN_BITS 1..23 (the L-Mul range).
//
// Semantics (checked by sim/test_fp_mul.py against ml_dtypes / numpy rounding of the exact
// product, and against Python fractions):
//   - round to nearest, ties to even; the sign of every zero, Inf and finite result is
//     sign(a) XOR sign(b);
//   - overflow after rounding gives Inf (no saturation);
//   - any NaN input, or Inf * 0, gives the canonical quiet NaN {0, all ones, 1, 0...0};
//   - Inf * (nonzero) gives Inf.
//   Subnormal policy, parameter SUBNORMALS:
//     1 (default): full IEEE, subnormal inputs and outputs, gradual underflow. This is the
//       fair exact baseline; it costs a normalisation shifter and a denormalisation shifter.
//     0: flush, matching the L-Mul unit: an input with exponent field 0 is a (signed) zero, and
//       a result whose exact magnitude is below the smallest normal 2^(1-bias) becomes a zero
//       with sign s (tininess detected before rounding, so a product just below the smallest
//       normal that would round up to it still flushes). The significand product is then always
//       in [1, 4), so one conditional 1-bit shift normalises it.
//
// FINITE_ONLY = 1 (EXP_BITS 2..7; OCP "FN" encodings, e.g. float8_e4m3fn: no Inf, NaN only at
// exponent and mantissa all ones): no Inf operands; a product that rounds beyond the largest
// finite value (E4M3FN: 448) gives the canonical NaN {0, all ones}, as ml_dtypes' float32 product
// cast back to float8_e4m3fn does (up to the NaN's sign, canonical here as every NaN result).
//
// Algorithm (SUBNORMALS=1): P = {hidden,ma} * {hidden,mb} (2M+2 bits; a subnormal operand has
// hidden bit 0 and effective exponent 1). With t = ea + eb - bias, the value is
// P * 2^(t + 1 - bias - (2M+1)) read as a fixed-point number with its binary point below bit 2M+1.
// If P has lz leading zeros and t >= lz, shift left by lz: a normal result with exponent
// t + 1 - lz. If 0 <= t < lz, shift left by only t: the result is subnormal (exponent field 0).
// If t < 0, shift right by -t (the bits shifted out go to the sticky bit): subnormal or zero.
// Rounding increments the packed {exponent, mantissa} word, so a mantissa carry moves into the
// exponent (subnormal -> smallest normal, largest finite -> Inf).
`include "lmul_defs.vh"
module fp_mul #(
    parameter integer EXP_BITS   = 8,
    parameter integer MAN_BITS   = 7,
    parameter integer SUBNORMALS = 1,
    parameter integer FINITE_ONLY = 0
) (
    input  wire [EXP_BITS+MAN_BITS:0] a,
    input  wire [EXP_BITS+MAN_BITS:0] b,
    output wire [EXP_BITS+MAN_BITS:0] y
);

  generate
    `LMUL_PARAM_CHECK(EXP_BITS >= 2 && EXP_BITS <= 8, g_bad_exp_bits,
                      PARAMETER_ERROR__fp_mul__EXP_BITS_must_be_2_to_8,
                      ("fp_mul: EXP_BITS=%0d out of range 2..8", EXP_BITS))
    `LMUL_PARAM_CHECK(MAN_BITS >= 1 && MAN_BITS <= 23, g_bad_man_bits,
                      PARAMETER_ERROR__fp_mul__MAN_BITS_must_be_1_to_23,
                      ("fp_mul: MAN_BITS=%0d out of range 1..23", MAN_BITS))
    `LMUL_PARAM_CHECK(SUBNORMALS == 0 || SUBNORMALS == 1, g_bad_subnormals,
                      PARAMETER_ERROR__fp_mul__SUBNORMALS_must_be_0_or_1,
                      ("fp_mul: SUBNORMALS=%0d must be 0 or 1", SUBNORMALS))
    `LMUL_PARAM_CHECK(FINITE_ONLY == 0 || FINITE_ONLY == 1, g_bad_finite_only,
                      PARAMETER_ERROR__fp_mul__FINITE_ONLY_must_be_0_or_1,
                      ("fp_mul: FINITE_ONLY=%0d must be 0 or 1", FINITE_ONLY))
    `LMUL_PARAM_CHECK(FINITE_ONLY == 0 || EXP_BITS <= `LMUL_FINITE_ONLY_MAX_EXP_BITS,
                      g_bad_finite_only_exp,
                      PARAMETER_ERROR__fp_mul__FINITE_ONLY_needs_EXP_BITS_at_most_7,
                      ("fp_mul: FINITE_ONLY=1 needs EXP_BITS <= 7, got %0d", EXP_BITS))
  endgenerate

  localparam integer W = 1 + EXP_BITS + MAN_BITS;
  // Significand product width.
  localparam integer PROD_BITS = 2 * MAN_BITS + 2;
  // Normalisation shift counts 0..PROD_BITS.
  localparam integer SHIFT_BITS = $clog2(PROD_BITS + 1);
  // Exponent arithmetic width: ea + eb + 1 < 2^(EXP_BITS+1), plus room for shift counts.
  localparam integer XW = ((EXP_BITS > SHIFT_BITS) ? EXP_BITS : SHIFT_BITS) + 2;
  localparam integer BIAS = (1 << (EXP_BITS - 1)) - 1;

  localparam [XW-1:0] BIAS_X = BIAS[XW-1:0];
  localparam [XW-1:0] PROD_X = PROD_BITS[XW-1:0];
  localparam [XW-1:0] ONE_X = {{(XW - 1) {1'b0}}, 1'b1};
  localparam [EXP_BITS-1:0] EXP_ONES = {EXP_BITS{1'b1}};
  localparam [XW-1:0] EXP_ONES_X = {{(XW - EXP_BITS) {1'b0}}, EXP_ONES};
  localparam [W-1:0] QNAN = `LMUL_NAN(EXP_BITS, MAN_BITS, FINITE_ONLY);
  // The exponent a product must exceed to overflow before rounding: all ones is Inf/NaN, but a
  // normal binade of a finite-only format.
  localparam [XW-1:0] EXP_TOP_X = (FINITE_ONLY != 0) ? EXP_ONES_X + ONE_X : EXP_ONES_X;

  // ---------------------------------------------------------------- unpack and classify
  wire                sa = a[W-1];
  wire                sb = b[W-1];
  wire [EXP_BITS-1:0] ea = a[W-2:MAN_BITS];
  wire [EXP_BITS-1:0] eb = b[W-2:MAN_BITS];
  wire [MAN_BITS-1:0] ma = a[MAN_BITS-1:0];
  wire [MAN_BITS-1:0] mb = b[MAN_BITS-1:0];
  wire                s = sa ^ sb;

  wire a_czero, a_sub, a_nan, a_inf, b_czero, b_sub, b_nan, b_inf;
  wire unused_a_norm, unused_a_snan, unused_a_qnan, unused_b_norm, unused_b_snan, unused_b_qnan;
  fp_classify #(.EXP_BITS(EXP_BITS), .MAN_BITS(MAN_BITS), .FINITE_ONLY(FINITE_ONLY)) u_class_a (
      .x(a), .is_zero(a_czero), .is_subnormal(a_sub), .is_normal(unused_a_norm), .is_inf(a_inf),
      .is_nan(a_nan), .is_signalling(unused_a_snan), .is_quiet(unused_a_qnan)
  );
  fp_classify #(.EXP_BITS(EXP_BITS), .MAN_BITS(MAN_BITS), .FINITE_ONLY(FINITE_ONLY)) u_class_b (
      .x(b), .is_zero(b_czero), .is_subnormal(b_sub), .is_normal(unused_b_norm), .is_inf(b_inf),
      .is_nan(b_nan), .is_signalling(unused_b_snan), .is_quiet(unused_b_qnan)
  );
  wire a_ezero = a_czero | a_sub;  // exponent field 0
  wire b_ezero = b_czero | b_sub;
  // With flushing, every exponent-0 encoding is a zero.
  wire a_zero = (SUBNORMALS == 0) ? a_ezero : a_czero;
  wire b_zero = (SUBNORMALS == 0) ? b_ezero : b_czero;

  // ---------------------------------------------------------------- datapath
  // Outputs of either datapath variant:
  // Significand product, normalised (or denormalised) so bit PROD_BITS-1 is the hidden bit.
  wire [PROD_BITS-1:0] pn;
  wire [EXP_BITS-1:0] e_field;  // exponent field before rounding (0 for a subnormal result)
  wire ovf;  // exponent too large before rounding: Inf
  wire flush;  // result flushed to zero (SUBNORMALS=0 only)
  wire sticky_shift;  // nonzero bits lost by the denormalisation shift

  generate
    if (SUBNORMALS != 0) begin : g_ieee
      wire [MAN_BITS:0] siga = {~a_ezero, ma};
      wire [MAN_BITS:0] sigb = {~b_ezero, mb};
      wire [PROD_BITS-1:0] p = siga * sigb;
      // A subnormal has the same scale as exponent field 1.
      wire [XW-1:0] ea_eff = {{(XW - EXP_BITS) {1'b0}}, ea[EXP_BITS-1:1], ea[0] | a_ezero};
      wire [XW-1:0] eb_eff = {{(XW - EXP_BITS) {1'b0}}, eb[EXP_BITS-1:1], eb[0] | b_ezero};
      wire [XW-1:0] esum = ea_eff + eb_eff;  // t + bias

      // Leading zeros of p (p = 0 only when an operand is zero; that case is overridden).
      wire [SHIFT_BITS-1:0] lz;
      wire                  unused_p_zero;
      lzc #(
          .WIDTH(PROD_BITS)
      ) u_lzc (
          .x       (p),
          .count   (lz),
          .all_zero(unused_p_zero)
      );
      wire [XW-1:0] lz_x = {{(XW - SHIFT_BITS) {1'b0}}, lz};

      wire normal = (esum >= BIAS_X + lz_x);  // t >= lz
      wire right = (esum < BIAS_X);  // t < 0
      wire [XW-1:0] t_pos = esum - BIAS_X;  // t, valid when !right
      wire [XW-1:0] t_neg = BIAS_X - esum;  // -t, valid when right
      wire [SHIFT_BITS-1:0] sl = normal ? lz : (right ? {SHIFT_BITS{1'b0}} : t_pos[SHIFT_BITS-1:0]);
      wire [SHIFT_BITS-1:0] sr = (t_neg >= PROD_X) ? PROD_BITS[SHIFT_BITS-1:0]
                                                   : t_neg[SHIFT_BITS-1:0];
      wire [PROD_BITS-1:0] p_left = p << sl;
      wire [PROD_BITS-1:0] p_right = p >> sr;
      wire [PROD_BITS-1:0] lost_mask = ~({PROD_BITS{1'b1}} << sr);
      wire [XW-1:0] er = t_pos + ONE_X - lz_x;  // normal result exponent

      assign pn = right ? p_right : p_left;
      assign sticky_shift = right & ((p & lost_mask) != {PROD_BITS{1'b0}});
      assign ovf = normal & (er >= EXP_TOP_X);
      assign e_field = normal ? er[EXP_BITS-1:0] : {EXP_BITS{1'b0}};
      assign flush = 1'b0;
    end else begin : g_flush
      wire [MAN_BITS:0] siga = {1'b1, ma};
      wire [MAN_BITS:0] sigb = {1'b1, mb};
      wire [PROD_BITS-1:0] p = siga * sigb;  // in [2^(PROD_BITS-2), 2^PROD_BITS)
      wire hi = p[PROD_BITS-1];
      // Result exponent + bias = ea + eb - bias + hi.
      wire [XW-1:0] esum_hi = {{(XW - EXP_BITS) {1'b0}}, ea} + {{(XW - EXP_BITS) {1'b0}}, eb}
                              + {{(XW - 1) {1'b0}}, hi};
      wire [XW-1:0] er = esum_hi - BIAS_X;  // valid when !flush

      assign pn = hi ? p : {p[PROD_BITS-2:0], 1'b0};
      assign sticky_shift = 1'b0;
      assign flush = (esum_hi < BIAS_X + ONE_X);  // exponent < 1: tiny
      assign ovf = ~flush & (er >= EXP_TOP_X);
      assign e_field = er[EXP_BITS-1:0];
    end
  endgenerate

  // ---------------------------------------------------------------- round (RNE)
  // A carry out of the mantissa moves into the exponent; into all ones it is exactly Inf.
  wire [W-1:0] rounded;
  wire         unused_inexact;
  fp_round #(
      .EXP_BITS   (EXP_BITS),
      .MAN_BITS   (MAN_BITS),
      .FINITE_ONLY(FINITE_ONLY)
  ) u_round (
      .sign    (s),
      .exp     (e_field),
      .man     (pn[PROD_BITS-2:MAN_BITS+1]),
      .guard   (pn[MAN_BITS]),
      .sticky  ((pn[MAN_BITS-1:0] != {MAN_BITS{1'b0}}) | sticky_shift),
      .overflow(ovf),
      .y       (rounded),
      .inexact (unused_inexact)
  );

  // ---------------------------------------------------------------- specials
  // A finite-only overflow: fp_round gives the NaN code {s, all ones}, made canonical here.
  wire ovf_nan = (FINITE_ONLY != 0) & (&rounded[W-2:0]);
  wire res_nan = a_nan | b_nan | (a_inf & b_zero) | (b_inf & a_zero);
  wire res_inf = a_inf | b_inf;
  wire res_zero = a_zero | b_zero | flush;

  assign y = res_nan  ? QNAN :
             res_inf  ? {s, EXP_ONES, {MAN_BITS{1'b0}}} :
             res_zero ? {s, {(EXP_BITS + MAN_BITS) {1'b0}}} :
             ovf_nan  ? QNAN :
                        rounded;

endmodule
`default_nettype wire
