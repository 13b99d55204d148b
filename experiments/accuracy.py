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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import data as data_mod
from .fileio import atomic_write_text, check_writable_dir, check_writable_file, locked
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
    from . import lstm
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
    (:func:`experiments.fileio.locked`): re-read the file, add what is new, replace the JSON and
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


def run(jobs: Sequence[Job], modes: Sequence[str], out: Path, *,
        weights_dir: Path | None = None, data_root: Path | None = None,
        test_limit: int | None = None, train_limit: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: bool = True, log: Callable[[str], None] | None = None,
        load_fn: Callable[[str, Path | None], data_mod.ImageData] | None = None) -> ResultsStore:
    """Run every job x mode not yet in ``out``; return the results store.

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

    Raises:
        ValueError: an argument out of range (checked before anything is read or written).
        ResultsError: ``out`` cannot hold results or holds a malformed file.
    """
    from . import lstm
    from .modes import parse_mode

    _check_run_args(jobs, modes, test_limit, train_limit, batch_size)
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    load_fn = load_fn or data_mod.load
    arith = [parse_mode(m) for m in modes]
    names = list(dict.fromkeys(a.name for a in arith))
    by_name = {a.name: a for a in arith}
    store = ResultsStore(out)
    weights_dir = Path(weights_dir) if weights_dir is not None else Path(out).parent / "weights"
    loaded: dict[str, data_mod.ImageData | None] = {}
    for job in jobs:
        for dataset in job.datasets:
            dataset = data_mod.canonical_name(dataset)
            for seq in job.seqs:
                for seed in job.seeds:
                    base = {"dataset": dataset, "seq": seq, "seed": seed, "epochs": job.epochs,
                            "train_limit": train_limit, "test_limit": test_limit,
                            "batch_size": batch_size}
                    store.refresh()  # skip what a concurrent run on the same file finished
                    todo = [m for m in names if not store.has(run_key({**base, "mode": m}))]
                    if not todo:
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
                    model, info = get_weights(ds, seq, seed, job.epochs, train_limit,
                                              weights_dir, progress)
                    nt = ds.test_x.shape[0] if test_limit is None else min(test_limit,
                                                                         ds.test_x.shape[0])
                    x_test = lstm.to_sequence(ds.test_x[:nt], seq)
                    y_test = ds.test_y[:nt]
                    torch_acc = 100.0 * float(np.mean(lstm.torch_predict(model, x_test) == y_test))
                    wts = lstm.CellWeights.from_model(model)
                    for name in todo:
                        tag = f"{dataset}/{seq} seed {seed} {job.epochs}ep {name}"
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


def _int_in_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """argparse ``type=``: a decimal integer in ``low .. high``."""
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            rng = f">= {low}" if high is None else f"in {low}..{high}"
            raise argparse.ArgumentTypeError(f"{value} is out of range (must be {rng})")
        return value
    return parse


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


def _json_path(text: str) -> Path:
    """argparse ``type=`` for ``--out``: a path ending in ``.json``."""
    path = Path(text)
    if path.exists() and not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file (device, fifo or socket)"
        raise argparse.ArgumentTypeError(f"{text!r} is {kind}")
    if path.suffix != ".json":
        raise argparse.ArgumentTypeError(
            f"{text!r} must end in .json (the table, CSV and plot are written beside it as "
            ".md, .csv and .png)")
    return path


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
    parser.add_argument("--epochs", type=_int_in_range(1), help="training epochs >= 1 (default 1)")
    parser.add_argument("--seq", help="rows, pixels or permuted; comma-separated (default rows)")
    parser.add_argument("--modes", help="comma-separated mode strings (default "
                                        "fp32,bf16,lmul,seed)")
    parser.add_argument("--test-limit", type=_int_in_range(1), default=None,
                        help="evaluate on the first N >= 1 test images only (quick runs; N "
                             "beyond the test set means all)")
    parser.add_argument("--train-limit", type=_int_in_range(1), default=None,
                        help="train on the first N >= 1 training images only (quick runs)")
    parser.add_argument("--out", type=_json_path,
                        help="results JSON, must end in .json (default results/accuracy.json)")
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="checkpoint cache (default: <out dir>/weights)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="default: $LMUL_DATA_DIR or <repo>/data")
    parser.add_argument("--batch-size", type=_int_in_range(1), default=DEFAULT_BATCH_SIZE,
                        help=f"inference batch size >= 1 (default {DEFAULT_BATCH_SIZE}; part of "
                             "a result's identity)")
    parser.add_argument("--threads", type=_int_in_range(1, MAX_THREADS), default=None,
                        help=f"torch threads 1..{MAX_THREADS} (default $LMUL_THREADS or 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--no-report", action="store_true",
                        help="do not print the table / write the plot at the end")
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
        store = run(jobs, modes, out, weights_dir=weights_dir, data_root=args.data_dir,
                    test_limit=args.test_limit, train_limit=args.train_limit,
                    batch_size=args.batch_size, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished results are in {out}; rerun the same command to resume",
              file=sys.stderr)
        return 130
    except ResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"done in {time.perf_counter() - t0:.0f} s; results: {out}", file=sys.stderr)
    if not args.no_report:
        if store.doc["runs"]:
            print(write_report(out), end="")
            print(f"table: {derived_path(out, '.md')}  plot: {derived_path(out, '.png')}",
                  file=sys.stderr)
        else:
            print(markdown_table(store.doc), end="")
    return 0 if store.doc["runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
