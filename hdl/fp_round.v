`resetall
`timescale 1ns/1ps
`default_nettype none
// fp_round: the one round-to-nearest-even step of the project's floating-point datapaths
// (fp_add, fp_mul and the binary32 -> format converter). Combinational.
//
// Format: {sign, exponent[EXP_BITS], mantissa[MAN_BITS]}, IEEE-style; EXP_BITS 2..11,
// MAN_BITS 1..52. The caller delivers the result truncated to the format plus the two bits RNE
// needs:
//   sign      sign of the result;
//   exp       biased exponent field before rounding (0 for a subnormal result: the caller has
//             already shifted the significand right to the subnormal scale);
//   man       the MAN_BITS fraction bits kept (hidden bit not included);
//   guard     the first bit below man's LSB;
//   sticky    OR of every bit below guard;
//   overflow  the exponent is already beyond the largest finite one: the result is Inf (an exp
//             of all ones counts as overflow too).
// The rounded magnitude is {exp, man} + round_up with round_up = guard & (sticky | man[0]): one
// increment of the packed word, so a mantissa carry moves into the exponent (a subnormal rounds
// up to the smallest normal, the largest finite value rounds up to exactly the Inf encoding).
// No saturation: overflow, before or after rounding, gives Inf with the given sign. NaN and the
// other special operands are the caller's business (it selects them after this module).
// FINITE_ONLY = 1 (no Inf; fp_classify): an exp of all ones is a normal binade; overflow (the
// flag, a packed {exp, man} of all ones, or a rounding carry reaching it) gives the format's NaN
// code {sign, all ones} with the given sign; callers that want the canonical NaN select it.
// inexact = guard | sticky (the result differs from the exact value).
`include "lmul_defs.vh"
module fp_round #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 23,
    parameter integer FINITE_ONLY = 0
) (
    input  wire                       sign,
    input  wire [EXP_BITS-1:0]        exp,
    input  wire [MAN_BITS-1:0]        man,
    input  wire                       guard,
    input  wire                       sticky,
    input  wire                       overflow,
    output wire [EXP_BITS+MAN_BITS:0] y,
    output wire                       inexact
);

  generate
    `LMUL_PARAM_CHECK(EXP_BITS >= 2 && EXP_BITS <= 11, g_bad_exp_bits,
                      PARAMETER_ERROR__fp_round__EXP_BITS_must_be_2_to_11,
                      ("fp_round: EXP_BITS=%0d out of range 2..11", EXP_BITS))
    `LMUL_PARAM_CHECK(MAN_BITS >= 1 && MAN_BITS <= 52, g_bad_man_bits,
                      PARAMETER_ERROR__fp_round__MAN_BITS_must_be_1_to_52,
                      ("fp_round: MAN_BITS=%0d out of range 1..52", MAN_BITS))
    `LMUL_PARAM_CHECK(FINITE_ONLY == 0 || FINITE_ONLY == 1, g_bad_finite_only,
                      PARAMETER_ERROR__fp_round__FINITE_ONLY_must_be_0_or_1,
                      ("fp_round: FINITE_ONLY=%0d must be 0 or 1", FINITE_ONLY))
  endgenerate

  localparam integer FW = EXP_BITS + MAN_BITS;
  localparam [FW-1:0] INF_FIELD = {{EXP_BITS{1'b1}}, {MAN_BITS{1'b0}}};

  wire          round_up = guard & (sticky | man[0]);
  wire [FW-1:0] mag = {exp, man} + {{(FW - 1) {1'b0}}, round_up};

  generate
    if (FINITE_ONLY != 0) begin : g_finite_only
      // {exp, man} all ones (already NaN) rounds up to a wrapped mag, so it is tested itself.
      assign y = {sign, (overflow | (&{exp, man}) | (&mag)) ? {FW{1'b1}} : mag};
    end else begin : g_ieee
      assign y = {sign, (overflow | (&exp)) ? INF_FIELD : mag};
    end
  endgenerate
  assign inexact = guard | sticky;

endmodule
`default_nettype wire
