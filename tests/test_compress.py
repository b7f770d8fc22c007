import math

import pytest
import torch

from htsgd.core.compress import (COMPRESSORS, compress_sweep, factorisation_parameters, truncate_rank, truncation_rank,
                                 zero_smallest_entries)
from htsgd.core.models import build_model, hidden_layers
from htsgd.core.prune import prune_model


def fcn(width=40, depth=2, seed=0):
    torch.manual_seed(seed)
    return build_model("fcn", (1, 8, 8), 10, width, depth)


def hidden_weight(model):
    return hidden_layers(model)[0][1].weight


def compress_model(model, compressor, fraction):
    """The sweep's compression at one fraction."""
    return next(compress_sweep(model, compressor, [fraction]))


def test_a_factorisation_stores_k_times_rows_plus_cols():
    assert factorisation_parameters(3, 10, 20) == 90
    assert truncation_rank(0.0, 40, 64) == 24  # 40 * 64 / 104 = 24.6
    assert truncation_rank(0.5, 40, 64) == 12  # 0.5 * 2560 / 104 = 12.3
    assert truncation_rank(1.0, 40, 64) == 0
    for fraction in (0.02, 0.3, 0.77):  # the factorisation never keeps more than the target allows
        k = truncation_rank(fraction, 40, 64)
        assert factorisation_parameters(k, 40, 64) <= (1 - fraction) * 40 * 64 < factorisation_parameters(k + 1, 40, 64)


def test_a_rank_r_matrix_truncates_to_r_without_loss():
    rows, cols, r = 40, 64, 5
    torch.manual_seed(1)
    low_rank = (torch.randn(rows, r) @ torch.randn(r, cols)).float()
    fraction = 1 - factorisation_parameters(r, rows, cols) / (rows * cols)  # exactly the budget of rank r
    assert truncation_rank(fraction, rows, cols) == r
    model = fcn()
    hidden_weight(model).data.copy_(low_rank)
    result = compress_model(model, "rank", fraction)
    assert torch.allclose(hidden_weight(result.model), low_rank, atol=1e-4)
    assert result.removed == rows * cols - r * (rows + cols) and result.parameters == rows * cols
    assert result.removed_share == pytest.approx(fraction)
    # one rank fewer loses something
    fewer = compress_model(model, "rank", 1 - factorisation_parameters(r - 1, rows, cols) / (rows * cols))
    assert (hidden_weight(fewer.model) - low_rank).norm() > 1e-2 * low_rank.norm()


def test_rank_truncation_keeps_the_largest_singular_values():
    weight = torch.diag(torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0]))
    removed = truncate_rank(weight, 1 - factorisation_parameters(2, 5, 5) / 25)
    assert removed == 25 - 20
    assert torch.allclose(weight, torch.diag(torch.tensor([5.0, 4.0, 0.0, 0.0, 0.0])), atol=1e-6)


def test_rank_at_fraction_zero_leaves_the_layer_and_any_cut_saves_at_least_the_target():
    model = fcn()
    before = hidden_weight(model).clone()
    untouched = compress_model(model, "rank", 0.0)
    assert untouched.removed == 0 and torch.equal(hidden_weight(untouched.model), before)
    for fraction in (0.001, 0.02, 0.5, 0.98):
        assert compress_model(model, "rank", fraction).removed_share >= fraction
    assert torch.equal(hidden_weight(model), before)


def test_k_exact_zeros_prune_k_entries_for_free():
    model = fcn()
    weight = hidden_weight(model)
    k = 7
    positions = torch.randperm(weight.numel(), generator=torch.Generator().manual_seed(2))[:k]
    weight.data.view(-1)[positions] = 0.0
    before = weight.clone()
    result = compress_model(model, "entries", k / weight.numel())
    assert result.removed == k and torch.equal(hidden_weight(result.model), before)
    # one more entry costs the smallest non-zero magnitude
    more = compress_model(model, "entries", (k + 1) / weight.numel())
    changed = hidden_weight(more.model) != before
    assert int(changed.sum()) == 1
    smallest = before.abs()[before != 0].min()
    assert before[changed].abs().item() == smallest.item()


def test_entries_zero_the_smallest_magnitudes_rounding_down():
    weight = torch.tensor([[0.5, -0.1, 0.3], [-0.2, 0.05, 1.0]])
    assert zero_smallest_entries(weight, 0.5) == 3
    assert torch.equal(weight, torch.tensor([[0.5, 0.0, 0.3], [0.0, 0.0, 1.0]]))
    assert zero_smallest_entries(weight.clone(), 0.49) == 2


def test_columns_are_the_pruning_of_whole_hidden_units():
    model = fcn(width=50)
    result = compress_model(model, "columns", 0.3)
    pruned = prune_model(model, 0.3, "parameter_ratio")
    assert torch.equal(hidden_weight(result.model), hidden_weight(pruned.model))
    assert result.removed == 15 * 64 and result.removed_share == pytest.approx(0.3)


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_every_hidden_layer_and_nothing_else_is_compressed(compressor):
    model = fcn(width=30, depth=3)
    result = compress_model(model, compressor, 0.5)
    before, after = dict(model.named_parameters()), dict(result.model.named_parameters())
    hidden = {f"{name}.weight" for name, _ in hidden_layers(model)}
    assert len(hidden) == 2
    for name in before:
        assert torch.equal(before[name], after[name]) == (name not in hidden), name
    assert result.parameters == 30 * 64 + 30 * 30
    assert result.removed_share >= 0.5 - 1 / 30 if compressor != "rank" else result.removed_share >= 0.5
    assert not math.isnan(result.removed_share)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown compressor 'svd'"):
        compress_model(fcn(), "svd", 0.5)
    with pytest.raises(ValueError, match=r"fraction must be a number in \[0, 1\]"):
        compress_model(fcn(), "rank", 1.5)


def test_the_analysis_names_a_metric_for_every_compressor():
    from htsgd.analysis.baseline import EQUAL_ACCURACY_METRICS

    assert tuple(EQUAL_ACCURACY_METRICS) == COMPRESSORS


@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_a_sweep_gives_what_each_fraction_alone_gives(compressor):
    model = fcn(depth=3)
    fractions = (0.0, 0.02, 0.5, 0.98, 1.0)
    for swept, fraction in zip(compress_sweep(model, compressor, fractions), fractions):
        alone = compress_model(model, compressor, fraction)
        assert swept.fraction == fraction and swept.removed == alone.removed
        for (_, a), (_, b) in zip(hidden_layers(swept.model), hidden_layers(alone.model)):
            assert torch.equal(a.weight, b.weight)
