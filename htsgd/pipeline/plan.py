"""What a group needs, decided from its params file and its results folder alone.

`make_plan` reads every run folder once and sorts each configuration of the grid into exactly one
of: `recorded` (done, by the current training code), `stale` (trained with other flags), `outdated`
(trained by other training code), `damaged` (a record file that does not read), `running` (a live
process holds its lock), `queued` (given to a job that has not ended), `job_failed` (given to a
job that ended without a result, or with the failure it recorded), `to_train`. A job is followed
alike whichever executor runs it (`jobs.follow`), once however many configurations it was given.
Beside that: `ended` (claims whose job has ended, for collecting to remove), orphaned folders (no
longer in the grid), `weightless` runs (recorded, without weights, whose analysis must be redone),
and whether the analysis and the report are fresh: made from the current inputs, their outputs
unchanged since.
Executors are handed `to_train` and nothing else; the plan itself changes nothing on disk.
"""

from dataclasses import dataclass, field
from pathlib import Path

from ..record import group_record, run_folder
from ..record.digests import REPORT, TRAIN, code_digest, digest, file_digest, notebook_digest
from ..record.names import (ANALYSED, COLUMN_NORMS_CSV, CONFIG, METRICS, NOTEBOOK, PROVENANCE, RUNS_CSV, SUMMARY,
                            WEIGHTS, results_csv, sweep_csv)
from ..record.storage import DamagedFile, read_json
from . import claims
from .jobs import Job, follow
from .params import Group


@dataclass
class Plan:
    group: Group
    group_dir: Path
    recorded: list = field(default_factory=list)
    stale: dict = field(default_factory=dict)  # id -> the flags that differ, "key: old -> new"
    outdated: list = field(default_factory=list)
    damaged: dict = field(default_factory=dict)  # id -> what is damaged, and where
    running: dict = field(default_factory=dict)  # id -> who holds its lock
    queued: dict = field(default_factory=dict)  # id -> its job (`jobs.Job`), which has not ended
    job_failed: dict = field(default_factory=dict)  # id -> its failure (status, error, its job)
    ended: dict = field(default_factory=dict)  # id -> its job, which has ended while it still claims the configuration
    to_train: list = field(default_factory=list)
    orphans: list = field(default_factory=list)
    weightless: list = field(default_factory=list)
    analysis_inputs: str | None = None  # None while some configuration has no outcome yet
    analysis_fresh: bool = False
    report_fresh: bool = False
    changed_outputs: dict = field(default_factory=dict)  # stage -> its outputs no longer as it wrote them

    @property
    def elsewhere(self) -> list:
        """Configurations another process or job is training now."""
        return [*self.running, *self.queued]

    @property
    def settled(self) -> bool:
        """Every configuration is recorded, failed or pending, as it will be analysed: none is being trained,
        waits to be retrained by current code, or has a damaged record."""
        return not (self.stale or self.outdated or self.damaged or self.running or self.queued)


def make_plan(group: Group, group_dir) -> Plan:
    group_dir = Path(group_dir)
    plan = Plan(group, group_dir, orphans=orphans(group, group_dir))
    train_code = code_digest(TRAIN)
    jobs, given = {}, {}  # (executor, job id) -> its Job; id -> its job and its run folder's failure
    for config_id, config in group.configs.items():
        run_dir = group_dir / config_id
        try:
            saved = run_folder.read_config(run_dir)
            if saved is not None and saved != config.to_dict():
                plan.stale[config_id] = run_folder.differences(saved, config.to_dict())
                continue
            if run_folder.is_complete(run_dir):
                run_folder.check_outcome(run_dir)
            elif (run_dir / NOTEBOOK).is_file():
                raise DamagedFile(run_dir / METRICS, f"missing, though the executed {NOTEBOOK} says the run finished")
            if run_folder.is_recorded(run_dir):
                if run_code(run_dir) != train_code:
                    plan.outdated.append(config_id)
                else:
                    plan.recorded.append(config_id)
                continue
            failure = run_folder.read_failure(run_dir)
            marker = claims.read_queued(group_dir, config_id)
        except DamagedFile as err:
            plan.damaged[config_id] = str(err)
            continue
        holder = claims.holder(claims.lock_path(group_dir, config_id))
        if holder is not None:
            plan.running[config_id] = holder
        elif marker is not None:
            job = Job.from_marker(marker)
            job = jobs.setdefault((job.executor, job.job_id), job)  # one Job, however many configurations it has
            job.ids.append(config_id)
            given[config_id] = job, failure
        elif failure is not None and failure.get("job"):
            plan.job_failed[config_id] = failure
        else:
            plan.to_train.append(config_id)
    follow(jobs.values())
    for config_id, (job, failure) in given.items():
        if not job.done():
            plan.queued[config_id] = job
        else:
            plan.ended[config_id] = job
            plan.job_failed[config_id] = failure if job.left(failure) else job.failure()
    to_train = set(plan.to_train)  # a set: planning stays linear in a large grid
    plan.to_train = [i for i in group.configs if i in to_train]
    _plan_analysis(plan)
    return plan


def run_code(run_dir: Path) -> str:
    """The training code a recorded run was made by: the Python its kernel loaded, and its notebook's code."""
    path = run_dir / PROVENANCE
    if not path.is_file():
        raise DamagedFile(path, "missing: which code trained the run is unknown")
    origin = read_json(path)
    if not isinstance(origin.get("code_digest"), str):
        raise DamagedFile(path, "no code_digest: which code trained the run is unknown")
    return digest({"python": origin["code_digest"], "notebook": notebook_digest(run_dir / NOTEBOOK)})


def orphans(group: Group, group_dir: Path) -> list[str]:
    """Run folders in the group's folder whose configuration is no longer in the grid."""
    if not group_dir.is_dir():
        return []
    return sorted(p.name for p in group_dir.iterdir()
                  if p.is_dir() and p.name not in group.configs and (p / CONFIG).is_file())


def _plan_analysis(plan: Plan):
    """Whether the analysis and report are fresh, and which recorded runs would need weights to redo theirs."""
    group, group_dir = plan.group, plan.group_dir
    if plan.settled:
        plan.analysis_inputs = group_record.analysis_inputs(group.configs, group_dir, group.analysis)
        plan.analysis_fresh = stage_fresh(plan, "analysis", plan.analysis_inputs)
    if plan.analysis_fresh:
        plan.report_fresh = stage_fresh(plan, "report", report_inputs(plan))
        return
    for config_id in plan.recorded:
        run_dir = group_dir / config_id
        if run_folder.read_metrics(run_dir)["status"] in ANALYSED and not (run_dir / WEIGHTS).is_file():
            key = group_record.analysis_key(group.configs[config_id].to_dict(), run_dir, group.analysis)
            if group_record.read_cached_analysis(group_dir, config_id, key) is None:
                plan.weightless.append(config_id)


def stage_fresh(plan: Plan, stage: str, inputs: str) -> bool:
    """The stage ran on these inputs and its outputs are still as it wrote them (else they are noted in the plan)."""
    if group_record.stage_inputs(plan.group_dir, stage) != inputs:
        return False
    changed = group_record.changed_outputs(plan.group_dir, stage)
    if changed:
        plan.changed_outputs[stage] = changed
    return not changed


def report_files(group_dir: Path, analysis: dict) -> list[Path]:
    """What the report reads besides the runs' histories: runs.csv and the CSVs of the group's analysis settings."""
    kind = analysis["pruning_type"]
    return [group_dir / RUNS_CSV, *(group_dir / SUMMARY / name for name in (
        results_csv(kind, "mce", analysis["compression_error_metric"]), sweep_csv(kind), COLUMN_NORMS_CSV))]


def report_inputs(plan: Plan) -> str:
    files = report_files(plan.group_dir, plan.group.analysis)
    return digest({"analysis": plan.analysis_inputs, "code": code_digest(REPORT),
                   "files": {p.name: file_digest(p) if p.is_file() else None for p in files}})


