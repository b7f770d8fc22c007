"""Three ways to compress the hidden layers, each at a target fraction of their weights removed.

"Compressible" can be judged more than one way; Barsbey et al. (2021), this paper's predecessor,
used all three:

* `columns`: whole columns of the paper's Theta (hidden units, filters) with the smallest l2
  norms set to zero, `prune.compute_mask` with `parameter_ratio`: the pruning this package does
  everywhere else;
* `entries`: the smallest-magnitude entries of each hidden layer's weight set to zero,
  floor(fraction * entries) of them per layer;
* `rank`: each hidden layer's weight (matricized as by `prune.matricize`) replaced by its
  truncation to the largest k singular values. A rank-k factorisation is stored as
  k * (rows + cols) numbers, so at a target fraction f the rank is the largest k with
  k * (rows + cols) <= (1 - f) * rows * cols. That k is always below the full rank (a factorisation
  of full rank stores more than the matrix), so at fraction 0 the layer is left as it is.

Each compressor is applied to every hidden layer (`models.hidden_layers`) at the same fraction;
the output layer, a first convolution and 1-D parameters are never touched. What is reported is
the share of the hidden layers' weight entries actually removed (zeroed entries, or the entries
a factorisation saves), which for `columns` and `entries` is the target rounded down and for
`rank` at least the target. The model passed in is never changed. A sweep over many fractions
(`compress_sweep`) sorts or decomposes each layer once; `sweep.accuracy_sweep` takes the test accuracy
at each.
"""

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .models import hidden_layers
from .prune import compute_mask, matricize

COMPRESSORS = ("columns", "entries", "rank")


@dataclass
class Compression:
    """A compressed copy of a model and the share of its hidden layers' weights removed."""

    model: nn.Module
    compressor: str
    fraction: float  # the target
    parameters: int  # entries of the hidden layers' weights
    removed: int  # of those, zeroed or saved by a factorisation

    @property
    def removed_share(self) -> float:
        return self.removed / self.parameters if self.parameters else math.nan


def factorisation_parameters(rank: int, rows: int, cols: int) -> int:
    """Numbers stored by a rank-`rank` factorisation U (rows x rank) times V (rank x cols)."""
    return rank * (rows + cols)


def truncation_rank(fraction: float, rows: int, cols: int) -> int:
    """The largest rank whose factorisation stores at most (1 - fraction) of the rows x cols entries."""
    return math.floor(round((1 - fraction) * rows * cols / (rows + cols), 9))


def check_compression(compressor: str, fraction: float):
    if compressor not in COMPRESSORS:
        raise ValueError(f"unknown compressor {compressor!r}; choose one of {', '.join(COMPRESSORS)}")
    if not (isinstance(fraction, (int, float)) and 0 <= fraction <= 1):
        raise ValueError(f"fraction must be a number in [0, 1], got {fraction!r}")


def magnitude_order(weight: torch.Tensor) -> torch.Tensor:
    """`weight`'s flat positions from smallest to largest magnitude (ties: by position)."""
    return torch.sort(weight.detach().abs().flatten(), stable=True).indices


def singular_value_decomposition(weight: torch.Tensor, pruning_type: str = "filter"):
    """The thin SVD, in float64, of `weight` matricized as `prune.matricize` does."""
    return torch.linalg.svd(matricize(weight.detach(), pruning_type).double(), full_matrices=False)


def entries_to_zero(fraction: float, entries: int) -> int:
    """floor(fraction * entries), float noise below 1e-9 ignored (0.7 * 10 is 7)."""
    return math.floor(round(fraction * entries, 9))


def truncation(fraction: float, rows: int, cols: int) -> tuple[int, int]:
    """(rank kept, entries removed) of a rows x cols layer at `fraction`: at fraction 0 the layer is left as it is
    (its full rank, nothing removed)."""
    if fraction == 0:
        return min(rows, cols), 0
    rank = truncation_rank(fraction, rows, cols)
    return rank, rows * cols - factorisation_parameters(rank, rows, cols)


def zero_smallest_entries(weight: torch.Tensor, fraction: float, order: torch.Tensor | None = None) -> int:
    """Zero floor(fraction * entries) of `weight`'s smallest-magnitude entries in place; `order` is
    `magnitude_order(weight)` when the caller already has it."""
    count = entries_to_zero(fraction, weight.numel())
    order = magnitude_order(weight) if order is None else order
    weight.view(-1)[order[:count]] = 0.0
    return count


def truncate_rank(weight: torch.Tensor, fraction: float, pruning_type: str = "filter", svd=None) -> int:
    """Replace `weight` in place by its best approximation whose factorisation removes at least `fraction` of its
    entries (Eckart-Young: the truncated SVD); returns the entries removed (0 at fraction 0, the weight unchanged).
    `svd` is `singular_value_decomposition(weight, pruning_type)` when the caller already has it."""
    if fraction == 0:
        return 0
    u, s, vh = singular_value_decomposition(weight, pruning_type) if svd is None else svd
    rank, removed = truncation(fraction, u.shape[0], vh.shape[1])
    approximation = (u[:, :rank] * s[:rank]) @ vh[:rank]
    weight.copy_(approximation.to(weight.dtype).reshape(weight.shape))
    return removed


def _layer_decompositions(model: nn.Module, compressor: str, pruning_type: str) -> list:
    """What compressing each hidden layer at any fraction starts from: its magnitude order or its SVD
    (an SVD of a 4000 x 784 layer takes 0.3 s on 2 cores: a sweep takes it once, not at each of its 51 fractions)."""
    if compressor == "entries":
        return [magnitude_order(module.weight) for _, module in hidden_layers(model)]
    if compressor == "rank":
        return [singular_value_decomposition(module.weight, pruning_type) for _, module in hidden_layers(model)]
    return [None for _ in hidden_layers(model)]


@torch.no_grad()
def compress_sweep(model: nn.Module, compressor: str, fractions, pruning_type: str = "filter") -> Iterator[Compression]:
    """A copy of `model` compressed by `compressor` at each of `fractions` in turn, every hidden layer at once."""
    fractions = list(fractions)
    for fraction in fractions:
        check_compression(compressor, fraction)
    decompositions = _layer_decompositions(model, compressor, pruning_type)
    for fraction in fractions:
        compressed = copy.deepcopy(model)
        result = Compression(compressed, compressor, float(fraction), 0, 0)
        for (_, module), decomposition in zip(hidden_layers(compressed), decompositions):
            weight = module.weight
            result.parameters += weight.numel()
            if compressor == "columns":
                mask = compute_mask(weight, fraction, "parameter_ratio", pruning_type=pruning_type)
                weight.mul_(mask)
                result.removed += int((mask == 0).sum())
            elif compressor == "entries":
                result.removed += zero_smallest_entries(weight, fraction, decomposition)
            else:
                result.removed += truncate_rank(weight, fraction, pruning_type, decomposition)
        yield result

