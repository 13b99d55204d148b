`resetall
`timescale 1ns/1ps
`default_nettype none
// dot_sum_prealigned: fp_dot_sum of the binary32 term `base` and K products given as
// dot_prealign's output (pre-aligned to the products' largest exponent pmax), with the same
// bits: y = fp_dot_sum(base, t_0, ..., t_{K-1}) at TERMS = K + 1 and ALIGN_BITS (contract in
// fp_dot_sum and docs/dot_product.md). Combinational; dot_pe's sum stage with PIPELINE = 2.
// With e_b = max(base exponent field, 1), emax = max(e_b, pmax):
//   e_b >  pmax: the products' magnitudes are shifted right by d = e_b - pmax (mag_j >> d is
//                fp_dot_sum's m_j, see dot_prealign), base's is its own window;
//   e_b <= pmax: the products' magnitudes are m_j as they are, base is aligned to pmax.
// The signed sum, normalisation, rounding and the special cases are fp_dot_sum's steps 1, 3,
// 5-7 over the K + 1 terms (the products' flags combined with base's).
// Ports as dot_prealign's outputs: mag[j*(ALIGN_BITS+1) +: ALIGN_BITS+1], sign[j] of product j;
// nan, pos_inf, neg_inf, all_zero, all_neg of the products. K 1..64, ALIGN_BITS 1..276.
`include "lmul_defs.vh"
module dot_sum_prealigned #(
    parameter integer K          = 4,
    parameter integer ALIGN_BITS = 276
) (
    input  wire [31:0]                 base,
    input  wire [7:0]                  pmax,
    input  wire [K*(ALIGN_BITS+1)-1:0] mag,
    input  wire [K-1:0]                sign,
    input  wire                        nan,
    input  wire                        pos_inf,
    input  wire                        neg_inf,
    input  wire                        all_zero,
    input  wire                        all_neg,
    output wire [31:0]                 y
);

  generate
    `LMUL_PARAM_CHECK(K >= 1 && K <= 64, g_bad_k,
                      PARAMETER_ERROR__dot_sum_prealigned__K_must_be_1_to_64,
                      ("dot_sum_prealigned: K=%0d out of range 1..64", K))
    `LMUL_PARAM_CHECK(ALIGN_BITS >= 1 && ALIGN_BITS <= 276, g_bad_align_bits,
                      PARAMETER_ERROR__dot_sum_prealigned__ALIGN_BITS_must_be_1_to_276,
                      ("dot_sum_prealigned: ALIGN_BITS=%0d out of range 1..276", ALIGN_BITS))
  endgenerate

  // Widths as in fp_dot_sum with TERMS = K + 1.
  localparam integer TERMS = K + 1;
  localparam integer LOGT = $clog2(TERMS);
  localparam integer SW = ALIGN_BITS + 2 + LOGT;
  localparam integer MW = SW - 1;
  localparam integer MB = ALIGN_BITS + 1;
  localparam integer AW = 24 + ALIGN_BITS;
  localparam integer P = 1 << LOGT;
  localparam integer NW = MW + 25;
  localparam integer XW = 11;
  localparam integer LZW = $clog2(MW + 1);

  localparam [XW-1:0] LOGT_X = LOGT[XW-1:0];
  localparam [XW-1:0] MW_X = MW[XW-1:0];
  localparam [XW-1:0] X_255 = 255;
  localparam [MW-1:0] M_ONE = {{(MW - 1) {1'b0}}, 1'b1};

  wire b_nan, b_inf;
  wire unused_zero, unused_sub, unused_norm, unused_snan, unused_qnan;
  fp_classify #(.EXP_BITS(8), .MAN_BITS(23)) u_class (
      .x(base), .is_zero(unused_zero), .is_subnormal(unused_sub), .is_normal(unused_norm),
      .is_inf(b_inf), .is_nan(b_nan), .is_signalling(unused_snan), .is_quiet(unused_qnan)
  );

  reg  [7:0]    eb8, emax, d, shr;
  reg  [8:0]    diff;
  reg           b_big;
  reg  [23:0]   sig;
  reg  [AW-1:0] al;
  reg  [22:0]   unused_al_low;
  reg  [MB-1:0] mj;
  reg  [SW-1:0] tree [0:P-1];
  reg  [SW-1:0] s_sum;
  reg           s_neg;
  reg  [MW-1:0] mg, mag_s;
  reg  [XW-1:0] eb, sh, e_n;
  reg  [NW-1:0] nrm;
  reg           hid, grd, stk, ovf, s_r;
  reg  [7:0]    e_f;
  reg  [22:0]   m_n;
  integer       j, w, k;

  always @* begin
    // -------------------------------------------------------------- largest exponent
    eb8 = (base[30:23] == 8'd0) ? 8'd1 : base[30:23];
    diff = {1'b0, eb8} - {1'b0, pmax};
    b_big = ~diff[8] & (diff[7:0] != 8'd0);
    emax = b_big ? eb8 : pmax;
    d = b_big ? diff[7:0] : 8'd0;
    shr = b_big ? 8'd0 : (pmax - eb8);

    // -------------------------------------------------------------- align, truncate, sign
    for (j = TERMS; j < P; j = j + 1) tree[j] = {SW{1'b0}};
    sig = {(base[30:23] != 8'd0), base[22:0]};
    al = {sig, {ALIGN_BITS{1'b0}}} >> shr;
    unused_al_low = al[22:0];
    mj = al[AW-1:23];
    tree[0] = base[31] ? -{{(SW - MB) {1'b0}}, mj} : {{(SW - MB) {1'b0}}, mj};
    for (j = 0; j < K; j = j + 1) begin
      mj = mag[j*MB+:MB] >> d;
      tree[j+1] = sign[j] ? -{{(SW - MB) {1'b0}}, mj} : {{(SW - MB) {1'b0}}, mj};
    end

    // -------------------------------------------------------------- adder tree (fp_dot_sum's)
    for (w = P / 2; w >= 1; w = w / 2) begin
      for (k = 0; k < w; k = k + 1) begin
        tree[k] = tree[2*k] + tree[2*k+1];
      end
    end
    s_sum = tree[0];
    s_neg = s_sum[SW-1];
    mg = s_neg ? (~s_sum[MW-1:0] + M_ONE) : s_sum[MW-1:0];

    // -------------------------------------------------------------- normalise (fp_dot_sum's)
    eb = {{(XW - 8) {1'b0}}, emax} + LOGT_X;
    mag_s = mg;
    if (eb <= MW_X) mag_s = mg | (M_ONE << (MW_X - eb));
  end

  wire [LZW-1:0] lz;
  wire           unused_mag_s_zero;
  lzc #(
      .WIDTH(MW)
  ) u_lzc (
      .x       (mag_s),
      .count   (lz),
      .all_zero(unused_mag_s_zero)
  );

  always @* begin
    sh = {{(XW - LZW) {1'b0}}, lz};
    nrm = {mg, 25'd0} << sh;
    e_n = eb - sh;
    hid = nrm[NW-1];
    m_n = nrm[NW-2-:23];
    grd = nrm[NW-25];
    stk = |nrm[NW-26:0];
    ovf = hid & (e_n >= X_255);
    e_f = hid ? e_n[7:0] : 8'd0;
    s_r = (s_sum == {SW{1'b0}}) ? (all_zero & (base[30:0] == 31'd0) & all_neg & base[31])
                                : s_neg;
  end

  wire [31:0] rounded;
  wire        unused_inexact;
  fp_round #(
      .EXP_BITS(8),
      .MAN_BITS(23)
  ) u_round (
      .sign    (s_r),
      .exp     (e_f),
      .man     (m_n),
      .guard   (grd),
      .sticky  (stk),
      .overflow(ovf),
      .y       (rounded),
      .inexact (unused_inexact)
  );

  wire any_nan = nan | b_nan;
  wire p_inf = pos_inf | (b_inf & ~base[31]);
  wire n_inf = neg_inf | (b_inf & base[31]);

  assign y = (any_nan | (p_inf & n_inf)) ? `LMUL_QNAN(8, 23) :
             p_inf ? 32'h7F80_0000 :
             n_inf ? 32'hFF80_0000 :
                     rounded;

endmodule
`default_nettype wire
