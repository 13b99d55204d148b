"""The seed notebook's LSTM classifier: float32 training with torch, explicit-cell inference.

Model: one LSTM layer (hidden 128) reads an image as a sequence, a linear layer maps the last
hidden state to class scores, log-softmax; trained with Adam (lr 1e-3), batch 128, NLL loss.

Training uses ``torch.nn.LSTM`` (fast). Inference uses an explicit cell on the same weights so
every product can go through a chosen arithmetic (:mod:`experiments.modes`). The step is
:func:`lmul.torch.lstm_cell_step`, the one the converted ``nn.LSTM`` of ``lmul.torch.convert``
runs too (here on numpy arrays with the mode's products), so both give the same bits. Per step::

    z     = [x_t, h]                                   float32 [B, I+H]
    gates = mode.matmul(z, W, b)         W = [W_ih | W_hh]^T [I+H, 4H], b = b_ih + b_hh
    i, f, g, o = sigmoid(gates[:, 0:H]), sigmoid(..H:2H), tanh(..2H:3H), sigmoid(..3H:4H)
    c     = mode.mul(f, c) + mode.mul(i, g)            float32 sum (IEEE, round to nearest even)
    h     = mode.mul(o, tanh(c))
    logits = mode.head_matmul(h, fc_W^T, fc_b)         the classifier also uses the mode

The final linear layer uses the mode's arithmetic too (unless the mode says ``head=fp32``): in
hardware it would run on the same MAC array, and it is 1/4 of a step's work once per sequence.
The seed notebook kept it in float32; ``seed:head=fp32`` reproduces that.
``b = b_ih + b_hh`` is summed once in float32 (torch adds the two biases separately; the
difference is within float32 rounding and absent from the hardware, which has one bias).
``sigmoid``/``tanh`` are :func:`lmul.sigmoid32` / :func:`lmul.tanh32`: correctly rounded
float32, so a value depends neither on its position in the batch nor on the machine.

Sequence modes: ``rows`` (H steps of W pixels), ``pixels`` (H*W steps of 1 pixel), ``permuted``
(``pixels`` in a fixed random order drawn from :data:`PERMUTATION_SEED`, the same for all runs).
Pixels are scaled to float32 ``value / 255`` (as torchvision's ``ToTensor``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional
from tqdm import tqdm

import lmul
import lmul.torch as lmul_torch
from sim.lib.fileio import atomic_write
from sim.lib.progress import bar_interval

if TYPE_CHECKING:  # annotations only; the runner imports the modes after checking its options
    from .modes import Arithmetic

HIDDEN = 128
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
SEQ_MODES = ("rows", "pixels", "permuted")
PERMUTATION_SEED = 2410_00907  # arXiv id of the L-Mul paper; fixed for every permuted run


def sequence_shape(image_shape: tuple[int, int], seq: str) -> tuple[int, int]:
    """(steps T, inputs per step I) for an image of ``image_shape`` (H, W) in sequence mode."""
    h, w = image_shape
    if seq == "rows":
        return h, w
    if seq in ("pixels", "permuted"):
        return h * w, 1
    raise ValueError(f"unknown sequence mode {seq!r}; known: {', '.join(SEQ_MODES)}")


def pixel_permutation(n_pixels: int) -> np.ndarray:
    """The fixed pixel order of the ``permuted`` mode (int64 [n_pixels])."""
    return np.random.default_rng(PERMUTATION_SEED).permutation(n_pixels)


def to_sequence(images: np.ndarray, seq: str) -> np.ndarray:
    """uint8 images [N, H, W] -> float32 sequences [N, T, I] with values pixel/255."""
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"expected uint8 [N, H, W] images, got {images.dtype} {images.shape}")
    n, h, w = images.shape
    t, i = sequence_shape((h, w), seq)
    x = images.reshape(n, h * w)
    if seq == "permuted":
        x = x[:, pixel_permutation(h * w)]
    return (x.astype(np.float32) / np.float32(255.0)).reshape(n, t, i)


class LSTMClassifier(nn.Module):
    """One-layer LSTM over the sequence, linear head on the last hidden state, log-softmax."""

    def __init__(self, input_size: int, n_classes: int, hidden_size: int = HIDDEN) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float32 [B, T, I] -> log-probabilities float32 [B, n_classes]."""
        _, (h, _) = self.lstm(x)
        return functional.log_softmax(self.fc(h[-1]), dim=1)


@dataclass(frozen=True)
class CellWeights:
    """The trained weights in the explicit cell's layout (all float32 numpy, C-contiguous).

    Attributes:
        w: [I+H, 4H], rows = inputs then hidden state, columns = gates i, f, g, o (torch order).
        b: [4H], ``b_ih + b_hh``.
        fc_w: [H, C]. fc_b: [C].
    """

    w: np.ndarray
    b: np.ndarray
    fc_w: np.ndarray
    fc_b: np.ndarray

    @property
    def hidden(self) -> int:
        """Hidden size H."""
        return self.fc_w.shape[0]

    @classmethod
    def from_model(cls, model: LSTMClassifier) -> CellWeights:
        """Extract the weights of a (trained) :class:`LSTMClassifier`."""
        lstm = model.lstm

        def f32(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))

        w = np.concatenate([f32(lstm.weight_ih_l0), f32(lstm.weight_hh_l0)], axis=1).T
        b = f32(lstm.bias_ih_l0) + f32(lstm.bias_hh_l0)
        return cls(np.ascontiguousarray(w), b, np.ascontiguousarray(f32(model.fc.weight).T),
                   f32(model.fc.bias))


def sigmoid32(x: np.ndarray) -> np.ndarray:
    """Logistic function of float32 values, correctly rounded to float32 (:func:`lmul.sigmoid32`,
    the function of :func:`lmul.torch.sigmoid32` too)."""
    return lmul.sigmoid32(x)


def tanh32(x: np.ndarray) -> np.ndarray:
    """tanh of float32 values, correctly rounded to float32 (:func:`lmul.tanh32`)."""
    return lmul.tanh32(x)


class _ModeOps:
    """:class:`lmul.torch.CellOps` on numpy arrays: the products of an inference mode.

    With ``w`` (the gate weights [I+H, 4H]) and a mode on the fast kernels, ``w`` is prepared
    once (:func:`lmul.prepare_b`) and ``linear(z, w, b)`` multiplies by that snapshot,
    the bits of ``mode.matmul(z, w, b)``: build these ops per sequence batch, never across a
    change of ``w``. Other modes (fp32, the reference, a duck-typed recorder) use ``mode.matmul``.
    """

    def __init__(self, mode: Arithmetic, w: np.ndarray | None = None) -> None:
        self.linear = mode.matmul  # (z, W [K, N], b): W in the cell's [I+H, 4H] layout
        kind = getattr(mode, "kind", None)
        if w is not None and kind in ("lmul", "exact", "seed") \
                and not getattr(mode, "use_reference", False) and lmul.fast_path_enabled():
            prepared = lmul.prepare_b(w, mode.cfg, mode.rounding, kind)

            def linear(z: np.ndarray, w_: np.ndarray, b: np.ndarray) -> np.ndarray:
                if w_ is not w:  # only the weights prepared above may take the prepared path
                    return mode.matmul(z, w_, b)
                return lmul.matmul_prepared(z, prepared, b,
                                            accumulate=getattr(mode, "accumulate", None))
            self.linear = linear
        self.mul = mode.mul
        # the mode's activations (act= option); duck-typed modes without them get the exact ones
        self.sigmoid = getattr(mode, "sigmoid", sigmoid32)
        self.tanh = getattr(mode, "tanh", tanh32)

    @staticmethod
    def cat(x: np.ndarray, h: np.ndarray) -> np.ndarray:
        return np.concatenate([x, h], axis=1)


def cell_step(wts: CellWeights, x_t: np.ndarray, h: np.ndarray, c: np.ndarray,
              mode: Arithmetic) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step in ``mode``: float32 x_t [B, I], h [B, H], c [B, H] -> (h, c)."""
    with np.errstate(invalid="ignore", over="ignore"):
        return lmul_torch.lstm_cell_step(x_t, h, c, wts.w, wts.b, _ModeOps(mode))


def forward_logits(wts: CellWeights, x_seq: np.ndarray, mode: Arithmetic,
                   on_step: Callable[[], None] | None = None) -> np.ndarray:
    """Run the explicit cell over float32 sequences [B, T, I]; return float32 logits [B, C].

    ``on_step`` is called after every time step (progress reporting).
    """
    x_seq = np.asarray(x_seq, dtype=np.float32)
    b = x_seq.shape[0]
    h = np.zeros((b, wts.hidden), dtype=np.float32)
    c = np.zeros((b, wts.hidden), dtype=np.float32)
    ops = _ModeOps(mode, wts.w)  # the steps of :func:`cell_step`, W prepared once per call
    for t in range(x_seq.shape[1]):
        with np.errstate(invalid="ignore", over="ignore"):
            h, c = lmul_torch.lstm_cell_step(np.ascontiguousarray(x_seq[:, t, :]), h, c, wts.w,
                                             wts.b, ops)
        if on_step is not None:
            on_step()
    return mode.head_matmul(h, wts.fc_w, wts.fc_b)


def predictions(logits: np.ndarray) -> np.ndarray:
    """Predicted class per row (int64); -1 where a row has a NaN or infinite logit."""
    pred = np.argmax(np.nan_to_num(logits, nan=-np.inf), axis=1).astype(np.int64)
    pred[~np.all(np.isfinite(logits), axis=1)] = -1
    return pred


def train_epoch(fwd: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                perm: torch.Tensor,
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                progress: bool, desc: str, batch_size: int = BATCH_SIZE) -> float:
    """One training epoch: batches of ``batch_size`` in the order ``perm`` (the last one
    partial), each ``opt.zero_grad()``, ``loss_fn(fwd(x), y)``, backward, ``opt.step()``;
    returns the epoch's mean loss per sample."""
    total = 0.0
    for s in tqdm(range(0, len(perm), batch_size), desc=desc, unit="batch", disable=not progress,
                  leave=False, dynamic_ncols=True, mininterval=bar_interval()):
        idx = perm[s:s + batch_size]
        opt.zero_grad()
        loss = loss_fn(fwd(x[idx]), y[idx])
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
    return total / len(perm)


def predict(wts: CellWeights, x_seq: np.ndarray, mode: Arithmetic, batch_size: int = 1000,
            progress: bool = True, desc: str = "") -> np.ndarray:
    """Predicted classes (int64 [N], -1 for non-finite outputs) for float32 sequences [N, T, I].

    Batches of ``batch_size`` >= 1 sequences; a tqdm bar counts time steps over all batches.

    Raises:
        ValueError: ``batch_size`` < 1 (the output would be left unwritten).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    n, steps = x_seq.shape[0], x_seq.shape[1]
    out = np.empty(n, dtype=np.int64)
    with tqdm(total=steps * ((n + batch_size - 1) // batch_size), desc=desc or mode.name,
              unit="step", disable=not progress, leave=False, dynamic_ncols=True,
              mininterval=bar_interval()) as bar:
        for s in range(0, n, batch_size):
            logits = forward_logits(wts, x_seq[s:s + batch_size], mode, on_step=bar.update)
            out[s:s + batch_size] = predictions(logits)
    return out


def torch_predict(model: LSTMClassifier, x_seq: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Predicted classes with torch's own float32 LSTM (a cross-check of the fp32 mode)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, x_seq.shape[0], batch_size):
            out.append(model(torch.from_numpy(x_seq[s:s + batch_size])).argmax(dim=1).numpy())
    return np.concatenate(out).astype(np.int64)


# --------------------------------------------------------------------------------------- training

def checkpoint_path(ckpt_dir: Path, tag: str, seed: int, epoch: int) -> Path:
    """File of the weights after ``epoch`` epochs of run ``tag`` (e.g. ``mnist-rows-h128``)."""
    return Path(ckpt_dir) / f"{tag}-seed{seed}-epoch{epoch}.pt"


def _latest_checkpoint(ckpt_dir: Path | None, tag: str, seed: int, epochs: int
                       ) -> tuple[int, dict[str, Any] | None]:
    if ckpt_dir is None:
        return 0, None
    for k in range(epochs, 0, -1):
        path = checkpoint_path(ckpt_dir, tag, seed, k)
        if path.is_file():
            try:
                return k, torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # unreadable (e.g. killed mid-copy by hand): retrain from earlier
                continue
    return 0, None


def train(x_train: np.ndarray, y_train: np.ndarray, n_classes: int, seed: int, epochs: int,
          ckpt_dir: Path | None = None, tag: str = "run", progress: bool = True,
          hidden: int = HIDDEN, forward: Callable[[nn.Module], nn.Module] | None = None,
          start: tuple[int, dict[str, Any]] | None = None
          ) -> tuple[LSTMClassifier, dict[str, Any]]:
    """Train the classifier (float32 unless ``forward`` says otherwise); resume from / save
    per-epoch checkpoints.

    Reproducible: ``torch.manual_seed(seed)`` initializes the weights; a ``torch.Generator``
    seeded with ``seed`` draws each epoch's shuffle (batches of :data:`BATCH_SIZE`, last one
    partial). A checkpoint after each epoch holds the model, Adam state and generator state, so
    training to E epochs continues from the latest checkpoint k <= E with identical results (on
    the same torch build and thread count).

    Args:
        x_train: float32 [N, T, I] sequences. y_train: int64 [N] labels.
        n_classes: output classes. seed: run seed. epochs: total epochs wanted.
        ckpt_dir: checkpoint directory, or None to keep nothing.
        tag: checkpoint name prefix (dataset, sequence mode, hidden size).
        forward: builds the module whose forward pass training uses, sharing the model's
            Parameters (:func:`experiments.recipes.aware_model`: the hardware's arithmetic with
            straight-through gradients); None: the float32 model itself.
        start: (epoch k, checkpoint dict) to continue from when ``tag`` has no checkpoint of
            its own yet (fine-tuning another run's weights from its epoch k < ``epochs``).

    Returns:
        (model in eval mode, info dict: epochs, train_loss (last epoch mean), train_wall_s (sum
        over all epochs, including earlier runs), resumed_from (epoch))
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    torch.manual_seed(seed)
    model = LSTMClassifier(x_train.shape[2], n_classes, hidden)
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    gen = torch.Generator().manual_seed(seed)
    first, state = _latest_checkpoint(ckpt_dir, tag, seed, epochs)
    if state is None and start is not None:
        if not 0 < start[0] < epochs:
            raise ValueError(f"start epoch must be in 1..{epochs - 1}, got {start[0]}")
        first, state = start
    info: dict[str, Any] = {"epochs": epochs, "train_loss": None, "train_wall_s": 0.0,
                            "resumed_from": first}
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        info["train_loss"] = float(state["train_loss"])
        info["train_wall_s"] = float(state["train_wall_s"])
    x = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32))
    y = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
    n = x.shape[0]
    fwd = model if forward is None else forward(model)
    for epoch in range(first, epochs):
        t0 = time.perf_counter()
        fwd.train()
        perm = torch.randperm(n, generator=gen)
        info["train_loss"] = train_epoch(fwd, opt, x, y, perm, functional.nll_loss, progress,
                                         f"train {tag} seed {seed} epoch {epoch + 1}/{epochs}")
        info["train_wall_s"] += time.perf_counter() - t0
        if ckpt_dir is not None:
            state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                     "generator": gen.get_state(), "train_loss": info["train_loss"],
                     "train_wall_s": info["train_wall_s"], "epoch": epoch + 1}
            atomic_write(checkpoint_path(ckpt_dir, tag, seed, epoch + 1),
                         lambda f, st=state: torch.save(st, f))
    model.eval()
    return model, info
