"""Freshness by what each stage depends on, damaged record files, and what the plan may never do.

The plan is read from prepared folders (the committed demo record, or runs trained here without a kernel); the
tests marked slow take a group through its notebooks and check what the driver then does."""

import json
import os
import re
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from htsgd.cli import main
from htsgd.pipeline import claims
from htsgd.pipeline.params import load_group
from htsgd.pipeline.plan import make_plan
from htsgd.pipeline.run import StaleRuns, collect, run_groups
from htsgd.record import digests, group_record, names, storage

pytestmark = pytest.mark.usefixtures("htsgd_kernel")
IDS = ["noise0_seed1", "noise0_seed2", "noise1_sigma0.01_seed1", "noise1_sigma0.01_seed2"]


def run_times(group) -> dict:
    """The time of every run's files: unchanged exactly when nothing was trained."""
    return {p: p.stat().st_mtime_ns for i in IDS for p in (group / i).iterdir()}


def stage_inputs(group) -> dict:
    return {stage: group_record.stage_inputs(group, stage) for stage in ("analysis", "report")}


@pytest.mark.slow  # starts kernels
def test_a_report_code_edit_redoes_the_report_alone(fresh_copy, capsys, code_changed):
    params, results, group = fresh_copy
    before, runs, analysis = stage_inputs(group), run_times(group), storage.read_json(group / names.PROVENANCE)["analysis"]
    code_changed("report")
    capsys.readouterr()
    assert run_groups([params], results_dir=results) == 0
    out = capsys.readouterr().out
    assert "0 to run" in out and "analysis up to date" in out and "tiny: report" in out and "tiny: analyze" not in out
    assert run_times(group) == runs
    after = stage_inputs(group)
    assert after["analysis"] == before["analysis"] and after["report"] != before["report"]
    assert storage.read_json(group / names.PROVENANCE)["analysis"] == analysis


@pytest.mark.slow  # starts kernels
def test_an_analysis_code_edit_redoes_analysis_and_report_and_trains_nothing(fresh_copy, capsys, code_changed):
    params, results, group = fresh_copy
    runs = run_times(group)
    code_changed("analysis")
    capsys.readouterr()
    assert run_groups([params], results_dir=results) == 0
    out = capsys.readouterr().out
    assert "0 to run" in out and "tiny: analyze" in out and "tiny: report" in out
    assert run_times(group) == runs


@pytest.mark.slow  # starts kernels
def test_a_training_code_edit_trains_every_run_again(fresh_copy, capsys, code_changed):
    params, results, group = fresh_copy
    code_changed("train")
    assert sorted(make_plan(load_group(params), group).outdated) == IDS
    capsys.readouterr()
    assert run_groups([params], results_dir=results) == 0
    out = capsys.readouterr().out
    assert "4 run folder(s) were trained by other training code: they are trained again" in out and "4 to run" in out
    assert len(list((results / "tiny.superseded").glob("*/*/metrics.json"))) == 4


@pytest.mark.slow  # trains in a fresh interpreter
def test_the_kernel_records_the_training_code_it_loaded_not_the_files_at_the_end(tmp_path):
    """A source edit while a kernel trains must not label its runs with code it never ran."""
    tree = tmp_path / "tree"
    for part in ("htsgd", "notebooks"):
        shutil.copytree(digests.ROOT / part, tree / part, ignore=shutil.ignore_patterns("__pycache__"))
    script = f"""
import pathlib
import htsgd
assert pathlib.Path(htsgd.__file__).is_relative_to({str(tree)!r}), htsgd.__file__
from htsgd.record import digests
from htsgd.record.trained_run import LOADED_CODE_DIGEST, train_in_folder
from htsgd.core.config import make_config
from htsgd.core.data import load
loaded = digests.python_digest("train")
assert LOADED_CODE_DIGEST == loaded
train_py = pathlib.Path(digests.ROOT) / "htsgd" / "core" / "train.py"
train_py.write_text(train_py.read_text() + "# edited while a kernel trains\\n")
config = make_config(dict(dataset="digits", width=16, lr=0.05, batch_size_train=256, eval_freq=5,
                          convergence_accuracy=50.0, iterations=20))
train_in_folder(config, load("digits"), {str(tmp_path / 'run')!r}, "cpu", progress=False)
print(loaded, digests.python_digest("train"))
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded, edited = done.stdout.split()
    assert loaded != edited
    assert storage.read_json(tmp_path / "run" / names.PROVENANCE)["code_digest"] == loaded


@pytest.mark.slow  # starts kernels
def test_a_new_seed_analyses_the_new_runs_only(fresh_copy, capsys):
    params, results, group = fresh_copy
    cached = {p: p.stat().st_mtime_ns for p in (group / names.ANALYSIS_CACHE).iterdir()}
    assert sorted(p.name for p in cached) == sorted(f"{i}.json.gz" for i in IDS)
    params.write_text(params.read_text().replace("seeds: [1, 2]", "seeds: [1, 2, 3]"))
    assert run_groups([params], results_dir=results) == 0
    assert {p: p.stat().st_mtime_ns for p in cached} == cached  # the four old runs were not analysed again
    assert len(list((group / names.ANALYSIS_CACHE).iterdir())) == 6
    mce = pd.read_csv(group / names.SUMMARY / "results_filter_mce.csv")
    assert mce["exp_key"].nunique() == 6 and set(mce["status"]) == {"converged"}


@pytest.mark.slow  # starts kernels
@pytest.mark.parametrize("damaged", [names.METRICS, names.CONFIG, names.HISTORY])
def test_a_damaged_run_file_is_named_and_the_rest_still_plans(fresh_copy, capsys, damaged):
    params, results, group = fresh_copy
    path = group / IDS[1] / damaged
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # cut short, as a full disk leaves it
    plan = make_plan(load_group(params), group)
    assert list(plan.damaged) == [IDS[1]] and sorted(plan.recorded) == sorted(set(IDS) - {IDS[1]})
    capsys.readouterr()
    assert main(["run", str(params), "--results_dir", str(results)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert f"{path} is damaged" in captured.err and "--retrain_damaged" in captured.err
    assert "3 already complete, 0 to run" in captured.out
    assert main(["status", str(params), "--results_dir", str(results)]) == 1
    assert "damaged" in capsys.readouterr().out
    assert main(["run", str(params), "--results_dir", str(results), "--retrain_damaged"]) == 0
    assert "1 to run" in capsys.readouterr().out
    assert list((results / "tiny.superseded").glob(f"*/{IDS[1]}/{damaged}"))


@pytest.mark.slow  # starts kernels
def test_retrain_stale_refuses_folders_a_live_trainer_still_writes(fresh_copy, capsys):
    params, results, group = fresh_copy
    params.write_text(params.read_text().replace("lr: 0.05", "lr: 0.04"))
    lock = claims.lock_path(group, IDS[0])
    holder = subprocess.Popen([sys.executable, "-c", "from htsgd.pipeline import claims; import time\n"
                               f"with claims.hold({str(lock)!r}, 'a trainer'):\n    print('held', flush=True)\n"
                               "    time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StaleRuns, match=f"tiny/{IDS[0]}: held by .*a trainer"):
            run_groups([params], results_dir=results, retrain_stale=True)
        assert not (results / "tiny.superseded").exists()
    finally:
        holder.kill()
        holder.wait()
    assert run_groups([params], results_dir=results, retrain_stale=True) == 0


@pytest.mark.slow  # starts kernels
@pytest.mark.parametrize("analysis", [
    {"compression_error_metric": "frob"},
    {"pruning_type": "kernel"},
])
def test_the_report_reads_the_csvs_of_the_groups_current_settings(fresh_copy, capsys, analysis):
    """Old CSVs of other settings stay on disk; the report must never read them."""
    params, results, group = fresh_copy
    old = group / names.SUMMARY / "results_filter_mce.csv"
    table = pd.read_csv(old)
    table["pruning_ratio"] = 0.999  # a value no new analysis produces
    table.to_csv(old, index=False)
    settings = "".join(f"  {k}: {v}\n" for k, v in analysis.items())
    params.write_text(params.read_text() + f"analysis:\n{settings}")
    assert run_groups([params], results_dir=results) == 0
    wanted = names.results_csv(analysis.get("pruning_type", "filter"), "mce",
                               analysis.get("compression_error_metric", "fro_squared"))
    current = pd.read_csv(group / names.SUMMARY / wanted)
    per_seed = pd.read_csv(group / names.TABLES / "pruning_per_seed.csv").set_index("id")
    at_mce = current[current["criterion_ratio"] == 0.1].set_index("exp_key")["pruning_ratio"]
    assert per_seed.loc[IDS, "pruning_ratio"].tolist() == pytest.approx(at_mce.loc[IDS].tolist())
    assert 0.999 not in per_seed["pruning_ratio"].tolist()
    assert json.loads((group / "report.ipynb").read_text())["metadata"]["papermill"]["parameters"] == {
        "group_dir": ".", **load_group(params).analysis}


@pytest.mark.slow  # starts kernels
def test_htsgd_report_keeps_the_analysis_provenance(fresh_copy, capsys):
    params, results, group = fresh_copy
    before = storage.read_json(group / names.PROVENANCE)
    assert main(["report", str(params), "--results_dir", str(results)]) == 0
    after = storage.read_json(group / names.PROVENANCE)
    assert after["analysis"] == before["analysis"] and after["runs"] == before["runs"]
    assert after["report"]["command"] != before["report"]["command"]
    assert after["report"]["inputs"] == before["report"]["inputs"]


# ---------------------------------------------------------------- planned from a prepared folder, without a kernel


def plan_of(params, group_dir):
    return make_plan(load_group(params), group_dir)


def file_times(folder) -> dict:
    """Every file of a results folder and its time (lock files are not the record)."""
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and names.LOCKS not in p.parts}


def test_runs_made_by_other_training_code_are_outdated(hand_built, code_changed, capsys):
    params, results, group = hand_built
    assert plan_of(params, group).recorded == IDS
    code_changed("train")
    plan = plan_of(params, group)
    assert plan.outdated == IDS and not (plan.recorded or plan.to_train or plan.stale or plan.damaged)
    assert main(["status", str(params), "--results_dir", str(results)]) == 0
    out = capsys.readouterr().out
    assert "outdated (trained by other training code: htsgd run trains it again)" in out and "tiny: 4 outdated;" in out


def test_a_report_code_edit_leaves_the_analysis_fresh(current_demo, code_changed, capsys):
    params, results, group = current_demo
    code_changed("report")
    plan = plan_of(params, group)
    assert plan.analysis_fresh and not plan.report_fresh and not plan.changed_outputs
    assert plan.recorded and not (plan.to_train or plan.outdated or plan.weightless)
    assert main(["status", str(params), "--results_dir", str(results)]) == 0
    assert "analysis up to date, report to be redone" in capsys.readouterr().out


def test_an_analysis_code_edit_trains_again_only_the_runs_without_weights(current_demo, code_changed):
    """No cached analysis holds under new analysis code: a run without weights cannot be analysed again, and is
    trained again; one with weights is analysed from them."""
    params, results, group = current_demo
    assert not plan_of(params, group).weightless  # as committed, without weights: up to date
    code_changed("analysis")
    plan = plan_of(params, group)
    assert not plan.analysis_fresh and not plan.report_fresh
    assert plan.weightless == plan.recorded and plan.recorded and not (plan.to_train or plan.outdated)
    for run_id in plan.recorded[::2]:
        (group / run_id / names.WEIGHTS).write_bytes(b"")
    assert plan_of(params, group).weightless == plan.recorded[1::2]


def test_a_new_seed_is_all_there_is_to_train_and_the_recorded_runs_keep_their_analysis(current_demo):
    params, results, group = current_demo
    recorded = plan_of(params, group).recorded
    params.write_text(re.sub(r"seeds: \[(.*)\]", r"seeds: [\1, 9]", params.read_text()))
    plan = plan_of(params, group)
    assert plan.to_train == [i for i in load_group(params).configs if i.endswith("_seed9")] and plan.to_train
    assert plan.recorded == recorded and not plan.analysis_fresh
    assert not plan.weightless  # each recorded run's cached analysis still holds: none needs its weights


def test_a_rerun_redoes_nothing_even_after_files_are_touched(current_demo, capsys):
    params, results, group = current_demo
    for path in [*group.rglob("*"), params]:  # what a git checkout does to times, leaving contents as they were
        if path.is_file():
            os.utime(path, (1, 1))
    before = file_times(group)
    assert run_groups([params], results_dir=results) == 0
    out = capsys.readouterr().out
    assert f"{len(load_group(params).configs)} already complete, 0 to run" in out
    assert "analysis up to date" in out and "report up to date" in out
    assert file_times(group) == before


def test_changing_checkpoint_every_trains_and_redoes_nothing(current_demo, capsys):
    """How often a run is checkpointed is how it is carried out, not what it computes."""
    params, results, group = current_demo
    params.write_text(params.read_text() + "checkpoint_every: 50\n")
    assert load_group(params).checkpoint_every == 50
    assert run_groups([params], results_dir=results) == 0
    out = capsys.readouterr().out
    assert f"{len(load_group(params).configs)} already complete, 0 to run" in out
    assert "analysis up to date" in out and "report up to date" in out
    assert all("checkpoint_every" not in storage.read_json(p) for p in group.glob(f"*/{names.CONFIG}"))


def test_a_changed_flag_is_refused_before_anything_is_run_or_moved(hand_built, capsys):
    params, results, group = hand_built
    params.write_text(params.read_text().replace("lr: 0.05", "lr: 0.04"))
    before = file_times(results)
    assert sorted(plan_of(params, group).stale) == IDS
    assert main(["run", str(params), "--results_dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert "4 run folder(s) hold a run trained with other flags" in err
    assert "tiny/noise0_seed1: lr: 0.05 -> 0.04" in err and "--retrain_stale" in err
    assert file_times(results) == before


def test_retrain_stale_moves_nothing_a_live_trainer_or_a_queued_job_still_writes(hand_built):
    params, results, group = hand_built
    params.write_text(params.read_text().replace("lr: 0.05", "lr: 0.04"))
    with claims.hold(claims.lock_path(group, IDS[0]), "a trainer"):
        with pytest.raises(StaleRuns, match=f"tiny/{IDS[0]}: held by .*a trainer"):
            run_groups([params], results_dir=results, retrain_stale=True)
    job = {"job_id": str(os.getpid()), "executor": "local", "log": "x.err", "result": "x.pkl"}  # a live process
    claims.mark_queued(group, IDS[2], job)
    with pytest.raises(StaleRuns, match=f"tiny/{IDS[2]}: given to local job {os.getpid()}, which has not ended"):
        run_groups([params], results_dir=results, retrain_stale=True)
    assert not (results / "tiny.superseded").exists() and sorted(plan_of(params, group).stale) == IDS


def test_configurations_dropped_from_the_grid_are_named_and_left_out_of_runs_csv(hand_built, capsys):
    params, results, group = hand_built
    params.write_text(params.read_text().replace("seeds: [1, 2]", "seeds: [1]"))
    plan = collect(plan_of(params, group))
    assert plan.orphans == ["noise0_seed2", "noise1_sigma0.01_seed2"]
    assert plan.recorded == ["noise0_seed1", "noise1_sigma0.01_seed1"]
    assert list(pd.read_csv(group / names.RUNS_CSV)["id"]) == plan.recorded
    assert (group / "noise0_seed2" / names.METRICS).is_file()  # left where it is, never deleted
    assert main(["status", str(params), "--results_dir", str(results)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "not in the grid: left out of runs.csv, analysis, tables and figures" in lines["noise0_seed2"]

