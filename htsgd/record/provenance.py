"""What produced a record: htsgd's version and commit, the libraries, the hardware and the command.

Written beside every run, and per stage (analysis, report) in a group's provenance, so a reader can
tell which code and machine made each number. Which code is told by content digests (`digests`).
Nothing here names the host or a user's folders, except what a Slurm job was: its cluster, job and
node, by which its log and accounting are found.
"""

import os
import platform
import subprocess
from pathlib import Path

import numpy
import scipy
import torch

from .. import __version__
from . import lock
from .digests import ROOT

# Paths whose uncommitted changes make a record's source "dirty" (results/ is written by the run itself).
SOURCE_PATHS = ("htsgd", "notebooks", "params", "pyproject.toml")


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


def slurm_job() -> dict | None:
    """The Slurm cluster, job (`<array>_<task>` in an array) and node running this process; None outside Slurm."""
    env = os.environ
    if "SLURM_JOB_ID" not in env:
        return None
    task = env.get("SLURM_ARRAY_TASK_ID")
    return {"cluster": env.get("SLURM_CLUSTER_NAME"), "node": env.get("SLURMD_NODENAME"),
            "job_id": f"{env['SLURM_ARRAY_JOB_ID']}_{task}" if task else env["SLURM_JOB_ID"]}


def provenance(command: str, device=None) -> dict:
    return {
        "htsgd_version": __version__,
        **git_state(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "lock_digest": lock.digest(),  # requirements.lock, the versions that made the committed records
        "environment_matches_lock": lock.environment_matches(),  # every pin installed as pinned (None: no lock)
        "device": device_description(device),
        "command": command,
        **({"slurm": job} if (job := slurm_job()) else {}),
    }
