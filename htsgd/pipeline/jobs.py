"""Whether the jobs that configurations were given have ended: Slurm asked once per job array, local jobs by pid.

A queued marker names its job's executor. `slurm` jobs are looked up with one `sacct` call per
job array (never one per configuration); `local` jobs (submitit's local executor, chosen on
purpose with `slurm: {cluster: local}`) by whether their process still lives.
"""

import os
import shutil
import subprocess

from ..errors import UserError

# sacct's states of a job that will not run again (a requeued or preempted one will).
ENDED_STATES = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "TIMEOUT"}


def ended(group_dir, markers: dict) -> dict:
    """id -> None while its job has not ended, else how it ended (a sacct state, or `ENDED` for a local job)."""
    arrays = {}
    for config_id, job in markers.items():
        if job.get("executor") == "slurm":
            arrays.setdefault(job["job_id"].split("_")[0], []).append(config_id)
    states = {}
    for array_id in arrays:
        states.update(slurm_states(array_id))
    result = {}
    for config_id, job in markers.items():
        if job.get("executor") == "slurm":
            state = states.get(job["job_id"])
            result[config_id] = state if state in ENDED_STATES else None
        else:
            result[config_id] = None if _process_lives(job["job_id"]) else "ENDED"
    return result


def slurm_states(array_id: str) -> dict:
    """job id (`<array>_<task>`) -> its state, from one sacct call for the whole array."""
    if shutil.which("sacct") is None:
        raise UserError(f"job array {array_id} was submitted to Slurm, but `sacct` is not on this machine's PATH; "
                        "run htsgd status / htsgd run where Slurm's commands are available")
    out = subprocess.run(["sacct", "-j", array_id, "--array", "-n", "-P", "-X", "-o", "JobID,State"],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise UserError(f"sacct -j {array_id} failed: {out.stderr.strip() or out.stdout.strip()}")
    states = {}
    for line in out.stdout.splitlines():
        job_id, _, state = line.partition("|")
        if job_id:
            states[job_id.strip()] = state.split()[0] if state.split() else ""
    return states


def _process_lives(job_id: str) -> bool:
    try:
        os.kill(int(str(job_id).split("_")[0]), 0)
        return True
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
