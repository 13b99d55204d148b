"""The MNIST LSTM's gate-product operands, written for the hardware cost flow.

``python -m experiments.operands [--images 4] [--out results/operands/mnist_lstm.npz]`` runs the
trained MNIST LSTM (``make experiment``'s weights: MNIST rows, seed 0, 1 epoch; the committed
reference checkpoint ``experiments/checkpoints/mnist-rows-h128-seed0-epoch1.npz``, or with
``--retrain`` trained with the same code and cache if absent) in ``lmul`` mode on the first
``--images`` test images and records the operands of every gate product. The file (``.npz``, written
atomically) holds ``z`` [T, B, 156] (the per-step inputs [x_t, h], float32, h from the lmul run),
``w`` [156, 512] and ``b`` [512] (the gate weights and bias, float32) and ``source`` (how the
weights were obtained). ``syn.cost`` reads it for its ``mnist`` workload, so the implementation flow
needs none of the ML code.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sim.lib.cli import int_in_range
from sim.lib.fileio import RESULTS_DIR, atomic_write_bytes, check_writable_file

from . import data as data_mod

DEFAULT_OUT = RESULTS_DIR / "operands" / "mnist_lstm.npz"


def capture(n_images: int = 4, weights_dir: Path | None = None, data_root: Path | None = None,
            progress: bool = True, reference: bool = True) -> dict[str, np.ndarray]:
    """The operands of every gate product of the first ``n_images`` MNIST test images (the
    arrays of the module docstring, ``source`` as a 0-d string array); ``reference``: the
    committed reference checkpoint (:func:`experiments.weights.get_weights`), else the
    checkpoint cache ``weights_dir`` (trained now if absent)."""
    from . import lstm
    from .modes import parse_mode
    from .weights import get_weights

    ds = data_mod.load("mnist", data_root)
    wdir = weights_dir or (RESULTS_DIR / "weights")
    model, info = get_weights(ds, "rows", 0, 1, None, wdir, progress, reference=reference)
    wts = lstm.CellWeights.from_model(model)
    mode = parse_mode("lmul")
    zs: list[np.ndarray] = []

    class Recorder:
        """The lmul arithmetic, recording the A operand of each gate product."""

        name = mode.name

        def matmul(self, a: np.ndarray, b: np.ndarray, bias: np.ndarray) -> np.ndarray:
            if b.shape == wts.w.shape:
                zs.append(np.array(a, dtype=np.float32))
            return mode.matmul(a, b, bias)

        def mul(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return mode.mul(x, y)

        def head_matmul(self, a: np.ndarray, b: np.ndarray, bias: np.ndarray) -> np.ndarray:
            return mode.head_matmul(a, b, bias)

    x = lstm.to_sequence(ds.test_x[:n_images], "rows")
    lstm.forward_logits(wts, x, Recorder())  # type: ignore[arg-type]
    how = (f"reference checkpoint {info['reference']}, " if "reference" in info
           else f"trained here, resumed from epoch {info.get('resumed_from')}, ")
    src = (f"MNIST rows, seed 0, 1 epoch ({how}train loss "
           f"{info.get('train_loss', float('nan')):.4f}); first {n_images} test images")
    return {"z": np.stack(zs), "w": np.asarray(wts.w, np.float32),
            "b": np.asarray(wts.b, np.float32), "source": np.array(src)}


def write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` as an uncompressed ``.npz``, atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the process exit status."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int_in_range(1, 10000), default=4,
                    help="test images to record (default 4: the 4x4 array's rows)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the .npz to write")
    ap.add_argument("--weights-dir", type=Path, default=None)
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--force", action="store_true", help="recompute even if --out exists")
    ap.add_argument("--retrain", action="store_true",
                    help="train (or use the checkpoint cache) instead of the committed "
                         "reference checkpoint (experiments/checkpoints/)")
    args = ap.parse_args(argv)
    try:
        check_writable_file(args.out)
    except OSError as err:
        print(f"operands: error: {err}", file=sys.stderr)
        return 2
    if args.out.is_file() and not args.force:
        print(f"operands: {args.out} exists (--force recomputes)", file=sys.stderr)
        return 0
    try:
        arrays = capture(args.images, args.weights_dir, args.data_root,
                         reference=not args.retrain)
    except (ValueError, data_mod.DataError) as err:  # CheckpointHashError is a ValueError
        print(f"operands: error: {err}", file=sys.stderr)
        return 2
    write(args.out, arrays)
    print(f"operands: wrote {args.out}: z{arrays['z'].shape} w{arrays['w'].shape}; "
          f"{arrays['source']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
