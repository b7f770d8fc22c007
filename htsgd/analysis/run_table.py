"""The run table: one row per run of a group, its flags, how it ended, what the analysis measured, and the keys
that decide what it is compared with.

Read from the group's CSVs alone: `runs.csv` (the current grid, one row per run) and the analysis'
`summary/results_<type>_mce.csv`. A configuration is every training flag but the seed, taken from runs.csv
(the analysis CSVs write 0.0 for a noise-free run's α and σ and lack several flags, so grouping by their
columns would pool runs that differ). A run *counts* (column `counted`) when it converged, or, with
train_to_cap, completed its fixed number of steps (`record.names.COUNTED`); every statistic is over
counted runs.

An *arm* is a way of training the same configurations across widths: a stopping rule (stop at a train
accuracy, or a fixed number of steps), and, where a group scales the learning rate down as 1/width beyond
some width, that too (`lr_anchor`).
"""

import math
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.config import COMPRESSION_ERROR_METRICS, PRUNING_TYPES, TrainConfig
from ..core.prune import MCE_RATIO
from ..record.names import ANALYSED, COUNTED, NOT_ANALYSED, RUNS_CSV, SUMMARY, results_csv
from .baseline import BASELINE_KEYS, NOISE_KEYS, is_noisy
from .group_analysis import RUN_METRICS

# The analysis settings a report reads by default: a group's defaults.
DEFAULT_ANALYSIS = {"pruning_type": PRUNING_TYPES[0], "compression_error_metric": COMPRESSION_ERROR_METRICS[0]}

TRAIN_FIELDS = [f.name for f in fields(TrainConfig)]
CONFIGURATION_FIELDS = [f for f in TRAIN_FIELDS if f != "seed"]
# A setting is a line in a figure: a configuration at every width.
SETTING_FIELDS = [f for f in CONFIGURATION_FIELDS if f != "width"]
# No noise first, then by noise type, α, σ; then the other flags, width and seed.
SORT_FIELDS = ["iterate_noise", "iterate_noise_alpha", "iterate_noise_scale", "iterate_noise_filter"] + [
    f for f in SETTING_FIELDS if f not in NOISE_KEYS] + ["width", "seed"]
# RUN_METRICS: what the analysis CSV gives once per run (the same on each of its rows).
ANALYSIS_COLUMNS = ["analysis_status", "analysis_error", *RUN_METRICS, "test_acc_before", "pruned_test_acc",
                    "pruning_ratio"]

ARM_FIELDS = ("train_to_cap", "iterations", "convergence_accuracy")  # what `stopping_label` reads
LR_ARM = ", lr ∝ 1/width beyond {}"  # appended to the stopping rule's label by `arm_labels`


def read_runs(group_dir) -> pd.DataFrame | None:
    """runs.csv: the group's current grid, one row per run; None when there is none."""
    path = Path(group_dir) / RUNS_CSV
    if not path.is_file():
        return None
    runs = pd.read_csv(path, dtype={"id": str, "status": str, "error": str})
    runs["error"] = runs["error"].fillna("")
    return runs


def analysis_path(group_dir, analysis: dict) -> Path:
    return Path(group_dir) / SUMMARY / results_csv(analysis["pruning_type"], "mce", analysis["compression_error_metric"])


def read_analysis(group_dir, analysis: dict = DEFAULT_ANALYSIS) -> pd.DataFrame | None:
    """Per run: its status and error as the analysis saw them, unpruned and pruned (mce 0.1) accuracy,
    pruning ratio, the equal-accuracy fractions and tail indices; None before the analysis ran.
    Read from the CSV of the group's analysis settings `analysis`, never from another's."""
    path = analysis_path(group_dir, analysis)
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


def run_table(group_dir, analysis: dict = DEFAULT_ANALYSIS) -> pd.DataFrame | None:
    """One row per run of runs.csv, joined by id with its analysis; None without runs.csv.

    Columns: every runs.csv column; `status` (the analysis's where it has the run: `error` when
    the analysis failed; `not analysed` for a finished run it lacks), `error`; the analysis' metrics,
    `accuracy_change` (pruned at mce minus unpruned); `counted`; `arm`; and the keys `configuration`,
    `setting`, `baseline` (of `baseline.BASELINE_KEYS`), `noisy` and the readable `setting_label`.
    """
    runs = read_runs(group_dir)
    if runs is None:
        return None
    settings, analysis = analysis, read_analysis(group_dir, analysis)
    if analysis is None:
        print(f"report: no {analysis_path(group_dir, settings).relative_to(group_dir)} in {Path(group_dir).name}: "
              "every run is 'not analysed' (run `htsgd analyze`)")
        analysis = pd.DataFrame(columns=ANALYSIS_COLUMNS, dtype=float)
    runs = runs.join(analysis, on="id")
    runs["status"] = [_status(run_status, analysis_status) for run_status, analysis_status
                      in zip(runs["status"], runs["analysis_status"])]
    runs["error"] = [a if isinstance(a, str) and a else e for a, e in zip(runs["analysis_error"], runs["error"])]
    runs = runs.drop(columns=["analysis_status", "analysis_error"])
    runs["accuracy_change"] = runs["pruned_test_acc"] - runs["test_acc_before"]
    runs["counted"] = runs["status"].isin(COUNTED)
    runs["arm"] = arm_labels(runs)
    runs["noisy"] = [is_noisy(flags) for flags in runs[["iterate_noise"]].to_dict("records")]
    for column, key_fields in (("configuration", CONFIGURATION_FIELDS), ("setting", SETTING_FIELDS),
                               ("baseline", list(BASELINE_KEYS))):
        runs[column] = keys(runs, key_fields)
    runs = runs.sort_values(SORT_FIELDS, kind="stable").reset_index(drop=True)
    runs["setting_label"] = setting_labels(runs)
    return runs


def counted_values(rows: pd.DataFrame, column: str) -> np.ndarray:
    """`column` of the counted runs among `rows`, finite values only."""
    values = rows.loc[rows["counted"], column].to_numpy(dtype=float)
    return values[np.isfinite(values)]


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
    stopping rule's arm, so that arm's runs there, noisy and not, are the lr-scaled arm's too: they are copied
    into it, once. Comparisons select their baseline within an arm, so a copied no-noise run is counted once."""
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


def keys(runs: pd.DataFrame, key_fields) -> list[str]:
    """Per run, its values of `key_fields` as one string: runs with equal keys agree on those flags."""
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
                                  + [f"{f}={format_value(getattr(r, f))}" for f in varying]
                                  + ([r.arm] if arms else []))
                        for r in runs.itertuples()], index=runs.index)
    for _, rows in runs.groupby(labels, sort=False):
        if rows["setting"].nunique() > 1:
            telling = [f for f in NOISE_KEYS if rows[f].nunique(dropna=False) > 1]
            labels[rows.index] = [labels[i] + "".join(f", {f}={format_value(rows.at[i, f])}" for f in telling)
                                  for i in rows.index]
    return labels.tolist()


def format_value(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "–" if math.isnan(value) else f"{value:g}"
    return str(value)
