"""A group of the record as the explore notebook reads it: its groups, its runs, how its analysis was set, and the
numbers that analysis wrote for one run."""

from pathlib import Path

import pandas as pd

from ...core.config import COMPRESSION_ERROR_METRICS, PRUNING_TYPES
from ...record import names


def list_groups(results_dir) -> list[str]:
    """The groups under `results_dir`: its folders that hold runs.csv, sorted."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / names.RUNS_CSV).is_file())


def list_runs(group_dir) -> list[tuple[str, str]]:
    """(id, status) of every run in the group's runs.csv, in its order."""
    table = pd.read_csv(Path(group_dir) / names.RUNS_CSV, dtype={"id": str, "status": str}, keep_default_na=False)
    return list(zip(table["id"], table["status"]))


def analysis_settings(group_dir) -> dict:
    """The group's analysis settings, from the summary files its analysis wrote (the defaults without one)."""
    summary = Path(group_dir) / names.SUMMARY
    kind = next((t for t in PRUNING_TYPES if (summary / names.sweep_csv(t)).is_file()), PRUNING_TYPES[0])
    metric = next((m for m in COMPRESSION_ERROR_METRICS if (summary / names.results_csv(kind, "mce", m)).is_file()),
                  COMPRESSION_ERROR_METRICS[0])
    return {"pruning_type": kind, "compression_error_metric": metric}


def recorded_analysis(group_dir, run_id: str, settings: dict) -> dict:
    """The group analysis' numbers for one run: {"sweep": {fraction: row of the column compressor's sweep},
    "mce": {ratio: row}} (empty without); look a value up with `amount_key`."""
    summary = Path(group_dir) / names.SUMMARY
    found = {"sweep": {}, "mce": {}}
    for kind, path, column in (
            ("sweep", summary / names.sweep_csv(settings["pruning_type"]), "fraction"),
            ("mce", summary / names.results_csv(settings["pruning_type"], "mce", settings["compression_error_metric"]),
             "criterion_ratio")):
        if path.is_file():
            table = pd.read_csv(path, dtype={"exp_key": str, "error": str})
            rows = table[(table["exp_key"] == run_id) & table["test_acc"].notna()]
            if kind == "sweep":  # the slider prunes columns: the column compressor's sweep
                rows = rows[rows["compressor"] == "columns"]
            found[kind] = {amount_key(row[column]): row for row in rows.to_dict("records")}
    return found


def amount_key(amount: float) -> float:
    """A criterion value as a lookup key: 0.1 read from a CSV and 5 / 50 are the same key."""
    return round(float(amount), 9)
