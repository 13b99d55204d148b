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
// normaliser, fmt_to_fp32's subnormal widening, fp_dot_sum's normaliser). Logarithmic
// normaliser: x followed by one sentinel one (WIDTH + 1 bits) is shifted left by 2^k whenever
// its top 2^k bits are zero, k = COUNT_BITS-1 .. 0, and those shifts add up to the count. The
// sentinel stops an all-zero x at WIDTH; since count < 2^COUNT_BITS, the stages find it exactly,
// and every stage fits (2^(COUNT_BITS-1) <= WIDTH). (COUNT_BITS stages of whole-word operations:
// Icarus evaluates this several times faster than a bit-by-bit priority scan, and no padding to
// 2^COUNT_BITS bits keeps Verilator's wide words few, e.g. at fp_dot_sum's 284 bits.)
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

  reg [WIDTH:0] v;
  integer k;
  always @* begin
    v = {x, 1'b1};
    count = {COUNT_BITS{1'b0}};
    for (k = COUNT_BITS - 1; k >= 0; k = k - 1) begin
      if ((v >> (WIDTH + 1 - (1 << k))) == {(WIDTH + 1) {1'b0}}) begin
        v = v << (1 << k);
        count[k] = 1'b1;
      end
    end
  end

  assign all_zero = (x == {WIDTH{1'b0}});

endmodule
`default_nettype wire
