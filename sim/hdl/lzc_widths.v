`resetall
`timescale 1ns/1ps
`default_nettype none
// lzc_widths: test-only wrapper, LANES counters of every WIDTH 1..MAX_WIDTH on packed buses, so
// the cocotb testbench checks LANES inputs of every width per simulation step.
// Counter k of width w reads x_bus[LANES*w*(w-1)/2 + k*w +: w] (the inputs of width w follow
// those of width w-1) and drives count_bus[s*COUNT_BITS +: COUNT_BITS] (zero-extended) and
// zero_bus[s] with s = (w-1)*LANES + k.
module lzc_widths #(
    parameter integer MAX_WIDTH = 24,
    parameter integer LANES     = 64
) (
    input  wire [LANES*MAX_WIDTH*(MAX_WIDTH+1)/2-1:0]       x_bus,
    output wire [MAX_WIDTH*LANES*$clog2(MAX_WIDTH + 1)-1:0] count_bus,
    output wire [MAX_WIDTH*LANES-1:0]                       zero_bus
);

  localparam integer COUNT_BITS = $clog2(MAX_WIDTH + 1);

  genvar k, w;
  generate
    for (w = 1; w <= MAX_WIDTH; w = w + 1) begin : g_width
      localparam integer CB = $clog2(w + 1);
      for (k = 0; k < LANES; k = k + 1) begin : g_lane
        localparam integer SLOT = (w - 1) * LANES + k;
        localparam integer XO = LANES * w * (w - 1) / 2 + k * w;
        wire [CB-1:0] count;
        lzc #(
            .WIDTH(w)
        ) u_lzc (
            .x       (x_bus[XO +: w]),
            .count   (count),
            .all_zero(zero_bus[SLOT])
        );
        if (CB == COUNT_BITS) begin : g_full
          assign count_bus[SLOT*COUNT_BITS +: COUNT_BITS] = count;
        end else begin : g_pad
          assign count_bus[SLOT*COUNT_BITS +: COUNT_BITS] = {{(COUNT_BITS - CB) {1'b0}}, count};
        end
      end
    end
  endgenerate

endmodule
`default_nettype wire
