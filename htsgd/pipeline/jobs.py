"""Jobs alike whichever executor runs them: the executors' one interface, the jobs they return, how jobs are followed.

An `Executor` (`local.Workers`: this machine's workers; `slurm.JobArray`: a job array through
submitit, on Slurm or on this machine) is given a group's configurations and returns its `Job`s,
as submitit's executors do. A job that ran in the driver's process has ended when `submit`
returns, and its `result` is what each of its configurations came to. One that has not is claimed:
each of its configurations is marked queued with it (`claims.mark_queued`, its `marker`) until it
is seen to have ended; `htsgd status` and collecting (`htsgd run`) rebuild it from its marker and
`follow` it, asking each executor once for all of its jobs: `slurm` jobs with one `sacct` call per
job array (never one per configuration), and where some of its tasks have not ended, one `squeue`
call for what Slurm says of them now (pending and why, or running where); `local` jobs (submitit's
local executor, chosen on purpose with `slurm: {cluster: local}`) by whether their process still lives.
"""

import os
import re
import shutil
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..record.names import FAILED

# sacct's states of a job that will not run again (a requeued job reads PENDING or REQUEUED, so runs again).
ENDED_STATES = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
                "PREEMPTED", "TIMEOUT"}
LOCAL_ENDED = "ENDED"  # a local job's process is gone: it cannot say how it ended
# A task of an array cancelled while pending is in neither: Slurm 22.05 never accounts for it.
GONE = "listed by neither squeue nor sacct: cancelled before it started"
RAN_HERE = "COMPLETED"  # how a job that ran in the driver's process ended: it returned


@dataclass(eq=False)
class Job:
    """A task some executor was given: the configurations it trains, its id and log; once it is seen to have ended,
    how (`ended`), and where it ran in the driver's process, what each configuration came to (`result`)."""

    executor: str
    job_id: str
    ids: list = field(default_factory=list)
    log: str | None = None  # relative to the group's folder
    result_file: str | None = None  # submitit's pickle of what the task returned, relative to the group's folder
    ended: str | None = None  # None while it may still run; else how it ended (a sacct state, GONE, ENDED, RAN_HERE)
    now: str | None = None  # while it has not ended, what its scheduler says of it (`Slurm: PENDING (Resources)`)
    outcomes: list | None = None

    def done(self) -> bool:
        return self.ended is not None

    def result(self) -> list[dict]:
        """Each configuration's outcome (status, steps, test acc, or error). A job that ran elsewhere left them in its
        run folders, which collecting reads."""
        if self.outcomes is None:
            raise RuntimeError(f"{self.executor} job {self.job_id} did not run in this process")
        return self.outcomes

    def marker(self) -> dict:
        """The claim written for each of its configurations, from which another process rebuilds it."""
        return {"job_id": self.job_id, "executor": self.executor, "log": self.log,
                **({"result": self.result_file} if self.result_file else {})}

    @classmethod
    def from_marker(cls, marker: dict) -> "Job":
        return cls(marker["executor"], str(marker["job_id"]), log=marker["log"], result_file=marker.get("result"))

    def left(self, failure: dict | None) -> bool:
        """Whether a run folder's failure is this job's own (it recorded how the run failed, then ended)."""
        return bool(failure) and str(failure.get("job", {}).get("job_id")) == self.job_id

    def failure(self) -> dict:
        """What a configuration stands at once its job has ended without a result (collecting adds its log)."""
        return {"status": FAILED, "error": f"{self.executor} job {self.job_id} ended ({self.ended}) without a result",
                "job": {**self.marker(), "ended": self.ended}}


class Executor(ABC):
    """Where configurations are trained: `submit` gives it a group's configurations and returns its jobs."""

    where = ""  # how `htsgd run` says where they train, after its count of configurations to run

    @abstractmethod
    def submit(self, group, group_dir: Path, ids: list, data_dir: Path, device, notebooks: Path,
               command: str) -> list[Job]:
        """Train `ids` of `group` into `group_dir`; return at once, or once the jobs have ended (their `result`)."""


def follow(jobs):
    """See which of `jobs` have ended, asking each executor once for all of its jobs: sets `ended` of those that have,
    and `now` of the others where the scheduler says something of them."""
    by_executor = {}
    for job in jobs:
        if not job.done():
            by_executor.setdefault(job.executor, []).append(job)
    for executor, its_jobs in by_executor.items():
        (_follow_slurm if executor == "slurm" else _follow_processes)(its_jobs)


def _follow_slurm(jobs: list[Job]):
    """Per array one sacct call, then one squeue call where sacct has not seen every task end. A task sacct does not
    list yet has not ended, unless squeue does not hold it either."""
    arrays = {}
    for job in jobs:
        arrays.setdefault(job.job_id.split("_")[0], []).append(job)
    for array_id, its_jobs in sorted(arrays.items()):
        states = slurm_states(array_id)
        waiting = [job for job in its_jobs if states.get(job.job_id) not in ENDED_STATES]
        queue = slurm_queue(array_id) if waiting else None
        for job in its_jobs:
            if job not in waiting:
                job.ended = states[job.job_id]
            elif queue is not None and job.job_id in queue:
                job.now = f"Slurm: {queue[job.job_id]}"
            elif queue is not None and job.job_id not in states:
                job.ended = GONE


def _follow_processes(jobs: list[Job]):
    for job in jobs:
        if not _process_lives(job.job_id):
            job.ended = LOCAL_ENDED


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
