"""Whether the jobs that configurations were given have ended: Slurm asked once per job array, local jobs by pid.

A queued marker names its job's executor. `slurm` jobs are looked up with one `sacct` call per
job array (never one per configuration); `local` jobs (submitit's local executor, chosen on
purpose with `slurm: {cluster: local}`) by whether their process still lives.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

from ..errors import UserError

# sacct's states of a job that will not run again (a requeued job reads PENDING or REQUEUED, so runs again).
ENDED_STATES = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
                "PREEMPTED", "TIMEOUT"}
LOCAL_ENDED = "ENDED"  # a local job's process is gone: it cannot say how it ended


def ended(group_dir, markers: dict) -> dict:
    """id -> None while its job has not ended, else how it ended (a sacct state, or `ENDED` for a local job)."""
    arrays = {job["job_id"].split("_")[0] for job in markers.values() if job.get("executor") == "slurm"}
    states = {}
    for array_id in sorted(arrays):
        states.update(slurm_states(array_id))
    result = {}
    for config_id, job in markers.items():
        if job.get("executor") == "slurm":
            state = states.get(job["job_id"])  # a job sacct does not list yet has not ended
            result[config_id] = state if state in ENDED_STATES else None
        else:
            result[config_id] = None if _process_lives(job["job_id"]) else LOCAL_ENDED
    return result


def slurm_states(array_id: str) -> dict:
    """job id (`<array>_<task>`) -> its state, from one sacct call for the whole array.

    sacct prints `123_0|COMPLETED`, `123_2|CANCELLED by 1000`, and tasks not started yet as one
    line `123_[5-9%2]|PENDING`, which is expanded here to each task.
    """
    if shutil.which("sacct") is None:
        raise UserError(f"job array {array_id} was submitted to Slurm, but `sacct` is not on this machine's PATH; "
                        "run htsgd status / htsgd run where Slurm's commands are available")
    out = subprocess.run(["sacct", "-j", array_id, "--array", "-n", "-P", "-X", "-o", "JobID,State"],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise UserError(f"sacct -j {array_id} failed: {out.stderr.strip() or out.stdout.strip()}")
    states = {}
    for line in out.stdout.splitlines():
        job_id, _, state = line.strip().partition("|")
        state = state.split()[0].rstrip("+") if state.split() else ""
        for one in _task_ids(job_id.strip()):
            states[one] = state
    return states


def _task_ids(job_id: str) -> list[str]:
    """`123_[1,3-5%2]` -> 123_1, 123_3, 123_4, 123_5; any other id as it is."""
    ranges = re.fullmatch(r"(\w+)_\[([\d,-]+)(%\d+)?\]", job_id)
    if not ranges:
        return [job_id] if job_id else []
    ids = []
    for part in ranges[2].split(","):
        first, _, last = part.partition("-")
        ids += [f"{ranges[1]}_{task}" for task in range(int(first), int(last or first) + 1)]
    return ids


def _process_lives(job_id: str) -> bool:
    """A local job's id is its process id; a zombie (ended, not yet reaped by its parent) has ended."""
    try:
        pid = int(str(job_id).split("_")[0])
        os.kill(pid, 0)
    except (ProcessLookupError, ValueError, OverflowError):
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True
