"""Files written atomically, and read safely.

A result file either exists complete or not at all: everything is written to a temporary
file in the same folder and renamed into place, so a crash never leaves half a file.
What a run folder holds is `run_folder`'s business.
"""

import json
import os
import tempfile
from pathlib import Path

import torch

def atomic_write(path, write) -> Path:
    """Call `write(file_object)` on a temporary file beside `path`, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path):
    return json.loads(Path(path).read_text())


def save_torch(path, obj) -> Path:
    return atomic_write(path, lambda f: torch.save(obj, f))


def load_torch(path, map_location="cpu"):
    """Load tensors only: a pickled payload in a weights file is refused, never executed."""
    return torch.load(path, map_location=map_location, weights_only=True)
