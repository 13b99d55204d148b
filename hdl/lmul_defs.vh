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

// The canonical quiet NaN of the format {sign, exponent[exp_bits], mantissa[man_bits]}: sign 0,
// exponent all ones, mantissa MSB only (every NaN result of the datapaths; for binary32
// 0x7FC00000). A (1 + exp_bits + man_bits)-bit constant; the model's Format.qnan_bits.
`define LMUL_QNAN(exp_bits, man_bits) \
    ({1'b0, {(exp_bits){1'b1}}, {(man_bits){1'b0}}} \
     | ({{((exp_bits) + (man_bits)){1'b0}}, 1'b1} << ((man_bits) - 1)))

// The canonical NaN of a format with FINITE_ONLY (0 or 1): `LMUL_QNAN for IEEE-style encodings;
// for a finite-only (OCP "FN", e.g. float8_e4m3fn) format, whose one NaN magnitude is exponent
// and mantissa all ones, sign 0 and every other bit 1 (E4M3FN 0x7F). The model's Format.qnan_bits.
`define LMUL_NAN(exp_bits, man_bits, finite_only) \
    (((finite_only) != 0) ? {1'b0, {((exp_bits) + (man_bits)){1'b1}}} \
                          : `LMUL_QNAN(exp_bits, man_bits))

// Widest EXP_BITS of a finite-only format in the modules that widen to binary32: its extra
// binade (exponent field all ones) must fit binary32 (the model's LMUL_FINITE_ONLY_MAX_EXP_BITS).
`define LMUL_FINITE_ONLY_MAX_EXP_BITS 7

// One parameter range check, written once (use inside a generate region):
//   `LMUL_PARAM_CHECK(<condition that must hold>, <generate block label>,
//                     <error module name>, (<$error format>, <arguments>))
// Under Verilator the formatted message is reported ($error at elaboration); Icarus and yosys,
// which have no elaboration-time $error, fail on the instance of the undefined module whose name
// spells the rule (PARAMETER_ERROR__<module>__<rule>). (A comment line must not start with the
// word Verilator: Verilator reads such a line as a directive to itself.)
`ifdef VERILATOR
`define LMUL_PARAM_CHECK(ok, label, error_module, message) \
    if (!(ok)) begin : label \
      $error message; \
    end
`else
`define LMUL_PARAM_CHECK(ok, label, error_module, message) \
    if (!(ok)) begin : label \
      error_module u_param_error (); \
    end
`endif

`endif  // LMUL_DEFS_VH
