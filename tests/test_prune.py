"""Column pruning (spec section 2, "Pruning"): the selection rule, the masks and the pruning ratio."""

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from torch import nn

from htsgd.core.models import build_model
from htsgd.core.prune import (CRITERION_RATIOS, column_sq_norms, compute_mask, matricize, num_columns_to_prune,
                         prune_model)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _random_weight(kind: str, rows: int, cols: int, seed: int) -> torch.Tensor:
    """A float32 [rows, cols] weight: Gaussian, heavy-tailed, tied or sparse, one column of Theta per row."""
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        w = rng.standard_normal((rows, cols))
    elif kind == "cauchy":  # alpha-stable with alpha = 1: a few rows carry most of the norm
        w = rng.standard_cauchy((rows, cols))
    elif kind == "stable_rows":  # heavy-tailed per-row scale times a Gaussian row, like type-1 noise
        w = rng.standard_normal((rows, cols)) * np.abs(rng.standard_cauchy((rows, 1))) ** 1.5
    elif kind == "ties":  # one integer row times 0, 1 or 2: many equal norms, some zero rows
        w = np.repeat(rng.integers(-2, 3, (1, cols)), rows, axis=0) * rng.integers(0, 3, (rows, 1))
    else:  # "sparse": many exactly zero rows
        w = rng.standard_normal((rows, cols)) * (rng.random((rows, 1)) < 0.3)
    return torch.tensor(w, dtype=torch.float32)


def _exact_shares(weight, keep):
    """Exact removed share of the squared norm, and the share had the next-smallest kept column gone too."""
    sq = [Fraction(v) for v in column_sq_norms(weight).tolist()]  # float64 values, summed exactly
    total = sum(sq)
    removed = [s for s, k in zip(sq, keep) if not k]
    kept = sorted(s for s, k in zip(sq, keep) if k)
    share = sum(removed) / total if total else Fraction(0)
    one_more = (sum(removed) + kept[0]) / total if kept and total else None
    return removed, kept, share, one_more


def _check_rule(weight, amount, metric):
    mask = compute_mask(weight, amount, "mce", metric)
    keep = mask[:, 0].bool().tolist()
    assert torch.equal(mask, mask[:, :1].expand_as(mask)), "whole rows are kept or pruned"
    removed, kept, share, one_more = _exact_shares(weight, keep)
    if removed and kept:
        assert max(removed) <= min(kept), "the smallest columns go first"
    size = (lambda f: math.sqrt(f)) if metric == "frob" else float
    tolerance = 1e-12  # float64 rounding of the cumulative share, relative
    assert size(share) <= amount * (1 + tolerance) + 1e-300
    if one_more is not None:
        assert size(one_more) > amount * (1 - tolerance), "one more column would still fit"
    return len(removed)


@SETTINGS
@given(kind=st.sampled_from(["gaussian", "cauchy", "stable_rows", "ties", "sparse"]),
       rows=st.integers(1, 60), cols=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       amount=st.one_of(st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]), st.floats(0, 1.2)),
       metric=st.sampled_from(["fro_squared", "frob"]))
def test_removed_share_is_within_the_criterion_and_maximal(kind, rows, cols, seed, amount, metric):
    weight = _random_weight(kind, rows, cols, seed)
    assume(torch.isfinite(column_sq_norms(weight)).all())
    _check_rule(weight, amount, metric)


@SETTINGS
@given(values=st.lists(st.integers(-3, 3), min_size=1, max_size=40), cols=st.integers(1, 4),
       amount=st.sampled_from([0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0]),
       metric=st.sampled_from(["fro_squared", "frob"]))
def test_rule_on_integer_weights_with_ties(values, cols, amount, metric):
    rows = max(1, len(values) // cols)
    weight = torch.tensor((values * cols)[: rows * cols], dtype=torch.float32).view(rows, cols)
    _check_rule(weight, amount, metric)


@SETTINGS
@given(st.lists(st.floats(0, 1e6, allow_subnormal=True), min_size=1, max_size=50),
       st.one_of(st.just(0.0), st.floats(1e-200, 1)))  # shares below float64's normal range may underflow
def test_num_columns_to_prune_is_the_largest_prefix(sq_norms, amount):
    norms = torch.tensor(sq_norms, dtype=torch.float64)
    k = num_columns_to_prune(norms, amount)
    ascending = sorted(Fraction(v) for v in norms.tolist())
    total = sum(ascending)
    if total == 0:
        assert k == len(ascending)
        return
    assert sum(ascending[:k]) / total <= amount * (1 + 1e-12)
    if k < len(ascending):
        assert sum(ascending[: k + 1]) / total > amount * (1 - 1e-12)


@pytest.mark.parametrize("k", range(11))
def test_exact_boundary_with_equal_columns(k):
    """Ten equal columns: a share of exactly k/10 is within r = k/10, so exactly k columns go."""
    weight = torch.ones(10, 3)
    assert (compute_mask(weight, k / 10)[:, 0] == 0).sum() == k
    if k:
        assert (compute_mask(weight, k / 10 - 1e-9)[:, 0] == 0).sum() == k - 1
    # parameter_ratio: floor(r * columns), with 0.3 * 10 = 3 and 0.7 * 10 = 7 despite float noise
    assert (compute_mask(weight, k / 10, "parameter_ratio")[:, 0] == 0).sum() == k


def test_parameter_ratio_rounds_down():
    norms = torch.arange(1.0, 8.0)  # 7 columns
    assert [num_columns_to_prune(norms, r, "parameter_ratio") for r in CRITERION_RATIOS["parameter_ratio"]] == \
        [math.floor(r * 7 + 1e-9) for r in CRITERION_RATIOS["parameter_ratio"]] == [0, 0, 1, 2, 2, 3, 4, 4, 5, 6, 7]
    assert num_columns_to_prune(torch.tensor([5.0, 1.0, 3.0]), 0.34, "parameter_ratio") == 1


def test_frob_is_the_unsquared_ratio():
    norms = torch.tensor([1.0, 3.0, 96.0])  # shares of the squared norm: 0.01, 0.04, 1
    assert num_columns_to_prune(norms, 0.1, "mce", "fro_squared") == 2  # 0.04 <= 0.1
    assert num_columns_to_prune(norms, 0.1, "mce", "frob") == 1  # sqrt(0.01) = 0.1 <= 0.1; sqrt(0.04) = 0.2
    assert num_columns_to_prune(norms, 0.2, "mce", "frob") == 2


def test_zero_and_non_finite_weights():
    assert num_columns_to_prune(torch.zeros(4), 0.0) == 4  # nothing lost by removing zero columns
    assert num_columns_to_prune(torch.tensor([0.0, 0.0, 1.0, 1.0]), 0.0) == 2
    assert num_columns_to_prune(torch.tensor([1.0, float("nan"), 2.0]), 0.5) == 0
    assert num_columns_to_prune(torch.tensor([1.0, float("inf"), 2.0]), 0.5) == 0
    with pytest.raises(ValueError):
        num_columns_to_prune(torch.ones(3), -0.1)
    with pytest.raises(ValueError):
        num_columns_to_prune(torch.ones(3), 1.5, "parameter_ratio")
    with pytest.raises(ValueError):
        compute_mask(torch.ones(3, 3), 0.1, "magnitude")


# A hand-written convolution weight [out=2, in=2, 2, 2] (2x2 kernels); squared norms written beside each kernel.
HAND_CONV = torch.tensor([
    [[[1.0, 0.0], [0.0, 0.0]],   # (0, 0): 1
     [[0.0, 0.0], [0.0, 0.0]]],  # (0, 1): 0      filter 0: 1
    [[[2.0, 0.0], [0.0, 0.0]],   # (1, 0): 4
     [[0.0, 0.0], [0.0, 3.0]]],  # (1, 1): 9      filter 1: 13     total 14
])


def _conv_net():
    """first conv -> the hand-written conv (a hidden layer) -> output Linear."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 2, bias=False), nn.ReLU(), nn.Conv2d(2, 2, 2, bias=False), nn.ReLU(),
                        nn.Flatten(), nn.Linear(2 * 3 * 3, 3, bias=False))
    with torch.no_grad():
        net[2].weight.copy_(HAND_CONV)
    return net


def test_matricize_conv():
    assert matricize(HAND_CONV, "filter").shape == (2, 8)
    assert matricize(HAND_CONV, "kernel").shape == (4, 4)
    assert column_sq_norms(HAND_CONV, "filter").tolist() == [1.0, 13.0]
    assert column_sq_norms(HAND_CONV, "kernel").tolist() == [1.0, 0.0, 4.0, 9.0]


def test_hand_computed_filter_pruning():
    # shares of the squared norm, smallest first: filter 0 -> 1/14 = 0.071 <= 0.1; then 14/14
    result = prune_model(_conv_net(), 0.1, "mce", "fro_squared", "filter")
    expected = HAND_CONV.clone()
    expected[0] = 0.0
    assert torch.equal(result.model[2].weight, expected)
    layer = result.layers[1]
    assert (layer.name, layer.role, layer.columns, layer.columns_removed, layer.parameters, layer.parameters_zeroed) == \
        ("2", "hidden", 2, 1, 16, 8)
    assert layer.removed_sq_norm_share == pytest.approx(1 / 14)
    # frob: sqrt(1/14) = 0.27 > 0.1 keeps both filters; parameter_ratio 0.5 removes the smaller one
    assert torch.equal(prune_model(_conv_net(), 0.1, "mce", "frob", "filter").model[2].weight, HAND_CONV)
    assert torch.equal(prune_model(_conv_net(), 0.5, "parameter_ratio", pruning_type="filter").model[2].weight, expected)


def test_hand_computed_kernel_pruning():
    # kernels smallest first: (0,1) 0, (0,0) 1, (1,0) 4, (1,1) 9; cumulative shares 0, 1/14, 5/14, 1
    at_01 = prune_model(_conv_net(), 0.1, "mce", "fro_squared", "kernel").model[2].weight
    expected = HAND_CONV.clone()
    expected[0, 0] = 0.0
    expected[0, 1] = 0.0
    assert torch.equal(at_01, expected)
    at_04 = prune_model(_conv_net(), 0.4, "mce", "fro_squared", "kernel")
    expected[1, 0] = 0.0  # only kernel (1, 1) is left
    assert torch.equal(at_04.model[2].weight, expected)
    assert torch.equal(at_04.model[2].weight != 0, torch.tensor([[[[0, 0], [0, 0]], [[0, 0], [0, 0]]],
                                                                  [[[0, 0], [0, 0]], [[0, 0], [0, 1]]]]).bool())
    layer = at_04.layers[1]
    assert (layer.columns, layer.columns_removed, layer.parameters_zeroed) == (4, 3, 12)
    assert layer.removed_sq_norm_share == pytest.approx(5 / 14)


@pytest.mark.parametrize("pruning_type", ["filter", "kernel"])
def test_first_conv_and_output_untouched_and_ratio(pruning_type):
    net = _conv_net()
    result = prune_model(net, 1.0, "parameter_ratio", pruning_type=pruning_type)  # every hidden column goes
    assert torch.equal(result.model[0].weight, net[0].weight)
    assert torch.equal(result.model[5].weight, net[5].weight)
    assert torch.equal(result.model[2].weight, torch.zeros_like(HAND_CONV))
    assert [(layer.role, layer.columns_removed, layer.parameters_zeroed) for layer in result.layers] == \
        [("first_conv", 0, 0), ("hidden", 2 if pruning_type == "filter" else 4, 16), ("output", 0, 0)]
    first, hidden, output = 8, 16, 54
    assert (result.parameters, result.parameters_zeroed, result.output_parameters) == (first + hidden + output, 16, output)
    # the first convolution counts as kept: in the denominator, never zeroed
    assert result.pruning_ratio(ignore_last_layer=True) == 16 / (first + hidden)
    assert result.pruning_ratio(ignore_last_layer=False) == 16 / (first + hidden + output)


def test_vgg_roles_by_position():
    model = build_model("vgg11_wide", (3, 32, 32), 10)
    mask_layers = prune_model(model, 0.0, "parameter_ratio").layers
    assert [layer.role for layer in mask_layers] == ["first_conv"] + ["hidden"] * 7 + ["output"]


def _heavy_fcn(width, depth=2, classes=10, seed=0):
    torch.manual_seed(seed)
    model = build_model("fcn", (1, 8, 8), classes, width, depth)
    with torch.no_grad():  # heavy-tailed row scales, as after type-1 noise
        for layer in model.hidden:
            layer.weight.mul_(torch.distributions.Cauchy(0.0, 1.0).sample((layer.weight.shape[0], 1)).abs())
    return model


@pytest.mark.parametrize("criterion, amounts", [("mce", [0.0, 0.05, 0.1, 0.3]), ("parameter_ratio", CRITERION_RATIOS["parameter_ratio"])])
@pytest.mark.parametrize("width", [10, 37, 200])
def test_one_hidden_layer_ratio_is_fraction_of_units(criterion, amounts, width):
    model = _heavy_fcn(width, classes=10)  # width 10 = class count: roles by position, not by shape
    for amount in amounts:
        result = prune_model(model, amount, criterion)
        hidden = result.layers[0]
        assert hidden.columns == width
        pruned_rows = (result.model.hidden[0].weight == 0).all(dim=1)
        assert int(pruned_rows.sum()) == hidden.columns_removed
        assert result.pruning_ratio(ignore_last_layer=True) == hidden.columns_removed / width
        assert result.pruning_ratio(ignore_last_layer=False) == hidden.columns_removed * 64 / (width * 64 + width * 10)
        assert torch.equal(result.model.output.weight, model.output.weight)
        if criterion == "parameter_ratio":
            assert hidden.columns_removed == math.floor(round(amount * width, 9))


def test_deep_fcn_prunes_every_hidden_layer():
    model = _heavy_fcn(50, depth=4)
    result = prune_model(model, 0.1)
    assert [layer.role for layer in result.layers] == ["hidden"] * 3 + ["output"]
    assert all(layer.columns_removed > 0 for layer in result.layers[:3])
    assert result.parameters_zeroed == sum(layer.columns_removed * layer.parameters // layer.columns for layer in result.layers)
    assert result.pruning_ratio_without_last_layer == result.parameters_zeroed / (64 * 50 + 2 * 50 * 50)


def test_original_model_unchanged():
    model = _heavy_fcn(100, depth=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = prune_model(model, 0.5, "parameter_ratio")
    assert result.model is not model
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not torch.equal(result.model.hidden[0].weight, model.hidden[0].weight)
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(model.parameters(), result.model.parameters()))


def test_compute_mask_shape_and_dtype():
    weight = torch.randn(6, 4, dtype=torch.float64)
    mask = compute_mask(weight, 0.5, "parameter_ratio")
    assert mask.shape == weight.shape and mask.dtype == weight.dtype
    assert mask[:, 0].sum() == 3 and set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(compute_mask(HAND_CONV, 0.4, pruning_type="kernel"),
                       torch.tensor([0.0, 0.0, 0.0, 1.0]).view(2, 2, 1, 1).expand(2, 2, 2, 2))
