"""Trained LSTM weights of a configuration, from the committed reference checkpoints, the
checkpoint cache, or trained now.

A configuration is (dataset, sequence mode, seed, epochs, training subset); its float32
checkpoints are ``<weights_dir>/<tag>-seed<S>-epoch<E>.pt`` with the tag
``<dataset>-<seq>-h<hidden>[-train<N>]`` (:func:`experiments.lstm.train`), and a training
recipe's weights are cached beside them under :func:`experiments.recipes.checkpoint_tag`.

Reference checkpoints: float32 training on the CPU is not bit-reproducible across machines
(torch picks its kernels by instruction set and thread count), so the weights that the committed
snapshots evaluate are committed under ``experiments/checkpoints/`` as
``<tag>-seed<S>-epoch<E>.npz`` (little-endian float32 arrays named like the model's
``state_dict`` plus a JSON ``meta`` record, no pickles), one file per configuration (a
configuration that several studies share is stored once), with their SHA-256 in
``experiments/checkpoints/SHA256SUMS`` (``sha256sum -c`` format, read into
:data:`REFERENCE_SHA256`). :func:`get_weights` and :func:`get_recipe_weights` with
``reference=True`` use one when it exists for exactly that configuration (a recipe's: its tag
and total epochs); evaluating it is then bit-exact on every machine in every mode of
:mod:`experiments.modes` (``fp32`` included: its matrix products are :func:`lmul.matmul_fp32`,
in a fixed order). A file whose hash differs is refused (:class:`CheckpointHashError`, one
line); ``--retrain`` on the studies' command lines trains (or uses the cache) instead.

    python -m experiments.weights CACHE.pt OUT.npz     # convert one cache file
    python -m experiments.weights --pack results/weights KEY [KEY ...]
        # convert <dir>/KEY.pt into experiments/checkpoints/KEY.npz and record its SHA-256
    python -m experiments.weights --pack results/weights --from-results results/tune_quick.json
        # every weight those results evaluated that is not committed yet
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
#: Their hashes: one ``<sha256 hex>  <key>.npz`` line per file (``sha256sum`` format).
MANIFEST = "SHA256SUMS"


def read_manifest(directory: Path = REFERENCE_DIR) -> dict[str, str]:
    """``{key: sha256 hex}`` from ``directory``'s :data:`MANIFEST` ({} if it has none).

    Raises:
        CheckpointHashError: a line that is not ``<64 hex digits>  <key>.npz``.
    """
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
        if not line.strip():
            continue
        sha, _, name = line.partition("  ")
        if (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)
                or not name.endswith(".npz") or "/" in name):
            raise CheckpointHashError(f"{path}:{n}: not '<sha256>  <key>.npz': {line!r}")
        out[name.removesuffix(".npz")] = sha
    return out


def write_manifest(hashes: dict[str, str], directory: Path = REFERENCE_DIR) -> None:
    """Write :data:`MANIFEST` (sorted by key, atomically)."""
    from sim.lib.fileio import atomic_write_text

    atomic_write_text(Path(directory) / MANIFEST,
                      "".join(f"{h}  {k}.npz\n" for k, h in sorted(hashes.items())))


_REFERENCE_DTYPE = "<f4"  # explicit little-endian float32: the same bytes on every machine


class CheckpointHashError(ValueError):
    """A reference checkpoint is unreadable or its SHA-256 is not the recorded one."""


#: SHA-256 (hex) of each committed reference checkpoint, by ``<tag>-seed<S>-epoch<E>``.
REFERENCE_SHA256: dict[str, str] = read_manifest()


def reference_key(tag: str, seed: int, epochs: int) -> str:
    """Name of a configuration's reference checkpoint (without ``.npz``)."""
    return f"{tag}-seed{seed}-epoch{epochs}"


def save_reference(model: lstm.LSTMClassifier, info: dict[str, Any], path: Path) -> str:
    """Write ``model``'s float32 weights and training ``info`` (``train_loss``,
    ``train_wall_s``, ``epochs``, plus any JSON-able extras) as a reference checkpoint
    (compressed ``.npz``, written atomically); return its SHA-256 (hex)."""
    import numpy as np

    from sim.lib.fileio import atomic_write

    arrays = {k: v.detach().cpu().numpy().astype(_REFERENCE_DTYPE)
              for k, v in model.state_dict().items()}
    if "meta" in arrays:
        raise ValueError("a model parameter is named 'meta'")
    meta = json.dumps(info, sort_keys=True).encode()
    arrays["meta"] = np.frombuffer(meta, dtype=np.uint8)
    atomic_write(Path(path), lambda f: np.savez_compressed(f, **arrays))
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


def _load_reference_for(key: str, input_size: int, n_classes: int, reference_dir: Path,
                        epochs: int) -> tuple[lstm.LSTMClassifier, dict[str, Any]]:
    """Load reference checkpoint ``key`` (hash checked) and the info dict a training run would
    have returned, plus ``reference`` (the file's name)."""
    path = Path(reference_dir) / f"{key}.npz"
    if not path.is_file():
        raise CheckpointHashError(f"reference checkpoint {path} is missing (listed in "
                                  f"{MANIFEST}; restore it from git, or use --retrain)")
    sha = REFERENCE_SHA256[key]
    model, meta = load_reference(path, sha, input_size, n_classes)
    print(f"using the committed reference checkpoint {path.name} (sha256 {sha[:12]}...; "
          "--retrain trains instead)", file=sys.stderr)
    info = {"epochs": epochs, "train_loss": float(meta["train_loss"]),
            "train_wall_s": float(meta["train_wall_s"]), "resumed_from": epochs,
            "reference": path.name, "reference_sha256": sha}
    if "recipe_wall_s" in meta:
        info["recipe_wall_s"] = float(meta["recipe_wall_s"])
    return model, info


def get_weights(ds: data_mod.ImageData, seq: str, seed: int, epochs: int,
                train_limit: int | None, weights_dir: Path | None, progress: bool,
                reference: bool = False, reference_dir: Path = REFERENCE_DIR
                ) -> tuple[lstm.LSTMClassifier, dict[str, Any]]:
    """Trained float32 model for the configuration (from the checkpoint cache when present)
    and its training info (:func:`experiments.lstm.train`); ``weights_dir`` None: no cache.

    ``reference``: use the committed reference checkpoint of exactly this configuration when
    :data:`REFERENCE_SHA256` lists one, after checking its hash (:class:`CheckpointHashError`
    if it differs or the file is missing); its info has ``reference`` (the file's name).
    """
    from . import lstm

    x, y, tag = _training_set(ds, seq, train_limit)
    key = reference_key(tag, seed, epochs)
    if reference and key in REFERENCE_SHA256:
        return _load_reference_for(key, x.shape[2], ds.n_classes, reference_dir, epochs)
    return lstm.train(x, y, ds.n_classes, seed, epochs, weights_dir, tag, progress)


def recipe_reference_key(tag: str, seed: int, epochs: int, recipe: recipes.Recipe,
                         arith: Arithmetic) -> str:
    """Name of a training recipe's reference checkpoint: its cache tag
    (:func:`experiments.recipes.checkpoint_tag`) after its total epochs (float32 base plus
    fine-tuning, or ``epochs`` from scratch)."""
    from .recipes import checkpoint_tag

    total = epochs + recipe.epochs if recipe.kind == "ft" else epochs
    return reference_key(checkpoint_tag(tag, recipe, arith, epochs), seed, total)


def get_recipe_weights(ds: data_mod.ImageData, seq: str, seed: int, epochs: int,
                       train_limit: int | None, weights_dir: Path, progress: bool,
                       recipe: recipes.Recipe, arith: Arithmetic, reference: bool = False,
                       reference_dir: Path = REFERENCE_DIR
                       ) -> tuple[lstm.LSTMClassifier, dict[str, Any]]:
    """Weights of a training recipe (:mod:`experiments.recipes`) in arithmetic ``arith``,
    trained or from the checkpoint cache; fine-tuning starts from :func:`get_weights`' float32
    checkpoint after ``epochs`` epochs in the cache (a reference checkpoint holds no optimizer
    state to continue from).

    ``reference``: use the committed reference checkpoint of this recipe
    (:func:`recipe_reference_key`) when one is listed, as :func:`get_weights` does; its info
    has ``recipe_wall_s`` from the file (the training time of the recipe's own epochs).
    Without one, a fine-tuning recipe whose float32 base is not in the cache (its rows used a
    reference) trains that base into the cache first: on this machine's training, so such
    rows are the machine's until their recipe's checkpoint is committed too."""
    from . import lstm
    from . import recipes as recipes_mod

    x, y, tag = _training_set(ds, seq, train_limit)
    key = recipe_reference_key(tag, seed, epochs, recipe, arith)
    if reference and key in REFERENCE_SHA256:
        total = epochs + recipe.epochs if recipe.kind == "ft" else epochs
        model, info = _load_reference_for(key, x.shape[2], ds.n_classes, reference_dir, total)
        info.setdefault("recipe_wall_s", info["train_wall_s"])
        return model, info
    if recipe.kind == "ft" and not lstm.checkpoint_path(weights_dir, tag, seed, epochs).is_file():
        # The float32 rows may have come from a reference checkpoint, which holds no optimizer
        # state to continue from: train the base run into the cache first.
        lstm.train(x, y, ds.n_classes, seed, epochs, weights_dir, tag, progress)
    return recipes_mod.train_recipe(x, y, ds.n_classes, seed, epochs, recipe, arith,
                                    weights_dir, tag, progress)


def _cache_info(state: dict[str, Any], source: str, weights_dir: Path | None) -> dict[str, Any]:
    """The ``meta`` record of a reference made from checkpoint-cache ``state``: train loss,
    wall time, epochs, source file, torch version, and for a fine-tuning run
    (``...-ft-from<E>...``) ``recipe_wall_s`` (its own epochs, from the base file in
    ``weights_dir`` when that is there)."""
    import re

    import torch

    info: dict[str, Any] = {"train_loss": float(state["train_loss"]),
                            "train_wall_s": float(state["train_wall_s"]),
                            "epochs": int(state["epoch"]), "source": source,
                            "torch": torch.__version__}
    m = re.fullmatch(r"(.+?)-ft-from(\d+)(?:-n\d+)?-.+-seed(\d+)-epoch\d+\.pt", source)
    if m and weights_dir is not None:
        base = Path(weights_dir) / f"{m[1]}-seed{m[3]}-epoch{m[2]}.pt"
        if base.is_file():
            b = torch.load(base, map_location="cpu", weights_only=True)
            info["recipe_wall_s"] = info["train_wall_s"] - float(b["train_wall_s"])
    elif "-scratch-" in source:
        info["recipe_wall_s"] = info["train_wall_s"]
    return info


def result_keys(runs: list[dict[str, Any]]) -> list[str]:
    """The checkpoint keys (``<tag>-seed<S>-epoch<E>``) whose weights the result records
    ``runs`` evaluated: each record's float32 configuration, and its recipe's when it has one
    (``recipe``, ``eval_mode``, ``finetune_epochs``, ``finetune_limit``); in first-use order,
    without repeats."""
    from . import lstm
    from .modes import parse_mode
    from .recipes import parse_recipe

    keys: dict[str, None] = {}
    for r in runs:
        limit = r.get("train_limit")
        tag = f"{r['dataset']}-{r['seq']}-h{lstm.HIDDEN}" + ("" if limit is None
                                                             else f"-train{limit}")
        seed, epochs = int(r["seed"]), int(r["epochs"])
        if "recipe" not in r:
            keys[reference_key(tag, seed, epochs)] = None
            continue
        rcp = parse_recipe(r["recipe"], int(r.get("finetune_epochs") or 1))
        arith = rcp.train_arith(parse_mode(r["eval_mode"]))
        if arith is None:
            keys[reference_key(tag, seed, epochs)] = None
        else:
            keys[recipe_reference_key(tag, seed, epochs, rcp, arith)] = None
    return list(keys)


def _convert(checkpoint: Path, out: Path) -> str:
    """Convert a checkpoint-cache file into reference checkpoint ``out``; its SHA-256.

    Raises:
        ValueError: ``checkpoint`` is not a readable cache file (one line).
    """
    import torch

    from . import lstm

    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        weights = state["model"]
        model = lstm.LSTMClassifier(weights["lstm.weight_ih_l0"].shape[1],
                                    weights["fc.weight"].shape[0], weights["fc.weight"].shape[1])
        model.load_state_dict(weights)
    except Exception as err:
        raise ValueError(f"{checkpoint} is not a readable checkpoint: {err}") from None
    return save_reference(model, _cache_info(state, Path(checkpoint).name,
                                             Path(checkpoint).parent), out)


def main(argv: list[str] | None = None) -> int:
    """``python -m experiments.weights CACHE.pt OUT.npz``: convert a checkpoint-cache file
    (:func:`experiments.lstm.train`) into a reference checkpoint and print its SHA-256;
    ``--pack DIR KEY...``: convert ``DIR/KEY.pt`` into ``experiments/checkpoints/KEY.npz`` for
    each key and record the hashes in its :data:`MANIFEST`; ``--pack DIR --from-results
    RESULTS.json``: the keys of every weight those results evaluated (:func:`result_keys`),
    skipping those already committed."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m experiments.weights", description=main.__doc__)
    parser.add_argument("--pack", type=Path, metavar="DIR",
                        help="checkpoint cache to pack from (then the arguments are keys)")
    parser.add_argument("--reference-dir", type=Path, default=REFERENCE_DIR,
                        help="where --pack writes (default experiments/checkpoints)")
    parser.add_argument("--from-results", type=Path, metavar="RESULTS_JSON",
                        help="with --pack: pack the weights these accuracy results evaluated")
    parser.add_argument("args", nargs="*", help="CACHE.pt OUT.npz, or keys with --pack")
    args = parser.parse_args(argv)
    if args.from_results is not None and args.pack is None:
        parser.error("--from-results needs --pack DIR")
    try:
        if args.from_results is not None:
            from .report import load_results

            known = read_manifest(args.reference_dir)
            args.args += [k for k in result_keys(load_results(args.from_results)["runs"])
                          if k not in known and k not in args.args]
            if not args.args:
                print(f"every weight of {args.from_results} is committed already",
                      file=sys.stderr)
                return 0
        if args.pack is None:
            if len(args.args) != 2:
                parser.error("give CACHE.pt OUT.npz (or --pack DIR KEY ...)")
            print(_convert(Path(args.args[0]), Path(args.args[1])))
            return 0
        if not args.args:
            parser.error("--pack needs keys (or --from-results)")
        hashes = read_manifest(args.reference_dir)
        for key in args.args:
            name = key.removesuffix(".pt").removesuffix(".npz")
            sha = _convert(args.pack / f"{name}.pt", args.reference_dir / f"{name}.npz")
            hashes[name] = sha
            print(f"{sha}  {name}.npz")
        write_manifest(hashes, args.reference_dir)
    except (ValueError, OSError) as err:
        parser.error(str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
