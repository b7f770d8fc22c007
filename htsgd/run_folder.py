"""One training run in its own folder: never overwrite silently, resume an interrupted run."""

import shutil
import sys
from dataclasses import fields
from pathlib import Path

from . import storage
from .config import TrainConfig, make_config
from .data import load
from .errors import UserError
from .train import default_device, train


def prepare_run_dir(save_dir, config: TrainConfig, overwrite: bool = False) -> str:
    """Make `save_dir` ready for `config`; say whether the run starts 'new' or 'resumes' a checkpoint."""
    save_dir = Path(save_dir)
    if not save_dir.exists() or not any(save_dir.iterdir()):
        return "new"
    if overwrite:
        shutil.rmtree(save_dir)
        return "new"
    if storage.is_complete(save_dir):
        raise UserError(f"{save_dir} already holds a finished run; pass --overwrite to train again, or choose another --save_dir")
    saved = save_dir / storage.CONFIG
    if (save_dir / storage.CHECKPOINT).is_file() and saved.is_file():
        if storage.read_json(saved) != config.to_dict():
            raise UserError(f"{save_dir} holds an interrupted run of a different configuration ({saved}); "
                            "pass --overwrite to replace it, or choose another --save_dir")
        return "resumes"
    if saved.is_file():  # started, no checkpoint yet: nothing worth keeping
        return "new"
    raise UserError(f"{save_dir} is not empty and holds no htsgd run; choose another --save_dir, or pass --overwrite to empty it")


def train_command(args) -> dict:
    """`htsgd train`: validate everything, then load the data and train into --save_dir."""
    config = make_config({f.name: getattr(args, f.name) for f in fields(TrainConfig)}, where="htsgd train")
    state = prepare_run_dir(args.save_dir, config, args.overwrite)
    device = args.device or default_device()
    data = load(config.dataset, args.data_dir, device)
    if state == "resumes":
        print(f"resuming the interrupted run in {args.save_dir}", file=sys.stderr)
    result = train(config, data, run_dir=args.save_dir, device=device, progress=not args.no_progress)
    m = result["metrics"]
    print(f"{m['status']} after {m['steps']} steps in {m['wall_time']:.1f} s ({m['steps_per_second']:.1f} steps/s): "
          f"train acc {m['train_acc']:.2f} %, test acc {m['test_acc']:.2f} % -> {args.save_dir}")
    return m
