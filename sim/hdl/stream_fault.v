`resetall
`timescale 1ns/1ps
`default_nettype none
// stream_fault: a one-register valid/ready stage (out_data = in_data + 1, in_ready as in
// lmul_unit) with an optional, deliberate protocol fault. Test-only: it lets the shared stream
// monitor and scoreboard (sim/lib/stream.py) be seen to fail on a broken design.
//   FAULT = 0: correct;
//           1: out_valid falls after the output has waited one cycle (the result is dropped);
//           2: out_data changes while the output waits;
//           3: a result appears without an input (every 64th cycle, when idle);
//           4: every 8th result is presented twice;
//           5: every 8th accepted input produces no result.
module stream_fault #(
    parameter integer WIDTH = 8,
    parameter integer FAULT = 0
) (
    input  wire             clk,
    input  wire             rst,
    input  wire             in_valid,
    output wire             in_ready,
    input  wire [WIDTH-1:0] in_data,
    output reg              out_valid,
    input  wire             out_ready,
    output reg  [WIDTH-1:0] out_data
);
  generate
    if (FAULT < 0 || FAULT > 5) begin : g_bad_fault
`ifdef VERILATOR
      $error("stream_fault: FAULT=%0d must be 0 to 5", FAULT);
`else
      PARAMETER_ERROR__stream_fault__FAULT_must_be_0_to_5 u_param_error ();
`endif
    end
  endgenerate

  reg [5:0] cycle;     // free-running, for FAULT 3
  reg [2:0] n_out;     // results transferred, mod 8 (FAULT 4)
  reg [2:0] n_in;      // inputs accepted, mod 8 (FAULT 5)
  reg       waited;    // the output waited one cycle already (FAULT 1)
  reg       again;     // the result on the output is a repeat (FAULT 4)

  wire out_fire = out_valid & out_ready;
  wire repeat_now = (FAULT == 4) && out_fire && (n_out == 3'd7) && !again;
  assign in_ready = (~out_valid | out_ready) & ~repeat_now;
  wire in_fire = in_valid & in_ready;

  always @(posedge clk) begin
    if (rst) begin
      out_valid <= 1'b0;
      cycle <= 6'd0;
      n_out <= 3'd0;
      n_in <= 3'd0;
      waited <= 1'b0;
      again <= 1'b0;
    end else begin
      cycle <= cycle + 6'd1;
      if (out_fire) n_out <= n_out + 3'd1;
      if (in_fire) n_in <= n_in + 3'd1;
      again <= repeat_now;
      waited <= out_valid & ~out_ready & ~waited;
      if (repeat_now) begin
        out_valid <= 1'b1;  // present the same result once more
      end else if (in_ready) begin
        out_valid <= in_valid && !(FAULT == 5 && n_in == 3'd7);
        if (in_valid) out_data <= in_data + 1'b1;
      end
      if (FAULT == 1 && out_valid && !out_ready && waited) out_valid <= 1'b0;
      if (FAULT == 2 && out_valid && !out_ready) out_data <= out_data ^ {{(WIDTH-1){1'b0}}, 1'b1};
      if (FAULT == 3 && !out_valid && !in_valid && cycle == 6'd63) begin
        out_valid <= 1'b1;
        out_data <= {WIDTH{1'b1}};
      end
    end
  end
endmodule
`default_nettype wire
