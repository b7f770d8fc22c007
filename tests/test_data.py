import pickle

import numpy as np
import pytest
import torch

from htsgd.cli import main
from htsgd.core.config import ConfigError, make_config
from htsgd.core.data import DataUnavailable, _read, load, prepare_ecg5000, training_subset
from htsgd.core.datasets import DATASETS


def test_digits_split_is_fixed_stratified_and_normalised(digits):
    assert digits.train_x.shape == (1437, 1, 8, 8) and digits.test_x.shape == (360, 1, 8, 8)
    assert torch.bincount(digits.test_y).tolist() == torch.bincount(load("digits").test_y).tolist()
    assert torch.bincount(digits.test_y).min() >= 35  # every class in the test split
    assert torch.equal(load("digits").train_y, digits.train_y)
    (mean,), (std,) = DATASETS["digits"].normalization
    raw = torch.cat([digits.train_x, digits.test_x]) * std + mean  # back to the shipped intensities 0-16
    values = raw.unique()
    assert abs(values.min()) < 1e-4 and abs(values.max() - 16) < 1e-4
    assert torch.allclose(values, values.round(), atol=1e-4)


def test_train_size_is_a_fixed_stratified_subset(digits):
    sub = load("digits", train_size=500)
    assert sub.train_x.shape == (500, 1, 8, 8) and torch.equal(sub.test_x, digits.test_x)
    shares = torch.bincount(sub.train_y, minlength=10) / 500
    whole = torch.bincount(digits.train_y, minlength=10) / len(digits.train_y)
    assert (shares - whole).abs().max() < 0.01  # each class in its share, to rounding
    kept = training_subset(digits.train_y, 500)
    assert torch.equal(sub.train_x, digits.train_x[kept]) and torch.equal(kept, training_subset(digits.train_y, 500))
    assert torch.equal(kept, kept.sort().values) and len(set(kept.tolist())) == 500
    assert torch.equal(training_subset(digits.train_y, len(digits.train_y)), torch.arange(len(digits.train_y)))


def test_train_size_beyond_the_split_is_refused_before_any_compute():
    with pytest.raises(ConfigError, match="train_size = 2000 is more than the 1437 training examples of digits"):
        make_config({"dataset": "digits", "train_size": 2000})


def test_the_digits_spec_is_the_data(digits):
    spec = DATASETS["digits"]
    assert (spec.train_size, spec.test_size) == (len(digits.train_y), len(digits.test_y)) == (1437, 360)
    assert spec.input_shape == digits.input_shape and spec.classes == digits.num_classes == len(digits.train_y.unique())


def test_digits_normalisation_constants_are_the_training_splits():
    train_x, _, test_x, _ = _read("digits", "data")  # raw intensities, before normalisation
    assert train_x.shape == (1437, 1, 8, 8) and train_x.max() == 16  # the training split only, unnormalised
    (mean,), (std,) = DATASETS["digits"].normalization
    assert round(train_x.double().mean().item(), 4) == mean
    assert round(train_x.double().std().item(), 4) == std
    data = load("digits")
    assert abs(data.train_x.mean().item()) < 1e-3 and abs(data.train_x.std().item() - 1) < 1e-3
    assert torch.allclose(data.test_x, (test_x - mean) / std)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_mnist_format_loads_through_torchvision(tiny_mnist_root, name):
    data = load(name, tiny_mnist_root)
    assert data.train_x.shape == (20, 1, 28, 28) and data.test_x.shape == (10, 1, 28, 28)
    assert data.train_x.dtype == torch.float32 and data.train_y.tolist() == [i % 10 for i in range(20)]
    assert (data.input_shape, data.num_classes) == (DATASETS[name].input_shape, DATASETS[name].classes)
    raw = np.frombuffer((tiny_mnist_root / ("MNIST" if name == "mnist" else "FashionMNIST") / "raw" /
                         "train-images-idx3-ubyte").read_bytes()[16:], dtype=np.uint8)
    mean, std = (0.1307, 0.3081) if name == "mnist" else (0.2860, 0.3530)
    expected = (raw[:784].reshape(28, 28) / 255.0 - mean) / std
    assert np.allclose(data.train_x[0, 0].numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("name, n_train, classes", [("cifar10", 20, 10), ("cifar100", 8, 100)])
def test_cifar_format_loads_through_torchvision(tiny_cifar_root, name, n_train, classes):
    data = load(name, tiny_cifar_root)
    assert data.train_x.shape == (n_train, 3, 32, 32) and data.num_classes == classes
    assert data.train_y.max() < classes
    assert (data.input_shape, data.num_classes) == (DATASETS[name].input_shape, DATASETS[name].classes)
    folder = "cifar-10-batches-py/data_batch_1" if name == "cifar10" else "cifar-100-python/train"
    with open(tiny_cifar_root / folder, "rb") as f:
        first = pickle.load(f)["data"][0].reshape(3, 32, 32) / 255.0
    mean = (0.491, 0.482, 0.447) if name == "cifar10" else (0.5071, 0.4867, 0.4408)
    std = (0.247, 0.243, 0.262) if name == "cifar10" else (0.2675, 0.2565, 0.2761)
    expected = (first - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
    assert np.allclose(data.train_x[0].numpy(), expected, atol=1e-5)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_cifar_file_with_code_is_refused(tiny_cifar_root):
    with open(tiny_cifar_root / "cifar-10-batches-py" / "test_batch", "wb") as f:
        pickle.dump({"data": _RunsCode(), "labels": [0]}, f)
    with pytest.raises(DataUnavailable, match="test_batch.*refusing"):
        load("cifar10", tiny_cifar_root)


def test_missing_download_gives_one_clear_error(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)  # behave offline even on a connected machine
    with pytest.raises(DataUnavailable) as err:
        load("mnist", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "train,t10k" in message and "--data_dir" in message


def test_ecg5000_from_ucr_archive_is_binary(ucr_ecg5000, tmp_path):
    assert main(["data", "ecg5000", "--from", str(ucr_ecg5000), "--data_dir", str(tmp_path / "d")]) == 0
    data = load("ecg5000", tmp_path / "d")
    assert data.train_x.shape == (12, 140) and data.test_x.shape == (8, 140) and data.num_classes == 2
    assert (data.input_shape, data.num_classes) == (DATASETS["ecg5000"].input_shape, DATASETS["ecg5000"].classes)
    expected = [0 if i % 5 == 0 else 1 for i in range(12)]  # UCR class 1 (normal) -> 0, classes 2-5 -> 1
    assert data.train_y.tolist() == expected
    table = np.loadtxt(ucr_ecg5000 / "ECG5000_TRAIN.tsv")
    assert np.allclose(data.train_x.numpy(), table[:, 1:], atol=1e-6)


def test_ecg5000_missing_files_named(tmp_path):
    with pytest.raises(DataUnavailable, match="X_train.npy.*htsgd data ecg5000"):
        load("ecg5000", tmp_path)


@pytest.mark.parametrize("bad, message", [
    ({"X_train.npy": np.zeros((3, 7))}, r"shape \(N, 140\)"),
    ({"y_train.npy": np.array([0, 1, 4])}, "labels must be 0"),
    ({"y_train.npy": np.array([0, 1])}, "one integer label per row"),
])
def test_ecg5000_bad_arrays_rejected(tmp_path, bad, message):
    folder = tmp_path / "ECG5000"
    folder.mkdir()
    arrays = {"X_train.npy": np.zeros((3, 140)), "y_train.npy": np.array([0, 1, 0]),
              "X_test.npy": np.zeros((2, 140)), "y_test.npy": np.array([1, 0])}
    for name, array in {**arrays, **bad}.items():
        np.save(folder / name, array)
    with pytest.raises(DataUnavailable, match=message):
        load("ecg5000", tmp_path)


def test_pickled_npy_refused(tmp_path):
    folder = tmp_path / "ECG5000"
    folder.mkdir()
    for name in ("X_train.npy", "y_train.npy", "X_test.npy", "y_test.npy"):
        np.save(folder / name, np.array([_RunsCode()], dtype=object), allow_pickle=True)
    with pytest.raises(DataUnavailable, match="object arrays are refused"):
        load("ecg5000", tmp_path)


def test_prepare_ecg5000_reads_arff(tmp_path):
    src = tmp_path / "arff"
    src.mkdir()
    for split in ("TRAIN", "TEST"):
        rows = "\n".join(",".join(["0.5"] * 140 + [str(c)]) for c in (1, 3))
        (src / f"ECG5000_{split}.arff").write_text(f"@relation ECG5000\n@attribute target {{1,2,3,4,5}}\n@data\n{rows}\n")
    out = prepare_ecg5000(src, tmp_path / "d")
    assert np.load(out / "y_test.npy").tolist() == [0, 1]
