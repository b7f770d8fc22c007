"""`htsgd status`: every configuration's state, read from the results folder whichever launcher ran it.

It only reads: it takes no lock (a live one is tested, never taken), asks Slurm once per job array,
and imports neither torch, nor a Jupyter client, nor submitit.
"""

import sys

from ..record import lock, run_folder
from ..record.names import CHECKPOINT, NOTEBOOK, PENDING
from .params import group_folder, load_group
from .plan import make_plan


def status_group(path, results_dir="results", large_grid=False) -> int:
    """Print one line per configuration, then the counts and whether the analysis and report are fresh.
    Exit status 1 when a run's record is damaged or a job left a configuration without a result."""
    group = load_group(path, large_grid)
    plan = make_plan(group, group_folder(results_dir, group))
    counts, recorded, outdated = {}, set(plan.recorded), set(plan.outdated)  # sets: linear in a large grid
    for config_id in group.configs:
        state, detail = _state(plan, config_id, recorded, outdated)
        counts[state] = counts.get(state, 0) + 1
        print(f"{config_id:50s} {state}{f' ({detail})' if detail else ''}")
    for orphan in plan.orphans:
        print(f"{orphan:50s} not in the grid: left out of runs.csv, analysis, tables and figures")
    freshness = ("analysis up to date, report up to date" if plan.analysis_fresh and plan.report_fresh else
                 "analysis up to date, report to be redone" if plan.analysis_fresh else "analysis to be (re)done")
    print(f"{group.name}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) + f"; {freshness}")
    for stage, changes in plan.changed_outputs.items():
        print(f"{group.name}: {'; '.join(changes)}: `htsgd run` redoes the {stage}")
    if lock.LOCK_FILE.is_file() and (wrong := lock.mismatches()):  # new runs would not be the records' environment
        print(f"warning: this environment does not match {lock.LOCK_FILE.name}: {lock.describe(wrong)}; "
              "`make setup` installs the locked ones (`rm .venv/.installed-*` first if it has nothing to do)",
              file=sys.stderr)
    if plan.damaged:
        print(f"{group.name}: {len(plan.damaged)} run(s) have a damaged record file: move each run's folder aside, or "
              "`htsgd run --retrain_damaged` moves them to <results>/<group>.superseded/ and trains them again",
              file=sys.stderr)
    return 1 if plan.damaged or plan.job_failed else 0


def _state(plan, config_id: str, recorded: set, outdated: set) -> tuple[str, str]:
    run_dir = plan.group_dir / config_id
    if config_id in recorded:
        return run_folder.read_metrics(run_dir)["status"], ""
    if config_id in plan.stale:
        return "stale", "; ".join(plan.stale[config_id])
    if config_id in outdated:
        return "outdated", "trained by other training code: htsgd run trains it again"
    if config_id in plan.damaged:
        return "damaged", plan.damaged[config_id]
    if config_id in plan.running:
        return "running", plan.running[config_id]
    if config_id in plan.queued:
        job = plan.queued[config_id]
        now = f"; {job.now}" if job.now else ""  # what its scheduler says: pending and why, or running where
        return "queued", f"job {job.job_id} ({job.executor}), log {job.log}{now}"
    if config_id in plan.job_failed:  # a failure its job recorded, or left by ending without a result
        failure = plan.job_failed[config_id]
        error, log = failure["error"], failure["job"]["log"]
        return failure["status"], error if log in error else f"{error}; log {log}"
    if run_folder.is_complete(run_dir):
        return "unrecorded", f"finished; `htsgd run` executes its {NOTEBOOK} over the saved weights, training nothing"
    failure = run_folder.read_failure(run_dir)
    if failure is not None:
        return failure["status"], failure["error"]
    if (run_dir / CHECKPOINT).is_file():
        return "interrupted", "resumes from its checkpoint"
    return PENDING, ""
