"""One training run's folder: what it holds, when it is complete, and the only code that writes it.

`config.json` (the complete configuration, every flag after defaults) is written first; while
training, `checkpoint.pt` every `checkpoint_every` steps; at the end `model.pt`, `history.csv`,
`provenance.json` and, last, `metrics.json`. A run is *complete* exactly when `metrics.json`
exists. `htsgd run` adds its executed `train.ipynb` (a run is *recorded* when it is complete and
that notebook exists) and, after a failed attempt, `failure.json`. A run folder holds nothing else,
which is what lets `--overwrite` remove a run without touching anything that is not one.
"""

import csv
import io
import sys
import time
from dataclasses import fields
from pathlib import Path

from . import storage
from .config import TrainConfig, make_config
from .data import load
from .errors import UserError
from .models import build_model
from .provenance import command_line, provenance
from .train import HISTORY_COLUMNS, default_device, train

CONFIG, WEIGHTS, HISTORY, METRICS = "config.json", "model.pt", "history.csv", "metrics.json"
CHECKPOINT, PROVENANCE, FAILURE = "checkpoint.pt", "provenance.json", "failure.json"
NOTEBOOK, RUNNING_NOTEBOOK, FAILED_NOTEBOOK = "train.ipynb", "train.running.ipynb", "train.failed.ipynb"
RUN_FILES = (CONFIG, WEIGHTS, HISTORY, METRICS, CHECKPOINT, PROVENANCE, FAILURE, NOTEBOOK, RUNNING_NOTEBOOK,
             FAILED_NOTEBOOK)


def is_complete(run_dir) -> bool:
    """Training finished (converged, cap, diverged or not_learning) and every result file is written."""
    return (Path(run_dir) / METRICS).is_file()


def is_recorded(run_dir) -> bool:
    """Complete, and `htsgd run`'s executed notebook is there too: nothing of the configuration is left to do."""
    return is_complete(run_dir) and (Path(run_dir) / NOTEBOOK).is_file()


def is_run_folder(path) -> bool:
    return (Path(path) / CONFIG).is_file() or is_complete(path)


def read_config(run_dir) -> dict | None:
    path = Path(run_dir) / CONFIG
    return storage.read_json(path) if path.is_file() else None


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


def check(config: TrainConfig, run_dir):
    """Refuse a folder that holds another configuration's run, or anything that is not a run's file."""
    run_dir = Path(run_dir)
    saved = read_config(run_dir)
    if saved is not None and saved != config.to_dict():
        raise UserError(f"{run_dir} holds a run of a different configuration ({'; '.join(differences(saved, config.to_dict()))}); "
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


def train_in_folder(config: TrainConfig, data, run_dir=None, device=None, progress: bool = True,
                    command: str | None = None) -> dict:
    """Train `config` into `run_dir`: resume its checkpoint if interrupted; load it if already complete.

    With `run_dir` None nothing is written. `command` is recorded in provenance.json.
    """
    if run_dir is None:
        return train(config, data, device=device, progress=progress)
    run_dir = Path(run_dir)
    check(config, run_dir)
    if is_complete(run_dir):
        return load_run(run_dir, data.input_shape, data.num_classes, device)
    device = device or data.train_x.device
    resume = None
    if (run_dir / CHECKPOINT).is_file():
        resume = storage.load_torch(run_dir / CHECKPOINT, map_location=device)
    else:
        storage.write_json(run_dir / CONFIG, config.to_dict())
    result = train(config, data, device=device, progress=progress, resume=resume,
                   on_checkpoint=lambda state: storage.save_torch(run_dir / CHECKPOINT, state))
    _write_result(run_dir, result, provenance(command or command_line(), device))
    return result


def _write_result(run_dir: Path, result: dict, origin: dict):
    """Weights, history and provenance first, metrics last: metrics.json marks the run complete."""
    storage.save_torch(run_dir / WEIGHTS, {k: v.cpu() for k, v in result["model"].state_dict().items()})
    storage.write_text(run_dir / HISTORY, history_csv(result["history"]))
    storage.write_json(run_dir / PROVENANCE, origin)
    storage.write_json(run_dir / METRICS, result["metrics"])
    (run_dir / CHECKPOINT).unlink(missing_ok=True)


def history_csv(history) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


def read_history(run_dir) -> list[dict]:
    with open(Path(run_dir) / HISTORY) as f:
        return [{k: (int(v) if k == "step" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def read_metrics(run_dir) -> dict:
    return storage.read_json(Path(run_dir) / METRICS)


def load_model(run_dir, input_shape, num_classes, device="cpu"):
    """The trained network of a complete run (tensors only are loaded, never pickled code)."""
    config = read_config(run_dir)
    model = build_model(config["model"], input_shape, num_classes, config["width"], config["depth"])
    model.load_state_dict(storage.load_torch(Path(run_dir) / WEIGHTS))
    return model.to(device or "cpu")


def load_run(run_dir, input_shape, num_classes, device="cpu") -> dict:
    """A complete run as `train` returns it: metrics, history and the trained model."""
    return {"metrics": read_metrics(run_dir), "history": read_history(run_dir),
            "model": load_model(run_dir, input_shape, num_classes, device)}


def record_failure(run_dir, error: dict):
    storage.write_json(Path(run_dir) / FAILURE, error)


def read_failure(run_dir) -> dict | None:
    path = Path(run_dir) / FAILURE
    return storage.read_json(path) if path.is_file() else None


def clear_failure(run_dir):
    (Path(run_dir) / FAILURE).unlink(missing_ok=True)


def default_save_dir(config: TrainConfig) -> Path:
    """A new folder per `htsgd train` without --save_dir, so it never writes among other results."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("results") / "train" / f"{stamp}_{config.model}_{config.dataset}_noise{config.iterate_noise}_seed{config.seed}"


def train_command(args) -> dict:
    """`htsgd train`: validate everything, then load the data and train into --save_dir."""
    config = make_config({f.name: getattr(args, f.name) for f in fields(TrainConfig)}, where="command line")
    save_dir = Path(args.save_dir) if args.save_dir is not None else default_save_dir(config)
    if args.overwrite:
        remove(save_dir)
    elif is_complete(save_dir):
        raise UserError(f"{save_dir} already holds a finished run; pass --overwrite to train again, or choose another --save_dir")
    if (save_dir / CHECKPOINT).is_file():
        print(f"resuming the interrupted run in {save_dir}", file=sys.stderr)
    check(config, save_dir)
    device = args.device or default_device()
    data = load(config.dataset, args.data_dir, device)
    result = train_in_folder(config, data, save_dir, device, progress=not args.no_progress)
    m = result["metrics"]
    print(f"{m['status']} after {m['steps']} steps in {m['wall_time']:.1f} s ({m['steps_per_second']:.1f} steps/s): "
          f"train acc {m['train_acc']:.2f} %, test acc {m['test_acc']:.2f} % -> {save_dir}")
    return m
