"""Trained LSTM weights of a configuration, from the checkpoint cache or trained now.

A configuration is (dataset, sequence mode, seed, epochs, training subset); its float32
checkpoints are ``<weights_dir>/<tag>-seed<S>-epoch<E>.pt`` with the tag
``<dataset>-<seq>-h<hidden>[-train<N>]`` (:func:`experiments.lstm.train`), and a training
recipe's weights are cached beside them (:func:`experiments.recipes.train_recipe`).

Reference checkpoints: float32 training on the CPU is not bit-reproducible across machines
(torch picks its kernels by instruction set), so the main experiment's weights are committed
under ``experiments/checkpoints/`` as ``<tag>-seed<S>-epoch<E>.npz`` (little-endian float32
arrays named like the model's ``state_dict`` plus a JSON ``meta`` record, no pickles) with
their SHA-256 in :data:`REFERENCE_SHA256`. :func:`get_weights` with ``reference=True`` uses one
when it exists for exactly that configuration (full training set); evaluating it is then
bit-exact on every machine in every mode of :mod:`experiments.modes` (``fp32`` included: its
matrix products are :func:`lmul.matmul_fp32`, in a fixed order).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from . import data as data_mod
    from . import lstm, recipes
    from .modes import Arithmetic


#: Directory of the committed reference checkpoints.
REFERENCE_DIR = Path(__file__).resolve().parent / "checkpoints"

#: SHA-256 (hex) of each committed reference checkpoint, by ``<tag>-seed<S>-epoch<E>``.
REFERENCE_SHA256: dict[str, str] = {
    "mnist-rows-h128-seed0-epoch1":
        "600f8ee1716dd7a47ad252b6f931cb88ac7cf4f7993ca3f18811f8a5c83871ac",
}

_REFERENCE_DTYPE = "<f4"  # explicit little-endian float32: the same bytes on every machine


class CheckpointHashError(ValueError):
    """A reference checkpoint is unreadable or its SHA-256 is not the recorded one."""


def reference_key(tag: str, seed: int, epochs: int) -> str:
    """Name of a configuration's reference checkpoint (without ``.npz``)."""
    return f"{tag}-seed{seed}-epoch{epochs}"


def save_reference(model: lstm.LSTMClassifier, info: dict[str, Any], path: Path) -> str:
    """Write ``model``'s float32 weights and training ``info`` (``train_loss``,
    ``train_wall_s``, ``epochs``, plus any JSON-able extras) as a reference checkpoint
    (``.npz``, written atomically); return its SHA-256 (hex)."""
    import numpy as np

    from sim.lib.fileio import atomic_write

    arrays = {k: v.detach().cpu().numpy().astype(_REFERENCE_DTYPE)
              for k, v in model.state_dict().items()}
    if "meta" in arrays:
        raise ValueError("a model parameter is named 'meta'")
    meta = json.dumps(info, sort_keys=True).encode()
    arrays["meta"] = np.frombuffer(meta, dtype=np.uint8)
    atomic_write(Path(path), lambda f: np.savez(f, **arrays))
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_reference(path: Path, sha256: str, input_size: int, n_classes: int
                   ) -> tuple[lstm.LSTMClassifier, dict[str, Any]]:
    """Load a reference checkpoint after checking its SHA-256 against ``sha256``.

    Returns:
        (float32 model in eval mode, the ``info`` dict it was saved with)
    Raises:
        CheckpointHashError: the file's hash differs, or it is not a well-formed checkpoint of an
            ``input_size`` -> ``n_classes`` classifier.
    """
    import io

    import numpy as np
    import torch

    from . import lstm

    raw = Path(path).read_bytes()
    got = hashlib.sha256(raw).hexdigest()
    if got != sha256:
        raise CheckpointHashError(f"reference checkpoint {path} has SHA-256 {got}, expected "
                             f"{sha256} (corrupted? restore it from git, or use --retrain)")
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            info = json.loads(bytes(z["meta"]).decode())
            state = {}
            for k in z.files:
                if k == "meta":
                    continue
                if z[k].dtype != np.dtype(_REFERENCE_DTYPE):
                    raise ValueError(f"array {k} is {z[k].dtype}, not little-endian float32")
                state[k] = torch.from_numpy(z[k].astype(np.float32))  # native byte order
        model = lstm.LSTMClassifier(input_size, n_classes, state["fc.weight"].shape[1])
        model.load_state_dict(state)
    except Exception as err:  # any malformed content: one line, not a traceback
        raise CheckpointHashError(f"reference checkpoint {path} is malformed: {err}") from err
    model.eval()
    return model, info


def _training_set(ds: data_mod.ImageData, seq: str, train_limit: int | None
                  ) -> tuple[np.ndarray, np.ndarray, str]:
    """The training sequences and labels (the first ``train_limit`` images, all if None) and
    the configuration's checkpoint tag."""
    from . import lstm

    n = ds.train_x.shape[0] if train_limit is None else min(train_limit, ds.train_x.shape[0])
    tag = f"{ds.name}-{seq}-h{lstm.HIDDEN}" + ("" if train_limit is None else f"-train{n}")
    return lstm.to_sequence(ds.train_x[:n], seq), ds.train_y[:n], tag


def get_weights(ds: data_mod.ImageData, seq: str, seed: int, epochs: int,
                train_limit: int | None, weights_dir: Path | None, progress: bool,
                reference: bool = False, reference_dir: Path = REFERENCE_DIR
                ) -> tuple[lstm.LSTMClassifier, dict[str, Any]]:
    """Trained float32 model for the configuration (from the checkpoint cache when present)
    and its training info (:func:`experiments.lstm.train`); ``weights_dir`` None: no cache.

    ``reference``: use the committed reference checkpoint of exactly this configuration (full
    training set) when :data:`REFERENCE_SHA256` lists one, after checking its hash
    (:class:`CheckpointHashError` if it differs); its info has ``reference`` (the file's name).
    """
    from . import lstm

    x, y, tag = _training_set(ds, seq, train_limit)
    key = reference_key(tag, seed, epochs)
    if reference and train_limit is None and key in REFERENCE_SHA256:
        path = Path(reference_dir) / f"{key}.npz"
        model, meta = load_reference(path, REFERENCE_SHA256[key], x.shape[2], ds.n_classes)
        print(f"using the committed reference checkpoint {path.name} (sha256 "
              f"{REFERENCE_SHA256[key][:12]}...; --retrain trains instead)", file=sys.stderr)
        return model, {"epochs": epochs, "train_loss": float(meta["train_loss"]),
                       "train_wall_s": float(meta["train_wall_s"]), "resumed_from": epochs,
                       "reference": path.name}
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


def main(argv: list[str] | None = None) -> int:
    """``python -m experiments.weights CACHE.pt OUT.npz``: convert a checkpoint-cache file
    (:func:`experiments.lstm.train`) into a reference checkpoint and print its SHA-256 (to
    record in :data:`REFERENCE_SHA256`)."""
    import argparse

    import torch

    from . import lstm

    parser = argparse.ArgumentParser(prog="python -m experiments.weights", description=main.__doc__)
    parser.add_argument("checkpoint", type=Path, help="a <tag>-seed<S>-epoch<E>.pt cache file")
    parser.add_argument("out", type=Path, help="the .npz to write")
    args = parser.parse_args(argv)
    try:
        state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        weights = state["model"]
        model = lstm.LSTMClassifier(weights["lstm.weight_ih_l0"].shape[1],
                                    weights["fc.weight"].shape[0], weights["fc.weight"].shape[1])
        model.load_state_dict(weights)
    except Exception as err:
        parser.error(f"{args.checkpoint} is not a readable checkpoint: {err}")
    info = {"train_loss": float(state["train_loss"]), "train_wall_s": float(state["train_wall_s"]),
            "epochs": int(state["epoch"]), "source": args.checkpoint.name,
            "torch": torch.__version__}
    print(save_reference(model, info, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
