"""Which runs an analysis covers, and what is known of each before its weights are read.

`htsgd analyze` takes every run folder under a folder (`find_runs`); a group's analysis takes
exactly the runs its runs.csv lists (`group_runs`). A run whose configuration, metrics or record
cannot be read is still listed, with status `error` and the reason, so that it keeps its rows.
"""

from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd

from ..core.config import TrainConfig, make_config
from ..record import names, run_folder
from ..record.names import ANALYSED, ERROR, INCOMPLETE, RUNS_CSV, SUMMARY


@dataclass
class Run:
    """One run to analyse: where it is, its configuration (None if unreadable) and what is known of it."""
    exp_key: str
    path: Path
    config: dict | None
    status: str
    error: str = ""


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
        return Run(key, path, None, ERROR, failure_reason(err))


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


def failure_reason(err: Exception) -> str:
    """One line for a run's `error` column: the kind of failure and its first line, never a traceback."""
    if type(err).__name__ == "UnpicklingError":
        return f"{names.WEIGHTS} is not a plain tensor file; only tensors are loaded, never pickled code"
    lines = str(err).strip().splitlines() or [""]
    return f"{type(err).__name__}: {lines[0][:300]}"
