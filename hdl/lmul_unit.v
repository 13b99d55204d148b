`timescale 1ns/1ps
// lmul_unit: lmul_core behind one register stage with a valid/ready handshake.
//
// Handshake rules (AXI-Stream style):
//   * a transfer happens on a rising clk edge where valid && ready;
//   * out_valid never depends on out_ready (it is a register);
//   * in_ready = !out_valid || out_ready: the stage accepts a new operand pair whenever its
//     output register is empty or being emptied in the same cycle, so it sustains one result per
//     clock (full throughput) and, under back-pressure, holds out_y/out_valid stable;
//   * in_ready depends combinationally on out_ready (one stage, no skid buffer).
// Reset: synchronous, active high (rst). It clears out_valid, so no stale result is presented
// after reset; out_y is a data register without reset.
module lmul_unit #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 7,
    parameter integer OFFSET   = (MAN_BITS <= 3) ? 1 :
                                 ((MAN_BITS == 4) ? 2 : (1 << (MAN_BITS - 4))),
    parameter integer SATURATE = 0
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire                       in_valid,
    output wire                       in_ready,
    input  wire [EXP_BITS+MAN_BITS:0] in_a,
    input  wire [EXP_BITS+MAN_BITS:0] in_b,
    output reg                        out_valid,
    input  wire                       out_ready,
    output reg  [EXP_BITS+MAN_BITS:0] out_y
);
  wire [EXP_BITS+MAN_BITS:0] y;

  lmul_core #(
      .EXP_BITS(EXP_BITS),
      .MAN_BITS(MAN_BITS),
      .OFFSET  (OFFSET),
      .SATURATE(SATURATE)
  ) u_core (
      .a(in_a),
      .b(in_b),
      .y(y)
  );

  assign in_ready = ~out_valid | out_ready;

  always @(posedge clk) begin
    if (rst) begin
      out_valid <= 1'b0;
    end else if (in_ready) begin
      out_valid <= in_valid;
    end
  end

  always @(posedge clk) begin
    if (in_valid && in_ready) begin
      out_y <= y;
    end
  end
endmodule
