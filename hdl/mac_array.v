`resetall
`timescale 1ns/1ps
`default_nettype none
// mac_array: ROWS x COLS output-stationary systolic array of L-Mul MAC processing elements.
//
// One tile computes Y = bias + A . B with A [ROWS x K], B [K x COLS] in the L-Mul operand format
// {sign, exponent[EXP_BITS], mantissa[MAN_BITS]} and bias [COLS], Y [ROWS x COLS] in binary32:
//   acc = bias[c]; for k = 0 .. K-1: acc = fl32(acc + widen(mul(A[r][k], B[k][c]))) -> Y[r][c]
// bit for bit as lmul.matmul(A, B, bias, cfg, multiplier=...), where mul is L-Mul (MULTIPLIER = 0,
// "lmul") or the exact IEEE product (MULTIPLIER = 1, "exact"); see mac_datapath. K >= 1 is a
// run-time length (the number of input beats of the tile). FINITE_ONLY = 1: the operands are in
// the OCP "FN" encoding (float8_e4m3fn with EXP_BITS = 4, MAN_BITS = 3; docs/formats.md).
// Full description and timing diagram: docs/mac_array.md; stream rules and SKID: docs/hdl.md.
//
// DOT_K > 1 (1..64) puts fused dot-product PEs (dot_pe, docs/dot_product.md) in the grid: each
// beat carries DOT_K k-steps, each PE sums DOT_K products and its accumulator in a window of
// ALIGN_BITS bits (1..276; ignored with DOT_K = 1) and rounds once, bit for bit as
// lmul.matmul(..., accumulate=lmul.Fused(DOT_K, ALIGN_BITS)). A beat's operands are then
// in_a[(r*DOT_K + i)*W0 +: W0] = A[r][DOT_K*j + i], in_b[(c*DOT_K + i)*W0 +: W0] =
// B[DOT_K*j + i][c] for beat j (W0 = 1 + EXP_BITS + MAN_BITS; a final partial chunk is padded
// with +0 operands), and every timing statement below holds with K = the number of beats,
// ceil(K / DOT_K). DOT_K = 1 is the sequential mac_pe, unchanged.
//
// PIPELINE (0..3, DOT_K > 1 only; must be 0 with DOT_K = 1, where mac_pe has no pipeline) is the
// fused PEs' dot_pe PIPELINE: 0 single stage; 1 products registered; 2 products pre-aligned and
// registered; 3 both. Same bits and throughput; a PE's finished sum then comes out one (1, 2) or
// two (3) enabled cycles after its last step, so the result chain captures it from the PE's
// output tokens (out_valid & out_last), or from one more delayed copy of them (3), instead of its
// input tokens, and the latency below grows by those cycles (LAT_EXTRA).
//
// Input stream (valid/ready), one k-step per beat:
//   in_a[r*W +: W]      = A[r][k]       (column k of A)
//   in_b[c*W +: W]      = B[k][c]       (row k of B)
//   in_bias[c*32 +: 32] = bias[c]       (binary32; sampled only on the first beat of a tile)
//   in_last             = 1 on the tile's last beat (k = K-1); the next beat starts a new tile.
// Output stream (valid/ready), one row of Y per beat, rows 0 .. ROWS-1 in order, tiles in order:
//   out_data[c*32 +: 32] = Y[r][c],  out_row = r,  out_last = (r == ROWS-1).
// SKID = 0: in_ready depends on registers and on in_last only (a last beat may be held back, see
// "gap" below); SKID = 1 puts an input-side skid buffer (stream_skid) in front, so in_ready is a
// register. out_valid, out_data, out_row and out_last depend on registers only. Synchronous
// active-high rst clears every valid bit and the tile-start state at any time: the next accepted
// beat is the first k-step of a fresh tile, and no partial or undrained result survives.
//
// Structure: inputs enter skew registers (row r of A delayed r+1 cycles, column c of B and bias
// delayed c+1 cycles) so that PE(r,c) performs k-step k in cycle t_k + 1 + r + c. The step tokens
// (valid, first, last) ride with A. When PE(r,c) performs the last step, its sum is appended to
// the row's result chain (chain(r,c) = {sum(r,c), chain(r,c-1)}), which moves one column per
// cycle exactly like the wavefront; at the last column the whole row lands in the row's result
// register R[r]. Output beats drain R[0], R[1], ... in order. A tile's last beat is accepted only
// ROWS or more cycles after the previous tile's last beat (the drain moves one row per cycle, so
// tiles shorter than ROWS k-steps are drain-bound anyway). The only stall is a completed row
// arriving at a still-occupied R[r] (output back-pressure); it freezes the whole array for that
// cycle. Input bubbles (in_valid = 0) do not stall: they flow through as invalid tokens.
// Latency: first beat accepted in cycle 0 -> last output row presented in cycle
// K + ROWS + COLS + LAT_EXTRA - 1 (K + ROWS + COLS + LAT_EXTRA cycles per isolated tile;
// LAT_EXTRA = 0, 1, 1, 2 for PIPELINE = 0, 1, 2, 3); back-to-back tiles need max(K, ROWS)
// cycles each.
`include "lmul_defs.vh"
module mac_array #(
    parameter integer ROWS       = 4,
    parameter integer COLS       = 4,
    parameter integer EXP_BITS   = 8,
    parameter integer MAN_BITS   = 7,
    parameter integer OFFSET     = `LMUL_DEFAULT_OFFSET(MAN_BITS),
    parameter integer SATURATE   = 0,
    parameter integer FINITE_ONLY = 0,
    parameter integer MULTIPLIER = 0,
    parameter integer SKID       = 0,
    parameter integer DOT_K      = 1,
    parameter integer ALIGN_BITS = 276,
    parameter integer PIPELINE   = 0
) (
    input  wire                                      clk,
    input  wire                                      rst,
    // input stream
    input  wire                                      in_valid,
    output wire                                      in_ready,
    input  wire [ROWS*DOT_K*(1+EXP_BITS+MAN_BITS)-1:0] in_a,
    input  wire [COLS*DOT_K*(1+EXP_BITS+MAN_BITS)-1:0] in_b,
    input  wire [COLS*32-1:0]                        in_bias,
    input  wire                                      in_last,
    // output stream
    output wire                                      out_valid,
    input  wire                                      out_ready,
    output wire [COLS*32-1:0]                        out_data,
    output wire [((ROWS > 1) ? $clog2(ROWS) : 1)-1:0] out_row,
    output wire                                      out_last
);

  generate
    `LMUL_PARAM_CHECK(ROWS >= 1 && ROWS <= 64, g_bad_rows,
                      PARAMETER_ERROR__mac_array__ROWS_must_be_1_to_64,
                      ("mac_array: ROWS=%0d out of range 1..64", ROWS))
    `LMUL_PARAM_CHECK(COLS >= 1 && COLS <= 64, g_bad_cols,
                      PARAMETER_ERROR__mac_array__COLS_must_be_1_to_64,
                      ("mac_array: COLS=%0d out of range 1..64", COLS))
    `LMUL_PARAM_CHECK(MULTIPLIER == 0 || MULTIPLIER == 1, g_bad_multiplier,
                      PARAMETER_ERROR__mac_array__MULTIPLIER_must_be_0_or_1,
                      ("mac_array: MULTIPLIER=%0d must be 0 (L-Mul) or 1 (exact)", MULTIPLIER))
    `LMUL_PARAM_CHECK(SKID == 0 || SKID == 1, g_bad_skid,
                      PARAMETER_ERROR__mac_array__SKID_must_be_0_or_1,
                      ("mac_array: SKID=%0d must be 0 or 1", SKID))
    `LMUL_PARAM_CHECK(DOT_K >= 1 && DOT_K <= 64, g_bad_dot_k,
                      PARAMETER_ERROR__mac_array__DOT_K_must_be_1_to_64,
                      ("mac_array: DOT_K=%0d out of range 1..64", DOT_K))
    // Checked here too, so that a bad value never passes silently with the sequential PE.
    `LMUL_PARAM_CHECK(ALIGN_BITS >= 1 && ALIGN_BITS <= 276, g_bad_align_bits,
                      PARAMETER_ERROR__mac_array__ALIGN_BITS_must_be_1_to_276,
                      ("mac_array: ALIGN_BITS=%0d out of range 1..276", ALIGN_BITS))
    `LMUL_PARAM_CHECK(PIPELINE >= 0 && PIPELINE <= 3, g_bad_pipeline,
                      PARAMETER_ERROR__mac_array__PIPELINE_must_be_0_to_3,
                      ("mac_array: PIPELINE=%0d must be 0, 1, 2 or 3", PIPELINE))
    // The sequential PE has no pipeline: a nonzero value there would be silently ignored.
    `LMUL_PARAM_CHECK(DOT_K > 1 || PIPELINE == 0, g_bad_seq_pipeline,
                      PARAMETER_ERROR__mac_array__PIPELINE_needs_DOT_K_above_1,
                      ("mac_array: PIPELINE=%0d needs DOT_K > 1 (the sequential PE has none)",
                       PIPELINE))
  endgenerate

  // One operand slot of a PE: DOT_K words (one word with the sequential PE).
  localparam integer W = DOT_K * (1 + EXP_BITS + MAN_BITS);
  localparam integer PTR_BITS = (ROWS > 1) ? $clog2(ROWS) : 1;  // drain pointer (row index)
  // Result chain of one row: chain(r,c) holds c+1 binary32 lanes; CHAIN_BITS bits per row.
  localparam integer CHAIN_BITS = 32 * COLS * (COLS + 1) / 2;
  localparam integer LAST_ROW = ROWS - 1;
  localparam [PTR_BITS-1:0] LAST_PTR = LAST_ROW[PTR_BITS-1:0];
  localparam integer GAP_BITS = $clog2(ROWS + 1);  // gap counter, saturating at ROWS
  localparam [GAP_BITS-1:0] ROWS_GAP = ROWS[GAP_BITS-1:0];
  localparam [GAP_BITS-1:0] ONE_GAP = 1;

  // ---------------------------------------------------------------- optional input skid buffer
  // s_* is the input stream after it: with SKID = 1, in_ready is a register instead of a function
  // of the array state and of in_last.
  wire                 s_valid;
  wire                 s_ready;
  wire [ROWS*W-1:0]    s_a;
  wire [COLS*W-1:0]    s_b;
  wire [COLS*32-1:0]   s_bias;
  wire                 s_last;

  stream_skid #(
      .WIDTH(ROWS * W + COLS * W + COLS * 32 + 1),
      .SKID (SKID)
  ) u_skid (
      .clk      (clk),
      .rst      (rst),
      .in_valid (in_valid),
      .in_ready (in_ready),
      .in_data  ({in_a, in_b, in_bias, in_last}),
      .out_valid(s_valid),
      .out_ready(s_ready),
      .out_data ({s_a, s_b, s_bias, s_last})
  );

  // Array-wide clock enable; everything that moves holds while a finished row cannot be stored.
  wire en;
  wire fire = s_valid & s_ready;

  // ---------------------------------------------------------------- tile framing
  reg in_first_q;  // the next accepted beat is k = 0 of a tile
  always @(posedge clk) begin
    if (rst) in_first_q <= 1'b1;
    else if (fire) in_first_q <= s_last;
  end

  // ---------------------------------------------------------------- token skew (shared by rows)
  // tok_*[j] is the input token delayed j+1 enabled cycles; row r's PE(r,0) uses tap r.
  reg [ROWS-1:0] tok_v;
  reg [ROWS-1:0] tok_f;
  reg [ROWS-1:0] tok_l;
  generate
    if (ROWS == 1) begin : g_tok1
      always @(posedge clk) begin
        if (rst) tok_v <= 1'b0;
        else if (en) tok_v <= fire;
      end
      always @(posedge clk) begin
        if (en) begin
          tok_f <= in_first_q;
          tok_l <= s_last;
        end
      end
    end else begin : g_tokn
      always @(posedge clk) begin
        if (rst) tok_v <= {ROWS{1'b0}};
        else if (en) tok_v <= {tok_v[ROWS-2:0], fire};
      end
      always @(posedge clk) begin
        if (en) begin
          tok_f <= {tok_f[ROWS-2:0], in_first_q};
          tok_l <= {tok_l[ROWS-2:0], s_last};
        end
      end
    end
  endgenerate

  // ---------------------------------------------------------------- PE interconnect
  // Horizontal: (ROWS) x (COLS+1) slots, slot (r, c) feeds PE(r,c); slot (r, COLS) is the
  // unused output of the last column. Vertical: (ROWS+1) x COLS slots, same idea downwards.
  wire [ROWS*(COLS+1)*W-1:0] a_h;
  wire [ROWS*(COLS+1)-1:0]   v_h;
  wire [ROWS*(COLS+1)-1:0]   f_h;
  wire [ROWS*(COLS+1)-1:0]   l_h;
  wire [(ROWS+1)*COLS*W-1:0]  b_v;
  wire [(ROWS+1)*COLS*32-1:0] bias_v;
  wire [ROWS*COLS*32-1:0]     sum_w;
  wire [ROWS*CHAIN_BITS-1:0]  chain_w;
  wire [ROWS*COLS*32-1:0]     res_bus;   // R[r] at [r*COLS*32 +: COLS*32]
  wire [ROWS-1:0]             row_done;  // PE(r,COLS-1) performs a tile's last step this cycle
  reg  [ROWS-1:0]             res_valid;

  genvar r, c;
  generate
    // Left edge: A lane r delayed r+1 cycles.
    for (r = 0; r < ROWS; r = r + 1) begin : g_askew
      reg [(r+1)*W-1:0] sk;  // newest in the low lane
      if (r == 0) begin : g_d1
        always @(posedge clk) if (en) sk <= s_a[W-1:0];
      end else begin : g_dn
        always @(posedge clk) if (en) sk <= {sk[r*W-1:0], s_a[r*W +: W]};
      end
      assign a_h[(r*(COLS+1))*W +: W] = sk[r*W +: W];
      assign v_h[r*(COLS+1)] = tok_v[r];
      assign f_h[r*(COLS+1)] = tok_f[r];
      assign l_h[r*(COLS+1)] = tok_l[r];
    end

    // Top edge: B lane c and bias lane c delayed c+1 cycles.
    for (c = 0; c < COLS; c = c + 1) begin : g_bskew
      reg [(c+1)*W-1:0]  sk_b;
      reg [(c+1)*32-1:0] sk_bias;
      if (c == 0) begin : g_d1
        always @(posedge clk) begin
          if (en) begin
            sk_b    <= s_b[W-1:0];
            sk_bias <= s_bias[31:0];
          end
        end
      end else begin : g_dn
        always @(posedge clk) begin
          if (en) begin
            sk_b    <= {sk_b[c*W-1:0], s_b[c*W +: W]};
            sk_bias <= {sk_bias[c*32-1:0], s_bias[c*32 +: 32]};
          end
        end
      end
      assign b_v[c*W +: W]       = sk_b[c*W +: W];
      assign bias_v[c*32 +: 32]  = sk_bias[c*32 +: 32];
    end

    for (r = 0; r < ROWS; r = r + 1) begin : g_row
      for (c = 0; c < COLS; c = c + 1) begin : g_col
        localparam integer HI = r * (COLS + 1) + c;   // horizontal slot of PE(r,c)
        localparam integer VI = r * COLS + c;         // vertical slot of PE(r,c)
        // chain(r,c) offset: 32*c(c+1)/2 into row r's chain
        localparam integer CO = r * CHAIN_BITS + 16 * c * (c + 1);

        if (DOT_K == 1) begin : g_seq
          mac_pe #(
              .EXP_BITS  (EXP_BITS),
              .MAN_BITS  (MAN_BITS),
              .OFFSET    (OFFSET),
              .SATURATE  (SATURATE),
              .FINITE_ONLY(FINITE_ONLY),
              .MULTIPLIER(MULTIPLIER)
          ) u_pe (
              .clk      (clk),
              .rst      (rst),
              .en       (en),
              .in_a     (a_h[HI*W +: W]),
              .in_b     (b_v[VI*W +: W]),
              .in_bias  (bias_v[VI*32 +: 32]),
              .in_valid (v_h[HI]),
              .in_first (f_h[HI]),
              .in_last  (l_h[HI]),
              .out_a    (a_h[(HI+1)*W +: W]),
              .out_b    (b_v[(VI+COLS)*W +: W]),
              .out_bias (bias_v[(VI+COLS)*32 +: 32]),
              .out_valid(v_h[HI+1]),
              .out_first(f_h[HI+1]),
              .out_last (l_h[HI+1]),
              .out_sum  (sum_w[VI*32 +: 32])
          );
        end else begin : g_fused
          dot_pe #(
              .K         (DOT_K),
              .ALIGN_BITS(ALIGN_BITS),
              .EXP_BITS  (EXP_BITS),
              .MAN_BITS  (MAN_BITS),
              .OFFSET    (OFFSET),
              .SATURATE  (SATURATE),
              .FINITE_ONLY(FINITE_ONLY),
              .MULTIPLIER(MULTIPLIER),
              .PIPELINE  (PIPELINE)
          ) u_pe (
              .clk      (clk),
              .rst      (rst),
              .en       (en),
              .in_a     (a_h[HI*W +: W]),
              .in_b     (b_v[VI*W +: W]),
              .in_bias  (bias_v[VI*32 +: 32]),
              .in_valid (v_h[HI]),
              .in_first (f_h[HI]),
              .in_last  (l_h[HI]),
              .out_a    (a_h[(HI+1)*W +: W]),
              .out_b    (b_v[(VI+COLS)*W +: W]),
              .out_bias (bias_v[(VI+COLS)*32 +: 32]),
              .out_valid(v_h[HI+1]),
              .out_first(f_h[HI+1]),
              .out_last (l_h[HI+1]),
              .out_sum  (sum_w[VI*32 +: 32])
          );
        end

        // done: sum_w of this PE is a tile's finished result in this cycle. Single stage: the
        // cycle of the last step (its input tokens). PIPELINE 1, 2: one enabled cycle later,
        // when the PE's output tokens carry that step. PIPELINE 3: one more, so a delayed copy
        // of the output tokens, cleared by rst like every valid bit.
        wire done;
        if (PIPELINE == 0) begin : g_done_step
          assign done = v_h[HI] & l_h[HI];
        end else if (PIPELINE < 3) begin : g_done_out
          assign done = v_h[HI+1] & l_h[HI+1];
        end else begin : g_done_late
          reg done_q;
          always @(posedge clk) begin
            if (rst) done_q <= 1'b0;
            else if (en) done_q <= v_h[HI+1] & l_h[HI+1];
          end
          assign done = done_q;
        end

        // Result chain: captured when the PE's result is finished, read by the next column
        // one cycle later, i.e. exactly when the same tile's result is finished there.
        reg [32*(c+1)-1:0] chain_q;
        if (c == 0) begin : g_c0
          always @(posedge clk) if (en & done) chain_q <= sum_w[VI*32 +: 32];
        end else begin : g_cn
          always @(posedge clk) begin
            if (en & done) chain_q <= {sum_w[VI*32 +: 32], chain_w[(CO - 32*c) +: 32*c]};
          end
        end
        assign chain_w[CO +: 32*(c+1)] = chain_q;

        if (c == COLS - 1) begin : g_last
          assign row_done[r] = done;
          assign res_bus[r*COLS*32 +: COLS*32] = chain_w[CO +: 32*COLS];
        end
      end
    end
  endgenerate

  // ---------------------------------------------------------------- stall and output drain
  // A finished row must not overwrite an undrained R[r]. Using res_valid from the register (not
  // the same cycle's pop) keeps out_ready off the in_ready path; it costs a cycle only when a
  // row is already waiting on back-pressure.
  wire stall = |(row_done & res_valid);
  assign en = ~stall;

  // Tiles shorter than ROWS k-steps finish rows faster than the drain takes them. A last beat is
  // accepted only ROWS or more array cycles after the previous one, so a tile's rows all reach
  // their R[r] before any row of the next tile does: when a stall freezes the array, the row the
  // drain waits for is never one of the frozen ones (no deadlock), and with out_ready high there
  // are no stalls at all. gap = array cycles since the last accepted last beat, saturating.
  reg  [GAP_BITS-1:0] gap;
  wire                last_ok = (gap == ROWS_GAP);
  assign s_ready = ~stall & (~s_last | last_ok);

  always @(posedge clk) begin
    if (rst) gap <= ROWS_GAP;
    else if (en) begin
      if (fire & s_last) gap <= ONE_GAP;
      else if (!last_ok) gap <= gap + ONE_GAP;
    end
  end

  reg  [PTR_BITS-1:0] ptr;  // next row to drain
  wire                pop = out_valid & out_ready;

  integer i;
  always @(posedge clk) begin
    if (rst) begin
      res_valid <= {ROWS{1'b0}};
    end else begin
      for (i = 0; i < ROWS; i = i + 1) begin
        if (en & row_done[i]) res_valid[i] <= 1'b1;
        else if (pop && ptr == i[PTR_BITS-1:0]) res_valid[i] <= 1'b0;
      end
    end
  end

  always @(posedge clk) begin
    if (rst) ptr <= {PTR_BITS{1'b0}};
    else if (pop) ptr <= (ptr == LAST_PTR) ? {PTR_BITS{1'b0}} : ptr + {{(PTR_BITS-1){1'b0}}, 1'b1};
  end

  assign out_valid = res_valid[ptr];
  assign out_data  = res_bus[ptr*COLS*32 +: COLS*32];
  assign out_row   = ptr;
  assign out_last  = (ptr == LAST_PTR);

  // The last row's downward and the last column's rightward forwarding registers feed nothing
  // (synthesis removes them); the first-step flag is dead once a row has finished.
  wire unused_edges = &{1'b0,
                        b_v[ROWS*COLS*W +: COLS*W],
                        bias_v[ROWS*COLS*32 +: COLS*32]};
  generate
    for (r = 0; r < ROWS; r = r + 1) begin : g_unused
      wire unused_row = &{1'b0, a_h[(r*(COLS+1)+COLS)*W +: W], v_h[r*(COLS+1)+COLS],
                          f_h[r*(COLS+1)+COLS], l_h[r*(COLS+1)+COLS]};
    end
  endgenerate

endmodule
`default_nettype wire
