"""Magnitude pruning of whole columns, as in the seed's `analyze.py` (spec section 2, "Pruning").

Every prunable weight (`models.hidden_layers`: not the output layer, not a first convolution,
never a 1-D parameter) is matricized into the columns of the paper's Theta:

* `Linear` weight `[out, in]`: one column per hidden unit, i.e. per *row* of the torch weight;
* `Conv2d` weight `[out, in, k, k]` with `pruning_type="filter"`: one column per output filter,
  `in*k*k` long; with `pruning_type="kernel"`: one column per `(out, in)` kernel, `k*k` long.

The columns are sorted by their l2 norm and the largest set of smallest columns whose removal
stays within the criterion `amount` (r) is set to zero:

* `mce` with `fro_squared`: sum(removed squared norms) / ||W||_F^2 <= r (the paper's r = 0.1);
* `mce` with `frob`: the unsquared ratio sqrt(sum(removed squared norms)) / ||W||_F <= r;
* `parameter_ratio`: a fixed share r of the columns, floor(r * columns) of them (rounded down,
  so the share removed never exceeds r; float noise below 1e-9 is ignored, so 0.7 * 10 is 7).

The cumulative shares are computed in float64 (squared norms of float32 weights are exact in
float64; they are summed in ascending order) and compared with `<=`: a column whose removal
brings the share exactly to r is removed. Columns of zero norm cost nothing and are removed
by `mce` even at r = 0, a weight that is entirely zero loses every column, and a weight with a
non-finite entry (a diverged run) loses no column under `mce`. Ties in norm are broken by
column position (stable sort), which does not change how many columns go.

Nothing is retrained, and the model passed in is never changed: `prune_model` returns a pruned
copy with an account per layer. The pruning ratio is the share of the model's parameters that
were zeroed, in removed columns (entries that happen to be zero in a kept column do not count).
Every parameter is in the denominator, including those that are never pruned (the first
convolution, 1-D parameters); with `ignore_last_layer` the output layer is left out of both
counts. The original counted the first convolution's parameters as pruned; here they count as
kept. For a one-hidden-layer FCN with `ignore_last_layer` the ratio is the fraction of hidden
units pruned. The names follow `torch.nn.utils.prune` (`amount`, `compute_mask`, masks with 1
for kept and 0 for pruned entries).
"""

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .config import COMPRESSION_ERROR_METRICS, PRUNING_TYPES
from .models import hidden_layers, weight_layers

# Convolutions are matricized one column per output filter unless asked otherwise: the matricization of the
# paper's results (the authors' README) and of every group's analysis (a params file's default is the first
# allowed value). Fully connected layers have one column per unit either way. The original's analyze.py
# defaulted to kernel.
DEFAULT_PRUNING_TYPE = PRUNING_TYPES[0]
PRUNING_CRITERIA = ("mce", "parameter_ratio")
MCE_RATIO = 0.1  # the paper's criterion: the removed squared norm is at most 10 % of each layer's
# The criterion values the analysis evaluates: unpruned (0) and the paper's r for mce; i / 10 for
# parameter_ratio (not 0.1 * i: 0.3 rather than 0.30000000000000004).
CRITERION_RATIOS = {"mce": (0.0, MCE_RATIO), "parameter_ratio": tuple(i / 10 for i in range(11))}


def _check(criterion: str, metric: str, pruning_type: str, amount: float | None = None):
    if criterion not in PRUNING_CRITERIA:
        raise ValueError(f"unknown pruning criterion {criterion!r}; choose one of {', '.join(PRUNING_CRITERIA)}")
    if metric not in COMPRESSION_ERROR_METRICS:
        raise ValueError(f"unknown compression error metric {metric!r}; choose one of {', '.join(COMPRESSION_ERROR_METRICS)}")
    if pruning_type not in PRUNING_TYPES:
        raise ValueError(f"unknown pruning type {pruning_type!r}; choose one of {', '.join(PRUNING_TYPES)}")
    if amount is not None:
        if not (isinstance(amount, (int, float)) and math.isfinite(amount) and amount >= 0):
            raise ValueError(f"amount must be a finite number >= 0, got {amount!r}")
        if criterion == "parameter_ratio" and amount > 1:
            raise ValueError(f"amount for parameter_ratio is a share of the columns in [0, 1], got {amount!r}")


def matricize(weight: torch.Tensor, pruning_type: str = DEFAULT_PRUNING_TYPE) -> torch.Tensor:
    """The weight as a 2-D view whose *rows* are the columns of the paper's Theta.

    Linear `[out, in]`: itself (one row per hidden unit). Conv `[out, in, k, k]`: `[out, in*k*k]`
    for `filter`, `[out*in, k*k]` for `kernel`.
    """
    if pruning_type not in PRUNING_TYPES:
        raise ValueError(f"unknown pruning type {pruning_type!r}; choose one of {', '.join(PRUNING_TYPES)}")
    if weight.dim() < 2:
        raise ValueError(f"1-D parameters are never pruned (got shape {tuple(weight.shape)})")
    if weight.dim() == 2 or pruning_type == "filter":
        return weight.reshape(weight.shape[0], -1)
    return weight.reshape(weight.shape[0] * weight.shape[1], -1)


def column_sq_norms(weight: torch.Tensor, pruning_type: str = DEFAULT_PRUNING_TYPE) -> torch.Tensor:
    """Squared l2 norm of every column of the matricized weight, in float64."""
    return matricize(weight.detach(), pruning_type).double().square().sum(dim=1)


def num_columns_to_prune(sq_norms: torch.Tensor, amount: float, criterion: str = "mce",
                         metric: str = "fro_squared") -> int:
    """How many of the smallest columns (squared norms `sq_norms`, any order) the criterion removes."""
    _check(criterion, metric, DEFAULT_PRUNING_TYPE, amount)
    ascending = torch.sort(sq_norms.detach().double().flatten(), stable=True).values
    return _count(ascending, amount, criterion, metric)


def _count(ascending: torch.Tensor, amount: float, criterion: str, metric: str) -> int:
    n = ascending.numel()
    if criterion == "parameter_ratio":
        return min(n, math.floor(round(amount * n, 9)))
    if n == 0:
        return 0
    cumulative = torch.cumsum(ascending, dim=0)  # float64, summed smallest first
    total = cumulative[-1]
    if not torch.isfinite(total):
        return 0
    if total == 0:
        return n
    if amount == 0:  # only zero columns fit (a share can underflow to 0 in float64; the sum cannot)
        return int((cumulative == 0).sum())
    share = cumulative / total  # non-decreasing: a cumulative sum of non-negative terms over a positive constant
    if metric == "frob":
        share = share.sqrt()
    # Columns whose cumulative share is <= amount: the largest prefix that stays within the criterion.
    return int(torch.searchsorted(share, torch.tensor([float(amount)], dtype=torch.float64), right=True).item())


def _keep_columns(weight, amount, criterion, metric, pruning_type):
    """(keep, sq_norms): a bool per column (False = pruned) and the columns' squared norms."""
    sq_norms = column_sq_norms(weight, pruning_type)
    ascending, order = torch.sort(sq_norms, stable=True)  # NaN norms sort last: never among the first k
    k = _count(ascending, amount, criterion, metric)
    keep = torch.ones_like(sq_norms, dtype=torch.bool)
    keep[order[:k]] = False
    return keep, sq_norms


def _expand(keep: torch.Tensor, weight: torch.Tensor, pruning_type: str) -> torch.Tensor:
    """A per-column bool as a bool of the weight's shape."""
    if weight.dim() == 2 or pruning_type == "filter":
        shape = (weight.shape[0],) + (1,) * (weight.dim() - 1)
    else:
        shape = tuple(weight.shape[:2]) + (1,) * (weight.dim() - 2)
    return keep.view(shape).expand_as(weight)


def compute_mask(weight: torch.Tensor, amount: float, criterion: str = "mce", metric: str = "fro_squared",
                 pruning_type: str = DEFAULT_PRUNING_TYPE) -> torch.Tensor:
    """The pruning mask of one weight: the weight's shape and dtype, 1 where kept, 0 where pruned."""
    _check(criterion, metric, pruning_type, amount)
    keep, _ = _keep_columns(weight, amount, criterion, metric, pruning_type)
    return _expand(keep.to(weight.device), weight, pruning_type).to(weight.dtype)


@dataclass(frozen=True)
class LayerPruning:
    """What pruning did to one weight layer's `weight` (every Linear and Conv2d is listed)."""

    name: str  # module name, e.g. "hidden.0" (its parameter is "hidden.0.weight")
    role: str  # "hidden" (pruned), "first_conv" or "output" (never pruned)
    columns: int  # columns of the matricized weight (hidden units, filters or kernels)
    columns_removed: int
    removed_sq_norm_share: float  # sum of removed squared column norms / ||W||_F^2 (0 if nothing removed)
    parameters: int  # entries of the weight
    parameters_zeroed: int  # entries in removed columns


@dataclass
class PruningResult:
    """A pruned copy of a model and the account of what was zeroed."""

    model: nn.Module
    amount: float
    criterion: str
    metric: str
    pruning_type: str
    layers: list = field(default_factory=list)  # LayerPruning, in forward order
    parameters: int = 0  # every parameter of the model
    parameters_zeroed: int = 0
    output_parameters: int = 0  # parameters of the output layer (weight and any bias)

    @property
    def pruning_ratio_with_last_layer(self) -> float:
        """Share of all parameters zeroed (the output layer in the denominator)."""
        return self.parameters_zeroed / self.parameters if self.parameters else math.nan

    @property
    def pruning_ratio_without_last_layer(self) -> float:
        """Share of parameters zeroed, the output layer left out (`--ignore_last_layer`, the paper's figure)."""
        kept_in_count = self.parameters - self.output_parameters
        return self.parameters_zeroed / kept_in_count if kept_in_count else math.nan

    def pruning_ratio(self, ignore_last_layer: bool = True) -> float:
        return self.pruning_ratio_without_last_layer if ignore_last_layer else self.pruning_ratio_with_last_layer


@torch.no_grad()
def prune_model(model: nn.Module, amount: float, criterion: str = "mce", metric: str = "fro_squared",
                pruning_type: str = DEFAULT_PRUNING_TYPE) -> PruningResult:
    """Prune a deep copy of `model`'s hidden layers by `criterion` at `amount`; `model` is left as it was."""
    _check(criterion, metric, pruning_type, amount)
    pruned = copy.deepcopy(model)
    layers = weight_layers(pruned)
    hidden = {name for name, _ in hidden_layers(pruned)}
    result = PruningResult(pruned, float(amount), criterion, metric, pruning_type,
                           parameters=sum(p.numel() for p in pruned.parameters()))
    if layers:
        result.output_parameters = sum(p.numel() for p in layers[-1][1].parameters())
    for position, (name, module) in enumerate(layers):
        weight = module.weight
        role = "hidden" if name in hidden else ("output" if position == len(layers) - 1 else "first_conv")
        columns = matricize(weight, pruning_type).shape[0]
        if role != "hidden":
            result.layers.append(LayerPruning(name, role, columns, 0, 0.0, weight.numel(), 0))
            continue
        keep, sq_norms = _keep_columns(weight, amount, criterion, metric, pruning_type)
        removed = int((~keep).sum())
        total = sq_norms.sum().item()
        removed_sq = sq_norms[~keep].sum().item()
        share = removed_sq / total if removed and total > 0 else 0.0
        weight.masked_fill_(~_expand(keep.to(weight.device), weight, pruning_type), 0.0)
        zeroed = removed * (weight.numel() // columns)
        result.layers.append(LayerPruning(name, role, columns, removed, share, weight.numel(), zeroed))
        result.parameters_zeroed += zeroed
    return result
