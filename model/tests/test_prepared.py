"""Prepared gate weights and the serial elementwise kernel return the bits of the plain paths.

* ``lmul._matmul.prepare_b`` / ``matmul_prepared`` (B rounded and split once, for a recurrent
  layer's many steps) against ``lmul.matmul`` and ``lmul.matmul_reference`` (the numpy model,
  no shared code with the kernels), special values included, and the snapshot semantics: a
  prepared operand keeps the values it was built from.
* ``lmul.torch``'s prepared weight (``TensorOps.prepare``, used by the converted recurrent
  layers once per forward): outputs and gradients equal to the unprepared ``lmul_linear`` path;
  a weight updated by an optimizer step between two forwards gives the fresh computation.
* The elementwise products' serial kernel (small arrays) and parallel kernel (large) agree bit
  for bit, on both sides of the size threshold, with the numpy reference.
* The experiments' explicit cell (``forward_logits``, weights prepared once per call) equals
  its per-step form (``cell_step``).

Comparisons are on integer bit patterns (``view(np.uint32)``), so signed zeros and NaN payloads
count.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lmul_cases import MULTIPLIERS, SPECIALS, mixed
from lmul_cases import PATH_CONFIGS as CONFIGS
from torch import nn

import lmul
import lmul.torch as lt
from lmul import LMulConfig
from lmul import _matmul as mm  # internals under test: prepare_b, matmul_prepared, dispatch
from lmul._core import exact_mul_numpy, lmul_numpy, seed_lmul_numpy
from lmul._torch_cells import TensorOps
from lmul._torch_ops import linear_prepared, prepare_weight


def bits(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().numpy()
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


def assert_same_bits(got: np.ndarray | torch.Tensor, want: np.ndarray | torch.Tensor) -> None:
    g, w = bits(got), bits(want)
    assert g.shape == w.shape
    diff = np.flatnonzero(g != w)
    assert diff.size == 0, (f"{diff.size} of {g.size} differ; first at {diff[0]}: "
                            f"{g.ravel()[diff[0]]:#010x} vs {w.ravel()[diff[0]]:#010x}")


def _cases(cfg_name: str, multiplier: str) -> list[str]:
    if multiplier == "seed":  # the seed multiplier ignores cfg and rounding
        return ["rne"] if cfg_name == "bf16" else []
    return ["rne", "truncate"]


# ------------------------------------------------------------------------- prepared matmul

@pytest.mark.parametrize("cfg_name", list(CONFIGS))
@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_prepared_matches_matmul_and_reference(cfg_name: str, multiplier: str,
                                               random_seed: int) -> None:
    """One prepared B, several A and biases (as the steps of a sequence): every product has the
    bits of lmul.matmul and of the numpy reference; edge shapes and a wide gate-like N."""
    cfg = CONFIGS[cfg_name]
    rng = np.random.default_rng([random_seed, len(cfg_name), MULTIPLIERS.index(multiplier)])
    for rounding in _cases(cfg_name, multiplier):
        for m, k, n in [(1, 1, 1), (0, 4, 3), (5, 0, 3), (4, 3, 0), (17, 33, 65), (6, 156, 512)]:
            b = mixed(rng, (k, n), cfg, 0.02)
            prepared = mm.prepare_b(b, cfg, rounding, multiplier)
            for step in range(3):
                a = mixed(rng, (m, k), cfg, 0.02)
                bias = None if step == 0 else mixed(rng, (n,), cfg, 0.05)
                got = mm.matmul_prepared(a, prepared, bias)
                assert_same_bits(got, mm.matmul(a, b, bias, cfg, rounding, multiplier))
                assert_same_bits(got, lmul.matmul_reference(a, b, bias, cfg, rounding,
                                                            multiplier))


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
@pytest.mark.parametrize("cfg_name", ["bf16", "e4m3_ieee", "fp32"])
def test_prepared_every_special_pair(cfg_name: str, multiplier: str) -> None:
    """Every pair of special values as a product (K = 1) and in a sum of two (K = 2: signed
    zeros, Inf - Inf, flushed subnormals), with signed-zero and special biases."""
    cfg = CONFIGS[cfg_name]
    col, row = SPECIALS[:, None], SPECIALS[None, :]
    got = mm.matmul_prepared(col, mm.prepare_b(row, cfg, multiplier=multiplier))
    assert_same_bits(got, lmul.matmul_reference(col, row, None, cfg, multiplier=multiplier))
    a2 = np.concatenate([col, -col[::-1]], axis=1)
    b2 = np.concatenate([row, row[:, ::-1]], axis=0)
    prepared = mm.prepare_b(b2, cfg, multiplier=multiplier)
    for bias in (None, np.full(SPECIALS.size, -0.0, np.float32), -SPECIALS):
        assert_same_bits(mm.matmul_prepared(a2, prepared, bias),
                         lmul.matmul_reference(a2, b2, bias, cfg, multiplier=multiplier))


@pytest.mark.parametrize("no_numba", [False, True])
def test_prepared_is_a_snapshot(monkeypatch: pytest.MonkeyPatch, no_numba: bool,
                                random_seed: int) -> None:
    """Changing B after prepare_b changes nothing (fast path and numpy fallback alike): the
    product is that of the B prepared, and differs from the product with the new B."""
    if no_numba:
        monkeypatch.setenv("LMUL_NO_NUMBA", "1")
    rng = np.random.default_rng([random_seed, 77])
    cfg = CONFIGS["bf16"]
    a = mixed(rng, (7, 20), cfg)
    b = rng.standard_normal((20, 30)).astype(np.float32)
    old = b.copy()
    prepared = mm.prepare_b(b, cfg)
    b *= np.float32(3.0)
    got = mm.matmul_prepared(a, prepared)
    assert_same_bits(got, lmul.matmul_reference(a, old, None, cfg))
    assert not np.array_equal(bits(got), bits(lmul.matmul_reference(a, b, None, cfg)))
    # A non-contiguous B (a transposed view) is read as its values.
    bt = np.ascontiguousarray(old.T).T
    assert_same_bits(mm.matmul_prepared(a, mm.prepare_b(bt, cfg)), got)


def test_prepared_bad_input() -> None:
    b = np.ones((4, 3), np.float32)
    prepared = mm.prepare_b(b)
    with pytest.raises(ValueError, match="A must be"):
        mm.matmul_prepared(np.ones((2, 5), np.float32), prepared)
    with pytest.raises(ValueError, match="A must be"):
        mm.matmul_prepared(np.ones(4, np.float32), prepared)
    with pytest.raises(ValueError, match="bias"):
        mm.matmul_prepared(np.ones((2, 4), np.float32), prepared, np.ones(4, np.float32))
    with pytest.raises(TypeError, match="float32"):
        mm.matmul_prepared(np.ones((2, 4)), prepared)
    with pytest.raises(TypeError, match="prepare_b"):
        mm.matmul_prepared(np.ones((2, 4), np.float32), b)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float32"):
        mm.prepare_b(np.ones((4, 3)))
    with pytest.raises(ValueError, match="2-D"):
        mm.prepare_b(np.ones(4, np.float32))
    with pytest.raises(ValueError, match="multiplier"):
        mm.prepare_b(b, multiplier="fma")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rounding"):
        mm.prepare_b(b, rounding="up")  # type: ignore[arg-type]


# ------------------------------------------------------------- serial / parallel elementwise

def _ew_inputs(rng: np.random.Generator, n: int, cfg: LMulConfig) -> tuple[np.ndarray, ...]:
    raw = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = np.where(rng.random(n) < 0.5, raw, mixed(rng, (n,), cfg, 0.02))
    y = mixed(rng, (n,), cfg, 0.02)
    y[: SPECIALS.size ** 2] = np.tile(SPECIALS, SPECIALS.size)
    x[: SPECIALS.size ** 2] = np.repeat(SPECIALS, SPECIALS.size)
    return x, y


def _subnormal_exact_pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """E = 8, M = 11 operands whose exact product lies below 2**-126 (the kernels' second
    rounding case for the exact multiplier)."""
    ea = rng.integers(-75, -60, n)
    eb = -135 - ea + rng.integers(-3, 3, n)
    a = (rng.integers(2048, 4096, n) * np.exp2(ea - 11.0)).astype(np.float32)
    b = (rng.integers(2048, 4096, n) * np.exp2(eb - 11.0)).astype(np.float32)
    return a, b


@pytest.mark.parametrize("cfg", [*CONFIGS.values(), LMulConfig(8, 11)], ids=[*CONFIGS, "e8m11"])
def test_serial_and_parallel_elementwise_kernels_agree(cfg: LMulConfig, random_seed: int) -> None:
    """Both kernels, every mode and rounding, on the same inputs: identical bits, and the bits
    of the numpy reference."""
    if not mm.fast_path_enabled():
        pytest.skip("numba kernels not in use")
    kernels = mm._load_kernels()
    assert kernels is not None
    rng = np.random.default_rng([random_seed, cfg.exp_bits, cfg.man_bits])
    x, y = _ew_inputs(rng, 30_000, cfg)
    if cfg.man_bits == 11:
        sa, sb = _subnormal_exact_pairs(rng, 20_000)
        x, y = np.concatenate([x, sa]), np.concatenate([y, sb])
    refs = {kernels.MUL_LMUL: lmul_numpy, kernels.MUL_EXACT: exact_mul_numpy}
    for rounding in ("rne", "truncate"):
        prm = mm._params(cfg, rounding)
        for mode, ref in refs.items():
            par, ser = np.empty_like(x), np.empty_like(x)
            kernels.elementwise(x, y, mode, prm, par)
            kernels.elementwise_serial(x, y, mode, prm, ser)
            assert_same_bits(ser, par)
            with np.errstate(all="ignore"):
                assert_same_bits(ser, ref(x, y, cfg, rounding))
    par, ser = np.empty_like(x), np.empty_like(x)
    prm = mm._params(cfg, "rne")
    kernels.elementwise(x, y, kernels.MUL_SEED, prm, par)
    kernels.elementwise_serial(x, y, kernels.MUL_SEED, prm, ser)
    assert_same_bits(ser, par)
    with np.errstate(all="ignore"):
        assert_same_bits(ser, seed_lmul_numpy(x, y))


def test_elementwise_dispatch_on_both_sides_of_the_threshold(
        monkeypatch: pytest.MonkeyPatch, random_seed: int) -> None:
    """The public products pick the serial kernel below the size threshold (or with one numba
    thread) and the parallel one from it on; both sides give the numpy reference's bits."""
    if not mm.fast_path_enabled():
        pytest.skip("numba kernels not in use")
    kernels = mm._load_kernels()
    assert kernels is not None
    calls: list[str] = []
    for name in ("elementwise", "elementwise_serial"):
        real = getattr(kernels, name)

        def spy(*args: object, _real: object = real, _name: str = name) -> object:
            calls.append(_name)
            return _real(*args)  # type: ignore[operator]
        monkeypatch.setattr(kernels, name, spy)
    threshold = 4096
    monkeypatch.setattr(mm, "_PARALLEL_ELEMENTWISE", threshold)
    monkeypatch.setattr(kernels, "num_threads", lambda: 2)
    cfg = LMulConfig(4, 3)
    rng = np.random.default_rng([random_seed, 5])
    for n, want in ((threshold - 1, "elementwise_serial"), (threshold, "elementwise"),
                    (threshold + 1, "elementwise")):
        x, y = _ew_inputs(rng, n, cfg)
        calls.clear()
        assert_same_bits(mm.lmul_elementwise(x, y, cfg), lmul_numpy(x, y, cfg, "rne"))
        assert_same_bits(mm.exact_mul_elementwise(x, y, cfg), exact_mul_numpy(x, y, cfg, "rne"))
        with np.errstate(all="ignore"):
            assert_same_bits(mm.seed_lmul_elementwise(x, y), seed_lmul_numpy(x, y))
        assert calls == [want] * 3
    monkeypatch.setattr(kernels, "num_threads", lambda: 1)
    calls.clear()
    x, y = _ew_inputs(rng, 2 * threshold, cfg)
    assert_same_bits(mm.lmul_elementwise(x, y, cfg), lmul_numpy(x, y, cfg, "rne"))
    assert calls == ["elementwise_serial"]


# --------------------------------------------------------------------- torch: prepared weight

def _unprepared(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make TensorOps.prepare a no-op and remove TensorOps.lstm_pointwise: the layers then pass
    the weight tensors to lmul_linear at every step and run the LSTM step's activations and
    products as separate nodes, the paths without preparation or fusion."""
    monkeypatch.setattr(TensorOps, "prepare", lambda self, w: w)
    monkeypatch.delattr(TensorOps, "lstm_pointwise")


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_linear_prepared_matches_lmul_linear(multiplier: str, random_seed: int) -> None:
    """Forward bits and all three gradients equal those of lmul_linear."""
    cfg = LMulConfig(4, 3) if multiplier == "exact" else LMulConfig()
    gen = torch.Generator().manual_seed(random_seed)
    w = (torch.randn(24, 10, generator=gen) * 0.5).requires_grad_()
    b = torch.randn(24, generator=gen).requires_grad_()
    x = torch.randn(3, 5, 10, generator=gen).requires_grad_()
    with torch.no_grad():
        x[0, 0, :4] = torch.tensor([0.0, -0.0, float("inf"), 1e-40])
    grads = []
    outs = []
    for prepared in (False, True):
        for t in (w, b, x):
            t.grad = None
        if prepared:
            y = linear_prepared(x, prepare_weight(w, cfg, multiplier, "rne"), b)
        else:
            y = lt.lmul_linear(x, w, b, cfg, multiplier, "rne")
        (y.nan_to_num(0.0) * torch.linspace(-1, 1, 24)).sum().backward()
        outs.append(y)
        grads.append([t.grad.clone() for t in (w, b, x)])  # type: ignore[union-attr]
    assert_same_bits(outs[1], outs[0])
    for g_new, g_old in zip(grads[1], grads[0], strict=True):
        assert_same_bits(g_new, g_old)
    want = lmul.matmul(x.detach().reshape(-1, 10).numpy(), w.detach().numpy().T.copy(),
                       b.detach().numpy(), cfg, multiplier=multiplier)
    assert_same_bits(outs[1].reshape(-1, 24), want)


def test_prepared_weight_checks() -> None:
    w = torch.ones(4, 3)
    ops = TensorOps(LMulConfig(), "lmul", "rne")
    pw = ops.prepare(w)
    with pytest.raises(ValueError, match="other options"):
        TensorOps(LMulConfig(4, 3), "lmul", "rne").linear(torch.ones(2, 3), pw, None)
    with pytest.raises(ValueError, match="in_features"):
        linear_prepared(torch.ones(2, 4), pw)
    with pytest.raises(ValueError, match="bias"):
        linear_prepared(torch.ones(2, 3), pw, torch.ones(3))
    with pytest.raises(TypeError, match="prepare_weight"):
        linear_prepared(torch.ones(2, 3), w)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out_features"):
        prepare_weight(torch.ones(4), LMulConfig(), "lmul", "rne")


def _recurrent_layers(seed: int) -> list[nn.Module]:
    torch.manual_seed(seed)
    return [nn.LSTM(5, 8, num_layers=2, bidirectional=True, batch_first=True),
            nn.LSTM(5, 8, proj_size=3),
            nn.GRU(5, 8, num_layers=2, bidirectional=True),
            nn.RNN(5, 8, nonlinearity="relu")]


def _run(layer: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    for p in layer.parameters():
        p.grad = None
    out, _ = layer(x)
    (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
    return out.detach().clone(), [p.grad.clone() for p in layer.parameters()]  # type: ignore


@pytest.mark.parametrize("index", range(4), ids=["lstm-bi-2", "lstm-proj", "gru-bi-2", "rnn"])
@pytest.mark.parametrize("multiplier", ["lmul", "exact"])
def test_converted_recurrent_layers_prepared_equal_unprepared(
        monkeypatch: pytest.MonkeyPatch, index: int, multiplier: str, random_seed: int) -> None:
    """A converted nn.LSTM / GRU / RNN: outputs and every parameter gradient equal, bit for bit,
    to the same layer with the weights passed unprepared to each step."""
    layer = _recurrent_layers(random_seed)[index]
    conv = lt.convert(layer, multiplier=multiplier)
    gen = torch.Generator().manual_seed(random_seed + index)
    x = torch.randn(4, 6, 5, generator=gen)
    out_prep, grads_prep = _run(conv, x)
    with monkeypatch.context() as mp:
        _unprepared(mp)
        out_plain, grads_plain = _run(conv, x)
    assert_same_bits(out_prep, out_plain)
    for g_prep, g_plain in zip(grads_prep, grads_plain, strict=True):
        assert_same_bits(g_prep, g_plain)


def test_weights_updated_between_forwards_are_used(monkeypatch: pytest.MonkeyPatch,
                                                   random_seed: int) -> None:
    """An optimizer step between two forwards of one converted LSTM: the second forward equals
    a fresh conversion of the updated weights run without preparation (nothing prepared before
    the step is reused), and differs from the first."""
    torch.manual_seed(random_seed)
    layer = nn.LSTM(5, 8, batch_first=True)
    conv = lt.convert(layer)
    opt = torch.optim.Adam(conv.parameters(), lr=0.05)
    x = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(random_seed))
    first, _ = conv(x)
    first.sum().backward()
    opt.step()
    second, _ = conv(x)
    updated = nn.LSTM(5, 8, batch_first=True)
    updated.load_state_dict(conv.state_dict())
    _unprepared(monkeypatch)
    fresh, _ = lt.convert(updated)(x)
    assert_same_bits(second, fresh)
    assert not np.array_equal(bits(second), bits(first))


@pytest.mark.parametrize("no_numba", [False, True], ids=["kernel", "numpy"])
@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_lstm_pointwise_equals_separate_operations(monkeypatch: pytest.MonkeyPatch,
                                                  multiplier: str, no_numba: bool,
                                                  random_seed: int) -> None:
    """The fused LSTM step (one autograd node; backward in the numba kernel, or in torch
    operations without numba) against the separate sigmoid32 / tanh32 / lmul_mul / + nodes:
    h', c' and the gradients of the gates and of c, bit for bit, with saturated gates (sigmoid
    0 or 1: zero and signed-zero gradients), zeros, and every combination of h' and c' feeding
    the loss (an unused output gives no gradient term)."""
    if no_numba:
        monkeypatch.setenv("LMUL_NO_NUMBA", "1")
    cfg = LMulConfig()
    gen = torch.Generator().manual_seed(random_seed)
    gates0 = torch.randn(6, 32, generator=gen) * 4
    gates0[0] = torch.tensor([40.0, -40.0, 0.0, -0.0] * 8)  # sigmoid/tanh saturate exactly
    gates0[1, :8] = torch.tensor([1e-40, -1e-40, 1e30, -1e30, 17.0, -17.0, 30.0, -30.0])
    c0 = torch.randn(6, 8, generator=gen)
    c0[2] = 0.0
    c0[3] = -0.0
    weights = torch.randn(6, 8, generator=gen)
    weights[4] = -0.0
    ops = TensorOps(cfg, multiplier, "rne")

    def run(fused: bool, use_h: bool, use_c: bool) -> list[torch.Tensor]:
        gates = gates0.clone().requires_grad_()
        c = c0.clone().requires_grad_()
        with monkeypatch.context() as mp:
            if not fused:
                mp.delattr(TensorOps, "lstm_pointwise")
            h_new, c_new = lt.lstm_cell_step(gates[:, :0], torch.zeros(6, 0), c, gates, None,
                                             _GatesAsIs(ops))
        terms = ([(h_new * weights).sum()] if use_h else []) \
            + ([(c_new * weights.flip(0)).sum()] if use_c else [])
        sum(terms).backward()  # type: ignore[union-attr]
        return [h_new.detach(), c_new.detach(), gates.grad, c.grad]  # type: ignore[list-item]

    for use_h, use_c in ((True, True), (True, False), (False, True)):
        for got, want in zip(run(True, use_h, use_c), run(False, use_h, use_c), strict=True):
            assert_same_bits(got, want)
    # A c that only broadcasts is left to the separate operations (lmul_mul broadcasts).
    h_b, c_b = lt.lstm_cell_step(gates0[:, :0], torch.zeros(6, 0), c0[:1], gates0, None,
                                 _GatesAsIs(ops))
    assert h_b.shape == c_b.shape == (6, 8)


class _GatesAsIs:
    """TensorOps whose linear returns its ``w`` argument: the gates go straight into
    :func:`lmul.torch.lstm_cell_step`'s activations, so a test can choose them."""

    def __init__(self, ops: TensorOps) -> None:
        self._ops = ops

    def __getattr__(self, name: str) -> object:
        return getattr(self._ops, name)

    def linear(self, z: torch.Tensor, w: torch.Tensor, bias: object) -> torch.Tensor:
        return w
