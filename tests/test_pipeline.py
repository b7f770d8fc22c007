"""The notebooks through papermill, and the driver over a tiny group: real kernels, real files (the tests marked
slow); and, without a kernel, what the driver makes of how a notebook ended."""

import json
import os
from pathlib import Path

import pandas as pd
import papermill
import pytest
from jupyter_client.kernelspec import NoSuchKernel
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from papermill.exceptions import PapermillExecutionError

from htsgd.analysis.group_analysis import COLUMNS
from htsgd.cli import main
from htsgd.errors import UserError
from htsgd.pipeline.notebook import START_ATTEMPTS, execute
from htsgd.pipeline.run import run_groups
from htsgd.record import group_record, names, run_folder, storage
from htsgd.record.digests import NOTEBOOKS, TRAIN, python_digest

pytestmark = pytest.mark.usefixtures("htsgd_kernel")
IDS = ["noise0_seed1", "noise0_seed2", "noise1_sigma0.01_seed1", "noise1_sigma0.01_seed2"]


def errors_in(notebook: Path) -> list:
    cells = json.loads(notebook.read_text())["cells"]
    return [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


def mtimes(folder: Path) -> dict:
    """Every file of the record and its time (lock files are not the record)."""
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and names.LOCKS not in p.parts}


def test_source_notebooks_are_committed_clean():
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in cells), notebook
        assert sum("parameters" in c["metadata"].get("tags", []) for c in cells) == 1, notebook


@pytest.mark.slow  # executes notebooks
def test_train_notebook_runs_as_opened_by_hand(tmp_path):
    """Its defaults alone: a digits run held in memory, with both figures drawn."""
    out = tmp_path / "train.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / "train.ipynb"), str(out), kernel_name="htsgd", cwd=str(tmp_path),
                               parameters={"progress": False}, execution_timeout=600, progress_bar=False)
    assert not errors_in(out)
    images = [o for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2 and not list(tmp_path.glob("*/metrics.json"))


@pytest.mark.slow  # executes notebooks
def test_driver_builds_the_record(built):
    group = built / "results" / "tiny"
    runs = pd.read_csv(group / "runs.csv")
    assert list(runs["id"]) == IDS and set(runs["status"]) == {"converged"}
    assert list(runs.columns) == group_record.RUN_COLUMNS
    for run_id in runs["id"]:
        assert run_folder.is_recorded(group / run_id) and not errors_in(group / run_id / "train.ipynb")
        assert storage.read_json(group / run_id / names.PROVENANCE)["command"] == "htsgd run tiny.yaml"
    mce = pd.read_csv(group / "summary" / "results_filter_mce.csv")
    assert list(mce.columns) == COLUMNS and len(mce) == 4 * 2
    assert len(pd.read_csv(group / "summary" / "results_filter_parameter_ratio.csv")) == 4 * 11
    assert len(pd.read_csv(group / "summary" / "sweep_filter.csv")) == 4 * 3 * 51  # three compressors
    assert len(pd.read_csv(group / "summary" / "column_norms.csv.gz")) == 4 * 48
    assert not errors_in(group / "analyze.ipynb") and not errors_in(group / "report.ipynb")
    for notebook in group.rglob("*.ipynb"):  # the record names no absolute path: it is relocatable
        papermill_record = json.loads(notebook.read_text())["metadata"]["papermill"]
        paths = [papermill_record["input_path"], papermill_record["output_path"]]
        paths += [v for k, v in papermill_record["parameters"].items() if k.endswith("_dir")]
        assert not any(Path(p).is_absolute() for p in paths), (notebook, paths)


@pytest.mark.slow  # executes notebooks
def test_provenance_of_the_group_and_its_runs(built):
    """Per stage: which code and devices made the runs, and what last produced the analysis and the report."""
    group = built / "results" / "tiny"
    record = storage.read_json(group / names.PROVENANCE)
    assert list(record) == ["group", "params", "runs", "analysis", "report"]
    assert record["runs"]["code_digests"] == {python_digest(TRAIN): 4}
    devices = {storage.read_json(group / i / names.PROVENANCE)["device"] for i in IDS}
    assert len(devices) == 1 and record["runs"]["devices"] == {devices.pop(): 4}
    for stage in ("analysis", "report"):
        for key in ("htsgd_version", "git_commit", "git_dirty", "python", "torch", "cuda", "numpy", "scipy", "device",
                    "command", "inputs"):
            assert key in record[stage], (stage, key)
        assert len(record[stage]["inputs"]) == 64
    text = (group / names.PROVENANCE).read_text()
    assert str(built) not in text and os.uname().nodename not in text and str(Path.home()) not in text
    report = json.loads((group / "report.ipynb").read_text())
    shown = "".join(o.get("data", {}).get("text/markdown", "") if isinstance(o.get("data", {}).get("text/markdown", ""), str)
                    else "".join(o["data"]["text/markdown"]) for c in report["cells"] for o in c.get("outputs", []))
    assert "runs.devices" in shown and "analysis.device" in shown



@pytest.mark.slow  # executes notebooks
def test_a_changed_flag_is_refused_before_any_training_then_retrained_on_request(fresh_copy, capsys):
    params, results, group = fresh_copy
    params.write_text(params.read_text().replace("lr: 0.05", "lr: 0.04"))
    before = mtimes(group)
    assert main(["run", str(params), "--results_dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert "4 run folder(s) hold a run trained with other flags" in err
    assert "tiny/noise0_seed1: lr: 0.05 -> 0.04" in err and "--retrain_stale" in err
    assert mtimes(group) == before
    assert main(["run", str(params), "--results_dir", str(results), "--retrain_stale"]) == 0
    assert {storage.read_json(group / i / names.CONFIG)["lr"] for i in IDS} == {0.04}
    assert set(pd.read_csv(group / "runs.csv")["lr"]) == {0.04}
    kept = list((results / "tiny.superseded").glob("*/noise0_seed1/config.json"))
    assert len(kept) == 1 and storage.read_json(kept[0])["lr"] == 0.05


@pytest.mark.slow  # executes notebooks
def test_configurations_dropped_from_the_grid_are_left_out(fresh_copy, capsys):
    params, results, group = fresh_copy
    params.write_text(params.read_text().replace("seeds: [1, 2]", "seeds: [1]"))
    capsys.readouterr()
    assert run_groups([params], results_dir=results) == 0
    out = capsys.readouterr().out
    assert "2 run folder(s) are not in the grid" in out and "noise0_seed2, noise1_sigma0.01_seed2" in out
    assert list(pd.read_csv(group / "runs.csv")["id"]) == ["noise0_seed1", "noise1_sigma0.01_seed1"]
    for csv in (group / "summary").glob("*.csv"):
        assert not pd.read_csv(csv)["exp_key"].str.endswith("seed2").any(), csv
    tables = "".join(p.read_text() for p in (group / "tables").glob("*.csv"))
    assert "seed2" not in tables and (group / "noise0_seed2" / names.METRICS).is_file()


@pytest.mark.slow  # executes notebooks
def test_a_record_without_weights_is_up_to_date_until_its_analysis_must_be_redone(fresh_copy, capsys, code_changed):
    params, results, group = fresh_copy
    for weights in group.glob(f"*/{names.WEIGHTS}"):
        weights.unlink()  # as committed: the record keeps no weights
    capsys.readouterr()
    assert run_groups([params], results_dir=results) == 0
    assert "0 to run" in capsys.readouterr().out
    code_changed("analysis")  # the analysis code changed since: no cached analysis holds
    assert run_groups([params], results_dir=results) == 0
    out = capsys.readouterr().out
    assert "4 run folder(s) have no weights and their analysis must be redone: they are trained again" in out
    assert "4 to run" in out
    assert all((group / i / names.WEIGHTS).is_file() for i in IDS)
    assert len(list((results / "tiny.superseded").glob("*/*/metrics.json"))) == 4


@pytest.mark.slow  # executes notebooks
def test_a_run_that_cannot_be_analysed_fails_the_run_and_has_its_row(fresh_copy, capsys, code_changed):
    params, results, group = fresh_copy
    (group / "noise1_sigma0.01_seed2" / names.WEIGHTS).write_bytes(b"not a torch file")
    code_changed("analysis")  # the driver redoes the analysis; the kernel's own digest is unchanged, so
    group_record.cache_path(group, "noise1_sigma0.01_seed2").unlink()  # this run must be analysed from its weights
    capsys.readouterr()
    assert run_groups([params], results_dir=results) == 1
    err = capsys.readouterr().err
    assert "analyze.failed.ipynb" in err and "noise1_sigma0.01_seed2" in err
    mce = pd.read_csv(group / "summary" / "results_filter_mce.csv", keep_default_na=False)
    bad = mce[mce["exp_key"] == "noise1_sigma0.01_seed2"]
    assert set(bad["status"]) == {"error"} and bad["error"].str.contains("not a plain tensor file").all()
    assert (bad["pruning_ratio"] == "").all()


@pytest.mark.slow  # executes notebooks
def test_failed_configuration_is_recorded_and_the_rest_still_runs(tmp_path, capsys, tiny_group):
    params = tiny_group(timeout=("timeout: 600", "timeout: 2"), cap=("iterations: 300", "iterations: 100000"),
                        lr=("lr: 0.05", "lr: 1.0e-6"),  # never converges: only the timeout stops it
                        acc=("convergence_accuracy: 90.0", "convergence_accuracy: 100.0"),
                        width=("width: 48", "width: 2000"), seeds=("seeds: [1, 2]", "seeds: [1]"))
    assert run_groups([params], results_dir=tmp_path / "results") == 1
    err = capsys.readouterr().err
    runs = pd.read_csv(tmp_path / "results" / "tiny" / "runs.csv")
    assert set(runs["status"]) == {"timeout"} and runs["error"].str.len().min() > 0
    assert "2 notebook(s) failed" in err and "train.failed.ipynb" in err
    assert (tmp_path / "results" / "tiny" / "noise0_seed1" / "train.failed.ipynb").is_file()


@pytest.mark.slow  # executes notebooks
def test_a_bug_in_the_driver_is_a_traceback_not_a_failed_run(tmp_path, tiny_group, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("papermill.execute_notebook", broken)
    with pytest.raises(ZeroDivisionError):
        run_groups([tiny_group()], results_dir=tmp_path / "results")


# ---------------------------------------------------------------- what the driver makes of a notebook's end, no kernel


def fake_papermill(monkeypatch, *raised):
    """papermill as `execute` meets it: each call writes its output notebook, then raises the next of `raised`
    (None: the notebook ran). Returns the calls' arguments."""
    calls = []

    def execute_notebook(input_path, output_path, **kwargs):
        calls.append(kwargs)
        Path(output_path).write_text(json.dumps({"cells": [], "executed": input_path}))
        if raised[len(calls) - 1] is not None:
            raise raised[len(calls) - 1]

    monkeypatch.setattr(papermill, "execute_notebook", execute_notebook)
    return calls


def cell_error():
    """What papermill raises when a cell raised."""
    return PapermillExecutionError(3, 3, "raise RuntimeError('broken')", "RuntimeError", "broken on purpose", [])


@pytest.mark.parametrize("raised, status, error", [
    (cell_error(), "failed", "RuntimeError: broken on purpose"),
    (CellTimeoutError("A cell timed out after 2 s."), "timeout", "CellTimeoutError: A cell timed out after 2 s."),
    (DeadKernelError("Kernel died"), "failed", "DeadKernelError: Kernel died"),
])
def test_a_notebook_that_fails_is_an_outcome_and_kept_as_failed(tmp_path, monkeypatch, raised, status, error):
    fake_papermill(monkeypatch, raised)
    output = tmp_path / "run" / names.NOTEBOOK
    assert execute(NOTEBOOKS / names.NOTEBOOK, output, {}, 2, cwd=tmp_path) == {"status": status, "error": error}
    assert sorted(p.name for p in output.parent.iterdir()) == [names.FAILED_NOTEBOOK]


def test_a_notebook_that_runs_replaces_the_last_failed_one(tmp_path, monkeypatch):
    calls = fake_papermill(monkeypatch, None)
    output = tmp_path / "run" / names.NOTEBOOK
    output.parent.mkdir()
    (tmp_path / "run" / names.FAILED_NOTEBOOK).write_text("{}")
    assert execute(NOTEBOOKS / names.NOTEBOOK, output, {"seed": 1}, 2, cwd=tmp_path) is None
    assert sorted(p.name for p in output.parent.iterdir()) == [names.NOTEBOOK]
    assert calls[0]["parameters"] == {"seed": 1} and calls[0]["execution_timeout"] == 2


def test_a_kernel_that_fails_to_start_is_started_again_and_a_bug_is_raised(tmp_path, monkeypatch):
    start_failure = RuntimeError("Kernel died before replying to kernel_info")
    output = tmp_path / names.NOTEBOOK
    calls = fake_papermill(monkeypatch, start_failure, start_failure, None)
    assert execute(NOTEBOOKS / names.NOTEBOOK, output, {}, 2, cwd=tmp_path) is None and len(calls) == 3
    fake_papermill(monkeypatch, *[start_failure] * START_ATTEMPTS)
    with pytest.raises(RuntimeError, match="Kernel died"):
        execute(NOTEBOOKS / names.NOTEBOOK, output, {}, 2, cwd=tmp_path)
    calls = fake_papermill(monkeypatch, start_failure)
    with pytest.raises(RuntimeError, match="Kernel died"):  # a kernel given to it is the caller's to start again
        execute(NOTEBOOKS / names.NOTEBOOK, output, {}, 2, km=object())
    assert len(calls) == 1
    fake_papermill(monkeypatch, ZeroDivisionError("a bug"))
    with pytest.raises(ZeroDivisionError):
        execute(NOTEBOOKS / names.NOTEBOOK, output, {}, 2, cwd=tmp_path)
    assert not output.with_suffix(".failed.ipynb").exists()


def test_no_htsgd_kernel_is_one_line_naming_make_setup(tmp_path, monkeypatch):
    fake_papermill(monkeypatch, NoSuchKernel("htsgd"))
    with pytest.raises(UserError, match="no Jupyter kernel named 'htsgd'; run `make setup`"):
        execute(NOTEBOOKS / names.NOTEBOOK, tmp_path / names.NOTEBOOK, {}, 2, cwd=tmp_path)


def test_a_failed_report_fails_the_run_keeps_the_last_report_and_is_redone_next(current_demo, code_changed,
                                                                                monkeypatch, capsys):
    params, results, group = current_demo
    before, analysis = (group / "report.ipynb").read_bytes(), storage.read_json(group / names.PROVENANCE)["analysis"]
    code_changed("report")
    fake_papermill(monkeypatch, cell_error())
    assert run_groups([params], results_dir=results) == 1
    out, err = capsys.readouterr()
    assert "0 to run" in out and "analysis up to date" in out
    assert "1 notebook(s) failed" in err and "report.failed.ipynb: RuntimeError: broken on purpose" in err
    assert (group / "report.ipynb").read_bytes() == before and (group / "report.failed.ipynb").is_file()
    record = storage.read_json(group / names.PROVENANCE)
    assert record["analysis"] == analysis  # a report never rewrites what produced the analysis
    assert record["report"]["inputs"] is None and record["report"]["outputs"] is None  # failed: not fresh
    assert {"htsgd_version", "git_commit", "torch", "device", "command"} <= set(record["report"])
    assert str(results.parent) not in (group / names.PROVENANCE).read_text()  # the record names no machine path
    assert main(["status", str(params), "--results_dir", str(results)]) == 0
    assert "analysis up to date, report to be redone" in capsys.readouterr().out
