# Yosys script of the FuseSoC core's `synth` target (lmul.core): technology-independent synthesis
# of the core's toplevel with its parameters, then the cell count. FuseSoC copies this file into
# the build directory; edalize writes edalize_yosys_procs.tcl beside it (the core's files, include
# directories, defines and parameters) and sets $top and $name. Edalize's own template would call
# synth_<arch>, an FPGA flow; `make synth` (syn/synth.py) is the project's gate-count flow.
yosys -import
source edalize_yosys_procs.tcl
verilog_defaults -push
verilog_defaults -add -defer
set_defines
set_incdirs
read_files
set_params
verilog_defaults -pop
yosys synth -flatten -top $top
yosys check -assert
yosys stat
yosys write_json $name.json
