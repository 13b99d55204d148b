`resetall
`timescale 1ns/1ps
`default_nettype none
// Test-only wrapper: LANES fp_to_fmt instances for each of several formats in one module, so one
// simulation checks them all (lane i of format eXmY: x_eXmY[i*32 +: 32] -> y_eXmY[i*W +: W]).
// Formats: E=8 M=7, E=5 M=10, E=4 M=3, E=5 M=2, E=8 M=23, E=2 M=1, E=7 M=23, E=6 M=4.
module fp_to_fmt_formats #(
    parameter integer LANES = 32
) (
    input  wire [LANES*32-1:0] x_e8m7,
    output wire [LANES*16-1:0] y_e8m7,
    input  wire [LANES*32-1:0] x_e5m10,
    output wire [LANES*16-1:0] y_e5m10,
    input  wire [LANES*32-1:0] x_e4m3,
    output wire [LANES*8-1:0] y_e4m3,
    input  wire [LANES*32-1:0] x_e5m2,
    output wire [LANES*8-1:0] y_e5m2,
    input  wire [LANES*32-1:0] x_e8m23,
    output wire [LANES*32-1:0] y_e8m23,
    input  wire [LANES*32-1:0] x_e2m1,
    output wire [LANES*4-1:0] y_e2m1,
    input  wire [LANES*32-1:0] x_e7m23,
    output wire [LANES*31-1:0] y_e7m23,
    input  wire [LANES*32-1:0] x_e6m4,
    output wire [LANES*11-1:0] y_e6m4
);
  genvar i;
  generate
    for (i = 0; i < LANES; i = i + 1) begin : g_lane
      fp_to_fmt #(.EXP_BITS(8), .MAN_BITS(7)) u_e8m7 (
          .x(x_e8m7[i*32 +: 32]),
          .y(y_e8m7[i*16 +: 16])
      );
      fp_to_fmt #(.EXP_BITS(5), .MAN_BITS(10)) u_e5m10 (
          .x(x_e5m10[i*32 +: 32]),
          .y(y_e5m10[i*16 +: 16])
      );
      fp_to_fmt #(.EXP_BITS(4), .MAN_BITS(3)) u_e4m3 (
          .x(x_e4m3[i*32 +: 32]),
          .y(y_e4m3[i*8 +: 8])
      );
      fp_to_fmt #(.EXP_BITS(5), .MAN_BITS(2)) u_e5m2 (
          .x(x_e5m2[i*32 +: 32]),
          .y(y_e5m2[i*8 +: 8])
      );
      fp_to_fmt #(.EXP_BITS(8), .MAN_BITS(23)) u_e8m23 (
          .x(x_e8m23[i*32 +: 32]),
          .y(y_e8m23[i*32 +: 32])
      );
      fp_to_fmt #(.EXP_BITS(2), .MAN_BITS(1)) u_e2m1 (
          .x(x_e2m1[i*32 +: 32]),
          .y(y_e2m1[i*4 +: 4])
      );
      fp_to_fmt #(.EXP_BITS(7), .MAN_BITS(23)) u_e7m23 (
          .x(x_e7m23[i*32 +: 32]),
          .y(y_e7m23[i*31 +: 31])
      );
      fp_to_fmt #(.EXP_BITS(6), .MAN_BITS(4)) u_e6m4 (
          .x(x_e6m4[i*32 +: 32]),
          .y(y_e6m4[i*11 +: 11])
      );
    end
  endgenerate
endmodule
`default_nettype wire
