"""Exhaustive proof: every operand pair of the 16-bit formats, RTL (Verilator) against the model.

``make prove`` (``python -m sim.prove``) evaluates each configuration below on all of its
operand pairs through Verilator models built by :mod:`sim.rtlsim`, and compares the RTL's
result bits with the reference on the same pairs, NaNs included (the canonical NaN is a bit
pattern like any other):

* ``lmul_core``: BF16, FP16, E4M3 (``e4m3_ieee``), E5M2 x OFFSET {paper, 0} x SATURATE {0, 1},
  against the model ``lmul.lmul_bits``; E4M3FN (``e4m3fn``, OCP FP8 ``float8_e4m3fn``,
  FINITE_ONLY=1) the same way;
* ``fp_mul``: the same formats (E4M3FN included) x SUBNORMALS {1, 0}, against
  :func:`mul_reference`;
* ``fp_add``: the same formats, against :func:`add_reference`; binary32 can't be exhaustive, so
  it gets ``--fp32-vectors`` random and boundary pairs (specials, ties, cancellation, subnormal
  and overflow edges);
* ``dot_datapath`` (the fused dot-product step, docs/dot_product.md): BF16 and E4M3 at several
  K, ALIGN_BITS and both multipliers, ``--dot-steps`` random steps each (default 10^9), plus one
  sweep of every (a_0, b_0) pair against 2^14 samples of the other lanes and the accumulator,
  against the integer reference ``sim/lib/dot_oracle.py`` (details: :mod:`sim.prove_dot`);
* ``act`` (the activation unit ``hdl/act_unit.v``, docs/activation.md): every shipped parameter
  set x sigmoid/tanh on all 2^32 binary32 inputs, against the model ``lmul.act_hw_bits``
  (details: :mod:`sim.prove_act`).

``mul_reference`` and ``add_reference`` (``sim/lib/int_oracle.py``) don't use the project's
model: they form the exact product or sum of the decoded operands in integers and round it once
(round to nearest, ties to even, the module's subnormal policy); ``sim/tests/test_prove.py``
checks them against the rational oracle ``sim/lib/oracle.py``.

Pair index space: a 2-operand configuration of width W has 2^(2W) pairs; pair ``i`` is
``a = i >> W``, ``b = i & (2^W - 1)``. Work is done in blocks of 2^16 consecutive pairs spread
over ``--threads`` threads (each with its own Verilator model); after every chunk of blocks the
progress is written atomically to the resume file (``build/prove/state.json``). Each configuration's
entry records the SHA-256 of the sources that configuration depends on: the Verilog files its
design can read (``rtlsim.design_sources``) and the reference, model and harness files it uses.
An interrupted run continues where it stopped; a configuration whose sources changed since its
entry was written starts over (and says which files changed), while the others keep their
progress, so after an edit of one module ``make prove`` re-proves only the configurations that
read it. A corrupted resume file stops the run with an error (``--fresh`` starts over).

Slices (what ``make test`` runs): ``LMUL_PROVE_PAIRS`` (or ``--pairs``; ``2^24`` and ``1<<24``
spellings are accepted) checks that many pairs per configuration: whole blocks picked at random
with ``LMUL_PROVE_SEED`` (default 1), or consecutive blocks from ``LMUL_PROVE_START`` (a pair
index) when that is set. ``LMUL_PROVE_CONFIGS`` (or ``--configs``) selects configurations by
shell pattern, e.g. ``'lmul_core/bf16/*'``.

``--profile`` prints, per two-operand configuration, the CPU time of each phase of the pair loop
(making the operands, the Verilator evaluation, the reference, the comparison).

Results: ``results/proof.json`` and ``results/proof.md`` (per configuration pairs, mismatches,
wall time, pairs/s, and the SHA-256 of each Verilog and model source proven). A mismatch prints
the first vectors and writes a vector file plus the command that replays it in the cocotb
testbench (``sim/test_replay.py``). The exit status is 1 when any configuration mismatches.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import lmul
from sim import prove_act, prove_dot, rtlsim
from sim.lib import dot_oracle, int_oracle
from sim.lib.cli import run_main
from sim.lib.fileio import atomic_write_text, sha256_file
from sim.lib.int_oracle import (
    add_reference,
    add_reference_into,
    mul_reference,
    mul_reference_into,
)
from sim.lib.progress import progress_bar

REPO = rtlsim.REPO
BLOCK_BITS = 16
BLOCK = 1 << BLOCK_BITS
#: Blocks per chunk: the resume file is written after each chunk (2^25 pairs, about a second).
CHUNK_BLOCKS = 512
STATE_VERSION = 2
DEFAULT_STATE = REPO / "build" / "prove" / "state.json"
DEFAULT_OUT = REPO / "results"
DEFAULT_FP32_VECTORS = 100_000_000
DEFAULT_DOT_STEPS = 1_000_000_000
#: Samples of the dot sweep (each one block of every lane-0 operand pair).
DOT_SWEEP_SAMPLES = 1 << 14
MAX_REPORTED = 8
PRESET_NAMES = ("bf16", "fp16", "e4m3_ieee", "e5m2")
#: Presets of the multipliers only (fp_add has no finite-only encoding): the OCP E4M3FN.
MUL_ONLY_PRESET_NAMES = ("e4m3fn",)

Reference = Callable[[np.ndarray, np.ndarray], np.ndarray]
ReferenceInto = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


class ProofError(RuntimeError):
    """A user-facing error (bad option, unusable resume file): printed as one line."""


# ---------------------------------------------------------------------------------------------
# Configurations


@dataclass(frozen=True)
class Config:
    """One proven configuration: a top module, its parameters and the reference it must match.

    ``space`` is ``"exhaustive"`` (all 2^(2W) pairs), ``"random"`` (binary32: seeded random and
    boundary pairs, count from ``--fp32-vectors``), ``"steps"`` (dot_datapath: seeded random
    steps, count from ``--dot-steps``) or ``"sweep"`` (dot_datapath: every lane-0 pair against
    ``DOT_SWEEP_SAMPLES`` samples of the rest) or ``"unary"`` (act_unit: all 2^W inputs).
    """

    name: str
    top: str
    params: tuple[tuple[str, int], ...]
    fmt: lmul.Format
    reference: str
    space: str = "exhaustive"

    @property
    def width(self) -> int:
        return self.fmt.width

    @property
    def total_pairs(self) -> int:
        if self.space == "sweep":
            return DOT_SWEEP_SAMPLES << (2 * self.width)
        if self.space == "unary":
            return 1 << self.width
        return 1 << (2 * self.width) if self.space == "exhaustive" else 0

    def expected(self) -> Reference:
        """The reference as ``f(a, b) -> bit patterns`` on arrays of the RTL's dtype."""
        p = dict(self.params)
        e, m = self.fmt.exp_bits, self.fmt.man_bits
        fn = self.fmt.finite_only
        if self.top == "lmul_core":
            cfg = lmul.LMulConfig(e, m, offset=p["OFFSET"], saturate=bool(p["SATURATE"]),
                                  finite_only=bool(p.get("FINITE_ONLY", 0)))
            return lambda a, b: lmul.lmul_bits(a, b, cfg)
        if self.top == "fp_mul":
            sub = bool(p["SUBNORMALS"])
            return lambda a, b: mul_reference(a, b, e, m, sub, fn)
        if self.top == "fp_add":
            return lambda a, b: add_reference(a, b, e, m)
        raise ValueError(f"no reference for {self.top}")

    def expected_into(self) -> ReferenceInto:
        """The reference as ``f(a, b, out)``, writing into ``out``: 1-D contiguous arrays of the
        RTL's dtype, operands in range (the proof's inner loop; :meth:`expected` checks them)."""
        p = dict(self.params)
        e, m = self.fmt.exp_bits, self.fmt.man_bits
        if self.top == "fp_mul":
            sub, fn = bool(p["SUBNORMALS"]), self.fmt.finite_only
            return lambda a, b, out: mul_reference_into(a, b, out, e, m, sub, fn)
        if self.top == "fp_add":
            return lambda a, b, out: add_reference_into(a, b, out, e, m)
        ref = self.expected()

        def into(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
            out[:] = ref(a, b)
        return into


def all_configs() -> list[Config]:
    """Every configuration of the proof, in run order."""
    configs = []
    for name in (*PRESET_NAMES, *MUL_ONLY_PRESET_NAMES):
        fmt = lmul.PRESETS[name]
        for offset in (None, 0):
            for sat in (False, True):
                cfg = lmul.LMulConfig.for_format(fmt, offset=offset, saturate=sat)
                tag = "paper" if offset is None else str(offset)
                configs.append(Config(
                    f"lmul_core/{name}/offset={tag}/saturate={int(sat)}", "lmul_core",
                    tuple(sorted(cfg.verilog_parameters().items())), fmt, "lmul.lmul_bits"))
    for name in (*PRESET_NAMES, *MUL_ONLY_PRESET_NAMES):
        fmt = lmul.PRESETS[name]
        for sub in (1, 0):
            params = {"EXP_BITS": fmt.exp_bits, "MAN_BITS": fmt.man_bits, "SUBNORMALS": sub}
            if fmt.finite_only:
                params["FINITE_ONLY"] = 1
            configs.append(Config(f"fp_mul/{name}/subnormals={sub}", "fp_mul",
                                  tuple(sorted(params.items())), fmt, "exact product, RNE"))
    for name in (*PRESET_NAMES, "fp32"):
        fmt = lmul.PRESETS[name]
        params = {"EXP_BITS": fmt.exp_bits, "MAN_BITS": fmt.man_bits}
        configs.append(Config(f"fp_add/{name}", "fp_add", tuple(sorted(params.items())), fmt,
                              "exact sum, RNE",
                              "random" if name == "fp32" else "exhaustive"))
    for name, k, align, mult, space in prove_dot.configs_spec():
        fmt = lmul.PRESETS[name]
        params = {"EXP_BITS": fmt.exp_bits, "MAN_BITS": fmt.man_bits, "K": k,
                  "ALIGN_BITS": align, "MULTIPLIER": mult}
        configs.append(Config(prove_dot.config_name(name, k, align, mult, space), "dot_datapath",
                              tuple(sorted(params.items())), fmt,
                              "window sum, RNE (sim/lib/dot_oracle.py)", space))
    for name, func in prove_act.configs_spec():
        params = lmul.act_config(name, func).verilog_parameters()
        configs.append(Config(prove_act.config_name(name, func), "act_unit",
                              tuple(sorted(params.items())), lmul.FP32, "lmul.act_hw_bits",
                              "unary"))
    return configs


def select_configs(patterns: Sequence[str]) -> list[Config]:
    """Configurations whose name matches any shell pattern (all for an empty list)."""
    configs = all_configs()
    if not patterns:
        return configs
    chosen = [c for c in configs if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]
    if not chosen:
        raise ProofError(f"no configuration matches {list(patterns)} (--list shows them)")
    return chosen


# ---------------------------------------------------------------------------------------------
# Plans: which blocks of the pair space a run covers


def parse_count(text: str, what: str) -> int:
    """``2^24``, ``1<<24``, ``16777216``, ``1e9`` or ``1_000`` as a non-negative int."""
    s = text.strip().replace("_", "")
    m = re.fullmatch(r"(\d+)\s*(?:\^|\*\*)\s*(\d+)", s)
    if m:
        return int(m.group(1)) ** int(m.group(2))
    m = re.fullmatch(r"(\d+)\s*<<\s*(\d+)", s)
    if m:
        return int(m.group(1)) << int(m.group(2))
    m = re.fullmatch(r"(\d+)e(\d+)", s, flags=re.IGNORECASE)
    if m:
        return int(m.group(1)) * 10 ** int(m.group(2))
    if s.isdigit():
        return int(s)
    raise ProofError(f"{what} must be a count like 2^24, 1<<24 or 16777216, got {text!r}")


@dataclass(frozen=True)
class Plan:
    """The blocks one configuration's run covers.

    ``pairs=None`` is the whole space. A slice takes ``ceil(pairs / block)`` whole blocks, random
    ones chosen with ``seed``, or consecutive ones from the block holding pair ``start``.
    """

    pairs: int | None = None
    seed: int = 1
    start: int | None = None
    fp32_vectors: int = DEFAULT_FP32_VECTORS
    dot_steps: int = DEFAULT_DOT_STEPS

    def key(self, config: Config) -> str:
        """What identifies a run of ``config`` in the resume file."""
        if config.space == "steps":
            return f"steps n={self.step_count()} seed={self.seed}"
        if config.space == "random":
            n = self.fp32_vectors if self.pairs is None else min(self.pairs, self.fp32_vectors)
            return f"random n={n} seed={self.seed}"
        if self.pairs is None or self.pairs >= config.total_pairs:
            return "all"
        where = f"start={self.start}" if self.start is not None else f"seed={self.seed}"
        return f"slice pairs={self.pairs} {where}"

    def blocks(self, config: Config) -> tuple[int, np.ndarray]:
        """(block size, block indices in run order)."""
        if config.space == "steps":
            return BLOCK, np.arange(math.ceil(self.step_count() / BLOCK), dtype=np.int64)
        if config.space == "random":
            n = self.fp32_vectors if self.pairs is None else min(self.pairs, self.fp32_vectors)
            return BLOCK, np.arange(math.ceil(n / BLOCK), dtype=np.int64)
        total = config.total_pairs
        block = min(BLOCK, total)
        nblocks = total // block
        if self.pairs is None or self.pairs >= total:
            return block, np.arange(nblocks, dtype=np.int64)
        want = min(nblocks, max(1, math.ceil(self.pairs / block)))
        if self.start is not None:
            first = (self.start % total) // block
            return block, (first + np.arange(want, dtype=np.int64)) % nblocks
        rng = np.random.default_rng(self.seed)
        return block, np.sort(rng.choice(nblocks, size=want, replace=False)).astype(np.int64)

    def random_count(self) -> int:
        return self.fp32_vectors if self.pairs is None else min(self.pairs, self.fp32_vectors)

    def step_count(self) -> int:
        """Random dot_datapath steps per configuration."""
        return self.dot_steps if self.pairs is None else min(self.pairs, self.dot_steps)


def exhaustive_block(config: Config, block: int, index: int, lo: np.ndarray,
                     dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Operands of pairs ``index*block .. +block``: ``a = i >> W``, ``b = i & (2^W-1)``.

    ``block`` is a power of two and ``lo`` is ``arange(block)`` (int64).
    """
    w = config.width
    start = index * block
    if block <= 1 << w:
        # The block lies within one value of a (both powers of two, start a multiple of block):
        # a is constant and b counts up from start's low bits, so no int64 temporaries.
        b = lo.astype(dtype)
        b += np.asarray(start & ((1 << w) - 1), dtype=dtype)
        return np.full(block, start >> w, dtype=dtype), b
    idx = np.int64(start) + lo
    return (idx >> w).astype(dtype), (idx & ((1 << w) - 1)).astype(dtype)


def _special_magnitudes(fmt: lmul.Format) -> np.ndarray:
    m, bias = fmt.man_bits, fmt.bias
    one = bias << m
    mags = {0, 1, 2, 3, fmt.man_mask, fmt.man_mask - 1, 1 << (m - 1), 1 << m, (1 << m) | 1,
            (1 << m) | fmt.man_mask, (2 << m), one, one | 1, one | fmt.man_mask, one - 1,
            one + (1 << m), fmt.max_finite_bits, fmt.max_finite_bits - 1,
            fmt.max_finite_bits - (1 << m), fmt.inf_bits, fmt.qnan_bits, fmt.inf_bits | 1,
            fmt.inf_bits | fmt.man_mask}
    return np.array(sorted(mags), dtype=np.int64)


def random_block(fmt: lmul.Format, seed: int, index: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Block ``index`` of the binary32 sweep: ``n`` pairs drawn by ``default_rng([seed, index])``.

    Block 0 starts with every special/boundary magnitude against every other, both signs. Each
    block mixes: uniform bit patterns; pairs whose exponents differ by 0..M+4 (alignment, guard,
    round and sticky bits); near-cancellation ``b = -(a + small)``; mantissas with few set bits
    next to exponents M+1 / M+2 apart (exact ties); operands near the subnormal boundary and
    near the largest finite value (overflow after rounding).
    """
    rng = np.random.default_rng([seed, index])
    w, m, e_bits = fmt.width, fmt.man_bits, fmt.exp_bits
    emaxf = fmt.max_exp_field
    sign_shift = e_bits + m
    parts_a: list[np.ndarray] = []
    parts_b: list[np.ndarray] = []
    if index == 0:
        mags = _special_magnitudes(fmt)
        vals = np.concatenate([mags, mags | fmt.sign_bit])
        parts_a.append(np.repeat(vals, vals.size))
        parts_b.append(np.tile(vals, vals.size))
    have = sum(p.size for p in parts_a)
    rest = max(0, n - have)
    k = rest // 6
    sizes = [rest - 5 * k, k, k, k, k, k]

    def pack(s: np.ndarray, e: np.ndarray, man: np.ndarray) -> np.ndarray:
        return (s.astype(np.int64) << sign_shift) | (e.astype(np.int64) << m) | man.astype(np.int64)

    def sgn(c: int) -> np.ndarray:
        return rng.integers(0, 2, c)

    def mant(c: int) -> np.ndarray:
        return rng.integers(0, 1 << m, c, dtype=np.int64)

    # uniform bit patterns
    c = sizes[0]
    parts_a.append(rng.integers(0, 1 << w, c, dtype=np.int64))
    parts_b.append(rng.integers(0, 1 << w, c, dtype=np.int64))
    # close exponents
    c = sizes[1]
    ea = rng.integers(1, emaxf, c)
    eb = np.clip(ea + rng.integers(-(m + 4), m + 5, c), 0, emaxf - 1)
    parts_a.append(pack(sgn(c), ea, mant(c)))
    parts_b.append(pack(sgn(c), eb, mant(c)))
    # near-cancellation: b = -(a + delta)
    c = sizes[2]
    a = pack(np.zeros(c, np.int64), rng.integers(0, emaxf, c), mant(c))
    b = np.clip(a + rng.integers(-4, 5, c), 0, fmt.max_finite_bits)
    s = sgn(c)
    parts_a.append(a | (s.astype(np.int64) << sign_shift))
    parts_b.append(b | ((1 - s).astype(np.int64) << sign_shift))
    # ties: sparse mantissas, exponent gaps M+1 and M+2 (and 1, 2)
    c = sizes[3]
    ea = rng.integers(m + 3, emaxf, c)
    gap = rng.choice(np.array([1, 2, m, m + 1, m + 2]), c)
    sparse = (np.int64(1) << rng.integers(0, m, c)) * rng.integers(0, 2, c)
    parts_a.append(pack(sgn(c), ea, sparse | rng.integers(0, 2, c)))
    parts_b.append(pack(sgn(c), ea - gap, (np.int64(1) << rng.integers(0, m, c)) - 1))
    # subnormal boundary
    c = sizes[4]
    parts_a.append(pack(sgn(c), rng.integers(0, 3, c), mant(c)))
    parts_b.append(pack(sgn(c), rng.integers(0, 3, c), mant(c)))
    # overflow edge
    c = sizes[5]
    s = sgn(c)
    parts_a.append(pack(s, emaxf - 1 - rng.integers(0, 2, c), fmt.man_mask - rng.integers(0, 8, c)))
    parts_b.append(pack(s, emaxf - 1 - rng.integers(0, m + 3, c), mant(c)))
    a_all = np.concatenate(parts_a)[:n]
    b_all = np.concatenate(parts_b)[:n]
    return a_all, b_all


# ---------------------------------------------------------------------------------------------
# Sources and the resume file


_HARNESS = (Path(__file__).resolve(), Path(rtlsim.__file__).resolve())


def model_sources(top: str) -> list[Path]:
    """Python and C++ sources a configuration of ``top`` depends on besides its Verilog: the
    harness, the driver, the reference (``int_oracle`` for ``fp_mul``/``fp_add``, which share
    no code with the model beyond the format table; the ``lmul`` package otherwise)."""
    pkg = Path(lmul.__file__).resolve().parent
    files = list(_HARNESS)
    if top in ("fp_mul", "fp_add"):
        files += [Path(int_oracle.__file__).resolve(), rtlsim.BINOP_DRIVER, pkg / "_formats.py"]
    elif top == "lmul_core":
        files += [*sorted(pkg.glob("*.py")), rtlsim.BINOP_DRIVER]
    elif top == "dot_datapath":
        files += [*sorted(pkg.glob("*.py")), Path(prove_dot.__file__).resolve(),
                  Path(dot_oracle.__file__).resolve(), Path(int_oracle.__file__).resolve(),
                  rtlsim.DOT_DRIVER]
    elif top == "act_unit":
        files += [*sorted(pkg.glob("*.py")), Path(prove_act.__file__).resolve(),
                  prove_act.UNARY_DRIVER]
    else:
        raise ValueError(f"no sources known for {top}")
    return files


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(Path(path).resolve())


def config_sources(config: Config, hdl_dirs: Sequence[Path]) -> dict[str, dict[str, str]]:
    """SHA-256 of the Verilog files ``config``'s design can read (``verilog``: the build's own
    search path, ``sim/hdl/`` first for the dot_datapath wrapper) and of its reference, model
    and harness sources (``model``), keyed by path relative to the repository."""
    if config.top == "dot_datapath":
        top, dirs = "dot_datapath_lanes", [rtlsim.SIM_HDL_DIR, *hdl_dirs]
    else:
        top, dirs = config.top, list(hdl_dirs)
    return {"verilog": {_rel(p): sha256_file(p) for p in rtlsim.design_sources(top, dirs)},
            "model": {_rel(p): sha256_file(p) for p in model_sources(config.top)}}


def source_hashes(configs: Sequence[Config], hdl_dirs: Sequence[Path]
                  ) -> dict[str, dict[str, dict[str, str]]]:
    """:func:`config_sources` of each configuration, by name."""
    return {c.name: config_sources(c, hdl_dirs) for c in configs}


def _merged(sources: Sequence[dict[str, dict[str, str]]]) -> dict[str, dict[str, str]]:
    """The union of several configurations' sources (one hash per file: they are read once)."""
    out: dict[str, dict[str, str]] = {"verilog": {}, "model": {}}
    for src in sources:
        for kind in out:
            out[kind].update(src[kind])
    return out


def _changed(old: dict, new: dict[str, dict[str, str]]) -> list[str]:
    return sorted(f for kind in ("verilog", "model")
                  for f in set(old.get(kind, {})) | set(new[kind])
                  if old.get(kind, {}).get(f) != new[kind].get(f))


def load_state(path: Path, fresh: bool) -> dict:
    """The resume state at ``path`` (empty if absent or ``fresh``).

    Raises ProofError for a file that is not a valid state (another version included). Whether
    an entry's sources still hold is :func:`run_config`'s decision, per configuration.
    """
    empty = {"version": STATE_VERSION, "configs": {}}
    if fresh or not path.exists():
        return empty
    fix = f"delete {_rel(path)} or pass --fresh to start over"
    try:
        state = json.loads(path.read_text())
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise ValueError(f"version {state.get('version') if isinstance(state, dict) else None}"
                             f" != {STATE_VERSION}")
        configs = state["configs"]
        if not isinstance(configs, dict):
            raise ValueError("'configs' is not an object")
        for name, entry in configs.items():
            for field in ("plan", "sources", "blocks_done", "pairs", "mismatches", "wall_s",
                          "first"):
                if field not in entry:
                    raise ValueError(f"entry {name!r} lacks {field!r}")
            if not isinstance(entry["blocks_done"], int) or entry["blocks_done"] < 0:
                raise ValueError(f"entry {name!r} has blocks_done {entry['blocks_done']!r}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProofError(f"resume file {_rel(path)} is corrupted ({exc}): {fix}") from None
    return state


def save_state(path: Path, state: dict) -> None:
    atomic_write_text(path, json.dumps(state, indent=1, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------------------------
# Running one configuration


@dataclass
class PhaseTimes:
    """CPU seconds (summed over threads) of each phase of the two-operand pair loop: making the
    operands, the Verilator evaluation, the reference, the comparison (``--profile``)."""

    operands: float = 0.0
    rtl: float = 0.0
    reference: float = 0.0
    compare: float = 0.0
    pairs: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, pairs: int, operands: float, rtl: float, reference: float,
            compare: float) -> None:
        with self._lock:
            self.pairs += pairs
            self.operands += operands
            self.rtl += rtl
            self.reference += reference
            self.compare += compare

    def summary(self) -> str:
        """One line: CPU seconds and pairs per CPU second of each phase."""
        parts = []
        total = 0.0
        for name in ("operands", "rtl", "reference", "compare"):
            t = getattr(self, name)
            total += t
            parts.append(f"{name} {t:.2f} s ({_fmt_rate(self.pairs / t if t > 0 else 0.0)}/s)")
        rate = _fmt_rate(self.pairs / total if total > 0 else 0.0)
        return (f"{', '.join(parts)}; {total:.2f} CPU s, {rate} pairs per CPU second "
                f"({self.pairs:,} pairs)")


@dataclass
class Outcome:
    """Result of one configuration (``phases``: this run's pair-loop profile, two-operand
    configurations only)."""

    name: str
    plan: str
    pairs: int
    mismatches: int
    wall_s: float
    first: list[dict[str, str]]
    complete: bool
    phases: PhaseTimes | None = None

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.wall_s if self.wall_s > 0 else 0.0


def _pair_evaluator(config: Config, plan: Plan, block: int, threads: int,
                    hdl_dirs: Sequence[Path], phases: PhaseTimes | None = None
                    ) -> tuple[rtlsim.BinOp, prove_dot.Work]:
    """The RTL model and ``work(block index) -> (pairs, mismatches, first mismatches)`` of a
    two-operand configuration; ``phases`` (if given) collects each phase's CPU time."""
    params = dict(config.params)
    rtl = rtlsim.BinOp(config.top, params, threads=threads, hdl_dirs=hdl_dirs)
    expected = config.expected_into()
    dtype = rtl.dtype
    lo = np.arange(block, dtype=np.int64)
    rand_n = plan.random_count()

    clock = time.thread_time

    def work(index: int) -> tuple[int, int, list[dict[str, str]]]:
        t0 = clock()
        if config.space == "random":
            n = min(block, rand_n - index * block)
            a64, b64 = random_block(config.fmt, plan.seed, index, n)
            a, b = a64.astype(dtype), b64.astype(dtype)
        else:
            a, b = exhaustive_block(config, block, index, lo, dtype)
        y = np.empty(a.size, dtype=dtype)
        t1 = clock()
        rtl.run_unchecked(a, b, y)
        t2 = clock()
        exp = np.empty(a.size, dtype=dtype)
        expected(a, b, exp)
        t3 = clock()
        bad = np.flatnonzero(y != exp)
        if phases is not None:
            phases.add(a.size, t1 - t0, t2 - t1, t3 - t2, clock() - t3)
        first = [{"a": f"0x{int(a[i]):x}", "b": f"0x{int(b[i]):x}", "rtl": f"0x{int(y[i]):x}",
                  "expected": f"0x{int(exp[i]):x}"} for i in bad[:MAX_REPORTED]]
        return a.size, int(bad.size), first

    warm = np.zeros(1, dtype=dtype)
    # JIT compilation or cache loading stays out of the timed loop
    expected(warm, warm, np.empty_like(warm))
    return rtl, work


def run_config(config: Config, plan: Plan, state: dict, state_path: Path | None,
               threads: int, hdl_dirs: Sequence[Path], progress: bool = True,
               sources: dict[str, dict[str, str]] | None = None) -> Outcome:
    """Prove one configuration (resuming from ``state`` if its entry has the same plan and was
    written for the same ``sources``, default :func:`config_sources`), saving progress after
    each chunk."""
    key = plan.key(config)
    if sources is None:
        sources = config_sources(config, hdl_dirs)
    entry = state["configs"].get(config.name)
    if entry is not None and entry["plan"] == key and entry["sources"] != sources:
        print(f"{config.name}: sources changed since the resume file "
              f"({', '.join(_changed(entry['sources'], sources)) or 'layout'}), starting over",
              file=sys.stderr)
    if entry is None or entry["plan"] != key or entry["sources"] != sources:
        entry = {"plan": key, "sources": sources, "blocks_done": 0, "pairs": 0,
                 "mismatches": 0, "wall_s": 0.0, "first": [], "complete": False}
        state["configs"][config.name] = entry
    block, blocks = plan.blocks(config)
    params = dict(config.params)
    if entry.get("complete"):
        return Outcome(config.name, key, entry["pairs"], entry["mismatches"], entry["wall_s"],
                       entry["first"], True)
    phases = None
    if config.top == "dot_datapath":
        total = (block * blocks.size if config.space == "sweep" else plan.step_count())
        rtl, work = prove_dot.evaluator(params, config.fmt, config.space, plan.seed, total,
                                        threads, hdl_dirs)
    elif config.top == "act_unit":
        rtl, work = prove_act.evaluator(params, block, threads, hdl_dirs)
        total = block * blocks.size
    else:
        phases = PhaseTimes()
        rtl, work = _pair_evaluator(config, plan, block, threads, hdl_dirs, phases)
        total = (block * blocks.size if config.space == "exhaustive"
                 else plan.random_count())
    bar = progress_bar(total, config.name, "pair", progress, unit_scale=True)
    bar.update(entry["pairs"])
    pool = ThreadPoolExecutor(threads)
    try:
        done = entry["blocks_done"]
        while done < blocks.size:
            chunk = blocks[done:done + CHUNK_BLOCKS].tolist()
            t0 = time.perf_counter()
            pairs = nbad_total = 0
            found: list[dict[str, str]] = []
            for n, nbad, first in pool.map(work, chunk):
                pairs += n
                nbad_total += nbad
                found.extend(first[:max(0, MAX_REPORTED - len(found))])
                bar.update(n)
            # The entry changes only with a whole chunk, so the saved state never counts a
            # block that an interrupt cut short.
            done += len(chunk)
            entry["pairs"] += pairs
            entry["mismatches"] += nbad_total
            entry["first"].extend(found[:max(0, MAX_REPORTED - len(entry["first"]))])
            entry["blocks_done"] = done
            entry["wall_s"] += time.perf_counter() - t0
            entry["complete"] = done >= blocks.size
            if state_path is not None:
                save_state(state_path, state)
    finally:
        # On an interrupt, drop the chunk's queued blocks instead of finishing them.
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
        rtl.close()
    return Outcome(config.name, key, entry["pairs"], entry["mismatches"], entry["wall_s"],
                   entry["first"], entry["complete"], phases)


# ---------------------------------------------------------------------------------------------
# Mismatch replay, results


def write_replay(config: Config, first: list[dict[str, str]], directory: Path,
                 prefix: str = "replay") -> tuple[Path, str]:
    """Write the mismatching vectors for ``sim/test_replay.py``; returns (file, command)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", config.name)
    path = directory / f"{prefix}-{safe}.json"
    data = {
        "config": config.name,
        "top": config.top,
        "parameters": dict(config.params),
        "width": config.width,
        "a": [v["a"] for v in first],
        "b": [v["b"] for v in first],
        "expected": [v["expected"] for v in first],
    }
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")
    cmd = (f"LMUL_REPLAY={shlex.quote(_rel(path))} .venv/bin/python -m pytest "
           "sim/test_replay.py -q -s")
    return path, cmd


def _fmt_rate(x: float) -> str:
    return f"{x / 1e6:,.1f} M" if x >= 1e6 else f"{x:,.0f}"


def write_results(out_dir: Path, outcomes: list[Outcome], configs: dict[str, Config],
                  hashes: dict[str, dict[str, dict[str, str]]], meta: dict,
                  hdl_dirs: Sequence[Path] = (rtlsim.HDL_DIR,)) -> None:
    """Merge ``outcomes`` into ``out_dir/proof.json`` (keeping other configurations' entries
    whose recorded sources are still today's) and regenerate ``out_dir/proof.md``.
    ``hashes`` holds :func:`config_sources` of the configurations in ``outcomes``."""
    path = out_dir / "proof.json"
    entries: dict[str, dict] = {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
            known = {c.name: c for c in all_configs()}
            for e in old.get("configs", []):
                c = known.get(e["config"])
                if c is not None and e.get("sources") == config_sources(c, hdl_dirs):
                    entries[e["config"]] = e
        except (ValueError, AttributeError, KeyError, TypeError, FileNotFoundError):
            entries = {}
    for o in outcomes:
        c = configs[o.name]
        entries[o.name] = {
            "config": o.name, "top": c.top, "parameters": dict(c.params), "reference": c.reference,
            "space": o.plan, "pairs": o.pairs, "mismatches": o.mismatches,
            "complete": o.complete, "wall_s": round(o.wall_s, 3),
            "pairs_per_s": round(o.pairs_per_s), "first_mismatches": o.first,
            "sources": hashes[o.name],
        }
    order = {c.name: i for i, c in enumerate(all_configs())}
    rows = sorted(entries.values(), key=lambda e: order.get(e["config"], 1 << 30))
    union = _merged([e["sources"] for e in rows])
    doc = {"command": meta["command"], "machine": meta["machine"], "sources": union,
           "configs": rows}
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    lines = [
        "# Exhaustive RTL proof",
        "",
        f"Command: `{meta['command']}` ({meta['machine']}). RTL evaluated by Verilator, compared "
        "bit for bit (NaNs included) with the reference on every pair listed; wall time and "
        "pairs/s cover evaluation and comparison (the cached model builds excluded).",
        "",
        "| configuration | reference | pairs | space | mismatches | wall s | pairs/s |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for e in rows:
        state = "" if e["complete"] else " (incomplete)"
        lines.append(f"| `{e['config']}` | {e['reference']} | {e['pairs']:,} | {e['space']}{state}"
                     f" | {e['mismatches']} | {e['wall_s']:.1f} | {_fmt_rate(e['pairs_per_s'])} |")
    lines += ["", "SHA-256 of the sources proven (each configuration's own list is in "
              "proof.json):", ""]
    for kind in ("verilog", "model"):
        for f, h in sorted(union[kind].items()):
            lines.append(f"- `{f}` `{h}`")
    atomic_write_text(out_dir / "proof.md", "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------
# Benchmark: the same vectors through the cocotb/Icarus testbench


def bench_cocotb(config: Config, n: int, directory: Path) -> float:
    """Seconds for ``sim/test_replay.py`` (cocotb + Icarus) to check ``n`` pairs of ``config``,
    simulator compile and start-up included."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 1 << config.width, n, dtype=np.int64).astype(np.uint64)
    b = rng.integers(0, 1 << config.width, n, dtype=np.int64).astype(np.uint64)
    exp = np.asarray(config.expected()(a.astype(config.fmt.uint_dtype),
                                       b.astype(config.fmt.uint_dtype))).astype(np.uint64)
    first = [{"a": hex(int(x)), "b": hex(int(y)), "expected": hex(int(z)), "rtl": ""}
             for x, y, z in zip(a, b, exp, strict=True)]
    path, _ = write_replay(config, first, directory, prefix="bench")
    env = dict(os.environ, LMUL_REPLAY=str(path))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(REPO / "sim" / "test_replay.py")], cwd=REPO, env=env,
                          capture_output=True, text=True, check=False)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise ProofError("cocotb benchmark failed: " + (proc.stdout + proc.stderr).strip()[-2000:])
    return dt


# ---------------------------------------------------------------------------------------------
# Command line


def _keep_freed_memory() -> None:
    """Ask glibc to keep freed blocks instead of returning them to the kernel.

    Every block allocates numpy temporaries of 0.5 MB, above glibc's mmap threshold; by default
    each is mapped, faulted in page by page and unmapped again, which cost as much system time
    as the whole evaluation (87 M page faults for one 2^32-pair configuration). A fixed 64 MB
    mmap threshold and a 256 MB trim threshold make the allocator reuse that memory.
    """
    import ctypes

    libc = ctypes.CDLL(None)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:  # not glibc: nothing to tune
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 64 << 20)
    mallopt(m_trim_threshold, 256 << 20)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _env_default(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim.prove",
        description="Exhaustive RTL-vs-model proof through Verilator (see module docstring).")
    parser.add_argument("--configs", nargs="*", default=None,
                        help="shell patterns of configuration names (env LMUL_PROVE_CONFIGS, "
                             "space-separated); default all")
    parser.add_argument("--list", action="store_true", help="list the configurations and exit")
    parser.add_argument("--pairs", default=_env_default("LMUL_PROVE_PAIRS"),
                        help="slice: pairs per configuration, e.g. 2^24 (env LMUL_PROVE_PAIRS)")
    parser.add_argument("--seed", type=int, default=int(_env_default("LMUL_PROVE_SEED") or 1),
                        help="seed of the slice's blocks and of the binary32 sweep "
                             "(env LMUL_PROVE_SEED, default 1)")
    parser.add_argument("--start", default=_env_default("LMUL_PROVE_START"),
                        help="slice of consecutive pairs from this index (env LMUL_PROVE_START)")
    parser.add_argument("--fp32-vectors", default=str(DEFAULT_FP32_VECTORS),
                        help=f"binary32 fp_add random+boundary pairs (default "
                             f"{DEFAULT_FP32_VECTORS:.0e}; 1e9 on demand)")
    parser.add_argument("--dot-steps", default=str(DEFAULT_DOT_STEPS),
                        help=f"random steps per dot_datapath configuration (default "
                             f"{DEFAULT_DOT_STEPS:.0e})")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help="worker threads, each with its own Verilator model (default: cores)")
    parser.add_argument("--state", type=Path, default=DEFAULT_STATE, help="resume file")
    parser.add_argument("--fresh", action="store_true", help="ignore and replace the resume file")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT,
                        help="where proof.json / proof.md go (default results/)")
    parser.add_argument("--no-results", action="store_true",
                        help="don't write proof.json / proof.md (slices, tests)")
    parser.add_argument("--hdl-dir", type=Path, action="append", default=None,
                        help="Verilog search directory (default hdl/; repeatable)")
    parser.add_argument("--bench", type=int, nargs="?", const=50_000, default=None,
                        metavar="N", help="also time N pairs (default 50000) of the first "
                        "configuration through the cocotb/Icarus testbench and print the ratio")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--profile", action="store_true",
                        help="print the CPU time of each phase of the pair loop (operands, "
                             "Verilator, reference, comparison) per two-operand configuration")
    args = parser.parse_args(argv)
    return run_main("prove", lambda: _main(args),
                    (ProofError, rtlsim.ToolMissingError, rtlsim.RtlBuildError),
                    interrupted=f"finished chunks are saved in {_rel(args.state)}, run the same "
                                "command again to resume")


def _main(args: argparse.Namespace) -> int:
    patterns = args.configs
    if patterns is None:
        env = _env_default("LMUL_PROVE_CONFIGS")
        patterns = env.split() if env else []
    configs = select_configs(patterns)
    if args.list:
        for c in configs:
            print(c.name)
        return 0
    if args.threads < 1:
        raise ProofError(f"--threads must be >= 1, got {args.threads}")
    pairs = None if args.pairs is None else parse_count(args.pairs, "LMUL_PROVE_PAIRS/--pairs")
    if pairs is not None and pairs < 1:
        raise ProofError("LMUL_PROVE_PAIRS/--pairs must be >= 1")
    start = None if args.start is None else parse_count(args.start, "LMUL_PROVE_START/--start")
    plan = Plan(pairs=pairs, seed=args.seed, start=start,
                fp32_vectors=parse_count(args.fp32_vectors, "--fp32-vectors"),
                dot_steps=parse_count(args.dot_steps, "--dot-steps"))
    hdl_dirs = [p.resolve() for p in (args.hdl_dir or [rtlsim.HDL_DIR])]
    rtlsim.verilator_version()
    _keep_freed_memory()
    hashes = source_hashes(configs, hdl_dirs)
    state_path = args.state.resolve()
    state = load_state(state_path, args.fresh)
    save_state(state_path, state)
    print(f"prove: {len(configs)} configuration(s), "
          f"{'all pairs' if pairs is None else f'slice of {pairs:,} pairs'}, seed {plan.seed}, "
          f"{args.threads} thread(s), resume file {_rel(state_path)}", file=sys.stderr)
    load_at_start = os.getloadavg()[0]
    outcomes = []
    failed = False
    for config in configs:
        out = run_config(config, plan, state, state_path, args.threads, hdl_dirs,
                         progress=not args.no_progress, sources=hashes[config.name])
        outcomes.append(out)
        print(f"{out.name}: {out.pairs:,} pairs, {out.mismatches} mismatches, {out.wall_s:.1f} s, "
              f"{_fmt_rate(out.pairs_per_s)} pairs/s", flush=True)
        if args.profile and out.phases is not None and out.phases.pairs:
            print(f"  profile (this run): {out.phases.summary()}", flush=True)
        if out.mismatches and config.top == "dot_datapath":
            failed = True
            print(f"  MISMATCH in {out.name}; first steps (a lanes, b lanes, acc -> rtl, "
                  "expected):")
            for v in out.first:
                print(f"    a={v['a']} b={v['b']} acc={v['acc']} -> rtl={v['rtl']} "
                      f"expected={v['expected']}")
        elif out.mismatches and config.top == "act_unit":
            failed = True
            print(f"  MISMATCH in {out.name}; first inputs (x -> rtl, expected):")
            for v in out.first:
                print(f"    x={v['a']} -> rtl={v['rtl']} expected={v['expected']}")
        elif out.mismatches:
            failed = True
            _, cmd = write_replay(config, out.first, state_path.parent)
            print(f"  MISMATCH in {out.name}; first vectors (a, b -> rtl, expected):")
            for v in out.first:
                print(f"    a={v['a']} b={v['b']} -> rtl={v['rtl']} expected={v['expected']}")
            print(f"  replay in the cocotb testbench (WAVES=1 for a waveform):\n    {cmd}")
    if not args.no_results:
        meta = {"command": "make prove" if pairs is None and not patterns else
                "python -m sim.prove " + " ".join(sys.argv[1:]),
                "machine": f"{_cpu_name()}, {os.cpu_count()} cores, {args.threads} threads, "
                           f"load average {load_at_start:.1f} at the start"}
        write_results(args.out_dir, outcomes, {c.name: c for c in configs}, hashes, meta,
                      hdl_dirs)
        print(f"prove: wrote {_rel(args.out_dir / 'proof.json')} and proof.md")
    if args.bench is not None:
        config = next(c for c in configs if c.space == "exhaustive")
        verilator = next(o for o in outcomes if o.name == config.name)
        dt = bench_cocotb(config, args.bench, state_path.parent)
        rate = args.bench / dt
        print(f"bench {config.name}: Verilator {_fmt_rate(verilator.pairs_per_s)} pairs/s "
              f"({verilator.pairs:,} pairs in {verilator.wall_s:.1f} s), cocotb/Icarus "
              f"{_fmt_rate(rate)} pairs/s ({args.bench:,} pairs in {dt:.1f} s, compile included):"
              f" {verilator.pairs_per_s / rate:,.0f}x")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
