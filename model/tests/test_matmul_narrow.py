"""The narrow-N product (``lmul._matmul.narrow_product``, ``conv2d_product``) returns the bits of
``lmul.matmul_reference``.

For few output columns (N <= ``_NARROW_MAX_N``) and enough rows, :func:`lmul.matmul` computes
``p(B[k, n], A[m, k])`` (weight first) vectorized across rows, and converted convolutions read
their patches straight from the image. That relies on every multiplier being commutative bit
for bit, which the first test checks on the numpy models (no numba); the others compare the
kernels with the reference (numpy, loop over K) on integer bit patterns, signed zeros, Inf, NaN,
subnormals and L-Mul under/overflow included, on both sides of the dispatch threshold.
``COCOTB_RANDOM_SEED`` (default 1) seeds the operands.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lmul_cases import MULTIPLIERS, SPECIALS, assert_same_bits, bits, mixed
from lmul_cases import PATH_CONFIGS as CONFIGS
from torch import nn
from torch.nn import functional

import lmul
import lmul.torch as lt
from lmul import LMulConfig
from lmul import _matmul as mm
from lmul._core import exact_mul_numpy, lmul_numpy, seed_lmul_numpy

needs_kernels = pytest.mark.skipif(not lmul.fast_path_enabled(),
                                   reason="numba kernels not in use (LMUL_NO_NUMBA or no numba)")


# ------------------------------------------------------------------------- commutativity


@pytest.mark.parametrize("name", CONFIGS)
def test_multipliers_are_commutative_bit_for_bit(name: str, random_seed: int) -> None:
    """The basis of the narrow path: p(x, y) and p(y, x) have the same bits, NaN payloads
    included (numpy models, every pair of SPECIALS and random values)."""
    cfg = CONFIGS[name]
    rng = np.random.default_rng(random_seed)
    x = np.concatenate([np.repeat(SPECIALS, SPECIALS.size), mixed(rng, (20000,), cfg, 0.1)])
    y = np.concatenate([np.tile(SPECIALS, SPECIALS.size), mixed(rng, (20000,), cfg, 0.1)])
    for rounding in ("rne", "truncate"):
        for fn in (lmul_numpy, exact_mul_numpy):
            with np.errstate(all="ignore"):
                xy, yx = fn(x, y, cfg, rounding), fn(y, x, cfg, rounding)
            assert np.array_equal(bits(xy), bits(yx)), (fn.__name__, rounding)
    with np.errstate(all="ignore"):
        assert np.array_equal(bits(seed_lmul_numpy(x, y)), bits(seed_lmul_numpy(y, x)))


# ------------------------------------------------------------------------------ matmul


@needs_kernels
@pytest.mark.parametrize("multiplier", MULTIPLIERS)
@pytest.mark.parametrize("name", CONFIGS)
def test_narrow_matmul_bits_around_the_threshold(name: str, multiplier: str,
                                                 random_seed: int) -> None:
    cfg = CONFIGS[name]
    rng = np.random.default_rng(random_seed)
    n_max, m_min = mm._NARROW_MAX_N, mm._NARROW_MIN_M
    shapes = [(m_min, 7, 1), (m_min - 1, 7, n_max), (m_min, 5, n_max), (m_min, 5, n_max + 1),
              (2100, 20, 6), (1500, 1, 16), (777, 33, 3)]
    took = set()
    for m_len, k_len, n_len in shapes:
        a = mixed(rng, (m_len, k_len), cfg, 0.002)
        b = mixed(rng, (k_len, n_len), cfg, 0.02)
        # A few rows free of zeros and specials keep some chunks on the single-add path.
        a[:300] = rng.uniform(0.5, 2, (min(300, m_len), k_len)).astype(np.float32)
        bias = mixed(rng, (n_len,), cfg, 0.1)
        took.add(mm._use_narrow(m_len, n_len))
        for rounding in ("rne", "truncate"):
            for c in (None, bias):
                want = lmul.matmul_reference(a, b, c, cfg, rounding, multiplier)
                assert_same_bits(lmul.matmul(a, b, c, cfg, rounding, multiplier), want)
    assert took == {True, False}  # both sides of the dispatch were run


@needs_kernels
@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_narrow_zero_sized_and_single_dimensions(multiplier: str, random_seed: int) -> None:
    """M, N or K of 0 or 1 through narrow_product itself (matmul only dispatches M >= 256)."""
    cfg = LMulConfig(4, 3)
    rng = np.random.default_rng(random_seed + 1)
    for m_len, k_len, n_len in [(0, 3, 2), (1, 3, 2), (5, 0, 3), (5, 1, 1), (1, 1, 1), (4, 2, 0)]:
        a = mixed(rng, (m_len, k_len), cfg, 0.2)
        b = mixed(rng, (k_len, n_len), cfg, 0.2)
        bias = mixed(rng, (n_len,), cfg, 0.2)
        want = lmul.matmul_reference(a, b, bias, cfg, "rne", multiplier)
        out = np.full(m_len * n_len, np.float32(7.0))
        rows = np.arange(m_len, dtype=np.int64)
        mm.narrow_product(np.ascontiguousarray(a).reshape(-1), rows * k_len,
                          np.arange(k_len, dtype=np.int64), np.ascontiguousarray(b.T), bias,
                          rows * n_len, 1, out, cfg, "rne", multiplier)
        assert_same_bits(out.reshape(m_len, n_len), want)


@needs_kernels
def test_narrow_special_rows_and_signed_zero_sums(random_seed: int) -> None:
    """Chunks whose X rows are all zeros, hold one Inf/NaN, or make every L-Mul product under- or
    overflow; -0.0 biases with zero products (the sum's sign depends on every term)."""
    rng = np.random.default_rng(random_seed + 2)
    m_len, k_len, n_len = 3000, 6, 5
    for name in ("bf16", "e4m3_ieee", "e5m2-sat"):
        cfg = CONFIGS[name]
        a = rng.uniform(0.5, 2, (m_len, k_len)).astype(np.float32)
        a[:1100, 0] = -0.0  # a whole chunk of zeros in column 0
        a[1100:2200, 1] = np.float32(cfg.fmt.max_finite)  # products with b overflow
        a[2500, 2] = np.inf
        a[2600, 3] = np.nan
        a[2700:2710, 4] = np.float32(1e-40)
        a[2800:2900] = -0.0  # whole rows of zeros next to normal values (single-add + zeros)
        b = rng.uniform(0.5, 2, (k_len, n_len)).astype(np.float32)
        b[:, 0] = -0.0
        b[1, 1] = 2.0 ** 100
        b[2, 2] = -2.0 ** -100
        bias = np.array([-0.0, 0.0, -0.0, -0.0, -1.0], dtype=np.float32)
        for multiplier in MULTIPLIERS:
            want = lmul.matmul_reference(a, b, bias, cfg, "rne", multiplier)
            assert_same_bits(lmul.matmul(a, b, bias, cfg, "rne", multiplier), want)
            if multiplier == "lmul":
                # The signed-zero cases are live: output column 0 is -0.0 + sum of a * -0.0, so
                # -0.0 where every a of the row is positive, +0.0 where one is -0.0 (rows < 1100);
                # zero rows of A times positive weights keep column 3's -0.0 bias.
                assert np.signbit(want[1100:2400, 0]).all()
                assert not np.signbit(want[:1100, 0]).any()
                assert np.all(bits(want[2800:2900, 3]) == 0x80000000)


@needs_kernels
def test_narrow_product_rejects_out_of_range_offsets() -> None:
    x = np.zeros(10, np.float32)
    w = np.ones((2, 3), np.float32)
    bias = np.zeros(2, np.float32)
    out = np.empty(8, np.float32)
    koff = np.arange(3, dtype=np.int64)
    with pytest.raises(ValueError, match="outside x"):
        mm.narrow_product(x, np.array([0, 8], np.int64), koff, w, bias,
                          np.array([0, 2], np.int64), 1, out)
    with pytest.raises(ValueError, match="outside out"):
        mm.narrow_product(x, np.array([0, 7], np.int64), koff, w, bias,
                          np.array([0, 7], np.int64), 1, out)


# ------------------------------------------------------------------------ convolutions


def im2col_reference(layer: nn.Conv1d | nn.Conv2d, x: torch.Tensor, cfg: LMulConfig,
                     multiplier: str) -> np.ndarray:
    """torch's pad + unfold, then matmul_reference per group (no numba)."""
    nd = 1 if isinstance(layer, nn.Conv1d) else 2
    if any(layer._reversed_padding_repeated_twice):
        mode = "constant" if layer.padding_mode == "zeros" else layer.padding_mode
        x = functional.pad(x, layer._reversed_padding_repeated_twice, mode=mode)
    ks, st, dl = layer.kernel_size, layer.stride, layer.dilation
    if nd == 1:
        x = x.unsqueeze(2)
        ks, st, dl = (1, *ks), (1, *st), (1, *dl)
    cols = functional.unfold(x, ks, dilation=dl, stride=st).numpy()  # [B, C*kk, P]
    g = layer.groups
    per, og = cols.shape[1] // g, layer.out_channels // g
    w = layer.weight.detach().numpy().reshape(layer.out_channels, -1)
    bias = None if layer.bias is None else layer.bias.detach().numpy()
    outs = []
    for gi in range(g):
        rows = cols[:, gi * per:(gi + 1) * per].transpose(0, 2, 1).reshape(-1, per)
        y = lmul.matmul_reference(rows, np.ascontiguousarray(w[gi * og:(gi + 1) * og].T),
                                  None if bias is None else bias[gi * og:(gi + 1) * og], cfg,
                                  "rne", multiplier)
        outs.append(y.reshape(x.shape[0], -1, og))
    return np.concatenate(outs, axis=2).transpose(0, 2, 1)


CONV_CASES = [
    lambda: nn.Conv2d(1, 6, 5, padding=2),  # LeNet conv1
    lambda: nn.Conv2d(6, 16, 5),  # LeNet conv2
    lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2,
                      padding_mode="reflect"),
    lambda: nn.Conv2d(3, 3, 2, stride=2, groups=3, padding=1, padding_mode="replicate",
                      bias=False),
    lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2, padding_mode="circular"),
    lambda: nn.Conv2d(2, 4, (4, 3), padding="same", bias=False),  # asymmetric zero padding
    lambda: nn.Conv1d(3, 2, 4, dilation=2, padding="same"),
]


@needs_kernels
@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")  # torch's own conv
@pytest.mark.parametrize("multiplier", MULTIPLIERS)
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_converted_conv_direct_path_bits(case: int, multiplier: str, random_seed: int) -> None:
    """Without autograd a converted Conv1d/Conv2d reads its patches straight from the image;
    its bits are im2col + matmul_reference, and those of the autograd (im2col) path."""
    torch.manual_seed(random_seed + case)
    layer = CONV_CASES[case]()
    gen = torch.Generator().manual_seed(random_seed)
    shape = (3, layer.in_channels, 40) if isinstance(layer, nn.Conv1d) \
        else (3, layer.in_channels, 16, 13)
    x = torch.randn(*shape, generator=gen)
    flat = x.view(-1)
    flat[:7] = torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 0.0, 1e-40, 3e38])
    flat[100:160] = 0.0  # a run of zeros, as around padding
    cfg = LMulConfig(4, 3) if case == 2 else LMulConfig()
    conv = lt.convert(layer, cfg, multiplier=multiplier)
    want = im2col_reference(layer, x, cfg, multiplier)
    with torch.no_grad():
        got = conv(x)
        single = conv(x[0])
    assert got.shape == layer(x).shape
    assert_same_bits(got.numpy().reshape(want.shape), want)
    assert_same_bits(single.numpy().reshape(want[0].shape), want[0])  # unbatched
    assert_same_bits(conv(x).detach().numpy(), got.numpy())  # autograd path: im2col + matmul


@needs_kernels
def test_converted_conv_direct_path_rejects_small_inputs() -> None:
    conv = lt.convert(nn.Conv2d(1, 2, 5, padding=1))
    with torch.no_grad(), pytest.raises(ValueError, match="smaller than the kernel"):
        conv(torch.ones(1, 1, 2, 9))
