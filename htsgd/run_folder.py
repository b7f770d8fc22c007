"""One training run in its own folder: never overwrite silently, resume an interrupted run,
and hand back a finished run instead of training it again."""

import csv
import shutil
import sys
from dataclasses import fields
from pathlib import Path

from . import storage
from .config import TrainConfig, make_config
from .data import load
from .errors import UserError
from .models import build_model
from .train import default_device, train


def train_in_folder(config: TrainConfig, data, run_dir=None, device=None, progress: bool = True) -> dict:
    """Train `config` into `run_dir`; resume its checkpoint if interrupted; load it if already finished."""
    if run_dir is None:
        return train(config, data, device=device, progress=progress)
    check_run_dir(config, run_dir)
    if storage.is_complete(run_dir):
        return load_run(run_dir, data.input_shape, data.num_classes, device)
    return train(config, data, run_dir=run_dir, device=device, progress=progress)


def check_run_dir(config: TrainConfig, run_dir):
    """Refuse a folder that holds another configuration's run, or files that are not a run at all."""
    run_dir = Path(run_dir)
    saved = run_dir / storage.CONFIG
    if saved.is_file() and storage.read_json(saved) != config.to_dict():
        raise UserError(f"{run_dir} holds a run of a different configuration ({saved}); "
                        "choose another folder, or delete it to train this one there")
    if not saved.is_file() and storage.holds_foreign_files(run_dir):
        raise UserError(f"{run_dir} is not empty and holds no htsgd run; choose another folder")


def load_run(run_dir, input_shape, num_classes, device="cpu") -> dict:
    """A finished run as `train` returns it: metrics, history and the trained model."""
    run_dir = Path(run_dir)
    config = storage.read_json(run_dir / storage.CONFIG)
    model = build_model(config["model"], input_shape, num_classes, config["width"], config["depth"])
    model.load_state_dict(storage.load_torch(run_dir / storage.WEIGHTS))
    with open(run_dir / storage.HISTORY) as f:
        history = [{k: (int(v) if k == "step" else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]
    return {"metrics": storage.read_json(run_dir / storage.METRICS), "history": history, "model": model.to(device or "cpu")}


def train_command(args) -> dict:
    """`htsgd train`: validate everything, then load the data and train into --save_dir."""
    config = make_config({f.name: getattr(args, f.name) for f in fields(TrainConfig)}, where="command line")
    save_dir = Path(args.save_dir)
    if storage.is_complete(save_dir) and not args.overwrite:
        raise UserError(f"{save_dir} already holds a finished run; pass --overwrite to train again, or choose another --save_dir")
    if args.overwrite and save_dir.exists():
        shutil.rmtree(save_dir)
    if (save_dir / storage.CHECKPOINT).is_file():
        print(f"resuming the interrupted run in {save_dir}", file=sys.stderr)
    check_run_dir(config, save_dir)
    device = args.device or default_device()
    data = load(config.dataset, args.data_dir, device)
    result = train_in_folder(config, data, save_dir, device, progress=not args.no_progress)
    m = result["metrics"]
    print(f"{m['status']} after {m['steps']} steps in {m['wall_time']:.1f} s ({m['steps_per_second']:.1f} steps/s): "
          f"train acc {m['train_acc']:.2f} %, test acc {m['test_acc']:.2f} % -> {save_dir}")
    return m
