`resetall
`timescale 1ns/1ps
`default_nettype none
// dot_datapath: the combinational datapath of one fused dot-product PE (dot_pe):
//   y = fp_dot_sum(acc, widen(mul(a_0, b_0)), ..., widen(mul(a_{K-1}, b_{K-1})))
// K products (mul_widen: L-Mul lmul_core or exact fp_mul by MULTIPLIER, widened exactly to
// binary32) and the binary32 accumulator summed in a window of ALIGN_BITS bits below the largest
// term's leading bit and rounded once (RNE); ALIGN_BITS = 276 gives the correctly rounded sum,
// and with K = 1 the sequential step mac_datapath. Contract: docs/dot_product.md, bit-exact with
// lmul.fused_sum_bits.
// Ports: lane i of a and b is a[i*W +: W], b[i*W +: W], W = 1 + EXP_BITS + MAN_BITS; acc and y are
// binary32. K 1..64, ALIGN_BITS 1..276 (fp_dot_sum checks them with TERMS = K + 1); the multiplier
// parameters as in mac_datapath (checked by mul_widen and the modules it uses).
`include "lmul_defs.vh"
module dot_datapath #(
    parameter integer K          = 4,
    parameter integer ALIGN_BITS = 276,
    parameter integer EXP_BITS   = 8,
    parameter integer MAN_BITS   = 7,
    parameter integer OFFSET     = `LMUL_DEFAULT_OFFSET(MAN_BITS),
    parameter integer SATURATE   = 0,
    parameter integer FINITE_ONLY = 0,
    parameter integer MULTIPLIER = 0,
    parameter integer SUBNORMALS = 1
) (
    input  wire [K*(1+EXP_BITS+MAN_BITS)-1:0] a,
    input  wire [K*(1+EXP_BITS+MAN_BITS)-1:0] b,
    input  wire [31:0]                        acc,
    output wire [31:0]                        y
);

  localparam integer W = 1 + EXP_BITS + MAN_BITS;

  generate
    `LMUL_PARAM_CHECK(K >= 1 && K <= 64, g_bad_k, PARAMETER_ERROR__dot_datapath__K_must_be_1_to_64,
                      ("dot_datapath: K=%0d out of range 1..64", K))
  endgenerate

  // Term 0 is the accumulator, term i + 1 the product of lane i.
  wire [(K+1)*32-1:0] terms;
  assign terms[31:0] = acc;

  genvar i;
  generate
    for (i = 0; i < K; i = i + 1) begin : g_lane
      mul_widen #(
          .EXP_BITS  (EXP_BITS),
          .MAN_BITS  (MAN_BITS),
          .OFFSET    (OFFSET),
          .SATURATE  (SATURATE),
          .FINITE_ONLY(FINITE_ONLY),
          .MULTIPLIER(MULTIPLIER),
          .SUBNORMALS(SUBNORMALS)
      ) u_mul (
          .a(a[i*W+:W]),
          .b(b[i*W+:W]),
          .y(terms[(i+1)*32+:32])
      );
    end
  endgenerate

  fp_dot_sum #(
      .TERMS     (K + 1),
      .ALIGN_BITS(ALIGN_BITS)
  ) u_sum (
      .terms(terms),
      .y    (y)
  );

endmodule
`default_nettype wire
