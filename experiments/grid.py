"""The accuracy grid: train LSTMs per configuration, evaluate each in every arithmetic, as jobs.

A grid is blocks of (datasets x sequence modes x seeds, epochs) (:class:`Job`), each cell
evaluated in every mode (:mod:`experiments.modes`) with weights from every training recipe
(:mod:`experiments.recipes`). :func:`run` is its one orchestrator: per cell it finds the rows
missing from the results file (:class:`experiments.store.ResultsStore`), submits one training
job, one evaluation job per missing mode (which receives the trained cell weights), and per
recipe one training job (after the float32 one, since fine-tuning starts from its checkpoint)
with that recipe's evaluation jobs, to an executor (:mod:`experiments.executor`), then records
each outcome as it arrives. Only this process writes the results file; jobs only compute
(checkpoints aside, which training jobs write into the weights directory: on a cluster a
shared one, so that every node finds them).

An executor that runs jobs concurrently (Ray) gets the whole grid at once; a serial one gets one
cell at a time, planned after re-reading the results file, so that cells a concurrent run on the
same file has finished meanwhile are skipped.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import data as data_mod
from . import executor as executor_mod
from .report import LEGACY_BATCH_SIZE
from .store import ResultsStore, now, run_key
from .weights import get_recipe_weights, get_weights

if TYPE_CHECKING:
    from . import lstm
    from .modes import Arithmetic
    from .recipes import Recipe

DEFAULT_BATCH_SIZE = LEGACY_BATCH_SIZE
#: Seeds are 0 .. MAX_SEED (numpy's classic seed range; torch and numpy accept all of it).
MAX_SEED = 2**32 - 1

#: A dataset loader: (name, data root) -> data (:func:`experiments.data.load` by default).
Loader = Callable[[str, Path | None], data_mod.ImageData]


@dataclass
class Job:
    """A block of runs: every dataset x seed x sequence mode, trained for ``epochs`` epochs."""

    datasets: list[str]
    seeds: list[int]
    epochs: int
    seqs: list[str] = field(default_factory=lambda: ["rows"])


def evaluate(wts: lstm.CellWeights, x_test: np.ndarray, y_test: np.ndarray, mode: Arithmetic,
             batch_size: int, progress: bool, desc: str) -> dict[str, Any]:
    """Accuracy of ``mode`` on the test sequences: correct count, non-finite rows, wall time."""
    from . import lstm

    # Weights handed over by Ray (another job's result) are read-only views of its object store;
    # numba types read-only arrays apart, so each kernel would be compiled a second time for
    # them. Writable copies (np.require copies only those) keep the in-process signatures.
    wts = lstm.CellWeights(*(np.require(a, requirements="W")
                             for a in (wts.w, wts.b, wts.fc_w, wts.fc_b)))
    t0 = time.perf_counter()
    pred = lstm.predict(wts, x_test, mode, batch_size=batch_size, progress=progress, desc=desc)
    return {"correct": int(np.sum(pred == y_test)), "nonfinite": int(np.sum(pred < 0)),
            "eval_wall_s": round(time.perf_counter() - t0, 3),
            "slice_check": slice_check(pred, y_test, lstm.forward_logits(
                wts, x_test[:SLICE_CHECK_IMAGES], mode))}


#: Test images that a record's ``slice_check`` covers (the first ones of its test slice).
SLICE_CHECK_IMAGES = 500


def slice_check(pred: np.ndarray, y_test: np.ndarray, logits: np.ndarray,
                n: int = SLICE_CHECK_IMAGES) -> dict[str, Any]:
    """What a cheap re-evaluation of a record can be compared with: over the first ``n`` test
    images, the correct count, the SHA-256 of the predicted classes (little-endian int64, -1
    for a non-finite output) and of the float32 logits (little-endian, [n, classes] row-major;
    ``logits`` holds at least those rows). A logit depends neither on its batch nor on the
    machine (:mod:`experiments.lstm`), so evaluating just these images gives the same bits."""
    import hashlib

    k = min(n, int(pred.shape[0]))
    lg = np.ascontiguousarray(logits[:k], dtype="<f4")
    return {"n": k, "correct": int(np.sum(pred[:k] == y_test[:k])),
            "pred_sha256": hashlib.sha256(np.asarray(pred[:k], dtype="<i8").tobytes()).hexdigest(),
            "logits_sha256": hashlib.sha256(lg.tobytes()).hexdigest()}


def _host() -> dict[str, Any]:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "cpus": os.cpu_count(), "threads": torch.get_num_threads()}


# ------------------------------------------------------------------------------------ the jobs
# Module-level functions: Ray pickles them by reference. Each gets the cell's key fields
# (``base``: dataset, seq, seed, epochs, train_limit, test_limit, batch_size).

_loaded: dict[tuple[str, str], data_mod.ImageData] = {}


def _load_data(name: str, data_root: Path | None, load_fn: Loader | None) -> data_mod.ImageData:
    if load_fn is not None:
        return load_fn(name, data_root)
    key = (name, str(data_root))
    if key not in _loaded:
        # One dataset per process at a time: the jobs of one dataset arrive together.
        _loaded.clear()
        _loaded[key] = data_mod.load(name, data_root)
    return _loaded[key]


def _test_slice(ds: data_mod.ImageData, seq: str, test_limit: int | None
                ) -> tuple[np.ndarray, np.ndarray]:
    from . import lstm

    nt = ds.test_x.shape[0] if test_limit is None else min(test_limit, ds.test_x.shape[0])
    return lstm.to_sequence(ds.test_x[:nt], seq), ds.test_y[:nt]


def _trained(ds: data_mod.ImageData, base: dict[str, Any], model: lstm.LSTMClassifier,
             info: dict[str, Any]) -> dict[str, Any]:
    """What an evaluation job needs of trained weights: the cell weights, the torch float32
    accuracy on the test slice and the training info."""
    from . import lstm

    x_test, y_test = _test_slice(ds, base["seq"], base["test_limit"])
    torch_acc = 100.0 * float(np.mean(lstm.torch_predict(model, x_test) == y_test))
    return {"weights": lstm.CellWeights.from_model(model), "torch_acc": torch_acc,
            "train_loss": info["train_loss"], "train_wall_s": info["train_wall_s"],
            "checkpoint": info.get("reference"), "checkpoint_sha256": info.get("reference_sha256")}


def train_job(base: dict[str, Any], weights_dir: Path, data_root: Path | None,
              load_fn: Loader | None, progress: bool = False, reference: bool = False
              ) -> dict[str, Any]:
    """Train (or load from the checkpoint cache) one cell's float32 model; ``reference``:
    prefer a committed reference checkpoint (:func:`experiments.weights.get_weights`).

    Returns ``{"unavailable": message}`` when the dataset cannot be obtained, else the cell
    weights, training info and the torch float32 accuracy on the test slice.
    """
    try:
        ds = _load_data(base["dataset"], data_root, load_fn)
    except data_mod.DataError as err:
        return {"unavailable": str(err)}
    model, info = get_weights(ds, base["seq"], base["seed"], base["epochs"],
                              base["train_limit"], weights_dir, progress, reference=reference)
    return _trained(ds, base, model, info)


def recipe_train_job(base: dict[str, Any], recipe: str, finetune_epochs: int, mode: str,
                     weights_dir: Path, data_root: Path | None, load_fn: Loader | None,
                     progress: bool = False, reference: bool = False) -> dict[str, Any]:
    """Train (or load) a recipe's weights in the training arithmetic it gives ``mode``; like
    :func:`train_job`, plus ``recipe_wall_s`` and the training arithmetic's description."""
    from .modes import parse_mode
    from .recipes import parse_recipe

    try:
        ds = _load_data(base["dataset"], data_root, load_fn)
    except data_mod.DataError as err:
        return {"unavailable": str(err)}
    rcp = parse_recipe(recipe, finetune_epochs)
    arith = rcp.train_arith(parse_mode(mode))
    model, info = get_recipe_weights(ds, base["seq"], base["seed"], base["epochs"],
                                     base["train_limit"], weights_dir, progress, rcp, arith,
                                     reference=reference)
    return {**_trained(ds, base, model, info), "recipe_wall_s": info["recipe_wall_s"],
            "train_arithmetic": arith.describe()}


def eval_job(trained: dict[str, Any], base: dict[str, Any], mode: str, data_root: Path | None,
             load_fn: Loader | None, recipe: str | None = None, finetune_epochs: int = 1,
             progress: bool = False, desc: str = "") -> dict[str, Any] | None:
    """The result record of ``mode`` on trained weights (None if the dataset was unavailable);
    with ``recipe``, on that recipe's weights: the row ``MODE [RECIPE]``."""
    from .modes import parse_mode

    if "unavailable" in trained:
        return None
    ds = _load_data(base["dataset"], data_root, load_fn)
    x_test, y_test = _test_slice(ds, base["seq"], base["test_limit"])
    arith = parse_mode(mode)
    rcp = None
    if recipe is not None:
        from .recipes import parse_recipe

        rcp = parse_recipe(recipe, finetune_epochs)
    nt = int(y_test.shape[0])
    res = evaluate(trained["weights"], x_test, y_test, arith, base["batch_size"], progress,
                   desc or arith.name)
    rec = {**base, "mode": arith.name if rcp is None else rcp.label(arith.name), "n_test": nt,
           "accuracy": 100.0 * res["correct"] / nt, **res}
    if rcp is not None:
        rec.update({"eval_mode": arith.name, "recipe": rcp.name,
                    "finetune_epochs": rcp.epochs, "finetune_limit": rcp.limit})
    rec["arithmetic"] = arith.describe()
    if rcp is not None:
        rec["train_arithmetic"] = trained["train_arithmetic"]
    rec.update({"torch_fp32_accuracy": trained["torch_acc"], "train_loss": trained["train_loss"],
                "train_wall_s": round(trained["train_wall_s"], 2)})
    if trained.get("checkpoint"):  # the committed reference checkpoint evaluated
        rec["checkpoint"] = trained["checkpoint"]
        rec["checkpoint_sha256"] = trained["checkpoint_sha256"]
    if rcp is not None:
        rec["recipe_wall_s"] = round(trained["recipe_wall_s"], 2)
    rec.update({"created": now(), "host": _host()})
    return rec


# ---------------------------------------------------------------------------- the orchestrator

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


@dataclass
class _Missing:
    """The rows of one cell that are not in the results file yet."""

    modes: list[str]                       # plain rows (float32 weights): mode names
    recipe_rows: list[tuple[Recipe, str, str]]  # (recipe, training arithmetic, mode name)
    rows: int                              # rows the cell has in all, missing or not

    def __bool__(self) -> bool:
        return bool(self.modes or self.recipe_rows)

    @property
    def count(self) -> int:
        return len(self.modes) + len(self.recipe_rows)


class _Grid:
    """One run's state: what is submitted, and how each outcome is recorded."""

    def __init__(self, out: Path, executor: executor_mod.Executor, modes: Sequence[str],
                 recipes: Sequence[str], finetune_epochs: int, weights_dir: Path,
                 data_root: Path, load_fn: Loader | None, progress: bool, task_cpus: int,
                 retries: int, log: Callable[[str], None], reference: bool = False) -> None:
        from .modes import parse_mode
        from .recipes import parse_recipe

        self.executor, self.log = executor, log
        # Jobs get the mode strings (parsed again where they run); results are keyed by name.
        self.by_name: dict[str, str] = {}
        for m in modes:
            self.by_name.setdefault(parse_mode(m).name, m)
        self.parsed = {n: parse_mode(m) for n, m in self.by_name.items()}
        recipe_list = list({r.name: r for r in (parse_recipe(t, finetune_epochs)
                                                for t in recipes)}.values())
        if not recipe_list:
            raise ValueError("no recipe given")
        self.plain = any(r.kind == "fp32" for r in recipe_list)
        self.recipes = [r for r in recipe_list if r.kind != "fp32"]
        self.store = ResultsStore(out)  # after every argument is known to be good
        self.finetune_epochs = finetune_epochs
        self.weights_dir, self.data_root, self.load_fn = weights_dir, data_root, load_fn
        self.reference = reference
        # Progress bars: inside each job when they run here one at a time, else one over all.
        self.job_progress = progress and not executor.concurrent
        self.bar = progress and executor.concurrent
        self.submit_kw = {"cpus": task_cpus, "retries": retries}
        self.cells: dict[int, dict[str, Any]] = {}   # evaluation job id -> its row's key
        self.trains: dict[int, dict[str, Any]] = {}  # training job id -> its cell
        self.unavailable: set[str] = set()
        self.failed = 0

    def missing(self, base: dict[str, Any]) -> _Missing:
        """The rows of cell ``base`` not in the results file (as of its last read)."""
        def have(label: str) -> bool:
            return self.store.has(run_key({**base, "mode": label}))

        modes = [m for m in self.parsed if self.plain and not have(m)]
        rows = [(r, a.name, m) for r in self.recipes for m in self.parsed
                if (a := r.train_arith(self.parsed[m])) is not None]
        return _Missing(modes, [(r, a, m) for r, a, m in rows if not have(r.label(m))],
                        len(self.parsed) * self.plain + len(rows))

    def submit(self, base: dict[str, Any], todo: _Missing) -> None:
        """Submit the jobs of cell ``base``'s missing rows."""
        ex, kw, here = self.executor, self.submit_kw, (self.data_root, self.load_fn)
        label = f"{base['dataset']}/{base['seq']} seed {base['seed']} {base['epochs']}ep"
        trained = ex.submit(train_job, base, self.weights_dir, *here, self.job_progress,
                            self.reference,
                            name=f"train {label}", **kw)
        self.trains[trained.id] = base
        for m in todo.modes:
            name = f"{label} {m}"
            h = ex.submit(eval_job, trained, base, self.by_name[m], *here,
                          progress=self.job_progress, desc=name, name=name, **kw)
            self.cells[h.id] = {**base, "mode": m}
        groups: dict[tuple[str, str], list[str]] = {}
        recipe_of = {r.name: r for r, _, _ in todo.recipe_rows}
        for r, a, m in todo.recipe_rows:
            groups.setdefault((r.name, a), []).append(m)
        for (rname, _), group in groups.items():
            # Fine-tuning starts from the float32 checkpoint: after that job.
            rtrained = ex.submit(recipe_train_job, base, rname, self.finetune_epochs,
                                 self.by_name[group[0]], self.weights_dir, *here,
                                 self.job_progress, self.reference, deps=[trained],
                                 name=f"train {label} [{rname}] in {group[0]}", **kw)
            self.trains[rtrained.id] = base
            for m in group:
                name = f"{label} {m} [{rname}]"
                h = ex.submit(eval_job, rtrained, base, self.by_name[m], *here, rname,
                              self.finetune_epochs, progress=self.job_progress, desc=name,
                              name=name, **kw)
                self.cells[h.id] = {**base, "mode": recipe_of[rname].label(m)}

    def collect(self) -> None:
        """Run what is submitted; record each outcome as it arrives."""
        store, log = self.store, self.log
        for res in self.executor.as_completed(progress=self.bar, desc="grid"):
            hid = res.handle.id
            if hid in self.trains:
                if res.ok and "unavailable" in res.value:
                    dataset = self.trains[hid]["dataset"]
                    if dataset not in self.unavailable:
                        self.unavailable.add(dataset)
                        log(f"skipping {dataset}: {res.value['unavailable']}")
                        store.mark_unavailable(dataset, res.value["unavailable"])
                elif not res.ok:
                    log(f"failed: {res.handle.name} after {res.attempts} attempts: {res.error}")
                continue
            cell = self.cells[hid]
            if not res.ok:
                self.failed += 1
                store.set_failure(cell, {"error": res.error, "attempts": res.attempts,
                                         "created": now()})
                continue
            rec = res.value
            if rec is None:
                continue
            store.add(rec)
            store.set_failure(cell, None)
            log(f"{res.handle.name}: {rec['accuracy']:.2f}% ({rec['correct']}/{rec['n_test']}) "
                f"in {rec['eval_wall_s']:.1f} s")


def run(jobs: Sequence[Job], modes: Sequence[str], out: Path, *,
        weights_dir: Path | None = None, data_root: Path | None = None,
        test_limit: int | None = None, train_limit: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True,
        log: Callable[[str], None] | None = None, load_fn: Loader | None = None,
        recipes: Sequence[str] = ("fp32",), finetune_epochs: int = 1,
        executor: executor_mod.Executor | None = None, task_cpus: int = 1,
        retries: int = 1, reference: bool = False) -> ResultsStore:
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
        log: where progress lines go (default: stderr).
        load_fn: dataset loader (tests inject a synthetic one); default :func:`data.load`. For
            Ray it must be picklable by reference (a module-level function).
        recipes: training recipes (:func:`experiments.recipes.parse_recipe`; ``fp32`` is the
            float32 training the plain mode rows use); rows of the others are ``MODE [RECIPE]``.
        finetune_epochs: N of a fine-tuning recipe written without a count (``ft``).
        executor: where the jobs run (:func:`experiments.executor.make_executor`). None: in
            this process, one after another, and the first exception a job raises propagates
            (:class:`experiments.executor.SerialExecutor` with ``raise_errors``). With an
            executor, a job that still fails after ``retries`` extra attempts is recorded with
            its error under ``failed`` in the results file (cleared when a later run measures
            the cell), and every other result is kept.
        task_cpus: CPUs (torch and numba threads) per job on a concurrent executor.
        retries: extra attempts per failing job.
        reference: the rows use a committed reference checkpoint where one exists for the
            cell or its recipe (:func:`experiments.weights.get_weights`,
            :func:`~experiments.weights.get_recipe_weights`); a recipe without one is trained,
            its fine-tuning starting from the checkpoint cache.

    Every executor gives the same records, timings aside (with the same torch thread count:
    the training's float32 sums may depend on it).

    Raises:
        ValueError: an argument out of range (checked before anything is read or written).
        ResultsError: ``out`` cannot hold results or holds a malformed file.
    """
    _check_run_args(jobs, modes, test_limit, train_limit, batch_size)
    if log is None:
        from tqdm import tqdm

        def log(msg: str) -> None:
            tqdm.write(msg, file=sys.stderr)

    ex = executor if executor is not None else executor_mod.SerialExecutor(raise_errors=True)
    # Absolute paths: the jobs may run in another directory or on another node.
    weights_dir = (Path(weights_dir) if weights_dir is not None
                   else Path(out).parent / "weights").resolve()
    grid = _Grid(Path(out), ex, modes, recipes, finetune_epochs, weights_dir,
                 data_mod.data_dir(data_root).resolve(), load_fn, progress, task_cpus, retries,
                 log, reference)
    store = grid.store
    plans = [(base, grid.missing(base))
             for base in _cell_bases(jobs, train_limit, test_limit, batch_size)]
    to_run = sum(todo.count for _, todo in plans)
    log(f"grid: {to_run} cells to run, {sum(t.rows for _, t in plans) - to_run} already in "
        f"{out} ({ex.kind} executor)")
    if ex.concurrent:
        for base, todo in plans:
            if todo:
                grid.submit(base, todo)
        grid.collect()
    else:
        for base, _ in plans:
            if base["dataset"] in grid.unavailable:
                continue
            store.refresh()  # skip what a concurrent run on the same file finished
            todo = grid.missing(base)
            if todo:
                grid.submit(base, todo)
                grid.collect()
    if grid.failed:
        log(f"{grid.failed} cells failed; their errors are under 'failed' in {out}; rerun to "
            "retry")
    return store
