// lmul_defs.vh: definitions shared by the L-Mul modules (the one place they are written down).
//
// Include after the `timescale / `default_nettype lines of a module file; the tools need the
// hdl/ directory on their include path (iverilog -I hdl, verilator -Ihdl; yosys finds it next to
// the including file).
`ifndef LMUL_DEFS_VH
`define LMUL_DEFS_VH

// The paper's default OFFSET (Luo & Sun, arXiv 2410.00907, eq. 2) for a MAN_BITS-bit mantissa,
// in mantissa LSBs: 2^(MAN_BITS - l(MAN_BITS)) with l(m) = m for m <= 3, 3 for m = 4, 4 above
// (so 1 for m <= 3, 2 for m = 4, 2^(m-4) above; 8 for BF16). OFFSET = 0 is Mitchell's
// approximation. The Python model's LMulConfig computes the same default.
`define LMUL_DEFAULT_OFFSET(man_bits) \
    (((man_bits) <= 3) ? 1 : (((man_bits) == 4) ? 2 : (1 << ((man_bits) - 4))))

`endif  // LMUL_DEFS_VH
