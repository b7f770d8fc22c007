"""One training run's folder: what it holds, when it is complete, and how its files are read.

`config.json` (the complete configuration, every training flag after defaults) is written first;
while training, `checkpoint.pt`; at the end `model.pt`, `history.csv`, `provenance.json` and, last,
`metrics.json`. A run is *complete* exactly when `metrics.json` exists. `htsgd run` adds its
executed `train.ipynb` (a run is *recorded* when it is complete and that notebook exists) and, after
a failed attempt, `failure.json`. A run folder holds nothing else, which is what lets `--overwrite`
remove a run without touching anything that is not one. Tensors are `trained_run`'s business: this
module reads and writes JSON and CSV only, so status and planning never import torch.
"""

import csv
from pathlib import Path

from ..errors import UserError
from . import storage
from .names import (CAP, COMPLETED, CONFIG, CONVERGED, DIVERGED, FAILURE, FAILURES, HISTORY, METRICS, NOT_LEARNING,
                    NOTEBOOK, RUN_FILES, WEIGHTS)

METRIC_KEYS = ("status", "steps", "wall_time", "train_loss", "train_acc", "test_loss", "test_acc")
ENDINGS = (CONVERGED, COMPLETED, CAP, DIVERGED, NOT_LEARNING)  # metrics.json's status
JOB_KEYS = ("job_id", "executor", "log")  # what a job's claim or a job's failure names


def is_complete(run_dir) -> bool:
    """Training finished (converged, cap, diverged or not_learning) and every result file is written."""
    return (Path(run_dir) / METRICS).is_file()


def is_recorded(run_dir) -> bool:
    """Complete, and `htsgd run`'s executed notebook is there too: nothing of the configuration is left to do."""
    return is_complete(run_dir) and (Path(run_dir) / NOTEBOOK).is_file()


def is_run_folder(path) -> bool:
    return (Path(path) / CONFIG).is_file() or is_complete(path)


def read_config(run_dir) -> dict | None:
    """The run's training flags. Runs made before htsgd 0.2 also recorded `checkpoint_every`, an execution
    setting that changes no result: it is left out, so it never makes such a run look trained with other flags."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        return None
    config = storage.read_json(path)
    config.pop("checkpoint_every", None)
    return config


def read_metrics(run_dir) -> dict:
    """metrics.json, its keys and their types checked: what status, planning and runs.csv rely on."""
    path = Path(run_dir) / METRICS
    metrics = storage.read_json(path)
    missing = [k for k in METRIC_KEYS if k not in metrics]
    if missing:
        raise storage.DamagedFile(path, f"missing {', '.join(missing)}")
    if metrics["status"] not in ENDINGS:
        raise storage.DamagedFile(path, f"status {metrics['status']!r} is none of {', '.join(ENDINGS)}")
    if not is_count(metrics["steps"]) or metrics["steps"] < 1:
        raise storage.DamagedFile(path, f"steps {metrics['steps']!r} is not a whole number >= 1")
    wrong = [k for k in METRIC_KEYS[2:] if not is_number(metrics[k])]
    if wrong:
        raise storage.DamagedFile(path, f"{', '.join(wrong)} not a number")
    return metrics


def is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_outcome(run_dir):
    """Raise DamagedFile unless the configuration, metrics.json and history.csv read, and the latter two agree on
    where training stopped; and unless the executed notebook is there or can be made again from the weights."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise storage.DamagedFile(run_dir / CONFIG, "missing: a finished run cannot be checked against the grid "
                                  "without its configuration")
    if not (run_dir / NOTEBOOK).is_file() and not (run_dir / WEIGHTS).is_file():
        raise storage.DamagedFile(run_dir / NOTEBOOK, f"missing, and no {WEIGHTS} to record the finished run again")
    steps = read_metrics(run_dir)["steps"]
    last = read_history(run_dir)[-1]["step"]
    if last != steps - 1:
        raise storage.DamagedFile(Path(run_dir) / HISTORY, f"it ends at step {last}, but {METRICS} says the run "
                                  f"took {steps} steps")


def read_failure(run_dir) -> dict | None:
    """failure.json (None when the run has not failed), with the status and message every reader shows."""
    path = Path(run_dir) / FAILURE
    if not path.is_file():
        return None
    failure = storage.read_json(path)
    if failure.get("status") not in FAILURES or not isinstance(failure.get("error"), str):
        raise storage.DamagedFile(path, f"expected a status ({', '.join(FAILURES)}) and an error message")
    if "job" in failure:
        check_job(failure["job"], path)
    return failure


def check_job(job, path):
    """A job's record (a claim, or the job inside a failure) names its id, its executor and its log."""
    if not (isinstance(job, dict) and all(isinstance(job.get(k), (str, int)) for k in JOB_KEYS)):
        raise storage.DamagedFile(path, f"a job must name its {', '.join(JOB_KEYS)}")


def read_history(run_dir) -> list[dict]:
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        raise storage.DamagedFile(path, "missing")
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = [{k: (int(v) if k == "step" else float(v)) for k, v in row.items()} for row in reader]
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as err:
        raise storage.DamagedFile(path, f"not a table of numbers: {' '.join(str(err).split())[:120]}") from None
    if not rows:
        raise storage.DamagedFile(path, "no evaluations")
    if "step" not in reader.fieldnames:
        raise storage.DamagedFile(path, "no step column")
    return rows


def differences(saved: dict, wanted: dict) -> list[str]:
    """`key: old -> new` for every flag on which two configurations differ (a missing flag reads as absent)."""
    keys = list(wanted) + [k for k in saved if k not in wanted]
    return [f"{k}: {saved.get(k, '(absent)')!r} -> {wanted.get(k, '(absent)')!r}"
            for k in keys if saved.get(k, "(absent)") != wanted.get(k, "(absent)")]


def foreign_entries(run_dir) -> list[str]:
    """Names in `run_dir` that are not a run's files (interrupted atomic writes, `.name.tmp`, count as a run's)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(p.name + ("/" if p.is_dir() else "") for p in run_dir.iterdir()
                  if not (p.is_file() and (p.name in RUN_FILES or (p.name.startswith(".") and p.name.endswith(".tmp")))))


def check(config: dict, run_dir):
    """Refuse a folder that holds another configuration's run, or anything that is not a run's file."""
    run_dir = Path(run_dir)
    saved = read_config(run_dir)
    if saved is not None and saved != config:
        raise UserError(f"{run_dir} holds a run of a different configuration ({'; '.join(differences(saved, config))}); "
                        "choose another folder, or pass --overwrite to replace it")
    foreign = foreign_entries(run_dir)
    if foreign:
        raise UserError(f"{run_dir} is not a run folder (it holds {', '.join(foreign[:5])}"
                        f"{' and more' if len(foreign) > 5 else ''}); choose an empty or new folder")


def remove(run_dir):
    """Delete one run's files, and only them; refuse, touching nothing, a folder that holds anything else."""
    run_dir = Path(run_dir)
    foreign = foreign_entries(run_dir)
    if foreign:
        raise UserError(f"{run_dir} is not exactly one htsgd run (it also holds {', '.join(foreign[:5])}"
                        f"{' and more' if len(foreign) > 5 else ''}); nothing was removed")
    if run_dir.is_dir():
        for path in run_dir.iterdir():
            path.unlink()


def record_failure(run_dir, error: dict):
    storage.write_json(Path(run_dir) / FAILURE, error)


def clear_failure(run_dir):
    (Path(run_dir) / FAILURE).unlink(missing_ok=True)
