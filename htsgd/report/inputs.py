"""What a report reads beyond the run table: the sweeps, the column norms, each run's history, the provenance.

All from a group folder's CSVs and JSON alone; no model weights are needed.
"""

import json
from pathlib import Path

import pandas as pd

from ..analysis.run_table import DEFAULT_ANALYSIS
from ..record import storage
from ..record.names import COLUMN_NORMS_CSV, HISTORY, PROVENANCE, SUMMARY, sweep_csv
from .formatting import markdown_table


def read_sweep(group_dir, ids, analysis: dict = DEFAULT_ANALYSIS, compressor: str | None = None) -> pd.DataFrame | None:
    """The equal-accuracy sweeps (exp_key, compressor, fraction, removed, test_acc) of the runs `ids`, of one
    compressor or all; None if absent."""
    path = Path(group_dir) / SUMMARY / sweep_csv(analysis["pruning_type"])
    if not path.is_file():
        return None
    sweep = pd.read_csv(path, dtype={"exp_key": str})
    sweep = sweep[sweep["exp_key"].isin(ids)]
    return sweep if compressor is None else sweep[sweep["compressor"] == compressor]


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
        print(f"report: the training-stability figure leaves out runs without {HISTORY}: {', '.join(missing)}")
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
