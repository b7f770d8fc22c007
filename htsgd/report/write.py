"""The report of one experiment group: comparisons, verdict, tables and figures, from the group's CSVs alone.

Reads what the driver and the analysis leave in a group folder `G` (`runs.csv`, `summary/`, each run's
`history.csv`, `provenance.json`) and writes `G/tables/` and `G/figures/`. Which runs are compared, and how,
is the analysis layer's (`analysis.run_table`, `analysis.comparisons`, `analysis.trend`); this only renders.
"""

from pathlib import Path

import pandas as pd

from ..analysis import trend
from ..analysis.baseline import EQUAL_ACCURACY_METRICS
from ..analysis.comparisons import COMPRESSOR_NAMES, comparison_frame, control_runs, pair_frame
from ..analysis.run_table import DEFAULT_ANALYSIS, TRAIN_FIELDS, run_table, trend_runs
from ..core.data import TEST_SET_SIZE
from ..core.prune import MCE_RATIO
from ..record import storage
from ..record.names import COMPARISONS_CSV, FIGURES, HISTORY, TABLES, VERDICT_MD, WIDTH_TREND_CSV
from . import figures, trend_figures
from .inputs import read_column_norms, read_histories, read_sweep
from .markdown import METRICS, control_markdown, per_seed_markdown, summary_markdown, summary_table, table_notes, verdict_markdown

SUMMARY_MD, SUMMARY_CSV = "pruning_summary.md", "pruning_summary.csv"
CONTROL_CSV = "gaussian_control.csv"  # the heavy tail against α = 2 at the same σ, where the group has both
PER_SEED_MD, PER_SEED_CSV = "pruning_per_seed.md", "pruning_per_seed.csv"
ACCURACY_VS_PRUNED_PNG = "accuracy_vs_pruned_fraction.png"
TRAINING_STABILITY_PNG = "training_stability.png"
COLUMN_NORMS_PNG = "column_norms.png"
RATIO_VS_WIDTH_PNG = "pruning_ratio_vs_width.png"
EQUAL_ACCURACY_VS_WIDTH_PNG = "equal_accuracy_vs_width.png"
GAP_VS_WIDTH_PNG = "equal_accuracy_gap_vs_width.png"

# Per compressor by display name, its column of shares removable within 1 point of no noise's median.
EQUAL_ACCURACY_COLUMNS = {name.capitalize(): EQUAL_ACCURACY_METRICS[compressor][1]
                          for compressor, name in COMPRESSOR_NAMES.items()}


def per_seed_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every run: id, flags, status, the METRICS and error (the CSV of the per-seed table)."""
    return runs[["id", "setting_label"] + TRAIN_FIELDS + ["status"] + list(METRICS) + ["error"]]


def group_title(group_dir, runs: pd.DataFrame) -> str:
    """'demo (digits)': the group, named by its folder, and its dataset(s)."""
    return f"{Path(group_dir).resolve().name} ({', '.join(runs['dataset'].unique())})"


def smallest_test_set(runs: pd.DataFrame) -> int:
    """The test set's size, for the smallest accuracy difference it resolves (one image); the smallest of the
    group's datasets' where it mixes several."""
    return min(TEST_SET_SIZE[dataset] for dataset in runs["dataset"].unique())


def _skipped(what: str, why: str):
    print(f"report: skipped {what}: {why}")


def write_report(group_dir, pruning_type: str = DEFAULT_ANALYSIS["pruning_type"],
                 compression_error_metric: str = DEFAULT_ANALYSIS["compression_error_metric"]) -> list[Path]:
    """Write the comparisons, the verdict, the tables and every figure the group's inputs allow, in that order;
    return their paths, and say on stdout what was skipped and why. Reads the CSVs of the given analysis
    settings (the group's), and no other."""
    group = Path(group_dir)
    analysis = {"pruning_type": pruning_type, "compression_error_metric": compression_error_metric}
    runs = run_table(group, analysis)
    if runs is None:
        _skipped("the whole report", f"no runs.csv in {group} (run `htsgd run` on the group's params file)")
        return []
    name, title, notes = group.resolve().name, group_title(group, runs), table_notes(runs)
    tables, figure_dir = group / TABLES, group / FIGURES
    sweep = read_sweep(group, runs["id"], analysis)
    if sweep is None:
        sweep = pd.DataFrame(columns=["exp_key", "compressor", "fraction", "removed", "test_acc"])
    frame = comparison_frame(runs, sweep, smallest_test_set(runs))
    control = comparison_frame(control_runs(runs), sweep, smallest_test_set(runs))
    widths = trend_runs(runs)
    pairs = pair_frame(widths, sweep)
    gaps, trend_rows = trend.width_trend(pairs)  # one bootstrap, for the verdict and the figure
    written = [
        storage.write_text(tables / COMPARISONS_CSV, frame.to_csv(index=False)),
        storage.write_text(tables / WIDTH_TREND_CSV, trend_rows.to_csv(index=False)),
        *([storage.write_text(tables / CONTROL_CSV, control.to_csv(index=False))] if not control.empty else []),
        storage.write_text(tables / VERDICT_MD, verdict_markdown(frame, f"Verdict: {title}", notes, trend_rows,
                                                                 control_markdown(control, CONTROL_CSV))),
        storage.write_text(tables / SUMMARY_MD, summary_markdown(runs, f"Pruning at mce {MCE_RATIO:g}: {name}", notes,
                                                                 PER_SEED_MD)),
        storage.write_text(tables / SUMMARY_CSV, summary_table(runs).to_csv(index=False)),
        storage.write_text(tables / PER_SEED_MD, per_seed_markdown(runs, f"Every seed: {name}", notes)),
        storage.write_text(tables / PER_SEED_CSV, per_seed_table(runs).to_csv(index=False)),
    ]
    for png, drawable, draw, why_not in _figures(group, runs, title, sweep, widths, pairs, gaps):
        if drawable:
            written.append(figures.save(draw(), figure_dir / png))
        else:
            _skipped(png, why_not)
    return written


def _figures(group: Path, runs: pd.DataFrame, title: str, sweep: pd.DataFrame, widths: pd.DataFrame,
             pairs: pd.DataFrame, gaps: pd.DataFrame):
    """(file name, whether its inputs are there, a function drawing it, why it cannot be drawn) per figure;
    `widths`, `pairs` and `gaps`: the trend's runs (`trend_runs`), their seed pairs (`pair_frame`) and gaps
    (`trend.width_trend`)."""
    columns = sweep[sweep["compressor"] == "columns"]
    norms = read_column_norms(group, runs["id"])
    histories = read_histories(group, runs)
    yield (ACCURACY_VS_PRUNED_PNG, not columns.empty, lambda: figures.accuracy_vs_pruned_figure(runs, columns, title),
           "no rows for this grid in summary/sweep_*.csv (run `htsgd analyze`)")
    yield (TRAINING_STABILITY_PNG, bool(histories), lambda: figures.training_stability_figure(runs, histories, title),
           f"no run has a {HISTORY}")
    yield (COLUMN_NORMS_PNG, norms is not None and not norms.empty,
           lambda: figures.column_norms_figure(runs, norms, title),
           "no rows for this grid in summary/column_norms.csv.gz (run `htsgd analyze`)")
    yield (RATIO_VS_WIDTH_PNG, runs["pruning_ratio"].notna().any(), lambda: figures.width_figure(runs, title),
           f"no run has a pruning ratio at mce {MCE_RATIO:g} (run `htsgd analyze`)")
    enough_widths = runs["width"].nunique() >= trend.MIN_WIDTHS
    why_not = f"fewer than {trend.MIN_WIDTHS} widths: no trend"
    yield (EQUAL_ACCURACY_VS_WIDTH_PNG, enough_widths,
           lambda: trend_figures.equal_accuracy_width_figure(widths, EQUAL_ACCURACY_COLUMNS, title), why_not)
    yield (GAP_VS_WIDTH_PNG, enough_widths, lambda: trend_figures.gap_figure(gaps, pairs, widths, title), why_not)
