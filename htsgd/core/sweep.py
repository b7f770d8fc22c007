"""The test accuracy of a network compressed by one compressor (`core.compress`) at each fraction of a sweep.

Compressing a copy at each fraction and evaluating it (`compress_sweep`, then `evaluate`) costs a forward
pass per fraction. A one-hidden-layer FCN (`fcn` of depth 2: logits = V relu(W x), no biases) is
compressed in W alone, and each compressor changes W so that one fraction builds on the next:

* columns: removing hidden unit j takes its term v_j relu(w_j x) out of the logits, so one pass of the
  hidden activations gives every fraction as a sum over the units it keeps;
* rank: W truncated to rank k is U_k S_k V_k^T, so the pre-activations U_k (S_k V_k^T x) grow by one
  block of singular vectors from one rank to the next;
* entries: the entries one fraction keeps and the next larger one removes are a known set, so the
  pre-activations change by a sparse product.

The sweep starts where the most is removed and adds what each smaller fraction keeps (a fraction that
removes everything gives logits of exactly zero, as the compressed copy does), so all fractions together
cost about one forward pass, plus a pass of the hidden layer's output per fraction for rank and entries.

It computes in the network's float32, as direct evaluation does, but sums in another order, so the two
can round differently. Rounding moves a logit by a small multiple of 2**-24 of the sizes of the products
summed into it, and can change the prediction only where another logit is that close to the largest:
such examples (`_near_ties`) are counted at each fraction as `ties`, and the accuracy can differ from
direct evaluation's by at most that many examples (float64 would not remove them: they are near-ties of
direct evaluation's own rounding). Any other network (a deeper FCN, VGG) is compressed and evaluated
directly, and has no ties.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .compress import (check_compression, compress_sweep, entries_to_zero, magnitude_order,
                       singular_value_decomposition, truncation)
from .evaluate import ACTIVATION_BUDGET, evaluate
from .models import FCN
from .prune import column_sq_norms, matricize, num_columns_to_prune

# A near-tie's gap, relative to the sizes of the products summed into the two logits (`_near_ties`): 16 units
# of float32 rounding; the logits of direct evaluation and of a sweep differ by less than 2**-26 of them.
TIE_TOLERANCE = 2.0**-20
# Hidden-layer outputs of one chunk of examples: a CPU keeps 1 MiB in its cache from one level to the next;
# a GPU wants large chunks.
CPU_CHUNK_BYTES = 2**20


@dataclass
class _Levels:
    """A compressor's sweep as levels of what is kept, from least to most, each building on the one before."""

    kept: list  # per fraction: the units, rank or entries it keeps
    removed: list  # per fraction: the hidden weight entries it removes
    scales: torch.Tensor  # per level and class c: sum over hidden units j of |v_cj| ||w_j||, w the weight kept
    start: Callable  # examples (a chunk, as columns) -> their state with nothing kept
    step: Callable  # (level, state) -> the logits at that level, updating the state


@torch.inference_mode()
def accuracy_sweep(model, compressor: str, fractions, inputs: torch.Tensor, labels: torch.Tensor,
                   pruning_type: str = "filter") -> list[dict]:
    """For each fraction: `fraction`, `removed` (the share of hidden weights removed, `Compression.removed_share`),
    `test_acc` (% of `inputs` classified as `labels`, as `evaluate` gives it) and `ties` (examples whose
    prediction another float32 summation order could change; 0 where the network is evaluated directly)."""
    for fraction in fractions:
        check_compression(compressor, fraction)
    fractions = [float(fraction) for fraction in fractions]
    if not (isinstance(model, FCN) and len(model.hidden) == 1):
        return [{"fraction": c.fraction, "removed": c.removed_share, "test_acc": evaluate(c.model, inputs, labels)[1],
                 "ties": 0} for c in compress_sweep(model, compressor, fractions, pruning_type)]
    weight = matricize(model.hidden[0].weight.detach(), pruning_type)
    sweep = LEVELS[compressor](weight, model.output.weight.detach(), fractions, pruning_type)
    levels = sorted(set(sweep.kept))
    correct = ties = torch.zeros(len(levels), dtype=torch.int64, device=weight.device)
    size = _chunk_size(weight)
    for x, y in zip(inputs.flatten(1).split(size), labels.split(size)):
        x = x.to(weight.dtype).T.contiguous()
        state, logits = sweep.start(x), x.new_empty(len(levels), x.shape[1], sweep.scales.shape[1])
        for level in range(len(levels)):
            logits[level] = sweep.step(level, state).T
        top, predictions = logits.max(2, keepdim=True)
        correct = correct + (predictions[..., 0] == y).sum(1)
        ties = ties + _near_ties(logits, top, predictions, x.norm(dim=0)[:, None] * sweep.scales[:, None]).sum(1)
    correct, ties, n = correct.tolist(), ties.tolist(), max(len(labels), 1)
    return [{"fraction": fraction, "removed": gone / weight.numel(),
             "test_acc": 100.0 * correct[levels.index(k)] / n, "ties": ties[levels.index(k)]}
            for fraction, k, gone in zip(fractions, sweep.kept, sweep.removed)]


def _chunk_size(weight: torch.Tensor) -> int:
    """Examples per chunk: as many as keep one hidden-layer output (units x examples) within the budget."""
    budget = CPU_CHUNK_BYTES if weight.device.type == "cpu" else ACTIVATION_BUDGET
    return max(1, budget // (weight.shape[0] * weight.element_size()))


def _near_ties(logits, top, predictions, scales) -> torch.Tensor:
    """Per example (logits: levels x examples x classes), whether rounding could make another class's logit the
    largest (`top`, of class `predictions`).

    `scales[c]` is ||x|| sum_j |v_cj| ||w_j||: by Cauchy-Schwarz it bounds the products summed into logit c
    (|v_cj| relu(w_j x) <= |v_cj| ||w_j|| ||x||) and, through v, those summed into the pre-activations
    (sum_k |w_jk x_k| <= ||w_j|| ||x||). An example is a near-tie when another class's logit comes within
    TIE_TOLERANCE times the two classes' scales of the largest.
    """
    near = top - logits < TIE_TOLERANCE * (scales.gather(2, predictions) + scales)
    return near.scatter_(2, predictions, False).any(2)


def _scales(output: torch.Tensor, row_sq_norms: torch.Tensor) -> torch.Tensor:
    """Per level (a column of `row_sq_norms`, the kept weight's squared row norms, float64) and class c:
    sum_j |v_cj| ||w_j||."""
    return (output.double().abs() @ row_sq_norms.sqrt()).T.to(output.dtype)


def _starts(levels: list) -> list:
    return [0] + levels[:-1]


def _columns(weight, output, fractions, pruning_type) -> _Levels:
    """Units kept, largest norms first: the units that `prune.compute_mask` keeps at each fraction."""
    sq_norms = column_sq_norms(weight, pruning_type)
    units, width = weight.shape
    removed_units = [num_columns_to_prune(sq_norms, fraction, "parameter_ratio") for fraction in fractions]
    kept = [units - k for k in removed_units]
    levels = sorted(set(kept))
    largest_first = torch.sort(sq_norms, stable=True).indices.flip(0)
    weight, output = weight[largest_first], output[:, largest_first]
    position = torch.arange(units, device=weight.device)[:, None]
    kept_sq_norms = sq_norms[largest_first, None] * (position < torch.tensor(levels, device=weight.device))
    starts = _starts(levels)

    def start(x):
        return torch.relu(weight @ x), torch.zeros(output.shape[0], x.shape[1], dtype=x.dtype, device=x.device)

    def step(level, state):
        activations, logits = state
        return logits.addmm_(output[:, starts[level]:levels[level]], activations[starts[level]:levels[level]])

    return _Levels(kept, [k * width for k in removed_units], _scales(output, kept_sq_norms), start, step)


def _growing_pre_activations(output, units, prepare, add):
    """`start` and `step` for compressors that grow the pre-activations: `prepare(x)` is what `add(level, pre,
    prepared)` needs to add a level's part to the pre-activations in place."""

    def start(x):
        pre = torch.zeros(units, x.shape[1], dtype=x.dtype, device=x.device)
        return pre, torch.empty_like(pre), prepare(x)

    def step(level, state):
        pre, hidden, prepared = state
        add(level, pre, prepared)
        return output @ torch.clamp_min(pre, 0, out=hidden)

    return start, step


def _rank(weight, output, fractions, pruning_type) -> _Levels:
    """Ranks kept, largest singular values first, as `compress.truncate_rank` keeps them."""
    units, width = weight.shape
    ranks, removed = zip(*(truncation(fraction, units, width) for fraction in fractions))
    levels = sorted(set(ranks))
    u, s, vh = singular_value_decomposition(weight, pruning_type)
    sq_norms = torch.cat([torch.zeros_like(u[:, :1]), (u * s).square().cumsum(1)], 1)[:, levels]
    scaled = (s[:levels[-1], None] * vh[:levels[-1]]).to(weight.dtype)
    u, starts = u.to(weight.dtype), _starts(levels)

    def add(level, pre, projected):
        pre.addmm_(u[:, starts[level]:levels[level]], projected[starts[level]:levels[level]])

    start, step = _growing_pre_activations(output, units, lambda x: scaled @ x, add)
    return _Levels(list(ranks), list(removed), _scales(output, sq_norms), start, step)


def _entries(weight, output, fractions, pruning_type) -> _Levels:
    """Entries kept, largest magnitudes first, as `compress.zero_smallest_entries` keeps them."""
    units, width = weight.shape
    removed = [entries_to_zero(fraction, weight.numel()) for fraction in fractions]
    kept = [weight.numel() - k for k in removed]
    largest_first = magnitude_order(weight).flip(0)
    index = torch.int32 if weight.numel() < 2**31 else torch.int64
    parts, sq_norms, begin = [], [torch.zeros(units, dtype=torch.float64, device=weight.device)], 0
    for stop in sorted(set(kept)):  # each level's new entries, grouped by row; the squared row norms of all kept
        positions = largest_first[begin:stop].sort().values
        rows, values = positions // width, weight.view(-1)[positions]
        offsets = torch.bincount(rows, minlength=units).cumsum(0) - torch.bincount(rows, minlength=units)
        parts.append(((positions % width).to(index), offsets.to(index), values))
        sq_norms.append(sq_norms[-1].index_add(0, rows, values.double().square()))
        begin = stop

    def add(level, pre, x):  # each row's new entries times the examples' matching inputs, summed
        columns, offsets, values = parts[level]
        pre += F.embedding_bag(columns, x, offsets, mode="sum", per_sample_weights=values)

    start, step = _growing_pre_activations(output, units, lambda x: x, add)
    return _Levels(kept, removed, _scales(output, torch.stack(sq_norms[1:], 1)), start, step)


LEVELS = {"columns": _columns, "rank": _rank, "entries": _entries}
