`timescale 1ns/1ps
// pe_datapath_lmul: synthesis-only wrapper (experiments/synth.py). The combinational datapath of
// one MAC processing element with the L-Mul multiplier, as in hdl/mac_pe.v without its pipeline
// registers: y = fp_add(acc, fmt_to_fp32(lmul_core(a, b))), binary32 accumulation, RNE.
// pe_datapath_exact.v is the same datapath with the exact multiplier hdl/fp_mul.v, so the two
// differ only in the multiplier. Parameters are checked by the instantiated modules.
module pe_datapath_lmul #(
    parameter integer EXP_BITS = 8,
    parameter integer MAN_BITS = 7,
    parameter integer OFFSET   = (MAN_BITS <= 3) ? 1 :
                                 ((MAN_BITS == 4) ? 2 : (1 << (MAN_BITS - 4))),
    parameter integer SATURATE = 0
) (
    input  wire [EXP_BITS+MAN_BITS:0] a,
    input  wire [EXP_BITS+MAN_BITS:0] b,
    input  wire [31:0]                acc,
    output wire [31:0]                y
);

  wire [EXP_BITS+MAN_BITS:0] prod;
  wire [31:0]                prod32;

  lmul_core #(
      .EXP_BITS(EXP_BITS),
      .MAN_BITS(MAN_BITS),
      .OFFSET  (OFFSET),
      .SATURATE(SATURATE)
  ) u_mul (
      .a(a),
      .b(b),
      .y(prod)
  );

  fmt_to_fp32 #(
      .EXP_BITS(EXP_BITS),
      .MAN_BITS(MAN_BITS)
  ) u_widen (
      .x(prod),
      .y(prod32)
  );

  fp_add #(
      .EXP_BITS(8),
      .MAN_BITS(23)
  ) u_add (
      .a(acc),
      .b(prod32),
      .y(y)
  );

endmodule
