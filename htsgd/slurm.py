"""`htsgd run --launcher slurm`: a group's configurations as a Slurm job array, through submitit.

The configurations that are neither recorded nor being trained are packed `pack` to a task (a
pack amortises a task's start-up: one kernel kept warm for all its configurations) and submitted
as one job array. Each task trains its configurations exactly as a local worker does (under each
run's lock, into its own run folder only); a preempted or requeued task starts again and skips
what is recorded, and an interrupted run resumes from its checkpoint. Submitting returns at
once: `htsgd status` follows the jobs from the results folder, and `htsgd run` after they end
collects them into `runs.csv` and builds the analysis and report. Job logs go under
`results/<group>/logs/slurm/`. Until its job has ended, a configuration counts as being trained
elsewhere, so no other driver trains it twice.
"""

import json
import os
from pathlib import Path

import submitit

from . import locks, run_folder
from .errors import UserError
from .workers import describe, own_runtime_dir, train_one

# The `slurm:` section of a params file, or the matching flags: key -> (type, default, meaning)
OPTIONS = {
    "cluster": (str, "slurm", "submitit's executor: slurm, or local / debug to try the same path on this machine"),
    "partition": (str, None, "Slurm partition"),
    "account": (str, None, "Slurm account"),
    "time_min": (int, 240, "time limit of one task, in minutes"),
    "gpus_per_task": (int, 1, "GPUs per task"),
    "cpus_per_task": (int, 4, "CPU cores per task"),
    "mem_gb": (int, 16, "memory per task, in GB"),
    "pack": (int, 1, "configurations trained one after another by one task"),
    "array_parallelism": (int, 64, "tasks of the array running at once"),
    "setup": (list, [], "shell lines run before each task, e.g. activating the environment"),
}
LOGS = Path("logs") / "slurm"


def slurm_options(section: dict | None, where: str) -> dict:
    """The options of a params file's `slurm:` section over their defaults, checked."""
    chosen = {key: default for key, (_, default, _) in OPTIONS.items()}
    for key, value in (section or {}).items():
        if key not in OPTIONS:
            raise UserError(f"{where}: slurm.{key} is not an option; allowed: {', '.join(OPTIONS)}")
        kind = OPTIONS[key][0]
        if kind is list:
            if not (isinstance(value, list) and all(isinstance(line, str) for line in value)):
                raise UserError(f"{where}: slurm.{key} = {value!r} must be a list of shell lines")
        elif isinstance(value, bool) or not isinstance(value, kind) or (kind is int and value < (0 if "gpus" in key else 1)):
            raise UserError(f"{where}: slurm.{key} = {value!r} is not allowed; use {'a whole number' if kind is int else 'a string'}"
                            f" ({OPTIONS[key][2]})")
        chosen[key] = value
    if chosen["cluster"] not in ("slurm", "local", "debug"):
        raise UserError(f"{where}: slurm.cluster = {chosen['cluster']!r} is not allowed; use slurm, local or debug")
    return chosen


class Pack(submitit.helpers.Checkpointable):
    """One task of the array: train its configurations in turn. Requeued as the same call (`Checkpointable`)."""

    def __call__(self, group, group_dir, ids, data_dir, device, notebooks, command) -> list[dict]:
        own_runtime_dir()
        outcomes = []
        for config_id in ids:
            outcome = train_one(group, config_id, Path(group_dir), Path(data_dir), device, Path(notebooks), command)
            print(f"{config_id}: {describe(outcome)}", flush=True)
            outcomes.append(outcome)
        return outcomes


def submit_group(group, group_dir: Path, data_dir: Path, device, command: str, options: dict, notebooks=None) -> list:
    """Submit every configuration that is neither recorded nor being trained; return their ids.

    `options` are complete and checked (`slurm_options`). With the debug executor the tasks run
    here, one after another, before this returns.
    """
    from .driver import NOTEBOOKS, is_running_elsewhere

    notebooks = notebooks or NOTEBOOKS
    todo = [i for i in group.configs if not run_folder.is_recorded(group_dir / i) and not is_running_elsewhere(group_dir, i)]
    if not todo:
        print(f"{group.name}: nothing to submit (every configuration is recorded or being trained)", flush=True)
        return todo
    packs = [todo[i:i + options["pack"]] for i in range(0, len(todo), options["pack"])]
    executor = submitit.AutoExecutor(folder=group_dir / LOGS / "%j", cluster=None if options["cluster"] == "slurm" else options["cluster"])
    executor.update_parameters(name=f"htsgd-{group.name}", timeout_min=options["time_min"],
                               cpus_per_task=options["cpus_per_task"], mem_gb=options["mem_gb"],
                               gpus_per_node=options["gpus_per_task"] if options["cluster"] == "slurm" else 0,
                               slurm_partition=options["partition"], slurm_account=options["account"],
                               slurm_setup=options["setup"], slurm_array_parallelism=options["array_parallelism"])
    n = len(packs)
    jobs = executor.map_array(Pack(), [group] * n, [group_dir] * n, packs, [data_dir] * n, [device] * n,
                              [notebooks] * n, [command] * n)
    if options["cluster"] == "debug":  # submitit's debug executor runs each task here, when asked for its result
        for job in jobs:
            job.result()
        return todo
    for job, pack in zip(jobs, packs):
        for config_id in pack:
            marker = queued_marker(group_dir, config_id)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"job_id": job.job_id, "cluster": options["cluster"],
                                          "result": os.path.relpath(job.paths.result_pickle, group_dir)}))
    print(f"{group.name}: {len(todo)} configuration(s) submitted as {n} task(s) "
          f"({', '.join(sorted({j.job_id.split('_')[0] for j in jobs}))}); logs in {os.path.relpath(group_dir / LOGS)}",
          flush=True)
    return todo


def queued_marker(group_dir: Path, config_id: str) -> Path:
    return Path(group_dir) / locks.LOCKS / f"{config_id}.queued"


def is_queued(group_dir: Path, config_id: str) -> bool:
    """Whether a job that has not ended yet was given this configuration."""
    marker = queued_marker(group_dir, config_id)
    if not marker.is_file():
        return False
    job = json.loads(marker.read_text())
    ended = (Path(group_dir) / job["result"]).is_file() or _job_ended(job, Path(group_dir))
    if ended:
        marker.unlink(missing_ok=True)
    return not ended


def queued_job(group_dir: Path, config_id: str) -> str | None:
    marker = queued_marker(group_dir, config_id)
    return json.loads(marker.read_text())["job_id"] if marker.is_file() and is_queued(group_dir, config_id) else None


def _job_ended(job: dict, group_dir: Path) -> bool:
    """Ask the scheduler (Slurm: sacct through submitit) or, for a local job, whether its process still lives."""
    if job["cluster"] == "slurm":
        folder = (group_dir / job["result"]).parent
        return submitit.SlurmJob(folder, job["job_id"]).done(force_check=True)
    try:
        os.kill(int(job["job_id"].split("_")[0]), 0)  # a local job's id is its process id
        return False
    except (ProcessLookupError, ValueError):
        return True
    except PermissionError:
        return False
