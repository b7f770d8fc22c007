"""Checks of what only the command line gives: the device, and the folders named by flags.

They run before anything is loaded or trained, so a typo costs a one-line message, not a traceback
from deep inside torch or a half-made folder.
"""

from pathlib import Path

from ..errors import UserError

DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device(device: str | None):
    """A device torch knows and this machine has: cpu, cuda, cuda:N with N a visible GPU, or mps where available."""
    if device is None:
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        parsed = None
    if parsed is None or parsed.type not in DEVICE_TYPES:
        raise UserError(f"--device {device}: not a device; use cpu, cuda or cuda:N (a visible GPU), or mps")
    if parsed.type == "cuda":
        count = torch.cuda.device_count()
        if not count:
            raise UserError(f"--device {device}: no GPU is visible here; use cpu")
        if parsed.index is not None and parsed.index >= count:
            raise UserError(f"--device {device}: the visible GPUs are cuda:0 to cuda:{count - 1}")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"--device {device}: no Apple GPU (mps) here; use cpu")


def check_folder(path, flag: str):
    """`path` is a folder or can become one: not a file, and no file stands where a parent folder would be."""
    for part in (Path(path), *Path(path).parents):
        if part.exists() and not part.is_dir():
            raise UserError(f"{flag} {path}: {part} is a file, not a folder; name a folder")
