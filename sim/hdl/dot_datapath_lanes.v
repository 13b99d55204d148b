`resetall
`timescale 1ns/1ps
`default_nettype none
// dot_datapath_lanes: test-only wrapper, LANES independent dot_datapath instances on packed buses
// so that a cocotb testbench can apply many fused steps per simulation step. Lane l uses
// a[l*K*W +: K*W], b[l*K*W +: K*W] (its K operand pairs, pair i at bits i*W of those),
// acc[l*32 +: 32] and y[l*32 +: 32]; W = 1 + EXP_BITS + MAN_BITS.
`include "lmul_defs.vh"
module dot_datapath_lanes #(
    parameter integer K          = 4,
    parameter integer ALIGN_BITS = 276,
    parameter integer EXP_BITS   = 8,
    parameter integer MAN_BITS   = 7,
    parameter integer OFFSET     = `LMUL_DEFAULT_OFFSET(MAN_BITS),
    parameter integer SATURATE   = 0,
    parameter integer FINITE_ONLY = 0,
    parameter integer MULTIPLIER = 0,
    parameter integer SUBNORMALS = 1,
    parameter integer LANES      = 8
) (
    input  wire [LANES*K*(1+EXP_BITS+MAN_BITS)-1:0] a,
    input  wire [LANES*K*(1+EXP_BITS+MAN_BITS)-1:0] b,
    input  wire [LANES*32-1:0]                      acc,
    output wire [LANES*32-1:0]                      y
);

  localparam integer KW = K * (1 + EXP_BITS + MAN_BITS);

  generate
    `LMUL_PARAM_CHECK(LANES >= 1, g_bad_lanes,
                      PARAMETER_ERROR__dot_datapath_lanes__LANES_must_be_positive,
                      ("dot_datapath_lanes: LANES=%0d must be at least 1", LANES))
  endgenerate

  genvar g;
  generate
    for (g = 0; g < LANES; g = g + 1) begin : g_lane
      dot_datapath #(
          .K         (K),
          .ALIGN_BITS(ALIGN_BITS),
          .EXP_BITS  (EXP_BITS),
          .MAN_BITS  (MAN_BITS),
          .OFFSET    (OFFSET),
          .SATURATE  (SATURATE),
          .FINITE_ONLY(FINITE_ONLY),
          .MULTIPLIER(MULTIPLIER),
          .SUBNORMALS(SUBNORMALS)
      ) u_dot (
          .a  (a[g*KW+:KW]),
          .b  (b[g*KW+:KW]),
          .acc(acc[g*32+:32]),
          .y  (y[g*32+:32])
      );
    end
  endgenerate

endmodule
`default_nettype wire
