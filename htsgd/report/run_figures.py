"""Figures of a single run, for the train notebook."""

import matplotlib.pyplot as plt

from ..core.models import hidden_layers
from ..core.prune import column_sq_norms
from .figures import norm_ccdf


def learning_curves(history):
    """Loss and accuracy on the full train and test sets against the step."""
    steps = [row["step"] for row in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.5))
    for split in ("train", "test"):
        loss_ax.plot(steps, [row[f"{split}_loss"] for row in history], label=split)
        acc_ax.plot(steps, [row[f"{split}_acc"] for row in history], label=split)
    loss_ax.set(xlabel="step", ylabel="cross-entropy", yscale="log")
    acc_ax.set(xlabel="step", ylabel="accuracy (%)")
    acc_ax.legend()
    fig.tight_layout()
    return fig


def column_norm_distribution(model):
    """The complementary CDF of the first prunable layer's column norms, on log-log axes."""
    name, layer = hidden_layers(model)[0]
    norms, share_at_least = norm_ccdf(column_sq_norms(layer.weight, "filter").sqrt().cpu().numpy())
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.loglog(norms, share_at_least, marker=".", linestyle="none", markersize=3)
    ax.set(xlabel=f"column norm ({name})", ylabel="fraction of columns with norm ≥ x",
           title=f"{len(norms)} columns")
    fig.tight_layout()
    return fig
