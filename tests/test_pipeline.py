"""The notebooks through papermill, and the driver over a tiny group: real kernels, real files."""

import json
from pathlib import Path

import pandas as pd
import papermill
import pytest

from htsgd import storage
from htsgd.analyze import COLUMNS
from htsgd.driver import NOTEBOOKS, run_groups

pytestmark = pytest.mark.usefixtures("htsgd_kernel")

def errors_in(notebook: Path) -> list:
    cells = json.loads(notebook.read_text())["cells"]
    return [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_source_notebooks_are_committed_clean():
    for notebook in NOTEBOOKS.glob("*.ipynb"):
        cells = json.loads(notebook.read_text())["cells"]
        assert not any(c.get("outputs") or c.get("execution_count") for c in cells), notebook
        assert sum("parameters" in c["metadata"].get("tags", []) for c in cells) == 1, notebook


def test_train_notebook_runs_as_opened_by_hand(tmp_path):
    """Its defaults alone: a digits run held in memory, with both figures drawn."""
    out = tmp_path / "train.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / "train.ipynb"), str(out), kernel_name="htsgd", cwd=str(tmp_path),
                               parameters={"progress": False}, execution_timeout=600, progress_bar=False)
    assert not errors_in(out)
    images = [o for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2 and not list(tmp_path.glob("*/metrics.json"))


def test_driver_builds_the_record_and_a_rerun_skips_everything(tmp_path, capsys, tiny_group):
    params = tiny_group()
    results = tmp_path / "results"
    assert run_groups([params], results_dir=results) == 0
    group = results / "tiny"
    runs = pd.read_csv(group / "runs.csv")
    assert sorted(runs["id"]) == ["noise0_seed1", "noise0_seed2", "noise1_sigma0.01_seed1", "noise1_sigma0.01_seed2"]
    assert set(runs["status"]) == {"converged"} and runs["id"].is_unique
    for run_id in runs["id"]:
        assert storage.is_complete(group / run_id) and not errors_in(group / run_id / "train.ipynb")
    mce = pd.read_csv(group / "summary" / "results_filter_mce.csv")
    assert list(mce.columns) == COLUMNS and len(mce) == 4 * 2
    sweep = pd.read_csv(group / "summary" / "results_filter_parameter_ratio.csv")
    assert len(sweep) == 4 * 11
    for name in ("tables/pruning_summary.md", "tables/pruning_per_seed.md", "figures/pruning_ratio_vs_width.png",
                 "figures/column_norms.png", "figures/accuracy_vs_pruned_fraction.png", "analyze.ipynb", "report.ipynb"):
        assert (group / name).is_file(), name
    assert not errors_in(group / "analyze.ipynb") and not errors_in(group / "report.ipynb")
    assert (group / "tables" / "pruning_summary.md").read_text().startswith("# Pruning at mce 0.1: tiny\n")
    for notebook in group.rglob("*.ipynb"):  # the record names no absolute path: it is relocatable
        papermill_record = json.loads(notebook.read_text())["metadata"]["papermill"]
        paths = [papermill_record["input_path"], papermill_record["output_path"]]
        paths += [v for k, v in papermill_record["parameters"].items() if k.endswith("_dir")]
        assert not any(Path(p).is_absolute() for p in paths), (notebook, paths)

    before = {p: p.stat().st_mtime_ns for p in group.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert run_groups([params], results_dir=results) == 0
    out = capsys.readouterr().out
    assert "4 already complete, 0 to run" in out and "up to date" in out
    assert {p: p.stat().st_mtime_ns for p in group.rglob("*") if p.is_file()} == before


def test_failed_configuration_is_recorded_and_the_rest_still_runs(tmp_path, capsys, tiny_group):
    params = tiny_group(timeout=("timeout: 600", "timeout: 2"), cap=("iterations: 300", "iterations: 100000"),
                        acc=("convergence_accuracy: 90.0", "convergence_accuracy: 100.0"),
                        width=("width: 48", "width: 2000"), seeds=("seeds: [1, 2]", "seeds: [1]"))
    assert run_groups([params], results_dir=tmp_path / "results") == 1
    err = capsys.readouterr().err
    runs = pd.read_csv(tmp_path / "results" / "tiny" / "runs.csv")
    assert set(runs["status"]) == {"timeout"} and runs["error"].str.len().min() > 0
    assert "2 notebook(s) failed" in err and "train.failed.ipynb" in err
    assert (tmp_path / "results" / "tiny" / "noise0_seed1" / "train.failed.ipynb").is_file()
