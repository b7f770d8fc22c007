"""A group of the record as the explore notebook reads it: its groups, its runs, how its analysis was set, and the
numbers that analysis wrote for one run."""

from pathlib import Path

import pandas as pd

from ...pipeline.params import read_analysis
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


def analysis_settings(params_dir, group: str) -> dict:
    """How `htsgd run` analyses the group (pruning_type, compression_error_metric): the `analysis:` section of its
    params file, `<params_dir>/<group>.yaml`; the defaults where the file or the section is absent."""
    return read_analysis(Path(params_dir) / f"{group}.yaml")


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
