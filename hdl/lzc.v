`resetall
`timescale 1ns/1ps
`default_nettype none
// lzc: leading-zero counter (in the spirit of cvfpu's lzc). Combinational.
//
//   count    = number of zero bits above the most significant one of x, i.e.
//              WIDTH - bit_length(x); WIDTH when x is all zeros
//   all_zero = (x == 0)
// count is $clog2(WIDTH + 1) bits wide (it holds 0 .. WIDTH). WIDTH: 1..1024.
//
// The one leading-zero count of the project's datapaths (fp_mul's normalisation, fp_add's
// normaliser, fmt_to_fp32's subnormal widening). Written as a priority scan: synthesis builds
// the same priority logic as the scans it replaces, and Icarus evaluates it in one pass.
`include "lmul_defs.vh"
module lzc #(
    parameter integer WIDTH = 8
) (
    input  wire [WIDTH-1:0]             x,
    output reg  [$clog2(WIDTH + 1)-1:0] count,
    output wire                         all_zero
);

  generate
    `LMUL_PARAM_CHECK(WIDTH >= 1 && WIDTH <= 1024, g_bad_width,
                      PARAMETER_ERROR__lzc__WIDTH_must_be_1_to_1024,
                      ("lzc: WIDTH=%0d out of range 1..1024", WIDTH))
  endgenerate

  localparam integer COUNT_BITS = $clog2(WIDTH + 1);
  localparam [COUNT_BITS-1:0] WIDTH_C = WIDTH[COUNT_BITS-1:0];

  // The highest set bit is the last one the upward scan sees.
  integer i;
  always @* begin
    count = WIDTH_C;
    for (i = 0; i < WIDTH; i = i + 1) begin
      if (x[i]) count = WIDTH_C - 1'b1 - i[COUNT_BITS-1:0];
    end
  end

  assign all_zero = (x == {WIDTH{1'b0}});

endmodule
`default_nettype wire
