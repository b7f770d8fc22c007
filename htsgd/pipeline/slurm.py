"""`htsgd run --launcher slurm`: the plan's configurations to train, as a Slurm job array, through submitit.

The configurations are packed `pack` to a task (a pack amortises a task's start-up: one kernel kept
warm for all its configurations) and submitted as one job array. Each task trains its
configurations exactly as a local worker does (under each run's lock, into its own run folder
only); a preempted or requeued task starts again, skips what is recorded, and resumes an
interrupted run from its checkpoint. Submitting returns at once: each configuration's queued marker
names its job, the executor and the job's log, `htsgd status` follows the jobs, and `htsgd run`
collects them once they have ended. Slurm is asked for explicitly: without it the launcher refuses,
and `slurm: {cluster: local}` (or `debug`) is the deliberate way to run this path on one machine.
A training failure inside a job is recorded with its job, so that it is collected, never retrained
by a plain `htsgd run`.
"""

import shutil
from pathlib import Path

import submitit

from ..errors import UserError
from ..record import run_folder
from ..record.names import FAILURES, SLURM_LOGS
from ..record.public_paths import relative
from . import claims
from .local import describe, own_runtime_dir, train_one


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


class Pack(submitit.helpers.Checkpointable):
    """One task of the array: train its configurations in turn. Requeued as the same call (`Checkpointable`)."""

    def __call__(self, group, group_dir, ids, data_dir, device, notebooks, command) -> list[dict]:
        own_runtime_dir()
        env, group_dir = submitit.JobEnvironment(), Path(group_dir)
        command = f"{command} [{env.cluster} job {env.job_id}]"  # the runs' provenance names the job
        outcomes = []
        for config_id in ids:
            outcome = train_one(group, config_id, group_dir, Path(data_dir), device, Path(notebooks), command)
            if outcome["status"] in FAILURES and env.cluster != "debug":  # debug ran here, as a local run would
                run_folder.record_failure(group_dir / config_id, {
                    "status": outcome["status"], "error": outcome["error"],
                    "job": {"job_id": env.job_id, "executor": env.cluster, "log": relative(env.paths.stderr, group_dir)}})
            print(f"{config_id}: {describe(outcome)}", flush=True)
            outcomes.append(outcome)
        return outcomes


def submit(group, group_dir: Path, ids: list, data_dir: Path, device, command: str, options: dict, notebooks) -> list:
    """Submit `ids` as one job array and mark each configuration queued with its job; return the ids.

    `options` are complete and checked. With the debug executor the tasks run here, one after
    another, before this returns, and nothing is marked.
    """
    cluster = options["cluster"]
    packs = [ids[i:i + options["pack"]] for i in range(0, len(ids), options["pack"])]
    executor = submitit.AutoExecutor(folder=group_dir / SLURM_LOGS / "%j", cluster=cluster)
    executor.update_parameters(name=f"htsgd-{group.name}", timeout_min=options["time_min"],
                               cpus_per_task=options["cpus_per_task"], mem_gb=options["mem_gb"],
                               gpus_per_node=options["gpus_per_task"] if cluster == "slurm" else 0,
                               slurm_partition=options["partition"], slurm_account=options["account"],
                               slurm_setup=options["setup"], slurm_array_parallelism=options["array_parallelism"])
    n = len(packs)
    jobs = executor.map_array(Pack(), [group] * n, [group_dir] * n, packs, [data_dir] * n, [device] * n,
                              [notebooks] * n, [command] * n)
    if cluster == "debug":  # submitit's debug executor runs each task here, when asked for its result
        for job in jobs:
            job.result()
        return ids
    for job, pack in zip(jobs, packs):
        for config_id in pack:
            claims.mark_queued(group_dir, config_id, {
                "job_id": job.job_id, "executor": cluster, "log": relative(job.paths.stderr, group_dir),
                "result": relative(job.paths.result_pickle, group_dir)})
    print(f"{group.name}: {len(ids)} configuration(s) submitted as {n} task(s) to {cluster} "
          f"(job {', '.join(sorted({j.job_id.split('_')[0] for j in jobs}))}); logs in {relative(group_dir / SLURM_LOGS)}",
          flush=True)
    return ids
