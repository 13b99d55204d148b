`resetall
`timescale 1ns/1ps
`default_nettype none
// fp_add: combinational IEEE-754 binary addition, y = a + b.
//
// Format: {sign, exponent[EXP_BITS], mantissa[MAN_BITS]}, bias 2^(EXP_BITS-1)-1, default binary32.
// Supported parameters: EXP_BITS 2..11, MAN_BITS 1..52 (the Python model lmul.fp_add_bits works on
// 64-bit integers, so the whole word must fit in 64 bits; every combination in range does).
//
// Semantics (bit-exact with lmul.fp_add_bits and with numpy float32 addition for (8, 23)):
//   - round to nearest, ties to even; subnormal inputs and outputs (no flushing);
//   - exact cancellation x + (-x) gives +0; -0 + -0 gives -0; +0 + -0 gives +0;
//   - overflow after rounding gives Inf with the sign of the result;
//   - any NaN input, or Inf + (-Inf), gives the canonical quiet NaN {0, all ones, 1, 0...0}.
//
// Algorithm: order the operands by magnitude, align the smaller significand with three extra
// bits (guard, round, sticky; everything shifted past them is ORed into the sticky bit), add or
// subtract, normalise with a left shift that is limited so the exponent never drops below the
// subnormal exponent, then round by incrementing the packed {exponent, mantissa} word so that a
// carry out of the mantissa moves into the exponent (subnormal -> normal, max finite -> Inf).
// Three extra bits suffice: a left shift of more than one place only happens when the exponents
// differ by at most one, and then nothing has been shifted out.
`include "lmul_defs.vh"
module fp_add #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 23
) (
    input  wire [EXP_BITS+MAN_BITS:0] a,
    input  wire [EXP_BITS+MAN_BITS:0] b,
    output wire [EXP_BITS+MAN_BITS:0] y
);

  generate
    `LMUL_PARAM_CHECK(EXP_BITS >= 2 && EXP_BITS <= 11, g_bad_exp_bits,
                      PARAMETER_ERROR__fp_add__EXP_BITS_must_be_2_to_11,
                      ("fp_add: EXP_BITS=%0d out of range 2..11", EXP_BITS))
    `LMUL_PARAM_CHECK(MAN_BITS >= 1 && MAN_BITS <= 52, g_bad_man_bits,
                      PARAMETER_ERROR__fp_add__MAN_BITS_must_be_1_to_52,
                      ("fp_add: MAN_BITS=%0d out of range 1..52", MAN_BITS))
  endgenerate

  localparam integer W = 1 + EXP_BITS + MAN_BITS;
  // Aligned significand: {hidden, mantissa, guard, round, sticky}.
  localparam integer ALIGN_BITS = MAN_BITS + 4;
  // Sum: one more bit for the carry of an effective addition.
  localparam integer SUM_BITS = MAN_BITS + 5;
  // Normalisation shift counts 0..SUM_BITS (leading zeros of the sum).
  localparam integer LZ_BITS = $clog2(SUM_BITS + 1);
  // Exponent arithmetic width: room for e + 1 and for comparisons with shift counts.
  localparam integer XW = ((EXP_BITS > LZ_BITS) ? EXP_BITS : LZ_BITS) + 2;

  localparam [XW-1:0] ALIGN_X = ALIGN_BITS[XW-1:0];
  localparam [XW-1:0] SUM_X = SUM_BITS[XW-1:0];
  localparam [XW-1:0] ONE_X = {{(XW - 1) {1'b0}}, 1'b1};
  localparam [SUM_BITS-1:0] SUM_ONE = {{(SUM_BITS - 1) {1'b0}}, 1'b1};
  localparam [EXP_BITS-1:0] EXP_ONE = {{(EXP_BITS - 1) {1'b0}}, 1'b1};
  localparam [EXP_BITS-1:0] EXP_ONES = {EXP_BITS{1'b1}};
  localparam [W-1:0] QNAN = `LMUL_QNAN(EXP_BITS, MAN_BITS);

  wire a_nan, b_nan, a_inf, b_inf;
  wire unused_a_zero, unused_a_sub, unused_a_norm, unused_a_snan, unused_a_qnan;
  wire unused_b_zero, unused_b_sub, unused_b_norm, unused_b_snan, unused_b_qnan;
  fp_classify #(.EXP_BITS(EXP_BITS), .MAN_BITS(MAN_BITS)) u_class_a (
      .x(a), .is_zero(unused_a_zero), .is_subnormal(unused_a_sub), .is_normal(unused_a_norm),
      .is_inf(a_inf), .is_nan(a_nan), .is_signalling(unused_a_snan), .is_quiet(unused_a_qnan)
  );
  fp_classify #(.EXP_BITS(EXP_BITS), .MAN_BITS(MAN_BITS)) u_class_b (
      .x(b), .is_zero(unused_b_zero), .is_subnormal(unused_b_sub), .is_normal(unused_b_norm),
      .is_inf(b_inf), .is_nan(b_nan), .is_signalling(unused_b_snan), .is_quiet(unused_b_qnan)
  );

  // The datapath is two combinational blocks around the leading-zero counter: they synthesise
  // to the same logic as a net of continuous assignments, and an event-driven simulator
  // evaluates each once per input change instead of once per intermediate wire (3x faster in
  // Icarus, which the regressions and the MAC array simulations feel).
  reg                  sa, sb, a_ge_b, eff_sub;
  reg                  s_l, h_l, h_s, hid, rnd, stk, s_r;
  reg [EXP_BITS-1:0]   ea, eb, e_l, e_s, x_l, x_s, e_n, e_f;
  reg [MAN_BITS-1:0]   ma, mb, m_l, m_s, m_n;
  reg [XW-1:0]         d_x, d_c, x_lx, sh;
  reg [ALIGN_BITS-1:0] sig_l, sig_s, s_al;
  reg [2*ALIGN_BITS-1:0] s_wide;
  reg [SUM_BITS-1:0]   r, r_s, r_n;
  wire [LZ_BITS-1:0]   lz;

  always @* begin
    // ---------------------------------------------------------------- unpack
    sa = a[W-1];
    sb = b[W-1];
    ea = a[W-2:MAN_BITS];
    eb = b[W-2:MAN_BITS];
    ma = a[MAN_BITS-1:0];
    mb = b[MAN_BITS-1:0];

    // ---------------------------------------------------------------- order by magnitude
    // Comparing {exponent, mantissa} as unsigned integers orders IEEE magnitudes.
    a_ge_b = (a[W-2:0] >= b[W-2:0]);
    s_l = a_ge_b ? sa : sb;
    e_l = a_ge_b ? ea : eb;
    e_s = a_ge_b ? eb : ea;
    m_l = a_ge_b ? ma : mb;
    m_s = a_ge_b ? mb : ma;
    eff_sub = sa ^ sb;
    // Subnormals (field 0) use exponent 1 with hidden bit 0: value = sig * 2^(x - bias - M).
    h_l = (e_l != {EXP_BITS{1'b0}});
    h_s = (e_s != {EXP_BITS{1'b0}});
    x_l = h_l ? e_l : EXP_ONE;
    x_s = h_s ? e_s : EXP_ONE;

    // ---------------------------------------------------------------- align
    // x_l >= x_s because |l| >= |s|. Shifting by ALIGN_BITS already moves everything into the
    // sticky half; the clamp keeps larger shifts from pushing the bits off the word, so the
    // sticky bit stays exact. (Under round-to-nearest a lone sticky bit never changes the
    // result, so the clamp is not observable at the output; it keeps the datapath's invariant
    // simple.)
    d_x = {{(XW - EXP_BITS) {1'b0}}, x_l - x_s};
    d_c = (d_x > ALIGN_X) ? ALIGN_X : d_x;
    sig_l = {h_l, m_l, 3'b000};
    sig_s = {h_s, m_s, 3'b000};
    s_wide = {sig_s, {ALIGN_BITS{1'b0}}} >> d_c;
    s_al = {s_wide[2*ALIGN_BITS-1:ALIGN_BITS+1],
            s_wide[ALIGN_BITS] | (|s_wide[ALIGN_BITS-1:0])};

    // ---------------------------------------------------------------- add / subtract
    if (eff_sub) r = {1'b0, sig_l} - {1'b0, s_al};
    else r = {1'b0, sig_l} + {1'b0, s_al};

    // ---------------------------------------------------------------- normalise
    // Moving the MSB of r to bit SUM_BITS-1 gives exponent x_l + 1 - lz(r). The shift is capped
    // at x_l so the exponent stops at 1 (the subnormal exponent), leaving the hidden bit 0: a
    // sentinel one at bit SUM_BITS-1-x_l makes the leading-zero count of r_s min(lz(r), x_l).
    x_lx = {{(XW - EXP_BITS) {1'b0}}, x_l};
    r_s = r;
    if (x_lx < SUM_X) r_s = r | (SUM_ONE << (SUM_X - ONE_X - x_lx));
  end

  // lz = SUM_BITS only when r_s (so r) is 0: then r_n = 0, the hidden bit is 0 and e_n unused.
  wire unused_r_s_zero;
  lzc #(
      .WIDTH(SUM_BITS)
  ) u_lzc (
      .x       (r_s),
      .count   (lz),
      .all_zero(unused_r_s_zero)
  );

  always @* begin
    sh = {{(XW - LZ_BITS) {1'b0}}, lz};
    r_n = r << sh;
    // Exact in EXP_BITS bits: 1 <= e_n <= 2^E - 1 because sh <= x_l <= 2^E - 2.
    e_n = x_l + EXP_ONE - sh[EXP_BITS-1:0];
    hid = r_n[SUM_BITS-1];
    m_n = r_n[SUM_BITS-2:4];
    rnd = r_n[3];
    stk = |r_n[2:0];

    // Rounding (fp_round) increments the packed {exponent, mantissa} word: a carry out of the
    // mantissa moves into the exponent (subnormal -> normal, max -> Inf); an exponent of all ones
    // before rounding (a carry out of an effective addition at the top binade) is overflow.
    e_f = hid ? e_n : {EXP_BITS{1'b0}};
    // Zero results come only from exact sums (subnormal sums are exact), so the only -0 is
    // -0 + -0.
    s_r = (r == {SUM_BITS{1'b0}}) ? (sa & sb) : s_l;
  end

  // ---------------------------------------------------------------- round and pack
  wire [W-1:0] rounded;
  wire         unused_inexact;
  fp_round #(
      .EXP_BITS(EXP_BITS),
      .MAN_BITS(MAN_BITS)
  ) u_round (
      .sign    (s_r),
      .exp     (e_f),
      .man     (m_n),
      .guard   (rnd),
      .sticky  (stk),
      .overflow(1'b0),  // an all-ones e_f is the adder's only overflow; fp_round takes it as such
      .y       (rounded),
      .inexact (unused_inexact)
  );

  // ---------------------------------------------------------------- select
  assign y = (a_nan | b_nan | (a_inf & b_inf & eff_sub)) ? QNAN :
             (a_inf | b_inf) ? {(a_inf ? sa : sb), EXP_ONES, {MAN_BITS{1'b0}}} :
                               rounded;

endmodule
`default_nettype wire
