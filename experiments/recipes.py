"""Training recipes: float32 training, and training with the hardware's arithmetic in the loop.

A recipe string says how the weights that an inference mode evaluates were trained:

* ``fp32``: float32 training with ``torch.nn.LSTM`` (:func:`experiments.lstm.train`), the
  runner's default; its rows keep their plain mode names.
* ``ft`` (or ``finetune``), ``ftN``, ``ftN@L``, ``ft:MODE``, ``ftN@L:MODE``: *L-Mul-aware
  fine-tuning*. The float32 run's checkpoint after the job's E epochs (model, Adam state and
  shuffle generator) is trained for N more epochs (``--finetune-epochs``, default 1) with MODE's
  arithmetic in the forward pass, on the whole training set or, with ``@L``, on its first L
  images (a shorter fine-tuning for quick runs). Without ``:MODE`` every evaluated mode
  fine-tunes its own copy in its own arithmetic, so ``fp32 [ft1]`` is the float32 control: the
  same weights after the same extra training in float32 (without ``@L`` that is the float32
  run's own checkpoint E+N: the same batches in the same order).
* ``scratch``, ``scratch:MODE``: *L-Mul-aware training from scratch*: the seed's initial weights
  trained for the job's E epochs with MODE's arithmetic (without ``:MODE``, each evaluated mode
  but ``fp32``, whose scratch run is the float32 run itself).

The forward pass with a mode's arithmetic is the model converted by :func:`lmul.torch.convert`:
the LSTM's gate products, its elementwise products f*c, i*g, o*tanh(c) and the classifier head
(unless the mode has ``head=fp32``) are the RTL-exact kernels' bits, the same computation as the
explicit cell the runner evaluates; the backward pass is straight-through (the exact product's
gradient at the same operands). A result row of a recipe other than ``fp32`` is named
``MODE [RECIPE]`` (e.g. ``lmul:offset=7 [ft1]``, ``lmul [scratch:lmul]``), so it never mixes with
the float32-trained rows, and its paired difference in the report is to the float32-trained
``fp32`` row of the same seed. Trained weights are cached beside the float32 checkpoints, keyed by
dataset, sequence mode, recipe kind, training arithmetic, base epochs and seed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .modes import Arithmetic, parse_mode, split_modes

KINDS = ("fp32", "ft", "scratch")
_ALIASES = {"finetune": "ft", "fp32": "fp32", "scratch": "scratch", "ft": "ft"}
#: A fine-tuning length beyond this is a typo, not a recipe.
MAX_FINETUNE_EPOCHS = 1000


@dataclass(frozen=True)
class Recipe:
    """One training recipe (see the module docstring).

    Attributes:
        kind: ``fp32``, ``ft`` (fine-tune) or ``scratch``.
        epochs: fine-tuning epochs N (``ft``); 0 otherwise.
        limit: ``ft`` on the first ``limit`` training images only; None: all.
        train: the training arithmetic, or None: ``fp32`` for the ``fp32`` recipe, the evaluated
            mode's own arithmetic for ``ft`` / ``scratch``.
        name: canonical recipe string (``fp32``, ``ft1``, ``ft2:lmul:offset=7``, ``scratch``).
    """

    kind: str
    epochs: int
    train: Arithmetic | None
    name: str
    limit: int | None = None

    def train_arith(self, evaluated: Arithmetic) -> Arithmetic | None:
        """The arithmetic that trains the weights ``evaluated`` will run on; None when this
        recipe has no row for that mode (``scratch`` evaluated in ``fp32`` is the plain
        float32 run)."""
        if self.kind == "fp32":
            return None
        if self.train is not None:
            return self.train
        if self.kind == "scratch" and evaluated.kind == "fp32":
            return None
        return evaluated

    def label(self, mode_name: str) -> str:
        """The results' mode field of ``mode_name`` evaluated on this recipe's weights."""
        return mode_name if self.kind == "fp32" else f"{mode_name} [{self.name}]"


def parse_recipe(text: str, finetune_epochs: int = 1) -> Recipe:
    """Parse a recipe string (module docstring); ``ft`` without a count uses
    ``finetune_epochs``.

    Raises:
        ValueError: unknown recipe, a bad epoch count or a bad mode (one line naming it).
    """
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, (int, np.integer)) \
            or not 1 <= finetune_epochs <= MAX_FINETUNE_EPOCHS:
        raise ValueError(f"finetune epochs must be an integer 1..{MAX_FINETUNE_EPOCHS}, got "
                         f"{finetune_epochs!r}")
    head, _, mode_text = text.strip().partition(":")
    m = re.fullmatch(r"(fp32|finetune|ft|scratch)(\d*)(?:@(\d+))?", head.strip().lower())
    kind = _ALIASES[m.group(1)] if m else None
    if m is None or kind is None or ((m.group(2) or m.group(3)) and kind != "ft"):
        raise ValueError(f"unknown recipe {text!r}; known: fp32, ft[N][@L][:MODE] (finetune), "
                         "scratch[:MODE]")
    limit = int(m.group(3)) if m.group(3) else None
    if limit is not None and limit < 1:
        raise ValueError(f"recipe {text!r}: the fine-tuning subset @L must be >= 1 images")
    if kind == "fp32":
        if mode_text.strip():
            raise ValueError(f"recipe {text!r}: fp32 takes no mode")
        return Recipe("fp32", 0, None, "fp32")
    epochs = 0
    if kind == "ft":
        epochs = int(m.group(2)) if m.group(2) else int(finetune_epochs)
        if not 1 <= epochs <= MAX_FINETUNE_EPOCHS:
            raise ValueError(f"recipe {text!r}: fine-tuning epochs must be 1.."
                             f"{MAX_FINETUNE_EPOCHS}")
    train = None
    if mode_text.strip():
        try:
            train = parse_mode(mode_text)
        except ValueError as err:
            raise ValueError(f"recipe {text!r}: {err}") from None
    base = f"ft{epochs}" + ("" if limit is None else f"@{limit}") if kind == "ft" else "scratch"
    return Recipe(kind, epochs, train, base + (f":{train.name}" if train is not None else ""),
                  limit)


def split_recipes(text: str) -> list[str]:
    """Split a ``--recipes`` argument (commas; a mode's own ``key=value`` options continue it,
    as in :func:`experiments.modes.split_modes`)."""
    return split_modes(text)


class _View(nn.Module):
    """The classifier's layers in a second container, so converting them leaves the model
    itself a plain torch model (same Parameter objects, so the optimizer trains both)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.lstm = model.lstm
        self.fc = model.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from .lstm import LSTMClassifier

        return LSTMClassifier.forward(self, x)  # type: ignore[arg-type]


def aware_model(model: nn.Module, arith: Arithmetic) -> nn.Module:
    """The module that computes ``model``'s forward pass with ``arith``'s multiplier.

    ``model`` is an :class:`experiments.lstm.LSTMClassifier`; the result shares its Parameters
    (training the result trains ``model``) and leaves ``model`` unconverted. Its LSTM and (unless
    ``arith`` has ``head=fp32``) its head are :func:`lmul.torch.convert` modules: forward bits of
    the explicit cell in ``arith``, straight-through gradients. ``fp32`` returns ``model``.
    """
    if arith.kind == "fp32":
        return model
    import lmul.torch

    def keep(name: str, module: nn.Module) -> bool:
        return not (arith.fp32_head and name == "fc")

    return lmul.torch.convert(_View(model), arith.cfg, multiplier=arith.kind,
                              rounding=arith.rounding, filter_fn=keep, inplace=True)


def slug(text: str) -> str:
    """A file-name-safe form of a mode or recipe name (``lmul:offset=7`` -> ``lmul_offset_7``)."""
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_")


def checkpoint_tag(base_tag: str, recipe: Recipe, arith: Arithmetic, base_epochs: int) -> str:
    """Checkpoint name prefix of ``recipe``'s weights trained in ``arith``.

    Fine-tuning in float32 on the whole set is the float32 run continued, so it shares
    ``base_tag``'s files.
    """
    if recipe.kind == "ft" and arith.kind == "fp32" and recipe.limit is None:
        return base_tag
    if recipe.kind == "ft":
        sub = "" if recipe.limit is None else f"-n{recipe.limit}"
        return f"{base_tag}-ft-from{base_epochs}{sub}-{slug(arith.name)}"
    return f"{base_tag}-scratch-{slug(arith.name)}"


def base_state(ckpt_dir: Path, base_tag: str, seed: int, epochs: int) -> dict[str, Any]:
    """The float32 run's checkpoint after ``epochs`` epochs (what fine-tuning starts from).

    Raises:
        FileNotFoundError: not trained yet (the runner trains the float32 weights first).
    """
    from .lstm import checkpoint_path

    path = checkpoint_path(ckpt_dir, base_tag, seed, epochs)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the float32 checkpoint to fine-tune from is missing")
    return torch.load(path, map_location="cpu", weights_only=True)


def train_recipe(x_train: np.ndarray, y_train: np.ndarray, n_classes: int, seed: int,
                 base_epochs: int, recipe: Recipe, arith: Arithmetic, ckpt_dir: Path,
                 base_tag: str, progress: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """Train (or load from the cache) ``recipe``'s weights in arithmetic ``arith``.

    ``ft``: from the float32 checkpoint ``base_tag`` after ``base_epochs`` epochs, N more epochs
    (on the first ``recipe.limit`` images when set);
    ``scratch``: ``base_epochs`` epochs from the seed's initialisation. Checkpoints per epoch
    under :func:`checkpoint_tag` (a rerun resumes).

    Returns:
        (plain float32 :class:`experiments.lstm.LSTMClassifier` in eval mode holding the trained
        weights, info dict as :func:`experiments.lstm.train`, plus ``recipe_wall_s``: the
        seconds this recipe's own epochs took, the float32 base excluded).
    """
    from .lstm import train

    if recipe.kind not in ("ft", "scratch"):
        raise ValueError(f"train_recipe trains ft or scratch recipes, got {recipe.name!r}")
    tag = checkpoint_tag(base_tag, recipe, arith, base_epochs)
    forward = None if arith.kind == "fp32" else (lambda m: aware_model(m, arith))
    if recipe.kind == "ft":
        start = base_state(ckpt_dir, base_tag, seed, base_epochs)
        if recipe.limit is not None:
            x_train, y_train = x_train[:recipe.limit], y_train[:recipe.limit]
        model, info = train(x_train, y_train, n_classes, seed, base_epochs + recipe.epochs,
                            ckpt_dir, tag, progress, forward=forward,
                            start=(base_epochs, start))
        info["recipe_wall_s"] = info["train_wall_s"] - float(start["train_wall_s"])
    else:
        model, info = train(x_train, y_train, n_classes, seed, base_epochs, ckpt_dir, tag,
                            progress, forward=forward)
        info["recipe_wall_s"] = info["train_wall_s"]
    return model, info


class FloatOps:
    """:class:`lmul.torch.CellOps` in plain torch float32 (``addmm``, ``*``, ``torch.sigmoid``,
    ``torch.tanh``): the explicit cell as an ordinary float32 training would compute it, the
    yardstick of the L-Mul-aware training's speed."""

    def linear(self, z: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None
               ) -> torch.Tensor:
        return z @ w.t() if bias is None else torch.addmm(bias, z, w.t())

    def mul(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y

    def sigmoid(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)

    def tanh(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)

    def cat(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, h], dim=-1)


class FloatCellModel(nn.Module):
    """The classifier's forward pass through the explicit cell (:func:`lmul.torch.lstm_cell_step`,
    the converted LSTM's own step function) with :class:`FloatOps`; shares ``model``'s
    Parameters. Log-probabilities ``[B, C]`` for ``x [B, T, I]``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.lstm = model.lstm
        self.fc = model.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from lmul.torch import lstm_cell_step

        lstm = self.lstm
        w = torch.cat([lstm.weight_ih_l0, lstm.weight_hh_l0], dim=1)
        b = lstm.bias_ih_l0 + lstm.bias_hh_l0
        h = x.new_zeros(x.shape[0], lstm.hidden_size)
        c = x.new_zeros(x.shape[0], lstm.hidden_size)
        ops = FloatOps()
        for t in range(x.shape[1]):
            h, c = lstm_cell_step(x[:, t], h, c, w, b, ops)
        return torch.nn.functional.log_softmax(self.fc(h), dim=1)


def bench_training(repeats: int = 3, batches: int = 3, seed: int = 0
                   ) -> list[tuple[str, float]]:
    """Seconds per training batch (128 MNIST-shaped row sequences: forward, backward, Adam step),
    best of ``repeats`` runs of ``batches`` batches each, after a warm-up batch:
    torch's fused ``nn.LSTM``, the explicit cell in float32 (:class:`FloatCellModel`) and the
    L-Mul-aware model (:func:`aware_model`, BF16 L-Mul at the paper offset), on the same data.
    The three models' runs alternate (repeat r of each, then r + 1), so a change of the
    machine's load during the benchmark falls on all three alike rather than on one."""
    import time

    from torch.nn import functional

    from .lstm import BATCH_SIZE, LSTMClassifier

    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(BATCH_SIZE, 28, 28, generator=gen)
    y = torch.randint(0, 10, (BATCH_SIZE,), generator=gen)
    names, steps = [], []
    for name, build in (("torch nn.LSTM (fused), float32", lambda m: m),
                        ("explicit cell, float32", FloatCellModel),
                        ("explicit cell, L-Mul-aware (BF16, paper offset)",
                         lambda m: aware_model(m, parse_mode("lmul")))):
        torch.manual_seed(seed)
        model = LSTMClassifier(28, 10)
        fwd = build(model)
        opt = torch.optim.Adam(model.parameters())

        def step(fwd: nn.Module = fwd, opt: torch.optim.Optimizer = opt) -> None:
            opt.zero_grad()
            functional.nll_loss(fwd(x), y).backward()
            opt.step()

        step()
        names.append(name)
        steps.append(step)
    best = [float("inf")] * len(steps)
    for _ in range(repeats):
        for j, step in enumerate(steps):
            t0 = time.perf_counter()
            for _ in range(batches):
                step()
            best[j] = min(best[j], (time.perf_counter() - t0) / batches)
    return list(zip(names, best, strict=True))
