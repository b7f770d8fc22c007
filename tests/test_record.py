"""The committed records are what the current code produces, hold no weights, and FINDINGS.md and the README
say what their reports say."""

import subprocess
from pathlib import Path

import pytest

from htsgd.pipeline.params import load_group
from htsgd.pipeline.plan import make_plan
from htsgd.record.digests import ROOT
from htsgd.record.names import CHECKPOINT, FINDINGS_END, FINDINGS_MD, FINDINGS_START, WEIGHTS
from htsgd.report.findings import README_ROOT, findings, readme_block, reported_groups, summary, unreported_groups

COMMITTED_GROUPS = ("demo", "digits_calibration", "digits_width", "fashion_calibration", "fashion_width")


def tracked(*paths) -> list[str]:
    done = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--", *paths], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    return done.stdout.split()


@pytest.mark.parametrize("group", COMMITTED_GROUPS)
def test_committed_record_comes_from_the_current_code(group):
    """A change to the code a stage depends on must ship with the record regenerated (`htsgd run` redoes it)."""
    params = load_group(ROOT / "params" / f"{group}.yaml")
    plan = make_plan(params, ROOT / "results" / group)
    regenerate = f"regenerate it: .venv/bin/htsgd run params/{group}.yaml"
    assert not plan.outdated, f"results/{group}: runs trained by other training code ({plan.outdated[:3]}...); {regenerate}"
    assert sorted(plan.recorded) == sorted(params.configs), "every configuration of the grid is recorded, and only those"
    assert not (plan.stale or plan.damaged or plan.orphans)
    assert plan.analysis_fresh, f"results/{group}: `htsgd run` would redo this analysis; {regenerate}"
    assert plan.report_fresh, f"results/{group}: `htsgd run` would redo this report; {regenerate}"


@pytest.mark.parametrize("group", COMMITTED_GROUPS)
def test_committed_record_keeps_no_weights(group):
    files = tracked(f"results/{group}")
    assert files, f"results/{group} is not committed"
    assert not [f for f in files if Path(f).name in (WEIGHTS, CHECKPOINT)]


def test_findings_are_what_the_committed_reports_say():
    """results/FINDINGS.md is generated from every group's tables; edited or left behind by a report, it fails."""
    assert (ROOT / "results" / FINDINGS_MD).read_text() == findings(ROOT / "results"), \
        "results/FINDINGS.md differs from the reports: run .venv/bin/htsgd findings --readme README.md"


def test_the_readme_findings_block_is_findings_summary():
    block = readme_block((ROOT / "README.md").read_text())
    assert block, f"README.md has no {FINDINGS_START} ... {FINDINGS_END} block"
    assert block == summary(ROOT / "results", README_ROOT), \
        "README.md's findings differ from FINDINGS.md's: run .venv/bin/htsgd findings --readme README.md"


def test_every_committed_group_is_in_the_findings():
    assert set(COMMITTED_GROUPS) == {group.name for group in reported_groups(ROOT / "results")}
    assert not unreported_groups(ROOT / "results")
