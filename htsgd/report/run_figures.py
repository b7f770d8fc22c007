"""Figures of a single run, for the train notebook: through pyplot, so the notebook shows them inline.

Training code, as the notebook imports it: it draws with `run_plots`, which imports the core alone.
"""

import matplotlib.pyplot as plt

from .run_plots import draw_learning_curves, first_layer_norms, label_norm_axes, norm_ccdf


def learning_curves(history):
    """Loss and accuracy on the full train and test sets against the step."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 3.5))
    draw_learning_curves(loss_ax, acc_ax, history)
    fig.tight_layout()
    return fig


def column_norm_distribution(model):
    """The complementary CDF of the first prunable layer's column norms, on log-log axes."""
    name, norms = first_layer_norms(model)
    values, share_at_least = norm_ccdf(norms)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(values, share_at_least, marker=".", linestyle="none", markersize=3)
    label_norm_axes(ax, name, f"{len(values)} columns")
    fig.tight_layout()
    return fig
