`resetall
`timescale 1ns/1ps
`default_nettype none
// Test-only wrapper: LANES independent lmul_core instances on packed buses, so that a cocotb
// testbench checks LANES vectors per simulation step (lane i occupies bits [i*W +: W]).
`include "lmul_defs.vh"
module lmul_core_lanes #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 7,
    parameter integer OFFSET   = `LMUL_DEFAULT_OFFSET(MAN_BITS),
    parameter integer SATURATE = 0,
    parameter integer FINITE_ONLY = 0,
    parameter integer LANES    = 16
) (
    input  wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0] a_bus,
    input  wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0] b_bus,
    output wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0] y_bus
);
  localparam integer W = 1 + EXP_BITS + MAN_BITS;
  genvar i;
  generate
    for (i = 0; i < LANES; i = i + 1) begin : g_lane
      lmul_core #(
          .EXP_BITS(EXP_BITS),
          .MAN_BITS(MAN_BITS),
          .OFFSET  (OFFSET),
          .SATURATE(SATURATE),
          .FINITE_ONLY(FINITE_ONLY)
      ) u_core (
          .a(a_bus[i*W +: W]),
          .b(b_bus[i*W +: W]),
          .y(y_bus[i*W +: W])
      );
    end
  endgenerate
endmodule
`default_nettype wire
