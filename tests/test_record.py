"""The committed records are what the current code produces, and hold no weights."""

import subprocess
from pathlib import Path

import pytest

from htsgd import driver, run_folder, storage
from htsgd.params import load_group
from htsgd.provenance import ROOT, source_digest

COMMITTED_GROUPS = ("demo", "digits_calibration")


def tracked(*paths) -> list[str]:
    done = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--", *paths], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    return done.stdout.split()


@pytest.mark.parametrize("group", COMMITTED_GROUPS)
def test_committed_record_comes_from_the_current_sources(group):
    """A change to htsgd/ or notebooks/ must ship with the record regenerated (rm -rf results/<group>; htsgd run)."""
    folder = ROOT / "results" / group
    record = storage.read_json(folder / "provenance.json")
    assert record["source_digest"] == source_digest(), (
        f"results/{group} was made by other sources than this tree's: regenerate it "
        f"(rm -rf results/{group} && .venv/bin/htsgd run params/{group}.yaml)")
    runs = [p.parent for p in folder.glob(f"*/{run_folder.METRICS}")]
    assert runs and record["run_source_digests"] == {source_digest(): len(runs)}
    params = load_group(ROOT / "params" / f"{group}.yaml")
    assert sorted(p.name for p in runs) == sorted(params.configs), "every configuration of the grid, and only those"
    assert driver.analysis_is_fresh(params, folder), "`htsgd run` would redo this analysis"
    assert record["report_inputs"] == driver.report_digest(folder, record["analysis_inputs"])


@pytest.mark.parametrize("group", COMMITTED_GROUPS)
def test_committed_record_keeps_no_weights(group):
    files = tracked(f"results/{group}")
    assert files, f"results/{group} is not committed"
    assert not [f for f in files if Path(f).name in (run_folder.WEIGHTS, run_folder.CHECKPOINT)]
