import pytest
import torch

import htsgd.core.sweep as sweep_module
from htsgd.core.compress import COMPRESSORS, compress_sweep
from htsgd.core.config import PRUNING_TYPES, make_config
from htsgd.core.evaluate import evaluate
from htsgd.core.models import build_model
from htsgd.core.sweep import accuracy_sweep
from htsgd.core.train import train

FRACTIONS = [k / 50 for k in range(51)]


def trained(digits, depth: int):
    """A digits FCN after 300 steps of the real training loop (about 90 % test accuracy)."""
    config = make_config({"dataset": "digits", "width": 96, "depth": depth, "lr": 0.05, "batch_size_train": 64,
                          "eval_freq": 300, "iterations": 300, "convergence_accuracy": 100.0, "seed": 3})
    return train(config, digits, progress=False)["model"].eval()


@pytest.fixture(scope="module")
def one_hidden_layer(digits):
    return trained(digits, depth=2)


@pytest.fixture(scope="module")
def two_hidden_layers(digits):
    return trained(digits, depth=3)


@pytest.fixture(scope="module")
def examples(digits):
    """Both splits, 1797 images: more examples to disagree on than the test split's 360."""
    return torch.cat([digits.train_x, digits.test_x]), torch.cat([digits.train_y, digits.test_y])


def direct(model, compressor, inputs, labels, pruning_type="filter"):
    """(share removed, test accuracy) of each compressed copy, evaluated as a whole network."""
    return [(c.removed_share, evaluate(c.model, inputs, labels)[1])
            for c in compress_sweep(model, compressor, FRACTIONS, pruning_type)]


@pytest.mark.parametrize("pruning_type", PRUNING_TYPES)
@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_a_trained_network_sweeps_to_the_accuracies_of_direct_evaluation(one_hidden_layer, examples, compressor,
                                                                        pruning_type):
    inputs, labels = examples
    fast = accuracy_sweep(one_hidden_layer, compressor, FRACTIONS, inputs, labels, pruning_type)
    assert [p["fraction"] for p in fast] == FRACTIONS
    for point, (removed, accuracy) in zip(fast, direct(one_hidden_layer, compressor, inputs, labels, pruning_type)):
        assert point["removed"] == removed
        # an accuracy can differ only by examples counted as near-ties, and these are rare
        assert abs(point["test_acc"] - accuracy) * len(labels) / 100 <= point["ties"] + 1e-6, (point, accuracy)
        assert point["ties"] <= len(labels) // 200
    accuracies = [p["test_acc"] for p in fast]
    assert accuracies[0] > 85 and accuracies[-1] == 100.0 * (labels == 0).sum().item() / len(labels)


def test_the_one_hidden_layer_network_never_builds_a_compressed_copy(one_hidden_layer, examples, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a compressed copy was built or evaluated")

    monkeypatch.setattr(sweep_module, "compress_sweep", refuse)
    monkeypatch.setattr(sweep_module, "evaluate", refuse)
    for compressor in COMPRESSORS:
        assert len(accuracy_sweep(one_hidden_layer, compressor, FRACTIONS, *examples)) == len(FRACTIONS)


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_a_deeper_network_is_evaluated_directly(two_hidden_layers, digits, compressor):
    model = two_hidden_layers
    fast = accuracy_sweep(model, compressor, FRACTIONS, digits.test_x, digits.test_y)
    expected = direct(model, compressor, digits.test_x, digits.test_y)
    assert [(p["removed"], p["test_acc"]) for p in fast] == expected
    assert {p["ties"] for p in fast} == {0}


def test_exact_ties_are_counted_and_resolved_as_direct_evaluation_resolves_them(digits):
    """Classes 0 and 1 get the same output row, so their logits are equal: where they are the largest, argmax
    picks class 0 in both evaluations, and the sweep counts the example as a tie."""
    torch.manual_seed(0)
    model = build_model("fcn", (1, 8, 8), 10, 32, 2).eval()
    with torch.no_grad():
        model.output.weight[1] = model.output.weight[0]
    x, zeros = digits.test_x, torch.zeros_like(digits.test_y)
    for compressor in COMPRESSORS:
        swept = accuracy_sweep(model, compressor, [0.0, 0.5], x, zeros)
        for point, compressed in zip(swept, compress_sweep(model, compressor, [0.0, 0.5])):
            with torch.no_grad():
                predicted_zero = (compressed.model(x).argmax(1) == 0).sum().item()
            assert predicted_zero > 0
            assert point["test_acc"] == evaluate(compressed.model, x, zeros)[1] == 100 * predicted_zero / len(x)
            assert point["ties"] >= predicted_zero


def test_fractions_and_compressors_are_checked(one_hidden_layer, digits):
    with pytest.raises(ValueError, match="unknown compressor 'svd'"):
        accuracy_sweep(one_hidden_layer, "svd", [0.5], digits.test_x, digits.test_y)
    with pytest.raises(ValueError, match=r"fraction must be a number in \[0, 1\]"):
        accuracy_sweep(one_hidden_layer, "rank", [0.5, 1.5], digits.test_x, digits.test_y)
