"""Every file a run folder and a group folder hold, damaged every way a disk or a hand can damage it.

Whatever the damage, no command raises: a damaged run is named on one line with its file and what
to do, the other configurations still plan, and the exit status says so; a damaged output of the
analysis or the report makes `htsgd run` redo that stage instead of reporting from it.
"""

import json
import shutil

import pytest

from htsgd.cli import main
from htsgd.pipeline import claims
from htsgd.pipeline.params import load_group
from htsgd.pipeline.plan import make_plan
from htsgd.pipeline.run import run_groups
from htsgd.record import names
from htsgd.record.digests import ROOT

RUN = "noise0_width500_seed1"  # a run of the committed demo record, which keeps no weights
DAMAGES = ("missing", "empty", "truncated", "garbage", "wrong shape", "wrong types")


def damage(path, how: str, wrong_types=None):
    """Damage `path` one way; `wrong_types` makes a file of the right shape whose values have the wrong types."""
    if how == "missing":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "garbage":
        path.write_bytes(bytes(range(256)) * 8)
    elif how == "wrong shape":
        path.write_text("[1, 2, 3]\n" if path.suffix in (".json", ".ipynb", ".queued") else "epoch,loss\n1,0.5\n")
    else:
        path.write_text(wrong_types(path))


def with_value(key, value):
    """A JSON file's own object with `key` set to a value of the wrong type."""
    return lambda path: json.dumps({**json.loads(path.read_text()), key: value})


RUN_FILES = {  # file -> (its wrong-types content, the state each damage gives)
    names.CONFIG: (with_value("width", "wide"), {"wrong types": "stale"}),
    names.METRICS: (with_value("steps", "many"), {}),
    names.HISTORY: (lambda path: "step,train_acc\nfirst,high\n", {}),
    names.PROVENANCE: (with_value("code_digest", 7), {}),
    names.NOTEBOOK: (lambda path: json.dumps({"cells": [{"cell_type": "code", "source": 7}]}), {}),
}


def status(params, results, capsys) -> tuple[int, dict, str]:
    """`htsgd status`: its exit status, each configuration's line by id, and what it wrote to stderr."""
    code = main(["status", str(params), "--results_dir", str(results)])
    out, err = capsys.readouterr()
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    return code, lines, err


def assert_named(code, lines, err, file_name):
    assert code == 1
    assert "damaged" in lines[RUN] and file_name in lines[RUN], lines[RUN]
    assert "--retrain_damaged" in err
    others = [i for i in lines if i.startswith("noise") and i != RUN]
    grid = len(load_group(ROOT / "params" / "demo.yaml").configs)
    assert len(others) == grid - 1 and all("converged" in lines[i] for i in others)


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("file_name", RUN_FILES)
def test_a_damaged_run_file_is_named_and_the_rest_plans(demo_copy, capsys, file_name, how):
    params, results, group = demo_copy
    wrong_types, states = RUN_FILES[file_name]
    damage(group / RUN / file_name, how, wrong_types)
    code, lines, err = status(params, results, capsys)
    expected = states.get(how, "damaged")
    if expected == "damaged":
        assert_named(code, lines, err, file_name)
    else:
        assert code == 0 and expected in lines[RUN], lines[RUN]


@pytest.mark.parametrize("how", ("missing", "empty", "garbage", "wrong shape"))
def test_htsgd_run_names_a_damaged_run_trains_nothing_and_exits_1(current_demo, capsys, how):
    params, results, group = current_demo
    damage(group / RUN / names.METRICS, how)
    assert run_groups([params], results_dir=results) == 1
    out, err = capsys.readouterr()
    assert "0 to run" in out and f"demo/{RUN}: " in err and names.METRICS in err and "--retrain_damaged" in err


def failed_run(group):
    """RUN as a configuration whose attempt failed: its config and failure.json alone."""
    for path in (group / RUN).iterdir():
        if path.name != names.CONFIG:
            path.unlink()
    (group / RUN / names.FAILURE).write_text(json.dumps({"status": "failed", "error": "a cell raised"}))
    return group / RUN / names.FAILURE


def queued_run(group):
    """RUN as a configuration given to a job: its config and the job's claim."""
    failed_run(group).unlink()
    claims.mark_queued(group, RUN, {"job_id": "17", "executor": "slurm", "log": "logs/slurm/17.out"})
    return claims.queued_marker(group, RUN)


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("make", (failed_run, queued_run))
def test_a_damaged_failure_or_job_claim_is_named(demo_copy, capsys, make, how):
    params, results, group = demo_copy
    path = make(group)
    damage(path, how, with_value("job_id" if make is queued_run else "status", [1]))
    code, lines, err = status(params, results, capsys)
    if how == "missing":
        assert code == 0 and "pending" in lines[RUN]
    else:
        assert_named(code, lines, err, path.name)


def test_a_finished_run_without_its_config_is_damaged(demo_copy, capsys):
    params, results, group = demo_copy
    (group / RUN / names.CONFIG).unlink()
    assert_named(*status(params, results, capsys), names.CONFIG)


def test_a_finished_run_without_its_notebook_is_recorded_again_from_its_weights(demo_copy, capsys):
    """Without its weights it is damaged (above): retraining it silently would overwrite its history."""
    params, results, group = demo_copy
    (group / RUN / names.NOTEBOOK).unlink()
    (group / RUN / names.WEIGHTS).write_bytes(b"")  # present: `htsgd run` would load it, and check it first
    code, lines, err = status(params, results, capsys)
    assert code == 0 and "unrecorded" in lines[RUN] and "training nothing" in lines[RUN]


def output_files(group) -> list[str]:
    """One file of each kind the analysis and the report write."""
    summary = sorted(p.name for p in (group / names.SUMMARY).glob("*.csv"))
    figure = sorted(p.name for p in (group / names.FIGURES).glob("*.png"))[0]
    return (["analyze.ipynb", "report.ipynb", f"{names.TABLES}/{names.VERDICT_MD}", f"{names.FIGURES}/{figure}",
             f"{names.ANALYSIS_CACHE}/{RUN}.json.gz"] + [f"{names.SUMMARY}/{name}" for name in summary])


@pytest.mark.parametrize("how", ("missing", "empty", "truncated", "garbage"))
def test_a_damaged_output_makes_its_stage_stale_and_is_named(demo_copy, capsys, how):
    params, results, group = demo_copy
    for name in output_files(group):
        shutil.copytree(group, group.with_name("copy"), dirs_exist_ok=False)
        copy = group.with_name("copy")
        damage(copy / name, how)
        plan = make_plan(load_group(params), copy)
        stage = "analysis" if name.startswith(names.SUMMARY) or name == "analyze.ipynb" else "report"
        assert not plan.report_fresh, name
        assert any(name in change for change in plan.changed_outputs[stage]), (name, plan.changed_outputs)
        shutil.rmtree(copy)


def test_status_names_a_changed_output(demo_copy, capsys):
    params, results, group = demo_copy
    damage(group / names.TABLES / names.VERDICT_MD, "truncated")
    assert main(["status", str(params), "--results_dir", str(results)]) == 0
    out = capsys.readouterr().out
    assert "analysis up to date, report to be redone" in out
    assert f"{names.TABLES}/{names.VERDICT_MD} changed since the report wrote it: `htsgd run` redoes the report" in out


def test_a_damaged_runs_csv_is_rebuilt_and_nothing_else_is_redone(current_demo, capsys):
    params, results, group = current_demo
    before = (group / names.RUNS_CSV).read_bytes()
    damage(group / names.RUNS_CSV, "garbage")
    assert run_groups([params], results_dir=results) == 0
    out = capsys.readouterr().out
    assert "analysis up to date" in out and "report up to date" in out
    assert (group / names.RUNS_CSV).read_bytes() == before


def test_a_damaged_group_provenance_is_one_line_naming_it(demo_copy, capsys):
    params, results, group = demo_copy
    damage(group / names.PROVENANCE, "garbage")
    assert main(["status", str(params), "--results_dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"demo/{names.PROVENANCE}" in err and "Move it aside" in err


@pytest.mark.slow
@pytest.mark.usefixtures("htsgd_kernel")
def test_htsgd_run_redoes_an_analysis_whose_output_was_cut_short(current_demo, capsys):
    params, results, group = current_demo
    table = next((group / names.SUMMARY).glob("results_*_mce.csv"))
    before = table.read_bytes()
    damage(table, "truncated")
    assert run_groups([params], results_dir=results) == 0
    out = capsys.readouterr().out
    assert f"{names.SUMMARY}/{table.name} changed since the analysis wrote it; the analysis is redone" in out
    assert table.read_bytes() == before
    plan = make_plan(load_group(params), group)
    assert plan.analysis_fresh and plan.report_fresh


def pickled_code(path):
    """A 'weights' file whose unpickling would run a command."""
    import os

    import torch

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo ran",))

    torch.save({"layers.0.weight": Payload()}, path)


def test_a_damaged_checkpoint_is_named_and_its_run_not_started(current_demo, capsys):
    params, results, group = current_demo
    for path in (group / RUN).iterdir():
        if path.name != names.CONFIG:
            path.unlink()
    pickled_code(group / RUN / names.CHECKPOINT)
    assert run_groups([params], results_dir=results) == 1
    out, err = capsys.readouterr()
    assert "0 to run" in out and f"{names.CHECKPOINT} is damaged" in err and "weights_only" not in out + err
    assert sorted(p.name for p in (group / RUN).iterdir()) == [names.CHECKPOINT, names.CONFIG]


def test_an_edited_analysis_cache_is_not_trusted_by_the_redone_analysis(demo_copy):
    """A cache whose key still matches but whose numbers were changed must not pass into a new analysis: without
    weights to analyse it again, its run is to be trained again (moved aside, never lost)."""
    import gzip

    params, results, group = demo_copy
    path = group / names.ANALYSIS_CACHE / f"{RUN}.json.gz"
    cached = json.loads(gzip.decompress(path.read_bytes()))
    cached["result"]["edited"] = True
    path.write_bytes(gzip.compress(json.dumps(cached, sort_keys=True).encode(), mtime=0))
    plan = make_plan(load_group(params), group)
    assert not plan.analysis_fresh and plan.weightless == [RUN]
    assert any(f"{RUN}.json.gz changed" in change for change in plan.changed_outputs["analysis"])


@pytest.mark.parametrize("section", ['{"analysis": [], "report": 5}', '{"analysis": {"outputs": [1]}}'])
def test_a_group_provenance_of_the_wrong_shape_is_one_line(demo_copy, capsys, section):
    params, results, group = demo_copy
    (group / names.PROVENANCE).write_text(section)
    assert main(["status", str(params), "--results_dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"demo/{names.PROVENANCE} is damaged" in err


def test_htsgd_report_refuses_to_report_from_a_damaged_analysis(demo_copy, capsys):
    params, results, group = demo_copy
    table = next((group / names.SUMMARY).glob("results_*_mce.csv"))
    damage(table, "truncated")
    before = (group / names.TABLES / names.VERDICT_MD).read_bytes()
    assert main(["report", str(params), "--results_dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert f"{names.SUMMARY}/{table.name} changed" in err and "htsgd run" in err and len(err.splitlines()) == 1
    assert (group / names.TABLES / names.VERDICT_MD).read_bytes() == before


@pytest.mark.parametrize("name", [RUN, names.SUMMARY, names.LOCKS])
def test_a_link_inside_a_group_is_refused_before_anything_is_written_through_it(demo_copy, capsys, tmp_path, name):
    params, results, group = demo_copy
    outside = tmp_path / "outside"
    if (group / name).exists():
        shutil.move(group / name, outside)
    else:
        outside.mkdir()
    (group / name).symlink_to(outside)
    before = sorted(p.relative_to(outside) for p in outside.rglob("*"))
    for command in (["run", str(params)], ["report", str(params)], ["status", str(params)]):
        assert main([*command, "--results_dir", str(results)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and f"demo/{name} is a link" in err
    assert sorted(p.relative_to(outside) for p in outside.rglob("*")) == before
