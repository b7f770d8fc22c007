"""The figures of the trend with width (`htsgd.analysis.trend`), each built by a function that returns its `Figure`.

Drawn as in `figures`: on `Figure`, never through pyplot; a colour per `setting` (`figures.setting_colors`),
`setting_label` in legends; one row of panels per arm, widths on a log2 axis labelled by the widths measured.
Every seed is drawn (hollow: not counted); medians and gaps are over counted seeds only. Where nothing can
be drawn a figure says so instead of raising, so that a report of a small group still builds.
"""

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from ..analysis.baseline import MIN_SEEDS, TOLERANCE
from ..analysis.comparisons import COMPRESSOR_NAMES, MIN_PAIRS, UNITS, differences
from ..analysis.trend import LEVEL_TEXT, MEASURE
from .figures import DODGE, SPREAD, draw_seeds, panels, setting_colors

NOTHING_TO_DRAW = "no widths with enough counted seeds or seed pairs"


def equal_accuracy_width_figure(runs: pd.DataFrame, columns: dict, title: str) -> Figure:
    """Per arm a row: one panel per compressor (`columns`: display name -> column) with the fraction removable
    at equal accuracy against width, and a last panel with the steps each run took, so that a trend in the
    fractions can be read beside how long the runs trained."""
    suptitle = (f"{title}: fraction of the layer removable within {TOLERANCE:g} pt of no noise's median accuracy, "
                "against width\npoints: each seed (hollow: not counted); lines: median of counted seeds; "
                "last panel: steps each run took")
    if runs.empty:
        return _nothing_drawn(suptitle, "no runs")
    shown = {**columns, "steps taken": "steps"}
    colors = setting_colors(runs)
    fig, rows = _grid(len(runs["arm"].unique()), len(shown))
    for axes, (arm, arm_runs) in zip(rows, runs.groupby("arm", sort=False)):
        settings = list(arm_runs.groupby("setting", sort=False))
        for ax, (name, column) in zip(axes, shown.items()):
            for i, (setting, seeds) in enumerate(settings):
                draw_seeds(ax, seeds, column, colors[setting], DODGE * (i - (len(settings) - 1) / 2))
            _width_axis(ax, arm_runs["width"])
            ax.set_title(f"{arm}:\n{name}", fontsize="medium")
            ax.set_ylabel("steps taken" if column == "steps" else "fraction removable")
            if column == "steps":
                ax.set_yscale("log")
            else:
                ax.set_ylim(-0.02, 1.02)
        _legend(axes)
    fig.suptitle(suptitle, fontsize="medium")
    return fig


def gap_figure(gaps: pd.DataFrame, pairs: pd.DataFrame, runs: pd.DataFrame, title: str) -> Figure:
    """Per arm a row, per compressor a panel (`gaps`: `trend.width_trend`'s gaps by width, from `pairs`): each
    seed pair's difference as a point, each noisy setting's median paired gap against width as a line with its
    bootstrap interval over seed pairs as a band, and a line at 0."""
    suptitle = (f"{title}: gap to no noise (noise − no noise) in the share removable within 1 pt of no noise's "
                f"accuracy, against width\npoints: each seed pair; lines: median over seed pairs (at least "
                f"{MIN_PAIRS} per width); bands: {LEVEL_TEXT} bootstrap interval over seed pairs")
    if gaps.empty:
        return _nothing_drawn(suptitle, NOTHING_TO_DRAW)
    colors = setting_colors(runs)
    setting_of = dict(zip(runs["setting_label"], runs["setting"]))
    arms = [arm for arm in dict.fromkeys(runs["arm"]) if arm in set(gaps["arm"])]
    compressors = list(COMPRESSOR_NAMES)
    fig, rows = _grid(len(arms), len(compressors))
    for axes, arm in zip(rows, arms):
        for ax, compressor in zip(axes, compressors):
            arm_gaps = gaps[(gaps["arm"] == arm) & (gaps["compressor"] == compressor)]
            settings = list(arm_gaps.groupby("setting_label", sort=False))
            for i, (label, setting_gaps) in enumerate(settings):
                color = colors[setting_of[label]]
                ax.plot(setting_gaps["width"], setting_gaps["gap"], color=color, marker="o", lw=1.5, label=label)
                ax.fill_between(setting_gaps["width"], setting_gaps["gap_low"], setting_gaps["gap_high"],
                                color=color, alpha=0.2, lw=0)
                drawn = pairs[(pairs["arm"] == arm) & (pairs["setting_label"] == label)
                              & (pairs["compressor"] == compressor) & pairs["width"].isin(setting_gaps["width"])]
                _draw_pairs(ax, drawn, color, DODGE * (i - (len(settings) - 1) / 2))
            ax.axhline(0, color="black", lw=0.8)
            ax.set_title(f"{arm}:\n{COMPRESSOR_NAMES[compressor]}", fontsize="medium")
            ax.set_ylabel(f"gap ({UNITS[compressor].split(' by ')[0]})", fontsize="small")
            if arm_gaps.empty:
                ax.text(0.5, 0.5, NOTHING_TO_DRAW, ha="center", va="center", transform=ax.transAxes)
            else:
                _width_axis(ax, arm_gaps["width"])
                ax.legend(fontsize="x-small", loc="best")
    fig.suptitle(suptitle, fontsize="medium")
    return fig


def _draw_pairs(ax, pairs: pd.DataFrame, color, dodge: float):
    """Each seed pair's difference that the gap is the median of, jittered around its width as `draw_seeds`
    jitters seeds (by `dodge` decades, then by pair)."""
    diffs = differences(pairs, MEASURE)
    finite = np.isfinite(diffs)
    pairs, diffs = pairs[finite], diffs[finite]
    rank = pairs.groupby("width").cumcount() - (pairs.groupby("width")["width"].transform("size") - 1) / 2
    ax.scatter(pairs["width"] * 10 ** (dodge + SPREAD * rank), diffs, color=color, s=16, alpha=0.75)


def _grid(rows: int, columns: int) -> tuple:
    """A figure with `rows` rows of `columns` panels, and its axes row by row."""
    fig, axes = panels(rows * columns, max_columns=columns)
    return fig, [axes[i:i + columns] for i in range(0, len(axes), columns)]


def _width_axis(ax, widths):
    """A log2 width axis with the widths measured as its ticks."""
    widths = sorted(widths.unique())
    ax.set_xscale("log", base=2)
    ax.set_xticks(widths, labels=[str(w) for w in widths])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("width (hidden units)")


def _legend(axes):
    """The settings' legend on the first of `axes` that has a median line (a setting without counted seeds
    has none anywhere)."""
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="x-small", loc="best")
            return


def _nothing_drawn(suptitle: str, why: str) -> Figure:
    """A figure whose one panel says why nothing is drawn."""
    fig, (ax,) = panels(1)
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    fig.suptitle(suptitle, fontsize="medium")
    return fig
