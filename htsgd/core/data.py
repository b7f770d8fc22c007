"""Datasets as tensors resident on the training device.

The original normalised every sample through a DataLoader on each step; here a dataset is
read once, normalised once and kept on the device, and training batches are index slices
of a fresh permutation every epoch.
"""

import gzip
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .datasets import DATASETS

# Test examples per dataset, from DATASETS: what one image is worth in accuracy points, for the report.
TEST_SET_SIZE = {name: spec.test_size for name, spec in DATASETS.items()}
SUBSET_SEED = 0  # fixes the `train_size` subset; not the run's seed, so all runs share it
ECG5000_FILES = ("X_train.npy", "y_train.npy", "X_test.npy", "y_test.npy")
(ECG5000_LENGTH,) = DATASETS["ecg5000"].input_shape  # values per series
# Where Debian's dataset-fashion-mnist package puts the idx files; used when present.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


class DataUnavailable(UserError):
    """A dataset is neither on disk nor downloadable; the message says what to put where."""


@dataclass
class Data:
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple:
        return tuple(self.train_x.shape[1:])


def load(name: str, data_dir="data", device="cpu", train_size: int = 0) -> Data:
    """Load dataset `name` from `data_dir` (downloading where torchvision can), normalised, on `device`.

    With `train_size` n > 0 the training split is cut to `training_subset`'s n examples; the
    normalisation stays the whole split's, so a subset changes which images are seen, not how.
    """
    train_x, train_y, test_x, test_y = _read(name, data_dir)
    if train_size:
        keep = training_subset(train_y, train_size)
        train_x, train_y = train_x[keep], train_y[keep]
    spec = DATASETS[name]
    if spec.normalization is not None:
        mean, std = (torch.tensor(v).view(-1, 1, 1) for v in spec.normalization)
        train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    tensors = [t.to(device) for t in (train_x.float(), train_y.long(), test_x.float(), test_y.long())]
    return Data(name, *tensors, num_classes=spec.classes)


def training_subset(labels: torch.Tensor, size: int) -> torch.Tensor:
    """The indices (ascending) of a stratified subset of `size` training examples, fixed by SUBSET_SEED alone:
    every seed and every run of a dataset trains on the same images, each class in its share of the split."""
    from sklearn.model_selection import train_test_split

    if not 0 < size <= len(labels):
        raise ValueError(f"train_size = {size}: the training split has {len(labels)} examples")
    if size == len(labels):
        return torch.arange(len(labels))
    kept, _ = train_test_split(np.arange(len(labels)), train_size=size, stratify=labels.numpy(),
                               random_state=SUBSET_SEED)
    return torch.from_numpy(np.sort(kept))


def ensure_available(name: str, data_dir="data"):
    """Download `name` if needed and check its files read; raise DataUnavailable saying what is missing."""
    _read(name, data_dir)


def _read(name, data_dir):
    readers = {"digits": _digits, "mnist": _mnist, "fashion-mnist": _mnist, "cifar10": _cifar,
               "cifar100": _cifar, "ecg5000": _ecg5000}
    if name not in readers:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return readers[name](name, Path(data_dir))


def _digits(name, data_dir):
    """scikit-learn's bundled 8x8 digits with a fixed stratified 80/20 split, raw intensities 0-16.

    `load` then normalises them with DATASETS["digits"].normalization (the training split's pixel mean
    and std), as the original normalises MNIST.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    images = lambda a: torch.from_numpy(a).float().view(-1, 1, 8, 8)
    return images(x_train), torch.from_numpy(y_train), images(x_test), torch.from_numpy(y_test)


def _torchvision(cls, root: Path, folder: str, expected: str):
    """Both splits of a torchvision dataset, downloading if missing; a clear error when that fails."""
    try:
        return [cls(root=str(root), train=train, download=True) for train in (True, False)]
    except (OSError, RuntimeError) as err:  # URLError is an OSError; torchvision raises RuntimeError
        reason = str(err).strip().splitlines()[-1]
        raise DataUnavailable(
            f"dataset files not found in {root / folder} and the download failed ({reason}). "
            f"Expected: {expected}. Download them on a connected machine (torchvision's own "
            f"layout) and copy them there, or point --data_dir at the folder that holds {folder}/."
        ) from None


def _mnist(name, data_dir):
    import torchvision.datasets as tvd

    cls, folder = (tvd.MNIST, "MNIST") if name == "mnist" else (tvd.FashionMNIST, "FashionMNIST")
    raw = data_dir / folder / "raw"
    if name == "fashion-mnist" and DEBIAN_FASHION_MNIST.is_dir() and not any(raw.glob("*ubyte")):
        _unpack_idx(DEBIAN_FASHION_MNIST, raw)
    expected = f"{folder}/raw/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte"
    train, test = _torchvision(cls, data_dir, f"{folder}/raw", expected)
    images = lambda d: (d.data.float() / 255.0).unsqueeze(1)
    return images(train), train.targets, images(test), test.targets


def _unpack_idx(source: Path, raw: Path):
    """Copy gzipped idx files (as Debian ships them) into torchvision's raw folder, unpacked."""
    raw.mkdir(parents=True, exist_ok=True)
    for gz in source.glob("*-ubyte.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)


def _cifar(name, data_dir):
    import torchvision.datasets as tvd

    cls, folder = (tvd.CIFAR10, "cifar-10-batches-py") if name == "cifar10" else (tvd.CIFAR100, "cifar-100-python")
    expected = "data_batch_1..5, test_batch, batches.meta" if name == "cifar10" else "train, test, meta"
    for path in sorted((data_dir / folder).glob("*")):
        _refuse_pickled_code(path)
    train, test = _torchvision(cls, data_dir, folder, expected)
    images = lambda d: torch.from_numpy(d.data).permute(0, 3, 1, 2).float() / 255.0
    labels = lambda d: torch.as_tensor(d.targets)
    return images(train), labels(train), images(test), labels(test)


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Reads a pickle without running it: only the numpy classes CIFAR's batches are made of may load."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")
        return super().find_class(module, name)


def _refuse_pickled_code(path: Path):
    """CIFAR's files are pickles, which can run code when loaded: check one holds only data first."""
    if not path.is_file() or path.suffix in (".html", ".gz"):
        return
    try:
        with open(path, "rb") as f:
            _ArraysOnlyUnpickler(f, encoding="latin1").load()
    except Exception as err:
        raise DataUnavailable(f"{path}: not a plain CIFAR data file ({err}); refusing to load it") from None


def _ecg5000(name, data_dir):
    folder = data_dir / "ECG5000"
    missing = [f for f in ECG5000_FILES if not (folder / f).is_file()]
    if missing:
        raise DataUnavailable(
            f"ECG5000 needs {', '.join(ECG5000_FILES)} in {folder} (missing: {', '.join(missing)}). "
            f"Download ECG5000 from the UCR archive and run: htsgd data ecg5000 --from <folder with "
            f"ECG5000_TRAIN and ECG5000_TEST> --data_dir {data_dir}"
        )
    arrays = {f: _load_npy(folder / f) for f in ECG5000_FILES}
    for split in ("train", "test"):
        x, y = arrays[f"X_{split}.npy"], arrays[f"y_{split}.npy"]
        _check_ecg_split(folder, split, x, y)
    return tuple(torch.from_numpy(arrays[f].astype(np.float32 if f[0] == "X" else np.int64)) for f in ECG5000_FILES)


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        raise DataUnavailable(f"{path}: not a plain numeric .npy array ({err}); object arrays are refused") from None


def _check_ecg_split(folder, split, x, y):
    where = f"{folder}/X_{split}.npy, y_{split}.npy"
    if x.ndim != 2 or x.shape[1] != ECG5000_LENGTH or not np.issubdtype(x.dtype, np.number):
        raise DataUnavailable(f"{where}: X must be a numeric array of shape (N, {ECG5000_LENGTH}), got {x.dtype} {x.shape}")
    if y.shape != (x.shape[0],) or (not np.issubdtype(y.dtype, np.integer) and not np.all(np.mod(y, 1) == 0)):
        raise DataUnavailable(f"{where}: y must hold one integer label per row of X, got {y.dtype} {y.shape}")
    if y.size and (y.min() < 0 or y.max() > 1):
        raise DataUnavailable(
            f"{where}: labels must be 0 (normal) or 1 (abnormal), found {sorted(set(np.unique(y).tolist()))[:6]}; "
            f"make the files with: htsgd data ecg5000 --from <UCR folder>"
        )


def read_ucr_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one UCR-archive file (.tsv, .txt or .arff): the class label first (last in ARFF), then the series."""
    if path.suffix == ".arff":
        lines = path.read_text().splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
        table = np.array([[float(v) for v in line.split(",")] for line in lines[start:] if line.strip()])
        return table[:, :-1], table[:, -1]
    table = np.loadtxt(path, ndmin=2)
    return table[:, 1:], table[:, 0]


def prepare_ecg5000(source: Path, data_dir: Path) -> Path:
    """Write ECG5000's four .npy files from the UCR archive's train/test files, as a binary task.

    The paper does not say how it made ECG5000 binary; we read it as normal heartbeat (UCR class 1,
    label 0) against all four abnormal classes (label 1).
    """
    source, out = Path(source), Path(data_dir) / "ECG5000"
    out.mkdir(parents=True, exist_ok=True)
    for split in ("TRAIN", "TEST"):
        found = [source / f"ECG5000_{split}{ext}" for ext in (".tsv", ".txt", ".arff")]
        path = next((p for p in found if p.is_file()), None)
        if path is None:
            raise DataUnavailable(f"{source}: none of {', '.join(p.name for p in found)} found")
        x, label = read_ucr_split(path)
        if x.shape[1] != ECG5000_LENGTH:
            raise DataUnavailable(f"{path}: expected {ECG5000_LENGTH} values per series, got {x.shape[1]}")
        np.save(out / f"X_{split.lower()}.npy", x.astype(np.float32))
        np.save(out / f"y_{split.lower()}.npy", (label != 1).astype(np.int64))
    return out
