"""`htsgd run --launcher slurm`: the plan's configurations to train, as a Slurm job array, through submitit.

`JobArray` is the executor (`jobs.Executor`). The configurations are packed `pack` to a task (a pack
amortises a task's start-up: one kernel kept warm for all its configurations) and submitted as one
job array. Each task trains its configurations exactly as a local worker does (under each run's
lock, into its own run folder only); a preempted or requeued task starts again, skips what is
recorded, and resumes an interrupted run from its checkpoint. Submitting returns at once, with jobs
that have not ended: the driver marks each configuration queued with its job, `htsgd status`
follows the jobs, and `htsgd run` collects them once they have ended. Slurm is asked for
explicitly: without it the launcher refuses, and `slurm: {cluster: local}` (or `debug`) is the
deliberate way to run this path on one machine; submitit's debug executor runs each task in the
driver's process, so its jobs have ended, with their result, when `submit` returns. A training
failure inside a task that runs elsewhere is recorded with its job, so that it is collected, never
retrained by a plain `htsgd run`; one in the driver's process is the driver's, as a worker's is.

Time limits: Slurm warns a task (USR2, submitit's signal) shortly before its time limit; submitit
then requeues it, and the task resumes its run from the run's last checkpoint (`checkpoint_every`).
A group without checkpoints would start over and time out again, so its task is not requeued:
the run is recorded as timed out, with what to change. sbatch's refusal (an unknown partition, a
time limit the partition does not allow) is one line in Slurm's words, and nothing is marked.
"""

import contextlib
import io
import os
import shutil
import socket
from pathlib import Path

import submitit
from submitit.core.utils import FailedJobError, UncompletedJobError

from ..errors import UserError
from ..record import run_folder
from ..record.names import FAILURES, SLURM_LOGS, TIMEOUT
from ..record.public_paths import relative
from .jobs import RAN_HERE, Executor, Job
from .local import describe, own_runtime_dir, train_one

# Times a task is requeued at its time limit, each time resuming its run from the last checkpoint (submitit's default
# is 3): enough for a run several times longer than the limit, and a bound for one that cannot get past it.
TIME_LIMIT_REQUEUES = 20


class NoSlurm(UserError):
    """--launcher slurm where Slurm's commands are missing."""


def check_cluster(options: dict, where):
    """Refuse the Slurm cluster where Slurm is not installed, instead of falling back to local jobs."""
    if options["cluster"] == "slurm":
        missing = [c for c in ("sbatch", "sacct") if shutil.which(c) is None]
        if missing:
            raise NoSlurm(f"--launcher slurm: Slurm's {' and '.join(missing)} not found on PATH, so nothing was "
                          f"submitted. Run this on the cluster's login node; or, to run the same path on this machine "
                          f"on purpose, set `slurm: {{cluster: local}}` (or debug) in {where}; or run without "
                          "--launcher slurm to train here.")


class SlurmRefused(UserError):
    """sbatch refused the job array."""


class Pack(submitit.helpers.Checkpointable):
    """One task of the array: train its configurations in turn. Requeued as the same call (`Checkpointable`)."""

    def __init__(self, time_min: int):
        self.time_min = time_min  # to name the limit a run that could not resume reached
        self.driver = _this_process()

    def __call__(self, group, group_dir, ids, data_dir, device, notebooks, command) -> list[dict]:
        own_runtime_dir()
        env, group_dir = submitit.JobEnvironment(), Path(group_dir)
        command = f"{command} [{env.cluster} job {env.job_id}]"  # the runs' provenance names the job
        outcomes = []
        for config_id in ids:
            try:
                outcome = train_one(group, config_id, group_dir, Path(data_dir), device, Path(notebooks), command)
            except UncompletedJobError:  # submitit's, from its USR2 handler: the time limit, and no requeue
                outcome = {"id": config_id, "status": TIMEOUT, "error": self._timed_out(group, env)}
                _record(group_dir, config_id, outcome, env)
                raise
            if outcome["status"] in FAILURES and _this_process() != self.driver:  # else the driver has the outcome
                _record(group_dir, config_id, outcome, env)
            print(f"{config_id}: {describe(outcome)}", flush=True)
            outcomes.append(outcome)
        return outcomes

    def checkpoint(self, group, *args) -> submitit.helpers.DelayedSubmission | None:
        """Requeued at the time limit only where the runs resume: without checkpoints they would start over."""
        return super().checkpoint(group, *args) if group.checkpoint_every else None

    def _timed_out(self, group, env) -> str:
        limit = f"{env.cluster} job {env.job_id} reached its time limit ({self.time_min} min)"
        if not group.checkpoint_every:
            return (f"timed out: {limit} and was not requeued, since the run cannot resume: set checkpoint_every "
                    f"in {relative(group.path)}, or raise slurm.time_min (--slurm_time_min), then submit it again "
                    "with --launcher slurm")
        return (f"timed out: {limit} {TIME_LIMIT_REQUEUES + 1} times; the run resumes from its checkpoint: raise "
                "slurm.time_min (--slurm_time_min) and submit it again with --launcher slurm")


def _this_process() -> tuple:
    return socket.gethostname(), os.getpid()


def _record(group_dir: Path, config_id: str, outcome: dict, env):
    """A run's failure in a job, with the job and its log, so that collecting keeps it and names the log."""
    run_folder.record_failure(group_dir / config_id, {
        "status": outcome["status"], "error": outcome["error"],
        "job": {"job_id": env.job_id, "executor": env.cluster, "log": relative(env.paths.stderr, group_dir)}})


def signal_delay(time_min: int) -> int:
    """Seconds before its time limit that a task is warned to requeue itself: submitit's 90, less for a limit of a few
    minutes. Slurm sends the warning when a 30-second check finds at most that much + 30 s left, so a 1-minute task
    is warned 15 to 45 s into its run, before its limit."""
    return min(90, 15 * time_min)


class JobArray(Executor):
    """A job array through submitit, on the cluster the group's `slurm:` options name; refused where Slurm is asked
    for but missing. `options` are complete and checked."""

    def __init__(self, options: dict, where):
        check_cluster(options, where)
        self.options = options

    def submit(self, group, group_dir, ids, data_dir, device, notebooks, command) -> list[Job]:
        options, cluster = self.options, self.options["cluster"]
        packs = [ids[i:i + options["pack"]] for i in range(0, len(ids), options["pack"])]
        executor = submitit.AutoExecutor(folder=group_dir / SLURM_LOGS / "%j", cluster=cluster,
                                         slurm_max_num_timeout=TIME_LIMIT_REQUEUES)
        executor.update_parameters(name=f"htsgd-{group.name}", timeout_min=options["time_min"],
                                   cpus_per_task=options["cpus_per_task"], mem_gb=options["mem_gb"],
                                   gpus_per_node=(options["gpus_per_task"] or None) if cluster == "slurm" else 0,
                                   slurm_partition=options["partition"], slurm_account=options["account"],
                                   slurm_setup=options["setup"], slurm_array_parallelism=options["array_parallelism"],
                                   slurm_signal_delay_s=signal_delay(options["time_min"]))
        n = len(packs)
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # submitit prints sbatch's refusal too: said once, below
                submitted = executor.map_array(Pack(options["time_min"]), [group] * n, [group_dir] * n, packs,
                                               [data_dir] * n, [device] * n, [notebooks] * n, [command] * n)
        except FailedJobError as refused:
            raise SlurmRefused(f"{relative(group.path)}: sbatch refused the job array, so nothing was submitted: "
                               f"{' '.join(str(refused).split())}; change the slurm: option it names, or its "
                               "--slurm_ flag") from None
        jobs = [_job(job, pack, group_dir, cluster) for job, pack in zip(submitted, packs)]
        waiting = [job for job in jobs if not job.done()]
        if waiting:
            print(f"{group.name}: {sum(len(job.ids) for job in waiting)} configuration(s) submitted as {len(waiting)} "
                  f"task(s) to {cluster} (job {', '.join(sorted({job.job_id.split('_')[0] for job in waiting}))}); "
                  f"logs in {relative(group_dir / SLURM_LOGS)}", flush=True)
        return jobs


def _job(job: submitit.Job, pack: list, group_dir: Path, cluster: str) -> Job:
    ours = Job(cluster, job.job_id, pack, log=relative(job.paths.stderr, group_dir),
               result_file=relative(job.paths.result_pickle, group_dir))
    if isinstance(job, submitit.DebugJob):  # submitit runs it in this process, when its result is asked
        ours.outcomes, ours.ended = job.result(), RAN_HERE
    return ours
