"""`htsgd run` and `htsgd report`: plan, launch, collect, then analyse and report where their inputs changed.

Before anything is trained every group is validated, its data checked and its plan made
(`plan.make_plan`, from the params file and the results folder alone). A folder trained with other
flags stops the run, naming the flags, unless `retrain_stale` is set; a damaged record file is
named with what to do, the rest goes on, and the exit status says so. Runs made by other training
code, and runs whose analysis must be redone but that have no weights, are moved aside and trained
again: a record is never a mix of old runs and new numbers. Nothing is ever deleted: a folder set
aside goes to `<results>/<group>.superseded/<time>/`.

The launcher's executor (`jobs.Executor`: `local`, this machine's workers; `slurm`, a job array)
is handed the plan's `to_train` and nothing else, and returns jobs: those that ran here have their
outcomes; each configuration of one that has not ended is marked queued with its job, and the group
waits for it. Collecting, `htsgd run` again, folds ended jobs into the record alike whichever
executor ran them, and never trains a configuration that a job was given, not even one whose job
ended without a result: those are listed with their logs, and training them again is an explicit
choice (`--launcher local`, or a new submission with `--launcher slurm`). Analysis and report run
only when nothing is being trained, and only when their inputs changed.
"""

import shutil
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from ..core.data import DataUnavailable, ensure_available
from ..errors import UserError
from ..record import group_record, run_folder
from ..record.digests import NOTEBOOKS
from ..record.names import CHECKPOINT, FAILED_NOTEBOOK, FAILURES, SUMMARY, results_csv
from ..record.provenance import provenance
from ..record.public_paths import command_line, relative
from ..record.storage import DamagedFile
from ..report.findings import write_findings
from . import claims
from .downloads import tidy_on_failure
from .jobs import Executor, Job, follow
from .local import Workers, clock
from .notebook import execute
from .params import Group, group_folder, load_group, slurm_options as checked_slurm_options
from .plan import Plan, make_plan, report_inputs, stage_fresh

STILL_RUNNING = 3  # exit status when configurations are still being trained by another process or job


class StaleRuns(UserError):
    """Run folders hold another configuration than the params file gives them, or are claimed by a live trainer."""


def run_groups(paths, results_dir="results", data_dir="data", device=None, notebooks=NOTEBOOKS,
               retrain_stale=False, retrain_damaged=False, command=None, workers=1, launcher=None,
               slurm_options=None, fresh_kernels=False, large_grid=False) -> int:
    """Plan every group, refuse what must not go on, then launch, collect, analyse and report each.

    `launcher` None trains locally what no job was given; "local" also trains again what a job
    was given but left without a result; "slurm" submits both. Exit status: 0 when everything is
    done, 1 when anything failed or is damaged, STILL_RUNNING while configurations are trained elsewhere.
    """
    groups = [load_group(p, large_grid) for p in paths]
    _check_data(groups, data_dir)
    options = {g.name: checked_slurm_options(slurm_options, "the --slurm flags", g.slurm) for g in groups}
    executors = {g.name: _executor(launcher, options[g.name], g.path, workers, fresh_kernels) for g in groups}
    command = command or command_line()
    with ExitStack() as held:
        for group in groups:
            held.enter_context(claims.hold(claims.lock_path(group_folder(results_dir, group), "driver"), command))
        plans = [make_plan(g, group_folder(results_dir, g)) for g in groups]
        _refuse_stale(plans, retrain_stale)
        failed, damaged, job_failed, elsewhere = [], [], [], 0
        for plan in plans:
            plan = _set_aside(_check_checkpoints(collect(plan)), retrain_stale, retrain_damaged)
            started = time.monotonic()
            wanted = {*plan.to_train, *(plan.job_failed if launcher is not None else [])}
            todo = [i for i in plan.group.configs if i in wanted]
            launch = executors[plan.group.name]
            _say_plan(plan, todo, launch)
            jobs = launch.submit(plan.group, plan.group_dir.resolve(), todo, Path(data_dir).resolve(), device,
                                 Path(notebooks), command) if todo else []
            waiting = _claim(plan.group_dir, [job for job in jobs if not job.done()])
            if waiting:
                elsewhere += waiting
                continue
            failed += [(relative(plan.group_dir / o["id"] / FAILED_NOTEBOOK), o["error"])
                       for job in jobs for o in job.result() if o["status"] in FAILURES]
            plan = _check_checkpoints(collect(plan))
            damaged += [(f"{plan.group.name}/{i}", why) for i, why in plan.damaged.items()]
            job_failed += [(f"{plan.group.name}/{i}", failure) for i, failure in plan.job_failed.items()]
            if plan.elsewhere:
                elsewhere += len(plan.elsewhere)
                print(f"{plan.group.name}: {len(plan.elsewhere)} configuration(s) are being trained elsewhere "
                      f"({', '.join(plan.elsewhere)}); analysis and report wait until they are done", flush=True)
            elif plan.settled:
                failed += analyse_and_report(plan, data_dir, device, notebooks, command)
            print(f"{plan.group.name}: finished in {clock(time.monotonic() - started)}; record in "
                  f"{relative(plan.group_dir)}", flush=True)
        _write_findings(results_dir)
    return _exit_status(failed, damaged, job_failed, elsewhere)


def _executor(launcher, slurm_options: dict, where, workers: int, fresh_kernels: bool) -> Executor:
    """The launcher's executor for a group: a job array through submitit (`slurm`), else this machine's workers."""
    if launcher == "slurm":
        from .slurm import JobArray  # submitit is imported only where it is used

        return JobArray(slurm_options, where)
    return Workers(workers, fresh_kernels)


def _claim(group_dir: Path, jobs: list[Job]) -> int:
    """Mark each configuration of jobs that have not ended queued with its job, until collecting sees it ended;
    return how many they were given."""
    for job in jobs:
        for config_id in job.ids:
            claims.mark_queued(group_dir, config_id, job.marker())
    return sum(len(job.ids) for job in jobs)


def _write_findings(results_dir):
    """FINDINGS.md anew from every reported group under `results_dir`, after any report may have changed."""
    path = write_findings(results_dir)
    print(f"findings of every reported group: {relative(path)}", flush=True)


def _check_data(groups, data_dir):
    missing = []
    for name in sorted({c.dataset for g in groups for c in g.configs.values()}):
        try:
            with tidy_on_failure(data_dir):
                ensure_available(name, data_dir)
        except DataUnavailable as err:
            missing.append(f"- {name}: {err}")
    if missing:
        raise UserError("datasets missing, nothing was run:\n" + "\n".join(missing))


def _refuse_stale(plans: list[Plan], retrain_stale: bool):
    """Stale folders stop everything unless retrained; a stale folder a live trainer or a job holds is never moved."""
    stale = [(p, i, keys) for p in plans for i, keys in p.stale.items()]
    if not stale:
        return
    claimed = [f"  {p.group.name}/{i}: {who}" for p, i, _ in stale for who in [_claimant(p.group_dir, i)] if who]
    if retrain_stale and claimed:
        raise StaleRuns("--retrain_stale would move folders that are still being written; nothing was moved or run:\n"
                        + "\n".join(claimed) + "\nWait for them to end (htsgd status), then run again.")
    if not retrain_stale:
        lines = [f"{len(stale)} run folder(s) hold a run trained with other flags than the params file now gives; "
                 "nothing was run:"]
        lines += [f"  {p.group.name}/{i}: " + "; ".join(keys) for p, i, keys in stale]
        lines.append("Restore the params file, or pass --retrain_stale to train them again "
                     "(their old folders are moved to <results>/<group>.superseded/, not deleted).")
        raise StaleRuns("\n".join(lines))


def _claimant(group_dir: Path, config_id: str) -> str | None:
    """Who still writes into a run's folder: a live lock's holder, or a job that has not ended."""
    holder = claims.holder(claims.lock_path(group_dir, config_id))
    if holder:
        return f"held by {holder}"
    marker = claims.read_queued(group_dir, config_id)
    if marker is not None:
        job = Job.from_marker(marker)
        follow([job])
        if not job.done():
            return f"given to {job.executor} job {job.job_id}, which has not ended"
    return None


def _set_aside(plan: Plan, retrain_stale: bool, retrain_damaged: bool) -> Plan:
    """Move aside what must be trained again (and say why), then plan again."""
    moves = [(list(plan.stale) if retrain_stale else [], "trained with other flags"),
             (plan.outdated, "were trained by other training code"),
             (plan.weightless, "have no weights and their analysis must be redone"),
             (list(plan.damaged) if retrain_damaged else [], "have a damaged record file")]
    moved = False
    for ids, why in moves:
        if ids:
            supersede(plan.group_dir, ids, f"{why}: they are trained again")
            moved = True
    if plan.orphans:
        print(f"warning: {plan.group.name}: {len(plan.orphans)} run folder(s) are not in the grid of "
              f"{relative(plan.group.path)} and are left out of runs.csv, analysis, tables and figures: "
              f"{', '.join(plan.orphans)}", flush=True)
    return _check_checkpoints(make_plan(plan.group, plan.group_dir)) if moved else plan


def supersede(group_dir: Path, ids, why: str):
    """Move run folders aside, to `<group>.superseded/<time>/<id>`, so nothing trained is ever deleted."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside, n = group_dir.parent / f"{group_dir.name}.superseded" / stamp, 1
    while aside.exists():
        aside, n = aside.with_name(f"{stamp}-{n}"), n + 1
    aside.mkdir(parents=True)
    for config_id in ids:
        shutil.move(str(group_dir / config_id), str(aside / config_id))
    print(f"{group_dir.name}: {len(ids)} run folder(s) {why}; moved to {relative(aside)}", flush=True)


def _check_checkpoints(plan: Plan) -> Plan:
    """Move to the plan's damaged runs the configurations to train whose checkpoint is there but damaged, before a
    notebook would resume from it (with torch's advice to load it unsafely). The plan itself reads no tensors
    (`htsgd status` never imports torch); a damaged model.pt is the analysis' to name, as a row with status error."""
    from ..record.tensor_files import check_tensor_file

    for config_id in [*plan.to_train, *plan.job_failed]:
        try:
            if (plan.group_dir / config_id / CHECKPOINT).is_file():
                check_tensor_file(plan.group_dir / config_id / CHECKPOINT)
        except DamagedFile as err:
            plan.damaged[config_id] = str(err)
    plan.to_train = [i for i in plan.to_train if i not in plan.damaged]
    plan.job_failed = {i: failure for i, failure in plan.job_failed.items() if i not in plan.damaged}
    return plan


def _say_plan(plan: Plan, todo: list, launch: Executor):
    done = len(plan.recorded)
    parts = [f"{len(plan.group.configs)} configurations", f"{done} already complete", f"{len(todo)} to run"]
    if plan.elsewhere:
        parts.append(f"{len(plan.elsewhere)} running elsewhere")
    waiting = set(plan.job_failed).difference(todo)
    if waiting:
        parts.append(f"{len(waiting)} left without a result by their job")
    where = launch.where if todo else ""
    print(f"{plan.group.name}: {', '.join(parts)}{where} -> {relative(plan.group_dir)}", flush=True)


def collect(plan: Plan) -> Plan:
    """Fold what ended jobs left into the record, as it is now (an executor may just have trained), alike whichever
    executor ran them: a recorded run's claim is dropped; a job that ended without a result becomes that
    configuration's failure, with the job and its log, unless the job recorded its own (a failed notebook); then
    runs.csv is rebuilt."""
    group_dir = plan.group_dir
    plan = make_plan(plan.group, group_dir)
    for config_id in plan.recorded:
        claims.unmark_queued(group_dir, config_id)
    for config_id, job in plan.ended.items():
        if not job.left(run_folder.read_failure(group_dir / config_id)):
            failure = job.failure()
            run_folder.record_failure(group_dir / config_id, {**failure,
                                                              "error": f"{failure['error']}; its log: {job.log}"})
        claims.unmark_queued(group_dir, config_id)
    if plan.ended:  # their failures now stand in the run folders: plan from those (no second sacct call otherwise)
        plan = make_plan(plan.group, group_dir)
    if not plan.damaged:
        group_dir.mkdir(parents=True, exist_ok=True)
        group_record.write_runs_csv(plan.group.configs, group_dir)
    return plan


def analyse_and_report(plan: Plan, data_dir, device, notebooks, command) -> list:
    """Run the analysis and the report notebooks where their inputs changed; record what produced them."""
    group, group_dir = plan.group, plan.group_dir.resolve()
    if not plan.recorded:
        print(f"{group.name}: no finished runs to analyse", flush=True)
        return []
    failed = []
    if plan.analysis_fresh:
        print(f"{group.name}: analysis up to date", flush=True)
    else:
        _say_changed(plan, "analysis")
        parameters = {**group.analysis, "data_dir": relative(Path(data_dir).resolve(), group_dir), "device": device}
        failed += run_group_notebook(group, group_dir, "analyze", parameters, notebooks)
        _write_provenance(plan, "analysis", command, device, None if failed else plan.analysis_inputs)
    if failed:
        return failed
    if not (group_dir / SUMMARY / results_csv(group.analysis["pruning_type"], "mce",
                                                 group.analysis["compression_error_metric"])).is_file():
        print(f"{group.name}: no analysis to report", flush=True)
        return failed
    inputs = report_inputs(plan)
    if stage_fresh(plan, "report", inputs):
        print(f"{group.name}: report up to date", flush=True)
        return failed
    _say_changed(plan, "report")
    failed += run_group_notebook(group, group_dir, "report", dict(group.analysis), notebooks)
    _write_provenance(plan, "report", command, device, None if failed else inputs)
    return failed


def _say_changed(plan: Plan, stage: str):
    for change in plan.changed_outputs.get(stage, []):
        print(f"{plan.group.name}: {change}; the {stage} is redone", flush=True)


def _write_provenance(plan: Plan, stage: str, command: str, device, inputs):
    """The stage's environment and inputs (None after a failure: not fresh), and the digests of what it wrote."""
    outputs = group_record.output_digests(plan.group_dir, stage) if inputs is not None else None
    group_record.write_provenance(plan.group_dir, plan.group.name, plan.group.path,
                                  group_record.runs_provenance(plan.group_dir, plan.recorded), stage,
                                  {**provenance(command, device), "inputs": inputs, "outputs": outputs})


def run_group_notebook(group: Group, group_dir: Path, name: str, parameters: dict, notebooks=NOTEBOOKS) -> list:
    """Execute the group-level notebook `name` (analyze or report) into the group's folder."""
    print(f"{group.name}: {name}", flush=True)
    error = execute(Path(notebooks) / f"{name}.ipynb", group_dir / f"{name}.ipynb",
                    {"group_dir": ".", **parameters}, group.timeout, cwd=group_dir)
    print("    done" if error is None else f"    {error['status']}: {error['error']}", flush=True)
    return [] if error is None else [(relative(group_dir / f"{name}.failed.ipynb"), error["error"])]


def report_group(path, results_dir="results", notebooks=NOTEBOOKS, command=None, large_grid=False) -> int:
    """`htsgd report`: redo only a group's report over the analysis it has; the analysis's provenance is kept."""
    group = load_group(path, large_grid)
    group_dir = group_folder(results_dir, group).resolve()
    csv_name = results_csv(group.analysis["pruning_type"], "mce", group.analysis["compression_error_metric"])
    if not (group_dir / SUMMARY / csv_name).is_file():
        raise UserError(f"{relative(group_dir)} holds no {SUMMARY}/{csv_name} for the group's analysis settings; "
                        f"run `htsgd run {path}` first")
    if group_record.read_provenance(group_dir).get("analysis", {}).get("outputs"):
        changed = group_record.changed_outputs(group_dir, "analysis")
        if changed:
            raise UserError(f"{relative(group_dir)}: {'; '.join(changed[:3])}: a report would read a damaged "
                            f"analysis; run `htsgd run {path}`, which redoes the analysis, then the report")
    command = command or command_line()
    with claims.hold(claims.lock_path(group_dir, "driver"), command):
        plan = make_plan(group, group_dir)
        if run_group_notebook(group, group_dir, "report", dict(group.analysis), notebooks):
            return 1
        inputs = report_inputs(plan) if plan.analysis_fresh else None
        _write_provenance(plan, "report", command, None, inputs)
        _write_findings(results_dir)
    return 0


def _exit_status(failed, damaged, job_failed, elsewhere) -> int:
    if failed:
        print(f"\n{len(failed)} notebook(s) failed:", file=sys.stderr)
        for notebook, error in failed:
            print(f"  {notebook}: {error}", file=sys.stderr)
    if damaged:
        print(f"\n{len(damaged)} run(s) have a damaged record file; move each run's folder aside, or pass "
              "--retrain_damaged to move it to <results>/<group>.superseded/ and train it again:", file=sys.stderr)
        for name, why in damaged:
            print(f"  {name}: {why}", file=sys.stderr)
    if job_failed:
        print(f"\n{len(job_failed)} configuration(s) were given to a job that ended without a result; train them "
              "again with --launcher local, or submit them again with --launcher slurm:", file=sys.stderr)
        for name, failure in job_failed:
            print(f"  {name}: {failure['error']}", file=sys.stderr)
    if failed or damaged or job_failed:
        return 1
    if elsewhere:
        print("\nsome configurations are still being trained elsewhere: see `htsgd status`, and run `htsgd run` "
              "again once they have ended to collect them and build the analysis and report", file=sys.stderr)
        return STILL_RUNNING
    return 0
