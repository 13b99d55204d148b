"""The fused-accumulation kernels (``lmul.matmul(..., accumulate=lmul.Fused(k, align_bits))``,
``lmul._kdot``) return the bits of the reference (``lmul.matmul_reference`` with the same
``accumulate``, whose steps are ``lmul.fused_sum_bits`` on Python integers: no code shared with
the kernels).

The operands are chosen to send steps down every kernel path: LSTM-like values (the exact
float64 step and the int32/int64 window steps), exponents spread over the whole range (the
general step, and the scalar multi-word step for wide windows), exact cancellation (zero
results), zeros, subnormals, Inf and NaN (the full-spec product paths). Two deliberately broken
kernels (a window wider than asked, a window one bit off) must be caught.
"""

from __future__ import annotations

import numpy as np
import pytest
from lmul_cases import CONFIGS, SPECIALS, assert_same_bits, bits, mixed

import lmul
from lmul import FUSED_EXACT_ALIGN_BITS, Fused, LMulConfig
from lmul import _matmul as mm  # internals under test: the kernel module, the fast-path switch

KS = (1, 2, 4, 8, 16)
ALIGNS = (8, 24, 32, FUSED_EXACT_ALIGN_BITS)


@pytest.fixture(autouse=True)
def _fast_path() -> None:
    if not mm.fast_path_enabled():
        pytest.skip("numba kernels disabled (LMUL_NO_NUMBA or numba missing)")


def lstm_like(rng: np.random.Generator, m: int, k: int, n: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Operands like the LSTM gate product: pixels in [0, 1), tanh states, small weights."""
    a = np.concatenate([rng.random((m, k // 3), dtype=np.float32),
                        np.tanh(rng.standard_normal((m, k - k // 3))).astype(np.float32)], axis=1)
    b = rng.uniform(-0.1, 0.1, (k, n)).astype(np.float32)
    bias = rng.uniform(-0.1, 0.1, n).astype(np.float32)
    return a, b, bias


def spread(rng: np.random.Generator, m: int, k: int, n: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Magnitudes over 2**-60 .. 2**20 (terms lose bits below every window), a few zeros."""
    def draw(shape: tuple[int, ...]) -> np.ndarray:
        x = rng.standard_normal(shape) * np.exp2(rng.integers(-60, 20, shape))
        return np.where(rng.random(shape) < 0.05, 0.0, x).astype(np.float32)
    return draw((m, k)), draw((k, n)), draw((n,))


def cancelling(rng: np.random.Generator, m: int, k: int, n: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Columns whose products cancel exactly (B's rows in +/- pairs, A's in equal pairs), biases
    of both zero signs: zero results, whose sign needs every term."""
    a = np.repeat(rng.standard_normal((m, (k + 1) // 2)), 2, axis=1)[:, :k].astype(np.float32)
    half = rng.standard_normal(((k + 1) // 2, n))
    b = np.stack([half, -half], axis=1).reshape(-1, n)[:k].astype(np.float32)
    bias = rng.choice([0.0, -0.0], n).astype(np.float32)
    return a, b, bias


def with_specials(rng: np.random.Generator, m: int, k: int, n: int, cfg: LMulConfig
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return mixed(rng, (m, k), cfg, 0.03), mixed(rng, (k, n), cfg, 0.03), mixed(rng, (n,), cfg)


OPERANDS = {"lstm": lstm_like, "spread": spread, "cancel": cancelling}


def check(a: np.ndarray, b: np.ndarray, bias: np.ndarray | None, acc: Fused,
          cfg: LMulConfig = CONFIGS["bf16"], multiplier: str = "lmul") -> None:
    got = lmul.matmul(a, b, bias, cfg, multiplier=multiplier, accumulate=acc)
    want = lmul.matmul_reference(a, b, bias, cfg, multiplier=multiplier, accumulate=acc)
    assert_same_bits(got, want)


@pytest.mark.parametrize("multiplier", lmul.MULTIPLIERS)
@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("align", ALIGNS)
def test_fused_matmul_matches_reference(multiplier: str, k: int, align: int,
                                        random_seed: int) -> None:
    rng = np.random.default_rng([random_seed, k, align, len(multiplier)])
    acc = Fused(k, align)
    # Inner dimension 37: a partial last step for every k > 1.
    for make in OPERANDS.values():
        check(*make(rng, 3, 37, 40), acc, multiplier=multiplier)
    check(*with_specials(rng, 3, 37, 40, CONFIGS["bf16"]), acc, multiplier=multiplier)


@pytest.mark.parametrize("cfg_name", ["e4m3_ieee", "e5m2-sat", "fp16-sat", "fp32"])
@pytest.mark.parametrize("multiplier", ["lmul", "exact"])
def test_fused_matmul_other_formats(cfg_name: str, multiplier: str, random_seed: int) -> None:
    cfg = CONFIGS[cfg_name]
    rng = np.random.default_rng([random_seed, len(cfg_name), len(multiplier)])
    for acc in (Fused(4, 8), Fused(16, 24), Fused(8, FUSED_EXACT_ALIGN_BITS)):
        check(*with_specials(rng, 4, 21, 33, cfg), acc, cfg, multiplier)
        check(*lstm_like(rng, 4, 21, 33), acc, cfg, multiplier)


def test_every_special_pair() -> None:
    """Every pair of special values as one product, next to ordinary terms (K = 4)."""
    n = SPECIALS.size
    a = np.tile(np.array([[1.0, 0.5, 0.25, 1.0]], dtype=np.float32), (n, 1))
    a[:, 3] = SPECIALS
    b = np.tile(np.array([[0.5], [0.25], [0.125], [1.0]], dtype=np.float32), (1, n))
    b[3, :] = SPECIALS
    for align in (8, FUSED_EXACT_ALIGN_BITS):
        for multiplier in lmul.MULTIPLIERS:
            check(a, b, None, Fused(4, align), multiplier=multiplier)


def test_signed_zero_results() -> None:
    """-0 only when every term is -0: bias -0 with -0 products; padding (+0) breaks it."""
    a = np.array([[-0.0, 0.0, -1.0]], dtype=np.float32)
    b = np.array([[1.0, 1.0], [1.0, -1.0], [0.0, 0.0]], dtype=np.float32)
    bias = np.array([-0.0, 0.0], dtype=np.float32)
    # Terms of column 0: -0, (-0)(1) = -0, (0)(1) = +0, (-1)(0) = -0 -> +0 (one +0 term).
    # Column 1: +0 bias -> +0.
    for k in (1, 3):
        got = lmul.matmul(a, b, bias, accumulate=Fused(k, 24))
        assert bits(got).tolist() == [[0, 0]]
    a2 = np.array([[-0.0, -1.0, -0.0]], dtype=np.float32)
    b2 = np.array([[1.0], [0.0], [1.0]], dtype=np.float32)
    # Every term -0: -0, with K = 3 (no padding) and K = 1; K = 2 pads the second step: +0.
    for k, want in ((1, 0x80000000), (3, 0x80000000), (2, 0)):
        got = lmul.matmul(a2, b2, np.array([-0.0], dtype=np.float32), accumulate=Fused(k, 24))
        assert int(bits(got)[0, 0]) == want, k


def test_steps_of_zero_products() -> None:
    """Steps whose A elements are all zeros (MNIST's blank pixel rows): the result is the
    accumulator, a -0 one only while every product is -0 too."""
    a = np.array([[-0.0, 0.0, 1.0, -2.0], [0.0, -0.0, 0.5, 0.25], [-0.0, -0.0, 0.0, -0.0]],
                 dtype=np.float32)
    b = np.array([[1.0, -1.0, 2.0, -0.5], [-1.0, 1.0, -3.0, 0.75], [1.0, 2.0, 3.0, 4.0],
                  [-1.0, 0.5, 0.25, 8.0]], dtype=np.float32)
    bias = np.array([-0.0, 0.0, -0.0, 1.0], dtype=np.float32)
    for acc in (Fused(2, 24), Fused(2, FUSED_EXACT_ALIGN_BITS), Fused(1, 8), Fused(4, 8)):
        check(a, b, bias, acc)
    # The accumulator alone is still truncated to a window narrower than its significand.
    full = np.array([1.0000001, -3.1415927, 0.1, 1e-3], dtype=np.float32)
    for acc in (Fused(2, 16), Fused(4, 8), Fused(2, 1)):
        for multiplier in lmul.MULTIPLIERS:
            check(a, b, full, acc, multiplier=multiplier)
    # Row 2, column 0: bias -0, products (-0)(1) = -0, (-0)(-1) = +0, ... -> +0; column 1:
    # bias +0 -> +0.
    got = bits(lmul.matmul(a, b, bias, accumulate=Fused(2, 24)))
    assert got[2, 0] == 0 and got[2, 1] == 0
    # Every term -0 (bias -0, products (-0)(1), (-0)(2)): -0.
    one = lmul.matmul(np.array([[-0.0, -0.0]], dtype=np.float32),
                      np.array([[1.0], [2.0]], dtype=np.float32),
                      np.array([-0.0], dtype=np.float32), accumulate=Fused(2, 24))
    assert int(bits(one)[0, 0]) == 0x80000000


@pytest.mark.parametrize("multiplier", lmul.MULTIPLIERS)
def test_k1_exact_window_is_the_sequential_kernel(multiplier: str, random_seed: int) -> None:
    """Fused(1, 276) is the sequential PE's step: the fast kernels agree with each other."""
    rng = np.random.default_rng([random_seed, 21, len(multiplier)])
    cfg = CONFIGS["bf16"]
    for a, b, bias in (with_specials(rng, 6, 50, 70, cfg), spread(rng, 6, 50, 70),
                       lstm_like(rng, 6, 50, 70)):
        got = lmul.matmul(a, b, bias, multiplier=multiplier,
                          accumulate=Fused(1, FUSED_EXACT_ALIGN_BITS))
        assert_same_bits(got, lmul.matmul(a, b, bias, multiplier=multiplier))


@pytest.mark.parametrize("acc", [Fused(16, 24), Fused(16, FUSED_EXACT_ALIGN_BITS)],
                         ids=lambda f: f"k{f.k}-a{f.align_bits}")
def test_lstm_gate_shape(acc: Fused, random_seed: int, full_run: bool) -> None:
    """The benchmark's product [1000 x 156] . [156 x 512] (first rows against the reference;
    every row with the full-run knob)."""
    rng = np.random.default_rng([random_seed, 22])
    a, b, bias = lstm_like(rng, 1000, 156, 512)
    got = lmul.matmul(a, b, bias, accumulate=acc)
    rows = 1000 if full_run else 4
    want = lmul.matmul_reference(a[:rows], b, bias, accumulate=acc)
    assert_same_bits(got[:rows], want)


def test_prepared_matches_matmul(random_seed: int) -> None:
    rng = np.random.default_rng([random_seed, 23])
    cfg = CONFIGS["bf16"]
    for multiplier in lmul.MULTIPLIERS:
        a, b, bias = with_specials(rng, 5, 30, 50, cfg)
        prepared = lmul.prepare_b(b, cfg, multiplier=multiplier)
        for acc in (Fused(4, 24), Fused(16, FUSED_EXACT_ALIGN_BITS)):
            assert_same_bits(lmul.matmul_prepared(a, prepared, bias, accumulate=acc),
                             lmul.matmul(a, b, bias, cfg, multiplier=multiplier, accumulate=acc))


def test_narrow_and_empty_shapes() -> None:
    """N <= 32 with many rows (the sequential path's narrow kernels) and empty dimensions."""
    rng = np.random.default_rng(24)
    check(*lstm_like(rng, 300, 20, 5), Fused(8, 24))
    for m, k, n in ((0, 4, 3), (3, 0, 4), (3, 4, 0), (1, 1, 1)):
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        bias = rng.standard_normal(n).astype(np.float32)
        got = lmul.matmul(a, b, bias, accumulate=Fused(4, 24))
        assert got.shape == (m, n)
        assert_same_bits(got, lmul.matmul_reference(a, b, bias, accumulate=Fused(4, 24)))


def test_scalar_step_matches_reference(random_seed: int) -> None:
    """The kernels' multi-word step (used where float64 cannot hold the window) on its own."""
    kdot = mm._load_dot_kernels()
    rng = np.random.default_rng([random_seed, 25])
    for t_len in (1, 2, 5, 17, 65):
        x = rng.standard_normal((400, t_len)) * np.exp2(rng.integers(-150, 128, (400, t_len)))
        with np.errstate(over="ignore"):
            terms = x.astype(np.float32).view(np.uint32).copy()
        terms[rng.random(terms.shape) < 0.05] = 0x80000000
        terms[:3] = 0x80000000
        terms[3:6, 0] = [0x7F800000, 0xFF800000, 0x7FC00001]
        for align in (1, 8, 24, 47, 100, FUSED_EXACT_ALIGN_BITS):
            got = kdot.fused_step_bits(terms.astype(np.int64), t_len, align)
            want = lmul.fused_sum_bits(terms, align)
            assert (got == want.astype(np.int64)).all(), (t_len, align)


def test_row_groups_sum_exactly_in_float32(random_seed: int) -> None:
    """The exact step adds rows in float32 groups first: every group it forms must provably sum
    without rounding (fields spanning d: d + man + 1 + log2(group size) <= 24 bits), and the
    groups must cover every row once."""
    kdot = mm._load_dot_kernels()
    rng = np.random.default_rng([random_seed, 28])
    k = 16
    grp = np.empty(7 * k, dtype=np.int64)
    formed = 0
    for _ in range(300):
        nz = int(rng.integers(0, k + 1))
        man = int(rng.choice([2, 3, 7, 10]))
        rlo = rng.integers(100, 130, k).astype(np.int64)
        rhi = rlo + rng.integers(0, 12, k)
        quads, pairs, singles = grp[:4 * k], grp[4 * k:6 * k], grp[6 * k:]
        nq, npr, ns = kdot._group_rows(nz, man, rlo, rhi, quads, pairs, singles)
        rows = [*quads[:4 * nq], *pairs[:2 * npr], *singles[:ns]]
        assert sorted(rows) == list(range(nz))
        for g, size in [(quads[4 * i:4 * i + 4], 4) for i in range(nq)] + \
                [(pairs[2 * i:2 * i + 2], 2) for i in range(npr)]:
            assert rhi[g].max() - rlo[g].min() + man + 1 + (size // 2) <= 24
        formed += nq + npr
    assert formed > 100


def test_bad_accumulate() -> None:
    a = np.ones((2, 2), dtype=np.float32)
    for fn in (lambda: lmul.matmul(a, a, accumulate=(4, 24)),
               lambda: lmul.matmul_prepared(a, lmul.prepare_b(a), accumulate="fused")):
        with pytest.raises(TypeError, match=r"accumulate must be None or an lmul\.Fused"):
            fn()


def test_no_numba_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """LMUL_NO_NUMBA=1: the reference runs (same bits), for matmul and matmul_prepared."""
    rng = np.random.default_rng(26)
    a, b, bias = lstm_like(rng, 3, 20, 9)
    acc = Fused(8, 24)
    fast = lmul.matmul(a, b, bias, accumulate=acc)
    monkeypatch.setenv("LMUL_NO_NUMBA", "1")
    assert not mm.fast_path_enabled()
    assert_same_bits(lmul.matmul(a, b, bias, accumulate=acc), fast)
    assert_same_bits(lmul.matmul_prepared(a, lmul.prepare_b(b), bias, accumulate=acc), fast)


# --------------------------------------------------------------------------------------------
# The checks catch broken kernels.


def mismatches(acc: Fused) -> int:
    rng = np.random.default_rng(27)
    count = 0
    for make in (lstm_like, spread):
        a, b, bias = make(rng, 3, 37, 40)
        got = lmul.matmul(a, b, bias, accumulate=acc)
        want = lmul.matmul_reference(a, b, bias, accumulate=acc)
        count += int((bits(got) != bits(want)).sum())
    return count


def test_a_window_wider_than_asked_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A float64 window beyond ``align_bits`` lets the exact step skip truncation."""
    kdot = mm._load_dot_kernels()
    assert mismatches(Fused(16, 8)) == 0
    honest = kdot.float64_window
    monkeypatch.setattr(kdot, "float64_window", lambda k, align: honest(k, 276))
    assert mismatches(Fused(16, 8)) > 0


def test_a_window_one_bit_off_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    kdot = mm._load_dot_kernels()
    honest = kdot.fused_lmul

    def off_by_one(*args: object) -> None:
        *head, k, align, _wf, out = args
        honest(*head, k, align + 1, kdot.float64_window(k, align + 1), out)

    assert mismatches(Fused(16, 24)) == 0
    monkeypatch.setattr(kdot, "fused_lmul", off_by_one)
    assert mismatches(Fused(16, 24)) > 0


# --------------------------------------------------------------------------------------------
# The window steps of the L-Mul kernel: emax from int16 field sums (formats of at most 15 bits)
# or int32 magnitudes, int32 or float64 sums.

BF16_MAN = 7


def mixed_blocks(rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """16 x 96 B in three blocks of 32 columns: fields close together, spread over
    2**-20 .. 1, and with terms 2**-40 (beyond the float64 window: cut by narrow windows, the
    multi-word step for wide ones)."""
    a = rng.uniform(1.0, 2.0, (m, 16)).astype(np.float32)
    sign = rng.choice([-1.0, 1.0], (16, 96))
    b = sign * rng.uniform(1.0, 1.5, (16, 96))
    b[:, 32:64] *= np.exp2(-rng.integers(0, 21, (16, 32)))
    b[:, 64:] *= np.exp2(-rng.integers(0, 41, (16, 32)))
    b[0, 64:] = sign[0, 64:] * 2.0**-40
    bias = rng.uniform(1.0, 2.0, 96) * rng.choice([-1.0, 1.0], 96)
    return a, b.astype(np.float32), bias.astype(np.float32)


@pytest.mark.parametrize("align", [1, 7, 8, 9, 16, 23, 24, 25, 26, 31, 32, 33, 46, 47, 48, 60,
                                   FUSED_EXACT_ALIGN_BITS])
def test_window_edges_across_routes(align: int, random_seed: int) -> None:
    """Windows at and around the routes' edges (the accumulator's 24 bits, the int32 sums
    (align + 1 + 5 <= 31 bits for k = 16), the float64 window (47 bits)), on operands whose
    steps take the exact, window and general routes."""
    rng = np.random.default_rng([random_seed, 30, align])
    for k in (8, 16):
        check(*mixed_blocks(rng, 4), Fused(k, align))
        check(*lstm_like(rng, 4, 40, 70), Fused(k, align))


def test_wide_format_field_maximum(random_seed: int) -> None:
    """Formats of more than 15 bits take the window steps' int32 maximum (no int16 fields)."""
    rng = np.random.default_rng([random_seed, 31])
    cfg = LMulConfig(exp_bits=8, man_bits=12)
    for acc in (Fused(16, 24), Fused(8, 8), Fused(16, 32), Fused(16, FUSED_EXACT_ALIGN_BITS)):
        check(*lstm_like(rng, 4, 37, 70), acc, cfg)
        check(*mixed_blocks(rng, 3), acc, cfg)


def test_wrong_int16_fields_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """B's int16 fields one binade too high make the window steps cut at the wrong place."""
    kdot = mm._load_dot_kernels()
    honest = kdot.lmul_fields16

    def one_binade_up(fb, fbn):  # type: ignore[no-untyped-def]
        honest(fb, fbn)
        fbn += 1 << BF16_MAN

    for acc in (Fused(16, 24), Fused(16, 8)):
        assert mismatches(acc) == 0
    monkeypatch.setattr(kdot, "lmul_fields16", one_binade_up)
    for acc in (Fused(16, 24), Fused(16, 8)):
        assert mismatches(acc) > 0, acc


# --------------------------------------------------------------------------------------------
# The two-row window step (``_window_pair32``), directly: where it applies its columns are the
# contract's bits; it declines (returns -1, writes nothing) where some column's largest term has
# an exponent field of at most ``align_bits`` (the result's scale would not be a normal float32)
# or an accumulator is Inf or NaN.


def pair_step(acc_exp: int, align: int, seed: int, pair: object = None, int16: bool = True,
              inf_acc: bool = False) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """One step of 16 products for two rows of A over 24 columns, accumulators with exponent
    field ``acc_exp`` (the largest term of every column), products 2 to 2**13 times smaller
    (cut by narrow windows), all normal. Returns (status, accumulators in, out, the contract's
    bits)."""
    from lmul._kparams import _P_CADD, _P_SH

    kdot = mm._load_dot_kernels()
    pair = kdot._window_pair32 if pair is None else pair
    rng = np.random.default_rng([seed, acc_exp, align])
    n = 24
    cfg = LMulConfig()
    sign = lambda shape: rng.choice([-1.0, 1.0], shape)  # noqa: E731
    a = (rng.uniform(1.0, 2.0, (2, 16)) * sign((2, 16))).astype(np.float32)
    spread = min(12, acc_exp - 5)  # B and the products stay normal
    b = (rng.uniform(1.0, 2.0, (16, n))
         * np.exp2(acc_exp - 130 - rng.integers(0, spread + 1, (16, n)))
         * sign((16, n))).astype(np.float32)
    acc = (rng.uniform(1.0, 2.0, (2, n)) * np.exp2(acc_exp - 127) * sign((2, n))).astype(np.float32)
    if inf_acc:
        acc[1, 5] = np.inf
    prm = mm._params(cfg, "rne")
    _bb, fb, bpre, special, fbmin, fbmax = mm._prepare_arrays(b, prm, "lmul")
    fbn = np.empty(fb.size if int16 else 0, dtype=np.int16)
    kdot.lmul_fields16(fb[:fbn.size], fbn)
    halves = []
    for m in range(2):
        kind = np.empty(16, dtype=np.int64)
        ax = np.empty(16, dtype=np.int32)
        kdot._tile_a(a.reshape(-1), fbmin, fbmax, special, m, 16, prm, kind, ax,
                     np.empty(16, dtype=np.int64), np.empty(16, dtype=np.int64))
        assert (kind == 1).all()  # every product of the step is a single add
        halves.append(ax)
    out = acc.copy()
    scratch = [np.empty(n, dtype=d) for d in (np.int32, np.int32, np.int16, np.int16, np.float32,
                                              np.float32, np.int32, np.int32)]
    status = pair(bpre, fbn, 16, halves[0], halves[1], np.arange(16, dtype=np.int64) * n, 0,
                  prm[_P_SH], prm[_P_CADD], align, out[0], out[1], *scratch)
    prods = bits(lmul.lmul(a[:, :, None], b[None, :, :], cfg))  # [2, 16, n]
    terms = np.concatenate([bits(acc)[:, None, :], prods], axis=1).transpose(0, 2, 1)
    want = lmul.fused_sum_bits(terms.astype(np.int64), align).astype(np.uint32)
    return int(status), acc, out, want


@pytest.mark.parametrize("align", [8, 24])
def test_window_pair_step_takes_and_declines(align: int, random_seed: int) -> None:
    """The edge of the step's range: emax = align + 1 is taken (the contract's bits, fields as
    int16 or int32 magnitudes); emax = align, or an Inf accumulator, is declined untouched."""
    for int16 in (True, False):
        status, _acc, out, want = pair_step(align + 1, align, random_seed, int16=int16)
        assert status == 0
        assert (bits(out) == want).all()
    for kwargs in ({"acc_exp": align}, {"acc_exp": align + 40, "inf_acc": True}):
        status, acc, out, _want = pair_step(kwargs.pop("acc_exp"), align, random_seed, **kwargs)
        assert status == -1
        assert (bits(out) == bits(acc)).all()


def test_window_pair_step_flooring_is_caught(random_seed: int) -> None:
    """The same step with terms floored (two's complement) instead of truncated toward zero."""
    from numba import njit

    kdot = mm._load_dot_kernels()

    @njit
    def floor32(v):  # type: ignore[no-untyped-def]
        return np.int32(np.floor(v))

    broken = kdot._make_window_pair(floor32)
    _status, _acc, out, want = pair_step(9, 8, random_seed)
    assert (bits(out) == want).all()
    status, _acc, out, want = pair_step(9, 8, random_seed, pair=broken)
    assert status == 0 and (bits(out) != want).any()


@pytest.mark.parametrize("align", [8, 24])
def test_window_route_edge_in_products(align: int, random_seed: int) -> None:
    """lmul.matmul on steps at the window steps' edge (largest exponent field align or align + 1
    in the first step): the general path and the window steps give the contract's bits."""
    rng = np.random.default_rng([random_seed, 33, align])
    for acc_exp in (align, align + 1, align + 2):
        a = rng.uniform(1.0, 2.0, (4, 32)).astype(np.float32)
        b = (rng.uniform(1.0, 2.0, (32, 40)) * np.exp2(acc_exp - 134)
             * rng.choice([-1.0, 1.0], (32, 40))).astype(np.float32)
        bias = (rng.uniform(1.0, 2.0, 40) * np.exp2(acc_exp - 127)).astype(np.float32)
        for k in (4, 8, 16):
            check(a, b, bias, Fused(k, align))


@pytest.mark.parametrize("spread", [0, 6, 30])
def test_exact_pair_step(spread: int, random_seed: int) -> None:
    """The two-row exact step (``_exact_sum_pair``) directly: the correctly rounded sums
    (align_bits 276) of two rows' accumulators and 16 products, with products over 1 to
    2**spread binades (quads, pairs or single products summed in float32 first)."""
    from lmul._kparams import _P_M

    kdot = mm._load_dot_kernels()
    rng = np.random.default_rng([random_seed, 34, spread])
    n = 24
    cfg = LMulConfig()
    sign = lambda shape: rng.choice([-1.0, 1.0], shape)  # noqa: E731
    a = (rng.uniform(1.0, 2.0, (2, 16)) * sign((2, 16))).astype(np.float32)
    b = (rng.uniform(1.0, 2.0, (16, n)) * np.exp2(-rng.integers(0, spread + 1, (16, n)))
         * sign((16, n))).astype(np.float32)
    acc = (rng.uniform(1.0, 2.0, (2, n)) * sign((2, n))).astype(np.float32)
    prm = mm._params(cfg, "rne")
    _bb, _fb, bpre, special, fbmin, fbmax = mm._prepare_arrays(b, prm, "lmul")
    halves, lo, hi = [], [], []
    for m in range(2):
        kind = np.empty(16, dtype=np.int64)
        ax = np.empty(16, dtype=np.int32)
        ahi = np.empty(16, dtype=np.int64)
        alo = np.empty(16, dtype=np.int64)
        kdot._tile_a(a.reshape(-1), fbmin, fbmax, special, m, 16, prm, kind, ax, ahi, alo)
        assert (kind == 1).all()
        halves.append(ax)
        lo.append(alo)
        hi.append(ahi)
    out = acc.copy()
    kdot._exact_sum_pair(bpre, 16, halves[0], halves[1], np.arange(16, dtype=np.int64) * n, 0,
                         prm[_P_M], np.minimum(lo[0], lo[1]), np.maximum(hi[0], hi[1]), out[0],
                         out[1], np.empty(n), np.empty(n), np.empty(7 * 16, dtype=np.int64))
    prods = bits(lmul.lmul(a[:, :, None], b[None, :, :], cfg))
    terms = np.concatenate([bits(acc)[:, None, :], prods], axis=1).transpose(0, 2, 1)
    want = lmul.fused_sum_bits(terms.astype(np.int64), FUSED_EXACT_ALIGN_BITS).astype(np.uint32)
    assert (bits(out) == want).all()
