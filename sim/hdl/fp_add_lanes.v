`resetall
`timescale 1ns/1ps
`default_nettype none
// fp_add_lanes: test-only wrapper, LANES independent fp_add instances on packed buses so that a
// cocotb testbench can apply many vectors per simulation step. Lane i uses bits [i*W +: W].
module fp_add_lanes #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 23,
    parameter integer LANES = 32
) (
    input  wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0] a,
    input  wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0] b,
    output wire [LANES*(1+EXP_BITS+MAN_BITS)-1:0] y
);

  localparam integer W = 1 + EXP_BITS + MAN_BITS;

  generate
    if (LANES < 1) begin : g_bad_lanes
`ifdef VERILATOR
      $error("fp_add_lanes: LANES=%0d must be at least 1", LANES);
`else
      PARAMETER_ERROR__fp_add_lanes__LANES_must_be_positive u_param_error ();
`endif
    end
  endgenerate

  genvar g;
  generate
    for (g = 0; g < LANES; g = g + 1) begin : g_lane
      fp_add #(
          .EXP_BITS(EXP_BITS),
          .MAN_BITS(MAN_BITS)
      ) u_add (
          .a(a[g*W+:W]),
          .b(b[g*W+:W]),
          .y(y[g*W+:W])
      );
    end
  endgenerate

endmodule
`default_nettype wire
