"""Any PyTorch model on the L-Mul hardware: a CNN and a transformer through ``lmul.torch.convert``.

    python -m experiments.convert_demo                      # make convert-demo: both models
    python -m experiments.convert_demo --models transformer --datasets fashion --seeds 0-4 \\
        --train-limit 60000 --modes fp32,lmul@attn,lmul@attn+ft

Models (each image is 28x28, pixels scaled to ``value / 255``):

* ``cnn``: LeNet-style, conv 1->6 5x5 (pad 2), ReLU, max-pool 2, conv 6->16 5x5, ReLU, max-pool 2,
  linear 400->120->84->classes (ReLU between);
* ``transformer``: each image is 28 row tokens of 28 pixels; linear embedding 28->64 plus a
  learned position embedding, 2 post-norm encoder layers (4 heads, feed-forward 128, ReLU, no
  dropout), mean over tokens, LayerNorm, linear 64->classes.

Each is trained in float32 (Adam 1e-3, batch 128, ``--epochs``; ``torch.manual_seed(seed)`` for the
weights, a generator seeded with ``seed`` for the shuffle) on the first ``--train-limit`` training
images, then evaluated on the test set in each mode. A mode is ``ARITH[@WHERE][+ft[N]]``:

* ``ARITH``: ``fp32`` (torch's own layers), or a mode of :mod:`experiments.modes` with a
  multiplier: ``bf16`` (exact products rounded to BF16), ``lmul`` (the L-Mul unit, paper offset),
  ``lmul:offset=7``, ``lmul:e=4,m=3``, ``seed``, ... (``head=fp32`` is not taken here);
* ``WHERE``: which layers run on the MAC array's arithmetic (``lmul.torch.convert``): ``all``
  (default: every linear, convolution and attention layer), ``attn`` (the
  ``nn.MultiheadAttention`` layers only: Q/K/V/output projections, Q.K^T and attention.V; the
  paper's setting), ``linear`` (every ``nn.Linear``/``nn.Conv2d`` outside attention:
  embedding, feed-forward, head);
* ``+ft``: L-Mul-aware fine-tuning first: the converted model is trained ``N`` epochs (default 1;
  Adam 1e-4, the same training images) with the MAC array's arithmetic in the forward pass and
  straight-through gradients, then evaluated in the same arithmetic. ``fp32+ft`` is the control:
  the same fine-tuning in float32, so ``lmul+ft`` minus ``fp32+ft`` is what the L-Mul-aware
  training itself recovers (the +ft rows' difference to fp32 also contains the extra epoch).

What stays float32 in every mode (``lmul.torch``'s report lists it): normalisation, activations,
pooling, softmax (float64 rounded once), additions of positions and residuals.

Results go through the accuracy runner's store (:class:`experiments.store.ResultsStore`): each
(dataset, model, seed, epochs, mode, limits, batch) result is merged into the JSON (and CSV) as soon
as it is measured, and a rerun skips what is there (resume). Trained weights (float32 and
fine-tuned) are cached in ``--weights-dir``. At the end the table (seeds, means, 95% CIs, paired
differences to fp32 with their CIs, via :mod:`experiments.stats`) is printed and written with the
plot beside the JSON.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional
from tqdm import tqdm

import lmul
import lmul.torch as lt
from sim.lib.cli import int_in_range, json_path, run_main
from sim.lib.fileio import (
    RESULTS_DIR,
    atomic_write,
    atomic_write_text,
    check_writable_dir,
    check_writable_file,
)
from sim.lib.progress import bar_interval

from . import data as data_mod
from .accuracy import parse_seeds
from .bench import best_times_interleaved
from .lstm import train_epoch
from .modes import parse_mode
from .report import ResultsError, build_rows, derived_path, plot
from .store import ResultsStore, now, run_key

MODELS = ("cnn", "transformer")
WHERE = ("all", "attn", "linear")
DEFAULT_MODES = {
    "cnn": "fp32,bf16,lmul,fp32+ft,lmul+ft",
    "transformer": "fp32,lmul@attn,lmul@linear,lmul,fp32+ft,lmul@attn+ft,lmul@linear+ft,lmul+ft",
}
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
FT_LEARNING_RATE = 1e-4
EVAL_BATCH = 1000
DEFAULT_OUT = RESULTS_DIR / "convert.json"


# ------------------------------------------------------------------------------------- models

class LeNet(nn.Module):
    """LeNet-style CNN for 28x28 grayscale images: float32 [B, 1, 28, 28] -> logits [B, C]."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc3(torch.relu(self.fc2(x)))


class RowTransformer(nn.Module):
    """Transformer classifier over 28 row tokens: float32 [B, 28, 28] -> logits [B, C]."""

    def __init__(self, n_classes: int, d_model: int = 64, heads: int = 4, ff: int = 128,
                 layers: int = 2, tokens: int = 28, token_size: int = 28) -> None:
        super().__init__()
        self.embed = nn.Linear(token_size, d_model)
        self.pos = nn.Parameter(torch.randn(1, tokens, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x) + self.pos)
        return self.head(self.norm(h.mean(dim=1)))


def build_model(name: str, n_classes: int) -> nn.Module:
    """A freshly initialised model (call ``torch.manual_seed`` first for reproducibility)."""
    if name == "cnn":
        return LeNet(n_classes)
    if name == "transformer":
        return RowTransformer(n_classes)
    raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")


def model_input(name: str, images: np.ndarray) -> torch.Tensor:
    """uint8 [N, 28, 28] -> the model's float32 input (pixels / 255)."""
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0))
    return x.unsqueeze(1) if name == "cnn" else x


# -------------------------------------------------------------------------------------- modes

@dataclass(frozen=True)
class DemoMode:
    """A parsed mode string: arithmetic, where it applies, fine-tuning epochs."""

    name: str
    multiplier: str | None  # None: float32
    cfg: lmul.LMulConfig
    rounding: str
    where: str
    ft_epochs: int

    def convert(self, model: nn.Module) -> nn.Module:
        """A converted deep copy of ``model`` (a plain deep copy for fp32)."""
        if self.multiplier is None:
            return copy.deepcopy(model)
        return lt.convert(model, self.cfg, multiplier=self.multiplier, rounding=self.rounding,
                          filter_fn=_selector(self.where))

    def describe(self) -> dict[str, Any]:
        if self.multiplier is None:
            return {"multiplier": "fp32", "ft_epochs": self.ft_epochs}
        return {"multiplier": self.multiplier, "format": self.cfg.fmt.name,
                "offset": self.cfg.offset_value if self.multiplier == "lmul" else None,
                "rounding": self.rounding, "where": self.where, "ft_epochs": self.ft_epochs}


def _selector(where: str) -> Callable[[str, nn.Module], bool]:
    def in_attention(name: str, module: nn.Module) -> bool:
        return isinstance(module, nn.MultiheadAttention)

    if where == "attn":
        return in_attention
    if where == "linear":
        return lambda name, module: not in_attention(name, module)
    return lambda name, module: True


def parse_demo_mode(text: str) -> DemoMode:
    """Parse ``ARITH[@WHERE][+ft[N]]`` (module docstring); the name is canonical.

    Raises:
        ValueError: one line naming the mode string.
    """
    body, plus, ft = text.strip().partition("+")
    ft_epochs = 0
    if plus:
        if not ft.startswith("ft") or not (ft[2:] == "" or ft[2:].isdigit()):
            raise ValueError(f"bad mode {text!r}: the suffix must be +ft or +ftN (N epochs)")
        ft_epochs = int(ft[2:] or 1)
        if ft_epochs < 1:
            raise ValueError(f"bad mode {text!r}: fine-tuning epochs must be >= 1")
    arith_text, at, where = body.partition("@")
    where = where.strip().lower() if at else "all"
    if where not in WHERE:
        raise ValueError(f"bad mode {text!r}: @{where} is not one of {', '.join(WHERE)}")
    arith = parse_mode(arith_text)
    if arith.fp32_head:
        raise ValueError(f"bad mode {text!r}: head=fp32 is not an option here (use @attn or "
                         "@linear to choose layers)")
    if arith.kind == "fp32":
        if at:
            raise ValueError(f"bad mode {text!r}: fp32 takes no @WHERE")
        name = "fp32" + ("" if not ft_epochs else "+ft" if ft_epochs == 1 else f"+ft{ft_epochs}")
        return DemoMode(name, None, arith.cfg, "rne", "all", ft_epochs)
    name = arith.name + ("" if where == "all" else f"@{where}") + (
        "" if not ft_epochs else "+ft" if ft_epochs == 1 else f"+ft{ft_epochs}")
    return DemoMode(name, arith.kind, arith.cfg, arith.rounding, where, ft_epochs)


# ---------------------------------------------------------------------------------- training

def train_epochs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int, epochs: int,
                 lr: float, progress: bool, desc: str) -> float:
    """Adam, cross-entropy, batches of :data:`BATCH_SIZE` shuffled by a generator seeded with
    ``seed``; returns the last epoch's mean training loss."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = x.shape[0]
    loss_mean = float("nan")
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        loss_mean = train_epoch(model, opt, x, y, perm, functional.cross_entropy, progress,
                                f"{desc} epoch {epoch + 1}/{epochs}", BATCH_SIZE)
    model.eval()
    return loss_mean


def _cached(path: Path | None, make: Callable[[], tuple[nn.Module, dict[str, Any]]],
            template: Callable[[], nn.Module]) -> tuple[nn.Module, dict[str, Any]]:
    """Load a model state from ``path`` when it is there, else ``make`` and save it."""
    if path is not None and path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model = template()
            model.load_state_dict(state["model"])
            return model.eval(), dict(state["info"])
        except Exception:  # a damaged cache file: train again and overwrite it
            pass
    model, info = make()
    if path is not None:
        state = {"model": model.state_dict(), "info": info}
        atomic_write(path, lambda f: torch.save(state, f))
    return model, info


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, progress: bool,
             desc: str) -> dict[str, Any]:
    """Correct count, non-finite rows (counted wrong) and wall time on ``x``."""
    model.eval()
    t0 = time.perf_counter()
    correct = nonfinite = 0
    for s in tqdm(range(0, x.shape[0], batch), desc=desc, unit="batch", disable=not progress,
                  leave=False, dynamic_ncols=True, mininterval=bar_interval()):
        logits = model(x[s:s + batch])
        finite = torch.isfinite(logits).all(dim=1)
        pred = logits.argmax(dim=1)
        correct += int(((pred == y[s:s + batch]) & finite).sum())
        nonfinite += int((~finite).sum())
    return {"correct": correct, "nonfinite": nonfinite,
            "eval_wall_s": round(time.perf_counter() - t0, 3)}


# ------------------------------------------------------------------------------------- runner

def run(models: Sequence[str], datasets: Sequence[str], seeds: Sequence[int], epochs: int,
        modes: dict[str, list[str]], out: Path, *, weights_dir: Path | None = None,
        data_root: Path | None = None, train_limit: int | None = None,
        test_limit: int | None = None, batch_size: int = EVAL_BATCH, progress: bool = True,
        log: Callable[[str], None] | None = None,
        load_fn: Callable[[str, Path | None], data_mod.ImageData] | None = None
        ) -> ResultsStore:
    """Train, convert, fine-tune and evaluate every (model, dataset, seed, mode) not yet in ``out``.

    Args:
        models: names from :data:`MODELS`. datasets: dataset names. seeds: run seeds.
        epochs: float32 training epochs. modes: per model, mode strings (:func:`parse_demo_mode`).
        out: results JSON (created or extended). weights_dir: weight cache (default
            ``<out dir>/weights``). train_limit / test_limit: first N images only (training and
            fine-tuning use the same images).
        batch_size: evaluation batch. load_fn: dataset loader (tests inject one).

    Raises:
        ValueError: a bad model, mode or number (before anything is written).
        ResultsError: ``out`` cannot hold results.
    """
    for m in models:
        if m not in MODELS:
            raise ValueError(f"unknown model {m!r}; known: {', '.join(MODELS)}")
    parsed = {m: [parse_demo_mode(t) for t in modes[m]] for m in models}
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be >= 1")
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    load_fn = load_fn or data_mod.load
    store = ResultsStore(out)
    weights_dir = Path(weights_dir) if weights_dir is not None else Path(out).parent / "weights"
    for dataset in datasets:
        dataset = data_mod.canonical_name(dataset)
        ds: data_mod.ImageData | None = None
        unavailable = False
        for model_name in models:
            for seed in seeds:
                if unavailable:
                    break
                base = {"dataset": dataset, "seq": model_name, "seed": int(seed),
                        "epochs": epochs, "train_limit": train_limit, "test_limit": test_limit,
                        "batch_size": batch_size}
                store.refresh()  # skip what a concurrent run on the same file finished
                todo = [md for md in parsed[model_name]
                        if not store.has(run_key({**base, "mode": md.name}))]
                if not todo:
                    continue
                if ds is None:
                    try:
                        ds = load_fn(dataset, data_root)
                    except data_mod.DataError as err:
                        log(f"skipping {dataset}: {err}")
                        store.mark_unavailable(dataset, str(err))
                        unavailable = True
                        break
                _run_one(ds, model_name, int(seed), epochs, todo, base, store, weights_dir,
                         train_limit, test_limit, batch_size, progress, log)
    return store


def _run_one(ds: data_mod.ImageData, model_name: str, seed: int, epochs: int,
             todo: list[DemoMode], base: dict[str, Any], store: ResultsStore, weights_dir: Path,
             train_limit: int | None, test_limit: int | None, batch_size: int, progress: bool,
             log: Callable[[str], None]) -> None:
    n_tr = ds.train_x.shape[0] if train_limit is None else min(train_limit, ds.train_x.shape[0])
    n_te = ds.test_x.shape[0] if test_limit is None else min(test_limit, ds.test_x.shape[0])
    x_tr, y_tr = model_input(model_name, ds.train_x[:n_tr]), torch.from_numpy(ds.train_y[:n_tr])
    x_te, y_te = model_input(model_name, ds.test_x[:n_te]), torch.from_numpy(ds.test_y[:n_te])
    tag = f"{ds.name}-{model_name}-seed{seed}-epoch{epochs}" + (
        "" if train_limit is None else f"-train{n_tr}")

    def template() -> nn.Module:
        return build_model(model_name, ds.n_classes)

    def train_fp32() -> tuple[nn.Module, dict[str, Any]]:
        torch.manual_seed(seed)
        model = template()
        t0 = time.perf_counter()
        loss = train_epochs(model, x_tr, y_tr, seed, epochs, LEARNING_RATE, progress,
                            f"train {tag}")
        return model, {"train_loss": loss, "train_wall_s": round(time.perf_counter() - t0, 2)}

    model, info = _cached(weights_dir / f"convert-{tag}.pt", train_fp32, template)
    for md in todo:
        desc = f"{ds.name}/{model_name} seed {seed} {md.name}"
        rec_extra: dict[str, Any] = {}
        conv = md.convert(model)
        if md.ft_epochs:
            def fine_tune(md: DemoMode = md, desc: str = desc
                          ) -> tuple[nn.Module, dict[str, Any]]:
                ft = md.convert(model)
                t0 = time.perf_counter()
                loss = train_epochs(ft, x_tr, y_tr, seed + 1, md.ft_epochs, FT_LEARNING_RATE,
                                    progress, f"fine-tune {desc}")
                return lt.revert(ft), {"ft_loss": loss,
                                       "ft_wall_s": round(time.perf_counter() - t0, 2)}
            safe = md.name.replace(":", "_").replace(",", "_").replace("=", "")
            tuned, ft_info = _cached(weights_dir / f"convert-{tag}-{safe}.pt", fine_tune,
                                     template)
            rec_extra.update(ft_info)
            conv = md.convert(tuned)
        res = accuracy(conv, x_te, y_te, batch_size, progress, desc)
        rec = {**base, "mode": md.name, "n_test": int(n_te),
               "accuracy": 100.0 * res["correct"] / n_te, **res,
               "arithmetic": md.describe(), "train_loss": info["train_loss"],
               "train_wall_s": info["train_wall_s"], **rec_extra,
               "converted": [r.name for r in getattr(conv, "lmul_report", lt.ConversionReport())
                             .converted],
               "created": now()}
        store.add(rec)
        log(f"{desc}: {rec['accuracy']:.2f}% ({res['correct']}/{n_te}) in "
            f"{res['eval_wall_s']:.1f} s")


# -------------------------------------------------------------------------------------- report

def markdown_table(doc: dict[str, Any]) -> str:
    """The results table: one row per (dataset, model, epochs, mode) over seeds."""
    from .report import _ci, _num

    lines = ["| dataset | model | epochs | train images | test images | mode | n "
             "| accuracy % (mean) | std | 95% CI | Δ vs fp32 (pp) | 95% CI of Δ | eval s |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---|---:|---|---:|"]
    walls: dict[tuple[Any, ...], list[float]] = {}
    for r in doc["runs"]:
        if "eval_wall_s" in r:
            walls.setdefault((r["dataset"], r["seq"], r["epochs"], r["mode"]), []).append(
                float(r["eval_wall_s"]))
    for row in build_rows(doc):
        delta = "—" if row.diff is None else format(row.diff.mean, "+.2f")
        w = walls.get((row.dataset, row.seq, row.epochs, row.mode))
        wall = f"{np.median(w):.1f}" if w else "—"
        train = "all" if row.train_limit is None else str(row.train_limit)
        lines.append(f"| {row.dataset} | {row.seq} | {row.epochs} | {train} | {row.n_test} "
                     f"| {row.mode} | {row.acc.n} | {row.acc.mean:.2f} | {_num(row.acc.std)} "
                     f"| {_ci(row.acc)} | {delta} | {_ci(row.diff)} | {wall} |")
    notes = ["", "std: sample standard deviation over seeds (ddof=1); CIs from the t distribution "
             "(n-1 degrees of freedom); Δ: per-seed paired difference mode − fp32 (same "
             "float32-trained weights; +ft rows after L-Mul-aware fine-tuning of them), in "
             "percentage points; eval s: median wall time of one evaluation on the test images."]
    for name, msg in sorted((doc.get("unavailable") or {}).items()):
        notes.append(f"Not run: {name}: {msg}")
    return "\n".join(lines + notes) + "\n"


def write_outputs(store: ResultsStore, command: str) -> str:
    """Write the table (``.md``, with the command) and the plot beside the JSON; return it."""
    table = markdown_table(store.doc)
    atomic_write_text(derived_path(store.path, ".md"), f"`{command}`\n\n{table}")
    if store.doc["runs"]:
        plot(store.doc, derived_path(store.path, ".png"))
    return table


# ---------------------------------------------------------------------------------- benchmark

def bench_converted_layers(repeats: int = 5, seed: int = 0) -> list[tuple[str, float, float]]:
    """Forward wall time of converted ``nn.Linear`` / ``nn.Conv2d`` vs torch float32 on the same
    inputs (best of ``4 * repeats``, the three timed paths taking turns in blocks of
    ``repeats`` calls; torch: the faster of its default threads and 1 thread):
    ``[(layer, torch s, converted s)]``."""
    torch.manual_seed(seed)
    cases = [("Linear 784->128, batch 1000", nn.Linear(784, 128), torch.rand(1000, 784)),
             ("Linear 64->128, batch 28000 (transformer FFN)", nn.Linear(64, 128),
              torch.randn(28000, 64)),
             ("Conv2d 1->6 5x5 pad 2, 256 x 28x28 (LeNet conv1)",
              nn.Conv2d(1, 6, 5, padding=2), torch.rand(256, 1, 28, 28)),
             ("Conv2d 6->16 5x5, 256 x 14x14 (LeNet conv2)", nn.Conv2d(6, 16, 5),
              torch.rand(256, 6, 14, 14)),
             ("Conv2d 16->32 3x3 pad 1, 64 x 16x16", nn.Conv2d(16, 32, 3, padding=1),
              torch.rand(64, 16, 16, 16))]

    out = []
    threads = torch.get_num_threads()

    def one_thread(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            torch.set_num_threads(1)
            try:
                return fn()
            finally:
                torch.set_num_threads(threads)
        return run

    with torch.no_grad():
        for name, layer, x in cases:
            conv = lt.convert(layer)
            # torch's OpenMP workers spin-wait; on a busy machine its 1-thread run is often
            # the faster one, so the yardstick is the faster of the two (as for the kernels).
            # The three take turns in blocks, so a change of the machine's load falls on all.
            t_torch, t_torch1, t_conv = best_times_interleaved(
                [lambda layer=layer, x=x: layer(x), one_thread(lambda layer=layer, x=x: layer(x)),
                 lambda conv=conv, x=x: conv(x)], 4 * repeats, block=repeats)
            out.append((name, min(t_torch, t_torch1), t_conv))
    return out


# ------------------------------------------------------------------------------------------ CLI

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="CNN and transformer classifiers on the L-Mul MAC array via "
                    "lmul.torch.convert (resumable; table, CSV and plot beside --out).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="modes: ARITH[@WHERE][+ft[N]], ARITH = fp32, bf16, lmul[:OPTS], exact:OPTS, "
               "seed; WHERE = all, attn, linear; e.g. lmul@attn+ft")
    parser.add_argument("--models", default="cnn,transformer",
                        help="comma-separated: cnn, transformer (default both)")
    parser.add_argument("--datasets", default="mnist,fashion", help="default mnist,fashion")
    parser.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2],
                        help="e.g. 0-4 (default 0-2)")
    parser.add_argument("--epochs", type=int_in_range(1), default=1,
                        help="float32 training epochs (default 1)")
    parser.add_argument("--modes", default=None,
                        help="comma-separated modes for every model (default per model: "
                             + "; ".join(f"{k}: {v}" for k, v in DEFAULT_MODES.items()) + ")")
    parser.add_argument("--train-limit", type=int_in_range(1), default=10_000,
                        help="train and fine-tune on the first N training images (default "
                             "10000)")
    parser.add_argument("--test-limit", type=int_in_range(1), default=2000,
                        help="evaluate on the first N test images (default 2000; the test sets "
                             "have 10000)")
    parser.add_argument("--batch-size", type=int_in_range(1), default=EVAL_BATCH,
                        help=f"evaluation batch (default {EVAL_BATCH})")
    parser.add_argument("--out", type=json_path, default=DEFAULT_OUT,
                        help="results JSON (default results/convert.json)")
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="weight cache (default <out dir>/weights)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int_in_range(1), default=2,
                        help="torch threads (default 2)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--bench", action="store_true",
                        help="only time converted Linear/Conv2d layers against torch float32")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.bench:
        print("| layer | torch float32 ms | converted (L-Mul) ms | x torch's time |")
        print("|---|---:|---:|---:|")
        for name, t_torch, t_conv in bench_converted_layers():
            print(f"| {name} | {t_torch * 1e3:.2f} | {t_conv * 1e3:.2f} "
                  f"| {t_conv / t_torch:.1f} |")
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if bad or not models:
        parser.error(f"argument --models: unknown {bad}; known: {', '.join(MODELS)}")
    try:
        datasets = [data_mod.canonical_name(d) for d in args.datasets.split(",") if d.strip()]
    except ValueError as err:
        parser.error(f"argument --datasets: {err}")
    from .modes import split_modes

    modes = {m: split_modes(args.modes or DEFAULT_MODES[m]) for m in models}
    try:
        for m in models:
            for text in modes[m]:
                parse_demo_mode(text)
    except ValueError as err:
        parser.error(f"argument --modes: {err}")
    try:
        check_writable_file(args.out)
        check_writable_dir(args.weights_dir or args.out.parent / "weights")
    except ValueError as err:
        parser.error(f"argument --out / --weights-dir: {err}")
    logging.basicConfig(level=logging.WARNING)
    print(f"seeds {args.seeds}; train images {args.train_limit}; test images "
          f"{args.test_limit or 'all'}; torch threads {args.threads}", file=sys.stderr)

    def body() -> int:
        t0 = time.perf_counter()
        store = run(models, datasets, args.seeds, args.epochs, modes, args.out,
                    weights_dir=args.weights_dir, data_root=args.data_dir,
                    train_limit=args.train_limit, test_limit=args.test_limit,
                    batch_size=args.batch_size, progress=not args.no_progress)
        command = "python -m experiments.convert_demo " + " ".join(
            sys.argv[1:] if argv is None else argv)
        print(write_outputs(store, command.strip()), end="")
        print(f"done in {time.perf_counter() - t0:.0f} s; results: {args.out} (table "
              f"{derived_path(args.out, '.md')}, plot {derived_path(args.out, '.png')})",
              file=sys.stderr)
        return 0 if store.doc["runs"] else 1

    return run_main("convert_demo", body, {ResultsError: 1},
                    interrupted=f"finished results are in {args.out}; rerun to resume")


if __name__ == "__main__":
    sys.exit(main())
