`resetall
`timescale 1ns/1ps
`default_nettype none
// fp_mul_lanes: test-only wrapper, LANES independent fp_mul instances on wide packed ports so the
// cocotb testbench checks LANES vectors per simulation step. Lane k uses bits [k*W +: W].
module fp_mul_lanes #(
    parameter integer EXP_BITS   = 8,
    parameter integer MAN_BITS   = 7,
    parameter integer SUBNORMALS = 1,
    parameter integer FINITE_ONLY = 0,
    parameter integer LANES      = 64
) (
    input  wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0] a_bus,
    input  wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0] b_bus,
    output wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0] y_bus
);

  localparam integer W = 1 + EXP_BITS + MAN_BITS;

  genvar k;
  generate
    for (k = 0; k < LANES; k = k + 1) begin : g_lane
      fp_mul #(
          .EXP_BITS  (EXP_BITS),
          .MAN_BITS  (MAN_BITS),
          .SUBNORMALS (SUBNORMALS),
          .FINITE_ONLY(FINITE_ONLY)
      ) u_mul (
          .a(a_bus[k*W+:W]),
          .b(b_bus[k*W+:W]),
          .y(y_bus[k*W+:W])
      );
    end
  endgenerate

endmodule
`default_nettype wire
