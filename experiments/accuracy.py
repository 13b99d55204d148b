"""Accuracy runner: train float32 LSTMs, evaluate them with each inference arithmetic.

    python -m experiments.accuracy --datasets mnist,fashion --seeds 0,1 --epochs 1 \\
        --modes fp32,bf16,lmul,seed --seq rows [--test-limit 500] [--out results/x.json]
    python -m experiments.accuracy --preset experiment     # make experiment
    python -m experiments.accuracy --preset reproduce      # make reproduce (long)

For every (dataset, seq, seed, epochs) the float32 weights are trained once and cached as per-epoch
checkpoints (``--weights-dir``, default ``results/weights``); each (configuration, mode) result is
merged into the results JSON as soon as it is measured, with a CSV copy beside it: under an
exclusive lock on ``<out>.lock`` the file is re-read, the new result added and the file replaced
atomically (temp file + ``os.replace``), so runs started together on one ``--out`` (one per seed,
say) keep all their results. Rerunning the same command skips everything already in the file, so
an interrupted run resumes where it stopped. A result's identity is (dataset, seq, seed, epochs,
mode, train limit, test limit, batch size); runs recorded before the batch size was stored count
as batch 1000, the default they were made with. A dataset that cannot be obtained (offline) is
reported in one line and recorded under ``unavailable``; the others still run. At the end the
summary table is printed and written next to the JSON with the plot (:mod:`experiments.report`).

Every option is checked before any work starts: numbers against their ranges, ``--out`` (must
end in ``.json``, be a regular file or not exist yet, and be writable), the weights directory,
an existing results file (every run's fields and types) and the thread variables below; a bad
one ends the run with a one-line error naming it and exit status 2 (1 for a malformed results
file).

Training recipes (``--recipes``, :mod:`experiments.recipes`): besides the float32 training
(``fp32``, the default), ``ft`` fine-tunes the float32 weights for ``--finetune-epochs`` more
epochs with the hardware's arithmetic in the forward pass (straight-through gradients) and
``scratch`` trains that way from the start; their weights are cached beside the float32 ones and
evaluated with the same modes, as rows named ``MODE [RECIPE]`` (``lmul:offset=7 [ft1]``).

Executors: ``--executor ray`` runs every training and evaluation as a Ray task
(:mod:`experiments.executor`): on a local Ray using this machine's cores, or with ``--address
HOST:6379`` on a running cluster. Evaluations get their trained weights through Ray's object
store; checkpoints go to the weights directory (on a cluster, one that every node shares), data
come from each node's data directory. Only this process writes the results file; a job that
still fails after ``--retries`` extra attempts is recorded with its error under ``failed`` in the
JSON and listed at the end (exit status 1), while every other result is kept. The default,
``--executor serial``, is the in-process loop.

Threads: torch uses ``--threads`` (default ``$LMUL_THREADS`` or 2); the numba kernels follow
``NUMBA_NUM_THREADS``. Both must be integers >= 1.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.lib.cli import int_in_range, json_path
from sim.lib.fileio import atomic_write_text, check_writable_dir, check_writable_file, locked

from . import data as data_mod
from . import executor as executor_mod
from .report import (
    LEGACY_BATCH_SIZE,
    SCHEMA,
    ResultsError,
    batch_size_of,
    derived_path,
    load_results,
    markdown_table,
    write_report,
)

if TYPE_CHECKING:
    from . import lstm, recipes
    from .modes import Arithmetic

RESULTS_DIR = data_mod.REPO_ROOT / "results"

CSV_FIELDS = ("dataset", "seq", "seed", "epochs", "mode", "accuracy", "correct", "n_test",
              "nonfinite", "train_limit", "test_limit", "batch_size", "torch_fp32_accuracy",
              "train_loss", "train_wall_s", "eval_wall_s", "created")

DEFAULT_BATCH_SIZE = LEGACY_BATCH_SIZE
#: Seeds are 0 .. MAX_SEED (numpy's classic seed range; torch and numpy accept all of it).
MAX_SEED = 2**32 - 1
#: A seed list longer than this is a typo (``0-99999``), not an experiment.
MAX_SEEDS = 10_000
MAX_THREADS = 1024

# ``seed:head=fp32`` is the notebook's own configuration (its classifier head stayed float32);
# ``seed`` puts the head through the seed multiplier as well, like every other mode.
REPRODUCE_MODES = "fp32,bf16,lmul,lmul-mitchell,seed,seed:head=fp32"


@dataclass
class Job:
    """A block of runs: every dataset x seed x sequence mode, trained for ``epochs`` epochs."""

    datasets: list[str]
    seeds: list[int]
    epochs: int
    seqs: list[str] = field(default_factory=lambda: ["rows"])


PRESETS: dict[str, dict[str, Any]] = {
    "experiment": {
        "jobs": [Job(["mnist"], [0], 1)],
        "modes": "fp32,bf16,lmul,seed",
        "out": RESULTS_DIR / "experiment.json",
    },
    # The seed notebook's table: FashionMNIST, KMNIST and "SeqMNIST" (rows, as the notebook
    # actually ran it) x 5 seeds x 3 epochs, plus its MNIST 5-epoch single run.
    "reproduce": {
        "jobs": [Job(["fashion", "kmnist", "mnist"], [0, 1, 2, 3, 4], 3),
                 Job(["mnist"], [0], 5)],
        "modes": REPRODUCE_MODES,
        "out": RESULTS_DIR / "reproduce.json",
    },
}


def run_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    """Identity of a result: a rerun with the same key is skipped.

    Every option that can change the number is in it; a run recorded without ``batch_size``
    counts as :data:`experiments.report.LEGACY_BATCH_SIZE`.
    """
    return (rec["dataset"], rec["seq"], int(rec["seed"]), int(rec["epochs"]), rec["mode"],
            rec.get("train_limit"), rec.get("test_limit"), batch_size_of(rec))


def _empty_doc() -> dict[str, Any]:
    return {"schema": SCHEMA, "runs": [], "unavailable": {}}


class ResultsStore:
    """The results JSON (and its CSV twin), shared safely between concurrent writers.

    Every change is a merge under an exclusive lock on the sidecar ``<name>.lock``
    (:func:`sim.lib.fileio.locked`): re-read the file, add what is new, replace the JSON and
    then the CSV atomically. A result whose key is already in the file is not added twice (the
    first one stays). :attr:`doc` is the merged document as of the last read or write.

    Raises (constructor):
        ResultsError: the path cannot hold results (not ``.json``, not a regular file,
            read-only, uncreatable directory) or the existing file is malformed; nothing is
            written then.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.suffix != ".json":
            raise ResultsError(f"{self.path}: results file name must end in .json")
        try:
            check_writable_file(self.path)
        except ValueError as err:
            raise ResultsError(f"{self.path}: {err}") from None
        self.doc: dict[str, Any] = _empty_doc()
        self._keys: set[tuple[Any, ...]] = set()
        self.refresh()

    def _read(self) -> dict[str, Any]:
        doc = load_results(self.path) if self.path.exists() else _empty_doc()
        doc.setdefault("unavailable", {})
        return doc

    def _set(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self._keys = {run_key(r) for r in doc["runs"]}

    def refresh(self) -> None:
        """Re-read the file (another process may have added results); no lock needed, since
        writers replace it atomically."""
        self._set(self._read())

    def has(self, key: tuple[Any, ...]) -> bool:
        """Whether a result with this key is stored (as of the last read or write)."""
        return key in self._keys

    def add(self, rec: dict[str, Any]) -> None:
        """Merge one result into the file (kept out if its key is already there)."""
        with locked(self.path):
            doc = self._read()
            if run_key(rec) not in {run_key(r) for r in doc["runs"]}:
                doc["runs"].append(rec)
            doc["unavailable"].pop(rec["dataset"], None)
            self._write(doc)

    def mark_unavailable(self, dataset: str, message: str) -> None:
        """Record that ``dataset`` could not be run (kept until a result for it is stored)."""
        with locked(self.path):
            doc = self._read()
            doc["unavailable"][dataset] = message
            self._write(doc)

    def save(self) -> None:
        """Merge :attr:`doc` into the file: runs missing there are added, ``unavailable``
        entries updated."""
        with locked(self.path):
            doc = self._read()
            keys = {run_key(r) for r in doc["runs"]}
            for r in self.doc["runs"]:
                if run_key(r) not in keys:
                    doc["runs"].append(r)
                    keys.add(run_key(r))
            doc["unavailable"].update(self.doc.get("unavailable", {}))
            self._write(doc)

    def _write(self, doc: dict[str, Any]) -> None:
        """Write JSON and CSV atomically (caller holds the lock)."""
        doc["updated"] = _now()
        atomic_write_text(self.path, json.dumps(doc, indent=1, sort_keys=False) + "\n")
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for r in doc["runs"]:
            writer.writerow({"batch_size": batch_size_of(r), **r})
        atomic_write_text(derived_path(self.path, ".csv"), buf.getvalue())
        self._set(doc)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def evaluate(wts: lstm.CellWeights, x_test: np.ndarray, y_test: np.ndarray, mode: Arithmetic,
             batch_size: int, progress: bool, desc: str) -> dict[str, Any]:
    """Accuracy of ``mode`` on the test sequences: correct count, non-finite rows, wall time."""
    from . import lstm

    t0 = time.perf_counter()
    pred = lstm.predict(wts, x_test, mode, batch_size=batch_size, progress=progress, desc=desc)
    return {"correct": int(np.sum(pred == y_test)), "nonfinite": int(np.sum(pred < 0)),
            "eval_wall_s": round(time.perf_counter() - t0, 3)}


def get_weights(ds: data_mod.ImageData, seq: str, seed: int, epochs: int,
                train_limit: int | None, weights_dir: Path | None, progress: bool
                ) -> tuple[lstm.LSTMClassifier, dict[str, Any]]:
    """Trained float32 model for the configuration (from the checkpoint cache when present)."""
    from . import lstm

    n = ds.train_x.shape[0] if train_limit is None else min(train_limit, ds.train_x.shape[0])
    tag = f"{ds.name}-{seq}-h{lstm.HIDDEN}" + ("" if train_limit is None else f"-train{n}")
    x = lstm.to_sequence(ds.train_x[:n], seq)
    return lstm.train(x, ds.train_y[:n], ds.n_classes, seed, epochs, weights_dir, tag, progress)


def get_recipe_weights(ds: data_mod.ImageData, seq: str, seed: int, epochs: int,
                       train_limit: int | None, weights_dir: Path, progress: bool,
                       recipe: recipes.Recipe, arith: Arithmetic
                       ) -> tuple[lstm.LSTMClassifier, dict[str, Any]]:
    """Weights of a training recipe (:mod:`experiments.recipes`) in arithmetic ``arith``,
    trained or from the checkpoint cache; fine-tuning starts from :func:`get_weights`' float32
    checkpoint after ``epochs`` epochs, which must exist."""
    from . import lstm
    from . import recipes as recipes_mod

    n = ds.train_x.shape[0] if train_limit is None else min(train_limit, ds.train_x.shape[0])
    tag = f"{ds.name}-{seq}-h{lstm.HIDDEN}" + ("" if train_limit is None else f"-train{n}")
    x = lstm.to_sequence(ds.train_x[:n], seq)
    return recipes_mod.train_recipe(x, ds.train_y[:n], ds.n_classes, seed, epochs, recipe, arith,
                                    weights_dir, tag, progress)


def _cell_bases(jobs: Sequence[Job], train_limit: int | None, test_limit: int | None,
                batch_size: int) -> Iterator[dict[str, Any]]:
    """The grid's (dataset, seq, seed, epochs) cells in run order, as the key fields of their
    records (without ``mode``)."""
    for job in jobs:
        for dataset in job.datasets:
            for seq in job.seqs:
                for seed in job.seeds:
                    yield {"dataset": data_mod.canonical_name(dataset), "seq": seq,
                           "seed": seed, "epochs": job.epochs, "train_limit": train_limit,
                           "test_limit": test_limit, "batch_size": batch_size}


def run(jobs: Sequence[Job], modes: Sequence[str], out: Path, *,
        weights_dir: Path | None = None, data_root: Path | None = None,
        test_limit: int | None = None, train_limit: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = True, log: Callable[[str], None] | None = None,
        load_fn: Callable[[str, Path | None], data_mod.ImageData] | None = None,
        recipes: Sequence[str] = ("fp32",), finetune_epochs: int = 1,
        executor: executor_mod.Executor | None = None, task_cpus: int = 1,
        retries: int = 1) -> ResultsStore:
    """Run every job x recipe x mode not yet in ``out``; return the results store.

    Args:
        jobs: blocks of (datasets x seeds x sequence modes, epochs).
        modes: mode strings (parsed by :func:`experiments.modes.parse_mode`; validated first).
        out: results JSON path (created or extended).
        weights_dir: checkpoint directory (default ``<out dir>/weights``).
        data_root: data directory (default :func:`experiments.data.data_dir`).
        test_limit: evaluate on the first N >= 1 test images only. train_limit: train on the
            first N >= 1.
        batch_size: inference batch (sequences per explicit-cell pass), >= 1.
        load_fn: dataset loader (tests inject a synthetic one); default :func:`data.load`.
        recipes: training recipes (:func:`experiments.recipes.parse_recipe`; ``fp32`` is the
            float32 training the plain mode rows use); rows of the others are ``MODE [RECIPE]``.
        finetune_epochs: N of a fine-tuning recipe written without a count (``ft``).
        executor: None runs everything here, in order; an executor
            (:func:`experiments.executor.make_executor`, e.g. Ray) runs it through
            :func:`run_grid`, each training and evaluation a job of ``task_cpus`` CPUs, retried
            ``retries`` times before its error is recorded.

    Raises:
        ValueError: an argument out of range (checked before anything is read or written).
        ResultsError: ``out`` cannot hold results or holds a malformed file.
    """
    from . import lstm
    from .modes import parse_mode
    from .recipes import parse_recipe

    if executor is not None:
        return run_grid(executor, jobs, modes, out, weights_dir=weights_dir,
                        data_root=data_root, test_limit=test_limit, train_limit=train_limit,
                        batch_size=batch_size, progress=progress, log=log, load_fn=load_fn,
                        recipes=recipes, finetune_epochs=finetune_epochs,
                        task_cpus=task_cpus, retries=retries)
    _check_run_args(jobs, modes, test_limit, train_limit, batch_size)
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    load_fn = load_fn or data_mod.load
    arith = [parse_mode(m) for m in modes]
    names = list(dict.fromkeys(a.name for a in arith))
    by_name = {a.name: a for a in arith}
    recipe_list = list({r.name: r for r in (parse_recipe(t, finetune_epochs)
                                            for t in recipes)}.values())
    if not recipe_list:
        raise ValueError("no recipe given")
    plain = any(r.kind == "fp32" for r in recipe_list)
    trained = [r for r in recipe_list if r.kind != "fp32"]
    store = ResultsStore(out)
    weights_dir = Path(weights_dir) if weights_dir is not None else Path(out).parent / "weights"
    loaded: dict[str, data_mod.ImageData | None] = {}
    for base in _cell_bases(jobs, train_limit, test_limit, batch_size):
        dataset, seq, seed = base["dataset"], base["seq"], base["seed"]
        store.refresh()  # skip what a concurrent run on the same file finished
        todo = [m for m in names
                if plain and not store.has(run_key({**base, "mode": m}))]
        # (recipe, training arithmetic, evaluated mode) of each missing recipe row
        rtodo = [(r, r.train_arith(by_name[m]), m) for r in trained for m in names
                 if r.train_arith(by_name[m]) is not None
                 and not store.has(run_key({**base, "mode": r.label(m)}))]
        if not todo and not rtodo:
            continue
        if dataset not in loaded:
            try:
                loaded[dataset] = load_fn(dataset, data_root)
            except data_mod.DataError as err:
                log(f"skipping {dataset}: {err}")
                store.mark_unavailable(dataset, str(err))
                loaded[dataset] = None
        ds = loaded[dataset]
        if ds is None:
            continue
        model, info = get_weights(ds, seq, seed, base["epochs"], train_limit,
                                  weights_dir, progress)
        nt = ds.test_x.shape[0] if test_limit is None else min(test_limit,
                                                             ds.test_x.shape[0])
        x_test = lstm.to_sequence(ds.test_x[:nt], seq)
        y_test = ds.test_y[:nt]
        torch_acc = 100.0 * float(np.mean(lstm.torch_predict(model, x_test) == y_test))
        wts = lstm.CellWeights.from_model(model)
        for name in todo:
            tag = f"{dataset}/{seq} seed {seed} {base['epochs']}ep {name}"
            res = evaluate(wts, x_test, y_test, by_name[name], batch_size, progress,
                           tag)
            rec = {**base, "mode": name, "n_test": int(nt),
                   "accuracy": 100.0 * res["correct"] / nt, **res,
                   "arithmetic": by_name[name].describe(),
                   "torch_fp32_accuracy": torch_acc,
                   "train_loss": info["train_loss"],
                   "train_wall_s": round(info["train_wall_s"], 2),
                   "created": _now(), "host": _host()}
            store.add(rec)
            log(f"{tag}: {rec['accuracy']:.2f}% ({res['correct']}/{nt}) "
                f"in {res['eval_wall_s']:.1f} s")
        _recipe_rows(rtodo, store, base, ds, x_test, y_test, weights_dir,
                     batch_size, progress, log)
    return store


def _recipe_rows(rtodo: list[tuple[recipes.Recipe, Arithmetic, str]], store: ResultsStore,
                 base: dict[str, Any], ds: data_mod.ImageData, x_test: np.ndarray,
                 y_test: np.ndarray, weights_dir: Path, batch_size: int, progress: bool,
                 log: Callable[[str], None]) -> None:
    """Train (or load) each recipe's weights once per training arithmetic, evaluate its rows."""
    from . import lstm
    from .modes import parse_mode

    by_train: dict[tuple[str, str], list[tuple[recipes.Recipe, Arithmetic, str]]] = {}
    for item in rtodo:
        by_train.setdefault((item[0].name, item[1].name), []).append(item)
    nt = int(y_test.shape[0])
    for items in by_train.values():
        recipe, train_arith = items[0][0], items[0][1]
        model, info = get_recipe_weights(ds, base["seq"], base["seed"], base["epochs"],
                                         base["train_limit"], weights_dir, progress, recipe,
                                         train_arith)
        torch_acc = 100.0 * float(np.mean(lstm.torch_predict(model, x_test) == y_test))
        wts = lstm.CellWeights.from_model(model)
        for _, _, name in items:
            label = recipe.label(name)
            tag = f"{base['dataset']}/{base['seq']} seed {base['seed']} {base['epochs']}ep {label}"
            mode = parse_mode(name)
            res = evaluate(wts, x_test, y_test, mode, batch_size, progress, tag)
            rec = {**base, "mode": label, "n_test": nt, "accuracy": 100.0 * res["correct"] / nt,
                   **res, "eval_mode": name, "recipe": recipe.name,
                   "finetune_epochs": recipe.epochs, "finetune_limit": recipe.limit,
                   "arithmetic": mode.describe(),
                   "train_arithmetic": train_arith.describe(), "torch_fp32_accuracy": torch_acc,
                   "train_loss": info["train_loss"],
                   "train_wall_s": round(info["train_wall_s"], 2),
                   "recipe_wall_s": round(info["recipe_wall_s"], 2),
                   "created": _now(), "host": _host()}
            store.add(rec)
            log(f"{tag}: {rec['accuracy']:.2f}% ({res['correct']}/{nt}) "
                f"in {res['eval_wall_s']:.1f} s")


# --------------------------------------------------------------------- the grid as tasks
# With an executor the grid runs as jobs (experiments.executor): one training job per
# (dataset, seq, seed, epochs), then one evaluation job per mode that receives the trained cell
# weights as its argument (on Ray through the object store). Only this process writes the results
# file; jobs only compute. Checkpoints are written by the training job into ``weights_dir``
# (a shared directory on a cluster, so that every node finds them).

_loaded: dict[tuple[str, str], data_mod.ImageData] = {}


def _load_data(name: str, data_root: Path | None,
               load_fn: Callable[[str, Path | None], data_mod.ImageData] | None
               ) -> data_mod.ImageData:
    if load_fn is not None:
        return load_fn(name, data_root)
    key = (name, str(data_root))
    if key not in _loaded:
        # One dataset per worker at a time: jobs of one dataset arrive together.
        _loaded.clear()
        _loaded[key] = data_mod.load(name, data_root)
    return _loaded[key]


def _test_slice(ds: data_mod.ImageData, seq: str, test_limit: int | None
                ) -> tuple[np.ndarray, np.ndarray]:
    from . import lstm

    nt = ds.test_x.shape[0] if test_limit is None else min(test_limit, ds.test_x.shape[0])
    return lstm.to_sequence(ds.test_x[:nt], seq), ds.test_y[:nt]


def train_job(dataset: str, seq: str, seed: int, epochs: int, train_limit: int | None,
              test_limit: int | None, weights_dir: Path, data_root: Path | None,
              load_fn: Callable[[str, Path | None], data_mod.ImageData] | None
              ) -> dict[str, Any]:
    """Train (or load from the checkpoint cache) one configuration's float32 model.

    Returns ``{"unavailable": message}`` when the dataset cannot be obtained, else the cell
    weights, training info and the torch float32 accuracy on the test slice.
    """
    from . import lstm

    try:
        ds = _load_data(dataset, data_root, load_fn)
    except data_mod.DataError as err:
        return {"unavailable": str(err)}
    model, info = get_weights(ds, seq, seed, epochs, train_limit, weights_dir, False)
    x_test, y_test = _test_slice(ds, seq, test_limit)
    torch_acc = 100.0 * float(np.mean(lstm.torch_predict(model, x_test) == y_test))
    return {"weights": lstm.CellWeights.from_model(model), "torch_acc": torch_acc,
            "train_loss": info["train_loss"], "train_wall_s": info["train_wall_s"]}


def eval_job(trained: dict[str, Any], base: dict[str, Any], mode: str, data_root: Path | None,
             load_fn: Callable[[str, Path | None], data_mod.ImageData] | None
             ) -> dict[str, Any] | None:
    """The result record of one mode on trained weights (None if the dataset was unavailable)."""
    from .modes import parse_mode

    if "unavailable" in trained:
        return None
    ds = _load_data(base["dataset"], data_root, load_fn)
    x_test, y_test = _test_slice(ds, base["seq"], base["test_limit"])
    arith = parse_mode(mode)
    nt = int(y_test.shape[0])
    res = evaluate(trained["weights"], x_test, y_test, arith, base["batch_size"], False, mode)
    return {**base, "mode": arith.name, "n_test": nt, "accuracy": 100.0 * res["correct"] / nt,
            **res, "arithmetic": arith.describe(), "torch_fp32_accuracy": trained["torch_acc"],
            "train_loss": trained["train_loss"],
            "train_wall_s": round(trained["train_wall_s"], 2), "created": _now(),
            "host": _host()}


def recipe_train_job(base: dict[str, Any], recipe: str, finetune_epochs: int, mode: str,
                     weights_dir: Path, data_root: Path | None,
                     load_fn: Callable[[str, Path | None], data_mod.ImageData] | None
                     ) -> dict[str, Any]:
    """Train (or load) a recipe's weights in the training arithmetic it gives ``mode``; like
    :func:`train_job`, plus ``recipe_wall_s`` and the training arithmetic's description."""
    from . import lstm
    from .modes import parse_mode
    from .recipes import parse_recipe

    try:
        ds = _load_data(base["dataset"], data_root, load_fn)
    except data_mod.DataError as err:
        return {"unavailable": str(err)}
    rcp = parse_recipe(recipe, finetune_epochs)
    arith = rcp.train_arith(parse_mode(mode))
    model, info = get_recipe_weights(ds, base["seq"], base["seed"], base["epochs"],
                                     base["train_limit"], weights_dir, False, rcp, arith)
    x_test, y_test = _test_slice(ds, base["seq"], base["test_limit"])
    torch_acc = 100.0 * float(np.mean(lstm.torch_predict(model, x_test) == y_test))
    return {"weights": lstm.CellWeights.from_model(model), "torch_acc": torch_acc,
            "train_loss": info["train_loss"], "train_wall_s": info["train_wall_s"],
            "recipe_wall_s": info["recipe_wall_s"], "train_arithmetic": arith.describe()}


def recipe_eval_job(trained: dict[str, Any], base: dict[str, Any], recipe: str,
                    finetune_epochs: int, mode: str, data_root: Path | None,
                    load_fn: Callable[[str, Path | None], data_mod.ImageData] | None
                    ) -> dict[str, Any] | None:
    """The result record of ``mode`` on a recipe's weights (the row ``MODE [RECIPE]``)."""
    from .recipes import parse_recipe

    rec = eval_job(trained, base, mode, data_root, load_fn)
    if rec is None:
        return None
    rcp = parse_recipe(recipe, finetune_epochs)
    rec.update({"mode": rcp.label(rec["mode"]), "eval_mode": rec["mode"], "recipe": rcp.name,
                "finetune_epochs": rcp.epochs, "finetune_limit": rcp.limit,
                "train_arithmetic": trained["train_arithmetic"],
                "recipe_wall_s": round(trained["recipe_wall_s"], 2)})
    return rec


def _failure_key(rec: dict[str, Any]) -> list[Any]:
    return list(run_key(rec))


def _set_failure(store: ResultsStore, cell: dict[str, Any], failure: dict[str, Any] | None
                 ) -> None:
    """Record (or, with ``failure`` None, clear) a cell's error under ``failed`` in the file."""
    key = _failure_key(cell)
    if failure is None and all(_failure_key(f) != key for f in store.doc.get("failed", [])):
        return
    with locked(store.path):
        doc = store._read()
        failed = [f for f in doc.get("failed", []) if _failure_key(f) != key]
        if failure is not None:
            failed.append({**cell, **failure})
        elif len(failed) == len(doc.get("failed", [])):
            return
        doc["failed"] = failed
        store._write(doc)


def run_grid(executor: executor_mod.Executor, jobs: Sequence[Job], modes: Sequence[str],
             out: Path, *, weights_dir: Path | None = None, data_root: Path | None = None,
             test_limit: int | None = None, train_limit: int | None = None,
             batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True,
             log: Callable[[str], None] | None = None,
             load_fn: Callable[[str, Path | None], data_mod.ImageData] | None = None,
             recipes: Sequence[str] = ("fp32",), finetune_epochs: int = 1,
             task_cpus: int = 1, retries: int = 1) -> ResultsStore:
    """:func:`run` with every training and evaluation as a job of ``executor``.

    Gives the same records as :func:`run` (timings aside; same torch thread count assumed, since
    the training's float32 sums may depend on it). A job that still fails after ``retries``
    extra attempts is recorded with its error under ``failed`` in the results file (cleared when
    a later run measures the cell) and every other result is kept.

    Args (beyond :func:`run`'s):
        executor: where jobs run (:func:`experiments.executor.make_executor`).
        task_cpus: CPUs (torch and numba threads) per job.
        retries: extra attempts per failing job.
        load_fn: must be picklable by reference (a module-level function) for Ray.
    """
    from tqdm import tqdm

    from .modes import parse_mode
    from .recipes import parse_recipe

    _check_run_args(jobs, modes, test_limit, train_limit, batch_size)
    log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    # Jobs get the mode strings (parsed again where they run); results are keyed by name.
    by_name: dict[str, str] = {}
    for m in modes:
        by_name.setdefault(parse_mode(m).name, m)
    names = list(by_name)
    parsed = {n: parse_mode(m) for n, m in by_name.items()}
    recipe_list = list({r.name: r for r in (parse_recipe(t, finetune_epochs)
                                            for t in recipes)}.values())
    if not recipe_list:
        raise ValueError("no recipe given")
    plain = any(r.kind == "fp32" for r in recipe_list)
    trained_recipes = [r for r in recipe_list if r.kind != "fp32"]
    store = ResultsStore(out)
    # Absolute paths: the jobs may run in another directory or on another node.
    weights_dir = (Path(weights_dir) if weights_dir is not None
                   else Path(out).parent / "weights").resolve()
    data_root = data_mod.data_dir(data_root).resolve()
    cells: dict[int, dict[str, Any]] = {}
    trains: dict[int, dict[str, Any]] = {}
    done = total = 0
    for base in _cell_bases(jobs, train_limit, test_limit, batch_size):
        dataset, seq, seed = base["dataset"], base["seq"], base["seed"]
        store.refresh()  # skip what a concurrent run on the same file finished
        todo = [m for m in names
                if plain and not store.has(run_key({**base, "mode": m}))]
        # recipe rows: (recipe, training arithmetic's name, evaluated mode name)
        rows = [(r, r.train_arith(parsed[m]), m) for r in trained_recipes
                for m in names]
        rows = [(r, a.name, m) for r, a, m in rows if a is not None]
        rtodo = [(r, a, m) for r, a, m in rows
                 if not store.has(run_key({**base, "mode": r.label(m)}))]
        total += len(names) * plain + len(rows)
        done += len(names) * plain + len(rows) - len(todo) - len(rtodo)
        if not todo and not rtodo:
            continue
        label = f"{dataset}/{seq} seed {seed} {base['epochs']}ep"
        trained = executor.submit(
            train_job, dataset, seq, seed, base["epochs"], train_limit, test_limit,
            weights_dir, data_root, load_fn, name=f"train {label}",
            cpus=task_cpus, retries=retries)
        trains[trained.id] = base
        for name in todo:
            h = executor.submit(eval_job, trained, base, by_name[name], data_root,
                                load_fn, name=f"{label} {name}", cpus=task_cpus,
                                retries=retries)
            cells[h.id] = {**base, "mode": name}
        groups: dict[tuple[str, str], list[str]] = {}
        recipe_of = {r.name: r for r, _, _ in rtodo}
        for r, a, m in rtodo:
            groups.setdefault((r.name, a), []).append(m)
        for (rname, _), group in groups.items():
            # Fine-tuning starts from the float32 checkpoint: after that job.
            rtrained = executor.submit(
                recipe_train_job, base, rname, finetune_epochs, by_name[group[0]],
                weights_dir, data_root, load_fn, deps=[trained],
                name=f"train {label} [{rname}] in {group[0]}", cpus=task_cpus,
                retries=retries)
            trains[rtrained.id] = base
            for name in group:
                h = executor.submit(
                    recipe_eval_job, rtrained, base, rname, finetune_epochs,
                    by_name[name], data_root, load_fn,
                    name=f"{label} {name} [{rname}]", cpus=task_cpus,
                    retries=retries)
                cells[h.id] = {**base, "mode": recipe_of[rname].label(name)}
    log(f"grid: {total - done} cells to run, {done} already in {out} "
        f"({executor.kind} executor)")
    failed = 0
    for res in executor.as_completed(progress=progress, desc="grid"):
        hid = res.handle.id
        if hid in trains:
            if res.ok and "unavailable" in res.value:
                dataset = trains[hid]["dataset"]
                if dataset not in store.doc["unavailable"]:
                    log(f"skipping {dataset}: {res.value['unavailable']}")
                    store.mark_unavailable(dataset, res.value["unavailable"])
            elif not res.ok:
                log(f"failed: {res.handle.name} after {res.attempts} attempts: {res.error}")
            continue
        cell = cells[hid]
        if not res.ok:
            failed += 1
            _set_failure(store, cell, {"error": res.error, "attempts": res.attempts,
                                       "created": _now()})
            continue
        rec = res.value
        if rec is None:
            continue
        store.add(rec)
        _set_failure(store, cell, None)
        log(f"{res.handle.name}: {rec['accuracy']:.2f}% ({rec['correct']}/{rec['n_test']}) "
            f"in {rec['eval_wall_s']:.1f} s")
    if failed:
        log(f"{failed} cells failed; their errors are under 'failed' in {out}; rerun to retry")
    return store


def _host() -> dict[str, Any]:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "cpus": os.cpu_count(), "threads": torch.get_num_threads()}


def _check_run_args(jobs: Sequence[Job], modes: Sequence[str], test_limit: int | None,
                    train_limit: int | None, batch_size: int) -> None:
    """The API-level twin of the CLI's range checks (one-line ``ValueError``)."""
    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    for name, lim in (("test_limit", test_limit), ("train_limit", train_limit)):
        if lim is not None and (not is_int(lim) or lim < 1):
            raise ValueError(f"{name} must be None or an integer >= 1, got {lim!r}")
    if not modes:
        raise ValueError("no mode given")
    for job in jobs:
        if not is_int(job.epochs) or job.epochs < 1:
            raise ValueError(f"epochs must be an integer >= 1, got {job.epochs!r}")
        for seed in job.seeds:
            if not is_int(seed) or not 0 <= seed <= MAX_SEED:
                raise ValueError(f"seed must be an integer 0..{MAX_SEED}, got {seed!r}")


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: comma-separated seeds and inclusive ranges (``0-4``), each 0..MAX_SEED;
    duplicates dropped, order kept.

    Raises:
        argparse.ArgumentTypeError: not a number, negative, too large, a descending range, an
            empty list or more than :data:`MAX_SEEDS` seeds.
    """
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo_text, sep, hi_text = part.partition("-")
        bounds = (lo_text, hi_text) if sep else (lo_text,)
        if not all(b.strip().isdigit() and b.strip().isascii() for b in bounds):
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a seed (a non-negative integer) or a range like 0-4")
        lo, hi = int(bounds[0]), int(bounds[-1])
        if hi > MAX_SEED:
            raise argparse.ArgumentTypeError(f"seed {hi} is out of range (0..{MAX_SEED})")
        if hi < lo:
            raise argparse.ArgumentTypeError(f"range {part!r} is empty (write it low-high)")
        if len(seeds) + (hi - lo + 1) > MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"more than {MAX_SEEDS} seeds")
        seeds.extend(range(lo, hi + 1))
    if not seeds:
        raise argparse.ArgumentTypeError("no seed given")
    return list(dict.fromkeys(seeds))


def _env_int(name: str, default: int | None) -> int | None:
    """An integer >= 1 from environment variable ``name`` (``default`` if unset or empty)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"environment variable {name}={os.environ[name]!r} must be an "
                         "integer >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line (see the module docstring); every numeric option is range-checked."""
    parser = argparse.ArgumentParser(
        description="Train float32 LSTM classifiers and measure their accuracy under each "
                    "inference arithmetic (resumable).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="datasets: " + ", ".join(data_mod.DATASETS)
               + "\nmodes: fp32, bf16, exact:OPTS, lmul[:OPTS], lmul-mitchell[:OPTS], seed; "
                 "OPTS like offset=7 or e=4,m=3 or rounding=truncate or head=fp32"
                 "\nenvironment: LMUL_THREADS (default of --threads), NUMBA_NUM_THREADS "
                 "(numba kernels), LMUL_DATA_DIR; integers >= 1 where they are thread counts",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="predefined run (experiment: make experiment; reproduce: the "
                             "notebook's table); --datasets then picks among its datasets, other "
                             "options replace its values")
    parser.add_argument("--datasets", help="comma-separated (default mnist)")
    parser.add_argument("--seeds", type=parse_seeds,
                        help=f"comma-separated or ranges, e.g. 0-4; each 0..{MAX_SEED} "
                             "(default 0)")
    parser.add_argument("--epochs", type=int_in_range(1), help="training epochs >= 1 (default 1)")
    parser.add_argument("--seq", help="rows, pixels or permuted; comma-separated (default rows)")
    parser.add_argument("--modes", help="comma-separated mode strings (default "
                                        "fp32,bf16,lmul,seed)")
    parser.add_argument("--recipes", default=None,
                        help="comma-separated training recipes (default fp32): fp32, "
                             "ft[N][@L][:MODE] (fine-tune the float32 weights N more epochs, "
                             "on the first L training images if given, with MODE's arithmetic; "
                             "without MODE each evaluated mode its own), scratch[:MODE]; rows "
                             "are named 'MODE [RECIPE]'")
    parser.add_argument("--finetune-epochs", type=int_in_range(1, 1000), default=1,
                        help="N of a recipe written ft (default 1)")
    parser.add_argument("--test-limit", type=int_in_range(1), default=None,
                        help="evaluate on the first N >= 1 test images only (quick runs; N "
                             "beyond the test set means all)")
    parser.add_argument("--train-limit", type=int_in_range(1), default=None,
                        help="train on the first N >= 1 training images only (quick runs)")
    parser.add_argument("--out", type=json_path,
                        help="results JSON, must end in .json (default results/accuracy.json)")
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="checkpoint cache (default: <out dir>/weights)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="default: $LMUL_DATA_DIR or <repo>/data")
    parser.add_argument("--batch-size", type=int_in_range(1), default=DEFAULT_BATCH_SIZE,
                        help=f"inference batch size >= 1 (default {DEFAULT_BATCH_SIZE}; part of "
                             "a result's identity)")
    parser.add_argument("--threads", type=int_in_range(1, MAX_THREADS), default=None,
                        help=f"torch threads 1..{MAX_THREADS} (default $LMUL_THREADS or 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--no-report", action="store_true",
                        help="do not print the table / write the plot at the end")
    executor_mod.add_arguments(parser)
    return parser


def _split(text: str | None) -> list[str] | None:
    """Comma-separated names, blanks dropped, duplicates removed; None if the option is unset."""
    if text is None:
        return None
    return list(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    parser = build_parser()
    args = parser.parse_args(argv)
    executor_mod.check_arguments(parser, args)
    try:
        # NUMBA_NUM_THREADS=0 would otherwise end in a traceback when the kernels first load.
        _env_int("NUMBA_NUM_THREADS", None)
        threads = args.threads if args.threads is not None else _env_int("LMUL_THREADS", 2)
    except ValueError as err:
        parser.error(str(err))
    assert threads is not None
    if threads > MAX_THREADS:
        parser.error(f"environment variable LMUL_THREADS={threads} is above {MAX_THREADS}")

    # Imported after the thread variables are checked: torch and the numba kernels come with them.
    from . import lstm
    from .modes import parse_mode, split_modes

    preset = PRESETS.get(args.preset or "", {})
    seqs = _split(args.seq)
    datasets = _split(args.datasets)
    for flag, given in (("--seq", seqs), ("--datasets", datasets)):
        if given == []:
            parser.error(f"argument {flag}: nothing given")
    try:
        for s in seqs or []:
            lstm.sequence_shape((28, 28), s)
    except ValueError as err:
        parser.error(f"argument --seq: {err}")
    try:
        datasets = ([data_mod.canonical_name(d) for d in datasets]
                    if datasets is not None else None)
    except ValueError as err:
        parser.error(f"argument --datasets: {err}")
    modes = split_modes(args.modes if args.modes is not None
                        else preset.get("modes", "fp32,bf16,lmul,seed"))
    if not modes:
        parser.error("argument --modes: no mode given")
    try:
        for m in modes:
            parse_mode(m)
    except ValueError as err:
        parser.error(f"argument --modes: {err}")
    from .recipes import parse_recipe, split_recipes

    recipes = split_recipes(args.recipes if args.recipes is not None
                            else preset.get("recipes", "fp32"))
    if not recipes:
        parser.error("argument --recipes: no recipe given")
    try:
        for r in recipes:
            parse_recipe(r, args.finetune_epochs)
    except ValueError as err:
        parser.error(f"argument --recipes: {err}")
    jobs = []
    for j in preset.get("jobs", [Job(datasets or ["mnist"], [0], 1)]):
        # With a preset, --datasets selects among its datasets; the other options replace.
        picked = [d for d in j.datasets if datasets is None or d in datasets]
        if picked:
            jobs.append(Job(picked, args.seeds if args.seeds is not None else list(j.seeds),
                            args.epochs or j.epochs, seqs or list(j.seqs)))
    if not jobs:
        parser.error(f"--datasets {args.datasets} selects nothing from preset {args.preset}")
    out = Path(args.out or preset.get("out", RESULTS_DIR / "accuracy.json"))
    # Checked now, not after an hour of training.
    try:
        check_writable_file(out)
    except ValueError as err:
        parser.error(f"argument --out: {out} {err}")
    weights_dir = args.weights_dir if args.weights_dir is not None else out.parent / "weights"
    try:
        check_writable_dir(weights_dir)
    except ValueError as err:
        parser.error(f"argument --weights-dir: {err}")

    import torch

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    try:
        with executor_mod.from_arguments(args) as executor:
            store = run(jobs, modes, out, weights_dir=weights_dir, data_root=args.data_dir,
                        test_limit=args.test_limit, train_limit=args.train_limit,
                        batch_size=args.batch_size, progress=not args.no_progress,
                        recipes=recipes, finetune_epochs=args.finetune_epochs,
                        executor=executor, task_cpus=args.task_cpus, retries=args.retries)
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished results are in {out}; rerun the same command to resume",
              file=sys.stderr)
        return 130
    except ResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except executor_mod.ExecutorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - t0:.0f} s; results: {out}", file=sys.stderr)
    if not args.no_report:
        if store.doc["runs"]:
            print(write_report(out), end="")
            print(f"table: {derived_path(out, '.md')}  plot: {derived_path(out, '.png')}",
                  file=sys.stderr)
        else:
            print(markdown_table(store.doc), end="")
    failed = store.doc.get("failed") or []
    for f in failed:
        print(f"failed: {f['dataset']}/{f['seq']} seed {f['seed']} {f['epochs']}ep {f['mode']} "
              f"after {f['attempts']} attempt(s): {f['error']}", file=sys.stderr)
    return 0 if store.doc["runs"] and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
