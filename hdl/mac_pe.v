`timescale 1ns/1ps
// mac_pe: one processing element of the output-stationary L-Mul MAC array (hdl/mac_array.v).
//
// Holds one binary32 accumulator. Per enabled clock with valid_in = 1 it performs one k-step:
//   base = first_in ? bias_in : acc
//   sum  = fp_add(base, fmt_to_fp32(lmul_core(a_in, b_in)))      (binary32, RNE, canonical NaN)
//   acc <= sum
// The product is the L-Mul result in the operand format, widened exactly to binary32, so the
// accumulation is exactly lmul.matmul's acc = fl32(acc + lmul(a, b)), starting from the bias.
// `sum` is also an output: on the step with last_in = 1 it is the finished dot product, which
// the array captures into its result chain in the same clock edge (acc is then dead until the
// next first step, which ignores it, so no state survives from one tile to the next).
//
// Systolic forwarding: a_in and the step tokens (valid, first, last) go right, b_in and bias_in
// go down, each through one register. Everything holds while en = 0 (array-wide stall).
// rst (synchronous, active high) clears only the token valid bit: data registers need no reset
// because nothing reads them without a valid token.
//
// Operands: {sign, exponent[EXP_BITS], mantissa[MAN_BITS]}; EXP_BITS 2..8, MAN_BITS 1..23,
// OFFSET and SATURATE as in lmul_core (checked there and in fmt_to_fp32).
module mac_pe #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 7,
    parameter integer OFFSET   = (MAN_BITS <= 3) ? 1 :
                                 ((MAN_BITS == 4) ? 2 : (1 << (MAN_BITS - 4))),
    parameter integer SATURATE = 0
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire                       en,
    input  wire [EXP_BITS+MAN_BITS:0] a_in,
    input  wire [EXP_BITS+MAN_BITS:0] b_in,
    input  wire [31:0]                bias_in,
    input  wire                       valid_in,
    input  wire                       first_in,
    input  wire                       last_in,
    output reg  [EXP_BITS+MAN_BITS:0] a_out,
    output reg  [EXP_BITS+MAN_BITS:0] b_out,
    output reg  [31:0]                bias_out,
    output reg                        valid_out,
    output reg                        first_out,
    output reg                        last_out,
    output wire [31:0]                sum
);

  localparam integer W = 1 + EXP_BITS + MAN_BITS;

  wire [W-1:0] prod;
  wire [31:0]  prod32;
  reg  [31:0]  acc;

  lmul_core #(
      .EXP_BITS(EXP_BITS),
      .MAN_BITS(MAN_BITS),
      .OFFSET  (OFFSET),
      .SATURATE(SATURATE)
  ) u_mul (
      .a(a_in),
      .b(b_in),
      .y(prod)
  );

  fmt_to_fp32 #(
      .EXP_BITS(EXP_BITS),
      .MAN_BITS(MAN_BITS)
  ) u_widen (
      .x(prod),
      .y(prod32)
  );

  wire [31:0] base = first_in ? bias_in : acc;

  fp_add #(
      .EXP_BITS(8),
      .MAN_BITS(23)
  ) u_add (
      .a(base),
      .b(prod32),
      .y(sum)
  );

  always @(posedge clk) begin
    if (rst) begin
      valid_out <= 1'b0;
    end else if (en) begin
      valid_out <= valid_in;
    end
  end

  always @(posedge clk) begin
    if (en) begin
      a_out     <= a_in;
      b_out     <= b_in;
      bias_out  <= bias_in;
      first_out <= first_in;
      last_out  <= last_in;
      if (valid_in) acc <= sum;
    end
  end

endmodule
