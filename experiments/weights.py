"""Trained LSTM weights of a configuration, from the checkpoint cache or trained now.

A configuration is (dataset, sequence mode, seed, epochs, training subset); its float32
checkpoints are ``<weights_dir>/<tag>-seed<S>-epoch<E>.pt`` with the tag
``<dataset>-<seq>-h<hidden>[-train<N>]`` (:func:`experiments.lstm.train`), and a training
recipe's weights are cached beside them (:func:`experiments.recipes.train_recipe`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from . import data as data_mod
    from . import lstm, recipes
    from .modes import Arithmetic


def _training_set(ds: data_mod.ImageData, seq: str, train_limit: int | None
                  ) -> tuple[np.ndarray, np.ndarray, str]:
    """The training sequences and labels (the first ``train_limit`` images, all if None) and
    the configuration's checkpoint tag."""
    from . import lstm

    n = ds.train_x.shape[0] if train_limit is None else min(train_limit, ds.train_x.shape[0])
    tag = f"{ds.name}-{seq}-h{lstm.HIDDEN}" + ("" if train_limit is None else f"-train{n}")
    return lstm.to_sequence(ds.train_x[:n], seq), ds.train_y[:n], tag


def get_weights(ds: data_mod.ImageData, seq: str, seed: int, epochs: int,
                train_limit: int | None, weights_dir: Path | None, progress: bool
                ) -> tuple[lstm.LSTMClassifier, dict[str, Any]]:
    """Trained float32 model for the configuration (from the checkpoint cache when present)
    and its training info (:func:`experiments.lstm.train`); ``weights_dir`` None: no cache."""
    from . import lstm

    x, y, tag = _training_set(ds, seq, train_limit)
    return lstm.train(x, y, ds.n_classes, seed, epochs, weights_dir, tag, progress)


def get_recipe_weights(ds: data_mod.ImageData, seq: str, seed: int, epochs: int,
                       train_limit: int | None, weights_dir: Path, progress: bool,
                       recipe: recipes.Recipe, arith: Arithmetic
                       ) -> tuple[lstm.LSTMClassifier, dict[str, Any]]:
    """Weights of a training recipe (:mod:`experiments.recipes`) in arithmetic ``arith``,
    trained or from the checkpoint cache; fine-tuning starts from :func:`get_weights`' float32
    checkpoint after ``epochs`` epochs, which must exist."""
    from . import recipes as recipes_mod

    x, y, tag = _training_set(ds, seq, train_limit)
    return recipes_mod.train_recipe(x, y, ds.n_classes, seed, epochs, recipe, arith,
                                    weights_dir, tag, progress)
