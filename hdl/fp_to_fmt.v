`resetall
`timescale 1ns/1ps
`default_nettype none
// fp_to_fmt: combinational rounding of an IEEE binary32 value to a small binary floating-point
// format, round to nearest, ties to even. It turns float32 activations and weights into the
// operands of lmul_core, fp_mul and mac_array.
//
// Output format: {sign, exponent[EXP_BITS], mantissa[MAN_BITS]}, bias 2^(EXP_BITS-1)-1, IEEE-style
// encodings (exponent field all ones: Inf if the mantissa is zero, else NaN). Supported
// parameters: EXP_BITS 2..8, MAN_BITS 1..23 (the L-Mul range).
// FINITE_ONLY = 1 (EXP_BITS 2..7): the OCP "FN" output encoding (no Inf; NaN only at exponent and
// mantissa all ones, e.g. float8_e4m3fn), converted as the OCP FP8 spec's non-saturating mode and
// ml_dtypes / torch casts do: where an IEEE-style format gets Inf (a magnitude that rounds beyond
// the largest finite value, or a binary32 Inf) the result is the NaN code with the input's sign,
// {sign, all ones}; a NaN input still gives the canonical NaN {0, all ones}.
//
// Semantics (bit-exact with lmul.round_to_format_bits(x, fmt, "rne") on float32 inputs):
//   NaN (any sign or payload)  -> canonical quiet NaN {0, all ones, 1, 0...0}
//   +-Inf                      -> Inf with the same sign
//   +-0                        -> zero with the same sign
//   finite                     -> RNE to the format; subnormal results are produced (no flushing),
//                                 a result that rounds to zero keeps the sign, a magnitude that
//                                 rounds to 2^(emax+1) or above is Inf with the same sign.
//   Binary32 subnormal inputs are rounded like any other value (for EXP_BITS < 8 they are far below
//   half the smallest subnormal of the format, so they become signed zeros).
//
// Algorithm: with e = max(exponent field, 1) and the 24-bit significand sig = {field != 0, m},
// the value is sig * 2^(e - 150). Its exponent field in the target format is te = e - D with
// D = 127 - bias. If te >= 1 the result is normal before rounding: exponent te, mantissa
// sig >> (23 - MAN_BITS) without its hidden bit; te >= 2^EXP_BITS - 1 is an overflow (Inf). If
// te <= 0 the result is subnormal: exponent field 0, mantissa sig >> (23 - MAN_BITS + 1 - te).
// The bits shifted out give guard and sticky, and the shared rounder fp_round increments the
// packed word, so a mantissa carry moves into the exponent (subnormal -> smallest normal,
// largest finite -> Inf).
`include "lmul_defs.vh"
module fp_to_fmt #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 7,
    parameter integer FINITE_ONLY = 0
) (
    input  wire [31:0]                x,
    output wire [EXP_BITS+MAN_BITS:0] y
);

  generate
    `LMUL_PARAM_CHECK(EXP_BITS >= 2 && EXP_BITS <= 8, g_bad_exp_bits,
                      PARAMETER_ERROR__fp_to_fmt__EXP_BITS_must_be_2_to_8,
                      ("fp_to_fmt: EXP_BITS=%0d out of range 2..8", EXP_BITS))
    `LMUL_PARAM_CHECK(MAN_BITS >= 1 && MAN_BITS <= 23, g_bad_man_bits,
                      PARAMETER_ERROR__fp_to_fmt__MAN_BITS_must_be_1_to_23,
                      ("fp_to_fmt: MAN_BITS=%0d out of range 1..23", MAN_BITS))
    `LMUL_PARAM_CHECK(FINITE_ONLY == 0 || FINITE_ONLY == 1, g_bad_finite_only,
                      PARAMETER_ERROR__fp_to_fmt__FINITE_ONLY_must_be_0_or_1,
                      ("fp_to_fmt: FINITE_ONLY=%0d must be 0 or 1", FINITE_ONLY))
    `LMUL_PARAM_CHECK(FINITE_ONLY == 0 || EXP_BITS <= `LMUL_FINITE_ONLY_MAX_EXP_BITS,
                      g_bad_finite_only_exp,
                      PARAMETER_ERROR__fp_to_fmt__FINITE_ONLY_needs_EXP_BITS_at_most_7,
                      ("fp_to_fmt: FINITE_ONLY=1 needs EXP_BITS <= 7, got %0d", EXP_BITS))
  endgenerate

  localparam integer FW = EXP_BITS + MAN_BITS;
  localparam integer BIAS = (1 << (EXP_BITS - 1)) - 1;
  localparam integer D = 127 - BIAS;  // binary32 exponent field minus target exponent field
  // Right shifts of the 24-bit significand; beyond 25 everything is below half an LSB.
  localparam integer MAX_SHIFT = 26;
  localparam integer BASE_SHIFT = 23 - MAN_BITS;
  localparam integer EMAX_FIELD = (1 << EXP_BITS) - 1;  // all-ones exponent field

  localparam [7:0] D8 = D[7:0];
  localparam [8:0] BASE_SHIFT9 = BASE_SHIFT[8:0];
  localparam [8:0] MAX_SHIFT9 = MAX_SHIFT[8:0];
  localparam [8:0] EMAX9 = EMAX_FIELD[8:0];
  localparam [FW-1:0] INF_FIELD = {{EXP_BITS{1'b1}}, {MAN_BITS{1'b0}}};
  localparam [FW:0] QNAN = `LMUL_NAN(EXP_BITS, MAN_BITS, FINITE_ONLY);
  // The pattern of a signed binary32 Inf: Inf, or the NaN code of a finite-only format.
  localparam [FW-1:0] BIG_FIELD = (FINITE_ONLY != 0) ? {FW{1'b1}} : INF_FIELD;

  wire x_zero, x_sub, x_normal, x_inf, x_nan, x_snan, x_qnan;
  fp_classify #(
      .EXP_BITS(8),
      .MAN_BITS(23)
  ) u_classify (
      .x            (x),
      .is_zero      (x_zero),
      .is_subnormal (x_sub),
      .is_normal    (x_normal),
      .is_inf       (x_inf),
      .is_nan       (x_nan),
      .is_signalling(x_snan),
      .is_quiet     (x_qnan)
  );

  wire        sign  = x[31];
  wire [7:0]  e_eff = x_normal ? x[30:23] : 8'd1;  // a subnormal has the scale of field 1
  wire [23:0] sig   = {x_normal, x[22:0]};

  // A normal input gives a normal result before rounding exactly when te = e_eff - D >= 1;
  // otherwise the extra right shift is 1 - te = D + 1 - e_eff (a binary32 subnormal has no hidden
  // bit, so for D = 0 it stays a subnormal: shift 23 - MAN_BITS, exponent field 0).
  wire       normal = x_normal & (e_eff > D8);
  wire [8:0] te     = {1'b0, e_eff} - {1'b0, D8};  // target exponent field, used only when normal
  wire [8:0] below  = {1'b0, D8} + 9'd1 - {1'b0, e_eff};  // 1 - te, used only when !normal
  wire [8:0] shift_raw = normal ? BASE_SHIFT9 : BASE_SHIFT9 + below;
  wire [4:0] shift = (shift_raw > MAX_SHIFT9) ? MAX_SHIFT[4:0] : shift_raw[4:0];

  // Significand with MAX_SHIFT fraction bits below it: after the shift, the top 24 bits are the
  // kept part (hidden bit at MAN_BITS when normal, below it when subnormal), the next bit is the
  // guard bit and the rest feed the sticky bit.
  wire [MAX_SHIFT+23:0] wide = {sig, {MAX_SHIFT{1'b0}}} >> shift;
  wire [23:0] kept   = wide[MAX_SHIFT+23:MAX_SHIFT];
  wire        guard  = wide[MAX_SHIFT-1];
  wire        sticky = (wide[MAX_SHIFT-2:0] != {(MAX_SHIFT - 1) {1'b0}});

  // An all-ones te is a normal binade of a finite-only format (fp_round finds its NaN code).
  wire                overflow = normal & ((FINITE_ONLY != 0) ? (te > EMAX9) : (te >= EMAX9));
  wire [EXP_BITS-1:0] exp_field = normal ? te[EXP_BITS-1:0] : {EXP_BITS{1'b0}};
  wire [FW:0]         rounded;
  wire                inexact;
  fp_round #(
      .EXP_BITS   (EXP_BITS),
      .MAN_BITS   (MAN_BITS),
      .FINITE_ONLY(FINITE_ONLY)
  ) u_round (
      .sign    (sign),
      .exp     (exp_field),
      .man     (kept[MAN_BITS-1:0]),
      .guard   (guard),
      .sticky  (sticky),
      .overflow(overflow),
      .y       (rounded),
      .inexact (inexact)
  );

  // Zero and subnormal inputs need no case of their own: their significand rounds to a signed
  // zero (or, for EXP_BITS = 8, to the same subnormal).
  assign y = x_nan ? QNAN :
             x_inf ? {sign, BIG_FIELD} :
             rounded;

  // Hidden bit of a normal result and the rest of the significand: consumed by the packing
  // above (the hidden bit is the exponent field's own contribution); NaN kind and exactness are
  // not needed here.
  wire unused = &{1'b0, kept[23:MAN_BITS], x_zero, x_sub, x_snan, x_qnan, inexact, te[8]};

endmodule
`default_nettype wire
