"""What produced a record: htsgd's source, the libraries, the hardware and the command.

Written beside every run and every group so a reader can tell which code made each number.
The source digest covers `htsgd/*.py` and `notebooks/*.ipynb` by content, so it says the same
after a `git checkout` that leaves the files as they were, and changes with any edit.
Nothing here names the host or a user's folders.
"""

import hashlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy
import scipy
import torch

from . import __version__

ROOT = Path(__file__).resolve().parent.parent
SOURCE_GLOBS = ("htsgd/*.py", "notebooks/*.ipynb")
# Paths whose uncommitted changes make a record's source "dirty" (results/ is written by the run itself).
SOURCE_PATHS = ("htsgd", "notebooks", "params", "pyproject.toml")


def source_digest(root: Path = ROOT) -> str:
    """sha256 over the package's and the notebooks' files: their paths and bytes, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for pattern in SOURCE_GLOBS for p in root.glob(pattern)):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def git_state(root: Path = ROOT) -> dict:
    """The commit the source was at and whether its source paths had uncommitted changes (None outside git)."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"git_commit": None, "git_dirty": None}
        status = git("status", "--porcelain", "--", *SOURCE_PATHS)
        return {"git_commit": head.stdout.strip(), "git_dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def device_description(device=None) -> str:
    """The GPU model and count for a CUDA device, otherwise the CPU model and core count."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        count = torch.cuda.device_count()
        return f"{count} x {torch.cuda.get_device_name(device)} (CUDA)"
    return f"{_cpu_model()} ({os.cpu_count()} cores)"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def public_path(path) -> str:
    """A path as the record may name it: relative to the working folder, or just its name when it lies outside."""
    relative = os.path.relpath(path)
    return Path(path).name if relative.startswith("..") else relative


def command_line(argv=None) -> str:
    """The command as typed, with the program's folder dropped and absolute paths made public (`public_path`)."""
    argv = list(sys.argv if argv is None else argv)
    return " ".join([Path(argv[0]).name] + [public_path(a) if os.path.isabs(a) else a for a in argv[1:]])


def provenance(command: str, device=None) -> dict:
    return {
        "htsgd_version": __version__,
        **git_state(),
        "source_digest": source_digest(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "device": device_description(device),
        "command": command,
    }
