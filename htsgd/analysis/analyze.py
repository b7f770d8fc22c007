"""Prune every run, evaluate the pruned networks, and measure what makes them prunable (the seed's `analyze.py`).

Each analysed run is pruned at every value of each criterion (mce: 0.0 and 0.1; parameter_ratio:
0.0, 0.1, ..., 1.0) and evaluated on the full train and test sets: one row per run and value in
`summary/results_<pruning_type>_<criterion>.csv`, with the original's columns, then:

* `status`: the run's final status (converged, cap, diverged, not_learning; in a group also
  failed, timeout, pending), or `error` when the run could not be analysed, its reason in `error`;
* `steps`: the steps the run took (`iterations` is the configured cap, as the original wrote it);
* the equal-accuracy fractions, per compressor (`core.compress`: whole columns smallest norm
  first, single entries smallest magnitude first, singular values smallest first). Each compresses
  every hidden layer at target fractions 0, 2 %, ..., 100 % (`SWEEP_FRACTIONS`) and the test
  accuracy is taken at each; the answer is the share of hidden weights removed at the last step
  before the first whose accuracy is more than 1 point below the run's own unpruned test accuracy (a
  prefix rule: a later recovery does not count): `columns_within_1pt`,
  `entries_within_1pt`, `rank_within_1pt`. The `..._of_noiseless` columns apply the same rule with
  the reference accuracy of the run's no-noise baseline (`baseline`: the median over at least 2
  counted seeds; empty without one); they are 0 also when the unpruned network is itself more than
  1 point below it;
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
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.compress import COMPRESSORS, compress_sweep
from ..core.config import TrainConfig, make_config
from ..core.data import DataUnavailable, load
from ..core.evaluate import evaluate
from ..core.models import build_model, hidden_layers
from ..core.prune import (COMPRESSION_ERROR_METRICS, CRITERION_RATIOS, PRUNING_CRITERIA, PRUNING_TYPES, column_sq_norms,
                          prune_model)
from ..core.train import default_device
from ..errors import UserError
from ..record import group_record, names, run_folder, storage
from ..record.names import ANALYSED, COLUMN_NORMS_CSV, ERROR, INCOMPLETE, RUNS_CSV, SUMMARY, criterion_label, results_csv, sweep_csv
from ..record.trained_run import load_tensors
from .baseline import EQUAL_ACCURACY_METRICS, TOLERANCE, baseline_key, is_noisy, reference_accuracy
from .tail_index import column_tail_indices

ORIGINAL_COLUMNS = ["exp_key", "model", "dataset", "lr", "batch_size", "width", "depth", "seed", "iterations",
                    "convergence_accuracy", "it_noise", "it_noise_alpha", "it_noise_scale", "criterion_ratio",
                    "pruning_criterion", "train_loss", "train_acc", "test_loss", "test_acc", "pruning_ratio"]
RUN_METRICS = [name for pair in EQUAL_ACCURACY_METRICS.values() for name in pair] + ["hill_alpha", "block_alpha"]
COLUMNS = ORIGINAL_COLUMNS + ["status", "error", "steps"] + RUN_METRICS
SWEEP_COLUMNS = ["exp_key", "compressor", "fraction", "removed", "test_acc"]
SWEEP_FRACTIONS = tuple(k / 50 for k in range(51))  # target fractions, in steps of 2 %


class AnalysisError(UserError):
    """Some runs could not be analysed; their rows are written with status `error`."""


@dataclass
class Run:
    """One run to analyse: where it is, its configuration (None if unreadable) and what is known of it."""
    exp_key: str
    path: Path
    config: dict | None
    status: str
    error: str = ""


def results_path(results_folder, pruning_criterion="mce", compression_error_metric="fro_squared",
                 pruning_type="kernel") -> Path:
    return Path(results_folder) / SUMMARY / results_csv(pruning_type, pruning_criterion, compression_error_metric)


def find_runs(results_folder) -> list[Run]:
    """Every run folder under `results_folder` (a folder with config.json or metrics.json), sorted;
    `summary/` and hidden folders are skipped, and a run folder is not searched further."""
    root = Path(results_folder)
    runs = []

    def visit(folder: Path):
        for child in sorted(p for p in folder.iterdir() if p.is_dir()):
            if child.name.startswith(".") or (folder == root and child.name == SUMMARY):
                continue
            if run_folder.is_run_folder(child):
                runs.append(_folder_run(root, child))
            else:
                visit(child)

    visit(root)
    return runs


def _folder_run(root: Path, path: Path) -> Run:
    key = path.relative_to(root).as_posix()
    try:
        config = run_folder.read_config(path)
        if config is None:
            return Run(key, path, None, ERROR, f"no {names.CONFIG}: the run's configuration is unknown")
        if not run_folder.is_complete(path):
            return Run(key, path, config, INCOMPLETE, f"no {names.METRICS}: training did not finish")
        return Run(key, path, config, run_folder.read_metrics(path)["status"])
    except (OSError, ValueError, KeyError) as err:
        return Run(key, path, None, ERROR, _reason(err))


def group_runs(group_dir) -> list[Run]:
    """The runs a group's runs.csv lists (its current grid), each checked against its folder's config.json."""
    group = Path(group_dir)
    table = pd.read_csv(group / RUNS_CSV, dtype={"id": str, "error": str}, keep_default_na=False)
    runs = []
    for row in table.to_dict("records"):
        config = make_config({f.name: row[f.name] for f in fields(TrainConfig)}, where=f"{group / RUNS_CSV}: {row['id']}").to_dict()
        run = Run(row["id"], group / row["id"], config, row["status"], row.get("error", ""))
        saved = run_folder.read_config(run.path) if run.status in ANALYSED else config
        if saved != config:
            run.status, run.error = ERROR, f"{names.CONFIG} differs from runs.csv: " + "; ".join(run_folder.differences(saved or {}, config))
        runs.append(run)
    return runs


def analyze_run(run: Run, data, criteria, compression_error_metric="fro_squared", ignore_last_layer=True,
                pruning_type="kernel", device="cpu") -> dict:
    """Prune and evaluate one run: rows per criterion, its sweep, its first layer's column norms and tail indices."""
    config = make_config(run.config, where=str(run.path / names.CONFIG))
    model = build_model(config.model, data.input_shape, data.num_classes, config.width, config.depth)
    model.load_state_dict(load_tensors(run.path / names.WEIGHTS, map_location="cpu"))
    model.to(device).eval()
    rows = {}
    for criterion in criteria:
        rows[criterion] = []
        for ratio in CRITERION_RATIOS[criterion]:
            pruned = prune_model(model, ratio, criterion, compression_error_metric, pruning_type)
            train_loss, train_acc = evaluate(pruned.model, data.train_x, data.train_y)
            test_loss, test_acc = evaluate(pruned.model, data.test_x, data.test_y)
            rows[criterion].append({"criterion_ratio": ratio, "train_loss": train_loss, "train_acc": train_acc,
                                    "test_loss": test_loss, "test_acc": test_acc,
                                    "pruning_ratio": pruned.pruning_ratio(ignore_last_layer)})
    sweep = []
    for compressor in COMPRESSORS:
        for compressed in compress_sweep(model, compressor, SWEEP_FRACTIONS, pruning_type):
            sweep.append({"compressor": compressor, "fraction": compressed.fraction, "removed": compressed.removed_share,
                          "test_acc": evaluate(compressed.model, data.test_x, data.test_y)[1]})
    first = hidden_layers(model)[0][1].weight.detach().cpu()
    unpruned = sweep[0]["test_acc"]
    own = {EQUAL_ACCURACY_METRICS[c][0]: prunable_fraction(sweep, c, unpruned) for c in COMPRESSORS}
    return {"rows": rows, "sweep": sweep, "norms": column_sq_norms(first, "filter").sqrt().tolist(),
            "metrics": {**column_tail_indices(first), **own}}


def prunable_fraction(sweep, compressor: str, reference_acc: float, tolerance: float = TOLERANCE) -> float:
    """The largest share of the hidden weights `compressor` removed, along its sweep, before test accuracy first
    fell more than `tolerance` below the reference (a prefix rule: a later recovery does not count)."""
    kept = 0.0
    for point in (p for p in sweep if p["compressor"] == compressor):
        if point["test_acc"] < reference_acc - tolerance - 1e-9:
            break
        kept = point["removed"]
    return kept


def noiseless_reference(run: Run, runs: list[Run], unpruned: dict) -> float:
    """The reference accuracy of `run`'s baseline (see `baseline`), from the analysed runs' unpruned test acc."""
    key = baseline_key(run.config)
    return reference_accuracy([unpruned[r.exp_key] for r in runs if r.exp_key in unpruned
                               and r.status in names.COUNTED and not is_noisy(r.config)
                               and baseline_key(r.config) == key])


def analyze_runs(root, runs: list[Run], criteria, compression_error_metric="fro_squared", ignore_last_layer=True,
                 pruning_type="kernel", data_dir="data", device=None, log=None, cache: bool = False) -> dict:
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
            run.status, run.error = ERROR, _reason(err)
    unpruned = {key: a["sweep"][0]["test_acc"] for key, a in analysed.items()}
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


def _reason(err: Exception) -> str:
    if type(err).__name__ == "UnpicklingError":
        return f"{names.WEIGHTS} is not a plain tensor file; only tensors are loaded, never pickled code"
    lines = str(err).strip().splitlines() or [""]
    return f"{type(err).__name__}: {lines[0][:300]}"


def _check_choices(pruning_criteria, compression_error_metric, pruning_type):
    for criterion in pruning_criteria:
        if criterion not in PRUNING_CRITERIA:
            raise UserError(f"pruning_criterion = {criterion!r} is not allowed; use one of {', '.join(PRUNING_CRITERIA)}")
    for name, value, allowed in (("compression_error_metric", compression_error_metric, COMPRESSION_ERROR_METRICS),
                                 ("pruning_type", pruning_type, PRUNING_TYPES)):
        if value not in allowed:
            raise UserError(f"{name} = {value!r} is not allowed; use one of {', '.join(allowed)}")


def analyze_folder(results_folder, pruning_criterion="mce", compression_error_metric="fro_squared",
                   ignore_last_layer=True, pruning_type="kernel", data_dir="data", device=None,
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


def analyze_group(group_dir, pruning_type="filter", compression_error_metric="fro_squared", data_dir="data",
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


def analyze_command(args) -> int:
    """`htsgd analyze`: the flags of the original analyze.py; prints a summary, the CSV's path, and what failed."""
    try:
        table = analyze_folder(args.results_folder, args.pruning_criterion, args.compression_error_metric,
                               args.ignore_last_layer, args.pruning_type, args.data_dir, args.device)
        failed = None
    except AnalysisError as err:
        table, failed = pd.read_csv(results_path(args.results_folder, args.pruning_criterion,
                                                 args.compression_error_metric, args.pruning_type)), err
    print(summary_text(table))
    scope = "output layer excluded" if args.ignore_last_layer else "output layer included"
    path = results_path(args.results_folder, args.pruning_criterion, args.compression_error_metric, args.pruning_type)
    print(f"{table['exp_key'].nunique()} run(s), {len(table)} row(s) (pruning ratio: {scope}) -> {path}")
    if failed is not None:
        print(f"htsgd analyze: error: {failed}", file=sys.stderr)
        return 1
    return 0
