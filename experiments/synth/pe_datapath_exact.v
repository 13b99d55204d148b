`timescale 1ns/1ps
// pe_datapath_exact: synthesis-only wrapper (experiments/synth.py). The combinational datapath of
// one MAC processing element with the exact IEEE multiplier hdl/fp_mul.v:
// y = fp_add(acc, fmt_to_fp32(fp_mul(a, b))), binary32 accumulation, RNE. Identical to
// pe_datapath_lmul.v except for the multiplier. SUBNORMALS selects fp_mul's subnormal policy
// (1: full IEEE, 0: flush like the L-Mul unit). Parameters are checked by the instantiated modules.
module pe_datapath_exact #(
    parameter integer EXP_BITS   = 8,
    parameter integer MAN_BITS   = 7,
    parameter integer SUBNORMALS = 1
) (
    input  wire [EXP_BITS+MAN_BITS:0] a,
    input  wire [EXP_BITS+MAN_BITS:0] b,
    input  wire [31:0]                acc,
    output wire [31:0]                y
);

  wire [EXP_BITS+MAN_BITS:0] prod;
  wire [31:0]                prod32;

  fp_mul #(
      .EXP_BITS  (EXP_BITS),
      .MAN_BITS  (MAN_BITS),
      .SUBNORMALS(SUBNORMALS)
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
