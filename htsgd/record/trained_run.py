"""Training one configuration into its run folder, resuming it, and loading it back: the run's tensors.

This is the only code that writes a run's results (`run_folder` reads them). Weights and
checkpoints hold tensors only, and are loaded with `weights_only`, so a weights file can never run
code. The digest of the training code is taken when this module is first imported, after the core
it trains with: a kernel reused for many runs records the code it actually runs, not what the files
say by the time a run ends.
"""

import csv
import io
import time
from pathlib import Path

import torch

from ..core.config import TrainConfig
from ..core.models import build_model
from ..core.train import train
from . import storage
from .digests import TRAIN, python_digest
from .names import CHECKPOINT, CONFIG, HISTORY, METRICS, PROVENANCE, WEIGHTS
from .provenance import provenance
from .public_paths import command_line
from .run_folder import check, is_complete, read_config, read_history, read_metrics

LOADED_CODE_DIGEST = python_digest(TRAIN)


def save_tensors(path, obj) -> Path:
    return storage.atomic_write(path, lambda f: torch.save(obj, f))


def load_tensors(path, map_location="cpu"):
    """Load tensors only: a pickled payload in a weights file is refused, never executed."""
    return torch.load(path, map_location=map_location, weights_only=True)


def train_in_folder(config: TrainConfig, data, run_dir=None, device=None, progress: bool = True,
                    command: str | None = None, checkpoint_every: int = 0) -> dict:
    """Train `config` into `run_dir`: resume its checkpoint if interrupted; load it if already complete.

    With `run_dir` None nothing is written. `command` is recorded in provenance.json.
    `checkpoint_every` is how often a resumable checkpoint is saved; it changes no trained number.
    """
    if run_dir is None:
        return train(config, data, device=device, progress=progress)
    run_dir = Path(run_dir)
    check(config.to_dict(), run_dir)
    if is_complete(run_dir):
        return load_run(run_dir, data.input_shape, data.num_classes, device)
    device = device or data.train_x.device
    resume = None
    if (run_dir / CHECKPOINT).is_file():
        resume = load_tensors(run_dir / CHECKPOINT, map_location=device)
    else:
        storage.write_json(run_dir / CONFIG, config.to_dict())
    result = train(config, data, device=device, progress=progress, resume=resume, checkpoint_every=checkpoint_every,
                   on_checkpoint=lambda state: save_tensors(run_dir / CHECKPOINT, state))
    origin = {**provenance(command or command_line(), device), "code_digest": LOADED_CODE_DIGEST}
    _write_result(run_dir, result, origin)
    return result


def _write_result(run_dir: Path, result: dict, origin: dict):
    """Weights, history and provenance first, metrics last: metrics.json marks the run complete."""
    save_tensors(run_dir / WEIGHTS, {k: v.cpu() for k, v in result["model"].state_dict().items()})
    storage.write_text(run_dir / HISTORY, history_csv(result["history"]))
    storage.write_json(run_dir / PROVENANCE, origin)
    storage.write_json(run_dir / METRICS, result["metrics"])
    (run_dir / CHECKPOINT).unlink(missing_ok=True)


def history_csv(history) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, list(history[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


def load_model(run_dir, input_shape, num_classes, device="cpu"):
    """The trained network of a complete run (tensors only are loaded, never pickled code)."""
    config = read_config(run_dir)
    model = build_model(config["model"], input_shape, num_classes, config["width"], config["depth"])
    model.load_state_dict(load_tensors(Path(run_dir) / WEIGHTS))
    return model.to(device or "cpu")


def load_run(run_dir, input_shape, num_classes, device="cpu") -> dict:
    """A complete run as `train` returns it: metrics, history and the trained model."""
    return {"metrics": read_metrics(run_dir), "history": read_history(run_dir),
            "model": load_model(run_dir, input_shape, num_classes, device)}


def default_save_dir(config: TrainConfig) -> Path:
    """A new folder per `htsgd train` without --save_dir, so it never writes among other results."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("results") / "train" / f"{stamp}_{config.model}_{config.dataset}_noise{config.iterate_noise}_seed{config.seed}"
