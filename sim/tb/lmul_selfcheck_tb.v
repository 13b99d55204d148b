`resetall
`timescale 1ns/1ps
`default_nettype none
// lmul_selfcheck_tb: a short self-checking simulation of the design, the FuseSoC core's `sim`
// target (lmul.core; sim/tests/test_fusesoc.py runs it). Icarus only: it has delays and event
// controls, so it lives outside sim/hdl/ (whose wrappers are linted by Verilator without
// --timing). Prints PASS and ends with $finish, or
// prints every mismatch and ends with $fatal (a non-zero exit status, so the run fails).
//
// Every expected value below is worked out by hand from the L-Mul definition in docs/model.md,
// not taken from the RTL or the Python model. BF16 (EXP_BITS 8, MAN_BITS 7, bias 127) with the
// paper's OFFSET for M = 7, 2^(7-4) = 8 LSBs = 2^-4; for normal operands the result field is
//   f = field(a) + field(b) - (127 << 7) + 8,
// i.e. (1 + ma + mb + 2^-4) * 2^(ea + eb) while ma + mb + 2^-4 < 1. BF16 encodings used:
//   1.0 = 3F80, 2.0 = 4000, 4.0 = 4080, 5.0 = 40A0 (1.25 * 2^2), 3.0 = 4040 (1.5 * 2^1),
//   0.5 = 3F00, 1.5 = 3FC0.
//
// Part 1, lmul_core (combinational), one vector per rule of docs/model.md.
// Part 2, a 2 x 2 mac_array tile with K = 2, Y = bias + A . B with
//   A = [[1, 2], [0.5, 5]], B = [[1, 4], [2, 5]], bias = [0, 1]:
//   L-Mul products: 1*1 = 1.0625, 1*4 = 4.25, 2*2 = 4.25, 2*5 = (1 + 0.25 + 0.0625) * 8 = 10.5,
//   0.5*1 = 0.53125, 0.5*4 = 2.125, 5*2 = 10.5, 5*5 = (1 + 0.25 + 0.25 + 0.0625) * 16 = 25;
//   Y[0] = [0 + 1.0625 + 4.25, 1 + 4.25 + 10.5] = [5.3125, 15.75]
//   Y[1] = [0 + 0.53125 + 10.5, 1 + 2.125 + 25] = [11.03125, 28.125]
//   (every partial sum is exact in binary32, so the accumulator's rounding does not enter).
module lmul_selfcheck_tb;
  localparam integer W = 16;  // BF16

  integer errors = 0;

  // ---------------------------------------------------------------- part 1: lmul_core
  reg  [W-1:0] a = 0;
  reg  [W-1:0] b = 0;
  wire [W-1:0] y;
  lmul_core #(.EXP_BITS(8), .MAN_BITS(7)) u_core (.a(a), .b(b), .y(y));

  task check_mul(input [W-1:0] ta, input [W-1:0] tb, input [W-1:0] want);
    begin
      a = ta;
      b = tb;
      #1;
      if (y !== want) begin
        $display("FAIL lmul_core %h x %h = %h, expected %h", ta, tb, y, want);
        errors = errors + 1;
      end
    end
  endtask

  // ---------------------------------------------------------------- part 2: mac_array 2 x 2
  reg clk = 1'b0;
  reg rst = 1'b1;
  reg in_valid = 1'b0;
  reg in_last = 1'b0;
  reg [2*W-1:0] in_a = 0;
  reg [2*W-1:0] in_b = 0;
  reg [63:0] in_bias = 0;
  wire in_ready;
  wire out_valid;
  wire [63:0] out_data;
  wire out_row;
  wire out_last;
  mac_array #(.ROWS(2), .COLS(2), .EXP_BITS(8), .MAN_BITS(7)) u_array (
      .clk(clk), .rst(rst),
      .in_valid(in_valid), .in_ready(in_ready), .in_a(in_a), .in_b(in_b), .in_bias(in_bias),
      .in_last(in_last),
      .out_valid(out_valid), .out_ready(1'b1), .out_data(out_data), .out_row(out_row),
      .out_last(out_last)
  );

  always #5 clk = ~clk;

  // One input beat: column k of A, row k of B (lane 0 in the low bits).
  task send(input [2*W-1:0] col_a, input [2*W-1:0] row_b, input last);
    begin
      in_valid <= 1'b1;
      in_a <= col_a;
      in_b <= row_b;
      in_bias <= {32'h3F800000, 32'h00000000};  // bias = [0.0, 1.0]
      in_last <= last;
      @(posedge clk);
      while (!in_ready) @(posedge clk);
      in_valid <= 1'b0;
    end
  endtask

  // Expected rows of Y, binary32: 5.3125, 15.75 / 11.03125, 28.125.
  wire [63:0] want_row0 = {32'h417C0000, 32'h40AA0000};
  wire [63:0] want_row1 = {32'h41E10000, 32'h41308000};
  integer rows_seen = 0;
  always @(posedge clk) begin
    if (!rst && out_valid) begin
      if (out_row !== rows_seen[0] || out_last !== (rows_seen == 1)
          || out_data !== (rows_seen == 0 ? want_row0 : want_row1)) begin
        $display("FAIL mac_array beat %0d: row %b last %b data %h, expected row %0d data %h",
                 rows_seen, out_row, out_last, out_data, rows_seen,
                 rows_seen == 0 ? want_row0 : want_row1);
        errors = errors + 1;
      end
      rows_seen <= rows_seen + 1;
    end
  end

  initial begin
    // Rule 5, the field sum:
    check_mul(16'h3F80, 16'h3F80, 16'h3F88);  // 1 x 1 = 1 + 2^-4 = 1.0625 (the offset alone)
    check_mul(16'h40A0, 16'h40A0, 16'h41C8);  // 5 x 5 = 25 exactly: exp 131, mantissa 72/128
    check_mul(16'hC000, 16'h4040, 16'hC0C8);  // -2 x 3 = -(1 + 0.5 + 2^-4) * 4 = -6.25
    // 1.5 x 1.5: f = 2 * 3FC0 - 3F80 + 8 = 4008, the mantissa carry lands in the exponent:
    // 2 * (1 + 8/128) = 2.125.
    check_mul(16'h3FC0, 16'h3FC0, 16'h4008);
    check_mul(16'h7F7F, 16'h7F7F, 16'h7F80);  // largest finite squared: overflow -> +Inf
    check_mul(16'h0080, 16'h0080, 16'h0000);  // smallest normal squared: underflow -> +0
    // Rules 1 to 4, the special values:
    check_mul(16'h7FC1, 16'h3F80, 16'h7FC0);  // NaN x 1 -> canonical quiet NaN
    check_mul(16'hFF81, 16'hFF80, 16'h7FC0);  // -sNaN x -Inf -> canonical NaN, sign 0
    check_mul(16'h7F80, 16'h0000, 16'h7FC0);  // Inf x 0 -> NaN
    check_mul(16'h0001, 16'hFF80, 16'h7FC0);  // subnormal x -Inf -> NaN (subnormal counts as 0)
    check_mul(16'hFF80, 16'h4000, 16'hFF80);  // -Inf x 2 -> -Inf
    check_mul(16'h8000, 16'h40A0, 16'h8000);  // -0 x 5 -> -0
    check_mul(16'h0001, 16'h3F80, 16'h0000);  // subnormal x 1 -> +0 (flushed)

    repeat (2) @(posedge clk);
    rst <= 1'b0;
    @(posedge clk);
    send({16'h3F00, 16'h3F80}, {16'h4080, 16'h3F80}, 1'b0);  // k=0: A[.][0] = 1, 0.5; B[0] = 1, 4
    send({16'h40A0, 16'h4000}, {16'h40A0, 16'h4000}, 1'b1);  // k=1: A[.][1] = 2, 5; B[1] = 2, 5
    repeat (40) @(posedge clk);
    if (rows_seen != 2) begin
      $display("FAIL mac_array: %0d output rows, expected 2", rows_seen);
      errors = errors + 1;
    end
    if (errors != 0) $fatal(1, "lmul_selfcheck_tb: %0d check(s) failed", errors);
    $display("PASS lmul_selfcheck_tb: 13 lmul_core vectors, one 2 x 2 mac_array tile");
    $finish;
  end
endmodule
`default_nettype wire
