"""`htsgd run`: execute an experiment group's notebooks through papermill, resumably and checkably.

Before anything is trained, every group is validated, its data checked, and every existing run
folder compared with the configuration the params file now gives it: a folder trained with other
flags stops the run (the differing keys are listed) unless `retrain_stale` is set, which moves
the old folder aside and trains it again. Folders of configurations no longer in the grid are
named and left out of everything.

For every configuration that is not recorded, and not being trained by another process or job,
the train notebook is executed into `<group>/<id>/train.ipynb` (`workers`: one at a time or N at
once), with paths relative to the group's folder so the record is relocatable. Failures are
recorded and the rest goes on. One driver per group at a time (`locks`).
Analysis and report are redone only when their inputs differ by content (`analysis_inputs`,
`report_inputs`, kept in the group's provenance.json), never by file times.
"""

import csv
import hashlib
import io
import json
import shutil
import sys
import time
from contextlib import ExitStack
from dataclasses import fields
from pathlib import Path

from . import locks, run_folder, storage
from .config import TrainConfig
from .data import DataUnavailable, ensure_available
from .errors import UserError
from .execution import execute, relative as _relative
from .params import Group, load_group
from .provenance import command_line, file_digest, provenance, public_path, source_digest
from .workers import ELSEWHERE, clock as _clock, train_all

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
RUN_COLUMNS = (["id"] + [f.name for f in fields(TrainConfig)]
               + ["status", "steps", "wall_time", "train_acc", "test_acc", "max_train_loss_ratio", "error"])
RUNS_CSV, PROVENANCE = "runs.csv", "provenance.json"
NOT_ANALYSED = ("diverged",)  # a complete run whose weights the analysis never reads
STILL_RUNNING = 3  # exit status when configurations are still being trained by another process or job


class StaleRuns(UserError):
    """Run folders hold another configuration than the params file gives them."""


def run_groups(paths, results_dir="results", data_dir="data", device=None, notebooks=NOTEBOOKS,
               retrain_stale=False, command=None, workers=1, launcher="local", slurm_options=None,
               fresh_kernels=False) -> int:
    """Validate every group, check its data and its existing folders, then run them all.

    Exit status: 0 when everything is done, 1 when anything failed, STILL_RUNNING when some
    configurations are being trained elsewhere (another driver's workers, Slurm jobs).
    """
    groups = [load_group(p) for p in paths]
    _check_data(groups, data_dir)
    group_dirs = [Path(results_dir) / g.name for g in groups]
    command = command or command_line()
    with ExitStack() as held:
        for group_dir in group_dirs:
            held.enter_context(locks.hold(locks.lock_path(group_dir, "driver"), command))
        stale = {g.name: stale_runs(g, d) for g, d in zip(groups, group_dirs)}
        if any(stale.values()) and not retrain_stale:
            raise StaleRuns(_stale_message(stale))
        failed, elsewhere = [], 0
        for group, group_dir in zip(groups, group_dirs):
            if stale[group.name]:
                supersede(group_dir, list(stale[group.name]), "trained with other flags")
            if launcher == "slurm":
                from .slurm import slurm_options as checked, submit_group
                options = checked({**(group.slurm or {}), **(slurm_options or {})}, f"{group.path} and the --slurm flags")
                submitted = submit_group(group, group_dir.resolve(), Path(data_dir).resolve(), device, command, options,
                                         notebooks)
                if submitted and options["cluster"] != "debug":  # otherwise collect what is done, as a local run
                    elsewhere += len(submitted)
                    continue
            group_failed, group_elsewhere = run_group(group, group_dir, data_dir, device, notebooks, command, workers,
                                                      fresh_kernels)
            failed, elsewhere = failed + group_failed, elsewhere + group_elsewhere
    if failed:
        print(f"\n{len(failed)} notebook(s) failed:", file=sys.stderr)
        for notebook, error in failed:
            print(f"  {notebook}: {error}", file=sys.stderr)
        return 1
    if elsewhere:
        print("\nsome configurations are still being trained elsewhere: see `htsgd status`, and run `htsgd run` "
              "again once they have ended to collect them and build the analysis and report", file=sys.stderr)
        return STILL_RUNNING
    return 0


def _check_data(groups, data_dir):
    missing = []
    for name in sorted({c.dataset for g in groups for c in g.configs.values()}):
        try:
            ensure_available(name, data_dir)
        except DataUnavailable as err:
            missing.append(f"- {name}: {err}")
    if missing:
        raise UserError("datasets missing, nothing was run:\n" + "\n".join(missing))


def stale_runs(group: Group, group_dir: Path) -> dict:
    """id -> differing keys, for each configuration whose folder holds a run trained with other flags."""
    stale = {}
    for config_id, config in group.configs.items():
        saved = run_folder.read_config(group_dir / config_id)
        if saved is not None and saved != config.to_dict():
            stale[config_id] = run_folder.differences(saved, config.to_dict())
    return stale


def _stale_message(stale: dict) -> str:
    lines = [f"{sum(map(len, stale.values()))} run folder(s) hold a run trained with other flags than the params "
             "file now gives; nothing was run:"]
    for group, runs in stale.items():
        for config_id, keys in runs.items():
            lines.append(f"  {group}/{config_id}: " + "; ".join(keys))
    lines.append("Restore the params file, or pass --retrain_stale to train them again "
                 "(their old folders are moved to <results>/<group>.superseded/, not deleted).")
    return "\n".join(lines)


def supersede(group_dir: Path, ids, why: str):
    """Move run folders aside, to `<group>.superseded/<time>/<id>`, so nothing trained is ever deleted."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside, n = group_dir.parent / f"{group_dir.name}.superseded" / stamp, 1
    while aside.exists():
        aside, n = aside.with_name(f"{stamp}-{n}"), n + 1
    aside.mkdir(parents=True)
    for config_id in ids:
        shutil.move(str(group_dir / config_id), str(aside / config_id))
    print(f"{group_dir.name}: {len(ids)} run folder(s) {why}: moved to {_relative(aside)}", flush=True)


def orphans(group: Group, group_dir: Path) -> list[str]:
    """Run folders in the group's folder whose configuration is no longer in the grid."""
    if not group_dir.is_dir():
        return []
    return sorted(p.name for p in group_dir.iterdir()
                  if p.is_dir() and p.name not in group.configs and run_folder.is_run_folder(p))


def run_group(group: Group, group_dir: Path, data_dir, device, notebooks, command, workers=1,
              fresh_kernels=False) -> tuple[list, int]:
    """Train every configuration not yet recorded, then analyse and report if their inputs changed.

    Returns the failures and how many configurations are being trained elsewhere.
    """
    group_dir, data_dir = Path(group_dir).resolve(), Path(data_dir).resolve()
    left_out = orphans(group, group_dir)
    if left_out:
        print(f"warning: {group.name}: {len(left_out)} run folder(s) are not in the grid of {_relative(group.path)} "
              f"and are left out of runs.csv, analysis, tables and figures: {', '.join(left_out)}", flush=True)
    if not analysis_is_fresh(group, group_dir):
        weightless = [i for i in group.configs if run_folder.is_recorded(group_dir / i)
                      and run_folder.read_metrics(group_dir / i)["status"] not in NOT_ANALYSED
                      and not (group_dir / i / run_folder.WEIGHTS).is_file()]
        if weightless:  # e.g. a committed record, which keeps no weights, analysed by code that has changed since
            supersede(group_dir, weightless, f"have no {run_folder.WEIGHTS} and must be analysed again, so are retrained")
    todo = [i for i in group.configs if not run_folder.is_recorded(group_dir / i)]
    elsewhere = [i for i in todo if is_running_elsewhere(group_dir, i)]
    todo = [i for i in todo if i not in elsewhere]
    print(f"{group.name}: {len(group.configs)} configurations, {len(group.configs) - len(todo) - len(elsewhere)} "
          f"already complete, {len(todo)} to run"
          + (f", {len(elsewhere)} running elsewhere" if elsewhere else "")
          + (f" on {workers} workers" if workers > 1 and todo else "") + f" -> {_relative(group_dir)}", flush=True)
    started = time.monotonic()
    outcomes = train_all(group, group_dir, todo, data_dir, device, notebooks, command, workers, fresh_kernels)
    failed = [(_relative(group_dir / o["id"] / run_folder.FAILED_NOTEBOOK), o["error"])
              for o in outcomes if o["status"] in ("failed", "timeout")]
    elsewhere += [o["id"] for o in outcomes if o["status"] == ELSEWHERE]
    write_runs_csv(group, group_dir)
    if elsewhere:
        print(f"{group.name}: {len(elsewhere)} configuration(s) are being trained elsewhere ({', '.join(elsewhere)}); "
              "analysis and report wait until they are done", flush=True)
    else:
        failed += analyse_and_report(group, group_dir, data_dir, device, notebooks, command)
    print(f"{group.name}: finished in {_clock(time.monotonic() - started)}; record in {_relative(group_dir)}", flush=True)
    return failed, len(elsewhere)


def is_running_elsewhere(group_dir: Path, config_id: str) -> bool:
    """Another process holds the run's lock, or a Slurm job that has not ended was given it."""
    if locks.is_held(locks.lock_path(group_dir, config_id)):
        return True
    from .slurm import is_queued
    return is_queued(group_dir, config_id)


def analyse_and_report(group: Group, group_dir: Path, data_dir, device, notebooks, command) -> list:
    """Run the analysis and the report notebooks where their inputs changed; stamp what succeeded."""
    if not any(run_folder.is_recorded(group_dir / i) for i in group.configs):
        print(f"{group.name}: no finished runs to analyse", flush=True)
        return []
    failed = []
    stamps = _read_stamps(group_dir)
    analysis_inputs = analysis_digest(group, group_dir)
    if stamps.get("analysis_inputs") == analysis_inputs:
        print(f"{group.name}: analysis up to date", flush=True)
    else:
        stamps.pop("report_inputs", None)
        _write_provenance(group, group_dir, command, device, stamps)
        parameters = {**group.analysis, "data_dir": _relative(data_dir, group_dir), "device": device}
        failed += run_group_notebook(group, group_dir, "analyze", parameters, notebooks)
        stamps["analysis_inputs"] = None if failed else analysis_inputs
        _write_provenance(group, group_dir, command, device, stamps)
    report_inputs = report_digest(group_dir, stamps.get("analysis_inputs"))
    if stamps.get("report_inputs") == report_inputs and not failed:
        print(f"{group.name}: report up to date", flush=True)
    elif not list((group_dir / "summary").glob("results_*_mce.csv")):
        print(f"{group.name}: no analysis to report", flush=True)
    else:
        report_failed = run_group_notebook(group, group_dir, "report", {}, notebooks)
        if not (failed or report_failed):
            stamps["report_inputs"] = report_inputs
            _write_provenance(group, group_dir, command, device, stamps)
        failed += report_failed
    return failed


def analysis_digest(group: Group, group_dir: Path) -> str:
    """What the analysis reads, by content: each configuration, its outcome files, the settings and htsgd's source."""
    runs = []
    for config_id, config in group.configs.items():
        run_dir = group_dir / config_id
        outcome = {name: file_digest(run_dir / name) for name in (run_folder.METRICS, run_folder.HISTORY)
                   if run_folder.is_recorded(run_dir) and (run_dir / name).is_file()}
        runs.append([config_id, config.to_dict(), outcome or run_folder.read_failure(run_dir)])
    return _digest({"runs": runs, "analysis": group.analysis, "source": source_digest()})


def analysis_is_fresh(group: Group, group_dir: Path) -> bool:
    return _read_stamps(group_dir).get("analysis_inputs") == analysis_digest(group, group_dir)


def report_digest(group_dir: Path, analysis_inputs) -> str:
    """What the report reads, by content: runs.csv, the analysis' CSVs, and htsgd's source."""
    files = [group_dir / RUNS_CSV, *sorted((group_dir / "summary").glob("*.csv"))]
    return _digest({"analysis": analysis_inputs, "source": source_digest(),
                    "files": {p.name: file_digest(p) for p in files if p.is_file()}})


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _read_stamps(group_dir: Path) -> dict:
    path = group_dir / PROVENANCE
    if not path.is_file():
        return {}
    saved = storage.read_json(path)
    return {k: saved[k] for k in ("analysis_inputs", "report_inputs") if saved.get(k)}


def _write_provenance(group: Group, group_dir: Path, command: str, device, stamps: dict):
    """The group's provenance: what produced its analysis and report now, and which sources trained its runs."""
    sources = {}
    for config_id in group.configs:
        path = group_dir / config_id / run_folder.PROVENANCE
        if path.is_file():
            digest = storage.read_json(path).get("source_digest")
            sources[digest] = sources.get(digest, 0) + 1
    record = {"group": group.name, "params": public_path(group.path), **provenance(command, device),
              "run_source_digests": sources, **stamps}
    storage.write_json(group_dir / PROVENANCE, record)


def run_group_notebook(group: Group, group_dir: Path, name: str, parameters: dict, notebooks=NOTEBOOKS) -> list:
    """Execute the group-level notebook `name` (analyze or report) into the group's folder."""
    print(f"{group.name}: {name}", flush=True)
    error = execute(notebooks / f"{name}.ipynb", group_dir / f"{name}.ipynb",
                    {"group_dir": ".", **parameters}, group.timeout, cwd=group_dir)
    print("    done" if error is None else f"    {error['status']}: {error['error']}", flush=True)
    return [] if error is None else [(_relative(group_dir / f"{name}.failed.ipynb"), error["error"])]


def report_group(path, results_dir="results", notebooks=NOTEBOOKS, command=None) -> int:
    """`htsgd report`: rerun only a group's report notebook over the results it already has."""
    group = load_group(path)
    group_dir = (Path(results_dir) / group.name).resolve()
    if not (group_dir / RUNS_CSV).is_file():
        raise UserError(f"{group_dir} holds no {RUNS_CSV}; run `htsgd run {path}` first")
    command = command or command_line()
    with locks.hold(locks.lock_path(group_dir, "driver"), command):
        if run_group_notebook(group, group_dir, "report", {}, notebooks):
            return 1
        stamps = _read_stamps(group_dir)
        if stamps.get("analysis_inputs") == analysis_digest(group, group_dir):
            stamps["report_inputs"] = report_digest(group_dir, stamps["analysis_inputs"])
        _write_provenance(group, group_dir, command, None, stamps)
    return 0


def write_runs_csv(group: Group, group_dir: Path) -> Path:
    """`runs.csv` rebuilt from the run folders: one row per configuration of the current grid, never a duplicate."""
    group_dir.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    writer = csv.DictWriter(out, RUN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for config_id, config in group.configs.items():
        run_dir = group_dir / config_id
        row = {"id": config_id, **config.to_dict(), "status": "pending"}
        if run_folder.is_recorded(run_dir):
            m = run_folder.read_metrics(run_dir)
            row.update({k: m.get(k) for k in ("status", "steps", "wall_time", "train_acc", "test_acc", "max_train_loss_ratio")})
        elif run_folder.read_failure(run_dir) is not None:
            row.update(run_folder.read_failure(run_dir))
        writer.writerow(row)
    path = group_dir / RUNS_CSV
    if not (path.is_file() and path.read_text() == out.getvalue()):
        storage.write_text(path, out.getvalue())
    return path


def status_group(path, results_dir="results") -> int:
    """`htsgd status`: every configuration's state, read from the results folder whichever launcher ran it."""
    from .slurm import queued_job

    group = load_group(path)
    group_dir = Path(results_dir) / group.name
    counts = {}
    for config_id in group.configs:
        run_dir = group_dir / config_id
        failure = run_folder.read_failure(run_dir)
        if run_folder.is_recorded(run_dir):
            state = run_folder.read_metrics(run_dir)["status"]
        elif locks.is_held(locks.lock_path(group_dir, config_id)):
            state = "running"
        elif queued_job(group_dir, config_id):
            state = f"queued (job {queued_job(group_dir, config_id)})"
        elif failure is not None:
            state = failure["status"]
        elif (run_dir / run_folder.CHECKPOINT).is_file():
            state = "interrupted (resumes from its checkpoint)"
        else:
            state = "pending"
        counts[state.split(" ")[0]] = counts.get(state.split(" ")[0], 0) + 1
        print(f"{config_id:50s} {state}")
    stamps = _read_stamps(group_dir)
    fresh = "up to date" if stamps.get("analysis_inputs") == analysis_digest(group, group_dir) else "to be (re)done"
    print(f"{group.name}: " + ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
          + f"; analysis {fresh}")
    return 0
