"""The explore notebook's figures: the pruned first layer's column norms and a training's curves, drawn with the
train notebook's own plotting (`report.run_plots`), with Agg off pyplot (so a background thread may draw them) into
PNGs for Image widgets."""

import io

import numpy as np
from matplotlib.figure import Figure

from ...core.prune import MCE_RATIO
from ...report.run_plots import draw_learning_curves, label_norm_axes, norm_ccdf


def norm_figure(norms, point: dict, mce: dict | None = None) -> Figure:
    """The complementary CDF of the first layer's column norms on log-log axes, the removed columns in grey
    and the cut marked (dashed: the mce point's cut); `point` and `mce` are `prune_point`'s."""
    values, share = norm_ccdf(norms)
    dropped = len(norms) - len(values)  # zero norms: the first removed, not drawable on log axes
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    k = max(0, point["first_layer_removed"] - dropped)
    ax.plot(values[k:], share[k:], ".", markersize=3, color="tab:blue", label="kept")
    if k:
        ax.plot(values[:k], share[:k], ".", markersize=3, color="0.65", label="removed")
    for cut, style, label in ((point, "-", "cut"), (mce, "--", f"mce {MCE_RATIO:g} cut")):
        if cut is not None and 0 < cut["first_layer_removed"] - dropped < len(values):
            i = cut["first_layer_removed"] - dropped
            ax.axvline(float(np.sqrt(values[i - 1] * values[i])), color="tab:red", ls=style, lw=1, label=label)
    label_norm_axes(ax, point["first_layer"],
                    f"{point['first_layer_removed']} of {point['first_layer_columns']} columns removed")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig


def curve_figure(history: list[dict], iterations: int | None = None) -> Figure:
    """Loss and accuracy on the full train and test sets against the step, so far; the x-axis up to `iterations`."""
    fig = Figure(figsize=(9, 3))
    loss_ax, acc_ax = fig.subplots(1, 2)
    draw_learning_curves(loss_ax, acc_ax, history)
    if iterations:
        for ax in (loss_ax, acc_ax):
            ax.set_xlim(0, max(iterations, 1))
    fig.tight_layout()
    return fig


def png(fig: Figure, dpi: int = 80) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue()
