`resetall
`timescale 1ns/1ps
`default_nettype none
// dot_prealign: the products' half of fp_dot_sum's alignment, for a sum stage one clock later
// (dot_pe PIPELINE = 2, with dot_sum_prealigned). Combinational.
// Of K binary32 terms t_j (the widened products), with e_j = max(exponent field, 1) and
// sig_j = {hidden, fraction} as in fp_dot_sum:
//   pmax   = max(1, max_j e_j)
//   mag_j  = floor(sig_j * 2^(e_j - pmax + ALIGN_BITS - 23))   (ALIGN_BITS + 1 bits)
//   sign_j = the sign bit of t_j
//   nan = any t_j NaN, pos_inf / neg_inf = any t_j +Inf / -Inf,
//   all_zero = every t_j is +-0, all_neg = every sign bit set.
// Why this is exact: fp_dot_sum truncates each term to the window below the largest exponent
// emax of all its terms; with emax = pmax + d (d >= 0, the accumulator may be larger), its
// m_j = floor(sig_j * 2^(e_j - pmax + ALIGN_BITS - 23) / 2^d) = floor(mag_j / 2^d) = mag_j >> d,
// because truncating twice to nested grids of powers of two is truncating once. mag_j of a NaN
// or Inf term is don't-care (the flags decide the result).
// Ports: terms[j*32 +: 32] = t_j; mag[j*(ALIGN_BITS+1) +: ALIGN_BITS+1] = mag_j; sign[j] = sign_j.
// K 1..64, ALIGN_BITS 1..276.
`include "lmul_defs.vh"
module dot_prealign #(
    parameter integer K          = 4,
    parameter integer ALIGN_BITS = 276
) (
    input  wire [K*32-1:0]             terms,
    output reg  [7:0]                  pmax,
    output reg  [K*(ALIGN_BITS+1)-1:0] mag,
    output wire [K-1:0]                sign,
    output wire                        nan,
    output wire                        pos_inf,
    output wire                        neg_inf,
    output reg                         all_zero,
    output wire                        all_neg
);

  generate
    `LMUL_PARAM_CHECK(K >= 1 && K <= 64, g_bad_k,
                      PARAMETER_ERROR__dot_prealign__K_must_be_1_to_64,
                      ("dot_prealign: K=%0d out of range 1..64", K))
    `LMUL_PARAM_CHECK(ALIGN_BITS >= 1 && ALIGN_BITS <= 276, g_bad_align_bits,
                      PARAMETER_ERROR__dot_prealign__ALIGN_BITS_must_be_1_to_276,
                      ("dot_prealign: ALIGN_BITS=%0d out of range 1..276", ALIGN_BITS))
  endgenerate

  localparam integer MB = ALIGN_BITS + 1;
  localparam integer AW = 24 + ALIGN_BITS;

  wire [K-1:0] t_nan, t_inf;
  genvar g;
  generate
    for (g = 0; g < K; g = g + 1) begin : g_class
      assign sign[g] = terms[g*32+31];
      wire unused_zero, unused_sub, unused_norm, unused_snan, unused_qnan;
      fp_classify #(.EXP_BITS(8), .MAN_BITS(23)) u_class (
          .x(terms[g*32+:32]), .is_zero(unused_zero), .is_subnormal(unused_sub),
          .is_normal(unused_norm), .is_inf(t_inf[g]), .is_nan(t_nan[g]),
          .is_signalling(unused_snan), .is_quiet(unused_qnan)
      );
    end
  endgenerate

  assign nan = |t_nan;
  assign pos_inf = |(t_inf & ~sign);
  assign neg_inf = |(t_inf & sign);
  assign all_neg = &sign;

  reg  [7:0]    ej;
  reg  [23:0]   sig;
  reg  [7:0]    shr;
  reg  [AW-1:0] al;
  reg  [22:0]   unused_al_low;
  integer       j;

  always @* begin
    // A zero term has e = 1, never above a non-zero term's (as in fp_dot_sum).
    pmax = 8'd1;
    all_zero = 1'b1;
    for (j = 0; j < K; j = j + 1) begin
      ej = (terms[j*32+23+:8] == 8'd0) ? 8'd1 : terms[j*32+23+:8];
      if (ej > pmax) pmax = ej;
      all_zero = all_zero & (terms[j*32+:31] == 31'd0);
    end
    for (j = 0; j < K; j = j + 1) begin
      ej = (terms[j*32+23+:8] == 8'd0) ? 8'd1 : terms[j*32+23+:8];
      sig = {(terms[j*32+23+:8] != 8'd0), terms[j*32+:23]};
      shr = pmax - ej;
      al = {sig, {ALIGN_BITS{1'b0}}} >> shr;
      mag[j*MB+:MB] = al[AW-1:23];
      unused_al_low = al[22:0];
    end
  end

endmodule
`default_nettype wire
