`resetall
`timescale 1ns/1ps
`default_nettype none
// stream_skid: optional input-side skid buffer of a valid/ready stream (docs/hdl.md).
//
// SKID = 0: a wire: out_* = in_*, in_ready = out_ready (clk and rst unused).
// SKID = 1: one spare register. in_ready = !full is a flip-flop output, so it no longer depends
//   combinationally on out_ready (or on anything downstream). While the spare is empty, beats
//   pass straight through (no added latency: out_valid = in_valid, out_data = in_data); a beat
//   accepted in a cycle where out_ready is low is parked in the spare, in_ready falls in the next
//   cycle, and the parked beat is presented (and held, with its data) until out_ready takes it.
//   Full throughput: with out_ready high every cycle the spare is never used.
// Both directions follow the stream rule: valid never waits for ready, and once valid is high,
// valid and data stay until the transfer. Reset (synchronous, active high) empties the spare.
// WIDTH: data bits, 1..65536.
`include "lmul_defs.vh"
module stream_skid #(
    parameter integer WIDTH = 8,
    parameter integer SKID  = 0
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             in_valid,
    output wire             in_ready,
    input  wire [WIDTH-1:0] in_data,
    output wire             out_valid,
    input  wire             out_ready,
    output wire [WIDTH-1:0] out_data
);

  generate
    `LMUL_PARAM_CHECK(WIDTH >= 1 && WIDTH <= 65536, g_bad_width,
                      PARAMETER_ERROR__stream_skid__WIDTH_must_be_1_to_65536,
                      ("stream_skid: WIDTH=%0d out of range 1..65536", WIDTH))
    `LMUL_PARAM_CHECK(SKID == 0 || SKID == 1, g_bad_skid,
                      PARAMETER_ERROR__stream_skid__SKID_must_be_0_or_1,
                      ("stream_skid: SKID=%0d must be 0 or 1", SKID))

    if (SKID == 1) begin : g_skid
      reg             full;
      reg [WIDTH-1:0] spare;
      always @(posedge clk) begin
        if (rst) full <= 1'b0;
        else if (full) full <= ~out_ready;
        else full <= in_valid & ~out_ready;
      end
      // Loading whenever empty needs no enable from the handshake; the spare is read only when
      // full.
      always @(posedge clk) begin
        if (!full) spare <= in_data;
      end
      assign in_ready  = ~full;
      assign out_valid = full | in_valid;
      assign out_data  = full ? spare : in_data;
    end else begin : g_wire
      assign in_ready  = out_ready;
      assign out_valid = in_valid;
      assign out_data  = in_data;
      wire unused_clk = &{1'b0, clk, rst};
    end
  endgenerate

endmodule
`default_nettype wire
