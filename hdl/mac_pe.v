`resetall
`timescale 1ns/1ps
`default_nettype none
// mac_pe: one processing element of the output-stationary MAC array (hdl/mac_array.v).
//
// Holds one binary32 accumulator. Per enabled clock with in_valid = 1 it performs one k-step:
//   base    = in_first ? in_bias : acc
//   out_sum = mac_datapath(in_a, in_b, base) = fp_add(base, fmt_to_fp32(mul(in_a, in_b)))
//   acc    <= out_sum
// mul is the L-Mul core (MULTIPLIER = 0) or the exact IEEE multiplier (MULTIPLIER = 1), see
// mac_datapath. The product is widened exactly to binary32, so the accumulation is exactly
// lmul.matmul's acc = fl32(acc + mul(a, b)), starting from the bias. out_sum is combinational:
// on the step with in_last = 1 it is the finished dot product, which the array captures into its
// result chain in the same clock edge (acc is then dead until the next first step, which
// ignores it, so no state survives from one tile to the next).
//
// Systolic forwarding: in_a and the step tokens (valid, first, last) go right (out_a,
// out_valid, out_first, out_last), in_b and in_bias go down (out_b, out_bias), each through one
// register. Everything holds while en = 0 (array-wide stall). rst (synchronous, active high)
// clears only the token valid bit: data registers need no reset because nothing reads them
// without a valid token.
//
// Operands: {sign, exponent[EXP_BITS], mantissa[MAN_BITS]}; EXP_BITS 2..8, MAN_BITS 1..23,
// OFFSET, SATURATE, FINITE_ONLY, MULTIPLIER as in mac_datapath (checked there and in the modules
// it uses).
`include "lmul_defs.vh"
module mac_pe #(
    parameter integer EXP_BITS   = 8,
    parameter integer MAN_BITS   = 7,
    parameter integer OFFSET     = `LMUL_DEFAULT_OFFSET(MAN_BITS),
    parameter integer SATURATE   = 0,
    parameter integer FINITE_ONLY = 0,
    parameter integer MULTIPLIER = 0
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire                       en,
    input  wire [EXP_BITS+MAN_BITS:0] in_a,
    input  wire [EXP_BITS+MAN_BITS:0] in_b,
    input  wire [31:0]                in_bias,
    input  wire                       in_valid,
    input  wire                       in_first,
    input  wire                       in_last,
    output reg  [EXP_BITS+MAN_BITS:0] out_a,
    output reg  [EXP_BITS+MAN_BITS:0] out_b,
    output reg  [31:0]                out_bias,
    output reg                        out_valid,
    output reg                        out_first,
    output reg                        out_last,
    output wire [31:0]                out_sum
);

  reg  [31:0] acc;
  wire [31:0] base = in_first ? in_bias : acc;

  mac_datapath #(
      .EXP_BITS  (EXP_BITS),
      .MAN_BITS  (MAN_BITS),
      .OFFSET    (OFFSET),
      .SATURATE  (SATURATE),
      .FINITE_ONLY(FINITE_ONLY),
      .MULTIPLIER(MULTIPLIER)
  ) u_datapath (
      .a  (in_a),
      .b  (in_b),
      .acc(base),
      .y  (out_sum)
  );

  always @(posedge clk) begin
    if (rst) begin
      out_valid <= 1'b0;
    end else if (en) begin
      out_valid <= in_valid;
    end
  end

  always @(posedge clk) begin
    if (en) begin
      out_a     <= in_a;
      out_b     <= in_b;
      out_bias  <= in_bias;
      out_first <= in_first;
      out_last  <= in_last;
      if (in_valid) acc <= out_sum;
    end
  end

endmodule
`default_nettype wire
