`resetall
`timescale 1ns/1ps
`default_nettype none
// Test-only wrapper: LANES fp_to_fmt (binary32 -> format, RNE) and LANES fmt_to_fp32 (format ->
// binary32) instances of one format, so one simulation checks both directions of a format such
// as the OCP E4M3FN (FINITE_ONLY = 1). Lane i: cvt_x[i*32 +: 32] -> cvt_y[i*W +: W] and
// wid_x[i*W +: W] -> wid_y[i*32 +: 32], W = 1 + EXP_BITS + MAN_BITS.
module fp8_convert_lanes #(
    parameter integer EXP_BITS    = 4,
    parameter integer MAN_BITS    = 3,
    parameter integer FINITE_ONLY = 1,
    parameter integer LANES       = 32
) (
    input  wire [LANES*32-1:0]                  cvt_x,
    output wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0] cvt_y,
    input  wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0] wid_x,
    output wire [LANES*32-1:0]                  wid_y
);
  localparam integer W = 1 + EXP_BITS + MAN_BITS;
  genvar i;
  generate
    for (i = 0; i < LANES; i = i + 1) begin : g_lane
      fp_to_fmt #(
          .EXP_BITS   (EXP_BITS),
          .MAN_BITS   (MAN_BITS),
          .FINITE_ONLY(FINITE_ONLY)
      ) u_cvt (
          .x(cvt_x[i*32 +: 32]),
          .y(cvt_y[i*W +: W])
      );
      fmt_to_fp32 #(
          .EXP_BITS   (EXP_BITS),
          .MAN_BITS   (MAN_BITS),
          .FINITE_ONLY(FINITE_ONLY)
      ) u_wid (
          .x(wid_x[i*W +: W]),
          .y(wid_y[i*32 +: 32])
      );
    end
  endgenerate
endmodule
`default_nettype wire
