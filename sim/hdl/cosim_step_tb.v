`resetall
`timescale 1ns/1ps
`default_nettype none
// Test-only wrapper for the LSTM step co-simulation in Icarus (sim/cosim_step.py): the RTL of
// one hardware variant side by side, as the Verilator path of experiments/cosim.py uses it.
//   mac_array (ports passed through unchanged): the gate and head products;
//   LANES fp_to_fmt:   cvt_x[i*32 +: 32] -> cvt_y[i*W +: W]   (binary32 -> format, RNE)
//   LANES multipliers: mul_a, mul_b -> mul_y (lmul_core if MULTIPLIER = 0, fp_mul otherwise)
//   LANES fmt_to_fp32: wid_x[i*W +: W] -> wid_y[i*32 +: 32]
//   LANES fp_add:      add_a, add_b -> add_y (binary32)
`include "lmul_defs.vh"
module cosim_step_tb #(
    parameter integer ROWS       = 4,
    parameter integer COLS       = 4,
    parameter integer EXP_BITS   = 8,
    parameter integer MAN_BITS   = 7,
    parameter integer OFFSET     = `LMUL_DEFAULT_OFFSET(MAN_BITS),
    parameter integer SATURATE   = 0,
    parameter integer FINITE_ONLY = 0,
    parameter integer MULTIPLIER = 0,
    parameter integer LANES      = 128
) (
    input  wire                                      clk,
    input  wire                                      rst,
    input  wire                                      in_valid,
    output wire                                      in_ready,
    input  wire [ROWS*(1+EXP_BITS+MAN_BITS)-1:0]     in_a,
    input  wire [COLS*(1+EXP_BITS+MAN_BITS)-1:0]     in_b,
    input  wire [COLS*32-1:0]                        in_bias,
    input  wire                                      in_last,
    output wire                                      out_valid,
    input  wire                                      out_ready,
    output wire [COLS*32-1:0]                        out_data,
    output wire [((ROWS > 1) ? $clog2(ROWS) : 1)-1:0] out_row,
    output wire                                      out_last,
    input  wire [LANES*32-1:0]                       cvt_x,
    output wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0]    cvt_y,
    input  wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0]    mul_a,
    input  wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0]    mul_b,
    output wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0]    mul_y,
    input  wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0]    wid_x,
    output wire [LANES*32-1:0]                       wid_y,
    input  wire [LANES*32-1:0]                       add_a,
    input  wire [LANES*32-1:0]                       add_b,
    output wire [LANES*32-1:0]                       add_y
);
  localparam integer W = 1 + EXP_BITS + MAN_BITS;

  mac_array #(
      .ROWS      (ROWS),
      .COLS      (COLS),
      .EXP_BITS  (EXP_BITS),
      .MAN_BITS  (MAN_BITS),
      .OFFSET    (OFFSET),
      .SATURATE  (SATURATE),
      .FINITE_ONLY(FINITE_ONLY),
      .MULTIPLIER(MULTIPLIER)
  ) u_array (
      .clk      (clk),
      .rst      (rst),
      .in_valid (in_valid),
      .in_ready (in_ready),
      .in_a     (in_a),
      .in_b     (in_b),
      .in_bias  (in_bias),
      .in_last  (in_last),
      .out_valid(out_valid),
      .out_ready(out_ready),
      .out_data (out_data),
      .out_row  (out_row),
      .out_last (out_last)
  );

  genvar i;
  generate
    for (i = 0; i < LANES; i = i + 1) begin : g_lane
      fp_to_fmt #(.EXP_BITS(EXP_BITS), .MAN_BITS(MAN_BITS), .FINITE_ONLY(FINITE_ONLY)) u_cvt (
          .x(cvt_x[i*32 +: 32]),
          .y(cvt_y[i*W +: W])
      );
      if (MULTIPLIER == 0) begin : g_lmul
        lmul_core #(
            .EXP_BITS(EXP_BITS),
            .MAN_BITS(MAN_BITS),
            .OFFSET  (OFFSET),
            .SATURATE(SATURATE),
            .FINITE_ONLY(FINITE_ONLY)
        ) u_mul (
            .a(mul_a[i*W +: W]),
            .b(mul_b[i*W +: W]),
            .y(mul_y[i*W +: W])
        );
      end else begin : g_exact
        fp_mul #(.EXP_BITS(EXP_BITS), .MAN_BITS(MAN_BITS), .SUBNORMALS(1),
                 .FINITE_ONLY(FINITE_ONLY)) u_mul (
            .a(mul_a[i*W +: W]),
            .b(mul_b[i*W +: W]),
            .y(mul_y[i*W +: W])
        );
      end
      fmt_to_fp32 #(.EXP_BITS(EXP_BITS), .MAN_BITS(MAN_BITS), .FINITE_ONLY(FINITE_ONLY)) u_wid (
          .x(wid_x[i*W +: W]),
          .y(wid_y[i*32 +: 32])
      );
      fp_add #(.EXP_BITS(8), .MAN_BITS(23)) u_add (
          .a(add_a[i*32 +: 32]),
          .b(add_b[i*32 +: 32]),
          .y(add_y[i*32 +: 32])
      );
    end
  endgenerate
endmodule
`default_nettype wire
