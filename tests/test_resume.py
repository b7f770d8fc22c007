"""Killed at any moment (SIGKILL), a run or a group leaves complete results or nothing marked complete,
and rerunning finishes with the same record as an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from htsgd.record import names, run_folder
from htsgd.record.trained_run import load_tensors

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("htsgd_kernel")]  # kills and reruns groups

TRAIN_FLAGS = ["--dataset", "digits", "--width", "256", "--lr", "0.05", "--batch_size_train", "64", "--eval_freq", "20",
               "--convergence_accuracy", "100", "--iterations", "400", "--checkpoint_every", "50", "--iterate_noise", "1",
               "--iterate_noise_scale", "0.01", "--iterate_noise_alpha", "1.75", "--seed", "3", "--no_progress"]


def start(args):
    return subprocess.Popen([sys.executable, "-m", "htsgd.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def kill_when(process, condition, timeout=300):
    """SIGKILL the process and all its children (the notebook kernel too) once `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"finished before the kill point:\n{process.stdout.read()}"
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def finish(args):
    done = subprocess.run([sys.executable, "-m", "htsgd.cli", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_single_run_killed_after_a_checkpoint_resumes_to_the_same_result(tmp_path):
    finish(["train", *TRAIN_FLAGS, "--save_dir", str(tmp_path / "whole")])
    cut = tmp_path / "cut"
    kill_when(start(["train", *TRAIN_FLAGS, "--save_dir", str(cut)]), lambda: (cut / names.CHECKPOINT).is_file())
    assert not run_folder.is_complete(cut)
    assert "resuming the interrupted run" in finish(["train", *TRAIN_FLAGS, "--save_dir", str(cut)])
    assert (cut / names.HISTORY).read_text() == (tmp_path / "whole" / names.HISTORY).read_text()
    whole, resumed = (load_tensors(d / names.WEIGHTS) for d in (tmp_path / "whole", cut))
    assert all((whole[k] == resumed[k]).all() for k in whole)


def record(group_dir):
    """What must not depend on interruptions: runs.csv without timings, the pruning CSVs, the file names."""
    runs = pd.read_csv(group_dir / "runs.csv").drop(columns=["wall_time"])
    summaries = {p.name: p.read_text() for p in sorted((group_dir / "summary").glob("*.csv"))}
    files = sorted(str(p.relative_to(group_dir)) for p in group_dir.rglob("*") if p.is_file())
    return runs, summaries, files


def assert_nothing_half_done(group_dir):
    for run_dir in (p for p in group_dir.iterdir() if p.is_dir() and p.name not in ("summary", "tables", "figures")):
        if run_folder.is_complete(run_dir):
            assert all((run_dir / f).is_file() for f in (names.CONFIG, names.WEIGHTS, names.HISTORY))
        assert not list(run_dir.glob("*.tmp"))
    if (group_dir / "runs.csv").is_file():
        assert pd.read_csv(group_dir / "runs.csv")["id"].is_unique


def test_group_killed_at_several_points_ends_with_the_uninterrupted_record(tmp_path, tiny_group):
    params = tiny_group(seeds=("seeds: [1, 2]", "seeds: [1]"))
    finish(["run", str(params), "--results_dir", str(tmp_path / "whole")])
    group = tmp_path / "cut" / "tiny"
    args = ["run", str(params), "--results_dir", str(tmp_path / "cut")]
    kill_points = [
        lambda: (group / "noise0_seed1" / "train.running.ipynb").is_file(),  # first notebook under way
        lambda: (group / "noise1_sigma0.01_seed1" / names.CONFIG).is_file(),  # second run training
        lambda: (group / "analyze.running.ipynb").is_file(),  # analysis under way
    ]
    for condition in kill_points:
        kill_when(start(args), condition)
        assert_nothing_half_done(group)
    finish(args)
    whole_runs, whole_summaries, whole_files = record(tmp_path / "whole" / "tiny")
    runs, summaries, files = record(group)
    pd.testing.assert_frame_equal(runs, whole_runs)
    assert summaries == whole_summaries and files == whole_files
