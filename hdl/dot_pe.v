`resetall
`timescale 1ns/1ps
`default_nettype none
// dot_pe: one fused dot-product processing element (the fused counterpart of mac_pe).
//
// Holds one binary32 accumulator. Per enabled clock with in_valid = 1 it performs one fused step
// of K products:
//   base    = in_first ? in_bias : acc
//   out_sum = dot_datapath(in_a, in_b, base)
//           = RNE_binary32(base + sum_i widen(mul(in_a[i], in_b[i])))   (window ALIGN_BITS)
//   acc    <= out_sum
// mul is the L-Mul core (MULTIPLIER = 0) or the exact IEEE multiplier (MULTIPLIER = 1), see
// dot_datapath and docs/dot_product.md; this is lmul.matmul(..., accumulate=lmul.Fused(K,
// ALIGN_BITS)) one chunk of K operand pairs at a time, starting from the bias. out_sum is
// combinational: on the step with in_last = 1 it is the finished dot product (as in mac_pe, acc
// is then dead until the next first step, which ignores it).
//
// Systolic forwarding: in_a (K lanes) and the step tokens (valid, first, last) go right (out_a,
// out_valid, out_first, out_last), in_b (K lanes) and in_bias go down (out_b, out_bias), each
// through one register. Everything holds while en = 0. rst (synchronous, active high) clears
// only the token valid bit: data registers need no reset because nothing reads them without a
// valid token.
//
// PIPELINE = 1 splits the step in two stages, one clock more latency and the same throughput:
// the K widened products are registered (with the step tokens, which are the forwarding
// registers out_valid / out_first / out_bias), and the sum stage adds them to
//   base = out_first ? out_bias : acc
// on the next enabled clock (acc <= out_sum when out_valid). out_sum is then the finished dot
// product while out_valid = out_last = 1, i.e. one enabled clock after the in_last step. The
// sum stage's inputs all come from registers, so the multipliers' glitches stop at the product
// registers instead of running through the alignment and the adder tree. PIPELINE = 0 (default)
// is the single-stage PE above; mac_array passes its own PIPELINE through. The accumulator
// loop stays within the sum stage, so back-to-back steps of one dot product need no stall
// either way.
//
// PIPELINE = 2 has PIPELINE = 1's latency, throughput and tokens, and moves more of the sum into
// the first stage: dot_prealign registers the products' largest exponent pmax, each product's
// magnitude truncated to the ALIGN_BITS window below pmax, the signs and the special-value
// flags; the sum stage (dot_sum_prealigned) compares base's exponent with pmax and shifts the K
// short magnitudes right by the difference when base's is larger. Same bits (truncating to the
// window below pmax and then below a larger emax is truncating once below emax); the sum
// stage's logic is shallower, so fewer glitches reach its adder tree and normaliser.
//
// PIPELINE = 3 is PIPELINE = 2 with PIPELINE = 1's product register in front of dot_prealign:
// three stages (multipliers | pre-alignment | sum), so the pre-alignment starts from a register
// too. Same bits and throughput; out_sum is the finished dot product two enabled clocks after
// the in_last step's (no output token marks it: out_valid / out_last are one stage behind the
// input, the sum stage two).
//
// Operands: lane i is in_a[i*W +: W], in_b[i*W +: W], W = 1 + EXP_BITS + MAN_BITS, each
// {sign, exponent[EXP_BITS], mantissa[MAN_BITS]}; K, ALIGN_BITS, EXP_BITS, MAN_BITS, OFFSET,
// SATURATE, FINITE_ONLY, MULTIPLIER as in dot_datapath (checked there and in the modules it
// uses); PIPELINE 0..3.
`include "lmul_defs.vh"
module dot_pe #(
    parameter integer K          = 4,
    parameter integer ALIGN_BITS = 276,
    parameter integer EXP_BITS   = 8,
    parameter integer MAN_BITS   = 7,
    parameter integer OFFSET     = `LMUL_DEFAULT_OFFSET(MAN_BITS),
    parameter integer SATURATE   = 0,
    parameter integer FINITE_ONLY = 0,
    parameter integer MULTIPLIER = 0,
    parameter integer PIPELINE   = 0
) (
    input  wire                               clk,
    input  wire                               rst,
    input  wire                               en,
    input  wire [K*(1+EXP_BITS+MAN_BITS)-1:0] in_a,
    input  wire [K*(1+EXP_BITS+MAN_BITS)-1:0] in_b,
    input  wire [31:0]                        in_bias,
    input  wire                               in_valid,
    input  wire                               in_first,
    input  wire                               in_last,
    output reg  [K*(1+EXP_BITS+MAN_BITS)-1:0] out_a,
    output reg  [K*(1+EXP_BITS+MAN_BITS)-1:0] out_b,
    output reg  [31:0]                        out_bias,
    output reg                                out_valid,
    output reg                                out_first,
    output reg                                out_last,
    output wire [31:0]                        out_sum
);

  localparam integer W = 1 + EXP_BITS + MAN_BITS;

  generate
    `LMUL_PARAM_CHECK(PIPELINE >= 0 && PIPELINE <= 3, g_bad_pipeline,
                      PARAMETER_ERROR__dot_pe__PIPELINE_must_be_0_to_3,
                      ("dot_pe: PIPELINE=%0d must be 0, 1, 2 or 3", PIPELINE))
    `LMUL_PARAM_CHECK(K >= 1 && K <= 64, g_bad_k, PARAMETER_ERROR__dot_pe__K_must_be_1_to_64,
                      ("dot_pe: K=%0d out of range 1..64", K))
  endgenerate

  reg  [31:0] acc;
  // The step whose sum out_sum is: the input step (PIPELINE = 0) or the registered one.
  wire        sum_valid;

  generate
    if (PIPELINE == 0) begin : g_single
      wire [31:0] base = in_first ? in_bias : acc;

      dot_datapath #(
          .K         (K),
          .ALIGN_BITS(ALIGN_BITS),
          .EXP_BITS  (EXP_BITS),
          .MAN_BITS  (MAN_BITS),
          .OFFSET    (OFFSET),
          .SATURATE  (SATURATE),
          .FINITE_ONLY(FINITE_ONLY),
          .MULTIPLIER(MULTIPLIER)
      ) u_datapath (
          .a  (in_a),
          .b  (in_b),
          .acc(base),
          .y  (out_sum)
      );
      assign sum_valid = in_valid;
    end else begin : g_pipelined
      // Term 0 is the sum stage's base, term i + 1 the product of lane i (the terms of
      // dot_datapath; the sum stage takes them one clock apart).
      wire [K*32-1:0] prod;
      wire [31:0]     base;

      genvar i;
      for (i = 0; i < K; i = i + 1) begin : g_lane
        mul_widen #(
            .EXP_BITS  (EXP_BITS),
            .MAN_BITS  (MAN_BITS),
            .OFFSET    (OFFSET),
            .SATURATE  (SATURATE),
            .FINITE_ONLY(FINITE_ONLY),
            .MULTIPLIER(MULTIPLIER)
        ) u_mul (
            .a(in_a[i*W+:W]),
            .b(in_b[i*W+:W]),
            .y(prod[i*32+:32])
        );
      end

      if (PIPELINE == 1) begin : g_products
        reg [K*32-1:0] prod_q;

        assign base = out_first ? out_bias : acc;
        assign sum_valid = out_valid;

        always @(posedge clk) begin
          if (en) prod_q <= prod;
        end

        fp_dot_sum #(
            .TERMS     (K + 1),
            .ALIGN_BITS(ALIGN_BITS)
        ) u_sum (
            .terms({prod_q, base}),
            .y    (out_sum)
        );
      end else begin : g_prealigned
        // The products' largest exponent, their magnitudes truncated to the window below it,
        // their signs and special-value flags (dot_prealign) are registered; the sum stage
        // only compares base's exponent with the registered one.
        localparam integer MB = ALIGN_BITS + 1;
        wire [7:0]      pmax;
        wire [K*MB-1:0] mag;
        wire [K-1:0]    sign;
        wire            nan, pos_inf, neg_inf, all_zero, all_neg;
        reg  [7:0]      pmax_q;
        reg  [K*MB-1:0] mag_q;
        reg  [K-1:0]    sign_q;
        reg             nan_q, pos_inf_q, neg_inf_q, all_zero_q, all_neg_q;
        wire [K*32-1:0] pre_in;

        if (PIPELINE == 3) begin : g_three
          // One more stage in front: the products registered (as with PIPELINE = 1), then
          // pre-aligned from the register. The sum stage's tokens are one clock behind the
          // forwarding registers.
          reg [K*32-1:0] prod_q;
          reg            valid_q, first_q;
          reg [31:0]     bias_q;

          always @(posedge clk) begin
            if (rst) begin
              valid_q <= 1'b0;
            end else if (en) begin
              valid_q <= out_valid;
            end
          end

          always @(posedge clk) begin
            if (en) begin
              prod_q  <= prod;
              first_q <= out_first;
              bias_q  <= out_bias;
            end
          end

          assign pre_in = prod_q;
          assign base = first_q ? bias_q : acc;
          assign sum_valid = valid_q;
        end else begin : g_two
          assign pre_in = prod;
          assign base = out_first ? out_bias : acc;
          assign sum_valid = out_valid;
        end

        dot_prealign #(
            .K         (K),
            .ALIGN_BITS(ALIGN_BITS)
        ) u_prealign (
            .terms   (pre_in),
            .pmax    (pmax),
            .mag     (mag),
            .sign    (sign),
            .nan     (nan),
            .pos_inf (pos_inf),
            .neg_inf (neg_inf),
            .all_zero(all_zero),
            .all_neg (all_neg)
        );

        always @(posedge clk) begin
          if (en) begin
            pmax_q     <= pmax;
            mag_q      <= mag;
            sign_q     <= sign;
            nan_q      <= nan;
            pos_inf_q  <= pos_inf;
            neg_inf_q  <= neg_inf;
            all_zero_q <= all_zero;
            all_neg_q  <= all_neg;
          end
        end

        dot_sum_prealigned #(
            .K         (K),
            .ALIGN_BITS(ALIGN_BITS)
        ) u_sum (
            .base    (base),
            .pmax    (pmax_q),
            .mag     (mag_q),
            .sign    (sign_q),
            .nan     (nan_q),
            .pos_inf (pos_inf_q),
            .neg_inf (neg_inf_q),
            .all_zero(all_zero_q),
            .all_neg (all_neg_q),
            .y       (out_sum)
        );
      end
    end
  endgenerate

  always @(posedge clk) begin
    if (rst) begin
      out_valid <= 1'b0;
    end else if (en) begin
      out_valid <= in_valid;
    end
  end

  always @(posedge clk) begin
    if (en) begin
      out_a     <= in_a;
      out_b     <= in_b;
      out_bias  <= in_bias;
      out_first <= in_first;
      out_last  <= in_last;
      if (sum_valid) acc <= out_sum;
    end
  end

endmodule
`default_nettype wire
