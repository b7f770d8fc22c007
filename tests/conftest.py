"""Shared fixtures: the embedded digits data, and tiny datasets in torchvision's own on-disk formats."""

import pickle
import textwrap

import numpy as np
import pytest
import torch

from htsgd.core.data import load


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` need CUDA (make test-gpu runs them): skipped, and said so, without a device."""
    if not torch.cuda.is_available():
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device (make test-gpu on a GPU machine)"))


@pytest.fixture
def interrupted(monkeypatch):
    """`with interrupted(step):` a run that gets there is stopped by KeyboardInterrupt, as a kill would stop it."""
    import contextlib

    import htsgd.core.train as train_module

    record = train_module._record

    @contextlib.contextmanager
    def at(step):
        def crashing(s, model, data):
            if s == step:
                raise KeyboardInterrupt
            return record(s, model, data)

        monkeypatch.setattr(train_module, "_record", crashing)
        try:
            with pytest.raises(KeyboardInterrupt):
                yield
        finally:
            monkeypatch.setattr(train_module, "_record", record)

    return at


@pytest.fixture(scope="session")
def digits():
    return load("digits")


def write_idx(path, array: np.ndarray):
    """An MNIST idx file: magic (0, 0, dtype 0x08 = ubyte, ndim), big-endian sizes, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def tiny_mnist_root(tmp_path):
    """MNIST and FashionMNIST folders, 20 train and 10 test 28x28 images each, as torchvision reads them."""
    rng = np.random.default_rng(0)
    for folder in ("MNIST", "FashionMNIST"):
        raw = tmp_path / folder / "raw"
        for split, n in (("train", 20), ("t10k", 10)):
            write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
            write_idx(raw / f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
    return tmp_path


def _pickle(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


@pytest.fixture
def tiny_cifar_root(tmp_path, monkeypatch):
    """CIFAR-10 and CIFAR-100 python-version folders with a handful of images each.

    torchvision checks the real files' MD5 sums; the tiny files cannot match them, so the
    sums are cleared for the test (the files are otherwise exactly in the real layout).
    """
    import torchvision.datasets as tvd

    rng = np.random.default_rng(0)
    images = lambda n: rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    c10 = tmp_path / "cifar-10-batches-py"
    for i in range(1, 6):
        _pickle(c10 / f"data_batch_{i}", {"data": images(4), "labels": [(i + j) % 10 for j in range(4)]})
    _pickle(c10 / "test_batch", {"data": images(6), "labels": list(range(6))})
    _pickle(c10 / "batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    c100 = tmp_path / "cifar-100-python"
    _pickle(c100 / "train", {"data": images(8), "fine_labels": [99, 0, 1, 2, 3, 4, 5, 6], "coarse_labels": [0] * 8})
    _pickle(c100 / "test", {"data": images(4), "fine_labels": [0, 1, 2, 3], "coarse_labels": [0] * 4})
    _pickle(c100 / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    for cls in (tvd.CIFAR10, tvd.CIFAR100):
        monkeypatch.setattr(cls, "train_list", [[name, None] for name, _ in cls.train_list])
        monkeypatch.setattr(cls, "test_list", [[name, None] for name, _ in cls.test_list])
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": None})
    return tmp_path


@pytest.fixture
def ucr_ecg5000(tmp_path):
    """The UCR archive's ECG5000 layout: label (1..5) first, then 140 values, tab-separated."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "UCR" / "ECG5000"
    folder.mkdir(parents=True)
    for split, n in (("TRAIN", 12), ("TEST", 8)):
        labels = (np.arange(n) % 5 + 1).astype(float)
        table = np.column_stack([labels, rng.normal(size=(n, 140))])
        np.savetxt(folder / f"ECG5000_{split}.tsv", table, delimiter="\t")
    return folder


@pytest.fixture(scope="session")
def htsgd_kernel(tmp_path_factory):
    """The Jupyter kernel papermill runs notebooks with; `make setup` registers it, this makes sure. Under
    pytest-xdist each worker process asks: a lock in the run's shared temporary folder lets one install it."""
    import fcntl
    import subprocess
    import sys

    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    with open(tmp_path_factory.getbasetemp().parent / "htsgd_kernel.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            KernelSpecManager().get_kernel_spec("htsgd")
        except NoSuchKernel:
            subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "htsgd"],
                           check=True)
    return "htsgd"


TINY_GROUP = """
    description: a tiny grid for tests
    timeout: 600
    base: {dataset: digits, width: 48, lr: 0.05, batch_size_train: 256, eval_freq: 5,
           convergence_accuracy: 90.0, iterations: 300, iterate_noise_alpha: 1.75}
    grid:
      - iterate_noise: [0]
      - iterate_noise: [1]
        iterate_noise_scale: [0.01]
    seeds: [1, 2]
"""


@pytest.fixture
def tiny_group(tmp_path):
    """Write params/tiny.yaml: two noise settings x two seeds of a small digits FCN; `replace` edits its text."""
    def write(**replace):
        text = textwrap.dedent(TINY_GROUP)
        for old, new in replace.values():
            assert old in text, old
            text = text.replace(old, new)
        path = tmp_path / "tiny.yaml"
        path.write_text(text)
        return path
    return write


@pytest.fixture(scope="session")
def built(tmp_path_factory, htsgd_kernel):
    """The tiny group run once from nothing by `htsgd run`; tests copy it (`fresh_copy`) before changing anything."""
    from htsgd.pipeline.run import run_groups

    root = tmp_path_factory.mktemp("built")
    params = root / "tiny.yaml"
    params.write_text(textwrap.dedent(TINY_GROUP))  # the same group as the `tiny_group` fixture
    assert run_groups([params], results_dir=root / "results", command="htsgd run tiny.yaml") == 0
    return root


@pytest.fixture
def fresh_copy(built, tmp_path):
    """A copy of the built tiny group: (params file, results folder, group folder)."""
    import shutil

    shutil.copytree(built, tmp_path, dirs_exist_ok=True)
    return tmp_path / "tiny.yaml", tmp_path / "results", tmp_path / "results" / "tiny"


@pytest.fixture
def code_changed(monkeypatch):
    """`code_changed(stage)`: the code of one stage (train, analysis, report) reads as edited since the record."""
    from htsgd.record import digests

    original = digests.python_digest

    def change(stage):
        def edited(name, root=digests.ROOT):
            return original(name, root) + ("-edited" if name == stage else "")

        monkeypatch.setattr(digests, "python_digest", edited)

    return change


@pytest.fixture
def demo_copy(tmp_path):
    """The committed demo record (no weights, as a clone has it) and its params file, copied: a real recorded
    group that tests damage or plan from without training or starting a kernel. (params, results, group folder)"""
    import shutil

    from htsgd.record.digests import ROOT

    shutil.copy(ROOT / "params" / "demo.yaml", tmp_path / "demo.yaml")
    shutil.copytree(ROOT / "results" / "demo", tmp_path / "results" / "demo",
                    ignore=shutil.ignore_patterns("model.pt", "checkpoint.pt", ".locks"))
    return tmp_path / "demo.yaml", tmp_path / "results", tmp_path / "results" / "demo"


@pytest.fixture
def current_demo(demo_copy):
    """`demo_copy`, checked up to date first: on a record older than the code, `htsgd run` would train it again."""
    from htsgd.pipeline.params import load_group
    from htsgd.pipeline.plan import make_plan

    params, results, group = demo_copy
    assert make_plan(load_group(params), group).report_fresh, "the committed demo record is not up to date: make demo"
    return demo_copy


@pytest.fixture
def hand_built(tiny_group, digits):
    """The tiny group (capped at 10 steps) as `htsgd run` leaves its run folders, made in this process without a
    kernel: each run trained into its folder, the train notebook beside it as its executed copy (the code is what
    freshness reads of it). No runs.csv, no analysis. (params, results, group folder)"""
    import shutil

    from htsgd.pipeline.params import load_group
    from htsgd.record.digests import NOTEBOOKS
    from htsgd.record.names import NOTEBOOK
    from htsgd.record.trained_run import train_in_folder

    params = tiny_group(cap=("iterations: 300", "iterations: 10"))
    group = load_group(params)
    group_dir = params.parent / "results" / group.name
    for config_id, config in group.configs.items():
        train_in_folder(config, digits, group_dir / config_id, "cpu", progress=False, command="htsgd run tiny.yaml")
        shutil.copy(NOTEBOOKS / NOTEBOOK, group_dir / config_id / NOTEBOOK)
    return params, group_dir.parent, group_dir
