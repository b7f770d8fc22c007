"""Whether the jobs that configurations were given have ended: Slurm asked once per job array, local jobs by pid.

A queued marker names its job's executor. `slurm` jobs are looked up with one `sacct` call per
job array (never one per configuration), and where some of its tasks have not ended, one `squeue`
call for what Slurm says of them now (pending and why, or running where); `local` jobs (submitit's
local executor, chosen on purpose with `slurm: {cluster: local}`) by whether their process still lives.
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
# A task of an array cancelled while pending is in neither: Slurm 22.05 never accounts for it.
GONE = "listed by neither squeue nor sacct: cancelled before it started"


def ended(group_dir, markers: dict) -> dict:
    """id -> None while its job has not ended, else how it ended (a sacct state, `GONE`, or `ENDED` for a local job).

    A Slurm job that has not ended gains `now` in its marker: squeue's word on it (`PENDING (Resources)`,
    `RUNNING on node1`), so that `htsgd status` can say why a task waits; absent where squeue does not answer.
    """
    result = _slurm_ended({i: job for i, job in markers.items() if job.get("executor") == "slurm"})
    for config_id, job in markers.items():
        if config_id not in result:
            result[config_id] = None if _process_lives(job["job_id"]) else LOCAL_ENDED
    return {config_id: result[config_id] for config_id in markers}


def _slurm_ended(markers: dict) -> dict:
    """`ended` for Slurm jobs: per array one sacct call, then one squeue call where sacct has not seen every task
    end. A task sacct does not list yet has not ended, unless squeue does not hold it either."""
    arrays = {}
    for config_id, job in markers.items():
        arrays.setdefault(job["job_id"].split("_")[0], {})[config_id] = job
    result = {}
    for array_id, jobs in sorted(arrays.items()):
        states = slurm_states(array_id)
        waiting = [i for i, job in jobs.items() if states.get(job["job_id"]) not in ENDED_STATES]
        queue = slurm_queue(array_id) if waiting else None
        for config_id, job in jobs.items():
            result[config_id] = states[job["job_id"]] if config_id not in waiting else None
            if config_id in waiting and queue is not None:
                if job["job_id"] in queue:
                    job["now"] = queue[job["job_id"]]
                elif job["job_id"] not in states:
                    result[config_id] = GONE
    return result


def slurm_states(array_id: str) -> dict:
    """job id (`<array>_<task>`) -> its state, from one sacct call for the whole array.

    sacct prints `123_0|COMPLETED`, `123_2|CANCELLED by 1000`, and tasks not started yet as one
    line `123_[5-9%2]|PENDING`, which is expanded here to each task (sacct's `--array`, which would
    expand them itself, is Slurm 23.02's: 22.05 refuses it).
    """
    if shutil.which("sacct") is None:
        raise UserError(f"job array {array_id} was submitted to Slurm, but `sacct` is not on this machine's PATH; "
                        "run htsgd status / htsgd run where Slurm's commands are available")
    out = subprocess.run(["sacct", "-j", array_id, "-n", "-P", "-X", "-o", "JobID,State"],
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


def slurm_queue(array_id: str) -> dict | None:
    """job id -> what squeue says of that task now, from one call for the whole array; {} once Slurm holds none of
    its tasks; None where squeue does not answer (not installed, no controller): then sacct alone decides."""
    if shutil.which("squeue") is None:
        return None
    try:
        out = subprocess.run(["squeue", "-j", array_id, "-r", "-h", "-o", "%i|%T|%r|%N"], capture_output=True,
                             text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        return {} if "Invalid job id" in out.stderr else None
    now = {}
    for line in out.stdout.splitlines():
        job_id, state, reason, nodes = (line.strip().split("|") + ["", "", ""])[:4]
        now[job_id] = (f"{state} on {nodes}" if state == "RUNNING" and nodes
                       else f"{state} ({reason})" if reason and reason != "None" else state)
    return now


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
