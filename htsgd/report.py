"""Tables and figures of one experiment group: how much the trained networks could be pruned.

Reads what the driver and `htsgd analyze` leave in a group folder `G` (`G/runs.csv`,
`G/summary/results_*_mce.csv`, `G/summary/results_*_parameter_ratio.csv`, `G/<id>/model.pt`)
and writes `G/tables/` and `G/figures/`. Outcomes under alpha-stable noise are heavy-tailed
across seeds, so every aggregate is given as the median beside the mean ± std, and every seed's
own value is listed or drawn as well. Runs the driver marks failed or pending are left out.

Figures are drawn on `matplotlib.figure.Figure` objects, not through pyplot: PNGs are rendered
with Agg whatever backend the caller (e.g. a notebook) has selected, and no global figure state
is touched.
"""

import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, NullLocator

from . import storage
from .data import NUM_CLASSES
from .models import build_model, hidden_layers
from .prune import column_sq_norms

MCE_RATIO = 0.1  # the paper's pruning criterion: removed squared norm <= 10 % of the layer's
IGNORED_STATUSES = ("failed", "pending")
# Configuration columns of the analysis CSVs; a configuration is these without the seed.
CONFIG_COLUMNS = ["model", "dataset", "width", "depth", "lr", "batch_size", "convergence_accuracy",
                  "it_noise", "it_noise_alpha", "it_noise_scale"]
NOISE_COLUMNS = ["it_noise", "it_noise_alpha", "it_noise_scale"]
# A line in a figure: a configuration at every width.
SETTING_COLUMNS = [c for c in CONFIG_COLUMNS if c != "width"]
METRICS = {"test_acc_before": ("test acc before pruning (%)", ".1f"),
           "pruned_test_acc": (f"pruned test acc at mce {MCE_RATIO:g} (%)", ".1f"),
           "pruning_ratio": (f"pruning ratio at mce {MCE_RATIO:g}", ".3f")}
STATS = ("median", "mean", "std")
# Only the layer names matter (shapes do not), but vgg11_wide needs an image shape to be built.
INPUT_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28),
                "cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "ecg5000": (140,)}

TABLES, FIGURES = "tables", "figures"
SUMMARY_MD, SUMMARY_CSV = "pruning_summary.md", "pruning_summary.csv"
PER_SEED_MD, PER_SEED_CSV = "pruning_per_seed.md", "pruning_per_seed.csv"
RATIO_VS_WIDTH_PNG = "pruning_ratio_vs_width.png"
COLUMN_NORMS_PNG = "column_norms.png"
ACCURACY_VS_PRUNED_PNG = "accuracy_vs_pruned_fraction.png"


# ---------------------------------------------------------------- inputs

def find_results_csv(group_dir, criterion: str) -> Path | None:
    """The analysis CSV of `criterion` (`mce`, `parameter_ratio`), filter pruning preferred over kernel."""
    matches = sorted((Path(group_dir) / "summary").glob(f"results_*_{criterion}.csv"))
    preferred = [p for p in matches if p.name == f"results_filter_{criterion}.csv"]
    return (preferred or matches or [None])[0]


def ignored_run_ids(group_dir) -> set[str]:
    """Ids that runs.csv marks failed or pending: any rows of theirs in the analysis CSVs are stale."""
    runs_csv = Path(group_dir) / "runs.csv"
    if not runs_csv.is_file():
        return set()
    runs = pd.read_csv(runs_csv, dtype={"id": str, "status": str})
    return set(runs.loc[runs["status"].isin(IGNORED_STATUSES), "id"])


def read_results(group_dir, criterion: str) -> pd.DataFrame | None:
    """Rows of the `criterion` analysis CSV for the group's usable runs; None when there are none."""
    path = find_results_csv(group_dir, criterion)
    if path is None:
        return None
    results = pd.read_csv(path, dtype={"exp_key": str})
    results["criterion_ratio"] = results["criterion_ratio"].round(6)  # 0.30000000000000004 -> 0.3
    results = results[~results["exp_key"].isin(ignored_run_ids(group_dir))].reset_index(drop=True)
    return None if results.empty else results


# ---------------------------------------------------------------- tables

def per_seed_table(mce: pd.DataFrame) -> pd.DataFrame:
    """One row per run: test accuracy unpruned (mce 0.0) and pruned at mce 0.1, and the pruning ratio."""
    def at(ratio):
        return mce[np.isclose(mce["criterion_ratio"], ratio)].drop_duplicates("exp_key").set_index("exp_key")

    unpruned, pruned = at(0.0), at(MCE_RATIO)
    runs = mce.drop_duplicates("exp_key").set_index("exp_key")
    table = runs[CONFIG_COLUMNS + ["seed", "status", "iterations"]].rename(columns={"iterations": "steps"})
    table["test_acc_before"] = unpruned["test_acc"].reindex(table.index)
    table["pruned_test_acc"] = pruned["test_acc"].reindex(table.index)
    table["pruning_ratio"] = pruned["pruning_ratio"].reindex(table.index)
    return table.sort_values(CONFIG_COLUMNS + ["seed"]).reset_index()


def summary_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: number of seeds, and median, mean and sample std over seeds of each metric."""
    grouped = per_seed.groupby(CONFIG_COLUMNS, dropna=False, sort=True)
    stats = grouped[list(METRICS)].agg(list(STATS))
    stats.columns = [f"{metric}_{stat}" for metric, stat in stats.columns]
    return pd.concat([grouped["seed"].nunique().rename("n_seeds"), stats], axis=1).reset_index()


def pruning_summary(group_dir) -> pd.DataFrame | None:
    """The summary table of a group (for notebooks); None before `htsgd analyze` has written the mce CSV."""
    mce = read_results(group_dir, "mce")
    return None if mce is None else summary_table(per_seed_table(mce))


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub markdown table of `table`'s cells as they are (pandas' to_markdown needs `tabulate`)."""
    def row(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [row(table.columns), row(["---"] * len(table.columns))]
    lines += [row(cells) for cells in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def noise_label(it_noise, alpha, sigma) -> str:
    return "no noise" if it_noise == 0 else f"type {int(it_noise)}, α={alpha:g}, σ={sigma:g}"


def _format_value(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "–" if math.isnan(value) else f"{value:g}"
    return str(value)


def _varying(table: pd.DataFrame, columns) -> list[str]:
    return [c for c in columns if table[c].nunique(dropna=False) > 1]


def _label_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Row labels: the noise setting, then every other configuration column that varies in `table`."""
    labels = pd.DataFrame({"noise": [noise_label(*v) for v in table[NOISE_COLUMNS].itertuples(index=False)]},
                          index=table.index)
    for column in _varying(table, [c for c in CONFIG_COLUMNS if c not in NOISE_COLUMNS]):
        labels[column] = table[column].map(_format_value)
    return labels


def _fixed_line(table: pd.DataFrame) -> str:
    fixed = [c for c in CONFIG_COLUMNS if c not in NOISE_COLUMNS and c not in _varying(table, CONFIG_COLUMNS)]
    if not fixed:
        return ""
    return "Same in every row: " + ", ".join(f"{c} {_format_value(table[c].iloc[0])}" for c in fixed) + ".\n"


def _mean_std(mean, std, spec) -> str:
    return f"{mean:{spec}}" if math.isnan(std) else f"{mean:{spec}} ± {std:{spec}}"


def summary_markdown(summary: pd.DataFrame, title: str) -> str:
    shown = _label_columns(summary)
    shown["seeds"] = summary["n_seeds"]
    for metric, (name, spec) in METRICS.items():
        shown[f"{name}: median"] = summary[f"{metric}_median"].map(lambda v: f"{v:{spec}}")
        shown[f"{name}: mean ± std"] = [_mean_std(m, s, spec) for m, s in
                                        zip(summary[f"{metric}_mean"], summary[f"{metric}_std"])]
    note = ("Median and mean ± sample std over seeds. Outcomes under α-stable noise are heavy-tailed "
            f"across seeds: read the median first, and every seed in {PER_SEED_MD}.\n")
    return f"# {title}\n\n{_fixed_line(summary)}{note}\n{markdown_table(shown)}"


def per_seed_markdown(per_seed: pd.DataFrame, title: str) -> str:
    shown = _label_columns(per_seed)
    shown["seed"], shown["status"], shown["steps"] = per_seed["seed"], per_seed["status"], per_seed["steps"]
    for metric, (name, spec) in METRICS.items():
        shown[name] = per_seed[metric].map(lambda v: f"{v:{spec}}")
    return f"# {title}\n\n{_fixed_line(per_seed)}\n{markdown_table(shown)}"


# ---------------------------------------------------------------- figures

def _settings(table: pd.DataFrame):
    """(label, rows) per line to draw: one per configuration without width and seed, sorted (no noise first)."""
    extra = _varying(table, [c for c in SETTING_COLUMNS if c not in NOISE_COLUMNS])
    for key, rows in table.groupby(SETTING_COLUMNS, dropna=False, sort=True):
        setting = dict(zip(SETTING_COLUMNS, key))
        label = ", ".join([noise_label(*(setting[c] for c in NOISE_COLUMNS))]
                          + [f"{c}={_format_value(setting[c])}" for c in extra])
        yield label, rows


def _colors(n: int) -> list:
    """Distinct colours for `n` lines: tab10, or tab20 when ten would repeat."""
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _save(fig: Figure, path) -> Path:
    return storage.atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=150, bbox_inches="tight"))


def plot_pruning_ratio_vs_width(per_seed: pd.DataFrame, path) -> Path:
    """Pruning ratio at mce 0.1 against width: the median over seeds as a line, each seed as a faint point."""
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    settings = list(_settings(per_seed))
    for (label, rows), color in zip(settings, _colors(len(settings))):
        median = rows.groupby("width")["pruning_ratio"].median()
        ax.plot(median.index, median.to_numpy(), marker="o", color=color, label=f"{label} (median)")
        ax.scatter(rows["width"], rows["pruning_ratio"], color=color, alpha=0.3, s=14, linewidths=0)
    widths = sorted(per_seed["width"].unique())
    ax.set_xscale("log")
    ax.set_xticks(widths, labels=[str(w) for w in widths])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("width (hidden units)")
    ax.set_ylabel(f"pruning ratio at mce {MCE_RATIO:g}")
    ax.set_title("Share of hidden-layer parameters pruned (points: single seeds)")
    ax.legend(fontsize="small")
    return _save(fig, path)


def first_hidden_weight_name(model: str, dataset: str, width: int, depth: int) -> str:
    """The state_dict key of the first prunable layer's weight, as the model itself names it.

    The model is built on the meta device: no memory is allocated, even for vgg11_wide.
    """
    with torch.device("meta"):
        net = build_model(model, INPUT_SHAPES[dataset], NUM_CLASSES[dataset], int(width), int(depth))
    return hidden_layers(net)[0][0] + ".weight"


def column_norms(weight: torch.Tensor) -> np.ndarray:
    """The l2 norm of each hidden unit's incoming weights (a Linear row, or a whole conv filter)."""
    return column_sq_norms(weight.cpu(), "filter").sqrt().numpy()


def norm_ccdf(weight: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positive finite column norms, and the fraction of columns whose norm is at least each one
    (the complementary CDF; drawable on log-log axes, the largest norm keeping a share above 0)."""
    norms = np.sort(column_norms(weight))
    norms = norms[np.isfinite(norms) & (norms > 0)]
    return norms, 1.0 - np.arange(len(norms)) / len(norms)


def plot_column_norms(group_dir, runs: pd.DataFrame, path) -> Path | None:
    """Complementary CDF of the first hidden layer's column norms, per setting, lowest seed, largest width.

    `runs` is any analysis table (one or more rows per run). Returns None when no weights could be read.
    """
    group = Path(group_dir)
    width = runs["width"].max()
    at_width = runs[runs["width"] == width].drop_duplicates("exp_key")
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    settings = list(_settings(at_width))
    drawn = 0
    for (label, rows), color in zip(settings, _colors(len(settings))):
        run = rows.sort_values("seed").iloc[0]
        weights_file = group / run["exp_key"] / storage.WEIGHTS
        if not weights_file.is_file():
            print(f"report: column norms: no {weights_file}; {label} left out")
            continue
        name = first_hidden_weight_name(run["model"], run["dataset"], run["width"], run["depth"])
        norms, share_at_least = norm_ccdf(storage.load_torch(weights_file)[name])
        ax.plot(norms, share_at_least, color=color, label=f"{label} (seed {int(run['seed'])})")
        drawn += 1
    if not drawn:
        return None
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):  # plain numbers: labels like 3x10^0 on minor ticks collide
        axis.set_major_formatter(LogFormatter())
        axis.set_minor_formatter(LogFormatter(labelOnlyBase=False))
    ax.set_xlabel("column norm x (l2 norm of a hidden unit's incoming weights)")
    ax.set_ylabel("fraction of columns with norm ≥ x")
    ax.set_title(f"First hidden layer, width {width}: heavier tail = more compressible")
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_accuracy_vs_pruned_fraction(parameter_ratio: pd.DataFrame, path) -> Path:
    """Pruned test accuracy against the fraction of columns removed, at the largest width.

    The line is the median over seeds, the band spans the lowest to the highest seed.
    """
    width = parameter_ratio["width"].max()
    at_width = parameter_ratio[parameter_ratio["width"] == width]
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    settings = list(_settings(at_width))
    for (label, rows), color in zip(settings, _colors(len(settings))):
        accuracy = rows.groupby("criterion_ratio")["test_acc"].agg(["median", "min", "max"])
        seeds = rows["seed"].nunique()
        ax.plot(accuracy.index, accuracy["median"], marker="o", ms=3, color=color,
                label=f"{label} (median of {seeds} seed{'s' if seeds > 1 else ''})")
        ax.fill_between(accuracy.index, accuracy["min"], accuracy["max"], color=color, alpha=0.2, linewidth=0)
    ax.set_xlabel("fraction of columns pruned in each hidden layer (smallest norms first)")
    ax.set_ylabel("pruned test accuracy (%)")
    ax.set_title(f"Width {width}; bands: range over seeds")
    ax.legend(fontsize="small")
    return _save(fig, path)


# ---------------------------------------------------------------- everything

def _skipped(what: str, why: str):
    print(f"report: skipped {what}: {why}")


def write_report(group_dir) -> list[Path]:
    """Write every table and figure the group's inputs allow; say what was skipped and why."""
    group = Path(group_dir)
    tables, figures = group / TABLES, group / FIGURES
    mce = read_results(group, "mce")
    parameter_ratio = read_results(group, "parameter_ratio")
    written = []
    if mce is None:
        _skipped(f"{TABLES}/ and {RATIO_VS_WIDTH_PNG}", "no usable rows in summary/results_*_mce.csv "
                 "(run `htsgd analyze --pruning_criterion mce`)")
    else:
        per_seed = per_seed_table(mce)
        summary = summary_table(per_seed)
        written += [
            storage.write_text(tables / SUMMARY_MD, summary_markdown(summary, f"Pruning at mce {MCE_RATIO:g}: {group.resolve().name}")),
            storage.write_text(tables / SUMMARY_CSV, summary.to_csv(index=False)),
            storage.write_text(tables / PER_SEED_MD, per_seed_markdown(per_seed, f"Every seed: {group.resolve().name}")),
            storage.write_text(tables / PER_SEED_CSV, per_seed.to_csv(index=False)),
            plot_pruning_ratio_vs_width(per_seed, figures / RATIO_VS_WIDTH_PNG),
        ]
    runs = mce if mce is not None else parameter_ratio
    norms_figure = None if runs is None else plot_column_norms(group, runs, figures / COLUMN_NORMS_PNG)
    if norms_figure is None:
        _skipped(COLUMN_NORMS_PNG, "no analysed run with its model.pt")
    else:
        written.append(norms_figure)
    if parameter_ratio is None:
        _skipped(ACCURACY_VS_PRUNED_PNG, "no usable rows in summary/results_*_parameter_ratio.csv "
                 "(run `htsgd analyze --pruning_criterion parameter_ratio`)")
    else:
        written.append(plot_accuracy_vs_pruned_fraction(parameter_ratio, figures / ACCURACY_VS_PRUNED_PNG))
    return written
