"""``lmul.torch.convert`` / ``revert``: every converted layer type against references written from
the spec (``lmul.matmul_reference`` tiles and the numpy elementwise models), straight-through
gradients against torch autograd, revert, the conversion report and the selection options.

Forward references are numpy code independent of ``lmul.torch``: im2col by explicit loops, the
recurrent equations and attention written out per step / per head. Gradient references are torch
autograd on torch's own float32 layers (with ``multiplier="exact"`` in binary32 the forward is the
float32 layer up to summation order) and, for the L-Mul forward, a straight-through graph built
from float32 torch ops (``exact + (lmul - exact).detach()``). ``COCOTB_RANDOM_SEED`` (default 1)
seeds the operands.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from lmul_cases import MULTIPLIERS  # noqa: E402

import lmul  # noqa: E402
import lmul.torch as lt  # noqa: E402
from lmul import LMulConfig  # noqa: E402
from lmul._core import exact_mul_numpy, lmul_numpy, seed_lmul_numpy  # noqa: E402

FP32 = LMulConfig(8, 23)  # with multiplier="exact": plain float32 products


def bits(t: object) -> np.ndarray:
    arr = t.detach().numpy() if isinstance(t, torch.Tensor) else t
    return np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32)


def assert_bits(got: object, want: object) -> None:
    g, w = bits(got), bits(want)
    assert g.shape == w.shape, (g.shape, w.shape)
    bad = np.flatnonzero(g.reshape(-1) != w.reshape(-1))
    assert bad.size == 0, f"{bad.size} of {g.size} differ, first at {bad[:5]}"


def rmul(a: np.ndarray, b: np.ndarray, cfg: LMulConfig, mult: str) -> np.ndarray:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if mult == "lmul":
        return lmul_numpy(a, b, cfg, "rne")
    if mult == "exact":
        return exact_mul_numpy(a, b, cfg, "rne")
    return seed_lmul_numpy(a, b)


def rmm(a: np.ndarray, b_t: np.ndarray, bias: np.ndarray | None, cfg: LMulConfig,
        mult: str) -> np.ndarray:
    """``bias + a . b_t^T`` on the MAC array (the numpy reference model)."""
    return lmul.matmul_reference(np.ascontiguousarray(a, np.float32),
                                 np.ascontiguousarray(np.asarray(b_t, np.float32).T), bias,
                                 cfg, multiplier=mult)


def sig(v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-v.astype(np.float64)))).astype(np.float32)


def tanh(v: np.ndarray) -> np.ndarray:
    return np.tanh(v.astype(np.float64)).astype(np.float32)


def npp(module: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in module.named_parameters()}


@pytest.fixture()
def gen(random_seed: int) -> torch.Generator:
    print(f"\ntest_torch_convert: COCOTB_RANDOM_SEED={random_seed}")
    return torch.Generator().manual_seed(random_seed)


def with_specials(x: torch.Tensor) -> torch.Tensor:
    """x with a NaN, +-Inf, -0.0, a subnormal and a huge value in its first elements."""
    x = x.clone()
    flat = x.view(-1)
    specials = [float("nan"), float("inf"), -float("inf"), -0.0, 1e-40, 3e38]
    flat[:len(specials)] = torch.tensor(specials)
    return x


# ----------------------------------------------------------------------------------- linear/conv

@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_linear_converted_bits(gen: torch.Generator, multiplier: str) -> None:
    layer = nn.Linear(13, 5)
    x = with_specials(torch.randn(3, 4, 13, generator=gen))
    conv = lt.convert(layer, multiplier=multiplier)
    assert isinstance(conv, lt.LMulLinear) and isinstance(conv, nn.Linear)
    p = npp(layer)
    want = rmm(x.reshape(12, 13).numpy(), p["weight"], p["bias"], LMulConfig(), multiplier)
    assert_bits(conv(x).reshape(12, 5), want)


def _np_pad(x: np.ndarray, pads: list[tuple[int, int]], mode: str) -> np.ndarray:
    width = [(0, 0), (0, 0), *pads]
    if mode == "zeros":
        return np.pad(x, width)
    return np.pad(x, width, mode={"reflect": "reflect", "replicate": "edge",
                                  "circular": "wrap"}[mode])


def conv_reference(conv: nn.Conv1d | nn.Conv2d, x: np.ndarray, cfg: LMulConfig,
                   mult: str) -> np.ndarray:
    """im2col by explicit loops: patch element order (channel, kernel row, kernel column)."""
    one_d = isinstance(conv, nn.Conv1d)
    w = conv.weight.detach().numpy()
    b = None if conv.bias is None else conv.bias.detach().numpy()
    if one_d:
        x, w = x[:, :, None, :], w[:, :, None, :]
    ks, st, dl = (((1, *conv.kernel_size), (1, *conv.stride), (1, *conv.dilation)) if one_d
                  else (conv.kernel_size, conv.stride, conv.dilation))
    if conv.padding == "same":
        tot = [d * (k - 1) for d, k in zip(dl, ks, strict=True)]
        pads = [(t // 2, t - t // 2) for t in tot]
    else:
        pads = [(0, 0), *[(p, p) for p in conv.padding]] if one_d else \
            [(p, p) for p in conv.padding]
    xp = _np_pad(x, pads, conv.padding_mode)
    n, c, hh, ww = xp.shape
    oh = (hh - dl[0] * (ks[0] - 1) - 1) // st[0] + 1
    ow = (ww - dl[1] * (ks[1] - 1) - 1) // st[1] + 1
    g = conv.groups
    cg, og = c // g, conv.out_channels // g
    out = np.empty((n, conv.out_channels, oh, ow), np.float32)
    for gi in range(g):
        rows = []
        for ni in range(n):
            for i in range(oh):
                for j in range(ow):
                    patch = xp[ni, gi * cg:(gi + 1) * cg,
                               i * st[0]:i * st[0] + dl[0] * (ks[0] - 1) + 1:dl[0],
                               j * st[1]:j * st[1] + dl[1] * (ks[1] - 1) + 1:dl[1]]
                    rows.append(patch.reshape(-1))
        wg = w[gi * og:(gi + 1) * og].reshape(og, -1)
        y = rmm(np.stack(rows), wg, None if b is None else b[gi * og:(gi + 1) * og], cfg, mult)
        out[:, gi * og:(gi + 1) * og] = y.reshape(n, oh, ow, og).transpose(0, 3, 1, 2)
    return out[:, :, 0, :] if one_d else out


CONV_CASES = [
    lambda: nn.Conv2d(3, 4, 3),
    lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2,
                      padding_mode="reflect"),
    lambda: nn.Conv2d(2, 4, 3, padding="same", bias=False, padding_mode="circular"),
    lambda: nn.Conv2d(3, 3, 2, stride=2, groups=3, padding=1, padding_mode="replicate"),
    lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2, padding_mode="circular"),
    lambda: nn.Conv1d(3, 2, 4, dilation=2, padding="same"),
]


@pytest.mark.parametrize("case", range(len(CONV_CASES)))
@pytest.mark.parametrize("multiplier", ["lmul", "exact"])
def test_conv_converted_bits(gen: torch.Generator, case: int, multiplier: str,
                             random_seed: int) -> None:
    torch.manual_seed(random_seed + case)
    conv = CONV_CASES[case]()
    shape = (2, conv.in_channels, 7) if isinstance(conv, nn.Conv1d) \
        else (2, conv.in_channels, 7, 6)
    x = with_specials(torch.randn(*shape, generator=gen))
    cfg = LMulConfig(4, 3) if case == 1 else LMulConfig()
    c = lt.convert(conv, cfg, multiplier=multiplier)
    got = c(x)
    with torch.no_grad():
        assert got.shape == conv(x).shape
    assert_bits(got, conv_reference(conv, x.numpy(), cfg, multiplier))
    assert_bits(c(x[0]), conv_reference(conv, x[:1].numpy(), cfg, multiplier)[0])  # unbatched


def test_conv_and_linear_ste_gradients_are_the_float32_layers(gen: torch.Generator) -> None:
    """Single layers: the L-Mul layer's gradient is the float32 layer's at the same inputs."""
    for layer, shape in ((nn.Linear(9, 4), (5, 9)),
                         (nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), (2, 4, 8, 7)),
                         (nn.Conv1d(3, 5, 3, padding="same", padding_mode="reflect"),
                          (2, 3, 9))):
        conv = lt.convert(layer)
        x = torch.randn(*shape, generator=gen)
        outs = []
        for m in (conv, layer):
            xl = x.clone().requires_grad_(True)
            m.zero_grad()
            y = m(xl)
            g = torch.linspace(-1, 1, y.numel()).reshape(y.shape)
            (y * g).sum().backward()
            outs.append([xl.grad.clone(), *(p.grad.clone() for p in m.parameters())])
        for a, b in zip(*outs, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------ recurrent

def rnn_reference(m: nn.Module, x: np.ndarray, cfg: LMulConfig, mult: str,
                  hx: tuple | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """LSTM / GRU / RNN from the equations: x [T, N, I] (time first) -> (out, final states)."""
    p = npp(m)
    kind = type(m).__name__
    hs = m.hidden_size
    proj = getattr(m, "proj_size", 0)
    dirs = 2 if m.bidirectional else 1
    n = x.shape[1]
    layer_in = x
    finals: list[list[np.ndarray]] = [[], []]
    for layer in range(m.num_layers):
        outs = []
        for d in range(dirs):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = p["weight_ih" + sfx], p["weight_hh" + sfx]
            b_ih, b_hh = p.get("bias_ih" + sfx), p.get("bias_hh" + sfx)
            idx = layer * dirs + d
            h = np.zeros((n, proj or hs), np.float32) if hx is None else hx[0][idx]
            c = np.zeros((n, hs), np.float32) if hx is None else hx[1][idx]
            seq = [None] * x.shape[0]
            for t in (range(x.shape[0] - 1, -1, -1) if d else range(x.shape[0])):
                xt = layer_in[t]
                z = np.concatenate([xt, h], axis=1)
                if kind == "LSTM":
                    gates = rmm(z, np.concatenate([w_ih, w_hh], 1),
                                None if b_ih is None else b_ih + b_hh, cfg, mult)
                    i, f = sig(gates[:, :hs]), sig(gates[:, hs:2 * hs])
                    gg, o = tanh(gates[:, 2 * hs:3 * hs]), sig(gates[:, 3 * hs:])
                    with np.errstate(invalid="ignore", over="ignore"):
                        c = rmul(f, c, cfg, mult) + rmul(i, gg, cfg, mult)
                    h = rmul(o, tanh(c), cfg, mult)
                    if proj:
                        h = rmm(h, p["weight_hr" + sfx], None, cfg, mult)
                elif kind == "GRU":
                    rz = sig(rmm(z, np.concatenate([w_ih[:2 * hs], w_hh[:2 * hs]], 1),
                                 None if b_ih is None else b_ih[:2 * hs] + b_hh[:2 * hs],
                                 cfg, mult))
                    r, u = rz[:, :hs], rz[:, hs:]
                    hn = rmm(h, w_hh[2 * hs:], None if b_hh is None else b_hh[2 * hs:], cfg,
                             mult)
                    nn_ = tanh(rmm(xt, w_ih[2 * hs:], None if b_ih is None else b_ih[2 * hs:],
                                   cfg, mult) + rmul(r, hn, cfg, mult))
                    h = nn_ + rmul(u, h - nn_, cfg, mult)
                else:
                    pre = rmm(z, np.concatenate([w_ih, w_hh], 1),
                              None if b_ih is None else b_ih + b_hh, cfg, mult)
                    h = tanh(pre) if m.nonlinearity == "tanh" else np.maximum(pre, 0)
                seq[t] = h
            outs.append(np.stack(seq))
            finals[0].append(h)
            finals[1].append(c)
        layer_in = np.concatenate(outs, axis=2)
    return layer_in, [np.stack(f) for f in finals]


RNN_CASES = [
    lambda: nn.LSTM(5, 6),
    lambda: nn.LSTM(5, 6, num_layers=2, bidirectional=True, batch_first=True),
    lambda: nn.LSTM(5, 6, num_layers=2, proj_size=3, bias=False),
    lambda: nn.GRU(5, 6, num_layers=2, bidirectional=True, batch_first=True),
    lambda: nn.GRU(5, 4, bias=False),
    lambda: nn.RNN(5, 6, num_layers=2, nonlinearity="relu", bidirectional=True),
    lambda: nn.RNN(5, 6, bias=False),
]


@pytest.mark.filterwarnings("ignore:LSTM with projections")  # torch's own run (oneDNN)
@pytest.mark.parametrize("case", range(len(RNN_CASES)))
@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_recurrent_converted_bits(gen: torch.Generator, case: int, multiplier: str,
                                  random_seed: int) -> None:
    torch.manual_seed(random_seed + case)
    m = RNN_CASES[case]()
    with torch.no_grad():
        for prm in m.parameters():
            prm.mul_(2.0)  # spread the gates out of sigmoid's linear region
    x = torch.randn(3, 4, 5, generator=gen)  # [N, T, I] if batch_first else [T, N, I]
    if case == 0:
        x = with_specials(x)
    c = lt.convert(m, multiplier=multiplier)
    out, final = c(x)
    with torch.no_grad():
        t_out, t_final = m(x)
    x_tf = x.transpose(0, 1) if m.batch_first else x
    want_out, want_final = rnn_reference(m, x_tf.numpy(), LMulConfig(), multiplier)
    if m.batch_first:
        want_out = want_out.transpose(1, 0, 2)
    assert out.shape == t_out.shape
    assert_bits(out, want_out)
    if isinstance(m, nn.LSTM):
        assert final[0].shape == t_final[0].shape and final[1].shape == t_final[1].shape
        assert_bits(final[0], want_final[0])
        assert_bits(final[1], want_final[1])
    else:
        assert final.shape == t_final.shape
        assert_bits(final, want_final[0])
    if case != 0 and multiplier == "lmul":
        assert not np.array_equal(bits(out), bits(t_out))  # the arithmetic is not float32's


def test_recurrent_initial_state_and_unbatched(gen: torch.Generator) -> None:
    m = nn.LSTM(3, 4, num_layers=2)
    c = lt.convert(m)
    x = torch.randn(5, 2, 3, generator=gen)
    h0, c0 = torch.randn(2, 2, 4, generator=gen), torch.randn(2, 2, 4, generator=gen)
    out, (h, cc) = c(x, (h0, c0))
    want, finals = rnn_reference(m, x.numpy(), LMulConfig(), "lmul", (h0.numpy(), c0.numpy()))
    assert_bits(out, want)
    assert_bits(h, finals[0])
    assert_bits(cc, finals[1])
    out1, (h1, _) = c(x[:, 0], (h0[:, 0], c0[:, 0]))  # unbatched: [T, I]
    assert_bits(out1, want[:, 0])
    assert h1.shape == (2, 4)
    with pytest.raises(ValueError, match="initial state"):
        c(x, (h0[:1], c0))
    packed = nn.utils.rnn.pack_padded_sequence(x, [5, 3])
    with pytest.raises(TypeError, match="PackedSequence"):
        c(packed)


def test_cells_match_the_layers(gen: torch.Generator) -> None:
    """LSTMCell / GRUCell / RNNCell run the same step as one-layer LSTM / GRU / RNN."""
    x = torch.randn(1, 3, 5, generator=gen)
    for cell, layer in ((nn.LSTMCell(5, 4), nn.LSTM(5, 4)), (nn.GRUCell(5, 4), nn.GRU(5, 4)),
                        (nn.RNNCell(5, 4), nn.RNN(5, 4))):
        layer.load_state_dict({f"{k}_l0": v for k, v in cell.state_dict().items()})
        got = lt.convert(cell)(x[0])
        want = lt.convert(layer)(x)[0][0]
        assert_bits(got[0] if isinstance(got, tuple) else got, want)


def _ste(exact: torch.Tensor, value: np.ndarray) -> torch.Tensor:
    return exact + (torch.from_numpy(value) - exact).detach()


def test_lstm_lmul_gradient_is_straight_through(gen: torch.Generator, random_seed: int) -> None:
    """The converted LSTM's gradient equals a straight-through graph of float32 torch ops whose
    forward values are replaced by the reference L-Mul values (``a + (lmul - a).detach()``)."""
    torch.manual_seed(random_seed)
    m = nn.LSTM(4, 5)
    x = torch.randn(6, 3, 4, generator=gen)
    cfg = LMulConfig()
    conv = lt.convert(m)
    xl = x.clone().requires_grad_(True)
    out, _ = conv(xl)
    g = torch.randn(out.shape, generator=gen)
    (out * g).sum().backward()
    got = [xl.grad, *(p.grad for p in conv.parameters())]

    xr = x.clone().requires_grad_(True)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in m.named_parameters()}
    w = torch.cat([params["weight_ih_l0"], params["weight_hh_l0"]], 1)
    b = params["bias_ih_l0"] + params["bias_hh_l0"]
    h = torch.zeros(3, 5)
    c = torch.zeros(3, 5)
    outs = []

    def mul(a: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return _ste(a * q, rmul(a.detach().numpy(), q.detach().numpy(), cfg, "lmul"))

    for t in range(6):
        z = torch.cat([xr[t], h], 1)
        gates = _ste(F.linear(z, w, b), rmm(z.detach().numpy(), w.detach().numpy(),
                                            b.detach().numpy(), cfg, "lmul"))
        i, f, o = (_ste(torch.sigmoid(gates[:, k * 5:(k + 1) * 5]),
                        sig(gates[:, k * 5:(k + 1) * 5].detach().numpy())) for k in (0, 1, 3))
        gg = _ste(torch.tanh(gates[:, 10:15]), tanh(gates[:, 10:15].detach().numpy()))
        c = mul(f, c) + mul(i, gg)
        h = mul(o, _ste(torch.tanh(c), tanh(c.detach().numpy())))
        outs.append(h)
    ref_out = torch.stack(outs)
    assert_bits(out, ref_out)
    (ref_out * g).sum().backward()
    want = [xr.grad, *(params[k].grad for k, _ in m.named_parameters())]
    for a, bb in zip(got, want, strict=True):
        torch.testing.assert_close(a, bb, rtol=1e-5, atol=1e-6)


GRAD_CASES = [
    (lambda: nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True), (3, 6, 4)),
    (lambda: nn.LSTM(4, 5, proj_size=2), (6, 3, 4)),
    (lambda: nn.GRU(4, 5, num_layers=2, bidirectional=True), (6, 3, 4)),
    (lambda: nn.RNN(4, 5, nonlinearity="relu"), (6, 3, 4)),
    (lambda: nn.LSTMCell(4, 5), (3, 4)),
    (lambda: nn.GRUCell(4, 5), (3, 4)),
]


@pytest.mark.parametrize("case", range(len(GRAD_CASES)))
def test_recurrent_gradients_match_torch_in_binary32(gen: torch.Generator, case: int,
                                                     random_seed: int) -> None:
    """With exact binary32 products the converted layer is torch's layer up to summation order:
    outputs and every gradient agree to float32 tolerance."""
    torch.manual_seed(random_seed + case)
    make, shape = GRAD_CASES[case]
    m = make()
    conv = lt.convert(m, FP32, multiplier="exact")
    x = torch.randn(*shape, generator=gen)
    results = []
    for mod in (conv, m):
        mod.zero_grad()
        xl = x.clone().requires_grad_(True)
        y = mod(xl)
        y = y[0] if isinstance(y, tuple) else y
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        results.append([y.detach(), xl.grad, *(p.grad.clone() for p in mod.parameters())])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=2e-4, atol=2e-5)


# ------------------------------------------------------------------------------------ attention

@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_bmm_bits_and_gradient(gen: torch.Generator, multiplier: str) -> None:
    a = with_specials(torch.randn(3, 4, 5, generator=gen))
    b = torch.randn(3, 5, 2, generator=gen)
    got = lt.lmul_bmm(a, b, LMulConfig(), multiplier)
    for g in range(3):
        assert_bits(got[g], lmul.matmul_reference(a[g].numpy(), b[g].numpy(), None,
                                                  multiplier=multiplier))
    a, b = torch.randn(2, 3, 4, generator=gen), torch.randn(2, 4, 5, generator=gen)
    al, bl = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    ar, br = a.clone().requires_grad_(True), b.clone().requires_grad_(True)
    g = torch.randn(2, 3, 5, generator=gen)
    (lt.lmul_bmm(al, bl, multiplier=multiplier) * g).sum().backward()
    (torch.bmm(ar, br) * g).sum().backward()
    torch.testing.assert_close(al.grad, ar.grad)
    torch.testing.assert_close(bl.grad, br.grad)
    with pytest.raises(ValueError, match="lmul_bmm"):
        lt.lmul_bmm(a, a)


def test_sigmoid_and_tanh_round_once_from_float64(gen: torch.Generator) -> None:
    x = torch.randn(1000, generator=gen) * 6
    for fn, ref, grad in ((lt.sigmoid32, sig, lambda y: y * (1 - y)),
                          (lt.tanh32, tanh, lambda y: 1 - y * y)):
        assert_bits(fn(x), ref(x.numpy()))
        assert_bits(fn(x.numpy()), ref(x.numpy()))
        xl = x.clone().requires_grad_(True)
        y = fn(xl)
        y.sum().backward()
        torch.testing.assert_close(xl.grad, grad(y.detach()))


def mha_reference(m: nn.MultiheadAttention, q: np.ndarray, k: np.ndarray, v: np.ndarray,
                  cfg: LMulConfig, mult: str, attn_mask: np.ndarray | None = None,
                  kpm: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Batch-first [N, L, E] inputs; per (batch, head) tiles; float masks; softmax in float64."""
    p = npp(m)
    e, heads = m.embed_dim, m.num_heads
    hd = e // heads
    if m._qkv_same_embed_dim:
        wq, wk, wv = np.split(p["in_proj_weight"], 3)
    else:
        wq, wk, wv = p["q_proj_weight"], p["k_proj_weight"], p["v_proj_weight"]
    bq, bk, bv = np.split(p["in_proj_bias"], 3) if "in_proj_bias" in p else (None,) * 3
    n, ln = q.shape[0], q.shape[1]
    out = np.empty((n, ln, e), np.float32)
    weights = []
    scale = np.float32(np.sqrt(1.0 / hd))
    for b in range(n):
        qp, kp, vp = rmm(q[b], wq, bq, cfg, mult), rmm(k[b], wk, bk, cfg, mult), \
            rmm(v[b], wv, bv, cfg, mult)
        heads_out, heads_w = [], []
        for h in range(heads):
            sl = slice(h * hd, (h + 1) * hd)
            qs = rmul(qp[:, sl], scale, cfg, mult)
            s = rmm(qs, kp[:, sl], None, cfg, mult)
            if attn_mask is not None:
                s = s + attn_mask
            if kpm is not None:
                s = s + np.where(kpm[b], -np.inf, 0).astype(np.float32)
            s64 = s.astype(np.float64)
            ex = np.exp(s64 - s64.max(axis=1, keepdims=True))
            w = (ex / ex.sum(axis=1, keepdims=True)).astype(np.float32)
            heads_w.append(w)
            heads_out.append(rmm(w, vp[:, sl].T, None, cfg, mult))
        out[b] = rmm(np.concatenate(heads_out, 1), p["out_proj.weight"], p["out_proj.bias"],
                     cfg, mult)
        weights.append(np.stack(heads_w))
    return out, np.stack(weights)


@pytest.mark.parametrize("multiplier", ["lmul", "exact"])
def test_attention_converted_bits(gen: torch.Generator, multiplier: str, random_seed: int) -> None:
    torch.manual_seed(random_seed)
    cfg = LMulConfig()
    for batch_first in (True, False):
        m = nn.MultiheadAttention(8, 2, batch_first=batch_first)
        q = torch.randn(2, 3, 8, generator=gen)
        kv = torch.randn(2, 4, 8, generator=gen)
        mask = torch.randn(3, 4, generator=gen)
        kpm = torch.tensor([[False, True, False, False], [False] * 4])
        c = lt.convert(m, cfg, multiplier=multiplier)
        args = (q, kv, kv) if batch_first else (q.transpose(0, 1), kv.transpose(0, 1),
                                                kv.transpose(0, 1))
        out, w = c(*args, attn_mask=mask, key_padding_mask=kpm, average_attn_weights=False)
        want, want_w = mha_reference(m, q.numpy(), kv.numpy(), kv.numpy(), cfg, multiplier,
                                     mask.numpy(), kpm.numpy())
        assert_bits(out if batch_first else out.transpose(0, 1), want)
        np.testing.assert_allclose(w.detach().numpy(), want_w, rtol=1e-6, atol=1e-7)
        assert (w[0, :, :, 1] == 0).all()  # the padded key gets no weight
        # Averaged weights and need_weights=False; bool attn_mask works like -inf.
        _, wa = c(*args, attn_mask=mask, key_padding_mask=kpm)
        torch.testing.assert_close(wa, w.mean(dim=1))
        none = c(*args, need_weights=False)[1]
        assert none is None
    bool_mask = torch.triu(torch.ones(3, 3, dtype=torch.bool), 1)
    x = torch.randn(2, 3, 8, generator=gen)
    m = nn.MultiheadAttention(8, 2, batch_first=True)
    c = lt.convert(m, cfg, multiplier=multiplier)
    out, _ = c(x, x, x, attn_mask=bool_mask, is_causal=True)
    want, _ = mha_reference(m, x.numpy(), x.numpy(), x.numpy(), cfg, multiplier,
                            np.where(bool_mask.numpy(), -np.inf, 0).astype(np.float32))
    assert_bits(out, want)
    with pytest.raises(ValueError, match="is_causal"):
        c(x, x, x, is_causal=True)


def test_attention_options_and_gradients_match_torch_in_binary32(gen: torch.Generator,
                                                                 random_seed: int) -> None:
    torch.manual_seed(random_seed)
    m = nn.MultiheadAttention(8, 2, kdim=5, vdim=6, add_bias_kv=True, add_zero_attn=True)
    q, k, v = (torch.randn(3, 2, 8, generator=gen), torch.randn(4, 2, 5, generator=gen),
               torch.randn(4, 2, 6, generator=gen))
    mask = torch.randn(3, 4, generator=gen)
    kpm = torch.tensor([[False, False, True, False], [False] * 4])
    conv = lt.convert(m, FP32, multiplier="exact")
    res = []
    for mod in (conv, m):
        mod.zero_grad()
        ql = q.clone().requires_grad_(True)
        out, w = mod(ql, k, v, attn_mask=mask, key_padding_mask=kpm.float() * -1e9)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        res.append([out.detach(), w.detach(), ql.grad, *(p.grad.clone()
                                                         for p in mod.parameters())])
    for a, b in zip(*res, strict=True):
        torch.testing.assert_close(a, b, rtol=2e-4, atol=2e-5)
    # Unbatched input.
    out1, _ = conv(q[:, 0], k[:, 0], v[:, 0])
    out2, _ = conv(q[:, :1], k[:, :1], v[:, :1])
    assert_bits(out1, out2[:, 0])


def test_transformer_fast_path_never_bypasses_converted_layers(gen: torch.Generator,
                                                               random_seed: int) -> None:
    """In eval mode without grad torch's fused encoder kernel reads the weights directly; the
    converted layers must still compute (the output is the L-Mul one, not float32's)."""
    torch.manual_seed(random_seed)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, dropout=0.0).eval()
    enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=True).eval()
    x = torch.randn(3, 5, 16, generator=gen)
    pm = torch.zeros(3, 5, dtype=torch.bool)
    pm[0, 3:] = True
    conv = lt.convert(enc)
    assert enc.use_nested_tensor and not conv.use_nested_tensor
    assert any("nested-tensor" in n for n in conv.lmul_report.notes)
    with torch.no_grad():
        fast = conv(x, src_key_padding_mask=pm)
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            slow = conv(x, src_key_padding_mask=pm)
        finally:
            torch.backends.mha.set_fastpath_enabled(True)
        ref = enc(x)
    assert_bits(fast, slow)
    assert not torch.allclose(fast[1:], ref[1:], atol=1e-4)
    back = lt.revert(conv)
    assert back.use_nested_tensor


# ------------------------------------------------------------------------ convert/revert/report

class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.norm = nn.BatchNorm2d(2)
        self.up = nn.ConvTranspose2d(2, 2, 2)
        self.seq = nn.Sequential(nn.Flatten(), nn.Linear(2 * 10 * 10, 8), nn.ReLU(),
                                 nn.Linear(8, 3))
        self.emb = nn.Embedding(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(self.up(self.norm(self.conv(x))))


def test_convert_reports_and_revert_restores_objects(gen: torch.Generator) -> None:
    net = _Net().eval()
    originals = dict(net.named_modules())
    params = {k: v for k, v in net.named_parameters()}
    x = torch.randn(2, 1, 11, 11, generator=gen)
    with torch.no_grad():
        ref = net(x)
    conv = lt.convert(net)
    assert conv is not net and isinstance(net.conv, nn.Conv2d) \
        and not isinstance(net.conv, lt.LMulConv2d)  # inplace=False leaves net alone
    rep = conv.lmul_report
    assert {r.name for r in rep.converted} == {"conv", "seq.1", "seq.3"}
    left = {r.name: r.detail for r in rep.left_alone}
    assert set(left) == {"norm", "up", "emb"}
    assert "not supported" in left["up"] and "normalisation" in left["norm"]
    assert "seq.1" in str(rep) and "up" in str(rep)
    with torch.no_grad():
        y = conv(x)
    assert not torch.equal(y, ref)
    assert set(conv.state_dict()) == set(net.state_dict())
    # Fine-tune one step: the shared Parameters carry the update back through revert.
    opt = torch.optim.SGD(conv.parameters(), lr=0.1)
    conv.train()
    conv(x).sum().backward()
    before = conv.seq[1].weight.detach().clone()
    originals_copy = {n: m.original for n, m in conv.named_modules()
                      if isinstance(m, lt.LMulLinear | lt.LMulConv2d)}
    opt.step()
    back = lt.revert(conv)
    assert back is conv
    for n, orig in originals_copy.items():
        assert back.get_submodule(n) is orig and type(orig) in (nn.Linear, nn.Conv2d)
    assert not torch.equal(back.seq[1].weight, before)
    assert torch.equal(back.seq[1].weight, conv.seq[1].weight)
    assert not hasattr(back, "lmul_report")
    # In place: the model's own module objects and Parameter objects come back.
    conv2 = lt.convert(net, inplace=True)
    assert conv2 is net and isinstance(net.seq[1], lt.LMulLinear)
    assert net.seq[1].weight is params["seq.1.weight"]
    lt.revert(net)
    for name, mod in net.named_modules():
        assert mod is originals[name], name
    for name, prm in net.named_parameters():
        assert prm is params[name], name
    with torch.no_grad():
        assert torch.equal(net.eval()(x), ref)


def test_filter_fn_and_dict_configs(gen: torch.Generator) -> None:
    net = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4), nn.Linear(4, 3))
    only_first = lt.convert(net, filter_fn=lambda name, m: name == "0")
    assert isinstance(only_first[0], lt.LMulLinear)
    assert type(only_first[2]) is nn.Linear and type(only_first[3]) is nn.Linear
    assert {r.name: r.detail for r in only_first.lmul_report.left_alone}["2"].startswith(
        "excluded by filter_fn")
    cfgs = {"0": LMulConfig(offset=0), "3": LMulConfig(4, 3)}
    mixed = lt.convert(net, filter_fn=cfgs)
    assert mixed[0].cfg == cfgs["0"] and mixed[3].cfg == cfgs["3"]
    assert type(mixed[2]) is nn.Linear
    x = torch.randn(7, 6, generator=gen)
    p = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    h = rmm(x.numpy(), p["0.weight"], p["0.bias"], cfgs["0"], "lmul")
    h = np.tanh(h)
    h = (torch.from_numpy(h) @ net[2].weight.T + net[2].bias).detach().numpy()
    want = rmm(h, p["3.weight"], p["3.bias"], cfgs["3"], "lmul")
    assert_bits(mixed(x), want)
    with pytest.raises(ValueError, match="not convertible layers"):
        lt.convert(net, filter_fn={"1": LMulConfig()})
    with pytest.raises(TypeError, match="LMulConfig"):
        lt.convert(net, filter_fn={"0": "bf16"})
    with pytest.raises(TypeError, match="filter_fn"):
        lt.convert(net, filter_fn=3)
    with pytest.raises(ValueError, match="multiplier"):
        lt.convert(net, multiplier="fp8")
    with pytest.raises(TypeError, match="Module"):
        lt.convert(lambda x: x)


def test_subclasses_and_attention_parts_are_left_alone() -> None:
    class MyLinear(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) * 2

    net = nn.Sequential(MyLinear(3, 3), nn.MultiheadAttention(4, 2))
    conv = lt.convert(net, filter_fn=lambda name, m: not isinstance(m, nn.MultiheadAttention))
    assert type(conv[0]) is MyLinear and type(conv[1]) is nn.MultiheadAttention
    assert type(conv[1].out_proj) is not lt.LMulLinear  # its forward reads the weights directly
    left = {r.name: r.detail for r in conv.lmul_report.left_alone}
    assert "subclass" in left["0"] and "filter_fn" in left["1"]
    again = lt.convert(lt.convert(nn.Sequential(nn.Linear(2, 2))))
    assert "already converted" in again.lmul_report.left_alone[0].detail
