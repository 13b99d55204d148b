"""The LSTM-shaped case of the mac_array testbench on real test-set images.

The cocotb coroutine (``sim/test_mac_array.py::run_mac_array_lstm``) reads the images from an
``.npy`` file; this side provisions the dataset through :mod:`experiments.data` and writes that
file, so the testbench imports nothing of the experiments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiments import data as exp_data
from sim.lib.common import full_run, run_cocotb
from sim.test_mac_array import array_parameters

IMAGES = "t10k-images-idx3-ubyte"


def _images_file(tmp: Path, count: int = 8) -> tuple[Path, str]:
    """The first ``count`` MNIST test images as ``.npy`` (Fashion-MNIST when MNIST cannot be
    provisioned, and the run says so) and a description of where they came from."""
    root = exp_data.data_dir()
    try:
        exp_data.ensure("mnist")
        dataset, raw = "mnist", exp_data.provision_mnist(root)
    except exp_data.DataError as err:
        print(f"MNIST unavailable, the LSTM case uses Fashion-MNIST rows: {err}")
        exp_data.ensure("fashion")
        dataset, raw = "fashion", exp_data.provision_fashion(root)
    path = raw / IMAGES
    images = exp_data.parse_idx(path.read_bytes(), str(path))
    out = tmp / "images.npy"
    np.save(out, images[:count].copy())
    return out, f"{exp_data.DATASETS[dataset].title} t10k ({path.name})"


def _run_lstm(tmp: Path, multiplier: int, size: str) -> None:
    images, source = _images_file(tmp)
    run_cocotb("test_mac_array", "mac_array",
               parameters=array_parameters("bf16", 4, 4, multiplier=multiplier),
               extra_env={"LMUL_TB_IMAGES": str(images), "LMUL_TB_IMAGES_SOURCE": source,
                          "LMUL_TB_LSTM_SIZE": size},
               build_tag=f"bf16-4x4-mult{multiplier}-lstm-{size}", testcase="run_mac_array_lstm")


def test_mac_array_lstm(tmp_path: Path) -> None:
    """A 4 x 32 slice of the gate product (4 images, 32 of the 512 gate outputs)."""
    _run_lstm(tmp_path, 0, "slice")


@pytest.mark.skipif(not full_run(), reason="large variant: set LMUL_FULL=1")
def test_mac_array_lstm_full(tmp_path: Path) -> None:
    """8 images x all 512 gate outputs."""
    _run_lstm(tmp_path, 0, "full")


@pytest.mark.skipif(not full_run(), reason="large variant: set LMUL_FULL=1")
def test_mac_array_lstm_full_exact_multiplier(tmp_path: Path) -> None:
    """The full product with MULTIPLIER=1, against lmul.matmul(..., multiplier="exact")."""
    _run_lstm(tmp_path, 1, "full")
