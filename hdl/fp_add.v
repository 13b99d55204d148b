`timescale 1ns/1ps
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
module fp_add #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 23
) (
    input  wire [EXP_BITS+MAN_BITS:0] a,
    input  wire [EXP_BITS+MAN_BITS:0] b,
    output wire [EXP_BITS+MAN_BITS:0] y
);

  generate
    if (EXP_BITS < 2 || EXP_BITS > 11) begin : g_bad_exp_bits
`ifdef VERILATOR
      $error("fp_add: EXP_BITS=%0d out of range 2..11", EXP_BITS);
`else
      PARAMETER_ERROR__fp_add__EXP_BITS_must_be_2_to_11 u_param_error ();
`endif
    end
    if (MAN_BITS < 1 || MAN_BITS > 52) begin : g_bad_man_bits
`ifdef VERILATOR
      $error("fp_add: MAN_BITS=%0d out of range 1..52", MAN_BITS);
`else
      PARAMETER_ERROR__fp_add__MAN_BITS_must_be_1_to_52 u_param_error ();
`endif
    end
  endgenerate

  localparam integer W = 1 + EXP_BITS + MAN_BITS;
  // Aligned significand: {hidden, mantissa, guard, round, sticky}.
  localparam integer SW = MAN_BITS + 4;
  // Sum: one more bit for the carry of an effective addition.
  localparam integer RW = MAN_BITS + 5;
  // Normalisation shift counts 0..RW (the normaliser's stages shift by 2^(LZW-1) .. 1).
  localparam integer LZW = $clog2(RW + 1);
  // Exponent arithmetic width: room for e + 1 and for comparisons with shift counts.
  localparam integer XW = ((EXP_BITS > LZW) ? EXP_BITS : LZW) + 2;

  localparam [XW-1:0] SW_X = SW[XW-1:0];
  localparam [XW-1:0] RW_X = RW[XW-1:0];
  localparam [XW-1:0] X_ONE = {{(XW - 1) {1'b0}}, 1'b1};
  localparam [RW-1:0] R_ONE = {{(RW - 1) {1'b0}}, 1'b1};
  localparam [EXP_BITS-1:0] EXP_ONE = {{(EXP_BITS - 1) {1'b0}}, 1'b1};
  localparam [EXP_BITS-1:0] EXP_ONES = {EXP_BITS{1'b1}};
  localparam [W-1:0] QNAN = {1'b0, EXP_ONES, {MAN_BITS{1'b0}}}
                          | ({{(W - 1) {1'b0}}, 1'b1} << (MAN_BITS - 1));

  // The datapath is one combinational block: it synthesises to the same logic as a net of
  // continuous assignments, and an event-driven simulator evaluates it once per input change
  // instead of once per intermediate wire (3x faster in Icarus, which the regressions and the
  // MAC array simulations feel).
  reg                sa, sb, a_nan, b_nan, a_inf, b_inf, a_ge_b, eff_sub;
  reg                s_l, h_l, h_s, hid, rnd, stk, inc, s_r;
  reg [EXP_BITS-1:0] ea, eb, e_l, e_s, x_l, x_s, e_n, e_f;
  reg [MAN_BITS-1:0] ma, mb, m_l, m_s, m_n;
  reg [XW-1:0]       d_x, d_c, x_lx, sh;
  reg [SW-1:0]       sig_l, sig_s, s_al;
  reg [2*SW-1:0]     s_wide;
  reg [RW-1:0]       r, r_s, r_n;
  reg [W-2:0]        mag;
  reg [W-1:0]        y_r;
  integer            k;

  always @* begin
    // ---------------------------------------------------------------- unpack and classify
    sa = a[W-1];
    sb = b[W-1];
    ea = a[W-2:MAN_BITS];
    eb = b[W-2:MAN_BITS];
    ma = a[MAN_BITS-1:0];
    mb = b[MAN_BITS-1:0];
    a_nan = (ea == EXP_ONES) && (ma != {MAN_BITS{1'b0}});
    b_nan = (eb == EXP_ONES) && (mb != {MAN_BITS{1'b0}});
    a_inf = (ea == EXP_ONES) && (ma == {MAN_BITS{1'b0}});
    b_inf = (eb == EXP_ONES) && (mb == {MAN_BITS{1'b0}});

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
    // x_l >= x_s because |l| >= |s|. Shifting by SW already moves everything into the sticky
    // half; the clamp keeps larger shifts from pushing the bits off the word, so the sticky bit
    // stays exact. (Under round-to-nearest a lone sticky bit never changes the result, so the
    // clamp is not observable at the output; it keeps the datapath's invariant simple.)
    d_x = {{(XW - EXP_BITS) {1'b0}}, x_l - x_s};
    d_c = (d_x > SW_X) ? SW_X : d_x;
    sig_l = {h_l, m_l, 3'b000};
    sig_s = {h_s, m_s, 3'b000};
    s_wide = {sig_s, {SW{1'b0}}} >> d_c;
    s_al = {s_wide[2*SW-1:SW+1], s_wide[SW] | (|s_wide[SW-1:0])};

    // ---------------------------------------------------------------- add / subtract
    if (eff_sub) r = {1'b0, sig_l} - {1'b0, s_al};
    else r = {1'b0, sig_l} + {1'b0, s_al};

    // ---------------------------------------------------------------- normalise
    // Moving the MSB of r to bit RW-1 gives exponent x_l + 1 - lz(r). The shift is capped at
    // x_l so the exponent stops at 1 (the subnormal exponent), leaving the hidden bit 0: a
    // sentinel one at bit RW-1-x_l makes the leading-zero count min(lz(r), x_l). The count is
    // found by a logarithmic normaliser (shift by 2^k when the top 2^k bits are zero).
    x_lx = {{(XW - EXP_BITS) {1'b0}}, x_l};
    r_s = r;
    if (x_lx < RW_X) r_s = r | (R_ONE << (RW_X - X_ONE - x_lx));
    sh = {XW{1'b0}};
    for (k = LZW - 1; k >= 0; k = k - 1) begin
      if ((r_s >> (RW - (1 << k))) == {RW{1'b0}}) begin
        r_s = r_s << (1 << k);
        sh = sh | (X_ONE << k);
      end
    end
    r_n = r << sh;
    // Exact in EXP_BITS bits: 1 <= e_n <= 2^E - 1 because sh <= x_l <= 2^E - 2.
    e_n = x_l + EXP_ONE - sh[EXP_BITS-1:0];
    hid = r_n[RW-1];
    m_n = r_n[RW-2:4];
    rnd = r_n[3];
    stk = |r_n[2:0];
    inc = rnd & (stk | m_n[0]);

    // ---------------------------------------------------------------- round and pack
    e_f = hid ? e_n : {EXP_BITS{1'b0}};
    // A carry out of the mantissa increments the exponent: subnormal -> normal, max -> Inf.
    mag = {e_f, m_n} + {{(W - 2) {1'b0}}, inc};
    // Zero results come only from exact sums (subnormal sums are exact), so the only -0 is
    // -0 + -0.
    s_r = (r == {RW{1'b0}}) ? (sa & sb) : s_l;

    // ---------------------------------------------------------------- select
    if (a_nan || b_nan || (a_inf && b_inf && eff_sub)) y_r = QNAN;
    else if (a_inf || b_inf) y_r = {(a_inf ? sa : sb), EXP_ONES, {MAN_BITS{1'b0}}};
    else if (e_f == EXP_ONES) y_r = {s_r, EXP_ONES, {MAN_BITS{1'b0}}};  // overflow
    else y_r = {s_r, mag};
  end

  assign y = y_r;

endmodule
