"""The report of one experiment group: a verdict, tables and figures, from the group's CSVs alone.

Reads what the driver and the analysis leave in a group folder `G`: `G/runs.csv` (the current
grid, one row per run), `G/summary/results_<type>_mce.csv`, `G/summary/sweep_<type>.csv`,
`G/summary/column_norms.csv.gz`, `G/<id>/history.csv` and `G/provenance.json`; writes `G/tables/`
and `G/figures/`. No model weights are needed.

A configuration is every training flag but the seed, taken from runs.csv (the analysis CSVs
write 0.0 for a noise-free run's α and σ and lack several flags, so grouping by their columns
would pool runs that differ). Outcomes under α-stable noise are heavy-tailed across seeds, so
every statistic is over converged seeds only, says how many there were, names the others, and
every seed is listed and drawn as well.
"""

import json
import math
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis import trend, verdict
from ..analysis.analyze import RUN_METRICS
from ..analysis.baseline import BASELINE_KEYS, EQUAL_ACCURACY_METRICS, NOISE_KEYS, TOLERANCE, is_noisy
from ..core.config import COMPRESSION_ERROR_METRICS, PRUNING_TYPES, TrainConfig
from ..core.data import TEST_SET_SIZE
from ..record import storage
from ..record.names import (ANALYSED, COLUMN_NORMS_CSV, COUNTED, FIGURES, HISTORY, NOT_ANALYSED, PROVENANCE,
                            RUNS_CSV, SUMMARY, TABLES, VERDICT_MD, results_csv, sweep_csv)
from . import figures, trend_figures

MCE_RATIO = verdict.MCE_RATIO
# The analysis settings a report reads by default: a group's defaults.
DEFAULT_ANALYSIS = {"pruning_type": PRUNING_TYPES[0], "compression_error_metric": COMPRESSION_ERROR_METRICS[0]}

TRAIN_FIELDS = [f.name for f in fields(TrainConfig)]
CONFIGURATION_FIELDS = [f for f in TRAIN_FIELDS if f != "seed"]
# A setting is a line in a figure: a configuration at every width.
SETTING_FIELDS = [f for f in CONFIGURATION_FIELDS if f != "width"]
# No noise first, then by noise type, α, σ; then the other flags, width and seed.
SORT_FIELDS = ["iterate_noise", "iterate_noise_alpha", "iterate_noise_scale", "iterate_noise_filter"] + [
    f for f in SETTING_FIELDS if f not in NOISE_KEYS] + ["width", "seed"]

# Per-run metric -> (column header, format). Each is a number per run; statistics are over converged seeds.
METRICS = {
    "test_acc_before": ("test acc before pruning (%)", ".1f"),
    "pruned_test_acc": (f"pruned test acc at mce {MCE_RATIO:g} (%)", ".1f"),
    "accuracy_change": (f"accuracy change at mce {MCE_RATIO:g} (points)", "+.1f"),
    "pruning_ratio": (f"pruning ratio at mce {MCE_RATIO:g}", ".3f"),
    "columns_within_1pt": (f"fraction prunable within {TOLERANCE:g} pt of own acc", ".2f"),
    "columns_within_1pt_of_noiseless": (f"fraction prunable within {TOLERANCE:g} pt of no noise's median", ".2f"),
    "entries_within_1pt_of_noiseless": (f"entrywise: share removable within {TOLERANCE:g} pt of no noise's median",
                                        ".2f"),
    "rank_within_1pt_of_noiseless": (f"singular values: share removable within {TOLERANCE:g} pt of no noise's median",
                                     ".2f"),
    "hill_alpha": ("Hill α̂", ".2f"),
    "block_alpha": ("block α̂", ".2f"),
    "steps": ("steps", ".0f"),
    "max_train_loss_ratio": ("max train loss / initial", ",.1f"),
}
STATS = ("median", "mean", "std", "min", "max")
# RUN_METRICS: what the analysis CSV gives once per run (the same on each of its rows).
ANALYSIS_COLUMNS = ["analysis_status", "analysis_error", *RUN_METRICS, "test_acc_before", "pruned_test_acc",
                    "pruning_ratio"]

# The compressors by name, each with its column of fractions removable within TOLERANCE of no noise's median.
TREND_COLUMNS = {name.capitalize(): EQUAL_ACCURACY_METRICS[compressor][1]
                 for compressor, name in verdict.COMPRESSOR_NAMES.items()}
COMPRESSOR_RULE = (
    "Each compressor removes a growing share of every hidden layer's weights in 2 % steps: whole columns (hidden "
    "units) smallest norm first; single entries smallest magnitude first; or the smallest singular values, where a "
    "rank-k factorisation counts k·(rows + cols) parameters. A seed's value is the share of hidden weights removed "
    f"at the last step before its test accuracy first falls more than {TOLERANCE:g} point below no noise's median "
    "accuracy; the outcome follows the rule above. Every run's accuracy at every step is in summary/sweep_*.csv.")

SUMMARY_MD, SUMMARY_CSV = "pruning_summary.md", "pruning_summary.csv"
PER_SEED_MD, PER_SEED_CSV = "pruning_per_seed.md", "pruning_per_seed.csv"
ACCURACY_VS_PRUNED_PNG = "accuracy_vs_pruned_fraction.png"
TRAINING_STABILITY_PNG = "training_stability.png"
COLUMN_NORMS_PNG = "column_norms.png"
RATIO_VS_WIDTH_PNG = "pruning_ratio_vs_width.png"
EQUAL_ACCURACY_VS_WIDTH_PNG = "equal_accuracy_vs_width.png"
GAP_VS_WIDTH_PNG = "equal_accuracy_gap_vs_width.png"


# ---------------------------------------------------------------- inputs

def read_runs(group_dir) -> pd.DataFrame | None:
    """runs.csv: the group's current grid, one row per run; None when there is none."""
    path = Path(group_dir) / RUNS_CSV
    if not path.is_file():
        return None
    runs = pd.read_csv(path, dtype={"id": str, "status": str, "error": str})
    runs["error"] = runs["error"].fillna("")
    return runs


def read_analysis(group_dir, analysis: dict = DEFAULT_ANALYSIS) -> pd.DataFrame | None:
    """Per run: its status and error as the analysis saw them, unpruned and pruned (mce 0.1) accuracy,
    pruning ratio, the equal-accuracy fractions and tail indices; None before the analysis ran.
    Read from the CSV of the group's analysis settings `analysis`, never from another's."""
    path = Path(group_dir) / SUMMARY / results_csv(analysis["pruning_type"], "mce", analysis["compression_error_metric"])
    if not path.is_file():
        return None
    mce = pd.read_csv(path, dtype={"exp_key": str, "status": str, "error": str})

    def at(ratio):
        return mce[np.isclose(mce["criterion_ratio"], ratio)].drop_duplicates("exp_key").set_index("exp_key")

    per_run = mce.drop_duplicates("exp_key").set_index("exp_key")
    analysis = per_run[["status", "error"] + RUN_METRICS].rename(
        columns={"status": "analysis_status", "error": "analysis_error"})
    analysis["test_acc_before"] = at(0.0)["test_acc"].reindex(analysis.index)
    analysis["pruned_test_acc"] = at(MCE_RATIO)["test_acc"].reindex(analysis.index)
    analysis["pruning_ratio"] = at(MCE_RATIO)["pruning_ratio"].reindex(analysis.index)
    return analysis


def read_sweep(group_dir, ids, analysis: dict = DEFAULT_ANALYSIS, compressor: str = "columns") -> pd.DataFrame | None:
    """One compressor's equal-accuracy sweep (exp_key, fraction, removed, test_acc) of the runs `ids`; None if absent."""
    path = Path(group_dir) / SUMMARY / sweep_csv(analysis["pruning_type"])
    if not path.is_file():
        return None
    sweep = pd.read_csv(path, dtype={"exp_key": str})
    return sweep[sweep["exp_key"].isin(ids) & (sweep["compressor"] == compressor)]


def read_column_norms(group_dir, ids) -> pd.DataFrame | None:
    """Every first-hidden-layer column norm (exp_key, norm) of the runs `ids`; None if absent."""
    path = Path(group_dir) / SUMMARY / COLUMN_NORMS_CSV
    if not path.is_file():
        return None
    norms = pd.read_csv(path, dtype={"exp_key": str})
    return norms[norms["exp_key"].isin(ids)]


def read_histories(group_dir, runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each run's history.csv by id; the runs without one are named on stdout."""
    histories, missing = {}, []
    for run in runs.itertuples():
        path = Path(group_dir) / run.id / HISTORY
        if path.is_file():
            histories[run.id] = pd.read_csv(path)
        else:
            missing.append(f"{run.id} ({run.status})")
    if missing:
        print(f"report: {TRAINING_STABILITY_PNG} leaves out runs without {HISTORY}: {', '.join(missing)}")
    return histories


def provenance_markdown(group_dir) -> str:
    """provenance.json as a two-column table (nested values flattened with dotted keys), or a note that it is absent."""
    path = Path(group_dir) / PROVENANCE
    if not path.is_file():
        return (f"No `{PROVENANCE}` in `{Path(group_dir).name}`: this record does not say which code, "
                "libraries or hardware produced it.\n")
    table = pd.DataFrame(list(_flattened(storage.read_json(path)).items()), columns=["field", "value"])
    return markdown_table(table)


def _flattened(value, prefix="") -> dict:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flattened(item, f"{prefix}{key}.").items()}
    shown = value if isinstance(value, str) else json.dumps(value)
    return {prefix.rstrip("."): shown}


# ---------------------------------------------------------------- the run table

def run_table(group_dir, analysis: dict = DEFAULT_ANALYSIS) -> pd.DataFrame | None:
    """One row per run of runs.csv, joined by id with its analysis; None without runs.csv.

    Columns: every runs.csv column; `status` (the analysis's where it has the run: `error` when
    the analysis failed; `not analysed` for a finished run it lacks), `error`; the METRICS;
    `converged`; and the keys `configuration`, `setting`, `baseline` (of `baseline.BASELINE_KEYS`:
    the no-noise runs to compare with), `noisy` and the readable `setting_label`.
    """
    runs = read_runs(group_dir)
    if runs is None:
        return None
    settings, analysis = analysis, read_analysis(group_dir, analysis)
    if analysis is None:
        print(f"report: no {SUMMARY}/{results_csv(settings['pruning_type'], 'mce', settings['compression_error_metric'])} "
              f"in {Path(group_dir).name}: every run is 'not analysed' (run `htsgd analyze`)")
        analysis = pd.DataFrame(columns=ANALYSIS_COLUMNS, dtype=float)
    runs = runs.join(analysis, on="id")
    runs["status"] = [_status(run_status, analysis_status) for run_status, analysis_status
                      in zip(runs["status"], runs["analysis_status"])]
    runs["error"] = [a if isinstance(a, str) and a else e for a, e in zip(runs["analysis_error"], runs["error"])]
    runs = runs.drop(columns=["analysis_status", "analysis_error"])
    runs["accuracy_change"] = runs["pruned_test_acc"] - runs["test_acc_before"]
    runs["converged"] = runs["status"].isin(COUNTED)
    runs["arm"] = arm_labels(runs)
    runs["noisy"] = [is_noisy(flags) for flags in runs[["iterate_noise"]].to_dict("records")]
    for column, key_fields in (("configuration", CONFIGURATION_FIELDS), ("setting", SETTING_FIELDS),
                               ("baseline", list(BASELINE_KEYS))):
        runs[column] = _keys(runs, key_fields)
    runs = runs.sort_values(SORT_FIELDS, kind="stable").reset_index(drop=True)
    runs["setting_label"] = setting_labels(runs)
    return runs


ARM_FIELDS = ("train_to_cap", "iterations", "convergence_accuracy")  # what `stopping_label` reads
LR_ARM = ", lr ∝ 1/width beyond {}"  # appended to the stopping rule's label by `arm_labels`


def stopping_label(run) -> str:
    """A run's stopping rule: stopped at its convergence accuracy, or a fixed number of steps."""
    return f"fixed {run.iterations} steps" if run.train_to_cap else f"stop at {run.convergence_accuracy:g} %"


def lr_anchor(runs: pd.DataFrame) -> int | None:
    """The width beyond which the group's learning rate falls as 1/width, when it does: every run below the
    group's largest lr has lr·width = largest lr · anchor, for one anchor narrower than all of them at which
    runs train at the largest lr. None when lr does not vary, or varies any other way (it is then a plain flag)."""
    top = runs["lr"].max()
    scaled = runs[runs["lr"] < top]
    if scaled.empty:
        return None
    anchors = scaled["lr"] * scaled["width"] / top
    anchor = round(anchors.iloc[0])
    if (not np.allclose(anchors, anchor, rtol=1e-6) or (scaled["width"] <= anchor).any()
            or anchor not in set(runs.loc[runs["lr"] == top, "width"])):
        return None
    return anchor


def arm_labels(runs: pd.DataFrame) -> list[str]:
    """Which arm of a width trend each run belongs to: its stopping rule, and for a run whose learning rate was
    scaled down as 1/width beyond `lr_anchor`, that too ("stop at 99 %, lr ∝ 1/width beyond 8000")."""
    anchor, top = lr_anchor(runs), runs["lr"].max()
    return [stopping_label(r) + (LR_ARM.format(anchor) if anchor and r.lr < top else "") for r in runs.itertuples()]


def trend_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs a width trend reads. Up to its anchor, an arm whose lr falls as 1/width trains exactly like its
    stopping rule's arm, so that arm's runs there are the lr-scaled arm's too: they are copied into it."""
    anchor = lr_anchor(runs)
    if anchor is None:
        return runs
    scaled_arms = runs.loc[runs["lr"] < runs["lr"].max(), "arm"].unique()
    parts = [runs[~runs["arm"].isin(scaled_arms)]]
    for arm in scaled_arms:  # after the fixed-lr arms, narrowest width first
        parent = arm.removesuffix(LR_ARM.format(anchor))
        shared = runs[(runs["arm"] == parent) & (runs["width"] <= anchor)].copy()
        shared["setting_label"] = shared["setting_label"].str.replace(parent, arm, regex=False)
        shared["arm"] = arm
        parts += [shared, runs[runs["arm"] == arm].sort_values("width", kind="stable")]
    return pd.concat(parts, ignore_index=True)


def _status(run_status: str, analysis_status) -> str:
    if isinstance(analysis_status, str):
        return analysis_status
    return NOT_ANALYSED if run_status in ANALYSED else run_status


def _keys(runs: pd.DataFrame, key_fields) -> list[str]:
    return ["|".join(f"{f}={v}" for f, v in zip(key_fields, row)) for row in runs[key_fields].itertuples(index=False)]


def noise_label(it_noise, alpha, sigma) -> str:
    return "no noise" if it_noise == 0 else f"type {int(it_noise)}, α={alpha:g}, σ={sigma:g}"


def setting_labels(runs: pd.DataFrame) -> list[str]:
    """A readable name per setting: its noise, then each other flag that varies in the group; where two
    settings would still read the same (say, no-noise runs with different unused σ), the flags that tell
    them apart are added."""
    varying = [f for f in SETTING_FIELDS if f not in NOISE_KEYS and runs[f].nunique(dropna=False) > 1]
    arms = runs["arm"].nunique() > 1  # then the arm names its flags: "fixed 400 steps", "stop at 99 %"
    if arms:
        varying = [f for f in varying if f not in ARM_FIELDS and not (f == "lr" and lr_anchor(runs))]
    labels = pd.Series([", ".join([noise_label(r.iterate_noise, r.iterate_noise_alpha, r.iterate_noise_scale)]
                                  + [f"{f}={_format_value(getattr(r, f))}" for f in varying]
                                  + ([r.arm] if arms else []))
                        for r in runs.itertuples()], index=runs.index)
    for _, rows in runs.groupby(labels, sort=False):
        if rows["setting"].nunique() > 1:
            telling = [f for f in NOISE_KEYS if rows[f].nunique(dropna=False) > 1]
            labels[rows.index] = [labels[i] + "".join(f", {f}={_format_value(rows.at[i, f])}" for f in telling)
                                  for i in rows.index]
    return labels.tolist()


def _format_value(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "–" if math.isnan(value) else f"{value:g}"
    return str(value)


# ---------------------------------------------------------------- tables

def seeds_converged(rows: pd.DataFrame) -> str:
    """'2/3': converged seeds of a configuration over all of its seeds."""
    return f"{int(rows['converged'].sum())}/{len(rows)}"


def seeds_not_counted(rows: pd.DataFrame) -> str:
    """The seeds left out of a configuration's statistics, by seed and status: 'seed 3: diverged'."""
    return "; ".join(f"seed {r.seed}: {r.status}" for r in rows.itertuples() if not r.converged)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: its flags, seeds converged, seeds not counted, and each metric's median, mean,
    sample std, min and max over converged seeds (NaN where none converged)."""
    records = []
    for _, rows in runs.groupby("configuration", sort=False):
        record = {"setting": rows["setting_label"].iloc[0], **rows.iloc[0][CONFIGURATION_FIELDS].to_dict(),
                  "seeds_converged": seeds_converged(rows), "not_counted": seeds_not_counted(rows)}
        for metric in METRICS:
            values = verdict.converged_values(rows, metric)
            for stat in STATS:
                record[f"{metric}_{stat}"] = _statistic(values, stat)
        records.append(record)
    return pd.DataFrame(records)


def _statistic(values: np.ndarray, stat: str) -> float:
    if stat == "std":
        return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
    return float(getattr(np, stat)(values)) if len(values) else math.nan


def mean_std(values: np.ndarray, spec: str) -> str:
    """'96.2 ± 1.1' (sample std), the mean alone for one value, '–' for none."""
    if not len(values):
        return "–"
    if len(values) == 1:
        return f"{values[0]:{spec}}"
    return f"{np.mean(values):{spec}} ± {np.std(values, ddof=1):{spec.lstrip('+')}}"


def summary_markdown(runs: pd.DataFrame, title: str, notes: str) -> str:
    """Per configuration: seeds converged, seeds not counted, then per metric 'median (min–max, n); mean ± std'."""
    records = []
    for _, rows in runs.groupby("configuration", sort=False):
        record = {"setting": rows["setting_label"].iloc[0], "width": rows["width"].iloc[0],
                  "seeds converged": seeds_converged(rows), "not counted": seeds_not_counted(rows) or "–"}
        for metric, (header, spec) in METRICS.items():
            values = verdict.converged_values(rows, metric)
            record[header] = verdict.median_range(values, spec) + ("" if len(values) < 2 else
                                                                  f"; {mean_std(values, spec)}")
        records.append(record)
    explanation = ("Over converged seeds only: median (min–max, n = seeds with a value); mean ± sample std. "
                   f"Every seed is in {PER_SEED_MD}.\n")
    return f"# {title}\n\n{notes}{explanation}\n{markdown_table(pd.DataFrame(records))}"


def per_seed_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Every run: id, flags, status, the METRICS and error (the CSV of the per-seed table)."""
    return runs[["id", "setting_label"] + TRAIN_FIELDS + ["status"] + list(METRICS) + ["error"]]


def per_seed_markdown(runs: pd.DataFrame, title: str, notes: str) -> str:
    shown = pd.DataFrame({"setting": runs["setting_label"], "width": runs["width"], "seed": runs["seed"],
                          "status": runs["status"]})
    for metric, (header, spec) in METRICS.items():
        shown[header] = [verdict.format_number(v, spec) for v in runs[metric]]
    if runs["error"].astype(bool).any():
        shown["error"] = runs["error"].str.replace("\n", " ")
    return f"# {title}\n\n{notes}{markdown_table(shown)}"


def table_notes(runs: pd.DataFrame) -> str:
    """The paragraphs above every table: the flags shared by every row, and what one test image is worth."""
    fixed = [f for f in SETTING_FIELDS if f not in NOISE_KEYS and runs[f].nunique(dropna=False) == 1]
    lines = ["Same in every row: " + ", ".join(f"{f} {_format_value(runs[f].iloc[0])}" for f in fixed) + "."]
    if runs["train_to_cap"].any():
        lines.append("Runs with train_to_cap (the fixed-step arm) train all their steps whatever their accuracy; one "
                     "that takes them all has status completed and counts like a converged run: \"converged\" in "
                     "these tables and statistics includes it.")
    anchor = lr_anchor(runs)
    if anchor:
        lines.append(f"Runs of an arm \"{LR_ARM.format(anchor).removeprefix(', ')}\" train at lr {runs['lr'].max():g}"
                     f" · {anchor} / width; up to width {anchor} that arm's width trend reads the runs of its stopping "
                     "rule's arm, which train alike there.")
    if runs["train_size"].any():
        lines.append("train_size n > 0: the run trained on a fixed stratified subset of n training images, the same "
                     "for every run; its train accuracy is on that subset.")
    for dataset in runs["dataset"].unique():
        size = TEST_SET_SIZE.get(dataset)
        lines.append(f"Test set of {dataset}: size unknown to the report." if size is None else
                     f"Test set of {dataset}: {size:,} images; one image is {100 / size:.2g} points of accuracy.")
    return "\n\n".join(lines) + "\n\n"


def verdict_markdown(runs: pd.DataFrame, title: str, notes: str, trend_rows: pd.DataFrame) -> str:
    """verdict.md: the group's sentence on equal accuracy, the sentence on mce, the table, the rule; then the
    three compressors and the width trend (`trend_rows`: `trend.trend_table` of `trend_runs(runs)`)."""
    found = verdict.comparisons(runs)
    table = markdown_table(verdict.comparison_table(found)) if found else "No noisy configuration in this group.\n"
    by_compressor = ""
    if found:
        sentences = "".join(f"- {sentence}\n" for sentence in verdict.compressor_sentences(found))
        by_compressor = (f"## Three compressors at equal accuracy\n\n{sentences}\n"
                         f"{markdown_table(verdict.compressor_table(found))}\n{COMPRESSOR_RULE}\n\n")
    return (f"# {title}\n\n**{verdict.group_sentence(found)}** {verdict.mce_sentence(found)}\n\n{table}\n"
            f"{verdict.RULE}\n\nAccuracy change is pruned minus unpruned test accuracy. Medians and ranges are "
            "over converged seeds only (n = seeds with a value).\n\n" + by_compressor
            + trend.trend_markdown(trend_rows) + "\n" + notes)


def markdown_table(table: pd.DataFrame) -> str:
    """A GitHub pipe table of `table`'s cells as they are: numeric-looking text is not reformatted
    ('96.0' stays), and a '|' in a cell is escaped so that it does not split the cell."""
    escaped = table.rename(columns=lambda c: str(c).replace("|", "\\|")).astype(str).apply(
        lambda column: column.str.replace("|", "\\|", regex=False))
    return escaped.to_markdown(index=False, tablefmt="pipe", disable_numparse=True) + "\n"


# ---------------------------------------------------------------- everything

def group_title(group_dir, runs: pd.DataFrame) -> str:
    """'demo (digits)': the group, named by its folder, and its dataset(s)."""
    return f"{Path(group_dir).resolve().name} ({', '.join(runs['dataset'].unique())})"


def _skipped(what: str, why: str):
    print(f"report: skipped {what}: {why}")


def write_report(group_dir, pruning_type: str = DEFAULT_ANALYSIS["pruning_type"],
                 compression_error_metric: str = DEFAULT_ANALYSIS["compression_error_metric"]) -> list[Path]:
    """Write the verdict, the tables and every figure the group's inputs allow, in that order; return
    their paths, and say on stdout what was skipped and why. Reads the CSVs of the given analysis
    settings (the group's), and no other."""
    group = Path(group_dir)
    analysis = {"pruning_type": pruning_type, "compression_error_metric": compression_error_metric}
    runs = run_table(group, analysis)
    if runs is None:
        _skipped("the whole report", f"no runs.csv in {group} (run `htsgd run` on the group's params file)")
        return []
    name, title, notes = group.resolve().name, group_title(group, runs), table_notes(runs)
    tables, figure_dir = group / TABLES, group / FIGURES
    widths = trend_runs(runs)
    gaps, trend_rows = trend.width_trend(widths, TREND_COLUMNS)  # one bootstrap, for the verdict and the figure
    written = [
        storage.write_text(tables / VERDICT_MD, verdict_markdown(runs, f"Verdict: {title}", notes, trend_rows)),
        storage.write_text(tables / SUMMARY_MD, summary_markdown(runs, f"Pruning at mce {MCE_RATIO:g}: {name}", notes)),
        storage.write_text(tables / SUMMARY_CSV, summary_table(runs).to_csv(index=False)),
        storage.write_text(tables / PER_SEED_MD, per_seed_markdown(runs, f"Every seed: {name}", notes)),
        storage.write_text(tables / PER_SEED_CSV, per_seed_table(runs).to_csv(index=False)),
    ]
    for png, drawable, draw, why_not in _figures(group, runs, title, analysis, widths, gaps):
        if drawable:
            written.append(figures.save(draw(), figure_dir / png))
        else:
            _skipped(png, why_not)
    return written


def _figures(group: Path, runs: pd.DataFrame, title: str, analysis: dict, widths: pd.DataFrame, gaps: dict):
    """(file name, whether its inputs are there, a function drawing it, why it cannot be drawn) per figure;
    `widths` and `gaps`: the trend's runs (`trend_runs`) and their gaps (`trend.width_trend`)."""
    sweep = read_sweep(group, runs["id"], analysis)
    norms = read_column_norms(group, runs["id"])
    histories = read_histories(group, runs)
    yield (ACCURACY_VS_PRUNED_PNG, sweep is not None and not sweep.empty,
           lambda: figures.accuracy_vs_pruned_figure(runs, sweep, title),
           "no rows for this grid in summary/sweep_*.csv (run `htsgd analyze`)")
    yield (TRAINING_STABILITY_PNG, bool(histories), lambda: figures.training_stability_figure(runs, histories, title),
           f"no run has a {HISTORY}")
    yield (COLUMN_NORMS_PNG, norms is not None and not norms.empty,
           lambda: figures.column_norms_figure(runs, norms, title),
           "no rows for this grid in summary/column_norms.csv.gz (run `htsgd analyze`)")
    yield (RATIO_VS_WIDTH_PNG, runs["pruning_ratio"].notna().any(), lambda: figures.width_figure(runs, title),
           "no run has a pruning ratio at mce 0.1 (run `htsgd analyze`)")
    enough_widths = runs["width"].nunique() >= trend.MIN_WIDTHS
    why_not = f"fewer than {trend.MIN_WIDTHS} widths: no trend"
    yield (EQUAL_ACCURACY_VS_WIDTH_PNG, enough_widths,
           lambda: trend_figures.equal_accuracy_width_figure(widths, TREND_COLUMNS, title), why_not)
    yield (GAP_VS_WIDTH_PNG, enough_widths, lambda: trend_figures.gap_figure(gaps, widths, title), why_not)
