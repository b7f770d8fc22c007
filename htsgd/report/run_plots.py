"""What the figures of one run draw, onto axes the caller made: the train notebook's figures (through pyplot,
shown inline), the explore notebook's (off pyplot, PNGs in widgets) and the group report's column norms share it.

The train notebook imports this module (through `run_figures`), so it is training code: an edit here marks
every trained run out of date. It imports the core alone, never the analysis or the group report.
"""

import numpy as np

from ..core.models import hidden_layers
from ..core.prune import column_sq_norms


def norm_ccdf(norms) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positive finite column norms, and the fraction of columns whose norm is at least each one
    (the complementary CDF; drawable on log-log axes, the largest norm keeping a share above 0)."""
    norms = np.sort(np.asarray(norms, dtype=float))
    norms = norms[np.isfinite(norms) & (norms > 0)]
    return norms, 1.0 - np.arange(len(norms)) / len(norms)


def first_layer_norms(model) -> tuple[str, np.ndarray]:
    """The first hidden layer's name and its column norms (one per hidden unit of an FCN), as the analysis takes them."""
    name, layer = hidden_layers(model)[0]
    return name, column_sq_norms(layer.weight, "filter").sqrt().cpu().numpy()


def label_norm_axes(ax, layer: str, title: str):
    """The axes of a column norms' complementary CDF (`norm_ccdf`) of `layer`, on log-log scales."""
    ax.set(xscale="log", yscale="log", xlabel=f"column norm ({layer})", ylabel="fraction of columns with norm ≥ x",
           title=title)


def draw_learning_curves(loss_ax, acc_ax, history: list[dict]):
    """Loss and accuracy on the full train and test sets against the step, one line per split."""
    steps = [row["step"] for row in history]
    for split in ("train", "test"):
        loss_ax.plot(steps, [row[f"{split}_loss"] for row in history], label=split)
        acc_ax.plot(steps, [row[f"{split}_acc"] for row in history], label=split)
    loss_ax.set(xlabel="step", ylabel="cross-entropy", yscale="log")
    acc_ax.set(xlabel="step", ylabel="accuracy (%)")
    acc_ax.legend()
