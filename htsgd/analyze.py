"""Prune every finished run in a folder and evaluate the pruned networks (the seed's `analyze.py`).

`htsgd analyze --results_folder DIR ...` finds every complete run folder under DIR (a folder
with `metrics.json`; direct subfolders and nested layouts such as `DIR/<group>/<run>` alike;
`DIR/summary` is skipped), loads its `config.json` and `model.pt` (tensors only), prunes it at
each criterion value (mce: 0.0 and 0.1; parameter_ratio: 0.0, 0.1, ..., 1.0), evaluates the
pruned network on the full train and test sets and writes one row per run and criterion value
to `DIR/summary/results_<pruning_type>_<criterion>.csv`. The stored weights are only read.

Column notes: `exp_key` is the run folder's path relative to DIR; `batch_size` is the run's
`batch_size_train`; `iterations` is the number of steps the run actually took (`steps` in its
metrics.json), not the configured cap; `status` is the run's final status (converged, cap,
diverged, not_learning); the losses and accuracies are those of the pruned network;
`pruning_ratio` leaves the output layer out of both counts with `ignore_last_layer`.
With `compression_error_metric="frob"` the criterion is labelled `mce_frob` (in the file name
and the `pruning_criterion` column), so it never overwrites the default `fro_squared` results.
"""

import io
import math
import pickle
import sys
from pathlib import Path

import pandas as pd

from . import storage
from .config import make_config
from .data import load
from .errors import UserError
from .evaluate import evaluate
from .models import build_model
from .train import default_device
from .prune import COMPRESSION_ERROR_METRICS, CRITERION_RATIOS, PRUNING_CRITERIA, PRUNING_TYPES, prune_model

COLUMNS = ["exp_key", "model", "dataset", "lr", "batch_size", "width", "depth", "seed", "iterations",
           "convergence_accuracy", "it_noise", "it_noise_alpha", "it_noise_scale", "criterion_ratio",
           "pruning_criterion", "train_loss", "train_acc", "test_loss", "test_acc", "pruning_ratio", "status"]
SUMMARY = "summary"
RUN_FILES = (storage.CONFIG, storage.WEIGHTS, storage.HISTORY, storage.CHECKPOINT)


def criterion_label(pruning_criterion: str, compression_error_metric: str = "fro_squared") -> str:
    """`mce`, `mce_frob` or `parameter_ratio` (the error metric only matters for mce)."""
    if pruning_criterion == "mce" and compression_error_metric != "fro_squared":
        return f"mce_{compression_error_metric}"
    return pruning_criterion


def results_path(results_folder, pruning_criterion="mce", compression_error_metric="fro_squared",
                 pruning_type="filter") -> Path:
    label = criterion_label(pruning_criterion, compression_error_metric)
    return Path(results_folder) / SUMMARY / f"results_{pruning_type}_{label}.csv"


def find_runs(results_folder) -> tuple[list[Path], list[Path]]:
    """(complete, incomplete) run folders under `results_folder`, sorted; `summary/` and hidden folders skipped.

    A folder with metrics.json is a complete run (not searched further); one with another run file
    (config.json, model.pt, history.csv, checkpoint.pt) but no metrics.json is an incomplete run.
    Any other folder is searched for runs.
    """
    root = Path(results_folder)
    complete, incomplete = [], []

    def visit(folder: Path):
        for child in sorted(p for p in folder.iterdir() if p.is_dir()):
            if child.name.startswith(".") or (folder == root and child.name == SUMMARY):
                continue
            if storage.is_complete(child):
                complete.append(child)
            elif any((child / f).is_file() for f in RUN_FILES):
                incomplete.append(child)
            else:
                visit(child)

    visit(root)
    return complete, incomplete


def analyze_run(run_dir, data, pruning_criterion="mce", compression_error_metric="fro_squared",
                ignore_last_layer=True, pruning_type="filter", device="cpu", exp_key=None) -> list[dict]:
    """One row (a dict with COLUMNS) per criterion value for the run in `run_dir`, on `data` already loaded."""
    run_dir = Path(run_dir)
    config = make_config(storage.read_json(run_dir / storage.CONFIG), where=str(run_dir / storage.CONFIG))
    metrics = storage.read_json(run_dir / storage.METRICS)
    model = build_model(config.model, data.input_shape, data.num_classes, config.width, config.depth)
    model.load_state_dict(storage.load_torch(run_dir / storage.WEIGHTS, map_location="cpu"))
    model.to(device).eval()
    rows = []
    for ratio in CRITERION_RATIOS[pruning_criterion]:
        pruned = prune_model(model, ratio, pruning_criterion, compression_error_metric, pruning_type)
        train_loss, train_acc = evaluate(pruned.model, data.train_x, data.train_y)
        test_loss, test_acc = evaluate(pruned.model, data.test_x, data.test_y)
        rows.append({
            "exp_key": exp_key if exp_key is not None else run_dir.name,
            "model": config.model, "dataset": config.dataset, "lr": config.lr,
            "batch_size": config.batch_size_train, "width": config.width, "depth": config.depth,
            "seed": config.seed, "iterations": metrics.get("steps"),
            "convergence_accuracy": config.convergence_accuracy, "it_noise": config.iterate_noise,
            "it_noise_alpha": config.iterate_noise_alpha, "it_noise_scale": config.iterate_noise_scale,
            "criterion_ratio": ratio, "pruning_criterion": criterion_label(pruning_criterion, compression_error_metric),
            "train_loss": train_loss, "train_acc": train_acc, "test_loss": test_loss, "test_acc": test_acc,
            "pruning_ratio": pruned.pruning_ratio(ignore_last_layer), "status": metrics.get("status"),
        })
        del pruned
    return rows


def analyze_folder(results_folder, pruning_criterion="mce", compression_error_metric="fro_squared",
                   ignore_last_layer=True, pruning_type="filter", data_dir="data", device=None,
                   log=None) -> pd.DataFrame:
    """Prune and evaluate every complete run under `results_folder`; write and return the results table.

    Incomplete runs, and complete ones whose files cannot be read, are listed on `log` and skipped.
    Datasets are loaded once per dataset and kept for the runs that share it. A dataset that
    cannot be loaded is fatal (DataUnavailable says what to put where).
    """
    log = log or sys.stderr
    for name, value, allowed in (("pruning_criterion", pruning_criterion, PRUNING_CRITERIA),
                                 ("compression_error_metric", compression_error_metric, COMPRESSION_ERROR_METRICS),
                                 ("pruning_type", pruning_type, PRUNING_TYPES)):
        if value not in allowed:
            raise UserError(f"{name} = {value!r} is not allowed; use one of {', '.join(allowed)}")
    root = Path(results_folder)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    if storage.is_complete(root):
        raise UserError(f"{root} is itself a run folder; pass the folder that holds the runs (e.g. {root.parent})")
    device = device or default_device()
    complete, incomplete = find_runs(root)
    for run in incomplete:
        print(f"skipped (incomplete: no {storage.METRICS}): {run}", file=log)
    if not complete:
        raise UserError(f"no finished runs (folders with {storage.METRICS}) under {root}")

    rows, datasets, skipped = [], {}, []
    for run in complete:
        try:
            config = make_config(storage.read_json(run / storage.CONFIG), where=str(run / storage.CONFIG))
        except (UserError, OSError, ValueError, TypeError) as err:  # unreadable or invalid config.json
            skipped.append((run, err))
            continue
        if config.dataset not in datasets:  # a missing dataset is fatal: DataUnavailable says what to fetch
            datasets[config.dataset] = load(config.dataset, data_dir, device)
        try:
            rows += analyze_run(run, datasets[config.dataset], pruning_criterion, compression_error_metric,
                                ignore_last_layer, pruning_type, device, exp_key=run.relative_to(root).as_posix())
        except (UserError, OSError, ValueError, KeyError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
            skipped.append((run, err))  # e.g. a truncated model.pt, or weights of another shape
    for run, err in skipped:
        print(f"skipped (could not be analysed: {_reason(err)}): {run}", file=log)

    table = pd.DataFrame(rows, columns=COLUMNS)
    out = io.StringIO()
    table.to_csv(out, index=False, lineterminator="\n", na_rep="NaN")  # NaN: a diverged run's loss
    path = storage.write_text(results_path(root, pruning_criterion, compression_error_metric, pruning_type), out.getvalue())
    table.attrs["path"] = str(path)
    return table


def _reason(err: Exception) -> str:
    if isinstance(err, pickle.UnpicklingError):
        return f"{storage.WEIGHTS} is not a plain tensor file; only tensors are loaded, never pickled code"
    lines = str(err).strip().splitlines() or [""]
    return f"{type(err).__name__}: {lines[0][:300]}"


def summary_text(table: pd.DataFrame, results_folder=None) -> str:
    """Per run and criterion value: pruning ratio and test accuracy before and after pruning."""
    if table.empty:
        return "no rows"
    before = {}
    if results_folder is not None:
        for key in table["exp_key"].unique():
            try:
                before[key] = storage.read_json(Path(results_folder) / key / storage.METRICS).get("test_acc", math.nan)
            except (OSError, ValueError):
                before[key] = math.nan
    view = pd.DataFrame({
        "run": table["exp_key"], "status": table["status"], "steps": table["iterations"],
        "criterion": table["pruning_criterion"] + " " + table["criterion_ratio"].map("{:.1f}".format),
        "pruning_ratio": table["pruning_ratio"].map("{:.3f}".format),
        "test_acc_before": table["exp_key"].map(lambda k: before.get(k, math.nan)).map("{:.2f}".format),
        "test_acc_pruned": table["test_acc"].map("{:.2f}".format),
    })
    return view.to_string(index=False)


def analyze_command(args) -> pd.DataFrame:
    """`htsgd analyze`: the flags of the original analyze.py; prints a summary and the CSV's path."""
    table = analyze_folder(args.results_folder, args.pruning_criterion, args.compression_error_metric,
                           args.ignore_last_layer, args.pruning_type, args.data_dir, args.device)
    print(summary_text(table, args.results_folder))
    scope = "output layer excluded" if args.ignore_last_layer else "output layer included"
    runs = table["exp_key"].nunique()
    print(f"{runs} run(s), {len(table)} row(s) (pruning ratio: {scope}) -> {table.attrs['path']}")
    return table
