"""Whether a run's weights or checkpoint hold tensors of the right shape: checked before anything loads them.

`trained_run.load_tensors` already refuses a pickled payload, but with torch's own message, which
advises loading with `weights_only=False`: the one thing never to do with a file from elsewhere. A
file checked here first is named with what to do instead, and a damaged checkpoint never reaches
the training loop as a confusing KeyError.
"""

import pickle
from pathlib import Path

import torch

from .names import CHECKPOINT
from .storage import DamagedFile

# What training saves in a checkpoint, each entry's kind (`core.train`'s on_checkpoint state).
CHECKPOINT_KINDS = {"model": dict, "optimizer": dict, "noise_generator": torch.Tensor, "history": list, "step": int,
                    "elapsed": (int, float), "initial_train_loss": (int, float)}
ADVICE = {CHECKPOINT: "Move it aside: the run then trains from its first step",
          "": "Move the run's folder aside, or pass --retrain_damaged to move it and train the run again"}


def check_tensor_file(path):
    """Raise DamagedFile unless `path` loads with tensors only: a state dict, or a checkpoint with every entry."""
    path = Path(path)
    todo = ADVICE.get(path.name, ADVICE[""])
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError):
        raise DamagedFile(path, "not a plain tensor file: it does not load as tensors alone", todo) from None
    if not (is_checkpoint(value) if path.name == CHECKPOINT else is_state_dict(value)):
        raise DamagedFile(path, "tensors of the wrong shape: not what htsgd saves there", todo)


def is_state_dict(value) -> bool:
    return isinstance(value, dict) and all(isinstance(v, torch.Tensor) for v in value.values())


def is_checkpoint(value) -> bool:
    """Every entry training resumes from, of its kind; the model's weights a state dict."""
    return (isinstance(value, dict) and all(isinstance(value.get(k), kind) for k, kind in CHECKPOINT_KINDS.items())
            and is_state_dict(value["model"]))
