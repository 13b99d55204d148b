"""Accuracy runner's command line: train float32 LSTMs, evaluate them with each inference
arithmetic (the grid: :mod:`experiments.grid`; the results file: :mod:`experiments.store`).

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

Reference checkpoints: where ``experiments/checkpoints/`` holds a committed float32 checkpoint of
exactly a configuration (listed with its SHA-256 in ``experiments/checkpoints/SHA256SUMS``: the
main experiment's, the reproduce preset's, the activation and energy studies'), its hash is
checked and it is used instead of training, so evaluating it gives the same counts on every
machine (float32 training on the CPU differs slightly between instruction sets); ``--retrain``
ignores them and trains (or uses the checkpoint cache) as before. A record measured on one names
it (``checkpoint``, ``checkpoint_sha256``) and keeps ``slice_check``, the digest of its first
500 test images' logits, which ``experiments/tests/test_snapshot_reproduces.py`` recomputes.

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
``--executor serial``, runs every job in this process, one after another; an error there ends
the run.

Threads: torch uses ``--threads`` (default ``$LMUL_THREADS`` or 2); the numba kernels follow
``NUMBA_NUM_THREADS``. Both must be integers >= 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from sim.lib.cli import int_in_range, json_path, run_main
from sim.lib.fileio import RESULTS_DIR, check_writable_dir, check_writable_file

from . import data as data_mod
from . import executor as executor_mod
from .grid import DEFAULT_BATCH_SIZE, MAX_SEED, Job, run
from .report import ResultsError, derived_path, markdown_table, write_report

#: A seed list longer than this is a typo (``0-99999``), not an experiment.
MAX_SEEDS = 10_000
MAX_THREADS = 1024

# ``seed:head=fp32`` is the notebook's own configuration (its classifier head stayed float32);
# ``seed`` puts the head through the seed multiplier as well, like every other mode.
REPRODUCE_MODES = "fp32,bf16,lmul,lmul-mitchell,seed,seed:head=fp32"

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
    parser.add_argument("--retrain", action="store_true",
                        help="train (or use the checkpoint cache) even where a committed "
                        "reference checkpoint exists (experiments/checkpoints/)")
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
    # Checked now, before any training.
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

    def body() -> int:
        t0 = time.perf_counter()
        with executor_mod.from_arguments(args) as executor:
            store = run(jobs, modes, out, weights_dir=weights_dir, data_root=args.data_dir,
                        test_limit=args.test_limit, train_limit=args.train_limit,
                        batch_size=args.batch_size, progress=not args.no_progress,
                        recipes=recipes, finetune_epochs=args.finetune_epochs,
                        executor=executor, task_cpus=args.task_cpus, retries=args.retries,
                        reference=not args.retrain)
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
            print(f"failed: {f['dataset']}/{f['seq']} seed {f['seed']} {f['epochs']}ep "
                  f"{f['mode']} after {f['attempts']} attempt(s): {f['error']}", file=sys.stderr)
        return 0 if store.doc["runs"] and not failed else 1

    from .weights import CheckpointHashError

    return run_main("accuracy", body, {ResultsError: 1, executor_mod.ExecutorError: 2,
                                       CheckpointHashError: 1},
                    interrupted=f"finished results are in {out}; rerun the same command to "
                                "resume")


if __name__ == "__main__":
    sys.exit(main())
