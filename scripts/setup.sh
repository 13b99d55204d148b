#!/usr/bin/env bash
# One-shot, idempotent set-up of a fresh machine: Debian packages, the project's venv, the package.
# Called by `make` (through the .venv/.setup-done stamp) and by .ci/run; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
# base: Debian packages, the venv, the package and test tools - enough for `make sim` and
# `make lint` (no PyTorch); full (default): also PyTorch and the experiments' extras.
MODE=${1:-full}
case "$MODE" in
  base | full) ;;
  *) echo "usage: scripts/setup.sh [base|full]" >&2; exit 2 ;;
esac
APT_PACKAGES=(iverilog verilator yosys dataset-fashion-mnist)
# Verilator's C++ models (experiments/rtlsim.py) need a compiler and make; Debian's verilator
# package does not depend on them.
APT_PACKAGES+=(g++ make)
# `make cost`: the OSU 0.18 um standard-cell library and the OpenSTA timing/power analyzer.
APT_PACKAGES+=(qflow-tech-osu018 opensta)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
if [ "$MODE" = base ]; then
  echo "setup: installing the lmul package and test dependencies, FuseSoC (no PyTorch)"
  "$VENV/bin/pip" install -q -e ".[test,fusesoc]"  # fusesoc: sim/tests/test_fusesoc.py
  touch "$VENV/.setup-base"
  echo "setup: done (base)"
  exit 0
fi
if ! "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
  echo "setup: installing torch==2.14.1 torchvision==0.29.1 (large, once)"
  "$VENV/bin/pip" install -q torch==2.14.1 torchvision==0.29.1
fi
echo "setup: installing the lmul package, test dependencies, FuseSoC, Ray, yowasp (FPGA)"
"$VENV/bin/pip" install -q -e ".[test,ray,fusesoc,fpga]"
touch "$VENV/.setup-base" "$VENV/.setup-done"
echo "setup: done"
