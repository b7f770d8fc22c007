"""The figures of a group report, each built by a function that returns its `Figure`.

Drawn on `matplotlib.figure.Figure`, not through pyplot: PNGs are rendered with Agg whatever
backend the caller (e.g. a notebook) has selected, no global figure state is touched, and tests
can inspect the axes before anything is saved. Every function takes the run table of
`htsgd.report.run_table` (one row per run; `setting` and `setting_label` name a line, a colour
follows the setting across figures) and `title`, the group and its dataset, which every figure's
title carries. Every seed is drawn: counted seeds solid (or filled), the others dotted (or
hollow); medians are over counted seeds only.
"""

import math

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, NullLocator

from ..analysis.baseline import TOLERANCE
from ..analysis.comparisons import baseline_label, baseline_reference
from ..analysis.run_table import counted_values
from ..core.prune import MCE_RATIO
from .formatting import format_number, median_range
from ..record import storage
from .run_plots import norm_ccdf

REFERENCE_ALPHA = 2.0  # slope of the reference line on the norm CCDF: the edge of finite variance
# A counted seed is an outlier of its configuration when it lies farther than OUTLIER_IQR times the
# interquartile range from the configuration's median, and farther than the metric's floor (so a
# spread of zero does not make every small difference an outlier). Needs at least 3 seeds.
OUTLIER_IQR = 1.5
OUTLIER_FLOORS = {"pruning_ratio": 0.1, "pruned_test_acc": 2.0}
DODGE, SPREAD = 0.015, 0.006  # jitter of the width figure, in decades: per setting, per seed


def save(fig: Figure, path):
    return storage.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=150))


def setting_colors(runs: pd.DataFrame) -> dict:
    """A colour per setting, in the run table's order: tab10, or tab20 when ten would repeat."""
    settings = list(dict.fromkeys(runs["setting"]))
    cmap = matplotlib.colormaps["tab10" if len(settings) <= 10 else "tab20"]
    return {setting: cmap(i % cmap.N) for i, setting in enumerate(settings)}


def panels(n: int, sharey=False, max_columns: int = 4):
    """A figure with `n` panels in rows of at most `max_columns`."""
    columns = min(n, max_columns)
    rows = math.ceil(n / columns)
    # at least 9 inches wide, so that the two-line titles fit above a single panel
    fig = Figure(figsize=(max(4.6 * columns + 0.4, 9.0), 3.9 * rows + 0.7), layout="constrained")
    axes = fig.subplots(rows, columns, sharey=sharey, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.remove()
    return fig, list(axes[:n])


def _line_style(counted: bool) -> str:
    return "-" if counted else ":"


# ---------------------------------------------------------------- accuracy against the fraction pruned

def accuracy_vs_pruned_figure(runs: pd.DataFrame, sweep: pd.DataFrame, title: str) -> Figure:
    """Test accuracy against the fraction of columns pruned, one panel per width.

    Per setting: every seed's sweep thin, the median over counted seeds bold, each run's point at
    mce 0.1 marked; per baseline (`baseline`: the no-noise runs pooled, as the verdict compares with), a
    dashed line TOLERANCE below its reference accuracy (the equal-accuracy threshold). The y-axis spans
    from a little below the lowest mce point or threshold to the top: below that every curve has lost
    too much to matter.
    """
    curves = {key: rows.sort_values("fraction") for key, rows in sweep.groupby("exp_key")}
    drawn = runs[runs["id"].isin(curves)]
    widths = sorted(drawn["width"].unique())
    colors = setting_colors(runs)
    fig, axes = panels(len(widths), sharey=True)
    for ax, width in zip(axes, widths):
        for setting, rows in drawn[drawn["width"] == width].groupby("setting", sort=False):
            _draw_sweeps(ax, rows, curves, colors[setting])
        _draw_thresholds(ax, runs[(runs["width"] == width) & ~runs["noisy"]], colors)
        ax.set_title(f"width {width}")
        ax.set_xlabel("fraction of columns pruned (smallest norm first)")
        ax.set_xlim(-0.02, 1.02)
        ax.legend(fontsize="x-small", loc="best")
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_ylim(*accuracy_range(drawn, curves))
    fig.suptitle(f"{title}: test accuracy against the fraction pruned\n"
                 f"thin: each seed (dotted: not counted); bold: median of counted seeds; "
                 f"dots: each run at mce {MCE_RATIO:g} (x = its pruning ratio)", fontsize="medium")
    return fig


def _draw_sweeps(ax, rows: pd.DataFrame, curves: dict, color):
    label = rows["setting_label"].iloc[0]
    for run in rows.itertuples():
        curve = curves[run.id]
        ax.plot(curve["fraction"], curve["test_acc"], color=color, lw=0.7, alpha=0.6, ls=_line_style(run.counted))
    counted = [curves[key] for key in rows.loc[rows["counted"], "id"]]
    if counted:
        median = pd.concat([pd.Series(c["test_acc"].to_numpy(), index=c["fraction"].round(6).to_numpy())
                            for c in counted], axis=1).median(axis=1)
        ax.plot(median.index, median.to_numpy(), color=color, lw=2.2,
                label=f"{label}: median of {len(counted)} counted")
    ax.scatter(rows["pruning_ratio"], rows["pruned_test_acc"], color=color, edgecolors="black", s=28, zorder=3)


def _draw_thresholds(ax, noise_free: pd.DataFrame, colors: dict):
    """One dashed line per baseline among `noise_free`, in its first setting's colour; none without a reference."""
    for _, rows in noise_free.groupby("baseline", sort=False):
        reference = baseline_reference(rows)
        if np.isfinite(reference):
            ax.axhline(reference - TOLERANCE, color=colors[rows["setting"].iloc[0]], ls="--", lw=1,
                       label=f"{TOLERANCE:g} pt below {baseline_label(rows)}'s median")


def accuracy_range(drawn: pd.DataFrame, curves: dict) -> tuple[float, float]:
    """From 3 points below the lowest mce point or within-TOLERANCE level to 1.5 above the highest accuracy."""
    floors = pd.concat([drawn["pruned_test_acc"], drawn["test_acc_before"] - TOLERANCE]).to_numpy(dtype=float)
    top = max(float(np.nanmax(curve["test_acc"])) for curve in curves.values())
    low = float(np.nanmin(floors)) if np.isfinite(floors).any() else top - 20
    return max(low - 3, 0.0), min(top + 1.5, 101.0)


# ---------------------------------------------------------------- training stability

def training_stability_figure(runs: pd.DataFrame, histories: dict, title: str) -> Figure:
    """Train loss against step (log scale), one panel per setting at the largest width, every seed."""
    with_history = runs[runs["id"].isin(histories)]
    width = with_history["width"].max()
    settings = list(with_history[with_history["width"] == width].groupby("setting", sort=False))
    fig, axes = panels(len(settings), sharey=True)
    seed_colors = matplotlib.colormaps["tab10"]
    for ax, (_, rows) in zip(axes, settings):
        for i, run in enumerate(rows.itertuples()):
            history = histories[run.id]
            ax.plot(history["step"], history["train_loss"], color=seed_colors(i % 10), lw=1,
                    label=f"seed {run.seed}: {run.status}, {format_number(run.steps, '.0f')} steps, "
                          f"max/initial {format_number(run.max_train_loss_ratio, ',.1f')}")
        ax.set_yscale("log")
        ax.set_title(rows["setting_label"].iloc[0])
        ax.set_xlabel("step")
        ax.legend(fontsize="x-small")
    axes[0].set_ylabel("train loss (full train set)")
    fig.suptitle(f"{title}: training stability at width {width}, every seed", fontsize="medium")
    return fig


# ---------------------------------------------------------------- column norms

def column_norms_figure(runs: pd.DataFrame, norms: pd.DataFrame, title: str) -> Figure:
    """Complementary CDF of every seed's first-layer column norms over its median norm, one panel per width.

    Dividing by the median puts every run's bulk at x = 1 (share 0.5), so tails compare across noise
    types and scales. The legend gives each setting's Hill tail index; the dashed line has slope
    -REFERENCE_ALPHA through (1, 0.5): a tail flatter than it is heavier than tail index 2.
    """
    by_run = {key: rows["norm"].to_numpy(dtype=float) for key, rows in norms.groupby("exp_key")}
    drawn = runs[runs["id"].isin(by_run)]
    widths = sorted(drawn["width"].unique())
    colors = setting_colors(runs)
    fig, axes = panels(len(widths), sharey=True)
    for ax, width in zip(axes, widths):
        largest = 1.0
        for setting, rows in drawn[drawn["width"] == width].groupby("setting", sort=False):
            hill = median_range(counted_values(rows, "hill_alpha"), ".2f")
            label = f"{rows['setting_label'].iloc[0]}: Hill α̂ {hill}"
            for i, run in enumerate(rows.itertuples()):
                x, share = norm_ccdf(relative_norms(by_run[run.id]))
                ax.plot(x, share, color=colors[setting], lw=0.9, ls=_line_style(run.counted),
                        label=label if i == 0 else "_nolegend_")
                largest = max(largest, float(x[-1]) if len(x) else 1.0)
        ax.plot([1.0, largest], [0.5, 0.5 * largest ** -REFERENCE_ALPHA], color="black", ls="--", lw=0.8,
                label=f"slope −{REFERENCE_ALPHA:g} (tail index {REFERENCE_ALPHA:g})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on short log ranges
        ax.set_title(f"width {width}")
        ax.set_xlabel("column norm / the run's median column norm")
        ax.legend(fontsize="x-small", loc="lower left")
    axes[0].set_ylabel("fraction of columns with norm ≥ x")
    fig.suptitle(f"{title}: first hidden layer's column norms, every seed (dotted: not counted)",
                 fontsize="medium")
    return fig


def relative_norms(norms: np.ndarray) -> np.ndarray:
    """Norms over the median of the positive finite ones."""
    usable = norms[np.isfinite(norms) & (norms > 0)]
    return norms / np.median(usable) if len(usable) else usable


# ---------------------------------------------------------------- against width

def outlier_mask(values, floor: float) -> np.ndarray:
    """Which values are outliers of their configuration: farther from the median than OUTLIER_IQR
    interquartile ranges (numpy's linear quartiles) and than `floor`; never with fewer than 3 values.
    With 3 seeds this means an extreme seed's gap to the middle one is over 3 times the other's."""
    values = np.asarray(values, dtype=float)
    if len(values) < 3:
        return np.zeros(len(values), dtype=bool)
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    distance = np.abs(values - median)
    return (distance > OUTLIER_IQR * (q3 - q1)) & (distance > floor)


def width_figure(runs: pd.DataFrame, title: str) -> Figure:
    """Pruning ratio and pruned test accuracy at mce 0.1 against width: every seed a jittered point
    (hollow: not counted), the median over counted seeds a line, outliers labelled by seed."""
    analysed = runs[runs["pruning_ratio"].notna()]
    colors = setting_colors(runs)
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    settings = list(analysed.groupby("setting", sort=False))
    for ax, metric, ylabel in zip(axes, OUTLIER_FLOORS, (f"pruning ratio at mce {MCE_RATIO:g}",
                                                         f"pruned test accuracy at mce {MCE_RATIO:g} (%)")):
        for i, (setting, rows) in enumerate(settings):
            _draw_against_width(ax, rows, metric, colors[setting], DODGE * (i - (len(settings) - 1) / 2))
        widths = sorted(analysed["width"].unique())
        ax.set_xscale("log")
        ax.set_xticks(widths, labels=[str(w) for w in widths])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("width (hidden units)")
        ax.set_ylabel(ylabel)
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize="x-small")
    fig.suptitle(f"{title}: pruning at mce {MCE_RATIO:g} against width\npoints: each seed (hollow: not "
                 f"counted; labelled: outlier); lines: median of counted seeds", fontsize="medium")
    return fig


def draw_seeds(ax, rows: pd.DataFrame, metric: str, color, dodge: float) -> pd.Series:
    """One setting: its seeds jittered around each width (by `dodge` decades, then by seed), filled when
    counted, and the median of its counted values as a line named after the setting; returns the seeds' x."""
    rank = rows.groupby("width").cumcount() - (rows.groupby("width")["id"].transform("size") - 1) / 2
    x = rows["width"] * 10 ** (dodge + SPREAD * rank)
    counted = rows["counted"].to_numpy()
    ax.scatter(x[counted], rows[metric][counted], color=color, s=20, alpha=0.85)
    if not counted.all():
        ax.scatter(x[~counted], rows[metric][~counted], facecolors="none", edgecolors=color, s=20)
    median = rows[counted].groupby("width")[metric].median().dropna()
    if len(median):
        ax.plot(median.index * 10 ** dodge, median.to_numpy(), color=color, lw=1.5,
                label=rows["setting_label"].iloc[0])
    return x


def _draw_against_width(ax, rows: pd.DataFrame, metric: str, color, dodge: float):
    """`draw_seeds`, with the outliers labelled by seed."""
    x = draw_seeds(ax, rows, metric, color, dodge)
    counted = rows["counted"].to_numpy()
    for _, configuration in rows[counted].groupby("width"):
        flagged = outlier_mask(configuration[metric], OUTLIER_FLOORS[metric])
        for key, seed in zip(configuration.index[flagged], configuration["seed"][flagged]):
            ax.annotate(f"seed {seed}", (x[key], rows.at[key, metric]), xytext=(4, 2),
                        textcoords="offset points", fontsize=7, color=color)
