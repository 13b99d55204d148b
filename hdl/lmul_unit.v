`resetall
`timescale 1ns/1ps
`default_nettype none
// lmul_unit: lmul_core behind one register stage with a valid/ready handshake.
//
// Stream rules (docs/hdl.md): a transfer happens on a rising clk edge where valid && ready;
// valid never waits for ready, and once valid is high it and its data stay until the transfer.
//   * out_valid and out_data are registers and never depend on out_ready;
//   * the stage accepts a new operand pair whenever its output register is empty or being
//     emptied in the same cycle (ready = !out_valid || out_ready), so it sustains one result per
//     clock and, under back-pressure, holds out_data/out_valid stable;
//   * SKID = 0: in_ready is that ready, a combinational function of out_ready;
//     SKID = 1: an input-side skid buffer (stream_skid) sits in front of the stage, so in_ready
//     is a register; same throughput, no added latency while out_ready stays high.
// Reset: synchronous, active high (rst). It clears out_valid (and the skid buffer), so no stale
// result is presented after reset; out_data is a data register without reset.
// Parameters: EXP_BITS, MAN_BITS, OFFSET, SATURATE, FINITE_ONLY as in lmul_core; SKID 0 or 1.
`include "lmul_defs.vh"
module lmul_unit #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 7,
    parameter integer OFFSET   = `LMUL_DEFAULT_OFFSET(MAN_BITS),
    parameter integer SATURATE = 0,
    parameter integer FINITE_ONLY = 0,
    parameter integer SKID     = 0
) (
    input  wire                       clk,
    input  wire                       rst,
    input  wire                       in_valid,
    output wire                       in_ready,
    input  wire [EXP_BITS+MAN_BITS:0] in_a,
    input  wire [EXP_BITS+MAN_BITS:0] in_b,
    output reg                        out_valid,
    input  wire                       out_ready,
    output reg  [EXP_BITS+MAN_BITS:0] out_data
);
  localparam integer W = 1 + EXP_BITS + MAN_BITS;

  generate
    `LMUL_PARAM_CHECK(SKID == 0 || SKID == 1, g_bad_skid,
                      PARAMETER_ERROR__lmul_unit__SKID_must_be_0_or_1,
                      ("lmul_unit: SKID=%0d must be 0 or 1", SKID))
  endgenerate

  // The stage's input, after the optional skid buffer.
  wire         s_valid;
  wire         s_ready = ~out_valid | out_ready;
  wire [W-1:0] s_a, s_b;

  stream_skid #(
      .WIDTH(2 * W),
      .SKID (SKID)
  ) u_skid (
      .clk      (clk),
      .rst      (rst),
      .in_valid (in_valid),
      .in_ready (in_ready),
      .in_data  ({in_a, in_b}),
      .out_valid(s_valid),
      .out_ready(s_ready),
      .out_data ({s_a, s_b})
  );

  wire [W-1:0] y;

  lmul_core #(
      .EXP_BITS(EXP_BITS),
      .MAN_BITS(MAN_BITS),
      .OFFSET  (OFFSET),
      .SATURATE   (SATURATE),
      .FINITE_ONLY(FINITE_ONLY)
  ) u_core (
      .a(s_a),
      .b(s_b),
      .y(y)
  );

  always @(posedge clk) begin
    if (rst) begin
      out_valid <= 1'b0;
    end else if (s_ready) begin
      out_valid <= s_valid;
    end
  end

  always @(posedge clk) begin
    if (s_valid && s_ready) begin
      out_data <= y;
    end
  end
endmodule
`default_nettype wire
