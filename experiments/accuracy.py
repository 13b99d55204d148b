"""Accuracy runner: train float32 LSTMs, evaluate them with each inference arithmetic.

    python -m experiments.accuracy --datasets mnist,fashion --seeds 0,1 --epochs 1 \\
        --modes fp32,bf16,lmul,seed --seq rows [--test-limit 500] [--out results/x.json]
    python -m experiments.accuracy --preset experiment     # make experiment
    python -m experiments.accuracy --preset reproduce      # make reproduce (long)

For every (dataset, seq, seed, epochs) the float32 weights are trained once and cached as per-epoch
checkpoints (``--weights-dir``, default ``results/weights``); each (configuration, mode) result is
appended to the results JSON (atomically: temp file + ``os.replace``) as soon as it is measured,
with a CSV copy beside it. Rerunning the same command skips everything already in the file, so an
interrupted run resumes where it stopped. A dataset that cannot be obtained (offline) is reported
in one line and recorded under ``unavailable``; the others still run. At the end the summary table
is printed and written next to the JSON with the plot (:mod:`experiments.report`).

Threads: torch uses ``--threads`` (default ``$LMUL_THREADS`` or 2); the numba kernels follow
``NUMBA_NUM_THREADS``.
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
from typing import Any

import numpy as np

from . import data as data_mod
from . import lstm
from .fileio import atomic_write_text
from .modes import Arithmetic, parse_mode, split_modes
from .report import SCHEMA, ResultsError, load_results, markdown_table, write_report

RESULTS_DIR = data_mod.REPO_ROOT / "results"

CSV_FIELDS = ("dataset", "seq", "seed", "epochs", "mode", "accuracy", "correct", "n_test",
              "nonfinite", "train_limit", "test_limit", "torch_fp32_accuracy", "train_loss",
              "train_wall_s", "eval_wall_s", "created")

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
    """Identity of a result: a rerun with the same key is skipped."""
    return (rec["dataset"], rec["seq"], int(rec["seed"]), int(rec["epochs"]), rec["mode"],
            rec.get("train_limit"), rec.get("test_limit"))


class ResultsStore:
    """The results JSON (and its CSV twin), rewritten atomically after every new result."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if self.path.exists():
            self.doc = load_results(self.path)
        else:
            self.doc = {"schema": SCHEMA, "runs": [], "unavailable": {}}
        self.doc.setdefault("unavailable", {})
        self._keys = {run_key(r) for r in self.doc["runs"]}

    def has(self, key: tuple[Any, ...]) -> bool:
        """Whether a result with this key is stored."""
        return key in self._keys

    def add(self, rec: dict[str, Any]) -> None:
        """Store one result and save."""
        self.doc["runs"].append(rec)
        self._keys.add(run_key(rec))
        self.doc["unavailable"].pop(rec["dataset"], None)
        self.save()

    def mark_unavailable(self, dataset: str, message: str) -> None:
        """Record that ``dataset`` could not be run (kept until a result for it is stored)."""
        self.doc["unavailable"][dataset] = message
        self.save()

    def save(self) -> None:
        """Write JSON and CSV atomically."""
        self.doc["updated"] = _now()
        atomic_write_text(self.path, json.dumps(self.doc, indent=1, sort_keys=False) + "\n")
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for r in self.doc["runs"]:
            writer.writerow(r)
        atomic_write_text(self.path.with_suffix(".csv"), buf.getvalue())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def evaluate(wts: lstm.CellWeights, x_test: np.ndarray, y_test: np.ndarray, mode: Arithmetic,
             batch_size: int, progress: bool, desc: str) -> dict[str, Any]:
    """Accuracy of ``mode`` on the test sequences: correct count, non-finite rows, wall time."""
    t0 = time.perf_counter()
    pred = lstm.predict(wts, x_test, mode, batch_size=batch_size, progress=progress, desc=desc)
    return {"correct": int(np.sum(pred == y_test)), "nonfinite": int(np.sum(pred < 0)),
            "eval_wall_s": round(time.perf_counter() - t0, 3)}


def get_weights(ds: data_mod.ImageData, seq: str, seed: int, epochs: int,
                train_limit: int | None, weights_dir: Path | None, progress: bool
                ) -> tuple[lstm.LSTMClassifier, dict[str, Any]]:
    """Trained float32 model for the configuration (from the checkpoint cache when present)."""
    n = ds.train_x.shape[0] if train_limit is None else min(train_limit, ds.train_x.shape[0])
    tag = f"{ds.name}-{seq}-h{lstm.HIDDEN}" + ("" if train_limit is None else f"-train{n}")
    x = lstm.to_sequence(ds.train_x[:n], seq)
    return lstm.train(x, ds.train_y[:n], ds.n_classes, seed, epochs, weights_dir, tag, progress)


def run(jobs: Sequence[Job], modes: Sequence[str], out: Path, *,
        weights_dir: Path | None = None, data_root: Path | None = None,
        test_limit: int | None = None, train_limit: int | None = None, batch_size: int = 1000,
        progress: bool = True, log: Callable[[str], None] | None = None,
        load_fn: Callable[[str, Path | None], data_mod.ImageData] | None = None) -> ResultsStore:
    """Run every job x mode not yet in ``out``; return the results store.

    Args:
        jobs: blocks of (datasets x seeds x sequence modes, epochs).
        modes: mode strings (parsed by :func:`experiments.modes.parse_mode`; validated first).
        out: results JSON path (created or extended).
        weights_dir: checkpoint directory (default ``<out dir>/weights``).
        data_root: data directory (default :func:`experiments.data.data_dir`).
        test_limit: evaluate on the first N test images only. train_limit: train on the first N.
        batch_size: inference batch (sequences per explicit-cell pass).
        load_fn: dataset loader (tests inject a synthetic one); default :func:`data.load`.
    """
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
                            "train_limit": train_limit, "test_limit": test_limit}
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


def _int_list(text: str) -> list[int]:
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "-" in part[1:]:
            lo, hi = part.split("-", 1)
            out.extend(range(int(lo), int(hi) + 1))
        else:
            out.append(int(part))
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    parser = argparse.ArgumentParser(
        description="Train float32 LSTM classifiers and measure their accuracy under each "
                    "inference arithmetic (resumable).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="datasets: " + ", ".join(data_mod.DATASETS)
               + "\nmodes: fp32, bf16, exact:OPTS, lmul[:OPTS], lmul-mitchell[:OPTS], seed; "
                 "OPTS like offset=7 or e=4,m=3 or rounding=truncate or head=fp32",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="predefined run (experiment: make experiment; reproduce: the "
                             "notebook's table); --datasets then picks among its datasets, other "
                             "options replace its values")
    parser.add_argument("--datasets", help="comma-separated (default mnist)")
    parser.add_argument("--seeds", help="comma-separated or ranges, e.g. 0-4 (default 0)")
    parser.add_argument("--epochs", type=int, help="training epochs (default 1)")
    parser.add_argument("--seq", help="rows, pixels or permuted; comma-separated (default rows)")
    parser.add_argument("--modes", help="comma-separated mode strings (default "
                                        "fp32,bf16,lmul,seed)")
    parser.add_argument("--test-limit", type=int, default=None,
                        help="evaluate on the first N test images only (quick runs)")
    parser.add_argument("--train-limit", type=int, default=None,
                        help="train on the first N training images only (quick runs)")
    parser.add_argument("--out", type=Path, help="results JSON (default results/accuracy.json)")
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help="checkpoint cache (default: <out dir>/weights)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="default: $LMUL_DATA_DIR or <repo>/data")
    parser.add_argument("--batch-size", type=int, default=1000, help="inference batch size")
    parser.add_argument("--threads", type=int,
                        default=int(os.environ.get("LMUL_THREADS", "2")),
                        help="torch threads (default $LMUL_THREADS or 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--no-report", action="store_true",
                        help="do not print the table / write the plot at the end")
    args = parser.parse_args(argv)

    preset = PRESETS.get(args.preset or "", {})
    try:
        seqs = args.seq.split(",") if args.seq else None
        for s in seqs or []:
            lstm.sequence_shape((28, 28), s)
        datasets = ([data_mod.canonical_name(d) for d in args.datasets.split(",") if d.strip()]
                    if args.datasets else None)
        seeds = _int_list(args.seeds) if args.seeds else None
        if args.epochs is not None and args.epochs < 1:
            raise ValueError("--epochs must be >= 1")
        for lim, flag in ((args.test_limit, "--test-limit"), (args.train_limit, "--train-limit")):
            if lim is not None and lim < 1:
                raise ValueError(f"{flag} must be >= 1")
        modes = split_modes(args.modes or preset.get("modes", "fp32,bf16,lmul,seed"))
        for m in modes:
            parse_mode(m)
    except ValueError as err:
        parser.error(str(err))
    jobs = []
    for j in preset.get("jobs", [Job(datasets or ["mnist"], [0], 1)]):
        # With a preset, --datasets selects among its datasets; the other options replace.
        picked = [d for d in j.datasets if datasets is None or d in datasets]
        if picked:
            jobs.append(Job(picked, seeds if seeds is not None else list(j.seeds),
                            args.epochs or j.epochs, seqs or list(j.seqs)))
    if not jobs:
        parser.error(f"--datasets {args.datasets} selects nothing from preset {args.preset}")
    out = args.out or preset.get("out", RESULTS_DIR / "accuracy.json")

    import torch

    torch.set_num_threads(max(1, args.threads))
    t0 = time.perf_counter()
    try:
        store = run(jobs, modes, out, weights_dir=args.weights_dir, data_root=args.data_dir,
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
            print(f"table: {Path(out).with_suffix('.md')}  plot: {Path(out).with_suffix('.png')}",
                  file=sys.stderr)
        else:
            print(markdown_table(store.doc), end="")
    return 0 if store.doc["runs"] else 1


if __name__ == "__main__":
    sys.exit(main())
