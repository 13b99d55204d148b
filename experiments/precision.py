"""Precision of L-Mul against exact multiplication: error tables, verdicts and plots.

``python -m experiments.precision`` (``make analysis``) measures, with the bit-exact model
(``lmul.lmul_bits``, ``lmul.seed_lmul``, ``lmul.round_to_format_bits``), the relative error

    err = approx / exact - 1   (= (|approx| - |exact|) / |exact|: negative means too small)

of each multiplier against ``exact``, the exact (float64) product of the *same quantized operands*:

* ``lmul``      - the L-Mul unit with the paper's offset 2^(M-l(M));
* ``mitchell``  - the L-Mul unit with offset 0 (Mitchell's approximation);
* ``seed``      - the seed notebook's BF16 multiplier (BF16 only; includes its x1.046875 scale);
* ``exact_rne`` - the exact product rounded to the format (RNE), i.e. an ordinary IEEE multiply.

Formats: mantissa widths M = 1..7 and 10 with an 8-bit exponent (``e8m1`` .. ``e8m10``; ``e8m7``
is BF16) and the presets E4M3, E5M2, FP16 (BF16 = e8m7). Operand distributions:

* ``grid``: exhaustive over all mantissa pairs at a fixed exponent (operands in [1, 2)); relative
  errors are scale-invariant, so this is the uniform-mantissa case, exactly;
* ``gauss``: N(0, 1) float32 operand pairs (default 10 million, seeded), rounded to the format
  (RNE). Statistics use the pairs where both quantized operands are normal and the exact product
  lies in [2 x smallest normal, largest finite / 2] (domain ``normal``: the multiplier's own
  arithmetic); domain ``all`` keeps every pair with a nonzero exact product, so flushed
  subnormal operands and underflowing products count too. ``*_vs_real`` columns measure against
  the float64 product of the unquantized float32 operands instead (operand rounding included).

The offset sweep gives, for every format, bias (mean signed error) and mean absolute error as a
function of OFFSET = 0 .. 2^(M-1) on the grid (and on the first ``--sweep-n`` Gaussian pairs for
the presets), marking the paper's offset, the bias-free offset and the error-minimising offset.
The sweep evaluates L-Mul in closed form on the mantissas (a few float operations per pair
instead of the full model); that closed form is checked against ``lmul.lmul_bits`` on every run.

This module measures (:func:`run` gives a :class:`Results`) and derives the verdicts
(:func:`claims`, :func:`notebook_numbers`); :mod:`experiments.precision_report` writes them
(atomic writes, default ``results/``): ``precision.csv`` (all statistics),
``precision_offsets.csv`` (the sweep), ``precision.md`` (tables, verdicts on the paper's two
claims, the notebook-correction explanation with these numbers), and the plots
``precision_vs_m.png``, ``precision_hist.png``, ``precision_offsets.png``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import lmul
from sim.lib.cli import run_main
from sim.lib.fileio import RESULTS_DIR

REPO = Path(__file__).resolve().parents[1]
DEFAULT_N = 10_000_000
DEFAULT_SWEEP_N = 1_000_000
DEFAULT_SEED = 1
CHUNK = 1_000_000
#: Histogram of signed relative errors: bins of 0.002 over [-0.13, 0.13] (out-of-range errors
#: are counted in the end bins).
HIST_EDGES = np.linspace(-0.13, 0.13, 131)
HIST_FORMATS = ("e8m7", "e4m3")
METHODS = ("lmul", "mitchell", "seed", "exact_rne")


@dataclass(frozen=True)
class Fmt:
    """One analysed format: label, widths and the preset names it stands for."""

    label: str
    exp_bits: int
    man_bits: int
    presets: tuple[str, ...] = ()

    @property
    def fmt(self) -> lmul.Format:
        """The model's :class:`lmul.Format`."""
        return lmul.format_for(self.exp_bits, self.man_bits)

    @property
    def display(self) -> str:
        """Label plus preset names, e.g. ``e8m7 (BF16)``."""
        return self.label + (f" ({'/'.join(p.upper() for p in self.presets)})"
                             if self.presets else "")


def analysed_formats(man_bits: Sequence[int] = (1, 2, 3, 4, 5, 6, 7, 10),
                     presets: Sequence[str] = ("e4m3_ieee", "e5m2", "bf16", "fp16")) -> list[Fmt]:
    """The M sweep (E = 8) plus the presets, one entry per distinct (E, M)."""
    found: dict[tuple[int, int], list[str]] = {(8, m): [] for m in man_bits}
    for name in presets:
        if name not in lmul.PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {', '.join(lmul.PRESETS)}")
        p = lmul.PRESETS[name]
        found.setdefault((p.exp_bits, p.man_bits), []).append(name)
    return [Fmt(f"e{e}m{m}", e, m, tuple(names)) for (e, m), names in found.items()]


# ------------------------------------------------------------------------------ statistics
@dataclass
class ErrorStats:
    """Running statistics of relative errors (accumulated chunk by chunk)."""

    n: int = 0
    total: int = 0  # pairs seen, including those outside the domain
    sum: float = 0.0
    sum_abs: float = 0.0
    sum_sq: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    max_abs: float = 0.0
    hist: np.ndarray | None = field(default=None, repr=False)

    def update(self, err: np.ndarray, seen: int, hist: bool = False) -> None:
        """Add the errors ``err`` (of ``seen`` pairs before domain selection)."""
        self.total += seen
        if err.size == 0:
            return
        self.n += err.size
        self.sum += float(err.sum())
        a = np.abs(err)
        self.sum_abs += float(a.sum())
        self.sum_sq += float((err * err).sum())
        self.min = min(self.min, float(err.min()))
        self.max = max(self.max, float(err.max()))
        self.max_abs = max(self.max_abs, float(a.max()))
        if hist:
            counts, _ = np.histogram(np.clip(err, HIST_EDGES[0], HIST_EDGES[-1]), HIST_EDGES)
            self.hist = counts if self.hist is None else self.hist + counts

    def row(self) -> dict[str, float]:
        """Summary: mean_abs, bias (mean signed), rms, max_abs, min/max signed, excluded share."""
        n = max(self.n, 1)
        return {
            "n": self.n,
            "excluded": 1.0 - self.n / self.total if self.total else 0.0,
            "mean_abs": self.sum_abs / n,
            "bias": self.sum / n,
            "rms": math.sqrt(self.sum_sq / n),
            "max_abs": self.max_abs,
            "min_err": self.min if self.n else 0.0,
            "max_err": self.max if self.n else 0.0,
        }


def relative_error(approx: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """approx / exact - 1 in float64 (exact nonzero): the signed error of the magnitude, so a
    product that is too small in magnitude has a negative error whatever its sign."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return (approx - exact) / exact


# ------------------------------------------------------------------------------ multipliers
def quantize(x: np.ndarray, fmt: lmul.Format) -> tuple[np.ndarray, np.ndarray]:
    """Round float32 ``x`` to ``fmt`` (RNE): (bit patterns, exact float64 values)."""
    bits = lmul.round_to_format_bits(x, fmt, "rne")
    return bits, lmul.format_bits_to_float64(bits, fmt)


def multiply(method: str, a_bits: np.ndarray, b_bits: np.ndarray, va: np.ndarray,
             vb: np.ndarray, fmt: lmul.Format) -> np.ndarray:
    """Product of quantized operands (bits and their float64 values) by ``method``, float64."""
    if method in ("lmul", "mitchell"):
        cfg = lmul.LMulConfig(fmt.exp_bits, fmt.man_bits, offset=None if method == "lmul" else 0)
        return lmul.format_bits_to_float64(lmul.lmul_bits(a_bits, b_bits, cfg), fmt)
    if method == "seed":
        if (fmt.exp_bits, fmt.man_bits) != (8, 7):
            raise ValueError("the seed multiplier exists for BF16 (e8m7) only")
        # BF16 values are exact in float32, so the seed's own truncation to BF16 is a no-op.
        return lmul.seed_lmul(va.astype(np.float32), vb.astype(np.float32)).astype(np.float64)
    if method == "exact_rne":
        with np.errstate(over="ignore", invalid="ignore"):
            prod = va * vb  # exact: significands of <= 24 bits each
        return lmul.format_bits_to_float64(lmul.round_to_format_bits(prod, fmt, "rne"), fmt)
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


def methods_for(f: Fmt) -> tuple[str, ...]:
    """The multipliers analysed for a format (the seed only exists for BF16)."""
    return METHODS if (f.exp_bits, f.man_bits) == (8, 7) else tuple(
        m for m in METHODS if m != "seed")


def lmul_mantissa_ratio(ma: np.ndarray, mb: np.ndarray, man_bits: int, offset: int
                        ) -> np.ndarray:
    """L-Mul result / exact product for normal in-range operands, from their mantissa fields.

    Closed form of the field addition: with s = ma + mb + offset and k = s >> M carries into the
    exponent, L-Mul returns 2^k (1 + (s - k 2^M) / 2^M) times 2^(ea+eb-2 bias); the exact product
    is (1 + ma/2^M)(1 + mb/2^M) times the same power of two. Used for the offset sweep only;
    :func:`check_closed_form` ties it to the model.
    """
    one = float(1 << man_bits)
    s = ma.astype(np.int64) + mb.astype(np.int64) + offset
    k = s >> man_bits
    approx = np.ldexp(1.0 + (s - (k << man_bits)) / one, k.astype(np.int32))
    return approx / ((1.0 + ma / one) * (1.0 + mb / one))


def check_closed_form(fmt: lmul.Format, ma: np.ndarray, mb: np.ndarray) -> None:
    """Assert :func:`lmul_mantissa_ratio` equals the model's L-Mul at offsets 0, paper, 2^(M-1).

    Raises:
        AssertionError: the closed form and ``lmul.lmul_bits`` disagree (a bug in the sweep).
    """
    m = fmt.man_bits
    a_bits = (fmt.bias << m) | ma.astype(np.int64)
    b_bits = (fmt.bias << m) | mb.astype(np.int64)
    exact = lmul.format_bits_to_float64(a_bits, fmt) * lmul.format_bits_to_float64(b_bits, fmt)
    for off in sorted({0, lmul.paper_offset(m), 1 << (m - 1)}):
        cfg = lmul.LMulConfig(fmt.exp_bits, m, offset=off)
        model = lmul.format_bits_to_float64(lmul.lmul_bits(a_bits, b_bits, cfg), fmt) / exact
        closed = lmul_mantissa_ratio(ma, mb, m, off)
        if not np.array_equal(model, closed):
            raise AssertionError(f"offset sweep closed form disagrees with lmul_bits for "
                                 f"{fmt.name} offset {off}")


# ------------------------------------------------------------------------------ distributions
def grid_operands(fmt: lmul.Format) -> tuple[np.ndarray, np.ndarray]:
    """All mantissa pairs at exponent field = bias (operands in [1, 2)): bit patterns a, b."""
    mants = np.arange(1 << fmt.man_bits, dtype=np.int64)
    base = fmt.bias << fmt.man_bits
    return np.repeat(mants, mants.size) | base, np.tile(mants, mants.size) | base


def gaussian_pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs of float32 N(0, 1) operands from ``numpy.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n, dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    return x, y


def _chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def normal_domain(a_bits: np.ndarray, b_bits: np.ndarray, exact: np.ndarray,
                  fmt: lmul.Format) -> np.ndarray:
    """Pairs where both operands are normal and the exact product is in
    [2 x smallest normal, largest finite / 2]: no method underflows or overflows there (for any
    OFFSET in 0 .. 2^(M-1), L-Mul's result is between 8/9 and 3/2 times the exact product)."""
    m, emax = fmt.man_bits, fmt.max_exp_field
    ea, eb = (a_bits >> m) & emax, (b_bits >> m) & emax
    mag = np.abs(exact)
    min_normal = 2.0 ** (fmt.emin + 1)
    return ((ea != 0) & (ea != emax) & (eb != 0) & (eb != emax)
            & (mag >= min_normal) & (mag <= fmt.max_finite / 2))


# ------------------------------------------------------------------------------ evaluation
@dataclass
class Results:
    """Everything one run measured."""

    stats: list[dict[str, object]]
    sweep: list[dict[str, object]]
    hists: dict[tuple[str, str, str], np.ndarray]
    n: int
    sweep_n: int
    seed: int
    seconds: float


def evaluate_format(f: Fmt, x: np.ndarray, y: np.ndarray, progress: object | None = None
                    ) -> tuple[list[dict[str, object]], dict[tuple[str, str, str], np.ndarray]]:
    """Statistics rows (grid and Gaussian, all methods and domains) for one format."""
    fmt = f.fmt
    methods = methods_for(f)
    want_hist = f.label in HIST_FORMATS
    acc: dict[tuple[str, str, str], ErrorStats] = {}

    def stats(dist: str, method: str, domain: str) -> ErrorStats:
        return acc.setdefault((dist, method, domain), ErrorStats())

    a_bits, b_bits = grid_operands(fmt)
    va, vb = lmul.format_bits_to_float64(a_bits, fmt), lmul.format_bits_to_float64(b_bits, fmt)
    exact = va * vb
    for method in methods:
        err = relative_error(multiply(method, a_bits, b_bits, va, vb, fmt), exact)
        # The grid is inside the normal range by construction: both domains coincide.
        stats("grid", method, "normal").update(err, err.size, hist=want_hist)
        stats("grid", method, "all").update(err, err.size)
        stats("grid", method, "normal_vs_real").update(err, err.size)

    for sl in _chunks(x.size):
        qa, va = quantize(x[sl], fmt)
        qb, vb = quantize(y[sl], fmt)
        exact = va * vb
        real = x[sl].astype(np.float64) * y[sl].astype(np.float64)
        dom = normal_domain(qa, qb, exact, fmt)
        nonzero = exact != 0
        real_nz = real != 0
        for method in methods:
            approx = multiply(method, qa, qb, va, vb, fmt)
            err = relative_error(approx, exact)
            stats("gauss", method, "normal").update(err[dom], dom.size, hist=want_hist)
            stats("gauss", method, "all").update(err[nonzero], nonzero.size)
            err_real = relative_error(approx, real)
            stats("gauss", method, "normal_vs_real").update(err_real[dom], dom.size)
            stats("gauss", method, "all_vs_real").update(err_real[real_nz], real_nz.size)
        if progress is not None:
            progress.update(sl.stop - sl.start)  # type: ignore[attr-defined]

    rows, hists = [], {}
    for (dist, method, domain), st in acc.items():
        offset = (lmul.paper_offset(f.man_bits) if method == "lmul" else
                  0 if method == "mitchell" else "")
        rows.append({"distribution": dist, "format": f.label, "presets": "/".join(f.presets),
                     "exp_bits": f.exp_bits, "man_bits": f.man_bits, "method": method,
                     "offset": offset, "domain": domain, **st.row()})
        if st.hist is not None:
            hists[(dist, f.label, method)] = st.hist
    return rows, hists


@dataclass(frozen=True)
class MantissaGroups:
    """Operand pairs grouped by the mantissa-field sum t = ma + mb, for fast offset sweeps.

    Every pair with the same t gets the same L-Mul result A_t(offset), so its error is
    A_t u - 1 with u = 1 / exact mantissa product. With the u of each group sorted and summed,
    the sum of errors and of absolute errors over a group needs only a binary search for the
    sign change at u = 1 / A_t.
    """

    man_bits: int
    n: int
    t: np.ndarray  # distinct sums
    count: np.ndarray  # pairs per sum
    start: np.ndarray  # first index of each group in the sorted arrays
    key: np.ndarray  # sorted search keys t + (u - 1/4) * 2/3 (u in (1/4, 1] -> [0, 1/2))
    prefix: np.ndarray  # prefix sums of the sorted u (long double), with a leading 0
    u_min: np.ndarray
    u_max: np.ndarray

    @classmethod
    def from_mantissas(cls, ma: np.ndarray, mb: np.ndarray, man_bits: int) -> MantissaGroups:
        """Group the pairs (ma[i], mb[i]) of mantissa fields (integers < 2^man_bits)."""
        one = float(1 << man_bits)
        ma, mb = ma.astype(np.int64), mb.astype(np.int64)
        u = 1.0 / ((1.0 + ma / one) * (1.0 + mb / one))
        t = ma + mb
        order = np.lexsort((u, t))
        t_s, u_s = t[order], u[order]
        t_vals, start, count = np.unique(t_s, return_index=True, return_counts=True)
        # Extended precision: differences of prefix sums over a million pairs must not cancel.
        prefix = np.concatenate([np.zeros(1, np.longdouble), np.cumsum(u_s, dtype=np.longdouble)])
        return cls(man_bits, int(t.size), t_vals, count, start, t_s + (u_s - 0.25) * (2 / 3),
                   prefix, u_s[start], u_s[start + count - 1])

    def stats(self, offset: int) -> tuple[float, float, float]:
        """(bias, mean absolute error, max absolute error) of L-Mul with ``offset``."""
        m = self.man_bits
        s = self.t + offset
        k = s >> m
        a = np.ldexp(1.0 + (s - (k << m)) / float(1 << m), k.astype(np.int32)).astype(
            np.longdouble)
        end = self.start + self.count
        u_sum = self.prefix[end] - self.prefix[self.start]
        err_sum = float((a * u_sum - self.count).sum())
        # Pairs with u < 1/a have a negative error; a >= 1 keeps the key inside its group.
        pos = np.searchsorted(self.key, self.t + (1.0 / a - 0.25) * (2 / 3))
        pos = np.clip(pos, self.start, end)
        below = pos - self.start
        u_below = self.prefix[pos] - self.prefix[self.start]
        abs_sum = float(((below - a * u_below) + (a * (u_sum - u_below) - (self.count - below)))
                        .sum())
        max_abs = float(np.maximum(np.abs(a * self.u_min - 1), np.abs(a * self.u_max - 1)).max())
        return err_sum / self.n, abs_sum / self.n, max_abs


def offset_sweep(f: Fmt, x: np.ndarray, y: np.ndarray) -> list[dict[str, object]]:
    """Bias and mean absolute error of L-Mul for OFFSET = 0 .. 2^(M-1), on the mantissa grid
    and on the Gaussian pairs (x, y) in the normal domain (skipped when x is empty)."""
    fmt = f.fmt
    m = f.man_bits
    mants = np.arange(1 << m, dtype=np.int64)
    ma, mb = np.repeat(mants, mants.size), np.tile(mants, mants.size)
    check_closed_form(fmt, ma, mb)
    dists = [("grid", ma, mb)]
    if x.size:
        qa, va = quantize(x, fmt)
        qb, vb = quantize(y, fmt)
        dom = normal_domain(qa, qb, va * vb, fmt)
        dists.append(("gauss", qa[dom].astype(np.int64) & fmt.man_mask,
                      qb[dom].astype(np.int64) & fmt.man_mask))
    rows = []
    for dist, a, b in dists:
        if a.size == 0:
            continue
        groups = MantissaGroups.from_mantissas(a, b, m)
        check_groups(groups, a, b)
        for off in range(0, (1 << (m - 1)) + 1):
            bias, mean_abs, max_abs = groups.stats(off)
            rows.append({"distribution": dist, "format": f.label,
                         "presets": "/".join(f.presets), "exp_bits": f.exp_bits, "man_bits": m,
                         "offset": off, "offset_value": off / (1 << m), "n": groups.n,
                         "bias": bias, "mean_abs": mean_abs, "max_abs": max_abs})
    return rows


def check_groups(groups: MantissaGroups, ma: np.ndarray, mb: np.ndarray) -> None:
    """Assert the grouped sums equal the per-pair closed form (offsets 0, paper, 2^(M-1)).

    Raises:
        AssertionError: they differ beyond float64 summation noise (a bug in the sweep).
    """
    m = groups.man_bits
    for off in sorted({0, lmul.paper_offset(m), 1 << (m - 1)}):
        err = lmul_mantissa_ratio(ma, mb, m, off) - 1.0
        direct = (float(err.mean()), float(np.abs(err).mean()), float(np.abs(err).max()))
        if not np.allclose(groups.stats(off), direct, rtol=1e-9, atol=1e-12):
            raise AssertionError(f"grouped offset sweep {groups.stats(off)} != direct {direct} "
                                 f"(M={m}, offset {off})")


def sweep_summary(sweep: list[dict[str, object]]) -> list[dict[str, object]]:
    """Per (distribution, format): the paper, bias-free and error-minimising offsets."""
    groups: dict[tuple[str, str], list[dict[str, object]]] = {}
    for r in sweep:
        groups.setdefault((str(r["distribution"]), str(r["format"])), []).append(r)
    out = []
    for (dist, label), rows in groups.items():
        m = int(rows[0]["man_bits"])
        by_off = {int(r["offset"]): r for r in rows}
        paper = by_off[lmul.paper_offset(m)]
        free = min(rows, key=lambda r: abs(float(r["bias"])))
        best = min(rows, key=lambda r: float(r["mean_abs"]))
        out.append({"distribution": dist, "format": label, "presets": rows[0]["presets"],
                    "man_bits": m, "paper": paper, "bias_free": free, "best": best,
                    "mitchell": by_off[0]})
    return out


def run(n: int = DEFAULT_N, seed: int = DEFAULT_SEED, sweep_n: int = DEFAULT_SWEEP_N,
        formats: list[Fmt] | None = None, progress: bool = True) -> Results:
    """Measure every format; returns the statistics, the sweep and the histograms."""
    from tqdm import tqdm

    formats = analysed_formats() if formats is None else formats
    t0 = time.perf_counter()
    x, y = gaussian_pairs(n, seed)
    stats: list[dict[str, object]] = []
    hists: dict[tuple[str, str, str], np.ndarray] = {}
    sweep: list[dict[str, object]] = []
    bar = tqdm(total=n * len(formats), desc="precision", unit="pair", unit_scale=True,
               disable=not progress, file=sys.stderr)
    for f in formats:
        bar.set_postfix_str(f.label)
        rows, h = evaluate_format(f, x, y, bar)
        stats += rows
        hists.update(h)
        sweep += offset_sweep(f, x[:sweep_n], y[:sweep_n])
    bar.close()
    return Results(stats, sweep, hists, n, min(sweep_n, n), seed, time.perf_counter() - t0)


# ------------------------------------------------------------------------------ derived numbers
def lookup(stats: list[dict[str, object]], dist: str, label: str, method: str,
           domain: str = "normal") -> dict[str, object] | None:
    """The statistics row for (distribution, format label, method, domain), or None."""
    for r in stats:
        if (r["distribution"], r["format"], r["method"], r["domain"]) == (dist, label, method,
                                                                          domain):
            return r
    return None


def claims(stats: list[dict[str, object]], sweep: list[dict[str, object]] | None = None
           ) -> list[dict[str, object]]:
    """The paper's two claims, evaluated on the grid and Gaussian distributions.

    Claim 1: L-Mul with a 4-bit mantissa is comparable to float8 E4M3 multiplication.
    Claim 2: L-Mul with a 3-bit mantissa is more precise than float8 E5M2 multiplication.
    "Comparable" means a mean absolute error at most 1.5x the other's (a stated, arbitrary
    threshold); "better" means strictly lower. Each claim is judged against the exact product
    of each pipeline's own quantized operands (the multiplier alone) and, for Gaussian operands,
    against the unquantized product (``normal_vs_real``: operand rounding included). With
    ``sweep`` given, the L-Mul unit with its error-minimising offset is judged too (same
    quantized operands; the Gaussian sweep uses its own, possibly smaller, sample).
    """
    summaries = {(s["distribution"], s["format"]): s for s in sweep_summary(sweep or [])}
    out = []
    spec = (("1", "e8m4", "e4m3", "comparable"), ("2", "e8m3", "e5m2", "better"))
    for claim, lm_label, fp8_label, kind in spec:
        for dist, domain in (("grid", "normal"), ("gauss", "normal"), ("gauss", "normal_vs_real"),
                             ("grid", "best_offset"), ("gauss", "best_offset")):
            fp = lookup(stats, dist, fp8_label, "exact_rne",
                        "normal" if domain == "best_offset" else domain)
            if domain == "best_offset":
                summ = summaries.get((dist, lm_label))
                lm = summ["best"] if summ else None
            else:
                lm = lookup(stats, dist, lm_label, "lmul", domain)
            if lm is None or fp is None:
                continue
            assert isinstance(lm, dict)
            ratio = float(lm["mean_abs"]) / float(fp["mean_abs"])
            holds = ratio <= 1.5 if kind == "comparable" else ratio < 1.0
            out.append({"claim": claim, "distribution": dist, "domain": domain,
                        "lmul_format": lm_label, "lmul_offset": lm["offset"],
                        "fp8_format": fp8_label,
                        "lmul_mean_abs": lm["mean_abs"], "fp8_mean_abs": fp["mean_abs"],
                        "lmul_bias": lm["bias"], "fp8_bias": fp["bias"],
                        "ratio": ratio, "kind": kind, "holds": holds})
    return out


def notebook_numbers(res: Results) -> dict[str, float]:
    """Numbers behind the notebook-correction explanation (BF16, grid and Gaussian)."""
    out: dict[str, float] = {}
    for dist in ("grid", "gauss"):
        for method in ("mitchell", "seed", "lmul"):
            r = lookup(res.stats, dist, "e8m7", method)
            if r is not None:
                out[f"{dist}_{method}_bias"] = float(r["bias"])
                out[f"{dist}_{method}_mean_abs"] = float(r["mean_abs"])
        if f"{dist}_mitchell_bias" in out:
            out[f"{dist}_mitchell_low"] = -out[f"{dist}_mitchell_bias"]
            out[f"{dist}_unbias_scale"] = 1.0 / (1.0 + out[f"{dist}_mitchell_bias"])
    for s in sweep_summary(res.sweep):
        if s["format"] == "e8m7":
            free, best = s["bias_free"], s["best"]
            assert isinstance(free, dict) and isinstance(best, dict)
            out[f"{s['distribution']}_bias_free_offset"] = float(free["offset"])
            out[f"{s['distribution']}_best_offset"] = float(best["offset"])
            out[f"{s['distribution']}_bias_free_bias"] = float(free["bias"])
            out[f"{s['distribution']}_best_mean_abs"] = float(best["mean_abs"])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the process exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=DEFAULT_N,
                    help=f"Gaussian operand pairs (default {DEFAULT_N:,})")
    ap.add_argument("--sweep-n", type=int, default=DEFAULT_SWEEP_N,
                    help=f"Gaussian pairs used by the offset sweep (default {DEFAULT_SWEEP_N:,})")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default 1)")
    ap.add_argument("--man-bits", default="1,2,3,4,5,6,7,10",
                    help="mantissa widths of the E=8 sweep (default 1,2,3,4,5,6,7,10)")
    ap.add_argument("--presets", default="e4m3_ieee,e5m2,bf16,fp16",
                    help="presets analysed (default e4m3_ieee,e5m2,bf16,fp16)")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR,
                    help="output directory (default results/)")
    ap.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    args = ap.parse_args(argv)

    def body() -> int:
        from .precision_report import markdown, write_outputs

        if args.n < 0 or args.sweep_n < 0:
            raise ValueError("--n and --sweep-n must be >= 0")
        man_bits = [int(v) for v in args.man_bits.split(",") if v.strip()]
        if any(not 1 <= m <= 16 for m in man_bits):
            raise ValueError("--man-bits values must be in 1..16 (the grid has 4^M pairs)")
        presets = [p.strip().lower() for p in args.presets.split(",") if p.strip()]
        formats = analysed_formats(man_bits, presets)
        res = run(args.n, args.seed, args.sweep_n, formats)
        write_outputs(res, args.out, plots=not args.no_plots)
        print(markdown(res))
        print(f"wrote precision.csv, precision_offsets.csv, precision.md"
              f"{'' if args.no_plots else ', precision_*.png'} in {args.out} "
              f"({res.seconds:.0f} s)")
        return 0

    return run_main("precision", body, ValueError)


if __name__ == "__main__":
    sys.exit(main())
