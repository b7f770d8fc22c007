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

CHECKPOINT_KEYS = ("model", "optimizer", "noise_generator", "history", "step", "elapsed", "initial_train_loss")
ADVICE = {CHECKPOINT: "Move it aside: the run then trains from its first step",
          "": "Move the run's folder aside, or pass --retrain_damaged to move it and train the run again"}


def check_tensor_file(path):
    """Raise DamagedFile unless `path` loads with tensors only (a state dict, or a checkpoint with its keys)."""
    path = Path(path)
    todo = ADVICE.get(path.name, ADVICE[""])
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError):
        raise DamagedFile(path, "not a plain tensor file: it does not load as tensors alone", todo) from None
    wanted = CHECKPOINT_KEYS if path.name == CHECKPOINT else None
    if not isinstance(value, dict) or (wanted and not set(wanted) <= set(value)) or (
            not wanted and not all(isinstance(v, torch.Tensor) for v in value.values())):
        raise DamagedFile(path, "tensors of the wrong shape: not what htsgd saves there", todo)
