"""What each dataset is, in one place: its classes, input shape, split sizes and normalisation.

Kept free of torch, so that checking a configuration (`config`) needs no heavy import; `data` reads the
files and applies the normalisation, the report weighs one test image by the test split's size.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    classes: int
    input_shape: tuple  # one example's, without the batch dimension
    train_size: int  # examples in the training split: the most `train_size` may take
    test_size: int  # examples in the test split: one image is worth 100 / test_size accuracy points
    # (mean, std) per channel that `data.load` normalises by; None: used as read
    normalization: tuple | None


DATASETS = {
    # digits: scikit-learn's 8x8 images, the 80/20 split of `data._digits`; one scalar mean and std (torch.std,
    # unbiased) over every pixel of its training split (intensities 0-16), rounded to 4 decimals, as MNIST's
    # 0.1307 / 0.3081 are over its training set. tests/test_data.py recomputes them.
    "digits": DatasetSpec(10, (1, 8, 8), 1437, 360, ((4.8861,), (6.0179,))),
    # MNIST and CIFAR: the original's normalisation; Fashion-MNIST: its training set's
    "mnist": DatasetSpec(10, (1, 28, 28), 60000, 10000, ((0.1307,), (0.3081,))),
    "fashion-mnist": DatasetSpec(10, (1, 28, 28), 60000, 10000, ((0.2860,), (0.3530,))),
    "cifar10": DatasetSpec(10, (3, 32, 32), 50000, 10000, ((0.491, 0.482, 0.447), (0.247, 0.243, 0.262))),
    "cifar100": DatasetSpec(100, (3, 32, 32), 50000, 10000, ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761))),
    # ECG5000: UCR's series of 140 values, made binary (normal against abnormal) by `data.prepare_ecg5000`
    "ecg5000": DatasetSpec(2, (140,), 500, 4500, None),
}
