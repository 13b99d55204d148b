# Every target sets the machine up first (Debian packages, .venv, the package): see scripts/setup.sh.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.setup-done
PYTEST ?= $(PY) -m pytest

.PHONY: setup test test-model sim lint experiment reproduce report data analysis synth bench clean

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh

setup: $(STAMP)

## All tests: model unit tests, experiment tests, RTL static checks and cocotb regressions.
test: $(STAMP)
	$(PYTEST) model/tests experiments/tests sim

test-model: $(STAMP)
	$(PYTEST) model/tests experiments/tests

## cocotb regressions only (COCOTB_RANDOM_SEED, LMUL_VECTORS, LMUL_FULL=1 tune them).
sim: $(STAMP)
	$(PYTEST) sim

lint: $(STAMP)
	$(PY) scripts/lint_hdl.py
	$(VENV)/bin/ruff check model experiments sim scripts

## The main job: LSTM on MNIST (rows), fp32 vs bf16 vs L-Mul vs the seed notebook's multiplier.
experiment: $(STAMP)
	$(PY) -m experiments.accuracy --preset experiment

## The seed notebook's table, re-measured (long: see README).
reproduce: $(STAMP)
	$(PY) -m experiments.accuracy --preset reproduce

## Regenerate the tables and plots of the accuracy experiments from their JSON.
report: $(STAMP)
	@for f in results/experiment.json results/reproduce.json; do \
	  if [ -f $$f ]; then $(PY) -m experiments.report $$f || exit 1; fi; done

data: $(STAMP)
	$(PY) -m experiments.data

analysis: $(STAMP)
	$(PY) -m experiments.precision

synth: $(STAMP)
	$(PY) -m experiments.synth

bench: $(STAMP)
	$(PY) -m experiments.bench_kernels

clean:
	rm -rf sim/sim_build .pytest_cache .ruff_cache
