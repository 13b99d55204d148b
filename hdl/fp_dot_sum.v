`resetall
`timescale 1ns/1ps
`default_nettype none
// fp_dot_sum: the sum of TERMS binary32 terms, rounded once (the fused dot product's adder).
// Combinational. The contract (docs/dot_product.md, bit-exact with lmul.fused_sum_bits):
//   1. any term NaN, or +Inf and -Inf among the terms -> canonical quiet NaN `LMUL_QNAN
//      (0x7FC00000);
//      otherwise any Inf -> that Inf;
//   2. finite term j: sig_j = {hidden, fraction} (24 bits), e_j = max(exponent field, 1);
//   3. every term zero -> -0 if every term is -0, else +0;
//   4. emax = max e_j; each magnitude is truncated toward zero to a multiple of
//      u = 2^(emax - 127 - ALIGN_BITS): m_j = floor(sig_j * 2^(e_j - emax + ALIGN_BITS - 23)),
//      then signed, v_j = s_j ? -m_j : m_j (no sticky bit from the dropped bits);
//   5. S = sum v_j exactly (two's complement, ALIGN_BITS + 2 + clog2(TERMS) bits);
//   6. S = 0 -> +0;
//   7. otherwise RNE_binary32(S * u) through fp_round (subnormal results kept, overflow -> Inf).
// ALIGN_BITS >= 276 loses no bit of any term, so the result is the correctly rounded sum.
//
// Terms: terms[j*32 +: 32] = t_j. TERMS 2..65, ALIGN_BITS 1..276.
`include "lmul_defs.vh"
module fp_dot_sum #(
    parameter integer TERMS      = 5,
    parameter integer ALIGN_BITS = 276
) (
    input  wire [TERMS*32-1:0] terms,
    output wire [31:0]         y
);

  generate
    `LMUL_PARAM_CHECK(TERMS >= 2 && TERMS <= 65, g_bad_terms,
                      PARAMETER_ERROR__fp_dot_sum__TERMS_must_be_2_to_65,
                      ("fp_dot_sum: TERMS=%0d out of range 2..65", TERMS))
    `LMUL_PARAM_CHECK(ALIGN_BITS >= 1 && ALIGN_BITS <= 276, g_bad_align_bits,
                      PARAMETER_ERROR__fp_dot_sum__ALIGN_BITS_must_be_1_to_276,
                      ("fp_dot_sum: ALIGN_BITS=%0d out of range 1..276", ALIGN_BITS))
  endgenerate

  // Carry bits above the window: the sum of TERMS magnitudes below 2^(ALIGN_BITS+1) stays below
  // 2^(ALIGN_BITS+1+LOGT).
  localparam integer LOGT = $clog2(TERMS);
  // Two's-complement sum width (sign included) and magnitude width.
  localparam integer SW = ALIGN_BITS + 2 + LOGT;
  localparam integer MW = SW - 1;
  // Aligned significand before truncation: {sig, ALIGN_BITS zeros} >> (emax - e_j) is
  // sig_j * 2^(ALIGN_BITS + 23) * u-units; its top ALIGN_BITS + 1 bits are m_j.
  localparam integer AW = 24 + ALIGN_BITS;
  // Adder tree leaves: TERMS rounded up to a power of two (the padding leaves are zero).
  localparam integer P = 1 << LOGT;
  // Normalised magnitude with room below for the mantissa, guard and sticky bits of a short sum.
  localparam integer NW = MW + 25;
  // Exponent arithmetic: emax + LOGT <= 261, shift counts <= 284, sums of the two.
  localparam integer XW = 11;
  // Width of lzc's count of MW bits.
  localparam integer LZW = $clog2(MW + 1);

  localparam [XW-1:0] LOGT_X = LOGT[XW-1:0];
  localparam [XW-1:0] MW_X = MW[XW-1:0];
  localparam [XW-1:0] X_255 = 255;
  localparam [MW-1:0] M_ONE = {{(MW - 1) {1'b0}}, 1'b1};

  // ---------------------------------------------------------------- classify the terms
  wire [TERMS-1:0] t_nan, t_inf, t_sign;
  genvar g;
  generate
    for (g = 0; g < TERMS; g = g + 1) begin : g_class
      assign t_sign[g] = terms[g*32+31];
      wire unused_zero, unused_sub, unused_norm, unused_snan, unused_qnan;
      fp_classify #(.EXP_BITS(8), .MAN_BITS(23)) u_class (
          .x(terms[g*32+:32]), .is_zero(unused_zero), .is_subnormal(unused_sub),
          .is_normal(unused_norm), .is_inf(t_inf[g]), .is_nan(t_nan[g]),
          .is_signalling(unused_snan), .is_quiet(unused_qnan)
      );
    end
  endgenerate

  // The datapath is two combinational blocks around the leading-zero counter (as in fp_add:
  // an event-driven simulator evaluates a block once per input change instead of once per
  // intermediate wire).
  reg  [7:0]      ej, emax;
  reg  [23:0]     sig;
  reg  [7:0]      shr;
  reg  [AW-1:0]   al;
  reg  [22:0]     unused_al_low;
  reg  [MW-1:0]   mj;
  reg  [SW-1:0]   tree [0:P-1];
  reg  [SW-1:0]   s_sum;
  reg             s_neg, all_zero, all_neg;
  reg  [MW-1:0]   mag, mag_s;
  reg  [XW-1:0]   eb, sh, e_n;
  reg  [NW-1:0]   nrm;
  reg             hid, grd, stk, ovf, s_r;
  reg  [7:0]      e_f;
  reg  [22:0]     m_n;
  integer         j, w, k;

  always @* begin
    // -------------------------------------------------------------- decode, largest exponent
    // A zero term has e = 1, never above a non-zero term's, so the maximum over all terms is the
    // maximum over the non-zero ones (and 1 when every term is zero).
    emax = 8'd1;
    all_zero = 1'b1;
    all_neg = 1'b1;
    for (j = 0; j < TERMS; j = j + 1) begin
      ej = (terms[j*32+23+:8] == 8'd0) ? 8'd1 : terms[j*32+23+:8];
      if (ej > emax) emax = ej;
      all_zero = all_zero & (terms[j*32+:31] == 31'd0);
      all_neg = all_neg & t_sign[j];
    end

    // -------------------------------------------------------------- align, truncate, sign
    // m_j = top ALIGN_BITS + 1 bits of ({sig_j, ALIGN_BITS zeros} >> (emax - e_j)); the 23 bits
    // below them and everything shifted out are the dropped part below u.
    for (j = TERMS; j < P; j = j + 1) tree[j] = {SW{1'b0}};
    for (j = 0; j < TERMS; j = j + 1) begin
      ej = (terms[j*32+23+:8] == 8'd0) ? 8'd1 : terms[j*32+23+:8];
      sig = {(terms[j*32+23+:8] != 8'd0), terms[j*32+:23]};
      shr = emax - ej;
      al = {sig, {ALIGN_BITS{1'b0}}} >> shr;
      mj = {{(MW - ALIGN_BITS - 1) {1'b0}}, al[AW-1:23]};
      unused_al_low = al[22:0];
      tree[j] = t_sign[j] ? -{1'b0, mj} : {1'b0, mj};
    end

    // -------------------------------------------------------------- adder tree
    // Level by level, in place: node i of a level is the sum of nodes 2i and 2i+1 of the level
    // below; LOGT levels of independent adders. (An array, not one packed vector: it simulates
    // several times faster in Verilator; yosys turns it into registers, i.e. wires here.)
    for (w = P / 2; w >= 1; w = w / 2) begin
      for (k = 0; k < w; k = k + 1) begin
        tree[k] = tree[2*k] + tree[2*k+1];
      end
    end
    s_sum = tree[0];
    s_neg = s_sum[SW-1];
    mag = s_neg ? (~s_sum[MW-1:0] + M_ONE) : s_sum[MW-1:0];

    // -------------------------------------------------------------- normalise
    // The leading one of mag at bit MW-1-lz has weight 2^(eb - lz - 127) with eb = emax + LOGT,
    // i.e. biased exponent eb - lz. The shift is capped at eb - 1 (exponent 1, the subnormal
    // scale): a sentinel one at bit MW - eb makes the count min(lz(mag), eb - 1).
    eb = {{(XW - 8) {1'b0}}, emax} + LOGT_X;
    mag_s = mag;
    if (eb <= MW_X) mag_s = mag | (M_ONE << (MW_X - eb));
  end

  // A zero mag_s (possible only when the sum is zero) gives MW; any shift of a zero mag is zero.
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
    nrm = {mag, 25'd0} << sh;
    e_n = eb - sh;
    hid = nrm[NW-1];
    m_n = nrm[NW-2-:23];
    grd = nrm[NW-25];
    stk = |nrm[NW-26:0];
    ovf = hid & (e_n >= X_255);
    e_f = hid ? e_n[7:0] : 8'd0;
    // Zero sums: -0 only when every term is -0 (then S = 0 too); any other exact zero is +0.
    s_r = (s_sum == {SW{1'b0}}) ? (all_zero & all_neg) : s_neg;
  end

  // ---------------------------------------------------------------- round and pack
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

  // ---------------------------------------------------------------- select
  wire any_nan = |t_nan;
  wire pos_inf = |(t_inf & ~t_sign);
  wire neg_inf = |(t_inf & t_sign);

  assign y = (any_nan | (pos_inf & neg_inf)) ? `LMUL_QNAN(8, 23) :
             pos_inf ? 32'h7F80_0000 :
             neg_inf ? 32'hFF80_0000 :
                       rounded;

endmodule
`default_nettype wire
