"""The analysis of a set of runs and the CSVs it writes (the seed's `analyze.py`): `htsgd analyze`
on a folder of run folders, and a group's analysis over exactly the runs in its runs.csv.

Each analysed run (`run_analysis`) is pruned at every value of each criterion (mce: 0.0 and 0.1;
parameter_ratio: 0.0, 0.1, ..., 1.0) and evaluated on the full train and test sets: one row per run
and value in `summary/results_<pruning_type>_<criterion>.csv`, with the original's columns, then:

* `status`: the run's final status (converged, cap, diverged, not_learning; in a group also
  failed, timeout, pending), or `error` when the run could not be analysed, its reason in `error`;
* `steps`: the steps the run took (`iterations` is the configured cap, as the original wrote it);
* the equal-accuracy fractions, per compressor: `columns_within_1pt`, `entries_within_1pt`,
  `rank_within_1pt` against the run's own unpruned test accuracy (see `run_analysis`). The
  `..._of_noiseless` columns apply the same rule with the reference accuracy of the run's no-noise
  baseline (`baseline`: the median over at least 2 counted seeds; empty without one); they are 0
  also when the unpruned network is itself more than 1 point below it;
* `hill_alpha`, `block_alpha`: tail indices of the first hidden layer (`tail_index`).

Runs that are not analysed (diverged: their weights are not finite; failed, timeout, pending,
incomplete; errors) still have their rows, with empty metrics. `summary/sweep_<pruning_type>.csv`
holds every run's sweep and `summary/column_norms.csv.gz` every column norm of its first hidden
layer, so the report never needs the weights. The sweep is also the accuracy of every
compressor at a fixed set of fractions. Noise-free rows carry `it_noise_alpha` and
`it_noise_scale` 0.0, as the original writes them. The stored weights are only read.
"""

import gzip
import io
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.data import DataUnavailable, load
from ..core.prune import (COMPRESSION_ERROR_METRICS, CRITERION_RATIOS, DEFAULT_PRUNING_TYPE, PRUNING_CRITERIA,
                          PRUNING_TYPES)
from ..core.train import default_device
from ..errors import UserError
from ..record import group_record, names, run_folder, storage
from ..record.names import ANALYSED, COLUMN_NORMS_CSV, ERROR, INCOMPLETE, RUNS_CSV, SUMMARY, criterion_label, results_csv, sweep_csv
from .baseline import EQUAL_ACCURACY_METRICS, baseline_key, is_noisy, reference_accuracy
from .run_analysis import analyze_run, prunable_fraction, unpruned_test_acc
from .runs import Run, failure_reason, find_runs, group_runs

ORIGINAL_COLUMNS = ["exp_key", "model", "dataset", "lr", "batch_size", "width", "depth", "seed", "iterations",
                    "convergence_accuracy", "it_noise", "it_noise_alpha", "it_noise_scale", "criterion_ratio",
                    "pruning_criterion", "train_loss", "train_acc", "test_loss", "test_acc", "pruning_ratio"]
RUN_METRICS = [name for pair in EQUAL_ACCURACY_METRICS.values() for name in pair] + ["hill_alpha", "block_alpha"]
COLUMNS = ORIGINAL_COLUMNS + ["status", "error", "steps"] + RUN_METRICS
SWEEP_COLUMNS = ["exp_key", "compressor", "fraction", "removed", "test_acc"]


class AnalysisError(UserError):
    """Some runs could not be analysed; their rows are written with status `error`."""


def results_path(results_folder, pruning_criterion="mce", compression_error_metric="fro_squared",
                 pruning_type=DEFAULT_PRUNING_TYPE) -> Path:
    return Path(results_folder) / SUMMARY / results_csv(pruning_type, pruning_criterion, compression_error_metric)


def noiseless_reference(run: Run, runs: list[Run], unpruned: dict) -> float:
    """The reference accuracy of `run`'s baseline (see `baseline`), from the analysed runs' unpruned test acc."""
    key = baseline_key(run.config)
    return reference_accuracy([unpruned[r.exp_key] for r in runs if r.exp_key in unpruned
                               and r.status in names.COUNTED and not is_noisy(r.config)
                               and baseline_key(r.config) == key])


def analyze_runs(root, runs: list[Run], criteria, compression_error_metric="fro_squared", ignore_last_layer=True,
                 pruning_type=DEFAULT_PRUNING_TYPE, data_dir="data", device=None, log=None, cache: bool = False) -> dict:
    """Analyse `runs` (those with finite weights), write every CSV under `root/summary/`, return the tables.

    Datasets are loaded once each, and only when a run needs them. A dataset that cannot be loaded
    is fatal (DataUnavailable says what to put where); anything that goes wrong with one run becomes
    its rows' status `error`. With `cache`, each run's own result is kept under the key of what it
    depends on (`group_record.analysis_key`) and reused while that key holds; what depends on other
    runs (the no-noise reference) is always computed afresh. Raises AnalysisError, after writing,
    when any run has status error or incomplete.
    """
    log = log or sys.stderr
    device = device or default_device()
    settings = {"pruning_type": pruning_type, "compression_error_metric": compression_error_metric}
    datasets, analysed = {}, {}
    for run in runs:
        if run.status not in ANALYSED:
            continue
        try:
            key = group_record.analysis_key(run.config, run.path, settings) if cache else None
            cached = group_record.read_cached_analysis(root, run.exp_key, key) if cache else None
            if cached is not None:
                analysed[run.exp_key] = cached
                continue
            dataset = (run.config["dataset"], run.config["train_size"])  # a subset is a dataset of its own
            if dataset not in datasets:
                name, train_size = dataset
                datasets[dataset] = load(name, data_dir, device, train_size)
            analysed[run.exp_key] = analyze_run(run, datasets[dataset], criteria, compression_error_metric,
                                                ignore_last_layer, pruning_type, device)
            if cache:
                group_record.write_cached_analysis(root, run.exp_key, key, analysed[run.exp_key])
        except DataUnavailable:
            raise
        except Exception as err:  # noqa: BLE001 -- any failure of one run is recorded in its row and fails the analysis
            run.status, run.error = ERROR, failure_reason(err)
    unpruned = {key: unpruned_test_acc(a["rows"]) for key, a in analysed.items()}
    for run in runs:
        if run.exp_key in analysed:
            reference = noiseless_reference(run, runs, unpruned)
            for compressor, (_, of_noiseless) in EQUAL_ACCURACY_METRICS.items():
                analysed[run.exp_key]["metrics"][of_noiseless] = (
                    math.nan if math.isnan(reference) else prunable_fraction(analysed[run.exp_key]["sweep"], compressor, reference))
    tables = {criterion: _criterion_table(runs, analysed, criterion, compression_error_metric) for criterion in criteria}
    summary = Path(root) / SUMMARY
    for criterion, table in tables.items():
        _write_csv(results_path(root, criterion, compression_error_metric, pruning_type), table)
    _write_csv(summary / sweep_csv(pruning_type), pd.DataFrame(
        [{"exp_key": key, **point} for key, a in analysed.items() for point in a["sweep"]], columns=SWEEP_COLUMNS))
    _write_csv(summary / COLUMN_NORMS_CSV, pd.DataFrame(
        [{"exp_key": key, "norm": float(n)} for key, a in analysed.items() for n in a["norms"]], columns=["exp_key", "norm"]))
    problems = [run for run in runs if run.status in (ERROR, INCOMPLETE)]
    for run in problems:
        print(f"not analysed ({run.status}): {run.exp_key}: {run.error}", file=log)
    if problems:
        raise AnalysisError(f"{len(problems)} run(s) could not be analysed (rows with status error or incomplete in "
                            f"{summary}): " + "; ".join(f"{r.exp_key}: {r.error}" for r in problems))
    return tables


def _criterion_table(runs, analysed, criterion, compression_error_metric) -> pd.DataFrame:
    rows = []
    for run in runs:
        c = run.config or {}
        noise = c.get("iterate_noise")
        common = {"exp_key": run.exp_key, "model": c.get("model"), "dataset": c.get("dataset"), "lr": c.get("lr"),
                  "batch_size": c.get("batch_size_train"), "width": c.get("width"), "depth": c.get("depth"),
                  "seed": c.get("seed"), "iterations": c.get("iterations"),
                  "convergence_accuracy": c.get("convergence_accuracy"), "it_noise": noise,
                  "it_noise_alpha": 0.0 if noise == 0 else c.get("iterate_noise_alpha"),
                  "it_noise_scale": 0.0 if noise == 0 else c.get("iterate_noise_scale"),
                  "pruning_criterion": criterion_label(criterion, compression_error_metric),
                  "status": run.status, "error": run.error, "steps": _steps(run)}
        result = analysed.get(run.exp_key)
        if result is None:
            rows += [{**common, "criterion_ratio": ratio} for ratio in CRITERION_RATIOS[criterion]]
        else:
            rows += [{**common, **row, **result["metrics"]} for row in result["rows"][criterion]]
    return pd.DataFrame(rows, columns=COLUMNS)


def _steps(run: Run):
    try:
        return run_folder.read_metrics(run.path)["steps"] if run_folder.is_complete(run.path) else None
    except (OSError, ValueError, KeyError):
        return None


def _write_csv(path, table: pd.DataFrame) -> Path:
    """Write `table`; gzipped when the name ends in .gz (with no time in its header, so equal tables give equal files)."""
    out = io.StringIO()
    table.to_csv(out, index=False, lineterminator="\n", float_format="%.9g" if path.name.endswith(".gz") else None)
    if path.name.endswith(".gz"):
        data = gzip.compress(out.getvalue().encode(), mtime=0)
        return storage.atomic_write(path, lambda f: f.write(data))
    return storage.write_text(path, out.getvalue())


def _check_choices(pruning_criteria, compression_error_metric, pruning_type):
    for criterion in pruning_criteria:
        if criterion not in PRUNING_CRITERIA:
            raise UserError(f"pruning_criterion = {criterion!r} is not allowed; use one of {', '.join(PRUNING_CRITERIA)}")
    for name, value, allowed in (("compression_error_metric", compression_error_metric, COMPRESSION_ERROR_METRICS),
                                 ("pruning_type", pruning_type, PRUNING_TYPES)):
        if value not in allowed:
            raise UserError(f"{name} = {value!r} is not allowed; use one of {', '.join(allowed)}")


def analyze_folder(results_folder, pruning_criterion="mce", compression_error_metric="fro_squared",
                   ignore_last_layer=True, pruning_type=DEFAULT_PRUNING_TYPE, data_dir="data", device=None,
                   log=None) -> pd.DataFrame:
    """`htsgd analyze` on a folder of run folders: every run found is analysed; returns the criterion's table."""
    _check_choices([pruning_criterion], compression_error_metric, pruning_type)
    root = Path(results_folder)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    if run_folder.is_run_folder(root):
        raise UserError(f"{root} is itself a run folder; pass the folder that holds the runs (e.g. {root.parent})")
    runs = find_runs(root)
    if not runs:
        raise UserError(f"no run folders (folders with {names.CONFIG}) under {root}")
    return analyze_runs(root, runs, [pruning_criterion], compression_error_metric, ignore_last_layer, pruning_type,
                        data_dir, device, log)[pruning_criterion]


def analyze_group(group_dir, pruning_type=DEFAULT_PRUNING_TYPE, compression_error_metric="fro_squared", data_dir="data",
                  device=None, log=None) -> dict:
    """The analysis of a group: exactly the runs in its runs.csv, both criteria, output layer ignored (the paper's)."""
    _check_choices(PRUNING_CRITERIA, compression_error_metric, pruning_type)
    group = Path(group_dir)
    if not (group / RUNS_CSV).is_file():
        raise UserError(f"{group} holds no {RUNS_CSV}; run `htsgd run` on the group's params file first")
    return analyze_runs(group, group_runs(group), PRUNING_CRITERIA, compression_error_metric, True, pruning_type,
                        data_dir, device, log, cache=True)


def summary_text(table: pd.DataFrame) -> str:
    """Per run and criterion value: status, pruning ratio and test accuracy before and after pruning."""
    if table.empty:
        return "no rows"
    before = table[np.isclose(table["criterion_ratio"], 0.0)].set_index("exp_key")["test_acc"]
    view = pd.DataFrame({
        "run": table["exp_key"], "status": table["status"], "steps": table["steps"],
        "criterion": table["pruning_criterion"] + " " + table["criterion_ratio"].map("{:.1f}".format),
        "pruning_ratio": table["pruning_ratio"].map("{:.3f}".format),
        "test_acc_before": table["exp_key"].map(before).map("{:.2f}".format),
        "test_acc_pruned": table["test_acc"].map("{:.2f}".format),
    })
    return view.to_string(index=False)
