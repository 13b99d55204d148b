"""The accuracy results file: one JSON document (with a CSV twin) that several writers extend.

The document is ``{"schema", "runs": [record, ...], "unavailable": {dataset: message},
"failed": [cell + error, ...], "updated"}`` (:mod:`experiments.report` reads and checks it). A
record's identity is :func:`run_key`; a record whose key is stored already is never added
again, so a rerun skips finished work and concurrent runs on one file lose nothing.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sim.lib.fileio import atomic_write_text, check_writable_file, locked

from .report import SCHEMA, ResultsError, batch_size_of, derived_path, load_results

#: Columns of the CSV twin (records' other fields are in the JSON only).
CSV_FIELDS = ("dataset", "seq", "seed", "epochs", "mode", "accuracy", "correct", "n_test",
              "nonfinite", "train_limit", "test_limit", "batch_size", "torch_fp32_accuracy",
              "train_loss", "train_wall_s", "eval_wall_s", "created")


#: How the float32 products of a mode are summed: ``fixed`` is :func:`lmul.matmul_fp32` (the
#: array's order, the same bits everywhere), ``blas`` the numpy BLAS product that results stored
#: before it used (:func:`stored_key` reads stored records without the field so).
FP32_ORDER = "fixed"
LEGACY_FP32_ORDER = "blas"


#: Fields of a record that come from the machine that ran it, not from the checkpoint and the
#: arithmetic: ``torch_fp32_accuracy`` is torch's own LSTM (BLAS, the CPU's kernels), a
#: cross-check; the rest are timings and the host. Every written document lists them under
#: ``machine_dependent`` so that a snapshot says which of its numbers a fresh clone on another
#: machine may not reproduce (``correct``/``accuracy`` it does, from a reference checkpoint).
MACHINE_DEPENDENT_FIELDS = ("torch_fp32_accuracy", "eval_wall_s", "train_wall_s",
                            "recipe_wall_s", "host", "created")


def provenance(runs: list[dict[str, Any]]) -> str:
    """One markdown paragraph for a study report: whether its rows reproduce on another
    machine (every row measured on a committed reference checkpoint) or not (weights trained
    on the measuring machine, float32 products summed by BLAS), counted from the records."""
    if not runs:
        return ""
    own = sum("checkpoint" not in r for r in runs)
    blas = sum(uses_fp32_products(r["mode"]) and r.get("fp32_order", LEGACY_FP32_ORDER)
               != FP32_ORDER for r in runs)
    if not own and not blas:
        return ("Reproducibility: every row evaluates a committed reference checkpoint "
                "(`experiments/checkpoints/`, its name and SHA-256 in each record), so a fresh "
                "clone gives these counts bit for bit on any machine; only the records' "
                f"{', '.join(f'`{f}`' for f in MACHINE_DEPENDENT_FIELDS)} are the measuring "
                "machine's (`torch_fp32_accuracy` is torch's own float32 LSTM, a cross-check).")
    parts = []
    if own:
        parts.append(f"{own} of {len(runs)} rows evaluate weights trained on the measuring "
                     "machine, not a committed checkpoint (float32 training is not "
                     "bit-reproducible across CPUs: another machine's counts differ slightly)")
    if blas:
        parts.append(f"{blas} rows with float32 products were summed by BLAS, in the CPU "
                     "kernel's order")
    return ("Reproducibility: machine-dependent: " + "; ".join(parts)
            + ". They become reproducible once their weights are committed (`python -m "
            "experiments.weights --pack`) and the study is rerun.")


def uses_fp32_products(mode: str) -> bool:
    """Whether a mode label's evaluation has float32 products (``fp32``, ``seed:head=fp32``,
    ``fp32 [ft1]``); a recipe suffix in brackets names training, not evaluation."""
    return "fp32" in mode.split(" [", 1)[0]


def run_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    """Identity of a result: a rerun with the same key is skipped.

    (dataset, seq, seed, epochs, mode, train limit, test limit, batch size, float32 order):
    every option that can change the number; a run recorded without ``batch_size`` counts as
    :data:`experiments.report.LEGACY_BATCH_SIZE`; the float32 order (``fp32_order``, default
    :data:`FP32_ORDER`) counts only for modes with float32 products, so a stored BLAS-order
    ``fp32`` row does not stand in for the fixed-order one.
    """
    order = rec.get("fp32_order", FP32_ORDER) if uses_fp32_products(rec["mode"]) else None
    return (rec["dataset"], rec["seq"], int(rec["seed"]), int(rec["epochs"]), rec["mode"],
            rec.get("train_limit"), rec.get("test_limit"), batch_size_of(rec), order)


def now() -> str:
    """The current UTC time as ISO 8601 to the second (a record's ``created``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def check_results_path(path: Path) -> None:
    """Raise :class:`~experiments.report.ResultsError` (one line, naming ``path``) unless
    ``path`` can hold a results JSON: its name ends in ``.json`` and it can be written
    (:func:`sim.lib.fileio.check_writable_file`, which creates missing parent directories)."""
    if path.suffix != ".json":
        raise ResultsError(f"{path}: results file name must end in .json")
    try:
        check_writable_file(path)
    except ValueError as err:
        raise ResultsError(f"{path}: {err}") from None


def stored_key(rec: dict[str, Any]) -> tuple[Any, ...]:
    """:func:`run_key` of a record read from a results file: one stored without
    ``fp32_order`` predates the fixed-order float32 product (:data:`LEGACY_FP32_ORDER`)."""
    return run_key({"fp32_order": LEGACY_FP32_ORDER, **rec})


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
        check_results_path(self.path)
        self.doc: dict[str, Any] = _empty_doc()
        self._keys: set[tuple[Any, ...]] = set()
        self.refresh()

    def _read(self) -> dict[str, Any]:
        doc = load_results(self.path) if self.path.exists() else _empty_doc()
        doc.setdefault("unavailable", {})
        return doc

    def _set(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self._keys = {stored_key(r) for r in doc["runs"]}

    def refresh(self) -> None:
        """Re-read the file (another process may have added results); no lock needed, since
        writers replace it atomically."""
        self._set(self._read())

    def has(self, key: tuple[Any, ...]) -> bool:
        """Whether a result with this key is stored (as of the last read or write)."""
        return key in self._keys

    def add(self, rec: dict[str, Any]) -> None:
        """Merge one result into the file (kept out if its key is already there)."""
        rec = {**rec, "fp32_order": rec.get("fp32_order", FP32_ORDER)}
        with locked(self.path):
            doc = self._read()
            if run_key(rec) not in {stored_key(r) for r in doc["runs"]}:
                doc["runs"].append(rec)
            doc["unavailable"].pop(rec["dataset"], None)
            self._write(doc)

    def mark_unavailable(self, dataset: str, message: str) -> None:
        """Record that ``dataset`` could not be run (kept until a result for it is stored)."""
        with locked(self.path):
            doc = self._read()
            doc["unavailable"][dataset] = message
            self._write(doc)

    def set_failure(self, cell: dict[str, Any], failure: dict[str, Any] | None) -> None:
        """Record under ``failed`` that the result ``cell`` (a record's key fields) could not be
        measured, ``failure`` giving why (``error``, ``attempts``, ``created``); with
        ``failure`` None, clear such an entry (nothing is written when there is none)."""
        key = run_key(cell)
        if failure is None and all(run_key(f) != key for f in self.doc.get("failed", [])):
            return
        with locked(self.path):
            doc = self._read()
            failed = [f for f in doc.get("failed", []) if run_key(f) != key]
            if failure is not None:
                failed.append({**cell, **failure})
            elif len(failed) == len(doc.get("failed", [])):
                return
            doc["failed"] = failed
            self._write(doc)

    def _write(self, doc: dict[str, Any]) -> None:
        """Write JSON and CSV atomically (caller holds the lock)."""
        doc["updated"] = now()
        doc["machine_dependent"] = list(MACHINE_DEPENDENT_FIELDS)
        atomic_write_text(self.path, json.dumps(doc, indent=1, sort_keys=False) + "\n")
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for r in doc["runs"]:
            writer.writerow({"batch_size": batch_size_of(r), **r})
        atomic_write_text(derived_path(self.path, ".csv"), buf.getvalue())
        self._set(doc)
